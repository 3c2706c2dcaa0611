/* server.c - start-up, listeners and graceful shutdown around the libevent loop.
 * SIGTERM/SIGINT: stop accepting, let transactions finish for shutdown_grace, then 421 4.3.2 the
 * rest; messages already on a disk thread always complete. The loop ends when no session is left.
 * SIGHUP: reload of the tables and the TLS certificate (reload.c). */
#include "server.h"
#include "reload.h"
#include "quota.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <limits.h>
#include <unistd.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "cidr.h"
#include "commit.h"
#include "conn_count.h"
#include "dmarcrpt_send.h"
#include "dns.h"
#include "fileio.h"
#include "file_pool.h"
#include "journal.h"
#include "queue.h"
#include "log.h"
#include "mailbox_hold.h"
#include "privs.h"
#include "smtp_session.h"
#include "spool.h"
#include "spool_lock.h"
#include "tls.h"
#include "workq.h"

#ifndef POSTERN_VERSION
#define POSTERN_VERSION "unknown" /* built without the Makefile (fuzz targets, lint) */
#endif

const char *server_version(void)
{
    return POSTERN_VERSION;
}

double monotonic_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct listener_role {
    struct server *srv;
    enum listen_role role;
};

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
    (void)l;
    struct listener_role *lr = arg;
    session_start(lr->srv, fd, sa, salen, lr->role);
}


static void reenable_listeners(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct server *srv = arg;
    for (size_t i = 0; !srv->shutting_down && i < srv->nlisteners; i++)
        evconnlistener_enable(srv->listeners[i]);
}

/* accept(2) failed (e.g. out of file descriptors): log it and pause accepting for a second. */
static void on_accept_error(struct evconnlistener *l, void *arg)
{
    struct server *srv = ((struct listener_role *)arg)->srv;
    int err = EVUTIL_SOCKET_ERROR();
    log_error("event=accept_error error=\"%s\"", evutil_socket_error_to_string(err));
    for (size_t i = 0; i < srv->nlisteners; i++)
        evconnlistener_disable(srv->listeners[i]);
    (void)l;
    struct timeval one = {1, 0};
    event_base_once(srv->base, -1, EV_TIMEOUT, reenable_listeners, srv, &one);
}

static void stop_listening(struct server *srv)
{
    for (size_t i = 0; i < srv->nlisteners; i++)
        evconnlistener_free(srv->listeners[i]);
    srv->nlisteners = 0;
}

static void on_grace_over(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    log_info("event=shutdown_grace_over");
    session_shutdown_all(arg, true);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct server *srv = arg;
    if (srv->shutting_down)
        return;
    log_info("event=shutdown signal=%d sessions=%u", (int)sig, srv->nsessions);
    sd_notifyf(0, "STOPPING=1\nSTATUS=stopping: %u sessions finishing", srv->nsessions);
    srv->shutting_down = true;
    stop_listening(srv);
    event_del(srv->space_timer);
    if (srv->cert_timer)
        event_del(srv->cert_timer);
    session_shutdown_all(srv, false);
    struct timeval grace = {srv->cfg->shutdown_grace, 0};
    srv->grace_timer = evtimer_new(srv->base, on_grace_over, srv);
    evtimer_add(srv->grace_timer, &grace);
    server_session_gone(srv);
}

void server_session_gone(struct server *srv)
{
    if (srv->shutting_down && srv->nsessions == 0)
        event_base_loopexit(srv->base, NULL);
}

/* Disk thread: measures free space on both storage file systems. */
static void space_measure(void *arg)
{
    struct server *srv = arg;
    const char *paths[] = {srv->cfg->mail_dir, srv->cfg->spool_dir};
    unsigned long long least = ~0ull;
    for (int i = 0; i < 2; i++) {
        struct statvfs st;
        if (statvfs(paths[i], &st) == 0) {
            unsigned long long avail = (unsigned long long)st.f_bavail * st.f_frsize;
            if (avail < least)
                least = avail;
        }
    }
    srv->space_sample = least; /* read on the loop thread only after space_measured runs */
}

/* Loop thread: applies the measurement and logs each change of state. */
static void space_measured(void *arg)
{
    struct server *srv = arg;
    srv->space_check_running = false;
    srv->space_free = srv->space_sample;
    bool low = srv->space_free < srv->cfg->min_free_space;
    if (low != srv->space_low)
        log_warn("event=%s free=%llu min_free_space=%zu", low ? "disk_space_low" : "disk_space_ok", srv->space_free,
                 srv->cfg->min_free_space);
    srv->space_low = low;
}

static void space_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct server *srv = arg;
    if (srv->space_check_running || (!srv->cfg->min_free_space && !srv->space_low))
        return; /* off, unless a full disk (ENOSPC) raised the flag: then watch for room again */
    srv->space_check_running = true;
    workq_submit(srv->disk, space_measure, space_measured, srv);
}

/* tls_cert_check_interval: a server that runs for months says, each day, that its certificate
 * expires soon (a renewal that failed unnoticed), not only at start-up and reload. */
static void cert_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct server *srv = arg;
    tls_certificate_warnings(srv->tls_ctx, srv->cfg->hostname);
}

static bool make_dir(const char *key, const char *path)
{
    if (mkdir_parents(path, 0755) < 0) {
        log_error("event=startup_failed key=%s path=%s error=\"%s\"", key, path, strerror(errno));
        return false;
    }
    return true;
}

/* The address of sa (no port) as bytes: 4 or 16 of them; 0 for another family. */
static size_t ip_bytes(const struct sockaddr *sa, const void **bytes)
{
    if (sa->sa_family == AF_INET) {
        *bytes = &((const struct sockaddr_in *)sa)->sin_addr;
        return 4;
    }
    if (sa->sa_family == AF_INET6) {
        *bytes = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        return 16;
    }
    return 0;
}

static unsigned ip_port(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)sa)->sin_port);
    if (sa->sa_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    return 0;
}

/* True when the address (not the port) of a is that of b, both of one family. */
static bool same_ip(const struct sockaddr *a, const struct sockaddr *b)
{
    const void *x, *y;
    size_t n = ip_bytes(a, &x);
    return n && a->sa_family == b->sa_family && ip_bytes(b, &y) == n && memcmp(x, y, n) == 0;
}

/* True when addr's address is on one of this host's interfaces (all of 127.0.0.0/8 is). The
 * list is read at most once a minute: a big queue resolves many routes, each with its targets. */
static bool is_local_interface(struct server *srv, const struct sockaddr *addr)
{
    if (addr->sa_family == AF_INET && (ntohl(((const struct sockaddr_in *)addr)->sin_addr.s_addr) >> 24) == 127)
        return true;
    double now = monotonic_now();
    if (!srv->ifaddrs || now - srv->ifaddrs_at > 60) {
        struct ifaddrs *fresh;
        if (getifaddrs(&fresh) == 0) {
            if (srv->ifaddrs)
                freeifaddrs(srv->ifaddrs);
            srv->ifaddrs = fresh;
            srv->ifaddrs_at = now;
        }
    }
    for (const struct ifaddrs *i = srv->ifaddrs; i; i = i->ifa_next)
        if (i->ifa_addr && same_ip(i->ifa_addr, addr))
            return true;
    return false;
}

bool server_listens_at(struct server *srv, const struct sockaddr *addr)
{
    static const unsigned char any[16];
    for (size_t i = 0; i < srv->nlisteners; i++) {
        struct sockaddr_storage here = {0};
        socklen_t len = sizeof here;
        const void *ip;
        if (getsockname(evconnlistener_get_fd(srv->listeners[i]), (struct sockaddr *)&here, &len) < 0 ||
            ip_port((struct sockaddr *)&here) != ip_port(addr) || here.ss_family != addr->sa_family)
            continue;
        size_t n = ip_bytes((struct sockaddr *)&here, &ip);
        if (same_ip((struct sockaddr *)&here, addr) || (n && memcmp(ip, any, n) == 0 && is_local_interface(srv, addr)))
            return true;
    }
    return false;
}

struct evconnlistener *server_bind(struct server *srv, const char *key, const char *address, int backlog,
                                   evconnlistener_cb cb, void *arg)
{
    struct sockaddr_storage ss;
    socklen_t len;
    hostport_parse(address, &ss, &len); /* validated by config */
    unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC;
    if (ss.ss_family == AF_INET6)
        flags |= LEV_OPT_BIND_IPV6ONLY;
    struct evconnlistener *ev = evconnlistener_new_bind(srv->base, cb, arg, flags, backlog, (struct sockaddr *)&ss,
                                                        (int)len);
    if (!ev)
        log_error("event=startup_failed file=%s line=%d key=%s address=%s error=\"%s\"", srv->cfg->path,
                  config_key_line(srv->cfg, key), key, address, strerror(errno));
    else
        log_info("event=listening address=%s role=%s", address, key);
    return ev;
}

/* Binds every address of one listen key with its role. */
static bool open_role(struct server *srv, const char *key, const struct strlist *l, enum listen_role role)
{
    for (size_t i = 0; i < l->count; i++) {
        struct listener_role *lr = &srv->roles[srv->nlisteners];
        lr->srv = srv;
        lr->role = role;
        struct evconnlistener *ev = server_bind(srv, key, l->items[i], 511, on_accept, lr);
        if (!ev)
            return false;
        evconnlistener_set_error_cb(ev, on_accept_error);
        srv->listeners[srv->nlisteners++] = ev;
    }
    return true;
}

static bool open_listeners(struct server *srv)
{
    const struct config *cfg = srv->cfg;
    size_t total = cfg->listen.count + cfg->submission_listen.count + cfg->smtps_listen.count;
    srv->listeners = calloc(total, sizeof(struct evconnlistener *));
    srv->roles = calloc(total, sizeof *srv->roles);
    return srv->listeners && srv->roles && open_role(srv, "listen", &cfg->listen, ROLE_MX) &&
           open_role(srv, "submission_listen", &cfg->submission_listen, ROLE_SUBMISSION) &&
           open_role(srv, "smtps_listen", &cfg->smtps_listen, ROLE_SMTPS);
}

#define FD_RESERVE 64 /* listeners, journal, spool lock, threads' wake-ups, resolver, logs */

/* Lets each connection have its descriptor: soft RLIMIT_NOFILE up to the hard limit. Warns when
 * even that is below what the limits in the configuration can use at once: past it, connections
 * wait to be accepted and a message whose files cannot be opened gets 451. */
static void raise_fd_limit(const struct config *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            getrlimit(RLIMIT_NOFILE, &rl);
    }
    rlim_t needed = (rlim_t)cfg->max_connections + cfg->max_deliveries + cfg->file_pool_size + FD_RESERVE;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < needed)
        log_warn("event=fd_limit_low limit=%llu needed=%llu detail=\"max_connections + max_deliveries + "
                 "file_pool_size + %d: raise the open-files limit (ulimit -n, systemd LimitNOFILE=)\"",
                 (unsigned long long)rl.rlim_cur, (unsigned long long)needed, FD_RESERVE);
}

/* SIGUSR1 (`postern queue flush`): re-read the queue and retry everything now;
 * SIGUSR2 (`postern queue delete/hold/release`): re-read it only. */
static void on_queue_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct server *srv = arg;
    if (srv->queue && !srv->shutting_down)
        queue_rescan(srv->queue, sig == SIGUSR1);
}

/* SIGHUP: re-read the tables and the TLS certificate (reload.c); its default action would end
 * the server at once, cutting every session. */
static void on_hangup(evutil_socket_t sig, short what, void *arg)
{
    (void)sig, (void)what;
    struct server *srv = arg;
    if (!srv->shutting_down)
        server_reload(srv);
}

/* One server per spool (spool_lock.c): a second one must not touch the files of the first. */
static bool lock_spool(struct server *srv, const char *spool_dir)
{
    long holder;
    switch (spool_lock_take(spool_dir, &srv->spool_lock_fd, &holder)) {
    case SPOOL_LOCK_OK: return true;
    case SPOOL_LOCK_BUSY:
        if (holder)
            log_error("event=startup_failed key=spool_dir path=%s error=\"another postern (pid %ld) runs on this "
                      "spool; stop it first, or give this one a spool_dir of its own\"", spool_dir, holder);
        else
            log_error("event=startup_failed key=spool_dir path=%s error=\"another postern is starting on this "
                      "spool\"", spool_dir);
        return false;
    case SPOOL_LOCK_ERROR: break;
    }
    int err = errno;
    char path[PATH_MAX];
    spool_lock_path(spool_dir, path, sizeof path);
    log_error("event=startup_failed key=spool_dir path=%s error=\"cannot lock %s: %s\"", spool_dir, path,
              strerror(err));
    return false;
}

/* The committer's settings: the journal's message size limit, and mail_dir's file system (the one
 * the checkpoint flushes; mail for a mailbox on another one takes the direct path). */
static bool set_commit_config(struct server *srv)
{
    struct stat st;
    if (stat(srv->cfg->mail_dir, &st) < 0) {
        log_error("event=startup_failed key=mail_dir path=%s error=\"%s\"", srv->cfg->mail_dir, strerror(errno));
        return false;
    }
    srv->commit_cfg.mail_dev = st.st_dev;
    srv->commit_cfg.journal_message_max = srv->cfg->journal_message_max;
    return true;
}

/* Opens the commit journal (commit_journal = yes), putting back what a crash left unflushed. */
static bool open_journal(struct server *srv)
{
    const struct config *cfg = srv->cfg;
    if (!cfg->commit_journal)
        return true;
    char err[600];
    struct journal_recovery rec;
    srv->commit_cfg.journal = journal_open(cfg->spool_dir, cfg->mail_dir, cfg->journal_size,
                                           cfg->journal_checkpoint_interval, &rec, err, sizeof err);
    if (!srv->commit_cfg.journal) {
        log_error("event=startup_failed key=commit_journal error=\"%s\"", err);
        return false;
    }
    log_info("event=journal_recovered records=%u restored=%u cancelled=%u", rec.records, rec.restored,
             rec.cancelled);
    return true;
}

bool server_start(struct server *srv, struct config *cfg, struct policy *policy, struct auth_users *users,
                  struct tls_contexts *tls)
{
    memset(srv, 0, sizeof *srv);
    srv->spool_lock_fd = -1;
    srv->cfg = cfg;
    srv->policy = policy;
    srv->users = users;
    srv->tls = tls;
    srv->tls_ctx = tls->server;
    srv->client_tls = tls->client;
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN); /* a file size limit must fail the write (451), not kill the server */
    raise_fd_limit(cfg);
    evthread_use_pthreads();
    srv->base = event_base_new();
    srv->reply_scratch = evbuffer_new();
    srv->per_ip = conn_counts_new(60.0);      /* max_connection_rate_per_ip is per minute */
    srv->per_user = conn_counts_new(3600.0);  /* max_recipient_rate_per_user is per hour */
    if (!srv->base || !srv->reply_scratch || !srv->per_ip || !srv->per_user)
        return false;
    /* handlers first: a SIGTERM that comes as soon as the port answers must still be graceful */
    srv->sig_term = evsignal_new(srv->base, SIGTERM, on_signal, srv);
    srv->sig_int = evsignal_new(srv->base, SIGINT, on_signal, srv);
    srv->sig_hup = evsignal_new(srv->base, SIGHUP, on_hangup, srv);
    evsignal_add(srv->sig_term, NULL);
    evsignal_add(srv->sig_int, NULL);
    evsignal_add(srv->sig_hup, NULL);
    if (!make_dir("mail_dir", cfg->mail_dir) || !make_dir("spool_dir", cfg->spool_dir))
        return false;
    if (spool_prepare(cfg->spool_dir) < 0) {
        log_error("event=startup_failed key=spool_dir path=%s error=\"%s\"", cfg->spool_dir, strerror(errno));
        return false;
    }
    if (!lock_spool(srv, cfg->spool_dir))
        return false;
    spool_recover(cfg->spool_dir);
    if (!open_listeners(srv) || !metrics_start(srv) || !privs_drop(cfg))
        return false;
    srv->disk = workq_new(srv->base, cfg->io_threads, "postern-disk");
    srv->file_pool = file_pool_new(cfg->mail_dir, cfg->file_pool_size); /* NULL: files made on demand */
    if (!set_commit_config(srv) || !open_journal(srv))
        return false;
    srv->committer =
        workq_new_batched(srv->base, "postern-commit", commit_batch, &srv->commit_cfg, cfg->commit_batch_max);
    if (!srv->disk || !srv->committer)
        return false;
    if (!(srv->holds = mailbox_holds_new(srv->base, srv->disk, cfg->mail_dir, srv->commit_cfg.mail_dev,
                                         cfg->mailbox_recheck_interval,
                                         cfg->mailbox_hold_max)) ||
        !(srv->quotas = quotas_new(srv->disk, cfg->mailbox_quota_recheck)))
        return false;
    char err[300];
    const char *key;
    if (!(srv->dns = dns_new(srv->base, cfg, err, sizeof err, &key))) {
        log_error("event=startup_failed key=%s error=\"%s\"", key, err);
        return false;
    }
    if (!(srv->queue = queue_new(srv)) || !greylist_start(srv))
        return false;
    if (cfg->dmarc_reports && !(srv->dmarc_reports = dmarcrpt_sender_new(srv)))
        return false;
    srv->sig_flush = evsignal_new(srv->base, SIGUSR1, on_queue_signal, srv);
    srv->sig_rescan = evsignal_new(srv->base, SIGUSR2, on_queue_signal, srv);
    evsignal_add(srv->sig_flush, NULL);
    evsignal_add(srv->sig_rescan, NULL);
    spool_lock_publish(srv->spool_lock_fd); /* the queue signals are handled: `postern queue` may send them */
    srv->space_timer = event_new(srv->base, -1, EV_PERSIST, space_tick, srv);
    struct timeval every = {1, 0};
    event_add(srv->space_timer, &every);
    space_tick(-1, 0, srv);
    if (srv->tls_ctx && cfg->tls_cert_check_interval) {
        struct timeval check = {cfg->tls_cert_check_interval, 0};
        if ((srv->cert_timer = event_new(srv->base, -1, EV_PERSIST, cert_tick, srv)))
            event_add(srv->cert_timer, &check);
    }
    log_info("event=started version=%s hostname=%s mail_dir=%s spool_dir=%s io_threads=%u", server_version(),
             cfg->hostname, cfg->mail_dir, cfg->spool_dir, cfg->io_threads);
    /* systemd (Type=notify): started once the listeners take connections and the queue is loaded;
     * a no-op when not run by systemd (no NOTIFY_SOCKET) */
    sd_notifyf(0, "READY=1\nMAINPID=%ld\nSTATUS=accepting mail on %zu addresses", (long)getpid(), srv->nlisteners);
    return true;
}

void server_run(struct server *srv)
{
    event_base_dispatch(srv->base);
    log_info("event=stopped");
}

void server_free(struct server *srv)
{
    stop_listening(srv);
    if (srv->ifaddrs)
        freeifaddrs(srv->ifaddrs);
    srv->ifaddrs = NULL;
    queue_stop(srv->queue); /* deliveries in progress are repeated after the restart */
    if (srv->sig_flush)
        event_free(srv->sig_flush);
    if (srv->sig_rescan)
        event_free(srv->sig_rescan);
    free(srv->listeners);
    free(srv->roles);
    if (srv->disk) /* first: its done callbacks may still hand work to the committer */
        workq_free(srv->disk);
    if (srv->committer)
        workq_free(srv->committer);
    mailbox_holds_free(srv->holds); /* after both: their done callbacks note failures and probes */
    quotas_free(srv->quotas);       /* likewise: their reads report back */
    greylist_stop(srv);             /* after the disk threads: its last write is made here */
    journal_close(srv->commit_cfg.journal); /* last checkpoint: nothing to recover next time */
    file_pool_free(srv->file_pool); /* after the committer and disk threads: they take from it */
    dmarcrpt_sender_free(srv->dmarc_reports); /* its counts written for the next start */
    queue_free(srv->queue);
    if (srv->grace_timer)
        event_free(srv->grace_timer);
    if (srv->space_timer)
        event_free(srv->space_timer);
    if (srv->cert_timer)
        event_free(srv->cert_timer);
    if (srv->sig_term)
        event_free(srv->sig_term);
    if (srv->sig_int)
        event_free(srv->sig_int);
    if (srv->sig_hup)
        event_free(srv->sig_hup);
    dns_free(srv->dns);
    metrics_stop(srv);
    if (srv->reply_scratch)
        evbuffer_free(srv->reply_scratch);
    conn_counts_free(srv->per_ip);
    conn_counts_free(srv->per_user);
    if (srv->base)
        event_base_free(srv->base);
    libevent_global_shutdown();
    if (srv->spool_lock_fd >= 0)
        close(srv->spool_lock_fd); /* last: until now, nothing else may use the spool */
    memset(srv, 0, sizeof *srv);
}
