/* smtp_data.h - pure DATA body reader: turns the raw byte stream after 354 into message bytes.
 * Ends only at CRLF "." CRLF; undoes dot-stuffing; writes lines with LF endings (Unix/Maildir form);
 * flags bare CR, bare LF and NUL (the message is then refused whole, never split: SMTP smuggling
 * defence); stops storing past max_size but keeps reading to the real end. Resumes on any split.
 * Chunked (BDAT, RFC 3030): the same line ending rules, but no dots and no end of its own - the
 * caller feeds each chunk's stated octets and calls data_reader_end after the last. */
#ifndef POSTERN_SMTP_DATA_H
#define POSTERN_SMTP_DATA_H

#include <stdbool.h>
#include <stddef.h>

enum data_flag {
    DATA_BARE_CR = 1u << 0,
    DATA_BARE_LF = 1u << 1,
    DATA_NUL = 1u << 2,
    DATA_TOO_BIG = 1u << 3,
    DATA_NO_MEMORY = 1u << 4, /* set by the caller: it could not keep the bytes (the message fails) */
};

struct data_reader {
    int state;
    bool chunked;    /* BDAT: no dot-stuffing, no CRLF.CRLF end */
    unsigned flags;  /* enum data_flag bits seen so far */
    size_t size;     /* message size so far, counting each line ending as CRLF (2 octets) */
    size_t max_size; /* over this: DATA_TOO_BIG, nothing more is emitted */
};

/* Receives message bytes. Not called at all once any flag is set. */
typedef void (*data_sink)(void *ctx, const char *bytes, size_t n);

void data_reader_init(struct data_reader *r, size_t max_size);

/* For a message sent in BDAT chunks. */
void data_reader_init_chunked(struct data_reader *r, size_t max_size);

/* After a chunked message's last octet: a CR left pending is a bare CR; true when the text ended
 * inside a line, whose line end (counted here) the caller adds - as DATA's CRLF.CRLF gives one. */
bool data_reader_end(struct data_reader *r);

/* Feeds in[0..len). Returns the bytes consumed: all of them, or, when the end of data was reached
 * (*done set), the bytes up to and including the final CRLF.CRLF; the rest are commands again. */
size_t data_reader_feed(struct data_reader *r, const char *in, size_t len, data_sink sink, void *ctx, bool *done);

#endif
