/* https_client.c - see https_client.h. */
#include "https_client.h"

#include <arpa/inet.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>
#include <netinet/in.h>

struct evhttp_connection *https_connect(struct event_base *base, SSL_CTX *tls, const char *host,
                                        const struct sockaddr_storage *addr, unsigned port,
                                        const struct timeval *timeout, char *ip, size_t ipsz, SSL **ssl_out)
{
    const void *a = addr->ss_family == AF_INET ? (const void *)&((const struct sockaddr_in *)addr)->sin_addr
                                               : (const void *)&((const struct sockaddr_in6 *)addr)->sin6_addr;
    if ((addr->ss_family != AF_INET && addr->ss_family != AF_INET6) || !tls ||
        !inet_ntop(addr->ss_family, a, ip, (socklen_t)ipsz))
        return NULL;
    SSL *ssl = SSL_new(tls);
    if (!ssl)
        return NULL;
    SSL_set_tlsext_host_name(ssl, host);
    SSL_set1_host(ssl, host);
    SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
    struct bufferevent *bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                                             BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (!bev) {
        SSL_free(ssl);
        return NULL;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    struct evhttp_connection *conn = evhttp_connection_base_bufferevent_new(base, NULL, bev, ip, (unsigned short)port);
    if (!conn) {
        bufferevent_free(bev);
        return NULL;
    }
    evhttp_connection_set_timeout_tv(conn, timeout);
    evhttp_connection_set_retries(conn, 0);
    *ssl_out = ssl;
    return conn;
}
