/* smtp_greylist.c - greylisting (greylisting = yes; the table is greylist.c's) at RCPT: a client
 * of the MX role - not relay_networks, not an authenticated user, not client_access permit - gets
 * 451 4.7.1 for a (network, sender, recipient) it has not sent before, and passes when it sends
 * it again after greylist_delay. Mail to postmaster is never greylisted. The table lives in the
 * server: read from spool_dir/greylist at start, written back (by a disk thread) every
 * GREYLIST_SAVE_INTERVAL seconds when it changed, and at the stop - a restart does not greylist
 * every correspondent again. Part of the session (session_priv.h) and the server. */
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "greylist.h"
#include "log.h"
#include "server.h"
#include "session_priv.h"
#include "workq.h"

#define GREYLIST_SAVE_INTERVAL 300 /* seconds between writes of the table (and its expiry) */

/* spool_dir/greylist into path. */
static void table_path(const struct server *srv, char *path, size_t pathsz)
{
    snprintf(path, pathsz, "%s/greylist", srv->cfg->spool_dir);
}

struct table_write {
    struct server *srv;
    char path[4200];
    char *text;
    size_t len;
};

/* Disk thread: the table's text to its file. */
static void write_table(void *arg)
{
    struct table_write *w = arg;
    if (!greylist_write(w->path, w->text, w->len))
        log_warn("event=greylist_unwritable path=%s error=\"%s\"", w->path, strerror(errno));
}

static void table_written(void *arg)
{
    struct table_write *w = arg;
    w->srv->greylist_writing = false;
    free(w->text);
    free(w);
}

/* Every GREYLIST_SAVE_INTERVAL: expired entries dropped, the table written when it changed (not
 * while the last write is still on its disk thread: two would share the temporary file). */
static void save_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct server *srv = arg;
    if (srv->greylist_writing)
        return;
    greylist_expire(srv->greylist, time(NULL));
    if (!greylist_dirty(srv->greylist))
        return;
    struct table_write *w = calloc(1, sizeof *w);
    if (!w || !(w->text = greylist_save(srv->greylist, &w->len))) {
        free(w);
        return; /* out of memory: the next tick tries again */
    }
    table_path(srv, w->path, sizeof w->path);
    w->srv = srv;
    srv->greylist_writing = true;
    workq_submit(srv->disk, write_table, table_written, w);
}

/* The table's limits as cfg sets them. */
static struct greylist_limits limits_of(const struct config *cfg)
{
    return (struct greylist_limits){.delay = cfg->greylist_delay, .retry_window = cfg->greylist_retry_window,
                                    .max_age = cfg->greylist_max_age, .auto_allow = cfg->greylist_auto_allow,
                                    .max_entries = cfg->greylist_max_entries};
}

void greylist_reload(struct server *srv, const struct config *fresh)
{
    struct config *cfg = srv->cfg;
    cfg->greylist_delay = fresh->greylist_delay;
    cfg->greylist_retry_window = fresh->greylist_retry_window;
    cfg->greylist_max_age = fresh->greylist_max_age;
    cfg->greylist_auto_allow = fresh->greylist_auto_allow;
    struct greylist_limits lim = limits_of(cfg);
    if (srv->greylist)
        greylist_set_limits(srv->greylist, &lim);
}

bool greylist_start(struct server *srv)
{
    const struct config *cfg = srv->cfg;
    if (!cfg->greylisting)
        return true;
    struct greylist_limits lim = limits_of(cfg);
    if (!(srv->greylist = greylist_new(&lim)))
        return false;
    char path[4200];
    size_t dropped;
    table_path(srv, path, sizeof path);
    if (greylist_load(srv->greylist, path, time(NULL), &dropped))
        log_info("event=greylist_loaded path=%s entries=%zu dropped=%zu", path, greylist_count(srv->greylist),
                 dropped);
    else if (errno != ENOENT)
        log_warn("event=greylist_unreadable path=%s error=\"%s\" detail=\"starting with an empty table\"", path,
                 strerror(errno));
    struct timeval every = {GREYLIST_SAVE_INTERVAL, 0};
    if (!(srv->greylist_timer = event_new(srv->base, -1, EV_PERSIST, save_tick, srv)))
        return false;
    event_add(srv->greylist_timer, &every);
    return true;
}

void greylist_stop(struct server *srv)
{
    if (srv->greylist_timer)
        event_free(srv->greylist_timer);
    srv->greylist_timer = NULL;
    if (!srv->greylist)
        return;
    char path[4200];
    size_t len;
    table_path(srv, path, sizeof path);
    char *text = greylist_dirty(srv->greylist) ? greylist_save(srv->greylist, &len) : NULL;
    if (text && !greylist_write(path, text, len)) /* the disk threads are gone: written here */
        log_warn("event=greylist_unwritable path=%s error=\"%s\"", path, strerror(errno));
    free(text);
    greylist_free(srv->greylist);
    srv->greylist = NULL;
}

/* True when greylisting applies to the session's client: the MX role, and none of the clients
 * this server trusts. */
static bool greylisted_client(const struct session *s)
{
    return s->srv->greylist && s->role == ROLE_MX && !s->may_relay && !s->auth_user && !client_permitted(s);
}

bool greylist_defers(struct session *s, const char *rcpt)
{
    if (!greylisted_client(s))
        return false;
    char net[64], sender[ADDR_PATH_MAX + 1], lower[ADDR_PATH_MAX + 1];
    if (!greylist_network(s->peer_ip, net, sizeof net))
        return false;
    greylist_sender_key(s->msg->sender, sender, sizeof sender);
    ascii_lower_copy(lower, rcpt, sizeof lower);
    unsigned wait;
    enum greylist_verdict v = greylist_judge(s->srv->greylist, net, sender, lower, time(NULL), &wait);
    s->srv->metrics.greylist[v]++;
    char safe_from[300], safe_to[300];
    if (v == GREYLIST_PASSED)
        log_info("event=greylist_passed session=%s client=%s sender=<%s> rcpt=<%s>", s->id, s->peer_ip,
                 log_safe(safe_from, sizeof safe_from, s->msg->sender), log_safe(safe_to, sizeof safe_to, rcpt));
    static time_t full_said; /* loop thread only: said once a minute at most */
    if (v == GREYLIST_FULL && time(NULL) - full_said >= 60 && (full_said = time(NULL)))
        log_warn("event=greylist_full entries=%zu detail=\"let through: raise greylist_max_entries\"",
                 greylist_count(s->srv->greylist));
    if (v != GREYLIST_DEFERRED)
        return false;
    char seconds[16];
    snprintf(seconds, sizeof seconds, "%u", wait);
    log_rcpt_refused(s, rcpt, REPLY_GREYLISTED, "greylisted");
    reply(s, REPLY_GREYLISTED, seconds);
    return true;
}
