/* What strangers and peers may hold of the daemon, apart from the loop that
 * enforces it. Pure: no loop, no I/O, no clock of its own.
 *
 * Unauthenticated connections (bdr.conf(5), max_unauth_connections,
 * max_unauth_per_address). A connection that has not completed its
 * handshake is a stranger's: it has its own pool, apart from
 * max_connections, and leaves it once the peer's AUTH verifies. A new
 * connection is always taken in; to make room, one already in the pool is
 * closed: the oldest from the new connection's own address once that
 * address has its share, else, when the pool is full, the oldest from the
 * address that holds the most. So a flood that opens silent connections
 * and holds them keeps nothing: each one it opens pushes out its own
 * oldest, and a pinned peer's connection, new, is the last to go; the
 * flood would have to open connections faster than the peer completes a
 * handshake (one round trip) from at least as many addresses. Refusing the
 * new connection instead would let a flood hold every slot for as long as
 * the handshake deadline and lock the peer out for good.
 *
 * A peer's memory budget (peer_memory): every buffer held on a peer's
 * behalf (its connections' channel buffers, the manifests of its offers,
 * their rebuild plans, the chunks waiting to be stored) is taken from its
 * budget before it is allocated, and given back when freed. */
#ifndef BDR_DAEMON_GUARD_H
#define BDR_DAEMON_GUARD_H

#include <stddef.h>
#include <stdint.h>

/* One unauthenticated connection: its source address (no port), when it
 * was accepted (any clock that only grows), and the caller's handle. */
struct bdr_unauth {
	const char *src;
	int64_t since;
	void *conn;
};

/* Before a connection from src joins the n of v: -1 if it fits, else the
 * index in v of the one to close first (the caller closes it and asks
 * again, until -1: a limit lowered by a reload sheds the excess). v is
 * the caller's scratch: it comes back sorted. max_total and max_per_src
 * are at least 1. O(n log n). */
long bdr_guard_victim(struct bdr_unauth *v, size_t n, const char *src, unsigned max_total,
		      unsigned max_per_src);

/* Takes n bytes from a budget of limit bytes of which *used are taken: 0,
 * or -ENOBUFS (nothing taken) if they are not there. */
int bdr_budget_take(uint64_t *used, uint64_t limit, uint64_t n);
/* Gives n bytes back (never below zero). */
void bdr_budget_give(uint64_t *used, uint64_t n);

#endif
