/* file_pool.h - a stock of unnamed, empty files (O_TMPFILE) made ahead of need on one file system
 * by a background thread, so that storing a message does not wait for an inode allocation.
 * Why: creating a file is the most expensive step of a Maildir delivery on some file systems (ext4
 * without a journal scans every recently deleted inode of the block group, measured here at
 * 300-900 us per file against 20 us in a quiet group); made ahead, it leaves the commit path.
 * A taken file is the caller's: written, then linked into a directory of the same file system. */
#ifndef POSTERN_FILE_POOL_H
#define POSTERN_FILE_POOL_H

#include <stdbool.h>
#include <sys/types.h>

struct file_pool;

/* Starts a pool of up to `size` unnamed files created in directory `dir` (mode 0600, write-only).
 * NULL when size is 0, or on failure to start (the caller then creates its own files). */
struct file_pool *file_pool_new(const char *dir, unsigned size);

/* Takes a ready file: an open descriptor, or -1 when the stock is empty (or the file system cannot
 * make unnamed files). Never blocks on the disk. Thread-safe. */
int file_pool_take(struct file_pool *p);

/* True when a file taken from this pool can be linked into a directory on device dev. */
bool file_pool_serves(const struct file_pool *p, dev_t dev);

/* Stops the refill thread and closes the files never taken (they vanish: they have no name). */
void file_pool_free(struct file_pool *p);

#endif
