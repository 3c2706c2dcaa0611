/* spf.c - check_host() of RFC 7208 (spf.h): the record's terms parsed and evaluated one at a
 * time; a term that needs DNS starts one lookup (dns_lookup) and the evaluation goes on in its
 * callback. include pushes a frame for the included domain; redirect= replaces the frame. */
#include "spf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "address.h"
#include "cidr.h"
#include "dns.h"

#define SPF_DOMAIN_MAX 253 /* RFC 7208 7.3: an expanded domain is cut to this from the left */

struct spf_dns_ops spf_dns = {dns_lookup, dns_cancel};

const char *spf_result_name(enum spf_result r)
{
    static const char *const names[SPF__COUNT] = {"none", "neutral", "pass", "fail", "softfail", "temperror",
                                                  "permerror"};
    return r < SPF__COUNT ? names[r] : "?";
}

/* ---------- macros (RFC 7208 7) ---------- */

static bool macro_literal(unsigned char c)
{
    return c >= 0x21 && c <= 0x7e && c != '%';
}

/* One macro's value split on its delimiters, reversed and cut to the rightmost keep labels
 * (0: all), joined with dots, URL-escaped when upper, appended to out[*n..]. */
static bool append_macro(const char *value, const char *delims, bool reverse, unsigned keep, bool upper, char *out,
                         size_t outsz, size_t *n)
{
    const char *parts[128];
    size_t lens[128], count = 0;
    const char *start = value;
    for (const char *p = value;; p++) {
        if (*p == '\0' || strchr(delims, *p)) {
            if (count == 128)
                return false;
            parts[count] = start;
            lens[count++] = (size_t)(p - start);
            if (*p == '\0')
                break;
            start = p + 1;
        }
    }
    size_t first = keep && keep < count ? count - keep : 0; /* of the list after any reversal */
    for (size_t i = first; i < count; i++) {
        size_t k = reverse ? count - 1 - i : i; /* the i-th of the (reversed) list */
        for (size_t j = 0; j < lens[k] + (i + 1 < count); j++) {
            char c = (char)(j < lens[k] ? parts[k][j] : '.');
            bool plain = !upper || isalnum((unsigned char)c) || strchr("-._~", c);
            int w = plain ? snprintf(out + *n, outsz - *n, "%c", c)
                          : snprintf(out + *n, outsz - *n, "%%%02X", (unsigned char)c);
            if (w < 0 || *n + (size_t)w >= outsz)
                return false;
            *n += (size_t)w;
        }
    }
    return true;
}

/* The value of one macro letter (lower case); c, r and t are NULL outside an explanation. */
static const char *macro_value(char letter, const struct spf_macro_env *env)
{
    switch (letter) {
    case 's': return env->sender;
    case 'l': return env->local;
    case 'o': return env->sender_domain;
    case 'd': return env->domain;
    case 'i': return env->ip;
    case 'p': return "unknown"; /* RFC 7208 7.3 allows it: no PTR lookups for a macro */
    case 'v': return env->ipv6 ? "ip6" : "in-addr";
    case 'h': return env->helo;
    case 'c': return env->client;
    case 'r': return env->receiver;
    case 't': return env->timestamp;
    default: return NULL;
    }
}

/* "%{" letter *DIGIT ["r"] *delimiter "}" at *p (past "%{"); advances *p past the '}'. c, r and t
 * only in an explanation. */
static bool expand_one(const char **p, const char *end, const struct spf_macro_env *env, bool explain, char *out,
                       size_t outsz, size_t *n)
{
    const char *q = *p;
    if (q >= end)
        return false;
    char letter = (char)tolower((unsigned char)*q);
    bool upper = isupper((unsigned char)*q);
    if (!letter || !strchr(explain ? "slodipvhcrt" : "slodipvh", letter))
        return false;
    q++;
    unsigned keep = 0;
    bool digits = false, reverse = false;
    while (q < end && isdigit((unsigned char)*q) && keep < 1000) {
        keep = keep * 10 + (unsigned)(*q++ - '0');
        digits = true;
    }
    if ((digits && keep == 0) || (q < end && isdigit((unsigned char)*q)))
        return false;
    if (q < end && (*q == 'r' || *q == 'R')) {
        reverse = true;
        q++;
    }
    char delims[8] = "";
    size_t nd = 0;
    while (q < end && *q && strchr(".-+,/_=", *q) && nd + 1 < sizeof delims)
        delims[nd++] = *q++;
    if (q >= end || *q != '}')
        return false;
    *p = q + 1;
    if (!env)
        return true;
    const char *value = macro_value(letter, env);
    return value && append_macro(value, nd ? delims : ".", reverse, keep, upper, out, outsz, n);
}

/* RFC 7208 7.3: a name over 253 octets loses labels from the left until it fits. */
static bool cut_to_domain_length(char *out, size_t *n)
{
    size_t skip = 0;
    while (*n - skip > SPF_DOMAIN_MAX) {
        const char *dot = strchr(out + skip, '.');
        if (!dot)
            return false;
        skip = (size_t)(dot - out) + 1;
    }
    memmove(out, out + skip, *n - skip + 1);
    *n -= skip;
    return true;
}

/* A macro-string (a domain-spec's), or with explain an explain-string (spaces allowed, c r t
 * known, no cut to a domain's length), expanded into out; env NULL: syntax only. */
static bool expand(const char *spec, size_t len, const struct spf_macro_env *env, bool explain, char *out,
                   size_t outsz)
{
    char buf[1024];
    size_t n = 0;
    const char *p = spec, *end = spec + len;
    buf[0] = '\0';
    while (p < end) {
        if (*p != '%') {
            if (!(macro_literal((unsigned char)*p) || (explain && *p == ' ')) || n + 1 >= sizeof buf)
                return false;
            buf[n++] = *p++;
            buf[n] = '\0';
            continue;
        }
        if (p + 1 >= end)
            return false;
        char kind = p[1];
        p += 2;
        const char *lit = kind == '%' ? "%" : kind == '_' ? " " : kind == '-' ? "%20" : NULL;
        if (lit) {
            int w = snprintf(buf + n, sizeof buf - n, "%s", lit);
            if (w < 0 || n + (size_t)w >= sizeof buf)
                return false;
            n += (size_t)w;
        } else if (kind != '{' || !expand_one(&p, end, env, explain, buf, sizeof buf, &n)) {
            return false;
        }
    }
    if (!env)
        return true;
    if ((!explain && !cut_to_domain_length(buf, &n)) || n + 1 > outsz)
        return false;
    memcpy(out, buf, n + 1);
    return true;
}

bool spf_expand(const char *spec, size_t len, const struct spf_macro_env *env, char *out, size_t outsz)
{
    return expand(spec, len, env, false, out, outsz);
}

bool spf_expand_explanation(const char *text, size_t len, const struct spf_macro_env *env, char *out, size_t outsz)
{
    return expand(text, len, env, true, out, outsz);
}

/* ---------- records and terms ---------- */

int spf_select_record(const unsigned char *const *rdata, const int *len, int n, char *out, size_t outsz)
{
    return dns_txt_select(rdata, len, n, "v=spf1", " ", out, outsz);
}

enum term_kind { M_ALL, M_INCLUDE, M_A, M_MX, M_PTR, M_IP4, M_IP6, M_EXISTS, MOD_REDIRECT, MOD_EXP, MOD_OTHER };

struct term {
    enum term_kind kind;
    char qualifier;             /* '+', '-', '~', '?' */
    const char *text;           /* the whole term, for logs */
    size_t text_len;
    const char *spec;           /* its domain-spec (or modifier value), NULL when none */
    size_t spec_len;
    struct cidr net;            /* ip4, ip6 */
    unsigned cidr4, cidr6;      /* a, mx */
};

/* A domain-spec: a valid macro-string ending in a top label or a macro (RFC 7208 7.1). */
static bool domain_spec_valid(const char *s, size_t n)
{
    if (n == 0 || !spf_expand(s, n, NULL, NULL, 0))
        return false;
    if (s[n - 1] == '}')
        return true;
    if (s[n - 1] == '.')
        n--;
    size_t start = n;
    while (start > 0 && s[start - 1] != '.')
        start--;
    if (start == 0 || start == n)
        return false; /* no dot before the top label, or an empty one */
    bool alpha = false;
    for (size_t i = start; i < n; i++) {
        if (!isalnum((unsigned char)s[i]) && s[i] != '-')
            return false;
        alpha |= isalpha((unsigned char)s[i]) != 0;
    }
    return (alpha || memchr(s + start, '-', n - start)) && s[start] != '-' && s[n - 1] != '-';
}

/* A "/N" (at most max) at the end of s[0..*n): strips it into *bits; true when there was none. */
static bool take_cidr(const char *s, size_t *n, const char *mark, unsigned max, unsigned *bits)
{
    size_t m = strlen(mark), i = *n;
    while (i > 0 && isdigit((unsigned char)s[i - 1]))
        i--;
    if (i == *n || i < m || strncmp(s + i - m, mark, m) != 0 || (m == 1 && i >= 2 && s[i - 2] == '/'))
        return true;
    if (*n - i > 3 || (s[i] == '0' && *n - i > 1))
        return false;
    unsigned v = (unsigned)strtoul(s + i, NULL, 10);
    if (v > max)
        return false;
    *bits = v;
    *n = i - m;
    return true;
}

/* The mechanism or modifier name at the start of a term, and what follows it. */
static bool parse_mechanism(const char *name, size_t name_len, const char *rest, size_t rest_len, struct term *t)
{
    static const struct { const char *name; enum term_kind kind; } mechs[] = {
        {"all", M_ALL}, {"include", M_INCLUDE}, {"a", M_A}, {"mx", M_MX}, {"ptr", M_PTR},
        {"ip4", M_IP4}, {"ip6", M_IP6}, {"exists", M_EXISTS}};
    size_t i = 0;
    while (i < sizeof mechs / sizeof mechs[0] &&
           (strlen(mechs[i].name) != name_len || strncasecmp(mechs[i].name, name, name_len) != 0))
        i++;
    if (i == sizeof mechs / sizeof mechs[0])
        return false;
    t->kind = mechs[i].kind;
    t->cidr4 = 32;
    t->cidr6 = 128;
    size_t n = rest_len;
    if (t->kind == M_A || t->kind == M_MX) {
        if (!take_cidr(rest, &n, "//", 128, &t->cidr6) || !take_cidr(rest, &n, "/", 32, &t->cidr4))
            return false;
    }
    if (t->kind == M_ALL)
        return n == 0;
    if (t->kind == M_IP4 || t->kind == M_IP6) {
        char net[64];
        if (n < 2 || rest[0] != ':' || n - 1 >= sizeof net)
            return false;
        snprintf(net, sizeof net, "%.*s", (int)(n - 1), rest + 1);
        return cidr_parse(net, &t->net) && (t->net.family == AF_INET) == (t->kind == M_IP4) &&
               (t->kind == M_IP6 || !strchr(net, ':'));
    }
    if (n == 0)
        return t->kind != M_INCLUDE && t->kind != M_EXISTS;
    if (rest[0] != ':' || !domain_spec_valid(rest + 1, n - 1))
        return false;
    t->spec = rest + 1;
    t->spec_len = n - 1;
    return true;
}

/* The next term of a record at *p: 1 (in *t, *p past it), 0 at the end, -1 on a syntax error. */
static int next_term(const char **p, struct term *t)
{
    const char *s = *p;
    while (*s == ' ')
        s++;
    if (*s == '\0')
        return 0;
    const char *end = s;
    while (*end && *end != ' ')
        end++;
    *p = end;
    memset(t, 0, sizeof *t);
    t->text = s;
    t->text_len = (size_t)(end - s);
    t->qualifier = (char)(*s && strchr("+-~?", *s) ? *s++ : '+');
    const char *name = s;
    if (!isalpha((unsigned char)*s))
        return -1;
    while (s < end && (isalnum((unsigned char)*s) || *s == '-' || *s == '_' || *s == '.'))
        s++;
    size_t name_len = (size_t)(s - name);
    if (s < end && *s == '=') { /* a modifier: name=macro-string */
        if (t->qualifier != '+' || t->text[0] == '+')
            return -1;
        t->spec = s + 1;
        t->spec_len = (size_t)(end - s - 1);
        t->kind = name_len == 8 && strncasecmp(name, "redirect", 8) == 0 ? MOD_REDIRECT
                  : name_len == 3 && strncasecmp(name, "exp", 3) == 0    ? MOD_EXP
                                                                         : MOD_OTHER;
        if (t->kind == MOD_OTHER)
            return spf_expand(t->spec, t->spec_len, NULL, NULL, 0) ? 1 : -1;
        return domain_spec_valid(t->spec, t->spec_len) ? 1 : -1;
    }
    return parse_mechanism(name, name_len, s, (size_t)(end - s), t) ? 1 : -1;
}

bool spf_record_valid(const char *record)
{
    const char *p = record + 6; /* past "v=spf1" */
    struct term t;
    int rc, redirects = 0, exps = 0;
    while ((rc = next_term(&p, &t)) == 1) {
        redirects += t.kind == MOD_REDIRECT;
        exps += t.kind == MOD_EXP;
    }
    return rc == 0 && redirects <= 1 && exps <= 1;
}

/* The record's (valid: spf_record_valid) modifier of this kind, redirect= or exp=, into *t; false
 * when it has none. */
static bool find_modifier(const char *record, enum term_kind kind, struct term *t)
{
    const char *p = record + 6; /* past "v=spf1" */
    while (next_term(&p, t) == 1)
        if (t->kind == kind)
            return true;
    return false;
}

/* ---------- evaluation ---------- */

enum step { STEP_RECORD, STEP_A, STEP_EXISTS, STEP_MX, STEP_MX_ADDR, STEP_PTR, STEP_PTR_ADDR, STEP_EXP };

struct frame {
    char domain[SPF_DOMAIN_MAX + 1];
    char *record;
    const char *cursor;       /* the next term */
    bool via_redirect;        /* reached by redirect=: no record is a permerror */
    struct term pending;      /* the term waiting for DNS or for its include */
};

struct spf_check {
    struct dns *dns;
    struct sockaddr_storage ip;             /* an IPv4-mapped IPv6 client as IPv4 (RFC 7208 5) */
    char ip_macro[72];                      /* %{i} */
    char client_text[INET6_ADDRSTRLEN];     /* %{c} */
    char receiver[256];                     /* %{r} */
    char sender[ADDR_PATH_MAX + 1], local[ADDR_LOCAL_MAX + 1], sender_domain[ADDR_DOMAIN_MAX + 1], helo[256];
    spf_done_cb cb;
    void *arg;
    int lookups, voids, depth;
    struct frame frames[SPF_DEPTH_MAX];
    struct dns_query *q;
    enum step step;
    char target[SPF_DOMAIN_MAX + 1];        /* the domain the pending term is about */
    char names[SPF_NAMES_LIMIT][256];       /* MX or PTR names still to look up */
    int nnames, next_name;
    char detail[400];
    bool explanation_asked;                 /* exp= looked at: once per check */
    char explanation[SPF_EXPLANATION_MAX + 1];
};

static void evaluate(struct spf_check *c);
static void frame_done(struct spf_check *c, enum spf_result r);
static bool expand_target(struct spf_check *c, const struct term *t);

static bool is_v6(const struct spf_check *c)
{
    return c->ip.ss_family == AF_INET6;
}

/* Sets the detail (for logs and the Received-SPF comment) and ends the current frame with r. */
static void finish(struct spf_check *c, enum spf_result r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->detail, sizeof c->detail, fmt, ap);
    va_end(ap);
    frame_done(c, r);
}

static void on_dns(void *arg, const struct dns_answer *a);

/* Starts one lookup for the current frame's term; false (permerror/temperror given) on failure. */
static bool lookup(struct spf_check *c, enum step step, const char *name, int rrtype)
{
    c->step = step;
    if ((c->q = spf_dns.lookup(c->dns, name, rrtype, on_dns, c)) != NULL)
        return true;
    finish(c, SPF_TEMPERROR, "out of memory");
    return false;
}

/* Pushes a frame for domain and asks for its TXT records. */
static void fetch_record(struct spf_check *c, const char *domain, bool via_redirect)
{
    if (c->depth == SPF_DEPTH_MAX) {
        finish(c, SPF_PERMERROR, "includes nested more than %d deep", SPF_DEPTH_MAX);
        return;
    }
    struct frame *f = &c->frames[c->depth++];
    memset(f, 0, sizeof *f);
    snprintf(f->domain, sizeof f->domain, "%s", domain);
    f->via_redirect = via_redirect;
    lookup(c, STEP_RECORD, f->domain, DNS_RR_TXT);
}

static enum spf_result qualifier_result(char q)
{
    return q == '-' ? SPF_FAIL : q == '~' ? SPF_SOFTFAIL : q == '?' ? SPF_NEUTRAL : SPF_PASS;
}

/* The current frame's pending term matched: the frame's result is its qualifier's. */
static void matched(struct spf_check *c)
{
    struct frame *f = &c->frames[c->depth - 1];
    finish(c, qualifier_result(f->pending.qualifier), "%.*s matched in %s", (int)f->pending.text_len,
           f->pending.text, f->domain);
}

/* One more lookup that found nothing (NXDOMAIN or no records): past SPF_VOID_LIMIT, permerror. */
static bool void_lookup_ok(struct spf_check *c)
{
    if (++c->voids <= SPF_VOID_LIMIT)
        return true;
    finish(c, SPF_PERMERROR, "more than %d lookups found nothing (RFC 7208 4.6.4)", SPF_VOID_LIMIT);
    return false;
}

/* RFC 7208 6.2: the check's record failed the client by a mechanism's match (a fail is never
 * handed up from an include) and has exp=: its domain's TXT record is asked for the explanation.
 * True when that lookup started (got_explanation goes on). The lookup counts against no limit;
 * whatever goes wrong with it leaves the fail without an explanation, never changes the result. */
static bool ask_explanation(struct spf_check *c)
{
    struct term t;
    if (c->explanation_asked)
        return false;
    c->explanation_asked = true;
    if (!c->frames[0].record || !find_modifier(c->frames[0].record, MOD_EXP, &t) || !expand_target(c, &t))
        return false;
    c->step = STEP_EXP;
    return (c->q = spf_dns.lookup(c->dns, c->target, DNS_RR_TXT, on_dns, c)) != NULL;
}

/* Frame ended with r: report it, or hand it to the include that asked (RFC 7208 5.2). */
static void frame_done(struct spf_check *c, enum spf_result r)
{
    if (c->depth == 1 && r == SPF_FAIL && ask_explanation(c))
        return;
    struct frame *f = &c->frames[--c->depth];
    free(f->record);
    f->record = NULL;
    if (c->depth == 0) {
        c->cb(c->arg, r, c->detail, c->explanation[0] ? c->explanation : NULL);
        free(c);
        return;
    }
    if (r == SPF_PASS) {
        matched(c);
    } else if (r == SPF_TEMPERROR || r == SPF_PERMERROR || r == SPF_NONE) {
        if (r == SPF_NONE)
            snprintf(c->detail, sizeof c->detail, "included domain %s has no SPF record", f->domain);
        frame_done(c, r == SPF_NONE ? SPF_PERMERROR : r);
    } else {
        evaluate(c); /* fail, softfail, neutral: the include does not match */
    }
}

/* Whether one address record (rdata) is in the client's network of the given prefix. */
static bool address_matches(const struct spf_check *c, const unsigned char *rdata, int len, unsigned bits)
{
    struct cidr net = {.family = len == 4 ? AF_INET : AF_INET6, .prefix = bits};
    if ((len != 4 && len != 16) || (len == 16) != is_v6(c))
        return false;
    memcpy(net.addr, rdata, (size_t)len);
    return cidr_match(&net, (const struct sockaddr *)&c->ip);
}

static bool any_address_matches(const struct spf_check *c, const struct dns_answer *a, unsigned bits)
{
    for (int i = 0; i < a->n; i++)
        if (address_matches(c, a->data[i], a->len[i], bits))
            return true;
    return false;
}

/* mx and ptr: the address lookup of the next name, or the term does not match. */
static void next_name(struct spf_check *c, enum step step)
{
    if (c->next_name < c->nnames) {
        lookup(c, step, c->names[c->next_name++], is_v6(c) ? DNS_RR_AAAA : DNS_RR_A);
        return;
    }
    evaluate(c);
}

/* A name equal to the target domain or below it (ptr, RFC 7208 5.5). */
static bool name_within(const char *name, const char *domain)
{
    size_t n = strlen(name), d = strlen(domain);
    return strcasecmp(name, domain) == 0 || (n > d && name[n - d - 1] == '.' && strcasecmp(name + n - d, domain) == 0);
}

/* The MX or PTR names of an answer into c->names (PTR: only those within the target). */
static bool take_names(struct spf_check *c, const struct dns_answer *a, bool mx)
{
    c->nnames = c->next_name = 0;
    for (int i = 0; i < a->n; i++) {
        struct dns_mx m;
        bool ok = mx ? dns_parse_mx_rdata(a->data[i], a->len[i], &m)
                     : dns_wire_name(a->data[i], a->len[i], m.host, sizeof m.host);
        if (!ok || !*m.host || (!mx && !name_within(m.host, c->target)))
            continue;
        if (c->nnames == SPF_NAMES_LIMIT) {
            if (mx)
                return false; /* RFC 7208 4.6.4: more than 10 MX names is a permerror */
            break;            /* PTR: the first 10 */
        }
        snprintf(c->names[c->nnames++], sizeof c->names[0], "%s", m.host);
    }
    return true;
}

/* The TXT answer for the current frame: its record checked and evaluated, or why there is none. */
static void got_record(struct spf_check *c, const struct dns_answer *a)
{
    struct frame *f = &c->frames[c->depth - 1];
    enum spf_result none = f->via_redirect ? SPF_PERMERROR : SPF_NONE;
    if (a->status == DNS_TEMPFAIL) {
        finish(c, SPF_TEMPERROR, "the TXT lookup for %s failed", f->domain);
        return;
    }
    char *record = malloc(SPF_RECORD_MAX + 1);
    int found = a->status == DNS_OK && record ? spf_select_record(a->data, a->len, a->n, record, SPF_RECORD_MAX + 1)
                                              : 0;
    if (!record || found < 0 || (found == 1 && !spf_record_valid(record))) {
        free(record);
        finish(c, record ? SPF_PERMERROR : SPF_TEMPERROR, "%s: %s", f->domain,
               !record ? "out of memory" : found < 0 ? "more than one SPF record, or one too long"
                                                     : "syntax error in the SPF record");
        return;
    }
    if (found == 0) {
        free(record);
        finish(c, none, "%s has no SPF record", f->domain);
        return;
    }
    f->record = record;
    f->cursor = record + 6;
    evaluate(c);
}

static void got_address_answer(struct spf_check *c, const struct dns_answer *a)
{
    struct frame *f = &c->frames[c->depth - 1];
    bool mx_host = c->step == STEP_MX_ADDR, ptr_host = c->step == STEP_PTR_ADDR;
    unsigned bits = is_v6(c) ? f->pending.cidr6 : f->pending.cidr4;
    if (ptr_host) { /* a PTR name is validated when it has the client's own address */
        if (a->status == DNS_OK && any_address_matches(c, a, is_v6(c) ? 128 : 32))
            matched(c);
        else
            next_name(c, STEP_PTR_ADDR);
        return;
    }
    if (a->status == DNS_TEMPFAIL) {
        finish(c, SPF_TEMPERROR, "address lookup for %s failed", mx_host ? c->names[c->next_name - 1] : c->target);
        return;
    }
    if (!mx_host && (a->status == DNS_NXDOMAIN || a->n == 0)) {
        if (void_lookup_ok(c))
            evaluate(c);
        return;
    }
    if (a->status == DNS_OK && (c->step == STEP_EXISTS ? a->n > 0 : any_address_matches(c, a, bits)))
        matched(c);
    else if (mx_host)
        next_name(c, STEP_MX_ADDR);
    else
        evaluate(c);
}

static void got_names(struct spf_check *c, const struct dns_answer *a)
{
    bool mx = c->step == STEP_MX;
    if (a->status == DNS_TEMPFAIL && mx) {
        finish(c, SPF_TEMPERROR, "MX lookup for %s failed", c->target);
        return;
    }
    if (a->status != DNS_OK || a->n == 0) { /* ptr: a failed lookup is no match (RFC 7208 5.5) */
        if (a->status == DNS_TEMPFAIL || void_lookup_ok(c))
            evaluate(c);
        return;
    }
    if (!take_names(c, a, mx)) {
        finish(c, SPF_PERMERROR, "%s has more than %d MX names", c->target, SPF_NAMES_LIMIT);
        return;
    }
    next_name(c, mx ? STEP_MX_ADDR : STEP_PTR_ADDR);
}

/* The exp= domain's answer: exactly one TXT record, whose text expands without error, is the
 * explanation (kept printable US-ASCII, cut to SPF_EXPLANATION_MAX); anything else, none. */
static void got_explanation(struct spf_check *c, const struct dns_answer *a)
{
    char text[SPF_RECORD_MAX + 1], expanded[1024], now[24];
    snprintf(now, sizeof now, "%lld", (long long)time(NULL));
    struct spf_macro_env env = {.sender = c->sender, .local = c->local, .sender_domain = c->sender_domain,
                                .domain = c->frames[0].domain, .ip = c->ip_macro, .ipv6 = is_v6(c), .helo = c->helo,
                                .client = c->client_text, .receiver = c->receiver, .timestamp = now};
    if (a->status == DNS_OK && a->n == 1 && dns_txt_join(a->data[0], a->len[0], text, sizeof text) == 1 &&
        spf_expand_explanation(text, strlen(text), &env, expanded, sizeof expanded)) {
        size_t n = 0;
        for (const char *p = expanded; *p && n < SPF_EXPLANATION_MAX; p++)
            c->explanation[n++] = (char)(*p >= 0x20 && *p <= 0x7e ? *p : '?'); /* UTF-8 from %{s} or %{l} */
        c->explanation[n] = '\0';
    }
    frame_done(c, SPF_FAIL);
}

static void on_dns(void *arg, const struct dns_answer *a)
{
    struct spf_check *c = arg;
    c->q = NULL;
    switch (c->step) {
    case STEP_RECORD: got_record(c, a); return;
    case STEP_EXP: got_explanation(c, a); return;
    case STEP_MX:
    case STEP_PTR: got_names(c, a); return;
    default: got_address_answer(c, a); return;
    }
}

/* A domain-spec (or the current domain when there is none) expanded into c->target. */
static bool expand_target(struct spf_check *c, const struct term *t)
{
    struct frame *f = &c->frames[c->depth - 1];
    struct spf_macro_env env = {.sender = c->sender, .local = c->local, .sender_domain = c->sender_domain,
                                .domain = f->domain, .ip = c->ip_macro, .ipv6 = is_v6(c), .helo = c->helo};
    if (!t->spec) {
        snprintf(c->target, sizeof c->target, "%s", f->domain);
        return true;
    }
    return spf_expand(t->spec, t->spec_len, &env, c->target, sizeof c->target);
}

/* A term that looks something up: counted, its domain expanded, its first lookup started. */
static void start_lookup_term(struct spf_check *c, struct frame *f)
{
    const struct term *t = &f->pending;
    if (++c->lookups > SPF_LOOKUP_LIMIT) {
        finish(c, SPF_PERMERROR, "more than %d DNS-querying terms (RFC 7208 4.6.4)", SPF_LOOKUP_LIMIT);
        return;
    }
    if (!expand_target(c, t)) {
        finish(c, SPF_PERMERROR, "%.*s does not expand to a domain name", (int)t->text_len, t->text);
        return;
    }
    char rev[80];
    switch (t->kind) {
    case M_INCLUDE: fetch_record(c, c->target, false); return;
    case M_A: lookup(c, STEP_A, c->target, is_v6(c) ? DNS_RR_AAAA : DNS_RR_A); return;
    case M_EXISTS: lookup(c, STEP_EXISTS, c->target, DNS_RR_A); return;
    case M_MX: lookup(c, STEP_MX, c->target, DNS_RR_MX); return;
    case M_PTR:
        dns_reverse_name(&c->ip, "in-addr.arpa", "ip6.arpa", rev, sizeof rev); /* c->ip: IPv4 when mapped */
        lookup(c, STEP_PTR, rev, DNS_RR_PTR);
        return;
    default: return;
    }
}

/* No term matched: redirect= (its domain's result is this one's) or neutral (RFC 7208 4.7). */
static void end_of_record(struct spf_check *c, struct frame *f)
{
    struct term t;
    if (!find_modifier(f->record, MOD_REDIRECT, &t)) {
        finish(c, SPF_NEUTRAL, "no term of %s matched", f->domain);
        return;
    }
    if (++c->lookups > SPF_LOOKUP_LIMIT) {
        finish(c, SPF_PERMERROR, "more than %d DNS-querying terms (RFC 7208 4.6.4)", SPF_LOOKUP_LIMIT);
        return;
    }
    if (!expand_target(c, &t)) {
        finish(c, SPF_PERMERROR, "redirect= of %s does not expand to a domain name", f->domain);
        return;
    }
    free(f->record); /* the redirect takes this frame's place */
    f->record = NULL;
    c->depth--;
    fetch_record(c, c->target, true);
}

/* Evaluates the current frame's terms from its cursor until one needs DNS or decides. */
static void evaluate(struct spf_check *c)
{
    struct frame *f = &c->frames[c->depth - 1];
    struct term t;
    for (;;) {
        int rc = next_term(&f->cursor, &t);
        if (rc < 0) {
            finish(c, SPF_PERMERROR, "syntax error in the SPF record of %s", f->domain);
            return;
        }
        if (rc == 0) {
            end_of_record(c, f);
            return;
        }
        f->pending = t;
        switch (t.kind) {
        case M_ALL: matched(c); return;
        case M_IP4:
        case M_IP6:
            if ((t.kind == M_IP6) == is_v6(c) && cidr_match(&t.net, (const struct sockaddr *)&c->ip)) {
                matched(c);
                return;
            }
            break;
        case M_INCLUDE: case M_A: case M_MX: case M_PTR: case M_EXISTS: start_lookup_term(c, f); return;
        default: break; /* modifiers: redirect= at the end, exp= and others never */
        }
    }
}

/* The client address as SPF sees it, and its %{i} and %{c} forms. */
static void set_client(struct spf_check *c, const struct sockaddr *ip)
{
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ip;
    if (ip->sa_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
        struct sockaddr_in *in = (struct sockaddr_in *)&c->ip;
        in->sin_family = AF_INET;
        memcpy(&in->sin_addr, in6->sin6_addr.s6_addr + 12, 4);
    } else {
        memcpy(&c->ip, ip, ip->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
    }
    if (!is_v6(c)) {
        inet_ntop(AF_INET, &((struct sockaddr_in *)&c->ip)->sin_addr, c->ip_macro, sizeof c->ip_macro);
        snprintf(c->client_text, sizeof c->client_text, "%s", c->ip_macro);
        return;
    }
    inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&c->ip)->sin6_addr, c->client_text, sizeof c->client_text);
    const unsigned char *b = ((struct sockaddr_in6 *)&c->ip)->sin6_addr.s6_addr;
    size_t n = 0;
    for (int i = 0; i < 16; i++)
        n += (size_t)snprintf(c->ip_macro + n, sizeof c->ip_macro - n, "%s%x.%x", i ? "." : "", b[i] >> 4, b[i] & 15);
}

struct spf_check *spf_check_start(struct dns *dns, const struct sockaddr *ip, const char *sender, const char *helo,
                                  const char *receiver, spf_done_cb cb, void *arg)
{
    struct spf_check *c = calloc(1, sizeof *c);
    const char *at = strrchr(sender, '@');
    if (!c || !at)
        return free(c), NULL;
    c->dns = dns;
    c->cb = cb;
    c->arg = arg;
    set_client(c, ip);
    snprintf(c->sender, sizeof c->sender, "%s", sender);
    snprintf(c->local, sizeof c->local, "%.*s", (int)(at - sender), sender);
    snprintf(c->sender_domain, sizeof c->sender_domain, "%s", at + 1);
    snprintf(c->helo, sizeof c->helo, "%s", helo);
    snprintf(c->receiver, sizeof c->receiver, "%s", receiver && *receiver ? receiver : "unknown");
    struct frame *f = &c->frames[c->depth++]; /* as fetch_record, but a failure is NULL, never the callback */
    snprintf(f->domain, sizeof f->domain, "%s", c->sender_domain);
    c->step = STEP_RECORD;
    if ((c->q = spf_dns.lookup(dns, f->domain, DNS_RR_TXT, on_dns, c)) != NULL)
        return c;
    free(c);
    return NULL;
}

bool spf_check_failed_unexplained(const struct spf_check *c, char *detail, size_t detailsz)
{
    if (!c || c->step != STEP_EXP || !c->q)
        return false;
    snprintf(detail, detailsz, "%s", c->detail);
    return true;
}

void spf_check_cancel(struct spf_check *c)
{
    if (!c)
        return;
    if (c->q)
        spf_dns.cancel(c->q);
    for (int i = 0; i < c->depth; i++)
        free(c->frames[i].record);
    free(c);
}
