/* bdrd's configuration: one INI file, bdr.conf(5), described by one table
 * of keys (bdr_config_keys()). Parsing, validation, defaults, the dump,
 * the reload rules and the man page check in tests/test_config.c all
 * follow from that table; adding a key is adding a row and a field.
 *
 * Daemon layer. This module does no I/O beyond reading the file, one
 * group lookup and a look at the time zone's file, so the daemon may call
 * it from a signal-driven reload or from uv_queue_work; it never includes
 * uv.h.
 *
 * Reload (SIGHUP), as the daemon should do it:
 *
 *   struct bdr_config next;
 *   struct bdr_config_errors errs = { 0 };
 *   if (bdr_config_load(cur.path, &next, &errs) < 0) {
 *           log each errs.v[i].text; keep cur; ...
 *   }
 *   bdr_config_diff(&cur, &next, &diff);    log each change, and for
 *                                           !reloadable ones "ignored
 *                                           until restart"
 *   bdr_config_keep_fixed(&next, &cur);     next keeps the running values
 *                                           of every non-reloadable key
 *   bdr_config_free(&cur); cur = next;      then re-find peers by name
 *
 * Every key of [address NAME] sections (host, schedule, rate, capacity),
 * [site] timezone and [limits] max_transfers_per_peer is reloadable. */
#ifndef BDR_DAEMON_CONFIG_H
#define BDR_DAEMON_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "bdr/import.h"
#include "bdr/key.h"
#include "bdr/manifest.h"
#include "daemon/log.h"
#include "daemon/schedule.h"
#include "daemon/throttle.h"

#define BDR_CONFIG_PATH_DEFAULT "/etc/bdr/bdr.conf"
#define BDR_CONFIG_MAX_HOST 253      /* a DNS name's limit */
#define BDR_CONFIG_MAX_ADDRESSES 16  /* address lines per peer */
#define BDR_CONFIG_MAX_ERRORS 100    /* reported per load; then it stops */
#define BDR_CONFIG_MAX_NAME 64       /* of an [address NAME] section */
/* Where [site] timezone names are looked up ("UTC" need not be there). */
#define BDR_CONFIG_ZONEINFO "/usr/share/zoneinfo"

/* host:port. host is a literal IPv4 or IPv6 address (kept without the
 * brackets the file needs for IPv6) or a DNS name the daemon resolves when
 * it connects or binds.
 *
 * A peer's address is written either inline, "address = HOST:PORT" (name
 * "", the default schedule and rate: always open, unlimited), or as the
 * name of an [address NAME] section, "address = NAME", which gives host
 * and port (its host key) and may give a schedule, a rate and a capacity.
 * The load resolves names: every address of a loaded peer has its host,
 * port, schedule and rate, whichever way it was written. [site] listen
 * uses host and port only (its schedule and rate are zero). */
struct bdr_config_address {
	char host[BDR_CONFIG_MAX_HOST + 1];
	uint16_t port;
	char name[BDR_CONFIG_MAX_NAME + 1]; /* the [address NAME], or "" */
	struct bdr_schedule schedule; /* in [site] timezone's local time */
	struct bdr_rate_spec rate;    /* rate and capacity (capacity_bps) */
};

/* A repeatable key's values, in file order. */
struct bdr_config_addresses {
	struct bdr_config_address *v; /* owned: n entries */
	size_t n;
};

/* Resolved once at load: the control socket is given this group when it
 * is created, and the credential check costs no NSS lookup. */
struct bdr_config_group {
	char *name; /* owned; NULL: not set (root and bdrd's user only) */
	gid_t gid;  /* valid when name is set */
};

/* A site of the hierarchy (bdr.conf(5), HIERARCHY) receives versions and
 * relays them to its children; a distribution point only receives. */
enum bdr_site_role { BDR_ROLE_SITE, BDR_ROLE_DP };

/* The chunk codecs a site offers in HELLO: with dictionary, codec 2 too;
 * with zstd, codecs 2, 3 and 4 (proto/wire.md, "Chunk codecs"). */
enum bdr_compression { BDR_COMPRESSION_DICT, BDR_COMPRESSION_ZLIB, BDR_COMPRESSION_ZSTD };

/* What a peer is to this site. A parent is the one site whose pushes it
 * takes once it has one; a child is sent every version this site
 * receives; a plain peer is neither (sites outside a hierarchy). */
enum bdr_peer_relation { BDR_REL_PEER, BDR_REL_PARENT, BDR_REL_CHILD };

/* Whose versions a peer may send (bdr.conf(5), ORIGINS): own, only those
 * its own key signs (it is their origin); relayed, those of any origin
 * (the origin rule still applies); auto, relayed from this site's parent
 * and own from any other peer. */
enum bdr_peer_accept { BDR_ACCEPT_AUTO, BDR_ACCEPT_OWN, BDR_ACCEPT_RELAYED };

struct bdr_config_site {
	char *name;    /* owned: this site's name (bdr_manifest_check_site) */
	struct bdr_config_address listen;
	char *key;     /* owned: absolute path of the Ed25519 key file */
	unsigned key_line; /* the line of "key =" in the file */
	char *data;    /* owned: absolute path of the data directory */
	char *control; /* owned: absolute path of the control socket */
	struct bdr_config_group control_group;
	struct bdr_config_group share_group; /* for bdr_library_opts.share */
	enum bdr_log_level log_level;
	uint32_t keep_versions; /* for bdr_library_opts.keep_versions */
	uint32_t chunk_avg;     /* for bdr_chunker_params_default() */
	/* owned: the zone schedules are read in, an IANA name such as
	 * "Europe/Paris" whose BDR_CONFIG_ZONEINFO file was a TZif file at
	 * load, or "UTC"; NULL: the zone the daemon was started in (its TZ, or
	 * /etc/localtime). The daemon sets TZ from it (":NAME"; "UTC0" for UTC,
	 * which needs no file) and calls tzset() before it reads any schedule,
	 * and again after a reload that changes it. */
	char *timezone;
	enum bdr_site_role role;
	enum bdr_quick_check quick_check; /* for bdr_import_req */
	enum bdr_compression compression; /* capabilities offered in HELLO */
	struct bdr_config_address metrics_listen; /* port 0: no metrics listener */
};

struct bdr_config_limits {
	uint64_t max_manifest_bytes; /* largest manifest accepted from a peer */
	uint64_t max_inflight_bytes; /* chunk bytes in flight per connection */
	uint32_t max_connections;    /* peer connections, in and out */
	uint32_t connect_timeout_s;
	uint32_t idle_timeout_s;
	uint32_t max_transfers; /* running at once, all peers together */
	uint32_t max_transfers_per_peer; /* running at once to one peer */
	uint64_t chunk_cache_bytes; /* encoded chunks shared by a fan-out (0: none) */
	uint32_t retries;       /* failed attempts before a transfer fails */
	uint32_t retry_delay_s; /* between attempts */
	uint32_t history_days;  /* ended transfers kept for status (history.c) */
	/* Floods and memory (guard.h): connections that have not completed
	 * their handshake, in all and per source address, and how long they
	 * may take; per peer, its connections and the memory it may hold. */
	uint32_t max_unauth_connections;
	uint32_t max_unauth_per_address;
	uint32_t handshake_timeout_s;
	uint32_t max_connections_per_peer;
	uint64_t peer_memory;
};

struct bdr_peer_config {
	char name[BDR_MAX_SITE_NAME + 1]; /* from [peer NAME] */
	uint8_t public_key[BDR_PK_LEN];
	struct bdr_config_addresses address; /* may be empty: the peer only
					      * connects to us; each is used by
					      * this peer only */
	enum bdr_peer_relation relation;
	/* owned: the packages the peer may send and remove, names separated
	 * by commas; NULL: any (bdr_config_peer_lists) */
	char *packages;
	enum bdr_peer_accept accept;
	unsigned line; /* of the [peer NAME] line */
};

struct bdr_config {
	char *path; /* owned: the file it was loaded from */
	struct bdr_config_site site;
	struct bdr_config_limits limits;
	struct bdr_peer_config *peers; /* owned: n_peers, in file order */
	size_t n_peers;
};

/* One problem found in a file, ready to print. */
struct bdr_config_error {
	unsigned line; /* 0: about the whole file */
	char *text;    /* owned: "FILE:LINE: message" (or "FILE: message") */
};

/* Sorted by line. */
struct bdr_config_errors {
	struct bdr_config_error *v; /* owned: n entries */
	size_t n;
};

/* Reads path into *out, applying defaults. Returns 0; -BDR_EFORMAT if the
 * file has problems, every one of them in errs (up to
 * BDR_CONFIG_MAX_ERRORS); -errno if it cannot be read (one line in errs
 * says why); -ENOMEM. On failure *out is empty and needs no free. errs may
 * be NULL; otherwise the caller frees it whatever the result. */
int bdr_config_load(const char *path, struct bdr_config *out, struct bdr_config_errors *errs);
void bdr_config_free(struct bdr_config *c);
/* The key file c names passes the checks bdrd makes at start
 * (bdr_key_check); if not, one error "FILE:LINE: key = PATH: why" is
 * added to errs. 0, -errno/-BDR_E* of the check, or -ENOMEM. */
int bdr_config_check_key(const struct bdr_config *c, struct bdr_config_errors *errs);
void bdr_config_errors_free(struct bdr_config_errors *e);

/* The [peer NAME] section, or NULL. Pointers into a config die with it:
 * after a reload, find peers again by name. */
const struct bdr_peer_config *bdr_config_peer(const struct bdr_config *c, const char *name);
/* The peer whose relation is parent, or NULL (a load allows one at most). */
const struct bdr_peer_config *bdr_config_parent(const struct bdr_config *c);
/* Whether p's packages key names package (or is not set: any). */
bool bdr_config_peer_lists(const struct bdr_peer_config *p, const char *package);
/* p's accept with auto resolved: true for relayed. */
bool bdr_config_peer_relays(const struct bdr_peer_config *p);

/* Prints the effective configuration (defaults filled in) as a file that
 * loads back to the same configuration. Holds no secrets: keys are public.
 * 0 or -EIO. */
int bdr_config_dump(const struct bdr_config *c, FILE *f);

/* One key that differs between two configurations. [address NAME]
 * sections are matched by name: a section's key changes are listed with
 * address set to its name and peer to the peer that uses it (in next); a
 * section that appears or goes is one change with key NULL and address
 * set, besides the change to its peer's address key. */
struct bdr_config_change {
	const struct bdr_config_key *key; /* NULL: a whole peer (address "")
					   * or [address] section added or
					   * removed */
	char peer[BDR_MAX_SITE_NAME + 1]; /* the [peer NAME], or "" */
	char address[BDR_CONFIG_MAX_NAME + 1]; /* the [address NAME], or "" */
	bool reloadable;
	char *text; /* owned: "[site] listen = 0.0.0.0:7411 -> [::]:7411" */
};

struct bdr_config_diff {
	struct bdr_config_change *v; /* owned: n entries, table order */
	size_t n;
	bool restart_needed; /* some change is not reloadable */
};

/* What differs from cur to next. 0 or -ENOMEM (out is then empty). */
int bdr_config_diff(const struct bdr_config *cur, const struct bdr_config *next,
		    struct bdr_config_diff *out);
void bdr_config_diff_free(struct bdr_config_diff *d);

/* Gives next the values of every key a reload may not change, by
 * exchanging them with cur's: cur is about to be freed, and the running
 * values (strings included) keep their addresses. Cannot fail. */
void bdr_config_keep_fixed(struct bdr_config *next, struct bdr_config *cur);

/* The table. */
enum bdr_config_section {
	BDR_CONFIG_SITE,
	BDR_CONFIG_LIMITS,
	BDR_CONFIG_PEER, /* [peer NAME], one per peer site */
	BDR_CONFIG_ADDRESS, /* [address NAME], one per named peer address */
};

enum bdr_config_type {
	BDR_CONFIG_T_UINT,      /* decimal integer */
	BDR_CONFIG_T_SIZE,      /* bytes: decimal, optional K, M or G (x 1024^n) */
	BDR_CONFIG_T_SITE,      /* a site name */
	BDR_CONFIG_T_PATH,      /* an absolute path; max: its longest length */
	BDR_CONFIG_T_ADDRESS,   /* host:port */
	BDR_CONFIG_T_ADDRESSES, /* host:port or an [address] section's name,
				 * repeatable; max: how many */
	BDR_CONFIG_T_GROUP,     /* the name of an existing group */
	BDR_CONFIG_T_LOG_LEVEL, /* error, warn, info or debug */
	BDR_CONFIG_T_PUBKEY,    /* base64 Ed25519 public key */
	BDR_CONFIG_T_TIMEZONE,  /* "UTC" or a zone of BDR_CONFIG_ZONEINFO */
	BDR_CONFIG_T_SCHEDULE,  /* bdr_schedule_parse() rules, repeatable: each
				 * line's rules apply over the lines before */
	BDR_CONFIG_T_RATE,      /* bdr_rate_parse(), into a bdr_rate_spec */
	BDR_CONFIG_T_CAPACITY,  /* bdr_rate_set_capacity(), into the same */
	BDR_CONFIG_T_ROLE,      /* site or dp: enum bdr_site_role */
	BDR_CONFIG_T_RELATION,  /* peer, parent or child: enum bdr_peer_relation */
	BDR_CONFIG_T_QUICK_CHECK, /* mtime or strict: enum bdr_quick_check */
	BDR_CONFIG_T_COMPRESSION, /* dictionary or zlib: enum bdr_compression */
	BDR_CONFIG_T_PACKAGES,  /* package names separated by commas */
	BDR_CONFIG_T_ACCEPT,    /* auto, own or relayed: enum bdr_peer_accept */
};

#define BDR_CONFIG_F_REQUIRED 1u /* no default: must be set */
#define BDR_CONFIG_F_RELOAD 2u   /* SIGHUP applies a change */
#define BDR_CONFIG_F_POW2 4u     /* a number that must be a power of two */

struct bdr_config_key {
	enum bdr_config_section section;
	const char *name;
	enum bdr_config_type type;
	const char *def;   /* the default, as written in a file; NULL: none */
	uint64_t min, max; /* numbers: bounds; see the type for others */
	unsigned flags;
	size_t off, size;  /* the field, in struct bdr_config (site, limits),
			    * struct bdr_peer_config (peer) or struct
			    * bdr_config_address (address) */
	const char *doc;   /* one line; opens the key's entry in bdr.conf(5) */
};

const struct bdr_config_key *bdr_config_keys(size_t *n);
/* "site", "limits", "peer", "address". */
const char *bdr_config_section_name(enum bdr_config_section s);
/* One line of type, bounds, default and reloadability, e.g.
 * "Integer, 1 to 100. Default: 5. Reloadable: no." bdr.conf(5) carries it
 * verbatim under each key (tests/test_config.c checks). */
void bdr_config_key_summary(const struct bdr_config_key *k, char *buf, size_t size);

#endif
