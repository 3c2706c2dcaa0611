/* mailbox_hold.c - mailboxes held after a failed delivery, and the probes that release them (see
 * mailbox_hold.h). A short array: it is empty but for broken mailboxes, and a RCPT with none held
 * costs one comparison. */
#include "mailbox_hold.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "log.h"
#include "maildir.h"
#include "message.h"
#include "strmap.h"
#include "workq.h"

struct held_mailbox {
    uint64_t hash; /* of dir */
    char *dir;
    size_t room;   /* octets the probe must be able to allocate there: the failed message's size */
    bool probing;  /* a probe of it is on a disk thread */
};

struct mailbox_holds {
    struct workq *disk;
    const char *mail_dir;
    dev_t mail_dev;      /* mail_dir's file system: when it is full, the space watch acts (452) */
    struct event *timer; /* every recheck interval: probe each held mailbox */
    struct held_mailbox *held;
    unsigned count, max;
};

/* One probe on its way to a disk thread and back. */
struct probe {
    struct mailbox_holds *h;
    char dir[PATH_MAX];
    size_t room;
    bool ok;
    char error[256];
};

static struct held_mailbox *find(const struct mailbox_holds *h, const char *dir)
{
    uint64_t hash = str_hash(dir);
    for (unsigned i = 0; i < h->count; i++)
        if (h->held[i].hash == hash && strcmp(h->held[i].dir, dir) == 0)
            return &h->held[i];
    return NULL;
}

unsigned mailbox_holds_count(const struct mailbox_holds *h)
{
    return h ? h->count : 0;
}

bool mailbox_is_held(const struct mailbox_holds *h, const char *local, const char *domain)
{
    if (!h || h->count == 0)
        return false;
    char dir[PATH_MAX];
    return maildir_path(h->mail_dir, local, domain, dir, sizeof dir) && find(h, dir) != NULL;
}

bool mailbox_folder_is_held(const struct mailbox_holds *h, const char *local, const char *domain, const char *folder)
{
    if (!h || h->count == 0)
        return false;
    char dir[PATH_MAX];
    if (!maildir_path(h->mail_dir, local, domain, dir, sizeof dir))
        return false;
    size_t n = strlen(dir);
    int w = snprintf(dir + n, sizeof dir - n, "/.%s", folder);
    return w > 0 && (size_t)w < sizeof dir - n && find(h, dir) != NULL;
}

static void release(struct mailbox_holds *h, struct held_mailbox *e)
{
    free(e->dir);
    *e = h->held[--h->count];
}

/* Disk thread: can the mailbox take a message now? */
static void probe_run(void *arg)
{
    struct probe *p = arg;
    p->ok = maildir_probe(p->h->mail_dir, p->dir, p->room, p->error, sizeof p->error) == 0;
}

/* Loop thread: releases the mailbox when the probe found it working. */
static void probe_done(void *arg)
{
    struct probe *p = arg;
    struct held_mailbox *e = find(p->h, p->dir);
    char dir[512];
    log_safe(dir, sizeof dir, p->dir);
    if (e && p->ok) {
        release(p->h, e);
        log_info("event=mailbox_released dir=%s held=%u", dir, p->h->count);
    } else if (e) {
        e->probing = false;
        log_debug("event=mailbox_still_held dir=%s error=\"%s\"", dir, p->error);
    }
    free(p);
}

static void recheck_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct mailbox_holds *h = arg;
    for (unsigned i = 0; i < h->count; i++) {
        struct held_mailbox *e = &h->held[i];
        struct probe *p = e->probing ? NULL : calloc(1, sizeof *p);
        if (!p)
            continue;
        p->h = h;
        snprintf(p->dir, sizeof p->dir, "%s", e->dir);
        p->room = e->room;
        e->probing = true;
        workq_submit(h->disk, probe_run, probe_done, p);
    }
}

struct mailbox_holds *mailbox_holds_new(struct event_base *base, struct workq *disk, const char *mail_dir,
                                        dev_t mail_dev, unsigned recheck_seconds, unsigned max)
{
    struct mailbox_holds *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    *h = (struct mailbox_holds){.disk = disk, .mail_dir = mail_dir, .mail_dev = mail_dev, .max = max};
    h->held = calloc(max ? max : 1, sizeof *h->held);
    h->timer = event_new(base, -1, EV_PERSIST, recheck_tick, h);
    struct timeval every = {(time_t)recheck_seconds, 0};
    if (!h->held || !h->timer || event_add(h->timer, &every) < 0) {
        mailbox_holds_free(h);
        return NULL;
    }
    return h;
}

void mailbox_holds_free(struct mailbox_holds *h)
{
    if (!h)
        return;
    if (h->timer)
        event_free(h->timer);
    for (unsigned i = 0; h->held && i < h->count; i++)
        free(h->held[i].dir);
    free(h->held);
    free(h);
}

void mailbox_holds_note_failure(struct mailbox_holds *h, const struct message *m)
{
    const char *dir = m->stage.failed_dir;
    if (!h || !dir || find(h, dir))
        return;
    if (m->status == COMMIT_NOSPACE && m->stage.failed_dev == h->mail_dev)
        return; /* mail_dir's own disk is full: every mailbox's problem, the space watch's (452 at MAIL) */
    char safe_dir[512];
    log_safe(safe_dir, sizeof safe_dir, dir);
    char *copy = h->count < h->max ? strdup(dir) : NULL;
    if (!copy) {
        log_warn("event=mailbox_not_held dir=%s reason=%s", safe_dir, h->count < h->max ? "out_of_memory" : "mailbox_hold_max");
        return;
    }
    /* a full disk must have room for this message again, not just for the probe's block */
    size_t room = m->status == COMMIT_NOSPACE ? evbuffer_get_length(m->headers) + evbuffer_get_length(m->body) : 0;
    h->held[h->count++] = (struct held_mailbox){str_hash(dir), copy, room, false};
    log_warn("event=mailbox_held dir=%s held=%u room=%zu error=\"%s\"", safe_dir, h->count, room, m->error);
}
