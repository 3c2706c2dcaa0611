/* Unit tests for tlsrpt.c: TLSRPT records, the counting per domain, policy and kind of failure,
 * the JSON report (exact), and OpenSSL's verification errors as RFC 8460 result types. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/x509_vfy.h>

#include "tlsrpt.h"

static void test_records(void **state)
{
    (void)state;
    struct tlsrpt_rua r;
    assert_true(tlsrpt_record_rua("v=TLSRPTv1; rua=mailto:a@b.example, mailto:c@d.example ,https://x.example/r?k=1",
                                  &r));
    assert_int_equal(r.nmailto, 2);
    assert_int_equal(r.nhttps, 1);
    assert_string_equal(r.mailto[0], "a@b.example");
    assert_string_equal(r.mailto[1], "c@d.example");
    assert_string_equal(r.https[0], "https://x.example/r?k=1");
    assert_true(tlsrpt_record_rua("v=TLSRPTv1;rua=https://only.example/", &r));
    assert_int_equal(r.nmailto, 0);
    assert_int_equal(r.nhttps, 1);
    assert_false(tlsrpt_record_rua("v=TLSRPTv2; rua=mailto:a@b.example", &r));
    assert_false(tlsrpt_record_rua("v=TLSRPTv1", &r));
    assert_false(tlsrpt_record_rua("rua=mailto:a@b.example; v=TLSRPTv1", &r)); /* v first */
    assert_false(tlsrpt_record_rua("v=TLSRPTv1; rua=mailto:nobody, mailto:x@y?subject=hi, http://plain.example/", &r));
    assert_false(tlsrpt_record_rua("v=TLSRPTv1; rua=https://, https://q.example/\"x", &r));
}

static const char *const STS_LINES[] = {"version: STSv1", "mode: enforce", "mx: *.mx.example", "max_age: 86400"};
static const char *const STS_MX[] = {"*.mx.example"};

static struct tlsrpt_result sts(const char *domain, const char *failure, const char *mx, const char *ip)
{
    return (struct tlsrpt_result){.domain = domain, .type = TLSRPT_STS, .policy_lines = STS_LINES,
                                  .npolicy_lines = 4, .mx_patterns = STS_MX, .nmx_patterns = 1, .mx_host = mx,
                                  .ip = ip, .failure = failure};
}

static void test_counts_and_the_json_report(void **state)
{
    (void)state;
    struct tlsrpt *t = tlsrpt_new();
    struct tlsrpt_result ok = sts("b.example", NULL, "a.mx.example", "192.0.2.1");
    struct tlsrpt_result bad = sts("b.example", "certificate-expired", "a.mx.example", "192.0.2.1");
    assert_true(tlsrpt_note(t, &ok));
    assert_true(tlsrpt_note(t, &ok));
    assert_true(tlsrpt_note(t, &bad));
    assert_true(tlsrpt_note(t, &bad));
    struct tlsrpt_result other = sts("C.example", NULL, "a.mx.example", "192.0.2.1");
    assert_true(tlsrpt_note(t, &other));
    assert_int_equal(tlsrpt_domains(t), 2);
    assert_string_equal(tlsrpt_domain(t, 0), "b.example");
    unsigned long long good, failed;
    tlsrpt_counts(t, 0, &good, &failed);
    assert_int_equal(good, 2);
    assert_int_equal(failed, 2);
    size_t len;
    char *json = tlsrpt_json(t, 0, "Org \"Q\"", "tls@e.example", "r-1@e.example", 1800000000, 1800086400, &len);
    assert_non_null(json);
    assert_string_equal(json,
                        "{\"organization-name\":\"Org \\\"Q\\\"\",\"date-range\":{\"start-datetime\":"
                        "\"2027-01-15T08:00:00Z\",\"end-datetime\":\"2027-01-16T07:59:59Z\"},\"contact-info\":"
                        "\"tls@e.example\",\"report-id\":\"r-1@e.example\",\"policies\":[{\"policy\":{\"policy-type\":"
                        "\"sts\",\"policy-string\":[\"version: STSv1\",\"mode: enforce\",\"mx: *.mx.example\","
                        "\"max_age: 86400\"],\"policy-domain\":\"b.example\",\"mx-host\":[\"*.mx.example\"]},"
                        "\"summary\":{\"total-successful-session-count\":2,\"total-failure-session-count\":2},"
                        "\"failure-details\":[{\"result-type\":\"certificate-expired\",\"receiving-mx-hostname\":"
                        "\"a.mx.example\",\"receiving-ip\":\"192.0.2.1\",\"failed-session-count\":2}]}]}\n");
    assert_int_equal(len, strlen(json));
    free(json);
    struct tlsrpt_result upper = sts("B.EXAMPLE", NULL, "a.mx.example", "192.0.2.1");
    assert_true(tlsrpt_note(t, &upper)); /* the same domain, whatever its case */
    assert_int_equal(tlsrpt_domains(t), 2);
    tlsrpt_clear(t);
    assert_int_equal(tlsrpt_domains(t), 0);
    assert_true(tlsrpt_note(t, &upper)); /* a cleared table finds nothing of before */
    assert_int_equal(tlsrpt_domains(t), 1);
    assert_string_equal(tlsrpt_domain(t, 0), "B.EXAMPLE");
    tlsrpt_free(t);
}

static void test_failure_kinds_beyond_the_limit_count_in_the_summary_only(void **state)
{
    (void)state;
    struct tlsrpt *t = tlsrpt_new();
    char ip[32];
    for (int i = 0; i < TLSRPT_FAILURES_MAX + 5; i++) {
        snprintf(ip, sizeof ip, "192.0.2.%d", i + 1);
        struct tlsrpt_result r = sts("b.example", "starttls-not-supported", "a.mx.example", ip);
        assert_true(tlsrpt_note(t, &r));
    }
    unsigned long long good, failed;
    tlsrpt_counts(t, 0, &good, &failed);
    assert_int_equal(failed, TLSRPT_FAILURES_MAX + 5);
    size_t len;
    char *json = tlsrpt_json(t, 0, "o", "c", "r", 0, 86400, &len);
    size_t details = 0;
    for (const char *p = json; (p = strstr(p, "\"result-type\"")); p++)
        details++;
    assert_int_equal(details, TLSRPT_FAILURES_MAX);
    free(json);
    tlsrpt_free(t);
}

static void test_a_dump_reads_back_as_the_same_report(void **state)
{
    (void)state;
    struct tlsrpt *t = tlsrpt_new();
    struct tlsrpt_result ok = sts("b.example", NULL, "a.mx.example", "192.0.2.1");
    struct tlsrpt_result bad = sts("b.example", "starttls-not-supported", "a.mx.example", "");
    const char *const tlsa[] = {"3 1 1 00ff"};
    struct tlsrpt_result dane = {.domain = "b.example", .type = TLSRPT_TLSA, .policy_lines = tlsa,
                                 .npolicy_lines = 1, .mx_patterns = tlsa, .nmx_patterns = 0,
                                 .mx_host = "a.mx.example", .ip = "2001:db8::1", .failure = "tlsa-invalid"};
    tlsrpt_note(t, &ok);
    tlsrpt_note(t, &bad);
    tlsrpt_note(t, &dane);
    size_t len, len1, len2;
    char *dump = tlsrpt_dump(t, &len);
    assert_non_null(dump);
    struct tlsrpt *back = tlsrpt_new();
    assert_true(tlsrpt_undump(back, dump));
    char *a = tlsrpt_json(t, 0, "o", "c", "r", 0, 86400, &len1), *b = tlsrpt_json(back, 0, "o", "c", "r", 0, 86400, &len2);
    assert_string_equal(a, b);
    const char *bad_texts[] = {"P 0 1 1\n", "D x\nP 2 1 1\n", "D x\nP 0 1\n", "D x\nF 1 a b c\n", "X y\n",
                               "D x\nP 0 1 1\nF one a b c\n", "D x\nP 0 1 1\nF 1 a b\n"};
    for (size_t i = 0; i < sizeof bad_texts / sizeof *bad_texts; i++) {
        struct tlsrpt *junk = tlsrpt_new();
        if (tlsrpt_undump(junk, bad_texts[i]))
            fail_msg("read: %s", bad_texts[i]);
        tlsrpt_free(junk);
    }
    free(a);
    free(b);
    free(dump);
    tlsrpt_free(t);
    tlsrpt_free(back);
}

static void test_verification_errors_as_result_types(void **state)
{
    (void)state;
    assert_string_equal(tlsrpt_verify_failure(X509_V_ERR_HOSTNAME_MISMATCH), "certificate-host-mismatch");
    assert_string_equal(tlsrpt_verify_failure(X509_V_ERR_CERT_HAS_EXPIRED), "certificate-expired");
    assert_string_equal(tlsrpt_verify_failure(X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT), "certificate-not-trusted");
    assert_string_equal(tlsrpt_verify_failure(X509_V_ERR_DANE_NO_MATCH), "tlsa-invalid");
    assert_string_equal(tlsrpt_verify_failure(X509_V_ERR_INVALID_PURPOSE), "validation-failure");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_records),
        cmocka_unit_test(test_counts_and_the_json_report),
        cmocka_unit_test(test_failure_kinds_beyond_the_limit_count_in_the_summary_only),
        cmocka_unit_test(test_a_dump_reads_back_as_the_same_report),
        cmocka_unit_test(test_verification_errors_as_result_types),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
