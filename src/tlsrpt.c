/* tlsrpt.c - see tlsrpt.h. A domain's entry holds a policy of each type (MTA-STS, TLSA) as last
 * seen, with its session counts and its kinds of failure (result type, exchanger, address). */
#include "tlsrpt.h"

#include <event2/buffer.h>
#include <openssl/x509_vfy.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "report_format.h"
#include "strmap.h"

struct failure {
    char result[40], mx[256], ip[64];
    unsigned long long n;
};

struct policy_stats {
    bool seen;
    char *lines;  /* the policy lines, each ended by '\n' (malloc'd) */
    char *mx;     /* the mx patterns, likewise */
    unsigned long long ok, failed;
    struct failure f[TLSRPT_FAILURES_MAX];
    size_t nf;
};

struct domain_stats {
    char domain[256];
    struct policy_stats p[2]; /* by enum tlsrpt_policy */
};

struct tlsrpt {
    struct domain_stats *d;
    size_t n, cap;
    struct strmap by_name; /* lower-cased domain -> its index */
};

struct tlsrpt *tlsrpt_new(void)
{
    struct tlsrpt *t = calloc(1, sizeof(struct tlsrpt));
    if (t)
        strmap_init(&t->by_name);
    return t;
}

void tlsrpt_clear(struct tlsrpt *t)
{
    for (size_t i = 0; i < t->n; i++)
        for (int k = 0; k < 2; k++) {
            free(t->d[i].p[k].lines);
            free(t->d[i].p[k].mx);
        }
    t->n = 0;
    strmap_free(&t->by_name);
    strmap_init(&t->by_name);
}

void tlsrpt_free(struct tlsrpt *t)
{
    if (!t)
        return;
    tlsrpt_clear(t);
    strmap_free(&t->by_name);
    free(t->d);
    free(t);
}

/* Lines joined, each ended by '\n' (malloc'd; NULL when out of memory). */
static char *join(const char *const *lines, size_t n)
{
    size_t len = 1;
    for (size_t i = 0; i < n; i++)
        len += strlen(lines[i]) + 1;
    char *s = malloc(len), *o = s;
    for (size_t i = 0; s && i < n; i++)
        o += sprintf(o, "%s\n", lines[i]);
    if (s)
        *o = '\0';
    return s;
}

/* domain's entry (found without case by a hash map), made when new; NULL when the table is full
 * or out of memory. */
static struct domain_stats *entry_for(struct tlsrpt *t, const char *domain)
{
    char key[sizeof t->d->domain], index[24];
    const char *found;
    if (strlen(domain) >= sizeof key)
        return NULL;
    for (size_t i = 0; i <= strlen(domain); i++)
        key[i] = (char)(domain[i] >= 'A' && domain[i] <= 'Z' ? domain[i] + 32 : domain[i]);
    if (strmap_get(&t->by_name, key, &found))
        return &t->d[strtoul(found, NULL, 10)];
    if (t->n == TLSRPT_DOMAINS_MAX)
        return NULL;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        struct domain_stats *grown = realloc(t->d, cap * sizeof *grown);
        if (!grown)
            return NULL;
        t->d = grown;
        t->cap = cap;
    }
    snprintf(index, sizeof index, "%zu", t->n);
    if (!strmap_put(&t->by_name, key, index))
        return NULL;
    struct domain_stats *d = &t->d[t->n++];
    *d = (struct domain_stats){0};
    snprintf(d->domain, sizeof d->domain, "%s", domain);
    return d;
}

/* Counts a failure of kind (result, mx, ip) in p: a kind already seen, a new one while there is room. */
static void count_failure(struct policy_stats *p, const struct tlsrpt_result *r)
{
    p->failed++;
    for (size_t i = 0; i < p->nf; i++)
        if (!strcmp(p->f[i].result, r->failure) && !strcmp(p->f[i].mx, r->mx_host) && !strcmp(p->f[i].ip, r->ip)) {
            p->f[i].n++;
            return;
        }
    if (p->nf == TLSRPT_FAILURES_MAX)
        return; /* in the summary only */
    struct failure *f = &p->f[p->nf++];
    snprintf(f->result, sizeof f->result, "%s", r->failure);
    snprintf(f->mx, sizeof f->mx, "%s", r->mx_host);
    snprintf(f->ip, sizeof f->ip, "%s", r->ip);
    f->n = 1;
}

bool tlsrpt_note(struct tlsrpt *t, const struct tlsrpt_result *r)
{
    struct domain_stats *d = entry_for(t, r->domain);
    if (!d)
        return false;
    struct policy_stats *p = &d->p[r->type];
    char *lines = join(r->policy_lines, r->npolicy_lines), *mx = join(r->mx_patterns, r->nmx_patterns);
    if (!lines || !mx) {
        free(lines);
        free(mx);
        return false;
    }
    free(p->lines); /* the policy as last seen */
    free(p->mx);
    p->lines = lines;
    p->mx = mx;
    p->seen = true;
    if (r->failure)
        count_failure(p, r);
    else
        p->ok++;
    return true;
}

size_t tlsrpt_domains(const struct tlsrpt *t)
{
    return t->n;
}

const char *tlsrpt_domain(const struct tlsrpt *t, size_t i)
{
    return t->d[i].domain;
}

void tlsrpt_counts(const struct tlsrpt *t, size_t i, unsigned long long *ok, unsigned long long *failed)
{
    *ok = t->d[i].p[0].ok + t->d[i].p[1].ok;
    *failed = t->d[i].p[0].failed + t->d[i].p[1].failed;
}

char *tlsrpt_dump(const struct tlsrpt *t, size_t *len)
{
    struct evbuffer *b = evbuffer_new();
    if (!b)
        return NULL;
    for (size_t i = 0; i < t->n; i++) {
        evbuffer_add_printf(b, "D %s\n", t->d[i].domain);
        for (int k = 0; k < 2; k++) {
            const struct policy_stats *p = &t->d[i].p[k];
            if (!p->seen)
                continue;
            evbuffer_add_printf(b, "P %d %llu %llu\n", k, p->ok, p->failed);
            for (const char *l = p->lines; l && *l; l = strchr(l, '\n') + 1)
                evbuffer_add_printf(b, "L %.*s\n", (int)strcspn(l, "\n"), l);
            for (const char *m = p->mx; m && *m; m = strchr(m, '\n') + 1)
                evbuffer_add_printf(b, "M %.*s\n", (int)strcspn(m, "\n"), m);
            for (size_t f = 0; f < p->nf; f++)
                evbuffer_add_printf(b, "F %llu %s %s %s\n", p->f[f].n, p->f[f].result, p->f[f].mx,
                                    *p->f[f].ip ? p->f[f].ip : "-");
        }
    }
    return report_text(b, len);
}

/* Appends line (n octets) and a '\n' to the malloc'd text *s; false when out of memory. */
static bool append_line(char **s, const char *line, size_t n)
{
    size_t have = *s ? strlen(*s) : 0;
    char *grown = realloc(*s, have + n + 2);
    if (!grown)
        return false;
    memcpy(grown + have, line, n);
    grown[have + n] = '\n';
    grown[have + n + 1] = '\0';
    *s = grown;
    return true;
}

/* The next blank-separated word of *rest (modified), or NULL. */
static char *word(char **rest)
{
    return strtok_r(NULL, " ", rest);
}

/* A whole decimal number; false when s is not one. */
static bool number(const char *s, unsigned long long *v)
{
    char *end;
    if (!s || *s < '0' || *s > '9')
        return false;
    *v = strtoull(s, &end, 10);
    return *end == '\0';
}

/* One "F count result mx ip" line's words (v, modified) into p; false when it is not one. */
static bool undump_failure(struct policy_stats *p, char *v)
{
    char *rest = NULL, *count = strtok_r(v, " ", &rest), *result = word(&rest), *mx = word(&rest), *ip = word(&rest);
    struct failure f = {0};
    if (p->nf == TLSRPT_FAILURES_MAX || !number(count, &f.n) || !ip || word(&rest) ||
        strlen(result) >= sizeof f.result || strlen(mx) >= sizeof f.mx || strlen(ip) >= sizeof f.ip)
        return false;
    snprintf(f.result, sizeof f.result, "%s", result);
    snprintf(f.mx, sizeof f.mx, "%s", mx);
    snprintf(f.ip, sizeof f.ip, "%s", strcmp(ip, "-") != 0 ? ip : "");
    p->f[p->nf++] = f;
    return true;
}

/* One "P type ok failed" line's words (v, modified): that policy of d, its counts added; NULL
 * when it is not one. */
static struct policy_stats *undump_policy(struct domain_stats *d, char *v)
{
    char *rest = NULL, *type = strtok_r(v, " ", &rest);
    unsigned long long ok, failed;
    if (!d || !type || (strcmp(type, "0") != 0 && strcmp(type, "1") != 0) || !number(word(&rest), &ok) ||
        !number(word(&rest), &failed) || word(&rest))
        return NULL;
    struct policy_stats *p = &d->p[type[0] - '0'];
    p->seen = true;
    p->ok += ok;
    p->failed += failed;
    return p;
}

bool tlsrpt_undump(struct tlsrpt *t, const char *text)
{
    struct domain_stats *d = NULL;
    struct policy_stats *p = NULL;
    for (const char *line = text; *line;) {
        size_t n = strcspn(line, "\n");
        char buf[700];
        if (n < 2 || n >= sizeof buf || line[1] != ' ')
            return false;
        memcpy(buf, line, n);
        buf[n] = '\0';
        char *v = buf + 2;
        bool good;
        switch (buf[0]) {
        case 'D': good = (d = entry_for(t, v)) != NULL, p = NULL; break;
        case 'P': good = (p = undump_policy(d, v)) != NULL; break;
        case 'L': good = p && append_line(&p->lines, v, strlen(v)); break;
        case 'M': good = p && append_line(&p->mx, v, strlen(v)); break;
        case 'F': good = p && undump_failure(p, v); break;
        default: good = false;
        }
        if (!good)
            return false;
        line += n + (line[n] == '\n');
    }
    return true;
}

/* s as a JSON string (quoted, escaped). */
static void json_string(struct evbuffer *b, const char *s)
{
    evbuffer_add(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            evbuffer_add_printf(b, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            evbuffer_add_printf(b, "\\u%04x", c);
        else
            evbuffer_add(b, s, 1);
    }
    evbuffer_add(b, "\"", 1);
}

/* The '\n'-ended lines of text as a JSON array of strings. */
static void json_lines(struct evbuffer *b, const char *text)
{
    evbuffer_add(b, "[", 1);
    for (const char *p = text; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        char line[600];
        snprintf(line, sizeof line, "%.*s", (int)(n < sizeof line ? n : sizeof line - 1), p);
        if (p != text)
            evbuffer_add(b, ",", 1);
        json_string(b, line);
        p += n + (nl != NULL);
    }
    evbuffer_add(b, "]", 1);
}

static void json_time(struct evbuffer *b, time_t t)
{
    struct tm tm;
    char s[32];
    gmtime_r(&t, &tm);
    strftime(s, sizeof s, "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_string(b, s);
}

/* One element of "policies": the policy, its summary and its failure details. */
static void json_policy(struct evbuffer *b, const char *domain, enum tlsrpt_policy type, const struct policy_stats *p)
{
    evbuffer_add_printf(b, "{\"policy\":{\"policy-type\":\"%s\",\"policy-string\":", type == TLSRPT_STS ? "sts" : "tlsa");
    json_lines(b, p->lines);
    evbuffer_add_printf(b, ",\"policy-domain\":");
    json_string(b, domain);
    if (p->mx && *p->mx) {
        evbuffer_add_printf(b, ",\"mx-host\":");
        json_lines(b, p->mx);
    }
    evbuffer_add_printf(b, "},\"summary\":{\"total-successful-session-count\":%llu,\"total-failure-session-count\":%llu}",
                        p->ok, p->failed);
    if (p->nf)
        evbuffer_add_printf(b, ",\"failure-details\":[");
    for (size_t i = 0; i < p->nf; i++) {
        evbuffer_add_printf(b, "%s{\"result-type\":", i ? "," : "");
        json_string(b, p->f[i].result);
        evbuffer_add_printf(b, ",\"receiving-mx-hostname\":");
        json_string(b, p->f[i].mx);
        evbuffer_add_printf(b, ",\"receiving-ip\":");
        json_string(b, p->f[i].ip);
        evbuffer_add_printf(b, ",\"failed-session-count\":%llu}", p->f[i].n);
    }
    evbuffer_add_printf(b, "%s}", p->nf ? "]" : "");
}

char *tlsrpt_json(const struct tlsrpt *t, size_t i, const char *organization, const char *contact,
                  const char *report_id, time_t start, time_t end, size_t *len)
{
    struct evbuffer *b = evbuffer_new();
    if (!b)
        return NULL;
    const struct domain_stats *d = &t->d[i];
    evbuffer_add_printf(b, "{\"organization-name\":");
    json_string(b, organization);
    evbuffer_add_printf(b, ",\"date-range\":{\"start-datetime\":");
    json_time(b, start);
    evbuffer_add_printf(b, ",\"end-datetime\":");
    json_time(b, end - 1);
    evbuffer_add_printf(b, "},\"contact-info\":");
    json_string(b, contact);
    evbuffer_add_printf(b, ",\"report-id\":");
    json_string(b, report_id);
    evbuffer_add_printf(b, ",\"policies\":[");
    bool first = true;
    for (int k = 0; k < 2; k++)
        if (d->p[k].seen) {
            if (!first)
                evbuffer_add(b, ",", 1);
            json_policy(b, d->domain, (enum tlsrpt_policy)k, &d->p[k]);
            first = false;
        }
    evbuffer_add_printf(b, "]}\n");
    return report_text(b, len);
}

/* The value of tag (e.g. "rua") in a "tag=value; tag=value" record into out; false when absent. */
static bool record_tag(const char *record, const char *tag, char *out, size_t outsz)
{
    size_t tl = strlen(tag);
    for (const char *p = record; *p;) {
        p += strspn(p, " \t;");
        const char *end = p + strcspn(p, ";");
        const char *eq = memchr(p, '=', (size_t)(end - p));
        size_t kl = eq ? (size_t)(eq - p) : 0;
        while (kl && (p[kl - 1] == ' ' || p[kl - 1] == '\t'))
            kl--;
        if (eq && kl == tl && !strncasecmp(p, tag, tl)) {
            const char *v = eq + 1 + strspn(eq + 1, " \t");
            size_t vl = (size_t)(end - v);
            while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
                vl--;
            snprintf(out, outsz, "%.*s", (int)(vl < outsz ? vl : outsz - 1), v);
            return true;
        }
        p = end;
    }
    return false;
}

bool tlsrpt_record_rua(const char *record, struct tlsrpt_rua *rua)
{
    char version[32], list[1024];
    rua->nmailto = rua->nhttps = 0;
    if (strncmp(record, "v=TLSRPTv1", 10) != 0 || (record[10] && record[10] != ';' && record[10] != ' ') ||
        !record_tag(record, "v", version, sizeof version) || strcmp(version, "TLSRPTv1") != 0 ||
        !record_tag(record, "rua", list, sizeof list))
        return false;
    char *save = NULL;
    for (char *u = strtok_r(list, ",", &save); u; u = strtok_r(NULL, ",", &save)) {
        u += strspn(u, " \t");
        u[strcspn(u, " \t")] = '\0';
        if (!strncasecmp(u, "https://", 8) && u[8] && rua->nhttps < TLSRPT_RUA_MAX && strlen(u) < 512 &&
            !strpbrk(u, "\"<>\\")) {
            snprintf(rua->https[rua->nhttps++], 512, "%s", u);
        } else if (!strncasecmp(u, "mailto:", 7) && u[7] && strchr(u + 7, '@') && rua->nmailto < TLSRPT_RUA_MAX &&
                   strlen(u + 7) < 256 && !strpbrk(u + 7, "?<>\"")) {
            snprintf(rua->mailto[rua->nmailto++], 256, "%s", u + 7);
        }
    }
    return rua->nmailto > 0 || rua->nhttps > 0;
}

const char *tlsrpt_verify_failure(long x509_error)
{
    switch (x509_error) {
    case X509_V_ERR_HOSTNAME_MISMATCH: return "certificate-host-mismatch";
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID: return "certificate-expired";
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_CERT_UNTRUSTED: return "certificate-not-trusted";
    case X509_V_ERR_DANE_NO_MATCH: return "tlsa-invalid";
    default: return "validation-failure";
    }
}
