/* tls_sni.c - a certificate per name the client asks for (TLS SNI, RFC 6066 3): a server that
 * takes mail for several domains shows users of each a certificate with their own mail host's
 * name. tls_sni is a table of "name certfile keyfile" lines; name is a host name or "*.domain"
 * (any one label before domain). A name the table does not list, or no name, gets tls_cert.
 * Each line's context hangs off the main context (ex_data) and is freed with it, so a reload,
 * which builds a new main context, replaces the whole table. */
#include "tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "address.h"
#include "log.h"

#define SNI_NAMES_MAX 1000

struct sni_entry {
    char *name;      /* lower case; "*.domain" for a wildcard */
    SSL_CTX *ctx;
};

struct sni_table {
    struct sni_entry *entries;
    size_t count;
    const struct config *cfg;  /* while loading only */
    SSL_CTX *main;             /* while loading only */
};

static int sni_index = -1;

static void sni_table_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    struct sni_table *t = ptr;
    if (!t)
        return;
    for (size_t i = 0; i < t->count; i++) {
        free(t->entries[i].name);
        SSL_CTX_free(t->entries[i].ctx);
    }
    free(t->entries);
    free(t);
}

/* The entry for the name a client sent: its own, else the wildcard of its parent domain. */
static const struct sni_entry *sni_find(const struct sni_table *t, const char *name)
{
    const char *dot = strchr(name, '.');
    for (size_t i = 0; i < t->count; i++)
        if (strcasecmp(t->entries[i].name, name) == 0)
            return &t->entries[i];
    for (size_t i = 0; dot && i < t->count; i++)
        if (t->entries[i].name[0] == '*' && strcasecmp(t->entries[i].name + 1, dot) == 0)
            return &t->entries[i];
    return NULL;
}

/* OpenSSL's servername callback: switch the connection to the name's certificate. */
static int on_servername(SSL *ssl, int *alert, void *arg)
{
    (void)alert;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    const struct sni_entry *e = name ? sni_find(arg, name) : NULL;
    if (e && !SSL_set_SSL_CTX(ssl, e->ctx))
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    return SSL_TLSEXT_ERR_OK;
}

/* A certificate context like the main one, for cert and key. NULL with why (OpenSSL's reason). */
static SSL_CTX *entry_context(const struct sni_table *t, const char *cert, const char *key, char *why, size_t whysz)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx) {
        SSL_CTX_set_options(ctx, SSL_CTX_get_options(t->main));
        SSL_CTX_set_mode(ctx, SSL_CTX_get_mode(t->main));
        SSL_CTX_set_security_level(ctx, SSL_CTX_get_security_level(t->main));
        if (SSL_CTX_set_min_proto_version(ctx, SSL_CTX_get_min_proto_version(t->main)) == 1 &&
            SSL_CTX_set_cipher_list(ctx, t->cfg->tls_ciphers) == 1 &&
            SSL_CTX_use_certificate_chain_file(ctx, cert) == 1 &&
            SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) == 1 && SSL_CTX_check_private_key(ctx) == 1)
            return ctx;
    }
    tls_last_error(why, whysz);
    SSL_CTX_free(ctx);
    return NULL;
}

/* A name the table may hold: a host name, or "*." and a domain. */
static bool sni_name_valid(const char *name)
{
    bool utf8 = false;
    const char *host = strncmp(name, "*.", 2) == 0 ? name + 2 : name;
    return strchr(host, '.') && address_parse_domain(host, strlen(host), &utf8) == ADDR_OK && !utf8 && *host != '[';
}

/* One "name certfile keyfile" line. */
static bool sni_line(void *arg, char **f, int n, int lineno, const char **err)
{
    (void)lineno;
    struct sni_table *t = arg;
    static char why[300];
    if (n != 3) {
        *err = "expected 'name certfile keyfile'";
        return false;
    }
    if (!sni_name_valid(f[0])) {
        *err = "not a host name or *.domain (ASCII)";
        return false;
    }
    for (char *p = f[0]; *p; p++)
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    const struct sni_entry *same = sni_find(t, f[0]); /* an exact entry, or a wildcard covering it */
    if (same && strcmp(same->name, f[0]) == 0) {
        *err = "listed twice";
        return false;
    }
    if (t->count == SNI_NAMES_MAX) {
        *err = "more than 1000 names";
        return false;
    }
    char reason[256];
    SSL_CTX *ctx = entry_context(t, f[1], f[2], reason, sizeof reason);
    if (!ctx) {
        snprintf(why, sizeof why, "cannot use %.100s and %.100s: %s", f[1], f[2], reason);
        *err = why;
        return false;
    }
    struct sni_entry *grown = realloc(t->entries, (t->count + 1) * sizeof *grown);
    if (!grown || !(grown[t->count].name = strdup(f[0]))) {
        if (grown)
            t->entries = grown;
        SSL_CTX_free(ctx);
        *err = "out of memory";
        return false;
    }
    t->entries = grown;
    t->entries[t->count++].ctx = ctx;
    return true;
}

bool tls_sni_load(SSL_CTX *main, const struct config *cfg, struct config_errors *errs)
{
    if (!*cfg->tls_sni)
        return true;
    if (sni_index < 0)
        sni_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, sni_table_free);
    struct sni_table *t = calloc(1, sizeof *t);
    if (!t || sni_index < 0 || !SSL_CTX_set_ex_data(main, sni_index, t)) {
        free(t);
        config_errors_add(errs, "%s:%d: tls_sni: out of memory", cfg->path, config_key_line(cfg, "tls_sni"));
        return false;
    }
    size_t before = errs->count;
    t->cfg = cfg;
    t->main = main;
    config_table_read(cfg, "tls_sni", cfg->tls_sni, sni_line, t, errs);
    t->cfg = NULL;
    t->main = NULL;
    SSL_CTX_set_tlsext_servername_callback(main, on_servername);
    SSL_CTX_set_tlsext_servername_arg(main, t);
    return errs->count == before;
}

/* tls_sni_each's work for tls_sni_warnings: one entry's certificate checked against its name (a
 * wildcard's against a name it covers). */
static void warn_entry(void *arg, const char *name, SSL_CTX *ctx)
{
    (void)arg;
    char host[300];
    snprintf(host, sizeof host, "%s%s", name[0] == '*' ? "www" : "", name[0] == '*' ? name + 1 : name);
    tls_check_certificate(SSL_CTX_get0_certificate(ctx), "tls_sni", host);
}

void tls_sni_warnings(SSL_CTX *main)
{
    tls_sni_each(main, warn_entry, NULL);
}

void tls_sni_each(SSL_CTX *main, void (*fn)(void *arg, const char *name, SSL_CTX *ctx), void *arg)
{
    const struct sni_table *t = main && sni_index >= 0 ? SSL_CTX_get_ex_data(main, sni_index) : NULL;
    for (size_t i = 0; t && i < t->count; i++)
        fn(arg, t->entries[i].name, t->entries[i].ctx);
}
