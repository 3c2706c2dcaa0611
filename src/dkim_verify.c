/* dkim_verify.c - see dkim_verify.h. Limits: DKIM_VERIFY_MAX signatures, DKIM_TAGS_MAX tags and
 * DKIM_FIELD_MAX octets per signature field, DKIM_H_MAX names in h=, keys of 1024 to 8192 bits.
 * Never reads past the text; a malformed field is a permerror, never a crash. */
#include "dkim_verify.h"

#include <event2/buffer.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dkim_canon.h"
#include "dns.h"
#include "sasl.h"
#include "taglist.h"

#define DKIM_FIELD_MAX 16384 /* octets of one DKIM-Signature field */
#define DKIM_H_MAX 128       /* names in h= */
#define RSA_BITS_MIN 1024    /* RFC 8301 3.2 */

const char *dkim_result_name(enum dkim_result r)
{
    static const char *const names[DKIM_R__COUNT] = {"none",   "pass",      "fail",     "neutral",
                                                     "policy", "temperror", "permerror"};
    return r < DKIM_R__COUNT ? names[r] : "none";
}

/* Base64 with blanks anywhere (a folded b=, p=) into out; the length, or -1. */
static ssize_t base64_blanks(const char *in, unsigned char *out, size_t outsz)
{
    size_t n = strlen(in), k = 0;
    char *packed = malloc(n + 1);
    if (!packed)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!is_wsp(in[i]))
            packed[k++] = in[i];
    ssize_t r = sasl_base64_decode(packed, k, out, outsz);
    free(packed);
    return r;
}

/* A decimal tag value (at most 15 digits); false when it is not one. */
static bool number(const char *s, unsigned long long *out)
{
    size_t n = strspn(s, "0123456789");
    if (n == 0 || n > 15 || s[n])
        return false;
    *out = strtoull(s, NULL, 10);
    return true;
}

/* ---------- the signature field ---------- */

void dkim_verdict(struct dkim_sig *sig, enum dkim_result r, const char *detail)
{
    sig->result = r;
    snprintf(sig->detail, sizeof sig->detail, "%s", detail);
}

/* The value of field f unfolded (line breaks dropped) into a new string; NULL when out of memory. */
static char *unfolded_value(const struct field *f)
{
    const char *colon = memchr(f->p, ':', f->len);
    size_t start = colon ? (size_t)(colon - f->p) + 1 : f->len, k = 0;
    char *out = malloc(f->len - start + 1);
    for (size_t i = start; out && i < f->len; i++)
        if (f->p[i] != '\n')
            out[k++] = f->p[i];
    if (out)
        out[k] = '\0';
    return out;
}

/* Copies the signature field with its b= value taken out (RFC 6376 3.7: what it signs); the
 * length of the copy in *outlen. NULL when out of memory. */
static char *without_b_value(const struct field *f, size_t *outlen)
{
    char *out = malloc(f->len + 1);
    const char *colon = memchr(f->p, ':', f->len);
    size_t i = colon ? (size_t)(colon - f->p) + 1 : f->len, cut = f->len, resume = f->len;
    while (out && i < f->len && cut == f->len) {
        while (i < f->len && (is_wsp(f->p[i]) || f->p[i] == '\n'))
            i++;
        size_t name = i;
        while (i < f->len && f->p[i] != '=' && f->p[i] != ';' && !is_wsp(f->p[i]) && f->p[i] != '\n')
            i++;
        bool is_b = i - name == 1 && f->p[name] == 'b';
        while (i < f->len && (is_wsp(f->p[i]) || f->p[i] == '\n'))
            i++;
        if (is_b && i < f->len && f->p[i] == '=') {
            cut = i + 1;
            const char *semi = memchr(f->p + cut, ';', f->len - cut);
            resume = semi ? (size_t)(semi - f->p) : f->len;
        }
        const char *semi = i < f->len ? memchr(f->p + i, ';', f->len - i) : NULL;
        i = semi ? (size_t)(semi - f->p) + 1 : f->len;
    }
    if (out) {
        memcpy(out, f->p, cut);
        memcpy(out + cut, f->p + resume, f->len - resume);
        *outlen = cut + f->len - resume;
    }
    return out;
}

/* c=: "header[/body]", each simple or relaxed; simple/simple when absent. */
static bool canonicalizations(const char *c, bool *header_relaxed, bool *body_relaxed)
{
    *header_relaxed = *body_relaxed = false;
    if (!c)
        return true;
    const char *slash = strchr(c, '/');
    size_t hn = slash ? (size_t)(slash - c) : strlen(c);
    if ((hn == 7 && strncmp(c, "relaxed", 7) == 0) || (hn == 6 && strncmp(c, "simple", 6) == 0))
        *header_relaxed = hn == 7;
    else
        return false;
    if (!slash)
        return true;
    *body_relaxed = strcmp(slash + 1, "relaxed") == 0;
    return *body_relaxed || strcmp(slash + 1, "simple") == 0;
}

/* d= and i= (when given): i='s domain must be d= or under it; false with the reason. */
static bool domains(struct dkim_sig *sig, const char *d, const char *i, const char **why)
{
    bool utf8 = false;
    *why = "d= is not a domain name";
    if (!d || address_parse_domain(d, strlen(d), &utf8) != ADDR_OK || utf8 || d[0] == '[')
        return false;
    for (size_t k = 0; k < sizeof sig->domain - 1 && d[k]; k++)
        sig->domain[k] = (char)(d[k] >= 'A' && d[k] <= 'Z' ? d[k] + 32 : d[k]);
    sig->strict_identity = true;
    if (!i)
        return true; /* i= defaults to @d */
    const char *at = strrchr(i, '@');
    size_t il = at ? strlen(at + 1) : 0, dl = strlen(sig->domain);
    *why = "i= is not in the domain of d=";
    if (!at || il < dl || strcasecmp(at + 1 + il - dl, sig->domain) != 0 || (il > dl && at[1 + il - dl - 1] != '.'))
        return false;
    sig->strict_identity = il == dl;
    return true;
}

/* The tags of one signature checked (RFC 6376 6.1.1) into sig; false with the reason. */
static bool check_tags(struct dkim_sig *sig, const struct tag_list *t, long long now, const char **why)
{
    const char *a = tag_list_get(t, "a"), *s = tag_list_get(t, "s"), *h = tag_list_get(t, "h"), *b = tag_list_get(t, "b"), *q = tag_list_get(t, "q");
    unsigned long long ts = 0, xs = 0;
    *why = "v= is not 1";
    if (!tag_list_get(t, "v") || strcmp(tag_list_get(t, "v"), "1") != 0)
        return false;
    *why = a && strcasecmp(a, "rsa-sha1") == 0 ? "rsa-sha1 is not accepted (RFC 8301)" : "unknown algorithm in a=";
    if (!a || (strcasecmp(a, "rsa-sha256") != 0 && strcasecmp(a, "ed25519-sha256") != 0))
        return false;
    sig->ed25519 = strcasecmp(a, "ed25519-sha256") == 0;
    if (!domains(sig, tag_list_get(t, "d"), tag_list_get(t, "i"), why))
        return false;
    *why = "s= is not a selector";
    if (!s || !*s || strlen(s) >= sizeof sig->selector || strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRST"
                                                                    "UVWXYZ0123456789-_.") != strlen(s))
        return false;
    snprintf(sig->selector, sizeof sig->selector, "%s", s);
    *why = "h= does not sign From";
    if (!h || !tag_list_has(h, "from"))
        return false;
    *why = "b= is not a signature";
    ssize_t n = b ? base64_blanks(b, sig->sig, sizeof sig->sig) : -1;
    if (n <= 0)
        return false;
    sig->siglen = (size_t)n;
    size_t k = 0;
    for (const char *p = b; *p && k < 8; p++)
        if (!is_wsp(*p))
            sig->b_prefix[k++] = *p;
    *why = "q= does not allow dns/txt";
    if (q && !tag_list_has(q, "dns/txt"))
        return false;
    *why = "bad t= or x=";
    if ((tag_list_get(t, "t") && !number(tag_list_get(t, "t"), &ts)) || (tag_list_get(t, "x") && !number(tag_list_get(t, "x"), &xs)) ||
        (tag_list_get(t, "t") && tag_list_get(t, "x") && xs < ts))
        return false;
    *why = "signature expired (x=)";
    return !tag_list_get(t, "x") || (long long)xs >= now;
}

/* The SHA-256 of the header fields h= names - for each name, the last instance not yet used,
 * bottom up (RFC 6376 5.4.2) - and of the signature field itself without its b= value. */
static bool header_digest(struct dkim_sig *sig, const struct fields *fs, const struct field *self, const char *h,
                          bool relaxed)
{
    struct canon_out *o = calloc(1, sizeof *o);
    bool *used = calloc(fs->count + 1, sizeof *used);
    char name[256];
    size_t names = 0, selflen = 0;
    char *me = without_b_value(self, &selflen);
    bool ok = o && used && me && canon_out_init(o, SIZE_MAX);
    for (const char *p = h; ok && p && *p && names++ < DKIM_H_MAX; p = strchr(p, ':') ? strchr(p, ':') + 1 : NULL) {
        size_t k = strcspn(p, ":");
        snprintf(name, sizeof name, "%.*s", (int)(k < sizeof name - 1 ? k : sizeof name - 1), p);
        char *n = tag_trim(name);
        for (size_t i = fs->count; i-- > 0;)
            if (!used[i] && field_named(&fs->v[i], n)) {
                used[i] = true;
                canon_header(o, fs->v[i].p, fs->v[i].len, relaxed, true);
                break;
            }
    }
    if (ok)
        canon_header(o, me, selflen, relaxed, false);
    ok = ok && canon_out_final(o, sig->digest);
    if (o)
        canon_out_free(o);
    free(o);
    free(used);
    free(me);
    return ok;
}

/* The body hashes already made for a message, by canonicalization and length limit: signatures
 * that share them (an RSA and an Ed25519 signature of one signer) hash the body once. */
struct body_hashes {
    struct {
        bool relaxed;
        size_t limit, length;
        unsigned char digest[32];
    } v[DKIM_VERIFY_MAX];
    size_t n;
};

/* canon_body_hash, or the same hash made before for this message. */
static bool body_hash_of(struct body_hashes *made, struct evbuffer *text, size_t off, bool relaxed, size_t limit,
                         unsigned char digest[32], size_t *length)
{
    for (size_t i = 0; i < made->n; i++)
        if (made->v[i].relaxed == relaxed && made->v[i].limit == limit) {
            memcpy(digest, made->v[i].digest, 32);
            *length = made->v[i].length;
            return true;
        }
    if (!canon_body_hash(text, off, relaxed, limit, digest, length))
        return false;
    if (made->n < DKIM_VERIFY_MAX) {
        made->v[made->n].relaxed = relaxed;
        made->v[made->n].limit = limit;
        made->v[made->n].length = *length;
        memcpy(made->v[made->n++].digest, digest, 32);
    }
    return true;
}

/* One DKIM-Signature field: checked, its body hash compared, its header fields hashed. */
static void prepare_one(struct dkim_sig *sig, const struct field *f, const struct fields *fs, struct evbuffer *text,
                        size_t body_off, long long now, struct body_hashes *made)
{
    struct tag_list t;
    const char *why = "signature field is not a tag list";
    bool header_relaxed, body_relaxed;
    unsigned char bh[64], digest[32];
    unsigned long long l = SIZE_MAX;
    size_t length = 0;
    char *value = f->len <= DKIM_FIELD_MAX ? unfolded_value(f) : NULL;
    memset(sig, 0, sizeof *sig);
    if (f->len > DKIM_FIELD_MAX) {
        dkim_verdict(sig, DKIM_R_PERMERROR, "signature field longer than 16384 octets");
    } else if (!value || !tag_list_parse(value, &t) || !check_tags(sig, &t, now, &why)) {
        dkim_verdict(sig, value ? DKIM_R_PERMERROR : DKIM_R_TEMPERROR, value ? why : "out of memory");
    } else if (!canonicalizations(tag_list_get(&t, "c"), &header_relaxed, &body_relaxed)) {
        dkim_verdict(sig, DKIM_R_PERMERROR, "unknown canonicalization in c=");
    } else if (!tag_list_get(&t, "bh") || base64_blanks(tag_list_get(&t, "bh"), bh, sizeof bh) != 32) {
        dkim_verdict(sig, DKIM_R_PERMERROR, "bh= is not a SHA-256 hash");
    } else if (tag_list_get(&t, "l") && !number(tag_list_get(&t, "l"), &l)) {
        dkim_verdict(sig, DKIM_R_PERMERROR, "l= is not a number");
    } else if (!body_hash_of(made, text, body_off, body_relaxed, (size_t)l, digest, &length) ||
               !header_digest(sig, fs, f, tag_list_get(&t, "h"), header_relaxed)) {
        dkim_verdict(sig, DKIM_R_TEMPERROR, "out of memory");
    } else if (tag_list_get(&t, "l") && l > length) {
        dkim_verdict(sig, DKIM_R_PERMERROR, "l= is longer than the body");
    } else if (memcmp(digest, bh, 32) != 0) {
        dkim_verdict(sig, DKIM_R_FAIL, "body hash did not verify");
    }
    free(value);
}

void dkim_verify_prepare(struct evbuffer *text, long long now, struct dkim_verification *v)
{
    size_t hlen, body;
    struct fields fs = {0};
    struct body_hashes made = {.n = 0};
    memset(v, 0, sizeof *v);
    canon_text_layout(text, &hlen, &body);
    const char *h = hlen ? (const char *)evbuffer_pullup(text, (ev_ssize_t)hlen) : "";
    if (!h || !split_fields(&fs, h, hlen)) {
        free(fs.v);
        return;
    }
    for (size_t i = 0; i < fs.count; i++) {
        if (!field_named(&fs.v[i], "dkim-signature"))
            continue;
        if (v->count == DKIM_VERIFY_MAX) {
            v->skipped++;
            continue;
        }
        prepare_one(&v->sigs[v->count++], &fs.v[i], &fs, text, body, now, &made);
    }
    free(fs.v);
}

bool dkim_key_name(const struct dkim_sig *sig, char *out, size_t outsz)
{
    int n = snprintf(out, outsz, "%s._domainkey.%s", sig->selector, sig->domain);
    return n > 0 && (size_t)n < outsz && (size_t)n <= ADDR_DOMAIN_MAX;
}

/* ---------- the key (RFC 6376 3.6.1) and the signature check ---------- */

/* The public key p= holds, of the type k= names; NULL with the reason. */
static EVP_PKEY *public_key(const struct dkim_sig *sig, const struct tag_list *t, const char **why)
{
    const char *k = tag_list_get(t, "k") ? tag_list_get(t, "k") : "rsa", *p = tag_list_get(t, "p");
    unsigned char der[2048];
    *why = "key record has no p=";
    if (!p)
        return NULL;
    *why = "key revoked (empty p=)";
    if (!*p)
        return NULL;
    *why = "key type does not match a=";
    if (strcasecmp(k, sig->ed25519 ? "ed25519" : "rsa") != 0)
        return NULL;
    ssize_t n = base64_blanks(p, der, sizeof der);
    *why = "p= is not a key";
    if (n <= 0)
        return NULL;
    if (sig->ed25519)
        return n == 32 ? EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, der, 32) : NULL;
    const unsigned char *q = der;
    EVP_PKEY *key = d2i_PUBKEY(NULL, &q, (long)n);
    if (!key) { /* an RSAPublicKey alone, as RFC 6376 3.6.1 literally says */
        q = der;
        key = d2i_PublicKey(EVP_PKEY_RSA, NULL, &q, (long)n);
    }
    if (key && (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA || EVP_PKEY_get_bits(key) < RSA_BITS_MIN)) {
        *why = "RSA key shorter than 1024 bits (RFC 8301)";
        EVP_PKEY_free(key);
        key = NULL;
    }
    return key;
}

/* True when the signature over sig->digest verifies with key. */
static bool signature_valid(const struct dkim_sig *sig, EVP_PKEY *key)
{
    bool ok;
    if (sig->ed25519) { /* RFC 8463 3: PureEdDSA over the SHA-256 digest */
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        ok = md && EVP_DigestVerifyInit(md, NULL, NULL, NULL, key) == 1 &&
             EVP_DigestVerify(md, sig->sig, sig->siglen, sig->digest, 32) == 1;
        EVP_MD_CTX_free(md);
        return ok;
    }
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new(key, NULL);
    ok = pc && EVP_PKEY_verify_init(pc) == 1 && EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PADDING) == 1 &&
         EVP_PKEY_CTX_set_signature_md(pc, EVP_sha256()) == 1 &&
         EVP_PKEY_verify(pc, sig->sig, sig->siglen, sig->digest, 32) == 1;
    EVP_PKEY_CTX_free(pc);
    return ok;
}

/* Checks the key record's tags against the signature; false with the reason. */
static bool key_tags_fit(struct dkim_sig *sig, const struct tag_list *t, const char **why)
{
    const char *v = tag_list_get(t, "v"), *h = tag_list_get(t, "h"), *s = tag_list_get(t, "s"), *flags = tag_list_get(t, "t");
    *why = "key record v= is not DKIM1";
    if (v && strcmp(v, "DKIM1") != 0)
        return false;
    *why = "key does not allow sha256 (h=)";
    if (h && !tag_list_has(h, "sha256"))
        return false;
    *why = "key is not for email (s=)";
    if (s && !tag_list_has(s, "*") && !tag_list_has(s, "email"))
        return false;
    sig->testing = flags && tag_list_has(flags, "y");
    *why = "key requires i= to be d= itself (t=s)";
    return !(flags && tag_list_has(flags, "s") && !sig->strict_identity);
}

void dkim_verify_key(struct dkim_sig *sig, enum dkim_key_lookup how, const unsigned char *const *rdata,
                     const int *len, int n)
{
    char name[ADDR_DOMAIN_MAX + 80];
    if (how == DKIM_KEY_TEMPFAIL) {
        dkim_verdict(sig, DKIM_R_TEMPERROR, "key lookup failed");
        return;
    }
    dkim_key_name(sig, name, sizeof name);
    char *record = malloc(DKIM_KEY_RECORD_MAX);
    const char *why = "";
    struct tag_list t = {0};
    bool found = false;
    for (int i = 0; record && how == DKIM_KEY_ANSWER && i < n && !found; i++)
        found = dns_txt_join(rdata[i], len[i], record, DKIM_KEY_RECORD_MAX) == 1 && tag_list_parse(record, &t) &&
                (tag_list_get(&t, "p") || tag_list_get(&t, "v"));
    EVP_PKEY *key = found && key_tags_fit(sig, &t, &why) ? public_key(sig, &t, &why) : NULL;
    char detail[sizeof sig->detail];
    snprintf(detail, sizeof detail, "no key at %.80s", name);
    if (!record)
        dkim_verdict(sig, DKIM_R_TEMPERROR, "out of memory");
    else if (!key)
        dkim_verdict(sig, DKIM_R_PERMERROR, found ? why : detail);
    else if (signature_valid(sig, key))
        dkim_verdict(sig, DKIM_R_PASS, "");
    else
        dkim_verdict(sig, DKIM_R_FAIL, "signature did not verify");
    EVP_PKEY_free(key);
    free(record);
}
