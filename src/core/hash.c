/* Chunk ids (XXH3-128) and file hashes (BLAKE2b-256). Both are part of the
 * on-disk and wire identity of content: never change the algorithms or the
 * byte order of their outputs. */
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "bdr/hash.h"

static void id_from_hash(struct bdr_chunk_id *out, XXH128_hash_t h)
{
	XXH128_canonical_t c;

	/* Canonical form is big-endian: the same bytes on every host. */
	XXH128_canonicalFromHash(&c, h);
	memcpy(out->b, c.digest, sizeof(out->b));
}

void bdr_chunk_id(struct bdr_chunk_id *out, const void *buf, size_t len)
{
	id_from_hash(out, XXH3_128bits(buf, len));
}

int bdr_chunk_id_cmp(const struct bdr_chunk_id *a, const struct bdr_chunk_id *b)
{
	return memcmp(a->b, b->b, sizeof(a->b));
}

void bdr_chunk_id_hex(const struct bdr_chunk_id *id, char out[33])
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < sizeof(id->b); i++) {
		out[2 * i] = digits[id->b[i] >> 4];
		out[2 * i + 1] = digits[id->b[i] & 15];
	}
	out[2 * sizeof(id->b)] = '\0';
}

/* XXH3_state_t is opaque unless we build against xxhash's unstable layout
 * (XXH_STATIC_LINKING_ONLY), which would tie us to one libxxhash version;
 * let the library allocate it (it needs 64-byte alignment anyway). */
struct bdr_chunk_hasher {
	XXH3_state_t *st; /* owned: XXH3_freeState() */
};

struct bdr_chunk_hasher *bdr_chunk_hasher_new(void)
{
	struct bdr_chunk_hasher *h = malloc(sizeof(*h));

	if (!h)
		return NULL;
	h->st = XXH3_createState();
	if (!h->st) {
		free(h);
		return NULL;
	}
	bdr_chunk_hasher_reset(h);
	return h;
}

void bdr_chunk_hasher_free(struct bdr_chunk_hasher *h)
{
	if (!h)
		return;
	XXH3_freeState(h->st);
	free(h);
}

void bdr_chunk_hasher_reset(struct bdr_chunk_hasher *h)
{
	/* Cannot fail for a valid state; the default secret is built in. */
	(void)XXH3_128bits_reset(h->st);
}

void bdr_chunk_hasher_update(struct bdr_chunk_hasher *h, const void *buf, size_t len)
{
	/* Fails only for NULL with len > 0, a caller bug like memcpy's. */
	(void)XXH3_128bits_update(h->st, buf, len);
}

void bdr_chunk_hasher_final(struct bdr_chunk_hasher *h, struct bdr_chunk_id *out)
{
	id_from_hash(out, XXH3_128bits_digest(h->st));
}

/* crypto_generichash_* only fail for out-of-range lengths, which are
 * constants here; sodium_init() is not needed for correctness, only to pick
 * the fastest BLAKE2b implementation for this CPU. */
void bdr_filehash_init(struct bdr_filehash *h)
{
	(void)crypto_generichash_init(&h->st, NULL, 0, BDR_FILE_HASH_LEN);
}

void bdr_filehash_update(struct bdr_filehash *h, const void *buf, size_t len)
{
	(void)crypto_generichash_update(&h->st, buf, len);
}

void bdr_filehash_final(struct bdr_filehash *h, uint8_t out[BDR_FILE_HASH_LEN])
{
	(void)crypto_generichash_final(&h->st, out, BDR_FILE_HASH_LEN);
}
