/* tlsrpt_post.h - a TLS report sent to an https: address of a domain's TLSRPT record (RFC 8460
 * 5.4): POSTed as application/tlsrpt+gzip, over TLS with a certificate valid for the URL's host
 * (the outbound trust store), the first address of the host, within a timeout. The outcome is
 * logged (event=tls_report_posted, or tls_report_post_failed with the reason); nothing is
 * retried. Loop thread. */
#ifndef POSTERN_TLSRPT_POST_H
#define POSTERN_TLSRPT_POST_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct dns;
struct tlsrpt_post;

#define TLSRPT_POST_TIMEOUT 60 /* seconds a POST may take, the host's lookup included */

/* Starts the POST of body (len octets, copied) for domain to url; it stays in *list until it
 * ends. False (logged) when url is no https URL or out of memory. */
bool tlsrpt_post(struct event_base *base, struct dns *dns, SSL_CTX *tls, struct tlsrpt_post **list, const char *url,
                 const char *domain, const unsigned char *body, size_t len);

/* Ends every POST still in *list (the stop). */
void tlsrpt_posts_free(struct tlsrpt_post **list);

#endif
