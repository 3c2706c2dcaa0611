/* tls.c - one SSL_CTX for all TLS listeners: certificate chain + key, minimum version, cipher list,
 * no compression, no renegotiation, server cipher preference. */
#include "tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"

static int version_number(const char *name)
{
    if (strcmp(name, "TLSv1") == 0)
        return TLS1_VERSION;
    if (strcmp(name, "TLSv1.1") == 0)
        return TLS1_1_VERSION;
    if (strcmp(name, "TLSv1.3") == 0)
        return TLS1_3_VERSION;
    return TLS1_2_VERSION;
}

const char *tls_last_error(char *buf, size_t bufsz)
{
    unsigned long e = ERR_get_error();
    if (!e)
        snprintf(buf, bufsz, "no OpenSSL error queued");
    else
        ERR_error_string_n(e, buf, bufsz);
    ERR_clear_error();
    return buf;
}

/* The first queued OpenSSL error's reason ("no start line", "key values mismatch"): OpenSSL's whole
 * string ("error:0480006C:PEM routines::no start line") says nothing more to an administrator. */
static const char *error_reason(char *buf, size_t bufsz)
{
    unsigned long e = ERR_peek_error(); /* the first: the cause, not the layers above it */
    const char *reason = e ? ERR_reason_error_string(e) : NULL;
    if (reason)
        snprintf(buf, bufsz, "%s", reason);
    else
        tls_last_error(buf, bufsz);
    ERR_clear_error();
    return buf;
}

/* Adds "FILE:LINE: KEY: cannot use PATH: <OpenSSL's reason>" (path NULL: no file named). */
static void unusable(const struct config *cfg, const char *key, const char *path, struct config_errors *errs)
{
    char why[256];
    error_reason(why, sizeof why);
    config_errors_add(errs, "%s:%d: %s: %s%s%s%s", cfg->path, config_key_line(cfg, key), key, path ? "cannot use " : "",
                      path ? path : "", path ? ": " : "", why);
}

/* Loads certificate chain and key and checks they are a pair; false with the error added. */
static bool load_pair(SSL_CTX *ctx, const struct config *cfg, struct config_errors *errs)
{
    if (!config_file_readable(cfg, "tls_cert", cfg->tls_cert, errs))
        return false;
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != 1) {
        unusable(cfg, "tls_cert", cfg->tls_cert, errs);
        return false;
    }
    if (!config_file_readable(cfg, "tls_key", cfg->tls_key, errs))
        return false;
    if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        unusable(cfg, "tls_key", cfg->tls_key, errs);
        return false;
    }
    return true;
}

SSL_CTX *tls_context_new(const struct config *cfg, struct config_errors *errs)
{
    if (!*cfg->tls_cert)
        return NULL;
    char why[256];
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        config_errors_add(errs, "%s: tls: cannot create a TLS context: %s", cfg->path, tls_last_error(why, sizeof why));
        return NULL;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS); /* idle connections keep no record buffers */
    bool ok = load_pair(ctx, cfg, errs);
    if (ok && SSL_CTX_set_min_proto_version(ctx, version_number(cfg->tls_min_version)) != 1) {
        unusable(cfg, "tls_min_version", NULL, errs);
        ok = false;
    } else if (ok && SSL_CTX_set_cipher_list(ctx, cfg->tls_ciphers) != 1) {
        unusable(cfg, "tls_ciphers", NULL, errs);
        ok = false;
    }
    if (!ok) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (version_number(cfg->tls_min_version) < TLS1_2_VERSION)
        SSL_CTX_set_security_level(ctx, 0); /* OpenSSL 3 refuses TLS 1.0/1.1 at the default level */
    if (!tls_sni_load(ctx, cfg, errs)) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* An ASN.1 time as "2026-12-02 19:00 UTC". */
static void cert_date(const ASN1_TIME *t, char *out, size_t outsz)
{
    struct tm tm;
    if (ASN1_TIME_to_tm(t, &tm) != 1 || !strftime(out, outsz, "%Y-%m-%d %H:%M UTC", &tm))
        snprintf(out, outsz, "an unreadable date");
}

void tls_check_certificate(X509 *cert, const char *key, const char *name)
{
    if (!cert)
        return;
    const ASN1_TIME *not_before = X509_get0_notBefore(cert), *not_after = X509_get0_notAfter(cert);
    char when[48], which[300] = "the certificate";
    int days = 0, secs = 0;
    if (strcmp(key, "tls_cert") != 0)
        snprintf(which, sizeof which, "the certificate for %s", name);
    if (X509_cmp_current_time(not_before) > 0) {
        cert_date(not_before, when, sizeof when);
        log_warn("event=config_warning key=%s detail=\"%s is not valid before %s: clients that check certificates "
                 "refuse it until then\"", key, which, when);
    }
    cert_date(not_after, when, sizeof when);
    if (X509_cmp_current_time(not_after) < 0)
        log_warn("event=config_warning key=%s detail=\"%s expired on %s: clients that check certificates refuse it; "
                 "renew it, then reload (SIGHUP)\"", key, which, when);
    else if (ASN1_TIME_diff(&days, &secs, NULL, not_after) == 1 && days < CERT_RENEW_DAYS)
        log_warn("event=config_warning key=%s detail=\"%s expires on %s, in %d day%s: renew it, then reload "
                 "(SIGHUP)\"", key, which, when, days, days == 1 ? "" : "s");
    if (X509_check_host(cert, name, 0, 0, NULL) != 1)
        log_warn("event=config_warning key=%s detail=\"%s does not name %s%s: clients that check the name (mail "
                 "programs, MTA-STS senders) refuse it\"", key, which, strcmp(key, "tls_cert") == 0 ? "hostname " : "",
                 name);
}

void tls_certificate_warnings(SSL_CTX *server, const char *hostname)
{
    tls_check_certificate(server ? SSL_CTX_get0_certificate(server) : NULL, "tls_cert", hostname);
    tls_sni_warnings(server);
}

void tls_contexts_free(struct tls_contexts *t)
{
    SSL_CTX_free(t->server);
    SSL_CTX_free(t->client);
    t->server = t->client = NULL;
}

void tls_describe(SSL *ssl, char *out, size_t outsz)
{
    if (!ssl) {
        snprintf(out, outsz, "none");
        return;
    }
    snprintf(out, outsz, "%s:%s", SSL_get_version(ssl), SSL_get_cipher_name(ssl));
}

SSL_CTX *tls_client_context_new(const struct config *cfg, struct config_errors *errs)
{
    bool verifies = cfg->smtp_tls_verify || *cfg->smtp_tls_policy || /* some destination may be verified */
                    ((cfg->smtp_mta_sts || cfg->tls_reports) && cfg->smtp_tls);
    if (!cfg->smtp_tls && !verifies)
        return NULL;
    char why[256];
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        config_errors_add(errs, "%s: smtp_tls: cannot create a TLS context: %s", cfg->path,
                          tls_last_error(why, sizeof why));
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (SSL_CTX_dane_enable(ctx) <= 0) { /* DANE is switched on per connection (smtp_client_tls.c) */
        config_errors_add(errs, "%s: smtp_dane: cannot set up DANE: %s", cfg->path, tls_last_error(why, sizeof why));
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL); /* each connection that verifies says so (smtp_client_tls.c) */
    if (!verifies)
        return ctx;
    const char *ca = cfg->smtp_tls_ca_file;
    if (*ca && !config_file_readable(cfg, "smtp_tls_ca_file", ca, errs)) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    if ((*ca ? SSL_CTX_load_verify_locations(ctx, ca, NULL) : SSL_CTX_set_default_verify_paths(ctx)) != 1) {
        unusable(cfg, *ca                     ? "smtp_tls_ca_file"
                      : cfg->smtp_tls_verify  ? "smtp_tls_verify"
                      : *cfg->smtp_tls_policy ? "smtp_tls_policy"
                      : cfg->smtp_mta_sts     ? "smtp_mta_sts"
                                              : "tls_reports",
                 *ca ? ca : "the system's CA store", errs);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}
