/* queue_file.h - reading queue files (spool.c writes them) and the per-message delivery state
 * (spool_dir/state/<qid>). Blocking file I/O: start-up, disk threads and the `postern queue` tool.
 *
 * The queue file never changes after it is committed; what changes (per-recipient outcome, attempt
 * count, next attempt, whether a delay warning went out) lives in the state file, replaced whole
 * (write tmp, fsync, rename, fsync dir) after each attempt. No state file = nothing tried yet. */
#ifndef POSTERN_QUEUE_FILE_H
#define POSTERN_QUEUE_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* Outcome of one recipient, as recorded in the state file. */
enum qrcpt_status {
    QR_PENDING = 'P',   /* not yet delivered (maybe deferred: see diag) */
    QR_DELIVERED = 'D', /* the next hop accepted it */
    QR_FAILED = 'F',    /* permanently failed and the sender notified (or not to be notified) */
    /* the two below wait for a report that could not be stored yet: the next attempt makes it
     * again, and never sends the message to them again */
    QR_FAILED_UNREPORTED = 'R',  /* permanently failed */
    QR_RELAYED_UNREPORTED = 'T', /* NOTIFY=SUCCESS, delivered to a next hop without DSN */
};

struct qrcpt {
    char *addr;
    char *orcpt;            /* NULL when none */
    unsigned notify;        /* NOTIFY_* bits */
    enum qrcpt_status status;
    char *diag;             /* last reply or error, e.g. "550 5.1.1 No such user", or NULL */
    char *remote_mta;       /* the host that gave diag, or NULL */
};

struct qfile {
    char qid[24];
    long long created;
    char *sender;           /* "" = null sender */
    bool smtputf8, body8bit;
    bool tls_optional;      /* TLS-Required: No (RFC 8689): no MTA-STS or DANE for it */
    bool require_tls;       /* REQUIRETLS (RFC 8689 4): verified TLS to a REQUIRETLS next hop only */
    int ret;                /* enum dsn_ret */
    char *envid;            /* NULL when none */
    struct qrcpt *rcpts;
    size_t nrcpts;
    size_t size;            /* message octets */
    size_t body_offset;     /* where the message starts in the file */
    /* state */
    unsigned attempts;
    long long next_attempt; /* unix time; 0 = now */
    bool warned;            /* the delay warning went out */
};

/* Maps the whole file at path read-only (munmap(map, *n) when done); NULL with errno set on
 * failure, ENODATA for an empty file. Pages are read from disk only when touched. */
char *qfile_map(const char *path, size_t *n);

/* Reads the envelope of spool_dir/<dir>/<qid> and its state file if any. 0, or -1 with err. */
int qfile_load(const char *spool_dir, const char *dir, const char *qid, struct qfile *q, char *err, size_t errsz);
void qfile_free(struct qfile *q);

/* Reads the message octets (Received + headers + body, LF line endings) into a new buffer. */
char *qfile_read_message(const char *spool_dir, const char *dir, const struct qfile *q, char *err, size_t errsz);

/* Replaces the state file durably. 0, or -1 with errno set. */
int qfile_save_state(const char *spool_dir, const struct qfile *q);

/* Removes the queue file (durably), then its state file. 0, or -1 with errno set. */
int qfile_remove(const char *spool_dir, const char *dir, const char *qid);

/* Where the queue file of qid is now: "queue", "hold" (`postern queue hold`), or NULL (deleted). */
const char *qfile_where(const char *spool_dir, const char *qid);

/* True when name has the shape of a queue id (upper-case hex, 1-23 characters): file names
 * in the spool and `postern queue` arguments are checked with it. */
bool qfile_id_valid(const char *name);

/* Length of the header section of message text (LF endings): up to and including the LF before
 * the empty line that ends it (0 when the text starts with that line); the whole text when it has
 * no empty line. */
size_t qfile_header_length(const char *text, size_t len);

/* Parses the envelope header in data[0..n) (the start of a queue file). Pure: a fuzz/unit target. */
int qfile_parse_envelope(const char *data, size_t n, struct qfile *q, char *err, size_t errsz);

/* Applies a state file's text to q (recipient lines by index). Pure. */
int qfile_parse_state(const char *data, size_t n, struct qfile *q, char *err, size_t errsz);

#endif
