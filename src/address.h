/* address.h - strict RFC 5321 mailbox/path parser with RFC 6531 (UTF-8) extensions.
 * Pure: no I/O, no allocation. Every output field is bounded by the RFC limits below. */
#ifndef POSTERN_ADDRESS_H
#define POSTERN_ADDRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define ADDR_LOCAL_MAX 64   /* RFC 5321 4.5.3.1.1 */
#define ADDR_DOMAIN_MAX 255 /* RFC 5321 4.5.3.1.2 */
#define ADDR_LABEL_MAX 63   /* RFC 1035 */
#define ADDR_PATH_MAX 256   /* RFC 5321 4.5.3.1.3, including < > */

enum addr_result {
    ADDR_OK = 0,
    ADDR_ERR_SYNTAX,   /* not a mailbox by the grammar */
    ADDR_ERR_TOO_LONG, /* local part, label, domain or path over its limit */
    ADDR_ERR_UTF8,     /* malformed UTF-8 */
};

struct mailbox {
    bool is_null;       /* the null reverse-path <> */
    bool is_postmaster; /* the bare <Postmaster> forward-path (no domain) */
    bool utf8;          /* holds non-ASCII characters (needs SMTPUTF8) */
    bool quoted;        /* local part was written as a quoted-string */
    bool literal;       /* domain is an address literal [..] */
    char addr[ADDR_PATH_MAX + 1];       /* local@domain as written (no brackets, no source route) */
    char local[ADDR_LOCAL_MAX + 1];     /* local part content: quotes and backslashes removed */
    char domain[ADDR_DOMAIN_MAX + 1];   /* domain in canonical form (idn.h); literals keep [ ] */
};

/* Parses exactly one mailbox "local@domain" occupying all of s[0..len). */
enum addr_result address_parse_mailbox(const char *s, size_t len, struct mailbox *mb);

/* Parses a path "<...>" at the start of s: optional source route (ignored, RFC 5321 4.1.1.3),
 * "<>" when allow_null, "<Postmaster>" when allow_postmaster. On success *consumed is the
 * number of bytes up to and including '>'. */
enum addr_result address_parse_path(const char *s, size_t len, struct mailbox *mb, size_t *consumed,
                                    bool allow_null, bool allow_postmaster);

/* Parses a domain name (dot-separated labels of letters, digits, hyphens, or UTF-8 U-labels).
 * Returns ADDR_OK and sets *utf8 when it held non-ASCII. */
enum addr_result address_parse_domain(const char *s, size_t len, bool *utf8);

/* The IP address of an address literal domain ("[192.0.2.1]", "[IPv6:2001:db8::1]"; port 0) in
 * ss and *sslen. False for anything else: a name, a General-address-literal ("[tag:...]"), a bad one. */
bool address_literal_ip(const char *domain, struct sockaddr_storage *ss, socklen_t *sslen);

/* The one form addresses are compared and looked up in: "local@domain", the local part without
 * its quoting and lower-cased, the domain canonical (idn.h) - "Alice"@BÜCHER.test and
 * alice@xn--bcher-kva.test are one (the table key of policy.c and auth.c). False (out untouched)
 * when s[0..len) is no mailbox. */
bool address_canonical(const char *s, size_t len, char *out, size_t outsz);

/* Copies src into dst (at most dstsz-1 octets, always terminated) with ASCII letters lower-cased;
 * other octets, UTF-8 included, are copied as they are. dst may equal src. */
void ascii_lower_copy(char *dst, const char *src, size_t dstsz);

/* Length of the well-formed UTF-8 sequence at p (1..4), or 0 when malformed. p[0] >= 0x80. */
size_t utf8_sequence_length(const unsigned char *p, size_t avail);

/* True when the n bytes at s are printable ASCII or well-formed UTF-8 with no control chars. */
bool utf8_text_valid(const char *s, size_t n);

#endif
