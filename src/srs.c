/* srs.c - SRS0 and SRS1 addresses (srs.h): making them for senders this server passes on, and reading
 * those that come back as bounce recipients. Pure functions but for OpenSSL's HMAC. */
#include "srs.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SRS_DAY 86400
#define SRS_TIME_CYCLE 1024 /* days: two base32 characters */

static const char base32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

bool srs_secret_add(struct srs *s, const char *secret, const char **err)
{
    if (strlen(secret) < SRS_SECRET_MIN) {
        *err = "a secret needs at least 16 characters (e.g. openssl rand -base64 24)";
        return false;
    }
    if (s->nsecrets == SRS_SECRETS_MAX) {
        *err = "more than 8 secrets";
        return false;
    }
    if (!(s->secrets[s->nsecrets] = strdup(secret))) {
        *err = "out of memory";
        return false;
    }
    s->nsecrets++;
    return true;
}

void srs_free(struct srs *s)
{
    for (size_t i = 0; i < s->nsecrets; i++) {
        OPENSSL_cleanse(s->secrets[i], strlen(s->secrets[i]));
        free(s->secrets[i]);
    }
    memset(s, 0, sizeof *s);
}

/* The hash of an address's day stamp, domain and local part under secret: SRS_HASH_CHARS base32
 * characters of HMAC-SHA256 over "tt=domain=local", all lower-cased (a bounce may come back in
 * another case). */
static void make_hash(const char *secret, const char *tt, const char *domain, size_t domain_len, const char *local,
                      char out[SRS_HASH_CHARS + 1])
{
    char data[3 * ADDR_PATH_MAX];
    int n = snprintf(data, sizeof data, "%s=%.*s=%s", tt, (int)domain_len, domain, local);
    size_t len = n < 0 ? 0 : (size_t)n < sizeof data ? (size_t)n : sizeof data - 1;
    for (size_t i = 0; i < len; i++)
        data[i] = (char)tolower((unsigned char)data[i]);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)data, len, md, &mdlen);
    for (int i = 0; i < SRS_HASH_CHARS; i++) { /* 5 bits at a time from the front */
        int bit = i * 5, byte = bit / 8, shift = bit % 8;
        unsigned v = ((unsigned)md[byte] << 8 | md[byte + 1]) >> (11 - shift);
        out[i] = base32[v & 31];
    }
    out[SRS_HASH_CHARS] = '\0';
}

static void day_stamp(long long now, char tt[3])
{
    unsigned t = (unsigned)((now / SRS_DAY) % SRS_TIME_CYCLE);
    tt[0] = base32[t >> 5];
    tt[1] = base32[t & 31];
    tt[2] = '\0';
}

/* A local part SRS can carry unchanged inside its own: dot-atom characters, ASCII only. */
static bool plain_local(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c >= 0x7f || strchr("\"\\(),:;<>@[]", c))
            return false;
    }
    return n > 0;
}

/* A domain name SRS can carry: letters, digits, hyphens and dots (no literal, no U-label). */
static bool plain_domain(const char *s)
{
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.')
            return false;
    return *s != '\0';
}

/* The SRS1 form (the layout of the SRS papers) of a sender that is already an SRS address of
 * another forwarder, fwd: "SRS1=HHHHH=fwd=" followed by what came after the SRS0 (say
 * "=HH=TT=orig.example=bob"); an SRS1 sender keeps its first forwarder and that rest, re-signed
 * here. A bounce to it then goes straight back to the first forwarder, who alone can read its
 * SRS0 (and checks its age), and the address does not grow at each hop. The hash covers
 * "srs1=fwd=rest": never the same input as an SRS0 hash, whose first "=" is after 2 characters.
 * 1: made into out; 0: the sender is no SRS address of another forwarder; -1: it is, but the
 * result would not fit a local part or its parts are not ones SRS1 can carry. */
static int srs1_forward(const struct srs *s, const char *local, size_t local_len, const char *domain, char *out,
                        size_t outsz)
{
    char fwd[ADDR_DOMAIN_MAX + 1];
    const char *rest;
    size_t fwd_len;
    if (local_len > 5 && strncasecmp(local, "SRS0", 4) == 0 && strchr("=+-", local[4])) {
        ascii_lower_copy(fwd, domain, sizeof fwd);
        fwd_len = strlen(fwd);
        rest = local + 4; /* the SRS0's separator and all after it */
    } else if (local_len > 5 && strncasecmp(local, "SRS1", 4) == 0 && strchr("=+-", local[4])) {
        const char *hash_end = memchr(local + 5, '=', local_len - 5);
        const char *fwd_end = hash_end ? memchr(hash_end + 1, '=', (size_t)(local + local_len - hash_end - 1)) : NULL;
        if (!fwd_end || fwd_end == hash_end + 1 || (size_t)(fwd_end - hash_end - 1) > ADDR_DOMAIN_MAX)
            return -1;
        fwd_len = (size_t)(fwd_end - hash_end - 1);
        ascii_lower_copy(fwd, hash_end + 1, fwd_len + 1);
        rest = fwd_end + 1; /* the first forwarder's SRS0 separator and all after it */
    } else {
        return 0;
    }
    size_t rest_len = (size_t)(local + local_len - rest);
    if (rest_len < 2 || !strchr("=+-", rest[0]) || !plain_domain(fwd) || strcasecmp(fwd, s->domain) == 0 ||
        strlen("SRS1===") + SRS_HASH_CHARS + fwd_len + rest_len > ADDR_LOCAL_MAX)
        return -1;
    char hash[SRS_HASH_CHARS + 1], tail[ADDR_LOCAL_MAX + 1];
    snprintf(tail, sizeof tail, "%.*s", (int)rest_len, rest);
    make_hash(s->secrets[0], "srs1", fwd, fwd_len, tail, hash);
    int n = snprintf(out, outsz, "SRS1=%s=%s=%s@%s", hash, fwd, tail, s->domain);
    return n > 0 && (size_t)n < outsz && (size_t)n <= ADDR_PATH_MAX - 2 ? 1 : -1;
}

bool srs_forward(const struct srs *s, const char *sender, long long now, char *out, size_t outsz)
{
    const char *at = strrchr(sender, '@');
    if (!*s->domain || !s->nsecrets || !at || !plain_local(sender, (size_t)(at - sender)) || !plain_domain(at + 1) ||
        strcasecmp(at + 1, s->domain) == 0)
        return false;
    size_t local_len = (size_t)(at - sender), domain_len = strlen(at + 1);
    int srs1 = srs1_forward(s, sender, local_len, at + 1, out, outsz);
    if (srs1 != 0)
        return srs1 > 0;
    if (strlen("SRS0===") + SRS_HASH_CHARS + 2 + 1 + domain_len + local_len > ADDR_LOCAL_MAX)
        return false;
    char tt[3], hash[SRS_HASH_CHARS + 1], local[ADDR_LOCAL_MAX + 1], domain[ADDR_DOMAIN_MAX + 1];
    day_stamp(now, tt);
    snprintf(local, sizeof local, "%.*s", (int)local_len, sender);
    ascii_lower_copy(domain, at + 1, sizeof domain);
    make_hash(s->secrets[0], tt, domain, domain_len, local, hash);
    int n = snprintf(out, outsz, "SRS0=%s=%s=%s=%s@%s", hash, tt, domain, local, s->domain);
    return n > 0 && (size_t)n < outsz && (size_t)n <= ADDR_PATH_MAX - 2;
}

/* Days since a day stamp (its two base32 characters, any case); -1 when they are not base32. */
static int stamp_age(const char *tt, long long now)
{
    const char *a = strchr(base32, toupper((unsigned char)tt[0])), *b = strchr(base32, toupper((unsigned char)tt[1]));
    if (!tt[0] || !tt[1] || !a || !b)
        return -1;
    unsigned made = (unsigned)((a - base32) << 5 | (b - base32));
    unsigned today = (unsigned)((now / SRS_DAY) % SRS_TIME_CYCLE);
    return (int)((today + SRS_TIME_CYCLE - made) % SRS_TIME_CYCLE);
}

/* True when hash (SRS_HASH_CHARS characters, any case) is that of tt, domain and local under
 * one of the secrets. */
static bool hash_known(const struct srs *s, const char *hash, const char *tt, const char *domain, size_t domain_len,
                       const char *local)
{
    char want[SRS_HASH_CHARS + 1], got[SRS_HASH_CHARS + 1];
    for (int i = 0; i < SRS_HASH_CHARS; i++)
        got[i] = (char)toupper((unsigned char)hash[i]);
    got[SRS_HASH_CHARS] = '\0';
    bool known = false;
    for (size_t i = 0; i < s->nsecrets && !known; i++) {
        make_hash(s->secrets[i], tt, domain, domain_len, local, want);
        known = CRYPTO_memcmp(want, got, SRS_HASH_CHARS) == 0;
    }
    return known;
}

/* Reads an SRS1 local part made here ("SRS1=HHHHH=fwd=rest"): the first forwarder's SRS0 address
 * it stands for, "SRS0rest@fwd". No day stamp: the first forwarder checks its own. */
static enum srs_verdict srs1_reverse(const struct srs *s, const char *local, char *out, size_t outsz)
{
    const char *hash = local + 5, *fwd = strchr(hash, '=');
    const char *rest = fwd ? strchr(fwd + 1, '=') : NULL;
    if (!rest || fwd - hash != SRS_HASH_CHARS || rest - fwd < 2 || !rest[1] || !strchr("=+-", rest[1]) || !rest[2])
        return SRS_BAD;
    if (!hash_known(s, hash, "srs1", fwd + 1, (size_t)(rest - fwd - 1), rest + 1))
        return SRS_BAD;
    int n = snprintf(out, outsz, "SRS0%s@%.*s", rest + 1, (int)(rest - fwd - 1), fwd + 1);
    return n > 0 && (size_t)n < outsz ? SRS_VALID : SRS_BAD;
}

enum srs_verdict srs_reverse(const struct srs *s, const char *local, long long now, char *out, size_t outsz)
{
    if (strncasecmp(local, "SRS1=", 5) == 0)
        return srs1_reverse(s, local, out, outsz);
    if (strncasecmp(local, "SRS0=", 5) != 0)
        return SRS_NOT_SRS;
    const char *hash = local + 5, *tt = strchr(hash, '=');
    const char *domain = tt ? strchr(tt + 1, '=') : NULL;
    const char *orig = domain ? strchr(domain + 1, '=') : NULL;
    if (!orig || tt - hash != SRS_HASH_CHARS || domain - tt != 3 || orig - domain < 2 || !orig[1])
        return SRS_BAD;
    char stamp[3] = {tt[1], tt[2], '\0'};
    int age = stamp_age(stamp, now);
    if (!hash_known(s, hash, stamp, domain + 1, (size_t)(orig - domain - 1), orig + 1) || age < 0)
        return SRS_BAD;
    if ((unsigned)age > s->max_age_days)
        return SRS_EXPIRED;
    int n = snprintf(out, outsz, "%s@%.*s", orig + 1, (int)(orig - domain - 1), domain + 1);
    return n > 0 && (size_t)n < outsz ? SRS_VALID : SRS_BAD;
}
