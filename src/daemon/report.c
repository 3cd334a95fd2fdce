/* The hierarchy's status roll-up (proto/wire.md, REPORT; bdr.conf(5),
 * HIERARCHY). A site tells its parent, one REPORT per row, where each
 * package stands at itself, at each child it sends to, and at every site
 * its children reported; the parent stores those rows (site_status) and
 * passes them on up in turn, so the top of the tree sees every site.
 *
 * What has been delivered is a watermark: rows stamped (by this site's
 * clock) after it are sent, then a PING whose PONG moves it, since the
 * parent handles messages in order. It lives in memory: after a restart
 * everything is sent once more. Rounds are at most one per REPORT_EVERY_NS;
 * when no connection to the parent is open and it has an address, one is
 * opened for the report and closed once the PONG is in. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bdr/error.h"
#include "bdr/library.h"
#include "daemon/daemon.h"

#define REPORT_EVERY_NS (2 * 1000000000ll)
#define REPORT_RETRY_NS (30 * 1000000000ll) /* after a failed report connection */
#define REPORT_MAX_ROWS 4096                /* per round; the rest goes next round */
#define REPORT_MAX_PER_CHILD 100000         /* rows a child may make us store */
#define COOKIE_BIT (1ull << 63)             /* keepalive PINGs carry plain times */

_Static_assert((int)BDR_REPORT_QUEUED == (int)BDR_SITE_QUEUED &&
		       (int)BDR_REPORT_MOVING == (int)BDR_SITE_MOVING &&
		       (int)BDR_REPORT_PAUSED == (int)BDR_SITE_PAUSED &&
		       (int)BDR_REPORT_ACTIVATED == (int)BDR_SITE_ACTIVATED &&
		       (int)BDR_REPORT_FAILED == (int)BDR_SITE_FAILED,
	       "REPORT states are stored as they travel");

/* ---- the rows of this site's subtree ---- */

struct rows {
	struct bdr_db_site_status *v;
	size_t n, cap;
};

static struct bdr_db_site_status *row_add(struct rows *r)
{
	if (r->n == r->cap) {
		size_t cap = r->cap ? 2 * r->cap : 64;
		struct bdr_db_site_status *v = realloc(r->v, cap * sizeof(*v));
		if (!v)
			return NULL;
		r->v = v, r->cap = cap;
	}
	memset(&r->v[r->n], 0, sizeof(r->v[0]));
	return &r->v[r->n++];
}

static enum bdr_db_site_state xfer_site_state(enum bdr_db_xfer_state s)
{
	switch (s) {
	case BDR_XFER_QUEUED: return BDR_SITE_QUEUED;
	case BDR_XFER_SENDING: return BDR_SITE_MOVING;
	case BDR_XFER_PAUSED: return BDR_SITE_PAUSED;
	case BDR_XFER_DONE: return BDR_SITE_ACTIVATED;
	default: return BDR_SITE_FAILED;
	}
}

/* Our own state of each package: the newest version we receive or hold. */
static int own_rows(struct bdrd *d, const char *package, int64_t since, struct rows *out)
{
	struct bdr_db_received *v;
	size_t n;
	int r = bdr_db_received_list(d->db, package, &v, &n);

	for (size_t i = 0; r == 0 && i < n; i++) {
		struct bdr_db_site_status *s;
		/* newest version first within a package */
		if ((i && !strcmp(v[i].package, v[i - 1].package)) || v[i].updated_ns <= since)
			continue;
		if (!(s = row_add(out))) {
			r = -ENOMEM;
			break;
		}
		bdrd_strcpy(s->site, sizeof(s->site), d->cfg.site.name);
		bdrd_strcpy(s->package, sizeof(s->package), v[i].package);
		s->version = v[i].version;
		s->state = v[i].state == BDR_RECV_ACTIVATED ? BDR_SITE_ACTIVATED
			 : v[i].state == BDR_RECV_FAILED ? BDR_SITE_FAILED : BDR_SITE_MOVING;
		s->bytes_done = v[i].bytes_received;
		bdrd_strcpy(s->last_error, sizeof(s->last_error), v[i].last_error);
		s->updated_ns = v[i].updated_ns;
	}
	free(v);
	return r;
}

/* Our transfers to each site below us: the newest version per site and
 * package. With all set, to plain peers too (the status of the top site). */
static int sent_rows(struct bdrd *d, const char *package, int64_t since, bool all,
		     struct rows *out)
{
	struct bdr_db_transfer *t;
	size_t n;
	int r = bdr_db_transfer_list(d->db, package, &t, &n);

	for (size_t i = 0; r == 0 && i < n; i++) {
		const struct bdr_peer_config *p = bdr_config_peer(&d->cfg, t[i].peer);
		struct bdr_db_site_status *s = NULL;

		if (!p || (!all && p->relation != BDR_REL_CHILD) || t[i].state == BDR_XFER_CANCELLED)
			continue;
		for (size_t j = 0; j < out->n && !s; j++)
			if (!strcmp(out->v[j].site, t[i].peer) && !strcmp(out->v[j].package, t[i].package))
				s = &out->v[j];
		if (s && s->version >= t[i].version)
			continue;
		if (!s && !(s = row_add(out))) {
			r = -ENOMEM;
			break;
		}
		bdrd_strcpy(s->site, sizeof(s->site), t[i].peer);
		bdrd_strcpy(s->package, sizeof(s->package), t[i].package);
		s->version = t[i].version;
		s->state = xfer_site_state(t[i].state);
		s->bytes_done = t[i].bytes_sent, s->bytes_total = t[i].bytes_total;
		s->bytes_saved = t[i].bytes_saved;
		bdrd_strcpy(s->last_error, sizeof(s->last_error), t[i].last_error);
		s->updated_ns = t[i].updated_ns;
		bdrd_strcpy(s->via, sizeof(s->via), d->cfg.site.name);
	}
	free(t);
	/* the newest version per site was kept; drop those not changed lately */
	for (size_t i = 0; i < out->n;)
		if (out->v[i].updated_ns <= since && !strcmp(out->v[i].via, d->cfg.site.name))
			out->v[i] = out->v[--out->n];
		else
			i++;
	return r;
}

static bool have_row(const struct rows *r, const char *site, const char *package)
{
	for (size_t i = 0; i < r->n; i++)
		if (!strcmp(r->v[i].site, site) && !strcmp(r->v[i].package, package))
			return true;
	return false;
}

/* Rows children reported, stored after since; of a site we send to
 * ourselves, our own transfer row tells more of its link (sent, saved). */
static int relayed_rows(struct bdrd *d, const char *package, int64_t since, struct rows *out)
{
	struct bdr_db_site_status *v;
	size_t n, mine = out->n;
	int r = bdr_db_site_status_list(d->db, package, since, &v, &n);

	for (size_t i = 0; r == 0 && i < n; i++) {
		struct bdr_db_site_status *s;
		struct rows own = { out->v, mine, mine };
		if (have_row(&own, v[i].site, v[i].package))
			continue;
		if (!(s = row_add(out)))
			r = -ENOMEM;
		else
			*s = v[i];
	}
	free(v);
	return r;
}

int bdrd_report_rows(struct bdrd *d, const char *package, int64_t since, bool top,
		     struct bdr_db_site_status **out, size_t *n)
{
	struct rows r = { 0 };
	int err = sent_rows(d, package, since, top, &r);

	if (!err && !top)
		err = own_rows(d, package, since, &r);
	if (!err)
		err = relayed_rows(d, package, since, &r);
	if (err) {
		free(r.v);
		return err;
	}
	*out = r.v;
	*n = r.n;
	return 0;
}

/* ---- sending: the child's side ---- */

static void msg_of(const struct bdr_db_site_status *s, struct bdr_msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = BDR_MSG_REPORT;
	bdrd_strcpy(m->report.site, sizeof(m->report.site), s->site);
	bdrd_strcpy(m->report.package, sizeof(m->report.package), s->package);
	m->report.version = s->version;
	m->report.state = (uint8_t)s->state;
	m->report.bytes_done = s->bytes_done;
	m->report.bytes_total = s->bytes_total;
	m->report.bytes_saved = s->bytes_saved;
	m->report.updated_ns = s->updated_ns;
	bdr_wire_text(m->report.error, s->last_error);
}

/* One round on c: every row changed since the watermark, then the PING
 * that confirms them. */
static void send_round(struct bdrd *d, struct conn *c)
{
	struct bdrd_report *st = &d->report;
	int64_t now = bdrd_now_ns();
	struct bdr_db_site_status *v;
	struct bdr_msg m;
	size_t n;

	if (bdrd_report_rows(d, NULL, st->acked_ns, false, &v, &n) < 0)
		return;
	st->last_round_ns = now;
	for (size_t i = 0; i < n && i < REPORT_MAX_ROWS; i++) {
		msg_of(&v[i], &m);
		if (conn_send(c, &m) < 0) {
			free(v);
			return;
		}
	}
	free(v);
	/* More than a round's worth: the rest waits, so no watermark move. */
	st->pending_ns = n > REPORT_MAX_ROWS ? 0 : now;
	m = (struct bdr_msg){ .type = BDR_MSG_PING, .ping.cookie = (uint64_t)now | COOKIE_BIT };
	conn_send(c, &m);
	st->busy = true;
}

/* Whether anything changed since the watermark (cheap enough each tick:
 * three small queries). */
static bool dirty(struct bdrd *d)
{
	struct bdr_db_site_status *v;
	size_t n = 0;

	if (bdrd_report_rows(d, NULL, d->report.acked_ns, false, &v, &n) < 0)
		return false;
	free(v);
	return n > 0;
}

void bdrd_report_tick(struct bdrd *d)
{
	const struct bdr_peer_config *parent = bdr_config_parent(&d->cfg);
	struct bdrd_report *st = &d->report;
	int64_t now = bdrd_now_ns();
	struct conn *c;

	if (!parent || d->stopping || st->busy || now - st->last_round_ns < REPORT_EVERY_NS ||
	    !dirty(d))
		return;
	if ((c = conn_find(d, parent->name)) && (conn_caps(c) & BDR_CAP_REPORT)) {
		send_round(d, c);
	} else if (!c && parent->address.n && now - st->opened_ns >= REPORT_RETRY_NS) {
		/* A connection of its own; send_round runs once it is ready. */
		st->opened_ns = now;
		if (conn_connect(d, parent->name, NULL, 0, BDR_PRIO_HIGH) < 0)
			bdr_log(BDR_LOG_WARN, &(struct bdr_log_ctx){ .peer = parent->name }, "report",
				"cannot open a connection to the parent");
	}
}

void bdrd_report_on_ready(struct conn *c)
{
	struct bdrd *d = conn_daemon(c);
	const struct bdr_peer_config *parent = bdr_config_parent(&d->cfg);

	if (parent && !strcmp(parent->name, conn_peer(c)) && (conn_caps(c) & BDR_CAP_REPORT) &&
	    !d->report.busy && dirty(d))
		send_round(d, c);
}

void bdrd_report_on_pong(struct conn *c, uint64_t cookie)
{
	struct bdrd *d = conn_daemon(c);
	struct bdrd_report *st = &d->report;

	if (!(cookie & COOKIE_BIT) || !st->busy || (int64_t)(cookie & ~COOKIE_BIT) != st->last_round_ns)
		return;
	st->busy = false;
	st->opened_ns = 0; /* delivered: the next round may open one at once */
	if (st->pending_ns > st->acked_ns)
		st->acked_ns = st->pending_ns;
	/* A connection opened only for the report is done. */
	if (conn_idle_outgoing(c))
		conn_close(c, 0, "report delivered");
}

void bdrd_report_on_close(struct conn *c)
{
	struct bdrd *d = conn_daemon(c);
	const struct bdr_peer_config *parent = bdr_config_parent(&d->cfg);

	/* The PONG will not come: the round is sent again. */
	if (parent && !strcmp(parent->name, conn_peer(c)))
		d->report.busy = false;
}

/* ---- receiving: the parent's side ---- */

/* A child that activated a version by some other way than this site (a
 * bundle carried by hand, another parent before a move) holds it all the
 * same: recorded as if its DONE had confirmed it, the next push there is
 * a delta against it. A child that claims a
 * version it lacks only makes its own next push fall back (the manifest
 * delta refused, the dictionaries unresolved: proto/wire.md). */
static void learn_held(struct bdrd *d, const char *child, const struct bdr_db_site_status *s)
{
	uint64_t known = 0;

	if (strcmp(s->site, child) || s->state != BDR_SITE_ACTIVATED || !s->version)
		return;
	if (bdr_db_peer_version_get(d->db, child, s->package, &known) == 0 && known >= s->version)
		return;
	if (bdr_db_peer_version_set(d->db, child, s->package, s->version) < 0)
		bdr_log(BDR_LOG_WARN, &(struct bdr_log_ctx){ .peer = child, .package = s->package },
			"report", "cannot record that it holds version %" PRIu64 ": %s", s->version,
			bdr_db_errmsg(d->db));
	else
		log_info(&(struct bdr_log_ctx){ .peer = child, .package = s->package }, "report",
			 "it holds version %" PRIu64 " (reported), the base of the next push there",
			 s->version);
}

void bdrd_report_on_msg(struct conn *c, const struct bdr_msg *m)
{
	struct bdrd *d = conn_daemon(c);
	const struct bdr_peer_config *p = bdr_config_peer(&d->cfg, conn_peer(c));
	struct bdr_db_site_status s = { .version = m->report.version,
					.state = (enum bdr_db_site_state)m->report.state,
					.bytes_done = m->report.bytes_done,
					.bytes_total = m->report.bytes_total,
					.bytes_saved = m->report.bytes_saved,
					.updated_ns = m->report.updated_ns,
					.received_ns = bdrd_now_ns() };
	uint64_t held = 0;

	if (!p || p->relation != BDR_REL_CHILD) {
		conn_close(c, -BDR_EKEY, "REPORT from a peer that is not this site's child");
		return;
	}
	if (!strcmp(m->report.site, d->cfg.site.name)) {
		conn_close(c, -BDR_EFORMAT, "REPORT about this site itself");
		return;
	}
	if (bdr_db_site_status_count(d->db, p->name, &held) < 0 || held >= REPORT_MAX_PER_CHILD) {
		conn_close(c, -BDR_ELIMIT, "REPORT: too many rows from this child");
		return;
	}
	bdrd_strcpy(s.site, sizeof(s.site), m->report.site);
	bdrd_strcpy(s.package, sizeof(s.package), m->report.package);
	bdrd_strcpy(s.last_error, sizeof(s.last_error), m->report.error);
	bdrd_strcpy(s.via, sizeof(s.via), p->name);
	if (bdr_db_site_status_put(d->db, &s) < 0)
		bdr_log(BDR_LOG_WARN, &(struct bdr_log_ctx){ .peer = p->name, .package = s.package },
			"report", "cannot store the status of %s: %s", s.site, bdr_db_errmsg(d->db));
	learn_held(d, p->name, &s);
}

/* ---- this site's own rows against its library ---- */

/* DIR/partial/P.V.pack: the received data of a transfer not activated. */
static int partial_path(struct bdrd *d, const char *package, uint64_t version, char *buf,
			size_t size)
{
	/* Only the library's directory name, which never changes: no lib_lock. */
	int n = snprintf(buf, size, "%s/partial/%s.%" PRIu64 ".pack", bdr_library_dir(d->lib),
			 package, version);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

void bdrd_partial_drop(struct bdrd *d, const char *package, uint64_t version, const char *why)
{
	const struct bdr_log_ctx ctx = { .package = package, .version = version };
	char path[PATH_MAX];
	struct stat st;

	if (partial_path(d, package, version, path, sizeof(path)) < 0 || lstat(path, &st) < 0)
		return;
	/* truncate frees the blocks at once, even while a rebuild still has
	 * the file open: a full disk gets its room back before the status
	 * row is written. */
	if (truncate(path, 0) < 0 || unlink(path) < 0)
		bdr_log_err(BDR_LOG_WARN, &ctx, -errno, "partial", "cannot delete %s: %s", path,
			    strerror(errno));
	else
		log_info(&ctx, "partial", "deleted the received data (%lld bytes): %s",
			 (long long)st.st_blocks * 512, why);
}

/* Why a row that says "receiving" cannot be true (NULL: it can). */
static const char *stale_reason(struct bdrd *d, const struct bdr_db_received *r, uint64_t latest,
				bool at_start)
{
	char path[PATH_MAX];

	if (r->version <= latest)
		return "superseded: a later version was activated before this one completed";
	if (!at_start)
		return NULL; /* a transfer may be running */
	if (partial_path(d, r->package, r->version, path, sizeof(path)) == 0 && access(path, F_OK) == 0)
		return NULL; /* resumable: the sender's next attempt goes on */
	return "interrupted with no received data kept; the sender's next attempt starts over";
}

int bdrd_status_reconcile(struct bdrd *d, const char *package, bool at_start)
{
	struct bdr_db_received *v = NULL;
	size_t n = 0, fixed = 0;
	int r = bdr_db_received_list(d->db, package, &v, &n);

	for (size_t i = 0; r == 0 && i < n; i++) {
		const struct bdr_db_received *row = &v[i];
		const struct bdr_log_ctx ctx = { .peer = row->peer, .package = row->package,
						 .version = row->version };
		uint64_t *held = NULL, latest;
		size_t nheld = 0;
		bool has = false;
		const char *why = NULL;

		if ((r = bdr_db_versions(d->db, row->package, &held, &nheld)) < 0)
			break;
		latest = nheld ? held[nheld - 1] : 0;
		for (size_t j = 0; j < nheld; j++)
			has |= held[j] == row->version;
		free(held);
		if (has && row->state != BDR_RECV_ACTIVATED) {
			r = bdr_db_received_set(d->db, row->package, row->version, row->peer,
						BDR_RECV_ACTIVATED, row->bytes_received, NULL, bdrd_now_ns());
			log_info(&ctx, "status", "was '%s', but the library holds it: activated",
				 bdr_db_recv_state_name(row->state));
		} else if (!has && row->state == BDR_RECV_RECEIVING &&
			   (why = stale_reason(d, row, latest, at_start))) {
			r = bdr_db_received_set(d->db, row->package, row->version, row->peer,
						BDR_RECV_FAILED, row->bytes_received, why, bdrd_now_ns());
			bdr_log(BDR_LOG_WARN, &ctx, "status", "was 'receiving', now failed: %s", why);
		} else if (at_start && row->state == BDR_RECV_FAILED) {
			/* Failed for good (the sender ended it): nothing resumes it. */
			bdrd_partial_drop(d, row->package, row->version, "the transfer had failed");
			continue;
		} else {
			continue;
		}
		fixed++;
	}
	free(v);
	if (r < 0)
		return bdr_log_err(BDR_LOG_WARN, NULL, r, "status", "reconciling with the library: %s",
				   bdr_db_errmsg(d->db));
	if (fixed && at_start)
		log_info(NULL, "start", "%zu status rows reconciled with the library", fixed);
	return 0;
}

void bdrd_library_notice(void *arg, const char *msg)
{
	(void)arg;
	bdr_log(BDR_LOG_WARN, NULL, "quarantine", "%s", msg);
}

/* What the data directory keeps besides the versions, and how to reclaim
 * it: quarantined trees (as of the start) and received data of transfers
 * not activated (DIR/partial). */
json_t *bdrd_storage_json(struct bdrd *d)
{
	const char *dir = bdr_library_dir(d->lib);
	char path[PATH_MAX];
	json_t *packs = json_array();
	uint64_t pbytes = 0;
	struct dirent *de;
	DIR *dd;

	snprintf(path, sizeof(path), "%s/partial", dir);
	if ((dd = opendir(path))) {
		while ((de = readdir(dd))) {
			struct stat st;
			if (de->d_name[0] == '.' || fstatat(dirfd(dd), de->d_name, &st, 0) < 0)
				continue;
			pbytes += (uint64_t)st.st_blocks * 512;
			json_array_append_new(packs, json_pack("{s:s, s:I}", "file", de->d_name, "bytes",
							       (json_int_t)st.st_blocks * 512));
		}
		closedir(dd);
	}
	return json_pack("{s:{s:s, s:I, s:I, s:s}, s:{s:s, s:I, s:o, s:s}}",
			 "quarantine", "dir", dir, "trees", (json_int_t)d->quarantine_trees,
			 "bytes", (json_int_t)d->quarantine_bytes, "reclaim",
			 "versions that failed to verify at start, kept to inspect (at most 8 trees, 1 GiB): "
			 "delete DATA/quarantine/* to reclaim",
			 "partial", "dir", dir, "bytes", (json_int_t)pbytes, "files", packs, "reclaim",
			 "received data of transfers not yet activated, kept to resume them; deleted on "
			 "activation, on a failure for lack of space and at start once the transfer failed");
}
