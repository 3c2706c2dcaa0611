/* dmarc.h - DMARC (RFC 7489): the From domain's policy record, the alignment of the SPF and DKIM
 * results with the From domain, the result and the disposition the domain asks for. Pure, but
 * for the Public Suffix List (libpsl: the organizational domain), loaded once per process. No
 * failure reports are sent (ruf= is read past); aggregate reports are dmarcrpt.h's. */
#ifndef POSTERN_DMARC_H
#define POSTERN_DMARC_H

#include <stdbool.h>
#include <stddef.h>

#include "address.h"

#define DMARC_RECORD_MAX 2048 /* a policy record, its strings joined */
#define DMARC_DKIM_MAX 8      /* passing DKIM signatures considered */

enum dmarc_result { DMARC_NONE, DMARC_PASS, DMARC_FAIL, DMARC_TEMPERROR, DMARC_PERMERROR, DMARC__COUNT };

enum dmarc_disposition { DMARC_DIS_NONE, DMARC_DIS_QUARANTINE, DMARC_DIS_REJECT };

struct dmarc_record {
    enum dmarc_disposition p, sp; /* sp: p when the record gives none */
    bool adkim_strict, aspf_strict;
    unsigned pct;                 /* 0..100 */
};

/* The one record of a TXT answer that starts "v=DMARC1" (strings joined) into out: 1, or 0 when
 * there is none, -1 when there are several or it is too long (RFC 7489 6.6.3: then none). */
int dmarc_select_record(const unsigned char *const *rdata, const int *len, int n, char *out, size_t outsz);

/* Parses a selected record; false when it is no valid DMARC record (p= missing or unknown, a bad
 * adkim/aspf/pct value). */
bool dmarc_parse_record(const char *text, struct dmarc_record *r);

/* The organizational domain of a canonical domain (its registrable domain by the Public Suffix
 * List; the domain itself when the list has none) into out. */
void dmarc_org_domain(const char *domain, char *out, size_t outsz);

/* What DMARC is asked about one message. */
struct dmarc_facts {
    const char *from_domain;   /* the From field's domain (A-label) */
    const char *spf_domain;    /* the domain SPF checked (MAIL FROM's, else HELO's), or NULL */
    bool spf_pass;
    const char *dkim_pass[DMARC_DKIM_MAX]; /* d= of each signature that passed */
    size_t ndkim;
};

/* Whether a passing DKIM signature's domain and SPF's domain (when SPF passed) align with the From
 * domain under r's adkim=/aspf= (RFC 7489 3.1): the two DMARC results an aggregate report gives. */
void dmarc_alignment(const struct dmarc_record *r, const struct dmarc_facts *f, bool *dkim, bool *spf);

/* The result for a message whose From domain publishes record r (found at the From domain itself
 * when !at_org_domain, else at its organizational domain: then sp= applies), and the disposition
 * - after pct= sampling with draw (0..99, random) - for a fail; DMARC_DIS_NONE for a pass. */
enum dmarc_result dmarc_evaluate(const struct dmarc_record *r, const struct dmarc_facts *f, bool at_org_domain,
                                 unsigned draw, enum dmarc_disposition *dis);

/* "none", "pass", ... as RFC 8601 writes them; "none", "quarantine", "reject". */
const char *dmarc_result_name(enum dmarc_result r);
const char *dmarc_disposition_name(enum dmarc_disposition d);

#endif
