/* auth.h - submission users: the `users` table (address:crypt-hash[:alias,...]), password checks
 * with crypt(3) (blocking and slow on purpose: run it on a disk thread), the "may this user send
 * as that address" rule, and a per-client-address failure counter. Never logs a password. */
#ifndef POSTERN_AUTH_H
#define POSTERN_AUTH_H

#include <stdbool.h>

#include "config.h"
#include "strmap.h"

struct auth_users {
    struct strmap users; /* lower-cased login address -> "hash" or "hash:alias,alias" */
};

/* Loads cfg->users (if set); errors name the table file and line. */
bool auth_users_load(struct auth_users *u, const struct config *cfg, struct config_errors *errs);
void auth_users_free(struct auth_users *u);
bool auth_users_present(const struct auth_users *u);

/* Copies login's crypt hash into hash (loop thread: the table may be replaced by a reload, so no
 * other thread reads it); an unknown login gets a real hash of a random password, so that its
 * check costs a full crypt(3) too. Returns whether the login is known. */
bool auth_user_hash(const struct auth_users *u, const char *login, char *hash, size_t hashsz);

/* True when password matches hash: crypt(3), slow on purpose (a disk thread), constant-time compare. */
bool auth_verify_hash(const char *hash, const char *password);

/* True when the authenticated login may use sender: itself, one of its aliases, or <>, also with
 * an address extension ("alice+lists@", when delimiter holds '+'), as users expect to send from the
 * extended addresses they receive at. */
bool auth_may_send_as(const struct auth_users *u, const char *login, const char *sender, const char *delimiter);

/* A fresh crypt(3) hash of password with the system's preferred method (yescrypt on Debian);
 * NULL on failure. The caller frees it. */
char *auth_hash_password(const char *password);

/* Failed attempts per client address, forgotten after 15 minutes. */
unsigned auth_failures(const char *ip, double now);
unsigned auth_failure_add(const char *ip, double now);

#endif
