/* Unit tests for MTA-STS's pure part (RFC 8461): the TXT record's id, the policy file (the forms
 * RFC 8461 3.2 allows and those it does not), and MX names matched against mx patterns (4.1). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "mta_sts.h"

static void test_record_id(void **state)
{
    (void)state;
    char id[MTA_STS_ID_MAX + 1];
    assert_true(mta_sts_record_id("v=STSv1; id=20160831085700Z;", id));
    assert_string_equal(id, "20160831085700Z");
    assert_true(mta_sts_record_id("v=STSv1;id=abc", id)); /* no blank, no final ';' */
    assert_string_equal(id, "abc");
    assert_true(mta_sts_record_id("v=STSv1; ext=1; id=x2 ;", id)); /* another field; blanks before ';' */
    assert_string_equal(id, "x2");
    assert_false(mta_sts_record_id("v=STSv1;", id));                       /* no id */
    assert_false(mta_sts_record_id("v=STSv1; id=a-b;", id));               /* not alphanumeric */
    assert_false(mta_sts_record_id("v=STSv1; id=123456789012345678901234567890123;", id)); /* 33 */
    assert_false(mta_sts_record_id("v=STSv1; id=a; id=b;", id));           /* twice */
    assert_false(mta_sts_record_id("v=STSv2; id=a;", id));
    assert_false(mta_sts_record_id("v=spf1 -all", id));
    assert_false(mta_sts_record_id("v=STSv1; id=a; junk", id));            /* a field without '=' */
}

static void test_policy(void **state)
{
    (void)state;
    struct mta_sts_policy p;
    char why[200];
    const char *good = "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.Example.NET.\r\n"
                       "max_age: 604800\r\nfuture_key: whatever\r\n";
    assert_true(mta_sts_policy_parse(good, strlen(good), &p, why, sizeof why));
    assert_int_equal(p.mode, MTA_STS_ENFORCE);
    assert_int_equal(p.max_age, 604800);
    assert_int_equal(p.nmx, 2);
    assert_string_equal(p.mx[0], "mail.example.com");
    assert_string_equal(p.mx[1], "*.example.net"); /* lower case, no final dot */
    const char *none = "version: STSv1\nmode: none\nmax_age: 0"; /* LF lines, no mx: fine for none */
    assert_true(mta_sts_policy_parse(none, strlen(none), &p, why, sizeof why));
    assert_int_equal(p.mode, MTA_STS_NONE);
    static const struct {
        const char *text, *why;
    } bad[] = {
        {"mode: enforce\nmx: a.example\nmax_age: 1\n", "no version line"},
        {"version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 1\n", "version is not STSv1"},
        {"version: STSv1\nmode: strict\nmx: a.example\nmax_age: 1\n", "mode is not enforce, testing or none"},
        {"version: STSv1\nmode: testing\nmax_age: 1\n", "no mx line"},
        {"version: STSv1\nmode: testing\nmx: a.example\n", "no max_age line"},
        {"version: STSv1\nmode: testing\nmx: a.example\nmax_age: 31557601\n", "max_age is not a number"},
        {"version: STSv1\nmode: testing\nmx: a.example\nmax_age: -1\n", "max_age is not a number"},
        {"version: STSv1\nmode: testing\nmx: a..example\nmax_age: 1\n", "is not a host name"},
        {"version: STSv1\nmode: testing\nmx: a.*.example\nmax_age: 1\n", "is not a host name"},
        {"version: STSv1\nmode: testing\nmx: *\nmax_age: 1\n", "is not a host name"},
        {"version: STSv1\nmode: testing\nmax_age: 1\nmx: a.example..\n", "is not a host name"}, /* found by fuzzing */
        {"version: STSv1\nmode: testing\nmax_age: 1\nmx:", "is not a host name"}, /* the text's last octets */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        why[0] = '\0';
        assert_false(mta_sts_policy_parse(bad[i].text, strlen(bad[i].text), &p, why, sizeof why));
        assert_non_null(strstr(why, bad[i].why));
    }
    const char nul[] = "version: STSv1\nmode: none\0\nmax_age: 1\n";
    assert_false(mta_sts_policy_parse(nul, sizeof nul - 1, &p, why, sizeof why));
}

static void test_mx_matching(void **state)
{
    (void)state;
    struct mta_sts_policy p;
    char why[200];
    const char *text = "version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmax_age: 1\n";
    assert_true(mta_sts_policy_parse(text, strlen(text), &p, why, sizeof why));
    assert_true(mta_sts_mx_matches(&p, "mail.example.com"));
    assert_true(mta_sts_mx_matches(&p, "MAIL.Example.com.")); /* any case, a final dot */
    assert_true(mta_sts_mx_matches(&p, "mx1.example.net"));
    assert_false(mta_sts_mx_matches(&p, "example.net"));          /* the wildcard needs its label */
    assert_false(mta_sts_mx_matches(&p, "a.mx1.example.net"));    /* and only one */
    assert_false(mta_sts_mx_matches(&p, "mail.example.com.evil")); /* not a suffix match */
    assert_false(mta_sts_mx_matches(&p, "other.example.com"));
    assert_false(mta_sts_mx_matches(&p, ""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_id),
        cmocka_unit_test(test_policy),
        cmocka_unit_test(test_mx_matching),
    };
    return cmocka_run_group_tests_name("mta_sts", tests, NULL, NULL);
}
