/* Content identities.
 * - chunk id: XXH3-128 of the chunk's bytes, stored in XXH3's canonical
 *   (big-endian) byte order. Fast, not cryptographic: a file's BLAKE2b is
 *   what finally vouches for its content.
 * - file hash: BLAKE2b-256 (libsodium crypto_generichash) of the whole file,
 *   streamed. */
#ifndef BDR_HASH_H
#define BDR_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <sodium.h>

#define BDR_CHUNK_ID_LEN 16
#define BDR_FILE_HASH_LEN 32

struct bdr_chunk_id {
	uint8_t b[BDR_CHUNK_ID_LEN];
};

void bdr_chunk_id(struct bdr_chunk_id *out, const void *buf, size_t len);
int bdr_chunk_id_cmp(const struct bdr_chunk_id *a, const struct bdr_chunk_id *b);
/* 33-byte buffer: 32 hex digits and NUL. */
void bdr_chunk_id_hex(const struct bdr_chunk_id *id, char out[33]);

/* Incremental chunk id for a chunk that spans several buffers. */
struct bdr_chunk_hasher;
struct bdr_chunk_hasher *bdr_chunk_hasher_new(void);
void bdr_chunk_hasher_free(struct bdr_chunk_hasher *h);
void bdr_chunk_hasher_reset(struct bdr_chunk_hasher *h);
void bdr_chunk_hasher_update(struct bdr_chunk_hasher *h, const void *buf, size_t len);
void bdr_chunk_hasher_final(struct bdr_chunk_hasher *h, struct bdr_chunk_id *out);

struct bdr_filehash {
	crypto_generichash_state st;
};

void bdr_filehash_init(struct bdr_filehash *h);
void bdr_filehash_update(struct bdr_filehash *h, const void *buf, size_t len);
void bdr_filehash_final(struct bdr_filehash *h, uint8_t out[BDR_FILE_HASH_LEN]);

#endif
