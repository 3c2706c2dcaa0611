/* smtp_milter.c - the content filters of `milters` (milter.h) at the end of a message's data,
 * after this server's own checks (content rules, DKIM, DMARC) and before the message is stored:
 * each in turn gets a connection of its own (inet or unix), the option negotiation, then the
 * session's steps as one conversation - connect, HELO, MAIL, each RCPT, DATA, each header field,
 * end of header, the body in chunks, end of message - each step left out or not waited for as
 * the filter asked, with the macros rspamd and OpenDKIM read ({i}, j, {client_addr},
 * {auth_authen}, ...). A reply of accept ends that filter; continue goes on; reject, tempfail,
 * discard or a custom 4xx/5xx reply decide the message. At the end of the message the filter's
 * header edits (add, insert, change, delete) are made on the text before its final word. A filter
 * that cannot be reached, is silent for milter_timeout or breaks the protocol: 451 4.3.0, or
 * skipped with milter_fail_open. Part of the session (session_priv.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "cidr.h"
#include "dkim_canon.h"
#include "log.h"
#include "message.h"
#include "milter.h"
#include "server.h"
#include "session_priv.h"

enum mstep { MS_CONNECT, MS_HELO, MS_MAIL, MS_RCPT, MS_DATA, MS_HEADER, MS_EOH, MS_BODY, MS_EOM, MS_OPTNEG };

enum verdict { V_ACCEPT, V_REJECT, V_TEMPFAIL, V_DISCARD, V_FAILED /* the filter did not work */ };

struct milter_check {
    struct session *s;
    struct header_facts facts;
    size_t which;            /* the filter: cfg->milters.items[which] */
    struct bufferevent *bev;
    uint32_t actions, protocol; /* as negotiated */
    enum mstep step;         /* the step last sent */
    size_t item;             /* its recipient, header field or body offset */
    struct fields fields;    /* the header fields, for MS_HEADER */
    size_t body;             /* where the text's body begins (read when the header steps began) */
    bool edited;             /* a header edit was made: the facts are read again */
    struct event *later;     /* a failure found while starting, reported from the loop */
    char later_why[80];
};

/* Each step's option bits: left out, not answered. */
static const uint32_t step_no[] = {MILTER_P_NOCONNECT, MILTER_P_NOHELO, MILTER_P_NOMAIL, MILTER_P_NORCPT,
                                   MILTER_P_NODATA, MILTER_P_NOHDRS, MILTER_P_NOEOH, MILTER_P_NOBODY, 0};
static const uint32_t step_nr[] = {MILTER_P_NR_CONN, MILTER_P_NR_HELO, MILTER_P_NR_MAIL, MILTER_P_NR_RCPT,
                                   MILTER_P_NR_DATA, MILTER_P_NR_HDR, MILTER_P_NR_EOH, MILTER_P_NR_BODY, 0};

static const char *milter_name(const struct milter_check *c)
{
    return c->s->srv->cfg->milters.items[c->which];
}

void milter_check_free(struct session *s)
{
    struct milter_check *c = s->milter;
    if (!c)
        return;
    if (c->bev)
        bufferevent_free(c->bev);
    if (c->later)
        event_free(c->later);
    free(c->fields.v);
    free(c);
    s->milter = NULL;
}

/* Ends the filters' work on the message: stored (after the last filter's accept), or refused,
 * deferred or dropped as verdict says (text: the filter's words, "" for none). */
static void conclude(struct milter_check *c, enum verdict v, const char *text)
{
    struct session *s = c->s;
    struct header_facts facts = c->facts;
    char arg[300], detail[400];
    snprintf(arg, sizeof arg, "%s%s", *text ? ": " : "", text);
    snprintf(detail, sizeof detail, "milter %s%s%s", milter_name(c), *text ? ": " : "", text);
    if (c->edited)
        message_scan_headers(s->msg, &facts);
    milter_check_free(s);
    s->dns_pending = false;
    if (s->closing)
        return; /* shut down meanwhile (421 sent): the client will send it again */
    if (v == V_ACCEPT) {
        commit_message(s, &facts);
        return;
    }
    if (v == V_REJECT)
        refuse_data(s, REPLY_MILTER_REJECTED, detail, arg);
    else if (v == V_TEMPFAIL)
        refuse_data(s, REPLY_MILTER_DEFERRED, detail, arg);
    else if (v == V_FAILED)
        refuse_data(s, REPLY_MILTER_UNAVAILABLE, detail, NULL);
    else
        discard_data(s, detail);
    if (!s->closing && !s->dead)
        process_input(s);
}

static void start_filter(struct milter_check *c);

/* This filter has said its last word on the message: the next filter, or the end. */
static void filter_done(struct milter_check *c, enum verdict v, const char *text)
{
    struct session *s = c->s;
    log_info("event=milter session=%s qid=%s milter=%s verdict=%s%s%s%s", s->id, s->msg->qid, milter_name(c),
             v == V_ACCEPT ? "accept" : v == V_REJECT ? "reject" : v == V_TEMPFAIL ? "tempfail" : "discard",
             *text ? " reply=\"" : "", text, *text ? "\"" : "");
    if (c->bev) {
        evutil_socket_t fd = bufferevent_getfd(c->bev);
        if (fd >= 0 && evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
            char quit[5] = {0, 0, 0, 1, 'Q'};
            ssize_t n = send(fd, quit, sizeof quit, MSG_NOSIGNAL | MSG_DONTWAIT); /* best effort */
            (void)n;
        }
        bufferevent_free(c->bev);
        c->bev = NULL;
    }
    if (v == V_ACCEPT && c->which + 1 < s->srv->cfg->milters.count) {
        c->which++;
        start_filter(c);
        return;
    }
    conclude(c, v, text);
}

/* The filter failed (why): 451, or - milter_fail_open - the message goes on without it. */
static void filter_failed(struct milter_check *c, const char *why)
{
    struct session *s = c->s;
    s->srv->metrics.milter_failures++;
    log_warn("event=milter_failed session=%s qid=%s milter=%s error=\"%s\" action=%s", s->id, s->msg->qid,
             milter_name(c), why, s->srv->cfg->milter_fail_open ? "accepted" : "deferred");
    if (s->srv->cfg->milter_fail_open) {
        filter_done(c, V_ACCEPT, "");
        return;
    }
    if (c->bev) {
        bufferevent_free(c->bev);
        c->bev = NULL;
    }
    conclude(c, V_FAILED, "");
}

static void on_later(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct milter_check *c = arg;
    filter_failed(c, c->later_why);
}

/* A failure found while starting a filter, reported from the event loop: the caller may be in
 * the middle of the session's input (no reply from inside it). */
static void fail_later(struct milter_check *c, const char *why)
{
    snprintf(c->later_why, sizeof c->later_why, "%s", why);
    struct timeval now = {0, 0};
    if (!c->later)
        c->later = evtimer_new(c->s->srv->base, on_later, c);
    if (c->later)
        evtimer_add(c->later, &now);
    else
        log_error("event=milter session=%s error=out_of_memory", c->s->id); /* the session's timeout ends it */
}

/* ---------- the steps ---------- */

/* A macro packet ('D') for the step cmd: pairs of name, value (NULL-ended). */
static void send_macros(struct milter_check *c, char cmd, const char *const *pairs)
{
    struct evbuffer *b = evbuffer_new();
    if (!b)
        return;
    evbuffer_add(b, &cmd, 1);
    for (size_t i = 0; pairs[i] && pairs[i + 1]; i += 2) {
        evbuffer_add(b, pairs[i], strlen(pairs[i]) + 1);
        evbuffer_add(b, pairs[i + 1], strlen(pairs[i + 1]) + 1);
    }
    milter_packet(bufferevent_get_output(c->bev), 'D', evbuffer_pullup(b, -1), evbuffer_get_length(b));
    evbuffer_free(b);
}

/* SMFIC_CONNECT: the client's name, its address family, port and address. */
static void send_connect(struct milter_check *c, struct evbuffer *out)
{
    const struct session *s = c->s;
    const char *name = rdns_name(s);
    char host[300], data[400];
    snprintf(host, sizeof host, "%s", name && *name ? name : "");
    if (!*host)
        snprintf(host, sizeof host, "[%s]", s->peer_ip);
    const char *const macros[] = {"j", s->srv->cfg->hostname, "{daemon_name}", "postern", "{client_addr}",
                                  s->peer_ip, "{client_name}", host, NULL};
    send_macros(c, 'C', macros);
    uint16_t port = 0;
    char family = '4';
    if (s->peer.ss_family == AF_INET6) {
        family = '6';
        port = ((const struct sockaddr_in6 *)&s->peer)->sin6_port;
    } else if (s->peer.ss_family == AF_INET) {
        port = ((const struct sockaddr_in *)&s->peer)->sin_port;
    }
    size_t n = (size_t)snprintf(data, sizeof data, "%s", host) + 1;
    data[n++] = family;
    memcpy(data + n, &port, 2); /* network order already */
    n += 2;
    n += (size_t)snprintf(data + n, sizeof data - n, "%s", s->peer_ip) + 1;
    milter_packet(out, 'C', data, n);
}

/* SMFIC_MAIL: the sender, with its macros. */
static void send_mail(struct milter_check *c, struct evbuffer *out)
{
    const struct session *s = c->s;
    char path[ADDR_PATH_MAX + 3];
    int n = snprintf(path, sizeof path, "<%s>", s->msg->sender);
    const char *const macros[] = {"{mail_addr}", s->msg->sender, "{i}", s->msg->qid,
                                  "{auth_authen}", s->auth_user ? s->auth_user : NULL, NULL, NULL};
    send_macros(c, 'M', macros);
    milter_packet(out, 'M', path, (size_t)n + 1);
}

/* SMFIC_RCPT of recipient i. */
static void send_rcpt(struct milter_check *c, struct evbuffer *out, size_t i)
{
    const char *addr = c->s->msg->rcpts[i].addr;
    char path[ADDR_PATH_MAX + 3];
    int n = snprintf(path, sizeof path, "<%s>", addr);
    const char *const macros[] = {"{rcpt_addr}", addr, NULL};
    send_macros(c, 'R', macros);
    milter_packet(out, 'R', path, (size_t)n + 1);
}

/* SMFIC_HEADER of field i: its name, its value without the blanks after the colon. */
static void send_header(struct milter_check *c, struct evbuffer *out, size_t i)
{
    const struct field *f = &c->fields.v[i];
    const char *colon = memchr(f->p, ':', f->len);
    if (!colon)
        return; /* not a field (split_fields keeps no such line; to be safe) */
    size_t nlen = (size_t)(colon - f->p);
    while (nlen && is_wsp(f->p[nlen - 1]))
        nlen--;
    const char *v = colon + 1, *end = f->p + f->len;
    while (v < end && is_wsp(*v))
        v++;
    struct evbuffer *b = evbuffer_new();
    if (!b)
        return;
    evbuffer_add(b, f->p, nlen);
    evbuffer_add(b, "", 1);
    evbuffer_add(b, v, (size_t)(end - v));
    evbuffer_add(b, "", 1);
    milter_packet(out, 'L', evbuffer_pullup(b, -1), evbuffer_get_length(b));
    evbuffer_free(b);
}

/* SMFIC_BODY: the next chunk of the body from c->item on, its lines ended by CRLF (as SMTP
 * carried them); c->item moves past it. */
static void send_body_chunk(struct milter_check *c, struct evbuffer *out)
{
    struct evbuffer *text = c->s->msg->body;
    size_t total = evbuffer_get_length(text), take = total - c->item;
    take = take > MILTER_BODY_CHUNK / 2 ? MILTER_BODY_CHUNK / 2 : take; /* LF -> CRLF at most doubles it */
    char *src = malloc(take ? take : 1), *dst = malloc(take * 2 + 1);
    struct evbuffer_ptr at;
    evbuffer_ptr_set(text, &at, c->item, EVBUFFER_PTR_SET);
    size_t n = 0;
    if (src && dst && evbuffer_copyout_from(text, &at, src, take) == (ev_ssize_t)take)
        for (size_t i = 0; i < take; i++) {
            if (src[i] == '\n')
                dst[n++] = '\r';
            dst[n++] = src[i];
        }
    milter_packet(out, 'B', dst, n);
    c->item += take;
    free(src);
    free(dst);
}

/* Sends step c->step (item c->item); true when the filter answers it. */
static bool send_step(struct milter_check *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    const struct session *s = c->s;
    switch (c->step) {
    case MS_CONNECT: send_connect(c, out); break;
    case MS_HELO: milter_packet(out, 'H', s->helo, strlen(s->helo) + 1); break;
    case MS_MAIL: send_mail(c, out); break;
    case MS_RCPT: send_rcpt(c, out, c->item++); break;
    case MS_DATA: milter_packet(out, 'T', NULL, 0); break;
    case MS_HEADER: send_header(c, out, c->item++); break;
    case MS_EOH: milter_packet(out, 'N', NULL, 0); break;
    case MS_BODY: send_body_chunk(c, out); break;
    default: {
        const char *const macros[] = {"{i}", s->msg->qid, NULL};
        send_macros(c, 'E', macros);
        milter_packet(out, 'E', NULL, 0);
        return true;
    }
    }
    return !(c->protocol & step_nr[c->step]);
}

/* True when step c->step has nothing (more) to send: its items are all sent, or it is left out. */
static bool step_over(const struct milter_check *c)
{
    if (c->step < MS_EOM && (c->protocol & step_no[c->step]))
        return true;
    switch (c->step) {
    case MS_RCPT: return c->item >= c->s->msg->nrcpts;
    case MS_HEADER: return c->item >= c->fields.count;
    case MS_BODY: return c->item >= evbuffer_get_length(c->s->msg->body);
    default: return false;
    }
}

/* The next step after c->step (its first item). */
static void next_step(struct milter_check *c)
{
    c->step++;
    c->item = c->step == MS_BODY ? c->body : 0;
}

/* Sends steps until one the filter answers (or the end of the message, always answered). */
static void advance(struct milter_check *c)
{
    for (;;) {
        while (step_over(c))
            next_step(c);
        if (send_step(c))
            return;
        if (c->step != MS_RCPT && c->step != MS_HEADER && c->step != MS_BODY)
            next_step(c);
    }
}

/* The header fields of the text as it stands (a filter before may have edited it). */
static bool read_layout(struct milter_check *c)
{
    free(c->fields.v);
    c->fields = (struct fields){0};
    size_t hlen;
    canon_text_layout(c->s->msg->body, &hlen, &c->body);
    const char *h = hlen ? (const char *)evbuffer_pullup(c->s->msg->body, (ev_ssize_t)hlen) : "";
    return h && split_fields(&c->fields, h, hlen);
}

/* ---------- the filter's replies ---------- */

/* A header edit at the end of the message ('h', 'i', 'm'); false when the filter may not make it
 * (not negotiated) or it is malformed. */
static bool header_edit(struct milter_check *c, char cmd, const char *data, size_t len)
{
    uint32_t index = 0;
    const char *name, *value;
    bool may = cmd == 'm' ? (c->actions & MILTER_ACT_CHGHDRS) : (c->actions & MILTER_ACT_ADDHDRS);
    if (!may || !milter_header_args(data, len, cmd != 'h', &index, &name, &value))
        return false;
    milter_header_edit(c->s->msg->body, cmd, index, name, value);
    c->edited = true;
    log_debug("event=milter_header_edit session=%s milter=%s edit=%c name=%s", c->s->id, milter_name(c), cmd, name);
    return true;
}

/* The filter's decision (r, t, d, y, a): the filter is done; false when cmd is none of them. */
static bool decision(struct milter_check *c, char cmd, const char *data, size_t len)
{
    char text[200] = "";
    int klass;
    switch (cmd) {
    case 'a': filter_done(c, V_ACCEPT, ""); return true;
    case 'r': filter_done(c, V_REJECT, ""); return true;
    case 't': filter_done(c, V_TEMPFAIL, ""); return true;
    case 'd': filter_done(c, V_DISCARD, ""); return true;
    case 'y':
        if (!milter_reply_parse(data, len, &klass, text, sizeof text))
            return false;
        filter_done(c, klass == 5 ? V_REJECT : V_TEMPFAIL, text);
        return true;
    default: return false;
    }
}

/* One packet from the filter, for the step it answers; false when it breaks the protocol. */
static bool handle_packet(struct milter_check *c, char cmd, const char *data, size_t len)
{
    uint32_t version;
    if (cmd == 'p')
        return true; /* progress: still working (the read timeout starts again) */
    if (c->step == MS_OPTNEG) {
        if (cmd != 'O' || !milter_optneg_parse(data, len, &version, &c->actions, &c->protocol) || version < 2)
            return false;
        c->actions &= MILTER_ACT_ADDHDRS | MILTER_ACT_CHGHDRS;
        c->protocol &= MILTER_P_OFFERED;
        c->step = MS_CONNECT;
        c->item = 0;
        if (!read_layout(c))
            return false;
        advance(c);
        return true;
    }
    if (c->step == MS_EOM && (cmd == 'h' || cmd == 'i' || cmd == 'm'))
        return header_edit(c, cmd, data, len);
    if (c->step == MS_EOM && cmd == 'c') {
        filter_done(c, V_ACCEPT, "");
        return true;
    }
    if (cmd == 'c' || (cmd == 's' && c->step == MS_BODY)) {
        if (cmd == 's')
            c->step = MS_EOM; /* skip the rest of the body */
        else if (c->step != MS_RCPT && c->step != MS_HEADER && c->step != MS_BODY)
            next_step(c);
        advance(c);
        return true;
    }
    return decision(c, cmd, data, len);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct milter_check *c = arg;
    struct session *s = c->s;
    unsigned run = s->milter_runs;
    struct evbuffer *in = bufferevent_get_input(bev);
    for (;;) {
        char cmd = 0, *data = NULL;
        size_t len = 0;
        int got = milter_packet_take(in, &cmd, &data, &len);
        if (got == 0)
            return;
        bool ok = got > 0 && handle_packet(c, cmd, data, len);
        free(data);
        if (s->milter_runs != run || s->milter != c)
            return; /* decided (c is freed), or another filter has begun (bev is freed) */
        if (!ok) {
            char why[64];
            snprintf(why, sizeof why, got < 0 ? "a packet too long or empty" : "unexpected reply '%c'", cmd);
            filter_failed(c, why);
            return;
        }
    }
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct milter_check *c = arg;
    if (what & BEV_EVENT_CONNECTED) {
        struct evbuffer *out = bufferevent_get_output(c->bev);
        milter_optneg(out, MILTER_ACT_ADDHDRS | MILTER_ACT_CHGHDRS, MILTER_P_OFFERED);
        c->step = MS_OPTNEG;
        return;
    }
    char why[160];
    if (what & BEV_EVENT_TIMEOUT)
        snprintf(why, sizeof why, "no answer within milter_timeout (%us)", c->s->srv->cfg->milter_timeout);
    else if (what & BEV_EVENT_EOF)
        snprintf(why, sizeof why, "the filter closed the connection");
    else
        snprintf(why, sizeof why, "%s", evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    filter_failed(c, why);
}

/* The filter's address (inet:ADDRESS:PORT, unix:/PATH) into ss; false when it is neither. */
static bool milter_address(const char *text, struct sockaddr_storage *ss, socklen_t *sslen)
{
    if (!strncmp(text, "inet:", 5))
        return hostport_parse(text + 5, ss, sslen);
    struct sockaddr_un *un = (struct sockaddr_un *)ss;
    if (strncmp(text, "unix:", 5) != 0 || strlen(text + 5) >= sizeof un->sun_path)
        return false;
    memset(un, 0, sizeof *un);
    un->sun_family = AF_UNIX;
    memcpy(un->sun_path, text + 5, strlen(text + 5));
    *sslen = (socklen_t)sizeof *un;
    return true;
}

/* Connects to filter c->which; its negotiation follows (on_event). */
static void start_filter(struct milter_check *c)
{
    struct session *s = c->s;
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    s->milter_runs++;
    c->step = MS_OPTNEG;
    if (!milter_address(milter_name(c), &ss, &sslen)) {
        fail_later(c, "not an address");
        return;
    }
    c->bev = bufferevent_socket_new(s->srv->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev) {
        fail_later(c, "out of memory");
        return;
    }
    struct timeval tv = {s->srv->cfg->milter_timeout, 0};
    bufferevent_set_timeouts(c->bev, &tv, &tv);
    bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&ss, (int)sslen) < 0) {
        bufferevent_free(c->bev); /* libevent reports no error event for this */
        c->bev = NULL;
        fail_later(c, strerror(errno));
    }
}

bool milter_check_begin(struct session *s, const struct header_facts *facts)
{
    if (s->srv->cfg->milters.count == 0)
        return false;
    struct milter_check *c = calloc(1, sizeof *c);
    if (!c) {
        log_error("event=milter session=%s error=out_of_memory", s->id);
        refuse_data(s, REPLY_LOCAL_ERROR, "out of memory", NULL);
        return true;
    }
    c->s = s;
    c->facts = *facts;
    s->milter = c;
    s->dns_pending = true;
    start_filter(c);
    return true;
}
