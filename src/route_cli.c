/* route_cli.c - see route_cli.h. The same decisions as a RCPT (policy_check_rcpt) and as the queue
 * (policy_transport, then relay_host, then the domain's MX), written out in words. */
#include "route_cli.h"

#include <limits.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>

#include "address.h"
#include "maildir.h"
#include "maildirsize.h"
#include "mta_sts_fetch.h"
#include "next_hop.h"
#include "reply.h"

/* "[10.0.0.5]:25 (its address records, port 25)", "example.net (its MX records, port 25)" or
 * "lmtp:unix:/run/dovecot/lmtp (LMTP over a Unix-domain socket)". */
static void describe_hop(FILE *out, const struct next_hop *hop)
{
    if (hop->unix_socket)
        fprintf(out, "%s (LMTP over a Unix-domain socket)", hop->name);
    else
        fprintf(out, "%s (%s%s, port %u)", hop->name, hop->lmtp ? "LMTP, " : "",
                hop->mx ? "MX lookup" : "its address records, no MX lookup", hop->port);
}

/* The MTA-STS policy the queue has cached for domain (its cache file), or that it has none yet. */
static void describe_mta_sts(FILE *out, const struct config *cfg, const char *domain)
{
    char path[PATH_MAX], until[64];
    struct mta_sts_policy policy;
    time_t expires;
    snprintf(path, sizeof path, "%s/mta-sts.cache", cfg->spool_dir);
    if (!mta_sts_cache_read(path, domain, &policy, &expires)) {
        fprintf(out, "    MTA-STS: no policy cached (looked up when mail goes there)\n");
        return;
    }
    struct tm tm;
    strftime(until, sizeof until, "%Y-%m-%d %H:%M UTC", gmtime_r(&expires, &tm));
    fprintf(out, "    MTA-STS: %s, cached until %s; mx:", mta_sts_mode_name(policy.mode), until);
    for (size_t i = 0; i < policy.nmx; i++)
        fprintf(out, " %s", policy.mx[i]);
    fprintf(out, "\n");
}

/* Where the queue sends mail for domain (policy_next_hop, as the queue asks it). */
static void describe_route(FILE *out, const struct config *cfg, const struct policy *p, const char *domain)
{
    struct next_hop hop;
    policy_next_hop(p, cfg, domain, &hop);
    if (hop.relay_host)
        fprintf(out, "    sent to relay_host ");
    else if (hop.configured)
        fprintf(out, "    sent to the transport entry's next hop ");
    if (hop.configured)
        describe_hop(out, &hop);
    else if (domain[0] == '[')
        fprintf(out, "    sent to the address %s itself (an address literal: no DNS, port %u)", domain, hop.port);
    else
        fprintf(out, "    sent to the mail exchangers of %s (MX lookup, port %u)", domain, hop.port);
    fprintf(out, "\n");
    static const char *const levels[] = {"", "none (never TLS)", "may (TLS when offered, unverified)",
                                         "encrypt (TLS or nothing, unverified)",
                                         "verify (TLS or nothing, a certificate valid for the host)",
                                         "dane (DANE when the host has DNSSEC-validated TLSA records, else may)",
                                         "dane-only (DANE or nothing: DNSSEC-validated TLSA records required)"};
    if (!hop.lmtp && (hop.tls = policy_tls_for(p, &hop)) != TLS_POLICY_DEFAULT)
        fprintf(out, "    TLS: %s, by smtp_tls_policy\n", levels[hop.tls]);
    if (mta_sts_applies(cfg, &hop))
        describe_mta_sts(out, cfg, hop.route);
}

/* The refusal a RCPT would get: the reply line itself (the catalog's formatter), and its meaning. */
static void describe_refusal(FILE *out, const struct rcpt_verdict *v)
{
    struct evbuffer *line = evbuffer_new();
    if (line)
        reply_format(line, false, v->reply, v->moved_to);
    size_t len = line ? evbuffer_get_length(line) : 0;
    const char *text = line ? (const char *)evbuffer_pullup(line, -1) : NULL;
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        len--;
    fprintf(out, "  refused at RCPT: %.*s (%s)\n    %s\n", (int)len, text ? text : "", v->reason,
            reply_info(v->reply)->explanation);
    if (line)
        evbuffer_free(line);
}

/* A local mailbox's quota and what it uses now (read from its maildirsize, never written). */
static void describe_quota(FILE *out, const struct config *cfg, const struct policy *p, const struct rcpt_verdict *v)
{
    struct quota_limit quota = policy_quota(p, v->local, v->domain);
    char dir[PATH_MAX], err[300];
    struct quota_usage u;
    if (!quota_set(quota) || !maildir_path(cfg->mail_dir, v->local, v->domain, dir, sizeof dir))
        return;
    if (quota.octets && quota.messages)
        fprintf(out, "  quota: %llu octets, %llu messages (full: 452 4.2.2 at RCPT)", quota.octets, quota.messages);
    else if (quota.octets)
        fprintf(out, "  quota: %llu octets (full: 452 4.2.2 at RCPT)", quota.octets);
    else
        fprintf(out, "  quota: %llu messages (full: 452 4.2.2 at RCPT)", quota.messages);
    if (maildirsize_peek(dir, quota, &u, err, sizeof err) < 0)
        fprintf(out, "; usage unknown: %s\n", err);
    else
        fprintf(out, "; used: %llu octets in %llu messages (%llu%%)\n", u.octets, u.messages,
                quota.octets ? u.octets * 100 / quota.octets : u.messages * 100 / quota.messages);
}

struct route_ctx {
    FILE *out;
    const struct config *cfg;
    const struct policy *p;
};

/* alias_target_fn: one final recipient of an alias, and where its copy goes. */
static bool describe_target(void *arg, const struct mailbox *mb, const struct rcpt_verdict *v)
{
    struct route_ctx *c = arg;
    if (v->kind == RCPT_LOCAL && !v->lmtp) {
        fprintf(c->out, "  -> %s: delivered to %s/%s/%s/new/\n", mb->addr, c->cfg->mail_dir, v->domain, v->local);
        return true;
    }
    fprintf(c->out, "  -> %s: %s\n", mb->addr, v->kind == RCPT_REFUSED ? "refused (the tables changed?)"
                                               : v->lmtp             ? "queued for the domain's LMTP server"
                                                                     : "relayed");
    if (v->kind != RCPT_REFUSED)
        describe_route(c->out, c->cfg, c->p, v->kind == RCPT_RELAY ? mb->domain : v->domain);
    return true;
}

/* One address: 0 when accepted (from some client), 1 when refused or invalid. */
static int route_one(FILE *out, const struct config *cfg, const struct policy *p, const char *text)
{
    struct mailbox mb;
    const char *addr = text;
    size_t len = strlen(addr);
    if (len >= 2 && addr[0] == '<' && addr[len - 1] == '>')
        addr++, len -= 2;
    fprintf(out, "%s\n", text);
    if (strcasecmp(text, "postmaster") == 0 || strcasecmp(text, "<postmaster>") == 0) {
        memset(&mb, 0, sizeof mb);
        mb.is_postmaster = true;
        snprintf(mb.local, sizeof mb.local, "postmaster");
    } else if (address_parse_mailbox(addr, len, &mb) != ADDR_OK) {
        struct rcpt_verdict invalid = {.kind = RCPT_REFUSED, .reply = REPLY_RCPT_INVALID, .reason = "syntax"};
        describe_refusal(out, &invalid);
        return 1;
    }
    struct mailbox bounce_to;
    enum srs_verdict srs = policy_srs_recipient(p, &mb, (long long)time(NULL), &bounce_to);
    if (srs == SRS_BAD || srs == SRS_EXPIRED) {
        struct rcpt_verdict bad = {.kind = RCPT_REFUSED, .reply = REPLY_SRS_INVALID,
                                   .reason = srs == SRS_EXPIRED ? "srs_expired" : "srs_invalid"};
        describe_refusal(out, &bad);
        return 1;
    }
    if (srs == SRS_VALID) { /* a bounce address of srs_domain: decided as its sender, from a relayer */
        fprintf(out, "  SRS return address (from any client): passed back to %s\n", bounce_to.addr);
        mb = bounce_to;
    }
    struct rcpt_verdict anyone, relayer;
    policy_check_rcpt(p, &mb, srs == SRS_VALID, &anyone);
    policy_check_rcpt(p, &mb, true, &relayer);
    if (relayer.kind == RCPT_REFUSED) {
        describe_refusal(out, &relayer);
        return 1;
    }
    if (relayer.kind == RCPT_ALIAS) {
        struct route_ctx c = {out, cfg, p};
        const char *err = NULL;
        fprintf(out, "  alias (from any client): mail goes to\n");
        if (!policy_expand_alias(p, &mb, &relayer, describe_target, &c, &err))
            fprintf(out, "  expansion failed: %s\n", err);
        return 0;
    }
    if (relayer.kind == RCPT_LOCAL && relayer.lmtp) {
        fprintf(out, "  local: queued for the domain's LMTP server (from any client)\n");
        describe_route(out, cfg, p, relayer.domain);
        return 0;
    }
    if (relayer.kind == RCPT_LOCAL) {
        fprintf(out, "  local: delivered to %s/%s/%s/new/ (from any client)\n", cfg->mail_dir, relayer.domain,
                relayer.local);
        describe_quota(out, cfg, p, &relayer);
        return 0;
    }
    if (srs == SRS_VALID)
        fprintf(out, "  relayed\n");
    else if (anyone.kind == RCPT_REFUSED)
        fprintf(out, "  relayed: only for relay_networks clients and authenticated users; others get %d %s\n",
                reply_info(anyone.reply)->code, reply_info(anyone.reply)->enhanced);
    else
        fprintf(out, "  relay domain: accepted from any client, passed on\n");
    describe_route(out, cfg, p, mb.domain);
    return 0;
}

int route_cli_main(FILE *out, const struct config *cfg, const struct policy *p, int argc, char **argv)
{
    if (argc == 0) {
        fprintf(stderr, "usage: postern [-c FILE] route ADDRESS...\n");
        return 2;
    }
    int rc = 0;
    for (int i = 0; i < argc; i++)
        rc |= route_one(out, cfg, p, argv[i]);
    return rc;
}
