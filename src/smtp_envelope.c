/* smtp_envelope.c - MAIL and RCPT: their parameters (SIZE, BODY, SMTPUTF8, and DSN's RET, ENVID,
 * NOTIFY, ORCPT), the sender and recipient decisions (policy.c), and the domain checks whose
 * replies wait for DNS - a null MX (RFC 7505: 550 5.7.27 for a sender on the MX role, 556 5.1.10
 * for a relayed recipient), a domain that does not exist (550 5.1.8 sender, sender_domain_check;
 * 550 5.1.2 relayed recipient, recipient_domain_check) - for at most dns_timeout, during which the
 * session reads no further commands.
 * Never: accept a parameter without EHLO, or keep an ORCPT copy when the recipient is refused. */
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "address.h"
#include "auth.h"
#include "conn_count.h"
#include "dns.h"
#include "log.h"
#include "mailbox_hold.h"
#include "message.h"
#include "policy.h"
#include "reply.h"
#include "server.h"
#include "session_priv.h"
#include "smtp_parse.h"
#include "srs.h"
#include "strmap.h"

/* An xtext value (RFC 3461 4) of 1 to max octets: ENVID's and AUTH's. */
static bool xtext_value_ok(const struct esmtp_param *p, size_t max)
{
    return p->value && p->value_len > 0 && p->value_len <= max && smtp_xtext_valid(p->value, p->value_len);
}

/* DSN MAIL parameters (RFC 3461 4.3, 4.4): RET=FULL|HDRS, ENVID=xtext. */
static enum reply_id dsn_mail_param(struct session *s, const struct esmtp_param *p, const char *val)
{
    if (p->key_len == 3) {
        if (!p->value || (strcasecmp(val, "FULL") != 0 && strcasecmp(val, "HDRS") != 0))
            return REPLY_PARAM_BAD_VALUE;
        s->msg->ret = strcasecmp(val, "FULL") == 0 ? RET_FULL : RET_HDRS;
        return REPLY_SENDER_OK;
    }
    if (!xtext_value_ok(p, DSN_ENVID_MAX))
        return REPLY_PARAM_BAD_VALUE;
    memcpy(s->msg->envid, p->value, p->value_len);
    s->msg->envid[p->value_len] = '\0';
    return REPLY_SENDER_OK;
}

/* RFC 4954 5: AUTH=<> or AUTH=xtext(addr-spec), the identity that first submitted the message, as
 * a relaying client that authenticated claims it (RFC 4954 5: such an MTA MUST send AUTH=<> when
 * it does not know the submitter). Taken from a session that offers the AUTH extension, and
 * discarded: Postern trusts no client to speak for another submitter, which the RFC allows
 * ("parse and discard"). Refused (555) where AUTH is not offered, like any parameter of an
 * extension not advertised. */
#define AUTH_PARAM_MAX_LEN 500 /* RFC 4954 3 (5) */

static enum reply_id auth_mail_param(struct session *s, const struct esmtp_param *p)
{
    if (!auth_offered(s) && !s->auth_user)
        return REPLY_PARAM_UNKNOWN;
    return xtext_value_ok(p, AUTH_PARAM_MAX_LEN) ? REPLY_SENDER_OK : REPLY_PARAM_BAD_VALUE;
}

/* Applies MAIL parameters (SIZE, BODY, SMTPUTF8, RET, ENVID, AUTH, REQUIRETLS); returns the
 * refusal or REPLY_SENDER_OK. */
static enum reply_id mail_params(struct session *s, const struct path_args *a, bool *utf8, bool *body8,
                                 unsigned long long *size)
{
    for (size_t i = 0; i < a->nparams; i++) {
        const struct esmtp_param *p = &a->params[i];
        char val[32] = "";
        if (!s->esmtp)
            return REPLY_PARAM_UNKNOWN; /* extensions need EHLO */
        if ((p->key_len == 3 && strncasecmp(p->key, "RET", 3) == 0) ||
            (p->key_len == 5 && strncasecmp(p->key, "ENVID", 5) == 0)) {
            if (p->value && p->value_len < sizeof val)
                memcpy(val, p->value, p->value_len), val[p->value_len] = '\0';
            enum reply_id id = dsn_mail_param(s, p, val);
            if (id != REPLY_SENDER_OK)
                return id;
            continue;
        }
        if (p->key_len == 4 && strncasecmp(p->key, "AUTH", 4) == 0) {
            enum reply_id id = auth_mail_param(s, p);
            if (id != REPLY_SENDER_OK)
                return id;
            continue;
        }
        if (p->value && p->value_len < sizeof val)
            memcpy(val, p->value, p->value_len), val[p->value_len] = '\0';
        if (p->key_len == 4 && strncasecmp(p->key, "SIZE", 4) == 0) {
            if (!p->value || p->value_len > 20 || strspn(val, "0123456789") != p->value_len)
                return REPLY_PARAM_BAD_VALUE;
            /* RFC 1870: 1*20DIGIT, leading zeros allowed; a value past 2^64 reads as ULLONG_MAX */
            if ((*size = strtoull(val, NULL, 10)) > s->srv->cfg->max_message_size)
                return REPLY_SIZE_EXCEEDED;
        } else if (p->key_len == 4 && strncasecmp(p->key, "BODY", 4) == 0) {
            if (!p->value || (strcasecmp(val, "7BIT") != 0 && strcasecmp(val, "8BITMIME") != 0))
                return REPLY_PARAM_BAD_VALUE;
            *body8 = strcasecmp(val, "8BITMIME") == 0;
        } else if (p->key_len == 8 && strncasecmp(p->key, "SMTPUTF8", 8) == 0) {
            if (p->value)
                return REPLY_PARAM_BAD_VALUE;
            *utf8 = true;
        } else if (p->key_len == 10 && strncasecmp(p->key, "REQUIRETLS", 10) == 0) {
            if (!s->tls || !s->srv->cfg->requiretls)
                return REPLY_PARAM_UNKNOWN; /* offered only over TLS */
            if (p->value)
                return REPLY_PARAM_BAD_VALUE;
            s->msg->require_tls = true;
        } else {
            return REPLY_PARAM_UNKNOWN;
        }
    }
    return REPLY_SENDER_OK;
}

/* MX role: whether the sender's domain must be asked whether it takes mail: a null MX (RFC 7505
 * 4.2, sender_null_mx_check) or no such domain (sender_domain_check). */
static bool sender_needs_domain_check(struct session *s, const struct mailbox *mb)
{
    const struct config *cfg = s->srv->cfg;
    return s->role == ROLE_MX && (cfg->sender_null_mx_check || cfg->sender_domain_check) && !mb->is_null &&
           !client_permitted(s) &&
           !mb->literal && *mb->domain && !strmap_get(&s->srv->policy->local_domains, mb->domain, NULL);
}

static void dns_check_done(struct session *s, const struct dns_route *verdict);

#define DNS_TIMEOUTS_TO_PAUSE 3 /* in a row: DNS is out, not one slow zone */

/* One more MAIL/RCPT-time check without an answer in time: after DNS_TIMEOUTS_TO_PAUSE in a row,
 * the checks are skipped for dns_outage_pause - each would only make its client wait dns_timeout
 * for no verdict. After the pause one more timeout is enough to pause again. */
static void note_dns_timeout(struct server *srv)
{
    unsigned pause = srv->cfg->dns_outage_pause;
    if (++srv->dns_check_timeouts < DNS_TIMEOUTS_TO_PAUSE || pause == 0)
        return;
    srv->dns_check_timeouts = DNS_TIMEOUTS_TO_PAUSE - 1;
    srv->dns_checks_paused_until = monotonic_now() + pause;
    log_warn("event=dns_checks_paused seconds=%u detail=\"%u domain checks in a row got no DNS answer within "
             "dns_timeout (%us): MAIL and RCPT skip them for dns_outage_pause; is the resolver reachable?\"", pause,
             DNS_TIMEOUTS_TO_PAUSE, srv->cfg->dns_timeout);
}

static void on_domain_answer(void *arg, const struct dns_route *verdict)
{
    struct session *s = arg;
    s->srv->dns_check_timeouts = 0;
    s->dns_q = NULL;
    evtimer_del(s->dns_timer);
    dns_check_done(s, verdict);
}

static void on_dns_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct session *s = arg;
    dns_cancel(s->dns_q);
    s->dns_q = NULL;
    const char *addr = s->dns_for_rcpt ? s->pending_rcpt->addr : s->msg->sender, *at = strrchr(addr, '@');
    char domain[300];
    log_info("event=dns_check_timeout session=%s check=%s domain=%s waited=%us detail=\"no DNS answer in time: "
             "the %s goes on without the domain check (null MX, existence)\"", s->id,
             s->dns_for_rcpt ? "recipient_domain" : "sender_domain", log_safe(domain, sizeof domain, at ? at + 1 : ""),
             s->srv->cfg->dns_timeout, s->dns_for_rcpt ? "recipient" : "sender");
    note_dns_timeout(s->srv);
    dns_check_done(s, NULL); /* no answer in time: no verdict, the mail goes on */
}

/* Asks whether domain takes mail (a null MX; with sender_domain_check or recipient_domain_check,
 * whether it exists); the reply waits for the answer (or dns_timeout). False (no check: the
 * command goes on) without a resolver or while a DNS outage pauses the checks. */
static bool start_domain_check(struct session *s, const char *domain, bool for_rcpt)
{
    const struct config *cfg = s->srv->cfg;
    if (!s->srv->dns || monotonic_now() < s->srv->dns_checks_paused_until)
        return false;
    if (!s->dns_timer && !(s->dns_timer = evtimer_new(s->srv->base, on_dns_timeout, s)))
        return false;
    /* existence: asked only where a missing domain is refused; never for relay_host's recipients (the
     * smarthost resolves them, perhaps in DNS this server cannot see) */
    bool existence = for_rcpt ? cfg->recipient_domain_check && !*cfg->relay_host : cfg->sender_domain_check;
    if (!(s->dns_q = dns_check_domain(s->srv->dns, domain, existence, on_domain_answer, s)))
        return false;
    struct timeval tv = {(time_t)cfg->dns_timeout, 0};
    evtimer_add(s->dns_timer, &tv);
    s->dns_pending = true;
    s->dns_for_rcpt = for_rcpt;
    return true;
}

static void accept_sender(struct session *s)
{
    s->state = ST_MAIL;
    reply(s, REPLY_SENDER_OK);
}

static void log_mail_refused(struct session *s, const char *addr, enum reply_id id)
{
    char sender[300];
    log_info("event=mail_refused session=%s client=%s sender=<%s> reply=%d", s->id, s->peer_ip,
             log_safe(sender, sizeof sender, addr), reply_info(id)->code);
}

static bool user_rate_ok(struct session *s, const struct mailbox *mb);
static void accept_alias(struct session *s, const struct mailbox *mb, struct msg_rcpt *r,
                         const struct rcpt_verdict *v);
static bool literal_is_this_host(const struct session *s, const char *domain);

/* The reply a domain check's verdict (NULL: none, timed out) calls for: REPLY_SENDER_OK or
 * REPLY_RCPT_RELAY_OK when the command goes on, else the refusal. Only what was asked about comes
 * back (dns_check_domain's existence). A failed lookup holds a sender back (450: its server
 * retries) but not a recipient (the queue retries, and bounces if need be). */
static enum reply_id domain_check_reply(const struct session *s, const struct dns_route *verdict)
{
    enum dns_status st = verdict ? verdict->status : DNS_OK;
    if (s->dns_for_rcpt) {
        if (st == DNS_NULL_MX)
            return REPLY_NULL_MX_DOMAIN;
        return st == DNS_NXDOMAIN ? REPLY_RCPT_DOMAIN_UNKNOWN : REPLY_RCPT_RELAY_OK;
    }
    if (st == DNS_NULL_MX)
        return s->srv->cfg->sender_null_mx_check ? REPLY_SENDER_NULL_MX : REPLY_SENDER_OK;
    return st == DNS_NXDOMAIN ? REPLY_SENDER_DOMAIN_UNKNOWN
           : st == DNS_TEMPFAIL ? REPLY_SENDER_DOMAIN_TEMPFAIL : REPLY_SENDER_OK;
}

/* The domain check answered (or timed out): give the MAIL or RCPT reply that waited for it. */
static void dns_check_done(struct session *s, const struct dns_route *verdict)
{
    s->dns_pending = false;
    enum reply_id id = domain_check_reply(s, verdict);
    if (id != REPLY_SENDER_OK && id != REPLY_RCPT_RELAY_OK)
        log_debug("event=domain_check session=%s verdict=\"%s\"", s->id, verdict->error);
    if (s->dns_for_rcpt) {
        struct msg_rcpt r = *s->pending_rcpt;
        free(s->pending_rcpt);
        s->pending_rcpt = NULL;
        if (id == REPLY_RCPT_RELAY_OK) {
            accept_rcpt(s, &r, id);
        } else {
            log_rcpt_refused(s, r.addr, id, id == REPLY_NULL_MX_DOMAIN ? "null_mx_dns" : "no_such_domain");
            free(r.orcpt);
            reply(s, id);
        }
    } else if (id == REPLY_SENDER_OK) {
        if (!spf_check_begin(s))
            accept_sender(s);
    } else {
        log_mail_refused(s, s->msg->sender, id);
        reset_transaction(s);
        reply(s, id);
    }
    if (!s->closing && !s->dead)
        process_input(s);
}

/* RFC 1870 6.1: a declared SIZE the disks have no room for now (it would take the free space below
 * min_free_space) gets 452 at MAIL, before the client sends it, rather than a 451 at its end.
 * Judged by the last measurement (each second); unknown before the first one. */
static bool room_for(const struct server *srv, unsigned long long size)
{
    unsigned long long min = srv->cfg->min_free_space;
    return !min || !size || !srv->space_free || srv->space_free >= min + size;
}

void cmd_mail(struct session *s, const struct smtp_command *c)
{
    if (s->state == ST_MAIL || s->state == ST_RCPT) {
        reply(s, REPLY_NESTED_MAIL);
        return;
    }
    if (s->role != ROLE_MX && !s->tls) {
        reply(s, REPLY_TLS_REQUIRED);
        return;
    }
    if (s->role != ROLE_MX && !s->auth_user) {
        reply(s, REPLY_AUTH_REQUIRED);
        return;
    }
    struct path_args a;
    switch (smtp_parse_path_args(c->arg, c->arg_len, false, &a)) {
    case PATH_ARGS_NO_KEYWORD: reply(s, REPLY_MAIL_SYNTAX); return;
    case PATH_ARGS_BAD_ADDRESS: reply(s, REPLY_SENDER_INVALID); return;
    case PATH_ARGS_BAD_PARAM: reply(s, REPLY_PARAM_SYNTAX); return;
    case PATH_ARGS_OK: break;
    }
    bool utf8 = false, body8 = false;
    unsigned long long size = 0;
    enum reply_id id = (s->msg = message_new()) ? mail_params(s, &a, &utf8, &body8, &size) : REPLY_LOCAL_ERROR;
    if (id == REPLY_SENDER_OK && s->auth_user && !auth_may_send_as(s->srv->users, s->auth_user, a.mailbox.addr,
                                                             s->srv->policy->recipient_delimiter))
        id = REPLY_SENDER_NOT_OWNED;
    if (id == REPLY_SENDER_OK && (s->srv->space_low || !room_for(s->srv, size)))
        id = REPLY_SYSTEM_STORAGE;
    if (id == REPLY_SENDER_OK && a.mailbox.utf8 && !utf8)
        id = REPLY_NEEDS_SMTPUTF8;
    if (id != REPLY_SENDER_OK) {
        log_mail_refused(s, a.mailbox.addr, id);
        reset_transaction(s);
        reply(s, id);
        return;
    }
    snprintf(s->msg->sender, sizeof s->msg->sender, "%s", a.mailbox.addr);
    sender_access_check(s, &a.mailbox);
    s->msg->smtputf8 = utf8;
    s->msg->body_8bit = body8;
    s->msg->declared_size = size;
    if (sender_needs_domain_check(s, &a.mailbox) && start_domain_check(s, a.mailbox.domain, false))
        return; /* the reply waits for DNS */
    if (spf_check_begin(s))
        return; /* the reply waits for SPF */
    accept_sender(s);
}

void sender_spf_verdict(struct session *s)
{
    s->dns_pending = false;
    accept_sender(s);
    if (!s->closing && !s->dead)
        process_input(s);
}

void log_rcpt_refused(struct session *s, const char *addr, enum reply_id id, const char *reason)
{
    if (!log_enabled(LOG_INFO))
        return;
    char rcpt[300], sender[300];
    log_info("event=rcpt_refused session=%s qid=%s client=%s sender=<%s> rcpt=<%s> reply=%d reason=%s", s->id,
             s->msg->qid, s->peer_ip, log_safe(sender, sizeof sender, s->msg->sender),
             log_safe(rcpt, sizeof rcpt, addr), reply_info(id)->code, reason);
}

static char *copies_orcpt(const struct msg_rcpt *r, const struct mailbox *mb);

/* Applies RCPT parameters (NOTIFY, ORCPT) to r; returns the refusal or REPLY_RCPT_OK. */
static enum reply_id rcpt_params(struct session *s, const struct path_args *a, struct msg_rcpt *r)
{
    for (size_t i = 0; i < a->nparams; i++) {
        const struct esmtp_param *p = &a->params[i];
        if (!s->esmtp)
            return REPLY_PARAM_UNKNOWN;
        if (p->key_len == 6 && strncasecmp(p->key, "NOTIFY", 6) == 0) {
            if (!p->value || !(r->notify = smtp_parse_notify(p->value, p->value_len)))
                return REPLY_PARAM_BAD_VALUE;
        } else if (p->key_len == 5 && strncasecmp(p->key, "ORCPT", 5) == 0) {
            if (!p->value || !smtp_orcpt_valid(p->value, p->value_len, DSN_ORCPT_MAX, s->msg->smtputf8))
                return REPLY_PARAM_BAD_VALUE;
            free(r->orcpt);
            if (!(r->orcpt = strndup(p->value, p->value_len)))
                return REPLY_LOCAL_ERROR;
        } else {
            return REPLY_PARAM_UNKNOWN;
        }
    }
    return REPLY_RCPT_OK;
}

void cmd_rcpt(struct session *s, const struct smtp_command *c)
{
    struct path_args a;
    const char *raw = c->arg;
    switch (smtp_parse_path_args(c->arg, c->arg_len, true, &a)) {
    case PATH_ARGS_NO_KEYWORD: reply(s, REPLY_RCPT_SYNTAX); return;
    case PATH_ARGS_BAD_ADDRESS:
        log_rcpt_refused(s, raw, REPLY_RCPT_INVALID, "syntax");
        reply(s, REPLY_RCPT_INVALID);
        return;
    case PATH_ARGS_BAD_PARAM: reply(s, REPLY_PARAM_SYNTAX); return;
    case PATH_ARGS_OK: break;
    }
    const struct mailbox *mb = &a.mailbox;
    if (mb->utf8 && !s->msg->smtputf8) {
        log_rcpt_refused(s, mb->addr, REPLY_NEEDS_SMTPUTF8, "utf8_without_smtputf8");
        reply(s, REPLY_NEEDS_SMTPUTF8);
        return;
    }
    if (s->msg->nrcpts >= s->srv->cfg->max_recipients) {
        log_rcpt_refused(s, mb->addr, REPLY_TOO_MANY_RCPTS, "max_recipients");
        reply(s, REPLY_TOO_MANY_RCPTS);
        return;
    }
    struct msg_rcpt r = {0};
    enum reply_id perr = rcpt_params(s, &a, &r);
    if (perr != REPLY_RCPT_OK) {
        free(r.orcpt);
        reply(s, perr);
        return;
    }
    struct mailbox postmaster_here;
    if (mb->literal && literal_is_this_host(s, mb->domain)) { /* never relayed: it would come back here */
        if (strcasecmp(mb->local, "postmaster") != 0) {
            free(r.orcpt);
            log_rcpt_refused(s, mb->addr, REPLY_RCPT_UNKNOWN, "unknown_mailbox_at_this_address");
            reply(s, REPLY_RCPT_UNKNOWN);
            return;
        }
        postmaster_here = *mb; /* RFC 5321 4.5.1: postmaster at this host is always accepted */
        postmaster_here.is_postmaster = true;
        mb = &postmaster_here;
    }
    const char *list = dnsbl_listed(s);
    bool postmaster = mb->is_postmaster || strcasecmp(mb->local, "postmaster") == 0; /* RFC 5321 4.5.1 */
    if (!postmaster && access_refuses_rcpt(s, mb->addr)) {
        free(r.orcpt);
        return;
    }
    if (list && !postmaster) {
        free(r.orcpt);
        log_rcpt_refused(s, mb->addr, REPLY_DNSBL_LISTED, "dnsbl");
        reply(s, REPLY_DNSBL_LISTED, s->peer_ip, list);
        return;
    }
    if (rdns_refuses(s) && !postmaster) {
        free(r.orcpt);
        log_rcpt_refused(s, mb->addr, REPLY_CLIENT_NAME_UNKNOWN, "client_name");
        reply(s, REPLY_CLIENT_NAME_UNKNOWN, s->peer_ip);
        return;
    }
    if (s->msg->spf_refusal && !postmaster) {
        free(r.orcpt);
        const char *words = s->msg->spf_explanation; /* the domain's own, from its exp= (RFC 7208 6.2) */
        log_rcpt_refused(s, mb->addr, words ? REPLY_SPF_FAIL_EXPLAINED : REPLY_SPF_FAIL, "spf_fail");
        if (words)
            reply(s, REPLY_SPF_FAIL_EXPLAINED, s->msg->spf_refusal, s->peer_ip, s->msg->spf_refusal, words);
        else
            reply(s, REPLY_SPF_FAIL, s->msg->spf_refusal, s->peer_ip);
        return;
    }
    struct mailbox bounce_to;
    bool may_relay = s->may_relay || s->auth_user;
    enum srs_verdict srs = policy_srs_recipient(s->srv->policy, mb, (long long)time(NULL), &bounce_to);
    switch (srs) {
    case SRS_NOT_SRS: break;
    case SRS_VALID: /* a bounce to a sender this server passed on: relayed back to it, from any client */
        if (!r.orcpt && !(r.orcpt = copies_orcpt(&r, mb)) && !mb->utf8) {
            reply(s, REPLY_LOCAL_ERROR);
            return;
        }
        mb = &bounce_to;
        may_relay = true;
        break;
    case SRS_BAD:
    case SRS_EXPIRED:
        free(r.orcpt);
        log_rcpt_refused(s, mb->addr, REPLY_SRS_INVALID, srs == SRS_EXPIRED ? "srs_expired" : "srs_invalid");
        reply(s, REPLY_SRS_INVALID);
        return;
    }
    struct rcpt_verdict v;
    policy_check_rcpt(s->srv->policy, mb, may_relay, &v);
    if (v.kind == RCPT_REFUSED) {
        free(r.orcpt);
        log_rcpt_refused(s, mb->addr, v.reply, v.reason);
        reply(s, v.reply, v.moved_to);
        return;
    }
    if (!user_rate_ok(s, mb) || (!postmaster && greylist_defers(s, mb->addr))) {
        free(r.orcpt);
        return;
    }
    if (v.kind == RCPT_ALIAS) {
        accept_alias(s, mb, &r, &v);
        return;
    }
    if (v.kind != RCPT_RELAY && mailbox_is_held(s->srv->holds, v.local, v.domain)) {
        free(r.orcpt);
        log_rcpt_refused(s, mb->addr, REPLY_MAILBOX_HELD, "mailbox_held");
        reply(s, REPLY_MAILBOX_HELD);
        return;
    }
    policy_rcpt_fill(&r, mb->addr, &v);
    if (!r.remote && rcpt_quota_check(s, &r))
        return; /* refused, or the reply waits for the mailbox's usage */
    if (r.remote && !mb->literal && !v.routed && !v.lmtp) { /* relay path: a null MX is refused now (RFC 7505 4.1) */
        if ((s->pending_rcpt = malloc(sizeof *s->pending_rcpt)) != NULL) {
            *s->pending_rcpt = r;
            if (start_domain_check(s, mb->domain, true))
                return; /* the recipient (and its ORCPT) now belongs to the lookup */
            free(s->pending_rcpt);
            s->pending_rcpt = NULL;
        }
    }
    accept_rcpt(s, &r, v.reply);
}

/* max_recipient_rate_per_user: one more recipient for the authenticated user in its hour; false,
 * with 450 4.7.1 sent, past the limit (said at warn level once an hour: the administrator should
 * know an account may be sending spam). */
static bool user_rate_ok(struct session *s, const struct mailbox *mb)
{
    unsigned limit = s->srv->cfg->max_recipient_rate_per_user;
    if (!limit || !s->auth_user)
        return true;
    char user[ADDR_PATH_MAX + 1], safe[300];
    ascii_lower_copy(user, s->auth_user, sizeof user);
    unsigned n = conn_rate_take(s->srv->per_user, user, monotonic_now());
    if (n <= limit)
        return true; /* 0: out of memory, not counted */
    if (n == limit + 1)
        log_warn("event=user_rate_limited session=%s user=%s limit=%u detail=\"the account reached its recipients "
                 "per hour; if its owner did not send this mail, its password is known to someone else\"",
                 s->id, log_safe(safe, sizeof safe, user), limit);
    log_rcpt_refused(s, mb->addr, REPLY_USER_RATE_LIMITED, "user_rate");
    reply(s, REPLY_USER_RATE_LIMITED);
    return false;
}

/* True when the address literal domain ("[192.0.2.1]", "[IPv6:...]") is the address the client
 * connected to: this host itself. (Its other addresses, if any, are not known here.) */
static bool literal_is_this_host(const struct session *s, const char *domain)
{
    struct sockaddr_storage lit, here = {0};
    socklen_t litlen, herelen = sizeof here;
    if (!address_literal_ip(domain, &lit, &litlen) ||
        getsockname(bufferevent_getfd(s->bev), (struct sockaddr *)&here, &herelen) < 0 || lit.ss_family != here.ss_family)
        return false;
    if (lit.ss_family == AF_INET)
        return ((struct sockaddr_in *)&lit)->sin_addr.s_addr == ((struct sockaddr_in *)&here)->sin_addr.s_addr;
    return memcmp(&((struct sockaddr_in6 *)&lit)->sin6_addr, &((struct sockaddr_in6 *)&here)->sin6_addr,
                  sizeof(struct in6_addr)) == 0;
}

/* Adds an accepted recipient (local duplicates collapse) and answers with id. */
void accept_rcpt(struct session *s, struct msg_rcpt *r, enum reply_id id)
{
    bool duplicate = message_has_rcpt(s->msg, r);
    if (duplicate)
        free(r->orcpt);
    if (!duplicate && !message_add_rcpt(s->msg, r)) {
        free(r->orcpt);
        reply(s, REPLY_LOCAL_ERROR);
        return;
    }
    s->state = ST_RCPT;
    reply(s, id);
}

/* ---------- aliases ---------- */

/* The copies one alias RCPT becomes, gathered before any is added: all of them, or none. */
struct alias_copies {
    struct session *s;
    struct msg_rcpt *v;
    size_t n, cap;
    bool held;     /* a local target's mailbox is held (mailbox_hold.h) */
    bool refused;  /* a target was refused: the tables changed since they were checked (cannot happen) */
};

/* alias_target_fn: one final recipient of the alias, as its own RCPT would be taken. */
static bool gather_copy(void *arg, const struct mailbox *mb, const struct rcpt_verdict *v)
{
    struct alias_copies *c = arg;
    if (v->kind == RCPT_REFUSED)
        return !(c->refused = true);
    if (!rcpt_queued(v) && mailbox_is_held(c->s->srv->holds, v->local, v->domain))
        c->held = true;
    struct msg_rcpt copy = {0};
    policy_rcpt_fill(&copy, mb->addr, v);
    for (size_t i = 0; i < c->n; i++) /* one copy per mailbox or remote address */
        if (msg_rcpt_same(&c->v[i], &copy))
            return true;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        struct msg_rcpt *grown = realloc(c->v, cap * sizeof *grown);
        if (!grown)
            return false;
        c->v = grown, c->cap = cap;
    }
    c->v[c->n++] = copy;
    return true;
}

/* ORCPT for the copies (RFC 3461 4.2): the client's, else the alias address the client gave
 * (an MTA that adds one must use the RCPT address), as "rfc822;" xtext; NULL for a UTF-8
 * address (its utf-8-addr form is left to the client). */
static char *copies_orcpt(const struct msg_rcpt *r, const struct mailbox *mb)
{
    if (r->orcpt)
        return strdup(r->orcpt);
    if (mb->utf8 || mb->is_postmaster)
        return NULL;
    char out[DSN_ORCPT_MAX + 1];
    size_t n = (size_t)snprintf(out, sizeof out, "rfc822;");
    for (const char *p = mb->addr; *p && n + 4 < sizeof out; p++)
        n += (size_t)snprintf(out + n, sizeof out - n, *p < '!' || *p > '~' || *p == '+' || *p == '=' ? "+%02X" : "%c",
                              (unsigned char)*p);
    return strdup(out);
}

/* RFC 3461 6.2.7.3 (alias to several addresses): the SUCCESS the client asked for is answered
 * here, by an "expanded" report for the alias once the message is stored (dsn_message.c), and
 * not passed to the copies. False when out of memory. */
static bool note_expansion(struct message *m, const struct msg_rcpt *r, const struct mailbox *mb)
{
    struct msg_expansion *grown = realloc(m->expanded, (m->nexpanded + 1) * sizeof *grown);
    if (!grown)
        return false;
    m->expanded = grown;
    struct msg_expansion *x = &m->expanded[m->nexpanded];
    snprintf(x->addr, sizeof x->addr, "%s", mb->addr);
    if (r->orcpt && !(x->orcpt = strdup(r->orcpt)))
        return false;
    if (!r->orcpt)
        x->orcpt = NULL;
    m->nexpanded++;
    return true;
}

/* Adds the copies (local duplicates collapse, as for any RCPT); false, with the message as it
 * was, when out of memory. */
static bool add_copies(struct session *s, struct alias_copies *c, const struct msg_rcpt *r, const struct mailbox *mb)
{
    struct message *m = s->msg;
    size_t nrcpts = m->nrcpts, nlocal = m->nlocal;
    unsigned notify = c->n > 1 ? r->notify & ~(unsigned)NOTIFY_SUCCESS : r->notify; /* no success reports from a list */
    if (notify == 0 && r->notify)
        notify = NOTIFY_NEVER; /* SUCCESS alone: nothing more to report */
    size_t nexpanded = m->nexpanded;
    bool ok = c->n < 2 || !(r->notify & NOTIFY_SUCCESS) || note_expansion(m, r, mb);
    for (size_t i = 0; ok && i < c->n; i++) {
        struct msg_rcpt *copy = &c->v[i];
        if (message_has_rcpt(m, copy))
            continue;
        copy->notify = notify;
        copy->orcpt = copies_orcpt(r, mb);
        ok = (copy->orcpt || (!r->orcpt && (mb->utf8 || mb->is_postmaster))) && message_add_rcpt(m, copy);
        if (!ok)
            free(copy->orcpt);
    }
    for (size_t i = nrcpts; !ok && i < m->nrcpts; i++)
        free(m->rcpts[i].orcpt);
    for (size_t i = nexpanded; !ok && i < m->nexpanded; i++)
        free(m->expanded[i].orcpt);
    if (!ok)
        m->nrcpts = nrcpts, m->nlocal = nlocal, m->nexpanded = nexpanded;
    return ok;
}

/* A RCPT for an alias: every final recipient it expands to is added, with the RCPT's NOTIFY (but
 * SUCCESS only when there is one: else the alias gets an "expanded" report) and ORCPT, and the
 * client gets one 250; a held mailbox among them gets the RCPT its 450, as if it were the address
 * itself. */
static void accept_alias(struct session *s, const struct mailbox *mb, struct msg_rcpt *r,
                         const struct rcpt_verdict *v)
{
    struct alias_copies c = {.s = s};
    const char *err = NULL;
    char safe[300];
    bool expanded = policy_expand_alias(s->srv->policy, mb, v, gather_copy, &c, &err);
    enum reply_id id = REPLY_RCPT_OK;
    if (!expanded || c.refused)
        log_error("event=alias_failed session=%s rcpt=<%s> detail=\"%s\"", s->id, log_safe(safe, sizeof safe, mb->addr),
                  c.refused ? "a target is refused now" : err);
    if (expanded && !c.refused && c.n > 0 && c.held)
        id = REPLY_MAILBOX_HELD;
    else if (!expanded || c.refused || c.n == 0 || !add_copies(s, &c, r, mb))
        id = REPLY_LOCAL_ERROR;
    char list[1024];
    size_t n = 0;
    list[0] = '\0';
    for (size_t i = 0; i < c.n && n < sizeof list; i++)
        n += (size_t)snprintf(list + n, sizeof list - n, "%s<%s>", i ? "," : "", c.v[i].addr);
    for (size_t i = 0; id == REPLY_RCPT_OK && i < c.n; i++)
        quota_prefetch(s, &c.v[i]);
    s->srv->metrics.alias_expansions += id == REPLY_RCPT_OK;
    if (id == REPLY_RCPT_OK)
        log_info("event=alias_expanded session=%s rcpt=<%s> to=%s%s", s->id, log_safe(safe, sizeof safe, mb->addr),
                 list, n >= sizeof list ? "..." : "");
    else
        log_rcpt_refused(s, mb->addr, id, c.held ? "mailbox_held" : "alias_failed");
    free(r->orcpt);
    free(c.v);
    if (id == REPLY_RCPT_OK)
        s->state = ST_RCPT;
    reply(s, id);
}
