/* libFuzzer target for manifest deltas (proto/wire.md, "Manifest delta"),
 * against the fixed base of fuzz_common.h. Each input is used twice:
 *   - as a delta: bdr_mdelta_apply must not crash, read outside the base or
 *     the input, or allocate past its limit (ASan's allocation limits and
 *     the checks below); a rejection leaves no output, and an accepted
 *     result has the declared length, within the limit, and hashes to the
 *     declared BLAKE2b;
 *   - as a new manifest: bdr_mdelta_encode against the base, then apply,
 *     must give back exactly the input, in a delta within its bound.
 * Any failure aborts. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "bdr/error.h"
#include "bdr/mdelta.h"
#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Small enough that a COPY-amplified result stays quick, large enough
 * for every seed. */
#define MAX_OUT (256u * 1024)

static uint8_t base[FUZZ_MDELTA_BASE_LEN];

static void must(int cond)
{
	if (!cond)
		abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	fuzz_mdelta_base(base);
	return 0;
}

static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static void check_apply(const uint8_t *data, size_t size)
{
	struct bdr_diag d;
	uint8_t *out = NULL, h[BDR_MDELTA_HASH_LEN];
	size_t olen = 0;
	int rc = bdr_mdelta_apply(base, sizeof(base), data, size, MAX_OUT, &out, &olen, &d);

	if (rc) {
		must(rc < 0 && out == NULL && olen == 0);
		return;
	}
	must(size >= BDR_MDELTA_HEADER_LEN && olen == le64(data + 1) && olen >= 1 && olen <= MAX_OUT);
	crypto_generichash(h, sizeof(h), out, olen, NULL, 0);
	must(!memcmp(h, data + 9 + BDR_MDELTA_HASH_LEN, sizeof(h)));
	free(out);
}

static void check_round_trip(const uint8_t *cur, size_t clen)
{
	struct bdr_diag d;
	uint8_t *delta, *out;
	size_t dlen, olen;

	if (clen == 0) {
		must(bdr_mdelta_encode(base, sizeof(base), cur, clen, &delta, &dlen) == -EINVAL);
		return;
	}
	must(bdr_mdelta_encode(base, sizeof(base), cur, clen, &delta, &dlen) == 0);
	must(dlen <= BDR_MDELTA_HEADER_LEN + 5 + clen);
	must(bdr_mdelta_apply(base, sizeof(base), delta, dlen, clen, &out, &olen, &d) == 0);
	must(olen == clen && !memcmp(out, cur, clen));
	free(out);
	free(delta);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_apply(data, size);
	check_round_trip(data, size);
	return 0;
}
