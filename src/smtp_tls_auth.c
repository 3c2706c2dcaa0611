/* smtp_tls_auth.c - STARTTLS (RFC 3207) and AUTH (RFC 4954; PLAIN RFC 4616, LOGIN) for a session.
 * Never lets clear-text input pipelined before the handshake through, never logs a password, and
 * never checks one on the event loop (crypt(3) runs on a disk thread). */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth.h"
#include "config.h"
#include "log.h"
#include "server.h"
#include "session_priv.h"
#include "tls.h"
#include "workq.h"

/* AUTH is offered over TLS, when there are users, on submission ports (or MX with mx_auth). */
bool auth_offered(const struct session *s)
{
    return s->tls && auth_users_present(s->srv->users) && (s->role != ROLE_MX || s->srv->cfg->mx_auth);
}

/* True when the buffered line is an AUTH command (whose initial response may exceed 512). */
bool auth_line_pending(struct session *s, struct evbuffer *in)
{
    char head[5];
    if (s->auth_step != AUTH_NONE)
        return true;
    return evbuffer_copyout(in, head, 5) == 5 && strncasecmp(head, "AUTH ", 5) == 0;
}

/* Records the TLS version and cipher once the handshake is done. Called on the CONNECTED event
 * and on the first data: the client's first command can arrive before libevent reports CONNECTED. */
void note_tls(struct session *s)
{
    SSL *ssl = s->tls ? bufferevent_openssl_get_ssl(s->bev) : NULL;
    if (!ssl || s->tls_info[0] || !SSL_is_init_finished(ssl))
        return;
    tls_describe(ssl, s->tls_info, sizeof s->tls_info);
    log_info("event=tls session=%s client=%s tls=%s", s->id, s->peer_ip, s->tls_info);
}

/* ---------- STARTTLS (RFC 3207) ---------- */

void cmd_starttls(struct session *s, const struct smtp_command *c)
{
    if (!s->srv->tls_ctx) {
        reply(s, REPLY_NOT_IMPLEMENTED);
        return;
    }
    if (s->tls) {
        reply(s, REPLY_BAD_SEQUENCE);
        return;
    }
    if (c->arg_len) {
        reply(s, REPLY_SYNTAX_ARGS);
        return;
    }
    SSL *ssl = SSL_new(s->srv->tls_ctx);
    if (!ssl) {
        reply(s, REPLY_LOCAL_ERROR);
        return;
    }
    reply(s, REPLY_READY_TLS);
    /* CVE-2011-0411: whatever the client pipelined after STARTTLS came in clear text and must not
     * count as sent over TLS. No handshake byte can be here yet: our 220 is still unsent. */
    struct evbuffer *in = bufferevent_get_input(s->bev);
    size_t dropped = evbuffer_get_length(in);
    evbuffer_drain(in, dropped);
    if (dropped)
        log_info("event=starttls_injection_dropped session=%s client=%s octets=%zu", s->id, s->peer_ip, dropped);
    struct bufferevent *tls_bev =
        bufferevent_openssl_filter_new(s->srv->base, s->bev, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
    if (!tls_bev) {
        SSL_free(ssl);
        close_after_flush(s);
        return;
    }
    s->bev = tls_bev;
    s->tls = true;
    reset_transaction(s); /* RFC 3207 4.2: back to the state before EHLO */
    s->state = ST_FRESH;
    s->esmtp = false;
    s->helo[0] = '\0';
    setup_bev(s);
}

/* ---------- AUTH (RFC 4954; PLAIN RFC 4616, LOGIN) ---------- */

struct auth_job {
    struct session *s;
    char login[SASL_FIELD_MAX + 1];
    char password[SASL_FIELD_MAX + 1];
    char hash[512];  /* the login's crypt hash, copied on the loop thread (auth_user_hash) */
    bool known;
    bool ok;
};

/* Disk thread: the deliberately slow crypt(3) check. */
static void auth_work(void *arg)
{
    struct auth_job *j = arg;
    j->ok = auth_verify_hash(j->hash, j->password) && j->known;
    explicit_bzero(j->password, sizeof j->password);
}

static void auth_delay_over(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct session *s = arg;
    s->auth_pending = false;
    reply(s, REPLY_AUTH_FAILED);
    if (auth_failures(s->peer_ip, monotonic_now()) >= s->srv->cfg->max_auth_failures) {
        reply(s, REPLY_AUTH_TOO_MANY_FAILURES);
        close_after_flush(s);
        return;
    }
    process_input(s);
}

/* Loop thread: the check finished. Success answers at once; failure after a growing delay. */
static void auth_done(void *arg)
{
    struct auth_job *j = arg;
    struct session *s = j->s;
    s->job_pending = false;
    if (s->dead) {
        free(j);
        session_free(s);
        return;
    }
    char user[300];
    log_safe(user, sizeof user, j->login);
    if (j->ok) {
        s->auth_user = strdup(j->login);
        s->auth_pending = false;
        log_info("event=auth_ok session=%s client=%s user=%s", s->id, s->peer_ip, user);
        reply(s, s->auth_user ? REPLY_AUTH_OK : REPLY_LOCAL_ERROR);
        free(j);
        process_input(s);
        return;
    }
    unsigned n = auth_failure_add(s->peer_ip, monotonic_now());
    log_info("event=auth_failed session=%s client=%s user=%s failures=%u", s->id, s->peer_ip, user, n);
    free(j);
    long ms = (long)n * s->srv->cfg->auth_failure_delay;
    struct timeval delay = {ms / 1000, (ms % 1000) * 1000L};
    if (!s->auth_delay_ev)
        s->auth_delay_ev = evtimer_new(s->srv->base, auth_delay_over, s);
    if (!s->auth_delay_ev)
        auth_delay_over(-1, 0, s);
    else
        evtimer_add(s->auth_delay_ev, &delay);
}

/* Hands login/password to a disk thread; input waits until the answer is sent. */
static void start_auth_check(struct session *s, const char *login, const char *password)
{
    struct auth_job *j = calloc(1, sizeof *j);
    s->auth_step = AUTH_NONE;
    if (!j) {
        explicit_bzero(s->auth_login, sizeof s->auth_login);
        reply(s, REPLY_LOCAL_ERROR);
        return;
    }
    j->s = s;
    snprintf(j->login, sizeof j->login, "%s", login);
    snprintf(j->password, sizeof j->password, "%s", password);
    j->known = auth_user_hash(s->srv->users, j->login, j->hash, sizeof j->hash);
    explicit_bzero(s->auth_login, sizeof s->auth_login);
    s->auth_pending = true;
    s->job_pending = true;
    workq_submit(s->srv->disk, auth_work, auth_done, j);
}

static void auth_end(struct session *s, enum reply_id id)
{
    s->auth_step = AUTH_NONE;
    explicit_bzero(s->auth_login, sizeof s->auth_login);
    reply(s, id);
}

/* One client response line of the exchange (or an initial response). */
void auth_response(struct session *s, const char *b64, size_t len)
{
    if (len == 1 && b64[0] == '*') {
        auth_end(s, REPLY_AUTH_CANCELLED);
        return;
    }
    if (s->auth_step == AUTH_PLAIN) {
        struct sasl_credentials cred;
        if (sasl_decode_plain(b64, len, &cred) != SASL_OK) {
            auth_end(s, REPLY_AUTH_BAD_RESPONSE);
            return;
        }
        /* acting for another identity (authzid) is not supported: it must be empty or the same */
        bool proxy = *cred.authzid && strcasecmp(cred.authzid, cred.authcid) != 0;
        start_auth_check(s, cred.authcid, proxy ? "" : cred.password);
        sasl_wipe(&cred);
    } else if (s->auth_step == AUTH_LOGIN_USER) {
        if (sasl_decode_login(b64, len, s->auth_login, sizeof s->auth_login) != SASL_OK) {
            auth_end(s, REPLY_AUTH_BAD_RESPONSE);
            return;
        }
        s->auth_step = AUTH_LOGIN_PASS;
        reply(s, REPLY_AUTH_CHALLENGE, "UGFzc3dvcmQ6"); /* "Password:" */
    } else {
        char password[SASL_FIELD_MAX + 1];
        if (sasl_decode_login(b64, len, password, sizeof password) != SASL_OK) {
            auth_end(s, REPLY_AUTH_BAD_RESPONSE);
            return;
        }
        start_auth_check(s, s->auth_login, password);
        explicit_bzero(password, sizeof password);
    }
}

/* The first refusal that applies to AUTH here, or REPLY__COUNT when AUTH may go ahead. */
static enum reply_id auth_refusal(const struct session *s)
{
    if (s->role == ROLE_SUBMISSION && !s->tls)
        return REPLY_TLS_REQUIRED;
    if ((s->role == ROLE_MX && !s->srv->cfg->mx_auth) || !auth_users_present(s->srv->users))
        return REPLY_AUTH_NOT_ENABLED;
    if (!s->tls)
        return REPLY_AUTH_NEEDS_TLS;
    if (s->auth_user)
        return REPLY_AUTH_ALREADY;
    if (s->state != ST_READY)
        return REPLY_AUTH_IN_TRANSACTION;
    return REPLY__COUNT;
}

void cmd_auth(struct session *s, const struct smtp_command *c)
{
    enum reply_id refuse = auth_refusal(s);
    if (refuse != REPLY__COUNT) {
        reply(s, refuse);
        return;
    }
    if (auth_failures(s->peer_ip, monotonic_now()) >= s->srv->cfg->max_auth_failures) {
        reply(s, REPLY_AUTH_TOO_MANY_FAILURES);
        close_after_flush(s);
        return;
    }
    size_t mlen = strcspn(c->arg, " ");
    const char *init = c->arg + mlen;
    while (*init == ' ')
        init++;
    size_t ilen = strlen(init);
    bool plain = mlen == 5 && strncasecmp(c->arg, "PLAIN", 5) == 0;
    bool login = mlen == 5 && strncasecmp(c->arg, "LOGIN", 5) == 0;
    if (!plain && !login) {
        reply(s, REPLY_AUTH_UNKNOWN_MECH);
        return;
    }
    s->auth_step = plain ? AUTH_PLAIN : AUTH_LOGIN_USER;
    if (ilen)
        auth_response(s, init, ilen);
    else
        reply(s, REPLY_AUTH_CHALLENGE, plain ? "" : "VXNlcm5hbWU6"); /* "Username:" */
}
