/* dmarcrpt.c - see dmarcrpt.h. A row is kept as its key: its fields joined by blanks, each field
 * reduced to printable ASCII without blanks or XML's special characters (every value is a domain,
 * an address, a selector or one of the schema's words), so the key is also its line in the state
 * file and needs no escaping in the XML. Two hash maps find a domain and a row. */
#include "dmarcrpt.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "address.h"
#include "report_format.h"
#include "strmap.h"
#include "taglist.h"

#define ROW_FIELDS_FIXED 9 /* ip, from, disposition, dkim, spf, reason, spf domain, scope, result */
#define ROW_FIELDS_MAX (ROW_FIELDS_FIXED + 3 * DMARCRPT_DKIM_MAX)
#define ROW_KEY_MAX 2048

struct row {
    char *key;
    unsigned long long n;
};

struct domain_entry {
    char name[ADDR_DOMAIN_MAX + 1];
    struct dmarc_record policy; /* as first seen this period */
    size_t *rows;               /* indexes into the table's rows */
    size_t nrows, cap;
    unsigned long long messages;
};

struct dmarcrpt {
    struct domain_entry *d;
    size_t n, cap;
    struct row *rows;
    size_t nrows, rows_cap;
    struct strmap by_name; /* domain -> its index */
    struct strmap by_row;  /* "<domain index> <key>" -> the row's index */
};

struct dmarcrpt *dmarcrpt_new(void)
{
    struct dmarcrpt *t = calloc(1, sizeof *t);
    if (t) {
        strmap_init(&t->by_name);
        strmap_init(&t->by_row);
    }
    return t;
}

void dmarcrpt_clear(struct dmarcrpt *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->d[i].rows);
    for (size_t i = 0; i < t->nrows; i++)
        free(t->rows[i].key);
    free(t->d);
    free(t->rows);
    strmap_free(&t->by_name);
    strmap_free(&t->by_row);
    *t = (struct dmarcrpt){0};
    strmap_init(&t->by_name);
    strmap_init(&t->by_row);
}

void dmarcrpt_free(struct dmarcrpt *t)
{
    if (!t)
        return;
    dmarcrpt_clear(t);
    strmap_free(&t->by_name);
    strmap_free(&t->by_row);
    free(t);
}

/* Makes room for one more of an array of n elements of size each with *cap slots; false when out
 * of memory. */
static bool room(void **array, size_t n, size_t *cap, size_t size)
{
    if (n < *cap)
        return true;
    size_t grown_cap = *cap ? *cap * 2 : 16;
    void *grown = realloc(*array, grown_cap * size);
    if (!grown)
        return false;
    *array = grown;
    *cap = grown_cap;
    return true;
}

/* The index of domain's entry (made, with policy, when new); -1 when the table is full or out of
 * memory. */
static long entry_for(struct dmarcrpt *t, const char *domain, const struct dmarc_record *policy)
{
    const char *found;
    if (strmap_get(&t->by_name, domain, &found))
        return strtol(found, NULL, 10);
    char index[24];
    snprintf(index, sizeof index, "%zu", t->n);
    if (t->n == DMARCRPT_DOMAINS_MAX || strlen(domain) > ADDR_DOMAIN_MAX ||
        !room((void **)&t->d, t->n, &t->cap, sizeof *t->d) || !strmap_put(&t->by_name, domain, index))
        return -1;
    struct domain_entry *d = &t->d[t->n];
    *d = (struct domain_entry){.policy = *policy};
    snprintf(d->name, sizeof d->name, "%s", domain);
    return (long)t->n++;
}

/* Counts n messages of row key for domain di, the row made when new; false when full or out of
 * memory. */
static bool count_row(struct dmarcrpt *t, size_t di, const char *key, unsigned long long n)
{
    char mapkey[ROW_KEY_MAX + 32], index[24];
    const char *found;
    snprintf(mapkey, sizeof mapkey, "%zu %s", di, key);
    struct domain_entry *d = &t->d[di];
    if (strmap_get(&t->by_row, mapkey, &found)) {
        t->rows[strtoul(found, NULL, 10)].n += n;
        d->messages += n;
        return true;
    }
    snprintf(index, sizeof index, "%zu", t->nrows);
    if (t->nrows == DMARCRPT_ROWS_MAX || !room((void **)&t->rows, t->nrows, &t->rows_cap, sizeof *t->rows) ||
        !room((void **)&d->rows, d->nrows, &d->cap, sizeof *d->rows))
        return false;
    struct row *r = &t->rows[t->nrows];
    if (!(r->key = strdup(key)) || !strmap_put(&t->by_row, mapkey, index)) {
        free(r->key);
        return false;
    }
    r->n = n;
    d->rows[d->nrows++] = t->nrows++;
    d->messages += n;
    return true;
}

/* Appends s to key as one field: a blank first (but for the first), "-" for none, and every octet
 * that is not printable ASCII, or is a blank or one of & < > " ', as '?'. */
static void add_field(char *key, size_t keysz, const char *s)
{
    size_t at = strlen(key);
    if (at && at + 1 < keysz)
        key[at++] = ' ';
    if (!s || !*s)
        s = "-";
    for (; *s && at + 1 < keysz; s++) {
        unsigned char c = (unsigned char)*s;
        if (c > ' ' && c < 0x7f && !strchr("&<>\"'", c))
            key[at++] = *s;
        else
            key[at++] = '?';
    }
    key[at] = '\0';
}

bool dmarcrpt_note(struct dmarcrpt *t, const struct dmarcrpt_message *m)
{
    long di = entry_for(t, m->policy_domain, m->policy);
    if (di < 0)
        return false;
    char key[ROW_KEY_MAX] = "";
    const char *fixed[ROW_FIELDS_FIXED] = {m->source_ip,
                                           m->header_from,
                                           dmarc_disposition_name(m->disposition),
                                           m->dkim_aligned ? "pass" : "fail",
                                           m->spf_aligned ? "pass" : "fail",
                                           m->reason,
                                           m->spf_domain,
                                           m->spf_helo ? "helo" : "mfrom",
                                           m->spf_result};
    for (size_t i = 0; i < ROW_FIELDS_FIXED; i++)
        add_field(key, sizeof key, fixed[i]);
    for (size_t i = 0; i < m->ndkim && i < DMARCRPT_DKIM_MAX; i++) {
        add_field(key, sizeof key, m->dkim[i].domain);
        add_field(key, sizeof key, m->dkim[i].selector);
        add_field(key, sizeof key, m->dkim[i].result);
    }
    return count_row(t, (size_t)di, key, 1);
}

size_t dmarcrpt_domains(const struct dmarcrpt *t)
{
    return t->n;
}

const char *dmarcrpt_domain(const struct dmarcrpt *t, size_t i)
{
    return t->d[i].name;
}

unsigned long long dmarcrpt_messages(const struct dmarcrpt *t, size_t i)
{
    return t->d[i].messages;
}

/* ---------- the XML report ---------- */

/* s with XML's special characters as references (text from the configuration). */
static void xml_text(struct evbuffer *b, const char *s)
{
    for (; *s; s++) {
        const char *ref = *s == '&' ? "&amp;" : *s == '<' ? "&lt;" : *s == '>' ? "&gt;" : NULL;
        if (ref)
            evbuffer_add(b, ref, strlen(ref));
        else if ((unsigned char)*s >= ' ' || *s == '\t')
            evbuffer_add(b, s, 1);
    }
}

/* "<name>value</name>" on a line of its own, indented by depth; a row field's "-" as empty. */
static void xml_element(struct evbuffer *b, int depth, const char *name, const char *value)
{
    evbuffer_add_printf(b, "%*s<%s>", depth * 2, "", name);
    if (strcmp(value, "-") != 0)
        xml_text(b, value);
    evbuffer_add_printf(b, "</%s>\n", name);
}

/* One <record> of row key (its fields split in place) counted n times. */
static void xml_record(struct evbuffer *b, char *key, unsigned long long n)
{
    char *f[ROW_FIELDS_MAX], *save = NULL, count[24];
    size_t nf = 0;
    for (char *w = strtok_r(key, " ", &save); w && nf < ROW_FIELDS_MAX; w = strtok_r(NULL, " ", &save))
        f[nf++] = w;
    if (nf < ROW_FIELDS_FIXED)
        return; /* not one of ours */
    snprintf(count, sizeof count, "%llu", n);
    evbuffer_add_printf(b, "  <record>\n    <row>\n");
    xml_element(b, 3, "source_ip", f[0]);
    xml_element(b, 3, "count", count);
    evbuffer_add_printf(b, "      <policy_evaluated>\n");
    xml_element(b, 4, "disposition", f[2]);
    xml_element(b, 4, "dkim", f[3]);
    xml_element(b, 4, "spf", f[4]);
    if (strcmp(f[5], "-") != 0) {
        evbuffer_add_printf(b, "        <reason>\n");
        xml_element(b, 5, "type", f[5]);
        evbuffer_add_printf(b, "        </reason>\n");
    }
    evbuffer_add_printf(b, "      </policy_evaluated>\n    </row>\n    <identifiers>\n");
    xml_element(b, 3, "header_from", f[1]);
    evbuffer_add_printf(b, "    </identifiers>\n    <auth_results>\n");
    for (size_t i = ROW_FIELDS_FIXED; i + 2 < nf; i += 3) {
        evbuffer_add_printf(b, "      <dkim>\n");
        xml_element(b, 4, "domain", f[i]);
        if (strcmp(f[i + 1], "-") != 0)
            xml_element(b, 4, "selector", f[i + 1]);
        xml_element(b, 4, "result", f[i + 2]);
        evbuffer_add_printf(b, "      </dkim>\n");
    }
    evbuffer_add_printf(b, "      <spf>\n");
    xml_element(b, 4, "domain", f[6]);
    xml_element(b, 4, "scope", f[7]);
    xml_element(b, 4, "result", f[8]);
    evbuffer_add_printf(b, "      </spf>\n    </auth_results>\n  </record>\n");
}

char *dmarcrpt_xml(const struct dmarcrpt *t, size_t i, const char *organization, const char *contact,
                   const char *report_id, time_t start, time_t end, size_t *len)
{
    struct evbuffer *b = evbuffer_new();
    if (!b)
        return NULL;
    const struct domain_entry *d = &t->d[i];
    const struct dmarc_record *p = &d->policy;
    evbuffer_add_printf(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback>\n  <report_metadata>\n");
    xml_element(b, 2, "org_name", organization);
    xml_element(b, 2, "email", contact);
    xml_element(b, 2, "report_id", report_id);
    evbuffer_add_printf(b, "    <date_range>\n      <begin>%lld</begin>\n      <end>%lld</end>\n    </date_range>\n",
                        (long long)start, (long long)end - 1);
    evbuffer_add_printf(b, "  </report_metadata>\n  <policy_published>\n");
    xml_element(b, 2, "domain", d->name);
    evbuffer_add_printf(b, "    <adkim>%s</adkim>\n    <aspf>%s</aspf>\n    <p>%s</p>\n    <sp>%s</sp>\n"
                           "    <pct>%u</pct>\n  </policy_published>\n",
                        p->adkim_strict ? "s" : "r", p->aspf_strict ? "s" : "r", dmarc_disposition_name(p->p),
                        dmarc_disposition_name(p->sp), p->pct);
    for (size_t r = 0; r < d->nrows; r++) {
        char key[ROW_KEY_MAX];
        snprintf(key, sizeof key, "%s", t->rows[d->rows[r]].key);
        xml_record(b, key, t->rows[d->rows[r]].n);
    }
    evbuffer_add_printf(b, "</feedback>\n");
    return report_text(b, len);
}

/* ---------- across a restart ---------- */

char *dmarcrpt_dump(const struct dmarcrpt *t, size_t *len)
{
    struct evbuffer *b = evbuffer_new();
    if (!b)
        return NULL;
    for (size_t i = 0; i < t->n; i++) {
        const struct domain_entry *d = &t->d[i];
        evbuffer_add_printf(b, "D %s %c %c %s %s %u\n", d->name, d->policy.adkim_strict ? 's' : 'r',
                            d->policy.aspf_strict ? 's' : 'r', dmarc_disposition_name(d->policy.p),
                            dmarc_disposition_name(d->policy.sp), d->policy.pct);
        for (size_t r = 0; r < d->nrows; r++)
            evbuffer_add_printf(b, "R %llu %s\n", t->rows[d->rows[r]].n, t->rows[d->rows[r]].key);
    }
    return report_text(b, len);
}

/* A disposition's name back; false when it is none of them. */
static bool disposition_named(const char *s, enum dmarc_disposition *d)
{
    for (int k = DMARC_DIS_NONE; k <= DMARC_DIS_REJECT; k++)
        if (s && strcmp(s, dmarc_disposition_name((enum dmarc_disposition)k)) == 0) {
            *d = (enum dmarc_disposition)k;
            return true;
        }
    return false;
}

/* "r" or "s" into *strict; false when s is neither. */
static bool mode_named(const char *s, bool *strict)
{
    *strict = s && strcmp(s, "s") == 0;
    return s && (*strict || strcmp(s, "r") == 0);
}

/* A "D domain adkim aspf p sp pct" line's words (v, modified): the domain's index; -1 when it is
 * not one (or the table is full). */
static long undump_domain(struct dmarcrpt *t, char *v)
{
    char *save = NULL, *domain = strtok_r(v, " ", &save), *adkim = strtok_r(NULL, " ", &save),
         *aspf = strtok_r(NULL, " ", &save), *p = strtok_r(NULL, " ", &save), *sp = strtok_r(NULL, " ", &save),
         *pct = strtok_r(NULL, " ", &save), *end = NULL;
    struct dmarc_record r;
    if (!pct || strtok_r(NULL, " ", &save) || !mode_named(adkim, &r.adkim_strict) || !mode_named(aspf, &r.aspf_strict) ||
        !disposition_named(p, &r.p) || !disposition_named(sp, &r.sp) || *pct < '0' || *pct > '9')
        return -1;
    unsigned long n = strtoul(pct, &end, 10);
    if (*end || n > 100)
        return -1;
    r.pct = (unsigned)n;
    return entry_for(t, domain, &r);
}

/* An "R count row" line's words (v) for domain di; false when it is not one. */
static bool undump_row(struct dmarcrpt *t, long di, const char *v)
{
    char *end;
    if (di < 0 || *v < '0' || *v > '9')
        return false;
    unsigned long long n = strtoull(v, &end, 10);
    size_t fields = 1;
    for (const char *c = end + 1; *end == ' ' && *c; c++)
        fields += *c == ' ';
    if (*end != ' ' || fields < ROW_FIELDS_FIXED || fields > ROW_FIELDS_MAX ||
        (fields - ROW_FIELDS_FIXED) % 3 != 0 || strlen(end + 1) >= ROW_KEY_MAX)
        return false;
    for (const char *c = end + 1; *c; c++)
        if ((unsigned char)*c < ' ' || (unsigned char)*c >= 0x7f || strchr("&<>\"'", *c))
            return false;
    return count_row(t, (size_t)di, end + 1, n);
}

bool dmarcrpt_undump(struct dmarcrpt *t, const char *text)
{
    long di = -1;
    for (const char *line = text; *line;) {
        size_t n = strcspn(line, "\n");
        char buf[ROW_KEY_MAX + 32];
        if (n < 2 || n >= sizeof buf || line[1] != ' ')
            return false;
        memcpy(buf, line, n);
        buf[n] = '\0';
        bool good = buf[0] == 'D' ? (di = undump_domain(t, buf + 2)) >= 0 : buf[0] == 'R' && undump_row(t, di, buf + 2);
        if (!good)
            return false;
        line += n + (line[n] == '\n');
    }
    return true;
}

/* ---------- the record's report addresses ---------- */

/* The value of a %XX escape's two hex digits; -1 when they are not. */
static int hex_pair(const char *s)
{
    int v = 0;
    for (int i = 0; i < 2; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* One "mailto:addr[!size[k|m|g|t]]" URI (RFC 7489 6.2) into rua's next slot; false when it is not
 * one this server can send to. */
static bool add_mailto(const char *uri, struct dmarcrpt_rua *rua)
{
    if (strncasecmp(uri, "mailto:", 7) != 0 || rua->n == DMARCRPT_RUA_MAX)
        return false;
    const char *p = uri + 7, *bang = strchr(p, '!');
    char addr[256];
    size_t n = 0;
    for (; *p && p != bang && n + 1 < sizeof addr; p++) {
        int c = *p == '%' ? hex_pair(p + 1) : (unsigned char)*p;
        if (c <= ' ' || c >= 0x7f || strchr("?<>\"\\,", c))
            return false;
        addr[n++] = (char)c;
        p += *p == '%' ? 2 : 0;
    }
    addr[n] = '\0';
    unsigned long long size = 0;
    if (bang) {
        char *end;
        if (bang[1] < '0' || bang[1] > '9')
            return false;
        size = strtoull(bang + 1, &end, 10);
        const char *units = "kmgt", *u = *end ? strchr(units, *end | 0x20) : NULL;
        for (long k = u ? u - units + 1 : 0; k > 0; k--)
            size *= 1024;
        if ((*end && (!u || end[1])))
            return false;
    }
    const char *at = strrchr(addr, '@');
    if ((p != bang && *p) || !at || at == addr || !at[1])
        return false;
    snprintf(rua->mailto[rua->n], sizeof rua->mailto[0], "%s", addr);
    rua->max_size[rua->n++] = size;
    return true;
}

bool dmarcrpt_record_rua(const char *record, struct dmarcrpt_rua *rua)
{
    char copy[DMARC_RECORD_MAX + 1];
    struct tag_list t;
    rua->n = 0;
    snprintf(copy, sizeof copy, "%s", record);
    const char *list = tag_list_parse(copy, &t) ? tag_list_get(&t, "rua") : NULL;
    char uris[DMARC_RECORD_MAX + 1], *save = NULL;
    snprintf(uris, sizeof uris, "%s", list ? list : "");
    for (char *u = strtok_r(uris, ",", &save); u; u = strtok_r(NULL, ",", &save))
        add_mailto(tag_trim(u), rua);
    return rua->n > 0;
}

bool dmarcrpt_external(const char *policy_domain, const char *address, char *name, size_t namesz)
{
    const char *at = strrchr(address, '@');
    char a[ADDR_DOMAIN_MAX + 1], org_a[ADDR_DOMAIN_MAX + 1], org_p[ADDR_DOMAIN_MAX + 1];
    snprintf(a, sizeof a, "%s", at ? at + 1 : address);
    for (char *c = a; *c; c++)
        *c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
    dmarc_org_domain(a, org_a, sizeof org_a);
    dmarc_org_domain(policy_domain, org_p, sizeof org_p);
    snprintf(name, namesz, "%s._report._dmarc.%s", policy_domain, a);
    return strcasecmp(org_a, org_p) != 0;
}
