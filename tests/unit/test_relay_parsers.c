/* Unit tests for the outbound relay's pure parts: the remote reply parser (multi-line, malformed,
 * oversized, CVE-2020-8794 shapes), MX rdata and null MX, wire-form body (CRLF, dot-stuffing),
 * xtext, queue and state file parsing, DSN status and `postern explain` code parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "dns.h"
#include "dsn.h"
#include "explain.h"
#include "message.h"
#include "next_hop.h"
#include "queue_file.h"
#include "smtp_client.h"
#include "smtp_parse.h"
#include "smtp_reply.h"

/* Feeds lines (each without CRLF); returns the last step. */
static enum smtp_reply_step feed(struct smtp_reply *r, const char **lines, size_t n)
{
    smtp_reply_reset(r);
    enum smtp_reply_step st = SMTP_REPLY_BAD;
    for (size_t i = 0; i < n; i++) {
        st = smtp_reply_feed(r, lines[i], strlen(lines[i]));
        if (st != SMTP_REPLY_MORE)
            return st;
    }
    return st;
}

static bool orcpt_ok(const char *v, bool smtputf8)
{
    return smtp_orcpt_valid(v, strlen(v), 500, smtputf8);
}

static void test_reply_parser(void **state)
{
    (void)state;
    struct smtp_reply r;
    const char *ehlo[] = {"250-mx.example.org hello", "250-PIPELINING", "250 SIZE 1000"};
    assert_int_equal(feed(&r, ehlo, 3), SMTP_REPLY_DONE);
    assert_int_equal(r.code, 250);
    assert_int_equal(r.nlines, 3);
    assert_string_equal(r.text, "mx.example.org hello\nPIPELINING\nSIZE 1000");

    const char *enh[] = {"550 5.1.1 <x@y>: no such user"};
    assert_int_equal(feed(&r, enh, 1), SMTP_REPLY_DONE);
    assert_string_equal(r.enhanced, "5.1.1");
    char sum[200];
    smtp_reply_summary(&r, sum, sizeof sum);
    assert_string_equal(sum, "550 5.1.1 <x@y>: no such user");

    const char *bare[] = {"250-x", "250"}; /* the CVE-2020-8794 shape: a bare final line is fine */
    assert_int_equal(feed(&r, bare, 2), SMTP_REPLY_DONE);
    assert_int_equal(r.code, 250);

    const char *bad_sets[][2] = {
        {"250-x", "251 y"},   /* code changes inside a reply */
        {"25", NULL},         /* too short */
        {"abc def", NULL},    /* not a code */
        {"650 x", NULL},      /* class 6 */
        {"260 x", NULL},      /* second digit > 5 */
        {"250_x", NULL},      /* bad separator */
    };
    for (size_t i = 0; i < sizeof bad_sets / sizeof bad_sets[0]; i++)
        assert_int_equal(feed(&r, bad_sets[i], bad_sets[i][1] ? 2 : 1), SMTP_REPLY_BAD);

    char longline[600];
    memset(longline, 'a', sizeof longline - 1);
    memcpy(longline, "250 ", 4);
    longline[sizeof longline - 1] = '\0';
    const char *too_long[] = {longline};
    assert_int_equal(feed(&r, too_long, 1), SMTP_REPLY_BAD);

    smtp_reply_reset(&r); /* more than SMTP_REPLY_MAX_LINES continuation lines */
    enum smtp_reply_step st = SMTP_REPLY_MORE;
    for (int i = 0; i < SMTP_REPLY_MAX_LINES + 5 && st == SMTP_REPLY_MORE; i++)
        st = smtp_reply_feed(&r, "250-x", 5);
    assert_int_equal(st, SMTP_REPLY_BAD);

    const char *ctl[] = {"421 4.4.2 bye\x01\x1b[31m"};
    assert_int_equal(feed(&r, ctl, 1), SMTP_REPLY_DONE);
    assert_string_equal(r.text, "bye??[31m");
}

static void test_enhanced_code_len(void **state)
{
    (void)state;
    assert_int_equal(smtp_enhanced_code_len("5.1.1 x"), 5);
    assert_int_equal(smtp_enhanced_code_len("4.4.7"), 5);
    assert_int_equal(smtp_enhanced_code_len("5.1.10 x"), 6);
    assert_int_equal(smtp_enhanced_code_len("5.123.456"), 9);
    assert_int_equal(smtp_enhanced_code_len("3.1.1 x"), 0);
    assert_int_equal(smtp_enhanced_code_len("5.1 x"), 0);
    assert_int_equal(smtp_enhanced_code_len("5.1.1x"), 0);
    assert_int_equal(smtp_enhanced_code_len("5.1234.1"), 0);
}

static void test_mx_rdata(void **state)
{
    (void)state;
    struct dns_mx mx[4];
    const unsigned char mx10[] = {0, 10, 3, 'm', 'x', '1', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0};
    assert_true(dns_parse_mx_rdata(mx10, sizeof mx10, &mx[0]));
    assert_int_equal(mx[0].pref, 10);
    assert_string_equal(mx[0].host, "mx1.example");
    const unsigned char null_mx[] = {0, 0, 0};
    assert_true(dns_parse_mx_rdata(null_mx, sizeof null_mx, &mx[1]));
    assert_string_equal(mx[1].host, "");
    assert_true(dns_mx_set_is_null(&mx[1], 1));
    assert_false(dns_mx_set_is_null(mx, 2)); /* "0 ." among others is not a null MX set */
    const unsigned char truncated[] = {0, 10, 5, 'a', 'b'};
    assert_false(dns_parse_mx_rdata(truncated, sizeof truncated, &mx[2]));
    const unsigned char pointer[] = {0, 10, 0xc0, 0x0c};
    assert_false(dns_parse_mx_rdata(pointer, sizeof pointer, &mx[2]));
    struct dns_mx list[4] = {{30, "c"}, {10, "a"}, {20, "b"}, {10, "a2"}};
    dns_sort_mx(list, 4);
    assert_int_equal(list[0].pref, 10);
    assert_int_equal(list[1].pref, 10);
    assert_string_equal(list[2].host, "b");
    assert_string_equal(list[3].host, "c");
}

/* TLSA rdata (RFC 6698 2.1): only DANE-TA(2)/DANE-EE(3) with a SHA-256/512 digest of the right
 * length are kept for SMTP (RFC 7672 3.1.3: PKIX usages are not; full data is not kept). */
static void test_tlsa_rdata(void **state)
{
    (void)state;
    unsigned char rd[3 + 64];
    struct dns_tlsa t;
    memset(rd, 0xab, sizeof rd);
    rd[0] = 3, rd[1] = 1, rd[2] = 1;
    assert_true(dns_parse_tlsa_rdata(rd, 3 + 32, &t));
    assert_int_equal(t.usage, 3);
    assert_int_equal(t.len, 32);
    assert_int_equal(t.data[31], 0xab);
    assert_false(dns_parse_tlsa_rdata(rd, 3 + 31, &t)); /* a SHA-256 digest is 32 octets */
    rd[0] = 2, rd[1] = 0, rd[2] = 2;
    assert_true(dns_parse_tlsa_rdata(rd, 3 + 64, &t));
    assert_false(dns_parse_tlsa_rdata(rd, 3 + 32, &t));
    rd[0] = 1; /* PKIX-EE */
    assert_false(dns_parse_tlsa_rdata(rd, 3 + 64, &t));
    rd[0] = 3, rd[2] = 0; /* full certificate */
    assert_false(dns_parse_tlsa_rdata(rd, 3 + 64, &t));
    rd[2] = 1, rd[1] = 2; /* no such selector */
    assert_false(dns_parse_tlsa_rdata(rd, 3 + 32, &t));
    assert_false(dns_parse_tlsa_rdata(rd, 2, &t));
}

static void test_wire_body(void **state)
{
    (void)state;
    struct evbuffer *out = evbuffer_new();
    const char text[] = "Subject: x\n\n.hidden\nplain\n..two\n";
    assert_int_equal(smtp_wire_body(out, text, sizeof text - 1), 0);
    size_t n = evbuffer_get_length(out);
    char *wire = (char *)evbuffer_pullup(out, -1);
    const char want[] = "Subject: x\r\n\r\n..hidden\r\nplain\r\n...two\r\n.\r\n";
    assert_int_equal(n, sizeof want - 1);
    assert_memory_equal(wire, want, n);
    evbuffer_free(out);
    out = evbuffer_new(); /* no final newline: one is added before the dot */
    assert_int_equal(smtp_wire_body(out, "x", 1), 0);
    assert_int_equal(evbuffer_get_length(out), 6);
    assert_memory_equal(evbuffer_pullup(out, -1), "x\r\n.\r\n", 6);
    evbuffer_free(out);
}

static void test_xtext(void **state)
{
    (void)state;
    assert_true(smtp_xtext_valid("abc", 3));
    assert_true(smtp_xtext_valid("a+2Bb", 5));
    assert_false(smtp_xtext_valid("a+2b", 4)); /* lower-case hex */
    assert_false(smtp_xtext_valid("a+2", 3));
    assert_false(smtp_xtext_valid("a=b", 3));
    assert_false(smtp_xtext_valid("a b", 3));
    assert_false(smtp_xtext_valid("a\x80", 2));
}

static void test_dsn_rcpt_params(void **state)
{
    (void)state;
    assert_int_equal(smtp_parse_notify("NEVER", 5), NOTIFY_NEVER);
    assert_int_equal(smtp_parse_notify("never", 5), NOTIFY_NEVER);
    assert_int_equal(smtp_parse_notify("SUCCESS,FAILURE", 15), NOTIFY_SUCCESS | NOTIFY_FAILURE);
    assert_int_equal(smtp_parse_notify("DELAY", 5), NOTIFY_DELAY);
    const char *bad[] = {"", "NEVER,SUCCESS", "SUCCESS,SUCCESS", "SUCCESS,", ",DELAY", "FOO", "SUCCESS;DELAY"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(smtp_parse_notify(bad[i], strlen(bad[i])), 0);
    assert_true(smtp_orcpt_valid("rfc822;a+40b", 12, 500, false));
    assert_false(smtp_orcpt_valid("rfc822;", 7, 500, false));
    assert_false(smtp_orcpt_valid(";a", 2, 500, false));
    assert_false(smtp_orcpt_valid("rfc 822;a", 9, 500, false));
    assert_false(smtp_orcpt_valid("rfc822;a=b", 10, 500, false));
    assert_false(smtp_orcpt_valid("rfc822;abc", 10, 8, false));
    /* RFC 6533: with SMTPUTF8, an ORCPT of type utf-8 may carry UTF-8 itself; never other types,
     * never without SMTPUTF8, never malformed UTF-8 */
    assert_true(orcpt_ok("utf-8;b\xc3\xa9@x.test", true));
    assert_true(orcpt_ok("UTF-8;j\\x{E9}@x.test", true));
    assert_false(orcpt_ok("utf-8;b\xc3\xa9@x.test", false));
    assert_false(orcpt_ok("rfc822;b\xc3\xa9@x.test", true));
    assert_false(orcpt_ok("utf-8;b\xc3@x.test", true));
    assert_false(orcpt_ok("utf-8;b\xc3\xa9 x", true));
}

static void test_queue_file_parse(void **state)
{
    (void)state;
    const char file[] = "POSTERN-QUEUE 2\nid 0ABC\ncreated 100\nsender a@b.example\nsmtputf8 0\nbody8bit 1\n"
                        "ret FULL\nenvid E+2B\ntlsoptional 1\nrequiretls 1\nrcpt 2 rfc822;x+40y x@y.example\nrcpt 0 - \"a b\"@z.example\n"
                        "message 5\nhello END 5\n";
    struct qfile q;
    char err[128];
    assert_int_equal(qfile_parse_envelope(file, sizeof file - 1, &q, err, sizeof err), 0);
    assert_string_equal(q.qid, "0ABC");
    assert_string_equal(q.sender, "a@b.example");
    assert_true(q.body8bit);
    assert_true(q.tls_optional);
    assert_true(q.require_tls);
    assert_int_equal(q.ret, RET_FULL);
    assert_string_equal(q.envid, "E+2B");
    assert_int_equal(q.nrcpts, 2);
    assert_int_equal(q.rcpts[0].notify, NOTIFY_FAILURE);
    assert_string_equal(q.rcpts[0].orcpt, "rfc822;x+40y");
    assert_null(q.rcpts[1].orcpt);
    assert_string_equal(q.rcpts[1].addr, "\"a b\"@z.example");
    assert_int_equal(q.size, 5);
    assert_memory_equal(file + q.body_offset, "hello", 5);

    const char st[] = "POSTERN-STATE 1\nattempts 3\nnext 200\nwarned 1\nr 0 D mx.y[192.0.2.1] 250 ok\n"
                      "r 1 P - 451 4.3.0 later\nr 7 F - out of range\nEND\n";
    assert_int_equal(qfile_parse_state(st, sizeof st - 1, &q, err, sizeof err), 0);
    assert_int_equal(q.attempts, 3);
    assert_int_equal(q.next_attempt, 200);
    assert_true(q.warned);
    assert_int_equal(q.rcpts[0].status, QR_DELIVERED);
    assert_string_equal(q.rcpts[0].remote_mta, "mx.y[192.0.2.1]");
    assert_string_equal(q.rcpts[0].diag, "250 ok");
    assert_int_equal(q.rcpts[1].status, QR_PENDING);
    assert_null(q.rcpts[1].remote_mta);
    assert_string_equal(q.rcpts[1].diag, "451 4.3.0 later");
    const char unreported[] = "POSTERN-STATE 1\nattempts 4\nnext 300\nwarned 0\nr 0 T mx.y[192.0.2.1] 250 ok\n"
                              "r 1 R mx.y[192.0.2.1] 550 5.1.1 gone\nEND\n";
    assert_int_equal(qfile_parse_state(unreported, sizeof unreported - 1, &q, err, sizeof err), 0);
    assert_int_equal(q.rcpts[0].status, QR_RELAYED_UNREPORTED);
    assert_int_equal(q.rcpts[1].status, QR_FAILED_UNREPORTED);
    assert_string_equal(q.rcpts[1].diag, "550 5.1.1 gone");
    const char unknown[] = "POSTERN-STATE 1\nattempts 5\nnext 300\nwarned 0\nr 0 X - what\nEND\n";
    assert_int_equal(qfile_parse_state(unknown, sizeof unknown - 1, &q, err, sizeof err), 0);
    assert_int_equal(q.rcpts[0].status, QR_RELAYED_UNREPORTED); /* a line with an unknown state is skipped */
    const char torn[] = "POSTERN-STATE 1\nattempts 9\n";
    assert_int_equal(qfile_parse_state(torn, sizeof torn - 1, &q, err, sizeof err), -1);
    qfile_free(&q);

    const char *bad[] = {"POSTERN-QUEUE 1\nid A\nsender a\nrcpt 0 - x\nmessage 1\n",
                         "POSTERN-QUEUE 2\nid A\nrcpt 0 - x\nmessage 1\n", /* no sender */
                         "POSTERN-QUEUE 2\nid A\nsender a\nmessage 1\n",   /* no recipient */
                         "POSTERN-QUEUE 2\nid A\nsender a\nrcpt 0\nmessage 1\n",
                         "POSTERN-QUEUE 2\nid A\nsender a\nrcpt 0 - x\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(qfile_parse_envelope(bad[i], strlen(bad[i]), &q, err, sizeof err), -1);
        qfile_free(&q);
    }
    /* the error quotes the bad line safely: it goes into quoted log values */
    const char hostile[] = "POSTERN-QUEUE 2\ncreated 1\"\r x=\"y\x01\n";
    assert_int_equal(qfile_parse_envelope(hostile, sizeof hostile - 1, &q, err, sizeof err), -1);
    assert_string_equal(err, "malformed queue file line 'created 1?? x=?y?'");
    qfile_free(&q);
}

static void test_dsn_status_and_explain(void **state)
{
    (void)state;
    char st[16];
    dsn_status_of("550 5.1.1 no such user", DSN_FAILED, st, sizeof st);
    assert_string_equal(st, "5.1.1");
    dsn_status_of("554 go away", DSN_FAILED, st, sizeof st);
    assert_string_equal(st, "5.0.0");
    dsn_status_of("4.4.1 cannot connect", DSN_FAILED, st, sizeof st);
    assert_string_equal(st, "4.4.1");
    dsn_status_of("451", DSN_FAILED, st, sizeof st);
    assert_string_equal(st, "4.0.0");
    /* the class follows what happened, not a disagreeing enhanced code */
    dsn_status_of("450 5.2.2 mailbox full", DSN_FAILED, st, sizeof st);
    assert_string_equal(st, "4.2.2");
    dsn_status_of("550 4.7.1 go away", DSN_FAILED, st, sizeof st);
    assert_string_equal(st, "5.7.1");
    dsn_status_of("552 5.2.2 mailbox full", DSN_DELAYED, st, sizeof st);
    assert_string_equal(st, "4.2.2");
    dsn_status_of("5.4.4 no route", DSN_DELAYED, st, sizeof st);
    assert_string_equal(st, "4.4.4");
    dsn_status_of("250 2.0.0 ok", DSN_RELAYED, st, sizeof st);
    assert_string_equal(st, "2.0.0");
    int code;
    char enh[16];
    const char *words;
    assert_int_equal(explain_parse("550 5.1.1", &code, enh, sizeof enh, &words), 0);
    assert_null(words);
    assert_int_equal(code, 550);
    assert_string_equal(enh, "5.1.1");
    assert_int_equal(explain_parse("5.7.27", &code, enh, sizeof enh, &words), 0);
    assert_int_equal(code, 0);
    assert_int_equal(explain_parse("550 4.1.1", &code, enh, sizeof enh, &words), 0); /* classes differ: */
    assert_int_equal(code, 550);                                                       /* explained, */
    assert_string_equal(enh, "4.1.1");                                                 /* with a note */
    assert_int_equal(explain_parse("hello", &code, enh, sizeof enh, &words), -1);
    /* a pasted reply line: its words are given back, to tell Postern's own replies apart */
    assert_int_equal(explain_parse(" 550-5.1.1 The email account that you tried to reach", &code, enh, sizeof enh, &words), 0);
    assert_int_equal(code, 550);
    assert_string_equal(enh, "5.1.1");
    assert_string_equal(words, "The email account that you tried to reach");
    assert_int_equal(explain_parse("554 Transaction failed", &code, enh, sizeof enh, &words), 0);
    assert_int_equal(code, 554);
    assert_string_equal(enh, "");
    assert_string_equal(words, "Transaction failed");
    assert_int_equal(explain_parse("4.2.2 mailbox full", &code, enh, sizeof enh, &words), 0);
    assert_string_equal(enh, "4.2.2");
    assert_int_equal(explain_parse("5.1.1x", &code, enh, sizeof enh, &words), -1);
    assert_int_equal(explain_parse("5501", &code, enh, sizeof enh, &words), -1);
    assert_int_equal(explain_parse("", &code, enh, sizeof enh, &words), -1);
    struct explanation e;
    assert_int_equal(explain_lookup(550, "5.1.1", NULL, &e), 0);
    assert_non_null(strstr(e.fix, "typos"));
    assert_int_equal(explain_lookup(0, "5.2.2", NULL, &e), 0);
    assert_non_null(strstr(e.title, "full"));
    assert_int_equal(explain_lookup(599, "", NULL, &e), -1); /* unknown: a generic text by class */
    assert_non_null(e.meaning);
    /* Postern's own catalog explains Postern's own replies only */
    assert_int_equal(explain_lookup(550, "5.7.1", "Message rejected as spam", &e), 0);
    assert_string_equal(e.source, "RFC 3463"); /* not "551 5.7.1 relaying denied" */
    assert_int_equal(explain_lookup(421, "4.7.0", "Try again later", &e), 0);
    assert_null(strstr(e.meaning, "protocol errors")); /* not Postern's "Too many errors" */
    assert_int_equal(explain_lookup(421, "4.7.0", "Too many connections, try again later", &e), 0);
    assert_string_equal(e.source, "Postern reply catalog");
    assert_non_null(strstr(e.title, "Too many connections"));
    assert_int_equal(explain_lookup(421, "4.7.0", NULL, &e), 0); /* three rows have these codes */
    assert_string_equal(e.source, "RFC 3463");
    assert_int_equal(explain_lookup(551, "5.1.6", "User not local; please try <a@b.example>", &e), 0);
    assert_string_equal(e.source, "Postern reply catalog");
    assert_int_equal(explain_lookup(550, "5.1.1", NULL, &e), 0); /* two rows: Mailbox not found, SRS_INVALID */
    assert_string_equal(e.source, "RFC 3463");
    assert_int_equal(explain_lookup(550, "5.1.1", "Mailbox not found", &e), 0);
    assert_string_equal(e.source, "Postern reply catalog");
    assert_non_null(strstr(e.meaning, "No mailbox with this address"));
    assert_int_equal(explain_lookup(550, "5.1.1", "Bounce address not valid or expired", &e), 0);
    assert_non_null(strstr(e.meaning, "SRS"));
}

/* The report's MIME boundary stays within RFC 2046's 70 characters with a long host name, and
 * every part is opened with it and the last closed. */
/* Next hops as relay_host and transport entries write them, LMTP ones included. */
static void test_next_hop_parse(void **state)
{
    (void)state;
    struct next_hop h;
    assert_true(next_hop_parse("[mx.example.net]:587", 25, &h));
    assert_string_equal(h.route, "mx.example.net");
    assert_int_equal(h.port, 587);
    assert_false(h.mx || h.lmtp || h.unix_socket);
    assert_true(next_hop_parse("example.net", 25, &h));
    assert_true(h.mx && h.port == 25 && !h.lmtp);
    assert_true(next_hop_parse("lmtp:[192.0.2.7]", 25, &h));
    assert_true(h.lmtp && !h.mx && !h.unix_socket && h.port == LMTP_PORT);
    assert_string_equal(h.route, "[192.0.2.7]");
    assert_string_equal(h.name, "lmtp:[192.0.2.7]");
    assert_true(next_hop_parse("LMTP:imap.example.net:2424", 25, &h)); /* a host: never an MX lookup */
    assert_true(h.lmtp && !h.mx && h.port == 2424);
    assert_string_equal(h.route, "imap.example.net");
    assert_true(next_hop_parse("lmtp:[IPv6:2001:db8::1]:24", 25, &h));
    assert_string_equal(h.route, "[IPv6:2001:db8::1]");
    assert_true(next_hop_parse("lmtp:unix:/run/dovecot/lmtp", 25, &h));
    assert_true(h.lmtp && h.unix_socket && h.configured && !h.mx);
    assert_string_equal(h.route, "/run/dovecot/lmtp");
    char longpath[200] = "lmtp:unix:/";
    memset(longpath + 11, 'a', 120);
    const char *bad[] = {"lmtp:unix:run/lmtp", "lmtp:unix:", "lmtp:", "lmtp:[192.0.2.7]:0", "lmtp:[unix:/x]",
                         "[mx.example.net]:99999", "", longpath};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_false(next_hop_parse(bad[i], 25, &h));
}

static void test_dsn_boundary_length(void **state)
{
    (void)state;
    char host[254];
    memset(host, 'h', sizeof host - 1);
    host[sizeof host - 1] = '\0';
    for (size_t i = 60; i < sizeof host - 1; i += 61)
        host[i] = '.';
    struct dsn_rcpt rc = {.addr = "x@remote.example", .action = DSN_FAILED, .diag = "550 5.1.1 no such user"};
    struct dsn_report rep = {.qid = "0123456789ABCDEF01", .sender = "s@example.test", .reporting_mta = host,
                             .original = "Subject: hi\n\nbody\n", .original_len = 18, .rcpts = &rc, .nrcpts = 1};
    struct evbuffer *out = evbuffer_new();
    assert_int_equal(dsn_build(out, &rep, "0123456789ABCDEF01"), 0);
    size_t n = evbuffer_get_length(out);
    char *text = calloc(1, n + 1);
    evbuffer_copyout(out, text, n);
    const char *b = strstr(text, "boundary=\"");
    assert_non_null(b);
    b += strlen("boundary=\"");
    size_t blen = strcspn(b, "\"");
    assert_true(blen >= 1 && blen <= 70);
    char delim[80];
    snprintf(delim, sizeof delim, "\n--%.*s\n", (int)blen, b);
    int parts = 0;
    for (const char *p = text; (p = strstr(p, delim)) != NULL; p++)
        parts++;
    assert_int_equal(parts, 3);
    snprintf(delim, sizeof delim, "\n--%.*s--\n", (int)blen, b);
    assert_non_null(strstr(text, delim));
    free(text);
    evbuffer_free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reply_parser),   cmocka_unit_test(test_enhanced_code_len),
        cmocka_unit_test(test_mx_rdata),       cmocka_unit_test(test_tlsa_rdata), cmocka_unit_test(test_wire_body),
        cmocka_unit_test(test_xtext),          cmocka_unit_test(test_dsn_rcpt_params), cmocka_unit_test(test_queue_file_parse),
        cmocka_unit_test(test_dsn_status_and_explain), cmocka_unit_test(test_dsn_boundary_length),
        cmocka_unit_test(test_next_hop_parse),
    };
    return cmocka_run_group_tests_name("relay_parsers", tests, NULL, NULL);
}
