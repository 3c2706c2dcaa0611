/* maildirsize.h - a mailbox's usage as the Maildir++ quota convention keeps it: the file
 * <mailbox>/maildirsize, whose first line is the quota ("<octets>S", maybe ",<messages>C") and each
 * further line "<octets> <messages>" one change (a delivery, or an IMAP server's expunge, negative),
 * so that Dovecot, Courier and maildrop reading the same mailbox agree with Postern. The sum of the
 * lines is the usage. The file is rebuilt from the mailbox's files when it is missing, holds a
 * quota other than ours, has a line that cannot be read, has grown to MAILDIRSIZE_REBUILD_SIZE, or
 * says the mailbox is full and has not changed for MAILDIRSIZE_FULL_RECHECK seconds (mail removed
 * by something that does not write the file). Approximate by design, as Maildir++ is: two writers
 * at once may lose a line until the next rebuild. Blocking: disk threads only. */
#ifndef POSTERN_MAILDIRSIZE_H
#define POSTERN_MAILDIRSIZE_H

#include <stdbool.h>
#include <stddef.h>

#define MAILDIRSIZE_REBUILD_SIZE 5120  /* octets: the Maildir++ convention's */
#define MAILDIRSIZE_FULL_RECHECK 900   /* seconds: the Maildir++ convention's 15 minutes */

struct quota_usage {
    unsigned long long octets;
    unsigned long long messages;
};

/* A mailbox's quota: octets and messages it may hold, 0 for no limit on that count (Maildir++'s
 * "<octets>S,<messages>C"). Neither set: no quota. */
struct quota_limit {
    unsigned long long octets;
    unsigned long long messages;
};

/* True when l limits anything (octets or messages): the mailbox has a quota. */
bool quota_set(struct quota_limit l);

/* True when u is at or over either limit of l (no room for another message). */
bool quota_full(struct quota_limit l, const struct quota_usage *u);

/* The usage of the mailbox directory dir under the quota limit, from its maildirsize
 * (rebuilt when need be, see above). A mailbox that does not exist yet uses nothing (no file is
 * made for it). 0, or -1 with err filled (the mailbox cannot be read). */
int maildirsize_read(const char *dir, struct quota_limit limit, struct quota_usage *u, char *err, size_t errsz);

/* The same usage, for a reader that must not write the mailbox (`postern route`, run as root): a
 * file that would be rebuilt is counted past instead. */
int maildirsize_peek(const char *dir, struct quota_limit limit, struct quota_usage *u, char *err, size_t errsz);

/* Counts the mailbox's messages (new/ and cur/ of the inbox and of each Maildir++ folder, a
 * file's size taken from a ",S=<octets>" in its name, else from the file) and writes maildirsize
 * anew with limit as its quota line (through tmp/, renamed into place). 0, or -1 with err filled. */
int maildirsize_rebuild(const char *dir, struct quota_limit limit, struct quota_usage *u, char *err, size_t errsz);

/* One delivery of octets to dir, just linked into it: a line appended to its maildirsize, or the
 * file made (rebuilt, under a quota of limit octets) when it has none - a new mailbox. Not
 * flushed: the file is a cache of what the mailbox holds. */
void maildirsize_add(const char *dir, unsigned long long octets, struct quota_limit limit);

#endif
