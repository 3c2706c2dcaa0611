/* policy.c - loads the recipients/moved tables and answers "what happens to this recipient".
 * Matching is case-insensitive for ASCII letters in both local part and domain; the extension
 * after recipient_delimiter is ignored when the exact address is not listed. */
#include "policy.h"

#include <ctype.h>
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

typedef bool (*table_line_fn)(struct policy *p, char **fields, int nfields, int lineno, const char **err);


struct alias_def {
    char key[ADDR_PATH_MAX + 1]; /* as in p->aliases */
    int line;                    /* the first line that defines it */
};

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

static bool recipients_line(struct policy *p, char **f, int n, int lineno, const char **err)
{
    (void)lineno;
    return address_set_line(&p->recipients, &p->local_domains, "domain is not in local_domains", f, n, err);
}

/* relay_recipients: as recipients, for domains in relay_domains. */
static bool relay_recipients_line(struct policy *p, char **f, int n, int lineno, const char **err)
{
    (void)lineno;
    return address_set_line(&p->relay_recipients, &p->relay_domains, "domain is not in relay_domains", f, n, err);
}

/* A transport line: "domain next-hop" or ".parent next-hop" (every subdomain of parent). */
static bool transport_line(struct policy *p, char **f, int n, int lineno, const char **err)
{
    (void)lineno;
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

static bool moved_line(struct policy *p, char **f, int n, int lineno, const char **err)
{
    (void)lineno;
    char key[ADDR_PATH_MAX + 1], newkey[ADDR_PATH_MAX + 1];
    if (n != 2) {
        *err = "expected 'old-address new-address'";
        return false;
    }
    if (!address_key(f[0], false, key, sizeof key, err) || !address_key(f[1], false, newkey, sizeof newkey, err))
        return false;
    return strmap_put(&p->moved, key, f[1]) || (*err = "out of memory", false);
}

static const char *const tls_levels[] = {"", "none", "may", "encrypt", "verify", "dane", "dane-only"}; /* enum tls_policy */

/* An smtp_tls_policy line: "destination level", the destination a domain, ".parent" or a next hop
 * ("[host]:port", as relay_host and the transport table write one). */
static bool tls_policy_line(struct policy *p, char **f, int n, int lineno, const char **err)
{
    (void)lineno;
    bool utf8, subdomains = f[0][0] == '.';
    struct next_hop hop;
    char key[NEXT_HOP_TEXT_MAX + 2];
    if (n != 2) {
        *err = "expected 'destination level'";
        return false;
    }
    bool domain = address_parse_domain(f[0] + subdomains, strlen(f[0] + subdomains), &utf8) == ADDR_OK;
    if (!domain && (subdomains || !next_hop_parse(f[0], 25, &hop) || hop.lmtp)) {
        *err = "destination: expected a domain, .parent or a next hop such as [host]:port";
        return false;
    }
    size_t level = 1;
    while (level < sizeof tls_levels / sizeof *tls_levels && strcasecmp(f[1], tls_levels[level]) != 0)
        level++;
    if (level == sizeof tls_levels / sizeof *tls_levels) {
        *err = "level: expected none, may, encrypt, verify, dane or dane-only";
        return false;
    }
    p->tls_policy_dane |= level == TLS_POLICY_DANE || level == TLS_POLICY_DANE_ONLY;
    if (domain) {
        key[0] = '.';
        idn_canonical(f[0] + subdomains, key + 1, sizeof key - 1);
    } else {
        ascii_lower_copy(key + 1, f[0], sizeof key - 1);
    }
    return strmap_put(&p->tls_policy, key + !subdomains, tls_levels[level]) || (*err = "out of memory", false);
}

enum tls_policy policy_tls_for(const struct policy *p, const struct next_hop *hop)
{
    char key[sizeof hop->name];
    const char *level = NULL;
    if (!p->tls_policy.count)
        return TLS_POLICY_DEFAULT;
    ascii_lower_copy(key, hop->name, sizeof key);
    if (!(hop->configured ? strmap_get(&p->tls_policy, key, &level) : suffix_get(&p->tls_policy, key, &level)))
        return TLS_POLICY_DEFAULT;
    for (size_t i = 1; i < sizeof tls_levels / sizeof *tls_levels; i++)
        if (strcmp(level, tls_levels[i]) == 0)
            return (enum tls_policy)i;
    return TLS_POLICY_DEFAULT;
}

/* A mailbox_quotas line: "address size [messages]" or "@domain size [messages]", the domain a
 * local one. */
static bool quotas_line(struct policy *p, char **f, int n, int lineno, const char **err)
{
    (void)lineno;
    char key[ADDR_PATH_MAX + 1], value[48], *end;
    unsigned long long size, messages = 0;
    if (n != 2 && n != 3) {
        *err = "expected 'address size [messages]' or '@domain size [messages]'";
        return false;
    }
    if (!address_key(f[0], true, key, sizeof key, err))
        return false;
    if (!strmap_get(&p->local_domains, strchr(key, '@') + 1, NULL)) {
        *err = "domain is not in local_domains";
        return false;
    }
    if (!config_parse_size(f[1], &size) || size > (1ull << 50)) {
        *err = "size: expected octets (k, M, G suffixes allowed; 0 = no quota), at most 1024T";
        return false;
    }
    errno = 0;
    if (n == 3 && (!isdigit((unsigned char)f[2][0]) || (messages = strtoull(f[2], &end, 10), *end || errno) ||
                   messages > 1000000000ULL)) {
        *err = "messages: expected a number of messages (0 = no limit), at most 1000000000";
        return false;
    }
    snprintf(value, sizeof value, "%llu %llu", size, messages);
    p->quotas_on = p->quotas_on || size > 0 || messages > 0;
    return strmap_put(&p->quotas, key, value) || (*err = "out of memory", false);
}

/* A mailbox_quotas value ("octets messages") as a limit. */
static struct quota_limit quota_value(const char *value)
{
    char *end;
    struct quota_limit l = {strtoull(value, &end, 10), 0};
    l.messages = strtoull(end, NULL, 10);
    return l;
}

struct quota_limit policy_quota(const struct policy *p, const char *local, const char *domain)
{
    char key[ADDR_PATH_MAX + 1];
    const char *value;
    if (!p->quotas_on)
        return (struct quota_limit){0, 0};
    table_key(key, sizeof key, local, domain);
    if (strmap_get(&p->quotas, key, &value))
        return quota_value(value);
    snprintf(key, sizeof key, "@%s", domain);
    return strmap_get(&p->quotas, key, &value) ? quota_value(value) : p->quota_default;
}

/* An aliases line: "address target[, target...]" ("address:" as in aliases(5) too; targets split
 * on commas and blanks). An address may be "@domain": the local domain's addresses that are no
 * mailbox. Several lines for one address add up. The targets are checked once all are read. */
static bool aliases_line(struct policy *p, char **f, int n, int lineno, const char **err)
{
    static _Thread_local char problem[ADDR_PATH_MAX + 64];
    char key[ADDR_PATH_MAX + 1];
    size_t klen = strlen(f[0]), need = 1;
    if (klen > 1 && f[0][klen - 1] == ':')
        f[0][klen - 1] = '\0';
    if (n < 2) {
        *err = "expected 'address target[, target...]'";
        return false;
    }
    if (!address_key(f[0], true, key, sizeof key, err))
        return false;
    if (!strmap_get(&p->local_domains, strchr(key, '@') + 1, NULL)) {
        *err = "domain is not in local_domains (an alias is an address here)";
        return false;
    }
    const char *old = NULL;
    bool known = strmap_get(&p->aliases, key, &old);
    for (int i = 1; i < n; i++)
        need += strlen(f[i]) + 1;
    char *targets = malloc((old ? strlen(old) : 0) + need);
    if (!targets) {
        *err = "out of memory";
        return false;
    }
    size_t len = old ? (size_t)sprintf(targets, "%s", old) : 0;
    for (int i = 1; i < n; i++)
        for (char *save = NULL, *t = strtok_r(f[i], ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            struct mailbox mb;
            if (address_parse_mailbox(t, strlen(t), &mb) != ADDR_OK) {
                snprintf(problem, sizeof problem, "target '%.*s' is not an address (user@domain)", ADDR_PATH_MAX, t);
                free(targets);
                *err = problem;
                return false;
            }
            len += (size_t)sprintf(targets + len, "%s%s", len ? "," : "", t);
        }
    bool ok = strmap_put(&p->aliases, key, targets);
    free(targets);
    if (ok && !known && p->n_alias_defs == p->alias_defs_cap) {
        size_t cap = p->alias_defs_cap ? p->alias_defs_cap * 2 : 64;
        struct alias_def *grown = realloc(p->alias_defs, cap * sizeof *grown);
        ok = grown != NULL;
        if (ok)
            p->alias_defs = grown, p->alias_defs_cap = cap;
    }
    if (ok && !known) {
        snprintf(p->alias_defs[p->n_alias_defs].key, sizeof p->alias_defs[0].key, "%s", key);
        p->alias_defs[p->n_alias_defs++].line = lineno;
    }
    return ok || (*err = "out of memory", false);
}

/* A srs_secret line: one secret. An error shows no part of it (load_table names the line's first
 * field). */
static bool srs_line(struct policy *p, char **f, int n, int lineno, const char **err)
{
    (void)lineno;
    bool ok = n == 1 ? srs_secret_add(&p->srs, f[0], err) : (*err = "a secret is one word (no blanks)", false);
    f[0] = (char *)"(the secret is not shown)";
    return ok;
}

/* A dkim_keys line (dkim.h reads its key). */
static bool dkim_line(struct policy *p, char **f, int n, int lineno, const char **err)
{
    (void)lineno;
    return dkim_keys_add(&p->dkim, f, n, err);
}

/* alias_target_fn for the check at load: the first refused target, described, stops it. */
static bool refused_target(void *arg, const struct mailbox *mb, const struct rcpt_verdict *v)
{
    if (v->kind != RCPT_REFUSED)
        return true;
    snprintf(arg, ADDR_PATH_MAX + 128, "target %s would be refused: %d %s (%s)", mb->addr, reply_info(v->reply)->code,
             reply_info(v->reply)->enhanced, v->reason);
    return false;
}

/* Expands every alias as a RCPT would: a loop, too many recipients or a target that would be
 * refused (an unknown local mailbox, a moved user, a null-MX domain) is an error at its line. */
static void check_aliases(struct policy *p, const char *file, struct config_errors *errs)
{
    for (size_t i = 0; i < p->n_alias_defs; i++) {
        const struct alias_def *d = &p->alias_defs[i];
        struct rcpt_verdict v = {.kind = RCPT_ALIAS};
        struct mailbox self, *mb = NULL;
        char problem[ADDR_PATH_MAX + 128] = "";
        const char *err = NULL;
        strmap_get(&p->aliases, d->key, &v.alias_targets);
        if (d->key[0] != '@' && address_parse_mailbox(d->key, strlen(d->key), &self) == ADDR_OK)
            mb = &self;
        if (!policy_expand_alias(p, mb, &v, refused_target, problem, &err))
            config_errors_add(errs, "%s:%d: aliases: %s: %s", file, d->line, d->key, *problem ? problem : err);
    }
    free(p->alias_defs);
    p->alias_defs = NULL;
    p->n_alias_defs = p->alias_defs_cap = 0;
}

struct table_call {
    struct policy *p;
    table_line_fn fn;
};

static bool policy_table_line(void *arg, char **fields, int nfields, int lineno, const char **err)
{
    struct table_call *c = arg;
    return c->fn(c->p, fields, nfields, lineno, err);
}

/* Reads one of the policy's tables (config_table_read) into p, a line at a time through fn. */
static void load_table(struct policy *p, const struct config *cfg, const char *key, const char *file,
                       table_line_fn fn, struct config_errors *errs)
{
    struct table_call c = {p, fn};
    config_table_read(cfg, key, file, policy_table_line, &c, errs);
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
    if (cfg->smtp_tls_policy && *cfg->smtp_tls_policy)
        load_table(p, cfg, "smtp_tls_policy", cfg->smtp_tls_policy, tls_policy_line, errs);
}

/* srs_domain, srs_secret, srs_max_age into p->srs (off when srs_domain is empty). */
static void load_srs(struct policy *p, const struct config *cfg, struct config_errors *errs)
{
    if (!*cfg->srs_domain)
        return;
    bool utf8 = false;
    if (cfg->srs_domain[0] == '[' || address_parse_domain(cfg->srs_domain, strlen(cfg->srs_domain), &utf8) != ADDR_OK ||
        utf8) {
        config_errors_add(errs, "%s:%d: srs_domain: '%s' is not a domain name (ASCII, no address literal)", cfg->path,
                          config_key_line(cfg, "srs_domain"), cfg->srs_domain);
        return;
    }
    idn_canonical(cfg->srs_domain, p->srs.domain, sizeof p->srs.domain);
    p->srs.max_age_days = cfg->srs_max_age / 86400;
    size_t before = errs->count;
    if (*cfg->srs_secret)
        load_table(p, cfg, "srs_secret", cfg->srs_secret, srs_line, errs);
    if (!p->srs.nsecrets && errs->count == before)
        config_errors_add(errs, "%s:%d: srs_domain: needs a secret (srs_secret = FILE, one line of at least %d "
                          "characters, e.g. from openssl rand -base64 24)", cfg->path,
                          config_key_line(cfg, "srs_domain"), SRS_SECRET_MIN);
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
    p->n_spf_skip = cfg->spf_skip_networks.count;
    p->spf_skip = calloc(p->n_spf_skip + 1, sizeof *p->spf_skip);
    for (size_t i = 0; i < p->n_spf_skip; i++)
        cidr_parse(cfg->spf_skip_networks.items[i], &p->spf_skip[i]);
    p->recipient_delimiter = strdup(cfg->recipient_delimiter ? cfg->recipient_delimiter : "");
    char first[ADDR_DOMAIN_MAX + 1];
    idn_canonical(cfg->local_domains.count ? cfg->local_domains.items[0] : cfg->hostname, first, sizeof first);
    p->postmaster_domain = strdup(first);
    if (cfg->recipients && *cfg->recipients)
        load_table(p, cfg, "recipients", cfg->recipients, recipients_line, errs);
    if (cfg->moved && *cfg->moved)
        load_table(p, cfg, "moved", cfg->moved, moved_line, errs);
    load_relay_tables(p, cfg, errs);
    if (cfg->aliases && *cfg->aliases) {
        load_table(p, cfg, "aliases", cfg->aliases, aliases_line, errs);
        check_aliases(p, cfg->aliases, errs);
    }
    if (cfg->dkim_keys && *cfg->dkim_keys) {
        load_table(p, cfg, "dkim_keys", cfg->dkim_keys, dkim_line, errs);
        dkim_keys_finish(&p->dkim, cfg->dkim_keys, errs);
    }
    load_srs(p, cfg, errs);
    access_load(&p->access, cfg, errs);
    p->quota_default = (struct quota_limit){cfg->mailbox_quota, cfg->mailbox_quota_messages};
    p->quota_warning = cfg->mailbox_quota_warning;
    p->quotas_on = cfg->mailbox_quota > 0 || cfg->mailbox_quota_messages > 0;
    if (cfg->mailbox_quotas && *cfg->mailbox_quotas)
        load_table(p, cfg, "mailbox_quotas", cfg->mailbox_quotas, quotas_line, errs);
    if (cfg->header_checks && *cfg->header_checks)
        config_lines_read(cfg, "header_checks", cfg->header_checks, content_rules_line, &p->header_checks, errs);
    if (cfg->mime_header_checks && *cfg->mime_header_checks)
        config_lines_read(cfg, "mime_header_checks", cfg->mime_header_checks, content_rules_line,
                          &p->mime_header_checks, errs);
    if (cfg->body_checks && *cfg->body_checks)
        config_lines_read(cfg, "body_checks", cfg->body_checks, content_rules_line, &p->body_checks, errs);
    return errs->count == before;
}

void policy_free(struct policy *p)
{
    strmap_free(&p->local_domains);
    strmap_free(&p->null_mx_domains);
    strmap_free(&p->recipients);
    strmap_free(&p->moved);
    strmap_free(&p->quotas);
    strmap_free(&p->tls_policy);
    content_rules_free(&p->header_checks);
    content_rules_free(&p->mime_header_checks);
    content_rules_free(&p->body_checks);
    strmap_free(&p->aliases);
    free(p->alias_defs);
    strmap_free(&p->relay_domains);
    strmap_free(&p->relay_recipients);
    strmap_free(&p->transport);
    free(p->relay_networks);
    free(p->spf_skip);
    free(p->recipient_delimiter);
    free(p->postmaster_domain);
    dkim_keys_free(&p->dkim);
    srs_free(&p->srs);
    access_free(&p->access);
    memset(p, 0, sizeof *p);
}

enum srs_verdict policy_srs_recipient(const struct policy *p, const struct mailbox *mb, long long now,
                                      struct mailbox *out)
{
    if (!*p->srs.domain || mb->is_postmaster || strcasecmp(mb->domain, p->srs.domain) != 0)
        return SRS_NOT_SRS;
    char addr[ADDR_PATH_MAX + 1];
    enum srs_verdict v = srs_reverse(&p->srs, mb->local, now, addr, sizeof addr);
    if (v == SRS_VALID && address_parse_mailbox(addr, strlen(addr), out) != ADDR_OK)
        v = SRS_BAD;
    return v;
}

bool policy_spf_skipped(const struct policy *p, const struct sockaddr *client)
{
    for (size_t i = 0; i < p->n_spf_skip; i++)
        if (cidr_match(&p->spf_skip[i], client))
            return true;
    return false;
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

/* An alias verdict with its targets. */
static void alias(struct rcpt_verdict *v, const char *targets)
{
    v->kind = RCPT_ALIAS;
    v->reply = REPLY_RCPT_OK;
    v->reason = "alias";
    v->alias_targets = targets;
}

/* policy_check_rcpt, with the aliases looked at or (a target naming its own alias) not. */
static void check_rcpt(const struct policy *p, const struct mailbox *mb, bool may_relay, struct rcpt_verdict *v,
                       bool aliases)
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
    const char *targets;
    aliases = aliases && p->aliases.count; /* no table: no lookups on every RCPT */
    if (aliases && lookup(p, &p->aliases, mb->local, domain, local, &targets)) {
        alias(v, targets);
        return;
    }
    if (lookup(p, &p->recipients, mb->local, domain, local, NULL)) {
        /* local holds the listed mailbox */
    } else if (strcasecmp(mb->local, "postmaster") == 0) {
        snprintf(local, sizeof local, "postmaster"); /* RFC 5321 4.5.1: always accepted */
    } else if (aliases && strmap_get(&p->aliases, key, &targets)) {
        alias(v, targets);
        return;
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

void policy_check_rcpt(const struct policy *p, const struct mailbox *mb, bool may_relay, struct rcpt_verdict *v)
{
    check_rcpt(p, mb, may_relay, v, true);
}

void policy_rcpt_fill(struct msg_rcpt *r, const char *addr, const struct rcpt_verdict *v)
{
    r->remote = rcpt_queued(v);
    snprintf(r->addr, sizeof r->addr, "%s", addr);
    snprintf(r->local, sizeof r->local, "%s", v->local);
    snprintf(r->domain, sizeof r->domain, "%s", v->domain);
}

#define STR_(x) #x
#define STR(x) STR_(x)

struct expansion {
    const struct policy *p;
    alias_target_fn fn;
    void *arg;
    size_t count; /* final recipients so far */
};

/* Expands targets, the alias of self (NULL: an "@domain" alias), depth levels down. */
static bool expand(struct expansion *x, const struct mailbox *self, const char *targets, unsigned depth,
                   const char **err)
{
    char self_key[ADDR_PATH_MAX + 1] = "", key[ADDR_PATH_MAX + 1];
    if (self && !address_canonical(self->addr, strlen(self->addr), self_key, sizeof self_key))
        self_key[0] = '\0';
    for (const char *t = targets; *t;) {
        size_t n = strcspn(t, ",");
        struct mailbox mb;
        struct rcpt_verdict v;
        if (address_parse_mailbox(t, n, &mb) != ADDR_OK) {
            *err = "a target is not an address"; /* checked at load: never */
            return false;
        }
        bool is_self = *self_key && address_canonical(t, n, key, sizeof key) && strcmp(key, self_key) == 0;
        check_rcpt(x->p, &mb, true, &v, !is_self);
        if (v.kind == RCPT_ALIAS && depth + 1 >= ALIAS_DEPTH_MAX) {
            *err = "aliases within aliases more than " STR(ALIAS_DEPTH_MAX) " deep (a loop?)";
            return false;
        }
        if (v.kind == RCPT_ALIAS && !expand(x, &mb, v.alias_targets, depth + 1, err))
            return false;
        if (v.kind != RCPT_ALIAS && ++x->count > ALIAS_TARGETS_MAX) {
            *err = "expands to more than " STR(ALIAS_TARGETS_MAX) " recipients";
            return false;
        }
        if (v.kind != RCPT_ALIAS && !x->fn(x->arg, &mb, &v)) {
            *err = "a target was refused";
            return false;
        }
        t += n + (t[n] == ',');
    }
    return true;
}

bool policy_expand_alias(const struct policy *p, const struct mailbox *mb, const struct rcpt_verdict *alias,
                         alias_target_fn fn, void *arg, const char **err)
{
    struct expansion x = {.p = p, .fn = fn, .arg = arg};
    return expand(&x, mb, alias->alias_targets, 0, err);
}
