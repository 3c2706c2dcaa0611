/* smtp_reply.c - the remote reply parser (see smtp_reply.h for what it refuses). */
#include "smtp_reply.h"

#include <stdio.h>
#include <string.h>

void smtp_reply_reset(struct smtp_reply *r)
{
    memset(r, 0, sizeof *r);
}

/* Digits "d.ddd.ddd" (RFC 3463: class 2/4/5, subject 0-999, detail 0-999) then a space or the end. */
bool smtp_enhanced_code_prefix(const char *s, size_t len, char cls, size_t *n)
{
    size_t i = 0;
    if (len < 5 || s[0] != cls || s[1] != '.')
        return false;
    i = 2;
    for (int part = 0; part < 2; part++) {
        size_t start = i;
        while (i < len && i - start < 3 && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == start)
            return false;
        if (part == 0) {
            if (i >= len || s[i] != '.')
                return false;
            i++;
        }
    }
    if (i < len && s[i] != ' ')
        return false;
    *n = i;
    return true;
}

size_t smtp_enhanced_code_len(const char *s)
{
    size_t n;
    if (s[0] != '2' && s[0] != '4' && s[0] != '5')
        return 0;
    return smtp_enhanced_code_prefix(s, strlen(s), s[0], &n) ? n : 0;
}

/* Appends text to the kept reply text, lines joined with '\n'; control characters become '?'. */
static void keep_text(struct smtp_reply *r, const char *s, size_t len)
{
    if (r->nlines > 1 && r->text_len + 1 < sizeof r->text)
        r->text[r->text_len++] = '\n';
    for (size_t i = 0; i < len && r->text_len + 1 < sizeof r->text; i++) {
        unsigned char c = (unsigned char)s[i];
        char keep = s[i];
        if (c < 0x20 || c == 0x7f)
            keep = '?';
        r->text[r->text_len++] = keep;
    }
    r->text[r->text_len] = '\0';
}

enum smtp_reply_step smtp_reply_feed(struct smtp_reply *r, const char *line, size_t len)
{
    if (len + 2 > SMTP_REPLY_LINE_MAX || len < 3 || r->nlines >= SMTP_REPLY_MAX_LINES)
        return SMTP_REPLY_BAD;
    for (int i = 0; i < 3; i++)
        if (line[i] < '0' || line[i] > '9')
            return SMTP_REPLY_BAD;
    int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    if (line[0] < '2' || line[0] > '5' || line[1] > '5')
        return SMTP_REPLY_BAD;
    if (r->nlines > 0 && code != r->code)
        return SMTP_REPLY_BAD;
    bool last = len == 3 || line[3] == ' ';
    if (len > 3 && line[3] != ' ' && line[3] != '-')
        return SMTP_REPLY_BAD;
    r->code = code;
    r->nlines++;
    const char *text = len > 4 ? line + 4 : "";
    size_t tlen = len > 4 ? len - 4 : 0;
    size_t elen;
    if (smtp_enhanced_code_prefix(text, tlen, line[0], &elen)) {
        if (r->nlines == 1)
            snprintf(r->enhanced, sizeof r->enhanced, "%.*s", (int)elen, text);
        text += elen;
        tlen -= elen;
        while (tlen && *text == ' ')
            text++, tlen--;
    }
    keep_text(r, text, tlen);
    return last ? SMTP_REPLY_DONE : SMTP_REPLY_MORE;
}

void smtp_reply_summary(const struct smtp_reply *r, char *out, size_t outsz)
{
    size_t first = strcspn(r->text, "\n");
    int n = snprintf(out, outsz, "%d%s%s %.*s", r->code, *r->enhanced ? " " : "", r->enhanced, (int)first, r->text);
    for (int i = 0; i < n && (size_t)i < outsz; i++)
        if ((unsigned char)out[i] >= 0x80)
            out[i] = '?';
    /* drop a trailing space left by an empty text */
    size_t l = strlen(out);
    while (l && out[l - 1] == ' ')
        out[--l] = '\0';
}
