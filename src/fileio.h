/* fileio.h - the blocking file primitives of the commit path (disk threads only). */
#ifndef POSTERN_FILEIO_H
#define POSTERN_FILEIO_H

#include <sys/types.h>

struct evbuffer;
struct iovec;

/* Writes all of the nbufs buffers to fd, one after the other, with as few writev calls as fit
 * (short writes and EINTR retried); the buffers are left intact. 0, or -1 with errno set. */
int write_evbuffers(int fd, struct evbuffer *const *bufs, int nbufs);

/* fsyncs a directory, so a name just created in it survives a crash. 0, or -1 with errno set. */
int fsync_dir(const char *path);

/* Writes all n iovecs (modified as it goes): at the file position when at < 0, else with pwritev
 * from offset at. Short writes and EINTR are retried. 0, or -1 with errno set. */
int write_iov_all(int fd, struct iovec *iov, int n, off_t at);

/* Replaces the file at path whole with data: written beside it (path.tmp), flushed, renamed over
 * it - a reader finds the old text or the new, never a part. 0, or -1 with errno set (the
 * temporary file removed). */
int file_replace(const char *path, const void *data, size_t len);

/* mkdir -p: creates path (mode 0700) and any missing parents (parents_mode). 0, or -1 with errno. */
int mkdir_parents(const char *path, mode_t parents_mode);

#endif
