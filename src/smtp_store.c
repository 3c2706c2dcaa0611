/* smtp_store.c - the end of a message's DATA: refused whole (size, NUL, bare CR/LF, too many
 * hops, the content rules of smtp_content.c, a full mailbox), or - once the checks that look at
 * the text are done (smtp_msgauth.c) - given its trace
 * fields and committed (commit.c); the commit's outcome answers the client (250 only once the
 * message is on stable storage) and ends the transaction. Part of the session (session_priv.h).
 * Never: answer 250 before commit_done, or let the client's next commands run before it. */
#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commit.h"
#include "dsn_message.h"
#include "log.h"
#include "mailbox_hold.h"
#include "message.h"
#include "metrics.h"
#include "policy.h"
#include "queue.h"
#include "reply.h"
#include "server.h"
#include "session_priv.h"

/* The recipients of a message as "<a>,<b>" for the log, cut to fit. */
static const char *rcpt_list(const struct message *m, char *buf, size_t bufsz)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < m->nrcpts && o + 4 < bufsz; i++) {
        char addr[300];
        int n = snprintf(buf + o, bufsz - o, "%s<%s>", i ? "," : "", log_safe(addr, sizeof addr, m->rcpts[i].addr));
        if (n < 0 || (size_t)n >= bufsz - o) {
            snprintf(buf + o, bufsz - o, "...");
            break;
        }
        o += (size_t)n;
    }
    return buf;
}

/* One log line per finished transaction (accepted or refused at end of data). */
static void log_transaction(struct session *s, const char *event, enum reply_id id, const char *detail)
{
    char rcpts[1024], sender[300], msgid[300], user[300];
    const struct message *m = s->msg;
    if (!log_enabled(LOG_INFO))
        return; /* the recipient list is not worth building for nobody */
    /* user=: which account sent it (a stolen password's spam is traced by it) */
    log_info("event=%s session=%s qid=%s client=%s%s%s sender=<%s> rcpts=%s size=%zu reply=%d%s%s%s%s%s%s%s",
             event,
             s->id, m->qid, s->peer_ip, s->auth_user ? " user=" : "",
             s->auth_user ? log_safe(user, sizeof user, s->auth_user) : "", log_safe(sender, sizeof sender, m->sender),
             rcpt_list(m, rcpts, sizeof rcpts), s->data.size, reply_info(id)->code, *m->message_id ? " message_id=" : "",
             log_safe(msgid, sizeof msgid, m->message_id), *m->dkim_signer ? " dkim=" : "", m->dkim_signer,
             detail ? " detail=\"" : "", detail ? detail : "",
             detail ? "\"" : "");
}

/* ---------- received message: headers and commit ---------- */

/* metrics: a message accepted - its size, its local copies, how long the 250 took after the data */
static void count_accepted(struct session *s, const struct message *m)
{
    struct metrics *mt = &s->srv->metrics;
    mt->messages_accepted++;
    mt->octets_accepted += s->data.size;
    mt->local_deliveries += m->nlocal;
    metrics_commit_latency(mt, monotonic_now() - s->data_ended);
}

/* The end of a transaction whose commit is over (and its "delivered" report, if one was due):
 * the reply, then the log line, then the session reads its next command. */
static void finish_transaction(struct session *s)
{
    s->job_pending = false;
    struct message *m = s->msg;
    enum reply_id id = m->status == COMMIT_OK ? REPLY_QUEUED : REPLY_LOCAL_ERROR;
    /* the client first, then the log line: its formatting and write() need not delay the 250
     * (none is sent if the session was closed meanwhile: see reply()) */
    reply(s, id, m->qid);
    if (m->status == COMMIT_OK)
        count_accepted(s, m);
    log_transaction(s, s->dead ? "accepted_client_gone" : m->status == COMMIT_OK ? "accepted" : "deferred", id, NULL);
    if (s->dead) {
        session_free(s);
        return;
    }
    s->state = ST_READY;
    reset_transaction(s);
    if (s->closing)
        return;
    set_timeouts(s);
    process_input(s);
}

/* queue_submit_local's callback for the "delivered" report of the session's message. */
static void report_stored(void *arg, bool ok)
{
    struct session *s = arg;
    if (!ok)
        log_error("event=dsn_failed qid=%s detail=\"the delivered report could not be stored\"", s->msg->qid);
    finish_transaction(s);
}

/* Loop thread: the commit finished; the report it owes, if any, then the answer. */
static void commit_done(void *arg)
{
    struct session *s = ((struct message *)arg)->owner;
    s->srv->commits_running--;
    struct message *m = s->msg;
    /* a failed write or fsync is 451 4.3.0 whatever the cause; a full disk also makes the next
     * MAIL commands get 452 4.3.1 until the space watch sees room again */
    if (m->status == COMMIT_NOSPACE)
        s->srv->space_low = true; /* until the next measurement says otherwise */
    if (m->status != COMMIT_OK) {
        log_error("event=store_failed session=%s qid=%s error=\"%s\"", s->id, m->qid, m->error);
        mailbox_holds_note_failure(s->srv->holds, m);
    }
    else if (m->nlocal < m->nrcpts && s->srv->queue)
        queue_add_committed(s->srv->queue, m->qid);
    if (m->status == COMMIT_OK)
        quota_count_delivery(s, m);
    /* NOTIFY=SUCCESS of local recipients and aliases: the report is stored before the 250 goes out */
    if (m->status == COMMIT_OK && (m->nlocal || m->nexpanded) &&
        dsn_report_local_deliveries(s->srv, m, report_stored, s))
        return;
    finish_transaction(s);
}

/* Ends the transaction with the message not stored: logged as event, answered id. */
static void end_unstored(struct session *s, const char *event, enum reply_id id, const char *detail, const char *arg)
{
    log_transaction(s, event, id, detail);
    s->state = ST_READY;
    reset_transaction(s);
    set_timeouts(s);
    reply(s, id, arg);
}

void refuse_data(struct session *s, enum reply_id id, const char *detail, const char *arg)
{
    end_unstored(s, "rejected", id, detail, arg);
}

void discard_data(struct session *s, const char *detail)
{
    char qid[sizeof s->msg->qid];
    memcpy(qid, s->msg->qid, sizeof qid); /* the reply names it after the transaction is reset */
    s->srv->metrics.messages_discarded++;
    end_unstored(s, "discarded", REPLY_QUEUED, detail, qid);
}

/* The data ended (CRLF.CRLF): refuse it whole, or commit it. */
void finish_data(struct session *s)
{
    unsigned f = s->data.flags;
    if (f & DATA_NO_MEMORY) {
        refuse_data(s, REPLY_LOCAL_ERROR, "out of memory", NULL);
        return;
    }
    if (f) {
        enum reply_id id = (f & DATA_TOO_BIG) ? REPLY_SIZE_EXCEEDED
                           : (f & DATA_NUL)   ? REPLY_NUL_IN_DATA
                                              : REPLY_BARE_LINE_ENDING;
        refuse_data(s, id, (f & DATA_TOO_BIG) ? "too big" : (f & DATA_NUL) ? "NUL" : "bare CR/LF", NULL);
        return;
    }
    struct message *m = s->msg;
    struct header_facts facts;
    message_scan_headers(m, &facts);
    snprintf(m->message_id, sizeof m->message_id, "%s", facts.message_id);
    /* RFC 8689 5: the sender asks for delivery over any TLS, or none - unless it asked for REQUIRETLS
     * (RFC 8689 3: then the field is ignored) */
    m->tls_optional = facts.tls_required_no && !m->require_tls;
    if (facts.received >= s->srv->cfg->max_hops) {
        char detail[48];
        snprintf(detail, sizeof detail, "%u Received fields", facts.received);
        refuse_data(s, REPLY_TOO_MANY_HOPS, detail, NULL);
        return;
    }
    if (content_rules_refuse(s, &facts))
        return;
    enum reply_id full = data_quota_refusal(s, evbuffer_get_length(m->body));
    if (full != REPLY_QUEUED) {
        refuse_data(s, full, "mailbox full", NULL);
        return;
    }
    if (!msgauth_check_begin(s, &facts))
        store_message(s, &facts); /* else once DKIM and DMARC are done */
}

/* Hands the message of its session (m->owner) to the commit (see commit.c). */
static void submit(struct message *m)
{
    struct server *srv = ((struct session *)m->owner)->srv;
    commit_submit(srv->disk, srv->committer, &srv->commit_cfg, m, commit_done);
}

/* Loop thread: the DKIM signature is made (or not: logged); now the commit. */
static void signed_then_commit(void *job)
{
    submit(sign_job_end(job));
}

void store_message(struct session *s, const struct header_facts *facts)
{
    if (!milter_check_begin(s, facts))
        commit_message(s, facts); /* else once the milters accept it */
}

void commit_message(struct session *s, const struct header_facts *facts)
{
    struct message *m = s->msg;
    struct sign_job *sign = build_trace_headers(s, facts);
    m->mail_dir = s->srv->cfg->mail_dir;
    m->spool_dir = s->srv->cfg->spool_dir;
    m->hostname = s->srv->cfg->hostname;
    m->file_pool = s->srv->file_pool;
    for (size_t i = 0; s->srv->policy->quotas_on && i < m->nrcpts; i++) /* for the commit's maildirsize lines */
        if (!m->rcpts[i].remote)
            m->rcpts[i].quota = policy_quota(s->srv->policy, m->rcpts[i].local, m->rcpts[i].domain);
    s->state = ST_COMMIT;
    s->job_pending = true;
    s->srv->commits_running++;
    set_timeouts(s);
    m->owner = s;
    s->data_ended = monotonic_now();
    if (sign) { /* the client gone meanwhile or not, the commit follows (commit_done sees to it) */
        log_debug("event=dkim_signing session=%s qid=%s", s->id, m->qid);
        workq_submit(s->srv->disk, sign_job_run, signed_then_commit, sign);
    } else {
        submit(m);
    }
}

/* ---------- commands ---------- */


