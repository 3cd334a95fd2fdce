/* The site hierarchy (bdr.conf(5), HIERARCHY): where a version this site
 * activated goes next, and which sites a request names. Queue rows only;
 * the senders do the work. Whose versions this site takes is trust.c's.
 *
 * A relay sends the manifest as it stored it, the bytes its origin signed
 * (bdr_library_manifest_read): nothing along the tree re-signs, so every
 * site below checks the origin's own signature. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bdr/error.h"

#include "daemon/daemon.h"

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

/* ---- destinations of push, distribute and remove ---- */

#define MAX_DESTS 1024 /* of one request; far above any fan-out of one site */

static int add_dest(struct bdrd *d, struct bdrd_dests *x, const char *name, size_t len,
		    struct bdr_diag *dg)
{
	char n[BDR_MAX_SITE_NAME + 1];

	if (!len || len > BDR_MAX_SITE_NAME)
		return bdr_diag_set(dg, -EINVAL, "'to' holds an empty or overlong site name");
	memcpy(n, name, len);
	n[len] = '\0';
	if (!bdr_config_peer(&d->cfg, n) || !strcmp(n, d->cfg.site.name))
		return bdr_diag_set(dg, -ENOENT, "no site named '%s'", n);
	for (size_t i = 0; i < x->n; i++)
		if (!strcmp(x->v[i], n))
			return bdr_diag_set(dg, -EINVAL, "'%s' is named twice", n);
	if (x->n == MAX_DESTS)
		return bdr_diag_set(dg, -EINVAL, "more than %d destinations", MAX_DESTS);
	memcpy(x->v[x->n++], n, len + 1);
	return 0;
}

/* "all": this site's children; without children, every peer it can reach
 * (one with an address) but its parent. */
static int add_all(struct bdrd *d, struct bdrd_dests *x, struct bdr_diag *dg)
{
	bool children = false;

	for (size_t i = 0; i < d->cfg.n_peers; i++)
		children |= d->cfg.peers[i].relation == BDR_REL_CHILD;
	for (size_t i = 0; i < d->cfg.n_peers; i++) {
		const struct bdr_peer_config *pc = &d->cfg.peers[i];
		bool pick = children ? pc->relation == BDR_REL_CHILD
				     : pc->address.n && pc->relation != BDR_REL_PARENT;
		int r = pick ? add_dest(d, x, pc->name, strlen(pc->name), dg) : 0;

		if (r < 0)
			return r;
	}
	if (!x->n)
		return bdr_diag_set(dg, -ENOENT, "'all' names no site: this site has no "
					   "children and no peer with an address");
	return 0;
}

int bdrd_dests_resolve(struct bdrd *d, const char *to, struct bdrd_dests *x, struct bdr_diag *dg)
{
	size_t n = d->cfg.n_peers < MAX_DESTS ? d->cfg.n_peers : MAX_DESTS;

	x->v = NULL, x->n = 0;
	if (!n)
		return bdr_diag_set(dg, -ENOENT, "no site named '%s'", to);
	if (!(x->v = calloc(n, sizeof(*x->v))))
		return bdr_diag_set(dg, -ENOMEM, "out of memory");
	if (!strcmp(to, "all"))
		return add_all(d, x, dg);
	for (const char *s = to;; s++) {
		const char *e = strchr(s, ',');
		size_t len = e ? (size_t)(e - s) : strlen(s);
		int r = x->n == n ? bdr_diag_set(dg, -EINVAL, "more destinations than peers")
				  : add_dest(d, x, s, len, dg);

		if (r < 0 || !e)
			return r;
		s = e;
	}
}

void bdrd_dests_free(struct bdrd_dests *x)
{
	free(x->v);
	x->v = NULL;
	x->n = 0;
}
