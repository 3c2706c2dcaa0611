/* Unit tests for the small pure helpers around storage and policy: Maildir-safe names,
 * CIDR matching, host:port parsing, the string map and the per-address connection counts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <netinet/in.h>

#include "cidr.h"
#include "conn_count.h"
#include "maildir.h"
#include "strmap.h"

static void safe(const char *in, const char *expect)
{
    char out[256];
    assert_true(maildir_safe_name(in, out, sizeof out));
    assert_string_equal(out, expect);
}

static void test_maildir_safe_name(void **state)
{
    (void)state;
    safe("alice", "alice");
    safe("first.last", "first.last");
    safe("a/b", "a%2Fb");
    safe("..", "%2E.");
    safe(".hidden", "%2Ehidden");
    safe("100%", "100%25");
    safe("j\xc3\xb6rg", "j\xc3\xb6rg");
    safe("sp ace", "sp%20ace");
    safe("back\\slash", "back%5Cslash");
    char small[4];
    assert_false(maildir_safe_name("abcdef", small, sizeof small));
    assert_false(maildir_safe_name("", small, sizeof small));
}

static struct sockaddr_storage v4(const char *ip)
{
    struct sockaddr_storage ss = {0};
    struct sockaddr_in *s = (struct sockaddr_in *)&ss;
    s->sin_family = AF_INET;
    inet_pton(AF_INET, ip, &s->sin_addr);
    return ss;
}

static struct sockaddr_storage v6(const char *ip)
{
    struct sockaddr_storage ss = {0};
    struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss;
    s->sin6_family = AF_INET6;
    inet_pton(AF_INET6, ip, &s->sin6_addr);
    return ss;
}

static void test_cidr(void **state)
{
    (void)state;
    struct cidr n;
    assert_true(cidr_parse("127.0.0.0/8", &n));
    struct sockaddr_storage a = v4("127.1.2.3"), b = v4("128.0.0.1"), c = v6("::ffff:127.0.0.9"), d = v6("::1");
    assert_true(cidr_match(&n, (struct sockaddr *)&a));
    assert_false(cidr_match(&n, (struct sockaddr *)&b));
    assert_true(cidr_match(&n, (struct sockaddr *)&c)); /* v4-mapped */
    assert_false(cidr_match(&n, (struct sockaddr *)&d));
    assert_true(cidr_parse("192.0.2.128/25", &n));
    struct sockaddr_storage e = v4("192.0.2.200"), f = v4("192.0.2.100");
    assert_true(cidr_match(&n, (struct sockaddr *)&e));
    assert_false(cidr_match(&n, (struct sockaddr *)&f));
    assert_true(cidr_parse("::1", &n));
    assert_true(cidr_match(&n, (struct sockaddr *)&d));
    assert_true(cidr_parse("0.0.0.0/0", &n));
    assert_true(cidr_match(&n, (struct sockaddr *)&b));
    assert_false(cidr_parse("10.0.0.0/33", &n));
    assert_false(cidr_parse("10.0.0/8", &n));
    assert_false(cidr_parse("10.0.0.0/", &n));
    assert_false(cidr_parse("10.0.0.0/-1", &n));
    assert_false(cidr_parse("", &n));
    char text[64];
    assert_true(cidr_parse("10.1.2.3/8", &n));
    assert_true(cidr_host_bits_set(&n));
    cidr_network_text(&n, text, sizeof text);
    assert_string_equal(text, "10.0.0.0/8");
    assert_true(cidr_parse("192.0.2.128/25", &n));
    assert_false(cidr_host_bits_set(&n));
    assert_true(cidr_parse("192.0.2.130/25", &n));
    assert_true(cidr_host_bits_set(&n));
    cidr_network_text(&n, text, sizeof text);
    assert_string_equal(text, "192.0.2.128/25");
    assert_true(cidr_parse("2001:db8::1/32", &n));
    assert_true(cidr_host_bits_set(&n));
    cidr_network_text(&n, text, sizeof text);
    assert_string_equal(text, "2001:db8::/32");
    assert_true(cidr_parse("127.0.0.1", &n));
    assert_false(cidr_host_bits_set(&n));
}

static void test_hostport(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    socklen_t len;
    assert_true(hostport_parse("127.0.0.1:2525", &ss, &len));
    assert_int_equal(ss.ss_family, AF_INET);
    assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 2525);
    assert_true(hostport_parse("[::1]:25", &ss, &len));
    assert_int_equal(ss.ss_family, AF_INET6);
    assert_false(hostport_parse("::1:25", &ss, &len));
    assert_false(hostport_parse("127.0.0.1", &ss, &len));
    assert_false(hostport_parse("127.0.0.1:0", &ss, &len));
    assert_false(hostport_parse("127.0.0.1:65536", &ss, &len));
    assert_false(hostport_parse("localhost:25", &ss, &len));
    assert_false(hostport_parse("[127.0.0.1]:25", &ss, &len));
}

static void test_strmap(void **state)
{
    (void)state;
    struct strmap m;
    strmap_init(&m);
    char key[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "user%d@example.test", i);
        assert_true(strmap_put(&m, key, i % 2 ? key : NULL));
    }
    assert_int_equal(m.count, 5000);
    const char *v;
    assert_true(strmap_get(&m, "user4999@example.test", &v));
    assert_string_equal(v, "user4999@example.test");
    assert_true(strmap_get(&m, "user0@example.test", &v));
    assert_null(v);
    assert_false(strmap_get(&m, "user5000@example.test", NULL));
    assert_true(strmap_put(&m, "user0@example.test", "new"));
    assert_int_equal(m.count, 5000);
    strmap_free(&m);
    assert_false(strmap_get(&m, "x", NULL));
}

/* Counts per address, through the bucket array's growth (64 to start), to zero and back. */
static void test_conn_counts(void **state)
{
    (void)state;
    struct conn_counts *c = conn_counts_new(60.0);
    assert_non_null(c);
    char ip[48];
    for (int i = 0; i < 3000; i++) {
        snprintf(ip, sizeof ip, "10.0.%d.%d", i / 256, i % 256);
        for (int k = 0; k <= i % 3; k++)
            assert_true(conn_counts_add(c, ip, 10));
    }
    for (int i = 0; i < 3000; i++) {
        snprintf(ip, sizeof ip, "10.0.%d.%d", i / 256, i % 256);
        assert_int_equal(conn_counts_get(c, ip), (unsigned)(i % 3 + 1));
    }
    assert_int_equal(conn_counts_get(c, "10.9.9.9"), 0);
    assert_int_equal(conn_counts_get(c, "::1"), 0);
    conn_counts_remove(c, "10.0.0.1"); /* had 2 */
    assert_int_equal(conn_counts_get(c, "10.0.0.1"), 1);
    conn_counts_remove(c, "10.0.0.1");
    assert_int_equal(conn_counts_get(c, "10.0.0.1"), 0);
    conn_counts_remove(c, "10.0.0.1"); /* not counted: no effect */
    assert_int_equal(conn_counts_get(c, "10.0.0.1"), 0);
    assert_true(conn_counts_add(c, "10.0.0.1", 10));
    assert_int_equal(conn_counts_get(c, "10.0.0.1"), 1);
    assert_false(conn_counts_add(c, "10.0.0.2", 3)); /* at its limit: not counted */
    assert_false(conn_counts_add(c, "10.9.9.9", 0));
    assert_int_equal(conn_counts_get(c, "10.9.9.9"), 0);
    assert_int_equal(conn_counts_get(c, "10.0.0.2"), 3); /* neighbours untouched */
    conn_counts_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_maildir_safe_name),
        cmocka_unit_test(test_cidr),
        cmocka_unit_test(test_hostport),
        cmocka_unit_test(test_strmap),
        cmocka_unit_test(test_conn_counts),
    };
    return cmocka_run_group_tests_name("store_names", tests, NULL, NULL);
}
