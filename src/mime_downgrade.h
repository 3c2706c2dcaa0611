/* mime_downgrade.h - turns a message with 8-bit text into 7-bit MIME (RFC 6152 section 3, RFC 2045,
 * RFC 2046), for a peer that does not offer 8BITMIME: every part whose body has an octet over 127 is
 * encoded as quoted-printable; multiparts and message/rfc822 parts are walked into, never encoded
 * themselves (RFC 2045 6.4); everything already 7-bit is copied unchanged. A message that is not MIME
 * at all gets the headers that make it one (text/plain; charset=unknown-8bit, RFC 1428).
 * What cannot be converted is refused, never sent half-converted: 8-bit header fields (RFC 2047
 * encoding them would need their structure), 8-bit octets in a part that says it is already
 * base64 or quoted-printable, or outside every part, a multipart without a boundary, and nesting
 * deeper than MIME_DOWNGRADE_MAX_DEPTH. Text is LF-terminated, as the queue stores it. */
#ifndef POSTERN_MIME_DOWNGRADE_H
#define POSTERN_MIME_DOWNGRADE_H

#include <stddef.h>

struct evbuffer;

#define MIME_DOWNGRADE_MAX_DEPTH 32 /* multiparts and embedded messages inside each other */

enum mime_downgrade_result {
    MIME_DOWNGRADE_OK,
    MIME_DOWNGRADE_8BIT_HEADER,     /* a header field has an octet over 127 */
    MIME_DOWNGRADE_ENCODED_8BIT,    /* a base64 / quoted-printable / message part has one */
    MIME_DOWNGRADE_8BIT_OUTSIDE,    /* a multipart's preamble or epilogue has one */
    MIME_DOWNGRADE_NO_BOUNDARY,     /* a multipart with 8-bit text has no boundary parameter */
    MIME_DOWNGRADE_TOO_DEEP,        /* nesting deeper than MIME_DOWNGRADE_MAX_DEPTH */
    MIME_DOWNGRADE_NO_MEMORY,
};

/* Appends the 7-bit form of text[0..len) to out. On anything but MIME_DOWNGRADE_OK, what out
 * holds is incomplete and must not be sent. */
enum mime_downgrade_result mime_downgrade(const char *text, size_t len, struct evbuffer *out);

/* Plain words for a result, for a bounce's diagnostic. */
const char *mime_downgrade_problem(enum mime_downgrade_result r);

#endif
