/* What the two halves of the site database share (see db.c and
 * db_state.c); nothing outside them may include it. db.c holds the
 * rebuildable content index, the schema and the statement machinery;
 * db_state.c the daemon's durable state, which no rebuild can recover. */
#ifndef BDR_DB_INTERNAL_H
#define BDR_DB_INTERNAL_H

#include <stddef.h>

#include <sqlite3.h>

#include "bdr/db.h"

/* Prepared statements, cached per handle. Each half defines the SQL of its
 * own range. */
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
	/* The daemon's durable state (db_state.c) from here on. */
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
	ST_ORIGIN_ADD,
	ST_ORIGIN_GET,
	ST__COUNT,
	ST_STATE_FIRST = ST_XFER_FIND
};

struct bdr__db_stmt {
	const char *name; /* for messages */
	const char *sql;
};

/* The SQL of ST_STATE_FIRST .. ST__COUNT - 1 (db_state.c); the entries
 * below ST_STATE_FIRST are unused. */
extern const struct bdr__db_stmt bdr__db_state_stmts[ST__COUNT];

struct bdr_db {
	sqlite3 *h;                  /* owned */
	sqlite3_stmt *st[ST__COUNT]; /* owned; each prepared on first use */
	int depth;                   /* open levels: BEGIN, then SAVEPOINTs */
	int schema;                  /* user_version after migration */
	struct bdr_diag err;         /* the last failure, for bdr_db_errmsg */
};

const char *bdr__db_st_name(enum st id);
/* Maps an SQLite result to -errno/-BDR_E* and records the message. */
int bdr__db_sql_err(struct bdr_db *db, int rc, const char *what);
int bdr__db_corrupt(struct bdr_db *db, const char *what);
/* The statement, prepared on first use. */
int bdr__db_st_get(struct bdr_db *db, enum st id, sqlite3_stmt **out);
/* Releases the statement's read or write cursor so it holds no lock. */
void bdr__db_st_done(struct bdr_db *db, enum st id);
/* 1 for a row, 0 when done; on error the statement is reset. */
int bdr__db_st_step(struct bdr_db *db, enum st id);
/* A failed bind: SQLite records the cause on the connection. */
int bdr__db_bind_fail(struct bdr_db *db, enum st id);
/* A text column into dst of cap bytes, NUL-terminated. */
/* Records m's signer as its package's origin unless the package has one
 * (db_state.c; bdr_db_version_add calls it inside its transaction). */
int bdr__db_origin_note(struct bdr_db *db, const struct bdr_manifest *m);
int bdr__db_col_text(struct bdr_db *db, sqlite3_stmt *s, int col, char *dst, size_t cap,
		     const char *what);

#endif
