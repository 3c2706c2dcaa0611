/* dmarc.c - see dmarc.h. The Public Suffix List comes from libpsl (psl_latest: the newer of its
 * built-in list and the system's /usr/share/publicsuffix), loaded at the first use. */
#include "dmarc.h"

#include <libpsl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dns.h"
#include "taglist.h"

const char *dmarc_result_name(enum dmarc_result r)
{
    static const char *const names[DMARC__COUNT] = {"none", "pass", "fail", "temperror", "permerror"};
    return r < DMARC__COUNT ? names[r] : "none";
}

const char *dmarc_disposition_name(enum dmarc_disposition d)
{
    return d == DMARC_DIS_REJECT ? "reject" : d == DMARC_DIS_QUARANTINE ? "quarantine" : "none";
}

int dmarc_select_record(const unsigned char *const *rdata, const int *len, int n, char *out, size_t outsz)
{
    return dns_txt_select(rdata, len, n, "v=DMARC1", " \t;", out, outsz); /* RFC 7489 6.4: v= first */
}

static bool disposition(const char *v, enum dmarc_disposition *d)
{
    if (!v)
        return false;
    *d = strcasecmp(v, "reject") == 0 ? DMARC_DIS_REJECT : strcasecmp(v, "quarantine") == 0 ? DMARC_DIS_QUARANTINE
                                                                                             : DMARC_DIS_NONE;
    return *d != DMARC_DIS_NONE || strcasecmp(v, "none") == 0;
}

/* adkim=/aspf=: r (default) or s. */
static bool alignment_mode(const char *v, bool *strict)
{
    *strict = v && strcasecmp(v, "s") == 0;
    return !v || *strict || strcasecmp(v, "r") == 0;
}

bool dmarc_parse_record(const char *text, struct dmarc_record *r)
{
    char copy[DMARC_RECORD_MAX + 1];
    struct tag_list t;
    snprintf(copy, sizeof copy, "%s", text);
    if (!tag_list_parse(copy, &t) || t.n == 0 || strcmp(t.v[0].name, "v") != 0 || strcmp(t.v[0].value, "DMARC1") != 0)
        return false;
    const char *pct = tag_list_get(&t, "pct");
    size_t digits = pct ? strspn(pct, "0123456789") : 0;
    r->pct = pct ? (unsigned)strtoul(pct, NULL, 10) : 100;
    if (pct && (digits == 0 || digits > 3 || pct[digits] || r->pct > 100))
        return false;
    if (!disposition(tag_list_get(&t, "p"), &r->p))
        return false;
    r->sp = r->p;
    if (tag_list_get(&t, "sp") && !disposition(tag_list_get(&t, "sp"), &r->sp))
        return false;
    return alignment_mode(tag_list_get(&t, "adkim"), &r->adkim_strict) &&
           alignment_mode(tag_list_get(&t, "aspf"), &r->aspf_strict);
}

static psl_ctx_t *psl;
static pthread_once_t psl_once = PTHREAD_ONCE_INIT;

static void load_psl(void)
{
    psl = psl_latest(NULL);
}

void dmarc_org_domain(const char *domain, char *out, size_t outsz)
{
    pthread_once(&psl_once, load_psl);
    const char *org = psl ? psl_registrable_domain(psl, domain) : NULL;
    snprintf(out, outsz, "%s", org ? org : domain);
}

/* Identifier alignment (RFC 7489 3.1): strict, the same domain; relaxed, the same organizational
 * domain. */
static bool aligned(const char *a, const char *b, bool strict)
{
    if (strcasecmp(a, b) == 0)
        return true;
    if (strict)
        return false;
    char oa[ADDR_DOMAIN_MAX + 1], ob[ADDR_DOMAIN_MAX + 1];
    dmarc_org_domain(a, oa, sizeof oa);
    dmarc_org_domain(b, ob, sizeof ob);
    return strcasecmp(oa, ob) == 0;
}

void dmarc_alignment(const struct dmarc_record *r, const struct dmarc_facts *f, bool *dkim, bool *spf)
{
    *spf = f->spf_pass && f->spf_domain && aligned(f->spf_domain, f->from_domain, r->aspf_strict);
    *dkim = false;
    for (size_t i = 0; i < f->ndkim && !*dkim; i++)
        *dkim = aligned(f->dkim_pass[i], f->from_domain, r->adkim_strict);
}

enum dmarc_result dmarc_evaluate(const struct dmarc_record *r, const struct dmarc_facts *f, bool at_org_domain,
                                 unsigned draw, enum dmarc_disposition *dis)
{
    bool dkim, spf;
    dmarc_alignment(r, f, &dkim, &spf);
    *dis = DMARC_DIS_NONE;
    if (dkim || spf)
        return DMARC_PASS;
    *dis = at_org_domain ? r->sp : r->p;
    if (draw >= r->pct && *dis != DMARC_DIS_NONE) /* RFC 7489 6.6.4: outside the sample, one step milder */
        *dis = *dis == DMARC_DIS_REJECT ? DMARC_DIS_QUARANTINE : DMARC_DIS_NONE;
    return DMARC_FAIL;
}
