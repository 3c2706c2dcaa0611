/* Unit tests for greylist.c: the verdicts over time (the clock given), the retry window and
 * max_age, auto-allow, a full table, the sender key and the network, and the file read back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "greylist.h"

#define T0 1800000000 /* a time in 2027 */

static const struct greylist_limits LIMITS = {
    .delay = 300, .retry_window = 2 * 86400, .max_age = 35 * 86400, .auto_allow = 3, .max_entries = 1000};

static enum greylist_verdict judge(struct greylist *g, const char *rcpt, time_t now, unsigned *wait)
{
    return greylist_judge(g, "192.0.2.0/24", "a@b.example", rcpt, now, wait);
}

static void test_a_triplet_waits_its_delay_then_passes_and_is_known(void **state)
{
    (void)state;
    struct greylist *g = greylist_new(&LIMITS);
    unsigned wait;
    assert_int_equal(judge(g, "x@y.example", T0, &wait), GREYLIST_DEFERRED);
    assert_int_equal(wait, 300);
    assert_int_equal(judge(g, "x@y.example", T0 + 100, &wait), GREYLIST_DEFERRED);
    assert_int_equal(wait, 200); /* the first try's clock, not restarted by an early retry */
    assert_int_equal(judge(g, "x@y.example", T0 + 300, &wait), GREYLIST_PASSED);
    assert_int_equal(judge(g, "x@y.example", T0 + 301, &wait), GREYLIST_KNOWN);
    assert_int_equal(judge(g, "z@y.example", T0 + 301, &wait), GREYLIST_DEFERRED); /* another triplet */
    assert_int_equal(greylist_judge(g, "192.0.3.0/24", "a@b.example", "x@y.example", T0 + 301, &wait),
                     GREYLIST_DEFERRED); /* another network */
    greylist_free(g);
}

static void test_a_retry_after_its_window_and_a_pass_after_max_age_start_again(void **state)
{
    (void)state;
    struct greylist *g = greylist_new(&LIMITS);
    unsigned wait;
    judge(g, "late@y.example", T0, &wait);
    assert_int_equal(judge(g, "late@y.example", T0 + 2 * 86400 + 1, &wait), GREYLIST_DEFERRED);
    assert_int_equal(wait, 300); /* new again */
    judge(g, "old@y.example", T0, &wait);
    assert_int_equal(judge(g, "old@y.example", T0 + 400, &wait), GREYLIST_PASSED);
    assert_int_equal(judge(g, "old@y.example", T0 + 400 + 35 * 86400, &wait), GREYLIST_KNOWN); /* used: kept */
    assert_int_equal(judge(g, "old@y.example", T0 + 400 + 70 * 86400 + 1, &wait), GREYLIST_DEFERRED);
    greylist_free(g);
}

static void test_a_network_with_enough_passes_is_allowed(void **state)
{
    (void)state;
    struct greylist *g = greylist_new(&LIMITS);
    unsigned wait;
    const char *rcpts[] = {"1@y.example", "2@y.example", "3@y.example"};
    for (int i = 0; i < 3; i++)
        judge(g, rcpts[i], T0, &wait);
    for (int i = 0; i < 2; i++)
        assert_int_equal(judge(g, rcpts[i], T0 + 300, &wait), GREYLIST_PASSED);
    assert_int_equal(judge(g, "4@y.example", T0 + 300, &wait), GREYLIST_DEFERRED); /* two passes: not yet */
    assert_int_equal(judge(g, rcpts[2], T0 + 300, &wait), GREYLIST_PASSED);
    assert_int_equal(judge(g, "5@y.example", T0 + 301, &wait), GREYLIST_ALLOWED);
    struct greylist_limits never = LIMITS;
    never.auto_allow = 0;
    struct greylist *h = greylist_new(&never);
    for (int i = 0; i < 3; i++) {
        judge(h, rcpts[i], T0, &wait);
        judge(h, rcpts[i], T0 + 300, &wait);
    }
    assert_int_equal(judge(h, "5@y.example", T0 + 301, &wait), GREYLIST_DEFERRED);
    greylist_free(g);
    greylist_free(h);
}

static void test_a_full_table_lets_new_triplets_through_until_entries_expire(void **state)
{
    (void)state;
    struct greylist_limits small = LIMITS;
    small.max_entries = 100;
    struct greylist *g = greylist_new(&small);
    unsigned wait;
    char rcpt[32];
    for (int i = 0; i < 100; i++) {
        snprintf(rcpt, sizeof rcpt, "r%d@y.example", i);
        assert_int_equal(judge(g, rcpt, T0, &wait), GREYLIST_DEFERRED);
    }
    assert_int_equal(greylist_count(g), 100);
    assert_int_equal(judge(g, "one-more@y.example", T0 + 1, &wait), GREYLIST_FULL);
    assert_int_equal(judge(g, "r7@y.example", T0 + 400, &wait), GREYLIST_PASSED); /* kept ones still work */
    assert_int_equal(judge(g, "one-more@y.example", T0 + 3 * 86400, &wait), GREYLIST_DEFERRED); /* room made */
    assert_int_equal(greylist_count(g), 2); /* r7 and the new one (r7's network found no room) */
    greylist_free(g);
}

static void test_the_sender_key_folds_tags_digits_and_case(void **state)
{
    (void)state;
    char out[256];
    greylist_sender_key("List-Bounces+123=alice=example.org@Lists.Example", out, sizeof out);
    assert_string_equal(out, "list-bounces@lists.example");
    greylist_sender_key("prvs=4a5b6c7d8e=user@example.com", out, sizeof out);
    assert_string_equal(out, "prvs@example.com");
    greylist_sender_key("news2024-07@shop1.example", out, sizeof out);
    assert_string_equal(out, "news#-#@shop1.example"); /* the domain keeps its digits */
    greylist_sender_key("", out, sizeof out);
    assert_string_equal(out, "<>");
    greylist_sender_key("no-at-sign", out, sizeof out);
    assert_string_equal(out, "no-at-sign");
}

static void test_the_network_is_a_slash_24_or_a_slash_64(void **state)
{
    (void)state;
    char out[64];
    assert_true(greylist_network("192.0.2.77", out, sizeof out));
    assert_string_equal(out, "192.0.2.0/24");
    assert_true(greylist_network("2001:db8:1:2:3:4:5:6", out, sizeof out));
    assert_string_equal(out, "2001:db8:1:2::/64");
    assert_true(greylist_network("::ffff:198.51.100.9", out, sizeof out));
    assert_string_equal(out, "198.51.100.0/24");
    assert_false(greylist_network("not an address", out, sizeof out));
}

static void test_the_file_reads_back_what_was_saved_less_what_expired(void **state)
{
    (void)state;
    struct greylist *g = greylist_new(&LIMITS);
    unsigned wait;
    judge(g, "kept@y.example", T0, &wait);
    judge(g, "kept@y.example", T0 + 300, &wait); /* passed: the triplet and its network */
    judge(g, "pending@y.example", T0, &wait);
    assert_true(greylist_dirty(g));
    size_t len;
    char *text = greylist_save(g, &len);
    assert_non_null(text);
    assert_false(greylist_dirty(g));
    char path[] = "/tmp/postern-greylist-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_true(greylist_write(path, text, len));
    FILE *f = fopen(path, "a");
    fputs("zzzz not an entry\n", f);
    fclose(f);
    struct greylist *back = greylist_new(&LIMITS);
    size_t dropped;
    assert_true(greylist_load(back, path, T0 + 3 * 86400, &dropped)); /* the pending one is past its window */
    assert_int_equal(greylist_count(back), 2);
    assert_int_equal(dropped, 2);
    assert_int_equal(judge(back, "kept@y.example", T0 + 3 * 86400, &wait), GREYLIST_KNOWN);
    assert_int_equal(judge(back, "pending@y.example", T0 + 3 * 86400, &wait), GREYLIST_DEFERRED);
    assert_false(greylist_load(back, "/nonexistent/greylist", T0, &dropped));
    unlink(path);
    free(text);
    greylist_free(g);
    greylist_free(back);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_triplet_waits_its_delay_then_passes_and_is_known),
        cmocka_unit_test(test_a_retry_after_its_window_and_a_pass_after_max_age_start_again),
        cmocka_unit_test(test_a_network_with_enough_passes_is_allowed),
        cmocka_unit_test(test_a_full_table_lets_new_triplets_through_until_entries_expire),
        cmocka_unit_test(test_the_sender_key_folds_tags_digits_and_case),
        cmocka_unit_test(test_the_network_is_a_slash_24_or_a_slash_64),
        cmocka_unit_test(test_the_file_reads_back_what_was_saved_less_what_expired),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
