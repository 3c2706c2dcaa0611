/* queue_dest.c - destinations of the outbound queue: one per recipient domain with jobs waiting,
 * or per next hop that domains are sent to (a transport table entry's, or relay_host).
 * A destination resolves its route once (dns.c) and keeps it while it has work; it runs its
 * jobs on up to destination_concurrency connections (max_deliveries in all), and a connection
 * that finished a job takes the next one waiting for the same domain (connection reuse).
 * A DNS verdict other than a usable route settles every waiting job at once: null MX 556 5.1.10
 * and NXDOMAIN 550 5.1.2 (permanent), anything else 4.4.3 (retried). A route is kept for its TTL
 * (the smallest of its answers'); a job that comes later asks DNS again (libunbound's cache answers
 * at once while the records are fresh), connections already open keep the route they started with. */
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#include "cidr.h"
#include "log.h"
#include "policy.h"
#include "queue_priv.h"
#include "server.h"

/* The destination of hop: one per recipient domain, per relay host, per transport next hop as
 * written (a reload that changes an entry makes a new one; the old ends when idle). */
static struct dest *dest_get(struct queue *q, const struct next_hop *hop)
{
    for (struct dest *d = q->dests; d; d = d->next)
        if (strcmp(d->domain, hop->name) == 0 && d->hop.configured == hop->configured &&
            d->hop.relay_host == hop->relay_host)
            return d;
    struct dest *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    snprintf(d->domain, sizeof d->domain, "%s", hop->name);
    d->hop = *hop;
    d->q = q;
    d->next = q->dests;
    q->dests = d;
    return d;
}

static void dest_free(struct dest *d)
{
    dns_cancel(d->dq);
    mta_sts_cancel(d->stsq);
    free(d->sts);
    free(d);
}

/* Frees d when it has nothing to do - kept while suspended, so that the suspension holds. */
static void dest_free_if_idle(struct dest *d)
{
    if (d->head || d->nconns || d->dq || d->stsq || (d->suspended_until && monotonic_now() < d->suspended_until))
        return;
    struct dest **pp = &d->q->dests;
    while (*pp && *pp != d)
        pp = &(*pp)->next;
    if (!*pp)
        return; /* not listed: not ours to free */
    *pp = d->next;
    dest_free(d);
}

/* True when connection qc (NULL: a new one, made for the job) may take the job of entry e: one
 * made under the domain's TLS policies takes any but REQUIRETLS messages; one made without them
 * only TLS-Required: No messages; one made for REQUIRETLS only REQUIRETLS messages (RFC 8689). */
static bool conn_takes(const struct qconn *qc, const struct qentry *e)
{
    if (!qc)
        return true;
    if (qc->require_tls || e->f.require_tls)
        return qc->require_tls && e->f.require_tls;
    return !qc->tls_optional || e->f.tls_optional;
}

/* The next waiting job connection qc may take (NULL: the first, for a new connection). */
static struct qjob *dest_pop_for(struct dest *d, const struct qconn *qc)
{
    struct qjob **pp = &d->head, *prev = NULL;
    while (*pp && !conn_takes(qc, (*pp)->e))
        prev = *pp, pp = &(*pp)->next;
    struct qjob *j = *pp;
    if (!j)
        return NULL;
    *pp = j->next;
    if (d->tail == j)
        d->tail = prev;
    j->next = NULL;
    return j;
}


static const struct smtp_client_ops client_ops;
static void pump(struct dest *d);
static void route_ready(struct dest *d);

/* How long a destination is suspended, or an unreachable exchanger tried last: the first retry
 * interval, at most 5 minutes (0: never). */
static unsigned down_seconds(const struct config *cfg)
{
    return cfg->retry_schedule.v[0] < 300 ? cfg->retry_schedule.v[0] : 300;
}

/* Address and port equal. */
static bool same_endpoint(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    if (a->ss_family == AF_UNIX)
        return strcmp(((const struct sockaddr_un *)a)->sun_path, ((const struct sockaddr_un *)b)->sun_path) == 0;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const struct sockaddr_in *)a, *y = (const struct sockaddr_in *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a, *y = (const struct sockaddr_in6 *)b;
    return x->sin6_port == y->sin6_port && memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
}

/* The address with the port connections to d go to (a route's targets carry port 0). */
static struct sockaddr_storage endpoint(const struct dest *d, const struct dns_target *t)
{
    struct sockaddr_storage at = t->addr;
    if (at.ss_family == AF_INET)
        ((struct sockaddr_in *)&at)->sin_port = htons((uint16_t)d->hop.port);
    else if (at.ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&at)->sin6_port = htons((uint16_t)d->hop.port);
    return at; /* a Unix-domain socket (LMTP) has no port */
}

static bool host_is_down(const struct queue *q, const struct sockaddr_storage *at, double now)
{
    for (unsigned i = 0; i < DOWN_HOSTS_MAX; i++)
        if (q->down[i].until > now && same_endpoint(&q->down[i].addr, at))
            return true;
    return false;
}

/* A target of d failed before greeting: like Postfix's dead hosts, the next connections to any
 * domain it serves try the other exchangers first, so that a backup MX is not made to wait out
 * the primary's connection timeout message after message. It is still tried, last. */
static void on_target_down(void *arg, const struct dns_target *t, const char *why)
{
    struct dest *d = ((struct qconn *)arg)->d;
    struct queue *q = d->q;
    unsigned secs = down_seconds(q->srv->cfg);
    double now = monotonic_now();
    struct sockaddr_storage at = endpoint(d, t);
    if (secs == 0 || host_is_down(q, &at, now))
        return;
    unsigned slot = 0; /* a free or expired slot, else the one that ends first */
    for (unsigned i = 1; i < DOWN_HOSTS_MAX && q->down[slot].until > now; i++)
        if (q->down[i].until < q->down[slot].until)
            slot = i;
    q->down[slot].addr = at;
    q->down[slot].until = now + secs;
    char safe[700];
    log_info("event=mail_exchanger_down %s=%s host=%s seconds=%u reason=\"%s\"", d->hop.configured ? "next_hop" : "domain",
             d->domain, t->host, secs, log_quotable(safe, sizeof safe, why));
}

/* RFC 8460: a TLS result with one of d's exchangers, under its MTA-STS policy or DANE's TLSA
 * records, counted for d's TLS report - with the policy as the report states it. */
static void on_tls_result(void *arg, const struct client_tls_result *r)
{
    struct dest *d = ((struct qconn *)arg)->d;
    if (!d->q->tlsrpt || (!r->dane && !d->sts))
        return;
    char lines[TLSRPT_POLICY_LINES_MAX][300];
    const char *line_ptrs[TLSRPT_POLICY_LINES_MAX], *mx_ptrs[MTA_STS_MX_MAX];
    size_t nlines = 0, nmx = 0;
    if (r->dane) { /* RFC 8460 4.4: the TLSA records, in presentation form */
        for (size_t i = 0; i < r->tlsa->n && nlines < TLSRPT_POLICY_LINES_MAX; i++, nlines++) {
            const struct dns_tlsa *t = &r->tlsa->rr[i];
            int o = snprintf(lines[nlines], sizeof lines[nlines], "%u %u %u ", t->usage, t->selector, t->mtype);
            for (unsigned k = 0; k < t->len && o + 3 < (int)sizeof lines[nlines]; k++)
                o += snprintf(lines[nlines] + o, sizeof lines[nlines] - (size_t)o, "%02x", t->data[k]);
        }
        mx_ptrs[nmx++] = r->host;
    } else { /* the MTA-STS policy's lines */
        snprintf(lines[nlines++], sizeof lines[0], "version: STSv1");
        snprintf(lines[nlines++], sizeof lines[0], "mode: %s", mta_sts_mode_name(d->sts->mode));
        for (size_t i = 0; i < d->sts->nmx && nlines < TLSRPT_POLICY_LINES_MAX - 1; i++)
            snprintf(lines[nlines++], sizeof lines[0], "mx: %s", d->sts->mx[i]);
        snprintf(lines[nlines++], sizeof lines[0], "max_age: %u", d->sts->max_age);
        for (size_t i = 0; i < d->sts->nmx; i++)
            mx_ptrs[nmx++] = d->sts->mx[i];
    }
    for (size_t i = 0; i < nlines; i++)
        line_ptrs[i] = lines[i];
    struct tlsrpt_result res = {.domain = d->domain, .type = r->dane ? TLSRPT_TLSA : TLSRPT_STS,
                                .policy_lines = line_ptrs, .npolicy_lines = nlines, .mx_patterns = mx_ptrs,
                                .nmx_patterns = nmx, .mx_host = r->host, .ip = r->ip, .failure = r->failure};
    tlsrpt_sender_note(d->q->tlsrpt, &res);
}

/* d's route for a new connection: the exchangers known to be down moved last, order kept. */
static void route_for_connection(const struct dest *d, struct dns_route *out)
{
    double now = monotonic_now();
    size_t n = 0;
    *out = d->route;
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < d->route.ntargets; i++) {
            struct sockaddr_storage at = endpoint(d, &d->route.targets[i]);
            if (host_is_down(d->q, &at, now) == (pass == 1))
                out->targets[n++] = d->route.targets[i];
        }
}

/* Settles every job waiting for d with code and diag. */
static void fail_waiting(struct dest *d, int code, const char *diag)
{
    struct qjob *waiting = d->head; /* detached first: a finished job may queue another here */
    d->head = d->tail = NULL;
    while (waiting) {
        struct qjob *j = waiting;
        waiting = j->next;
        for (size_t i = 0; i < j->job.nrcpts; i++) {
            j->job.rcpts[i].code = code;
            snprintf(j->job.rcpts[i].diag, sizeof j->job.rcpts[i].diag, "%s", diag);
        }
        queue_job_finished(j);
    }
}

/* Like Postfix's dead destinations: when a job found none of the domain's mail exchangers
 * reachable (refused, timed out, would not greet - not a TLS policy's refusal), the jobs waiting
 * for it (and those that come) are deferred at once until the first retry interval (at most 5 minutes) has passed, instead of each trying every exchanger in turn -
 * hours of connection timeouts for a large queue to a host that is down. `postern queue flush`
 * lifts it. The connections already running finish on their own. */
static void suspend(struct dest *d, const char *why)
{
    unsigned secs = down_seconds(d->q->srv->cfg);
    if (secs == 0)
        return;
    d->suspended_until = monotonic_now() + secs;
    size_t code_len = why[0] >= '2' && why[0] <= '5' && why[1] == '.' ? strcspn(why, " ") : 0;
    const char *words = why[code_len] == ' ' ? why + code_len + 1 : why; /* without its enhanced code */
    snprintf(d->suspended_why, sizeof d->suspended_why, "4.4.1 delivery to %s temporarily suspended: %s", d->domain,
             words);
    char safe[700];
    log_info("event=destination_suspended domain=%s seconds=%u waiting=%s reason=\"%s\"", d->domain, secs,
             d->head ? "deferred" : "none", log_quotable(safe, sizeof safe, why));
    fail_waiting(d, 451, d->suspended_why);
}

/* True while d is suspended; its waiting jobs are then deferred at once. It ends a second early:
 * the job whose failure started it comes back after the same interval, and must find it over. */
static bool suspended(struct dest *d)
{
    if (d->suspended_until == 0)
        return false;
    if (monotonic_now() + 1.0 >= d->suspended_until) {
        d->suspended_until = 0;
        log_info("event=destination_resumed domain=%s", d->domain);
        return false;
    }
    fail_waiting(d, 451, d->suspended_why);
    return true;
}

/* RFC 8689 4.2.1: a REQUIRETLS message goes only to a next hop that is authenticated - a domain's
 * MX records DNSSEC-signed, or limited by its MTA-STS enforce policy (a next hop the administrator
 * named is named, not looked up) -; false, the job failed for good (5.7.30), when this route's
 * is not. */
static bool requiretls_route_ok(const struct dest *d, struct qjob *j)
{
    if (!d->hop.mx || d->hop.lmtp || d->route.mx_secure || (d->sts && d->sts->mode == MTA_STS_ENFORCE))
        return true;
    for (size_t i = 0; i < j->job.nrcpts; i++) {
        j->job.rcpts[i].code = 550;
        snprintf(j->job.rcpts[i].diag, sizeof j->job.rcpts[i].diag, "5.7.30 the sender asked for REQUIRETLS (RFC "
                 "8689), and the mail exchangers of %s cannot be authenticated: its MX records are not DNSSEC-signed "
                 "and it has no MTA-STS policy in enforce mode", d->hop.name);
    }
    queue_job_finished(j);
    return false;
}

/* The TLS a connection's hop gets for its first message j: the administrator's level (a reload
 * applies), then the message's own asks (RFC 8689: TLS-Required: No leaves out the domain's
 * policies; REQUIRETLS wants TLS verified) and the domain's MTA-STS policy. */
static void connection_tls(const struct dest *d, struct qconn *qc, const struct qjob *j, struct next_hop *hop)
{
    hop->tls = policy_tls_for(d->q->srv->policy, &d->hop);
    qc->require_tls = j->e->f.require_tls;
    hop->require_tls = qc->require_tls && !hop->lmtp;
    hop->tls_optional = qc->tls_optional = j->e->f.tls_optional && !qc->require_tls;
    const struct mta_sts_policy *sts = hop->tls_optional ? NULL : d->sts; /* RFC 8689 */
    if (hop->tls == TLS_POLICY_DEFAULT && sts && sts->mode == MTA_STS_ENFORCE) {
        hop->tls = TLS_POLICY_VERIFY; /* RFC 8461 4.2: TLS, the certificate valid for the MX name */
        hop->mta_sts = true;
    }
    if (hop->require_tls && hop->tls != TLS_POLICY_DANE && hop->tls != TLS_POLICY_DANE_ONLY)
        hop->tls = TLS_POLICY_VERIFY; /* the host's certificate, or its TLSA records when it has them */
    hop->mta_sts_testing = hop->tls == TLS_POLICY_DEFAULT && sts && sts->mode == MTA_STS_TESTING;
}

/* Starts connections for waiting jobs within the per-destination and global limits (none while
 * the route is being looked up: on_route pumps when it is known). */
static void pump(struct dest *d)
{
    struct queue *q = d->q;
    const struct config *cfg = q->srv->cfg;
    if (d->head && suspended(d))
        return;
    while (d->resolved && d->head && d->nconns < cfg->destination_concurrency && q->nconns < cfg->max_deliveries) {
        struct qjob *j = dest_pop_for(d, NULL);
        if (j->e->f.require_tls && !requiretls_route_ok(d, j))
            continue;
        struct qconn *qc = calloc(1, sizeof *qc);
        if (qc) { /* linked before the client exists: it may report a failure from inside _new */
            qc->d = d;
            qc->next = q->conns;
            q->conns = qc;
            d->nconns++;
            q->nconns++;
            struct dns_route route;
            route_for_connection(d, &route);
            struct next_hop hop = d->hop;
            connection_tls(d, qc, j, &hop);
            qc->c = smtp_client_new(q->srv->base, cfg, q->tls, q->srv->dns, &hop, &route, &client_ops, qc, &j->job);
            if (qc->c)
                continue;
            q->conns = qc->next;
            d->nconns--;
            q->nconns--;
            free(qc);
        }
        for (size_t i = 0; i < j->job.nrcpts; i++)
            j->job.rcpts[i].code = 451, snprintf(j->job.rcpts[i].diag, sizeof j->job.rcpts[i].diag, "4.3.0 out of memory");
        queue_job_finished(j);
    }
}

static void on_job_done(void *arg, struct smtp_client *c, struct smtp_job *job)
{
    struct qconn *qc = arg;
    struct dest *d = qc->d;
    bool unreachable = smtp_client_no_target_worked(c);
    char why[sizeof job->rcpts[0].diag];
    snprintf(why, sizeof why, "%s", job->nrcpts ? job->rcpts[0].diag : "no mail exchanger answered");
    queue_job_finished(job->owner);
    /* a TLS policy's refusal (4.7.x: no STARTTLS, a certificate) is no host down: the host answered
     * at once, and the next message may not be bound by the policy (TLS-Required: No) */
    if (unreachable && d->suspended_until == 0 && strncmp(why, "4.7.", 4) != 0)
        suspend(d, why);
    struct qjob *next = smtp_client_usable(c) ? dest_pop_for(d, qc) : NULL;
    if (next)
        smtp_client_run(c, &next->job); /* connection reuse */
    else
        smtp_client_quit(c);
}

static void on_client_closed(void *arg, struct smtp_client *c)
{
    (void)c;
    struct qconn *qc = arg;
    struct queue *q = qc->d->q;
    struct qconn **pp = &q->conns;
    while (*pp && *pp != qc)
        pp = &(*pp)->next;
    if (*pp)
        *pp = qc->next;
    struct dest *d = qc->d;
    d->nconns--;
    q->nconns--;
    free(qc);
    pump(d);
    dest_free_if_idle(d);
    for (struct dest *o = q->dests; o; o = o->next) /* a global slot came free */
        pump(o);
}

static const struct smtp_client_ops client_ops = {on_job_done, on_client_closed, on_target_down, on_tls_result};

/* The route failed: settles every job waiting for d; the next attempt asks DNS again. */
static void settle_waiting(struct dest *d, int code, const char *diag)
{
    d->resolved = false;
    fail_waiting(d, code, diag);
    dest_free_if_idle(d);
}

/* Host names equal but for case and a final dot. */
static bool same_host(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    la -= la && a[la - 1] == '.';
    lb -= lb && b[lb - 1] == '.';
    return la == lb && strncasecmp(a, b, la) == 0;
}

/* True when addr is in proxy_addresses: this server's own address behind NAT or a proxy. */
static bool at_proxy_address(const struct config *cfg, const struct sockaddr *addr)
{
    for (size_t i = 0; i < cfg->proxy_addresses.count; i++) {
        struct cidr net;
        if (cidr_parse(cfg->proxy_addresses.items[i], &net) && cidr_match(&net, addr))
            return true;
    }
    return false;
}

/* True when target t of d's route is this server: named hostname, reaching one of its own
 * listeners on the next hop's port (a name in DNS other than hostname, or a wildcard listener),
 * or at one of its proxy_addresses (any port: NAT may map another one to ours). */
static bool is_self(const struct dest *d, const struct dns_target *t)
{
    if (same_host(t->host, d->q->srv->cfg->hostname))
        return true;
    struct sockaddr_storage at = endpoint(d, t);
    return server_listens_at(d->q->srv, (struct sockaddr *)&at) ||
           at_proxy_address(d->q->srv->cfg, (struct sockaddr *)&at);
}

/* RFC 5321 5.1: a server that is one of a domain's mail exchangers sends the domain's mail only to
 * those it prefers to itself (a backup MX to the primary, never to itself or another backup).
 * Drops the targets that are this server and every one with as high a preference number (the
 * implicit MX too: a domain whose own address is this host); false when none remains: a loop. */
static bool keep_better_than_self(const struct dest *d, struct dns_route *r, unsigned *self)
{
    *self = UINT_MAX;
    for (size_t i = 0; i < r->ntargets; i++)
        if (r->targets[i].pref < *self && is_self(d, &r->targets[i]))
            *self = r->targets[i].pref;
    if (*self == UINT_MAX)
        return true;
    size_t n = 0;
    for (size_t i = 0; i < r->ntargets; i++)
        if (r->targets[i].pref < *self)
            r->targets[n++] = r->targets[i];
    r->ntargets = n;
    return n > 0;
}

/* Applies d's MTA-STS policy to its route (RFC 8461 4.1): under enforce, the exchangers its mx
 * patterns do not name are dropped (false, diag filled, when none is left); under testing they are
 * only logged. */
static bool apply_mta_sts(struct dest *d, char *diag, size_t diagsz)
{
    if (!d->sts || d->route.status != DNS_OK)
        return true;
    bool enforce = d->sts->mode == MTA_STS_ENFORCE;
    size_t n = 0;
    char dropped[300] = "";
    for (size_t i = 0; i < d->route.ntargets; i++) {
        const struct dns_target *t = &d->route.targets[i];
        if (mta_sts_mx_matches(d->sts, t->host)) {
            d->route.targets[n++] = *t;
            continue;
        }
        log_warn("event=mta_sts_mx_mismatch domain=%s host=%s mode=%s action=%s", d->domain, t->host,
                 mta_sts_mode_name(d->sts->mode), enforce ? "not_used" : "used");
        d->q->mta_sts_mx_not_used += enforce;
        snprintf(dropped, sizeof dropped, "%s", t->host);
        if (!enforce)
            d->route.targets[n++] = *t;
    }
    d->route.ntargets = n;
    if (n > 0)
        return true;
    snprintf(diag, diagsz, "4.7.5 no mail exchanger of %s is listed in its MTA-STS policy (%s is not; RFC 8461): "
             "its policy or its MX records are out of date - tell its postmaster", d->domain, dropped);
    return false;
}

/* The route is known: on with it once the MTA-STS policy is in too (or at once without one). */
static void on_route(void *arg, const struct dns_route *route)
{
    struct dest *d = arg;
    d->dq = NULL;
    d->route = *route;
    if (!d->stsq)
        route_ready(d);
}

/* mta_sts_cb: d's MTA-STS policy (NULL: none applies); on once the route is in too. */
static void on_mta_sts(void *arg, const struct mta_sts_policy *policy)
{
    struct dest *d = arg;
    d->stsq = NULL;
    free(d->sts);
    d->sts = policy ? malloc(sizeof *d->sts) : NULL;
    if (d->sts)
        *d->sts = *policy;
    if (!d->dq)
        route_ready(d);
}

/* The route (and the MTA-STS policy) are known: start delivering, or settle every waiting job with
 * the DNS verdict. */
static void route_ready(struct dest *d)
{
    const char *hostname = d->q->srv->cfg->hostname;
    const struct dns_route *route = &d->route;
    unsigned self;
    d->resolved = true;
    d->route_expires = monotonic_now() + route->ttl;
    const char *kind = d->hop.relay_host ? "relay_host" : d->hop.configured ? "transport" : "domain";
    log_info("event=route %s=%s status=%s targets=%zu ttl=%u dnssec=%s%s%s%s", kind,
             d->domain, route->status == DNS_OK ? "ok" : route->status == DNS_NULL_MX ? "null_mx"
             : route->status == DNS_NXDOMAIN ? "nxdomain" : "tempfail", route->ntargets, route->ttl,
             route->secure ? "yes" : "no", *route->error ? " error=\"" : "", route->error, *route->error ? "\"" : "");
    char diag[600];
    if (!apply_mta_sts(d, diag, sizeof diag)) {
        settle_waiting(d, 451, diag);
        return;
    }
    /* an LMTP server is the final delivery, not an exchanger: the greeting names the same host */
    if (route->status == DNS_OK && !d->hop.lmtp && !keep_better_than_self(d, &d->route, &self)) {
        if (d->hop.configured && !d->hop.mx) /* relay_host or a transport entry naming this server */
            snprintf(diag, sizeof diag, "4.4.6 %s %s is this server itself (%s): mail sent there would loop; "
                     "name another host", d->hop.relay_host ? "relay_host" : "transport", d->hop.name, hostname);
        else
            snprintf(diag, sizeof diag, "4.4.6 mail for %s loops back to this server (%s): it is the best mail "
                     "exchanger (preference %u); list the domain in local_domains, or route it with a transport "
                     "entry", d->hop.route, hostname, self);
        log_warn("event=mail_loop %s=%s detail=\"%s\"", kind, d->domain, diag);
        settle_waiting(d, 451, diag);
        return;
    }
    if (route->status == DNS_OK) {
        pump(d);
        return;
    }
    /* a configured next hop's name failing is this server's configuration or DNS trouble, never
     * the recipient's: retried, not bounced */
    int code = d->hop.configured ? 451 : route->status == DNS_NULL_MX ? 556 : route->status == DNS_NXDOMAIN ? 550 : 451;
    if (d->hop.configured)
        snprintf(diag, sizeof diag, "4.4.3 %s %s cannot be used: %s", d->hop.relay_host ? "relay_host" : "transport",
                 d->hop.name, route->error);
    else
        snprintf(diag, sizeof diag, "%s %s", route->status == DNS_NULL_MX ? "5.1.10 Recipient address has null MX:"
                                             : route->status == DNS_NXDOMAIN ? "5.1.2 bad destination system address:"
                                                                             : "4.4.3 DNS lookup failed:",
                 route->error);
    settle_waiting(d, code, diag);
}

/* Frees the idle destinations whose suspension is over (kept until then by dest_free_if_idle). */
static void sweep_suspended(struct queue *q)
{
    double now = monotonic_now();
    for (struct dest **pp = &q->dests; *pp;) {
        struct dest *d = *pp;
        if (d->suspended_until && now >= d->suspended_until && !d->head && !d->nconns && !d->dq && !d->stsq) {
            *pp = d->next;
            dest_free(d);
        } else {
            pp = &d->next;
        }
    }
}

/* Asks where d's mail goes: the mail exchangers of its domain (or of a next hop named without
 * brackets), or the addresses of a host named in brackets - and, for a recipient domain, its
 * MTA-STS policy (smtp_mta_sts), asked at the same time. False when out of memory. */
static bool resolve(struct queue *q, struct dest *d)
{
    const struct config *cfg = q->srv->cfg;
    d->dq = d->hop.mx ? dns_resolve_route(q->srv->dns, d->hop.route, on_route, d)
                      : dns_resolve_host(q->srv->dns, d->hop.route, on_route, d);
    if (d->dq && q->sts && mta_sts_applies(cfg, &d->hop))
        d->stsq = mta_sts_lookup(q->sts, d->hop.route, cfg->smtp_mta_sts_timeout, on_mta_sts, d);
    return d->dq != NULL;
}

void queue_dispatch(struct queue *q, struct qjob *j, const char *domain)
{
    sweep_suspended(q);
    /* every domain sent to one relay host or next hop is one destination: destination_concurrency
     * and connection reuse apply to that host, as its own limits expect */
    struct next_hop hop;
    policy_next_hop(q->srv->policy, q->srv->cfg, domain, &hop);
    struct dest *d = dest_get(q, &hop);
    if (!d) {
        for (size_t i = 0; i < j->job.nrcpts; i++)
            j->job.rcpts[i].code = 451, snprintf(j->job.rcpts[i].diag, sizeof j->job.rcpts[i].diag, "4.3.0 out of memory");
        queue_job_finished(j);
        return;
    }
    j->d = d;
    if (d->tail)
        d->tail->next = j;
    else
        d->head = j;
    d->tail = j;
    if (d->resolved && monotonic_now() >= d->route_expires)
        d->resolved = false; /* a destination that never runs out of work must still see its MX change */
    if (d->resolved)
        pump(d);
    else if (!d->dq && !d->stsq && !resolve(q, d))
        on_route(d, &(struct dns_route){.status = DNS_TEMPFAIL, .error = "out of memory"});
}

void queue_resume_destinations(struct queue *q)
{
    for (struct dest *d = q->dests; d; d = d->next)
        d->suspended_until = 0;
}

void queue_close_destinations(struct queue *q)
{
    while (q->conns) {
        struct qconn *qc = q->conns;
        q->conns = qc->next;
        smtp_client_free(qc->c);
        free(qc);
    }
    while (q->dests) {
        struct dest *d = q->dests;
        q->dests = d->next;
        dest_free(d);
    }
}
