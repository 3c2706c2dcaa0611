/* mta_sts_fetch.c - see mta_sts_fetch.h. One lookup: the TXT question, then, when the record's id
 * is not the cached policy's, the address of mta-sts.<domain> and the HTTPS GET (libevent's
 * evhttp over an OpenSSL bufferevent). A cancelled lookup is kept until it ends on its own (its
 * answer is still cached); mta_sts_free ends those left. */
#include "mta_sts_fetch.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <openssl/x509_vfy.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "dns.h"
#include "fileio.h"
#include "https_client.h"
#include "log.h"
#include "workq.h"

struct cached_policy {
    char domain[256];
    char id[MTA_STS_ID_MAX + 1];
    time_t expires;
    struct mta_sts_policy policy;
};

struct mta_sts_query {
    struct mta_sts *m;
    struct mta_sts_query *next;     /* in m->queries */
    char domain[256], host[300];    /* host: mta-sts.<domain> */
    char id[MTA_STS_ID_MAX + 1];    /* the record's id, being fetched */
    unsigned timeout;
    mta_sts_cb cb;                  /* NULL once cancelled, or for a refresh */
    bool refresh;                   /* a cached policy fetched again in the background */
    void *arg;
    struct dns_query *dq;
    struct sockaddr_storage addrs[DNS_MAX_TARGETS]; /* of host, tried in turn */
    size_t naddrs, tried;
    struct timespec deadline;       /* the whole fetch's, over every address (monotonic) */
    char ip[64];                    /* the address being tried */
    struct evhttp_connection *conn;
    SSL *ssl;                       /* the connection's (owned by it) */
    enum evhttp_request_error http_error;
    bool http_failed;
    struct event *done_ev;          /* ends the query outside libevent's callbacks */
    struct event *next_ev;          /* tries the next address, outside them too */
    bool has_result;
    struct mta_sts_policy result;   /* a copy: the cache may move before done_ev runs */
};

struct mta_sts {
    struct event_base *base;
    struct dns *dns;
    SSL_CTX *tls;
    char *path;                     /* the cache's file */
    struct workq *saver;            /* one thread: the file's writes land in order */
    struct cached_policy *cache;
    size_t ncache, capcache;
    unsigned long long fetched, fetch_failed; /* for the metrics */
    struct mta_sts_query *queries;
};

static void cache_load(struct mta_sts *m);

bool mta_sts_applies(const struct config *cfg, const struct next_hop *hop)
{
    return cfg->smtp_mta_sts && cfg->smtp_tls && hop->mx && !hop->configured && !hop->lmtp;
}

struct mta_sts *mta_sts_new(struct event_base *base, struct dns *dns, SSL_CTX *tls, const char *cache_path)
{
    struct mta_sts *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    *m = (struct mta_sts){.base = base, .dns = dns, .tls = tls};
    if (!cache_path)
        return m; /* memory only */
    m->path = strdup(cache_path);
    m->saver = workq_new(base, 1, "mta-sts-cache");
    if (!m->path || !m->saver) {
        mta_sts_free(m);
        return NULL;
    }
    cache_load(m);
    return m;
}

static void query_free(struct mta_sts_query *q)
{
    struct mta_sts_query **pp = &q->m->queries;
    while (*pp && *pp != q)
        pp = &(*pp)->next;
    if (*pp)
        *pp = q->next;
    dns_cancel(q->dq);
    if (q->conn)
        evhttp_connection_free(q->conn);
    if (q->done_ev)
        event_free(q->done_ev);
    if (q->next_ev)
        event_free(q->next_ev);
    free(q);
}

void mta_sts_free(struct mta_sts *m)
{
    if (!m)
        return;
    while (m->queries)
        query_free(m->queries);
    if (m->saver)
        workq_free(m->saver); /* the last write finishes first */
    free(m->path);
    free(m->cache);
    free(m);
}

void mta_sts_get_stats(const struct mta_sts *m, struct mta_sts_stats *st)
{
    *st = (struct mta_sts_stats){0};
    if (m)
        *st = (struct mta_sts_stats){.cached = m->ncache, .fetched = m->fetched, .fetch_failed = m->fetch_failed};
}

void mta_sts_cancel(struct mta_sts_query *q)
{
    if (q)
        q->cb = NULL;
}

/* ---------- the cache ---------- */

static struct cached_policy *cache_find(struct mta_sts *m, const char *domain)
{
    time_t now = time(NULL);
    for (size_t i = 0; i < m->ncache; i++)
        if (!strcmp(m->cache[i].domain, domain))
            return m->cache[i].expires > now ? &m->cache[i] : NULL;
    return NULL;
}

/* The slot for domain: its own, a free one, or - the cache full - the one that expires first. */
static struct cached_policy *cache_slot(struct mta_sts *m, const char *domain)
{
    for (size_t i = 0; i < m->ncache; i++)
        if (!strcmp(m->cache[i].domain, domain))
            return &m->cache[i];
    if (m->ncache == m->capcache && m->capcache < MTA_STS_CACHE_MAX) {
        size_t cap = m->capcache ? m->capcache * 2 : 16;
        cap = cap < MTA_STS_CACHE_MAX ? cap : MTA_STS_CACHE_MAX;
        struct cached_policy *grown = realloc(m->cache, cap * sizeof *grown);
        if (grown)
            m->cache = grown, m->capcache = cap;
    }
    if (m->ncache < m->capcache)
        return &m->cache[m->ncache++];
    struct cached_policy *first = m->cache;
    for (size_t i = 1; i < m->ncache; i++)
        if (m->cache[i].expires < first->expires)
            first = &m->cache[i];
    return m->ncache ? first : NULL;
}

/* ---------- the cache's file ----------
 * A line per domain: "domain id expires mode max_age mx..." (expires in seconds since the epoch).
 * Read back through mta_sts_policy_parse, as a fetched policy is: the file is trusted no more. */

/* One line of the file into e; false when it is not one, or expired. */
static bool cache_line(char *line, struct cached_policy *e)
{
    char *save = NULL, *f[3 + 2 + MTA_STS_MX_MAX];
    size_t n = 0;
    for (char *t = strtok_r(line, " \n", &save); t && n < sizeof f / sizeof *f; t = strtok_r(NULL, " \n", &save))
        f[n++] = t;
    char record[64], policy[MTA_STS_MX_MAX * 270 + 100], why[200];
    if (n < 5 || strlen(f[0]) >= sizeof e->domain || strlen(f[1]) > MTA_STS_ID_MAX)
        return false;
    snprintf(record, sizeof record, "v=STSv1; id=%s;", f[1]);
    char *end;
    long long expires = strtoll(f[2], &end, 10);
    if (*end || expires <= (long long)time(NULL) || !mta_sts_record_id(record, e->id))
        return false;
    size_t o = (size_t)snprintf(policy, sizeof policy, "version: STSv1\nmode: %s\nmax_age: %s\n", f[3], f[4]);
    for (size_t i = 5; i < n && o < sizeof policy; i++)
        o += (size_t)snprintf(policy + o, sizeof policy - o, "mx: %s\n", f[i]);
    if (o >= sizeof policy || !mta_sts_policy_parse(policy, o, &e->policy, why, sizeof why))
        return false;
    snprintf(e->domain, sizeof e->domain, "%s", f[0]);
    e->expires = (time_t)expires;
    return true;
}

static void cache_load(struct mta_sts *m)
{
    FILE *f = fopen(m->path, "r");
    if (!f)
        return; /* none yet */
    char *line = NULL;
    size_t cap = 0, dropped = 0;
    while (getline(&line, &cap, f) > 0) {
        struct cached_policy e;
        struct cached_policy *slot = cache_line(line, &e) ? cache_slot(m, e.domain) : NULL;
        if (slot)
            *slot = e;
        else
            dropped++;
    }
    free(line);
    fclose(f);
    log_info("event=mta_sts_cache_loaded path=%s policies=%zu dropped=%zu", m->path, m->ncache, dropped);
}

bool mta_sts_cache_read(const char *path, const char *domain, struct mta_sts_policy *policy, time_t *expires)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    struct cached_policy e;
    bool found = false;
    while (f && !found && getline(&line, &cap, f) > 0)
        found = cache_line(line, &e) && strcasecmp(e.domain, domain) == 0;
    free(line);
    if (f)
        fclose(f);
    if (found) {
        *policy = e.policy;
        *expires = e.expires;
    }
    return found;
}

struct cache_write {
    char *path, *text;
    size_t len;
};

/* Disk thread: the file replaced whole (written beside it, flushed, renamed over it). */
static void write_cache(void *arg)
{
    struct cache_write *w = arg;
    if (file_replace(w->path, w->text, w->len) < 0)
        log_warn("event=mta_sts_cache_unwritable path=%s error=\"%s\"", w->path, strerror(errno));
}

static void cache_written(void *arg)
{
    struct cache_write *w = arg;
    free(w->path);
    free(w->text);
    free(w);
}

/* Hands the cache's unexpired policies to the saver thread as the file's new text. */
static void cache_save(struct mta_sts *m)
{
    struct cache_write *w = calloc(1, sizeof *w);
    struct evbuffer *b = evbuffer_new();
    time_t now = time(NULL);
    for (size_t i = 0; b && i < m->ncache; i++) {
        const struct cached_policy *e = &m->cache[i];
        if (e->expires <= now)
            continue;
        evbuffer_add_printf(b, "%s %s %lld %s %u", e->domain, e->id, (long long)e->expires,
                            mta_sts_mode_name(e->policy.mode), e->policy.max_age);
        for (size_t k = 0; k < e->policy.nmx; k++)
            evbuffer_add_printf(b, " %s", e->policy.mx[k]);
        evbuffer_add(b, "\n", 1);
    }
    if (w && b) {
        w->len = evbuffer_get_length(b);
        w->path = strdup(m->path);
        w->text = malloc(w->len + 1);
    }
    if (w && w->path && w->text) {
        evbuffer_remove(b, w->text, w->len);
        workq_submit(m->saver, write_cache, cache_written, w);
    } else if (w) {
        cache_written(w); /* out of memory: the file stays as it was */
    }
    if (b)
        evbuffer_free(b);
}

/* ---------- ending a query ---------- */

static void on_done(evutil_socket_t fd, short what, void *arg);
static void on_next_address(evutil_socket_t fd, short what, void *arg);

/* A query for domain, listed in m (its end's event made now: finish never allocates). */
static struct mta_sts_query *query_new(struct mta_sts *m, const char *domain, unsigned timeout)
{
    struct mta_sts_query *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->m = m;
    q->timeout = timeout;
    snprintf(q->domain, sizeof q->domain, "%s", domain);
    q->done_ev = evtimer_new(m->base, on_done, q);
    q->next_ev = evtimer_new(m->base, on_next_address, q);
    if (!q->done_ev || !q->next_ev) {
        if (q->done_ev)
            event_free(q->done_ev);
        if (q->next_ev)
            event_free(q->next_ev);
        free(q);
        return NULL;
    }
    q->next = m->queries;
    m->queries = q;
    return q;
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct mta_sts_query *q = arg;
    if (q->cb)
        q->cb(q->arg, q->has_result && q->result.mode != MTA_STS_NONE ? &q->result : NULL);
    query_free(q);
}

/* Answers with policy (NULL: none) from a fresh event: never from inside a DNS or HTTP callback,
 * whose objects query_free frees. */
static void finish(struct mta_sts_query *q, const struct mta_sts_policy *policy, const char *source)
{
    q->has_result = policy != NULL;
    if (policy) {
        q->result = *policy;
        log_info("event=mta_sts domain=%s policy=%s mode=%s mx_patterns=%zu max_age=%u", q->domain, source,
                 mta_sts_mode_name(policy->mode), policy->nmx, policy->max_age);
    }
    static const struct timeval now = {0, 0};
    evtimer_add(q->done_ev, &now);
}

/* The fetch failed (why): the cached policy if there is one, else none. */
static void fetch_failed(struct mta_sts_query *q, const char *why)
{
    const struct cached_policy *c = cache_find(q->m, q->domain);
    char safe[400];
    q->m->fetch_failed++;
    log_warn("event=mta_sts_fetch_failed domain=%s url=\"https://%s/.well-known/mta-sts.txt\" cached=%s error=\"%s\"",
             q->domain, q->host, c ? "yes" : "no", log_quotable(safe, sizeof safe, why));
    finish(q, c ? &c->policy : NULL, "cached");
}

/* ---------- the HTTPS fetch ---------- */

static void on_http_error(enum evhttp_request_error error, void *arg)
{
    struct mta_sts_query *q = arg;
    q->http_failed = true;
    q->http_error = error;
}

/* The time left of the fetch's deadline; false when less than MIN_ATTEMPT_MS is: too little to try
 * an address in, and - libevent's timers run on a coarse clock, a few ms early - a failure with
 * that little left is the deadline's. */
#define MIN_ATTEMPT_MS 50
static bool time_left(const struct mta_sts_query *q, struct timeval *left)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long long ms = (long long)(q->deadline.tv_sec - now.tv_sec) * 1000 + (q->deadline.tv_nsec - now.tv_nsec) / 1000000;
    if (ms < MIN_ATTEMPT_MS)
        return false;
    *left = (struct timeval){.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    return true;
}

/* Why the request to q->ip failed, in words. A connection that was not made, or whose TLS
 * handshake did not end, reaches us without an error code (libevent calls no error callback
 * then): the deadline tells a timeout from a refusal. */
static void http_failure(const struct mta_sts_query *q, char *why, size_t whysz)
{
    long v = q->ssl ? SSL_get_verify_result(q->ssl) : X509_V_OK;
    struct timeval left;
    if (v != X509_V_OK)
        snprintf(why, whysz, "the certificate of %s (at %s) is not valid: %s", q->host, q->ip,
                 X509_verify_cert_error_string(v));
    else if ((q->http_failed && q->http_error == EVREQ_HTTP_TIMEOUT) || !time_left(q, &left))
        snprintf(why, whysz, "no answer from %s within %u s", q->ip, q->timeout);
    else if (q->http_failed && q->http_error == EVREQ_HTTP_DATA_TOO_LONG)
        snprintf(why, whysz, "the policy is longer than %d octets", MTA_STS_POLICY_MAX);
    else
        snprintf(why, whysz, "the HTTPS connection to %s failed (refused, reset, or a failed TLS handshake)", q->ip);
}

/* No answer came from q->ip: the next address of the host, while there is one and time is left
 * (from a fresh event: the connection that failed is freed there), else the fetch failed. A server
 * that answered - any status - is the answer: only a connection that failed moves on. */
static void try_next_or_fail(struct mta_sts_query *q, const char *why)
{
    struct timeval left;
    if (q->tried < q->naddrs && time_left(q, &left)) {
        char safe[400];
        log_info("event=mta_sts_fetch_retry domain=%s host=%s error=\"%s\"", q->domain, q->host,
                 log_quotable(safe, sizeof safe, why));
        static const struct timeval now = {0, 0};
        evtimer_add(q->next_ev, &now);
        return;
    }
    if (q->tried <= 1) {
        fetch_failed(q, why);
        return;
    }
    char all[400];
    snprintf(all, sizeof all, "%s; %zu addresses tried", why, q->tried);
    fetch_failed(q, all);
}

static void on_response(struct evhttp_request *req, void *arg)
{
    struct mta_sts_query *q = arg;
    char why[300];
    int code = req ? evhttp_request_get_response_code(req) : 0;
    if (!req || code == 0 || q->http_failed) {
        http_failure(q, why, sizeof why);
        try_next_or_fail(q, why);
        return;
    }
    const char *type = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
    struct evbuffer *body = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(body);
    struct mta_sts_policy policy;
    if (code != 200) {
        snprintf(why, sizeof why, "HTTP status %d (only 200 is a policy; redirects are not followed)", code);
    } else if (!type || strncasecmp(type, "text/plain", 10) != 0 || (type[10] && type[10] != ';' && type[10] != ' ')) {
        snprintf(why, sizeof why, "Content-Type is %s, not text/plain", type ? type : "missing");
    } else if (!mta_sts_policy_parse((const char *)evbuffer_pullup(body, (ev_ssize_t)len), len, &policy, why,
                                     sizeof why)) {
        ; /* why says what is wrong */
    } else {
        struct cached_policy *slot = cache_slot(q->m, q->domain);
        if (!slot) {
            finish(q, NULL, "fetched"); /* out of memory: not cached, not used */
            return;
        }
        snprintf(slot->domain, sizeof slot->domain, "%s", q->domain);
        memcpy(slot->id, q->id, sizeof slot->id);
        slot->expires = time(NULL) + (time_t)policy.max_age;
        slot->policy = policy;
        q->m->fetched++;
        if (q->m->path)
            cache_save(q->m);
        finish(q, &slot->policy, "fetched");
        return;
    }
    fetch_failed(q, why);
}

/* Sends the GET to the next address of q->host, checking the certificate against q->host, within
 * the time left of the fetch. */
static bool start_https(struct mta_sts_query *q)
{
    const struct sockaddr_storage *addr = &q->addrs[q->tried++];
    struct timeval left;
    if (!time_left(q, &left)) /* RFC 8461 3.3: a valid certificate for mta-sts.<domain> */
        return false;
    q->conn = https_connect(q->m->base, q->m->tls, q->host, addr, MTA_STS_HTTPS_PORT, &left, q->ip, sizeof q->ip, &q->ssl);
    if (!q->conn)
        return false;
    evhttp_connection_set_max_body_size(q->conn, MTA_STS_POLICY_MAX);
    struct evhttp_request *req = evhttp_request_new(on_response, q);
    if (!req)
        return false;
    evhttp_request_set_error_cb(req, on_http_error);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", q->host);
    evhttp_add_header(h, "User-Agent", "Postern MTA-STS");
    evhttp_add_header(h, "Connection", "close");
    return evhttp_make_request(q->conn, req, EVHTTP_REQ_GET, "/.well-known/mta-sts.txt") == 0;
}

/* The connection to the last address failed: it is freed, the next one tried. */
static void on_next_address(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct mta_sts_query *q = arg;
    evhttp_connection_free(q->conn);
    q->conn = NULL;
    q->ssl = NULL;
    q->http_failed = false;
    if (!start_https(q))
        fetch_failed(q, "out of memory, or no time left");
}

/* The addresses of mta-sts.<domain> are known: fetch from the first; the others if it cannot be
 * reached. The timeout bounds the whole fetch, every address included. */
static void on_policy_host(void *arg, const struct dns_route *route)
{
    struct mta_sts_query *q = arg;
    q->dq = NULL;
    char why[400];
    if (route->status != DNS_OK || route->ntargets == 0) {
        snprintf(why, sizeof why, "no address for %s: %s", q->host, route->error);
        fetch_failed(q, why);
        return;
    }
    q->naddrs = route->ntargets;
    for (size_t i = 0; i < q->naddrs; i++)
        q->addrs[i] = route->targets[i].addr;
    clock_gettime(CLOCK_MONOTONIC, &q->deadline);
    q->deadline.tv_sec += (time_t)q->timeout;
    if (!start_https(q))
        fetch_failed(q, q->m->tls ? "out of memory" : "no TLS client (smtp_tls = no)");
}

/* ---------- the TXT record ---------- */

/* RFC 8461 5.1: a cached policy past half its max_age, its record unchanged, is fetched again in
 * the background - the mail goes by the cached one meanwhile - so that it does not lapse while
 * the domain's mail keeps coming (a lapsed policy would leave the next fetch's failure open). */
static void refresh_if_old(struct mta_sts *m, const struct cached_policy *c, unsigned timeout)
{
    if (c->expires - time(NULL) >= (time_t)(c->policy.max_age / 2))
        return;
    for (const struct mta_sts_query *q = m->queries; q; q = q->next)
        if (q->refresh && !strcmp(q->domain, c->domain))
            return; /* one at a time */
    struct mta_sts_query *r = query_new(m, c->domain, timeout);
    if (!r)
        return;
    r->refresh = true;
    memcpy(r->id, c->id, sizeof r->id);
    snprintf(r->host, sizeof r->host, "mta-sts.%s", c->domain);
    if (!(r->dq = dns_resolve_host(m->dns, r->host, on_policy_host, r))) {
        query_free(r);
        return;
    }
    log_info("event=mta_sts_refresh domain=%s", c->domain);
}

static void on_record(void *arg, const struct dns_answer *answer)
{
    struct mta_sts_query *q = arg;
    q->dq = NULL;
    char record[512];
    bool has = answer->status == DNS_OK &&
               dns_txt_select(answer->data, answer->len, answer->n, "v=STSv1", "; \t", record, sizeof record) == 1 &&
               mta_sts_record_id(record, q->id);
    const struct cached_policy *c = cache_find(q->m, q->domain);
    if (!has || (c && !strcmp(c->id, q->id))) { /* RFC 8461 5.1: no record, or the same id: the cache */
        if (has && c)
            refresh_if_old(q->m, c, q->timeout);
        finish(q, c ? &c->policy : NULL, "cached");
        return;
    }
    snprintf(q->host, sizeof q->host, "mta-sts.%s", q->domain);
    if (!(q->dq = dns_resolve_host(q->m->dns, q->host, on_policy_host, q)))
        fetch_failed(q, "out of memory");
}

struct mta_sts_query *mta_sts_lookup(struct mta_sts *m, const char *domain, unsigned timeout, mta_sts_cb cb,
                                     void *arg)
{
    struct mta_sts_query *q = query_new(m, domain, timeout);
    if (!q)
        return NULL;
    char name[300];
    snprintf(name, sizeof name, "_mta-sts.%s", domain);
    if (!(q->dq = dns_lookup(m->dns, name, DNS_RR_TXT, on_record, q))) {
        query_free(q);
        return NULL;
    }
    q->cb = cb;
    q->arg = arg;
    return q;
}
