/* maildirsize.c - see maildirsize.h. */
#include "maildirsize.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int fail(char *err, size_t errsz, const char *what, const char *path)
{
    snprintf(err, errsz, "%s %s: %s", what, path, strerror(errno));
    return -1;
}

/* The octets a Maildir file name states (",S=<octets>", Maildir++), or -1 when it states none. */
static long long size_in_name(const char *name)
{
    const char *p = strstr(name, ",S=");
    if (!p || p[3] < '0' || p[3] > '9')
        return -1;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(p + 3, &end, 10);
    return errno || n > LLONG_MAX ? -1 : (long long)n;
}

/* Adds the messages of one new/ or cur/ directory (missing: none) to u. */
static int count_messages(const char *path, struct quota_usage *u, char *err, size_t errsz)
{
    DIR *d = opendir(path);
    if (!d)
        return errno == ENOENT ? 0 : fail(err, errsz, "cannot read", path);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        long long size = size_in_name(e->d_name);
        struct stat st;
        if (size < 0) {
            if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
                continue; /* gone meanwhile (a reader moved it to cur/), or no message */
            size = st.st_size;
        }
        u->octets += (unsigned long long)size;
        u->messages++;
    }
    closedir(d);
    return 0;
}

/* Adds the messages of the Maildir (or Maildir++ folder) at path: its new/ and cur/. */
static int count_folder(const char *path, struct quota_usage *u, char *err, size_t errsz)
{
    char sub[PATH_MAX];
    snprintf(sub, sizeof sub, "%s/new", path);
    if (count_messages(sub, u, err, errsz) < 0)
        return -1;
    snprintf(sub, sizeof sub, "%s/cur", path);
    return count_messages(sub, u, err, errsz);
}

/* The whole mailbox: the inbox and every folder (".Name" directories). */
static int count_mailbox(const char *dir, struct quota_usage *u, char *err, size_t errsz)
{
    *u = (struct quota_usage){0, 0};
    if (count_folder(dir, u, err, errsz) < 0)
        return -1;
    DIR *d = opendir(dir);
    if (!d)
        return fail(err, errsz, "cannot read", dir);
    struct dirent *e;
    int r = 0;
    while (r == 0 && (e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.' || !strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char folder[PATH_MAX];
        if (snprintf(folder, sizeof folder, "%s/%s", dir, e->d_name) >= (int)sizeof folder)
            continue;
        struct stat st;
        if (stat(folder, &st) == 0 && S_ISDIR(st.st_mode))
            r = count_folder(folder, u, err, errsz);
    }
    closedir(d);
    return r;
}

int maildirsize_rebuild(const char *dir, struct quota_limit limit, struct quota_usage *u, char *err, size_t errsz)
{
    static atomic_uint seq;
    if (count_mailbox(dir, u, err, errsz) < 0)
        return -1;
    char tmp[PATH_MAX], path[PATH_MAX], text[96], def[48];
    snprintf(tmp, sizeof tmp, "%s/tmp/maildirsize.%ld.%u", dir, (long)getpid(), atomic_fetch_add(&seq, 1));
    snprintf(path, sizeof path, "%s/maildirsize", dir);
    if (limit.octets && limit.messages)
        snprintf(def, sizeof def, "%lluS,%lluC", limit.octets, limit.messages);
    else if (limit.messages)
        snprintf(def, sizeof def, "%lluC", limit.messages);
    else
        snprintf(def, sizeof def, "%lluS", limit.octets);
    int len = snprintf(text, sizeof text, "%s\n%llu %llu\n", def, u->octets, u->messages);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return fail(err, errsz, "cannot create", tmp);
    bool written = write(fd, text, (size_t)len) == len;
    if (close(fd) < 0 || !written || rename(tmp, path) < 0) {
        fail(err, errsz, "cannot write", tmp);
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* True when the quota definition (a maildirsize's first line, "<n>S[,<m>C]" in any order) states
 * limit: its octets as the S item (absent: 0) and, when limit has one, its messages as the C item
 * (a C item with no message limit here is another reader's - Dovecot's - and left as it is). */
static bool same_quota(const char *line, size_t len, struct quota_limit limit)
{
    char def[128];
    if (len >= sizeof def)
        return false;
    memcpy(def, line, len);
    def[len] = '\0';
    struct quota_limit stated = {0, 0};
    for (char *save = NULL, *item = strtok_r(def, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *end;
        errno = 0;
        unsigned long long n = strtoull(item, &end, 10);
        if (end == item || errno || (end[0] != 'S' && end[0] != 'C') || end[1] != '\0')
            return false;
        *(end[0] == 'S' ? &stated.octets : &stated.messages) = n;
    }
    return stated.octets == limit.octets && (!limit.messages || stated.messages == limit.messages);
}

bool quota_set(struct quota_limit l)
{
    return l.octets || l.messages;
}

bool quota_full(struct quota_limit l, const struct quota_usage *u)
{
    return (l.octets && u->octets >= l.octets) || (l.messages && u->messages >= l.messages);
}

/* Adds up the change lines after the first: false when one cannot be read (two integers, the
 * line ended by a newline: a line being appended right now is not complete yet). */
static bool sum_lines(const char *p, const char *end, struct quota_usage *u)
{
    long long octets = 0, messages = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            return false;
        char line[64], *a, *b;
        size_t len = (size_t)(nl - p);
        if (len >= sizeof line)
            return false;
        memcpy(line, p, len);
        line[len] = '\0';
        errno = 0;
        long long o = strtoll(line, &a, 10), n = strtoll(a, &b, 10);
        while (*b == ' ' || *b == '\t')
            b++;
        if (errno || a == line || b == a || *b || llabs(o) > (1LL << 50) || llabs(n) > (1LL << 40))
            return false;
        octets += o;
        messages += n;
        p = nl + 1;
    }
    u->octets = octets > 0 ? (unsigned long long)octets : 0;
    u->messages = messages > 0 ? (unsigned long long)messages : 0;
    return true;
}

/* maildirsize_read, and maildirsize_peek when rebuild is false: a file that cannot be trusted is
 * then only counted past, never written. */
static int read_usage(const char *dir, struct quota_limit limit, struct quota_usage *u, char *err, size_t errsz,
                      bool rebuild)
{
    struct stat st;
    if (stat(dir, &st) < 0) {
        *u = (struct quota_usage){0, 0};
        return errno == ENOENT ? 0 : fail(err, errsz, "cannot read", dir);
    }
    char path[PATH_MAX], text[MAILDIRSIZE_REBUILD_SIZE];
    snprintf(path, sizeof path, "%s/maildirsize", dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno != ENOENT)
        return fail(err, errsz, "cannot read", path);
    ssize_t n = -1;
    if (fd >= 0 && fstat(fd, &st) == 0 && st.st_size < MAILDIRSIZE_REBUILD_SIZE)
        n = read(fd, text, sizeof text);
    if (fd >= 0)
        close(fd);
    const char *nl = n > 0 ? memchr(text, '\n', (size_t)n) : NULL;
    bool trusted = nl && same_quota(text, (size_t)(nl - text), limit) && sum_lines(nl + 1, text + n, u) &&
                   (!quota_full(limit, u) || time(NULL) - st.st_mtime < MAILDIRSIZE_FULL_RECHECK);
    if (trusted)
        return 0;
    return rebuild ? maildirsize_rebuild(dir, limit, u, err, errsz) : count_mailbox(dir, u, err, errsz);
}

int maildirsize_read(const char *dir, struct quota_limit limit, struct quota_usage *u, char *err, size_t errsz)
{
    return read_usage(dir, limit, u, err, errsz, true);
}

int maildirsize_peek(const char *dir, struct quota_limit limit, struct quota_usage *u, char *err, size_t errsz)
{
    return read_usage(dir, limit, u, err, errsz, false);
}

void maildirsize_add(const char *dir, unsigned long long octets, struct quota_limit limit)
{
    char path[PATH_MAX], line[48], err[300];
    struct quota_usage u;
    snprintf(path, sizeof path, "%s/maildirsize", dir);
    int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            maildirsize_rebuild(dir, limit, &u, err, sizeof err); /* counts this message (failing: the next read) */
        return;
    }
    int len = snprintf(line, sizeof line, "%llu 1\n", octets);
    ssize_t w = write(fd, line, (size_t)len); /* lost: the usage is low until the next rebuild */
    (void)w;
    close(fd);
}
