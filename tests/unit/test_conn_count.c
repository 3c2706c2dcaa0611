/* Unit tests for conn_count.c: open connections per address (max_connections_per_ip) and the
 * connection rate per minute (max_connection_rate_per_ip), with the clock given. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <stdint.h>

#include <cmocka.h>

#include "conn_count.h"

static void test_open_connections(void **state)
{
    (void)state;
    struct conn_counts *c = conn_counts_new(60.0);
    assert_true(conn_counts_add(c, "192.0.2.1", 2));
    assert_true(conn_counts_add(c, "192.0.2.1", 2));
    assert_false(conn_counts_add(c, "192.0.2.1", 2));
    assert_true(conn_counts_add(c, "2001:db8::1", 2));
    assert_int_equal(conn_counts_get(c, "192.0.2.1"), 2);
    conn_counts_remove(c, "192.0.2.1");
    conn_counts_remove(c, "192.0.2.1");
    assert_int_equal(conn_counts_get(c, "192.0.2.1"), 0);
    assert_false(conn_counts_add(c, "192.0.2.9", 0));
    conn_counts_free(c);
}

static void test_rate_per_minute(void **state)
{
    (void)state;
    struct conn_counts *c = conn_counts_new(60.0);
    for (int i = 0; i < 3; i++)
        assert_true(conn_rate_allow(c, "192.0.2.1", 3, 100.0 + i));
    assert_false(conn_rate_allow(c, "192.0.2.1", 3, 110.0));   /* 4th in its minute */
    assert_true(conn_rate_allow(c, "192.0.2.2", 3, 110.0));    /* per address */
    assert_false(conn_rate_allow(c, "192.0.2.1", 3, 159.9));   /* the minute from 100 is not over */
    assert_true(conn_rate_allow(c, "192.0.2.1", 3, 160.0));    /* a new minute */
    /* an open connection keeps its entry; a closed one's goes with the sweep after its minute */
    assert_true(conn_counts_add(c, "192.0.2.1", 5));
    conn_counts_remove(c, "192.0.2.1");
    assert_true(conn_rate_allow(c, "192.0.2.1", 3, 161.0));
    assert_true(conn_rate_allow(c, "192.0.2.1", 3, 162.0));
    assert_false(conn_rate_allow(c, "192.0.2.1", 3, 163.0));   /* the count survived the disconnect */
    assert_true(conn_rate_allow(c, "192.0.2.3", 3, 400.0));    /* sweeps; 192.0.2.1 starts afresh */
    assert_true(conn_rate_allow(c, "192.0.2.1", 1, 401.0));
    assert_false(conn_rate_allow(c, "192.0.2.1", 1, 402.0));
    conn_counts_free(c);
}

/* The table's own window (an hour for users) and keys of any length (user addresses). */
static void test_rate_per_hour_long_keys(void **state)
{
    (void)state;
    struct conn_counts *c = conn_counts_new(3600.0);
    char user[300];
    memset(user, 'u', sizeof user - 13);
    memcpy(user + sizeof user - 13, "@example.test", 13);
    user[sizeof user - 1] = '\0';
    assert_int_equal(conn_rate_take(c, user, 10.0), 1);
    assert_int_equal(conn_rate_take(c, user, 3000.0), 2);
    assert_int_equal(conn_rate_take(c, "bob@example.test", 3000.0), 1);
    assert_int_equal(conn_rate_take(c, user, 3609.9), 3);      /* the hour from 10 is not over */
    assert_int_equal(conn_rate_take(c, user, 3610.0), 1);      /* a new hour */
    conn_counts_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_open_connections), cmocka_unit_test(test_rate_per_minute),
                                       cmocka_unit_test(test_rate_per_hour_long_keys)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
