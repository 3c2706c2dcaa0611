/* conn_count.c - chained hash of key (client address, or user) -> open connections and attempt
 * rate (see conn_count.h). A key's entry exists while it has connections, or (rate counted) until
 * the sweep after its window; the buckets double when entries outnumber them. */
#include "conn_count.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strmap.h"

struct ip_entry {
    struct ip_entry *next;
    double window_start;   /* monotonic time of the first attempt of its current window */
    unsigned count;        /* connections open */
    unsigned attempts;     /* attempts in the current window; 0: rate not counted */
    char ip[];             /* the key */
};

struct ip_bucket {
    struct ip_entry *first;
};

struct conn_counts {
    struct ip_bucket *buckets;
    size_t cap, n; /* cap: a power of two */
    double window;  /* seconds an attempt counts for */
    double last_sweep;
};

struct conn_counts *conn_counts_new(double window)
{
    struct conn_counts *c = calloc(1, sizeof *c);
    if (c && !(c->buckets = calloc(64, sizeof *c->buckets))) {
        free(c);
        return NULL;
    }
    if (c)
        c->cap = 64, c->window = window;
    return c;
}

void conn_counts_free(struct conn_counts *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->cap; i++)
        for (struct ip_entry *e = c->buckets[i].first, *next; e; e = next) {
            next = e->next;
            free(e);
        }
    free(c->buckets);
    free(c);
}

static struct ip_entry **slot(const struct conn_counts *c, const char *ip)
{
    struct ip_entry **pp = &c->buckets[str_hash(ip) & (c->cap - 1)].first;
    while (*pp && strcmp((*pp)->ip, ip) != 0)
        pp = &(*pp)->next;
    return pp;
}

/* Doubles the buckets; on no memory the chains just grow longer. */
static void grow(struct conn_counts *c)
{
    size_t ncap = c->cap ? c->cap * 2 : 64;
    struct ip_bucket *nb = calloc(ncap, sizeof *nb);
    if (!nb)
        return;
    for (size_t i = 0; i < c->cap; i++)
        for (struct ip_entry *e = c->buckets[i].first, *next; e; e = next) {
            next = e->next;
            size_t b = str_hash(e->ip) & (ncap - 1);
            e->next = nb[b].first;
            nb[b].first = e;
        }
    free(c->buckets);
    c->buckets = nb;
    c->cap = ncap;
}

unsigned conn_counts_get(const struct conn_counts *c, const char *ip)
{
    const struct ip_entry *e = *slot(c, ip);
    return e ? e->count : 0;
}

/* ip's entry, made (empty) when it has none; NULL when out of memory. */
static struct ip_entry *entry_for(struct conn_counts *c, const char *ip)
{
    struct ip_entry **pp = slot(c, ip), *e = *pp;
    if (e)
        return e;
    size_t len = strlen(ip);
    if (!(e = calloc(1, sizeof *e + len + 1)))
        return NULL;
    memcpy(e->ip, ip, len + 1);
    *pp = e;
    if (++c->n > c->cap)
        grow(c);
    return e;
}

bool conn_counts_add(struct conn_counts *c, const char *ip, unsigned limit)
{
    struct ip_entry *e = *slot(c, ip);
    if ((e && e->count >= limit) || limit == 0)
        return false;
    if (!e && !(e = entry_for(c, ip)))
        return false;
    e->count++;
    return true;
}

/* Drops the entries with no connection whose window is over. */
static void sweep(struct conn_counts *c, double now)
{
    for (size_t i = 0; i < c->cap; i++)
        for (struct ip_entry **pp = &c->buckets[i].first; *pp;) {
            struct ip_entry *e = *pp;
            if (e->count == 0 && now - e->window_start >= c->window) {
                *pp = e->next;
                c->n--;
                free(e);
            } else {
                pp = &e->next;
            }
        }
    c->last_sweep = now;
}

unsigned conn_rate_take(struct conn_counts *c, const char *ip, double now)
{
    if (now - c->last_sweep >= c->window)
        sweep(c, now);
    struct ip_entry *e = entry_for(c, ip);
    if (!e)
        return 0; /* out of memory: not counted, not refused */
    if (e->attempts == 0 || now - e->window_start >= c->window) {
        e->window_start = now;
        e->attempts = 0;
    }
    if (e->attempts < UINT32_MAX)
        e->attempts++;
    return e->attempts;
}

bool conn_rate_allow(struct conn_counts *c, const char *ip, unsigned limit, double now)
{
    return conn_rate_take(c, ip, now) <= limit;
}

void conn_counts_remove(struct conn_counts *c, const char *ip)
{
    struct ip_entry **pp = slot(c, ip), *e = *pp;
    if (!e)
        return;
    if (--e->count == 0 && e->attempts == 0) {
        *pp = e->next;
        c->n--;
        free(e);
    }
}
