/* status, packages, peers, reload: one request each, a table for people,
 * the raw result with --json. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

static const char *u64s(uint64_t v, char *buf)
{
	snprintf(buf, 24, "%" PRIu64, v);
	return buf;
}

/* Natural order: runs of digits compare as numbers, so dp2 < dp10. */
static int natcmp(const char *a, const char *b)
{
	while (*a && *b) {
		if (*a >= '0' && *a <= '9' && *b >= '0' && *b <= '9') {
			const char *x = a, *y = b;
			size_t nx, ny;
			int c;

			while (*x == '0' && x[1] >= '0' && x[1] <= '9')
				x++;
			while (*y == '0' && y[1] >= '0' && y[1] <= '9')
				y++;
			for (a = x; *a >= '0' && *a <= '9'; a++)
				;
			for (b = y; *b >= '0' && *b <= '9'; b++)
				;
			nx = (size_t)(a - x), ny = (size_t)(b - y);
			if (nx != ny)
				return nx < ny ? -1 : 1;
			if ((c = strncmp(x, y, nx)))
				return c;
			continue;
		}
		if (*a != *b)
			return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
		a++, b++;
	}
	return *a ? 1 : *b ? -1 : 0;
}

/* The rows of a status list in the order people read them: package and
 * site by natural order, newest version first. */
static const char *sort_site_key;

static int row_cmp(const void *pa, const void *pb)
{
	const json_t *a = *(const json_t *const *)pa, *b = *(const json_t *const *)pb;
	uint64_t va = ctl_ju64(a, "version"), vb = ctl_ju64(b, "version");
	int c = natcmp(ctl_jstr(a, "package", ""), ctl_jstr(b, "package", ""));

	if (c)
		return c;
	if (va != vb)
		return va > vb ? -1 : 1;
	return natcmp(ctl_jstr(a, sort_site_key, ""), ctl_jstr(b, sort_site_key, ""));
}

/* list's rows, sorted; the array is malloc'd, the rows borrowed. */
static json_t **sorted_rows(const json_t *list, const char *site_key, size_t *n)
{
	json_t **v, *x;
	size_t i;

	*n = json_array_size(list);
	v = ctl_check_alloc(calloc(*n ? *n : 1, sizeof(*v)));
	json_array_foreach(list, i, x)
		v[i] = x;
	sort_site_key = site_key;
	qsort(v, *n, sizeof(*v), row_cmp);
	return v;
}

/* "12-08 14:05" from an RFC 3339 time (the daemon's local time); NULL
 * without one. */
static const char *short_time(const json_t *o, const char *key, char buf[16])
{
	const char *s = ctl_jstr(o, key, NULL);

	if (!s || strlen(s) < 16)
		return NULL;
	snprintf(buf, 16, "%.5s %.5s", s + 5, s + 11);
	return buf;
}

/* TIME: when it was activated, or else its last activity (or when it was
 * queued, if nothing happened since). */
static const char *row_time(const json_t *o, char buf[16])
{
	const char *t = short_time(o, "activated_at", buf);

	if (!t)
		t = short_time(o, "updated_at", buf);
	return t ? t : short_time(o, "queued_at", buf);
}

/* NOTE: why it waits, else its last error. */
static const char *row_note(const json_t *o, char *buf, size_t n)
{
	const char *w = ctl_jstr(o, "waiting", NULL);

	if (w && *w) {
		snprintf(buf, n, "waits: %s", w);
		return buf;
	}
	return ctl_jstr(o, "last_error", NULL);
}

static bool failed(const json_t *o)
{
	return !strcmp(ctl_jstr(o, "state", ""), "failed");
}

static void show_transfers(const json_t *list)
{
	struct ctl_table t;
	size_t n;
	json_t **rows = sorted_rows(list, "to", &n);

	ctl_table_init(&t, 9);
	ctl_table_row(&t, "PACKAGE", "DESTINATION", "VERSION", "STATE", "WIRE", "SIZE", "SAVED",
		      "TIME", "NOTE");
	for (size_t i = 0; i < n; i++) {
		const json_t *x = rows[i];
		char v[24], w[16], tot[16], saved[16], tm[16], note[300];

		ctl_table_row(&t, ctl_jstr(x, "package", "?"), ctl_jstr(x, "to", "?"),
			      u64s(ctl_ju64(x, "version"), v), ctl_jstr(x, "state", "?"),
			      ctl_bytes(ctl_ju64(x, "bytes_sent"), w),
			      ctl_bytes(ctl_ju64(x, "bytes_total"), tot),
			      ctl_bytes(ctl_ju64(x, "bytes_saved"), saved), row_time(x, tm),
			      row_note(x, note, sizeof(note)));
	}
	ctl_table_print(&t, stdout);
	ctl_table_free(&t);
	free(rows);
}

static void show_received(const json_t *list)
{
	struct ctl_table t;
	size_t n;
	json_t **rows = sorted_rows(list, "from", &n);

	ctl_table_init(&t, 7);
	ctl_table_row(&t, "PACKAGE", "FROM", "VERSION", "STATE", "WIRE", "TIME", "NOTE");
	for (size_t i = 0; i < n; i++) {
		const json_t *x = rows[i];
		char v[24], r[16], tm[16];

		ctl_table_row(&t, ctl_jstr(x, "package", "?"), ctl_jstr(x, "from", "?"),
			      u64s(ctl_ju64(x, "version"), v), ctl_jstr(x, "state", "?"),
			      ctl_bytes(ctl_ju64(x, "bytes_received"), r), row_time(x, tm),
			      ctl_jstr(x, "last_error", NULL));
	}
	ctl_table_print(&t, stdout);
	ctl_table_free(&t);
	free(rows);
}

/* The sites below this one, when their children report (a hierarchy). */
static void show_sites(const json_t *list)
{
	struct ctl_table t;
	bool any = false;
	size_t i, n;
	json_t *x, **rows;

	json_array_foreach(list, i, x)
		any |= json_is_true(json_object_get(x, "reported"));
	if (!any)
		return;
	putchar('\n');
	rows = sorted_rows(list, "site", &n);
	ctl_table_init(&t, 8);
	ctl_table_row(&t, "SITE", "VIA", "PACKAGE", "VERSION", "STATE", "DONE", "SAVED",
		      "LAST ERROR");
	for (i = 0; i < n; i++) {
		char v[24], s[16], tot[16], done[40], saved[16];

		x = rows[i];
		snprintf(done, sizeof(done), "%s/%s", ctl_bytes(ctl_ju64(x, "bytes_done"), s),
			 ctl_bytes(ctl_ju64(x, "bytes_total"), tot));
		ctl_table_row(&t, ctl_jstr(x, "site", "?"), ctl_jstr(x, "via", "?"),
			      ctl_jstr(x, "package", "?"), u64s(ctl_ju64(x, "version"), v),
			      ctl_jstr(x, "state", "?"), done,
			      ctl_bytes(ctl_ju64(x, "bytes_saved"), saved),
			      ctl_jstr(x, "last_error", NULL));
	}
	ctl_table_print(&t, stdout);
	ctl_table_free(&t);
	free(rows);
}

/* How many rows of a status result are failed (with --json too). */
static size_t count_failed(json_t *res)
{
	const char *keys[] = { "transfers", "received" };
	size_t n = 0, i;
	json_t *x;

	for (size_t k = 0; k < 2; k++)
		json_array_foreach(json_object_get(res, keys[k]), i, x)
			n += failed(x);
	return n;
}

/* Space the data directory keeps besides the versions, when there is any. */
static void show_storage(const json_t *st)
{
	const json_t *q = json_object_get(st, "quarantine"), *p = json_object_get(st, "partial");
	char b[16];

	if (ctl_ju64(q, "trees"))
		printf("\nquarantine: %" PRIu64 " trees, %s in %s/quarantine (%s)\n", ctl_ju64(q, "trees"),
		       ctl_bytes(ctl_ju64(q, "bytes"), b), ctl_jstr(q, "dir", "?"),
		       ctl_jstr(q, "reclaim", ""));
	if (ctl_ju64(p, "bytes"))
		printf("\nreceived data kept: %s in %zu files in %s/partial (%s)\n",
		       ctl_bytes(ctl_ju64(p, "bytes"), b), json_array_size(json_object_get(p, "files")),
		       ctl_jstr(p, "dir", "?"), ctl_jstr(p, "reclaim", ""));
}

static void show_status(json_t *res)
{
	json_t *out = json_object_get(res, "transfers"), *in = json_object_get(res, "received");

	if (!json_array_size(out) && !json_array_size(in)) {
		puts("no transfers");
		show_storage(json_object_get(res, "storage"));
		return;
	}
	if (json_array_size(out))
		show_transfers(out);
	if (json_array_size(out) && json_array_size(in))
		putchar('\n');
	if (json_array_size(in))
		show_received(in);
	show_sites(json_object_get(res, "sites"));
	show_storage(json_object_get(res, "storage"));
}

int ctl_status(const struct ctl_args *a)
{
	json_t *req = json_pack("{s:s}", "cmd", "status"), *result;
	size_t nfailed;
	int r;

	if (req && a->npos)
		json_object_set_new(req, "package", json_string(a->pos[0]));
	if ((r = ctl_call(a, req, NULL, NULL, &result)))
		return r;
	if (a->json)
		ctl_print_json(result);
	else
		show_status(result);
	r = BDR_EXIT_OK;
	if ((nfailed = count_failed(result))) {
		fprintf(stderr, "bdrctl: %zu failed transfer%s shown\n", nfailed, nfailed > 1 ? "s" : "");
		r = BDR_EXIT_TRANSFERS_FAILED;
	}
	json_decref(result);
	return r;
}

/* "2,3,4" from a JSON array of integers, malloc'd. */
static char *join_u64(const json_t *list)
{
	size_t n = json_array_size(list), cap = 24 * n + 1, len = 0, i;
	char *s = ctl_check_alloc(malloc(cap));
	json_t *x;

	s[0] = '\0';
	json_array_foreach(list, i, x)
		len += (size_t)snprintf(s + len, cap - len, "%s%" JSON_INTEGER_FORMAT, i ? "," : "",
					json_integer_value(x));
	return s;
}

/* "a,b" from a JSON array of strings, malloc'd. */
static char *join_str(const json_t *list)
{
	size_t cap = 1, len = 0, i;
	char *s;
	json_t *x;

	json_array_foreach(list, i, x)
		cap += strlen(json_string_value(x) ? json_string_value(x) : "") + 1;
	s = ctl_check_alloc(malloc(cap));
	s[0] = '\0';
	json_array_foreach(list, i, x)
		len += (size_t)snprintf(s + len, cap - len, "%s%s", i ? "," : "",
					json_string_value(x) ? json_string_value(x) : "");
	return s;
}

static void show_packages(json_t *res)
{
	json_t *list = json_object_get(res, "packages"), *x;
	struct ctl_table t;
	size_t i;

	if (!json_array_size(list)) {
		puts("no packages");
		return;
	}
	ctl_table_init(&t, 3);
	ctl_table_row(&t, "PACKAGE", "ACTIVE", "VERSIONS");
	json_array_foreach(list, i, x) {
		char active[24], *versions = join_u64(json_object_get(x, "versions"));
		bool has = json_is_integer(json_object_get(x, "active"));

		ctl_table_row(&t, ctl_jstr(x, "name", "?"),
			      has ? u64s(ctl_ju64(x, "active"), active) : NULL, versions);
		free(versions);
	}
	ctl_table_print(&t, stdout);
	ctl_table_free(&t);
}

int ctl_packages(const struct ctl_args *a)
{
	return ctl_simple(a, json_pack("{s:s}", "cmd", "packages"), show_packages);
}

static void show_peers(json_t *res)
{
	json_t *list = json_object_get(res, "peers"), *x;
	struct ctl_table t;
	size_t i;

	if (!json_array_size(list)) {
		puts("no peers");
		return;
	}
	ctl_table_init(&t, 5);
	ctl_table_row(&t, "SITE", "CONNECTED", "ADDRESSES", "PUBLIC KEY", "LAST ERROR");
	json_array_foreach(list, i, x) {
		char *addrs = join_str(json_object_get(x, "addresses"));

		ctl_table_row(&t, ctl_jstr(x, "name", "?"),
			      json_is_true(json_object_get(x, "connected")) ? "yes" : "no", addrs,
			      ctl_jstr(x, "public_key", NULL), ctl_jstr(x, "last_error", NULL));
		free(addrs);
	}
	ctl_table_print(&t, stdout);
	ctl_table_free(&t);
}

int ctl_peers(const struct ctl_args *a)
{
	return ctl_simple(a, json_pack("{s:s}", "cmd", "peers"), show_peers);
}

static void show_reloaded(json_t *res)
{
	(void)res;
	puts("configuration reloaded");
}

int ctl_reload(const struct ctl_args *a)
{
	return ctl_simple(a, json_pack("{s:s}", "cmd", "reload"), show_reloaded);
}
