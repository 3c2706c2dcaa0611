/* taglist.h - "tag=value; tag=value" lists (RFC 6376 3.2), as DKIM signatures, DKIM key records
 * and DMARC records (RFC 7489 6.4) write them. Pure; parses in place. */
#ifndef POSTERN_TAGLIST_H
#define POSTERN_TAGLIST_H

#include <stdbool.h>
#include <stddef.h>

#define TAG_LIST_MAX 32 /* tags in one list */

struct tag {
    const char *name, *value; /* NUL-terminated inside the parsed text, blanks trimmed */
};

struct tag_list {
    struct tag v[TAG_LIST_MAX];
    size_t n;
};

/* Splits an unfolded tag list in place; false on bad syntax, a tag twice (RFC 6376 3.2), or more
 * than TAG_LIST_MAX tags. A last empty element ("a=1;") is allowed. */
bool tag_list_parse(char *s, struct tag_list *t);

/* The value of tag name (case-sensitive, as RFC 6376 says), or NULL. */
const char *tag_list_get(const struct tag_list *t, const char *name);

/* True when the colon-separated list holds word (blanks around items allowed, no case). */
bool tag_list_has(const char *list, const char *word);

/* s without blanks (space, tab) at either end, in place. */
char *tag_trim(char *s);

#endif
