/* The control commands of proto/control.md, one handler each. A handler
 * answers on the loop thread; an import runs on a worker. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "bdr/error.h"
#include "bdr/import.h"
#include "bdr/library.h"
#include "daemon/daemon.h"

static struct bdrd *D(void *arg) { return arg; }

/* ---- push ---- */

struct push_job {
	struct bdrd_job job;
	struct bdr_control_req *req;
	char package[BDR_MAX_PACKAGE_NAME + 1];
	char dir[PATH_MAX];
	char to[BDR_MAX_SITE_NAME + 1];
	char site[BDR_MAX_SITE_NAME + 1]; /* ours: the worker must not read d->cfg */
	enum bdr_db_priority prio;
	bool wait;
	uint64_t version;
	struct bdr_import_stats st;
	struct bdr_diag dg;
	int64_t transfer;        /* the queued row */
	uint32_t superseded;
	int queue_err;           /* import succeeded, queueing did not */
	int64_t now_ns;
};

static int import_run(struct bdrd_job *job)
{
	struct push_job *p = container_of(job, struct push_job, job);
	struct bdr_import_req req = {
		.package = p->package, .srcdir = p->dir, .site = p->site,
		.key = &job->d->key,
	};

	struct bdr_db *db = bdr_library_db(job->d->lib);
	int r = bdr_import(job->d->lib, &req, &p->version, &p->st, &p->dg);

	/* Queued here, on the library's own handle whose every commit is
	 * synced: once push answers, the transfer survives a power cut. */
	if (r == 0) {
		p->queue_err = bdr_db_transfer_add(db, p->package, p->version, p->to, p->prio, p->now_ns,
						   p->st.bytes, &p->transfer, &p->superseded);
		if (p->queue_err < 0)
			bdr_diag_set(&p->dg, p->queue_err, "queueing the transfer: %s", bdr_db_errmsg(db));
	}
	return r;
}

static bool is_input_error(int rc)
{
	return rc == -BDR_EPATH || rc == -ENOTDIR || rc == -ENOENT || rc == -EACCES ||
	       rc == -BDR_ELIMIT || rc == -BDR_EFORMAT;
}

static void queue_push(struct bdrd *d, struct push_job *p)
{
	struct bdr_log_ctx ctx = { .peer = p->to, .package = p->package, .version = p->version };
	int64_t id = p->transfer;

	if (p->queue_err < 0) {
		bdr_log_err(BDR_LOG_ERROR, &ctx, p->queue_err, "queue", "%s", p->dg.msg);
		bdr_control_fail(p->req, "internal", "%s", p->dg.msg);
		return;
	}
	log_info(&ctx, "queued", "transfer %" PRId64 "%s", id,
		 p->superseded ? " (superseding older versions)" : "");
	bdr_control_event(p->req, json_pack("{s:s, s:I, s:I}", "event", "queued", "transfer",
					    (json_int_t)id, "version", (json_int_t)p->version));
	if (p->wait)
		bdrd_wait(d, p->req, id);
	else
		bdr_control_done(p->req, json_pack("{s:s, s:I, s:s, s:I, s:s}", "package", p->package,
						   "version", (json_int_t)p->version, "to", p->to,
						   "transfer", (json_int_t)id, "state", "queued"));
	bdrd_kick(d);
}

static void import_done(struct bdrd_job *job, int rc)
{
	struct push_job *p = container_of(job, struct push_job, job);
	struct bdr_log_ctx ctx = { .package = p->package };

	if (rc < 0) {
		bdr_log_err(BDR_LOG_ERROR, &ctx, rc, "import", "%s: %s", p->dir, p->dg.msg);
		bdr_control_fail(p->req, is_input_error(rc) ? "invalid_package" : "import_failed",
				 "%s", p->dg.msg[0] ? p->dg.msg : bdr_strerror(rc));
	} else {
		ctx.version = p->version;
		log_info(&ctx, "imported", "%s: %" PRIu64 " files, %" PRIu64 " bytes, %" PRIu64
			 " files read%s", p->dir, p->st.files, p->st.bytes, p->st.files_read,
			 p->st.unchanged ? "; unchanged since this version, no new one made" : "");
		bdr_control_event(p->req, json_pack("{s:s, s:I, s:I, s:I, s:I, s:b}", "event", "imported",
						    "version", (json_int_t)p->version, "files",
						    (json_int_t)p->st.files, "bytes", (json_int_t)p->st.bytes,
						    "files_read", (json_int_t)p->st.files_read,
						    "unchanged", p->st.unchanged));
		queue_push(job->d, p);
	}
	free(p);
}

static int parse_priority(const char *s, enum bdr_db_priority *out)
{
	static const char *const names[] = { "high", "medium", "low" };

	for (int i = 0; i < 3; i++)
		if (!strcmp(s, names[i])) {
			*out = (enum bdr_db_priority)i;
			return 0;
		}
	return -EINVAL;
}

static void cmd_push(struct bdr_control_req *req, json_t *args, void *arg)
{
	struct bdrd *d = D(arg);
	const char *pkg, *dir, *to, *prio = "medium";
	int wait = 0;
	struct bdr_diag dg;
	struct push_job *p;

	if (bdr_control_unpack(req, args, "{s:s, s:s, s:s, s?s, s?b}", "package", &pkg, "dir", &dir,
			       "to", &to, "priority", &prio, "wait", &wait) < 0)
		return;
	if (bdr_manifest_check_package(pkg, &dg) < 0) {
		bdr_control_fail(req, "invalid_package", "%s", dg.msg);
		return;
	}
	if (dir[0] != '/' || strlen(dir) >= PATH_MAX) {
		bdr_control_fail(req, "invalid_package", "dir must be an absolute path");
		return;
	}
	if (!bdr_config_peer(&d->cfg, to) || !strcmp(to, d->cfg.site.name)) {
		bdr_control_fail(req, "unknown_site", "no site named '%s'", to);
		return;
	}
	if (!(p = calloc(1, sizeof(*p)))) {
		bdr_control_fail(req, "internal", "out of memory");
		return;
	}
	if (parse_priority(prio, &p->prio) < 0) {
		free(p);
		bdr_control_fail(req, "bad_request", "priority is high, medium or low");
		return;
	}
	p->req = req;
	p->wait = wait;
	snprintf(p->package, sizeof(p->package), "%s", pkg);
	snprintf(p->dir, sizeof(p->dir), "%s", dir);
	snprintf(p->to, sizeof(p->to), "%s", to);
	snprintf(p->site, sizeof(p->site), "%s", d->cfg.site.name);
	p->now_ns = bdrd_now_ns();
	bdrd_work(d, &p->job, true, import_run, import_done);
}

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
			"{s:I, s:s, s:s, s:I, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:o, s:o}",
			"transfer", (json_int_t)t[i].id, "package", t[i].package, "to", t[i].peer,
			"version", (json_int_t)t[i].version, "priority", prio[t[i].priority], "state",
			xfer_state(&t[i]), "bytes_sent", (json_int_t)t[i].bytes_sent, "bytes_total",
			(json_int_t)total, "bytes_saved", (json_int_t)t[i].bytes_saved,
			"rate_bps", (json_int_t)rate, "attempts", (json_int_t)t[i].attempts,
			"last_error", nullable(t[i].last_error), "waiting", nullable(waiting)));
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
		json_array_append_new(a, json_pack("{s:s, s:s, s:I, s:s, s:I, s:o}", "package",
						   r[i].package, "from", r[i].peer, "version",
						   (json_int_t)r[i].version, "state",
						   bdr_db_recv_state_name(r[i].state), "bytes_received",
						   (json_int_t)r[i].bytes_received, "last_error",
						   nullable(r[i].last_error)));
	free(r);
	return a;
}

static void cmd_status(struct bdr_control_req *req, json_t *args, void *arg)
{
	struct bdrd *d = D(arg);
	const char *pkg = NULL;
	json_t *t, *r;
	int rc1, rc2;

	if (bdr_control_unpack(req, args, "{s?s}", "package", &pkg) < 0)
		return;
	t = transfers_json(d, pkg, &rc1);
	r = received_json(d, pkg, &rc2);
	if (rc1 < 0 || rc2 < 0) {
		json_decref(t), json_decref(r);
		bdr_control_fail(req, "internal", "reading the database: %s", bdr_db_errmsg(d->db));
		return;
	}
	bdr_control_done(req, json_pack("{s:o, s:o}", "transfers", t, "received", r));
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

const struct bdr_control_cmd bdrd_commands[] = {
	{ "push", cmd_push },
	{ "status", cmd_status },
	{ "packages", cmd_packages },
	{ "peers", cmd_peers },
	{ "reload", cmd_reload },
	{ "schedule", bdrd_cmd_schedule },
	{ NULL, NULL },
};
