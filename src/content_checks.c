/* content_checks.c - see content_checks.h. */
#include "content_checks.h"

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

/* "REJECT [text]", "DISCARD [text]" or "WARN" into r. */
static bool parse_action(char *rest, struct content_rule *r, const char **err)
{
    size_t word = strcspn(rest, " \t");
    const char *text = rest + word + strspn(rest + word, " \t");
    if (word == 4 && strncasecmp(rest, "WARN", 4) == 0 && !*text) {
        r->action = CONTENT_WARN;
        return true;
    }
    if (word == 6 && strncasecmp(rest, "REJECT", 6) == 0) {
        r->action = CONTENT_REJECT;
    } else if (word == 7 && strncasecmp(rest, "DISCARD", 7) == 0) {
        r->action = CONTENT_DISCARD;
    } else {
        *err = "action: expected REJECT [text], DISCARD [text] or WARN";
        return false;
    }
    if (!*text)
        text = r->action == CONTENT_REJECT ? "refused by this server's content rules" : "discarded";
    size_t n = strlen(text);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)text[i] < 0x20 || (unsigned char)text[i] > 0x7e || text[i] == '%')
            n = 0;
    if (n == 0 || n > CONTENT_CHECK_TEXT_MAX) {
        *err = "text: printable ASCII without %, at most 200 characters";
        return false;
    }
    memcpy(r->text, text, n + 1);
    return true;
}

bool content_rules_line(void *arg, char *line, int lineno, const char **err, const char **shown)
{
    struct content_rules *hc = arg;
    char pattern[4096], *rest;
    bool icase;
    (void)shown;
    struct content_rule r = {.line = lineno};
    if (!split_regex(line, pattern, sizeof pattern, &icase, &rest, err) || !parse_action(rest, &r, err))
        return false;
    if (regcomp(&r.re, pattern, REG_EXTENDED | REG_NOSUB | (icase ? REG_ICASE : 0)) != 0) {
        *err = "regex: not a valid POSIX extended regular expression";
        return false;
    }
    if (hc->n == hc->cap) {
        size_t cap = hc->cap ? hc->cap * 2 : 8;
        struct content_rule *grown = realloc(hc->rules, cap * sizeof *grown);
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

void content_rules_free(struct content_rules *hc)
{
    for (size_t i = 0; i < hc->n; i++)
        regfree(&hc->rules[i].re);
    free(hc->rules);
    *hc = (struct content_rules){0};
}

/* Ends the text out[0..n) with a NUL, its own NULs blanked: regexec stops at one (an accepted
 * text has none, but the rules must see all of what they are given). */
static void terminate_text(char *out, size_t n)
{
    for (size_t k = 0; k < n; k++)
        if (out[k] == '\0')
            out[k] = ' ';
    out[n] = '\0';
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
    terminate_text(out, o);
    return i;
}

/* The first rule whose regex matches text, or NULL. */
static const struct content_rule *first_match(const struct content_rules *rules, const char *text)
{
    for (size_t k = 0; k < rules->n; k++)
        if (regexec(&rules->rules[k].re, text, 0, NULL, 0) == 0)
            return &rules->rules[k];
    return NULL;
}

/* What the rules say of one field or line: the REJECT or DISCARD that decides, else NULL (a WARN
 * that matched is reported to warn). */
static const struct content_rule *judge(const struct content_rules *rules, const char *text, content_warn_fn warn,
                                        void *arg)
{
    const struct content_rule *r = first_match(rules, text);
    if (r && r->action == CONTENT_WARN)
        warn(arg, r, text);
    return r && r->action != CONTENT_WARN ? r : NULL;
}

const struct content_rule *content_rules_run_fields(const struct content_rules *rules, const char *h, size_t len,
                                                   size_t limit, char *field, size_t fieldsz, content_warn_fn warn,
                                                   void *arg)
{
    for (size_t i = 0; rules->n && i < len && i < limit;) {
        i = unfold(h, i, len, field, fieldsz);
        const struct content_rule *r = judge(rules, field, warn, arg);
        if (r)
            return r;
    }
    return NULL;
}

const struct content_rule *content_rules_run_line(const struct content_rules *rules, const char *line, size_t n,
                                                 char *buf, size_t bufsz, content_warn_fn warn, void *arg)
{
    size_t k = n < bufsz - 1 ? n : bufsz - 1;
    memcpy(buf, line, k);
    terminate_text(buf, k);
    return judge(rules, buf, warn, arg);
}
