/* metrics.h - the server's counters and its Prometheus endpoint (metrics_listen): what an
 * administrator graphs and alerts on - connections, every reply by catalog row (so refusals by
 * reason), messages and octets accepted, end-of-data-to-250 latency, deliveries and bounces,
 * the queue, free disk space. Counters are plain integers touched on the loop thread only. */
#ifndef POSTERN_METRICS_H
#define POSTERN_METRICS_H

#include <stdbool.h>
#include <stddef.h>

#include "reply.h"
#include "dkim_verify.h"
#include "dmarc.h"
#include "spf.h"

struct server;
struct evconnlistener;
struct metrics_conn;

#define METRICS_LISTEN_MAX 16 /* metrics_listen addresses */

/* Upper bounds (seconds) of the end-of-data-to-250 latency histogram's buckets (+Inf after). */
#define METRICS_LATENCY_BUCKETS 12

/* Aggregate reports (tlsrpt_send.c, dmarcrpt_send.c): their kinds, and what became of each domain's
 * report - sent (stored in the queue for its addresses), skipped (no address to send it to),
 * failed (out of memory, or not stored). */
enum report_kind { REPORT_TLS, REPORT_DMARC, REPORT__KINDS };
enum report_outcome { REPORT_SENT, REPORT_SKIPPED, REPORT_FAILED, REPORT__OUTCOMES };

/* Outcomes of a relayed recipient's delivery attempt. */
enum relay_result { RELAY_SENT, RELAY_DEFERRED, RELAY_BOUNCED, RELAY_EXPIRED, RELAY__COUNT };

struct metrics {
    unsigned long long connections[3];             /* accepted, by enum listen_role */
    unsigned long long replies[REPLY__COUNT];      /* SMTP replies sent, by catalog row */
    unsigned long long messages_accepted;          /* 250 after end of data */
    unsigned long long messages_discarded;         /* 250, and dropped by a content rule's DISCARD */
    unsigned long long reports[REPORT__KINDS][REPORT__OUTCOMES]; /* aggregate reports by kind and outcome */
    unsigned long long milter_failures;            /* a milter unreachable, silent or broken (smtp_milter.c) */
    unsigned long long octets_accepted;            /* their message octets as received */
    unsigned long long local_deliveries;           /* recipients put in a Maildir (received or made here) */
    unsigned long long relay[RELAY__COUNT];        /* relayed recipients' attempt results */
    unsigned long long reports_made;               /* bounces, delay warnings, success reports committed */
    unsigned long long dkim_signed, dkim_unsigned; /* originated messages with / without a DKIM signature */
    unsigned long long alias_expansions;           /* RCPTs for an alias, expanded */
    unsigned long long greylist[5];                /* greylisting verdicts, by enum greylist_verdict */
    unsigned long long spf[SPF__COUNT];            /* SPF checks at MAIL, by result */
    unsigned long long dkim_verified[DKIM_R__COUNT]; /* DKIM signatures verified (dkim_verify), by result */
    unsigned long long dmarc[DMARC__COUNT];        /* DMARC results of received messages (dmarc_policy) */
    unsigned long long client_names[3];            /* client_name_check: confirmed, unconfirmed, temperror */
    unsigned long long commit_latency[METRICS_LATENCY_BUCKETS + 1]; /* per bucket, not cumulative */
    double commit_latency_sum;                     /* seconds */
    unsigned long long reloads, reload_failures;
    double started;                                /* time(NULL) at start-up */
    struct evconnlistener *listeners[METRICS_LISTEN_MAX]; /* the endpoint's listeners */
    size_t nlisteners;
    struct metrics_conn *conns;                    /* scrape connections open */
    unsigned nconns;
    unsigned long long refused;                    /* connections closed: metrics_max_connections reached */
};

/* Counts one end-of-data-to-250 latency (seconds). */
void metrics_commit_latency(struct metrics *m, double seconds);

/* Opens the metrics_listen endpoints (GET /metrics); false (logged) when one cannot be bound. */
bool metrics_start(struct server *srv);

/* Closes the endpoint (no-op when none). */
void metrics_stop(struct server *srv);

struct evbuffer;
/* Appends the Prometheus text exposition (format 0.0.4) of the server's state to out. */
void metrics_render(struct server *srv, struct evbuffer *out);

#endif
