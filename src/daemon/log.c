#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bdr/error.h"
#include "log.h"

#define LINE_MAX_BYTES 2048

static char log_site[80] = "-";
static atomic_int log_level = BDR_LOG_INFO;
static int log_fd = 2;
static int journal; /* stderr is connected to the journal */

static const char *const names[] = { "error", "warn", "info", "debug" };
static const char *const prio[] = { "<3>", "<4>", "<6>", "<7>" };

void bdr_log_init(const char *site, enum bdr_log_level level, int fd)
{
	snprintf(log_site, sizeof(log_site), "%s", site && *site ? site : "-");
	atomic_store(&log_level, level);
	log_fd = fd;
	journal = getenv("JOURNAL_STREAM") != NULL;
}

void bdr_log_set_level(enum bdr_log_level level)
{
	atomic_store(&log_level, level);
}

int bdr_log_level_parse(const char *s, enum bdr_log_level *out)
{
	for (int i = 0; i < 4; i++)
		if (!strcmp(s, names[i])) {
			*out = (enum bdr_log_level)i;
			return 0;
		}
	return -EINVAL;
}

const char *bdr_log_level_name(enum bdr_log_level level)
{
	return level <= BDR_LOG_DEBUG ? names[level] : "?";
}

/* Appends to buf at *n, never past LINE_MAX_BYTES - 2 (room for "\n"). */
static void put(char *buf, size_t *n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void put(char *buf, size_t *n, const char *fmt, ...)
{
	size_t room = LINE_MAX_BYTES - 2 - *n;
	va_list ap;
	int k;

	if (room == 0)
		return;
	va_start(ap, fmt);
	k = vsnprintf(buf + *n, room + 1, fmt, ap);
	va_end(ap);
	if (k > 0)
		*n += (size_t)k < room ? (size_t)k : room;
}

/* Newlines in a message would split an event over lines: flatten them. */
static void flatten(char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] == '\n' || s[i] == '\r')
			s[i] = ' ';
}

static void emit(enum bdr_log_level level, const struct bdr_log_ctx *ctx, int err,
		 const char *event, const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));
static void emit(enum bdr_log_level level, const struct bdr_log_ctx *ctx, int err,
		 const char *event, const char *fmt, va_list ap)
{
	char buf[LINE_MAX_BYTES];
	size_t n = 0, start;

	if ((int)level > atomic_load(&log_level))
		return;
	put(buf, &n, "%s", journal ? prio[level] : names[level]);
	put(buf, &n, "%ssite=%s", journal ? "" : " ", log_site);
	if (ctx && ctx->peer)
		put(buf, &n, " peer=%s", ctx->peer);
	if (ctx && ctx->package)
		put(buf, &n, " package=%s", ctx->package);
	if (ctx && ctx->version)
		put(buf, &n, " version=%" PRIu64, ctx->version);
	put(buf, &n, " %s: ", event);
	start = n;
	if (n < LINE_MAX_BYTES - 2) {
		int k = vsnprintf(buf + n, LINE_MAX_BYTES - 1 - n, fmt, ap);
		if (k > 0)
			n += (size_t)k < LINE_MAX_BYTES - 2 - n ? (size_t)k : LINE_MAX_BYTES - 2 - n;
	}
	if (err)
		put(buf, &n, " error=\"%s\"", bdr_strerror(err));
	flatten(buf + start, n - start);
	buf[n++] = '\n';
	/* One write per line keeps lines whole between threads. */
	if (write(log_fd, buf, n) < 0) {
		/* nowhere left to report it */
	}
}

void bdr_log(enum bdr_log_level level, const struct bdr_log_ctx *ctx, const char *event,
	     const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit(level, ctx, 0, event, fmt, ap);
	va_end(ap);
}

int bdr_log_err(enum bdr_log_level level, const struct bdr_log_ctx *ctx, int err, const char *event,
		const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit(level, ctx, err, event, fmt, ap);
	va_end(ap);
	return err;
}
