/* sasl.c - strict base64 and the PLAIN/LOGIN response formats. A fuzz and unit test target. */
#include "sasl.h"

#include <string.h>

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

ssize_t sasl_base64_decode(const char *in, size_t len, unsigned char *out, size_t outsz)
{
    if (len % 4 != 0)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            unsigned char c = (unsigned char)in[i + k];
            if (c == '=' && i + 4 == len && k >= 2) {
                v[k] = 0;
                pad++;
                continue;
            }
            if (pad || (v[k] = b64_value(c)) < 0)
                return -1; /* bad character, or data after '=' */
        }
        unsigned triple = (unsigned)v[0] << 18 | (unsigned)v[1] << 12 | (unsigned)v[2] << 6 | (unsigned)v[3];
        size_t n = 3 - (size_t)pad;
        if (o + n > outsz)
            return -1;
        unsigned char bytes[3] = {(unsigned char)(triple >> 16), (unsigned char)(triple >> 8), (unsigned char)triple};
        if ((pad == 1 && bytes[2]) || (pad == 2 && bytes[1]))
            return -1; /* non-canonical: bits set under the padding */
        memcpy(out + o, bytes, n);
        o += n;
    }
    return (ssize_t)o;
}

/* Copies field [p, p+n) into dst if it fits and holds no NUL. */
static enum sasl_result take_field(const unsigned char *p, size_t n, char *dst, size_t dstsz)
{
    if (n >= dstsz || n > SASL_FIELD_MAX)
        return SASL_TOO_LONG;
    if (memchr(p, '\0', n))
        return SASL_MALFORMED;
    memcpy(dst, p, n);
    dst[n] = '\0';
    return SASL_OK;
}

enum sasl_result sasl_decode_plain(const char *b64, size_t len, struct sasl_credentials *c)
{
    unsigned char buf[3 * (SASL_FIELD_MAX + 1) + 3];
    memset(c, 0, sizeof *c);
    if (len > 4 * ((sizeof buf + 2) / 3))
        return SASL_TOO_LONG;
    ssize_t n = sasl_base64_decode(b64, len, buf, sizeof buf);
    if (n < 0)
        return SASL_BAD_BASE64;
    const unsigned char *nul1 = memchr(buf, '\0', (size_t)n);
    const unsigned char *nul2 = nul1 ? memchr(nul1 + 1, '\0', (size_t)(buf + n - nul1 - 1)) : NULL;
    enum sasl_result r = SASL_MALFORMED;
    if (nul2 && nul2 > nul1 + 1 && nul2 + 1 < buf + n &&
        (r = take_field(buf, (size_t)(nul1 - buf), c->authzid, sizeof c->authzid)) == SASL_OK &&
        (r = take_field(nul1 + 1, (size_t)(nul2 - nul1 - 1), c->authcid, sizeof c->authcid)) == SASL_OK)
        r = take_field(nul2 + 1, (size_t)(buf + n - nul2 - 1), c->password, sizeof c->password);
    memset(buf, 0, sizeof buf);
    if (r != SASL_OK)
        sasl_wipe(c);
    return r;
}

enum sasl_result sasl_decode_login(const char *b64, size_t len, char *out, size_t outsz)
{
    unsigned char buf[SASL_FIELD_MAX + 3];
    if (len > 4 * ((sizeof buf + 2) / 3))
        return SASL_TOO_LONG;
    ssize_t n = sasl_base64_decode(b64, len, buf, sizeof buf);
    if (n < 0)
        return SASL_BAD_BASE64;
    enum sasl_result r = n == 0 ? SASL_MALFORMED : take_field(buf, (size_t)n, out, outsz);
    memset(buf, 0, sizeof buf);
    return r;
}

void sasl_wipe(struct sasl_credentials *c)
{
    explicit_bzero(c, sizeof *c);
}
