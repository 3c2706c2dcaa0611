/* libFuzzer target: the DATA reader. The first byte picks a chunk size; the rest is fed in those
 * chunks. Invariants: the result is the same as feeding it whole (end position, flags, and the
 * text when accepted); output never exceeds the counted size; the end is a real CRLF.CRLF.
 * Chunked (BDAT) too: never an end of its own, the same flags and text however it is split, and
 * an accepted text counted at exactly the octets sent (plus the line end data_reader_end adds). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_data.h"

struct out {
    char *buf;
    size_t len, cap;
};

static void sink(void *ctx, const char *b, size_t n)
{
    struct out *o = ctx;
    if (o->len + n > o->cap)
        abort(); /* more text than input: impossible */
    memcpy(o->buf + o->len, b, n);
    o->len += n;
}

/* Returns the end position (or size+1 when no end), fills o and r. */
static size_t feed(const uint8_t *d, size_t size, size_t chunk, struct out *o, struct data_reader *r)
{
    data_reader_init(r, 4096);
    size_t pos = 0;
    while (pos < size) {
        size_t n = size - pos < chunk ? size - pos : chunk;
        bool done;
        size_t used = data_reader_feed(r, (const char *)d + pos, n, sink, o, &done);
        if (used > n || (!done && used != n))
            abort();
        pos += used;
        if (done)
            return pos;
    }
    return size + 1;
}

/* The chunked reader over d in pieces of chunk octets; returns whether data_reader_end added a
 * line end. */
static bool feed_chunked(const uint8_t *d, size_t size, size_t chunk, struct out *o, struct data_reader *r)
{
    data_reader_init_chunked(r, 4096);
    for (size_t pos = 0; pos < size;) {
        size_t n = size - pos < chunk ? size - pos : chunk;
        bool done;
        if (data_reader_feed(r, (const char *)d + pos, n, sink, o, &done) != n || done)
            abort();
        pos += n;
    }
    return data_reader_end(r);
}

/* Aborts unless two reads of one input agree: the same flags and, for an accepted text, the same
 * text. */
static void check_same(const struct out *a, const struct data_reader *ra, const struct out *b,
                       const struct data_reader *rb)
{
    if (ra->flags != rb->flags || (ra->flags == 0 && (a->len != b->len || memcmp(a->buf, b->buf, a->len) != 0)))
        abort();
}

static void check_chunked(const uint8_t *data, size_t size, size_t chunk)
{
    struct out a = {malloc(size + 1), 0, size + 1}, b = {malloc(size + 1), 0, size + 1};
    struct data_reader ra, rb;
    bool end_a = feed_chunked(data, size, size ? size : 1, &a, &ra);
    bool end_b = feed_chunked(data, size, chunk, &b, &rb);
    check_same(&a, &ra, &b, &rb);
    if (end_a != end_b || (ra.flags == 0 && ra.size != size + (end_a ? 2 : 0)))
        abort();
    free(a.buf);
    free(b.buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t chunk = 1 + data[0] % 17;
    data++, size--;
    check_chunked(data, size, chunk);
    struct out a = {malloc(size + 1), 0, size + 1}, b = {malloc(size + 1), 0, size + 1};
    struct data_reader ra, rb;
    size_t end_a = feed(data, size, size ? size : 1, &a, &ra);
    size_t end_b = feed(data, size, chunk, &b, &rb);
    check_same(&a, &ra, &b, &rb);
    if (end_a != end_b)
        abort();
    if (ra.flags == 0 && a.len > ra.size)
        abort();
    if (end_a <= size) { /* ended: the input up to there ends in CRLF.CRLF (or is ".\r\n") */
        if (!(end_a == 3 && memcmp(data, ".\r\n", 3) == 0) &&
            !(end_a >= 5 && memcmp(data + end_a - 5, "\r\n.\r\n", 5) == 0))
            abort();
    }
    free(a.buf);
    free(b.buf);
    return 0;
}
