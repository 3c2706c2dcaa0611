/* Unit tests for dmarcrpt.c: rua= addresses (URI escapes, size limits), the counting in rows, the
 * XML report (exact), the state text and its bad lines, external addresses (RFC 7489 7.1). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dmarcrpt.h"

static void test_rua(void **state)
{
    (void)state;
    struct dmarcrpt_rua r;
    assert_true(dmarcrpt_record_rua("v=DMARC1; p=none; rua=mailto:a@b.example, mailto:c%2Bd@e.example!10m,"
                                    "https://x.example/, mailto:f@g.example!20", &r));
    assert_int_equal(r.n, 3);
    assert_string_equal(r.mailto[0], "a@b.example");
    assert_true(r.max_size[0] == 0);
    assert_string_equal(r.mailto[1], "c+d@e.example");
    assert_true(r.max_size[1] == 10ULL * 1024 * 1024);
    assert_string_equal(r.mailto[2], "f@g.example");
    assert_true(r.max_size[2] == 20);
    assert_true(dmarcrpt_record_rua("v=DMARC1; p=reject; rua=MAILTO:x@y.example!1K", &r));
    assert_true(r.n == 1 && r.max_size[0] == 1024);
    assert_false(dmarcrpt_record_rua("v=DMARC1; p=none", &r));
    assert_false(dmarcrpt_record_rua("v=DMARC1; p=none; rua=", &r));
    /* no address, a size that is no number, an unknown unit, an escape that is none, a quote */
    assert_false(dmarcrpt_record_rua("v=DMARC1; rua=mailto:nobody, mailto:a@b!x, mailto:a@b!5q, mailto:a%zz@b, "
                                     "mailto:a\"@b, mailto:@b, mailto:a@", &r));
    assert_true(dmarcrpt_record_rua("v=DMARC1; rua=mailto:1@a.example,mailto:2@a.example,mailto:3@a.example,"
                                    "mailto:4@a.example,mailto:5@a.example", &r));
    assert_int_equal(r.n, DMARCRPT_RUA_MAX);
}

static void test_external(void **state)
{
    (void)state;
    char name[300];
    assert_false(dmarcrpt_external("example.com", "dmarc@reports.example.com", name, sizeof name));
    assert_false(dmarcrpt_external("mail.example.com", "dmarc@EXAMPLE.com", name, sizeof name));
    assert_true(dmarcrpt_external("example.com", "agg@Reports.Example.NET", name, sizeof name));
    assert_string_equal(name, "example.com._report._dmarc.reports.example.net");
}

static const struct dmarc_record REJECT = {.p = DMARC_DIS_REJECT, .sp = DMARC_DIS_QUARANTINE, .pct = 100};

static struct dmarcrpt_message pass_by_dkim(void)
{
    struct dmarcrpt_message m = {.policy_domain = "example.com", .policy = &REJECT, .source_ip = "192.0.2.1",
                                 .header_from = "example.com", .disposition = DMARC_DIS_NONE, .dkim_aligned = true,
                                 .spf_domain = "bounce.esp.example", .spf_result = "pass", .ndkim = 2};
    m.dkim[0] = (struct dmarcrpt_dkim){"example.com", "s1", "pass"};
    m.dkim[1] = (struct dmarcrpt_dkim){"esp.example", NULL, "fail"};
    return m;
}

static const char EXPECTED_XML[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback>\n  <report_metadata>\n"
    "    <org_name>R &amp; D</org_name>\n    <email>postmaster@mx.example.org</email>\n"
    "    <report_id>id-1</report_id>\n    <date_range>\n      <begin>86400</begin>\n"
    "      <end>172799</end>\n    </date_range>\n  </report_metadata>\n  <policy_published>\n"
    "    <domain>example.com</domain>\n    <adkim>r</adkim>\n    <aspf>r</aspf>\n    <p>reject</p>\n"
    "    <sp>quarantine</sp>\n    <pct>100</pct>\n  </policy_published>\n"
    "  <record>\n    <row>\n      <source_ip>192.0.2.1</source_ip>\n      <count>2</count>\n"
    "      <policy_evaluated>\n        <disposition>none</disposition>\n        <dkim>pass</dkim>\n"
    "        <spf>fail</spf>\n      </policy_evaluated>\n    </row>\n    <identifiers>\n"
    "      <header_from>example.com</header_from>\n    </identifiers>\n    <auth_results>\n"
    "      <dkim>\n        <domain>example.com</domain>\n        <selector>s1</selector>\n"
    "        <result>pass</result>\n      </dkim>\n      <dkim>\n        <domain>esp.example</domain>\n"
    "        <result>fail</result>\n      </dkim>\n      <spf>\n        <domain>bounce.esp.example</domain>\n"
    "        <scope>mfrom</scope>\n        <result>pass</result>\n      </spf>\n    </auth_results>\n"
    "  </record>\n"
    "  <record>\n    <row>\n      <source_ip>2001:db8::1</source_ip>\n      <count>1</count>\n"
    "      <policy_evaluated>\n        <disposition>quarantine</disposition>\n        <dkim>fail</dkim>\n"
    "        <spf>fail</spf>\n        <reason>\n          <type>sampled_out</type>\n        </reason>\n"
    "      </policy_evaluated>\n    </row>\n    <identifiers>\n"
    "      <header_from>a.example.com</header_from>\n    </identifiers>\n    <auth_results>\n"
    "      <spf>\n        <domain>h?lo</domain>\n        <scope>helo</scope>\n        <result>none</result>\n"
    "      </spf>\n    </auth_results>\n  </record>\n</feedback>\n";

static struct dmarcrpt *filled(void)
{
    struct dmarcrpt *t = dmarcrpt_new();
    struct dmarcrpt_message m = pass_by_dkim();
    assert_true(dmarcrpt_note(t, &m));
    assert_true(dmarcrpt_note(t, &m));
    struct dmarcrpt_message sampled = {.policy_domain = "example.com", .policy = &REJECT,
                                       .source_ip = "2001:db8::1", .header_from = "a.example.com",
                                       .disposition = DMARC_DIS_QUARANTINE, .reason = "sampled_out",
                                       .spf_domain = "h<lo", .spf_helo = true, .spf_result = "none"};
    assert_true(dmarcrpt_note(t, &sampled));
    struct dmarcrpt_message other = m;
    other.policy_domain = other.header_from = "other.example";
    assert_true(dmarcrpt_note(t, &other));
    return t;
}

static void test_rows_and_the_xml_report(void **state)
{
    (void)state;
    struct dmarcrpt *t = filled();
    assert_int_equal(dmarcrpt_domains(t), 2);
    assert_string_equal(dmarcrpt_domain(t, 0), "example.com");
    assert_true(dmarcrpt_messages(t, 0) == 3 && dmarcrpt_messages(t, 1) == 1);
    size_t len;
    char *xml = dmarcrpt_xml(t, 0, "R & D", "postmaster@mx.example.org", "id-1", 86400, 172800, &len);
    assert_string_equal(xml, EXPECTED_XML);
    assert_int_equal(len, strlen(EXPECTED_XML));
    free(xml);
    dmarcrpt_clear(t);
    assert_int_equal(dmarcrpt_domains(t), 0);
    dmarcrpt_free(t);
}

static void test_state_round_trip_and_bad_lines(void **state)
{
    (void)state;
    struct dmarcrpt *t = filled();
    size_t len;
    char *dump = dmarcrpt_dump(t, &len);
    assert_non_null(strstr(dump, "D example.com r r reject quarantine 100\nR 2 192.0.2.1 example.com none pass fail"));
    struct dmarcrpt *back = dmarcrpt_new();
    assert_true(dmarcrpt_undump(back, dump));
    assert_true(dmarcrpt_undump(back, dump)); /* read twice: the counts add up */
    assert_true(dmarcrpt_messages(back, 0) == 6 && dmarcrpt_messages(back, 1) == 2);
    char *xml1 = dmarcrpt_xml(t, 1, "o", "c@d", "i", 0, 60, &len), *xml2 = dmarcrpt_xml(back, 1, "o", "c@d", "i", 0, 60, &len);
    assert_non_null(strstr(xml2, "<count>2</count>"));
    assert_non_null(strstr(xml1, "<count>1</count>"));
    free(xml1);
    free(xml2);
    static const char *const bad[] = {
        "R 1 a b none pass fail - - mfrom none\n",                 /* a row before any domain */
        "D x.example r r reject\n",                                /* too few words */
        "D x.example r x none none 100\n",                         /* an alignment mode that is none */
        "D x.example r r none none 101\n",                         /* pct over 100 */
        "D x.example r r none never 1\n",                          /* no disposition */
        "D x.example r r none none 1\nR x a b\n",                   /* a count that is no number */
        "D x.example r r none none 1\nR 1 a b none pass fail - -\n", /* too few fields */
        "D x.example r r none none 1\nR 1 a b none pass fail - - mfrom none d s\n", /* a DKIM result cut */
        "D x.example r r none none 1\nR 1 a <b> none pass fail - - mfrom none\n", /* XML's characters */
        "X y\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct dmarcrpt *b = dmarcrpt_new();
        assert_false(dmarcrpt_undump(b, bad[i]));
        dmarcrpt_free(b);
    }
    free(dump);
    dmarcrpt_free(back);
    dmarcrpt_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rua),
        cmocka_unit_test(test_external),
        cmocka_unit_test(test_rows_and_the_xml_report),
        cmocka_unit_test(test_state_round_trip_and_bad_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
