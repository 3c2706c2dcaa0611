/* Unit tests for the RFC 5321 / RFC 6531 mailbox parser: a table of valid and invalid cases. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include "address.h"
#include "idn.h"

struct mailbox_case {
    const char *input;
    enum addr_result expect;
    bool utf8;
};

#define L64 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define L63 "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static const struct mailbox_case mailbox_cases[] = {
    /* valid dot-strings */
    {"user@example.com", ADDR_OK, false},
    {"a@b", ADDR_OK, false},
    {"first.last@example.com", ADDR_OK, false},
    {"user+tag@example.com", ADDR_OK, false},
    {"x-y_z@example.com", ADDR_OK, false},
    {"!#$%&'*+-/=?^_`{|}~@example.com", ADDR_OK, false},
    {"UPPER@EXAMPLE.COM", ADDR_OK, false},
    {"1234@example.com", ADDR_OK, false},
    {"a.b.c.d@example.com", ADDR_OK, false},
    {L64 "@example.com", ADDR_OK, false},
    {"user@sub.domain.example.com", ADDR_OK, false},
    {"user@xn--bcher-kva.example", ADDR_OK, false},
    {"user@a-b.example", ADDR_OK, false},
    {"user@123.example", ADDR_OK, false},
    {"user@" L63 ".example", ADDR_OK, false},
    {"user@localhost", ADDR_OK, false},
    /* valid quoted strings */
    {"\"john doe\"@example.com", ADDR_OK, false},
    {"\"a@b\"@example.com", ADDR_OK, false},
    {"\"quote\\\"inside\"@example.com", ADDR_OK, false},
    {"\"back\\\\slash\"@example.com", ADDR_OK, false},
    {"\"dots..here\"@example.com", ADDR_OK, false},
    {"\".leading\"@example.com", ADDR_OK, false},
    {"\"<>()[]:;,\"@example.com", ADDR_OK, false},
    /* valid address literals */
    {"user@[192.0.2.1]", ADDR_OK, false},
    {"user@[127.0.0.1]", ADDR_OK, false},
    {"user@[255.255.255.255]", ADDR_OK, false},
    {"user@[IPv6:2001:db8::1]", ADDR_OK, false},
    {"user@[IPv6:::1]", ADDR_OK, false},
    {"user@[IPv6:2001:db8:0:0:0:0:0:1]", ADDR_OK, false},
    {"user@[IPv6:::ffff:192.0.2.1]", ADDR_OK, false},
    {"user@[tag:content]", ADDR_OK, false},
    /* valid UTF-8 (RFC 6531) */
    {"j\xc3\xb6rg@example.com", ADDR_OK, true},
    {"user@b\xc3\xbc" "cher.example", ADDR_OK, true},
    {"\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a", ADDR_OK, true},
    {"\xf0\x9f\x98\x80@example.com", ADDR_OK, true},
    {"\"\xc3\xa9t\xc3\xa9\"@example.com", ADDR_OK, true},
    /* invalid local parts */
    {"@example.com", ADDR_ERR_SYNTAX, false},
    {".user@example.com", ADDR_ERR_SYNTAX, false},
    {"user.@example.com", ADDR_ERR_SYNTAX, false},
    {"us..er@example.com", ADDR_ERR_SYNTAX, false},
    {"us er@example.com", ADDR_ERR_SYNTAX, false},
    {"us(er@example.com", ADDR_ERR_SYNTAX, false},
    {"us\"er@example.com", ADDR_ERR_SYNTAX, false},
    {"us,er@example.com", ADDR_ERR_SYNTAX, false},
    {"us:er@example.com", ADDR_ERR_SYNTAX, false},
    {"us;er@example.com", ADDR_ERR_SYNTAX, false},
    {"us<er@example.com", ADDR_ERR_SYNTAX, false},
    {"us[er@example.com", ADDR_ERR_SYNTAX, false},
    {"us\\er@example.com", ADDR_ERR_SYNTAX, false},
    {"a" L64 "@example.com", ADDR_ERR_TOO_LONG, false},
    {"\"\"@example.com", ADDR_ERR_SYNTAX, false},
    {"\"unterminated@example.com", ADDR_ERR_SYNTAX, false},
    {"\"bad\\\x01\"@example.com", ADDR_ERR_SYNTAX, false},
    {"\"tab\there\"@example.com", ADDR_ERR_SYNTAX, false},
    {"\"x\"y@example.com", ADDR_ERR_SYNTAX, false},
    {"ctl\x01@example.com", ADDR_ERR_SYNTAX, false},
    {"del\x7f@example.com", ADDR_ERR_SYNTAX, false},
    {"a@b@example.com", ADDR_ERR_SYNTAX, false},
    {"user", ADDR_ERR_SYNTAX, false},
    {"", ADDR_ERR_SYNTAX, false},
    /* invalid domains */
    {"user@", ADDR_ERR_SYNTAX, false},
    {"user@.example.com", ADDR_ERR_SYNTAX, false},
    {"user@example.com.", ADDR_ERR_SYNTAX, false},
    {"user@example..com", ADDR_ERR_SYNTAX, false},
    {"user@-example.com", ADDR_ERR_SYNTAX, false},
    {"user@example-.com", ADDR_ERR_SYNTAX, false},
    {"user@exa_mple.com", ADDR_ERR_SYNTAX, false},
    {"user@exa mple.com", ADDR_ERR_SYNTAX, false},
    {"user@" L63 "b.example", ADDR_ERR_TOO_LONG, false},
    {"user@example.com>", ADDR_ERR_SYNTAX, false},
    {"user@exam;ple.com", ADDR_ERR_SYNTAX, false},
    {"user@$(reboot).com", ADDR_ERR_SYNTAX, false},
    {"user@`id`.com", ADDR_ERR_SYNTAX, false},
    {"user@example.com\n", ADDR_ERR_SYNTAX, false},
    /* invalid address literals */
    {"user@[256.0.0.1]", ADDR_ERR_SYNTAX, false},
    {"user@[1.2.3]", ADDR_ERR_SYNTAX, false},
    {"user@[1.2.3.4.5]", ADDR_ERR_SYNTAX, false},
    {"user@[1.2.3.4", ADDR_ERR_SYNTAX, false},
    {"user@[IPv6:not-an-ip]", ADDR_ERR_SYNTAX, false},
    {"user@[IPv6:1:2:3:4:5:6:7:8:9]", ADDR_ERR_SYNTAX, false},
    {"user@[]", ADDR_ERR_SYNTAX, false},
    {"user@[tag:]", ADDR_ERR_SYNTAX, false},
    {"user@[1234.1.1.1]", ADDR_ERR_SYNTAX, false},
    /* malformed UTF-8 */
    {"j\xc3@example.com", ADDR_ERR_UTF8, false},
    {"j\xc0\xafrg@example.com", ADDR_ERR_UTF8, false},        /* overlong */
    {"j\xed\xa0\x80rg@example.com", ADDR_ERR_UTF8, false},    /* surrogate */
    {"j\xf4\x90\x80\x80@example.com", ADDR_ERR_UTF8, false},  /* > U+10FFFF */
    {"j\xff@example.com", ADDR_ERR_UTF8, false},
    {"user@b\xc3" "cher.example", ADDR_ERR_UTF8, false},
    {"user@b\x80" "cher.example", ADDR_ERR_UTF8, false},
};

static void test_mailbox_table(void **state)
{
    (void)state;
    size_t n = sizeof mailbox_cases / sizeof mailbox_cases[0];
    assert_true(n >= 80);
    for (size_t i = 0; i < n; i++) {
        struct mailbox mb;
        const struct mailbox_case *c = &mailbox_cases[i];
        enum addr_result r = address_parse_mailbox(c->input, strlen(c->input), &mb);
        if (r != c->expect)
            fail_msg("case %zu '%s': got %d, expected %d", i, c->input, r, c->expect);
        if (r == ADDR_OK && mb.utf8 != c->utf8)
            fail_msg("case %zu '%s': utf8 flag %d", i, c->input, mb.utf8);
    }
}

static void test_domain_too_long(void **state)
{
    (void)state;
    char addr[400] = "u@";
    /* 4 labels of 63 + 3 dots = 255: ok; one more octet: too long */
    for (int i = 0; i < 4; i++) {
        strcat(addr, L63);
        if (i < 3)
            strcat(addr, ".");
    }
    struct mailbox mb;
    bool utf8;
    assert_int_equal(address_parse_domain(addr + 2, strlen(addr + 2), &utf8), ADDR_OK);
    strcat(addr, "x");
    assert_int_equal(address_parse_domain(addr + 2, strlen(addr + 2), &utf8), ADDR_ERR_TOO_LONG);
    assert_int_not_equal(address_parse_mailbox(addr, strlen(addr), &mb), ADDR_OK);
}

static void test_fields(void **state)
{
    (void)state;
    struct mailbox mb;
    const char *in = "\"John \\\"Q\\\" Doe\"@Example.COM";
    assert_int_equal(address_parse_mailbox(in, strlen(in), &mb), ADDR_OK);
    assert_string_equal(mb.local, "John \"Q\" Doe");
    assert_string_equal(mb.domain, "example.com");
    assert_string_equal(mb.addr, in);
    assert_true(mb.quoted);
    in = "Alice@[IPv6:::1]";
    assert_int_equal(address_parse_mailbox(in, strlen(in), &mb), ADDR_OK);
    assert_true(mb.literal);
    assert_string_equal(mb.domain, "[ipv6:::1]");
}

/* A NUL inside an IPv6 literal ended the copy handed to inet_pton, so "[IPv6:A::aaaa<NUL><ESC>...]"
 * passed with the NUL and control bytes in the address (found by fuzz_address). */
static void test_ipv6_literal_with_nul(void **state)
{
    (void)state;
    struct mailbox mb;
    static const char in[] = "a@[IPv6:A::aaaa\0\033aaaa]";
    assert_int_equal(address_parse_mailbox(in, sizeof in - 1, &mb), ADDR_ERR_SYNTAX);
    static const char path_in[] = "<a@[IPv6:::1\0]>";
    size_t used;
    assert_int_equal(address_parse_path(path_in, sizeof path_in - 1, &mb, &used, false, false), ADDR_ERR_SYNTAX);
}

static enum addr_result path(const char *in, struct mailbox *mb, size_t *used, bool allow_null, bool pm)
{
    return address_parse_path(in, strlen(in), mb, used, allow_null, pm);
}

static void test_paths(void **state)
{
    (void)state;
    struct mailbox mb;
    size_t used;
    assert_int_equal(path("<user@example.com>", &mb, &used, false, false), ADDR_OK);
    assert_int_equal(used, 18);
    assert_int_equal(path("<user@example.com> SIZE=10", &mb, &used, false, false), ADDR_OK);
    assert_int_equal(used, 18);
    assert_int_equal(path("<>", &mb, &used, true, false), ADDR_OK);
    assert_true(mb.is_null);
    assert_int_equal(path("<>", &mb, &used, false, false), ADDR_ERR_SYNTAX);
    assert_int_equal(path("<Postmaster>", &mb, &used, false, true), ADDR_OK);
    assert_true(mb.is_postmaster);
    assert_int_equal(path("<postmaster>", &mb, &used, false, false), ADDR_ERR_SYNTAX);
    /* source routes are accepted and ignored (RFC 5321 4.1.1.3, C.) */
    assert_int_equal(path("<@relay.example,@b.example:user@example.com>", &mb, &used, false, false), ADDR_OK);
    assert_string_equal(mb.addr, "user@example.com");
    assert_int_equal(path("<@relay.example user@example.com>", &mb, &used, false, false), ADDR_ERR_SYNTAX);
    assert_int_equal(path("user@example.com", &mb, &used, false, false), ADDR_ERR_SYNTAX);
    assert_int_equal(path("<user@example.com", &mb, &used, false, false), ADDR_ERR_SYNTAX);
    assert_int_equal(path("<\"a>b\"@example.com>", &mb, &used, false, false), ADDR_OK);
    assert_string_equal(mb.local, "a>b");
    assert_int_equal(path("<<user@example.com>>", &mb, &used, false, false), ADDR_ERR_SYNTAX);
}

static void test_path_length_limit(void **state)
{
    (void)state;
    /* 64 + 1 + 189 + 2 = 256 octets: the RFC limit, accepted; one more is refused. */
    char buf[400];
    char dom[200];
    memset(dom, 'd', 189);
    dom[189] = '\0';
    for (int i = 60; i < 189; i += 61)
        dom[i] = '.';
    snprintf(buf, sizeof buf, "<%s@%s>", L64, dom);
    assert_int_equal(strlen(buf), 256);
    struct mailbox mb;
    size_t used;
    assert_int_equal(address_parse_path(buf, strlen(buf), &mb, &used, false, false), ADDR_OK);
    snprintf(buf, sizeof buf, "<%s@%sd>", L64, dom);
    assert_int_equal(address_parse_path(buf, strlen(buf), &mb, &used, false, false), ADDR_ERR_TOO_LONG);
}

static void test_utf8_text(void **state)
{
    (void)state;
    assert_true(utf8_text_valid("plain", 5));
    assert_true(utf8_text_valid("h\xc3\xa9llo", 6));
    assert_false(utf8_text_valid("tab\t", 4));
    assert_false(utf8_text_valid("\xc3", 1));
}

/* address_literal_ip: the literal's address, or false for a name, a tag, a bad literal. */
static void test_literal_ip(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    socklen_t len;
    assert_true(address_literal_ip("[192.0.2.10]", &ss, &len));
    assert_int_equal(ss.ss_family, AF_INET);
    assert_int_equal(len, sizeof(struct sockaddr_in));
    assert_int_equal(ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr), 0xC000020A);
    assert_true(address_literal_ip("[192.000.002.010]", &ss, &len)); /* Snum: 1*3DIGIT, decimal */
    assert_int_equal(ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr), 0xC000020A);
    assert_true(address_literal_ip("[ipv6:2001:db8::1]", &ss, &len));
    assert_int_equal(ss.ss_family, AF_INET6);
    assert_int_equal(((struct sockaddr_in6 *)&ss)->sin6_addr.s6_addr[15], 1);
    static const char *const bad[] = {"example.test", "[]", "[tag:x]", "[300.1.1.1]", "[1.2.3]",
                                      "[IPv6:]", "[IPv6:1::2::3]", "[1.2.3.4", "192.0.2.1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(address_literal_ip(bad[i], &ss, &len));
}

/* One domain in every spelling a client may use: U-labels in any case, or the A-label a client
 * without SMTPUTF8 must write (RFC 6531 3.2); DNS gets the A-label. */
static void test_idn_canonical_domain(void **state)
{
    (void)state;
    struct mailbox mb;
    static const char *const same[] = {"bob@b\xc3\xbc" "cher.test", "bob@B\xc3\x9c" "CHER.TEST",
                                       "bob@xn--bcher-kva.test", "bob@XN--BCHER-KVA.Test"};
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        assert_int_equal(address_parse_mailbox(same[i], strlen(same[i]), &mb), ADDR_OK);
        assert_string_equal(mb.domain, "b\xc3\xbc" "cher.test");
        assert_string_equal(mb.addr, same[i]); /* the address as written is kept */
    }
    char out[256];
    idn_canonical("Example.TEST", out, sizeof out);
    assert_string_equal(out, "example.test");
    idn_canonical("xn--zz-invalid.test", out, sizeof out); /* no valid A-label: only lower-cased */
    assert_string_equal(out, "xn--zz-invalid.test");
    assert_true(idn_to_ascii("B\xc3\x9c" "cher.test", out, sizeof out));
    assert_string_equal(out, "xn--bcher-kva.test");
    assert_true(idn_to_ascii("Mx.Example.test", out, sizeof out));
    assert_string_equal(out, "mx.example.test");
    assert_false(idn_to_ascii("b\xc3\xbc" "cher.test", out, 5)); /* does not fit */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mailbox_table), cmocka_unit_test(test_domain_too_long),
        cmocka_unit_test(test_fields),        cmocka_unit_test(test_ipv6_literal_with_nul),
        cmocka_unit_test(test_paths),         cmocka_unit_test(test_path_length_limit),
        cmocka_unit_test(test_utf8_text),     cmocka_unit_test(test_literal_ip),
        cmocka_unit_test(test_idn_canonical_domain),
    };
    return cmocka_run_group_tests_name("address", tests, NULL, NULL);
}
