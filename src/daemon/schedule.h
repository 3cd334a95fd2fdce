/* Transfer schedules: which priorities an address admits, hour by hour,
 * over a week (bdr.conf(5), SCHEDULES).
 *
 * A schedule is a 7 x 24 grid of levels, day 0 = Monday, hour 0 = 00:00 to
 * 01:00 local time. A level says which push priorities may send in that
 * hour: closed (none), high (high only), medium (medium and high) or all.
 * The default grid is all open, all week.
 *
 * Pure: no I/O, no loop, no global state of its own. Times are explicit
 * int64_t nanoseconds since the epoch; the caller owns the clock (the
 * daemon's, or a test's fake one).
 *
 * Local time is the process's time zone as localtime_r(3) sees it: whoever
 * sets TZ (the daemon at start, from its configuration; a test) calls
 * tzset() afterwards, since localtime_r need not notice the change.
 *
 * Time-zone changes (DST). A grid cell is a local (day, hour) *label*, and
 * an instant is admitted when the cell of its local label is. So:
 *
 * - The hour that spring-forward skips has no instants: a window 02-03 on
 *   that day never opens, and a window 01-04 opens at 01:00 and closes at
 *   04:00 local time, two absolute hours later.
 * - The hour that fall-back repeats carries the same label both times: a
 *   window 02-03 that day is open through both occurrences, two absolute
 *   hours in one stretch, and is never seen to close and reopen at the
 *   change; a window 01-02 or 03-04 is one absolute hour as usual.
 *
 * No window is skipped or doubled, only lengthened or shortened by the hour
 * the clocks move. Zones whose offset is not a whole number of hours, or
 * that move their clocks by half an hour, work the same way: an edge is an
 * instant where the local label changes from an admitting cell to a
 * non-admitting one or back. (Two offset changes less than a day apart that
 * cancel out are not detected; no zone does that.) */
#ifndef BDR_DAEMON_SCHEDULE_H
#define BDR_DAEMON_SCHEDULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bdr/db.h"
#include "bdr/error.h"

/* Ordered: a level admits priority p when level > p (BDR_PRIO_HIGH = 0). */
enum bdr_schedule_level {
	BDR_SCHED_CLOSED = 0, /* no priority */
	BDR_SCHED_HIGH = 1,   /* high only */
	BDR_SCHED_MEDIUM = 2, /* medium and high */
	BDR_SCHED_ALL = 3,    /* every priority */
};

#define BDR_SCHEDULE_DAYS 7
#define BDR_SCHEDULE_HOURS 24
/* Longest rule bdr_schedule_parse() takes, in bytes between two ';'. */
#define BDR_SCHEDULE_RULE_MAX 200
/* A buffer this size always holds bdr_schedule_format()'s text: at most
 * 168 rules (one per hour of the week) of under 40 bytes each. */
#define BDR_SCHEDULE_TEXT_MAX 8192

struct bdr_schedule {
	uint8_t cell[BDR_SCHEDULE_DAYS][BDR_SCHEDULE_HOURS]; /* enum bdr_schedule_level */
};

/* All open, all week. */
void bdr_schedule_default(struct bdr_schedule *s);

/* Parses text into *s: rules separated by ';', each "DAYS HOURS LEVEL",
 * applied in order over the default grid, a later rule overriding an
 * earlier one where they meet. Empty rules are ignored, so NULL, "" and
 * "mon 08-18 high;" are fine.
 *
 *   DAYS   mon..sun (or monday..sunday), a range mon-fri (fri-mon wraps
 *          over the weekend), a comma list of those (mon,wed-fri), or all,
 *          daily, weekdays (mon-fri), weekend (sat,sun).
 *   HOURS  HH-HH, start included, end excluded, 00 to 24 (a single digit
 *          and a trailing ":00" are accepted), or all (00-24). A range that
 *          ends before it starts (22-06) runs past midnight: its hours
 *          after midnight are on the *following* day, so "fri 22-06" is
 *          Friday 22:00 to Saturday 06:00 and "sun 22-06" ends on Monday.
 *   LEVEL  all, medium, high or closed.
 *
 * Case and whitespace do not matter ("Mon - Fri  8 - 18 HIGH").
 * 0, or -EINVAL with *s unchanged and d naming the rule and the token:
 * "schedule rule 2 'mon-fry 08-18 high': unknown day 'fry'". */
int bdr_schedule_parse(struct bdr_schedule *s, const char *text, struct bdr_diag *d);

/* Writes a canonical text of s into buf that bdr_schedule_parse() turns
 * back into the same grid, short and readable: equal stretches of hours
 * grouped over days, written over the base level that gives the shortest
 * text ("weekdays 08-18 high; weekend all closed"); "all all all" for the
 * default. A cell outside the four levels is written as "?", which does
 * not parse. 0, or -ENOSPC if size is too small (buf then holds a
 * truncated, terminated text). BDR_SCHEDULE_TEXT_MAX always suffices. */
int bdr_schedule_format(const struct bdr_schedule *s, char *buf, size_t size);

/* "closed", "high", "medium", "all": the LEVEL word of the grammar. */
const char *bdr_schedule_level_name(enum bdr_schedule_level level);

/* Whether the cell (day 0..6 from Monday, hour 0..23) admits priority p;
 * false for a day or hour out of range. */
bool bdr_schedule_admits(const struct bdr_schedule *s, int day, int hour,
			 enum bdr_db_priority p);

/* The local label of instant t_ns: day 0..6 from Monday, hour 0..23.
 * 0, or -EOVERFLOW if the time cannot be represented. */
int bdr_schedule_local(int64_t t_ns, int *day, int *hour);

/* Whether p may send at t_ns (in *open_now, if not NULL), and the first
 * instant after t_ns at which that changes: the next window edge, in ns,
 * always on a whole second. INT64_MAX if it does not change within 8 days
 * after t_ns, which for a weekly grid means it never changes. At an edge
 * the new state holds: windows are [open, close). */
int64_t bdr_schedule_next_change(const struct bdr_schedule *s, enum bdr_db_priority p,
				 int64_t t_ns, bool *open_now);

/* t_ns if p may send at t_ns, else the start of the next window that
 * admits p; INT64_MAX if none opens within 8 days (p is never admitted). */
int64_t bdr_schedule_next_open(const struct bdr_schedule *s, enum bdr_db_priority p,
			       int64_t t_ns);

#endif
