/* commit.c - the commit point of Postern. Three paths:
 * JOURNAL (messages for local mailboxes only, up to journal_message_max; see journal.h): sent by
 * commit_submit straight to the committer, which stages them itself (no disk-thread hand-off),
 * appends the batch's records to the journal and fdatasyncs it once, then links each file into every
 * new/ without a flush: 250. The checkpoint thread flushes the Maildir files later.
 * ALONE (messages bigger than journal_message_max): the whole commit on a disk thread, the qmail
 * rule for one message - its files written and fsynced, linked into new/ (queue files renamed into
 * queue/), then each directory that got a name fsynced: 250. Many run at once on the io_threads and
 * the file system joins their flushes; no message waits for another's batch. For big messages the
 * bytes are most of the flush, so a batch shares little: measured on 100 KiB x 2,000 over 10
 * sessions, 1.20x the rate of a batch's two whole-file-system flushes.
 * DIRECT (the rest: relayed mail, mail whose first mailbox is not on mail_dir's file system - which
 * the checkpoint does not flush -, or commit_journal = no):
 *   1. stage (commit_stage, on the disk threads, many messages in parallel): write the message's
 *      queue file (spool tmp/) and its Maildir file (unnamed, in the first mailbox's tmp/), no fsync;
 *   then, on the committer thread, for every staged message waiting (commit_batch):
 *   2. syncfs() the mail and spool file systems, and that of any first mailbox elsewhere: every
 *      staged byte is on disk (a batch of up to SMALL_BATCH messages fsyncs its files instead:
 *      cheaper than flushing a whole file system);
 *   3. publish: rename queue files into queue/, link Maildir files into each new/;
 *   4. syncfs() again (small batch: fsync each directory that got a name): the names are on disk.
 *      Only now may any message of the batch get its 250.
 * A crash before the last flush leaves at worst a complete file in new/ whose client never saw 250
 * (the same narrow duplicate window every MTA has), never a partial one: data is flushed before any
 * link. If a flush fails, every message it was for fails (451) and its links are removed. */
#include "commit.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "journal.h"
#include "log.h"
#include "maildir.h"
#include "maildirsize.h"
#include "message.h"
#include "spool.h"

static bool is_flushed(const dev_t *done, size_t ndone, dev_t dev)
{
    for (size_t i = 0; i < ndone; i++)
        if (done[i] == dev)
            return true;
    return false;
}

/* syncfs() on path's file system unless done[0..*ndone) holds it already; then it does. */
static int flush_once(const char *path, dev_t *done, size_t *ndone, char *err, size_t errsz)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int r = fd < 0 || fstat(fd, &st) < 0 ? -1 : 0;
    if (r == 0 && !is_flushed(done, *ndone, st.st_dev)) {
        r = syncfs(fd);
        done[(*ndone)++] = st.st_dev;
    }
    if (r < 0)
        snprintf(err, errsz, "cannot flush the file system of %s: %s", path, strerror(errno));
    if (fd >= 0)
        close(fd);
    return r;
}

/* syncfs() on every file system the batch wrote to, each once: mail_dir's, spool_dir's, and that
 * of each message's first mailbox, where its file was staged (a mailbox can be on a disk of its
 * own; the copies in mailboxes on yet other file systems were fsynced when made). */
static int flush_file_systems(struct message **m, unsigned n, char *err, size_t errsz)
{
    dev_t *done = calloc(n + 2, sizeof *done);
    size_t ndone = 0;
    int r = done ? 0 : -1;
    if (!done)
        snprintf(err, errsz, "out of memory");
    if (r == 0 && (flush_once(m[0]->mail_dir, done, &ndone, err, errsz) < 0 ||
                   flush_once(m[0]->spool_dir, done, &ndone, err, errsz) < 0))
        r = -1;
    for (unsigned i = 0; r == 0 && i < n; i++)
        if (m[i]->status == COMMIT_OK && m[i]->stage.ndirs > 0 && !is_flushed(done, ndone, m[i]->stage.dev))
            r = flush_once(m[i]->stage.dirs[0], done, &ndone, err, errsz);
    free(done);
    return r;
}

#define SMALL_BATCH 3 /* up to this many messages, targeted fsyncs beat flushing the file system */

/* Phase-1 flush of a small batch: fsync each staged file. */
static int sync_staged_files(struct message **m, unsigned n, char *err, size_t errsz)
{
    for (unsigned i = 0; i < n; i++)
        if (m[i]->status == COMMIT_OK && (maildir_sync_staged(m[i]) < 0 || spool_sync_staged(m[i]) < 0)) {
            snprintf(err, errsz, "%s", m[i]->error);
            return -1;
        }
    return 0;
}

/* Phase-2 flush of a small batch: fsync each directory that got a new name. */
static int sync_published_dirs(struct message **m, unsigned n, char *err, size_t errsz)
{
    for (unsigned i = 0; i < n; i++)
        if (m[i]->status == COMMIT_OK && (maildir_sync_published(m[i]) < 0 || spool_sync_published(m[i]) < 0)) {
            snprintf(err, errsz, "%s", m[i]->error);
            return -1;
        }
    return 0;
}

/* Marks every still-good message failed, with the flush error. */
static void fail_all(struct message **m, unsigned n, const char *err)
{
    for (unsigned i = 0; i < n; i++) {
        if (m[i]->status != COMMIT_OK)
            continue;
        m[i]->status = COMMIT_TEMPFAIL;
        snprintf(m[i]->error, sizeof m[i]->error, "%s", err);
    }
}

/* Leaves nothing of a failed message behind. */
static void clean_up(struct message *m)
{
    maildir_unpublish(m);
    maildir_drop_tmp(m);
    spool_remove(m);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

void commit_stage(void *arg)
{
    struct message *m = arg;
    m->stage.staged = true;
    spool_stage(m);
    if (m->status == COMMIT_OK)
        maildir_stage(m);
}

/* A committed message: one more line in the maildirsize of each of its mailboxes with a quota
 * (maildirsize.h; the whole mailbox's, whichever folder the message went to). */
static void count_in_quotas(const struct message *m)
{
    unsigned long long size = evbuffer_get_length(m->headers) + evbuffer_get_length(m->body);
    for (size_t i = 0; i < m->nrcpts; i++) {
        char dir[PATH_MAX];
        const struct msg_rcpt *r = &m->rcpts[i];
        if (quota_set(r->quota) && maildir_path(m->mail_dir, r->local, r->domain, dir, sizeof dir))
            maildirsize_add(dir, size, r->quota);
    }
}

/* The ALONE path (see the top), a workq work function for a disk thread. */
static void commit_alone(void *arg)
{
    struct message *m = arg;
    char err[256];
    double t1 = now_ms();
    commit_stage(m);
    double t2 = now_ms();
    if (m->status == COMMIT_OK && sync_staged_files(&m, 1, err, sizeof err) == 0) {
        spool_publish(m);
        if (m->status == COMMIT_OK)
            maildir_publish(m);
        if (m->status == COMMIT_OK)
            sync_published_dirs(&m, 1, err, sizeof err);
    }
    if (m->status == COMMIT_OK) {
        maildir_drop_tmp(m); /* the links in new/ keep the file */
        count_in_quotas(m);
    } else {
        clean_up(m);
    }
    log_debug("event=commit_alone qid=%s stage_ms=%.2f commit_ms=%.2f", m->qid, t2 - t1, now_ms() - t2);
}

/* The strict path: two flushes around publishing, the Maildir files themselves on disk before 250. */
static void commit_direct(struct message **m, unsigned n)
{
    if (n == 0)
        return;
    char err[256];
    double t1 = now_ms();
    bool small = n <= SMALL_BATCH;
    if ((small ? sync_staged_files(m, n, err, sizeof err) : flush_file_systems(m, n, err, sizeof err)) < 0)
        fail_all(m, n, err);
    double t2 = now_ms();
    for (unsigned i = 0; i < n; i++) {
        if (m[i]->status == COMMIT_OK)
            spool_publish(m[i]);
        if (m[i]->status == COMMIT_OK)
            maildir_publish(m[i]);
    }
    double t3 = now_ms();
    if ((small ? sync_published_dirs(m, n, err, sizeof err) : flush_file_systems(m, n, err, sizeof err)) < 0)
        fail_all(m, n, err);
    log_debug("event=commit_batch path=direct messages=%u flush1_ms=%.2f publish_ms=%.2f flush2_ms=%.2f", n, t2 - t1,
              t3 - t2, now_ms() - t3);
}

/* The journal's publish step for one message: link its file into every new/ directory (status and
 * error set by maildir_publish on failure). */
static bool publish_journaled(struct message *m)
{
    maildir_publish(m);
    return m->status == COMMIT_OK;
}

/* Marks every still-good message that is not yet in all its new/ directories failed, with err: the
 * ones published before the journal failed are committed. */
static void fail_unpublished(struct message **m, unsigned n, const char *err)
{
    for (unsigned i = 0; i < n; i++)
        if (m[i]->stage.placed < m[i]->stage.ndirs)
            fail_all(&m[i], 1, err);
}

/* The journal path: one journal append + fdatasync for the batch, then every file linked into new/. */
static void commit_journaled(struct journal *j, struct message **m, unsigned n)
{
    if (n == 0)
        return;
    double t1 = now_ms();
    char err[256];
    if (journal_append(j, m, n, publish_journaled, err, sizeof err) < 0)
        fail_unpublished(m, n, err);
    log_debug("event=commit_batch path=journal messages=%u commit_ms=%.2f", n, now_ms() - t1);
}

/* True when a journal record can make the message durable: it goes only to local mailboxes (a
 * queue file must be on disk itself before the queue manager may see it), in ndirs mailboxes. */
static bool journal_takes(const struct commit_config *cc, const struct message *m, size_t ndirs)
{
    if (!cc || !cc->journal || m->status != COMMIT_OK || m->nlocal != m->nrcpts || ndirs == 0)
        return false;
    size_t bytes = evbuffer_get_length(m->headers) + evbuffer_get_length(m->body);
    return bytes <= cc->journal_message_max && journal_accepts(cc->journal, bytes, ndirs);
}

/* The final choice, on the committer, once the message is staged: its file must be on mail_dir's
 * file system, the one the checkpoint flushes (a mailbox can be on a disk of its own). */
static bool journal_eligible(const struct commit_config *cc, const struct message *m)
{
    return journal_takes(cc, m, m->stage.ndirs) && m->stage.dev == cc->mail_dev;
}

/* True when the message takes the ALONE path: bigger than journal_message_max. */
static bool commits_alone(const struct commit_config *cc, const struct message *m)
{
    return cc && evbuffer_get_length(m->headers) + evbuffer_get_length(m->body) > cc->journal_message_max;
}

void commit_submit(struct workq *disk, struct workq *committer, const struct commit_config *cc,
                   struct message *m, workq_fn done)
{
    if (journal_takes(cc, m, m->nlocal)) /* one mailbox per local recipient: no duplicates */
        workq_submit(committer, NULL, done, m);
    else if (commits_alone(cc, m))
        workq_submit(disk, commit_alone, done, m);
    else
        workq_submit_then(disk, commit_stage, committer, done, m);
}

void commit_batch(void **args, unsigned n, void *ctx)
{
    struct commit_config *cc = ctx;
    struct message **m = (struct message **)args;
    for (unsigned i = 0; i < n; i++)
        if (!m[i]->stage.staged) /* sent here directly by commit_submit */
            commit_stage(m[i]);
    unsigned nj = 0; /* m[0..nj) take the journal path, the rest the direct one */
    for (unsigned i = 0; i < n; i++) {
        if (journal_eligible(cc, m[i])) {
            struct message *t = m[nj];
            m[nj++] = m[i];
            m[i] = t;
        }
    }
    commit_journaled(cc ? cc->journal : NULL, m, nj);
    commit_direct(m + nj, n - nj);
    for (unsigned i = 0; i < n; i++) {
        if (m[i]->status == COMMIT_OK) {
            maildir_drop_tmp(m[i]); /* the links in new/ keep the file */
            count_in_quotas(m[i]);
        } else {
            clean_up(m[i]);
        }
    }
}
