/* schedule SITE: for each address of a peer, the week as a grid of the
 * priorities each hour admits, the rate limit by hour, and what may send
 * now (proto/control.md, "schedule"; bdrctl(8)). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"

#define DAYS 7
#define HOURS 24
#define LABEL 4 /* "Mon ", "rate" */

static const char *const day_names[DAYS] = { "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun" };
static const char *const prio_names[] = { "high", "medium", "low" };

/* A grid level (0 closed .. 3 all) as one character. */
static char level_char(const json_t *v)
{
	static const char chars[] = ".HMA";
	json_int_t l = json_integer_value(v);

	return json_is_integer(v) && l >= 0 && l <= 3 ? chars[l] : '?';
}

/* A rate in bytes/s in at most 4 characters, 1024-based: "256K", "1.5M",
 * "977"; "-" for 0 (unlimited). Rounded: the header has the exact text. */
static void compact_rate(uint64_t bps, char *buf, size_t n)
{
	static const char units[] = "KMGTPE";
	double v = (double)bps;
	int u = -1;

	if (!bps) {
		snprintf(buf, n, "-");
		return;
	}
	if (bps < 1000) {
		snprintf(buf, n, "%" PRIu64, bps);
		return;
	}
	while (v >= 999.5 && u < 5)
		v /= 1024, u++;
	if (v < 9.95) {
		size_t len;

		snprintf(buf, n, "%.1f", v);
		len = strlen(buf);
		if (len > 2 && !strcmp(buf + len - 2, ".0"))
			buf[len - 2] = '\0';
		len = strlen(buf);
		snprintf(buf + len, n - len, "%c", units[u]);
	} else {
		snprintf(buf, n, "%.0f%c", v, units[u]);
	}
}

/* Bytes with the largest 1024-based unit that divides them: "1M", "1500". */
static void exact_bytes(uint64_t v, char *buf, size_t n)
{
	static const char *const units[] = { "", "K", "M", "G", "T" };
	int u = 0;

	while (u < 4 && v && v % 1024 == 0)
		v /= 1024, u++;
	snprintf(buf, n, "%" PRIu64 "%s", v, units[u]);
}

/* Milliseconds with the largest unit that divides them: "30s", "2h". */
static void exact_ms(uint64_t ms, char *buf, size_t n)
{
	if (ms && ms % 3600000 == 0)
		snprintf(buf, n, "%" PRIu64 "h", ms / 3600000);
	else if (ms && ms % 60000 == 0)
		snprintf(buf, n, "%" PRIu64 "m", ms / 60000);
	else if (ms && ms % 1000 == 0)
		snprintf(buf, n, "%" PRIu64 "s", ms / 1000);
	else
		snprintf(buf, n, "%" PRIu64 "ms", ms);
}

/* Day of the week of a civil date, 0 = Monday. */
static int weekday(int y, int m, int d)
{
	static const int t[] = { 0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4 };

	if (m < 3)
		y--;
	return (y + y / 4 - y / 100 + y / 400 + t[m - 1] + d + 6) % 7;
}

/* "2026-11-27T18:00:00+01:00" as "Fri 18:00" (with_date: "Fri 2026-11-27
 * 18:00"); anything else as it is. */
static const char *when(const char *iso, bool with_date, char *buf, size_t n)
{
	int y, mo, d, h, mi;

	if (!iso || sscanf(iso, "%4d-%2d-%2dT%2d:%2d", &y, &mo, &d, &h, &mi) != 5 || mo < 1 ||
	    mo > 12 || d < 1 || d > 31) {
		snprintf(buf, n, "%s", iso ? iso : "?");
		return buf;
	}
	if (with_date)
		snprintf(buf, n, "%s %04d-%02d-%02d %02d:%02d", day_names[weekday(y, mo, d)], y, mo, d,
			 h, mi);
	else
		snprintf(buf, n, "%s %02d:%02d", day_names[weekday(y, mo, d)], h, mi);
	return buf;
}

/* The rate row's texts, and the width of the grid's columns. Columns are
 * 3 wide and each rate is written where it starts, under the first digit
 * of its hour, the hours it goes on for left blank. When a rate does not
 * fit before the next one (a long rate for a single hour), every hour gets
 * its rate (*every), in columns as wide as the longest rate and a space. */
static int rate_tokens(const json_t *rates, char tok[HOURS][16], bool *every)
{
	size_t longest = 2;
	bool fits = true;

	for (int h = 0; h < HOURS; h++) {
		json_int_t v = json_integer_value(json_array_get(rates, (size_t)h));

		compact_rate(v > 0 ? (uint64_t)v : 0, tok[h], sizeof(tok[h]));
		if (strlen(tok[h]) > longest)
			longest = strlen(tok[h]);
	}
	for (int h = 0; h < HOURS;) {
		int run = 1;

		while (h + run < HOURS && !strcmp(tok[h], tok[h + run]))
			run++;
		/* the run spans 3 * run columns; the last one separates */
		if (h + run < HOURS && strlen(tok[h]) + 1 > (size_t)(3 * run))
			fits = false;
		h += run;
	}
	*every = !fits;
	return fits ? 3 : (int)longest + 1;
}

static void print_rate_row(char tok[HOURS][16], int width, bool every)
{
	char line[LABEL + HOURS * 24 + 1];
	size_t len = (size_t)snprintf(line, sizeof(line), "%-*s", LABEL, "rate");

	if (every) {
		for (int h = 0; h < HOURS; h++)
			len += (size_t)snprintf(line + len, sizeof(line) - len, "%*s", width, tok[h]);
	} else {
		for (int h = 0; h < HOURS; h++) {
			size_t col = LABEL + 3 * (size_t)h + 1;

			if (h && !strcmp(tok[h], tok[h - 1]))
				continue;
			while (len < col)
				line[len++] = ' ';
			len += (size_t)snprintf(line + len, sizeof(line) - len, "%s", tok[h]);
		}
	}
	puts(line);
}

/* Columns of width w, hours right-aligned. In the narrow grid (w 3) a
 * level sits under the first digit of its hour, where the rate row writes
 * a rate; in a wide one, under the last, as rates are right-aligned. */
static void print_grid(const json_t *grid, int w)
{
	printf("%*s", LABEL, "");
	for (int h = 0; h < HOURS; h++)
		printf("%*s%02d", w - 2, "", h);
	putchar('\n');
	for (int day = 0; day < DAYS; day++) {
		const json_t *row = json_array_get(grid, (size_t)day);

		printf("%-*s", LABEL, day_names[day]);
		for (int h = 0; h < HOURS; h++)
			printf("%*c", w == 3 ? (h ? 3 : 2) : w, level_char(json_array_get(row, (size_t)h)));
		putchar('\n');
	}
}

static void print_now(const json_t *ad)
{
	const json_t *open = json_object_get(ad, "open_now"), *until = json_object_get(ad, "until"),
		     *next = json_object_get(ad, "next_open");

	fputs("now: ", stdout);
	for (int p = 0; p < 3; p++) {
		const char *name = prio_names[p];
		const char *t;
		char buf[64];

		printf("%s%s ", p ? "; " : "", name);
		if (json_is_true(json_object_get(open, name))) {
			t = json_string_value(json_object_get(until, name));
			if (t)
				printf("open until %s", when(t, false, buf, sizeof(buf)));
			else
				fputs("open, never closes", stdout);
		} else {
			t = json_string_value(json_object_get(next, name));
			if (t)
				printf("closed, opens %s", when(t, false, buf, sizeof(buf)));
			else
				fputs("closed, never opens", stdout);
		}
	}
	putchar('\n');
}

static void show_address(const json_t *ad)
{
	const json_t *rates = json_object_get(ad, "rates_bps"), *pulse = json_object_get(ad, "pulse");
	const char *name = ctl_jstr(ad, "name", NULL);
	char tok[HOURS][16];
	int width = 3;
	bool limited = false, every = false;

	printf("address %" PRIu64 " %s%s%s (rate: %s)\n", ctl_ju64(ad, "index"), name ? name : "",
	       name ? " " : "", ctl_jstr(ad, "address", "?"), ctl_jstr(ad, "rate", "?"));
	for (size_t h = 0; json_is_array(rates) && h < json_array_size(rates); h++)
		if (json_integer_value(json_array_get(rates, h)) > 0)
			limited = true;
	if (limited)
		width = rate_tokens(rates, tok, &every);
	print_grid(json_object_get(ad, "grid"), width);
	if (limited) {
		print_rate_row(tok, width, every);
	} else if (json_is_object(pulse)) {
		char block[32], gap[32];

		exact_bytes(ctl_ju64(pulse, "block_bytes"), block, sizeof(block));
		exact_ms(ctl_ju64(pulse, "gap_ms"), gap, sizeof(gap));
		printf("pulse: blocks of %s, each followed by %s of quiet\n", block, gap);
	}
	print_now(ad);
}

static void show_schedule(json_t *res)
{
	const json_t *list = json_object_get(res, "addresses"), *ad;
	const char *site = ctl_jstr(res, "site", "?"), *tz = ctl_jstr(res, "timezone", NULL);
	char now[64];
	size_t i;

	printf("schedule of %s in %s time, now %s\n", site, tz ? tz : "bdrd's local",
	       when(ctl_jstr(res, "now", NULL), true, now, sizeof(now)));
	if (!json_array_size(list)) {
		printf("%s has no address: it connects to this site\n", site);
		return;
	}
	json_array_foreach(list, i, ad) {
		putchar('\n');
		show_address(ad);
	}
}

int ctl_schedule(const struct ctl_args *a)
{
	return ctl_simple(a, json_pack("{s:s, s:s}", "cmd", "schedule", "site", a->pos[0]),
			  show_schedule);
}
