/* quota_notice.c - see quota_notice.h. */
#include "quota_notice.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "message.h"
#include "policy.h"
#include "queue.h"
#include "reply.h"
#include "server.h"

/* Octets as a reader says them: "812 KiB", "9.5 MiB", "1.0 GiB". */
static void human_size(unsigned long long n, char *out, size_t outsz)
{
    if (n < 1024ULL * 1024)
        snprintf(out, outsz, "%llu KiB", (n + 1023) / 1024);
    else if (n < 1024ULL * 1024 * 1024)
        snprintf(out, outsz, "%.1f MiB", (double)n / (1024.0 * 1024));
    else
        snprintf(out, outsz, "%.1f GiB", (double)n / (1024.0 * 1024 * 1024));
}

/* The notice's header section and text, into m->body (LF line endings, as received mail). */
static void write_notice(struct message *m, const struct server *srv, const char *to, const struct quota_usage *u,
                         struct quota_limit quota)
{
    char date[64], used[32], limit[32];
    message_date((long long)time(NULL), date, sizeof date);
    human_size(u->octets, used, sizeof used);
    human_size(quota.octets, limit, sizeof limit);
    unsigned long long by_octets = quota.octets ? u->octets * 100 / quota.octets : 0;
    unsigned long long by_count = quota.messages ? u->messages * 100 / quota.messages : 0;
    unsigned long long percent = by_octets > by_count ? by_octets : by_count;
    const char *postmaster = srv->policy->postmaster_domain;
    evbuffer_add_printf(m->body,
                        "From: Mail System <postmaster@%s>\nTo: <%s>\nDate: %s\nMessage-ID: <%s.quota@%s>\n"
                        "Subject: Your mailbox is %llu%% full\nAuto-Submitted: auto-generated\nMIME-Version: 1.0\n"
                        "Content-Type: text/plain; charset=utf-8\n\n",
                        postmaster, to, date, m->qid, srv->cfg->hostname, percent);
    const struct reply_info *full = reply_info(REPLY_MAILBOX_FULL); /* what senders will be told */
    if (quota.octets)
        evbuffer_add_printf(m->body, "Your mailbox %s now holds %s of the %s it may hold (%llu%%)", to, used, limit,
                            by_octets);
    else
        evbuffer_add_printf(m->body, "Your mailbox %s now holds %s", to, used);
    if (quota.messages)
        evbuffer_add_printf(m->body, ", in %llu of the %llu messages it may hold (%llu%%).\n\n", u->messages,
                            quota.messages, by_count);
    else
        evbuffer_add_printf(m->body, ", in %llu messages.\n\n", u->messages);
    evbuffer_add_printf(m->body,
                        "Once it is full, new mail for you is not taken in: the servers sending it are told\n"
                        "\"%d %s %s\" and keep trying for a few days, then return the mail to\n"
                        "its senders as undeliverable.\n\n"
                        "To make room, delete mail you no longer need - large attachments first - in every\n"
                        "folder, and empty the Trash (deleted mail still counts until it is emptied). If you\n"
                        "need more room, write to postmaster@%s.\n",
                        full->code, full->enhanced, full->text, postmaster);
}

/* queue_submit_local's callback. */
static void notice_stored(void *arg, bool ok)
{
    (void)arg;
    if (!ok)
        log_warn("event=quota_notice_failed detail=\"the mailbox-nearly-full notice could not be stored\"");
}

void quota_notice_send(struct server *srv, const struct msg_rcpt *r, const struct quota_usage *u)
{
    struct message *m = message_new();
    struct msg_rcpt to = *r;
    to.orcpt = NULL;
    to.notify = NOTIFY_NEVER;
    int n = snprintf(to.addr, sizeof to.addr, "%s@%s", r->local, r->domain);
    if (!m || n < 0 || (size_t)n >= sizeof to.addr || !message_add_rcpt(m, &to)) {
        message_free(m);
        log_warn("event=quota_notice_failed detail=\"out of memory, or no address for the mailbox\"");
        return;
    }
    char date[64], safe[300];
    message_date((long long)time(NULL), date, sizeof date);
    evbuffer_add_printf(m->headers, "Return-Path: <>\nReceived: by %s (Postern) id %s; %s\n", srv->cfg->hostname,
                        m->qid, date);
    write_notice(m, srv, to.addr, u, r->quota);
    log_info("event=quota_notice qid=%s mailbox=<%s> used=%llu quota=%llu messages=%llu quota_messages=%llu", m->qid,
             log_safe(safe, sizeof safe, to.addr), u->octets, r->quota.octets, u->messages, r->quota.messages);
    queue_submit_local(srv, m, notice_stored, NULL);
}
