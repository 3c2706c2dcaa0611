/* journal_recover.c - opening the commit journal at start-up: create it when missing, otherwise
 * replay every record not retired (a crash or kill came before its checkpoint): each Maildir file the
 * record names must hold exactly the record's bytes, in new/ or - moved there by a mail reader, with
 * its flags - in cur/; a missing, short or different file is written back through tmp/ and renamed
 * into place - unless a later cancel record names it (its links failed; the client got a 451). Then
 * one syncfs() makes every file written back durable, and only then does a new epoch start with an
 * empty ring (a crash during recovery replays the same records again).
 * Never: retire a record whose files are not on disk, or start when a file cannot be restored. */
#include "journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "journal_priv.h"
#include "journal_record.h"
#include "log.h"
#include "strmap.h"

/* True when path holds exactly len bytes equal to data. */
static bool file_has(const char *path, const char *data, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0)
        return false;
    bool same = fstat(fd, &st) == 0 && (size_t)st.st_size == len;
    char buf[65536];
    for (size_t off = 0; same && off < len;) {
        ssize_t r = read(fd, buf, len - off < sizeof buf ? len - off : sizeof buf);
        if (r <= 0 || memcmp(buf, data + off, (size_t)r) != 0)
            same = false;
        else
            off += (size_t)r;
    }
    close(fd);
    return same;
}

/* What a replay keeps: the names in each mailbox's cur/, read once per mailbox (a reader may have
 * moved many of the records' files there): "dir\nbase" -> the entry's name, where base is the
 * name before the Maildir flags (":2,S"); and the mail file system, which the replay's last
 * syncfs() flushes. Only names from the oldest record's time on are kept (Postern's names start
 * with their time in seconds): a mailbox's older mail, maybe millions of files, is skipped. */
struct replay_state {
    struct strmap dirs_read;
    struct strmap entries;
    dev_t mail_dev;
    long long since; /* -1 until the first (oldest) record is read */
};

/* A day of slack for a clock set back between deliveries: a name older than that is written back
 * to new/ again, a duplicate at worst. */
#define CUR_INDEX_SLACK_SECONDS 86400

/* The time in seconds a Maildir name starts with ("1796107916.M..."), or -1. */
static long long name_time(const char *name)
{
    char *end;
    long long t = strtoll(name, &end, 10);
    return end != name && *end == '.' ? t : -1;
}

/* Adds the entries of dir/cur named since c->since to the index. False when out of memory. */
static bool read_cur(struct replay_state *c, const char *dir)
{
    char cur[PATH_MAX], key[PATH_MAX + NAME_MAX + 2];
    snprintf(cur, sizeof cur, "%s/cur", dir);
    if (!strmap_put(&c->dirs_read, dir, NULL))
        return false;
    DIR *d = opendir(cur);
    if (!d)
        return true; /* no cur/ yet: nothing was moved */
    bool ok = true;
    for (struct dirent *e; ok && (e = readdir(d));) {
        if (e->d_name[0] == '.' || name_time(e->d_name) < c->since - CUR_INDEX_SLACK_SECONDS)
            continue;
        size_t base = strcspn(e->d_name, ":");
        snprintf(key, sizeof key, "%s\n%.*s", dir, (int)base, e->d_name);
        ok = strmap_put(&c->entries, key, e->d_name);
    }
    closedir(d);
    return ok;
}

/* Looks name up in dir/cur: its path there (with flags) in path, or false. */
static bool find_in_cur(struct replay_state *c, const char *dir, const char *name, char *path, size_t size)
{
    char key[PATH_MAX + NAME_MAX + 2];
    const char *entry;
    if (!strmap_get(&c->dirs_read, dir, NULL) && !read_cur(c, dir))
        return false; /* out of memory: the file is written back to new/, a duplicate at worst */
    snprintf(key, sizeof key, "%s\n%s", dir, name);
    if (!strmap_get(&c->entries, key, &entry))
        return false;
    snprintf(path, size, "%s/cur/%s", dir, entry);
    return true;
}

/* Writes data to target through dir/tmp/name. Flushed only when dir is not on the mail file
 * system: the replay ends with one syncfs() of that before any record is retired. */
static int restore_file(const char *dir, const char *name, const char *target, const char *data, size_t len,
                        dev_t mail_dev)
{
    char tmp[PATH_MAX], sub[PATH_MAX];
    static const char *const subdirs[] = {"tmp", "cur", "new"};
    for (size_t i = 0; i < sizeof subdirs / sizeof *subdirs; i++) {
        snprintf(sub, sizeof sub, "%s/%s", dir, subdirs[i]);
        if (mkdir_parents(sub, 0700) < 0)
            return -1;
    }
    snprintf(tmp, sizeof tmp, "%s/tmp/%s", dir, name);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    for (size_t off = 0; off < len;) {
        ssize_t r = write(fd, data + off, len - off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            close(fd);
            unlink(tmp);
            return -1;
        }
        off += (size_t)r;
    }
    struct stat st;
    bool flush = fstat(fd, &st) < 0 || st.st_dev != mail_dev;
    if ((flush && fsync(fd) < 0) || close(fd) < 0 || rename(tmp, target) < 0) {
        unlink(tmp);
        return -1;
    }
    if (flush) { /* the directory that got the name: new/ or cur/ */
        snprintf(sub, sizeof sub, "%s", target);
        *strrchr(sub, '/') = '\0';
        return fsync_dir(sub);
    }
    return 0;
}

/* Makes sure every Maildir file of one record holds the record's bytes, in new/ or in cur/ when a
 * reader moved it there (a power cut can leave it empty in either); counts what it wrote back. */
static int replay_entry(const struct journal_entry *e, struct replay_state *cur, struct journal_recovery *rec,
                        char *err, size_t errsz)
{
    if (cur->since < 0)
        cur->since = name_time(e->name);
    for (size_t i = 0; i < e->ndirs; i++) {
        char dir[PATH_MAX], path[PATH_MAX], moved[PATH_MAX];
        snprintf(dir, sizeof dir, "%.*s", (int)e->dir_lens[i], e->dirs[i]);
        snprintf(path, sizeof path, "%s/new/%s", dir, e->name);
        if (file_has(path, e->content, e->content_len))
            continue;
        const char *target = path;
        if (access(path, F_OK) < 0 && find_in_cur(cur, dir, e->name, moved, sizeof moved)) {
            if (file_has(moved, e->content, e->content_len))
                continue;
            target = moved;
        }
        if (restore_file(dir, e->name, target, e->content, e->content_len, cur->mail_dev) < 0) {
            snprintf(err, errsz, "cannot restore %s from the journal: %s", target, strerror(errno));
            return -1;
        }
        log_info("event=journal_restored path=%s size=%zu", target, e->content_len);
        rec->restored++;
    }
    return 0;
}

enum record_read { RECORD_READ, RECORD_NONE, RECORD_FAILED };

/* Reads the record at pos if it is the one expected (epoch, seq, crc); its payload in *payload.
 * RECORD_NONE: no such record there (the end of the records, or a write the crash cut short);
 * RECORD_FAILED: the file could not be read or the payload not held (errno set) - the records
 * after it may hold acknowledged mail, so recovery must stop rather than take it for the end. */
static enum record_read read_record(struct journal *j, uint64_t pos, uint64_t seq, char **payload, uint32_t *len)
{
    unsigned char h[JOURNAL_RECORD_HEADER];
    uint32_t epoch, crc;
    uint64_t s;
    if (pos + JOURNAL_RECORD_HEADER > j->size)
        return RECORD_NONE;
    ssize_t got = pread(j->fd, h, sizeof h, (off_t)pos);
    if (got < 0)
        return RECORD_FAILED;
    if (got != (ssize_t)sizeof h || !journal_record_header_decode(h, len, &epoch, &s, &crc) || epoch != j->epoch ||
        s != seq || *len > j->size - pos - JOURNAL_RECORD_HEADER)
        return RECORD_NONE;
    char *p = malloc(*len ? *len : 1);
    if (!p)
        return RECORD_FAILED;
    got = pread(j->fd, p, *len, (off_t)(pos + JOURNAL_RECORD_HEADER));
    if (got != (ssize_t)*len || journal_crc_update(0, p, *len) != crc) {
        int saved = errno;
        free(p);
        errno = saved;
        return got < 0 ? RECORD_FAILED : RECORD_NONE;
    }
    *payload = p;
    return RECORD_READ;
}

/* Called for each readable record of a walk with its parsed entry and seq; -1 stops the walk. */
typedef int (*record_visit_fn)(const struct journal_entry *e, uint64_t seq, void *ctx);

/* Walks the records from the header's tail (offset, seq) to the last one written, in order, and
 * visits each; sets *end_seq to the seq after the last. -1 when a visit failed (it wrote err) or
 * a record could not be read (written here). Logs a record it cannot parse when log_unreadable
 * (the last of the walks does). */
static int walk(struct journal *j, uint64_t tail, uint64_t seq, record_visit_fn visit, void *ctx, bool log_unreadable,
                uint64_t *end_seq, char *err, size_t errsz)
{
    uint64_t pos = tail;
    int result = 0;
    for (;;) {
        char *payload = NULL;
        uint32_t len;
        enum record_read r = read_record(j, pos, seq, &payload, &len);
        if (r == RECORD_NONE && pos != JOURNAL_DATA_START) {
            r = read_record(j, JOURNAL_DATA_START, seq, &payload, &len);
            if (r != RECORD_NONE)
                pos = JOURNAL_DATA_START; /* the writer wrapped here */
        }
        if (r == RECORD_NONE)
            break; /* the end of the records */
        struct journal_entry *e = r == RECORD_READ ? malloc(sizeof *e) : NULL;
        if (!e) {
            snprintf(err, errsz, "cannot read the journal %s at offset %llu: %s", j->path, (unsigned long long)pos,
                     strerror(errno));
            free(payload);
            result = -1;
            break;
        }
        if (journal_parse_payload(payload, len, e))
            result = visit(e, seq, ctx);
        else if (log_unreadable)
            log_error("event=journal_record_unreadable path=%s offset=%llu seq=%llu", j->path,
                      (unsigned long long)pos, (unsigned long long)seq);
        free(e);
        free(payload);
        if (result < 0)
            break;
        pos += JOURNAL_RECORD_HEADER + len;
        seq++;
    }
    *end_seq = seq;
    return result;
}

/* The key a seq has in the set of cancelled records. */
static void seq_key(uint64_t seq, char *key, size_t size)
{
    snprintf(key, size, "%llu", (unsigned long long)seq);
}

struct replay_pass {
    struct replay_state state;
    struct strmap cancelled;
    struct journal_recovery *rec;
    char *err;
    size_t errsz;
};

/* First pass: notes the seqs that cancel records name (messages whose links failed after their
 * record was written: their clients got a 451). */
static int collect_cancels(const struct journal_entry *e, uint64_t seq, void *ctx)
{
    struct replay_pass *p = ctx;
    (void)seq;
    char key[24];
    for (size_t i = 0; i < e->ncancels; i++) {
        seq_key(e->cancels[i], key, sizeof key);
        if (!strmap_put(&p->cancelled, key, NULL)) {
            snprintf(p->err, p->errsz, "out of memory reading the journal's cancel records");
            return -1;
        }
    }
    return 0;
}

/* Second pass: replays each message record that no cancel record names. */
static int replay_record(const struct journal_entry *e, uint64_t seq, void *ctx)
{
    struct replay_pass *p = ctx;
    char key[24];
    if (e->ncancels > 0)
        return 0;
    p->rec->records++;
    seq_key(seq, key, sizeof key);
    if (strmap_get(&p->cancelled, key, NULL)) {
        p->rec->cancelled++;
        return 0;
    }
    return replay_entry(e, &p->state, p->rec, p->err, p->errsz);
}

/* Replays the records from the header's tail: first the cancel records are read, then every other
 * record is replayed. Leaves head_seq after the last. */
static int replay(struct journal *j, uint64_t tail, uint64_t seq, struct journal_recovery *rec, char *err,
                  size_t errsz)
{
    struct replay_pass p = {.rec = rec, .err = err, .errsz = errsz};
    struct stat st;
    strmap_init(&p.state.dirs_read);
    strmap_init(&p.state.entries);
    strmap_init(&p.cancelled);
    p.state.mail_dev = fstat(j->mail_fd, &st) == 0 ? st.st_dev : (dev_t)-1; /* unknown: flush every file */
    p.state.since = -1;
    uint64_t end_seq;
    int result = walk(j, tail, seq, collect_cancels, &p, false, &end_seq, err, errsz);
    if (result == 0)
        result = walk(j, tail, seq, replay_record, &p, true, &end_seq, err, errsz);
    strmap_free(&p.state.dirs_read);
    strmap_free(&p.state.entries);
    strmap_free(&p.cancelled);
    j->head_seq = end_seq;
    return result;
}

/* Writes zeros over the whole file. posix_fallocate leaves "unwritten" extents: the first write
 * into each block would then change the extent tree, and every fdatasync of the first lap would
 * flush that metadata too (measured here: 150-185 us per append+fdatasync on unwritten blocks,
 * 125-148 us on written ones). Writing the ring once at creation makes every later fdatasync a
 * data-only flush (as databases pre-fill their log segments). */
static int write_zeros(int fd, uint64_t size)
{
    enum { CHUNK = 1 << 20 };
    char *zeros = calloc(1, CHUNK);
    if (!zeros)
        return -1;
    int r = 0;
    for (uint64_t at = 0; at < size && r == 0; at += CHUNK) {
        size_t n = size - at < CHUNK ? (size_t)(size - at) : CHUNK;
        if (pwrite(fd, zeros, n, (off_t)at) != (ssize_t)n)
            r = -1;
    }
    free(zeros);
    return r;
}

/* Creates a fresh journal of the given size: a temporary file, allocated, zero-filled, header,
 * renamed (the fsync before the rename covers the zeros). */
static int create_journal(struct journal *j)
{
    char tmp[PATH_MAX + 8], dir[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.new", j->path);
    int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    int e = posix_fallocate(fd, 0, (off_t)j->size);
    if (e != 0 || write_zeros(fd, j->size) < 0) {
        e = e ? e : errno;
        close(fd);
        unlink(tmp);
        errno = e;
        return -1;
    }
    j->fd = fd;
    j->serial = 0;
    j->epoch = 1;
    if (journal_write_header(j, JOURNAL_DATA_START, 1) < 0 || fsync(fd) < 0 || rename(tmp, j->path) < 0) {
        close(fd);
        unlink(tmp);
        j->fd = -1;
        return -1;
    }
    snprintf(dir, sizeof dir, "%s", j->path);
    *strrchr(dir, '/') = '\0';
    j->head = JOURNAL_DATA_START;
    j->head_seq = 1;
    return fsync_dir(dir);
}

/* Reads the newer valid header slot of an open journal. */
static bool read_header(struct journal *j, struct journal_header *h)
{
    unsigned char slots[2][JOURNAL_SLOT_SIZE];
    struct journal_header hs[2];
    bool ok[2];
    for (int i = 0; i < 2; i++)
        ok[i] = pread(j->fd, slots[i], JOURNAL_SLOT_SIZE, (off_t)i * JOURNAL_SLOT_SIZE) == JOURNAL_SLOT_SIZE &&
                journal_header_decode(slots[i], &hs[i]);
    if (!ok[0] && !ok[1])
        return false;
    *h = ok[0] && (!ok[1] || hs[0].serial > hs[1].serial) ? hs[0] : hs[1];
    return true;
}

/* Recovers an existing journal file; *recreate is set when it has the wrong size (after recovery). */
static int recover_existing(struct journal *j, struct journal_recovery *rec, bool *recreate, char *err, size_t errsz)
{
    struct stat st;
    struct journal_header h;
    uint64_t configured = j->size;
    if (fstat(j->fd, &st) < 0 || (uint64_t)st.st_size < JOURNAL_DATA_START + 4096 || !read_header(j, &h)) {
        log_warn("event=journal_unreadable path=%s action=recreate", j->path); /* torn at creation */
        *recreate = true;
        return 0;
    }
    j->size = (uint64_t)st.st_size;
    j->epoch = h.epoch;
    j->serial = h.serial;
    if (h.tail_offset < JOURNAL_DATA_START || h.tail_offset > j->size) {
        snprintf(err, errsz, "journal %s: header names offset %llu outside the file", j->path,
                 (unsigned long long)h.tail_offset);
        return -1;
    }
    if (replay(j, h.tail_offset, h.tail_seq, rec, err, errsz) < 0)
        return -1;
    if (rec->records > 0 && syncfs(j->mail_fd) < 0) { /* files seen in the page cache: now on disk */
        snprintf(err, errsz, "cannot flush %s: %s", j->mail_dir, strerror(errno));
        return -1;
    }
    j->epoch++; /* stale bytes of this run can never be read as records again */
    if (journal_write_header(j, JOURNAL_DATA_START, j->head_seq) < 0) {
        snprintf(err, errsz, "cannot write the journal header %s: %s", j->path, strerror(errno));
        return -1;
    }
    j->head = JOURNAL_DATA_START;
    *recreate = j->size != configured;
    j->size = configured;
    return 0;
}

struct journal *journal_open(const char *spool_dir, const char *mail_dir, uint64_t size, unsigned interval,
                             struct journal_recovery *rec, char *err, size_t errsz)
{
    struct journal *j = calloc(1, sizeof *j);
    memset(rec, 0, sizeof *rec);
    if (!j) {
        snprintf(err, errsz, "out of memory");
        return NULL;
    }
    snprintf(j->path, sizeof j->path, "%s/journal", spool_dir);
    snprintf(j->mail_dir, sizeof j->mail_dir, "%s", mail_dir);
    j->size = size;
    j->interval = interval;
    j->mail_fd = open(mail_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (j->mail_fd < 0) {
        snprintf(err, errsz, "cannot open %s: %s", mail_dir, strerror(errno));
        free(j);
        return NULL;
    }
    j->fd = open(j->path, O_RDWR | O_CLOEXEC);
    bool recreate = j->fd < 0;
    if (j->fd < 0 && errno != ENOENT) {
        snprintf(err, errsz, "cannot open %s: %s", j->path, strerror(errno));
        close(j->mail_fd);
        free(j);
        return NULL;
    }
    if (j->fd >= 0 && recover_existing(j, rec, &recreate, err, errsz) < 0) {
        close(j->fd);
        close(j->mail_fd);
        free(j);
        return NULL;
    }
    if (recreate) {
        if (j->fd >= 0)
            close(j->fd);
        if (create_journal(j) < 0) {
            snprintf(err, errsz, "cannot create %s (%llu bytes): %s", j->path, (unsigned long long)size,
                     strerror(errno));
            if (j->fd >= 0)
                close(j->fd);
            close(j->mail_fd);
            free(j);
            return NULL;
        }
    }
    if (journal_start_thread(j) < 0) {
        snprintf(err, errsz, "cannot start the journal's checkpoint thread");
        close(j->fd);
        close(j->mail_fd);
        free(j);
        return NULL;
    }
    return j;
}
