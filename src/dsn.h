/* dsn.h - delivery status notifications (RFC 3461/3464, multipart/report RFC 6522): bounces,
 * delay warnings and success reports, with a first part that explains each failure in plain
 * words from the reply catalog (explain.c). Pure text building: no I/O. */
#ifndef POSTERN_DSN_H
#define POSTERN_DSN_H

#include <stddef.h>

struct evbuffer;

enum dsn_action { DSN_FAILED, DSN_DELAYED, DSN_RELAYED, DSN_DELIVERED, DSN_EXPANDED };

struct dsn_rcpt {
    const char *addr;
    const char *orcpt;       /* "rfc822;xtext" or NULL */
    enum dsn_action action;
    const char *diag;        /* "550 5.1.1 text" (remote reply) or "4.4.1 text" (Postern's own) */
    const char *remote_mta;  /* "host[ip]" or NULL */
};

struct dsn_report {
    const char *qid;            /* the original message */
    const char *sender;         /* who gets the report */
    const char *envid;          /* ENVID or NULL */
    long long arrival;          /* unix time the original arrived */
    long long retry_until;      /* unix time delivery attempts end (max_queue_lifetime); 0 = not said */
    const char *reporting_mta;  /* our host name */
    int ret;                    /* enum dsn_ret: RET_FULL returns the whole message */
    const char *original;       /* the original message (LF line endings) */
    size_t original_len;
    const struct dsn_rcpt *rcpts;
    size_t nrcpts;
};

/* Appends the complete report message (headers and MIME body, LF line endings) to out. */
int dsn_build(struct evbuffer *out, const struct dsn_report *r, const char *message_id);

/* The Status field for a recipient's diag and action: its enhanced code (else class.0.0 of its
 * reply code), with the class of what happened (2 delivered, 4 delayed, else the reply code's). */
void dsn_status_of(const char *diag, enum dsn_action action, char *out, size_t outsz);

#endif
