/* Unit tests for the walk over a message's MIME structure (mime_walk): for each message, the exact
 * sequence of part header blocks and text lines it shows - multiparts with preamble and epilogue,
 * a part with no body, an inner multipart left unclosed, attached messages, digests, nesting past
 * MIME_MAX_DEPTH, and a visitor that stops the walk. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "mime_parse.h"

struct record {
    char out[8192];
    size_t n;
    int stop_after; /* pieces shown before the visitor stops the walk; 0: never */
    int seen;
};

/* mime_visit_fn: appends "H[<block>]" or "L[<line>]" (a block's LFs as '/'). */
static bool record_piece(void *arg, enum mime_piece kind, const char *p, size_t n)
{
    struct record *r = arg;
    r->n += (size_t)snprintf(r->out + r->n, sizeof r->out - r->n, "%c[", kind == MIME_PART_HEADER ? 'H' : 'L');
    for (size_t i = 0; i < n && r->n + 2 < sizeof r->out; i++)
        r->out[r->n++] = p[i] == '\n' ? '/' : p[i];
    r->n += (size_t)snprintf(r->out + r->n, sizeof r->out - r->n, "]");
    return !r->stop_after || ++r->seen < r->stop_after;
}

static const char *walk(const char *text, int stop_after, bool *finished)
{
    static struct record r;
    memset(&r, 0, sizeof r);
    r.stop_after = stop_after;
    *finished = mime_walk(text, strlen(text), record_piece, &r);
    return r.out;
}

static void expect_walk(const char *text, const char *shown)
{
    bool finished;
    assert_string_equal(walk(text, 0, &finished), shown);
    assert_true(finished);
}

static void test_plain_and_multipart(void **state)
{
    (void)state;
    expect_walk("Subject: x\n\nline 1\nline 2", "L[line 1]L[line 2]");
    expect_walk("\nno header at all\n", "L[no header at all]");
    expect_walk("Subject: only a header\n", "");
    expect_walk("Content-Type: multipart/mixed; boundary=\"b\"\n\npreamble\n--b\nContent-Type: text/plain\n\n"
                "one\n--b\nX-A: 1\n\ntwo\n--b--\nepilogue\n",
                "L[preamble]L[--b]H[Content-Type: text/plain/]L[one]L[--b]H[X-A: 1/]L[two]L[--b--]L[epilogue]");
    /* a part with fields and no body; a part with no fields; a boundary needing its "--" */
    expect_walk("Content-Type: multipart/mixed; boundary=b\n\n--b\nX-A: 1\n--b\n\nbody\nb\n--b--\n",
                "L[--b]H[X-A: 1/]L[--b]L[body]L[b]L[--b--]");
    /* no boundary parameter: not walked into */
    expect_walk("Content-Type: multipart/mixed\n\n--b\nX-A: 1\n\nx\n", "L[--b]L[X-A: 1]L[]L[x]");
}

static void test_nesting(void **state)
{
    (void)state;
    /* the inner multipart is never closed: the outer delimiter still ends it (innermost first) */
    expect_walk("Content-Type: multipart/mixed; boundary=o\n\n--o\nContent-Type: multipart/alternative; boundary=i\n"
                "\n--i\n\nin\n--o\nX-Exe: 1\n\nout\n--o--\n",
                "L[--o]H[Content-Type: multipart/alternative; boundary=i/]L[--i]L[in]L[--o]H[X-Exe: 1/]L[out]"
                "L[--o--]");
    /* an attached message: its own header block is a part's, and so is its parts' */
    expect_walk("Content-Type: multipart/mixed; boundary=o\n\n--o\nContent-Type: message/rfc822\n\nFrom: a\n"
                "Content-Type: multipart/mixed; boundary=n\n\n--n\nX-In: 1\n\nz\n--n--\n--o--\n",
                "L[--o]H[Content-Type: message/rfc822/]H[From: a/Content-Type: multipart/mixed; boundary=n/]"
                "L[--n]H[X-In: 1/]L[z]L[--n--]L[--o--]");
    /* a digest's parts are messages by default (RFC 2046 5.1.5) */
    expect_walk("Content-Type: multipart/digest; boundary=d\n\n--d\n\nFrom: x\nSubject: y\n\nhi\n--d--\n",
                "L[--d]H[From: x/Subject: y/]L[hi]L[--d--]");
}

static void test_depth_bound_and_stop(void **state)
{
    (void)state;
    static char text[16384], expected[16384];
    size_t t = 0, e = 0;
    for (int d = 0; d < MIME_MAX_DEPTH + 2; d++) {
        t += (size_t)snprintf(text + t, sizeof text - t, "Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n", d,
                              d);
        if (d == 0)
            e += (size_t)snprintf(expected + e, sizeof expected - e, "L[--b0]");
        else if (d < MIME_MAX_DEPTH)
            e += (size_t)snprintf(expected + e, sizeof expected - e,
                                  "H[Content-Type: multipart/mixed; boundary=b%d/]L[--b%d]", d, d);
        else if (d == MIME_MAX_DEPTH) /* its fields are a part's; its body is text from here on */
            e += (size_t)snprintf(expected + e, sizeof expected - e,
                                  "H[Content-Type: multipart/mixed; boundary=b%d/]L[--b%d]", d, d);
        else
            e += (size_t)snprintf(expected + e, sizeof expected - e,
                                  "L[Content-Type: multipart/mixed; boundary=b%d]L[]L[--b%d]", d, d);
    }
    expect_walk(text, expected);
    bool finished;
    const char *shown = walk("Content-Type: multipart/mixed; boundary=b\n\n--b\nX: 1\n\na\nb\n", 2, &finished);
    assert_false(finished);
    assert_string_equal(shown, "L[--b]H[X: 1/]");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_and_multipart),
        cmocka_unit_test(test_nesting),
        cmocka_unit_test(test_depth_bound_and_stop),
    };
    return cmocka_run_group_tests_name("mime_parse", tests, NULL, NULL);
}
