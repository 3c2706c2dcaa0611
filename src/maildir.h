/* maildir.h - durable Maildir delivery (blocking: call from a disk thread, never the event loop).
 * Layout: <mail_dir>/<domain>/<mailbox>/{tmp,new,cur}. A message is written once to tmp/, made
 * durable, hard-linked into each recipient's new/ (copied when on another file system), and the links
 * made durable: only then is it delivered. The durability steps are the caller's (commit.c flushes a
 * whole batch at once). Path parts are encoded so no address can escape mail_dir. */
#ifndef POSTERN_MAILDIR_H
#define POSTERN_MAILDIR_H

#include <stdbool.h>
#include <stddef.h>

#include "message.h"

/* Writes the safe file-name form of an address part into out: bytes outside [A-Za-z0-9 and
 * !#$&'*+-=?^_`{|}~.] and non-ASCII bytes kept as is, '/', '%' and controls as %XX, and a
 * leading '.' as %2E. Returns false when it does not fit. */
bool maildir_safe_name(const char *in, char *out, size_t outsz);

/* Writes <mail_dir>/<domain>/<local>, each part in its safe form, into out: the mailbox's directory.
 * False when it does not fit. */
bool maildir_path(const char *mail_dir, const char *local, const char *domain, char *out, size_t outsz);

/* Can the mailbox dir take a message of `room` octets now? Makes it if missing (as a delivery would),
 * makes a file of that size (at least 4 KiB) in its tmp/ and removes it, checks that new/ is
 * writable. 0, or -1 with err filled. Blocking. */
int maildir_probe(const char *mail_dir, const char *dir, size_t room, char *err, size_t errsz);

/* Commit phase 1: creates the recipients' mailboxes (durably) and writes the message once into the
 * first one's tmp/, without fsync: the caller's file-system flush makes it durable. */
void maildir_stage(struct message *m);

/* Commit phase 2, after that flush: links the file into every recipient's new/ (a copy, fsynced,
 * across file systems). The caller flushes again before the message counts as delivered. */
void maildir_publish(struct message *m);

/* The targeted flushes for a small batch: fsync the staged file (after stage), fsync each new/ that
 * got the message (after publish). 0, or -1 with m->status/error set. */
int maildir_sync_staged(struct message *m);
int maildir_sync_published(struct message *m);

/* Roll-back: removes the links made in new/ (all recipients or none). */
void maildir_unpublish(struct message *m);

/* Removes the tmp/ file (after publishing, or on failure). */
void maildir_drop_tmp(struct message *m);

#endif
