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
 * prepared statements it caches are shared state anyway.
 *
 * This file holds the schema, the statement machinery, transactions and the
 * rebuildable content index; db_state.c the daemon's durable state. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "bdr/db.h"
#include "bdr/error.h"
#include "db_internal.h"

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

	/* 4: each package's origin, the key that signs its versions: fixed
	 * by the first version of it this site adds (bdr_db_version_add),
	 * kept by bdr_db_clear_index and across removals. A file from before
	 * takes the signer of the lowest version it holds. */
	"CREATE TABLE origins ("
	"  package TEXT PRIMARY KEY,"
	"  signer BLOB NOT NULL CHECK (length(signer) = 32)," /* Ed25519 public key */
	"  site TEXT NOT NULL,"      /* as that first version's manifest names it */
	"  version INTEGER NOT NULL," /* that first version */
	"  created_ns INTEGER NOT NULL);"
	"INSERT OR IGNORE INTO origins (package, signer, site, version, created_ns)"
	"  SELECT p.name, v.signer, v.site, v.version, v.created_ns"
	"  FROM versions v JOIN packages p ON p.id = v.package_id ORDER BY p.name, v.version;",
};
#define DB_SCHEMA ((int)(sizeof(migrations) / sizeof(migrations[0])))

/* From a file row f to its version v and package p. */
#define LOC_FROM_FILES                                          \
	" JOIN versions v ON v.id = f.version_id"               \
	" JOIN packages p ON p.id = v.package_id"

/* ---- errors and statements ---- */

static const struct bdr__db_stmt content_stmts[ST_STATE_FIRST] = {
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
};

static const struct bdr__db_stmt *st_def(enum st id)
{
	return id < ST_STATE_FIRST ? &content_stmts[id] : &bdr__db_state_stmts[id];
}

const char *bdr__db_st_name(enum st id)
{
	return st_def(id)->name;
}

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

int bdr__db_sql_err(struct bdr_db *db, int rc, const char *what)
{
	return bdr_diag_set(&db->err, sql_errno(db, rc), "db: %s: %s", what,
			    sqlite3_errmsg(db->h));
}

int bdr__db_corrupt(struct bdr_db *db, const char *what)
{
	return bdr_diag_set(&db->err, -BDR_ECORRUPT, "db: %s: implausible value", what);
}

int bdr__db_st_get(struct bdr_db *db, enum st id, sqlite3_stmt **out)
{
	if (!db->st[id]) {
		int rc = sqlite3_prepare_v3(db->h, st_def(id)->sql, -1, SQLITE_PREPARE_PERSISTENT,
					    &db->st[id], NULL);
		if (rc != SQLITE_OK)
			return bdr__db_sql_err(db, rc, bdr__db_st_name(id));
	}
	*out = db->st[id];
	return 0;
}

void bdr__db_st_done(struct bdr_db *db, enum st id)
{
	sqlite3_reset(db->st[id]);
	sqlite3_clear_bindings(db->st[id]);
}

int bdr__db_st_step(struct bdr_db *db, enum st id)
{
	int rc = sqlite3_step(db->st[id]), err;

	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	err = bdr__db_sql_err(db, rc, bdr__db_st_name(id));
	bdr__db_st_done(db, id);
	return err;
}

int bdr__db_bind_fail(struct bdr_db *db, enum st id)
{
	int err = bdr__db_sql_err(db, sqlite3_errcode(db->h), bdr__db_st_name(id));

	bdr__db_st_done(db, id);
	return err;
}

/* Runs a statement that returns no rows, with up to two integer
 * parameters (as many as it has). */
static int st_run(struct bdr_db *db, enum st id, int64_t a, int64_t b)
{
	sqlite3_stmt *s = NULL;
	int err = bdr__db_st_get(db, id, &s), n;

	if (err < 0)
		return err;
	n = sqlite3_bind_parameter_count(s);
	if ((n >= 1 && sqlite3_bind_int64(s, 1, a)) || (n >= 2 && sqlite3_bind_int64(s, 2, b)))
		return bdr__db_bind_fail(db, id);
	err = bdr__db_st_step(db, id);
	if (err > 0)
		err = 0;
	bdr__db_st_done(db, id);
	return err;
}

static int db_exec(struct bdr_db *db, const char *sql)
{
	int rc = sqlite3_exec(db->h, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : bdr__db_sql_err(db, rc, sql);
}

/* One integer from a one-off query (pragmas, probes). */
static int query_int(struct bdr_db *db, const char *sql, int64_t *out)
{
	sqlite3_stmt *s = NULL;
	int rc = sqlite3_prepare_v2(db->h, sql, -1, &s, NULL), err = 0;

	if (rc != SQLITE_OK)
		return bdr__db_sql_err(db, rc, sql);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(s, 0);
	else /* a pragma or count(*) always has a row */
		err = rc == SQLITE_DONE ? bdr__db_corrupt(db, sql) : bdr__db_sql_err(db, rc, sql);
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
		return bdr__db_sql_err(db, rc, "journal_mode");
	rc = sqlite3_step(s);
	mode = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(s, 0) : NULL;
	/* An in-memory database (tests) has no WAL and needs none. */
	wal = mode && (!strcmp(mode, "wal") || !strcmp(mode, "memory"));
	err = rc == SQLITE_ROW ? 0 : bdr__db_sql_err(db, rc, "journal_mode");
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
		err = db->h ? bdr__db_sql_err(db, rc, path)
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
	int err = bdr__db_st_get(db, ST_PKG_GET, &s);

	if (err < 0)
		return err;
	if (sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC))
		return bdr__db_bind_fail(db, ST_PKG_GET);
	if ((err = bdr__db_st_step(db, ST_PKG_GET)) > 0)
		*id = sqlite3_column_int64(s, 0);
	bdr__db_st_done(db, ST_PKG_GET);
	if (err != 0)
		return err < 0 ? err : 0;
	if (!create)
		return -BDR_ENOTFOUND;
	if ((err = bdr__db_st_get(db, ST_PKG_ADD, &s)) < 0)
		return err;
	if (sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC))
		return bdr__db_bind_fail(db, ST_PKG_ADD);
	err = bdr__db_st_step(db, ST_PKG_ADD);
	bdr__db_st_done(db, ST_PKG_ADD);
	*id = sqlite3_last_insert_rowid(db->h);
	return err;
}

/* 0 and *id for a new version row, 1 if it was already there. */
static int version_insert(struct bdr_db *db, int64_t pkg, const struct bdr_manifest *m, int64_t *id)
{
	sqlite3_stmt *s = NULL;
	int err = bdr__db_st_get(db, ST_VER_ADD, &s);

	if (err < 0)
		return err;
	if (sqlite3_bind_int64(s, 1, pkg) || sqlite3_bind_int64(s, 2, (int64_t)m->version) ||
	    sqlite3_bind_text(s, 3, m->site, -1, SQLITE_STATIC) ||
	    sqlite3_bind_int64(s, 4, m->created_ns) ||
	    sqlite3_bind_blob(s, 5, m->signer, sizeof(m->signer), SQLITE_STATIC))
		return bdr__db_bind_fail(db, ST_VER_ADD);
	err = bdr__db_st_step(db, ST_VER_ADD);
	bdr__db_st_done(db, ST_VER_ADD);
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
	int err = bdr__db_st_get(db, ST_VER_GET, &s);

	if (err < 0)
		return err;
	if (sqlite3_bind_int64(s, 1, pkg) || sqlite3_bind_int64(s, 2, (int64_t)version))
		return bdr__db_bind_fail(db, ST_VER_GET);
	if ((err = bdr__db_st_step(db, ST_VER_GET)) > 0)
		*id = sqlite3_column_int64(s, 0);
	bdr__db_st_done(db, ST_VER_GET);
	return err > 0 ? 0 : err < 0 ? err : -BDR_ENOTFOUND;
}

/* The blob with hash, or -BDR_ENOTFOUND. Equal hashes are equal content,
 * so a different size means the manifest is wrong. */
static int blob_find(struct bdr_db *db, const struct bdr_entry *e, int64_t *id)
{
	sqlite3_stmt *s = NULL;
	uint64_t size = 0;
	int err = bdr__db_st_get(db, ST_BLOB_GET, &s);

	if (err < 0)
		return err;
	if (sqlite3_bind_blob(s, 1, e->hash, BDR_FILE_HASH_LEN, SQLITE_STATIC))
		return bdr__db_bind_fail(db, ST_BLOB_GET);
	if ((err = bdr__db_st_step(db, ST_BLOB_GET)) > 0) {
		*id = sqlite3_column_int64(s, 0);
		size = (uint64_t)sqlite3_column_int64(s, 1);
	}
	bdr__db_st_done(db, ST_BLOB_GET);
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
	int err = bdr__db_st_get(db, ST_CHUNK_ADD, &s);

	if (err < 0)
		return err;
	for (uint32_t i = 0; err == 0 && i < e->nchunks; i++) {
		const struct bdr_chunk_ref *c = &e->chunks[i];

		if (sqlite3_bind_blob(s, 1, c->id.b, BDR_CHUNK_ID_LEN, SQLITE_STATIC) ||
		    sqlite3_bind_int64(s, 2, blob) || sqlite3_bind_int64(s, 3, (int64_t)off) ||
		    sqlite3_bind_int64(s, 4, c->len))
			return bdr__db_bind_fail(db, ST_CHUNK_ADD);
		err = bdr__db_st_step(db, ST_CHUNK_ADD);
		sqlite3_reset(s);
		off += c->len;
	}
	bdr__db_st_done(db, ST_CHUNK_ADD);
	if (err == 0 && off != e->size)
		return bdr_diag_set(&db->err, -BDR_EFORMAT,
				    "db: '%s': chunks add up to %llu bytes, not %llu", e->path,
				    (unsigned long long)off, (unsigned long long)e->size);
	return err;
}

static int blob_insert(struct bdr_db *db, const struct bdr_entry *e, int64_t *id)
{
	sqlite3_stmt *s = NULL;
	int err = bdr__db_st_get(db, ST_BLOB_ADD, &s);

	if (err < 0)
		return err;
	if (e->size > INT64_MAX || (e->nchunks > 0 && !e->chunks))
		return bdr_diag_set(&db->err, -BDR_EFORMAT, "db: '%s': bad size or chunk list",
				    e->path);
	if (sqlite3_bind_blob(s, 1, e->hash, BDR_FILE_HASH_LEN, SQLITE_STATIC) ||
	    sqlite3_bind_int64(s, 2, (int64_t)e->size))
		return bdr__db_bind_fail(db, ST_BLOB_ADD);
	err = bdr__db_st_step(db, ST_BLOB_ADD);
	bdr__db_st_done(db, ST_BLOB_ADD);
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
	if (err < 0 || (err = bdr__db_st_get(db, ST_FILE_ADD, &s)) < 0)
		return err;
	if (sqlite3_bind_int64(s, 1, ver) || sqlite3_bind_text(s, 2, e->path, -1, SQLITE_STATIC) ||
	    sqlite3_bind_int64(s, 3, blob) || sqlite3_bind_int64(s, 4, e->mode) ||
	    sqlite3_bind_int64(s, 5, e->mtime_ns))
		return bdr__db_bind_fail(db, ST_FILE_ADD);
	err = bdr__db_st_step(db, ST_FILE_ADD);
	bdr__db_st_done(db, ST_FILE_ADD);
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
	if (err == 0 && db->schema >= 4) /* a test's older file has no origins */
		err = bdr__db_origin_note(db, m);
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

int bdr__db_col_text(struct bdr_db *db, sqlite3_stmt *s, int col, char *dst, size_t cap,
		    const char *what)
{
	const unsigned char *t = sqlite3_column_text(s, col);
	size_t n = (size_t)sqlite3_column_bytes(s, col);

	if (!t)
		return sqlite3_errcode(db->h) == SQLITE_NOMEM ? -ENOMEM : bdr__db_corrupt(db, what);
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

	if ((err = bdr__db_col_text(db, s, 0, loc->package, sizeof(loc->package), "package name")) < 0 ||
	    (err = bdr__db_col_text(db, s, 2, loc->path, sizeof(loc->path), "path")) < 0)
		return err;
	if (version < 1 || off < 0 || mode < 0 || mode > 07777)
		return bdr__db_corrupt(db, "location");
	loc->version = (uint64_t)version;
	loc->offset = (uint64_t)off;
	loc->mode = (uint32_t)mode;
	loc->mtime_ns = sqlite3_column_int64(s, 5);
	return 0;
}

/* Steps a location query once: 0 and *loc (if wanted), or -BDR_ENOTFOUND. */
static int loc_query(struct bdr_db *db, enum st id, struct bdr_db_loc *loc)
{
	int err = bdr__db_st_step(db, id);

	if (err > 0)
		err = loc ? loc_fill(db, db->st[id], loc) : 0;
	else if (err == 0)
		err = -BDR_ENOTFOUND;
	bdr__db_st_done(db, id);
	return err;
}

int bdr_db_chunk_find(struct bdr_db *db, const struct bdr_chunk_id *id, uint32_t len,
		      struct bdr_db_loc *loc)
{
	enum st q = loc ? ST_CHUNK_FIND : ST_CHUNK_HAS;
	sqlite3_stmt *s = NULL;
	int err = bdr__db_st_get(db, q, &s);

	if (err < 0)
		return err;
	if (sqlite3_bind_blob(s, 1, id->b, BDR_CHUNK_ID_LEN, SQLITE_STATIC) ||
	    sqlite3_bind_int64(s, 2, len))
		return bdr__db_bind_fail(db, q);
	return loc_query(db, q, loc);
}

int bdr_db_file_find(struct bdr_db *db, const uint8_t hash[BDR_FILE_HASH_LEN], uint32_t mode,
		     int64_t mtime_ns, struct bdr_db_loc *loc)
{
	sqlite3_stmt *s = NULL;
	int err = bdr__db_st_get(db, ST_FILE_FIND, &s);

	if (err < 0)
		return err;
	if (sqlite3_bind_blob(s, 1, hash, BDR_FILE_HASH_LEN, SQLITE_STATIC) ||
	    sqlite3_bind_int64(s, 2, mode) || sqlite3_bind_int64(s, 3, mtime_ns))
		return bdr__db_bind_fail(db, ST_FILE_FIND);
	return loc_query(db, ST_FILE_FIND, loc);
}

/* ---- listings and counts ---- */

int bdr_db_versions(struct bdr_db *db, const char *package, uint64_t **out, size_t *n)
{
	sqlite3_stmt *s = NULL;
	uint64_t *v = NULL;
	size_t cap = 0;
	int err = bdr__db_st_get(db, ST_VERSIONS, &s);

	*out = NULL;
	*n = 0;
	if (err < 0)
		return err;
	if (sqlite3_bind_text(s, 1, package, -1, SQLITE_STATIC))
		return bdr__db_bind_fail(db, ST_VERSIONS);
	while ((err = bdr__db_st_step(db, ST_VERSIONS)) > 0) {
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
	bdr__db_st_done(db, ST_VERSIONS);
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
	int err = bdr__db_st_get(db, ST_PACKAGES, &s);

	*names = NULL;
	*n = 0;
	if (err < 0)
		return err;
	while ((err = bdr__db_st_step(db, ST_PACKAGES)) > 0) {
		char name[BDR_MAX_PACKAGE_NAME + 1];

		if (len == cap) {
			char **nv = realloc(v, (cap = cap ? 2 * cap : 16) * sizeof(*v));
			if (!nv) {
				err = -ENOMEM;
				break;
			}
			v = nv;
		}
		if ((err = bdr__db_col_text(db, s, 0, name, sizeof(name), "package name")) < 0)
			break;
		if (!(v[len] = strdup(name))) {
			err = -ENOMEM;
			break;
		}
		len++;
	}
	bdr__db_st_done(db, ST_PACKAGES);
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
	int err = bdr__db_st_get(db, ST_STATS, &s);

	if (err < 0)
		return err;
	if ((err = bdr__db_st_step(db, ST_STATS)) > 0) {
		st->packages = (uint64_t)sqlite3_column_int64(s, 0);
		st->versions = (uint64_t)sqlite3_column_int64(s, 1);
		st->files = (uint64_t)sqlite3_column_int64(s, 2);
		st->blobs = (uint64_t)sqlite3_column_int64(s, 3);
		st->chunks = (uint64_t)sqlite3_column_int64(s, 4);
	}
	bdr__db_st_done(db, ST_STATS);
	return err > 0 ? 0 : err < 0 ? err : bdr__db_corrupt(db, "stats");
}

/* ---- import quick-check cache ---- */

int bdr_db_qc_get(struct bdr_db *db, const char *package, const char *path, struct bdr_db_qc *qc)
{
	sqlite3_stmt *s = NULL;
	int err = bdr__db_st_get(db, ST_QC_GET, &s);

	if (err < 0)
		return err;
	if (sqlite3_bind_text(s, 1, package, -1, SQLITE_STATIC) ||
	    sqlite3_bind_text(s, 2, path, -1, SQLITE_STATIC))
		return bdr__db_bind_fail(db, ST_QC_GET);
	if ((err = bdr__db_st_step(db, ST_QC_GET)) > 0) {
		qc->size = (uint64_t)sqlite3_column_int64(s, 0);
		qc->mtime_ns = sqlite3_column_int64(s, 1);
		qc->ctime_ns = sqlite3_column_int64(s, 2);
		qc->ino = (uint64_t)sqlite3_column_int64(s, 3);
		qc->dev = (uint64_t)sqlite3_column_int64(s, 4);
		qc->version = (uint64_t)sqlite3_column_int64(s, 5);
	}
	bdr__db_st_done(db, ST_QC_GET);
	return err > 0 ? 0 : err < 0 ? err : -BDR_ENOTFOUND;
}

/* Unsigned fields are stored as their 64-bit pattern: they are only ever
 * compared for equality. */
int bdr_db_qc_put(struct bdr_db *db, const char *package, const char *path, const struct bdr_db_qc *qc)
{
	sqlite3_stmt *s = NULL;
	int err = bdr__db_st_get(db, ST_QC_PUT, &s);

	if (err < 0)
		return err;
	if (sqlite3_bind_text(s, 1, package, -1, SQLITE_STATIC) ||
	    sqlite3_bind_text(s, 2, path, -1, SQLITE_STATIC) ||
	    sqlite3_bind_int64(s, 3, (int64_t)qc->size) || sqlite3_bind_int64(s, 4, qc->mtime_ns) ||
	    sqlite3_bind_int64(s, 5, qc->ctime_ns) || sqlite3_bind_int64(s, 6, (int64_t)qc->ino) ||
	    sqlite3_bind_int64(s, 7, (int64_t)qc->dev) ||
	    sqlite3_bind_int64(s, 8, (int64_t)qc->version))
		return bdr__db_bind_fail(db, ST_QC_PUT);
	err = bdr__db_st_step(db, ST_QC_PUT);
	bdr__db_st_done(db, ST_QC_PUT);
	return err;
}

int bdr_db_qc_prune(struct bdr_db *db, const char *package, uint64_t version)
{
	sqlite3_stmt *s = NULL;
	int err = bdr__db_st_get(db, ST_QC_PRUNE, &s);

	if (err < 0)
		return err;
	if (sqlite3_bind_text(s, 1, package, -1, SQLITE_STATIC) ||
	    sqlite3_bind_int64(s, 2, (int64_t)version))
		return bdr__db_bind_fail(db, ST_QC_PRUNE);
	err = bdr__db_st_step(db, ST_QC_PRUNE);
	bdr__db_st_done(db, ST_QC_PRUNE);
	return err;
}

