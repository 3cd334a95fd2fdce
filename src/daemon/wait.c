/* The waiters of `push --wait` and `distribute --wait`: one control request
 * that is answered once every transfer it queued has ended, with progress
 * events meanwhile (proto/control.md). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "bdr/error.h"
#include "daemon/daemon.h"

#define PROGRESS_EVERY_NS (250 * 1000000ll)

struct bdrd_waiter {
	struct bdr_control_req *req; /* answered (and so freed) exactly once */
	size_t n, left;
	int64_t *transfer;  /* owned: n ids */
	bool *ended;        /* owned: n flags */
	uint64_t *waiting;  /* owned: n hashes of the last "waiting" reason sent (0: none) */
	json_t *results;    /* owned: what each transfer came to (null until it ends) */
	char failures[512]; /* "to X: why; ..." of those that failed */
	unsigned failed;
	int64_t last_event_ns;
	struct bdrd_waiter *next;
};

static json_t *transfer_result(const struct bdr_db_transfer *t)
{
	return json_pack("{s:s, s:I, s:s, s:I, s:s, s:I, s:I}", "package", t->package, "version",
			 (json_int_t)t->version, "to", t->peer, "transfer", (json_int_t)t->id, "state",
			 t->state == BDR_XFER_DONE ? "activated" : bdr_db_xfer_state_name(t->state),
			 "bytes_sent", (json_int_t)t->bytes_sent, "bytes_saved",
			 (json_int_t)t->bytes_saved);
}

static void waiter_free(struct bdrd *d, struct bdrd_waiter *w)
{
	for (struct bdrd_waiter **pp = &d->waiters; *pp; pp = &(*pp)->next)
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	json_decref(w->results);
	free(w->transfer);
	free(w->ended);
	free(w->waiting);
	free(w);
}

static void waiter_gone(struct bdr_control_req *req, void *arg)
{
	struct bdrd *d = arg;

	for (struct bdrd_waiter *w = d->waiters; w; w = w->next)
		if (w->req == req) {
			waiter_free(d, w);
			break;
		}
	bdr_control_done(req, NULL);
}

static void progress(struct bdrd *d, struct bdrd_waiter *w, const struct bdr_db_transfer *t)
{
	int64_t now = bdrd_now_ns();
	uint64_t rate, total;

	if (now - w->last_event_ns < PROGRESS_EVERY_NS)
		return;
	w->last_event_ns = now;
	bdrd_transfer_rate(d, t, &rate, &total);
	bdr_control_event(w->req, json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
					    "event", "progress", "to", t->peer, "transfer",
					    (json_int_t)t->id, "bytes_sent",
					    (json_int_t)t->bytes_sent, "bytes_total", (json_int_t)total,
					    "bytes_saved", (json_int_t)t->bytes_saved, "rate_bps",
					    (json_int_t)rate, "bytes_done",
					    (json_int_t)bdrd_transfer_done(d, t), "bytes_size",
					    (json_int_t)t->bytes_total));
}

/* One answer for all: a single transfer answers as it always did; several
 * answer with the list, or fail naming those that failed. */
static void answer(struct bdrd *d, struct bdrd_waiter *w)
{
	if (w->n == 1 && !w->failed)
		bdr_control_done(w->req, json_incref(json_array_get(w->results, 0)));
	else if (!w->failed)
		bdr_control_done(w->req, json_pack("{s:O}", "transfers", w->results));
	else if (w->n == 1)
		bdr_control_fail(w->req, "transfer_failed", "%s", w->failures);
	else
		bdr_control_fail(w->req, "transfer_failed", "%u of %zu transfers failed: %s", w->failed,
				 w->n, w->failures);
	waiter_free(d, w);
}

static void ended(struct bdrd_waiter *w, size_t i, const struct bdr_db_transfer *t)
{
	size_t used = strlen(w->failures);
	json_t *ev = transfer_result(t);

	w->ended[i] = true;
	w->left--;
	/* Each site's end as it comes, so that with several destinations
	 * every one's result is shown, whatever the others come to. */
	json_object_set_new(ev, "event", json_string("ended"));
	json_object_set_new(ev, "last_error", t->last_error[0] ? json_string(t->last_error)
								 : json_null());
	bdr_control_event(w->req, ev);
	json_array_set_new(w->results, i, transfer_result(t));
	if (t->state == BDR_XFER_DONE)
		return;
	w->failed++;
	if (used + 2 < sizeof(w->failures))
		snprintf(w->failures + used, sizeof(w->failures) - used,
			 "%stransfer %" PRId64 " to %s %s: %s", used ? "; " : "", t->id, t->peer,
			 bdr_db_xfer_state_name(t->state), t->last_error);
}

static bool is_end(enum bdr_db_xfer_state s)
{
	return s == BDR_XFER_DONE || s == BDR_XFER_FAILED || s == BDR_XFER_CANCELLED;
}

void bdrd_transfer_changed(struct bdrd *d, const struct bdr_db_transfer *t)
{
	struct bdrd_waiter *w = d->waiters, *next;

	for (; w; w = next) {
		next = w->next;
		for (size_t i = 0; i < w->n; i++) {
			if (w->transfer[i] != t->id || w->ended[i])
				continue;
			if (!is_end(t->state)) {
				progress(d, w, t);
				break;
			}
			ended(w, i, t);
			if (!w->left)
				answer(d, w);
			break;
		}
	}
}

void bdrd_wait(struct bdrd *d, struct bdr_control_req *req, const int64_t *transfer, size_t n)
{
	struct bdrd_waiter *w;

	/* The client left (or the control socket stopped) during the import:
	 * no gone callback will come any more, so nobody would answer. */
	if (bdr_control_req_gone(req)) {
		bdr_control_done(req, NULL);
		return;
	}
	w = calloc(1, sizeof(*w));
	if (!w || !(w->transfer = calloc(n, sizeof(*w->transfer))) ||
	    !(w->ended = calloc(n, sizeof(*w->ended))) ||
	    !(w->waiting = calloc(n, sizeof(*w->waiting))) || !(w->results = json_array())) {
		if (w) {
			free(w->transfer);
			free(w->ended);
			free(w->waiting);
			free(w);
		}
		bdr_control_fail(req, "internal", "out of memory");
		return;
	}
	memcpy(w->transfer, transfer, n * sizeof(*transfer));
	for (size_t i = 0; i < n; i++)
		if (json_array_append_new(w->results, json_null()) < 0) {
			waiter_free(d, w);
			bdr_control_fail(req, "internal", "out of memory");
			return;
		}
	w->n = w->left = n;
	w->req = req;
	w->next = d->waiters;
	d->waiters = w;
	bdr_control_req_on_gone(req, waiter_gone, d);
	/* Some may have ended already (the destination held it). */
	bdrd_waiters_recheck(d);
}

/* A transfer that cannot run now says why (a closed window, a retry
 * time, a concurrency limit) when the reason changes, so that push --wait
 * never sits silent. */
static void tell_waiting(struct bdrd *d, struct bdrd_waiter *w, size_t i,
			 const struct bdr_db_transfer *t)
{
	char why[256];
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	bdrd_waiting(d, t, why, sizeof(why));
	for (const char *s = why; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	if (!why[0])
		h = 0;
	if (h == w->waiting[i])
		return;
	w->waiting[i] = h;
	if (why[0])
		bdr_control_event(w->req, json_pack("{s:s, s:s, s:I, s:s}", "event", "waiting", "to",
						    t->peer, "transfer", (json_int_t)t->id,
						    "waiting", why));
}

/* Rows also end where no sender sees it: a queued row superseded by a
 * newer push (bdr_db_transfer_add), or one that bdr_db_transfer_update
 * cancels as it goes back to the queue. Answer those waiters too. */
static bool recheck_one(struct bdrd *d, struct bdrd_waiter *w)
{
	for (size_t i = 0; i < w->n; i++) {
		struct bdr_db_transfer t;
		int r;

		if (w->ended[i])
			continue;
		r = bdr_db_transfer_get(d->db, w->transfer[i], &t);
		if (r == 0 && is_end(t.state)) {
			bdrd_transfer_changed(d, &t);
			return true; /* w may be gone */
		}
		if (r == 0)
			tell_waiting(d, w, i, &t);
		if (r == -BDR_ENOTFOUND) {
			bdr_control_fail(w->req, "transfer_failed",
					 "transfer %" PRId64 " no longer exists", w->transfer[i]);
			waiter_free(d, w);
			return true;
		}
	}
	return false;
}

void bdrd_waiters_recheck(struct bdrd *d)
{
	struct bdrd_waiter *w = d->waiters;

	while (w)
		w = recheck_one(d, w) ? d->waiters : w->next;
}
