/* tlsrpt_send.c - see tlsrpt_send.h. At the end of each period the results are handed to a batch
 * (a new table takes the next period's); each of its domains asks for _smtp._tls.<domain> TXT,
 * and one whose record names mailto: addresses gets its report made and queued; the batch is
 * freed when its last answer is in. */
#include "tlsrpt_send.h"

#include <event2/buffer.h>
#include <errno.h>
#include <event2/event.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "address.h"
#include "dns.h"
#include "fileio.h"
#include "log.h"
#include "message.h"
#include "policy.h"
#include "queue.h"
#include "server.h"
#include "tlsrpt_post.h"

struct tlsrpt_sender {
    struct server *srv;
    char org[256];            /* tls_report_organization, or hostname */
    char contact[300];        /* tls_report_contact, or postmaster@hostname */
    struct tlsrpt *now;       /* the current period's results */
    time_t period_start;
    struct event *timer;      /* the period's end */
    struct batch *batches;    /* periods whose reports are being made */
    struct tlsrpt_post *posts; /* reports on their way to https: addresses */
    bool full_said;           /* this period's table was found full (said once) */
};

/* A period over: its results, its domains' lookups still out. */
struct batch {
    struct tlsrpt_sender *s;
    struct batch *next;
    struct tlsrpt *t;
    time_t start, end;
    size_t pending;
    struct lookup *lookups;   /* one per domain */
};

struct lookup {
    struct batch *b;
    size_t index;             /* the domain's, in b->t */
    struct dns_query *q;
};

static void on_period_end(evutil_socket_t fd, short what, void *arg);
static void load_state(struct tlsrpt_sender *s);
static void save_state(const struct tlsrpt_sender *s);

/* Arms the timer for the end of the period now in: the next multiple of tls_report_interval since
 * the epoch (midnight UTC for a day). */
static void arm(struct tlsrpt_sender *s)
{
    time_t now = time(NULL), len = (time_t)s->srv->cfg->tls_report_interval;
    s->period_start = now - now % len;
    s->full_said = false;
    struct timeval tv = {s->period_start + len - now, 0};
    evtimer_add(s->timer, &tv);
}

struct tlsrpt_sender *tlsrpt_sender_new(struct server *srv)
{
    struct tlsrpt_sender *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->srv = srv;
    const struct config *cfg = srv->cfg;
    snprintf(s->org, sizeof s->org, "%s", *cfg->tls_report_organization ? cfg->tls_report_organization : cfg->hostname);
    if (*cfg->tls_report_contact)
        snprintf(s->contact, sizeof s->contact, "%s", cfg->tls_report_contact);
    else
        snprintf(s->contact, sizeof s->contact, "postmaster@%s", cfg->hostname);
    s->now = tlsrpt_new();
    s->timer = evtimer_new(srv->base, on_period_end, s);
    if (!s->now || !s->timer) {
        tlsrpt_sender_free(s);
        return NULL;
    }
    arm(s);
    load_state(s);
    return s;
}

static void batch_free(struct batch *b)
{
    struct batch **pp = &b->s->batches;
    while (*pp && *pp != b)
        pp = &(*pp)->next;
    if (*pp)
        *pp = b->next;
    for (size_t i = 0; b->lookups && i < tlsrpt_domains(b->t); i++)
        dns_cancel(b->lookups[i].q);
    free(b->lookups);
    tlsrpt_free(b->t);
    free(b);
}

void tlsrpt_sender_free(struct tlsrpt_sender *s)
{
    if (!s)
        return;
    if (s->now)
        save_state(s);
    while (s->batches)
        batch_free(s->batches);
    tlsrpt_posts_free(&s->posts);
    if (s->timer)
        event_free(s->timer);
    tlsrpt_free(s->now);
    free(s);
}

void tlsrpt_sender_note(struct tlsrpt_sender *s, const struct tlsrpt_result *r)
{
    if (!tlsrpt_note(s->now, r) && !s->full_said && (s->full_said = true))
        log_warn("event=tls_report_full domain=%s detail=\"not counted, nor are others this period: %d domains, or "
                 "out of memory\"", r->domain, TLSRPT_DOMAINS_MAX);
}

/* ---------- the report message ---------- */

/* text gzip'd (RFC 1952, as RFC 8460 5.3 asks) into a malloc'd buffer; NULL when out of memory. */
static unsigned char *gzip(const char *text, size_t len, size_t *outlen)
{
    z_stream z = {0};
    if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return NULL;
    uLong cap = deflateBound(&z, (uLong)len);
    unsigned char *out = malloc(cap);
    z.next_in = (Bytef *)(uintptr_t)text;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    bool ok = out && deflate(&z, Z_FINISH) == Z_STREAM_END;
    *outlen = z.total_out;
    deflateEnd(&z);
    if (ok)
        return out;
    free(out);
    return NULL;
}

/* data in base64, lines of 76 characters (RFC 2045 6.8). */
static void add_base64(struct evbuffer *b, const unsigned char *data, size_t len)
{
    for (size_t i = 0; i < len; i += 57) {
        unsigned char line[80];
        int n = EVP_EncodeBlock(line, data + i, (int)(len - i < 57 ? len - i : 57));
        evbuffer_add(b, line, (size_t)n);
        evbuffer_add(b, "\n", 1);
    }
}

/* The report's text (header section and body) into m->body: RFC 8460 5.3's subject and fields, a
 * line for people, the gzip'd JSON attached as submitter!domain!start!end!id.json.gz. */
static bool write_report(struct message *m, const struct tlsrpt_sender *s, const char *domain, const char *to,
                         const char *report_id, const unsigned char *gz, size_t gzlen, time_t start, time_t end)
{
    char date[64];
    message_date((long long)time(NULL), date, sizeof date);
    evbuffer_add_printf(m->body,
                        "From: <%s>\nTo: %s\nDate: %s\nMessage-ID: <%s>\n"
                        "Subject: Report Domain: %s Submitter: %s Report-ID: <%s>\n"
                        "TLS-Report-Domain: %s\nTLS-Report-Submitter: %s\nAuto-Submitted: auto-generated\n"
                        "TLS-Required: No\n"
                        "MIME-Version: 1.0\nContent-Type: multipart/report; report-type=\"tlsrpt\"; "
                        "boundary=\"%s.tlsrpt\"\n\n",
                        s->contact, to, date, report_id, domain, s->org, report_id, domain, s->org, m->qid);
    evbuffer_add_printf(m->body,
                        "--%s.tlsrpt\nContent-Type: text/plain; charset=us-ascii\n\n"
                        "This is an SMTP TLS report (RFC 8460) from %s for %s: how TLS went with the mail\n"
                        "exchangers of %s from %lld to %lld (seconds since 1970, UTC). It is for software\n"
                        "that reads such reports; the domain's _smtp._tls TXT record asked for it.\n\n"
                        "--%s.tlsrpt\nContent-Type: application/tlsrpt+gzip\nContent-Transfer-Encoding: base64\n"
                        "Content-Disposition: attachment; filename=\"%s!%s!%lld!%lld!%s.json.gz\"\n\n",
                        m->qid, s->org, domain, domain, (long long)start, (long long)end, m->qid, s->org, domain,
                        (long long)start, (long long)end, m->qid);
    add_base64(m->body, gz, gzlen);
    return evbuffer_add_printf(m->body, "--%s.tlsrpt--\n", m->qid) > 0;
}

/* rua's addresses as the message's recipients (relayed, as any mail this server sends); false when
 * none could be. */
static bool add_recipients(struct message *m, const struct policy *policy, const char (*rua)[256], size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct mailbox mb;
        struct rcpt_verdict v;
        struct msg_rcpt r = {0};
        if (address_parse_mailbox(rua[i], strlen(rua[i]), &mb) != ADDR_OK)
            continue;
        policy_check_rcpt(policy, &mb, true, &v);
        if (v.kind == RCPT_REFUSED || v.kind == RCPT_ALIAS)
            continue;
        policy_rcpt_fill(&r, mb.addr, &v);
        r.notify = NOTIFY_NEVER;
        if (!message_has_rcpt(m, &r) && !message_add_rcpt(m, &r))
            return false;
    }
    return m->nrcpts > 0;
}

static void report_stored(void *arg, bool ok)
{
    char *domain = arg;
    if (!ok)
        log_warn("event=tls_report_failed domain=%s detail=\"the report could not be stored\"", domain);
    free(domain);
}

/* Queues the report of domain (its JSON gz'd, gzlen octets) to the mailto: addresses of rua. */
static void mail_report(const struct batch *b, size_t i, const struct tlsrpt_rua *rua, const char *report_id,
                        const unsigned char *gz, size_t gzlen)
{
    const struct tlsrpt_sender *s = b->s;
    const struct server *srv = s->srv;
    const char *domain = tlsrpt_domain(b->t, i);
    struct message *m = message_new();
    char to[1100] = "", safe[300], *copy = strdup(domain);
    for (size_t k = 0; k < rua->nmailto; k++)
        snprintf(to + strlen(to), sizeof to - strlen(to), "%s<%s>", k ? ", " : "", rua->mailto[k]);
    bool made = m && copy && add_recipients(m, srv->policy, rua->mailto, rua->nmailto) &&
                write_report(m, s, domain, to, report_id, gz, gzlen, b->start, b->end);
    if (!made) {
        log_warn("event=tls_report_failed domain=%s detail=\"out of memory, or no address of its record can be "
                 "sent to\"", domain);
        message_free(m);
        free(copy);
        return;
    }
    unsigned long long ok, failed;
    tlsrpt_counts(b->t, i, &ok, &failed);
    snprintf(m->sender, sizeof m->sender, "%s", s->contact);
    m->tls_optional = true; /* RFC 8460 3: reports go despite TLS failures (RFC 8689 TLS-Required: No) */
    char date[64];
    message_date((long long)time(NULL), date, sizeof date);
    evbuffer_add_printf(m->headers, "Return-Path: <%s>\nReceived: by %s (Postern) id %s; %s\n", s->contact,
                        srv->cfg->hostname, m->qid, date);
    log_info("event=tls_report domain=%s qid=%s to=\"%s\" successful=%llu failed=%llu", domain, m->qid,
             log_quotable(safe, sizeof safe, to), ok, failed);
    queue_submit_local((struct server *)srv, m, report_stored, copy);
}

/* Makes domain i's report of batch b and sends it where rua says: mail, HTTPS POSTs. */
static void send_report(struct batch *b, size_t i, const struct tlsrpt_rua *rua)
{
    struct tlsrpt_sender *s = b->s;
    const char *domain = tlsrpt_domain(b->t, i);
    char report_id[300];
    snprintf(report_id, sizeof report_id, "%lld.%zu.%08x.tlsrpt@%s", (long long)b->start, i, arc4random(),
             s->srv->cfg->hostname);
    size_t jsonlen = 0, gzlen = 0;
    char *json = tlsrpt_json(b->t, i, s->org, s->contact, report_id, b->start, b->end, &jsonlen);
    unsigned char *gz = json ? gzip(json, jsonlen, &gzlen) : NULL;
    if (!gz)
        log_warn("event=tls_report_failed domain=%s detail=\"out of memory\"", domain);
    if (gz && rua->nmailto)
        mail_report(b, i, rua, report_id, gz, gzlen);
    for (size_t k = 0; gz && k < rua->nhttps; k++)
        tlsrpt_post(s->srv->base, s->srv->dns, s->srv->client_tls, &s->posts, rua->https[k], domain, gz, gzlen);
    free(json);
    free(gz);
}

/* ---------- the period's end ---------- */

/* A domain's _smtp._tls TXT answer: its report to the addresses it names, if any. */
static void on_record(void *arg, const struct dns_answer *answer)
{
    struct lookup *l = arg;
    struct batch *b = l->b;
    l->q = NULL;
    char record[1024];
    struct tlsrpt_rua rua;
    const char *domain = tlsrpt_domain(b->t, l->index);
    bool has = answer->status == DNS_OK &&
               dns_txt_select(answer->data, answer->len, answer->n, "v=TLSRPTv1", "; \t", record, sizeof record) == 1 &&
               tlsrpt_record_rua(record, &rua);
    if (!has)
        log_info("event=tls_report_skipped domain=%s reason=no_record", domain);
    else
        send_report(b, l->index, &rua);
    if (--b->pending == 0)
        batch_free(b);
}

/* Starts the reports of t (the results of [start, end)), which the batch now owns; t is freed
 * when it has none or cannot be reported (out of memory). */
static void start_batch(struct tlsrpt_sender *s, struct tlsrpt *t, time_t start, time_t end)
{
    size_t n = tlsrpt_domains(t);
    struct batch *b = n ? calloc(1, sizeof *b) : NULL;
    struct lookup *lookups = b ? calloc(n, sizeof *lookups) : NULL;
    if (!lookups) {
        if (n)
            log_warn("event=tls_report_failed detail=\"out of memory: a period's results are dropped\"");
        free(b);
        tlsrpt_free(t);
        return;
    }
    *b = (struct batch){.s = s, .next = s->batches, .t = t, .start = start, .end = end, .lookups = lookups};
    s->batches = b;
    b->pending = n + 1; /* one more, held while the lookups start */
    for (size_t i = 0; i < n; i++) {
        char name[300];
        lookups[i] = (struct lookup){.b = b, .index = i};
        snprintf(name, sizeof name, "_smtp._tls.%s", tlsrpt_domain(t, i));
        if (!(lookups[i].q = dns_lookup(s->srv->dns, name, DNS_RR_TXT, on_record, &lookups[i])))
            b->pending--; /* out of memory: this domain's report is not made */
    }
    if (--b->pending == 0)
        batch_free(b);
}

/* The period is over: its results go to a batch that looks up where to report them; the next
 * period starts with an empty table. */
static void on_period_end(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct tlsrpt_sender *s = arg;
    struct tlsrpt *fresh = tlsrpt_new();
    if (!fresh) {
        log_warn("event=tls_report_failed detail=\"out of memory: this period's results are dropped\"");
        tlsrpt_clear(s->now);
        arm(s);
        return;
    }
    struct tlsrpt *over = s->now;
    time_t start = s->period_start;
    s->now = fresh;
    arm(s);
    start_batch(s, over, start, start + (time_t)s->srv->cfg->tls_report_interval);
}

/* ---------- across a restart ---------- */

/* spool_dir/tls-report into path. */
static void state_path(const struct tlsrpt_sender *s, char *path, size_t pathsz)
{
    snprintf(path, pathsz, "%s/tls-report", s->srv->cfg->spool_dir);
}

/* The stop: the current period's results written to spool_dir/tls-report ("postern-tls-report 1
 * <period start> <interval>", then tlsrpt_dump's lines), for the next start to go on with. */
static void save_state(const struct tlsrpt_sender *s)
{
    char path[4200];
    state_path(s, path, sizeof path);
    size_t len;
    char *dump = tlsrpt_domains(s->now) ? tlsrpt_dump(s->now, &len) : NULL;
    struct evbuffer *b = dump ? evbuffer_new() : NULL;
    if (b) {
        evbuffer_add_printf(b, "postern-tls-report 1 %lld %u\n", (long long)s->period_start,
                            s->srv->cfg->tls_report_interval);
        evbuffer_add(b, dump, len);
        size_t total = evbuffer_get_length(b);
        if (file_replace(path, evbuffer_pullup(b, -1), total) < 0)
            log_warn("event=tls_report_state_unwritable path=%s error=\"%s\"", path, strerror(errno));
        evbuffer_free(b);
    }
    free(dump);
}

/* The file's first line, "postern-tls-report 1 <start> <interval>"; false when it is not one. */
static bool state_head(const char *line, long long *start, unsigned *interval)
{
    static const char tag[] = "postern-tls-report 1 ";
    char *end;
    if (strncmp(line, tag, sizeof tag - 1) != 0)
        return false;
    errno = 0;
    *start = strtoll(line + sizeof tag - 1, &end, 10);
    if (errno || *start < 0 || *end != ' ')
        return false;
    unsigned long v = strtoul(end + 1, &end, 10);
    *interval = (unsigned)v;
    return !errno && v <= 86400 && *end == '\n';
}

/* The start: results a stop left - of the current period, counted on; of a period over since, its
 * reports made now. The file is consumed (the next stop writes it again). */
static void load_state(struct tlsrpt_sender *s)
{
    char path[4200], *text = NULL;
    state_path(s, path, sizeof path);
    FILE *f = fopen(path, "r");
    size_t cap = 0;
    long long start = 0;
    unsigned interval = 0;
    ssize_t head = f ? getline(&text, &cap, f) : -1;
    bool ours = head > 0 && state_head(text, &start, &interval) && interval == s->srv->cfg->tls_report_interval &&
                start <= (long long)s->period_start;
    struct evbuffer *rest = ours ? evbuffer_new() : NULL;
    char chunk[4096];
    size_t n;
    while (rest && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        evbuffer_add(rest, chunk, n);
    if (f)
        fclose(f);
    free(text);
    if (rest) {
        evbuffer_add(rest, "", 1);
        struct tlsrpt *t = start == (long long)s->period_start ? s->now : tlsrpt_new();
        bool read = t && tlsrpt_undump(t, (const char *)evbuffer_pullup(rest, -1));
        log_info("event=tls_report_state_loaded path=%s period_start=%lld domains=%zu complete=%s", path, start,
                 t ? tlsrpt_domains(t) : 0, read ? "yes" : "no");
        if (t && t != s->now)
            start_batch(s, t, (time_t)start, (time_t)start + interval);
        evbuffer_free(rest);
    } else if (head > 0) {
        log_warn("event=tls_report_state_dropped path=%s detail=\"not a state of this tls_report_interval\"", path);
    }
    if (head > 0)
        unlink(path);
}
