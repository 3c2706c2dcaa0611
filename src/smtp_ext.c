/* smtp_ext.c - EHLO extension lines into struct smtp_extensions (see smtp_ext.h). */
#include "smtp_ext.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The mechanisms of an AUTH extension line ("PLAIN LOGIN CRAM-MD5"): PLAIN and LOGIN are used. */
static void read_auth_mechanisms(struct smtp_extensions *x, const char *p, size_t len)
{
    const char *end = p + len;
    while (p < end) {
        while (p < end && *p == ' ')
            p++;
        size_t n = 0;
        while (p + n < end && p[n] != ' ')
            n++;
        x->auth_plain |= n == 5 && !strncasecmp(p, "PLAIN", 5);
        x->auth_login |= n == 5 && !strncasecmp(p, "LOGIN", 5);
        p += n;
    }
}

void smtp_extension_read(struct smtp_extensions *x, const char *text, size_t len)
{
    char kw[64];
    snprintf(kw, sizeof kw, "%.*s", (int)(len < 63 ? len : 63), text);
    char *sp = strchr(kw, ' ');
    if (sp)
        *sp = '\0';
    if (!strcasecmp(kw, "PIPELINING"))
        x->pipelining = true;
    else if (!strcasecmp(kw, "STARTTLS"))
        x->starttls = true;
    else if (!strcasecmp(kw, "DSN"))
        x->dsn = true;
    else if (!strcasecmp(kw, "SMTPUTF8"))
        x->smtputf8 = true;
    else if (!strcasecmp(kw, "8BITMIME"))
        x->eightbit = true;
    else if (!strcasecmp(kw, "REQUIRETLS"))
        x->requiretls = true;
    else if (!strcasecmp(kw, "SIZE")) {
        x->size_offered = true;
        x->size_limit = sp ? strtoull(sp + 1, NULL, 10) : 0;
    } else if (!strcasecmp(kw, "AUTH") || !strncasecmp(kw, "AUTH=", 5)) { /* "AUTH=": old servers' form */
        read_auth_mechanisms(x, text + 5, len > 5 ? len - 5 : 0);
    }
}
