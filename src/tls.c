/* tls.c - one SSL_CTX for all TLS listeners: certificate chain + key, minimum version, cipher list,
 * no compression, no renegotiation, server cipher preference. */
#include "tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>

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
    const char *bad_key = NULL;
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != 1)
        bad_key = "tls_cert";
    else if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key, SSL_FILETYPE_PEM) != 1 ||
             SSL_CTX_check_private_key(ctx) != 1)
        bad_key = "tls_key";
    else if (SSL_CTX_set_min_proto_version(ctx, version_number(cfg->tls_min_version)) != 1)
        bad_key = "tls_min_version";
    else if (SSL_CTX_set_cipher_list(ctx, cfg->tls_ciphers) != 1)
        bad_key = "tls_ciphers";
    if (bad_key) {
        config_errors_add(errs, "%s:%d: %s: %s", cfg->path, config_key_line(cfg, bad_key), bad_key,
                          tls_last_error(why, sizeof why));
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (version_number(cfg->tls_min_version) < TLS1_2_VERSION)
        SSL_CTX_set_security_level(ctx, 0); /* OpenSSL 3 refuses TLS 1.0/1.1 at the default level */
    return ctx;
}

void tls_describe(SSL *ssl, char *out, size_t outsz)
{
    if (!ssl) {
        snprintf(out, outsz, "none");
        return;
    }
    snprintf(out, outsz, "%s:%s", SSL_get_version(ssl), SSL_get_cipher_name(ssl));
}

SSL_CTX *tls_client_context_new(const struct config *cfg)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (!cfg->smtp_tls_verify) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
        return ctx;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    int ok = *cfg->smtp_tls_ca_file ? SSL_CTX_load_verify_locations(ctx, cfg->smtp_tls_ca_file, NULL)
                                    : SSL_CTX_set_default_verify_paths(ctx);
    if (ok != 1) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}
