/* Rate limits: the value's syntax and the token bucket (see throttle.h).
 * Pure functions over caller-owned structs; the clock is a parameter. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "daemon/throttle.h"

#define NS 1000000000ull
#define KIB 1024ull
#define TEXT_MAX 1024 /* longest value parsed */
#define DEBT_MAX (INT64_MAX / 4) /* ns or bytes: keeps the arithmetic far from overflow */

/* Products of a rate and a time exceed 64 bits (1 GiB/s x 10 s in ns). */
typedef unsigned __int128 u128;

/* ---- words ------------------------------------------------------------ */

static bool is_space(char c)
{
	return c == ' ' || c == '\t';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Splits s in place at spaces into at most max words; returns how many
 * there are (max + 1 if more). */
static size_t split_words(char *s, char **w, size_t max)
{
	size_t n = 0;

	for (;;) {
		while (is_space(*s))
			*s++ = '\0';
		if (!*s)
			return n;
		if (n == max)
			return n + 1;
		w[n++] = s;
		while (*s && !is_space(*s))
			s++;
	}
}

/* Strict decimal: one or more digits, no sign; *end after them. */
static int parse_digits(const char *s, uint64_t *v, const char **end)
{
	uint64_t n = 0;
	const char *p = s;

	if (!is_digit(*p))
		return -EINVAL;
	for (; is_digit(*p); p++)
		if (__builtin_mul_overflow(n, 10, &n) ||
		    __builtin_add_overflow(n, (uint64_t)(*p - '0'), &n))
			return -ERANGE;
	*v = n;
	*end = p;
	return 0;
}

/* ---- rates, sizes and durations ---------------------------------------- */

struct unit {
	const char *name;
	uint64_t mult; /* bytes per unit (sizes, rates) or ns (durations) */
	uint64_t div;  /* bits: 8 */
};

static const struct unit rate_units[] = {
	{ "", 1, 1 },        { "B", 1, 1 },          { "K", KIB, 1 },
	{ "KB", KIB, 1 },    { "M", KIB * KIB, 1 },  { "MB", KIB * KIB, 1 },
	{ "G", KIB * KIB * KIB, 1 },                 { "GB", KIB * KIB * KIB, 1 },
	{ "bit", 1, 8 },     { "Kbit", 1000, 8 },    { "kbit", 1000, 8 },
	{ "Mbit", 1000000, 8 },  { "mbit", 1000000, 8 },
	{ "Gbit", 1000000000, 8 }, { "gbit", 1000000000, 8 },
};

static const struct unit size_units[] = {
	{ "", 1, 1 },     { "B", 1, 1 },        { "K", KIB, 1 },
	{ "KB", KIB, 1 }, { "M", KIB * KIB, 1 }, { "MB", KIB * KIB, 1 },
	{ "G", KIB * KIB * KIB, 1 },            { "GB", KIB * KIB * KIB, 1 },
};

static const struct unit gap_units[] = {
	{ "ms", 1000000, 1 }, { "s", NS, 1 }, { "m", 60 * NS, 1 }, { "h", 3600 * NS, 1 },
};

/* N followed by one of units: *v = N * mult / div. -EINVAL: no number or
 * no such unit; -ERANGE: too large. */
static int parse_unit(const char *s, const struct unit *units, size_t n_units, uint64_t *v)
{
	const char *end;
	uint64_t x;
	int r = parse_digits(s, &x, &end);

	if (r < 0)
		return r;
	for (size_t i = 0; i < n_units; i++) {
		if (strcmp(end, units[i].name) != 0)
			continue;
		if (__builtin_mul_overflow(x, units[i].mult, &x))
			return -ERANGE;
		*v = x / units[i].div;
		return 0;
	}
	return -EINVAL;
}

/* One hour's value, or the capacity. */
struct rate_value {
	uint64_t bps; /* 0 with pct 0: unlimited */
	uint8_t pct;
};

static int parse_percent(const char *s, struct rate_value *v, struct bdr_diag *d)
{
	const char *end;
	uint64_t x;

	if (parse_digits(s, &x, &end) < 0 || strcmp(end, "%") != 0 || x < 1 || x > 100)
		return bdr_diag_set(d, -ERANGE, "percentage '%s' is not between 1%% and 100%%", s);
	*v = (struct rate_value){ .pct = (uint8_t)x };
	return 0;
}

static int parse_rate(const char *s, struct rate_value *v, struct bdr_diag *d)
{
	char tmp[64];
	size_t len = strlen(s);
	uint64_t bps;
	int r;

	if (strcmp(s, "unlimited") == 0) {
		*v = (struct rate_value){ 0 };
		return 0;
	}
	if (len && s[len - 1] == '%')
		return parse_percent(s, v, d);
	snprintf(tmp, sizeof(tmp), "%s", s);
	if (len > 2 && len < sizeof(tmp) && strcmp(s + len - 2, "/s") == 0)
		tmp[len - 2] = '\0';
	r = parse_unit(tmp, rate_units, sizeof(rate_units) / sizeof(rate_units[0]), &bps);
	if (r == -EINVAL)
		return bdr_diag_set(d, r, "rate '%s': expected a number and a unit: K, M, G (x1024 "
					  "bytes/s), bit, Kbit, Mbit, Gbit (x1000 bits/s), N%%, or "
					  "'unlimited'", s);
	if (r == -ERANGE || bps > BDR_RATE_MAX)
		return bdr_diag_set(d, -ERANGE, "rate '%s' is above the largest, 1024G", s);
	if (bps < BDR_RATE_MIN)
		return bdr_diag_set(d, -ERANGE, "rate '%s' is below the smallest, 1Kbit (125 "
						"bytes/s)", s);
	*v = (struct rate_value){ .bps = bps };
	return 0;
}

/* ---- parsing ---------------------------------------------------------- */

static void set_hour_value(struct bdr_rate_spec *r, int h, const struct rate_value *v)
{
	r->bps[h] = v->bps;
	r->pct[h] = v->pct;
}

/* "pulse SIZE GAP" in words w[0..n). */
static int parse_pulse(struct bdr_rate_spec *r, char **w, size_t n, struct bdr_diag *d)
{
	uint64_t block, gap;
	int e;

	if (n != 3)
		return bdr_diag_set(d, -EINVAL, "'pulse' takes a block size and a gap: 'pulse 64K "
						"5s'");
	e = parse_unit(w[1], size_units, sizeof(size_units) / sizeof(size_units[0]), &block);
	if (e == -EINVAL)
		return bdr_diag_set(d, e, "pulse block '%s': expected a size such as 64K", w[1]);
	if (e < 0 || block < 1 || block > BDR_RATE_BLOCK_MAX)
		return bdr_diag_set(d, -ERANGE, "pulse block '%s' is not between 1 and 1G", w[1]);
	e = parse_unit(w[2], gap_units, sizeof(gap_units) / sizeof(gap_units[0]), &gap);
	if (e == -EINVAL)
		return bdr_diag_set(d, e, "pulse gap '%s': expected a duration such as 5s (ms, s, "
					  "m or h)", w[2]);
	if (e < 0 || gap < (uint64_t)BDR_RATE_GAP_MIN_NS || gap > (uint64_t)BDR_RATE_GAP_MAX_NS)
		return bdr_diag_set(d, -ERANGE, "pulse gap '%s' is not between 1ms and 24h", w[2]);
	r->mode = BDR_RATE_PULSE;
	r->block_bytes = block;
	r->gap_ns = (int64_t)gap;
	return 0;
}

static int parse_hour(const char *s, const char *end, int max, int *h)
{
	int v = 0;

	if (end == s || end - s > 2)
		return -EINVAL;
	for (const char *p = s; p < end; p++) {
		if (!is_digit(*p))
			return -EINVAL;
		v = v * 10 + (*p - '0');
	}
	if (v > max)
		return -ERANGE;
	*h = v;
	return 0;
}

/* "HH-HH": start 0..23, end 0..24 (0 and 24 are both midnight), start !=
 * end; a range that ends at or before its start wraps past midnight. */
static int parse_range(const char *s, int *start, int *end, struct bdr_diag *d)
{
	const char *dash = strchr(s, '-');

	if (!dash || parse_hour(s, dash, 23, start) < 0 ||
	    parse_hour(dash + 1, dash + 1 + strlen(dash + 1), 24, end) < 0)
		return bdr_diag_set(d, -EINVAL, "hours '%s': expected HH-HH, from 00-23 to 00-24",
				    s);
	if (*end == *start)
		return bdr_diag_set(d, -EINVAL, "hours '%s' are empty (for the whole day, give "
						"the rate alone)", s);
	return 0;
}

/* One "HH-HH RATE" item; covered[] records the hours set so far. */
static int parse_item(struct bdr_rate_spec *r, char *item, bool *covered, struct bdr_diag *d)
{
	char whole[TEXT_MAX], *w[2], *e_ws;
	int start = 0, end = 0, e;
	struct rate_value v;

	while (is_space(*item))
		item++;
	e_ws = item + strlen(item);
	while (e_ws > item && is_space(e_ws[-1]))
		*--e_ws = '\0';
	snprintf(whole, sizeof(whole), "%s", item);
	if (!*item)
		return bdr_diag_set(d, -EINVAL, "an empty item between ','");
	if (split_words(item, w, 2) != 2)
		return bdr_diag_set(d, -EINVAL, "'%s': expected 'HH-HH RATE', such as '08-18 256K'",
				    whole);
	if ((e = parse_range(w[0], &start, &end, d)) < 0 || (e = parse_rate(w[1], &v, d)) < 0)
		return e;
	for (int i = 0, n = (end - start + 23) % 24 + 1; i < n; i++) {
		int h = (start + i) % 24;

		if (covered[h])
			return bdr_diag_set(d, -EINVAL, "hours '%s' overlap an earlier range", w[0]);
		covered[h] = true;
		set_hour_value(r, h, &v);
	}
	return 0;
}

static int parse_ranges(struct bdr_rate_spec *r, char *text, struct bdr_diag *d)
{
	bool covered[24] = { false };
	char *item = text;
	int e;

	r->mode = BDR_RATE_HOURLY;
	for (char *comma; item; item = comma) {
		if ((comma = strchr(item, ',')))
			*comma++ = '\0';
		if ((e = parse_item(r, item, covered, d)) < 0)
			return e;
	}
	return 0;
}

/* Every hour unlimited is "unlimited", whichever way it was written. */
static void normalize(struct bdr_rate_spec *r)
{
	if (r->mode != BDR_RATE_HOURLY)
		return;
	for (int h = 0; h < 24; h++)
		if (r->bps[h] || r->pct[h])
			return;
	r->mode = BDR_RATE_UNLIMITED;
}

static bool starts_word(const char *s, const char *word)
{
	size_t n = strlen(word);

	return strncmp(s, word, n) == 0 && (!s[n] || is_space(s[n]));
}

static int parse_value(struct bdr_rate_spec *r, char *text, struct bdr_diag *d)
{
	char whole[TEXT_MAX], *w[4];
	size_t n;
	struct rate_value v;
	int e;

	while (is_space(*text))
		text++;
	if (starts_word(text, "pulse"))
		return parse_pulse(r, w, split_words(text, w, 3), d);
	if (strchr(text, ',') || strchr(text, '-'))
		return parse_ranges(r, text, d);
	snprintf(whole, sizeof(whole), "%s", text);
	n = split_words(text, w, 1);
	if (n == 0)
		return bdr_diag_set(d, -EINVAL, "empty rate (use 'unlimited', a rate such as 2Mbit, "
						"'pulse 64K 5s' or hour ranges such as '08-18 256K')");
	if (n != 1)
		return bdr_diag_set(d, -EINVAL, "'%s': expected one rate, 'pulse SIZE GAP' or "
						"'HH-HH RATE' items separated by ','", whole);
	if ((e = parse_rate(w[0], &v, d)) < 0)
		return e;
	r->mode = BDR_RATE_HOURLY;
	for (int h = 0; h < 24; h++)
		set_hour_value(r, h, &v);
	return 0;
}

int bdr_rate_parse(struct bdr_rate_spec *r, const char *text, struct bdr_diag *d)
{
	struct bdr_rate_spec out = { .capacity_bps = r->capacity_bps };
	char buf[TEXT_MAX];
	int e;

	if (strlen(text) >= sizeof(buf))
		return bdr_diag_set(d, -EINVAL, "rate '%.40s...' is too long", text);
	memcpy(buf, text, strlen(text) + 1);
	if ((e = parse_value(&out, buf, d)) < 0)
		return e;
	normalize(&out);
	*r = out;
	return 0;
}

int bdr_rate_set_capacity(struct bdr_rate_spec *r, const char *text, struct bdr_diag *d)
{
	struct rate_value v;
	int e;

	if (strcmp(text, "unlimited") == 0 || strchr(text, '%'))
		return bdr_diag_set(d, -EINVAL, "capacity '%s': expected a rate such as 10Mbit",
				    text);
	if ((e = parse_rate(text, &v, d)) < 0)
		return e;
	r->capacity_bps = v.bps;
	return 0;
}

int bdr_rate_check(const struct bdr_rate_spec *r, struct bdr_diag *d)
{
	char text[BDR_RATE_TEXT_MAX];

	if (r->mode != BDR_RATE_HOURLY || r->capacity_bps)
		return 0;
	for (int h = 0; h < 24; h++) {
		if (!r->pct[h])
			continue;
		bdr_rate_format(r, text, sizeof(text));
		return bdr_diag_set(d, -EINVAL, "rate '%s' needs the address's capacity", text);
	}
	return 0;
}

/* ---- formatting ------------------------------------------------------- */

static void fmt_unit(uint64_t v, const uint64_t *mult, const char *const *name, size_t n,
		     uint64_t *best, char *buf, size_t len)
{
	for (size_t i = 0; i < n; i++) {
		if (v % mult[i] || v / mult[i] >= *best)
			continue;
		*best = v / mult[i];
		snprintf(buf, len, "%" PRIu64 "%s", *best, name[i]);
	}
}

static const uint64_t byte_mult[] = { 1, KIB, KIB * KIB, KIB * KIB * KIB };
static const char *const byte_names[] = { "", "K", "M", "G" };

static void fmt_bytes(uint64_t v, char *buf, size_t n, uint64_t *best)
{
	fmt_unit(v, byte_mult, byte_names, 4, best, buf, n);
}

void bdr_rate_format_bps(uint64_t bps, char *buf, size_t n)
{
	static const uint64_t bits[] = { 1, 1000, 1000000, 1000000000 };
	static const char *const bit_names[] = { "bit", "Kbit", "Mbit", "Gbit" };
	uint64_t best = UINT64_MAX;

	fmt_bytes(bps, buf, n, &best); /* first, so that bytes win a tie */
	if (bps <= UINT64_MAX / 8)
		fmt_unit(bps * 8, bits, bit_names, 4, &best, buf, n);
}

static void fmt_gap(int64_t ns, char *buf, size_t n)
{
	static const uint64_t mult[] = { 1000000, NS, 60 * NS, 3600 * NS };
	static const char *const names[] = { "ms", "s", "m", "h" };
	uint64_t best = UINT64_MAX;

	snprintf(buf, n, "%" PRId64 "ns", ns); /* not parsed: never from bdr_rate_parse */
	fmt_unit((uint64_t)ns, mult, names, 4, &best, buf, n);
}

static void fmt_value(const struct bdr_rate_spec *r, int h, char *buf, size_t n)
{
	if (r->pct[h])
		snprintf(buf, n, "%u%%", r->pct[h]);
	else if (r->bps[h])
		bdr_rate_format_bps(r->bps[h], buf, n);
	else
		snprintf(buf, n, "unlimited");
}

static bool same_hour(const struct bdr_rate_spec *r, int a, int b)
{
	return r->bps[a] == r->bps[b] && r->pct[a] == r->pct[b];
}

/* Runs of equal hours, each "HH-HH RATE", unlimited ones left out. */
static int fmt_hourly(const struct bdr_rate_spec *r, char *buf, size_t n)
{
	char value[32];
	size_t used = 0;
	int first = 0, len;

	while (first < 24 && same_hour(r, first, (first + 23) % 24))
		first++;
	if (first == 24) { /* one value all day */
		fmt_value(r, 0, value, sizeof(value));
		len = snprintf(buf, n, "%s", value);
		return len >= 0 && (size_t)len < n ? 0 : -ENOSPC;
	}
	buf[0] = '\0';
	for (int i = 0, start = first; i < 24;) {
		int len_run = 1;

		while (i + len_run < 24 && same_hour(r, start, (start + len_run) % 24))
			len_run++;
		if (r->bps[start] || r->pct[start]) {
			int end = start + len_run > 24 ? (start + len_run) % 24 : start + len_run;

			fmt_value(r, start, value, sizeof(value));
			len = snprintf(buf + used, n - used, "%s%02d-%02d %s", used ? ", " : "",
				       start, end, value);
			if (len < 0 || (size_t)len >= n - used)
				return -ENOSPC;
			used += (size_t)len;
		}
		i += len_run;
		start = (start + len_run) % 24;
	}
	return 0;
}

int bdr_rate_format(const struct bdr_rate_spec *r, char *buf, size_t n)
{
	char block[32], gap[32];
	int len;

	if (!n)
		return -ENOSPC;
	switch (r->mode) {
	case BDR_RATE_PULSE:
		fmt_bytes(r->block_bytes, block, sizeof(block), &(uint64_t){ UINT64_MAX });
		fmt_gap(r->gap_ns, gap, sizeof(gap));
		len = snprintf(buf, n, "pulse %s %s", block, gap);
		return len >= 0 && (size_t)len < n ? 0 : -ENOSPC;
	case BDR_RATE_HOURLY:
		return fmt_hourly(r, buf, n);
	default:
		len = snprintf(buf, n, "unlimited");
		return (size_t)len < n ? 0 : -ENOSPC;
	}
}

bool bdr_rate_equal(const struct bdr_rate_spec *a, const struct bdr_rate_spec *b)
{
	return a->mode == b->mode && a->block_bytes == b->block_bytes && a->gap_ns == b->gap_ns &&
	       memcmp(a->bps, b->bps, sizeof(a->bps)) == 0 &&
	       memcmp(a->pct, b->pct, sizeof(a->pct)) == 0 && a->capacity_bps == b->capacity_bps;
}

uint64_t bdr_rate_at(const struct bdr_rate_spec *r, int hour)
{
	int h = ((hour % 24) + 24) % 24;
	uint64_t bps;

	switch (r->mode) {
	case BDR_RATE_PULSE:
		if (r->gap_ns <= 0)
			return 1;
		bps = (uint64_t)((u128)r->block_bytes * NS / (uint64_t)r->gap_ns);
		return bps ? bps : 1;
	case BDR_RATE_HOURLY:
		bps = r->pct[h] ? r->capacity_bps * r->pct[h] / 100 : r->bps[h];
		if (!bps)
			return 0;
		return bps < BDR_RATE_MIN ? BDR_RATE_MIN : bps > BDR_RATE_MAX ? BDR_RATE_MAX : bps;
	default:
		return 0;
	}
}

/* ---- the bucket ------------------------------------------------------- */

static int64_t min_i64(u128 a, int64_t b)
{
	return a < (u128)b ? (int64_t)a : b;
}

/* Hourly: the credit earned since last_ns, up to the bucket's depth. */
static void refill(struct bdr_throttle *t, int64_t now)
{
	uint64_t dt, room;

	if (now <= t->last_ns)
		return;
	dt = (uint64_t)now - (uint64_t)t->last_ns;
	t->last_ns = now;
	if (!t->bps)
		return; /* the credit stays full */
	room = (uint64_t)(BDR_THROTTLE_DEPTH_NS - t->credit_ns);
	if (dt > room) {
		t->credit_ns = BDR_THROTTLE_DEPTH_NS;
		t->frac = 0;
	} else {
		t->credit_ns += (int64_t)dt;
	}
}

/* Hourly: whole bytes of credit, 0 in debt. */
static uint64_t tokens(const struct bdr_throttle *t)
{
	if (t->credit_ns <= 0)
		return 0;
	return (uint64_t)(((u128)t->credit_ns * t->bps - t->frac) / NS);
}

/* Hourly: credit (ns) that allows min(want, burst). */
static int64_t credit_needed(const struct bdr_throttle *t, uint64_t want)
{
	uint64_t burst = (uint64_t)((u128)t->bps * BDR_THROTTLE_QUANTUM_NS / NS);
	uint64_t need = want < burst ? want : burst ? burst : 1;

	return (int64_t)(((u128)need * NS + t->frac + t->bps - 1) / t->bps);
}

static void bucket_consume(struct bdr_throttle *t, uint64_t bytes)
{
	u128 total = (u128)bytes * NS + t->frac;
	u128 ns = total / t->bps;

	t->frac = (uint64_t)(total % t->bps);
	t->credit_ns -= min_i64(ns, t->credit_ns + DEBT_MAX);
}

/* Hourly: the rate becomes bps. The credit is time, so a full bucket stays
 * full (50 ms of the new rate); a debt becomes the smaller of its time and
 * its bytes at the new rate. The fraction of a ns owed is forgiven. */
static void set_rate(struct bdr_throttle *t, uint64_t bps)
{
	if (bps == t->bps)
		return;
	if (!bps || !t->bps) {
		t->credit_ns = BDR_THROTTLE_DEPTH_NS;
	} else if (t->credit_ns < 0) {
		u128 bytes_ns = (u128)(uint64_t)-t->credit_ns * t->bps / bps;

		t->credit_ns = -min_i64(bytes_ns, -t->credit_ns);
	}
	t->frac = 0;
	t->bps = bps;
}

/* ---- pulses ----------------------------------------------------------- */

/* One block for each gap of quiet since block_ns, up to a full block. */
static void pulse_refill(struct bdr_throttle *t, int64_t now)
{
	int64_t block = (int64_t)t->spec.block_bytes;
	uint64_t gaps, missing;

	if (t->block >= block || now <= t->block_ns)
		return;
	gaps = ((uint64_t)now - (uint64_t)t->block_ns) / (uint64_t)t->spec.gap_ns;
	missing = ((uint64_t)(block - t->block) + (uint64_t)block - 1) / (uint64_t)block;
	if (gaps >= missing) {
		t->block = block;
	} else {
		t->block += (int64_t)gaps * block;
		t->block_ns += (int64_t)gaps * t->spec.gap_ns;
	}
}

static void pulse_consume(struct bdr_throttle *t, int64_t now, uint64_t bytes)
{
	if (!bytes)
		return;
	t->block -= min_i64(bytes, t->block + DEBT_MAX);
	if (now > t->block_ns)
		t->block_ns = now;
}

/* Until the block is not spent: k gaps from block_ns pay a debt of less
 * than k blocks. */
static int64_t pulse_wait(const struct bdr_throttle *t, int64_t now)
{
	uint64_t gaps;
	__int128 wait;

	if (t->block > 0)
		return 0;
	gaps = (uint64_t)-t->block / t->spec.block_bytes + 1;
	wait = (__int128)gaps * t->spec.gap_ns + t->block_ns - now;
	return wait <= 0 ? 0 : wait > INT64_MAX ? INT64_MAX : (int64_t)wait;
}

/* ---- the throttle ----------------------------------------------------- */

static bool pulse(const struct bdr_throttle *t)
{
	return t->spec.mode == BDR_RATE_PULSE;
}

static void catch_up(struct bdr_throttle *t, int64_t now)
{
	refill(t, now);
	if (pulse(t))
		pulse_refill(t, now);
}

static int check(const struct bdr_rate_spec *spec, int hour)
{
	if (hour < 0 || hour > 23)
		return -EINVAL;
	if (spec->mode == BDR_RATE_PULSE && (spec->block_bytes < 1 ||
					     spec->block_bytes > BDR_RATE_BLOCK_MAX ||
					     spec->gap_ns < 1))
		return -EINVAL;
	return 0;
}

int bdr_throttle_init(struct bdr_throttle *t, const struct bdr_rate_spec *spec, int hour,
		      int64_t now_ns)
{
	int e = check(spec, hour);

	if (e < 0)
		return e;
	*t = (struct bdr_throttle){
		.spec = *spec,
		.hour = hour,
		.last_ns = now_ns,
		.credit_ns = BDR_THROTTLE_DEPTH_NS,
		.block = (int64_t)spec->block_bytes,
		.block_ns = now_ns,
	};
	set_rate(t, spec->mode == BDR_RATE_HOURLY ? bdr_rate_at(spec, hour) : 0);
	return 0;
}

int bdr_throttle_set_hour(struct bdr_throttle *t, int hour, int64_t now_ns)
{
	int e = check(&t->spec, hour);

	if (e < 0)
		return e;
	catch_up(t, now_ns);
	t->hour = hour;
	set_rate(t, t->spec.mode == BDR_RATE_HOURLY ? bdr_rate_at(&t->spec, hour) : 0);
	return 0;
}

int bdr_throttle_set_spec(struct bdr_throttle *t, const struct bdr_rate_spec *spec,
			  int64_t now_ns)
{
	int e = check(spec, t->hour);

	if (e < 0)
		return e;
	catch_up(t, now_ns);
	if (spec->mode == BDR_RATE_PULSE && !pulse(t)) {
		t->block = (int64_t)spec->block_bytes;
		t->block_ns = now_ns;
	} else if (t->block > (int64_t)spec->block_bytes) {
		t->block = (int64_t)spec->block_bytes;
	}
	t->spec = *spec;
	return bdr_throttle_set_hour(t, t->hour, now_ns);
}

uint64_t bdr_throttle_allow(struct bdr_throttle *t, int64_t now_ns, uint64_t want)
{
	uint64_t n;

	catch_up(t, now_ns);
	if (pulse(t))
		n = t->block > 0 ? (uint64_t)t->block : 0;
	else if (!t->bps)
		return want;
	else
		n = tokens(t);
	return n < want ? n : want;
}

void bdr_throttle_consume(struct bdr_throttle *t, int64_t now_ns, uint64_t bytes)
{
	catch_up(t, now_ns);
	if (pulse(t))
		pulse_consume(t, now_ns, bytes);
	else if (t->bps)
		bucket_consume(t, bytes);
}

int64_t bdr_throttle_wait_ns(struct bdr_throttle *t, int64_t now_ns, uint64_t want)
{
	int64_t need;

	catch_up(t, now_ns);
	if (!want)
		return 0;
	if (pulse(t))
		return pulse_wait(t, now_ns);
	if (!t->bps)
		return 0;
	need = credit_needed(t, want);
	return t->credit_ns >= need ? 0 : need - t->credit_ns;
}

uint64_t bdr_throttle_rate(const struct bdr_throttle *t)
{
	return pulse(t) ? bdr_rate_at(&t->spec, t->hour) : t->bps;
}
