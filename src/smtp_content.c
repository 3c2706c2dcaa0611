/* smtp_content.c - the administrator's content rules (content_checks.h) on a message at the end
 * of its data: header_checks on the message's own header section, mime_header_checks on the header
 * blocks of its parts and attached messages, body_checks on the lines of its text outside every
 * header block. A REJECT refuses the message (550 5.7.1, nothing stored); a DISCARD answers 250
 * and stores nothing; a WARN is logged. The
 * rules run on the event loop, so each table looks at a bounded amount: CONTENT_CHECK_HEADER_MAX
 * octets of fields for each header table, body_checks_size_limit octets of text. Part of the
 * session (session_priv.h). */
#include <event2/buffer.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "content_checks.h"
#include "log.h"
#include "message.h"
#include "mime_parse.h"
#include "policy.h"
#include "server.h"
#include "session_priv.h"

/* The check of one message: which table runs, what it may still look at, what decided. */
struct content_check {
    struct session *s;
    const struct content_rules *mime, *body;
    size_t header_left;                   /* octets of part fields mime_header_checks still looks at */
    size_t body_left;                     /* octets of text body_checks still looks at */
    const char *table;                    /* the table running (for the log) */
    const struct content_rule *refused;   /* the REJECT or DISCARD that decided, if any */
    char matched[CONTENT_CHECK_LINE_MAX]; /* the field or line it matched */
};

/* content_warn_fn: a WARN rule matched a field (event=header_warning) or a line (body_warning). */
static void content_warning(void *arg, const struct content_rule *rule, const char *matched)
{
    const struct content_check *c = arg;
    const struct session *s = c->s;
    bool line = strcmp(c->table, "body_checks") == 0;
    char safe[300];
    log_warn("event=%s session=%s qid=%s client=%s table=%s rule_line=%d %s=\"%s\"",
             line ? "body_warning" : "header_warning", s->id, s->msg->qid, s->peer_ip, c->table, rule->line,
             line ? "line" : "field", log_quotable(safe, sizeof safe, matched));
}

/* mime_visit_fn: a part's header block to mime_header_checks, a line of text to body_checks,
 * while each has octets left to look at. Stops at a REJECT, or when neither has any left. */
static bool check_piece(void *arg, enum mime_piece kind, const char *p, size_t n)
{
    struct content_check *c = arg;
    if (kind == MIME_PART_HEADER && c->header_left) {
        c->table = "mime_header_checks";
        c->refused = content_rules_run_fields(c->mime, p, n, c->header_left, c->matched, sizeof c->matched,
                                              content_warning, c);
        c->header_left -= n < c->header_left ? n : c->header_left;
    } else if (kind == MIME_BODY_LINE && c->body_left) {
        c->table = "body_checks";
        c->refused = content_rules_run_line(c->body, p, n, c->matched, sizeof c->matched, content_warning, c);
        c->body_left -= n + 1 < c->body_left ? n + 1 : c->body_left; /* the line and its LF */
    }
    return !c->refused && (c->header_left || c->body_left);
}

/* The message text the walk needs, made contiguous: all of it for mime_header_checks (a part may
 * start anywhere), else only as far as body_checks looks. NULL when out of memory. */
static const char *walk_text(struct session *s, const struct header_facts *facts, size_t *len)
{
    size_t total = evbuffer_get_length(s->msg->body);
    size_t body_end = facts->header_len + 1 + s->srv->cfg->body_checks_size_limit;
    *len = !s->srv->policy->mime_header_checks.n && body_end < total ? body_end : total;
    return *len ? (const char *)evbuffer_pullup(s->msg->body, (ev_ssize_t)*len) : "";
}

/* Runs the three tables; c->refused and c->matched say what refused the message, if anything. */
static void run_tables(struct content_check *c, const struct header_facts *facts)
{
    const struct policy *p = c->s->srv->policy;
    c->table = "header_checks";
    if (p->header_checks.n && facts->header_len) {
        const char *h = (const char *)evbuffer_pullup(c->s->msg->body, (ev_ssize_t)facts->header_len); /* whole */
        c->refused = content_rules_run_fields(&p->header_checks, h, facts->header_len, CONTENT_CHECK_HEADER_MAX,
                                              c->matched, sizeof c->matched, content_warning, c);
    }
    c->mime = &p->mime_header_checks;
    c->body = &p->body_checks;
    c->header_left = c->mime->n ? CONTENT_CHECK_HEADER_MAX : 0;
    c->body_left = c->body->n ? c->s->srv->cfg->body_checks_size_limit : 0;
    size_t len;
    const char *text = c->refused || (!c->header_left && !c->body_left) ? NULL : walk_text(c->s, facts, &len);
    if (text)
        mime_walk(text, len, check_piece, c);
}

bool content_rules_refuse(struct session *s, const struct header_facts *facts)
{
    const struct policy *p = s->srv->policy;
    if (!p->header_checks.n && !p->mime_header_checks.n && !p->body_checks.n)
        return false; /* no rules: nothing to do for this message */
    static struct content_check c; /* loop thread only: 8 KiB of matched text */
    c = (struct content_check){.s = s};
    run_tables(&c, facts);
    if (!c.refused)
        return false;
    char detail[700], safe[300];
    if (c.refused->action == CONTENT_DISCARD) {
        snprintf(detail, sizeof detail, "%s line %d: %s: %s", c.table, c.refused->line,
                 log_quotable(safe, sizeof safe, c.matched), c.refused->text);
        discard_data(s, detail);
        return true;
    }
    snprintf(detail, sizeof detail, "%s line %d: %s", c.table, c.refused->line,
             log_quotable(safe, sizeof safe, c.matched));
    refuse_data(s, REPLY_CONTENT_REJECTED, detail, c.refused->text);
    return true;
}
