/* session_priv.h - the inside of a session, shared by smtp_session.c (connection, commands,
 * DATA, commit), smtp_bdat.c (BDAT) and smtp_tls_auth.c (STARTTLS and AUTH). Not for other
 * modules: they use smtp_session.h. */
#ifndef POSTERN_SESSION_PRIV_H
#define POSTERN_SESSION_PRIV_H

#include <arpa/inet.h>
#include <event2/event.h>
#include <event2/util.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "access.h"
#include "message.h"
#include "reply.h"
#include "sasl.h"
#include "smtp_data.h"
#include "smtp_parse.h"
#include "smtp_session.h"

struct bufferevent;
struct evbuffer;
struct message;

#define OUTPUT_HIGH ((size_t)64 << 10) /* stop reading commands while this much output is unsent */
#define OUTPUT_LOW ((size_t)16 << 10)
#define INPUT_HIGH ((size_t)256 << 10) /* stop reading the socket while this much input waits */
#define AUTH_LINE_MAX 2048              /* AUTH command and response lines (base64 of 3 x 255 octets) */

enum state {
    ST_FRESH,  /* connected, no EHLO/HELO yet */
    ST_READY,  /* greeted, no transaction */
    ST_MAIL,   /* MAIL accepted, no recipient yet */
    ST_RCPT,   /* at least one recipient accepted */
    ST_DATA,   /* reading the message text */
    ST_COMMIT, /* the message is being made durable on a disk thread */
};

enum auth_step { AUTH_NONE, AUTH_PLAIN, AUTH_LOGIN_USER, AUTH_LOGIN_PASS };

/* An access table's verdict kept by the session (smtp_access.c): the text is its own copy. */
struct access_copy {
    enum access_action action;
    int line;   /* the table line that decided */
    char *text; /* the entry's reply text, or NULL */
};

struct session {
    struct server *srv;
    enum listen_role role;
    bool tls;              /* encrypted: after STARTTLS, or implicit TLS */
    char tls_info[96];     /* "TLSv1.3:TLS_AES_256_GCM_SHA384" once the handshake is done */
    char *auth_user;       /* the authenticated login address, or NULL */
    enum auth_step auth_step;
    bool auth_pending;     /* a password check, or its failure delay, is running */
    struct event *auth_delay_ev;
    char auth_login[SASL_FIELD_MAX + 1]; /* AUTH LOGIN: the user name so far */
    struct session *next, *prev;
    struct bufferevent *bev;
    char id[12];
    struct sockaddr_storage peer;
    char peer_ip[INET6_ADDRSTRLEN];
    bool may_relay;
    enum state state;
    bool esmtp;            /* greeted with EHLO */
    bool counted;          /* counts against the connection limits */
    bool skipping;         /* discarding the rest of an over-long command line */
    bool closing;          /* close once the output is sent */
    bool output_paused;    /* waiting for the client to read replies */
    bool job_pending;      /* the message is on a disk thread */
    bool dead;             /* connection gone; free when the disk job returns */
    bool greeting_pending; /* greet_delay running: any input now is an early talker */
    bool bdat_last;        /* the current BDAT chunk is the message's last (BDAT n LAST) */
    bool bdat_open;        /* the transaction's message is coming in BDAT chunks: more expected */
    struct event *greet_ev;
    struct event *close_ev;/* closes the connection from the loop, never from inside a callback */
    double close_deadline; /* stop waiting for unsent output then */
    double command_started;/* when the wait for the current command began (monotonic s) */
    double data_started;   /* when DATA began */
    double data_ended;     /* when its CRLF.CRLF came (the 250's latency, metrics.c) */
    size_t data_bytes;     /* raw octets received since DATA began */
    unsigned errors;
    unsigned milter_runs;  /* milters started (smtp_milter.c): a callback tells its own run from a later one */
    /* what the disconnect line sums up */
    double connected_at;     /* monotonic s */
    unsigned ncommands;
    unsigned nmessages;      /* accepted: 250 after the message text */
    unsigned rcpts_ok, rcpts_refused;
    unsigned rcpts_ok_run, rcpts_5xx_run; /* since the last accepted message: max_refused_recipients */
    enum smtp_verb last_verb;/* the client's last command: a connection lost "after RCPT" */
    int last_code;           /* our last reply's code (0: none yet) */
    char helo[256];
    struct message *msg;   /* the transaction in progress */
    /* a MAIL/RCPT reply waiting for a null-MX lookup (dns.c) */
    bool dns_pending;
    bool dns_for_rcpt;           /* the lookup is for pending_rcpt, else for the sender */
    struct dns_query *dns_q;
    struct event *dns_timer;
    struct msg_rcpt *pending_rcpt;  /* the recipient waiting for it (allocated only then) */
    struct quota_wait *quota_w;     /* pending_rcpt's mailbox usage being read (quota.h; dns_pending set) */
    struct quota_limit pending_quota; /* that mailbox's quota */
    struct dnsbl_check *dnsbl;      /* the client's block-list lookups (smtp_dnsbl.c), or NULL */
    struct rdns_check *rdns;        /* the client's name lookups (smtp_rdns.c), or NULL */
    struct spf_check *spf;          /* the sender's SPF check (smtp_spf.c), or NULL */
    struct access_copy client_access; /* client_access verdict, from the connection on */
    unsigned long long access_reloads; /* srv->metrics.reloads when it was taken (again at MAIL after one) */
    struct access_copy sender_access; /* sender_access verdict of the current MAIL */
    struct access_copy helo_access;   /* helo_access verdict of the last EHLO/HELO */
    struct event *spf_timer;
    unsigned char helo_spf;         /* the HELO name's SPF result + 1 (smtp_spf.c); 0: not asked yet */
    bool spf_helo_step;             /* the check running is the HELO name's */
    char *helo_spf_explanation;     /* its domain's exp= words for a fail (NULL: none) */
    char *helo_spf_detail;          /* what decided the HELO name's result */
    struct msgauth_check *msgauth;  /* DKIM and DMARC at the end of data (smtp_msgauth.c), or NULL */
    struct milter_check *milter;    /* the milters at the end of data (smtp_milter.c), or NULL */
    struct data_reader data;
    uint64_t bdat_left;    /* octets of the current BDAT chunk still to come (read, or dropped) */
    uint64_t bdat_size;    /* the current chunk's stated size, for its reply */
    char *line;            /* max_command_line + 1 octets, grown once for a DSN-sized MAIL/RCPT */
    size_t line_cap;
};

/* smtp_envelope.c: the MAIL and RCPT commands. */
void cmd_mail(struct session *s, const struct smtp_command *c);
void cmd_rcpt(struct session *s, const struct smtp_command *c);
/* Adds an accepted recipient (local duplicates collapse; r's ORCPT copy is taken or freed) and
 * answers with id. */
void accept_rcpt(struct session *s, struct msg_rcpt *r, enum reply_id id);
void reply(struct session *s, enum reply_id id, ...);
void close_after_flush(struct session *s);
void session_free(struct session *s);
void reset_transaction(struct session *s);
void setup_bev(struct session *s);
void process_input(struct session *s);

/* smtp_quota.c: mailbox quotas (quota.h) at RCPT and at the end of the data. */
/* For a local recipient r: true when its mailbox's quota decided the RCPT - refused (452 4.2.2
 * full, 552 5.2.2 the declared SIZE over the whole quota; r's ORCPT freed), or waiting for the
 * usage to be read (the reply comes then) -; false when the caller accepts it as usual. */
bool rcpt_quota_check(struct session *s, struct msg_rcpt *r);
/* An alias's local copy r (never refused at RCPT: one full mailbox must not hold back a whole
 * list): its mailbox's usage read now if not known, while the client sends the message, so that
 * the end of data can judge it. */
void quota_prefetch(struct session *s, const struct msg_rcpt *r);
/* At the end of data, before the commit: the refusal when a message of size octets would overfill
 * every mailbox it is for (every recipient local, with a quota), else REPLY_QUEUED. */
enum reply_id data_quota_refusal(struct session *s, unsigned long long size);
/* After a commit: the message's size added to the known usage of each of its mailboxes, and the
 * notice (quota_notice.h) put in one it took past mailbox_quota_warning. */
void quota_count_delivery(struct session *s, const struct message *m);

/* smtp_dnsbl.c: starts the client's block-list lookups (dnsbl_zones) as it connects; whether the
 * commands after EHLO must wait for them; the zone that lists the client (NULL: none, or no
 * answer); frees them with the session. */
struct dnsbl_check;
void dnsbl_start(struct session *s);
bool dnsbl_waiting(const struct session *s);
const char *dnsbl_listed(const struct session *s);
void dnsbl_free(struct session *s);

/* smtp_spf.c: starts the SPF check of a sender that passed the domain checks (false: none
 * applies, reply now); frees it with the session. smtp_envelope.c gives the MAIL reply it waited
 * for (s->msg->spf_refusal set: its RCPTs will be refused). */
struct spf_check;
bool spf_check_begin(struct session *s);
void spf_free(struct session *s);
/* A new EHLO/HELO name: its SPF result, once asked, is forgotten. */
void spf_helo_forget(struct session *s);
void sender_spf_verdict(struct session *s);

/* smtp_rdns.c: the client's confirmed name (client_name_check), looked up as it connects; whether
 * commands must wait for it; the name for the Received field (NULL: not looked up or not yet,
 * "unknown": none confirmed); whether RCPT is refused for the lack of it (450 4.7.25); freed with
 * the session. */
struct rdns_check;
void rdns_start(struct session *s);
bool rdns_waiting(const struct session *s);
const char *rdns_name(const struct session *s);
bool rdns_refuses(const struct session *s);
void rdns_free(struct session *s);

/* smtp_access.c: the client's client_access verdict, looked up as it connects (MX role) and again
 * at the first MAIL after a reload; the sender's sender_access verdict, at each MAIL; the EHLO
 * name's helo_access verdict, at each EHLO/HELO; at RCPT (not for postmaster), the refusal any of
 * them gives - sent and logged, true - or false; the copies freed with the session. A client with
 * permit is not looked up in block lists, SPF or the sender domain checks. */
void client_access_start(struct session *s);
void sender_access_check(struct session *s, const struct mailbox *mb);
void helo_access_check(struct session *s);
bool access_refuses_rcpt(struct session *s, const char *rcpt);
void access_session_free(struct session *s);
static inline bool client_permitted(const struct session *s)
{
    return s->client_access.action == ACCESS_PERMIT;
}

/* smtp_greylist.c: greylisting of rcpt (as the client sent it) for the session's client and
 * sender: true when deferred (451 4.7.1 sent and logged). */
bool greylist_defers(struct session *s, const char *rcpt);

/* smtp_envelope.c: logs a refused RCPT (event=rcpt_refused) with its reply and reason. */
void log_rcpt_refused(struct session *s, const char *addr, enum reply_id id, const char *reason);

/* smtp_session.c: the read timeout of the session's state (data_timeout in DATA, else
 * command_timeout) and the write timeout. */
void set_timeouts(struct session *s);

/* The message text begins (DATA's 354, or the first BDAT chunk): a fresh reader - chunked for
 * BDAT - and the clock and count min_data_rate judges. */
void data_begin(struct session *s, bool chunked);

/* smtp_bdat.c: CHUNKING (RFC 3030). cmd_bdat runs every BDAT, whatever the state (a refused
 * chunk is still read, and dropped, to stay in step with the client); bdat_chunk_end when the
 * chunk's last octet was read into the message; bdat_drop reads a refused chunk's octets (false
 * when none are buffered); bdat_refuses says 503 to the commands that must wait for the last chunk. */
void cmd_bdat(struct session *s, const struct smtp_command *c);
void bdat_chunk_end(struct session *s);
bool bdat_drop(struct session *s, struct evbuffer *in);
bool bdat_refuses(struct session *s, enum smtp_verb v);

/* smtp_store.c: the message's data ended: refused whole, or checked (smtp_msgauth.c) then stored -
 * trace fields, commit, and the reply once the commit is done. */
void finish_data(struct session *s);
/* The checks done: the milters (smtp_milter.c) if any, then commit_message - trace fields, the
 * DKIM signature, the commit. */
void store_message(struct session *s, const struct header_facts *facts);
void commit_message(struct session *s, const struct header_facts *facts);
/* Refuses the message whole after its data (reply id, with arg when the row takes one), logged
 * as rejected with detail; the session goes on with its next commands. */
void refuse_data(struct session *s, enum reply_id id, const char *detail, const char *arg);
/* Drops the message as a content rule's DISCARD says: answered 250 as if stored (the point of
 * DISCARD: the sender neither retries nor gets a bounce), nothing stored, logged as discarded
 * with detail. */
void discard_data(struct session *s, const char *detail);

/* smtp_content.c: header_checks, mime_header_checks and body_checks on the message at the end of
 * its data (facts: where message_scan_headers found its header section): true when a REJECT
 * refused it or a DISCARD dropped it (answered, as refuse_data or discard_data). */
bool content_rules_refuse(struct session *s, const struct header_facts *facts);

/* smtp_msgauth.c: DKIM verification (dkim_verify) and DMARC (dmarc_policy) of a message received
 * on the MX role, their DNS lookups at most dns_timeout; true when it will end - the message
 * stored (store_message) or refused (refuse_data) - once they are done (the session waits:
 * dns_pending), false when there is nothing to wait for (the results, if any, are already in
 * s->msg->auth_results). Frees a check still running with the session. */
bool msgauth_check_begin(struct session *s, const struct header_facts *facts);
void msgauth_check_free(struct session *s);

/* smtp_milter.c: the milters (milters) on a message whose own checks passed; true when they run
 * (the session waits: dns_pending) and will end it - commit_message, refuse_data or discard_data
 * -, false when there are none. Frees a check still running with the session. */
bool milter_check_begin(struct session *s, const struct header_facts *facts);
void milter_check_free(struct session *s);

/* smtp_headers.c: Return-Path, Received and (submitted mail) Message-ID/Date, into s->msg->headers.
 * A DKIM signature, when the message gets one, is left to the job returned (else NULL):
 * sign_job_run on a disk thread adds it to s->msg->headers, then sign_job_end on the loop thread
 * counts and logs it, frees the job and returns the message. */
struct sign_job;
struct sign_job *build_trace_headers(struct session *s, const struct header_facts *facts);
void sign_job_run(void *job);
struct message *sign_job_end(struct sign_job *job);

/* smtp_tls_auth.c */
bool auth_offered(const struct session *s);
bool auth_line_pending(struct session *s, struct evbuffer *in);
void note_tls(struct session *s);
void cmd_starttls(struct session *s, const struct smtp_command *c);
void cmd_auth(struct session *s, const struct smtp_command *c);
void auth_response(struct session *s, const char *b64, size_t len);

#endif
