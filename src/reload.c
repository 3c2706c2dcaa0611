/* reload.c - see reload.h. The new tables are built beside the running ones and swapped in place
 * on the loop thread: every reader of the policy and users tables runs on that thread (AUTH copies
 * a hash out before its disk-thread check), and an SSL connection holds its own reference to the
 * context it was made from, so the old context lives until its last connection ends. The files
 * are read on a disk thread. */
#include "reload.h"

#include <openssl/ssl.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "policy.h"
#include "server.h"
#include "tls.h"
#include "workq.h"

/* The keys a reload applies; a change of any other is reported as needing a restart. */
static const char *const reloadable[] = {"recipients", "moved", "aliases", "users", "local_domains", "relay_networks",
                                         "null_mx_domains", "recipient_delimiter", "tls_cert", "tls_key",
                                         "tls_min_version", "tls_ciphers", "log_level", "relay_host_auth",
                                         "relay_domains", "relay_recipients", "transport", "dnsbl_zones",
                                         "proxy_addresses", "dkim_keys", "srs_domain", "srs_secret", "srs_max_age",
                                         "tls_sni", "spf_skip_networks", "metrics_listen",
                                         "mailbox_quota", "mailbox_quotas", "mailbox_quota_messages", "mailbox_quota_warning", "smtp_tls_policy", "header_checks",
                                         "mime_header_checks", "body_checks", "body_checks_size_limit",
                                         "greylist_delay", "greylist_retry_window", "greylist_max_age",
                                         "greylist_auto_allow", "greylisting", "greylist_max_entries", NULL};

struct reloaded {
    struct server *srv;
    char *path;            /* the configuration file */
    bool tls_was_on;       /* a server TLS context exists now */
    struct config cfg;
    struct policy policy;
    struct auth_users users;
    SSL_CTX *tls;
    struct config_errors errs;
    bool ok;
};

/* Frees the tables, context and configuration r holds (the new ones, or after a swap the old). */
static void release_tables(void *arg)
{
    struct reloaded *r = arg;
    policy_free(&r->policy);
    auth_users_free(&r->users);
    if (r->tls)
        SSL_CTX_free(r->tls);
    r->tls = NULL;
    config_free(&r->cfg);
}

static void reloaded_free(void *arg)
{
    struct reloaded *r = arg;
    release_tables(r);
    config_errors_free(&r->errs);
    free(r->path);
    free(r);
}

/* Disk thread: reads everything anew into r, touching nothing the server uses (a big table must
 * not stall the event loop). TLS switched on or off needs the listeners to change: that is an
 * error here (a restart does it). */
static void read_all(void *arg)
{
    struct reloaded *r = arg;
    struct config_errors *errs = &r->errs;
    if (!config_load(r->path, &r->cfg, errs))
        return;
    bool ok = policy_load(&r->policy, &r->cfg, errs);
    ok = auth_users_load(&r->users, &r->cfg, errs) && ok;
    if (!*r->cfg.tls_cert != !r->tls_was_on) {
        config_errors_add(errs, "%s:%d: tls_cert: switching TLS %s needs a restart", r->cfg.path,
                          config_key_line(&r->cfg, "tls_cert"), r->tls_was_on ? "off" : "on");
        return;
    }
    if (*r->cfg.tls_cert && !(r->tls = tls_context_new(&r->cfg, errs)))
        ok = false;
    r->ok = ok && errs->count == 0;
    if (r->ok)
        tls_certificate_warnings(r->tls, r->cfg.hostname); /* a renewal that did not help is said */
}

/* relay_host_auth read again: a changed password (or file) is used from the next login on - the
 * clients read it when they log in, on this thread. Not when relay_host changed too: that waits
 * for the restart, and the old relay host keeps its own credentials. */
static void apply_relay_credentials(struct config *running, struct config *fresh)
{
    if (strcmp(running->relay_host, fresh->relay_host) != 0)
        return;
    memcpy(running->relay_user, fresh->relay_user, sizeof running->relay_user);
    memcpy(running->relay_password, fresh->relay_password, sizeof running->relay_password);
}

/* Exchanges two lists of the configuration: the running one takes the new values, the reloaded
 * configuration (freed afterwards) the old ones. */
static void swap_lists(struct strlist *running, struct strlist *fresh)
{
    struct strlist old = *running;
    *running = *fresh;
    *fresh = old;
}

/* metrics_listen changed: the endpoint moves to the new addresses. When one cannot be bound (in
 * use, or a port below 1024 now that the server runs unprivileged: logged by server_bind), it
 * stays on the previous ones. */
static void reload_metrics(struct server *srv, struct strlist *fresh)
{
    if (strlists_equal(&srv->cfg->metrics_listen, fresh))
        return;
    swap_lists(&srv->cfg->metrics_listen, fresh);
    metrics_stop(srv);
    if (metrics_start(srv)) {
        log_info("event=metrics_listen_changed addresses=%zu", srv->cfg->metrics_listen.count);
        return;
    }
    metrics_stop(srv);
    swap_lists(&srv->cfg->metrics_listen, fresh);
    bool back = metrics_start(srv);
    log_error("event=metrics_listen_failed detail=\"cannot listen on the new addresses (see above): %s\"",
              back ? "the endpoint stays on the previous ones" : "the endpoint is closed");
}

/* Loop thread: swaps the new tables and context in place (the structs stay where every session's
 * srv points), or logs why nothing changed. */
static void apply(void *arg)
{
    struct reloaded *r = arg;
    struct server *srv = r->srv;
    srv->reload_running = false;
    if (srv->shutting_down) {
        reloaded_free(r);
        return;
    }
    if (!r->ok) {
        for (size_t i = 0; i < r->errs.count; i++)
            log_error("event=reload_failed error=\"%s\"", r->errs.msgs[i]);
        log_error("event=reload_failed detail=\"%zu error%s: nothing changed, the server goes on as it was\"",
                  r->errs.count, r->errs.count == 1 ? "" : "s");
        sd_notifyf(0, "READY=1\nSTATUS=reload failed (%zu errors, see the log): running the previous configuration",
                   r->errs.count);
        srv->metrics.reload_failures++;
        reloaded_free(r);
        return;
    }
    srv->metrics.reloads++;
    char restart[1024];
    config_changed_keys(srv->cfg, &r->cfg, reloadable, restart, sizeof restart);
    if (*restart)
        log_warn("event=reload_needs_restart keys=%s detail=\"changed, but they take effect at the next start\"",
                 restart);
    struct policy old_policy = *srv->policy;
    *srv->policy = r->policy;
    r->policy = old_policy;
    struct auth_users old_users = *srv->users;
    *srv->users = r->users;
    r->users = old_users;
    if (r->tls) {
        SSL_CTX *old = srv->tls_ctx;
        srv->tls_ctx = srv->tls->server = r->tls;
        r->tls = old;
    }
    log_set_level((enum log_level)r->cfg.log_level);
    apply_relay_credentials(srv->cfg, &r->cfg);
    swap_lists(&srv->cfg->dnsbl_zones, &r->cfg.dnsbl_zones); /* read on this thread only; the old ones go */
    swap_lists(&srv->cfg->proxy_addresses, &r->cfg.proxy_addresses); /* with r */
    reload_metrics(srv, &r->cfg.metrics_listen);
    greylist_reload(srv, &r->cfg);
    log_info("event=reloaded recipients=%zu moved=%zu users=%zu local_domains=%zu dkim_keys=%zu tls=%s",
             srv->policy->recipients.count, srv->policy->moved.count, srv->users->users.count,
             srv->policy->local_domains.count, srv->policy->dkim.count, srv->tls_ctx ? "reloaded" : "off");
    sd_notify(0, "READY=1\nSTATUS=configuration reloaded");
    workq_submit(srv->disk, release_tables, reloaded_free, r); /* freeing 300,000 entries takes a while */
}

/* systemd: a reload is running until the next READY=1 (MONOTONIC_USEC: for Type=notify-reload). */
static void notify_reloading(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
               (unsigned long long)now.tv_sec * 1000000ULL + (unsigned long long)now.tv_nsec / 1000);
}

void server_reload(struct server *srv)
{
    if (srv->reload_running) {
        log_info("event=reload_skipped detail=\"a reload is running already\"");
        return;
    }
    struct reloaded *r = calloc(1, sizeof *r);
    if (!r || !(r->path = strdup(srv->cfg->path))) {
        free(r);
        log_error("event=reload_failed detail=\"out of memory\"");
        return;
    }
    notify_reloading();
    r->srv = srv;
    r->tls_was_on = srv->tls_ctx != NULL;
    srv->reload_running = true;
    workq_submit(srv->disk, read_all, apply, r);
}
