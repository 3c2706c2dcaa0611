/* queue.c - the outbound queue manager (see queue.h; destinations and connections: queue_dest.c).
 * Life of an entry's attempt, all on the loop: due (tick) -> read the message on a disk thread ->
 * one job per recipient domain -> the domain's destination resolves its route once (dns.c), then runs
 * jobs on up to destination_concurrency connections, reusing each for the next waiting job -> every job
 * done -> outcomes: delivered / failed / deferred (expired after max_queue_lifetime) -> a DSN
 * if someone must be told (committed before anything is forgotten) -> the state file is
 * replaced, or the queue file removed when no recipient is left (disk thread) -> idle again.
 * A crash anywhere repeats at most the attempt in progress: duplicates only in that window. */
#include "queue.h"
#include "queue_priv.h"

#include <dirent.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "address.h"
#include "commit.h"
#include "dns.h"
#include "dsn.h"
#include "dsn_message.h"
#include "idn.h"
#include "log.h"
#include "mailbox_hold.h"
#include "message.h"
#include "policy.h"
#include "queue_file.h"
#include "server.h"
#include "strmap.h"
#include "smtp_client.h"
#include "workq.h"

#define MAX_IN_FLIGHT 500 /* entries in an attempt at once */
#define MAX_IN_FLIGHT_BYTES (256u << 20) /* message texts held in memory by attempts at once */


static void attempt_complete(struct qentry *e);

/* ---------- the id index ----------
 * Every message loaded (each relayed one, and every file of a rescan) is first looked up by id:
 * a list walk would make that O(n) with n queued - 100,000 after an outage - and a start-up scan
 * O(n^2). Chained buckets, at least as many as entries (doubled when entries outgrow them). */

static size_t index_bucket(const struct queue *q, const char *qid)
{
    return (size_t)str_hash(qid) & (q->index_cap - 1);
}

#define INDEX_FIRST_CAP 1024 /* buckets made by queue_new */

/* Doubles the bucket array; without memory for it the chains just grow longer. */
static void index_grow(struct queue *q)
{
    size_t ncap = q->index_cap * 2;
    struct qbucket *old = q->index, *nb = calloc(ncap, sizeof *nb);
    if (!nb)
        return;
    size_t old_cap = q->index_cap;
    q->index = nb;
    q->index_cap = ncap;
    for (size_t i = 0; i < old_cap; i++)
        for (struct qentry *e = old[i].first, *next; e; e = next) {
            next = e->index_next;
            size_t b = index_bucket(q, e->f.qid);
            e->index_next = nb[b].first;
            nb[b].first = e;
        }
    free(old);
}

static void index_add(struct queue *q, struct qentry *e)
{
    if (q->nentries + 1 > q->index_cap)
        index_grow(q);
    size_t b = index_bucket(q, e->f.qid);
    e->index_next = q->index[b].first;
    q->index[b].first = e;
    q->nentries++;
}

static void index_remove(struct queue *q, struct qentry *e)
{
    struct qbucket *b = &q->index[index_bucket(q, e->f.qid)];
    if (b->first == e) {
        b->first = e->index_next;
        q->nentries--;
        return;
    }
    for (struct qentry *p = b->first; p; p = p->index_next)
        if (p->index_next == e) {
            p->index_next = e->index_next;
            q->nentries--;
            return;
        }
}

/* ---------- entries ---------- */

static struct qentry *entry_add(struct queue *q, struct qfile *f)
{
    struct qentry *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->f = *f;
    index_add(q, e);
    e->q = q;
    e->next = q->head;
    /* clang-analyzer takes q->head for the entry queue_rescan freed just before (entry_free
     * unlinks an entry before it frees it; the list walk entry_find did before made it see that) */
    if (q->head)
        q->head->prev = e; // NOLINT(clang-analyzer-unix.Malloc)
    q->head = e;
    return e;
}

static void entry_free(struct qentry *e)
{
    struct queue *q = e->q;
    if (e->prev)
        e->prev->next = e->next;
    else
        q->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    index_remove(q, e);
    qfile_free(&e->f);
    free(e->text);
    free(e);
}

static struct qentry *entry_find(struct queue *q, const char *qid)
{
    for (struct qentry *e = q->index[index_bucket(q, qid)].first; e; e = e->index_next)
        if (strcmp(e->f.qid, qid) == 0)
            return e;
    return NULL;
}

/* The recipient's domain (the part after the last '@') in canonical form (idn.h): one destination
 * however its recipients spelt it. */
static void rcpt_domain(const char *addr, char *out, size_t outsz)
{
    const char *at = strrchr(addr, '@');
    idn_canonical(at ? at + 1 : "", out, outsz);
}

/* The peer's own recipient limit (RFC 5321 4.5.3.1.10: 452 past it) cut the job short: when it
 * accepted some recipients and answered 452 to others, the job is made of those others alone and
 * sent again at once, as RFC 5321 asks of a client; true when it was. Each round needs a recipient
 * accepted, so the rounds end. */
static bool resend_past_peer_limit(struct qjob *j)
{
    size_t accepted = 0, again = 0;
    for (size_t i = 0; i < j->job.nrcpts; i++)
        accepted += j->job.rcpts[i].code / 100 == 2;
    for (size_t i = 0; accepted && i < j->job.nrcpts; i++) {
        struct smtp_job_rcpt *r = &j->job.rcpts[i];
        if (r->code != 452 || !r->at_rcpt) /* an LMTP server's 452 after the data is that mailbox's */
            continue;
        j->idx[again] = j->idx[i];
        j->job.rcpts[again++] = (struct smtp_job_rcpt){.addr = r->addr, .orcpt = r->orcpt, .notify = r->notify};
    }
    if (again == 0)
        return false;
    char dom[256];
    j->job.nrcpts = again;
    j->job.remote_host[0] = '\0';
    j->next = NULL;
    rcpt_domain(j->job.rcpts[0].addr, dom, sizeof dom);
    log_info("event=delivery_continued qid=%s recipients=%zu reason=\"452 past the peer's recipient limit\"",
             j->e->f.qid, again);
    queue_dispatch(j->e->q, j, dom);
    return true;
}

/* Records a finished job's per-recipient results in its entry. */
void queue_job_finished(struct qjob *j)
{
    struct qentry *e = j->e;
    for (size_t i = 0; i < j->job.nrcpts; i++) {
        struct smtp_job_rcpt *jr = &j->job.rcpts[i];
        struct qrcpt *r = &e->f.rcpts[j->idx[i]];
        bool remote_reply = jr->diag[0] >= '2' && jr->diag[0] <= '5' && jr->diag[3] == ' ';
        free(r->diag);
        free(r->remote_mta);
        r->diag = strdup(jr->diag);
        r->remote_mta = remote_reply && *j->job.remote_host ? strdup(j->job.remote_host) : NULL;
        const char *what;
        if (jr->code / 100 == 2) {
            r->status = QR_DELIVERED;
            what = "sent";
            e->q->srv->metrics.relay[RELAY_SENT]++;
            if ((r->notify & NOTIFY_SUCCESS) && !j->job.peer_dsn)
                e->news[j->idx[i]] = 'S';
        } else if (jr->code / 100 == 5) {
            r->status = QR_FAILED;
            e->news[j->idx[i]] = 'F';
            what = "bounced";
            e->q->srv->metrics.relay[RELAY_BOUNCED]++;
        } else {
            what = "deferred";
            e->q->srv->metrics.relay[RELAY_DEFERRED]++;
        }
        char addr[300], diag[sizeof jr->diag];
        log_info("event=delivery qid=%s rcpt=<%s> relay=%s status=%s detail=\"%s\"", e->f.qid,
                 log_safe(addr, sizeof addr, r->addr), *j->job.remote_host ? j->job.remote_host : "none", what,
                 log_quotable(diag, sizeof diag, jr->diag));
    }
    if (!e->q->stopping && resend_past_peer_limit(j))
        return; /* the same job again, for the rest */
    if (--e->jobs_left == 0)
        attempt_complete(e);
}

void queue_get_stats(const struct queue *q, struct queue_stats *st)
{
    *st = (struct queue_stats){0};
    if (!q)
        return;
    st->messages = q->nentries;
    st->attempts = q->in_flight;
    st->connections = q->nconns;
    for (const struct dest *d = q->dests; d; d = d->next)
        st->destinations++;
    st->mta_sts_mx_not_used = q->mta_sts_mx_not_used;
    mta_sts_get_stats(q->sts, &st->mta_sts);
}

/* ---------- attempts ---------- */

static void free_attempt(struct qentry *e)
{
    free(e->jobs);
    free(e->jrcpts);
    free(e->jidx);
    free(e->news);
    free(e->text);
    free(e->srs_sender);
    e->srs_sender = NULL;
    e->jobs = NULL;
    e->jrcpts = NULL;
    e->jidx = NULL;
    e->news = NULL;
    e->text = NULL;
    e->njobs = e->jobs_left = 0;
}

static bool delivered_by_lmtp(const struct qentry *e, const struct qrcpt *r);

/* srs_domain: the SRS form of the message's sender for this attempt (the day stamp is today's),
 * or NULL when the sender goes out as it is: SRS off, the null sender, a sender in a local domain
 * (this server may send for it), or one SRS cannot carry. */
static char *srs_sender_for(const struct qentry *e)
{
    const struct policy *p = e->q->srv->policy;
    const char *at = strrchr(e->f.sender, '@');
    if (!*p->srs.domain || !at)
        return NULL;
    char domain[ADDR_DOMAIN_MAX + 1], out[ADDR_PATH_MAX + 1], sender[300];
    idn_canonical(at + 1, domain, sizeof domain);
    if (strmap_get(&p->local_domains, domain, NULL) ||
        !srs_forward(&p->srs, e->f.sender, (long long)time(NULL), out, sizeof out))
        return NULL;
    log_info("event=srs qid=%s sender=<%s> as=<%s>", e->f.qid, log_safe(sender, sizeof sender, e->f.sender), out);
    return strdup(out);
}

/* Builds the jobs over the pending recipients - one per recipient domain, or several when the
 * domain has more than destination_recipient_limit - and dispatches them. A job to an SMTP next
 * hop carries the SRS sender when there is one; a job to an LMTP server (a final delivery) the
 * sender as it is. */
static void build_jobs(struct qentry *e)
{
    size_t n = e->f.nrcpts, npending = 0;
    for (size_t i = 0; i < n; i++)
        npending += e->f.rcpts[i].status == QR_PENDING;
    if (npending == 0) { /* nothing left to send (a failed report is being retried) */
        e->jobs_left = 1;
        attempt_complete(e);
        return;
    }
    e->jobs = calloc(npending ? npending : 1, sizeof *e->jobs);
    e->jrcpts = calloc(npending ? npending : 1, sizeof *e->jrcpts);
    e->jidx = calloc(npending ? npending : 1, sizeof *e->jidx);
    bool *taken = calloc(n ? n : 1, sizeof *taken);
    if (!e->jobs || !e->jrcpts || !e->jidx || !taken) {
        free(taken);
        e->jobs_left = 1;
        attempt_complete(e); /* nothing changed: retried on schedule */
        return;
    }
    size_t used = 0, limit = e->q->srv->cfg->destination_recipient_limit;
    char dom[256], other[256];
    for (size_t i = 0; i < n; i++) {
        if (e->f.rcpts[i].status != QR_PENDING || taken[i])
            continue;
        struct qjob *j = &e->jobs[e->njobs++];
        j->e = e;
        j->idx = &e->jidx[used];
        j->job = (struct smtp_job){.sender = e->f.sender, .envid = e->f.envid, .ret = e->f.ret,
                                   .smtputf8 = e->f.smtputf8, .body8bit = e->f.body8bit, .text = e->text,
                                   .len = e->f.size, .rcpts = &e->jrcpts[used], .owner = j};
        rcpt_domain(e->f.rcpts[i].addr, dom, sizeof dom);
        for (size_t k = i; k < n && j->job.nrcpts < limit; k++) {
            if (e->f.rcpts[k].status != QR_PENDING || taken[k])
                continue;
            rcpt_domain(e->f.rcpts[k].addr, other, sizeof other);
            if (strcmp(dom, other) != 0)
                continue;
            taken[k] = true;
            e->jidx[used] = k;
            e->jrcpts[used] = (struct smtp_job_rcpt){.addr = e->f.rcpts[k].addr, .orcpt = e->f.rcpts[k].orcpt,
                                                     .notify = e->f.rcpts[k].notify};
            used++;
            j->job.nrcpts++;
        }
    }
    free(taken);
    e->srs_sender = srs_sender_for(e);
    for (size_t i = 0; e->srs_sender && i < e->njobs; i++)
        if (!delivered_by_lmtp(e, &e->f.rcpts[e->jobs[i].idx[0]]))
            e->jobs[i].job.sender = e->srs_sender;
    e->jobs_left = e->njobs;
    if (e->njobs == 0) {
        e->jobs_left = 1;
        attempt_complete(e);
        return;
    }
    /* one extra count while dispatching: a job finishing at once cannot complete the attempt
     * (and free the jobs) before the loop is done */
    e->jobs_left = e->njobs + 1;
    struct qjob *jobs = e->jobs;
    for (size_t i = 0; i < e->njobs; i++) {
        rcpt_domain(jobs[i].job.rcpts[0].addr, dom, sizeof dom);
        queue_dispatch(e->q, &jobs[i], dom);
    }
    if (--e->jobs_left == 0)
        attempt_complete(e);
}

static void read_text_work(void *arg)
{
    struct qentry *e = arg;
    e->text = qfile_read_message(e->q->srv->cfg->spool_dir, "queue", &e->f, e->read_error, sizeof e->read_error);
}

static void read_text_done(void *arg)
{
    struct qentry *e = arg;
    if (e->q->stopping)
        return;
    if (!e->text) {
        log_error("event=queue_read_failed qid=%s error=\"%s\"", e->f.qid, e->read_error);
        e->jobs_left = 1;
        attempt_complete(e);
        return;
    }
    build_jobs(e);
}

static void start_attempt(struct qentry *e)
{
    e->in_flight = true;
    e->q->in_flight++;
    e->q->in_flight_bytes += e->f.size;
    e->news = calloc(e->f.nrcpts, 1);
    if (!e->news) {
        e->jobs_left = 1;
        attempt_complete(e);
        return;
    }
    workq_submit(e->q->srv->disk, read_text_work, read_text_done, e);
}

static bool wants_failure_report(const struct qrcpt *r)
{
    return !(r->notify & NOTIFY_NEVER) && (r->notify == 0 || (r->notify & NOTIFY_FAILURE));
}

static bool wants_delay_report(const struct qrcpt *r)
{
    return !(r->notify & NOTIFY_NEVER) && (r->notify == 0 || (r->notify & NOTIFY_DELAY));
}

/* Disk thread: records the attempt's outcome - the state file, or the message's removal when no
 * recipient is left. The file may have been moved to hold/ during the attempt (`postern queue
 * hold`): the outcome counts there too, or a release would send it again to recipients that have
 * it. Deleted meanwhile (`postern queue delete`): nothing is left to record. */
static void save_work(void *arg)
{
    struct qentry *e = arg;
    const char *spool = e->q->srv->cfg->spool_dir;
    const char *dir = qfile_where(spool, e->f.qid);
    e->read_error[0] = '\0';
    if (dir && (e->all_final ? qfile_remove(spool, dir, e->f.qid) < 0 : qfile_save_state(spool, &e->f) < 0))
        snprintf(e->read_error, sizeof e->read_error, "%s", strerror(errno));
}

static void save_done(void *arg)
{
    struct qentry *e = arg;
    if (e->q->stopping)
        return;
    if (e->read_error[0])
        log_error("event=queue_state_failed qid=%s error=\"%s\"", e->f.qid, e->read_error);
    e->in_flight = false;
    e->q->in_flight--;
    e->q->in_flight_bytes -= e->f.size;
    if (e->all_final)
        log_info("event=queue_done qid=%s attempts=%u", e->f.qid, e->f.attempts);
    if (e->all_final || e->gone)
        entry_free(e);
}

/* The DSN (if any) is committed or given up: record the outcome on disk. */
static void finish_attempt(struct qentry *e)
{
    free_attempt(e);
    e->all_final = true;
    for (size_t i = 0; i < e->f.nrcpts; i++)
        e->all_final &= e->f.rcpts[i].status == QR_DELIVERED || e->f.rcpts[i].status == QR_FAILED;
    workq_submit(e->q->srv->disk, save_work, save_done, e);
}

static void dsn_committed(void *arg, bool ok)
{
    struct qentry *e = arg;
    if (!ok) { /* the sender must still hear of it: report next time (and not send again) */
        log_error("event=dsn_failed qid=%s", e->f.qid);
        for (size_t i = 0; i < e->f.nrcpts; i++) {
            if (e->news[i] == 'F')
                e->f.rcpts[i].status = QR_FAILED_UNREPORTED;
            else if (e->news[i] == 'S')
                e->f.rcpts[i].status = QR_RELAYED_UNREPORTED;
        }
        if (e->warn_now)
            e->f.warned = false;
    }
    finish_attempt(e);
}

/* True when the recipient's mail goes to an LMTP server: its success is a final delivery
 * ("delivered", RFC 3464 2.3.3), not a relay to a next hop that sends no reports. */
static bool delivered_by_lmtp(const struct qentry *e, const struct qrcpt *r)
{
    char dom[256];
    struct next_hop hop;
    rcpt_domain(r->addr, dom, sizeof dom);
    policy_next_hop(e->q->srv->policy, e->q->srv->cfg, dom, &hop);
    return hop.lmtp;
}

/* The recipients this attempt must report on (failed, relayed, delayed) into list; returns how many. */
static size_t dsn_recipients(const struct qentry *e, struct dsn_rcpt *list)
{
    size_t n = 0;
    for (size_t i = 0; i < e->f.nrcpts; i++) {
        const struct qrcpt *r = &e->f.rcpts[i];
        enum dsn_action a;
        if (e->news[i] == 'F' && wants_failure_report(r))
            a = DSN_FAILED;
        else if (e->news[i] == 'S')
            a = delivered_by_lmtp(e, r) ? DSN_DELIVERED : DSN_RELAYED;
        else if (e->warn_now && r->status == QR_PENDING && wants_delay_report(r))
            a = DSN_DELAYED;
        else
            continue;
        list[n++] = (struct dsn_rcpt){.addr = r->addr, .orcpt = r->orcpt, .action = a, .diag = r->diag,
                                      .remote_mta = r->remote_mta};
    }
    return n;
}

/* Fills m (a new message) with the report of list[0..n) addressed to the sender (dsn_message.c). */
static enum dsn_outcome fill_dsn(struct qentry *e, struct message *m, struct dsn_rcpt *list, size_t n)
{
    struct server *srv = e->q->srv;
    const struct config *cfg = srv->cfg;
    struct dsn_report rep = {.qid = e->f.qid, .sender = e->f.sender, .envid = e->f.envid,
                             .arrival = e->f.created,
                             .retry_until = cfg->max_queue_lifetime ? e->f.created + (long long)cfg->max_queue_lifetime : 0,
                             .reporting_mta = srv->cfg->hostname,
                             .ret = e->f.require_tls ? RET_HDRS : e->f.ret, /* RFC 8689 5: protected, or less */
                             .original = e->text ? e->text : "", .original_len = e->text ? e->f.size : 0,
                             .rcpts = list, .nrcpts = n};
    m->require_tls = e->f.require_tls; /* RFC 8689 5: the report travels as the message had to */
    return dsn_message_fill(m, &rep, srv->policy, srv->cfg->hostname, e->f.smtputf8, e->f.body8bit);
}

/* Makes the DSN message for this attempt's news into *out. DSN_NOBODY: no one is to be told (or
 * the sender cannot be: logged); DSN_NOT_MADE: out of memory - the caller keeps the news to
 * report at the next attempt rather than forget it. */
static enum dsn_outcome make_dsn(struct qentry *e, struct message **out)
{
    *out = NULL;
    struct dsn_rcpt *list = calloc(e->f.nrcpts ? e->f.nrcpts : 1, sizeof *list);
    if (!list)
        return DSN_NOT_MADE;
    size_t n = dsn_recipients(e, list);
    enum dsn_outcome result = DSN_NOBODY;
    if (n) {
        struct message *m = message_new();
        result = m ? fill_dsn(e, m, list, n) : DSN_NOT_MADE;
        if (result == DSN_MADE)
            *out = m;
        else
            message_free(m);
    }
    free(list);
    return result;
}

static unsigned retry_delay(const struct config *cfg, unsigned attempts)
{
    size_t i = attempts ? attempts - 1 : 0;
    return cfg->retry_schedule.v[i < cfg->retry_schedule.count ? i : cfg->retry_schedule.count - 1];
}

/* A duration in words for a report: "5 days", "12 hours", "1 minute" - the largest unit that
 * divides it, as the config file would say it. */
static void duration_words(unsigned secs, char *out, size_t outsz)
{
    static const struct {
        unsigned size;
        const char *name;
    } units[] = {{86400, "day"}, {3600, "hour"}, {60, "minute"}, {1, "second"}};
    size_t i = 0;
    while (i + 1 < sizeof units / sizeof units[0] && (secs < units[i].size || secs % units[i].size))
        i++;
    unsigned n = secs / units[i].size;
    snprintf(out, outsz, "%u %s%s", n, units[i].name, n == 1 ? "" : "s");
}

/* Every job of the attempt is done: expiry, reports, next attempt time. */
static void attempt_complete(struct qentry *e)
{
    const struct config *cfg = e->q->srv->cfg;
    long long now = (long long)time(NULL);
    e->f.attempts++;
    bool expired = cfg->max_queue_lifetime && now - e->f.created >= (long long)cfg->max_queue_lifetime;
    bool pending = false;
    for (size_t i = 0; i < e->f.nrcpts; i++) {
        struct qrcpt *r = &e->f.rcpts[i];
        if (e->news && r->status == QR_FAILED_UNREPORTED) { /* earlier news, reported now */
            r->status = QR_FAILED;
            e->news[i] = 'F';
        } else if (e->news && r->status == QR_RELAYED_UNREPORTED) {
            r->status = QR_DELIVERED;
            e->news[i] = 'S';
        }
        if (r->status != QR_PENDING)
            continue;
        if (expired && e->news) {
            char diag[700], lifetime[32];
            duration_words(cfg->max_queue_lifetime, lifetime, sizeof lifetime);
            snprintf(diag, sizeof diag, "4.4.7 delivery time expired: not delivered in %s of trying (last error: %s)",
                     lifetime, r->diag ? r->diag : "none");
            free(r->diag);
            r->diag = strdup(diag);
            r->status = QR_FAILED;
            e->news[i] = 'F';
            e->q->srv->metrics.relay[RELAY_EXPIRED]++;
        } else {
            pending = true;
        }
    }
    e->warn_now = pending && !e->f.warned && cfg->delay_warning_time &&
                  now - e->f.created >= (long long)cfg->delay_warning_time;
    if (e->warn_now)
        e->f.warned = true;
    e->f.next_attempt = now + retry_delay(cfg, e->f.attempts);
    struct message *dsn = NULL;
    enum dsn_outcome made = (*e->f.sender && e->news) ? make_dsn(e, &dsn) : DSN_NOBODY;
    if (made == DSN_MADE)
        queue_submit_local(e->q->srv, dsn, dsn_committed, e);
    else if (made == DSN_NOT_MADE)
        dsn_committed(e, false); /* keeps the failures unreported: reported at the next attempt */
    else
        finish_attempt(e);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct queue *q = arg;
    long long now = (long long)time(NULL);
    for (struct qentry *e = q->head; e && q->in_flight < MAX_IN_FLIGHT; e = e->next) {
        if (e->in_flight || e->gone || e->f.next_attempt > now)
            continue;
        /* bounded memory: a message bigger than the whole budget still goes alone */
        if (q->in_flight_bytes && q->in_flight_bytes + e->f.size > MAX_IN_FLIGHT_BYTES)
            break;
        start_attempt(e);
    }
}

/* ---------- committing locally made messages ---------- */

struct local_submit {
    struct server *srv;
    void (*done)(void *arg, bool ok);
    void *arg;
};

static void local_commit_done(void *arg)
{
    struct message *m = arg;
    struct local_submit *ls = m->owner;
    bool ok = m->status == COMMIT_OK;
    if (!ok)
        mailbox_holds_note_failure(ls->srv->holds, m);
    if (ls->srv->queue && ls->srv->queue->stopping) {
        message_free(m);
        free(ls);
        return;
    }
    if (ok && m->nlocal < m->nrcpts && ls->srv->queue)
        queue_add_committed(ls->srv->queue, m->qid);
    if (ok) {
        ls->srv->metrics.reports_made++;
        ls->srv->metrics.local_deliveries += m->nlocal;
        char sender[300];
        log_info("event=accepted qid=%s sender=<%s> rcpts=%zu source=local", m->qid,
                 log_safe(sender, sizeof sender, m->sender), m->nrcpts);
    }
    ls->done(ls->arg, ok);
    message_free(m);
    free(ls);
}

void queue_submit_local(struct server *srv, struct message *m, void (*done)(void *arg, bool ok), void *arg)
{
    struct local_submit *ls = calloc(1, sizeof *ls);
    if (!ls) {
        message_free(m);
        done(arg, false);
        return;
    }
    *ls = (struct local_submit){srv, done, arg};
    m->owner = ls;
    m->mail_dir = srv->cfg->mail_dir;
    m->spool_dir = srv->cfg->spool_dir;
    m->hostname = srv->cfg->hostname;
    m->file_pool = srv->file_pool;
    commit_submit(srv->disk, srv->committer, &srv->commit_cfg, m, local_commit_done);
}

/* ---------- loading ---------- */

struct load_job {
    struct queue *q;
    char qid[24];
    struct qfile f;
    int rc;
    char err[256];
};

static void load_work(void *arg)
{
    struct load_job *lj = arg;
    lj->rc = qfile_load(lj->q->srv->cfg->spool_dir, "queue", lj->qid, &lj->f, lj->err, sizeof lj->err);
}

static void load_done(void *arg)
{
    struct load_job *lj = arg;
    if (lj->q->stopping) {
        if (lj->rc == 0)
            qfile_free(&lj->f);
    } else if (lj->rc < 0) {
        log_error("event=queue_load_failed qid=%s error=\"%s\"", lj->qid, lj->err);
    } else if (entry_find(lj->q, lj->qid) || !entry_add(lj->q, &lj->f)) {
        qfile_free(&lj->f);
    } else {
        event_active(lj->q->kick, 0, 0); /* try it now */
    }
    free(lj);
}

void queue_add_committed(struct queue *q, const char *qid)
{
    struct load_job *lj = calloc(1, sizeof *lj);
    if (!lj) {
        log_error("event=queue_load_failed qid=%s error=\"out of memory\" note=\"delivered after the next rescan\"", qid);
        return;
    }
    lj->q = q;
    snprintf(lj->qid, sizeof lj->qid, "%s", qid);
    workq_submit(q->srv->disk, load_work, load_done, lj);
}

/* Loads every queue file not yet known; drops entries whose file went away; returns how many loaded.
 * Runs on the loop (start-up and rare admin signals only). */
void queue_rescan(struct queue *q, bool flush)
{
    const char *spool = q->srv->cfg->spool_dir;
    char dir[PATH_MAX], err[256];
    snprintf(dir, sizeof dir, "%s/queue", spool);
    for (struct qentry *e = q->head, *next; e; e = next) {
        next = e->next;
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, e->f.qid);
        if (access(path, F_OK) == 0) {
            e->gone = false; /* held and released again during an attempt: still ours */
            if (flush)
                e->f.next_attempt = 0;
            continue;
        }
        e->gone = true;
        if (!e->in_flight)
            entry_free(e);
    }
    DIR *d = opendir(dir);
    unsigned loaded = 0;
    for (struct dirent *de; d && (de = readdir(d));) {
        if (!qfile_id_valid(de->d_name) || entry_find(q, de->d_name))
            continue;
        struct qfile f;
        if (qfile_load(spool, "queue", de->d_name, &f, err, sizeof err) < 0) {
            log_error("event=queue_load_failed qid=%s error=\"%s\"", de->d_name, err);
            continue;
        }
        if (flush)
            f.next_attempt = 0;
        if (entry_add(q, &f))
            loaded++;
        else
            qfile_free(&f);
    }
    if (d)
        closedir(d);
    if (flush)
        queue_resume_destinations(q);
    log_info("event=queue_scan loaded=%u flush=%s", loaded, flush ? "yes" : "no");
    event_active(q->kick, 0, 0);
}

/* Removes state files whose queue file is gone (a crash between the two unlinks). */
static void remove_orphan_states(const char *spool)
{
    char dir[PATH_MAX], path[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/state", spool);
    DIR *d = opendir(dir);
    for (struct dirent *de; d && (de = readdir(d));) {
        if (de->d_name[0] == '.' && strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
            snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
            unlink(path); /* an unfinished temporary state file */
            continue;
        }
        if (!qfile_id_valid(de->d_name))
            continue;
        char q1[PATH_MAX], q2[PATH_MAX];
        snprintf(q1, sizeof q1, "%s/queue/%s", spool, de->d_name);
        snprintf(q2, sizeof q2, "%s/hold/%s", spool, de->d_name);
        if (access(q1, F_OK) != 0 && access(q2, F_OK) != 0) {
            snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
            unlink(path);
        }
    }
    if (d)
        closedir(d);
}

struct queue *queue_new(struct server *srv)
{
    struct queue *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->srv = srv;
    q->index = calloc(INDEX_FIRST_CAP, sizeof *q->index);
    if (!q->index) {
        free(q);
        return NULL;
    }
    q->index_cap = INDEX_FIRST_CAP;
    q->tls = srv->client_tls;
    char sts_cache[PATH_MAX];
    snprintf(sts_cache, sizeof sts_cache, "%s/mta-sts.cache", srv->cfg->spool_dir);
    q->sts = srv->client_tls ? mta_sts_new(srv->base, srv->dns, srv->client_tls, sts_cache) : NULL;
    q->tlsrpt = srv->client_tls && srv->cfg->tls_reports ? tlsrpt_sender_new(srv) : NULL;
    q->tick = event_new(srv->base, -1, EV_PERSIST, on_tick, q);
    q->kick = event_new(srv->base, -1, 0, on_tick, q);
    struct timeval every = {1, 0};
    if (!q->tick || !q->kick || event_add(q->tick, &every) < 0) {
        queue_free(q);
        return NULL;
    }
    remove_orphan_states(srv->cfg->spool_dir);
    queue_rescan(q, false);
    return q;
}

void queue_stop(struct queue *q)
{
    if (!q)
        return;
    q->stopping = true;
    queue_close_destinations(q);
}

void queue_free(struct queue *q)
{
    if (!q)
        return;
    queue_stop(q);
    for (struct qentry *e = q->head, *next; e; e = next) {
        next = e->next;
        free_attempt(e);
        qfile_free(&e->f);
        free(e);
    }
    q->head = NULL;
    mta_sts_free(q->sts);
    tlsrpt_sender_free(q->tlsrpt);
    free(q->index);
    if (q->tick)
        event_free(q->tick);
    if (q->kick)
        event_free(q->kick);
    free(q);
}
