/* tlsrpt_send.h - SMTP TLS Reporting (RFC 8460), the sending part (tls_reports = yes): the TLS
 * results the queue's connections report are counted (tlsrpt.h) for the current period -
 * tls_report_interval, a UTC day by default -; when it ends, each domain counted gets its report
 * if its _smtp._tls TXT record names mailto: addresses: a multipart/report (report-type="tlsrpt")
 * message with the gzip'd JSON, From tls_report_contact, through the queue as any mail. Results of
 * a period that a stop cuts short are lost. Loop thread. */
#ifndef POSTERN_TLSRPT_SEND_H
#define POSTERN_TLSRPT_SEND_H

#include "tlsrpt.h"

struct server;
struct tlsrpt_sender;

/* The sender for srv (its configuration, resolver and queue); NULL when out of memory. */
struct tlsrpt_sender *tlsrpt_sender_new(struct server *srv);
void tlsrpt_sender_free(struct tlsrpt_sender *s);

/* Counts one TLS result of the current period. */
void tlsrpt_sender_note(struct tlsrpt_sender *s, const struct tlsrpt_result *r);

#endif
