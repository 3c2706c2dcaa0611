/* dkim_canon.c - see dkim_canon.h. Limits: none beyond the message size; the body is walked in
 * place, never copied. */
#include "dkim_canon.h"

#include <event2/buffer.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "address.h"
#include "idn.h"

bool canon_out_init(struct canon_out *o, size_t limit)
{
    o->len = o->written = 0;
    o->limit = limit;
    o->md = EVP_MD_CTX_new();
    return o->md && EVP_DigestInit_ex(o->md, EVP_sha256(), NULL) == 1;
}

void canon_out_byte(struct canon_out *o, unsigned char c)
{
    if (o->written++ >= o->limit)
        return;
    if (o->len == sizeof o->buf) {
        EVP_DigestUpdate(o->md, o->buf, o->len);
        o->len = 0;
    }
    o->buf[o->len++] = c;
}

bool canon_out_final(struct canon_out *o, unsigned char digest[32])
{
    bool ok = o->md && EVP_DigestUpdate(o->md, o->buf, o->len) == 1 && EVP_DigestFinal_ex(o->md, digest, NULL) == 1;
    canon_out_free(o);
    return ok;
}

void canon_out_free(struct canon_out *o)
{
    EVP_MD_CTX_free(o->md);
    o->md = NULL;
}

/* The relaxed form of a field: name lower-cased, unfolded, each run of blanks one space, none
 * around the colon or at the end (RFC 6376 3.4.2). */
static void relaxed_header(struct canon_out *o, const char *p, size_t len)
{
    size_t i = 0;
    while (i < len && p[i] != ':' && p[i] != '\n')
        i++;
    size_t name_end = i;
    while (name_end > 0 && is_wsp(p[name_end - 1]))
        name_end--;
    for (size_t j = 0; j < name_end; j++)
        canon_out_byte(o, (unsigned char)(p[j] >= 'A' && p[j] <= 'Z' ? p[j] + 32 : p[j]));
    canon_out_byte(o, ':');
    bool blank = false, started = false;
    for (i++; i < len; i++) {
        if (p[i] == '\n')
            continue; /* unfolding: the line break goes, the blank after it stays */
        if (is_wsp(p[i])) {
            blank = true;
            continue;
        }
        if (blank && started)
            canon_out_byte(o, ' ');
        blank = false;
        started = true;
        canon_out_byte(o, (unsigned char)p[i]);
    }
}

void canon_header(struct canon_out *o, const char *p, size_t len, bool relaxed, bool crlf)
{
    if (relaxed) {
        relaxed_header(o, p, len);
    } else {
        for (size_t i = 0; i < len; i++) { /* simple: as it is (RFC 6376 3.4.1) */
            if (p[i] == '\n')
                canon_out_byte(o, '\r');
            canon_out_byte(o, (unsigned char)p[i]);
        }
    }
    if (crlf) {
        canon_out_byte(o, '\r');
        canon_out_byte(o, '\n');
    }
}

/* The body in canonical form, chunk by chunk: CRLF line endings, empty lines at the end dropped;
 * relaxed also drops blanks at line ends and makes other runs of blanks one space (a line of
 * blanks is then empty). State carried from chunk to chunk. */
struct body_canon {
    struct canon_out out;
    bool relaxed;
    size_t empty_lines; /* empty lines seen and not yet written (they may be the trailing ones) */
    bool blank;         /* relaxed: blanks seen since the last character written */
    bool line_started;  /* a character of this line was written */
};

static void body_crlf(struct body_canon *b)
{
    canon_out_byte(&b->out, '\r');
    canon_out_byte(&b->out, '\n');
}

static void body_bytes(struct body_canon *b, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '\n') {
            if (b->line_started)
                body_crlf(b);
            else
                b->empty_lines++;
            b->line_started = b->blank = false;
        } else if (b->relaxed && is_wsp(c)) {
            b->blank = true;
        } else {
            if (!b->line_started) {
                for (; b->empty_lines; b->empty_lines--)
                    body_crlf(b);
                b->line_started = true;
            }
            if (b->blank)
                canon_out_byte(&b->out, ' ');
            b->blank = false;
            canon_out_byte(&b->out, (unsigned char)c);
        }
    }
}

bool canon_body_hash(struct evbuffer *text, size_t offset, bool relaxed, size_t limit, unsigned char digest[32],
                     size_t *length)
{
    struct body_canon *b = calloc(1, sizeof *b);
    if (!b || !canon_out_init(&b->out, limit)) {
        if (b)
            canon_out_free(&b->out);
        free(b);
        return false;
    }
    b->relaxed = relaxed;
    size_t total = evbuffer_get_length(text);
    struct evbuffer_ptr pos;
    if (offset < total && evbuffer_ptr_set(text, &pos, offset, EVBUFFER_PTR_SET) == 0) {
        for (size_t left = total - offset; left;) {
            struct evbuffer_iovec v[16];
            int n = evbuffer_peek(text, (ev_ssize_t)left, &pos, v, 16);
            size_t done = 0;
            for (int i = 0; i < n && i < 16 && done < left; i++) {
                size_t take = v[i].iov_len < left - done ? v[i].iov_len : left - done;
                body_bytes(b, v[i].iov_base, take);
                done += take;
            }
            left -= done;
            if (done == 0 || (left && evbuffer_ptr_set(text, &pos, done, EVBUFFER_PTR_ADD) != 0))
                break;
        }
    }
    if (b->line_started) /* the last line had no line ending: it gets one */
        body_crlf(b);
    if (!relaxed && b->out.written == 0) /* simple: an empty body is one CRLF (RFC 6376 3.4.3) */
        body_crlf(b);
    if (length)
        *length = b->out.written;
    bool ok = canon_out_final(&b->out, digest);
    free(b);
    return ok;
}

void canon_text_layout(struct evbuffer *text, size_t *hlen, size_t *body)
{
    size_t total = evbuffer_get_length(text);
    struct evbuffer_ptr end = evbuffer_search(text, "\n\n", 2, NULL);
    *hlen = end.pos < 0 ? total : (size_t)end.pos + 1;
    *body = end.pos < 0 ? total : (size_t)end.pos + 2;
    if (total && *(const char *)evbuffer_pullup(text, 1) == '\n')
        *hlen = 0, *body = 1; /* the text starts with the empty line: no header section */
}

bool split_fields(struct fields *fs, const char *p, size_t len)
{
    size_t first = fs->count; /* fields before this one lie in another buffer */
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(p + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - p) : len;
        if (is_wsp(p[i]) && fs->count > first) {
            struct field *last = &fs->v[fs->count - 1];
            last->len = (size_t)(p + end - last->p);
        } else if (!is_wsp(p[i]) && end > i) {
            if (fs->count == fs->cap) {
                size_t cap = fs->cap ? fs->cap * 2 : 32;
                struct field *grown = realloc(fs->v, cap * sizeof *grown);
                if (!grown)
                    return false;
                fs->v = grown, fs->cap = cap;
            }
            fs->v[fs->count++] = (struct field){p + i, end - i};
        }
        i = end + 1;
    }
    return true;
}

bool field_named(const struct field *f, const char *name)
{
    size_t n = strlen(name);
    if (f->len <= n || strncasecmp(f->p, name, n) != 0)
        return false;
    size_t i = n;
    while (i < f->len && is_wsp(f->p[i]))
        i++;
    return i < f->len && f->p[i] == ':';
}

int field_mailbox_domain(const struct field *f, size_t *pos, char *out, size_t outsz)
{
    char bare[1000], angle[1000];
    size_t nb = 0, na = 0, depth = 0, i = *pos;
    bool in_angle = false, had_angle = false, quoted = false, more = false;
    if (i == 0) { /* the first mailbox: it starts after the field name's colon */
        const char *colon = memchr(f->p, ':', f->len);
        i = colon ? (size_t)(colon - f->p) + 1 : f->len;
    }
    for (; i < f->len && !more; i++) {
        char c = f->p[i];
        if (quoted) {
            quoted = !(c == '"');
            i += c == '\\';
        } else if (depth) {
            depth += (c == '(') - (c == ')');
            i += c == '\\';
        } else if (c == '"') {
            quoted = true;
        } else if (c == '(') {
            depth = 1;
        } else if (c == ',' && !in_angle) {
            more = true; /* the next mailbox starts after it */
            *pos = i + 1;
        } else if (had_angle) {
            continue; /* after the mailbox's <...>: only a comma matters */
        } else if (c == '<') {
            in_angle = true;
        } else if (c == '>' && in_angle) {
            had_angle = true;
            in_angle = false;
        } else if (!is_wsp(c) && c != '\n') {
            if (in_angle && na < sizeof angle - 1)
                angle[na++] = c;
            else if (!in_angle && nb < sizeof bare - 1)
                bare[nb++] = c;
        }
    }
    if (!more)
        *pos = f->len;
    if (!had_angle && !in_angle && nb == 0)
        return -1; /* nothing between two commas (RFC 5322 obs-mbox-list allows it) */
    char *addr = had_angle ? angle : bare;
    addr[had_angle ? na : nb] = '\0';
    const char *at = strrchr(addr, '@');
    bool utf8 = false;
    return at && address_parse_domain(at + 1, strlen(at + 1), &utf8) == ADDR_OK && idn_to_ascii(at + 1, out, outsz);
}

bool field_from_domain(const struct field *f, char *out, size_t outsz, bool *several)
{
    size_t pos = 0;
    bool ok = field_mailbox_domain(f, &pos, out, outsz) == 1;
    if (several)
        *several = pos < f->len;
    return ok;
}
