/* spool.c - queue file writer. Format (text header, LF line endings):
 *   POSTERN-QUEUE 2
 *   id <qid> / created <unix time> / sender <addr> / smtputf8 0|1 / body8bit 0|1
 *   ret FULL|HDRS|- / envid <xtext>|- / tlsoptional 1 (only when set: RFC 8689 TLS-Required: No)
 *   requiretls 1 (only when set: RFC 8689 REQUIRETLS)
 *   rcpt <notify bits> <orcpt>|- <addr>   (one per remote recipient; the address last: it may hold spaces)
 *   message <octets>
 *   <Received + original headers + body>
 *   END <octets>
 * The reader (queue_file.c) trusts a file only with a matching END record. Writing is two-phase
 * (stage into tmp/, publish by rename into queue/); commit.c flushes the file system in between. */
#include "spool.h"

#include <errno.h>
#include <event2/buffer.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fileio.h"
#include "log.h"
#include "queue_file.h"

bool spool_file_valid(const char *data, size_t n)
{
    static const char magic[] = "POSTERN-QUEUE 2\n";
    if (n < sizeof magic - 1 || memcmp(data, magic, sizeof magic - 1) != 0)
        return false;
    /* the header ends with the line "message <octets>" */
    const char *p = data;
    const char *end = data + n;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            return false;
        if ((size_t)(nl - p) > 8 && memcmp(p, "message ", 8) == 0 && p[8] >= '0' && p[8] <= '9') {
            char *num_end;
            unsigned long long size = strtoull(p + 8, &num_end, 10);
            if (num_end != nl)
                return false;
            const char *body = nl + 1;
            if ((size_t)(end - body) < size)
                return false;
            char trailer[40];
            int tl = snprintf(trailer, sizeof trailer, "END %llu\n", size);
            return (size_t)(end - body) == size + (size_t)tl && memcmp(body + size, trailer, (size_t)tl) == 0;
        }
        p = nl + 1;
    }
    return false;
}

/* Checks the queue file named name at path: complete (its END record, through spool_file_valid),
 * an envelope the queue manager can load, and the id its name says - a file copied or restored
 * under another name would otherwise be tracked under one id and read under the other. Reads it
 * through mmap: only the pages holding the envelope and the END record come from disk. True when
 * good; otherwise why in reason. */
static bool queue_file_valid(const char *path, const char *name, char *reason, size_t reasonsz)
{
    size_t n;
    char *map = qfile_map(path, &n);
    if (!map) {
        snprintf(reason, reasonsz, "%s", errno == ENODATA ? "empty file" : strerror(errno));
        return false;
    }
    struct qfile q = {0};
    bool ok = spool_file_valid(map, n);
    if (!ok)
        snprintf(reason, reasonsz, "incomplete: no END record matching its length");
    else if (qfile_parse_envelope(map, n, &q, reason, reasonsz) < 0)
        ok = false;
    else if (strcmp(q.qid, name) != 0)
        ok = false, snprintf(reason, reasonsz, "its id line names %s", q.qid);
    qfile_free(&q);
    munmap(map, n);
    return ok;
}

int spool_recover(const char *spool_dir)
{
    char dir[PATH_MAX], path[PATH_MAX], dest[PATH_MAX];
    int valid = 0, corrupt = 0, stale = 0;
    snprintf(dir, sizeof dir, "%s/tmp", spool_dir);
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) == 0)
            stale++;
    }
    if (d)
        closedir(d);
    snprintf(dir, sizeof dir, "%s/queue", spool_dir);
    d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        char reason[256];
        if (queue_file_valid(path, e->d_name, reason, sizeof reason)) {
            valid++;
            continue;
        }
        snprintf(dest, sizeof dest, "%s/corrupt", spool_dir);
        mkdir(dest, 0700);
        snprintf(dest, sizeof dest, "%s/corrupt/%s", spool_dir, e->d_name);
        if (rename(path, dest) == 0) {
            corrupt++;
            log_warn("event=spool_corrupt file=%s reason=\"%s\" moved_to=%s", path, reason, dest);
        } else {
            log_error("event=spool_corrupt file=%s error=\"cannot move aside: %s\"", path, strerror(errno));
        }
    }
    if (d)
        closedir(d);
    log_info("event=spool_recovered queued=%d corrupt=%d stale_tmp=%d", valid, corrupt, stale);
    return valid;
}

int spool_prepare(const char *spool_dir)
{
    /* hold/ too, made now so that the server owns it (`postern queue hold` may run as root) */
    static const char *const subdirs[] = {"tmp", "queue", "state", "hold"};
    char path[PATH_MAX];
    if (mkdir(spool_dir, 0700) < 0 && errno != EEXIST)
        return -1;
    for (size_t i = 0; i < sizeof subdirs / sizeof subdirs[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", spool_dir, subdirs[i]);
        if (mkdir(path, 0700) < 0 && errno != EEXIST)
            return -1;
    }
    return 0;
}

static void fail(struct message *m, const char *what, const char *path)
{
    m->status = (errno == ENOSPC || errno == EDQUOT) ? COMMIT_NOSPACE : COMMIT_TEMPFAIL;
    snprintf(m->error, sizeof m->error, "%s %s: %s", what, path, strerror(errno));
}

/* The envelope header of a queue file (see the format at the top). */
static void build_envelope(const struct message *m, struct evbuffer *env, size_t size)
{
    evbuffer_add_printf(env, "POSTERN-QUEUE %d\nid %s\ncreated %lld\nsender %s\nsmtputf8 %d\nbody8bit %d\n",
                        SPOOL_FORMAT_VERSION, m->qid, (long long)time(NULL), m->sender, m->smtputf8, m->body_8bit);
    evbuffer_add_printf(env, "ret %s\nenvid %s\n", m->ret == RET_FULL ? "FULL" : m->ret == RET_HDRS ? "HDRS" : "-",
                        *m->envid ? m->envid : "-");
    if (m->tls_optional)
        evbuffer_add_printf(env, "tlsoptional 1\n"); /* a reader that does not know it skips it */
    if (m->require_tls)
        evbuffer_add_printf(env, "requiretls 1\n");
    for (size_t i = 0; i < m->nrcpts; i++)
        if (m->rcpts[i].remote)
            evbuffer_add_printf(env, "rcpt %u %s %s\n", m->rcpts[i].notify, m->rcpts[i].orcpt ? m->rcpts[i].orcpt : "-",
                                m->rcpts[i].addr);
    evbuffer_add_printf(env, "message %zu\n", size);
}

/* The trace headers as relayed: without the first line, Return-Path, which only the final
 * delivery adds (RFC 5321 4.4). */
static struct evbuffer *relay_headers(struct evbuffer *headers)
{
    struct evbuffer *out = evbuffer_new();
    struct evbuffer_ptr nl = evbuffer_search(headers, "\n", 1, NULL);
    size_t skip = nl.pos < 0 ? 0 : (size_t)nl.pos + 1;
    size_t len = evbuffer_get_length(headers);
    unsigned char *all = evbuffer_pullup(headers, -1);
    if (out && len > skip)
        evbuffer_add(out, all + skip, len - skip);
    return out;
}

void spool_stage(struct message *m)
{
    if (m->nrcpts == m->nlocal)
        return;
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s/tmp/%s", m->spool_dir, m->qid);
    struct evbuffer *env = evbuffer_new(), *end = evbuffer_new(), *trace = relay_headers(m->headers);
    if (!env || !end || !trace) {
        errno = ENOMEM;
        fail(m, "cannot build envelope for", tmp);
    } else {
        size_t size = evbuffer_get_length(trace) + evbuffer_get_length(m->body);
        build_envelope(m, env, size);
        evbuffer_add_printf(end, "END %zu\n", size);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0) {
            fail(m, "cannot create", tmp);
        } else {
            struct evbuffer *const parts[4] = {env, trace, m->body, end};
            int written = write_evbuffers(fd, parts, 4);
            if (close(fd) < 0 || written < 0) { /* closed either way: never closed twice */
                fail(m, "cannot write", tmp);
                unlink(tmp);
            } else {
                m->stage.spool_staged = true;
            }
        }
    }
    if (env)
        evbuffer_free(env);
    if (end)
        evbuffer_free(end);
    if (trace)
        evbuffer_free(trace);
}

void spool_publish(struct message *m)
{
    if (!m->stage.spool_staged)
        return;
    char tmp[PATH_MAX], final[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s/tmp/%s", m->spool_dir, m->qid);
    snprintf(final, sizeof final, "%s/queue/%s", m->spool_dir, m->qid);
    if (rename(tmp, final) < 0) {
        fail(m, "cannot commit", final);
        return;
    }
    m->stage.spool_staged = false;
    m->stage.spool_published = true;
}

void spool_remove(struct message *m)
{
    char path[PATH_MAX];
    if (m->stage.spool_published) {
        snprintf(path, sizeof path, "%s/queue/%s", m->spool_dir, m->qid);
        unlink(path);
    }
    if (m->stage.spool_staged) {
        snprintf(path, sizeof path, "%s/tmp/%s", m->spool_dir, m->qid);
        unlink(path);
    }
    m->stage.spool_staged = m->stage.spool_published = false;
}

int spool_sync_staged(struct message *m)
{
    if (!m->stage.spool_staged)
        return 0;
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s/tmp/%s", m->spool_dir, m->qid);
    int fd = open(tmp, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) < 0) {
        fail(m, "cannot fsync", tmp);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

int spool_sync_published(struct message *m)
{
    if (!m->stage.spool_published)
        return 0;
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/queue", m->spool_dir);
    if (fsync_dir(dir) < 0) {
        fail(m, "cannot fsync", dir);
        return -1;
    }
    return 0;
}
