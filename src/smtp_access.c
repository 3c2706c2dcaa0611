/* smtp_access.c - the access tables (access.h) applied to a session of the MX role: the client's
 * client_access verdict as it connects (again at the first MAIL after a reload), the EHLO/HELO
 * name's helo_access verdict at each EHLO/HELO, the sender's sender_access verdict at each MAIL,
 * all kept with their texts (a reload may free the tables meanwhile) and applied at each RCPT but
 * postmaster's (RFC 5321 4.5.1), as block lists are. Authenticated users are not judged by them.
 * Part of the session (session_priv.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "log.h"
#include "message.h"
#include "policy.h"
#include "server.h"
#include "session_priv.h"

/* Keeps verdict v in *copy, its text copied (out of memory: the verdict without its text). */
static void keep_verdict(struct access_copy *copy, const struct access_verdict *v)
{
    free(copy->text);
    copy->action = v->action;
    copy->line = v->line;
    copy->text = v->text ? strdup(v->text) : NULL;
}

/* Looks the client up in client_access (MX role) and keeps the verdict: as it connects (logged
 * when there is one), and again after a reload (logged when it changed), so that a long session
 * meets a table the administrator changed from its next transaction on. */
static void take_client_verdict(struct session *s, bool again)
{
    s->access_reloads = s->srv->metrics.reloads;
    if (s->role != ROLE_MX)
        return;
    struct access_verdict v = access_client(&s->srv->policy->access, (const struct sockaddr *)&s->peer);
    enum access_action before = s->client_access.action;
    keep_verdict(&s->client_access, &v);
    if (again ? v.action != before : v.action != ACCESS_NONE)
        log_info("event=client_access session=%s client=%s action=%s line=%d%s", s->id, s->peer_ip,
                 access_action_name(v.action), v.line, again ? " reloaded=yes" : "");
}

void client_access_start(struct session *s)
{
    take_client_verdict(s, false);
}

void sender_access_check(struct session *s, const struct mailbox *mb)
{
    if (s->access_reloads != s->srv->metrics.reloads)
        take_client_verdict(s, true);
    struct access_verdict v = {ACCESS_NONE, NULL, 0};
    if (s->role == ROLE_MX && !s->auth_user)
        v = access_sender(&s->srv->policy->access, mb, s->srv->policy->recipient_delimiter);
    keep_verdict(&s->sender_access, &v);
    if (v.action != ACCESS_NONE && log_enabled(LOG_INFO)) {
        char sender[300];
        log_info("event=sender_access session=%s qid=%s client=%s sender=<%s> action=%s line=%d", s->id, s->msg->qid,
                 s->peer_ip, log_safe(sender, sizeof sender, mb->addr), access_action_name(v.action), v.line);
    }
}

void helo_access_check(struct session *s)
{
    struct access_verdict v = {ACCESS_NONE, NULL, 0};
    if (s->role == ROLE_MX)
        v = access_helo(&s->srv->policy->access, s->helo);
    keep_verdict(&s->helo_access, &v);
    if (v.action != ACCESS_NONE && log_enabled(LOG_INFO)) {
        char helo[300];
        log_info("event=helo_access session=%s client=%s helo=%s action=%s line=%d", s->id, s->peer_ip,
                 log_safe(helo, sizeof helo, s->helo), access_action_name(v.action), v.line);
    }
}

/* helo_name_check: a client of the MX role that the server does not trust, whose EHLO name is
 * no FQDN or address literal, gets 504 5.5.2 (true: sent and logged). */
static bool helo_name_refused(struct session *s, const char *rcpt)
{
    if (!s->srv->cfg->helo_name_check || s->role != ROLE_MX || s->may_relay || client_permitted(s) ||
        !*s->helo || smtp_helo_name_qualified(s->helo))
        return false;
    char helo[300];
    log_rcpt_refused(s, rcpt, REPLY_HELO_NOT_QUALIFIED, "helo_name");
    reply(s, REPLY_HELO_NOT_QUALIFIED, log_safe(helo, sizeof helo, s->helo));
    return true;
}

/* The end of an access refusal's reply: ": " and the entry's text, or nothing. */
static const char *reply_tail(const struct access_copy *c, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s%s", c->text ? ": " : "", c->text ? c->text : "");
    return out;
}

bool access_refuses_rcpt(struct session *s, const char *rcpt)
{
    const struct access_copy *c = &s->client_access, *m = &s->sender_access, *h = &s->helo_access;
    char tail[ACCESS_TEXT_MAX + 3];
    if (s->auth_user)
        return false;
    if (c->action == ACCESS_REJECT || c->action == ACCESS_DEFER) {
        enum reply_id id = c->action == ACCESS_REJECT ? REPLY_ACCESS_CLIENT_REJECTED : REPLY_ACCESS_CLIENT_DEFERRED;
        log_rcpt_refused(s, rcpt, id, "client_access");
        reply(s, id, s->peer_ip, reply_tail(c, tail, sizeof tail));
        return true;
    }
    if (m->action == ACCESS_REJECT || m->action == ACCESS_DEFER) {
        enum reply_id id = m->action == ACCESS_REJECT ? REPLY_ACCESS_SENDER_REJECTED : REPLY_ACCESS_SENDER_DEFERRED;
        log_rcpt_refused(s, rcpt, id, "sender_access");
        reply(s, id, reply_tail(m, tail, sizeof tail));
        return true;
    }
    if (h->action == ACCESS_REJECT || h->action == ACCESS_DEFER) {
        enum reply_id id = h->action == ACCESS_REJECT ? REPLY_ACCESS_HELO_REJECTED : REPLY_ACCESS_HELO_DEFERRED;
        char helo[300];
        log_rcpt_refused(s, rcpt, id, "helo_access");
        reply(s, id, log_safe(helo, sizeof helo, s->helo), reply_tail(h, tail, sizeof tail));
        return true;
    }
    return helo_name_refused(s, rcpt);
}

void access_session_free(struct session *s)
{
    free(s->client_access.text);
    free(s->sender_access.text);
    free(s->helo_access.text);
    s->client_access = s->sender_access = s->helo_access = (struct access_copy){0};
}
