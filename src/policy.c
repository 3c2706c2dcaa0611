/* policy.c - loads the recipients/moved tables and answers "what happens to this recipient".
 * Matching is case-insensitive for ASCII letters in both local part and domain; the extension
 * after recipient_delimiter is ignored when the exact address is not listed. */
#include "policy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "idn.h"

/* "local@domain" key for the tables, lower-cased. */
static void table_key(char *out, size_t outsz, const char *local, const char *domain)
{
    char buf[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2];
    snprintf(buf, sizeof buf, "%s@%s", local, domain);
    ascii_lower_copy(out, buf, outsz);
}

typedef bool (*table_line_fn)(struct policy *p, char **fields, int nfields, const char **err);

/* Parses "address" into a key; "@domain" is allowed when allow_catchall. */
static bool address_key(const char *text, bool allow_catchall, char *key, size_t keysz, const char **err)
{
    bool utf8;
    if (allow_catchall && text[0] == '@') {
        if (address_parse_domain(text + 1, strlen(text + 1), &utf8) != ADDR_OK) {
            *err = "invalid domain";
            return false;
        }
        char domain[ADDR_DOMAIN_MAX + 1];
        idn_canonical(text + 1, domain, sizeof domain);
        snprintf(key, keysz, "@%s", domain);
        return true;
    }
    if (!address_canonical(text, strlen(text), key, keysz)) {
        *err = "invalid address";
        return false;
    }
    return true;
}

/* True when map holds domain itself or a ".parent" entry for one of its parent domains; *value
 * (if not NULL) gets that entry's value. */
static bool suffix_get(const struct strmap *map, const char *domain, const char **value)
{
    bool found = strmap_get(map, domain, value);
    for (const char *dot = strchr(domain, '.'); !found && dot; dot = strchr(dot + 1, '.'))
        found = strmap_get(map, dot, value);
    return found;
}

/* One address (or "@domain") per line, whose domain must be in domains (else the error outside). */
static bool address_set_line(struct strmap *set, const struct strmap *domains, const char *outside,
                             char **f, int n, const char **err)
{
    char key[ADDR_PATH_MAX + 1];
    if (n != 1) {
        *err = "expected one address per line";
        return false;
    }
    if (!address_key(f[0], true, key, sizeof key, err))
        return false;
    if (!suffix_get(domains, strchr(key, '@') + 1, NULL)) {
        *err = outside;
        return false;
    }
    return strmap_put(set, key, NULL) || (*err = "out of memory", false);
}

static bool recipients_line(struct policy *p, char **f, int n, const char **err)
{
    return address_set_line(&p->recipients, &p->local_domains, "domain is not in local_domains", f, n, err);
}

/* relay_recipients: as recipients, for domains in relay_domains. */
static bool relay_recipients_line(struct policy *p, char **f, int n, const char **err)
{
    return address_set_line(&p->relay_recipients, &p->relay_domains, "domain is not in relay_domains", f, n, err);
}

/* A transport line: "domain next-hop" or ".parent next-hop" (every subdomain of parent). */
static bool transport_line(struct policy *p, char **f, int n, const char **err)
{
    struct next_hop hop;
    bool utf8, subdomains = f[0][0] == '.';
    const char *name = f[0] + subdomains;
    if (n != 2) {
        *err = "expected 'domain next-hop'";
        return false;
    }
    if (address_parse_domain(name, strlen(name), &utf8) != ADDR_OK) {
        *err = "invalid domain";
        return false;
    }
    if (!next_hop_parse(f[1], 25, &hop)) {
        *err = "next hop: expected [name], [address] or name, with an optional :port, or lmtp:[host]:port "
               "or lmtp:unix:/path";
        return false;
    }
    char domain[ADDR_DOMAIN_MAX + 2];
    domain[0] = '.';
    idn_canonical(name, domain + 1, sizeof domain - 1);
    if (!subdomains && strmap_get(&p->local_domains, domain + 1, NULL) && !hop.lmtp) {
        *err = "domain is in local_domains: its mail is delivered here (to Maildir, or to an lmtp: next hop), "
               "never routed";
        return false;
    }
    return strmap_put(&p->transport, domain + !subdomains, f[1]) || (*err = "out of memory", false);
}

static bool moved_line(struct policy *p, char **f, int n, const char **err)
{
    char key[ADDR_PATH_MAX + 1], newkey[ADDR_PATH_MAX + 1];
    if (n != 2) {
        *err = "expected 'old-address new-address'";
        return false;
    }
    if (!address_key(f[0], false, key, sizeof key, err) || !address_key(f[1], false, newkey, sizeof newkey, err))
        return false;
    return strmap_put(&p->moved, key, f[1]) || (*err = "out of memory", false);
}

/* Reads a table file line by line; '#' starts a comment; fields split on blanks. */
static void load_table(struct policy *p, const struct config *cfg, const char *key, const char *file,
                       table_line_fn fn, struct config_errors *errs)
{
    FILE *f = fopen(file, "r");
    if (!f) {
        config_errors_add(errs, "%s:%d: %s: cannot read table %s: %s", cfg->path, config_key_line(cfg, key), key,
                          file, strerror(errno));
        return;
    }
    char line[1024];
    int lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *fields[4];
        int n = 0;
        for (char *tok = strtok(line, " \t\r\n"); tok; tok = strtok(NULL, " \t\r\n"))
            if (n < 4)
                fields[n++] = tok;
            else
                n = 5;
        if (n == 0)
            continue;
        const char *err = NULL;
        if (n > 4 || !fn(p, fields, n, &err))
            config_errors_add(errs, "%s:%d: %s: %s: '%.80s'", file, lineno, key, err ? err : "too many fields",
                              fields[0]);
    }
    fclose(f);
}

/* Adds a configured domain to map in canonical form (idn.h), as every looked-up domain is. */
static void put_domain(struct strmap *map, const char *name)
{
    char domain[ADDR_DOMAIN_MAX + 1];
    idn_canonical(name, domain, sizeof domain);
    strmap_put(map, domain, NULL);
}

/* relay_domains (none of them local), relay_recipients and transport. */
static void load_relay_tables(struct policy *p, const struct config *cfg, struct config_errors *errs)
{
    for (size_t i = 0; i < cfg->relay_domains.count; i++) {
        const char *item = cfg->relay_domains.items[i];
        bool subdomains = item[0] == '.';
        char domain[ADDR_DOMAIN_MAX + 2] = ".";
        idn_canonical(item + subdomains, domain + 1, sizeof domain - 1);
        if (!subdomains && strmap_get(&p->local_domains, domain + 1, NULL))
            config_errors_add(errs, "%s:%d: relay_domains: %s is in local_domains too: its mail is delivered here "
                              "or passed on, not both", cfg->path, config_key_line(cfg, "relay_domains"), domain + 1);
        strmap_put(&p->relay_domains, domain + !subdomains, NULL); /* ".parent": every subdomain */
    }
    p->check_relay_recipients = cfg->relay_recipients && *cfg->relay_recipients;
    if (p->check_relay_recipients)
        load_table(p, cfg, "relay_recipients", cfg->relay_recipients, relay_recipients_line, errs);
    if (cfg->transport && *cfg->transport)
        load_table(p, cfg, "transport", cfg->transport, transport_line, errs);
}

bool policy_load(struct policy *p, const struct config *cfg, struct config_errors *errs)
{
    size_t before = errs->count;
    memset(p, 0, sizeof *p);
    for (size_t i = 0; i < cfg->local_domains.count; i++)
        put_domain(&p->local_domains, cfg->local_domains.items[i]);
    for (size_t i = 0; i < cfg->null_mx_domains.count; i++)
        put_domain(&p->null_mx_domains, cfg->null_mx_domains.items[i]);
    p->n_relay_networks = cfg->relay_networks.count;
    p->relay_networks = calloc(p->n_relay_networks + 1, sizeof *p->relay_networks);
    for (size_t i = 0; i < p->n_relay_networks; i++)
        cidr_parse(cfg->relay_networks.items[i], &p->relay_networks[i]); /* validated by config */
    p->recipient_delimiter = strdup(cfg->recipient_delimiter ? cfg->recipient_delimiter : "");
    char first[ADDR_DOMAIN_MAX + 1];
    idn_canonical(cfg->local_domains.count ? cfg->local_domains.items[0] : cfg->hostname, first, sizeof first);
    p->postmaster_domain = strdup(first);
    if (cfg->recipients && *cfg->recipients)
        load_table(p, cfg, "recipients", cfg->recipients, recipients_line, errs);
    if (cfg->moved && *cfg->moved)
        load_table(p, cfg, "moved", cfg->moved, moved_line, errs);
    load_relay_tables(p, cfg, errs);
    dkim_keys_load(&p->dkim, cfg, errs);
    return errs->count == before;
}

void policy_free(struct policy *p)
{
    strmap_free(&p->local_domains);
    strmap_free(&p->null_mx_domains);
    strmap_free(&p->recipients);
    strmap_free(&p->moved);
    strmap_free(&p->relay_domains);
    strmap_free(&p->relay_recipients);
    strmap_free(&p->transport);
    free(p->relay_networks);
    free(p->recipient_delimiter);
    free(p->postmaster_domain);
    dkim_keys_free(&p->dkim);
    memset(p, 0, sizeof *p);
}

bool policy_may_relay(const struct policy *p, const struct sockaddr *client)
{
    for (size_t i = 0; i < p->n_relay_networks; i++)
        if (cidr_match(&p->relay_networks[i], client))
            return true;
    return false;
}

/* Copies local without its extension ("alice+tag" -> "alice"); false when it had none. */
static bool strip_extension(const struct policy *p, const char *local, char *out, size_t outsz)
{
    size_t cut = *p->recipient_delimiter ? strcspn(local, p->recipient_delimiter) : strlen(local);
    if (cut == 0 || local[cut] == '\0')
        return false;
    snprintf(out, outsz, "%.*s", (int)cut, local);
    return true;
}

static void refuse(struct rcpt_verdict *v, enum reply_id reply, const char *reason)
{
    v->kind = RCPT_REFUSED;
    v->reply = reply;
    v->reason = reason;
}

/* Looks the address up in a table: exact, then without extension. *matched_local gets the local used. */
static bool lookup(const struct policy *p, const struct strmap *table, const char *local, const char *domain,
                   char *matched_local, const char **value)
{
    char key[ADDR_PATH_MAX + 1], base[ADDR_LOCAL_MAX + 1];
    table_key(key, sizeof key, local, domain);
    if (strmap_get(table, key, value)) {
        ascii_lower_copy(matched_local, local, ADDR_LOCAL_MAX + 1);
        return true;
    }
    if (!strip_extension(p, local, base, sizeof base))
        return false;
    table_key(key, sizeof key, base, domain);
    if (!strmap_get(table, key, value))
        return false;
    ascii_lower_copy(matched_local, base, ADDR_LOCAL_MAX + 1);
    return true;
}

/* A recipient in relay_domains, from any client: accepted when relay_recipients lists it (or is
 * unset); postmaster always (RFC 5321 4.5.1: the next hop must take it). */
static void relay_domain_rcpt(const struct policy *p, const struct mailbox *mb, const char *domain,
                              struct rcpt_verdict *v)
{
    char local[ADDR_LOCAL_MAX + 1], key[ADDR_DOMAIN_MAX + 2];
    snprintf(key, sizeof key, "@%s", domain);
    if (p->check_relay_recipients && !lookup(p, &p->relay_recipients, mb->local, domain, local, NULL) &&
        !strmap_get(&p->relay_recipients, key, NULL) && strcasecmp(mb->local, "postmaster") != 0) {
        refuse(v, REPLY_RCPT_UNKNOWN, "unknown_relay_recipient");
        return;
    }
    v->kind = RCPT_RELAY;
    v->reply = REPLY_RCPT_RELAY_OK;
    v->reason = "relay_domain";
    v->routed = true;
}

bool policy_transport(const struct policy *p, const char *domain, unsigned default_port, struct next_hop *hop)
{
    const char *text;
    return suffix_get(&p->transport, domain, &text) && next_hop_parse(text, default_port, hop);
}

void policy_next_hop(const struct policy *p, const struct config *cfg, const char *domain, struct next_hop *hop)
{
    if (policy_transport(p, domain, cfg->smtp_port, hop))
        return;
    if (*cfg->relay_host)
        *hop = cfg->relay_hop;
    else
        next_hop_domain(domain, cfg->smtp_port, hop);
}

void policy_check_rcpt(const struct policy *p, const struct mailbox *mb, bool may_relay, struct rcpt_verdict *v)
{
    char local[ADDR_LOCAL_MAX + 1];
    const char *domain = mb->is_postmaster ? p->postmaster_domain : mb->domain;
    memset(v, 0, sizeof *v);
    if (strmap_get(&p->null_mx_domains, domain, NULL))
        { refuse(v, REPLY_NULL_MX_DOMAIN, "null_mx_domain"); return; }
    if (lookup(p, &p->moved, mb->local, domain, local, &v->moved_to)) {
        refuse(v, REPLY_USER_MOVED, "moved");
        return;
    }
    if (suffix_get(&p->relay_domains, domain, NULL) && !strmap_get(&p->local_domains, domain, NULL)) {
        relay_domain_rcpt(p, mb, domain, v);
        return;
    }
    if (!strmap_get(&p->local_domains, domain, NULL)) {
        if (!may_relay)
            { refuse(v, REPLY_RELAY_DENIED, "relay_denied"); return; }
        v->kind = RCPT_RELAY;
        v->reply = REPLY_RCPT_RELAY_OK;
        v->reason = "relay";
        v->routed = suffix_get(&p->transport, domain, NULL); /* no next-hop parse per RCPT */
        return;
    }
    snprintf(v->domain, sizeof v->domain, "%s", domain);
    char key[ADDR_PATH_MAX + 1];
    snprintf(key, sizeof key, "@%s", domain);
    if (lookup(p, &p->recipients, mb->local, domain, local, NULL)) {
        /* local holds the listed mailbox */
    } else if (strcasecmp(mb->local, "postmaster") == 0) {
        snprintf(local, sizeof local, "postmaster"); /* RFC 5321 4.5.1: always accepted */
    } else if (strmap_get(&p->recipients, key, NULL)) {
        if (!strip_extension(p, mb->local, local, sizeof local))
            snprintf(local, sizeof local, "%s", mb->local);
    } else {
        refuse(v, REPLY_RCPT_UNKNOWN, "unknown_mailbox");
        return;
    }
    ascii_lower_copy(v->local, local, sizeof v->local);
    v->kind = RCPT_LOCAL;
    v->reply = REPLY_RCPT_OK;
    v->reason = "local";
    const char *hop;
    v->lmtp = strmap_get(&p->transport, domain, &hop) && next_hop_text_is_lmtp(hop);
}
