/* mime_parse.h - reading a MIME entity (RFC 2045, RFC 2046): its header fields (where each ends,
 * its name, its value unfolded), what Content-Type and Content-Transfer-Encoding say, multipart
 * delimiter lines, and a walk over every entity of a message for the content rules. Text is
 * LF-terminated, as the queue stores it. Pure functions; shared by mime_downgrade.c and the
 * content checks. */
#ifndef POSTERN_MIME_PARSE_H
#define POSTERN_MIME_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#define MIME_MAX_DEPTH 32 /* multiparts and embedded messages inside each other */

/* What an entity's header fields say about it. */
struct mime_fields {
    char type[64], subtype[64]; /* lower case; text/plain when there is no usable Content-Type */
    char boundary[201];         /* RFC 2046 5.1.1 allows 70 characters; up to 200 are taken */
    bool has_content_type;      /* a Content-Type field is there (usable or not) */
    bool has_boundary;
    bool has_mime_version;
    char encoding[32];          /* Content-Transfer-Encoding, lower case; "" when none */
};

/* The end of the header field starting at p: past its LF and those of its continuation lines. */
const char *mime_field_end(const char *p, const char *end);

/* True when the field [f, fend) is called name (any case); *value is then just past its colon. */
bool mime_field_is(const char *f, const char *fend, const char *name, const char **value);

/* Reads the fields of the header block [h, h + hlen) that matter for MIME; in_digest: a part of
 * a multipart/digest, whose default type is message/rfc822 (RFC 2046 5.1.5). */
void mime_read_fields(const char *h, size_t hlen, bool in_digest, struct mime_fields *f);

/* 1 when [line, lend) is a delimiter line of boundary, 2 for the close delimiter, else 0
 * (RFC 2046 5.1.1: "--" boundary ["--"] then optional white space). */
int mime_delimiter_kind(const char *line, const char *lend, const char *boundary);

/* What a walk shows: the header block of an entity below the top level (a part of a multipart,
 * or a message attached as message/rfc822: its fields with their line ends, without the empty
 * line), or one line of text outside every header block (without its LF): a leaf's body, a
 * multipart's preamble, delimiter lines and epilogue. */
enum mime_piece { MIME_PART_HEADER, MIME_BODY_LINE };

/* Called for each piece in text order; returning false stops the walk. */
typedef bool (*mime_visit_fn)(void *arg, enum mime_piece kind, const char *p, size_t n);

/* Walks the message text[0..len) in one pass - its own header block is read, not shown - through
 * every multipart (at most MIME_MAX_DEPTH inside each other; deeper ones are body text) and every
 * attached message. The time is linear in len (a line starting "--" is compared with the open
 * multiparts' boundaries). False when visit stopped it. */
bool mime_walk(const char *text, size_t len, mime_visit_fn visit, void *arg);

#endif
