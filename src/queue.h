/* queue.h - the outbound queue manager: every committed queue file in spool_dir/queue is an
 * entry; due entries are delivered per destination domain (DNS route, then smtp_client.c), with
 * a concurrency limit per destination and connection reuse; outcomes are recorded in state files;
 * deferred mail is retried on retry_schedule until max_queue_lifetime; failures, delays (after
 * delay_warning_time) and NOTIFY=SUCCESS produce DSNs (dsn.c) committed like any received mail. */
#ifndef POSTERN_QUEUE_H
#define POSTERN_QUEUE_H

#include "mta_sts_fetch.h"

#include <stdbool.h>
#include <stddef.h>

struct server;
struct queue;
struct message;

/* Loads spool_dir/queue (start-up, before the loop runs) and starts the scheduler. */
struct queue *queue_new(struct server *srv);
void queue_free(struct queue *q);

/* What the queue holds and does right now (metrics). */
struct queue_stats {
    size_t messages;          /* queued for relay: due, deferred or in an attempt (not held ones) */
    unsigned attempts;        /* delivery attempts in progress */
    unsigned connections;     /* outbound SMTP connections open */
    unsigned destinations;    /* destinations known (recipient domains or next hops) */
    unsigned long long mta_sts_mx_not_used; /* MX hosts an enforce MTA-STS policy did not list */
    struct mta_sts_stats mta_sts; /* the MTA-STS cache and fetches */
};
void queue_get_stats(const struct queue *q, struct queue_stats *st);

/* Shutdown, before the disk threads are drained: closes outbound connections and DNS queries;
 * work still finishing on disk threads then only releases memory. */
void queue_stop(struct queue *q);

/* A received message with remote recipients was committed as spool_dir/queue/<qid>. */
void queue_add_committed(struct queue *q, const char *qid);

/* Re-reads spool_dir/queue (a `postern queue` command changed it); with flush, every entry is
 * due now. */
void queue_rescan(struct queue *q, bool flush);

/* Commits a message Postern made itself (a DSN) through the same group commit as received mail;
 * done(arg, ok) runs on the loop thread afterwards. m is freed by this call's machinery. */
void queue_submit_local(struct server *srv, struct message *m, void (*done)(void *arg, bool ok), void *arg);

#endif
