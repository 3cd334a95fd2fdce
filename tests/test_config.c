/* bdr.conf(5): what an operator relies on. A file loads with the
 * documented defaults; every value is checked against the key table and a
 * refused one is reported as "FILE:LINE: [section] key = value: why"; all
 * problems of a file are reported, in line order; the dump loads back to
 * the same configuration; a reload reports what changed and keeps what it
 * may not change; and the man page documents every key of the table with
 * its summary line, word for word. */
#include <errno.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "bdr/error.h"
#include "bdr/key.h"
#include "bdr/library.h"
#include "daemon/config.h"
#include "testutil.h"

static char dir[PATH_MAX], conf[PATH_MAX];
static struct bdr_config cfg;
static struct bdr_config_errors errs;
static uint8_t pk1[BDR_PK_LEN], pk2[BDR_PK_LEN];
static char pk1_b64[BDR_KEY_B64_LEN + 1], pk2_b64[BDR_KEY_B64_LEN + 1];
static char group[256]; /* an existing group: the test's own */

static void setup(void)
{
	struct group *g = getgrgid(getgid());

	tu_mkdtemp(dir, "config");
	snprintf(conf, sizeof(conf), "%s/bdr.conf", dir);
	memset(&cfg, 0, sizeof(cfg));
	memset(&errs, 0, sizeof(errs));
	for (unsigned i = 0; i < BDR_PK_LEN; i++)
		pk1[i] = (uint8_t)(i + 1), pk2[i] = (uint8_t)(0xf0 - i);
	bdr_key_pk_to_b64(pk1, pk1_b64);
	bdr_key_pk_to_b64(pk2, pk2_b64);
	cr_assert_not_null(g, "the test's group has a name");
	snprintf(group, sizeof(group), "%s", g->gr_name);
}

static void teardown(void)
{
	bdr_config_free(&cfg);
	bdr_config_errors_free(&errs);
	tu_rmrf(dir);
}

TestSuite(config, .init = setup, .fini = teardown);

/* ---- helpers ---- */

#define MINIMAL "[site]\nname = central\nkey = /etc/bdr/site.key\ndata = /var/lib/bdr\n"

/* Every error of the last load, one per line, for assertion messages. */
static const char *all_errors(void)
{
	static char buf[16384];
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < errs.n && used < sizeof(buf) - 1; i++)
		used += (size_t)snprintf(buf + used, sizeof(buf) - used, "\n  %s", errs.v[i].text);
	return errs.n ? buf : " (none)";
}

static int load_file(const char *path)
{
	bdr_config_free(&cfg);
	bdr_config_errors_free(&errs);
	return bdr_config_load(path, &cfg, &errs);
}

static int load(const char *text)
{
	tu_write(conf, text, strlen(text));
	return load_file(conf);
}

static void load_ok(const char *text)
{
	int rc = load(text);

	cr_assert_eq(rc, 0, "load: %d (%s), errors:%s\nfile:\n%s", rc, bdr_strerror(rc),
		     all_errors(), text);
	cr_assert_eq(errs.n, 0, "a good file gives no errors:%s", all_errors());
}

static void load_refused(const char *text)
{
	int rc = load(text);

	cr_assert_eq(rc, -BDR_EFORMAT, "expected the file to be refused, got %d; errors:%s\n%s", rc,
		     all_errors(), text);
	cr_assert_gt(errs.n, 0);
	cr_assert_null(cfg.path, "a refused load leaves the configuration empty");
	cr_assert_null(cfg.peers);
	cr_assert_null(cfg.site.name);
}

/* Index of the error whose text is exactly "CONF:LINE: msg" ("CONF: msg"
 * for line 0), or errs.n. */
static size_t find_error(unsigned line, const char *msg)
{
	char want[2048];

	if (line)
		snprintf(want, sizeof(want), "%s:%u: %s", conf, line, msg);
	else
		snprintf(want, sizeof(want), "%s: %s", conf, msg);
	for (size_t i = 0; i < errs.n; i++)
		if (strcmp(errs.v[i].text, want) == 0) {
			cr_assert_eq(errs.v[i].line, line, "%s", want);
			return i;
		}
	return errs.n;
}

static void expect_error(unsigned line, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void expect_error(unsigned line, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cr_assert_lt(find_error(line, msg), errs.n, "expected '%s:%u: %s'; errors:%s", conf, line,
		     msg, all_errors());
}

static const struct bdr_config_key *key_named(const char *name)
{
	size_t n;
	const struct bdr_config_key *keys = bdr_config_keys(&n);

	for (size_t i = 0; i < n; i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	cr_assert_fail("no key %s in the table", name);
	return NULL;
}

/* A valid file with "k = value" set, the other required keys filled in;
 * returns the line of "k = value". */
static unsigned file_with(char *buf, size_t n, const struct bdr_config_key *k, const char *value)
{
	const char *req[] = { "name = central", "key = /etc/bdr/site.key", "data = /var/lib/bdr" };
	size_t used;

	if (k->section == BDR_CONFIG_SITE) {
		used = (size_t)snprintf(buf, n, "[site]\n%s = %s\n", k->name, value);
		for (int i = 0; i < 3; i++)
			if (strncmp(req[i], k->name, strlen(k->name)) != 0 ||
			    req[i][strlen(k->name)] != ' ')
				used += (size_t)snprintf(buf + used, n - used, "%s\n", req[i]);
		return 2;
	}
	if (k->section == BDR_CONFIG_LIMITS) {
		snprintf(buf, n, MINIMAL "[limits]\n%s = %s\n", k->name, value);
		return 6;
	}
	if (k->section == BDR_CONFIG_ADDRESS) {
		used = (size_t)snprintf(buf, n,
					MINIMAL "[peer branch]\npublic_key = %s\naddress = a\n"
						"[address a]\n%s = %s\n",
					pk1_b64, k->name, value);
		if (strcmp(k->name, "host") != 0)
			snprintf(buf + used, n - used, "host = 10.0.0.7:7411\n");
		return 9;
	}
	used = (size_t)snprintf(buf, n, MINIMAL "[peer branch]\n%s = %s\n", k->name, value);
	if (strcmp(k->name, "public_key") != 0)
		snprintf(buf + used, n - used, "public_key = %s\n", pk1_b64);
	return 6;
}

static const char *label_of(const struct bdr_config_key *k)
{
	return k->section == BDR_CONFIG_SITE	   ? "[site]"
	       : k->section == BDR_CONFIG_LIMITS  ? "[limits]"
	       : k->section == BDR_CONFIG_ADDRESS ? "[address a]"
						  : "[peer branch]";
}

static void accept_value(const char *key, const char *value)
{
	char buf[4096];

	file_with(buf, sizeof(buf), key_named(key), value);
	load_ok(buf);
}

/* The one error is "CONF:LINE: [section] key = value: why". */
static void refuse_value(const char *key, const char *value, const char *why)
{
	const struct bdr_config_key *k = key_named(key);
	char buf[4096];
	unsigned line = file_with(buf, sizeof(buf), k, value);

	load_refused(buf);
	cr_assert_eq(errs.n, 1, "one error for %s = %s:%s", key, value, all_errors());
	expect_error(line, "%s %s = %s: %s", label_of(k), key, value, why);
}

/* As refuse_value, when the reason comes from elsewhere (the site name
 * rules): the error starts as usual and contains why. */
static void refuse_value_like(const char *key, const char *value, const char *why)
{
	const struct bdr_config_key *k = key_named(key);
	char buf[4096], head[1024];
	unsigned line = file_with(buf, sizeof(buf), k, value);

	load_refused(buf);
	cr_assert_eq(errs.n, 1, "one error for %s = %s:%s", key, value, all_errors());
	snprintf(head, sizeof(head), "%s:%u: %s %s = %s: ", conf, line, label_of(k), key, value);
	cr_assert_eq(strncmp(errs.v[0].text, head, strlen(head)), 0, "'%s' starts with '%s'",
		     errs.v[0].text, head);
	cr_assert_not_null(strstr(errs.v[0].text + strlen(head), why), "'%s' says '%s'",
			   errs.v[0].text, why);
}

/* The numeric field of k in cfg (peer keys: the first peer). */
static uint64_t number_of(const struct bdr_config_key *k)
{
	const char *base = k->section == BDR_CONFIG_PEER ? (const char *)&cfg.peers[0]
							 : (const char *)&cfg;

	if (k->size == sizeof(uint32_t))
		return *(const uint32_t *)(base + k->off);
	cr_assert_eq(k->size, sizeof(uint64_t));
	return *(const uint64_t *)(base + k->off);
}

/* As the man page writes sizes: 1K, 64M, 1G, else plain bytes. */
static void size_text(char *buf, size_t n, uint64_t v)
{
	if (v && v % (1ull << 30) == 0)
		snprintf(buf, n, "%lluG", (unsigned long long)(v >> 30));
	else if (v && v % (1ull << 20) == 0)
		snprintf(buf, n, "%lluM", (unsigned long long)(v >> 20));
	else if (v && v % 1024 == 0)
		snprintf(buf, n, "%lluK", (unsigned long long)(v >> 10));
	else
		snprintf(buf, n, "%llu", (unsigned long long)v);
}

static char *dump_text(const struct bdr_config *c)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	cr_assert_not_null(f);
	cr_assert_eq(bdr_config_dump(c, f), 0);
	cr_assert_eq(fclose(f), 0);
	return text;
}

/* ---- a minimal file and its defaults ---- */

Test(config, minimal_file_gets_the_documented_defaults)
{
	load_ok(MINIMAL);
	cr_assert_str_eq(cfg.path, conf);
	cr_assert_str_eq(cfg.site.name, "central");
	cr_assert_str_eq(cfg.site.key, "/etc/bdr/site.key");
	cr_assert_str_eq(cfg.site.data, "/var/lib/bdr");
	cr_assert_str_eq(cfg.site.listen.host, "0.0.0.0");
	cr_assert_eq(cfg.site.listen.port, 7411);
	cr_assert_str_eq(cfg.site.control, "/run/bdr/control.sock");
	cr_assert_null(cfg.site.control_group.name, "control_group: not set");
	cr_assert_eq(cfg.site.log_level, BDR_LOG_INFO);
	cr_assert_eq(cfg.site.keep_versions, BDR_KEEP_VERSIONS_DEFAULT);
	cr_assert_eq(cfg.site.keep_versions, 5);
	cr_assert_eq(cfg.site.chunk_avg, 8192);
	cr_assert_eq(cfg.limits.max_manifest_bytes, 64ull << 20);
	cr_assert_eq(cfg.limits.max_inflight_bytes, 8ull << 20);
	cr_assert_eq(cfg.limits.max_connections, 64);
	cr_assert_eq(cfg.limits.connect_timeout_s, 15);
	cr_assert_eq(cfg.limits.idle_timeout_s, 120);
	cr_assert_eq(cfg.limits.max_transfers, 8);
	cr_assert_eq(cfg.n_peers, 0);
	cr_assert_null(cfg.peers);
	cr_assert_null(bdr_config_peer(&cfg, "central"));
}

/* Every key with a default takes it, in the form the table writes it. */
Test(config, every_default_is_valid_and_applied)
{
	size_t n;
	const struct bdr_config_key *keys = bdr_config_keys(&n);
	char *text;

	cr_assert_gt(n, 0);
	/* An [address NAME] with only its host, for that section's defaults. */
	load_ok(MINIMAL "[limits]\n[peer branch]\n"
			"public_key = yqRwV0H6bTfvOGrNLBkXwkbH/mbaJkw46AyV/40pTYc=\naddress = a\n"
			"[address a]\nhost = 10.0.0.7:7411\n");
	text = dump_text(&cfg);
	for (size_t i = 0; i < n; i++) {
		char line[512];

		if (!keys[i].def) {
			cr_assert(keys[i].section == BDR_CONFIG_PEER ||
					  (keys[i].flags & BDR_CONFIG_F_REQUIRED) ||
					  keys[i].type == BDR_CONFIG_T_GROUP ||
					  keys[i].type == BDR_CONFIG_T_TIMEZONE ||
					  keys[i].type == BDR_CONFIG_T_CAPACITY ||
					  keys[i].type == BDR_CONFIG_T_ADDRESS,
				  "%s: no default, so required or optional by nature", keys[i].name);
			continue;
		}
		cr_assert_not(keys[i].flags & BDR_CONFIG_F_REQUIRED, "%s: required with a default",
			      keys[i].name);
		snprintf(line, sizeof(line), "\n%s = %s\n", keys[i].name, keys[i].def);
		cr_assert_not_null(strstr(text, line), "the dump holds '%s = %s':\n%s", keys[i].name,
				   keys[i].def, text);
	}
	free(text);
}

/* ---- values, type by type ---- */

/* Every number: the table's bounds are enforced, inclusive, and the value
 * is stored; sizes take K, M and G. */
Test(config, numbers_are_bounded_by_the_table)
{
	size_t n, tested = 0;
	const struct bdr_config_key *keys = bdr_config_keys(&n);

	for (size_t i = 0; i < n; i++) {
		const struct bdr_config_key *k = &keys[i];
		bool size = k->type == BDR_CONFIG_T_SIZE, pow2 = k->flags & BDR_CONFIG_F_POW2;
		char v[64], why[256], lo[32], hi[32];

		if (k->type != BDR_CONFIG_T_UINT && !size)
			continue;
		tested++;
		cr_assert_lt(k->min, k->max, "%s", k->name);
		/* 0 is meaningful only for a count of retries ("give up at once")
		 * and the chunk cache ("no sharing"). */
		cr_assert(k->min > 0 || !strcmp(k->name, "retries") ||
				  !strcmp(k->name, "chunk_cache_bytes"),
			  "%s: 0 is not meaningful", k->name);
		if (size) {
			size_text(lo, sizeof(lo), k->min);
			size_text(hi, sizeof(hi), k->max);
		} else {
			snprintf(lo, sizeof(lo), "%llu", (unsigned long long)k->min);
			snprintf(hi, sizeof(hi), "%llu", (unsigned long long)k->max);
		}
		snprintf(why, sizeof(why), "must be between %s and %s", lo, hi);

		snprintf(v, sizeof(v), "%llu", (unsigned long long)k->min);
		accept_value(k->name, v);
		cr_assert_eq(number_of(k), k->min, "%s = %s", k->name, v);
		snprintf(v, sizeof(v), "%llu", (unsigned long long)k->max);
		accept_value(k->name, v);
		cr_assert_eq(number_of(k), k->max, "%s = %s", k->name, v);
		if (size) { /* the same bounds written with a suffix */
			accept_value(k->name, lo);
			cr_assert_eq(number_of(k), k->min, "%s = %s", k->name, lo);
			accept_value(k->name, hi);
			cr_assert_eq(number_of(k), k->max, "%s = %s", k->name, hi);
		}
		if (pow2) {
			snprintf(v, sizeof(v), "%llu", (unsigned long long)(k->min / 2));
			refuse_value(k->name, v, why);
			snprintf(v, sizeof(v), "%llu", (unsigned long long)(k->max * 2));
			refuse_value(k->name, v, why);
			snprintf(v, sizeof(v), "%llu", (unsigned long long)(k->min + k->min / 2));
			refuse_value(k->name, v, "must be a power of two");
			snprintf(v, sizeof(v), "%llu", (unsigned long long)(k->max - 1));
			refuse_value(k->name, v, "must be a power of two");
		} else {
			snprintf(v, sizeof(v), "%llu", (unsigned long long)(k->min - 1));
			if (k->min > 0)
				refuse_value(k->name, v, why);
			snprintf(v, sizeof(v), "%llu", (unsigned long long)(k->max + 1));
			refuse_value(k->name, v, why);
		}
	}
	cr_assert_geq(tested, 8, "every number key was tried");
}

Test(config, integer_syntax)
{
	accept_value("keep_versions", "007");
	cr_assert_eq(cfg.site.keep_versions, 7);
	accept_value("keep_versions", "12 ; a comment after a blank");
	cr_assert_eq(cfg.site.keep_versions, 12);
	refuse_value("keep_versions", "0", "must be between 1 and 100");
	refuse_value("keep_versions", "-1", "expected a whole number");
	refuse_value("keep_versions", "+5", "expected a whole number");
	refuse_value("keep_versions", "five", "expected a whole number");
	refuse_value("keep_versions", "1.5", "unexpected '.5' after the number");
	refuse_value("keep_versions", "0x10", "unexpected 'x10' after the number");
	refuse_value("keep_versions", "5K", "unexpected 'K' after the number");
	refuse_value("keep_versions", "5 # five", "unexpected ' # five' after the number");
	refuse_value("keep_versions", "99999999999999999999999", "number too large");
	refuse_value("max_transfers", "18446744073709551616", "number too large");
	/* The man page's example line. */
	refuse_value("keep_versions", "0", "must be between 1 and 100");
	cr_assert_eq(find_error(2, "[site] keep_versions = 0: must be between 1 and 100"), 0);
}

Test(config, size_syntax)
{
	accept_value("max_manifest_bytes", "1G");
	cr_assert_eq(cfg.limits.max_manifest_bytes, 1ull << 30);
	accept_value("max_manifest_bytes", "1024M");
	cr_assert_eq(cfg.limits.max_manifest_bytes, 1ull << 30);
	accept_value("max_manifest_bytes", "1048576K");
	cr_assert_eq(cfg.limits.max_manifest_bytes, 1ull << 30);
	accept_value("max_manifest_bytes", "1048577");
	cr_assert_eq(cfg.limits.max_manifest_bytes, 1048577, "sizes need not be round");
	accept_value("max_inflight_bytes", "300K");
	cr_assert_eq(cfg.limits.max_inflight_bytes, 300 * 1024);
	accept_value("chunk_avg", "16K");
	cr_assert_eq(cfg.site.chunk_avg, 16384);
	accept_value("chunk_avg", "4096");
	cr_assert_eq(cfg.site.chunk_avg, 4096);

	refuse_value("max_manifest_bytes", "1025M", "must be between 1M and 1G");
	refuse_value("max_manifest_bytes", "2G", "must be between 1M and 1G");
	refuse_value("max_inflight_bytes", "255K", "must be between 256K and 256M");
	refuse_value("chunk_avg", "256K", "must be between 1K and 128K");
	refuse_value("chunk_avg", "3K", "must be a power of two");
	refuse_value("chunk_avg", "8k", "unknown size suffix 'k' (use K, M or G)");
	refuse_value("chunk_avg", "8T", "unknown size suffix 'T' (use K, M or G)");
	refuse_value("chunk_avg", "8 K", "unknown size suffix ' K' (use K, M or G)");
	refuse_value("chunk_avg", "8KB", "unexpected 'B' after the number");
	refuse_value("chunk_avg", "8KK", "unexpected 'K' after the number");
	refuse_value("chunk_avg", "K",
		     "expected a whole number of bytes, optionally followed by K, M or G");
	refuse_value("chunk_avg", "-8K",
		     "expected a whole number of bytes, optionally followed by K, M or G");
	refuse_value("max_manifest_bytes", "17179869184G", "number too large");
	refuse_value("max_manifest_bytes", "99999999999999999999K", "number too large");
}

Test(config, paths_are_absolute_and_bounded)
{
	char path[256];

	accept_value("key", "/srv/bdr keys/site.key");
	cr_assert_str_eq(cfg.site.key, "/srv/bdr keys/site.key", "inner blanks are kept");
	accept_value("data", "/");
	cr_assert_str_eq(cfg.site.data, "/");
	accept_value("data", "/var/lib/bdr;old");
	cr_assert_str_eq(cfg.site.data, "/var/lib/bdr;old", "a ';' after a character is kept");
	accept_value("data", "/var/lib/bdr #2");
	cr_assert_str_eq(cfg.site.data, "/var/lib/bdr #2", "'#' after a value is part of it");
	accept_value("data", "/var/lib/bdr ;comment");
	cr_assert_str_eq(cfg.site.data, "/var/lib/bdr");

	refuse_value("key", "site.key", "must be an absolute path");
	refuse_value("data", "./data", "must be an absolute path");
	refuse_value("data", "~/bdr", "must be an absolute path");
	refuse_value("control", "run/control.sock", "must be an absolute path");

	/* The control socket must fit sun_path: 107 bytes. */
	memset(path, 'c', sizeof(path));
	path[0] = '/';
	path[107] = '\0';
	accept_value("control", path);
	cr_assert_eq(strlen(cfg.site.control), 107);
	path[107] = 'c';
	path[108] = '\0';
	refuse_value("control", path, "path longer than 107 bytes");
}

Test(config, addresses)
{
	accept_value("listen", "127.0.0.1:7411");
	cr_assert_str_eq(cfg.site.listen.host, "127.0.0.1");
	cr_assert_eq(cfg.site.listen.port, 7411);
	accept_value("listen", "[::]:1");
	cr_assert_str_eq(cfg.site.listen.host, "::", "kept without the brackets");
	cr_assert_eq(cfg.site.listen.port, 1);
	accept_value("listen", "[2001:db8::7]:65535");
	cr_assert_str_eq(cfg.site.listen.host, "2001:db8::7");
	cr_assert_eq(cfg.site.listen.port, 65535);
	accept_value("listen", "[::ffff:10.0.0.1]:80");
	cr_assert_str_eq(cfg.site.listen.host, "::ffff:10.0.0.1");
	accept_value("listen", "bdr-1.example.net:7411");
	cr_assert_str_eq(cfg.site.listen.host, "bdr-1.example.net");
	accept_value("listen", "localhost:08080");
	cr_assert_str_eq(cfg.site.listen.host, "localhost");
	cr_assert_eq(cfg.site.listen.port, 8080);

	refuse_value("listen", "127.0.0.1", "expected HOST:PORT");
	refuse_value("listen", "example.net", "expected HOST:PORT");
	refuse_value("listen", ":7411", "missing host before :PORT");
	refuse_value("listen", "[]:7411", "missing host before :PORT");
	refuse_value("listen", "127.0.0.1:", "the port must be a number from 1 to 65535");
	refuse_value("listen", "127.0.0.1:0", "the port must be a number from 1 to 65535");
	refuse_value("listen", "127.0.0.1:65536", "the port must be a number from 1 to 65535");
	refuse_value("listen", "127.0.0.1:99999999999999999999999",
		     "the port must be a number from 1 to 65535");
	refuse_value("listen", "127.0.0.1:-1", "the port must be a number from 1 to 65535");
	refuse_value("listen", "127.0.0.1:http", "the port must be a number from 1 to 65535");
	refuse_value("listen", "127.0.0.1:74 11", "the port must be a number from 1 to 65535");
	refuse_value("listen", "::1:7411", "an IPv6 address goes in brackets: [::1]:7411");
	refuse_value("listen", "[::1]", "expected :PORT after ']'");
	refuse_value("listen", "[::1]7411", "expected :PORT after ']'");
	refuse_value("listen", "[::1:7411", "missing ']' after the IPv6 address");
	refuse_value("listen", "[::g]:7411", "'::g' is not an IPv6 address");
	refuse_value("listen", "[10.0.0.1]:7411", "'10.0.0.1' is not an IPv6 address");
	refuse_value("listen", "[fe80::1%eth0]:7411", "'fe80::1%eth0' is not an IPv6 address");
	refuse_value("listen", "256.1.1.1:7411", "'256.1.1.1' is not an IPv4 address");
	refuse_value("listen", "10.0.1:7411", "'10.0.1' is not an IPv4 address");
	refuse_value("listen", "-bad.example:7411", "'-bad.example' is not a valid host name");
	refuse_value("listen", "bad-.example:7411", "'bad-.example' is not a valid host name");
	refuse_value("listen", "a..b:7411", "'a..b' is not a valid host name");
	refuse_value("listen", "under_score:7411", "'under_score' is not a valid host name");

	/* Labels up to 63 bytes. */
	char host[128], v[160];
	memset(host, 'h', 64);
	host[63] = '\0';
	snprintf(v, sizeof(v), "%s.net:1", host);
	accept_value("listen", v);
	host[63] = 'h';
	host[64] = '\0';
	snprintf(v, sizeof(v), "%s.net:1", host);
	char why[160];
	snprintf(why, sizeof(why), "'%s.net' is not a valid host name", host);
	refuse_value("listen", v, why);
}

Test(config, peer_addresses_repeat_in_order)
{
	char text[8192];
	size_t used;

	load_ok(MINIMAL "[peer branch]\npublic_key = yqRwV0H6bTfvOGrNLBkXwkbH/mbaJkw46AyV/40pTYc=\n"
			"address = paris.example.net:7411\n"
			"address = 10.20.0.5:7411\n"
			"address = [2001:db8:20::5]:7412\n");
	const struct bdr_peer_config *p = bdr_config_peer(&cfg, "branch");
	cr_assert_not_null(p);
	cr_assert_eq(p->address.n, 3);
	cr_assert_str_eq(p->address.v[0].host, "paris.example.net");
	cr_assert_str_eq(p->address.v[1].host, "10.20.0.5");
	cr_assert_str_eq(p->address.v[2].host, "2001:db8:20::5");
	cr_assert_eq(p->address.v[2].port, 7412);

	/* No address: the peer only connects to us. */
	load_ok(MINIMAL "[peer branch]\npublic_key = yqRwV0H6bTfvOGrNLBkXwkbH/mbaJkw46AyV/40pTYc=\n");
	cr_assert_eq(cfg.peers[0].address.n, 0);

	/* At most 16; the 17th is refused on its line. */
	used = (size_t)snprintf(text, sizeof(text), MINIMAL "[peer branch]\npublic_key = %s\n",
				pk1_b64);
	for (int i = 1; i <= 17; i++)
		used += (size_t)snprintf(text + used, sizeof(text) - used,
					 "address = 10.0.0.%d:7411\n", i);
	load_refused(text);
	cr_assert_eq(errs.n, 1, "%s", all_errors());
	expect_error(7 + 16, "[peer branch] address = 10.0.0.17:7411: more than 16 addresses");
	text[used - strlen("address = 10.0.0.17:7411\n")] = '\0';
	load_ok(text);
	cr_assert_eq(cfg.peers[0].address.n, 16);
	cr_assert_str_eq(cfg.peers[0].address.v[15].host, "10.0.0.16");

	/* The same address twice is a mistake. */
	snprintf(text, sizeof(text),
		 MINIMAL "[peer branch]\npublic_key = %s\naddress = a.example:1\n"
			 "address = a.example:2\naddress = a.example:1\n",
		 pk1_b64);
	load_refused(text);
	cr_assert_eq(errs.n, 1, "%s", all_errors());
	expect_error(9, "[peer branch] address = a.example:1: listed twice");
	refuse_value("address", "10.0.0.1", "expected HOST:PORT");
	refuse_value("address", "10.0.0.1:0", "the port must be a number from 1 to 65535");
}

/* ---- [address NAME] sections: schedules and rate limits ---- */

#define PEER_BRANCH "[peer branch]\npublic_key = yqRwV0H6bTfvOGrNLBkXwkbH/mbaJkw46AyV/40pTYc=\n"

static bool all_open(const struct bdr_schedule *s)
{
	struct bdr_schedule d;

	bdr_schedule_default(&d);
	return memcmp(s, &d, sizeof(d)) == 0;
}

/* The first address of the first peer. */
static const struct bdr_config_address *first_address(void)
{
	cr_assert_geq(cfg.n_peers, 1);
	cr_assert_geq(cfg.peers[0].address.n, 1);
	return &cfg.peers[0].address.v[0];
}

Test(config, named_and_inline_addresses)
{
	load_ok(MINIMAL "[address mpls]\n" /* 5: before the peer that uses it */
			"host = 10.0.0.7:7411\n"
			"schedule = weekdays 08-18 high\n"
			"schedule = weekend all closed\n"
			"rate = 08-18 256K, 18-08 unlimited\n"
			"capacity = 10Mbit\n"
			PEER_BRANCH
			"address = mpls\n"
			"address = 10.0.0.9:7411\n"
			"address = [2001:db8::9]:7411\n"
			"address = backup.site_2\n"
			"[address backup.site_2]\n" /* after it */
			"host = backup.example.net:7412\n");
	const struct bdr_peer_config *p = bdr_config_peer(&cfg, "branch");
	cr_assert_eq(p->address.n, 4);

	/* Named: host, port, schedule and rate from its section. */
	const struct bdr_config_address *a = &p->address.v[0];
	cr_assert_str_eq(a->name, "mpls");
	cr_assert_str_eq(a->host, "10.0.0.7");
	cr_assert_eq(a->port, 7411);
	cr_assert_eq(a->schedule.cell[0][8], BDR_SCHED_HIGH, "Monday 08:00");
	cr_assert_eq(a->schedule.cell[4][17], BDR_SCHED_HIGH, "Friday 17:00");
	cr_assert_eq(a->schedule.cell[0][7], BDR_SCHED_ALL);
	cr_assert_eq(a->schedule.cell[4][18], BDR_SCHED_ALL);
	cr_assert_eq(a->schedule.cell[5][10], BDR_SCHED_CLOSED, "Saturday");
	cr_assert_eq(a->schedule.cell[6][23], BDR_SCHED_CLOSED, "Sunday");
	cr_assert_eq(a->rate.mode, BDR_RATE_HOURLY);
	cr_assert_eq(bdr_rate_at(&a->rate, 8), 256 * 1024);
	cr_assert_eq(bdr_rate_at(&a->rate, 17), 256 * 1024);
	cr_assert_eq(bdr_rate_at(&a->rate, 18), 0, "unlimited");
	cr_assert_eq(a->rate.capacity_bps, 1250000);

	/* Inline: always open, unlimited, no name. */
	for (int i = 1; i <= 2; i++) {
		a = &p->address.v[i];
		cr_assert_str_eq(a->name, "");
		cr_assert(all_open(&a->schedule));
		cr_assert_eq(a->rate.mode, BDR_RATE_UNLIMITED);
		cr_assert_eq(a->rate.capacity_bps, 0);
	}
	cr_assert_str_eq(p->address.v[1].host, "10.0.0.9");
	cr_assert_str_eq(p->address.v[2].host, "2001:db8::9");
	cr_assert_eq(p->address.v[2].port, 7411);

	/* A section with only its host has the defaults too. */
	a = &p->address.v[3];
	cr_assert_str_eq(a->name, "backup.site_2");
	cr_assert_str_eq(a->host, "backup.example.net");
	cr_assert_eq(a->port, 7412);
	cr_assert(all_open(&a->schedule));
	cr_assert_eq(a->rate.mode, BDR_RATE_UNLIMITED);

	/* A peer may use only named addresses; names are case-sensitive. */
	load_ok(MINIMAL PEER_BRANCH "address = Line\naddress = line\n"
			"[address line]\nhost = [::1]:1\n[address Line]\nhost = 127.0.0.1:2\n");
	cr_assert_str_eq(cfg.peers[0].address.v[0].host, "127.0.0.1");
	cr_assert_str_eq(cfg.peers[0].address.v[1].host, "::1");
}

/* Every name resolves to a section, and every section to one peer. */
Test(config, address_sections_are_used_once)
{
	char text[4096];

	/* A name with no section, reported on the peer's line. */
	load_refused(MINIMAL PEER_BRANCH "address = mpls\n");
	cr_assert_eq(errs.n, 1, "%s", all_errors());
	expect_error(7, "[peer branch] address 'mpls': no [address mpls] section");
	/* A host missing its port is a name; a dot earns a hint. */
	load_refused(MINIMAL PEER_BRANCH "address = paris.example.net\n");
	expect_error(7, "[peer branch] address 'paris.example.net': no [address "
			"paris.example.net] section (or is it a host missing its :PORT?)");
	/* Digits and dots are an IPv4 address, never a name. */
	refuse_value("address", "10.0.0.1", "expected HOST:PORT");
	refuse_value("address", "a/b", "expected HOST:PORT or the name of an [address NAME] "
				       "section: address 'a/b': byte 0x2f at offset 1 is not allowed "
				       "(allowed: A-Z a-z 0-9 . _ - +)");

	/* A section no peer uses, and a name that differs by case. */
	load_refused(MINIMAL PEER_BRANCH "address = MPLS\n[address mpls]\nhost = 10.0.0.7:7411\n");
	expect_error(7, "[peer branch] address 'MPLS': no [address MPLS] section");
	expect_error(8, "[address mpls] is used by no peer");
	cr_assert_eq(errs.n, 2, "%s", all_errors());
	load_refused(MINIMAL "[address mpls]\nhost = 10.0.0.7:7411\n");
	expect_error(5, "[address mpls] is used by no peer");
	cr_assert_eq(errs.n, 1, "%s", all_errors());

	/* A section two peers use. */
	snprintf(text, sizeof(text),
		 MINIMAL "[peer lyon]\npublic_key = %s\naddress = mpls\n"            /* 5-7 */
			 "[peer paris]\npublic_key = %s\naddress = 10.0.0.1:1\n"     /* 8-10 */
			 "address = mpls\n"                                          /* 11 */
			 "[address mpls]\nhost = 10.0.0.7:7411\n",
		 pk1_b64, pk2_b64);
	load_refused(text);
	cr_assert_eq(errs.n, 1, "%s", all_errors());
	expect_error(11, "[peer paris] address 'mpls': [address mpls] is already used by "
			 "[peer lyon] (line 7)");

	/* Twice by one peer, or its host listed besides it. */
	load_refused(MINIMAL PEER_BRANCH "address = mpls\naddress = mpls\n"
					 "[address mpls]\nhost = 10.0.0.7:7411\n");
	cr_assert_eq(errs.n, 1, "%s", all_errors());
	expect_error(8, "[peer branch] address = mpls: listed twice");
	load_refused(MINIMAL PEER_BRANCH "address = 10.0.0.7:7411\naddress = mpls\n"
					 "[address mpls]\nhost = 10.0.0.7:7411\n");
	cr_assert_eq(errs.n, 1, "%s", all_errors());
	expect_error(8, "[peer branch] address 'mpls': 10.0.0.7:7411 is listed twice");
	load_refused(MINIMAL PEER_BRANCH "address = mpls\naddress = 10.0.0.7:7411\n"
					 "[address mpls]\nhost = 10.0.0.7:7411\n");
	cr_assert_eq(errs.n, 1, "%s", all_errors());
	expect_error(7, "[peer branch] address 'mpls': 10.0.0.7:7411 is listed twice");
	load_refused(MINIMAL PEER_BRANCH "address = a\naddress = b\n[address a]\nhost = [::1]:1\n"
					 "[address b]\nhost = [::1]:1\n");
	cr_assert_eq(errs.n, 1, "%s", all_errors());
	expect_error(8, "[peer branch] address 'b': [::1]:1 is listed twice");
	/* The same host for two peers is their business. */
	snprintf(text, sizeof(text),
		 MINIMAL "[peer lyon]\npublic_key = %s\naddress = a\n"
			 "[peer paris]\npublic_key = %s\naddress = b\n"
			 "[address a]\nhost = 10.0.0.7:1\n[address b]\nhost = 10.0.0.7:1\n",
		 pk1_b64, pk2_b64);
	load_ok(text);

	/* The section's own problems. */
	load_refused(MINIMAL PEER_BRANCH "address = mpls\n"                   /* 7 */
		     "[address mpls]\n"                                       /* 8: no host */
		     "schedule = all all closed\n"                            /* 9 */
		     "[address mpls]\n"                                       /* 10 */
		     "host = 10.0.0.8:1\n"                                    /* 11: skipped */
		     "[address]\n"                                            /* 12 */
		     "[address bad/name]\n"                                   /* 13 */
		     "[address 10.0.0.7]\n"                                   /* 14 */
		     "[address x]\n"                                          /* 15: unused */
		     "host = 10.0.0.7\n"                                      /* 16 */
		     "public_key = yqRwV0H6bTfvOGrNLBkXwkbH/mbaJkw46AyV/40pTYc=\n" /* 17 */
		     "rate = 1M\n"                                            /* 18 */
		     "rate = 2M\n"                                            /* 19 */
		     "[peer other]\n"                                         /* 20 */
		     "public_key = A8y7QzQT64Qo7MJzcbSjdgECLY/DmpMP0lHtX/3dDoI=\n"
		     "schedule = all all all\n");                             /* 22 */
	expect_error(8, "[address mpls] is missing the required key 'host'");
	expect_error(10, "[address mpls] appears twice (first on line 8)");
	expect_error(12, "[address] needs a name: [address NAME]");
	expect_error(13, "[address bad/name]: address 'bad/name': byte 0x2f at offset 3 is not "
			 "allowed (allowed: A-Z a-z 0-9 . _ - +)");
	expect_error(14, "[address 10.0.0.7]: a name of digits and dots reads as an IPv4 "
			 "address; the name needs another character");
	expect_error(15, "[address x] is used by no peer");
	expect_error(16, "[address x] host = 10.0.0.7: expected HOST:PORT");
	expect_error(17, "[address x] unknown key 'public_key' (it belongs in [peer NAME])");
	expect_error(19, "[address x] rate is set twice (first on line 18)");
	expect_error(22, "[peer other] unknown key 'schedule' (it belongs in [address NAME])");
	cr_assert_eq(errs.n, 10, "%s", all_errors());
}

/* Each schedule line's rules apply over the lines before, in file order. */
Test(config, schedule_lines_apply_in_order)
{
	static const char *const lines[] = {
		"all all closed",
		"weekdays 08-18 high;weekdays 18-20 medium",
		"fri 12-24 all",
		"mon 08-09 closed",
	};
	char text[4096];
	size_t used;
	struct bdr_schedule want;
	struct bdr_diag d;

	used = (size_t)snprintf(text, sizeof(text),
				MINIMAL PEER_BRANCH "address = a\n[address a]\nhost = 10.0.0.7:1\n");
	for (size_t i = 0; i < 4; i++)
		used += (size_t)snprintf(text + used, sizeof(text) - used, "schedule = %s\n",
					 lines[i]);
	load_ok(text);
	const struct bdr_config_address *a = first_address();
	cr_assert_eq(a->schedule.cell[0][8], BDR_SCHED_CLOSED, "line 4 over line 2");
	cr_assert_eq(a->schedule.cell[0][9], BDR_SCHED_HIGH);
	cr_assert_eq(a->schedule.cell[2][19], BDR_SCHED_MEDIUM);
	cr_assert_eq(a->schedule.cell[2][20], BDR_SCHED_CLOSED, "line 1");
	cr_assert_eq(a->schedule.cell[4][12], BDR_SCHED_ALL, "line 3 over line 2");
	cr_assert_eq(a->schedule.cell[4][23], BDR_SCHED_ALL);
	cr_assert_eq(a->schedule.cell[5][3], BDR_SCHED_CLOSED);
	/* The same as every rule on one line, in that order. */
	cr_assert_eq(bdr_schedule_parse(&want, "all all closed;weekdays 08-18 high;weekdays 18-20 "
					       "medium;fri 12-24 all;mon 08-09 closed", &d), 0);
	cr_assert_arr_eq(&a->schedule, &want, sizeof(want));

	/* Another order, another grid: a later line wins. */
	load_ok(MINIMAL PEER_BRANCH "address = a\n[address a]\nhost = 10.0.0.7:1\n"
				    "schedule = fri 12-24 all\nschedule = all all closed\n");
	cr_assert_eq(first_address()->schedule.cell[4][12], BDR_SCHED_CLOSED);

	/* " ;" starts a comment: only the first rule is read. */
	load_ok(MINIMAL PEER_BRANCH "address = a\n[address a]\nhost = 10.0.0.7:1\n"
				    "schedule = mon 08-18 high ;tue all closed\n");
	cr_assert_eq(first_address()->schedule.cell[0][10], BDR_SCHED_HIGH);
	cr_assert_eq(first_address()->schedule.cell[1][10], BDR_SCHED_ALL);
}

/* A refused schedule or rate says what the module says, after the usual
 * "FILE:LINE: [address a] key = value: ". */
static void refuse_schedule(const char *value)
{
	struct bdr_schedule s;
	struct bdr_diag d;

	cr_assert_lt(bdr_schedule_parse(&s, value, &d), 0, "%s", value);
	refuse_value("schedule", value, d.msg);
}

static void refuse_rate(const char *value)
{
	struct bdr_rate_spec r = { .mode = BDR_RATE_UNLIMITED };
	struct bdr_diag d;

	cr_assert_lt(bdr_rate_parse(&r, value, &d), 0, "%s", value);
	refuse_value("rate", value, d.msg);
}

Test(config, bad_schedules_are_reported_on_their_line)
{
	/* schedule.h's example, word for word. */
	refuse_value("schedule", "weekdays 08-18 high;mon-fry 08-18 high",
		     "schedule rule 2 'mon-fry 08-18 high': unknown day 'fry'");
	refuse_schedule("mon 08-25 high");
	refuse_schedule("mon 08-18 loud");
	refuse_schedule("mon 08:30-18 high");
	refuse_schedule("someday all all");
	refuse_schedule("mon 08-18");

	/* On a later line, its rules are counted from 1 again; the lines
	 * before still apply, and each bad line is reported. */
	load_refused(MINIMAL PEER_BRANCH "address = a\n[address a]\nhost = 10.0.0.7:1\n"
				    "schedule = mon 08-18 high\n"              /* 10 */
				    "schedule = tue 25-26 high\n"              /* 11 */
				    "schedule = wed all all;thu all never\n"); /* 12 */
	cr_assert_eq(errs.n, 2, "%s", all_errors());
	expect_error(11, "[address a] schedule = tue 25-26 high: schedule rule 1 "
			 "'tue 25-26 high': hour '25' is out of range (00 to 24)");
	struct bdr_schedule s;
	struct bdr_diag d;
	cr_assert_lt(bdr_schedule_parse(&s, "wed all all;thu all never", &d), 0);
	cr_assert_not_null(strstr(d.msg, "schedule rule 2 "), "%s", d.msg);
	expect_error(12, "[address a] schedule = wed all all;thu all never: %s", d.msg);
}

Test(config, rates_and_capacities)
{
	const struct bdr_config_address *a;

	accept_value("rate", "08-18 256K, 18-08 unlimited");
	a = first_address();
	cr_assert_eq(a->rate.mode, BDR_RATE_HOURLY);
	cr_assert_eq(bdr_rate_at(&a->rate, 8), 262144);
	cr_assert_eq(bdr_rate_at(&a->rate, 7), 0);
	accept_value("rate", "2Mbit");
	for (int h = 0; h < 24; h++)
		cr_assert_eq(bdr_rate_at(&first_address()->rate, h), 250000);
	accept_value("rate", "pulse 64K 5s");
	cr_assert_eq(first_address()->rate.mode, BDR_RATE_PULSE);
	cr_assert_eq(first_address()->rate.block_bytes, 65536);
	cr_assert_eq(first_address()->rate.gap_ns, 5000000000ll);
	accept_value("rate", "unlimited");
	cr_assert_eq(first_address()->rate.mode, BDR_RATE_UNLIMITED);
	accept_value("capacity", "10Mbit");
	cr_assert_eq(first_address()->rate.capacity_bps, 1250000);
	cr_assert_eq(first_address()->rate.mode, BDR_RATE_UNLIMITED);

	refuse_rate("08-18 256Q");
	refuse_rate("2Mbps");
	refuse_rate("10-12 1M, 11-13 2M");
	refuse_rate("pulse 64K");
	refuse_rate("08-18 101%");
	refuse_rate("100bit");
	refuse_value("rate", "10-12 1M, 11-13 2M", "hours '11-13' overlap an earlier range");
	refuse_value("capacity", "50%", "capacity '50%': expected a rate such as 10Mbit");
	refuse_value("capacity", "unlimited", "capacity 'unlimited': expected a rate such as 10Mbit");

	/* A percentage needs the capacity, given before or after it. */
	load_refused(MINIMAL PEER_BRANCH "address = a\n[address a]\nhost = 10.0.0.7:1\n"
				    "rate = 08-18 50%\n"          /* 10 */
				    "[address b]\n");             /* 11: unused, no host */
	expect_error(10, "[address a] rate '08-18 50%%' needs the address's capacity");
	cr_assert_eq(errs.n, 3, "%s", all_errors());
	load_ok(MINIMAL PEER_BRANCH "address = a\n[address a]\nhost = 10.0.0.7:1\n"
				    "rate = 08-18 50%\ncapacity = 10Mbit\n");
	cr_assert_eq(bdr_rate_at(&first_address()->rate, 9), 625000);
	cr_assert_eq(bdr_rate_at(&first_address()->rate, 18), 0);
	load_ok(MINIMAL PEER_BRANCH "address = a\n[address a]\nhost = 10.0.0.7:1\n"
				    "capacity = 10Mbit\nrate = 100%\n");
	cr_assert_eq(bdr_rate_at(&first_address()->rate, 0), 1250000);

	/* The dump writes a rate on one line, in canonical form: one that
	 * would not fit there is refused, though it fits as written. */
	char v[256];
	for (int ranges = 19; ranges >= 12; ranges -= 7) {
		size_t used = 0;

		for (int h = 0; h < ranges; h++)
			used += (size_t)snprintf(v + used, sizeof(v) - used, "%s%d-%d %d",
						 h ? "," : "", h, h + 1, 125 * (h + 1));
		cr_assert_leq(strlen("rate = ") + strlen(v), 199);
		if (ranges == 19)
			refuse_value("rate", v, "too many different hourly rates: written in "
						"canonical form they take more than the 192 "
						"characters of a line");
		else
			accept_value("rate", v);
	}
	cr_assert_eq(bdr_rate_at(&first_address()->rate, 11), 1500);
}

static bool have_zone(const char *name)
{
	char path[PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "/usr/share/zoneinfo/%s", name);
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

Test(config, timezones)
{
	struct stat st;

	load_ok(MINIMAL);
	cr_assert_null(cfg.site.timezone, "not set: the zone bdrd was started in");
	accept_value("timezone", "UTC"); /* needs no file */
	cr_assert_str_eq(cfg.site.timezone, "UTC");
	if (have_zone("Europe/Paris")) {
		accept_value("timezone", "Europe/Paris");
		cr_assert_str_eq(cfg.site.timezone, "Europe/Paris");
	}
	if (have_zone("Etc/GMT+5"))
		accept_value("timezone", "Etc/GMT+5");
	if (have_zone("America/Argentina/Buenos_Aires"))
		accept_value("timezone", "America/Argentina/Buenos_Aires");

	refuse_value("timezone", "Europe/Pariss",
		     "unknown time zone: no file /usr/share/zoneinfo/Europe/Pariss");
	refuse_value("timezone", "Mars/Olympus_Mons",
		     "unknown time zone: no file /usr/share/zoneinfo/Mars/Olympus_Mons");
	if (stat("/usr/share/zoneinfo/Europe", &st) == 0 && S_ISDIR(st.st_mode))
		refuse_value("timezone", "Europe", "/usr/share/zoneinfo/Europe is not a time zone file");
	if (have_zone("zone.tab"))
		refuse_value("timezone", "zone.tab",
			     "/usr/share/zoneinfo/zone.tab is not a time zone file");
	/* Names stay inside the database. */
	const char *bad[] = { "../../../etc/passwd", "/etc/localtime", "Europe/../UTC",
			      "Europe//Paris", "Europe/Paris/", "./UTC", "Europe/Par is", "CET;" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		refuse_value("timezone", bad[i], "not a time zone name, such as Europe/Paris or UTC");
}

/* Rules split over as many schedule lines as it takes, each within the
 * line limit, load back to the same grid. */
Test(config, dump_splits_long_schedules)
{
	static const char *const days[] = { "mon", "tue", "wed", "thu", "fri", "sat", "sun" };
	static const char *const levels[] = { "closed", "high", "medium" };
	char text[16384];
	size_t used, n_lines = 0;

	used = (size_t)snprintf(text, sizeof(text),
				MINIMAL PEER_BRANCH "address = a\n[address a]\nhost = 10.0.0.7:1\n");
	for (int day = 0; day < 7; day++)
		for (int h = day % 3; h < 24; h += 3)
			used += (size_t)snprintf(text + used, sizeof(text) - used,
						 "schedule = %s %02d-%02d %s\n", days[day], h, h + 1,
						 levels[(day + h) % 3]);
	load_ok(text);
	struct bdr_config first = cfg;
	char *dump = dump_text(&first);

	memset(&cfg, 0, sizeof(cfg));
	for (char *line = dump, *end; *line; line = end + 1) {
		end = strchr(line, '\n');
		cr_assert_not_null(end);
		cr_assert_leq(end - line, 199, "%.*s", (int)(end - line), line);
		n_lines += strncmp(line, "schedule = ", 11) == 0;
	}
	cr_assert_gt(n_lines, 1, "%s", dump);
	load_ok(dump);
	cr_assert_arr_eq(&first_address()->schedule, &first.peers[0].address.v[0].schedule,
			 sizeof(struct bdr_schedule));
	cr_assert_eq(first_address()->schedule.cell[0][0], BDR_SCHED_CLOSED);
	cr_assert_eq(first_address()->schedule.cell[0][1], BDR_SCHED_ALL);
	free(dump);
	bdr_config_free(&first);
}

Test(config, public_keys)
{
	char v[128], why[128];

	snprintf(why, sizeof(why),
		 "not a base64 Ed25519 public key (%d characters, as bdrctl pubkey prints it)",
		 BDR_KEY_B64_LEN);
	accept_value("public_key", pk2_b64);
	cr_assert_arr_eq(cfg.peers[0].public_key, pk2, BDR_PK_LEN);

	snprintf(v, sizeof(v), "%.*s", BDR_KEY_B64_LEN - 1, pk2_b64);
	refuse_value("public_key", v, why);
	snprintf(v, sizeof(v), "%sA", pk2_b64);
	refuse_value("public_key", v, why);
	snprintf(v, sizeof(v), "%s", pk2_b64);
	v[10] = '!';
	refuse_value("public_key", v, why);
	/* Base64 of 31 bytes is also 44 characters; of 33 bytes, 44 without
	 * padding. Neither is a 32-byte key. */
	refuse_value("public_key", "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHw==", why);
	refuse_value("public_key", "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAh", why);
	/* URL-safe alphabet: not what bdrctl pubkey prints. */
	refuse_value("public_key", "_-__7__v_-__7__v_-__7__v_-__7__v_-__7__v_-8=", why);
}

Test(config, log_levels)
{
	const char *names[] = { "error", "warn", "info", "debug" };
	const enum bdr_log_level levels[] = { BDR_LOG_ERROR, BDR_LOG_WARN, BDR_LOG_INFO,
					      BDR_LOG_DEBUG };

	for (int i = 0; i < 4; i++) {
		accept_value("log_level", names[i]);
		cr_assert_eq(cfg.site.log_level, levels[i], "%s", names[i]);
	}
	refuse_value("log_level", "INFO", "must be one of error, warn, info, debug");
	refuse_value("log_level", "warning", "must be one of error, warn, info, debug");
	refuse_value("log_level", "trace", "must be one of error, warn, info, debug");
	refuse_value("log_level", "3", "must be one of error, warn, info, debug");
}

/* compression: which codecs HELLO offers (proto/wire.md, "Chunk codecs"). */
Test(config, compression_choices)
{
	const char *names[] = { "dictionary", "zlib", "zstd" };
	const enum bdr_compression v[] = { BDR_COMPRESSION_DICT, BDR_COMPRESSION_ZLIB,
					   BDR_COMPRESSION_ZSTD };

	load_ok(MINIMAL);
	cr_assert_eq(cfg.site.compression, BDR_COMPRESSION_ZSTD, "the default");
	for (int i = 0; i < 3; i++) {
		accept_value("compression", names[i]);
		cr_assert_eq(cfg.site.compression, v[i], "%s", names[i]);
	}
	refuse_value("compression", "zstd-dict", "must be dictionary, zlib or zstd");
	refuse_value("compression", "ZSTD", "must be dictionary, zlib or zstd");
}

Test(config, site_names)
{
	char name[80];

	accept_value("name", "a");
	cr_assert_str_eq(cfg.site.name, "a");
	accept_value("name", "Branch_Lyon-2.eu");
	cr_assert_str_eq(cfg.site.name, "Branch_Lyon-2.eu");
	memset(name, 'n', 64);
	name[64] = '\0';
	accept_value("name", name);
	cr_assert_eq(strlen(cfg.site.name), 64);
	name[64] = 'n';
	name[65] = '\0';
	refuse_value_like("name", name, "exceeds 64");
	refuse_value_like("name", ".hidden", "starts with '.'");
	refuse_value_like("name", "a+b", "is not allowed");
	refuse_value_like("name", "a/b", "is not allowed");
	refuse_value_like("name", "caf\xc3\xa9", "is not allowed");
}

Test(config, control_group)
{
	struct group *g = getgrnam(group);

	cr_assert_not_null(g);
	accept_value("control_group", group);
	cr_assert_str_eq(cfg.site.control_group.name, group);
	cr_assert_eq(cfg.site.control_group.gid, g->gr_gid);
	refuse_value("control_group", "bdr-test-no-such-group", "no such group");
}

Test(config, share_group)
{
	struct group *g = getgrnam(group);

	cr_assert_not_null(g);
	accept_value("share_group", group);
	cr_assert_str_eq(cfg.site.share_group.name, group);
	cr_assert_eq(cfg.site.share_group.gid, g->gr_gid);
	refuse_value("share_group", "bdr-test-no-such-group", "no such group");
}

Test(config, empty_values)
{
	load_refused(MINIMAL "[limits]\nmax_transfers =\n");
	cr_assert_eq(errs.n, 1, "%s", all_errors());
	expect_error(6, "[limits] max_transfers has no value");
	load_refused(MINIMAL "[limits]\nmax_transfers =    ; nothing\n");
	expect_error(6, "[limits] max_transfers has no value");
}

/* ---- syntax ---- */

Test(config, comments_blanks_and_indentation)
{
	load_ok("\xEF\xBB\xBF; bdr.conf with a byte order mark\r\n"
		"# a comment\r\n"
		"\r\n"
		"  [site]   ; the site\r\n"
		"\tname=central\r\n"
		"    key   =   /etc/bdr/site.key   \r\n"
		"data = /var/lib/bdr\r\n"
		"\t; indented comment\n"
		"    # another\n"
		"[ limits ]\n"
		"    max_transfers = 3\n"
		"  idle_timeout_s = 10\t; indented, not a continuation\n");
	cr_assert_str_eq(cfg.site.name, "central");
	cr_assert_str_eq(cfg.site.key, "/etc/bdr/site.key");
	cr_assert_str_eq(cfg.site.data, "/var/lib/bdr");
	cr_assert_eq(cfg.limits.max_transfers, 3);
	cr_assert_eq(cfg.limits.idle_timeout_s, 10);

	/* No newline at the end of the file. */
	load_ok(MINIMAL "[limits]\nmax_transfers = 4");
	cr_assert_eq(cfg.limits.max_transfers, 4);
}

Test(config, malformed_lines)
{
	load_refused("name = central\n"
		     MINIMAL
		     "keep_versions: 5\n"
		     "just words\n"
		     "= 5\n"
		     "[limits\n"
		     "[site extra]\n"
		     "[peer]\n"
		     "[peer bad/name]\n"
		     "[peer a b]\n"
		     "[]\n");
	expect_error(1, "'name' comes before any section: keys go under [site], [limits], "
			"[peer NAME] or [address NAME]");
	expect_error(6, "expected 'key = value' or '[section]'");
	expect_error(7, "expected 'key = value' or '[section]'");
	expect_error(8, "[site] missing key name before '='");
	expect_error(9, "a section line must end with ']'");
	expect_error(10, "[site] takes no name (found 'extra')");
	expect_error(11, "[peer] needs the peer's site name: [peer NAME]");
	cr_assert_lt(find_error(12, "[peer bad/name]: site 'bad/name': byte 0x2f at offset 3 is not "
				    "allowed (allowed: A-Z a-z 0-9 . _ -)"),
		     errs.n, "%s", all_errors());
	cr_assert_lt(find_error(13, "[peer a b]: site 'a b': byte 0x20 at offset 1 is not allowed "
				    "(allowed: A-Z a-z 0-9 . _ -)"),
		     errs.n, "%s", all_errors());
	expect_error(14, "unknown section []");
	cr_assert_eq(errs.n, 10, "%s", all_errors());
}

Test(config, nul_byte)
{
	static const char text[] = MINIMAL "[limits]\nmax_tr\0ansfers = 4\nmax_connections = 0\n";

	tu_write(conf, text, sizeof(text) - 1);
	cr_assert_eq(load_file(conf), -BDR_EFORMAT);
	expect_error(6, "line contains a NUL byte");
	expect_error(7, "[limits] max_connections = 0: must be between 1 and 4096");
	cr_assert_eq(errs.n, 2, "%s", all_errors());
}

/* 199 characters besides indentation and comment; longer lines are one
 * error each, and the lines after them keep their numbers. */
Test(config, long_lines)
{
	char text[16384], val[4096];

	/* "data = /..." of exactly 199 characters, indented and commented. */
	memset(val, 'd', sizeof(val));
	val[0] = '/';
	val[199 - 7] = '\0';
	snprintf(text, sizeof(text),
		 "[site]\nname = central\nkey = /k\n     data = %s   ; %0100d\n"
		 "[limits]\nmax_transfers = 9\n",
		 val, 0);
	load_ok(text);
	cr_assert_eq(strlen(cfg.site.data), 192);
	cr_assert_eq(cfg.limits.max_transfers, 9, "the line after a full one is its own");

	/* 200 characters. */
	val[199 - 7] = 'd';
	val[200 - 7] = '\0';
	snprintf(text, sizeof(text),
		 "[site]\nname = central\nkey = /k\ndata = %s\n[limits]\nmax_transfers = 0\n", val);
	load_refused(text);
	expect_error(4, "line too long: at most 199 characters, besides indentation and comments");
	expect_error(6, "[limits] max_transfers = 0: must be between 1 and 1024");

	/* Much longer than any buffer, and several of them. */
	val[3000] = '\0';
	snprintf(text, sizeof(text),
		 "[site]\nname = central\nkey = /k\ndata = %s\n"
		 "# %s\n"
		 "[limits]\nmax_transfers = %s\nmax_connections = 0\n",
		 val, val, val);
	load_refused(text);
	expect_error(4, "line too long: at most 199 characters, besides indentation and comments");
	expect_error(7, "line too long: at most 199 characters, besides indentation and comments");
	expect_error(8, "[limits] max_connections = 0: must be between 1 and 4096");
	for (size_t i = 0; i < errs.n; i++)
		cr_assert_neq(errs.v[i].line, 5, "a long comment is fine: %s", errs.v[i].text);
}

/* ---- errors ---- */

Test(config, unknown_sections_and_keys)
{
	load_refused(MINIMAL
		     "colour = blue\n"              /* 5 */
		     "max_transfers = 3\n"          /* 6 */
		     "public_key = x\n"             /* 7 */
		     "[adress paris]\n"             /* 8 */
		     "rate = 1M\n"                  /* 9: not reported again */
		     "[limits]\n"                   /* 10 */
		     "listen = 0.0.0.0:1\n"         /* 11 */
		     "max_transfer = 3\n"           /* 12 */
		     "[peer lyon]\n"                /* 13 */
		     "public_key = yqRwV0H6bTfvOGrNLBkXwkbH/mbaJkw46AyV/40pTYc=\n"
		     "Address = 10.0.0.1:1\n"       /* 15: keys are case-sensitive */
		     "[Site]\n");                   /* 16 */
	expect_error(5, "[site] unknown key 'colour'");
	expect_error(6, "[site] unknown key 'max_transfers' (it belongs in [limits])");
	expect_error(7, "[site] unknown key 'public_key' (it belongs in [peer NAME])");
	expect_error(8, "unknown section [adress paris]");
	expect_error(11, "[limits] unknown key 'listen' (it belongs in [site])");
	expect_error(12, "[limits] unknown key 'max_transfer'");
	expect_error(15, "[peer lyon] unknown key 'Address'");
	expect_error(16, "unknown section [Site]");
	cr_assert_eq(errs.n, 8, "%s", all_errors());
}

Test(config, missing_required_keys)
{
	load_refused("[site]\nlisten = [::]:7411\n"
		     "[limits]\n"
		     "[peer branch-lyon]\naddress = lyon.example:7411\n"
		     "[peer branch-paris]\npublic_key = yqRwV0H6bTfvOGrNLBkXwkbH/mbaJkw46AyV/40pTYc=\n");
	expect_error(1, "[site] is missing the required key 'name'");
	expect_error(1, "[site] is missing the required key 'key'");
	expect_error(1, "[site] is missing the required key 'data'");
	expect_error(4, "[peer branch-lyon] is missing the required key 'public_key'");
	cr_assert_eq(errs.n, 4, "%s", all_errors());

	/* No [site] at all: said once, about the file. */
	load_refused("[limits]\nmax_transfers = 2\n");
	cr_assert_eq(errs.n, 1, "%s", all_errors());
	expect_error(0, "missing the [site] section");
	cr_assert_eq(errs.v[0].line, 0);
	load_refused("");
	expect_error(0, "missing the [site] section");
	load_refused("; only a comment\n");
	expect_error(0, "missing the [site] section");
}

Test(config, duplicates)
{
	load_refused(MINIMAL
		     "keep_versions = 3\n"  /* 5 */
		     "keep_versions = 4\n"  /* 6 */
		     "name = other\n"       /* 7 */
		     "[limits]\n"           /* 8 */
		     "[site]\n"             /* 9 */
		     "name = third\n"       /* 10: skipped with its section */
		     "[limits]\n"           /* 11 */
		     "[peer a]\n"           /* 12 */
		     "public_key = yqRwV0H6bTfvOGrNLBkXwkbH/mbaJkw46AyV/40pTYc=\n"
		     "public_key = yqRwV0H6bTfvOGrNLBkXwkbH/mbaJkw46AyV/40pTYc=\n" /* 14 */
		     "[peer b]\n"           /* 15 */
		     "public_key = A8y7QzQT64Qo7MJzcbSjdgECLY/DmpMP0lHtX/3dDoI=\n"
		     "[peer a]\n"           /* 17 */
		     "public_key = NHhfanjKLvLfjhmxhrHgqOP7GdWXF6E8V9WNLHm8eDo=\n");
	expect_error(6, "[site] keep_versions is set twice (first on line 5)");
	expect_error(7, "[site] name is set twice (first on line 2)");
	expect_error(9, "[site] appears twice (first on line 1)");
	expect_error(11, "[limits] appears twice (first on line 8)");
	expect_error(14, "[peer a] public_key is set twice (first on line 13)");
	expect_error(17, "[peer a] appears twice (first on line 12)");
	cr_assert_eq(errs.n, 6, "%s", all_errors());

	/* An invalid first value still counts as set. */
	load_refused(MINIMAL "keep_versions = 0\nkeep_versions = 2\n");
	expect_error(5, "[site] keep_versions = 0: must be between 1 and 100");
	expect_error(6, "[site] keep_versions is set twice (first on line 5)");
	cr_assert_eq(errs.n, 2, "%s", all_errors());
}

Test(config, peers_against_the_site_and_each_other)
{
	char text[2048];

	snprintf(text, sizeof(text),
		 MINIMAL "[peer central]\npublic_key = %s\n"  /* 5 */
			 "[peer lyon]\npublic_key = %s\n"     /* 7 */
			 "[peer paris]\npublic_key = %s\n",   /* 9 */
		 pk1_b64, pk2_b64, pk2_b64);
	load_refused(text);
	expect_error(5, "[peer central] is this site's own name");
	expect_error(9, "[peer paris] public_key is the same as [peer lyon]'s (line 7)");
	cr_assert_eq(errs.n, 2, "%s", all_errors());

	/* Names are case-sensitive, as everywhere in bdr. */
	snprintf(text, sizeof(text),
		 MINIMAL "[peer Central]\npublic_key = %s\n[peer lyon]\npublic_key = %s\n"
			 "[peer LYON]\npublic_key = %s\n",
		 pk1_b64, pk2_b64, "A8y7QzQT64Qo7MJzcbSjdgECLY/DmpMP0lHtX/3dDoI=");
	load_ok(text);
	cr_assert_eq(cfg.n_peers, 3);
	cr_assert_str_eq(cfg.peers[0].name, "Central");
	cr_assert_eq(cfg.peers[0].line, 5);
	cr_assert_eq(cfg.peers[2].line, 9);
	cr_assert_eq(bdr_config_peer(&cfg, "LYON"), &cfg.peers[2]);
	cr_assert_arr_eq(bdr_config_peer(&cfg, "lyon")->public_key, pk2, BDR_PK_LEN);
	cr_assert_null(bdr_config_peer(&cfg, "paris"));

	/* A long peer name is not cut (inih's own section buffer is 50). */
	char name[65];
	memset(name, 'p', 64);
	name[64] = '\0';
	snprintf(text, sizeof(text), MINIMAL "[peer %s]\npublic_key = %s\n", name, pk1_b64);
	load_ok(text);
	cr_assert_str_eq(cfg.peers[0].name, name);
	snprintf(text, sizeof(text), MINIMAL "[peer %sq]\npublic_key = %s\n", name, pk1_b64);
	load_refused(text);
	cr_assert_eq(errs.n, 1, "%s", all_errors());
	cr_assert_eq(errs.v[0].line, 5);
}

/* ORIGINS: packages is a list of package names, canonical once read;
 * accept resolves auto by the relation; two peers that send only their own
 * versions cannot both be a package's origin. */
Test(config, packages_and_accept)
{
	char text[2048];

	accept_value("packages", " app ,tools,  lib+x ");
	cr_assert_str_eq(cfg.peers[0].packages, "app,tools,lib+x");
	cr_assert(bdr_config_peer_lists(&cfg.peers[0], "tools"));
	cr_assert(bdr_config_peer_lists(&cfg.peers[0], "lib+x"));
	cr_assert_not(bdr_config_peer_lists(&cfg.peers[0], "tool"));
	cr_assert_not(bdr_config_peer_lists(&cfg.peers[0], "app,tools"));
	cr_assert_not(bdr_config_peer_relays(&cfg.peers[0]), "auto: own from a plain peer");
	refuse_value("packages", "app,app", "'app' is named twice");
	refuse_value("packages", "app,,tools", "an empty package name (leave the key out for any package)");
	refuse_value("packages", "app,", "an empty package name (leave the key out for any package)");
	refuse_value_like("packages", "app,.hidden", "leave the key out for any package");
	refuse_value("accept", "mine", "must be auto, own or relayed");

	/* Not set: any package. */
	accept_value("accept", "relayed");
	cr_assert_null(cfg.peers[0].packages);
	cr_assert(bdr_config_peer_lists(&cfg.peers[0], "anything"));
	cr_assert(bdr_config_peer_relays(&cfg.peers[0]));

	snprintf(text, sizeof(text),
		 MINIMAL "[peer hq]\npublic_key = %s\npackages = app,tools\n"        /* 5 */
			 "[peer rogue]\npublic_key = %s\npackages = lib,tools\n", /* 8 */
		 pk1_b64, pk2_b64);
	load_refused(text);
	expect_error(8, "[peer rogue] packages names tools, of which [peer hq] (line 5) is the "
			"origin already: a package has one origin");
	cr_assert_eq(errs.n, 1, "%s", all_errors());

	/* A parent (auto: relayed) or a relaying peer may list the same package. */
	snprintf(text, sizeof(text),
		 MINIMAL "[peer hq]\npublic_key = %s\npackages = app,tools\n"
			 "[peer up]\npublic_key = %s\npackages = tools\nrelation = parent\n",
		 pk1_b64, pk2_b64);
	load_ok(text);
	cr_assert_not(bdr_config_peer_relays(&cfg.peers[0]));
	cr_assert(bdr_config_peer_relays(&cfg.peers[1]));
	snprintf(text, sizeof(text),
		 MINIMAL "[peer hq]\npublic_key = %s\npackages = app\n"
			 "[peer up]\npublic_key = %s\npackages = app\nrelation = parent\n"
			 "accept = own\n",
		 pk1_b64, pk2_b64);
	load_refused(text);
	cr_assert_eq(errs.n, 1, "%s", all_errors());
}

/* The hierarchy: at most one parent; a dp has no children; the role and
 * relations read back. */
Test(config, hierarchy_relations)
{
	static const char pk3[] = "A8y7QzQT64Qo7MJzcbSjdgECLY/DmpMP0lHtX/3dDoI=";
	char text[2048];

	snprintf(text, sizeof(text),
		 MINIMAL "[peer up]\npublic_key = %s\nrelation = parent\n"
			 "[peer dp1]\npublic_key = %s\nrelation = child\n"
			 "[peer other]\npublic_key = %s\n",
		 pk1_b64, pk2_b64, pk3);
	load_ok(text);
	cr_assert_eq(cfg.site.role, BDR_ROLE_SITE);
	cr_assert_eq(bdr_config_parent(&cfg), &cfg.peers[0]);
	cr_assert_eq(cfg.peers[1].relation, BDR_REL_CHILD);
	cr_assert_eq(cfg.peers[2].relation, BDR_REL_PEER);

	snprintf(text, sizeof(text),
		 MINIMAL "role = dp\n[peer up]\npublic_key = %s\nrelation = parent\n" /* 6 */
			 "[peer up2]\npublic_key = %s\nrelation = parent\n"          /* 9 */
			 "[peer low]\npublic_key = %s\nrelation = child\n"           /* 12 */
			 "[peer x]\npublic_key = %s\nrelation = sibling\n",          /* 15 */
		 pk1_b64, pk2_b64, pk3, "3LsjOw3gHpI0+50DNTLu7m06v0MnzXCjTRTwAnQZoXM=");
	load_refused(text);
	expect_error(9, "[peer up2] relation = parent, but [peer up] (line 6) is this site's "
			"parent already");
	expect_error(12, "[peer low] relation = child, but this site's role is dp, which relays "
			 "nothing");
	cr_assert_eq(errs.n, 3, "%s", all_errors());
	cr_assert_not_null(strstr(all_errors(), "must be peer, parent or child"), "%s",
			   all_errors());

	snprintf(text, sizeof(text), MINIMAL "role = relay\n");
	load_refused(text);
	cr_assert_not_null(strstr(all_errors(), "must be site or dp"), "%s", all_errors());
}

/* Every problem is reported, each with its line, sorted by line even when
 * found later (a missing key is known only at the end of its section). */
Test(config, every_problem_reported_in_line_order)
{
	load_refused("[site]\n"                       /* 1: missing key */
		     "name = central\n"               /* 2 */
		     "data = var/lib/bdr\n"           /* 3 */
		     "log_level = loud\n"             /* 4 */
		     "[limits]\n"                     /* 5 */
		     "max_transfers = 0\n"            /* 6 */
		     "[peer lyon]\n"                  /* 7: missing public_key */
		     "address = lyon\n"               /* 8 */
		     "[peer central]\n"               /* 9: own name */
		     "public_key = yqRwV0H6bTfvOGrNLBkXwkbH/mbaJkw46AyV/40pTYc=\n"
		     "[nope]\n");                     /* 11 */
	const unsigned lines[] = { 1, 3, 4, 6, 7, 8, 9, 11 };
	cr_assert_eq(errs.n, 8, "%s", all_errors());
	for (size_t i = 0; i < errs.n; i++) {
		char head[PATH_MAX + 16];

		cr_assert_eq(errs.v[i].line, lines[i], "error %zu:%s", i, all_errors());
		snprintf(head, sizeof(head), "%s:%u: ", conf, lines[i]);
		cr_assert_eq(strncmp(errs.v[i].text, head, strlen(head)), 0, "%s", errs.v[i].text);
	}
	expect_error(1, "[site] is missing the required key 'key'");
	expect_error(3, "[site] data = var/lib/bdr: must be an absolute path");
	expect_error(4, "[site] log_level = loud: must be one of error, warn, info, debug");
	expect_error(6, "[limits] max_transfers = 0: must be between 1 and 1024");
	expect_error(7, "[peer lyon] is missing the required key 'public_key'");
	expect_error(8, "[peer lyon] address 'lyon': no [address lyon] section");
	expect_error(9, "[peer central] is this site's own name");
	expect_error(11, "unknown section [nope]");

	/* errs may be NULL. */
	cr_assert_eq(bdr_config_load(conf, &cfg, NULL), -BDR_EFORMAT);
	cr_assert_null(cfg.path);
}

Test(config, errors_are_capped)
{
	size_t cap = 64 * 1024, used;
	char *text = malloc(cap);

	used = (size_t)snprintf(text, cap, MINIMAL);
	for (int i = 0; i < 3 * BDR_CONFIG_MAX_ERRORS; i++)
		used += (size_t)snprintf(text + used, cap - used, "bogus%d = 1\n", i);
	load_refused(text);
	cr_assert_eq(errs.n, BDR_CONFIG_MAX_ERRORS, "at most %d lines, got %zu",
		     BDR_CONFIG_MAX_ERRORS, errs.n);
	for (size_t i = 0; i + 1 < errs.n; i++) {
		cr_assert_eq(errs.v[i].line, 5 + i, "%s", errs.v[i].text);
		expect_error(5 + (unsigned)i, "[site] unknown key 'bogus%zu'", i);
	}
	cr_assert_eq(errs.v[errs.n - 1].line, errs.v[errs.n - 2].line,
		     "the last line says where reading stopped");
	cr_assert_not_null(strstr(errs.v[errs.n - 1].text, "too many errors"), "%s",
			   errs.v[errs.n - 1].text);

	/* Problems found at the end of a section (a missing key, reported on
	 * the section's line) do not push the note out of last place. */
	used = (size_t)snprintf(text, cap, "[site]\nname = central\n");
	for (int i = 0; i < BDR_CONFIG_MAX_ERRORS - 2; i++)
		used += (size_t)snprintf(text + used, cap - used, "bogus%d = 1\n", i);
	used += (size_t)snprintf(text + used, cap - used, "[limits]\n");
	for (int i = 0; i < BDR_CONFIG_MAX_ERRORS; i++)
		used += (size_t)snprintf(text + used, cap - used, "bogus%d = 1\n", i);
	load_refused(text);
	expect_error(1, "[site] is missing the required key 'key'");
	cr_assert_eq(errs.n, BDR_CONFIG_MAX_ERRORS);
	cr_assert_not_null(strstr(errs.v[errs.n - 1].text, "too many errors"), "%s",
			   all_errors());
	for (size_t i = 1; i < errs.n; i++)
		cr_assert_leq(errs.v[i - 1].line, errs.v[i].line, "sorted:%s", all_errors());
	free(text);
}

Test(config, unreadable_file)
{
	char path[PATH_MAX];
	int rc;

	snprintf(path, sizeof(path), "%s/missing.conf", dir);
	rc = load_file(path);
	cr_assert_eq(rc, -ENOENT);
	cr_assert_eq(errs.n, 1);
	char want[PATH_MAX + 64];
	snprintf(want, sizeof(want), "%s: cannot open: No such file or directory", path);
	cr_assert_str_eq(errs.v[0].text, want);
	cr_assert_null(cfg.path);

	/* Not readable by this user (root reads anything). */
	if (geteuid() != 0) {
		tu_write(conf, MINIMAL, strlen(MINIMAL));
		cr_assert_eq(chmod(conf, 0), 0);
		rc = load_file(conf);
		cr_assert_eq(rc, -EACCES, "%d", rc);
		cr_assert_eq(errs.n, 1, "%s", all_errors());
		snprintf(want, sizeof(want), "%s: cannot open: Permission denied", conf);
		cr_assert_str_eq(errs.v[0].text, want);
		cr_assert_null(cfg.path);
	}

	/* A directory opens but cannot be read. */
	rc = load_file(dir);
	cr_assert_eq(rc, -EISDIR, "%d", rc);
	cr_assert_eq(errs.n, 1, "%s", all_errors());
	cr_assert_eq(strncmp(errs.v[0].text, dir, strlen(dir)), 0);
	cr_assert_not_null(strstr(errs.v[0].text, "cannot read: Is a directory"), "%s",
			   errs.v[0].text);
	cr_assert_null(cfg.path);
}

/* ---- dump ---- */

#define FULL                                                                                   \
	"[site]\n"                                                                             \
	"name = central\n"                                                                     \
	"listen = [2001:db8::1]:7500\n"                                                        \
	"key = /etc/bdr/central.key\n"                                                         \
	"data = /srv/bdr data\n"                                                               \
	"control = /run/bdr-test/control.sock\n"                                               \
	"control_group = %s\n"                                                                 \
	"log_level = debug\n"                                                                  \
	"keep_versions = 12\n"                                                                 \
	"chunk_avg = 16384\n"                                                                  \
	"timezone = UTC\n"                                                                     \
	"[limits]\n"                                                                           \
	"max_manifest_bytes = 3145728\n"                                                       \
	"max_inflight_bytes = 1000000\n"                                                       \
	"max_connections = 7\n"                                                                \
	"connect_timeout_s = 30\n"                                                             \
	"idle_timeout_s = 3600\n"                                                              \
	"max_transfers = 2\n"                                                                  \
	"max_transfers_per_peer = 5\n"                                                         \
	"[address paris-line]\n"                                                               \
	"capacity = 1000000\n"                                                                 \
	"rate = 00-07 100%%, 7-19 25%%\n"                                                       \
	"host = [2001:db8:30::1]:7411\n"                                                       \
	"[peer lyon]\n"                                                                        \
	"public_key = %s\n"                                                                    \
	"address = lyon.example.net:7411\n"                                                    \
	"address = lyon-dsl\n"                                                                 \
	"address = [2001:db8:20::5]:7411\n"                                                    \
	"address = 10.1.2.3:9\n"                                                               \
	"[address lyon-dsl]\n"                                                                 \
	"host = dsl.lyon.example.net:7412\n"                                                   \
	"schedule = weekdays 08-18 high;Sat-Sun 0-24 closed\n"                                 \
	"schedule = sun 20:00-24 MEDIUM\n"                                                     \
	"rate = 08-18 256K, 18-8 1000000\n"                                                    \
	"[peer paris]\n"                                                                       \
	"public_key = %s\n"                                                                    \
	"address = paris-line\n"                                                               \
	"packages = tools ,app\n"                                                              \
	"accept = relayed\n"

Test(config, dump_loads_back_to_the_same_configuration)
{
	for (int i = 0; i < 2; i++) {
		char text[4096];
		struct bdr_config_diff d;

		if (i == 0)
			snprintf(text, sizeof(text), MINIMAL);
		else
			snprintf(text, sizeof(text), FULL, group, pk1_b64, pk2_b64);
		load_ok(text);
		struct bdr_config first = cfg;
		char *dump = dump_text(&first);

		memset(&cfg, 0, sizeof(cfg));
		/* Loaded again from the same path, so even the header matches. */
		load_ok(dump);
		char *again = dump_text(&cfg);
		cr_assert_str_eq(again, dump);
		cr_assert_eq(bdr_config_diff(&first, &cfg, &d), 0);
		cr_assert_eq(d.n, 0, "%s", d.n ? d.v[0].text : "");
		bdr_config_diff_free(&d);
		if (i == 1) {
			cr_assert_not_null(strstr(dump, "control_group = "));
			cr_assert_not_null(strstr(dump, "chunk_avg = 16K\n"), "%s", dump);
			cr_assert_not_null(strstr(dump, "max_manifest_bytes = 3M\n"), "%s", dump);
			cr_assert_not_null(strstr(dump, "max_inflight_bytes = 1000000\n"));
			cr_assert_not_null(strstr(dump, "listen = [2001:db8::1]:7500\n"));
			cr_assert_not_null(strstr(dump, "data = /srv/bdr data\n"));
			cr_assert_not_null(strstr(dump, "address = lyon.example.net:7411\n"
							"address = lyon-dsl\n"
							"address = [2001:db8:20::5]:7411\n"
							"address = 10.1.2.3:9\n"));
			cr_assert_not_null(strstr(dump, "timezone = UTC\n"), "%s", dump);
			cr_assert_not_null(strstr(dump, "max_transfers_per_peer = 5\n"), "%s", dump);
			/* Canonical schedules and rates, each section after its peer. */
			cr_assert_not_null(strstr(dump, "\n[address lyon-dsl]\n"
							"host = dsl.lyon.example.net:7412\n"
							"schedule = weekdays 08-18 high; sat all "
							"closed; sun 00-20 closed; sun 20-24 medium\n"
							"rate = 08-18 256K, 18-08 8Mbit\n"
							"\n[peer paris]\n"),
					   "%s", dump);
			cr_assert_not_null(strstr(dump, "address = paris-line\n"
							"relation = peer\n"
							"packages = tools,app\n"
							"accept = relayed\n"
							"\n[address paris-line]\n"
							"host = [2001:db8:30::1]:7411\n"
							"schedule = all all all\n"
							"rate = 00-07 100%, 07-19 25%\n"
							"capacity = 8Mbit\n"),
					   "%s", dump);
			cr_assert_null(strstr(dump, "capacity = \n"), "unset: left out");
			const struct bdr_config_address *dsl = &cfg.peers[0].address.v[1];
			cr_assert_str_eq(dsl->name, "lyon-dsl");
			cr_assert_arr_eq(&dsl->schedule, &first.peers[0].address.v[1].schedule,
					 sizeof(dsl->schedule));
			cr_assert(bdr_rate_equal(&dsl->rate, &first.peers[0].address.v[1].rate));
			cr_assert(bdr_rate_equal(&cfg.peers[1].address.v[0].rate,
						 &first.peers[1].address.v[0].rate));
			cr_assert_eq(cfg.peers[1].address.v[0].rate.capacity_bps, 1000000);
			cr_assert_eq(cfg.n_peers, 2);
			cr_assert_arr_eq(cfg.peers[1].public_key, pk2, BDR_PK_LEN);
			cr_assert_eq(cfg.site.log_level, BDR_LOG_DEBUG);
			cr_assert_eq(cfg.limits.idle_timeout_s, 3600);
		} else {
			cr_assert_null(strstr(dump, "control_group"), "unset keys are left out");
		}
		free(again);
		free(dump);
		bdr_config_free(&first);
	}
}

/* A dump that cannot be written says so. */
Test(config, dump_reports_write_errors)
{
	FILE *f = fopen("/dev/full", "w");

	if (!f)
		cr_skip_test("no /dev/full");
	load_ok(MINIMAL);
	cr_assert_eq(bdr_config_dump(&cfg, f), -EIO);
	fclose(f);
}

/* ---- reload ---- */

static struct bdr_config load_other(const char *text)
{
	char path[PATH_MAX];
	struct bdr_config c;
	struct bdr_config_errors e = { 0 };
	int rc;

	snprintf(path, sizeof(path), "%s/next.conf", dir);
	tu_write(path, text, strlen(text));
	rc = bdr_config_load(path, &c, &e);
	cr_assert_eq(rc, 0, "%s", e.n ? e.v[0].text : "");
	bdr_config_errors_free(&e);
	return c;
}

static const struct bdr_config_change *change_of(const struct bdr_config_diff *d, const char *text)
{
	for (size_t i = 0; i < d->n; i++)
		if (strcmp(d->v[i].text, text) == 0)
			return &d->v[i];
	cr_assert_fail("no change '%s'", text);
	return NULL;
}

Test(config, diff_lists_changes_and_marks_restarts)
{
	char a[4096], b[4096];
	struct bdr_config_diff d;

	snprintf(a, sizeof(a), MINIMAL
		 "[peer lyon]\npublic_key = %s\naddress = lyon.example:1\n"
		 "[peer paris]\npublic_key = %s\n",
		 pk1_b64, pk2_b64);
	snprintf(b, sizeof(b),
		 "[site]\nname = central\nkey = /etc/bdr/site.key\ndata = /var/lib/bdr\n"
		 "listen = [::]:7411\nlog_level = debug\n"
		 "[limits]\nmax_transfers = 4\n"
		 "[peer lyon]\npublic_key = %s\naddress = lyon.example:1\naddress = 10.0.0.1:2\n"
		 "[peer nice]\npublic_key = %s\n",
		 pk2_b64, pk1_b64);
	load_ok(a);
	struct bdr_config next = load_other(b);

	/* No change against itself. */
	cr_assert_eq(bdr_config_diff(&cfg, &cfg, &d), 0);
	cr_assert_eq(d.n, 0);
	cr_assert_not(d.restart_needed);
	bdr_config_diff_free(&d);

	cr_assert_eq(bdr_config_diff(&cfg, &next, &d), 0);
	cr_assert_eq(d.n, 7, "%zu changes", d.n);
	const struct bdr_config_change *c;
	c = change_of(&d, "[site] listen = 0.0.0.0:7411 -> [::]:7411");
	cr_assert_not(c->reloadable);
	cr_assert_eq(c->key, key_named("listen"));
	cr_assert_str_eq(c->peer, "");
	c = change_of(&d, "[site] log_level = info -> debug");
	cr_assert(c->reloadable);
	c = change_of(&d, "[limits] max_transfers = 8 -> 4");
	cr_assert(c->reloadable);
	cr_assert_eq(c->key, key_named("max_transfers"));
	char t[256];
	snprintf(t, sizeof(t), "[peer lyon] public_key = %s -> %s", pk1_b64, pk2_b64);
	c = change_of(&d, t);
	cr_assert(c->reloadable);
	cr_assert_str_eq(c->peer, "lyon");
	c = change_of(&d, "[peer lyon] address = lyon.example:1 -> lyon.example:1 10.0.0.1:2");
	cr_assert(c->reloadable);
	cr_assert_eq(c->key, key_named("address"));
	c = change_of(&d, "[peer paris] removed");
	cr_assert_null(c->key);
	cr_assert_str_eq(c->peer, "paris");
	cr_assert(c->reloadable, "peers come and go on a reload");
	c = change_of(&d, "[peer nice] added");
	cr_assert_null(c->key);
	cr_assert(c->reloadable);
	cr_assert(d.restart_needed, "listen changed");
	/* Table order: [site], then [limits], then peers. */
	cr_assert_eq(d.v[0].key, key_named("listen"));
	cr_assert_eq(d.v[1].key, key_named("log_level"));
	cr_assert_eq(d.v[2].key, key_named("max_transfers"));
	bdr_config_diff_free(&d);
	cr_assert_eq(d.n, 0);
	cr_assert_null(d.v);

	/* Only reloadable changes: no restart needed. Unset to set shows. */
	bdr_config_free(&next);
	snprintf(b, sizeof(b), MINIMAL "control_group = %s\n", group);
	next = load_other(b);
	load_ok(MINIMAL "log_level = warn\n");
	cr_assert_eq(bdr_config_diff(&cfg, &next, &d), 0);
	cr_assert_eq(d.n, 2);
	snprintf(t, sizeof(t), "[site] control_group = (unset) -> %s", group);
	cr_assert_not(change_of(&d, t)->reloadable);
	cr_assert(change_of(&d, "[site] log_level = warn -> info")->reloadable);
	cr_assert(d.restart_needed);
	bdr_config_diff_free(&d);
	load_ok(MINIMAL "[limits]\nmax_connections = 9\nidle_timeout_s = 60\n");
	bdr_config_free(&next);
	next = load_other(MINIMAL "[limits]\nmax_connections = 10\n");
	cr_assert_eq(bdr_config_diff(&cfg, &next, &d), 0);
	cr_assert_eq(d.n, 2);
	cr_assert(change_of(&d, "[limits] max_connections = 9 -> 10")->reloadable);
	cr_assert(change_of(&d, "[limits] idle_timeout_s = 60 -> 120")->reloadable);
	cr_assert_not(d.restart_needed);
	bdr_config_diff_free(&d);
	bdr_config_free(&next);
}

/* Schedules and rates are reloadable, section by section. */
Test(config, diff_lists_address_changes)
{
	struct bdr_config_diff d;
	const struct bdr_config_change *c;

	load_ok(MINIMAL PEER_BRANCH "address = mpls\naddress = old\n"
				    "[address mpls]\nhost = 10.0.0.7:7411\n"
				    "schedule = weekdays 08-18 high\nrate = 1M\n"
				    "[address old]\nhost = 10.0.0.8:1\n");
	struct bdr_config next = load_other(
		MINIMAL "timezone = UTC\n[limits]\nmax_transfers_per_peer = 3\n"
		PEER_BRANCH "address = mpls\naddress = new\n"
		"[address mpls]\nhost = 10.0.0.7:7411\n"
		"schedule = weekdays 08-18 high\nschedule = fri 18-19 high\n"
		"rate = 2M\ncapacity = 10Mbit\n"
		"[address new]\nhost = 10.0.0.9:1\n");

	cr_assert_eq(bdr_config_diff(&cfg, &next, &d), 0);
	for (size_t i = 0; i < d.n; i++)
		cr_assert(d.v[i].reloadable, "%s", d.v[i].text);
	cr_assert_not(d.restart_needed);
	cr_assert_eq(d.n, 8, "%zu changes", d.n);
	c = change_of(&d, "[site] timezone = (unset) -> UTC");
	cr_assert_eq(c->key, key_named("timezone"));
	change_of(&d, "[limits] max_transfers_per_peer = 2 -> 3");
	c = change_of(&d, "[peer branch] address = mpls old -> mpls new");
	cr_assert_str_eq(c->address, "");
	c = change_of(&d, "[address mpls] schedule = weekdays 08-18 high -> "
			  "mon-thu 08-18 high; fri 08-19 high");
	cr_assert_eq(c->key, key_named("schedule"));
	cr_assert_str_eq(c->peer, "branch");
	cr_assert_str_eq(c->address, "mpls");
	c = change_of(&d, "[address mpls] rate = 1M -> 2M");
	cr_assert_eq(c->key, key_named("rate"));
	c = change_of(&d, "[address mpls] capacity = (unset) -> 10Mbit");
	cr_assert_eq(c->key, key_named("capacity"));
	c = change_of(&d, "[address old] removed");
	cr_assert_null(c->key);
	cr_assert_str_eq(c->address, "old");
	cr_assert_str_eq(c->peer, "branch");
	c = change_of(&d, "[address new] added");
	cr_assert_null(c->key);
	cr_assert_str_eq(c->address, "new");
	bdr_config_diff_free(&d);

	/* A host change shows in the section, not in the peer's list. */
	bdr_config_free(&next);
	next = load_other(MINIMAL PEER_BRANCH "address = mpls\naddress = old\n"
					      "[address mpls]\nhost = 10.0.0.70:7411\n"
					      "schedule = weekdays 08-18 high\nrate = 1M\n"
					      "[address old]\nhost = 10.0.0.8:1\n");
	cr_assert_eq(bdr_config_diff(&cfg, &next, &d), 0);
	cr_assert_eq(d.n, 1, "%zu changes", d.n);
	cr_assert_str_eq(d.v[0].text, "[address mpls] host = 10.0.0.7:7411 -> 10.0.0.70:7411");
	cr_assert(d.v[0].reloadable);
	bdr_config_diff_free(&d);

	/* keep_fixed leaves every address as the new file has it. */
	bdr_config_keep_fixed(&next, &cfg);
	cr_assert_str_eq(bdr_config_peer(&next, "branch")->address.v[0].host, "10.0.0.70");
	cr_assert_str_eq(bdr_config_peer(&cfg, "branch")->address.v[0].host, "10.0.0.7");
	bdr_config_free(&next);
}

/* The reload sequence of config.h: the running values of the keys a reload
 * may not change survive, at the same addresses; the rest is new. */
Test(config, keep_fixed_keeps_running_values)
{
	char b[4096];
	struct bdr_config_diff d;

	load_ok("[site]\nname = central\nkey = /etc/bdr/site.key\ndata = /var/lib/bdr\n"
		"keep_versions = 3\n"
		"[peer lyon]\npublic_key = yqRwV0H6bTfvOGrNLBkXwkbH/mbaJkw46AyV/40pTYc=\n");
	char *name = cfg.site.name, *data = cfg.site.data, *control = cfg.site.control;
	snprintf(b, sizeof(b),
		 "[site]\nname = renamed\nkey = /etc/bdr/other.key\ndata = /srv/new\n"
		 "listen = 127.0.0.1:9\ncontrol = /run/other.sock\ncontrol_group = %s\n"
		 "log_level = error\nkeep_versions = 9\nchunk_avg = 64K\n"
		 "[limits]\nmax_transfers = 3\nmax_inflight_bytes = 1M\n"
		 "[peer lyon]\npublic_key = %s\naddress = lyon.example:1\n"
		 "[peer paris]\npublic_key = %s\n",
		 group, pk1_b64, pk2_b64);
	struct bdr_config next = load_other(b);
	char *next_path = next.path;

	bdr_config_keep_fixed(&next, &cfg);
	/* Fixed keys: the running values, strings at the same address. */
	cr_assert_eq(next.site.name, name);
	cr_assert_str_eq(next.site.name, "central");
	cr_assert_eq(next.site.data, data);
	cr_assert_eq(next.site.control, control);
	cr_assert_str_eq(next.site.key, "/etc/bdr/site.key");
	cr_assert_str_eq(next.site.listen.host, "0.0.0.0");
	cr_assert_eq(next.site.listen.port, 7411);
	cr_assert_null(next.site.control_group.name);
	cr_assert_eq(next.site.keep_versions, 3);
	cr_assert_eq(next.site.chunk_avg, 8192);
	/* Reloadable keys: the new values. */
	cr_assert_eq(next.site.log_level, BDR_LOG_ERROR);
	cr_assert_eq(next.limits.max_transfers, 3);
	cr_assert_eq(next.limits.max_inflight_bytes, 1u << 20);
	cr_assert_eq(next.n_peers, 2);
	cr_assert_arr_eq(bdr_config_peer(&next, "lyon")->public_key, pk1, BDR_PK_LEN);
	cr_assert_eq(bdr_config_peer(&next, "lyon")->address.n, 1);
	cr_assert_not_null(bdr_config_peer(&next, "paris"));
	cr_assert_eq(next.path, next_path, "next stays the file just read");
	/* cur now owns next's fixed values, and frees them. */
	cr_assert_str_eq(cfg.site.name, "renamed");
	cr_assert_str_eq(cfg.site.control_group.name, group);
	bdr_config_free(&cfg);

	/* Against the file as it was, only the reloadable changes remain. */
	load_ok("[site]\nname = central\nkey = /etc/bdr/site.key\ndata = /var/lib/bdr\n"
		"keep_versions = 3\n"
		"[peer lyon]\npublic_key = yqRwV0H6bTfvOGrNLBkXwkbH/mbaJkw46AyV/40pTYc=\n");
	cr_assert_eq(bdr_config_diff(&cfg, &next, &d), 0);
	for (size_t i = 0; i < d.n; i++)
		cr_assert(d.v[i].reloadable, "%s", d.v[i].text);
	cr_assert_not(d.restart_needed);
	cr_assert_eq(d.n, 6, "log_level, max_inflight_bytes, max_transfers, lyon's key and "
			     "address, paris added: %zu",
		     d.n);
	bdr_config_diff_free(&d);
	bdr_config_free(&next);
}

/* ---- the table and the man page ---- */

Test(config, key_table_is_consistent)
{
	size_t n;
	const struct bdr_config_key *keys = bdr_config_keys(&n);
	char buf[256];

	for (size_t i = 0; i < n; i++) {
		const struct bdr_config_key *k = &keys[i];

		cr_assert_not_null(k->doc, "%s", k->name);
		cr_assert_null(strchr(k->doc, '\n'), "%s: doc is one line", k->name);
		for (size_t j = 0; j < i; j++)
			cr_assert(strcmp(keys[j].name, k->name) != 0, "%s twice", k->name);
		bdr_config_key_summary(k, buf, sizeof(buf));
		cr_assert_not_null(strstr(buf, k->flags & BDR_CONFIG_F_RELOAD ? "Reloadable: yes."
									   : "Reloadable: no."),
				   "%s", buf);
	}
	cr_assert_str_eq(bdr_config_section_name(BDR_CONFIG_SITE), "site");
	cr_assert_str_eq(bdr_config_section_name(BDR_CONFIG_LIMITS), "limits");
	cr_assert_str_eq(bdr_config_section_name(BDR_CONFIG_PEER), "peer");
	cr_assert_str_eq(bdr_config_section_name(BDR_CONFIG_ADDRESS), "address");
	/* Schedules and rates change while the daemon runs, and
	 * bdr_config_keep_fixed() never exchanges an address key. */
	for (size_t i = 0; i < n; i++)
		if (keys[i].section == BDR_CONFIG_ADDRESS)
			cr_assert(keys[i].flags & BDR_CONFIG_F_RELOAD, "%s", keys[i].name);

	/* config.h's example, and one of each kind. */
	bdr_config_key_summary(key_named("keep_versions"), buf, sizeof(buf));
	cr_assert_str_eq(buf, "Integer, 1 to 100. Default: 5. Reloadable: no.");
	bdr_config_key_summary(key_named("chunk_avg"), buf, sizeof(buf));
	cr_assert_str_eq(buf, "Byte size, a power of two, 1K to 128K. Default: 8K. Reloadable: no.");
	bdr_config_key_summary(key_named("name"), buf, sizeof(buf));
	cr_assert_str_eq(buf, "Site name. Required. Reloadable: no.");
	bdr_config_key_summary(key_named("control_group"), buf, sizeof(buf));
	cr_assert_str_eq(buf, "Group name. Optional. Reloadable: no.");
	bdr_config_key_summary(key_named("address"), buf, sizeof(buf));
	cr_assert_str_eq(buf, "Address or [address] section name, repeatable, at most 16. "
			      "Optional. Reloadable: yes.");
	bdr_config_key_summary(key_named("schedule"), buf, sizeof(buf));
	cr_assert_str_eq(buf, "Schedule rules, repeatable. Default: all all all. Reloadable: yes.");
	bdr_config_key_summary(key_named("rate"), buf, sizeof(buf));
	cr_assert_str_eq(buf, "Rate limit. Default: unlimited. Reloadable: yes.");
	bdr_config_key_summary(key_named("timezone"), buf, sizeof(buf));
	cr_assert_str_eq(buf, "Time zone name. Optional. Reloadable: yes.");
}

static char *read_man_page(void)
{
	const char *root = getenv("BDR_SOURCE_ROOT");
	char path[PATH_MAX];
	size_t len;
	uint8_t *text;

	cr_assert(root && *root, "BDR_SOURCE_ROOT is set by tests/meson.build");
	snprintf(path, sizeof(path), "%s/packaging/man/bdr.conf.5.scd", root);
	text = tu_read(path, &len);
	cr_assert_not_null(text, "%s", path);
	char *s = malloc(len + 1);
	memcpy(s, text, len);
	s[len] = '\0';
	free(text);
	return s;
}

struct entry {
	int section;
	char name[64];
	char first[512]; /* the line after "*name* = ...", without its tab */
	char last[512];  /* the last non-blank line of the entry */
	unsigned line;
};

/* The key entries under "## [site]", "## [limits]", "## [peer NAME]" and
 * "## [address NAME]": a line "*name* = ..." and the tab-indented lines
 * after it. */
static size_t man_entries(char *text, struct entry *v, size_t max)
{
	size_t n = 0;
	int section = -1;
	unsigned lineno = 0;
	struct entry *cur = NULL;

	for (char *line = text, *next; line && *line; line = next) {
		if ((next = strchr(line, '\n')))
			*next++ = '\0';
		lineno++;
		if (line[0] == '#') {
			section = strcmp(line, "## [site]") == 0     ? BDR_CONFIG_SITE
				  : strcmp(line, "## [limits]") == 0 ? BDR_CONFIG_LIMITS
				  : strcmp(line, "## [peer NAME]") == 0 ? BDR_CONFIG_PEER
				  : strcmp(line, "## [address NAME]") == 0 ? BDR_CONFIG_ADDRESS
									     : -1;
			cur = NULL;
			continue;
		}
		if (section < 0)
			continue;
		if (line[0] == '*' && strstr(line, "* = ")) {
			cr_assert_lt(n, max);
			cur = &v[n++];
			memset(cur, 0, sizeof(*cur));
			cur->section = section;
			cur->line = lineno;
			snprintf(cur->name, sizeof(cur->name), "%.*s", (int)strcspn(line + 1, "*"),
				 line + 1);
			continue;
		}
		if (!cur)
			continue;
		if (!line[0])
			continue;
		if (line[0] != '\t') { /* text after the entries */
			cur = NULL;
			continue;
		}
		if (!cur->first[0])
			snprintf(cur->first, sizeof(cur->first), "%s", line + 1);
		if (line[1])
			snprintf(cur->last, sizeof(cur->last), "%s", line + 1);
	}
	return n;
}

/* tests/test_config.c checks what bdr.conf(5) promises: each key's entry
 * opens with its doc line and ends with its summary line. */
Test(config, man_page_documents_every_key)
{
	size_t n, m;
	const struct bdr_config_key *keys = bdr_config_keys(&n);
	char *text = read_man_page();
	struct entry entries[64];

	m = man_entries(text, entries, 64);
	for (size_t i = 0; i < n; i++) {
		const struct bdr_config_key *k = &keys[i];
		const struct entry *e = NULL;
		char summary[256];

		for (size_t j = 0; j < m; j++)
			if (strcmp(entries[j].name, k->name) == 0 && entries[j].section == (int)k->section)
				e = &entries[j];
		cr_assert_not_null(e, "bdr.conf(5) has no entry for %s in its [%s] section", k->name,
				   bdr_config_section_name(k->section));
		cr_assert_str_eq(e->first, k->doc, "bdr.conf.5.scd:%u: %s: the doc line", e->line,
				 k->name);
		bdr_config_key_summary(k, summary, sizeof(summary));
		cr_assert_str_eq(e->last, summary, "bdr.conf.5.scd:%u: %s: the summary line",
				 e->line, k->name);
	}
	/* And nothing documented that the table does not have. */
	for (size_t j = 0; j < m; j++) {
		bool found = false;

		for (size_t i = 0; i < n; i++)
			found |= strcmp(entries[j].name, keys[i].name) == 0 &&
				 entries[j].section == (int)keys[i].section;
		cr_assert(found, "bdr.conf.5.scd:%u: '%s' is not a key of the table", entries[j].line,
			  entries[j].name);
	}
	cr_assert_eq(m, n);
	free(text);
}

/* The two example files of bdr.conf(5) load (the group they name is
 * replaced by one that exists here, and the time zone by UTC where the time
 * zone database is not installed). */
Test(config, man_page_examples_load)
{
	char *text = read_man_page(), *p = text;
	int loaded = 0;

	while ((p = strstr(p, "```\n# /etc/bdr/bdr.conf on "))) {
		char *start = p + 4, *end = strstr(start, "```\n");
		char file[4096] = "";
		size_t used = 0;

		cr_assert_not_null(end);
		*end = '\0';
		for (char *line = strtok(start, "\n"); line; line = strtok(NULL, "\n")) {
			if (strncmp(line, "control_group = ", 16) == 0)
				used += (size_t)snprintf(file + used, sizeof(file) - used,
							 "control_group = %s\n", group);
			else if (strncmp(line, "timezone = ", 11) == 0 && !have_zone(line + 11))
				used += (size_t)snprintf(file + used, sizeof(file) - used,
							 "timezone = UTC\n");
			else
				used += (size_t)snprintf(file + used, sizeof(file) - used, "%s\n",
							 line);
		}
		load_ok(file);
		if (loaded == 0) {
			cr_assert_str_eq(cfg.site.name, "central");
			cr_assert_eq(cfg.limits.max_transfers, 16);
			cr_assert_eq(cfg.limits.max_connections, 32);
			cr_assert_eq(cfg.n_peers, 2);
			cr_assert_eq(cfg.limits.max_transfers_per_peer, 8);
			cr_assert_not_null(cfg.site.timezone);
			const struct bdr_peer_config *paris = bdr_config_peer(&cfg, "branch-paris");
			cr_assert_eq(paris->address.n, 2);
			const struct bdr_config_address *line = &paris->address.v[0];
			cr_assert_str_eq(line->name, "paris-line");
			cr_assert_str_eq(line->host, "paris.example.net");
			cr_assert_eq(line->port, 7411);
			/* Weekdays 08-18 high only, 18-20 medium; Friday 12:00 is day 4. */
			cr_assert_eq(line->schedule.cell[4][12], BDR_SCHED_HIGH);
			cr_assert_eq(line->schedule.cell[0][19], BDR_SCHED_MEDIUM);
			cr_assert_eq(line->schedule.cell[0][20], BDR_SCHED_ALL);
			cr_assert_eq(line->schedule.cell[5][12], BDR_SCHED_ALL);
			cr_assert_eq(bdr_rate_at(&line->rate, 9), 10 * 1000 * 1000 / 8 / 4);
			cr_assert_eq(bdr_rate_at(&line->rate, 18), 0, "unlimited");
			cr_assert_str_eq(paris->address.v[1].name, "");
			cr_assert_str_eq(paris->address.v[1].host, "10.20.0.5");
			cr_assert_str_eq(bdr_config_peer(&cfg, "branch-lyon")->address.v[0].host,
					 "2001:db8:20::5");
		} else {
			cr_assert_str_eq(cfg.site.name, "branch-paris");
			cr_assert_eq(cfg.site.log_level, BDR_LOG_DEBUG);
			cr_assert_eq(cfg.n_peers, 1);
			cr_assert_str_eq(cfg.peers[0].address.v[0].host, "central.example.net");
			cr_assert_str_eq(cfg.peers[0].packages, "app,tools");
			cr_assert_not(bdr_config_peer_relays(&cfg.peers[0]));
		}
		loaded++;
		p = end + 4;
	}
	cr_assert_eq(loaded, 2, "both examples found");
	free(text);
}

/* The key file is checked as bdrd checks it at start, and a refusal names
 * the line of "key =": one readable by others, a directory, a malformed
 * one, a missing one; a good one (mode 0600, one base64 line) passes. */
Test(config, the_key_file_is_checked_on_its_line)
{
	char key[PATH_MAX], text[PATH_MAX + 256];
	struct bdr_key k;

	snprintf(key, sizeof(key), "%s/site.key", dir);
	snprintf(text, sizeof(text), "# site\n[site]\nname = central\n\nkey = %s\ndata = /var/lib/bdr\n", key);
	bdr_key_generate(&k);
	cr_assert_eq(bdr_key_save(&k, key), 0);
	load_ok(text);
	cr_assert_eq(cfg.site.key_line, 5);
	cr_assert_eq(bdr_config_check_key(&cfg, &errs), 0, "%s", all_errors());
	cr_assert_eq(errs.n, 0);

	cr_assert_eq(chmod(key, 0644), 0);
	cr_assert_eq(bdr_config_check_key(&cfg, &errs), -EPERM);
	expect_error(5, "key = %s: permissions 0644 are too open: it must not be accessible by group "
			"or others (chmod 600)", key);

	cr_assert_eq(unlink(key), 0);
	tu_write(key, "not a key\n", 10);
	cr_assert_eq(chmod(key, 0600), 0);
	load_ok(text);
	cr_assert_eq(bdr_config_check_key(&cfg, &errs), -BDR_EKEY);
	expect_error(5, "key = %s: malformed: expected one line of 44 base64 characters", key);

	cr_assert_eq(unlink(key), 0);
	cr_assert_eq(mkdir(key, 0700), 0);
	load_ok(text);
	cr_assert_eq(bdr_config_check_key(&cfg, &errs), -EINVAL);
	expect_error(5, "key = %s: not a regular file (a directory)", key);

	cr_assert_eq(rmdir(key), 0);
	load_ok(text);
	cr_assert_eq(bdr_config_check_key(&cfg, &errs), -ENOENT);
	expect_error(5, "key = %s: No such file or directory", key);
}
