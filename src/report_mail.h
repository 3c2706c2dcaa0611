/* report_mail.h - an aggregate report's message (TLS reports, DMARC reports) on its way: its
 * recipients (the addresses a DNS record names, routed as any mail this server sends), its trace
 * fields, then the queue. Loop thread. */
#ifndef POSTERN_REPORT_MAIL_H
#define POSTERN_REPORT_MAIL_H

#include <stdbool.h>
#include <stddef.h>

struct message;
struct server;

/* The n addresses as m's recipients (no DSN asked: a report about a report helps no one); false
 * when none could be. */
bool report_mail_recipients(struct message *m, const struct server *srv, const char (*addresses)[256], size_t n);

/* Queues m - its header section and body already in m->body - from sender, with Return-Path and
 * Received fields; a store that fails is logged as event=<kind>_failed domain=<domain>. */
void report_mail_queue(struct server *srv, struct message *m, const char *sender, const char *kind,
                       const char *domain);

#endif
