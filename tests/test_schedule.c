/* Schedules: the rule grammar and its errors, the canonical text, and
 * window edges in absolute time driven by a fake clock: every minute of
 * whole weeks in several zones, transfers paused and resumed at edges, and
 * the two DST days of Europe/Paris in 2026 edge by edge. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>

#include "daemon/schedule.h"
#include "testutil.h"

#define NS 1000000000LL
#define MIN (60 * NS)
#define HOUR (3600 * NS)
#define DAY (24 * HOUR)

/* Windows per priority, weekday office hours, a weekend night closed, and
 * Sunday windows on the hours DST moves in Europe. */
#define REALISTIC                                                                           \
	"all all all; weekdays 08-18 high; weekdays 18-22 medium; fri 22-06 closed;"         \
	"sun 01-04 high; sun 02-03 closed"

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

static struct bdr_schedule parse_ok(const char *text)
{
	struct bdr_schedule s;
	struct bdr_diag d = { "" };
	int rc = bdr_schedule_parse(&s, text, &d);

	cr_assert_eq(rc, 0, "'%s': %s", text, d.msg);
	return s;
}

static void assert_day(const struct bdr_schedule *s, int day, const char *levels)
{
	static const char code[] = "-hma"; /* closed, high, medium, all */

	for (int h = 0; h < 24; h++)
		cr_assert_eq(code[s->cell[day][h]], levels[h], "day %d hour %d: '%c', want '%c'", day,
			     h, code[s->cell[day][h]], levels[h]);
}

static uint64_t rng(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* ---- grammar ---- */

Test(schedule, default_is_all_open)
{
	const char *texts[] = { NULL, "", "  ", " ; ;", "all all all" };

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct bdr_schedule s = parse_ok(texts[i]);

		for (int d = 0; d < 7; d++)
			assert_day(&s, d, "aaaaaaaaaaaaaaaaaaaaaaaa");
	}
}

Test(schedule, rules_apply_in_order)
{
	struct bdr_schedule s = parse_ok("mon-fri 08-18 high; sat,sun all closed; fri 12-14 medium");

	for (int d = 0; d < 4; d++)
		assert_day(&s, d, "aaaaaaaahhhhhhhhhhaaaaaa");
	assert_day(&s, 4, "aaaaaaaahhhhmmhhhhaaaaaa");
	assert_day(&s, 5, "------------------------");
	assert_day(&s, 6, "------------------------");
}

Test(schedule, hours_past_midnight_are_the_next_day)
{
	struct bdr_schedule s = parse_ok("fri 22-06 high; sun 23-01 closed; tue 18-00 medium");

	assert_day(&s, 4, "aaaaaaaaaaaaaaaaaaaaaahh");
	assert_day(&s, 5, "hhhhhhaaaaaaaaaaaaaaaaaa");
	assert_day(&s, 6, "aaaaaaaaaaaaaaaaaaaaaaa-");
	assert_day(&s, 0, "-aaaaaaaaaaaaaaaaaaaaaaa"); /* Sunday's rule ends on Monday */
	assert_day(&s, 1, "aaaaaaaaaaaaaaaaaammmmmm"); /* 18-00: to midnight */
	assert_day(&s, 2, "aaaaaaaaaaaaaaaaaaaaaaaa");
}

Test(schedule, day_forms)
{
	static const struct {
		const char *days;
		unsigned mask;
	} cases[] = {
		{ "mon", 0x01 },	 { "Sunday", 0x40 },     { "mon-wed", 0x07 },
		{ "fri-mon", 0x71 },	 { "sun-mon", 0x41 },    { "wed-wed", 0x04 },
		{ "mon,wed,fri", 0x15 }, { "weekdays", 0x1f },   { "weekend", 0x60 },
		{ "daily", 0x7f },	 { "all", 0x7f },	 { "weekend,mon", 0x61 },
		{ "tue-thu,sat", 0x2e }, { "mon,mon", 0x01 },    { "thursday-saturday", 0x38 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[100];
		struct bdr_schedule s;

		snprintf(text, sizeof(text), "%s 10-11 closed", cases[i].days);
		s = parse_ok(text);
		for (int d = 0; d < 7; d++)
			cr_assert_eq(s.cell[d][10] == BDR_SCHED_CLOSED, !!(cases[i].mask & 1u << d),
				     "'%s' day %d", cases[i].days, d);
	}
}

Test(schedule, case_and_whitespace)
{
	struct bdr_schedule a = parse_ok("mon-fri 08-18 high;sat,sun 9-12 medium;fri 22-06 closed");
	struct bdr_schedule b = parse_ok("  MON - Fri\t08 -18   HIGH ;\n Sat ,  SUN  9:00 - 12:00 "
					 "Medium;FRI 22 - 6 closed  ;");

	cr_assert_arr_eq(a.cell, b.cell, sizeof(a.cell));
}

Test(schedule, levels_admit_priorities)
{
	struct bdr_schedule s = parse_ok("mon 00-01 closed; mon 01-02 high; mon 02-03 medium");
	static const bool want[4][3] = {
		{ false, false, false }, /* closed */
		{ true, false, false },	 /* high */
		{ true, true, false },	 /* medium */
		{ true, true, true },	 /* all */
	};

	for (int h = 0; h < 4; h++)
		for (int p = BDR_PRIO_HIGH; p <= BDR_PRIO_LOW; p++)
			cr_assert_eq(bdr_schedule_admits(&s, 0, h, p), want[h][p], "hour %d prio %d",
				     h, p);
	cr_assert_not(bdr_schedule_admits(&s, 7, 0, BDR_PRIO_HIGH));
	cr_assert_not(bdr_schedule_admits(&s, 0, 24, BDR_PRIO_HIGH));
	cr_assert_not(bdr_schedule_admits(&s, -1, 0, BDR_PRIO_HIGH));
	cr_assert_str_eq(bdr_schedule_level_name(BDR_SCHED_MEDIUM), "medium");
	cr_assert_str_eq(bdr_schedule_level_name(BDR_SCHED_CLOSED), "closed");
}

Test(schedule, errors_name_the_rule_and_token)
{
	static const struct {
		const char *text, *msg;
	} cases[] = {
		{ "all all all; mon-fry 08-18 high",
		  "schedule rule 2 'mon-fry 08-18 high': unknown day 'fry'" },
		{ "fro 08-18 high", "schedule rule 1 'fro 08-18 high': unknown day 'fro'" },
		{ ";; Mon,,Fri 08-18 high", "schedule rule 1 'Mon,,Fri 08-18 high': empty item in days "
					    "'Mon,,Fri'" },
		{ "mon, 08-18 high", /* "mon,08-18" */
		  "schedule rule 1 'mon, 08-18 high': unknown day '08'" },
		{ "mon- 08-18 high", "schedule rule 1 'mon- 08-18 high': 'mon-08-18' is not a day "
				     "range (like mon-fri)" },
		{ "tue-,wed all high",
		  "schedule rule 1 'tue-,wed all high': 'tue-' is not a day range (like mon-fri)" },
		{ "mon-tue-wed 08-18 high",
		  "schedule rule 1 'mon-tue-wed 08-18 high': 'mon-tue-wed' is not a day range "
		  "(like mon-fri)" },
		{ "-fri 08-18 high",
		  "schedule rule 1 '-fri 08-18 high': '-fri' is not a day range (like mon-fri)" },
		{ "weekdays-sun 08-18 high",
		  "schedule rule 1 'weekdays-sun 08-18 high': unknown day 'weekdays'" },
		{ "mon 8h-18 high", "schedule rule 1 'mon 8h-18 high': '8h' is not an hour (00 to 24)" },
		{ "mon 008-18 high",
		  "schedule rule 1 'mon 008-18 high': '008' is not an hour (00 to 24)" },
		{ "mon 08-18:0x high",
		  "schedule rule 1 'mon 08-18:0x high': '18:0x' is not an hour (00 to 24)" },
		{ "mon 08:30-18 high",
		  "schedule rule 1 'mon 08:30-18 high': '08:30': schedules are in whole hours" },
		{ "mon 08-25 high",
		  "schedule rule 1 'mon 08-25 high': hour '25' is out of range (00 to 24)" },
		{ "mon 24-06 high",
		  "schedule rule 1 'mon 24-06 high': hours '24-06': a range starts at 00 to 23" },
		{ "mon 08-08 high", "schedule rule 1 'mon 08-08 high': hours '08-08' are an empty range" },
		{ "mon 08 high",
		  "schedule rule 1 'mon 08 high': hours '08': expected a range HH-HH, or all" },
		{ "mon 08- high", /* "08-high" */
		  "schedule rule 1 'mon 08- high': 'high' is not an hour (00 to 24)" },
		{ "mon 08-", "schedule rule 1 'mon 08-': hours '08-': expected a range HH-HH, or all" },
		{ "mon -08 all", "schedule rule 1 'mon -08 all': unknown day '08'" },
		{ "mon 08-18-20 high",
		  "schedule rule 1 'mon 08-18-20 high': '18-20' is not an hour (00 to 24)" },
		{ "mon 08-18 urgent", "schedule rule 1 'mon 08-18 urgent': unknown level 'urgent' "
				      "(all, medium, high or closed)" },
		{ "mon 08-18 low", "schedule rule 1 'mon 08-18 low': unknown level 'low' (all, medium, "
				   "high or closed)" },
		{ "mon 08-18", "schedule rule 1 'mon 08-18': missing level after '08-18'" },
		{ "mon", "schedule rule 1 'mon': missing hours and level after 'mon'" },
		{ "mon 08-18 high now", "schedule rule 1 'mon 08-18 high now': unexpected 'now' after "
					"the level" },
		{ "mon 08-18 high; tue 08-18 high ; wed", /* " ;" is fine here, not in an INI file */
		  "schedule rule 3 'wed': missing hours and level after 'wed'" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct bdr_schedule s;
		struct bdr_diag d = { "" };

		bdr_schedule_default(&s);
		s.cell[3][3] = BDR_SCHED_HIGH;
		cr_assert_eq(bdr_schedule_parse(&s, cases[i].text, &d), -EINVAL, "%s", cases[i].text);
		cr_assert_str_eq(d.msg, cases[i].msg);
		cr_assert_eq(s.cell[3][3], BDR_SCHED_HIGH, "left unchanged on error");
		cr_assert_eq(s.cell[0][8], BDR_SCHED_ALL, "left unchanged on error");
		cr_assert_eq(bdr_schedule_parse(&s, cases[i].text, NULL), -EINVAL);
	}
}

Test(schedule, a_long_rule_is_refused)
{
	char text[400], want[200];
	struct bdr_schedule s;
	struct bdr_diag d;

	snprintf(text, sizeof(text), "mon 08-18%292shigh", "");
	snprintf(want, sizeof(want), "schedule rule 1 'mon 08-18%31s...': longer than 200 characters",
		 "");
	cr_assert_eq(bdr_schedule_parse(&s, text, &d), -EINVAL);
	cr_assert_str_eq(d.msg, want);
	/* Whitespace counts: the INI line limit keeps real rules far shorter. */
	snprintf(text, sizeof(text), "mon 08-18%187shigh", "");
	cr_assert_eq(bdr_schedule_parse(&s, text, &d), 0, "%s", d.msg);
}

/* ---- canonical text ---- */

static void assert_format(const char *text, const char *want)
{
	struct bdr_schedule s = parse_ok(text);
	char buf[BDR_SCHEDULE_TEXT_MAX];

	cr_assert_eq(bdr_schedule_format(&s, buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, want, "format of '%s'", text);
}

Test(schedule, format_is_short_and_readable)
{
	assert_format("", "all all all");
	assert_format("mon-fri 08-18 high", "weekdays 08-18 high");
	assert_format("mon-fri 08-18 high; sat,sun all closed",
		      "weekdays 08-18 high; weekend all closed");
	assert_format("all all closed; mon 08-18 all", "all all closed; mon 08-18 all");
	assert_format("daily 08-18 medium; fri 18-22 closed", "all 08-18 medium; fri 18-22 closed");
	assert_format("fri 22-06 high", "fri 22-24 high; sat 00-06 high");
	assert_format("sat-mon all medium", "sat-mon all medium");
	assert_format("mon,sun 08-09 high; wed,thu 10-11 high",
		      "mon,sun 08-09 high; wed,thu 10-11 high");
	assert_format("mon,wed,thu,sun 08-09 high", "mon,wed,thu,sun 08-09 high");
	assert_format("sat-mon,wed 08-09 high", "wed,sat-mon 08-09 high");
	assert_format("all all high; mon,wed,fri-sun 00-12 all", "all all high; wed,fri-mon 00-12 all");
}

static void assert_round_trip(const struct bdr_schedule *s)
{
	char buf[BDR_SCHEDULE_TEXT_MAX], again[BDR_SCHEDULE_TEXT_MAX];
	struct bdr_schedule back;

	cr_assert_eq(bdr_schedule_format(s, buf, sizeof(buf)), 0);
	back = parse_ok(buf);

	cr_assert_arr_eq(back.cell, s->cell, sizeof(s->cell), "'%s'", buf);
	cr_assert_eq(bdr_schedule_format(&back, again, sizeof(again)), 0);
	cr_assert_str_eq(again, buf);
}

Test(schedule, format_round_trips_random_grids)
{
	uint64_t x = 0x5c4ed01e;

	for (int i = 0; i < 500; i++) { /* every cell drawn on its own */
		struct bdr_schedule s;

		for (int c = 0; c < 7 * 24; c++)
			s.cell[c / 24][c % 24] = (uint8_t)(rng(&x) % 4);
		assert_round_trip(&s);
	}
	for (int i = 0; i < 500; i++) { /* grids an operator would write */
		static const char *const days[] = { "mon", "tue-thu", "fri-mon", "weekend",
						    "weekdays", "sat,mon", "daily" };
		static const char *const levels[] = { "closed", "high", "medium", "all" };
		char text[1024] = "";
		int rules = (int)(rng(&x) % 6);

		for (int r = 0; r < rules; r++) {
			int a = (int)(rng(&x) % 24), b = (int)(rng(&x) % 25);

			snprintf(text + strlen(text), sizeof(text) - strlen(text), "%s %02d-%02d %s;",
				 days[rng(&x) % 7], a, b == a ? 24 : b, levels[rng(&x) % 4]);
		}
		struct bdr_schedule s = parse_ok(text);
		assert_round_trip(&s);
	}
}

Test(schedule, format_worst_case_fits_and_small_buffers_fail)
{
	struct bdr_schedule s;
	char buf[BDR_SCHEDULE_TEXT_MAX], small[16];

	for (int pattern = 0; pattern < 4; pattern++) {
		for (int c = 0; c < 7 * 24; c++)
			s.cell[c / 24][c % 24] = (uint8_t)((c * (pattern + 1) + c / 24 * pattern) % 4);
		assert_round_trip(&s);
	}
	cr_assert_eq(bdr_schedule_format(&s, small, sizeof(small)), -ENOSPC);
	cr_assert_eq(strlen(small), sizeof(small) - 1);
	cr_assert_eq(bdr_schedule_format(&s, buf, sizeof(buf)), 0);
	cr_assert_eq(bdr_schedule_format(&s, NULL, 0), -ENOSPC);
}

/* ---- local time ---- */

Test(schedule, local_labels)
{
	int d, h;

	set_tz("UTC");
	cr_assert_eq(bdr_schedule_local(utc(2026, 6, 1, 0, 0), &d, &h), 0);
	cr_assert(d == 0 && h == 0, "Monday 00: %d %d", d, h);
	cr_assert_eq(bdr_schedule_local(utc(2026, 6, 7, 23, 59), &d, &h), 0);
	cr_assert(d == 6 && h == 23);
	cr_assert_eq(bdr_schedule_local(-NS / 2, &d, &h), 0); /* 1969-12-31 23:59:59.5 */
	cr_assert(d == 2 && h == 23, "Wednesday 23: %d %d", d, h);

	set_tz("Europe/Paris");
	cr_assert_eq(bdr_schedule_local(utc(2026, 3, 29, 0, 59), &d, &h), 0);
	cr_assert(d == 6 && h == 1);
	cr_assert_eq(bdr_schedule_local(utc(2026, 3, 29, 1, 0), &d, &h), 0);
	cr_assert(d == 6 && h == 3, "02:00 does not exist: %d %d", d, h);
	cr_assert_eq(bdr_schedule_local(utc(2026, 10, 25, 0, 30), &d, &h), 0);
	cr_assert(d == 6 && h == 2);
	cr_assert_eq(bdr_schedule_local(utc(2026, 10, 25, 1, 30), &d, &h), 0);
	cr_assert(d == 6 && h == 2, "02:00 twice: %d %d", d, h);
}

/* ---- a fake clock through whole weeks ---- */

/* Every minute of [from, from + minutes), each at a different offset
 * inside its minute: next_change and next_open agree with the grid read
 * through the local label of each minute. Edges fall on whole minutes in
 * every zone, so the minute steps see each one. */
static void walk(const struct bdr_schedule *s, int64_t from, int64_t minutes)
{
	size_t n = (size_t)minutes + 8 * 1440 + 1;
	bool *state = malloc(n);
	size_t *next = malloc(n * sizeof(*next));

	cr_assert(state && next);
	for (int p = BDR_PRIO_HIGH; p <= BDR_PRIO_LOW; p++) {
		for (size_t i = 0; i < n; i++) {
			int d, h;

			cr_assert_eq(bdr_schedule_local(from + (int64_t)i * MIN, &d, &h), 0);
			state[i] = bdr_schedule_admits(s, d, h, p);
		}
		next[n - 1] = SIZE_MAX;
		for (size_t i = n - 1; i-- > 0;)
			next[i] = state[i + 1] != state[i] ? i + 1 : next[i + 1];
		for (size_t i = 0; i < (size_t)minutes; i++) {
			int64_t t = from + (int64_t)i * MIN + (int64_t)(i * 7919 % 60000) * 1000000;
			int64_t want = next[i] == SIZE_MAX ? INT64_MAX : from + (int64_t)next[i] * MIN;
			bool open;
			int64_t got = bdr_schedule_next_change(s, p, t, &open);

			if (open != state[i] || got != want)
				cr_assert_fail("prio %d at %lld: open %d (want %d), next change %lld "
					       "(want %lld)",
					       p, (long long)(t / NS), open, state[i],
					       (long long)(got / NS), (long long)(want / NS));
			if (bdr_schedule_next_open(s, p, t) != (open ? t : want))
				cr_assert_fail("prio %d at %lld: next_open", p, (long long)t);
		}
	}
	free(state);
	free(next);
}

Test(schedule, week_by_minute_utc)
{
	struct bdr_schedule s = parse_ok(REALISTIC);

	set_tz("UTC");
	walk(&s, utc(2026, 6, 1, 0, 0), 7 * 1440);
	s = parse_ok("weekdays 08-18 medium; sun 03-04 closed");
	walk(&s, utc(2026, 6, 3, 12, 0), 7 * 1440);
}

Test(schedule, weeks_by_minute_paris_dst)
{
	struct bdr_schedule s = parse_ok(REALISTIC);

	set_tz("Europe/Paris");
	walk(&s, utc(2026, 3, 22, 23, 0), 14 * 1440); /* spring forward on the 29th */
	walk(&s, utc(2026, 10, 18, 22, 0), 14 * 1440); /* fall back on the 25th */
}

Test(schedule, weeks_by_minute_odd_zones)
{
	struct bdr_schedule s = parse_ok(REALISTIC "; sat 01-02 high; sat 02-03 medium");

	set_tz("Australia/Lord_Howe"); /* +10:30, and half an hour of DST */
	walk(&s, utc(2026, 3, 30, 0, 0), 8 * 1440);
	walk(&s, utc(2026, 9, 28, 0, 0), 8 * 1440);
	set_tz("Asia/Kolkata"); /* +05:30 */
	walk(&s, utc(2026, 6, 1, 0, 0), 7 * 1440);
	set_tz("America/St_Johns"); /* -03:30, DST on 2026-03-08 */
	walk(&s, utc(2026, 3, 5, 0, 0), 7 * 1440);
}

/* A transfer of priority p needing `need` of sending time, started at t,
 * driven as the daemon drives it: send until the next edge, pause, resume
 * at the next window. Its finish time; *pauses counts the pauses. */
static int64_t run_transfer(const struct bdr_schedule *s, enum bdr_db_priority p, int64_t t,
			    int64_t need, int *pauses)
{
	for (*pauses = 0;; (*pauses)++) {
		bool open;
		int64_t end;

		if ((t = bdr_schedule_next_open(s, p, t)) == INT64_MAX)
			return INT64_MAX;
		end = bdr_schedule_next_change(s, p, t, &open);
		cr_assert(open);
		if (end - t >= need)
			return t + need;
		need -= end - t;
		t = end;
	}
}

/* The same by counting open minutes. */
static int64_t run_by_minute(const struct bdr_schedule *s, enum bdr_db_priority p, int64_t t,
			     int64_t need)
{
	for (; need > 0; t += MIN) {
		int d, h;

		bdr_schedule_local(t, &d, &h);
		if (bdr_schedule_admits(s, d, h, p))
			need -= MIN;
	}
	return t;
}

Test(schedule, transfers_pause_and_resume_at_edges)
{
	struct bdr_schedule s = parse_ok(REALISTIC);
	uint64_t x = 0x7a11;
	int pauses;

	set_tz("Europe/Paris");
	/* Low, Friday 17:30: weekdays 08-22 are closed to it and 22-06 too. */
	cr_assert_eq(run_transfer(&s, BDR_PRIO_LOW, utc(2026, 6, 5, 15, 30), 3 * HOUR, &pauses),
		     utc(2026, 6, 6, 7, 0));
	cr_assert_eq(pauses, 0, "it waits for the window, it does not pause");
	/* Medium, Friday 21:00: one hour, closed from 22, on again Sat 06. */
	cr_assert_eq(run_transfer(&s, BDR_PRIO_MEDIUM, utc(2026, 6, 5, 19, 0), 3 * HOUR, &pauses),
		     utc(2026, 6, 6, 6, 0));
	cr_assert_eq(pauses, 1);
	for (int i = 0; i < 300; i++) {
		int64_t t = utc(2026, 3, 16, 0, 0) + (int64_t)(rng(&x) % (28 * 1440)) * MIN;
		int64_t need = (int64_t)(1 + rng(&x) % (3 * 1440)) * MIN;
		enum bdr_db_priority p = (enum bdr_db_priority)(rng(&x) % 3);

		cr_assert_eq(run_transfer(&s, p, t, need, &pauses), run_by_minute(&s, p, t, need),
			     "prio %d from %lld for %lld s", p, (long long)(t / NS),
			     (long long)(need / NS));
	}
}

Test(schedule, never_and_always)
{
	struct bdr_schedule s = parse_ok("all all medium");
	int64_t t = utc(2026, 6, 3, 12, 34);
	bool open = true;

	set_tz("Europe/Paris");
	cr_assert_eq(bdr_schedule_next_open(&s, BDR_PRIO_LOW, t), INT64_MAX);
	cr_assert_eq(bdr_schedule_next_change(&s, BDR_PRIO_LOW, t, &open), INT64_MAX);
	cr_assert_not(open);
	cr_assert_eq(bdr_schedule_next_change(&s, BDR_PRIO_MEDIUM, t, &open), INT64_MAX);
	cr_assert(open);
	cr_assert_eq(bdr_schedule_next_open(&s, BDR_PRIO_MEDIUM, t + 5), t + 5);
	s = parse_ok("");
	for (int p = BDR_PRIO_HIGH; p <= BDR_PRIO_LOW; p++) {
		cr_assert_eq(bdr_schedule_next_change(&s, p, t, &open), INT64_MAX);
		cr_assert(open);
	}
	cr_assert_eq(bdr_schedule_next_change(&s, BDR_PRIO_LOW, t, NULL), INT64_MAX);
}

/* ---- the DST days of Europe/Paris, edge by edge ---- */

/* The windows of p in [from, to), as start/end pairs in v (at most 8);
 * returns the open seconds. */
static int64_t windows(const struct bdr_schedule *s, enum bdr_db_priority p, int64_t from,
		       int64_t to, int64_t *v, size_t *n)
{
	int64_t open_ns = 0;

	*n = 0;
	for (int64_t t = from; t < to;) {
		bool open;
		int64_t next = bdr_schedule_next_change(s, p, t, &open);
		int64_t end = next < to ? next : to;

		if (open) {
			cr_assert_lt(*n, 8);
			if (*n && v[*n - 1] == t)
				cr_assert_fail("a window ended and reopened at the same instant");
			v[(*n)++] = t;
			v[(*n)++] = end;
			open_ns += end - t;
		}
		t = end;
	}
	*n /= 2;
	return open_ns / NS;
}

/* 2026-MO-DD HH:00 UTC */
#define U(mo, d, h) utc(2026, mo, d, h, 0)

struct dst_case {
	const char *rules;
	int64_t open_s;
	size_t n;
	int64_t w[4]; /* start, end of each window */
};

static void check_day(const struct dst_case *c, size_t count, int64_t from, int64_t to)
{
	for (size_t i = 0; i < count; i++) {
		struct bdr_schedule s = parse_ok(c[i].rules);
		int64_t v[16];
		size_t n;
		int64_t open_s = windows(&s, BDR_PRIO_HIGH, from, to, v, &n);

		cr_assert_eq(open_s, c[i].open_s, "'%s': %lld s open", c[i].rules, (long long)open_s);
		cr_assert_eq(n, c[i].n, "'%s': %zu windows", c[i].rules, n);
		for (size_t j = 0; j < 2 * n; j++)
			cr_assert_eq(v[j], c[i].w[j], "'%s': edge %zu at %lld, want %lld", c[i].rules,
				     j, (long long)(v[j] / NS), (long long)(c[i].w[j] / NS));
	}
}

/* Sunday 2026-03-29, Paris: 00:00 CET is 23:00 UTC the day before, 02:00
 * CET becomes 03:00 CEST at 01:00 UTC, and the day has 23 hours. */
Test(schedule, paris_spring_forward)
{
	const int64_t day0 = U(3, 28, 23), day1 = U(3, 29, 22);
	const struct dst_case cases[] = {
		{ "all all closed; sun 02-03 high", 0, 0, { 0 } },
		{ "all all closed; sun 01-04 high", 7200, 1, { U(3, 29, 0), U(3, 29, 2) } },
		{ "all all closed; sun 01-02 high", 3600, 1, { U(3, 29, 0), U(3, 29, 1) } },
		{ "all all closed; sun 03-05 high", 7200, 1, { U(3, 29, 1), U(3, 29, 3) } },
		{ "all all closed; sun 00-02 high", 7200, 1, { day0, U(3, 29, 1) } },
		{ "all all closed; sun 02-04 high", 3600, 1, { U(3, 29, 1), U(3, 29, 2) } },
		{ "sun 02-03 closed", 23 * 3600, 1, { day0, day1 } },
		{ "sun 01-02 closed", 22 * 3600, 2, { day0, U(3, 29, 0), U(3, 29, 1), day1 } },
	};

	set_tz("Europe/Paris");
	check_day(cases, sizeof(cases) / sizeof(cases[0]), day0, day1);

	/* The window that does not exist this week opens the next one. */
	struct bdr_schedule s = parse_ok("all all closed; sun 02-03 high");
	cr_assert_eq(bdr_schedule_next_open(&s, BDR_PRIO_HIGH, U(3, 28, 12)),
		     U(4, 5, 0));
	s = parse_ok("sun 02-03 closed");
	cr_assert_eq(bdr_schedule_next_change(&s, BDR_PRIO_LOW, U(3, 28, 12), NULL),
		     U(4, 5, 0));
}

/* Sunday 2026-10-25, Paris: 00:00 CEST is 22:00 UTC the day before, 03:00
 * CEST becomes 02:00 CET at 01:00 UTC, and the day has 25 hours. */
Test(schedule, paris_fall_back)
{
	const int64_t day0 = U(10, 24, 22), day1 = U(10, 25, 23);
	const struct dst_case cases[] = {
		{ "all all closed; sun 02-03 high", 7200, 1, { U(10, 25, 0), U(10, 25, 2) } },
		{ "all all closed; sun 01-02 high", 3600, 1, { U(10, 24, 23), U(10, 25, 0) } },
		{ "all all closed; sun 03-04 high", 3600, 1, { U(10, 25, 2), U(10, 25, 3) } },
		{ "all all closed; sun 01-04 high", 14400, 1, { U(10, 24, 23), U(10, 25, 3) } },
		{ "all all closed; sun 00-03 high", 4 * 3600, 1, { day0, U(10, 25, 2) } },
		{ "sun 02-03 closed", 23 * 3600, 2, { day0, U(10, 25, 0), U(10, 25, 2), day1 } },
		{ "", 25 * 3600, 1, { day0, day1 } },
	};

	set_tz("Europe/Paris");
	check_day(cases, sizeof(cases) / sizeof(cases[0]), day0, day1);

	/* Saturday 22:00 CEST to Sunday 03:00 CET: six absolute hours. */
	struct bdr_schedule s = parse_ok("all all closed; sat 22-03 high");
	bool open;
	cr_assert_eq(bdr_schedule_next_open(&s, BDR_PRIO_HIGH, U(10, 24, 12)),
		     U(10, 24, 20));
	cr_assert_eq(bdr_schedule_next_change(&s, BDR_PRIO_HIGH, U(10, 24, 20), &open),
		     U(10, 25, 2));
	cr_assert(open);
	/* Inside the repeated hour, second time round: still the same window. */
	cr_assert_eq(bdr_schedule_next_change(&s, BDR_PRIO_HIGH, utc(2026, 10, 25, 1, 30), &open),
		     U(10, 25, 2));
	cr_assert(open);
}

Test(schedule, utc_baseline)
{
	const int64_t day0 = U(3, 29, 0), day1 = U(3, 30, 0);
	const struct dst_case cases[] = {
		{ "all all closed; sun 02-03 high", 3600, 1, { U(3, 29, 2), U(3, 29, 3) } },
		{ "all all closed; sun 01-04 high", 3 * 3600, 1, { U(3, 29, 1), U(3, 29, 4) } },
		{ "sun 02-03 closed", 23 * 3600, 2, { day0, U(3, 29, 2), U(3, 29, 3), day1 } },
	};

	set_tz("UTC");
	check_day(cases, sizeof(cases) / sizeof(cases[0]), day0, day1);
}

/* ---- the man page ---- */

/* The schedules bdr.conf(5) shows, in its SCHEDULES section, parse; and
 * its error line is the one bdrd prints. */
Test(schedule, man_page_schedules_parse)
{
	const char *root = getenv("BDR_SOURCE_ROOT");
	char path[PATH_MAX], *text, *p, *end;
	struct bdr_schedule s;
	struct bdr_diag d;
	size_t len;
	int lines = 0;

	cr_assert(root && *root, "BDR_SOURCE_ROOT is set by tests/meson.build");
	snprintf(path, sizeof(path), "%s/packaging/man/bdr.conf.5.scd", root);
	text = (char *)tu_read(path, &len);
	cr_assert_not_null(text, "%s", path);
	text[len - 1] = '\0'; /* the page ends with a newline */
	/* From SCHEDULES to the next top-level section, whichever it is. */
	p = strstr(text, "\n# SCHEDULES\n");
	end = p ? strstr(p + 1, "\n# ") : NULL;
	cr_assert(p && end, "bdr.conf(5) has a SCHEDULES section followed by another");
	*end = '\0';
	while ((p = strstr(p, "\n```\n"))) {
		char *close = strstr(p + 5, "\n```\n");

		cr_assert_not_null(close);
		*close = '\0';
		for (char *line = strtok(p + 5, "\n"); line; line = strtok(NULL, "\n"), lines++) {
			if (strncmp(line, "schedule rule ", 14) != 0) {
				parse_ok(line);
				continue;
			}
			cr_assert_eq(bdr_schedule_parse(&s, "all all all; mon-fry 08-18 high", &d),
				     -EINVAL);
			cr_assert_str_eq(line, d.msg);
		}
		p = close + 4;
	}
	cr_assert_geq(lines, 4);
	free(text);
}
