/* cidr.h - parse "10.0.0.0/8", "::1/128", "127.0.0.1" and match socket addresses against them. Pure. */
#ifndef POSTERN_CIDR_H
#define POSTERN_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct cidr {
    int family;                /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    unsigned prefix;           /* bits */
};

/* Parses one network; false on bad syntax or a prefix too long for the family. */
bool cidr_parse(const char *text, struct cidr *out);

/* True when the address has bits set past the prefix ("10.0.0.1/8"): it then means the network
 * of its first prefix bits, which its writer rarely meant. */
bool cidr_host_bits_set(const struct cidr *net);

/* The network as text, host bits cleared ("10.0.0.0/8"). */
void cidr_network_text(const struct cidr *net, char *out, size_t outsz);

/* True when addr (AF_INET, AF_INET6 or v4-mapped v6) lies in net. */
bool cidr_match(const struct cidr *net, const struct sockaddr *addr);

/* The family and bytes of an address as matched: an IPv4-mapped IPv6 address is its IPv4 address
 * (AF_INET, 4 bytes), else AF_INET (4) or AF_INET6 (16); 0 for any other family. */
int cidr_address(const struct sockaddr *addr, const unsigned char **bytes);



#include <sys/socket.h>
/* Parses "127.0.0.1:2525" or "[::1]:2525" (IP literal and port 1..65535) into *ss. */
bool hostport_parse(const char *text, struct sockaddr_storage *ss, socklen_t *sslen);
#endif
