/* conn_count.c - chained hash of client address -> open connections (see conn_count.h). An
 * address's entry exists only while it has connections; the buckets double when entries outnumber
 * them. */
#include "conn_count.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strmap.h"

struct ip_entry {
    struct ip_entry *next;
    unsigned count;
    char ip[48]; /* INET6_ADDRSTRLEN and then some */
};

struct ip_bucket {
    struct ip_entry *first;
};

struct conn_counts {
    struct ip_bucket *buckets;
    size_t cap, n; /* cap: a power of two */
};

struct conn_counts *conn_counts_new(void)
{
    struct conn_counts *c = calloc(1, sizeof *c);
    if (c && !(c->buckets = calloc(64, sizeof *c->buckets))) {
        free(c);
        return NULL;
    }
    if (c)
        c->cap = 64;
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
    size_t ncap = c->cap * 2;
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

bool conn_counts_add(struct conn_counts *c, const char *ip, unsigned limit)
{
    struct ip_entry **pp = slot(c, ip);
    if (*pp && (*pp)->count >= limit)
        return false;
    if (!*pp) {
        if (limit == 0)
            return false;
        struct ip_entry *e = calloc(1, sizeof *e);
        if (!e)
            return false;
        snprintf(e->ip, sizeof e->ip, "%s", ip);
        *pp = e;
        if (++c->n > c->cap)
            grow(c);
        pp = slot(c, ip);
    }
    (*pp)->count++;
    return true;
}

void conn_counts_remove(struct conn_counts *c, const char *ip)
{
    struct ip_entry **pp = slot(c, ip), *e = *pp;
    if (!e)
        return;
    if (--e->count == 0) {
        *pp = e->next;
        c->n--;
        free(e);
    }
}
