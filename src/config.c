/* config.c - reads `key = value` files into struct config through one typed key table.
 * Limits: lines up to 4095 octets, values bounded by each key's min/max. Never exits or prints:
 * every problem becomes an error message "file:line: key: ..." for the caller to show. */
#include "config.h"
#include "config_priv.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/un.h>

#include "address.h"
#include "cidr.h"
#include "log.h"


const char *config_policy_name(enum check_policy p)
{
    return p == POLICY_REJECT ? "reject" : p == POLICY_HEADER ? "header" : "off";
}

void config_errors_add(struct config_errors *errs, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    char **n = realloc(errs->msgs, (errs->count + 1) * sizeof *n);
    if (!n)
        return;
    errs->msgs = n;
    errs->msgs[errs->count] = strdup(buf);
    if (errs->msgs[errs->count])
        errs->count++;
}

void config_errors_free(struct config_errors *errs)
{
    for (size_t i = 0; i < errs->count; i++)
        free(errs->msgs[i]);
    free(errs->msgs);
    errs->msgs = NULL;
    errs->count = 0;
}

static void strlist_free(struct strlist *l)
{
    for (size_t i = 0; i < l->count; i++)
        free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->count = 0;
}

/* Splits on commas and whitespace. */
static bool strlist_split(const char *value, struct strlist *out)
{
    const char *p = value;
    while (*p) {
        while (*p == ',' || *p == ' ' || *p == '\t')
            p++;
        if (!*p)
            break;
        const char *start = p;
        while (*p && *p != ',' && *p != ' ' && *p != '\t')
            p++;
        char **n = realloc(out->items, (out->count + 1) * sizeof *n);
        if (!n)
            return false;
        out->items = n;
        out->items[out->count] = strndup(start, (size_t)(p - start));
        if (!out->items[out->count])
            return false;
        out->count++;
    }
    return true;
}

/* Parses an unsigned number; sizes take k/M/G, durations s/m/h/d. */
static bool parse_number(const char *v, unsigned long long *out, enum key_type type)
{
    char *end;
    if (*v < '0' || *v > '9')
        return false;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno)
        return false;
    unsigned long long mul = 1;
    if (type == T_SIZE && *end) {
        switch (*end++) {
        case 'k': case 'K': mul = 1024ull; break;
        case 'm': case 'M': mul = 1024ull * 1024; break;
        case 'g': case 'G': mul = 1024ull * 1024 * 1024; break;
        default: return false;
        }
    } else if (type == T_DURATION && *end) {
        switch (*end++) {
        case 's': mul = 1; break;
        case 'm': mul = 60; break;
        case 'h': mul = 3600; break;
        case 'd': mul = 86400; break;
        default: return false;
        }
    }
    if (*end || (n && mul > UINT64_MAX / n))
        return false;
    *out = n * mul;
    return true;
}

bool config_parse_size(const char *v, unsigned long long *out)
{
    return parse_number(v, out, T_SIZE);
}

/* Writes n as a config value of type: the largest unit that divides it (64M, 10m, 1h), so that a
 * range in an error reads as the file would say it. */
static void format_number(unsigned long long n, enum key_type type, char *out, size_t outsz)
{
    struct unit {
        char suffix;
        unsigned long long size;
    };
    static const struct unit sizes[] = {{'G', 1024ull * 1024 * 1024}, {'M', 1024ull * 1024}, {'k', 1024}, {0, 0}};
    static const struct unit times[] = {{'d', 86400}, {'h', 3600}, {'m', 60}, {'s', 1}, {0, 0}};
    for (const struct unit *u = type == T_SIZE ? sizes : type == T_DURATION ? times : NULL; u && u->size; u++)
        if (n >= u->size && n % u->size == 0) {
            snprintf(out, outsz, "%llu%c", n / u->size, u->suffix);
            return;
        }
    snprintf(out, outsz, "%llu", n);
}

/* "value out of range (min to max)" for key k, in buf. */
static const char *range_error(const struct key_def *k, char *buf, size_t bufsz)
{
    char lo[32], hi[32];
    format_number(k->min, k->type, lo, sizeof lo);
    format_number(k->max, k->type, hi, sizeof hi);
    snprintf(buf, bufsz, "value out of range (%s to %s)", lo, hi);
    return buf;
}

/* Checks each item of a list with the key's type; returns an error text or NULL. */
static const char *check_list_item(enum key_type type, char *item)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    struct cidr net;
    bool utf8;
    switch (type) {
    case T_LISTEN_LIST:
    case T_OPT_LISTEN_LIST:
        return hostport_parse(item, &ss, &sslen) ? NULL : "expected host:port with an IP address, e.g. 127.0.0.1:25 or [::1]:25";
    case T_CIDR_LIST:
        return cidr_parse(item, &net) ? NULL : "expected a network like 192.0.2.0/24 or 2001:db8::/32";
    case T_RESOLVER_LIST: {
        char *at = strchr(item, '@');
        unsigned char buf[16];
        if (at)
            *at = '\0';
        bool ok = inet_pton(AF_INET, item, buf) == 1 || inet_pton(AF_INET6, item, buf) == 1;
        if (at) {
            *at = '@';
            char *end;
            unsigned long port = strtoul(at + 1, &end, 10);
            ok = ok && at[1] && !*end && port >= 1 && port <= 65535;
        }
        return ok ? NULL : "expected an IP address or IP@port, e.g. 127.0.0.1@5353";
    }
    case T_DOMAIN_LIST:
        ascii_lower_copy(item, item, strlen(item) + 1);
        return address_parse_domain(item, strlen(item), &utf8) == ADDR_OK ? NULL : "not a valid domain name";
    case T_MILTER_LIST: /* inet:host:port (an IP address) or unix:/absolute/path */
        if (!strncmp(item, "inet:", 5) && hostport_parse(item + 5, &ss, &sslen))
            return NULL;
        if (!strncmp(item, "unix:/", 6) && strlen(item + 5) < sizeof((struct sockaddr_un *)0)->sun_path)
            return NULL;
        return "expected inet:address:port (e.g. inet:127.0.0.1:11332) or unix:/absolute/path";
    case T_SUFFIX_LIST: { /* a domain, or ".domain": every subdomain of it */
        ascii_lower_copy(item, item, strlen(item) + 1);
        const char *name = item + (item[0] == '.');
        return address_parse_domain(name, strlen(name), &utf8) == ADDR_OK ? NULL
                                                                          : "not a valid domain name (or .domain)";
    }
    default:
        return NULL;
    }
}

/* Sets one key from its text value; returns an error text (static, or in buf) or NULL. */
static const char *set_value(struct config *cfg, const struct key_def *k, const char *v, char *buf, size_t bufsz)
{
    void *field = (char *)cfg + k->offset;
    unsigned long long n;
    bool utf8;
    switch (k->type) {
    case T_POLICY:
        for (enum check_policy p = POLICY_OFF; p <= POLICY_REJECT; p++)
            if (strcmp(v, config_policy_name(p)) == 0) {
                *(enum check_policy *)field = p;
                return NULL;
            }
        return "expected off, header or reject";
    case T_TLS_VERSION:
        if (strcmp(v, "TLSv1") != 0 && strcmp(v, "TLSv1.1") != 0 && strcmp(v, "TLSv1.2") != 0 &&
            strcmp(v, "TLSv1.3") != 0)
            return "expected TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3";
        /* fall through */
    case T_STRING:
    case T_OPTPATH:
    case T_PATH:
    case T_HOSTNAME:
        if (k->type == T_PATH && !*v)
            return "must not be empty";
        if ((k->type == T_PATH || k->type == T_OPTPATH) && strlen(v) > 1024)
            return "path longer than 1024 octets";
        if (k->type == T_HOSTNAME && *v && address_parse_domain(v, strlen(v), &utf8) != ADDR_OK)
            return "not a valid host name";
        free(*(char **)field);
        *(char **)field = strdup(v);
        return NULL;
    case T_BOOL:
        if (!strcasecmp(v, "yes") || !strcasecmp(v, "true") || !strcasecmp(v, "on") || !strcmp(v, "1"))
            *(bool *)field = true;
        else if (!strcasecmp(v, "no") || !strcasecmp(v, "false") || !strcasecmp(v, "off") || !strcmp(v, "0"))
            *(bool *)field = false;
        else
            return "expected yes or no";
        return NULL;
    case T_UINT:
    case T_SIZE:
    case T_DURATION:
        if (!parse_number(v, &n, k->type))
            return k->type == T_SIZE ? "expected a size in octets (k, M, G suffixes allowed)"
                   : k->type == T_DURATION ? "expected a duration (s, m, h, d suffixes allowed)"
                                           : "expected a whole number";
        if (n < k->min || n > k->max)
            return range_error(k, buf, bufsz);
        if (k->type == T_SIZE)
            *(size_t *)field = (size_t)n;
        else
            *(unsigned *)field = (unsigned)n;
        return NULL;
    case T_LOGLEVEL:
        if (log_level_parse(v) < 0)
            return "expected debug, info, warn or error";
        *(int *)field = log_level_parse(v);
        return NULL;
    case T_DURATION_LIST: {
        struct durlist *d = field;
        struct strlist l = {0};
        const char *err = strlist_split(v, &l) ? NULL : "out of memory";
        d->count = 0;
        for (size_t i = 0; !err && i < l.count; i++) {
            if (i == DURLIST_MAX)
                err = "at most 16 durations";
            else if (!parse_number(l.items[i], &n, T_DURATION) || n < 1 || n > 86400ull * 30)
                err = "expected durations between 1s and 30d, e.g. 5m,10m,1h";
            else
                d->v[d->count++] = (unsigned)n;
        }
        if (!err && d->count == 0)
            err = "needs at least one duration";
        strlist_free(&l);
        return err;
    }
    case T_LISTEN_LIST:
    case T_OPT_LISTEN_LIST:
    case T_DOMAIN_LIST:
    case T_SUFFIX_LIST:
    case T_RESOLVER_LIST:
    case T_MILTER_LIST:
    case T_CIDR_LIST: {
        struct strlist *l = field;
        strlist_free(l);
        if (!strlist_split(v, l))
            return "out of memory";
        for (size_t i = 0; i < l->count; i++) {
            const char *e = check_list_item(k->type, l->items[i]);
            if (e)
                return e;
        }
        if (k->type == T_LISTEN_LIST && l->count == 0)
            return "needs at least one address";
        return NULL;
    }
    }
    return "internal: unknown type";
}

static const struct key_def *find_key(const char *name)
{
    for (size_t i = 0; i < config_nkeys; i++)
        if (strcmp(config_keys[i].name, name) == 0)
            return &config_keys[i];
    return NULL;
}

/* Edits (insert, delete, replace, swap of two neighbours) between a and b, ignoring ASCII case;
 * SIZE_MAX when either is longer than any key could be. */
static size_t edit_distance(const char *a, const char *b)
{
    enum { MAXLEN = 63 };
    size_t la = strlen(a), lb = strlen(b), d[MAXLEN + 1][MAXLEN + 1];
    if (la > MAXLEN || lb > MAXLEN)
        return SIZE_MAX;
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            size_t best = d[i - 1][j - 1] + (tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]));
            if (d[i - 1][j] + 1 < best)
                best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 2]) &&
                tolower((unsigned char)a[i - 2]) == tolower((unsigned char)b[j - 1]) && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    return d[la][lb];
}

/* The key a misspelt name most likely meant (at most 2 edits away, 3 for long names), or NULL. */
static const char *closest_key(const char *name)
{
    size_t best = strlen(name) >= 12 ? 3 : 2;
    const char *found = NULL;
    for (size_t i = 0; i < config_nkeys; i++) {
        size_t d = edit_distance(name, config_keys[i].name);
        if (d <= best) {
            best = d;
            found = config_keys[i].name;
        }
    }
    return found;
}

int config_key_line(const struct config *cfg, const char *key)
{
    const struct key_def *k = find_key(key);
    return k ? cfg->key_lines[k - config_keys] : 0;
}

bool config_file_readable(const struct config *cfg, const char *key, const char *path, struct config_errors *errs)
{
    FILE *f = fopen(path, "r");
    if (f) {
        fclose(f);
        return true;
    }
    config_errors_add(errs, "%s:%d: %s: cannot read %s: %s", cfg->path, config_key_line(cfg, key), key, path,
                      strerror(errno));
    return false;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
        *--e = '\0';
    return s;
}

/* Handles one line of the file (comments and blank lines ignored). */
static void parse_line(struct config *cfg, char *line, int lineno, struct config_errors *errs)
{
    char *hash = line;
    while ((hash = strchr(hash, '#')) != NULL) { /* a comment starts at line start or after blanks */
        if (hash == line || hash[-1] == ' ' || hash[-1] == '\t') {
            *hash = '\0';
            break;
        }
        hash++;
    }
    char *s = trim(line);
    if (!*s)
        return;
    char *eq = strchr(s, '=');
    if (!eq) {
        config_errors_add(errs, "%s:%d: expected 'key = value', got '%.60s'", cfg->path, lineno, s);
        return;
    }
    *eq = '\0';
    char *name = trim(s), *value = trim(eq + 1);
    const struct key_def *k = find_key(name);
    if (!k) {
        const char *meant = closest_key(name);
        config_errors_add(errs, "%s:%d: %.60s: unknown key%s%s%s", cfg->path, lineno, name,
                          meant ? " (did you mean " : "", meant ? meant : "", meant ? "?)" : "");
        return;
    }
    int *seen = &cfg->key_lines[k - config_keys];
    if (*seen) {
        config_errors_add(errs, "%s:%d: %s: set twice (first on line %d)", cfg->path, lineno, name, *seen);
        return;
    }
    *seen = lineno;
    char buf[96];
    const char *err = set_value(cfg, k, value, buf, sizeof buf);
    if (err)
        config_errors_add(errs, "%s:%d: %s: %s: '%.80s'", cfg->path, lineno, name, err, value);
}

/* Keys that only make sense together: TLS listeners need a certificate and a key. */
static void check_tls_keys(struct config *cfg, struct config_errors *errs)
{
    bool have_cert = *cfg->tls_cert, have_key = *cfg->tls_key;
    if (have_cert != have_key)
        config_errors_add(errs, "%s:%d: %s: tls_cert and tls_key must be set together", cfg->path,
                          config_key_line(cfg, have_cert ? "tls_cert" : "tls_key"), have_cert ? "tls_cert" : "tls_key");
    if (*cfg->tls_sni && !have_cert)
        config_errors_add(errs, "%s:%d: tls_sni: needs tls_cert and tls_key (the certificate for other names)",
                          cfg->path, config_key_line(cfg, "tls_sni"));
    const char *roles[] = {"submission_listen", "smtps_listen"};
    const struct strlist *lists[] = {&cfg->submission_listen, &cfg->smtps_listen};
    for (int i = 0; i < 2; i++) {
        if (lists[i]->count && !have_cert)
            config_errors_add(errs, "%s:%d: %s: needs tls_cert and tls_key", cfg->path,
                              config_key_line(cfg, roles[i]), roles[i]);
        if (lists[i]->count && !*cfg->users)
            config_errors_add(errs, "%s:%d: %s: needs a users table (users = FILE)", cfg->path,
                              config_key_line(cfg, roles[i]), roles[i]);
    }
}

/* True when binding both addresses would fail: the same family and port, and the same address
 * or one of them the wildcard (0.0.0.0 or ::, which takes the port on every address). */
static bool listen_clash(const char *a, const char *b)
{
    struct sockaddr_storage x, y;
    socklen_t lx, ly;
    if (!hostport_parse(a, &x, &lx) || !hostport_parse(b, &y, &ly) || x.ss_family != y.ss_family)
        return false;
    if (x.ss_family == AF_INET) {
        const struct sockaddr_in *p = (const struct sockaddr_in *)(const void *)&x;
        const struct sockaddr_in *q = (const struct sockaddr_in *)(const void *)&y;
        return p->sin_port == q->sin_port && (p->sin_addr.s_addr == q->sin_addr.s_addr ||
                                              p->sin_addr.s_addr == INADDR_ANY || q->sin_addr.s_addr == INADDR_ANY);
    }
    const struct sockaddr_in6 *p = (const struct sockaddr_in6 *)(const void *)&x;
    const struct sockaddr_in6 *q = (const struct sockaddr_in6 *)(const void *)&y;
    return p->sin6_port == q->sin6_port &&
           (IN6_ARE_ADDR_EQUAL(&p->sin6_addr, &q->sin6_addr) || IN6_IS_ADDR_UNSPECIFIED(&p->sin6_addr) ||
            IN6_IS_ADDR_UNSPECIFIED(&q->sin6_addr));
}

/* Says that address b of key kb clashes with address a of key ka (listed first). */
static void report_clash(struct config *cfg, struct config_errors *errs, const char *ka, const char *a,
                         const char *kb, const char *b)
{
    char where[64];
    int line = config_key_line(cfg, ka);
    if (line)
        snprintf(where, sizeof where, "%s, line %d", ka, line);
    else
        snprintf(where, sizeof where, "%s's default", ka);
    config_errors_add(errs, "%s:%d: %s: %s clashes with %s (%s): an address and port can be listened on once",
                      cfg->path, config_key_line(cfg, kb), kb, b, a, where);
}

/* An address given twice, in one listen key or across the four, could only fail at start-up
 * ("Address already in use"): check-config names both places instead. Every pair is compared. */
static void check_listen_clashes(struct config *cfg, struct config_errors *errs)
{
    if (cfg->metrics_listen.count > 16)
        config_errors_add(errs, "%s:%d: metrics_listen: at most 16 addresses", cfg->path,
                          config_key_line(cfg, "metrics_listen"));
    const char *names[] = {"listen", "submission_listen", "smtps_listen", "metrics_listen"};
    const struct strlist *lists[] = {&cfg->listen, &cfg->submission_listen, &cfg->smtps_listen, &cfg->metrics_listen};
    for (int i = 0; i < 4; i++)
        for (size_t a = 0; a < lists[i]->count; a++)
            for (int j = i; j < 4; j++)
                for (size_t b = (j == i ? a + 1 : 0); b < lists[j]->count; b++)
                    if (listen_clash(lists[i]->items[a], lists[j]->items[b]))
                        report_clash(cfg, errs, names[i], lists[i]->items[a], names[j], lists[j]->items[b]);
}

/* relay_host_auth's file: comments and blank lines, and one "user:password" line (the password
 * may hold ':'). Errors name the file and line. */
static void read_relay_auth(struct config *cfg, struct config_errors *errs)
{
    FILE *f = fopen(cfg->relay_host_auth, "r");
    if (!f) {
        config_errors_add(errs, "%s:%d: relay_host_auth: cannot read %s: %s", cfg->path,
                          config_key_line(cfg, "relay_host_auth"), cfg->relay_host_auth, strerror(errno));
        return;
    }
    char line[600];
    int lineno = 0;
    bool bad = false;
    while (!bad && fgets(line, sizeof line, f)) {
        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0] || line[0] == '#')
            continue;
        char *colon = strchr(line, ':');
        const char *problem = *cfg->relay_user ? "more than one user:password line"
                              : !colon || colon == line || !colon[1] ? "expected user:password"
                              : (size_t)(colon - line) >= sizeof cfg->relay_user || strlen(colon + 1) >= sizeof cfg->relay_password
                                  ? "user or password longer than 255 octets" : NULL;
        if ((bad = problem != NULL)) {
            config_errors_add(errs, "%s:%d: relay_host_auth: %s", cfg->relay_host_auth, lineno, problem);
            break;
        }
        snprintf(cfg->relay_user, sizeof cfg->relay_user, "%.*s", (int)(colon - line), line);
        snprintf(cfg->relay_password, sizeof cfg->relay_password, "%s", colon + 1);
    }
    explicit_bzero(line, sizeof line);
    fclose(f);
    if (!*cfg->relay_user && !bad)
        config_errors_add(errs, "%s:%d: relay_host_auth: no user:password line", cfg->relay_host_auth, lineno);
}

/* smtp_bind_address(6): an address literal of its family, or empty. */
static void check_bind_addresses(struct config *cfg, struct config_errors *errs)
{
    static const struct { const char *key; int family; } binds[] = {{"smtp_bind_address", AF_INET},
                                                                   {"smtp_bind_address6", AF_INET6}};
    for (size_t i = 0; i < 2; i++) {
        const char *v = i == 0 ? cfg->smtp_bind_address : cfg->smtp_bind_address6;
        unsigned char addr[16];
        if (*v && inet_pton(binds[i].family, v, addr) != 1)
            config_errors_add(errs, "%s:%d: %s: '%.80s' is not an %s address", cfg->path,
                              config_key_line(cfg, binds[i].key), binds[i].key, v, i == 0 ? "IPv4" : "IPv6");
    }
}

static void check_relay_host(struct config *cfg, struct config_errors *errs)
{
    int line = config_key_line(cfg, "relay_host_auth");
    if (cfg->relay_host_implicit_tls && (!*cfg->relay_host || !cfg->smtp_tls))
        config_errors_add(errs, "%s:%d: relay_host_implicit_tls: needs relay_host and smtp_tls = yes", cfg->path,
                          config_key_line(cfg, "relay_host_implicit_tls"));
    if (*cfg->relay_host_auth && !*cfg->relay_host)
        config_errors_add(errs, "%s:%d: relay_host_auth: needs relay_host", cfg->path, line);
    else if (*cfg->relay_host_auth && !cfg->smtp_tls)
        config_errors_add(errs, "%s:%d: relay_host_auth: needs smtp_tls = yes (the password goes over TLS only)",
                          cfg->path, line);
    else if (*cfg->relay_host_auth)
        read_relay_auth(cfg, errs);
    if (*cfg->relay_host && !next_hop_parse(cfg->relay_host, cfg->smtp_port, &cfg->relay_hop))
        config_errors_add(errs, "%s:%d: relay_host: expected [name], [address] or name, with an optional :port, "
                          "e.g. [smtp.example.net]:587: '%.80s'", cfg->path, config_key_line(cfg, "relay_host"),
                          cfg->relay_host);
    cfg->relay_hop.relay_host = true;
}

/* Fills in the system host name when hostname was left empty. */
static void default_hostname(struct config *cfg)
{
    if (cfg->hostname && *cfg->hostname)
        return;
    char buf[256] = "localhost";
    if (gethostname(buf, sizeof buf - 1) != 0 || !*buf)
        strcpy(buf, "localhost");
    buf[sizeof buf - 1] = '\0';
    free(cfg->hostname);
    cfg->hostname = strdup(buf);
}

bool config_load(const char *path, struct config *cfg, struct config_errors *errs)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->path = strdup(path);
    for (size_t i = 0; i < config_nkeys; i++) {
        char buf[96];
        const char *e = set_value(cfg, &config_keys[i], config_keys[i].def, buf, sizeof buf);
        if (e)
            config_errors_add(errs, "internal default of %s: %s", config_keys[i].name, e);
    }
    FILE *f = fopen(path, "r");
    if (!f) {
        config_errors_add(errs, "%s: cannot read: %s", path, strerror(errno));
        return false;
    }
    char line[4096];
    int lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        size_t n = strlen(line);
        if (n == sizeof line - 1 && line[n - 1] != '\n') {
            config_errors_add(errs, "%s:%d: line longer than %zu octets", path, lineno, sizeof line - 2);
            int c;
            while ((c = fgetc(f)) != EOF && c != '\n')
                ;
            continue;
        }
        parse_line(cfg, line, lineno, errs);
    }
    fclose(f);
    default_hostname(cfg);
    check_tls_keys(cfg, errs);
    check_listen_clashes(cfg, errs);
    if (cfg->dnsbl_zones.count > DNSBL_ZONES_MAX)
        config_errors_add(errs, "%s:%d: dnsbl_zones: %zu zones, at most %d (each is a DNS lookup per connection)",
                          cfg->path, config_key_line(cfg, "dnsbl_zones"), cfg->dnsbl_zones.count, DNSBL_ZONES_MAX);
    check_relay_host(cfg, errs);
    check_bind_addresses(cfg, errs);
    const char *folder = cfg->dmarc_quarantine_folder;
    if (strlen(folder) > FOLDER_NAME_MAX || strspn(folder, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                        "0123456789-_") != strlen(folder))
        config_errors_add(errs, "%s:%d: dmarc_quarantine_folder: a folder name of letters, digits, - and _ (at most "
                          "%d), e.g. Junk", cfg->path, config_key_line(cfg, "dmarc_quarantine_folder"), FOLDER_NAME_MAX);
    if (cfg->dmarc_policy != POLICY_OFF && (!cfg->dkim_verify || cfg->spf_policy == POLICY_OFF))
        config_errors_add(errs, "%s:%d: dmarc_policy: needs dkim_verify = yes and spf_policy = header or reject "
                          "(DMARC judges their results)", cfg->path, config_key_line(cfg, "dmarc_policy"));
    return errs->count == 0;
}

void config_free(struct config *cfg)
{
    for (size_t i = 0; i < config_nkeys; i++) {
        void *field = (char *)cfg + config_keys[i].offset;
        switch (config_keys[i].type) {
        case T_STRING: case T_PATH: case T_OPTPATH: case T_HOSTNAME: case T_TLS_VERSION:
            free(*(char **)field);
            break;
        case T_LISTEN_LIST: case T_OPT_LISTEN_LIST: case T_DOMAIN_LIST: case T_SUFFIX_LIST: case T_CIDR_LIST:
        case T_RESOLVER_LIST: case T_MILTER_LIST:
            strlist_free(field);
            break;
        default:
            break;
        }
    }
    free(cfg->path);
    explicit_bzero(cfg->relay_password, sizeof cfg->relay_password);
    memset(cfg, 0, sizeof *cfg);
}

bool strlists_equal(const struct strlist *a, const struct strlist *b)
{
    if (a->count != b->count)
        return false;
    for (size_t i = 0; i < a->count; i++)
        if (strcmp(a->items[i], b->items[i]) != 0)
            return false;
    return true;
}

/* Whether key k has the same value in a and b, compared by its type. */
static bool key_equal(const struct key_def *k, const struct config *a, const struct config *b)
{
    const void *fa = (const char *)a + k->offset, *fb = (const char *)b + k->offset;
    switch (k->type) {
    case T_POLICY: return *(const enum check_policy *)fa == *(const enum check_policy *)fb;
    case T_STRING: case T_PATH: case T_OPTPATH: case T_HOSTNAME: case T_TLS_VERSION: {
        const char *sa = *(char *const *)fa, *sb = *(char *const *)fb;
        return strcmp(sa ? sa : "", sb ? sb : "") == 0;
    }
    case T_BOOL: return *(const bool *)fa == *(const bool *)fb;
    case T_UINT: case T_DURATION: return *(const unsigned *)fa == *(const unsigned *)fb;
    case T_SIZE: return *(const size_t *)fa == *(const size_t *)fb;
    case T_LOGLEVEL: return *(const int *)fa == *(const int *)fb;
    case T_DURATION_LIST: {
        const struct durlist *da = fa, *db = fb;
        return da->count == db->count && memcmp(da->v, db->v, da->count * sizeof da->v[0]) == 0;
    }
    case T_LISTEN_LIST: case T_OPT_LISTEN_LIST: case T_DOMAIN_LIST: case T_SUFFIX_LIST: case T_CIDR_LIST:
        case T_RESOLVER_LIST: case T_MILTER_LIST:
        return strlists_equal(fa, fb);
    }
    return false;
}

void config_changed_keys(const struct config *a, const struct config *b, const char *const *skip, char *out,
                         size_t outsz)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < config_nkeys; i++) {
        bool skipped = false;
        for (const char *const *sk = skip; sk && *sk && !skipped; sk++)
            skipped = strcmp(*sk, config_keys[i].name) == 0;
        if (skipped || key_equal(&config_keys[i], a, b))
            continue;
        int n = snprintf(out + used, outsz - used, "%s%s", used ? "," : "", config_keys[i].name);
        if (n < 0 || (size_t)n >= outsz - used) {
            out[used] = '\0'; /* cut at the last whole name */
            return;
        }
        used += (size_t)n;
    }
}

/* Appends list items to out, ", " between them. */
static void join_items(char *out, size_t outsz, const struct strlist *l)
{
    size_t n = 0;
    for (size_t i = 0; i < l->count && n < outsz; i++)
        n += (size_t)snprintf(out + n, outsz - n, "%s%s", i ? ", " : "", l->items[i]);
}

/* Key k's value in cfg as a configuration file would write it. */
static void format_value(const struct key_def *k, const struct config *cfg, char *out, size_t outsz)
{
    static const char *const levels[] = {"debug", "info", "warn", "error"};
    const void *f = (const char *)cfg + k->offset;
    out[0] = '\0';
    switch (k->type) {
    case T_POLICY: snprintf(out, outsz, "%s", config_policy_name(*(const enum check_policy *)f)); return;
    case T_STRING: case T_PATH: case T_OPTPATH: case T_HOSTNAME: case T_TLS_VERSION: {
        const char *s = *(char *const *)f;
        snprintf(out, outsz, "%s", s ? s : "");
        return;
    }
    case T_BOOL: snprintf(out, outsz, "%s", *(const bool *)f ? "yes" : "no"); return;
    case T_UINT: snprintf(out, outsz, "%u", *(const unsigned *)f); return;
    case T_DURATION: format_number(*(const unsigned *)f, T_DURATION, out, outsz); return;
    case T_SIZE: format_number(*(const size_t *)f, T_SIZE, out, outsz); return;
    case T_LOGLEVEL: {
        int level = *(const int *)f;
        snprintf(out, outsz, "%s", level >= 0 && level < 4 ? levels[level] : "?");
        return;
    }
    case T_DURATION_LIST: {
        const struct durlist *d = f;
        size_t n = 0;
        for (size_t i = 0; i < d->count && n < outsz; i++) {
            char one[32];
            format_number(d->v[i], T_DURATION, one, sizeof one);
            n += (size_t)snprintf(out + n, outsz - n, "%s%s", i ? ", " : "", one);
        }
        return;
    }
    case T_LISTEN_LIST: case T_OPT_LISTEN_LIST: case T_DOMAIN_LIST: case T_SUFFIX_LIST: case T_CIDR_LIST:
        case T_RESOLVER_LIST: case T_MILTER_LIST:
        join_items(out, outsz, f);
        return;
    }
}

void config_print_effective(FILE *out, const struct config *cfg, bool only_set)
{
    for (size_t i = 0; i < config_nkeys; i++) {
        if (only_set && !config_key_line(cfg, config_keys[i].name))
            continue;
        char value[4096];
        format_value(&config_keys[i], cfg, value, sizeof value);
        fprintf(out, "%s =%s%s\n", config_keys[i].name, *value ? " " : "", value);
    }
}

void config_print_reference(FILE *out)
{
    for (size_t i = 0; i < config_nkeys; i++)
        fprintf(out, "%-24s default: %-16s %s\n", config_keys[i].name, *config_keys[i].def ? config_keys[i].def : "(none)",
                config_keys[i].meaning);
}
