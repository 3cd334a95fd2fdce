/* Removing a package down the hierarchy (bdrctl remove; proto/wire.md,
 * REMOVE). Every removal is a row of the removals table, written before
 * anything is acknowledged: one for this site (peer = our own name),
 * carried out on a worker and then passed on to each child; or one for a
 * site below, sent as a REMOVE on a connection to it and marked done when
 * the PONG of the PING that follows comes back (the peer has written its
 * own row by then: it handles messages in order). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bdr/error.h"
#include "bdr/library.h"
#include "daemon/daemon.h"
#include "daemon/trust.h"

#define ROUND_MAX 64              /* REMOVEs per round */
#define COOKIE_TAG (3ull << 62)   /* report rounds use 1 << 63 alone */

typedef char pkg_name[BDR_MAX_PACKAGE_NAME + 1];

/* Pending transfers of package (to peer, or to anyone with NULL) end:
 * the version they carry is being removed. */
static void cancel_transfers(struct bdrd *d, const char *package, const char *peer)
{
	struct bdr_db_transfer *t;
	size_t n;

	if (bdr_db_transfer_list(d->db, package, &t, &n) < 0)
		return;
	for (size_t i = 0; i < n; i++)
		if ((!peer || !strcmp(t[i].peer, peer)) &&
		    (t[i].state == BDR_XFER_QUEUED || t[i].state == BDR_XFER_PAUSED ||
		     t[i].state == BDR_XFER_SENDING))
			bdr_db_transfer_set_state(d->db, t[i].id, BDR_XFER_CANCELLED,
						  "the package is being removed", bdrd_now_ns());
	free(t);
}

int bdrd_remove_queue(struct bdrd *d, const char *package, const char *peer)
{
	struct bdr_log_ctx ctx = { .peer = peer, .package = package };
	bool here = !strcmp(peer, d->cfg.site.name);
	int r = bdr_db_removal_add(d->db, package, peer, bdrd_now_ns());

	if (r < 0) {
		bdr_log_err(BDR_LOG_ERROR, &ctx, r, "remove", "cannot queue the removal: %s",
			    bdr_db_errmsg(d->db));
		return r;
	}
	cancel_transfers(d, package, here ? NULL : peer);
	if (!here)
		bdr_db_forget_package(d->db, package, peer);
	log_info(&ctx, "remove", "queued the removal of the package %s", here ? "here" : "there");
	return 0;
}

/* ---- here: on a worker, then down to the children ---- */

struct rm_job {
	struct bdrd_job job;
	pkg_name package;
	struct bdr_diag dg;
};

static int rm_run(struct bdrd_job *job)
{
	struct rm_job *j = container_of(job, struct rm_job, job);
	int r = bdr_library_remove(job->d->lib, j->package, &j->dg);

	return r == -BDR_ENOTFOUND ? 0 : r;
}

static void rm_done(struct bdrd_job *job, int rc)
{
	struct rm_job *j = container_of(job, struct rm_job, job);
	struct bdrd *d = job->d;
	struct bdr_log_ctx ctx = { .package = j->package };

	d->rm_busy = false;
	if (rc < 0) {
		bdr_log_err(BDR_LOG_ERROR, &ctx, rc, "remove", "%s", j->dg.msg);
		bdr_db_removal_set(d->db, j->package, d->cfg.site.name, BDR_RM_FAILED, j->dg.msg,
				   bdrd_now_ns());
	} else {
		log_info(&ctx, "removed", "the package is no longer in the library");
		bdr_db_forget_package(d->db, j->package, NULL);
		bdr_db_removal_set(d->db, j->package, d->cfg.site.name, BDR_RM_DONE, NULL,
				   bdrd_now_ns());
		for (size_t i = 0; d->cfg.site.role == BDR_ROLE_SITE && i < d->cfg.n_peers; i++)
			if (d->cfg.peers[i].relation == BDR_REL_CHILD)
				bdrd_remove_queue(d, j->package, d->cfg.peers[i].name);
	}
	free(j);
}

static void start_local(struct bdrd *d)
{
	pkg_name *v;
	struct rm_job *j;
	size_t n;

	if (d->rm_busy || bdr_db_removal_pending(d->db, d->cfg.site.name, 1, &v, &n) < 0 || !n)
		return;
	if ((j = calloc(1, sizeof(*j)))) {
		bdrd_strcpy(j->package, sizeof(j->package), v[0]);
		d->rm_busy = true;
		bdrd_work(d, &j->job, true, rm_run, rm_done);
	}
	free(v);
}

/* ---- below: REMOVE rounds ---- */

static void send_round(struct bdrd *d, struct conn *c, struct bdrd_peer *bp)
{
	int64_t now = bdrd_now_ns();
	struct bdr_msg m;
	pkg_name *v;
	size_t n;

	if (bdr_db_removal_pending(d->db, bp->name, ROUND_MAX, &v, &n) < 0 || !n)
		return;
	for (size_t i = 0; i < n; i++) {
		m = (struct bdr_msg){ .type = BDR_MSG_REMOVE };
		bdrd_strcpy(m.remove.package, sizeof(m.remove.package), v[i]);
		if (conn_send(c, &m) < 0) {
			free(v);
			return;
		}
	}
	free(v);
	m = (struct bdr_msg){ .type = BDR_MSG_PING, .ping.cookie = (uint64_t)now | COOKIE_TAG };
	if (conn_send(c, &m) == 0)
		bp->rm_round_ns = now;
}

static void tick_peer(struct bdrd *d, const struct bdr_peer_config *pc)
{
	struct bdrd_peer *bp = bdrd_peer_get(d, pc->name);
	int64_t now = bdrd_now_ns();
	struct conn *c;
	pkg_name *v;
	size_t n;

	if (!bp || bp->rm_round_ns || bdr_db_removal_pending(d->db, pc->name, 1, &v, &n) < 0)
		return;
	free(v);
	if (!n)
		return;
	if ((c = conn_find(d, pc->name)) && (conn_caps(c) & BDR_CAP_REPORT)) {
		send_round(d, c, bp);
	} else if (!c && pc->address.n &&
		   now - bp->rm_tried_ns >= (int64_t)d->cfg.limits.retry_delay_s * 1000000000ll) {
		/* A connection of its own; the round goes once it is ready. */
		bp->rm_tried_ns = now;
		conn_connect(d, pc->name, NULL, 0, BDR_PRIO_HIGH);
	}
}

void bdrd_remove_tick(struct bdrd *d)
{
	if (d->stopping)
		return;
	start_local(d);
	for (size_t i = 0; i < d->cfg.n_peers; i++)
		tick_peer(d, &d->cfg.peers[i]);
}

void bdrd_remove_on_ready(struct conn *c)
{
	struct bdrd *d = conn_daemon(c);
	struct bdrd_peer *bp = bdrd_peer_get(d, conn_peer(c));

	if (bp && !bp->rm_round_ns && (conn_caps(c) & BDR_CAP_REPORT))
		send_round(d, c, bp);
}

void bdrd_remove_on_pong(struct conn *c, uint64_t cookie)
{
	struct bdrd *d = conn_daemon(c);
	struct bdrd_peer *bp = bdrd_peer_get(d, conn_peer(c));
	struct bdr_log_ctx ctx = { .peer = conn_peer(c) };

	if ((cookie & COOKIE_TAG) != COOKIE_TAG || !bp || !bp->rm_round_ns ||
	    (int64_t)(cookie & ~COOKIE_TAG) != bp->rm_round_ns)
		return;
	if (bdr_db_removal_done_before(d->db, bp->name, bp->rm_round_ns, bdrd_now_ns()) < 0)
		bdr_log(BDR_LOG_WARN, &ctx, "remove", "cannot record the confirmed removals: %s",
			bdr_db_errmsg(d->db));
	else
		log_info(&ctx, "remove", "the site confirmed the removals sent to it");
	bp->rm_round_ns = 0;
	if (conn_idle_outgoing(c))
		conn_close(c, 0, "removals delivered");
}

void bdrd_remove_on_close(struct conn *c)
{
	struct bdrd_peer *bp = bdrd_peer_get(conn_daemon(c), conn_peer(c));

	if (bp)
		bp->rm_round_ns = 0; /* not confirmed: sent again */
}

/* Whether the peer may take package away (trust.h): one that may send it,
 * and, if it sends only its own packages, its origin. */
static int may_remove(struct bdrd *d, const char *peer, const char *package, char *why, size_t n)
{
	struct bdr_trust t;
	struct bdr_db_origin o;
	int r = bdr_trust_peer(&d->cfg, peer, package, &t, why, n);

	if (r < 0)
		return r;
	if ((r = bdr_db_origin_get(d->db, package, &o)) < 0 && r != -BDR_ENOTFOUND) {
		snprintf(why, n, "cannot read the package's origin: %s", bdr_db_errmsg(d->db));
		return -BDR_EDB;
	}
	return bdr_trust_remove(&t, r == 0 ? &o : NULL, package, why, n);
}

/* A REMOVE from a peer: only one that may send us the package may take it
 * away; the row is written before the PONG that follows goes back. A
 * refusal closes the connection with the reason, so the sender's round is
 * never confirmed (proto/wire.md, REMOVE). */
void bdrd_remove_on_msg(struct conn *c, const struct bdr_msg *m)
{
	struct bdrd *d = conn_daemon(c);
	struct bdr_log_ctx ctx = { .peer = conn_peer(c), .package = m->remove.package };
	char why[BDR_WIRE_TEXT_MAX];
	int r = may_remove(d, conn_peer(c), m->remove.package, why, sizeof(why));

	if (r < 0) {
		bdr_log(BDR_LOG_WARN, &ctx, "refused", "removal refused: %s", why);
		conn_close(c, r, why);
		return;
	}
	bdr_log(BDR_LOG_INFO, &ctx, "remove", "asked to remove the package");
	/* Not recorded: no PONG may confirm it. */
	if (bdrd_remove_queue(d, m->remove.package, d->cfg.site.name) < 0)
		conn_close(c, -BDR_EDB, "cannot record the removal");
	else
		start_local(d);
}

/* ---- bdrctl remove ---- */

/* {package, from?}: without from, here and then at every child; with
 * from, at those sites (each passes it on to its own children). */
void bdrd_cmd_remove(struct bdr_control_req *req, json_t *args, void *arg)
{
	struct bdrd *d = arg;
	const char *pkg, *from = NULL;
	struct bdrd_dests x = { 0 };
	struct bdr_diag dg = { { 0 } };
	json_t *queued;
	int r = 0;

	if (bdr_control_unpack(req, args, "{s:s, s?s}", "package", &pkg, "from", &from) < 0)
		return;
	if (bdr_manifest_check_package(pkg, &dg) < 0) {
		bdr_control_fail(req, "invalid_package", "%s", dg.msg);
		return;
	}
	if (from && (r = bdrd_dests_resolve(d, from, &x, &dg)) < 0) {
		bdrd_dests_free(&x);
		bdr_control_fail(req, r == -ENOENT ? "unknown_site" : "bad_request", "%s", dg.msg);
		return;
	}
	if (!from && !bdrd_package_known(d, pkg)) {
		bdr_control_fail(req, "unknown_package", "no package named '%s' here (--from SITES "
				 "removes it from sites below that still hold it)", pkg);
		return;
	}
	queued = json_array();
	if (!from) {
		r = bdrd_remove_queue(d, pkg, d->cfg.site.name);
		json_array_append_new(queued, json_string(d->cfg.site.name));
	}
	for (size_t i = 0; r == 0 && i < x.n; i++) {
		r = bdrd_remove_queue(d, pkg, x.v[i]);
		json_array_append_new(queued, json_string(x.v[i]));
	}
	bdrd_dests_free(&x);
	if (r < 0) {
		json_decref(queued);
		bdr_control_fail(req, "internal", "queueing the removal: %s", bdr_db_errmsg(d->db));
		return;
	}
	bdr_control_done(req, json_pack("{s:s, s:o}", "package", pkg, "queued", queued));
	bdrd_remove_tick(d);
}
