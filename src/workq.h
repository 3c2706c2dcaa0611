/* workq.h - a fixed pool of threads for blocking work (disk writes, fsync). The event loop hands a
 * job over with workq_submit(); the job's done() callback later runs on the loop thread. */
#ifndef POSTERN_WORKQ_H
#define POSTERN_WORKQ_H

struct event_base;
struct workq;

typedef void (*workq_fn)(void *arg);

/* Starts nthreads threads. The base must have been created after evthread_use_pthreads(). */
struct workq *workq_new(struct event_base *base, unsigned nthreads);

/* Runs work(arg) on a pool thread, then done(arg) on the loop thread. */
void workq_submit(struct workq *q, workq_fn work, workq_fn done, void *arg);

/* Finishes the queued jobs (running their done callbacks), stops and joins the threads. */
void workq_free(struct workq *q);

#endif
