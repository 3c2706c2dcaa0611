/* header_checks.c - see header_checks.h. */
#include "header_checks.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The regex between the slashes of "/regex/flags" (a '\' keeps the next character in it, so '\/'
 * is a slash) into out; *rest after the flags. False when the line does not start so. */
static bool split_regex(char *line, char *out, size_t outsz, bool *icase, char **rest, const char **err)
{
    char *p = line + strspn(line, " \t");
    size_t o = 0;
    if (*p++ != '/') {
        *err = "expected /regex/ first";
        return false;
    }
    for (; *p && *p != '/'; p++) {
        if (*p == '\\' && p[1] == '/')
            p++; /* "\/": a slash of the pattern */
        else if (*p == '\\' && p[1])
            out[o++] = *p++;
        if (o + 2 >= outsz) {
            *err = "regex too long";
            return false;
        }
        out[o++] = *p;
    }
    out[o] = '\0';
    if (*p != '/' || o == 0) {
        *err = *p != '/' ? "regex: no closing /" : "regex: empty";
        return false;
    }
    *icase = p[1] == 'i';
    p += 1 + *icase;
    if (*p != ' ' && *p != '\t') {
        *err = "expected 'ACTION' after /regex/ (flags: i)";
        return false;
    }
    *rest = p + strspn(p, " \t");
    return true;
}

/* "REJECT [text]" or "WARN" into r. */
static bool parse_action(char *rest, struct header_rule *r, const char **err)
{
    size_t word = strcspn(rest, " \t");
    const char *text = rest + word + strspn(rest + word, " \t");
    if (word == 4 && strncasecmp(rest, "WARN", 4) == 0 && !*text) {
        r->action = HEADER_WARN;
        return true;
    }
    if (word != 6 || strncasecmp(rest, "REJECT", 6) != 0) {
        *err = "action: expected REJECT [text] or WARN";
        return false;
    }
    r->action = HEADER_REJECT;
    if (!*text)
        text = "refused by this server's header rules";
    size_t n = strlen(text);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)text[i] < 0x20 || (unsigned char)text[i] > 0x7e || text[i] == '%')
            n = 0;
    if (n == 0 || n > HEADER_CHECK_TEXT_MAX) {
        *err = "text: printable ASCII without %, at most 200 characters";
        return false;
    }
    memcpy(r->text, text, n + 1);
    return true;
}

bool header_checks_line(void *arg, char *line, int lineno, const char **err, const char **shown)
{
    struct header_checks *hc = arg;
    char pattern[4096], *rest;
    bool icase;
    (void)shown;
    struct header_rule r = {.line = lineno};
    if (!split_regex(line, pattern, sizeof pattern, &icase, &rest, err) || !parse_action(rest, &r, err))
        return false;
    if (regcomp(&r.re, pattern, REG_EXTENDED | REG_NOSUB | (icase ? REG_ICASE : 0)) != 0) {
        *err = "regex: not a valid POSIX extended regular expression";
        return false;
    }
    if (hc->n == hc->cap) {
        size_t cap = hc->cap ? hc->cap * 2 : 8;
        struct header_rule *grown = realloc(hc->rules, cap * sizeof *grown);
        if (!grown) {
            regfree(&r.re);
            *err = "out of memory";
            return false;
        }
        hc->rules = grown;
        hc->cap = cap;
    }
    hc->rules[hc->n++] = r;
    return true;
}

void header_checks_free(struct header_checks *hc)
{
    for (size_t i = 0; i < hc->n; i++)
        regfree(&hc->rules[i].re);
    free(hc->rules);
    *hc = (struct header_checks){0};
}

/* The field starting at h[i] unfolded into out (its line breaks removed, cut to fit); returns the
 * offset of the next field. */
static size_t unfold(const char *h, size_t i, size_t len, char *out, size_t outsz)
{
    size_t o = 0;
    while (i < len) {
        const char *nl = memchr(h + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - h) : len;
        size_t n = end - i < outsz - 1 - o ? end - i : outsz - 1 - o;
        memcpy(out + o, h + i, n);
        o += n;
        i = end + 1;
        if (i >= len || (h[i] != ' ' && h[i] != '\t'))
            break; /* the next line is not a continuation */
    }
    for (size_t k = 0; k < o; k++)
        if (out[k] == '\0')
            out[k] = ' '; /* cannot happen in an accepted text (NUL is refused), but regexec stops at one */
    out[o] = '\0';
    return i;
}

const struct header_rule *header_checks_run(const struct header_checks *hc, const char *h, size_t len, char *field,
                                            size_t fieldsz, header_warn_fn warn, void *arg)
{
    for (size_t i = 0; hc->n && i < len && i < HEADER_CHECK_SECTION_MAX;) {
        i = unfold(h, i, len, field, fieldsz);
        for (size_t k = 0; k < hc->n; k++) {
            const struct header_rule *r = &hc->rules[k];
            if (regexec(&r->re, field, 0, NULL, 0) != 0)
                continue;
            if (r->action == HEADER_REJECT)
                return r;
            warn(arg, r, field);
            break;
        }
    }
    return NULL;
}
