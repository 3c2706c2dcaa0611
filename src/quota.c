/* quota.c - see quota.h. A hash table of mailboxes (chained, 2^16 heads) with each one's last read
 * usage; a read in progress carries the waiters it will answer. */
#include "quota.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "server.h"
#include "strmap.h"
#include "workq.h"

#define QUOTA_HEADS 65536

struct quota_wait {
    quota_fn fn; /* NULL once cancelled */
    void *arg;
    struct quota_wait *next;
};

struct quota_entry {
    uint64_t hash;
    char *dir;
    struct quota_usage u;
    double read_at;           /* monotonic s of the read u comes from */
    bool known;               /* a read has reported */
    struct quota_read *read;  /* the read under way, or NULL */
    struct quota_entry *next;
};

/* One read on its way to a disk thread and back. */
struct quota_read {
    struct quotas *q;
    char dir[PATH_MAX];
    struct quota_limit limit;
    struct quota_usage u;
    int result;
    char error[256];
    struct quota_wait *waiters;
};

struct quotas {
    struct workq *disk;
    unsigned recheck;
    struct quota_entry **heads;
    unsigned count;
};

struct quotas *quotas_new(struct workq *disk, unsigned recheck_seconds)
{
    struct quotas *q = calloc(1, sizeof *q);
    if (!q || !(q->heads = calloc(QUOTA_HEADS, sizeof(struct quota_entry *)))) {
        free(q);
        return NULL;
    }
    q->disk = disk;
    q->recheck = recheck_seconds;
    return q;
}

void quotas_free(struct quotas *q)
{
    if (!q)
        return;
    for (unsigned i = 0; i < QUOTA_HEADS; i++) {
        for (struct quota_entry *e = q->heads[i], *next; e; e = next) {
            next = e->next;
            free(e->dir);
            free(e);
        }
    }
    free(q->heads);
    free(q);
}

static struct quota_entry *find(const struct quotas *q, const char *dir, uint64_t hash)
{
    for (struct quota_entry *e = q->heads[hash % QUOTA_HEADS]; e; e = e->next)
        if (e->hash == hash && strcmp(e->dir, dir) == 0)
            return e;
    return NULL;
}

static bool fresh(const struct quotas *q, const struct quota_entry *e)
{
    return e->known && monotonic_now() - e->read_at < q->recheck;
}

/* At QUOTA_ENTRIES_MAX: forgets every mailbox whose usage is stale and that no read is for. */
static void forget_stale(struct quotas *q)
{
    for (unsigned i = 0; i < QUOTA_HEADS; i++) {
        for (struct quota_entry **p = &q->heads[i]; *p;) {
            struct quota_entry *e = *p;
            if (e->read || fresh(q, e)) {
                p = &e->next;
                continue;
            }
            *p = e->next;
            free(e->dir);
            free(e);
            q->count--;
        }
    }
}

/* dir's entry, made when missing; NULL when out of memory or the table is full of fresh ones. */
static struct quota_entry *entry_for(struct quotas *q, const char *dir)
{
    uint64_t hash = str_hash(dir);
    struct quota_entry *e = find(q, dir, hash);
    if (e)
        return e;
    if (q->count >= QUOTA_ENTRIES_MAX)
        forget_stale(q);
    if (q->count >= QUOTA_ENTRIES_MAX || !(e = calloc(1, sizeof *e)) || !(e->dir = strdup(dir))) {
        free(e);
        return NULL;
    }
    e->hash = hash;
    e->next = q->heads[hash % QUOTA_HEADS];
    q->heads[hash % QUOTA_HEADS] = e;
    q->count++;
    return e;
}

bool quota_known(const struct quotas *q, const char *dir, bool any_age, struct quota_usage *u)
{
    const struct quota_entry *e = q ? find(q, dir, str_hash(dir)) : NULL;
    if (!e || !e->known || (!any_age && !fresh(q, e)))
        return false;
    *u = e->u;
    return true;
}

/* Disk thread. */
static void read_usage(void *arg)
{
    struct quota_read *r = arg;
    r->result = maildirsize_read(r->dir, r->limit, &r->u, r->error, sizeof r->error);
}

/* Loop thread: the read is back - remember it, answer its waiters. */
static void read_done(void *arg)
{
    struct quota_read *r = arg;
    struct quota_entry *e = find(r->q, r->dir, str_hash(r->dir));
    if (r->result < 0) {
        char safe[300];
        log_warn("event=quota_unreadable error=\"%s\" detail=\"its mail is taken as if it had no quota until it "
                 "can be read (tried again after mailbox_quota_recheck)\"", log_safe(safe, sizeof safe, r->error));
    }
    if (e) { /* unreadable: remembered as empty, so that the next read (and warning) waits a recheck interval */
        e->read = NULL;
        e->u = r->result == 0 ? r->u : (struct quota_usage){0, 0};
        e->known = true;
        e->read_at = monotonic_now();
    }
    for (struct quota_wait *w = r->waiters, *next; w; w = next) {
        next = w->next;
        if (w->fn)
            w->fn(w->arg, r->result == 0 ? &r->u : NULL);
        free(w);
    }
    free(r);
}

struct quota_wait *quota_fetch(struct quotas *q, const char *dir, struct quota_limit limit, quota_fn fn, void *arg)
{
    struct quota_wait *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    *w = (struct quota_wait){fn, arg, NULL};
    struct quota_entry *e = entry_for(q, dir); /* NULL: read anyway, remembered nowhere */
    struct quota_read *r = e ? e->read : NULL;
    if (!r) {
        if (!(r = calloc(1, sizeof *r))) {
            free(w);
            return NULL;
        }
        r->q = q;
        r->limit = limit;
        snprintf(r->dir, sizeof r->dir, "%s", dir);
        if (e)
            e->read = r;
        workq_submit(q->disk, read_usage, read_done, r);
    }
    w->next = r->waiters;
    r->waiters = w;
    return w;
}

void quota_wait_cancel(struct quota_wait *w)
{
    if (w)
        w->fn = NULL;
}

bool quota_note_delivery(struct quotas *q, const char *dir, unsigned long long octets, struct quota_usage *after)
{
    struct quota_entry *e = q ? find(q, dir, str_hash(dir)) : NULL;
    if (!e || !e->known)
        return false;
    e->u.octets += octets;
    e->u.messages++;
    *after = e->u;
    return true;
}
