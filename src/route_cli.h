/* route_cli.h - `postern route ADDRESS...`: what this configuration does with mail to an address
 * (an administrator's dry run, like exim -bt): refused with which reply, delivered to which Maildir,
 * or passed on to which next hop. No DNS, no server needed. */
#ifndef POSTERN_ROUTE_CLI_H
#define POSTERN_ROUTE_CLI_H

#include <stdio.h>

#include "config.h"
#include "policy.h"

/* Prints one answer per address to out; 0 when every address would be accepted, 1 otherwise,
 * 2 without an address. */
int route_cli_main(FILE *out, const struct config *cfg, const struct policy *p, int argc, char **argv);

#endif
