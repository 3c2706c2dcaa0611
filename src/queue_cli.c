/* queue_cli.c - `postern queue ...`: the administrator's view of spool_dir, run as a separate
 * process. It reads queue and state files directly; changes (delete, hold, release) are file
 * renames/unlinks, then the running server (spool_dir/postern.pid) is told to re-read its queue:
 * SIGUSR2, or SIGUSR1 for `flush` (retry everything now); only a server that holds the spool's
 * lock is signalled (spool_lock.c). */
#include "queue_cli.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "address.h"
#include "idn.h"
#include "queue_file.h"
#include "spool_lock.h"

/* Signals the server running on spool (spool_lock.c: only the pid of a live, locked pid file);
 * false (with a message) when none runs. */
static bool tell_server(const char *spool, int sig)
{
    long pid = spool_lock_holder(spool);
    if (pid < 0) {
        fprintf(stderr, "postern queue: the server is starting; it reads the queue when it has started\n");
        return false;
    }
    if (pid == 0) {
        fprintf(stderr, "postern queue: no server runs on %s; the change applies at its next start\n", spool);
        return false;
    }
    if (kill((pid_t)pid, sig) < 0) {
        fprintf(stderr, "postern queue: cannot signal the server (pid %ld): %s; run this as root or as its user\n",
                pid, strerror(errno));
        return false;
    }
    return true;
}

static void age_text(long long created, char *out, size_t outsz)
{
    long long s = (long long)time(NULL) - created;
    if (s < 0)
        s = 0;
    if (s < 3600)
        snprintf(out, outsz, "%lldm%02llds", s / 60, s % 60);
    else if (s < 86400)
        snprintf(out, outsz, "%lldh%02lldm", s / 3600, s % 3600 / 60);
    else
        snprintf(out, outsz, "%lldd%02lldh", s / 86400, s % 86400 / 3600);
}

/* True when spool/dir/name is still there: a file that failed to load because the server
 * delivered and removed it meanwhile is not worth a word. */
static bool still_there(const char *spool, const char *dir, const char *name)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s/%s", spool, dir, name);
    return access(path, F_OK) == 0;
}

/* A recipient's state in the words `queue list` and `queue show` print. */
static const char *status_words(enum qrcpt_status status)
{
    switch (status) {
    case QR_PENDING: return "pending";
    case QR_DELIVERED: return "delivered";
    case QR_FAILED_UNREPORTED: return "failed, report pending";
    case QR_RELAYED_UNREPORTED: return "delivered, report pending";
    default: return "failed";
    }
}

/* Which messages `queue list` shows and `queue delete|hold|release` acts on when no ids are
 * given: every one, or those whose sender is `from` and/or that have a recipient not yet settled
 * who is `to` (an address, or "@domain" for any at that domain). Addresses are compared in one
 * canonical form (address_canonical: case, quoting, IDN). */
#define CANON_MAX (ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2) /* address_canonical's longest, NUL included */

struct selection {
    bool all;
    char from[CANON_MAX]; /* canonical; "<>" for the null sender; "" = any */
    char to[CANON_MAX];   /* canonical address, or "@" and the canonical domain; "" = any */
};

/* Reads "--from ADDR" / "--to ADDR|@DOMAIN" / "ALL" into sel; false (with a message) on a bad one. */
static bool selection_parse(int argc, char **argv, struct selection *sel)
{
    memset(sel, 0, sizeof *sel);
    for (int i = 0; i < argc; i++) {
        bool from = strcmp(argv[i], "--from") == 0, to = strcmp(argv[i], "--to") == 0;
        if (strcmp(argv[i], "ALL") == 0) {
            sel->all = true;
            continue;
        }
        if ((!from && !to) || i + 1 == argc) {
            fprintf(stderr, "postern queue: '%s' is not a queue id, ALL, --from ADDRESS or --to ADDRESS|@DOMAIN\n",
                    argv[i]);
            return false;
        }
        const char *v = argv[++i];
        char *out = from ? sel->from : sel->to;
        size_t vlen = strlen(v);
        if (vlen >= 2 && v[0] == '<' && v[vlen - 1] == '>')
            v++, vlen -= 2;
        if (from && vlen == 0) {
            snprintf(out, CANON_MAX, "<>");
        } else if (to && v[0] == '@' && vlen > 1) {
            out[0] = '@';
            idn_canonical(v + 1, out + 1, CANON_MAX - 1);
        } else if (!address_canonical(v, vlen, out, CANON_MAX)) {
            fprintf(stderr, "postern queue: '%s' is not an address%s\n", argv[i], to ? " or @domain" : "");
            return false;
        }
    }
    return true;
}

static bool selection_empty(const struct selection *sel)
{
    return !sel->all && !sel->from[0] && !sel->to[0];
}

/* True when addr (as stored in a queue file) is the selection's address or in its @domain. */
static bool address_matches(const char *addr, const char *want)
{
    char canon[CANON_MAX];
    if (!address_canonical(addr, strlen(addr), canon, sizeof canon))
        return false;
    if (want[0] != '@')
        return strcmp(canon, want) == 0;
    const char *at = strrchr(canon, '@');
    return at && strcmp(at + 1, want + 1) == 0;
}

static bool selection_matches(const struct selection *sel, const struct qfile *q)
{
    if (sel->from[0] && !(strcmp(sel->from, "<>") == 0 ? q->sender[0] == '\0' : address_matches(q->sender, sel->from)))
        return false;
    if (!sel->to[0])
        return true;
    for (size_t i = 0; i < q->nrcpts; i++) {
        enum qrcpt_status st = q->rcpts[i].status;
        if (st != QR_DELIVERED && st != QR_FAILED && address_matches(q->rcpts[i].addr, sel->to))
            return true;
    }
    return false;
}

/* The names in spool/dir that are queue ids, in a new array (*n of them; free with free_ids).
 * Read whole before any is looked at: a command that moves or removes files while it reads the
 * directory might otherwise see some twice or not at all. NULL when out of memory. */
static char **queue_ids(const char *spool, const char *dir, size_t *n)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", spool, dir);
    char **ids = calloc(1, sizeof *ids);
    size_t cap = 1;
    *n = 0;
    DIR *d = ids ? opendir(path) : NULL;
    for (struct dirent *de; d && (de = readdir(d));) {
        if (!qfile_id_valid(de->d_name))
            continue;
        if (*n + 1 == cap) {
            char **more = realloc(ids, (cap *= 2) * sizeof *ids);
            if (!more)
                break;
            ids = more;
        }
        if (!(ids[*n] = strdup(de->d_name)))
            break;
        (*n)++;
    }
    if (d)
        closedir(d);
    return ids;
}

static void free_ids(char **ids, size_t n)
{
    for (size_t i = 0; ids && i < n; i++)
        free(ids[i]);
    free(ids);
}

/* One line per message, then its recipients not yet settled: pending ones with their last error,
 * and those whose report is still to be stored. A file that cannot be read is named on stderr and
 * counted in *unreadable: a list that left it out would hide it. */
static int list_dir(const char *spool, const char *dir, bool held, const struct selection *sel, unsigned *count,
                    unsigned *unreadable)
{
    char err[256];
    size_t n;
    char **ids = queue_ids(spool, dir, &n);
    for (size_t k = 0; k < n; k++) {
        struct qfile q;
        if (qfile_load(spool, dir, ids[k], &q, err, sizeof err) < 0) {
            if (still_there(spool, dir, ids[k])) {
                fprintf(stderr, "postern queue: %s/%s: %s\n", dir, ids[k], err);
                (*unreadable)++;
            }
            continue;
        }
        if (!selection_matches(sel, &q)) {
            qfile_free(&q);
            continue;
        }
        char age[32];
        age_text(q.created, age, sizeof age);
        printf("%-20s %8s %9zu  <%s>%s\n", q.qid, age, q.size, q.sender, held ? "  (held)" : "");
        for (size_t i = 0; i < q.nrcpts; i++) {
            const struct qrcpt *r = &q.rcpts[i];
            if (r->status == QR_DELIVERED || r->status == QR_FAILED)
                continue;
            if (r->diag)
                printf("    <%s>  %s: %s\n", r->addr, r->status == QR_PENDING ? "last error" : status_words(r->status),
                       r->diag);
            else
                printf("    <%s>\n", r->addr);
        }
        (*count)++;
        qfile_free(&q);
    }
    free_ids(ids, n);
    return 0;
}

/* One recipient waiting, for `queue summary`: its domain, and the message it belongs to. */
struct waiting {
    char domain[ADDR_DOMAIN_MAX + 1]; /* canonical (idn.h) */
    unsigned msg;                      /* which message, counted from 0 */
    long long created;
    bool held;
};

static int by_domain_then_message(const void *a, const void *b)
{
    const struct waiting *x = a, *y = b;
    int c = strcmp(x->domain, y->domain);
    return c ? c : (x->msg > y->msg) - (x->msg < y->msg);
}

/* Adds the recipients still waiting in spool/dir to *w (grown as needed); false when out of memory. */
static bool collect_waiting(const char *spool, const char *dir, struct waiting **w, size_t *n, size_t *cap,
                            unsigned *msgs)
{
    char err[256];
    size_t nids;
    char **ids = queue_ids(spool, dir, &nids);
    bool ok = ids != NULL;
    for (size_t k = 0; ok && k < nids; k++) {
        struct qfile q;
        if (qfile_load(spool, dir, ids[k], &q, err, sizeof err) < 0)
            continue; /* delivered meanwhile, or unreadable: `queue list` names those */
        for (size_t i = 0; ok && i < q.nrcpts; i++) {
            const char *at = strrchr(q.rcpts[i].addr, '@');
            if (q.rcpts[i].status != QR_PENDING || !at)
                continue;
            if (*n == *cap) {
                struct waiting *more = realloc(*w, (*cap = *cap ? *cap * 2 : 256) * sizeof **w);
                if (!(ok = more != NULL))
                    break;
                *w = more;
            }
            struct waiting *e = &(*w)[(*n)++];
            idn_canonical(at + 1, e->domain, sizeof e->domain);
            e->msg = *msgs;
            e->created = q.created;
            e->held = strcmp(dir, "hold") == 0;
        }
        (*msgs)++;
        qfile_free(&q);
    }
    free_ids(ids, nids);
    return ok;
}

/* One line of `queue summary`. */
struct summary_row {
    const char *domain;
    unsigned msgs, rcpts, held;
    long long oldest;
};

static int busiest_first(const void *a, const void *b)
{
    const struct summary_row *x = a, *y = b;
    return x->rcpts != y->rcpts ? (x->rcpts < y->rcpts) - (x->rcpts > y->rcpts) : strcmp(x->domain, y->domain);
}

/* `queue summary`: per destination domain, the messages and recipients waiting and the oldest's
 * age, the busiest first (Postfix's qshape, in short) - which destination is backing up. */
static int cmd_summary(const char *spool)
{
    struct waiting *w = NULL;
    size_t n = 0, cap = 0;
    unsigned msgs = 0;
    if (!collect_waiting(spool, "queue", &w, &n, &cap, &msgs) || !collect_waiting(spool, "hold", &w, &n, &cap, &msgs)) {
        fprintf(stderr, "postern queue: out of memory\n");
        free(w);
        return 1;
    }
    if (n)
        qsort(w, n, sizeof *w, by_domain_then_message);
    struct summary_row *rows = calloc(n ? n : 1, sizeof *rows);
    size_t nrows = 0;
    for (size_t i = 0; rows && i < n; i++) {
        bool new_domain = i == 0 || strcmp(w[i - 1].domain, w[i].domain) != 0;
        if (new_domain)
            rows[nrows++] = (struct summary_row){.domain = w[i].domain, .oldest = w[i].created};
        struct summary_row *r = &rows[nrows - 1];
        r->rcpts++;
        if (new_domain || w[i - 1].msg != w[i].msg) { /* a message counts once per domain */
            r->msgs++;
            r->held += w[i].held;
        }
        if (w[i].created < r->oldest)
            r->oldest = w[i].created;
    }
    if (rows && nrows)
        qsort(rows, nrows, sizeof *rows, busiest_first);
    printf("%-40s %8s %8s %8s\n", "DOMAIN", "MESSAGES", "RCPTS", "OLDEST");
    for (size_t i = 0; rows && i < nrows; i++) {
        char age[32];
        age_text(rows[i].oldest, age, sizeof age);
        printf("%-40s %8u %8u %8s%s\n", rows[i].domain, rows[i].msgs, rows[i].rcpts, age,
               rows[i].held ? "  (some held)" : "");
    }
    printf("-- %zu domain%s, %u message%s in the queue\n", nrows, nrows == 1 ? "" : "s", msgs, msgs == 1 ? "" : "s");
    free(rows);
    free(w);
    return 0;
}

static int cmd_list(const char *spool, const struct selection *sel)
{
    unsigned n = 0, unreadable = 0;
    printf("%-20s %8s %9s  %s\n", "QUEUE ID", "AGE", "SIZE", "SENDER / RECIPIENTS");
    list_dir(spool, "queue", false, sel, &n, &unreadable);
    list_dir(spool, "hold", true, sel, &n, &unreadable);
    printf("-- %u message%s %s", n, n == 1 ? "" : "s", selection_empty(sel) ? "in the queue" : "selected");
    if (unreadable)
        printf(", and %u file%s that cannot be read (named above; the server moves such a file to "
               "spool_dir/corrupt/ when it starts)", unreadable, unreadable == 1 ? "" : "s");
    printf("\n");
    return unreadable ? 1 : 0;
}

static int cmd_show(const char *spool, const char *id)
{
    const char *dir = qfile_where(spool, id);
    struct qfile q;
    char err[256];
    if (!dir) {
        fprintf(stderr, "postern queue: no message %s in the queue\n", id);
        return 1;
    }
    if (qfile_load(spool, dir, id, &q, err, sizeof err) < 0) {
        fprintf(stderr, "postern queue: %s\n", err);
        return 1;
    }
    char age[32], when[64] = "now";
    age_text(q.created, age, sizeof age);
    if (q.next_attempt > (long long)time(NULL)) {
        time_t t = (time_t)q.next_attempt;
        struct tm tm;
        localtime_r(&t, &tm);
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
    }
    printf("id:         %s%s\nsender:     <%s>\nsize:       %zu octets\nage:        %s\nattempts:   %u\n"
           "next try:   %s\n", q.qid, strcmp(dir, "hold") == 0 ? " (held)" : "", q.sender, q.size, age, q.attempts,
           strcmp(dir, "hold") == 0 ? "never (held)" : when);
    if (q.envid || q.ret)
        printf("dsn:        ret=%s envid=%s\n", q.ret == 1 ? "FULL" : q.ret == 2 ? "HDRS" : "-", q.envid ? q.envid : "-");
    for (size_t i = 0; i < q.nrcpts; i++) {
        const struct qrcpt *r = &q.rcpts[i];
        printf("recipient:  <%s> %s%s%s%s%s\n", r->addr,
               status_words(r->status),
               r->remote_mta ? " via " : "", r->remote_mta ? r->remote_mta : "", r->diag ? ": " : "", r->diag ? r->diag : "");
    }
    char *text = qfile_read_message(spool, dir, &q, err, sizeof err);
    if (text) {
        printf("\n%.*s\n", (int)qfile_header_length(text, q.size), text);
        free(text);
    }
    qfile_free(&q);
    return 0;
}

static const char *op_done(const char *op)
{
    return strcmp(op, "delete") == 0 ? "deleted" : strcmp(op, "hold") == 0 ? "held" : "released";
}

/* Moves ID between queue/ and hold/ (or deletes it); the caller tells the server. 0, or 1 with a
 * message. */
static int change_one(const char *spool, const char *op, const char *id)
{
    const char *dir = qfile_where(spool, id);
    char from[PATH_MAX], to[PATH_MAX];
    if (!dir) {
        fprintf(stderr, "postern queue: no message %s in the queue\n", id);
        return 1;
    }
    snprintf(from, sizeof from, "%s/%s/%s", spool, dir, id);
    if (strcmp(op, "delete") == 0) {
        if (unlink(from) < 0) {
            fprintf(stderr, "postern queue: cannot delete %s: %s\n", from, strerror(errno));
            return 1;
        }
        snprintf(to, sizeof to, "%s/state/%s", spool, id);
        unlink(to);
    } else {
        const char *dest = strcmp(op, "hold") == 0 ? "hold" : "queue";
        if (strcmp(dir, dest) == 0) {
            printf("%s is already %s\n", id, strcmp(dest, "hold") == 0 ? "held" : "in the active queue");
            return 0;
        }
        snprintf(to, sizeof to, "%s/hold", spool);
        mkdir(to, 0700); /* a spool the server has not started on since it makes hold/: its start chowns it */
        snprintf(to, sizeof to, "%s/%s/%s", spool, dest, id);
        if (rename(from, to) < 0) {
            fprintf(stderr, "postern queue: cannot move %s to %s: %s\n", from, to, strerror(errno));
            return 1;
        }
    }
    printf("%s: %s\n", id, op_done(op));
    return 0;
}

/* Where op takes messages from: release from hold/, hold from queue/, delete from both. */
static bool op_takes_from(const char *op, const char *dir)
{
    return strcmp(op, "delete") == 0 || strcmp(dir, strcmp(op, "release") == 0 ? "hold" : "queue") == 0;
}

/* op on every message of spool/dir the selection takes (all of them for ALL, without reading
 * them: a file that cannot be read goes too). Counts into *done and *failed. */
static void change_dir(const char *spool, const char *dir, const char *op, const struct selection *sel,
                       unsigned *done, unsigned *failed)
{
    char err[256];
    size_t n;
    char **ids = queue_ids(spool, dir, &n);
    for (size_t k = 0; k < n; k++) {
        struct qfile q;
        if (!sel->all) {
            if (qfile_load(spool, dir, ids[k], &q, err, sizeof err) < 0)
                continue; /* gone meanwhile (delivered), or unreadable: never matched by address */
            bool match = selection_matches(sel, &q);
            qfile_free(&q);
            if (!match)
                continue;
        }
        change_one(spool, op, ids[k]) == 0 ? (*done)++ : (*failed)++;
    }
    free_ids(ids, n);
}

/* Reads queue ids from stdin, one per line (`queue delete -`), into a new array; NULL (with a
 * message) at a line that is not one. */
static char **ids_from_stdin(size_t *n)
{
    char line[256], **ids = NULL;
    size_t cap = 0;
    *n = 0;
    for (unsigned lineno = 1; fgets(line, sizeof line, stdin); lineno++) {
        char *id = line + strspn(line, " \t");
        id[strcspn(id, " \t\r\n")] = '\0';
        if (!id[0])
            continue;
        if (!qfile_id_valid(id)) {
            fprintf(stderr, "postern queue: stdin line %u: '%s' is not a queue id; nothing changed\n", lineno, id);
            goto fail;
        }
        if (*n == cap) {
            char **more = realloc(ids, (cap = cap ? cap * 2 : 64) * sizeof *ids);
            if (!more)
                goto fail;
            ids = more;
        }
        if (!(ids[*n] = strdup(id)))
            goto fail;
        (*n)++;
    }
    return ids ? ids : calloc(1, sizeof *ids);
fail:
    while (*n)
        free(ids[--*n]);
    free(ids);
    return NULL;
}

/* `queue delete|hold|release` with ids (or "-": ids from stdin) or a selection (ALL, --from,
 * --to); the server is told once, at the end. Exit status 1 when an id was not found or a file
 * could not be changed. */
static int cmd_change(const char *spool, const char *op, int argc, char **argv)
{
    unsigned done = 0, failed = 0;
    struct selection sel;
    if (argc == 1 && strcmp(argv[0], "-") == 0) {
        size_t n;
        char **ids = ids_from_stdin(&n);
        if (!ids)
            return 2;
        for (size_t i = 0; i < n; i++) {
            change_one(spool, op, ids[i]) == 0 ? done++ : failed++;
            free(ids[i]);
        }
        free(ids);
    } else if (qfile_id_valid(argv[0])) {
        for (int i = 0; i < argc; i++)
            if (!qfile_id_valid(argv[i])) {
                fprintf(stderr, "postern queue: '%s' is not a queue id; nothing changed\n", argv[i]);
                return 2;
            }
        for (int i = 0; i < argc; i++)
            change_one(spool, op, argv[i]) == 0 ? done++ : failed++;
    } else {
        if (!selection_parse(argc, argv, &sel))
            return 2;
        for (const char *const *dir = (const char *const[]){"queue", "hold", NULL}; *dir; dir++)
            if (op_takes_from(op, *dir))
                change_dir(spool, *dir, op, &sel, &done, &failed);
        printf("-- %u message%s %s\n", done, done == 1 ? "" : "s", op_done(op));
    }
    if (done)
        tell_server(spool, SIGUSR2);
    return failed ? 1 : 0;
}

/* False (with a message) when this user cannot read the queue: "0 messages" or "no message ID"
 * would then be a lie - the queue may be full (spool_dir is the server user's, mode 0700). */
static bool queue_readable(const char *spool)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/queue", spool);
    if (access(path, R_OK | X_OK) == 0 || errno == ENOENT)
        return true;
    fprintf(stderr, "postern queue: cannot read %s: %s (run this as root or as the server's user)\n", path,
            strerror(errno));
    return false;
}

int queue_cli_main(const char *spool, int argc, char **argv)
{
    if (!queue_readable(spool))
        return 1;
    struct selection sel;
    if (argc >= 1 && strcmp(argv[0], "list") == 0)
        return selection_parse(argc - 1, argv + 1, &sel) ? cmd_list(spool, &sel) : 2;
    if (argc == 1 && strcmp(argv[0], "summary") == 0)
        return cmd_summary(spool);
    if (argc == 1 && strcmp(argv[0], "flush") == 0)
        return tell_server(spool, SIGUSR1) ? (printf("flush: the server retries every queued message now\n"), 0) : 1;
    if (argc == 2 && strcmp(argv[0], "show") == 0) {
        if (qfile_id_valid(argv[1]))
            return cmd_show(spool, argv[1]);
        fprintf(stderr, "postern queue: '%s' is not a queue id\n", argv[1]);
        return 2;
    }
    if (argc >= 2 && (strcmp(argv[0], "delete") == 0 || strcmp(argv[0], "hold") == 0 || strcmp(argv[0], "release") == 0))
        return cmd_change(spool, argv[0], argc - 1, argv + 1);
    fprintf(stderr, "usage: postern queue list [SELECTION] | summary | show ID | flush | delete|hold|release ID...|-|SELECTION\n"
                    "  SELECTION: ALL, or --from ADDRESS and/or --to ADDRESS|@DOMAIN (a recipient not yet delivered)\n");
    return 2;
}
