/* fileio.h - the blocking file primitives of the commit path (disk threads only). */
#ifndef POSTERN_FILEIO_H
#define POSTERN_FILEIO_H

struct evbuffer;

/* Writes all of buf to fd with writev (short writes and EINTR retried); buf is left intact.
 * Returns 0, or -1 with errno set. */
int write_evbuffer(int fd, struct evbuffer *buf);

/* fsyncs a directory, so a name just created in it survives a crash. 0, or -1 with errno set. */
int fsync_dir(const char *path);

#endif
