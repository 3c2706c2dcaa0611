/* journal_record.h - the on-disk format of the commit journal (spool_dir/journal), pure code: build
 * and check record and header bytes, parse a record's payload. No I/O (unit-tested and fuzzed).
 *
 * File layout: two header slots (offsets 0 and 2048, written alternately, the valid one with the
 * highest "serial" wins), then records from JOURNAL_DATA_START to the end of the file, used as a ring.
 * A record: 32-byte header {magic, payload length, epoch, seq, crc32} then the payload:
 *   "name <maildir file name>\n" "dir <mailbox directory>\n" (one or more) "\n" <message bytes>
 * or, for a cancel record, "cancel <seq>\n" (one or more) "\n": the messages of those earlier
 * records could not be linked into new/ after their record was written (the client got a 451), so a
 * recovery must not deliver them.
 * The header slot names the oldest record not yet retired (offset and seq); records follow with
 * seq + 1 each; a record that does not fit before the end of the file starts at JOURNAL_DATA_START.
 * Records are only valid for the header's epoch: every start-up after a recovery takes a new epoch,
 * so stale bytes from an earlier run can never be read as a record. */
#ifndef POSTERN_JOURNAL_RECORD_H
#define POSTERN_JOURNAL_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JOURNAL_SLOT_SIZE 2048
#define JOURNAL_DATA_START 4096
#define JOURNAL_RECORD_HEADER 32
#define JOURNAL_NAME_MAX 159 /* as struct commit_stage.name */
#define JOURNAL_DIRS_MAX 1000
#define JOURNAL_CANCELS_MAX 256 /* seqs in one cancel record (a batch holds at most 256 messages) */
#define JOURNAL_CANCEL_LINE_MAX 28 /* "cancel " + 20 digits + "\n" */

struct journal_header {
    uint64_t serial;      /* which slot is newer */
    uint32_t epoch;       /* records of this epoch only */
    uint64_t tail_offset; /* the oldest record not retired (or where the next one goes) */
    uint64_t tail_seq;    /* its seq */
};

/* Encodes h into a slot image of JOURNAL_SLOT_SIZE bytes (magic, fields, crc, zero padding). */
void journal_header_encode(const struct journal_header *h, unsigned char *slot);

/* Decodes a slot image; false when the magic or crc is wrong (never written, or torn). */
bool journal_header_decode(const unsigned char *slot, struct journal_header *h);

/* Encodes a record header; crc is the crc32 of the payload (see journal_payload_crc). */
void journal_record_header_encode(unsigned char *out, uint32_t len, uint32_t epoch, uint64_t seq, uint32_t crc);

/* Decodes a record header: false when the magic is wrong. Does not check the crc. */
bool journal_record_header_decode(const unsigned char *in, uint32_t *len, uint32_t *epoch, uint64_t *seq,
                                  uint32_t *crc);

/* crc32 of a payload given in pieces: start with crc 0 and feed every piece in order. */
uint32_t journal_crc_update(uint32_t crc, const void *data, size_t len);

/* One parsed payload; dirs and content point into the payload (not NUL-terminated for content).
 * A cancel record has ncancels > 0 and no name, dirs or content. */
struct journal_entry {
    char name[JOURNAL_NAME_MAX + 1];
    const char *dirs[JOURNAL_DIRS_MAX];
    size_t dir_lens[JOURNAL_DIRS_MAX];
    size_t ndirs;
    const char *content;
    size_t content_len;
    uint64_t cancels[JOURNAL_CANCELS_MAX];
    size_t ncancels;
};

/* Parses a record payload. False when malformed: no name, no dir, an unsafe name or directory
 * (empty, "..", control characters), over the limits, or no blank line before the content; for a
 * cancel record, a seq that is not a decimal number, or anything but cancel lines. */
bool journal_parse_payload(const char *p, size_t len, struct journal_entry *e);

/* Writes the payload of a cancel record for seqs[0..n) (1 <= n <= JOURNAL_CANCELS_MAX) into out,
 * which has room for n * JOURNAL_CANCEL_LINE_MAX + 1 bytes; returns its length. */
size_t journal_cancel_payload(const uint64_t *seqs, size_t n, char *out);

#endif
