/* Unit tests for the reply formatter (reply.c): every catalog row, the continuation form, the
 * 512-octet bound and the control-character guard, each checked against a line built with printf. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "reply.h"

/* Formats one reply and returns it as a string (the buffer is static: one reply at a time). */
static const char *formatted(bool more, enum reply_id id, const char *arg)
{
    static char got[1024];
    struct evbuffer *b = evbuffer_new();
    assert_non_null(b);
    reply_format(b, more, id, arg, arg, arg, arg); /* as many as the row with the most %s takes */
    size_t n = evbuffer_get_length(b);
    assert_true(n < sizeof got);
    evbuffer_remove(b, got, n);
    got[n] = '\0';
    evbuffer_free(b);
    return got;
}

/* The line as the catalog row defines it, built the slow, obvious way. */
static const char *expected(bool more, enum reply_id id, const char *arg)
{
    static char want[1024], text[1024];
    const struct reply_info *r = reply_info(id);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    snprintf(text, sizeof text, r->text, arg, arg, arg, arg);
#pragma GCC diagnostic pop
    snprintf(want, sizeof want, "%d%c%s%s%s\r\n", r->code, more ? '-' : ' ', r->enhanced, r->enhanced[0] ? " " : "",
             text);
    return want;
}

static void test_every_row(void **state)
{
    (void)state;
    for (int id = 0; id < REPLY__COUNT; id++) {
        const struct reply_info *r = reply_info((enum reply_id)id);
        assert_true(r->code >= 200 && r->code <= 599);
        assert_string_equal(formatted(false, (enum reply_id)id, "x@example.org"),
                            expected(false, (enum reply_id)id, "x@example.org"));
        assert_string_equal(formatted(true, (enum reply_id)id, "x@example.org"),
                            expected(true, (enum reply_id)id, "x@example.org"));
    }
}

static void test_known_lines(void **state)
{
    (void)state;
    assert_string_equal(formatted(false, REPLY_SENDER_OK, NULL), "250 2.1.0 Sender ok\r\n");
    assert_string_equal(formatted(false, REPLY_QUEUED, "0ABC"), "250 2.0.0 Ok: queued as 0ABC\r\n");
    assert_string_equal(formatted(true, REPLY_RCPT_OK, NULL), "250-2.1.5 Recipient ok\r\n");
}

/* A long argument is cut so that the line with its CRLF is at most 512 octets (RFC 5321 4.5.3.1.5). */
static void test_long_argument_is_cut(void **state)
{
    (void)state;
    char arg[2000];
    memset(arg, 'a', sizeof arg - 1);
    arg[sizeof arg - 1] = '\0';
    const char *got = formatted(false, REPLY_QUEUED, arg);
    size_t n = strlen(got);
    assert_true(n <= 512);
    assert_int_equal(n, 511);
    assert_memory_equal(got, "250 2.0.0 Ok: queued as aaa", 27);
    assert_string_equal(got + n - 3, "a\r\n");
}

/* CR, LF and other control characters from an argument never reach the client. */
static void test_control_characters_are_replaced(void **state)
{
    (void)state;
    assert_string_equal(formatted(false, REPLY_QUEUED, "a\r\n250 b\x7f\x01"), "250 2.0.0 Ok: queued as a??250 b??\r\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_row),
        cmocka_unit_test(test_known_lines),
        cmocka_unit_test(test_long_argument_is_cut),
        cmocka_unit_test(test_control_characters_are_replaced),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
