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

/* alias_target_fn: the report goes to each final recipient of a sender address that is an alias. */
static bool add_report_rcpt(void *arg, const struct mailbox *mb, const struct rcpt_verdict *v)
{
    struct message *m = arg;
    struct msg_rcpt mr = {0};
    policy_rcpt_fill(&mr, mb->addr, v);
    if (v->kind == RCPT_REFUSED || message_has_rcpt(m, &mr))
        return true;
    return message_add_rcpt(m, &mr);
}

enum dsn_outcome dsn_message_fill(struct message *m, const struct dsn_report *rep, const struct policy *policy,
                                  const char *hostname, bool smtputf8, bool body8bit)
{
    struct mailbox mb;
    struct rcpt_verdict v;
    char safe[300];
    if (address_parse_mailbox(rep->sender, strlen(rep->sender), &mb) != ADDR_OK) {
        log_warn("event=dsn_undeliverable qid=%s sender=<%s> reason=\"not a valid address\"", rep->qid,
                 log_safe(safe, sizeof safe, rep->sender));
        return DSN_NOBODY;
    }
    policy_check_rcpt(policy, &mb, true, &v);
    if (v.kind == RCPT_REFUSED) {
        log_warn("event=dsn_undeliverable qid=%s sender=<%s> reason=%s", rep->qid, log_safe(safe, sizeof safe, rep->sender),
                 v.reason);
        return DSN_NOBODY;
    }
    const char *err = NULL;
    if (v.kind == RCPT_ALIAS ? !policy_expand_alias(policy, &mb, &v, add_report_rcpt, m, &err) || m->nrcpts == 0
                             : !add_report_rcpt(m, &mb, &v))
        return DSN_NOT_MADE;
    m->smtputf8 = smtputf8;
    m->body_8bit = body8bit || smtputf8;
    char date[64];
    message_date(time(NULL), date, sizeof date);
    evbuffer_add_printf(m->headers, "Return-Path: <>\nReceived: by %s (Postern) id %s; %s\n", hostname, m->qid,
                        date);
    if (dsn_build(m->body, rep, m->qid) < 0)
        return DSN_NOT_MADE;
    log_info("event=dsn qid=%s dsn_qid=%s to=<%s> recipients=%zu", rep->qid, m->qid,
             log_safe(safe, sizeof safe, rep->sender), rep->nrcpts);
    return DSN_MADE;
}

/* The original a "delivered" report returns: its header section only (RET=FULL is for failures,
 * RFC 3461 4.3), without the Return-Path line, which belongs to the mailbox copy, not to the
 * message. Malloc'd; NULL when out of memory. */
static char *returned_headers(const struct message *m, size_t *len)
{
    size_t hlen = evbuffer_get_length(m->headers), blen = evbuffer_get_length(m->body), skip = 0;
    struct evbuffer_ptr rp = evbuffer_search(m->headers, "Return-Path:", 12, NULL);
    if (rp.pos == 0) {
        struct evbuffer_ptr nl = evbuffer_search(m->headers, "\n", 1, NULL);
        skip = nl.pos < 0 ? hlen : (size_t)nl.pos + 1;
    }
    if (blen && *(const char *)evbuffer_pullup(m->body, 1) == '\n') {
        blen = 1; /* no header section of its own */
    } else {
        struct evbuffer_ptr end = evbuffer_search(m->body, "\n\n", 2, NULL);
        blen = end.pos < 0 ? blen : (size_t)end.pos + 2;
    }
    char *text = malloc(hlen - skip + blen + 1);
    if (!text)
        return NULL;
    struct evbuffer_ptr from;
    evbuffer_ptr_set(m->headers, &from, skip, EVBUFFER_PTR_SET);
    evbuffer_copyout_from(m->headers, &from, text, hlen - skip);
    evbuffer_copyout(m->body, text + hlen - skip, blen);
    *len = hlen - skip + blen;
    text[*len] = '\0';
    return text;
}

bool dsn_report_local_deliveries(struct server *srv, const struct message *m, void (*stored)(void *arg, bool ok),
                                 void *arg)
{
    if (!*m->sender)
        return false; /* RFC 3461 6.2: never a report to the null sender */
    size_t n = m->nexpanded;
    for (size_t i = 0; i < m->nrcpts; i++)
        n += !m->rcpts[i].remote && (m->rcpts[i].notify & NOTIFY_SUCCESS);
    if (!n)
        return false;
    struct dsn_rcpt *list = calloc(n, sizeof *list);
    size_t text_len = 0;
    char *text = list ? returned_headers(m, &text_len) : NULL;
    struct message *report = text ? message_new() : NULL;
    enum dsn_outcome made = DSN_NOT_MADE;
    if (report) {
        size_t k = 0;
        for (size_t i = 0; i < m->nexpanded; i++)
            list[k++] = (struct dsn_rcpt){.addr = m->expanded[i].addr, .orcpt = m->expanded[i].orcpt,
                                          .action = DSN_EXPANDED};
        for (size_t i = 0; i < m->nrcpts; i++)
            if (!m->rcpts[i].remote && (m->rcpts[i].notify & NOTIFY_SUCCESS))
                list[k++] = (struct dsn_rcpt){.addr = m->rcpts[i].addr, .orcpt = m->rcpts[i].orcpt,
                                              .action = DSN_DELIVERED};
        struct dsn_report rep = {.qid = m->qid, .sender = m->sender, .envid = *m->envid ? m->envid : NULL,
                                 .arrival = (long long)time(NULL), .reporting_mta = srv->cfg->hostname,
                                 .ret = m->ret, .original = text, .original_len = text_len, .rcpts = list,
                                 .nrcpts = n};
        report->require_tls = m->require_tls; /* RFC 8689 5 */
        made = dsn_message_fill(report, &rep, srv->policy, srv->cfg->hostname, m->smtputf8, m->body_8bit);
    }
    free(list);
    free(text);
    if (made == DSN_MADE) {
        queue_submit_local(srv, report, stored, arg);
        return true;
    }
    message_free(report);
    if (made == DSN_NOT_MADE)
        log_error("event=dsn_failed qid=%s detail=\"out of memory for the delivered report\"", m->qid);
    return false;
}
