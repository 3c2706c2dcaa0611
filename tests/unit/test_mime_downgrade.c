/* Unit tests for the 7-bit MIME conversion (a relay peer without 8BITMIME): the exact output for
 * small messages, and for bigger ones the rules every output keeps - US-ASCII only, encoded lines
 * of at most 76 characters, and quoted-printable that decodes back to the original octets (checked
 * with a decoder written here from RFC 2045 6.7, not the encoder's own tables). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "mime_downgrade.h"

/* Converts text for a 7-bit peer (seven_bit) or an 8-bit one; returns the result and the output
 * as a new string in *out. */
static enum mime_downgrade_result convert_for(const char *text, bool seven_bit, char **out)
{
    struct evbuffer *b = evbuffer_new();
    assert_non_null(b);
    enum mime_downgrade_result r = mime_downgrade(text, strlen(text), seven_bit, b);
    size_t n = evbuffer_get_length(b);
    *out = malloc(n + 1);
    assert_non_null(*out);
    evbuffer_remove(b, *out, n);
    (*out)[n] = '\0';
    evbuffer_free(b);
    return r;
}

static enum mime_downgrade_result convert(const char *text, char **out)
{
    return convert_for(text, true, out);
}

static void assert_converts_to(const char *in, const char *want)
{
    char *got;
    assert_int_equal(convert(in, &got), MIME_DOWNGRADE_OK);
    assert_string_equal(got, want);
    free(got);
}

static void assert_refused(const char *in, enum mime_downgrade_result want)
{
    char *got;
    assert_int_equal(convert(in, &got), want);
    free(got);
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* RFC 2045 6.7 decoding of qp[0..n): "=XX" is an octet, "=" at a line end a soft break. */
static size_t qp_decode(const char *qp, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (qp[i] != '=') {
            out[o++] = qp[i];
        } else if (i + 1 < n && qp[i + 1] == '\n') {
            i++;
        } else {
            assert_true(i + 2 < n && hexval(qp[i + 1]) >= 0 && hexval(qp[i + 2]) >= 0);
            out[o++] = (char)(hexval(qp[i + 1]) * 16 + hexval(qp[i + 2]));
            i += 2;
        }
    }
    return o;
}

/* Every octet US-ASCII, every line at most max octets (LF not counted). */
static void assert_7bit_lines(const char *s, size_t max)
{
    size_t col = 0;
    for (; *s; s++) {
        assert_true((unsigned char)*s < 0x80);
        col = *s == '\n' ? 0 : col + 1;
        assert_true(col <= max);
    }
}

static void test_plain_message_becomes_mime(void **state)
{
    (void)state;
    /* not MIME: it gets MIME-Version and the RFC 1428 charset; '=' and trailing blanks encoded */
    assert_converts_to("Subject: hi\n\ncaf\xc3\xa9 = ok  \nend\t\n",
                       "Subject: hi\nMIME-Version: 1.0\nContent-Type: text/plain; charset=unknown-8bit\n"
                       "Content-Transfer-Encoding: quoted-printable\n\ncaf=C3=A9 =3D ok =20\nend=09\n");
    /* MIME already: its Content-Type kept, its 8bit label replaced, a last line without LF */
    assert_converts_to("MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
                       "Content-Transfer-Encoding: 8bit\nX-A: b\n\n\xc3\xa9t\xc3\xa9 ",
                       "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nX-A: b\n"
                       "Content-Transfer-Encoding: quoted-printable\n\n=C3=A9t=C3=A9=20");
    /* 7-bit text is copied as it is, whatever it says */
    assert_converts_to("Subject: x\n\nplain = text  \n", "Subject: x\n\nplain = text  \n");
}

static void test_long_lines_soft_breaks(void **state)
{
    (void)state;
    char in[4096] = "Subject: long\n\n", body[2048];
    size_t n = 0;
    for (int i = 0; i < 300; i++) /* 300 "é": 1,800 encoded characters on one line */
        n += (size_t)snprintf(body + n, sizeof body - n, "\xc3\xa9");
    n += (size_t)snprintf(body + n, sizeof body - n, "\n%s\n", "x-y");
    strcat(in, body);
    char *got;
    assert_int_equal(convert(in, &got), MIME_DOWNGRADE_OK);
    assert_7bit_lines(got, 76);
    const char *qp = strstr(got, "\n\n") + 2;
    char decoded[4096];
    size_t dn = qp_decode(qp, strlen(qp), decoded);
    assert_int_equal(dn, n);
    assert_memory_equal(decoded, body, n);
    free(got);
    /* a soft break just before "--": the next line must not start with '-' (a boundary look-alike) */
    char dash[256] = "Subject: d\n\n\xc3\xa9";
    for (int i = 0; i < 69; i++)
        strcat(dash, "a");
    strcat(dash, "--b\n");
    assert_int_equal(convert(dash, &got), MIME_DOWNGRADE_OK);
    assert_non_null(strstr(got, "=\n=2D-b\n"));
    assert_null(strstr(got, "\n--b"));
    free(got);
}

/* A multipart for a 7-bit peer; the pieces the conversion must leave as they are (the 7-bit and
 * base64 parts, the delimiters) are named once and appear in both the input and the expected
 * output, so what differs between the two is only what it must change. */
#define MP_HEAD "From: a@example.org\nMIME-Version: 1.0\nContent-Type: multipart/mixed;\n\tboundary=\"=_b (1)\"\n"
#define MP_UNTOUCHED_PARTS                                                                                          \
    "--=_b (1)\nContent-Type: text/plain\n\nascii part\n"                                                         \
    "--=_b (1)\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\nAAEC\n"              \
    "--=_b (1)\nContent-Type: message/rfc822\n\nSubject: inner\n"

static void test_multipart_walked_part_by_part(void **state)
{
    (void)state;
    assert_converts_to(MP_HEAD "Content-Transfer-Encoding: 8bit\n\npreamble\n"
                               "--=_b (1)\nContent-Type: text/plain; charset=utf-8\n\nd\xc3\xa9j\xc3\xa0 vu\n"
                               MP_UNTOUCHED_PARTS "\ninn\xc3\xa9r\n--=_b (1)--\nepilogue\n",
                       /* the multipart's 8bit label dropped; the 8-bit part and the inner
                        * message's text quoted-printable, the inner message made MIME */
                       MP_HEAD "\npreamble\n"
                               "--=_b (1)\nContent-Type: text/plain; charset=utf-8\n"
                               "Content-Transfer-Encoding: quoted-printable\n\nd=C3=A9j=C3=A0 vu\n"
                               MP_UNTOUCHED_PARTS "MIME-Version: 1.0\nContent-Type: text/plain; charset=unknown-8bit\n"
                               "Content-Transfer-Encoding: quoted-printable\n\ninn=C3=A9r\n--=_b (1)--\nepilogue\n");
    /* a digest's parts are messages by default (RFC 2046 5.1.5); no close delimiter: the last
     * part runs to the end; a part with no header fields at all */
    assert_converts_to("Content-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: s\n\n\xc3\xa9\n--d\n\nt\n",
                       "Content-Type: multipart/digest; boundary=d\nMIME-Version: 1.0\n\n--d\n\n"
                       "Subject: s\nMIME-Version: 1.0\nContent-Type: text/plain; charset=unknown-8bit\n"
                       "Content-Transfer-Encoding: quoted-printable\n\n=C3=A9\n--d\n\nt\n");
    assert_converts_to("Content-Type: multipart/mixed; boundary=m\n\n--m\n\n\xc3\xa9\n--m--\n",
                       "Content-Type: multipart/mixed; boundary=m\nMIME-Version: 1.0\n\n--m\n"
                       "Content-Type: text/plain; charset=unknown-8bit\n"
                       "Content-Transfer-Encoding: quoted-printable\n\n=C3=A9\n--m--\n");
}

static void test_what_cannot_be_converted(void **state)
{
    (void)state;
    assert_refused("Subject: \xc3\xa9t\xc3\xa9\n\nbody\n", MIME_DOWNGRADE_8BIT_HEADER);
    assert_refused("Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\n\xc3\xa9\n",
                   MIME_DOWNGRADE_ENCODED_8BIT);
    assert_refused("Content-Type: message/partial; id=1\n\n\xc3\xa9\n", MIME_DOWNGRADE_ENCODED_8BIT);
    assert_refused("Content-Type: multipart/mixed\n\n--x\n\n\xc3\xa9\n", MIME_DOWNGRADE_NO_BOUNDARY);
    assert_refused("Content-Type: multipart/mixed; boundary=x\n\n\xc3\xa9\n--x\n\na\n--x--\n",
                   MIME_DOWNGRADE_8BIT_OUTSIDE);
    assert_refused("Content-Type: multipart/mixed; boundary=x\n\n--x\n\na\n--x--\n\xc3\xa9\n",
                   MIME_DOWNGRADE_8BIT_OUTSIDE);
    assert_refused("Content-Type: multipart/mixed; boundary=x\n\nno delimiter \xc3\xa9\n",
                   MIME_DOWNGRADE_8BIT_OUTSIDE);
    assert_refused("Content-Type: multipart/mixed; boundary=x\n\n--x\nSubject: \xc3\xa9\n\na\n--x--\n",
                   MIME_DOWNGRADE_8BIT_HEADER);
    char deep[8192] = "";
    for (int i = 0; i <= MIME_DOWNGRADE_MAX_DEPTH; i++)
        strcat(deep, "Content-Type: message/rfc822\n\n");
    strcat(deep, "\n\xc3\xa9\n");
    assert_refused(deep, MIME_DOWNGRADE_TOO_DEEP);
    assert_string_equal(mime_downgrade_problem(MIME_DOWNGRADE_8BIT_HEADER),
                        "a header field has 8-bit characters (only its author can encode them, RFC 2047)");
}

static void test_content_type_syntax(void **state)
{
    (void)state;
    /* comments, upper case, a quoted boundary with an escaped quote, obsolete space before ':' */
    assert_converts_to("Content-Type : (c) MULTIPART / Alternative (x) ; charset=x; Boundary=\"a\\\"b\"\n\n"
                       "--a\"b\n\n\xc3\xa9\n--a\"b--\n",
                       "Content-Type : (c) MULTIPART / Alternative (x) ; charset=x; Boundary=\"a\\\"b\"\n"
                       "MIME-Version: 1.0\n\n--a\"b\n"
                       "Content-Type: text/plain; charset=unknown-8bit\n"
                       "Content-Transfer-Encoding: quoted-printable\n\n=C3=A9\n--a\"b--\n");
    /* a line that only starts like the boundary is text, not a delimiter */
    assert_converts_to("Content-Type: multipart/mixed; boundary=x\n\n--x\n\n\xc3\xa9\n--xy\n--x--\n",
                       "Content-Type: multipart/mixed; boundary=x\nMIME-Version: 1.0\n\n--x\n"
                       "Content-Type: text/plain; charset=unknown-8bit\n"
                       "Content-Transfer-Encoding: quoted-printable\n\n=C3=A9\n--xy\n--x--\n");
    /* an unusable Content-Type is text/plain (RFC 2045 5.2) and is not given a second one */
    assert_converts_to("Content-Type: nonsense\n\n\xc3\xa9\n",
                       "Content-Type: nonsense\nMIME-Version: 1.0\nContent-Transfer-Encoding: quoted-printable\n\n"
                       "=C3=A9\n");
}

static void test_long_lines_for_an_8bit_peer(void **state)
{
    (void)state;
    char *got;
    char in[8192] = "Subject: long\n\n", line[1201];
    memset(line, 'a', 1200);
    line[1200] = '\0';
    strcat(in, line);
    strcat(in, "\n");
    /* RFC 5322 2.1.1: no line over 998 octets - the text is encoded, 7-bit as it is */
    assert_int_equal(convert_for(in, false, &got), MIME_DOWNGRADE_OK);
    assert_non_null(strstr(got, "MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n"
                                "Content-Transfer-Encoding: quoted-printable\n\n"));
    assert_7bit_lines(got, 76);
    const char *qp = strstr(got, "\n\n") + 2;
    char decoded[8192];
    size_t dn = qp_decode(qp, strlen(qp), decoded);
    assert_int_equal(dn, 1201);
    assert_memory_equal(decoded, in + strlen("Subject: long\n\n"), 1201);
    free(got);
    /* an 8-bit peer: the 8-bit part (and header) stay 8-bit, only the long part is encoded */
    snprintf(in, sizeof in, "Subject: \xc3\xa9\nContent-Type: multipart/mixed; boundary=m\n"
             "Content-Transfer-Encoding: 8bit\n\n--m\n\n\xc3\xa9\n--m\nContent-Type: text/html\n\n%s\n--m--\n", line);
    assert_int_equal(convert_for(in, false, &got), MIME_DOWNGRADE_OK);
    assert_non_null(strstr(got, "Subject: \xc3\xa9\nContent-Type: multipart/mixed; boundary=m\n"
                                "Content-Transfer-Encoding: 8bit\nMIME-Version: 1.0\n\n"
                                "--m\n\n\xc3\xa9\n--m\nContent-Type: text/html\n"
                                "Content-Transfer-Encoding: quoted-printable\n\naaaa"));
    assert_true(strlen(got) < strlen(in) + 200);
    free(got);
    /* what cannot be encoded goes as it is: a long header field, a long line in a base64 part */
    snprintf(in, sizeof in, "Subject: %s\n\nshort\n", line);
    assert_int_equal(convert_for(in, false, &got), MIME_DOWNGRADE_OK);
    assert_string_equal(got, in);
    free(got);
    snprintf(in, sizeof in, "Content-Type: image/png\nContent-Transfer-Encoding: base64\n\n%s\n", line);
    assert_int_equal(convert_for(in, false, &got), MIME_DOWNGRADE_OK);
    assert_string_equal(got, in);
    free(got);
    assert_true(mime_has_long_line(line, 999));
    assert_false(mime_has_long_line(line, 998));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_message_becomes_mime), cmocka_unit_test(test_long_lines_soft_breaks),
        cmocka_unit_test(test_multipart_walked_part_by_part), cmocka_unit_test(test_what_cannot_be_converted),
        cmocka_unit_test(test_content_type_syntax), cmocka_unit_test(test_long_lines_for_an_8bit_peer),
    };
    return cmocka_run_group_tests_name("mime_downgrade", tests, NULL, NULL);
}
