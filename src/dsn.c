/* dsn.c - builds delivery status notifications. Layout (RFC 6522, RFC 3464):
 *   multipart/report; report-type=delivery-status
 *     1. text/plain: for each recipient, what happened, what it means, what to do
 *     2. message/delivery-status: per-message and per-recipient fields
 *     3. text/rfc822-headers (the original headers) or message/rfc822 (RET=FULL)
 * Text is LF-terminated like every stored message; the SMTP client adds the CRs. */
#include "dsn.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "explain.h"
#include "message.h"
#include "mime_downgrade.h"
#include "queue_file.h"
#include "smtp_reply.h"

static bool starts_with_code(const char *diag)
{
    return diag && diag[0] >= '2' && diag[0] <= '5' && diag[1] >= '0' && diag[1] <= '9' && diag[2] >= '0' &&
           diag[2] <= '9' && (diag[3] == ' ' || diag[3] == '\0');
}

/* The Status field: the diag's enhanced code (else class.0.0 of its reply code), its class made to
 * agree with what happened - a delay is always 4, and otherwise the reply code's class wins over a
 * peer's enhanced code that disagrees with it (a 4xx code with a 5.x.x enhanced one, or a 552 to
 * RCPT taken as temporary; RFC 3463 3.1, RFC 5321 4.5.3.1.10). A delivered or relayed recipient's
 * status is 2.0.0. */
void dsn_status_of(const char *diag, enum dsn_action action, char *out, size_t outsz)
{
    int code = 0;
    char enh[16] = "";
    const char *p = diag ? diag : "";
    if (action == DSN_RELAYED || action == DSN_DELIVERED || action == DSN_EXPANDED) {
        snprintf(out, outsz, "2.0.0");
        return;
    }
    if (starts_with_code(p)) {
        code = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
        p += p[3] ? 4 : 3;
    }
    size_t n = smtp_enhanced_code_len(p);
    if (n && n < sizeof enh)
        snprintf(enh, sizeof enh, "%.*s", (int)n, p);
    else
        snprintf(enh, sizeof enh, "%d.0.0", code ? code / 100 : 4);
    if (action == DSN_DELAYED)
        enh[0] = '4';
    else if (code / 100 == 4 || code / 100 == 5)
        enh[0] = (char)('0' + code / 100);
    snprintf(out, outsz, "%s", enh);
}

/* A diag's words after its reply code and enhanced code ("550 5.1.1 no such user": "no such
 * user"), for telling Postern's own replies from other servers' (explain_lookup). */
static const char *reply_words(const char *diag)
{
    const char *p = diag ? diag : "";
    if (starts_with_code(p))
        p += p[3] ? 4 : 3;
    size_t n = smtp_enhanced_code_len(p);
    p += n;
    while (*p == ' ')
        p++;
    return p;
}

static const char *action_name(enum dsn_action a)
{
    return a == DSN_FAILED    ? "failed"
           : a == DSN_DELAYED ? "delayed"
           : a == DSN_RELAYED ? "relayed"
           : a == DSN_EXPANDED ? "expanded"
                              : "delivered";
}

/* The forward-path of a 551 reply ("... please try <new@example.org>"), or NULL. */
static bool moved_to(const char *diag, char *out, size_t outsz)
{
    if (!diag || strncmp(diag, "551", 3) != 0)
        return false;
    const char *lt = strchr(diag, '<'), *gt = lt ? strchr(lt, '>') : NULL;
    if (!lt || !gt || gt - lt < 4)
        return false;
    snprintf(out, outsz, "%.*s", (int)(gt - lt - 1), lt + 1);
    return true;
}

/* Part 1: plain words, per recipient. */
/* For a message that expired in the queue (queue.c's "... (last error: <diag>)"), the explanation
 * of that last error, which says more than "delivery time expired" - a certificate, a policy, a
 * full mailbox: true with *e filled when it has a code that is known. */
static bool last_error_explained(const char *diag, struct explanation *e)
{
    const char *last = diag ? strstr(diag, "(last error: ") : NULL;
    int code = 0;
    char enhanced[16] = "";
    const char *words = NULL;
    if (!last || explain_parse(last + 13, &code, enhanced, sizeof enhanced, &words) != 0)
        return false;
    return explain_lookup(code, enhanced, words, e) == 0;
}

static void human_part(struct evbuffer *out, const struct dsn_report *r)
{
    bool failed = false, delayed = false;
    for (size_t i = 0; i < r->nrcpts; i++) {
        failed |= r->rcpts[i].action == DSN_FAILED;
        delayed |= r->rcpts[i].action == DSN_DELAYED;
    }
    evbuffer_add_printf(out, "This is the mail system at %s.\n\n", r->reporting_mta);
    if (failed)
        evbuffer_add_printf(out, "Your message could not be delivered to one or more recipients.\n"
                                 "It will not be retried for them. The details, and what you can do:\n\n");
    else if (delayed)
    {
        evbuffer_add_printf(out, "Your message has not been delivered yet to one or more recipients.\n"
                                 "This is only a warning: the mail system keeps trying, you do not need to resend.\n");
        if (r->retry_until) {
            char until[64];
            message_date(r->retry_until, until, sizeof until);
            evbuffer_add_printf(out, "It tries until %s; if the message is still not\n"
                                     "delivered then, it gives up and tells you.\n", until);
        }
        evbuffer_add(out, "\n", 1);
    }
    else
        evbuffer_add_printf(out, "Your message was %s successfully, as you asked to be told.\n\n",
                            r->nrcpts && r->rcpts[0].action == DSN_DELIVERED ? "delivered" : "passed on");
    for (size_t i = 0; i < r->nrcpts; i++) {
        const struct dsn_rcpt *d = &r->rcpts[i];
        char status[16], newaddr[300];
        dsn_status_of(d->diag, d->action, status, sizeof status);
        int code = starts_with_code(d->diag) ? (d->diag[0] - '0') * 100 + (d->diag[1] - '0') * 10 + (d->diag[2] - '0') : 0;
        struct explanation e;
        explain_lookup(code, status, reply_words(d->diag), &e);
        evbuffer_add_printf(out, "<%s>: %s\n", d->addr, action_name(d->action));
        if (d->diag && d->action != DSN_RELAYED && d->action != DSN_DELIVERED && d->action != DSN_EXPANDED) {
            if (starts_with_code(d->diag))
                evbuffer_add_printf(out, "    The server %s replied: %s\n", d->remote_mta ? d->remote_mta : "", d->diag);
            else
                evbuffer_add_printf(out, "    What happened: %s\n", d->diag);
            struct explanation last;
            bool expired = last_error_explained(d->diag, &last);
            evbuffer_add_printf(out, "    What it means: %s\n", e.meaning);
            if (expired)
                evbuffer_add_printf(out, "    The last try:  %s\n", last.meaning);
            if (expired)
                evbuffer_add_printf(out, "    What to do:    %s\n", last.fix);
            else if (moved_to(d->diag, newaddr, sizeof newaddr))
                evbuffer_add_printf(out, "    What to do:    The recipient has moved. Resend your message to <%s>.\n",
                                    newaddr);
            else
                evbuffer_add_printf(out, "    What to do:    %s\n", e.fix);
        } else if (d->action == DSN_DELIVERED) { /* here, or by this site's LMTP server */
            evbuffer_add_printf(out, "    Delivered to the recipient's mailbox on %s.\n",
                                d->remote_mta ? d->remote_mta : r->reporting_mta);
        } else if (d->action == DSN_EXPANDED) {
            evbuffer_add_printf(out, "    An alias on %s: the message went on to several addresses, which\n"
                                     "    send no further success reports (a failure is still reported).\n",
                                r->reporting_mta);
        } else if (d->remote_mta) {
            evbuffer_add_printf(out, "    Passed to %s, which does not send delivery reports\n", d->remote_mta);
        }
        evbuffer_add(out, "\n", 1);
    }
    if (failed || delayed)
        evbuffer_add_printf(out, "For any of these codes, `postern explain CODE` on the mail server prints more.\n");
}

static int hex_value(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* RFC 3461 6.3 (a), (d): the report gives ENVID and ORCPT with their xtext decoded ("+2B" is "+";
 * ORCPT's addr-type has no '+', so its whole value decodes). A value that would decode to a control
 * character or an octet over 126 stays as the client sent it (printable ASCII): no report field can
 * be broken or made 8-bit by a client's escapes. */
static const char *xtext_decoded(const char *x, char *out, size_t outsz)
{
    size_t o = 0;
    for (const char *p = x; *p; p++) {
        int c = (unsigned char)*p;
        if (c == '+') {
            int hi = hex_value(p[1]), lo = hi < 0 ? -1 : hex_value(p[2]);
            if (lo < 0)
                return x;
            c = hi * 16 + lo;
            p += 2;
        }
        if (c < 0x20 || c > 0x7e || o + 1 >= outsz)
            return x;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return out;
}

/* Part 2: message/delivery-status (RFC 3464 2.2-2.3). */
static void status_part(struct evbuffer *out, const struct dsn_report *r)
{
    char date[64];
    message_date(r->arrival, date, sizeof date);
    evbuffer_add_printf(out, "Reporting-MTA: dns; %s\n", r->reporting_mta);
    char decoded[DSN_ORCPT_MAX + 1];
    if (r->envid)
        evbuffer_add_printf(out, "Original-Envelope-Id: %s\n", xtext_decoded(r->envid, decoded, sizeof decoded));
    evbuffer_add_printf(out, "X-Postern-Queue-ID: %s\nArrival-Date: %s\n", r->qid, date);
    for (size_t i = 0; i < r->nrcpts; i++) {
        const struct dsn_rcpt *d = &r->rcpts[i];
        char status[16];
        dsn_status_of(d->diag, d->action, status, sizeof status);
        evbuffer_add(out, "\n", 1);
        if (d->orcpt)
            evbuffer_add_printf(out, "Original-Recipient: %s\n", xtext_decoded(d->orcpt, decoded, sizeof decoded));
        evbuffer_add_printf(out, "Final-Recipient: rfc822; %s\nAction: %s\nStatus: %s\n", d->addr, action_name(d->action),
                            status);
        if (d->remote_mta) { /* its name, or (an address literal's host) its address: "[192.0.2.1]" */
            char host[300];
            snprintf(host, sizeof host, "%s", d->remote_mta);
            if (host[0] != '[')
                host[strcspn(host, "[")] = '\0';
            evbuffer_add_printf(out, "Remote-MTA: dns; %s\n", host);
        }
        if (d->diag && starts_with_code(d->diag))
            evbuffer_add_printf(out, "Diagnostic-Code: smtp; %s\n", d->diag);
        else if (d->diag)
            evbuffer_add_printf(out, "Diagnostic-Code: x-postern; %s\n", d->diag);
        if (d->action == DSN_DELAYED && r->retry_until) { /* RFC 3464 2.3.9: in "delayed" reports only */
            message_date(r->retry_until, date, sizeof date);
            evbuffer_add_printf(out, "Will-Retry-Until: %s\n", date);
        }
    }
}

static bool str_8bit(const char *s)
{
    return s && mime_has_8bit(s, strlen(s));
}

/* True when the report's own parts (the notification and the status) will hold an octet over 127:
 * a UTF-8 address, or a remote server's reply quoted in them. */
static bool parts_are_8bit(const struct dsn_report *r)
{
    bool eight = str_8bit(r->sender) || str_8bit(r->envid);
    for (size_t i = 0; i < r->nrcpts; i++)
        eight |= str_8bit(r->rcpts[i].addr) || str_8bit(r->rcpts[i].orcpt) || str_8bit(r->rcpts[i].diag) ||
                 str_8bit(r->rcpts[i].remote_mta);
    return eight;
}

int dsn_build(struct evbuffer *out, const struct dsn_report *r, const char *message_id)
{
    bool failed = false, delayed = false;
    for (size_t i = 0; i < r->nrcpts; i++) {
        failed |= r->rcpts[i].action == DSN_FAILED;
        delayed |= r->rcpts[i].action == DSN_DELAYED;
    }
    bool full = r->ret == RET_FULL && failed; /* RFC 3461 4.3: RET=FULL is for failed DSNs; others give headers */
    size_t n = full ? r->original_len : qfile_header_length(r->original, r->original_len);
    /* RFC 2045 6.4: a multipart or message part holding 8-bit octets says so (the default is 7bit) */
    bool eight_returned = mime_has_8bit(r->original, n), eight_parts = parts_are_8bit(r);
    const char *label = "Content-Transfer-Encoding: 8bit\n";
    char date[64], boundary[71]; /* RFC 2046 5.1.1: a boundary has at most 70 characters */
    message_date((long long)time(NULL), date, sizeof date);
    snprintf(boundary, sizeof boundary, "%s/%s", message_id, r->reporting_mta); /* cut if longer */
    evbuffer_add_printf(out, "From: Mail Delivery System <MAILER-DAEMON@%s>\n", r->reporting_mta);
    evbuffer_add_printf(out, "To: <%s>\nDate: %s\nMessage-ID: <%s@%s>\n", r->sender, date, message_id, r->reporting_mta);
    evbuffer_add_printf(out, "Subject: %s\n", failed ? "Undelivered Mail Returned to Sender"
                                              : delayed ? "Delayed Mail (still being retried)"
                                                        : "Successful Mail Delivery Report");
    evbuffer_add_printf(out, "Auto-Submitted: auto-replied\nMIME-Version: 1.0\n%s"
                             "Content-Type: multipart/report; report-type=delivery-status;\n\tboundary=\"%s\"\n\n"
                             "This is a MIME-encapsulated message.\n\n",
                        eight_returned || eight_parts ? label : "", boundary);
    evbuffer_add_printf(out, "--%s\nContent-Description: Notification\nContent-Type: text/plain; charset=utf-8\n%s\n",
                        boundary, eight_parts ? label : "");
    human_part(out, r);
    evbuffer_add_printf(out, "\n--%s\nContent-Description: Delivery report\nContent-Type: message/delivery-status\n%s\n",
                        boundary, eight_parts ? label : "");
    status_part(out, r);
    evbuffer_add_printf(out, "\n--%s\nContent-Description: %s\nContent-Type: %s\n%s\n", boundary,
                        full ? "Undelivered Message" : failed || delayed ? "Undelivered Message Headers" : "Message Headers",
                        full ? "message/rfc822" : "text/rfc822-headers", eight_returned ? label : "");
    evbuffer_add(out, r->original, n);
    if (n && r->original[n - 1] != '\n')
        evbuffer_add(out, "\n", 1);
    return evbuffer_add_printf(out, "\n--%s--\n", boundary) < 0 ? -1 : 0;
}
