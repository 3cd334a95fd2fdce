/* Writes the wire fuzzer's seed corpus into the directory argv[1]: one
 * valid encoding of every message type, and of each CHUNK codec, dictref
 * kind and OFFER form (full manifest or delta), so the fuzzer starts on
 * the accepting path of every decoder. Run at build time (tests/fuzz). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bdr/error.h"
#include "bdr/wire.h"

static uint8_t data[512];
static uint8_t refs[3 * BDR_WIRE_REF_LEN];

static void die(const char *what, int err) __attribute__((noreturn));
static void die(const char *what, int err)
{
	fprintf(stderr, "gen_wire_seeds: %s: %s\n", what, bdr_strerror(err));
	exit(1);
}

static void write_seed(const char *dir, const char *name, const struct bdr_msg *m)
{
	struct bdr_diag d = { { 0 } };
	struct bdr_wbuf w;
	char path[4096];
	uint8_t *buf;
	size_t len;
	FILE *f;
	int err;

	bdr_wbuf_init(&w, BDR_WIRE_MSG_MAX);
	err = bdr_wire_encode(m, &w, &d);
	if (!err)
		err = bdr_wbuf_finish(&w, &buf, &len);
	if (err)
		die(d.msg[0] ? d.msg : name, err);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (!(f = fopen(path, "wb")) || fwrite(buf, 1, len, f) != len || fclose(f))
		die(path, -errno);
	free(buf);
}

static void chunks(const char *dir)
{
	struct bdr_msg m = { .type = BDR_MSG_CHUNK };

	m.chunk.xfer = 3;
	memset(m.chunk.id.b, 0xc1, sizeof(m.chunk.id.b));
	m.chunk.raw_len = m.chunk.len = 64;
	m.chunk.data = data;
	write_seed(dir, "chunk-raw", &m);
	m.chunk.raw_len = 4096;
	m.chunk.codec = BDR_CODEC_ZLIB;
	m.chunk.len = 40;
	write_seed(dir, "chunk-zlib", &m);
	m.chunk.codec = BDR_CODEC_ZLIB_DICT;
	m.chunk.dict.kind = BDR_DICTREF_CHUNK;
	memset(m.chunk.dict.id.b, 0xd1, sizeof(m.chunk.dict.id.b));
	write_seed(dir, "chunk-dict-chunk", &m);
	m.chunk.dict = (struct bdr_dictref){ .kind = BDR_DICTREF_FILE, .version = 7 };
	strcpy(m.chunk.dict.package, "libc6");
	strcpy(m.chunk.dict.path, "usr/lib/libc.so.6");
	m.chunk.dict.offset = 1u << 20;
	m.chunk.dict.len = BDR_CODEC_DICT_MAX;
	write_seed(dir, "chunk-dict-file", &m);
	m.chunk.codec = BDR_CODEC_ZSTD_DICT; /* the same dictref as codec 2 */
	write_seed(dir, "chunk-zstd-dict-file", &m);
	m.chunk.codec = BDR_CODEC_ZSTD;
	write_seed(dir, "chunk-zstd", &m);
}

static void needs(const char *dir)
{
	struct bdr_chunk_ref r[3] = { { .len = 8192 }, { .len = 1 }, { .len = 1u << 20 } };
	struct bdr_msg m = { .type = BDR_MSG_NEED };

	for (int i = 0; i < 3; i++)
		memset(r[i].id.b, 0x10 + i, sizeof(r[i].id.b));
	bdr_wire_need_pack(r, 3, refs);
	m.need.xfer = 3;
	m.need.count = 3;
	m.need.refs = refs;
	write_seed(dir, "need", &m);
	m.need.flags = BDR_NEED_LAST;
	m.need.count = 0;
	write_seed(dir, "need-last", &m);
}

static void texts(const char *dir)
{
	struct bdr_msg m = { .type = BDR_MSG_DONE };

	m.done.xfer = 3;
	m.done.status = BDR_DONE_FAILED;
	m.done.error = -BDR_EHASH;
	strcpy(m.done.message, "file 'bin/tool' failed its hash check");
	write_seed(dir, "done", &m);
	m = (struct bdr_msg){ .type = BDR_MSG_CANCEL, .cancel.xfer = 3 };
	strcpy(m.cancel.reason, "paused");
	write_seed(dir, "cancel", &m);
	m = (struct bdr_msg){ .type = BDR_MSG_ERROR, .error.code = -BDR_EFORMAT };
	strcpy(m.error.message, "CHUNK: codec 7 unknown");
	write_seed(dir, "error", &m);
}

int main(int argc, char **argv)
{
	struct bdr_msg m = { .type = BDR_MSG_AUTH };

	if (argc != 2) {
		fprintf(stderr, "usage: gen_wire_seeds DIR\n");
		return 2;
	}
	if (mkdir(argv[1], 0755) < 0 && errno != EEXIST)
		die(argv[1], -errno);
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 31 + 7);
	memset(m.auth.sig, 0x5a, sizeof(m.auth.sig));
	write_seed(argv[1], "auth", &m);
	m = (struct bdr_msg){ .type = BDR_MSG_OFFER, .offer.xfer = 3, .offer.version = 42 };
	strcpy(m.offer.package, "demo-pkg_1.0+x");
	m.offer.manifest_len = 4000;
	write_seed(argv[1], "offer", &m);
	m.offer.manifest_len = 600; /* a manifest delta against version 41 */
	m.offer.flags = BDR_OFFER_DELTA;
	m.offer.base = 41;
	write_seed(argv[1], "offer-delta", &m);
	m = (struct bdr_msg){ .type = BDR_MSG_MANIFEST, .manifest.xfer = 3 };
	m.manifest.len = 300;
	m.manifest.data = data;
	write_seed(argv[1], "manifest", &m);
	needs(argv[1]);
	chunks(argv[1]);
	texts(argv[1]);
	m = (struct bdr_msg){ .type = BDR_MSG_PING, .ping.cookie = 0x0123456789abcdefull };
	write_seed(argv[1], "ping", &m);
	m.type = BDR_MSG_PONG;
	write_seed(argv[1], "pong", &m);
	m = (struct bdr_msg){ .type = BDR_MSG_REPORT, .report.version = 7,
			      .report.state = BDR_REPORT_MOVING, .report.bytes_done = 4096,
			      .report.bytes_total = 65536, .report.updated_ns = 1764700000000000000ll };
	strcpy(m.report.site, "dp1");
	strcpy(m.report.package, "app");
	strcpy(m.report.error, "cannot connect: connection refused");
	write_seed(argv[1], "report", &m);
	m = (struct bdr_msg){ .type = BDR_MSG_REMOVE };
	strcpy(m.remove.package, "app");
	write_seed(argv[1], "remove", &m);
	return 0;
}
