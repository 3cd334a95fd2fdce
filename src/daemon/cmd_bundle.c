/* bundle_create and bundle_import (proto/control.md, proto/bundle.md):
 * a version written to a file for a site no link reaches, and such a
 * file added to the library as a received version would be. Both run on
 * a worker under lib_lock. bdrd opens no file for them: the client opens
 * the bundle with its own rights and passes the descriptor, which the job
 * owns (closed once, in job_free on the loop; the worker only borrows it).
 *
 * Trust is decided here, not in the core: the bundle's key must be a
 * pinned peer's (or this site's own), under the same rules as an OFFER
 * from that peer (trust.h): a site with a parent takes bundles of its
 * parent only, the peer must be allowed the package, and the manifest
 * must be signed by the package's origin (with accept = own, the peer
 * itself). The [peer] sections are copied on the loop thread, as the
 * receiver copies what it needs: workers never read the configuration. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bdr/bundle.h"
#include "bdr/error.h"
#include "bdr/library.h"
#include "daemon/daemon.h"
#include "daemon/trust.h"

struct bundle_job {
	struct bdrd_job job;
	struct bdr_control_req *req;
	int fd;                                 /* owned: the client's file */
	char file[64];                          /* names it in logs */
	char package[BDR_MAX_PACKAGE_NAME + 1]; /* create */
	char site[BDR_MAX_SITE_NAME + 1];       /* create: ours */
	uint64_t version, base;                 /* create: asked for; then written */
	struct bdr_config peers;                /* import: owned, bdr_trust_snapshot */
	uint8_t own_pk[BDR_PK_LEN];             /* import: this site's key */
	uint8_t expect[BDR_PK_LEN];             /* import: the manifest's signer must be */
	char expect_why[BDR_WIRE_TEXT_MAX];     /* import: ... because (or "") */
	uint64_t max_manifest;                  /* import: [limits], copied */
	struct bdr_bundle_header h;             /* import: once verified */
	struct bdr_bundle_stats st;
	struct bdr_diag dg;
};

static void job_free(struct bundle_job *b)
{
	bdr_config_free(&b->peers);
	if (b->fd >= 0)
		close(b->fd);
	free(b);
}

/* The job, with the descriptor the server checked (taken from req). */
static struct bundle_job *job_new(struct bdr_control_req *req)
{
	struct bundle_job *b;

	if (!(b = calloc(1, sizeof(*b)))) {
		bdr_control_fail(req, "internal", "out of memory");
		return NULL;
	}
	b->req = req;
	b->fd = bdr_control_req_fd(req);
	snprintf(b->file, sizeof(b->file), "the file of uid %u pid %ld",
		 (unsigned)bdr_control_req_cred(req)->uid, (long)bdr_control_req_pid(req));
	return b;
}

static json_t *stats_json(const struct bundle_job *b, const char *package, uint64_t version,
			  uint64_t base)
{
	return json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "package", package,
			 "version", (json_int_t)version, "base", (json_int_t)base,
			 "bytes", (json_int_t)b->st.bundle_bytes, "chunks", (json_int_t)b->st.nchunks,
			 "raw_bytes", (json_int_t)b->st.raw_bytes, "files", (json_int_t)b->st.files,
			 "version_bytes", (json_int_t)b->st.version_bytes);
}

/* ---- create ---- */

static int create_run(struct bdrd_job *job)
{
	struct bundle_job *b = container_of(job, struct bundle_job, job);
	struct bdr_bundle_create_req r = { .package = b->package, .version = b->version,
					   .base = b->base, .site = b->site, .key = &job->d->key };
	struct stat st;
	int rc = bdr_bundle_write(job->d->lib, &r, b->fd, &b->st, &b->dg);

	b->version = r.version;
	/* A file is synced before the client links it into place; a pipe's
	 * reader has what it read. */
	if (rc == 0 && fstat(b->fd, &st) == 0 && S_ISREG(st.st_mode) && fsync(b->fd) < 0)
		rc = bdr_diag_set(&b->dg, -errno, "writing the bundle: %s", strerror(errno));
	return rc;
}

static const char *create_code(int rc)
{
	if (rc == -BDR_ENOTFOUND)
		return "unknown_package";
	if (rc == -EINVAL || rc == -EEXIST || rc == -ENOENT || rc == -EACCES || rc == -ENOTDIR ||
	    rc == -ENAMETOOLONG || rc == -BDR_EFORMAT || rc == -BDR_ELIMIT)
		return "bad_request";
	return "internal";
}

static void create_done(struct bdrd_job *job, int rc)
{
	struct bundle_job *b = container_of(job, struct bundle_job, job);
	struct bdr_log_ctx ctx = { .package = b->package, .version = b->version };

	if (rc < 0) {
		bdr_log_err(BDR_LOG_ERROR, &ctx, rc, "bundle", "creating %s: %s", b->file, b->dg.msg);
		bdr_control_fail(b->req, create_code(rc), "%s", b->dg.msg[0] ? b->dg.msg : bdr_strerror(rc));
	} else {
		log_info(&ctx, "bundle", "wrote %s: %" PRIu64 " bytes, %" PRIu32 " chunks%s", b->file,
			 b->st.bundle_bytes, b->st.nchunks, b->base ? " (against a base)" : "");
		bdr_control_done(b->req, stats_json(b, b->package, b->version, b->base));
	}
	job_free(b);
}

void bdrd_cmd_bundle_create(struct bdr_control_req *req, json_t *args, void *arg)
{
	struct bdrd *d = arg;
	const char *pkg;
	json_int_t version = 0, base = 0;
	struct bundle_job *b;

	if (bdr_control_unpack(req, args, "{s:s, s?I, s?I}", "package", &pkg, "version", &version,
			       "base", &base) < 0)
		return;
	if (version < 0 || base < 0) {
		bdr_control_fail(req, "bad_request", "version and base are 1 or more (0: the latest, none)");
		return;
	}
	if (!(b = job_new(req)))
		return;
	snprintf(b->package, sizeof(b->package), "%s", pkg);
	snprintf(b->site, sizeof(b->site), "%s", d->cfg.site.name);
	b->version = (uint64_t)version, b->base = (uint64_t)base;
	bdrd_work(d, &b->job, true, create_run, create_done);
}

/* ---- import ---- */

/* The bundle's site as a peer of ours (or this site itself), by key. */
static int bundle_site(struct bundle_job *b, const struct bdr_bundle_header *h,
		       struct bdr_trust *t, struct bdr_diag *d)
{
	char why[BDR_WIRE_TEXT_MAX], pk[BDR_KEY_B64_LEN + 1];
	const struct bdr_peer_config *p = NULL;
	int r;

	if (!sodium_memcmp(b->own_pk, h->signer, BDR_PK_LEN)) {
		if (strcmp(b->site, h->site))
			return bdr_diag_set(d, -BDR_EKEY, "the bundle says it is from site '%s', but its "
					    "key is this site's, '%s'", h->site, b->site);
		bdr_trust_self(&b->peers, b->site, b->own_pk, h->package, t);
		return 0;
	}
	for (size_t i = 0; !p && i < b->peers.n_peers; i++)
		if (!sodium_memcmp(b->peers.peers[i].public_key, h->signer, BDR_PK_LEN))
			p = &b->peers.peers[i];
	if (!p) {
		bdr_key_pk_to_b64(h->signer, pk);
		return bdr_diag_set(d, -BDR_EKEY, "the bundle is signed by site '%s' with key %s, which "
				    "is not pinned here (no [peer] of bdr.conf has it, nor is it this "
				    "site's)", h->site, pk);
	}
	if (strcmp(p->name, h->site))
		return bdr_diag_set(d, -BDR_EKEY, "the bundle says it is from site '%s', but its "
				    "key is pinned for '%s'", h->site, p->name);
	if ((r = bdr_trust_peer(&b->peers, p->name, h->package, t, why, sizeof(why))) < 0)
		return bdr_diag_set(d, r, "bundle from %s refused: %s", p->name, why);
	return 0;
}

/* Whether the bundle's site may add this version, and whose signature its
 * manifest must carry (the origin rule, trust.h); under lib_lock, like the
 * activation that follows, so no other version can fix the package's
 * origin in between. */
static int trust(void *arg, const struct bdr_bundle_header *h, const uint8_t **expect,
		 struct bdr_diag *d)
{
	struct bundle_job *b = arg;
	struct bdr_db *db = bdr_library_db(b->job.d->lib);
	struct bdr_trust t;
	struct bdr_db_origin o;
	char why[BDR_WIRE_TEXT_MAX], pk[BDR_KEY_B64_LEN + 1];
	int r, known;

	b->h = *h; /* for the log and the answer, even if refused */
	if ((r = bundle_site(b, h, &t, d)) < 0)
		return r;
	if ((known = bdr_db_origin_get(db, h->package, &o)) < 0 && known != -BDR_ENOTFOUND)
		return bdr_diag_set(d, known, "reading the package's origin: %s", bdr_db_errmsg(db));
	r = bdr_trust_expected(&t, known == 0 ? &o : NULL, h->package, b->expect, why, sizeof(why));
	if (r < 0)
		return bdr_diag_set(d, r, "bundle from %s refused: %s", h->site, why);
	*expect = r == 0 ? b->expect : NULL;
	bdr_key_pk_to_b64(b->expect, pk);
	if (r == 0 && (t.pinned || known == 0))
		snprintf(b->expect_why, sizeof(b->expect_why), "package %s belongs to origin %s (key %s)",
			 h->package, t.pinned ? t.pin_site : o.site, pk);
	else if (r == 0)
		snprintf(b->expect_why, sizeof(b->expect_why), "%s may send only the packages it "
			 "originates (accept = own)", t.peer);
	return 0;
}

static int import_run(struct bdrd_job *job)
{
	struct bundle_job *b = container_of(job, struct bundle_job, job);
	struct bdr_bundle_read_req rr = { .trust = trust, .arg = b, .max_manifest = b->max_manifest };

	return bdr_bundle_import(job->d->lib, b->fd, &rr, &b->h, &b->st, &b->dg);
}

/* As the receiver does after a transfer: the version is received from the
 * bundle's site (status, the roll-up), and that site is known to hold it. */
static void record(struct bdrd *d, const struct bundle_job *b, const struct bdr_log_ctx *ctx)
{
	int r = bdr_db_begin(d->db);

	if (r == 0)
		r = bdr_db_received_set(d->db, b->h.package, b->h.version, b->h.site, BDR_RECV_ACTIVATED,
					b->st.data_bytes, NULL, bdrd_now_ns());
	if (r == 0 && strcmp(b->h.site, d->cfg.site.name))
		r = bdr_db_peer_version_set(d->db, b->h.site, b->h.package, b->h.version);
	if (r == 0)
		r = bdr_db_commit(d->db);
	else
		bdr_db_rollback(d->db);
	if (r < 0)
		bdr_log_err(BDR_LOG_WARN, ctx, r, "bundle", "cannot record the version as received: %s",
			    bdr_db_errmsg(d->db));
}

static const char *import_code(int rc)
{
	if (rc == -ENOMEM || rc == -ENOSPC || rc == -EIO || rc == -BDR_EDB || rc == -BDR_ECORRUPT)
		return "import_failed";
	return "invalid_bundle";
}

static void import_done(struct bdrd_job *job, int rc)
{
	struct bundle_job *b = container_of(job, struct bundle_job, job);
	struct bdr_log_ctx ctx = { .peer = b->h.site[0] ? b->h.site : NULL,
				   .package = b->h.package[0] ? b->h.package : NULL,
				   .version = b->h.version };
	json_t *res;

	if (rc == -BDR_EKEY && b->expect_why[0])
		/* The manifest's signer is not the one trust() expected. */
		bdr_diag_set(&b->dg, rc, "%s, refusing version %" PRIu64 " from the bundle of %s: its "
			     "manifest is signed by another key", b->expect_why, b->h.version, b->h.site);
	if (rc < 0) {
		bdr_log_err(rc == -BDR_EKEY ? BDR_LOG_WARN : BDR_LOG_ERROR, &ctx, rc, "bundle",
			    "%s refused: %s", b->file, b->dg.msg);
		bdr_control_fail(b->req, import_code(rc), "%s",
				 b->dg.msg[0] ? b->dg.msg : bdr_strerror(rc));
		job_free(b);
		return;
	}
	if (b->st.held) {
		log_info(&ctx, "bundle", "%s: already at this version or a later one", b->file);
	} else {
		log_info(&ctx, "bundle", "imported %s: verified and activated (%" PRIu32 " chunks, %"
			 PRIu64 " bytes used from the bundle)", b->file, b->st.nchunks, b->st.data_bytes);
		record(job->d, b, &ctx);
		bdrd_hier_relay(job->d, b->h.package, b->h.version, b->st.version_bytes);
	}
	res = stats_json(b, b->h.package, b->h.version, b->h.base);
	json_object_set_new(res, "from", json_string(b->h.site));
	json_object_set_new(res, "held", json_boolean(b->st.held));
	bdr_control_done(b->req, res);
	job_free(b);
}

void bdrd_cmd_bundle_import(struct bdr_control_req *req, json_t *args, void *arg)
{
	struct bdrd *d = arg;
	struct bundle_job *b;

	(void)args;
	if (!(b = job_new(req)))
		return;
	snprintf(b->site, sizeof(b->site), "%s", d->cfg.site.name);
	memcpy(b->own_pk, d->key.pk, BDR_PK_LEN);
	if (bdr_trust_snapshot(&d->cfg, &b->peers) < 0) {
		bdr_control_fail(req, "internal", "out of memory");
		job_free(b);
		return;
	}
	b->max_manifest = d->cfg.limits.max_manifest_bytes;
	bdrd_work(d, &b->job, true, import_run, import_done);
}
