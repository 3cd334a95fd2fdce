/* The sender's decisions (policy.h). */
#include "daemon/policy.h"
#include "daemon/schedule.h"

void bdr_policy_pick(const struct bdr_peer_config *pc, const struct bdr_config_limits *l,
		     unsigned from, enum bdr_db_priority prio, unsigned peer_running,
		     unsigned all_running, int64_t now, struct bdr_pick *out)
{
	int64_t first = INT64_MAX;

	*out = (struct bdr_pick){ .kind = BDR_PICK_NO_ADDRESS };
	if (from >= pc->address.n)
		return;
	/* The limits before the windows: a status that says "waiting for a
	 * slot" is the truer answer while both hold. */
	if (peer_running >= l->max_transfers_per_peer) {
		out->kind = BDR_PICK_SLOT_PEER;
		return;
	}
	if (all_running >= l->max_transfers) {
		out->kind = BDR_PICK_SLOT_ALL;
		return;
	}
	for (unsigned i = from; i < pc->address.n; i++) {
		int64_t at = bdr_schedule_next_open(&pc->address.v[i].schedule, prio, now);

		if (at <= now) {
			*out = (struct bdr_pick){ .kind = BDR_PICK_START, .addr = i, .at = now };
			return;
		}
		if (at < first)
			first = at;
	}
	*out = (struct bdr_pick){ .kind = BDR_PICK_WINDOW, .addr = from, .at = first };
}

bool bdr_policy_may_run(const struct bdr_config_address *a, enum bdr_db_priority prio, int64_t now)
{
	bool open = false;

	if (a)
		bdr_schedule_next_change(&a->schedule, prio, now, &open);
	return open;
}

void bdr_policy_failure(const struct bdr_config_limits *l, unsigned naddr, uint32_t addr,
			uint32_t attempts, bool progressed, bool stopping, int64_t now,
			struct bdr_failure *out)
{
	*out = (struct bdr_failure){ .state = BDR_XFER_QUEUED, .attempts = attempts,
				     .address = addr, .next_attempt_ns = now };
	if (stopping)
		return;
	out->attempts = progressed ? 1 : attempts + 1;
	if (out->attempts <= l->retries) {
		out->next_attempt_ns = now + (int64_t)l->retry_delay_s * 1000000000ll;
		return;
	}
	/* This address had its retries: the next one, at once. */
	out->attempts = 0;
	out->address = addr + 1;
	out->moved = true;
	if (out->address >= naddr)
		out->state = BDR_XFER_FAILED;
}
