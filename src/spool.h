/* spool.h - the durable queue for mail to other domains (blocking: disk threads only).
 * A queue file is <spool_dir>/queue/<qid>: a versioned envelope, the message, and an END record
 * with the message length, so a torn file is recognisable. Written to tmp/, flushed, renamed, and
 * flushed again before the message counts as accepted (the flushes are commit.c's, per batch). */
#ifndef POSTERN_SPOOL_H
#define POSTERN_SPOOL_H

#include <stdbool.h>
#include <stddef.h>

#include "message.h"

#define SPOOL_FORMAT_VERSION 2

/* Creates spool_dir/{tmp,queue} when missing; returns 0 or -1 with errno set. */
int spool_prepare(const char *spool_dir);

/* Commit phase 1: writes the queue file for m's remote recipients into spool_dir/tmp (none: does
 * nothing), without fsync. Sets m->status/error on failure. */
void spool_stage(struct message *m);

/* Commit phase 2, after the flush: renames it into spool_dir/queue. */
void spool_publish(struct message *m);

/* The targeted flushes for a small batch: fsync the staged file; fsync spool_dir/queue. */
int spool_sync_staged(struct message *m);
int spool_sync_published(struct message *m);

/* Start-up check (before the loop runs): removes half-written files from spool_dir/tmp, and moves
 * every queue file that fails validation (version, length, END record, an envelope that parses,
 * the id its file name says) to spool_dir/corrupt, logging why.
 * Returns the number of valid queue files; counts of each kind are logged. */
int spool_recover(const char *spool_dir);

/* True when the n bytes at data are a complete, valid queue file. */
bool spool_file_valid(const char *data, size_t n);

/* Removes m's staged or published queue file again (a later step of the commit failed). */
void spool_remove(struct message *m);

#endif
