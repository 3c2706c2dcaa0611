/* config.h - the configuration: a typed table of keys {name, type, default, min, max, meaning}.
 * Every error names file:line: key. Defaults go through the same parser as the file's values. */
#ifndef POSTERN_CONFIG_H
#define POSTERN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "next_hop.h"

struct strlist {
    char **items;
    size_t count;
};

#define DURLIST_MAX 16
struct durlist {
    unsigned v[DURLIST_MAX]; /* seconds */
    size_t count;
};

#define FOLDER_NAME_MAX 64 /* dmarc_quarantine_folder: a Maildir++ folder name */
#define DNSBL_ZONES_MAX 8 /* dnsbl_zones: lookups per connection */

/* What a check of received mail does with its result: nothing (not asked), a header field, or
 * also refusing what fails (spf_policy, dmarc_policy). */
enum check_policy { POLICY_OFF, POLICY_HEADER, POLICY_REJECT };

struct config {
    char *path;                   /* the file read */
    char *hostname;
    char *user;                   /* account to run as when started as root */
    struct strlist listen;        /* "host:port" entries, validated (MX role) */
    struct strlist submission_listen; /* port 587 role: STARTTLS then AUTH required */
    struct strlist smtps_listen;  /* port 465 role: implicit TLS (RFC 8314), AUTH required */
    struct strlist metrics_listen; /* Prometheus endpoint (metrics.c); empty = none */
    char *tls_cert;               /* PEM chain, "" = no TLS */
    char *tls_key;
    char *tls_min_version;        /* TLSv1, TLSv1.1, TLSv1.2, TLSv1.3 */
    char *tls_ciphers;            /* OpenSSL cipher list for TLS <= 1.2 */
    unsigned tls_cert_check_interval; /* seconds between the running server's certificate checks; 0 = none */
    bool mx_auth;                 /* offer AUTH on the MX listeners too */
    char *users;                  /* table file address:crypt-hash[:alias,...] or "" */
    unsigned max_auth_failures;   /* per client address, then 421 4.7.0 */
    unsigned auth_failure_delay;  /* milliseconds, times the failure count */
    char *mail_dir;
    char *spool_dir;
    struct strlist local_domains; /* lower-cased */
    char *recipients;             /* table file or "" */
    char *aliases;                /* alias table file or "" (policy.h) */
    char *moved;                  /* table file or "" */
    char *client_access;          /* table file or "" (access.h) */
    char *sender_access;          /* table file or "" (access.h) */
    char *helo_access;            /* table file or "" (access.h) */
    struct strlist relay_networks;/* CIDR texts, validated */
    struct strlist spf_skip_networks; /* CIDR texts, validated: clients SPF is not asked about */
    struct strlist proxy_addresses; /* CIDR texts: this server's addresses behind NAT (mail loop check) */
    struct strlist dnsbl_zones;   /* DNS block lists asked about MX clients (smtp_dnsbl.c) */
    struct strlist null_mx_domains;
    struct strlist relay_domains; /* lower-cased: accepted from anyone, passed on */
    char *relay_recipients;       /* table file or "" */
    char *transport;              /* table file or "" */
    bool accept_mail;
    bool add_missing_headers;     /* submitted mail gets the Message-ID and Date it lacks */
    char *dkim_keys;              /* DKIM signing key table (dkim.h) or "" */
    char *srs_domain;             /* "" or the domain of SRS addresses (srs.h) */
    char *tls_report_organization, *tls_report_contact; /* "": hostname, postmaster@hostname (tlsrpt_send.c) */
    unsigned tls_report_interval; /* seconds each TLS report covers */
    char *dmarc_report_organization, *dmarc_report_contact; /* "": hostname, postmaster@hostname (dmarcrpt_send.c) */
    unsigned dmarc_report_interval; /* seconds each DMARC aggregate report covers */
    char *srs_secret;             /* "" or the file of SRS secrets, one per line */
    unsigned srs_max_age;         /* seconds an SRS bounce address stays valid */
    unsigned mailbox_quota_recheck; /* seconds a mailbox's usage read is trusted */
    size_t max_message_size;
    unsigned max_recipients;
    unsigned mailbox_quota_warning; /* percent of a quota at which its owner gets a notice; 0 = none */
    unsigned mailbox_quota_messages; /* messages a local mailbox may hold (Maildir++ 'C'); 0: no limit */
    char *recipient_delimiter;
    unsigned max_command_line;
    unsigned max_errors;
    unsigned max_refused_recipients;
    unsigned max_hops;            /* Received fields at which a message is refused as looping */
    unsigned max_connections;
    unsigned max_connections_per_ip;
    unsigned max_connection_rate_per_ip; /* per minute, MX role; 0 = no limit */
    unsigned max_recipient_rate_per_user; /* per hour, authenticated users; 0 = no limit */
    unsigned greylist_delay, greylist_retry_window, greylist_max_age; /* seconds (greylist.h) */
    unsigned greylist_auto_allow, greylist_max_entries;
    unsigned command_timeout;     /* seconds */
    unsigned data_timeout;
    unsigned shutdown_grace;
    unsigned greet_delay;
    unsigned min_data_rate;       /* octets per second */
    unsigned data_rate_grace;     /* seconds before min_data_rate applies */
    unsigned io_threads;
    unsigned commit_batch_max;    /* messages made durable together at most */
    bool commit_journal;          /* local mail is durable through spool_dir/journal */
    size_t journal_size;          /* octets */
    size_t journal_message_max;   /* octets; bigger messages take the direct commit path */
    unsigned journal_checkpoint_interval; /* seconds */
    unsigned file_pool_size;      /* unnamed files kept ready in mail_dir (0 = off) */
    unsigned mailbox_recheck_interval; /* seconds between probes of a held mailbox */
    unsigned mailbox_hold_max;    /* mailboxes held at once; 0: none is held */
    size_t min_free_space;        /* octets free on mail_dir and spool_dir below which MAIL gets 452 */
    size_t mailbox_quota;         /* octets a local mailbox may hold (maildirsize); 0: no quota */
    char *mailbox_quotas;         /* table file of per-mailbox quotas or "" */
    char *header_checks;          /* table file of header field rules (content_checks.h) or "" */
    char *mime_header_checks;     /* table file of rules on the header fields of parts and attached messages */
    char *body_checks;            /* table file of rules on the lines of the text */
    size_t body_checks_size_limit; /* octets of text (outside header blocks) body_checks looks at */
    /* outbound relay (queue.c, dns.c, smtp_client.c) */
    struct strlist dns_resolver;  /* "ip[@port]" forwarders; empty = /etc/resolv.conf */
    char *dns_trust_anchor;       /* DNSSEC trust anchor file or "" */
    char *smtp_tls_ca_file;       /* CAs for smtp_tls_verify, "" = the system's */
    char *smtp_tls_policy;        /* table file of TLS levels per destination, or "" */
    struct durlist retry_schedule;/* delays between attempts, the last one repeats */
    unsigned dns_timeout;         /* seconds a MAIL/RCPT-time lookup may hold the reply */
    unsigned smtp_port;           /* destination port of outbound SMTP */
    char *relay_host;             /* "" or where all outbound mail goes: host, [host] or [address], :port */
    char *dmarc_quarantine_folder;/* "" or the Maildir++ folder of local copies DMARC quarantines */
    struct next_hop relay_hop;    /* relay_host parsed (relay_hop.relay_host set) */
    char *relay_host_auth;        /* "" or the file with relay_host's user:password */
    char *tls_sni;                /* "" or the table of per-name certificates (tls_sni.c) */
    char *smtp_bind_address;      /* "" or the IPv4 address outbound connections come from */
    char *smtp_bind_address6;     /* "" or the IPv6 address outbound connections come from */
    char relay_user[256], relay_password[256]; /* read from it ("" = no AUTH); wiped by config_free */
    unsigned metrics_max_connections; /* scrape connections open at once */
    unsigned max_queue_lifetime;  /* seconds, then bounce */
    unsigned delay_warning_time;  /* seconds, 0 = no delay warnings */
    unsigned destination_concurrency; /* connections per destination domain */
    unsigned max_deliveries;      /* outbound connections in all */
    unsigned destination_recipient_limit; /* RCPTs per outbound transaction */
    unsigned dns_outage_pause;    /* seconds MAIL/RCPT-time lookups are skipped after 3 timeouts in a row */
    unsigned smtp_connect_timeout, smtp_greeting_timeout, smtp_command_timeout;
    unsigned smtp_data_init_timeout, smtp_data_block_timeout, smtp_data_done_timeout;
    unsigned smtp_mta_sts_timeout; /* seconds an MTA-STS policy fetch may take */
    enum check_policy spf_policy; /* what an SPF result does (spf.h, smtp_spf.c) */
    enum check_policy dmarc_policy; /* what a DMARC result does (dmarc.h, smtp_msgauth.c) */
    enum check_policy client_name_check; /* the client's confirmed name (smtp_rdns.c) */
    bool greylisting;             /* MX role: greylisting at RCPT (smtp_greylist.c) */
    bool tls_reports;             /* SMTP TLS Reporting, RFC 8460 (tlsrpt_send.c) */
    bool dmarc_reports;           /* DMARC aggregate reports, RFC 7489 7.2 (dmarcrpt_send.c) */
    bool requiretls;              /* offer REQUIRETLS (RFC 8689) on TLS sessions */
    struct strlist milters;       /* content filters (milter protocol) at end of data (smtp_milter.c) */
    unsigned milter_timeout;      /* seconds a milter may take for each reply */
    bool milter_fail_open;        /* a milter that fails: accept without it, else 451 */
    bool helo_name_check;         /* MX role: 504 5.5.2 for an EHLO name that is no FQDN or address literal */
    bool sender_null_mx_check;    /* MX role: 550 5.7.27 for senders whose domain has a null MX */
    bool sender_domain_check;     /* MX role: 550 5.1.8 / 450 4.1.8 for senders whose domain cannot take mail */
    bool dkim_verify;             /* MX role: verify DKIM signatures, add Authentication-Results (smtp_msgauth.c) */
    bool recipient_domain_check;  /* relayed recipients: 550 5.1.2 when their domain does not exist */
    bool smtp_tls;                /* opportunistic STARTTLS outbound */
    bool smtp_tls_verify;         /* require STARTTLS and a certificate valid for the MX name */
    bool smtp_dane;               /* DANE: TLSA records of DNSSEC-validated MX hosts are enforced */
    bool smtp_mta_sts;            /* MTA-STS (RFC 8461): recipient domains' published TLS policies (mta_sts.h) */
    bool relay_host_implicit_tls; /* relay_host speaks TLS from the first byte (port 465, RFC 8314) */
    int log_level;
    int key_lines[160];            /* line that set each key (index = table row), 0 = default */
};

/* Collected error messages, each "file:line: key: what is wrong". */
struct config_errors {
    char **msgs;
    size_t count;
};

/* "off", "header" or "reject". */
const char *config_policy_name(enum check_policy p);

/* The same items in the same order. */
bool strlists_equal(const struct strlist *a, const struct strlist *b);

void config_errors_add(struct config_errors *errs, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Table files (recipients, aliases, tls_sni, ...): one entry per line, '#' starts a comment,
 * fields split on blanks, at most CONFIG_TABLE_FIELDS per line and lines of 4094 octets. fn gets
 * each line's fields; a false return (with *err) is added to errs as "file:line: key: err: 'field'".
 * A file that cannot be read is an error at key's line of the configuration. */
#define CONFIG_TABLE_FIELDS 64
typedef bool (*config_table_fn)(void *arg, char **fields, int nfields, int lineno, const char **err);
void config_table_read(const struct config *cfg, const char *key, const char *file, config_table_fn fn, void *arg,
                       struct config_errors *errs);
/* The same file reading for a table whose lines are not blank-separated fields (header_checks): fn
 * gets each line whole (its line ending cut; blank lines and those starting with '#' skipped); on
 * an error, *shown may name what the message quotes (default: the line's first field). */
typedef bool (*config_line_fn)(void *arg, char *line, int lineno, const char **err, const char **shown);
void config_lines_read(const struct config *cfg, const char *key, const char *file, config_line_fn fn, void *arg,
                       struct config_errors *errs);
void config_errors_free(struct config_errors *errs);

/* A size as a configuration value writes it (octets, k/M/G suffixes allowed): false when it is none. */
bool config_parse_size(const char *v, unsigned long long *out);

/* Reads path into cfg (defaults first). Returns true when no error was added to errs. */
bool config_load(const char *path, struct config *cfg, struct config_errors *errs);
void config_free(struct config *cfg);

/* The line in cfg->path that set key, or 0 when the key kept its default. */
int config_key_line(const struct config *cfg, const char *key);

/* True when the file key names can be opened for reading; else adds "FILE:LINE: KEY: cannot read
 * PATH: <errno text>" (so a missing file is not reported by a library as something vaguer). */
bool config_file_readable(const struct config *cfg, const char *key, const char *path, struct config_errors *errs);

/* Writes to out the names of the keys (comma-separated) whose values differ between a and b, but
 * not those named in skip (a NULL-terminated list); "" when none. Cut at a whole name to fit. */
void config_changed_keys(const struct config *a, const struct config *b, const char *const *skip, char *out,
                         size_t outsz);

/* Prints every key with its default and meaning (the configuration reference). */
void config_print_reference(FILE *out);

/* Prints "key = value" for every key as this configuration has it (defaults filled in, the host
 * name found), or with only_set the keys the file sets (like postconf -n). */
void config_print_effective(FILE *out, const struct config *cfg, bool only_set);

#endif
