/* Pre-staged bundles (proto/bundle.md): one package version, or what a
 * site holding an older version lacks of it, in a self-contained file
 * signed by the creating site, for a site that no link reaches.
 *
 * The writer and the reader stream over a file descriptor: a bundle can
 * be gigabytes and is never held in memory; only the manifest is. Import
 * reads the file twice: a first pass checks every structural rule and the
 * site's signature over the BLAKE2b of the whole file while adding
 * nothing; the second feeds the chunks the library lacks to the same
 * rebuild a network transfer uses (src/core/rebuild.c), and the version
 * is activated only if that pass saw the very bytes the first verified.
 *
 * Every byte read is hostile: every count and length is checked against
 * its hard limit and against the file's size before anything is
 * allocated. Errors are -BDR_E* (or -errno) with a diag naming the field,
 * the chunk or the offset. */
#ifndef BDR_BUNDLE_H
#define BDR_BUNDLE_H

#include <stdbool.h>
#include <stdint.h>

#include "bdr/hash.h"
#include "bdr/key.h"
#include "bdr/manifest.h"

#define BDR_BUNDLE_FORMAT 1
#define BDR_BUNDLE_MAGIC "BDRBUNDL"
#define BDR_BUNDLE_MAGIC_LEN 8
/* What the site's key signs: this context, then the BLAKE2b-256 of every
 * byte before the signature (so a bundle signature can never be taken for
 * a manifest's or a handshake's). */
#define BDR_BUNDLE_SIG_CONTEXT "bdr bundle sig 1"
#define BDR_BUNDLE_SIG_CONTEXT_LEN 16
/* Header bytes with both names one byte long; chunk record bytes before
 * its data. */
#define BDR_BUNDLE_HEADER_MIN (8 + 4 + 4 + BDR_PK_LEN + 3 + 3 + 8 + 8 + 8 + 8 + 4 + 8)
#define BDR_BUNDLE_CHUNK_HDR (BDR_CHUNK_ID_LEN + 4 + 1 + 4)
/* Distinct chunks of one bundle: more than a manifest of
 * BDR_MAX_MANIFEST_BYTES can name (20 bytes each). */
#define BDR_BUNDLE_MAX_CHUNKS (1u << 26)

struct bdr_library;
struct bdr_diag;

struct bdr_bundle_header {
	uint8_t signer[BDR_PK_LEN]; /* the creating site's key */
	char site[BDR_MAX_SITE_NAME + 1];
	char package[BDR_MAX_PACKAGE_NAME + 1];
	uint64_t version;
	uint64_t base;        /* 0: the whole version; else only what a site
			       * holding this older version lacks */
	int64_t created_ns;
	uint64_t manifest_len;
	uint32_t nchunks;
	uint64_t raw_bytes;   /* sum of the chunks' raw lengths */
};

/* What a create or an import did. */
struct bdr_bundle_stats {
	uint32_t nchunks;       /* carried (create) or used (import) */
	uint64_t raw_bytes;     /* their raw bytes */
	uint64_t data_bytes;    /* their bytes as stored in the bundle */
	uint64_t bundle_bytes;  /* the whole file */
	uint64_t version_bytes; /* the version's file bytes */
	uint32_t files;         /* regular files in the version */
	bool held;              /* import: the library holds this version (or a
				 * later one) already; nothing was added */
};

/* ---- writing ---- */

struct bdr_bundle_create_req {
	const char *package;
	uint64_t version;          /* 0: the latest */
	uint64_t base;             /* 0: the whole version; else < version */
	const char *site;          /* this site's name */
	const struct bdr_key *key; /* signs the bundle */
	int64_t created_ns;        /* 0: now */
};

/* Writes the bundle to fd from its current offset. The caller holds the
 * library (its lock, in the daemon); req->version is set to the version
 * written. -BDR_ENOTFOUND names a version or base not held. */
int bdr_bundle_write(struct bdr_library *lib, struct bdr_bundle_create_req *req, int fd,
		     struct bdr_bundle_stats *st, struct bdr_diag *d);
/* bdr_bundle_write into path, which must not exist: written beside it under
 * a temporary name, synced, then linked into place, so no half bundle is
 * ever seen at path (-EEXIST if it appeared meanwhile). */
int bdr_bundle_create(struct bdr_library *lib, struct bdr_bundle_create_req *req,
		      const char *path, struct bdr_bundle_stats *st, struct bdr_diag *d);

/* The low-level writer, for tools and tests that assemble a bundle from
 * their own manifest and chunks. begin writes h (the caller's counts) and
 * the manifest; chunk writes one record (raw or zlib, whichever is
 * smaller; chunks must come in (id, length) order); end signs. Any error
 * is sticky and returned by every later call; end frees the writer. */
struct bdr_bundle_writer;
int bdr_bundle_writer_begin(struct bdr_bundle_writer **out, int fd,
			    const struct bdr_bundle_header *h, const uint8_t *mbuf);
int bdr_bundle_writer_chunk(struct bdr_bundle_writer *w, const struct bdr_chunk_id *id,
			    const uint8_t *raw, uint32_t len);
int bdr_bundle_writer_end(struct bdr_bundle_writer *w, const struct bdr_key *key,
			  struct bdr_bundle_stats *st);

/* ---- reading ---- */

/* Whether the bundle's signer may add versions here, asked once its
 * header is read and before anything else is believed: 0 with *expect the
 * key the manifest must be signed by (NULL: any origin), or -BDR_EKEY with
 * a diag saying why not. */
typedef int bdr_bundle_trust_fn(void *arg, const struct bdr_bundle_header *h,
				const uint8_t **expect, struct bdr_diag *d);

struct bdr_bundle_read_req {
	bdr_bundle_trust_fn *trust;
	void *arg;
	uint64_t max_manifest; /* 0: BDR_MAX_MANIFEST_BYTES */
};

/* The first pass's result. */
struct bdr_bundle_verified {
	struct bdr_bundle_header h;
	uint8_t *mbuf;              /* owned: the signed manifest */
	uint8_t expect[BDR_PK_LEN]; /* what the manifest was checked against */
	bool any_origin;            /* ... or no particular key */
	struct bdr_chunk_ref *refs; /* owned: the manifest's distinct chunks,
				     * in (id, length) order */
	uint8_t *in_bundle;         /* owned: per ref, 1 if the bundle has it */
	uint32_t nrefs;
	uint8_t digest[BDR_FILE_HASH_LEN]; /* BLAKE2b-256 the signature covers */
	uint64_t size;              /* the file's bytes */
};

/* Pass one over fd (a regular file, read with pread from offset 0):
 * structure, limits, trust, the manifest's signature and the bundle's.
 * On failure *v is left empty. */
int bdr_bundle_verify(int fd, const struct bdr_bundle_read_req *req,
		      struct bdr_bundle_verified *v, struct bdr_diag *d);
void bdr_bundle_verified_free(struct bdr_bundle_verified *v);

/* Both passes and the rebuild: adds the version to lib as a received one
 * would be (hardlinks and held chunks reused, every file's BLAKE2b
 * checked, activated atomically, recorded in the library's database).
 * *h (may be NULL) receives the header once verified. Nothing is added
 * unless it all succeeds. A version the library holds or has passed is
 * st->held with 0 (after the first pass). */
int bdr_bundle_import(struct bdr_library *lib, int fd, const struct bdr_bundle_read_req *req,
		      struct bdr_bundle_header *h, struct bdr_bundle_stats *st, struct bdr_diag *d);

#endif
