/* Unit tests for dkim_verify.c over the fuzz seeds of fuzz/corpus/dkim (messages signed by
 * python3-dkim, each followed by a NUL and its key's TXT rdata; run from the project root):
 * every canonicalization passes as signed; a changed body or header, another key, a missing or
 * broken key record each get their result. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "dkim_canon.h"
#include "dkim_verify.h"

struct seed {
    char text[4096];
    size_t text_len;
    unsigned char rdata[1024];
    int rdata_len;
};

static void load_seed(const char *name, struct seed *s)
{
    char path[128];
    unsigned char raw[8192];
    snprintf(path, sizeof path, "fuzz/corpus/dkim/%s", name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t n = fread(raw, 1, sizeof raw, f);
    fclose(f);
    const unsigned char *nul = memchr(raw, 0, n);
    assert_non_null(nul);
    s->text_len = (size_t)(nul - raw);
    memcpy(s->text, raw, s->text_len);
    s->text[s->text_len] = '\0';
    s->rdata_len = (int)(n - s->text_len - 1);
    memcpy(s->rdata, nul + 1, (size_t)s->rdata_len);
}

/* The result of the message's first signature with the seed's key (or its absence). */
static enum dkim_result verify(const char *text, const struct seed *key, enum dkim_key_lookup how, char *detail)
{
    struct evbuffer *b = evbuffer_new();
    struct dkim_verification *v = malloc(sizeof *v);
    assert_true(b && v);
    evbuffer_add(b, text, strlen(text));
    dkim_verify_prepare(b, 1800000000, v);
    assert_int_equal(v->count, 1);
    const unsigned char *rdata[1] = {key->rdata};
    int len[1] = {key->rdata_len};
    if (v->sigs[0].result == DKIM_R_NONE)
        dkim_verify_key(&v->sigs[0], how, rdata, len, 1);
    enum dkim_result r = v->sigs[0].result;
    strcpy(detail, v->sigs[0].detail);
    evbuffer_free(b);
    free(v);
    return r;
}

static void test_signed_seeds_pass(void **state)
{
    (void)state;
    char detail[96];
    for (int i = 0; i < 4; i++) { /* relaxed/relaxed, simple/simple with l=, relaxed/simple, Ed25519 */
        char name[8];
        struct seed s;
        snprintf(name, sizeof name, "seed%d", i);
        load_seed(name, &s);
        enum dkim_result r = verify(s.text, &s, DKIM_KEY_ANSWER, detail);
        if (r != DKIM_R_PASS)
            fail_msg("%s: %s (%s)", name, dkim_result_name(r), detail);
    }
}

static void test_changes_and_keys(void **state)
{
    (void)state;
    char detail[96], text[4200];
    struct seed relaxed, simple, ed;
    load_seed("seed0", &relaxed);
    load_seed("seed1", &simple);
    load_seed("seed3", &ed);
    snprintf(text, sizeof text, "%s", relaxed.text);
    *strstr(text, "\nbody") = '\0';
    strcat(text, "\nbodY\n\n");
    assert_int_equal(verify(text, &relaxed, DKIM_KEY_ANSWER, detail), DKIM_R_FAIL);
    assert_string_equal(detail, "body hash did not verify");
    snprintf(text, sizeof text, "%s", relaxed.text);
    strstr(text, "Subject: s")[9] = 't';
    assert_int_equal(verify(text, &relaxed, DKIM_KEY_ANSWER, detail), DKIM_R_FAIL);
    assert_string_equal(detail, "signature did not verify");
    snprintf(text, sizeof text, "%s", simple.text); /* l= covers the signed body: more may follow */
    strcat(text, "appended\n");
    assert_int_equal(verify(text, &simple, DKIM_KEY_ANSWER, detail), DKIM_R_PASS);
    assert_int_equal(verify(relaxed.text, &ed, DKIM_KEY_ANSWER, detail), DKIM_R_PERMERROR); /* an Ed25519 key */
    assert_string_equal(detail, "key type does not match a=");
    assert_int_equal(verify(relaxed.text, &relaxed, DKIM_KEY_NONE, detail), DKIM_R_PERMERROR);
    assert_string_equal(detail, "no key at s._domainkey.x.test");
    assert_int_equal(verify(relaxed.text, &relaxed, DKIM_KEY_TEMPFAIL, detail), DKIM_R_TEMPERROR);
    struct seed broken = relaxed;
    broken.rdata[5] = 'X'; /* "v=DKIX1" */
    assert_int_equal(verify(relaxed.text, &broken, DKIM_KEY_ANSWER, detail), DKIM_R_PERMERROR);
}

static void test_bad_fields(void **state)
{
    (void)state;
    static const struct {
        const char *field, *detail;
    } cases[] = {
        {"v=1; a=rsa-sha256; d=x.test; s=s; h=from; x=1; bh=AAAA; b=AAAA", "signature expired (x=)"},
        {"v=1; a=rsa-sha256; d=x.test; s=s; h=from; t=9; x=8; bh=AAAA; b=AAAA", "bad t= or x="},
        {"v=1; a=rsa-sha256; d=x.test; s=s; h=to; bh=AAAA; b=AAAA", "h= does not sign From"},
        {"v=1; a=rsa-sha256; d=x.test; s=s; h=from; i=a@y.test; bh=AAAA; b=AAAA", "i= is not in the domain of d="},
        {"v=1; a=rsa-sha256; d=x.test; s=s; h=from; i=a@xx.test; bh=AAAA; b=AAAA", "i= is not in the domain of d="},
        {"v=1; a=rsa-sha256; d=x.test; s=s; h=from; c=odd; bh=AAAA; b=AAAA", "unknown canonicalization in c="},
        {"v=1; a=rsa-sha256; d=x.test; s=s; h=from; bh=AAAA; b=AAAA", "bh= is not a SHA-256 hash"},
        {"v=1; a=rsa-sha256; d=x.test; s=s; h=from; bh=AAAA; b=!!", "b= is not a signature"},
        {"v=2; a=rsa-sha256; d=x.test; s=s; h=from; bh=AAAA; b=AAAA", "v= is not 1"},
        {"v=1; a=rsa-md5; d=x.test; s=s; h=from; bh=AAAA; b=AAAA", "unknown algorithm in a="},
        {"v=1; a=rsa-sha256; d=[1.2.3.4]; s=s; h=from; bh=AAAA; b=AAAA", "d= is not a domain name"},
        {"v=1; a=rsa-sha256; d=x.test; s=a/b; h=from; bh=AAAA; b=AAAA", "s= is not a selector"},
        {"v=1; v=1; a=rsa-sha256", "signature field is not a tag list"},
        {"v=1; a=rsa-sha256; d=x.test; s=s; h=from; q=http; bh=AAAA; b=AAAA", "q= does not allow dns/txt"},
    };
    struct seed none = {0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[512], detail[96];
        snprintf(text, sizeof text, "DKIM-Signature: %s\nFrom: a@x.test\n\nbody\n", cases[i].field);
        assert_int_equal(verify(text, &none, DKIM_KEY_NONE, detail), DKIM_R_PERMERROR);
        if (strcmp(detail, cases[i].detail) != 0)
            fail_msg("%s: got '%s', expected '%s'", cases[i].field, detail, cases[i].detail);
    }
}

/* field_mailbox_domain walks every mailbox of a From field: quoted strings and comments never
 * count, an empty list element is -1, a mailbox with no usable domain 0; field_from_domain still
 * reads the first and says whether more follow. */
static void test_from_mailboxes(void **state)
{
    (void)state;
    const char text[] = "From: \"x@evil.test\" <a@X.example>, (c@z.test) b@y.example , ,\n Undisclosed,"
                        " c@bad..example"; /* a field's text has no final LF */
    struct field f = {text, sizeof text - 1};
    const int want[] = {1, 1, -1, 0, 0};
    const char *domains[] = {"X.example", "y.example", NULL, NULL, NULL};
    char d[256];
    size_t pos = 0, n = 0;
    while (pos < f.len) {
        assert_true(n < 5);
        int r = field_mailbox_domain(&f, &pos, d, sizeof d);
        assert_int_equal(r, want[n]);
        if (domains[n])
            assert_int_equal(strcasecmp(d, domains[n]), 0);
        n++;
    }
    assert_int_equal(n, 5);
    bool several = false;
    assert_true(field_from_domain(&f, d, sizeof d, &several));
    assert_int_equal(strcasecmp(d, "x.example"), 0);
    assert_true(several);
    struct field one = {"From: a@one.example", 19};
    assert_true(field_from_domain(&one, d, sizeof d, &several));
    assert_false(several);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signed_seeds_pass),
        cmocka_unit_test(test_changes_and_keys),
        cmocka_unit_test(test_bad_fields),
        cmocka_unit_test(test_from_mailboxes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
