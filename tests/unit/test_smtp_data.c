/* Unit tests for the DATA reader: every input is also fed in every two-way split, byte by byte,
 * and in random chunks, and must give the same result each time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smtp_data.h"

struct outcome {
    char out[4096];
    size_t out_len;
    size_t consumed; /* bytes up to the end of data, or (size_t)-1 when the end never came */
    unsigned flags;
    size_t size;
};

static void sink(void *ctx, const char *b, size_t n)
{
    struct outcome *o = ctx;
    assert_true(o->out_len + n <= sizeof o->out);
    memcpy(o->out + o->out_len, b, n);
    o->out_len += n;
}

/* Feeds in[] in pieces given by cuts (ascending offsets). */
static void run(const char *in, size_t len, const size_t *cuts, size_t ncuts, size_t max, struct outcome *o)
{
    struct data_reader r;
    data_reader_init(&r, max);
    memset(o, 0, sizeof *o);
    o->consumed = (size_t)-1;
    size_t pos = 0;
    for (size_t c = 0; c <= ncuts && o->consumed == (size_t)-1; c++) {
        size_t end = c < ncuts ? cuts[c] : len;
        while (pos < end) {
            bool done;
            size_t used = data_reader_feed(&r, in + pos, end - pos, sink, o, &done);
            pos += used;
            if (done) {
                o->consumed = pos;
                break;
            }
            assert_int_equal(pos, end); /* not done: everything was consumed */
        }
    }
    o->flags = r.flags;
    o->size = r.size;
}

/* Same end, same flags, and for an accepted message (no flags) the same text. The text of a
 * refused message is discarded by the session, so it is not compared. */
static bool same(const struct outcome *a, const struct outcome *b)
{
    if (a->consumed != b->consumed || a->flags != b->flags)
        return false;
    return a->flags != 0 || (a->out_len == b->out_len && memcmp(a->out, b->out, a->out_len) == 0);
}

/* Checks one input against the expected outcome for every split. */
static void check(const char *in, size_t len, size_t max, const char *expect_out, size_t expect_consumed,
                  unsigned expect_flags)
{
    struct outcome o;
    size_t cuts[4096];
    run(in, len, NULL, 0, max, &o); /* whole */
    struct outcome whole = o;
    if (o.consumed != expect_consumed)
        fail_msg("'%s': consumed %zu, expected %zu", in, o.consumed, expect_consumed);
    if (o.flags != expect_flags)
        fail_msg("'%s': flags %u, expected %u", in, o.flags, expect_flags);
    if (expect_out && (o.out_len != strlen(expect_out) || memcmp(o.out, expect_out, o.out_len) != 0))
        fail_msg("'%s': output '%.*s', expected '%s'", in, (int)o.out_len, o.out, expect_out);
    for (size_t k = 1; k < len; k++) { /* every two-way split */
        cuts[0] = k;
        run(in, len, cuts, 1, max, &o);
        if (!same(&o, &whole))
            fail_msg("'%s': split at %zu differs", in, k);
    }
    for (size_t k = 0; k + 1 < len && k < 4096; k++) /* byte by byte */
        cuts[k] = k + 1;
    run(in, len, cuts, len > 1 ? len - 1 : 0, max, &o);
    assert_true(same(&o, &whole));
    for (int trial = 0; trial < 50; trial++) { /* random chunks */
        size_t n = 0, at = 0;
        while (n < 4096) {
            at += 1 + (size_t)rand() % 7;
            if (at >= len)
                break;
            cuts[n++] = at;
        }
        run(in, len, cuts, n, max, &o);
        assert_true(same(&o, &whole));
    }
}

/* The oracle for where data ends: just past the first CRLF "." CRLF (or a leading ".\r\n"). */
static size_t real_end(const char *in, size_t len)
{
    if (len >= 3 && memcmp(in, ".\r\n", 3) == 0)
        return 3;
    const char *p = memmem(in, len, "\r\n.\r\n", 5);
    return p ? (size_t)(p - in) + 5 : (size_t)-1;
}

#define END ((size_t)-2)
#define CHECK(in, out, consumed, flags) \
    check(in, sizeof(in) - 1, 1 << 20, out, (consumed) == END ? real_end(in, sizeof(in) - 1) : (consumed), flags)

static void test_plain(void **state)
{
    (void)state;
    CHECK("Subject: x\r\n\r\nbody\r\n.\r\n", "Subject: x\n\nbody\n", END, 0);
    CHECK(".\r\n", "", END, 0); /* empty message */
    CHECK("a\r\n.\r\nMAIL FROM:<x@y>\r\n", "a\n", END, 0); /* pipelined command stays unread */
    CHECK("no end yet\r\n", "no end yet\n", (size_t)-1, 0);
    CHECK("no end yet\r\n.", "no end yet\n", (size_t)-1, 0);
    CHECK("no end yet\r\n.\r", "no end yet\n", (size_t)-1, 0);
}

static void test_dot_stuffing(void **state)
{
    (void)state;
    CHECK("..leading dot\r\n.\r\n", ".leading dot\n", END, 0);
    CHECK("...\r\n.\r\n", "..\n", END, 0);
    CHECK("..\r\n.\r\n", ".\n", END, 0);
    CHECK("a.b\r\n.x\r\n.\r\n", "a.b\nx\n", END, 0);
    CHECK("line\r\n. \r\n.\r\n", "line\n \n", END, 0);
}

static void test_smuggling_endings(void **state)
{
    (void)state;
    /* none of these ends the data; the real end comes after and the message is refused */
    CHECK("a\n.\nMAIL FROM:<e@vil>\r\n.\r\n", NULL, END, DATA_BARE_LF);
    CHECK("a\r\n.\nMAIL FROM:<e@vil>\r\n.\r\n", NULL, END, DATA_BARE_LF);
    CHECK("a\n.\r\nMAIL FROM:<e@vil>\r\n.\r\n", NULL, END, DATA_BARE_LF);
    CHECK("a\r.\r\nMAIL FROM:<e@vil>\r\n.\r\n", NULL, END, DATA_BARE_CR);
    CHECK("a\r\n.\rMAIL FROM:<e@vil>\r\n.\r\n", NULL, END, DATA_BARE_CR);
    CHECK("a\r\n\x00.\r\nMAIL FROM:<e@vil>\r\n.\r\n", NULL, END, DATA_NUL);
    CHECK("a\r\n.\x00\r\nMAIL FROM:<e@vil>\r\n.\r\n", NULL, END, DATA_NUL);
    CHECK("a\r\r\n.\r\n", NULL, END, DATA_BARE_CR);
    CHECK("bare\nlf\r\n.\r\n", NULL, END, DATA_BARE_LF);
    CHECK("bare\rcr\r\n.\r\n", NULL, END, DATA_BARE_CR);
    CHECK("\n.\n\r\n.\r\n", NULL, END, DATA_BARE_LF);
}

static void test_nul_inside_a_line(void **state)
{
    (void)state;
    CHECK("ab\0" "cd\r\n.\r\n", NULL, END, DATA_NUL);          /* inside a run of text */
    CHECK("abc\r\nde\0" "f\r\n.\r\n", NULL, END, DATA_NUL);   /* on a later line */
    const char after[] = "abc\r\n.\r\nNO\0" "OP\r\n";           /* after the end: not the message's */
    check(after, sizeof after - 1, 1 << 20, "abc\n", 8, 0);
}

static void test_size_limit(void **state)
{
    (void)state;
    const char *in = "0123456789\r\n0123456789\r\n.\r\n";
    check(in, strlen(in), 24, "0123456789\n0123456789\n", 27, 0); /* exactly at the limit */
    check(in, strlen(in), 23, NULL, 27, DATA_TOO_BIG);              /* one over: read to the end anyway */
    struct data_reader r;
    data_reader_init(&r, 1 << 20);
    bool done;
    struct outcome o = {0};
    data_reader_feed(&r, "ab\r\ncd\r\n.\r\n", 11, sink, &o, &done);
    assert_true(done);
    assert_int_equal(r.size, 8); /* line endings count as CRLF */
}

/* A chunked (BDAT) reader fed in[] in every two-way split: dots are text, nothing ends the data,
 * and data_reader_end adds the line end of an unfinished last line (or flags a CR left pending). */
static void check_chunked(const char *in, size_t len, const char *expect_out, unsigned expect_flags, bool add_end)
{
    for (size_t k = 0; k <= len; k++) {
        struct data_reader r;
        struct outcome o = {.out_len = 0};
        data_reader_init_chunked(&r, 1 << 20);
        bool done = false;
        assert_int_equal(data_reader_feed(&r, in, k, sink, &o, &done), k);
        assert_false(done);
        assert_int_equal(data_reader_feed(&r, in + k, len - k, sink, &o, &done), len - k);
        assert_false(done);
        assert_int_equal(data_reader_end(&r), add_end);
        if (r.flags != expect_flags)
            fail_msg("'%s' split at %zu: flags %u, expected %u", in, k, r.flags, expect_flags);
        if (expect_flags == 0) {
            if (o.out_len != strlen(expect_out) || memcmp(o.out, expect_out, o.out_len) != 0)
                fail_msg("'%s' split at %zu: output '%.*s'", in, k, (int)o.out_len, o.out);
            assert_int_equal(r.size, len + (add_end ? 2 : 0)); /* CRLF counted as sent */
        }
    }
}

static void test_chunked(void **state)
{
    (void)state;
    const char dots[] = "Subject: x\r\n\r\n..two\r\n.\r\nafter\r\n";
    check_chunked(dots, sizeof dots - 1, "Subject: x\n\n..two\n.\nafter\n", 0, false);
    check_chunked("no end", 6, "no end", 0, true);
    check_chunked("", 0, "", 0, false);
    check_chunked("a\r\nb\r", 5, NULL, DATA_BARE_CR, false);
    check_chunked("a\nb\r\n", 5, NULL, DATA_BARE_LF, false);
    check_chunked("a\r\n\0\r\n", 6, NULL, DATA_NUL, false);
}

int main(void)
{
    srand(12345);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain),
        cmocka_unit_test(test_dot_stuffing),
        cmocka_unit_test(test_smuggling_endings),
        cmocka_unit_test(test_nul_inside_a_line),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_chunked),
    };
    return cmocka_run_group_tests_name("smtp_data", tests, NULL, NULL);
}
