/* Rebuild (receiving site): given a new signed manifest and the library,
 * list the chunks that are missing; given their bytes, assemble the version
 * in staging (held chunks copied with copy_file_range, identical files
 * hardlinked), verify every file's BLAKE2b, sync, and activate atomically.
 *
 * Received chunks are checked against their id before they are kept and
 * are stored in the stage, so a later attempt can resume. A file whose hash
 * does not match is never activated: bdr_rebuild_finish fails naming it,
 * and bdr_rebuild_bad_files() lists every such file so the caller can fetch
 * their bytes in full. */
#ifndef BDR_REBUILD_H
#define BDR_REBUILD_H

#include <stdint.h>

#include "bdr/manifest.h"

struct bdr_library;
struct bdr_rebuild;
struct bdr_diag;

/* Takes the encoded manifest; verifies it (against expect_signer if not
 * NULL), works out what is missing, and reopens the chunks an earlier,
 * interrupted attempt at this version received (DATA/partial/P.V.pack),
 * so only the rest is listed as missing. -EBUSY if another rebuild of
 * this version is running. */
int bdr_rebuild_begin(struct bdr_library *lib, const uint8_t *mbuf, size_t mlen,
		      const uint8_t *expect_signer, struct bdr_rebuild **out, struct bdr_diag *d);
const struct bdr_manifest *bdr_rebuild_manifest(const struct bdr_rebuild *rb);
/* Bytes of memory rb holds (its manifest, encoded and decoded, and the
 * set of chunks it needs), and the most that a rebuild of a manifest of
 * mlen encoded bytes can hold: what a daemon charges to the peer that
 * offered it, before it plans (bdr_rebuild_footprint_max) and after. */
uint64_t bdr_rebuild_footprint(const struct bdr_rebuild *rb);
uint64_t bdr_rebuild_footprint_max(uint64_t mlen);

/* Distinct chunks neither held by the library nor received yet, in manifest
 * order. *list is malloc'd. *bytes (may be NULL) sums their lengths. */
int bdr_rebuild_missing(struct bdr_rebuild *rb, struct bdr_chunk_ref **list, uint32_t *n,
			uint64_t *bytes);
/* One received chunk: -BDR_EHASH if the bytes do not hash to id. */
int bdr_rebuild_add_chunk(struct bdr_rebuild *rb, const struct bdr_chunk_id *id,
			  const uint8_t *data, uint32_t len, struct bdr_diag *d);
/* Feeds every missing chunk from another library on this machine that
 * holds them (a local replica, or a test's sender): what a push does, with
 * the wire left out. *bytes (may be NULL) receives the bytes fed. */
int bdr_rebuild_feed_from(struct bdr_rebuild *rb, struct bdr_library *src, uint64_t *bytes,
			  struct bdr_diag *d);
/* Assembles, verifies, activates. 0 when the version is active. */
int bdr_rebuild_finish(struct bdr_rebuild *rb, struct bdr_diag *d);
/* A file failed verification (a corrupt local copy, or two chunks with one
 * id): rebuild it from received bytes only. Its chunks become missing
 * again, for the sender to send whatever the receiver appears to hold. */
int bdr_rebuild_refetch(struct bdr_rebuild *rb, uint32_t entry);
/* Makes the chunks received so far durable (for a pause or shutdown). */
int bdr_rebuild_sync(struct bdr_rebuild *rb);
/* Forgets the chunks received (the transfer is cancelled or superseded). */
void bdr_rebuild_discard(struct bdr_rebuild *rb);
void bdr_rebuild_progress(const struct bdr_rebuild *rb, uint32_t *needed, uint32_t *received,
			  uint64_t *received_bytes);
/* After -BDR_EHASH from finish: the files that failed verification
 * (indices into the manifest's entries), valid until the next call. */
const uint32_t *bdr_rebuild_bad_files(const struct bdr_rebuild *rb, uint32_t *n);
/* Removes the stage; received chunks stay for the next attempt. */
void bdr_rebuild_free(struct bdr_rebuild *rb);

#endif
