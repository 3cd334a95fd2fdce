/* libFuzzer target for bundles (proto/bundle.md): the first pass of an
 * import, bdr_bundle_verify, over the input as a file (a memfd), with the
 * fixed key of fuzz_common.h pinned. It must not crash, read outside the
 * file, or allocate past what the file could describe; a rejection leaves
 * nothing behind, and an accepted bundle is consistent with its header.
 * Any failure aborts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bdr/bundle.h"
#include "bdr/error.h"
#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct bdr_key key;
static int fd = -1;

static void must(int cond)
{
	if (!cond)
		abort();
}

static int trust(void *arg, const struct bdr_bundle_header *h, const uint8_t **expect,
		 struct bdr_diag *d)
{
	(void)arg;
	if (memcmp(h->signer, key.pk, BDR_PK_LEN))
		return bdr_diag_set(d, -BDR_EKEY, "not pinned");
	*expect = NULL;
	return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	must(sodium_init() >= 0);
	fuzz_fixed_key(&key);
	fd = memfd_create("bundle", MFD_CLOEXEC);
	must(fd >= 0);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct bdr_bundle_read_req req = { .trust = trust, .max_manifest = 1u << 20 };
	struct bdr_bundle_verified v;
	struct bdr_diag d = { { 0 } };
	int rc;

	must(ftruncate(fd, 0) == 0);
	must(size == 0 || pwrite(fd, data, size, 0) == (ssize_t)size);
	rc = bdr_bundle_verify(fd, &req, &v, &d);
	if (rc) {
		must(rc < 0 && d.msg[0] && !v.mbuf && !v.refs && !v.in_bundle);
		return 0;
	}
	must(v.size == size && v.h.nchunks <= v.nrefs && v.h.manifest_len < size);
	must(v.h.base < v.h.version && !memcmp(v.h.signer, key.pk, BDR_PK_LEN));
	bdr_bundle_verified_free(&v);
	return 0;
}
