/* smtp_headers.c - the trace fields a received message gets before it is stored: Return-Path and
 * Received (RFC 5321 4.4), and for submitted mail the Message-ID and Date it lacks (RFC 6409 8) and
 * a DKIM signature (RFC 6376).
 * Part of the session (session_priv.h). */
#include <event2/buffer.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "address.h"
#include "config.h"
#include "dkim.h"
#include "idn.h"
#include "log.h"
#include "message.h"
#include "policy.h"
#include "server.h"
#include "session_priv.h"

/* RFC 6409 8.2, 8.3 (and RFC 5321 6.4 for an originating server): a message a user submits, or a
 * relay_networks client sends out, gets the Message-ID and Date it lacks; a message arriving as MX
 * traffic is left as it came. Placed after the Received field, as LF lines like the body. */
static void add_missing_headers(struct session *s, const struct header_facts *facts, time_t now,
                                const char *date, char *added, size_t addedsz)
{
    struct message *m = s->msg;
    *added = '\0';
    if (!s->srv->cfg->add_missing_headers || !(s->auth_user || s->may_relay))
        return;
    char stamp[16];
    size_t n = 0;
    if (!facts->has_date)
        n = (size_t)snprintf(added, addedsz, "Date: %s\n", date);
    if (!facts->has_message_id && n < addedsz) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(stamp, sizeof stamp, "%Y%m%d%H%M%S", &tm);
        snprintf(m->message_id, sizeof m->message_id, "<%s.%s@%s>", stamp, m->qid, s->srv->cfg->hostname);
        snprintf(added + n, addedsz - n, "Message-ID: %s\n", m->message_id);
    }
    evbuffer_add(m->headers, added, strlen(added));
}

/* A DKIM signature to make for a message, on a disk thread (the body hash and the private-key
 * operation - about a millisecond for RSA 2048 - stay off the event loop). */
struct sign_job {
    struct session *s;
    struct message *m;
    struct dkim_signing sg;
    char *added;       /* the fields add_missing_headers placed, signed with the rest */
    long long now;
    bool ok;
    const char *why;   /* when not ok */
};

/* Mail a user submits, or a relay_networks client sends, gets a DKIM signature when its From
 * domain has a key (dkim.h): its keys are chosen here, the signing is a sign_job. NULL when the
 * message gets none (counted and logged here). */
static struct sign_job *dkim_signature_job(struct session *s, const char *added, time_t now)
{
    struct message *m = s->msg;
    const struct dkim_keys *keys = &s->srv->policy->dkim;
    if (!keys->count || !(s->auth_user || s->may_relay))
        return NULL;
    struct sign_job *j = calloc(1, sizeof *j);
    const char *why = "out of memory";
    if (j && (j->added = strdup(added)) && dkim_signing_choose(keys, added, m->body, &j->sg, &why)) {
        j->s = s;
        j->m = m;
        j->now = (long long)now;
        return j;
    }
    if (j)
        free(j->added);
    free(j);
    s->srv->metrics.dkim_unsigned++;
    log_debug("event=dkim_unsigned session=%s qid=%s detail=\"%s\"", s->id, m->qid, why);
    return NULL;
}

void sign_job_run(void *arg)
{
    struct sign_job *j = arg;
    j->ok = dkim_signing_run(&j->sg, j->added, j->m->body, j->now, j->m->headers, &j->why);
}

struct message *sign_job_end(struct sign_job *j)
{
    struct session *s = j->s;
    struct message *m = j->m;
    if (j->ok) {
        log_debug("event=dkim_signed session=%s qid=%s", s->id, m->qid);
        s->srv->metrics.dkim_signed++;
        snprintf(m->dkim_signer, sizeof m->dkim_signer, "%s/%s%s%s", j->sg.keys[0].domain, j->sg.keys[0].selector,
                 j->sg.count > 1 ? "+" : "", j->sg.count > 1 ? j->sg.keys[1].selector : "");
    } else {
        s->srv->metrics.dkim_unsigned++;
        log_debug("event=dkim_unsigned session=%s qid=%s detail=\"%s\"", s->id, m->qid, j->why);
    }
    dkim_signing_free(&j->sg);
    free(j->added);
    free(j);
    return m;
}

/* The Received field's "from" clause (RFC 5321 4.4: Extended-Domain). An EHLO name that is a
 * domain or an address literal comes first, as usual, then the client's confirmed name (or
 * "unknown") when client_name_check looked it up, and its address; a UTF-8 domain in a message without
 * SMTPUTF8 is written as its A-label (the same name in ASCII, RFC 5890). Any other ("my_pc",
 * "x;y": EHLO takes them, as most servers do) would make the field unparseable - a ';' ends its
 * clauses - so the client is named by its address and the EHLO name goes into a comment, with
 * '(', ')' and '\' quoted and, outside SMTPUTF8, 8-bit octets as '?'. */
static void received_from(struct evbuffer *out, const struct session *s, bool utf8_ok)
{
    const char *v6 = s->peer.ss_family == AF_INET6 ? "IPv6:" : "";
    bool utf8 = false;
    struct sockaddr_storage ss;
    socklen_t sslen;
    size_t len = strlen(s->helo);
    char alabel[256];
    if ((address_parse_domain(s->helo, len, &utf8) == ADDR_OK &&
         (!utf8 || utf8_ok || idn_to_ascii(s->helo, alabel, sizeof alabel))) ||
        (s->helo[0] == '[' && address_literal_ip(s->helo, &ss, &sslen))) {
        const char *name = rdns_name(s); /* client_name_check: "name [address]" (RFC 5321 4.4 TCP-info) */
        evbuffer_add_printf(out, "from %s (%s%s[%s%s])", utf8 && !utf8_ok ? alabel : s->helo, name ? name : "",
                            name ? " " : "", v6, s->peer_ip);
        return;
    }
    evbuffer_add_printf(out, "from [%s%s] (helo=", v6, s->peer_ip);
    for (const char *p = s->helo; *p; p++) {
        if (*p == '(' || *p == ')' || *p == '\\')
            evbuffer_add(out, "\\", 1);
        evbuffer_add(out, (unsigned char)*p >= 0x80 && !utf8_ok ? "?" : p, 1);
    }
    evbuffer_add(out, ")", 1);
}

/* Return-Path and Received (RFC 5321 4.4), then any field add_missing_headers adds; LF line
 * endings like the stored body. */
struct sign_job *build_trace_headers(struct session *s, const struct header_facts *facts)
{
    struct message *m = s->msg;
    char date[64];
    time_t now = time(NULL);
    message_date(now, date, sizeof date);
    char proto[16]; /* RFC 3848 / RFC 6531: ESMTP, ESMTPS, ESMTPA, ESMTPSA, UTF8SMTPSA, ... */
    snprintf(proto, sizeof proto, "%s%s%s", !s->esmtp ? "SMTP" : m->smtputf8 ? "UTF8SMTP" : "ESMTP",
             s->esmtp && s->tls ? "S" : "", s->esmtp && s->auth_user ? "A" : "");
    evbuffer_add_printf(m->headers, "Return-Path: <%s>\n%s%sReceived: ", m->sender,
                        m->auth_results ? m->auth_results : "", /* RFC 8601 5: at the top */
                        m->received_spf ? m->received_spf : ""); /* RFC 7208 9.1: above our Received */
    received_from(m->headers, s, m->smtputf8);
    if (s->tls) {
        const char *colon = strchr(s->tls_info, ':');
        evbuffer_add_printf(m->headers, "\n\t(using %.*s with cipher %s)", colon ? (int)(colon - s->tls_info) : 7,
                            colon ? s->tls_info : "unknown", colon ? colon + 1 : "unknown");
    }
    evbuffer_add_printf(m->headers, "\n\tby %s (Postern) with %s id %s", s->srv->cfg->hostname, proto, m->qid);
    if (m->nrcpts == 1)
        evbuffer_add_printf(m->headers, "\n\tfor <%s>", m->rcpts[0].addr);
    evbuffer_add_printf(m->headers, "; %s\n", date);
    char added[sizeof m->message_id + 128];
    add_missing_headers(s, facts, now, date, added, sizeof added); /* the Received field's date */
    return dkim_signature_job(s, added, now);
}
