/* Wire messages (proto/wire.md, "Messages"). The reference is the spec, not
 * wire.c: the tb_* writer below lays bytes out by hand, one little-endian
 * byte at a time, and never calls codec.c or wire.c. tw_msg() is a second,
 * independent writer of every message from the spec's tables; it writes
 * whatever the struct holds, so malformed messages are built with it one
 * wrong field at a time, and each is offered to the decoder (as bytes) and
 * to the encoder (as a struct): both must refuse it with the same class. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <criterion/criterion.h>

#include "bdr/codec.h"
#include "bdr/error.h"
#include "bdr/hash.h"
#include "bdr/wire.h"
#include "testutil.h"

#define KIB 1024u
#define MIB (1024u * 1024u)

/* ---- the independent byte writer ---- */

#define TB_CAP (BDR_WIRE_MSG_MAX + 64 * KIB)

struct tb {
	uint8_t *b;
	size_t n;
};

static void tb_init(struct tb *t)
{
	t->b = malloc(TB_CAP);
	cr_assert_not_null(t->b);
	t->n = 0;
}

static void tb_free(struct tb *t)
{
	free(t->b);
	t->b = NULL;
}

static void tb_le(struct tb *t, uint64_t v, int width)
{
	cr_assert_leq(t->n + (size_t)width, TB_CAP);
	for (int i = 0; i < width; i++)
		t->b[t->n++] = (uint8_t)(v >> (8 * i));
}

static void tb_u8(struct tb *t, uint8_t v) { tb_le(t, v, 1); }
static void tb_u16(struct tb *t, uint16_t v) { tb_le(t, v, 2); }
static void tb_u32(struct tb *t, uint32_t v) { tb_le(t, v, 4); }
static void tb_u64(struct tb *t, uint64_t v) { tb_le(t, v, 8); }
static void tb_i32(struct tb *t, int32_t v) { tb_le(t, (uint32_t)v, 4); }

static void tb_raw(struct tb *t, const void *p, size_t n)
{
	cr_assert_leq(t->n + n, TB_CAP);
	if (n)
		memcpy(t->b + t->n, p, n);
	t->n += n;
}

static void tb_strn(struct tb *t, const void *p, size_t n)
{
	tb_u16(t, (uint16_t)n);
	tb_raw(t, p, n);
}

static void tb_str(struct tb *t, const char *s) { tb_strn(t, s, strlen(s)); }

/* A ref in the NEED layout, written by hand: id, then len little-endian. */
static void put_ref(uint8_t *p, uint64_t seed, uint32_t len)
{
	tu_fill_random(p, BDR_CHUNK_ID_LEN, seed);
	for (int i = 0; i < 4; i++)
		p[BDR_CHUNK_ID_LEN + i] = (uint8_t)(len >> (8 * i));
}

/* A name or text array as a str16 (an array without a NUL: all of it). */
#define TB_ARRAY(t, a) tb_strn(t, a, strnlen(a, sizeof(a)))

/* Every message from the tables of proto/wire.md "Messages". */
static void tw_dictref(struct tb *t, const struct bdr_dictref *r)
{
	tb_u8(t, r->kind);
	if (r->kind == BDR_DICTREF_CHUNK)
		tb_raw(t, r->id.b, BDR_CHUNK_ID_LEN);
	if (r->kind != BDR_DICTREF_FILE)
		return;
	TB_ARRAY(t, r->package);
	tb_u64(t, r->version);
	TB_ARRAY(t, r->path);
	tb_u64(t, r->offset);
	tb_u32(t, r->len);
}

static void tw_chunk(struct tb *t, const struct bdr_msg *m)
{
	tb_u64(t, m->chunk.xfer);
	tb_raw(t, m->chunk.id.b, BDR_CHUNK_ID_LEN);
	tb_u32(t, m->chunk.raw_len);
	tb_u8(t, m->chunk.codec);
	if (m->chunk.codec == 2 || m->chunk.codec == 4) /* a dictref */
		tw_dictref(t, &m->chunk.dict);
	tb_u32(t, m->chunk.len);
	tb_raw(t, m->chunk.data, m->chunk.len);
}

static void tw_msg(struct tb *t, const struct bdr_msg *m)
{
	tb_u8(t, m->type);
	switch (m->type) {
	case 1: tb_raw(t, m->auth.sig, 64); break;
	case 2:
		tb_u64(t, m->offer.xfer), TB_ARRAY(t, m->offer.package);
		tb_u64(t, m->offer.version), tb_u64(t, m->offer.manifest_len);
		tb_u32(t, m->offer.flags);
		if (m->offer.flags & 1) /* DELTA: base follows */
			tb_u64(t, m->offer.base);
		break;
	case 3:
		tb_u64(t, m->manifest.xfer), tb_u64(t, m->manifest.offset);
		tb_u32(t, m->manifest.len), tb_raw(t, m->manifest.data, m->manifest.len);
		break;
	case 4:
		tb_u64(t, m->need.xfer), tb_u32(t, m->need.flags), tb_u32(t, m->need.count);
		tb_raw(t, m->need.refs, (size_t)m->need.count * 20);
		break;
	case 5: tw_chunk(t, m); break;
	case 6:
		tb_u64(t, m->done.xfer), tb_u8(t, m->done.status), tb_i32(t, m->done.error);
		TB_ARRAY(t, m->done.message);
		break;
	case 7: tb_u64(t, m->cancel.xfer), TB_ARRAY(t, m->cancel.reason); break;
	case 8: tb_i32(t, m->error.code), TB_ARRAY(t, m->error.message); break;
	case 9: case 10: tb_u64(t, m->ping.cookie); break;
	case 11:
		TB_ARRAY(t, m->report.site), TB_ARRAY(t, m->report.package);
		tb_u64(t, m->report.version), tb_u8(t, m->report.state);
		tb_u64(t, m->report.bytes_done), tb_u64(t, m->report.bytes_total);
		tb_u64(t, m->report.bytes_saved), tb_u64(t, (uint64_t)m->report.updated_ns);
		TB_ARRAY(t, m->report.error);
		break;
	case 12: TB_ARRAY(t, m->remove.package); break;
	}
}

/* ---- sample messages with realistic values ---- */

/* Noise for data fields, large enough for the largest CHUNK. */
static uint8_t big[BDR_CODEC_DATA_MAX + 64];
static uint8_t text_data[4000]; /* compressible */
static uint8_t zdata[2048];
static uLongf zlen;
static uint8_t refs3[3 * 20], refs2[2 * 20];

static void setup(void)
{
	tu_fill_random(big, sizeof(big), 7);
	for (size_t i = 0; i < sizeof(text_data); i++)
		text_data[i] = (uint8_t)"the quick brown fox jumps over the lazy dog\n"[i % 44];
	zlen = sizeof(zdata);
	cr_assert_eq(compress2(zdata, &zlen, text_data, sizeof(text_data), 1), Z_OK);
	put_ref(refs3, 1, 8192);
	put_ref(refs3 + 20, 2, 2048);
	put_ref(refs3 + 40, 3, BDR_CHUNK_MAX_LIMIT);
	put_ref(refs2, 4, 1);
	put_ref(refs2 + 20, 5, 65536);
}

TestSuite(wire, .init = setup);

static void s_auth(struct bdr_msg *m)
{
	m->type = BDR_MSG_AUTH;
	tu_fill_random(m->auth.sig, sizeof(m->auth.sig), 11);
}

static void s_offer(struct bdr_msg *m)
{
	m->type = BDR_MSG_OFFER;
	m->offer.xfer = 0x8877665544332211ull;
	strcpy(m->offer.package, "demo-pkg_1.0+x");
	m->offer.version = 42;
	m->offer.manifest_len = 1234567;
}

static void s_offer_delta(struct bdr_msg *m)
{
	s_offer(m);
	m->offer.manifest_len = 1141; /* the delta's length */
	m->offer.flags = BDR_OFFER_DELTA;
	m->offer.base = 41;
}

static void s_manifest(struct bdr_msg *m)
{
	m->type = BDR_MSG_MANIFEST;
	m->manifest.xfer = 3;
	m->manifest.offset = 256 * KIB;
	m->manifest.len = 300;
	m->manifest.data = big;
}

static void s_need(struct bdr_msg *m)
{
	m->type = BDR_MSG_NEED;
	m->need.xfer = 3;
	m->need.count = 3;
	m->need.refs = refs3;
}

static void s_need_last(struct bdr_msg *m)
{
	m->type = BDR_MSG_NEED;
	m->need.xfer = 3;
	m->need.flags = BDR_NEED_LAST;
}

static void s_need_flags(struct bdr_msg *m)
{
	m->type = BDR_MSG_NEED;
	m->need.xfer = UINT64_MAX;
	m->need.flags = BDR_NEED_LAST | BDR_NEED_FORCE | BDR_NEED_PLAIN;
	m->need.count = 2;
	m->need.refs = refs2;
}

static void s_chunk_raw(struct bdr_msg *m)
{
	m->type = BDR_MSG_CHUNK;
	m->chunk.xfer = 3;
	bdr_chunk_id(&m->chunk.id, big, 200);
	m->chunk.raw_len = m->chunk.len = 200;
	m->chunk.codec = BDR_CODEC_RAW;
	m->chunk.data = big;
}

static void s_chunk_zlib(struct bdr_msg *m)
{
	m->type = BDR_MSG_CHUNK;
	m->chunk.xfer = 3;
	bdr_chunk_id(&m->chunk.id, text_data, sizeof(text_data));
	m->chunk.raw_len = sizeof(text_data);
	m->chunk.codec = BDR_CODEC_ZLIB;
	m->chunk.len = (uint32_t)zlen;
	m->chunk.data = zdata;
}

static void s_chunk_dict_chunk(struct bdr_msg *m)
{
	s_chunk_zlib(m);
	m->chunk.codec = BDR_CODEC_ZLIB_DICT;
	m->chunk.dict.kind = BDR_DICTREF_CHUNK;
	bdr_chunk_id(&m->chunk.dict.id, big, 8192);
}

static void s_chunk_dict_file(struct bdr_msg *m)
{
	s_chunk_zlib(m);
	m->chunk.codec = BDR_CODEC_ZLIB_DICT;
	m->chunk.dict.kind = BDR_DICTREF_FILE;
	strcpy(m->chunk.dict.package, "libc6");
	m->chunk.dict.version = 7;
	strcpy(m->chunk.dict.path, "usr/lib/x86_64-linux-gnu/libc.so.6");
	m->chunk.dict.offset = MIB;
	m->chunk.dict.len = BDR_CODEC_DICT_MAX;
}

/* Codec 4 names its window as codec 2 does. */
static void s_chunk_zstd_dict(struct bdr_msg *m)
{
	s_chunk_dict_file(m);
	m->chunk.codec = BDR_CODEC_ZSTD_DICT;
}

static void s_done_ok(struct bdr_msg *m)
{
	m->type = BDR_MSG_DONE;
	m->done.xfer = 3;
	m->done.status = BDR_DONE_ACTIVATED;
}

static void s_done_held(struct bdr_msg *m)
{
	m->type = BDR_MSG_DONE;
	m->done.xfer = 4;
	m->done.status = BDR_DONE_HELD;
	strcpy(m->done.message, "version 42 is already held");
}

static void s_done_failed(struct bdr_msg *m)
{
	m->type = BDR_MSG_DONE;
	m->done.xfer = 5;
	m->done.status = BDR_DONE_FAILED;
	m->done.error = -BDR_EHASH;
	strcpy(m->done.message, "file 'bin/tool' failed its hash check twice");
}

static void s_cancel(struct bdr_msg *m)
{
	m->type = BDR_MSG_CANCEL;
	m->cancel.xfer = 6;
	strcpy(m->cancel.reason, "paused by the operator");
}

static void s_error(struct bdr_msg *m)
{
	m->type = BDR_MSG_ERROR;
	m->error.code = -BDR_EFORMAT;
	strcpy(m->error.message, "CHUNK: codec 7 unknown");
}

static void s_ping(struct bdr_msg *m)
{
	m->type = BDR_MSG_PING;
	m->ping.cookie = 0x0123456789abcdefull;
}

static void s_pong(struct bdr_msg *m)
{
	s_ping(m);
	m->type = BDR_MSG_PONG;
}

static void s_report(struct bdr_msg *m)
{
	m->type = BDR_MSG_REPORT;
	strcpy(m->report.site, "dp-lyon-2");
	strcpy(m->report.package, "office-2024");
	m->report.version = 7;
	m->report.state = BDR_REPORT_FAILED;
	m->report.bytes_done = 123456789;
	m->report.bytes_total = 987654321;
	m->report.bytes_saved = 42;
	m->report.updated_ns = 1764700000123456789ll;
	strcpy(m->report.error, "cannot connect: connection refused");
}

static void s_remove(struct bdr_msg *m)
{
	m->type = BDR_MSG_REMOVE;
	strcpy(m->remove.package, "office-2024");
}

static void (*const samples[])(struct bdr_msg *m) = {
	s_auth, s_offer, s_manifest, s_need, s_need_last, s_need_flags, s_chunk_raw,
	s_chunk_zlib, s_chunk_dict_chunk, s_chunk_dict_file, s_done_ok, s_done_held,
	s_done_failed, s_cancel, s_error, s_ping, s_pong, s_offer_delta, s_report, s_remove,
	s_chunk_zstd_dict,
};
#define NSAMPLES (sizeof(samples) / sizeof(samples[0]))

static void sample(size_t i, struct bdr_msg *m)
{
	memset(m, 0, sizeof(*m));
	samples[i](m);
}

/* ---- helpers ---- */

static void encode_ok(const struct bdr_msg *m, uint8_t **out, size_t *len)
{
	struct bdr_diag d = { { 0 } };
	struct bdr_wbuf w;

	bdr_wbuf_init(&w, BDR_WIRE_MSG_MAX);
	cr_assert_eq(bdr_wire_encode(m, &w, &d), 0, "encode %s: %s", bdr_wire_type_name(m->type),
		     d.msg);
	cr_assert_eq(bdr_wbuf_finish(&w, out, len), 0);
}

static void decode_ok(const uint8_t *buf, size_t len, struct bdr_msg *m)
{
	struct bdr_diag d = { { 0 } };

	cr_assert_eq(bdr_wire_decode(buf, len, m, &d), 0, "decode: %s", d.msg);
}

static void assert_dictref_eq(const struct bdr_dictref *a, const struct bdr_dictref *b)
{
	cr_assert_eq(a->kind, b->kind);
	cr_assert_arr_eq(a->id.b, b->id.b, BDR_CHUNK_ID_LEN);
	cr_assert_str_eq(a->package, b->package);
	cr_assert_eq(a->version, b->version);
	cr_assert_str_eq(a->path, b->path);
	cr_assert_eq(a->offset, b->offset);
	cr_assert_eq(a->len, b->len);
}

static void assert_bulk_eq(const struct bdr_msg *a, const struct bdr_msg *b)
{
	if (a->type == BDR_MSG_MANIFEST) {
		cr_assert_eq(a->manifest.xfer, b->manifest.xfer);
		cr_assert_eq(a->manifest.offset, b->manifest.offset);
		cr_assert_eq(a->manifest.len, b->manifest.len);
		cr_assert_arr_eq(a->manifest.data, b->manifest.data, a->manifest.len);
	} else if (a->type == BDR_MSG_NEED) {
		cr_assert_eq(a->need.xfer, b->need.xfer);
		cr_assert_eq(a->need.flags, b->need.flags);
		cr_assert_eq(a->need.count, b->need.count);
		if (a->need.count) /* refs may be NULL when there are none */
			cr_assert_arr_eq(a->need.refs, b->need.refs, (size_t)a->need.count * 20);
	} else {
		cr_assert_eq(a->chunk.xfer, b->chunk.xfer);
		cr_assert_arr_eq(a->chunk.id.b, b->chunk.id.b, BDR_CHUNK_ID_LEN);
		cr_assert_eq(a->chunk.raw_len, b->chunk.raw_len);
		cr_assert_eq(a->chunk.codec, b->chunk.codec);
		assert_dictref_eq(&a->chunk.dict, &b->chunk.dict);
		cr_assert_eq(a->chunk.len, b->chunk.len);
		cr_assert_arr_eq(a->chunk.data, b->chunk.data, a->chunk.len);
	}
}

/* Field by field: the borrowed data by content, the texts as strings. */
static void assert_msg_eq(const struct bdr_msg *a, const struct bdr_msg *b)
{
	cr_assert_eq(a->type, b->type);
	switch (a->type) {
	case BDR_MSG_AUTH: cr_assert_arr_eq(a->auth.sig, b->auth.sig, BDR_SIG_LEN); break;
	case BDR_MSG_OFFER:
		cr_assert_eq(a->offer.xfer, b->offer.xfer);
		cr_assert_str_eq(a->offer.package, b->offer.package);
		cr_assert_eq(a->offer.version, b->offer.version);
		cr_assert_eq(a->offer.manifest_len, b->offer.manifest_len);
		cr_assert_eq(a->offer.flags, b->offer.flags);
		cr_assert_eq(a->offer.base, b->offer.base);
		break;
	case BDR_MSG_MANIFEST: case BDR_MSG_NEED: case BDR_MSG_CHUNK: assert_bulk_eq(a, b); break;
	case BDR_MSG_DONE:
		cr_assert_eq(a->done.xfer, b->done.xfer);
		cr_assert_eq(a->done.status, b->done.status);
		cr_assert_eq(a->done.error, b->done.error);
		cr_assert_str_eq(a->done.message, b->done.message);
		break;
	case BDR_MSG_CANCEL:
		cr_assert_eq(a->cancel.xfer, b->cancel.xfer);
		cr_assert_str_eq(a->cancel.reason, b->cancel.reason);
		break;
	case BDR_MSG_ERROR:
		cr_assert_eq(a->error.code, b->error.code);
		cr_assert_str_eq(a->error.message, b->error.message);
		break;
	case BDR_MSG_REMOVE: cr_assert_str_eq(a->remove.package, b->remove.package); break;
	case BDR_MSG_REPORT:
		cr_assert_str_eq(a->report.site, b->report.site);
		cr_assert_str_eq(a->report.package, b->report.package);
		cr_assert_eq(a->report.version, b->report.version);
		cr_assert_eq(a->report.state, b->report.state);
		cr_assert_eq(a->report.bytes_done, b->report.bytes_done);
		cr_assert_eq(a->report.bytes_total, b->report.bytes_total);
		cr_assert_eq(a->report.bytes_saved, b->report.bytes_saved);
		cr_assert_eq(a->report.updated_ns, b->report.updated_ns);
		cr_assert_str_eq(a->report.error, b->report.error);
		break;
	default: cr_assert_eq(a->ping.cookie, b->ping.cookie); break;
	}
}

/* The spec bytes t and the struct m describe the same message: m encodes
 * to exactly t, and t decodes to m. */
static void assert_same(const struct tb *t, const struct bdr_msg *m)
{
	struct bdr_msg got;
	uint8_t *buf;
	size_t len;

	encode_ok(m, &buf, &len);
	cr_assert_eq(len, t->n, "%s: encoder wrote %zu bytes, the spec %zu",
		     bdr_wire_type_name(m->type), len, t->n);
	cr_assert_arr_eq(buf, t->b, len, "%s: encoder differs from the spec",
			 bdr_wire_type_name(m->type));
	decode_ok(t->b, t->n, &got);
	assert_msg_eq(m, &got);
	free(buf);
}

static void expect_decode(const uint8_t *buf, size_t len, int err, const char *needle)
{
	struct bdr_diag d = { { 0 } };
	struct bdr_msg m;
	int got = bdr_wire_decode(buf, len, &m, &d);

	cr_assert_eq(got, err, "decode: want %d (%s), got %d (%s) [%s]", err, bdr_strerror(err),
		     got, bdr_strerror(got), d.msg);
	if (!err)
		return;
	cr_assert_eq(m.type, 0, "a failed decode leaves no message");
	if (needle)
		cr_assert_not_null(strstr(d.msg, needle), "diag '%s' lacks '%s'", d.msg, needle);
}

static void expect_encode(const struct bdr_msg *m, int err, const char *needle)
{
	struct bdr_diag d = { { 0 } };
	struct bdr_wbuf w;
	int got;

	bdr_wbuf_init(&w, BDR_WIRE_MSG_MAX);
	bdr_w_bytes(&w, "before", 6);
	got = bdr_wire_encode(m, &w, &d);
	cr_assert_eq(got, err, "encode: want %d (%s), got %d (%s) [%s]", err, bdr_strerror(err),
		     got, bdr_strerror(got), d.msg);
	if (err) {
		cr_assert_eq(w.len, 6, "a failed encode leaves w as it was");
		cr_assert_eq(w.err, 0);
		cr_assert_arr_eq(w.buf, "before", 6);
		if (needle)
			cr_assert_not_null(strstr(d.msg, needle), "diag '%s' lacks '%s'", d.msg,
					   needle);
	}
	bdr_wbuf_free(&w);
}

/* m is refused by the decoder (as the spec writer's bytes) and the encoder. */
static void expect_bad(const struct bdr_msg *m, int err, const char *needle)
{
	struct tb t;

	tb_init(&t);
	tw_msg(&t, m);
	expect_decode(t.b, t.n, err, needle);
	expect_encode(m, err, needle);
	tb_free(&t);
}

/* m is accepted both ways, and both ways agree with the spec writer. */
static void expect_good(const struct bdr_msg *m)
{
	struct tb t;

	tb_init(&t);
	tw_msg(&t, m);
	assert_same(&t, m);
	tb_free(&t);
}

static void expect_bad_tb(struct tb *t, int err, const char *needle)
{
	expect_decode(t->b, t->n, err, needle);
	tb_free(t);
}

/* ---- valid messages ---- */

Test(wire, round_trip_every_sample)
{
	struct bdr_msg m, got, again;
	uint8_t *buf, *buf2;
	size_t len, len2;
	bool seen[BDR_MSG_REMOVE + 1] = { false };

	for (size_t i = 0; i < NSAMPLES; i++) {
		sample(i, &m);
		encode_ok(&m, &buf, &len);
		decode_ok(buf, len, &got);
		assert_msg_eq(&m, &got);
		encode_ok(&got, &buf2, &len2);
		cr_assert_eq(len, len2);
		cr_assert_arr_eq(buf, buf2, len, "decode then encode gives the same bytes");
		decode_ok(buf2, len2, &again);
		assert_msg_eq(&m, &again);
		seen[m.type] = true;
		free(buf), free(buf2);
	}
	for (int t = BDR_MSG_AUTH; t <= BDR_MSG_REMOVE; t++)
		cr_assert(seen[t], "no sample of type %d", t);
}

Test(wire, spec_writer_matches_every_sample)
{
	struct bdr_msg m;

	for (size_t i = 0; i < NSAMPLES; i++) {
		sample(i, &m);
		expect_good(&m);
	}
}

/* Every byte written out literally from the OFFER table: with DELTA, and
 * the same OFFER without it, which ends at flags. */
Test(wire, offer_bytes_follow_the_spec)
{
	uint8_t want[] = {
		0x02,                                           /* type OFFER */
		0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, /* xfer */
		0x03, 0x00, 'p', 'k', 'g',                      /* package str16 */
		0x2a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* version 42 */
		0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, /* manifest_len 65536 */
		0x01, 0x00, 0x00, 0x00,                         /* flags DELTA */
		0x29, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* base 41 */
	};
	struct tb t = { want, sizeof(want) };
	struct bdr_msg m = { .type = BDR_MSG_OFFER };

	m.offer.xfer = 0x0102030405060708ull;
	strcpy(m.offer.package, "pkg");
	m.offer.version = 42;
	m.offer.manifest_len = 65536;
	m.offer.flags = BDR_OFFER_DELTA;
	m.offer.base = 41;
	assert_same(&t, &m);
	/* Without its base it is truncated, whatever else follows. */
	t.n -= 8;
	expect_decode(t.b, t.n, -BDR_EFORMAT, "OFFER: truncated (ends before the end of base)");
	t.n += 4;
	expect_decode(t.b, t.n, -BDR_EFORMAT, "OFFER: truncated (ends before the end of base)");
	/* No flags: no base. */
	want[sizeof(want) - 12] = 0x00;
	t.n = sizeof(want) - 8;
	m.offer.flags = 0;
	m.offer.base = 0;
	assert_same(&t, &m);
}

Test(wire, need_bytes_follow_the_spec)
{
	struct bdr_chunk_ref refs[2], got;
	uint8_t packed[2 * 20];
	struct bdr_msg m = { .type = BDR_MSG_NEED }, dm;
	struct tb t;

	memset(refs[0].id.b, 0x11, 16);
	refs[0].len = 4096;
	for (int i = 0; i < 16; i++)
		refs[1].id.b[i] = (uint8_t)(0xa0 + i);
	refs[1].len = BDR_CHUNK_MAX_LIMIT;
	tb_init(&t);
	tb_u8(&t, 4);
	tb_u64(&t, 77);
	tb_u32(&t, 3); /* LAST | FORCE */
	tb_u32(&t, 2);
	tb_raw(&t, refs[0].id.b, 16);
	tb_raw(&t, "\x00\x10\x00\x00", 4);
	tb_raw(&t, refs[1].id.b, 16);
	tb_raw(&t, "\x00\x00\x10\x00", 4);
	cr_assert_eq(t.n, 1 + 8 + 4 + 4 + 2 * 20);

	bdr_wire_need_pack(refs, 2, packed);
	cr_assert_arr_eq(packed, t.b + 17, sizeof(packed), "need_pack writes the NEED layout");
	m.need.xfer = 77;
	m.need.flags = BDR_NEED_LAST | BDR_NEED_FORCE;
	m.need.count = 2;
	m.need.refs = packed;
	assert_same(&t, &m);
	decode_ok(t.b, t.n, &dm);
	for (uint32_t i = 0; i < 2; i++) {
		bdr_wire_need_ref(&dm, i, &got);
		cr_assert_arr_eq(got.id.b, refs[i].id.b, 16);
		cr_assert_eq(got.len, refs[i].len);
	}
	tb_free(&t);
}

Test(wire, chunk_with_file_dictref_bytes_follow_the_spec)
{
	struct bdr_msg m;
	struct tb t;

	sample(9, &m); /* s_chunk_dict_file */
	cr_assert_eq(m.chunk.dict.kind, BDR_DICTREF_FILE);
	tb_init(&t);
	tb_u8(&t, 5);
	tb_u64(&t, 3);
	tb_raw(&t, m.chunk.id.b, 16);
	tb_u32(&t, 4000);
	tb_u8(&t, 2);
	tb_u8(&t, 2);
	tb_raw(&t, "\x05\x00libc6", 7);
	tb_u64(&t, 7);
	tb_str(&t, "usr/lib/x86_64-linux-gnu/libc.so.6");
	tb_raw(&t, "\x00\x00\x10\x00\x00\x00\x00\x00", 8); /* offset 1 MiB */
	tb_raw(&t, "\x00\x80\x00\x00", 4);                 /* len 32768 */
	tb_u32(&t, (uint32_t)zlen);
	tb_raw(&t, zdata, zlen);
	cr_assert_eq(t.n, 1 + 29 + (1 + 7 + 8 + 2 + 34 + 8 + 4) + 4 + zlen);
	assert_same(&t, &m);
	tb_free(&t);
}

Test(wire, done_bytes_follow_the_spec)
{
	static const char msg[] = "bin/tool: hash mismatch";
	struct bdr_msg m = { .type = BDR_MSG_DONE };
	struct tb t;

	tb_init(&t);
	tb_u8(&t, 6);
	tb_raw(&t, "\xff\xff\xff\xff\xff\xff\xff\xff", 8); /* xfer */
	tb_u8(&t, 2);
	tb_u32(&t, (uint32_t)-BDR_EHASH); /* two's complement */
	tb_u16(&t, sizeof(msg) - 1);
	tb_raw(&t, msg, sizeof(msg) - 1);
	m.done.xfer = UINT64_MAX;
	m.done.status = BDR_DONE_FAILED;
	m.done.error = -BDR_EHASH;
	strcpy(m.done.message, msg);
	assert_same(&t, &m);
	tb_free(&t);
}

Test(wire, small_messages_bytes_follow_the_spec)
{
	struct bdr_msg m = { .type = BDR_MSG_ERROR };
	struct tb t;

	tb_init(&t);
	tb_raw(&t, "\x08\xfe\xff\xff\xff\x02\x00ok", 9);
	m.error.code = -2;
	strcpy(m.error.message, "ok");
	assert_same(&t, &m);
	t.n = 0;
	tb_raw(&t, "\x0a\x01\x00\x00\x00\x00\x00\x00\x80", 9);
	m = (struct bdr_msg){ .type = BDR_MSG_PONG, .ping.cookie = 0x8000000000000001ull };
	assert_same(&t, &m);
	t.n = 0;
	tb_raw(&t, "\x07\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00", 11);
	m = (struct bdr_msg){ .type = BDR_MSG_CANCEL, .cancel.xfer = 2 };
	assert_same(&t, &m);
	tb_free(&t);
}

/* A dictref is present only with codec 2, whatever the struct holds. */
Test(wire, fields_that_do_not_apply_are_absent)
{
	struct bdr_msg m, got;
	uint8_t *buf;
	size_t len;

	sample(9, &m);
	m.chunk.codec = BDR_CODEC_ZLIB;
	encode_ok(&m, &buf, &len);
	cr_assert_eq(len, 1 + 29 + 4 + zlen);
	decode_ok(buf, len, &got);
	cr_assert_eq(got.chunk.dict.kind, 0);
	cr_assert_str_eq(got.chunk.dict.path, "");
	free(buf);
	sample(8, &m); /* kind 1: no package, version, path, offset, len */
	strcpy(m.chunk.dict.package, "ignored");
	m.chunk.dict.len = 0;
	encode_ok(&m, &buf, &len);
	cr_assert_eq(len, 1 + 29 + 1 + 16 + 4 + zlen);
	free(buf);
}

/* The longest message of each kind decodes, and fits BDR_WIRE_MSG_MAX as
 * "Sizes" says. */
Test(wire, largest_messages)
{
	struct bdr_msg m = { .type = BDR_MSG_CHUNK };
	static uint8_t refs[BDR_WIRE_NEED_MAX * 20];
	uint8_t *buf;
	size_t len;

	m.chunk.raw_len = BDR_CHUNK_MAX_LIMIT;
	m.chunk.codec = BDR_CODEC_ZLIB_DICT;
	m.chunk.dict.kind = BDR_DICTREF_FILE;
	memset(m.chunk.dict.package, 'p', BDR_MAX_PACKAGE_NAME);
	m.chunk.dict.version = 1;
	for (size_t i = 0; i < BDR_MAX_PATH; i++)
		m.chunk.dict.path[i] = i % 201 == 200 ? '/' : 'a';
	m.chunk.dict.len = BDR_CODEC_DICT_MAX;
	m.chunk.len = BDR_CODEC_DATA_MAX;
	m.chunk.data = big;
	encode_ok(&m, &buf, &len);
	cr_assert_eq(len, 1 + 29 + 4249 + 4 + 1048913u);
	cr_assert_leq(len, BDR_WIRE_MSG_MAX);
	expect_good(&m);
	free(buf);

	for (uint32_t i = 0; i < BDR_WIRE_NEED_MAX; i++)
		put_ref(refs + i * 20, i, i % BDR_CHUNK_MAX_LIMIT + 1);
	m = (struct bdr_msg){ .type = BDR_MSG_NEED, .need.count = BDR_WIRE_NEED_MAX };
	m.need.refs = refs;
	encode_ok(&m, &buf, &len);
	cr_assert_eq(len, 163857);
	expect_good(&m);
	free(buf);

	m = (struct bdr_msg){ .type = BDR_MSG_MANIFEST, .manifest.len = BDR_WIRE_MANIFEST_PIECE };
	m.manifest.offset = BDR_MAX_MANIFEST_BYTES - BDR_WIRE_MANIFEST_PIECE;
	m.manifest.data = big;
	encode_ok(&m, &buf, &len);
	cr_assert_eq(len, 262165);
	expect_good(&m);
	free(buf);
}

/* ---- malformed: any message ---- */

Test(wire, truncated_at_every_offset)
{
	struct bdr_msg m;
	uint8_t *buf;
	size_t len;

	expect_decode(NULL, 0, -BDR_EFORMAT, "empty message");
	for (size_t i = 0; i < NSAMPLES; i++) {
		sample(i, &m);
		encode_ok(&m, &buf, &len);
		for (size_t n = 0; n < len; n++) {
			/* A copy of exactly n bytes, so ASan sees any read past it. */
			uint8_t *cut = malloc(n ? n : 1);
			memcpy(cut, buf, n);
			expect_decode(cut, n, -BDR_EFORMAT, n ? NULL : "empty");
			free(cut);
		}
		free(buf);
	}
}

Test(wire, trailing_bytes)
{
	static const uint8_t extra[] = { 0x00, 0xff };
	struct bdr_msg m;
	uint8_t *buf;
	size_t len;

	for (size_t i = 0; i < NSAMPLES; i++) {
		sample(i, &m);
		encode_ok(&m, &buf, &len);
		uint8_t *longer = malloc(len + 1);
		memcpy(longer, buf, len);
		for (size_t e = 0; e < sizeof(extra); e++) {
			longer[len] = extra[e];
			expect_decode(longer, len + 1, -BDR_EFORMAT, "trailing");
		}
		free(buf), free(longer);
	}
}

Test(wire, unknown_type)
{
	static const uint8_t types[] = { 0, 13, 14, 0x80, 0xff };
	struct bdr_msg m;

	for (size_t i = 0; i < sizeof(types); i++) {
		uint8_t buf[9] = { types[i] };
		char want[64];
		snprintf(want, sizeof(want), "unknown message type %u", types[i]);
		expect_decode(buf, 1, -BDR_EFORMAT, want);
		expect_decode(buf, sizeof(buf), -BDR_EFORMAT, want);
		m = (struct bdr_msg){ .type = types[i] };
		expect_encode(&m, -BDR_EFORMAT, want);
	}
	cr_assert_str_eq(bdr_wire_type_name(13), "unknown");
	cr_assert_str_eq(bdr_wire_type_name(0), "unknown");
}

Test(wire, oversized_message)
{
	uint8_t *buf = calloc(1, BDR_WIRE_MSG_MAX + 1);

	buf[0] = BDR_MSG_PING;
	expect_decode(buf, BDR_WIRE_MSG_MAX + 1, -BDR_ELIMIT, "exceeds");
	free(buf);
}

/* Every decoder input that is accepted re-encodes to itself: flips of
 * every byte of every sample either fail or are canonical. */
Test(wire, single_byte_flips_are_rejected_or_canonical)
{
	static const uint8_t flips[] = { 0x01, 0x02, 0x10, 0x80, 0xff };
	struct bdr_diag d;
	struct bdr_msg m;
	uint8_t *buf, *again;
	size_t len, alen, accepted = 0;

	for (size_t i = 0; i < NSAMPLES; i++) {
		sample(i, &m);
		encode_ok(&m, &buf, &len);
		for (size_t pos = 0; pos < len && pos < 2048; pos++) {
			for (size_t f = 0; f < sizeof(flips); f++) {
				buf[pos] ^= flips[f];
				if (bdr_wire_decode(buf, len, &m, &d) == 0) {
					encode_ok(&m, &again, &alen);
					cr_assert(alen == len && !memcmp(again, buf, len),
						  "sample %zu, flip 0x%02x at %zu: not canonical", i,
						  flips[f], pos);
					free(again);
					accepted++;
				}
				buf[pos] ^= flips[f];
			}
		}
		free(buf);
	}
	cr_assert_gt(accepted, 0, "some flips (ids, xfer, data) are valid messages");
}

/* ---- malformed: per message ---- */

Test(wire, auth)
{
	struct tb t;

	tb_init(&t);
	tb_u8(&t, 1);
	tb_raw(&t, big, 63);
	expect_bad_tb(&t, -BDR_EFORMAT, "AUTH: truncated");
}

Test(wire, offer_rules)
{
	struct bdr_msg m;

	sample(1, &m);
	m.offer.version = 0;
	expect_bad(&m, -BDR_EFORMAT, "OFFER: version 0");
	sample(1, &m);
	m.offer.manifest_len = 0;
	expect_bad(&m, -BDR_EFORMAT, "manifest_len is 0");
	m.offer.manifest_len = BDR_MAX_MANIFEST_BYTES + 1;
	expect_bad(&m, -BDR_ELIMIT, "manifest_len");
	m.offer.manifest_len = UINT64_MAX;
	expect_bad(&m, -BDR_ELIMIT, "manifest_len");
	m.offer.manifest_len = BDR_MAX_MANIFEST_BYTES;
	expect_good(&m);
	m.offer.manifest_len = 1;
	expect_good(&m);
	m.offer.flags = 2;
	expect_bad(&m, -BDR_EFORMAT, "OFFER: reserved flag bits 0x2 set");
	m.offer.flags = 0x80000000u;
	expect_bad(&m, -BDR_EFORMAT, "reserved flag bits 0x80000000");
	/* Reserved bits stay reserved next to DELTA, base or not. */
	m.offer.flags = BDR_OFFER_DELTA | 4;
	m.offer.base = 7;
	expect_bad(&m, -BDR_EFORMAT, "reserved flag bits 0x4");
	m.offer.flags = BDR_OFFER_DELTA;
	expect_good(&m);
	m.offer.base = UINT64_MAX;
	expect_good(&m);
	m.offer.base = 0;
	expect_bad(&m, -BDR_EFORMAT, "OFFER: base version 0");
	m.offer.base = m.offer.version;
	expect_bad(&m, -BDR_EFORMAT, "OFFER: delta against the offered version itself");
	/* A base without the flag would not be sent: the encoder refuses it
	 * (a decoder never sees it, the bytes would just end earlier). */
	m.offer.flags = 0;
	m.offer.base = 7;
	expect_encode(&m, -BDR_EFORMAT, "OFFER: base without the DELTA flag");
}

Test(wire, offer_package_names)
{
	static const char *const bad[] = { "", ".hidden", "..", "a/b", "a b", "tab\t", "é" };
	struct bdr_msg m;
	struct tb t;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		sample(1, &m);
		strcpy(m.offer.package, bad[i]);
		expect_bad(&m, -BDR_EFORMAT, "OFFER: package");
	}
	sample(1, &m);
	memset(m.offer.package, 'p', BDR_MAX_PACKAGE_NAME);
	expect_good(&m);
	/* 129 bytes: no room for a NUL, so the encoder sees it too long. */
	memset(m.offer.package, 'p', sizeof(m.offer.package));
	expect_bad(&m, -BDR_ELIMIT, "OFFER: package");
	/* A NUL inside the name. */
	tb_init(&t);
	tb_u8(&t, 2);
	tb_u64(&t, 1);
	tb_strn(&t, "ab\0c", 4);
	tb_u64(&t, 1), tb_u64(&t, 1), tb_u32(&t, 0);
	expect_bad_tb(&t, -BDR_EFORMAT, "NUL");
	/* Too long is a limit even when the bytes are not there. */
	tb_init(&t);
	tb_u8(&t, 2);
	tb_u64(&t, 1);
	tb_u16(&t, 60000);
	expect_bad_tb(&t, -BDR_ELIMIT, "package of 60000 bytes");
}

Test(wire, manifest_rules)
{
	struct bdr_msg m;
	struct tb t;

	sample(2, &m);
	m.manifest.len = 0;
	expect_bad(&m, -BDR_EFORMAT, "MANIFEST: len is 0");
	m.manifest.len = BDR_WIRE_MANIFEST_PIECE + 1;
	expect_bad(&m, -BDR_ELIMIT, "MANIFEST: len");
	m.manifest.len = 1;
	m.manifest.offset = BDR_MAX_MANIFEST_BYTES;
	expect_bad(&m, -BDR_ELIMIT, "offset");
	m.manifest.offset = UINT64_MAX;
	expect_bad(&m, -BDR_ELIMIT, "offset");
	m.manifest.offset = BDR_MAX_MANIFEST_BYTES - 1;
	expect_good(&m);
	m.manifest.data = NULL;
	expect_encode(&m, -EINVAL, "data");
	/* The limit comes before the bytes left. */
	tb_init(&t);
	tb_u8(&t, 3);
	tb_u64(&t, 1), tb_u64(&t, 0);
	tb_u32(&t, BDR_WIRE_MANIFEST_PIECE + 1);
	expect_bad_tb(&t, -BDR_ELIMIT, "len");
}

Test(wire, need_rules)
{
	struct bdr_msg m;

	sample(3, &m);
	m.need.count = 0;
	expect_bad(&m, -BDR_EFORMAT, "count 0 without LAST");
	m.need.flags = BDR_NEED_FORCE | BDR_NEED_PLAIN;
	expect_bad(&m, -BDR_EFORMAT, "count 0 without LAST");
	m.need.flags = BDR_NEED_LAST;
	expect_good(&m);
	static const uint32_t reserved[] = { 8, 0x10, 0x100, 0x80000000u, ~7u };
	for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
		sample(3, &m);
		m.need.flags = BDR_NEED_LAST | reserved[i];
		expect_bad(&m, -BDR_EFORMAT, "reserved flag bits");
	}
}

Test(wire, need_counts)
{
	static uint8_t refs[(BDR_WIRE_NEED_MAX + 1) * 20];
	struct bdr_msg m = { .type = BDR_MSG_NEED, .need.refs = refs };
	struct tb t;

	for (uint32_t i = 0; i <= BDR_WIRE_NEED_MAX; i++)
		put_ref(refs + i * 20, i, 100);
	m.need.count = BDR_WIRE_NEED_MAX;
	expect_good(&m);
	m.need.count = BDR_WIRE_NEED_MAX + 1; /* with every ref present */
	expect_bad(&m, -BDR_ELIMIT, "count 8193 exceeds 8192");
	/* Over the limit with no refs at all: the limit is checked first. */
	tb_init(&t);
	tb_u8(&t, 4), tb_u64(&t, 1), tb_u32(&t, 0), tb_u32(&t, UINT32_MAX);
	expect_bad_tb(&t, -BDR_ELIMIT, "count");
	/* Within the limit but more than the bytes left. */
	tb_init(&t);
	tb_u8(&t, 4), tb_u64(&t, 1), tb_u32(&t, 0), tb_u32(&t, 5);
	tb_raw(&t, refs, 4 * 20);
	expect_bad_tb(&t, -BDR_EFORMAT, "5 refs do not fit in the 80 bytes left");
	tb_init(&t);
	tb_u8(&t, 4), tb_u64(&t, 1), tb_u32(&t, 0), tb_u32(&t, BDR_WIRE_NEED_MAX);
	expect_bad_tb(&t, -BDR_EFORMAT, "do not fit");
}

Test(wire, need_ref_lengths)
{
	uint8_t refs[3 * 20];
	struct bdr_msg m = { .type = BDR_MSG_NEED, .need.count = 3, .need.refs = refs };

	put_ref(refs, 1, 1);
	put_ref(refs + 20, 2, BDR_CHUNK_MAX_LIMIT);
	put_ref(refs + 40, 3, 0);
	expect_bad(&m, -BDR_EFORMAT, "ref 2: len 0");
	put_ref(refs + 40, 3, BDR_CHUNK_MAX_LIMIT + 1);
	expect_bad(&m, -BDR_ELIMIT, "ref 2: len 1048577");
	put_ref(refs + 40, 3, UINT32_MAX);
	expect_bad(&m, -BDR_ELIMIT, "ref 2");
	put_ref(refs + 40, 3, 7);
	expect_good(&m);
	m.need.refs = NULL;
	expect_encode(&m, -EINVAL, "refs");
}

Test(wire, chunk_rules)
{
	struct bdr_msg m;

	sample(6, &m); /* raw */
	m.chunk.raw_len = m.chunk.len = 0;
	expect_bad(&m, -BDR_EFORMAT, "raw_len is 0");
	m.chunk.raw_len = m.chunk.len = BDR_CHUNK_MAX_LIMIT + 1;
	expect_bad(&m, -BDR_ELIMIT, "raw_len");
	m.chunk.raw_len = m.chunk.len = BDR_CHUNK_MAX_LIMIT;
	expect_good(&m);
	m.chunk.len = BDR_CHUNK_MAX_LIMIT - 1;
	expect_bad(&m, -BDR_EFORMAT, "differs from raw_len");
	m.chunk.raw_len = 200, m.chunk.len = 201;
	expect_bad(&m, -BDR_EFORMAT, "raw codec: len 201 differs from raw_len 200");
	static const uint8_t codecs[] = { 5, 7, 0xff };
	for (size_t i = 0; i < sizeof(codecs); i++) {
		sample(7, &m);
		m.chunk.codec = codecs[i];
		char want[32];
		snprintf(want, sizeof(want), "CHUNK: codec %u unknown", codecs[i]);
		expect_bad(&m, -BDR_EFORMAT, want);
	}
	sample(7, &m); /* zlib */
	m.chunk.len = 0;
	expect_bad(&m, -BDR_EFORMAT, "len is 0");
	m.chunk.len = BDR_CODEC_DATA_MAX + 1;
	m.chunk.data = big;
	expect_bad(&m, -BDR_ELIMIT, "len");
	m.chunk.len = BDR_CODEC_DATA_MAX;
	expect_good(&m);
	m.chunk.len = 1;
	expect_good(&m);
	m.chunk.data = NULL;
	expect_encode(&m, -EINVAL, "data");
}

Test(wire, chunk_limits_come_before_the_bytes)
{
	struct tb t;

	tb_init(&t);
	tb_u8(&t, 5), tb_u64(&t, 1), tb_raw(&t, big, 16);
	tb_u32(&t, BDR_CHUNK_MAX_LIMIT + 1), tb_u8(&t, 0), tb_u32(&t, BDR_CHUNK_MAX_LIMIT + 1);
	expect_bad_tb(&t, -BDR_ELIMIT, "raw_len");
	tb_init(&t);
	tb_u8(&t, 5), tb_u64(&t, 1), tb_raw(&t, big, 16);
	tb_u32(&t, 100), tb_u8(&t, 1), tb_u32(&t, UINT32_MAX);
	expect_bad_tb(&t, -BDR_ELIMIT, "len");
	tb_init(&t); /* codec 9: nothing after it is read */
	tb_u8(&t, 5), tb_u64(&t, 1), tb_raw(&t, big, 16), tb_u32(&t, 100), tb_u8(&t, 9);
	expect_bad_tb(&t, -BDR_EFORMAT, "codec 9 unknown");
}

Test(wire, dictref_kind_and_len)
{
	static const uint8_t kinds[] = { 0, 3, 0xff };
	struct bdr_msg m;

	for (size_t i = 0; i < sizeof(kinds); i++) {
		sample(8, &m);
		m.chunk.dict.kind = kinds[i];
		expect_bad(&m, -BDR_EFORMAT, "dict kind");
	}
	sample(9, &m);
	m.chunk.dict.len = 0;
	expect_bad(&m, -BDR_EFORMAT, "dict len is 0");
	m.chunk.dict.len = BDR_CODEC_DICT_MAX + 1;
	expect_bad(&m, -BDR_ELIMIT, "dict len 32769");
	m.chunk.dict.len = UINT32_MAX;
	expect_bad(&m, -BDR_ELIMIT, "dict len");
	m.chunk.dict.len = 1;
	expect_good(&m);
	m.chunk.dict.version = 0;
	expect_bad(&m, -BDR_EFORMAT, "dict version 0");
	m.chunk.dict.version = UINT64_MAX;
	expect_good(&m);
	m.chunk.dict.len = BDR_CODEC_DICT_MAX;
	m.chunk.dict.offset = UINT64_MAX - BDR_CODEC_DICT_MAX;
	expect_good(&m);
	m.chunk.dict.offset++;
	expect_bad(&m, -BDR_EFORMAT, "overflows");
	strcpy(m.chunk.dict.package, "bad/name");
	expect_bad(&m, -BDR_EFORMAT, "dict package");
}

Test(wire, dictref_paths)
{
	static const char *const bad[] = { "a/../b", "..", "../x", "a/..", "/etc/passwd",
					   "", "a//b", "a/", "./a", "a/./b" };
	struct bdr_msg m;
	struct tb t;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		sample(9, &m);
		strcpy(m.chunk.dict.path, bad[i]);
		expect_bad(&m, -BDR_EFORMAT, "dict path");
	}
	sample(9, &m);
	for (size_t i = 0; i < BDR_MAX_PATH; i++)
		m.chunk.dict.path[i] = i % 201 == 200 ? '/' : 'a';
	expect_good(&m);
	m.chunk.dict.path[BDR_MAX_PATH] = 'a'; /* 4097 bytes, no NUL */
	expect_encode(&m, -BDR_ELIMIT, "dict path");
	tb_init(&t);
	tw_msg(&t, &m);
	expect_bad_tb(&t, -BDR_ELIMIT, "dict path of 4097 bytes exceeds 4096");
	/* A NUL inside the path. */
	tb_init(&t);
	tb_u8(&t, 5), tb_u64(&t, 1), tb_raw(&t, big, 16), tb_u32(&t, 10), tb_u8(&t, 2);
	tb_u8(&t, 2), tb_str(&t, "pkg"), tb_u64(&t, 1), tb_strn(&t, "a\0b", 3);
	tb_u64(&t, 0), tb_u32(&t, 100), tb_u32(&t, 5), tb_raw(&t, big, 5);
	expect_bad_tb(&t, -BDR_EFORMAT, "dict path contains a NUL");
}

Test(wire, done_rules)
{
	static const struct {
		uint8_t status;
		int32_t error;
		int err;
	} cases[] = {
		{ 0, 0, 0 }, { 1, 0, 0 }, { 2, -1, 0 }, { 2, INT32_MIN, 0 }, { 2, -EIO, 0 },
		{ 3, 0, -BDR_EFORMAT }, { 0xff, -1, -BDR_EFORMAT }, { 0, -5, -BDR_EFORMAT },
		{ 0, 1, -BDR_EFORMAT }, { 1, 1, -BDR_EFORMAT }, { 1, INT32_MIN, -BDR_EFORMAT },
		{ 2, 0, -BDR_EFORMAT }, { 2, 7, -BDR_EFORMAT }, { 2, INT32_MAX, -BDR_EFORMAT },
	};
	struct bdr_msg m;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		sample(12, &m);
		m.done.status = cases[i].status;
		m.done.error = cases[i].error;
		if (cases[i].err)
			expect_bad(&m, cases[i].err, "DONE:");
		else
			expect_good(&m);
	}
	sample(12, &m);
	m.done.status = 3;
	expect_bad(&m, -BDR_EFORMAT, "status 3 unknown");
}

Test(wire, report_rules)
{
	struct bdr_msg m;

	s_report(&m);
	expect_good(&m);
	m.report.state = BDR_REPORT_ACTIVATED, m.report.error[0] = '\0', m.report.version = 0;
	expect_good(&m);
	m.report.state = 5;
	expect_bad(&m, -BDR_EFORMAT, "REPORT: state 5 unknown");
	s_report(&m);
	strcpy(m.report.site, "");
	expect_bad(&m, -BDR_EFORMAT, "REPORT:");
	s_report(&m);
	strcpy(m.report.site, "a/b");
	expect_bad(&m, -BDR_EFORMAT, "REPORT:");
	s_report(&m);
	strcpy(m.report.package, "../x");
	expect_bad(&m, -BDR_EFORMAT, "REPORT:");
	s_report(&m);
	memset(m.report.site, 'a', BDR_MAX_SITE_NAME + 1); /* not terminated in time */
	expect_encode(&m, -BDR_ELIMIT, "REPORT: site name exceeds");
	s_report(&m);
	m.report.error[3] = '\n';
	expect_bad(&m, -BDR_EFORMAT, "REPORT: error: control byte");

	s_remove(&m);
	expect_good(&m);
	strcpy(m.remove.package, "a/b");
	expect_bad(&m, -BDR_EFORMAT, "REMOVE:");
	strcpy(m.remove.package, "");
	expect_bad(&m, -BDR_EFORMAT, "REMOVE:");
}

Test(wire, error_code)
{
	static const int32_t bad[] = { 0, 1, INT32_MAX };
	static const int32_t good[] = { -1, -BDR_EFORMAT, INT32_MIN };
	struct bdr_msg m;

	for (size_t i = 0; i < 3; i++) {
		sample(14, &m);
		m.error.code = bad[i];
		expect_bad(&m, -BDR_EFORMAT, "ERROR: code");
		m.error.code = good[i];
		expect_good(&m);
	}
}

/* The text16 fields of DONE, CANCEL and ERROR. */
static char *text_of(struct bdr_msg *m)
{
	switch (m->type) {
	case BDR_MSG_DONE: return m->done.message;
	case BDR_MSG_CANCEL: return m->cancel.reason;
	default: return m->error.message;
	}
}

Test(wire, text_bytes)
{
	static const size_t with_text[] = { 11, 13, 14 }; /* DONE, CANCEL, ERROR */
	static const uint8_t control[] = { 0x01, 0x09, 0x0a, 0x0d, 0x1b, 0x1f, 0x7f };
	static const uint8_t allowed[] = { 0x20, 0x7e, 0x80, 0xc3, 0xff };
	struct bdr_msg m;

	for (size_t s = 0; s < 3; s++) {
		for (size_t i = 0; i < sizeof(control); i++) {
			sample(with_text[s], &m);
			text_of(&m)[3] = (char)control[i];
			expect_bad(&m, -BDR_EFORMAT, "control byte");
		}
		for (size_t i = 0; i < sizeof(allowed); i++) {
			sample(with_text[s], &m);
			text_of(&m)[3] = (char)allowed[i];
			expect_good(&m);
		}
	}
}

Test(wire, text_lengths)
{
	static const size_t with_text[] = { 11, 13, 14 };
	struct bdr_msg m;
	struct tb t;

	for (size_t s = 0; s < 3; s++) {
		sample(with_text[s], &m);
		char *text = text_of(&m);
		memset(text, 'x', BDR_WIRE_TEXT_MAX);
		text[BDR_WIRE_TEXT_MAX] = '\0';
		expect_good(&m);
		text[BDR_WIRE_TEXT_MAX] = 'x'; /* 1025 bytes, no NUL */
		expect_bad(&m, -BDR_ELIMIT, "of 1025 bytes exceeds 1024");
	}
	/* A NUL, which only the bytes can carry. */
	tb_init(&t);
	tb_u8(&t, 7), tb_u64(&t, 1), tb_strn(&t, "a\0b", 3);
	expect_bad_tb(&t, -BDR_EFORMAT, "CANCEL: reason: control byte 0x00 at offset 1");
	/* Too long is a limit even when the bytes are not there. */
	tb_init(&t);
	tb_u8(&t, 8), tb_i32(&t, -1), tb_u16(&t, 2000);
	expect_bad_tb(&t, -BDR_ELIMIT, "ERROR: message of 2000 bytes");
}

/* ---- the encoder's output buffer ---- */

Test(wire, encoder_leaves_a_full_buffer_as_it_was)
{
	struct bdr_diag d;
	struct bdr_wbuf w;
	struct bdr_msg m;
	uint8_t *buf;
	size_t len;

	sample(9, &m);
	encode_ok(&m, &buf, &len);
	bdr_wbuf_init(&w, 3 + len - 1);
	bdr_w_bytes(&w, "abc", 3);
	cr_assert_eq(bdr_wire_encode(&m, &w, &d), -BDR_ELIMIT);
	cr_assert_not_null(strstr(d.msg, "CHUNK:"), "%s", d.msg);
	cr_assert_eq(w.len, 3);
	cr_assert_eq(w.err, 0, "the buffer stays usable");
	sample(15, &m);
	cr_assert_eq(bdr_wire_encode(&m, &w, &d), 0, "a smaller message still fits: %s", d.msg);
	cr_assert_eq(w.len, 3 + 9);
	bdr_wbuf_free(&w);

	bdr_wbuf_init(&w, len); /* exactly enough */
	sample(9, &m);
	cr_assert_eq(bdr_wire_encode(&m, &w, &d), 0, "%s", d.msg);
	cr_assert_arr_eq(w.buf, buf, len);
	bdr_wbuf_free(&w);
	free(buf);
}

Test(wire, encoder_appends)
{
	struct bdr_msg a, b, got;
	struct bdr_wbuf w;
	struct bdr_rbuf r;

	sample(1, &a);
	sample(3, &b);
	bdr_wbuf_init(&w, BDR_WIRE_MSG_MAX);
	cr_assert_eq(bdr_wire_encode(&a, &w, NULL), 0);
	size_t first = w.len;
	cr_assert_eq(bdr_wire_encode(&b, &w, NULL), 0);
	bdr_rbuf_init(&r, w.buf, w.len);
	decode_ok(bdr_r_view(&r, first), first, &got);
	assert_msg_eq(&a, &got);
	decode_ok(bdr_r_view(&r, w.len - first), w.len - first, &got);
	assert_msg_eq(&b, &got);
	bdr_wbuf_free(&w);
}

/* ---- helpers of wire.h ---- */

Test(wire, need_ref_reads_each_ref)
{
	struct bdr_chunk_ref refs[5], got;
	uint8_t packed[5 * 20];
	struct bdr_msg m = { .type = BDR_MSG_NEED, .need.count = 5, .need.refs = packed };

	for (uint32_t i = 0; i < 5; i++) {
		tu_fill_random(refs[i].id.b, 16, 100 + i);
		refs[i].len = 1u << (i * 4);
	}
	bdr_wire_need_pack(refs, 5, packed);
	for (uint32_t i = 0; i < 5; i++) {
		bdr_wire_need_ref(&m, i, &got);
		cr_assert_arr_eq(got.id.b, refs[i].id.b, 16);
		cr_assert_eq(got.len, refs[i].len);
	}
	cr_assert_arr_eq(packed + 80 + 16, "\x00\x00\x01\x00", 4, "len 65536, little-endian");
	bdr_wire_need_pack(refs, 0, NULL);
}

Test(wire, codec_allowed)
{
	cr_assert(bdr_wire_codec_allowed(BDR_CODEC_RAW, 0));
	cr_assert(bdr_wire_codec_allowed(BDR_CODEC_RAW, BDR_CAPS_ALL));
	cr_assert_not(bdr_wire_codec_allowed(BDR_CODEC_ZLIB, 0));
	cr_assert_not(bdr_wire_codec_allowed(BDR_CODEC_ZLIB, BDR_CAP_ZLIB_DICT | BDR_CAP_RESUME));
	cr_assert(bdr_wire_codec_allowed(BDR_CODEC_ZLIB, BDR_CAP_ZLIB));
	cr_assert_not(bdr_wire_codec_allowed(BDR_CODEC_ZLIB_DICT, BDR_CAP_ZLIB));
	cr_assert(bdr_wire_codec_allowed(BDR_CODEC_ZLIB_DICT, BDR_CAP_ZLIB_DICT));
	cr_assert(bdr_wire_codec_allowed(BDR_CODEC_ZLIB_DICT, BDR_CAPS_ALL));
	cr_assert_not(bdr_wire_codec_allowed(BDR_CODEC_ZSTD, BDR_CAP_ZLIB | BDR_CAP_ZLIB_DICT));
	cr_assert_not(bdr_wire_codec_allowed(BDR_CODEC_ZSTD_DICT, BDR_CAP_ZLIB | BDR_CAP_ZLIB_DICT));
	cr_assert(bdr_wire_codec_allowed(BDR_CODEC_ZSTD, BDR_CAP_ZSTD));
	cr_assert(bdr_wire_codec_allowed(BDR_CODEC_ZSTD_DICT, BDR_CAP_ZSTD));
	cr_assert(bdr_wire_codec_allowed(BDR_CODEC_ZSTD_DICT, BDR_CAPS_ALL));
	cr_assert_not(bdr_wire_codec_allowed(5, UINT32_MAX));
	cr_assert_not(bdr_wire_codec_allowed(0xff, UINT32_MAX));
}

Test(wire, type_names)
{
	static const char *const names[] = { "AUTH", "OFFER", "MANIFEST", "NEED", "CHUNK", "DONE",
					     "CANCEL", "ERROR", "PING", "PONG", "REPORT", "REMOVE" };

	for (uint8_t t = BDR_MSG_AUTH; t <= BDR_MSG_REMOVE; t++)
		cr_assert_str_eq(bdr_wire_type_name(t), names[t - 1]);
	cr_assert_str_eq(bdr_wire_type_name(0xff), "unknown");
}

/* bdr_wire_text's output is always a valid text16. */
static void assert_sendable(const char *text)
{
	struct bdr_msg m = { .type = BDR_MSG_CANCEL };

	cr_assert_leq(strlen(text), BDR_WIRE_TEXT_MAX);
	memcpy(m.cancel.reason, text, strlen(text) + 1);
	expect_good(&m);
}

Test(wire, text_sanitises)
{
	char out[BDR_WIRE_TEXT_MAX + 1], in[3000];

	bdr_wire_text(out, "disk full:\n\tretry\x7f\x1b[0m");
	cr_assert_str_eq(out, "disk full:??retry??[0m");
	assert_sendable(out);
	bdr_wire_text(out, NULL);
	cr_assert_str_eq(out, "");
	bdr_wire_text(out, "caf\xc3\xa9 \xff ok");
	cr_assert_str_eq(out, "caf\xc3\xa9 \xff ok", "bytes >= 0x80 pass (UTF-8 is not checked)");

	memset(in, 'a', sizeof(in) - 1);
	in[sizeof(in) - 1] = '\0';
	bdr_wire_text(out, in);
	cr_assert_eq(strlen(out), BDR_WIRE_TEXT_MAX);
	assert_sendable(out);
	memcpy(in + BDR_WIRE_TEXT_MAX - 1, "\xc3\xa9", 2); /* é across the cut */
	bdr_wire_text(out, in);
	cr_assert_eq(strlen(out), BDR_WIRE_TEXT_MAX - 1, "cut before the sequence");
	memset(in, 'a', sizeof(in) - 1);
	memcpy(in + BDR_WIRE_TEXT_MAX - 2, "\xc3\xa9", 2); /* é just inside */
	bdr_wire_text(out, in);
	cr_assert_eq(strlen(out), BDR_WIRE_TEXT_MAX);
	memset(in, 0x80, BDR_WIRE_TEXT_MAX + 10); /* not UTF-8: cut at the limit */
	bdr_wire_text(out, in);
	cr_assert_eq(strlen(out), BDR_WIRE_TEXT_MAX);
	memset(in, '\n', sizeof(in) - 1);
	bdr_wire_text(out, in);
	cr_assert_eq(strlen(out), BDR_WIRE_TEXT_MAX);
	cr_assert_eq(strspn(out, "?"), BDR_WIRE_TEXT_MAX);
	assert_sendable(out);
}

/* A CHUNK's head is its encoding up to the data: head || data is the whole
 * message, for every codec; any other type has no head. */
Test(wire, chunk_head_is_the_encoding_before_the_data)
{
	for (int i = 0; i < 3; i++) {
		void (*mk[])(struct bdr_msg *) = { s_chunk_raw, s_chunk_zlib, s_chunk_dict_chunk };
		struct bdr_wbuf whole, head;
		struct bdr_msg m = { 0 };

		mk[i](&m);
		bdr_wbuf_init(&whole, BDR_WIRE_MSG_MAX);
		bdr_wbuf_init(&head, BDR_WIRE_MSG_MAX);
		cr_assert_eq(bdr_wire_encode(&m, &whole, NULL), 0);
		cr_assert_eq(bdr_wire_encode_chunk_head(&m, &head, NULL), 0);
		cr_assert_eq(head.len + m.chunk.len, whole.len);
		cr_assert_arr_eq(head.buf, whole.buf, head.len);
		cr_assert_arr_eq(whole.buf + head.len, m.chunk.data, m.chunk.len);
		bdr_wbuf_free(&whole);
		bdr_wbuf_free(&head);
	}
	struct bdr_msg m = { .type = BDR_MSG_PING };
	struct bdr_wbuf w;
	struct bdr_diag d;

	bdr_wbuf_init(&w, BDR_WIRE_MSG_MAX);
	cr_assert_eq(bdr_wire_encode_chunk_head(&m, &w, &d), -EINVAL);
	cr_assert_eq(w.len, 0);
	bdr_wbuf_free(&w);
}
