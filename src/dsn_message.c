/* dsn_message.c - see dsn_message.h. */
#include "dsn_message.h"

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

enum dsn_outcome dsn_message_fill(struct message *m, const struct dsn_report *rep, const struct policy *policy,
                                  const char *hostname, bool smtputf8, bool body8bit)
{
    struct mailbox mb;
    struct rcpt_verdict v;
    if (address_parse_mailbox(rep->sender, strlen(rep->sender), &mb) != ADDR_OK) {
        log_warn("event=dsn_undeliverable qid=%s sender=<%s> reason=\"not a valid address\"", rep->qid, rep->sender);
        return DSN_NOBODY;
    }
    policy_check_rcpt(policy, &mb, true, &v);
    if (v.kind == RCPT_REFUSED) {
        log_warn("event=dsn_undeliverable qid=%s sender=<%s> reason=%s", rep->qid, rep->sender, v.reason);
        return DSN_NOBODY;
    }
    struct msg_rcpt mr = {.remote = v.kind == RCPT_RELAY};
    snprintf(mr.addr, sizeof mr.addr, "%s", mb.addr);
    snprintf(mr.local, sizeof mr.local, "%s", v.local);
    snprintf(mr.domain, sizeof mr.domain, "%s", v.domain);
    if (!message_add_rcpt(m, &mr))
        return DSN_NOT_MADE;
    m->smtputf8 = smtputf8;
    m->body_8bit = body8bit || smtputf8;
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    evbuffer_add_printf(m->headers, "Return-Path: <>\nReceived: by %s (Postern) id %s; %s\n", hostname, m->qid,
                        date);
    if (dsn_build(m->body, rep, m->qid) < 0)
        return DSN_NOT_MADE;
    log_info("event=dsn qid=%s dsn_qid=%s to=<%s> recipients=%zu", rep->qid, m->qid, rep->sender, rep->nrcpts);
    return DSN_MADE;
}

/* The text a report returns: the whole stored message (RET=FULL) or its header section, without
 * the Return-Path line (that belongs to the mailbox copy, not to the message). Malloc'd; NULL
 * when out of memory. */
static char *returned_text(const struct message *m, size_t *len)
{
    size_t hlen = evbuffer_get_length(m->headers), blen = evbuffer_get_length(m->body);
    char *text = malloc(hlen + blen + 1);
    if (!text)
        return NULL;
    evbuffer_copyout(m->headers, text, hlen);
    evbuffer_copyout(m->body, text + hlen, blen);
    size_t n = hlen + blen, start = 0;
    text[n] = '\0';
    if (strncmp(text, "Return-Path:", 12) == 0) {
        const char *nl = strchr(text, '\n');
        start = nl ? (size_t)(nl - text) + 1 : n;
    }
    memmove(text, text + start, n - start + 1);
    n -= start;
    *len = n;
    return text;
}

static void report_committed(void *arg, bool ok)
{
    char *qid = arg;
    if (!ok)
        log_error("event=dsn_failed qid=%s detail=\"the delivered report could not be stored\"", qid);
    free(qid);
}

void dsn_report_local_deliveries(struct server *srv, const struct message *m)
{
    if (!*m->sender)
        return; /* RFC 3461 6.2: never a report to the null sender */
    size_t n = 0;
    for (size_t i = 0; i < m->nrcpts; i++)
        n += !m->rcpts[i].remote && (m->rcpts[i].notify & NOTIFY_SUCCESS);
    if (!n)
        return;
    struct dsn_rcpt *list = calloc(n, sizeof *list);
    size_t text_len = 0;
    char *text = list ? returned_text(m, &text_len) : NULL;
    char *qid = strdup(m->qid);
    struct message *report = text && qid ? message_new() : NULL;
    enum dsn_outcome made = DSN_NOT_MADE;
    if (report) {
        size_t k = 0;
        for (size_t i = 0; i < m->nrcpts; i++)
            if (!m->rcpts[i].remote && (m->rcpts[i].notify & NOTIFY_SUCCESS))
                list[k++] = (struct dsn_rcpt){.addr = m->rcpts[i].addr, .orcpt = m->rcpts[i].orcpt,
                                              .action = DSN_DELIVERED};
        struct dsn_report rep = {.qid = m->qid, .sender = m->sender, .envid = *m->envid ? m->envid : NULL,
                                 .arrival = (long long)time(NULL), .reporting_mta = srv->cfg->hostname,
                                 .ret = m->ret, .original = text, .original_len = text_len, .rcpts = list,
                                 .nrcpts = n};
        made = dsn_message_fill(report, &rep, srv->policy, srv->cfg->hostname, m->smtputf8, m->body_8bit);
    }
    free(list);
    free(text);
    if (made == DSN_MADE) {
        queue_submit_local(srv, report, report_committed, qid);
        return;
    }
    message_free(report);
    if (made == DSN_NOT_MADE)
        log_error("event=dsn_failed qid=%s detail=\"out of memory for the delivered report\"", m->qid);
    free(qid);
}
