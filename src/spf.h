/* spf.h - Sender Policy Framework (RFC 7208): may this client send mail from this domain? The
 * MX role asks it at MAIL for the sender's domain (the HELO name for the null sender) and records
 * the answer in a Received-SPF field, or refuses a "fail" (spf_policy).
 *
 * check_host() runs on the event loop over asynchronous DNS (dns.h): the domain's "v=spf1" TXT
 * record is read, syntax-checked whole, and its terms evaluated in order - ip4, ip6, a, mx, ptr,
 * exists, include, all; redirect= when nothing matched; macros (RFC 7208 7) expanded. At most 10
 * terms that look something up (include, a, mx, ptr, exists, redirect), 2 of them finding nothing
 * (void lookups), 10 MX or PTR names each: past that, permerror (RFC 7208 4.6.4). */
#ifndef POSTERN_SPF_H
#define POSTERN_SPF_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct dns;
struct spf_check;

enum spf_result { SPF_NONE, SPF_NEUTRAL, SPF_PASS, SPF_FAIL, SPF_SOFTFAIL, SPF_TEMPERROR, SPF_PERMERROR,
                  SPF__COUNT };

#define SPF_LOOKUP_LIMIT 10   /* terms that cause DNS lookups */
#define SPF_VOID_LIMIT 2      /* lookups that found nothing */
#define SPF_NAMES_LIMIT 10    /* MX names of one mx term, PTR names of one ptr term */
#define SPF_RECORD_MAX 4096   /* octets of one record (RFC 7208 3.4: it should fit a 512-octet answer) */
#define SPF_DEPTH_MAX (SPF_LOOKUP_LIMIT + 1) /* the record and its includes: the lookup limit comes first */

/* "pass", "fail", ... as RFC 7208 names the results (Received-SPF, logs, metrics). */
const char *spf_result_name(enum spf_result r);

#define SPF_EXPLANATION_MAX 200 /* octets of an exp= explanation kept (RFC 7208 6.2 allows a limit) */

/* The result and a short explanation for logs and the Received-SPF comment (which term matched, or
 * what went wrong). explanation: for a fail, the domain's own words when its record has exp= (RFC
 * 7208 6.2), printable US-ASCII, at most SPF_EXPLANATION_MAX octets; else NULL. */
typedef void (*spf_done_cb)(void *arg, enum spf_result result, const char *detail, const char *explanation);

/* Starts check_host(ip, domain of sender, sender) (RFC 7208 4). sender is "local@domain" (for the
 * null sender: "postmaster@HELO-name"); helo feeds the %{h} macro, receiver (this server's host
 * name) the %{r} of an explanation. cb runs later on the loop thread, never from inside this call.
 * NULL when out of memory. */
struct spf_check *spf_check_start(struct dns *dns, const struct sockaddr *ip, const char *sender, const char *helo,
                                  const char *receiver, spf_done_cb cb, void *arg);

/* True when the check has its result, fail, and waits only for the exp= explanation (which must
 * never change a result: RFC 7208 6.2): a caller whose time is up takes fail, with the detail
 * copied into detail, before it cancels. NULL is fine (false). */
bool spf_check_failed_unexplained(const struct spf_check *c, char *detail, size_t detailsz);

/* Stops a check: its callback will not run. NULL is fine. */
void spf_check_cancel(struct spf_check *c);

/* How checks ask DNS: dns_lookup and dns_cancel (dns.h). The fuzz target fuzz_spf_eval puts in its
 * own, answering from its input; nothing else changes them. */
struct dns_answer;
struct dns_query;
struct spf_dns_ops {
    struct dns_query *(*lookup)(struct dns *d, const char *name, int rrtype,
                                void (*cb)(void *arg, const struct dns_answer *answer), void *arg);
    void (*cancel)(struct dns_query *q);
};
extern struct spf_dns_ops spf_dns;

/* ---- pure parts (unit-tested, fuzzed) ---- */

/* What the macros (RFC 7208 7.3) stand for. */
struct spf_macro_env {
    const char *sender;   /* s */
    const char *local;    /* l */
    const char *sender_domain; /* o */
    const char *domain;   /* d: the domain whose record is evaluated */
    const char *ip;       /* i: dotted IPv4, or IPv6 as 32 dot-separated nibbles */
    bool ipv6;            /* v: "ip6", else "in-addr" */
    const char *helo;     /* h */
    const char *client;   /* c: the client address as text - in an explanation only (NULL elsewhere) */
    const char *receiver; /* r: this server's host name - in an explanation only */
    const char *timestamp; /* t: seconds since the epoch - in an explanation only */
};

/* Expands the macro-string spec[0..len) into out (at most 253 octets kept: longer loses labels
 * from the left, RFC 7208 7.3); false on a syntax error (an unknown or unterminated macro, c, r or
 * t outside exp=, a transformer of 0 labels) or when out is too small. env NULL: syntax only. */
bool spf_expand(const char *spec, size_t len, const struct spf_macro_env *env, char *out, size_t outsz);

/* Expands an explanation (RFC 7208 6.2: explain-string, the exp= TXT record's text) into out:
 * spaces and the c, r and t macros allowed, no cut to a domain's length; false on a syntax error
 * or when out is too small. */
bool spf_expand_explanation(const char *text, size_t len, const struct spf_macro_env *env, char *out, size_t outsz);

/* The one "v=spf1" record among a name's TXT answers (each as its rdata: length-prefixed
 * strings, joined without separators) into out. 0: none; 1: found; -1: more than one, or one
 * longer than SPF_RECORD_MAX (permerror). */
int spf_select_record(const unsigned char *const *rdata, const int *len, int n, char *out, size_t outsz);

/* RFC 7208 4.6: the whole record's syntax, before any term is evaluated; false on an error. */
bool spf_record_valid(const char *record);

#endif
