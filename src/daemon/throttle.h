/* Rate limits of an address (bdr.conf(5), RATE LIMITS): the value's
 * syntax, and the token bucket that applies it to bytes on the wire.
 *
 * Pure: no loop, no I/O, no globals, no clock of its own. Every call that
 * depends on time takes now_ns (a monotonic clock, such as uv_hrtime()),
 * and the caller tells the throttle when the local hour changes, so tests
 * drive it through a day with a fake clock.
 *
 * The daemon's writer, for each connection with a throttle t:
 *
 *   n = bdr_throttle_allow(t, now, pending);   0..pending
 *   if (n) { write n bytes; bdr_throttle_consume(t, now, n); }
 *   if (n < pending) arm a timer for bdr_throttle_wait_ns(t, now, pending - n);
 *
 * The sealed output of a channel is a byte stream that may be written in
 * any pieces, so a writer should split as above: the 10-second accuracy
 * then holds at every rate. A writer that can only write whole messages
 * writes one when bdr_throttle_wait_ns(t, now, len) is 0 and consumes len,
 * which may exceed what allow() said (the excess is debt, paid back before
 * the next write, so the long-run average stays exact); but a 10-second
 * window then sees up to one message too many or too few, which is more
 * than 1% of the window when len > 7.5% of a second's rate (1 MiB messages
 * below about 14 MiB/s).
 *
 * The bucket (hourly rates). It holds time, not bytes: at most
 * BDR_THROTTLE_DEPTH_NS (50 ms) of the rate in force. Why 50 ms: the bytes
 * of any window differ from rate x window by at most the bucket's contents
 * at its two ends, so a bucket of 0.05 s bounds the error of a 10 s window
 * by 0.5% at every rate (8 KiB/s to 1 GiB/s and beyond); a deeper bucket
 * would pass 1%, a shallower one would wake the writer more often.
 * wait_ns() waits for at most BDR_THROTTLE_QUANTUM_NS (25 ms) of credit, so
 * a busy writer wakes about 40 times a second whatever the rate and writes
 * 25 ms of it each time; the other 25 ms of depth absorb a late timer
 * without losing credit. Credit below zero is debt (a message written
 * whole beyond the allowance): nothing is allowed until it is paid.
 * Credit kept as time makes an hour change simple: the bucket keeps its
 * fill (never more than 50 ms of the new rate: no burst), and a debt is
 * kept as the smaller of its time and its bytes at the new rate, so one
 * message of a slow hour does not silence a fast one.
 *
 * Pulse mode. The bucket holds one block (block_bytes) and starts full.
 * Writes take from it; a whole message may be written while the block is
 * not spent (> 0) and may overrun it: the excess is debt, taken from the
 * following blocks. Once the block is spent (<= 0), nothing is allowed
 * until gap_ns after the write that spent it, when one block is added (a
 * debt of more than a block takes one gap per block). A block that is not
 * spent is made full again by gap_ns of quiet after its last write. So a
 * writer that splits sends bursts of exactly block_bytes separated by
 * exactly gap_ns (plus its timer's lateness); one that writes whole
 * messages sends bursts of block_bytes give or take one message, and over
 * many pulses exactly block_bytes per gap (plus the time to send it). */
#ifndef BDR_DAEMON_THROTTLE_H
#define BDR_DAEMON_THROTTLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bdr/error.h"

#define BDR_RATE_MIN 125u                  /* bytes/s: 1Kbit */
#define BDR_RATE_MAX (1ull << 40)          /* bytes/s: 1024G */
#define BDR_RATE_BLOCK_MAX (1ull << 30)    /* pulse block: 1G */
#define BDR_RATE_GAP_MIN_NS 1000000ll      /* pulse gap: 1ms */
#define BDR_RATE_GAP_MAX_NS 86400000000000ll /* pulse gap: 24h */
#define BDR_RATE_TEXT_MAX 768              /* bdr_rate_format()'s longest + 1 */

#define BDR_THROTTLE_DEPTH_NS 50000000ll   /* the bucket holds 50 ms of the rate */
#define BDR_THROTTLE_QUANTUM_NS 25000000ll /* wait_ns() waits for 25 ms of it */

enum bdr_rate_mode {
	BDR_RATE_UNLIMITED = 0,
	BDR_RATE_PULSE,
	BDR_RATE_HOURLY,
};

/* One address's rate limit. Fields that do not belong to the mode are 0,
 * so bdr_rate_equal() compares whole values. */
struct bdr_rate_spec {
	enum bdr_rate_mode mode;
	uint64_t block_bytes; /* pulse: bytes of a block */
	int64_t gap_ns;       /* pulse: quiet after a block */
	uint64_t bps[24];     /* hourly: bytes/s from hour h to h+1; 0: see pct */
	uint8_t pct[24];      /* hourly: 1..100 percent of capacity_bps; 0 with
			       * bps[h] 0: unlimited in that hour */
	uint64_t capacity_bps; /* the link's declared capacity; 0: not declared */
};

/* Parses one rate value into r: "unlimited"; "pulse SIZE GAP"; one RATE
 * for every hour; or "HH-HH RATE[, HH-HH RATE...]", hours not covered being
 * unlimited. RATE is "unlimited", N[K|M|G][B] bytes/s (x1024), N{bit|Kbit|
 * Mbit|Gbit} bits/s (x1000), either optionally followed by "/s", or N%
 * of the capacity. r->capacity_bps is kept, so the rate and the capacity
 * keys may come in any order; r must be zeroed before its first use. On
 * error r is unchanged and d names the token: returns -EINVAL or -ERANGE. */
int bdr_rate_parse(struct bdr_rate_spec *r, const char *text, struct bdr_diag *d);

/* Parses a capacity ("10Mbit": a RATE without % or "unlimited") into
 * r->capacity_bps. On error r is unchanged. */
int bdr_rate_set_capacity(struct bdr_rate_spec *r, const char *text, struct bdr_diag *d);

/* Once the address's keys are all read: a rate with percentages needs a
 * capacity. Returns 0 or -EINVAL ("rate '08-18 50%' needs the address's
 * capacity"). */
int bdr_rate_check(const struct bdr_rate_spec *r, struct bdr_diag *d);

/* Canonical text of r's rate (not its capacity): runs of equal hours in
 * order from the first change after midnight, unlimited ones left out,
 * each rate in its exact form with the smallest number. For any r that
 * bdr_rate_parse() made, bdr_rate_parse() reads it back equal. Returns 0,
 * or -ENOSPC if n is too small (it never is at BDR_RATE_TEXT_MAX). */
int bdr_rate_format(const struct bdr_rate_spec *r, char *buf, size_t n);

/* Canonical text of a rate in bytes/s: the exact form with the smallest
 * number ("256K", "2Mbit", "1000"); buf of at least 32 bytes. */
void bdr_rate_format_bps(uint64_t bps, char *buf, size_t n);

bool bdr_rate_equal(const struct bdr_rate_spec *a, const struct bdr_rate_spec *b);

/* Bytes/s in force at hour (0..23) of the local day; 0: unlimited. A
 * percentage is of the capacity (unlimited if none: bdr_rate_check()
 * refuses that), at least BDR_RATE_MIN. Pulse mode is not a rate: this is
 * its average, block_bytes per gap, for display. */
uint64_t bdr_rate_at(const struct bdr_rate_spec *r, int hour);

/* Caller-owned; no resources, nothing to free. */
struct bdr_throttle {
	struct bdr_rate_spec spec; /* a copy */
	int hour;
	uint64_t bps;      /* hourly: in force; 0: not limited now */
	int64_t last_ns;   /* the credit is up to date at this time */
	int64_t credit_ns; /* <= BDR_THROTTLE_DEPTH_NS; < 0: debt */
	uint64_t frac;     /* the credit is credit_ns - frac / bps ns */
	int64_t block;     /* pulse: bytes left in the block; <= 0: spent */
	int64_t block_ns;  /* pulse: the last write, or the last gap's end */
};

/* Starts with a full bucket at hour (0..23). Returns 0; -EINVAL for an
 * hour out of range or a pulse of no size or gap. */
int bdr_throttle_init(struct bdr_throttle *t, const struct bdr_rate_spec *spec, int hour,
		      int64_t now_ns);

/* The local hour changed (or the daemon noticed it late): the rate of hour
 * applies from now_ns, with no more credit than the bucket holds at it. */
int bdr_throttle_set_hour(struct bdr_throttle *t, int hour, int64_t now_ns);

/* A reload: spec replaces the current one, from now_ns, as set_hour does. */
int bdr_throttle_set_spec(struct bdr_throttle *t, const struct bdr_rate_spec *spec,
			  int64_t now_ns);

/* Bytes that may be written now, 0..want. */
uint64_t bdr_throttle_allow(struct bdr_throttle *t, int64_t now_ns, uint64_t want);

/* bytes were written at now_ns; more than allowed is carried as debt. */
void bdr_throttle_consume(struct bdr_throttle *t, int64_t now_ns, uint64_t bytes);

/* Nanoseconds from now_ns until allow() gives at least min(want, burst),
 * burst being 25 ms of the rate (at least one byte); in pulse mode, until
 * the block is not spent. 0 if that is now, and always for unlimited. A
 * whole message written when this is 0 for its size is within the rules,
 * whatever its size: its excess is debt. */
int64_t bdr_throttle_wait_ns(struct bdr_throttle *t, int64_t now_ns, uint64_t want);

/* Bytes/s in force now (bdr_rate_at() of the current hour). */
uint64_t bdr_throttle_rate(const struct bdr_throttle *t);

#endif
