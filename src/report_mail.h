/* report_mail.h - an aggregate report's message (TLS reports, DMARC reports) on its way: its
 * recipients (the addresses a DNS record names, routed as any mail this server sends), its trace
 * fields, then the queue. Loop thread. */
#ifndef POSTERN_REPORT_MAIL_H
#define POSTERN_REPORT_MAIL_H

#include <stdbool.h>
#include <stddef.h>

#include "metrics.h"

struct message;
struct server;

/* The n addresses as m's recipients (no DSN asked: a report about a report helps no one); false
 * when none could be. */
bool report_mail_recipients(struct message *m, const struct server *srv, const char (*addresses)[256], size_t n);

/* Queues m - its header section and body already in m->body - from sender, with Return-Path and
 * Received fields; counted as sent once stored, or failed (logged as event=tls_report_failed or
 * dmarc_report_failed with domain). */
void report_mail_queue(struct server *srv, struct message *m, const char *sender, enum report_kind kind,
                       const char *domain);

/* Who a report says it comes from: organization (org_key's value, else hostname) and contact
 * address (contact_key's value, else postmaster@hostname), each cut to its buffer. */
void report_identity(const char *org_key, const char *contact_key, const char *hostname, char *org, size_t orgsz,
                     char *contact, size_t contactsz);

/* Counts one domain's report of kind as outcome (postern_reports_total). */
void report_count(struct server *srv, enum report_kind kind, enum report_outcome outcome);

#endif
