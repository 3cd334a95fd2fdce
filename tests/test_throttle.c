/* Rate limits, as an operator relies on them: the value's syntax (each
 * refusal names its token; the canonical form reads back equal), and the
 * throttle over a fake clock: a sender that writes as soon as it may keeps
 * every 10-second window within 1% of the rate from 8 KiB/s to 1 GiB/s; a
 * new hour's rate holds from the next second, with no burst; a day of
 * hourly rates is kept hour by hour; pulses are blocks separated by gaps.
 *
 * BDR_TEST_VERBOSE=1 prints the measured errors. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "bdr/error.h"
#include "daemon/throttle.h"

#define NS INT64_C(1000000000)
#define MS INT64_C(1000000)
#define KIB 1024ull
#define MIB (1024ull * 1024)
#define GIB (1024ull * 1024 * 1024)

static bool verbose(void)
{
	const char *v = getenv("BDR_TEST_VERBOSE");

	return v && *v && strcmp(v, "0") != 0;
}

/* ---- the parser ---- */

static struct bdr_rate_spec parse_ok(const char *text)
{
	struct bdr_rate_spec r = { 0 };
	struct bdr_diag d = { "" };
	int e = bdr_rate_parse(&r, text, &d);

	cr_assert_eq(e, 0, "'%s': %d %s", text, e, d.msg);
	return r;
}

static void parse_bad(const char *text, int err, const char *msg)
{
	struct bdr_rate_spec r = { .capacity_bps = 7 }, before = r;
	struct bdr_diag d = { "" };
	int e = bdr_rate_parse(&r, text, &d);

	cr_assert_eq(e, err, "'%s': %d, wanted %d (%s)", text, e, err, d.msg);
	cr_assert_not_null(strstr(d.msg, msg), "'%s': '%s' lacks '%s'", text, d.msg, msg);
	cr_assert(bdr_rate_equal(&r, &before), "'%s': a refused value leaves r as it was", text);
	cr_assert_eq(bdr_rate_parse(&r, text, NULL), err, "d may be NULL");
}

static void all_hours(const struct bdr_rate_spec *r, uint64_t bps)
{
	cr_assert_eq(r->mode, BDR_RATE_HOURLY);
	for (int h = 0; h < 24; h++)
		cr_assert_eq(bdr_rate_at(r, h), bps, "hour %d: %" PRIu64, h, bdr_rate_at(r, h));
}

Test(throttle, parse_single_rates)
{
	struct bdr_rate_spec r;

	r = parse_ok("unlimited");
	cr_assert_eq(r.mode, BDR_RATE_UNLIMITED);
	cr_assert_eq(bdr_rate_at(&r, 12), 0);
	all_hours((r = parse_ok("256K"), &r), 256 * KIB);
	all_hours((r = parse_ok("256KB"), &r), 256 * KIB);
	all_hours((r = parse_ok("256K/s"), &r), 256 * KIB);
	all_hours((r = parse_ok("2M"), &r), 2 * MIB);
	all_hours((r = parse_ok("1G"), &r), GIB);
	all_hours((r = parse_ok("1500"), &r), 1500);
	all_hours((r = parse_ok("1500B"), &r), 1500);
	all_hours((r = parse_ok("2Mbit"), &r), 250000);
	all_hours((r = parse_ok("2Mbit/s"), &r), 250000);
	all_hours((r = parse_ok("2mbit"), &r), 250000);
	all_hours((r = parse_ok("100Kbit"), &r), 12500);
	all_hours((r = parse_ok("100kbit"), &r), 12500);
	all_hours((r = parse_ok("8Gbit"), &r), 1000000000);
	all_hours((r = parse_ok("8000bit"), &r), 1000);
	all_hours((r = parse_ok("1Kbit"), &r), BDR_RATE_MIN);
	all_hours((r = parse_ok("1024G"), &r), BDR_RATE_MAX);
	all_hours((r = parse_ok("  2Mbit \t"), &r), 250000);
	/* Whole-day unlimited, however written, is "unlimited". */
	cr_assert_eq(parse_ok("00-24 unlimited").mode, BDR_RATE_UNLIMITED);
	cr_assert_eq(parse_ok("08-20 unlimited, 20-08 unlimited").mode, BDR_RATE_UNLIMITED);
}

Test(throttle, parse_hour_ranges)
{
	struct bdr_rate_spec r = parse_ok("08-18 256K, 18-08 unlimited");

	cr_assert_eq(r.mode, BDR_RATE_HOURLY);
	for (int h = 0; h < 24; h++)
		cr_assert_eq(bdr_rate_at(&r, h), h >= 8 && h < 18 ? 256 * KIB : 0, "hour %d", h);

	/* Wrapping past midnight; hours not covered are unlimited. */
	r = parse_ok("22-06 1M");
	for (int h = 0; h < 24; h++)
		cr_assert_eq(bdr_rate_at(&r, h), h >= 22 || h < 6 ? MIB : 0, "hour %d", h);

	r = parse_ok("8-9 64K,9-18 16K , 18-24 2Mbit,00-8 1M");
	cr_assert_eq(bdr_rate_at(&r, 8), 64 * KIB);
	cr_assert_eq(bdr_rate_at(&r, 9), 16 * KIB);
	cr_assert_eq(bdr_rate_at(&r, 17), 16 * KIB);
	cr_assert_eq(bdr_rate_at(&r, 18), 250000);
	cr_assert_eq(bdr_rate_at(&r, 23), 250000);
	cr_assert_eq(bdr_rate_at(&r, 0), MIB);
	cr_assert_eq(bdr_rate_at(&r, 7), MIB);
	cr_assert_eq(bdr_rate_at(&r, 24), MIB, "hours wrap");
	cr_assert_eq(bdr_rate_at(&r, -1), 250000, "hours wrap");

	all_hours((r = parse_ok("00-24 1M"), &r), MIB);
}

Test(throttle, parse_pulse)
{
	struct bdr_rate_spec r = parse_ok("pulse 64K 5s");

	cr_assert_eq(r.mode, BDR_RATE_PULSE);
	cr_assert_eq(r.block_bytes, 64 * KIB);
	cr_assert_eq(r.gap_ns, 5 * NS);
	cr_assert_eq(bdr_rate_at(&r, 3), 64 * KIB / 5, "the average, for display");
	r = parse_ok("pulse 1M 2m");
	cr_assert_eq(r.block_bytes, MIB);
	cr_assert_eq(r.gap_ns, 120 * NS);
	r = parse_ok("pulse  1500   250ms");
	cr_assert_eq(r.block_bytes, 1500);
	cr_assert_eq(r.gap_ns, 250 * MS);
	r = parse_ok("pulse 1G 1h");
	cr_assert_eq(r.block_bytes, GIB);
	cr_assert_eq(r.gap_ns, 3600 * NS);
}

Test(throttle, parse_percentages_need_a_capacity)
{
	struct bdr_rate_spec r = parse_ok("08-18 50%, 18-08 2Mbit");
	struct bdr_diag d = { "" };

	cr_assert_eq(r.pct[8], 50);
	cr_assert_eq(bdr_rate_check(&r, &d), -EINVAL);
	cr_assert_str_eq(d.msg, "rate '08-18 50%, 18-08 2Mbit' needs the address's capacity");
	r = parse_ok("08-18 50%");
	cr_assert_eq(bdr_rate_check(&r, &d), -EINVAL);
	cr_assert_str_eq(d.msg, "rate '08-18 50%' needs the address's capacity");

	cr_assert_eq(bdr_rate_set_capacity(&r, "10Mbit", &d), 0, "%s", d.msg);
	cr_assert_eq(r.capacity_bps, 1250000);
	cr_assert_eq(bdr_rate_check(&r, &d), 0);
	cr_assert_eq(bdr_rate_at(&r, 8), 625000);
	cr_assert_eq(bdr_rate_at(&r, 18), 0);

	/* The keys in either order: parsing the rate keeps the capacity. */
	cr_assert_eq(bdr_rate_parse(&r, "100%", &d), 0);
	cr_assert_eq(r.capacity_bps, 1250000);
	all_hours(&r, 1250000);
	cr_assert_eq(bdr_rate_parse(&r, "1%", &d), 0);
	all_hours(&r, 12500);
	cr_assert_eq(bdr_rate_set_capacity(&r, "1Kbit", &d), 0);
	all_hours(&r, BDR_RATE_MIN); /* 1% of 125 bytes/s: the smallest rate */

	/* Rates without percentages need nothing. */
	r = parse_ok("2M");
	cr_assert_eq(bdr_rate_check(&r, &d), 0);
	r = parse_ok("pulse 64K 5s");
	cr_assert_eq(bdr_rate_check(&r, &d), 0);

	cr_assert_eq(bdr_rate_set_capacity(&r, "50%", &d), -EINVAL);
	cr_assert_str_eq(d.msg, "capacity '50%': expected a rate such as 10Mbit");
	cr_assert_eq(bdr_rate_set_capacity(&r, "unlimited", &d), -EINVAL);
	cr_assert_str_eq(d.msg, "capacity 'unlimited': expected a rate such as 10Mbit");
	cr_assert_eq(bdr_rate_set_capacity(&r, "fast", &d), -EINVAL);
	cr_assert_not_null(strstr(d.msg, "rate 'fast'"), "%s", d.msg);
	cr_assert_eq(bdr_rate_set_capacity(&r, "0", &d), -ERANGE);
	cr_assert_eq(r.capacity_bps, 0, "unchanged by refusals");
}

Test(throttle, parse_refusals_name_the_token)
{
	parse_bad("", -EINVAL, "empty rate");
	parse_bad("  ", -EINVAL, "empty rate");
	parse_bad("fast", -EINVAL, "rate 'fast': expected a number and a unit");
	parse_bad("12Q", -EINVAL, "rate '12Q'");
	parse_bad("256k", -EINVAL, "rate '256k'");
	parse_bad("2Mbps", -EINVAL, "rate '2Mbps'");
	parse_bad("1.5M", -EINVAL, "rate '1.5M'");
	parse_bad("0", -ERANGE, "rate '0' is below the smallest, 1Kbit");
	parse_bad("100", -ERANGE, "rate '100' is below");
	parse_bad("999bit", -ERANGE, "rate '999bit' is below");
	parse_bad("1025G", -ERANGE, "rate '1025G' is above the largest, 1024G");
	parse_bad("99999999999999999999K", -ERANGE, "rate '99999999999999999999K' is above");
	parse_bad("1M 2M", -EINVAL, "'1M 2M': expected one rate");
	parse_bad("50", -ERANGE, "rate '50' is below");
	parse_bad("150%", -ERANGE, "percentage '150%' is not between 1% and 100%");
	parse_bad("0%", -ERANGE, "percentage '0%'");
	parse_bad("x%", -ERANGE, "percentage 'x%'");

	parse_bad("pulse", -EINVAL, "'pulse' takes a block size and a gap");
	parse_bad("pulse 64K", -EINVAL, "'pulse' takes");
	parse_bad("pulse 64K 5s 1", -EINVAL, "'pulse' takes");
	parse_bad("pulse 64K 5", -EINVAL, "pulse gap '5': expected a duration");
	parse_bad("pulse 64K 5d", -EINVAL, "pulse gap '5d'");
	parse_bad("pulse 64K 0s", -ERANGE, "pulse gap '0s' is not between 1ms and 24h");
	parse_bad("pulse 64K 25h", -ERANGE, "pulse gap '25h'");
	parse_bad("pulse 64Q 5s", -EINVAL, "pulse block '64Q': expected a size");
	parse_bad("pulse 0 5s", -ERANGE, "pulse block '0' is not between 1 and 1G");
	parse_bad("pulse 2G 5s", -ERANGE, "pulse block '2G'");
	parse_bad("pulse 64Kbit 5s", -EINVAL, "pulse block '64Kbit'");

	parse_bad("25-08 1M", -EINVAL, "hours '25-08': expected HH-HH");
	parse_bad("08-25 1M", -EINVAL, "hours '08-25'");
	parse_bad("008-10 1M", -EINVAL, "hours '008-10'");
	parse_bad("a-b 1M", -EINVAL, "hours 'a-b'");
	parse_bad("08- 1M", -EINVAL, "hours '08-'");
	parse_bad("08-08 1M", -EINVAL, "hours '08-08' are empty");
	parse_bad("00-00 1M", -EINVAL, "hours '00-00' are empty");
	parse_bad("08-18", -EINVAL, "'08-18': expected 'HH-HH RATE'");
	parse_bad("08-18 1M 2M", -EINVAL, "'08-18 1M 2M': expected 'HH-HH RATE'");
	parse_bad("1M, 08-18 2M", -EINVAL, "'1M': expected 'HH-HH RATE'");
	parse_bad("08-18 1M, 10-12 2M", -EINVAL, "hours '10-12' overlap an earlier range");
	parse_bad("22-02 1M, 01-03 2M", -EINVAL, "hours '01-03' overlap");
	parse_bad("08-18 1M,", -EINVAL, "an empty item between ','");
	parse_bad("08-18 1M,, 18-20 2M", -EINVAL, "an empty item");
	parse_bad("08-18 fast", -EINVAL, "rate 'fast'");
	parse_bad("08-18 0", -ERANGE, "rate '0' is below");
	parse_bad("08-18 150%", -ERANGE, "percentage '150%'");

	/* As bdr.conf(5) quotes them. */
	struct bdr_rate_spec r = { 0 };
	struct bdr_diag d;
	cr_assert_eq(bdr_rate_parse(&r, "2Mbps", &d), -EINVAL);
	cr_assert_str_eq(d.msg, "rate '2Mbps': expected a number and a unit: K, M, G (x1024 "
				"bytes/s), bit, Kbit, Mbit, Gbit (x1000 bits/s), N%, or 'unlimited'");
	cr_assert_eq(bdr_rate_parse(&r, "08-18 1M, 10-12 2M", &d), -EINVAL);
	cr_assert_str_eq(d.msg, "hours '10-12' overlap an earlier range");
	r = parse_ok("18-00 1M");
	for (int h = 0; h < 24; h++)
		cr_assert_eq(bdr_rate_at(&r, h), h >= 18 ? MIB : 0, "18-00 is 18-24");

	char longer[1200];
	memset(longer, '1', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	parse_bad(longer, -EINVAL, "is too long");
}

/* ---- the canonical form ---- */

static void round_trip(const char *text, const char *canonical)
{
	struct bdr_rate_spec r = parse_ok(text), back;
	char buf[BDR_RATE_TEXT_MAX];

	cr_assert_eq(bdr_rate_format(&r, buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, canonical, "'%s'", text);
	back = parse_ok(buf);
	cr_assert(bdr_rate_equal(&r, &back), "'%s' -> '%s' reads back equal", text, buf);
}

Test(throttle, format_canonical)
{
	round_trip("unlimited", "unlimited");
	round_trip("00-24 unlimited", "unlimited");
	round_trip("256K", "256K");
	round_trip("256KB/s", "256K");
	round_trip("1024K", "1M");
	round_trip("262144", "256K");
	round_trip("250000", "2Mbit");
	round_trip("2000Kbit", "2Mbit");
	round_trip("1000", "8Kbit");
	round_trip("1Kbit", "1Kbit");
	round_trip("1500", "12Kbit");
	round_trip("1234567", "1234567");
	round_trip("8Gbit", "8Gbit");
	round_trip("1024G", "1024G");
	round_trip("50%", "50%");
	round_trip("00-24 1M", "1M");
	round_trip("pulse 65536 5000ms", "pulse 64K 5s");
	round_trip("pulse 1M 120s", "pulse 1M 2m");
	round_trip("pulse 1500 1500ms", "pulse 1500 1500ms");
	round_trip("pulse 1G 3600s", "pulse 1G 1h");
	round_trip("08-18 256K, 18-08 unlimited", "08-18 256K");
	round_trip("18-08 unlimited, 8-18 256K", "08-18 256K");
	round_trip("22-06 1M", "22-06 1M");
	round_trip("18-24 1M, 00-08 2M", "00-08 2M, 18-24 1M");
	round_trip("18-24 1M, 00-08 1M", "18-08 1M");
	round_trip("08-12 1M, 12-18 1M", "08-18 1M");
	round_trip("08-18 50%, 18-08 2Mbit", "08-18 50%, 18-08 2Mbit");
	round_trip("0-1 1M, 1-2 2M, 2-3 1M", "00-01 1M, 01-02 2M, 02-03 1M");
}

static uint64_t rng(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Random values of every kind read back equal, and the longest form fits. */
Test(throttle, format_round_trip_random)
{
	uint64_t seed = 42;
	char buf[BDR_RATE_TEXT_MAX];

	for (int i = 0; i < 20000; i++) {
		struct bdr_rate_spec r = { .mode = BDR_RATE_HOURLY }, back = { 0 };
		uint64_t k = rng(&seed) % 8;

		for (int h = 0; h < 24; h++) {
			uint64_t v = rng(&seed);

			if (k == 0 || v % 5 == 0)
				r.pct[h] = (uint8_t)(1 + v % 100);
			else if (v % 5 == 1)
				r.bps[h] = 0;
			else if (v % 5 == 2)
				r.bps[h] = BDR_RATE_MAX - v % 1000000;
			else
				r.bps[h] = BDR_RATE_MIN + (v >> 8) % (1ull << (v % 40));
			if (k == 1 && h)
				r.bps[h] = r.bps[0], r.pct[h] = r.pct[0];
		}
		if (k == 2)
			r = (struct bdr_rate_spec){
				.mode = BDR_RATE_PULSE,
				.block_bytes = 1 + rng(&seed) % BDR_RATE_BLOCK_MAX,
				.gap_ns = MS * (int64_t)(1 + rng(&seed) % 86400000),
			};
		cr_assert_eq(bdr_rate_format(&r, buf, sizeof(buf)), 0);
		back.capacity_bps = r.capacity_bps;
		cr_assert_eq(bdr_rate_parse(&back, buf, NULL), 0, "'%s'", buf);
		if (r.mode == BDR_RATE_HOURLY) {
			bool any = false;

			for (int h = 0; h < 24; h++)
				any |= r.bps[h] || r.pct[h];
			if (!any)
				r.mode = BDR_RATE_UNLIMITED;
		}
		cr_assert(bdr_rate_equal(&r, &back), "'%s' reads back equal", buf);
	}

	/* The longest: 24 different hours of the longest numbers. */
	struct bdr_rate_spec r = { .mode = BDR_RATE_HOURLY };
	for (int h = 0; h < 24; h++)
		r.bps[h] = BDR_RATE_MAX - 1 - (uint64_t)h;
	cr_assert_eq(bdr_rate_format(&r, buf, sizeof(buf)), 0);
	cr_assert_lt(strlen(buf), 24 * 24, "%s", buf);
	cr_assert_eq(bdr_rate_format(&r, buf, 100), -ENOSPC);
	cr_assert_eq(bdr_rate_format(&r, buf, 0), -ENOSPC);
	r = parse_ok("2Mbit");
	cr_assert_eq(bdr_rate_format(&r, buf, 6), 0);
	cr_assert_eq(bdr_rate_format(&r, buf, 5), -ENOSPC);
}

/* ---- the simulated sender ---- */

/* A sender with an endless queue of messages of 1..max_msg bytes, over a
 * fake clock: whenever wait_ns() says so, it sleeps (its timer firing up
 * to jitter_ns late) and then writes: either what allow() gives (split) or
 * the whole message. It counts the bytes written in windows of window_ns,
 * and notes each write for the pulse timelines. */
struct sim {
	struct bdr_throttle t;
	int64_t now, start;
	uint64_t seed, max_msg, pending;
	bool split;
	int64_t jitter_ns;
	int64_t window_ns;
	uint64_t *win;
	size_t n_win;
	int64_t hour_ns; /* > 0: the hour changes every hour_ns, at hour_ns */
	int hour;
	void (*on_write)(struct sim *s, uint64_t bytes);
	uint64_t writes, sleeps, total;
	/* pulse timeline */
	int64_t burst_start, last_write;
	uint64_t burst;
	uint64_t n_bursts, burst_min, burst_max;
	int64_t gap_min, gap_max;
};

static void sim_init(struct sim *s, const struct bdr_rate_spec *r, bool split, uint64_t max_msg,
		     int64_t jitter_ns, int64_t window_ns, size_t n_win)
{
	*s = (struct sim){
		.seed = 7,
		.max_msg = max_msg,
		.split = split,
		.jitter_ns = jitter_ns,
		.window_ns = window_ns,
		.n_win = n_win,
		.win = calloc(n_win, sizeof(uint64_t)),
		.burst_min = UINT64_MAX,
		.gap_min = INT64_MAX,
		.last_write = INT64_MIN,
	};
	cr_assert_not_null(s->win);
	cr_assert_eq(bdr_throttle_init(&s->t, r, 0, 0), 0);
}

static void sim_free(struct sim *s)
{
	free(s->win);
}

static void record(struct sim *s, uint64_t bytes)
{
	int64_t w = (s->now - s->start) / s->window_ns;

	if (w >= 0 && (size_t)w < s->n_win)
		s->win[w] += bytes;
	s->writes++;
	s->total += bytes;
	if (s->on_write)
		s->on_write(s, bytes);
}

/* Advances the clock by wait (plus jitter), stopping at an hour edge. */
static void sim_sleep(struct sim *s, int64_t wait)
{
	int64_t to = s->now + wait;

	s->sleeps++;
	if (s->jitter_ns)
		to += (int64_t)(rng(&s->seed) % (uint64_t)s->jitter_ns);
	if (s->hour_ns) {
		int64_t edge = (s->now / s->hour_ns + 1) * s->hour_ns;

		if (to >= edge) {
			to = edge;
			s->hour = (s->hour + 1) % 24;
			s->now = to;
			cr_assert_eq(bdr_throttle_set_hour(&s->t, s->hour, s->now), 0);
			return;
		}
	}
	s->now = to;
}

/* Splitting, as throttle.h shows: write what allow() gives, and sleep
 * only when it gives nothing. Whole: sleep until wait_ns() is 0. */
static void sim_run(struct sim *s, int64_t until)
{
	while (s->now < until) {
		int64_t wait;
		uint64_t n;

		/* Splitting, the writer sees a queue of messages (the channel's
		 * output); whole, one message. */
		while (!s->pending || (s->split && s->pending < 8 * MIB))
			s->pending += 1 + rng(&s->seed) % s->max_msg;
		if (!bdr_throttle_rate(&s->t)) { /* unlimited: nothing to measure */
			sim_sleep(s, until - s->now);
			continue;
		}
		n = s->split ? bdr_throttle_allow(&s->t, s->now, s->pending) : 0;
		wait = n ? 0 : bdr_throttle_wait_ns(&s->t, s->now, s->pending);
		cr_assert_geq(wait, 0);
		if (wait) {
			sim_sleep(s, wait);
			continue;
		}
		cr_assert(!s->split || n, "wait_ns() says now, allow() gives nothing");
		if (!s->split)
			n = s->pending;
		bdr_throttle_consume(&s->t, s->now, n);
		record(s, n);
		s->pending -= n;
	}
}

/* The largest error of the windows first..n_win, as a fraction. */
static double worst_window(const struct sim *s, size_t first, uint64_t bps)
{
	double expect = (double)bps * (double)s->window_ns / NS, worst = 0;

	for (size_t i = first; i < s->n_win; i++) {
		double e = ((double)s->win[i] - expect) / expect;

		if (e < 0)
			e = -e;
		if (e > worst)
			worst = e;
	}
	return worst;
}

static struct bdr_rate_spec rate(uint64_t bps)
{
	return (struct bdr_rate_spec){
		.mode = BDR_RATE_HOURLY,
		.bps = { bps, bps, bps, bps, bps, bps, bps, bps, bps, bps, bps, bps,
			 bps, bps, bps, bps, bps, bps, bps, bps, bps, bps, bps, bps },
	};
}

static const uint64_t rates[] = { 8 * KIB, 64 * KIB, MIB, 10 * MIB, 100 * MIB, 256 * MIB, GIB };

/* Writes split to what allow() gives: every 10 s window within 1%, at
 * every rate, for messages up to 1 MiB and timers up to 2 ms late. */
Test(throttle, split_writes_keep_every_window_within_one_percent)
{
	static const uint64_t sizes[] = { 100, 64 * KIB, MIB };
	static const int64_t jitters[] = { 0, 2 * MS };

	for (size_t i = 0; i < sizeof(rates) / sizeof(rates[0]); i++)
		for (size_t j = 0; j < 3; j++)
			for (size_t k = 0; k < 2; k++) {
				struct bdr_rate_spec r = rate(rates[i]);
				struct sim s;
				double worst;

				if (sizes[j] == 100 && rates[i] > 10 * MIB)
					continue; /* 10^7 messages a second: too slow to simulate */
				sim_init(&s, &r, true, sizes[j], jitters[k], 10 * NS, 12);
				sim_run(&s, 120 * NS);
				worst = worst_window(&s, 0, rates[i]);
				if (verbose())
					fprintf(stderr, "split %10" PRIu64 " B/s, messages <= %7" PRIu64
						", late <= %" PRId64 " ms: worst 10 s window %.4f%%, "
						"%" PRIu64 " wake-ups\n", rates[i], sizes[j],
						jitters[k] / MS, worst * 100, s.sleeps);
				cr_assert_lt(worst, 0.01, "%" PRIu64 " B/s, messages <= %" PRIu64
					     ": %.3f%%", rates[i], sizes[j], worst * 100);
				/* About 40 wake-ups a second whatever the rate, unless
				 * the queue (8 MiB) holds less than 25 ms of it. */
				cr_assert_lt(s.sleeps, 120 * (41 + rates[i] / (8 * MIB)), "%" PRIu64,
					     s.sleeps);
				sim_free(&s);
			}
}

/* Whole messages, each written when wait_ns() says 0: the debt keeps the
 * average exact. A 10 s window is within 1% when a message is at most
 * 7.5% of a second's rate; otherwise it is off by at most one message and
 * the bucket, and the average over a long run is within 1%. */
Test(throttle, whole_messages_pay_their_debt)
{
	static const uint64_t sizes[] = { 1500, 64 * KIB, MIB };

	for (size_t i = 0; i < sizeof(rates) / sizeof(rates[0]); i++)
		for (size_t j = 0; j < 3; j++) {
			struct bdr_rate_spec r = rate(rates[i]);
			uint64_t bps = rates[i], m = sizes[j];
			bool fine = m * 40 <= bps * 3; /* m <= 7.5% of bps */
			int64_t run = fine ? 120 * NS : (int64_t)(200 * m / bps + 120) * NS;
			size_t n_win = (size_t)(run / (10 * NS));
			double worst, bound, avg;
			struct sim s;

			if (m == 1500 && bps > 10 * MIB)
				continue;
			sim_init(&s, &r, false, m, MS, 10 * NS, n_win);
			sim_run(&s, run);
			worst = worst_window(&s, 0, bps);
			/* Messages written before the end paid for up to one message
			 * after it. */
			avg = ((double)s.total - (double)m) / ((double)bps * (double)run / NS);
			bound = (double)(m + bps / 20) / ((double)bps * 10);
			if (verbose())
				fprintf(stderr, "whole %10" PRIu64 " B/s, messages <= %7" PRIu64
					": worst 10 s window %.4f%% (bound %.2f%%), average over "
					"%" PRId64 " s %.4f%%\n", bps, m, worst * 100, bound * 100,
					run / NS, (avg - 1) * 100);
			if (fine)
				cr_assert_lt(worst, 0.01, "%" PRIu64 " B/s, messages <= %" PRIu64
					     ": %.3f%%", bps, m, worst * 100);
			else
				cr_assert_leq(worst, bound, "%" PRIu64 " B/s, %" PRIu64, bps, m);
			cr_assert_lt(avg > 1 ? avg - 1 : 1 - avg, 0.01, "%" PRIu64 " B/s, messages <= "
				     "%" PRIu64 ": average %.4f", bps, m, avg);
			sim_free(&s);
		}
}

/* Idle, then busy: one bucket (50 ms of the rate) at most, no more. */
Test(throttle, idle_time_earns_one_bucket_at_most)
{
	struct bdr_rate_spec r = rate(1000000); /* a byte is 1 us */
	struct bdr_throttle t;
	int64_t t0 = 5000 * NS;

	cr_assert_eq(bdr_throttle_init(&t, &r, 0, 1000 * NS), 0);
	cr_assert_eq(bdr_throttle_allow(&t, 1000 * NS, UINT64_MAX), 50000);
	cr_assert_eq(bdr_throttle_allow(&t, t0, UINT64_MAX), 50000);
	bdr_throttle_consume(&t, t0, 50000);
	cr_assert_eq(bdr_throttle_allow(&t, t0, UINT64_MAX), 0);
	cr_assert_eq(bdr_throttle_allow(&t, t0 + 10 * MS, UINT64_MAX), 10000);
	/* wait_ns: until min(want, 25 ms of the rate). */
	cr_assert_eq(bdr_throttle_wait_ns(&t, t0 + 10 * MS, 10), 0);
	cr_assert_eq(bdr_throttle_wait_ns(&t, t0 + 10 * MS, UINT64_MAX), 15 * MS);
	cr_assert_eq(bdr_throttle_wait_ns(&t, t0 + 10 * MS, 20000), 10 * MS);
	cr_assert_eq(bdr_throttle_wait_ns(&t, t0 + 10 * MS, 0), 0);
	/* A write beyond the allowance is debt, paid before the next one. */
	bdr_throttle_consume(&t, t0 + 10 * MS, 1000000);
	cr_assert_eq(bdr_throttle_allow(&t, t0 + 10 * MS, 1), 0);
	cr_assert_eq(bdr_throttle_wait_ns(&t, t0 + 10 * MS, 1), 990 * MS + 1000);
	cr_assert_eq(bdr_throttle_allow(&t, t0 + NS, UINT64_MAX), 0);
	cr_assert_eq(bdr_throttle_allow(&t, t0 + NS + MS, UINT64_MAX), 1000);
	/* The clock going back changes nothing. */
	cr_assert_eq(bdr_throttle_allow(&t, 0, UINT64_MAX), 1000);
}

/* Fractions of a nanosecond are owed, not lost: at 300 MB/s a byte is
 * 3.33 ns, and 3000 one-byte writes cost 10 us, not 9. */
Test(throttle, fractions_are_kept)
{
	struct bdr_rate_spec r = rate(300000000);
	struct bdr_throttle t;

	cr_assert_eq(bdr_throttle_init(&t, &r, 0, 0), 0);
	bdr_throttle_consume(&t, 0, 15000000); /* the whole bucket: 50 ms */
	for (int i = 0; i < 3000; i++)
		bdr_throttle_consume(&t, 0, 1);
	cr_assert_eq(bdr_throttle_allow(&t, 10000, UINT64_MAX), 0);
	cr_assert_eq(bdr_throttle_allow(&t, 10003, UINT64_MAX), 0);
	cr_assert_eq(bdr_throttle_allow(&t, 10004, UINT64_MAX), 1);
	cr_assert_eq(bdr_throttle_wait_ns(&t, 10004, 2), 3);
}

/* The smallest rate still makes progress: burst is at least one byte. */
Test(throttle, smallest_rate)
{
	struct bdr_rate_spec r = rate(1); /* below BDR_RATE_MIN: clamped */
	struct sim s;

	cr_assert_eq(bdr_rate_at(&r, 0), BDR_RATE_MIN);
	sim_init(&s, &r, true, 100, 0, 10 * NS, 30);
	sim_run(&s, 300 * NS);
	cr_assert_lt(worst_window(&s, 0, BDR_RATE_MIN), 0.01);
	sim_free(&s);
}

Test(throttle, unlimited)
{
	struct bdr_rate_spec r = parse_ok("unlimited");
	struct bdr_throttle t;

	cr_assert_eq(bdr_throttle_init(&t, &r, 5, 0), 0);
	for (int i = 0; i < 100; i++) {
		cr_assert_eq(bdr_throttle_allow(&t, i, UINT64_MAX), UINT64_MAX);
		cr_assert_eq(bdr_throttle_allow(&t, i, 7), 7);
		cr_assert_eq(bdr_throttle_wait_ns(&t, i, UINT64_MAX), 0);
		bdr_throttle_consume(&t, i, GIB);
	}
	cr_assert_eq(bdr_throttle_rate(&t), 0);
	/* An unlimited hour of an hourly spec, too. */
	r = parse_ok("08-18 1M");
	cr_assert_eq(bdr_throttle_init(&t, &r, 7, 0), 0);
	cr_assert_eq(bdr_throttle_allow(&t, 0, UINT64_MAX), UINT64_MAX);
	cr_assert_eq(bdr_throttle_wait_ns(&t, 0, UINT64_MAX), 0);
	bdr_throttle_consume(&t, 0, 100 * GIB);
	cr_assert_eq(bdr_throttle_set_hour(&t, 8, NS), 0);
	cr_assert_eq(bdr_throttle_rate(&t), MIB);
	cr_assert_eq(bdr_throttle_allow(&t, NS, UINT64_MAX), MIB / 20,
		     "from unlimited: one full bucket, no debt");
}

Test(throttle, bad_arguments)
{
	struct bdr_rate_spec r = rate(MIB), p = { .mode = BDR_RATE_PULSE, .block_bytes = 0,
						  .gap_ns = NS };
	struct bdr_throttle t;

	cr_assert_eq(bdr_throttle_init(&t, &r, 24, 0), -EINVAL);
	cr_assert_eq(bdr_throttle_init(&t, &r, -1, 0), -EINVAL);
	cr_assert_eq(bdr_throttle_init(&t, &p, 0, 0), -EINVAL);
	p.block_bytes = 1, p.gap_ns = 0;
	cr_assert_eq(bdr_throttle_init(&t, &p, 0, 0), -EINVAL);
	cr_assert_eq(bdr_throttle_init(&t, &r, 23, 0), 0);
	cr_assert_eq(bdr_throttle_set_hour(&t, 24, 0), -EINVAL);
	cr_assert_eq(bdr_throttle_set_spec(&t, &p, 0), -EINVAL);
	cr_assert_eq(bdr_throttle_rate(&t), MIB, "unchanged");
}

/* ---- hour changes ---- */

/* The hour changes at 60 s from `from` to `to`; the sender is busy all
 * along. The second after the edge carries no more than the new rate and
 * its bucket; every later second is within 3% of it. */
static void hour_edge(uint64_t from, uint64_t to, bool split, uint64_t max_msg)
{
	struct bdr_rate_spec r = rate(from);
	struct sim s;
	double expect = (double)to;

	for (int h = 1; h < 24; h++)
		r.bps[h] = to;
	sim_init(&s, &r, split, max_msg, MS, NS, 120);
	s.hour_ns = 60 * NS;
	sim_run(&s, 119 * NS);
	cr_assert_eq(s.hour, 1, "%d", s.hour);
	if (verbose())
		fprintf(stderr, "hour edge %10" PRIu64 " -> %10" PRIu64 " B/s (%s, <= %" PRIu64
			"): seconds after it %.4f %.4f %.4f ... of the new rate\n", from, to,
			split ? "split" : "whole", max_msg, s.win[60] / expect, s.win[61] / expect,
			s.win[62] / expect);
	cr_assert_leq(s.win[60], to + to / 20 + (split ? 0 : max_msg),
		      "%" PRIu64 " -> %" PRIu64 ": no burst in the first second: %" PRIu64, from,
		      to, s.win[60]);
	for (int i = 61; i < 119; i++)
		cr_assert(s.win[i] > expect * 0.97 && s.win[i] < expect * 1.03,
			  "%" PRIu64 " -> %" PRIu64 ": second %d after the edge: %" PRIu64, from, to,
			  i - 60, s.win[i]);
	sim_free(&s);
}

Test(throttle, new_hour_rate_holds_within_a_second)
{
	static const uint64_t pairs[][2] = {
		{ GIB, 8 * KIB }, { 8 * KIB, GIB }, { MIB, 64 * KIB }, { 64 * KIB, MIB },
		{ 10 * MIB, 100 * MIB }, { 100 * MIB, 10 * MIB },
	};

	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		hour_edge(pairs[i][0], pairs[i][1], true, MIB);
		/* Whole 1 MiB messages can keep a second only at 100 MiB/s or more. */
		if (pairs[i][1] >= 100 * MIB)
			hour_edge(pairs[i][0], pairs[i][1], false, MIB);
	}
}

/* A whole message of a slow hour leaves a long debt; a fast next hour
 * does not inherit it beyond its bytes at the new rate. */
Test(throttle, slow_hour_debt_does_not_silence_a_fast_hour)
{
	struct bdr_rate_spec r = rate(8 * KIB);
	struct bdr_throttle t;

	r.bps[1] = GIB;
	cr_assert_eq(bdr_throttle_init(&t, &r, 0, 0), 0);
	cr_assert_eq(bdr_throttle_wait_ns(&t, 59 * NS, MIB), 0);
	bdr_throttle_consume(&t, 59 * NS, MIB); /* 128 s of 8 KiB/s */
	cr_assert_gt(bdr_throttle_wait_ns(&t, 59 * NS, 1), 100 * NS);
	cr_assert_eq(bdr_throttle_set_hour(&t, 1, 60 * NS), 0);
	cr_assert_lt(bdr_throttle_wait_ns(&t, 60 * NS, 1), MS, "1 MiB at 1 GiB/s is 1 ms");
	/* And the other way: a fast hour's debt is short at the slow rate. */
	cr_assert_eq(bdr_throttle_init(&t, &r, 1, 0), 0);
	bdr_throttle_consume(&t, 0, 100 * MIB);
	cr_assert_eq(bdr_throttle_set_hour(&t, 0, 10 * MS), 0);
	cr_assert_leq(bdr_throttle_wait_ns(&t, 10 * MS, 1), 100 * MS);
}

/* A day of hourly rates, the hour supplied by the test as the daemon
 * does: each hour within 1% of its rate, the unlimited ones unmetered. */
Test(throttle, a_day_of_hourly_rates)
{
	struct bdr_rate_spec r = parse_ok("00-06 1M, 06-09 64K, 09-18 16K, 18-22 50%, 22-00 "
					  "unlimited");
	static const int64_t hour = 3600 * NS;
	struct sim s;

	cr_assert_eq(bdr_rate_set_capacity(&r, "1Mbit", NULL), 0);
	cr_assert_eq(bdr_rate_check(&r, NULL), 0);
	sim_init(&s, &r, true, MIB, MS, hour, 24);
	s.hour_ns = hour;
	sim_run(&s, 24 * hour);
	cr_assert_eq(s.hour, 0, "a whole day went by");
	for (int h = 0; h < 24; h++) {
		uint64_t bps = bdr_rate_at(&r, h);
		double expect = (double)bps * 3600;

		if (verbose())
			fprintf(stderr, "hour %02d: %9" PRIu64 " B/s, %12" PRIu64 " bytes (%+.4f%%)\n",
				h, bps, s.win[h], bps ? (s.win[h] / expect - 1) * 100 : 0);
		if (!bps)
			continue;
		cr_assert(s.win[h] > expect * 0.99 && s.win[h] < expect * 1.01,
			  "hour %d: %" PRIu64 " bytes at %" PRIu64 " B/s", h, s.win[h], bps);
	}
	cr_assert_eq(bdr_rate_at(&r, 19), 62500);
	sim_free(&s);
}

Test(throttle, reload_changes_the_rate)
{
	struct bdr_rate_spec a = rate(MIB), b = rate(64 * KIB), p = parse_ok("pulse 64K 5s");
	struct bdr_throttle t;

	cr_assert_eq(bdr_throttle_init(&t, &a, 3, 0), 0);
	bdr_throttle_consume(&t, 0, MIB / 20);
	cr_assert_eq(bdr_throttle_set_spec(&t, &b, 50 * MS), 0);
	cr_assert_eq(bdr_throttle_rate(&t), 64 * KIB);
	cr_assert_eq(bdr_throttle_allow(&t, 50 * MS, UINT64_MAX), 64 * KIB / 20,
		     "the bucket keeps its fill, at the new rate");
	cr_assert_eq(bdr_throttle_set_spec(&t, &p, 50 * MS), 0);
	cr_assert_eq(bdr_throttle_allow(&t, 50 * MS, UINT64_MAX), 64 * KIB);
	cr_assert_eq(bdr_throttle_set_spec(&t, &a, 50 * MS), 0);
	cr_assert_eq(bdr_throttle_allow(&t, 50 * MS, UINT64_MAX), MIB / 20);
}

/* ---- pulses ---- */

/* Bursts are writes not separated by gap_ns of quiet. */
static void note_burst(struct sim *s, uint64_t bytes)
{
	int64_t gap = s->t.spec.gap_ns;

	if (s->last_write != INT64_MIN && s->now - s->last_write >= gap) {
		int64_t quiet = s->now - s->last_write;

		s->n_bursts++;
		s->burst_min = s->burst < s->burst_min ? s->burst : s->burst_min;
		s->burst_max = s->burst > s->burst_max ? s->burst : s->burst_max;
		s->gap_min = quiet < s->gap_min ? quiet : s->gap_min;
		s->gap_max = quiet > s->gap_max ? quiet : s->gap_max;
		s->burst = 0;
	} else if (s->last_write != INT64_MIN) {
		cr_assert_lt(s->now - s->last_write, gap);
	}
	s->burst += bytes;
	s->last_write = s->now;
}

static void pulse_run(const char *text, bool split, uint64_t max_msg, int64_t jitter,
		      int64_t run, struct sim *s)
{
	struct bdr_rate_spec r = parse_ok(text);

	sim_init(s, &r, split, max_msg, jitter, run, 1);
	s->on_write = note_burst;
	sim_run(s, run);
	if (verbose())
		fprintf(stderr, "%s (%s, messages <= %" PRIu64 ", late <= %" PRId64 " ms): %" PRIu64
			" bursts of %" PRIu64 "..%" PRIu64 " bytes, quiet %.3f..%.3f s\n", text,
			split ? "split" : "whole", max_msg, jitter / MS, s->n_bursts, s->burst_min,
			s->burst_max, (double)s->gap_min / NS, (double)s->gap_max / NS);
}

/* Split writes: exactly a block, then exactly the gap. */
Test(throttle, pulse_blocks_and_gaps)
{
	struct sim s;

	pulse_run("pulse 64K 5s", true, MIB, 0, 600 * NS, &s);
	cr_assert_eq(s.n_bursts, 119);
	cr_assert_eq(s.burst_min, 64 * KIB);
	cr_assert_eq(s.burst_max, 64 * KIB);
	cr_assert_eq(s.gap_min, 5 * NS);
	cr_assert_eq(s.gap_max, 5 * NS);
	sim_free(&s);

	/* Late timers lengthen gaps, never shorten them. */
	pulse_run("pulse 64K 5s", true, 3000, 20 * MS, 600 * NS, &s);
	cr_assert_eq(s.burst_min, 64 * KIB);
	cr_assert_eq(s.burst_max, 64 * KIB);
	cr_assert_geq(s.gap_min, 5 * NS);
	cr_assert_lt(s.gap_max, 5 * NS + 20 * MS);
	sim_free(&s);
}

/* Whole messages smaller than the block: a burst is the block give or
 * take one message (the one that overran it is taken from the next). */
Test(throttle, pulse_whole_small_messages)
{
	struct sim s;
	double avg;

	pulse_run("pulse 64K 5s", false, 8 * KIB, MS, 600 * NS, &s);
	cr_assert_gt(s.burst_min, 64 * KIB - 8 * KIB);
	cr_assert_lt(s.burst_max, 64 * KIB + 8 * KIB);
	cr_assert_geq(s.gap_min, 5 * NS);
	cr_assert_lt(s.gap_max, 5 * NS + MS);
	avg = (double)s.total / (double)(s.n_bursts + 1) / (64.0 * KIB);
	cr_assert(avg > 0.99 && avg < 1.01, "%.4f blocks a burst", avg);
	sim_free(&s);
}

/* Whole messages up to 1 MiB, larger than the block: each is written
 * whole while the block is not spent; its excess costs one gap per block,
 * so the average stays a block per gap. */
Test(throttle, pulse_whole_large_messages)
{
	struct sim s;
	int64_t run = 20000 * NS;
	double avg;

	pulse_run("pulse 64K 5s", false, MIB, 0, run, &s);
	cr_assert_leq(s.burst_max, 64 * KIB + MIB);
	cr_assert_geq(s.gap_min, 5 * NS);
	avg = ((double)s.total - MIB) / ((double)run / NS) / (64.0 * KIB / 5);
	if (verbose())
		fprintf(stderr, "  average %.4f of a block per gap\n", avg);
	cr_assert(avg > 0.99 && avg < 1.01, "%.4f", avg);
	sim_free(&s);
}

/* A block not spent is refilled by a gap of quiet; a spent one waits a
 * gap from its last write. */
Test(throttle, pulse_partial_block)
{
	struct bdr_rate_spec r = parse_ok("pulse 64K 5s");
	struct bdr_throttle t;

	cr_assert_eq(bdr_throttle_init(&t, &r, 0, 0), 0);
	cr_assert_eq(bdr_throttle_allow(&t, 0, UINT64_MAX), 64 * KIB);
	bdr_throttle_consume(&t, NS, 60 * KIB);
	cr_assert_eq(bdr_throttle_allow(&t, NS, UINT64_MAX), 4 * KIB);
	cr_assert_eq(bdr_throttle_wait_ns(&t, NS, 4 * KIB), 0);
	cr_assert_eq(bdr_throttle_wait_ns(&t, NS, MIB), 0, "not spent: may overrun");
	cr_assert_eq(bdr_throttle_allow(&t, 6 * NS - 1, UINT64_MAX), 4 * KIB);
	cr_assert_eq(bdr_throttle_allow(&t, 6 * NS, UINT64_MAX), 64 * KIB);
	/* Spent by 3 blocks and a bit: four gaps from the last write. */
	bdr_throttle_consume(&t, 7 * NS, 64 * KIB * 4 + 1);
	cr_assert_eq(bdr_throttle_allow(&t, 7 * NS, UINT64_MAX), 0);
	cr_assert_eq(bdr_throttle_wait_ns(&t, 7 * NS, 1), 20 * NS);
	cr_assert_eq(bdr_throttle_wait_ns(&t, 7 * NS, UINT64_MAX), 20 * NS);
	cr_assert_eq(bdr_throttle_allow(&t, 27 * NS - 1, UINT64_MAX), 0);
	cr_assert_eq(bdr_throttle_allow(&t, 27 * NS, UINT64_MAX), 64 * KIB - 1);
	cr_assert_eq(bdr_throttle_wait_ns(&t, 27 * NS, UINT64_MAX), 0);
	bdr_throttle_consume(&t, 27 * NS, 64 * KIB - 1);
	cr_assert_eq(bdr_throttle_wait_ns(&t, 27 * NS, UINT64_MAX), 5 * NS);
	cr_assert_eq(bdr_throttle_allow(&t, 32 * NS, UINT64_MAX), 64 * KIB);
	/* The hour does not matter to pulses. */
	cr_assert_eq(bdr_throttle_set_hour(&t, 13, 32 * NS), 0);
	cr_assert_eq(bdr_throttle_allow(&t, 32 * NS, UINT64_MAX), 64 * KIB);
	cr_assert_eq(bdr_throttle_rate(&t), 64 * KIB / 5);
}
