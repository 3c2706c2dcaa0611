/* access.c - reads client_access and sender_access (access.h) and answers lookups in them.
 * Limits: ACCESS_CLIENTS_MAX networks, ACCESS_TEXT_MAX octets of printable ASCII per text; a
 * network, sender or name listed twice is an error naming both lines. Never does I/O after loading. */
#include "access.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "idn.h"

const char *access_action_name(enum access_action a)
{
    switch (a) {
    case ACCESS_PERMIT: return "permit";
    case ACCESS_DEFER: return "defer";
    case ACCESS_REJECT: return "reject";
    case ACCESS_NONE: break;
    }
    return "none";
}

/* The action a table names (case-insensitive); ACCESS_NONE when it is none of them, or permit
 * where it is not allowed. */
static enum access_action parse_action(const char *word, bool permit_allowed)
{
    if (strcasecmp(word, "reject") == 0)
        return ACCESS_REJECT;
    if (strcasecmp(word, "defer") == 0)
        return ACCESS_DEFER;
    return permit_allowed && strcasecmp(word, "permit") == 0 ? ACCESS_PERMIT : ACCESS_NONE;
}

/* Joins fields[2..n) with single spaces into out: the entry's reply text. False, with *err, when
 * it is too long or holds anything but printable ASCII (it goes into an SMTP reply line). */
static bool entry_text(char **f, int n, char *out, size_t outsz, const char **err)
{
    size_t len = 0;
    out[0] = '\0';
    for (int i = 2; i < n; i++) {
        int w = snprintf(out + len, outsz - len, "%s%s", i > 2 ? " " : "", f[i]);
        if (w < 0 || (size_t)w >= outsz - len) {
            *err = "reply text longer than 200 characters";
            return false;
        }
        len += (size_t)w;
    }
    for (const unsigned char *p = (const unsigned char *)out; *p; p++)
        if (*p < 0x20 || *p > 0x7e) {
            *err = "reply text must be printable ASCII (it is sent in an SMTP reply)";
            return false;
        }
    return true;
}

/* A client_access line: "network action [text]". */
static bool client_line(void *arg, char **f, int n, int lineno, const char **err)
{
    static _Thread_local char problem[160];
    struct access_tables *t = arg;
    struct access_client c = {0};
    char text[ACCESS_TEXT_MAX + 1], net[64];
    if (n < 2 || !cidr_parse(f[0], &c.net)) {
        *err = n < 2 ? "expected 'network action [text]'" : "expected a network like 192.0.2.0/24, 2001:db8::/32 "
                                                            "or one address";
        return false;
    }
    if (cidr_host_bits_set(&c.net)) {
        cidr_network_text(&c.net, net, sizeof net);
        snprintf(problem, sizeof problem, "host bits set: it would mean %s; write that, or the address alone", net);
        *err = problem;
        return false;
    }
    if ((c.verdict.action = parse_action(f[1], true)) == ACCESS_NONE) {
        *err = "the action must be reject, defer or permit";
        return false;
    }
    if (!entry_text(f, n, text, sizeof text, err))
        return false;
    for (size_t i = 0; i < t->nclients; i++)
        if (t->clients[i].net.family == c.net.family && t->clients[i].net.prefix == c.net.prefix &&
            memcmp(t->clients[i].net.addr, c.net.addr, sizeof c.net.addr) == 0) {
            snprintf(problem, sizeof problem, "network listed twice (first at line %d)", t->clients[i].verdict.line);
            *err = problem;
            return false;
        }
    if (t->nclients == ACCESS_CLIENTS_MAX) {
        *err = "more than 100000 networks";
        return false;
    }
    if (t->nclients == t->clients_cap) {
        size_t cap = t->clients_cap ? t->clients_cap * 2 : 16;
        struct access_client *grown = realloc(t->clients, cap * sizeof *grown);
        if (!grown)
            return *err = "out of memory", false;
        t->clients = grown, t->clients_cap = cap;
    }
    c.verdict.line = lineno;
    if (*text && !(c.verdict.text = strdup(text)))
        return *err = "out of memory", false;
    t->clients[t->nclients++] = c;
    return true;
}

/* The canonical key of a domain entry: "domain", or ".domain" when parent (the names below it).
 * False when name is no domain. */
static bool domain_key(const char *name, bool parent, char *key, size_t keysz)
{
    bool utf8;
    if (!*name || address_parse_domain(name, strlen(name), &utf8) != ADDR_OK || name[0] == '[')
        return false;
    key[0] = '.';
    idn_canonical(name, key + 1, keysz - 1);
    if (!parent)
        memmove(key, key + 1, strlen(key)); /* with its NUL */
    return true;
}

/* The sender_access key of an entry: "<>", "local@domain" (canonical), "domain" or ".parent"
 * (canonical; "@domain" is taken for "domain"). False when it is none of them. */
static bool sender_key(const char *entry, char *key, size_t keysz)
{
    bool parent = entry[0] == '.';
    if (strcmp(entry, "<>") == 0) {
        snprintf(key, keysz, "<>");
        return true;
    }
    if (strchr(entry + 1, '@'))
        return entry[0] != '@' && address_canonical(entry, strlen(entry), key, keysz);
    return domain_key(entry + (parent || entry[0] == '@'), parent, key, keysz);
}

/* Stores one entry of a table keyed by name (sender_access: what = "sender", written = "sender
 * address"; helo_access: "name", "EHLO name"): its action (reject or defer: no permit, anyone can
 * write any of them) and text as "A:line:text" under key. */
static bool named_entry(struct strmap *table, const char *key, char **f, int n, int lineno, const char *what,
                        const char *written, const char **err)
{
    static _Thread_local char problem[128];
    char text[ACCESS_TEXT_MAX + 1], value[ACCESS_TEXT_MAX + 32];
    const char *old;
    enum access_action action;
    if ((action = parse_action(f[1], false)) == ACCESS_NONE) {
        snprintf(problem, sizeof problem, "permit is for client_access only: anyone can write any %s; trust a "
                 "client by its network instead", written);
        *err = strcasecmp(f[1], "permit") == 0 ? problem : "the action must be reject or defer";
        return false;
    }
    if (!entry_text(f, n, text, sizeof text, err))
        return false;
    if (strmap_get(table, key, &old)) {
        snprintf(problem, sizeof problem, "%s listed twice (first at line %d)", what, (int)strtol(old + 2, NULL, 10));
        *err = problem;
        return false;
    }
    snprintf(value, sizeof value, "%c:%d:%s", action == ACCESS_REJECT ? 'r' : 'd', lineno, text);
    return strmap_put(table, key, value) || (*err = "out of memory", false);
}

/* A sender_access line: "sender action [text]". */
static bool sender_line(void *arg, char **f, int n, int lineno, const char **err)
{
    struct access_tables *t = arg;
    char key[ADDR_PATH_MAX + 2];
    if (n < 2 || !sender_key(f[0], key, sizeof key)) {
        *err = n < 2 ? "expected 'sender action [text]'"
                     : "expected an address (user@domain), a domain, .domain (its subdomains) or <> (the null sender)";
        return false;
    }
    return named_entry(&t->senders, key, f, n, lineno, "sender", "sender address", err);
}

/* A helo_access line: "name action [text]" (a host name, or .domain for the names below it). */
static bool helo_line(void *arg, char **f, int n, int lineno, const char **err)
{
    struct access_tables *t = arg;
    char key[ADDR_DOMAIN_MAX + 2];
    if (n < 2 || !domain_key(f[0] + (f[0][0] == '.'), f[0][0] == '.', key, sizeof key)) {
        *err = n < 2 ? "expected 'name action [text]'" : "expected a host name, or .domain (the names below it)";
        return false;
    }
    return named_entry(&t->helos, key, f, n, lineno, "name", "EHLO name", err);
}

void access_load(struct access_tables *t, const struct config *cfg, struct config_errors *errs)
{
    memset(t, 0, sizeof *t);
    if (*cfg->client_access)
        config_table_read(cfg, "client_access", cfg->client_access, client_line, t, errs);
    if (*cfg->sender_access)
        config_table_read(cfg, "sender_access", cfg->sender_access, sender_line, t, errs);
    if (*cfg->helo_access)
        config_table_read(cfg, "helo_access", cfg->helo_access, helo_line, t, errs);
}

void access_free(struct access_tables *t)
{
    for (size_t i = 0; i < t->nclients; i++)
        free((char *)t->clients[i].verdict.text);
    free(t->clients);
    strmap_free(&t->senders);
    strmap_free(&t->helos);
    memset(t, 0, sizeof *t);
}

struct access_verdict access_client(const struct access_tables *t, const struct sockaddr *client)
{
    const struct access_client *best = NULL;
    for (size_t i = 0; i < t->nclients; i++)
        if (cidr_match(&t->clients[i].net, client) && (!best || t->clients[i].net.prefix > best->net.prefix))
            best = &t->clients[i];
    return best ? best->verdict : (struct access_verdict){ACCESS_NONE, NULL, 0};
}

/* The verdict stored under key in a table of senders or names, when there is one. */
static bool table_get(const struct strmap *table, const char *key, struct access_verdict *v)
{
    const char *value;
    if (!strmap_get(table, key, &value))
        return false;
    const char *text = strchr(value + 2, ':') + 1;
    *v = (struct access_verdict){value[0] == 'r' ? ACCESS_REJECT : ACCESS_DEFER, *text ? text : NULL,
                                 (int)strtol(value + 2, NULL, 10)};
    return true;
}

/* The verdict for a canonical domain in a table of senders or names: the domain's own entry,
 * else its nearest listed parent (".parent"). */
static bool domain_get(const struct strmap *table, const char *domain, struct access_verdict *v)
{
    if (table_get(table, domain, v))
        return true;
    for (const char *dot = strchr(domain, '.'); dot; dot = strchr(dot + 1, '.'))
        if (table_get(table, dot, v))
            return true;
    return false;
}

struct access_verdict access_sender(const struct access_tables *t, const struct mailbox *mb, const char *delimiters)
{
    struct access_verdict v = {ACCESS_NONE, NULL, 0};
    char key[ADDR_PATH_MAX + 2];
    if (!t->senders.count)
        return v;
    if (mb->is_null)
        return table_get(&t->senders, "<>", &v), v;
    if (address_canonical(mb->addr, strlen(mb->addr), key, sizeof key)) {
        if (table_get(&t->senders, key, &v))
            return v;
        size_t cut = *delimiters ? strcspn(key, delimiters) : 0, at = (size_t)(strrchr(key, '@') - key);
        if (cut > 0 && cut < at) { /* "alice+tag@..." as "alice@..." */
            memmove(key + cut, key + at, strlen(key + at) + 1);
            if (table_get(&t->senders, key, &v))
                return v;
        }
    }
    if (!mb->literal)
        domain_get(&t->senders, mb->domain, &v);
    return v;
}

struct access_verdict access_helo(const struct access_tables *t, const char *helo)
{
    struct access_verdict v = {ACCESS_NONE, NULL, 0};
    char key[ADDR_DOMAIN_MAX + 2];
    if (t->helos.count && domain_key(helo, false, key, sizeof key)) /* no address literal */
        domain_get(&t->helos, key, &v);
    return v;
}
