/* main.c - the command line:
 *   postern [-c FILE]                   run the server in the foreground, logging to stderr
 *   postern check-config [-c FILE]      validate the configuration and its tables; exit 0 or 1
 *   postern config-reference            print every configuration key, its default and meaning
 * FILE defaults to etc/postern.conf. Exit codes: 0 ok, 1 configuration or start-up error, 2 usage. */
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "policy.h"
#include "server.h"

static int usage(void)
{
    fprintf(stderr, "usage: postern [-c FILE]\n       postern check-config [-c FILE]\n"
                    "       postern config-reference\n");
    return 2;
}

/* Loads config and tables; prints every error to stderr. */
static bool load_all(const char *path, struct config *cfg, struct policy *policy)
{
    struct config_errors errs = {0};
    bool ok = config_load(path, cfg, &errs);
    if (ok)
        ok = policy_load(policy, cfg, &errs);
    for (size_t i = 0; i < errs.count; i++)
        fprintf(stderr, "postern: %s\n", errs.msgs[i]);
    if (!ok)
        fprintf(stderr, "postern: %zu configuration error%s in %s\n", errs.count, errs.count == 1 ? "" : "s", path);
    config_errors_free(&errs);
    return ok;
}

int main(int argc, char **argv)
{
    const char *path = "etc/postern.conf";
    const char *cmd = "run";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
            path = argv[++i];
        else if (strcmp(argv[i], "check-config") == 0 || strcmp(argv[i], "config-reference") == 0)
            cmd = argv[i];
        else
            return usage();
    }
    if (strcmp(cmd, "config-reference") == 0) {
        config_print_reference(stdout);
        return 0;
    }
    struct config cfg;
    struct policy policy = {0};
    bool ok = load_all(path, &cfg, &policy);
    if (ok && strcmp(cmd, "check-config") == 0) {
        printf("%s: ok\n", path);
    } else if (ok) {
        log_set_level((enum log_level)cfg.log_level);
        if (!*cfg.recipients)
            log_warn("event=config_warning key=recipients detail=\"not set: only postmaster is accepted\"");
        struct server srv;
        ok = server_start(&srv, &cfg, &policy);
        if (ok)
            server_run(&srv);
        server_free(&srv);
    }
    policy_free(&policy);
    config_free(&cfg);
    return ok ? 0 : 1;
}
