/* conn_count.h - open connections and attempt rates per key: per client address for
 * max_connections_per_ip and max_connection_rate_per_ip, per user for max_recipient_rate_per_user.
 * Constant time per connect and disconnect however many are open: walking every session instead
 * cost about 0.2 ms per accept with 10,000 connections open. Loop thread only. */
#ifndef POSTERN_CONN_COUNT_H
#define POSTERN_CONN_COUNT_H

#include <stdbool.h>
#include <stddef.h>

struct conn_counts;

/* window: the seconds an attempt counts for (conn_rate_take). */
struct conn_counts *conn_counts_new(double window);
void conn_counts_free(struct conn_counts *c);

/* Connections counted for ip now (0 when none). */
unsigned conn_counts_get(const struct conn_counts *c, const char *ip);

/* One more for ip, unless it has limit already; false (nothing counted) then, or out of memory. */
bool conn_counts_add(struct conn_counts *c, const char *ip, unsigned limit);

/* One less for ip (which conn_counts_add counted); its entry goes at zero (unless its connection
 * rate is being counted: then with the next sweep after its minute). */
void conn_counts_remove(struct conn_counts *c, const char *ip);

/* Counts one attempt for key ip at monotonic time now in its current window (one that starts
 * with its first attempt and lasts the table's window); returns the attempts in it so far, this
 * one included (0: out of memory, not counted). At most once a window the entries idle for a
 * window are dropped. */
unsigned conn_rate_take(struct conn_counts *c, const char *ip, double now);

/* conn_rate_take, and true while the count is within limit (the attempts refused count too: a
 * client that keeps hammering stays refused until its window is over). */
bool conn_rate_allow(struct conn_counts *c, const char *ip, unsigned limit, double now);

#endif
