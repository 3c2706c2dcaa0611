/* file_pool.c - unnamed files made ahead of need by one background thread (see file_pool.h).
 * Limits: at most `size` descriptors held; the thread sleeps while the stock is above half full,
 * then refills it to the top in one run. It must never block a taker: take() only pops under a
 * mutex that the refill thread never holds across a system call. */
#include "file_pool.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

struct file_pool {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int *fds;          /* the stock: fds[0..count) */
    unsigned count, size;
    bool refill;       /* the thread is (or must start) filling the stock to the top */
    bool unsupported;  /* the file system cannot make unnamed files: the pool stays empty */
    bool stop;
    dev_t dev;
    char *dir;
};

/* Waits up to one second for a wake-up (a transient error: try again later, without spinning). */
static void wait_a_second(struct file_pool *p)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 1;
    pthread_cond_timedwait(&p->wake, &p->lock, &until);
}

/* Records the outcome of one open(): a new file for the stock, or why there is none. */
static void stock(struct file_pool *p, int fd, int err)
{
    if (fd >= 0) {
        p->fds[p->count++] = fd;
    } else if (err == EOPNOTSUPP || err == EISDIR || err == EINVAL) {
        p->unsupported = true;
        log_info("event=file_pool_off dir=%s reason=\"no unnamed files here: %s\"", p->dir, strerror(err));
    } else { /* ENOSPC, EMFILE...: a taker's own attempt reports it precisely */
        wait_a_second(p);
    }
}

/* The refill thread: fills the stock to the top whenever take() asks, creating files unlocked. */
static void *refill_main(void *arg)
{
    struct file_pool *p = arg;
    pthread_mutex_lock(&p->lock);
    while (!p->stop) {
        if (!p->refill || p->unsupported) {
            pthread_cond_wait(&p->wake, &p->lock);
            continue;
        }
        if (p->count >= p->size) {
            p->refill = false;
            continue;
        }
        pthread_mutex_unlock(&p->lock);
        int fd = open(p->dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
        int err = errno;
        pthread_mutex_lock(&p->lock);
        stock(p, fd, err);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* Frees the pool's memory and synchronisation objects (the thread is not running). */
static void release(struct file_pool *p)
{
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    free(p->dir);
    free(p->fds);
    free(p);
}

struct file_pool *file_pool_new(const char *dir, unsigned size)
{
    struct stat st;
    if (size == 0 || stat(dir, &st) < 0)
        return NULL;
    struct file_pool *p = calloc(1, sizeof *p);
    if (!p || !(p->fds = calloc(size, sizeof *p->fds)) || !(p->dir = strdup(dir))) {
        if (p)
            free(p->fds);
        free(p);
        return NULL;
    }
    p->size = size;
    p->dev = st.st_dev;
    p->refill = true;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    if (pthread_create(&p->thread, NULL, refill_main, p) != 0) {
        release(p);
        return NULL;
    }
    pthread_setname_np(p->thread, "postern-files");
    return p;
}

int file_pool_take(struct file_pool *p)
{
    if (!p)
        return -1;
    int fd = -1;
    pthread_mutex_lock(&p->lock);
    if (p->count > 0)
        fd = p->fds[--p->count];
    if (!p->refill && p->count <= p->size / 2) {
        p->refill = true;
        pthread_cond_signal(&p->wake);
    }
    pthread_mutex_unlock(&p->lock);
    return fd;
}

bool file_pool_serves(const struct file_pool *p, dev_t dev)
{
    return p && p->dev == dev;
}

void file_pool_free(struct file_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->thread, NULL);
    for (unsigned i = 0; i < p->count; i++)
        close(p->fds[i]);
    release(p);
}
