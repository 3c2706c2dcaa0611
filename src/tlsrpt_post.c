/* tlsrpt_post.c - see tlsrpt_post.h. A POST: the URL's host looked up, the connection made
 * (https_client.c), the request sent; the next address, the next attempt and the end are each
 * made from an event of its own, so that a connection is never freed inside one of its
 * callbacks. */
#include "tlsrpt_post.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <openssl/x509_vfy.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dns.h"
#include "https_client.h"
#include "log.h"

struct tlsrpt_post {
    struct tlsrpt_post *next, **list;
    struct event_base *base;
    SSL_CTX *tls;
    char url[512], host[256], path[512], domain[256], ip[64];
    unsigned port;
    unsigned char *body;
    size_t len;
    struct dns_query *dq;
    struct evhttp_connection *conn;
    SSL *ssl;
    struct event *done_ev;
    struct event *next_ev;       /* the next address now, or the next attempt later */
    struct sockaddr_storage addrs[DNS_MAX_TARGETS];
    size_t naddrs, tried;        /* the host's addresses, and how many this attempt tried */
    unsigned attempts;           /* made so far */
    unsigned retry_after;        /* seconds between attempts */
};

static void post_free(struct tlsrpt_post *p)
{
    struct tlsrpt_post **pp = p->list;
    while (*pp && *pp != p)
        pp = &(*pp)->next;
    if (*pp)
        *pp = p->next;
    dns_cancel(p->dq);
    if (p->conn)
        evhttp_connection_free(p->conn);
    if (p->done_ev)
        event_free(p->done_ev);
    if (p->next_ev)
        event_free(p->next_ev);
    free(p->body);
    free(p);
}

void tlsrpt_posts_free(struct tlsrpt_post **list)
{
    while (*list)
        post_free(*list);
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    post_free(arg);
}

/* Logs how the POST ended (code: the HTTP status, 0 for none) and frees it from a fresh event. */
static void finish(struct tlsrpt_post *p, int code, const char *why)
{
    char url[600], safe[300];
    log_quotable(url, sizeof url, p->url);
    if (code >= 200 && code < 300)
        log_info("event=tls_report_posted domain=%s url=\"%s\" status=%d", p->domain, url, code);
    else
        log_warn("event=tls_report_post_failed domain=%s url=\"%s\" error=\"%s\"", p->domain, url,
                 log_quotable(safe, sizeof safe, why));
    static const struct timeval now = {0, 0};
    evtimer_add(p->done_ev, &now);
}

/* The POST failed at this address (code: the HTTP status, 0 for none): the next address at
 * once when no server answered and one is left; else, for no answer or a server error (5xx),
 * the next attempt after retry_after, TLSRPT_POST_ATTEMPTS in all; else it failed for good. */
static void failed_here(struct tlsrpt_post *p, int code, const char *why)
{
    char url[600], safe[300];
    struct timeval later = {p->retry_after, 0}, now = {0, 0};
    if (code == 0 && p->tried < p->naddrs) {
        evtimer_add(p->next_ev, &now);
        return;
    }
    if ((code == 0 || code >= 500) && p->attempts < TLSRPT_POST_ATTEMPTS) {
        log_info("event=tls_report_post_retry domain=%s url=\"%s\" attempt=%u error=\"%s\" retry_in=%us", p->domain,
                 log_quotable(url, sizeof url, p->url), p->attempts, log_quotable(safe, sizeof safe, why),
                 p->retry_after);
        p->tried = 0;
        evtimer_add(p->next_ev, &later);
        return;
    }
    finish(p, code, why);
}

static void on_response(struct evhttp_request *req, void *arg)
{
    struct tlsrpt_post *p = arg;
    int code = req ? evhttp_request_get_response_code(req) : 0;
    char why[300];
    long v = p->ssl ? SSL_get_verify_result(p->ssl) : X509_V_OK;
    if (code == 0 && v != X509_V_OK)
        snprintf(why, sizeof why, "the certificate of %s is not valid: %s", p->host, X509_verify_cert_error_string(v));
    else if (code == 0)
        snprintf(why, sizeof why, "no answer from %s (refused, reset, timed out, or a failed TLS handshake)", p->ip);
    else
        snprintf(why, sizeof why, "HTTP status %d", code);
    if (code >= 200 && code < 300)
        finish(p, code, why);
    else
        failed_here(p, code, why);
}

/* Sends the POST to the next address of the host; false when out of memory. */
static bool start_post(struct tlsrpt_post *p)
{
    struct timeval timeout = {TLSRPT_POST_TIMEOUT, 0};
    struct evhttp_request *req = NULL;
    if (p->tried == 0)
        p->attempts++;
    p->conn = https_connect(p->base, p->tls, p->host, &p->addrs[p->tried++], p->port, &timeout, p->ip, sizeof p->ip,
                            &p->ssl);
    if (p->conn)
        req = evhttp_request_new(on_response, p);
    if (!req)
        return false;
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    char host[300];
    if (p->port == 443)
        snprintf(host, sizeof host, "%s", p->host);
    else /* RFC 9110 7.2: the port when it is not the scheme's */
        snprintf(host, sizeof host, "%s:%u", p->host, p->port);
    evhttp_add_header(h, "Host", host);
    evhttp_add_header(h, "Content-Type", "application/tlsrpt+gzip");
    evhttp_add_header(h, "User-Agent", "Postern TLSRPT");
    evhttp_add_header(h, "Connection", "close");
    evbuffer_add(evhttp_request_get_output_buffer(req), p->body, p->len);
    return evhttp_make_request(p->conn, req, EVHTTP_REQ_POST, p->path) == 0;
}

/* The last connection failed (or an attempt is due): it is freed, the next address tried. */
static void on_next(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct tlsrpt_post *p = arg;
    if (p->conn)
        evhttp_connection_free(p->conn);
    p->conn = NULL;
    p->ssl = NULL;
    if (!start_post(p))
        finish(p, 0, "out of memory, or the request could not be sent");
}

/* The URL's host is known: the POST to its addresses, IPv4 first, one after the other. */
static void on_host(void *arg, const struct dns_route *route)
{
    struct tlsrpt_post *p = arg;
    p->dq = NULL;
    char why[400];
    if (route->status != DNS_OK || route->ntargets == 0) {
        snprintf(why, sizeof why, "no address for %s: %s", p->host, route->error);
        finish(p, 0, why);
        return;
    }
    for (int family = AF_INET; family; family = family == AF_INET ? AF_INET6 : 0)
        for (size_t i = 0; i < route->ntargets; i++)
            if (route->targets[i].addr.ss_family == family)
                p->addrs[p->naddrs++] = route->targets[i].addr;
    if (p->naddrs == 0 || !start_post(p))
        finish(p, 0, p->naddrs ? "out of memory, or the request could not be sent" : "no usable address");
}

/* url's host, port and path (with its query) into p; false when it is no https URL. */
static bool parse_url(struct tlsrpt_post *p, const char *url)
{
    struct evhttp_uri *u = evhttp_uri_parse(url);
    const char *scheme = u ? evhttp_uri_get_scheme(u) : NULL, *host = u ? evhttp_uri_get_host(u) : NULL;
    bool ok = scheme && !strcasecmp(scheme, "https") && host && *host && strlen(host) < sizeof p->host;
    if (ok) {
        const char *path = evhttp_uri_get_path(u), *query = evhttp_uri_get_query(u);
        int port = evhttp_uri_get_port(u);
        snprintf(p->host, sizeof p->host, "%s", host);
        p->port = port > 0 ? (unsigned)port : 443;
        snprintf(p->path, sizeof p->path, "%s%s%s", path && *path ? path : "/", query ? "?" : "", query ? query : "");
    }
    if (u)
        evhttp_uri_free(u);
    return ok;
}

bool tlsrpt_post(struct event_base *base, struct dns *dns, SSL_CTX *tls, struct tlsrpt_post **list, const char *url,
                 const char *domain, const unsigned char *body, size_t len, unsigned retry_after)
{
    struct tlsrpt_post *p = calloc(1, sizeof *p);
    bool parsed = p && parse_url(p, url);
    if (parsed) {
        p->list = list;
        p->base = base;
        p->tls = tls;
        p->len = len;
        p->retry_after = retry_after;
        snprintf(p->url, sizeof p->url, "%s", url);
        snprintf(p->domain, sizeof p->domain, "%s", domain);
        p->next = *list;
        *list = p;
    }
    if (!parsed || !(p->body = malloc(len ? len : 1)) || !(p->done_ev = evtimer_new(base, on_done, p)) ||
        !(p->next_ev = evtimer_new(base, on_next, p)) ||
        !(p->dq = dns_resolve_host(dns, p->host, on_host, p))) {
        char safe[600];
        log_warn("event=tls_report_post_failed domain=%s url=\"%s\" error=\"%s\"", domain,
                 log_quotable(safe, sizeof safe, url), parsed ? "out of memory" : "not an https URL");
        if (parsed)
            post_free(p);
        else
            free(p);
        return false;
    }
    memcpy(p->body, body, len);
    return true;
}
