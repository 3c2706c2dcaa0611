/* tlsrpt_post.h - a TLS report sent to an https: address of a domain's TLSRPT record (RFC 8460
 * 5.4): POSTed as application/tlsrpt+gzip, over TLS with a certificate valid for the URL's host
 * (the outbound trust store), within a timeout; the host's addresses in turn (IPv4 first) while
 * none answers, and the whole again after a while when none answered or the server failed (5xx),
 * TLSRPT_POST_ATTEMPTS times in all. The outcome is logged (event=tls_report_posted, or
 * tls_report_post_retry, tls_report_post_failed with the reason). Loop thread. */
#ifndef POSTERN_TLSRPT_POST_H
#define POSTERN_TLSRPT_POST_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct dns;
struct tlsrpt_post;

#define TLSRPT_POST_TIMEOUT 60 /* seconds a POST may take at one address */
#define TLSRPT_POST_ATTEMPTS 3  /* attempts at the whole host before the POST is given up */

/* Starts the POST of body (len octets, copied) for domain to url, attempts retry_after seconds
 * apart; it stays in *list until it ends. False (logged) when url is no https URL or out of
 * memory. */
bool tlsrpt_post(struct event_base *base, struct dns *dns, SSL_CTX *tls, struct tlsrpt_post **list, const char *url,
                 const char *domain, const unsigned char *body, size_t len, unsigned retry_after);

/* Ends every POST still in *list (the stop). */
void tlsrpt_posts_free(struct tlsrpt_post **list);

#endif
