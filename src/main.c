/* main.c - the command line:
 *   postern [-c FILE]                   run the server in the foreground, logging to stderr
 *   postern check-config [-c FILE]      validate the configuration and its tables; exit 0 or 1
 *   postern config-reference            print every configuration key, its default and meaning
 *   postern [-c FILE] show-config [-n]  every key's value as FILE has it (-n: only those FILE sets)
 *   postern [-c FILE] queue list [SELECTION]|summary|show ID|flush|delete|hold|release ID...|-|SELECTION
 *                                       inspect and change the outbound queue (queue_cli.c)
 *   postern [-c FILE] dkim-record       the DNS TXT records that publish the dkim_keys (dkim.h)
 *   postern [-c FILE] tlsa-record       the DANE TLSA records of the server's certificates (tlsa.h)
 *   postern [-c FILE] spf IP SENDER [HELO]  the SPF result for mail from SENDER sent from IP (spf_cli.h)
 *   postern [-c FILE] mta-sts DOMAIN    the MTA-STS policy DOMAIN publishes, fetched now (mta_sts_cli.h)
 *   postern explain CODE [CODE2]        what a reply code / enhanced status code means (explain.c)
 *   postern passwd [ADDRESS]            read a password (twice on a terminal) and print its crypt(3)
 *                                       hash, as an "ADDRESS:hash" line for the users table
 * FILE defaults to etc/postern.conf. Exit codes: 0 ok, 1 configuration or start-up error, 2 usage. */
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "auth.h"
#include "cidr.h"
#include "config.h"
#include "dns.h"
#include "explain.h"
#include "log.h"
#include "policy.h"
#include "privs.h"
#include "queue_cli.h"
#include "route_cli.h"
#include "spf_cli.h"
#include "mta_sts_cli.h"
#include "server.h"
#include "tls.h"
#include "tlsa.h"

/* The usage, to stderr with status 2 after a wrong command line, to stdout with 0 when asked for. */
static int usage(FILE *to)
{
    fprintf(to, "usage: postern [-c FILE]\n       postern check-config [-c FILE]\n"
                "       postern config-reference\n       postern [-c FILE] show-config [-n]\n"
                "       postern passwd [ADDRESS]\n"
                "       postern [-c FILE] queue list|summary|show ID|flush|delete|hold|release ID... [-c FILE]\n"
                "         (list, delete, hold, release: instead of ids, ALL or --from ADDRESS and/or\n"
                "          --to ADDRESS|@DOMAIN; delete, hold, release: - reads ids from stdin)\n"
                "       postern [-c FILE] route ADDRESS...   (what happens to mail for each address)\n"
                "       postern [-c FILE] dkim-record   (the DNS records to publish for dkim_keys)\n"
                "       postern [-c FILE] tlsa-record   (the DANE records to publish for the certificates)\n"
                "       postern [-c FILE] spf CLIENT-IP SENDER [HELO-NAME]   (the SPF result such mail gets)\n"
                "       postern [-c FILE] mta-sts DOMAIN   (the MTA-STS policy DOMAIN publishes, fetched now)\n"
                "       postern explain CODE [CODE2]\n       postern --version\n");
    return to == stdout ? 0 : 2;
}

/* Reads one line from stdin without echo when it is a terminal. */
static bool read_secret(const char *prompt, char *buf, size_t bufsz)
{
    struct termios old, quiet;
    bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
    if (tty) {
        fprintf(stderr, "%s", prompt);
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    bool ok = fgets(buf, (int)bufsz, stdin) != NULL;
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        fprintf(stderr, "\n");
    }
    buf[strcspn(buf, "\r\n")] = '\0';
    return ok && *buf;
}

/* postern passwd [ADDRESS]: prints a users-table line (or just the hash). */
static int cmd_passwd(const char *address)
{
    char pw[256], again[256];
    if (!read_secret("Password: ", pw, sizeof pw)) {
        fprintf(stderr, "postern: no password given\n");
        return 1;
    }
    if (isatty(STDIN_FILENO) && (!read_secret("Again: ", again, sizeof again) || strcmp(pw, again) != 0)) {
        fprintf(stderr, "postern: the passwords differ\n");
        return 1;
    }
    char *hash = auth_hash_password(pw);
    explicit_bzero(pw, sizeof pw);
    explicit_bzero(again, sizeof again);
    if (!hash) {
        fprintf(stderr, "postern: crypt(3) failed\n");
        return 1;
    }
    printf("%s%s%s\n", address ? address : "", address ? ":" : "", hash);
    free(hash);
    return 0;
}

/* Loads config, tables, users, both TLS contexts and checks the DNS trust anchor: every file the
 * server reads is read here, before it starts (as root, when started as root). Prints every error
 * to stderr. */
static bool load_all(const char *path, struct config *cfg, struct policy *policy, struct auth_users *users,
                     struct tls_contexts *tls)
{
    struct config_errors errs = {0};
    bool ok = config_load(path, cfg, &errs);
    if (ok) {
        ok = policy_load(policy, cfg, &errs);
        ok = auth_users_load(users, cfg, &errs) && ok;
        tls->server = tls_context_new(cfg, &errs);
        tls->client = tls_client_context_new(cfg, &errs);
        dns_check_trust_anchor(cfg, &errs);
        privs_check(cfg, &errs);
        ok = ok && errs.count == 0;
    }
    for (size_t i = 0; i < errs.count; i++)
        fprintf(stderr, "postern: %s\n", errs.msgs[i]);
    if (!ok)
        fprintf(stderr, "postern: %zu configuration error%s in %s\n", errs.count, errs.count == 1 ? "" : "s", path);
    config_errors_free(&errs);
    return ok;
}

/* Settings that work but are likely mistakes: said at start and by check-config. */
static void log_config_warnings(const struct config *cfg, const struct policy *policy, const struct tls_contexts *tls)
{
    for (size_t i = 0; i < policy->dkim.count; i++) {
        struct stat ks;
        if (stat(policy->dkim.keys[i].file, &ks) == 0 && (ks.st_mode & 004))
            log_warn("event=config_warning key=dkim_keys detail=\"%s can be read by every user: whoever reads it can "
                     "sign mail as %s; chmod 640 it, group the server's user\"", policy->dkim.keys[i].file,
                     policy->dkim.keys[i].domain);
    }
    struct stat ss;
    if (policy->srs.nsecrets && stat(cfg->srs_secret, &ss) == 0 && (ss.st_mode & 004))
        log_warn("event=config_warning key=srs_secret detail=\"%s can be read by every user: whoever reads it can "
                 "make addresses this server relays bounces to; chmod 640 it, group the server's user\"",
                 cfg->srs_secret);
    tls_certificate_warnings(tls->server, cfg->hostname);
    if (!*cfg->recipients)
        log_warn("event=config_warning key=recipients detail=\"not set: only postmaster is accepted\"");
    if (policy->tls_policy_dane && !*cfg->dns_trust_anchor)
        log_warn("event=config_warning key=smtp_tls_policy detail=\"it has dane or dane-only lines, and "
                 "dns_trust_anchor is not set: no DNS answer is validated, so dane acts as may and dane-only "
                 "destinations get no mail (deferred, then bounced); set dns_trust_anchor (for example "
                 "/usr/share/dns/root.key)\"");
    if (cfg->tls_reports && !cfg->smtp_tls)
        log_warn("event=config_warning key=tls_reports detail=\"yes, but smtp_tls = no: without outbound TLS "
                 "there is nothing to report, and no report is made; set smtp_tls = yes\"");
    if (cfg->tls_reports && !cfg->smtp_mta_sts && !cfg->smtp_dane && !policy->tls_policy_dane)
        log_warn("event=config_warning key=tls_reports detail=\"yes, but smtp_mta_sts and smtp_dane are both no: "
                 "reports cover the domains whose MTA-STS or DANE policy is applied, so none is made\"");
    if (cfg->dmarc_reports && cfg->dmarc_policy == POLICY_OFF)
        log_warn("event=config_warning key=dmarc_reports detail=\"yes, but dmarc_policy = off: reports count the "
                 "DMARC results of the mail received, and there are none; set dmarc_policy = header or reject\"");
    if (!strchr(cfg->hostname, '.'))
        log_warn("event=config_warning key=hostname detail=\"'%s' is not a fully qualified domain name: other "
                 "servers may refuse our EHLO and our bounces (RFC 5321 4.1.1.1); set hostname\"", cfg->hostname);
    if (cfg->relay_domains.count && !*cfg->relay_recipients)
        log_warn("event=config_warning key=relay_recipients detail=\"not set: every address in relay_domains is "
                 "accepted, and mail the next hop refuses becomes a bounce to a sender that may be forged; "
                 "list the valid addresses\"");
    struct stat st;
    if (*cfg->relay_host_auth && stat(cfg->relay_host_auth, &st) == 0 && (st.st_mode & 007))
        log_warn("event=config_warning key=relay_host_auth detail=\"%s can be read by every user: it holds a "
                 "password; chmod 640 it, group the server's user\"", cfg->relay_host_auth);
    if (*cfg->relay_host_auth && !cfg->smtp_tls_verify) /* with relay_host, the only peer is the relay host */
        log_warn("event=config_warning key=smtp_tls_verify detail=\"no: the relay_host_auth password goes to any "
                 "server that answers for %s with any certificate; set smtp_tls_verify = yes\"", cfg->relay_host);
    for (size_t i = 0; i < cfg->relay_networks.count; i++) {
        struct cidr net;
        char meant[64];
        if (!cidr_parse(cfg->relay_networks.items[i], &net))
            continue;
        if (net.prefix == 0)
            log_warn("event=config_warning key=relay_networks detail=\"%s takes in every address: anyone who can "
                     "connect may relay through this server (an open relay, soon on every blocklist)\"",
                     cfg->relay_networks.items[i]);
        if (!cidr_host_bits_set(&net))
            continue;
        cidr_network_text(&net, meant, sizeof meant);
        log_warn("event=config_warning key=relay_networks detail=\"%s has host bits set: it means %s, every "
                 "address of it may relay; write %s, or the address alone for one host\"",
                 cfg->relay_networks.items[i], meant, meant);
    }
}

/* postern dkim-record: what to publish in DNS for each signing key, or why there is nothing. */
static void print_dkim_records(const struct dkim_keys *keys, const char *table)
{
    if (!keys->count)
        fprintf(stderr, "postern: no DKIM keys%s%s\n", *table ? " in " : " (dkim_keys is not set)",
                *table ? table : "");
    for (size_t i = 0; i < keys->count; i++)
        dkim_print_record(stdout, &keys->keys[i]);
}

/* The words after `queue` (or `route`), with a "-c FILE" among them taken out (into *path) and the
 * rest kept in order in argv: `postern queue list -c FILE` works like `postern -c FILE queue list`. */
static int queue_args(int argc, char **argv, const char **path)
{
    int kept = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
            *path = argv[++i];
        else
            argv[kept++] = argv[i];
    }
    return kept;
}

int main(int argc, char **argv)
{
    const char *path = "etc/postern.conf";
    const char *cmd = "run";
    if (argc >= 2 && strcmp(argv[1], "passwd") == 0 && argc <= 3)
        return cmd_passwd(argc == 3 ? argv[2] : NULL);
    if (argc >= 2 && strcmp(argv[1], "explain") == 0)
        return explain_main(stdout, argc - 2, argv + 2);
    if (argc == 2 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0)) {
        printf("postern %s\n", server_version());
        return 0;
    }
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0))
        return usage(stdout);
    int queue_argc = 0;
    char **queue_argv = NULL;
    bool only_set = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
            path = argv[++i];
        else if (strcmp(argv[i], "queue") == 0 || strcmp(argv[i], "route") == 0 || strcmp(argv[i], "spf") == 0 ||
                 strcmp(argv[i], "mta-sts") == 0) {
            cmd = argv[i];
            queue_argv = argv + i + 1;
            queue_argc = queue_args(argc - i - 1, queue_argv, &path);
            break;
        }
        else if (strcmp(argv[i], "check-config") == 0 || strcmp(argv[i], "config-reference") == 0 ||
                 strcmp(argv[i], "show-config") == 0 || strcmp(argv[i], "dkim-record") == 0 ||
                 strcmp(argv[i], "tlsa-record") == 0)
            cmd = argv[i];
        else if (strcmp(argv[i], "-n") == 0 && strcmp(cmd, "show-config") == 0)
            only_set = true;
        else
            return usage(stderr);
    }
    if (strcmp(cmd, "config-reference") == 0) {
        config_print_reference(stdout);
        return 0;
    }
    struct config cfg;
    struct policy policy = {0};
    struct auth_users users = {0};
    struct tls_contexts tls = {0};
    bool ok = load_all(path, &cfg, &policy, &users, &tls);
    if (ok && (strcmp(cmd, "queue") == 0 || strcmp(cmd, "route") == 0 || strcmp(cmd, "spf") == 0 ||
               strcmp(cmd, "mta-sts") == 0)) {
        int rc = strcmp(cmd, "queue") == 0   ? queue_cli_main(cfg.spool_dir, queue_argc, queue_argv)
                 : strcmp(cmd, "route") == 0 ? route_cli_main(stdout, &cfg, &policy, queue_argc, queue_argv)
                 : strcmp(cmd, "spf") == 0   ? spf_cli_main(stdout, &cfg, queue_argc, queue_argv)
                                             : mta_sts_cli_main(stdout, &cfg, tls.client, queue_argc, queue_argv);
        policy_free(&policy);
        auth_users_free(&users);
        tls_contexts_free(&tls);
        config_free(&cfg);
        return rc;
    } else if (ok && strcmp(cmd, "dkim-record") == 0) {
        print_dkim_records(&policy.dkim, cfg.dkim_keys);
    } else if (ok && strcmp(cmd, "tlsa-record") == 0) {
        ok = tlsa_print_records(stdout, tls.server, cfg.hostname) == 0;
    } else if (ok && strcmp(cmd, "show-config") == 0) {
        config_print_effective(stdout, &cfg, only_set);
    } else if (ok && strcmp(cmd, "check-config") == 0) {
        log_config_warnings(&cfg, &policy, &tls);
        printf("%s: ok\n", path);
    } else if (ok) {
        log_set_level((enum log_level)cfg.log_level);
        log_config_warnings(&cfg, &policy, &tls);
        struct server srv;
        ok = server_start(&srv, &cfg, &policy, &users, &tls);
        if (ok)
            server_run(&srv);
        server_free(&srv);
    }
    policy_free(&policy);
    auth_users_free(&users);
    tls_contexts_free(&tls);
    config_free(&cfg);
    return ok ? 0 : 1;
}
