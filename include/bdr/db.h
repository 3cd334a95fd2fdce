/* The site database: SQLite in WAL mode. The only module that speaks SQL.
 *
 * It holds two kinds of rows in one file:
 *
 * - The index, a cache of the manifests in the library: every row of it can
 *   be rebuilt from them (bdr_library does so when it is missing or
 *   damaged, emptying it with bdr_db_clear_index). Memory stays bounded
 *   however many chunks the site holds: the chunk index lives on disk with
 *   a fixed page cache. Content is indexed once per distinct file content
 *   ("blob", keyed by its BLAKE2b), not once per version: versions share
 *   unchanged files as hardlinks, and the index shares them the same way. A
 *   chunk id maps to (blob, offset); a blob maps to any held file with that
 *   content.
 * - The daemon's durable state (schema 2, below): the push queue, what each
 *   peer holds, what this site receives. Nothing can rebuild it, so nothing
 *   but the file's loss removes it.
 *
 * One file, not two, so that one transaction can record an imported version
 * and its queued transfers together (SQLite in WAL mode is not atomic
 * across attached files).
 *
 * Schema versions are in PRAGMA user_version and applied by an ordered list
 * of migrations. Every commit is synced (synchronous=FULL): a committed row
 * survives a crash of the process, the system or the power, at the cost of
 * one fdatasync per commit.
 *
 * A handle is used by one thread at a time. Errors: -BDR_EDB for SQLite
 * failures, -BDR_ECORRUPT for a damaged file or implausible row, -EBUSY,
 * -ENOSPC, -ENOMEM, -EIO where SQLite reports those causes;
 * bdr_db_errmsg() then says what failed. */
#ifndef BDR_DB_H
#define BDR_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bdr/hash.h"
#include "bdr/manifest.h"

struct bdr_db;
struct bdr_diag;

/* Opens (creating and migrating as needed). -BDR_ECORRUPT if the file is
 * not a usable database; -BDR_EVERSION if its schema is newer than ours.
 *
 * On -BDR_ECORRUPT the library removes the file and starts afresh: the
 * index comes back from the manifests, but the daemon's state (queued and
 * partly sent transfers, peer versions, received versions) is LOST. Whoever
 * removes the file must log that as an error naming the file, so the
 * operator knows to push again. */
int bdr_db_open(struct bdr_db **out, const char *path, struct bdr_diag *d);
/* For tests: as bdr_db_open, but migrates no further than schema (1 up to
 * the current one, else -EINVAL), so a test can build a file as an older
 * bdr left it (a released migration is never edited) and then check that
 * bdr_db_open carries it forward. Only the functions that schema has
 * tables for may be used on such a handle. */
int bdr_db_open_schema(struct bdr_db **out, const char *path, int schema, struct bdr_diag *d);
void bdr_db_close(struct bdr_db *db);
/* Removes the database file and its -wal and -shm companions (and a stale
 * -journal); absent files are fine. */
int bdr_db_remove_files(const char *path);
int bdr_db_schema_version(struct bdr_db *db);
/* synced false: this handle's commits are not fsynced one by one (WAL
 * synchronous=NORMAL): they survive a crash of the process but the last
 * ones may be lost with the power. For writes that can be redone (progress,
 * states a peer will confirm again) from a thread that must not wait for
 * the disk. Default: true. */
int bdr_db_set_synced(struct bdr_db *db, bool synced);
/* The last failure's message ("" if none); valid until the next call. */
const char *bdr_db_errmsg(const struct bdr_db *db);

/* Transactions nest: an inner begin is a savepoint, and every operation
 * below is atomic on its own (its own transaction, or a savepoint inside
 * the caller's). */
int bdr_db_begin(struct bdr_db *db);
/* A transaction that only reads (BEGIN DEFERRED; a savepoint if nested):
 * one snapshot and one lock for a run of lookups, where each on its own
 * would take and drop the file's locks (a few fcntl calls per lookup).
 * Writers on other handles go on meanwhile (WAL). Ends with commit. */
int bdr_db_read_begin(struct bdr_db *db);
int bdr_db_commit(struct bdr_db *db);
void bdr_db_rollback(struct bdr_db *db);
/* Ends the caller's own level: commits when err is 0, else (or when the
 * commit fails) rolls back. Returns err, or the commit's error. */
int bdr_db_end(struct bdr_db *db, int err);

/* Empties the index (packages, versions, files, blobs, chunks and the
 * import quick-check cache) in one transaction and keeps the daemon's
 * state; the library then indexes the manifests again. -BDR_ECORRUPT if
 * damaged pages stop it: nothing was cleared, and removing the file (and
 * with it the daemon's state, see bdr_db_open) is all that is left. */
int bdr_db_clear_index(struct bdr_db *db);

/* Records a held version: its files, their blobs and, for blobs not yet
 * indexed, every chunk; and its signer as the package's origin if the
 * package has none yet (see bdr_db_origin_get). Idempotent for the same
 * (package, version). */
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

/* ---- the daemon's durable state (schema 2) ----
 *
 * Not a cache: bdr_db_clear_index keeps it; only the loss of the file
 * loses it (see bdr_db_open). Strings are checked as the manifests check
 * them: package names by bdr_manifest_check_package, peers (site names)
 * by bdr_manifest_check_site, versions 1..INT64_MAX, byte counts at most
 * INT64_MAX (else -BDR_EFORMAT or -BDR_ELIMIT); an enum value out of range
 * is -EINVAL. An error message longer than BDR_DB_ERROR_MAX bytes is cut
 * at a character boundary. Rows read back are checked the same way; one
 * that does not fit is -BDR_ECORRUPT.
 *
 * Each call commits on its own (or is a savepoint inside the caller's
 * transaction), and each commit costs an fdatasync: record progress
 * (bytes_sent, bytes_received) every few seconds or MiB, not per chunk, or
 * group updates in one bdr_db_begin/commit. */

#define BDR_DB_ERROR_MAX 255

enum bdr_db_priority {
	BDR_PRIO_HIGH = 0,
	BDR_PRIO_MEDIUM = 1,
	BDR_PRIO_LOW = 2,
};

/* queued: waiting (next_attempt_ns says from when). sending: a sender has
 * it. paused: interrupted part way (a schedule window closed), resumable.
 * done: the peer activated it. failed: gave up until pushed again or
 * re-queued. cancelled: by the operator, or superseded by a newer version.
 * done and cancelled are final: only bdr_db_transfer_add revives a
 * cancelled row. */
enum bdr_db_xfer_state {
	BDR_XFER_QUEUED,
	BDR_XFER_SENDING,
	BDR_XFER_PAUSED,
	BDR_XFER_DONE,
	BDR_XFER_FAILED,
	BDR_XFER_CANCELLED,
};

/* One push of (package, version) to one peer. */
struct bdr_db_transfer {
	int64_t id; /* never reused, even after bdr_db_history_prune */
	char package[BDR_MAX_PACKAGE_NAME + 1];
	uint64_t version;
	char peer[BDR_MAX_SITE_NAME + 1]; /* the destination site */
	enum bdr_db_priority priority;
	enum bdr_db_xfer_state state;
	uint32_t attempts;      /* the daemon's count; bdr_db_transfer_add resets it */
	uint32_t address_index; /* which of the peer's addresses is in use */
	int64_t created_ns;     /* when it was (last) queued by bdr_db_transfer_add */
	int64_t updated_ns;
	int64_t next_attempt_ns; /* not picked before this */
	uint64_t bytes_total;    /* the version's size */
	uint64_t bytes_sent;     /* on the wire */
	uint64_t bytes_saved;    /* not sent thanks to chunks the peer held */
	char last_error[BDR_DB_ERROR_MAX + 1]; /* "" if none */
};

/* "queued", "sending", ...; "invalid" out of range. */
const char *bdr_db_xfer_state_name(enum bdr_db_xfer_state s);
/* -EINVAL if s names no state. */
int bdr_db_xfer_state_parse(const char *s, enum bdr_db_xfer_state *out);

/* Queues (package, version) for peer; *id (may be NULL) is its row.
 * Idempotent on (package, version, peer): a row that is queued, sending or
 * paused stays as it is but takes the new priority; a done one is left
 * alone (check its state with bdr_db_transfer_get); a failed or cancelled
 * one is queued afresh (attempts, progress and error cleared, created_ns =
 * now_ns).
 *
 * Superseding: only the newest version matters. Whenever a version is
 * queued, sending or paused for a peer, older versions of that package
 * queued or paused for it are cancelled (last_error "superseded by version
 * N"); one that is sending is left to finish, and is cancelled if it goes
 * back to queued or paused. *superseded (may be NULL) counts the other rows
 * this call cancelled; a version older than one already pending is itself
 * cancelled at once. */
int bdr_db_transfer_add(struct bdr_db *db, const char *package, uint64_t version,
			const char *peer, enum bdr_db_priority priority, int64_t now_ns,
			uint64_t bytes_total, int64_t *id, uint32_t *superseded);
/* 0 and *t, or -BDR_ENOTFOUND. */
int bdr_db_transfer_get(struct bdr_db *db, int64_t id, struct bdr_db_transfer *t);
/* Writes t's state, attempts, next_attempt_ns, bytes_total, bytes_sent,
 * bytes_saved, last_error, address_index and updated_ns to row t->id (the
 * other fields are the row's identity and are not written). A row that
 * ended meanwhile (done or cancelled) is not changed: -ESTALE, so a sender
 * holding a stale copy learns to stop; writing the state a row already has
 * is 0. -BDR_ENOTFOUND if there is no such row. */
int bdr_db_transfer_update(struct bdr_db *db, const struct bdr_db_transfer *t);
/* Sets state, last_error (NULL clears it) and updated_ns; as _update for
 * ended rows. */
int bdr_db_transfer_set_state(struct bdr_db *db, int64_t id, enum bdr_db_xfer_state state,
			      const char *error, int64_t now_ns);
/* The transfer to start next for peer: queued or paused, next_attempt_ns
 * <= now_ns, by priority, then created_ns, then id. -BDR_ENOTFOUND if
 * none may start now. */
int bdr_db_transfer_next(struct bdr_db *db, const char *peer, int64_t now_ns,
			 struct bdr_db_transfer *t);
/* Every transfer (of package, if not NULL) by package, version descending,
 * peer. *out is malloc'd (NULL if *n == 0). */
int bdr_db_transfer_list(struct bdr_db *db, const char *package, struct bdr_db_transfer **out,
			 size_t *n);
/* At daemon start: the previous process died while sending, so every
 * sending row is queued again (bytes_sent kept: the receiver kept its
 * verified chunks, so the push resumes), then superseding is applied.
 * *requeued (may be NULL) counts them, for the log. */
int bdr_db_transfers_reset_running(struct bdr_db *db, int64_t now_ns, uint32_t *requeued);

/* The highest version of package that peer is known to hold (recorded when
 * its DONE arrives, in the same transaction as the transfer's state, or
 * when a child reports holding it), so a sender can pick a delta base.
 * Set only raises it. */
int bdr_db_peer_version_set(struct bdr_db *db, const char *peer, const char *package,
			    uint64_t version);
/* 0 and *version, or -BDR_ENOTFOUND. */
int bdr_db_peer_version_get(struct bdr_db *db, const char *peer, const char *package,
			    uint64_t *version);

/* The receiving side: one row per (package, version) for status. */
enum bdr_db_recv_state {
	BDR_RECV_RECEIVING,
	BDR_RECV_ACTIVATED,
	BDR_RECV_FAILED,
};

struct bdr_db_received {
	char package[BDR_MAX_PACKAGE_NAME + 1];
	uint64_t version;
	char peer[BDR_MAX_SITE_NAME + 1]; /* who sends it */
	enum bdr_db_recv_state state;
	uint64_t bytes_received;
	int64_t started_ns; /* when it last started receiving */
	int64_t updated_ns;
	char last_error[BDR_DB_ERROR_MAX + 1]; /* "" if none */
};

/* "receiving", "activated", "failed"; "invalid" out of range. */
const char *bdr_db_recv_state_name(enum bdr_db_recv_state s);
/* Creates or overwrites the row; started_ns is now_ns for a new row or one
 * that starts receiving again, else kept. error may be NULL. */
int bdr_db_received_set(struct bdr_db *db, const char *package, uint64_t version,
			const char *peer, enum bdr_db_recv_state state, uint64_t bytes_received,
			const char *error, int64_t now_ns);
/* 0 and *r, or -BDR_ENOTFOUND. */
int bdr_db_received_get(struct bdr_db *db, const char *package, uint64_t version,
			struct bdr_db_received *r);
/* Every row (of package, if not NULL) by package, version descending. *out
 * is malloc'd (NULL if *n == 0). */
int bdr_db_received_list(struct bdr_db *db, const char *package, struct bdr_db_received **out,
			 size_t *n);

/* ---- removals (schema 3) ---- */

enum bdr_db_removal_state { BDR_RM_QUEUED, BDR_RM_DONE, BDR_RM_FAILED };

/* Queues the removal of package at peer (this site's own name: here), or
 * queues it again. */
int bdr_db_removal_add(struct bdr_db *db, const char *package, const char *peer, int64_t now_ns);
/* A package was removed at peer (NULL: here): its ended transfers there,
 * what the peer was known to hold, and (here) the versions received are
 * forgotten, so a later push of it travels again in full. */
int bdr_db_forget_package(struct bdr_db *db, const char *package, const char *peer);
int bdr_db_removal_set(struct bdr_db *db, const char *package, const char *peer,
		       enum bdr_db_removal_state state, const char *error, int64_t now_ns);
/* Marks done peer's queued removals created at or before before_ns (the
 * peer confirmed a round that carried them). */
int bdr_db_removal_done_before(struct bdr_db *db, const char *peer, int64_t before_ns,
			       int64_t now_ns);
/* The packages queued for removal at peer, oldest first, at most max. */
int bdr_db_removal_pending(struct bdr_db *db, const char *peer, size_t max,
			   char (**out)[BDR_MAX_PACKAGE_NAME + 1], size_t *n);

/* ---- the hierarchy's status roll-up (schema 3) ---- */

enum bdr_db_site_state {
	BDR_SITE_QUEUED,
	BDR_SITE_MOVING,
	BDR_SITE_PAUSED,
	BDR_SITE_ACTIVATED,
	BDR_SITE_FAILED,
};

/* Where a package stands at a site below this one, as a child reported. */
struct bdr_db_site_status {
	char site[BDR_MAX_SITE_NAME + 1];
	char package[BDR_MAX_PACKAGE_NAME + 1];
	uint64_t version; /* 0: none held yet */
	enum bdr_db_site_state state;
	uint64_t bytes_done, bytes_total, bytes_saved;
	char last_error[BDR_DB_ERROR_MAX + 1]; /* "" if none */
	int64_t updated_ns;  /* by the clock of the site that saw it */
	char via[BDR_MAX_SITE_NAME + 1]; /* the child that reported it */
	int64_t received_ns; /* when this site stored it */
};

/* "queued", "moving", "paused", "activated", "failed"; "invalid" else. */
const char *bdr_db_site_state_name(enum bdr_db_site_state s);
/* Stores s unless the row held for (site, package) is newer (by
 * updated_ns). Names, state and byte counts are checked. */
int bdr_db_site_status_put(struct bdr_db *db, const struct bdr_db_site_status *s);
/* Rows of package (NULL: all) stored after since_ns, by site then package. */
int bdr_db_site_status_list(struct bdr_db *db, const char *package, int64_t since_ns,
			    struct bdr_db_site_status **out, size_t *n);
/* How many rows came through via. */
int bdr_db_site_status_count(struct bdr_db *db, const char *via, uint64_t *n);

/* ---- package origins (schema 4) ----
 *
 * A package belongs to its origin: the site whose key signs its versions.
 * bdr_db_version_add records the signer of the first version of a package
 * this site adds (imported here, received, or from a bundle); the row
 * stays when the package is removed or the index rebuilt, so the package
 * cannot change hands by being removed first. Who may send which package
 * is the daemon's decision (src/daemon/trust.c); this is its memory. */

struct bdr_db_origin {
	char site[BDR_MAX_SITE_NAME + 1]; /* as its first version's manifest names it */
	uint8_t signer[BDR_PK_LEN];
	uint64_t version; /* the first version recorded */
};

/* The origin recorded for package, or -BDR_ENOTFOUND. */
int bdr_db_origin_get(struct bdr_db *db, const char *package, struct bdr_db_origin *o);

/* History grows with every push: drops transfers that are done or
 * cancelled and received rows that are activated or failed, last updated
 * before before_ns. Failed transfers stay until pushed again or cancelled.
 * *removed (may be NULL) counts the rows. */
int bdr_db_history_prune(struct bdr_db *db, int64_t before_ns, uint64_t *removed);

#endif
