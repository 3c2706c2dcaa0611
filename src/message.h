/* message.h - one received message on its way to storage: envelope, added headers, body (LF line
 * endings), and the outcome of committing it. Owned by the session until handed to the disk thread. */
#ifndef POSTERN_MESSAGE_H
#define POSTERN_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "address.h"
#include "config.h"
#include "maildirsize.h"

struct evbuffer;
struct file_pool;

/* RCPT NOTIFY= (RFC 3461 4.1); 0 when not given: failures and delays are reported */
enum { NOTIFY_SUCCESS = 1, NOTIFY_FAILURE = 2, NOTIFY_DELAY = 4, NOTIFY_NEVER = 8 };
/* MAIL RET= (RFC 3461 4.3) */
enum dsn_ret { RET_UNSET = 0, RET_FULL, RET_HDRS };

#define DSN_ORCPT_MAX 500 /* RFC 3461 4.2: the parameter may add 500 octets to the command */
#define DSN_ENVID_MAX 100 /* RFC 3461 4.4 */

/* An alias RCPT with NOTIFY=SUCCESS that became several copies: it gets an "expanded" report. */
struct msg_expansion {
    char addr[ADDR_PATH_MAX + 1];     /* the alias, as the client wrote it */
    char *orcpt;                      /* its ORCPT= value, or NULL */
};

struct msg_rcpt {
    char addr[ADDR_PATH_MAX + 1];     /* as the client wrote it (for logs and the spool) */
    unsigned notify;                  /* NOTIFY_* bits */
    char *orcpt;                      /* ORCPT= value as given ("rfc822;xtext"), or NULL */
    bool remote;                      /* relay to another domain (spool) instead of a local Maildir */
    char local[ADDR_LOCAL_MAX + 1];   /* local: the mailbox name */
    char domain[ADDR_DOMAIN_MAX + 1]; /* local: the mailbox domain */
    struct quota_limit quota;         /* local: the mailbox's quota (maildirsize.h); both 0: none */
};

enum commit_status { COMMIT_OK = 0, COMMIT_TEMPFAIL, COMMIT_NOSPACE };

/* What the first commit phase (stage) leaves for the second (publish) and for a roll-back. */
struct commit_stage {
    bool staged;                /* commit_stage ran (on a disk thread, or on the committer) */
    char name[160];             /* the Maildir file name, the same in every mailbox */
    char *tmp_path;             /* the written, not yet linked file, when it has a name; else NULL */
    int tmp_fd;                 /* the same as an unnamed O_TMPFILE inode, or -1 */
    char **dirs;                /* mailbox directories (<mail_dir>/<domain>/<mailbox>) */
    dev_t dev;                  /* the file system of the staged file (the first mailbox's) */
    size_t ndirs, placed;       /* how many, and how many hold the message in new/ */
    bool spool_staged;          /* spool_dir/tmp/<qid> written */
    bool spool_published;      /* renamed into spool_dir/queue */
    char *failed_dir;           /* the mailbox a failure was in (see mailbox_hold.h), or NULL */
    dev_t failed_dev;           /* its file system, when the failure was a full disk */
};

struct message {
    char qid[24];
    char sender[ADDR_PATH_MAX + 1];   /* "" for the null sender */
    struct msg_rcpt *rcpts;
    size_t nrcpts, rcpt_cap;
    size_t nlocal;                    /* how many rcpts are local */
    struct msg_expansion *expanded;   /* aliases to report as expanded (RFC 3464 2.3.3), or NULL */
    size_t nexpanded;
    unsigned long long declared_size; /* MAIL SIZE=, 0 when not given */
    bool smtputf8;
    bool body_8bit;                   /* BODY=8BITMIME */
    bool tls_optional;                /* "TLS-Required: No" (RFC 8689): relayed without the recipient
                                         domain's TLS policies (MTA-STS, DANE) */
    bool require_tls;                 /* MAIL FROM ... REQUIRETLS (RFC 8689 4): relayed only over TLS
                                         verified to a next hop that offers REQUIRETLS too */
    enum dsn_ret ret;                 /* DSN RET= */
    char envid[DSN_ENVID_MAX + 1];    /* DSN ENVID= (xtext as given), "" when none */
    char message_id[128];             /* its Message-ID field's value (cut), for the log; "" when none */
    char folder[FOLDER_NAME_MAX + 1]; /* the local copies' Maildir++ folder (DMARC quarantine), "" = inbox */
    char dkim_signer[400];            /* "domain/selector[+selector]" of the DKIM signatures added, "" when none (log) */
    char *received_spf;               /* the Received-SPF field (smtp_spf.c), or NULL */
    char *spf_method;                 /* the SPF result as an Authentication-Results method, or NULL */
    char *auth_results;               /* the Authentication-Results field (smtp_msgauth.c), or NULL */
    char *spf_refusal;                /* SPF fail under spf_policy = reject: the domain each RCPT but
                                       * postmaster's is refused for (550 5.7.23), or NULL */
    char *spf_explanation;            /* with spf_refusal: the domain's exp= words for the reply, or NULL */
    struct evbuffer *headers;         /* Return-Path and Received, LF endings */
    struct evbuffer *body;            /* message text, LF endings */
    /* set by the committing thread */
    enum commit_status status;
    char error[256];                  /* detail for the log (never sent to the client) */
    int errnum;                       /* the failed system call's errno, when there was one */
    int spf_result;                   /* enum spf_result + 1 of the check at MAIL; 0: not checked */
    const char *mail_dir;
    const char *spool_dir;
    const char *hostname;
    struct file_pool *file_pool;      /* ready unnamed files on mail_dir's file system, or NULL */
    void *owner;                      /* the session waiting for the result */
    struct commit_stage stage;
};

/* A new, empty message with a fresh queue id; NULL when out of memory. */
struct message *message_new(void);

/* This process's id, for queue ids and Maildir names (cached: no system call per message). */
pid_t message_process_id(void);
void message_free(struct message *m);

/* Adds a recipient; false when out of memory. */
bool message_add_rcpt(struct message *m, const struct msg_rcpt *r);

/* What the header section of the message text (body buffer) holds, for the checks after DATA. */
struct header_facts {
    unsigned received;   /* Received fields (a loop shows as many) */
    bool has_message_id; /* a Message-ID field */
    bool has_date;       /* a Date field */
    bool tls_required_no; /* a "TLS-Required: No" field (RFC 8689 5) */
    char message_id[128]; /* the first Message-ID field's value, blanks trimmed, cut to fit */
    size_t header_len;    /* octets of the header section at the start of the body buffer (pulled up) */
};
void message_scan_headers(struct message *m, struct header_facts *f);

/* True when a and b are one recipient: the same local mailbox, or the same remote address (its
 * domain compared case-insensitively, its local part exactly). */
bool msg_rcpt_same(const struct msg_rcpt *a, const struct msg_rcpt *b);

/* True when a recipient the same as r (msg_rcpt_same) is listed: a second copy would be a duplicate. */
bool message_has_rcpt(const struct message *m, const struct msg_rcpt *r);

/* A date-time in RFC 5322 3.3 form, in UTC ("Wed, 02 Dec 2026 18:51:27 +0000"). */
void message_date(long long t, char *out, size_t outsz);

#endif
