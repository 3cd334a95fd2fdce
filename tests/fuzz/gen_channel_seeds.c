/* Writes the channel fuzzer's seed corpus into the directory argv[1]: the
 * HELLO of an initiator "alpha" with the fixed key of fuzz_common.h (which
 * the fuzzed responder pins), whole and cut into small feeds, and followed
 * by a header and frames, so the fuzzer starts past the HELLO checks. Run
 * at build time (tests/fuzz). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bdr/channel.h"
#include "bdr/error.h"
#include "bdr/wire.h"
#include "fuzz_common.h"

static void die(const char *what, int err)
{
	fprintf(stderr, "gen_channel_seeds: %s: %s\n", what, bdr_strerror(err));
	exit(1);
}

static int no_peer(void *arg, const char *site, uint8_t pk[BDR_PK_LEN])
{
	(void)arg, (void)site, (void)pk;
	return -BDR_EKEY;
}

/* chunk (the fuzzer's first byte), then n bytes of p, then tail. */
static void seed(const char *dir, const char *name, uint8_t chunk, const uint8_t *p, size_t n,
		 const uint8_t *tail, size_t tail_len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(&chunk, 1, 1, f) != 1 || fwrite(p, 1, n, f) != n ||
	    (tail_len && fwrite(tail, 1, tail_len, f) != tail_len) || fclose(f) != 0)
		die(path, -EIO);
}

int main(int argc, char **argv)
{
	struct bdr_key key;
	struct bdr_channel *c;
	struct bdr_channel_opts o = { .initiator = true, .site = "alpha", .key = &key,
				      .caps = BDR_CAPS_ALL, .peer_key = no_peer };
	uint8_t *hello, tail[24 + 4 + 40];
	size_t len;
	int err;

	if (argc != 2)
		die("usage: gen_channel_seeds DIR", -EINVAL);
	if (mkdir(argv[1], 0755) < 0 && errno != EEXIST)
		die(argv[1], -errno);
	if (sodium_init() < 0)
		die("sodium_init", -EIO);
	fuzz_fixed_key(&key);
	if ((err = bdr_channel_new(&c, &o)))
		die("bdr_channel_new", err);
	bdr_channel_take_out(c, &hello, &len);
	memset(tail, 0x41, sizeof(tail));
	memcpy(tail + 24, "\x28\x00\x00\x00", 4); /* a frame of 40 bytes */
	seed(argv[1], "hello", 0, hello, len, NULL, 0);
	seed(argv[1], "hello-bytewise", 1, hello, len, NULL, 0);
	seed(argv[1], "hello-frame", 0, hello, len, tail, sizeof(tail));
	seed(argv[1], "hello-frame-chunks", 7, hello, len, tail, sizeof(tail));
	free(hello);
	bdr_channel_free(c);
	return 0;
}
