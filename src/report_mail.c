/* report_mail.c - see report_mail.h. */
#include "report_mail.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "address.h"
#include "log.h"
#include "message.h"
#include "policy.h"
#include "queue.h"
#include "server.h"

bool report_mail_recipients(struct message *m, const struct server *srv, const char (*addresses)[256], size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct mailbox mb;
        struct rcpt_verdict v;
        struct msg_rcpt r = {0};
        if (address_parse_mailbox(addresses[i], strlen(addresses[i]), &mb) != ADDR_OK)
            continue;
        policy_check_rcpt(srv->policy, &mb, true, &v);
        if (v.kind == RCPT_REFUSED || v.kind == RCPT_ALIAS)
            continue;
        policy_rcpt_fill(&r, mb.addr, &v);
        r.notify = NOTIFY_NEVER;
        if (!message_has_rcpt(m, &r) && !message_add_rcpt(m, &r))
            return false;
    }
    return m->nrcpts > 0;
}

static const char *const kind_events[REPORT__KINDS] = {"tls_report", "dmarc_report"};

void report_identity(const char *org_key, const char *contact_key, const char *hostname, char *org, size_t orgsz,
                     char *contact, size_t contactsz)
{
    snprintf(org, orgsz, "%s", *org_key ? org_key : hostname);
    if (*contact_key)
        snprintf(contact, contactsz, "%s", contact_key);
    else
        snprintf(contact, contactsz, "postmaster@%s", hostname);
}

void report_count(struct server *srv, enum report_kind kind, enum report_outcome outcome)
{
    srv->metrics.reports[kind][outcome]++;
}

/* What a store's outcome is counted and logged with. */
struct stored_note {
    struct server *srv;
    enum report_kind kind;
    char domain[ADDR_DOMAIN_MAX + 1];
};

static void report_stored(void *arg, bool ok)
{
    struct stored_note *note = arg;
    report_count(note->srv, note->kind, ok ? REPORT_SENT : REPORT_FAILED);
    if (!ok)
        log_warn("event=%s_failed domain=%s detail=\"the report could not be stored\"", kind_events[note->kind],
                 note->domain);
    free(note);
}

void report_mail_queue(struct server *srv, struct message *m, const char *sender, enum report_kind kind,
                       const char *domain)
{
    struct stored_note *note = calloc(1, sizeof *note);
    if (!note) {
        log_warn("event=%s_failed domain=%s detail=\"out of memory\"", kind_events[kind], domain);
        report_count(srv, kind, REPORT_FAILED);
        message_free(m);
        return;
    }
    *note = (struct stored_note){.srv = srv, .kind = kind};
    snprintf(note->domain, sizeof note->domain, "%s", domain);
    snprintf(m->sender, sizeof m->sender, "%s", sender);
    char date[64];
    message_date((long long)time(NULL), date, sizeof date);
    evbuffer_add_printf(m->headers, "Return-Path: <%s>\nReceived: by %s (Postern) id %s; %s\n", sender,
                        srv->cfg->hostname, m->qid, date);
    queue_submit_local(srv, m, report_stored, note);
}
