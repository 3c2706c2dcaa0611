/* dkim_verify.h - DKIM signature verification (RFC 6376 6), in two steps so the caller does the
 * DNS: dkim_verify_prepare() reads the message's DKIM-Signature fields (at most
 * DKIM_VERIFY_MAX), checks their tags, compares each body hash and hashes the header fields each
 * signs; dkim_verify_key() finishes a signature with the TXT answer for its key. Algorithms:
 * rsa-sha256 with keys of 1024 bits or more and ed25519-sha256 (RFC 8301, RFC 8463); rsa-sha1
 * is refused (RFC 8301). Canonicalizations simple and relaxed, l= honoured. Pure: no I/O. */
#ifndef POSTERN_DKIM_VERIFY_H
#define POSTERN_DKIM_VERIFY_H

#include <stdbool.h>
#include <stddef.h>

#include "address.h"

struct evbuffer;

#define DKIM_VERIFY_MAX 5      /* signatures verified per message; more are left unverified */
#define DKIM_SIG_OCTETS_MAX 1024 /* a decoded b= (an 8192-bit RSA signature) */
#define DKIM_KEY_RECORD_MAX 4096 /* a key's TXT record, its strings joined */

/* The results of RFC 8601 2.7.1, in the order of enum dkim_result. */
enum dkim_result {
    DKIM_R_NONE, DKIM_R_PASS, DKIM_R_FAIL, DKIM_R_NEUTRAL, DKIM_R_POLICY, DKIM_R_TEMPERROR, DKIM_R_PERMERROR,
    DKIM_R__COUNT
};

struct dkim_sig {
    enum dkim_result result;           /* DKIM_R_NONE while the key is awaited */
    bool ed25519;                      /* a=ed25519-sha256, else rsa-sha256 */
    bool strict_identity;              /* i= names d= itself (for a key with t=s) */
    bool testing;                      /* the key says t=y: the domain is testing DKIM */
    char detail[96];                   /* why it did not pass (for the log and reason=) */
    char domain[ADDR_DOMAIN_MAX + 1];  /* d=, lower-cased */
    char selector[ADDR_DOMAIN_MAX + 1];/* s= */
    char b_prefix[9];                  /* the first 8 characters of b= (RFC 6008 header.b) */
    unsigned char digest[32];          /* SHA-256 of the signed header fields */
    unsigned char sig[DKIM_SIG_OCTETS_MAX];
    size_t siglen;
};

struct dkim_verification {
    struct dkim_sig sigs[DKIM_VERIFY_MAX];
    size_t count;    /* signatures read */
    size_t skipped;  /* DKIM-Signature fields past DKIM_VERIFY_MAX */
};

/* Reads the DKIM-Signature fields of text (the message as received: header section, empty line,
 * body; LF lines) at time now. Each gets a result already (permerror for a bad signature field,
 * fail for a body hash that does not match, ...) or DKIM_R_NONE: its key must be looked up. */
void dkim_verify_prepare(struct evbuffer *text, long long now, struct dkim_verification *v);

/* The DNS name of a signature's key: "selector._domainkey.domain"; false when too long. */
bool dkim_key_name(const struct dkim_sig *sig, char *out, size_t outsz);

/* How the key lookup ended. */
enum dkim_key_lookup { DKIM_KEY_ANSWER, DKIM_KEY_NONE, DKIM_KEY_TEMPFAIL };

/* Finishes sig with its key lookup: the TXT records' rdata (DKIM_KEY_ANSWER; n may be 0), no
 * such name (DKIM_KEY_NONE), or a failed lookup (DKIM_KEY_TEMPFAIL: temperror). */
void dkim_verify_key(struct dkim_sig *sig, enum dkim_key_lookup how, const unsigned char *const *rdata,
                     const int *len, int n);

/* Gives sig its result and the reason (cut to fit). */
void dkim_verdict(struct dkim_sig *sig, enum dkim_result r, const char *detail);

/* "pass", "fail", ... as RFC 8601 writes them. */
const char *dkim_result_name(enum dkim_result r);

#endif
