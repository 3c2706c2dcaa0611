/* dmarcrpt_send.h - DMARC aggregate reports (RFC 7489 7.2), the sending part (dmarc_reports =
 * yes): each DMARC result of mail received under a domain's record is counted (dmarcrpt.h) for
 * the current period - dmarc_report_interval, a UTC day by default -; when it ends, each policy
 * domain counted gets its report when its _dmarc record's rua= names mailto: addresses: the
 * gzip'd XML attached to a message from dmarc_report_contact, queued as any mail. An address
 * outside the domain's organizational domain must agree first (RFC 7489 7.1); one whose size
 * limit ("!10m") the report passes is skipped. Counts outlive a stop (report_period.h). Loop
 * thread. */
#ifndef POSTERN_DMARCRPT_SEND_H
#define POSTERN_DMARCRPT_SEND_H

#include "dmarcrpt.h"

struct server;
struct dmarcrpt_sender;

/* The sender for srv (its configuration, resolver and queue); NULL when out of memory. */
struct dmarcrpt_sender *dmarcrpt_sender_new(struct server *srv);
void dmarcrpt_sender_free(struct dmarcrpt_sender *s);

/* Counts one message's DMARC result in the current period. */
void dmarcrpt_sender_note(struct dmarcrpt_sender *s, const struct dmarcrpt_message *m);

#endif
