/* The sender's decisions, apart from the loop that carries them out: which
 * queued push may start now and on which address, whether a running one
 * may go on, and what a failed attempt leads to. Pure: no loop, no I/O, no
 * clock of its own (every call takes now, in ns of CLOCK_REALTIME, read in
 * the process's local zone by the schedule), so tests drive it through a
 * week with a fake clock.
 *
 * The model (bdr.conf(5)): a destination's addresses are tried in order.
 * A push starts on the first address, from the one its failures have
 * reached, whose schedule admits its priority now, while the destination
 * has fewer than max_transfers_per_peer pushes running and the site fewer
 * than max_transfers. A running push pauses when its address's window
 * closes to its priority. A failed attempt is retried on the same address
 * after retry_delay_s, up to `retries` failed attempts in a row; then the
 * next address is tried at once; after the last address, the push fails.
 * An attempt that sent chunks was not in vain: the count starts again. A
 * stopping daemon's cut is no failure. */
#ifndef BDR_DAEMON_POLICY_H
#define BDR_DAEMON_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include "bdr/db.h"
#include "daemon/config.h"

enum bdr_pick_kind {
	BDR_PICK_START,      /* start now on address addr */
	BDR_PICK_WINDOW,     /* no address from addr on admits the priority; at: when one opens (INT64_MAX: not within a week) */
	BDR_PICK_SLOT_PEER,  /* max_transfers_per_peer pushes run to this destination */
	BDR_PICK_SLOT_ALL,   /* max_transfers pushes run */
	BDR_PICK_NO_ADDRESS, /* the destination has no address left to try */
};

struct bdr_pick {
	enum bdr_pick_kind kind;
	unsigned addr;
	int64_t at;
};

/* What a push of prio, whose failures reached address from, may do now. */
void bdr_policy_pick(const struct bdr_peer_config *pc, const struct bdr_config_limits *l,
		     unsigned from, enum bdr_db_priority prio, unsigned peer_running,
		     unsigned all_running, int64_t now, struct bdr_pick *out);

/* Whether a push of prio running on address a may go on at now. */
bool bdr_policy_may_run(const struct bdr_config_address *a, enum bdr_db_priority prio, int64_t now);

/* A failed attempt of a push on address addr (of naddr), after attempts
 * failures in a row there. */
struct bdr_failure {
	enum bdr_db_xfer_state state; /* QUEUED, or FAILED when no address is left */
	uint32_t attempts;            /* failures in a row on address */
	uint32_t address;             /* where the next attempt goes */
	int64_t next_attempt_ns;
	bool moved;                   /* the next attempt uses the next address */
};
void bdr_policy_failure(const struct bdr_config_limits *l, unsigned naddr, uint32_t addr,
			uint32_t attempts, bool progressed, bool stopping, int64_t now,
			struct bdr_failure *out);

#endif
