/* strmap.c - open addressing with linear probing, FNV-1a hash, load factor below 1/2. */
#include "strmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct strmap_slot {
    char *key;
    char *value;
};

void strmap_init(struct strmap *m)
{
    m->slots = NULL;
    m->cap = 0;
    m->count = 0;
}

void strmap_free(struct strmap *m)
{
    for (size_t i = 0; i < m->cap; i++) {
        free(m->slots[i].key);
        free(m->slots[i].value);
    }
    free(m->slots);
    strmap_init(m);
}

uint64_t str_hash(const char *s)
{
    uint64_t h = 14695981039346656037ull; /* FNV-1a offset basis */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static struct strmap_slot *find(const struct strmap *m, const char *key)
{
    if (m->cap == 0)
        return NULL;
    for (size_t i = str_hash(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1))
        if (!m->slots[i].key || strcmp(m->slots[i].key, key) == 0)
            return &m->slots[i];
}

static bool grow(struct strmap *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 16;
    struct strmap old = *m;
    m->slots = calloc(ncap, sizeof *m->slots);
    if (!m->slots) {
        *m = old;
        return false;
    }
    m->cap = ncap;
    for (size_t i = 0; i < old.cap; i++)
        if (old.slots[i].key)
            *find(m, old.slots[i].key) = old.slots[i];
    free(old.slots);
    return true;
}

bool strmap_put(struct strmap *m, const char *key, const char *value)
{
    if ((m->count + 1) * 2 > m->cap && !grow(m))
        return false;
    struct strmap_slot *s = find(m, key);
    char *v = value ? strdup(value) : NULL;
    if (value && !v)
        return false;
    if (s->key) {
        free(s->value);
        s->value = v;
        return true;
    }
    s->key = strdup(key);
    if (!s->key) {
        free(v);
        return false;
    }
    s->value = v;
    m->count++;
    return true;
}

bool strmap_get(const struct strmap *m, const char *key, const char **value)
{
    struct strmap_slot *s = find(m, key);
    if (!s || !s->key)
        return false;
    if (value)
        *value = s->value;
    return true;
}
