/* smtp_session.h - one SMTP conversation per connection: reads bounded command lines, runs them
 * through the command table, reads DATA through smtp_data, hands the message to the disk threads
 * and answers only after it is durable. Replies come only from the catalog. */
#ifndef POSTERN_SMTP_SESSION_H
#define POSTERN_SMTP_SESSION_H

#include <stdbool.h>
#include <sys/socket.h>

#include <event2/util.h>

struct server;
struct session;

/* What a listener is for: MX (port 25 role), submission (587: STARTTLS, then AUTH), or
 * implicit-TLS submission (465, RFC 8314). */
enum listen_role { ROLE_MX, ROLE_SUBMISSION, ROLE_SMTPS };

/* Takes over an accepted socket: checks connection limits, sends the greeting (or 421/521). */
void session_start(struct server *srv, evutil_socket_t fd, const struct sockaddr *peer, int peerlen,
                   enum listen_role role);

struct bufferevent;
/* The same over an existing bufferevent (a socket, TLS, or an in-memory pair for fuzzing);
 * the session owns bev from now on. */
void session_attach(struct server *srv, struct bufferevent *bev, const struct sockaddr *peer, int peerlen,
                    enum listen_role role);

/* Server shutdown: idle sessions get 421 4.3.2 now; busy ones when their transaction ends,
 * or now when force is set (the grace time is over). Sessions waiting on the disk always finish. */
void session_shutdown_all(struct server *srv, bool force);

#endif
