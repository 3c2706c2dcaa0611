/* header_checks.h - the administrator's rules on a message's header fields (header_checks =
 * FILE, as Postfix's header_checks): '/regex/[i] ACTION [text]' per line, POSIX extended regular
 * expressions matched against each field of the message's header section, unfolded ("Subject:
 * ..."); ACTION REJECT refuses the message at its end (550 5.7.1 with the text) and WARN logs the
 * field and takes it. The first rule that matches a field decides for it; a REJECT ends the check.
 * Pure once loaded; reloaded with the tables. */
#ifndef POSTERN_HEADER_CHECKS_H
#define POSTERN_HEADER_CHECKS_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>

#define HEADER_CHECK_TEXT_MAX 200   /* a REJECT's text for the client: printable ASCII */
#define HEADER_CHECK_FIELD_MAX 8192 /* octets of an unfolded field matched (the rest is not looked at) */
#define HEADER_CHECK_SECTION_MAX ((size_t)256 * 1024) /* octets of the header section looked at (the event loop
                                                 runs the rules: a huge section must not stall it) */

enum header_action { HEADER_REJECT, HEADER_WARN };

struct header_rule {
    regex_t re;
    enum header_action action;
    int line;                              /* in the table file, for the log */
    char text[HEADER_CHECK_TEXT_MAX + 1];  /* REJECT: what the client is told */
};

struct header_checks {
    struct header_rule *rules;
    size_t n, cap;
};

/* config_line_fn for the table: one rule into hc (a void * for config_lines_read). */
bool header_checks_line(void *hc, char *line, int lineno, const char **err, const char **shown);

void header_checks_free(struct header_checks *hc);

/* What the rules say of a header section (h, len octets, LF line endings, up to its empty line):
 * the deciding rule and the field it matched (unfolded, cut to fit field) for a REJECT, else NULL.
 * Only the fields that start in its first HEADER_CHECK_SECTION_MAX octets are looked at.
 * warn(arg, rule, field) is called for each field a WARN rule matched. */
typedef void (*header_warn_fn)(void *arg, const struct header_rule *rule, const char *field);
const struct header_rule *header_checks_run(const struct header_checks *hc, const char *h, size_t len, char *field,
                                            size_t fieldsz, header_warn_fn warn, void *arg);

#endif
