/* smtp_quota.c - mailbox quotas in the session: a RCPT for a mailbox that is full, or that the
 * declared SIZE would overfill, gets 452 4.2.2 (RFC 3463: a persistent transient failure - its
 * owner can make room - so the sender keeps trying), one that the message can never fit 552 5.2.2;
 * at the end of the data, a message whose text overfills every mailbox it is for gets the same
 * (one reply answers for all recipients: where only some would overfill, it is delivered to all,
 * and those go over their quota by this one message - Maildir++ quotas are soft). The usage comes
 * from quota.c; when it is not known, the RCPT's reply waits for a disk thread to read it. Part of
 * the session (session_priv.h). */
#include <event2/buffer.h>
#include <limits.h>
#include <stdlib.h>

#include "log.h"
#include "maildir.h"
#include "message.h"
#include "policy.h"
#include "quota.h"
#include "quota_notice.h"
#include "reply.h"
#include "server.h"
#include "session_priv.h"

/* The refusal a message of size octets gets from a mailbox of quota limit using u, or
 * REPLY_RCPT_OK when it fits. A message as big as the quota fits an empty mailbox. */
static enum reply_id quota_reply(struct quota_limit limit, const struct quota_usage *u, unsigned long long size)
{
    if (limit.octets && size > limit.octets)
        return REPLY_MESSAGE_OVER_QUOTA;
    if (quota_full(limit, u) || (limit.octets && u->octets + size > limit.octets))
        return REPLY_MAILBOX_FULL;
    return REPLY_RCPT_OK;
}

/* True (r refused, its ORCPT freed) when the mailbox cannot take the message as declared. */
static bool refused(struct session *s, struct msg_rcpt *r, struct quota_limit limit, const struct quota_usage *u)
{
    enum reply_id id = quota_reply(limit, u, s->msg->declared_size);
    if (id == REPLY_RCPT_OK)
        return false;
    log_rcpt_refused(s, r->addr, id, id == REPLY_MAILBOX_FULL ? "mailbox_full" : "bigger_than_quota");
    free(r->orcpt);
    r->orcpt = NULL;
    reply(s, id);
    return true;
}

/* The quota of r's mailbox and its directory into dir; true when it has one (r a local mailbox). */
static bool mailbox_quota(const struct session *s, const struct msg_rcpt *r, char *dir, struct quota_limit *limit)
{
    *limit = r->remote ? (struct quota_limit){0, 0} : policy_quota(s->srv->policy, r->local, r->domain);
    return quota_set(*limit) && maildir_path(s->srv->cfg->mail_dir, r->local, r->domain, dir, PATH_MAX);
}

/* quota_fn: the usage of the waiting recipient's mailbox is known (NULL: unreadable, taken as
 * no quota - the mail is not held back by its accounting). */
static void usage_read(void *arg, const struct quota_usage *u)
{
    struct session *s = arg;
    s->quota_w = NULL;
    s->dns_pending = false;
    struct msg_rcpt r = *s->pending_rcpt;
    free(s->pending_rcpt);
    s->pending_rcpt = NULL;
    if (!u || !refused(s, &r, s->pending_quota, u))
        accept_rcpt(s, &r, REPLY_RCPT_OK);
    if (!s->closing && !s->dead)
        process_input(s);
}

bool rcpt_quota_check(struct session *s, struct msg_rcpt *r)
{
    struct server *srv = s->srv;
    char dir[PATH_MAX];
    struct quota_limit limit;
    if (!mailbox_quota(s, r, dir, &limit))
        return false;
    struct quota_usage u;
    if (quota_known(srv->quotas, dir, false, &u))
        return refused(s, r, limit, &u);
    if (!(s->pending_rcpt = malloc(sizeof *s->pending_rcpt)))
        return false; /* no memory to wait: taken unchecked */
    *s->pending_rcpt = *r;
    if (!(s->quota_w = quota_fetch(srv->quotas, dir, limit, usage_read, s))) {
        free(s->pending_rcpt);
        s->pending_rcpt = NULL;
        return false;
    }
    s->pending_quota = limit;
    s->dns_pending = true; /* no further command is read until the reply */
    return true;
}

/* quota_fn of a read nobody waits for: quota.c remembers its usage, for the end of data. */
static void usage_remembered(void *arg, const struct quota_usage *u)
{
    (void)arg;
    (void)u;
}

void quota_prefetch(struct session *s, const struct msg_rcpt *r)
{
    char dir[PATH_MAX];
    struct quota_usage u;
    struct quota_limit limit;
    if (mailbox_quota(s, r, dir, &limit) && !quota_known(s->srv->quotas, dir, false, &u))
        quota_fetch(s->srv->quotas, dir, limit, usage_remembered, NULL); /* the read frees its waiter */
}

enum reply_id data_quota_refusal(struct session *s, unsigned long long size)
{
    const struct message *m = s->msg;
    enum reply_id verdict = REPLY_QUEUED;
    for (size_t i = 0; i < m->nrcpts; i++) {
        char dir[PATH_MAX];
        struct quota_usage u;
        struct quota_limit limit;
        if (!mailbox_quota(s, &m->rcpts[i], dir, &limit) || !quota_known(s->srv->quotas, dir, true, &u))
            return REPLY_QUEUED; /* a recipient the message is delivered to anyway */
        enum reply_id id = quota_reply(limit, &u, size);
        if (id == REPLY_RCPT_OK)
            return REPLY_QUEUED;
        if (verdict != REPLY_MAILBOX_FULL)
            verdict = id; /* 552 only when it can fit none of them ever */
    }
    return verdict;
}

/* True when a delivery of size (octets, or 1 message) took a count of limit (0: none) from below
 * percent of it to at least that, ending at now. */
static bool crossed(unsigned long long now, unsigned long long size, unsigned long long limit, unsigned percent)
{
    unsigned long long mark = limit / 100 * percent + limit % 100 * percent / 100;
    return limit && percent && now >= mark && now - size < mark;
}

void quota_count_delivery(struct session *s, const struct message *m)
{
    unsigned long long size = evbuffer_get_length(m->headers) + evbuffer_get_length(m->body);
    for (size_t i = 0; i < m->nrcpts; i++) {
        char dir[PATH_MAX];
        struct quota_usage now;
        const struct msg_rcpt *r = &m->rcpts[i];
        unsigned percent = s->srv->policy->quota_warning;
        if (quota_set(r->quota) &&
            maildir_path(s->srv->cfg->mail_dir, r->local, r->domain, dir, sizeof dir) &&
            quota_note_delivery(s->srv->quotas, dir, size, &now) &&
            (crossed(now.octets, size, r->quota.octets, percent) || crossed(now.messages, 1, r->quota.messages, percent)))
            quota_notice_send(s->srv, r, &now);
    }
}
