/* next_hop.c - parses next-hop texts (see next_hop.h). */
#include "next_hop.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#include "address.h"

/* Splits text into host and the text after ':' (NULL when no port), brackets removed; bracket
 * tells whether the host was in brackets. False when the text is malformed or too long. */
static bool split_host_port(const char *text, char *host, size_t hostsz, const char **port, bool *bracket)
{
    *bracket = text[0] == '[';
    *port = NULL;
    if (*bracket) {
        const char *end = strchr(text, ']');
        if (!end || (size_t)(end - text - 1) >= hostsz || (end[1] && end[1] != ':'))
            return false;
        snprintf(host, hostsz, "%.*s", (int)(end - text - 1), text + 1);
        *port = end[1] ? end + 2 : NULL;
        return true;
    }
    const char *colon = strchr(text, ':');
    size_t len = colon ? (size_t)(colon - text) : strlen(text);
    if (len >= hostsz)
        return false;
    snprintf(host, hostsz, "%.*s", (int)len, text);
    *port = colon ? colon + 1 : NULL;
    return true;
}

/* "1".."65535", digits only. */
static bool parse_port(const char *text, unsigned *port)
{
    char *end;
    if (*text < '0' || *text > '9')
        return false;
    unsigned long p = strtoul(text, &end, 10);
    if (*end || p < 1 || p > 65535)
        return false;
    *port = (unsigned)p;
    return true;
}

/* "lmtp:unix:/path": the socket's absolute path, short enough for sockaddr_un. */
static bool parse_socket_path(const char *path, struct next_hop *hop)
{
    if (path[0] != '/' || strlen(path) >= sizeof((struct sockaddr_un *)0)->sun_path || strlen(path) >= sizeof hop->route)
        return false;
    snprintf(hop->route, sizeof hop->route, "%s", path);
    hop->unix_socket = true;
    return true;
}

bool next_hop_text_is_lmtp(const char *text)
{
    return strncasecmp(text, "lmtp:", 5) == 0;
}

bool next_hop_parse(const char *text, unsigned default_port, struct next_hop *hop)
{
    char host[ADDR_DOMAIN_MAX + 8];
    const char *port, *full = text;
    bool bracket, utf8, lmtp = next_hop_text_is_lmtp(text);
    memset(hop, 0, sizeof *hop);
    if (lmtp) {
        text += 5;
        default_port = LMTP_PORT;
        if (strncasecmp(text, "unix:", 5) == 0) {
            if (strlen(full) > NEXT_HOP_TEXT_MAX || !parse_socket_path(text + 5, hop))
                return false;
            snprintf(hop->name, sizeof hop->name, "%s", full);
            hop->lmtp = hop->configured = true;
            return true;
        }
    }
    if (strlen(full) > NEXT_HOP_TEXT_MAX || !split_host_port(text, host, sizeof host, &port, &bracket))
        return false;
    hop->port = default_port;
    if (port && !parse_port(port, &hop->port))
        return false;
    const char *ip6 = strncasecmp(host, "IPv6:", 5) == 0 ? host + 5 : host;
    struct in_addr a4;
    struct in6_addr a6;
    if (bracket && inet_pton(AF_INET, host, &a4) == 1)
        snprintf(hop->route, sizeof hop->route, "[%s]", host);
    else if (bracket && inet_pton(AF_INET6, ip6, &a6) == 1)
        snprintf(hop->route, sizeof hop->route, "[IPv6:%s]", ip6);
    else if (address_parse_domain(host, strlen(host), &utf8) == ADDR_OK)
        snprintf(hop->route, sizeof hop->route, "%s", host);
    else
        return false;
    snprintf(hop->name, sizeof hop->name, "%s", full);
    hop->mx = !bracket && !lmtp; /* an LMTP server is a host, never a domain's exchangers */
    hop->lmtp = lmtp;
    hop->configured = true;
    return true;
}

void next_hop_domain(const char *domain, unsigned port, struct next_hop *hop)
{
    memset(hop, 0, sizeof *hop);
    snprintf(hop->name, sizeof hop->name, "%s", domain);
    snprintf(hop->route, sizeof hop->route, "%s", domain);
    hop->port = port;
    hop->mx = true;
}
