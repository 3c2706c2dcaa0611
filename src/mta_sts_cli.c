/* mta_sts_cli.c - see mta_sts_cli.h. One lookup on an event loop of its own; a fetch that fails
 * says why on stderr (the log's event=mta_sts_fetch_failed line). */
#include "mta_sts_cli.h"

#include <event2/event.h>
#include <string.h>

#include "address.h"
#include "dns.h"
#include "mta_sts_fetch.h"

struct sts_run {
    struct event_base *base;
    bool done, found;
    struct mta_sts_policy policy;
};

static void on_policy(void *arg, const struct mta_sts_policy *policy)
{
    struct sts_run *run = arg;
    run->done = true;
    run->found = policy != NULL;
    if (policy)
        run->policy = *policy;
    event_base_loopbreak(run->base);
}

/* Looks domain's policy up into run; false (printed) when the lookup cannot start. */
static bool look_up(FILE *out, const struct config *cfg, SSL_CTX *client_tls, const char *domain, struct sts_run *run)
{
    char err[256];
    const char *key = NULL;
    struct dns *dns = dns_new(run->base, cfg, err, sizeof err, &key);
    struct mta_sts *m = dns ? mta_sts_new(run->base, dns, client_tls, NULL) : NULL;
    struct mta_sts_query *q = m ? mta_sts_lookup(m, domain, cfg->smtp_mta_sts_timeout, on_policy, run) : NULL;
    if (q) {
        struct timeval limit = {(time_t)(2 * cfg->dns_timeout + cfg->smtp_mta_sts_timeout + 1), 0};
        event_base_loopexit(run->base, &limit);
        event_base_dispatch(run->base);
    } else {
        fprintf(out, "mta-sts: cannot start the lookup: %s%s%s\n", dns ? "out of memory" : err,
                key ? " - check " : "", key ? key : "");
    }
    mta_sts_free(m);
    if (dns)
        dns_free(dns);
    return q != NULL;
}

static void print_policy(FILE *out, const char *domain, const struct mta_sts_policy *p)
{
    fprintf(out, "%s: MTA-STS policy, mode %s, max_age %u s\n", domain, mta_sts_mode_name(p->mode), p->max_age);
    for (size_t i = 0; i < p->nmx; i++)
        fprintf(out, "  mx: %s\n", p->mx[i]);
    if (p->mode == MTA_STS_ENFORCE)
        fprintf(out, "  enforce: mail goes only to MX hosts these name, over TLS with a certificate valid for "
                     "the host's name; else it is deferred (4.7.5, 4.7.4)\n");
    else
        fprintf(out, "  testing: mail goes as without a policy; MX hosts it does not name are logged "
                     "(event=mta_sts_mx_mismatch)\n");
}

int mta_sts_cli_main(FILE *out, const struct config *cfg, SSL_CTX *client_tls, int argc, char **argv)
{
    bool utf8;
    if (argc != 1 || address_parse_domain(argv[0], strlen(argv[0]), &utf8) != ADDR_OK) {
        fprintf(out, "usage: postern [-c FILE] mta-sts DOMAIN\n");
        return 2;
    }
    if (!client_tls) {
        fprintf(out, "mta-sts: smtp_tls = no: this server has no TLS client and uses no MTA-STS policy\n");
        return 1;
    }
    if (!cfg->smtp_mta_sts)
        fprintf(out, "note: smtp_mta_sts = no: this server does not apply what follows\n");
    struct sts_run run = {.base = event_base_new()};
    bool started = run.base && look_up(out, cfg, client_tls, argv[0], &run);
    if (run.base)
        event_base_free(run.base);
    if (!started)
        return 1;
    if (run.found)
        print_policy(out, argv[0], &run.policy);
    else
        fprintf(out, "%s: no MTA-STS policy applies (no _mta-sts record, mode none, or none could be fetched: "
                     "see the lines above); mail goes as smtp_tls and smtp_tls_policy say\n", argv[0]);
    return run.found ? 0 : 1;
}
