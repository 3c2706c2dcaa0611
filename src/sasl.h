/* sasl.h - pure decoders for SASL PLAIN (RFC 4616) and LOGIN responses, over strict base64
 * (RFC 4648, no whitespace, exact padding). No I/O, no allocation; bounded outputs. */
#ifndef POSTERN_SASL_H
#define POSTERN_SASL_H

#include <stddef.h>
#include <sys/types.h>

#define SASL_FIELD_MAX 255 /* RFC 4616: authzid, authcid and passwd up to 255 octets each */

enum sasl_result { SASL_OK = 0, SASL_BAD_BASE64, SASL_MALFORMED, SASL_TOO_LONG };

struct sasl_credentials {
    char authzid[SASL_FIELD_MAX + 1];
    char authcid[SASL_FIELD_MAX + 1];
    char password[SASL_FIELD_MAX + 1];
};

/* Decodes base64 text into out; returns the decoded length, or -1 when invalid or too long. */
ssize_t sasl_base64_decode(const char *in, size_t len, unsigned char *out, size_t outsz);

/* PLAIN: base64 of [authzid] NUL authcid NUL passwd; authcid and passwd must not be empty. */
enum sasl_result sasl_decode_plain(const char *b64, size_t len, struct sasl_credentials *c);

/* LOGIN: one base64 field (user name or password), no NUL inside, at most SASL_FIELD_MAX octets. */
enum sasl_result sasl_decode_login(const char *b64, size_t len, char *out, size_t outsz);

/* Wipes credentials so no password stays in memory. */
void sasl_wipe(struct sasl_credentials *c);

#endif
