/* cidr.c - network prefix parsing and matching; IPv4-mapped IPv6 clients match IPv4 networks. */
#include "cidr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool cidr_parse(const char *text, struct cidr *out)
{
    char buf[64];
    size_t n = strlen(text);
    if (n == 0 || n >= sizeof buf)
        return false;
    memcpy(buf, text, n + 1);
    char *slash = strchr(buf, '/');
    if (slash)
        *slash = '\0';
    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET, buf, out->addr) == 1) {
        out->family = AF_INET;
        out->prefix = 32;
    } else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
        out->family = AF_INET6;
        out->prefix = 128;
    } else {
        return false;
    }
    if (slash) {
        char *end;
        const char *p = slash + 1;
        if (*p < '0' || *p > '9')
            return false;
        unsigned long bits = strtoul(p, &end, 10);
        if (*end || bits > out->prefix)
            return false;
        out->prefix = (unsigned)bits;
    }
    return true;
}

bool cidr_host_bits_set(const struct cidr *net)
{
    unsigned total = net->family == AF_INET ? 32 : 128;
    for (unsigned bit = net->prefix; bit < total; bit++)
        if (net->addr[bit / 8] & (0x80 >> (bit % 8)))
            return true;
    return false;
}

void cidr_network_text(const struct cidr *net, char *out, size_t outsz)
{
    unsigned char a[16];
    unsigned total = net->family == AF_INET ? 32 : 128;
    memcpy(a, net->addr, sizeof a);
    for (unsigned bit = net->prefix; bit < total; bit++)
        a[bit / 8] &= (unsigned char)~(0x80 >> (bit % 8));
    char ip[INET6_ADDRSTRLEN];
    if (!inet_ntop(net->family, a, ip, sizeof ip))
        snprintf(ip, sizeof ip, "?");
    snprintf(out, outsz, "%s/%u", ip, net->prefix);
}

static bool prefix_equal(const unsigned char *a, const unsigned char *b, unsigned bits)
{
    unsigned bytes = bits / 8, rest = bits % 8;
    if (memcmp(a, b, bytes) != 0)
        return false;
    if (rest == 0)
        return true;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a[bytes] & mask) == (b[bytes] & mask);
}

int cidr_address(const struct sockaddr *addr, const unsigned char **bytes)
{
    if (addr->sa_family == AF_INET) {
        *bytes = (const unsigned char *)&((const struct sockaddr_in *)(const void *)addr)->sin_addr;
        return AF_INET;
    }
    if (addr->sa_family != AF_INET6)
        return 0;
    const struct in6_addr *a6 = &((const struct sockaddr_in6 *)(const void *)addr)->sin6_addr;
    bool mapped = IN6_IS_ADDR_V4MAPPED(a6);
    *bytes = a6->s6_addr + (mapped ? 12 : 0);
    return mapped ? AF_INET : AF_INET6;
}

bool cidr_match(const struct cidr *net, const struct sockaddr *addr)
{
    const unsigned char *bytes;
    int family = cidr_address(addr, &bytes);
    return family != 0 && family == net->family && prefix_equal(bytes, net->addr, net->prefix);
}

bool hostport_parse(const char *text, struct sockaddr_storage *ss, socklen_t *sslen)
{
    char host[64];
    const char *port;
    size_t n = strlen(text);
    memset(ss, 0, sizeof *ss);
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':' || (size_t)(close - text - 1) >= sizeof host)
            return false;
        memcpy(host, text + 1, (size_t)(close - text - 1));
        host[close - text - 1] = '\0';
        port = close + 2;
    } else {
        const char *colon = strrchr(text, ':');
        if (!colon || (size_t)(colon - text) >= sizeof host || n == 0)
            return false;
        memcpy(host, text, (size_t)(colon - text));
        host[colon - text] = '\0';
        port = colon + 1;
    }
    char *end;
    if (*port < '0' || *port > '9')
        return false;
    unsigned long p = strtoul(port, &end, 10);
    if (*end || p == 0 || p > 65535)
        return false;
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    if (text[0] != '[' && inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((unsigned short)p);
        *sslen = sizeof *s4;
        return true;
    }
    if (text[0] == '[' && inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((unsigned short)p);
        *sslen = sizeof *s6;
        return true;
    }
    return false;
}
