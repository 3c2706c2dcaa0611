/* queue_priv.h - the queue manager's shared state, for queue.c (entries and attempts) and
 * queue_dest.c (destinations and their connections). Not for other modules. */
#ifndef POSTERN_QUEUE_PRIV_H
#define POSTERN_QUEUE_PRIV_H

#include <stdbool.h>
#include <stddef.h>

#include "dns.h"
#include "mta_sts_fetch.h"
#include "queue_file.h"
#include "smtp_client.h"
#include "tlsrpt_send.h"

struct server;
struct event;
typedef struct ssl_ctx_st SSL_CTX;

struct qentry;

struct qjob {
    struct smtp_job job;
    struct qentry *e;
    struct dest *d;
    size_t *idx;            /* job rcpt i -> entry rcpt idx[i] */
    struct qjob *next;      /* in the destination's waiting list */
};

struct qbucket {
    struct qentry *first;
};

struct qentry {
    struct qfile f;
    struct queue *q;
    struct qentry *prev, *next;
    struct qentry *index_next; /* in the id index's bucket */
    bool in_flight;
    bool gone;              /* removed or held by `postern queue` meanwhile: drop after the attempt */
    bool all_final;
    char *text;
    char read_error[256];
    struct qjob *jobs;
    size_t njobs, jobs_left;
    struct smtp_job_rcpt *jrcpts;
    size_t *jidx;
    unsigned char *news;    /* per rcpt this attempt: 'F' failed now, 'S' report success */
    bool warn_now;
    char *srs_sender;       /* this attempt's SRS form of the sender (srs.h), or NULL: as it is */
};

struct dest {
    char domain[300];           /* hop.name: the recipient domain, or the next hop as configured */
    struct next_hop hop;        /* where its mail goes (queue_dispatch) */
    struct queue *q;
    struct dest *next;
    struct dns_query *dq;
    struct mta_sts_query *stsq; /* its MTA-STS policy being looked up (with the route) */
    struct mta_sts_policy *sts; /* that policy when one applies (enforce or testing), else NULL */
    bool resolved;
    double route_expires;      /* monotonic time after which the route is looked up again (its TTL) */
    struct dns_route route;
    struct qjob *head, *tail;
    unsigned nconns;
    double suspended_until;    /* monotonic: no mail exchanger answered; jobs are deferred until then */
    char suspended_why[600];   /* that failure, for the jobs deferred meanwhile */
};

struct qconn {
    struct smtp_client *c;
    struct dest *d;
    bool tls_optional;      /* made for a TLS-Required: No message: takes only such messages after it */
    bool require_tls;       /* made for a REQUIRETLS message (RFC 8689): likewise */
    struct qconn *next;
};

/* A mail exchanger's address (and port) that could not be reached or would not greet: tried after
 * the others of its route until `until` (queue_dest.c). */
#define DOWN_HOSTS_MAX 64
struct down_host {
    struct sockaddr_storage addr;
    double until;              /* monotonic; 0 = free slot */
};

struct queue {
    struct server *srv;
    struct down_host down[DOWN_HOSTS_MAX];
    struct qentry *head;
    struct qbucket *index;       /* queue id -> entry, chained buckets (index_cap, a power of 2) */
    size_t index_cap, nentries;
    struct dest *dests;
    struct qconn *conns;
    unsigned nconns, in_flight;
    size_t in_flight_bytes;      /* message octets held by attempts in progress */
    struct event *tick;          /* every second: start due attempts */
    struct event *kick;          /* the same at once (new mail, flush); never event_active the timer */
    SSL_CTX *tls;
    struct mta_sts *sts;         /* MTA-STS policies (smtp_mta_sts; NULL without a TLS client) */
    struct tlsrpt_sender *tlsrpt; /* TLS reports (tls_reports; NULL without a TLS client) */
    unsigned long long mta_sts_mx_not_used; /* MX hosts an enforce policy did not list (metrics) */
    bool stopping;
};

/* queue.c: a job's recipients all have results; records them (and completes the attempt). */
void queue_job_finished(struct qjob *j);

/* queue_dest.c: hands a job to the destination for domain (DNS route once, then connections). */
void queue_dispatch(struct queue *q, struct qjob *j, const char *domain);

/* queue_dest.c: `postern queue flush`: destinations found unreachable are tried again at once. */
void queue_resume_destinations(struct queue *q);

/* queue_dest.c: shutdown: drops every connection and DNS query at once. */
void queue_close_destinations(struct queue *q);

#endif
