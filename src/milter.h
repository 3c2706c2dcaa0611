/* milter.h - the milter protocol (Sendmail's content filter protocol, version 6, as libmilter,
 * rspamd and OpenDKIM speak it), the pure part: its packets - a 4-octet length in network order,
 * a command octet, the data -, the steps and options negotiated, the filter's custom replies,
 * and the header edits a filter asks for, made on a message text (LF lines). */
#ifndef POSTERN_MILTER_H
#define POSTERN_MILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evbuffer;

#define MILTER_VERSION 6
#define MILTER_PACKET_MAX (1024 * 1024) /* a reply longer than this is a broken filter */
#define MILTER_BODY_CHUNK 65535         /* body octets in one packet */

/* Actions the filter may take at the end of the message (SMFIF_*): the ones this server applies. */
#define MILTER_ACT_ADDHDRS 0x01u
#define MILTER_ACT_CHGHDRS 0x10u

/* Protocol options (SMFIP_*): a step not sent (NO...), a step the filter does not answer (NR...). */
#define MILTER_P_NOCONNECT 0x01u
#define MILTER_P_NOHELO 0x02u
#define MILTER_P_NOMAIL 0x04u
#define MILTER_P_NORCPT 0x08u
#define MILTER_P_NOBODY 0x10u
#define MILTER_P_NOHDRS 0x20u
#define MILTER_P_NOEOH 0x40u
#define MILTER_P_NR_HDR 0x80u
#define MILTER_P_NOUNKNOWN 0x100u
#define MILTER_P_NODATA 0x200u
#define MILTER_P_SKIP 0x400u
#define MILTER_P_NR_CONN 0x1000u
#define MILTER_P_NR_HELO 0x2000u
#define MILTER_P_NR_MAIL 0x4000u
#define MILTER_P_NR_RCPT 0x8000u
#define MILTER_P_NR_DATA 0x10000u
#define MILTER_P_NR_UNKN 0x20000u
#define MILTER_P_NR_EOH 0x40000u
#define MILTER_P_NR_BODY 0x80000u
#define MILTER_P_OFFERED 0xFF7FFu /* all of the above: this server can leave out or not wait for any step */

/* Appends one packet: command cmd with len octets of data. */
void milter_packet(struct evbuffer *out, char cmd, const void *data, size_t len);

/* Appends the option negotiation (SMFIC_OPTNEG): version 6, the actions and options offered. */
void milter_optneg(struct evbuffer *out, uint32_t actions, uint32_t protocol);

/* Takes the next whole packet from in: 1 with its command and data (malloc'd, NUL-terminated, len
 * octets before the NUL), 0 when it is not all there yet, -1 when it is no packet (empty, or
 * longer than MILTER_PACKET_MAX). */
int milter_packet_take(struct evbuffer *in, char *cmd, char **data, size_t *len);

/* The filter's negotiation reply (data of an 'O' packet): its version, actions and options;
 * false when it is too short. */
bool milter_optneg_parse(const char *data, size_t len, uint32_t *version, uint32_t *actions, uint32_t *protocol);

/* A custom reply (data of a 'y' packet: "550 5.7.1 text"): its class (4 or 5) and, in text, its
 * words after the codes - printable ASCII only, at most textsz - 1 -, "" when none. False when it
 * is no 4xx or 5xx reply. */
bool milter_reply_parse(const char *data, size_t len, int *klass, char *text, size_t textsz);

/* The name and value of a header edit's data ("name\0value\0", after a 4-octet index for 'i' and
 * 'm'): pointers into data; false when it is malformed or the name is no field name. */
bool milter_header_args(const char *data, size_t len, bool indexed, uint32_t *index, const char **name,
                        const char **value);

/* The header edits, on a message text (LF lines) whose header section is its first hlen octets:
 * add at the end of the header section; insert before the index-th field (0: first); change
 * the index-th field named name (1: the first), or delete it when value is "". Values go in as
 * the filter wrote them, CRLF as LF. False when out of memory (or, for change, no such field:
 * then nothing is done, as libmilter's MTAs do). */
bool milter_header_add(struct evbuffer *text, const char *name, const char *value);
bool milter_header_insert(struct evbuffer *text, uint32_t index, const char *name, const char *value);
bool milter_header_change(struct evbuffer *text, uint32_t index, const char *name, const char *value);

/* The edit a packet asks for - cmd 'h' add, 'i' insert, 'm' change - made on text (as above). */
bool milter_header_edit(struct evbuffer *text, char cmd, uint32_t index, const char *name, const char *value);

#endif
