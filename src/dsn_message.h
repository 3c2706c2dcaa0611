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
 * mail. Returns true when a report is being committed: stored(arg, ok) is called once that is
 * done, and the caller holds its 250 until then, so that a crash after the 250 cannot lose the
 * report. False: no report is due, or it could not be made (out of memory: logged). */
bool dsn_report_local_deliveries(struct server *srv, const struct message *m, void (*stored)(void *arg, bool ok),
                                 void *arg);

#endif
