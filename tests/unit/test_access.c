/* Unit tests for access.c: which client_access network and which sender_access entry decide -
 * the most specific one, whatever the table order - for IPv4, IPv6 and IPv4-mapped clients,
 * addresses with extensions, domains, parents and the null sender. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <cmocka.h>

#include "access.h"

/* Loads the two tables from text (NULL: not set); the load must succeed. */
static void load(struct access_tables *t, const char *clients, const char *senders)
{
    char cpath[] = "/tmp/test_access_c_XXXXXX", spath[] = "/tmp/test_access_s_XXXXXX";
    struct config cfg;
    struct config_errors errs = {0};
    memset(&cfg, 0, sizeof cfg);
    cfg.path = (char *)"test.conf";
    cfg.client_access = cfg.sender_access = (char *)"";
    int cfd = mkstemp(cpath), sfd = mkstemp(spath);
    assert_true(cfd >= 0 && sfd >= 0);
    if (clients) {
        assert_int_equal(write(cfd, clients, strlen(clients)), (ssize_t)strlen(clients));
        cfg.client_access = cpath;
    }
    if (senders) {
        assert_int_equal(write(sfd, senders, strlen(senders)), (ssize_t)strlen(senders));
        cfg.sender_access = spath;
    }
    close(cfd);
    close(sfd);
    access_load(t, &cfg, &errs);
    for (size_t i = 0; i < errs.count; i++)
        fprintf(stderr, "%s\n", errs.msgs[i]);
    assert_int_equal(errs.count, 0);
    unlink(cpath);
    unlink(spath);
}

/* The client verdict's line for an address (0: none). */
static int client_line(const struct access_tables *t, const char *ip)
{
    struct sockaddr_storage ss = {0};
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1)
        v4->sin_family = AF_INET;
    else if (inet_pton(AF_INET6, ip, &v6->sin6_addr) == 1)
        v6->sin6_family = AF_INET6;
    else
        fail_msg("bad test address %s", ip);
    return access_client(t, (struct sockaddr *)&ss).line;
}

static void test_most_specific_network_wins(void **state)
{
    (void)state;
    struct access_tables t;
    load(&t, "192.0.2.0/24 reject\n"
             "192.0.2.128/25 permit\n"
             "192.0.2.200 defer Wait a little\n"
             "2001:db8::/32 reject\n"
             "2001:db8:1::/48 permit\n"
             "0.0.0.0/0 defer\n",
         NULL);
    assert_int_equal(client_line(&t, "192.0.2.1"), 1);
    assert_int_equal(client_line(&t, "192.0.2.129"), 2);
    assert_int_equal(client_line(&t, "192.0.2.200"), 3);
    assert_int_equal(client_line(&t, "198.51.100.1"), 6);
    assert_int_equal(client_line(&t, "::ffff:192.0.2.200"), 3); /* an IPv4 client on an IPv6 socket */
    assert_int_equal(client_line(&t, "2001:db8:2::1"), 4);
    assert_int_equal(client_line(&t, "2001:db8:1::1"), 5);
    assert_int_equal(client_line(&t, "2001:db9::1"), 0); /* 0.0.0.0/0 holds no IPv6 address */
    struct sockaddr_in sin = {.sin_family = AF_INET};
    inet_pton(AF_INET, "192.0.2.200", &sin.sin_addr);
    struct access_verdict v = access_client(&t, (struct sockaddr *)&sin);
    assert_int_equal(v.action, ACCESS_DEFER);
    assert_string_equal(v.text, "Wait a little");
    access_free(&t);
}

/* The sender verdict's line for an address ("" for the null sender). */
static int sender_line(const struct access_tables *t, const char *addr)
{
    struct mailbox mb;
    memset(&mb, 0, sizeof mb);
    if (*addr)
        assert_int_equal(address_parse_mailbox(addr, strlen(addr), &mb), ADDR_OK);
    else
        mb.is_null = true;
    return access_sender(t, &mb, "+-").line;
}

static void test_most_specific_sender_entry_wins(void **state)
{
    (void)state;
    struct access_tables t;
    load(&t, NULL,
         ".example.org reject\n"
         "example.org defer\n"
         "news.example.org defer\n"
         "boss@news.example.org reject Not him\n"
         "<> reject\n"
         "\"a@b\"@example.com reject\n"
         "b\xc3\xbc" "cher.example reject\n");
    assert_int_equal(sender_line(&t, "a@example.org"), 2);
    assert_int_equal(sender_line(&t, "a@x.example.org"), 1);
    assert_int_equal(sender_line(&t, "a@x.y.example.org"), 1);
    assert_int_equal(sender_line(&t, "a@news.example.org"), 3);
    assert_int_equal(sender_line(&t, "Boss@NEWS.example.org"), 4);
    assert_int_equal(sender_line(&t, "boss-list@news.example.org"), 4); /* '-' is a delimiter here */
    assert_int_equal(sender_line(&t, "bossy@news.example.org"), 3);
    assert_int_equal(sender_line(&t, ""), 5);
    assert_int_equal(sender_line(&t, "\"a@b\"@example.com"), 6);
    assert_int_equal(sender_line(&t, "b@example.com"), 0);
    assert_int_equal(sender_line(&t, "a@xn--bcher-kva.example"), 7); /* IDNA: one domain, two spellings */
    assert_int_equal(sender_line(&t, "a@[192.0.2.1]"), 0);
    assert_int_equal(sender_line(&t, "a@example.org.evil"), 0);
    access_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_most_specific_network_wins),
        cmocka_unit_test(test_most_specific_sender_entry_wins),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
