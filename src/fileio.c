/* fileio.c - writev of an evbuffer's chains without copying, and directory fsync. */
#include "fileio.h"

#include <errno.h>
#include <event2/buffer.h>
#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#define IOV_BATCH 64

/* Writes the n segments of vec fully, retrying short writes. */
static int writev_all(int fd, const struct evbuffer_iovec *vec, int n)
{
    struct iovec iov[IOV_BATCH];
    for (int i = 0; i < n; i++) {
        iov[i].iov_base = vec[i].iov_base;
        iov[i].iov_len = vec[i].iov_len;
    }
    struct iovec *cur = iov;
    while (n > 0) {
        ssize_t w = writev(fd, cur, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
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

int write_evbuffer(int fd, struct evbuffer *buf)
{
    struct evbuffer_iovec vec[IOV_BATCH];
    struct evbuffer_ptr pos;
    evbuffer_ptr_set(buf, &pos, 0, EVBUFFER_PTR_SET);
    size_t left = evbuffer_get_length(buf);
    while (left > 0) {
        int n = evbuffer_peek(buf, -1, &pos, vec, IOV_BATCH);
        if (n <= 0)
            break;
        if (n > IOV_BATCH)
            n = IOV_BATCH;
        size_t chunk = 0;
        for (int i = 0; i < n; i++)
            chunk += vec[i].iov_len;
        if (writev_all(fd, vec, n) < 0)
            return -1;
        left -= chunk;
        evbuffer_ptr_set(buf, &pos, chunk, EVBUFFER_PTR_ADD);
    }
    return 0;
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
