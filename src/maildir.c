/* maildir.c - Maildir delivery with the qmail commit rule: tmp/ -> fsync -> link into new/ ->
 * fsync new/. Never follows an unvalidated path; never leaves a half file in new/. */
#include "maildir.h"

#include "file_pool.h"
#include "fileio.h"
#include "log.h"
#include "strmap.h"

#include <errno.h>
#include <event2/buffer.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

bool maildir_safe_name(const char *in, char *out, size_t outsz)
{
    size_t o = 0;
    for (size_t i = 0; in[i]; i++) {
        unsigned char c = (unsigned char)in[i];
        bool keep = c >= 0x80 || (c > 0x20 && c < 0x7f && c != '/' && c != '%' && c != '\\' && c != '"') ;
        if (i == 0 && c == '.')
            keep = false;
        if (keep) {
            if (o + 1 >= outsz)
                return false;
            out[o++] = (char)c;
        } else {
            if (o + 3 >= outsz)
                return false;
            o += (size_t)snprintf(out + o, outsz - o, "%%%02X", c);
        }
    }
    if (o == 0 || o >= outsz)
        return false;
    out[o] = '\0';
    return true;
}

static enum commit_status status_of(int err)
{
    return (err == ENOSPC || err == EDQUOT) ? COMMIT_NOSPACE : COMMIT_TEMPFAIL;
}

static void set_error(struct message *m, int err, const char *what, const char *path)
{
    m->status = status_of(err);
    m->errnum = err;
    snprintf(m->error, sizeof m->error, "%s %s: %s", what, path, strerror(err));
}

/* Fills err with "what path: <errno's reason>"; keeps errno. Returns -1. */
static int error_text(char *err, size_t errsz, const char *what, const char *path)
{
    int e = errno;
    snprintf(err, errsz, "%s %s: %s", what, path, strerror(e));
    errno = e;
    return -1;
}

/* Errors that say a mailbox cannot take mail (its permissions, its file system), as opposed to
 * this message (too big for a file-size limit) or this process (out of memory). */
static bool is_mailbox_fault(int err)
{
    switch (err) {
    case EACCES: case EPERM: case EROFS: case ENOENT: case ENOTDIR: case EIO: case EMLINK:
    case ENOSPC: case EDQUOT: case EUCLEAN: case ESTALE:
        return true;
    default:
        return false;
    }
}

/* Records that the message's failure (m->errnum) was this mailbox's, when it was: the mailbox is
 * then held (mailbox_hold.h). For a full disk, also which disk (stat: this is a disk thread). */
static void mailbox_failed(struct message *m, const char *dir)
{
    struct stat st;
    if (!dir || m->stage.failed_dir || !is_mailbox_fault(m->errnum))
        return;
    bool full = m->status == COMMIT_NOSPACE;
    if (full && stat(dir, &st) < 0)
        return; /* which disk is full is not known: the next message for it tries again */
    m->stage.failed_dir = strdup(dir);
    m->stage.failed_dev = full ? st.st_dev : 0;
}

/* mkdir that makes the new entry durable (fsync of the parent); EEXIST is success. */
static int mkdir_durable(const char *path, const char *parent)
{
    if (mkdir(path, 0700) == 0)
        return fsync_dir(parent);
    return errno == EEXIST ? 0 : -1;
}

/* Mailboxes this thread has seen complete, so that a delivery does not stat() new/ every time: a
 * syscall per recipient, and (on kernels with multigrain timestamps) a stat makes the next link's
 * new/ timestamp fine-grained, which dirties inodes - the journal's among them - on every message.
 * Keyed by a hash of the mailbox path; a false hit only costs a failed link, which forgets the entry
 * and recreates the mailbox (remake_maildir), so a mailbox removed while we run comes back. */
#define KNOWN_MAILDIRS 64
struct known_maildir {
    uint64_t hash; /* 0: empty */
    dev_t dev;
};
static _Thread_local struct known_maildir known[KNOWN_MAILDIRS];

static uint64_t path_hash(const char *p)
{
    uint64_t h = str_hash(p);
    return h ? h : 1; /* 0 marks an empty slot */
}

static struct known_maildir *known_slot(const char *dir, uint64_t *hash)
{
    *hash = path_hash(dir);
    return &known[*hash % KNOWN_MAILDIRS];
}

/* Makes sure dir/{tmp,new,cur} exist (dir's parent, the domain directory, is made first) and
 * fills dev with the device they are on. 0, or -1 with err filled and errno set. */
static int make_maildir(const char *mail_dir, const char *dir, dev_t *dev, char *err, size_t errsz)
{
    char path[PATH_MAX], parent[PATH_MAX], sub[PATH_MAX + 8];
    struct stat st;
    snprintf(sub, sizeof sub, "%s/new", dir);
    if (stat(sub, &st) == 0 && S_ISDIR(st.st_mode)) {
        *dev = st.st_dev;
        return 0;
    }
    static const char *const subdirs[] = {"tmp", "new", "cur"};
    size_t base = strlen(mail_dir);
    snprintf(path, sizeof path, "%s", dir);
    snprintf(parent, sizeof parent, "%s", mail_dir);
    for (char *slash = strchr(path + base + 1, '/');; slash = strchr(slash + 1, '/')) { /* domain, mailbox, folder */
        if (slash)
            *slash = '\0';
        if (mkdir_durable(path, parent) < 0)
            return error_text(err, errsz, "cannot create maildir", path);
        if (!slash)
            break;
        snprintf(parent, sizeof parent, "%s", path);
        *slash = '/';
    }
    for (int i = 0; i < 3; i++) {
        snprintf(sub, sizeof sub, "%s/%s", dir, subdirs[i]);
        if (mkdir_durable(sub, dir) < 0)
            return error_text(err, errsz, "cannot create maildir", sub);
    }
    if (stat(sub, &st) < 0)
        return error_text(err, errsz, "cannot use maildir", sub);
    *dev = st.st_dev;
    return 0;
}

/* make_maildir for a message's mailbox: a failure is the message's, and this mailbox's. */
static int make_mailbox(struct message *m, const char *dir, dev_t *dev)
{
    if (make_maildir(m->mail_dir, dir, dev, m->error, sizeof m->error) == 0)
        return 0;
    m->status = status_of(errno);
    m->errnum = errno;
    mailbox_failed(m, dir);
    return -1;
}

/* For a mailbox removed since this thread last saw it (a link or open in it failed with ENOENT):
 * forgets it and makes it again. 0, or -1 with m->status/error set. */
static int remake_maildir(struct message *m, const char *dir, dev_t *dev)
{
    uint64_t h;
    struct known_maildir *k = known_slot(dir, &h);
    if (k->hash == h)
        k->hash = 0;
    return make_mailbox(m, dir, dev);
}

bool maildir_path(const char *mail_dir, const char *local, const char *domain, char *out, size_t outsz)
{
    char d[ADDR_DOMAIN_MAX * 3 + 1], l[ADDR_LOCAL_MAX * 3 + 1];
    if (!maildir_safe_name(domain, d, sizeof d) || !maildir_safe_name(local, l, sizeof l))
        return false;
    int n = snprintf(out, outsz, "%s/%s/%s", mail_dir, d, l);
    return n > 0 && (size_t)n < outsz;
}

/* Fills dir with the recipient's mailbox path <mail_dir>/<domain>/<mailbox> (or its folder
 * <mailbox>/.<folder> when the message has one) and makes sure it exists (known mailboxes are not
 * checked again); dev gets the device it is on. */
static int ensure_maildir(struct message *m, const struct msg_rcpt *r, char *dir, size_t dirsz, dev_t *dev)
{
    size_t n;
    if (!maildir_path(m->mail_dir, r->local, r->domain, dir, dirsz) ||
        (*m->folder && (n = strlen(dir)) + 2 + strlen(m->folder) >= dirsz)) {
        m->status = COMMIT_TEMPFAIL;
        snprintf(m->error, sizeof m->error, "mailbox name %s@%s cannot be made safe", r->local, r->domain);
        return -1;
    }
    if (*m->folder) /* a Maildir++ folder of the mailbox (DMARC quarantine) */
        snprintf(dir + n, dirsz - n, "/.%s", m->folder);
    uint64_t h;
    struct known_maildir *k = known_slot(dir, &h);
    if (k->hash == h) {
        *dev = k->dev;
        return 0;
    }
    if (make_mailbox(m, dir, dev) < 0)
        return -1;
    *k = (struct known_maildir){h, *dev};
    return 0;
}

/* Writes the message's headers and body with one writev (for a message of ordinary size). */
static int write_message(int fd, const struct message *m)
{
    struct evbuffer *const parts[2] = {m->headers, m->body};
    return write_evbuffers(fd, parts, 2);
}

/* Creates path exclusively and writes headers+body; fsyncs only when sync is set. */
static int write_message_file(struct message *m, const char *path, bool sync)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        set_error(m, errno, "cannot create", path);
        return -1;
    }
    if (write_message(fd, m) < 0 || (sync && fsync(fd) < 0)) {
        set_error(m, errno, "cannot write", path);
        close(fd);
        unlink(path);
        return -1;
    }
    if (close(fd) < 0) {
        set_error(m, errno, "cannot close", path);
        unlink(path);
        return -1;
    }
    return 0;
}

/* Links the staged file to path: the tmp/ name, or the unnamed O_TMPFILE inode by its descriptor
 * (AT_EMPTY_PATH: allowed to the file's opener since Linux 6.10; older kernels want a capability we
 * dropped, so once that fails where the /proc/self/fd path works, only the /proc path is used). */
static int link_staged(const struct commit_stage *st, const char *path)
{
    static _Atomic bool empty_path_refused; /* every thread would store the same value */
    if (st->tmp_fd < 0)
        return link(st->tmp_path, path);
    if (!empty_path_refused) {
        if (linkat(st->tmp_fd, "", AT_FDCWD, path, AT_EMPTY_PATH) == 0)
            return 0;
        if (errno != ENOENT && errno != EPERM)
            return -1;
    }
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", st->tmp_fd);
    int r = linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW);
    if (r == 0 && !empty_path_refused) {
        empty_path_refused = true;
        log_info("event=link_by_descriptor_refused fallback=/proc/self/fd");
    }
    return r;
}

/* Puts the message into dir/new/name: a hard link to the staged file, or (across file systems) a
 * copy, fsynced and then its name in new/ fsynced, since the batch flush covers only the staged
 * file's file system (on ext4 any directory's fsync commits every pending change; elsewhere only
 * that directory's own: new/, where the name is, not the mailbox directory above it). */
static int place_in_new(struct message *m, const char *dir, const char *name)
{
    char new_path[PATH_MAX], copy_tmp[PATH_MAX];
    snprintf(new_path, sizeof new_path, "%s/new/%s", dir, name);
    if (link_staged(&m->stage, new_path) == 0)
        return 0;
    if (errno == ENOENT) { /* the mailbox was removed while we run: make it again, link once more */
        dev_t dev;
        if (remake_maildir(m, dir, &dev) < 0)
            return -1;
        if (link_staged(&m->stage, new_path) == 0)
            return 0;
    }
    if (errno != EXDEV) {
        set_error(m, errno, "cannot link into", new_path);
        mailbox_failed(m, dir);
        return -1;
    }
    char new_dir[PATH_MAX];
    snprintf(copy_tmp, sizeof copy_tmp, "%s/tmp/%s", dir, name);
    snprintf(new_dir, sizeof new_dir, "%s/new", dir);
    if (write_message_file(m, copy_tmp, true) < 0) {
        mailbox_failed(m, dir);
        return -1;
    }
    if (rename(copy_tmp, new_path) < 0 || fsync_dir(new_dir) < 0) { /* the directory the name is in */
        set_error(m, errno, "cannot rename into", new_path);
        mailbox_failed(m, dir);
        unlink(copy_tmp);
        return -1;
    }
    return 0;
}

/* Writes the message as an unnamed file (O_TMPFILE): no name to create or remove. The file comes
 * from the file pool when the mailbox (on device dev) is on the pool's file system, else it is
 * made in dir/tmp. Returns the descriptor, or -1 when that cannot work here (no O_TMPFILE on the
 * file system, or no /proc/self/fd to link it through): the caller then uses a named tmp/ file. */
static int write_unnamed(struct message *m, const char *dir, dev_t dev)
{
    static _Atomic int have_proc = -1; /* probed once; every thread would store the same value */
    if (have_proc < 0)
        have_proc = access("/proc/self/fd", X_OK) == 0;
    if (!have_proc)
        return -1;
    char tmp_dir[PATH_MAX];
    snprintf(tmp_dir, sizeof tmp_dir, "%s/tmp", dir);
    int fd = file_pool_serves(m->file_pool, dev) ? file_pool_take(m->file_pool) : -1;
    if (fd < 0)
        fd = open(tmp_dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0 && errno == ENOENT) {
        if (remake_maildir(m, dir, &dev) < 0)
            return -1;
        fd = open(tmp_dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
    }
    if (fd < 0)
        return -1;
    if (write_message(fd, m) < 0) {
        set_error(m, errno, "cannot write in", tmp_dir);
        mailbox_failed(m, dir);
        close(fd);
        return -1;
    }
    return fd;
}

void maildir_stage(struct message *m)
{
    struct commit_stage *st = &m->stage;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    int n = snprintf(st->name, sizeof st->name, "%lld.M%06ldP%ldQ%s.%s", (long long)tv.tv_sec, (long)tv.tv_usec,
                     (long)message_process_id(), m->qid, m->hostname);
    char size[32]; /* Maildir++: the file's size in its name - quota counts need no stat() (maildirsize.h) */
    int k = snprintf(size, sizeof size, ",S=%zu", evbuffer_get_length(m->headers) + evbuffer_get_length(m->body));
    if (n > 0 && (size_t)n + (size_t)k < sizeof st->name)
        memcpy(st->name + n, size, (size_t)k + 1);
    st->dirs = calloc(m->nlocal ? m->nlocal : 1, sizeof *st->dirs);
    if (!st->dirs) {
        m->status = COMMIT_TEMPFAIL;
        snprintf(m->error, sizeof m->error, "out of memory");
        return;
    }
    char dir[PATH_MAX], path[PATH_MAX];
    dev_t dev = 0, first_dev = 0;
    for (size_t i = 0; i < m->nrcpts; i++) {
        if (m->rcpts[i].remote)
            continue;
        if (ensure_maildir(m, &m->rcpts[i], dir, sizeof dir, &dev) < 0 || !(st->dirs[st->ndirs] = strdup(dir))) {
            if (m->status == COMMIT_OK) {
                m->status = COMMIT_TEMPFAIL;
                snprintf(m->error, sizeof m->error, "out of memory");
            }
            return;
        }
        if (st->ndirs++ == 0)
            first_dev = dev;
    }
    if (st->ndirs == 0)
        return;
    st->dev = first_dev;
    st->tmp_fd = write_unnamed(m, st->dirs[0], first_dev);
    if (st->tmp_fd >= 0 || m->status != COMMIT_OK)
        return;
    snprintf(path, sizeof path, "%s/tmp/%s", st->dirs[0], st->name);
    if (write_message_file(m, path, false) == 0)
        st->tmp_path = strdup(path);
    else
        mailbox_failed(m, st->dirs[0]);
    if (m->status == COMMIT_OK && !st->tmp_path) {
        unlink(path);
        m->status = COMMIT_TEMPFAIL;
        snprintf(m->error, sizeof m->error, "out of memory");
    }
}

void maildir_publish(struct message *m)
{
    struct commit_stage *st = &m->stage;
    for (; (st->tmp_path || st->tmp_fd >= 0) && st->placed < st->ndirs; st->placed++)
        if (place_in_new(m, st->dirs[st->placed], st->name) < 0)
            return;
}

void maildir_unpublish(struct message *m)
{
    struct commit_stage *st = &m->stage;
    char path[PATH_MAX];
    for (size_t i = 0; i < st->placed; i++) {
        snprintf(path, sizeof path, "%s/new/%s", st->dirs[i], st->name);
        unlink(path);
    }
    st->placed = 0;
}

void maildir_drop_tmp(struct message *m)
{
    if (m->stage.tmp_fd >= 0) { /* an unnamed file vanishes with its last descriptor */
        close(m->stage.tmp_fd);
        m->stage.tmp_fd = -1;
    }
    if (m->stage.tmp_path) {
        unlink(m->stage.tmp_path);
        free(m->stage.tmp_path);
        m->stage.tmp_path = NULL;
    }
}

int maildir_sync_staged(struct message *m)
{
    const struct commit_stage *st = &m->stage;
    int fd = st->tmp_fd >= 0 ? st->tmp_fd : st->tmp_path ? open(st->tmp_path, O_RDONLY | O_CLOEXEC) : -2;
    if (fd == -2)
        return 0; /* nothing staged: no local recipient */
    int r = fd < 0 ? -1 : fsync(fd);
    if (r < 0) {
        set_error(m, errno, "cannot fsync", st->tmp_path ? st->tmp_path : "the staged message");
        mailbox_failed(m, st->dirs[0]);
    }
    if (fd >= 0 && fd != st->tmp_fd)
        close(fd);
    return r;
}

int maildir_sync_published(struct message *m)
{
    char path[PATH_MAX];
    for (size_t i = 0; i < m->stage.placed; i++) {
        snprintf(path, sizeof path, "%s/new", m->stage.dirs[i]);
        if (fsync_dir(path) < 0) {
            set_error(m, errno, "cannot fsync", path);
            mailbox_failed(m, m->stage.dirs[i]);
            return -1;
        }
    }
    return 0;
}

/* The probe allocates its file's blocks (posix_fallocate; emulated by writes where the file system
 * cannot), so a full disk or quota shows even where writes reserve space only when flushed. */
int maildir_probe(const char *mail_dir, const char *dir, size_t room, char *err, size_t errsz)
{
    static _Atomic unsigned probes;
    dev_t dev;
    if (make_maildir(mail_dir, dir, &dev, err, errsz) < 0)
        return -1;
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/tmp/postern-probe.%ld.%u", dir, (long)message_process_id(), probes++);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return error_text(err, errsz, "cannot create", path);
    int e = posix_fallocate(fd, 0, (off_t)(room > 4096 ? room : 4096));
    close(fd);
    unlink(path);
    if (e != 0) {
        errno = e;
        return error_text(err, errsz, "cannot write", path);
    }
    snprintf(path, sizeof path, "%s/new", dir);
    if (access(path, W_OK | X_OK) < 0)
        return error_text(err, errsz, "cannot link into", path);
    return 0;
}
