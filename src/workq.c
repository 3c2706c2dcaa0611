/* workq.c - mutex+condition job queue feeding a thread pool; finished jobs are handed back to the
 * loop through an eventfd the loop watches. The worker writes it after letting go of every lock,
 * and only when the finished list was empty: the loop, woken, never blocks on a lock the worker
 * still holds (event_active from a thread holds the base lock while it wakes the loop). */
#include "workq.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"

struct job {
    workq_fn work, done;
    void *arg;
    struct workq *then; /* after work: into this queue's batch instead of back to the loop */
    struct job *next;
};

struct joblist {
    struct job *head, *tail;
};

struct workq {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct joblist todo, finished;
    bool stopping;
    unsigned nthreads;
    pthread_t *threads;
    int notify_fd;          /* eventfd: finished jobs wait */
    struct event *done_ev;  /* the loop's persistent read event on it */
    workq_batch_fn batch;   /* NULL: jobs run one by one */
    void *batch_ctx;
    unsigned max_batch;
};

static void push(struct joblist *l, struct job *j)
{
    j->next = NULL;
    if (l->tail)
        l->tail->next = j;
    else
        l->head = j;
    l->tail = j;
}

/* Takes up to max jobs off the queue (lock held); returns how many. */
static unsigned take(struct workq *q, struct job **out, unsigned max)
{
    unsigned n = 0;
    while (n < max && q->todo.head) {
        out[n] = q->todo.head;
        q->todo.head = out[n]->next;
        n++;
    }
    if (!q->todo.head)
        q->todo.tail = NULL;
    return n;
}

#define BATCH_MAX 256

/* Moves a job whose work is done straight into its next queue (no event loop round trip). */
static void hand_over(struct job *j)
{
    struct workq *next = j->then;
    j->then = NULL;
    j->work = NULL;
    pthread_mutex_lock(&next->lock);
    push(&next->todo, j);
    pthread_mutex_unlock(&next->lock);
    pthread_cond_signal(&next->wake);
}

/* Puts finished jobs on the loop's list and wakes the loop if the list was empty (else a wake-up
 * is already on its way). Called and returns with q->lock held; writes the eventfd without it. */
static void hand_back(struct workq *q, struct job **jobs, unsigned n)
{
    bool wake = !q->finished.head;
    for (unsigned i = 0; i < n; i++)
        push(&q->finished, jobs[i]);
    if (!wake)
        return;
    pthread_mutex_unlock(&q->lock);
    uint64_t one = 1;
    ssize_t w = write(q->notify_fd, &one, sizeof one); /* only fails when the counter is huge: awake anyway */
    (void)w;
    pthread_mutex_lock(&q->lock);
}

static void *worker_main(void *arg)
{
    struct workq *q = arg;
    struct job *jobs[BATCH_MAX];
    void *args[BATCH_MAX];
    pthread_mutex_lock(&q->lock);
    for (;;) {
        while (!q->todo.head && !q->stopping)
            pthread_cond_wait(&q->wake, &q->lock);
        unsigned n = take(q, jobs, q->batch ? q->max_batch : 1);
        if (n == 0)
            break; /* stopping and nothing left */
        pthread_mutex_unlock(&q->lock);
        if (q->batch) {
            for (unsigned i = 0; i < n; i++)
                args[i] = jobs[i]->arg;
            q->batch(args, n, q->batch_ctx);
        } else {
            jobs[0]->work(jobs[0]->arg);
        }
        unsigned back = 0; /* jobs going back to the loop */
        for (unsigned i = 0; i < n; i++)
            if (jobs[i]->then)
                hand_over(jobs[i]);
            else
                jobs[back++] = jobs[i];
        pthread_mutex_lock(&q->lock);
        if (back > 0)
            hand_back(q, jobs, back);
    }
    pthread_mutex_unlock(&q->lock);
    return NULL;
}

/* Loop thread: runs the done callbacks of every finished job, in completion order. */
static void run_finished(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct workq *q = arg;
    uint64_t count;
    ssize_t r = read(q->notify_fd, &count, sizeof count); /* first: see hand_back */
    (void)r;
    pthread_mutex_lock(&q->lock);
    struct job *j = q->finished.head;
    q->finished.head = q->finished.tail = NULL;
    pthread_mutex_unlock(&q->lock);
    while (j) {
        struct job *next = j->next;
        j->done(j->arg);
        free(j);
        j = next;
    }
}

struct workq *workq_new_batched(struct event_base *base, const char *name, workq_batch_fn batch, void *ctx,
                                unsigned max_batch)
{
    struct workq *q = workq_new(base, 1, name);
    if (q) {
        pthread_mutex_lock(&q->lock);
        q->batch = batch;
        q->batch_ctx = ctx;
        q->max_batch = max_batch < 1 ? 1 : max_batch > BATCH_MAX ? BATCH_MAX : max_batch;
        pthread_mutex_unlock(&q->lock);
    }
    return q;
}

struct workq *workq_new(struct event_base *base, unsigned nthreads, const char *name)
{
    struct workq *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->wake, NULL);
    q->notify_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    q->done_ev = q->notify_fd < 0 ? NULL : event_new(base, q->notify_fd, EV_READ | EV_PERSIST, run_finished, q);
    if (!q->done_ev || event_add(q->done_ev, NULL) < 0) {
        log_error("event=workq_start_failed error=eventfd");
        if (q->done_ev)
            event_free(q->done_ev);
        if (q->notify_fd >= 0)
            close(q->notify_fd);
        pthread_cond_destroy(&q->wake);
        pthread_mutex_destroy(&q->lock);
        free(q);
        return NULL;
    }
    q->threads = calloc(nthreads, sizeof *q->threads);
    for (unsigned i = 0; i < nthreads; i++) {
        if (pthread_create(&q->threads[i], NULL, worker_main, q) != 0) {
            log_error("event=thread_start_failed threads=%u", i);
            break;
        }
        pthread_setname_np(q->threads[i], name);
        q->nthreads++;
    }
    if (q->nthreads == 0) {
        workq_free(q);
        return NULL;
    }
    return q;
}

void workq_submit(struct workq *q, workq_fn work, workq_fn done, void *arg)
{
    workq_submit_then(q, work, NULL, done, arg);
}

void workq_submit_then(struct workq *q, workq_fn work, struct workq *then, workq_fn done, void *arg)
{
    struct job *j = malloc(sizeof *j);
    if (!j) { /* out of memory: do the work inline rather than lose it */
        if (q->batch)
            q->batch(&arg, 1, q->batch_ctx);
        else
            work(arg);
        if (then)
            then->batch(&arg, 1, then->batch_ctx);
        done(arg);
        return;
    }
    j->work = work;
    j->done = done;
    j->arg = arg;
    j->then = then;
    pthread_mutex_lock(&q->lock);
    push(&q->todo, j);
    pthread_mutex_unlock(&q->lock);
    pthread_cond_signal(&q->wake); /* after unlocking: the woken thread does not block on the lock */
}

void workq_free(struct workq *q)
{
    pthread_mutex_lock(&q->lock);
    q->stopping = true;
    pthread_cond_broadcast(&q->wake);
    pthread_mutex_unlock(&q->lock);
    for (unsigned i = 0; i < q->nthreads; i++)
        pthread_join(q->threads[i], NULL);
    run_finished(-1, 0, q);
    event_free(q->done_ev);
    close(q->notify_fd);
    pthread_cond_destroy(&q->wake);
    pthread_mutex_destroy(&q->lock);
    free(q->threads);
    free(q);
}
