/* Unit tests for the command line parser and MAIL/RCPT argument parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "smtp_parse.h"

static void cmd(const char *line, enum smtp_verb verb, const char *arg)
{
    struct smtp_command c;
    smtp_parse_command(line, strlen(line), &c);
    if (c.verb != verb)
        fail_msg("'%s': verb %d, expected %d", line, c.verb, verb);
    if (strlen(arg) != c.arg_len || memcmp(c.arg, arg, c.arg_len) != 0)
        fail_msg("'%s': arg '%.*s', expected '%s'", line, (int)c.arg_len, c.arg, arg);
}

static void test_verbs(void **state)
{
    (void)state;
    cmd("EHLO client.example", VERB_EHLO, "client.example");
    cmd("ehlo client.example", VERB_EHLO, "client.example");
    cmd("HeLo x", VERB_HELO, "x");
    cmd("MAIL FROM:<a@b>", VERB_MAIL, "FROM:<a@b>");
    cmd("RCPT TO:<a@b> ", VERB_RCPT, "TO:<a@b>");
    cmd("DATA", VERB_DATA, "");
    cmd("data", VERB_DATA, "");
    cmd("RSET", VERB_RSET, "");
    cmd("NOOP anything", VERB_NOOP, "anything");
    cmd("QUIT", VERB_QUIT, "");
    cmd("VRFY alice", VERB_VRFY, "alice");
    cmd("HELP", VERB_HELP, "");
    cmd("EXPN list", VERB_EXPN, "list");
    cmd("STARTTLS", VERB_STARTTLS, "");
    cmd("GET / HTTP/1.1", VERB_FOREIGN, "/ HTTP/1.1");
    cmd("post /x HTTP/1.0", VERB_FOREIGN, "/x HTTP/1.0");
    cmd("CONNECT a:25 HTTP/1.1", VERB_FOREIGN, "a:25 HTTP/1.1");
    cmd("USER root", VERB_FOREIGN, "root");
    cmd("GETX /", VERB_UNKNOWN, "/");
    cmd("MAILX FROM:<a@b>", VERB_UNKNOWN, "FROM:<a@b>");
    cmd("", VERB_UNKNOWN, "");
    cmd("DAT", VERB_UNKNOWN, "");
    cmd(" DATA", VERB_UNKNOWN, "DATA");
}

static enum path_args_result args(const char *arg, bool rcpt, struct path_args *out)
{
    return smtp_parse_path_args(arg, strlen(arg), rcpt, out);
}

static void test_mail_args(void **state)
{
    (void)state;
    struct path_args a;
    assert_int_equal(args("FROM:<a@example.com>", false, &a), PATH_ARGS_OK);
    assert_string_equal(a.mailbox.addr, "a@example.com");
    assert_int_equal(a.nparams, 0);
    assert_int_equal(args("from:<>", false, &a), PATH_ARGS_OK);
    assert_true(a.mailbox.is_null);
    assert_int_equal(args("FROM: <a@example.com>", false, &a), PATH_ARGS_OK);
    assert_int_equal(args("FROM:<a@example.com> SIZE=1000 BODY=8BITMIME SMTPUTF8", false, &a), PATH_ARGS_OK);
    assert_int_equal(a.nparams, 3);
    const struct esmtp_param *p = esmtp_param_find(&a, "size");
    assert_non_null(p);
    assert_int_equal(p->value_len, 4);
    assert_memory_equal(p->value, "1000", 4);
    p = esmtp_param_find(&a, "SMTPUTF8");
    assert_non_null(p);
    assert_null(p->value);
    assert_null(esmtp_param_find(&a, "RET"));
    assert_int_equal(args("FROM:", false, &a), PATH_ARGS_NO_KEYWORD);
    assert_int_equal(args("", false, &a), PATH_ARGS_NO_KEYWORD);
    assert_int_equal(args("TO:<a@b>", false, &a), PATH_ARGS_NO_KEYWORD);
    assert_int_equal(args("FROM:a@example.com", false, &a), PATH_ARGS_BAD_ADDRESS);
    assert_int_equal(args("FROM:<a@@example.com>", false, &a), PATH_ARGS_BAD_ADDRESS);
    assert_int_equal(args("FROM:<a@example.com>SIZE=1", false, &a), PATH_ARGS_BAD_ADDRESS);
}

static void test_malformed_params(void **state)
{
    (void)state;
    struct path_args a;
    const char *bad[] = {
        "FROM:<a@b> =", "FROM:<a@b> \"", "FROM:<a@b> A\"=", "FROM:<a@b> SIZE=", "FROM:<a@b> SIZE==1",
        "FROM:<a@b> -X", "FROM:<a@b> SIZE=1 SIZE=2", "FROM:<a@b> X=a=b", "FROM:<a@b> X=\x01",
        "FROM:<a@b> K\xc3\xa9=1",
        "FROM:<a@b> A B C D E F G H I J K L M N O P Q", /* 17 parameters */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (args(bad[i], false, &a) != PATH_ARGS_BAD_PARAM)
            fail_msg("'%s' was not refused as a bad parameter", bad[i]);
}

static void test_rcpt_args(void **state)
{
    (void)state;
    struct path_args a;
    assert_int_equal(args("TO:<b@example.com>", true, &a), PATH_ARGS_OK);
    assert_int_equal(args("to:<Postmaster>", true, &a), PATH_ARGS_OK);
    assert_true(a.mailbox.is_postmaster);
    assert_int_equal(args("TO:<>", true, &a), PATH_ARGS_BAD_ADDRESS);
    assert_int_equal(args("TO:<b@example.com> NOTIFY=NEVER", true, &a), PATH_ARGS_OK);
    assert_int_equal(a.nparams, 1);
    assert_int_equal(args("FROM:<b@example.com>", true, &a), PATH_ARGS_NO_KEYWORD);
    assert_int_equal(args("TO:<`reboot`@example.com>", true, &a), PATH_ARGS_OK); /* ` is atext; paths encode it */
    assert_int_equal(args("TO:<a@$(reboot)>", true, &a), PATH_ARGS_BAD_ADDRESS);
}

static void test_helo_arg(void **state)
{
    (void)state;
    assert_true(smtp_helo_arg_valid("client.example", 14));
    assert_true(smtp_helo_arg_valid("[127.0.0.1]", 11));
    assert_false(smtp_helo_arg_valid("two words", 9));
    assert_false(smtp_helo_arg_valid("", 0));
    assert_false(smtp_helo_arg_valid("bad\x01", 4));
}

static void test_helo_name_qualified(void **state)
{
    (void)state;
    const char *good[] = {"mail.example.org", "mail.example.org.", "a-b.c0.example", "[192.0.2.1]",
                          "[IPv6:2001:db8::1]", "xn--bcher-kva.example", "b\xc3\xbc" "cher.example", "1.2.example"};
    const char *bad[] = {"localhost", "user-pc", "192.0.2.1", "[192.0.2.300]", "bad_name.example", "-a.example",
                         "a-.example", "a..example", ".example", "example.", "", "[]", "a.123",
                         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        assert_true(smtp_helo_name_qualified(good[i]));
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (smtp_helo_name_qualified(bad[i]))
            fail_msg("taken: %s", bad[i]);
}

static void test_bdat_arg(void **state)
{
    (void)state;
    uint64_t size = 7;
    bool last = true;
    assert_true(smtp_parse_bdat("0", 1, &size, &last));
    assert_true(size == 0 && !last);
    assert_true(smtp_parse_bdat("1000 LAST", 9, &size, &last));
    assert_true(size == 1000 && last);
    assert_true(smtp_parse_bdat("12 last", 7, &size, &last));
    assert_true(size == 12 && last);
    assert_true(smtp_parse_bdat("18446744073709551615", 20, &size, &last)); /* UINT64_MAX */
    assert_true(size == UINT64_MAX);
    const char *bad[] = {"", "LAST", "18446744073709551616", "-1", "+1", "1 ", "1  LAST", "1 LASTX", "1 LAS",
                         "1\tLAST", "0x10", "1 LAST "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (smtp_parse_bdat(bad[i], strlen(bad[i]), &size, &last))
            fail_msg("'%s' taken as a BDAT argument", bad[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verbs),     cmocka_unit_test(test_mail_args), cmocka_unit_test(test_malformed_params),
        cmocka_unit_test(test_rcpt_args), cmocka_unit_test(test_helo_arg), cmocka_unit_test(test_helo_name_qualified),  cmocka_unit_test(test_bdat_arg),
    };
    return cmocka_run_group_tests_name("smtp_parse", tests, NULL, NULL);
}
