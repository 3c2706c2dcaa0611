/* mta_sts.c - see mta_sts.h. */
#include "mta_sts.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Past blanks (space, tab). */
static const char *skip_wsp(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

bool mta_sts_record_id(const char *record, char id[MTA_STS_ID_MAX + 1])
{
    const char *p = record;
    if (strncmp(p, "v=STSv1", 7) != 0)
        return false;
    p += 7;
    bool found = false;
    while (*(p = skip_wsp(p)) == ';') {
        p = skip_wsp(p + 1);
        if (!*p)
            break; /* a final ';' */
        size_t name = strcspn(p, "=; \t");
        if (p[name] != '=')
            return false;
        const char *v = p + name + 1;
        size_t n = strcspn(v, "; \t");
        if (name == 2 && strncmp(p, "id", 2) == 0) {
            if (found || n == 0 || n > MTA_STS_ID_MAX)
                return false;
            for (size_t i = 0; i < n; i++)
                if (!isalnum((unsigned char)v[i]))
                    return false;
            memcpy(id, v, n);
            id[n] = '\0';
            found = true;
        }
        p = v + n;
    }
    return found && *p == '\0';
}

/* The value of a "key: value" line [p, end) when its key is name, trimmed into out; false when
 * the key is another. */
static bool line_value(const char *p, const char *end, const char *name, char *out, size_t outsz)
{
    size_t n = strlen(name);
    if ((size_t)(end - p) < n + 1 || strncmp(p, name, n) != 0 || p[n] != ':')
        return false;
    for (p += n + 1; p < end && (*p == ' ' || *p == '\t');) /* not skip_wsp: the text has no NUL at its end */
        p++;
    while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
        end--;
    size_t len = (size_t)(end - p) < outsz - 1 ? (size_t)(end - p) : outsz - 1;
    memcpy(out, p, len);
    out[len] = '\0';
    return true;
}

/* An mx pattern: a host name of letters, digits, '-' and '.', optionally "*." first; lower-cased,
 * without a final dot. */
static bool mx_pattern(char *v)
{
    size_t n = strlen(v);
    if (n && v[n - 1] == '.')
        v[--n] = '\0';
    char *name = strncmp(v, "*.", 2) == 0 ? v + 2 : v; /* a wildcard only as the first label */
    if (!*name || *name == '.' || name[strlen(name) - 1] == '.' || strstr(name, ".."))
        return false;
    for (char *c = name; *c; c++) {
        if (!isalnum((unsigned char)*c) && *c != '-' && *c != '.')
            return false;
        *c = (char)tolower((unsigned char)*c);
    }
    return true;
}

/* One line of a policy into p (seen: which keys came, for the checks after the last line). */
static bool policy_line(const char *line, const char *end, struct mta_sts_policy *p, unsigned *seen, char *why,
                        size_t whysz)
{
    char v[300] = "";
    if (line_value(line, end, "version", v, sizeof v)) {
        *seen |= 1;
        if (strcmp(v, "STSv1") != 0)
            return snprintf(why, whysz, "version is not STSv1"), false;
    } else if (line_value(line, end, "mode", v, sizeof v)) {
        *seen |= 2;
        if (!strcmp(v, "enforce") || !strcmp(v, "testing") || !strcmp(v, "none"))
            p->mode = v[0] == 'e' ? MTA_STS_ENFORCE : v[0] == 't' ? MTA_STS_TESTING : MTA_STS_NONE;
        else
            return snprintf(why, whysz, "mode is not enforce, testing or none"), false;
    } else if (line_value(line, end, "max_age", v, sizeof v)) {
        *seen |= 4;
        char *e;
        unsigned long age = strtoul(v, &e, 10);
        if (!isdigit((unsigned char)v[0]) || *e || strlen(v) > 10 || age > MTA_STS_MAX_AGE_MAX)
            return snprintf(why, whysz, "max_age is not a number of seconds up to %u", MTA_STS_MAX_AGE_MAX), false;
        p->max_age = (unsigned)age;
    } else if (line_value(line, end, "mx", v, sizeof v)) {
        if (!mx_pattern(v))
            return snprintf(why, whysz, "mx \"%.100s\" is not a host name or *.parent", v), false;
        if (p->nmx < MTA_STS_MX_MAX)
            snprintf(p->mx[p->nmx++], sizeof p->mx[0], "%s", v);
    }
    return true;
}

bool mta_sts_policy_parse(const char *text, size_t len, struct mta_sts_policy *p, char *why, size_t whysz)
{
    memset(p, 0, sizeof *p);
    unsigned seen = 0;
    const char *end = text + len;
    for (const char *line = text, *next; line < end; line = next) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        const char *lend = nl ? nl : end;
        next = nl ? nl + 1 : end;
        if (memchr(line, '\0', (size_t)(lend - line)))
            return snprintf(why, whysz, "a line holds a NUL"), false;
        if (!policy_line(line, lend, p, &seen, why, whysz))
            return false;
    }
    if (!(seen & 1))
        return snprintf(why, whysz, "no version line"), false;
    if (!(seen & 2))
        return snprintf(why, whysz, "no mode line"), false;
    if (!(seen & 4))
        return snprintf(why, whysz, "no max_age line"), false;
    if (p->mode != MTA_STS_NONE && p->nmx == 0)
        return snprintf(why, whysz, "no mx line"), false;
    return true;
}

bool mta_sts_mx_matches(const struct mta_sts_policy *p, const char *host)
{
    char h[256];
    size_t n = strlen(host);
    if (n && host[n - 1] == '.')
        n--;
    if (n == 0 || n >= sizeof h)
        return false;
    for (size_t i = 0; i < n; i++)
        h[i] = (char)tolower((unsigned char)host[i]);
    h[n] = '\0';
    for (size_t i = 0; i < p->nmx; i++) {
        const char *pat = p->mx[i];
        if (strncmp(pat, "*.", 2) != 0) {
            if (!strcmp(pat, h))
                return true;
            continue;
        }
        const char *dot = strchr(h, '.'); /* the wildcard stands for the first label only */
        if (dot && dot > h && !strcmp(dot + 1, pat + 2))
            return true;
    }
    return false;
}

const char *mta_sts_mode_name(enum mta_sts_mode mode)
{
    return mode == MTA_STS_ENFORCE ? "enforce" : mode == MTA_STS_TESTING ? "testing" : "none";
}
