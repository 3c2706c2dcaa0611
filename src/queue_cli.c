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

/* One line per message, then its recipients not yet settled: pending ones with their last error,
 * and those whose report is still to be stored. A file that cannot be read is named on stderr and
 * counted in *unreadable: a list that left it out would hide it. */
static int list_dir(const char *spool, const char *dir, bool held, unsigned *count, unsigned *unreadable)
{
    char path[PATH_MAX], err[256];
    snprintf(path, sizeof path, "%s/%s", spool, dir);
    DIR *d = opendir(path);
    for (struct dirent *de; d && (de = readdir(d));) {
        struct qfile q;
        if (!qfile_id_valid(de->d_name))
            continue;
        if (qfile_load(spool, dir, de->d_name, &q, err, sizeof err) < 0) {
            if (still_there(spool, dir, de->d_name)) {
                fprintf(stderr, "postern queue: %s/%s: %s\n", dir, de->d_name, err);
                (*unreadable)++;
            }
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
    if (d)
        closedir(d);
    return 0;
}

static int cmd_list(const char *spool)
{
    unsigned n = 0, unreadable = 0;
    printf("%-20s %8s %9s  %s\n", "QUEUE ID", "AGE", "SIZE", "SENDER / RECIPIENTS");
    list_dir(spool, "queue", false, &n, &unreadable);
    list_dir(spool, "hold", true, &n, &unreadable);
    printf("-- %u message%s in the queue", n, n == 1 ? "" : "s");
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

/* Moves ID between queue/ and hold/ (or deletes it), then tells the server. */
static int change(const char *spool, const char *op, const char *id)
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
    printf("%s: %s\n", id, strcmp(op, "delete") == 0 ? "deleted" : strcmp(op, "hold") == 0 ? "held" : "released");
    tell_server(spool, SIGUSR2);
    return 0;
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
    if (argc >= 1 && strcmp(argv[0], "list") == 0 && argc == 1)
        return cmd_list(spool);
    if (argc == 1 && strcmp(argv[0], "flush") == 0)
        return tell_server(spool, SIGUSR1) ? (printf("flush: the server retries every queued message now\n"), 0) : 1;
    if (argc == 2 && !qfile_id_valid(argv[1])) {
        fprintf(stderr, "postern queue: '%s' is not a queue id\n", argv[1]);
        return 2;
    }
    if (argc == 2 && strcmp(argv[0], "show") == 0)
        return cmd_show(spool, argv[1]);
    if (argc == 2 && (strcmp(argv[0], "delete") == 0 || strcmp(argv[0], "hold") == 0 || strcmp(argv[0], "release") == 0))
        return change(spool, argv[0], argv[1]);
    fprintf(stderr, "usage: postern queue list | show ID | flush | delete ID | hold ID | release ID\n");
    return 2;
}
