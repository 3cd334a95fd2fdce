/* Chunk ids and file hashes: the identities peers exchange, so their exact
 * bytes are tested against known answers, not only against themselves. */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <xxhash.h>

#include "bdr/hash.h"
#include "testutil.h"

static void hex(const uint8_t *b, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
}

Test(hash, chunk_id_known_answer_empty)
{
	struct bdr_chunk_id id;
	char s[33];

	/* XXH3-128 of no bytes, from the xxHash reference: high64 then low64. */
	bdr_chunk_id(&id, NULL, 0);
	bdr_chunk_id_hex(&id, s);
	cr_assert_str_eq(s, "99aa06d3014798d86001c324468d497f");
}

Test(hash, chunk_id_is_canonical_xxh3_128)
{
	static uint8_t buf[100000];
	size_t lens[] = {1, 3, 16, 17, 128, 129, 240, 241, 1000, 4096, 65536, sizeof(buf)};

	tu_fill_random(buf, sizeof(buf), 11);
	for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
		struct bdr_chunk_id id;
		XXH128_hash_t h = XXH3_128bits(buf, lens[k]);
		uint8_t want[16];
		for (int i = 0; i < 8; i++) {
			want[i] = (uint8_t)(h.high64 >> (56 - 8 * i));
			want[8 + i] = (uint8_t)(h.low64 >> (56 - 8 * i));
		}
		bdr_chunk_id(&id, buf, lens[k]);
		cr_assert_arr_eq(id.b, want, 16, "length %zu", lens[k]);
	}
}

Test(hash, chunk_id_hex_and_cmp)
{
	struct bdr_chunk_id a, b;
	char s[33];

	for (int i = 0; i < 16; i++)
		a.b[i] = (uint8_t)(i * 17);
	bdr_chunk_id_hex(&a, s);
	cr_assert_str_eq(s, "00112233445566778899aabbccddeeff");
	b = a;
	cr_assert_eq(bdr_chunk_id_cmp(&a, &b), 0);
	b.b[14]++;
	cr_assert_lt(bdr_chunk_id_cmp(&a, &b), 0);
	cr_assert_gt(bdr_chunk_id_cmp(&b, &a), 0);
	/* memcmp order: the first byte decides over all later ones. */
	b = a;
	b.b[0] = 0x01, b.b[15] = 0x00;
	cr_assert_lt(bdr_chunk_id_cmp(&a, &b), 0);
}

Test(hash, streaming_chunk_id_equals_one_shot)
{
	enum { N = 300000 };
	uint8_t *buf = malloc(N);
	struct bdr_chunk_hasher *h = bdr_chunk_hasher_new();
	uint64_t x = 5;

	cr_assert_not_null(buf);
	cr_assert_not_null(h);
	tu_fill_random(buf, N, 12);
	for (int round = 0; round < 20; round++) {
		size_t len = round == 0 ? 0 : (size_t)(x % N), off = 0;
		struct bdr_chunk_id want, got;
		bdr_chunk_hasher_reset(h);
		while (off < len) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			size_t n = 1 + (size_t)(x % (round % 2 ? 7 : 70000));
			n = n < len - off ? n : len - off;
			bdr_chunk_hasher_update(h, buf + off, n);
			off += n;
		}
		bdr_chunk_hasher_final(h, &got);
		bdr_chunk_id(&want, buf, len);
		cr_assert_arr_eq(got.b, want.b, 16, "round %d, length %zu", round, len);
		x = x * 6364136223846793005ull + 1442695040888963407ull;
	}
	bdr_chunk_hasher_free(h);
	bdr_chunk_hasher_free(NULL);
	free(buf);
}

Test(hash, blake2b_known_answer_abc)
{
	struct bdr_filehash h;
	uint8_t out[BDR_FILE_HASH_LEN];
	char s[2 * BDR_FILE_HASH_LEN + 1];

	/* RFC 7693 test vector, truncated form: BLAKE2b-256("abc"). */
	bdr_filehash_init(&h);
	bdr_filehash_update(&h, "ab", 2);
	bdr_filehash_update(&h, "c", 1);
	bdr_filehash_final(&h, out);
	hex(out, sizeof(out), s);
	cr_assert_str_eq(s, "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319");
}

Test(hash, blake2b_streaming_equals_one_shot)
{
	enum { N = 1000003 };
	uint8_t *buf = malloc(N), want[32], got[32];
	struct bdr_filehash h;

	cr_assert_not_null(buf);
	tu_fill_random(buf, N, 13);
	crypto_generichash(want, sizeof(want), buf, N, NULL, 0);
	bdr_filehash_init(&h);
	for (size_t off = 0, n = 1; off < N; off += n, n = n * 3 + 1)
		bdr_filehash_update(&h, buf + off, n < N - off ? n : N - off);
	bdr_filehash_final(&h, got);
	cr_assert_arr_eq(got, want, sizeof(want));
	free(buf);
}
