/* smtp_msgauth.c - message authentication at the end of the data of mail received on the MX role,
 * before it is stored: DKIM (dkim_verify = yes; each signature's key looked up) and DMARC
 * (dmarc_policy; the From domain's policy record, then its organizational domain's), all DNS
 * lookups in parallel and at most dns_timeout (then temperror). The results, with SPF's when SPF
 * was asked, go into one Authentication-Results field (RFC 8601) at the top of the message; fields
 * of that name claiming this server's authserv-id (its hostname) are removed first: only this
 * server writes them (RFC 8601 5). dmarc_policy = reject refuses (550 5.7.1) a DMARC fail whose
 * domain asks p=reject; nothing else is refused. Users' and relay_networks clients' mail is not
 * checked (it is going out), but such fields are removed from it too: a user must not hand a
 * neighbour a forged "dkim=pass". DKIM's reading of the message - its body hashes, tens of
 * milliseconds for a 10 MB body - runs on a disk thread, not on the event loop that serves every
 * other session. Part of the session (session_priv.h). */
#include <event2/buffer.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "dkim_canon.h"
#include "dkim_verify.h"
#include "dmarc.h"
#include "dmarcrpt_send.h"
#include "dns.h"
#include "log.h"
#include "mailbox_hold.h"
#include "message.h"
#include "metrics.h"
#include "server.h"
#include "session_priv.h"
#include "spf.h"
#include "workq.h"

#define LOOKUPS_MAX (DKIM_VERIFY_MAX + 1) /* every signature's key, and the DMARC record */
#define DMARC_LOOKUP ((size_t)-1)           /* struct lookup.sig of the DMARC record's lookup */

struct msgauth_check;

struct lookup {
    struct msgauth_check *c;
    struct dns_query *q;
    size_t sig; /* the signature whose key it is, or DMARC_LOOKUP */
};

/* Where DMARC stands for the message. */
struct dmarc_state {
    bool on;
    bool at_org;                               /* the record asked now is the organizational domain's */
    enum dmarc_result result;                  /* DMARC_NONE until decided */
    enum dmarc_disposition dis;
    char from[ADDR_DOMAIN_MAX + 1];            /* the From domain */
    char org[ADDR_DOMAIN_MAX + 1];             /* its organizational domain */
    char detail[96];                           /* why temperror or permerror */
    char unclear[48];                          /* why the author domain is unclear ("": it is not) */
    bool have_record;
    struct dmarc_record record;
};

struct msgauth_check {
    struct session *s;
    struct header_facts facts;
    struct event *timer;
    struct lookup lookups[LOOKUPS_MAX];
    size_t pending;
    struct evbuffer *text;  /* the message text (s->msg->body) */
    long long now;          /* for the signatures' t= and x= */
    bool hashing;           /* DKIM reads text on a disk thread: nothing else touches it until done */
    struct dkim_verification v;
    struct dmarc_state dmarc;
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
static char *results_field(const struct session *s, const struct msgauth_check *c)
{
    struct evbuffer *b = evbuffer_new();
    const struct dkim_verification *v = &c->v;
    const struct dmarc_state *d = &c->dmarc;
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
    if (d->on) {
        evbuffer_add_printf(b, ";\n\tdmarc=%s", dmarc_result_name(d->result));
        if (d->have_record)
            evbuffer_add_printf(b, " (p=%s dis=%s)", dmarc_disposition_name(d->at_org ? d->record.sp : d->record.p),
                                dmarc_disposition_name(d->dis));
        if (*d->detail)
            evbuffer_add_printf(b, " reason=\"%s\"", d->detail);
        if (*d->from)
            evbuffer_add_printf(b, " header.from=%s", d->from);
    }
    evbuffer_add(b, "\n", 2);
    char *field = strdup((const char *)evbuffer_pullup(b, -1));
    evbuffer_free(b);
    return field;
}

static void dmarc_note(struct dmarc_state *d, enum dmarc_result r, const char *detail)
{
    d->result = r;
    snprintf(d->detail, sizeof d->detail, "%s", detail);
}

/* What DMARC judges the message by: the From domain, SPF's domain (MAIL FROM's, or the HELO name's
 * for the null sender) and whether it passed, the domains of the DKIM signatures that passed. */
static void dmarc_facts_of(const struct msgauth_check *c, struct dmarc_facts *f)
{
    const struct message *m = c->s->msg;
    const char *at = strrchr(m->sender, '@');
    *f = (struct dmarc_facts){.from_domain = c->dmarc.from, .spf_pass = m->spf_result == SPF_PASS + 1,
                              .spf_domain = *m->sender ? (at ? at + 1 : NULL) : c->s->helo};
    for (size_t i = 0; i < c->v.count && f->ndkim < DMARC_DKIM_MAX; i++)
        if (c->v.sigs[i].result == DKIM_R_PASS)
            f->dkim_pass[f->ndkim++] = c->v.sigs[i].domain;
}

/* The DMARC result from the record found and the SPF and DKIM results (RFC 7489 6.6.2). */
static void dmarc_decide(struct msgauth_check *c)
{
    struct dmarc_state *d = &c->dmarc;
    if (!d->on || d->result != DMARC_NONE || !d->have_record)
        return;
    struct dmarc_facts f;
    dmarc_facts_of(c, &f);
    d->result = dmarc_evaluate(&d->record, &f, d->at_org, arc4random_uniform(100), &d->dis);
}

/* The DMARC result counted for the aggregate report of the domain whose record applied
 * (dmarc_reports): the disposition as applied - none under dmarc_policy = header (local_policy
 * when the domain asked for more), one step milder than asked when pct= sampled the message out. */
static void report_dmarc(const struct msgauth_check *c)
{
    const struct dmarc_state *d = &c->dmarc;
    const struct session *s = c->s;
    const struct message *m = s->msg;
    if (!s->srv->dmarc_reports || !d->have_record || (d->result != DMARC_PASS && d->result != DMARC_FAIL))
        return;
    struct dmarc_facts f;
    dmarc_facts_of(c, &f);
    struct dmarcrpt_message r = {.policy_domain = d->at_org ? d->org : d->from, .policy = &d->record,
                                 .source_ip = s->peer_ip, .header_from = d->from, .disposition = d->dis,
                                 .spf_domain = f.spf_domain, .spf_helo = !*m->sender,
                                 .spf_result = m->spf_result ? spf_result_name((enum spf_result)(m->spf_result - 1))
                                                             : "none"};
    dmarc_alignment(&d->record, &f, &r.dkim_aligned, &r.spf_aligned);
    for (size_t i = 0; i < c->v.count && r.ndkim < DMARCRPT_DKIM_MAX; i++)
        if (*c->v.sigs[i].domain)
            r.dkim[r.ndkim++] = (struct dmarcrpt_dkim){c->v.sigs[i].domain, c->v.sigs[i].selector,
                                                       dkim_result_name(c->v.sigs[i].result)};
    if (d->dis != (d->at_org ? d->record.sp : d->record.p) && d->result == DMARC_FAIL)
        r.reason = "sampled_out";
    if (s->srv->cfg->dmarc_policy != POLICY_REJECT && d->dis != DMARC_DIS_NONE) {
        r.disposition = DMARC_DIS_NONE;
        r.reason = "local_policy";
    }
    dmarcrpt_sender_note(s->srv->dmarc_reports, &r);
}

/* True when a local recipient's DMARC quarantine folder is held (it failed, mailbox_hold.h): the
 * copies then go to the inboxes, marked dis=quarantine, instead of failing again (one folder for
 * the message: the copies share one file). */
static bool quarantine_folder_held(const struct session *s, const struct message *m)
{
    for (size_t i = 0; i < m->nrcpts; i++)
        if (!m->rcpts[i].remote && mailbox_folder_is_held(s->srv->holds, m->rcpts[i].local, m->rcpts[i].domain,
                                                          s->srv->cfg->dmarc_quarantine_folder))
            return true;
    return false;
}

/* Logs and counts each result, puts the field into the message (and picks its folder). */
static void finish(struct msgauth_check *c)
{
    struct session *s = c->s;
    struct message *m = s->msg;
    if (s->srv->cfg->dkim_verify && c->v.count == 0)
        s->srv->metrics.dkim_verified[DKIM_R_NONE]++;
    for (size_t i = 0; i < c->v.count; i++) {
        const struct dkim_sig *g = &c->v.sigs[i];
        s->srv->metrics.dkim_verified[g->result]++;
        log_info("event=dkim_verify session=%s qid=%s domain=%s selector=%s result=%s%s detail=\"%s\"", s->id,
                 m->qid, *g->domain ? g->domain : "-", *g->selector ? g->selector : "-", dkim_result_name(g->result),
                 g->testing ? " testing=yes" : "", g->detail);
    }
    dmarc_decide(c);
    report_dmarc(c);
    const struct config *cfg = s->srv->cfg;
    const char *held = NULL; /* the quarantine folder, when a recipient's is held: then the inbox */
    if (c->dmarc.result == DMARC_FAIL && c->dmarc.dis == DMARC_DIS_QUARANTINE && cfg->dmarc_policy == POLICY_REJECT) {
        if (*cfg->dmarc_quarantine_folder && quarantine_folder_held(s, m))
            held = cfg->dmarc_quarantine_folder;
        else
            snprintf(m->folder, sizeof m->folder, "%s", cfg->dmarc_quarantine_folder); /* "": the inbox */
    }
    if (c->dmarc.on) {
        s->srv->metrics.dmarc[c->dmarc.result]++;
        log_info("event=dmarc session=%s qid=%s from_domain=%s result=%s disposition=%s%s%s%s%s detail=\"%s\"",
                 s->id, m->qid, *c->dmarc.from ? c->dmarc.from : "-", dmarc_result_name(c->dmarc.result),
                 dmarc_disposition_name(c->dmarc.dis), *m->folder ? " folder=" : "", m->folder,
                 held ? " folder_held=" : "", held ? held : "", c->dmarc.detail);
    }
    remove_own_results(m->body, s->srv->cfg->hostname);
    free(m->auth_results);
    m->auth_results = results_field(s, c);
}

/* What dmarc_policy = reject refuses a message with: the reply, its argument, the log's detail. */
struct refusal {
    enum reply_id id;
    const char *detail;
    char arg[ADDR_DOMAIN_MAX + 1];
};

/* The refusal the results call for, once decided (finish): under dmarc_policy = reject, an unclear
 * author (author_domain: its policy was never applied - DMARCbis' "denial of DMARC processing" -
 * so it is refused like a DMARC reject), or a fail whose disposition is reject. False: store it. */
static bool dmarc_refusal(const struct msgauth_check *c, struct refusal *r)
{
    const struct dmarc_state *d = &c->dmarc;
    if (c->s->srv->cfg->dmarc_policy != POLICY_REJECT)
        return false;
    if (*d->unclear)
        *r = (struct refusal){.id = REPLY_DMARC_AUTHOR_UNCLEAR, .detail = "DMARC author unclear"};
    else if (d->result == DMARC_FAIL && d->dis == DMARC_DIS_REJECT)
        *r = (struct refusal){.id = REPLY_DMARC_REJECT, .detail = "DMARC policy reject"};
    else
        return false;
    snprintf(r->arg, sizeof r->arg, "%s", *d->unclear ? d->unclear : d->from);
    return true;
}

/* The end of the check: the results into the message, the check freed, the session no longer
 * waiting; true with *r when the message is to be refused. */
static bool conclude(struct msgauth_check *c, struct refusal *r)
{
    struct session *s = c->s;
    finish(c);
    bool refuse = dmarc_refusal(c, r);
    msgauth_check_free(s);
    s->dns_pending = false;
    return refuse;
}

/* Ends the wait: the results into the message, then on to the commit - or the refusal. */
static void check_done(struct msgauth_check *c)
{
    struct session *s = c->s;
    struct header_facts facts = c->facts;
    struct refusal r;
    bool refuse = conclude(c, &r);
    if (s->closing)
        return; /* shut down meanwhile (421 sent): the client will send it again */
    if (refuse)
        refuse_data(s, r.id, r.detail, r.arg);
    else
        store_message(s, &facts);
    if (refuse && !s->closing && !s->dead)
        process_input(s);
}

static void ask(struct msgauth_check *c, const char *name, size_t sig);

/* The DMARC record's answer: found, none (then the organizational domain's, once), or failed. */
static void on_dmarc_record(struct msgauth_check *c, const struct dns_answer *a)
{
    struct dmarc_state *d = &c->dmarc;
    char text[DMARC_RECORD_MAX + 1], name[ADDR_DOMAIN_MAX + 16];
    int found = a->status == DNS_OK ? dmarc_select_record(a->data, a->len, a->n, text, sizeof text) : 0;
    if (a->status == DNS_TEMPFAIL) {
        dmarc_note(d, DMARC_TEMPERROR, "policy record lookup failed");
    } else if (found == 1 && !dmarc_parse_record(text, &d->record)) {
        dmarc_note(d, DMARC_PERMERROR, "policy record is not valid");
    } else if (found == 1) {
        d->have_record = true;
    } else if (found < 0) { /* RFC 7489 6.6.3: several records, and discovery ends */
        dmarc_note(d, DMARC_NONE, "several policy records");
    } else if (!d->at_org && strcmp(d->org, d->from) != 0) { /* RFC 7489 6.6.3: then the org domain's */
        d->at_org = true;
        snprintf(name, sizeof name, "_dmarc.%s", d->org);
        ask(c, name, DMARC_LOOKUP);
    }
}

static void on_answer(void *arg, const struct dns_answer *a)
{
    struct lookup *l = arg;
    struct msgauth_check *c = l->c;
    l->q = NULL;
    if (l->sig == DMARC_LOOKUP) {
        on_dmarc_record(c, a);
    } else {
        enum dkim_key_lookup how = a->status == DNS_OK         ? DKIM_KEY_ANSWER
                                   : a->status == DNS_NXDOMAIN ? DKIM_KEY_NONE
                                                               : DKIM_KEY_TEMPFAIL;
        dkim_verify_key(&c->v.sigs[l->sig], how, a->data, a->len, a->status == DNS_OK ? a->n : 0);
    }
    if (--c->pending == 0 && !c->hashing)
        check_done(c);
}

/* Starts one TXT lookup in a free slot; without one (or a resolver), the answer is a failure. */
static void ask(struct msgauth_check *c, const char *name, size_t sig)
{
    for (size_t i = 0; i < LOOKUPS_MAX; i++) {
        struct lookup *l = &c->lookups[i];
        if (l->q)
            continue;
        *l = (struct lookup){c, NULL, sig};
        if (c->s->srv->dns && (l->q = dns_lookup(c->s->srv->dns, name, DNS_RR_TXT, on_answer, l)) != NULL) {
            c->pending++;
            return;
        }
        break;
    }
    if (sig == DMARC_LOOKUP)
        dmarc_note(&c->dmarc, DMARC_TEMPERROR, "no resolver");
    else
        dkim_verdict(&c->v.sigs[sig], DKIM_R_TEMPERROR, "no resolver");
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct msgauth_check *c = arg;
    char detail[64];
    snprintf(detail, sizeof detail, "no answer within dns_timeout (%us)", c->s->srv->cfg->dns_timeout);
    for (size_t i = 0; i < LOOKUPS_MAX; i++) {
        struct lookup *l = &c->lookups[i];
        if (!l->q)
            continue;
        dns_cancel(l->q);
        l->q = NULL;
        if (l->sig == DMARC_LOOKUP)
            dmarc_note(&c->dmarc, DMARC_TEMPERROR, detail);
        else
            dkim_verdict(&c->v.sigs[l->sig], DKIM_R_TEMPERROR, detail);
    }
    c->pending = 0;
    check_done(c); /* the timer runs only after the hashing */
}

/* DKIM: asks for the key of each signature still waiting for one. */
static void ask_keys(struct msgauth_check *c)
{
    for (size_t i = 0; i < c->v.count; i++) {
        struct dkim_sig *g = &c->v.sigs[i];
        char name[ADDR_DOMAIN_MAX + 80];
        if (g->result != DKIM_R_NONE)
            continue;
        if (dkim_key_name(g, name, sizeof name))
            ask(c, name, i);
        else
            dkim_verdict(g, DKIM_R_PERMERROR, "key name too long");
    }
}

#define FROM_MAILBOXES_MAX 64 /* read at most this many From mailboxes */

/* The author domain of the message (RFC 7489 6.6.1, DMARCbis 4.7.1) into out: every mailbox of
 * every From field must name the same domain. Returns 1 when they do; 0 when there is no From
 * domain at all; -1 when the author is unclear - several From fields or mailboxes that name
 * different domains, or one without a domain beside others (why says which): a message that
 * could show a reader a domain whose DMARC policy was never applied. */
static int author_domain(const struct fields *fs, char *out, size_t outsz, char *why, size_t whysz)
{
    size_t froms = 0, mailboxes = 0, bad = 0;
    bool several_domains = false, unread = false;
    char d[ADDR_DOMAIN_MAX + 1];
    out[0] = '\0';
    for (size_t i = 0; i < fs->count; i++) {
        if (!field_named(&fs->v[i], "from"))
            continue;
        froms++;
        for (size_t pos = 0; pos < fs->v[i].len;) {
            if (mailboxes == FROM_MAILBOXES_MAX) {
                unread = true; /* the one not read could be the domain shown */
                break;
            }
            int r = field_mailbox_domain(&fs->v[i], &pos, d, sizeof d);
            mailboxes += r >= 0;
            bad += r == 0;
            if (r == 1 && !*out)
                snprintf(out, outsz, "%s", d);
            else if (r == 1 && strcasecmp(out, d) != 0)
                several_domains = true;
        }
    }
    if (!several_domains && !unread && !(bad && mailboxes > 1))
        return *out ? 1 : 0;
    if (froms > 1)
        snprintf(why, whysz, "%zu From fields", froms);
    else if (unread)
        snprintf(why, whysz, "more than %d From addresses", FROM_MAILBOXES_MAX);
    else
        snprintf(why, whysz, "%s", bad ? "From addresses, one without a domain" : "From addresses in several domains");
    return -1;
}

/* DMARC: the author domain (above), then its record asked. */
static void ask_dmarc(struct msgauth_check *c)
{
    struct dmarc_state *d = &c->dmarc;
    size_t hlen, body;
    struct fields fs = {0};
    int author = 0;
    canon_text_layout(c->s->msg->body, &hlen, &body);
    const char *h = hlen ? (const char *)evbuffer_pullup(c->s->msg->body, (ev_ssize_t)hlen) : "";
    if (h && split_fields(&fs, h, hlen))
        author = author_domain(&fs, d->from, sizeof d->from, d->unclear, sizeof d->unclear);
    free(fs.v);
    if (author < 1) {
        d->from[0] = '\0';
        char detail[sizeof d->detail];
        snprintf(detail, sizeof detail, "author unclear: %s", d->unclear);
        dmarc_note(d, DMARC_PERMERROR, author < 0 ? detail : "no From domain");
        return;
    }
    for (char *p = d->from; *p; p++)
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    dmarc_org_domain(d->from, d->org, sizeof d->org);
    char name[ADDR_DOMAIN_MAX + 16];
    snprintf(name, sizeof name, "_dmarc.%s", d->from);
    ask(c, name, DMARC_LOOKUP);
}

/* The lookups under way get dns_timeout from now. */
static void arm_timer(struct msgauth_check *c)
{
    struct timeval tv = {(time_t)c->s->srv->cfg->dns_timeout, 0};
    evtimer_add(c->timer, &tv);
}

/* Waits for the lookups under way (at most dns_timeout) and returns true, or, with none (then no
 * DMARC record either), puts the results into the message now and returns false - or refuses the
 * message for an unclear author and returns true. */
static bool wait_for_lookups(struct msgauth_check *c)
{
    struct session *s = c->s;
    if (c->pending == 0) { /* no DMARC record asked: nothing refuses but an unclear author */
        struct refusal r;
        bool refuse = conclude(c, &r);
        if (refuse)
            refuse_data(s, r.id, r.detail, r.arg);
        return refuse; /* true: answered here, not to be stored */
    }
    arm_timer(c);
    return true;
}

/* Disk thread: DKIM reads the message text - the signature fields, each body hash (see top). */
static void dkim_read_work(void *arg)
{
    struct msgauth_check *c = arg;
    dkim_verify_prepare(c->text, c->now, &c->v);
}

/* Loop thread: the signatures are read; their keys are asked, then the wait goes on - or ends. */
static void dkim_read_done(void *arg)
{
    struct msgauth_check *c = arg;
    struct session *s = c->s;
    s->job_pending = false;
    c->hashing = false;
    if (s->dead) { /* the client left meanwhile: nothing to store */
        log_debug("event=msgauth_abandoned session=%s reason=client_gone", s->id);
        session_free(s);
        return;
    }
    ask_keys(c);
    if (c->pending == 0)
        check_done(c); /* the DMARC record may have come meanwhile: check_done can refuse */
    else
        arm_timer(c);
}

bool msgauth_check_begin(struct session *s, const struct header_facts *facts)
{
    const struct config *cfg = s->srv->cfg;
    bool dmarc = cfg->dmarc_policy != POLICY_OFF;
    if (!cfg->dkim_verify && !dmarc)
        return false;
    if (s->role != ROLE_MX || s->auth_user || s->may_relay) { /* not checked; no forged results either */
        remove_own_results(s->msg->body, cfg->hostname);
        return false;
    }
    struct msgauth_check *c = calloc(1, sizeof *c);
    if (!c || !(c->timer = evtimer_new(s->srv->base, on_timeout, c))) {
        free(c);
        log_error("event=msgauth session=%s error=out_of_memory", s->id);
        return false;
    }
    c->s = s;
    c->facts = *facts;
    c->dmarc.on = dmarc;
    c->text = s->msg->body;
    s->msgauth = c;
    s->dns_pending = true;
    if (dmarc)
        ask_dmarc(c); /* first: it reads the From field here, before a disk thread has the text */
    if (!cfg->dkim_verify)
        return wait_for_lookups(c);
    c->now = (long long)time(NULL);
    c->hashing = true;
    s->job_pending = true;
    workq_submit(s->srv->disk, dkim_read_work, dkim_read_done, c);
    return true;
}

void msgauth_check_free(struct session *s)
{
    struct msgauth_check *c = s->msgauth;
    if (!c)
        return;
    for (size_t i = 0; i < LOOKUPS_MAX; i++)
        dns_cancel(c->lookups[i].q);
    event_free(c->timer);
    free(c);
    s->msgauth = NULL;
}
