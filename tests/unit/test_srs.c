/* Unit tests for srs.c: SRS0 addresses made for senders this server passes on, read back when a
 * bounce comes to them - hash, day stamp and age, secret rotation, case, what is left alone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "srs.h"

#define DAY 86400LL
#define NOW (20000 * DAY + 3600) /* a day whose stamp is 20000 % 1024 = 544 = "RA" */

static void srs_init(struct srs *s, const char *first, const char *second)
{
    const char *err = NULL;
    memset(s, 0, sizeof *s);
    strcpy(s->domain, "fwd.example.net");
    s->max_age_days = 21;
    assert_true(srs_secret_add(s, first, &err));
    if (second)
        assert_true(srs_secret_add(s, second, &err));
}

static void test_round_trip(void **state)
{
    (void)state;
    struct srs s;
    srs_init(&s, "0123456789abcdef-first", NULL);
    char out[300], back[300], local[100];
    assert_true(srs_forward(&s, "Carol.Jones@Example.ORG", NOW, out, sizeof out));
    assert_int_equal(strncmp(out, "SRS0=", 5), 0);
    assert_non_null(strstr(out, "=RA=example.org=Carol.Jones@fwd.example.net"));
    assert_int_equal(strlen(out), strlen("SRS0=HHHHH=RA=example.org=Carol.Jones@fwd.example.net"));
    snprintf(local, sizeof local, "%.*s", (int)(strrchr(out, '@') - out), out);
    assert_int_equal(srs_reverse(&s, local, NOW, back, sizeof back), SRS_VALID);
    assert_string_equal(back, "Carol.Jones@example.org");
    for (char *p = local; *p; p++) /* a server that lower-cases the address it bounces to */
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    assert_int_equal(srs_reverse(&s, local, NOW, back, sizeof back), SRS_VALID);
    assert_string_equal(back, "carol.jones@example.org");
    srs_free(&s);
}

static void test_forgeries_and_age(void **state)
{
    (void)state;
    struct srs s;
    srs_init(&s, "0123456789abcdef-first", NULL);
    char out[300], back[300], local[100];
    assert_true(srs_forward(&s, "bob@example.org", NOW, out, sizeof out));
    snprintf(local, sizeof local, "%.*s", (int)(strrchr(out, '@') - out), out);
    assert_int_equal(srs_reverse(&s, local, NOW + 21 * DAY, back, sizeof back), SRS_VALID);
    assert_int_equal(srs_reverse(&s, local, NOW + 22 * DAY, back, sizeof back), SRS_EXPIRED);
    char other[100];
    strcpy(other, local);
    other[strlen(other) - 1] = 'c'; /* bob -> boc: another address under the same hash */
    assert_int_equal(srs_reverse(&s, other, NOW, back, sizeof back), SRS_BAD);
    strcpy(other, local);
    other[5] = other[5] == 'A' ? 'B' : 'A'; /* the hash changed */
    assert_int_equal(srs_reverse(&s, other, NOW, back, sizeof back), SRS_BAD);
    assert_int_equal(srs_reverse(&s, "SRS0=ABCDE=RA=example.org", NOW, back, sizeof back), SRS_BAD);
    assert_int_equal(srs_reverse(&s, "SRS0=ABC=RA=example.org=bob", NOW, back, sizeof back), SRS_BAD);
    assert_int_equal(srs_reverse(&s, "SRS0==", NOW, back, sizeof back), SRS_BAD);
    assert_int_equal(srs_reverse(&s, "bob", NOW, back, sizeof back), SRS_NOT_SRS);
    assert_int_equal(srs_reverse(&s, "SRS1=x", NOW, back, sizeof back), SRS_BAD);
    assert_int_equal(srs_reverse(&s, "SRS2=x", NOW, back, sizeof back), SRS_NOT_SRS);
    struct srs other_server;
    srs_init(&other_server, "another-secret-of-16+", NULL);
    assert_int_equal(srs_reverse(&other_server, local, NOW, back, sizeof back), SRS_BAD);
    srs_free(&other_server);
    srs_free(&s);
}

/* A new first secret signs; the old one still verifies what it signed until it is removed. */
static void test_rotation(void **state)
{
    (void)state;
    struct srs old, both;
    srs_init(&old, "the-old-secret-0123", NULL);
    srs_init(&both, "the-new-secret-4567", "the-old-secret-0123");
    char out[300], back[300], local[100];
    assert_true(srs_forward(&old, "bob@example.org", NOW, out, sizeof out));
    snprintf(local, sizeof local, "%.*s", (int)(strrchr(out, '@') - out), out);
    assert_int_equal(srs_reverse(&both, local, NOW, back, sizeof back), SRS_VALID);
    assert_true(srs_forward(&both, "bob@example.org", NOW, out, sizeof out));
    snprintf(local, sizeof local, "%.*s", (int)(strrchr(out, '@') - out), out);
    assert_int_equal(srs_reverse(&old, local, NOW, back, sizeof back), SRS_BAD);
    srs_free(&old);
    srs_free(&both);
}

/* What SRS leaves as it is, and the secrets it refuses. */
static void test_left_alone(void **state)
{
    (void)state;
    struct srs s;
    srs_init(&s, "0123456789abcdef-first", NULL);
    char out[300], back[300], local[100];
    assert_false(srs_forward(&s, "", NOW, out, sizeof out));
    assert_false(srs_forward(&s, "bob@FWD.example.net", NOW, out, sizeof out));
    assert_false(srs_forward(&s, "\"bob smith\"@example.org", NOW, out, sizeof out));
    assert_false(srs_forward(&s, "bob@[192.0.2.1]", NOW, out, sizeof out));
    assert_false(srs_forward(&s, "b\xc3\xb6" "b@example.org", NOW, out, sizeof out));
    assert_false(srs_forward(&s, "postmaster", NOW, out, sizeof out));
    /* the SRS local part may not pass 64 octets: 15 + 11 (the domain) + 38 = 64 fits, 39 does not */
    char sender[100];
    snprintf(sender, sizeof sender, "%038d@example.org", 0);
    assert_true(srs_forward(&s, sender, NOW, out, sizeof out));
    snprintf(local, sizeof local, "%.*s", (int)(strrchr(out, '@') - out), out);
    assert_int_equal(strlen(local), 64);
    assert_int_equal(srs_reverse(&s, local, NOW, back, sizeof back), SRS_VALID);
    snprintf(sender, sizeof sender, "%039d@example.org", 0);
    assert_false(srs_forward(&s, sender, NOW, out, sizeof out));
    const char *err = NULL;
    assert_false(srs_secret_add(&s, "short", &err));
    assert_non_null(err);
    srs_free(&s);
    struct srs off = {0};
    assert_false(srs_forward(&off, "bob@example.org", NOW, out, sizeof out));
}

/* The local part of an address made by srs_forward. */
static const char *local_of(const char *addr, char *local, size_t localsz)
{
    snprintf(local, localsz, "%.*s", (int)(strrchr(addr, '@') - addr), addr);
    return local;
}

/* A sender that is an SRS0 address of another forwarder goes out as SRS1, naming that forwarder;
 * its bounce leads back to the forwarder's SRS0 address. An SRS1 sender keeps its first forwarder.
 * Neither grows the address, neither carries a day stamp of its own. */
static void test_srs1(void **state)
{
    (void)state;
    struct srs s, other;
    srs_init(&s, "0123456789abcdef-first", NULL);
    srs_init(&other, "another-secret-of-16+", NULL);
    strcpy(other.domain, "second.example");
    char out[300], back[300], local[100], hop2[300];
    assert_true(srs_forward(&s, "SRS0=abcde=RA=orig.example=bob@Other.Example", NOW, out, sizeof out));
    assert_int_equal(strncmp(out, "SRS1=", 5), 0);
    assert_non_null(strstr(out, "=other.example==abcde=RA=orig.example=bob@fwd.example.net"));
    assert_int_equal(strlen(out), strlen("SRS1=HHHHH=other.example==abcde=RA=orig.example=bob@fwd.example.net"));
    assert_int_equal(srs_reverse(&s, local_of(out, local, sizeof local), NOW + 400 * DAY, back, sizeof back),
                     SRS_VALID); /* no age of its own: the first forwarder checks its SRS0's */
    assert_string_equal(back, "SRS0=abcde=RA=orig.example=bob@other.example");
    for (char *p = local; *p; p++)
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    assert_int_equal(srs_reverse(&s, local, NOW, back, sizeof back), SRS_VALID);
    assert_string_equal(back, "SRS0=abcde=ra=orig.example=bob@other.example");
    /* changed: the forwarder, the rest, the hash; another server's secret */
    char bad[100];
    local_of(out, local, sizeof local);
    snprintf(bad, sizeof bad, "%s", local);
    *strstr(bad, "other.example") = 'm';
    assert_int_equal(srs_reverse(&s, bad, NOW, back, sizeof back), SRS_BAD);
    snprintf(bad, sizeof bad, "%s", local);
    bad[strlen(bad) - 1] = 'c';
    assert_int_equal(srs_reverse(&s, bad, NOW, back, sizeof back), SRS_BAD);
    snprintf(bad, sizeof bad, "%s", local);
    bad[5] = bad[5] == 'A' ? 'B' : 'A';
    assert_int_equal(srs_reverse(&s, bad, NOW, back, sizeof back), SRS_BAD);
    assert_int_equal(srs_reverse(&other, local, NOW, back, sizeof back), SRS_BAD);
    /* not SRS1 as written: no rest, no separator before it, no forwarder */
    assert_int_equal(srs_reverse(&s, "SRS1=ABCDE=other.example=", NOW, back, sizeof back), SRS_BAD);
    assert_int_equal(srs_reverse(&s, "SRS1=ABCDE=other.example=x", NOW, back, sizeof back), SRS_BAD);
    assert_int_equal(srs_reverse(&s, "SRS1=ABCDE===abc", NOW, back, sizeof back), SRS_BAD);
    /* a second forwarder re-signs it, keeping the first forwarder: its bounce goes straight there */
    assert_true(srs_forward(&other, out, NOW, hop2, sizeof hop2));
    assert_non_null(strstr(hop2, "=other.example==abcde=RA=orig.example=bob@second.example"));
    assert_int_equal(strlen(hop2), strlen(out) - strlen("fwd.example.net") + strlen("second.example"));
    assert_int_equal(srs_reverse(&other, local_of(hop2, local, sizeof local), NOW, back, sizeof back), SRS_VALID);
    assert_string_equal(back, "SRS0=abcde=RA=orig.example=bob@other.example");
    /* the SRS0 hash never verifies as an SRS1 one (and back) */
    assert_true(srs_forward(&s, "bob@orig.example", NOW, out, sizeof out));
    local_of(out, local, sizeof local);
    memcpy(local, "SRS1", 4);
    assert_int_equal(srs_reverse(&s, local, NOW, back, sizeof back), SRS_BAD);
    /* what SRS1 cannot carry stays as it is: too long, a forwarder that is srs_domain itself */
    char sender[200];
    snprintf(sender, sizeof sender, "SRS0=abcde=RA=orig.example=%016d@other.example", 0);
    assert_true(srs_forward(&s, sender, NOW, out, sizeof out));
    assert_int_equal(strlen(local_of(out, local, sizeof local)), 64);
    snprintf(sender, sizeof sender, "SRS0=abcde=RA=orig.example=%017d@other.example", 0);
    assert_false(srs_forward(&s, sender, NOW, out, sizeof out));
    assert_false(srs_forward(&s, "SRS1=ABCDE=fwd.example.net==abcde=RA=o.example=bob@x.example", NOW, out, sizeof out));
    assert_false(srs_forward(&s, "SRS1=ABCDE==x@x.example", NOW, out, sizeof out));
    /* "SRS0" without a separator is an ordinary local part */
    assert_true(srs_forward(&s, "srs0bob@orig.example", NOW, out, sizeof out));
    assert_int_equal(strncmp(out, "SRS0=", 5), 0);
    srs_free(&other);
    srs_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_round_trip), cmocka_unit_test(test_forgeries_and_age),
                                       cmocka_unit_test(test_rotation), cmocka_unit_test(test_left_alone),
                                       cmocka_unit_test(test_srs1)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
