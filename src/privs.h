/* privs.h - dropping root: started as root, Postern binds its ports, hands its storage directories
 * to the configured user, and becomes that user for good before serving anyone. */
#ifndef POSTERN_PRIVS_H
#define POSTERN_PRIVS_H

#include <stdbool.h>

#include "config.h"

/* When running as root: cfg->user must name an account other than root; else an error naming
 * file:line: user is added (check-config and start-up, before any port is bound). */
bool privs_check(const struct config *cfg, struct config_errors *errs);

/* When running as root: chown mail_dir/spool_dir (directories only, three levels deep) to
 * cfg->user, then setgroups/setgid/setuid to it, and check that root cannot be regained.
 * When not root: does nothing. False (logged, naming the key) on any failure. */
bool privs_drop(const struct config *cfg);

#endif
