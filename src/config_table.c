/* config_table.c - the reader of every table file the configuration names (recipients, moved,
 * aliases, relay_domains tables, transport, dkim_keys, srs_secret, tls_sni): see config.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config.h"

void config_lines_read(const struct config *cfg, const char *key, const char *file, config_line_fn fn, void *arg,
                       struct config_errors *errs)
{
    FILE *f = fopen(file, "r");
    if (!f) {
        config_errors_add(errs, "%s:%d: %s: cannot read table %s: %s", cfg->path, config_key_line(cfg, key), key,
                          file, strerror(errno));
        return;
    }
    char line[4096];
    int lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            config_errors_add(errs, "%s:%d: %s: line longer than %zu octets", file, lineno, key, sizeof line - 2);
            int c;
            while ((c = fgetc(f)) != EOF && c != '\n') /* the rest of it is not another line */
                ;
            continue;
        }
        line[strcspn(line, "\r\n")] = '\0';
        const char *start = line + strspn(line, " \t");
        const char *err = NULL, *shown = NULL;
        if (*start && *start != '#' && !fn(arg, line, lineno, &err, &shown)) {
            shown = shown ? shown : start; /* else the line's first field names it in the error */
            int token = (int)strcspn(shown, " \t#");
            config_errors_add(errs, "%s:%d: %s: %s: '%.*s'", file, lineno, key, err, token < 80 ? token : 80, shown);
        }
    }
    fclose(f);
}

struct split_call {
    config_table_fn fn;
    void *arg;
};

/* config_line_fn of config_table_read: the line's fields ('#' starts a comment anywhere); an
 * error shows the first field as fn left it (srs_secret's hides the secret). */
static bool split_line(void *arg, char *line, int lineno, const char **err, const char **shown)
{
    struct split_call *c = arg;
    char *hash = strchr(line, '#');
    if (hash)
        *hash = '\0';
    char *fields[CONFIG_TABLE_FIELDS];
    int n = 0;
    for (char *tok = strtok(line, " \t"); tok; tok = strtok(NULL, " \t"))
        if (n < CONFIG_TABLE_FIELDS)
            fields[n++] = tok;
        else
            n = CONFIG_TABLE_FIELDS + 1;
    if (n == 0)
        return true;
    if (n > CONFIG_TABLE_FIELDS) {
        *err = "too many fields";
        return false;
    }
    bool ok = c->fn(c->arg, fields, n, lineno, err);
    *shown = fields[0];
    return ok || (*err = *err ? *err : "too many fields", false);
}

void config_table_read(const struct config *cfg, const char *key, const char *file, config_table_fn fn, void *arg,
                       struct config_errors *errs)
{
    struct split_call c = {fn, arg};
    config_lines_read(cfg, key, file, split_line, &c, errs);
}
