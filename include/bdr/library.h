/* The site library: a data directory holding, per package, numbered
 * versions as real directory trees plus their signed manifests.
 *
 *   DIR/bdr.db                       site database (a cache, see db.h)
 *   DIR/packages/P/V/manifest        signed manifest of version V
 *   DIR/packages/P/V/tree/           the version's files
 *   DIR/packages/P/current -> V      the active version (the highest held)
 *   DIR/staging/P.V.XXXXXX/          a version being built
 *   DIR/partial/P.V.pack             chunks received for version V, kept
 *                                    across interruptions until it is active
 *   DIR/quarantine/P.V.TIME.X/       a version whose manifest failed to
 *                                    verify when the library was opened
 *                                    (at most BDR_QUARANTINE_MAX_TREES
 *                                    trees and BDR_QUARANTINE_MAX_BYTES;
 *                                    the oldest go first)
 *   DIR/share                        the share group the held versions
 *                                    were given ("gid N"); absent: private
 *   DIR/trash/                       versions and packages being deleted:
 *                                    a deletion renames the directory here
 *                                    first, so a crash leaves no partial
 *                                    version; emptied at every open
 *
 * A version appears by one rename of a complete, verified, synced staging
 * directory, so a crash at any moment leaves the previous version intact
 * and active; leftover staging is removed when the library is opened.
 * Files identical between versions (content, mode, mtime) are hardlinks.
 * The last keep_versions versions of each package are kept. */
#ifndef BDR_LIBRARY_H
#define BDR_LIBRARY_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "bdr/chunker.h"
#include "bdr/manifest.h"

struct bdr_library;
struct bdr_db;
struct bdr_diag;

#define BDR_KEEP_VERSIONS_DEFAULT 5
/* The quarantine's bound: at each open, trees beyond the newest
 * BDR_QUARANTINE_MAX_TREES, or past BDR_QUARANTINE_MAX_BYTES counted from
 * the newest (which always stays), are removed, each with a notice. */
#define BDR_QUARANTINE_MAX_TREES 8u
#define BDR_QUARANTINE_MAX_BYTES (1ull << 30)

/* Called with one line for the log when a version is quarantined and when
 * the bound removes a quarantined tree. */
typedef void (*bdr_library_notice_fn)(void *arg, const char *msg);

struct bdr_library_opts {
	const char *dir;
	uint32_t keep_versions; /* 0: BDR_KEEP_VERSIONS_DEFAULT */
	struct bdr_chunker_params chunking; /* avg 0: defaults */
	bdr_library_notice_fn notice;       /* NULL: none */
	void *notice_arg;
	/* bdr.conf share_group: when share is set, group share_gid may read
	 * the versions: DIR/packages, each P and V and every tree belong to
	 * it (0750, files per bdr_library_tree_mode), DIR gets the search
	 * bit for others, and everything else in DIR becomes owner-only. A
	 * change of the setting is applied to every held version at open. */
	bool share;
	gid_t share_gid;
};

/* What the last open did for a change of share (set, changed, dropped):
 * changed is false when the setting was the one already applied. */
struct bdr_library_share_fix {
	bool changed;
	uint32_t versions; /* versions given the new group and modes */
	int err;           /* 0, or why some were not (retried at next open) */
};
bool bdr_library_share_changed(const struct bdr_library *lib, struct bdr_library_share_fix *f);

/* The mode a tree entry whose manifest says mode gets on disk: mode
 * itself when not sharing; when sharing, the owner's bits, the group's
 * the owner's minus write (0644 -> 0640, 0755 -> 0750, a directory 0750),
 * nothing for others and no setuid, setgid or sticky bit. */
uint32_t bdr_library_tree_mode(bool share, uint32_t mode);
/* 0 if this process may give its files group gid (chown(2): root, or a
 * member of it); else -EPERM, naming the group (name) and the fix. */
int bdr_library_share_check(gid_t gid, const char *name, struct bdr_diag *d);

/* What DIR/quarantine holds, as of the last open or reindex; bytes is
 * what deleting it would free (files other versions link to not counted). */
struct bdr_library_quarantine {
	uint32_t trees;
	uint64_t bytes;
};

int bdr_library_open(struct bdr_library **out, const struct bdr_library_opts *o, struct bdr_diag *d);
void bdr_library_close(struct bdr_library *lib);
struct bdr_db *bdr_library_db(struct bdr_library *lib);
const struct bdr_chunker_params *bdr_library_chunking(const struct bdr_library *lib);
const char *bdr_library_dir(const struct bdr_library *lib);
/* Versions quarantined since the library was opened (for the log). */
uint32_t bdr_library_quarantined(const struct bdr_library *lib);
void bdr_library_quarantine_info(const struct bdr_library *lib, struct bdr_library_quarantine *q);

/* Throws the database away and rebuilds it from the manifests on disk. */
int bdr_library_reindex(struct bdr_library *lib, struct bdr_diag *d);

/* Removes package: every version, its index rows and quick-check rows.
 * -BDR_ENOTFOUND if the library has no such package. */
int bdr_library_remove(struct bdr_library *lib, const char *package, struct bdr_diag *d);
/* The number an import gives package's next version: one above the
 * highest it holds or held before a removal. */
int bdr_library_next_version(struct bdr_library *lib, const char *package, uint64_t *next);
/* The active (highest) version of package, or -BDR_ENOTFOUND. */
int bdr_library_latest(struct bdr_library *lib, const char *package, uint64_t *version);
/* A version's manifest, decoded: -BDR_ENOTFOUND ("package 'p' has no
 * version N in the library") if there is no such version. */
int bdr_library_manifest_load(struct bdr_library *lib, const char *package, uint64_t version,
			      struct bdr_manifest *m, struct bdr_diag *d);
/* The signed manifest of a version as stored (*buf malloc'd), to send. */
int bdr_library_manifest_read(struct bdr_library *lib, const char *package, uint64_t version,
			      uint8_t **buf, size_t *len);
/* Path of a version's tree: DIR/packages/P/V/tree */
int bdr_library_tree_path(const struct bdr_library *lib, const char *package, uint64_t version,
			  char *buf, size_t size);

/* A version being built. */
struct bdr_stage {
	char dir[PATH_MAX];  /* DIR/staging/P.V.XXXXXX */
	char tree[PATH_MAX]; /* dir/tree */
	int tree_fd;         /* owned: O_DIRECTORY fd of tree */
	char package[BDR_MAX_PACKAGE_NAME + 1];
	uint64_t version;
	bool share;      /* the library's share and share_gid, for set_meta */
	gid_t share_gid;
};

int bdr_library_stage_begin(struct bdr_library *lib, const char *package, uint64_t version,
			    struct bdr_stage *s, struct bdr_diag *d);
/* Writes the manifest, syncs, renames the stage into place, records it in
 * the database, points current at it and applies retention. The stage is
 * consumed whatever the result. */
int bdr_library_stage_commit(struct bdr_library *lib, struct bdr_stage *s,
			     const struct bdr_manifest *m, const uint8_t *mbuf, size_t mlen,
			     struct bdr_diag *d);
void bdr_library_stage_abort(struct bdr_library *lib, struct bdr_stage *s);

/* Creates m's directories and symlinks inside the stage (files are the
 * caller's), then after the files exist, fixes directory modes and mtimes
 * bottom-up. Shared by import and rebuild. */
int bdr_library_stage_dirs(struct bdr_stage *s, const struct bdr_manifest *m, struct bdr_diag *d);
int bdr_library_stage_finish_meta(struct bdr_stage *s, const struct bdr_manifest *m, struct bdr_diag *d);

/* DIR/partial/P.V.pack: where a rebuild keeps its received chunks. */
int bdr_library_partial_path(const struct bdr_library *lib, const char *package, uint64_t version,
			     char *buf, size_t size);

/* Path of a held file found in the database. */
struct bdr_db_loc;
int bdr_library_loc_path(const struct bdr_library *lib, const struct bdr_db_loc *loc,
			 char *buf, size_t size);

/* Makes path in the stage a hardlink of a held file with this content,
 * mode and mtime, if the library has one: 0 linked, -BDR_ENOTFOUND not. */
int bdr_library_link_held(struct bdr_library *lib, struct bdr_stage *s, const struct bdr_entry *e);

#endif
