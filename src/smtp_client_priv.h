/* smtp_client_priv.h - what the outbound client's files share (smtp_client.c: the conversation and
 * the transaction; smtp_client_tls.c: TLS, DANE and AUTH to the relay host). Not for other modules. */
#ifndef POSTERN_SMTP_CLIENT_PRIV_H
#define POSTERN_SMTP_CLIENT_PRIV_H

#include <stdbool.h>
#include <stddef.h>

#include "dns.h"
#include "next_hop.h"
#include "smtp_client.h"
#include "smtp_ext.h"
#include "smtp_reply.h"

struct bufferevent;
struct evbuffer;

/* The conversation's states; C_TLSA: waiting for the target's TLSA records (DANE), not yet connected. */
enum cstate { C_CONNECT, C_TLSA, C_GREETING, C_EHLO, C_HELO, C_STARTTLS, C_TLS, C_AUTH, C_AUTH_USER, C_AUTH_PASS,
              C_READY, C_MAIL, C_RCPT, C_DATA, C_DOT_IGNORED, C_BODY, C_RSET, C_QUIT, C_DEAD };

struct smtp_client {
    struct event_base *base;
    const struct config *cfg;
    SSL_CTX *tls;
    struct dns_route route;
    struct dns *dns;                 /* for the targets' TLSA records */
    bool dane;                       /* DANE may apply (smtp_dane or a dane level; the MX answer validated) */
    bool dane_only;                  /* smtp_tls_policy's dane-only: no DANE, no connection */
    struct dns_query *tlsa_query;    /* the current target's TLSA lookup while it runs */
    struct dns_tlsa_set tlsa;        /* its answer: TLSA_NONE when DANE does not apply to this target */
    struct next_hop hop;       /* where this connection was sent (relay_host: its TLS and AUTH apply) */
    size_t target;
    const struct smtp_client_ops *ops;
    void *arg;
    struct bufferevent *bev;
    struct event *close_ev;
    enum cstate state;
    struct smtp_reply reply;
    char host[300];                  /* "name[ip]" of the current target */
    struct smtp_extensions ext;      /* what the peer's last EHLO offered */
    bool tls_active;
    bool tls_failed;                 /* the handshake with this target failed: retry it in cleartext */
    bool tls_wanted;                 /* STARTTLS when offered (smtp_tls, or the destination's smtp_tls_policy) */
    bool tls_must;                   /* TLS or nothing (smtp_tls_verify, or the policy's encrypt or verify) */
    bool tls_verify;                 /* the certificate must be valid for the host (smtp_tls_verify, or verify) */
    struct smtp_job *job;
    const char *text;                /* what the job sends: its text, or the converted form */
    size_t len;
    struct evbuffer *converted;      /* that converted form (prepare_text), or NULL */
    bool job_started;                /* MAIL was sent: no more moving to another target */
    bool need_rset;
    bool mail_ok;
    size_t rcpt_i, accepted;
    size_t lmtp_next;                /* LMTP: the recipient the next reply after the data is for */
    bool *rcpt_accepted;
    char mail_diag[600];
    int mail_code;
    char last_error[600];
    bool no_target_worked;           /* every target of the route failed before a transaction */
};

/* smtp_client.c */
void client_on_read(struct bufferevent *bev, void *arg);
void client_on_event(struct bufferevent *bev, short what, void *arg);
void client_set_timeout(struct smtp_client *c, unsigned seconds);
void client_send_line(struct smtp_client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The connection broke or the peer misbehaved: the next target if no transaction started yet. */
void client_conn_failed(struct smtp_client *c, const char *why);

/* Fails the job for good with code and diag (every recipient) and drops the connection: no other
 * job may use it. */
void client_give_up(struct smtp_client *c, int code, const char *diag);
void client_peer_refused(struct smtp_client *c, const char *what);
void client_session_ready(struct smtp_client *c);
bool client_implicit_tls(const struct smtp_client *c);
void client_send_ehlo(struct smtp_client *c);
/* Connects to the current target (its TLSA records, if DANE applies, are in). */
void client_connect(struct smtp_client *c);

/* smtp_client_tls.c */
/* DANE applies to the current target: starts its TLSA lookup (true; client_connect follows). */
bool client_dane_lookup(struct smtp_client *c);
/* Sets c->dane: smtp_dane or a dane level, a DNSSEC-validated MX answer (RFC 7672 2.2.1; a host
 * the administrator named needs only its own validated addresses), not LMTP, not level none. */
void client_dane_applies(struct smtp_client *c);
/* Connects to the current target, unless its destination is dane-only and DANE cannot be had
 * with it (then on to the next target, saying why). */
void client_connect_unless_dane_unmet(struct smtp_client *c);
/* TLS must be used with the current target: smtp_tls_verify or smtp_tls_policy, or its TLSA records (DANE). */
bool client_tls_required(const struct smtp_client *c);

/* What TLS the connection wants, must have and verifies: its destination's smtp_tls_policy level,
 * else smtp_tls_verify (verify) or smtp_tls (may) or none. DANE levels: wanted (dane) or a must
 * (dane-only), verified by the TLSA records, not the CA store. */
void client_tls_levels(struct smtp_client *c);
/* The handshake with the current target is done: on to the greeting or EHLO. */
void client_tls_up(struct smtp_client *c);
/* Why a TLS handshake failed, when the certificate checks say so, into why (else left as it is);
 * the failure is reported to the TLS report (client_tls_report) when a policy covers the host. */
void client_tls_failure(const struct smtp_client *c, char *why, size_t whysz);
/* RFC 8460: the outcome of TLS with the current target (failure: NULL for a success, else a
 * result type) to the owner's tls_result, when a policy covers it: DANE's usable TLSA records, or
 * the destination's MTA-STS policy (enforce or testing). */
void client_tls_report(const struct smtp_client *c, const char *failure);
void client_start_tls(struct smtp_client *c);
void client_login_or_ready(struct smtp_client *c);
void client_got_auth_reply(struct smtp_client *c);

#endif
