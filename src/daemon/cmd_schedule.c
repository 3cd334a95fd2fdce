/* The `schedule` control command (proto/control.md): for each address of a
 * peer, its weekly grid of priorities, its rate limit hour by hour, and
 * which priorities may send now, until when, or when they next may.
 *
 * Read-only and on the loop thread: it looks at d->cfg and the clock, and
 * answers at once. Times are the local time of the process, whose TZ the
 * daemon set from [site] timezone (see daemon/config.h). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "daemon/daemon.h"
#include "daemon/schedule.h"
#include "daemon/throttle.h"

#define NS_PER_S 1000000000ll
#define ISO_MAX 40 /* "2026-11-25T12:00:00+01:00" and more */

static const char *const prio_names[] = { "high", "medium", "low" };

/* "2026-11-25T12:00:00+01:00": local time with its offset (RFC 3339), or
 * NULL if the instant cannot be represented. */
static const char *iso_local(int64_t t_ns, char *buf, size_t size)
{
	time_t t = (time_t)(t_ns / NS_PER_S - (t_ns % NS_PER_S < 0));
	struct tm tm;
	size_t n;

	if (!localtime_r(&t, &tm))
		return NULL;
	n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S%z", &tm);
	/* %z is "+0100": insert the colon of RFC 3339 ("+01:00"). */
	if (n < 5 || n + 2 > size)
		return NULL;
	memmove(buf + n - 1, buf + n - 2, 3);
	buf[n - 2] = ':';
	return buf;
}

json_t *bdrd_json_time(int64_t t_ns)
{
	char buf[ISO_MAX];

	return t_ns <= 0 || t_ns == INT64_MAX || !iso_local(t_ns, buf, sizeof(buf))
		       ? json_null()
		       : json_string(buf);
}

static json_t *grid_json(const struct bdr_schedule *s)
{
	json_t *grid = json_array();

	for (int day = 0; day < BDR_SCHEDULE_DAYS; day++) {
		json_t *row = json_array();

		for (int h = 0; h < BDR_SCHEDULE_HOURS; h++)
			json_array_append_new(row, json_integer(s->cell[day][h]));
		json_array_append_new(grid, row);
	}
	return grid;
}

/* rates_bps: 24 integers (0: unlimited), or null for a pulse. */
static json_t *rates_json(const struct bdr_rate_spec *r)
{
	json_t *a;

	if (r->mode == BDR_RATE_PULSE)
		return json_null();
	a = json_array();
	for (int h = 0; h < 24; h++)
		json_array_append_new(a, json_integer((json_int_t)bdr_rate_at(r, h)));
	return a;
}

static json_t *pulse_json(const struct bdr_rate_spec *r)
{
	if (r->mode != BDR_RATE_PULSE)
		return json_null();
	return json_pack("{s:I, s:I}", "block_bytes", (json_int_t)r->block_bytes, "gap_ms",
			 (json_int_t)(r->gap_ns / 1000000));
}

static json_t *address_json(size_t index, const struct bdr_config_address *ad, int64_t now)
{
	char addr[BDR_CONFIG_MAX_HOST + 16], sched[BDR_SCHEDULE_TEXT_MAX], rate[BDR_RATE_TEXT_MAX];
	json_t *open_now = json_object(), *until = json_object(), *next_open = json_object();

	snprintf(addr, sizeof(addr), strchr(ad->host, ':') ? "[%s]:%u" : "%s:%u", ad->host,
		 ad->port);
	bdr_schedule_format(&ad->schedule, sched, sizeof(sched));
	bdr_rate_format(&ad->rate, rate, sizeof(rate));
	for (int p = BDR_PRIO_HIGH; p <= BDR_PRIO_LOW; p++) {
		bool open = false;
		int64_t change = bdr_schedule_next_change(&ad->schedule, (enum bdr_db_priority)p, now,
							  &open);

		json_object_set_new(open_now, prio_names[p], json_boolean(open));
		json_object_set_new(until, prio_names[p], open ? bdrd_json_time(change) : json_null());
		json_object_set_new(next_open, prio_names[p], open ? json_null() : bdrd_json_time(change));
	}
	return json_pack("{s:I, s:o, s:s, s:s, s:o, s:s, s:o, s:o, s:o, s:o, s:o}", "index",
			 (json_int_t)index, "name", ad->name[0] ? json_string(ad->name) : json_null(),
			 "address", addr, "schedule", sched, "grid", grid_json(&ad->schedule), "rate",
			 rate, "rates_bps", rates_json(&ad->rate), "pulse", pulse_json(&ad->rate),
			 "open_now", open_now, "until", until, "next_open", next_open);
}

void bdrd_cmd_schedule(struct bdr_control_req *req, json_t *args, void *arg)
{
	struct bdrd *d = arg;
	const struct bdr_peer_config *pc;
	const char *site;
	char now_s[ISO_MAX];
	json_t *addrs;
	int64_t now;

	if (bdr_control_unpack(req, args, "{s:s}", "site", &site) < 0)
		return;
	pc = bdr_config_peer(&d->cfg, site);
	if (!pc || !strcmp(site, d->cfg.site.name)) {
		bdr_control_fail(req, "unknown_site", "no site named '%s'", site);
		return;
	}
	/* One instant for every answer, on a whole second as edges are. */
	now = bdrd_now_ns() / NS_PER_S * NS_PER_S;
	if (!iso_local(now, now_s, sizeof(now_s))) {
		bdr_control_fail(req, "internal", "the local time cannot be read");
		return;
	}
	addrs = json_array();
	for (size_t i = 0; i < pc->address.n; i++)
		json_array_append_new(addrs, address_json(i, &pc->address.v[i], now));
	bdr_control_done(req, json_pack("{s:s, s:o, s:s, s:o}", "site", pc->name, "timezone",
					d->cfg.site.timezone ? json_string(d->cfg.site.timezone)
							     : json_null(),
					"now", now_s, "addresses", addrs));
}
