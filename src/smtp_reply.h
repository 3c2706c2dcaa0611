/* smtp_reply.h - strict, bounded parser for the replies of a remote SMTP server (RFC 5321 4.2).
 * Pure: no I/O, no allocation. Fed one line at a time (CRLF removed); a fuzz target.
 * Refuses (SMTP_REPLY_BAD): a line over 512 octets, a code that is not 3 digits in 2xx-5xx, a
 * separator other than ' ', '-' or the line's end, a continuation whose code differs from the
 * first line's, more than SMTP_REPLY_MAX_LINES lines. */
#ifndef POSTERN_SMTP_REPLY_H
#define POSTERN_SMTP_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#define SMTP_REPLY_LINE_MAX 512   /* octets, CRLF included (RFC 5321 4.5.3.1.5) */
#define SMTP_REPLY_MAX_LINES 100
#define SMTP_REPLY_TEXT_MAX 1024  /* kept text: the lines joined with "\n", cut beyond this */

struct smtp_reply {
    int code;                      /* 0 until the first line */
    char enhanced[16];             /* "5.1.1" when the first line carries one, else "" */
    unsigned nlines;
    char text[SMTP_REPLY_TEXT_MAX]; /* the text after "NNN " / "NNN-" of each line, without the enhanced code */
    size_t text_len;
};

enum smtp_reply_step { SMTP_REPLY_MORE, SMTP_REPLY_DONE, SMTP_REPLY_BAD };

void smtp_reply_reset(struct smtp_reply *r);

/* Adds one line (without its CRLF; len excludes it). */
enum smtp_reply_step smtp_reply_feed(struct smtp_reply *r, const char *line, size_t len);

/* "550 5.1.1 first line text" (the first line only, printable ASCII only) into out. */
void smtp_reply_summary(const struct smtp_reply *r, char *out, size_t outsz);

/* Length of a leading enhanced status code "d.ddd.ddd" (class 2, 4 or 5) followed by a space or
 * the end of s; 0 when s does not start with one. */
size_t smtp_enhanced_code_len(const char *s);

/* True when the text s starts with an enhanced status code of class c ("5.1.1 "); *n = its length. */
bool smtp_enhanced_code_prefix(const char *s, size_t len, char cls, size_t *n);

#endif
