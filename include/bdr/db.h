/* The site database: SQLite in WAL mode. The only module that speaks SQL.
 *
 * It is a cache of the manifests in the library: every row here can be
 * rebuilt from them (bdr_library does so when the file is missing or
 * damaged). Memory stays bounded however many chunks the site holds: the
 * chunk index lives on disk with a fixed page cache.
 *
 * Content is indexed once per distinct file content ("blob", keyed by its
 * BLAKE2b), not once per version: versions share unchanged files as
 * hardlinks, and the index shares them the same way. A chunk id maps to
 * (blob, offset); a blob maps to any held file with that content.
 *
 * Schema versions are in PRAGMA user_version and applied by an ordered list
 * of migrations; the daemon's queue and transfer tables arrive as later
 * migrations.
 *
 * A handle is used by one thread at a time. Errors: -BDR_EDB for SQLite
 * failures, -BDR_ECORRUPT for a damaged file or implausible row, -EBUSY,
 * -ENOSPC, -ENOMEM, -EIO where SQLite reports those causes;
 * bdr_db_errmsg() then says what failed. */
#ifndef BDR_DB_H
#define BDR_DB_H

#include <stdbool.h>
#include <stdint.h>

#include "bdr/hash.h"
#include "bdr/manifest.h"

struct bdr_db;
struct bdr_diag;

/* Opens (creating and migrating as needed). -BDR_ECORRUPT if the file is
 * not a usable database; -BDR_EVERSION if its schema is newer than ours. */
int bdr_db_open(struct bdr_db **out, const char *path, struct bdr_diag *d);
void bdr_db_close(struct bdr_db *db);
/* Removes the database file and its -wal and -shm companions (and a stale
 * -journal); absent files are fine. */
int bdr_db_remove_files(const char *path);
int bdr_db_schema_version(struct bdr_db *db);
/* The last failure's message ("" if none); valid until the next call. */
const char *bdr_db_errmsg(const struct bdr_db *db);

/* Transactions nest: an inner begin is a savepoint, and every operation
 * below is atomic on its own (its own transaction, or a savepoint inside
 * the caller's). */
int bdr_db_begin(struct bdr_db *db);
int bdr_db_commit(struct bdr_db *db);
void bdr_db_rollback(struct bdr_db *db);

/* Records a held version: its files, their blobs and, for blobs not yet
 * indexed, every chunk. Idempotent for the same (package, version). */
int bdr_db_version_add(struct bdr_db *db, const struct bdr_manifest *m);
/* Forgets a version; blobs no held file uses any more lose their chunks,
 * and a package without versions goes. -BDR_ENOTFOUND if not held. */
int bdr_db_version_remove(struct bdr_db *db, const char *package, uint64_t version);
/* Held versions of package, ascending; *out is malloc'd (may be NULL if
 * *n == 0). */
int bdr_db_versions(struct bdr_db *db, const char *package, uint64_t **out, size_t *n);
/* Every package name with at least one version; free with bdr_db_strv_free. */
int bdr_db_packages(struct bdr_db *db, char ***names, size_t *n);
void bdr_db_strv_free(char **v, size_t n);

/* Where held bytes can be read. */
struct bdr_db_loc {
	char package[BDR_MAX_PACKAGE_NAME + 1];
	uint64_t version;
	char path[BDR_MAX_PATH + 1];
	uint64_t offset;
	uint32_t mode;
	int64_t mtime_ns;
};

/* A held chunk with this id and length: 0 and *loc filled (loc may be
 * NULL), or -BDR_ENOTFOUND. */
int bdr_db_chunk_find(struct bdr_db *db, const struct bdr_chunk_id *id, uint32_t len,
		      struct bdr_db_loc *loc);
/* A held file with this content, preferring one whose mode and mtime also
 * match (so it can be hardlinked): 0 or -BDR_ENOTFOUND. */
int bdr_db_file_find(struct bdr_db *db, const uint8_t hash[BDR_FILE_HASH_LEN], uint32_t mode,
		     int64_t mtime_ns, struct bdr_db_loc *loc);

/* Counts for status and tests. */
struct bdr_db_stats {
	uint64_t packages, versions, files, blobs, chunks;
};
int bdr_db_stats(struct bdr_db *db, struct bdr_db_stats *st);

/* Import quick-check cache: what a source file looked like when it was
 * last imported into (package, version). */
struct bdr_db_qc {
	uint64_t size;
	int64_t mtime_ns;
	int64_t ctime_ns;
	uint64_t ino;
	uint64_t dev;
	uint64_t version;
};
/* 0 and *qc, or -BDR_ENOTFOUND if path has no row. */
int bdr_db_qc_get(struct bdr_db *db, const char *package, const char *path, struct bdr_db_qc *qc);
int bdr_db_qc_put(struct bdr_db *db, const char *package, const char *path, const struct bdr_db_qc *qc);
/* Drops the package's rows not recorded for version (files that went away). */
int bdr_db_qc_prune(struct bdr_db *db, const char *package, uint64_t version);

#endif
