/* journal_priv.h - the journal's state, shared by its writer (journal.c) and its start-up recovery
 * (journal_recover.c) only. */
#ifndef POSTERN_JOURNAL_PRIV_H
#define POSTERN_JOURNAL_PRIV_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

struct journal {
    int fd;
    char path[PATH_MAX];
    char mail_dir[PATH_MAX];
    int mail_fd;       /* mail_dir, open for syncfs (works even if the directory is removed) */
    uint64_t size;     /* file size; the ring is [JOURNAL_DATA_START, size) */
    unsigned interval; /* seconds between checkpoints while records wait */
    uint32_t epoch;
    uint64_t serial;   /* of the header slot written last */
    pthread_t thread;  /* the checkpoint thread */
    pthread_mutex_t lock;
    pthread_cond_t wake;  /* the checkpoint thread waits here */
    pthread_cond_t space; /* the committer waits here for a checkpoint when the ring is full */
    /* under lock: */
    uint64_t head, head_seq; /* after the last synced record: where the next one goes, its seq */
    uint64_t used;           /* ring bytes held by records not yet retired (with skipped ends) */
    bool want_checkpoint, stopping, failed;
    struct timespec last_checkpoint;
    uint64_t checkpoints;
    uint64_t full_waits; /* times the committer waited for a checkpoint to make room */
};

/* Writes the next header slot (tail = the oldest record still needed) and fdatasyncs. 0 or -1. */
int journal_write_header(struct journal *j, uint64_t tail, uint64_t tail_seq);


/* Initialises the lock and conditions and starts the checkpoint thread. 0 or -1. */
int journal_start_thread(struct journal *j);

#endif
