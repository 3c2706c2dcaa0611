/* Unit tests for dmarc.c: record selection and parsing, organizational domains by the Public
 * Suffix List, alignment (relaxed, strict) of SPF and DKIM, p= and sp=, pct= sampling. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "dmarc.h"

static void test_records(void **state)
{
    (void)state;
    struct dmarc_record r;
    assert_true(dmarc_parse_record("v=DMARC1; p=reject", &r));
    assert_int_equal(r.p, DMARC_DIS_REJECT);
    assert_int_equal(r.sp, DMARC_DIS_REJECT);
    assert_int_equal(r.pct, 100);
    assert_false(r.adkim_strict || r.aspf_strict);
    assert_true(dmarc_parse_record("v=DMARC1;p=none;sp=Quarantine;adkim=s;aspf=r;pct=25;rua=mailto:a@b;", &r));
    assert_int_equal(r.p, DMARC_DIS_NONE);
    assert_int_equal(r.sp, DMARC_DIS_QUARANTINE);
    assert_true(r.adkim_strict && !r.aspf_strict);
    assert_int_equal(r.pct, 25);
    const char *bad[] = {"v=DMARC1", "v=DMARC1; p=maybe", "p=reject; v=DMARC1", "v=DMARC1; p=reject; pct=101",
                         "v=DMARC1; p=reject; pct=x", "v=DMARC1; p=reject; adkim=q", "v=DMARC1; p=reject; p=none",
                         "v=DMARC2; p=reject", "v=DMARC1; p=reject; sp=all"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (dmarc_parse_record(bad[i], &r))
            fail_msg("accepted: %s", bad[i]);
}

static void test_selection(void **state)
{
    (void)state;
    static const unsigned char one[] = "\x12v=DMARC1; p=reject", other[] = "\x0bv=spf1 -all",
                               split[] = "\x09v=DMARC1;\x09 p=reject", near[] = "\x0av=DMARC10;";
    const unsigned char *rd[3] = {other, one, split};
    int len[3] = {(int)sizeof other - 1, (int)sizeof one - 1, (int)sizeof split - 1};
    char out[DMARC_RECORD_MAX + 1];
    assert_int_equal(dmarc_select_record(rd, len, 2, out, sizeof out), 1);
    assert_string_equal(out, "v=DMARC1; p=reject");
    assert_int_equal(dmarc_select_record(rd + 2, len + 2, 1, out, sizeof out), 1);
    assert_string_equal(out, "v=DMARC1; p=reject");
    assert_int_equal(dmarc_select_record(rd, len, 3, out, sizeof out), -1); /* two: none applies */
    const unsigned char *n[1] = {near};
    int nl[1] = {(int)sizeof near - 1};
    assert_int_equal(dmarc_select_record(n, nl, 1, out, sizeof out), 0);
}

static void test_org_domains(void **state)
{
    (void)state;
    char out[256];
    dmarc_org_domain("mail.example.com", out, sizeof out);
    assert_string_equal(out, "example.com");
    dmarc_org_domain("a.b.example.co.uk", out, sizeof out);
    assert_string_equal(out, "example.co.uk");
    dmarc_org_domain("news.dkim.test", out, sizeof out); /* an unlisted suffix: the rule "*" */
    assert_string_equal(out, "dkim.test");
    dmarc_org_domain("co.uk", out, sizeof out); /* a public suffix itself: stays */
    assert_string_equal(out, "co.uk");
}

static void test_evaluation(void **state)
{
    (void)state;
    struct dmarc_record r;
    enum dmarc_disposition dis;
    assert_true(dmarc_parse_record("v=DMARC1; p=reject; sp=quarantine; pct=50", &r));
    struct dmarc_facts f = {.from_domain = "example.com", .spf_domain = "bounce.example.com", .spf_pass = true};
    assert_int_equal(dmarc_evaluate(&r, &f, false, 99, &dis), DMARC_PASS); /* relaxed SPF alignment */
    assert_int_equal(dis, DMARC_DIS_NONE);
    r.aspf_strict = true;
    assert_int_equal(dmarc_evaluate(&r, &f, false, 10, &dis), DMARC_FAIL);
    assert_int_equal(dis, DMARC_DIS_REJECT);
    assert_int_equal(dmarc_evaluate(&r, &f, false, 50, &dis), DMARC_FAIL); /* outside the 50 % sample */
    assert_int_equal(dis, DMARC_DIS_QUARANTINE);
    assert_int_equal(dmarc_evaluate(&r, &f, true, 10, &dis), DMARC_FAIL); /* found at the org domain: sp= */
    assert_int_equal(dis, DMARC_DIS_QUARANTINE);
    assert_int_equal(dmarc_evaluate(&r, &f, true, 60, &dis), DMARC_FAIL);
    assert_int_equal(dis, DMARC_DIS_NONE);
    f.dkim_pass[f.ndkim++] = "other.example";
    f.dkim_pass[f.ndkim++] = "Example.COM";
    r.adkim_strict = true;
    assert_int_equal(dmarc_evaluate(&r, &f, false, 10, &dis), DMARC_PASS); /* strict DKIM: the same domain */
    f.from_domain = "www.example.com";
    assert_int_equal(dmarc_evaluate(&r, &f, false, 10, &dis), DMARC_FAIL);
    f.spf_pass = false;
    f.spf_domain = "example.com";
    r.aspf_strict = r.adkim_strict = false;
    assert_int_equal(dmarc_evaluate(&r, &f, false, 10, &dis), DMARC_PASS); /* relaxed DKIM */
    f.ndkim = 0;
    assert_int_equal(dmarc_evaluate(&r, &f, false, 10, &dis), DMARC_FAIL); /* SPF aligned, but it failed */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_records),
        cmocka_unit_test(test_selection),
        cmocka_unit_test(test_org_domains),
        cmocka_unit_test(test_evaluation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
