/* bdr.conf: the key table, and the parsing, validation, dump and reload
 * rules that follow from it.
 *
 * inih splits "key = value" lines; a reader of our own feeds it one whole
 * line at a time and takes over what inih cannot be configured to do at
 * run time (its options are compiled into the shared library):
 *   - exact line numbers, even for lines longer than inih's buffer;
 *   - section lines, so an empty or unknown section is still seen, a
 *     required key can be reported on its section's line, and peer names
 *     are not cut at inih's 50-byte section buffer;
 *   - every syntax error, where inih reports only the first;
 *   - leading whitespace, stripped so that inih's multi-line continuation
 *     never turns an indented key into a second value of the one before;
 *   - inline "; comments", stripped here so they work the same whatever
 *     INI_ALLOW_INLINE_COMMENTS the library was built with.
 *
 * [address NAME] sections are read into the parse state and copied into
 * the peer address that names them once the whole file is read
 * (resolve_addresses), since either may come first. What one value means
 * (its parsing, format and freeing) is config_value.c's. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include <ini.h>

#include "bdr/error.h"
#include "bdr/key.h"
#include "bdr/library.h"
#include "daemon/config.h"
#include "daemon/config_value.h"

#define XSTR(x) STR(x)
#define STR(x) #x

/* The field a key sets: offset and size, so one table row says it all. */
#define SITE(f) offsetof(struct bdr_config, site.f), sizeof(((struct bdr_config *)0)->site.f)
#define LIMIT(f) offsetof(struct bdr_config, limits.f), sizeof(((struct bdr_config *)0)->limits.f)
#define PEER(f) offsetof(struct bdr_peer_config, f), sizeof(((struct bdr_peer_config *)0)->f)
#define ADDR(f) offsetof(struct bdr_config_address, f), \
		sizeof(((struct bdr_config_address *)0)->f)
/* The host key sets host and port: its field is the whole address. */
#define ADDR_WHOLE 0, sizeof(struct bdr_config_address)

/* A unix socket path must fit sun_path with its NUL. */
#define SUN_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)

#define S BDR_CONFIG_SITE
#define L BDR_CONFIG_LIMITS
#define P BDR_CONFIG_PEER
#define A BDR_CONFIG_ADDRESS
enum {
	REQ = BDR_CONFIG_F_REQUIRED,
	RLD = BDR_CONFIG_F_RELOAD,
	POW2 = BDR_CONFIG_F_POW2,
};

/* section, name, type, default, min, max, flags, field, doc.
 * chunk_avg stops at 128K: the chunker's max is avg x 8 and may not pass
 * BDR_CHUNK_MAX_LIMIT (1 MiB). Limits apply to connections and transfers
 * that start after a reload. Every [address NAME] key is reloadable
 * (bdr_config_keep_fixed relies on it; the tests check): schedules and
 * rates change while the daemon runs. rate and capacity are two keys of
 * one struct bdr_rate_spec, as bdr_rate_parse() wants them. */
static const struct bdr_config_key keys[] = {
	{ S, "name", BDR_CONFIG_T_SITE, NULL, 0, 0, REQ, SITE(name),
	  "This site's name, as other sites write it in their [peer NAME] sections." },
	{ S, "listen", BDR_CONFIG_T_ADDRESS, "0.0.0.0:7411", 0, 0, 0, SITE(listen),
	  "Address and TCP port on which bdrd accepts connections from peers." },
	{ S, "key", BDR_CONFIG_T_PATH, NULL, 0, PATH_MAX - 1, REQ, SITE(key),
	  "The site's Ed25519 key file, as written by bdrctl keygen." },
	{ S, "data", BDR_CONFIG_T_PATH, NULL, 0, PATH_MAX - 1, REQ, SITE(data),
	  "The data directory, which holds the site library." },
	{ S, "control", BDR_CONFIG_T_PATH, "/run/bdr/control.sock", 0, SUN_PATH_MAX, 0,
	  SITE(control), "The control socket that bdrctl connects to." },
	{ S, "control_group", BDR_CONFIG_T_GROUP, NULL, 0, 0, 0, SITE(control_group),
	  "A group whose members may use the control socket, besides root and bdrd's own user." },
	{ S, "share_group", BDR_CONFIG_T_GROUP, NULL, 0, 0, 0, SITE(share_group),
	  "A group whose members may read the versions the library holds (a web server's)." },
	{ S, "log_level", BDR_CONFIG_T_LOG_LEVEL, "info", 0, 0, RLD, SITE(log_level),
	  "The least severe kind of event that is logged." },
	{ S, "keep_versions", BDR_CONFIG_T_UINT, XSTR(BDR_KEEP_VERSIONS_DEFAULT), 1, 100, 0,
	  SITE(keep_versions), "How many versions of each package the library keeps." },
	{ S, "chunk_avg", BDR_CONFIG_T_SIZE, "8K", KIB, 128 * KIB, POW2, SITE(chunk_avg),
	  "The average chunk size of versions this site imports." },
	{ S, "timezone", BDR_CONFIG_T_TIMEZONE, NULL, 0, 0, RLD, SITE(timezone),
	  "The time zone in which the hours of schedules and rate limits are read." },
	{ S, "quick_check", BDR_CONFIG_T_QUICK_CHECK, "mtime", 0, 0, RLD, SITE(quick_check),
	  "Which files of a pushed directory are taken as unchanged without being read." },
	{ S, "compression", BDR_CONFIG_T_COMPRESSION, "zstd", 0, 0, RLD, SITE(compression),
	  "Which chunk codecs this site offers its peers (zstd falls back to zlib with a peer that "
	  "does not offer it)." },
	{ S, "role", BDR_CONFIG_T_ROLE, "site", 0, 0, RLD, SITE(role),
	  "site: receives versions and relays them to its children; dp: only receives." },
	{ S, "metrics_listen", BDR_CONFIG_T_ADDRESS, NULL, 0, 0, 0, SITE(metrics_listen),
	  "Address and TCP port of an HTTP listener for Prometheus scrapes of /metrics; off if unset." },

	{ L, "max_manifest_bytes", BDR_CONFIG_T_SIZE, "64M", MIB, BDR_MAX_MANIFEST_BYTES, RLD,
	  LIMIT(max_manifest_bytes), "The largest manifest accepted from a peer." },
	{ L, "max_inflight_bytes", BDR_CONFIG_T_SIZE, "8M", 256 * KIB, 256 * MIB, RLD,
	  LIMIT(max_inflight_bytes), "Bytes of chunk data in flight on one connection." },
	{ L, "max_connections", BDR_CONFIG_T_UINT, "64", 1, 4096, RLD, LIMIT(max_connections),
	  "Peer connections open at once, incoming and outgoing together." },
	{ L, "connect_timeout_s", BDR_CONFIG_T_UINT, "15", 1, 600, RLD, LIMIT(connect_timeout_s),
	  "Seconds a connection to a peer may take to open and complete its handshake." },
	{ L, "idle_timeout_s", BDR_CONFIG_T_UINT, "120", 5, 3600, RLD, LIMIT(idle_timeout_s),
	  "Seconds a peer connection may stay silent before it is closed." },
	{ L, "max_transfers", BDR_CONFIG_T_UINT, "8", 1, 1024, RLD, LIMIT(max_transfers),
	  "Transfers running at once, to and from all peers together." },
	{ L, "max_transfers_per_peer", BDR_CONFIG_T_UINT, "2", 1, 64, RLD,
	  LIMIT(max_transfers_per_peer), "Transfers running at once to one peer." },
	{ L, "chunk_cache_bytes", BDR_CONFIG_T_SIZE, "32M", 0, 1024 * MIB, 0,
	  LIMIT(chunk_cache_bytes),
	  "Memory for encoded chunks shared by transfers of one version to several sites." },
	{ L, "retries", BDR_CONFIG_T_UINT, "10", 0, 1000, RLD, LIMIT(retries),
	  "Retries of a failed transfer on one address before the next address is tried." },
	{ L, "retry_delay_s", BDR_CONFIG_T_UINT, "5", 1, 86400, RLD, LIMIT(retry_delay_s),
	  "Seconds between a failed attempt of a transfer and the next." },
	{ L, "history_days", BDR_CONFIG_T_UINT, "30", 1, 3650, RLD, LIMIT(history_days),
	  "Days that transfers which ended stay in status and metrics before they are pruned." },
	{ L, "max_unauth_connections", BDR_CONFIG_T_UINT, "64", 1, 4096, RLD,
	  LIMIT(max_unauth_connections),
	  "Incoming connections that have not completed their handshake, all together." },
	{ L, "max_unauth_per_address", BDR_CONFIG_T_UINT, "8", 1, 4096, RLD,
	  LIMIT(max_unauth_per_address),
	  "Incoming connections that have not completed their handshake, from one address." },
	{ L, "handshake_timeout_s", BDR_CONFIG_T_UINT, "10", 1, 600, RLD, LIMIT(handshake_timeout_s),
	  "Seconds an incoming connection may take to complete its handshake." },
	{ L, "max_connections_per_peer", BDR_CONFIG_T_UINT, "8", 1, 4096, RLD,
	  LIMIT(max_connections_per_peer), "Authenticated incoming connections from one peer." },
	{ L, "peer_memory", BDR_CONFIG_T_SIZE, "256M", 16 * MIB, 64 * 1024 * MIB, RLD,
	  LIMIT(peer_memory), "Memory one peer may make this site hold for what it sends." },

	{ P, "public_key", BDR_CONFIG_T_PUBKEY, NULL, 0, 0, REQ | RLD, PEER(public_key),
	  "The peer's public key, as bdrctl pubkey prints it on that site." },
	{ P, "address", BDR_CONFIG_T_ADDRESSES, NULL, 0, BDR_CONFIG_MAX_ADDRESSES, RLD,
	  PEER(address), "Where to reach the peer; repeat the key to list more, tried in order." },
	{ P, "relation", BDR_CONFIG_T_RELATION, "peer", 0, 0, RLD, PEER(relation),
	  "What the peer is to this site in the hierarchy: parent, child, or neither (peer)." },
	{ P, "packages", BDR_CONFIG_T_PACKAGES, NULL, 0, 0, RLD, PEER(packages),
	  "The packages the peer may send this site and remove from it." },
	{ P, "accept", BDR_CONFIG_T_ACCEPT, "auto", 0, 0, RLD, PEER(accept),
	  "Whose versions the peer may send: only its own, or relayed from their origins too." },

	{ A, "host", BDR_CONFIG_T_ADDRESS, NULL, 0, 0, REQ | RLD, ADDR_WHOLE,
	  "The host and TCP port this address stands for." },
	{ A, "schedule", BDR_CONFIG_T_SCHEDULE, "all all all", 0, 0, RLD, ADDR(schedule),
	  "When the address may be used, and by which priorities; repeat the key to add rules." },
	{ A, "rate", BDR_CONFIG_T_RATE, "unlimited", 0, 0, RLD, ADDR(rate),
	  "How fast bdrd may send to the address, hour by hour." },
	{ A, "capacity", BDR_CONFIG_T_CAPACITY, NULL, 0, 0, RLD, ADDR(rate),
	  "The capacity of the link, of which percentages in rate are taken." },
};
#undef S
#undef L
#undef P
#undef A

#define N_KEYS ARRAY_SIZE(keys)

const struct bdr_peer_config *bdr_config_parent(const struct bdr_config *c)
{
	for (size_t i = 0; i < c->n_peers; i++)
		if (c->peers[i].relation == BDR_REL_PARENT)
			return &c->peers[i];
	return NULL;
}

bool bdr_config_peer_lists(const struct bdr_peer_config *p, const char *package)
{
	return !p->packages || bdr_config_list_has(p->packages, package);
}

bool bdr_config_peer_relays(const struct bdr_peer_config *p)
{
	return p->accept == BDR_ACCEPT_RELAYED ||
	       (p->accept == BDR_ACCEPT_AUTO && p->relation == BDR_REL_PARENT);
}

const struct bdr_config_key *bdr_config_keys(size_t *n)
{
	*n = N_KEYS;
	return keys;
}

const char *bdr_config_section_name(enum bdr_config_section s)
{
	static const char *const names[] = { "site", "limits", "peer", "address" };

	return (size_t)s < ARRAY_SIZE(names) ? names[s] : "?";
}

static const struct bdr_config_key *find_key(int section, const char *name)
{
	for (size_t i = 0; i < N_KEYS; i++)
		if ((int)keys[i].section == section && strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

static bool in_sub(const struct bdr_config_key *k)
{
	return k->section == BDR_CONFIG_PEER || k->section == BDR_CONFIG_ADDRESS;
}

/* sub: the struct bdr_peer_config of a peer key, the struct
 * bdr_config_address of an address key; unused for the others. */
static void *field_of(const struct bdr_config_key *k, struct bdr_config *c, void *sub)
{
	return (char *)(in_sub(k) ? sub : (void *)c) + k->off;
}

static const void *cfield_of(const struct bdr_config_key *k, const struct bdr_config *c,
			     const void *sub)
{
	return (const char *)(in_sub(k) ? sub : (const void *)c) + k->off;
}

/* Index of the peer called name, or c->n_peers. */
static size_t find_peer(const struct bdr_config *c, const char *name)
{
	size_t i = 0;

	while (i < c->n_peers && strcmp(c->peers[i].name, name) != 0)
		i++;
	return i;
}

static void trim_end(char *s)
{
	char *e = s + strlen(s);

	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
}


static void fmt_value(const struct bdr_config_key *k, const void *field, char buf[VALUE_MAX])
{
	bdr_config_types[k->type].format(k, field, buf, VALUE_MAX);
}

void bdr_config_key_summary(const struct bdr_config_key *k, char *buf, size_t size)
{
	char lo[32], hi[32], range[128] = "", def[96];

	if (k->type == BDR_CONFIG_T_UINT || k->type == BDR_CONFIG_T_SIZE) {
		bdr_config_fmt_number(k, lo, sizeof(lo), k->min);
		bdr_config_fmt_number(k, hi, sizeof(hi), k->max);
		snprintf(range, sizeof(range), "%s, %s to %s",
			 k->flags & POW2 ? ", a power of two" : "", lo, hi);
	} else if (k->type == BDR_CONFIG_T_PATH && k->max < PATH_MAX - 1) {
		snprintf(range, sizeof(range), ", at most %" PRIu64 " bytes", k->max);
	} else if (k->type == BDR_CONFIG_T_ADDRESSES) {
		snprintf(range, sizeof(range), ", at most %" PRIu64, k->max);
	}
	if (k->def)
		snprintf(def, sizeof(def), "Default: %s.", k->def);
	else
		snprintf(def, sizeof(def), k->flags & REQ ? "Required." : "Optional.");
	snprintf(buf, size, "%s%s. %s Reloadable: %s.", bdr_config_types[k->type].label, range, def,
		 k->flags & RLD ? "yes" : "no");
}

/* ---- errors ------------------------------------------------------------ */

enum { CUR_NONE = -1, CUR_SKIP = -2 }; /* besides enum bdr_config_section */

/* An [address NAME] section, until a peer's address takes it. */
struct named {
	struct bdr_config_address a;
	unsigned line;      /* of the section */
	size_t peer;        /* the peer that uses it; SIZE_MAX: none (yet) */
	unsigned used_line; /* the line of that peer's address key */
};

/* A peer's "address = NAME", to resolve at the end. */
struct ref {
	size_t peer, slot; /* c->peers[peer].address.v[slot] */
	unsigned line;
};

struct parse {
	const char *path;
	FILE *f;            /* owned */
	char *buf;          /* owned: getline's */
	size_t cap;
	unsigned line;      /* of the line inih is handling */
	struct bdr_config *c;
	struct bdr_config_errors errs; /* owned until handed to the caller */
	int fatal;          /* -errno that stops the load: read error, ENOMEM */
	bool full;          /* BDR_CONFIG_MAX_ERRORS reached */
	int cur;            /* section being read, or CUR_* */
	unsigned sec_line;  /* its line */
	unsigned site_line, limits_line; /* 0: not seen */
	unsigned seen[N_KEYS]; /* line that set each key in the current section */
	struct named *named; /* owned: the [address NAME] sections, n_named */
	size_t n_named;
	struct ref *refs;    /* owned: the peers' addresses that name one */
	size_t n_refs;
};

static struct bdr_peer_config *cur_peer(struct parse *p)
{
	return p->cur == BDR_CONFIG_PEER ? &p->c->peers[p->c->n_peers - 1] : NULL;
}

/* The current peer or [address NAME], for field_of(). */
static void *cur_sub(struct parse *p)
{
	if (p->cur == BDR_CONFIG_ADDRESS)
		return &p->named[p->n_named - 1].a;
	return cur_peer(p);
}

/* Index of the [address NAME] section, or p->n_named. */
static size_t find_named(const struct parse *p, const char *name)
{
	size_t i = 0;

	while (i < p->n_named && strcmp(p->named[i].a.name, name) != 0)
		i++;
	return i;
}

static void add_error_text(struct parse *p, unsigned line, const char *msg)
{
	struct bdr_config_error *v;
	char *text = NULL;
	int r;

	r = line ? asprintf(&text, "%s:%u: %s", p->path, line, msg)
		 : asprintf(&text, "%s: %s", p->path, msg);
	v = r < 0 ? NULL : realloc(p->errs.v, (p->errs.n + 1) * sizeof(*v));
	if (!v) {
		free(r < 0 ? NULL : text);
		p->fatal = -ENOMEM;
		return;
	}
	v[p->errs.n++] = (struct bdr_config_error){ .line = line, .text = text };
	p->errs.v = v;
}

static void add_error(struct parse *p, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void add_error(struct parse *p, unsigned line, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	if (p->full)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	add_error_text(p, line, msg);
	/* The note is the last of at most BDR_CONFIG_MAX_ERRORS lines, on the
	 * line where reading stops: no error found so far is on a later one
	 * (a missing key is reported on its section's earlier line), so it
	 * stays last once sorted. */
	if (p->errs.n == BDR_CONFIG_MAX_ERRORS - 1) {
		add_error_text(p, line > p->line ? line : p->line,
			       "too many errors; stopped reading here");
		p->full = true;
	}
}

/* "[site]", "[limits]", "[peer NAME]", "[address NAME]". */
static void section_label(struct parse *p, int section, char *buf, size_t n)
{
	if (section == BDR_CONFIG_PEER)
		snprintf(buf, n, "[peer %s]", cur_peer(p)->name);
	else if (section == BDR_CONFIG_ADDRESS)
		snprintf(buf, n, "[address %s]", p->named[p->n_named - 1].a.name);
	else
		snprintf(buf, n, "[%s]", bdr_config_section_name((enum bdr_config_section)section));
}

/* Errors stay in file order (insertion sort is stable; n is small). */
static void sort_errors(struct bdr_config_errors *e)
{
	for (size_t i = 1; i < e->n; i++) {
		struct bdr_config_error x = e->v[i];
		size_t j = i;

		for (; j > 0 && e->v[j - 1].line > x.line; j--)
			e->v[j] = e->v[j - 1];
		e->v[j] = x;
	}
}

void bdr_config_errors_free(struct bdr_config_errors *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->v[i].text);
	free(e->v);
	e->v = NULL;
	e->n = 0;
}

/* ---- sections ---------------------------------------------------------- */

static void set_default(struct parse *p, const struct bdr_config_key *k, void *field)
{
	char why[256] = "";
	int err = bdr_config_types[k->type].parse(k, k->def, field, why, sizeof(why));

	/* A bad default is a bug in the table; the tests load every one. */
	if (err == -ENOMEM)
		p->fatal = err;
	else if (err)
		add_error(p, 0, "built-in default %s = %s: %s", k->name, k->def, why);
}

/* A rate in percent needs the capacity, whichever of the two keys comes
 * first: checked once both are read, and reported on the rate's line. */
static void check_rate(struct parse *p, const struct bdr_config_address *a)
{
	char label[BDR_CONFIG_MAX_NAME + 16];
	struct bdr_diag d;

	if (bdr_rate_check(&a->rate, &d) == 0)
		return;
	section_label(p, BDR_CONFIG_ADDRESS, label, sizeof(label));
	for (size_t i = 0; i < N_KEYS; i++)
		if (keys[i].type == BDR_CONFIG_T_RATE && keys[i].section == BDR_CONFIG_ADDRESS)
			add_error(p, p->seen[i] ? p->seen[i] : p->sec_line, "%s %s", label, d.msg);
}

/* Applies the defaults of the keys the section did not set, and reports the
 * required ones missing on the section's line. sub: as for field_of(). */
static void complete_section(struct parse *p, int section, void *sub, bool report)
{
	char label[BDR_CONFIG_MAX_NAME + 16];

	for (size_t i = 0; i < N_KEYS; i++) {
		const struct bdr_config_key *k = &keys[i];

		if ((int)k->section != section || p->seen[i])
			continue;
		if (k->def) {
			set_default(p, k, field_of(k, p->c, sub));
		} else if ((k->flags & REQ) && report) {
			section_label(p, section, label, sizeof(label));
			add_error(p, p->sec_line, "%s is missing the required key '%s'", label,
				  k->name);
		}
	}
	if (section == BDR_CONFIG_ADDRESS && report)
		check_rate(p, sub);
}

static void end_section(struct parse *p)
{
	if (p->cur >= 0)
		complete_section(p, p->cur, cur_sub(p), true);
	p->cur = CUR_NONE;
	memset(p->seen, 0, sizeof(p->seen));
}

static void begin_peer(struct parse *p, const char *name)
{
	struct bdr_config *c = p->c;
	struct bdr_peer_config *v;
	struct bdr_diag d;
	size_t i = find_peer(c, name);

	if (bdr_manifest_check_site(name, &d) < 0) {
		add_error(p, p->line, "[peer %s]: %s", name, d.msg);
	} else if (i < c->n_peers) {
		add_error(p, p->line, "[peer %s] appears twice (first on line %u)", name,
			  c->peers[i].line);
	} else if (!(v = realloc(c->peers, (c->n_peers + 1) * sizeof(*v)))) {
		p->fatal = -ENOMEM;
	} else {
		c->peers = v;
		v = &c->peers[c->n_peers++];
		memset(v, 0, sizeof(*v));
		snprintf(v->name, sizeof(v->name), "%s", name);
		v->line = p->line;
		p->cur = BDR_CONFIG_PEER;
	}
}

/* Its name is checked like a value of a peer's address key: a name of
 * digits and dots would read as an IPv4 address there. */
static void begin_address(struct parse *p, const char *name)
{
	struct named *v;
	struct bdr_diag d;
	size_t i = find_named(p, name);

	if (bdr_manifest_check_name("address", name, BDR_CONFIG_MAX_NAME, &d) < 0) {
		add_error(p, p->line, "[address %s]: %s", name, d.msg);
	} else if (bdr_config_digits_and_dots(name)) {
		add_error(p, p->line, "[address %s]: a name of digits and dots reads as an IPv4 "
				      "address; the name needs another character", name);
	} else if (i < p->n_named) {
		add_error(p, p->line, "[address %s] appears twice (first on line %u)", name,
			  p->named[i].line);
	} else if (!(v = realloc(p->named, (p->n_named + 1) * sizeof(*v)))) {
		p->fatal = -ENOMEM;
	} else {
		p->named = v;
		v = &p->named[p->n_named++];
		bdr_config_address_init(&v->a);
		snprintf(v->a.name, sizeof(v->a.name), "%s", name);
		v->line = p->line;
		v->peer = SIZE_MAX;
		v->used_line = 0;
		p->cur = BDR_CONFIG_ADDRESS;
	}
}

static void begin_single(struct parse *p, int section, unsigned *first, const char *arg)
{
	const char *name = bdr_config_section_name((enum bdr_config_section)section);

	if (*arg) {
		add_error(p, p->line, "[%s] takes no name (found '%s')", name, arg);
	} else if (*first) {
		add_error(p, p->line, "[%s] appears twice (first on line %u)", name, *first);
	} else {
		*first = p->line;
		p->cur = section;
	}
}

/* s is a whole "[...]" line, trimmed. A section that cannot be used is
 * reported once and its keys are skipped (CUR_SKIP), not reported each. */
static void section_line(struct parse *p, char *s)
{
	size_t len = strlen(s);
	char *kind, *arg;

	end_section(p);
	p->cur = CUR_SKIP;
	p->sec_line = p->line;
	if (len < 2 || s[len - 1] != ']') {
		add_error(p, p->line, "a section line must end with ']'");
		return;
	}
	s[len - 1] = '\0';
	kind = s + 1 + strspn(s + 1, " \t");
	arg = kind + strcspn(kind, " \t");
	if (*arg)
		*arg++ = '\0';
	arg += strspn(arg, " \t");
	trim_end(arg);
	if (strcmp(kind, "site") == 0)
		begin_single(p, BDR_CONFIG_SITE, &p->site_line, arg);
	else if (strcmp(kind, "limits") == 0)
		begin_single(p, BDR_CONFIG_LIMITS, &p->limits_line, arg);
	else if (strcmp(kind, "peer") == 0 && !*arg)
		add_error(p, p->line, "[peer] needs the peer's site name: [peer NAME]");
	else if (strcmp(kind, "peer") == 0)
		begin_peer(p, arg);
	else if (strcmp(kind, "address") == 0 && !*arg)
		add_error(p, p->line, "[address] needs a name: [address NAME]");
	else if (strcmp(kind, "address") == 0)
		begin_address(p, arg);
	else
		add_error(p, p->line, "unknown section [%s%s%s]", kind, *arg ? " " : "", arg);
}

/* ---- keys -------------------------------------------------------------- */

/* Names the right section when the key exists in another one. */
static void unknown_key(struct parse *p, const char *label, const char *name)
{
	const struct bdr_config_key *k = NULL;

	for (size_t i = 0; i < N_KEYS && !k; i++)
		if (strcmp(keys[i].name, name) == 0)
			k = &keys[i];
	if (k)
		add_error(p, p->line, "%s unknown key '%s' (it belongs in [%s%s])", label, name,
			  bdr_config_section_name(k->section), in_sub(k) ? " NAME" : "");
	else
		add_error(p, p->line, "%s unknown key '%s'", label, name);
}

/* The key may be set here: not already set, unless repeatable. */
static bool first_set(struct parse *p, const struct bdr_config_key *k, const char *label)
{
	size_t i = (size_t)(k - keys);

	if (p->seen[i] && !bdr_config_types[k->type].repeat) {
		add_error(p, p->line, "%s %s is set twice (first on line %u)", label, k->name,
			  p->seen[i]);
		return false;
	}
	if (!p->seen[i])
		p->seen[i] = p->line; /* even if invalid: no "missing" error too */
	return true;
}

/* An address just added to the current peer that names an [address NAME]
 * section is resolved at the end, and errors then need its line. */
static void note_ref(struct parse *p, const struct bdr_config_addresses *l)
{
	struct ref *v;

	if (!l->v[l->n - 1].name[0])
		return;
	if (!(v = realloc(p->refs, (p->n_refs + 1) * sizeof(*v)))) {
		p->fatal = -ENOMEM;
		return;
	}
	p->refs = v;
	p->refs[p->n_refs++] = (struct ref){ .peer = p->c->n_peers - 1, .slot = l->n - 1,
					     .line = p->line };
}

static void set_value(struct parse *p, const struct bdr_config_key *k, const char *label,
		      const char *value)
{
	char why[768] = "";
	void *field = field_of(k, p->c, cur_sub(p));
	int err;

	if (!*value) {
		add_error(p, p->line, "%s %s has no value", label, k->name);
		return;
	}
	err = bdr_config_types[k->type].parse(k, value, field, why, sizeof(why));
	if (err == -ENOMEM)
		p->fatal = err;
	else if (err)
		add_error(p, p->line, "%s %s = %s: %s", label, k->name, value, why);
	else if (k->type == BDR_CONFIG_T_ADDRESSES)
		note_ref(p, field);
}

static void set_key(struct parse *p, const char *name, const char *value)
{
	char label[BDR_CONFIG_MAX_NAME + 16];
	const struct bdr_config_key *k;

	if (p->cur == CUR_SKIP)
		return;
	if (p->cur == CUR_NONE) {
		add_error(p, p->line, "'%s' comes before any section: keys go under [site], "
				      "[limits], [peer NAME] or [address NAME]", name);
		return;
	}
	section_label(p, p->cur, label, sizeof(label));
	if (!*name)
		add_error(p, p->line, "%s missing key name before '='", label);
	else if (!(k = find_key(p->cur, name)))
		unknown_key(p, label, name);
	else if (first_set(p, k, label)) {
		if (k->off == offsetof(struct bdr_config, site.key) && p->cur == BDR_CONFIG_SITE)
			p->c->site.key_line = p->line; /* for bdr_config_check_key */
		set_value(p, k, label, value);
	}
}

/* inih's handler. inih's section argument is ignored: ours is exact. It
 * returns 1 always, since we keep every error and inih only the first. */
static int on_key(void *user, const char *section, const char *name, const char *value)
{
	struct parse *p = user;

	(void)section;
	if (!p->fatal && !p->full)
		set_key(p, name, value);
	return 1;
}

/* ---- lines ------------------------------------------------------------- */

/* Drops the newline, a UTF-8 byte order mark on line 1, leading and
 * trailing blanks, and a comment: a line starting with ';' or '#', or a
 * ';' after a blank (inih's rule, so values may still hold ';'). */
static char *clean_line(struct parse *p, char *s, size_t len)
{
	if (len && s[len - 1] == '\n')
		s[--len] = '\0';
	if (p->line == 1 && strncmp(s, "\xEF\xBB\xBF", 3) == 0)
		s += 3;
	s += strspn(s, " \t\r");
	if (*s == ';' || *s == '#')
		*s = '\0';
	for (char *c = s; (c = strchr(c, ';')); c++)
		if (c > s && (c[-1] == ' ' || c[-1] == '\t')) {
			*c = '\0';
			break;
		}
	trim_end(s);
	return s;
}

/* Whether s is the "key = value" inih will split: '=' comes before any
 * ':', since inih would split "key: value" too, and one syntax is enough. */
static bool key_line(const char *s)
{
	const char *sep = s + strcspn(s, "=:");

	return *sep == '=';
}

static bool read_raw(struct parse *p, size_t *len)
{
	ssize_t r;

	errno = 0;
	r = getline(&p->buf, &p->cap, p->f);
	if (r < 0) {
		if (!feof(p->f)) {
			p->fatal = errno ? -errno : -EIO;
			add_error(p, p->line + 1, "cannot read: %s", strerror(-p->fatal));
		}
		return false;
	}
	*len = (size_t)r;
	p->line++;
	return true;
}

/* inih's reader: one whole line per call, so p->line is the line inih is
 * parsing when it calls on_key. Lines that are not for inih (blank,
 * comment, section, malformed) reach it as "". */
static char *read_line(char *str, int num, void *stream)
{
	struct parse *p = stream;
	size_t len;
	char *s;

	if (p->fatal || p->full || !read_raw(p, &len))
		return NULL;
	str[0] = '\0';
	if (memchr(p->buf, '\0', len)) {
		add_error(p, p->line, "line contains a NUL byte");
		return str;
	}
	s = clean_line(p, p->buf, len);
	if (*s == '[')
		section_line(p, s);
	else if (*s && !key_line(s))
		add_error(p, p->line, "expected 'key = value' or '[section]'");
	else if (strlen(s) >= (size_t)num)
		add_error(p, p->line, "line too long: at most %d characters, besides indentation "
				      "and comments", num - 1);
	else
		memcpy(str, s, strlen(s) + 1);
	return str;
}

/* ---- load -------------------------------------------------------------- */

/* A peer that sends only its own packages and lists them names their
 * origin (bdr.conf(5), ORIGINS): no other such peer may list one of them. */
static void check_origins(struct parse *p, size_t i)
{
	const struct bdr_config *c = p->c;
	const struct bdr_peer_config *a = &c->peers[i];
	char *copy, *save = NULL;

	if (!a->packages || bdr_config_peer_relays(a))
		return;
	if (!(copy = strdup(a->packages))) {
		p->fatal = -ENOMEM;
		return;
	}
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
		for (size_t j = 0; j < i; j++) {
			const struct bdr_peer_config *b = &c->peers[j];

			if (b->packages && !bdr_config_peer_relays(b) &&
			    bdr_config_list_has(b->packages, t))
				add_error(p, a->line, "[peer %s] packages names %s, of which [peer %s] "
					  "(line %u) is the origin already: a package has one origin",
					  a->name, t, b->name, b->line);
		}
	free(copy);
}

static void check_peers(struct parse *p)
{
	const struct bdr_config *c = p->c;
	const struct bdr_peer_config *parent = NULL;

	for (size_t i = 0; i < c->n_peers; i++) {
		const struct bdr_peer_config *a = &c->peers[i];

		if (a->relation == BDR_REL_PARENT && parent)
			add_error(p, a->line, "[peer %s] relation = parent, but [peer %s] (line %u) "
					      "is this site's parent already", a->name, parent->name,
				  parent->line);
		else if (a->relation == BDR_REL_PARENT)
			parent = a;
		if (a->relation == BDR_REL_CHILD && c->site.role == BDR_ROLE_DP)
			add_error(p, a->line, "[peer %s] relation = child, but this site's role is "
					      "dp, which relays nothing", a->name);

		if (c->site.name && strcmp(a->name, c->site.name) == 0)
			add_error(p, a->line, "[peer %s] is this site's own name", a->name);
		check_origins(p, i);
		for (size_t j = 0; j < i && !sodium_is_zero(a->public_key, BDR_PK_LEN); j++)
			if (memcmp(c->peers[j].public_key, a->public_key, BDR_PK_LEN) == 0)
				add_error(p, a->line,
					  "[peer %s] public_key is the same as [peer %s]'s (line %u)",
					  a->name, c->peers[j].name, c->peers[j].line);
	}
}

/* A named address of a peer that is also listed otherwise. Inline ones
 * were compared as they were read, and names among themselves; this is a
 * name's host against the rest. */
static void check_resolved(struct parse *p, const struct ref *r)
{
	const struct bdr_peer_config *peer = &p->c->peers[r->peer];
	const struct bdr_config_address *a = &peer->address.v[r->slot];
	char text[BDR_CONFIG_MAX_HOST + 16];

	for (size_t t = 0; t < peer->address.n; t++) {
		const struct bdr_config_address *b = &peer->address.v[t];

		/* A later name reports it itself, on its own line. */
		if (t == r->slot || (t > r->slot && b->name[0]) || !b->port)
			continue;
		if (b->port == a->port && strcmp(b->host, a->host) == 0) {
			bdr_config_fmt_address(a, text, sizeof(text));
			add_error(p, r->line, "[peer %s] address '%s': %s is listed twice",
				  peer->name, a->name, text);
			return;
		}
	}
}

/* Copies each [address NAME] into the peer address that names it. A name
 * with no section, a section two peers use and one no peer uses are
 * errors: a mistyped name would otherwise leave a link without its limits. */
static void resolve_addresses(struct parse *p)
{
	struct bdr_config *c = p->c;

	for (size_t i = 0; i < p->n_refs; i++) {
		const struct ref *r = &p->refs[i];
		struct bdr_peer_config *peer = &c->peers[r->peer];
		struct bdr_config_address *a = &peer->address.v[r->slot];
		size_t j = find_named(p, a->name);
		struct named *nm = j < p->n_named ? &p->named[j] : NULL;

		if (!nm) {
			add_error(p, r->line, "[peer %s] address '%s': no [address %s] section%s",
				  peer->name, a->name, a->name,
				  strchr(a->name, '.') ? " (or is it a host missing its :PORT?)" : "");
		} else if (nm->peer != SIZE_MAX) {
			add_error(p, r->line, "[peer %s] address '%s': [address %s] is already used "
					      "by [peer %s] (line %u)", peer->name, a->name, a->name,
				  c->peers[nm->peer].name, nm->used_line);
		} else {
			nm->peer = r->peer;
			nm->used_line = r->line;
			*a = nm->a;
			check_resolved(p, r);
		}
	}
	for (size_t i = 0; i < p->n_named; i++)
		if (p->named[i].peer == SIZE_MAX)
			add_error(p, p->named[i].line, "[address %s] is used by no peer",
				  p->named[i].a.name);
}

static void finish(struct parse *p, int rc)
{
	if (rc == -2)
		p->fatal = -ENOMEM;
	else if (rc > 0 && !p->fatal && !p->full) /* inih saw what we let through */
		add_error(p, (unsigned)rc, "syntax error");
	if (p->fatal)
		return;
	end_section(p);
	if (!p->site_line)
		add_error(p, 0, "missing the [site] section");
	if (!p->limits_line)
		complete_section(p, BDR_CONFIG_LIMITS, NULL, false);
	resolve_addresses(p);
	check_peers(p);
	sort_errors(&p->errs);
}

int bdr_config_load(const char *path, struct bdr_config *out, struct bdr_config_errors *errs)
{
	struct parse p = { .path = path, .c = out, .cur = CUR_NONE };
	int err;

	memset(out, 0, sizeof(*out));
	if (!(out->path = strdup(path))) {
		err = -ENOMEM;
		goto out;
	}
	if (!(p.f = fopen(path, "re"))) {
		p.fatal = -errno;
		add_error(&p, 0, "cannot open: %s", strerror(errno));
	} else {
		finish(&p, ini_parse_stream(read_line, &p, on_key, &p));
		fclose(p.f);
	}
	err = p.fatal ? p.fatal : p.errs.n ? -BDR_EFORMAT : 0;
out:
	free(p.buf);
	free(p.named);
	free(p.refs);
	if (err)
		bdr_config_free(out);
	if (errs)
		*errs = p.errs;
	else
		bdr_config_errors_free(&p.errs);
	return err;
}

int bdr_config_check_key(const struct bdr_config *c, struct bdr_config_errors *errs)
{
	struct parse p = { .path = c->path, .errs = *errs };
	struct bdr_diag why = { "" };
	int err = bdr_key_check(c->site.key, &why);

	if (err < 0)
		add_error(&p, c->site.key_line, "key = %s: %s", c->site.key, why.msg);
	/* chgrp needs membership: refuse now rather than at the first push. */
	if (c->site.share_group.name &&
	    bdr_library_share_check(c->site.share_group.gid, c->site.share_group.name, &why) < 0)
		add_error(&p, 0, "%s", why.msg), err = err < 0 ? err : -EPERM;
	*errs = p.errs;
	return p.fatal ? p.fatal : err;
}

static void free_fields(int section, void *base)
{
	for (size_t i = 0; i < N_KEYS; i++)
		if ((int)keys[i].section == section)
			bdr_config_types[keys[i].type].free((char *)base + keys[i].off);
}

void bdr_config_free(struct bdr_config *c)
{
	free_fields(BDR_CONFIG_SITE, c);
	free_fields(BDR_CONFIG_LIMITS, c);
	for (size_t i = 0; i < c->n_peers; i++) {
		struct bdr_config_addresses *l = &c->peers[i].address;

		for (size_t j = 0; j < l->n; j++)
			free_fields(BDR_CONFIG_ADDRESS, &l->v[j]);
		free_fields(BDR_CONFIG_PEER, &c->peers[i]);
	}
	free(c->peers);
	free(c->path);
	memset(c, 0, sizeof(*c));
}

const struct bdr_peer_config *bdr_config_peer(const struct bdr_config *c, const char *name)
{
	size_t i = find_peer(c, name);

	return i < c->n_peers ? &c->peers[i] : NULL;
}
/* ---- dump -------------------------------------------------------------- */

/* A schedule's canonical rules, "r1; r2; ...", on as many lines of the
 * repeatable key as it takes to keep each within LINE_CHARS: the lines
 * apply in order, as the rules do. A rule is far shorter than a line. */
static void dump_rules(FILE *f, const char *name, const char *text)
{
	size_t room = LINE_CHARS - strlen(name) - 3; /* "NAME = " */

	while (*text) {
		size_t len = strlen(text);

		if (len > room) {
			const char *s = text;

			len = 0;
			while ((s = strstr(s, "; ")) && (size_t)(s - text) <= room) {
				len = (size_t)(s - text);
				s += 2;
			}
			if (!len) /* not expected */
				len = strlen(text);
		}
		fprintf(f, "%s = %.*s\n", name, (int)len, text);
		text += len;
		text += strspn(text, "; ");
	}
}

/* sub: as for field_of(). */
static void dump_keys(FILE *f, int section, const struct bdr_config *c, const void *sub)
{
	char buf[VALUE_MAX];

	for (size_t i = 0; i < N_KEYS; i++) {
		const struct bdr_config_key *k = &keys[i];
		const void *field;

		/* Only then: sub is NULL for the site and limits sections, and
		 * an offset from NULL is undefined (found by fuzz_config). */
		if ((int)k->section != section)
			continue;
		field = cfield_of(k, c, sub);
		if (k->type == BDR_CONFIG_T_ADDRESSES) {
			const struct bdr_config_addresses *l = field;

			for (size_t j = 0; j < l->n; j++) {
				bdr_config_fmt_address_or_name(&l->v[j], buf, sizeof(buf));
				fprintf(f, "%s = %s\n", k->name, buf);
			}
			continue;
		}
		fmt_value(k, field, buf);
		if (k->type == BDR_CONFIG_T_SCHEDULE)
			dump_rules(f, k->name, buf);
		else if (*buf) /* unset optional keys are left out */
			fprintf(f, "%s = %s\n", k->name, buf);
	}
}

/* Each peer is followed by the [address NAME] sections it uses. */
int bdr_config_dump(const struct bdr_config *c, FILE *f)
{
	fprintf(f, "# bdrd: effective configuration loaded from %s\n\n[site]\n", c->path);
	dump_keys(f, BDR_CONFIG_SITE, c, NULL);
	fprintf(f, "\n[limits]\n");
	dump_keys(f, BDR_CONFIG_LIMITS, c, NULL);
	for (size_t i = 0; i < c->n_peers; i++) {
		const struct bdr_config_addresses *l = &c->peers[i].address;

		fprintf(f, "\n[peer %s]\n", c->peers[i].name);
		dump_keys(f, BDR_CONFIG_PEER, c, &c->peers[i]);
		for (size_t j = 0; j < l->n; j++) {
			if (!l->v[j].name[0])
				continue;
			fprintf(f, "\n[address %s]\n", l->v[j].name);
			dump_keys(f, BDR_CONFIG_ADDRESS, c, &l->v[j]);
		}
	}
	return fflush(f) == 0 && !ferror(f) ? 0 : -EIO;
}

/* ---- reload ------------------------------------------------------------ */

static int add_change(struct bdr_config_diff *d, const struct bdr_config_key *k, const char *peer,
		      const char *address, bool reloadable, char *text)
{
	struct bdr_config_change *v;

	if (!text)
		return -ENOMEM;
	v = realloc(d->v, (d->n + 1) * sizeof(*v));
	if (!v) {
		free(text);
		return -ENOMEM;
	}
	d->v = v;
	v = &d->v[d->n++];
	*v = (struct bdr_config_change){ .key = k, .reloadable = reloadable, .text = text };
	snprintf(v->peer, sizeof(v->peer), "%s", peer ? peer : "");
	snprintf(v->address, sizeof(v->address), "%s", address ? address : "");
	d->restart_needed |= !reloadable;
	return 0;
}

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *xasprintf(const char *fmt, ...)
{
	char *s = NULL;
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&s, fmt, ap);
	va_end(ap);
	return r < 0 ? NULL : s;
}

/* Values are compared as text: formats are canonical, so equal text is an
 * equal value, and the text is what the change reports anyway. sa, sb: as
 * for field_of(); peer, address: what the changes are about. */
static int diff_keys(struct bdr_config_diff *d, int section, const char *peer, const char *address,
		     const struct bdr_config *a, const void *sa, const struct bdr_config *b,
		     const void *sb)
{
	char va[VALUE_MAX], vb[VALUE_MAX], label[BDR_CONFIG_MAX_NAME + 16];
	int err = 0;

	if (address)
		snprintf(label, sizeof(label), "[address %s]", address);
	else if (peer)
		snprintf(label, sizeof(label), "[peer %s]", peer);
	else
		snprintf(label, sizeof(label), "[%s]",
			 bdr_config_section_name((enum bdr_config_section)section));
	for (size_t i = 0; i < N_KEYS && !err; i++) {
		const struct bdr_config_key *k = &keys[i];

		if ((int)k->section != section)
			continue;
		fmt_value(k, cfield_of(k, a, sa), va);
		fmt_value(k, cfield_of(k, b, sb), vb);
		if (strcmp(va, vb) != 0)
			err = add_change(d, k, peer, address, k->flags & RLD,
					 xasprintf("%s %s = %s -> %s", label, k->name,
						   *va ? va : "(unset)", *vb ? vb : "(unset)"));
	}
	return err;
}

static int diff_peers(struct bdr_config_diff *d, const struct bdr_config *a,
		      const struct bdr_config *b)
{
	int err = 0;

	for (size_t i = 0; i < a->n_peers && !err; i++) {
		const struct bdr_peer_config *pa = &a->peers[i], *pb = bdr_config_peer(b, pa->name);

		if (pb)
			err = diff_keys(d, BDR_CONFIG_PEER, pa->name, NULL, a, pa, b, pb);
		else
			err = add_change(d, NULL, pa->name, NULL, true,
					 xasprintf("[peer %s] removed", pa->name));
	}
	for (size_t i = 0; i < b->n_peers && !err; i++)
		if (!bdr_config_peer(a, b->peers[i].name))
			err = add_change(d, NULL, b->peers[i].name, NULL, true,
					 xasprintf("[peer %s] added", b->peers[i].name));
	return err;
}

/* The [address NAME] of a loaded configuration (names are unique in it),
 * and in *peer the peer that uses it; NULL if there is none. */
static const struct bdr_config_address *find_address(const struct bdr_config *c, const char *name,
						     const struct bdr_peer_config **peer)
{
	for (size_t i = 0; i < c->n_peers; i++)
		for (size_t j = 0; j < c->peers[i].address.n; j++)
			if (strcmp(c->peers[i].address.v[j].name, name) == 0) {
				*peer = &c->peers[i];
				return &c->peers[i].address.v[j];
			}
	return NULL;
}

/* Sections by name, wherever they are used: one that moves from a peer to
 * another shows in both peers' address keys, and here only if its own
 * keys change. */
static int diff_addresses(struct bdr_config_diff *d, const struct bdr_config *a,
			  const struct bdr_config *b)
{
	const struct bdr_peer_config *pa, *pb;
	const struct bdr_config_address *x, *y;
	int err = 0;

	for (size_t i = 0; i < a->n_peers && !err; i++)
		for (size_t j = 0; j < a->peers[i].address.n && !err; j++) {
			x = &a->peers[i].address.v[j];
			if (!x->name[0])
				continue;
			if ((y = find_address(b, x->name, &pb)))
				err = diff_keys(d, BDR_CONFIG_ADDRESS, pb->name, x->name, a, x, b, y);
			else
				err = add_change(d, NULL, a->peers[i].name, x->name, true,
						 xasprintf("[address %s] removed", x->name));
		}
	for (size_t i = 0; i < b->n_peers && !err; i++)
		for (size_t j = 0; j < b->peers[i].address.n && !err; j++) {
			y = &b->peers[i].address.v[j];
			if (y->name[0] && !find_address(a, y->name, &pa))
				err = add_change(d, NULL, b->peers[i].name, y->name, true,
						 xasprintf("[address %s] added", y->name));
		}
	return err;
}

int bdr_config_diff(const struct bdr_config *cur, const struct bdr_config *next,
		    struct bdr_config_diff *out)
{
	int err;

	memset(out, 0, sizeof(*out));
	err = diff_keys(out, BDR_CONFIG_SITE, NULL, NULL, cur, NULL, next, NULL);
	if (!err)
		err = diff_keys(out, BDR_CONFIG_LIMITS, NULL, NULL, cur, NULL, next, NULL);
	if (!err)
		err = diff_peers(out, cur, next);
	if (!err)
		err = diff_addresses(out, cur, next);
	if (err)
		bdr_config_diff_free(out);
	return err;
}

void bdr_config_diff_free(struct bdr_config_diff *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->v[i].text);
	free(d->v);
	memset(d, 0, sizeof(*d));
}

static void swap_bytes(void *a, void *b, size_t n)
{
	unsigned char *x = a, *y = b;

	for (size_t i = 0; i < n; i++) {
		unsigned char t = x[i];

		x[i] = y[i];
		y[i] = t;
	}
}

/* Exchanging (not copying) moves ownership along with the value, so
 * nothing is allocated and nothing can fail. Every [address NAME] key is
 * reloadable (the table's comment), so only site, limits and peer keys
 * are ever exchanged. */
void bdr_config_keep_fixed(struct bdr_config *next, struct bdr_config *cur)
{
	for (size_t i = 0; i < N_KEYS; i++) {
		const struct bdr_config_key *k = &keys[i];

		if ((k->flags & RLD) || k->section == BDR_CONFIG_ADDRESS)
			continue;
		if (k->section != BDR_CONFIG_PEER) {
			swap_bytes(field_of(k, next, NULL), field_of(k, cur, NULL), k->size);
			continue;
		}
		for (size_t j = 0; j < next->n_peers; j++) {
			struct bdr_peer_config *pn = &next->peers[j];
			size_t c = find_peer(cur, pn->name);

			if (c < cur->n_peers)
				swap_bytes(field_of(k, next, pn), field_of(k, cur, &cur->peers[c]),
					   k->size);
		}
	}
}
