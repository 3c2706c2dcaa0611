/* dns.h - asynchronous DNS through libunbound, driven by the event loop (never blocks it).
 * Two questions matter to an MTA: where does mail for a domain go (MX, null MX, implicit MX, then
 * the addresses of each exchanger), and does a domain take mail at all (null MX, RFC 7505; or no
 * such domain) - asked of senders' and recipients' domains before the reply to MAIL or RCPT. */
#ifndef POSTERN_DNS_H
#define POSTERN_DNS_H

#include <stdbool.h>
#include <sys/socket.h>

struct event_base;
struct config;
struct config_errors;
struct dns;
struct dns_query;

#define DNS_MAX_TARGETS 16

enum dns_status {
    DNS_OK,         /* targets holds at least one address */
    DNS_NULL_MX,    /* the domain publishes "MX 0 ." : it accepts no mail */
    DNS_NXDOMAIN,   /* the domain does not exist (or has no MX and no address): permanent */
    DNS_TEMPFAIL,   /* SERVFAIL, timeout, resolver trouble, or exchangers without addresses */
};

struct dns_target {
    char host[256];                /* the exchanger's name */
    unsigned pref;                 /* its MX preference (0 for the implicit MX) */
    struct sockaddr_storage addr;  /* port 0: the caller sets it */
    socklen_t addrlen;
    bool secure;                   /* its address answers were DNSSEC-validated (AD) */
};

struct dns_route {
    enum dns_status status;
    bool implicit_mx;              /* no MX: the domain's own addresses (RFC 5321 5.1) */
    bool secure;                   /* every answer used was DNSSEC-validated (AD) */
    bool mx_secure;                /* the MX answer (or the proof there is none) was validated: DANE may apply */
    unsigned ttl;                  /* DNS_OK: seconds the route may be used (the smallest TTL of its answers) */
    char error[256];               /* DNS_TEMPFAIL / DNS_NXDOMAIN: what went wrong, for logs and bounces */
    size_t ntargets;
    struct dns_target targets[DNS_MAX_TARGETS]; /* in the order to try */
};

typedef void (*dns_route_cb)(void *arg, const struct dns_route *route);
/* The answer of dns_check_domain: route->status is DNS_NULL_MX, DNS_NXDOMAIN (no such domain, or
 * none of MX and address records: nothing can reach it), DNS_TEMPFAIL or DNS_OK; route->error
 * says why for the first three. No targets: exchangers' addresses are not looked up. */
typedef void (*dns_domain_cb)(void *arg, const struct dns_route *route);

/* Reads dns_trust_anchor (when set) the way the resolver will: a file that cannot be read, or that
 * holds no usable DS/DNSKEY records, is added to errs naming file:line: key (libunbound's own log
 * line on stderr says where the file is wrong). False then. */
bool dns_check_trust_anchor(const struct config *cfg, struct config_errors *errs);

/* Creates the resolver from dns_resolver / dns_trust_anchor; NULL on failure, with err filled and
 * key set to the setting to look at. */
struct dns *dns_new(struct event_base *base, const struct config *cfg, char *err, size_t errsz, const char **key);
void dns_free(struct dns *d);

/* Resolves where mail for domain goes; cb runs later on the loop thread (never from inside this call).
 * Returns a handle for dns_cancel, or NULL (cb will not run) when out of memory. */
struct dns_query *dns_resolve_route(struct dns *d, const char *domain, dns_route_cb cb, void *arg);

/* The same for a host that takes mail without an MX lookup (relay_host = [name]): its own
 * addresses (or an address literal's); no address is DNS_NXDOMAIN. An absolute path is an LMTP
 * server's Unix-domain socket: one AF_UNIX target, no DNS. */
struct dns_query *dns_resolve_host(struct dns *d, const char *host, dns_route_cb cb, void *arg);

/* Asks whether domain takes mail at all, for MAIL/RCPT-time checks: its MX records (a null MX,
 * RFC 7505), and, with existence set and no MX, its own address records (RFC 5321 5.1: the
 * implicit MX). Without existence only the MX question is asked, and every answer but a null MX
 * is DNS_OK. */
struct dns_query *dns_check_domain(struct dns *d, const char *domain, bool existence, dns_domain_cb cb, void *arg);

/* TLSA records (RFC 6698) of an MX host, for DANE (RFC 7672). Only what SMTP may use is kept:
 * DANE-TA(2) and DANE-EE(3), selector 0 (certificate) or 1 (public key), a SHA-256 or SHA-512
 * digest (matching type 1 or 2); others (PKIX usages, full data) are counted as unusable. */
#define DNS_TLSA_MAX 8
struct dns_tlsa {
    unsigned char usage, selector, mtype;
    unsigned char len;        /* 32 or 64 */
    unsigned char data[64];
};

enum dns_tlsa_status {
    TLSA_NONE,      /* no DANE: no validated TLSA records (none, or the answer was not DNSSEC-signed) */
    TLSA_USABLE,    /* validated records, at least one usable: TLS is required and must match one */
    TLSA_UNUSABLE,  /* validated records, none usable: TLS is required, not authenticated (RFC 7672 2.2) */
    TLSA_FAILED,    /* the lookup failed or its signatures are bogus: this host must not be used */
};

struct dns_tlsa_set {
    enum dns_tlsa_status status;
    size_t n;                 /* usable records */
    struct dns_tlsa rr[DNS_TLSA_MAX];
    char error[256];          /* TLSA_FAILED: why */
};

typedef void (*dns_tlsa_cb)(void *arg, const struct dns_tlsa_set *set);

/* Looks up _port._tcp.host TLSA; cb runs later on the loop thread. */
struct dns_query *dns_resolve_tlsa(struct dns *d, const char *host, unsigned port, dns_tlsa_cb cb, void *arg);

/* Pure (unit-tested): one TLSA rdata into out; false when SMTP cannot use it (see above). */
bool dns_parse_tlsa_rdata(const unsigned char *rdata, int len, struct dns_tlsa *out);

/* One question's answer as it came, for callers that read records themselves (SPF, spf.c): the
 * rdata of each record (wire format) valid during the callback only. status: DNS_OK with n >= 0
 * records (0: the name exists without records of that type), DNS_NXDOMAIN, or DNS_TEMPFAIL. */
struct dns_answer {
    enum dns_status status;
    int n;
    const unsigned char *const *data;
    const int *len;
};

typedef void (*dns_answer_cb)(void *arg, const struct dns_answer *answer);

/* Asks one question (rrtype: DNS_RR_*); cb runs later on the loop thread. */
#define DNS_RR_A 1
#define DNS_RR_PTR 12
#define DNS_RR_MX 15
#define DNS_RR_TXT 16
#define DNS_RR_AAAA 28
struct dns_query *dns_lookup(struct dns *d, const char *name, int rrtype, dns_answer_cb cb, void *arg);

/* Pure: a domain name in wire format (uncompressed labels, as libunbound gives rdata) at p[0..len)
 * into out as text without the final dot; false when malformed or too long. */
bool dns_wire_name(const unsigned char *p, int len, char *out, size_t outsz);

/* Pure: the strings of one TXT record's rdata joined into out (NUL-terminated, at most outsz - 1
 * octets). 1: the whole record; 0: longer than that, or holding a NUL (out has what came before);
 * -1: malformed rdata (out has the strings before the break). */
int dns_txt_join(const unsigned char *rdata, int len, char *out, size_t outsz);

/* Pure: the one TXT record among a name's answers (each as its rdata: length-prefixed strings,
 * joined without separators) that starts with prefix (ASCII case ignored) followed by its end or
 * one of the characters of after, into out. 0: none; 1: found; -1: several, or the one found is
 * longer than outsz - 1 or holds a NUL (SPF's and DMARC's record selection). */
int dns_txt_select(const unsigned char *const *rdata, const int *len, int n, const char *prefix, const char *after,
                   char *out, size_t outsz);

/* Stops a query: its callback will not run. */
void dns_cancel(struct dns_query *q);

/* The name under which an address is looked up in a reverse zone: "4.3.2.1.<zone4>" for 1.2.3.4 (a
 * v4-mapped IPv6 address as its IPv4), 32 reversed nibbles then <zone6> for IPv6 (RFC 1035 3.5,
 * RFC 3596 2.5; a DNS block list uses its own zone for both). False for another family or no room. */
bool dns_reverse_name(const struct sockaddr_storage *addr, const char *zone4, const char *zone6, char *out,
                      size_t outsz);

/* Pure helpers (unit-tested): the MX records in rdata form -> sorted (host, pref) list with equal
 * preferences shuffled; true and *is_null when the set is exactly one "0 ." record. */
struct dns_mx {
    unsigned pref;
    char host[256];
};
bool dns_parse_mx_rdata(const unsigned char *rdata, int len, struct dns_mx *out);
bool dns_mx_set_is_null(const struct dns_mx *mx, int n);
void dns_sort_mx(struct dns_mx *mx, int n);

#endif
