/* The site database, second half: the daemon's durable state (see db.h
 * and db.c). Transfers, what peers hold, what this site receives, the
 * hierarchy's status roll-up and removals: rows that no rebuild of the
 * content index can recover, so bdr_db_clear_index leaves them alone. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <sqlite3.h>

#include "bdr/db.h"
#include "bdr/error.h"
#include "db_internal.h"

/* A transfer row, in the order xfer_fill reads it. */
#define XFER_COLS                                                                \
	" id, package, version, peer, priority, state, created_ns, updated_ns,"  \
	" attempts, next_attempt_ns, bytes_total, bytes_sent, bytes_saved,"      \
	" last_error, address_index"
#define XFER_WAITING "('queued', 'paused')"
#define XFER_PENDING "('queued', 'sending', 'paused')"
#define XFER_ENDED "('done', 'cancelled')"
/* A received row, in the order recv_fill reads it. */
#define RECV_COLS \
	" package, version, peer, state, bytes_received, started_ns, updated_ns, last_error"
/* A site_status row, in the order site_fill reads it. */
#define SITE_COLS                                                                  \
	" site, package, version, state, bytes_done, bytes_total, bytes_saved,"    \
	" last_error, updated_ns, via, received_ns"

const struct bdr__db_stmt bdr__db_state_stmts[ST__COUNT] = {
	[ST_XFER_FIND] = { "find transfer",
		"SELECT" XFER_COLS " FROM transfers WHERE package = ?1 AND peer = ?2 AND version = ?3" },
	[ST_XFER_INSERT] = { "queue transfer",
		"INSERT INTO transfers (package, peer, version, priority, state, created_ns,"
		" updated_ns, bytes_total) VALUES (?1, ?2, ?3, ?4, 'queued', ?5, ?5, ?6)" },
	[ST_XFER_REQUEUE] = { "queue transfer again",
		"UPDATE transfers SET state = 'queued', priority = ?2, created_ns = ?3,"
		" updated_ns = ?3, bytes_total = ?4, attempts = 0, next_attempt_ns = 0,"
		" bytes_sent = 0, bytes_saved = 0, last_error = NULL, address_index = 0"
		" WHERE id = ?1" },
	[ST_XFER_PRIORITY] = { "set transfer priority",
		"UPDATE transfers SET priority = ?2 WHERE id = ?1" },
	/* Waiting rows of row ?1's (package, peer) older than its newest
	 * pending version. */
	[ST_XFER_SUPERSEDE] = { "supersede transfers",
		"WITH o AS (SELECT package, peer FROM transfers WHERE id = ?1),"
		" n(v) AS (SELECT max(version) FROM transfers WHERE state IN " XFER_PENDING
		"   AND package = (SELECT package FROM o) AND peer = (SELECT peer FROM o))"
		" UPDATE transfers SET state = 'cancelled', updated_ns = ?2,"
		"  last_error = 'superseded by version ' || (SELECT v FROM n)"
		" WHERE package = (SELECT package FROM o) AND peer = (SELECT peer FROM o)"
		"  AND state IN " XFER_WAITING " AND version < (SELECT v FROM n) RETURNING id" },
	[ST_XFER_SUPERSEDE_ALL] = { "supersede transfers",
		"UPDATE transfers AS t SET state = 'cancelled', updated_ns = ?1,"
		"  last_error = 'superseded by version ' || n.v"
		" FROM (SELECT package, peer, max(version) AS v FROM transfers"
		"  WHERE state IN " XFER_PENDING " GROUP BY package, peer) AS n"
		" WHERE t.package = n.package AND t.peer = n.peer"
		"  AND t.state IN " XFER_WAITING " AND t.version < n.v" },
	[ST_XFER_GET] = { "get transfer", "SELECT" XFER_COLS " FROM transfers WHERE id = ?1" },
	[ST_XFER_NEXT] = { "next transfer",
		"SELECT" XFER_COLS " FROM transfers WHERE peer = ?1 AND state IN " XFER_WAITING
		" AND next_attempt_ns <= ?2 ORDER BY priority, created_ns, id LIMIT 1" },
	[ST_XFER_LIST] = { "list transfers",
		"SELECT" XFER_COLS " FROM transfers WHERE ?1 IS NULL OR package = ?1"
		" ORDER BY package, version DESC, peer" },
	/* A row that ended is never written again (see db.h). */
	[ST_XFER_UPDATE] = { "update transfer",
		"UPDATE transfers SET state = ?2, attempts = ?3, next_attempt_ns = ?4,"
		" bytes_total = ?5, bytes_sent = ?6, bytes_saved = ?7, last_error = ?8,"
		" address_index = ?9, updated_ns = ?10"
		" WHERE id = ?1 AND state NOT IN " XFER_ENDED },
	[ST_XFER_SET_STATE] = { "set transfer state",
		"UPDATE transfers SET state = ?2, last_error = ?3, updated_ns = ?4"
		" WHERE id = ?1 AND state NOT IN " XFER_ENDED },
	[ST_XFER_RESET] = { "requeue interrupted transfers",
		"UPDATE transfers SET state = 'queued', updated_ns = ?1 WHERE state = 'sending'" },
	[ST_XFER_PRUNE] = { "prune transfers",
		"DELETE FROM transfers WHERE state IN " XFER_ENDED " AND updated_ns < ?1" },
	[ST_PEER_SET] = { "set peer version",
		"INSERT INTO peer_versions (peer, package, version) VALUES (?1, ?2, ?3)"
		" ON CONFLICT (peer, package) DO UPDATE SET version = excluded.version"
		" WHERE excluded.version > version" },
	[ST_PEER_GET] = { "get peer version",
		"SELECT version FROM peer_versions WHERE peer = ?1 AND package = ?2" },
	[ST_RECV_SET] = { "set received",
		"INSERT INTO received (package, version, peer, state, bytes_received,"
		" started_ns, updated_ns, last_error) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7)"
		" ON CONFLICT (package, version) DO UPDATE SET peer = excluded.peer,"
		" started_ns = CASE WHEN excluded.state = 'receiving' AND state <> 'receiving'"
		"  THEN excluded.started_ns ELSE started_ns END,"
		" state = excluded.state, bytes_received = excluded.bytes_received,"
		" updated_ns = excluded.updated_ns, last_error = excluded.last_error" },
	[ST_RECV_GET] = { "get received",
		"SELECT" RECV_COLS " FROM received WHERE package = ?1 AND version = ?2" },
	[ST_RECV_LIST] = { "list received",
		"SELECT" RECV_COLS " FROM received WHERE ?1 IS NULL OR package = ?1"
		" ORDER BY package, version DESC" },
	[ST_RECV_PRUNE] = { "prune received",
		"DELETE FROM received WHERE state IN ('activated', 'failed') AND updated_ns < ?1" },
	[ST_SITE_PUT] = { "set site status",
		"INSERT INTO site_status (" SITE_COLS ")"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
		" ON CONFLICT (site, package) DO UPDATE SET version = excluded.version,"
		" state = excluded.state, bytes_done = excluded.bytes_done,"
		" bytes_total = excluded.bytes_total, bytes_saved = excluded.bytes_saved,"
		" last_error = excluded.last_error, updated_ns = excluded.updated_ns,"
		" via = excluded.via, received_ns = excluded.received_ns"
		" WHERE excluded.updated_ns >= updated_ns" },
	[ST_SITE_LIST] = { "list site status",
		"SELECT" SITE_COLS " FROM site_status WHERE (?1 IS NULL OR package = ?1)"
		" AND received_ns > ?2 ORDER BY site, package" },
	[ST_SITE_COUNT] = { "count site status",
		"SELECT count(*) FROM site_status WHERE via = ?1" },
	[ST_RM_ADD] = { "queue removal",
		"INSERT INTO removals (package, peer, state, created_ns, updated_ns)"
		" VALUES (?1, ?2, 'queued', ?3, ?3) ON CONFLICT (peer, package) DO UPDATE SET"
		" state = 'queued', created_ns = excluded.created_ns,"
		" updated_ns = excluded.updated_ns, last_error = NULL" },
	[ST_RM_SET] = { "set removal",
		"UPDATE removals SET state = ?3, last_error = ?4, updated_ns = ?5"
		" WHERE package = ?1 AND peer = ?2" },
	[ST_RM_PENDING] = { "pending removals",
		"SELECT package FROM removals WHERE peer = ?1 AND state = 'queued'"
		" ORDER BY created_ns LIMIT ?2" },
	[ST_FORGET_XFERS] = { "forget transfers",
		"DELETE FROM transfers WHERE package = ?1 AND (?2 IS NULL OR peer = ?2)"
		" AND state NOT IN ('queued', 'sending', 'paused')" },
	[ST_FORGET_PEER_VERSIONS] = { "forget peer versions",
		"DELETE FROM peer_versions WHERE package = ?1 AND (?2 IS NULL OR peer = ?2)" },
	[ST_FORGET_RECEIVED] = { "forget received",
		"DELETE FROM received WHERE package = ?1" },
	[ST_ORIGIN_ADD] = { "record origin",
		"INSERT INTO origins (package, signer, site, version, created_ns)"
		" VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (package) DO NOTHING" },
	[ST_ORIGIN_GET] = { "get origin",
		"SELECT signer, site, version FROM origins WHERE package = ?1" },
	[ST_RM_DONE_BEFORE] = { "confirm removals",
		"UPDATE removals SET state = 'done', updated_ns = ?3, last_error = NULL"
		" WHERE peer = ?1 AND state = 'queued' AND created_ns <= ?2" },

};

/* ---- binding by list, rows into structs ---- */

/* A statement parameter (see BIND). */
struct param {
	const char *text; /* bound when is_text (NULL binds NULL) or is_blob */
	int64_t num;
	int len; /* bytes of text, or -1 for up to its NUL; bytes of a blob */
	bool is_text, is_blob;
};
#define P_INT(x) ((struct param){ .num = (int64_t)(x) })
#define P_TEXT(x) ((struct param){ .text = (x), .len = -1, .is_text = true })
#define P_BLOB(x, n) ((struct param){ .text = (const char *)(x), .len = (int)(n), .is_blob = true })

static int st_bind(struct bdr_db *db, enum st id, const struct param *p, size_t n)
{
	sqlite3_stmt *s = NULL;
	int err = bdr__db_st_get(db, id, &s);

	for (size_t i = 0; err == 0 && i < n; i++) {
		int col = (int)i + 1;
		int rc = p[i].is_blob   ? sqlite3_bind_blob(s, col, p[i].text, p[i].len, SQLITE_STATIC)
			 : !p[i].is_text ? sqlite3_bind_int64(s, col, p[i].num)
			 : p[i].text     ? sqlite3_bind_text(s, col, p[i].text, p[i].len, SQLITE_STATIC)
					 : sqlite3_bind_null(s, col);
		if (rc != SQLITE_OK)
			err = bdr__db_bind_fail(db, id);
	}
	return err;
}

/* Prepares statement id and binds its parameters ?1, ?2, ... in order:
 * 0 or the error (after which the statement holds nothing). */
#define BIND(db, id, ...)                                         \
	st_bind(db, id, (const struct param[]){ __VA_ARGS__ },    \
		sizeof((const struct param[]){ __VA_ARGS__ }) / sizeof(struct param))

/* Runs a bound statement to its end, ignoring any rows it returns;
 * sqlite3_changes() then counts the rows it wrote. */
static int st_finish(struct bdr_db *db, enum st id, int err)
{
	if (err < 0)
		return err;
	while ((err = bdr__db_st_step(db, id)) > 0)
		;
	bdr__db_st_done(db, id);
	return err;
}
#define EXEC(db, id, ...) st_finish(db, id, BIND(db, id, __VA_ARGS__))

/* Reads one result row into a struct. */
typedef int row_fill_fn(struct bdr_db *db, sqlite3_stmt *s, void *row);

/* The first row of a bound query into *row, or -BDR_ENOTFOUND. */
static int st_row(struct bdr_db *db, enum st id, int err, row_fill_fn *fill, void *row)
{
	if (err < 0)
		return err;
	err = bdr__db_st_step(db, id);
	if (err > 0)
		err = fill(db, db->st[id], row);
	else if (err == 0)
		err = -BDR_ENOTFOUND;
	bdr__db_st_done(db, id);
	return err;
}
#define ROW(db, id, fill, row, ...) st_row(db, id, BIND(db, id, __VA_ARGS__), fill, row)

/* Every row of a bound query into a malloc'd array of structs of size
 * bytes (NULL if there are none). */
static int st_rows(struct bdr_db *db, enum st id, int err, row_fill_fn *fill, size_t size,
		   void **out, size_t *n)
{
	char *v = NULL;
	size_t cap = 0, len = 0;

	*out = NULL;
	*n = 0;
	if (err < 0)
		return err;
	while ((err = bdr__db_st_step(db, id)) > 0) {
		if (len == cap) {
			size_t ncap = cap ? 2 * cap : 16;
			char *nv = ncap <= SIZE_MAX / size ? realloc(v, ncap * size) : NULL;

			if (!nv) {
				err = bdr_diag_set(&db->err, -ENOMEM, "db: %s: out of memory",
						   bdr__db_st_name(id));
				break;
			}
			v = nv;
			cap = ncap;
		}
		if ((err = fill(db, db->st[id], v + len * size)) < 0)
			break;
		len++;
	}
	bdr__db_st_done(db, id);
	if (err < 0) {
		free(v);
		return err;
	}
	*out = v;
	*n = len;
	return 0;
}
#define ROWS(db, id, fill, size, out, n, ...) \
	st_rows(db, id, BIND(db, id, __VA_ARGS__), fill, size, out, n)

/* ---- the daemon's durable state: checks and rows ---- */

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* The exact texts of the CHECK constraints in migration 2. */
static const char *const xfer_state_names[] = {
	[BDR_XFER_QUEUED] = "queued",   [BDR_XFER_SENDING] = "sending",
	[BDR_XFER_PAUSED] = "paused",   [BDR_XFER_DONE] = "done",
	[BDR_XFER_FAILED] = "failed",   [BDR_XFER_CANCELLED] = "cancelled",
};
static const char *const recv_state_names[] = {
	[BDR_RECV_RECEIVING] = "receiving",
	[BDR_RECV_ACTIVATED] = "activated",
	[BDR_RECV_FAILED] = "failed",
};

static int name_index(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 0; s && i < n; i++)
		if (!strcmp(names[i], s))
			return (int)i;
	return -1;
}

const char *bdr_db_xfer_state_name(enum bdr_db_xfer_state s)
{
	return (size_t)s < NELEM(xfer_state_names) ? xfer_state_names[s] : "invalid";
}

int bdr_db_xfer_state_parse(const char *s, enum bdr_db_xfer_state *out)
{
	int i = name_index(xfer_state_names, NELEM(xfer_state_names), s);

	if (i < 0)
		return -EINVAL;
	*out = (enum bdr_db_xfer_state)i;
	return 0;
}

const char *bdr_db_recv_state_name(enum bdr_db_recv_state s)
{
	return (size_t)s < NELEM(recv_state_names) ? recv_state_names[s] : "invalid";
}

/* What identifies a transfer or received row, checked as the manifests
 * check it, so every row fits the structs it is read back into. */
static int check_key(struct bdr_db *db, const char *package, uint64_t version, const char *peer)
{
	int err = bdr_manifest_check_package(package, &db->err);

	if (err == 0)
		err = bdr_manifest_check_site(peer, &db->err);
	if (err == 0 && (version == 0 || version > INT64_MAX))
		err = bdr_diag_set(&db->err, -BDR_ELIMIT, "db: version %llu out of range",
				   (unsigned long long)version);
	return err;
}

static int check_enum(struct bdr_db *db, int v, int last, const char *what)
{
	if (v >= 0 && v <= last)
		return 0;
	return bdr_diag_set(&db->err, -EINVAL, "db: %s %d out of range", what, v);
}

static int check_bytes(struct bdr_db *db, uint64_t v)
{
	if (v <= INT64_MAX)
		return 0;
	return bdr_diag_set(&db->err, -BDR_ELIMIT, "db: byte count %llu out of range",
			    (unsigned long long)v);
}

/* An error message as stored: NULL for none, else at most
 * BDR_DB_ERROR_MAX bytes, cut where a character starts. */
static struct param p_error(const char *e)
{
	size_t n = e ? strnlen(e, BDR_DB_ERROR_MAX + 1) : 0;

	if (n == 0)
		return P_TEXT(NULL);
	if (n > BDR_DB_ERROR_MAX)
		for (n = BDR_DB_ERROR_MAX; n > 0 && ((uint8_t)e[n] & 0xc0) == 0x80; n--)
			;
	return (struct param){ .text = e, .len = (int)n, .is_text = true };
}

/* A nullable text column; NULL reads as "". */
static int col_text_opt(struct bdr_db *db, sqlite3_stmt *s, int col, char *dst, size_t cap,
			const char *what)
{
	if (sqlite3_column_type(s, col) != SQLITE_NULL)
		return bdr__db_col_text(db, s, col, dst, cap, what);
	dst[0] = '\0';
	return 0;
}

/* A state column as its index in names. */
static int col_state(struct bdr_db *db, sqlite3_stmt *s, int col, const char *const *names,
		     size_t n, int *out)
{
	char buf[16];
	int err = bdr__db_col_text(db, s, col, buf, sizeof(buf), "state");

	if (err == 0 && (*out = name_index(names, n, buf)) < 0)
		err = bdr__db_corrupt(db, "state");
	return err;
}

/* Columns: XFER_COLS. */
static int xfer_fill(struct bdr_db *db, sqlite3_stmt *s, void *row)
{
	struct bdr_db_transfer *t = row;
	int64_t version = sqlite3_column_int64(s, 2), prio = sqlite3_column_int64(s, 4);
	int64_t attempts = sqlite3_column_int64(s, 8), addr = sqlite3_column_int64(s, 14);
	int64_t total = sqlite3_column_int64(s, 10), sent = sqlite3_column_int64(s, 11);
	int64_t saved = sqlite3_column_int64(s, 12);
	int state = 0, err;

	memset(t, 0, sizeof(*t));
	if ((err = bdr__db_col_text(db, s, 1, t->package, sizeof(t->package), "package name")) < 0 ||
	    (err = bdr__db_col_text(db, s, 3, t->peer, sizeof(t->peer), "peer")) < 0 ||
	    (err = col_state(db, s, 5, xfer_state_names, NELEM(xfer_state_names), &state)) < 0 ||
	    (err = col_text_opt(db, s, 13, t->last_error, sizeof(t->last_error), "error")) < 0)
		return err;
	t->id = sqlite3_column_int64(s, 0);
	t->created_ns = sqlite3_column_int64(s, 6);
	t->updated_ns = sqlite3_column_int64(s, 7);
	t->next_attempt_ns = sqlite3_column_int64(s, 9);
	if (version < 1 || prio < 0 || prio > BDR_PRIO_LOW || attempts < 0 ||
	    attempts > UINT32_MAX || addr < 0 || addr > UINT32_MAX || total < 0 || sent < 0 ||
	    saved < 0)
		return bdr__db_corrupt(db, "transfer");
	t->version = (uint64_t)version;
	t->priority = (enum bdr_db_priority)prio;
	t->state = (enum bdr_db_xfer_state)state;
	t->attempts = (uint32_t)attempts;
	t->address_index = (uint32_t)addr;
	t->bytes_total = (uint64_t)total;
	t->bytes_sent = (uint64_t)sent;
	t->bytes_saved = (uint64_t)saved;
	return 0;
}

/* Columns: RECV_COLS. */
static int recv_fill(struct bdr_db *db, sqlite3_stmt *s, void *row)
{
	struct bdr_db_received *r = row;
	int64_t version = sqlite3_column_int64(s, 1), bytes = sqlite3_column_int64(s, 4);
	int state = 0, err;

	memset(r, 0, sizeof(*r));
	if ((err = bdr__db_col_text(db, s, 0, r->package, sizeof(r->package), "package name")) < 0 ||
	    (err = bdr__db_col_text(db, s, 2, r->peer, sizeof(r->peer), "peer")) < 0 ||
	    (err = col_state(db, s, 3, recv_state_names, NELEM(recv_state_names), &state)) < 0 ||
	    (err = col_text_opt(db, s, 7, r->last_error, sizeof(r->last_error), "error")) < 0)
		return err;
	if (version < 1 || bytes < 0)
		return bdr__db_corrupt(db, "received version");
	r->version = (uint64_t)version;
	r->state = (enum bdr_db_recv_state)state;
	r->bytes_received = (uint64_t)bytes;
	r->started_ns = sqlite3_column_int64(s, 5);
	r->updated_ns = sqlite3_column_int64(s, 6);
	return 0;
}

/* Column 0 as a version. */
static int version_fill(struct bdr_db *db, sqlite3_stmt *s, void *row)
{
	int64_t v = sqlite3_column_int64(s, 0);

	if (v < 1)
		return bdr__db_corrupt(db, "peer version");
	*(uint64_t *)row = (uint64_t)v;
	return 0;
}

/* ---- transfers ---- */

/* Cancels the waiting rows of row's (package, peer) that a newer pending
 * version supersedes; *others (may be NULL) counts those other than row. */
static int xfer_supersede(struct bdr_db *db, int64_t row, int64_t now_ns, uint32_t *others)
{
	uint32_t n = 0;
	int err = BIND(db, ST_XFER_SUPERSEDE, P_INT(row), P_INT(now_ns));

	if (err < 0)
		return err;
	while ((err = bdr__db_st_step(db, ST_XFER_SUPERSEDE)) > 0)
		n += sqlite3_column_int64(db->st[ST_XFER_SUPERSEDE], 0) != row;
	bdr__db_st_done(db, ST_XFER_SUPERSEDE);
	if (others)
		*others = n;
	return err;
}

int bdr_db_transfer_add(struct bdr_db *db, const char *package, uint64_t version,
			const char *peer, enum bdr_db_priority priority, int64_t now_ns,
			uint64_t bytes_total, int64_t *id, uint32_t *superseded)
{
	struct bdr_db_transfer cur = { .state = BDR_XFER_QUEUED };
	uint32_t n = 0;
	int err = check_key(db, package, version, peer);

	if (err == 0)
		err = check_enum(db, (int)priority, BDR_PRIO_LOW, "priority");
	if (err == 0)
		err = check_bytes(db, bytes_total);
	if (err < 0 || (err = bdr_db_begin(db)) < 0)
		return err;
	err = ROW(db, ST_XFER_FIND, xfer_fill, &cur, P_TEXT(package), P_TEXT(peer), P_INT(version));
	if (err == -BDR_ENOTFOUND) {
		err = EXEC(db, ST_XFER_INSERT, P_TEXT(package), P_TEXT(peer), P_INT(version),
			   P_INT(priority), P_INT(now_ns), P_INT(bytes_total));
		cur.id = sqlite3_last_insert_rowid(db->h);
		cur.state = BDR_XFER_QUEUED;
	} else if (err == 0 && (cur.state == BDR_XFER_FAILED || cur.state == BDR_XFER_CANCELLED)) {
		err = EXEC(db, ST_XFER_REQUEUE, P_INT(cur.id), P_INT(priority), P_INT(now_ns),
			   P_INT(bytes_total));
		cur.state = BDR_XFER_QUEUED;
	} else if (err == 0 && cur.state != BDR_XFER_DONE) {
		err = EXEC(db, ST_XFER_PRIORITY, P_INT(cur.id), P_INT(priority));
	}
	if (err == 0 && cur.state != BDR_XFER_DONE)
		err = xfer_supersede(db, cur.id, now_ns, &n);
	if ((err = bdr_db_end(db, err)) < 0)
		return err;
	if (id)
		*id = cur.id;
	if (superseded)
		*superseded = n;
	return 0;
}

int bdr_db_transfer_get(struct bdr_db *db, int64_t id, struct bdr_db_transfer *t)
{
	return ROW(db, ST_XFER_GET, xfer_fill, t, P_INT(id));
}

/* After a write guarded against ended rows, meant to leave row in state. */
static int xfer_written(struct bdr_db *db, int64_t row, enum bdr_db_xfer_state state,
			int64_t now_ns)
{
	struct bdr_db_transfer cur;
	int err;

	if (sqlite3_changes(db->h) == 0) {
		if ((err = bdr_db_transfer_get(db, row, &cur)) < 0 || cur.state == state)
			return err;
		return bdr_diag_set(&db->err, -ESTALE, "db: transfer %lld has ended (%s)",
				    (long long)row, bdr_db_xfer_state_name(cur.state));
	}
	if (state == BDR_XFER_QUEUED || state == BDR_XFER_PAUSED)
		return xfer_supersede(db, row, now_ns, NULL);
	return 0;
}

int bdr_db_transfer_update(struct bdr_db *db, const struct bdr_db_transfer *t)
{
	int err = check_enum(db, (int)t->state, BDR_XFER_CANCELLED, "transfer state");

	if (err == 0 && (t->bytes_total > INT64_MAX || t->bytes_sent > INT64_MAX ||
			 t->bytes_saved > INT64_MAX))
		err = check_bytes(db, UINT64_MAX);
	if (err == 0 && strnlen(t->last_error, sizeof(t->last_error)) == sizeof(t->last_error))
		err = bdr_diag_set(&db->err, -EINVAL, "db: error message not terminated");
	if (err < 0 || (err = bdr_db_begin(db)) < 0)
		return err;
	err = EXEC(db, ST_XFER_UPDATE, P_INT(t->id), P_TEXT(xfer_state_names[t->state]),
		   P_INT(t->attempts), P_INT(t->next_attempt_ns), P_INT(t->bytes_total),
		   P_INT(t->bytes_sent), P_INT(t->bytes_saved), p_error(t->last_error),
		   P_INT(t->address_index), P_INT(t->updated_ns));
	if (err == 0)
		err = xfer_written(db, t->id, t->state, t->updated_ns);
	return bdr_db_end(db, err);
}

int bdr_db_transfer_set_state(struct bdr_db *db, int64_t id, enum bdr_db_xfer_state state,
			      const char *error, int64_t now_ns)
{
	int err = check_enum(db, (int)state, BDR_XFER_CANCELLED, "transfer state");

	if (err < 0 || (err = bdr_db_begin(db)) < 0)
		return err;
	err = EXEC(db, ST_XFER_SET_STATE, P_INT(id), P_TEXT(xfer_state_names[state]),
		   p_error(error), P_INT(now_ns));
	if (err == 0)
		err = xfer_written(db, id, state, now_ns);
	return bdr_db_end(db, err);
}

int bdr_db_transfer_next(struct bdr_db *db, const char *peer, int64_t now_ns,
			 struct bdr_db_transfer *t)
{
	int err = bdr_manifest_check_site(peer, &db->err);

	return err < 0 ? err : ROW(db, ST_XFER_NEXT, xfer_fill, t, P_TEXT(peer), P_INT(now_ns));
}

int bdr_db_transfer_list(struct bdr_db *db, const char *package, struct bdr_db_transfer **out,
			 size_t *n)
{
	void *v;
	int err = ROWS(db, ST_XFER_LIST, xfer_fill, sizeof(**out), &v, n, P_TEXT(package));

	*out = v;
	return err;
}

int bdr_db_transfers_reset_running(struct bdr_db *db, int64_t now_ns, uint32_t *requeued)
{
	uint32_t n = 0;
	int err = bdr_db_begin(db);

	if (err < 0)
		return err;
	if ((err = EXEC(db, ST_XFER_RESET, P_INT(now_ns))) == 0) {
		n = (uint32_t)sqlite3_changes(db->h);
		err = EXEC(db, ST_XFER_SUPERSEDE_ALL, P_INT(now_ns));
	}
	if ((err = bdr_db_end(db, err)) < 0)
		return err;
	if (requeued)
		*requeued = n;
	return 0;
}

/* ---- what peers hold, what this site receives ---- */

int bdr_db_peer_version_set(struct bdr_db *db, const char *peer, const char *package,
			    uint64_t version)
{
	int err = check_key(db, package, version, peer);

	return err < 0 ? err
		       : EXEC(db, ST_PEER_SET, P_TEXT(peer), P_TEXT(package), P_INT(version));
}

int bdr_db_peer_version_get(struct bdr_db *db, const char *peer, const char *package,
			    uint64_t *version)
{
	return ROW(db, ST_PEER_GET, version_fill, version, P_TEXT(peer), P_TEXT(package));
}

int bdr_db_received_set(struct bdr_db *db, const char *package, uint64_t version,
			const char *peer, enum bdr_db_recv_state state, uint64_t bytes_received,
			const char *error, int64_t now_ns)
{
	int err = check_key(db, package, version, peer);

	if (err == 0)
		err = check_enum(db, (int)state, BDR_RECV_FAILED, "received state");
	if (err == 0)
		err = check_bytes(db, bytes_received);
	if (err < 0)
		return err;
	return EXEC(db, ST_RECV_SET, P_TEXT(package), P_INT(version), P_TEXT(peer),
		    P_TEXT(recv_state_names[state]), P_INT(bytes_received), P_INT(now_ns),
		    p_error(error));
}

int bdr_db_received_get(struct bdr_db *db, const char *package, uint64_t version,
			struct bdr_db_received *r)
{
	if (version > INT64_MAX)
		return -BDR_ENOTFOUND;
	return ROW(db, ST_RECV_GET, recv_fill, r, P_TEXT(package), P_INT(version));
}

int bdr_db_received_list(struct bdr_db *db, const char *package, struct bdr_db_received **out,
			 size_t *n)
{
	void *v;
	int err = ROWS(db, ST_RECV_LIST, recv_fill, sizeof(**out), &v, n, P_TEXT(package));

	*out = v;
	return err;
}

/* ---- the status roll-up ---- */

static const char *const site_state_names[] = {
	[BDR_SITE_QUEUED] = "queued",     [BDR_SITE_MOVING] = "moving",
	[BDR_SITE_PAUSED] = "paused",     [BDR_SITE_ACTIVATED] = "activated",
	[BDR_SITE_FAILED] = "failed",
};

const char *bdr_db_site_state_name(enum bdr_db_site_state s)
{
	return (size_t)s < NELEM(site_state_names) ? site_state_names[s] : "invalid";
}

int bdr_db_site_status_put(struct bdr_db *db, const struct bdr_db_site_status *r)
{
	int err = bdr_manifest_check_site(r->site, &db->err);

	if (err == 0)
		err = bdr_manifest_check_site(r->via, &db->err);
	if (err == 0)
		err = bdr_manifest_check_package(r->package, &db->err);
	if (err == 0)
		err = check_enum(db, (int)r->state, BDR_SITE_FAILED, "site state");
	if (err == 0 && r->version > INT64_MAX)
		err = check_bytes(db, r->version);
	if (err == 0)
		err = check_bytes(db, r->bytes_done | r->bytes_total | r->bytes_saved);
	if (err < 0)
		return err;
	return EXEC(db, ST_SITE_PUT, P_TEXT(r->site), P_TEXT(r->package), P_INT(r->version),
		    P_TEXT(site_state_names[r->state]), P_INT(r->bytes_done), P_INT(r->bytes_total),
		    P_INT(r->bytes_saved), p_error(r->last_error), P_INT(r->updated_ns),
		    P_TEXT(r->via), P_INT(r->received_ns));
}

/* Columns: SITE_COLS. */
static int site_fill(struct bdr_db *db, sqlite3_stmt *s, void *row)
{
	struct bdr_db_site_status *r = row;
	int64_t version = sqlite3_column_int64(s, 2);
	int64_t b[3] = { sqlite3_column_int64(s, 4), sqlite3_column_int64(s, 5),
			 sqlite3_column_int64(s, 6) };
	int state = 0, err;

	memset(r, 0, sizeof(*r));
	if ((err = bdr__db_col_text(db, s, 0, r->site, sizeof(r->site), "site")) < 0 ||
	    (err = bdr__db_col_text(db, s, 1, r->package, sizeof(r->package), "package name")) < 0 ||
	    (err = col_state(db, s, 3, site_state_names, NELEM(site_state_names), &state)) < 0 ||
	    (err = col_text_opt(db, s, 7, r->last_error, sizeof(r->last_error), "error")) < 0 ||
	    (err = bdr__db_col_text(db, s, 9, r->via, sizeof(r->via), "via")) < 0)
		return err;
	if (version < 0 || b[0] < 0 || b[1] < 0 || b[2] < 0)
		return bdr__db_corrupt(db, "site status");
	r->version = (uint64_t)version;
	r->state = (enum bdr_db_site_state)state;
	r->bytes_done = (uint64_t)b[0], r->bytes_total = (uint64_t)b[1];
	r->bytes_saved = (uint64_t)b[2];
	r->updated_ns = sqlite3_column_int64(s, 8);
	r->received_ns = sqlite3_column_int64(s, 10);
	return 0;
}

int bdr_db_site_status_list(struct bdr_db *db, const char *package, int64_t since_ns,
			    struct bdr_db_site_status **out, size_t *n)
{
	void *v;
	int err = ROWS(db, ST_SITE_LIST, site_fill, sizeof(**out), &v, n, P_TEXT(package),
		       P_INT(since_ns));

	*out = v;
	return err;
}

static int count_fill(struct bdr_db *db, sqlite3_stmt *s, void *row)
{
	(void)db;
	*(uint64_t *)row = (uint64_t)sqlite3_column_int64(s, 0);
	return 0;
}

int bdr_db_site_status_count(struct bdr_db *db, const char *via, uint64_t *n)
{
	return ROW(db, ST_SITE_COUNT, count_fill, n, P_TEXT(via));
}

/* ---- removals ---- */

static const char *const removal_state_names[] = { "queued", "done", "failed" };

int bdr_db_removal_add(struct bdr_db *db, const char *package, const char *peer, int64_t now_ns)
{
	int err = check_key(db, package, 1, peer);

	return err < 0 ? err : EXEC(db, ST_RM_ADD, P_TEXT(package), P_TEXT(peer), P_INT(now_ns));
}

int bdr_db_forget_package(struct bdr_db *db, const char *package, const char *peer)
{
	int err = bdr_db_begin(db);

	if (err == 0)
		err = EXEC(db, ST_FORGET_XFERS, P_TEXT(package), P_TEXT(peer));
	if (err == 0)
		err = EXEC(db, ST_FORGET_PEER_VERSIONS, P_TEXT(package), P_TEXT(peer));
	if (err == 0 && !peer)
		err = EXEC(db, ST_FORGET_RECEIVED, P_TEXT(package));
	if (err == 0)
		return bdr_db_commit(db);
	bdr_db_rollback(db);
	return err;
}

int bdr_db_removal_set(struct bdr_db *db, const char *package, const char *peer,
		       enum bdr_db_removal_state state, const char *error, int64_t now_ns)
{
	int err = check_enum(db, (int)state, BDR_RM_FAILED, "removal state");

	return err < 0 ? err : EXEC(db, ST_RM_SET, P_TEXT(package), P_TEXT(peer),
				    P_TEXT(removal_state_names[state]), p_error(error), P_INT(now_ns));
}

int bdr_db_removal_done_before(struct bdr_db *db, const char *peer, int64_t before_ns,
			       int64_t now_ns)
{
	return EXEC(db, ST_RM_DONE_BEFORE, P_TEXT(peer), P_INT(before_ns), P_INT(now_ns));
}

static int name_fill(struct bdr_db *db, sqlite3_stmt *s, void *row)
{
	return bdr__db_col_text(db, s, 0, row, BDR_MAX_PACKAGE_NAME + 1, "package name");
}

int bdr_db_removal_pending(struct bdr_db *db, const char *peer, size_t max,
			   char (**out)[BDR_MAX_PACKAGE_NAME + 1], size_t *n)
{
	void *v;
	int err = ROWS(db, ST_RM_PENDING, name_fill, sizeof(**out), &v, n, P_TEXT(peer),
		       P_INT(max));

	*out = v;
	return err;
}

int bdr_db_history_prune(struct bdr_db *db, int64_t before_ns, uint64_t *removed)
{
	uint64_t n = 0;
	int err = bdr_db_begin(db);

	if (err < 0)
		return err;
	if ((err = EXEC(db, ST_XFER_PRUNE, P_INT(before_ns))) == 0) {
		n = (uint64_t)sqlite3_changes(db->h);
		err = EXEC(db, ST_RECV_PRUNE, P_INT(before_ns));
		n += (uint64_t)sqlite3_changes(db->h);
	}
	if ((err = bdr_db_end(db, err)) < 0)
		return err;
	if (removed)
		*removed = n;
	return 0;
}

/* ---- package origins ---- */

int bdr__db_origin_note(struct bdr_db *db, const struct bdr_manifest *m)
{
	return EXEC(db, ST_ORIGIN_ADD, P_TEXT(m->package), P_BLOB(m->signer, BDR_PK_LEN),
		    P_TEXT(m->site), P_INT(m->version), P_INT(m->created_ns));
}

/* Columns: signer, site, version. */
static int origin_fill(struct bdr_db *db, sqlite3_stmt *s, void *row)
{
	struct bdr_db_origin *o = row;
	int64_t version = sqlite3_column_int64(s, 2);
	int err;

	memset(o, 0, sizeof(*o));
	if (sqlite3_column_bytes(s, 0) != BDR_PK_LEN || version < 1)
		return bdr__db_corrupt(db, "origin");
	memcpy(o->signer, sqlite3_column_blob(s, 0), BDR_PK_LEN);
	if ((err = bdr__db_col_text(db, s, 1, o->site, sizeof(o->site), "origin site")) < 0)
		return err;
	o->version = (uint64_t)version;
	return 0;
}

int bdr_db_origin_get(struct bdr_db *db, const char *package, struct bdr_db_origin *o)
{
	return ROW(db, ST_ORIGIN_GET, origin_fill, o, P_TEXT(package));
}
