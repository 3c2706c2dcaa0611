/* smtp_ext.h - the SMTP service extensions a peer's EHLO reply offers (RFC 5321 4.1.1.1), as the
 * outbound client uses them. Pure: no I/O. */
#ifndef POSTERN_SMTP_EXT_H
#define POSTERN_SMTP_EXT_H

#include <stdbool.h>
#include <stddef.h>

struct smtp_extensions {
    bool pipelining, starttls, dsn, smtputf8, eightbit;
    bool requiretls;                /* REQUIRETLS (RFC 8689) */
    bool size_offered;              /* SIZE (RFC 1870) */
    bool auth_plain, auth_login;    /* AUTH mechanisms (RFC 4954), for relay_host_auth */
    unsigned long long size_limit;  /* SIZE's value: 0 or none is no fixed limit */
};

/* Reads one EHLO reply line after the first (its text after "250-"/"250 ") into x. Called line by
 * line as they come, so that none is lost however long the reply. */
void smtp_extension_read(struct smtp_extensions *x, const char *text, size_t len);

#endif
