/* libFuzzer target: header_checks on a message's header section (content_checks.c), which any
 * client sends. The input is the section; four rules (a REJECT, a WARN, a REJECT on a folded
 * field, a DISCARD). Invariants: never out of bounds (ASan); every field handed to a rule is a C
 * string of fewer than CONTENT_CHECK_LINE_MAX octets without a line break (fields are unfolded),
 * and a REJECT or DISCARD comes with the field its rule matches. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "content_checks.h"

static struct content_rules rules;

static void load(void)
{
    static const char *const lines[] = {"/^Subject:.*spam/i REJECT no spam", "/^X-Mailer: .*a/ WARN",
                                        "/^To: a b$/ REJECT folded", "/^Subject:.*prize/ DISCARD"};
    for (size_t i = 0; i < sizeof lines / sizeof *lines; i++) {
        char line[128];
        const char *err = NULL, *shown = NULL;
        strcpy(line, lines[i]);
        if (!content_rules_line(&rules, line, (int)i + 1, &err, &shown))
            abort();
    }
}

static void check_field(const char *field)
{
    size_t n = strlen(field);
    if (n >= CONTENT_CHECK_LINE_MAX || memchr(field, '\n', n))
        abort();
}

static void on_warn(void *arg, const struct content_rule *rule, const char *field)
{
    (void)arg;
    if (rule->action != CONTENT_WARN || regexec(&rule->re, field, 0, NULL, 0) != 0)
        abort();
    check_field(field);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!rules.n)
        load();
    char *h = malloc(size + 1); /* exactly the input: ASan sees any read past it */
    if (!h)
        return 0;
    memcpy(h, data, size);
    static char field[CONTENT_CHECK_LINE_MAX];
    const struct content_rule *r = content_rules_run_fields(&rules, h, size, CONTENT_CHECK_HEADER_MAX, field, sizeof field, on_warn, NULL);
    if (r) {
        check_field(field);
        if (r->action == CONTENT_WARN || regexec(&r->re, field, 0, NULL, 0) != 0) /* only an end decides */
            abort();
    }
    free(h);
    return 0;
}
