/* journal_record.c - bytes of the commit journal: header slots, record headers, payload parsing.
 * Pure; integers are stored little-endian whatever the machine. */
#include "journal_record.h"

#include <stdio.h>
#include <string.h>
#include <zlib.h>

#define HEADER_MAGIC 0x44484a50u /* "PJHD" */
#define RECORD_MAGIC 0x4e524a50u /* "PJRN" */

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

uint32_t journal_crc_update(uint32_t crc, const void *data, size_t len)
{
    const unsigned char *p = data;
    while (len > 0) { /* zlib takes a uInt length */
        uInt chunk = len > (1u << 30) ? (1u << 30) : (uInt)len;
        crc = (uint32_t)crc32(crc, p, chunk);
        p += chunk;
        len -= chunk;
    }
    return crc;
}

/* Slot image: magic(4) serial(8) epoch(4) tail_offset(8) tail_seq(8) crc(4) over the 32 before it. */
void journal_header_encode(const struct journal_header *h, unsigned char *slot)
{
    memset(slot, 0, JOURNAL_SLOT_SIZE);
    put32(slot, HEADER_MAGIC);
    put64(slot + 4, h->serial);
    put32(slot + 12, h->epoch);
    put64(slot + 16, h->tail_offset);
    put64(slot + 24, h->tail_seq);
    put32(slot + 32, journal_crc_update(0, slot, 32));
}

bool journal_header_decode(const unsigned char *slot, struct journal_header *h)
{
    if (get32(slot) != HEADER_MAGIC || get32(slot + 32) != journal_crc_update(0, slot, 32))
        return false;
    h->serial = get64(slot + 4);
    h->epoch = get32(slot + 12);
    h->tail_offset = get64(slot + 16);
    h->tail_seq = get64(slot + 24);
    return true;
}

/* Record header: magic(4) len(4) epoch(4) crc(4) seq(8) reserved(8). */
void journal_record_header_encode(unsigned char *out, uint32_t len, uint32_t epoch, uint64_t seq, uint32_t crc)
{
    memset(out, 0, JOURNAL_RECORD_HEADER);
    put32(out, RECORD_MAGIC);
    put32(out + 4, len);
    put32(out + 8, epoch);
    put32(out + 12, crc);
    put64(out + 16, seq);
}

bool journal_record_header_decode(const unsigned char *in, uint32_t *len, uint32_t *epoch, uint64_t *seq,
                                  uint32_t *crc)
{
    if (get32(in) != RECORD_MAGIC)
        return false;
    *len = get32(in + 4);
    *epoch = get32(in + 8);
    *crc = get32(in + 12);
    *seq = get64(in + 16);
    return true;
}

/* A file or directory name piece we are willing to recreate: printable, no "..", no empty parts. */
static bool safe_text(const char *p, size_t n, bool allow_slash)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x20 || c == 0x7f || (c == '/' && !allow_slash))
            return false;
        if (c == '.' && i + 1 < n && p[i + 1] == '.' && (i == 0 || p[i - 1] == '/') &&
            (i + 2 == n || p[i + 2] == '/'))
            return false;
    }
    return !(n == 1 && p[0] == '.');
}

/* Parses the decimal seq of a "cancel <seq>" line (n bytes after "cancel "). */
static bool parse_seq(const char *p, size_t n, uint64_t *seq)
{
    if (n == 0 || n > 20)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9' || v > (UINT64_MAX - (uint64_t)(p[i] - '0')) / 10)
            return false;
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    *seq = v;
    return true;
}

/* Takes one meta line of a payload into e; false when it is malformed or out of place. */
static bool parse_meta_line(const char *line, size_t n, struct journal_entry *e)
{
    bool have_name = e->name[0] != '\0';
    if (n > 7 && memcmp(line, "cancel ", 7) == 0 && !have_name && e->ndirs == 0 &&
        e->ncancels < JOURNAL_CANCELS_MAX)
        return parse_seq(line + 7, n - 7, &e->cancels[e->ncancels++]);
    if (e->ncancels > 0)
        return false;
    if (n > 5 && memcmp(line, "name ", 5) == 0 && !have_name) {
        if (n - 5 > JOURNAL_NAME_MAX || !safe_text(line + 5, n - 5, false))
            return false;
        memcpy(e->name, line + 5, n - 5);
        e->name[n - 5] = '\0';
        return true;
    }
    if (n > 4 && memcmp(line, "dir ", 4) == 0 && e->ndirs < JOURNAL_DIRS_MAX) {
        if (n - 4 > 4000 || !safe_text(line + 4, n - 4, true))
            return false;
        e->dirs[e->ndirs] = line + 4;
        e->dir_lens[e->ndirs++] = n - 4;
        return true;
    }
    return false;
}

bool journal_parse_payload(const char *p, size_t len, struct journal_entry *e)
{
    memset(e, 0, sizeof *e);
    size_t pos = 0;
    while (pos < len) {
        const char *nl = memchr(p + pos, '\n', len - pos);
        if (!nl)
            return false;
        size_t n = (size_t)(nl - (p + pos));
        const char *line = p + pos;
        pos += n + 1;
        if (n == 0) { /* blank line: the content follows */
            e->content = p + pos;
            e->content_len = len - pos;
            if (e->ncancels > 0)
                return e->content_len == 0;
            return e->name[0] != '\0' && e->ndirs > 0;
        }
        if (!parse_meta_line(line, n, e))
            return false;
    }
    return false;
}

size_t journal_cancel_payload(const uint64_t *seqs, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(out + o, JOURNAL_CANCEL_LINE_MAX + 1, "cancel %llu\n", (unsigned long long)seqs[i]);
    out[o++] = '\n';
    return o;
}
