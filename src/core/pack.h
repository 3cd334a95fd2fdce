/* The received chunks of an unfinished transfer, kept so that a transfer
 * cut at any moment resumes without resending a verified chunk:
 * DATA/partial/P.V.pack, an append-only file of self-checking records
 *
 *   u32 magic "BDRK" | u32 len | 16-byte chunk id | len bytes
 *
 * Opening scans the records, re-verifies every id and truncates a torn or
 * damaged tail. An exclusive flock keeps two rebuilds of one version apart.
 * Private to src/core. */
#ifndef BDR_PACK_H
#define BDR_PACK_H

#include <limits.h>
#include <stdint.h>

#include "bdr/hash.h"

#define BDR_PACK_MAGIC 0x4b524442u /* "BDRK" */
#define BDR_PACK_HDR 24u

struct bdr_pack {
	int fd;       /* owned; -1 when closed */
	uint64_t len; /* bytes of valid records */
	char path[PATH_MAX];
};

/* Called for each valid record found at open; data_off is where its bytes
 * start in the file. */
typedef int (*bdr_pack_cb)(void *arg, const struct bdr_chunk_id *id, uint32_t len, uint64_t data_off);

/* buf: scratch of BDR_CHUNK_MAX_LIMIT bytes. -EBUSY if another process or
 * rebuild holds the pack. */
int bdr_pack_open(struct bdr_pack *p, const char *path, uint8_t *buf, bdr_pack_cb cb, void *arg);
int bdr_pack_append(struct bdr_pack *p, const struct bdr_chunk_id *id, const uint8_t *data,
		    uint32_t len, uint64_t *data_off);
int bdr_pack_sync(struct bdr_pack *p);
void bdr_pack_close(struct bdr_pack *p);
/* Deletes the file (the transfer is finished or abandoned) and closes. */
void bdr_pack_remove(struct bdr_pack *p);

#endif
