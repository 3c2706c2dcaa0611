/* journal.h - the commit journal: a message for local mailboxes is durable once its record (the
 * message bytes and the Maildir names it was linked under) is in spool_dir/journal, written with one
 * fdatasync per batch. A checkpoint thread later flushes the mail file system (syncfs) and retires the
 * records; after a crash, journal_open() puts back every Maildir file of an unretired record that is
 * missing or incomplete. See journal_record.h for the file format. */
#ifndef POSTERN_JOURNAL_H
#define POSTERN_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct journal;
struct message;

struct journal_recovery {
    unsigned records;  /* unretired records found */
    unsigned restored; /* Maildir files written back because they were missing or incomplete */
    unsigned cancelled; /* records not replayed: a cancel record names them */
};

/* Opens spool_dir/journal (created with `size` bytes when missing), recovers it (see above) and
 * starts the checkpoint thread (a checkpoint at least every `interval` seconds while records wait).
 * NULL with a message in err when the journal cannot be used or a file cannot be restored: the
 * journal is then left as it was, so nothing is lost. Blocking: start-up only. */
struct journal *journal_open(const char *spool_dir, const char *mail_dir, uint64_t size, unsigned interval,
                             struct journal_recovery *rec, char *err, size_t errsz);

/* True when a message whose Maildir file has `bytes` octets may be committed through the journal
 * (the journal works and the record takes at most a quarter of it). */
bool journal_accepts(struct journal *j, size_t bytes, size_t ndirs);

/* Links one message's file into its new/ directories (the names its record holds); false when that
 * failed (the message then gets its 451). */
typedef bool (*journal_publish_fn)(struct message *m);

/* Committer thread: appends one record per message (its bytes and the names it is about to get),
 * makes them durable with one fdatasync, and only then calls publish on each: a name appears in new/
 * only when the bytes behind it are on disk, so a power cut can never leave an empty file there.
 * A message whose publish fails gets a cancel record (flushed too), so that a restart does not
 * deliver mail its client was told had failed. The records become the checkpoint's to retire after
 * their publish. 0, or -1 with err (the journal is then out of use: journal_accepts says false from
 * now on); messages published before the failure are committed. May wait for a checkpoint when full. */
int journal_append(struct journal *j, struct message **m, unsigned n, journal_publish_fn publish, char *err,
                   size_t errsz);

/* Final checkpoint (nothing left to recover at the next start), then stops the thread and closes. */
void journal_close(struct journal *j);

#endif
