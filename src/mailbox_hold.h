/* mailbox_hold.h - mailboxes held after a failed delivery. A mailbox that cannot take a message
 * (read-only, its own disk full, broken) makes that message 451 for all its recipients: one DATA
 * reply answers for every RCPT. So that it does not hold back the other recipients' mail again on
 * the sender's retry, it is held: RCPTs for it get 450 4.2.0 (the sender retries that recipient
 * alone) until a probe on a disk thread, every mailbox_recheck_interval, finds it writable again.
 * Loop thread only (probes report back there). */
#ifndef POSTERN_MAILBOX_HOLD_H
#define POSTERN_MAILBOX_HOLD_H

#include <stdbool.h>
#include <sys/types.h>

struct event_base;
struct message;
struct workq;

struct mailbox_holds;

/* An empty table probing its mailboxes every recheck_seconds on the disk threads; at most max held
 * at once (a failure beyond that is not held: the next message for it tries it again). A full
 * mail_dev (mail_dir's file system) holds no mailbox: that is the space watch's. NULL when out of
 * memory. */
struct mailbox_holds *mailbox_holds_new(struct event_base *base, struct workq *disk, const char *mail_dir,
                                        dev_t mail_dev, unsigned recheck_seconds, unsigned max);

/* Stops probing and frees the table; call after the disk threads are stopped. */
void mailbox_holds_free(struct mailbox_holds *h);

/* After a failed commit: holds the mailbox the failure was in, if it was in one. */
void mailbox_holds_note_failure(struct mailbox_holds *h, const struct message *m);

/* How many mailboxes are held now. */
unsigned mailbox_holds_count(const struct mailbox_holds *h);

/* True when the local mailbox (local, domain) is held. */
bool mailbox_is_held(const struct mailbox_holds *h, const char *local, const char *domain);

/* True when the mailbox's Maildir++ folder (<mailbox>/.folder, e.g. the DMARC quarantine's Junk)
 * is held: it failed while the mailbox itself may be fine. */
bool mailbox_folder_is_held(const struct mailbox_holds *h, const char *local, const char *domain, const char *folder);

#endif
