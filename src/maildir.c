/* maildir.c - Maildir delivery with the qmail commit rule: tmp/ -> fsync -> link into new/ ->
 * fsync new/. Never follows an unvalidated path; never leaves a half file in new/. */
#include "maildir.h"

#include "fileio.h"

#include <errno.h>
#include <event2/buffer.h>
#include <fcntl.h>
#include <limits.h>
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

static void set_error(struct message *m, int err, const char *what, const char *path)
{
    m->status = (err == ENOSPC || err == EDQUOT) ? COMMIT_NOSPACE : COMMIT_TEMPFAIL;
    snprintf(m->error, sizeof m->error, "%s %s: %s", what, path, strerror(err));
}

/* mkdir that makes the new entry durable (fsync of the parent); EEXIST is success. */
static int mkdir_durable(const char *path, const char *parent)
{
    if (mkdir(path, 0700) == 0)
        return fsync_dir(parent);
    return errno == EEXIST ? 0 : -1;
}

/* Makes sure <mail_dir>/<domain>/<mailbox>/{tmp,new,cur} exist; fills dir with the mailbox path. */
static int ensure_maildir(struct message *m, const struct msg_rcpt *r, char *dir, size_t dirsz)
{
    char d[ADDR_DOMAIN_MAX * 3 + 1], l[ADDR_LOCAL_MAX * 3 + 1], sub[PATH_MAX + 8], dom[PATH_MAX];
    if (!maildir_safe_name(r->domain, d, sizeof d) || !maildir_safe_name(r->local, l, sizeof l)) {
        m->status = COMMIT_TEMPFAIL;
        snprintf(m->error, sizeof m->error, "mailbox name %s@%s cannot be made safe", r->local, r->domain);
        return -1;
    }
    snprintf(dom, sizeof dom, "%s/%s", m->mail_dir, d);
    snprintf(dir, dirsz, "%s/%s", dom, l);
    snprintf(sub, sizeof sub, "%s/new", dir);
    struct stat st;
    if (stat(sub, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    static const char *const subdirs[] = {"tmp", "new", "cur"};
    if (mkdir_durable(dom, m->mail_dir) < 0 || mkdir_durable(dir, dom) < 0) {
        set_error(m, errno, "cannot create maildir", dir);
        return -1;
    }
    for (int i = 0; i < 3; i++) {
        snprintf(sub, sizeof sub, "%s/%s", dir, subdirs[i]);
        if (mkdir_durable(sub, dir) < 0) {
            set_error(m, errno, "cannot create maildir", sub);
            return -1;
        }
    }
    return 0;
}

/* Creates path exclusively, writes headers+body, fsyncs. */
static int write_message_file(struct message *m, const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        set_error(m, errno, "cannot create", path);
        return -1;
    }
    if (write_evbuffer(fd, m->headers) < 0 || write_evbuffer(fd, m->body) < 0 || fsync(fd) < 0) {
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

/* Puts the message into dir/new/name: a hard link to tmp_path, or a fresh copy across devices. */
static int place_in_new(struct message *m, const char *tmp_path, const char *dir, const char *name)
{
    char new_path[PATH_MAX], copy_tmp[PATH_MAX];
    snprintf(new_path, sizeof new_path, "%s/new/%s", dir, name);
    if (link(tmp_path, new_path) == 0)
        return 0;
    if (errno != EXDEV) {
        set_error(m, errno, "cannot link into", new_path);
        return -1;
    }
    snprintf(copy_tmp, sizeof copy_tmp, "%s/tmp/%s", dir, name);
    if (write_message_file(m, copy_tmp) < 0)
        return -1;
    if (rename(copy_tmp, new_path) < 0) {
        set_error(m, errno, "cannot rename into", new_path);
        unlink(copy_tmp);
        return -1;
    }
    return 0;
}

void maildir_deliver(struct message *m)
{
    char name[128], tmp_path[PATH_MAX], path[PATH_MAX];
    struct timeval tv;
    gettimeofday(&tv, NULL);
    snprintf(name, sizeof name, "%lld.M%06ldP%ldQ%s.%s", (long long)tv.tv_sec, (long)tv.tv_usec, (long)getpid(),
             m->qid, m->hostname);
    char (*dirs)[PATH_MAX] = calloc(m->nrcpts ? m->nrcpts : 1, PATH_MAX);
    size_t ndirs = 0;
    if (!dirs) {
        m->status = COMMIT_TEMPFAIL;
        snprintf(m->error, sizeof m->error, "out of memory");
        return;
    }
    for (size_t i = 0; i < m->nrcpts; i++) {
        if (m->rcpts[i].remote)
            continue;
        if (ensure_maildir(m, &m->rcpts[i], dirs[ndirs], PATH_MAX) < 0)
            goto fail;
        ndirs++;
    }
    if (ndirs == 0)
        goto done;
    snprintf(tmp_path, sizeof tmp_path, "%s/tmp/%s", dirs[0], name);
    if (write_message_file(m, tmp_path) < 0)
        goto fail;
    size_t placed = 0;
    for (; placed < ndirs; placed++)
        if (place_in_new(m, tmp_path, dirs[placed], name) < 0)
            break;
    unlink(tmp_path);
    for (size_t i = 0; placed == ndirs && i < ndirs; i++) {
        snprintf(path, sizeof path, "%s/new", dirs[i]);
        if (fsync_dir(path) < 0) {
            set_error(m, errno, "cannot fsync", path);
            break;
        }
    }
    if (m->status != COMMIT_OK) { /* roll back: all recipients or none */
        for (size_t i = 0; i < placed; i++) {
            snprintf(path, sizeof path, "%s/new/%s", dirs[i], name);
            unlink(path);
        }
        goto fail;
    }
done:
    free(dirs);
    return;
fail:
    if (m->status == COMMIT_OK)
        m->status = COMMIT_TEMPFAIL;
    free(dirs);
}
