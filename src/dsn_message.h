/* dsn_message.h - a delivery report (dsn.c) made into a message to the original sender, ready to
 * commit: the queue's bounces, delay warnings and relay reports, and the "delivered" reports of
 * local deliveries whose recipients asked NOTIFY=SUCCESS (RFC 3461 6.2.1). */
#ifndef POSTERN_DSN_MESSAGE_H
#define POSTERN_DSN_MESSAGE_H

#include <stdbool.h>

#include "dsn.h"

struct message;
struct policy;
struct server;

enum dsn_outcome { DSN_NOBODY, DSN_MADE, DSN_NOT_MADE };

/* Fills m (a new, empty message) with rep addressed to rep->sender: DSN_MADE; DSN_NOBODY when the
 * sender cannot be written to (logged); DSN_NOT_MADE when memory runs out. smtputf8 and body8bit:
 * the original's, as the report may quote its UTF-8 addresses and 8-bit text. */
enum dsn_outcome dsn_message_fill(struct message *m, const struct dsn_report *rep, const struct policy *policy,
                                  const char *hostname, bool smtputf8, bool body8bit);

/* m was just committed to its local mailboxes: its local recipients that asked NOTIFY=SUCCESS get
 * one "delivered" report (with an "expanded" entry for each alias RCPT that asked it and became
 * several copies), sent to m's sender (none for the null sender) and committed like any
 * mail. It runs after the 250: a crash in between can lose the report, never the message. */
void dsn_report_local_deliveries(struct server *srv, const struct message *m);

#endif
