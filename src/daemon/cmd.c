/* The control commands of proto/control.md, one handler each. A handler
 * answers on the loop thread; an import runs on a worker. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "bdr/error.h"
#include "bdr/library.h"
#include "daemon/daemon.h"
#include "daemon/metrics.h"

static struct bdrd *D(void *arg) { return arg; }

/* ---- status ---- */

static const char *xfer_state(const struct bdr_db_transfer *t)
{
	return t->state == BDR_XFER_DONE ? "activated" : bdr_db_xfer_state_name(t->state);
}

static json_t *nullable(const char *s)
{
	return s && s[0] ? json_string(s) : json_null();
}

static json_t *transfers_json(struct bdrd *d, const char *pkg, int *rc)
{
	static const char *const prio[] = { "high", "medium", "low" };
	struct bdr_db_transfer *t = NULL;
	json_t *a = json_array();
	size_t n = 0;

	*rc = bdr_db_transfer_list(d->db, pkg, &t, &n);
	for (size_t i = 0; i < n; i++) {
		uint64_t rate, total;
		char waiting[256];
		bdrd_transfer_rate(d, &t[i], &rate, &total);
		bdrd_waiting(d, &t[i], waiting, sizeof(waiting));
		json_array_append_new(a, json_pack(
			"{s:I, s:s, s:s, s:I, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:o, s:o, s:o, s:o, s:o}",
			"transfer", (json_int_t)t[i].id, "package", t[i].package, "to", t[i].peer,
			"version", (json_int_t)t[i].version, "priority", prio[t[i].priority], "state",
			xfer_state(&t[i]), "bytes_sent", (json_int_t)t[i].bytes_sent, "bytes_total",
			(json_int_t)total, "bytes_saved", (json_int_t)t[i].bytes_saved,
			"rate_bps", (json_int_t)rate, "attempts", (json_int_t)t[i].attempts,
			"last_error", nullable(t[i].last_error), "waiting", nullable(waiting),
			"queued_at", bdrd_json_time(t[i].created_ns), "updated_at",
			bdrd_json_time(t[i].updated_ns), "activated_at",
			bdrd_json_time(t[i].state == BDR_XFER_DONE ? t[i].updated_ns : 0)));
	}
	free(t);
	return a;
}

static json_t *received_json(struct bdrd *d, const char *pkg, int *rc)
{
	struct bdr_db_received *r = NULL;
	json_t *a = json_array();
	size_t n = 0;

	*rc = bdr_db_received_list(d->db, pkg, &r, &n);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_pack("{s:s, s:s, s:I, s:s, s:I, s:o, s:o, s:o, s:o}",
						   "package", r[i].package, "from", r[i].peer, "version",
						   (json_int_t)r[i].version, "state",
						   bdr_db_recv_state_name(r[i].state), "bytes_received",
						   (json_int_t)r[i].bytes_received, "last_error",
						   nullable(r[i].last_error), "started_at",
						   bdrd_json_time(r[i].started_ns), "updated_at",
						   bdrd_json_time(r[i].updated_ns), "activated_at",
						   bdrd_json_time(r[i].state == BDR_RECV_ACTIVATED ?
									  r[i].updated_ns : 0)));
	free(r);
	return a;
}

/* Every site below this one (the roll-up): our own transfers to them and
 * what our children reported. */
static json_t *sites_json(struct bdrd *d, const char *pkg, int *rc)
{
	struct bdr_db_site_status *v = NULL;
	json_t *a = json_array();
	size_t n = 0;

	*rc = bdrd_report_rows(d, pkg, 0, true, &v, &n);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_pack(
			"{s:s, s:s, s:b, s:s, s:I, s:s, s:I, s:I, s:I, s:o, s:I}", "site", v[i].site,
			"via", v[i].via, "reported", strcmp(v[i].via, d->cfg.site.name) != 0,
			"package", v[i].package, "version", (json_int_t)v[i].version,
			"state", bdr_db_site_state_name(v[i].state), "bytes_done",
			(json_int_t)v[i].bytes_done, "bytes_total", (json_int_t)v[i].bytes_total,
			"bytes_saved", (json_int_t)v[i].bytes_saved, "last_error",
			nullable(v[i].last_error), "updated_ns", (json_int_t)v[i].updated_ns));
	free(v);
	return a;
}

/* What fan-out saved since start: chunks sealed once as shared tails, and
 * the frames that carried them (proto/wire.md, "Shared tails"). */
static json_t *fanout_json(const struct bdrd *d)
{
	return json_pack("{s:I, s:I}", "tails_sealed", (json_int_t)d->tails_sealed, "tails_sent",
			 (json_int_t)d->tails_sent);
}

bool bdrd_package_known(struct bdrd *d, const char *pkg)
{
	uint64_t *v = NULL;
	size_t n = 0;
	int rc = bdr_db_versions(d->db, pkg, &v, &n);

	free(v);
	return rc < 0 || n > 0;
}

static void cmd_status(struct bdr_control_req *req, json_t *args, void *arg)
{
	struct bdrd *d = D(arg);
	const char *pkg = NULL;
	json_t *t, *r, *s;
	int rc1, rc2, rc3;

	if (bdr_control_unpack(req, args, "{s?s}", "package", &pkg) < 0)
		return;
	t = transfers_json(d, pkg, &rc1);
	r = received_json(d, pkg, &rc2);
	s = sites_json(d, pkg, &rc3);
	if (rc1 < 0 || rc2 < 0 || rc3 < 0) {
		json_decref(t), json_decref(r), json_decref(s);
		bdr_control_fail(req, "internal", "reading the database: %s", bdr_db_errmsg(d->db));
		return;
	}
	if (pkg && !json_array_size(t) && !json_array_size(r) && !json_array_size(s) &&
	    !bdrd_package_known(d, pkg)) {
		json_decref(t), json_decref(r), json_decref(s);
		bdr_control_fail(req, "unknown_package", "no package named '%s' here", pkg);
		return;
	}
	bdr_control_done(req, json_pack("{s:o, s:o, s:o, s:o, s:o}", "transfers", t, "received", r,
					"sites", s, "fanout", fanout_json(d), "storage",
					bdrd_storage_json(d)));
}

/* ---- packages, peers, reload ---- */

static void cmd_packages(struct bdr_control_req *req, json_t *args, void *arg)
{
	struct bdrd *d = D(arg);
	json_t *a = json_array();
	char **names = NULL;
	size_t n = 0;
	int rc = bdr_db_packages(d->db, &names, &n);

	(void)args;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		uint64_t *v = NULL;
		size_t nv = 0;
		json_t *vs = json_array();
		rc = bdr_db_versions(d->db, names[i], &v, &nv);
		for (size_t k = 0; k < nv; k++)
			json_array_append_new(vs, json_integer((json_int_t)v[k]));
		json_array_append_new(a, json_pack("{s:s, s:o, s:o}", "name", names[i], "versions", vs,
						   "active", nv ? json_integer((json_int_t)v[nv - 1]) : json_null()));
		free(v);
	}
	bdr_db_strv_free(names, n);
	if (rc < 0) {
		json_decref(a);
		bdr_control_fail(req, "internal", "reading the database: %s", bdr_db_errmsg(d->db));
		return;
	}
	bdr_control_done(req, json_pack("{s:o}", "packages", a));
}

static void cmd_peers(struct bdr_control_req *req, json_t *args, void *arg)
{
	struct bdrd *d = D(arg);
	json_t *a = json_array();

	(void)args;
	for (size_t i = 0; i < d->cfg.n_peers; i++) {
		const struct bdr_peer_config *pc = &d->cfg.peers[i];
		struct bdrd_peer *p = bdrd_peer_get(d, pc->name);
		char b64[BDR_KEY_B64_LEN + 1], addr[BDR_CONFIG_MAX_HOST + 16];
		json_t *addrs = json_array();

		bdr_key_pk_to_b64(pc->public_key, b64);
		for (size_t k = 0; k < pc->address.n; k++) {
			const struct bdr_config_address *ad = &pc->address.v[k];
			snprintf(addr, sizeof(addr), strchr(ad->host, ':') ? "[%s]:%u" : "%s:%u", ad->host,
				 ad->port);
			json_array_append_new(addrs, json_string(addr));
		}
		json_array_append_new(a, json_pack("{s:s, s:s, s:o, s:b, s:o}", "name", pc->name,
						   "public_key", b64, "addresses", addrs, "connected",
						   p && (p->nout || p->n_in), "last_error",
						   nullable(p ? p->last_error : NULL)));
	}
	bdr_control_done(req, json_pack("{s:o}", "peers", a));
}

static void cmd_reload(struct bdr_control_req *req, json_t *args, void *arg)
{
	struct bdr_config_errors errs = { 0 };
	char msg[BDR_CONTROL_MAX_LINE / 2] = "";
	size_t len = 0;

	(void)args;
	if (bdrd_reload(D(arg), &errs) == 0) {
		bdr_config_errors_free(&errs);
		bdr_control_done(req, NULL);
		return;
	}
	for (size_t i = 0; i < errs.n && len < sizeof(msg) - 1; i++)
		len += (size_t)snprintf(msg + len, sizeof(msg) - len, "%s%s", i ? "\n" : "", errs.v[i].text);
	bdr_config_errors_free(&errs);
	bdr_control_fail(req, "invalid_config", "%s", msg[0] ? msg : "the configuration cannot be read");
}

/* The exposition as events of at most METRICS_PIECE bytes, each a whole
 * number of lines, so that no answer line passes BDR_CONTROL_MAX_LINE
 * however many peers and packages there are. */
#define METRICS_PIECE (BDR_CONTROL_MAX_LINE / 4)

static void cmd_metrics(struct bdr_control_req *req, json_t *args, void *arg)
{
	char *text = NULL;
	size_t len = 0, at = 0;
	int rc;

	(void)args;
	rc = bdrd_metrics_render(D(arg), &text, &len);
	if (rc < 0) {
		bdr_control_fail(req, "internal", "metrics: %s", bdrd_strerror(rc));
		return;
	}
	while (at < len) {
		size_t n = len - at;

		if (n > METRICS_PIECE) {
			n = METRICS_PIECE;
			while (n > 1 && text[at + n - 1] != '\n')
				n--;
		}
		bdr_control_event(req, json_pack("{s:s, s:s%}", "event", "metrics", "text", text + at, n));
		at += n;
	}
	free(text);
	bdr_control_done(req, NULL);
}

const struct bdr_control_cmd bdrd_commands[] = {
	{ "push", bdrd_cmd_push, BDR_CONTROL_FD_DIR },
	{ "distribute", bdrd_cmd_distribute, BDR_CONTROL_FD_NONE },
	{ "remove", bdrd_cmd_remove, BDR_CONTROL_FD_NONE },
	{ "status", cmd_status, BDR_CONTROL_FD_NONE },
	{ "packages", cmd_packages, BDR_CONTROL_FD_NONE },
	{ "peers", cmd_peers, BDR_CONTROL_FD_NONE },
	{ "reload", cmd_reload, BDR_CONTROL_FD_NONE },
	{ "metrics", cmd_metrics, BDR_CONTROL_FD_NONE },
	{ "cancel", bdrd_cmd_cancel, BDR_CONTROL_FD_NONE },
	{ "retry", bdrd_cmd_retry, BDR_CONTROL_FD_NONE },
	{ "schedule", bdrd_cmd_schedule, BDR_CONTROL_FD_NONE },
	{ "bundle_create", bdrd_cmd_bundle_create, BDR_CONTROL_FD_OUT },
	{ "bundle_import", bdrd_cmd_bundle_import, BDR_CONTROL_FD_IN },
	{ NULL, NULL, BDR_CONTROL_FD_NONE },
};
