/* report_format.h - what the aggregate reports (TLS, tlsrpt.h; DMARC, dmarcrpt.h) share in their
 * making: a buffer's text, gzip (RFC 1952) and base64 for the attachment. Pure. */
#ifndef POSTERN_REPORT_FORMAT_H
#define POSTERN_REPORT_FORMAT_H

#include <stddef.h>

struct evbuffer;

/* b's content as a malloc'd C string (NULL when out of memory), its length in *len; b freed. */
char *report_text(struct evbuffer *b, size_t *len);

/* text gzip'd into a malloc'd buffer of *outlen octets; NULL when out of memory. */
unsigned char *report_gzip(const char *text, size_t len, size_t *outlen);

/* data in base64 onto b, lines of 76 characters ended by LF (RFC 2045 6.8). */
void report_add_base64(struct evbuffer *b, const unsigned char *data, size_t len);

#endif
