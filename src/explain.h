/* explain.h - plain-words meaning of any SMTP reply code and enhanced status code, for bounces
 * and `postern explain`. Postern's own reply catalog (reply.def) comes first; codes other servers
 * send are covered by the RFC 3463 / RFC 5321 table in explain.c. */
#ifndef POSTERN_EXPLAIN_H
#define POSTERN_EXPLAIN_H

#include <stdio.h>

struct explanation {
    int code;              /* 550, or 0 when only an enhanced code was known */
    char enhanced[16];     /* "5.1.1" or "" */
    const char *title;     /* short description */
    const char *meaning;   /* what it means / when you see it */
    const char *fix;       /* what to do */
    const char *source;    /* "Postern reply catalog", "RFC 3463", "RFC 5321" */
};

/* Fills e for a reply code (e.g. 550) and/or enhanced code ("5.1.1"); either may be 0/"". text is
 * the reply's words after the codes, or NULL when not known: Postern's own catalog explains a
 * reply only when it is one of Postern's (same code, enhanced code and words; without words, the
 * only catalog row with both codes) - another server's "550 5.7.1 spam" is not Postern's "551
 * 5.7.1 relaying denied". Returns 0, or -1 when nothing is known (e then holds a generic text). */
int explain_lookup(int code, const char *enhanced, const char *text, struct explanation *e);

/* Parses "550", "5.1.1", "550 5.1.1" or "550-5.1.1", also at the start of a pasted reply line
 * ("550 5.1.1 <bob@example.com>: Recipient address rejected": *words points at its words, else
 * NULL); -1 when it is none of these. */
int explain_parse(const char *text, int *code, char *enhanced, size_t enhsz, const char **words);

/* `postern explain CODE [CODE2]`: prints the explanation(s), and with two codes their key
 * differences. Returns the exit status (0, or 2 for an unparsable code). */
int explain_main(FILE *out, int argc, char **argv);

#endif
