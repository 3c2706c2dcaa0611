/* dkim.c - see dkim.h. The message is read where it lies (the header section is already one
 * piece after message_scan_headers; the body is walked chunk by chunk, never copied), and the
 * canonical forms go straight into SHA-256. Limits: header fields and their lines are bounded by
 * the message size only; one signature per message. Never logs or prints a private key. */
#include "dkim.h"

#include <errno.h>
#include <stdint.h>
#include <event2/buffer.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "address.h"
#include "dkim_canon.h"
#include "idn.h"

#define RSA_BITS_MIN 1024 /* RFC 8301 3.2: verifiers need not accept less */

/* Header fields signed when present, each instance of them (RFC 6376 5.4.1); those marked
 * oversigned are listed once more, so that no one can add another later (RFC 6376 8.15). */
static const struct {
    const char *name;
    bool oversign;
} signed_fields[] = {
    {"from", true},        {"reply-to", true},      {"subject", true},       {"date", true},
    {"to", true},          {"cc", true},            {"message-id", true},    {"in-reply-to", false},
    {"references", false}, {"mime-version", false}, {"content-type", false}, {"content-transfer-encoding", false},
    {"sender", false},     {"list-id", false},      {"list-unsubscribe", false},
    {"list-unsubscribe-post", false},
};

/* ---------- the table (its lines are read by policy.c's table reader) ---------- */

/* By domain, and a domain's RSA key before its Ed25519 key. */
static int key_cmp(const void *a, const void *b)
{
    const struct dkim_key *x = a, *y = b;
    int c = strcmp(x->domain, y->domain);
    return c ? c : (int)x->ed25519 - (int)y->ed25519;
}

/* Only the domains compared: for lookups. */
static int domain_cmp(const void *a, const void *b)
{
    return strcmp(((const struct dkim_key *)a)->domain, ((const struct dkim_key *)b)->domain);
}

/* Reads one key file: an RSA key of RSA_BITS_MIN bits or more, or an Ed25519 key; NULL and *err
 * otherwise. */
static EVP_PKEY *read_key(const char *file, bool *ed25519, char *err, size_t errsz)
{
    FILE *f = fopen(file, "r");
    if (!f) {
        snprintf(err, errsz, "cannot read key file %s: %s", file, strerror(errno));
        return NULL;
    }
    EVP_PKEY *pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (!pkey) {
        snprintf(err, errsz, "%s holds no PEM private key (make one with: openssl genpkey -algorithm RSA "
                 "-pkeyopt rsa_keygen_bits:2048 -out FILE)", file);
        return NULL;
    }
    *ed25519 = EVP_PKEY_get_id(pkey) == EVP_PKEY_ED25519;
    if (!*ed25519 && EVP_PKEY_get_id(pkey) != EVP_PKEY_RSA) {
        snprintf(err, errsz, "%s is neither an RSA nor an Ed25519 key", file);
    } else if (!*ed25519 && EVP_PKEY_get_bits(pkey) < RSA_BITS_MIN) {
        snprintf(err, errsz, "%s: an RSA key of %d bits; receivers refuse less than %d (RFC 8301), use 2048",
                 file, EVP_PKEY_get_bits(pkey), RSA_BITS_MIN);
    } else {
        return pkey;
    }
    EVP_PKEY_free(pkey);
    return NULL;
}

/* True when s is a selector: dot-separated labels of letters, digits and '-' (RFC 6376 3.1). */
static bool selector_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > DKIM_SELECTOR_MAX || s[0] == '.' || s[n - 1] == '.' || strstr(s, ".."))
        return false;
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.") == n;
}

/* One table line "domain selector keyfile" into the next free entry of k; false and err when wrong. */
static bool key_line(struct dkim_keys *k, char **f, int n, char *err, size_t errsz)
{
    bool utf8 = false;
    char domain[ADDR_DOMAIN_MAX + 1];
    if (n != 3) {
        snprintf(err, errsz, "expected 'domain selector keyfile'");
        return false;
    }
    if (address_parse_domain(f[0], strlen(f[0]), &utf8) != ADDR_OK || !idn_to_ascii(f[0], domain, sizeof domain)) {
        snprintf(err, errsz, "'%.80s' is not a domain", f[0]);
        return false;
    }
    if (!selector_ok(f[1])) {
        snprintf(err, errsz, "selector '%.80s': letters, digits, '-' and dots only (a DNS name)", f[1]);
        return false;
    }
    struct dkim_key *key = &k->keys[k->count];
    memset(key, 0, sizeof *key);
    if (!(key->pkey = read_key(f[2], &key->ed25519, err, errsz)))
        return false;
    key->domain = strdup(domain);
    key->selector = strdup(f[1]);
    key->file = strdup(f[2]);
    k->count++;
    if (!key->domain || !key->selector || !key->file) {
        snprintf(err, errsz, "out of memory");
        return false;
    }
    return true;
}

bool dkim_keys_add(struct dkim_keys *k, char **f, int n, const char **err)
{
    static _Thread_local char problem[400];
    if (k->count == k->cap) {
        size_t cap = k->cap ? k->cap * 2 : 8;
        struct dkim_key *grown = realloc(k->keys, cap * sizeof *grown);
        if (!grown) {
            *err = "out of memory";
            return false;
        }
        k->keys = grown, k->cap = cap;
    }
    if (key_line(k, f, n, problem, sizeof problem))
        return true;
    *err = problem;
    return false;
}

bool dkim_keys_finish(struct dkim_keys *k, const char *file, struct config_errors *errs)
{
    size_t before = errs->count;
    if (k->count)
        qsort(k->keys, k->count, sizeof *k->keys, key_cmp);
    for (size_t i = 1; i < k->count; i++)
        if (strcmp(k->keys[i - 1].domain, k->keys[i].domain) == 0 && k->keys[i - 1].ed25519 == k->keys[i].ed25519)
            config_errors_add(errs, "%s: dkim_keys: %s is listed twice with an %s key: a domain signs with one key, "
                              "or one RSA and one Ed25519 key (RFC 8463: both signatures on each message)", file,
                              k->keys[i].domain, k->keys[i].ed25519 ? "Ed25519" : "RSA");
    return errs->count == before;
}

void dkim_keys_free(struct dkim_keys *k)
{
    for (size_t i = 0; i < k->count; i++) {
        EVP_PKEY_free(k->keys[i].pkey);
        free(k->keys[i].domain);
        free(k->keys[i].selector);
        free(k->keys[i].file);
    }
    free(k->keys);
    memset(k, 0, sizeof *k);
}

const struct dkim_key *dkim_key_second(const struct dkim_keys *k, const struct dkim_key *key)
{
    const struct dkim_key *next = key + 1;
    return next < k->keys + k->count && strcmp(next->domain, key->domain) == 0 ? next : NULL;
}

const struct dkim_key *dkim_key_for(const struct dkim_keys *k, const char *domain)
{
    while (k->count && domain && *domain) {
        struct dkim_key want = {.domain = (char *)domain};
        const struct dkim_key *hit = bsearch(&want, k->keys, k->count, sizeof *k->keys, domain_cmp);
        while (hit && hit > k->keys && strcmp(hit[-1].domain, hit->domain) == 0)
            hit--; /* the first of the domain's keys (its RSA key when it has two) */
        if (hit)
            return hit;
        domain = strchr(domain, '.');
        domain = domain ? domain + 1 : NULL;
    }
    return NULL;
}

/* How many of the fields are named name. */
static size_t count_named(const struct fields *fs, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < fs->count; i++)
        n += field_named(&fs->v[i], name);
    return n;
}

/* ---------- the signature ---------- */

/* Appends the h= names and hashes the fields they sign, in that order: each instance of a
 * signed name from the bottom up (RFC 6376 5.4.2), an oversigned name once more (it hashes
 * nothing). Lines are folded before a colon to stay short. */
static void sign_fields(const struct fields *fs, struct canon_out *o, struct evbuffer *sig)
{
    size_t col = 8; /* "\th=" and some */
    evbuffer_add(sig, "\th=", 3);
    bool first = true;
    for (size_t s = 0; s < sizeof signed_fields / sizeof signed_fields[0]; s++) {
        const char *name = signed_fields[s].name;
        size_t n = count_named(fs, name), listed = n + (signed_fields[s].oversign ? 1 : 0);
        for (size_t k = 0; k < listed; k++) {
            if (col + strlen(name) > 74) {
                evbuffer_add(sig, "\n\t", 2);
                col = 8;
            }
            col += (size_t)evbuffer_add_printf(sig, "%s%s", first ? "" : ":", name);
            first = false;
        }
        for (size_t i = fs->count; n && i-- > 0;)
            if (field_named(&fs->v[i], name)) {
                canon_header(o, fs->v[i].p, fs->v[i].len, true, true);
                n--;
            }
    }
    evbuffer_add(sig, ";\n", 2);
}

/* Signs the SHA-256 digest of the canonical header fields with the key: RSASSA-PKCS1-v1_5
 * (rsa-sha256), or Ed25519 over the digest itself (RFC 8463 3). The signature goes to base64. */
static bool sign_digest(const struct dkim_key *key, const unsigned char digest[32], char *b64, size_t b64sz)
{
    size_t len = (size_t)EVP_PKEY_get_size(key->pkey);
    unsigned char *sig = malloc(len);
    bool ok = false;
    if (sig && key->ed25519) {
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        ok = md && EVP_DigestSignInit(md, NULL, NULL, NULL, key->pkey) == 1 &&
             EVP_DigestSign(md, sig, &len, digest, 32) == 1;
        EVP_MD_CTX_free(md);
    } else if (sig) {
        EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new(key->pkey, NULL);
        ok = pc && EVP_PKEY_sign_init(pc) == 1 && EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PADDING) == 1 &&
             EVP_PKEY_CTX_set_signature_md(pc, EVP_sha256()) == 1 && EVP_PKEY_sign(pc, sig, &len, digest, 32) == 1;
        EVP_PKEY_CTX_free(pc);
    }
    ok = ok && (len + 2) / 3 * 4 < b64sz;
    if (ok)
        EVP_EncodeBlock((unsigned char *)b64, sig, (int)len);
    free(sig);
    return ok;
}

/* Appends the base64 text s after "b=", folded into lines of at most 76 columns. */
static void add_folded(struct evbuffer *out, const char *s)
{
    size_t n = strlen(s), first = n < 70 ? n : 70;
    evbuffer_add(out, s, first);
    for (size_t i = first; i < n; i += 75) {
        evbuffer_add(out, "\n\t", 2);
        evbuffer_add(out, s + i, n - i < 75 ? n - i : 75);
    }
    evbuffer_add(out, "\n", 1);
}

/* The signature field for the fields and body digest: built without the b= value, hashed after
 * the signed fields (RFC 6376 3.7), then completed with the signature of it all. */
static bool build_signature(const struct dkim_key *key, const struct fields *fs, const unsigned char bh[32],
                            long long now, struct evbuffer *out)
{
    struct canon_out *o = calloc(1, sizeof *o);
    struct evbuffer *sig = evbuffer_new();
    char bh64[48], b64[2800];
    unsigned char digest[32];
    bool ok = o && sig && canon_out_init(o, SIZE_MAX);
    if (ok) {
        EVP_EncodeBlock((unsigned char *)bh64, bh, 32);
        evbuffer_add_printf(sig, "DKIM-Signature: v=1; a=%s; c=relaxed/relaxed; d=%s;\n\ts=%s; t=%lld;\n",
                            key->ed25519 ? "ed25519-sha256" : "rsa-sha256", key->domain, key->selector, now);
        sign_fields(fs, o, sig);
        evbuffer_add_printf(sig, "\tbh=%s;\n\tb=", bh64);
        size_t n = evbuffer_get_length(sig);
        canon_header(o, (const char *)evbuffer_pullup(sig, -1), n, true, false);
        ok = canon_out_final(o, digest) && sign_digest(key, digest, b64, sizeof b64);
    }
    if (ok) {
        add_folded(sig, b64);
        evbuffer_add_buffer(out, sig);
    }
    if (o)
        canon_out_free(o);
    free(o);
    if (sig)
        evbuffer_free(sig);
    return ok;
}

/* The message's fields (added, then the text's header section) into fs; false when out of memory,
 * else the body's offset in *body. */
static bool message_fields(const char *added, struct evbuffer *text, struct fields *fs, size_t *body)
{
    size_t hlen;
    canon_text_layout(text, &hlen, body);
    const char *h = hlen ? (const char *)evbuffer_pullup(text, (ev_ssize_t)hlen) : "";
    return h && split_fields(fs, added, strlen(added)) && split_fields(fs, h, hlen);
}

/* A copy of key for a signing job: the names duplicated, the private key referenced. */
static bool copy_key(const struct dkim_key *key, struct dkim_key *out)
{
    *out = (struct dkim_key){strdup(key->domain), strdup(key->selector), NULL, key->pkey, key->ed25519};
    if (!out->domain || !out->selector || EVP_PKEY_up_ref(key->pkey) != 1) {
        free(out->domain);
        free(out->selector);
        *out = (struct dkim_key){0};
        return false;
    }
    return true;
}

void dkim_signing_free(struct dkim_signing *sg)
{
    for (size_t i = 0; i < sg->count; i++) {
        EVP_PKEY_free(sg->keys[i].pkey);
        free(sg->keys[i].domain);
        free(sg->keys[i].selector);
    }
    sg->count = 0;
}

bool dkim_signing_choose(const struct dkim_keys *k, const char *added, struct evbuffer *text, struct dkim_signing *sg,
                         const char **why)
{
    struct fields fs = {0};
    size_t body;
    const struct dkim_key *key = NULL;
    char domain[ADDR_DOMAIN_MAX + 1];
    sg->count = 0;
    *why = "out of memory";
    if (message_fields(added, text, &fs, &body)) {
        size_t i = 0;
        while (i < fs.count && !field_named(&fs.v[i], "from"))
            i++;
        *why = "no From address with a domain";
        if (i < fs.count && field_from_domain(&fs.v[i], domain, sizeof domain, NULL)) {
            *why = "no key for the From domain";
            key = dkim_key_for(k, domain);
        }
    }
    free(fs.v);
    const struct dkim_key *second = key ? dkim_key_second(k, key) : NULL;
    if (key && copy_key(key, &sg->keys[0])) {
        sg->count = 1;
        if (second && copy_key(second, &sg->keys[1]))
            sg->count = 2;
        else if (second)
            dkim_signing_free(sg); /* both signatures or none */
    }
    if (key && sg->count == 0)
        *why = "out of memory";
    return sg->count > 0;
}

bool dkim_signing_run(const struct dkim_signing *sg, const char *added, struct evbuffer *text, long long now,
                      struct evbuffer *out, const char **why)
{
    struct fields fs = {0};
    size_t body;
    unsigned char bh[32];
    bool ok = message_fields(added, text, &fs, &body);
    *why = "out of memory";
    if (ok && !canon_body_hash(text, body, true, SIZE_MAX, bh, NULL)) {
        ok = false;
        *why = "signing failed (OpenSSL)";
    }
    struct evbuffer *sigs = ok ? evbuffer_new() : NULL; /* all signatures, or none, go to out */
    ok = ok && sigs;
    for (size_t i = 0; ok && i < sg->count; i++)
        if (!build_signature(&sg->keys[i], &fs, bh, now, sigs)) {
            ok = false;
            *why = "signing failed (OpenSSL)";
        }
    if (ok)
        evbuffer_add_buffer(out, sigs);
    if (sigs)
        evbuffer_free(sigs);
    free(fs.v);
    return ok;
}

const struct dkim_key *dkim_sign(const struct dkim_keys *k, const char *added, struct evbuffer *text, long long now,
                                 struct evbuffer *out, const char **why)
{
    struct dkim_signing sg;
    if (!dkim_signing_choose(k, added, text, &sg, why))
        return NULL;
    const struct dkim_key *first = dkim_key_for(k, sg.keys[0].domain); /* the table's entry */
    bool ok = dkim_signing_run(&sg, added, text, now, out, why);
    dkim_signing_free(&sg);
    return ok ? first : NULL;
}

/* ---------- the DNS record ---------- */

void dkim_print_record(FILE *out, const struct dkim_key *key)
{
    unsigned char raw[64], *der = NULL;
    size_t rawlen = sizeof raw;
    int len = 0;
    if (key->ed25519 && EVP_PKEY_get_raw_public_key(key->pkey, raw, &rawlen) == 1)
        len = (int)rawlen;
    else if (!key->ed25519)
        len = i2d_PUBKEY(key->pkey, &der); /* SubjectPublicKeyInfo (RFC 6376 3.6.1) */
    char *b64 = len > 0 ? malloc((size_t)(len + 2) / 3 * 4 + 1) : NULL;
    if (b64) {
        EVP_EncodeBlock((unsigned char *)b64, key->ed25519 ? raw : der, len);
        fprintf(out, "; %s: %s key, %s\n%s._domainkey.%s. IN TXT ( \"v=DKIM1; k=%s; \"", key->domain,
                key->ed25519 ? "Ed25519" : "RSA", key->file, key->selector, key->domain,
                key->ed25519 ? "ed25519" : "rsa");
        size_t n = strlen(b64);
        for (size_t i = 0; i < n; i += 250) /* a TXT string holds 255 octets at most */
            fprintf(out, "\n\t\"%s%.*s\"", i ? "" : "p=", (int)(n - i < 250 ? n - i : 250), b64 + i);
        fprintf(out, " )\n");
    }
    free(b64);
    OPENSSL_free(der);
}
