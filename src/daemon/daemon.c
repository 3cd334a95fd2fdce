/* bdrd's life: start (config, key, library, database, listener, control
 * socket, sd_notify READY), the loop, reload on SIGHUP, graceful stop on
 * SIGTERM; the transfer scheduler; the jobs on libuv's pool. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "bdr/error.h"
#include "bdr/library.h"
#include "daemon/ccache.h"
#include "daemon/daemon.h"
#include "daemon/metrics.h"
#include "daemon/guard.h"
#include "daemon/policy.h"

#define TICK_MS 1000

int64_t bdrd_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

const char *bdrd_strerror(int err)
{
	/* libuv's codes are -errno here, plus its own (UV_EOF, UV_EAI_*),
	 * all above bdr's. */
	return err <= -BDR_E_FIRST ? bdr_strerror(err) : uv_strerror(err);
}

/* ---- jobs ---- */

static void job_run(uv_work_t *req)
{
	struct bdrd_job *job = container_of(req, struct bdrd_job, req);

	if (job->locked)
		uv_mutex_lock(&job->d->lib_lock);
	job->rc = job->run(job);
	if (job->locked)
		uv_mutex_unlock(&job->d->lib_lock);
}

static void job_done(uv_work_t *req, int status)
{
	struct bdrd_job *job = container_of(req, struct bdrd_job, req);

	job->d->work_pending--;
	job->done(job, status < 0 ? status : job->rc);
}

void bdrd_work(struct bdrd *d, struct bdrd_job *job, bool locked,
	       int (*run)(struct bdrd_job *), void (*done)(struct bdrd_job *, int))
{
	job->d = d;
	job->locked = locked;
	job->run = run;
	job->done = done;
	job->rc = 0;
	d->work_pending++;
	/* uv_queue_work fails only for a NULL callback. */
	(void)uv_queue_work(d->loop, &job->req, job_run, job_done);
}

/* ---- peers ---- */

struct bdrd_peer *bdrd_peer_get(struct bdrd *d, const char *name)
{
	struct bdrd_peer *p;

	for (p = d->peers; p; p = p->next)
		if (!strcmp(p->name, name))
			return p;
	if (!(p = calloc(1, sizeof(*p))))
		return NULL;
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->next = d->peers;
	d->peers = p;
	return p;
}

void bdrd_peer_error(struct bdrd *d, const char *peer, const char *fmt, ...)
{
	struct bdrd_peer *p = bdrd_peer_get(d, peer);
	va_list ap;

	if (!p)
		return;
	va_start(ap, fmt);
	vsnprintf(p->last_error, sizeof(p->last_error), fmt, ap);
	va_end(ap);
}

static void mib(char *buf, size_t n, uint64_t v)
{
	snprintf(buf, n, "%.1f MiB", (double)v / (1 << 20));
}

int bdrd_budget_take(struct bdrd *d, const char *peer, uint64_t n, const char *what, char *why,
		     size_t whylen)
{
	struct bdrd_peer *p = bdrd_peer_get(d, peer);
	uint64_t limit = d->cfg.limits.peer_memory;
	char want[32], held[32], max[32];

	if (p && bdr_budget_take(&p->mem, limit, n) == 0)
		return 0;
	mib(want, sizeof(want), n);
	mib(held, sizeof(held), p ? p->mem : 0);
	mib(max, sizeof(max), limit);
	snprintf(why, whylen, "site '%s' is at its memory budget here: %s more for %s, with %s "
		 "held of peer_memory %s", peer, want, what, held, max);
	return -ENOBUFS;
}

uint64_t bdrd_budget_left(struct bdrd *d, const char *peer)
{
	struct bdrd_peer *p = bdrd_peer_get(d, peer);
	uint64_t limit = d->cfg.limits.peer_memory;

	return p && p->mem < limit ? limit - p->mem : 0;
}

void bdrd_budget_give(struct bdrd *d, const char *peer, uint64_t n)
{
	struct bdrd_peer *p = bdrd_peer_get(d, peer);

	if (p)
		bdr_budget_give(&p->mem, n);
}

/* ---- the scheduler ----
 *
 * Per destination, the queue's next transfer (by priority, then age) starts
 * on the first address whose schedule admits its priority now, while the
 * destination has fewer than max_transfers_per_peer pushes running and the
 * site fewer than max_transfers: one unreachable destination holds at most
 * its own share of the slots. A transfer whose priority no address admits
 * waits for the next window. */

#define PICKS_PER_KICK 64

static unsigned running(struct bdrd *d)
{
	unsigned n = 0;

	for (struct bdrd_peer *p = d->peers; p; p = p->next)
		n += p->nout;
	return n;
}

static void start_one(struct bdrd *d, const struct bdr_peer_config *pc, struct bdr_db_transfer *row,
		      int addr)
{
	struct bdr_log_ctx ctx = { .peer = row->peer, .package = row->package, .version = row->version };
	struct send_xfer *tx;
	int r;

	/* Taken at once, so the next pick does not return it again. */
	row->state = BDR_XFER_SENDING;
	row->address_index = (uint32_t)addr;
	row->updated_ns = bdrd_now_ns();
	if ((r = bdr_db_transfer_update(d->db, row)) < 0 || !(tx = sender_new(d, row))) {
		bdr_log_err(BDR_LOG_ERROR, &ctx, r < 0 ? r : -ENOMEM, "queue", "cannot start transfer %"
			    PRId64, row->id);
		return;
	}
	log_info(&ctx, "connect", "starting transfer %" PRId64 " on address %d (%u failed attempts before)",
		 row->id, addr, row->attempts);
	r = conn_connect(d, pc->name, tx, (unsigned)addr, row->priority);
	if (r < 0)
		sender_detach(tx, r, "cannot connect");
}

static void give_up(struct bdrd *d, struct bdr_db_transfer *row, const char *why)
{
	struct bdr_log_ctx ctx = { .peer = row->peer, .package = row->package, .version = row->version };

	bdr_log(BDR_LOG_ERROR, &ctx, "failed", "%s", why);
	if (bdr_db_transfer_set_state(d->db, row->id, BDR_XFER_FAILED, why, bdrd_now_ns()) == 0)
		bdr_db_transfer_get(d->db, row->id, row);
	bdrd_transfer_changed(d, row);
}

static void start_next(struct bdrd *d, const struct bdr_peer_config *pc)
{
	struct bdrd_peer *p = bdrd_peer_get(d, pc->name);
	int64_t now = bdrd_now_ns();

	for (int picks = 0; p && picks < PICKS_PER_KICK; picks++) {
		struct bdr_db_transfer row;
		struct bdr_pick pick;
		int r = bdr_db_transfer_next(d->db, pc->name, now, &row);

		if (r == -BDR_ENOTFOUND)
			return;
		if (r < 0) {
			bdr_log_err(BDR_LOG_ERROR, &(struct bdr_log_ctx){ .peer = pc->name }, r, "queue",
				    "cannot read the queue: %s", bdr_db_errmsg(d->db));
			return;
		}
		bdr_policy_pick(pc, &d->cfg.limits, row.address_index, row.priority, p->nout,
				running(d), now, &pick);
		/* Levels are nested (all > medium > high), so when no address
		 * admits the queue's first priority now, none admits the rest:
		 * this destination waits, and the schedule is looked at again at
		 * every tick (a reload applies at once). */
		p->window_opens = pick.kind == BDR_PICK_WINDOW ? pick.at : 0;
		if (pick.kind == BDR_PICK_NO_ADDRESS)
			give_up(d, &row, "no address of the destination is left to try");
		else if (pick.kind != BDR_PICK_START)
			return;
		else
			start_one(d, pc, &row, (int)pick.addr);
	}
}

static void local_time(int64_t t_ns, char *buf, size_t n)
{
	time_t t = (time_t)(t_ns / 1000000000ll);
	struct tm tm;

	if (!localtime_r(&t, &tm) || !strftime(buf, n, "%a %Y-%m-%d %H:%M:%S %Z", &tm))
		snprintf(buf, n, "?");
}

void bdrd_waiting(struct bdrd *d, const struct bdr_db_transfer *t, char *buf, size_t n)
{
	static const char *const prio[] = { "high", "medium", "low" };
	const struct bdr_peer_config *pc = bdr_config_peer(&d->cfg, t->peer);
	struct bdrd_peer *p = bdrd_peer_get(d, t->peer);
	int64_t now = bdrd_now_ns();
	struct bdr_pick pick;
	char when[64];

	buf[0] = 0;
	if (t->state != BDR_XFER_QUEUED && t->state != BDR_XFER_PAUSED)
		return;
	if (!pc) {
		snprintf(buf, n, "%s is no longer configured", t->peer);
		return;
	}
	if (t->next_attempt_ns > now) {
		local_time(t->next_attempt_ns, when, sizeof(when));
		snprintf(buf, n, "retry at %s", when);
		return;
	}
	bdr_policy_pick(pc, &d->cfg.limits, t->address_index, t->priority, p ? p->nout : 0,
			running(d), now, &pick);
	switch (pick.kind) {
	case BDR_PICK_WINDOW:
		local_time(pick.at, when, sizeof(when));
		if (pick.at == INT64_MAX)
			snprintf(buf, n, "no address is open to %s priority in the coming week", prio[t->priority]);
		else
			snprintf(buf, n, "window closed to %s priority; opens %s", prio[t->priority], when);
		break;
	case BDR_PICK_SLOT_PEER:
		snprintf(buf, n, "waiting for a slot: %u transfers to %s at once (max_transfers_per_peer)",
			 p ? p->nout : 0, t->peer);
		break;
	case BDR_PICK_SLOT_ALL:
		snprintf(buf, n, "waiting for a slot: %u transfers at once (max_transfers)", running(d));
		break;
	case BDR_PICK_NO_ADDRESS:
		snprintf(buf, n, "no address of %s is left to try", t->peer);
		break;
	default:
		snprintf(buf, n, "starting");
	}
}

void bdrd_kick(struct bdrd *d)
{
	if (d->stopping)
		return;
	for (size_t i = 0; i < d->cfg.n_peers && running(d) < d->cfg.limits.max_transfers; i++)
		start_next(d, &d->cfg.peers[i]);
}

static void on_tick(uv_timer_t *t)
{
	bdrd_waiters_recheck(t->data);
	bdrd_report_tick(t->data);
	bdrd_remove_tick(t->data);
	bdrd_history_tick(t->data);
	conn_check_windows(t->data);
	conn_flood_report(t->data);
	bdrd_kick(t->data);
}

void bdrd_peer_progress(struct bdrd *d, const struct bdr_db_transfer *t, uint64_t expected,
			uint64_t done)
{
	struct bdrd_peer *p = bdrd_peer_get(d, t->peer);
	int64_t now = bdrd_now_ns();

	if (!p)
		return;
	if (p->xfer != t->id) {
		p->xfer = t->id;
		p->rate_bps = 0;
		p->rate_bytes = t->bytes_sent;
		p->rate_ns = now;
	}
	p->expected_wire = expected;
	p->done_bytes = done;
	/* A rate over windows of at least a second, smoothed. */
	if (now - p->rate_ns >= 1000000000ll && t->bytes_sent >= p->rate_bytes) {
		uint64_t r = (t->bytes_sent - p->rate_bytes) * 1000000000ull / (uint64_t)(now - p->rate_ns);
		p->rate_bps = p->rate_bps ? (p->rate_bps + r) / 2 : r;
		p->rate_bytes = t->bytes_sent;
		p->rate_ns = now;
	}
}

/* The running push's rate and expected total, if t is it. */
void bdrd_transfer_rate(struct bdrd *d, const struct bdr_db_transfer *t, uint64_t *rate,
			uint64_t *expected)
{
	struct bdrd_peer *p = bdrd_peer_get(d, t->peer);
	bool live = p && p->xfer == t->id && t->state == BDR_XFER_SENDING;

	*rate = live ? p->rate_bps : 0;
	*expected = live && p->expected_wire > t->bytes_sent ? p->expected_wire : t->bytes_total;
}

uint64_t bdrd_transfer_done(struct bdrd *d, const struct bdr_db_transfer *t)
{
	struct bdrd_peer *p = bdrd_peer_get(d, t->peer);

	if (t->state == BDR_XFER_DONE)
		return t->bytes_total;
	return p && p->xfer == t->id && t->state == BDR_XFER_SENDING ? p->done_bytes : 0;
}

/* Schedules are read in the site's zone. Only the loop thread reads local
 * time, so setting TZ here races with nothing. */
static void apply_timezone(const struct bdr_config *c)
{
	char tz[PATH_MAX + 2];

	if (!c->site.timezone) {
		unsetenv("TZ");
	} else {
		snprintf(tz, sizeof(tz), strcmp(c->site.timezone, "UTC") ? ":%s" : "UTC0",
			 c->site.timezone);
		setenv("TZ", tz, 1);
	}
	tzset();
}

/* ---- reload ---- */

int bdrd_reload(struct bdrd *d, struct bdr_config_errors *errs)
{
	struct bdr_config next;
	struct bdr_config_diff diff;
	int r;

	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64, uv_hrtime() / 1000);
	r = bdr_config_load(d->cfg.path, &next, errs);
	if (r < 0) {
		for (size_t i = 0; errs && i < errs->n; i++)
			bdr_log(BDR_LOG_ERROR, NULL, "reload", "%s", errs->v[i].text);
		bdr_log(BDR_LOG_ERROR, NULL, "reload",
			"the new configuration is refused; the running one stays in force");
		sd_notify(0, "READY=1");
		return r;
	}
	if (bdr_config_diff(&d->cfg, &next, &diff) == 0) {
		for (size_t i = 0; i < diff.n; i++)
			bdr_log(BDR_LOG_INFO, NULL, "reload", "%s%s", diff.v[i].text,
				diff.v[i].reloadable ? "" : " (ignored until restart)");
		bdr_config_diff_free(&diff);
	}
	bdr_config_keep_fixed(&next, &d->cfg);
	bdr_config_free(&d->cfg);
	d->cfg = next;
	bdr_log_set_level(d->cfg.site.log_level);
	apply_timezone(&d->cfg);
	conn_apply_rates(d);
	log_info(NULL, "reload", "configuration reloaded from %s", d->cfg.path);
	sd_notify(0, "READY=1");
	bdrd_kick(d);
	return 0;
}

/* ---- stopping ---- */

static void bdrd_stop(struct bdrd *d)
{
	if (d->stopping)
		return;
	d->stopping = true;
	sd_notify(0, "STOPPING=1");
	log_info(NULL, "stop", "stopping: transfers are cut cleanly and resume at the next start");
	uv_close((uv_handle_t *)&d->listener, NULL);
	bdrd_metrics_stop(d);
	uv_close((uv_handle_t *)&d->tick, NULL);
	uv_close((uv_handle_t *)&d->sig_term, NULL);
	uv_close((uv_handle_t *)&d->sig_int, NULL);
	uv_close((uv_handle_t *)&d->sig_hup, NULL);
	bdr_control_stop(d->control);
	d->control = NULL;
	conn_close_all(d, "daemon stopping");
}

static void on_signal(uv_signal_t *s, int sig)
{
	struct bdrd *d = s->data;

	if (sig == SIGHUP) {
		struct bdr_config_errors errs = { 0 };
		bdrd_reload(d, &errs);
		bdr_config_errors_free(&errs);
		return;
	}
	bdrd_stop(d);
}

/* ---- starting ---- */

static void on_connection(uv_stream_t *s, int status)
{
	struct bdrd *d = s->data;

	if (status < 0) {
		bdr_log(BDR_LOG_WARN, NULL, "accept", "%s", uv_strerror(status));
		return;
	}
	conn_accept(d);
}

static int listen_on(struct bdrd *d)
{
	const struct bdr_config_address *a = &d->cfg.site.listen;
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE };
	uv_getaddrinfo_t gai;
	char port[8];
	int r;

	snprintf(port, sizeof(port), "%u", a->port);
	uv_tcp_init(d->loop, &d->listener);
	d->listener.data = d;
	r = uv_getaddrinfo(d->loop, &gai, NULL, a->host, port, &hints);
	if (r == 0) {
		r = uv_tcp_bind(&d->listener, gai.addrinfo->ai_addr, 0);
		uv_freeaddrinfo(gai.addrinfo);
	}
	if (r == 0)
		r = uv_listen((uv_stream_t *)&d->listener, 128, on_connection);
	if (r < 0)
		bdr_log(BDR_LOG_ERROR, NULL, "listen", "%s:%u: %s", a->host, a->port, uv_strerror(r));
	return r;
}

static int open_state(struct bdrd *d)
{
	struct bdr_library_opts lo = { .dir = d->cfg.site.data, .keep_versions = d->cfg.site.keep_versions,
				       .notice = bdrd_library_notice };
	struct bdr_library_quarantine q;
	struct bdr_diag dg = { "" };
	char path[PATH_MAX];
	uint32_t requeued = 0;
	int r;

	struct bdr_config_errors ke = { 0 };

	bdr_chunker_params_default(&lo.chunking, d->cfg.site.chunk_avg);
	/* The check --check-config makes, naming the line of "key =". */
	r = bdr_config_check_key(&d->cfg, &ke);
	for (size_t i = 0; i < ke.n; i++)
		bdr_log(BDR_LOG_ERROR, NULL, "start", "%s", ke.v[i].text);
	bdr_config_errors_free(&ke);
	if (r < 0)
		return r;
	r = bdr_key_load(&d->key, d->cfg.site.key, &dg);
	if (r < 0)
		return bdr_log_err(BDR_LOG_ERROR, NULL, r, "start", "key %s: %s", d->cfg.site.key, dg.msg);
	r = bdr_library_open(&d->lib, &lo, &dg);
	if (r < 0)
		return bdr_log_err(BDR_LOG_ERROR, NULL, r, "start", "library %s: %s", d->cfg.site.data, dg.msg);
	if (bdr_library_quarantined(d->lib))
		bdr_log(BDR_LOG_ERROR, NULL, "start", "%u versions failed to verify and were quarantined",
			bdr_library_quarantined(d->lib));
	bdr_library_quarantine_info(d->lib, &q);
	d->quarantine_trees = q.trees, d->quarantine_bytes = q.bytes;
	if (q.trees)
		bdr_log(BDR_LOG_WARN, NULL, "quarantine", "%u trees, %" PRIu64 " bytes in %s/quarantine; "
			"delete them once inspected", q.trees, q.bytes, d->cfg.site.data);
	snprintf(path, sizeof(path), "%s/bdr.db", d->cfg.site.data);
	/* The loop thread's own handle: its writes (progress, states a peer
	 * confirms again) are not worth an fsync each, which would stall
	 * every connection on a slow disk. Pushes are queued durably on the
	 * library's handle, in the import job. */
	r = bdr_db_open(&d->db, path, &dg);
	if (r == 0)
		r = bdr_db_set_synced(d->db, false);
	if (r == 0)
		r = bdr_db_transfers_reset_running(d->db, bdrd_now_ns(), &requeued);
	if (r < 0)
		return bdr_log_err(BDR_LOG_ERROR, NULL, r, "start", "database %s: %s", path, dg.msg);
	if (requeued)
		log_info(NULL, "start", "%u interrupted transfers queued again; they resume", requeued);
	(void)bdrd_status_reconcile(d, NULL, true);
	if (d->cfg.limits.chunk_cache_bytes &&
	    (r = bdrd_ccache_new(&d->ccache, d->cfg.limits.chunk_cache_bytes)) < 0)
		return bdr_log_err(BDR_LOG_ERROR, NULL, r, "start", "chunk cache");
	return 0;
}

static int start_control(struct bdrd *d)
{
	struct bdr_control_opts o = { .daemon_uid = getuid(), .allowed_gid = BDR_CONTROL_NO_GID };

	if (d->cfg.site.control_group.name)
		o.allowed_gid = d->cfg.site.control_group.gid;
	return bdr_control_start(&d->control, d->loop, d->cfg.site.control, &o, bdrd_commands, d);
}

static void signals_start(struct bdrd *d)
{
	uv_signal_t *s[] = { &d->sig_term, &d->sig_int, &d->sig_hup };
	int sig[] = { SIGTERM, SIGINT, SIGHUP };

	for (int i = 0; i < 3; i++) {
		uv_signal_init(d->loop, s[i]);
		s[i]->data = d;
		uv_signal_start(s[i], on_signal, sig[i]);
	}
	uv_timer_init(d->loop, &d->tick);
	d->tick.data = d;
	uv_timer_start(&d->tick, on_tick, TICK_MS, TICK_MS);
}

static void cleanup(struct bdrd *d)
{
	while (d->peers) {
		struct bdrd_peer *p = d->peers;
		d->peers = p->next;
		free(p);
	}
	bdr_db_close(d->db);
	bdr_library_close(d->lib);
	bdrd_ccache_free(d->ccache);
	bdr_key_wipe(&d->key);
	bdr_config_free(&d->cfg);
	uv_mutex_destroy(&d->lib_lock);
}

int bdrd_run(const char *config_path)
{
	struct bdr_config_errors errs = { 0 };
	struct bdrd d = { .loop = uv_default_loop() };
	int r = bdr_config_load(config_path, &d.cfg, &errs);

	if (r < 0) {
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.v[i].text);
		bdr_config_errors_free(&errs);
		return 1;
	}
	bdr_config_errors_free(&errs);
	bdr_log_init(d.cfg.site.name, d.cfg.site.log_level, STDERR_FILENO);
	apply_timezone(&d.cfg);
	uv_mutex_init(&d.lib_lock);
	signal(SIGPIPE, SIG_IGN);
	if (open_state(&d) < 0) {
		cleanup(&d);
		return 3;
	}
	r = listen_on(&d);
	if (r == 0)
		r = bdrd_metrics_start(&d);
	if (r == 0 && (r = start_control(&d)) < 0)
		bdr_log(BDR_LOG_ERROR, NULL, "start", "control socket %s: %s", d.cfg.site.control,
			uv_strerror(r));
	if (r < 0) {
		uv_close((uv_handle_t *)&d.listener, NULL);
		bdrd_metrics_stop(&d);
		uv_run(d.loop, UV_RUN_DEFAULT);
		cleanup(&d);
		return 3;
	}
	signals_start(&d);
	log_info(NULL, "start", "listening on %s:%u, control socket %s, data %s", d.cfg.site.listen.host,
		 d.cfg.site.listen.port, d.cfg.site.control, d.cfg.site.data);
	sd_notify(0, "READY=1");
	bdrd_kick(&d);
	uv_run(d.loop, UV_RUN_DEFAULT);
	log_info(NULL, "stop", "stopped");
	cleanup(&d);
	return uv_loop_close(d.loop) == 0 ? d.exit_status : 1;
}
