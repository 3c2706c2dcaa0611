/* content_checks.h - the administrator's rules on the content of received mail, as Postfix's
 * header_checks, mime_header_checks and body_checks: '/regex/[i] ACTION [text]' per line, POSIX
 * extended regular expressions matched against each header field, unfolded ("Subject: ..."), or
 * each line of text; ACTION REJECT refuses the message at its end (550 5.7.1 with the text),
 * DISCARD answers 250 and stores nothing (the text is logged only), and WARN logs what matched and
 * takes it. The first rule that matches decides for that field or line; a REJECT or DISCARD ends
 * the check. Pure once loaded; reloaded with the tables. What each table is
 * matched against, and how much of a message, is smtp_content.c's. */
#ifndef POSTERN_CONTENT_CHECKS_H
#define POSTERN_CONTENT_CHECKS_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>

#define CONTENT_CHECK_TEXT_MAX 200  /* a REJECT's text for the client: printable ASCII */
#define CONTENT_CHECK_LINE_MAX 8192 /* octets of an unfolded field or a line matched (the rest is not looked at) */
#define CONTENT_CHECK_HEADER_MAX ((size_t)256 * 1024) /* octets of header fields looked at, in the message's
                                                 section and again in its parts' (the event loop runs the rules:
                                                 megabytes of fields must not stall it) */

enum content_action { CONTENT_REJECT, CONTENT_DISCARD, CONTENT_WARN };

struct content_rule {
    regex_t re;
    enum content_action action;
    int line;                              /* in the table file, for the log */
    char text[CONTENT_CHECK_TEXT_MAX + 1]; /* REJECT: what the client is told; DISCARD: what is logged */
};

struct content_rules {
    struct content_rule *rules;
    size_t n, cap;
};

/* config_line_fn for the table: one rule into hc (a void * for config_lines_read). */
bool content_rules_line(void *hc, char *line, int lineno, const char **err, const char **shown);

void content_rules_free(struct content_rules *hc);

typedef void (*content_warn_fn)(void *arg, const struct content_rule *rule, const char *matched);

/* What the rules say of a header block (h, len octets, LF line endings, up to its empty line): the
 * deciding rule and the field it matched (unfolded, cut to fit field) for a REJECT or DISCARD,
 * else NULL.
 * Only the fields that start in its first limit octets are looked at. warn(arg, rule, field) is
 * called for each field a WARN rule matched. */
const struct content_rule *content_rules_run_fields(const struct content_rules *rules, const char *h, size_t len,
                                                   size_t limit, char *field, size_t fieldsz, content_warn_fn warn,
                                                   void *arg);

/* The same for one line of text (n octets, no LF; copied into buf, cut to fit, for the regexes). */
const struct content_rule *content_rules_run_line(const struct content_rules *rules, const char *line, size_t n,
                                                 char *buf, size_t bufsz, content_warn_fn warn, void *arg);

#endif
