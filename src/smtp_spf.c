/* smtp_spf.c - SPF at MAIL on the MX role (spf_policy, spf.h): once the sender passed the domain
 * checks, its domain (the HELO name for the null sender) is asked whether this client may send
 * its mail; the MAIL reply waits for the answer, at most dns_timeout (then: temperror). The result
 * becomes a Received-SPF field (RFC 7208 9.1) above this server's Received; with spf_policy =
 * reject, a fail gets 550 5.7.23 (RFC 7372) at each RCPT but postmaster's (RFC 5321 4.5.1: the
 * sender of a domain with a broken record can still reach a person), as a block list listing does.
 * relay_networks clients, authenticated users, spf_skip_networks and client_access permit are not
 * asked about.
 * Part of the session (session_priv.h). */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "config.h"
#include "log.h"
#include "message.h"
#include "policy.h"
#include "server.h"
#include "session_priv.h"
#include "spf.h"

/* "postmaster@" and the HELO name into out (RFC 7208 2.3); false when the name is no domain (an
 * address literal, a bare word that does not parse) or does not fit. */
static bool helo_identity_of(const struct session *s, char *out, size_t size)
{
    bool utf8 = false;
    return address_parse_domain(s->helo, strlen(s->helo), &utf8) == ADDR_OK && s->helo[0] != '[' &&
           (size_t)snprintf(out, size, "postmaster@%s", s->helo) < size;
}

/* The identity SPF checks for this MAIL into out: the sender ("local@domain"), or for the null
 * sender "postmaster@" the HELO name (RFC 7208 2.4, *helo_identity); false when there is none a
 * check could use (an address literal, a HELO name that is no domain). */
static bool spf_identity(const struct session *s, char *out, size_t size, bool *helo_identity)
{
    const char *sender = s->msg->sender, *at = strrchr(sender, '@');
    *helo_identity = !*sender;
    if (*sender)
        return at && at[1] != '[' && (size_t)snprintf(out, size, "%s", sender) < size;
    return helo_identity_of(s, out, size);
}

/* Whether this MAIL gets an SPF check: MX role, spf_policy on, a client that does not send from
 * here and is not in spf_skip_networks, a resolver and no DNS outage pause. */
static bool spf_applies(const struct session *s)
{
    const struct config *cfg = s->srv->cfg;
    return s->role == ROLE_MX && cfg->spf_policy != POLICY_OFF && !s->may_relay && !s->auth_user &&
           !client_permitted(s) &&
           s->srv->dns && monotonic_now() >= s->srv->dns_checks_paused_until &&
           !policy_spf_skipped(s->srv->policy, (const struct sockaddr *)&s->peer);
}

/* RFC 7208 9.1's comment for each result, about identity and the client's address. */
static void result_comment(enum spf_result r, const char *identity, const char *ip, const char *detail, char *out,
                           size_t outsz)
{
    switch (r) {
    case SPF_PASS: snprintf(out, outsz, "domain of %s designates %s as permitted sender", identity, ip); return;
    case SPF_FAIL: snprintf(out, outsz, "domain of %s does not designate %s as permitted sender", identity, ip); return;
    case SPF_SOFTFAIL:
        snprintf(out, outsz, "transitioning domain of %s does not designate %s as permitted sender", identity, ip);
        return;
    case SPF_NEUTRAL: snprintf(out, outsz, "%s is neither permitted nor denied by domain of %s", ip, identity); return;
    case SPF_NONE: snprintf(out, outsz, "domain of %s does not designate permitted sender hosts", identity); return;
    default: snprintf(out, outsz, "error in processing during lookup of %s: %s", identity, detail); return;
    }
}

/* Copies text into a header quoted-string or comment: '"', '\', '(' and ')' escaped, control
 * and 8-bit octets as '?'. */
static void header_safe(const char *text, char *out, size_t outsz)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p && n + 3 < outsz; p++) {
        if (*p == '"' || *p == '\\' || *p == '(' || *p == ')')
            out[n++] = '\\';
        out[n++] = (char)(*p < 0x20 || *p >= 0x7f ? '?' : *p);
    }
    out[n] = '\0';
}

/* The Received-SPF field (LF lines, folded) for the message's headers. */
static char *received_spf(const struct session *s, enum spf_result r, const char *identity, bool helo_identity,
                          const char *detail)
{
    char comment[700], safe_comment[1400], safe_identity[600], safe_helo[600];
    result_comment(r, identity, s->peer_ip, detail, comment, sizeof comment);
    header_safe(comment, safe_comment, sizeof safe_comment);
    header_safe(identity, safe_identity, sizeof safe_identity);
    header_safe(s->helo, safe_helo, sizeof safe_helo);
    char *field = NULL;
    const char *host = s->srv->cfg->hostname;
    if (asprintf(&field, "Received-SPF: %s (%s: %s)\n\tclient-ip=%s; envelope-from=\"%s\";\n\thelo=\"%s\"; receiver=%s; "
                         "identity=%s;\n",
                 spf_result_name(r), host, safe_comment, s->peer_ip, helo_identity ? "" : safe_identity, safe_helo,
                 host, helo_identity ? "helo" : "mailfrom") < 0)
        return NULL;
    return field;
}

/* The result as an Authentication-Results method (RFC 8601 2.7.2), for smtp_msgauth.c; NULL when
 * out of memory. A local part a header value cannot carry bare is left out: the domain alone. */
static char *spf_method(const struct session *s, enum spf_result r, const char *identity, bool helo_identity)
{
    const char *value = helo_identity ? s->helo : identity, *at = strrchr(value, '@');
    if (strspn(value, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.!#$%&'*+/=?^_`{|}~@-") !=
        strlen(value))
        value = at ? at + 1 : value;
    char *method = NULL;
    if (asprintf(&method, "spf=%s smtp.%s=%s", spf_result_name(r), helo_identity ? "helo" : "mailfrom", value) < 0)
        return NULL;
    return method;
}

/* Records result r for identity in the message: log, metrics, Received-SPF, the method for
 * Authentication-Results, and with spf_policy = reject the refusal of a fail. */
static void record_result(struct session *s, enum spf_result r, const char *detail, const char *explanation,
                          const char *identity, bool helo_identity)
{
    char safe_identity[600], safe_detail[600], safe_explanation[2 * SPF_EXPLANATION_MAX + 1];
    s->srv->metrics.spf[r]++;
    log_info("event=spf session=%s client=%s identity=%s result=%s detail=\"%s\"%s%s%s", s->id, s->peer_ip,
             log_safe(safe_identity, sizeof safe_identity, identity), spf_result_name(r),
             log_quotable(safe_detail, sizeof safe_detail, detail), explanation ? " explanation=\"" : "",
             explanation ? log_quotable(safe_explanation, sizeof safe_explanation, explanation) : "",
             explanation ? "\"" : "");
    free(s->msg->received_spf);
    s->msg->received_spf = received_spf(s, r, identity, helo_identity, detail);
    free(s->msg->spf_method);
    s->msg->spf_method = spf_method(s, r, identity, helo_identity);
    s->msg->spf_result = (int)r + 1;
    const char *at = strrchr(identity, '@');
    if (r == SPF_FAIL && s->srv->cfg->spf_policy == POLICY_REJECT) {
        free(s->msg->spf_refusal);
        s->msg->spf_refusal = strdup(at ? at + 1 : identity); /* NULL (out of memory): not refused */
        free(s->msg->spf_explanation);
        s->msg->spf_explanation = explanation ? strdup(explanation) : NULL; /* NULL: the reply without it */
    }
}

/* Records the HELO name's result as this MAIL's (it was decisive, or the sender is null). */
static void record_helo_result(struct session *s)
{
    char identity[ADDR_PATH_MAX + 300];
    if (helo_identity_of(s, identity, sizeof identity))
        record_result(s, (enum spf_result)(s->helo_spf - 1), s->helo_spf_detail ? s->helo_spf_detail : "",
                      s->helo_spf_explanation, identity, true);
}

static void on_spf_done(void *arg, enum spf_result r, const char *detail, const char *explanation);

/* Starts the check of this MAIL's sender; false when it could not start. */
static bool start_sender_check(struct session *s)
{
    char identity[ADDR_PATH_MAX + 300];
    bool helo_identity = false;
    s->spf_helo_step = false;
    return spf_identity(s, identity, sizeof identity, &helo_identity) &&
           (s->spf = spf_check_start(s->srv->dns, (const struct sockaddr *)&s->peer, identity, s->helo,
                                     s->srv->cfg->hostname, on_spf_done, s)) != NULL;
}

/* The MAIL reply waited for: given now. */
static void spf_done_waiting(struct session *s)
{
    evtimer_del(s->spf_timer);
    sender_spf_verdict(s);
}

static void on_spf_done(void *arg, enum spf_result r, const char *detail, const char *explanation)
{
    struct session *s = arg;
    char identity[ADDR_PATH_MAX + 300];
    bool helo_identity = false;
    s->spf = NULL;
    if (s->spf_helo_step) { /* the HELO name's result, kept for the session's next MAILs too */
        s->helo_spf = (unsigned char)(r + 1);
        free(s->helo_spf_detail);
        s->helo_spf_detail = strdup(detail);
        free(s->helo_spf_explanation);
        s->helo_spf_explanation = explanation ? strdup(explanation) : NULL;
        log_info("event=spf_helo_lookup session=%s name=%s result=%s", s->id, s->helo, spf_result_name(r));
        if (r == SPF_FAIL || !*s->msg->sender) /* RFC 7208 2.3: a fail decides; the null sender is it */
            record_helo_result(s);
        else if (start_sender_check(s))
            return; /* the sender's check goes on under the same timer */
        spf_done_waiting(s);
        return;
    }
    if (spf_identity(s, identity, sizeof identity, &helo_identity))
        record_result(s, r, detail, explanation, identity, helo_identity);
    spf_done_waiting(s);
}

static void on_spf_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct session *s = arg;
    char identity[ADDR_PATH_MAX + 300], detail[400];
    bool helo_identity = false;
    if (spf_check_failed_unexplained(s->spf, detail, sizeof detail)) { /* only its exp= was late */
        spf_check_cancel(s->spf);
        on_spf_done(s, SPF_FAIL, detail, NULL);
        return;
    }
    spf_check_cancel(s->spf);
    s->spf = NULL;
    snprintf(detail, sizeof detail, "no answer within dns_timeout (%us)", s->srv->cfg->dns_timeout);
    if (spf_identity(s, identity, sizeof identity, &helo_identity))
        record_result(s, SPF_TEMPERROR, detail, NULL, identity, helo_identity);
    sender_spf_verdict(s);
}

bool spf_check_begin(struct session *s)
{
    char identity[ADDR_PATH_MAX + 300];
    bool helo_identity = false, helo_known = s->helo_spf != 0;
    if (!spf_applies(s) || !spf_identity(s, identity, sizeof identity, &helo_identity))
        return false;
    if (helo_known && (s->helo_spf - 1 == SPF_FAIL || helo_identity) && helo_identity_of(s, identity, sizeof identity)) {
        record_helo_result(s); /* asked at an earlier MAIL of this session */
        return false;
    }
    if (!s->spf_timer && !(s->spf_timer = evtimer_new(s->srv->base, on_spf_timeout, s)))
        return false;
    s->spf_helo_step = !helo_known && helo_identity_of(s, identity, sizeof identity);
    if (s->spf_helo_step &&
        !(s->spf = spf_check_start(s->srv->dns, (const struct sockaddr *)&s->peer, identity, s->helo,
                                   s->srv->cfg->hostname, on_spf_done, s)))
        return false;
    if (!s->spf_helo_step && !start_sender_check(s))
        return false;
    struct timeval tv = {(time_t)s->srv->cfg->dns_timeout, 0};
    evtimer_add(s->spf_timer, &tv);
    s->dns_pending = true;
    return true;
}

void spf_helo_forget(struct session *s)
{
    s->helo_spf = 0;
    free(s->helo_spf_detail);
    s->helo_spf_detail = NULL;
    free(s->helo_spf_explanation);
    s->helo_spf_explanation = NULL;
}

void spf_free(struct session *s)
{
    spf_check_cancel(s->spf);
    s->spf = NULL;
    spf_helo_forget(s);
    if (s->spf_timer)
        event_free(s->spf_timer);
    s->spf_timer = NULL;
}
