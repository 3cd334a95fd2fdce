/* Output helpers: sizes, durations, aligned tables, JSON. */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

void *ctl_check_alloc(void *p)
{
	if (!p) {
		fputs("bdrctl: out of memory\n", stderr);
		exit(BDR_EXIT_FAILED);
	}
	return p;
}

static bool errors_json;

void ctl_errors_json(bool on)
{
	errors_json = on;
}

int ctl_err(int status, const char *code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "bdrctl: %s\n", msg);
	if (errors_json) {
		json_t *e = json_pack("{s:{s:s, s:s, s:i}}", "error", "code", code, "message", msg,
				      "exit", status);

		if (e)
			json_dumpf(e, stdout, JSON_COMPACT);
		putchar('\n');
		fflush(stdout);
		json_decref(e);
	}
	return status;
}

void ctl_print_json(const json_t *v)
{
	json_dumpf(v, stdout, JSON_INDENT(2));
	putchar('\n');
}

const char *ctl_bytes(uint64_t n, char *buf)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double v = (double)n;
	int u = -1;

	if (n < 1024) {
		snprintf(buf, 16, "%" PRIu64 " B", n);
		return buf;
	}
	while (v >= 1024 && u < 5)
		v /= 1024, u++;
	snprintf(buf, 16, "%.1f %s", v, units[u]);
	return buf;
}

const char *ctl_duration(uint64_t s, char *buf)
{
	if (s >= 3600)
		snprintf(buf, 32, "%" PRIu64 ":%02u:%02u", s / 3600, (unsigned)(s / 60 % 60),
			 (unsigned)(s % 60));
	else
		snprintf(buf, 32, "%u:%02u", (unsigned)(s / 60), (unsigned)(s % 60));
	return buf;
}

const char *ctl_jstr(const json_t *o, const char *key, const char *dflt)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : dflt;
}

uint64_t ctl_ju64(const json_t *o, const char *key)
{
	json_int_t v = json_integer_value(json_object_get(o, key));

	return v > 0 ? (uint64_t)v : 0;
}

void ctl_table_init(struct ctl_table *t, size_t ncols)
{
	assert(ncols >= 1 && ncols <= CTL_TABLE_MAX_COLS);
	memset(t, 0, sizeof(*t));
	t->ncols = ncols;
}

static void table_add(struct ctl_table *t, const char *s)
{
	if (t->ncells == t->cap) {
		t->cap = t->cap ? 2 * t->cap : 64;
		t->cells = ctl_check_alloc(realloc(t->cells, t->cap * sizeof(*t->cells)));
	}
	t->cells[t->ncells++] = ctl_check_alloc(strdup(s ? s : "-"));
}

void ctl_table_row(struct ctl_table *t, ...)
{
	va_list ap;

	va_start(ap, t);
	for (size_t i = 0; i < t->ncols; i++)
		table_add(t, va_arg(ap, const char *));
	va_end(ap);
}

void ctl_table_print(const struct ctl_table *t, FILE *f)
{
	size_t width[CTL_TABLE_MAX_COLS] = { 0 };

	for (size_t i = 0; i < t->ncells; i++) {
		size_t len = strlen(t->cells[i]);

		if (len > width[i % t->ncols])
			width[i % t->ncols] = len;
	}
	for (size_t i = 0; i < t->ncells; i++) {
		size_t col = i % t->ncols;

		if (col + 1 == t->ncols)
			fprintf(f, "%s\n", t->cells[i]);
		else
			fprintf(f, "%-*s  ", (int)width[col], t->cells[i]);
	}
}

void ctl_table_free(struct ctl_table *t)
{
	for (size_t i = 0; i < t->ncells; i++)
		free(t->cells[i]);
	free(t->cells);
	memset(t, 0, sizeof(*t));
}

int ctl_parse_version(const struct ctl_args *a, const char *opt, const char *s, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (!s)
		return 0;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || v < 1 || v > INT64_MAX || s[0] == '-')
		return ctl_usage_error(a, "%s is a version number (1 or more), not '%s'", opt, s);
	*out = v;
	return 0;
}
