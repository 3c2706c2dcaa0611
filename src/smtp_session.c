/* smtp_session.c - the per-connection SMTP state machine (RFC 5321, PIPELINING per RFC 2920).
 *
 * Input is consumed strictly in order from one bounded buffer: a command line, or DATA bytes after
 * 354, then command lines again. Processing pauses while a message is being committed on a disk
 * thread (the loop never waits on the disk) and while the client is not reading its replies.
 * Limits: command lines (max_command_line), message size, recipients, errors, timeouts.
 * STARTTLS and AUTH live in smtp_tls_auth.c; both share session_priv.h.
 * Never: write reply text (the catalog does), answer 250 to DATA before the commit finished,
 * or treat bytes that arrive after DATA's 354 as commands before the data ended. */
#include "smtp_session.h"
#include "session_priv.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <malloc.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "address.h"
#include "auth.h"
#include "dsn_message.h"
#include "log.h"
#include "mailbox_hold.h"
#include "commit.h"
#include "conn_count.h"
#include "dns.h"
#include "queue.h"
#include "quota.h"
#include "maildir.h"
#include "message.h"
#include "policy.h"
#include "reply.h"
#include "server.h"
#include "smtp_data.h"
#include "smtp_parse.h"
#include "sasl.h"
#include "spool.h"
#include "tls.h"
#include "workq.h"

/* ---------- replies and closing ---------- */

static bool is_protocol_error(int code)
{
    return code == 500 || code == 501 || code == 502 || code == 503 || code == 504 || code == 555;
}


/* Where a reply is formatted: the server's scratch buffer when it can go straight to the socket (a
 * plain TCP session, nothing of ours waiting to be sent, no pipelined command waiting to be
 * answered in the same write), else the bufferevent's output. Writing directly saves, per reply,
 * the two epoll_ctl calls that arm and disarm the write event and a loop iteration. */
static struct evbuffer *reply_buffer(struct session *s)
{
    struct evbuffer *out = bufferevent_get_output(s->bev);
    if (!s->srv->reply_scratch || s->tls || evbuffer_get_length(out) > 0 ||
        evbuffer_get_length(bufferevent_get_input(s->bev)) > 0 || bufferevent_getfd(s->bev) < 0)
        return out;
    return s->srv->reply_scratch;
}

/* Writes what reply_buffer gave; whatever the socket did not take (or an error) goes to the
 * bufferevent, which sends it or reports the error as usual. */
static void reply_flush(struct session *s, struct evbuffer *buf)
{
    if (buf != s->srv->reply_scratch)
        return;
    evbuffer_write(buf, bufferevent_getfd(s->bev));
    if (evbuffer_get_length(buf) > 0)
        evbuffer_add_buffer(bufferevent_get_output(s->bev), buf);
}

/* Keeps the tallies of the disconnect line: the last reply's code, and the replies to RCPT (a
 * recipient accepted or refused; a protocol error such as 503 or 501 is no recipient decision) and
 * to the message text (accepted). Every reply to a command
 * goes through reply() while that command is the last one read (a pipelined next command waits
 * for it), so the last verb tells what a reply answers. */
static void tally_reply(struct session *s, enum reply_id id)
{
    int code = reply_info(id)->code;
    s->last_code = code;
    s->srv->metrics.replies[id]++;
    if (s->last_verb == VERB_RCPT && code != 421 && !is_protocol_error(code)) {
        code / 100 == 2 ? s->rcpts_ok++ : s->rcpts_refused++;
        code / 100 == 2 ? s->rcpts_ok_run++ : code / 100 == 5 ? s->rcpts_5xx_run++ : 0;
    }
    if (id == REPLY_QUEUED) {
        s->nmessages++;
        s->rcpts_ok_run = s->rcpts_5xx_run = 0;
    }
}

/* The reply that must end the session after this one, or REPLY__COUNT (none): past max_errors protocol
 * errors, or past max_refused_recipients recipients refused since the last accepted message
 * while they outnumber those accepted - a directory harvest guesses addresses, mostly wrong; a
 * mailing list's message has a few stale ones among many good ones. */
static enum reply_id session_limit_reached(struct session *s, enum reply_id id)
{
    const struct config *cfg = s->srv->cfg;
    if (is_protocol_error(reply_info(id)->code) && ++s->errors >= cfg->max_errors) {
        log_info("event=too_many_errors session=%s client=%s errors=%u", s->id, s->peer_ip, s->errors);
        return REPLY_TOO_MANY_ERRORS;
    }
    if (cfg->max_refused_recipients && s->last_verb == VERB_RCPT && reply_info(id)->code / 100 == 5 &&
        !is_protocol_error(reply_info(id)->code) &&
        s->rcpts_5xx_run >= cfg->max_refused_recipients && s->rcpts_5xx_run > s->rcpts_ok_run) {
        log_info("event=too_many_refused_recipients session=%s client=%s refused=%u accepted=%u", s->id, s->peer_ip,
                 s->rcpts_5xx_run, s->rcpts_ok_run);
        return REPLY_TOO_MANY_REFUSED_RCPTS;
    }
    return REPLY__COUNT;
}

/* Sends one reply from the catalog; ends the session after it past a limit (session_limit_reached).
 * Nothing follows a closing reply (221, 421, ...): an answer that arrives later from a disk thread,
 * DNS or a timer - the session was closed meanwhile (timeout, shutdown) - is not sent. */
void reply(struct session *s, enum reply_id id, ...)
{
    if (s->closing || s->dead)
        return;
    struct evbuffer *buf = reply_buffer(s);
    va_list ap;
    va_start(ap, id);
    reply_vformat(buf, false, id, ap);
    va_end(ap);
    tally_reply(s, id);
    enum reply_id last = session_limit_reached(s, id);
    if (last != REPLY__COUNT) {
        s->last_code = reply_info(last)->code;
        s->srv->metrics.replies[last]++;
        reply_format(buf, false, last);
    }
    reply_flush(s, buf);
    if (last != REPLY__COUNT)
        close_after_flush(s);
}

/* Unlinks and frees the session (the connection is already gone). */
void session_free(struct session *s)
{
    struct server *srv = s->srv;
    if (s->prev)
        s->prev->next = s->next;
    else
        srv->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    message_free(s->msg);
    dns_cancel(s->dns_q);
    quota_wait_cancel(s->quota_w);
    dnsbl_free(s);
    rdns_free(s);
    spf_free(s);
    msgauth_check_free(s);
    milter_check_free(s);
    access_session_free(s);
    if (s->pending_rcpt)
        free(s->pending_rcpt->orcpt);
    free(s->pending_rcpt);
    if (s->dns_timer)
        event_free(s->dns_timer);
    if (s->greet_ev)
        event_free(s->greet_ev);
    if (s->close_ev)
        event_free(s->close_ev);
    if (s->auth_delay_ev)
        event_free(s->auth_delay_ev);
    free(s->auth_user);
    explicit_bzero(s->auth_login, sizeof s->auth_login);
    free(s->line);
    free(s);
    srv->nsessions--;
    server_session_gone(srv);
}

/* The one line per connection an administrator reads to see how it went (Postfix's "disconnect
 * from"): how long it lasted, what it did, and how it ended - QUIT, a reply of ours that closed
 * it (ended=server reply=421), or the client's doing (ended=client_closed, connection_error,
 * timeout, tls_failed) with its last command: a connection lost after RCPT or DATA is a client
 * that gave up, or a program that does not speak SMTP properly. */
static void log_disconnect(const struct session *s, const char *ended)
{
    if (!log_enabled(LOG_INFO))
        return;
    char user[300] = "", how[48];
    if (s->auth_user) {
        char safe[280];
        snprintf(user, sizeof user, " user=%s", log_safe(safe, sizeof safe, s->auth_user));
    }
    if (ended)
        snprintf(how, sizeof how, "%s after=%s", ended, s->ncommands ? smtp_verb_name(s->last_verb) : "connect");
    else if (s->last_code == 221)
        snprintf(how, sizeof how, "quit");
    else
        snprintf(how, sizeof how, "server reply=%d", s->last_code);
    log_info("event=disconnect session=%s client=%s duration=%.3fs ended=%s commands=%u messages=%u rcpts=%u/%u "
             "errors=%u%s",
             s->id, s->peer_ip, monotonic_now() - s->connected_at, how, s->ncommands, s->nmessages, s->rcpts_ok,
             s->rcpts_ok + s->rcpts_refused, s->errors, user);
}

/* Drops the connection now; the memory waits for a pending disk job. ended: why, when it is the
 * client's doing (log_disconnect); NULL when this server closed it after its last reply. */
static void session_destroy(struct session *s, const char *ended)
{
    if (s->dead)
        return;
    log_disconnect(s, s->closing ? NULL : ended);
    if (s->close_ev)
        event_del(s->close_ev);
    if (s->bev) {
        bufferevent_free(s->bev);
        s->bev = NULL;
    }
    if (s->counted) {
        s->srv->nactive--;
        conn_counts_remove(s->srv->per_ip, s->peer_ip);
    }
    s->dead = true;
    if (!s->job_pending)
        session_free(s);
}

/* Octets not yet handed to the kernel: ours, plus (after STARTTLS) the TLS records waiting in the
 * socket bufferevent under the TLS filter. */
static size_t unsent(struct session *s)
{
    struct bufferevent *under = bufferevent_get_underlying(s->bev);
    return evbuffer_get_length(bufferevent_get_output(s->bev)) +
           (under ? evbuffer_get_length(bufferevent_get_output(under)) : 0);
}

#define CLOSE_WAIT_MAX 5.0 /* seconds a closing session waits for its last reply to go out */

static void on_close_ev(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct session *s = arg;
    if (s->bev && unsent(s) > 0 && monotonic_now() < s->close_deadline) {
        struct timeval again = {0, 10000}; /* the TLS layer gives no "all sent" callback: look again */
        event_add(s->close_ev, &again);
        return;
    }
    session_destroy(s, NULL);
}

/* Stops reading and closes once the replies are sent. Never frees s before returning: callers
 * (and their callers) may still look at it; the close runs from the loop. */
void close_after_flush(struct session *s)
{
    s->closing = true;
    s->close_deadline = monotonic_now() + CLOSE_WAIT_MAX;
    bufferevent_disable(s->bev, EV_READ);
    if (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0) {
        event_active(s->close_ev, EV_TIMEOUT, 1);
    } else { /* on_write closes once it is sent; this closes when it never can be (a stuck TLS layer) */
        struct timeval most = {(time_t)CLOSE_WAIT_MAX, 0};
        event_add(s->close_ev, &most);
    }
}

/* ---------- transaction ---------- */

#define TRIM_AFTER ((size_t)1 << 20) /* after freeing a message this big, hand memory back to the OS */

void reset_transaction(struct session *s)
{
    bool big = s->msg && evbuffer_get_length(s->msg->body) >= TRIM_AFTER;
    message_free(s->msg);
    s->msg = NULL;
    s->bdat_open = false; /* a chunk being dropped (bdat_left) still is */
    if (big)
        malloc_trim(0);
    if (s->state != ST_FRESH)
        s->state = ST_READY;
}

void set_timeouts(struct session *s)
{
    const struct config *cfg = s->srv->cfg;
    struct timeval rd = {s->state == ST_DATA ? cfg->data_timeout : cfg->command_timeout, 0};
    struct timeval wr = {cfg->command_timeout, 0};
    bufferevent_set_timeouts(s->bev, &rd, &wr);
}

/* Where next_data puts the message bytes of one input chunk: space reserved in the body buffer
 * once per chunk (what comes out is never more than what goes in), filled line by line - one
 * reservation instead of an evbuffer_add per line. */
struct body_space {
    struct evbuffer_iovec vec;
    size_t used;
};

static void body_sink(void *ctx, const char *bytes, size_t n)
{
    struct body_space *b = ctx;
    memcpy((char *)b->vec.iov_base + b->used, bytes, n);
    b->used += n;
}

static void cmd_helo(struct session *s, const struct smtp_command *c)
{
    if (c->arg_len == 0) {
        reply(s, REPLY_HELO_NEEDS_DOMAIN, c->verb == VERB_EHLO ? "EHLO" : "HELO");
        return;
    }
    if (!smtp_helo_arg_valid(c->arg, c->arg_len)) {
        reply(s, REPLY_SYNTAX_ARGS);
        return;
    }
    reset_transaction(s);
    s->state = ST_READY;
    s->esmtp = c->verb == VERB_EHLO;
    memcpy(s->helo, c->arg, c->arg_len);
    s->helo[c->arg_len] = '\0';
    spf_helo_forget(s);
    helo_access_check(s);
    const char *host = s->srv->cfg->hostname;
    if (!s->esmtp) {
        reply(s, REPLY_HELO_OK, host, s->helo, s->peer_ip);
        return;
    }
    struct evbuffer *out = reply_buffer(s);
    char size[32];
    snprintf(size, sizeof size, "SIZE %zu", s->srv->cfg->max_message_size);
    const char *keywords[10] = {"PIPELINING", size, "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8", "DSN", "CHUNKING"};
    size_t n = 7;
    if (s->srv->tls_ctx && !s->tls)
        keywords[n++] = "STARTTLS";
    if (s->tls && s->srv->cfg->requiretls) /* RFC 8689 4: only where the mail came over TLS */
        keywords[n++] = "REQUIRETLS";
    if (auth_offered(s) && !s->auth_user)
        keywords[n++] = "AUTH PLAIN LOGIN";
    reply_format(out, true, REPLY_EHLO_FIRST, host, s->helo, s->peer_ip);
    s->srv->metrics.replies[REPLY_EHLO_FIRST]++;
    for (size_t i = 0; i < n; i++)
        reply_format(out, i + 1 < n, REPLY_EHLO_KEYWORD, keywords[i]);
    reply_flush(s, out);
}

void data_begin(struct session *s, bool chunked)
{
    if (chunked)
        data_reader_init_chunked(&s->data, s->srv->cfg->max_message_size);
    else
        data_reader_init(&s->data, s->srv->cfg->max_message_size);
    s->data_started = monotonic_now();
    s->data_bytes = 0;
}

static void cmd_data(struct session *s, const struct smtp_command *c)
{
    if (c->arg_len) {
        reply(s, REPLY_SYNTAX_ARGS);
        return;
    }
    if (s->state == ST_MAIL) {
        reply(s, REPLY_NO_VALID_RCPTS);
        return;
    }
    data_begin(s, false);
    s->state = ST_DATA;
    set_timeouts(s);
    reply(s, REPLY_START_DATA);
}

static void cmd_rset(struct session *s, const struct smtp_command *c)
{
    if (c->arg_len) {
        reply(s, REPLY_SYNTAX_ARGS);
        return;
    }
    reset_transaction(s);
    reply(s, REPLY_OK);
}

static void cmd_noop(struct session *s, const struct smtp_command *c)
{
    (void)c;
    reply(s, REPLY_OK);
}

static void cmd_quit(struct session *s, const struct smtp_command *c)
{
    if (c->arg_len) {
        reply(s, REPLY_SYNTAX_ARGS);
        return;
    }
    reply(s, REPLY_BYE);
    close_after_flush(s);
}

static void cmd_vrfy(struct session *s, const struct smtp_command *c)
{
    reply(s, c->arg_len ? REPLY_VRFY_CANNOT : REPLY_SYNTAX_ARGS);
}

/* HELP lists the commands this session may use: STARTTLS and AUTH only where EHLO offers them. */
static void cmd_help(struct session *s, const struct smtp_command *c)
{
    (void)c;
    bool tls = s->srv->tls_ctx && !s->tls, auth = auth_offered(s) && !s->auth_user;
    reply(s, REPLY_HELP, tls && auth ? " STARTTLS AUTH" : tls ? " STARTTLS" : auth ? " AUTH" : "");
}

static void cmd_not_implemented(struct session *s, const struct smtp_command *c)
{
    (void)c;
    reply(s, REPLY_NOT_IMPLEMENTED);
}

/* ---------- the session's bufferevent ---------- */

static void on_read(struct bufferevent *bev, void *arg);
static void on_write(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);

/* Callbacks, watermarks and timeouts for the session's (new) bufferevent. */
void setup_bev(struct session *s)
{
    bufferevent_setcb(s->bev, on_read, on_write, on_event, s);
    bufferevent_setwatermark(s->bev, EV_READ, 0, INPUT_HIGH);
    bufferevent_setwatermark(s->bev, EV_WRITE, OUTPUT_LOW, 0);
    set_timeouts(s);
    bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}

#define IN(st) (1u << (st))
#define ANY (IN(ST_FRESH) | IN(ST_READY) | IN(ST_MAIL) | IN(ST_RCPT))

/* The command table: which states allow each verb, and what runs it. */
static const struct {
    enum smtp_verb verb;
    unsigned states;
    void (*run)(struct session *s, const struct smtp_command *c);
} commands[] = {
    {VERB_EHLO, ANY, cmd_helo},
    {VERB_HELO, ANY, cmd_helo},
    {VERB_MAIL, IN(ST_READY) | IN(ST_MAIL) | IN(ST_RCPT), cmd_mail},
    {VERB_RCPT, IN(ST_MAIL) | IN(ST_RCPT), cmd_rcpt},
    {VERB_DATA, IN(ST_MAIL) | IN(ST_RCPT), cmd_data},
    {VERB_RSET, ANY, cmd_rset},
    {VERB_NOOP, ANY, cmd_noop},
    {VERB_QUIT, ANY, cmd_quit},
    {VERB_VRFY, ANY, cmd_vrfy},
    {VERB_HELP, ANY, cmd_help},
    {VERB_EXPN, ANY, cmd_not_implemented},
    {VERB_TURN, ANY, cmd_not_implemented},
    {VERB_ETRN, ANY, cmd_not_implemented},
    {VERB_STARTTLS, ANY, cmd_starttls},
    {VERB_AUTH, IN(ST_READY) | IN(ST_MAIL) | IN(ST_RCPT), cmd_auth},
};

/* The reply to a command that is known but out of order: says what should come first where that
 * is plain (the usual client mistakes), else the generic 503. */
static enum reply_id sequence_error(const struct session *s, enum smtp_verb v)
{
    bool transaction = v == VERB_MAIL || v == VERB_RCPT || v == VERB_DATA;
    if (transaction && s->state == ST_FRESH)
        return REPLY_NEED_EHLO;
    if ((v == VERB_RCPT || v == VERB_DATA) && s->state == ST_READY)
        return REPLY_NEED_MAIL;
    return REPLY_BAD_SEQUENCE;
}

/* Dispatches one complete command line. */
static void run_command(struct session *s, const char *line, size_t len)
{
    struct smtp_command c;
    smtp_parse_command(line, len, &c);
    s->ncommands++;
    s->last_verb = c.verb;
    if (c.verb == VERB_FOREIGN) {
        log_info("event=foreign_protocol session=%s client=%s", s->id, s->peer_ip);
        reply(s, REPLY_FOREIGN_PROTOCOL);
        close_after_flush(s);
        return;
    }
    if (c.verb == VERB_BDAT) { /* its chunk follows whatever the reply: cmd_bdat reads or drops it */
        cmd_bdat(s, &c);
        return;
    }
    if (bdat_refuses(s, c.verb))
        return;
    if (!s->srv->cfg->accept_mail && c.verb != VERB_QUIT) { /* RFC 7504 */
        reply(s, REPLY_HOST_NO_MAIL);
        return;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (commands[i].verb != c.verb)
            continue;
        if (!(commands[i].states & IN(s->state)))
            reply(s, sequence_error(s, c.verb));
        else
            commands[i].run(s, &c);
        return;
    }
    reply(s, REPLY_UNKNOWN_COMMAND);
}

/* ---------- input ---------- */


/* MAIL FROM / RCPT TO: the commands whose limit their parameters raise (DSN, AUTH). */
static bool dsn_sized_command(const char *line, size_t len)
{
    return len > 5 && (strncasecmp(line, "MAIL ", 5) == 0 || strncasecmp(line, "RCPT ", 5) == 0);
}

static bool next_command(struct session *s, struct evbuffer *in)
{
    bool auth = auth_line_pending(s, in);
    char auth_buf[AUTH_LINE_MAX + 1];
    char *line = auth ? auth_buf : s->line;
    /* MAIL and RCPT may be longer by their parameters (RFC 3461 5: ENVID 100, ORCPT 500; RFC 4954
     * 3: AUTH 500). 500 more than max_command_line holds them all: what else a MAIL line can
     * carry (a 256-octet path, SIZE, BODY, SMTPUTF8, RET) takes under 400 of its 512. */
    size_t eol_len = 0, max = auth ? AUTH_LINE_MAX : s->srv->cfg->max_command_line + DSN_ORCPT_MAX;
    struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_CRLF);
    if (eol.pos < 0) {
        size_t have = evbuffer_get_length(in);
        if (have + 2 > max) { /* already too long: drop it, stay in sync with the next line */
            evbuffer_drain(in, have);
            s->skipping = true;
        }
        return false;
    }
    size_t len = (size_t)eol.pos;
    if (s->skipping || len + 2 > max) {
        evbuffer_drain(in, len + eol_len);
        s->skipping = false;
        s->command_started = monotonic_now();
        if (s->auth_step != AUTH_NONE) {
            s->auth_step = AUTH_NONE;
            explicit_bzero(s->auth_login, sizeof s->auth_login);
        }
        reply(s, auth ? REPLY_AUTH_LINE_TOO_LONG : REPLY_LINE_TOO_LONG);
        return true;
    }
    if (!auth && len + 1 > s->line_cap) { /* a DSN-sized MAIL/RCPT: grow the buffer once */
        char *bigger = realloc(s->line, max + 1);
        if (!bigger) {
            evbuffer_drain(in, len + eol_len);
            reply(s, REPLY_LOCAL_ERROR);
            return true;
        }
        s->line = line = bigger;
        s->line_cap = max + 1;
    }
    evbuffer_remove(in, line, len);
    evbuffer_drain(in, eol_len);
    line[len] = '\0';
    s->command_started = monotonic_now();
    if (!auth && len + 2 > s->srv->cfg->max_command_line && !dsn_sized_command(line, len))
        reply(s, REPLY_LINE_TOO_LONG);
    else if (memchr(line, '\0', len))
        reply(s, REPLY_NUL_IN_COMMAND);
    else if (s->auth_step != AUTH_NONE)
        auth_response(s, line, len);
    else
        run_command(s, line, len);
    if (auth)
        explicit_bzero(auth_buf, len + 1); /* it may hold a password */
    return true;
}

/* Feeds buffered DATA bytes (or the current BDAT chunk's) to the body reader; false when the
 * buffer is empty. */
static bool next_data(struct session *s, struct evbuffer *in)
{
    struct evbuffer_iovec v;
    if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
        return false;
    bool done;
    if (s->bdat_open && v.iov_len > s->bdat_left)
        v.iov_len = (size_t)s->bdat_left; /* the rest is commands again */
    struct body_space out = {.used = 0};
    bool reserved = s->data.flags == 0 && evbuffer_reserve_space(s->msg->body, (ev_ssize_t)v.iov_len, &out.vec, 1) == 1;
    if (s->data.flags == 0 && !reserved)
        s->data.flags |= DATA_NO_MEMORY; /* the message fails at its end, not stored without these bytes */
    size_t used = data_reader_feed(&s->data, v.iov_base, v.iov_len, body_sink, &out, &done);
    if (reserved) {
        out.vec.iov_len = out.used;
        evbuffer_commit_space(s->msg->body, &out.vec, 1);
    }
    evbuffer_drain(in, used);
    s->data_bytes += used;
    if (s->bdat_open) {
        s->bdat_left -= used;
        if (s->bdat_left == 0)
            bdat_chunk_end(s);
    } else if (done) {
        finish_data(s);
    }
    return true;
}

/* Ends the session when a command trickles in for longer than command_timeout (the read timeout
 * alone never fires for a client sending one byte a second), or DATA arrives below min_data_rate. */
static void check_slow_client(struct session *s, struct evbuffer *in)
{
    const struct config *cfg = s->srv->cfg;
    double now = monotonic_now();
    enum reply_id why;
    if (s->state == ST_DATA) {
        double elapsed = now - s->data_started;
        if (!cfg->min_data_rate || elapsed < cfg->data_rate_grace || (double)s->data_bytes >= elapsed * cfg->min_data_rate)
            return;
        why = REPLY_DATA_TOO_SLOW;
    } else if (s->state != ST_COMMIT && (evbuffer_get_length(in) > 0 || s->skipping || s->bdat_left) &&
               now - s->command_started > cfg->command_timeout) { /* bdat_left: a refused chunk, dropped */
        why = REPLY_TIMEOUT;
    } else {
        return;
    }
    log_info("event=slow_client session=%s client=%s state=%d", s->id, s->peer_ip, s->state);
    if (s->state != ST_COMMIT)
        reset_transaction(s);
    reply(s, why);
    close_after_flush(s);
}

/* Works through buffered input in order until it runs out or the session must wait. */
void process_input(struct session *s)
{
    while (!s->closing && s->state != ST_COMMIT && !s->auth_pending && !s->dns_pending && !dnsbl_waiting(s) &&
           !rdns_waiting(s)) {
        struct evbuffer *in = bufferevent_get_input(s->bev); /* STARTTLS replaces the bufferevent */
        if (s->srv->shutting_down && (s->state == ST_FRESH || s->state == ST_READY)) {
            reply(s, REPLY_SHUTDOWN);
            close_after_flush(s);
            return;
        }
        if (evbuffer_get_length(bufferevent_get_output(s->bev)) > OUTPUT_HIGH) {
            s->output_paused = true;
            return;
        }
        bool more = s->state == ST_DATA ? next_data(s, in) : s->bdat_left ? bdat_drop(s, in) : next_command(s, in);
        if (!more) {
            check_slow_client(s, bufferevent_get_input(s->bev));
            return;
        }
    }
}


static void on_read(struct bufferevent *bev, void *arg)
{
    struct session *s = arg;
    note_tls(s);
    if (s->greeting_pending) { /* RFC 5321 4.3.1: the client waits for the greeting */
        s->greeting_pending = false;
        event_del(s->greet_ev);
        log_info("event=early_talker session=%s client=%s", s->id, s->peer_ip);
        evbuffer_drain(bufferevent_get_input(bev), evbuffer_get_length(bufferevent_get_input(bev)));
        reply(s, REPLY_EARLY_TALKER);
        close_after_flush(s);
        return;
    }
    process_input(s);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    struct session *s = arg;
    if (s->closing) {
        if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
            event_active(s->close_ev, EV_TIMEOUT, 1);
        return;
    }
    if (s->output_paused && evbuffer_get_length(bufferevent_get_output(bev)) <= OUTPUT_LOW) {
        s->output_paused = false;
        process_input(s);
    }
}

/* What the client was expected to do when it went quiet, for the timeout's log line: read our
 * replies (a write timeout), or send the next command or the message text. */
static const char *awaited(const struct session *s, short what)
{
    static const char *const names[] = {
        [ST_FRESH] = "EHLO", [ST_READY] = "MAIL", [ST_MAIL] = "RCPT",
        [ST_RCPT] = "DATA", [ST_DATA] = "message_text", [ST_COMMIT] = "reading_replies",
    };
    if (what & BEV_EVENT_WRITING)
        return "reading_replies";
    return s->auth_step != AUTH_NONE ? "AUTH_response" : names[s->state];
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct session *s = arg;
    if (what & BEV_EVENT_CONNECTED) { /* the TLS handshake finished */
        note_tls(s);
        return;
    }
    if ((what & BEV_EVENT_ERROR) && s->tls && !s->tls_info[0]) {
        char why[256];
        unsigned long e = bufferevent_get_openssl_error(bev);
        if (e)
            ERR_error_string_n(e, why, sizeof why);
        else
            snprintf(why, sizeof why, "connection closed during handshake");
        log_info("event=tls_failed session=%s client=%s error=\"%s\"", s->id, s->peer_ip, why);
        session_destroy(s, "tls_failed");
        return;
    }
    if ((what & BEV_EVENT_TIMEOUT) && (what & BEV_EVENT_READING) && s->state == ST_COMMIT && !s->closing) {
        bufferevent_enable(s->bev, EV_READ); /* the wait is ours (the disk), not the client's */
        return;
    }
    if ((what & BEV_EVENT_TIMEOUT) && !s->closing && s->tls && !s->tls_info[0]) {
        /* no reply can go out before the handshake ends: close at once */
        log_info("event=tls_failed session=%s client=%s error=\"handshake not finished in %us (command_timeout)\"",
                 s->id, s->peer_ip, s->srv->cfg->command_timeout);
        session_destroy(s, "tls_failed");
        return;
    }
    if ((what & BEV_EVENT_TIMEOUT) && !s->closing) {
        log_info("event=timeout session=%s client=%s waiting_for=%s", s->id, s->peer_ip, awaited(s, what));
        if (s->state != ST_COMMIT)
            reset_transaction(s);
        if (what & BEV_EVENT_WRITING) { /* a client that reads nothing cannot get a 421 either */
            session_destroy(s, "timeout");
            return;
        }
        reply(s, REPLY_TIMEOUT);
        close_after_flush(s);
        return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
        note_tls(s); /* a handshake may finish in the same read as the client's close */
        if (s->state == ST_DATA)
            log_info("event=lost_during_data session=%s client=%s", s->id, s->peer_ip);
        session_destroy(s, what & BEV_EVENT_EOF ? "client_closed" : "connection_error");
    }
}

/* ---------- start and shutdown ---------- */

/* The client's address as text (no port), for the log and the Received field. */
static void peer_text(const struct sockaddr *sa, char *out, size_t outsz)
{
    const void *a = sa->sa_family == AF_INET6 ? (const void *)&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr
                                              : (const void *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr;
    if (!inet_ntop(sa->sa_family, a, out, (socklen_t)outsz))
        snprintf(out, outsz, "unknown");
}

/* The 220 (or RFC 7504 521) greeting; the command clock starts with it. */
static void send_greeting(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct session *s = arg;
    const struct config *cfg = s->srv->cfg;
    s->greeting_pending = false;
    s->command_started = monotonic_now();
    if (!cfg->accept_mail)
        reply(s, REPLY_HOST_NO_MAIL_GREETING, cfg->hostname);
    else
        reply(s, REPLY_GREETING, cfg->hostname);
    if (s->srv->shutting_down) {
        reply(s, REPLY_SHUTDOWN);
        close_after_flush(s);
    }
}

/* Arms greet_delay's timer (RFC 5321 4.3.1: a client that talks first is refused); false when it
 * cannot be armed - the greeting then goes at once. */
static bool delay_greeting(struct session *s)
{
    struct timeval delay = {s->srv->cfg->greet_delay, 0};
    if (!(s->greet_ev = evtimer_new(s->srv->base, send_greeting, s)) || evtimer_add(s->greet_ev, &delay) < 0)
        return false;
    s->greeting_pending = true;
    return true;
}

void session_start(struct server *srv, evutil_socket_t fd, const struct sockaddr *peer, int peerlen,
                   enum listen_role role)
{
    struct bufferevent *bev;
    if (role == ROLE_SMTPS) { /* RFC 8314: TLS from the first byte */
        SSL *ssl = SSL_new(srv->tls_ctx);
        bev = ssl ? bufferevent_openssl_socket_new(srv->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE)
                  : NULL;
        if (!bev && ssl)
            SSL_free(ssl);
    } else {
        bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
    }
    if (!bev) {
        log_error("event=accept_failed error=out_of_memory");
        evutil_closesocket(fd);
        return;
    }
    session_attach(srv, bev, peer, peerlen, role);
}

/* max_connection_rate_per_ip: for the MX role's clients, relay_networks excepted. */
static bool over_connection_rate(struct session *s)
{
    unsigned limit = s->srv->cfg->max_connection_rate_per_ip;
    return limit && s->role == ROLE_MX && !s->may_relay &&
           !conn_rate_allow(s->srv->per_ip, s->peer_ip, limit, monotonic_now());
}

void session_attach(struct server *srv, struct bufferevent *bev, const struct sockaddr *peer, int peerlen,
                    enum listen_role role)
{
    static unsigned long next_id;
    struct session *s = calloc(1, sizeof *s);
    const struct config *cfg = srv->cfg;
    if (!s || !(s->line = malloc(cfg->max_command_line + 1))) {
        log_error("event=accept_failed error=out_of_memory");
        if (s)
            free(s->line);
        free(s);
        bufferevent_free(bev);
        return;
    }
    s->line_cap = cfg->max_command_line + 1;
    s->bev = bev;
    s->close_ev = event_new(srv->base, -1, 0, on_close_ev, s);
    if (!s->close_ev) {
        log_error("event=accept_failed error=out_of_memory");
        bufferevent_free(bev);
        free(s->line);
        free(s);
        return;
    }
    s->srv = srv;
    s->connected_at = monotonic_now();
    s->role = role;
    s->tls = role == ROLE_SMTPS;
    snprintf(s->id, sizeof s->id, "%lX", ++next_id);
    memcpy(&s->peer, peer, (size_t)peerlen < sizeof s->peer ? (size_t)peerlen : sizeof s->peer);
    peer_text(peer, s->peer_ip, sizeof s->peer_ip);
    s->may_relay = policy_may_relay(srv->policy, peer);
    client_access_start(s);
    s->next = srv->sessions;
    if (srv->sessions)
        srv->sessions->prev = s;
    srv->sessions = s;
    srv->nsessions++;
    setup_bev(s);

    if (over_connection_rate(s)) {
        log_info("event=connection_refused session=%s client=%s reason=rate per_minute=%u", s->id, s->peer_ip,
                 cfg->max_connection_rate_per_ip);
        reply(s, REPLY_CONNECTION_RATE);
        close_after_flush(s);
        return;
    }
    unsigned total = srv->nactive;
    if (total >= cfg->max_connections || !conn_counts_add(srv->per_ip, s->peer_ip, cfg->max_connections_per_ip)) {
        log_info("event=connection_refused session=%s client=%s reason=limit total=%u", s->id, s->peer_ip, total);
        reply(s, REPLY_TOO_MANY_CONNECTIONS);
        close_after_flush(s);
        return;
    }
    s->counted = true;
    srv->nactive++;
    srv->metrics.connections[role]++;
    log_info("event=connect session=%s client=%s", s->id, s->peer_ip);
    dnsbl_start(s);
    rdns_start(s);
    if (!(cfg->greet_delay && !s->may_relay && !client_permitted(s) && role == ROLE_MX && delay_greeting(s)))
        send_greeting(-1, 0, s);
}

void session_shutdown_all(struct server *srv, bool force)
{
    struct session *next;
    for (struct session *s = srv->sessions; s; s = next) {
        next = s->next; /* s may be freed below */
        if (s->dead || s->closing || s->state == ST_COMMIT)
            continue;
        if (s->greeting_pending) {
            s->greeting_pending = false;
            event_del(s->greet_ev);
        }
        if (force || s->state == ST_FRESH || s->state == ST_READY) {
            if (s->state != ST_FRESH && s->state != ST_READY)
                log_info("event=shutdown_abort session=%s client=%s", s->id, s->peer_ip);
            reply(s, REPLY_SHUTDOWN);
            close_after_flush(s);
        }
    }
}
