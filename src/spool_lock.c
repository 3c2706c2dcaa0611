/* spool_lock.c - one server per spool. spool_dir/postern.pid is locked (fcntl) for the server's
 * whole life. A second server started on the same spool - by mistake, with another listen address,
 * or while the first still runs - would empty the first one's tmp/, replay its journal and run a
 * second queue manager over the same files: it refuses to start instead. `postern queue` signals
 * only the pid in a locked file, so a file a crash left behind, whose pid may now belong to another
 * program, is never signalled (SIGUSR2 ends a program that does not handle it).
 * POSIX record locks, not flock(): F_GETLK asks whether the file is locked without taking a lock
 * itself, so a `postern queue list` at the moment a server starts cannot make that start fail. */
#include "spool_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

void spool_lock_path(const char *spool_dir, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s/postern.pid", spool_dir);
}

/* Whether a process holds the lock: F_GETLK tests without locking. */
static bool is_locked(int fd)
{
    struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET};
    return fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
}

/* The pid written in the file, 0 when there is none. */
static long read_pid(int fd)
{
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    long pid = strtol(buf, NULL, 10);
    return pid > 1 ? pid : 0;
}

/* Closes *fd after a failure, keeping the failure's errno; returns result. */
static enum spool_lock_result give_up(int *fd, enum spool_lock_result result)
{
    int err = errno;
    close(*fd);
    *fd = -1;
    errno = err;
    return result;
}

enum spool_lock_result spool_lock_take(const char *spool_dir, int *fd, long *holder)
{
    char path[PATH_MAX];
    spool_lock_path(spool_dir, path, sizeof path);
    *holder = 0;
    *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (*fd < 0)
        return SPOOL_LOCK_ERROR;
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET}; /* the whole file */
    if (fcntl(*fd, F_SETLK, &fl) < 0) {
        if (errno != EAGAIN && errno != EACCES)
            return give_up(fd, SPOOL_LOCK_ERROR);
        *holder = read_pid(*fd);
        return give_up(fd, SPOOL_LOCK_BUSY);
    }
    if (ftruncate(*fd, 0) < 0) /* a stale pid must not be taken for this server's while it starts */
        return give_up(fd, SPOOL_LOCK_ERROR);
    return SPOOL_LOCK_OK;
}

void spool_lock_publish(int fd)
{
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
    if (fd >= 0 && pwrite(fd, buf, (size_t)n, 0) != n)
        return; /* `postern queue` then finds no pid: its change applies at the next queue scan */
}

long spool_lock_holder(const char *spool_dir)
{
    char path[PATH_MAX];
    spool_lock_path(spool_dir, path, sizeof path);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return 0;
    long pid = 0;
    if (is_locked(fd)) { /* a server runs, or starts (no pid written yet: -1) */
        pid = read_pid(fd);
        if (pid == 0)
            pid = -1;
    }
    close(fd);
    return pid;
}
