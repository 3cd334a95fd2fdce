/* History: transfer and received rows that ended (activated, failed,
 * cancelled) are kept [limits] history_days for status and metrics, then
 * pruned, so the site database and every status answer stay the size of
 * recent work rather than of every push ever made. What peers hold, the
 * roll-up of children and the queue are other tables and are never pruned
 * here. */
#include <inttypes.h>

#include "daemon/daemon.h"

#define NS_PER_S 1000000000ll
#define PRUNE_EVERY_NS (3600 * NS_PER_S)

void bdrd_history_tick(struct bdrd *d)
{
	int64_t now = bdrd_now_ns();
	uint64_t removed = 0;
	int rc;

	if (d->history_pruned_ns && now - d->history_pruned_ns < PRUNE_EVERY_NS)
		return;
	d->history_pruned_ns = now;
	rc = bdr_db_history_prune(d->db, now - (int64_t)d->cfg.limits.history_days * 86400 * NS_PER_S,
				  &removed);
	if (rc < 0)
		bdr_log_err(BDR_LOG_WARN, NULL, rc, "history", "pruning ended transfers: %s",
			    bdr_db_errmsg(d->db));
	else if (removed)
		log_info(NULL, "history", "pruned %" PRIu64 " transfers that ended over %u days ago",
			 removed, d->cfg.limits.history_days);
}
