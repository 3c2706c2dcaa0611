/* strmap.h - a small open-addressing hash map from string to string (both owned copies).
 * Used for the recipient, moved and domain tables; lookups are exact, callers normalise case. */
#ifndef POSTERN_STRMAP_H
#define POSTERN_STRMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct strmap {
    struct strmap_slot *slots;
    size_t cap;   /* power of two, or 0 */
    size_t count;
};

/* FNV-1a hash of a NUL-terminated string (also the queue's id index and the known-Maildir cache). */
uint64_t str_hash(const char *s);

void strmap_init(struct strmap *m);
void strmap_free(struct strmap *m);
/* Inserts or replaces key -> value (value may be NULL for a set). Returns false when out of memory. */
bool strmap_put(struct strmap *m, const char *key, const char *value);
/* True when key is present; *value (if not NULL) receives the stored value. */
bool strmap_get(const struct strmap *m, const char *key, const char **value);

#endif
