/* tlsa.h - the DANE TLSA records to publish for this server's certificates (tlsa.c). */
#ifndef POSTERN_TLSA_H
#define POSTERN_TLSA_H

#include <stdio.h>

#include "tls.h"

/* postern tlsa-record: the records for hostname (the server context's certificate) and for each
 * tls_sni name (its own), with a comment line before each saying what it pins. 0, or 1 when
 * there is no certificate (said on stderr) or a digest cannot be made. */
int tlsa_print_records(FILE *out, SSL_CTX *server, const char *hostname);

#endif
