/* Unit tests for access.c: which client_access network, which sender_access entry and which
 * helo_access entry decide - the most specific one, whatever the table order - for IPv4, IPv6 and
 * IPv4-mapped clients, addresses with extensions, domains, parents, the null sender and names. */
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

/* Writes text into a new temporary file whose name goes to path. */
static void table_file(char *path, const char *text)
{
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

/* Loads the tables from text (NULL: not set); the load must succeed. */
static void load3(struct access_tables *t, const char *clients, const char *senders, const char *helos)
{
    char paths[3][32] = {"/tmp/test_access_c_XXXXXX", "/tmp/test_access_s_XXXXXX", "/tmp/test_access_h_XXXXXX"};
    const char *texts[3] = {clients, senders, helos};
    char **fields[3];
    struct config cfg;
    struct config_errors errs = {0};
    memset(&cfg, 0, sizeof cfg);
    cfg.path = (char *)"test.conf";
    fields[0] = &cfg.client_access, fields[1] = &cfg.sender_access, fields[2] = &cfg.helo_access;
    for (int i = 0; i < 3; i++) {
        *fields[i] = (char *)"";
        if (texts[i]) {
            table_file(paths[i], texts[i]);
            *fields[i] = paths[i];
        }
    }
    access_load(t, &cfg, &errs);
    for (size_t i = 0; i < errs.count; i++)
        fprintf(stderr, "%s\n", errs.msgs[i]);
    assert_int_equal(errs.count, 0);
    for (int i = 0; i < 3; i++)
        if (texts[i])
            unlink(paths[i]);
}

static void load(struct access_tables *t, const char *clients, const char *senders)
{
    load3(t, clients, senders, NULL);
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

static void test_most_specific_helo_entry_wins(void **state)
{
    (void)state;
    struct access_tables t;
    load3(&t, NULL, NULL,
          ".dyn.example.net defer Use your provider's server\n"
          "localhost reject\n"
          "host.dyn.example.net reject\n"
          ".example.net reject\n"
          "b\xc3\xbc" "cher.example reject\n");
    assert_int_equal(access_helo(&t, "a.dyn.example.net").line, 1);
    assert_string_equal(access_helo(&t, "a.b.dyn.example.net").text, "Use your provider's server");
    assert_int_equal(access_helo(&t, "HOST.dyn.example.net").line, 3);
    assert_int_equal(access_helo(&t, "localhost").line, 2);
    assert_int_equal(access_helo(&t, "mail.example.net").line, 4);
    assert_int_equal(access_helo(&t, "example.net").line, 0); /* .example.net: the names below it */
    assert_int_equal(access_helo(&t, "xn--bcher-kva.example").line, 5);
    assert_int_equal(access_helo(&t, "[192.0.2.1]").line, 0);
    assert_int_equal(access_helo(&t, "not a name").line, 0);
    assert_int_equal(access_helo(&t, "").line, 0);
    access_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_most_specific_network_wins),
        cmocka_unit_test(test_most_specific_sender_entry_wins),
        cmocka_unit_test(test_most_specific_helo_entry_wins),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
