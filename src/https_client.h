/* https_client.h - an HTTPS connection made with libevent's evhttp over an OpenSSL bufferevent,
 * for the few HTTP requests Postern makes itself (MTA-STS policies, TLS reports): SNI, and the
 * certificate checked against the host name with the outbound trust store (the handshake fails
 * otherwise). No retry. Loop thread. */
#ifndef POSTERN_HTTPS_CLIENT_H
#define POSTERN_HTTPS_CLIENT_H

#include <openssl/ssl.h>
#include <sys/socket.h>

struct event_base;
struct evhttp_connection;

/* A connection to addr (its port given) for host, with every request given at most timeout
 * seconds (tv); *ssl is its TLS object (owned by the connection: for SSL_get_verify_result after a
 * failure). ip: addr as text, filled. NULL when out of memory or addr is no IP address. */
struct evhttp_connection *https_connect(struct event_base *base, SSL_CTX *tls, const char *host,
                                        const struct sockaddr_storage *addr, unsigned port,
                                        const struct timeval *timeout, char *ip, size_t ipsz, SSL **ssl);

#endif
