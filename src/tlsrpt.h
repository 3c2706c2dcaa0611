/* tlsrpt.h - SMTP TLS Reporting (RFC 8460), the pure part: the day's results of TLS with the mail
 * exchangers of domains that have a policy (MTA-STS, or DANE's TLSA records), counted per domain
 * and policy, the JSON report of one domain (RFC 8460 4), and the reporting address of its
 * _smtp._tls TXT record. Bounded: TLSRPT_DOMAINS_MAX domains, TLSRPT_FAILURES_MAX kinds of failure
 * each (more are counted in the summary, not detailed). Loop thread. */
#ifndef POSTERN_TLSRPT_H
#define POSTERN_TLSRPT_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define TLSRPT_DOMAINS_MAX 10000
#define TLSRPT_FAILURES_MAX 16
#define TLSRPT_POLICY_LINES_MAX 16
#define TLSRPT_RUA_MAX 4

enum tlsrpt_policy { TLSRPT_STS, TLSRPT_TLSA };

/* One TLS negotiation's outcome with a mail exchanger of domain, under its policy. */
struct tlsrpt_result {
    const char *domain;                /* the policy domain: the recipient domain */
    enum tlsrpt_policy type;
    const char *const *policy_lines;   /* the policy as RFC 8460 4.4 writes it (MTA-STS lines, TLSA records) */
    size_t npolicy_lines;
    const char *const *mx_patterns;    /* MTA-STS: the policy's mx patterns */
    size_t nmx_patterns;
    const char *mx_host;               /* the exchanger tried */
    const char *ip;                    /* its address */
    const char *failure;               /* NULL: success; else an RFC 8460 4.3 result type */
};

struct tlsrpt;

struct tlsrpt *tlsrpt_new(void);
void tlsrpt_free(struct tlsrpt *t);

/* Counts r; false when it could not be (the domain table full, or out of memory). */
bool tlsrpt_note(struct tlsrpt *t, const struct tlsrpt_result *r);

/* The domains with results, in the order first seen, and the sessions counted for each. */
size_t tlsrpt_domains(const struct tlsrpt *t);
const char *tlsrpt_domain(const struct tlsrpt *t, size_t i);
void tlsrpt_counts(const struct tlsrpt *t, size_t i, unsigned long long *ok, unsigned long long *failed);

/* Forgets every result (a new period begins). */
void tlsrpt_clear(struct tlsrpt *t);

/* The JSON report (RFC 8460 4.4) of domain i for the period [start, end), malloc'd (NULL when out
 * of memory). */
char *tlsrpt_json(const struct tlsrpt *t, size_t i, const char *organization, const char *contact,
                  const char *report_id, time_t start, time_t end, size_t *len);

/* The table as text - lines "D domain", "P type ok failed", "L policy line", "M mx pattern",
 * "F count result-type mx-host ip" - for the file a stop leaves (malloc'd; NULL when out of
 * memory); tlsrpt_undump reads such a text into an empty t (false when a line is not one of them:
 * what came before it is kept). */
char *tlsrpt_dump(const struct tlsrpt *t, size_t *len);
bool tlsrpt_undump(struct tlsrpt *t, const char *text);

/* Where a TLSRPT record ("v=TLSRPTv1; rua=mailto:a@b.example,https://r.example/v1") wants its
 * reports: mailto: addresses and https: URLs, TLSRPT_RUA_MAX of each (more, and other schemes,
 * ignored); false when record is not one (no version, no rua, or no usable destination). */
struct tlsrpt_rua {
    char mailto[TLSRPT_RUA_MAX][256];
    size_t nmailto;
    char https[TLSRPT_RUA_MAX][512];
    size_t nhttps;
};
bool tlsrpt_record_rua(const char *record, struct tlsrpt_rua *rua);

/* The RFC 8460 4.3 result type for an OpenSSL verification error (X509_V_ERR_*). */
const char *tlsrpt_verify_failure(long x509_error);

#endif
