/* policy.h - who may send what to whom: recipient decisions from the configuration and its tables.
 * Pure lookups after policy_load(); the session maps each verdict to a catalog reply. */
#ifndef POSTERN_POLICY_H
#define POSTERN_POLICY_H

#include <stdbool.h>
#include <sys/socket.h>

#include "access.h"
#include "address.h"
#include "cidr.h"
#include "config.h"
#include "dkim.h"
#include "content_checks.h"
#include "message.h"
#include "next_hop.h"
#include "reply.h"
#include "srs.h"
#include "strmap.h"

#define ALIAS_DEPTH_MAX 8      /* aliases within aliases: deeper is taken for a loop */
#define ALIAS_TARGETS_MAX 1000 /* final recipients one alias expands to */

struct alias_def; /* where each alias is defined (policy.c: kept while the tables load) */

struct policy {
    struct strmap local_domains;
    struct strmap null_mx_domains;
    struct strmap recipients; /* "local@domain" and "@domain" (catch-all), lower-cased */
    struct strmap moved;      /* "local@domain" -> new address as written */
    struct strmap aliases;    /* "local@domain" or "@domain" -> its targets as written, comma-separated */
    struct alias_def *alias_defs; /* while loading: each alias's key and table line, to check them at the end */
    size_t n_alias_defs, alias_defs_cap;
    struct strmap relay_domains;    /* "domain" or ".parent" (its subdomains): accepted from anyone, passed on */
    struct strmap relay_recipients; /* as recipients, for relay_domains; used when relay_recipients is set */
    struct strmap transport;  /* "domain" or ".parent" -> next hop as written (next_hop.h) */
    bool check_relay_recipients;
    struct cidr *relay_networks;
    size_t n_relay_networks;
    struct cidr *spf_skip;    /* spf_skip_networks */
    size_t n_spf_skip;
    char *recipient_delimiter;
    char *postmaster_domain;  /* where a bare <Postmaster> goes: the first local domain */
    struct dkim_keys dkim;    /* the keys that sign mail sent from here (dkim_keys; reloaded with the tables) */
    struct srs srs;           /* srs_domain, srs_secret, srs_max_age (reloaded with the tables) */
    struct access_tables access; /* client_access, sender_access (reloaded with the tables) */
    struct content_rules header_checks;      /* header_checks (content_checks.h) */
    struct content_rules mime_header_checks; /* mime_header_checks */
    struct content_rules body_checks;        /* body_checks */
    struct strmap tls_policy; /* smtp_tls_policy: destination, ".parent" or next hop -> level name */
    struct strmap quotas;     /* mailbox_quotas: "local@domain" or "@domain" -> octets, in decimal */
    struct quota_limit quota_default; /* mailbox_quota, mailbox_quota_messages */
    unsigned quota_warning;   /* mailbox_quota_warning: percent; 0: no notice */
    bool quotas_on;           /* some mailbox may have a quota */
    bool tls_policy_dane;     /* smtp_tls_policy has dane or dane-only lines: DNSSEC must validate */
};

enum rcpt_kind { RCPT_LOCAL, RCPT_RELAY, RCPT_ALIAS, RCPT_REFUSED };

struct rcpt_verdict {
    enum rcpt_kind kind;
    enum reply_id reply;      /* the reply to send (OK row or the refusal) */
    const char *reason;       /* short reason for the log */
    const char *moved_to;     /* for USER_MOVED: the new address */
    char local[ADDR_LOCAL_MAX + 1];   /* RCPT_LOCAL: mailbox name: lower-cased, extension removed */
    char domain[ADDR_DOMAIN_MAX + 1]; /* RCPT_LOCAL: lower-cased domain */
    bool routed;              /* RCPT_RELAY: relay_domains or a transport entry says where it goes */
    bool lmtp;                /* RCPT_LOCAL: the domain's transport entry is an LMTP server: queued for it */
    const char *alias_targets; /* RCPT_ALIAS: the alias's targets, comma-separated (policy_expand_alias) */
};

/* True when the recipient's copy is queued (relayed, or for its domain's LMTP server) rather than
 * written to its Maildir at once. */
static inline bool rcpt_queued(const struct rcpt_verdict *v)
{
    return v->kind == RCPT_RELAY || v->lmtp;
}

/* The message recipient a verdict makes of address addr: queued (relay, LMTP) or its mailbox. The
 * DSN fields (notify, orcpt) are left as they are. */
void policy_rcpt_fill(struct msg_rcpt *r, const char *addr, const struct rcpt_verdict *v);

/* One final recipient of an alias with its verdict (local or relayed; refused when the tables
 * changed under a check); false stops the expansion. */
typedef bool (*alias_target_fn)(void *arg, const struct mailbox *mb, const struct rcpt_verdict *v);

/* Expands the alias that gave verdict alias for mailbox mb: each target as a RCPT from a client
 * that may relay would be decided, aliases among them expanded in turn - but a target naming mb
 * itself is its mailbox ("alice: alice, archive@..." keeps a copy). fn gets each final recipient
 * in table order, duplicates included. False, with *err, when the aliases nest deeper than
 * ALIAS_DEPTH_MAX (a loop), expand to more than ALIAS_TARGETS_MAX, or fn said stop. */
bool policy_expand_alias(const struct policy *p, const struct mailbox *mb, const struct rcpt_verdict *alias,
                         alias_target_fn fn, void *arg, const char **err);

/* A recipient at srs_domain whose local part is an SRS0 address (srs.h): the sender it stands for
 * into out (SRS_VALID: relayed back to it from any client), or why it leads nowhere; SRS_NOT_SRS
 * for every other recipient. */
enum srs_verdict policy_srs_recipient(const struct policy *p, const struct mailbox *mb, long long now,
                                      struct mailbox *out);

/* smtp_tls_policy's level for a destination (a recipient domain: its own entry, else its nearest
 * ".parent" one; a configured next hop: its entry as written), or TLS_POLICY_DEFAULT. */
enum tls_policy policy_tls_for(const struct policy *p, const struct next_hop *hop);

/* The quota of the local mailbox (local, domain), canonical as a verdict has them: its
 * mailbox_quotas line, else its domain's ("@domain"), else mailbox_quota; 0: none. */
struct quota_limit policy_quota(const struct policy *p, const char *local, const char *domain);

/* Builds the tables; errors name the config file:line: key, or table file:line: key. */
bool policy_load(struct policy *p, const struct config *cfg, struct config_errors *errs);
void policy_free(struct policy *p);

/* True when the client address is inside spf_skip_networks. */
bool policy_spf_skipped(const struct policy *p, const struct sockaddr *client);

/* True when the client address is inside relay_networks. */
bool policy_may_relay(const struct policy *p, const struct sockaddr *client);

/* Decides a syntactically valid recipient, in the order: null MX, moved, relay domain, relay,
 * then for a local domain: alias (the address, or without its extension), mailbox, postmaster,
 * "@domain" alias, "@domain" recipients entry. */
void policy_check_rcpt(const struct policy *p, const struct mailbox *mb, bool may_relay, struct rcpt_verdict *v);

/* The transport table's next hop for a canonical domain (its own entry, else the nearest
 * ".parent" entry), with default_port when the entry names none; false when none applies. */
bool policy_transport(const struct policy *p, const char *domain, unsigned default_port, struct next_hop *hop);

/* Where the queue sends mail for a canonical remote domain: its transport entry, else relay_host,
 * else the domain's own mail exchangers (smtp_port). */
void policy_next_hop(const struct policy *p, const struct config *cfg, const char *domain, struct next_hop *hop);

#endif
