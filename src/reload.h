/* reload.h - SIGHUP: apply what an administrator edits most without a restart. */
#ifndef POSTERN_RELOAD_H
#define POSTERN_RELOAD_H

struct server;

/* Re-reads the configuration file and applies, all or nothing, what can change while the server
 * runs: the recipients, moved and users tables, local_domains, relay_networks, null_mx_domains,
 * recipient_delimiter, log_level, and the TLS certificate, key, versions and ciphers (for new
 * connections; sessions in progress keep theirs). With any error nothing changes and each error
 * is logged (event=reload_failed). Other keys that differ are named (event=reload_needs_restart):
 * they take effect at the next start. Loop thread only; the files are read as the server's user. */
void server_reload(struct server *srv);

#endif
