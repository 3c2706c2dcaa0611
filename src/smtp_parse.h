/* smtp_parse.h - pure parsing of one SMTP command line (CRLF already removed).
 * No I/O, no allocation: results point into the caller's line. A fuzz target. */
#ifndef POSTERN_SMTP_PARSE_H
#define POSTERN_SMTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "address.h"

enum smtp_verb {
    VERB_UNKNOWN = 0,
    VERB_EHLO, VERB_HELO, VERB_MAIL, VERB_RCPT, VERB_DATA, VERB_RSET, VERB_NOOP, VERB_QUIT,
    VERB_VRFY, VERB_HELP, VERB_EXPN, VERB_TURN, VERB_ETRN, VERB_BDAT, VERB_STARTTLS, VERB_AUTH,
    VERB_FOREIGN, /* an HTTP, proxy or POP verb (GET, POST, CONNECT, USER, ...): not SMTP at all */
    VERB__COUNT
};

struct smtp_command {
    enum smtp_verb verb;
    const char *arg; /* text after the verb and its separating space(s); "" when none */
    size_t arg_len;
};

/* Splits a command line into verb and argument. Never fails: an unknown word is VERB_UNKNOWN. */
void smtp_parse_command(const char *line, size_t len, struct smtp_command *cmd);

/* The verb's canonical name, for logs. */
const char *smtp_verb_name(enum smtp_verb verb);

#define SMTP_MAX_PARAMS 16

struct esmtp_param {
    const char *key;   /* keyword, not NUL-terminated */
    size_t key_len;
    const char *value; /* NULL when the parameter has no "=value" */
    size_t value_len;
};

enum path_args_result {
    PATH_ARGS_OK = 0,
    PATH_ARGS_NO_KEYWORD,   /* "FROM:" / "TO:" missing or argument empty */
    PATH_ARGS_BAD_ADDRESS,  /* the <path> does not parse; see addr_result */
    PATH_ARGS_BAD_PARAM,    /* a parameter is malformed, repeated or too many */
};

struct path_args {
    struct mailbox mailbox;
    enum addr_result addr_result;
    struct esmtp_param params[SMTP_MAX_PARAMS];
    size_t nparams;
};

/* Parses the argument of MAIL ("FROM:<path> params") or RCPT ("TO:<path> params"). */
enum path_args_result smtp_parse_path_args(const char *arg, size_t len, bool is_rcpt, struct path_args *out);

/* Finds a parameter by keyword (case-insensitive); NULL when absent. */
const struct esmtp_param *esmtp_param_find(const struct path_args *args, const char *key);

/* xtext (RFC 3461 4): printable ASCII except '+' and '=', "+XX" hex escapes (upper-case). */
bool smtp_xtext_valid(const char *s, size_t n);

/* RCPT NOTIFY= value (RFC 3461 4.1): "NEVER" -> 8, else a comma list of SUCCESS (1), FAILURE (2),
 * DELAY (4), each at most once, case-insensitive. 0 when malformed. */
unsigned smtp_parse_notify(const char *v, size_t n);

/* RCPT ORCPT= value (RFC 3461 4.2): addr-type ";" xtext, at most max octets; with smtputf8 (MAIL
 * had SMTPUTF8) a utf-8 addr-type may also hold UTF-8 characters (RFC 6533 utf-8-addr-unitext). */
bool smtp_orcpt_valid(const char *v, size_t n, size_t max, bool smtputf8);

/* BDAT's argument (RFC 3030 2): chunk-size (1*DIGIT) [SP "LAST"], case-insensitive; false when
 * malformed or over UINT64_MAX. */
bool smtp_parse_bdat(const char *arg, size_t len, uint64_t *size, bool *last);

/* Validates a HELO/EHLO argument: one token of printable ASCII or UTF-8, at most 255 octets. */
bool smtp_helo_arg_valid(const char *arg, size_t len);

/* True when a HELO/EHLO name (NUL-terminated) is what helo_name_check asks for: an address
 * literal ("[192.0.2.1]", "[IPv6:...]") or a fully-qualified domain name - two labels or more of
 * letters, digits, hyphens (not first or last) or UTF-8 (a U-label), 63 octets each, the last
 * not all digits (a bare "192.0.2.1" is an address without its brackets). A trailing dot is
 * allowed. */
bool smtp_helo_name_qualified(const char *name);

#endif
