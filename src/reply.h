/* reply.h - the reply catalog: every SMTP reply Postern sends, by id (see reply.def).
 * Sessions never write reply text themselves; they call reply_format() with an id. */
#ifndef POSTERN_REPLY_H
#define POSTERN_REPLY_H

#include <stdarg.h>
#include <stdbool.h>

struct evbuffer;

enum reply_id {
#define R(id, code, enh, text, expl, fix) REPLY_##id,
#include "reply.def"
#undef R
    REPLY__COUNT
};

struct reply_info {
    const char *name;        /* the id without REPLY_, e.g. "RCPT_UNKNOWN" */
    int code;                /* 550 */
    const char *enhanced;    /* "5.1.1" or "" */
    const char *text;        /* client-visible text, may hold %s */
    const char *explanation; /* plain words: what it means */
    const char *fix;         /* plain words: what to do */
};

/* The catalog row for an id. */
const struct reply_info *reply_info(enum reply_id id);

/* Appends one reply line "CODE[-| ]ENH TEXT\r\n" to out; `more` selects the
 * continuation form "CODE-" of a multi-line reply. Extra arguments fill the
 * row's %s conversions. The line is cut to 512 octets (RFC 5321 4.5.3.1.5). */
void reply_format(struct evbuffer *out, bool more, enum reply_id id, ...);
void reply_vformat(struct evbuffer *out, bool more, enum reply_id id, va_list ap);

#endif
