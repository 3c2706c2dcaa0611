/* commit.h - group commit: makes a batch of received messages durable with two file-system flushes
 * in all, however many messages the batch holds (blocking: runs on the committer thread). */
#ifndef POSTERN_COMMIT_H
#define POSTERN_COMMIT_H

/* Phase 1 for one message (a workq work function; many run in parallel on the disk threads):
 * writes its files without flushing. Sets m->status on failure. */
void commit_stage(void *m);

/* The workq batch function for staged messages (args are struct message pointers): flush,
 * publish, flush. On return each message's status
 * is COMMIT_OK (every copy durable in new/ and spool queue/) or a failure with nothing left behind. */
void commit_batch(void **args, unsigned n, void *ctx);

#endif
