/* Writes the manifest-delta fuzzer's seed corpus into the directory
 * argv[1]: deltas against the fixed base of fuzz_common.h made by the
 * encoder from edits of the base (identical, a substitution, an insertion,
 * a deletion, a moved block, unrelated bytes), so the fuzzer starts on
 * the accepting path with every op kind. As inputs they are also new
 * manifests for the fuzzer's encoder round trip. Run at build time. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bdr/error.h"
#include "bdr/mdelta.h"
#include "fuzz_common.h"

#define N FUZZ_MDELTA_BASE_LEN

static uint8_t base[N], cur[2 * N];

static void die(const char *what, int err) __attribute__((noreturn));
static void die(const char *what, int err)
{
	fprintf(stderr, "gen_mdelta_seeds: %s: %s\n", what, bdr_strerror(err));
	exit(1);
}

static void write_seed(const char *dir, const char *name, size_t clen)
{
	char path[4096];
	uint8_t *delta;
	size_t dlen;
	FILE *f;
	int err = bdr_mdelta_encode(base, N, cur, clen, &delta, &dlen);

	if (err)
		die(name, err);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (!(f = fopen(path, "wb")) || fwrite(delta, 1, dlen, f) != dlen || fclose(f))
		die(path, -errno);
	free(delta);
}

int main(int argc, char **argv)
{
	uint64_t x = 1;

	if (argc != 2) {
		fprintf(stderr, "usage: gen_mdelta_seeds DIR\n");
		return 2;
	}
	if (mkdir(argv[1], 0755) < 0 && errno != EEXIST)
		die(argv[1], -errno);
	fuzz_mdelta_base(base);
	memcpy(cur, base, N);
	write_seed(argv[1], "same", N);
	write_seed(argv[1], "prefix", N / 3);
	memset(cur + 3000, 0xee, 48); /* a file's new mtime, size and hash */
	write_seed(argv[1], "substitution", N);
	memmove(cur + 5020, cur + 5000, N - 5000); /* a new chunk ref */
	memset(cur + 5000, 0x11, 20);
	write_seed(argv[1], "insertion", N + 20);
	memcpy(cur, base, N);
	memmove(cur + 1000, cur + 1400, N - 1400);
	write_seed(argv[1], "deletion", N - 400);
	memcpy(cur, base + 4000, N - 4000);
	memcpy(cur + N - 4000, base, 4000);
	write_seed(argv[1], "moved", N);
	for (size_t i = 0; i < 600; i++)
		cur[i] = (uint8_t)fuzz_splitmix(&x);
	write_seed(argv[1], "unrelated", 600);
	return 0;
}
