/* journal.c - the commit journal's writer and its checkpoint thread (format: journal_record.h).
 * The committer thread appends records with pwritev into a preallocated ring and makes them durable
 * with one fdatasync (the file never grows, so no metadata has to be flushed with it), then links the
 * messages into new/ (a failed link gets a cancel record) and hands the records to the checkpoint. The
 * checkpoint thread, every `interval` seconds while records wait or sooner when a quarter of the
 * ring is used, calls syncfs() on the mail file system - every Maildir file of those records is then
 * on disk - and moves the header's tail past them (header slot written, fdatasync). Never: let
 * a record be overwritten before a checkpoint retired it, or write on the event loop thread. */
#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "fileio.h"
#include "journal_priv.h"
#include "journal_record.h"
#include "log.h"
#include "message.h"

/* ---------- checkpoints ---------- */

/* Writes the header slot after the current one and makes it durable. */
int journal_write_header(struct journal *j, uint64_t tail, uint64_t tail_seq)
{
    unsigned char slot[JOURNAL_SLOT_SIZE];
    struct journal_header h = {j->serial + 1, j->epoch, tail, tail_seq};
    journal_header_encode(&h, slot);
    off_t where = (off_t)((h.serial % 2) * JOURNAL_SLOT_SIZE);
    if (pwrite(j->fd, slot, sizeof slot, where) != (ssize_t)sizeof slot || fdatasync(j->fd) < 0)
        return -1;
    j->serial = h.serial;
    return 0;
}

/* Checkpoint thread: flushes the mail file system, then retires every record appended before. */
static bool checkpoint(struct journal *j, uint64_t head, uint64_t head_seq)
{
    if (syncfs(j->mail_fd) < 0) {
        log_error("event=journal_checkpoint_failed step=syncfs path=%s error=\"%s\"", j->mail_dir, strerror(errno));
        return false;
    }
    if (journal_write_header(j, head, head_seq) < 0) {
        log_error("event=journal_checkpoint_failed step=header path=%s error=\"%s\"", j->path, strerror(errno));
        return false;
    }
    return true;
}

static bool checkpoint_due(const struct journal *j)
{
    if (j->used == 0)
        return false;
    if (j->want_checkpoint || j->stopping)
        return true;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec - j->last_checkpoint.tv_sec >= (time_t)j->interval;
}

static void *checkpoint_main(void *arg)
{
    struct journal *j = arg;
    pthread_mutex_lock(&j->lock);
    while (!(j->stopping && (j->used == 0 || j->failed))) {
        if (j->failed || !checkpoint_due(j)) {
            struct timespec until = j->last_checkpoint;
            until.tv_sec += j->interval;
            if (j->used == 0 || j->failed)
                pthread_cond_wait(&j->wake, &j->lock);
            else
                pthread_cond_timedwait(&j->wake, &j->lock, &until);
            continue;
        }
        uint64_t head = j->head, head_seq = j->head_seq, used = j->used;
        j->want_checkpoint = false;
        pthread_mutex_unlock(&j->lock);
        bool ok = checkpoint(j, head, head_seq);
        pthread_mutex_lock(&j->lock);
        clock_gettime(CLOCK_MONOTONIC, &j->last_checkpoint);
        if (ok) {
            j->used -= used;
            j->checkpoints++;
        } else {
            j->failed = true; /* the waiting records stay valid: a restart recovers them */
        }
        pthread_cond_broadcast(&j->space);
    }
    pthread_mutex_unlock(&j->lock);
    return NULL;
}

int journal_start_thread(struct journal *j)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&j->wake, &attr);
    pthread_condattr_destroy(&attr);
    pthread_cond_init(&j->space, NULL);
    pthread_mutex_init(&j->lock, NULL);
    clock_gettime(CLOCK_MONOTONIC, &j->last_checkpoint);
    if (pthread_create(&j->thread, NULL, checkpoint_main, j) != 0)
        return -1;
    pthread_setname_np(j->thread, "postern-ckpt");
    return 0;
}

void journal_close(struct journal *j)
{
    if (!j)
        return;
    pthread_mutex_lock(&j->lock);
    j->stopping = true;
    pthread_cond_signal(&j->wake);
    pthread_mutex_unlock(&j->lock);
    pthread_join(j->thread, NULL);
    log_info("event=journal_closed checkpoints=%llu full_waits=%llu pending_bytes=%llu",
             (unsigned long long)j->checkpoints, (unsigned long long)j->full_waits, (unsigned long long)j->used);
    pthread_cond_destroy(&j->wake);
    pthread_cond_destroy(&j->space);
    pthread_mutex_destroy(&j->lock);
    close(j->fd);
    close(j->mail_fd);
    free(j);
}

/* ---------- appending ---------- */

#define IOV_BATCH 1024

/* The iovecs of records being written at one contiguous place in the file. */
struct writer {
    struct journal *j;
    struct iovec iov[IOV_BATCH];
    int n;
    off_t at;       /* file offset of iov[0] */
    size_t pending; /* bytes in iov */
};

/* Writes the gathered iovecs at their offset. */
static int writer_flush(struct writer *w)
{
    if (write_iov_all(w->j->fd, w->iov, w->n, w->at) < 0)
        return -1;
    w->at += (off_t)w->pending;
    w->n = 0;
    w->pending = 0;
    return 0;
}

static int writer_add(struct writer *w, const void *p, size_t len)
{
    if (len == 0)
        return 0;
    if (w->n == IOV_BATCH && writer_flush(w) < 0)
        return -1;
    w->iov[w->n].iov_base = (void *)p;
    w->iov[w->n++].iov_len = len;
    w->pending += len;
    return 0;
}

/* The buffer's chunks, peeked without copying; *n set. NULL with *n = 0 when empty or out of memory
 * (*failed set then). */
static struct evbuffer_iovec *peek_all(struct evbuffer *b, int *n, bool *failed)
{
    *n = evbuffer_peek(b, -1, NULL, NULL, 0);
    struct evbuffer_iovec *vec = *n > 0 ? calloc((size_t)*n, sizeof *vec) : NULL;
    *failed = *n > 0 && !vec;
    if (!vec)
        *n = 0;
    else
        evbuffer_peek(b, -1, NULL, vec, *n);
    return vec;
}

/* Folds an evbuffer's bytes into crc. -1 when out of memory. */
static int crc_evbuffer(struct evbuffer *b, uint32_t *crc)
{
    int n;
    bool failed;
    struct evbuffer_iovec *vec = peek_all(b, &n, &failed);
    for (int i = 0; i < n; i++)
        *crc = journal_crc_update(*crc, vec[i].iov_base, vec[i].iov_len);
    free(vec);
    return failed ? -1 : 0;
}

/* Adds an evbuffer's chunks to the writer (no copy). */
static int writer_add_evbuffer(struct writer *w, struct evbuffer *b)
{
    int n;
    bool failed;
    struct evbuffer_iovec *vec = peek_all(b, &n, &failed);
    int r = failed ? -1 : 0;
    for (int i = 0; i < n && r == 0; i++)
        r = writer_add(w, vec[i].iov_base, vec[i].iov_len);
    free(vec);
    return r;
}

/* The record's meta lines (name, dirs, blank line) in a new string; *len set. */
static char *record_meta(const struct message *m, size_t *len)
{
    size_t cap = 16 + strlen(m->stage.name);
    for (size_t i = 0; i < m->stage.ndirs; i++)
        cap += 6 + strlen(m->stage.dirs[i]);
    char *s = malloc(cap);
    if (!s)
        return NULL;
    size_t o = (size_t)snprintf(s, cap, "name %s\n", m->stage.name);
    for (size_t i = 0; i < m->stage.ndirs; i++)
        o += (size_t)snprintf(s + o, cap - o, "dir %s\n", m->stage.dirs[i]);
    o += (size_t)snprintf(s + o, cap - o, "\n");
    *len = o;
    return s;
}

bool journal_accepts(struct journal *j, size_t bytes, size_t ndirs)
{
    if (!j || ndirs == 0 || ndirs > JOURNAL_DIRS_MAX)
        return false;
    pthread_mutex_lock(&j->lock);
    bool ok = !j->failed && bytes + 4096 * ndirs + 512 <= (j->size - JOURNAL_DATA_START) / 4;
    pthread_mutex_unlock(&j->lock);
    return ok;
}

/* Waits until rec bytes fit at the head (asking for a checkpoint); fills where the record goes and
 * how many ring bytes it takes (with the end of the file skipped when it wraps). False on failure. */
static bool reserve(struct journal *j, uint64_t from, uint64_t used_by_batch, size_t rec, uint64_t *at,
                    uint64_t *taken)
{
    uint64_t waste = from + rec > j->size ? j->size - from : 0;
    *at = waste ? JOURNAL_DATA_START : from;
    *taken = waste + rec;
    unsigned waits = 0;
    pthread_mutex_lock(&j->lock);
    while (!j->failed && j->used + used_by_batch + *taken > j->size - JOURNAL_DATA_START) {
        if (used_by_batch > 0) { /* the batch's own records must be written before they can retire */
            pthread_mutex_unlock(&j->lock);
            return false;
        }
        j->want_checkpoint = true;
        j->full_waits++;
        waits++;
        pthread_cond_signal(&j->wake);
        pthread_cond_wait(&j->space, &j->lock);
    }
    bool ok = !j->failed;
    pthread_mutex_unlock(&j->lock);
    if (waits)
        log_debug("event=journal_full waits=%u record_bytes=%zu", waits, rec);
    return ok;
}

/* Publishes written and synced records: the checkpoint thread may now retire them. */
static void advance_head(struct journal *j, uint64_t head, uint64_t seq, uint64_t used)
{
    pthread_mutex_lock(&j->lock);
    bool was_quiet = j->used == 0; /* the checkpoint thread waits without a deadline then */
    j->head = head;
    j->head_seq = seq;
    j->used += used;
    if (j->used > (j->size - JOURNAL_DATA_START) / 4)
        j->want_checkpoint = true;
    /* wake it only when it must act or start counting its interval: not once per batch */
    if (was_quiet || j->want_checkpoint)
        pthread_cond_signal(&j->wake);
    pthread_mutex_unlock(&j->lock);
}

/* Appends one cancel record for seqs[0..n) and fdatasyncs it; 0 or -1. Every record before it is
 * published, so it may wait for a checkpoint to make room. */
static int append_cancel(struct journal *j, const uint64_t *seqs, size_t n)
{
    char payload[JOURNAL_CANCELS_MAX * JOURNAL_CANCEL_LINE_MAX + 1];
    size_t len = journal_cancel_payload(seqs, n, payload);
    uint64_t at, taken;
    if (!reserve(j, j->head, 0, JOURNAL_RECORD_HEADER + len, &at, &taken))
        return -1;
    unsigned char hdr[JOURNAL_RECORD_HEADER];
    journal_record_header_encode(hdr, (uint32_t)len, j->epoch, j->head_seq, journal_crc_update(0, payload, len));
    struct iovec iov[2] = {{hdr, sizeof hdr}, {payload, len}};
    if (write_iov_all(j->fd, iov, 2, (off_t)at) < 0 || fdatasync(j->fd) < 0)
        return -1;
    advance_head(j, at + JOURNAL_RECORD_HEADER + len, j->head_seq + 1, taken);
    log_info("event=journal_cancelled records=%zu first_seq=%llu", n, (unsigned long long)seqs[0]);
    return 0;
}

/* After m[0..n)'s records (seqs from first_seq; n <= JOURNAL_CANCELS_MAX) are on disk: publishes
 * each message, hands the records to the checkpoint (head, seq, used: after them), then cancels those
 * whose publish failed. */
static int publish_written(struct journal *j, struct message **m, unsigned n, journal_publish_fn publish,
                           uint64_t first_seq, uint64_t head, uint64_t seq, uint64_t used)
{
    uint64_t failed[JOURNAL_CANCELS_MAX];
    size_t nfailed = 0;
    for (unsigned k = 0; k < n; k++)
        if (!publish(m[k]))
            failed[nfailed++] = first_seq + k;
    advance_head(j, head, seq, used);
    return nfailed > 0 ? append_cancel(j, failed, nfailed) : 0;
}

/* Writes records for m[0..n) starting at the head, syncs them and publishes their messages; *done =
 * how many were written and synced (at most JOURNAL_CANCELS_MAX: the caller comes back for more). */
static int append_some(struct journal *j, struct message **m, unsigned n, journal_publish_fn publish,
                       unsigned *done)
{
    if (n > JOURNAL_CANCELS_MAX)
        n = JOURNAL_CANCELS_MAX;
    struct writer *w = malloc(sizeof *w); /* not calloc: zeroing its 16 KiB of iovecs was 17% of the
                                            * user-space instructions per message (callgrind) */
    char **metas = calloc(n, sizeof *metas);
    unsigned char(*hdrs)[JOURNAL_RECORD_HEADER] = calloc(n, JOURNAL_RECORD_HEADER);
    int r = (w && metas && hdrs) ? 0 : -1;
    uint64_t head = j->head, seq = j->head_seq, used = 0, first_seq = j->head_seq;
    unsigned k = 0;
    if (w) { /* field by field: a compound literal would zero the iovecs too */
        w->j = j;
        w->n = 0;
        w->at = (off_t)head;
        w->pending = 0;
    }
    for (; r == 0 && k < n; k++) {
        size_t mlen, blen = evbuffer_get_length(m[k]->headers) + evbuffer_get_length(m[k]->body);
        if (!(metas[k] = record_meta(m[k], &mlen))) {
            r = -1;
            break;
        }
        uint64_t at, taken;
        if (!reserve(j, head, used, JOURNAL_RECORD_HEADER + mlen + blen, &at, &taken))
            break; /* full: write what we have; the caller comes back for the rest */
        if (at != head && w->n > 0 && writer_flush(w) < 0) {
            r = -1;
            break;
        }
        if (w->n == 0)
            w->at = (off_t)at;
        uint32_t crc = journal_crc_update(0, metas[k], mlen);
        if (crc_evbuffer(m[k]->headers, &crc) < 0 || crc_evbuffer(m[k]->body, &crc) < 0) {
            r = -1;
            break;
        }
        journal_record_header_encode(hdrs[k], (uint32_t)(mlen + blen), j->epoch, seq, crc);
        if (writer_add(w, hdrs[k], JOURNAL_RECORD_HEADER) < 0 || writer_add(w, metas[k], mlen) < 0 ||
            writer_add_evbuffer(w, m[k]->headers) < 0 || writer_add_evbuffer(w, m[k]->body) < 0) {
            r = -1;
            break;
        }
        head = at + JOURNAL_RECORD_HEADER + mlen + blen;
        seq++;
        used += taken;
    }
    if (r == 0 && k > 0 && ((w->n > 0 && writer_flush(w) < 0) || fdatasync(j->fd) < 0))
        r = -1;
    if (r == 0 && k > 0)
        r = publish_written(j, m, k, publish, first_seq, head, seq, used);
    *done = r == 0 ? k : 0;
    for (unsigned i = 0; metas && i < n; i++)
        free(metas[i]);
    free(metas);
    free(hdrs);
    free(w);
    return r;
}

int journal_append(struct journal *j, struct message **m, unsigned n, journal_publish_fn publish, char *err,
                   size_t errsz)
{
    unsigned off = 0;
    while (off < n) {
        unsigned done = 0;
        if (append_some(j, m + off, n - off, publish, &done) < 0 || (done == 0 && j->failed)) {
            snprintf(err, errsz, "cannot write the journal %s: %s", j->path,
                     j->failed ? "a checkpoint failed" : strerror(errno));
            pthread_mutex_lock(&j->lock);
            j->failed = true; /* from now on every message takes the direct path */
            pthread_mutex_unlock(&j->lock);
            log_error("event=journal_failed path=%s error=\"%s\"", j->path, err);
            return -1;
        }
        off += done;
    }
    return 0;
}
