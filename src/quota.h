/* quota.h - mailbox quotas on the loop thread: what each mailbox with a quota uses, read from its
 * maildirsize (maildirsize.h) on a disk thread and remembered, so that RCPT can answer "mailbox
 * full" (452 4.2.2) without the event loop touching the disk. A usage read is trusted for
 * mailbox_quota_recheck seconds (mail removed through IMAP frees room within that), and the
 * deliveries made meanwhile are added to it as their commits end. Loop thread only. */
#ifndef POSTERN_QUOTA_H
#define POSTERN_QUOTA_H

#include <stdbool.h>

#include "maildirsize.h"

#define QUOTA_ENTRIES_MAX 100000 /* mailboxes remembered at once (about 100 octets each, plus the path) */

struct quotas;
struct quota_wait;
struct workq;

/* Called on the loop thread with the usage read (NULL: the mailbox could not be read). */
typedef void (*quota_fn)(void *arg, const struct quota_usage *u);

/* An empty table whose reads run on disk; NULL when out of memory. */
struct quotas *quotas_new(struct workq *disk, unsigned recheck_seconds);

/* Frees the table; call after the disk threads are stopped (their reads have reported back). */
void quotas_free(struct quotas *q);

/* The usage of the mailbox directory dir as known now: true when one was read less than the
 * recheck interval ago - or, with any_age, at all. */
bool quota_known(const struct quotas *q, const char *dir, bool any_age, struct quota_usage *u);

/* Reads dir's usage under the quota limit on a disk thread; fn(arg, usage) runs on the
 * loop thread once it is known (a read already under way for dir is shared). NULL when out of
 * memory: fn is never called. */
struct quota_wait *quota_fetch(struct quotas *q, const char *dir, struct quota_limit limit, quota_fn fn, void *arg);

/* The waiter is gone (its session closed): fn will not be called. */
void quota_wait_cancel(struct quota_wait *w);

/* A message of octets was delivered to dir: its known usage grows by it. True, with the usage
 * now in *after, when dir's usage is known. */
bool quota_note_delivery(struct quotas *q, const char *dir, unsigned long long octets, struct quota_usage *after);

#endif
