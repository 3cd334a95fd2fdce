/* The manifest of one package version: every entry with its metadata, each
 * file's chunk list and BLAKE2b, signed by the creating site's Ed25519 key.
 * The canonical binary encoding is specified in proto/manifest.md.
 *
 * Entries are kept sorted by path (bytewise), which makes the encoding
 * canonical and duplicate detection linear. Every entry's parent directory
 * is itself a directory entry (or the package root), so no entry can be
 * reached through a symlink. */
#ifndef BDR_MANIFEST_H
#define BDR_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bdr/key.h"
#include "bdr/scan.h"

#define BDR_MANIFEST_FORMAT 1
/* Hard limits, enforced by both encoder and decoder. */
#define BDR_MAX_PATH 4096            /* bytes of one entry path */
#define BDR_MAX_NAME 255             /* bytes of one path component */
#define BDR_MAX_PACKAGE_NAME 128
#define BDR_MAX_SITE_NAME 64
#define BDR_MAX_ENTRIES (1u << 20)   /* entries in one manifest */
#define BDR_MAX_FILE_CHUNKS (1u << 22) /* chunks in one file */
#define BDR_MAX_MANIFEST_BYTES (1ull << 30)
/* The largest version number: the site database keeps versions as
 * SQLite's signed 64-bit integers. Imports, OFFERs, manifests, bundles
 * and staging refuse a larger one before anything is written. */
#define BDR_VERSION_MAX ((uint64_t)INT64_MAX)

enum bdr_entry_type {
	BDR_ENTRY_FILE = 1,
	BDR_ENTRY_DIR = 2,
	BDR_ENTRY_SYMLINK = 3,
};

struct bdr_entry {
	char *path;     /* owned; relative, '/'-separated, no trailing '/' */
	uint8_t type;   /* enum bdr_entry_type */
	uint32_t mode;  /* permission bits only (07777) */
	int64_t mtime_ns;
	uint64_t size;  /* files: bytes; symlinks: target length; dirs: 0 */
	char *target;   /* owned; symlinks only, else NULL */
	uint8_t hash[BDR_FILE_HASH_LEN]; /* files only, else zero */
	uint32_t nchunks;
	struct bdr_chunk_ref *chunks;    /* owned; files only */
};

struct bdr_manifest {
	char *package;      /* owned */
	uint64_t version;   /* >= 1 */
	char *site;         /* owned: the creating site */
	int64_t created_ns; /* creation time, ns since the epoch (UTC) */
	uint8_t signer[BDR_PK_LEN]; /* creating site's public key */
	uint32_t nentries;
	uint32_t cap;
	struct bdr_entry *entries; /* owned, sorted by path */
};

/* Validation shared by decoder, encoder and importer. Each returns 0 or a
 * -BDR_E* with a diag naming the offending name or entry.
 * check_name: 1..max bytes of [A-Za-z0-9._+-], not starting with '.'
 * (-BDR_ELIMIT if too long, else -BDR_EFORMAT); what names the field. */
int bdr_manifest_check_name(const char *what, const char *s, size_t max, struct bdr_diag *d);
/* The exact rules of proto/manifest.md: a package name is check_name with
 * BDR_MAX_PACKAGE_NAME; a site name is 1..BDR_MAX_SITE_NAME bytes of
 * [A-Za-z0-9._-] (no '+'), not starting with '.'. */
int bdr_manifest_check_package(const char *s, struct bdr_diag *d);
int bdr_manifest_check_site(const char *s, struct bdr_diag *d);
int bdr_manifest_check_path(const char *path, struct bdr_diag *d);
/* Lexically resolves target against the directory of path; -BDR_EPATH if it
 * is absolute or leaves the package root. */
int bdr_manifest_check_symlink(const char *path, const char *target, struct bdr_diag *d);

void bdr_manifest_init(struct bdr_manifest *m);
void bdr_manifest_free(struct bdr_manifest *m);
/* Appends a zeroed entry and returns it (NULL on ENOMEM). The manifest takes
 * ownership of whatever the caller stores in it. */
struct bdr_entry *bdr_manifest_add(struct bdr_manifest *m);
/* Sorts entries by path (importers add them in walk order). */
void bdr_manifest_sort(struct bdr_manifest *m);
/* Binary search by path; NULL if absent. Requires sorted entries. */
const struct bdr_entry *bdr_manifest_find(const struct bdr_manifest *m, const char *path);
/* Full structural validation (the same checks the decoder applies). */
int bdr_manifest_validate(const struct bdr_manifest *m, struct bdr_diag *d);

/* Encodes and signs with k (m->signer is set to k->pk). *out is malloc'd. */
int bdr_manifest_encode(struct bdr_manifest *m, const struct bdr_key *k,
			uint8_t **out, size_t *len, struct bdr_diag *d);
/* Decodes and verifies. If expect_signer is not NULL the embedded signer
 * must equal it (-BDR_EKEY otherwise). On failure *m is left empty. */
int bdr_manifest_decode(const uint8_t *buf, size_t len, const uint8_t *expect_signer,
			struct bdr_manifest *m, struct bdr_diag *d);
/* Reads the header alone (package, version, site, created_ns, signer; no
 * entries), with the checks of steps 1 and 2 of proto/manifest.md and
 * WITHOUT verifying the signature: claims, good for refusing a manifest
 * early (its signer could not be accepted), never for accepting one. On
 * failure *m is left empty. */
int bdr_manifest_peek(const uint8_t *buf, size_t len, struct bdr_manifest *m, struct bdr_diag *d);

#endif
