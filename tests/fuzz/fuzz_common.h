/* Shared by the manifest fuzzer and its seed generator: the fixed key
 * that signs the seeds and the fuzzer's re-encodings. Not a secret. */
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

#endif
