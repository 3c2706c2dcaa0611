/* reply.c - formats replies from the catalog in reply.def. The one choke point for reply text:
 * it bounds every line to 512 octets and never lets a CR or LF from an argument into the output. */
#include "reply.h"

#include <event2/buffer.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const struct reply_info catalog[REPLY__COUNT] = {
#define R(id, code, enh, text, expl, fix) {#id, code, enh, text, expl, fix},
#include "reply.def"
#undef R
};

const struct reply_info *reply_info(enum reply_id id)
{
    return (unsigned)id < REPLY__COUNT ? &catalog[id] : NULL;
}

#define REPLY_LINE_MAX 512

void reply_format(struct evbuffer *out, bool more, enum reply_id id, ...)
{
    va_list ap;
    va_start(ap, id);
    reply_vformat(out, more, id, ap);
    va_end(ap);
}

void reply_vformat(struct evbuffer *out, bool more, enum reply_id id, va_list ap)
{
    const struct reply_info *r = reply_info(id);
    char text[REPLY_LINE_MAX];
    char line[REPLY_LINE_MAX];

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    vsnprintf(text, sizeof text, r->text, ap);
#pragma GCC diagnostic pop
    /* Arguments are validated by callers; still, a control character must never split a reply. */
    for (char *p = text; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';

    int n = snprintf(line, sizeof line - 2, "%d%c%s%s%s", r->code, more ? '-' : ' ', r->enhanced,
                     r->enhanced[0] ? " " : "", text);
    if (n < 0)
        n = 0;
    if ((size_t)n > sizeof line - 3)
        n = (int)(sizeof line - 3);
    line[n] = '\r';
    line[n + 1] = '\n';
    evbuffer_add(out, line, (size_t)n + 2);
}
