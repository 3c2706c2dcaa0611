/* spf_cli.c - see spf_cli.h. check_host() runs as at MAIL (spf.c, the configured resolver, at most
 * dns_timeout): its own event loop, no server needed. */
#include "spf_cli.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <string.h>

#include "address.h"
#include "dns.h"
#include "spf.h"

struct spf_cli_run {
    struct event_base *base;
    bool done;
    enum spf_result result;
    char detail[400];
    char explanation[SPF_EXPLANATION_MAX + 1]; /* "": none */
};

static void on_result(void *arg, enum spf_result r, const char *detail, const char *explanation)
{
    struct spf_cli_run *run = arg;
    run->done = true;
    run->result = r;
    snprintf(run->detail, sizeof run->detail, "%s", detail);
    snprintf(run->explanation, sizeof run->explanation, "%s", explanation ? explanation : "");
    event_base_loopbreak(run->base);
}

/* The client address given on the command line (IPv4 or IPv6); false when it is neither. */
static bool parse_ip(const char *text, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, text, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, text, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        return true;
    }
    return false;
}

/* Runs one check on a loop of its own; false (printed) when the resolver cannot be set up. */
static bool run_check(FILE *out, const struct config *cfg, const struct sockaddr_storage *ip, const char *identity,
                      const char *helo, struct spf_cli_run *run)
{
    char err[256];
    const char *key = NULL;
    run->base = event_base_new();
    struct dns *dns = run->base ? dns_new(run->base, cfg, err, sizeof err, &key) : NULL;
    struct spf_check *check =
        dns ? spf_check_start(dns, (const struct sockaddr *)ip, identity, helo, cfg->hostname, on_result, run) : NULL;
    if (check) {
        struct timeval limit = {(time_t)cfg->dns_timeout, 0};
        event_base_loopexit(run->base, &limit);
        event_base_dispatch(run->base);
        if (!run->done && spf_check_failed_unexplained(check, run->detail, sizeof run->detail))
            run->result = SPF_FAIL; /* only its exp= was late */
        if (!run->done)
            spf_check_cancel(check);
    } else {
        fprintf(out, "spf: cannot start the check: %s%s%s\n", dns ? "out of memory" : err, key ? " - check " : "",
                key ? key : "");
    }
    if (dns)
        dns_free(dns);
    if (run->base)
        event_base_free(run->base);
    return check != NULL;
}

/* Checks identity and prints its result (and, for a fail, what spf_policy does with it); false
 * when the check could not start. */
static bool check_and_print(FILE *out, const struct config *cfg, const struct sockaddr_storage *ip, const char *ip_text,
                            const char *identity, const char *helo, bool helo_identity, struct spf_cli_run *run)
{
    *run = (struct spf_cli_run){.result = SPF_TEMPERROR};
    snprintf(run->detail, sizeof run->detail, "no answer within dns_timeout (%us)", cfg->dns_timeout);
    if (!run_check(out, cfg, ip, identity, helo, run))
        return false;
    fprintf(out, "%s from %s (identity %s): %s\n  %s\n", identity, ip_text, helo_identity ? "helo" : "mailfrom",
            spf_result_name(run->result), run->detail);
    if (*run->explanation)
        fprintf(out, "  the domain explains (exp=): %s\n", run->explanation);
    if (run->result == SPF_FAIL)
        fprintf(out, "  spf_policy = %s: %s\n", config_policy_name(cfg->spf_policy),
                cfg->spf_policy == POLICY_REJECT   ? "each RCPT but postmaster's gets 550 5.7.23"
                : cfg->spf_policy == POLICY_HEADER ? "recorded in Received-SPF, accepted"
                                                   : "not checked at all");
    return true;
}

int spf_cli_main(FILE *out, const struct config *cfg, int argc, char **argv)
{
    struct sockaddr_storage ip;
    if (argc < 2 || argc > 3 || !parse_ip(argv[0], &ip)) {
        fprintf(out, "usage: postern [-c FILE] spf CLIENT-IP SENDER [HELO-NAME]\n");
        return 2;
    }
    const char *sender = argv[1], *helo = argc == 3 ? argv[2] : "";
    bool null_sender = !*sender || strcmp(sender, "<>") == 0, utf8 = false;
    char identity[600];
    struct spf_cli_run run;
    if (null_sender && !*helo) {
        fprintf(out, "spf: the null sender is checked by its HELO name: give one\n");
        return 2;
    }
    if (*helo && helo[0] != '[' && address_parse_domain(helo, strlen(helo), &utf8) == ADDR_OK) {
        snprintf(identity, sizeof identity, "postmaster@%s", helo); /* first, as at MAIL (RFC 7208 2.3) */
        if (!check_and_print(out, cfg, &ip, argv[0], identity, helo, true, &run))
            return 1;
        if (null_sender || run.result == SPF_FAIL) {
            if (!null_sender)
                fprintf(out, "  the HELO name's fail decides: %s is not asked\n", sender);
            return run.result == SPF_PASS ? 0 : 1;
        }
    } else if (null_sender) {
        fprintf(out, "spf: %s is not a domain name\n", helo);
        return 2;
    }
    snprintf(identity, sizeof identity, "%s", sender);
    if (!strchr(identity, '@')) {
        fprintf(out, "spf: %s is not an address\n", identity);
        return 2;
    }
    if (!check_and_print(out, cfg, &ip, argv[0], identity, helo, false, &run))
        return 1;
    return run.result == SPF_PASS ? 0 : 1;
}
