/* The site database (see db.h). The only module that speaks SQL.
 *
 * Settings, and why:
 * - WAL, synchronous=FULL: the daemon's queue cannot be rebuilt, and
 *   "bdrctl push" answers success once its rows are committed, so a commit
 *   must survive a power cut, not only a crash of the process (which
 *   NORMAL already survives). It costs one fdatasync of the WAL per commit;
 *   an import commits a handful of times, and the daemon is told (db.h) to
 *   record progress sparingly.
 * - cache_size=-8192 (8 MiB) per connection and journal_size_limit: memory
 *   and the -wal file stay bounded however many chunks are indexed.
 * - foreign_keys=ON: files cascade from versions, chunks from blobs.
 *
 * The chunk table is WITHOUT ROWID keyed (id, blob_id): measured with 1M
 * chunks it is 20% smaller than a rowid table with an (id, blob_id) unique
 * index (63 vs 79 MB), inserts as fast or faster and looks up 5-15% faster.
 * A chunk that occurs several times in a blob is indexed once, at its first
 * offset: a lookup needs only one place to read it from.
 *
 * A handle is used by one thread at a time (opened SQLITE_OPEN_NOMUTEX): the
 * prepared statements it caches are shared state anyway. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "bdr/db.h"
#include "bdr/error.h"

#define DB_APPLICATION_ID 0x62647231 /* "bdr1" */
#define DB_BUSY_TIMEOUT_MS 5000

/* Migration i takes user_version i to i + 1, inside one transaction. Never
 * edit a released entry: append a new one. */
static const char *const migrations[] = {
	/* 1: the initial schema */
	"CREATE TABLE packages ("
	"  id INTEGER PRIMARY KEY,"
	"  name TEXT UNIQUE NOT NULL);"
	"CREATE TABLE versions ("
	"  id INTEGER PRIMARY KEY,"
	"  package_id INTEGER NOT NULL REFERENCES packages ON DELETE CASCADE,"
	"  version INTEGER NOT NULL,"
	"  site TEXT NOT NULL,"
	"  created_ns INTEGER NOT NULL,"
	"  signer BLOB NOT NULL,"
	"  UNIQUE (package_id, version));"
	"CREATE TABLE blobs ("
	"  id INTEGER PRIMARY KEY,"
	"  hash BLOB UNIQUE NOT NULL," /* BLAKE2b-256 of the content */
	"  size INTEGER NOT NULL);"
	"CREATE TABLE files ("
	"  version_id INTEGER NOT NULL REFERENCES versions ON DELETE CASCADE,"
	"  path TEXT NOT NULL,"
	"  blob_id INTEGER NOT NULL REFERENCES blobs,"
	"  mode INTEGER NOT NULL,"
	"  mtime_ns INTEGER NOT NULL,"
	"  PRIMARY KEY (version_id, path));"
	"CREATE INDEX files_blob ON files (blob_id);"
	"CREATE TABLE chunks ("
	"  id BLOB NOT NULL," /* XXH3-128, canonical byte order */
	"  blob_id INTEGER NOT NULL REFERENCES blobs ON DELETE CASCADE,"
	"  offset INTEGER NOT NULL,"
	"  len INTEGER NOT NULL,"
	"  PRIMARY KEY (id, blob_id)) WITHOUT ROWID;"
	/* Without it each deleted blob would scan every chunk for its cascade. */
	"CREATE INDEX chunks_blob ON chunks (blob_id);"
	"CREATE TABLE quickcheck ("
	"  package TEXT NOT NULL,"
	"  path TEXT NOT NULL,"
	"  size INTEGER NOT NULL,"
	"  mtime_ns INTEGER NOT NULL,"
	"  ctime_ns INTEGER NOT NULL,"
	"  ino INTEGER NOT NULL,"
	"  dev INTEGER NOT NULL,"
	"  version INTEGER NOT NULL,"
	"  PRIMARY KEY (package, path));"
	"PRAGMA application_id = 1650750001;", /* DB_APPLICATION_ID */

	/* 2: the daemon's durable state; bdr_db_clear_index keeps it. Ids are
	 * AUTOINCREMENT: operators and senders hold them, and a pruned id
	 * must never come back as another transfer. The unique key is
	 * (package, peer, version) rather than (package, version, peer), the
	 * same constraint in the order that also serves superseding. */
	"CREATE TABLE transfers ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  package TEXT NOT NULL,"
	"  version INTEGER NOT NULL,"
	"  peer TEXT NOT NULL," /* the destination site */
	"  priority INTEGER NOT NULL CHECK (priority BETWEEN 0 AND 2)," /* 0 high */
	"  state TEXT NOT NULL CHECK (state IN"
	"    ('queued', 'sending', 'paused', 'done', 'failed', 'cancelled')),"
	"  created_ns INTEGER NOT NULL,"
	"  updated_ns INTEGER NOT NULL,"
	"  attempts INTEGER NOT NULL DEFAULT 0,"
	"  next_attempt_ns INTEGER NOT NULL DEFAULT 0,"
	"  bytes_total INTEGER NOT NULL DEFAULT 0," /* the version's size */
	"  bytes_sent INTEGER NOT NULL DEFAULT 0,"  /* on the wire */
	"  bytes_saved INTEGER NOT NULL DEFAULT 0," /* not sent thanks to deltas */
	"  last_error TEXT,"
	"  address_index INTEGER NOT NULL DEFAULT 0,"
	"  UNIQUE (package, peer, version));"
	/* "Next to send for a peer". */
	"CREATE INDEX transfers_next ON transfers (peer, state, priority, created_ns);"
	"CREATE TABLE peer_versions ("
	"  peer TEXT NOT NULL,"
	"  package TEXT NOT NULL,"
	"  version INTEGER NOT NULL," /* the highest the peer is known to hold */
	"  PRIMARY KEY (peer, package));"
	"CREATE TABLE received ("
	"  package TEXT NOT NULL,"
	"  version INTEGER NOT NULL,"
	"  peer TEXT NOT NULL," /* who sends it */
	"  state TEXT NOT NULL CHECK (state IN ('receiving', 'activated', 'failed')),"
	"  bytes_received INTEGER NOT NULL DEFAULT 0,"
	"  started_ns INTEGER NOT NULL,"
	"  updated_ns INTEGER NOT NULL,"
	"  last_error TEXT,"
	"  PRIMARY KEY (package, version));",

	/* 3: the hierarchy's status roll-up: what children reported of the
	 * sites below this one, one row per site and package, the newest
	 * (by the reporting site's clock) kept. received_ns is ours: what a
	 * parent has not been sent yet. */
	"CREATE TABLE site_status ("
	"  site TEXT NOT NULL,"
	"  package TEXT NOT NULL,"
	"  version INTEGER NOT NULL CHECK (version >= 0)," /* 0: none held yet */
	"  state TEXT NOT NULL CHECK (state IN"
	"    ('queued', 'moving', 'paused', 'activated', 'failed')),"
	"  bytes_done INTEGER NOT NULL,"
	"  bytes_total INTEGER NOT NULL,"
	"  bytes_saved INTEGER NOT NULL,"
	"  last_error TEXT,"
	"  updated_ns INTEGER NOT NULL,"
	"  via TEXT NOT NULL," /* the child it came from */
	"  received_ns INTEGER NOT NULL,"
	"  PRIMARY KEY (site, package));"
	"CREATE INDEX site_status_via ON site_status (via);"
	/* A package to remove at a site: this one (peer = our own name) or a
	 * site below; rows are written before the request is acknowledged. */
	"CREATE TABLE removals ("
	"  package TEXT NOT NULL,"
	"  peer TEXT NOT NULL,"
	"  state TEXT NOT NULL CHECK (state IN ('queued', 'done', 'failed')),"
	"  created_ns INTEGER NOT NULL,"
	"  updated_ns INTEGER NOT NULL,"
	"  last_error TEXT,"
	"  PRIMARY KEY (peer, package));",
};
#define DB_SCHEMA ((int)(sizeof(migrations) / sizeof(migrations[0])))

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

/* From a file row f to its version v and package p. */
#define LOC_FROM_FILES                                          \
	" JOIN versions v ON v.id = f.version_id"               \
	" JOIN packages p ON p.id = v.package_id"

enum st {
	ST_PKG_GET,
	ST_PKG_ADD,
	ST_PKG_GC,
	ST_VER_ADD,
	ST_VER_GET,
	ST_VER_DEL,
	ST_BLOB_GET,
	ST_BLOB_ADD,
	ST_CHUNK_ADD,
	ST_FILE_ADD,
	ST_GC_COLLECT,
	ST_GC_BLOBS,
	ST_GC_CLEAR,
	ST_CHUNK_FIND,
	ST_CHUNK_HAS,
	ST_FILE_FIND,
	ST_VERSIONS,
	ST_PACKAGES,
	ST_STATS,
	ST_QC_GET,
	ST_QC_PUT,
	ST_QC_PRUNE,
	ST_XFER_FIND,
	ST_XFER_INSERT,
	ST_XFER_REQUEUE,
	ST_XFER_PRIORITY,
	ST_XFER_SUPERSEDE,
	ST_XFER_SUPERSEDE_ALL,
	ST_XFER_GET,
	ST_XFER_NEXT,
	ST_XFER_LIST,
	ST_XFER_UPDATE,
	ST_XFER_SET_STATE,
	ST_XFER_RESET,
	ST_XFER_PRUNE,
	ST_PEER_SET,
	ST_PEER_GET,
	ST_RECV_SET,
	ST_RECV_GET,
	ST_RECV_LIST,
	ST_RECV_PRUNE,
	ST_SITE_PUT,
	ST_SITE_LIST,
	ST_SITE_COUNT,
	ST_RM_ADD,
	ST_RM_SET,
	ST_RM_PENDING,
	ST_RM_DONE_BEFORE,
	ST_FORGET_XFERS,
	ST_FORGET_PEER_VERSIONS,
	ST_FORGET_RECEIVED,
	ST__COUNT
};

static const struct {
	const char *name; /* for messages */
	const char *sql;
} st_def[ST__COUNT] = {
	[ST_PKG_GET] = { "find package", "SELECT id FROM packages WHERE name = ?1" },
	[ST_PKG_ADD] = { "add package", "INSERT INTO packages (name) VALUES (?1)" },
	[ST_PKG_GC] = { "drop package",
		"DELETE FROM packages WHERE id = ?1"
		" AND NOT EXISTS (SELECT 1 FROM versions WHERE package_id = ?1)" },
	[ST_VER_ADD] = { "add version",
		"INSERT INTO versions (package_id, version, site, created_ns, signer)"
		" VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (package_id, version) DO NOTHING" },
	[ST_VER_GET] = { "find version",
		"SELECT id FROM versions WHERE package_id = ?1 AND version = ?2" },
	[ST_VER_DEL] = { "drop version", "DELETE FROM versions WHERE id = ?1" },
	[ST_BLOB_GET] = { "find blob", "SELECT id, size FROM blobs WHERE hash = ?1" },
	[ST_BLOB_ADD] = { "add blob", "INSERT INTO blobs (hash, size) VALUES (?1, ?2)" },
	[ST_CHUNK_ADD] = { "add chunk",
		"INSERT INTO chunks (id, blob_id, offset, len) VALUES (?1, ?2, ?3, ?4)"
		" ON CONFLICT DO NOTHING" },
	[ST_FILE_ADD] = { "add file",
		"INSERT INTO files (version_id, path, blob_id, mode, mtime_ns)"
		" VALUES (?1, ?2, ?3, ?4, ?5)" },
	/* Only the dropped version's blobs can lose their last file. */
	[ST_GC_COLLECT] = { "collect blobs",
		"INSERT OR IGNORE INTO temp.gc SELECT blob_id FROM files WHERE version_id = ?1" },
	[ST_GC_BLOBS] = { "drop blobs",
		"DELETE FROM blobs WHERE id IN (SELECT blob_id FROM temp.gc)"
		" AND NOT EXISTS (SELECT 1 FROM files WHERE blob_id = blobs.id)" },
	[ST_GC_CLEAR] = { "clear gc", "DELETE FROM temp.gc" },
	[ST_CHUNK_FIND] = { "find chunk",
		"SELECT p.name, v.version, f.path, c.offset, f.mode, f.mtime_ns"
		" FROM chunks c JOIN files f ON f.blob_id = c.blob_id" LOC_FROM_FILES
		" WHERE c.id = ?1 AND c.len = ?2 LIMIT 1" },
	[ST_CHUNK_HAS] = { "find chunk",
		"SELECT 1 FROM chunks c WHERE c.id = ?1 AND c.len = ?2"
		" AND EXISTS (SELECT 1 FROM files f WHERE f.blob_id = c.blob_id) LIMIT 1" },
	[ST_FILE_FIND] = { "find file",
		"SELECT p.name, v.version, f.path, 0, f.mode, f.mtime_ns"
		" FROM blobs b JOIN files f ON f.blob_id = b.id" LOC_FROM_FILES
		" WHERE b.hash = ?1 ORDER BY (f.mode = ?2 AND f.mtime_ns = ?3) DESC LIMIT 1" },
	[ST_VERSIONS] = { "list versions",
		"SELECT v.version FROM versions v JOIN packages p ON p.id = v.package_id"
		" WHERE p.name = ?1 ORDER BY v.version" },
	[ST_PACKAGES] = { "list packages",
		"SELECT name FROM packages p"
		" WHERE EXISTS (SELECT 1 FROM versions WHERE package_id = p.id) ORDER BY name" },
	[ST_STATS] = { "stats",
		"SELECT (SELECT count(*) FROM packages), (SELECT count(*) FROM versions),"
		" (SELECT count(*) FROM files), (SELECT count(*) FROM blobs),"
		" (SELECT count(*) FROM chunks)" },
	[ST_QC_GET] = { "quick-check get",
		"SELECT size, mtime_ns, ctime_ns, ino, dev, version FROM quickcheck"
		" WHERE package = ?1 AND path = ?2" },
	[ST_QC_PUT] = { "quick-check put",
		"INSERT OR REPLACE INTO quickcheck"
		" (package, path, size, mtime_ns, ctime_ns, ino, dev, version)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)" },
	[ST_QC_PRUNE] = { "quick-check prune",
		"DELETE FROM quickcheck WHERE package = ?1 AND version <> ?2" },
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
	[ST_RM_DONE_BEFORE] = { "confirm removals",
		"UPDATE removals SET state = 'done', updated_ns = ?3, last_error = NULL"
		" WHERE peer = ?1 AND state = 'queued' AND created_ns <= ?2" },
};

struct bdr_db {
	sqlite3 *h;                  /* owned */
	sqlite3_stmt *st[ST__COUNT]; /* owned; each prepared on first use */
	int depth;                   /* open levels: BEGIN, then SAVEPOINTs */
	int schema;                  /* user_version after migration */
	struct bdr_diag err;         /* the last failure, for bdr_db_errmsg */
};

/* ---- errors and statements ---- */

static int sql_errno(struct bdr_db *db, int rc)
{
	int e;

	switch (rc & 0xff) {
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return -BDR_ECORRUPT;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_IOERR:
	case SQLITE_CANTOPEN:
		e = sqlite3_system_errno(db->h);
		return e > 0 ? -e : -EIO;
	default:
		return -BDR_EDB;
	}
}

/* Maps an SQLite result to -errno/-BDR_E* and records the message. */
static int sql_err(struct bdr_db *db, int rc, const char *what)
{
	return bdr_diag_set(&db->err, sql_errno(db, rc), "db: %s: %s", what,
			    sqlite3_errmsg(db->h));
}

static int corrupt(struct bdr_db *db, const char *what)
{
	return bdr_diag_set(&db->err, -BDR_ECORRUPT, "db: %s: implausible value", what);
}

static int st_get(struct bdr_db *db, enum st id, sqlite3_stmt **out)
{
	if (!db->st[id]) {
		int rc = sqlite3_prepare_v3(db->h, st_def[id].sql, -1, SQLITE_PREPARE_PERSISTENT,
					    &db->st[id], NULL);
		if (rc != SQLITE_OK)
			return sql_err(db, rc, st_def[id].name);
	}
	*out = db->st[id];
	return 0;
}

/* Releases the statement's read or write cursor so it holds no lock. */
static void st_done(struct bdr_db *db, enum st id)
{
	sqlite3_reset(db->st[id]);
	sqlite3_clear_bindings(db->st[id]);
}

/* 1 for a row, 0 when done; on error the statement is reset. */
static int st_step(struct bdr_db *db, enum st id)
{
	int rc = sqlite3_step(db->st[id]), err;

	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	err = sql_err(db, rc, st_def[id].name);
	st_done(db, id);
	return err;
}

/* A failed bind: SQLite records the cause on the connection. */
static int bind_fail(struct bdr_db *db, enum st id)
{
	int err = sql_err(db, sqlite3_errcode(db->h), st_def[id].name);

	st_done(db, id);
	return err;
}

/* Runs a statement that returns no rows, with up to two integer
 * parameters (as many as it has). */
static int st_run(struct bdr_db *db, enum st id, int64_t a, int64_t b)
{
	sqlite3_stmt *s = NULL;
	int err = st_get(db, id, &s), n;

	if (err < 0)
		return err;
	n = sqlite3_bind_parameter_count(s);
	if ((n >= 1 && sqlite3_bind_int64(s, 1, a)) || (n >= 2 && sqlite3_bind_int64(s, 2, b)))
		return bind_fail(db, id);
	err = st_step(db, id);
	if (err > 0)
		err = 0;
	st_done(db, id);
	return err;
}

static int db_exec(struct bdr_db *db, const char *sql)
{
	int rc = sqlite3_exec(db->h, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : sql_err(db, rc, sql);
}

/* One integer from a one-off query (pragmas, probes). */
static int query_int(struct bdr_db *db, const char *sql, int64_t *out)
{
	sqlite3_stmt *s = NULL;
	int rc = sqlite3_prepare_v2(db->h, sql, -1, &s, NULL), err = 0;

	if (rc != SQLITE_OK)
		return sql_err(db, rc, sql);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(s, 0);
	else /* a pragma or count(*) always has a row */
		err = rc == SQLITE_DONE ? corrupt(db, sql) : sql_err(db, rc, sql);
	sqlite3_finalize(s);
	return err;
}

/* ---- transactions ---- */

/* outer at the top level, a savepoint inside a transaction. */
static int begin(struct bdr_db *db, const char *outer)
{
	char savepoint[32];
	const char *sql = outer;
	int err;

	if (db->depth > 0) {
		snprintf(savepoint, sizeof(savepoint), "SAVEPOINT s%d", db->depth);
		sql = savepoint;
	}
	err = db_exec(db, sql);
	if (err == 0)
		db->depth++;
	return err;
}

int bdr_db_begin(struct bdr_db *db)
{
	return begin(db, "BEGIN IMMEDIATE");
}

int bdr_db_read_begin(struct bdr_db *db)
{
	return begin(db, "BEGIN DEFERRED");
}

int bdr_db_commit(struct bdr_db *db)
{
	char sql[32] = "COMMIT";
	int err;

	if (db->depth == 0)
		return bdr_diag_set(&db->err, -EINVAL, "db: commit without begin");
	if (db->depth > 1)
		snprintf(sql, sizeof(sql), "RELEASE s%d", db->depth - 1);
	err = db_exec(db, sql);
	if (err == 0)
		db->depth--;
	else if (sqlite3_get_autocommit(db->h))
		db->depth = 0; /* SQLite rolled the whole transaction back */
	return err;
}

void bdr_db_rollback(struct bdr_db *db)
{
	char sql[64] = "ROLLBACK";

	if (db->depth == 0)
		return;
	if (sqlite3_get_autocommit(db->h)) {
		db->depth = 0; /* an error already rolled everything back */
		return;
	}
	if (db->depth > 1)
		snprintf(sql, sizeof(sql), "ROLLBACK TO s%d; RELEASE s%d", db->depth - 1,
			 db->depth - 1);
	db_exec(db, sql);
	db->depth = sqlite3_get_autocommit(db->h) ? 0 : db->depth - 1;
}

int bdr_db_end(struct bdr_db *db, int err)
{
	if (err == 0)
		err = bdr_db_commit(db);
	if (err < 0)
		bdr_db_rollback(db);
	return err;
}

/* ---- open, migrate, close ---- */

static int schema_check(struct bdr_db *db, int64_t user_version)
{
	if (user_version >= 0 && user_version <= DB_SCHEMA)
		return 0;
	return bdr_diag_set(&db->err, -BDR_EVERSION,
			    "db: schema version %lld is newer than this bdr's (%d)",
			    (long long)user_version, DB_SCHEMA);
}

/* Reads what is there before anything writes: garbage, a damaged header,
 * someone else's database or a newer schema must be left as they are. */
static int db_probe(struct bdr_db *db, const char *path)
{
	int64_t user_version = 0, app_id = 0, objects = 0;
	int err;

	if ((err = query_int(db, "SELECT count(*) FROM sqlite_master", &objects)) < 0 ||
	    (err = query_int(db, "PRAGMA user_version", &user_version)) < 0 ||
	    (err = query_int(db, "PRAGMA application_id", &app_id)) < 0)
		return err;
	if (user_version == 0 && objects > 0)
		return bdr_diag_set(&db->err, -BDR_ECORRUPT,
				    "db: %s: an SQLite database but not bdr's", path);
	if (user_version > 0 && app_id != DB_APPLICATION_ID)
		return bdr_diag_set(&db->err, -BDR_ECORRUPT,
				    "db: %s: application id %lld is not bdr's", path,
				    (long long)app_id);
	return schema_check(db, user_version);
}

static int db_configure(struct bdr_db *db)
{
	sqlite3_stmt *s = NULL;
	const char *mode;
	int rc, err, wal;

	rc = sqlite3_prepare_v2(db->h, "PRAGMA journal_mode = WAL", -1, &s, NULL);
	if (rc != SQLITE_OK)
		return sql_err(db, rc, "journal_mode");
	rc = sqlite3_step(s);
	mode = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(s, 0) : NULL;
	/* An in-memory database (tests) has no WAL and needs none. */
	wal = mode && (!strcmp(mode, "wal") || !strcmp(mode, "memory"));
	err = rc == SQLITE_ROW ? 0 : sql_err(db, rc, "journal_mode");
	sqlite3_finalize(s);
	if (err < 0)
		return err;
	if (!wal)
		return bdr_diag_set(&db->err, -BDR_EDB, "db: cannot switch to WAL mode");
	return db_exec(db, "PRAGMA synchronous = FULL;"
			   "PRAGMA foreign_keys = ON;"
			   "PRAGMA cache_size = -8192;"
			   "PRAGMA journal_size_limit = 67108864;"
			   "CREATE TEMP TABLE gc (blob_id INTEGER PRIMARY KEY);");
}

int bdr_db_set_synced(struct bdr_db *db, bool synced)
{
	return db_exec(db, synced ? "PRAGMA synchronous = FULL;" : "PRAGMA synchronous = NORMAL;");
}

/* Applies migrations up to target one transaction each, re-reading
 * user_version inside the transaction in case another process migrated
 * meanwhile. */
static int db_migrate(struct bdr_db *db, int target)
{
	for (;;) {
		int64_t v = 0;
		char sql[48];
		int err = bdr_db_begin(db);

		if (err < 0)
			return err;
		err = query_int(db, "PRAGMA user_version", &v);
		if (err == 0)
			err = schema_check(db, v);
		if (err < 0 || v >= target) {
			db->schema = (int)v;
			return bdr_db_end(db, err);
		}
		err = db_exec(db, migrations[v]);
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", (int)v + 1);
		if (err == 0)
			err = db_exec(db, sql);
		if ((err = bdr_db_end(db, err)) < 0)
			return err;
	}
}

int bdr_db_open(struct bdr_db **out, const char *path, struct bdr_diag *d)
{
	return bdr_db_open_schema(out, path, DB_SCHEMA, d);
}

int bdr_db_open_schema(struct bdr_db **out, const char *path, int schema, struct bdr_diag *d)
{
	struct bdr_db *db = NULL;
	int rc, err;

	*out = NULL;
	if (schema < 1 || schema > DB_SCHEMA)
		return bdr_diag_set(d, -EINVAL, "db: no schema %d", schema);
	if (!(db = calloc(1, sizeof(*db))))
		return bdr_diag_set(d, -ENOMEM, "db: out of memory");
	rc = sqlite3_open_v2(path, &db->h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				   SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		err = db->h ? sql_err(db, rc, path)
			    : bdr_diag_set(&db->err, -ENOMEM, "db: %s: out of memory", path);
		goto fail;
	}
	sqlite3_busy_timeout(db->h, DB_BUSY_TIMEOUT_MS);
	if ((err = db_probe(db, path)) < 0 || (err = db_configure(db)) < 0 ||
	    (err = db_migrate(db, schema)) < 0)
		goto fail;
	*out = db;
	return 0;
fail:
	if (d)
		*d = db->err;
	bdr_db_close(db);
	return err;
}

void bdr_db_close(struct bdr_db *db)
{
	if (!db)
		return;
	for (int i = 0; i < ST__COUNT; i++)
		sqlite3_finalize(db->st[i]);
	sqlite3_close_v2(db->h); /* rolls back an open transaction */
	free(db);
}

int bdr_db_remove_files(const char *path)
{
	static const char *const suffix[] = { "", "-wal", "-shm", "-journal" };
	int err = 0;

	for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
		char p[PATH_MAX];

		if (snprintf(p, sizeof(p), "%s%s", path, suffix[i]) >= (int)sizeof(p))
			return -ENAMETOOLONG;
		if (unlink(p) < 0 && errno != ENOENT && err == 0)
			err = -errno;
	}
	return err;
}

int bdr_db_schema_version(struct bdr_db *db)
{
	return db->schema;
}

const char *bdr_db_errmsg(const struct bdr_db *db)
{
	return db->err.msg;
}

/* ---- adding and removing versions ---- */

static int package_id(struct bdr_db *db, const char *name, bool create, int64_t *id)
{
	sqlite3_stmt *s = NULL;
	int err = st_get(db, ST_PKG_GET, &s);

	if (err < 0)
		return err;
	if (sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC))
		return bind_fail(db, ST_PKG_GET);
	if ((err = st_step(db, ST_PKG_GET)) > 0)
		*id = sqlite3_column_int64(s, 0);
	st_done(db, ST_PKG_GET);
	if (err != 0)
		return err < 0 ? err : 0;
	if (!create)
		return -BDR_ENOTFOUND;
	if ((err = st_get(db, ST_PKG_ADD, &s)) < 0)
		return err;
	if (sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC))
		return bind_fail(db, ST_PKG_ADD);
	err = st_step(db, ST_PKG_ADD);
	st_done(db, ST_PKG_ADD);
	*id = sqlite3_last_insert_rowid(db->h);
	return err;
}

/* 0 and *id for a new version row, 1 if it was already there. */
static int version_insert(struct bdr_db *db, int64_t pkg, const struct bdr_manifest *m, int64_t *id)
{
	sqlite3_stmt *s = NULL;
	int err = st_get(db, ST_VER_ADD, &s);

	if (err < 0)
		return err;
	if (sqlite3_bind_int64(s, 1, pkg) || sqlite3_bind_int64(s, 2, (int64_t)m->version) ||
	    sqlite3_bind_text(s, 3, m->site, -1, SQLITE_STATIC) ||
	    sqlite3_bind_int64(s, 4, m->created_ns) ||
	    sqlite3_bind_blob(s, 5, m->signer, sizeof(m->signer), SQLITE_STATIC))
		return bind_fail(db, ST_VER_ADD);
	err = st_step(db, ST_VER_ADD);
	st_done(db, ST_VER_ADD);
	if (err < 0)
		return err;
	if (sqlite3_changes(db->h) == 0)
		return 1;
	*id = sqlite3_last_insert_rowid(db->h);
	return 0;
}

static int version_id(struct bdr_db *db, int64_t pkg, uint64_t version, int64_t *id)
{
	sqlite3_stmt *s = NULL;
	int err = st_get(db, ST_VER_GET, &s);

	if (err < 0)
		return err;
	if (sqlite3_bind_int64(s, 1, pkg) || sqlite3_bind_int64(s, 2, (int64_t)version))
		return bind_fail(db, ST_VER_GET);
	if ((err = st_step(db, ST_VER_GET)) > 0)
		*id = sqlite3_column_int64(s, 0);
	st_done(db, ST_VER_GET);
	return err > 0 ? 0 : err < 0 ? err : -BDR_ENOTFOUND;
}

/* The blob with hash, or -BDR_ENOTFOUND. Equal hashes are equal content,
 * so a different size means the manifest is wrong. */
static int blob_find(struct bdr_db *db, const struct bdr_entry *e, int64_t *id)
{
	sqlite3_stmt *s = NULL;
	uint64_t size = 0;
	int err = st_get(db, ST_BLOB_GET, &s);

	if (err < 0)
		return err;
	if (sqlite3_bind_blob(s, 1, e->hash, BDR_FILE_HASH_LEN, SQLITE_STATIC))
		return bind_fail(db, ST_BLOB_GET);
	if ((err = st_step(db, ST_BLOB_GET)) > 0) {
		*id = sqlite3_column_int64(s, 0);
		size = (uint64_t)sqlite3_column_int64(s, 1);
	}
	st_done(db, ST_BLOB_GET);
	if (err <= 0)
		return err < 0 ? err : -BDR_ENOTFOUND;
	if (size != e->size)
		return bdr_diag_set(&db->err, -BDR_EFORMAT,
				    "db: '%s': %llu bytes, but its hash is held with %llu", e->path,
				    (unsigned long long)e->size, (unsigned long long)size);
	return 0;
}

static int chunks_insert(struct bdr_db *db, int64_t blob, const struct bdr_entry *e)
{
	sqlite3_stmt *s = NULL;
	uint64_t off = 0;
	int err = st_get(db, ST_CHUNK_ADD, &s);

	if (err < 0)
		return err;
	for (uint32_t i = 0; err == 0 && i < e->nchunks; i++) {
		const struct bdr_chunk_ref *c = &e->chunks[i];

		if (sqlite3_bind_blob(s, 1, c->id.b, BDR_CHUNK_ID_LEN, SQLITE_STATIC) ||
		    sqlite3_bind_int64(s, 2, blob) || sqlite3_bind_int64(s, 3, (int64_t)off) ||
		    sqlite3_bind_int64(s, 4, c->len))
			return bind_fail(db, ST_CHUNK_ADD);
		err = st_step(db, ST_CHUNK_ADD);
		sqlite3_reset(s);
		off += c->len;
	}
	st_done(db, ST_CHUNK_ADD);
	if (err == 0 && off != e->size)
		return bdr_diag_set(&db->err, -BDR_EFORMAT,
				    "db: '%s': chunks add up to %llu bytes, not %llu", e->path,
				    (unsigned long long)off, (unsigned long long)e->size);
	return err;
}

static int blob_insert(struct bdr_db *db, const struct bdr_entry *e, int64_t *id)
{
	sqlite3_stmt *s = NULL;
	int err = st_get(db, ST_BLOB_ADD, &s);

	if (err < 0)
		return err;
	if (e->size > INT64_MAX || (e->nchunks > 0 && !e->chunks))
		return bdr_diag_set(&db->err, -BDR_EFORMAT, "db: '%s': bad size or chunk list",
				    e->path);
	if (sqlite3_bind_blob(s, 1, e->hash, BDR_FILE_HASH_LEN, SQLITE_STATIC) ||
	    sqlite3_bind_int64(s, 2, (int64_t)e->size))
		return bind_fail(db, ST_BLOB_ADD);
	err = st_step(db, ST_BLOB_ADD);
	st_done(db, ST_BLOB_ADD);
	if (err < 0)
		return err;
	*id = sqlite3_last_insert_rowid(db->h);
	return chunks_insert(db, *id, e);
}

static int file_add(struct bdr_db *db, int64_t ver, const struct bdr_entry *e)
{
	sqlite3_stmt *s = NULL;
	int64_t blob = 0;
	int err;

	if (!e->path || strlen(e->path) > BDR_MAX_PATH)
		return bdr_diag_set(&db->err, -BDR_ELIMIT, "db: file path missing or too long");
	err = blob_find(db, e, &blob);
	if (err == -BDR_ENOTFOUND)
		err = blob_insert(db, e, &blob);
	if (err < 0 || (err = st_get(db, ST_FILE_ADD, &s)) < 0)
		return err;
	if (sqlite3_bind_int64(s, 1, ver) || sqlite3_bind_text(s, 2, e->path, -1, SQLITE_STATIC) ||
	    sqlite3_bind_int64(s, 3, blob) || sqlite3_bind_int64(s, 4, e->mode) ||
	    sqlite3_bind_int64(s, 5, e->mtime_ns))
		return bind_fail(db, ST_FILE_ADD);
	err = st_step(db, ST_FILE_ADD);
	st_done(db, ST_FILE_ADD);
	return err;
}

/* What the rows need to stay within what bdr_db_loc can hold. */
static int check_names(struct bdr_db *db, const char *package, const char *site)
{
	if (!package || !*package || strlen(package) > BDR_MAX_PACKAGE_NAME)
		return bdr_diag_set(&db->err, -BDR_ELIMIT, "db: package name missing or too long");
	if (!site)
		return bdr_diag_set(&db->err, -EINVAL, "db: manifest without a site");
	return 0;
}

int bdr_db_version_add(struct bdr_db *db, const struct bdr_manifest *m)
{
	int64_t pkg = 0, ver = 0;
	int err = check_names(db, m->package, m->site);

	if (err < 0)
		return err;
	if (m->version == 0 || m->version > INT64_MAX)
		return bdr_diag_set(&db->err, -BDR_ELIMIT, "db: version %llu out of range",
				    (unsigned long long)m->version);
	if ((err = bdr_db_begin(db)) < 0)
		return err;
	err = package_id(db, m->package, true, &pkg);
	if (err == 0)
		err = version_insert(db, pkg, m, &ver);
	for (uint32_t i = 0; err == 0 && i < m->nentries; i++)
		if (m->entries[i].type == BDR_ENTRY_FILE)
			err = file_add(db, ver, &m->entries[i]);
	return bdr_db_end(db, err > 0 ? 0 : err);
}

int bdr_db_version_remove(struct bdr_db *db, const char *package, uint64_t version)
{
	int64_t pkg = 0, ver = 0;
	int err;

	if (!package || version > INT64_MAX)
		return -BDR_ENOTFOUND;
	if ((err = bdr_db_begin(db)) < 0)
		return err;
	err = package_id(db, package, false, &pkg);
	if (err == 0)
		err = version_id(db, pkg, version, &ver);
	if (err == 0)
		err = st_run(db, ST_GC_COLLECT, ver, 0);
	if (err == 0)
		err = st_run(db, ST_VER_DEL, ver, 0);
	if (err == 0)
		err = st_run(db, ST_GC_BLOBS, 0, 0);
	if (err == 0)
		err = st_run(db, ST_GC_CLEAR, 0, 0);
	if (err == 0)
		err = st_run(db, ST_PKG_GC, pkg, 0);
	return bdr_db_end(db, err);
}

/* Children before parents, so no foreign key has anything left to check.
 * temp.gc is only ever filled inside version_remove's transaction. */
int bdr_db_clear_index(struct bdr_db *db)
{
	int err = bdr_db_begin(db);

	if (err < 0)
		return err;
	err = db_exec(db, "DELETE FROM quickcheck; DELETE FROM chunks; DELETE FROM files;"
			  " DELETE FROM versions; DELETE FROM blobs; DELETE FROM packages;");
	return bdr_db_end(db, err);
}

/* ---- lookups ---- */

static int col_text(struct bdr_db *db, sqlite3_stmt *s, int col, char *dst, size_t cap,
		    const char *what)
{
	const unsigned char *t = sqlite3_column_text(s, col);
	size_t n = (size_t)sqlite3_column_bytes(s, col);

	if (!t)
		return sqlite3_errcode(db->h) == SQLITE_NOMEM ? -ENOMEM : corrupt(db, what);
	if (n >= cap)
		return bdr_diag_set(&db->err, -BDR_ECORRUPT, "db: %s of %zu bytes is too long",
				    what, n);
	memcpy(dst, t, n);
	dst[n] = '\0';
	return 0;
}

/* Columns: package, version, path, offset, mode, mtime_ns. */
static int loc_fill(struct bdr_db *db, sqlite3_stmt *s, struct bdr_db_loc *loc)
{
	int64_t version = sqlite3_column_int64(s, 1), off = sqlite3_column_int64(s, 3);
	int64_t mode = sqlite3_column_int64(s, 4);
	int err;

	if ((err = col_text(db, s, 0, loc->package, sizeof(loc->package), "package name")) < 0 ||
	    (err = col_text(db, s, 2, loc->path, sizeof(loc->path), "path")) < 0)
		return err;
	if (version < 1 || off < 0 || mode < 0 || mode > 07777)
		return corrupt(db, "location");
	loc->version = (uint64_t)version;
	loc->offset = (uint64_t)off;
	loc->mode = (uint32_t)mode;
	loc->mtime_ns = sqlite3_column_int64(s, 5);
	return 0;
}

/* Steps a location query once: 0 and *loc (if wanted), or -BDR_ENOTFOUND. */
static int loc_query(struct bdr_db *db, enum st id, struct bdr_db_loc *loc)
{
	int err = st_step(db, id);

	if (err > 0)
		err = loc ? loc_fill(db, db->st[id], loc) : 0;
	else if (err == 0)
		err = -BDR_ENOTFOUND;
	st_done(db, id);
	return err;
}

int bdr_db_chunk_find(struct bdr_db *db, const struct bdr_chunk_id *id, uint32_t len,
		      struct bdr_db_loc *loc)
{
	enum st q = loc ? ST_CHUNK_FIND : ST_CHUNK_HAS;
	sqlite3_stmt *s = NULL;
	int err = st_get(db, q, &s);

	if (err < 0)
		return err;
	if (sqlite3_bind_blob(s, 1, id->b, BDR_CHUNK_ID_LEN, SQLITE_STATIC) ||
	    sqlite3_bind_int64(s, 2, len))
		return bind_fail(db, q);
	return loc_query(db, q, loc);
}

int bdr_db_file_find(struct bdr_db *db, const uint8_t hash[BDR_FILE_HASH_LEN], uint32_t mode,
		     int64_t mtime_ns, struct bdr_db_loc *loc)
{
	sqlite3_stmt *s = NULL;
	int err = st_get(db, ST_FILE_FIND, &s);

	if (err < 0)
		return err;
	if (sqlite3_bind_blob(s, 1, hash, BDR_FILE_HASH_LEN, SQLITE_STATIC) ||
	    sqlite3_bind_int64(s, 2, mode) || sqlite3_bind_int64(s, 3, mtime_ns))
		return bind_fail(db, ST_FILE_FIND);
	return loc_query(db, ST_FILE_FIND, loc);
}

/* ---- listings and counts ---- */

int bdr_db_versions(struct bdr_db *db, const char *package, uint64_t **out, size_t *n)
{
	sqlite3_stmt *s = NULL;
	uint64_t *v = NULL;
	size_t cap = 0;
	int err = st_get(db, ST_VERSIONS, &s);

	*out = NULL;
	*n = 0;
	if (err < 0)
		return err;
	if (sqlite3_bind_text(s, 1, package, -1, SQLITE_STATIC))
		return bind_fail(db, ST_VERSIONS);
	while ((err = st_step(db, ST_VERSIONS)) > 0) {
		if (*n == cap) {
			uint64_t *nv = realloc(v, (cap = cap ? 2 * cap : 16) * sizeof(*v));
			if (!nv) {
				err = -ENOMEM;
				break;
			}
			v = nv;
		}
		v[(*n)++] = (uint64_t)sqlite3_column_int64(s, 0);
	}
	st_done(db, ST_VERSIONS);
	if (err < 0) {
		free(v);
		*n = 0;
		return err;
	}
	*out = v;
	return 0;
}

void bdr_db_strv_free(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

int bdr_db_packages(struct bdr_db *db, char ***names, size_t *n)
{
	sqlite3_stmt *s = NULL;
	char **v = NULL;
	size_t cap = 0, len = 0;
	int err = st_get(db, ST_PACKAGES, &s);

	*names = NULL;
	*n = 0;
	if (err < 0)
		return err;
	while ((err = st_step(db, ST_PACKAGES)) > 0) {
		char name[BDR_MAX_PACKAGE_NAME + 1];

		if (len == cap) {
			char **nv = realloc(v, (cap = cap ? 2 * cap : 16) * sizeof(*v));
			if (!nv) {
				err = -ENOMEM;
				break;
			}
			v = nv;
		}
		if ((err = col_text(db, s, 0, name, sizeof(name), "package name")) < 0)
			break;
		if (!(v[len] = strdup(name))) {
			err = -ENOMEM;
			break;
		}
		len++;
	}
	st_done(db, ST_PACKAGES);
	if (err < 0) {
		bdr_db_strv_free(v, len);
		return err;
	}
	*names = v;
	*n = len;
	return 0;
}

int bdr_db_stats(struct bdr_db *db, struct bdr_db_stats *st)
{
	sqlite3_stmt *s = NULL;
	int err = st_get(db, ST_STATS, &s);

	if (err < 0)
		return err;
	if ((err = st_step(db, ST_STATS)) > 0) {
		st->packages = (uint64_t)sqlite3_column_int64(s, 0);
		st->versions = (uint64_t)sqlite3_column_int64(s, 1);
		st->files = (uint64_t)sqlite3_column_int64(s, 2);
		st->blobs = (uint64_t)sqlite3_column_int64(s, 3);
		st->chunks = (uint64_t)sqlite3_column_int64(s, 4);
	}
	st_done(db, ST_STATS);
	return err > 0 ? 0 : err < 0 ? err : corrupt(db, "stats");
}

/* ---- import quick-check cache ---- */

int bdr_db_qc_get(struct bdr_db *db, const char *package, const char *path, struct bdr_db_qc *qc)
{
	sqlite3_stmt *s = NULL;
	int err = st_get(db, ST_QC_GET, &s);

	if (err < 0)
		return err;
	if (sqlite3_bind_text(s, 1, package, -1, SQLITE_STATIC) ||
	    sqlite3_bind_text(s, 2, path, -1, SQLITE_STATIC))
		return bind_fail(db, ST_QC_GET);
	if ((err = st_step(db, ST_QC_GET)) > 0) {
		qc->size = (uint64_t)sqlite3_column_int64(s, 0);
		qc->mtime_ns = sqlite3_column_int64(s, 1);
		qc->ctime_ns = sqlite3_column_int64(s, 2);
		qc->ino = (uint64_t)sqlite3_column_int64(s, 3);
		qc->dev = (uint64_t)sqlite3_column_int64(s, 4);
		qc->version = (uint64_t)sqlite3_column_int64(s, 5);
	}
	st_done(db, ST_QC_GET);
	return err > 0 ? 0 : err < 0 ? err : -BDR_ENOTFOUND;
}

/* Unsigned fields are stored as their 64-bit pattern: they are only ever
 * compared for equality. */
int bdr_db_qc_put(struct bdr_db *db, const char *package, const char *path, const struct bdr_db_qc *qc)
{
	sqlite3_stmt *s = NULL;
	int err = st_get(db, ST_QC_PUT, &s);

	if (err < 0)
		return err;
	if (sqlite3_bind_text(s, 1, package, -1, SQLITE_STATIC) ||
	    sqlite3_bind_text(s, 2, path, -1, SQLITE_STATIC) ||
	    sqlite3_bind_int64(s, 3, (int64_t)qc->size) || sqlite3_bind_int64(s, 4, qc->mtime_ns) ||
	    sqlite3_bind_int64(s, 5, qc->ctime_ns) || sqlite3_bind_int64(s, 6, (int64_t)qc->ino) ||
	    sqlite3_bind_int64(s, 7, (int64_t)qc->dev) ||
	    sqlite3_bind_int64(s, 8, (int64_t)qc->version))
		return bind_fail(db, ST_QC_PUT);
	err = st_step(db, ST_QC_PUT);
	st_done(db, ST_QC_PUT);
	return err;
}

int bdr_db_qc_prune(struct bdr_db *db, const char *package, uint64_t version)
{
	sqlite3_stmt *s = NULL;
	int err = st_get(db, ST_QC_PRUNE, &s);

	if (err < 0)
		return err;
	if (sqlite3_bind_text(s, 1, package, -1, SQLITE_STATIC) ||
	    sqlite3_bind_int64(s, 2, (int64_t)version))
		return bind_fail(db, ST_QC_PRUNE);
	err = st_step(db, ST_QC_PRUNE);
	st_done(db, ST_QC_PRUNE);
	return err;
}

/* ---- binding by list, rows into structs ---- */

/* A statement parameter (see BIND). */
struct param {
	const char *text; /* bound when is_text; NULL binds NULL */
	int64_t num;
	int len; /* bytes of text, or -1 for up to its NUL */
	bool is_text;
};
#define P_INT(x) ((struct param){ .num = (int64_t)(x) })
#define P_TEXT(x) ((struct param){ .text = (x), .len = -1, .is_text = true })

static int st_bind(struct bdr_db *db, enum st id, const struct param *p, size_t n)
{
	sqlite3_stmt *s = NULL;
	int err = st_get(db, id, &s);

	for (size_t i = 0; err == 0 && i < n; i++) {
		int col = (int)i + 1;
		int rc = !p[i].is_text ? sqlite3_bind_int64(s, col, p[i].num)
			 : p[i].text   ? sqlite3_bind_text(s, col, p[i].text, p[i].len, SQLITE_STATIC)
				       : sqlite3_bind_null(s, col);
		if (rc != SQLITE_OK)
			err = bind_fail(db, id);
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
	while ((err = st_step(db, id)) > 0)
		;
	st_done(db, id);
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
	err = st_step(db, id);
	if (err > 0)
		err = fill(db, db->st[id], row);
	else if (err == 0)
		err = -BDR_ENOTFOUND;
	st_done(db, id);
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
	while ((err = st_step(db, id)) > 0) {
		if (len == cap) {
			size_t ncap = cap ? 2 * cap : 16;
			char *nv = ncap <= SIZE_MAX / size ? realloc(v, ncap * size) : NULL;

			if (!nv) {
				err = bdr_diag_set(&db->err, -ENOMEM, "db: %s: out of memory",
						   st_def[id].name);
				break;
			}
			v = nv;
			cap = ncap;
		}
		if ((err = fill(db, db->st[id], v + len * size)) < 0)
			break;
		len++;
	}
	st_done(db, id);
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
		return col_text(db, s, col, dst, cap, what);
	dst[0] = '\0';
	return 0;
}

/* A state column as its index in names. */
static int col_state(struct bdr_db *db, sqlite3_stmt *s, int col, const char *const *names,
		     size_t n, int *out)
{
	char buf[16];
	int err = col_text(db, s, col, buf, sizeof(buf), "state");

	if (err == 0 && (*out = name_index(names, n, buf)) < 0)
		err = corrupt(db, "state");
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
	if ((err = col_text(db, s, 1, t->package, sizeof(t->package), "package name")) < 0 ||
	    (err = col_text(db, s, 3, t->peer, sizeof(t->peer), "peer")) < 0 ||
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
		return corrupt(db, "transfer");
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
	if ((err = col_text(db, s, 0, r->package, sizeof(r->package), "package name")) < 0 ||
	    (err = col_text(db, s, 2, r->peer, sizeof(r->peer), "peer")) < 0 ||
	    (err = col_state(db, s, 3, recv_state_names, NELEM(recv_state_names), &state)) < 0 ||
	    (err = col_text_opt(db, s, 7, r->last_error, sizeof(r->last_error), "error")) < 0)
		return err;
	if (version < 1 || bytes < 0)
		return corrupt(db, "received version");
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
		return corrupt(db, "peer version");
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
	while ((err = st_step(db, ST_XFER_SUPERSEDE)) > 0)
		n += sqlite3_column_int64(db->st[ST_XFER_SUPERSEDE], 0) != row;
	st_done(db, ST_XFER_SUPERSEDE);
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
	if ((err = col_text(db, s, 0, r->site, sizeof(r->site), "site")) < 0 ||
	    (err = col_text(db, s, 1, r->package, sizeof(r->package), "package name")) < 0 ||
	    (err = col_state(db, s, 3, site_state_names, NELEM(site_state_names), &state)) < 0 ||
	    (err = col_text_opt(db, s, 7, r->last_error, sizeof(r->last_error), "error")) < 0 ||
	    (err = col_text(db, s, 9, r->via, sizeof(r->via), "via")) < 0)
		return err;
	if (version < 0 || b[0] < 0 || b[1] < 0 || b[2] < 0)
		return corrupt(db, "site status");
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
	return col_text(db, s, 0, row, BDR_MAX_PACKAGE_NAME + 1, "package name");
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
