/* bdr.conf's value types: what each kind of value may be, how it is read
 * from its text, written back (for --dump-config and reload diffs) and
 * freed. Every parser refuses with a reason in why[n]. */
#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bdr/error.h"
#include "daemon/config_value.h"

/* Says why a value is refused, in why[n], and returns err: one line per
 * error path, like bdr_diag_set. */
static int reason(char *why, size_t n, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int reason(char *why, size_t n, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, n, fmt, ap);
	va_end(ap);
	return err;
}

/* ---- values ----------------------------------------------------------- */

/* Strict decimal: one or more digits, no sign or space; *end after them. */
static int parse_digits(const char *s, uint64_t *v, const char **end)
{
	uint64_t n = 0;
	const char *p = s;

	if (*p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++)
		if (__builtin_mul_overflow(n, 10, &n) ||
		    __builtin_add_overflow(n, (uint64_t)(*p - '0'), &n))
			return -ERANGE;
	*v = n;
	*end = p;
	return 0;
}

/* Exact multiples of a power of 1024 get its suffix, so defaults, bounds
 * and the dump read as they are written. */
static void fmt_size(char *buf, size_t n, uint64_t v)
{
	static const char suffix[] = "GMK";

	for (unsigned i = 0; i < 3; i++) {
		uint64_t unit = 1ull << (10 * (3 - i));

		if (v && v % unit == 0) {
			snprintf(buf, n, "%" PRIu64 "%c", v / unit, suffix[i]);
			return;
		}
	}
	snprintf(buf, n, "%" PRIu64, v);
}

void bdr_config_fmt_number(const struct bdr_config_key *k, char *buf, size_t n, uint64_t v)
{
	if (k->type == BDR_CONFIG_T_SIZE)
		fmt_size(buf, n, v);
	else
		snprintf(buf, n, "%" PRIu64, v);
}

static int size_suffix(const char **end, uint64_t *v, char *why, size_t n)
{
	uint64_t mult;

	switch (**end) {
	case 'K': mult = KIB; break;
	case 'M': mult = MIB; break;
	case 'G': mult = GIB; break;
	default: return reason(why, n, -EINVAL, "unknown size suffix '%s' (use K, M or G)", *end);
	}
	(*end)++;
	if (__builtin_mul_overflow(*v, mult, v))
		return reason(why, n, -ERANGE, "number too large");
	return 0;
}

static int parse_uint(const struct bdr_config_key *k, const char *s, uint64_t *v, char *why,
		      size_t n)
{
	bool size = k->type == BDR_CONFIG_T_SIZE;
	const char *end = s;
	char lo[32], hi[32];
	int err = parse_digits(s, v, &end);

	if (err == -ERANGE)
		return reason(why, n, err, "number too large");
	if (err)
		return reason(why, n, err, "%s", size ? "expected a whole number of bytes, "
							 "optionally followed by K, M or G"
						       : "expected a whole number");
	if (size && *end && (err = size_suffix(&end, v, why, n)) < 0)
		return err;
	if (*end)
		return reason(why, n, -EINVAL, "unexpected '%s' after the number", end);
	if ((k->flags & BDR_CONFIG_F_POW2) && (*v & (*v - 1)))
		return reason(why, n, -EINVAL, "must be a power of two");
	if (*v < k->min || *v > k->max) {
		bdr_config_fmt_number(k, lo, sizeof(lo), k->min);
		bdr_config_fmt_number(k, hi, sizeof(hi), k->max);
		return reason(why, n, -ERANGE, "must be between %s and %s", lo, hi);
	}
	return 0;
}

/* Letters, digits and '-' in dot-separated labels of 1..63 bytes that
 * neither start nor end with '-' (RFC 1123). Syntax only: the daemon
 * resolves names when it uses them. */
static bool host_name_ok(const char *h)
{
	size_t label = 0;

	for (const char *p = h;; p++) {
		if (*p == '.' || *p == '\0') {
			if (label == 0 || label > 63 || p[-1] == '-')
				return false;
			if (*p == '\0')
				return true;
			label = 0;
		} else if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			   (*p >= '0' && *p <= '9') || (*p == '-' && label > 0)) {
			label++;
		} else {
			return false;
		}
	}
}

static int check_host(const char *h, bool v6, char *why, size_t n)
{
	unsigned char addr[sizeof(struct in6_addr)];

	if (v6) {
		if (inet_pton(AF_INET6, h, addr) != 1)
			return reason(why, n, -EINVAL, "'%s' is not an IPv6 address", h);
		return 0;
	}
	if (strchr(h, ':'))
		return reason(why, n, -EINVAL, "an IPv6 address goes in brackets: [::1]:7411");
	/* All digits and dots: meant as IPv4, so it must be one. */
	if (strspn(h, "0123456789.") == strlen(h)) {
		if (inet_pton(AF_INET, h, addr) != 1)
			return reason(why, n, -EINVAL, "'%s' is not an IPv4 address", h);
		return 0;
	}
	if (!host_name_ok(h))
		return reason(why, n, -EINVAL, "'%s' is not a valid host name", h);
	return 0;
}

static int parse_port(const char *s, uint16_t *port, char *why, size_t n)
{
	uint64_t v = 0;
	const char *end = s;

	if (parse_digits(s, &v, &end) < 0 || *end || v < 1 || v > 65535)
		return reason(why, n, -EINVAL, "the port must be a number from 1 to 65535");
	*port = (uint16_t)v;
	return 0;
}

/* host:port or [v6]:port. */
static int parse_address(const char *s, struct bdr_config_address *a, char *why, size_t n)
{
	bool v6 = s[0] == '[';
	const char *host = s + v6, *sep;
	size_t len;
	int err;

	sep = v6 ? strchr(host, ']') : strrchr(host, ':');
	if (!sep)
		return reason(why, n, -EINVAL, "%s",
			      v6 ? "missing ']' after the IPv6 address" : "expected HOST:PORT");
	len = (size_t)(sep - host);
	if (v6 && *++sep != ':')
		return reason(why, n, -EINVAL, "expected :PORT after ']'");
	if (len == 0)
		return reason(why, n, -EINVAL, "missing host before :PORT");
	if (len > BDR_CONFIG_MAX_HOST)
		return reason(why, n, -EINVAL, "host longer than %d bytes", BDR_CONFIG_MAX_HOST);
	memcpy(a->host, host, len);
	a->host[len] = '\0';
	if ((err = check_host(a->host, v6, why, n)) < 0)
		return err;
	return parse_port(sep + 1, &a->port, why, n);
}

void bdr_config_fmt_address(const struct bdr_config_address *a, char *buf, size_t n)
{
	snprintf(buf, n, strchr(a->host, ':') ? "[%s]:%u" : "%s:%u", a->host, a->port);
}

/* ---- types: parse, format, free ---------------------------------------- */


static int dup_into(char **field, const char *s)
{
	char *d = strdup(s);

	if (!d)
		return -ENOMEM;
	*field = d;
	return 0;
}

static int parse_number(const struct bdr_config_key *k, const char *s, void *field, char *why,
			size_t n)
{
	uint64_t v = 0;
	int err = parse_uint(k, s, &v, why, n);

	if (err)
		return err;
	if (k->size == sizeof(uint32_t))
		*(uint32_t *)field = (uint32_t)v; /* the table's max fits */
	else
		*(uint64_t *)field = v;
	return 0;
}

static void format_number(const struct bdr_config_key *k, const void *field, char *buf, size_t n)
{
	uint64_t v = k->size == sizeof(uint32_t) ? *(const uint32_t *)field
						  : *(const uint64_t *)field;

	bdr_config_fmt_number(k, buf, n, v);
}

static int parse_site(const struct bdr_config_key *k, const char *s, void *field, char *why,
		      size_t n)
{
	struct bdr_diag d;

	(void)k;
	if (bdr_manifest_check_site(s, &d) < 0)
		return reason(why, n, -EINVAL, "%s", d.msg);
	return dup_into(field, s);
}

static int parse_path(const struct bdr_config_key *k, const char *s, void *field, char *why,
		      size_t n)
{
	if (s[0] != '/')
		return reason(why, n, -EINVAL, "must be an absolute path");
	if (strlen(s) > k->max)
		return reason(why, n, -EINVAL, "path longer than %" PRIu64 " bytes", k->max);
	return dup_into(field, s);
}

static void format_string(const struct bdr_config_key *k, const void *field, char *buf, size_t n)
{
	const char *s = *(char *const *)field;

	(void)k;
	snprintf(buf, n, "%s", s ? s : "");
}

static void free_string(void *field)
{
	free(*(char **)field);
	*(char **)field = NULL;
}

/* Sets host and port only: an [address NAME]'s host key shares the struct
 * with its name, schedule and rate. */
static int parse_address_key(const struct bdr_config_key *k, const char *s, void *field,
			     char *why, size_t n)
{
	struct bdr_config_address a = { .port = 0 }, *f = field;
	int err = parse_address(s, &a, why, n);

	(void)k;
	if (!err) {
		memcpy(f->host, a.host, sizeof(f->host));
		f->port = a.port;
	}
	return err;
}

static void format_address(const struct bdr_config_key *k, const void *field, char *buf,
			   size_t n)
{
	const struct bdr_config_address *a = field;

	(void)k;
	if (a->port == 0 && !a->host[0]) /* an optional address left unset */
		buf[0] = '\0';
	else
		bdr_config_fmt_address(a, buf, n);
}

static void free_nothing(void *field)
{
	(void)field;
}

bool bdr_config_digits_and_dots(const char *s)
{
	return strspn(s, "0123456789.") == strlen(s);
}

/* HOST:PORT always has a ':' (an IPv6 host is in brackets); a value
 * without one names an [address NAME] section, unless it is digits and
 * dots, an IPv4 address missing its port. */
static bool names_a_section(const char *s)
{
	return !strchr(s, ':') && s[0] != '[' && !bdr_config_digits_and_dots(s);
}

/* An inline address, as written, or a reference to an [address NAME]
 * section (name set, no host yet): resolve_addresses() fills it in. */
void bdr_config_address_init(struct bdr_config_address *a)
{
	memset(a, 0, sizeof(*a));
	bdr_schedule_default(&a->schedule);
}

static bool same_address(const struct bdr_config_address *a, const struct bdr_config_address *b)
{
	if (a->name[0] || b->name[0])
		return strcmp(a->name, b->name) == 0;
	return a->port == b->port && strcmp(a->host, b->host) == 0;
}

void bdr_config_fmt_address_or_name(const struct bdr_config_address *a, char *buf, size_t n)
{
	if (a->name[0])
		snprintf(buf, n, "%s", a->name);
	else
		bdr_config_fmt_address(a, buf, n);
}

static int parse_addresses(const struct bdr_config_key *k, const char *s, void *field,
			   char *why, size_t n)
{
	struct bdr_config_addresses *l = field;
	struct bdr_config_address a, *v;
	struct bdr_diag d;
	int err;

	bdr_config_address_init(&a);
	if (!names_a_section(s)) {
		if ((err = parse_address(s, &a, why, n)) < 0)
			return err;
	} else if (bdr_manifest_check_name("address", s, BDR_CONFIG_MAX_NAME, &d) < 0) {
		return reason(why, n, -EINVAL,
			      "expected HOST:PORT or the name of an [address NAME] section: %s",
			      d.msg);
	} else {
		snprintf(a.name, sizeof(a.name), "%s", s);
	}
	if (l->n >= k->max)
		return reason(why, n, -EINVAL, "more than %" PRIu64 " addresses", k->max);
	for (size_t i = 0; i < l->n; i++)
		if (same_address(&l->v[i], &a))
			return reason(why, n, -EINVAL, "listed twice");
	v = realloc(l->v, (l->n + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	v[l->n++] = a;
	l->v = v;
	return 0;
}

/* Space-separated: for the diff; the dump writes one line each. */
static void format_addresses(const struct bdr_config_key *k, const void *field, char *buf,
			     size_t n)
{
	const struct bdr_config_addresses *l = field;
	size_t used = 0;

	(void)k;
	buf[0] = '\0';
	for (size_t i = 0; i < l->n && used + 1 < n; i++) {
		if (i)
			buf[used++] = ' ';
		bdr_config_fmt_address_or_name(&l->v[i], buf + used, n - used);
		used += strlen(buf + used);
	}
}

static void free_addresses(void *field)
{
	struct bdr_config_addresses *l = field;

	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* getgrnam_r into a buffer that grows until the entry fits. */
static int lookup_group(const char *name, gid_t *gid)
{
	struct group gr, *res = NULL;
	size_t cap = 1024;
	char *buf = NULL;
	int rc;

	do {
		char *b = realloc(buf, cap *= 2);

		if (!b) {
			free(buf);
			return -ENOMEM;
		}
		buf = b;
		rc = getgrnam_r(name, &gr, buf, cap, &res);
	} while (rc == ERANGE && cap < (1u << 20));
	if (!rc && res)
		*gid = gr.gr_gid;
	free(buf);
	return rc ? -rc : res ? 0 : -ENOENT;
}

static int parse_group(const struct bdr_config_key *k, const char *s, void *field, char *why,
		       size_t n)
{
	struct bdr_config_group *g = field;
	gid_t gid = 0;
	int err = lookup_group(s, &gid);

	(void)k;
	if (err == -ENOENT)
		return reason(why, n, err, "no such group");
	if (err == -ENOMEM)
		return err;
	if (err)
		return reason(why, n, err, "cannot look up the group: %s", strerror(-err));
	g->gid = gid;
	return dup_into(&g->name, s);
}

static void format_group(const struct bdr_config_key *k, const void *field, char *buf, size_t n)
{
	format_string(k, &((const struct bdr_config_group *)field)->name, buf, n);
}

static void free_group(void *field)
{
	free_string(&((struct bdr_config_group *)field)->name);
}

static int parse_log_level(const struct bdr_config_key *k, const char *s, void *field, char *why,
			   size_t n)
{
	(void)k;
	if (bdr_log_level_parse(s, field) < 0)
		return reason(why, n, -EINVAL, "must be one of error, warn, info, debug");
	return 0;
}

static void format_log_level(const struct bdr_config_key *k, const void *field, char *buf,
			     size_t n)
{
	(void)k;
	snprintf(buf, n, "%s", bdr_log_level_name(*(const enum bdr_log_level *)field));
}

/* Names of the values of the enum-valued types, in enum order. */
static const char *const role_names[] = { "site", "dp", NULL };
static const char *const relation_names[] = { "peer", "parent", "child", NULL };

_Static_assert(sizeof(enum bdr_site_role) == sizeof(int) &&
	       sizeof(enum bdr_peer_relation) == sizeof(int) &&
	       sizeof(enum bdr_quick_check) == sizeof(int) &&
	       sizeof(enum bdr_compression) == sizeof(int) &&
	       sizeof(enum bdr_peer_accept) == sizeof(int), "choices are stored as int");

static const char *const quick_check_names[] = { "mtime", "strict", NULL };
static const char *const accept_names[] = { "auto", "own", "relayed", NULL };
static const char *const compression_names[] = { "dictionary", "zlib", "zstd", NULL };

static const char *const *choice_names(const struct bdr_config_key *k)
{
	switch (k->type) {
	case BDR_CONFIG_T_ROLE: return role_names;
	case BDR_CONFIG_T_QUICK_CHECK: return quick_check_names;
	case BDR_CONFIG_T_COMPRESSION: return compression_names;
	case BDR_CONFIG_T_ACCEPT: return accept_names;
	default: return relation_names;
	}
}

static int parse_choice(const struct bdr_config_key *k, const char *s, void *field, char *why,
			size_t n)
{
	const char *const *names = choice_names(k);

	for (int i = 0; names[i]; i++)
		if (!strcmp(s, names[i])) {
			*(int *)field = i;
			return 0;
		}
	return reason(why, n, -EINVAL, "must be %s%s%s%s%s", names[0], names[2] ? ", " : " or ",
		      names[1], names[2] ? " or " : "", names[2] ? names[2] : "");
}

static void format_choice(const struct bdr_config_key *k, const void *field, char *buf, size_t n)
{
	snprintf(buf, n, "%s", choice_names(k)[*(const int *)field]);
}

bool bdr_config_list_has(const char *list, const char *name)
{
	size_t len = strlen(name);

	for (const char *s = list; *s; s += s[strcspn(s, ",")] ? strcspn(s, ",") + 1 : strcspn(s, ","))
		if (strcspn(s, ",") == len && !memcmp(s, name, len))
			return true;
	return false;
}

/* Package names separated by commas (blanks around them allowed), none
 * twice; kept as "a,b,c", which parses back to the same list. */
static int parse_packages(const struct bdr_config_key *k, const char *s, void *field, char *why,
			  size_t n)
{
	char *copy = strdup(s), *out = calloc(1, strlen(s) + 1), *save = NULL, *tok;
	struct bdr_diag d;
	int err = 0;

	(void)k;
	if (!copy || !out) {
		err = -ENOMEM;
		goto out;
	}
	if (s[strspn(s, " \t")] == '\0' || s[strspn(s, " \t")] == ',' || strstr(s, ",,") ||
	    s[strlen(s) - 1] == ',')
		err = reason(why, n, -EINVAL, "an empty package name (leave the key out for any package)");
	for (tok = strtok_r(copy, ",", &save); !err && tok; tok = strtok_r(NULL, ",", &save)) {
		char *e = tok + strlen(tok);

		tok += strspn(tok, " \t");
		while (e > tok && (e[-1] == ' ' || e[-1] == '\t'))
			*--e = '\0';
		if (bdr_manifest_check_package(tok, &d) < 0)
			err = reason(why, n, -EINVAL, "%s (package names separated by commas; "
				     "leave the key out for any package)", d.msg);
		else if (bdr_config_list_has(out, tok))
			err = reason(why, n, -EINVAL, "'%s' is named twice", tok);
		else
			strcat(strcat(out, *out ? "," : ""), tok);
	}
out:
	free(copy);
	if (err)
		free(out);
	else
		*(char **)field = out;
	return err;
}

static int parse_pubkey(const struct bdr_config_key *k, const char *s, void *field, char *why,
			size_t n)
{
	(void)k;
	if (bdr_key_pk_from_b64(field, s) < 0)
		return reason(why, n, -EINVAL, "not a base64 Ed25519 public key (%d characters, as "
					"bdrctl pubkey prints it)", BDR_KEY_B64_LEN);
	return 0;
}

static void format_pubkey(const struct bdr_config_key *k, const void *field, char *buf, size_t n)
{
	char b64[BDR_KEY_B64_LEN + 1];

	(void)k;
	bdr_key_pk_to_b64(field, b64);
	snprintf(buf, n, "%s", b64);
}

/* A zone of the time zone database: its file exists and is a TZif file,
 * which rules out the database's directories and tables (zone.tab and
 * the like). The name is a relative path of plain components, so it names
 * nothing outside BDR_CONFIG_ZONEINFO. "UTC" needs no file. */
static bool zone_name_ok(const char *s)
{
	for (const char *c = s;;) {
		size_t len = strcspn(c, "/");

		if (len == 0 || strspn(c, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
					  "0123456789._+-") < len ||
		    (c[0] == '.' && (len == 1 || (len == 2 && c[1] == '.'))))
			return false;
		if (!c[len])
			return true;
		c += len + 1;
	}
}

static int parse_timezone(const struct bdr_config_key *k, const char *s, void *field, char *why,
			  size_t n)
{
	char path[PATH_MAX], magic[4];
	size_t got;
	FILE *f;
	int len;

	(void)k;
	if (strcmp(s, "UTC") == 0)
		return dup_into(field, s);
	len = snprintf(path, sizeof(path), "%s/%s", BDR_CONFIG_ZONEINFO, s);
	if (!zone_name_ok(s) || len < 0 || (size_t)len >= sizeof(path))
		return reason(why, n, -EINVAL, "not a time zone name, such as Europe/Paris or UTC");
	if (!(f = fopen(path, "re"))) {
		int e = errno;

		if (e == ENOMEM)
			return -ENOMEM;
		if (e == ENOENT || e == ENOTDIR)
			return reason(why, n, -ENOENT, "unknown time zone: no file %s", path);
		return reason(why, n, -e, "cannot read %s: %s", path, strerror(e));
	}
	got = fread(magic, 1, sizeof(magic), f);
	fclose(f);
	if (got != sizeof(magic) || memcmp(magic, "TZif", sizeof(magic)) != 0)
		return reason(why, n, -EINVAL, "%s is not a time zone file", path);
	return dup_into(field, s);
}

/* Each line's rules apply over the lines before it, in file order: the
 * schedule so far, as its canonical text (which parses back to it), then
 * the line. The line is first parsed alone, so that an error counts the
 * rules of that line from 1. */
static int parse_schedule(const struct bdr_config_key *k, const char *s, void *field, char *why,
			  size_t n)
{
	struct bdr_schedule *cur = field, line;
	struct bdr_diag d;
	size_t len, add = strlen(s) + 2;
	char *text;
	int err;

	(void)k;
	if (bdr_schedule_parse(&line, s, &d) < 0)
		return reason(why, n, -EINVAL, "%s", d.msg);
	if (!(text = malloc(BDR_SCHEDULE_TEXT_MAX + add)))
		return -ENOMEM;
	err = bdr_schedule_format(cur, text, BDR_SCHEDULE_TEXT_MAX);
	len = strlen(text);
	snprintf(text + len, add, ";%s", s);
	if (!err)
		err = bdr_schedule_parse(cur, text, &d);
	free(text);
	if (err) /* not expected: both parts parse */
		return reason(why, n, -EINVAL, "%s", err == -ENOSPC ? "schedule too long" : d.msg);
	return 0;
}

static void format_schedule(const struct bdr_config_key *k, const void *field, char *buf,
			    size_t n)
{
	(void)k;
	bdr_schedule_format(field, buf, n); /* n >= BDR_SCHEDULE_TEXT_MAX */
}

/* The rate keeps the capacity (bdr_rate_parse does), so rate and capacity
 * may come in either order. The dump writes the canonical text on one
 * line, so a rate whose canonical text would not fit there is refused:
 * only a long list of different hourly rates can be that long. */
static int parse_rate_key(const struct bdr_config_key *k, const char *s, void *field, char *why,
			  size_t n)
{
	struct bdr_rate_spec r = *(struct bdr_rate_spec *)field;
	char text[BDR_RATE_TEXT_MAX];
	size_t room = LINE_CHARS - strlen(k->name) - 3; /* "rate = " */
	struct bdr_diag d;

	if (bdr_rate_parse(&r, s, &d) < 0)
		return reason(why, n, -EINVAL, "%s", d.msg);
	if (bdr_rate_format(&r, text, sizeof(text)) < 0 || strlen(text) > room)
		return reason(why, n, -EINVAL,
			      "too many different hourly rates: written in canonical form they "
			      "take more than the %zu characters of a line",
			      room);
	*(struct bdr_rate_spec *)field = r;
	return 0;
}

static void format_rate(const struct bdr_config_key *k, const void *field, char *buf, size_t n)
{
	(void)k;
	bdr_rate_format(field, buf, n); /* n >= BDR_RATE_TEXT_MAX */
}

static int parse_capacity(const struct bdr_config_key *k, const char *s, void *field, char *why,
			  size_t n)
{
	struct bdr_diag d;

	(void)k;
	if (bdr_rate_set_capacity(field, s, &d) < 0)
		return reason(why, n, -EINVAL, "%s", d.msg);
	return 0;
}

static void format_capacity(const struct bdr_config_key *k, const void *field, char *buf,
			    size_t n)
{
	const struct bdr_rate_spec *r = field;

	(void)k;
	if (r->capacity_bps)
		bdr_rate_format_bps(r->capacity_bps, buf, n);
	else
		buf[0] = '\0';
}

const struct bdr_config_type_ops bdr_config_types[] = {
	[BDR_CONFIG_T_UINT] = { "Integer", false, parse_number, format_number, free_nothing },
	[BDR_CONFIG_T_SIZE] = { "Byte size", false, parse_number, format_number, free_nothing },
	[BDR_CONFIG_T_SITE] = { "Site name", false, parse_site, format_string, free_string },
	[BDR_CONFIG_T_PATH] = { "Absolute path", false, parse_path, format_string, free_string },
	[BDR_CONFIG_T_ADDRESS] = { "Address", false, parse_address_key, format_address,
				   free_nothing },
	[BDR_CONFIG_T_ADDRESSES] = { "Address or [address] section name, repeatable", true,
				     parse_addresses, format_addresses, free_addresses },
	[BDR_CONFIG_T_GROUP] = { "Group name", false, parse_group, format_group, free_group },
	[BDR_CONFIG_T_LOG_LEVEL] = { "One of error, warn, info, debug", false, parse_log_level,
				     format_log_level, free_nothing },
	[BDR_CONFIG_T_PUBKEY] = { "Base64 public key, 44 characters", false, parse_pubkey,
				  format_pubkey, free_nothing },
	[BDR_CONFIG_T_TIMEZONE] = { "Time zone name", false, parse_timezone, format_string,
				    free_string },
	[BDR_CONFIG_T_SCHEDULE] = { "Schedule rules, repeatable", true, parse_schedule,
				    format_schedule, free_nothing },
	[BDR_CONFIG_T_RATE] = { "Rate limit", false, parse_rate_key, format_rate, free_nothing },
	[BDR_CONFIG_T_CAPACITY] = { "Rate", false, parse_capacity, format_capacity,
				    free_nothing },
	[BDR_CONFIG_T_ROLE] = { "One of site, dp", false, parse_choice, format_choice,
				free_nothing },
	[BDR_CONFIG_T_RELATION] = { "One of peer, parent, child", false, parse_choice,
				    format_choice, free_nothing },
	[BDR_CONFIG_T_QUICK_CHECK] = { "One of mtime, strict", false, parse_choice,
				       format_choice, free_nothing },
	[BDR_CONFIG_T_COMPRESSION] = { "One of dictionary, zlib, zstd", false, parse_choice,
				       format_choice, free_nothing },
	[BDR_CONFIG_T_PACKAGES] = { "Package names separated by commas", false,
				    parse_packages, format_string, free_string },
	[BDR_CONFIG_T_ACCEPT] = { "One of auto, own, relayed", false, parse_choice,
				  format_choice, free_nothing },
};
