/* libFuzzer target for the manifest decoder.
 *
 * Mutated inputs almost never carry a valid signature, so besides the
 * public (verifying) decoder this drives the structural decoder directly
 * through bdr__manifest_decode_unsigned, and checks three properties of
 * whatever it accepts:
 *   - bdr_manifest_validate() agrees (decoder and validator share checks);
 *   - re-encoding gives back exactly the signed bytes (the encoding is
 *     canonical: no two byte strings decode to the same manifest);
 *   - signing it with a fixed key gives bytes the public decoder accepts.
 * Any failure aborts; on rejection the manifest must be left empty. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bdr/error.h"
#include "bdr/manifest.h"
#include "core/manifest_internal.h"
#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct bdr_key key;

static void must(int cond)
{
	if (!cond)
		abort();
}

static int is_empty(const struct bdr_manifest *m)
{
	struct bdr_manifest z;

	bdr_manifest_init(&z);
	return !memcmp(m, &z, sizeof(z));
}

static void check_accepted(struct bdr_manifest *m, const uint8_t *data, size_t size)
{
	struct bdr_manifest again;
	struct bdr_diag d;
	uint8_t *buf;
	size_t len;

	must(bdr_manifest_validate(m, &d) == 0);
	must(bdr__manifest_encode_body(m, &buf, &len) == 0);
	must(len == size - BDR_SIG_LEN && !memcmp(buf, data, len));
	free(buf);
	must(bdr_manifest_encode(m, &key, &buf, &len, &d) == 0);
	must(bdr_manifest_decode(buf, len, key.pk, &again, &d) == 0);
	must(again.nentries == m->nentries);
	bdr_manifest_free(&again);
	free(buf);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	if (sodium_init() < 0)
		abort();
	fuzz_fixed_key(&key);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bdr_manifest m;
	struct bdr_diag d;

	if (bdr_manifest_decode(data, size, NULL, &m, &d) == 0)
		bdr_manifest_free(&m);
	else
		must(is_empty(&m));

	if (bdr__manifest_decode_unsigned(data, size, &m, &d) != 0) {
		must(is_empty(&m));
		return 0;
	}
	check_accepted(&m, data, size);
	bdr_manifest_free(&m);
	return 0;
}
