/* dmarcrpt.h - DMARC aggregate reports (RFC 7489 7.2), the pure part: the period's DMARC results
 * counted per policy domain (the domain whose _dmarc record applied) in rows - messages alike in
 * source address, From domain, disposition applied, aligned results and each SPF and DKIM result
 * -, the XML report of one domain (RFC 7489 appendix C), and the rua= addresses of a DMARC record.
 * Bounded: DMARCRPT_DOMAINS_MAX domains, DMARCRPT_ROWS_MAX rows in all. Loop thread. */
#ifndef POSTERN_DMARCRPT_H
#define POSTERN_DMARCRPT_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "dmarc.h"

#define DMARCRPT_DOMAINS_MAX 10000
#define DMARCRPT_ROWS_MAX 100000
#define DMARCRPT_DKIM_MAX 4 /* DKIM signatures a row details */
#define DMARCRPT_RUA_MAX 4  /* report addresses of a record used */

struct dmarcrpt_dkim {
    const char *domain, *selector, *result; /* d=, s=, the result as RFC 8601 names it */
};

/* One message's DMARC evaluation (a pass or a fail under a record found). */
struct dmarcrpt_message {
    const char *policy_domain;            /* where the record was found: the From domain or its org domain */
    const struct dmarc_record *policy;
    const char *source_ip;
    const char *header_from;
    enum dmarc_disposition disposition;   /* as applied */
    bool dkim_aligned, spf_aligned;
    const char *reason;                   /* NULL, or an RFC 7489 PolicyOverrideType ("sampled_out", ...) */
    const char *spf_domain;               /* the domain SPF checked, or NULL */
    bool spf_helo;                        /* it was the HELO name's (scope helo, else mfrom) */
    const char *spf_result;               /* "pass", "fail", ... ("none" when SPF was not asked) */
    struct dmarcrpt_dkim dkim[DMARCRPT_DKIM_MAX];
    size_t ndkim;
};

struct dmarcrpt;

struct dmarcrpt *dmarcrpt_new(void);
void dmarcrpt_free(struct dmarcrpt *t);

/* Forgets every count (a new period begins). */
void dmarcrpt_clear(struct dmarcrpt *t);

/* Counts m; false when it could not be (a table full, or out of memory). */
bool dmarcrpt_note(struct dmarcrpt *t, const struct dmarcrpt_message *m);

/* The policy domains with messages, in the order first seen, and the messages counted for each. */
size_t dmarcrpt_domains(const struct dmarcrpt *t);
const char *dmarcrpt_domain(const struct dmarcrpt *t, size_t i);
unsigned long long dmarcrpt_messages(const struct dmarcrpt *t, size_t i);

/* The XML report (RFC 7489 appendix C) of domain i for the period [start, end), malloc'd (NULL
 * when out of memory). */
char *dmarcrpt_xml(const struct dmarcrpt *t, size_t i, const char *organization, const char *contact,
                   const char *report_id, time_t start, time_t end, size_t *len);

/* The table as text - lines "D domain adkim aspf p sp pct" and "R count row" - for the file a stop
 * leaves (malloc'd; NULL when out of memory); dmarcrpt_undump reads such a text into t (false
 * when a line is not one of them: what came before it is kept). */
char *dmarcrpt_dump(const struct dmarcrpt *t, size_t *len);
bool dmarcrpt_undump(struct dmarcrpt *t, const char *text);

/* The mailto: addresses of a DMARC record's rua= tag (RFC 7489 6.2, 6.4), DMARCRPT_RUA_MAX of
 * them, each with its size limit ("!10m"; 0: none); other schemes are ignored. False when there
 * is none. */
struct dmarcrpt_rua {
    char mailto[DMARCRPT_RUA_MAX][256];
    unsigned long long max_size[DMARCRPT_RUA_MAX];
    size_t n;
};
bool dmarcrpt_record_rua(const char *record, struct dmarcrpt_rua *rua);

/* True when address is outside policy_domain's organizational domain: then RFC 7489 7.1 asks the
 * address's domain to agree first (a v=DMARC1 TXT record at policy_domain._report._dmarc.<its
 * domain>, whose name goes into name). */
bool dmarcrpt_external(const char *policy_domain, const char *address, char *name, size_t namesz);

#endif
