/* workq.h - a fixed pool of threads for blocking work (disk writes, fsync). The event loop hands a
 * job over with workq_submit(); the job's done() callback later runs on the loop thread. */
#ifndef POSTERN_WORKQ_H
#define POSTERN_WORKQ_H

struct event_base;
struct workq;

typedef void (*workq_fn)(void *arg);

/* Starts nthreads threads, named `name` (at most 15 characters: what top -H, ps -L and perf show).
 * The base must have been created after evthread_use_pthreads(). */
struct workq *workq_new(struct event_base *base, unsigned nthreads, const char *name);

/* A batched queue: one thread takes every job waiting (up to max_batch) and hands all their args
 * to batch(args, n, ctx) in one call - the group-commit shape; each job's done() then runs on the
 * loop thread as usual. Jobs submitted to a batched queue pass work = NULL. */
typedef void (*workq_batch_fn)(void **args, unsigned n, void *ctx);
struct workq *workq_new_batched(struct event_base *base, const char *name, workq_batch_fn batch, void *ctx,
                                unsigned max_batch);

/* Runs work(arg) on a pool thread, then done(arg) on the loop thread. */
void workq_submit(struct workq *q, workq_fn work, workq_fn done, void *arg);

/* Runs work(arg) on a pool thread of q, then hands arg straight to the batched queue `then` (no
 * loop round trip in between), then done(arg) on the loop thread. */
void workq_submit_then(struct workq *q, workq_fn work, struct workq *then, workq_fn done, void *arg);

/* Finishes the queued jobs (running their done callbacks), stops and joins the threads. */
void workq_free(struct workq *q);

#endif
