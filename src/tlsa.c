/* tlsa.c - `postern tlsa-record`: the DANE TLSA records (RFC 7672, RFC 6698) that let senders
 * which validate DNSSEC insist on TLS with this server's key. Per name the server answers for -
 * hostname with tls_cert, each tls_sni name with its own - one "3 1 1" record (DANE-EE: the
 * SHA-256 of the certificate's public key) and, when the certificate file also holds the CA
 * certificate that issued it, one "2 1 1" record of that CA's key (DANE-TA: still valid after a
 * renewal with a new key from the same CA). Port 25: where MX senders look. */
#include "tlsa.h"

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* Prints the SHA-256 of cert's SubjectPublicKeyInfo in lower-case hex; false when it cannot. */
static bool print_spki_sha256(FILE *out, X509 *cert)
{
    unsigned char *der = NULL, md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
    bool ok = len > 0 && EVP_Digest(der, (size_t)len, md, &mdlen, EVP_sha256(), NULL) == 1;
    OPENSSL_free(der);
    for (unsigned int i = 0; ok && i < mdlen; i++)
        fprintf(out, "%02x", md[i]);
    return ok;
}

/* The CA certificate in ctx's chain that issued its certificate, or NULL. */
static X509 *issuer_in_chain(SSL_CTX *ctx, X509 *leaf)
{
    STACK_OF(X509) *chain = NULL;
    if (SSL_CTX_get0_chain_certs(ctx, &chain) != 1 || !chain)
        return NULL;
    for (int i = 0; i < sk_X509_num(chain); i++)
        if (X509_check_issued(sk_X509_value(chain, i), leaf) == X509_V_OK)
            return sk_X509_value(chain, i);
    return NULL;
}

/* The records for one name and the certificate its clients get (ctx's). */
static bool print_name(FILE *out, SSL_CTX *ctx, const char *name, const char *key)
{
    X509 *leaf = SSL_CTX_get0_certificate(ctx);
    if (!leaf)
        return false;
    X509 *ca = issuer_in_chain(ctx, leaf);
    fprintf(out, "; %s (%s): its own key - 3 1 1 stays valid while the key does: keep the key when "
                 "renewing, or publish the new record before the switch\n_25._tcp.%s. IN TLSA 3 1 1 ",
            name, key, name);
    bool ok = print_spki_sha256(out, leaf);
    fprintf(out, "\n");
    if (ca) {
        fprintf(out, "; the key of the CA that issued it - 2 1 1 survives a new key from that CA, as long "
                     "as the file keeps sending the CA's certificate\n_25._tcp.%s. IN TLSA 2 1 1 ",
                name);
        ok = print_spki_sha256(out, ca) && ok;
        fprintf(out, "\n");
    } else {
        fprintf(out, "; no certificate of its issuer in the file: no 2 1 1 record (add the CA's "
                     "certificate after the server's to have one)\n");
    }
    return ok;
}

struct sni_print {
    FILE *out;
    bool ok;
};

static void print_sni_name(void *arg, const char *name, SSL_CTX *ctx)
{
    struct sni_print *p = arg;
    if (name[0] == '*') {
        fprintf(p->out, "; %s (tls_sni): a wildcard - publish the records under each name it serves\n", name);
        return;
    }
    p->ok = print_name(p->out, ctx, name, "tls_sni") && p->ok;
}

int tlsa_print_records(FILE *out, SSL_CTX *server, const char *hostname)
{
    if (!server) {
        fprintf(stderr, "postern: no TLS certificate (tls_cert is not set): no TLSA record to publish\n");
        return 1;
    }
    fprintf(out, "; DANE (RFC 7672): publish these in the DNSSEC-signed zone of each name; senders "
                 "that validate DNSSEC then refuse to send in cleartext or to another key\n");
    struct sni_print p = {out, print_name(out, server, hostname, "tls_cert")};
    tls_sni_each(server, print_sni_name, &p);
    return p.ok ? 0 : 1;
}
