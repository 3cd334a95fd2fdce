/* Scanning one open file: read it once, in bounded buffers, cutting chunks,
 * computing every chunk id and the file's BLAKE2b, and optionally handing
 * each buffer to a sink (the importer writes its copy while it reads). */
#ifndef BDR_SCAN_H
#define BDR_SCAN_H

#include <stddef.h>
#include <stdint.h>

#include "bdr/chunker.h"
#include "bdr/hash.h"

struct bdr_chunk_ref {
	struct bdr_chunk_id id;
	uint32_t len;
};

struct bdr_scan_result {
	uint64_t size;
	uint8_t hash[BDR_FILE_HASH_LEN];
	uint32_t nchunks;
	struct bdr_chunk_ref *chunks; /* owned: free() */
};

/* Called with each buffer as it is read, in order. Return 0 or -errno. */
typedef int (*bdr_scan_sink)(void *arg, const uint8_t *buf, size_t len);

/* Reads fd from its current offset to EOF. max_chunks bounds the chunk
 * list (-BDR_ELIMIT beyond it). On failure nothing is allocated in *r. */
int bdr_scan_fd(int fd, const struct bdr_chunker_params *p, uint32_t max_chunks,
		bdr_scan_sink sink, void *sink_arg, struct bdr_scan_result *r);
/* The same scan of a file already in memory (buf may be NULL if len is 0):
 * the result equals bdr_scan_fd's on a file holding these bytes. */
int bdr_scan_buf(const void *buf, size_t len, const struct bdr_chunker_params *p,
		 uint32_t max_chunks, struct bdr_scan_result *r);
/* Frees r->chunks and zeroes *r; safe on a zeroed or failed result. */
void bdr_scan_result_free(struct bdr_scan_result *r);

#endif
