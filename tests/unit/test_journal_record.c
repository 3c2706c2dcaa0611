/* Unit tests for the commit journal's bytes (journal_record.c): header slots, record headers and
 * payload parsing, including torn and hostile input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "journal_record.h"

static void test_header_round_trip_and_damage(void **state)
{
    (void)state;
    unsigned char slot[JOURNAL_SLOT_SIZE];
    struct journal_header h = {7, 3, 123456, 99}, back;
    journal_header_encode(&h, slot);
    assert_true(journal_header_decode(slot, &back));
    assert_int_equal(back.serial, 7);
    assert_int_equal(back.epoch, 3);
    assert_int_equal(back.tail_offset, 123456);
    assert_int_equal(back.tail_seq, 99);
    for (int i = 0; i < 36; i++) { /* any flipped byte of magic, fields or crc is caught */
        slot[i] ^= 0x40;
        assert_false(journal_header_decode(slot, &back));
        slot[i] ^= 0x40;
    }
    memset(slot, 0, sizeof slot); /* a fresh, never written slot */
    assert_false(journal_header_decode(slot, &back));
}

static void test_record_header(void **state)
{
    (void)state;
    unsigned char h[JOURNAL_RECORD_HEADER];
    journal_record_header_encode(h, 1000, 5, 1ull << 40, 0xdeadbeef);
    uint32_t len, epoch, crc;
    uint64_t seq;
    assert_true(journal_record_header_decode(h, &len, &epoch, &seq, &crc));
    assert_int_equal(len, 1000);
    assert_int_equal(epoch, 5);
    assert_int_equal(seq, 1ull << 40);
    assert_int_equal(crc, 0xdeadbeef);
    h[0] ^= 1;
    assert_false(journal_record_header_decode(h, &len, &epoch, &seq, &crc));
}

static void test_crc_in_pieces_equals_whole(void **state)
{
    (void)state;
    const char *s = "name a\ndir /m/x\n\nhello world\n";
    uint32_t whole = journal_crc_update(0, s, strlen(s));
    uint32_t parts = journal_crc_update(journal_crc_update(0, s, 10), s + 10, strlen(s) - 10);
    assert_int_equal(whole, parts);
    assert_int_not_equal(whole, journal_crc_update(0, s, strlen(s) - 1));
}

static bool parses(const char *p)
{
    struct journal_entry e;
    return journal_parse_payload(p, strlen(p), &e);
}

static void test_payload(void **state)
{
    (void)state;
    const char *p = "name 1.M2P3Qabc.host\ndir /var/mail/example.test/alice\ndir /var/mail/example.test/bob\n\n"
                    "Subject: x\n\nbody\n";
    struct journal_entry e;
    assert_true(journal_parse_payload(p, strlen(p), &e));
    assert_string_equal(e.name, "1.M2P3Qabc.host");
    assert_int_equal(e.ndirs, 2);
    assert_memory_equal(e.dirs[1], "/var/mail/example.test/bob", e.dir_lens[1]);
    assert_int_equal(e.content_len, strlen("Subject: x\n\nbody\n"));
    assert_memory_equal(e.content, "Subject: x\n\nbody\n", e.content_len);
    assert_true(parses("name n\ndir d\n\n")); /* an empty message is still a message */
}

static void test_payload_refusals(void **state)
{
    (void)state;
    assert_false(parses(""));
    assert_false(parses("name n\n\nbody"));              /* no dir */
    assert_false(parses("dir d\n\nbody"));               /* no name */
    assert_false(parses("name n\ndir d\nbody"));         /* no blank line */
    assert_false(parses("name n\ndir d"));               /* torn */
    assert_false(parses("name a/b\ndir d\n\n"));         /* a name with a slash */
    assert_false(parses("name ..\ndir d\n\n"));
    assert_false(parses("name .\ndir d\n\n"));
    assert_false(parses("name n\ndir /m/../etc\n\n"));   /* a directory climbing out */
    assert_false(parses("name n\ndir ..\n\n"));
    assert_false(parses("name n\ndir /m/..\n\n"));
    assert_false(parses("name n\ndir /m/\x01x\n\n"));    /* control character */
    assert_false(parses("name n\nname m\ndir d\n\n"));   /* two names */
    assert_false(parses("name n\nfrom x\ndir d\n\n"));   /* unknown line */
    assert_true(parses("name n\ndir /m/..x/a..b\n\n"));  /* dots inside names are fine */
    char longname[300];
    memset(longname, 'a', sizeof longname);
    snprintf(longname, sizeof longname, "name %0*d\ndir d\n\n", JOURNAL_NAME_MAX + 1, 0);
    assert_false(parses(longname));
}

static void test_cancel_payload(void **state)
{
    (void)state;
    uint64_t seqs[] = {7, 18446744073709551615ull, 0};
    char out[3 * JOURNAL_CANCEL_LINE_MAX + 1];
    size_t len = journal_cancel_payload(seqs, 3, out);
    const char *want = "cancel 7\ncancel 18446744073709551615\ncancel 0\n\n";
    assert_int_equal(len, strlen(want));
    assert_memory_equal(out, want, len);
    struct journal_entry e;
    assert_true(journal_parse_payload(out, len, &e));
    assert_int_equal(e.ncancels, 3);
    assert_true(e.cancels[0] == 7 && e.cancels[1] == UINT64_MAX && e.cancels[2] == 0);
    assert_int_equal(e.ndirs, 0);
    assert_string_equal(e.name, "");
    assert_false(parses("cancel 1\n\nbody"));                /* a cancel record carries no message */
    assert_false(parses("cancel 1\nname n\ndir d\n\n"));    /* nor a name */
    assert_false(parses("name n\ndir d\ncancel 1\n\n"));    /* nor is a message record cancelled */
    assert_false(parses("cancel x1\n\n"));
    assert_false(parses("cancel 1 \n\n"));
    assert_false(parses("cancel \n\n"));
    assert_false(parses("cancel 18446744073709551616\n\n")); /* over 64 bits */
    assert_false(parses("cancel 1\n"));                       /* torn */
    char many[(JOURNAL_CANCELS_MAX + 1) * JOURNAL_CANCEL_LINE_MAX + 2];
    size_t o = 0;
    for (int i = 0; i <= JOURNAL_CANCELS_MAX; i++)
        o += (size_t)snprintf(many + o, sizeof many - o, "cancel %d\n", i);
    snprintf(many + o, sizeof many - o, "\n");
    assert_false(parses(many)); /* over the limit */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_round_trip_and_damage),
        cmocka_unit_test(test_record_header),
        cmocka_unit_test(test_crc_in_pieces_equals_whole),
        cmocka_unit_test(test_cancel_payload),
        cmocka_unit_test(test_payload),
        cmocka_unit_test(test_payload_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
