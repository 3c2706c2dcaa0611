/* mta_sts.h - SMTP MTA Strict Transport Security (RFC 8461): a recipient domain publishes, under
 * _mta-sts.<domain> (TXT, an id) and https://mta-sts.<domain>/.well-known/mta-sts.txt (the policy),
 * which MX hosts may receive its mail and that they must be reached over TLS with a certificate
 * valid for their names. This part is pure: the TXT record and the policy text read, a host
 * matched against the policy's mx patterns. The lookups, the HTTPS fetch and the cache are
 * mta_sts_fetch.c's. */
#ifndef POSTERN_MTA_STS_H
#define POSTERN_MTA_STS_H

#include <stdbool.h>
#include <stddef.h>

#define MTA_STS_ID_MAX 32                 /* RFC 8461 3.1: 1*32(ALPHA / DIGIT) */
#define MTA_STS_MX_MAX 32                 /* mx patterns kept from one policy (the rest are ignored) */
#define MTA_STS_POLICY_MAX 65536          /* octets of a policy file read (RFC 8461 3.2: 64 KiB) */
#define MTA_STS_MAX_AGE_MAX 31557600U     /* RFC 8461 3.2: max_age at most a year */

enum mta_sts_mode { MTA_STS_NONE, MTA_STS_TESTING, MTA_STS_ENFORCE };

struct mta_sts_policy {
    enum mta_sts_mode mode;
    unsigned max_age;                 /* seconds the policy may be cached */
    size_t nmx;
    char mx[MTA_STS_MX_MAX][256];     /* "mail.example.com" or "*.example.com", lower case, no final dot */
};

/* The id of a TXT record "v=STSv1; id=...; ..." (RFC 8461 3.1) into id; false when the record is
 * not one (then no policy is looked for). */
bool mta_sts_record_id(const char *record, char id[MTA_STS_ID_MAX + 1]);

/* Reads a policy file (LF or CRLF lines "key: value"; unknown keys ignored) into p; false with
 * why when it is not a valid one: no "version: STSv1", a mode other than enforce, testing or none,
 * a missing or out-of-range max_age, no mx line where the mode is not none. */
bool mta_sts_policy_parse(const char *text, size_t len, struct mta_sts_policy *p, char *why, size_t whysz);

/* True when host (an MX name, any case, a final dot allowed) matches one of the policy's mx
 * patterns: equal, or "*.parent" with exactly one label before parent (RFC 8461 4.1). */
bool mta_sts_mx_matches(const struct mta_sts_policy *p, const char *host);

const char *mta_sts_mode_name(enum mta_sts_mode mode);

#endif
