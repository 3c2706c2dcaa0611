/* config_table.c - the reader of every table file the configuration names (recipients, moved,
 * aliases, relay_domains tables, transport, dkim_keys, srs_secret, tls_sni): see config.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config.h"

void config_table_read(const struct config *cfg, const char *key, const char *file, config_table_fn fn, void *arg,
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
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *fields[CONFIG_TABLE_FIELDS];
        int n = 0;
        for (char *tok = strtok(line, " \t\r\n"); tok; tok = strtok(NULL, " \t\r\n"))
            if (n < CONFIG_TABLE_FIELDS)
                fields[n++] = tok;
            else
                n = CONFIG_TABLE_FIELDS + 1;
        if (n == 0)
            continue;
        const char *err = NULL;
        if (n > CONFIG_TABLE_FIELDS || !fn(arg, fields, n, lineno, &err))
            config_errors_add(errs, "%s:%d: %s: %s: '%.80s'", file, lineno, key, err ? err : "too many fields",
                              fields[0]);
    }
    fclose(f);
}
