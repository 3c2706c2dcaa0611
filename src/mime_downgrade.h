/* mime_downgrade.h - makes a message fit the peer it goes to (RFC 2045, RFC 2046): every MIME part
 * whose body has a line longer than RFC 5322 allows (998 octets) - or, for a peer that does not
 * offer 8BITMIME, an octet over 127 (RFC 6152 section 3) - is encoded as quoted-printable;
 * multiparts and message/rfc822 parts are walked into, never encoded themselves (RFC 2045 6.4);
 * every other part is copied unchanged. A message that is not MIME at all gets the headers that
 * make it one (text/plain; charset=unknown-8bit when its text is 8-bit, RFC 1428).
 * For a 7-bit peer, what cannot be converted is refused, never sent half-converted: 8-bit header
 * fields (only their author can encode them, RFC 2047), 8-bit octets in a part that says it is
 * already base64 or quoted-printable, or outside every part, a multipart without a boundary, and
 * nesting deeper than MIME_DOWNGRADE_MAX_DEPTH. Long lines that cannot be encoded (in a header, an
 * encoded part, a preamble) are left as they are. Text is LF-terminated, as the queue stores it. */
#ifndef POSTERN_MIME_DOWNGRADE_H
#define POSTERN_MIME_DOWNGRADE_H

#include <stdbool.h>
#include <stddef.h>

#include "mime_parse.h"

struct evbuffer;

#define MIME_DOWNGRADE_MAX_DEPTH MIME_MAX_DEPTH /* multiparts and embedded messages inside each other */
#define MIME_LINE_MAX 998           /* RFC 5322 2.1.1, RFC 5321 4.5.3.1.6: octets before CRLF */

enum mime_downgrade_result {
    MIME_DOWNGRADE_OK,
    MIME_DOWNGRADE_8BIT_HEADER,     /* a header field has an octet over 127 */
    MIME_DOWNGRADE_ENCODED_8BIT,    /* a base64 / quoted-printable / message part has one */
    MIME_DOWNGRADE_8BIT_OUTSIDE,    /* a multipart's preamble or epilogue has one */
    MIME_DOWNGRADE_NO_BOUNDARY,     /* a multipart with 8-bit text has no boundary parameter */
    MIME_DOWNGRADE_TOO_DEEP,        /* nesting deeper than MIME_DOWNGRADE_MAX_DEPTH */
    MIME_DOWNGRADE_NO_MEMORY,
};

/* Appends the converted text[0..len) to out; seven_bit: the peer takes no 8-bit octets. On
 * anything but MIME_DOWNGRADE_OK, what out holds is incomplete and must not be sent. */
enum mime_downgrade_result mime_downgrade(const char *text, size_t len, bool seven_bit, struct evbuffer *out);

/* True when text has an octet over 127 (RFC 6152: only a peer offering 8BITMIME may get it). */
bool mime_has_8bit(const char *text, size_t len);

/* True when text has a line longer than MIME_LINE_MAX octets. */
bool mime_has_long_line(const char *text, size_t len);

/* Plain words for a result, for a bounce's diagnostic. */
const char *mime_downgrade_problem(enum mime_downgrade_result r);

#endif
