/* config.c - reads `key = value` files into struct config through one typed key table.
 * Limits: lines up to 4095 octets, values bounded by each key's min/max. Never exits or prints:
 * every problem becomes an error message "file:line: key: ..." for the caller to show. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "address.h"
#include "cidr.h"
#include "log.h"

enum key_type { T_STRING, T_PATH, T_OPTPATH, T_BOOL, T_UINT, T_SIZE, T_DURATION, T_LOGLEVEL,
                T_HOSTNAME, T_LISTEN_LIST, T_OPT_LISTEN_LIST, T_DOMAIN_LIST, T_SUFFIX_LIST, T_CIDR_LIST, T_TLS_VERSION,
                T_RESOLVER_LIST, T_DURATION_LIST, T_SPF_POLICY };

struct key_def {
    const char *name;
    enum key_type type;
    size_t offset;
    const char *def;
    unsigned long long min, max;
    const char *meaning;
};

#define F(field) offsetof(struct config, field)
static const struct key_def keys[] = {
    {"hostname", T_HOSTNAME, F(hostname), "", 0, 0,
     "Name this server gives in its greeting, EHLO and Received headers: a fully qualified domain name "
     "(one without a dot is warned about). Default: the system host name."},
    {"user", T_STRING, F(user), "postern", 0, 0,
     "Account the server runs as when started as root (after binding its ports). Never root."},
    {"listen", T_LISTEN_LIST, F(listen), "127.0.0.1:2525", 0, 0,
     "Addresses to accept SMTP on, host:port; IPv6 as [::1]:2525. An address and port (or the wildcard "
     "0.0.0.0 / [::] on its port) may appear once across listen, submission_listen and smtps_listen."},
    {"submission_listen", T_OPT_LISTEN_LIST, F(submission_listen), "", 0, 0,
     "Submission addresses (port 587 role, RFC 6409): STARTTLS required before AUTH or MAIL, then AUTH. "
     "Default: none."},
    {"smtps_listen", T_OPT_LISTEN_LIST, F(smtps_listen), "", 0, 0,
     "Implicit-TLS submission addresses (port 465 role, RFC 8314), AUTH required. Default: none."},
    {"metrics_listen", T_OPT_LISTEN_LIST, F(metrics_listen), "", 0, 0,
     "Addresses (host:port) serving Prometheus metrics over HTTP at /metrics: connections, replies by "
     "reason, messages, latency of the 250, deliveries, queue, disk. No password: keep it on loopback or a "
     "monitoring network. Default: none (at most 16)."},
    {"metrics_max_connections", T_UINT, F(metrics_max_connections), "16", 1, 1000,
     "Scrape connections metrics_listen holds open at once; more are closed as they come."},
    {"tls_cert", T_OPTPATH, F(tls_cert), "", 0, 0,
     "PEM certificate (chain allowed, leaf first). Unset: no TLS (no STARTTLS, no submission)."},
    {"tls_key", T_OPTPATH, F(tls_key), "", 0, 0, "PEM private key of tls_cert."},
    {"tls_sni", T_OPTPATH, F(tls_sni), "", 0, 0,
     "Table file of certificates by the name a TLS client asks for (SNI): 'name certfile keyfile' per line, name a "
     "host name or *.domain; other names (or none) get tls_cert. Reloaded with tls_cert."},
    {"tls_min_version", T_TLS_VERSION, F(tls_min_version), "TLSv1.2", 0, 0,
     "Oldest TLS version accepted: TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3."},
    {"tls_ciphers", T_STRING, F(tls_ciphers), "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL:!MD5:!DSS", 0,
     0, "OpenSSL cipher list for TLS 1.2 and older (TLS 1.3 suites are OpenSSL's defaults)."},
    {"tls_cert_check_interval", T_DURATION, F(tls_cert_check_interval), "1d", 0, 2592000 /* 30 days */,
     "How often the running server looks at its certificate again, as start-up and reload do: a warning "
     "each time it expires within 14 days (or has) or does not name hostname. 0 = at start-up and reload only."},
    {"mx_auth", T_BOOL, F(mx_auth), "no", 0, 0, "yes: offer AUTH (over TLS) on the listen (MX) addresses too."},
    {"users", T_OPTPATH, F(users), "", 0, 0,
     "Table file of submission users: address:crypt-hash[:alias,alias...] per line; hashes from "
     "`postern passwd` (yescrypt or SHA-512 crypt)."},
    {"max_auth_failures", T_UINT, F(max_auth_failures), "5", 1, 1000,
     "Failed AUTH attempts per client address (within 15 minutes) before 421 4.7.0."},
    {"auth_failure_delay", T_UINT, F(auth_failure_delay), "1000", 0, 60000,
     "Milliseconds of delay before a 535 reply, times the client's failure count."},
    {"mail_dir", T_PATH, F(mail_dir), "var/mail", 0, 0,
     "Maildir root: mail for local@domain goes to <mail_dir>/<domain>/<local>/{tmp,new,cur}."},
    {"spool_dir", T_PATH, F(spool_dir), "var/spool", 0, 0,
     "Queue directory for messages accepted for relay to other domains."},
    {"local_domains", T_DOMAIN_LIST, F(local_domains), "localhost", 0, 0,
     "Domains whose mail is delivered here (case-insensitive)."},
    {"recipients", T_OPTPATH, F(recipients), "", 0, 0,
     "Table file of valid local recipients: one address per line, @domain = any address at domain. "
     "Unset: only postmaster is accepted."},
    {"moved", T_OPTPATH, F(moved), "", 0, 0,
     "Table file of moved users: 'old-address new-address' per line; RCPT gets 551 5.1.6 naming the new one."},
    {"aliases", T_OPTPATH, F(aliases), "", 0, 0,
     "Table file of aliases: 'address target[, target...]' per line (or 'address: targets'; @domain = the "
     "local domain's addresses that are no mailbox). Mail for the address goes to each target instead, local "
     "mailbox or remote address; aliases within aliases are followed, and an alias that names itself keeps "
     "a copy in its mailbox. Every target is checked at load."},
    {"relay_networks", T_CIDR_LIST, F(relay_networks), "", 0, 0,
     "Client networks (CIDR) allowed to send to non-local domains. Default: none."},
    {"proxy_addresses", T_CIDR_LIST, F(proxy_addresses), "", 0, 0,
     "Addresses (or CIDR networks) this server receives mail on through NAT or a proxy but has on none of "
     "its interfaces, e.g. the public address its MX record names. A mail exchanger there is this server "
     "itself: its mail is not sent there (RFC 5321 5.1 loop check). Default: none."},
    {"dnsbl_zones", T_DOMAIN_LIST, F(dnsbl_zones), "", 0, 0,
     "DNS block lists (RFC 5782) to look each MX client up in, e.g. zen.spamhaus.org (at most 8): a listed "
     "client gets 554 5.7.1 at RCPT (postmaster excepted). Not relay_networks or submission clients. The "
     "lists' terms apply; big ones refuse queries through public resolvers. Default: none."},
    {"null_mx_domains", T_DOMAIN_LIST, F(null_mx_domains), "", 0, 0,
     "Domains that publish a null MX (RFC 7505): RCPT gets 556 5.1.10."},
    {"relay_domains", T_SUFFIX_LIST, F(relay_domains), "", 0, 0,
     "Domains this server accepts mail for from any client and passes on (a backup MX, or a gateway in "
     "front of an internal server): to their transport entry, else relay_host, else their mail exchangers. "
     ".domain: every subdomain of domain."},
    {"relay_recipients", T_OPTPATH, F(relay_recipients), "", 0, 0,
     "Table file of the valid addresses in relay_domains (as recipients: one per line, @domain = any); "
     "others get 550 5.1.1. Unset: every address there is accepted (and bounces come back from the next hop)."},
    {"transport", T_OPTPATH, F(transport), "", 0, 0,
     "Table file of routes: 'domain next-hop' per line (next-hop as relay_host: [host]:port, [address], "
     "name; or an LMTP server: lmtp:[host]:port, lmtp:unix:/path - a local domain too, e.g. Dovecot's "
     "mailboxes); '.domain' also covers its subdomains. Before relay_host; no MX lookup of the domain."},
    {"accept_mail", T_BOOL, F(accept_mail), "yes", 0, 0,
     "no: greet with 521 5.3.2 and refuse every command but QUIT (RFC 7504)."},
    {"max_message_size", T_SIZE, F(max_message_size), "36700160", 1024, 1ull << 34,
     "Largest message accepted, in octets (k, M, G suffixes allowed)."},
    {"max_recipients", T_UINT, F(max_recipients), "1000", 1, 100000,
     "Recipients per transaction; more get 452 4.5.3."},
    {"recipient_delimiter", T_STRING, F(recipient_delimiter), "+", 0, 0,
     "Characters that start an address extension: alice+tag@ is alice. Empty: none."},
    {"max_command_line", T_UINT, F(max_command_line), "512", 512, 65536,
     "Longest command line in octets, CRLF included (RFC 5321 4.5.3.1.4); longer gets 500 5.5.2."},
    {"max_hops", T_UINT, F(max_hops), "100", 10, 1000,
     "Refuse a message with this many Received header fields (554 5.4.6, mail loop; RFC 5321 6.3)."},
    {"add_missing_headers", T_BOOL, F(add_missing_headers), "yes", 0, 0,
     "yes: a message from an authenticated user or a relay_networks client that lacks a Message-ID or "
     "Date field gets one (RFC 6409 8.2, 8.3); mail arriving from elsewhere is never changed."},
    {"dkim_keys", T_OPTPATH, F(dkim_keys), "", 0, 0,
     "Table file of DKIM signing keys: 'domain selector keyfile' per line (PEM private keys: RSA of 1024 bits "
     "or more, 2048 advised, or Ed25519). Mail from an authenticated user or a relay_networks client is "
     "signed (RFC 6376, relaxed/relaxed) with the key of its From address's domain, else of the nearest "
     "listed parent domain; other mail is never signed. postern dkim-record prints the DNS records to publish."},
    {"srs_domain", T_STRING, F(srs_domain), "", 0, 0,
     "Sender Rewriting Scheme: relayed mail whose sender is not in a local domain goes out from "
     "SRS0=HASH=TT=domain=local@srs_domain (so the receiver's SPF check looks at this server's domain), and "
     "bounces to such addresses are passed back to the sender. Its MX must point here. Empty: off."},
    {"srs_secret", T_OPTPATH, F(srs_secret), "", 0, 0,
     "File of SRS secrets, one per line (at least 16 characters): the first signs, every one verifies - add a "
     "new first line to change it, remove the old one after srs_max_age. Keep it unreadable to other users."},
    {"srs_max_age", T_DURATION, F(srs_max_age), "21d", 86400, 86400000 /* 1000 days */,
     "How long a bounce may come back to an SRS address; later it gets 550 5.1.1."},
    {"max_errors", T_UINT, F(max_errors), "10", 1, 1000,
     "Protocol errors per session before 421 4.7.0 and disconnect."},
    {"max_refused_recipients", T_UINT, F(max_refused_recipients), "20", 0, 100000,
     "Recipients refused with 5xx in one session (since its last accepted message) before 421 4.7.0 and "
     "disconnect, counted only while they outnumber those accepted: a program guessing addresses "
     "(directory harvest) is cut off, a mailing list with a few stale addresses is not. 0 = off."},
    {"max_connections", T_UINT, F(max_connections), "1000", 1, 1000000,
     "Concurrent connections in all; beyond it new ones get 421 4.7.0."},
    {"max_connections_per_ip", T_UINT, F(max_connections_per_ip), "50", 1, 1000000,
     "Concurrent connections from one client address; beyond it 421 4.7.0."},
    {"max_recipient_rate_per_user", T_UINT, F(max_recipient_rate_per_user), "0", 0, 10000000,
     "Recipients an authenticated user may send to in an hour (counted from the first; every RCPT, local "
     "or relayed). Past it each RCPT gets 450 4.7.1 and event=user_rate_limited is logged once: a stolen "
     "password's spam run stops there. 0 = no limit."},
    {"max_connection_rate_per_ip", T_UINT, F(max_connection_rate_per_ip), "0", 0, 1000000,
     "Connections one client address may open per minute on the listen (MX) addresses, relay_networks "
     "excepted; past it 421 4.7.0 until its minute is over. 0 = no limit."},
    {"command_timeout", T_DURATION, F(command_timeout), "5m", 1, 86400,
     "How long to wait for a command (RFC 5321 4.5.3.2.7: 5 minutes); then 421 4.4.2."},
    {"data_timeout", T_DURATION, F(data_timeout), "5m", 1, 86400,
     "How long to wait for more message text during DATA; then 421 4.4.2."},
    {"greet_delay", T_DURATION, F(greet_delay), "1s", 0, 300,
     "Wait this long before the 220 greeting; a client that talks first gets 554 5.5.0 (early-talker "
     "defence). Clients in relay_networks are greeted at once. 0 = off."},
    {"min_data_rate", T_UINT, F(min_data_rate), "128", 0, 1u << 30,
     "Slowest accepted average rate of message text, octets/second, once data_rate_grace has passed; "
     "slower gets 421 4.4.2. 0 = off."},
    {"data_rate_grace", T_DURATION, F(data_rate_grace), "30s", 0, 86400,
     "How long DATA may run before min_data_rate is enforced."},
    {"shutdown_grace", T_DURATION, F(shutdown_grace), "10s", 0, 3600,
     "On SIGTERM, how long transactions in progress may take before 421 4.3.2."},
    {"min_free_space", T_SIZE, F(min_free_space), "100M", 0, 1ull << 50,
     "Free space needed on the mail_dir and spool_dir file systems; below it MAIL gets 452 4.3.1 "
     "(checked every second). 0 = off."},
    {"mailbox_hold_max", T_UINT, F(mailbox_hold_max), "1000", 0, 100000,
     "A mailbox that fails to take a message (read-only, its own disk full) is held: RCPT for it "
     "gets 450 4.2.0, so it does not hold back the other recipients of the sender's retry. At most this many "
     "held at once. 0 = off (a broken mailbox makes every message for it 451 for all its recipients)."},
    {"mailbox_recheck_interval", T_DURATION, F(mailbox_recheck_interval), "30s", 1, 3600,
     "How often a held mailbox is tried (make it if missing, write a file in tmp/, new/ writable); "
     "it takes mail again as soon as that works."},
    {"io_threads", T_UINT, F(io_threads), "4", 1, 256,
     "Threads for blocking work other than the commit (password hashing, disk checks)."},
    {"commit_batch_max", T_UINT, F(commit_batch_max), "256", 1, 256,
     "Most messages the committer makes durable together: one journal fdatasync, or one pair of file-system flushes."},
    {"commit_journal", T_BOOL, F(commit_journal), "yes", 0, 0,
     "yes: mail for local mailboxes is durable once its record is in spool_dir/journal (one fdatasync per "
     "batch); its Maildir files are flushed by the next checkpoint. no: every Maildir file is flushed before 250."},
    {"journal_size", T_SIZE, F(journal_size), "64M", 1ull << 20, 1ull << 34,
     "Size of spool_dir/journal (allocated once); a message's record may take a quarter of it at most."},
    {"journal_checkpoint_interval", T_DURATION, F(journal_checkpoint_interval), "1s", 1, 3600,
     "Longest time a journal record waits for the checkpoint that flushes its Maildir files and retires it."},
    {"journal_message_max", T_SIZE, F(journal_message_max), "64K", 0, 1ull << 32,
     "Bigger messages skip the journal: their Maildir files are flushed before 250 (saves writing them twice)."},
    {"file_pool_size", T_UINT, F(file_pool_size), "64", 0, 4096,
     "Empty unnamed files (O_TMPFILE) a background thread keeps ready in mail_dir, so storing a message "
     "need not wait for the file system to allocate one. 0 = off."},
    {"dns_resolver", T_RESOLVER_LIST, F(dns_resolver), "", 0, 0,
     "DNS servers to ask (IP or IP@port, comma-separated); empty: those of /etc/resolv.conf."},
    {"dns_trust_anchor", T_OPTPATH, F(dns_trust_anchor), "", 0, 0,
     "DNSSEC trust anchor file (e.g. /usr/share/dns/root.key); lookups then record whether they validated."},
    {"dns_timeout", T_DURATION, F(dns_timeout), "5s", 1, 60,
     "How long a MAIL or RCPT reply may wait for a DNS answer before the check is skipped."},
    {"dns_outage_pause", T_DURATION, F(dns_outage_pause), "1m", 0, 3600,
     "After 3 MAIL/RCPT-time DNS checks in a row got no answer within dns_timeout, skip those checks "
     "this long (then one more timeout pauses again): a DNS outage does not make every client wait. 0: never."},
    {"sender_null_mx_check", T_BOOL, F(sender_null_mx_check), "yes", 0, 0,
     "yes: refuse a sender whose domain publishes a null MX (550 5.7.27, RFC 7505)."},
    {"sender_domain_check", T_BOOL, F(sender_domain_check), "no", 0, 0,
     "yes: on the MX role, refuse a sender whose domain does not exist or has neither MX nor address records "
     "(550 5.1.8: no bounce could reach it; 450 4.1.8 while its DNS lookup fails). Local domains, the null "
     "sender and address literals are not checked; a lookup without an answer within dns_timeout lets it pass."},
    {"recipient_domain_check", T_BOOL, F(recipient_domain_check), "yes", 0, 0,
     "yes: refuse at RCPT a relayed recipient whose domain does not exist or has neither MX nor address records "
     "(550 5.1.2) rather than accept it and bounce it later; a failed lookup lets it pass (the queue retries)."},
    {"spf_skip_networks", T_CIDR_LIST, F(spf_skip_networks), "", 0, 0,
     "Client networks (CIDR) whose mail is not checked with SPF: your backup MX, forwarders you trust (they pass "
     "on others' mail, so its SPF fails from them). relay_networks clients and users are never checked."},
    {"spf_policy", T_SPF_POLICY, F(spf_policy), "off", 0, 0,
     "SPF (RFC 7208) on the MX role: the sender's domain (for the null sender the HELO name) is asked whether "
     "the client may send its mail. off; header: a Received-SPF field records the result; reject: that, and "
     "a fail gets 550 5.7.23 at each RCPT but postmaster's. Not for relay_networks clients and users."},
    {"smtp_bind_address", T_STRING, F(smtp_bind_address), "", 0, 0,
     "IPv4 address of this host that outbound SMTP and LMTP connections over IPv4 come from (the one its PTR "
     "name and SPF records name); empty: the system chooses."},
    {"smtp_bind_address6", T_STRING, F(smtp_bind_address6), "", 0, 0,
     "The same for IPv6 connections."},
    {"smtp_port", T_UINT, F(smtp_port), "25", 1, 65535, "Port of the mail exchangers Postern relays to."},
    {"relay_host", T_STRING, F(relay_host), "", 0, 0,
     "Send all mail for other domains (but those with a transport entry) to this server (a smarthost) "
     "instead of their mail exchangers: "
     "[name] or [address] (its address records; no MX lookup), or name (its MX records), with an optional "
     ":port (else smtp_port), e.g. [smtp.example.net]:587. Empty: deliver directly."},
    {"relay_host_implicit_tls", T_BOOL, F(relay_host_implicit_tls), "no", 0, 0,
     "yes: relay_host speaks TLS from the first byte (RFC 8314 submissions port 465: [host]:465), "
     "never in clear; no: plain SMTP with STARTTLS."},
    {"relay_host_auth", T_OPTPATH, F(relay_host_auth), "", 0, 0,
     "File with one line user:password for AUTH at relay_host (PLAIN, else LOGIN), sent only over TLS: "
     "a relay host without STARTTLS defers the mail. Mode 0640, group the server's user: a reload reads "
     "it again."},
    {"retry_schedule", T_DURATION_LIST, F(retry_schedule), "5m,10m,20m,40m,80m,160m,4h", 0, 0,
     "Delays between delivery attempts of deferred mail; the last one repeats."},
    {"max_queue_lifetime", T_DURATION, F(max_queue_lifetime), "5d", 0, 365ull * 86400,
     "How long deferred mail is retried before it is bounced."},
    {"delay_warning_time", T_DURATION, F(delay_warning_time), "4h", 0, 365ull * 86400,
     "Send the sender one delay warning after mail waited this long (0 = never)."},
    {"destination_concurrency", T_UINT, F(destination_concurrency), "5", 1, 1000,
     "Outbound connections to one destination domain at a time."},
    {"max_deliveries", T_UINT, F(max_deliveries), "100", 1, 100000, "Outbound connections in all at a time."},
    {"destination_recipient_limit", T_UINT, F(destination_recipient_limit), "50", 1, 100000,
     "Recipients per outbound transaction; a message for more at one domain is sent in several."},
    {"smtp_tls", T_BOOL, F(smtp_tls), "yes", 0, 0,
     "yes: use STARTTLS outbound when the peer offers it (certificates not verified)."},
    {"smtp_tls_verify", T_BOOL, F(smtp_tls_verify), "no", 0, 0,
     "yes: outbound TLS is required and the MX certificate must be valid for its host name (else deferred)."},
    {"smtp_dane", T_BOOL, F(smtp_dane), "yes", 0, 0,
     "yes: DANE (RFC 7672) for relayed mail: when a destination's MX records and an MX host's addresses are "
     "DNSSEC-validated (dns_trust_anchor set) and that host publishes TLSA records for the port, it "
     "gets TLS or nothing, and its certificate must match one of the records (else the next MX; 4.7.5 when "
     "none does). A failed TLSA lookup skips the host. Needs smtp_tls = yes."},
    {"smtp_tls_ca_file", T_OPTPATH, F(smtp_tls_ca_file), "", 0, 0,
     "PEM file of CAs trusted by smtp_tls_verify; empty: the system's CA store."},
    {"smtp_connect_timeout", T_DURATION, F(smtp_connect_timeout), "30s", 1, 3600, "Outbound: connection set-up."},
    {"smtp_greeting_timeout", T_DURATION, F(smtp_greeting_timeout), "5m", 1, 3600,
     "Outbound: waiting for the 220 greeting (RFC 5321 4.5.3.2.1)."},
    {"smtp_command_timeout", T_DURATION, F(smtp_command_timeout), "5m", 1, 3600,
     "Outbound: reply to EHLO, MAIL, RCPT, RSET (RFC 5321 4.5.3.2.2-3)."},
    {"smtp_data_init_timeout", T_DURATION, F(smtp_data_init_timeout), "2m", 1, 3600,
     "Outbound: reply to DATA (RFC 5321 4.5.3.2.4)."},
    {"smtp_data_block_timeout", T_DURATION, F(smtp_data_block_timeout), "3m", 1, 3600,
     "Outbound: sending each block of the message (RFC 5321 4.5.3.2.5)."},
    {"smtp_data_done_timeout", T_DURATION, F(smtp_data_done_timeout), "10m", 1, 3600,
     "Outbound: reply after the final dot (RFC 5321 4.5.3.2.6)."},
    {"log_level", T_LOGLEVEL, F(log_level), "info", 0, 0, "debug, info, warn or error."},
};
#undef F
#define NKEYS (sizeof keys / sizeof keys[0])
_Static_assert(NKEYS <= 96, "struct config key_lines too small");

void config_errors_add(struct config_errors *errs, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    char **n = realloc(errs->msgs, (errs->count + 1) * sizeof *n);
    if (!n)
        return;
    errs->msgs = n;
    errs->msgs[errs->count] = strdup(buf);
    if (errs->msgs[errs->count])
        errs->count++;
}

void config_errors_free(struct config_errors *errs)
{
    for (size_t i = 0; i < errs->count; i++)
        free(errs->msgs[i]);
    free(errs->msgs);
    errs->msgs = NULL;
    errs->count = 0;
}

static void strlist_free(struct strlist *l)
{
    for (size_t i = 0; i < l->count; i++)
        free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->count = 0;
}

/* Splits on commas and whitespace. */
static bool strlist_split(const char *value, struct strlist *out)
{
    const char *p = value;
    while (*p) {
        while (*p == ',' || *p == ' ' || *p == '\t')
            p++;
        if (!*p)
            break;
        const char *start = p;
        while (*p && *p != ',' && *p != ' ' && *p != '\t')
            p++;
        char **n = realloc(out->items, (out->count + 1) * sizeof *n);
        if (!n)
            return false;
        out->items = n;
        out->items[out->count] = strndup(start, (size_t)(p - start));
        if (!out->items[out->count])
            return false;
        out->count++;
    }
    return true;
}

/* Parses an unsigned number; sizes take k/M/G, durations s/m/h/d. */
static bool parse_number(const char *v, unsigned long long *out, enum key_type type)
{
    char *end;
    if (*v < '0' || *v > '9')
        return false;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno)
        return false;
    unsigned long long mul = 1;
    if (type == T_SIZE && *end) {
        switch (*end++) {
        case 'k': case 'K': mul = 1024ull; break;
        case 'm': case 'M': mul = 1024ull * 1024; break;
        case 'g': case 'G': mul = 1024ull * 1024 * 1024; break;
        default: return false;
        }
    } else if (type == T_DURATION && *end) {
        switch (*end++) {
        case 's': mul = 1; break;
        case 'm': mul = 60; break;
        case 'h': mul = 3600; break;
        case 'd': mul = 86400; break;
        default: return false;
        }
    }
    if (*end || (n && mul > UINT64_MAX / n))
        return false;
    *out = n * mul;
    return true;
}

/* Writes n as a config value of type: the largest unit that divides it (64M, 10m, 1h), so that a
 * range in an error reads as the file would say it. */
static void format_number(unsigned long long n, enum key_type type, char *out, size_t outsz)
{
    struct unit {
        char suffix;
        unsigned long long size;
    };
    static const struct unit sizes[] = {{'G', 1024ull * 1024 * 1024}, {'M', 1024ull * 1024}, {'k', 1024}, {0, 0}};
    static const struct unit times[] = {{'d', 86400}, {'h', 3600}, {'m', 60}, {'s', 1}, {0, 0}};
    for (const struct unit *u = type == T_SIZE ? sizes : type == T_DURATION ? times : NULL; u && u->size; u++)
        if (n >= u->size && n % u->size == 0) {
            snprintf(out, outsz, "%llu%c", n / u->size, u->suffix);
            return;
        }
    snprintf(out, outsz, "%llu", n);
}

/* "value out of range (min to max)" for key k, in buf. */
static const char *range_error(const struct key_def *k, char *buf, size_t bufsz)
{
    char lo[32], hi[32];
    format_number(k->min, k->type, lo, sizeof lo);
    format_number(k->max, k->type, hi, sizeof hi);
    snprintf(buf, bufsz, "value out of range (%s to %s)", lo, hi);
    return buf;
}

/* Checks each item of a list with the key's type; returns an error text or NULL. */
static const char *check_list_item(enum key_type type, char *item)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    struct cidr net;
    bool utf8;
    switch (type) {
    case T_LISTEN_LIST:
    case T_OPT_LISTEN_LIST:
        return hostport_parse(item, &ss, &sslen) ? NULL : "expected host:port with an IP address, e.g. 127.0.0.1:25 or [::1]:25";
    case T_CIDR_LIST:
        return cidr_parse(item, &net) ? NULL : "expected a network like 192.0.2.0/24 or 2001:db8::/32";
    case T_RESOLVER_LIST: {
        char *at = strchr(item, '@');
        unsigned char buf[16];
        if (at)
            *at = '\0';
        bool ok = inet_pton(AF_INET, item, buf) == 1 || inet_pton(AF_INET6, item, buf) == 1;
        if (at) {
            *at = '@';
            char *end;
            unsigned long port = strtoul(at + 1, &end, 10);
            ok = ok && at[1] && !*end && port >= 1 && port <= 65535;
        }
        return ok ? NULL : "expected an IP address or IP@port, e.g. 127.0.0.1@5353";
    }
    case T_DOMAIN_LIST:
        ascii_lower_copy(item, item, strlen(item) + 1);
        return address_parse_domain(item, strlen(item), &utf8) == ADDR_OK ? NULL : "not a valid domain name";
    case T_SUFFIX_LIST: { /* a domain, or ".domain": every subdomain of it */
        ascii_lower_copy(item, item, strlen(item) + 1);
        const char *name = item + (item[0] == '.');
        return address_parse_domain(name, strlen(name), &utf8) == ADDR_OK ? NULL
                                                                          : "not a valid domain name (or .domain)";
    }
    default:
        return NULL;
    }
}

/* Sets one key from its text value; returns an error text (static, or in buf) or NULL. */
static const char *set_value(struct config *cfg, const struct key_def *k, const char *v, char *buf, size_t bufsz)
{
    void *field = (char *)cfg + k->offset;
    unsigned long long n;
    bool utf8;
    switch (k->type) {
    case T_SPF_POLICY:
        if (strcmp(v, "off") != 0 && strcmp(v, "header") != 0 && strcmp(v, "reject") != 0)
            return "expected off, header or reject";
        goto string;
    case T_TLS_VERSION:
        if (strcmp(v, "TLSv1") != 0 && strcmp(v, "TLSv1.1") != 0 && strcmp(v, "TLSv1.2") != 0 &&
            strcmp(v, "TLSv1.3") != 0)
            return "expected TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3";
        /* fall through */
    string:
    case T_STRING:
    case T_OPTPATH:
    case T_PATH:
    case T_HOSTNAME:
        if (k->type == T_PATH && !*v)
            return "must not be empty";
        if ((k->type == T_PATH || k->type == T_OPTPATH) && strlen(v) > 1024)
            return "path longer than 1024 octets";
        if (k->type == T_HOSTNAME && *v && address_parse_domain(v, strlen(v), &utf8) != ADDR_OK)
            return "not a valid host name";
        free(*(char **)field);
        *(char **)field = strdup(v);
        return NULL;
    case T_BOOL:
        if (!strcasecmp(v, "yes") || !strcasecmp(v, "true") || !strcasecmp(v, "on") || !strcmp(v, "1"))
            *(bool *)field = true;
        else if (!strcasecmp(v, "no") || !strcasecmp(v, "false") || !strcasecmp(v, "off") || !strcmp(v, "0"))
            *(bool *)field = false;
        else
            return "expected yes or no";
        return NULL;
    case T_UINT:
    case T_SIZE:
    case T_DURATION:
        if (!parse_number(v, &n, k->type))
            return k->type == T_SIZE ? "expected a size in octets (k, M, G suffixes allowed)"
                   : k->type == T_DURATION ? "expected a duration (s, m, h, d suffixes allowed)"
                                           : "expected a whole number";
        if (n < k->min || n > k->max)
            return range_error(k, buf, bufsz);
        if (k->type == T_SIZE)
            *(size_t *)field = (size_t)n;
        else
            *(unsigned *)field = (unsigned)n;
        return NULL;
    case T_LOGLEVEL:
        if (log_level_parse(v) < 0)
            return "expected debug, info, warn or error";
        *(int *)field = log_level_parse(v);
        return NULL;
    case T_DURATION_LIST: {
        struct durlist *d = field;
        struct strlist l = {0};
        const char *err = strlist_split(v, &l) ? NULL : "out of memory";
        d->count = 0;
        for (size_t i = 0; !err && i < l.count; i++) {
            if (i == DURLIST_MAX)
                err = "at most 16 durations";
            else if (!parse_number(l.items[i], &n, T_DURATION) || n < 1 || n > 86400ull * 30)
                err = "expected durations between 1s and 30d, e.g. 5m,10m,1h";
            else
                d->v[d->count++] = (unsigned)n;
        }
        if (!err && d->count == 0)
            err = "needs at least one duration";
        strlist_free(&l);
        return err;
    }
    case T_LISTEN_LIST:
    case T_OPT_LISTEN_LIST:
    case T_DOMAIN_LIST:
    case T_SUFFIX_LIST:
    case T_RESOLVER_LIST:
    case T_CIDR_LIST: {
        struct strlist *l = field;
        strlist_free(l);
        if (!strlist_split(v, l))
            return "out of memory";
        for (size_t i = 0; i < l->count; i++) {
            const char *e = check_list_item(k->type, l->items[i]);
            if (e)
                return e;
        }
        if (k->type == T_LISTEN_LIST && l->count == 0)
            return "needs at least one address";
        return NULL;
    }
    }
    return "internal: unknown type";
}

static const struct key_def *find_key(const char *name)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    return NULL;
}

/* Edits (insert, delete, replace, swap of two neighbours) between a and b, ignoring ASCII case;
 * SIZE_MAX when either is longer than any key could be. */
static size_t edit_distance(const char *a, const char *b)
{
    enum { MAXLEN = 63 };
    size_t la = strlen(a), lb = strlen(b), d[MAXLEN + 1][MAXLEN + 1];
    if (la > MAXLEN || lb > MAXLEN)
        return SIZE_MAX;
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            size_t best = d[i - 1][j - 1] + (tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]));
            if (d[i - 1][j] + 1 < best)
                best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 2]) &&
                tolower((unsigned char)a[i - 2]) == tolower((unsigned char)b[j - 1]) && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    return d[la][lb];
}

/* The key a misspelt name most likely meant (at most 2 edits away, 3 for long names), or NULL. */
static const char *closest_key(const char *name)
{
    size_t best = strlen(name) >= 12 ? 3 : 2;
    const char *found = NULL;
    for (size_t i = 0; i < NKEYS; i++) {
        size_t d = edit_distance(name, keys[i].name);
        if (d <= best) {
            best = d;
            found = keys[i].name;
        }
    }
    return found;
}

int config_key_line(const struct config *cfg, const char *key)
{
    const struct key_def *k = find_key(key);
    return k ? cfg->key_lines[k - keys] : 0;
}

bool config_file_readable(const struct config *cfg, const char *key, const char *path, struct config_errors *errs)
{
    FILE *f = fopen(path, "r");
    if (f) {
        fclose(f);
        return true;
    }
    config_errors_add(errs, "%s:%d: %s: cannot read %s: %s", cfg->path, config_key_line(cfg, key), key, path,
                      strerror(errno));
    return false;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
        *--e = '\0';
    return s;
}

/* Handles one line of the file (comments and blank lines ignored). */
static void parse_line(struct config *cfg, char *line, int lineno, struct config_errors *errs)
{
    char *hash = line;
    while ((hash = strchr(hash, '#')) != NULL) { /* a comment starts at line start or after blanks */
        if (hash == line || hash[-1] == ' ' || hash[-1] == '\t') {
            *hash = '\0';
            break;
        }
        hash++;
    }
    char *s = trim(line);
    if (!*s)
        return;
    char *eq = strchr(s, '=');
    if (!eq) {
        config_errors_add(errs, "%s:%d: expected 'key = value', got '%.60s'", cfg->path, lineno, s);
        return;
    }
    *eq = '\0';
    char *name = trim(s), *value = trim(eq + 1);
    const struct key_def *k = find_key(name);
    if (!k) {
        const char *meant = closest_key(name);
        config_errors_add(errs, "%s:%d: %.60s: unknown key%s%s%s", cfg->path, lineno, name,
                          meant ? " (did you mean " : "", meant ? meant : "", meant ? "?)" : "");
        return;
    }
    int *seen = &cfg->key_lines[k - keys];
    if (*seen) {
        config_errors_add(errs, "%s:%d: %s: set twice (first on line %d)", cfg->path, lineno, name, *seen);
        return;
    }
    *seen = lineno;
    char buf[96];
    const char *err = set_value(cfg, k, value, buf, sizeof buf);
    if (err)
        config_errors_add(errs, "%s:%d: %s: %s: '%.80s'", cfg->path, lineno, name, err, value);
}

/* Keys that only make sense together: TLS listeners need a certificate and a key. */
static void check_tls_keys(struct config *cfg, struct config_errors *errs)
{
    bool have_cert = *cfg->tls_cert, have_key = *cfg->tls_key;
    if (have_cert != have_key)
        config_errors_add(errs, "%s:%d: %s: tls_cert and tls_key must be set together", cfg->path,
                          config_key_line(cfg, have_cert ? "tls_cert" : "tls_key"), have_cert ? "tls_cert" : "tls_key");
    if (*cfg->tls_sni && !have_cert)
        config_errors_add(errs, "%s:%d: tls_sni: needs tls_cert and tls_key (the certificate for other names)",
                          cfg->path, config_key_line(cfg, "tls_sni"));
    const char *roles[] = {"submission_listen", "smtps_listen"};
    const struct strlist *lists[] = {&cfg->submission_listen, &cfg->smtps_listen};
    for (int i = 0; i < 2; i++) {
        if (lists[i]->count && !have_cert)
            config_errors_add(errs, "%s:%d: %s: needs tls_cert and tls_key", cfg->path,
                              config_key_line(cfg, roles[i]), roles[i]);
        if (lists[i]->count && !*cfg->users)
            config_errors_add(errs, "%s:%d: %s: needs a users table (users = FILE)", cfg->path,
                              config_key_line(cfg, roles[i]), roles[i]);
    }
}

/* True when binding both addresses would fail: the same family and port, and the same address
 * or one of them the wildcard (0.0.0.0 or ::, which takes the port on every address). */
static bool listen_clash(const char *a, const char *b)
{
    struct sockaddr_storage x, y;
    socklen_t lx, ly;
    if (!hostport_parse(a, &x, &lx) || !hostport_parse(b, &y, &ly) || x.ss_family != y.ss_family)
        return false;
    if (x.ss_family == AF_INET) {
        const struct sockaddr_in *p = (const struct sockaddr_in *)(const void *)&x;
        const struct sockaddr_in *q = (const struct sockaddr_in *)(const void *)&y;
        return p->sin_port == q->sin_port && (p->sin_addr.s_addr == q->sin_addr.s_addr ||
                                              p->sin_addr.s_addr == INADDR_ANY || q->sin_addr.s_addr == INADDR_ANY);
    }
    const struct sockaddr_in6 *p = (const struct sockaddr_in6 *)(const void *)&x;
    const struct sockaddr_in6 *q = (const struct sockaddr_in6 *)(const void *)&y;
    return p->sin6_port == q->sin6_port &&
           (IN6_ARE_ADDR_EQUAL(&p->sin6_addr, &q->sin6_addr) || IN6_IS_ADDR_UNSPECIFIED(&p->sin6_addr) ||
            IN6_IS_ADDR_UNSPECIFIED(&q->sin6_addr));
}

/* Says that address b of key kb clashes with address a of key ka (listed first). */
static void report_clash(struct config *cfg, struct config_errors *errs, const char *ka, const char *a,
                         const char *kb, const char *b)
{
    char where[64];
    int line = config_key_line(cfg, ka);
    if (line)
        snprintf(where, sizeof where, "%s, line %d", ka, line);
    else
        snprintf(where, sizeof where, "%s's default", ka);
    config_errors_add(errs, "%s:%d: %s: %s clashes with %s (%s): an address and port can be listened on once",
                      cfg->path, config_key_line(cfg, kb), kb, b, a, where);
}

/* An address given twice, in one listen key or across the four, could only fail at start-up
 * ("Address already in use"): check-config names both places instead. Every pair is compared. */
static void check_listen_clashes(struct config *cfg, struct config_errors *errs)
{
    if (cfg->metrics_listen.count > 16)
        config_errors_add(errs, "%s:%d: metrics_listen: at most 16 addresses", cfg->path,
                          config_key_line(cfg, "metrics_listen"));
    const char *names[] = {"listen", "submission_listen", "smtps_listen", "metrics_listen"};
    const struct strlist *lists[] = {&cfg->listen, &cfg->submission_listen, &cfg->smtps_listen, &cfg->metrics_listen};
    for (int i = 0; i < 4; i++)
        for (size_t a = 0; a < lists[i]->count; a++)
            for (int j = i; j < 4; j++)
                for (size_t b = (j == i ? a + 1 : 0); b < lists[j]->count; b++)
                    if (listen_clash(lists[i]->items[a], lists[j]->items[b]))
                        report_clash(cfg, errs, names[i], lists[i]->items[a], names[j], lists[j]->items[b]);
}

/* relay_host_auth's file: comments and blank lines, and one "user:password" line (the password
 * may hold ':'). Errors name the file and line. */
static void read_relay_auth(struct config *cfg, struct config_errors *errs)
{
    FILE *f = fopen(cfg->relay_host_auth, "r");
    if (!f) {
        config_errors_add(errs, "%s:%d: relay_host_auth: cannot read %s: %s", cfg->path,
                          config_key_line(cfg, "relay_host_auth"), cfg->relay_host_auth, strerror(errno));
        return;
    }
    char line[600];
    int lineno = 0;
    bool bad = false;
    while (!bad && fgets(line, sizeof line, f)) {
        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0] || line[0] == '#')
            continue;
        char *colon = strchr(line, ':');
        const char *problem = *cfg->relay_user ? "more than one user:password line"
                              : !colon || colon == line || !colon[1] ? "expected user:password"
                              : (size_t)(colon - line) >= sizeof cfg->relay_user || strlen(colon + 1) >= sizeof cfg->relay_password
                                  ? "user or password longer than 255 octets" : NULL;
        if ((bad = problem != NULL)) {
            config_errors_add(errs, "%s:%d: relay_host_auth: %s", cfg->relay_host_auth, lineno, problem);
            break;
        }
        snprintf(cfg->relay_user, sizeof cfg->relay_user, "%.*s", (int)(colon - line), line);
        snprintf(cfg->relay_password, sizeof cfg->relay_password, "%s", colon + 1);
    }
    explicit_bzero(line, sizeof line);
    fclose(f);
    if (!*cfg->relay_user && !bad)
        config_errors_add(errs, "%s:%d: relay_host_auth: no user:password line", cfg->relay_host_auth, lineno);
}

/* smtp_bind_address(6): an address literal of its family, or empty. */
static void check_bind_addresses(struct config *cfg, struct config_errors *errs)
{
    static const struct { const char *key; int family; } binds[] = {{"smtp_bind_address", AF_INET},
                                                                   {"smtp_bind_address6", AF_INET6}};
    for (size_t i = 0; i < 2; i++) {
        const char *v = i == 0 ? cfg->smtp_bind_address : cfg->smtp_bind_address6;
        unsigned char addr[16];
        if (*v && inet_pton(binds[i].family, v, addr) != 1)
            config_errors_add(errs, "%s:%d: %s: '%.80s' is not an %s address", cfg->path,
                              config_key_line(cfg, binds[i].key), binds[i].key, v, i == 0 ? "IPv4" : "IPv6");
    }
}

static void check_relay_host(struct config *cfg, struct config_errors *errs)
{
    int line = config_key_line(cfg, "relay_host_auth");
    if (cfg->relay_host_implicit_tls && (!*cfg->relay_host || !cfg->smtp_tls))
        config_errors_add(errs, "%s:%d: relay_host_implicit_tls: needs relay_host and smtp_tls = yes", cfg->path,
                          config_key_line(cfg, "relay_host_implicit_tls"));
    if (*cfg->relay_host_auth && !*cfg->relay_host)
        config_errors_add(errs, "%s:%d: relay_host_auth: needs relay_host", cfg->path, line);
    else if (*cfg->relay_host_auth && !cfg->smtp_tls)
        config_errors_add(errs, "%s:%d: relay_host_auth: needs smtp_tls = yes (the password goes over TLS only)",
                          cfg->path, line);
    else if (*cfg->relay_host_auth)
        read_relay_auth(cfg, errs);
    if (*cfg->relay_host && !next_hop_parse(cfg->relay_host, cfg->smtp_port, &cfg->relay_hop))
        config_errors_add(errs, "%s:%d: relay_host: expected [name], [address] or name, with an optional :port, "
                          "e.g. [smtp.example.net]:587: '%.80s'", cfg->path, config_key_line(cfg, "relay_host"),
                          cfg->relay_host);
    cfg->relay_hop.relay_host = true;
}

/* Fills in the system host name when hostname was left empty. */
static void default_hostname(struct config *cfg)
{
    if (cfg->hostname && *cfg->hostname)
        return;
    char buf[256] = "localhost";
    if (gethostname(buf, sizeof buf - 1) != 0 || !*buf)
        strcpy(buf, "localhost");
    buf[sizeof buf - 1] = '\0';
    free(cfg->hostname);
    cfg->hostname = strdup(buf);
}

bool config_load(const char *path, struct config *cfg, struct config_errors *errs)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->path = strdup(path);
    for (size_t i = 0; i < NKEYS; i++) {
        char buf[96];
        const char *e = set_value(cfg, &keys[i], keys[i].def, buf, sizeof buf);
        if (e)
            config_errors_add(errs, "internal default of %s: %s", keys[i].name, e);
    }
    FILE *f = fopen(path, "r");
    if (!f) {
        config_errors_add(errs, "%s: cannot read: %s", path, strerror(errno));
        return false;
    }
    char line[4096];
    int lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        size_t n = strlen(line);
        if (n == sizeof line - 1 && line[n - 1] != '\n') {
            config_errors_add(errs, "%s:%d: line longer than %zu octets", path, lineno, sizeof line - 2);
            int c;
            while ((c = fgetc(f)) != EOF && c != '\n')
                ;
            continue;
        }
        parse_line(cfg, line, lineno, errs);
    }
    fclose(f);
    default_hostname(cfg);
    check_tls_keys(cfg, errs);
    check_listen_clashes(cfg, errs);
    if (cfg->dnsbl_zones.count > DNSBL_ZONES_MAX)
        config_errors_add(errs, "%s:%d: dnsbl_zones: %zu zones, at most %d (each is a DNS lookup per connection)",
                          cfg->path, config_key_line(cfg, "dnsbl_zones"), cfg->dnsbl_zones.count, DNSBL_ZONES_MAX);
    check_relay_host(cfg, errs);
    check_bind_addresses(cfg, errs);
    return errs->count == 0;
}

void config_free(struct config *cfg)
{
    for (size_t i = 0; i < NKEYS; i++) {
        void *field = (char *)cfg + keys[i].offset;
        switch (keys[i].type) {
        case T_STRING: case T_PATH: case T_OPTPATH: case T_HOSTNAME: case T_TLS_VERSION: case T_SPF_POLICY:
            free(*(char **)field);
            break;
        case T_LISTEN_LIST: case T_OPT_LISTEN_LIST: case T_DOMAIN_LIST: case T_SUFFIX_LIST: case T_CIDR_LIST:
        case T_RESOLVER_LIST:
            strlist_free(field);
            break;
        default:
            break;
        }
    }
    free(cfg->path);
    explicit_bzero(cfg->relay_password, sizeof cfg->relay_password);
    memset(cfg, 0, sizeof *cfg);
}

bool strlists_equal(const struct strlist *a, const struct strlist *b)
{
    if (a->count != b->count)
        return false;
    for (size_t i = 0; i < a->count; i++)
        if (strcmp(a->items[i], b->items[i]) != 0)
            return false;
    return true;
}

/* Whether key k has the same value in a and b, compared by its type. */
static bool key_equal(const struct key_def *k, const struct config *a, const struct config *b)
{
    const void *fa = (const char *)a + k->offset, *fb = (const char *)b + k->offset;
    switch (k->type) {
    case T_STRING: case T_PATH: case T_OPTPATH: case T_HOSTNAME: case T_TLS_VERSION: case T_SPF_POLICY: {
        const char *sa = *(char *const *)fa, *sb = *(char *const *)fb;
        return strcmp(sa ? sa : "", sb ? sb : "") == 0;
    }
    case T_BOOL: return *(const bool *)fa == *(const bool *)fb;
    case T_UINT: case T_DURATION: return *(const unsigned *)fa == *(const unsigned *)fb;
    case T_SIZE: return *(const size_t *)fa == *(const size_t *)fb;
    case T_LOGLEVEL: return *(const int *)fa == *(const int *)fb;
    case T_DURATION_LIST: {
        const struct durlist *da = fa, *db = fb;
        return da->count == db->count && memcmp(da->v, db->v, da->count * sizeof da->v[0]) == 0;
    }
    case T_LISTEN_LIST: case T_OPT_LISTEN_LIST: case T_DOMAIN_LIST: case T_SUFFIX_LIST: case T_CIDR_LIST:
        case T_RESOLVER_LIST:
        return strlists_equal(fa, fb);
    }
    return false;
}

void config_changed_keys(const struct config *a, const struct config *b, const char *const *skip, char *out,
                         size_t outsz)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < NKEYS; i++) {
        bool skipped = false;
        for (const char *const *sk = skip; sk && *sk && !skipped; sk++)
            skipped = strcmp(*sk, keys[i].name) == 0;
        if (skipped || key_equal(&keys[i], a, b))
            continue;
        int n = snprintf(out + used, outsz - used, "%s%s", used ? "," : "", keys[i].name);
        if (n < 0 || (size_t)n >= outsz - used) {
            out[used] = '\0'; /* cut at the last whole name */
            return;
        }
        used += (size_t)n;
    }
}

/* Appends list items to out, ", " between them. */
static void join_items(char *out, size_t outsz, const struct strlist *l)
{
    size_t n = 0;
    for (size_t i = 0; i < l->count && n < outsz; i++)
        n += (size_t)snprintf(out + n, outsz - n, "%s%s", i ? ", " : "", l->items[i]);
}

/* Key k's value in cfg as a configuration file would write it. */
static void format_value(const struct key_def *k, const struct config *cfg, char *out, size_t outsz)
{
    static const char *const levels[] = {"debug", "info", "warn", "error"};
    const void *f = (const char *)cfg + k->offset;
    out[0] = '\0';
    switch (k->type) {
    case T_STRING: case T_PATH: case T_OPTPATH: case T_HOSTNAME: case T_TLS_VERSION: case T_SPF_POLICY: {
        const char *s = *(char *const *)f;
        snprintf(out, outsz, "%s", s ? s : "");
        return;
    }
    case T_BOOL: snprintf(out, outsz, "%s", *(const bool *)f ? "yes" : "no"); return;
    case T_UINT: snprintf(out, outsz, "%u", *(const unsigned *)f); return;
    case T_DURATION: format_number(*(const unsigned *)f, T_DURATION, out, outsz); return;
    case T_SIZE: format_number(*(const size_t *)f, T_SIZE, out, outsz); return;
    case T_LOGLEVEL: {
        int level = *(const int *)f;
        snprintf(out, outsz, "%s", level >= 0 && level < 4 ? levels[level] : "?");
        return;
    }
    case T_DURATION_LIST: {
        const struct durlist *d = f;
        size_t n = 0;
        for (size_t i = 0; i < d->count && n < outsz; i++) {
            char one[32];
            format_number(d->v[i], T_DURATION, one, sizeof one);
            n += (size_t)snprintf(out + n, outsz - n, "%s%s", i ? ", " : "", one);
        }
        return;
    }
    case T_LISTEN_LIST: case T_OPT_LISTEN_LIST: case T_DOMAIN_LIST: case T_SUFFIX_LIST: case T_CIDR_LIST:
        case T_RESOLVER_LIST:
        join_items(out, outsz, f);
        return;
    }
}

void config_print_effective(FILE *out, const struct config *cfg, bool only_set)
{
    for (size_t i = 0; i < NKEYS; i++) {
        if (only_set && !config_key_line(cfg, keys[i].name))
            continue;
        char value[4096];
        format_value(&keys[i], cfg, value, sizeof value);
        fprintf(out, "%s =%s%s\n", keys[i].name, *value ? " " : "", value);
    }
}

void config_print_reference(FILE *out)
{
    for (size_t i = 0; i < NKEYS; i++)
        fprintf(out, "%-24s default: %-16s %s\n", keys[i].name, *keys[i].def ? keys[i].def : "(none)",
                keys[i].meaning);
}
