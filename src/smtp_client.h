/* smtp_client.h - one outbound SMTP connection to a destination's mail exchangers.
 * It tries the route's targets in order until one greets and takes EHLO (or HELO), upgrades with
 * STARTTLS when offered (opportunistic; required with smtp_tls_verify, or by DANE), then runs one transaction per job: MAIL, the RCPTs, DATA
 * (pipelined when offered), and reports one result per recipient. The owner may then hand it
 * another job for the same destination (connection reuse) or let it QUIT. */
#ifndef POSTERN_SMTP_CLIENT_H
#define POSTERN_SMTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "dns.h"
#include "next_hop.h"

struct event_base;
struct config;
struct smtp_client;
typedef struct ssl_ctx_st SSL_CTX;

/* What a job is to deliver, and where each recipient's result goes. */
struct smtp_job_rcpt {
    const char *addr;
    const char *orcpt;     /* or NULL */
    unsigned notify;       /* NOTIFY_* bits, 0 = not given */
    /* result */
    int code;              /* final reply code for this recipient: 2xx, 4xx, 5xx (0 = none yet) */
    char diag[600];        /* "550 5.1.1 No such user" or our own description of the failure */
    bool at_rcpt;          /* code is the peer's reply to RCPT (not to MAIL, DATA or the data) */
};

struct smtp_job {
    const char *sender;
    const char *envid;     /* or NULL */
    int ret;               /* enum dsn_ret */
    bool smtputf8, body8bit;
    const char *text;      /* the message, LF line endings */
    size_t len;
    struct smtp_job_rcpt *rcpts;
    size_t nrcpts;
    /* result */
    char remote_host[300]; /* "mx.example.org[192.0.2.1]" that answered, or "" */
    bool peer_dsn;         /* the peer took the DSN parameters (it reports success itself) */
    void *owner;
};

/* The outcome of TLS with a mail exchanger whose domain has a policy - DANE's usable TLSA records,
 * or MTA-STS (enforce or testing) - for SMTP TLS Reporting (RFC 8460). */
struct client_tls_result {
    bool dane;                      /* DANE's policy (else MTA-STS's) */
    const char *host, *ip;          /* the exchanger and its address */
    const char *failure;            /* NULL: success; else an RFC 8460 result type */
    const struct dns_tlsa_set *tlsa; /* DANE: its records */
};

struct smtp_client_ops {
    void (*job_done)(void *arg, struct smtp_client *c, struct smtp_job *job); /* every rcpt has a code */
    void (*closed)(void *arg, struct smtp_client *c);                         /* c is freed after this */
    /* a target could not be connected to, or did not greet (timeout, EOF, 4xx/5xx greeting) */
    void (*target_down)(void *arg, const struct dns_target *t, const char *why);
    void (*tls_result)(void *arg, const struct client_tls_result *r); /* may be NULL */
};

/* Starts connecting to route's targets (copied) on hop's port (hop copied too: relay_host's TLS and
 * AUTH settings apply when it is relay_host); the first job runs when ready. dns: for the TLSA
 * lookups of DANE (smtp_dane), which apply when the route is DNSSEC-validated (MX routes only). */
struct smtp_client *smtp_client_new(struct event_base *base, const struct config *cfg, SSL_CTX *tls, struct dns *dns,
                                    const struct next_hop *hop, const struct dns_route *route,
                                    const struct smtp_client_ops *ops, void *arg, struct smtp_job *first);

/* True when the connection can take another job (after job_done: else the owner calls quit). */
bool smtp_client_usable(const struct smtp_client *c);

/* True when the job ended because no mail exchanger of the route could be reached (each refused
 * the connection, timed out, or would not greet us): the destination, not the message, failed. */
bool smtp_client_no_target_worked(const struct smtp_client *c);

/* Runs another job on a usable connection whose last job is done. */
void smtp_client_run(struct smtp_client *c, struct smtp_job *job);

/* Frees the connection at once, without callbacks (server shutdown). */
void smtp_client_free(struct smtp_client *c);

/* Ends the connection politely (QUIT); closed() follows. */
void smtp_client_quit(struct smtp_client *c);

/* Converts LF-terminated message text to the wire form: CRLF line endings, dot-stuffing, and the
 * terminating CRLF.CRLF. Appends to out (an evbuffer). Pure apart from out. */
struct evbuffer;
int smtp_wire_body(struct evbuffer *out, const char *text, size_t len);

#endif
