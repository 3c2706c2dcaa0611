/* dkim.h - DKIM signatures (RFC 6376) on mail this server originates, so that receivers can tell
 * it really comes from its From domain (DMARC, RFC 7489, builds on it). One signature per message
 * (two when the domain has an RSA and an Ed25519 key, RFC 8463 3), made with the key of the From
 * address's domain (or of its nearest listed parent domain):
 * relaxed/relaxed canonicalization, rsa-sha256 (keys of 1024 bits or more, RFC 8301) or
 * ed25519-sha256 (RFC 8463). The keys come from the dkim_keys table ("domain selector keyfile").
 * Signing only reads the message; it never changes a byte of it. */
#ifndef POSTERN_DKIM_H
#define POSTERN_DKIM_H

#include <stdbool.h>
#include <stddef.h>
#include <openssl/evp.h>
#include <stdio.h>

#include "config.h"

struct evbuffer;

#define DKIM_SELECTOR_MAX 63 /* one DNS label (RFC 6376 3.1: a selector is a sub-domain) */

struct dkim_key {
    char *domain;             /* canonical (lower-case A-label: what d= and DNS carry) */
    char *selector;
    char *file;               /* the key file, as the table names it */
    EVP_PKEY *pkey;           /* the private key */
    bool ed25519;             /* else RSA */
};

/* The dkim_keys table, sorted by domain for lookups. */
struct dkim_keys {
    struct dkim_key *keys;
    size_t count, cap;
};

/* One line of the dkim_keys table ("domain selector keyfile"): reads the key file; false with
 * *err when the line is wrong (a missing or unreadable key, no RSA or Ed25519 key, an RSA key under
 * 1024 bits, a bad selector). */
bool dkim_keys_add(struct dkim_keys *k, char **fields, int nfields, const char **err);

/* After the last line: sorts the keys for lookups; a domain listed twice is an error. */
bool dkim_keys_finish(struct dkim_keys *k, const char *file, struct config_errors *errs);
void dkim_keys_free(struct dkim_keys *k);

/* The key for a canonical domain: its own entry, else the nearest parent domain's; NULL when none.
 * A domain with two keys (one RSA, one Ed25519) gives its RSA key; dkim_key_second the other. */
const struct dkim_key *dkim_key_for(const struct dkim_keys *k, const char *domain);
const struct dkim_key *dkim_key_second(const struct dkim_keys *k, const struct dkim_key *key);

/* Signs a message: added holds fields placed above the text (LF lines, may be ""), text the
 * message as received (header section, empty line, body; LF line endings). Chooses the key by the
 * From field's domain and appends a DKIM-Signature field (LF lines) to out - two, RSA then Ed25519,
 * when the domain has both. Returns the (first) key used,
 * or NULL when the message gets no signature (no From domain with a key, or a signing error: the
 * reason, for the log, in *why). */
const struct dkim_key *dkim_sign(const struct dkim_keys *k, const char *added, struct evbuffer *text, long long now,
                                 struct evbuffer *out, const char **why);

/* Prints the DNS TXT record that publishes key's public half, in zone-file form. */
void dkim_print_record(FILE *out, const struct dkim_key *key);

/* The same in steps, so that the work can leave the event loop: dkim_signing_choose (loop
 * thread) picks the keys for the From domain and keeps its own reference to them - a reload may
 * free the table meanwhile -, dkim_signing_run (any thread; the text must not change meanwhile)
 * hashes the body and appends the signatures, dkim_signing_free lets the keys go. */
struct dkim_signing {
    struct dkim_key keys[2]; /* domain and selector copied, pkey referenced; RSA first */
    size_t count;            /* 0: nothing chosen */
};
bool dkim_signing_choose(const struct dkim_keys *k, const char *added, struct evbuffer *text, struct dkim_signing *sg,
                         const char **why);
bool dkim_signing_run(const struct dkim_signing *sg, const char *added, struct evbuffer *text, long long now,
                      struct evbuffer *out, const char **why);
void dkim_signing_free(struct dkim_signing *sg);

#endif
