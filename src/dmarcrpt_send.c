/* dmarcrpt_send.c - see dmarcrpt_send.h. At the end of each period the counts are handed to a
 * batch; each of its domains asks for its _dmarc TXT record (the addresses as the record says them
 * now), then for the agreement of each address outside its organizational domain; when a domain's
 * answers are all in, its report is made and queued. The batch is freed when its last domain is
 * done. */
#include "dmarcrpt_send.h"

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

#define MIME_OVERHEAD 2048 /* the report message's fields and text part, at most */

struct dmarcrpt_sender {
    struct server *srv;
    char org[256];                /* dmarc_report_organization, or hostname */
    char contact[300];            /* dmarc_report_contact, or postmaster@hostname */
    const char *receiver;         /* the contact's domain: the Submitter and the file name's receiver */
    struct report_period period;  /* the current period's counts (a struct dmarcrpt) */
    struct batch *batches;        /* periods whose reports are being made */
    bool full_said;               /* this period's table was found full (said once) */
};

struct batch {
    struct dmarcrpt_sender *s;
    struct batch *next;
    struct dmarcrpt *t;
    time_t start, end;
    size_t pending;               /* domains not done, and one held while they start */
    struct job *jobs;             /* one per domain */
};

/* One DNS question of a domain's report: its record (address -1), or an address's agreement. */
struct ask {
    struct job *j;
    long address;
    struct dns_query *q;
};

/* One domain's report on its way. */
struct job {
    struct batch *b;
    size_t index;                 /* the domain's, in b->t */
    struct dmarcrpt_rua rua;
    bool agreed[DMARCRPT_RUA_MAX];
    struct ask asks[1 + DMARCRPT_RUA_MAX];
    size_t waiting;               /* asks out */
};

static void start_batch(struct dmarcrpt_sender *s, struct dmarcrpt *t, time_t start, time_t end);

/* A period is over: its counts are reported; the new period's table is not yet found full. */
static void on_period_over(void *arg, void *table, time_t start, time_t end)
{
    struct dmarcrpt_sender *s = arg;
    s->full_said = false;
    start_batch(s, table, start, end);
}

static void *table_create(void)
{
    return dmarcrpt_new();
}

static void table_destroy(void *t)
{
    dmarcrpt_free(t);
}

static void table_clear(void *t)
{
    dmarcrpt_clear(t);
}

static size_t table_domains(const void *t)
{
    return dmarcrpt_domains(t);
}

static char *table_dump(const void *t, size_t *len)
{
    return dmarcrpt_dump(t, len);
}

static bool table_undump(void *t, const char *text)
{
    return dmarcrpt_undump(t, text);
}

static const struct report_table_ops table_ops = {"dmarc_report", "dmarc-report", table_create, table_destroy,
                                                  table_clear, table_domains, table_dump, table_undump};

struct dmarcrpt_sender *dmarcrpt_sender_new(struct server *srv)
{
    struct dmarcrpt_sender *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->srv = srv;
    const struct config *cfg = srv->cfg;
    report_identity(cfg->dmarc_report_organization, cfg->dmarc_report_contact, cfg->hostname, s->org, sizeof s->org,
                    s->contact, sizeof s->contact);
    const char *at = strrchr(s->contact, '@');
    s->receiver = at ? at + 1 : cfg->hostname;
    if (!report_period_start(&s->period, srv, &table_ops, cfg->dmarc_report_interval, on_period_over, s)) {
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
    for (size_t i = 0; b->jobs && i < dmarcrpt_domains(b->t); i++)
        for (size_t k = 0; k < 1 + DMARCRPT_RUA_MAX; k++)
            dns_cancel(b->jobs[i].asks[k].q);
    free(b->jobs);
    dmarcrpt_free(b->t);
    free(b);
}

void dmarcrpt_sender_free(struct dmarcrpt_sender *s)
{
    if (!s)
        return;
    report_period_stop(&s->period);
    while (s->batches)
        batch_free(s->batches);
    free(s);
}

void dmarcrpt_sender_note(struct dmarcrpt_sender *s, const struct dmarcrpt_message *m)
{
    if (!dmarcrpt_note(s->period.table, m) && !s->full_said && (s->full_said = true))
        log_warn("event=dmarc_report_full domain=%s detail=\"not counted, nor are others this period: %d domains or "
                 "%d rows, or out of memory\"", m->policy_domain, DMARCRPT_DOMAINS_MAX, DMARCRPT_ROWS_MAX);
}

/* ---------- the report message ---------- */

/* The report's text (header section and body) into m->body: RFC 7489 7.2.1.1's subject, a line
 * for people, the gzip'd XML attached as receiver!domain!begin!end!id.xml.gz. */
static bool write_report(struct message *m, const struct dmarcrpt_sender *s, const char *domain, const char *to,
                         const char *report_id, const unsigned char *gz, size_t gzlen, time_t start, time_t end)
{
    char date[64];
    message_date((long long)time(NULL), date, sizeof date);
    evbuffer_add_printf(m->body,
                        "From: <%s>\nTo: %s\nDate: %s\nMessage-ID: <%s>\n"
                        "Subject: Report Domain: %s Submitter: %s Report-ID: <%s>\nAuto-Submitted: auto-generated\n"
                        "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"%s.dmarc\"\n\n",
                        s->contact, to, date, report_id, domain, s->receiver, report_id, m->qid);
    evbuffer_add_printf(m->body,
                        "--%s.dmarc\nContent-Type: text/plain; charset=us-ascii\n\n"
                        "This is a DMARC aggregate report (RFC 7489) from %s for %s: the DMARC results\n"
                        "of the mail received from %lld to %lld (seconds since 1970, UTC) whose From field\n"
                        "names %s or a domain under its policy. It is for software that reads such\n"
                        "reports; the rua= tag of the domain's _dmarc TXT record asked for it.\n\n"
                        "--%s.dmarc\nContent-Type: application/gzip\nContent-Transfer-Encoding: base64\n"
                        "Content-Disposition: attachment; filename=\"%s!%s!%lld!%lld!%s.xml.gz\"\n\n",
                        m->qid, s->org, domain, (long long)start, (long long)end - 1, domain, m->qid,
                        s->receiver, domain, (long long)start, (long long)end - 1, m->qid);
    report_add_base64(m->body, gz, gzlen);
    return evbuffer_add_printf(m->body, "--%s.dmarc--\n", m->qid) > 0;
}

/* The addresses of j that agreed and whose size limit a message of size octets keeps, into to
 * (a To field's list) and out; their number. The others are logged. */
static size_t pick_addresses(const struct job *j, const char *domain, size_t size, char (*out)[256], char *to,
                             size_t tosz)
{
    size_t n = 0;
    for (size_t k = 0; k < j->rua.n; k++) {
        const char *a = j->rua.mailto[k];
        if (j->agreed[k] && j->rua.max_size[k] && size > j->rua.max_size[k])
            log_info("event=dmarc_report_skipped domain=%s address=%s reason=too_large size=%zu limit=%llu", domain, a,
                     size, j->rua.max_size[k]);
        if (!j->agreed[k] || (j->rua.max_size[k] && size > j->rua.max_size[k]))
            continue;
        snprintf(out[n++], 256, "%s", a);
        snprintf(to + strlen(to), tosz - strlen(to), "%s<%s>", n > 1 ? ", " : "", a);
    }
    return n;
}

/* Makes domain's report of j's batch and queues it to the addresses that may have it. */
static void send_report(const struct job *j)
{
    const struct batch *b = j->b;
    const struct dmarcrpt_sender *s = b->s;
    const char *domain = dmarcrpt_domain(b->t, j->index);
    char report_id[300], to[1100] = "", addresses[DMARCRPT_RUA_MAX][256], safe[300];
    snprintf(report_id, sizeof report_id, "%lld.%zu.%08x.dmarc@%s", (long long)b->start, j->index, arc4random(),
             s->srv->cfg->hostname);
    size_t xmllen = 0, gzlen = 0, n = 0;
    char *xml = dmarcrpt_xml(b->t, j->index, s->org, s->contact, report_id, b->start, b->end, &xmllen);
    unsigned char *gz = xml ? report_gzip(xml, xmllen, &gzlen) : NULL;
    free(xml);
    if (gz)
        n = pick_addresses(j, domain, (gzlen + 2) / 3 * 4 * 77 / 76 + MIME_OVERHEAD, addresses, to, sizeof to);
    struct message *m = gz && n ? message_new() : NULL;
    bool made = m && report_mail_recipients(m, s->srv, addresses, n) &&
                write_report(m, s, domain, to, report_id, gz, gzlen, b->start, b->end);
    free(gz);
    if (!made) {
        report_count(s->srv, REPORT_DMARC, n || !gz ? REPORT_FAILED : REPORT_SKIPPED);
        if (n || !gz)
            log_warn("event=dmarc_report_failed domain=%s detail=\"out of memory, or no address of its record can be "
                     "sent to\"", domain);
        message_free(m);
        return;
    }
    log_info("event=dmarc_report domain=%s qid=%s to=\"%s\" messages=%llu", domain, m->qid,
             log_quotable(safe, sizeof safe, to), dmarcrpt_messages(b->t, j->index));
    report_mail_queue(s->srv, m, s->contact, REPORT_DMARC, domain);
}

/* ---------- the period's end ---------- */

/* One of j's asks answered: when it was the last, the report is sent and the domain is done. */
static void ask_done(struct job *j)
{
    if (--j->waiting > 0)
        return;
    struct batch *b = j->b;
    bool any = false;
    for (size_t k = 0; k < j->rua.n; k++)
        any |= j->agreed[k];
    if (any)
        send_report(j);
    else
        report_count(b->s->srv, REPORT_DMARC, REPORT_SKIPPED); /* no record, no rua=, or none agreed */
    if (--b->pending == 0)
        batch_free(b);
}

static void on_answer(void *arg, const struct dns_answer *answer);

/* Starts ask k of j for name (of TXT records); false when it could not be (out of memory). */
static bool ask(struct job *j, size_t k, const char *name)
{
    struct ask *a = &j->asks[k];
    *a = (struct ask){.j = j, .address = (long)k - 1};
    a->q = dns_lookup(j->b->s->srv->dns, name, DNS_RR_TXT, on_answer, a);
    j->waiting += a->q != NULL;
    return a->q != NULL;
}

/* The domain's record is in: its addresses, those inside its organizational domain taken, the
 * others asked for their agreement. */
static void on_record(struct job *j, const struct dns_answer *answer)
{
    const char *domain = dmarcrpt_domain(j->b->t, j->index);
    char record[DMARC_RECORD_MAX + 1];
    bool has = answer->status == DNS_OK &&
               dmarc_select_record(answer->data, answer->len, answer->n, record, sizeof record) == 1;
    if (!has || !dmarcrpt_record_rua(record, &j->rua)) {
        log_info("event=dmarc_report_skipped domain=%s reason=%s", domain, has ? "no_rua" : "no_record");
        return;
    }
    for (size_t k = 0; k < j->rua.n; k++) {
        char name[600];
        if (!dmarcrpt_external(domain, j->rua.mailto[k], name, sizeof name))
            j->agreed[k] = true;
        else
            ask(j, k + 1, name);
    }
}

/* An address outside the domain agrees to its reports with a v=DMARC1 record (RFC 7489 7.1). */
static void on_agreement(struct job *j, size_t k, const struct dns_answer *answer)
{
    char record[DMARC_RECORD_MAX + 1];
    j->agreed[k] = answer->status == DNS_OK &&
                   dmarc_select_record(answer->data, answer->len, answer->n, record, sizeof record) != 0;
    if (!j->agreed[k])
        log_info("event=dmarc_report_skipped domain=%s address=%s reason=not_authorized detail=\"no v=DMARC1 record "
                 "at %s._report._dmarc.%s\"", dmarcrpt_domain(j->b->t, j->index), j->rua.mailto[k],
                 dmarcrpt_domain(j->b->t, j->index), strrchr(j->rua.mailto[k], '@') + 1);
}

static void on_answer(void *arg, const struct dns_answer *answer)
{
    struct ask *a = arg;
    struct job *j = a->j;
    a->q = NULL;
    if (a->address < 0)
        on_record(j, answer);
    else
        on_agreement(j, (size_t)a->address, answer);
    ask_done(j);
}

/* Starts the reports of t (the counts of [start, end)), which the batch now owns; t is freed when
 * it has none or cannot be reported (out of memory). */
static void start_batch(struct dmarcrpt_sender *s, struct dmarcrpt *t, time_t start, time_t end)
{
    size_t n = dmarcrpt_domains(t);
    struct batch *b = n ? calloc(1, sizeof *b) : NULL;
    struct job *jobs = b ? calloc(n, sizeof *jobs) : NULL;
    if (!jobs) {
        if (n)
            log_warn("event=dmarc_report_failed detail=\"out of memory: a period's counts are dropped\"");
        free(b);
        dmarcrpt_free(t);
        return;
    }
    *b = (struct batch){.s = s, .next = s->batches, .t = t, .start = start, .end = end, .jobs = jobs};
    s->batches = b;
    b->pending = n + 1; /* one more, held while the lookups start */
    for (size_t i = 0; i < n; i++) {
        char name[300];
        jobs[i] = (struct job){.b = b, .index = i};
        snprintf(name, sizeof name, "_dmarc.%s", dmarcrpt_domain(t, i));
        if (!ask(&jobs[i], 0, name))
            b->pending--; /* out of memory: this domain's report is not made */
    }
    if (--b->pending == 0)
        batch_free(b);
}
