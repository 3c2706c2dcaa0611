/* queue_file.c - queue file envelope reader and delivery state files. State file format:
 *   POSTERN-STATE 1
 *   attempts <n> / next <unix time> / warned 0|1
 *   r <index> P|D|F <remote host>|- <diagnostic text>|-   (one per recipient with news)
 *   END
 * A state file without its END line is ignored (the previous attempt's one was replaced atomically,
 * so this only happens to a hand-edited file): the recipients are simply tried again. */
#include "queue_file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "message.h"

#define MAX_QUEUE_RCPTS 100000

void qfile_free(struct qfile *q)
{
    for (size_t i = 0; i < q->nrcpts; i++) {
        free(q->rcpts[i].addr);
        free(q->rcpts[i].orcpt);
        free(q->rcpts[i].diag);
        free(q->rcpts[i].remote_mta);
    }
    free(q->rcpts);
    free(q->sender);
    free(q->envid);
    memset(q, 0, sizeof *q);
}

/* Copies the line's value after "key " into a new string ("-" means none -> NULL when dash_null). */
static char *dup_value(const char *v, size_t n, bool dash_null)
{
    if (dash_null && n == 1 && v[0] == '-')
        return NULL;
    return strndup(v, n);
}

/* Digits only, within v[0..n) (the buffer has no terminating NUL); false when empty, not digits
 * or too large. */
static bool parse_uint(const char *v, size_t n, unsigned long long *out)
{
    unsigned long long x = 0;
    if (n == 0 || n > 19)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return false;
        x = x * 10 + (unsigned long long)(v[i] - '0');
    }
    *out = x;
    return true;
}

/* One "rcpt <notify> <orcpt>|- <addr>" line. */
static int parse_rcpt_line(const char *v, size_t n, struct qfile *q)
{
    const char *end = v + n, *sp1 = memchr(v, ' ', n);
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(end - sp1 - 1)) : NULL;
    if (!sp2 || sp2 + 1 >= end || q->nrcpts >= MAX_QUEUE_RCPTS)
        return -1;
    struct qrcpt *r = realloc(q->rcpts, (q->nrcpts + 1) * sizeof *r);
    if (!r)
        return -1;
    q->rcpts = r;
    r = &q->rcpts[q->nrcpts++];
    memset(r, 0, sizeof *r);
    r->status = QR_PENDING;
    unsigned long long notify;
    if (!parse_uint(v, (size_t)(sp1 - v), &notify) || notify > 15)
        return -1;
    r->notify = (unsigned)notify;
    r->orcpt = dup_value(sp1 + 1, (size_t)(sp2 - sp1 - 1), true);
    r->addr = strndup(sp2 + 1, (size_t)(end - sp2 - 1));
    return r->addr ? 0 : -1;
}

/* The start of a line (len bytes at p) as text for an error that goes into quoted log values:
 * cut to fit out, control bytes and double quotes as '?'. Returns out. */
static const char *line_excerpt(const char *p, size_t len, char *out, size_t outsz)
{
    size_t n = len < outsz - 1 ? len : outsz - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        out[i] = p[i];
        if (c < 0x20 || c == 0x7f || c == '"')
            out[i] = '?';
    }
    out[n] = '\0';
    return out;
}

int qfile_parse_envelope(const char *data, size_t n, struct qfile *q, char *err, size_t errsz)
{
    memset(q, 0, sizeof *q);
    const char *p = data, *end = data + n;
    bool first = true;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            break;
        size_t len = (size_t)(nl - p);
        const char *sp = memchr(p, ' ', len);
        size_t klen = sp ? (size_t)(sp - p) : len;
        const char *v = sp ? sp + 1 : nl;
        size_t vlen = (size_t)(nl - v);
#define KEY(k) (klen == sizeof(k) - 1 && memcmp(p, (k), klen) == 0)
        int bad = 0;
        if (first) {
            bad = !(KEY("POSTERN-QUEUE") && vlen == 1 && v[0] == '2');
            first = false;
        } else if (KEY("id")) {
            bad = vlen == 0 || vlen >= sizeof q->qid;
            if (!bad)
                memcpy(q->qid, v, vlen), q->qid[vlen] = '\0';
        } else if (KEY("created")) {
            unsigned long long t;
            bad = !parse_uint(v, vlen, &t);
            q->created = bad ? 0 : (long long)t;
        } else if (KEY("sender")) {
            bad = q->sender || !(q->sender = strndup(v, vlen));
        } else if (KEY("smtputf8")) {
            q->smtputf8 = vlen && v[0] == '1';
        } else if (KEY("body8bit")) {
            q->body8bit = vlen && v[0] == '1';
        } else if (KEY("tlsoptional")) {
            q->tls_optional = vlen && v[0] == '1';
        } else if (KEY("requiretls")) {
            q->require_tls = vlen && v[0] == '1';
        } else if (KEY("ret")) {
            q->ret = vlen == 4 && !memcmp(v, "FULL", 4) ? RET_FULL : vlen == 4 && !memcmp(v, "HDRS", 4) ? RET_HDRS : RET_UNSET;
        } else if (KEY("envid")) {
            bad = q->envid != NULL; /* twice: not a file we wrote */
            if (!bad)
                q->envid = dup_value(v, vlen, true);
        } else if (KEY("rcpt")) {
            bad = parse_rcpt_line(v, vlen, q) < 0;
        } else if (KEY("message")) {
            unsigned long long size;
            q->body_offset = (size_t)(nl + 1 - data);
            bad = !parse_uint(v, vlen, &size) || !q->sender || !q->qid[0] || q->nrcpts == 0;
            q->size = bad ? 0 : (size_t)size;
            if (bad)
                snprintf(err, errsz, "queue file envelope incomplete (sender, id or recipients missing)");
            return bad ? -1 : 0;
        }
#undef KEY
        if (bad) {
            char shown[41];
            snprintf(err, errsz, "malformed queue file line '%s'", line_excerpt(p, len, shown, sizeof shown));
            return -1;
        }
        p = nl + 1;
    }
    snprintf(err, errsz, "queue file has no message line");
    return -1;
}

/* "<index> P|D|F|R|T <remote>|- <diag>|-" */
static void parse_rcpt_state(const char *s, struct qfile *q)
{
    char *end;
    unsigned long idx = strtoul(s, &end, 10);
    if (end == s || *end != ' ' || idx >= q->nrcpts)
        return;
    char status = end[1];
    if (!status || !strchr("PDFRT", status) || end[2] != ' ')
        return;
    const char *remote = end + 3, *sp = strchr(remote, ' ');
    if (!sp)
        return;
    struct qrcpt *r = &q->rcpts[idx];
    r->status = (enum qrcpt_status)status;
    free(r->remote_mta);
    free(r->diag);
    bool no_remote = sp - remote == 1 && remote[0] == '-';
    r->remote_mta = no_remote ? NULL : strndup(remote, (size_t)(sp - remote));
    r->diag = strcmp(sp + 1, "-") ? strdup(sp + 1) : NULL;
}

int qfile_parse_state(const char *data, size_t n, struct qfile *q, char *err, size_t errsz)
{
    static const char magic[] = "POSTERN-STATE 1\n";
    if (n < sizeof magic - 1 || memcmp(data, magic, sizeof magic - 1) != 0 || n < 4 ||
        memcmp(data + n - 4, "END\n", 4) != 0) {
        snprintf(err, errsz, "state file incomplete");
        return -1;
    }
    const char *p = data + sizeof magic - 1, *end = data + n - 4;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            break;
        char line[2048];
        size_t len = (size_t)(nl - p) < sizeof line - 1 ? (size_t)(nl - p) : sizeof line - 1;
        memcpy(line, p, len);
        line[len] = '\0';
        if (strncmp(line, "attempts ", 9) == 0) {
            q->attempts = (unsigned)strtoul(line + 9, NULL, 10);
        } else if (strncmp(line, "next ", 5) == 0) {
            q->next_attempt = strtoll(line + 5, NULL, 10);
        } else if (strcmp(line, "warned 1") == 0) {
            q->warned = true;
        } else if (strncmp(line, "r ", 2) == 0) {
            parse_rcpt_state(line + 2, q);
        }
        p = nl + 1;
    }
    return 0;
}

char *qfile_map(const char *path, size_t *n)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0)
        return NULL;
    int failed = fstat(fd, &st) < 0 ? errno : st.st_size <= 0 ? ENODATA : 0;
    if (failed) {
        close(fd);
        errno = failed;
        return NULL;
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return NULL;
    *n = (size_t)st.st_size;
    return map;
}

int qfile_load(const char *spool_dir, const char *dir, const char *qid, struct qfile *q, char *err, size_t errsz)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s/%s", spool_dir, dir, qid);
    size_t n;
    char *map = qfile_map(path, &n);
    if (!map) {
        snprintf(err, errsz, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    int rc = qfile_parse_envelope(map, n, q, err, errsz);
    munmap(map, n);
    if (rc == 0 && strcmp(q->qid, qid) != 0) { /* copied under another name: see spool_recover */
        snprintf(err, errsz, "queue file %s names itself %s in its id line", path, q->qid);
        rc = -1;
    }
    if (rc < 0) {
        qfile_free(q);
        return -1;
    }
    snprintf(path, sizeof path, "%s/state/%s", spool_dir, qid);
    if ((map = qfile_map(path, &n)) != NULL) {
        char ignored[64];
        qfile_parse_state(map, n, q, ignored, sizeof ignored);
        munmap(map, n);
    }
    return 0;
}

char *qfile_read_message(const char *spool_dir, const char *dir, const struct qfile *q, char *err, size_t errsz)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s/%s", spool_dir, dir, q->qid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    char *buf = malloc(q->size + 1);
    ssize_t got = -1;
    if (fd >= 0 && buf)
        got = pread(fd, buf, q->size, (off_t)q->body_offset);
    if (fd >= 0)
        close(fd);
    if (got != (ssize_t)q->size) {
        snprintf(err, errsz, "cannot read the message from %s: %s", path, got < 0 ? strerror(errno) : "short file");
        free(buf);
        return NULL;
    }
    buf[q->size] = '\0';
    return buf;
}

/* Writes one text field for a state line: no newlines, "-" when empty. */
static void put_field(FILE *f, const char *s, bool stop_at_space)
{
    if (!s || !*s) {
        fputc('-', f);
        return;
    }
    for (; *s; s++)
        fputc(*s == '\n' || *s == '\r' || (stop_at_space && *s == ' ') ? '_' : *s, f);
}

int qfile_save_state(const char *spool_dir, const struct qfile *q)
{
    char dir[PATH_MAX], tmp[PATH_MAX], final[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/state", spool_dir);
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return -1;
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, q->qid);
    snprintf(final, sizeof final, "%s/%s", dir, q->qid);
    FILE *f = fopen(tmp, "we");
    if (!f)
        return -1;
    fprintf(f, "POSTERN-STATE 1\nattempts %u\nnext %lld\nwarned %d\n", q->attempts, q->next_attempt, q->warned);
    for (size_t i = 0; i < q->nrcpts; i++) {
        const struct qrcpt *r = &q->rcpts[i];
        if (r->status == QR_PENDING && !r->diag)
            continue;
        fprintf(f, "r %zu %c ", i, (char)r->status);
        put_field(f, r->remote_mta, true);
        fputc(' ', f);
        put_field(f, r->diag, false);
        fputc('\n', f);
    }
    fputs("END\n", f);
    int rc = fflush(f) == 0 && fsync(fileno(f)) == 0 ? 0 : -1;
    int saved = errno;
    if (fclose(f) != 0 && rc == 0)
        rc = -1, saved = errno;
    if (rc == 0 && rename(tmp, final) < 0)
        rc = -1, saved = errno;
    if (rc == 0 && fsync_dir(dir) < 0)
        rc = -1, saved = errno;
    if (rc < 0)
        unlink(tmp);
    errno = saved;
    return rc;
}

int qfile_remove(const char *spool_dir, const char *dir, const char *qid)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s/%s", spool_dir, dir, qid);
    if (unlink(path) < 0)
        return -1;
    snprintf(path, sizeof path, "%s/%s", spool_dir, dir);
    int rc = fsync_dir(path);
    int saved = errno;
    snprintf(path, sizeof path, "%s/state/%s", spool_dir, qid);
    unlink(path); /* a state file left alone is harmless: start-up removes orphans */
    errno = saved;
    return rc;
}

const char *qfile_where(const char *spool_dir, const char *qid)
{
    static const char *const dirs[] = {"queue", "hold"};
    char path[PATH_MAX];
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s/%s", spool_dir, dirs[i], qid);
        if (access(path, F_OK) == 0)
            return dirs[i];
    }
    return NULL;
}

bool qfile_id_valid(const char *name)
{
    size_t n = strlen(name);
    return n > 0 && n < 24 && strspn(name, "0123456789ABCDEF") == n;
}

size_t qfile_header_length(const char *text, size_t len)
{
    if (len && text[0] == '\n')
        return 0; /* it starts with the empty line: no header fields */
    for (size_t i = 0; i + 1 < len; i++)
        if (text[i] == '\n' && text[i + 1] == '\n')
            return i + 1;
    return len;
}
