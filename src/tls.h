/* tls.h - the server's TLS context (OpenSSL) built from the configuration, and small helpers.
 * The connection side (handshake, records) is libevent's OpenSSL bufferevent. */
#ifndef POSTERN_TLS_H
#define POSTERN_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

/* Builds the context from tls_cert, tls_key, tls_min_version, tls_ciphers. NULL when TLS is not
 * configured (no error) or on an error, which is added to errs naming file:line: key. */
SSL_CTX *tls_context_new(const struct config *cfg, struct config_errors *errs);

/* The outbound (client) context: TLS 1.2 or newer. Without smtp_tls_verify certificates are not
 * checked (opportunistic, RFC 7435: encryption without authentication beats cleartext); with it
 * the peer must present a chain to smtp_tls_ca_file (or the system CAs). NULL when outbound TLS is
 * off (smtp_tls and smtp_tls_verify no: no error) or on an error, added to errs naming file:line:
 * key - a CA file that cannot be read or holds no certificate is found by check-config. */
SSL_CTX *tls_client_context_new(const struct config *cfg, struct config_errors *errs);

/* Both contexts, made from the configuration before the server starts; owned by main. */
struct tls_contexts {
    SSL_CTX *server; /* listeners' STARTTLS and implicit TLS: NULL when tls_cert is unset */
    SSL_CTX *client; /* outbound relay: NULL when smtp_tls and smtp_tls_verify are no */
};

void tls_contexts_free(struct tls_contexts *t);

/* Logs what is wrong with the server certificate although it loads (event=config_warning
 * key=tls_cert): expired or not yet valid, expiring within CERT_RENEW_DAYS, or not naming
 * hostname - clients that check certificates (submission clients, MTA-STS senders) refuse it. */
#define CERT_RENEW_DAYS 14
void tls_certificate_warnings(SSL_CTX *server, const char *hostname);

/* The same checks of one certificate against name, said under key (tls_cert, tls_sni). */
typedef struct x509_st X509;
void tls_check_certificate(X509 *cert, const char *key, const char *name);

/* tls_sni.c: the tls_sni table's certificates on the main context (a servername callback picks
 * one per name the client asks for); false with the errors added, naming the table's lines.
 * tls_sni_warnings: tls_check_certificate of each against its name. */
bool tls_sni_load(SSL_CTX *main, const struct config *cfg, struct config_errors *errs);
void tls_sni_warnings(SSL_CTX *main);

/* Calls fn with each tls_sni name (lower case; "*.domain" for a wildcard) and its context. */
void tls_sni_each(SSL_CTX *main, void (*fn)(void *arg, const char *name, SSL_CTX *ctx), void *arg);

/* "TLSv1.3:TLS_AES_256_GCM_SHA384" style text for logs and Received headers. */
void tls_describe(SSL *ssl, char *out, size_t outsz);

/* The last OpenSSL error queued for this thread, as text (for logs); clears the queue. */
const char *tls_last_error(char *buf, size_t bufsz);

#endif
