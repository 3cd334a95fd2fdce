/* libFuzzer target for the channel: a responder ("beta", the fixed key of
 * fuzz_common.h) that pins site "alpha" to that same key, fed the input.
 * The first byte chooses how the rest is cut into feed calls (0: all at
 * once, else chunks of 1..255 bytes), so the unit buffering is exercised
 * at every boundary.
 *
 * Properties checked, any failure aborts:
 *   - every feed makes progress unless a message waits;
 *   - an error is final: the next feed returns it again and consumes nothing;
 *   - the output stays bounded: a responder only ever writes its HELLO, its
 *     stream header and its AUTH frame, and to an identity it does not
 *     accept a refusal frame after them (an ERROR, proto/wire.md "Refusal").
 * Memory is bounded by libFuzzer's -malloc_limit_mb: a frame length over
 * the limit must fail before anything is allocated for it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bdr/channel.h"
#include "bdr/error.h"
#include "bdr/wire.h"
#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* HELLO (len field + the largest body), header, AUTH frame, and a refusal:
 * an ERROR (type, i32 code, text16) in a frame. */
#define REFUSAL_MAX (4 + 1 + 4 + 2 + BDR_WIRE_TEXT_MAX + BDR_WIRE_FRAME_OVERHEAD)
#define OUT_MAX (4 + BDR_WIRE_HELLO_MAX + 24 + 4 + 1 + BDR_SIG_LEN + BDR_WIRE_FRAME_OVERHEAD + \
		 REFUSAL_MAX)

static struct bdr_key key;

static void must(int cond)
{
	if (!cond)
		abort();
}

static int peer_key(void *arg, const char *site, uint8_t pk[BDR_PK_LEN])
{
	(void)arg;
	if (strcmp(site, "alpha") != 0)
		return -BDR_EKEY;
	memcpy(pk, key.pk, BDR_PK_LEN);
	return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	if (sodium_init() < 0)
		abort();
	fuzz_fixed_key(&key);
	return 0;
}

/* Takes every ready message; how many there were. */
static size_t drain(struct bdr_channel *c)
{
	const uint8_t *msg;
	size_t len, n = 0;
	int r;

	while ((r = bdr_channel_recv(c, &msg, &len)) == 1) {
		must(len >= 1 && len <= BDR_WIRE_MSG_MAX);
		n++;
	}
	must(r == 0);
	return n;
}

static void feed_all(struct bdr_channel *c, const uint8_t *p, size_t n, size_t chunk)
{
	struct bdr_diag d;
	size_t off = 0, used, again;

	while (off < n) {
		size_t len = n - off < chunk ? n - off : chunk;
		int err = bdr_channel_feed(c, p + off, len, &used, &d);

		must(used <= len);
		off += used;
		if (err) {
			must(err < 0);
			must(bdr_channel_feed(c, p, n, &again, NULL) == err && again == 0);
			return;
		}
		must(drain(c) > 0 || used > 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bdr_channel_opts o = {
		.initiator = false,
		.site = "beta",
		.key = &key,
		.caps = BDR_CAPS_ALL,
		.peer_key = peer_key,
	};
	struct bdr_channel *c;

	if (size < 1)
		return 0;
	must(bdr_channel_new(&c, &o) == 0);
	feed_all(c, data + 1, size - 1, data[0] ? data[0] : SIZE_MAX);
	must(bdr_channel_out_len(c) <= OUT_MAX);
	bdr_channel_free(c);
	return 0;
}
