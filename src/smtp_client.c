/* smtp_client.c - the outbound SMTP conversation (see smtp_client.h).
 * Results: a recipient's diag is either the remote reply ("550 5.1.1 text": starts with 3 digits)
 * or Postern's own description of a failure ("4.4.1 connect to ...": starts with an enhanced code).
 * Connection-level failures before the first MAIL try the next target; later ones defer the rest
 * of the job. Every wait has a timeout from the configuration (RFC 5321 4.5.3.2 defaults). */
#include "smtp_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "address.h"
#include "config.h"
#include "idn.h"
#include "log.h"
#include "message.h"
#include "mime_downgrade.h"
#include "smtp_ext.h"
#include "smtp_reply.h"
#include "smtp_client_priv.h"
#include "tls.h"

static void try_target(struct smtp_client *c);
static void start_job(struct smtp_client *c);

/* ---------- helpers ---------- */

/* relay_host_implicit_tls: the relay host speaks TLS from the first byte (RFC 8314). */
bool client_implicit_tls(const struct smtp_client *c)
{
    return c->hop.relay_host && c->cfg->relay_host_implicit_tls && c->tls;
}

void client_set_timeout(struct smtp_client *c, unsigned seconds)
{
    struct timeval tv = {(time_t)seconds, 0};
    bufferevent_set_timeouts(c->bev, &tv, &tv);
}

void client_send_line(struct smtp_client *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    evbuffer_add_vprintf(bufferevent_get_output(c->bev), fmt, ap);
    va_end(ap);
    evbuffer_add(bufferevent_get_output(c->bev), "\r\n", 2);
}

int smtp_wire_body(struct evbuffer *out, const char *text, size_t len)
{
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (n && p[n - 1] == '\r')
            n--; /* tolerate CRLF text too */
        if (*p == '.' && evbuffer_add(out, ".", 1) < 0)
            return -1;
        if (evbuffer_add(out, p, n) < 0 || evbuffer_add(out, "\r\n", 2) < 0)
            return -1;
        p = nl ? nl + 1 : end;
    }
    return evbuffer_add(out, ".\r\n", 3);
}

static bool is_ascii(const char *s)
{
    return !mime_has_8bit(s, strlen(s));
}

/* The form of addr to send: as it is to a peer that offers SMTPUTF8; to one that does not, a
 * domain in U-labels is written as its A-label when the local part is ASCII (RFC 6531 3.2 allows
 * it: the address is the same), so "leser@bücher.test" still goes, as leser@xn--bcher-kva.test.
 * Returns whether the form written to out is all ASCII. */
static bool envelope_address(const struct smtp_client *c, const char *addr, char *out, size_t outsz)
{
    const char *at = strrchr(addr, '@');
    char domain[ADDR_DOMAIN_MAX + 1];
    snprintf(out, outsz, "%s", addr);
    if (c->ext.smtputf8 || is_ascii(addr) || !at || (size_t)(at - addr) >= outsz)
        return is_ascii(out);
    for (const char *p = addr; p < at; p++)
        if ((unsigned char)*p >= 0x80)
            return false; /* a UTF-8 local part has no ASCII form */
    if (!idn_to_ascii(at + 1, domain, sizeof domain))
        return false;
    snprintf(out, outsz, "%.*s@%s", (int)(at - addr), addr, domain);
    return true;
}

/* True when some envelope address cannot be sent to this peer (it lacks SMTPUTF8). */
static bool needs_utf8(const struct smtp_client *c, const struct smtp_job *job)
{
    char form[ADDR_PATH_MAX + 1];
    if (!envelope_address(c, job->sender, form, sizeof form))
        return true;
    for (size_t i = 0; i < job->nrcpts; i++)
        if (!envelope_address(c, job->rcpts[i].addr, form, sizeof form))
            return true;
    return false;
}

/* Every recipient still without a result gets this one. */
static void fill_results(struct smtp_job *job, int code, const char *diag)
{
    for (size_t i = 0; i < job->nrcpts; i++)
        if (job->rcpts[i].code == 0) {
            job->rcpts[i].code = code;
            snprintf(job->rcpts[i].diag, sizeof job->rcpts[i].diag, "%s", diag);
        }
}

/* Frees the converted form of the current job's text, if one was made (prepare_text). */
static void drop_converted(struct smtp_client *c)
{
    if (c->converted)
        evbuffer_free(c->converted);
    c->converted = NULL;
}

static void on_close_ev(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct smtp_client *c = arg;
    c->ops->closed(c->arg, c);
    event_free(c->close_ev);
    drop_converted(c);
    free(c->rcpt_accepted);
    free(c);
}

/* Drops the socket; closed() runs from the loop, never inside the caller. */
static void close_connection(struct smtp_client *c)
{
    dns_cancel(c->tlsa_query);
    c->tlsa_query = NULL;
    if (c->bev) {
        bufferevent_free(c->bev);
        c->bev = NULL;
    }
    c->state = C_DEAD;
    struct timeval now = {0, 0};
    evtimer_add(c->close_ev, &now);
}

/* The job is over (every recipient has a code): hand it back. */
static void finish_job(struct smtp_client *c)
{
    struct smtp_job *job = c->job;
    c->job = NULL;
    drop_converted(c);
    if (c->state != C_DEAD)
        c->state = C_READY;
    snprintf(job->remote_host, sizeof job->remote_host, "%s", c->host);
    job->peer_dsn = c->ext.dsn;
    c->ops->job_done(c->arg, c, job);
}

/* Ends the connection for good: the job's recipients without an answer get code and diag, and the
 * owner, seeing an unusable connection, gets the job back. */
void client_give_up(struct smtp_client *c, int code, const char *diag)
{
    c->state = C_DEAD;
    if (c->job) {
        fill_results(c->job, code, diag);
        finish_job(c);
    }
    if (!c->job && !evtimer_pending(c->close_ev, NULL))
        close_connection(c);
}

/* The connection broke or the peer misbehaved: next target if no transaction started yet. */
void client_conn_failed(struct smtp_client *c, const char *why)
{
    char safe[700];
    log_info("event=smtp_client_failure host=%s error=\"%s\"", c->host, log_quotable(safe, sizeof safe, why));
    snprintf(c->last_error, sizeof c->last_error, "%s", why);
    if (c->bev) {
        bufferevent_free(c->bev);
        c->bev = NULL;
    }
    if (c->job && !c->job_started && c->state != C_QUIT) {
        if ((c->state == C_CONNECT || c->state == C_GREETING) && c->ops->target_down)
            c->ops->target_down(c->arg, &c->route.targets[c->target], why);
        if (c->state == C_TLS && !c->tls_failed && !client_tls_required(c) && !client_implicit_tls(c)) { /* cleartext retry */
            c->tls_failed = true;
        } else {
            c->target++;
            c->tls_failed = false;
        }
        try_target(c);
        return;
    }
    client_give_up(c, 451, why);
}

/* ---------- connection set-up ---------- */

static void try_target(struct smtp_client *c)
{
    if (c->target >= c->route.ntargets) {
        char diag[700];
        bool coded = c->last_error[0] >= '2' && c->last_error[0] <= '5' && c->last_error[1] == '.';
        snprintf(diag, sizeof diag, "%s%s", coded ? "" : "4.4.1 ", *c->last_error ? c->last_error : "no mail exchanger to try");
        c->no_target_worked = true;
        client_give_up(c, 451, diag);
        return;
    }
    struct dns_target *t = &c->route.targets[c->target];
    char ip[INET6_ADDRSTRLEN] = "?";
    if (t->addr.ss_family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&t->addr;
        in->sin_port = htons((uint16_t)c->hop.port);
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
    } else if (t->addr.ss_family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&t->addr;
        in6->sin6_port = htons((uint16_t)c->hop.port);
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
    }
    /* an LMTP server's socket: its path stays in the log's route line, out of bounces */
    snprintf(c->host, sizeof c->host, "%s[%s]", t->addr.ss_family == AF_UNIX ? "localhost" : t->host,
             t->addr.ss_family == AF_UNIX ? "unix" : ip);
    c->tls_active = false;
    smtp_reply_reset(&c->reply);
    if (client_dane_lookup(c))
        return; /* client_connect when its TLSA records are in */
    if (c->tlsa.status == TLSA_FAILED) {
        client_conn_failed(c, c->tlsa.error);
        return;
    }
    client_connect_unless_dane_unmet(c);
}

/* smtp_bind_address(6): a non-blocking socket of family bound to it, for the connection; -1 when
 * none is set (the kernel chooses at connect); -2 when it cannot be made (why filled). */
static evutil_socket_t bound_socket(const struct config *cfg, int family, char *why, size_t whysz)
{
    const char *addr = family == AF_INET ? cfg->smtp_bind_address : family == AF_INET6 ? cfg->smtp_bind_address6 : "";
    if (!*addr)
        return -1;
    struct sockaddr_storage ss = {0};
    socklen_t len = family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    ss.ss_family = (sa_family_t)family;
    void *dst = family == AF_INET ? (void *)&((struct sockaddr_in *)&ss)->sin_addr
                                  : (void *)&((struct sockaddr_in6 *)&ss)->sin6_addr;
    evutil_socket_t fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd >= 0 && inet_pton(family, addr, dst) == 1 && bind(fd, (struct sockaddr *)&ss, len) == 0)
        return fd;
    snprintf(why, whysz, "cannot use %s %s: %s", family == AF_INET ? "smtp_bind_address" : "smtp_bind_address6",
             addr, strerror(errno));
    if (fd >= 0)
        close(fd);
    return -2;
}

void client_connect(struct smtp_client *c)
{
    const struct dns_target *t = &c->route.targets[c->target];
    char why[400];
    c->state = C_CONNECT;
    evutil_socket_t fd = bound_socket(c->cfg, t->addr.ss_family, why, sizeof why);
    if (fd == -2) {
        client_conn_failed(c, why);
        return;
    }
    c->bev = bufferevent_socket_new(c->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev) {
        if (fd >= 0)
            close(fd);
        client_conn_failed(c, "out of memory");
        return;
    }
    bufferevent_setcb(c->bev, client_on_read, NULL, client_on_event, c);
    client_set_timeout(c, c->cfg->smtp_connect_timeout);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&t->addr, (int)t->addrlen) < 0) {
        if (t->addr.ss_family == AF_UNIX)
            snprintf(why, sizeof why, "connect to %s failed", c->host);
        else
            snprintf(why, sizeof why, "connect to %s:%u failed", c->host, c->hop.port);
        client_conn_failed(c, why);
    }
}

struct smtp_client *smtp_client_new(struct event_base *base, const struct config *cfg, SSL_CTX *tls, struct dns *dns,
                                    const struct next_hop *hop, const struct dns_route *route,
                                    const struct smtp_client_ops *ops, void *arg, struct smtp_job *first)
{
    struct smtp_client *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->base = base;
    c->cfg = cfg;
    c->tls = tls;
    c->route = *route;
    c->hop = *hop;
    c->dns = dns;
    client_tls_levels(c);
    client_dane_applies(c);
    c->ops = ops;
    c->arg = arg;
    c->job = first;
    c->close_ev = evtimer_new(base, on_close_ev, c);
    if (!c->close_ev) {
        free(c);
        return NULL;
    }
    try_target(c);
    return c;
}

/* EHLO, and with it a fresh start for what the peer offers: on a new connection, and after
 * STARTTLS, where RFC 3207 4.2 has the client forget the extensions offered before TLS (also when
 * the EHLO then fails and HELO follows: HELO offers none). */
void client_send_ehlo(struct smtp_client *c)
{
    c->ext = (struct smtp_extensions){0};
    c->state = C_EHLO;
    client_send_line(c, "%s %s", c->hop.lmtp ? "LHLO" : "EHLO", c->cfg->hostname); /* RFC 2033 4.1 */
    client_set_timeout(c, c->cfg->smtp_command_timeout);
}

/* The session is ready: run the waiting job, or just sit until the owner gives one. */
void client_session_ready(struct smtp_client *c)
{
    c->state = C_READY;
    if (c->job)
        start_job(c);
}

/* ---------- the transaction ---------- */

/* The message's size on the wire (RFC 1870 SIZE): the stored text has LF line ends, CRLF is sent. */
static size_t wire_size(const char *text, size_t len)
{
    size_t lines = 0;
    for (const char *p = text; (p = memchr(p, '\n', (size_t)(text + len - p))) != NULL; p++)
        lines++;
    return len + lines;
}

/* Sets what the job sends to this peer (c->text, c->len): its text, or - when a line is longer
 * than 998 octets, or the text is 8-bit (eight) and the peer offers no 8BITMIME (RFC 6152 section
 * 3: convert or fail) - the form mime_downgrade makes of it. False when the job is over: a 7-bit
 * peer and a text that cannot be converted (its recipients get 554 5.6.3 saying why), or no memory
 * for it (451). Long lines that cannot be mended go as they are to a peer that takes 8-bit text. */
static bool prepare_text(struct smtp_client *c, bool eight)
{
    struct smtp_job *job = c->job;
    c->text = job->text;
    c->len = job->len;
    bool seven_bit = eight && !c->ext.eightbit;
    if (!seven_bit && !mime_has_long_line(job->text, job->len))
        return true;
    drop_converted(c);
    c->converted = evbuffer_new();
    enum mime_downgrade_result r =
        c->converted ? mime_downgrade(job->text, job->len, seven_bit, c->converted) : MIME_DOWNGRADE_NO_MEMORY;
    /* the input had a long line or an 8-bit octet, so the output is never empty: NULL is no memory */
    const char *text = r == MIME_DOWNGRADE_OK ? (const char *)evbuffer_pullup(c->converted, -1) : NULL;
    size_t len = text ? evbuffer_get_length(c->converted) : 0;
    if (text && (len != job->len || memcmp(text, job->text, len) != 0)) {
        c->text = text;
        c->len = len;
        log_info("event=smtp_client_converted host=%s reason=%s octets=%zu converted=%zu", c->host,
                 seven_bit ? "8bit" : "long_lines", job->len, len);
        return true;
    }
    drop_converted(c);
    if (text || !seven_bit)
        return true; /* nothing to mend, or nothing more to try: the text as it is */
    if (r == MIME_DOWNGRADE_NO_MEMORY) {
        fill_results(job, 451, "4.3.0 out of memory while converting the message to 7-bit MIME");
    } else {
        char diag[400];
        snprintf(diag, sizeof diag, "5.6.3 the message has 8-bit text, the destination mail server does not "
                 "accept it (it offers no 8BITMIME), and it cannot be converted to 7-bit MIME: %s",
                 mime_downgrade_problem(r));
        fill_results(job, 554, diag);
    }
    finish_job(c);
    return false;
}

/* MAIL FROM with the parameters the peer takes; size is the wire size (0: the peer has no SIZE);
 * eight: the text sent has 8-bit octets (then the peer offers 8BITMIME). */
static void send_mail(struct smtp_client *c, size_t size, bool eight)
{
    struct smtp_job *job = c->job;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    char sender[ADDR_PATH_MAX + 1];
    envelope_address(c, job->sender, sender, sizeof sender);
    evbuffer_add_printf(out, "MAIL FROM:<%s>", sender);
    if (size)
        evbuffer_add_printf(out, " SIZE=%zu", size);
    if ((job->body8bit || eight) && c->ext.eightbit)
        evbuffer_add_printf(out, " BODY=8BITMIME");
    if (job->smtputf8 && c->ext.smtputf8)
        evbuffer_add_printf(out, " SMTPUTF8");
    if (c->ext.dsn && job->ret)
        evbuffer_add_printf(out, " RET=%s", job->ret == RET_FULL ? "FULL" : "HDRS");
    if (c->ext.dsn && job->envid)
        evbuffer_add_printf(out, " ENVID=%s", job->envid);
    if (c->hop.require_tls && !c->hop.lmtp)
        evbuffer_add_printf(out, " REQUIRETLS"); /* the peer offers it (client_login_or_ready) */
    evbuffer_add(out, "\r\n", 2);
}

static void send_rcpt(struct smtp_client *c, size_t i)
{
    const struct smtp_job_rcpt *r = &c->job->rcpts[i];
    struct evbuffer *out = bufferevent_get_output(c->bev);
    char addr[ADDR_PATH_MAX + 1];
    envelope_address(c, r->addr, addr, sizeof addr);
    evbuffer_add_printf(out, "RCPT TO:<%s>", addr);
    if (c->ext.dsn && r->notify) {
        static const char *names[] = {"SUCCESS", "FAILURE", "DELAY"};
        if (r->notify & NOTIFY_NEVER) {
            evbuffer_add_printf(out, " NOTIFY=NEVER");
        } else {
            const char *sep = " NOTIFY=";
            for (int b = 0; b < 3; b++)
                if (r->notify & (1u << b)) {
                    evbuffer_add_printf(out, "%s%s", sep, names[b]);
                    sep = ",";
                }
        }
    }
    if (c->ext.dsn && r->orcpt && (c->ext.smtputf8 || is_ascii(r->orcpt))) /* RFC 6533: UTF-8 only with SMTPUTF8 */
        evbuffer_add_printf(out, " ORCPT=%s", r->orcpt);
    evbuffer_add(out, "\r\n", 2);
}

static void start_job(struct smtp_client *c)
{
    struct smtp_job *job = c->job;
    if (!c->ext.smtputf8 && needs_utf8(c, job)) {
        fill_results(job, 553, "5.6.7 the destination mail server does not support SMTPUTF8, which the "
                               "internationalized address needs");
        finish_job(c);
        return;
    }
    bool eight = mime_has_8bit(job->text, job->len);
    if (!prepare_text(c, eight))
        return;
    if (c->text != job->text)
        eight = mime_has_8bit(c->text, c->len);
    size_t size = c->ext.size_offered ? wire_size(c->text, c->len) : 0;
    if (c->ext.size_limit && size > c->ext.size_limit) {
        char diag[200];
        snprintf(diag, sizeof diag, "5.3.4 the message (%zu octets) is larger than the destination accepts (%llu)",
                 size, c->ext.size_limit);
        fill_results(job, 552, diag);
        finish_job(c);
        return;
    }
    free(c->rcpt_accepted);
    c->rcpt_accepted = calloc(job->nrcpts ? job->nrcpts : 1, sizeof *c->rcpt_accepted);
    if (!c->rcpt_accepted) {
        fill_results(job, 451, "4.3.0 out of memory");
        finish_job(c);
        return;
    }
    c->job_started = true;
    c->rcpt_i = c->accepted = c->lmtp_next = 0;
    c->mail_ok = false;
    c->state = C_MAIL;
    send_mail(c, size, eight);
    if (c->ext.pipelining) {
        for (size_t i = 0; i < job->nrcpts; i++)
            send_rcpt(c, i);
        client_send_line(c, "DATA");
    }
    client_set_timeout(c, c->cfg->smtp_command_timeout);
}

static void reply_diag(struct smtp_client *c, char *out, size_t outsz)
{
    smtp_reply_summary(&c->reply, out, outsz);
}

/* After the RCPT replies: DATA (unpipelined), or give up when nobody was accepted. */
static void after_rcpts(struct smtp_client *c)
{
    c->state = C_DATA;
    if (c->ext.pipelining)
        return; /* DATA already sent */
    if (c->accepted == 0) {
        c->need_rset = true;
        finish_job(c);
        return;
    }
    client_send_line(c, "DATA");
    client_set_timeout(c, c->cfg->smtp_data_init_timeout);
}

static void got_mail_reply(struct smtp_client *c)
{
    c->mail_ok = c->reply.code / 100 == 2;
    c->mail_code = c->reply.code;
    reply_diag(c, c->mail_diag, sizeof c->mail_diag);
    if (!c->mail_ok && !c->ext.pipelining) {
        fill_results(c->job, c->reply.code, c->mail_diag);
        c->need_rset = true;
        finish_job(c);
        return;
    }
    c->state = C_RCPT;
    if (!c->ext.pipelining)
        send_rcpt(c, 0);
}

static void got_rcpt_reply(struct smtp_client *c)
{
    struct smtp_job_rcpt *r = &c->job->rcpts[c->rcpt_i];
    if (!c->mail_ok) {
        r->code = c->mail_code;
        snprintf(r->diag, sizeof r->diag, "%s", c->mail_diag);
    } else if (c->reply.code / 100 == 2) {
        c->rcpt_accepted[c->rcpt_i] = true;
        c->accepted++;
    } else {
        /* RFC 5321 4.5.3.1.10: a 552 to RCPT is RFC 821's "too many recipients"; a client SHOULD
         * take it as temporary (452), so the recipient is tried again, not bounced. */
        r->code = c->reply.code == 552 ? 452 : c->reply.code;
        r->at_rcpt = true;
        reply_diag(c, r->diag, sizeof r->diag);
    }
    if (++c->rcpt_i < c->job->nrcpts) {
        if (!c->ext.pipelining)
            send_rcpt(c, c->rcpt_i);
        return;
    }
    after_rcpts(c);
}

/* Result for every accepted recipient: the reply to DATA or to the final dot. */
static void settle_accepted(struct smtp_client *c)
{
    char diag[600];
    reply_diag(c, diag, sizeof diag);
    for (size_t i = 0; i < c->job->nrcpts; i++)
        if (c->rcpt_accepted[i]) {
            c->job->rcpts[i].code = c->reply.code;
            snprintf(c->job->rcpts[i].diag, sizeof c->job->rcpts[i].diag, "%s", diag);
        }
}

static void got_data_reply(struct smtp_client *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (c->reply.code != 354 && c->reply.code / 100 < 4) { /* RFC 5321 4.3.2: 354 or a failure */
        char diag[400];
        snprintf(diag, sizeof diag, "4.5.0 %s answered DATA with %d instead of 354", c->host, c->reply.code);
        client_conn_failed(c, diag); /* never "delivered" without the text having been sent */
        return;
    }
    if (c->reply.code == 354 && c->mail_ok && c->accepted > 0) {
        if (smtp_wire_body(out, c->text, c->len) < 0) {
            client_conn_failed(c, "4.3.0 out of memory while sending the message");
            return;
        }
        c->state = C_BODY;
        struct timeval rd = {(time_t)c->cfg->smtp_data_done_timeout, 0}, wr = {(time_t)c->cfg->smtp_data_block_timeout, 0};
        bufferevent_set_timeouts(c->bev, &rd, &wr);
        return;
    }
    if (c->reply.code == 354) { /* pipelined DATA with no recipient: an empty message, then ignore */
        evbuffer_add(out, ".\r\n", 3);
        c->state = C_DOT_IGNORED;
        return;
    }
    if (c->accepted)
        settle_accepted(c);
    if (!c->mail_ok || c->accepted == 0)
        fill_results(c->job, c->mail_ok ? 554 : c->mail_code, c->mail_ok ? "5.5.0 no recipient accepted" : c->mail_diag);
    c->need_rset = true;
    finish_job(c);
}

/* LMTP (RFC 2033 4.2): after the data, one reply per accepted recipient, in RCPT order. Records
 * this one for the next accepted recipient; true while others are still to come. */
static bool lmtp_rcpt_reply(struct smtp_client *c)
{
    while (c->lmtp_next < c->job->nrcpts && !c->rcpt_accepted[c->lmtp_next])
        c->lmtp_next++;
    if (c->lmtp_next < c->job->nrcpts) {
        struct smtp_job_rcpt *r = &c->job->rcpts[c->lmtp_next++];
        r->code = c->reply.code;
        reply_diag(c, r->diag, sizeof r->diag);
    }
    while (c->lmtp_next < c->job->nrcpts && !c->rcpt_accepted[c->lmtp_next])
        c->lmtp_next++;
    return c->lmtp_next < c->job->nrcpts;
}

/* ---------- replies ---------- */

/* Says QUIT before the connection is dropped (RFC 5321 3.1: a server that greets with 554 waits
 * for it). Best effort: one short write, not waited for, to a socket whose output is empty by
 * now - and only in cleartext, where a raw write cannot break a TLS stream. */
static void say_quit(struct smtp_client *c)
{
    evutil_socket_t fd = c->bev && !c->tls_active ? bufferevent_getfd(c->bev) : -1;
    if (fd >= 0 && evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
        ssize_t n = send(fd, "QUIT\r\n", 6, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)n;
    }
}

/* The peer answered a set-up command with a failure: this target is no good. */
void client_peer_refused(struct smtp_client *c, const char *what)
{
    char sum[600], diag[700];
    reply_diag(c, sum, sizeof sum);
    snprintf(diag, sizeof diag, "%s refused %s: %s", c->host, what, sum);
    say_quit(c);
    client_conn_failed(c, diag);
}

/* The EHLO/HELO reply names this server itself: the mail exchanger is us (an MX record pointing
 * back here for a domain that is not local), so every hop would bring the mail back. */
static bool peer_is_this_server(const struct smtp_client *c)
{
    size_t n = strcspn(c->reply.text, " \n");
    return n == strlen(c->cfg->hostname) && strncasecmp(c->reply.text, c->cfg->hostname, n) == 0;
}

/* Fails the job for good (like Postfix's "loops back to myself") and drops the connection: no
 * other job may use it. */
static void loops_back(struct smtp_client *c)
{
    char diag[700];
    snprintf(diag, sizeof diag, "5.4.6 mail loops back to this server: the mail exchanger %s greets with this "
             "server's own name %s", c->host, c->cfg->hostname);
    log_warn("event=smtp_client_loop host=%s hostname=%s", c->host, c->cfg->hostname);
    client_give_up(c, 554, diag);
}

/* Greeting, EHLO/HELO and STARTTLS replies: get the session ready for transactions. */
static void got_setup_reply(struct smtp_client *c)
{
    bool ok = c->reply.code / 100 == 2;
    switch (c->state) {
    case C_GREETING:
        if (ok)
            client_send_ehlo(c);
        else
            client_peer_refused(c, "the connection");
        return;
    case C_EHLO:
        if (ok && !c->hop.lmtp && peer_is_this_server(c)) {
            loops_back(c);
        } else if (ok) {
            bool want_tls = (c->tls_wanted || client_tls_required(c)) && !c->tls_active &&
                            !c->hop.lmtp; /* LMTP: a local hop, as Postfix's lmtp client by default */
            if (want_tls && c->tls && c->ext.starttls && !c->tls_failed) {
                c->state = C_STARTTLS;
                client_send_line(c, "STARTTLS");
            } else if (want_tls && client_tls_required(c)) {
                char diag[400];
                const char *by = c->hop.require_tls                   ? "the sender's REQUIRETLS (RFC 8689)"
                                 : c->tlsa.status != TLSA_NONE        ? "its TLSA records (DANE)"
                                 : c->hop.mta_sts                   ? "its domain's MTA-STS policy"
                                 : c->hop.tls != TLS_POLICY_DEFAULT ? "smtp_tls_policy"
                                                                    : "smtp_tls_verify";
                if (!c->tls) /* smtp_tls was off at start: no context to speak TLS with */
                    snprintf(diag, sizeof diag, "4.7.4 %s requires TLS with %s, and this server started without a "
                             "TLS client (smtp_tls = no): restart it", by, c->host);
                else
                    snprintf(diag, sizeof diag, "4.7.4 %s does not offer STARTTLS, which %s requires", c->host, by);
                client_tls_report(c, "starttls-not-supported");
                client_conn_failed(c, diag);
            } else {
                client_login_or_ready(c);
            }
        } else if (c->reply.code / 100 == 5 && !c->hop.lmtp) {
            c->state = C_HELO; /* RFC 5321 3.2: an old server; HELO gives no extensions */
            client_send_line(c, "HELO %s", c->cfg->hostname);
        } else {
            client_peer_refused(c, c->hop.lmtp ? "LHLO" : "EHLO");
        }
        return;
    case C_HELO:
        if (ok && peer_is_this_server(c))
            loops_back(c);
        else if (ok)
            client_login_or_ready(c);
        else
            client_peer_refused(c, "HELO");
        return;
    default: /* C_STARTTLS */
        if (c->reply.code == 220)
            client_start_tls(c);
        else if (client_tls_required(c))
            client_peer_refused(c, "STARTTLS");
        else
            client_login_or_ready(c); /* offered but refused: go on in cleartext */
        return;
    }
}

/* One complete reply from the peer, for the command the state says it answers. */
static void handle_reply(struct smtp_client *c)
{
    char diag[400];
    switch (c->state) {
    case C_GREETING:
    case C_EHLO:
    case C_HELO:
    case C_STARTTLS: got_setup_reply(c); return;
    case C_AUTH:
    case C_AUTH_USER:
    case C_AUTH_PASS: client_got_auth_reply(c); return;
    case C_MAIL: got_mail_reply(c); return;
    case C_RCPT: got_rcpt_reply(c); return;
    case C_DATA: got_data_reply(c); return;
    case C_DOT_IGNORED:
        fill_results(c->job, c->mail_ok ? 554 : c->mail_code, c->mail_ok ? "5.5.0 no recipient accepted" : c->mail_diag);
        finish_job(c);
        return;
    case C_BODY:
        if (c->hop.lmtp && lmtp_rcpt_reply(c))
            return; /* more recipients' replies to come */
        if (!c->hop.lmtp)
            settle_accepted(c);
        finish_job(c);
        return;
    case C_RSET:
        c->need_rset = false;
        if (c->reply.code / 100 == 2)
            client_session_ready(c);
        else
            client_peer_refused(c, "RSET");
        return;
    case C_QUIT:
        close_connection(c);
        return;
    default:
        snprintf(diag, sizeof diag, "4.5.0 unexpected reply from %s", c->host);
        client_conn_failed(c, diag);
        return;
    }
}

void client_on_read(struct bufferevent *bev, void *arg)
{
    struct smtp_client *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    while (c->bev == bev && c->state != C_DEAD) {
        size_t eol_len = 0;
        struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_CRLF);
        char diag[400];
        if (eol.pos < 0 && evbuffer_get_length(in) + 2 <= SMTP_REPLY_LINE_MAX)
            return; /* wait for the rest of the line */
        if (eol.pos < 0 || (size_t)eol.pos + 2 > SMTP_REPLY_LINE_MAX) {
            snprintf(diag, sizeof diag, "4.5.0 %s sent a reply line longer than %d octets", c->host, SMTP_REPLY_LINE_MAX);
            client_conn_failed(c, diag);
            return;
        }
        char line[SMTP_REPLY_LINE_MAX];
        size_t len = (size_t)eol.pos;
        evbuffer_remove(in, line, len);
        evbuffer_drain(in, eol_len);
        if (c->state == C_READY || c->state == C_CONNECT || c->state == C_TLS) {
            snprintf(diag, sizeof diag, "4.5.0 %s sent an unexpected reply", c->host);
            client_conn_failed(c, diag);
            return;
        }
        enum smtp_reply_step step = smtp_reply_feed(&c->reply, line, len);
        if (step == SMTP_REPLY_BAD) {
            /* line is not NUL-terminated: print at most its len octets */
            snprintf(diag, sizeof diag, "4.5.0 %s sent a malformed reply: %.*s", c->host, (int)(len < 60 ? len : 60),
                     line);
            for (char *p = diag; *p; p++)
                if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
                    *p = '?';
            client_conn_failed(c, diag);
            return;
        }
        if (c->state == C_EHLO && c->reply.nlines > 1 && c->reply.code / 100 == 2 && len > 4)
            smtp_extension_read(&c->ext, line + 4, len - 4); /* every line has the first one's code */
        if (step == SMTP_REPLY_DONE) {
            handle_reply(c);
            smtp_reply_reset(&c->reply);
        }
    }
}

void client_on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct smtp_client *c = arg;
    char why[500];
    if (what & BEV_EVENT_CONNECTED) {
        if (c->state == C_CONNECT && client_implicit_tls(c)) {
            client_start_tls(c); /* the greeting comes over TLS */
        } else if (c->state == C_CONNECT) {
            c->state = C_GREETING;
            client_set_timeout(c, c->cfg->smtp_greeting_timeout);
        } else if (c->state == C_TLS) {
            client_tls_up(c);
        }
        return;
    }
    const char *phase = c->state == C_CONNECT ? "connecting to" : c->state == C_GREETING ? "waiting for the greeting of"
                        : c->state == C_TLS ? "in the TLS handshake with" : c->state == C_BODY ? "sending the message to"
                                                                                                : "talking to";
    if (what & BEV_EVENT_TIMEOUT)
        snprintf(why, sizeof why, "4.4.2 timeout %s %s", phase, c->host);
    else if (what & BEV_EVENT_EOF)
        snprintf(why, sizeof why, "4.4.2 %s closed the connection (%s it)", c->host, phase);
    else
        snprintf(why, sizeof why, "4.4.1 %s %s: %s", c->state == C_CONNECT ? "cannot connect to" : "connection lost",
                 c->host, evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    client_tls_failure(c, why, sizeof why);
    if (c->state == C_QUIT) {
        close_connection(c);
        return;
    }
    client_conn_failed(c, why);
}

/* ---------- the owner's calls ---------- */

bool smtp_client_usable(const struct smtp_client *c)
{
    return c->state == C_READY && c->bev;
}

bool smtp_client_no_target_worked(const struct smtp_client *c)
{
    return c->no_target_worked;
}

void smtp_client_run(struct smtp_client *c, struct smtp_job *job)
{
    c->job = job;
    c->job_started = false;
    if (c->state != C_READY) { /* the connection is gone: report at once, from the loop */
        fill_results(job, 451, *c->last_error ? c->last_error : "4.4.2 connection lost");
        finish_job(c);
        return;
    }
    if (c->need_rset) {
        c->state = C_RSET;
        client_send_line(c, "RSET");
        client_set_timeout(c, c->cfg->smtp_command_timeout);
        return;
    }
    start_job(c);
}

void smtp_client_quit(struct smtp_client *c)
{
    if (c->state != C_READY || !c->bev) {
        if (!evtimer_pending(c->close_ev, NULL))
            close_connection(c);
        return;
    }
    c->state = C_QUIT;
    client_send_line(c, "QUIT");
    client_set_timeout(c, c->cfg->smtp_command_timeout);
}

void smtp_client_free(struct smtp_client *c)
{
    dns_cancel(c->tlsa_query);
    if (c->bev)
        bufferevent_free(c->bev);
    event_free(c->close_ev);
    free(c->rcpt_accepted);
    free(c);
}
