/* The site hierarchy (bdr.conf(5), HIERARCHY): whose pushes this site
 * takes, and where a version it activated goes next. Decisions and queue
 * rows only; the receiver and the senders do the work. */
#include <inttypes.h>
#include <stdio.h>

#include "daemon/daemon.h"

enum bdrd_offer_trust bdrd_hier_offer(const struct bdr_config *cfg, const char *peer, char *why,
				      size_t n)
{
	const struct bdr_peer_config *p = bdr_config_peer(cfg, peer);
	const struct bdr_peer_config *parent = bdr_config_parent(cfg);

	if (!p) {
		snprintf(why, n, "%s is not a configured peer", peer);
		return BDRD_OFFER_REFUSE;
	}
	if (parent && parent != p) {
		snprintf(why, n, "only this site's parent, %s, may send it packages; %s is its %s",
			 parent->name, peer, p->relation == BDR_REL_CHILD ? "child" : "peer");
		return BDRD_OFFER_REFUSE;
	}
	if (p->relation == BDR_REL_CHILD) {
		snprintf(why, n, "%s is this site's child, which may not send it packages", peer);
		return BDRD_OFFER_REFUSE;
	}
	why[0] = '\0';
	/* The parent relays what its own parent sent: signed by their origin. */
	return parent ? BDRD_OFFER_ANY_ORIGIN : BDRD_OFFER_PEER_SIGNED;
}

/* On the loop thread's handle, as bdrctl push queues at the top: the row
 * is what makes the relay survive a restart of this site. */
static void relay_to(struct bdrd *d, const char *child, const char *package, uint64_t version,
		     uint64_t bytes)
{
	struct bdr_log_ctx ctx = { .peer = child, .package = package, .version = version };
	uint32_t superseded = 0;
	int64_t id = 0;
	int r = bdr_db_transfer_add(d->db, package, version, child, BDR_PRIO_MEDIUM, bdrd_now_ns(),
				    bytes, &id, &superseded);

	if (r < 0) {
		bdr_log_err(BDR_LOG_ERROR, &ctx, r, "relay", "cannot queue the relay: %s",
			    bdr_db_errmsg(d->db));
		return;
	}
	log_info(&ctx, "relay", "queued transfer %" PRId64 " to child %s%s", id, child,
		 superseded ? " (superseding older versions)" : "");
}

void bdrd_hier_relay(struct bdrd *d, const char *package, uint64_t version, uint64_t bytes)
{
	unsigned n = 0;

	if (d->cfg.site.role == BDR_ROLE_DP)
		return;
	for (size_t i = 0; i < d->cfg.n_peers; i++)
		if (d->cfg.peers[i].relation == BDR_REL_CHILD) {
			relay_to(d, d->cfg.peers[i].name, package, version, bytes);
			n++;
		}
	if (n)
		bdrd_kick(d);
}
