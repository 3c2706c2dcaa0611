/* next_hop.h - where a destination's mail is sent: the recipient domain's mail exchangers, or a
 * host the administrator named (relay_host, or a transport table entry) in Postfix's notation. */
#ifndef POSTERN_NEXT_HOP_H
#define POSTERN_NEXT_HOP_H

#include <stdbool.h>

#define NEXT_HOP_TEXT_MAX 270 /* the longest next-hop text accepted: [255-octet name]:65535 */

/* smtp_tls_policy's level for a destination; TLS_POLICY_DEFAULT: smtp_tls, smtp_tls_verify and
 * smtp_dane decide. DANE: DANE when the host has DNSSEC-validated TLSA records (even with smtp_dane =
 * no), else as may; DANE_ONLY: DANE or nothing (RFC 7672 with no fallback). */
enum tls_policy {
    TLS_POLICY_DEFAULT,
    TLS_POLICY_NONE,
    TLS_POLICY_MAY,
    TLS_POLICY_ENCRYPT,
    TLS_POLICY_VERIFY,
    TLS_POLICY_DANE,
    TLS_POLICY_DANE_ONLY
};

struct next_hop {
    char name[300];    /* the destination's name: the recipient domain, or the next hop as written */
    char route[264];   /* what to resolve: a domain (MX lookup when mx), a host name, or "[address]" */
    unsigned port;
    bool mx;           /* route is looked up as a domain: MX records first */
    bool configured;   /* named by the administrator: its failures are ours to fix (deferred) */
    bool relay_host;   /* relay_host itself: relay_host_implicit_tls and relay_host_auth apply */
    bool lmtp;         /* final delivery by LMTP (RFC 2033): LHLO, a reply per recipient after the data */
    bool unix_socket;  /* route is the path of a Unix-domain socket (LMTP only), not a host */
    enum tls_policy tls; /* set for each connection from smtp_tls_policy (policy_tls_for) */
    bool mta_sts;        /* tls was set by the destination's MTA-STS policy (enforce): verify */
    bool mta_sts_testing; /* the policy is in testing mode: TLS checked as enforce would, a failure
                             logged (RFC 8461 5), the mail sent anyway */
    bool tls_optional;   /* the message says TLS-Required: No (RFC 8689): the recipient domain's own
                            TLS policies (MTA-STS, DANE) are not applied; the administrator's are */
    bool require_tls;    /* the message was sent with REQUIRETLS (RFC 8689 4): TLS verified, to a
                            host that offers REQUIRETLS, MAIL FROM with REQUIRETLS */
};

#define LMTP_PORT 24


/* Parses "[name]" or "[address]" (the host itself, no MX lookup; an IPv6 address as [2001:db8::1]
 * or [IPv6:2001:db8::1]) or a bare name (MX lookup), then an optional ":port" (default_port when
 * none). Or an LMTP server: "lmtp:" then a host as above (never an MX lookup; port 24 when none) or
 * "unix:" and the absolute path of its socket. Fills hop as configured (not relay_host); false when
 * text is none of these. */
bool next_hop_parse(const char *text, unsigned default_port, struct next_hop *hop);

/* True when a next-hop text names an LMTP server ("lmtp:..."). */
bool next_hop_text_is_lmtp(const char *text);

/* The plain route of a recipient domain: its own mail exchangers on port. */
void next_hop_domain(const char *domain, unsigned port, struct next_hop *hop);

#endif
