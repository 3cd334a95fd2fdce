/* The sender's policy (policy.h) driven as the daemon drives it, with a fake
 * clock through whole weeks, minute by minute, in UTC and in Europe/Paris
 * across the spring-forward week of 2026: a queue of pushes of every
 * priority to two destinations, started, paused and resumed by
 * bdr_policy_pick() and bdr_policy_may_run() alone, and checked at every
 * step against an oracle that reads the grids through localtime_r(3):
 *
 * - a push never runs in a minute whose cell does not admit its priority
 *   on the address it uses;
 * - it pauses at the step of its window's edge and resumes at the next
 *   opening (when a slot is free);
 * - pick takes the first open address in order, from the one its failures
 *   reached, and falls back to a later one when the first is closed;
 * - SLOT_PEER and SLOT_ALL when the limits are reached, and a destination
 *   at its limit does not hold back another;
 * - failures: retries on one address retry_delay_s apart, then the next
 *   address, then FAILED; progress starts the count again; a stopping
 *   daemon's cut never counts;
 * - the throttle follows the local hour (DST included) with per-hour bytes
 *   within 1% of each hour's rate, nothing sent while the window is shut;
 * - a reload (a configuration file loaded again mid-week) takes effect at
 *   the next step.
 *
 * The priority order of the queue is the database's (bdr_db_transfer_next):
 * the simulation sorts its queue the same way, by priority then age.
 *
 * BDR_TEST_VERBOSE=1 prints what each week did. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>

#include "bdr/error.h"
#include "daemon/config.h"
#include "daemon/policy.h"
#include "daemon/schedule.h"
#include "daemon/throttle.h"
#include "testutil.h"

#define NS INT64_C(1000000000)
#define MS INT64_C(1000000)
#define MIN (60 * NS)
#define HOUR (60 * MIN)
#define DAY (24 * HOUR)
#define KIB 1024ull
#define MIB (1024ull * 1024)

#define MAXP 2 /* destinations */
#define MAXA 3 /* addresses of one */

static const char *const prio_name[] = { "high", "medium", "low" };

static bool verbose(void)
{
	const char *v = getenv("BDR_TEST_VERBOSE");

	return v && *v && strcmp(v, "0") != 0;
}

static void set_tz(const char *tz)
{
	setenv("TZ", tz, 1);
	tzset();
}

static int64_t utc(int y, int mo, int d, int h, int mi)
{
	struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h,
			 .tm_min = mi };

	return (int64_t)timegm(&tm) * NS;
}

static const char *when(int64_t t)
{
	static char buf[4][64];
	static int k;
	time_t s = (time_t)(t / NS);
	struct tm tm;

	k = (k + 1) % 4;
	if (t == INT64_MAX)
		return "never";
	localtime_r(&s, &tm);
	strftime(buf[k], sizeof(buf[k]), "%a %Y-%m-%d %H:%M %Z", &tm);
	return buf[k];
}

static uint64_t rng(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* The cell of t's local label admits p: read with localtime_r here, not
 * with the schedule module's own helpers. */
static bool admits_at(const struct bdr_schedule *s, enum bdr_db_priority p, int64_t t)
{
	time_t sec = (time_t)(t / NS);
	struct tm tm;

	cr_assert_not_null(localtime_r(&sec, &tm));
	return s->cell[(tm.tm_wday + 6) % 7][tm.tm_hour] > (int)p;
}

static void parse_schedule(struct bdr_schedule *s, const char *text)
{
	struct bdr_diag d = { "" };
	int rc = bdr_schedule_parse(s, text, &d);

	cr_assert_eq(rc, 0, "'%s': %s", text, d.msg);
}

/* ---- the oracle: each address's grid, minute by minute ---- */

/* For one schedule over [t0, t0 + n minutes): whether each minute admits
 * each priority, and the first admitting minute from each one on. Edges
 * fall on whole minutes in the zones used here (whole-hour offsets), so a
 * minute is admitted all through or not at all. */
struct oracle {
	int64_t t0;
	size_t n;
	bool *admit[3];
	size_t *next_open[3]; /* SIZE_MAX: none in range */
};

static void oracle_build(struct oracle *o, const struct bdr_schedule *s, int64_t t0, size_t n)
{
	o->t0 = t0;
	o->n = n;
	for (int p = 0; p < 3; p++) {
		o->admit[p] = calloc(n, sizeof(bool));
		o->next_open[p] = calloc(n, sizeof(size_t));
		cr_assert(o->admit[p] && o->next_open[p]);
		for (size_t i = 0; i < n; i++)
			o->admit[p][i] = admits_at(s, (enum bdr_db_priority)p, t0 + (int64_t)i * MIN);
		for (size_t i = n; i-- > 0;)
			o->next_open[p][i] = o->admit[p][i] ? i
					     : i + 1 < n ? o->next_open[p][i + 1] : SIZE_MAX;
	}
}

static void oracle_free(struct oracle *o)
{
	for (int p = 0; p < 3; p++) {
		free(o->admit[p]);
		free(o->next_open[p]);
	}
	memset(o, 0, sizeof(*o));
}

/* bdr_schedule_next_open() as the grid says: INT64_MAX past 8 days. */
static int64_t oracle_next_open(const struct oracle *o, enum bdr_db_priority p, size_t i)
{
	size_t j = o->next_open[p][i];

	if (j == SIZE_MAX || j - i > 8 * 1440)
		return INT64_MAX;
	return o->t0 + (int64_t)j * MIN;
}

/* ---- the simulation ---- */

enum pstate { P_FUTURE, P_WAITING, P_RUNNING, P_DONE, P_FAILED };

struct push {
	int id;
	unsigned peer;
	enum bdr_db_priority prio;
	int64_t arrive;    /* queued then (on a whole minute) */
	int64_t need;      /* minutes of sending left */
	enum pstate st;
	unsigned from;     /* address_index: where its failures got to */
	unsigned addr;     /* running on */
	int64_t window_at; /* the last pick said WINDOW, opening then; 0: it did not */
	int64_t paused_at; /* 0: not paused */
	int pauses, starts;
	int64_t done_at;
};

struct world {
	const char *name;
	const struct bdr_peer_config *peer[MAXP];
	unsigned npeers;
	struct bdr_config_limits lim;
	struct oracle orc[MAXP][MAXA];
	struct push *v;
	size_t n;
	int64_t t0;
	size_t steps;      /* minutes simulated */
	size_t horizon;    /* minutes the oracles cover */
	unsigned running[MAXP];
	/* what happened */
	unsigned pauses, resumes, resumes_elsewhere, same_step_moves, opening_starts;
	unsigned starts_on[MAXP][MAXA], fallbacks;
	unsigned slot_peer, slot_all, window_waits, bypasses;
	unsigned max_running, max_peer_running[MAXP];
	uint64_t minutes_run[3]; /* by priority */
	uint64_t minutes_on[MAXP][MAXA];
	unsigned reload_pauses;
	/* a reload at step reload_step[k] swaps peer to reload_cfg[k] */
	size_t reload_step[4];
	const struct bdr_config *reload_cfg[4];
	unsigned nreloads;
	const struct bdr_config *cfg; /* the configuration in force, if loaded from a file */
};

static void world_oracles(struct world *w)
{
	for (unsigned p = 0; p < w->npeers; p++)
		for (size_t a = 0; a < w->peer[p]->address.n; a++) {
			oracle_free(&w->orc[p][a]);
			oracle_build(&w->orc[p][a], &w->peer[p]->address.v[a].schedule, w->t0,
				     w->horizon);
		}
}

static void world_init(struct world *w, const char *name, int64_t t0, size_t steps)
{
	memset(w, 0, sizeof(*w));
	w->name = name;
	w->t0 = t0;
	w->steps = steps;
	w->horizon = steps + 9 * 1440;
}

static void world_free(struct world *w)
{
	for (unsigned p = 0; p < MAXP; p++)
		for (unsigned a = 0; a < MAXA; a++)
			oracle_free(&w->orc[p][a]);
	free(w->v);
}

/* The database's order: priority, then age, then id. */
static int queue_cmp(const void *x, const void *y)
{
	const struct push *a = *(const struct push *const *)x, *b = *(const struct push *const *)y;

	if (a->prio != b->prio)
		return (int)a->prio - (int)b->prio;
	if (a->arrive != b->arrive)
		return a->arrive < b->arrive ? -1 : 1;
	return a->id - b->id;
}

static unsigned all_running(const struct world *w)
{
	unsigned n = 0;

	for (unsigned p = 0; p < w->npeers; p++)
		n += w->running[p];
	return n;
}

/* What pick must say, from the grids alone. */
static void expected_pick(const struct world *w, const struct push *x, size_t i,
			  struct bdr_pick *e)
{
	const struct bdr_peer_config *pc = w->peer[x->peer];
	int64_t first = INT64_MAX;

	*e = (struct bdr_pick){ .kind = BDR_PICK_NO_ADDRESS };
	if (x->from >= pc->address.n)
		return;
	if (w->running[x->peer] >= w->lim.max_transfers_per_peer) {
		e->kind = BDR_PICK_SLOT_PEER;
		return;
	}
	if (all_running(w) >= w->lim.max_transfers) {
		e->kind = BDR_PICK_SLOT_ALL;
		return;
	}
	for (unsigned a = x->from; a < pc->address.n; a++) {
		const struct oracle *o = &w->orc[x->peer][a];
		int64_t at;

		if (o->admit[x->prio][i]) {
			*e = (struct bdr_pick){ .kind = BDR_PICK_START, .addr = a };
			return;
		}
		at = oracle_next_open(o, x->prio, i);
		if (at < first)
			first = at;
	}
	*e = (struct bdr_pick){ .kind = BDR_PICK_WINDOW, .addr = x->from, .at = first };
}

static void step(struct world *w, size_t i)
{
	int64_t t = w->t0 + (int64_t)i * MIN;
	bool reloaded = false;
	struct push *q[256];
	size_t nq = 0;
	bool peer_slot_blocked[MAXP] = { false }, peer_started[MAXP] = { false };

	/* A reload takes effect at this step: the daemon re-finds its peers by
	 * name in the new configuration. */
	for (unsigned k = 0; k < w->nreloads; k++)
		if (w->reload_step[k] == i) {
			w->cfg = w->reload_cfg[k];
			for (unsigned p = 0; p < w->npeers; p++) {
				w->peer[p] = bdr_config_peer(w->cfg, w->peer[p]->name);
				cr_assert_not_null(w->peer[p]);
			}
			w->lim = w->cfg->limits;
			world_oracles(w);
			reloaded = true;
			/* what pick said of the windows was of the old grids */
			for (size_t j = 0; j < w->n; j++)
				w->v[j].window_at = 0;
		}

	for (size_t k = 0; k < w->n; k++) {
		struct push *x = &w->v[k];

		/* pushes that ended last step free their slot now */
		if (x->st == P_RUNNING && x->need == 0) {
			x->st = P_DONE;
			x->done_at = t;
			w->running[x->peer]--;
		}
		if (x->st == P_FUTURE && x->arrive <= t)
			x->st = P_WAITING;
	}

	/* 1. Running pushes whose window closed pause. */
	for (size_t k = 0; k < w->n; k++) {
		struct push *x = &w->v[k];
		const struct bdr_config_address *a;
		bool may;

		if (x->st != P_RUNNING)
			continue;
		a = &w->peer[x->peer]->address.v[x->addr];
		may = bdr_policy_may_run(a, x->prio, t);
		cr_assert_eq(may, w->orc[x->peer][x->addr].admit[x->prio][i],
			     "%s: push %d (%s) on address %u at %s: may_run %d, the grid says %d",
			     w->name, x->id, prio_name[x->prio], x->addr, when(t), may, !may);
		if (may)
			continue;
		if (!reloaded) {
			/* It ran all through the last step (checked there): the
			 * edge is in (t - 1 min, t], and is t itself. */
			int64_t edge = bdr_schedule_next_change(&a->schedule, x->prio, t - MIN, NULL);

			cr_assert(edge > t - MIN && edge <= t,
				  "%s: push %d paused at %s, the edge was at %s", w->name, x->id,
				  when(t), when(edge));
		} else {
			w->reload_pauses++;
		}
		x->st = P_WAITING;
		x->paused_at = t;
		x->pauses++;
		x->window_at = 0;
		w->pauses++;
		w->running[x->peer]--;
	}

	/* 2. The scheduler: each destination's queue in the database's order,
	 * as bdrd_kick() does, destination by destination. */
	for (size_t k = 0; k < w->n; k++)
		if (w->v[k].st == P_WAITING) {
			cr_assert_lt(nq, sizeof(q) / sizeof(q[0]));
			q[nq++] = &w->v[k];
		}
	qsort(q, nq, sizeof(q[0]), queue_cmp);
	for (unsigned p = 0; p < w->npeers; p++) {
		for (size_t k = 0; k < nq; k++) {
			struct push *x = q[k];
			struct bdr_pick got, want;

			if (x->peer != p)
				continue;
			expected_pick(w, x, i, &want);
			bdr_policy_pick(w->peer[p], &w->lim, x->from, x->prio, w->running[p],
					all_running(w), t, &got);
			cr_assert_eq(got.kind, want.kind,
				     "%s: push %d (%s, from address %u) at %s: pick %d, expected %d "
				     "(running %u here, %u in all)",
				     w->name, x->id, prio_name[x->prio], x->from, when(t), got.kind,
				     want.kind, w->running[p], all_running(w));
			if (got.kind == BDR_PICK_START)
				cr_assert_eq(got.addr, want.addr,
					     "%s: push %d (%s) at %s: address %u, the first open is %u",
					     w->name, x->id, prio_name[x->prio], when(t), got.addr,
					     want.addr);
			if (got.kind == BDR_PICK_WINDOW)
				cr_assert_eq(got.at, want.at,
					     "%s: push %d (%s) at %s: the window opens %s, not %s",
					     w->name, x->id, prio_name[x->prio], when(t), when(got.at),
					     when(want.at));
			switch (got.kind) {
			case BDR_PICK_START:
				/* Waiting for a window: started at its opening. */
				if (x->window_at) {
					cr_assert_eq(t, x->window_at,
						     "%s: push %d (%s) waited for %s, started %s",
						     w->name, x->id, prio_name[x->prio],
						     when(x->window_at), when(t));
					w->opening_starts++;
				}
				if (x->paused_at) {
					w->resumes++;
					if (got.addr != x->addr)
						w->resumes_elsewhere++;
					if (x->paused_at == t)
						w->same_step_moves++;
				}
				if (got.addr > x->from)
					w->fallbacks++;
				x->st = P_RUNNING;
				x->addr = got.addr;
				x->window_at = 0;
				x->paused_at = 0;
				x->starts++;
				w->starts_on[p][got.addr]++;
				w->running[p]++;
				peer_started[p] = true;
				break;
			case BDR_PICK_WINDOW:
				cr_assert_gt(got.at, t);
				x->window_at = got.at;
				w->window_waits++;
				break;
			case BDR_PICK_SLOT_PEER:
				w->slot_peer++;
				x->window_at = 0;
				peer_slot_blocked[p] = true;
				break;
			case BDR_PICK_SLOT_ALL:
				w->slot_all++;
				x->window_at = 0;
				break;
			case BDR_PICK_NO_ADDRESS:
				x->st = P_FAILED;
				break;
			}
			/* The daemon stops at a full slot: the rest of this
			 * destination's queue waits too. */
			if (got.kind == BDR_PICK_SLOT_PEER || got.kind == BDR_PICK_SLOT_ALL)
				break;
		}
	}
	for (unsigned p = 0; p < w->npeers; p++)
		for (unsigned o = 0; o < w->npeers; o++)
			if (o != p && peer_slot_blocked[p] && peer_started[o])
				w->bypasses++;

	/* 3. A minute of sending: never in a minute its cell does not admit. */
	cr_assert_leq(all_running(w), w->lim.max_transfers);
	if (all_running(w) > w->max_running)
		w->max_running = all_running(w);
	for (unsigned p = 0; p < w->npeers; p++) {
		cr_assert_leq(w->running[p], w->lim.max_transfers_per_peer);
		if (w->running[p] > w->max_peer_running[p])
			w->max_peer_running[p] = w->running[p];
	}
	for (size_t k = 0; k < w->n; k++) {
		struct push *x = &w->v[k];
		const struct bdr_schedule *s;

		if (x->st != P_RUNNING)
			continue;
		s = &w->peer[x->peer]->address.v[x->addr].schedule;
		if (!admits_at(s, x->prio, t) || !admits_at(s, x->prio, t + MIN - 1))
			cr_assert_fail("%s: push %d (%s) runs on address %u at %s, whose cell does "
				       "not admit it", w->name, x->id, prio_name[x->prio], x->addr,
				       when(t));
		x->need--;
		w->minutes_run[x->prio]++;
		w->minutes_on[x->peer][x->addr]++;
	}
}

static void world_run(struct world *w)
{
	world_oracles(w);
	for (size_t i = 0; i < w->steps; i++)
		step(w, i);
}

static void world_report(const struct world *w)
{
	unsigned done = 0;

	for (size_t k = 0; k < w->n; k++)
		done += w->v[k].st == P_DONE;
	if (!verbose())
		return;
	fprintf(stderr, "%s: %zu pushes, %u done; %u pauses, %u resumes (%u on another address, "
		"%u in the step of the pause); %u starts at a window's opening; %u fallbacks to a later address; waits: %u window, "
		"%u slot_peer, %u slot_all; %u steps where a destination at its limit did not hold "
		"another; running at most %u (%u, %u per destination); minutes run high/medium/low "
		"%" PRIu64 "/%" PRIu64 "/%" PRIu64 "\n",
		w->name, w->n, done, w->pauses, w->resumes, w->resumes_elsewhere,
		w->same_step_moves, w->opening_starts, w->fallbacks, w->window_waits, w->slot_peer, w->slot_all,
		w->bypasses, w->max_running, w->max_peer_running[0], w->max_peer_running[1],
		w->minutes_run[0], w->minutes_run[1], w->minutes_run[2]);
	for (unsigned p = 0; p < w->npeers; p++)
		for (size_t a = 0; a < w->peer[p]->address.n; a++)
			fprintf(stderr, "    %s address %zu: %u starts, %" PRIu64 " minutes\n",
				w->peer[p]->name, a, w->starts_on[p][a], w->minutes_on[p][a]);
}

/* ---- destinations built in the test ---- */

/* Office hours for high only, evenings for medium, a Friday night closed,
 * and Sunday windows on the hours DST moves in Europe. */
#define MPLS_SCHEDULE                                                                      \
	"weekdays 08-18 high; weekdays 18-22 medium; fri 22-06 closed; sun 01-04 high;"      \
	"sun 02-03 closed"
/* A backup line: medium all day, everyone at night, shut Saturday afternoon. */
#define VPN_SCHEDULE "all all medium; daily 00-07 all; sat 12-18 closed"
/* Another destination, closed in the middle of weekdays. */
#define DEPOT_SCHEDULE "weekdays 09-17 closed; wed 12-14 high"

static struct bdr_config_address branch_addr[2], depot_addr[1];
static struct bdr_peer_config branch_pc, depot_pc;

static void build_peers(void)
{
	memset(branch_addr, 0, sizeof(branch_addr));
	memset(depot_addr, 0, sizeof(depot_addr));
	snprintf(branch_addr[0].name, sizeof(branch_addr[0].name), "mpls");
	parse_schedule(&branch_addr[0].schedule, MPLS_SCHEDULE);
	snprintf(branch_addr[1].name, sizeof(branch_addr[1].name), "vpn");
	parse_schedule(&branch_addr[1].schedule, VPN_SCHEDULE);
	snprintf(depot_addr[0].name, sizeof(depot_addr[0].name), "depot");
	parse_schedule(&depot_addr[0].schedule, DEPOT_SCHEDULE);
	branch_pc = (struct bdr_peer_config){ .name = "branch",
					      .address = { .v = branch_addr, .n = 2 } };
	depot_pc = (struct bdr_peer_config){ .name = "depot",
					     .address = { .v = depot_addr, .n = 1 } };
}

static const struct bdr_config_limits limits_2_3 = {
	.max_transfers = 3, .max_transfers_per_peer = 2, .retries = 3, .retry_delay_s = 30,
};

/* A week's queue: pushes of every priority to both destinations, arriving
 * all week (the last ones do not finish), each needing ten minutes to
 * twelve hours of sending. */
static void random_queue(struct world *w, uint64_t seed, size_t n)
{
	w->v = calloc(n, sizeof(*w->v));
	cr_assert_not_null(w->v);
	w->n = n;
	for (size_t k = 0; k < n; k++) {
		struct push *x = &w->v[k];

		x->id = (int)k + 1;
		x->peer = (unsigned)(rng(&seed) % 3 == 0); /* 2/3 to branch */
		x->prio = (enum bdr_db_priority)(k % 3);
		x->arrive = w->t0 + (int64_t)(rng(&seed) % (6 * 1440 + 720)) * MIN;
		x->need = 10 + (int64_t)(rng(&seed) % 710);
	}
}

static void week(const char *name, const char *tz, int64_t monday, uint64_t seed)
{
	struct world w;
	unsigned done = 0;

	set_tz(tz);
	build_peers();
	world_init(&w, name, monday, 7 * 1440);
	w.peer[0] = &branch_pc;
	w.peer[1] = &depot_pc;
	w.npeers = 2;
	w.lim = limits_2_3;
	random_queue(&w, seed, 60);
	world_run(&w);
	world_report(&w);
	for (size_t k = 0; k < w.n; k++)
		done += w.v[k].st == P_DONE;
	/* The week exercised what is checked. */
	cr_assert_gt(w.pauses, 5, "%s: %u pauses", name, w.pauses);
	cr_assert_gt(w.resumes, 5, "%s: %u resumes", name, w.resumes);
	cr_assert_gt(w.resumes_elsewhere, 0, "%s: no push resumed on another address", name);
	cr_assert_gt(w.fallbacks, 0, "%s: no fallback to a later address", name);
	cr_assert_gt(w.starts_on[0][0], 0);
	cr_assert_gt(w.starts_on[0][1], 0);
	cr_assert_gt(w.window_waits, 0);
	cr_assert_gt(w.opening_starts, 5, "%s: %u starts at an opening", name, w.opening_starts);
	cr_assert_gt(w.slot_peer, 0, "%s: max_transfers_per_peer never reached", name);
	cr_assert_gt(w.slot_all, 0, "%s: max_transfers never reached", name);
	cr_assert_gt(w.bypasses, 0, "%s: a destination at its limit held back the other", name);
	cr_assert_eq(w.max_running, 3);
	cr_assert_gt(w.minutes_run[BDR_PRIO_LOW], 0);
	cr_assert_gt(done, w.n / 3, "%s: only %u of %zu pushes done in a week", name, done, w.n);
	/* Nothing failed: no address was ever given up. */
	for (size_t k = 0; k < w.n; k++)
		cr_assert_neq(w.v[k].st, P_FAILED);
	world_free(&w);
}

Test(policy, a_week_by_minute_utc)
{
	week("UTC week", "UTC", utc(2026, 6, 1, 0, 0), 0x5eed);
}

Test(policy, a_week_by_minute_paris_spring_forward)
{
	/* Monday 2026-03-23 00:00 in Paris; clocks go 02:00 -> 03:00 on Sunday
	 * the 29th. */
	week("Paris DST week", "Europe/Paris", utc(2026, 3, 22, 23, 0), 0xd57);
}

Test(policy, a_week_by_minute_paris_fall_back)
{
	/* Monday 2026-10-19 00:00 in Paris; 03:00 -> 02:00 on Sunday the 25th. */
	week("Paris fall-back week", "Europe/Paris", utc(2026, 10, 18, 22, 0), 0xfa11);
}

/* The spring-forward Sunday, edge by edge: "sun 01-04 high; sun 02-03
 * closed" on mpls is one stretch of high from 01:00 to 04:00 local, two
 * absolute hours (02:00 never happens); a high push runs through it
 * without a pause, a medium one falls back to vpn and comes back later. */
Test(policy, the_hour_dst_skips)
{
	int64_t t0 = utc(2026, 3, 28, 23, 0); /* Sun 00:00 CET */
	struct world w;

	set_tz("Europe/Paris");
	build_peers();
	world_init(&w, "Paris DST Sunday", t0, 6 * 60);
	w.peer[0] = &branch_pc;
	w.npeers = 1;
	w.lim = limits_2_3;
	w.v = calloc(2, sizeof(*w.v));
	w.n = 2;
	w.v[0] = (struct push){ .id = 1, .prio = BDR_PRIO_HIGH, .arrive = t0 + 30 * MIN, .need = 300 };
	w.v[1] = (struct push){ .id = 2, .prio = BDR_PRIO_MEDIUM, .arrive = t0 + 30 * MIN, .need = 300 };
	world_run(&w);
	world_report(&w);
	/* high: 00:30-01:00 all, 01:00-04:00 high (2 h absolute), on: never paused */
	cr_assert_eq(w.v[0].pauses, 0);
	cr_assert_eq(w.v[0].starts, 1);
	cr_assert_eq(w.v[0].addr, 0);
	/* medium: mpls until 01:00 CET, then vpn (medium all day) at once */
	cr_assert_eq(w.v[1].pauses, 1);
	cr_assert_eq(w.v[1].addr, 1);
	cr_assert_eq(w.same_step_moves, 1);
	world_free(&w);
}

/* ---- pick and may_run, case by case ---- */

Test(policy, pick_prefers_the_first_open_address)
{
	int64_t tue_10 = utc(2026, 6, 2, 10, 0), tue_03 = utc(2026, 6, 2, 3, 0);
	int64_t sat_13 = utc(2026, 6, 6, 13, 0);
	struct bdr_pick k;

	set_tz("UTC");
	build_peers();
	/* night: mpls open to all, it is first */
	bdr_policy_pick(&branch_pc, &limits_2_3, 0, BDR_PRIO_LOW, 0, 0, tue_03, &k);
	cr_assert(k.kind == BDR_PICK_START && k.addr == 0);
	/* office hours: high stays on mpls, medium falls back to vpn */
	bdr_policy_pick(&branch_pc, &limits_2_3, 0, BDR_PRIO_HIGH, 0, 0, tue_10, &k);
	cr_assert(k.kind == BDR_PICK_START && k.addr == 0);
	bdr_policy_pick(&branch_pc, &limits_2_3, 0, BDR_PRIO_MEDIUM, 0, 0, tue_10, &k);
	cr_assert(k.kind == BDR_PICK_START && k.addr == 1);
	/* low: both closed; the earlier opening of the two (mpls at 22:00,
	 * vpn at 00:00) */
	bdr_policy_pick(&branch_pc, &limits_2_3, 0, BDR_PRIO_LOW, 0, 0, tue_10, &k);
	cr_assert_eq(k.kind, BDR_PICK_WINDOW);
	cr_assert_eq(k.at, utc(2026, 6, 2, 22, 0), "%s", when(k.at));
	/* from address 1 (failures reached it): mpls is not looked at */
	bdr_policy_pick(&branch_pc, &limits_2_3, 1, BDR_PRIO_LOW, 0, 0, tue_10, &k);
	cr_assert_eq(k.kind, BDR_PICK_WINDOW);
	cr_assert_eq(k.at, utc(2026, 6, 3, 0, 0), "%s", when(k.at));
	bdr_policy_pick(&branch_pc, &limits_2_3, 1, BDR_PRIO_LOW, 0, 0, tue_03, &k);
	cr_assert(k.kind == BDR_PICK_START && k.addr == 1, "never back to an earlier address");
	/* Saturday 13:00: mpls open to all, vpn shut: mpls */
	bdr_policy_pick(&branch_pc, &limits_2_3, 0, BDR_PRIO_HIGH, 0, 0, sat_13, &k);
	cr_assert(k.kind == BDR_PICK_START && k.addr == 0);
	bdr_policy_pick(&branch_pc, &limits_2_3, 1, BDR_PRIO_HIGH, 0, 0, sat_13, &k);
	cr_assert_eq(k.kind, BDR_PICK_WINDOW);
	cr_assert_eq(k.at, utc(2026, 6, 6, 18, 0));
	/* no address left */
	bdr_policy_pick(&branch_pc, &limits_2_3, 2, BDR_PRIO_HIGH, 0, 0, sat_13, &k);
	cr_assert_eq(k.kind, BDR_PICK_NO_ADDRESS);
	/* an address closed for good: never opens within the week */
	struct bdr_config_address shut = { .name = "shut" };
	struct bdr_peer_config one = { .name = "one", .address = { .v = &shut, .n = 1 } };
	parse_schedule(&shut.schedule, "all all closed");
	bdr_policy_pick(&one, &limits_2_3, 0, BDR_PRIO_HIGH, 0, 0, sat_13, &k);
	cr_assert_eq(k.kind, BDR_PICK_WINDOW);
	cr_assert_eq(k.at, INT64_MAX);
	/* a destination without addresses (it only connects to us) */
	struct bdr_peer_config none = { .name = "none" };
	bdr_policy_pick(&none, &limits_2_3, 0, BDR_PRIO_HIGH, 0, 0, sat_13, &k);
	cr_assert_eq(k.kind, BDR_PICK_NO_ADDRESS);
	/* may_run: the address in use; gone in a reload: no */
	cr_assert(bdr_policy_may_run(&branch_addr[0], BDR_PRIO_HIGH, tue_10));
	cr_assert_not(bdr_policy_may_run(&branch_addr[0], BDR_PRIO_MEDIUM, tue_10));
	cr_assert(bdr_policy_may_run(&branch_addr[1], BDR_PRIO_MEDIUM, tue_10));
	cr_assert_not(bdr_policy_may_run(NULL, BDR_PRIO_HIGH, tue_10));
}

Test(policy, slots_per_destination_and_for_all)
{
	int64_t t = utc(2026, 6, 2, 3, 0);
	struct bdr_pick k;

	set_tz("UTC");
	build_peers();
	/* branch at its limit (2): SLOT_PEER, while depot may start */
	bdr_policy_pick(&branch_pc, &limits_2_3, 0, BDR_PRIO_HIGH, 2, 2, t, &k);
	cr_assert_eq(k.kind, BDR_PICK_SLOT_PEER);
	bdr_policy_pick(&depot_pc, &limits_2_3, 0, BDR_PRIO_LOW, 0, 2, t, &k);
	cr_assert(k.kind == BDR_PICK_START && k.addr == 0);
	/* three running in all: SLOT_ALL for everyone, even under its own limit */
	bdr_policy_pick(&depot_pc, &limits_2_3, 0, BDR_PRIO_HIGH, 1, 3, t, &k);
	cr_assert_eq(k.kind, BDR_PICK_SLOT_ALL);
	bdr_policy_pick(&branch_pc, &limits_2_3, 0, BDR_PRIO_HIGH, 2, 3, t, &k);
	cr_assert_eq(k.kind, BDR_PICK_SLOT_PEER, "the destination's own limit is named first");
	/* a full slot is reported even when the window is closed too */
	bdr_policy_pick(&depot_pc, &limits_2_3, 0, BDR_PRIO_LOW, 0, 3,
			utc(2026, 6, 2, 10, 0), &k);
	cr_assert_eq(k.kind, BDR_PICK_SLOT_ALL);
	bdr_policy_pick(&depot_pc, &limits_2_3, 0, BDR_PRIO_LOW, 0, 2,
			utc(2026, 6, 2, 10, 0), &k);
	cr_assert_eq(k.kind, BDR_PICK_WINDOW);
	cr_assert_eq(k.at, utc(2026, 6, 2, 17, 0));
}

/* ---- failures over a fake clock ---- */

/* One destination with naddr addresses, of which those in down[] refuse
 * every attempt (a connect that fails after connect_s); an attempt on any
 * other succeeds. Driven second by second like the daemon: a queued push
 * starts when next_attempt_ns has come, on pick's address. Returns the
 * final state; att[] gets each attempt (address, start). */
struct attempt {
	unsigned addr;
	int64_t start;
	bool ok;
};

static enum bdr_db_xfer_state run_failures(const struct bdr_config_limits *l, unsigned naddr,
					   const bool *down, int64_t connect_s,
					   int64_t t0, struct attempt *att, size_t *natt)
{
	struct bdr_config_address addr[MAXA];
	struct bdr_peer_config pc = { .name = "far", .address = { .v = addr, .n = naddr } };
	uint32_t from = 0, attempts = 0;
	int64_t next = t0, t = t0;

	memset(addr, 0, sizeof(addr));
	for (unsigned a = 0; a < naddr; a++)
		bdr_schedule_default(&addr[a].schedule);
	*natt = 0;
	for (int guard = 0; guard < 100000; guard++, t += NS) {
		struct bdr_pick k;
		struct bdr_failure f;

		if (t < next)
			continue;
		bdr_policy_pick(&pc, l, from, BDR_PRIO_LOW, 0, 0, t, &k);
		if (k.kind == BDR_PICK_NO_ADDRESS)
			return BDR_XFER_FAILED;
		cr_assert_eq(k.kind, BDR_PICK_START);
		cr_assert_eq(k.addr, from, "the attempt goes to the address failures reached");
		att[(*natt)++] = (struct attempt){ .addr = k.addr, .start = t, .ok = !down[k.addr] };
		if (!down[k.addr])
			return BDR_XFER_DONE;
		t += connect_s * NS;
		bdr_policy_failure(l, naddr, from, attempts, false, false, t, &f);
		if (f.state == BDR_XFER_FAILED) {
			cr_assert(f.moved && f.address == naddr);
			return BDR_XFER_FAILED;
		}
		cr_assert_eq(f.state, BDR_XFER_QUEUED);
		if (f.moved) {
			cr_assert_eq(f.address, from + 1);
			cr_assert_eq(f.attempts, 0);
			cr_assert_eq(f.next_attempt_ns, t, "the next address is tried at once");
		} else {
			cr_assert_eq(f.address, from);
			cr_assert_eq(f.attempts, attempts + 1);
			cr_assert_eq(f.next_attempt_ns, t + (int64_t)l->retry_delay_s * NS);
		}
		from = f.address;
		attempts = f.attempts;
		next = f.next_attempt_ns;
		t -= NS; /* the loop's step brings it back to t */
	}
	cr_assert_fail("the simulation did not end");
	return BDR_XFER_QUEUED;
}

Test(policy, failures_retry_then_move_then_fail)
{
	struct bdr_config_limits l = { .max_transfers = 8, .max_transfers_per_peer = 2,
				       .retries = 2, .retry_delay_s = 30 };
	bool down_all[MAXA] = { true, true, true }, down_first[MAXA] = { true, false, false };
	struct attempt att[64];
	size_t n;
	int64_t t0 = utc(2026, 6, 1, 12, 0);

	set_tz("UTC");
	/* Every address down: retries + 1 attempts on each, retry_delay_s
	 * apart (after the 15 s each attempt takes to fail), the next address
	 * at once, FAILED after the last. */
	cr_assert_eq(run_failures(&l, 3, down_all, 15, t0, att, &n), BDR_XFER_FAILED);
	cr_assert_eq(n, 9, "%zu attempts", n);
	for (size_t i = 0; i < n; i++) {
		cr_assert_eq(att[i].addr, i / 3, "attempt %zu on address %u", i, att[i].addr);
		if (i && att[i].addr == att[i - 1].addr)
			cr_assert_eq(att[i].start - att[i - 1].start, (15 + 30) * NS,
				     "attempt %zu: %" PRId64 " s after the last", i,
				     (att[i].start - att[i - 1].start) / NS);
		else if (i)
			cr_assert_eq(att[i].start - att[i - 1].start, 15 * NS,
				     "the next address at once");
	}
	if (verbose())
		fprintf(stderr, "failures, every address down: %zu attempts over %" PRId64 " s\n", n,
			(att[n - 1].start - t0) / NS + 15);
	/* The first address down: failover after retries + 1 attempts. */
	cr_assert_eq(run_failures(&l, 3, down_first, 15, t0, att, &n), BDR_XFER_DONE);
	cr_assert_eq(n, 4);
	cr_assert(att[3].addr == 1 && att[3].ok);
	cr_assert_eq(att[3].start - t0, (3 * 15 + 2 * 30) * NS);
	/* retries = 0: the next address at the first failure */
	l.retries = 0;
	cr_assert_eq(run_failures(&l, 3, down_all, 15, t0, att, &n), BDR_XFER_FAILED);
	cr_assert_eq(n, 3);
	cr_assert(att[0].addr == 0 && att[1].addr == 1 && att[2].addr == 2);
	/* retries = 1 (integration test 4): twice on the first, then the second */
	l.retries = 1;
	l.retry_delay_s = 1;
	cr_assert_eq(run_failures(&l, 2, down_first, 0, t0, att, &n), BDR_XFER_DONE);
	cr_assert_eq(n, 3);
	cr_assert(att[0].addr == 0 && att[1].addr == 0 && att[2].addr == 1);
	cr_assert_eq(att[1].start - att[0].start, NS);
}

Test(policy, progress_starts_the_count_again)
{
	struct bdr_config_limits l = { .retries = 2, .retry_delay_s = 30 };
	int64_t t = utc(2026, 6, 1, 12, 0);
	struct bdr_failure f;

	/* two failures in vain on address 1 */
	bdr_policy_failure(&l, 3, 1, 0, false, false, t, &f);
	cr_assert(f.attempts == 1 && f.address == 1 && !f.moved);
	bdr_policy_failure(&l, 3, 1, f.attempts, false, false, t, &f);
	cr_assert(f.attempts == 2 && f.address == 1 && !f.moved);
	/* one that sent chunks: the count starts again (this one is the first) */
	bdr_policy_failure(&l, 3, 1, f.attempts, true, false, t, &f);
	cr_assert_eq(f.state, BDR_XFER_QUEUED);
	cr_assert(f.attempts == 1 && f.address == 1 && !f.moved, "attempts %u address %u",
		  f.attempts, f.address);
	cr_assert_eq(f.next_attempt_ns, t + 30 * NS);
	/* so two more in vain are needed to move */
	bdr_policy_failure(&l, 3, 1, f.attempts, false, false, t, &f);
	cr_assert(f.attempts == 2 && f.address == 1 && !f.moved);
	bdr_policy_failure(&l, 3, 1, f.attempts, false, false, t, &f);
	cr_assert(f.moved && f.address == 2 && f.attempts == 0 && f.next_attempt_ns == t);
	/* progress on the last address, forever: never FAILED */
	for (int i = 0; i < 1000; i++) {
		bdr_policy_failure(&l, 3, 2, f.attempts, true, false, t, &f);
		cr_assert(f.state == BDR_XFER_QUEUED && f.address == 2 && f.attempts == 1);
	}
	/* retries = 0 and progress: the next address (no retry on this one) */
	l.retries = 0;
	bdr_policy_failure(&l, 3, 0, 0, true, false, t, &f);
	cr_assert(f.moved && f.address == 1);
}

Test(policy, stopping_never_counts)
{
	struct bdr_config_limits l = { .retries = 2, .retry_delay_s = 30 };
	int64_t t = utc(2026, 6, 1, 12, 0);
	struct bdr_failure f;

	/* At the edge of failing (the last address, its last retry): a stop
	 * leaves everything as it was, due at once (at the next start). */
	for (int i = 0; i < 100; i++) {
		bdr_policy_failure(&l, 3, 2, 2, i & 1, true, t + i, &f);
		cr_assert_eq(f.state, BDR_XFER_QUEUED);
		cr_assert(f.address == 2 && f.attempts == 2 && !f.moved);
		cr_assert_eq(f.next_attempt_ns, t + i);
	}
	/* and then one real failure moves it past the last: FAILED */
	bdr_policy_failure(&l, 3, 2, f.attempts, false, false, t, &f);
	cr_assert_eq(f.state, BDR_XFER_FAILED);
}

/* ---- rates at hour edges, with the window ---- */

/* A writer with an endless backlog on one address through a week, as conn.c
 * writes: pieces of what allow() gives, sleeping wait_ns() otherwise; told
 * the local hour at each hour edge of the fake clock (set_hour), paused
 * while the address's window is closed to its priority (a new connection,
 * a fresh throttle, at the next opening). Bytes per absolute hour are
 * within 1% of the rate of that hour's local label; none in closed ones. */
static void rate_week(const char *tz, int64_t t0, const char *rate_text, const char *sched_text,
		      enum bdr_db_priority prio)
{
	struct bdr_config_address a = { .name = "line" };
	struct bdr_diag d = { "" };
	size_t nh = 7 * 24;
	uint64_t *bytes = calloc(nh, sizeof(uint64_t));
	struct bdr_throttle thr;
	int64_t t = t0, end = t0 + (int64_t)nh * HOUR;
	bool running = false;
	int hour = -1, day;
	unsigned pauses = 0, checked = 0;
	double worst = 0;

	cr_assert_not_null(bytes);
	set_tz(tz);
	cr_assert_eq(bdr_rate_parse(&a.rate, rate_text, &d), 0, "%s", d.msg);
	parse_schedule(&a.schedule, sched_text);
	while (t < end) {
		int64_t next_edge = (t / HOUR + 1) * HOUR; /* whole-hour zones */
		int64_t wait;
		uint64_t n;

		if (t % HOUR == 0 || hour < 0) {
			/* an hour edge: the window, then the rate */
			bool may = bdr_policy_may_run(&a, prio, t);

			cr_assert_eq(bdr_schedule_local(t, &day, &hour), 0);
			if (may && !running) {
				cr_assert_eq(bdr_throttle_init(&thr, &a.rate, hour, t), 0);
				running = true;
			} else if (!may && running) {
				running = false;
				pauses++;
			} else if (running) {
				cr_assert_eq(bdr_throttle_set_hour(&thr, hour, t), 0);
			}
		}
		if (!running) {
			t = next_edge;
			continue;
		}
		n = bdr_throttle_allow(&thr, t, 64 * MIB);
		if (n) {
			bdr_throttle_consume(&thr, t, n);
			bytes[(t - t0) / HOUR] += n;
			continue;
		}
		wait = bdr_throttle_wait_ns(&thr, t, 64 * MIB);
		cr_assert_gt(wait, 0);
		t = t + wait < next_edge ? t + wait : next_edge;
	}
	for (size_t h = 0; h < nh; h++) {
		int64_t at = t0 + (int64_t)h * HOUR;
		uint64_t bps;
		double e;

		bdr_schedule_local(at, &day, &hour);
		bps = bdr_rate_at(&a.rate, hour);
		if (!bdr_policy_may_run(&a, prio, at)) {
			cr_assert_eq(bytes[h], 0, "%s: %" PRIu64 " bytes sent in closed hour %s", tz,
				     bytes[h], when(at));
			continue;
		}
		cr_assert_gt(bps, 0);
		e = (double)bytes[h] / ((double)bps * 3600) - 1;
		if (verbose() && (h < 2 || (h >= 144 && h < 150)))
			fprintf(stderr, "    %s: %" PRIu64 " B/s, %" PRIu64 " bytes (%+.4f%%)\n",
				when(at), bps, bytes[h], e * 100);
		cr_assert(e > -0.01 && e < 0.01, "%s: hour %s: %" PRIu64 " bytes at %" PRIu64 " B/s "
			  "(%+.3f%%)", tz, when(at), bytes[h], bps, e * 100);
		if (e < 0)
			e = -e;
		if (e > worst)
			worst = e;
		checked++;
	}
	if (verbose())
		fprintf(stderr, "rates in %s (%s; %s): %u open hours within %.4f%% of their rate, "
			"%u pauses\n", tz, rate_text, sched_text, checked, worst * 100, pauses);
	cr_assert_gt(pauses, 0);
	cr_assert_gt(checked, 100);
	free(bytes);
}

Test(policy, rates_follow_the_local_hour)
{
	static const char *rate = "00-02 2M, 02-03 64K, 03-04 1M, 04-08 4M, 08-19 256K, 19-00 "
				  "1Mbit";
	static const char *sched = "fri 22-06 closed; sun 01-03 high";

	rate_week("UTC", utc(2026, 6, 1, 0, 0), rate, sched, BDR_PRIO_LOW);
	/* The spring-forward night: the hour after 01:00 CET is 03:00 CEST, at
	 * 1M (no hour at 64K that night); Sunday 01-03 is closed to low, which
	 * is one absolute hour that night. Fall back: 02:00 twice, at 64K, two
	 * absolute hours (high may send then). */
	rate_week("Europe/Paris", utc(2026, 3, 22, 23, 0), rate, sched, BDR_PRIO_LOW);
	rate_week("Europe/Paris", utc(2026, 10, 18, 22, 0), rate, sched, BDR_PRIO_HIGH);
}

/* ---- a reload mid-week, from configuration files ---- */

static char dir[PATH_MAX];

static void write_conf(const char *path, const char *mpls_schedule, unsigned retries)
{
	char text[4096];

	snprintf(text, sizeof(text),
		 "[site]\nname = central\nkey = %s/site.key\ndata = %s/data\n"
		 "timezone = Europe/Paris\n"
		 "[limits]\nmax_transfers = 3\nmax_transfers_per_peer = 2\nretries = %u\n"
		 "[peer branch]\npublic_key = yqRwV0H6bTfvOGrNLBkXwkbH/mbaJkw46AyV/40pTYc=\n"
		 "address = mpls\naddress = vpn\n"
		 "[address mpls]\nhost = 10.0.0.7:7411\nschedule = %s\n"
		 "[address vpn]\nhost = 10.9.0.7:7411\nschedule = all all medium; daily 00-06 all\n",
		 dir, dir, retries, mpls_schedule);
	tu_write(path, text, strlen(text));
}

static void load(const char *path, struct bdr_config *c)
{
	struct bdr_config_errors e = { 0 };
	int rc = bdr_config_load(path, c, &e);

	cr_assert_eq(rc, 0, "%s: %d %s", path, rc, e.n ? e.v[0].text : "");
	bdr_config_errors_free(&e);
}

Test(policy, a_reload_takes_effect_at_the_next_step)
{
	char a_path[PATH_MAX], b_path[PATH_MAX];
	struct bdr_config a, b, a2;
	int64_t t0 = utc(2026, 3, 22, 23, 0); /* Monday 00:00 in Paris */
	size_t wed_12 = (2 * 24 + 12) * 60, fri_12 = (4 * 24 + 12) * 60;
	struct world w;

	tu_mkdtemp(dir, "policy");
	snprintf(a_path, sizeof(a_path), "%s/a.conf", dir);
	snprintf(b_path, sizeof(b_path), "%s/b.conf", dir);
	/* A: mpls open to all. B: closed to all but high on weekdays. */
	write_conf(a_path, "all all all", 3);
	write_conf(b_path, "weekdays all high", 3);
	load(a_path, &a);
	load(b_path, &b);
	load(a_path, &a2);
	cr_assert_str_eq(a.site.timezone, "Europe/Paris");
	set_tz(":Europe/Paris"); /* as bdrd sets it from [site] timezone */

	world_init(&w, "reload week", t0, 7 * 1440);
	w.cfg = &a;
	w.peer[0] = bdr_config_peer(&a, "branch");
	w.npeers = 1;
	w.lim = a.limits;
	w.reload_step[0] = wed_12, w.reload_cfg[0] = &b;
	w.reload_step[1] = fri_12, w.reload_cfg[1] = &a2;
	w.nreloads = 2;
	w.v = calloc(2, sizeof(*w.v));
	w.n = 2;
	/* a low push that needs the whole week, and a high one queued in the
	 * closed stretch */
	w.v[0] = (struct push){ .id = 1, .prio = BDR_PRIO_LOW, .arrive = t0, .need = 6 * 1440 };
	w.v[1] = (struct push){ .id = 2, .prio = BDR_PRIO_HIGH,
				.arrive = t0 + (int64_t)(wed_12 + 120) * MIN, .need = 60 };
	world_oracles(&w);
	for (size_t i = 0; i < w.steps; i++) {
		step(&w, i);
		if (i == wed_12 - 1)
			cr_assert(w.v[0].st == P_RUNNING && w.v[0].addr == 0, "running on mpls");
		if (i == wed_12) {
			/* B in force at the step after the reload: paused, and
			 * waiting for vpn's night (mpls stays shut to low) */
			cr_assert_eq(w.v[0].st, P_WAITING, "the low push paused at the reload");
			cr_assert_eq(w.v[0].paused_at, w.t0 + (int64_t)i * MIN);
			cr_assert_eq(w.v[0].window_at, utc(2026, 3, 25, 23, 0), "%s",
				     when(w.v[0].window_at));
		}
		if (i == wed_12 + 120)
			cr_assert(w.v[1].st == P_RUNNING && w.v[1].addr == 0,
				  "a high push goes through the closed window");
		if (i == wed_12 + 12 * 60)
			cr_assert(w.v[0].st == P_RUNNING && w.v[0].addr == 1,
				  "Thursday 00:00: on vpn at the opening");
		if (i == fri_12 - 1)
			cr_assert_eq(w.v[0].st, P_WAITING, "Friday morning: vpn is closed to low");
		if (i == fri_12)
			cr_assert(w.v[0].st == P_RUNNING && w.v[0].addr == 0,
				  "A again: on mpls at the step of the reload");
	}
	world_report(&w);
	cr_assert_eq(w.reload_pauses, 1);
	cr_assert_eq(w.v[1].st, P_DONE);
	world_free(&w);
	bdr_config_free(&a);
	bdr_config_free(&b);
	bdr_config_free(&a2);
	tu_rmrf(dir);
}
