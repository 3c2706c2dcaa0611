/* taglist.c - see taglist.h. */
#include "taglist.h"

#include <string.h>
#include <strings.h>

static bool blank(char c)
{
    return c == ' ' || c == '\t';
}

char *tag_trim(char *s)
{
    while (blank(*s))
        s++;
    size_t n = strlen(s);
    while (n && blank(s[n - 1]))
        s[--n] = '\0';
    return s;
}

bool tag_list_parse(char *s, struct tag_list *t)
{
    static const char name_chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_";
    t->n = 0;
    for (char *save = NULL, *part = strtok_r(s, ";", &save); part; part = strtok_r(NULL, ";", &save)) {
        char *eq = strchr(part, '=');
        if (!eq)
            return *tag_trim(part) == '\0' && !strtok_r(NULL, ";", &save); /* only an empty last one */
        *eq = '\0';
        char *name = tag_trim(part), *value = tag_trim(eq + 1);
        if (!*name || t->n == TAG_LIST_MAX || strspn(name, name_chars) != strlen(name))
            return false;
        for (size_t i = 0; i < t->n; i++)
            if (strcmp(t->v[i].name, name) == 0)
                return false;
        t->v[t->n++] = (struct tag){name, value};
    }
    return true;
}

const char *tag_list_get(const struct tag_list *t, const char *name)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->v[i].name, name) == 0)
            return t->v[i].value;
    return NULL;
}

bool tag_list_has(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = list; p && *p; p = strchr(p, ':') ? strchr(p, ':') + 1 : NULL) {
        while (blank(*p))
            p++;
        size_t k = strcspn(p, ":");
        while (k && blank(p[k - 1]))
            k--;
        if (k == n && strncasecmp(p, word, n) == 0)
            return true;
    }
    return false;
}
