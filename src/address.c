/* address.c - RFC 5321 section 4.1.2 mailbox grammar, extended by RFC 6531 section 3.3 for UTF-8.
 * Limits: local part 64 octets, label 63, domain 255, path 256. Never reads past len; never
 * writes past the mailbox fields. Rejects malformed UTF-8 (overlongs, surrogates, > U+10FFFF). */
#include "address.h"
#include "idn.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

size_t utf8_sequence_length(const unsigned char *p, size_t avail)
{
    unsigned c = p[0];
    size_t n;
    unsigned min;
    unsigned cp;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2, min = 0x80, cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3, min = 0x800, cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4, min = 0x10000, cp = c & 0x07;
    } else {
        return 0;
    }
    if (avail < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

bool utf8_text_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        if (p[i] < 0x80) {
            if (p[i] < 0x20 || p[i] == 0x7f)
                return false;
            i++;
            continue;
        }
        size_t k = utf8_sequence_length(p + i, n - i);
        if (k == 0)
            return false;
        i += k;
    }
    return true;
}

void ascii_lower_copy(char *dst, const char *src, size_t dstsz)
{
    size_t i = 0;
    for (; src[i] && i + 1 < dstsz; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    dst[i] = '\0';
}

bool address_canonical(const char *s, size_t len, char *out, size_t outsz)
{
    struct mailbox mb;
    if (address_parse_mailbox(s, len, &mb) != ADDR_OK)
        return false;
    char buf[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2];
    snprintf(buf, sizeof buf, "%s@%s", mb.local, mb.domain);
    ascii_lower_copy(out, buf, outsz);
    return true;
}

/* RFC 5322 atext. */
static bool is_atext(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

static bool is_letdig(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Consumes one UTF-8 non-ASCII character at s[*i]; false when malformed. */
static bool take_utf8(const char *s, size_t len, size_t *i)
{
    size_t k = utf8_sequence_length((const unsigned char *)s + *i, len - *i);
    if (k == 0)
        return false;
    *i += k;
    return true;
}

enum addr_result address_parse_domain(const char *s, size_t len, bool *utf8)
{
    size_t i = 0;
    *utf8 = false;
    if (len == 0)
        return ADDR_ERR_SYNTAX;
    if (len > ADDR_DOMAIN_MAX)
        return ADDR_ERR_TOO_LONG;
    while (i < len) {
        size_t start = i;
        unsigned char last = 0;
        while (i < len && s[i] != '.') {
            unsigned char c = (unsigned char)s[i];
            if (c >= 0x80) {
                if (!take_utf8(s, len, &i))
                    return ADDR_ERR_UTF8;
                *utf8 = true;
                last = 'a';
                continue;
            }
            if (!is_letdig(c) && c != '-')
                return ADDR_ERR_SYNTAX;
            if (i == start && c == '-')
                return ADDR_ERR_SYNTAX;
            last = c;
            i++;
        }
        if (i == start || last == '-')
            return ADDR_ERR_SYNTAX; /* empty label or trailing hyphen */
        if (i - start > ADDR_LABEL_MAX)
            return ADDR_ERR_TOO_LONG;
        if (i < len) {
            i++; /* the dot */
            if (i == len)
                return ADDR_ERR_SYNTAX; /* trailing dot */
        }
    }
    return ADDR_OK;
}

/* IPv4-address-literal: four Snum (1-3 digits, 0..255) separated by dots; out gets the four octets. */
static bool parse_ipv4_literal(const char *s, size_t len, unsigned char *out)
{
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        unsigned v = 0;
        size_t digits = 0;
        while (i < len && s[i] >= '0' && s[i] <= '9' && digits < 4) {
            v = v * 10 + (unsigned)(s[i] - '0');
            i++, digits++;
        }
        if (digits == 0 || digits > 3 || v > 255)
            return false;
        out[part] = (unsigned char)v;
        if (part < 3) {
            if (i >= len || s[i] != '.')
                return false;
            i++;
        }
    }
    return i == len;
}

/* True when the address-literal body s[0..len) has the IPv4 or "IPv6:" form (a tag otherwise). */
static bool is_ip_literal_form(const char *s, size_t len)
{
    return (len > 0 && s[0] >= '0' && s[0] <= '9') || (len > 5 && strncasecmp(s, "IPv6:", 5) == 0);
}

/* The address of an IPv4 or "IPv6:" address-literal body s[0..len) (port 0) in ss and *sslen;
 * false when it is not a valid one. */
static bool parse_ip_literal(const char *s, size_t len, struct sockaddr_storage *ss, socklen_t *sslen)
{
    memset(ss, 0, sizeof *ss);
    if (len > 0 && s[0] >= '0' && s[0] <= '9') {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        s4->sin_family = AF_INET;
        *sslen = sizeof *s4;
        return parse_ipv4_literal(s, len, (unsigned char *)&s4->sin_addr);
    }
    char buf[64];
    if (len <= 5 || strncasecmp(s, "IPv6:", 5) != 0 || len - 5 >= sizeof buf || memchr(s + 5, '\0', len - 5))
        return false; /* a NUL would end the copy inet_pton reads, not the literal */
    memcpy(buf, s + 5, len - 5);
    buf[len - 5] = '\0';
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    s6->sin6_family = AF_INET6;
    *sslen = sizeof *s6;
    return inet_pton(AF_INET6, buf, &s6->sin6_addr) == 1;
}

/* address-literal body (between [ and ]): IPv4, "IPv6:" address, or General-address-literal. */
static bool valid_address_literal(const char *s, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    if (is_ip_literal_form(s, len))
        return parse_ip_literal(s, len, &ss, &sslen);
    /* General-address-literal = Standardized-tag ":" 1*dcontent */
    size_t i = 0;
    while (i < len && (is_letdig((unsigned char)s[i]) || s[i] == '-'))
        i++;
    if (i == 0 || s[i - 1] == '-' || i >= len || s[i] != ':' || i + 1 == len)
        return false;
    for (i++; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 33 || c > 126 || c == '[' || c == '\\' || c == ']')
            return false;
    }
    return true;
}

/* Parses the local part at s[0..len) into mb->local (unquoted). */
static enum addr_result parse_local(const char *s, size_t len, struct mailbox *mb)
{
    size_t out = 0;
    if (len == 0)
        return ADDR_ERR_SYNTAX;
    if (len > ADDR_LOCAL_MAX)
        return ADDR_ERR_TOO_LONG;
    if (s[0] == '"') {
        mb->quoted = true;
        if (len < 3 || s[len - 1] != '"')
            return ADDR_ERR_SYNTAX; /* also refuses the empty "" */
        for (size_t i = 1; i < len - 1;) {
            unsigned char c = (unsigned char)s[i];
            if (c == '\\') {
                if (i + 1 >= len - 1)
                    return ADDR_ERR_SYNTAX;
                c = (unsigned char)s[i + 1];
                if (c < 32 || c > 126)
                    return ADDR_ERR_SYNTAX;
                mb->local[out++] = (char)c;
                i += 2;
            } else if (c >= 0x80) {
                size_t k = utf8_sequence_length((const unsigned char *)s + i, len - 1 - i);
                if (k == 0)
                    return ADDR_ERR_UTF8;
                memcpy(mb->local + out, s + i, k);
                out += k, i += k;
                mb->utf8 = true;
            } else if (c >= 32 && c <= 126 && c != '"') {
                mb->local[out++] = (char)c;
                i++;
            } else {
                return ADDR_ERR_SYNTAX;
            }
        }
        mb->local[out] = '\0';
        return ADDR_OK;
    }
    /* Dot-string = Atom *("." Atom) */
    bool atom_empty = true;
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)s[i];
        if (c == '.') {
            if (atom_empty)
                return ADDR_ERR_SYNTAX;
            atom_empty = true;
            i++;
        } else if (c >= 0x80) {
            if (!take_utf8(s, len, &i))
                return ADDR_ERR_UTF8;
            mb->utf8 = true;
            atom_empty = false;
        } else if (is_atext(c)) {
            atom_empty = false;
            i++;
        } else {
            return ADDR_ERR_SYNTAX;
        }
    }
    if (atom_empty)
        return ADDR_ERR_SYNTAX;
    memcpy(mb->local, s, len);
    mb->local[len] = '\0';
    return ADDR_OK;
}

/* Finds the '@' that separates local part and domain: the first '@' outside a quoted string. */
static const char *find_at(const char *s, size_t len)
{
    bool in_quotes = false;
    for (size_t i = 0; i < len; i++) {
        if (in_quotes && s[i] == '\\') {
            i++;
        } else if (s[i] == '"') {
            in_quotes = !in_quotes;
        } else if (!in_quotes && s[i] == '@') {
            return s + i;
        }
    }
    return NULL;
}

enum addr_result address_parse_mailbox(const char *s, size_t len, struct mailbox *mb)
{
    memset(mb, 0, sizeof *mb);
    if (len + 2 > ADDR_PATH_MAX)
        return ADDR_ERR_TOO_LONG;
    const char *at = find_at(s, len);
    if (!at)
        return ADDR_ERR_SYNTAX;
    size_t llen = (size_t)(at - s);
    const char *d = at + 1;
    size_t dlen = len - llen - 1;
    enum addr_result r = parse_local(s, llen, mb);
    if (r != ADDR_OK)
        return r;
    if (dlen > 0 && d[0] == '[') {
        if (dlen < 3 || d[dlen - 1] != ']' || !valid_address_literal(d + 1, dlen - 2))
            return ADDR_ERR_SYNTAX;
        mb->literal = true;
    } else {
        bool utf8;
        r = address_parse_domain(d, dlen, &utf8);
        if (r != ADDR_OK)
            return r;
        mb->utf8 |= utf8;
    }
    char written[ADDR_DOMAIN_MAX + 1];
    memcpy(written, d, dlen);
    written[dlen] = '\0';
    if (mb->literal)
        ascii_lower_copy(mb->domain, written, sizeof mb->domain);
    else
        idn_canonical(written, mb->domain, sizeof mb->domain);
    memcpy(mb->addr, s, len);
    mb->addr[len] = '\0';
    return ADDR_OK;
}

/* Skips an A-d-l source route "@dom,@dom:" at s[*i]; returns false when malformed. */
static bool skip_source_route(const char *s, size_t len, size_t *i)
{
    for (;;) {
        if (*i >= len || s[*i] != '@')
            return false;
        size_t start = ++*i;
        while (*i < len && s[*i] != ',' && s[*i] != ':' && s[*i] != '>')
            ++*i;
        bool utf8;
        if (*i >= len || address_parse_domain(s + start, *i - start, &utf8) != ADDR_OK)
            return false;
        if (s[*i] == ':') {
            ++*i;
            return true;
        }
        if (s[*i] != ',')
            return false;
        ++*i;
    }
}

/* Finds the closing '>' of a path that starts at s[0] == '<', honouring quoted strings. */
static size_t find_close(const char *s, size_t len)
{
    bool in_quotes = false;
    for (size_t i = 1; i < len; i++) {
        if (in_quotes && s[i] == '\\')
            i++;
        else if (s[i] == '"')
            in_quotes = !in_quotes;
        else if (!in_quotes && s[i] == '>')
            return i;
    }
    return 0;
}

enum addr_result address_parse_path(const char *s, size_t len, struct mailbox *mb, size_t *consumed,
                                    bool allow_null, bool allow_postmaster)
{
    memset(mb, 0, sizeof *mb);
    if (len < 2 || s[0] != '<')
        return ADDR_ERR_SYNTAX;
    size_t close = find_close(s, len);
    if (close == 0)
        return ADDR_ERR_SYNTAX;
    if (close + 1 > ADDR_PATH_MAX)
        return ADDR_ERR_TOO_LONG;
    *consumed = close + 1;
    if (close == 1) {
        if (!allow_null)
            return ADDR_ERR_SYNTAX;
        mb->is_null = true;
        return ADDR_OK;
    }
    if (allow_postmaster && close == 11 && strncasecmp(s + 1, "postmaster", 10) == 0) {
        mb->is_postmaster = true;
        memcpy(mb->local, s + 1, 10);
        memcpy(mb->addr, s + 1, 10);
        return ADDR_OK;
    }
    size_t i = 1;
    if (s[1] == '@' && !skip_source_route(s, close, &i))
        return ADDR_ERR_SYNTAX;
    return address_parse_mailbox(s + i, close - i, mb);
}

bool address_literal_ip(const char *domain, struct sockaddr_storage *ss, socklen_t *sslen)
{
    size_t len = strlen(domain);
    return len >= 3 && domain[0] == '[' && domain[len - 1] == ']' && parse_ip_literal(domain + 1, len - 2, ss, sslen);
}
