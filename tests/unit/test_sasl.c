/* Unit tests for the SASL decoders: strict base64, PLAIN and LOGIN, malformed and oversized input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sasl.h"

static ssize_t dec(const char *in, unsigned char *out, size_t outsz)
{
    return sasl_base64_decode(in, strlen(in), out, outsz);
}

static void test_base64(void **state)
{
    (void)state;
    unsigned char out[64];
    assert_int_equal(dec("", out, sizeof out), 0);
    assert_int_equal(dec("TWFu", out, sizeof out), 3);
    assert_memory_equal(out, "Man", 3);
    assert_int_equal(dec("TWE=", out, sizeof out), 2);
    assert_int_equal(dec("TQ==", out, sizeof out), 1);
    assert_int_equal(dec("+/+/", out, sizeof out), 3);
    const char *bad[] = {"TWF", "TW=u", "T===", "====", "TQ=", "TWFu\r\n", "TW Fu", "TWFu====", "TQ==TWFu",
                         "TR==", /* non-canonical: bits under the padding */
                         "TWF\x80", "-_-_"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (dec(bad[i], out, sizeof out) >= 0)
            fail_msg("'%s' decoded but is not strict base64", bad[i]);
    assert_int_equal(dec("TWFuTWFu", out, 3), -1); /* does not fit */
}

static void test_plain(void **state)
{
    (void)state;
    struct sasl_credentials c;
    /* "\0alice@example.test\0secret" */
    assert_int_equal(sasl_decode_plain("AGFsaWNlQGV4YW1wbGUudGVzdABzZWNyZXQ=", 36, &c), SASL_OK);
    assert_string_equal(c.authzid, "");
    assert_string_equal(c.authcid, "alice@example.test");
    assert_string_equal(c.password, "secret");
    /* "admin\0alice\0pw" */
    assert_int_equal(sasl_decode_plain("YWRtaW4AYWxpY2UAcHc=", 20, &c), SASL_OK);
    assert_string_equal(c.authzid, "admin");
    assert_string_equal(c.authcid, "alice");
    /* "alice\0pw" (one NUL) */
    assert_int_equal(sasl_decode_plain("YWxpY2UAcHc=", 12, &c), SASL_MALFORMED);
    /* "\0\0pw" (empty authcid) */
    assert_int_equal(sasl_decode_plain("AABwdw==", 8, &c), SASL_MALFORMED);
    /* "\0alice\0" (empty password) */
    assert_int_equal(sasl_decode_plain("AGFsaWNlAA==", 12, &c), SASL_MALFORMED);
    /* "\0a\0b\0c" (NUL inside the password) */
    assert_int_equal(sasl_decode_plain("AGEAYgBj", 8, &c), SASL_MALFORMED);
    assert_int_equal(sasl_decode_plain("not base64!", 11, &c), SASL_BAD_BASE64);
    assert_int_equal(sasl_decode_plain("=", 1, &c), SASL_BAD_BASE64);
    assert_string_equal(c.password, ""); /* wiped on failure */
    char big[5000];
    memset(big, 'A', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(sasl_decode_plain(big, strlen(big), &c), SASL_TOO_LONG);
}

static void test_plain_field_limit(void **state)
{
    (void)state;
    /* "\0" + 256 x 'a' + "\0pw": authcid over 255 octets; base64 of 260 octets */
    unsigned char raw[260];
    raw[0] = 0;
    memset(raw + 1, 'a', 256);
    raw[257] = 0;
    raw[258] = 'p';
    raw[259] = 'w';
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char b64[400];
    size_t o = 0;
    for (size_t i = 0; i < sizeof raw; i += 3) {
        unsigned v = (unsigned)raw[i] << 16 | (i + 1 < sizeof raw ? (unsigned)raw[i + 1] << 8 : 0) |
                     (i + 2 < sizeof raw ? raw[i + 2] : 0);
        b64[o++] = tbl[v >> 18 & 63];
        b64[o++] = tbl[v >> 12 & 63];
        b64[o++] = i + 1 < sizeof raw ? tbl[v >> 6 & 63] : '=';
        b64[o++] = i + 2 < sizeof raw ? tbl[v & 63] : '=';
    }
    struct sasl_credentials c;
    assert_int_equal(sasl_decode_plain(b64, o, &c), SASL_TOO_LONG);
}

static void test_login(void **state)
{
    (void)state;
    char out[SASL_FIELD_MAX + 1];
    assert_int_equal(sasl_decode_login("YWxpY2U=", 8, out, sizeof out), SASL_OK);
    assert_string_equal(out, "alice");
    assert_int_equal(sasl_decode_login("", 0, out, sizeof out), SASL_MALFORMED);
    assert_int_equal(sasl_decode_login("YQBi", 4, out, sizeof out), SASL_MALFORMED); /* "a\0b" */
    assert_int_equal(sasl_decode_login("YW*j", 4, out, sizeof out), SASL_BAD_BASE64);
    char big[1000];
    memset(big, 'Q', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(sasl_decode_login(big, strlen(big), out, sizeof out), SASL_TOO_LONG);
    assert_int_equal(sasl_decode_login("YWxpY2U=", 8, out, 4), SASL_TOO_LONG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_plain),
        cmocka_unit_test(test_plain_field_limit),
        cmocka_unit_test(test_login),
    };
    return cmocka_run_group_tests_name("sasl", tests, NULL, NULL);
}
