/* dkim_canon.h - what DKIM signing (dkim.c) and verification (dkim_verify.c) share: a message
 * text's layout and header fields, and the canonical forms of RFC 6376 3.4 ("simple" and
 * "relaxed", header and body) fed straight into SHA-256. The text is as Postern stores it: LF
 * line endings (CRLF on the wire; bare CR or LF never reach it), read in place. Pure. */
#ifndef POSTERN_DKIM_CANON_H
#define POSTERN_DKIM_CANON_H

#include <stdbool.h>
#include <stddef.h>
#include <openssl/evp.h>

struct evbuffer;

#define CANON_CHUNK 4096 /* canonical bytes gathered before each hash update */

/* Canonical bytes on their way into a SHA-256 context, gathered so the hash sees few updates;
 * at most limit of them are hashed (SIZE_MAX: all), written counts every one. */
struct canon_out {
    EVP_MD_CTX *md;
    unsigned char buf[CANON_CHUNK];
    size_t len;
    size_t limit, written;
};

/* Starts o on a fresh SHA-256 context hashing at most limit octets; false when out of memory. */
bool canon_out_init(struct canon_out *o, size_t limit);
void canon_out_byte(struct canon_out *o, unsigned char c);
/* The digest of what was hashed; frees the context either way. */
bool canon_out_final(struct canon_out *o, unsigned char digest[32]);
void canon_out_free(struct canon_out *o);

/* One header field (name, colon, value, continuation lines; LF endings, no final LF) into o:
 * relaxed (name lower-cased, unfolded, blanks squeezed, none around the colon or at the end) or
 * simple (as it is, LF as CRLF); CRLF after it when crlf. */
void canon_header(struct canon_out *o, const char *p, size_t len, bool relaxed, bool crlf);

/* The SHA-256 of the canonical body, the text from offset on (read in place chunk by chunk),
 * cut to limit octets (SIZE_MAX: whole); *length (if not NULL) gets the whole canonical
 * length. False when out of memory. */
bool canon_body_hash(struct evbuffer *text, size_t offset, bool relaxed, size_t limit, unsigned char digest[32],
                     size_t *length);

/* The header section's length in text (through the LF of its last line), and where the body
 * starts (after the empty line; the end when there is none). */
void canon_text_layout(struct evbuffer *text, size_t *hlen, size_t *body);

struct field {
    const char *p; /* "Name: value" with its continuation lines, LF endings, no final LF */
    size_t len;
};

struct fields {
    struct field *v;
    size_t count, cap;
};

/* Splits a header section (LF lines) into fields, appended top to bottom; false when out of
 * memory. A line that starts with a blank continues the field above it in the same section (one
 * at the top, continuing nothing, is skipped). */
bool split_fields(struct fields *fs, const char *p, size_t len);

/* True when field f is named name (compared without case; blanks before the colon allowed). */
bool field_named(const struct field *f, const char *name);

/* The domain of the first address in a From field, as an A-label; false when there is none. The
 * address is the one in <...> when there is one, else the field's words; quoted strings and
 * comments never count, so '"x@evil" <me@here>' gives "here". *several (if not NULL): another
 * mailbox follows (a comma outside quotes, comments and brackets). */
bool field_from_domain(const struct field *f, char *out, size_t outsz, bool *several);

/* The same for the mailbox of an address-list field that starts at *pos (0: the first), read as
 * field_from_domain reads the first: 1 with its domain in out, 0 when it has no usable domain, -1
 * when the list element is empty ("a@x, , b@y"). *pos is set to where the next mailbox starts, or
 * to f->len when none follows: calls from *pos = 0 until it is f->len visit every mailbox. */
int field_mailbox_domain(const struct field *f, size_t *pos, char *out, size_t outsz);

static inline bool is_wsp(char c)
{
    return c == ' ' || c == '\t';
}

#endif
