/* commit.h - the commit point: makes a received message durable before its 250 - small local mail
 * in batches with one journal fdatasync, big messages each on its own disk thread (fsync of the
 * file, then of the directories that got its names), the rest in batches with two file-system
 * flushes (blocking: runs on the committer and disk threads). See commit.c. */
#ifndef POSTERN_COMMIT_H
#define POSTERN_COMMIT_H

/* Phase 1 for one message (a workq work function; many run in parallel on the disk threads):
 * writes its files without flushing. Sets m->status on failure. */
void commit_stage(void *m);

#include <stddef.h>
#include <sys/types.h>

#include "workq.h"

struct message;

struct journal;

/* The committer's settings (the workq batch context). */
struct commit_config {
    struct journal *journal;    /* NULL: commit_journal = no, every message takes the direct path */
    size_t journal_message_max; /* bigger messages take the direct path */
    dev_t mail_dev;             /* mail_dir's file system: the one the checkpoint flushes */
};

/* The workq batch function for staged messages (args are struct message pointers, ctx a
 * struct commit_config). On return each message's status is COMMIT_OK (every copy in new/ and spool
 * queue/, durable itself or through its journal record) or a failure with nothing left behind. */
void commit_batch(void **args, unsigned n, void *ctx);

/* Hands a finished message to be committed; done(m) runs on the loop thread afterwards. A message
 * the journal will take goes straight to the committer (which stages it itself: one thread hand-off
 * less before the 250); any other is staged on a disk thread first, in parallel with other work. */
void commit_submit(struct workq *disk, struct workq *committer, const struct commit_config *cc,
                   struct message *m, workq_fn done);

#endif
