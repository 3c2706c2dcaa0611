/* message.c - message lifetime and queue ids. A queue id is the time in microseconds and a
 * per-process counter, in upper-case hex: unique within a host, sortable by arrival. */
#include "message.h"

#include <event2/buffer.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static atomic_uint qid_counter;

pid_t message_process_id(void)
{
    static _Atomic pid_t pid; /* getpid() is a system call; the server never forks once started */
    pid_t p = pid;
    if (p == 0)
        pid = p = getpid();
    return p;
}

struct message *message_new(void)
{
    struct message *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->stage.tmp_fd = -1;
    m->headers = evbuffer_new();
    m->body = evbuffer_new();
    if (!m->headers || !m->body) {
        message_free(m);
        return NULL;
    }
    struct timeval tv;
    gettimeofday(&tv, NULL);
    unsigned n = atomic_fetch_add(&qid_counter, 1);
    snprintf(m->qid, sizeof m->qid, "%09llX%05lX%04X", (unsigned long long)tv.tv_sec, (long)tv.tv_usec,
             (n ^ (unsigned)message_process_id() << 4) & 0xffff);
    return m;
}

void message_free(struct message *m)
{
    if (!m)
        return;
    if (m->headers)
        evbuffer_free(m->headers);
    if (m->body)
        evbuffer_free(m->body);
    for (size_t i = 0; i < m->nrcpts; i++)
        free(m->rcpts[i].orcpt);
    free(m->rcpts);
    for (size_t i = 0; i < m->nexpanded; i++)
        free(m->expanded[i].orcpt);
    free(m->expanded);
    free(m->received_spf);
    free(m->spf_refusal);
    free(m->spf_explanation);
    free(m->spf_method);
    free(m->auth_results);
    free(m->stage.tmp_path);
    if (m->stage.tmp_fd >= 0)
        close(m->stage.tmp_fd);
    for (size_t i = 0; i < m->stage.ndirs; i++)
        free(m->stage.dirs[i]);
    free(m->stage.dirs);
    free(m->stage.failed_dir);
    free(m);
}

bool message_add_rcpt(struct message *m, const struct msg_rcpt *r)
{
    if (m->nrcpts == m->rcpt_cap) {
        size_t cap = m->rcpt_cap ? m->rcpt_cap * 2 : 4;
        struct msg_rcpt *n = realloc(m->rcpts, cap * sizeof *n);
        if (!n)
            return false;
        m->rcpts = n;
        m->rcpt_cap = cap;
    }
    m->rcpts[m->nrcpts++] = *r;
    if (!r->remote)
        m->nlocal++;
    return true;
}

bool msg_rcpt_same(const struct msg_rcpt *a, const struct msg_rcpt *b)
{
    if (a->remote != b->remote)
        return false;
    if (!a->remote)
        return strcmp(a->local, b->local) == 0 && strcmp(a->domain, b->domain) == 0;
    const char *at = strrchr(a->addr, '@'), *bt = strrchr(b->addr, '@');
    return at && bt && at - a->addr == bt - b->addr && memcmp(a->addr, b->addr, (size_t)(at - a->addr)) == 0 &&
           strcasecmp(at, bt) == 0;
}

bool message_has_rcpt(const struct message *m, const struct msg_rcpt *r)
{
    for (size_t i = 0; i < m->nrcpts; i++)
        if (msg_rcpt_same(&m->rcpts[i], r))
            return true;
    return false;
}

/* True when the header line h (n octets) is the field `name` (case-insensitive; RFC 5322 4.5.3
 * obsolete syntax allows blanks before the colon). */
static bool field_is(const char *h, size_t n, const char *name)
{
    size_t len = strlen(name);
    if (n <= len || strncasecmp(h, name, len) != 0)
        return false;
    while (len < n && (h[len] == ' ' || h[len] == '\t'))
        len++;
    return len < n && h[len] == ':';
}

/* The value of the field starting at h[i] (header section of hlen octets): after the colon, blanks
 * trimmed, continuation lines joined by one space; cut to fit out. */
static void field_value(const char *h, size_t i, size_t hlen, char *out, size_t outsz)
{
    size_t o = 0;
    const char *colon = memchr(h + i, ':', hlen - i);
    for (size_t p = colon ? (size_t)(colon - h) + 1 : hlen; p < hlen && o + 1 < outsz; p++) {
        if (h[p] == '\n') {
            if (p + 1 >= hlen || (h[p + 1] != ' ' && h[p + 1] != '\t'))
                break; /* the field ends */
            continue;
        }
        if ((h[p] == ' ' || h[p] == '\t') && (o == 0 || out[o - 1] == ' '))
            continue;
        out[o++] = (char)(h[p] == '\t' ? ' ' : h[p]);
    }
    while (o && out[o - 1] == ' ')
        o--;
    out[o] = '\0';
}

void message_scan_headers(struct message *m, struct header_facts *f)
{
    memset(f, 0, sizeof *f);
    size_t total = evbuffer_get_length(m->body);
    struct evbuffer_ptr end = evbuffer_search(m->body, "\n\n", 2, NULL);
    size_t hlen = end.pos < 0 ? total : (size_t)end.pos + 1;
    if (total && *(const char *)evbuffer_pullup(m->body, 1) == '\n')
        hlen = 0; /* the text starts with the empty line: no header section */
    const char *h = (const char *)evbuffer_pullup(m->body, (ssize_t)hlen);
    f->header_len = hlen;
    for (size_t i = 0; h && i < hlen;) {
        const char *nl = memchr(h + i, '\n', hlen - i);
        size_t next = nl ? (size_t)(nl - h) + 1 : hlen, n = next - i;
        f->received += field_is(h + i, n, "Received");
        if (!f->has_message_id && field_is(h + i, n, "Message-ID")) {
            f->has_message_id = true;
            field_value(h, i, hlen, f->message_id, sizeof f->message_id);
        }
        f->has_date |= field_is(h + i, n, "Date");
        if (field_is(h + i, n, "TLS-Required")) {
            char v[8];
            field_value(h, i, hlen, v, sizeof v);
            f->tls_required_no |= strcasecmp(v, "No") == 0;
        }
        i = next;
    }
}

void message_date(long long t, char *out, size_t outsz)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, outsz, "%a, %d %b %Y %H:%M:%S +0000", &tm); /* the C locale: English names */
}
