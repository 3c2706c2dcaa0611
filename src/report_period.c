/* report_period.c - see report_period.h. */
#include "report_period.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "fileio.h"
#include "log.h"
#include "server.h"

/* Arms the timer for the end of the period now in. */
static void arm(struct report_period *p)
{
    time_t now = time(NULL), len = (time_t)p->interval;
    p->start = now - now % len;
    struct timeval tv = {p->start + len - now, 0};
    evtimer_add(p->timer, &tv);
}

/* The period is over: its table handed over, a fresh one begun (out of memory: the counts
 * dropped). */
static void on_period_end(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct report_period *p = arg;
    void *fresh = p->ops->create();
    if (!fresh) {
        log_warn("event=%s_failed detail=\"out of memory: this period's results are dropped\"", p->ops->kind);
        p->ops->clear(p->table);
        arm(p);
        return;
    }
    void *over = p->table;
    time_t start = p->start;
    p->table = fresh;
    arm(p);
    p->over(p->arg, over, start, start + (time_t)p->interval);
}

/* spool_dir/<file> into path. */
static void state_path(const struct report_period *p, char *path, size_t pathsz)
{
    snprintf(path, pathsz, "%s/%s", p->srv->cfg->spool_dir, p->ops->file);
}

/* The stop: the current period's counts written to the state file ("postern-<file> 1 <period
 * start> <interval>", then the table's dump), for the next start to go on with. */
static void save_state(const struct report_period *p)
{
    char path[4200];
    state_path(p, path, sizeof path);
    size_t len;
    char *dump = p->ops->domains(p->table) ? p->ops->dump(p->table, &len) : NULL;
    struct evbuffer *b = dump ? evbuffer_new() : NULL;
    if (b) {
        evbuffer_add_printf(b, "postern-%s 1 %lld %u\n", p->ops->file, (long long)p->start, p->interval);
        evbuffer_add(b, dump, len);
        size_t total = evbuffer_get_length(b);
        if (file_replace(path, evbuffer_pullup(b, -1), total) < 0)
            log_warn("event=%s_state_unwritable path=%s error=\"%s\"", p->ops->kind, path, strerror(errno));
        evbuffer_free(b);
    }
    free(dump);
}

/* The file's first line, "postern-<file> 1 <start> <interval>"; false when it is not one. */
static bool state_head(const struct report_period *p, const char *line, long long *start, unsigned *interval)
{
    char tag[64];
    int taglen = snprintf(tag, sizeof tag, "postern-%s 1 ", p->ops->file);
    char *end;
    if (strncmp(line, tag, (size_t)taglen) != 0)
        return false;
    errno = 0;
    *start = strtoll(line + taglen, &end, 10);
    if (errno || *start < 0 || *end != ' ')
        return false;
    unsigned long v = strtoul(end + 1, &end, 10);
    *interval = (unsigned)v;
    return !errno && v <= 86400 && *end == '\n';
}

/* The file's lines after the first, as a C string in an evbuffer (NULL when out of memory). */
static struct evbuffer *rest_of(FILE *f)
{
    struct evbuffer *rest = evbuffer_new();
    char chunk[4096];
    size_t n;
    while (rest && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        evbuffer_add(rest, chunk, n);
    if (rest)
        evbuffer_add(rest, "", 1);
    return rest;
}

/* The start: counts a stop left - of the current period, counted on; of a period over since,
 * handed over now. The file is consumed (the next stop writes it again). */
static void load_state(struct report_period *p)
{
    char path[4200], *text = NULL;
    state_path(p, path, sizeof path);
    FILE *f = fopen(path, "r");
    size_t cap = 0;
    long long start = 0;
    unsigned interval = 0;
    ssize_t head = f ? getline(&text, &cap, f) : -1;
    bool ours = head > 0 && state_head(p, text, &start, &interval) && interval == p->interval &&
                start <= (long long)p->start;
    struct evbuffer *rest = ours ? rest_of(f) : NULL;
    if (f)
        fclose(f);
    free(text);
    if (rest) {
        void *t = start == (long long)p->start ? p->table : p->ops->create();
        bool read = t && p->ops->undump(t, (const char *)evbuffer_pullup(rest, -1));
        log_info("event=%s_state_loaded path=%s period_start=%lld domains=%zu complete=%s", p->ops->kind, path, start,
                 t ? p->ops->domains(t) : 0, read ? "yes" : "no");
        if (t && t != p->table)
            p->over(p->arg, t, (time_t)start, (time_t)start + interval);
        evbuffer_free(rest);
    } else if (head > 0) {
        log_warn("event=%s_state_dropped path=%s detail=\"not a state of this report interval\"", p->ops->kind, path);
    }
    if (head > 0)
        unlink(path);
}

bool report_period_start(struct report_period *p, struct server *srv, const struct report_table_ops *ops,
                         unsigned interval, report_over_fn *over, void *arg)
{
    *p = (struct report_period){.srv = srv, .ops = ops, .interval = interval, .over = over, .arg = arg};
    p->table = ops->create();
    p->timer = p->table ? evtimer_new(srv->base, on_period_end, p) : NULL;
    if (!p->timer) {
        report_period_stop(p);
        return false;
    }
    arm(p);
    load_state(p);
    return true;
}

void report_period_stop(struct report_period *p)
{
    if (p->table && p->timer)
        save_state(p);
    if (p->timer)
        event_free(p->timer);
    if (p->table)
        p->ops->destroy(p->table);
    p->timer = NULL;
    p->table = NULL;
}
