/* dns.c - libunbound on the event loop: ub_fd() is watched by a persistent read event and
 * ub_process() runs the callbacks, so every answer arrives on the loop thread.
 * A route lookup is one MX query, then an A and an AAAA query per exchanger, all in parallel;
 * the route is handed to the caller when the last of them has answered. */
#include "dns.h"
#include "idn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>
#include <unbound.h>

#include "address.h"
#include "config.h"
#include "log.h"

#define RR_A 1
#define RR_MX 15
#define RR_AAAA 28
#define RR_TLSA 52
#define RCODE_NXDOMAIN 3
#define ADDRS_PER_HOST 4

struct dns {
    struct ub_ctx *ctx;
    struct event *ev;
};

/* One libunbound question belonging to a query. */
struct dns_sub {
    struct dns_query *q;
    int async_id;
    bool active;
    int host;   /* -1: the MX question; else index into mx[] */
    int rrtype;
};

enum query_kind { Q_ROUTE, Q_DOMAIN, Q_TLSA, Q_RAW };

struct dns_query {
    struct dns *d;
    enum query_kind kind;
    char domain[256];
    dns_route_cb route_cb;
    dns_domain_cb domain_cb;
    dns_tlsa_cb tlsa_cb;
    dns_answer_cb answer_cb;      /* Q_RAW */
    struct dns_tlsa_set *tlsa;    /* Q_TLSA: the answer */
    void *arg;
    int pending;
    bool addr_tempfail;           /* an address question failed temporarily */
    bool existence;               /* Q_DOMAIN: without MX, ask for the domain's own addresses */
    struct dns_sub subs[1 + 2 * DNS_MAX_TARGETS];
    struct dns_mx mx[DNS_MAX_TARGETS];
    int nmx;
    struct sockaddr_storage (*addrs)[2][ADDRS_PER_HOST]; /* [host][A, AAAA][i]; route and existence queries */
    int naddrs[DNS_MAX_TARGETS][2];
    bool insecure[DNS_MAX_TARGETS]; /* an address answer of that exchanger was not validated */
    struct dns_route route;
    struct event *fail_ev;        /* reports a failure to start, outside the caller's call */
};

static void on_ub_readable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct dns *d = arg;
    int err = ub_process(d->ctx);
    if (err)
        log_warn("event=dns_error error=\"%s\"", ub_strerror(err));
}

static void on_warm_up_answer(void *arg, int err, struct ub_result *result)
{
    (void)arg;
    (void)err;
    ub_resolve_free(result);
}

/* libunbound starts its resolver thread, with an event base of its own that takes descriptors, at
 * the first query. One query at start-up, for "localhost." (answered from libunbound's built-in
 * local zone: no packet leaves), starts it now: started later, at a moment when the process has no
 * descriptor left (a connection flood), libevent's failure to make that base ends the process. */
static int start_resolver_thread(struct dns *d)
{
    int id;
    return ub_resolve_async(d->ctx, "localhost.", RR_A, 1, NULL, on_warm_up_answer, &id);
}

bool dns_check_trust_anchor(const struct config *cfg, struct config_errors *errs)
{
    const char *path = cfg->dns_trust_anchor;
    if (!*path)
        return true;
    if (!config_file_readable(cfg, "dns_trust_anchor", path, errs))
        return false;
    /* libunbound reads the file when its settings are finalized: removing a zone that is not
     * there finalizes them and changes nothing (no thread, no query) */
    struct ub_ctx *ctx = ub_ctx_create();
    int rc = ctx ? ub_ctx_add_ta_file(ctx, path) : UB_NOMEM;
    if (!rc)
        rc = ub_ctx_zone_remove(ctx, "invalid.");
    if (ctx)
        ub_ctx_delete(ctx);
    if (rc)
        config_errors_add(errs, "%s:%d: dns_trust_anchor: cannot use %s: it holds no usable DS or DNSKEY records "
                          "(libunbound: %s)", cfg->path, config_key_line(cfg, "dns_trust_anchor"), path,
                          ub_strerror(rc));
    return rc == 0;
}

struct dns *dns_new(struct event_base *base, const struct config *cfg, char *err, size_t errsz, const char **key)
{
    /* dns_check_trust_anchor read it as the user that started the server; now it is read as the
     * user the server became (a root-only file fails here, and is named) */
    FILE *ta = *cfg->dns_trust_anchor ? fopen(cfg->dns_trust_anchor, "r") : NULL;
    *key = "dns_resolver";
    if (*cfg->dns_trust_anchor && !ta) {
        *key = "dns_trust_anchor";
        snprintf(err, errsz, "cannot read %s: %s", cfg->dns_trust_anchor, strerror(errno));
        return NULL;
    }
    if (ta)
        fclose(ta);
    struct dns *d = calloc(1, sizeof *d);
    int rc = 0;
    const char *what = "create the resolver";
    if (!d || !(d->ctx = ub_ctx_create())) {
        snprintf(err, errsz, "cannot create the DNS resolver");
        free(d);
        return NULL;
    }
    if ((rc = ub_ctx_async(d->ctx, 1)) != 0)
        what = "use a resolver thread";
    for (size_t i = 0; !rc && i < cfg->dns_resolver.count; i++) {
        if ((rc = ub_ctx_set_option(d->ctx, "do-not-query-localhost:", "no")) != 0 ||
            (rc = ub_ctx_set_fwd(d->ctx, cfg->dns_resolver.items[i])) != 0)
            what = cfg->dns_resolver.items[i];
    }
    if (!rc && cfg->dns_resolver.count == 0 && (rc = ub_ctx_resolvconf(d->ctx, NULL)) != 0)
        what = "read /etc/resolv.conf";
    if (!rc && *cfg->dns_trust_anchor && (rc = ub_ctx_add_ta_file(d->ctx, cfg->dns_trust_anchor)) != 0)
        what = cfg->dns_trust_anchor;
    /* explicit forwarders are trusted for every name, also the RFC 6761 ".test" names that
     * libunbound otherwise answers NXDOMAIN itself (test set-ups use them); this finalizes the
     * settings, so it comes last */
    if (!rc && cfg->dns_resolver.count && (rc = ub_ctx_zone_remove(d->ctx, "test.")) != 0)
        what = "forward .test names";
    if (!rc && (!(d->ev = event_new(base, ub_fd(d->ctx), EV_READ | EV_PERSIST, on_ub_readable, d)) ||
                event_add(d->ev, NULL) < 0)) {
        rc = UB_NOMEM;
        what = "watch the resolver";
    }
    if (!rc && (rc = start_resolver_thread(d)) != 0)
        what = "start the resolver thread";
    if (rc) {
        snprintf(err, errsz, "DNS resolver: cannot %s: %s", what, ub_strerror(rc));
        dns_free(d);
        return NULL;
    }
    return d;
}

void dns_free(struct dns *d)
{
    if (!d)
        return;
    if (d->ev)
        event_free(d->ev);
    ub_ctx_delete(d->ctx);
    free(d);
}

/* ---------- pure MX helpers ---------- */

int dns_txt_select(const unsigned char *const *rdata, const int *len, int n, const char *prefix, const char *after,
                   char *out, size_t outsz)
{
    size_t plen = strlen(prefix);
    char *text = malloc(outsz);
    int found = text ? 0 : -1;
    for (int i = 0; text && i < n && found >= 0; i++) {
        int whole = dns_txt_join(rdata[i], len[i], text, outsz);
        if (strncasecmp(text, prefix, plen) != 0 || (text[plen] && !strchr(after, text[plen])))
            continue;
        if (whole == 0 || ++found > 1)
            found = -1;
        else
            memcpy(out, text, strlen(text) + 1);
    }
    free(text);
    return found;
}

int dns_txt_join(const unsigned char *rdata, int len, char *out, size_t outsz)
{
    size_t t = 0;
    int whole = 1;
    for (int p = 0; p < len;) { /* <length><octets>, again and again */
        int l = rdata[p++];
        if (p + l > len) {
            whole = -1;
            break;
        }
        const unsigned char *nul = memchr(rdata + p, '\0', (size_t)l);
        size_t take = nul ? (size_t)(nul - (rdata + p)) : (size_t)l;
        if (whole == 1 && t + take > outsz - 1) {
            whole = 0; /* too long: out keeps the strings before */
        } else if (whole == 1) {
            memcpy(out + t, rdata + p, take);
            t += take;
            whole = nul ? 0 : 1; /* a NUL ends the text */
        }
        p += l;
    }
    out[t] = '\0';
    return whole;
}

bool dns_wire_name(const unsigned char *rdata, int len, char *out, size_t outsz)
{
    size_t o = 0;
    int p = 0;
    while (p < len && rdata[p] != 0) {
        int label = rdata[p++];
        if (label > 63 || p + label > len || o + (size_t)label + 1 >= outsz)
            return false; /* compression pointers never appear in libunbound's rdata */
        if (o)
            out[o++] = '.';
        memcpy(out + o, rdata + p, (size_t)label);
        o += (size_t)label;
        p += label;
    }
    if (p >= len || outsz == 0)
        return false;
    out[o] = '\0'; /* "" is the root */
    return true;
}

bool dns_parse_mx_rdata(const unsigned char *rdata, int len, struct dns_mx *out)
{
    if (len < 3)
        return false;
    out->pref = (unsigned)(rdata[0] << 8 | rdata[1]);
    return dns_wire_name(rdata + 2, len - 2, out->host, sizeof out->host); /* "": a null MX target */
}

bool dns_mx_set_is_null(const struct dns_mx *mx, int n)
{
    return n == 1 && mx[0].pref == 0 && mx[0].host[0] == '\0';
}

/* Sorts by preference, then shuffles each run of equal preferences (RFC 5321 5.1). */
void dns_sort_mx(struct dns_mx *mx, int n)
{
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && mx[j - 1].pref > mx[j].pref; j--) {
            struct dns_mx t = mx[j];
            mx[j] = mx[j - 1];
            mx[j - 1] = t;
        }
    for (int start = 0; start < n;) {
        int end = start;
        while (end < n && mx[end].pref == mx[start].pref)
            end++;
        for (int i = end - 1; i > start; i--) {
            int j = start + (int)(arc4random_uniform((unsigned)(i - start + 1)));
            struct dns_mx t = mx[i];
            mx[i] = mx[j];
            mx[j] = t;
        }
        start = end;
    }
}

/* ---------- queries ---------- */

static void query_free(struct dns_query *q)
{
    free(q->addrs);
    free(q->tlsa);
    if (q->fail_ev)
        event_free(q->fail_ev);
    free(q);
}

void dns_cancel(struct dns_query *q)
{
    if (!q)
        return;
    for (size_t i = 0; i < sizeof q->subs / sizeof q->subs[0]; i++)
        if (q->subs[i].active)
            ub_cancel(q->d->ctx, q->subs[i].async_id);
    query_free(q);
}

/* Hands the finished route (or domain verdict, or TLSA set) to the caller and frees the query. */
static void query_finish(struct dns_query *q)
{
    if (q->kind == Q_ROUTE)
        q->route_cb(q->arg, &q->route);
    else if (q->kind == Q_TLSA)
        q->tlsa_cb(q->arg, q->tlsa);
    else if (q->kind == Q_RAW)
        q->answer_cb(q->arg, &(struct dns_answer){.status = q->route.status == DNS_NXDOMAIN ? DNS_NXDOMAIN : DNS_TEMPFAIL});
    else if (!q->existence && q->route.status != DNS_NULL_MX)
        q->domain_cb(q->arg, &(struct dns_route){.status = DNS_OK}); /* only a null MX was asked about */
    else
        q->domain_cb(q->arg, &q->route);
    query_free(q);
}

static void on_fail_ev(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    query_finish(arg);
}

static void on_answer(void *mydata, int err, struct ub_result *result);

/* Hands q's result (a literal's route, or a failure to start) to its callback from the loop,
 * never from inside the caller's call; false (q freed) when out of memory. */
static bool report_later(struct dns_query *q)
{
    struct timeval now = {0, 0};
    if ((q->fail_ev = evtimer_new(event_get_base(q->d->ev), on_fail_ev, q)) && evtimer_add(q->fail_ev, &now) == 0)
        return true;
    query_free(q);
    return false;
}

/* Starts one question; on failure marks the route failed (the caller finishes the query). */
static bool ask(struct dns_query *q, int slot, int host, const char *name, int rrtype)
{
    struct dns_sub *s = &q->subs[slot];
    *s = (struct dns_sub){.q = q, .host = host, .rrtype = rrtype};
    char ascii[ADDR_DOMAIN_MAX + 1]; /* DNS holds A-labels only (RFC 5890; RFC 6531 3.2) */
    if (!idn_to_ascii(name, ascii, sizeof ascii)) {
        q->route.status = DNS_NXDOMAIN;
        snprintf(q->route.error, sizeof q->route.error, "%s is not a valid internationalized domain name", name);
        return false;
    }
    int rc = ub_resolve_async(q->d->ctx, ascii, rrtype, 1, s, on_answer, &s->async_id);
    if (rc) {
        q->route.status = DNS_TEMPFAIL;
        snprintf(q->route.error, sizeof q->route.error, "resolver error: %s", ub_strerror(rc));
        return false;
    }
    s->active = true;
    q->pending++;
    return true;
}

/* Asks for the addresses of every exchanger in q->mx. */
static void ask_addresses(struct dns_query *q)
{
    if (!(q->addrs = calloc((size_t)q->nmx, sizeof *q->addrs))) {
        q->route.status = DNS_TEMPFAIL;
        snprintf(q->route.error, sizeof q->route.error, "out of memory");
        return;
    }
    for (int i = 0; i < q->nmx; i++)
        if (!ask(q, 1 + 2 * i, i, q->mx[i].host, RR_A) || !ask(q, 2 + 2 * i, i, q->mx[i].host, RR_AAAA))
            return;
}

/* The smaller of a route's TTL so far and an answer's (libunbound's TTL is an int; below 0 is 0). */
static unsigned ttl_min(unsigned so_far, int ttl)
{
    unsigned t = ttl > 0 ? (unsigned)ttl : 0;
    return t < so_far ? t : so_far;
}

/* The MX answer: null MX, an MX list, the implicit MX, or a failure. */
static void got_mx(struct dns_query *q, int err, struct ub_result *r)
{
    struct dns_route *rt = &q->route;
    rt->secure = rt->mx_secure = r && r->secure;
    rt->ttl = r ? ttl_min(UINT_MAX, r->ttl) : 0;
    if (err || !r || r->bogus || (r->rcode != 0 && r->rcode != RCODE_NXDOMAIN)) {
        rt->status = DNS_TEMPFAIL;
        snprintf(rt->error, sizeof rt->error, "MX lookup for %s failed: %s", q->domain,
                 err ? ub_strerror(err) : !r ? "no result" : r->bogus ? "DNSSEC validation failed" : "server failure (SERVFAIL)");
        return;
    }
    if (r->nxdomain) {
        rt->status = DNS_NXDOMAIN;
        snprintf(rt->error, sizeof rt->error, "the domain %s does not exist (NXDOMAIN)", q->domain);
        return;
    }
    for (int i = 0; r->havedata && r->data[i] && q->nmx < DNS_MAX_TARGETS; i++)
        if (dns_parse_mx_rdata((const unsigned char *)r->data[i], r->len[i], &q->mx[q->nmx]))
            q->nmx++;
    if (dns_mx_set_is_null(q->mx, q->nmx)) {
        rt->status = DNS_NULL_MX;
        snprintf(rt->error, sizeof rt->error, "%s publishes a null MX: it accepts no mail", q->domain);
        return;
    }
    if (q->kind == Q_DOMAIN && (q->nmx > 0 || !q->existence))
        return; /* an MX (its hosts' addresses are the route's business), or no existence asked */
    if (q->nmx == 0) { /* no MX records: the domain itself (RFC 5321 5.1) */
        rt->implicit_mx = true;
        q->nmx = 1;
        snprintf(q->mx[0].host, sizeof q->mx[0].host, "%s", q->domain);
        q->mx[0].pref = 0;
    }
    dns_sort_mx(q->mx, q->nmx);
    ask_addresses(q);
}

/* One address answer for exchanger q->mx[host]. */
static void got_address(struct dns_query *q, struct dns_sub *s, int err, struct ub_result *r)
{
    if (err || !r || r->bogus || (r->rcode != 0 && r->rcode != RCODE_NXDOMAIN)) {
        q->addr_tempfail = true;
        return;
    }
    q->route.secure = q->route.secure && r->secure;
    q->insecure[s->host] |= !r->secure;
    if (r->havedata) /* an address answer the route uses: its TTL bounds the route's */
        q->route.ttl = ttl_min(q->route.ttl, r->ttl);
    int fam = s->rrtype == RR_A ? 0 : 1;
    for (int i = 0; r->havedata && r->data[i] && q->naddrs[s->host][fam] < ADDRS_PER_HOST; i++) {
        struct sockaddr_storage *ss = &q->addrs[s->host][fam][q->naddrs[s->host][fam]];
        memset(ss, 0, sizeof *ss);
        if (fam == 0 && r->len[i] == 4) {
            struct sockaddr_in *in = (struct sockaddr_in *)ss;
            in->sin_family = AF_INET;
            memcpy(&in->sin_addr, r->data[i], 4);
        } else if (fam == 1 && r->len[i] == 16) {
            struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
            in6->sin6_family = AF_INET6;
            memcpy(&in6->sin6_addr, r->data[i], 16);
        } else {
            continue;
        }
        q->naddrs[s->host][fam]++;
    }
}

/* Every address answered: the targets in MX order, IPv4 before IPv6 for each exchanger. */
static void build_targets(struct dns_query *q)
{
    struct dns_route *rt = &q->route;
    for (int h = 0; h < q->nmx; h++)
        for (int fam = 0; fam < 2; fam++)
            for (int i = 0; i < q->naddrs[h][fam] && rt->ntargets < DNS_MAX_TARGETS; i++) {
                struct dns_target *t = &rt->targets[rt->ntargets++];
                snprintf(t->host, sizeof t->host, "%s", q->mx[h].host);
                t->pref = q->mx[h].pref;
                t->addr = q->addrs[h][fam][i];
                t->secure = !q->insecure[h];
                t->addrlen = fam == 0 ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
            }
    if (rt->ntargets) {
        rt->status = DNS_OK;
    } else if (rt->implicit_mx && !q->addr_tempfail) {
        rt->status = DNS_NXDOMAIN;
        snprintf(rt->error, sizeof rt->error, "%s has no MX and no address record", q->domain);
    } else {
        rt->status = DNS_TEMPFAIL;
        snprintf(rt->error, sizeof rt->error, "no address found for the mail exchangers of %s%s", q->domain,
                 q->addr_tempfail ? " (lookup failed)" : "");
    }
}

bool dns_parse_tlsa_rdata(const unsigned char *rdata, int len, struct dns_tlsa *out)
{
    if (len < 3 || (rdata[0] != 2 && rdata[0] != 3) || rdata[1] > 1 || (rdata[2] != 1 && rdata[2] != 2) ||
        len - 3 != (rdata[2] == 1 ? 32 : 64))
        return false; /* RFC 7672 3.1.3: PKIX usages are not for SMTP; full data: not kept */
    out->usage = rdata[0];
    out->selector = rdata[1];
    out->mtype = rdata[2];
    out->len = (unsigned char)(len - 3);
    memcpy(out->data, rdata + 3, (size_t)(len - 3));
    return true;
}

/* The TLSA answer (RFC 7672 2.2): only a validated one counts; a bogus or failed one bars the host. */
static void got_tlsa(struct dns_query *q, int err, struct ub_result *r)
{
    struct dns_tlsa_set *t = q->tlsa;
    if (err || !r || r->bogus || (r->rcode != 0 && r->rcode != RCODE_NXDOMAIN)) {
        t->status = TLSA_FAILED;
        snprintf(t->error, sizeof t->error, "TLSA lookup for %s failed: %s", q->domain,
                 err ? ub_strerror(err) : !r ? "no result" : r->bogus ? "DNSSEC validation failed (bogus)"
                                                                      : "server failure (SERVFAIL)");
        return;
    }
    if (!r->secure || !r->havedata) {
        t->status = TLSA_NONE;
        return;
    }
    for (int i = 0; r->data[i] && t->n < DNS_TLSA_MAX; i++)
        if (dns_parse_tlsa_rdata((const unsigned char *)r->data[i], r->len[i], &t->rr[t->n]))
            t->n++;
    t->status = t->n ? TLSA_USABLE : TLSA_UNUSABLE;
}

/* A Q_RAW answer to its caller, as it came. */
static void give_raw_answer(struct dns_query *q, int err, struct ub_result *r)
{
    struct dns_answer a = {.status = DNS_TEMPFAIL};
    if (!err && r && !r->bogus && r->rcode == RCODE_NXDOMAIN)
        a.status = DNS_NXDOMAIN;
    else if (!err && r && !r->bogus && r->rcode == 0) {
        a.status = DNS_OK;
        while (r->havedata && r->data[a.n])
            a.n++;
        a.data = (const unsigned char *const *)r->data;
        a.len = r->len;
    }
    q->answer_cb(q->arg, &a);
}

static void on_answer(void *mydata, int err, struct ub_result *result)
{
    struct dns_sub *s = mydata;
    struct dns_query *q = s->q;
    s->active = false;
    q->pending--;
    if (q->kind == Q_RAW) {
        give_raw_answer(q, err, result);
        if (result)
            ub_resolve_free(result);
        query_free(q);
        return;
    }
    if (q->kind == Q_TLSA)
        got_tlsa(q, err, result);
    else if (s->host < 0)
        got_mx(q, err, result);
    else
        got_address(q, s, err, result);
    if (result)
        ub_resolve_free(result);
    if (q->pending > 0)
        return;
    if (q->kind != Q_TLSA && q->route.status == DNS_OK && q->addrs)
        build_targets(q);
    query_finish(q);
}

/* A domain that is an address literal has no MX: mail for it goes to that address (RFC 5321 5.1),
 * a target without a name. A General-address-literal ("[tag:...]") names nothing this server can
 * reach: a permanent failure. */
static void route_to_literal(struct dns_query *q)
{
    struct dns_route *rt = &q->route;
    struct dns_target *t = &rt->targets[0];
    if (!address_literal_ip(q->domain, &t->addr, &t->addrlen)) {
        rt->status = DNS_NXDOMAIN;
        snprintf(rt->error, sizeof rt->error, "%s is an address literal this server cannot deliver to", q->domain);
        return;
    }
    t->host[0] = '\0';
    rt->ntargets = 1;
    rt->ttl = 3600;
}

/* An LMTP server's Unix-domain socket (transport lmtp:unix:/path): one target, no DNS. */
static void route_to_socket(struct dns_query *q)
{
    struct dns_target *t = &q->route.targets[0];
    struct sockaddr_un *un = (struct sockaddr_un *)&t->addr;
    memset(&t->addr, 0, sizeof t->addr);
    un->sun_family = AF_UNIX;
    snprintf(un->sun_path, sizeof un->sun_path, "%s", q->domain); /* length checked by next_hop_parse */
    t->addrlen = (socklen_t)sizeof *un;
    t->host[0] = '\0';
    q->route.ntargets = 1;
    q->route.ttl = 3600;
}

/* A host named without MX lookup (relay_host = [name]): its own addresses, like an implicit MX. */
static void route_to_host(struct dns_query *q)
{
    q->route.implicit_mx = true;
    q->route.secure = true; /* until an answer says otherwise (got_address) */
    q->route.ttl = UINT_MAX;
    q->nmx = 1;
    snprintf(q->mx[0].host, sizeof q->mx[0].host, "%s", q->domain);
    ask_addresses(q);
}

static struct dns_query *query_start(struct dns *d, enum query_kind kind, const char *domain, bool host_only,
                                     void *arg)
{
    struct dns_query *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->d = d;
    q->kind = kind;
    q->arg = arg;
    snprintf(q->domain, sizeof q->domain, "%s", domain);
    q->route.status = DNS_OK;
    bool asked = false;
    if (q->domain[0] == '[') {
        route_to_literal(q); /* nothing to ask */
    } else if (host_only && q->domain[0] == '/') {
        route_to_socket(q);
    } else if (host_only) {
        route_to_host(q);
        asked = q->pending > 0;
    } else {
        asked = ask(q, 0, -1, q->domain, RR_MX);
    }
    return asked || report_later(q) ? q : NULL;
}

struct dns_query *dns_resolve_route(struct dns *d, const char *domain, dns_route_cb cb, void *arg)
{
    struct dns_query *q = query_start(d, Q_ROUTE, domain, false, arg);
    if (q)
        q->route_cb = cb;
    return q;
}

struct dns_query *dns_resolve_host(struct dns *d, const char *host, dns_route_cb cb, void *arg)
{
    struct dns_query *q = query_start(d, Q_ROUTE, host, true, arg);
    if (q)
        q->route_cb = cb;
    return q;
}

struct dns_query *dns_check_domain(struct dns *d, const char *domain, bool existence, dns_domain_cb cb, void *arg)
{
    struct dns_query *q = query_start(d, Q_DOMAIN, domain, false, arg);
    if (q) {
        q->domain_cb = cb;
        q->existence = existence;
    }
    return q;
}

struct dns_query *dns_resolve_tlsa(struct dns *d, const char *host, unsigned port, dns_tlsa_cb cb, void *arg)
{
    struct dns_query *q = calloc(1, sizeof *q);
    if (!q || !(q->tlsa = calloc(1, sizeof *q->tlsa))) {
        free(q);
        return NULL;
    }
    q->d = d;
    q->kind = Q_TLSA;
    q->arg = arg;
    q->tlsa_cb = cb;
    bool fits = (size_t)snprintf(q->domain, sizeof q->domain, "_%u._tcp.%s", port, host) < sizeof q->domain;
    if (fits && ask(q, 0, -1, q->domain, RR_TLSA))
        return q;
    q->tlsa->status = TLSA_FAILED;
    snprintf(q->tlsa->error, sizeof q->tlsa->error, "TLSA lookup for %s: %s", q->domain,
             fits ? q->route.error : "the name is too long");
    return report_later(q) ? q : NULL;
}

struct dns_query *dns_lookup(struct dns *d, const char *name, int rrtype, dns_answer_cb cb, void *arg)
{
    struct dns_query *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->d = d;
    q->kind = Q_RAW;
    q->arg = arg;
    q->answer_cb = cb;
    snprintf(q->domain, sizeof q->domain, "%s", name);
    if (ask(q, 0, -1, q->domain, rrtype))
        return q;
    return report_later(q) ? q : NULL; /* a name that is no domain: NXDOMAIN; resolver trouble: TEMPFAIL */
}

bool dns_reverse_name(const struct sockaddr_storage *addr, const char *zone4, const char *zone6, char *out,
                      size_t outsz)
{
    const unsigned char *b;
    if (addr->ss_family == AF_INET6) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)addr)->sin6_addr;
        if (!IN6_IS_ADDR_V4MAPPED(a6)) {
            size_t n = 0;
            for (int i = 15; i >= 0 && n + 4 < outsz; i--)
                n += (size_t)snprintf(out + n, outsz - n, "%x.%x.", a6->s6_addr[i] & 15, a6->s6_addr[i] >> 4);
            return (size_t)snprintf(out + n, outsz - n, "%s", zone6) < outsz - n;
        }
        b = a6->s6_addr + 12;
    } else if (addr->ss_family == AF_INET) {
        b = (const unsigned char *)&((const struct sockaddr_in *)addr)->sin_addr;
    } else {
        return false;
    }
    return (size_t)snprintf(out, outsz, "%u.%u.%u.%u.%s", b[3], b[2], b[1], b[0], zone4) < outsz;
}
