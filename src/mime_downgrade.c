/* mime_downgrade.c - see mime_downgrade.h. Each entity (a message, or a part of a multipart) is a
 * header block, an empty line and a body: a body that this peer can take as it is (no 8-bit octet
 * for a 7-bit peer, no line over 998 octets) is copied; else Content-Type says whether to walk into
 * it (multipart, message/rfc822) or to encode it. Each level scans its whole body again, so the
 * work is at most MIME_DOWNGRADE_MAX_DEPTH passes over the text. */
#include "mime_downgrade.h"

#include <event2/buffer.h>
#include <stdbool.h>
#include <string.h>

#include "queue_file.h"

#define QP_LINE_MAX 76 /* RFC 2045 6.7 rule 5: encoded lines of at most 76 characters, '=' included */

struct walk {
    struct evbuffer *out;
    bool seven_bit; /* the peer takes no 8-bit octets: every one must be encoded */
    bool nomem;
};

static void put(struct walk *w, const void *p, size_t n)
{
    if (n && evbuffer_add(w->out, p, n) != 0)
        w->nomem = true;
}

static void put_str(struct walk *w, const char *s)
{
    put(w, s, strlen(s));
}

bool mime_has_8bit(const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)text[i] >= 0x80)
            return true;
    return false;
}

bool mime_has_long_line(const char *text, size_t len)
{
    size_t col = 0;
    for (size_t i = 0; i < len; i++) {
        col = text[i] == '\n' ? 0 : col + 1;
        if (col > MIME_LINE_MAX)
            return true;
    }
    return false;
}

/* True when a body must be encoded for this peer: an 8-bit octet it does not take, or a line
 * longer than RFC 5322 2.1.1 allows. */
static bool needs_encoding(const struct walk *w, const char *p, size_t n)
{
    return (w->seven_bit && mime_has_8bit(p, n)) || mime_has_long_line(p, n);
}

/* True when text outside the parts (a preamble, an epilogue), which is never encoded, has an 8-bit
 * octet this peer does not take; long lines there go as they are. */
static bool unsendable(const struct walk *w, const char *p, size_t n)
{
    return w->seven_bit && mime_has_8bit(p, n);
}

/* Copies the header block - without its Content-Transfer-Encoding fields when drop_encoding (the
 * caller adds the one that is true now) - and, for a whole message, adds MIME-Version when it is
 * missing. */
static void put_fields(struct walk *w, const char *h, size_t hlen, const struct mime_fields *f, bool message,
                       bool drop_encoding)
{
    const char *end = h + hlen;
    for (const char *p = h, *fe; p < end; p = fe) {
        fe = mime_field_end(p, end);
        const char *v;
        if (!drop_encoding || !mime_field_is(p, fe, "Content-Transfer-Encoding", &v))
            put(w, p, (size_t)(fe - p));
    }
    if (message && !f->has_mime_version)
        put_str(w, "MIME-Version: 1.0\n");
}

/* Appends body[0..n) as quoted-printable (RFC 2045 6.7): '=', control characters, octets over 126
 * and white space at the end of a line as =XX; soft line breaks ("=" at the end) keep every line
 * within 76 characters. A line that a soft break starts never begins with '-', so it cannot be
 * taken for a boundary of an enclosing multipart. */
static void put_quoted_printable(struct walk *w, const char *body, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    char line[QP_LINE_MAX + 2];
    size_t col = 0;
    bool after_soft_break = false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)body[i];
        if (ch == '\n') {
            line[col++] = '\n';
            put(w, line, col);
            col = 0;
            after_soft_break = false;
            continue;
        }
        bool line_end = i + 1 == n || body[i + 1] == '\n';
        bool literal = (ch >= 33 && ch <= 126 && ch != '=') || ((ch == ' ' || ch == '\t') && !line_end);
        if (col + (literal ? 1 : 3) > QP_LINE_MAX - 1) {
            line[col++] = '=';
            line[col++] = '\n';
            put(w, line, col);
            col = 0;
            after_soft_break = true;
        }
        if (ch == '-' && col == 0 && after_soft_break)
            literal = false;
        if (literal) {
            line[col++] = (char)ch;
        } else {
            line[col++] = '=';
            line[col++] = hex[ch >> 4];
            line[col++] = hex[ch & 15];
        }
    }
    put(w, line, col);
}

static enum mime_downgrade_result convert_entity(struct walk *w, const char *text, size_t len, int depth, bool message,
                                                 bool in_digest);

/* Walks a multipart body: each part between delimiter lines is converted; the preamble, the
 * delimiter lines and the epilogue are copied and must be 7-bit. The LF before a delimiter line
 * belongs to the delimiter (RFC 2046 5.1.1), not to the part. */
static enum mime_downgrade_result convert_multipart(struct walk *w, const char *body, size_t blen,
                                                    const char *boundary, int depth, bool digest)
{
    const char *end = body + blen, *part = NULL;
    bool closed = false;
    for (const char *line = body, *next; line < end && !closed; line = next) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        const char *lend = nl ? nl : end;
        next = nl ? nl + 1 : end;
        int kind = mime_delimiter_kind(line, lend, boundary);
        if (!kind)
            continue;
        const char *copy_from = body;
        if (part) {
            const char *pend = line > part ? line - 1 : part;
            enum mime_downgrade_result r = convert_entity(w, part, (size_t)(pend - part), depth + 1, false, digest);
            if (r != MIME_DOWNGRADE_OK)
                return r;
            copy_from = pend;
        } else if (unsendable(w, body, (size_t)(line - body))) {
            return MIME_DOWNGRADE_8BIT_OUTSIDE; /* the preamble */
        }
        put(w, copy_from, (size_t)(next - copy_from));
        part = next;
        closed = kind == 2;
    }
    if (!part) { /* no delimiter: all of it is preamble */
        if (unsendable(w, body, blen))
            return MIME_DOWNGRADE_8BIT_OUTSIDE;
        put(w, body, blen);
        return MIME_DOWNGRADE_OK;
    }
    if (!closed)                          /* no close delimiter: the last part runs to the end */
        return convert_entity(w, part, (size_t)(end - part), depth + 1, false, digest);
    if (unsendable(w, part, (size_t)(end - part)))
        return MIME_DOWNGRADE_8BIT_OUTSIDE; /* the epilogue */
    put(w, part, (size_t)(end - part));
    return MIME_DOWNGRADE_OK;
}

/* Converts one entity. message: it is a whole message (the top level, or inside message/rfc822),
 * which gets MIME-Version if it has none; in_digest: a part of a multipart/digest. */
static enum mime_downgrade_result convert_entity(struct walk *w, const char *text, size_t len, int depth, bool message,
                                                 bool in_digest)
{
    if (depth > MIME_DOWNGRADE_MAX_DEPTH)
        return MIME_DOWNGRADE_TOO_DEEP;
    size_t hlen = qfile_header_length(text, len);
    if (w->seven_bit && mime_has_8bit(text, hlen))
        return MIME_DOWNGRADE_8BIT_HEADER;
    size_t body_at = hlen < len ? hlen + 1 : len;
    const char *body = text + body_at;
    size_t blen = len - body_at;
    if (!needs_encoding(w, body, blen)) {
        put(w, text, len);
        return MIME_DOWNGRADE_OK;
    }
    bool eight = w->seven_bit && mime_has_8bit(body, blen); /* encoded or refused; long lines may stay */
    struct mime_fields f;
    mime_read_fields(text, hlen, in_digest, &f);
    if (!strcmp(f.type, "multipart")) {
        if (!f.has_boundary && eight)
            return MIME_DOWNGRADE_NO_BOUNDARY;
        if (!f.has_boundary) {
            put(w, text, len);
            return MIME_DOWNGRADE_OK;
        }
        put_fields(w, text, hlen, &f, message, w->seven_bit); /* its 8bit label stays true for an 8-bit peer */
        put(w, "\n", 1);
        return convert_multipart(w, body, blen, f.boundary, depth, !strcmp(f.subtype, "digest"));
    }
    if (!strcmp(f.type, "message") && !strcmp(f.subtype, "rfc822")) {
        put_fields(w, text, hlen, &f, message, w->seven_bit);
        put(w, "\n", 1);
        return convert_entity(w, body, blen, depth + 1, true, false);
    }
    bool plain = !*f.encoding || !strcmp(f.encoding, "7bit") || !strcmp(f.encoding, "8bit") ||
                 !strcmp(f.encoding, "binary");
    if (!plain || (!strcmp(f.type, "message") && strcmp(f.subtype, "global") != 0)) {
        if (eight)
            return MIME_DOWNGRADE_ENCODED_8BIT; /* RFC 2045 6.4: no encoding for message/partial etc. */
        put(w, text, len); /* long lines in an encoded part: its encoder's to mend, not ours */
        return MIME_DOWNGRADE_OK;
    }
    put_fields(w, text, hlen, &f, message, true);
    if (!f.has_content_type) /* RFC 1428: 8-bit text in a charset nobody declared */
        put_str(w, mime_has_8bit(body, blen) ? "Content-Type: text/plain; charset=unknown-8bit\n"
                                        : "Content-Type: text/plain; charset=us-ascii\n");
    put_str(w, "Content-Transfer-Encoding: quoted-printable\n\n");
    put_quoted_printable(w, body, blen);
    return MIME_DOWNGRADE_OK;
}

enum mime_downgrade_result mime_downgrade(const char *text, size_t len, bool seven_bit, struct evbuffer *out)
{
    struct walk w = {.out = out, .seven_bit = seven_bit};
    enum mime_downgrade_result r = convert_entity(&w, text, len, 0, true, false);
    return r == MIME_DOWNGRADE_OK && w.nomem ? MIME_DOWNGRADE_NO_MEMORY : r;
}

const char *mime_downgrade_problem(enum mime_downgrade_result r)
{
    switch (r) {
    case MIME_DOWNGRADE_OK:
        return "converted";
    case MIME_DOWNGRADE_8BIT_HEADER:
        return "a header field has 8-bit characters (only its author can encode them, RFC 2047)";
    case MIME_DOWNGRADE_ENCODED_8BIT:
        return "a part labelled as encoded (base64, quoted-printable) or as a message/partial or "
               "external-body part has 8-bit octets";
    case MIME_DOWNGRADE_8BIT_OUTSIDE:
        return "a multipart has 8-bit octets outside its parts";
    case MIME_DOWNGRADE_NO_BOUNDARY:
        return "a multipart with 8-bit text has no usable boundary parameter";
    case MIME_DOWNGRADE_TOO_DEEP:
        return "its MIME parts are nested too deep";
    case MIME_DOWNGRADE_NO_MEMORY:
        return "out of memory";
    }
    return "unknown";
}
