/* greylist.c - see greylist.h. An open-addressing table (linear probing, at most half full) of
 * 64-bit keys: a triplet's ("t" net sender rcpt) and a network's ("n" net). An entry with no
 * pass yet lives until its retry window is over; one that passed (a triplet) or counts passes (a
 * network) until max_age after its last use. Expired entries go when the table is rebuilt
 * (greylist_expire, also when it is full). */
#include "greylist.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"

#define FILE_HEAD "postern-greylist 1\n"

struct entry {
    uint64_t key;   /* 0: free */
    uint32_t first; /* seconds since the epoch: its first try */
    uint32_t last;  /* its last use */
    uint32_t count; /* a triplet: 1 once passed; a network: its passed triplets */
};

struct greylist {
    struct greylist_limits lim;
    struct entry *slots;
    size_t cap; /* a power of two, at least twice lim.max_entries */
    size_t n;
    bool dirty;
};

static size_t capacity_for(size_t max_entries)
{
    size_t cap = 64;
    while (cap < 2 * max_entries)
        cap *= 2;
    return cap;
}

struct greylist *greylist_new(const struct greylist_limits *limits)
{
    struct greylist *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->lim = *limits;
    g->cap = capacity_for(limits->max_entries);
    if (!(g->slots = calloc(g->cap, sizeof *g->slots))) {
        free(g);
        return NULL;
    }
    return g;
}

void greylist_set_limits(struct greylist *g, const struct greylist_limits *limits)
{
    size_t max = g->lim.max_entries;
    g->lim = *limits;
    g->lim.max_entries = max;
}

void greylist_free(struct greylist *g)
{
    if (!g)
        return;
    free(g->slots);
    free(g);
}

/* 64 bits of SHA-256 over the NUL-separated parts (never 0: that marks a free slot). */
static uint64_t key_of(const char *kind, const char *net, const char *sender, const char *rcpt)
{
    char buf[1100];
    int n = snprintf(buf, sizeof buf, "%s%c%s%c%s%c%s", kind, 0, net, 0, sender ? sender : "", 0, rcpt ? rcpt : "");
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    uint64_t k = 0;
    size_t len = n < 0 ? 0 : (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1;
    if (EVP_Digest(buf, len, md, &mdlen, EVP_sha256(), NULL) == 1)
        memcpy(&k, md, sizeof k);
    return k ? k : 1;
}

/* The slot holding key, or the free slot where it would go. */
static struct entry *slot_for(const struct greylist *g, uint64_t key)
{
    size_t mask = g->cap - 1;
    for (size_t i = (size_t)key & mask;; i = (i + 1) & mask)
        if (g->slots[i].key == key || g->slots[i].key == 0)
            return &g->slots[i];
}

/* True when e's time is over at now. */
static bool expired(const struct greylist *g, const struct entry *e, uint32_t now)
{
    if (e->count == 0)
        return now - e->first > g->lim.retry_window;
    return now - e->last > g->lim.max_age;
}

void greylist_expire(struct greylist *g, time_t now)
{
    size_t over = 0;
    for (size_t i = 0; i < g->cap; i++)
        over += g->slots[i].key && expired(g, &g->slots[i], (uint32_t)now);
    struct entry *fresh = over ? calloc(g->cap, sizeof *fresh) : NULL;
    if (!fresh)
        return; /* none over (or out of memory): kept as it is */
    struct entry *old = g->slots;
    size_t cap = g->cap;
    g->slots = fresh;
    g->n = 0;
    for (size_t i = 0; i < cap; i++)
        if (old[i].key && !expired(g, &old[i], (uint32_t)now)) {
            *slot_for(g, old[i].key) = old[i];
            g->n++;
        }
    g->dirty = true;
    free(old);
}

/* A new entry for key at now in its free slot e; false when the table is full of live entries. */
static bool add(struct greylist *g, struct entry **e, uint64_t key, time_t now)
{
    if (g->n >= g->lim.max_entries) {
        greylist_expire(g, now);
        if (g->n >= g->lim.max_entries)
            return false;
        *e = slot_for(g, key);
    }
    **e = (struct entry){.key = key, .first = (uint32_t)now, .last = (uint32_t)now};
    g->n++;
    g->dirty = true;
    return true;
}

/* One more passed triplet for the network. */
static void count_pass(struct greylist *g, const char *net, time_t now)
{
    uint64_t key = key_of("n", net, NULL, NULL);
    struct entry *e = slot_for(g, key);
    if (e->key == key && expired(g, e, (uint32_t)now))
        *e = (struct entry){.key = key, .first = (uint32_t)now};
    if (e->key == key || add(g, &e, key, now)) {
        e->count++;
        e->last = (uint32_t)now;
    }
}

/* True when the network has passed auto_allow triplets (its use noted). */
static bool network_allowed(struct greylist *g, const char *net, time_t now)
{
    if (!g->lim.auto_allow)
        return false;
    uint64_t key = key_of("n", net, NULL, NULL);
    struct entry *e = slot_for(g, key);
    if (e->key != key || expired(g, e, (uint32_t)now) || e->count < g->lim.auto_allow)
        return false;
    e->last = (uint32_t)now;
    g->dirty = true;
    return true;
}

enum greylist_verdict greylist_judge(struct greylist *g, const char *net, const char *sender, const char *rcpt,
                                     time_t now, unsigned *wait)
{
    *wait = 0;
    if (network_allowed(g, net, now))
        return GREYLIST_ALLOWED;
    uint64_t key = key_of("t", net, sender, rcpt);
    struct entry *e = slot_for(g, key);
    uint32_t t = (uint32_t)now;
    if (e->key == key && !expired(g, e, t)) {
        g->dirty = true;
        if (e->count) {
            e->last = t;
            return GREYLIST_KNOWN;
        }
        if (t - e->first >= g->lim.delay) {
            e->count = 1;
            e->last = t;
            count_pass(g, net, now);
            return GREYLIST_PASSED;
        }
        *wait = g->lim.delay - (t - e->first);
        return GREYLIST_DEFERRED;
    }
    if (e->key == key) { /* over: it starts again */
        *e = (struct entry){.key = key, .first = t, .last = t};
        g->dirty = true;
    } else if (!add(g, &e, key, now)) {
        return GREYLIST_FULL;
    }
    *wait = g->lim.delay;
    return GREYLIST_DEFERRED;
}

void greylist_sender_key(const char *sender, char *out, size_t outsz)
{
    const char *at = strrchr(sender, '@');
    size_t o = 0;
    bool cut = false, digits = false;
    if (!*sender) {
        snprintf(out, outsz, "<>");
        return;
    }
    for (const char *p = sender; *p && o + 1 < outsz; p++) {
        bool local = at && p < at;
        if (local && (*p == '+' || *p == '='))
            cut = true;
        if (local && cut)
            continue;
        if (local && isdigit((unsigned char)*p)) {
            if (!digits)
                out[o++] = '#';
            digits = true;
            continue;
        }
        digits = false;
        out[o++] = (char)tolower((unsigned char)*p);
    }
    out[o] = '\0';
}

bool greylist_network(const char *ip, char *out, size_t outsz)
{
    unsigned char a[16];
    char text[INET6_ADDRSTRLEN];
    if (inet_pton(AF_INET, ip, a) == 1) {
        snprintf(out, outsz, "%u.%u.%u.0/24", a[0], a[1], a[2]);
        return true;
    }
    if (inet_pton(AF_INET6, ip, a) != 1)
        return false;
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(a, mapped, sizeof mapped) == 0) { /* an IPv4 client on an IPv6 socket */
        snprintf(out, outsz, "%u.%u.%u.0/24", a[12], a[13], a[14]);
        return true;
    }
    memset(a + 8, 0, 8);
    inet_ntop(AF_INET6, a, text, sizeof text);
    snprintf(out, outsz, "%s/64", text);
    return true;
}

size_t greylist_count(const struct greylist *g)
{
    return g->n;
}

bool greylist_dirty(const struct greylist *g)
{
    return g->dirty;
}

char *greylist_save(struct greylist *g, size_t *len)
{
    size_t line = 16 + 3 * 11 + 1, cap = sizeof FILE_HEAD + g->n * line + 1;
    char *text = malloc(cap);
    if (!text)
        return NULL;
    size_t o = (size_t)snprintf(text, cap, "%s", FILE_HEAD);
    for (size_t i = 0; i < g->cap && o < cap; i++) {
        const struct entry *e = &g->slots[i];
        if (e->key)
            o += (size_t)snprintf(text + o, cap - o, "%016" PRIx64 " %" PRIu32 " %" PRIu32 " %" PRIu32 "\n", e->key,
                                  e->first, e->last, e->count);
    }
    *len = o < cap ? o : cap - 1;
    g->dirty = false;
    return text;
}

bool greylist_write(const char *path, const char *text, size_t len)
{
    return file_replace(path, text, len) == 0;
}

/* The number at *p in base, up to max, then one blank (or the line's end when last); *p moved past. */
static bool field(const char **p, int base, unsigned long long max, bool last, unsigned long long *v)
{
    char *end;
    errno = 0;
    *v = strtoull(*p, &end, base);
    if (end == *p || errno || *v > max || **p == '-' || *end != (last ? '\n' : ' '))
        return false;
    *p = end + 1;
    return true;
}

/* One line of the file ("key first last count") into e; false when it is not an entry. */
static bool parse_line(const char *line, struct entry *e)
{
    unsigned long long key, first, last, count;
    const char *p = line;
    if (!field(&p, 16, UINT64_MAX, false, &key) || !field(&p, 10, UINT32_MAX, false, &first) ||
        !field(&p, 10, UINT32_MAX, false, &last) || !field(&p, 10, UINT32_MAX, true, &count) || key == 0 ||
        last < first)
        return false;
    *e = (struct entry){.key = key, .first = (uint32_t)first, .last = (uint32_t)last, .count = (uint32_t)count};
    return true;
}

bool greylist_load(struct greylist *g, const char *path, time_t now, size_t *dropped)
{
    *dropped = 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char line[128];
    bool head = fgets(line, sizeof line, f) && strcmp(line, FILE_HEAD) == 0;
    while (head && fgets(line, sizeof line, f)) {
        struct entry e;
        if (!parse_line(line, &e) || expired(g, &e, (uint32_t)now) || g->n >= g->lim.max_entries) {
            *dropped += 1;
            continue;
        }
        struct entry *s = slot_for(g, e.key);
        g->n += s->key == 0;
        *s = e;
    }
    fclose(f);
    if (!head)
        *dropped += 1;
    return true;
}
