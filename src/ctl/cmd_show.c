/* status, packages, peers, reload: one request each, a table for people,
 * the raw result with --json. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

static const char *u64s(uint64_t v, char *buf)
{
	snprintf(buf, 24, "%" PRIu64, v);
	return buf;
}

static void show_transfers(const json_t *list)
{
	struct ctl_table t;
	size_t i;
	json_t *x;

	ctl_table_init(&t, 7);
	ctl_table_row(&t, "PACKAGE", "DESTINATION", "VERSION", "STATE", "SENT", "SAVED",
		      "LAST ERROR");
	json_array_foreach(list, i, x) {
		char v[24], s[16], tot[16], sent[40], saved[16];

		snprintf(sent, sizeof(sent), "%s/%s", ctl_bytes(ctl_ju64(x, "bytes_sent"), s),
			 ctl_bytes(ctl_ju64(x, "bytes_total"), tot));
		ctl_table_row(&t, ctl_jstr(x, "package", "?"), ctl_jstr(x, "to", "?"),
			      u64s(ctl_ju64(x, "version"), v), ctl_jstr(x, "state", "?"), sent,
			      ctl_bytes(ctl_ju64(x, "bytes_saved"), saved),
			      ctl_jstr(x, "last_error", NULL));
	}
	ctl_table_print(&t, stdout);
	ctl_table_free(&t);
}

static void show_received(const json_t *list)
{
	struct ctl_table t;
	size_t i;
	json_t *x;

	ctl_table_init(&t, 6);
	ctl_table_row(&t, "PACKAGE", "FROM", "VERSION", "STATE", "RECEIVED", "LAST ERROR");
	json_array_foreach(list, i, x) {
		char v[24], r[16], tot[16], recv[40];

		snprintf(recv, sizeof(recv), "%s/%s", ctl_bytes(ctl_ju64(x, "bytes_received"), r),
			 ctl_bytes(ctl_ju64(x, "bytes_total"), tot));
		ctl_table_row(&t, ctl_jstr(x, "package", "?"), ctl_jstr(x, "from", "?"),
			      u64s(ctl_ju64(x, "version"), v), ctl_jstr(x, "state", "?"), recv,
			      ctl_jstr(x, "last_error", NULL));
	}
	ctl_table_print(&t, stdout);
	ctl_table_free(&t);
}

/* The sites below this one, when their children report (a hierarchy). */
static void show_sites(const json_t *list)
{
	struct ctl_table t;
	bool any = false;
	size_t i;
	json_t *x;

	json_array_foreach(list, i, x)
		any |= json_is_true(json_object_get(x, "reported"));
	if (!any)
		return;
	putchar('\n');
	ctl_table_init(&t, 8);
	ctl_table_row(&t, "SITE", "VIA", "PACKAGE", "VERSION", "STATE", "DONE", "SAVED",
		      "LAST ERROR");
	json_array_foreach(list, i, x) {
		char v[24], s[16], tot[16], done[40], saved[16];

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
	json_t *req = json_pack("{s:s}", "cmd", "status");

	if (req && a->npos)
		json_object_set_new(req, "package", json_string(a->pos[0]));
	return ctl_simple(a, req, show_status);
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
