/* fileio.c - writev of an evbuffer's chains without copying, positioned gathered writes, directory
 * fsync and mkdir -p. */
#include "fileio.h"

#include <errno.h>
#include <event2/buffer.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define IOV_BATCH 64

int write_iov_all(int fd, struct iovec *cur, int n, off_t at)
{
    while (n > 0) {
        ssize_t w = at < 0 ? writev(fd, cur, n) : pwritev(fd, cur, n, at);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        if (w == 0) {
            errno = EIO;
            return -1;
        }
        if (at >= 0)
            at += w;
        while (n > 0 && (size_t)w >= cur->iov_len) { /* skip what was written */
            w -= (ssize_t)cur->iov_len;
            cur++, n--;
        }
        if (n > 0) {
            cur->iov_base = (char *)cur->iov_base + w;
            cur->iov_len -= (size_t)w;
        }
    }
    return 0;
}

/* Writes the n segments of vec fully at the file position. */
static int writev_all(int fd, const struct evbuffer_iovec *vec, int n)
{
    struct iovec iov[IOV_BATCH];
    for (int i = 0; i < n; i++) {
        iov[i].iov_base = vec[i].iov_base;
        iov[i].iov_len = vec[i].iov_len;
    }
    return write_iov_all(fd, iov, n, -1);
}

int write_evbuffers(int fd, struct evbuffer *const *bufs, int nbufs)
{
    struct evbuffer_iovec vec[IOV_BATCH];
    int n = 0;
    for (int b = 0; b < nbufs; b++) {
        struct evbuffer_ptr pos;
        evbuffer_ptr_set(bufs[b], &pos, 0, EVBUFFER_PTR_SET);
        size_t left = evbuffer_get_length(bufs[b]);
        while (left > 0) {
            if (n == IOV_BATCH) { /* full: write what we have, then go on filling */
                if (writev_all(fd, vec, n) < 0)
                    return -1;
                n = 0;
            }
            int got = evbuffer_peek(bufs[b], -1, &pos, vec + n, IOV_BATCH - n);
            if (got <= 0)
                break;
            if (got > IOV_BATCH - n)
                got = IOV_BATCH - n;
            size_t chunk = 0;
            for (int i = n; i < n + got; i++)
                chunk += vec[i].iov_len;
            n += got;
            left -= chunk;
            evbuffer_ptr_set(bufs[b], &pos, chunk, EVBUFFER_PTR_ADD);
        }
    }
    return n > 0 ? writev_all(fd, vec, n) : 0;
}

int fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int r = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return r;
}

int mkdir_parents(const char *path, mode_t parents_mode)
{
    char buf[PATH_MAX];
    if ((size_t)snprintf(buf, sizeof buf, "%s", path) >= sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, parents_mode) < 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(buf, 0700) < 0 && errno != EEXIST ? -1 : 0;
}

int file_replace(const char *path, const void *data, size_t len)
{
    char tmp[PATH_MAX];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    const char *p = data;
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd, p + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        done += (size_t)n;
    }
    int err = done < len ? (errno ? errno : EIO) : 0;
    if (!err && fsync(fd) < 0)
        err = errno;
    if (close(fd) < 0 && !err)
        err = errno;
    if (!err && rename(tmp, path) < 0)
        err = errno;
    if (!err)
        return 0;
    unlink(tmp);
    errno = err;
    return -1;
}
