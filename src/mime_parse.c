/* mime_parse.c - see mime_parse.h. */
#include "mime_parse.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "queue_file.h"

const char *mime_field_end(const char *p, const char *end)
{
    for (;;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            return end;
        p = nl + 1;
        if (p >= end || (*p != ' ' && *p != '\t'))
            return p;
    }
}

bool mime_field_is(const char *f, const char *fend, const char *name, const char **value)
{
    size_t n = strlen(name);
    if ((size_t)(fend - f) <= n || strncasecmp(f, name, n) != 0)
        return false;
    const char *p = f + n;
    while (p < fend && (*p == ' ' || *p == '\t')) /* RFC 5322 4.5: obsolete white space before ':' */
        p++;
    if (p >= fend || *p != ':')
        return false;
    *value = p + 1;
    return true;
}

/* The value [v, fend) with its line breaks taken out (unfolded), cut to fit out. */
static void unfold(const char *v, const char *fend, char *out, size_t outsz)
{
    size_t n = 0;
    for (; v < fend && n + 1 < outsz; v++)
        if (*v != '\n' && *v != '\r')
            out[n++] = *v;
    out[n] = '\0';
}

/* Past white space and (nested, escaped) comments: RFC 5322 CFWS, which RFC 2045 allows here. */
static const char *skip_cfws(const char *p)
{
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p != '(')
            return p;
        int depth = 0;
        for (; *p; p++) {
            if (*p == '\\' && p[1])
                p++;
            else if (*p == '(')
                depth++;
            else if (*p == ')' && --depth == 0) {
                p++;
                break;
            }
        }
    }
}

static bool is_token_char(unsigned char ch)
{
    return ch > 32 && ch < 127 && !strchr("()<>@,;:\\\"/[]?=", ch); /* RFC 2045 5.1 tspecials */
}

/* Reads an RFC 2045 token at p into out, lower case (cut to fit); returns the end of it. */
static const char *read_token(const char *p, char *out, size_t outsz)
{
    size_t n = 0;
    for (; is_token_char((unsigned char)*p); p++)
        if (n + 1 < outsz)
            out[n++] = (char)tolower((unsigned char)*p);
    out[n] = '\0';
    return p;
}

/* Reads a parameter value (token or quoted-string) at p into out as it is; *fits is false when it
 * was cut to fit. Returns the end of it. */
static const char *read_value(const char *p, char *out, size_t outsz, bool *fits)
{
    size_t n = 0;
    *fits = true;
    bool quoted = *p == '"';
    if (quoted)
        p++;
    for (; *p && (quoted ? *p != '"' : is_token_char((unsigned char)*p)); p++) {
        if (quoted && *p == '\\' && p[1])
            p++;
        if (n + 1 < outsz)
            out[n++] = *p;
        else
            *fits = false;
    }
    if (quoted && *p == '"')
        p++;
    out[n] = '\0';
    return p;
}

/* Content-Type: type "/" subtype *(";" attribute "=" value) (RFC 2045 5.1); only boundary is kept.
 * A value that does not parse leaves the default, text/plain (RFC 2045 5.2). */
static void read_content_type(const char *v, struct mime_fields *f)
{
    char type[64], subtype[64];
    const char *p = skip_cfws(read_token(skip_cfws(v), type, sizeof type));
    if (*p != '/')
        return;
    p = read_token(skip_cfws(p + 1), subtype, sizeof subtype);
    if (!*type || !*subtype)
        return;
    memcpy(f->type, type, sizeof type);
    memcpy(f->subtype, subtype, sizeof subtype);
    for (;;) {
        p = skip_cfws(p);
        if (*p != ';')
            return;
        char name[32], value[sizeof f->boundary];
        p = skip_cfws(read_token(skip_cfws(p + 1), name, sizeof name));
        if (*p != '=')
            return;
        bool fits;
        p = read_value(skip_cfws(p + 1), value, sizeof value, &fits);
        if (!strcmp(name, "boundary") && fits && *value) {
            memcpy(f->boundary, value, sizeof value);
            f->has_boundary = true;
        }
    }
}

void mime_read_fields(const char *h, size_t hlen, bool in_digest, struct mime_fields *f)
{
    memset(f, 0, sizeof *f);
    snprintf(f->type, sizeof f->type, "%s", in_digest ? "message" : "text"); /* RFC 2046 5.1.5: digests */
    snprintf(f->subtype, sizeof f->subtype, "%s", in_digest ? "rfc822" : "plain");
    const char *end = h + hlen;
    char value[1024] = {0};
    for (const char *p = h, *fe; p < end; p = fe) {
        fe = mime_field_end(p, end);
        const char *v;
        if (mime_field_is(p, fe, "Content-Type", &v)) {
            f->has_content_type = true;
            unfold(v, fe, value, sizeof value);
            read_content_type(value, f);
        } else if (mime_field_is(p, fe, "Content-Transfer-Encoding", &v)) {
            unfold(v, fe, value, sizeof value);
            read_token(skip_cfws(value), f->encoding, sizeof f->encoding);
        } else if (mime_field_is(p, fe, "MIME-Version", &v)) {
            f->has_mime_version = true;
        }
    }
}

int mime_delimiter_kind(const char *line, const char *lend, const char *boundary)
{
    size_t bl = strlen(boundary);
    if ((size_t)(lend - line) < 2 + bl || line[0] != '-' || line[1] != '-' || memcmp(line + 2, boundary, bl) != 0)
        return 0;
    const char *p = line + 2 + bl;
    int kind = 1;
    if (lend - p >= 2 && p[0] == '-' && p[1] == '-') {
        kind = 2;
        p += 2;
    }
    while (p < lend && (*p == ' ' || *p == '\t' || *p == '\r'))
        p++;
    return p == lend ? kind : 0;
}


/* The state of a walk: the multiparts the current line is inside (innermost last), and the header
 * block being read, if any. */
struct walker {
    mime_visit_fn visit;
    void *arg;
    struct {
        char boundary[sizeof ((struct mime_fields *)0)->boundary];
        bool digest;
    } level[MIME_MAX_DEPTH];
    int depth;
    const char *header; /* start of the header block being read; NULL in body text */
    bool top;           /* that block is the message's own (not shown) */
    bool in_digest;     /* that block is of a part of a multipart/digest */
};

/* The multipart level whose delimiter [line, lend) is (innermost first: RFC 2046 5.1.2 has an
 * inner boundary differ from every outer one), *kind 1 or 2 (close); -1 when it is none. */
static int delimiter_level(const struct walker *w, const char *line, const char *lend, int *kind)
{
    if (lend - line < 2 || line[0] != '-' || line[1] != '-')
        return -1;
    for (int k = w->depth - 1; k >= 0; k--)
        if ((*kind = mime_delimiter_kind(line, lend, w->level[k].boundary)) != 0)
            return k;
    return -1;
}

/* The header block [w->header, hend) ended: shows it (a part's or an attached message's), then
 * sets what follows from its fields: a multipart's preamble (a level deeper), an attached
 * message's own header block (message/rfc822), or body text. */
static bool end_header(struct walker *w, const char *hend, bool has_body)
{
    const char *h = w->header;
    w->header = NULL;
    if (!w->top && hend > h && !w->visit(w->arg, MIME_PART_HEADER, h, (size_t)(hend - h)))
        return false;
    w->top = false;
    if (!has_body)
        return true;
    struct mime_fields f;
    mime_read_fields(h, (size_t)(hend - h), w->in_digest, &f);
    if (!strcmp(f.type, "multipart") && f.has_boundary && w->depth < MIME_MAX_DEPTH) {
        memcpy(w->level[w->depth].boundary, f.boundary, sizeof f.boundary);
        w->level[w->depth++].digest = !strcmp(f.subtype, "digest");
    } else if (!strcmp(f.type, "message") && !strcmp(f.subtype, "rfc822")) {
        w->header = hend + 1; /* the attached message's header block starts after the empty line */
        w->in_digest = false;
    }
    return true;
}

bool mime_walk(const char *text, size_t len, mime_visit_fn visit, void *arg)
{
    struct walker w = {.visit = visit, .arg = arg, .header = text, .top = true};
    const char *end = text + len;
    for (const char *line = text, *next; line < end; line = next) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        const char *lend = nl ? nl : end;
        next = nl ? nl + 1 : end;
        int kind, k = delimiter_level(&w, line, lend, &kind);
        if (k >= 0) {
            if (w.header && !end_header(&w, line, false))
                return false;
            if (!visit(arg, MIME_BODY_LINE, line, (size_t)(lend - line)))
                return false;
            w.depth = kind == 2 ? k : k + 1; /* after a close delimiter: the epilogue, text of the outer level */
            w.header = kind == 2 ? NULL : next;
            w.in_digest = w.level[k].digest;
        } else if (w.header) {
            if (line == lend && !end_header(&w, line, true))
                return false;
        } else if (!visit(arg, MIME_BODY_LINE, line, (size_t)(lend - line))) {
            return false;
        }
    }
    return !w.header || w.header >= end || end_header(&w, end, false);
}
