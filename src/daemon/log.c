#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

#include "bdr/error.h"
#include "log.h"

#define LINE_MAX_BYTES 2048

static char log_site[80] = "-";
static atomic_int log_level = BDR_LOG_INFO;
static int log_fd = 2;
static int journal; /* log_fd is the journal's stream: send native entries */

static const char *const names[] = { "error", "warn", "info", "debug" };
static const char *const prio[] = { "<3>", "<4>", "<6>", "<7>" };

/* systemd sets JOURNAL_STREAM=DEV:INODE for a service whose stderr goes
 * to the journal; a child that inherited the variable but writes
 * elsewhere (bdrd run by hand from a unit's shell) must not think so. */
static int is_journal_stream(int fd)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2 || fstat(fd, &st) < 0)
		return 0;
	return st.st_dev == (dev_t)dev && st.st_ino == (ino_t)ino;
}

void bdr_log_init(const char *site, enum bdr_log_level level, int fd)
{
	snprintf(log_site, sizeof(log_site), "%s", site && *site ? site : "-");
	atomic_store(&log_level, level);
	log_fd = fd;
	journal = is_journal_stream(fd);
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

/* "2026-12-08T02:15:03.123+0100 ": when the line is not the journal's,
 * which stamps entries itself. Local time of the daemon's TZ (the
 * configured timezone, see bdr.conf(5)), with its offset. */
static void put_time(char *buf, size_t *n)
{
	struct timespec ts;
	struct tm tm;
	char t[40], z[8];

	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%S", &tm);
	strftime(z, sizeof(z), "%z", &tm);
	put(buf, n, "%s.%03ld%s ", t, ts.tv_nsec / 1000000, z);
}

/* A native journal entry: the line as MESSAGE, and its parts as fields,
 * so that journalctl PACKAGE=app finds every event of a package. */
static int send_journal(enum bdr_log_level level, const struct bdr_log_ctx *ctx, int err,
			const char *event, const char *msg)
{
	char f[9][LINE_MAX_BYTES + 32];
	struct iovec iov[9];
	int k = 0;

	snprintf(f[k++], sizeof(f[0]), "MESSAGE=%s", msg);
	snprintf(f[k++], sizeof(f[0]), "PRIORITY=%c", prio[level][1]);
	snprintf(f[k++], sizeof(f[0]), "SYSLOG_IDENTIFIER=bdrd");
	snprintf(f[k++], sizeof(f[0]), "SITE=%s", log_site);
	snprintf(f[k++], sizeof(f[0]), "EVENT=%s", event);
	if (ctx && ctx->peer)
		snprintf(f[k++], sizeof(f[0]), "PEER=%s", ctx->peer);
	if (ctx && ctx->package)
		snprintf(f[k++], sizeof(f[0]), "PACKAGE=%s", ctx->package);
	if (ctx && ctx->version)
		snprintf(f[k++], sizeof(f[0]), "VERSION=%" PRIu64, ctx->version);
	if (err)
		snprintf(f[k++], sizeof(f[0]), "ERROR=%s", bdr_strerror(err));
	for (int i = 0; i < k; i++)
		iov[i] = (struct iovec){ .iov_base = f[i], .iov_len = strlen(f[i]) };
	return sd_journal_sendv(iov, k);
}

static void emit(enum bdr_log_level level, const struct bdr_log_ctx *ctx, int err,
		 const char *event, const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));
static void emit(enum bdr_log_level level, const struct bdr_log_ctx *ctx, int err,
		 const char *event, const char *fmt, va_list ap)
{
	char buf[LINE_MAX_BYTES];
	size_t n = 0, start, body;

	if ((int)level > atomic_load(&log_level))
		return;
	if (journal)
		put(buf, &n, "%s", prio[level]);
	else
		put_time(buf, &n), put(buf, &n, "%s ", names[level]);
	body = n;
	put(buf, &n, "site=%s", log_site);
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
	buf[n] = '\0';
	if (journal && send_journal(level, ctx, err, event, buf + body) >= 0)
		return;
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
