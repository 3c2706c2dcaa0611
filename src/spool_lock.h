/* spool_lock.h - one server per spool: spool_dir/postern.pid, locked for the server's whole life. */
#ifndef POSTERN_SPOOL_LOCK_H
#define POSTERN_SPOOL_LOCK_H

#include <stddef.h>

enum spool_lock_result { SPOOL_LOCK_OK, SPOOL_LOCK_BUSY, SPOOL_LOCK_ERROR };

/* spool_dir/postern.pid, the locked file, into out. */
void spool_lock_path(const char *spool_dir, char *out, size_t outsz);

/* Server start, before anything touches the spool: opens and locks spool_dir/postern.pid (the lock
 * lasts until the process ends) and empties it. OK: *fd holds it. BUSY: another server holds it,
 * *holder is its pid (0 while it starts). ERROR: errno says why. */
enum spool_lock_result spool_lock_take(const char *spool_dir, int *fd, long *holder);

/* Writes this process's pid into the locked file: call it once the queue signals are handled
 * (SIGUSR1/SIGUSR2 would end a server that has no handler for them yet). */
void spool_lock_publish(int fd);

/* For `postern queue`: the pid of the server running on spool_dir, 0 when none runs (the file is
 * missing or not locked: a stale pid is never returned), -1 while one starts (no pid yet). */
long spool_lock_holder(const char *spool_dir);

#endif
