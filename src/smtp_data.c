/* smtp_data.c - the DATA state machine (RFC 5321 4.1.1.4 and 4.5.2). Only CR LF "." CR LF ends the
 * data; no other sequence (\n.\n, \r\n.\n, \r.\r\n, \n.\r\n, ...) does. Inside a line the text up to
 * the next CR is found with memchr and passed on as one run; only line ends and dots take the switch. */
#include "smtp_data.h"

#include <stdint.h>
#include <string.h>

enum {
    S_BOL,    /* at the beginning of a line */
    S_TEXT,   /* inside a line */
    S_CR,     /* a CR seen inside a line, not yet passed on */
    S_DOT,    /* a line started with '.', not yet passed on */
    S_DOT_CR, /* a line started with ".\r" */
};

void data_reader_init(struct data_reader *r, size_t max_size)
{
    r->state = S_BOL; /* the DATA command's CRLF began this line */
    r->chunked = false;
    r->flags = 0;
    r->size = 0;
    r->max_size = max_size;
}

void data_reader_init_chunked(struct data_reader *r, size_t max_size)
{
    data_reader_init(r, max_size);
    r->chunked = true;
}

struct run {
    const char *in;
    size_t start; /* SIZE_MAX when no bytes are pending */
    struct data_reader *r;
    data_sink sink;
    void *ctx;
    bool nul_seen; /* the whole input holds a NUL: look for it line by line */
};

/* Passes the pending bytes in[start..end) to the sink (unless the message is already refused). */
static void flush(struct run *run, size_t end)
{
    if (run->start != SIZE_MAX && end > run->start && run->r->flags == 0)
        run->sink(run->ctx, run->in + run->start, end - run->start);
    run->start = SIZE_MAX;
}

static void count(struct data_reader *r, size_t n)
{
    r->size += n;
    if (r->size > r->max_size)
        r->flags |= DATA_TOO_BIG;
}

/* Length of the run of line text at p (up to the next CR or the end), found with memchr; flags a
 * bare LF or NUL inside it (NUL only looked for when the input holds one: one memchr per input
 * instead of one per line). This is the hot loop of DATA: no per-byte branching on plain text. */
static size_t text_span(const char *p, size_t n, struct data_reader *r, bool nul_seen)
{
    const char *cr = memchr(p, '\r', n);
    size_t span = cr ? (size_t)(cr - p) : n;
    if (memchr(p, '\n', span))
        r->flags |= DATA_BARE_LF;
    if (nul_seen && memchr(p, '\0', span))
        r->flags |= DATA_NUL;
    return span;
}

size_t data_reader_feed(struct data_reader *r, const char *in, size_t len, data_sink sink, void *ctx, bool *done)
{
    struct run run = {in, SIZE_MAX, r, sink, ctx, memchr(in, '\0', len) != NULL};
    *done = false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        switch (r->state) {
        case S_BOL:
            if (c == '.' && !r->chunked) {
                flush(&run, i);
                r->state = S_DOT;
                continue;
            }
            break;
        case S_DOT:
            if (c == '\r') {
                r->state = S_DOT_CR;
                continue;
            }
            break; /* the stuffed dot is dropped; c is ordinary text */
        case S_DOT_CR:
            if (c == '\n') {
                flush(&run, i);
                r->state = S_BOL;
                *done = true;
                return i + 1;
            }
            r->flags |= DATA_BARE_CR;
            break;
        case S_CR:
            if (c == '\n') {
                run.start = i; /* the line ends in LF alone */
                count(r, 2);
                r->state = S_BOL;
                continue;
            }
            r->flags |= DATA_BARE_CR;
            break;
        case S_TEXT:
            if (c != '\r' && c != '\n' && c != '\0') { /* fast path: skip plain text with memchr */
                size_t span = text_span(in + i, len - i, r, run.nul_seen);
                if (run.start == SIZE_MAX)
                    run.start = i;
                count(r, span);
                i += span - 1; /* the loop's i++ lands on the CR (or the end) */
                continue;
            }
            break;
        default:
            break;
        }
        /* c is text inside a line */
        r->state = S_TEXT;
        if (c == '\r') {
            flush(&run, i);
            r->state = S_CR;
            continue;
        }
        if (c == '\n')
            r->flags |= DATA_BARE_LF; /* and the line does NOT end: stays S_TEXT */
        else if (c == '\0')
            r->flags |= DATA_NUL;
        if (run.start == SIZE_MAX)
            run.start = i;
        count(r, 1);
    }
    flush(&run, len);
    return len;
}

bool data_reader_end(struct data_reader *r)
{
    if (r->state == S_CR)
        r->flags |= DATA_BARE_CR;
    if (r->state != S_TEXT)
        return false;
    count(r, 2);
    r->state = S_BOL;
    return r->flags == 0;
}
