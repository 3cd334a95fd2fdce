/* push and distribute (proto/control.md): a version imported from a
 * directory, or one already in the library, queued to one or more
 * destinations in one database transaction on a worker; answered at once,
 * or with --wait once every transfer has ended. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bdr/error.h"
#include "bdr/import.h"
#include "bdr/library.h"
#include "daemon/daemon.h"

struct push_job {
	struct bdrd_job job;
	struct bdr_control_req *req;
	char package[BDR_MAX_PACKAGE_NAME + 1];
	char dir[96];            /* push: the tree, for logs; distribute: "" */
	int dirfd;               /* push: owned, the tree its client opened
				  * (closed in job_free, on the loop); -1 */
	struct bdr_cred as;      /* push: the client's rights (groups owned) */
	bool fenced;             /* read the tree with as's rights: the
				  * client is neither root nor bdrd's user */
	char site[BDR_MAX_SITE_NAME + 1]; /* ours: the worker must not read d->cfg */
	struct bdrd_dests to;    /* owned */
	int64_t *transfer;       /* owned: their rows, once queued */
	enum bdr_db_priority prio;
	enum bdr_quick_check quick_check; /* [site] quick_check, copied */
	bool wait;
	uint64_t version;        /* distribute: asked for (0: the latest); then the one sent */
	uint64_t bytes;          /* its size */
	struct bdr_import_stats st;
	struct bdr_diag dg;
	uint32_t superseded;
	int queue_err;           /* the version is there, queueing failed */
	int64_t now_ns;
};

static void job_free(struct push_job *p)
{
	if (p->dirfd >= 0)
		close(p->dirfd);
	free((gid_t *)p->as.groups);
	bdrd_dests_free(&p->to);
	free(p->transfer);
	free(p);
}

/* Queued here, on the library's own handle whose every commit is synced:
 * once push answers, the transfers survive a power cut. All or none. */
static void queue_all(struct push_job *p, struct bdr_db *db)
{
	int r = bdr_db_begin(db);

	for (size_t i = 0; r == 0 && i < p->to.n; i++) {
		uint32_t sup = 0;
		r = bdr_db_transfer_add(db, p->package, p->version, p->to.v[i], p->prio, p->now_ns,
					p->bytes, &p->transfer[i], &sup);
		p->superseded += sup;
	}
	if (r == 0)
		r = bdr_db_commit(db);
	else
		bdr_db_rollback(db);
	if (r < 0) {
		p->queue_err = r;
		bdr_diag_set(&p->dg, r, "queueing the transfers: %s", bdr_db_errmsg(db));
	}
}

static int version_size(struct bdr_library *lib, struct push_job *p)
{
	struct bdr_manifest m;
	int r;

	if (!p->version && (r = bdr_library_latest(lib, p->package, &p->version)) < 0)
		return bdr_diag_set(&p->dg, r, "no package '%s' in the library", p->package);
	if ((r = bdr_library_manifest_load(lib, p->package, p->version, &m, &p->dg)) < 0)
		return r;
	for (uint32_t i = 0; i < m.nentries; i++)
		p->bytes += m.entries[i].size;
	bdr_manifest_free(&m);
	return 0;
}

static int push_run(struct bdrd_job *job)
{
	struct push_job *p = container_of(job, struct push_job, job);
	struct bdr_import_req req = {
		.package = p->package, .srcdir_fd = p->dirfd, .as = p->fenced ? &p->as : NULL,
		.site = p->site, .key = &job->d->key, .quick_check = p->quick_check,
	};
	int r;

	if (p->dir[0]) {
		r = bdr_import(job->d->lib, &req, &p->version, &p->st, &p->dg);
		p->bytes = p->st.bytes;
	} else {
		r = version_size(job->d->lib, p);
	}
	if (r == 0)
		queue_all(p, bdr_library_db(job->d->lib));
	return r;
}

static bool is_input_error(int rc)
{
	return rc == -BDR_EPATH || rc == -ENOTDIR || rc == -ENOENT || rc == -EACCES ||
	       rc == -BDR_ELIMIT || rc == -BDR_EFORMAT || rc == -BDR_ENOTFOUND;
}

static json_t *queued_result(const struct push_job *p)
{
	json_t *list = json_array();

	for (size_t i = 0; i < p->to.n; i++)
		json_array_append_new(list, json_pack("{s:s, s:I, s:I, s:s, s:s}", "package",
						      p->package, "version", (json_int_t)p->version,
						      "transfer", (json_int_t)p->transfer[i], "to",
						      p->to.v[i], "state", "queued"));
	if (p->to.n == 1) {
		json_t *one = json_incref(json_array_get(list, 0));
		json_decref(list);
		return one;
	}
	return json_pack("{s:o}", "transfers", list);
}

static void queued(struct bdrd *d, struct push_job *p)
{
	for (size_t i = 0; i < p->to.n; i++) {
		struct bdr_log_ctx ctx = { .peer = p->to.v[i], .package = p->package,
					   .version = p->version };
		log_info(&ctx, "queued", "transfer %" PRId64 "%s", p->transfer[i],
			 p->superseded ? " (superseding older versions)" : "");
		bdr_control_event(p->req, json_pack("{s:s, s:I, s:I, s:s}", "event", "queued",
						    "transfer", (json_int_t)p->transfer[i],
						    "version", (json_int_t)p->version, "to", p->to.v[i]));
	}
	if (p->wait)
		bdrd_wait(d, p->req, p->transfer, p->to.n);
	else
		bdr_control_done(p->req, queued_result(p));
	bdrd_kick(d);
}

static void imported(struct push_job *p)
{
	struct bdr_log_ctx ctx = { .package = p->package, .version = p->version };

	log_info(&ctx, "imported", "%s: %" PRIu64 " files, %" PRIu64 " bytes, %" PRIu64
		 " files read%s", p->dir, p->st.files, p->st.bytes, p->st.files_read,
		 p->st.unchanged ? "; unchanged since this version, no new one made" : "");
	bdr_control_event(p->req, json_pack("{s:s, s:I, s:I, s:I, s:I, s:b}", "event", "imported",
					    "version", (json_int_t)p->version, "files",
					    (json_int_t)p->st.files, "bytes", (json_int_t)p->st.bytes,
					    "files_read", (json_int_t)p->st.files_read, "unchanged",
					    p->st.unchanged));
}

static void push_done(struct bdrd_job *job, int rc)
{
	struct push_job *p = container_of(job, struct push_job, job);
	struct bdr_log_ctx ctx = { .package = p->package, .version = p->version };

	if (rc < 0) {
		bdr_log_err(BDR_LOG_ERROR, &ctx, rc, p->dir[0] ? "import" : "distribute", "%s%s%s",
			    p->dir, p->dir[0] ? ": " : "", p->dg.msg);
		bdr_control_fail(p->req, is_input_error(rc) ? "invalid_package" : "import_failed",
				 "%s", p->dg.msg[0] ? p->dg.msg : bdr_strerror(rc));
	} else {
		if (p->dir[0])
			imported(p);
		if (p->queue_err < 0) {
			bdr_log_err(BDR_LOG_ERROR, &ctx, p->queue_err, "queue", "%s", p->dg.msg);
			bdr_control_fail(p->req, "internal", "%s", p->dg.msg);
		} else {
			queued(job->d, p);
		}
	}
	job_free(p);
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

/* What push and distribute share: package, to, priority, wait. */
static struct push_job *job_new(struct bdrd *d, struct bdr_control_req *req, const char *pkg,
				const char *to, const char *prio, int wait)
{
	struct push_job *p = calloc(1, sizeof(*p));
	struct bdr_diag dg;
	int r;

	if (!p) {
		bdr_control_fail(req, "internal", "out of memory");
		return NULL;
	}
	p->dirfd = -1;
	if (bdr_manifest_check_package(pkg, &dg) < 0) {
		bdr_control_fail(req, "invalid_package", "%s", dg.msg);
		job_free(p);
		return NULL;
	}
	if (parse_priority(prio, &p->prio) < 0) {
		bdr_control_fail(req, "bad_request", "priority is high, medium or low");
		job_free(p);
		return NULL;
	}
	if ((r = bdrd_dests_resolve(d, to, &p->to, &p->dg)) == 0 &&
	    !(p->transfer = calloc(p->to.n, sizeof(*p->transfer))))
		r = bdr_diag_set(&p->dg, -ENOMEM, "out of memory");
	if (r < 0) {
		bdr_control_fail(req, r == -ENOENT ? "unknown_site" : r == -ENOMEM ? "internal"
										    : "bad_request",
				 "%s", p->dg.msg);
		job_free(p);
		return NULL;
	}
	p->req = req;
	p->wait = wait;
	snprintf(p->package, sizeof(p->package), "%s", pkg);
	snprintf(p->site, sizeof(p->site), "%s", d->cfg.site.name);
	p->quick_check = d->cfg.site.quick_check;
	p->now_ns = bdrd_now_ns();
	return p;
}

/* The client's rights, copied for the worker: a client that is neither
 * root nor bdrd's own user may push only what it could read itself. */
static int take_rights(struct push_job *p, struct bdr_control_req *req)
{
	const struct bdr_cred *c = bdr_control_req_cred(req);

	p->fenced = c->uid != 0 && c->uid != geteuid();
	p->as = *c;
	p->as.groups = NULL;
	if (!c->ngroups)
		return 0;
	if (!(p->as.groups = malloc(c->ngroups * sizeof(gid_t))))
		return -ENOMEM;
	memcpy((gid_t *)p->as.groups, c->groups, c->ngroups * sizeof(gid_t));
	return 0;
}

void bdrd_cmd_push(struct bdr_control_req *req, json_t *args, void *arg)
{
	struct bdrd *d = arg;
	const char *pkg, *to, *prio = "medium";
	int wait = 0;
	struct push_job *p;

	/* The tree comes as the descriptor its client opened (the control
	 * socket refuses a "dir" path); the server checked it is a directory. */
	if (bdr_control_unpack(req, args, "{s:s, s:s, s?s, s?b}", "package", &pkg, "to", &to,
			       "priority", &prio, "wait", &wait) < 0)
		return;
	if (!(p = job_new(d, req, pkg, to, prio, wait)))
		return;
	if (take_rights(p, req) < 0) {
		bdr_control_fail(req, "internal", "out of memory");
		job_free(p);
		return;
	}
	p->dirfd = bdr_control_req_fd(req);
	snprintf(p->dir, sizeof(p->dir), "directory of uid %u pid %ld", (unsigned)p->as.uid,
		 (long)bdr_control_req_pid(req));
	/* The import may take a while (a large tree, a cold cache): say so. */
	bdr_control_event(req, json_pack("{s:s, s:s}", "event", "importing", "package", pkg));
	bdrd_work(d, &p->job, true, push_run, push_done);
}

void bdrd_cmd_distribute(struct bdr_control_req *req, json_t *args, void *arg)
{
	struct bdrd *d = arg;
	const char *pkg, *to, *prio = "medium";
	json_int_t version = 0;
	int wait = 0;
	struct push_job *p;

	if (bdr_control_unpack(req, args, "{s:s, s:s, s?I, s?s, s?b}", "package", &pkg, "to", &to,
			       "version", &version, "priority", &prio, "wait", &wait) < 0)
		return;
	if (version < 0) {
		bdr_control_fail(req, "bad_request", "version must be 1 or more (0 or none: the latest)");
		return;
	}
	if (!(p = job_new(d, req, pkg, to, prio, wait)))
		return;
	p->version = (uint64_t)version;
	bdrd_work(d, &p->job, true, push_run, push_done);
}
