/* smtp_parse.c - command line to verb/argument, and MAIL/RCPT argument parsing (RFC 5321 4.1.1.2,
 * 4.1.1.3, 4.1.2; ESMTP parameters per RFC 5321 4.1.2 "esmtp-param"). Pure and bounded. */
#include "smtp_parse.h"

#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "address.h"

static const char *const verb_names[VERB__COUNT] = {
    [VERB_UNKNOWN] = "UNKNOWN", [VERB_EHLO] = "EHLO", [VERB_HELO] = "HELO", [VERB_MAIL] = "MAIL",
    [VERB_RCPT] = "RCPT",       [VERB_DATA] = "DATA", [VERB_RSET] = "RSET", [VERB_NOOP] = "NOOP",
    [VERB_QUIT] = "QUIT",       [VERB_VRFY] = "VRFY", [VERB_HELP] = "HELP", [VERB_EXPN] = "EXPN",
    [VERB_TURN] = "TURN",       [VERB_ETRN] = "ETRN", [VERB_BDAT] = "BDAT", [VERB_STARTTLS] = "STARTTLS",
    [VERB_AUTH] = "AUTH",       [VERB_FOREIGN] = "FOREIGN",
};

/* Words that open other protocols: answering them as SMTP errors helps cross-protocol attacks. */
static const char *const foreign_verbs[] = {"GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "CONNECT",
                                            "USER", "PASS", NULL};

const char *smtp_verb_name(enum smtp_verb verb)
{
    return (unsigned)verb < VERB__COUNT ? verb_names[verb] : "UNKNOWN";
}

void smtp_parse_command(const char *line, size_t len, struct smtp_command *cmd)
{
    size_t w = 0;
    while (w < len && line[w] != ' ')
        w++;
    cmd->verb = VERB_UNKNOWN;
    for (int v = 1; v < VERB_FOREIGN; v++) {
        if (strlen(verb_names[v]) == w && strncasecmp(line, verb_names[v], w) == 0) {
            cmd->verb = (enum smtp_verb)v;
            break;
        }
    }
    for (int i = 0; cmd->verb == VERB_UNKNOWN && foreign_verbs[i]; i++)
        if (strlen(foreign_verbs[i]) == w && strncasecmp(line, foreign_verbs[i], w) == 0)
            cmd->verb = VERB_FOREIGN;
    size_t a = w;
    while (a < len && line[a] == ' ')
        a++;
    size_t end = len;
    while (end > a && (line[end - 1] == ' ' || line[end - 1] == '\t'))
        end--;
    cmd->arg = line + a;
    cmd->arg_len = end - a;
}

static bool is_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* esmtp-value characters: %d33-60 / %d62-126, plus UTF-8 (RFC 6531 3.3). */
static size_t value_char_len(const char *s, size_t avail)
{
    unsigned char c = (unsigned char)s[0];
    if (c >= 0x80)
        return utf8_sequence_length((const unsigned char *)s, avail);
    return (c >= 33 && c <= 126 && c != '=') ? 1 : 0;
}

/* Parses "kw[=value]" tokens separated by spaces in s[0..len). */
static bool parse_params(const char *s, size_t len, struct path_args *out)
{
    size_t i = 0;
    for (;;) {
        while (i < len && s[i] == ' ')
            i++;
        if (i >= len)
            return true;
        if (out->nparams == SMTP_MAX_PARAMS)
            return false;
        struct esmtp_param *p = &out->params[out->nparams];
        p->key = s + i;
        if (!is_alnum((unsigned char)s[i]))
            return false;
        while (i < len && (is_alnum((unsigned char)s[i]) || s[i] == '-'))
            i++;
        p->key_len = (size_t)(s + i - p->key);
        p->value = NULL;
        p->value_len = 0;
        if (i < len && s[i] == '=') {
            p->value = s + ++i;
            while (i < len && s[i] != ' ') {
                size_t k = value_char_len(s + i, len - i);
                if (k == 0)
                    return false;
                i += k;
            }
            p->value_len = (size_t)(s + i - p->value);
            if (p->value_len == 0)
                return false;
        }
        if (i < len && s[i] != ' ')
            return false;
        for (size_t j = 0; j < out->nparams; j++)
            if (out->params[j].key_len == p->key_len && strncasecmp(out->params[j].key, p->key, p->key_len) == 0)
                return false; /* a parameter given twice */
        out->nparams++;
    }
}

enum path_args_result smtp_parse_path_args(const char *arg, size_t len, bool is_rcpt, struct path_args *out)
{
    const char *kw = is_rcpt ? "TO:" : "FROM:";
    size_t kwlen = strlen(kw);
    memset(out, 0, sizeof *out);
    if (len < kwlen || strncasecmp(arg, kw, kwlen) != 0)
        return PATH_ARGS_NO_KEYWORD;
    size_t i = kwlen;
    while (i < len && arg[i] == ' ') /* tolerated, as most MTAs do */
        i++;
    if (i == len)
        return PATH_ARGS_NO_KEYWORD;
    size_t used = 0;
    out->addr_result = address_parse_path(arg + i, len - i, &out->mailbox, &used, !is_rcpt, is_rcpt);
    if (out->addr_result != ADDR_OK)
        return PATH_ARGS_BAD_ADDRESS;
    i += used;
    if (i < len && arg[i] != ' ')
        return PATH_ARGS_BAD_ADDRESS; /* junk glued to the closing '>' */
    return parse_params(arg + i, len - i, out) ? PATH_ARGS_OK : PATH_ARGS_BAD_PARAM;
}

const struct esmtp_param *esmtp_param_find(const struct path_args *args, const char *key)
{
    size_t n = strlen(key);
    for (size_t i = 0; i < args->nparams; i++)
        if (args->params[i].key_len == n && strncasecmp(args->params[i].key, key, n) == 0)
            return &args->params[i];
    return NULL;
}

bool smtp_helo_arg_valid(const char *arg, size_t len)
{
    if (len == 0 || len > 255)
        return false;
    for (size_t i = 0; i < len; i++)
        if (arg[i] == ' ' || arg[i] == '\t')
            return false;
    return utf8_text_valid(arg, len);
}

/* True when the label p[0..n) is one of a host name: 1 to 63 octets of letters, digits, hyphens
 * (neither first nor last) or UTF-8; *digits says whether it is all digits. */
static bool host_label(const char *p, size_t n, bool *digits)
{
    *digits = n > 0;
    if (n == 0 || n > 63 || p[0] == '-' || p[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        bool digit = c >= '0' && c <= '9';
        *digits = *digits && digit;
        if (!(digit || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' || c >= 0x80))
            return false;
    }
    return true;
}

bool smtp_helo_name_qualified(const char *name)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    if (name[0] == '[')
        return address_literal_ip(name, &ss, &sslen);
    size_t len = strlen(name), labels = 0;
    if (len && name[len - 1] == '.')
        len--; /* the root's dot */
    bool digits = false;
    for (size_t i = 0; i <= len;) {
        size_t n = strcspn(name + i, ".");
        n = n < len - i ? n : len - i;
        if (!host_label(name + i, n, &digits))
            return false;
        labels++;
        i += n + 1;
    }
    return labels >= 2 && !digits;
}

bool smtp_xtext_valid(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '+') {
            if (i + 2 >= n)
                return false;
            for (int k = 1; k <= 2; k++)
                if (!((s[i + k] >= '0' && s[i + k] <= '9') || (s[i + k] >= 'A' && s[i + k] <= 'F')))
                    return false;
            i += 2;
        } else if (c < 0x21 || c > 0x7e || c == '=') {
            return false;
        }
    }
    return true;
}

unsigned smtp_parse_notify(const char *v, size_t n)
{
    static const char *names[] = {"SUCCESS", "FAILURE", "DELAY"};
    if (n == 5 && strncasecmp(v, "NEVER", 5) == 0)
        return 8; /* NOTIFY_NEVER */
    unsigned bits = 0;
    const char *end = v + n;
    while (v < end) {
        const char *comma = memchr(v, ',', (size_t)(end - v));
        size_t len = (size_t)((comma ? comma : end) - v);
        unsigned bit = 0;
        for (int b = 0; b < 3; b++)
            if (strlen(names[b]) == len && strncasecmp(v, names[b], len) == 0)
                bit = 1u << b;
        if (!bit || (bits & bit))
            return 0;
        bits |= bit;
        v += len + (comma ? 1 : 0);
        if (comma && v == end)
            return 0;
    }
    return bits;
}

/* RFC 6533 utf-8-addr-unitext, the form an ORCPT of type utf-8 may take with SMTPUTF8: xtext with
 * UTF-8 characters (QUCHAR) among it. */
static bool unitext_valid(const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && (unsigned char)s[j] < 0x80)
            j++;
        if (j > i && !smtp_xtext_valid(s + i, j - i))
            return false;
        if (j == n)
            break;
        size_t k = utf8_sequence_length((const unsigned char *)s + j, n - j);
        if (k == 0)
            return false;
        i = j + k;
    }
    return true;
}

bool smtp_orcpt_valid(const char *v, size_t n, size_t max, bool smtputf8)
{
    const char *semi = memchr(v, ';', n);
    if (!semi || semi == v || n > max)
        return false;
    for (const char *p = v; p < semi; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-'))
            return false;
    const char *addr = semi + 1;
    size_t alen = (size_t)(v + n - addr);
    bool utf8_type = semi - v == 5 && strncasecmp(v, "utf-8", 5) == 0;
    return alen > 0 && (smtputf8 && utf8_type ? unitext_valid(addr, alen) : smtp_xtext_valid(addr, alen));
}

bool smtp_parse_bdat(const char *arg, size_t len, uint64_t *size, bool *last)
{
    size_t i = 0;
    uint64_t n = 0;
    for (; i < len && arg[i] >= '0' && arg[i] <= '9'; i++) {
        unsigned d = (unsigned)(arg[i] - '0');
        if (n > (UINT64_MAX - d) / 10)
            return false;
        n = n * 10 + d;
    }
    if (i == 0)
        return false;
    *size = n;
    *last = false;
    if (i == len)
        return true;
    if (arg[i] != ' ' || len - i - 1 != 4 || strncasecmp(arg + i + 1, "LAST", 4) != 0)
        return false;
    *last = true;
    return true;
}
