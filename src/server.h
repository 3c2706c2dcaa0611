/* server.h - the running server: event base, configuration, policy, disk threads, listeners,
 * the list of sessions, and graceful shutdown. */
#ifndef POSTERN_SERVER_H
#define POSTERN_SERVER_H

#include <event2/listener.h>
#include <stdbool.h>

#include "commit.h"
#include "config.h"
#include "metrics.h"
#include "policy.h"

struct event_base;
struct evconnlistener;
struct event;
struct workq;
struct session;
struct dns;
struct queue;
struct dmarcrpt_sender;
struct table_write;

typedef struct ssl_ctx_st SSL_CTX;
struct auth_users;
struct listener_role;
struct ifaddrs;
struct tls_contexts;

struct server {
    struct event_base *base;
    struct config *cfg;
    struct policy *policy;
    struct auth_users *users;           /* submission users (may be empty) */
    SSL_CTX *tls_ctx;                   /* NULL when TLS is not configured */
    struct tls_contexts *tls;           /* main's, owning tls_ctx (a reload replaces it there too) */
    SSL_CTX *client_tls;                /* outbound STARTTLS; NULL when smtp_tls is off */
    struct listener_role *roles;        /* one per listener: what it is for */
    struct workq *disk;                 /* threads for blocking work (password checks, statvfs) */
    struct workq *committer;            /* the group-commit thread (commit.c) */
    struct commit_config commit_cfg;    /* its journal (journal.c) and limits */
    struct mailbox_holds *holds;        /* mailboxes RCPT refuses (450) until they work again */
    struct quotas *quotas;              /* mailbox usage for mailbox_quota (quota.h) */
    struct file_pool *file_pool;        /* unnamed files made ahead for Maildir delivery (file_pool.c) */
    struct dns *dns;                    /* asynchronous resolver (dns.c) */
    struct queue *queue;                /* outbound queue manager (queue.c) */
    struct dmarcrpt_sender *dmarc_reports; /* DMARC aggregate reports (dmarc_reports), or NULL */
    struct event *sig_flush, *sig_rescan; /* SIGUSR1: rescan + retry all now; SIGUSR2: rescan */
    struct evconnlistener **listeners;
    size_t nlisteners;
    struct evbuffer *reply_scratch;     /* loop thread: a reply on its way straight to a socket */
    struct session *sessions;           /* every session not yet freed */
    unsigned nsessions;                 /* all of them, including closing ones */
    unsigned nactive;                   /* connections counted against max_connections */
    struct conn_counts *per_ip;         /* the same per client address (max_connections_per_ip) */
    struct conn_counts *per_user;       /* recipients per authenticated user and hour (max_recipient_rate_per_user) */
    struct greylist *greylist;          /* greylisting's table (smtp_greylist.c), NULL when off */
    struct event *greylist_timer;       /* writes it to spool_dir/greylist now and then */
    bool greylist_writing;              /* a write of it is on a disk thread (one at a time) */
    bool greylist_loading;              /* a reload's read of it is on a disk thread */
    bool greylist_load_wanted;          /* a read to start once the writes and reads under way are done */
    struct table_write *greylist_queued;/* the text to write after the write under way (the newest only) */
    unsigned commits_running;           /* messages on disk threads right now */
    int spool_lock_fd;                  /* spool_dir/postern.pid, locked while we run (spool_lock.c) */
    bool shutting_down;
    bool reload_running;                /* a SIGHUP's files are being read (reload.c) */
    bool space_low;                     /* free space below min_free_space (see space watch) */
    bool space_check_running;
    unsigned long long space_sample;    /* disk thread: the measurement in progress */
    unsigned long long space_free;      /* loop thread: last measured free octets (the smaller of the two); 0 = none yet */
    struct ifaddrs *ifaddrs;            /* this host's interface addresses (server_listens_at), or NULL */
    double ifaddrs_at;                  /* monotonic time they were read: read again after a minute */
    unsigned dns_check_timeouts;        /* MAIL/RCPT-time DNS checks timed out in a row (smtp_envelope.c) */
    double dns_checks_paused_until;     /* monotonic: those checks are skipped until then (dns_outage_pause) */
    struct event *space_timer;
    struct event *cert_timer;           /* tls_cert_check_interval */
    struct event *grace_timer;
    struct event *sig_term, *sig_int, *sig_hup;
    struct metrics metrics;             /* counters and the metrics_listen endpoint (metrics.c) */
};

/* Binds the listeners, creates the directories and the disk threads; false (logged) on failure. */
bool server_start(struct server *srv, struct config *cfg, struct policy *policy, struct auth_users *users,
                  struct tls_contexts *tls);

/* smtp_greylist.c: greylisting's table, read from spool_dir/greylist (when greylisting is on), and
 * written back at the stop; greylist_start is false when out of memory. */
bool greylist_start(struct server *srv);
void greylist_stop(struct server *srv);
/* A reload: greylisting's times and auto_allow from fresh (switching it on or off, and
 * greylist_max_entries, wait for a restart). */
void greylist_reload(struct server *srv, const struct config *fresh);

/* Runs the event loop until a graceful shutdown completes. */
void server_run(struct server *srv);

/* This build's version (the git commit it was built from, see the Makefile), or "unknown". */
const char *server_version(void);

/* Frees everything server_start made. */
void server_free(struct server *srv);

/* Seconds on the monotonic clock: for timeouts and ages that a change of the date must not move. */
double monotonic_now(void);

/* True when addr (address and port) reaches one of this server's own listeners: one bound to it,
 * or a wildcard one on its port when the address is one of this host's interfaces. For the
 * outbound queue: a mail exchanger that is this server itself (RFC 5321 5.1). */
struct sockaddr;
bool server_listens_at(struct server *srv, const struct sockaddr *addr);

/* Binds one address of a listen key (host:port, validated by config) with libevent's listener;
 * logs event=listening, or event=startup_failed naming the key's file and line (NULL then); cb
 * takes its connections. */
struct evconnlistener *server_bind(struct server *srv, const char *key, const char *address, int backlog,
                                   evconnlistener_cb cb, void *arg);

/* Called by a session when it is freed; ends the loop once shutdown has no sessions left. */
void server_session_gone(struct server *srv);

#endif
