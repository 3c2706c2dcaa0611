/* smtp_greylist.c - greylisting (greylisting = yes; the table is greylist.c's) at RCPT: a client
 * of the MX role - not relay_networks, not an authenticated user, not client_access permit - gets
 * 451 4.7.1 for a (network, sender, recipient) it has not sent before, and passes when it sends
 * it again after greylist_delay. Mail to postmaster is never greylisted. The table lives in the
 * server: read from spool_dir/greylist at start, written back (by a disk thread) every
 * GREYLIST_SAVE_INTERVAL seconds when it changed, and at the stop - a restart does not greylist
 * every correspondent again. A reload switches it on (the file read by a disk thread; greylisting
 * applies once it is in) or off (the table written by a disk thread, then dropped), and a new
 * greylist_max_entries is both. Part of the session (session_priv.h) and the server. */
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

static void start_load(struct server *srv);
static void table_written(void *arg);

/* Writes w on a disk thread - after the write under way, if any (two would share the temporary
 * file): then it waits as the queued one, replacing an older queued text. */
static void submit_write(struct server *srv, struct table_write *w)
{
    if (srv->greylist_writing) {
        if (srv->greylist_queued) {
            free(srv->greylist_queued->text);
            free(srv->greylist_queued);
        }
        srv->greylist_queued = w;
        return;
    }
    srv->greylist_writing = true;
    workq_submit(srv->disk, write_table, table_written, w);
}

/* Writes the queued text here and now (the stop: the disk threads are gone). */
static void write_queued_now(struct server *srv)
{
    struct table_write *w = srv->greylist_queued;
    srv->greylist_queued = NULL;
    if (w)
        write_table(w);
    if (w)
        free(w->text);
    free(w);
}

static void table_written(void *arg)
{
    struct table_write *w = arg;
    struct server *srv = w->srv;
    srv->greylist_writing = false;
    free(w->text);
    free(w);
    if (srv->shutting_down)
        return; /* the queued text is written by greylist_stop */
    if (srv->greylist_queued) {
        struct table_write *next = srv->greylist_queued;
        srv->greylist_queued = NULL;
        submit_write(srv, next);
    } else if (srv->greylist_load_wanted && !srv->greylist_loading) {
        start_load(srv);
    }
}

/* Every GREYLIST_SAVE_INTERVAL: expired entries dropped, the table written when it changed (not
 * while the last write is still on its disk thread: two would share the temporary file). */
static void save_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct server *srv = arg;
    if (srv->greylist_writing || !srv->greylist)
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
    submit_write(srv, w);
}

/* The table's limits as cfg sets them. */
static struct greylist_limits limits_of(const struct config *cfg)
{
    return (struct greylist_limits){.delay = cfg->greylist_delay, .retry_window = cfg->greylist_retry_window,
                                    .max_age = cfg->greylist_max_age, .auto_allow = cfg->greylist_auto_allow,
                                    .max_entries = cfg->greylist_max_entries};
}

/* A reload's read of the table, on a disk thread. */
struct table_load {
    struct server *srv;
    struct greylist_limits lim;
    char path[4200];
    struct greylist *t;
    bool read;
    int error;
    size_t dropped;
};

static void load_table(void *arg)
{
    struct table_load *l = arg;
    if (!(l->t = greylist_new(&l->lim)))
        return;
    l->read = greylist_load(l->t, l->path, time(NULL), &l->dropped);
    l->error = errno;
}

static void start_timer(struct server *srv)
{
    struct timeval every = {GREYLIST_SAVE_INTERVAL, 0};
    if (!srv->greylist_timer)
        srv->greylist_timer = event_new(srv->base, -1, EV_PERSIST, save_tick, srv);
    if (srv->greylist_timer)
        event_add(srv->greylist_timer, &every);
}

/* Loop thread: the table read is put to use - unless greylisting was switched off meanwhile, or
 * another read is wanted (the limits changed again): then it is dropped. */
static void table_loaded(void *arg)
{
    struct table_load *l = arg;
    struct server *srv = l->srv;
    srv->greylist_loading = false;
    bool wanted = l->t && srv->cfg->greylisting && !srv->greylist && !srv->greylist_load_wanted;
    if (wanted) {
        srv->greylist = l->t;
        start_timer(srv);
        if (l->read)
            log_info("event=greylist_loaded path=%s entries=%zu dropped=%zu", l->path, greylist_count(l->t),
                     l->dropped);
        else if (l->error != ENOENT)
            log_warn("event=greylist_unreadable path=%s error=\"%s\" detail=\"starting with an empty table\"",
                     l->path, strerror(l->error));
        log_info("event=greylist_on max_entries=%u", srv->cfg->greylist_max_entries);
    } else {
        greylist_free(l->t);
        if (!l->t)
            log_error("event=greylist_on error=out_of_memory detail=\"greylisting stays off\"");
    }
    free(l);
    if (srv->greylist_load_wanted && !srv->greylist_writing && !srv->shutting_down)
        start_load(srv);
}

/* Reads the table on a disk thread with the limits of now (greylisting applies once it is in). */
static void start_load(struct server *srv)
{
    srv->greylist_load_wanted = false;
    struct table_load *l = calloc(1, sizeof *l);
    if (!l) {
        log_error("event=greylist_on error=out_of_memory detail=\"greylisting stays off\"");
        return;
    }
    *l = (struct table_load){.srv = srv, .lim = limits_of(srv->cfg)};
    table_path(srv, l->path, sizeof l->path);
    srv->greylist_loading = true;
    workq_submit(srv->disk, load_table, table_loaded, l);
}

/* The table written (by a disk thread) and dropped: greylisting stops at once. */
static void switch_off(struct server *srv)
{
    if (srv->greylist_timer)
        event_del(srv->greylist_timer);
    if (!srv->greylist)
        return;
    struct table_write *w = calloc(1, sizeof *w);
    if (w && (w->text = greylist_save(srv->greylist, &w->len))) {
        table_path(srv, w->path, sizeof w->path);
        w->srv = srv;
        submit_write(srv, w);
    } else {
        free(w);
        log_error("event=greylist_unwritable error=out_of_memory detail=\"the table is dropped unwritten\"");
    }
    greylist_free(srv->greylist);
    srv->greylist = NULL;
    log_info("event=greylist_off");
}

void greylist_reload(struct server *srv, const struct config *fresh)
{
    struct config *cfg = srv->cfg;
    bool was_on = cfg->greylisting, resized = fresh->greylist_max_entries != cfg->greylist_max_entries;
    cfg->greylist_delay = fresh->greylist_delay;
    cfg->greylist_retry_window = fresh->greylist_retry_window;
    cfg->greylist_max_age = fresh->greylist_max_age;
    cfg->greylist_auto_allow = fresh->greylist_auto_allow;
    cfg->greylisting = fresh->greylisting;
    cfg->greylist_max_entries = fresh->greylist_max_entries;
    struct greylist_limits lim = limits_of(cfg);
    if (srv->greylist)
        greylist_set_limits(srv->greylist, &lim);
    if (was_on && (!cfg->greylisting || resized))
        switch_off(srv);
    if (cfg->greylisting && (!was_on || resized)) {
        if (srv->greylist_writing || srv->greylist_loading)
            srv->greylist_load_wanted = true; /* after them: the file must be the last table's */
        else
            start_load(srv);
    }
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
    start_timer(srv);
    return srv->greylist_timer != NULL;
}

void greylist_stop(struct server *srv)
{
    if (srv->greylist_timer)
        event_free(srv->greylist_timer);
    srv->greylist_timer = NULL;
    write_queued_now(srv); /* a table switched off whose write waited */
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
