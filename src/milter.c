/* milter.c - see milter.h. */
#include "milter.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dkim_canon.h"

void milter_packet(struct evbuffer *out, char cmd, const void *data, size_t len)
{
    uint32_t n = htonl((uint32_t)len + 1);
    evbuffer_add(out, &n, 4);
    evbuffer_add(out, &cmd, 1);
    if (len)
        evbuffer_add(out, data, len);
}

void milter_optneg(struct evbuffer *out, uint32_t actions, uint32_t protocol)
{
    uint32_t v[3] = {htonl(MILTER_VERSION), htonl(actions), htonl(protocol)};
    milter_packet(out, 'O', v, sizeof v);
}

int milter_packet_take(struct evbuffer *in, char *cmd, char **data, size_t *len)
{
    uint32_t n;
    if (evbuffer_copyout(in, &n, 4) < 4)
        return 0;
    n = ntohl(n);
    if (n == 0 || n > MILTER_PACKET_MAX)
        return -1;
    if (evbuffer_get_length(in) < 4 + (size_t)n)
        return 0;
    char *d = malloc(n); /* the data and its NUL, where the command octet was */
    if (!d)
        return -1;
    evbuffer_drain(in, 4);
    evbuffer_remove(in, cmd, 1);
    evbuffer_remove(in, d, n - 1);
    d[n - 1] = '\0';
    *data = d;
    *len = n - 1;
    return 1;
}

static uint32_t get32(const char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return ntohl(v);
}

bool milter_optneg_parse(const char *data, size_t len, uint32_t *version, uint32_t *actions, uint32_t *protocol)
{
    if (len < 12)
        return false;
    *version = get32(data);
    *actions = get32(data + 4);
    *protocol = get32(data + 8);
    return true;
}

bool milter_reply_parse(const char *data, size_t len, int *klass, char *text, size_t textsz)
{
    if (len < 3 || (data[0] != '4' && data[0] != '5') || data[1] < '0' || data[1] > '9' || data[2] < '0' ||
        data[2] > '9' || (len > 3 && data[3] != ' ' && data[3] != '-'))
        return false;
    *klass = data[0] - '0';
    const char *p = data + 3, *end = data + strnlen(data, len);
    p += strspn(p, " -");
    size_t codelen = strspn(p, "0123456789."); /* the enhanced status code, if any: ours replaces it */
    if (codelen && (p + codelen == end || p[codelen] == ' '))
        p += codelen + strspn(p + codelen, " ");
    size_t n = 0;
    for (; p < end && n + 1 < textsz; p++) {
        if (*p == '\r' || *p == '\n') /* a multi-line reply: its first line */
            break;
        if (*p >= ' ' && *p < 0x7f)
            text[n++] = *p;
        else
            text[n++] = '?';
    }
    while (n && text[n - 1] == ' ')
        n--;
    text[n] = '\0';
    return true;
}

/* True when name is a header field name (RFC 5322 3.6.8: printable ASCII but the colon). */
static bool field_name_ok(const char *name)
{
    if (!*name || strlen(name) > 200)
        return false;
    for (const char *c = name; *c; c++)
        if (*c <= ' ' || *c >= 0x7f || *c == ':')
            return false;
    return true;
}

bool milter_header_args(const char *data, size_t len, bool indexed, uint32_t *index, const char **name,
                        const char **value)
{
    size_t at = 0;
    if (indexed) {
        if (len < 4)
            return false;
        *index = get32(data);
        at = 4;
    }
    const char *n = data + at, *nul = memchr(n, '\0', len - at);
    if (!nul || (size_t)(nul - data) + 1 > len)
        return false;
    *name = n;
    *value = nul + 1; /* NUL-terminated: the packet's own NUL at worst */
    return field_name_ok(n);
}

/* "name: value\n" onto b: the value's CRLF as LF, a line break not followed by a blank given one
 * (the field stays one field), one at its end or before another dropped (an empty line would end
 * the header section), control octets but tab dropped. */
static void add_field_text(struct evbuffer *b, const char *name, const char *value)
{
    evbuffer_add_printf(b, "%s:%s", name, *value == ' ' || *value == '\t' ? "" : " ");
    for (const char *v = value; *v; v++) {
        if (*v == '\r')
            continue;
        if (*v == '\n') {
            const char *next = v + 1 + strspn(v + 1, "\r");
            if (!*next || *next == '\n')
                continue; /* a line break at the end, or before another: no empty line (the header's end) */
            evbuffer_add(b, "\n", 1);
            if (*next != ' ' && *next != '\t')
                evbuffer_add(b, " ", 1);
            continue;
        }
        if ((unsigned char)*v >= ' ' || *v == '\t')
            evbuffer_add(b, v, 1);
    }
    evbuffer_add(b, "\n", 1);
}

/* Replaces the first hlen octets of text with fresh (which is freed). */
static void replace_header(struct evbuffer *text, size_t hlen, struct evbuffer *fresh)
{
    evbuffer_drain(text, hlen);
    evbuffer_prepend_buffer(text, fresh);
    evbuffer_free(fresh);
}

/* The header section of text split into fields (fs), its length in *hlen; false when out of
 * memory. */
static bool header_fields(struct evbuffer *text, size_t *hlen, const char **h, struct fields *fs)
{
    size_t body;
    canon_text_layout(text, hlen, &body);
    *h = *hlen ? (const char *)evbuffer_pullup(text, (ev_ssize_t)*hlen) : "";
    *fs = (struct fields){0};
    return *h && split_fields(fs, *h, *hlen);
}

/* Rewrites the header section: field k (k < fs->count) is replaced by the new field when k is
 * at, and the new field goes before field `at` - or after the last when at is fs->count - when
 * !replace; value NULL with replace deletes field at. */
static bool rewrite(struct evbuffer *text, size_t at, bool replace, const char *name, const char *value)
{
    size_t hlen;
    const char *h;
    struct fields fs = {0};
    struct evbuffer *fresh = evbuffer_new();
    if (!fresh || !header_fields(text, &hlen, &h, &fs)) {
        free(fs.v);
        if (fresh)
            evbuffer_free(fresh);
        return false;
    }
    size_t done = 0; /* octets of h copied */
    for (size_t k = 0; k <= fs.count; k++) {
        size_t start = k < fs.count ? (size_t)(fs.v[k].p - h) : hlen;
        if (k != at)
            continue;
        evbuffer_add(fresh, h + done, start - done);
        done = start;
        if (value)
            add_field_text(fresh, name, value);
        if (replace && k < fs.count)
            done = start + fs.v[k].len + 1 <= hlen ? start + fs.v[k].len + 1 : hlen;
    }
    evbuffer_add(fresh, h + done, hlen - done);
    free(fs.v);
    replace_header(text, hlen, fresh);
    return true;
}

bool milter_header_add(struct evbuffer *text, const char *name, const char *value)
{
    return milter_header_insert(text, UINT32_MAX, name, value);
}

/* Where an edit goes: with name NULL, before field index (the end when there are not that many);
 * else the index-th field named name (1: the first). SIZE_MAX when there is no such field, or out
 * of memory. */
static size_t edit_position(struct evbuffer *text, const char *name, uint32_t index)
{
    size_t hlen, at = SIZE_MAX;
    const char *h;
    struct fields fs = {0};
    if (header_fields(text, &hlen, &h, &fs)) {
        if (!name)
            at = index < fs.count ? index : fs.count;
        for (size_t k = 0, seen = 0; name && k < fs.count && at == SIZE_MAX; k++)
            if (field_named(&fs.v[k], name) && ++seen == index)
                at = k;
    }
    free(fs.v);
    return at;
}

bool milter_header_insert(struct evbuffer *text, uint32_t index, const char *name, const char *value)
{
    size_t at = edit_position(text, NULL, index);
    return at != SIZE_MAX && rewrite(text, at, false, name, value);
}

bool milter_header_change(struct evbuffer *text, uint32_t index, const char *name, const char *value)
{
    size_t at = edit_position(text, name, index);
    return at != SIZE_MAX && rewrite(text, at, true, name, *value ? value : NULL);
}

bool milter_header_edit(struct evbuffer *text, char cmd, uint32_t index, const char *name, const char *value)
{
    if (cmd == 'h')
        return milter_header_add(text, name, value);
    if (cmd == 'i')
        return milter_header_insert(text, index, name, value);
    return milter_header_change(text, index, name, value);
}
