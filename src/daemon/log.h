/* One line per event, for an operator at 3 a.m.:
 *
 *   TIME LEVEL site=S [peer=P] [package=K] [version=V] EVENT: message [error="..."]
 *
 * TIME is local, to the millisecond, with its offset. When stderr is the
 * journal's stream (JOURNAL_STREAM names it), each event is instead a
 * native journal entry: the line (from site=) as MESSAGE, PRIORITY, and
 * the fields SITE, EVENT, PEER, PACKAGE, VERSION and ERROR, so that
 * `journalctl PACKAGE=app` works; should the journal refuse it, the line
 * goes to stderr with the <N> priority prefix. Lines are formatted whole
 * and written with one write(2), so worker threads may log too. */
#ifndef BDR_DAEMON_LOG_H
#define BDR_DAEMON_LOG_H

#include <stdint.h>

enum bdr_log_level {
	BDR_LOG_ERROR = 0,
	BDR_LOG_WARN = 1,
	BDR_LOG_INFO = 2,
	BDR_LOG_DEBUG = 3,
};

/* Who and what an event concerns; every field may be NULL / 0. */
struct bdr_log_ctx {
	const char *peer;
	const char *package;
	uint64_t version;
};

void bdr_log_init(const char *site, enum bdr_log_level level, int fd);
void bdr_log_set_level(enum bdr_log_level level);
int bdr_log_level_parse(const char *s, enum bdr_log_level *out);
const char *bdr_log_level_name(enum bdr_log_level level);

void bdr_log(enum bdr_log_level level, const struct bdr_log_ctx *ctx, const char *event,
	     const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Logs with the error string of err (-errno or -BDR_E*) and returns err,
 * so error paths stay one line. */
int bdr_log_err(enum bdr_log_level level, const struct bdr_log_ctx *ctx, int err, const char *event,
		const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#define log_info(ctx, ev, ...) bdr_log(BDR_LOG_INFO, ctx, ev, __VA_ARGS__)
#define log_warn(ctx, ev, ...) bdr_log(BDR_LOG_WARN, ctx, ev, __VA_ARGS__)
#define log_debug(ctx, ev, ...) bdr_log(BDR_LOG_DEBUG, ctx, ev, __VA_ARGS__)

#endif
