/* Unit tests for maildirsize.c: the Maildir++ quota file read as Courier and Dovecot write it
 * (padded lines, negative expunge lines), and rebuilt when it cannot be trusted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "maildirsize.h"

static char box[64];

static void put(const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", box, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static char *get(const char *name)
{
    static char text[8192];
    char path[256];
    snprintf(path, sizeof path, "%s/%s", box, name);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    return text;
}

/* A fresh mailbox with 2 messages: 300 octets in new/, one in cur/ whose name says 1000. */
static int make_box(void **state)
{
    (void)state;
    snprintf(box, sizeof box, "/tmp/maildirsize-test.XXXXXX");
    assert_non_null(mkdtemp(box));
    const char *dirs[] = {"tmp", "new", "cur"};
    for (int i = 0; i < 3; i++) {
        char path[256];
        snprintf(path, sizeof path, "%s/%s", box, dirs[i]);
        assert_int_equal(mkdir(path, 0700), 0);
    }
    char body[301];
    memset(body, 'x', 300);
    body[300] = '\0';
    put("new/1.M1P1.h", body);
    put("cur/2.M1P1.h,S=1000:2,S", "short");
    return 0;
}

static int remove_box(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", box);
    return system(cmd) == 0 ? 0 : -1;
}

static void read_usage(unsigned long long limit, unsigned long long octets, unsigned long long messages)
{
    struct quota_usage u;
    char err[256];
    assert_int_equal(maildirsize_read(box, (struct quota_limit){limit, 0}, &u, err, sizeof err), 0);
    assert_int_equal(u.octets, octets);
    assert_int_equal(u.messages, messages);
}

static void test_lines_add_up(void **state)
{
    (void)state;
    put("maildirsize", "5000S,100C\n  1200     2\n     50     1\n   -250    -1\n"); /* Courier pads */
    read_usage(5000, 1000, 2);
    assert_string_equal(get("maildirsize"), "5000S,100C\n  1200     2\n     50     1\n   -250    -1\n");
    put("maildirsize", "5000S\n10 1\n-500 -3\n"); /* below zero: nothing, never a huge number */
    read_usage(5000, 0, 0);
}

static void test_untrusted_file_is_rebuilt(void **state)
{
    (void)state;
    const char *bad[] = {
        "4000S\n1 1\n",         /* another quota */
        "5000S\n1 1\nx y\n",    /* a line that is no numbers */
        "5000S\n1 1\n7",        /* a line still being written */
        "5000S\n1\n",           /* one number */
        "",                     /* empty */
        "5000C\n1 1\n",         /* no size quota */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        put("maildirsize", bad[i]);
        read_usage(5000, 1300, 2);
        assert_string_equal(get("maildirsize"), "5000S\n1300 2\n");
    }
    char big[MAILDIRSIZE_REBUILD_SIZE + 16] = "5000S\n";
    while (strlen(big) + 4 < MAILDIRSIZE_REBUILD_SIZE)
        strcat(big, "1 0\n");
    strcat(big, "1 0\n");
    put("maildirsize", big); /* grown to the rebuild size */
    read_usage(5000, 1300, 2);
    unlink(strcat(strcpy(big, box), "/maildirsize"));
    read_usage(5000, 1300, 2); /* missing */
}

static void test_full_and_stale_is_counted_again(void **state)
{
    (void)state;
    put("maildirsize", "1000S\n5000 9\n");
    read_usage(1000, 5000, 9); /* full, but just written: trusted */
    char path[256];
    snprintf(path, sizeof path, "%s/maildirsize", box);
    struct timeval old[2] = {{1, 0}, {1, 0}};
    assert_int_equal(utimes(path, old), 0);
    read_usage(1000, 1300, 2); /* full and unchanged for 15 minutes: counted from the messages */
}

/* A message-count quota (Maildir++ 'C'): written with the size quota, or alone; a file stating
 * another count is rebuilt; quota_full judges either count. */
static void test_message_count_quota(void **state)
{
    (void)state;
    struct quota_usage u;
    char err[256];
    assert_int_equal(maildirsize_read(box, (struct quota_limit){5000, 3}, &u, err, sizeof err), 0);
    assert_string_equal(get("maildirsize"), "5000S,3C\n1300 2\n"); /* missing: made with both */
    assert_false(quota_full((struct quota_limit){5000, 3}, &u));
    assert_true(quota_full((struct quota_limit){5000, 2}, &u));     /* 2 messages of 2 */
    assert_true(quota_full((struct quota_limit){1300, 0}, &u));     /* 1300 octets of 1300 */
    assert_false(quota_full((struct quota_limit){0, 0}, &u));       /* no quota */
    put("maildirsize", "3C,5000S\n10 1\n");                         /* either order: trusted */
    assert_int_equal(maildirsize_read(box, (struct quota_limit){5000, 3}, &u, err, sizeof err), 0);
    assert_int_equal(u.messages, 1);
    put("maildirsize", "5000S,9C\n10 1\n");                         /* another count: rebuilt */
    assert_int_equal(maildirsize_read(box, (struct quota_limit){5000, 3}, &u, err, sizeof err), 0);
    assert_string_equal(get("maildirsize"), "5000S,3C\n1300 2\n");
    unlink(strcat(strcpy((char[256]){0}, box), "/maildirsize"));
    assert_int_equal(maildirsize_read(box, (struct quota_limit){0, 3}, &u, err, sizeof err), 0);
    assert_string_equal(get("maildirsize"), "3C\n1300 2\n");      /* a count alone */
    assert_int_equal(maildirsize_read(box, (struct quota_limit){0, 3}, &u, err, sizeof err), 0);
    assert_int_equal(u.octets, 1300);
}

static void test_add_appends_or_makes_the_file(void **state)
{
    (void)state;
    maildirsize_add(box, 77, (struct quota_limit){5000, 0}); /* no file: made from the messages */
    assert_string_equal(get("maildirsize"), "5000S\n1300 2\n");
    maildirsize_add(box, 77, (struct quota_limit){5000, 0});
    assert_string_equal(get("maildirsize"), "5000S\n1300 2\n77 1\n");
    read_usage(5000, 1377, 3);
}

static void test_missing_mailbox_uses_nothing(void **state)
{
    (void)state;
    struct quota_usage u = {1, 1};
    char err[256], path[256];
    snprintf(path, sizeof path, "%s/none", box);
    assert_int_equal(maildirsize_read(path, (struct quota_limit){5000, 0}, &u, err, sizeof err), 0);
    assert_int_equal(u.octets, 0);
    assert_int_equal(access(path, F_OK), -1); /* and nothing made */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lines_add_up, make_box, remove_box),
        cmocka_unit_test_setup_teardown(test_untrusted_file_is_rebuilt, make_box, remove_box),
        cmocka_unit_test_setup_teardown(test_full_and_stale_is_counted_again, make_box, remove_box),
        cmocka_unit_test_setup_teardown(test_message_count_quota, make_box, remove_box),
        cmocka_unit_test_setup_teardown(test_add_appends_or_makes_the_file, make_box, remove_box),
        cmocka_unit_test_setup_teardown(test_missing_mailbox_uses_nothing, make_box, remove_box),
    };
    return cmocka_run_group_tests_name("maildirsize", tests, NULL, NULL);
}
