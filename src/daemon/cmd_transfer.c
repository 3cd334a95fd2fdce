/* cancel and retry: an operator's hand on one transfer (proto/control.md).
 * Neither touches the library: a cancelled transfer's receiver keeps the
 * chunks it verified, so a later retry or push resumes from them. */
#include <errno.h>
#include <inttypes.h>

#include "bdr/error.h"
#include "daemon/daemon.h"

#define BY_OPERATOR "cancelled by an operator"

/* The row of args' "transfer", or NULL after req was failed. */
static int get_row(struct bdrd *d, struct bdr_control_req *req, json_t *args,
		   struct bdr_db_transfer *t)
{
	json_int_t id;
	int rc;

	if (bdr_control_unpack(req, args, "{s:I}", "transfer", &id) < 0)
		return -EINVAL;
	rc = bdr_db_transfer_get(d->db, (int64_t)id, t);
	if (rc == -BDR_ENOTFOUND)
		bdr_control_fail(req, "unknown_transfer", "no transfer %" JSON_INTEGER_FORMAT, id);
	else if (rc < 0)
		bdr_control_fail(req, "internal", "reading the database: %s", bdr_db_errmsg(d->db));
	return rc;
}

static const char *state_name(enum bdr_db_xfer_state s)
{
	return s == BDR_XFER_DONE ? "activated" : bdr_db_xfer_state_name(s);
}

static void answer(struct bdrd *d, struct bdr_control_req *req, int64_t id)
{
	struct bdr_db_transfer t;

	if (bdr_db_transfer_get(d->db, id, &t) < 0) {
		bdr_control_fail(req, "internal", "reading the database: %s", bdr_db_errmsg(d->db));
		return;
	}
	bdrd_transfer_changed(d, &t);
	bdr_control_done(req, json_pack("{s:I, s:s}", "transfer", (json_int_t)id, "state",
					state_name(t.state)));
}

void bdrd_cmd_cancel(struct bdr_control_req *req, json_t *args, void *arg)
{
	struct bdrd *d = arg;
	struct bdr_db_transfer t;
	struct bdr_log_ctx ctx;
	struct send_xfer *tx;
	int rc;

	if (get_row(d, req, args, &t) < 0)
		return;
	ctx = (struct bdr_log_ctx){ .peer = t.peer, .package = t.package, .version = t.version };
	if (t.state == BDR_XFER_DONE || t.state == BDR_XFER_FAILED ||
	    t.state == BDR_XFER_CANCELLED) {
		bdr_control_fail(req, "bad_request", "transfer %" PRId64 " has ended (%s)", t.id,
				 state_name(t.state));
		return;
	}
	rc = bdr_db_transfer_set_state(d->db, t.id, BDR_XFER_CANCELLED, BY_OPERATOR,
				       bdrd_now_ns());
	if (rc < 0) {
		bdr_control_fail(req, rc == -ESTALE ? "bad_request" : "internal",
				 "transfer %" PRId64 ": %s", t.id, bdr_db_errmsg(d->db));
		return;
	}
	log_info(&ctx, "cancel", "transfer %" PRId64 " cancelled by an operator (was %s)", t.id,
		 state_name(t.state));
	if ((tx = sender_find(d, t.id)))
		sender_cancel(tx, BY_OPERATOR);
	answer(d, req, t.id);
	bdrd_kick(d);
}

void bdrd_cmd_retry(struct bdr_control_req *req, json_t *args, void *arg)
{
	struct bdrd *d = arg;
	struct bdr_db_transfer t;
	struct bdr_log_ctx ctx;
	int64_t now = bdrd_now_ns(), id = 0;
	int rc = 0;

	if (get_row(d, req, args, &t) < 0)
		return;
	ctx = (struct bdr_log_ctx){ .peer = t.peer, .package = t.package, .version = t.version };
	switch (t.state) {
	case BDR_XFER_DONE:
	case BDR_XFER_SENDING:
		bdr_control_fail(req, "bad_request", "transfer %" PRId64 " is %s: nothing to retry",
				 t.id, state_name(t.state));
		return;
	case BDR_XFER_FAILED:
	case BDR_XFER_CANCELLED:
		/* Queued afresh: attempts and error cleared; a newer version
		 * queued meanwhile supersedes it at once. */
		rc = bdr_db_transfer_add(d->db, t.package, t.version, t.peer, t.priority, now,
					 t.bytes_total, &id, NULL);
		break;
	case BDR_XFER_QUEUED:
	case BDR_XFER_PAUSED:
		/* Waiting for a retry time: due now (a window or a slot may
		 * still hold it; status says which). */
		id = t.id;
		t.next_attempt_ns = now;
		rc = bdr_db_transfer_update(d->db, &t);
		break;
	}
	if (rc < 0) {
		bdr_control_fail(req, "internal", "transfer %" PRId64 ": %s", t.id,
				 bdr_db_errmsg(d->db));
		return;
	}
	log_info(&ctx, "retry", "transfer %" PRId64 " queued again by an operator (was %s)", t.id,
		 state_name(t.state));
	answer(d, req, id);
	bdrd_kick(d);
}
