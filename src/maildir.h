/* maildir.h - durable Maildir delivery (blocking: call from a disk thread, never the event loop).
 * Layout: <mail_dir>/<domain>/<mailbox>/{tmp,new,cur}. A message is written once to tmp/, fsynced,
 * hard-linked into each recipient's new/ (copied when on another file system), and each new/ is
 * fsynced: only then is it delivered. Path parts are encoded so no address can escape mail_dir. */
#ifndef POSTERN_MAILDIR_H
#define POSTERN_MAILDIR_H

#include <stddef.h>
#include <sys/uio.h>

#include "message.h"

/* Writes the safe file-name form of an address part into out: bytes outside [A-Za-z0-9 and
 * !#$&'*+-=?^_`{|}~.] and non-ASCII bytes kept as is, '/', '%' and controls as %XX, and a
 * leading '.' as %2E. Returns false when it does not fit. */
bool maildir_safe_name(const char *in, char *out, size_t outsz);

/* Delivers headers+body of m to every local recipient of m. On failure every copy already made
 * is removed again, m->status says whether to answer 451 or 452 and m->error says why. */
void maildir_deliver(struct message *m);

#endif
