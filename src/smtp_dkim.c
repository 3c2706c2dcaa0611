/* smtp_dkim.c - DKIM verification (dkim_verify = yes) of a message received on the MX role, at
 * its end of data and before it is stored: each signature's key is looked up (all in parallel,
 * at most dns_timeout: then temperror), the results go into an Authentication-Results field
 * (RFC 8601) at the top of the message, with the SPF result when SPF was checked. Fields of that
 * name claiming this server's authserv-id (its hostname) are removed from the message first:
 * only this server writes them (RFC 8601 5). Users and relay_networks clients are not verified:
 * their mail is going out. Nothing is refused: the field informs the filters and users downstream.
 * Part of the session (session_priv.h). */
#include <event2/buffer.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "dkim_canon.h"
#include "dkim_verify.h"
#include "dns.h"
#include "log.h"
#include "message.h"
#include "metrics.h"
#include "server.h"
#include "session_priv.h"

struct dkim_lookup {
    struct dkim_check *c;
    struct dns_query *q;
    size_t sig;
};

struct dkim_check {
    struct session *s;
    struct header_facts facts;
    struct event *timer;
    struct dkim_lookup lookups[DKIM_VERIFY_MAX];
    size_t pending;
    struct dkim_verification v;
};

/* Removes the header fields "Authentication-Results: <id>; ..." of the message text (LF lines)
 * whose authserv-id is id: forged, or this server's own from an earlier pass of a loop. */
static void remove_own_results(struct evbuffer *text, const char *id)
{
    size_t hlen, body, idlen = strlen(id), kept = 0;
    struct fields fs = {0};
    canon_text_layout(text, &hlen, &body);
    const char *h = hlen ? (const char *)evbuffer_pullup(text, (ev_ssize_t)hlen) : NULL;
    struct evbuffer *out = h ? evbuffer_new() : NULL;
    if (!out || !split_fields(&fs, h, hlen)) {
        free(fs.v);
        if (out)
            evbuffer_free(out);
        return;
    }
    bool removed = false;
    for (size_t i = 0; i < fs.count; i++) {
        const struct field *f = &fs.v[i];
        if (!field_named(f, "authentication-results"))
            continue;
        const char *v = (const char *)memchr(f->p, ':', f->len) + 1, *end = f->p + f->len;
        while (v < end && (is_wsp(*v) || *v == '\n'))
            v++;
        if ((size_t)(end - v) < idlen || strncasecmp(v, id, idlen) != 0 ||
            (v + idlen < end && !is_wsp(v[idlen]) && v[idlen] != ';' && v[idlen] != '\n'))
            continue;
        size_t from = (size_t)(f->p - h), to = from + f->len + 1; /* with its LF */
        evbuffer_add(out, h + kept, from - kept);
        kept = to < hlen ? to : hlen;
        removed = true;
    }
    free(fs.v);
    if (removed) {
        evbuffer_add(out, h + kept, hlen - kept);
        evbuffer_drain(text, hlen);
        evbuffer_prepend_buffer(text, out);
    }
    evbuffer_free(out);
}

/* The Authentication-Results field of the results (LF lines), or NULL when out of memory. */
static char *results_field(const struct session *s, const struct dkim_verification *v)
{
    struct evbuffer *b = evbuffer_new();
    if (!b)
        return NULL;
    evbuffer_add_printf(b, "Authentication-Results: %s", s->srv->cfg->hostname);
    if (v->count == 0)
        evbuffer_add_printf(b, ";\n\tdkim=none");
    for (size_t i = 0; i < v->count; i++) {
        const struct dkim_sig *g = &v->sigs[i];
        evbuffer_add_printf(b, ";\n\tdkim=%s", dkim_result_name(g->result));
        if (g->result != DKIM_R_PASS && *g->detail)
            evbuffer_add_printf(b, " reason=\"%s\"", g->detail);
        if (*g->domain)
            evbuffer_add_printf(b, " header.d=%s header.s=%s header.b=%s", g->domain, g->selector, g->b_prefix);
    }
    if (s->msg->spf_method)
        evbuffer_add_printf(b, ";\n\t%s", s->msg->spf_method);
    evbuffer_add(b, "\n", 2);
    char *field = strdup((const char *)evbuffer_pullup(b, -1));
    evbuffer_free(b);
    return field;
}

/* Logs and counts each result, puts the field into the message, stores it. */
static void finish(struct dkim_check *c)
{
    struct session *s = c->s;
    struct message *m = s->msg;
    if (c->v.count == 0)
        s->srv->metrics.dkim_verified[DKIM_R_NONE]++;
    for (size_t i = 0; i < c->v.count; i++) {
        const struct dkim_sig *g = &c->v.sigs[i];
        s->srv->metrics.dkim_verified[g->result]++;
        log_info("event=dkim_verify session=%s qid=%s domain=%s selector=%s result=%s%s detail=\"%s\"", s->id,
                 m->qid, *g->domain ? g->domain : "-", *g->selector ? g->selector : "-", dkim_result_name(g->result),
                 g->testing ? " testing=yes" : "", g->detail);
    }
    remove_own_results(m->body, s->srv->cfg->hostname);
    free(m->auth_results);
    m->auth_results = results_field(s, &c->v);
}

/* Ends the wait: the results into the message, then on to the commit. */
static void check_done(struct dkim_check *c)
{
    struct session *s = c->s;
    struct header_facts facts = c->facts;
    finish(c);
    dkim_check_free(s);
    s->dns_pending = false;
    store_message(s, &facts);
}

static void on_key(void *arg, const struct dns_answer *a)
{
    struct dkim_lookup *l = arg;
    struct dkim_check *c = l->c;
    l->q = NULL;
    enum dkim_key_lookup how = a->status == DNS_OK         ? DKIM_KEY_ANSWER
                               : a->status == DNS_NXDOMAIN ? DKIM_KEY_NONE
                                                           : DKIM_KEY_TEMPFAIL;
    dkim_verify_key(&c->v.sigs[l->sig], how, a->data, a->len, a->status == DNS_OK ? a->n : 0);
    if (--c->pending == 0)
        check_done(c);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct dkim_check *c = arg;
    for (size_t i = 0; i < DKIM_VERIFY_MAX; i++)
        if (c->lookups[i].q) {
            dns_cancel(c->lookups[i].q);
            c->lookups[i].q = NULL;
            struct dkim_sig *g = &c->v.sigs[c->lookups[i].sig];
            g->result = DKIM_R_TEMPERROR;
            snprintf(g->detail, sizeof g->detail, "no key within dns_timeout (%us)", c->s->srv->cfg->dns_timeout);
        }
    c->pending = 0;
    check_done(c);
}

/* Asks for the key of each signature still waiting for one; the number of lookups started. */
static size_t ask_keys(struct dkim_check *c)
{
    size_t n = 0;
    for (size_t i = 0; i < c->v.count; i++) {
        struct dkim_sig *g = &c->v.sigs[i];
        char name[ADDR_DOMAIN_MAX + 80];
        if (g->result != DKIM_R_NONE)
            continue;
        struct dkim_lookup *l = &c->lookups[n];
        *l = (struct dkim_lookup){c, NULL, i};
        if (!c->s->srv->dns || !dkim_key_name(g, name, sizeof name) ||
            !(l->q = dns_lookup(c->s->srv->dns, name, DNS_RR_TXT, on_key, l))) {
            g->result = c->s->srv->dns ? DKIM_R_PERMERROR : DKIM_R_TEMPERROR;
            snprintf(g->detail, sizeof g->detail, "%s", c->s->srv->dns ? "key name too long" : "no resolver");
            continue;
        }
        n++;
    }
    return n;
}

bool dkim_check_begin(struct session *s, const struct header_facts *facts)
{
    if (!s->srv->cfg->dkim_verify || s->role != ROLE_MX || s->auth_user || s->may_relay)
        return false;
    struct dkim_check *c = calloc(1, sizeof *c);
    if (!c || !(c->timer = evtimer_new(s->srv->base, on_timeout, c))) {
        free(c);
        log_error("event=dkim_verify session=%s error=out_of_memory", s->id);
        return false;
    }
    c->s = s;
    c->facts = *facts;
    s->dkim = c;
    dkim_verify_prepare(s->msg->body, (long long)time(NULL), &c->v);
    if ((c->pending = ask_keys(c)) == 0) {
        finish(c);
        dkim_check_free(s);
        return false;
    }
    struct timeval tv = {(time_t)s->srv->cfg->dns_timeout, 0};
    evtimer_add(c->timer, &tv);
    s->dns_pending = true;
    return true;
}

void dkim_check_free(struct session *s)
{
    struct dkim_check *c = s->dkim;
    if (!c)
        return;
    for (size_t i = 0; i < DKIM_VERIFY_MAX; i++)
        dns_cancel(c->lookups[i].q);
    event_free(c->timer);
    free(c);
    s->dkim = NULL;
}
