/* config_keys.c - THE table of configuration keys: name, type, field, default, bounds and what
 * each means (printed by `postern config-reference`; the README's table is made from it). Data
 * only: config.c reads files through it. */
#include <stddef.h>

#include "config_priv.h"

#define F(field) offsetof(struct config, field)
const struct key_def config_keys[] = {
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
    {"client_access", T_OPTPATH, F(client_access), "", 0, 0,
     "Table file of client networks: 'network action [text]' per line (an address or CIDR network; action "
     "reject: 550 5.7.1 at each RCPT, postmaster excepted; defer: 450 4.7.1; permit: not looked up in "
     "dnsbl_zones, SPF or the sender domain checks, no greet_delay). The most specific network wins. MX role."},
    {"sender_access", T_OPTPATH, F(sender_access), "", 0, 0,
     "Table file of senders: 'sender action [text]' per line (user@domain, domain, .domain for its "
     "subdomains, <> for the null sender; action reject: 550 5.7.1 at each RCPT, postmaster excepted; "
     "defer: 450 4.7.1). The most specific entry wins; an address matches without its extension too."},
    {"helo_access", T_OPTPATH, F(helo_access), "", 0, 0,
     "Table file of EHLO/HELO names: 'name action [text]' per line (a host name, or .domain for the names "
     "below it; action reject: 550 5.7.1 at each RCPT, postmaster excepted; defer: 450 4.7.1). The name "
     "itself wins over its parents. MX role."},
    {"helo_name_check", T_BOOL, F(helo_name_check), "no", 0, 0,
     "yes: a client of the listen (MX) addresses whose EHLO/HELO name is neither a fully-qualified domain "
     "name (two labels or more, the last not all digits) nor an address literal ([192.0.2.1]) gets 504 "
     "5.5.2 at each RCPT but postmaster's, as Postfix's reject_non_fqdn_helo_hostname and "
     "reject_invalid_helo_hostname. relay_networks, users and client_access permit are not checked."},
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
     "SRS0=HASH=TT=domain=local@srs_domain (so the receiver's SPF check looks at this server's domain; a sender "
     "that is another forwarder's SRS address: SRS1=HASH=forwarder==REST@srs_domain), and bounces to such "
     "addresses are passed back to the sender. Its MX must point here. Empty: off."},
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
    {"greylisting", T_BOOL, F(greylisting), "no", 0, 0,
     "yes: greylisting (RFC 6647) on the listen (MX) addresses: a recipient that the client's network, with "
     "this sender, has not sent to before gets 451 4.7.1 at RCPT; the same sent again after greylist_delay "
     "passes, and is remembered. Real mail servers retry; most spam software does not. relay_networks, "
     "authenticated users, client_access permit and mail to postmaster are never greylisted."},
    {"greylist_delay", T_DURATION, F(greylist_delay), "5m", 0, 86400,
     "Greylisting: how long a new (network, sender, recipient) must wait before its retry passes."},
    {"greylist_retry_window", T_DURATION, F(greylist_retry_window), "2d", 60, 2592000 /* 30 days */,
     "Greylisting: how long after its first try a retry still counts; later it is new again."},
    {"greylist_max_age", T_DURATION, F(greylist_max_age), "35d", 60, 31536000 /* a year */,
     "Greylisting: how long a passed triplet (and an allowed network) is remembered after its last use."},
    {"greylist_auto_allow", T_UINT, F(greylist_auto_allow), "5", 0, 1000000,
     "Greylisting: a client network that has passed this many triplets is let through without greylisting "
     "(a server that retries proved itself). 0 = never."},
    {"greylist_max_entries", T_UINT, F(greylist_max_entries), "200000", 100, 100000000,
     "Greylisting: triplets and networks remembered at most (about 64 octets of memory each: 12 MiB for "
     "200,000); when full of live ones a new triplet is let through (event=greylist_full)."},
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
    {"header_checks", T_OPTPATH, F(header_checks), "", 0, 0,
     "Table file of rules on the header fields of received mail: '/regex/[i] REJECT [text]', '/regex/[i] "
     "DISCARD [text]' or '/regex/[i] WARN' per line, a POSIX extended regular expression matched against each "
     "field unfolded ('Subject: ...'; i: any case). REJECT refuses the message at its end with 550 5.7.1 and the "
     "text; DISCARD answers 250 and stores nothing (event=discarded, with the text); WARN logs the field "
     "(event=header_warning). The first rule matching a field decides for it."},
    {"mime_header_checks", T_OPTPATH, F(mime_header_checks), "", 0, 0,
     "Table file of rules as header_checks, matched against the header fields of each MIME part and of "
     "each attached message (message/rfc822), at any depth - for attachment names and types: "
     "'/^Content-(Disposition|Type):.*name=\"?[^\"]*\\.(exe|scr|js)\"?$/i REJECT Executable attachments "
     "are refused'. The message's own fields are header_checks'."},
    {"body_checks", T_OPTPATH, F(body_checks), "", 0, 0,
     "Table file of rules as header_checks, matched against each line of the message's text outside the "
     "header blocks (the bodies of its parts, the MIME delimiter lines), as it is sent: not decoded "
     "(base64 or quoted-printable text is matched encoded). event=body_warning for WARN."},
    {"body_checks_size_limit", T_SIZE, F(body_checks_size_limit), "50K", 1, 1ull << 30,
     "Octets of the text body_checks looks at: the lines that start in the first this many octets of it (the "
     "rules run on the event loop: a big message must not stall it)."},
    {"mailbox_quota", T_SIZE, F(mailbox_quota), "0", 0, 1ull << 50,
     "Octets each local mailbox may hold (all its folders), kept in its maildirsize file as the Maildir++ "
     "convention has it (Dovecot's quota = maildir:..., Courier and maildrop read and write the same). A RCPT "
     "for a mailbox that is full, or that the message's declared SIZE would overfill, gets 452 4.2.2 (552 5.2.2 "
     "when the message is bigger than the whole quota); a message whose text overfills every mailbox it is for "
     "gets the same at its end. 0 = no quota."},
    {"mailbox_quota_messages", T_UINT, F(mailbox_quota_messages), "0", 0, 1000000000,
     "Messages each local mailbox may hold (all its folders), the Maildir++ 'C' quota, beside mailbox_quota's "
     "octets: a RCPT for a mailbox holding that many gets 452 4.2.2. 0 = no limit."},
    {"mailbox_quotas", T_OPTPATH, F(mailbox_quotas), "", 0, 0,
     "Table file of quotas other than mailbox_quota and mailbox_quota_messages: 'address size [messages]' or "
     "'@domain size [messages]' per line (size in octets, k/M/G allowed; 0 = none for that mailbox)."},
    {"mailbox_quota_warning", T_UINT, F(mailbox_quota_warning), "90", 0, 100,
     "Percent of its quota at which a mailbox's owner finds a notice in it (from postmaster: how full, what "
     "happens when it is full, how to make room): once each time a delivery takes it past. 0 = none."},
    {"mailbox_quota_recheck", T_DURATION, F(mailbox_quota_recheck), "1m", 1, 86400,
     "How long a mailbox's usage, once read from its maildirsize, is trusted (with this server's deliveries "
     "added) before a RCPT reads it again: mail deleted through IMAP frees room within this time."},
    {"io_threads", T_UINT, F(io_threads), "16", 1, 256,
     "Threads for blocking work: writing messages for the committer, committing messages bigger than "
     "journal_message_max (each waits for its own flushes: more threads, more of them overlap), "
     "password hashing, disk checks."},
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
     "Bigger messages skip the journal (saves writing them twice): each is committed on its own on a disk "
     "thread, its file fsynced, linked into new/, new/ fsynced, then 250."},
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
    {"dkim_verify", T_BOOL, F(dkim_verify), "no", 0, 0,
     "yes: the DKIM signatures (RFC 6376) of mail received on the MX role are verified before its 250 (key "
     "lookups at most dns_timeout) and the results, with SPF's, go into an Authentication-Results field "
     "(RFC 8601) at the top of the message; such fields naming this hostname are removed first. Nothing "
     "is refused. Not for users' and relay_networks clients' mail."},
    {"dmarc_policy", T_POLICY, F(dmarc_policy), "off", 0, 0,
     "DMARC (RFC 7489) on the MX role: header = the From domain's policy is looked up and the result (SPF or "
     "DKIM passing in alignment with the From domain) goes into Authentication-Results; reject = also "
     "refuse (550 5.7.1 after the data) mail that fails where the domain asks p=reject (p=quarantine: "
     "delivered, marked dis=quarantine). Needs dkim_verify = yes and spf_policy header or reject. Aggregate "
     "reports: dmarc_reports."},
    {"dmarc_quarantine_folder", T_STRING, F(dmarc_quarantine_folder), "", 0, 0,
     "With dmarc_policy = reject: the Maildir++ folder (e.g. Junk: <mailbox>/.Junk) that the local copies of "
     "mail failing DMARC where the domain asks p=quarantine are delivered to, as the IMAP server's spam "
     "folder. Empty: the inbox (marked dis=quarantine in Authentication-Results). Letters, digits, - and _."},
    {"milters", T_MILTER_LIST, F(milters), "", 0, 0,
     "Content filters speaking the milter protocol (rspamd, SpamAssassin's or ClamAV's milter, OpenDKIM), "
     "each inet:ADDRESS:PORT or unix:/PATH, asked in turn at the end of each message's data, before it is "
     "stored: each sees the envelope, the header and the body, may add, insert or change header fields, "
     "and accepts, rejects (550), defers (451) or discards the message."},
    {"milter_timeout", T_DURATION, F(milter_timeout), "30s", 1, 3600,
     "Milters: how long the connection and each reply may take (a progress notice restarts it)."},
    {"milter_fail_open", T_BOOL, F(milter_fail_open), "no", 0, 0,
     "Milters: yes = a milter that cannot be reached, times out or breaks the protocol is skipped and the "
     "message accepted without it; no = the message gets 451 4.3.0 and the client sends it again later "
     "(Postfix's milter_default_action = tempfail)."},
    {"dmarc_reports", T_BOOL, F(dmarc_reports), "no", 0, 0,
     "yes: DMARC aggregate reports (RFC 7489 7.2) - the DMARC results of the mail received (dmarc_policy) are "
     "counted per domain, and each domain whose _dmarc record names mailto: addresses in rua= gets a report "
     "(gzip'd XML) there after each dmarc_report_interval; an address outside the domain must agree by DNS "
     "first (RFC 7489 7.1). Needs dmarc_policy header or reject."},
    {"dmarc_report_interval", T_DURATION, F(dmarc_report_interval), "1d", 2, 86400,
     "DMARC reports: the period each report covers, from a multiple of it since 1970 (1d: a UTC day, the "
     "default ri= of RFC 7489; shorter for trying it out)."},
    {"dmarc_report_organization", T_STRING, F(dmarc_report_organization), "", 0, 0,
     "DMARC reports: the org_name they state. Empty: hostname."},
    {"dmarc_report_contact", T_STRING, F(dmarc_report_contact), "", 0, 0,
     "DMARC reports: the address they come from and give as email (their sender too: a report that bounces "
     "comes back there); its domain is the Submitter. Empty: postmaster@hostname."},
    {"client_name_check", T_POLICY, F(client_name_check), "off", 0, 0,
     "The client's name: header = its address is looked up in reverse DNS and each name found forward; the first "
     "whose addresses include the client's is logged and written into the Received field (\"unknown\" when "
     "none); reject = also 450 4.7.25 at each RCPT but postmaster's for an MX client without one. A DNS "
     "failure refuses nothing. Not for relay_networks clients and users."},
    {"spf_skip_networks", T_CIDR_LIST, F(spf_skip_networks), "", 0, 0,
     "Client networks (CIDR) whose mail is not checked with SPF: your backup MX, forwarders you trust (they pass "
     "on others' mail, so its SPF fails from them). relay_networks clients and users are never checked."},
    {"spf_policy", T_POLICY, F(spf_policy), "off", 0, 0,
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
    {"smtp_mta_sts", T_BOOL, F(smtp_mta_sts), "yes", 0, 0,
     "yes: MTA-STS (RFC 8461) for relayed mail: a recipient domain that publishes a policy (_mta-sts TXT record, "
     "https://mta-sts.<domain>/.well-known/mta-sts.txt) in enforce mode gets its mail only at the MX hosts the "
     "policy lists, over TLS with a certificate valid for the MX name (else deferred, 4.7.5); testing mode is "
     "logged only. Policies are cached for their max_age. DANE, and an smtp_tls_policy line, come first. Needs "
     "smtp_tls = yes."},
    {"smtp_mta_sts_timeout", T_DURATION, F(smtp_mta_sts_timeout), "30s", 1, 600,
     "Outbound: how long fetching an MTA-STS policy over HTTPS may take, every address of its host tried included (then the cached policy, if any, applies)."},
    {"requiretls", T_BOOL, F(requiretls), "yes", 0, 0,
     "yes: the REQUIRETLS extension (RFC 8689) is offered in TLS sessions: a message sent with MAIL FROM ... "
     "REQUIRETLS is relayed only over TLS verified for its next hop (DANE, an MTA-STS enforce policy or "
     "DNSSEC-signed MX records, the host's certificate), to a host that offers REQUIRETLS too; else it "
     "bounces (5.7.30), its report with the headers only. Its TLS-Required field is ignored."},
    {"tls_reports", T_BOOL, F(tls_reports), "no", 0, 0,
     "yes: SMTP TLS Reporting (RFC 8460) - the results of TLS with the mail exchangers of domains that have an "
     "MTA-STS policy or DANE TLSA records are counted, and each such domain whose _smtp._tls TXT record names "
     "mailto: or https: addresses gets a report (gzip'd JSON) there after each tls_report_interval. Needs smtp_tls "
     "= yes."},
    {"tls_report_interval", T_DURATION, F(tls_report_interval), "1d", 2, 86400,
     "TLS reports: the period each report covers, from a multiple of it since 1970 (1d: a UTC day, as RFC 8460 "
     "asks; shorter for trying it out)."},
    {"tls_report_organization", T_STRING, F(tls_report_organization), "", 0, 0,
     "TLS reports: the organization-name and submitter they state. Empty: hostname."},
    {"tls_report_contact", T_STRING, F(tls_report_contact), "", 0, 0,
     "TLS reports: the address they come from and give as contact-info (their sender too: a report that "
     "bounces comes back there). Empty: postmaster@hostname."},
    {"smtp_tls_policy", T_OPTPATH, F(smtp_tls_policy), "", 0, 0,
     "Table file of TLS levels per destination, overriding smtp_tls and smtp_tls_verify for it: "
     "'destination level' per line, destination a domain, .parent (its subdomains) or a next hop as "
     "relay_host or the transport table write it ([host]:port); level none (never TLS, not even DANE), may "
     "(TLS when offered, unverified), encrypt (TLS or nothing, unverified), verify (TLS or nothing, the "
     "certificate valid for the host name), dane (DANE as smtp_dane, even when that is no) or dane-only (DANE "
     "or nothing: validated TLSA records required). Mail a level cannot be met for is deferred (4.7.4, 4.7.5)."},
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
const size_t config_nkeys = sizeof config_keys / sizeof config_keys[0];
_Static_assert(sizeof config_keys / sizeof config_keys[0] <= sizeof ((struct config *)0)->key_lines /
                   sizeof ((struct config *)0)->key_lines[0], "struct config key_lines too small");
