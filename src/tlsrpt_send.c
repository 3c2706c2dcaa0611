/* tlsrpt_send.c - see tlsrpt_send.h. At the end of each period the results are handed to a batch
 * (a new table takes the next period's); each of its domains asks for _smtp._tls.<domain> TXT,
 * and one whose record names mailto: addresses gets its report made and queued; the batch is
 * freed when its last answer is in. */
#include "tlsrpt_send.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dns.h"
#include "log.h"
#include "message.h"
#include "report_format.h"
#include "report_mail.h"
#include "report_period.h"
#include "server.h"
#include "tlsrpt_post.h"

struct tlsrpt_sender {
    struct server *srv;
    char org[256];            /* tls_report_organization, or hostname */
    char contact[300];        /* tls_report_contact, or postmaster@hostname */
    struct report_period period; /* the current period's results (a struct tlsrpt) */
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

static void start_batch(struct tlsrpt_sender *s, struct tlsrpt *t, time_t start, time_t end);

/* A period is over: its results are reported; this period's table is not yet found full. */
static void on_period_over(void *arg, void *table, time_t start, time_t end)
{
    struct tlsrpt_sender *s = arg;
    s->full_said = false;
    start_batch(s, table, start, end);
}

static void *table_create(void)
{
    return tlsrpt_new();
}

static void table_destroy(void *t)
{
    tlsrpt_free(t);
}

static void table_clear(void *t)
{
    tlsrpt_clear(t);
}

static size_t table_domains(const void *t)
{
    return tlsrpt_domains(t);
}

static char *table_dump(const void *t, size_t *len)
{
    return tlsrpt_dump(t, len);
}

static bool table_undump(void *t, const char *text)
{
    return tlsrpt_undump(t, text);
}

static const struct report_table_ops table_ops = {"tls_report", "tls-report", table_create, table_destroy,
                                                  table_clear, table_domains, table_dump, table_undump};

struct tlsrpt_sender *tlsrpt_sender_new(struct server *srv)
{
    struct tlsrpt_sender *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->srv = srv;
    const struct config *cfg = srv->cfg;
    report_identity(cfg->tls_report_organization, cfg->tls_report_contact, cfg->hostname, s->org, sizeof s->org,
                    s->contact, sizeof s->contact);
    if (!report_period_start(&s->period, srv, &table_ops, cfg->tls_report_interval, on_period_over, s)) {
        free(s);
        return NULL;
    }
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
    report_period_stop(&s->period);
    while (s->batches)
        batch_free(s->batches);
    tlsrpt_posts_free(&s->posts);
    free(s);
}

void tlsrpt_sender_note(struct tlsrpt_sender *s, const struct tlsrpt_result *r)
{
    if (!tlsrpt_note(s->period.table, r) && !s->full_said && (s->full_said = true))
        log_warn("event=tls_report_full domain=%s detail=\"not counted, nor are others this period: %d domains, or "
                 "out of memory\"", r->domain, TLSRPT_DOMAINS_MAX);
}

/* ---------- the report message ---------- */

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
    report_add_base64(m->body, gz, gzlen);
    return evbuffer_add_printf(m->body, "--%s.tlsrpt--\n", m->qid) > 0;
}

/* Queues the report of domain (its JSON gz'd, gzlen octets) to the mailto: addresses of rua. */
static void mail_report(const struct batch *b, size_t i, const struct tlsrpt_rua *rua, const char *report_id,
                        const unsigned char *gz, size_t gzlen)
{
    const struct tlsrpt_sender *s = b->s;
    const struct server *srv = s->srv;
    const char *domain = tlsrpt_domain(b->t, i);
    struct message *m = message_new();
    char to[1100] = "", safe[300];
    for (size_t k = 0; k < rua->nmailto; k++)
        snprintf(to + strlen(to), sizeof to - strlen(to), "%s<%s>", k ? ", " : "", rua->mailto[k]);
    bool made = m && report_mail_recipients(m, srv, rua->mailto, rua->nmailto) &&
                write_report(m, s, domain, to, report_id, gz, gzlen, b->start, b->end);
    if (!made) {
        log_warn("event=tls_report_failed domain=%s detail=\"out of memory, or no address of its record can be "
                 "sent to\"", domain);
        report_count((struct server *)srv, REPORT_TLS, REPORT_FAILED);
        message_free(m);
        return;
    }
    unsigned long long ok, failed;
    tlsrpt_counts(b->t, i, &ok, &failed);
    m->tls_optional = true; /* RFC 8460 3: reports go despite TLS failures (RFC 8689 TLS-Required: No) */
    log_info("event=tls_report domain=%s qid=%s to=\"%s\" successful=%llu failed=%llu", domain, m->qid,
             log_quotable(safe, sizeof safe, to), ok, failed);
    report_mail_queue((struct server *)srv, m, s->contact, REPORT_TLS, domain);
}

/* Seconds between the attempts at a POST: a quarter of the period, between 1 s and an hour (the
 * next period's report should not overtake this one's). */
static unsigned post_retry_seconds(unsigned interval)
{
    unsigned quarter = interval / 4;
    return quarter < 1 ? 1 : quarter > 3600 ? 3600 : quarter;
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
    unsigned char *gz = json ? report_gzip(json, jsonlen, &gzlen) : NULL;
    if (!gz) {
        log_warn("event=tls_report_failed domain=%s detail=\"out of memory\"", domain);
        report_count(s->srv, REPORT_TLS, REPORT_FAILED);
    }
    if (gz && rua->nmailto)
        mail_report(b, i, rua, report_id, gz, gzlen);
    for (size_t k = 0; gz && k < rua->nhttps; k++)
        tlsrpt_post(s->srv->base, s->srv->dns, s->srv->client_tls, &s->posts, rua->https[k], domain, gz, gzlen,
                    post_retry_seconds(s->srv->cfg->tls_report_interval));
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
    if (!has) {
        log_info("event=tls_report_skipped domain=%s reason=no_record", domain);
        report_count(b->s->srv, REPORT_TLS, REPORT_SKIPPED);
    } else {
        send_report(b, l->index, &rua);
    }
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
