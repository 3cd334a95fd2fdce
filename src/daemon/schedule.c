/* Transfer schedules: the rule grammar, its canonical text, and window
 * edges in absolute time. See schedule.h for the grammar and the DST
 * policy. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "daemon/schedule.h"

#define NS_PER_S 1000000000LL
#define WEEK_HOURS (BDR_SCHEDULE_DAYS * BDR_SCHEDULE_HOURS)
#define HORIZON_S (8 * 86400)
#define ALL_DAYS 0x7fu
#define WEEKDAYS 0x1fu
#define WEEKEND 0x60u

static const char *const level_names[] = { "closed", "high", "medium", "all" };
static const char *const day_short[] = { "mon", "tue", "wed", "thu", "fri", "sat", "sun" };
static const char *const day_long[] = { "monday", "tuesday", "wednesday", "thursday",
					"friday", "saturday", "sunday" };

static const struct {
	const char *name;
	unsigned mask;
} day_sets[] = {
	{ "all", ALL_DAYS },
	{ "daily", ALL_DAYS },
	{ "weekdays", WEEKDAYS },
	{ "weekend", WEEKEND },
};

void bdr_schedule_default(struct bdr_schedule *s)
{
	memset(s->cell, BDR_SCHED_ALL, sizeof(s->cell));
}

const char *bdr_schedule_level_name(enum bdr_schedule_level level)
{
	return (unsigned)level <= BDR_SCHED_ALL ? level_names[level] : "?";
}

bool bdr_schedule_admits(const struct bdr_schedule *s, int day, int hour,
			 enum bdr_db_priority p)
{
	if (day < 0 || day >= BDR_SCHEDULE_DAYS || hour < 0 || hour >= BDR_SCHEDULE_HOURS)
		return false;
	return (int)s->cell[day][hour] > (int)p;
}

/* ---- parsing ---- */

/* The rule being parsed, for its error messages. */
struct rule {
	int n;            /* 1-based, counting non-empty rules */
	const char *text; /* as written, trimmed; not terminated */
	size_t len;
	struct bdr_diag *d;
};

__attribute__((format(printf, 2, 3))) static int rule_err(const struct rule *r,
							  const char *fmt, ...)
{
	char why[256];
	int quoted = r->len > BDR_SCHEDULE_RULE_MAX ? 40 : (int)r->len;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return bdr_diag_set(r->d, -EINVAL, "schedule rule %d '%.*s%s': %s", r->n, quoted, r->text,
			    (size_t)quoted < r->len ? "..." : "", why);
}

static bool word_eq(const char *s, size_t n, const char *word)
{
	return strlen(word) == n && strncasecmp(s, word, n) == 0;
}

/* Copies a rule with each run of whitespace made one space, and none
 * around '-' or ',', so "mon - fri ,sun" is the token "mon-fri,sun". */
static void squeeze(const char *p, size_t len, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		if (isspace((unsigned char)p[i])) {
			if (o && !strchr(" -,", out[o - 1]))
				out[o++] = ' ';
			continue;
		}
		if ((p[i] == '-' || p[i] == ',') && o && out[o - 1] == ' ')
			o--;
		out[o++] = p[i];
	}
	if (o && out[o - 1] == ' ')
		o--;
	out[o] = '\0';
}

static int day_index(const char *s, size_t n)
{
	for (int d = 0; d < BDR_SCHEDULE_DAYS; d++)
		if (word_eq(s, n, day_short[d]) || word_eq(s, n, day_long[d]))
			return d;
	return -1;
}

static int parse_day(const struct rule *r, const char *s, size_t n, int *day)
{
	*day = day_index(s, n);
	if (*day < 0)
		return rule_err(r, "unknown day '%.*s'", (int)n, s);
	return 0;
}

/* One item of a DAYS list: a day, a day range or a named set. */
static int parse_day_item(const struct rule *r, const char *s, size_t n, unsigned *mask)
{
	const char *dash = memchr(s, '-', n);
	int a, b, rc;

	for (size_t i = 0; i < sizeof(day_sets) / sizeof(day_sets[0]); i++)
		if (word_eq(s, n, day_sets[i].name))
			return *mask = day_sets[i].mask, 0;
	if (!dash) {
		if ((rc = parse_day(r, s, n, &a)) < 0)
			return rc;
		*mask = 1u << a;
		return 0;
	}
	if (dash == s || dash == s + n - 1 || memchr(dash + 1, '-', (size_t)(s + n - dash - 1)))
		return rule_err(r, "'%.*s' is not a day range (like mon-fri)", (int)n, s);
	if ((rc = parse_day(r, s, (size_t)(dash - s), &a)) < 0 ||
	    (rc = parse_day(r, dash + 1, (size_t)(s + n - dash - 1), &b)) < 0)
		return rc;
	for (*mask = 0;; a = (a + 1) % BDR_SCHEDULE_DAYS) {
		*mask |= 1u << a;
		if (a == b)
			return 0;
	}
}

static int parse_days(const struct rule *r, const char *tok, unsigned *mask)
{
	*mask = 0;
	for (const char *p = tok;; p++) {
		size_t n = strcspn(p, ",");
		unsigned m = 0;
		int rc;

		if (n == 0)
			return rule_err(r, "empty item in days '%s'", tok);
		if ((rc = parse_day_item(r, p, n, &m)) < 0)
			return rc;
		*mask |= m;
		p += n;
		if (!*p)
			return 0;
	}
}

/* H or HH, optionally followed by ":00". */
static int parse_hour(const struct rule *r, const char *s, size_t n, int *hour)
{
	size_t i = 0, left;

	for (*hour = 0; i < n && i < 3 && isdigit((unsigned char)s[i]); i++)
		*hour = *hour * 10 + (s[i] - '0');
	left = n - i;
	if (i == 0 || i == 3 ||
	    (left && !(left == 3 && s[i] == ':' && isdigit((unsigned char)s[i + 1]) &&
		       isdigit((unsigned char)s[i + 2]))))
		return rule_err(r, "'%.*s' is not an hour (00 to 24)", (int)n, s);
	if (left && strncmp(s + i, ":00", 3))
		return rule_err(r, "'%.*s': schedules are in whole hours", (int)n, s);
	if (*hour > 24)
		return rule_err(r, "hour '%.*s' is out of range (00 to 24)", (int)n, s);
	return 0;
}

/* The range [start, end); end < start wraps past midnight, and an end of
 * 00 is midnight (24). */
static int parse_hours(const struct rule *r, const char *tok, int *start, int *end)
{
	const char *dash = strchr(tok, '-');
	int rc;

	if (!strcasecmp(tok, "all"))
		return *start = 0, *end = 24, 0;
	if (!dash || dash == tok || !dash[1])
		return rule_err(r, "hours '%s': expected a range HH-HH, or all", tok);
	if ((rc = parse_hour(r, tok, (size_t)(dash - tok), start)) < 0 ||
	    (rc = parse_hour(r, dash + 1, strlen(dash + 1), end)) < 0)
		return rc;
	if (*start == 24)
		return rule_err(r, "hours '%s': a range starts at 00 to 23", tok);
	if (*end == 0)
		*end = 24;
	if (*start == *end)
		return rule_err(r, "hours '%s' are an empty range", tok);
	return 0;
}

static int parse_level(const struct rule *r, const char *tok, int *level)
{
	for (int l = BDR_SCHED_CLOSED; l <= BDR_SCHED_ALL; l++)
		if (!strcasecmp(tok, level_names[l]))
			return *level = l, 0;
	return rule_err(r, "unknown level '%s' (all, medium, high or closed)", tok);
}

static void fill(uint8_t *row, int from, int to, int level)
{
	memset(row + from, level, (size_t)(to - from));
}

static void apply(struct bdr_schedule *g, unsigned days, int start, int end, int level)
{
	for (int d = 0; d < BDR_SCHEDULE_DAYS; d++) {
		if (!(days & 1u << d))
			continue;
		if (start < end) {
			fill(g->cell[d], start, end, level);
		} else {
			fill(g->cell[d], start, BDR_SCHEDULE_HOURS, level);
			fill(g->cell[(d + 1) % BDR_SCHEDULE_DAYS], 0, end, level);
		}
	}
}

static int parse_rule(const struct rule *r, struct bdr_schedule *g)
{
	char buf[BDR_SCHEDULE_RULE_MAX + 1], *save, *tok[4];
	unsigned days = 0;
	int start = 0, end = 0, level = 0, rc;

	if (r->len > BDR_SCHEDULE_RULE_MAX)
		return rule_err(r, "longer than %d characters", BDR_SCHEDULE_RULE_MAX);
	squeeze(r->text, r->len, buf);
	tok[0] = strtok_r(buf, " ", &save);
	for (int i = 1; i < 4; i++)
		tok[i] = strtok_r(NULL, " ", &save);
	if ((rc = parse_days(r, tok[0], &days)) < 0)
		return rc;
	if (!tok[1])
		return rule_err(r, "missing hours and level after '%s'", tok[0]);
	if ((rc = parse_hours(r, tok[1], &start, &end)) < 0)
		return rc;
	if (!tok[2])
		return rule_err(r, "missing level after '%s'", tok[1]);
	if ((rc = parse_level(r, tok[2], &level)) < 0)
		return rc;
	if (tok[3])
		return rule_err(r, "unexpected '%s' after the level", tok[3]);
	apply(g, days, start, end, level);
	return 0;
}

int bdr_schedule_parse(struct bdr_schedule *s, const char *text, struct bdr_diag *d)
{
	struct bdr_schedule g;
	struct rule r = { .d = d };

	bdr_schedule_default(&g);
	for (const char *p = text; p && *p;) {
		size_t n = strcspn(p, ";");
		int rc;

		r.text = p;
		r.len = n;
		while (r.len && isspace((unsigned char)r.text[0]))
			r.text++, r.len--;
		while (r.len && isspace((unsigned char)r.text[r.len - 1]))
			r.len--;
		p += n + (p[n] == ';');
		if (!r.len)
			continue;
		r.n++;
		if ((rc = parse_rule(&r, &g)) < 0)
			return rc;
	}
	*s = g;
	return 0;
}

/* ---- the canonical text ---- */

/* Appends like snprintf; len counts what would have been written. */
struct out {
	char *buf;
	size_t size, len;
};

__attribute__((format(printf, 2, 3))) static void out_add(struct out *o, const char *fmt, ...)
{
	size_t at = o->len < o->size ? o->len : o->size;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(o->size ? o->buf + at : NULL, o->size - at, fmt, ap);
	va_end(ap);
	o->len += n > 0 ? (size_t)n : 0;
}

/* A maximal stretch [start, end) of one level on one day, and the days
 * that have the same stretch. */
struct run {
	uint8_t start, end, level;
	unsigned days;
};

static void add_run(struct run *v, size_t *n, int start, int end, int level, int day)
{
	for (size_t i = 0; i < *n; i++)
		if (v[i].start == start && v[i].end == end && v[i].level == level) {
			v[i].days |= 1u << day;
			return;
		}
	v[(*n)++] = (struct run){ (uint8_t)start, (uint8_t)end, (uint8_t)level, 1u << day };
}

/* The stretches whose level is not base, grouped by (hours, level), in
 * order of their first day, then hour. */
static size_t collect_runs(const struct bdr_schedule *s, int base, struct run *v)
{
	size_t n = 0;

	for (int d = 0; d < BDR_SCHEDULE_DAYS; d++)
		for (int h = 0, e; h < BDR_SCHEDULE_HOURS; h = e) {
			for (e = h + 1; e < BDR_SCHEDULE_HOURS && s->cell[d][e] == s->cell[d][h]; e++)
				;
			if (s->cell[d][h] != base)
				add_run(v, &n, h, e, s->cell[d][h], d);
		}
	return n;
}

/* Days of mask in a run through Sunday into Monday (0 if none). */
static int wrap_len(unsigned mask)
{
	int n = 0;

	if (!(mask & 1u) || !(mask & 1u << 6))
		return 0;
	for (int d = 0; mask & 1u << d; d++)
		n++;
	for (int d = 6; mask & 1u << d; d--)
		n++;
	return n;
}

/* "weekdays", "mon,wed-fri", "sat-mon": runs of three days or more as a
 * range; such a run over Sunday into Monday stays one range. */
static void format_days(struct out *o, unsigned mask)
{
	int start = 0, first = 1;

	for (size_t i = 0; i < sizeof(day_sets) / sizeof(day_sets[0]); i++)
		if (mask == day_sets[i].mask) {
			out_add(o, "%s", day_sets[i].name);
			return;
		}
	if (wrap_len(mask) >= 3) /* start after the first day off */
		while (mask & 1u << start)
			start++;
	for (int i = 0; i < BDR_SCHEDULE_DAYS;) {
		int a = (start + i) % BDR_SCHEDULE_DAYS, len = 0;

		while (i + len < BDR_SCHEDULE_DAYS && mask & 1u << (start + i + len) % BDR_SCHEDULE_DAYS)
			len++;
		if (len) {
			int b = (a + len - 1) % BDR_SCHEDULE_DAYS;

			out_add(o, "%s%s%s%s", first ? "" : ",", day_short[a],
				len == 1 ? "" : len == 2 ? "," : "-", len == 1 ? "" : day_short[b]);
			first = 0;
		}
		i += len ? len : 1;
	}
}

static void format_base(const struct bdr_schedule *s, int base, struct out *o)
{
	struct run v[WEEK_HOURS];
	size_t n = collect_runs(s, base, v);

	if (base != BDR_SCHED_ALL || n == 0)
		out_add(o, "all all %s", bdr_schedule_level_name(base));
	for (size_t i = 0; i < n; i++) {
		out_add(o, "%s", o->len ? "; " : "");
		format_days(o, v[i].days);
		if (v[i].start == 0 && v[i].end == BDR_SCHEDULE_HOURS)
			out_add(o, " all %s", bdr_schedule_level_name(v[i].level));
		else
			out_add(o, " %02d-%02d %s", v[i].start, v[i].end,
				bdr_schedule_level_name(v[i].level));
	}
}

/* Tries each level as the base the other rules are written over and keeps
 * the shortest text (ties: the default base, all, which needs no rule). */
int bdr_schedule_format(const struct bdr_schedule *s, char *buf, size_t size)
{
	int best = BDR_SCHED_ALL;
	size_t best_len = SIZE_MAX;
	struct out o = { buf, size, 0 };

	for (int base = BDR_SCHED_ALL; base >= BDR_SCHED_CLOSED; base--) {
		struct out count = { NULL, 0, 0 };

		format_base(s, base, &count);
		if (count.len < best_len) {
			best = base;
			best_len = count.len;
		}
	}
	format_base(s, best, &o);
	return o.len < size ? 0 : -ENOSPC;
}

/* ---- absolute time ---- */

static time_t floor_s(int64_t t_ns)
{
	return (time_t)(t_ns / NS_PER_S - (t_ns % NS_PER_S < 0));
}

static bool local_tm(time_t t, struct tm *tm)
{
	return localtime_r(&t, tm) != NULL;
}

/* Hour of the week, 0 = Monday 00:00. */
static int tm_cell(const struct tm *tm)
{
	return (tm->tm_wday + 6) % 7 * BDR_SCHEDULE_HOURS + tm->tm_hour;
}

static bool cell_admits(const struct bdr_schedule *s, int i, enum bdr_db_priority p)
{
	return (int)s->cell[i / BDR_SCHEDULE_HOURS][i % BDR_SCHEDULE_HOURS] > (int)p;
}

static bool uniform(const struct bdr_schedule *s, enum bdr_db_priority p)
{
	for (int i = 1; i < WEEK_HOURS; i++)
		if (cell_admits(s, i, p) != cell_admits(s, 0, p))
			return false;
	return true;
}

int bdr_schedule_local(int64_t t_ns, int *day, int *hour)
{
	struct tm tm;

	if (!local_tm(floor_s(t_ns), &tm))
		return -EOVERFLOW;
	*day = (tm.tm_wday + 6) % 7;
	*hour = tm.tm_hour;
	return 0;
}

/* c if the UTC offset is gmtoff all through [x, c), else the first second
 * after x where it is not: the instant the clocks move. */
static time_t offset_change(time_t x, time_t c, long gmtoff)
{
	time_t lo = x, hi = c - 1;
	struct tm tm;

	if (hi <= lo || (local_tm(hi, &tm) && tm.tm_gmtoff == gmtoff))
		return c;
	while (hi - lo > 1) {
		time_t mid = lo + (hi - lo) / 2;

		if (local_tm(mid, &tm) && tm.tm_gmtoff == gmtoff)
			lo = mid;
		else
			hi = mid;
	}
	return hi;
}

/* The next instant after x (local time tm, admitting p or not as open
 * says) where the state may change: the start of the next local hour, at
 * most a day ahead, whose cell differs, if the clocks do not move before
 * it; else the instant they move. Between x and it, the local label only
 * runs through cells equal to open. */
static time_t next_candidate(const struct bdr_schedule *s, enum bdr_db_priority p, bool open,
			     time_t x, const struct tm *tm)
{
	int i = tm_cell(tm), k = 1;

	while (k < BDR_SCHEDULE_HOURS && cell_admits(s, (i + k) % WEEK_HOURS, p) == open)
		k++;
	return offset_change(x, x - (tm->tm_min * 60 + tm->tm_sec) + (time_t)k * 3600,
			     tm->tm_gmtoff);
}

int64_t bdr_schedule_next_change(const struct bdr_schedule *s, enum bdr_db_priority p,
				 int64_t t_ns, bool *open_now)
{
	time_t x = floor_s(t_ns), end = x + HORIZON_S;
	struct tm tm;
	bool ok = local_tm(x, &tm), open = ok && cell_admits(s, tm_cell(&tm), p);

	if (open_now)
		*open_now = open;
	if (!ok || uniform(s, p))
		return INT64_MAX;
	while ((x = next_candidate(s, p, open, x, &tm)) <= end) {
		if (!local_tm(x, &tm))
			return INT64_MAX;
		if (cell_admits(s, tm_cell(&tm), p) != open)
			return x > INT64_MAX / NS_PER_S ? INT64_MAX : (int64_t)x * NS_PER_S;
	}
	return INT64_MAX;
}

int64_t bdr_schedule_next_open(const struct bdr_schedule *s, enum bdr_db_priority p,
			       int64_t t_ns)
{
	bool open;
	int64_t next = bdr_schedule_next_change(s, p, t_ns, &open);

	return open ? t_ns : next;
}
