/* Unit tests for milter.c: packets both ways, the negotiation reply, custom replies, the header
 * edit arguments and the edits themselves on a message text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "milter.h"

static void test_packets(void **state)
{
    (void)state;
    struct evbuffer *b = evbuffer_new();
    milter_packet(b, 'H', "mx.example\0", 11);
    milter_optneg(b, 0x11, 0x1234);
    unsigned char head[5];
    evbuffer_copyout(b, head, 5);
    assert_memory_equal(head, "\0\0\0\x0cH", 5);
    char cmd, *data;
    size_t len;
    assert_int_equal(milter_packet_take(b, &cmd, &data, &len), 1);
    assert_int_equal(cmd, 'H');
    assert_int_equal(len, 11);
    assert_string_equal(data, "mx.example");
    free(data);
    assert_int_equal(milter_packet_take(b, &cmd, &data, &len), 1);
    uint32_t v, a, p;
    assert_true(milter_optneg_parse(data, len, &v, &a, &p));
    assert_true(v == 6 && a == 0x11 && p == 0x1234);
    assert_false(milter_optneg_parse(data, 11, &v, &a, &p));
    free(data);
    assert_int_equal(milter_packet_take(b, &cmd, &data, &len), 0); /* nothing left */
    evbuffer_add(b, "\0\0\0\x05y55", 7);                            /* a packet not all there yet */
    assert_int_equal(milter_packet_take(b, &cmd, &data, &len), 0);
    evbuffer_drain(b, 7);
    evbuffer_add(b, "\0\0\0\0", 4); /* empty: not a packet */
    assert_int_equal(milter_packet_take(b, &cmd, &data, &len), -1);
    evbuffer_drain(b, 4);
    evbuffer_add(b, "\x7f\0\0\0", 4); /* 2 GB: a broken filter */
    assert_int_equal(milter_packet_take(b, &cmd, &data, &len), -1);
    evbuffer_free(b);
}

static void test_custom_replies(void **state)
{
    (void)state;
    char text[64];
    int k;
    assert_true(milter_reply_parse("550 5.7.1 Spam detected", 23, &k, text, sizeof text));
    assert_int_equal(k, 5);
    assert_string_equal(text, "Spam detected");
    assert_true(milter_reply_parse("451 try later\r\n", 15, &k, text, sizeof text));
    assert_int_equal(k, 4);
    assert_string_equal(text, "try later");
    assert_true(milter_reply_parse("554-5.7.0 first\r\n554 5.7.0 second", 34, &k, text, sizeof text));
    assert_string_equal(text, "first");
    assert_true(milter_reply_parse("550", 3, &k, text, sizeof text));
    assert_string_equal(text, "");
    assert_true(milter_reply_parse("550 a\x01z", 7, &k, text, sizeof text));
    assert_string_equal(text, "a?z");
    assert_false(milter_reply_parse("250 ok", 6, &k, text, sizeof text));
    assert_false(milter_reply_parse("5x0 no", 6, &k, text, sizeof text));
    assert_false(milter_reply_parse("550x", 4, &k, text, sizeof text));
}

static void test_edit_arguments(void **state)
{
    (void)state;
    uint32_t index = 0;
    const char *name, *value;
    assert_true(milter_header_args("X-Spam\0yes\0", 11, false, &index, &name, &value));
    assert_string_equal(name, "X-Spam");
    assert_string_equal(value, "yes");
    assert_true(milter_header_args("\0\0\0\2Subject\0\0", 13, true, &index, &name, &value));
    assert_int_equal(index, 2);
    assert_string_equal(value, "");
    assert_false(milter_header_args("Bad Name\0v\0", 11, false, &index, &name, &value));
    assert_false(milter_header_args("A:b\0v\0", 6, false, &index, &name, &value));
    assert_false(milter_header_args("\0v\0", 3, false, &index, &name, &value));
    assert_false(milter_header_args("\0\0", 2, true, &index, &name, &value));
    assert_false(milter_header_args("NoNul", 5, false, &index, &name, &value));
}

/* text's content as a C string (freed by the caller). */
static char *contents(struct evbuffer *text)
{
    size_t n = evbuffer_get_length(text);
    char *s = malloc(n + 1);
    evbuffer_copyout(text, s, n);
    s[n] = '\0';
    return s;
}

static void test_edits(void **state)
{
    (void)state;
    struct evbuffer *t = evbuffer_new();
    evbuffer_add_printf(t, "From: a@b\nX-Tag: one\nSubject: hi\n there\nX-Tag: two\n\nbody\nX-Tag: not a field\n");
    assert_true(milter_header_add(t, "X-Spam", "no\r\n")); /* a line break at the end: no empty line */
    assert_true(milter_header_insert(t, 0, "X-First", " lead"));
    assert_true(milter_header_insert(t, 2, "X-Third", "a\r\nb")); /* a bare line break is folded */
    assert_true(milter_header_change(t, 2, "x-tag", "TWO"));
    assert_true(milter_header_change(t, 1, "Subject", ""));      /* deleted, with its continuation */
    assert_false(milter_header_change(t, 3, "X-Tag", "none"));   /* no third: nothing done */
    char *s = contents(t);
    assert_string_equal(s, "X-First: lead\nFrom: a@b\nX-Third: a\n b\nX-Tag: one\nx-tag: TWO\nX-Spam: no\n\n"
                           "body\nX-Tag: not a field\n");
    free(s);
    evbuffer_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_packets),
        cmocka_unit_test(test_custom_replies),
        cmocka_unit_test(test_edit_arguments),
        cmocka_unit_test(test_edits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
