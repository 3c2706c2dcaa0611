/* mta_sts_cli.h - postern [-c FILE] mta-sts DOMAIN: the MTA-STS policy (mta_sts.h) DOMAIN
 * publishes, looked up and fetched now as the queue would (this configuration's resolver and
 * trust store, smtp_mta_sts_timeout), and what it means for mail sent there - for "why is my mail
 * to that domain deferred?" and "is my own policy right?". The server's cache is not used or
 * changed. Exit 0 when a policy applies, 1 when none does (or the lookup cannot start), 2 for a
 * wrong command line. */
#ifndef POSTERN_MTA_STS_CLI_H
#define POSTERN_MTA_STS_CLI_H

#include <openssl/ssl.h>
#include <stdio.h>

#include "config.h"

/* client_tls: the outbound TLS context (tls_client_context_new), NULL when smtp_tls is off. */
int mta_sts_cli_main(FILE *out, const struct config *cfg, SSL_CTX *client_tls, int argc, char **argv);

#endif
