/* Unit tests for spf.c's pure parts: macro expansion (every example of RFC 7208 7.4), record
 * syntax (RFC 7208 4.6: any error makes the record a permerror), choosing the one v=spf1 record. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "spf.h"

static const struct spf_macro_env rfc_v4 = {"strong-bad@email.example.com", "strong-bad", "email.example.com",
                                             "email.example.com", "192.0.2.3", false, "mx.example.org",
                                             "192.0.2.3", "mx.receiver.example", "1700000000"};

static void expect(const struct spf_macro_env *env, const char *spec, const char *want)
{
    char out[300];
    assert_true(spf_expand(spec, strlen(spec), env, out, sizeof out));
    assert_string_equal(out, want);
}

static void test_rfc_7208_macro_examples(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"%{s}", "strong-bad@email.example.com"}, {"%{o}", "email.example.com"}, {"%{d}", "email.example.com"},
        {"%{d4}", "email.example.com"}, {"%{d3}", "email.example.com"}, {"%{d2}", "example.com"},
        {"%{d1}", "com"}, {"%{dr}", "com.example.email"}, {"%{d2r}", "example.email"}, {"%{l}", "strong-bad"},
        {"%{l-}", "strong.bad"}, {"%{lr}", "strong-bad"}, {"%{lr-}", "bad.strong"}, {"%{l1r-}", "strong"},
        {"%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com"},
        {"%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"},
        {"%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"},
        {"%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com"},
        {"%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net"},
        {"%%%_%-x.example", "% %20x.example"}, {"%{S}", "strong-bad%40email.example.com"},
        {"%{h}", "mx.example.org"}, {"%{p}", "unknown"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect(&rfc_v4, cases[i][0], cases[i][1]);
    struct spf_macro_env v6 = rfc_v4;
    v6.ip = "2.0.0.1.0.d.b.8.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.c.b.0.1";
    v6.ipv6 = true;
    expect(&v6, "%{ir}.%{v}._spf.%{d2}",
           "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com");
}

static void test_macro_errors_and_length(void **state)
{
    (void)state;
    char out[300];
    static const char *const bad[] = {"%{x}", "%{d", "%{d0}", "%{c}", "%{r}", "%{t}", "%", "%a", "a b", "%{d2r"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_false(spf_expand(bad[i], strlen(bad[i]), NULL, NULL, 0));
        assert_false(spf_expand(bad[i], strlen(bad[i]), &rfc_v4, out, sizeof out));
    }
    /* over 253 octets: labels go from the left until it fits */
    char spec[400];
    snprintf(spec, sizeof spec, "%s", "");
    for (int i = 0; i < 30; i++)
        strcat(spec, "label6789.");
    strcat(spec, "example");
    assert_true(spf_expand(spec, strlen(spec), &rfc_v4, out, sizeof out));
    assert_true(strlen(out) <= 253);
    assert_int_equal(strncmp(out, "label6789.", 10), 0);
    assert_string_equal(out + strlen(out) - 8, ".example");
}

/* RFC 7208 6.2: an explanation's text - spaces, c r t - and what stays an error in it. */
static void test_explanation_expansion(void **state)
{
    (void)state;
    char out[1024];
    static const char *const cases[][2] = {
        {"%{i} is not one of %{d}'s designated mail servers.",
         "192.0.2.3 is not one of email.example.com's designated mail servers."},
        {"See http://%{d}/why.html?s=%{S}&i=%{I}", "See http://email.example.com/why.html?s=strong-bad%40email.example.com&i=192.0.2.3"},
        {"%{c} refused by %{r} at %{t}", "192.0.2.3 refused by mx.receiver.example at 1700000000"},
        {"", ""}, {"a  b%_c", "a  b c"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_true(spf_expand_explanation(cases[i][0], strlen(cases[i][0]), &rfc_v4, out, sizeof out));
        assert_string_equal(out, cases[i][1]);
    }
    static const char *const bad[] = {"%{x}", "tab\there", "100%", "%{d", "caf\xc3\xa9"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(spf_expand_explanation(bad[i], strlen(bad[i]), &rfc_v4, out, sizeof out));
    assert_false(spf_expand("%{c}.example", 12, &rfc_v4, out, sizeof out)); /* not in a domain-spec */
    char longer[400];
    memset(longer, 'w', 300);
    longer[300] = '\0';
    assert_true(spf_expand_explanation(longer, 300, &rfc_v4, out, sizeof out)); /* no cut to 253 */
    assert_int_equal(strlen(out), 300);
    assert_false(spf_expand_explanation(longer, 300, &rfc_v4, out, 100)); /* out too small */
}

static void test_record_syntax(void **state)
{
    (void)state;
    static const char *const good[] = {
        "v=spf1", "v=spf1 -all", "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 a mx ptr ~all",
        "v=spf1 a:example.com/24//64 mx/30 a//64 -all", "v=spf1 include:_spf.example.com ?all",
        "v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d} -all", "v=spf1 redirect=_spf.example.com",
        "v=spf1 moo=bar -all", "v=spf1 mx:%{d}", "V=SPF1 A MX -ALL", "v=spf1  a   -all  ",
        "v=spf1 exp=explain._spf.%{d} -all"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_true(spf_record_valid(good[i]));
    static const char *const bad[] = {
        "v=spf1 foo", "v=spf1 a:", "v=spf1 ip4:192.0.2", "v=spf1 ip4:2001:db8::1", "v=spf1 ip6:192.0.2.1",
        "v=spf1 redirect=a.example redirect=b.example", "v=spf1 -redirect=x.example", "v=spf1 a/33",
        "v=spf1 a//129", "v=spf1 include:%{z}.example", "v=spf1 all:x", "v=spf1 include", "v=spf1 exists",
        "v=spf1 a:1.2.3.4", "v=spf1 mx:example.", "v=spf1 a/024", "v=spf1 =x", "v=spf1 exp=a exp=b"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (spf_record_valid(bad[i]))
            fail_msg("taken as valid: %s", bad[i]);
    }
}

/* TXT rdata: <length><octets> strings. */
static int txt(unsigned char *out, const char *a, const char *b)
{
    int n = 0;
    for (const char *s = a; s; s = s == a ? b : NULL) {
        out[n++] = (unsigned char)strlen(s);
        memcpy(out + n, s, strlen(s));
        n += (int)strlen(s);
    }
    return n;
}

static void test_record_selection(void **state)
{
    (void)state;
    unsigned char r1[300], r2[300], r3[300];
    int len[3] = {txt(r1, "google-site-verification=abc", NULL), txt(r2, "v=spf1 ip4:192.0.2.1", " -all"),
                  txt(r3, "v=spf10 +all", NULL)};
    const unsigned char *data[3] = {r1, r2, r3};
    char out[4200];
    assert_int_equal(spf_select_record(data, len, 3, out, sizeof out), 1);
    assert_string_equal(out, "v=spf1 ip4:192.0.2.1 -all"); /* strings joined without a blank */
    len[2] = txt(r3, "v=spf1 -all", NULL);
    assert_int_equal(spf_select_record(data, len, 3, out, sizeof out), -1); /* two records: permerror */
    assert_int_equal(spf_select_record(data, len, 1, out, sizeof out), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_rfc_7208_macro_examples),
                                       cmocka_unit_test(test_macro_errors_and_length),
                                       cmocka_unit_test(test_explanation_expansion),
                                       cmocka_unit_test(test_record_syntax), cmocka_unit_test(test_record_selection)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
