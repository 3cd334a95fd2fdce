/* Shared by the fuzzers and their seed generators: the fixed key that
 * signs the manifest seeds and the fuzzer's re-encodings (not a secret),
 * and the fixed base the manifest-delta seeds are made against. */
#ifndef BDR_FUZZ_COMMON_H
#define BDR_FUZZ_COMMON_H

#include <string.h>

#include "bdr/key.h"

static inline void fuzz_fixed_key(struct bdr_key *k)
{
	uint8_t seed[crypto_sign_SEEDBYTES];

	memset(seed, 0x5a, sizeof(seed));
	crypto_sign_seed_keypair(k->pk, k->sk, seed);
}

/* The fixed base of fuzz_mdelta: manifest-like records (a str16 path, 48
 * bytes of fields, a few 20-byte chunk refs) from a fixed splitmix64. */
#define FUZZ_MDELTA_BASE_LEN 8192u

static inline uint64_t fuzz_splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static inline void fuzz_mdelta_base(uint8_t base[FUZZ_MDELTA_BASE_LEN])
{
	uint64_t x = 0x6d64656c7461ull, r;
	size_t i = 0;

	while (i < FUZZ_MDELTA_BASE_LEN) {
		uint8_t rec[2 + 13 + 48 + 20 * 7];
		size_t n = 2 + 13 + 48 + 20 * (fuzz_splitmix(&x) % 8);
		for (size_t k = 0; k < n; k += 8) {
			r = fuzz_splitmix(&x);
			memcpy(rec + k, &r, n - k < 8 ? n - k : 8);
		}
		memcpy(rec, "\x0d\x00dir/file-", 11);
		n = n < FUZZ_MDELTA_BASE_LEN - i ? n : FUZZ_MDELTA_BASE_LEN - i;
		memcpy(base + i, rec, n);
		i += n;
	}
}

#endif
