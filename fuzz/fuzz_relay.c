/* libFuzzer target: what a remote peer or a damaged spool can feed the outbound relay.
 * The input is split on LF: the lines go through the remote reply parser (like smtp_client.c
 * reads them), and the whole input through the queue file and state file parsers and the commit
 * journal's payload and header parsers (journal_record.c), and its first line through the
 * next-hop parser (relay_host and transport entries, LMTP ones too).
 * Invariants: a finished reply has a code in 200-559 and kept text within bounds; a parsed
 * envelope has a sender, an id and recipients, and a body offset inside the input; a journal
 * cancel record holds nothing but seqs and encodes back to them. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "journal_record.h"
#include "next_hop.h"
#include "queue_file.h"
#include "smtp_reply.h"

static void replies(const char *s, size_t n)
{
    struct smtp_reply r;
    smtp_reply_reset(&r);
    const char *p = s, *end = s + n;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = (size_t)((nl ? nl : end) - p);
        enum smtp_reply_step st = smtp_reply_feed(&r, p, len);
        if (st == SMTP_REPLY_DONE) {
            if (r.code < 200 || r.code > 559 || r.text_len >= sizeof r.text || strlen(r.text) != r.text_len)
                abort();
            char sum[700];
            smtp_reply_summary(&r, sum, sizeof sum);
            smtp_reply_reset(&r);
        } else if (st == SMTP_REPLY_BAD) {
            smtp_reply_reset(&r);
        }
        p = nl ? nl + 1 : end;
    }
}

/* A journal record payload and header slot: parsed parts stay inside the input and safe. */
static void journal_bytes(const char *s, size_t n)
{
    static struct journal_entry e, again;
    static char encoded[JOURNAL_CANCELS_MAX * JOURNAL_CANCEL_LINE_MAX + 1];
    bool parsed = journal_parse_payload(s, n, &e);
    if (parsed && e.ncancels > 0) { /* a cancel record: nothing else, and it round-trips */
        if (e.ndirs || e.name[0] || e.content_len || e.ncancels > JOURNAL_CANCELS_MAX)
            abort();
        size_t len = journal_cancel_payload(e.cancels, e.ncancels, encoded);
        if (!journal_parse_payload(encoded, len, &again) || again.ncancels != e.ncancels ||
            memcmp(again.cancels, e.cancels, e.ncancels * sizeof e.cancels[0]) != 0)
            abort();
    } else if (parsed) {
        if (e.ndirs == 0 || !e.name[0] || strchr(e.name, '/') || e.content < s || e.content + e.content_len != s + n)
            abort();
        for (size_t i = 0; i < e.ndirs; i++)
            if (e.dirs[i] < s || e.dirs[i] + e.dir_lens[i] > s + n || e.dir_lens[i] == 0)
                abort();
    }
    unsigned char slot[JOURNAL_SLOT_SIZE] = {0};
    memcpy(slot, s, n < sizeof slot ? n : sizeof slot);
    struct journal_header h;
    journal_header_decode(slot, &h);
}

/* A parsed next hop has a port (none for a socket), a route, and a socket path that is absolute. */
static void next_hop_line(const char *s, size_t n)
{
    char text[400];
    const char *nl = memchr(s, '\n', n);
    size_t len = nl ? (size_t)(nl - s) : n;
    if (len >= sizeof text)
        return;
    memcpy(text, s, len);
    text[len] = '\0';
    struct next_hop h;
    if (!next_hop_parse(text, 25, &h))
        return;
    if (!h.configured || !h.route[0] || strcmp(h.name, text) != 0 || (h.unix_socket && (!h.lmtp || h.route[0] != '/')) ||
        (!h.unix_socket && (h.port < 1 || h.port > 65535)) || (h.lmtp && h.mx))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    replies(s, size);
    next_hop_line(s, size);
    journal_bytes(s, size);
    struct qfile q;
    char err[256];
    if (qfile_parse_envelope(s, size, &q, err, sizeof err) == 0) {
        if (!q.sender || !q.qid[0] || q.nrcpts == 0 || q.body_offset > size)
            abort();
        for (size_t i = 0; i < q.nrcpts; i++)
            if (!q.rcpts[i].addr)
                abort();
    }
    qfile_free(&q);
    /* the input as a state file over three recipients */
    struct qrcpt rcpts[3] = {{.status = QR_PENDING}, {.status = QR_PENDING}, {.status = QR_PENDING}};
    struct qfile st = {.rcpts = malloc(sizeof rcpts), .nrcpts = 3};
    if (!st.rcpts)
        return 0;
    memcpy(st.rcpts, rcpts, sizeof rcpts);
    qfile_parse_state(s, size, &st, err, sizeof err);
    for (size_t i = 0; i < 3; i++)
        if (!st.rcpts[i].status || !strchr("PDFRT", (int)st.rcpts[i].status)) /* states a state file may hold */
            abort();
    qfile_free(&st);
    return 0;
}
