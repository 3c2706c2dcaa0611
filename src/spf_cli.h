/* spf_cli.h - postern [-c FILE] spf CLIENT-IP SENDER [HELO-NAME]: the SPF result (spf.h) mail from
 * SENDER (or, for the null sender "<>", from postmaster@HELO-NAME) sent by a client at CLIENT-IP
 * gets, asked with this configuration's resolver as the server asks at MAIL - the HELO name first
 * when given (RFC 7208 2.3: its fail decides) - and what spf_policy then does with a fail. For "why was this refused?" and "is my record right?". Exit 0 for pass,
 * 1 for any other result or a resolver that cannot start, 2 for a wrong command line. */
#ifndef POSTERN_SPF_CLI_H
#define POSTERN_SPF_CLI_H

#include <stdio.h>

#include "config.h"

int spf_cli_main(FILE *out, const struct config *cfg, int argc, char **argv);

#endif
