/* reload.c - see reload.h. The new tables are built beside the running ones and swapped in place
 * on the loop thread: every reader of the policy and users tables runs on that thread (AUTH copies
 * a hash out before its disk-thread check), and an SSL connection holds its own reference to the
 * context it was made from, so the old context lives until its last connection ends. */
#include "reload.h"

#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "config.h"
#include "log.h"
#include "policy.h"
#include "server.h"
#include "tls.h"

/* The keys a reload applies; a change of any other is reported as needing a restart. */
static const char *const reloadable[] = {"recipients", "moved", "users", "local_domains", "relay_networks",
                                         "null_mx_domains", "recipient_delimiter", "tls_cert", "tls_key",
                                         "tls_min_version", "tls_ciphers", NULL};

struct reloaded {
    struct config cfg;
    struct policy policy;
    struct auth_users users;
    SSL_CTX *tls;
};

static void reloaded_free(struct reloaded *r)
{
    policy_free(&r->policy);
    auth_users_free(&r->users);
    if (r->tls)
        SSL_CTX_free(r->tls);
    config_free(&r->cfg);
}

/* Reads everything anew into r; false (with errs) on any error. TLS switched on or off needs the
 * listeners to change: that is an error here (a restart does it). */
static bool read_all(const struct server *srv, struct reloaded *r, struct config_errors *errs)
{
    if (!config_load(srv->cfg->path, &r->cfg, errs))
        return false;
    bool ok = policy_load(&r->policy, &r->cfg, errs);
    ok = auth_users_load(&r->users, &r->cfg, errs) && ok;
    if (!*r->cfg.tls_cert != !srv->tls_ctx) {
        config_errors_add(errs, "%s:%d: tls_cert: switching TLS %s needs a restart", r->cfg.path,
                          config_key_line(&r->cfg, "tls_cert"), srv->tls_ctx ? "off" : "on");
        return false;
    }
    if (*r->cfg.tls_cert && !(r->tls = tls_context_new(&r->cfg, errs)))
        ok = false;
    return ok && errs->count == 0;
}

void server_reload(struct server *srv)
{
    struct reloaded r;
    memset(&r, 0, sizeof r);
    struct config_errors errs = {0};
    if (!read_all(srv, &r, &errs)) {
        for (size_t i = 0; i < errs.count; i++)
            log_error("event=reload_failed error=\"%s\"", errs.msgs[i]);
        log_error("event=reload_failed detail=\"%zu error%s: nothing changed, the server goes on as it was\"",
                  errs.count, errs.count == 1 ? "" : "s");
        config_errors_free(&errs);
        reloaded_free(&r);
        return;
    }
    config_errors_free(&errs);
    char restart[1024];
    config_changed_keys(srv->cfg, &r.cfg, reloadable, restart, sizeof restart);
    if (*restart)
        log_warn("event=reload_needs_restart keys=%s detail=\"changed, but they take effect at the next start\"",
                 restart);
    /* swap in place: the structs stay where every session's srv points */
    struct policy old_policy = *srv->policy;
    *srv->policy = r.policy;
    r.policy = old_policy;
    struct auth_users old_users = *srv->users;
    *srv->users = r.users;
    r.users = old_users;
    if (r.tls) {
        SSL_CTX *old = srv->tls_ctx;
        srv->tls_ctx = srv->tls->server = r.tls;
        r.tls = old;
    }
    log_info("event=reloaded recipients=%zu moved=%zu users=%zu local_domains=%zu tls=%s",
             srv->policy->recipients.count, srv->policy->moved.count, srv->users->users.count,
             srv->policy->local_domains.count, srv->tls_ctx ? "reloaded" : "off");
    reloaded_free(&r);
}
