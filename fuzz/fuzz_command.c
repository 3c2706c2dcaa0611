/* libFuzzer target: command line and MAIL/RCPT argument parser. Invariants: the argument lies
 * inside the line; parameters lie inside the argument; never more than SMTP_MAX_PARAMS. */
#include <stdint.h>
#include <stdlib.h>

#include "smtp_parse.h"

static void inside(const char *outer, size_t outer_len, const char *p, size_t n)
{
    if (p < outer || p + n > outer + outer_len)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *line = (const char *)data;
    struct smtp_command c;
    smtp_parse_command(line, size, &c);
    inside(line, size, c.arg, c.arg_len);
    for (int rcpt = 0; rcpt < 2; rcpt++) {
        struct path_args a;
        if (smtp_parse_path_args(c.arg, c.arg_len, rcpt, &a) != PATH_ARGS_OK)
            continue;
        if (a.nparams > SMTP_MAX_PARAMS)
            abort();
        for (size_t i = 0; i < a.nparams; i++) {
            inside(c.arg, c.arg_len, a.params[i].key, a.params[i].key_len);
            if (a.params[i].value)
                inside(c.arg, c.arg_len, a.params[i].value, a.params[i].value_len);
        }
        (void)esmtp_param_find(&a, "SIZE");
    }
    (void)smtp_helo_arg_valid(c.arg, c.arg_len);
    return 0;
}
