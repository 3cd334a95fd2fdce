/* Chunk codecs (proto/wire.md, "Chunk codecs"): what a sender produces and
 * what a receiver accepts. Buffers are allocated at exactly the size the
 * contract allows (outcap = len, out = rawlen), so a write past them shows
 * under the sanitizers. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <zlib.h>
#include <zstd.h>

#include "bdr/chunker.h"
#include "bdr/compress.h"
#include "bdr/error.h"
#include "bdr/wire.h"
#include "testutil.h"

#define MIB (1024u * 1024u)

/* ---- data ---- */

/* Seeded text: words and punctuation, compresses to well under half. */
static void fill_text(uint8_t *buf, size_t len, uint64_t seed)
{
	static const char *const words[] = {
		"the",	   "chunk",   "package", "version", "site",	 "replicates", "over",
		"a",	   "slow",	   "link",	   "manifest", "bytes",	 "of",	       "and",
		"receiver", "sender",  "dictionary", "zlib",  "stream", "window",    "file",
		"library", "peer",	   "offer",   "need",	   "done",	 "error",      "with",
	};
	uint64_t x = seed * 0x9E3779B97F4A7C15ull + 7;
	size_t i = 0;

	while (i < len) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		const char *w = words[x % (sizeof(words) / sizeof(words[0]))];
		size_t n = strlen(w);

		for (size_t j = 0; j < n && i < len; j++)
			buf[i++] = (uint8_t)w[j];
		if (i < len)
			buf[i++] = (x >> 32) % 11 == 0 ? '\n' : (x >> 32) % 7 == 0 ? ',' : ' ';
	}
}

/* Lines of hex digits: half the size under deflate, but few repeats for it
 * to find within the chunk (a list of hashes). */
static void fill_hex(uint8_t *buf, size_t len, uint64_t seed)
{
	tu_fill_random(buf, len, seed);
	for (size_t i = 0; i < len; i++)
		buf[i] = i % 65 == 64 ? '\n' : (uint8_t)"0123456789abcdef"[buf[i] & 15];
}

enum kind { TEXT, RANDOM, MIXED };
static const char *const kind_name[] = { "text", "random", "mixed" };

/* MIXED: 4 KiB blocks, text and random in turn (a tar of some compressed
 * and some plain files). */
static uint8_t *make(enum kind kind, size_t len, uint64_t seed)
{
	uint8_t *buf = malloc(len ? len : 1);

	cr_assert_not_null(buf);
	if (kind == TEXT) {
		fill_text(buf, len, seed);
	} else if (kind == RANDOM) {
		tu_fill_random(buf, len, seed);
	} else {
		for (size_t off = 0, b = 0; off < len; off += 4096, b++) {
			size_t n = len - off < 4096 ? len - off : 4096;

			if (b % 2)
				tu_fill_random(buf + off, n, seed + b);
			else
				fill_text(buf + off, n, seed + b);
		}
	}
	return buf;
}

/* ---- helpers ---- */

struct enc {
	uint8_t *data; /* malloc'd, len bytes of capacity */
	uint32_t len;
	uint8_t codec;
};

static struct enc encode(struct bdr_compressor *c, const uint8_t *in, uint32_t len,
			 const uint8_t *dict, uint32_t dictlen)
{
	struct enc e = { .data = malloc(len) };
	int err;

	cr_assert_not_null(e.data);
	err = bdr_compress_chunk(c, in, len, dict, dictlen, e.data, len, &e.len, &e.codec);
	cr_assert_eq(err, 0, "compress %u bytes: %s", len, bdr_strerror(err));
	cr_assert_leq(e.len, len, "the encoded chunk is never larger than the chunk");
	if (e.codec == BDR_CODEC_RAW) {
		cr_assert_eq(e.len, len);
		cr_assert_arr_eq(e.data, in, len, "RAW is a copy");
	} else {
		cr_assert_lt((uint64_t)e.len * 100, (uint64_t)len * BDR_COMPRESS_KEEP_PCT,
			     "compressed output is kept only below %u%%", BDR_COMPRESS_KEEP_PCT);
		cr_assert(e.codec == (dict ? BDR_CODEC_ZLIB_DICT : BDR_CODEC_ZLIB) ||
				  e.codec == (dict ? BDR_CODEC_ZSTD_DICT : BDR_CODEC_ZSTD),
			  "codec %u", e.codec);
	}
	return e;
}

/* Decodes into a buffer of exactly rawlen bytes; returns the error. */
static int decode(struct bdr_decompressor *z, uint8_t codec, const uint8_t *in, uint32_t inlen,
		  const uint8_t *dict, uint32_t dictlen, uint32_t rawlen, uint8_t **out,
		  struct bdr_diag *d)
{
	uint8_t *buf = malloc(rawlen ? rawlen : 1);
	int err;

	cr_assert_not_null(buf);
	memset(d, 0, sizeof(*d));
	err = bdr_decompress_chunk(z, codec, in, inlen, dict, dictlen, buf, rawlen, d);
	if (out)
		*out = buf;
	else
		free(buf);
	return err;
}

static void expect_decodes(struct bdr_decompressor *z, const struct enc *e, const uint8_t *dict,
			   uint32_t dictlen, const uint8_t *raw, uint32_t rawlen)
{
	struct bdr_diag d;
	uint8_t *out;
	int err = decode(z, e->codec, e->data, e->len, dict, dictlen, rawlen, &out, &d);

	cr_assert_eq(err, 0, "decode codec %u, %u bytes: %s", e->codec, rawlen, d.msg);
	cr_assert_arr_eq(out, raw, rawlen, "round trip of %u bytes", rawlen);
	free(out);
}

/* A malformed input: -BDR_EFORMAT with a message saying why. */
static void expect_eformat(struct bdr_decompressor *z, uint8_t codec, const uint8_t *in,
			   uint32_t inlen, const uint8_t *dict, uint32_t dictlen, uint32_t rawlen,
			   const char *what)
{
	struct bdr_diag d;
	int err = decode(z, codec, in, inlen, dict, dictlen, rawlen, NULL, &d);

	cr_assert_eq(err, -BDR_EFORMAT, "%s: expected EFORMAT, got %d (%s)", what, err,
		     err ? bdr_strerror(err) : "accepted");
	cr_assert_neq(d.msg[0], '\0', "%s: the diag says why", what);
}

static struct bdr_compressor *compressor(void)
{
	struct bdr_compressor *c;

	cr_assert_eq(bdr_compressor_new(&c, 0), 0);
	cr_assert_not_null(c);
	return c;
}

static struct bdr_decompressor *decompressor(void)
{
	struct bdr_decompressor *z;

	cr_assert_eq(bdr_decompressor_new(&z), 0);
	cr_assert_not_null(z);
	return z;
}

/* ---- round trips ---- */

static const uint32_t sizes[] = {
	1, 2, 3, 64, 100, 1000, 1023, 1024, 1025, 4096, 4097, 8192, 65535, 65536, 65537,
	300000, BDR_CHUNK_MAX_LIMIT - 1, BDR_CHUNK_MAX_LIMIT,
};

Test(compress, round_trip_every_kind_and_size)
{
	struct bdr_compressor *c = compressor();
	struct bdr_decompressor *z = decompressor();
	uint8_t dict[BDR_CODEC_DICT_MAX];

	fill_text(dict, sizeof(dict), 99);
	for (int kind = TEXT; kind <= MIXED; kind++) {
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			uint32_t len = sizes[i];
			uint8_t *raw = make((enum kind)kind, len, len + (uint64_t)kind);
			struct enc plain = encode(c, raw, len, NULL, 0);
			struct enc with = encode(c, raw, len, dict, sizeof(dict));

			expect_decodes(z, &plain, NULL, 0, raw, len);
			expect_decodes(z, &with, dict, sizeof(dict), raw, len);
			/* What should happen to each kind, where it matters. */
			if (kind == RANDOM)
				cr_assert_eq(plain.codec, BDR_CODEC_RAW, "random %u bytes go RAW", len);
			if (kind != RANDOM && len >= 1024) {
				cr_assert_eq(plain.codec, BDR_CODEC_ZLIB, "%s %u bytes compress",
					     kind_name[kind], len);
				cr_assert_eq(with.codec, BDR_CODEC_ZLIB_DICT);
			}
			if (kind == TEXT && len >= 4096)
				cr_assert_lt(plain.len, len / 2, "text %u -> %u", len, plain.len);
			if (len == 1)
				cr_assert_eq(plain.codec, BDR_CODEC_RAW,
					     "one byte cannot get under 97%%");
			free(plain.data);
			free(with.data);
			free(raw);
		}
	}
	bdr_decompressor_free(z);
	bdr_compressor_free(c);
}

Test(compress, every_level_round_trips)
{
	uint32_t len = 100000;
	uint8_t *raw = make(MIXED, len, 5);
	struct bdr_decompressor *z = decompressor();
	struct bdr_compressor *c;

	for (int level = 1; level <= 9; level++) {
		cr_assert_eq(bdr_compressor_new(&c, level), 0, "level %d", level);
		struct enc e = encode(c, raw, len, NULL, 0);

		cr_assert_eq(e.codec, BDR_CODEC_ZLIB);
		expect_decodes(z, &e, NULL, 0, raw, len);
		free(e.data);
		bdr_compressor_free(c);
	}
	c = (struct bdr_compressor *)1;
	cr_assert_eq(bdr_compressor_new(&c, 10), -EINVAL);
	cr_assert_null(c, "*out is NULL on failure");
	cr_assert_eq(bdr_compressor_new(&c, -1), -EINVAL);
	bdr_compressor_free(NULL);
	bdr_decompressor_free(NULL);
	bdr_decompressor_free(z);
	free(raw);
}

/* ---- the sender's choices ---- */

Test(compress, random_data_goes_raw_by_the_precheck)
{
	struct bdr_compressor *c = compressor();
	uint32_t len = 256 * 1024;
	uint8_t *rnd = make(RANDOM, len, 1), *txt = make(TEXT, len, 1), *mix = make(MIXED, len, 1);
	uint8_t *rep = malloc(len);

	cr_assert(bdr_compress_looks_random(rnd, len));
	cr_assert_not(bdr_compress_looks_random(txt, len));
	cr_assert_not(bdr_compress_looks_random(mix, len), "half text is not judged random");
	/* Too short to sample: simply tried. */
	cr_assert_not(bdr_compress_looks_random(rnd, 1023));
	cr_assert(bdr_compress_looks_random(rnd, 1024));

	/* 1 KiB of noise repeated: every sampled byte looks random, but
	 * deflate finds the repeats. The pre-check alone decides RAW without
	 * deflating; without it (or with a dictionary) the chunk compresses. */
	for (uint32_t off = 0; off < len; off += 1024)
		memcpy(rep + off, rnd, 1024);
	cr_assert(bdr_compress_looks_random(rep, len));
	struct enc e = encode(c, rep, len, NULL, 0);
	cr_assert_eq(e.codec, BDR_CODEC_RAW, "the pre-check sends it RAW");
	free(e.data);
	bdr_compressor_set_precheck(c, false);
	e = encode(c, rep, len, NULL, 0);
	cr_assert_eq(e.codec, BDR_CODEC_ZLIB, "tried when the pre-check is off");
	cr_assert_lt(e.len, len / 20);
	free(e.data);
	/* Really random data still goes RAW: deflate cannot get it under 97%. */
	e = encode(c, rnd, len, NULL, 0);
	cr_assert_eq(e.codec, BDR_CODEC_RAW);
	free(e.data);
	bdr_compressor_set_precheck(c, true);
	e = encode(c, rep, len, rnd, 1024);
	cr_assert_eq(e.codec, BDR_CODEC_ZLIB_DICT, "a dictionary skips the pre-check");
	free(e.data);

	bdr_compressor_free(c);
	free(rnd), free(txt), free(mix), free(rep);
}

Test(compress, keep_threshold_is_strictly_below_97_percent)
{
	struct bdr_compressor *c = compressor();
	struct bdr_decompressor *z = decompressor();

	bdr_compressor_set_precheck(c, false);
	/* Text diluted with noise: for each size the result is either RAW or
	 * below the threshold (encode() checks), whichever it is. Some mixes
	 * land on each side. */
	int raw = 0, zl = 0;
	for (uint32_t pct = 0; pct <= 100; pct += 5) {
		uint32_t len = 20000;
		uint8_t *buf = make(TEXT, len, pct);
		uint8_t *noise = make(RANDOM, len, pct + 1000);

		memcpy(buf, noise, (size_t)len * pct / 100);
		struct enc e = encode(c, buf, len, NULL, 0);
		expect_decodes(z, &e, NULL, 0, buf, len);
		if (e.codec == BDR_CODEC_RAW)
			raw++;
		else
			zl++;
		free(e.data), free(buf), free(noise);
	}
	cr_assert_gt(raw, 0);
	cr_assert_gt(zl, 0);
	bdr_decompressor_free(z);
	bdr_compressor_free(c);
}

Test(compress, resembling_dictionary_shrinks_the_chunk)
{
	struct bdr_compressor *c = compressor();
	struct bdr_decompressor *z = decompressor();
	uint32_t len = 24 * 1024;
	uint8_t *chunk = malloc(len), dict[BDR_CODEC_DICT_MAX];

	/* The dictionary: other bytes, then an older version of the chunk a
	 * few edits apart. It ends the dictionary: deflate reaches back at
	 * most 32 KiB - 262 bytes, so the start of a full-size dictionary is
	 * out of reach. */
	uint8_t *old = dict + sizeof(dict) - len;
	fill_hex(chunk, len, 42);
	fill_text(dict, sizeof(dict) - len, 43);
	memcpy(old, chunk, len);
	for (uint32_t off = 1000; off < len; off += 5000)
		memcpy(old + off, "EDITED", 6);

	struct enc plain = encode(c, chunk, len, NULL, 0);
	struct enc with = encode(c, chunk, len, dict, sizeof(dict));
	cr_assert_eq(plain.codec, BDR_CODEC_ZLIB);
	cr_assert_eq(with.codec, BDR_CODEC_ZLIB_DICT);
	cr_assert_lt((uint64_t)with.len * 10, plain.len, "with dictionary %u, without %u",
		     with.len, plain.len);
	expect_decodes(z, &with, dict, sizeof(dict), chunk, len);

	/* wire.md: FDICT set, DICTID the Adler-32 of the dictionary. */
	uLong id = adler32(adler32(0, NULL, 0), dict, sizeof(dict));
	cr_assert(with.data[1] & 0x20, "FDICT");
	cr_assert_eq(((uint32_t)with.data[2] << 24 | (uint32_t)with.data[3] << 16 |
		      (uint32_t)with.data[4] << 8 | with.data[5]),
		     (uint32_t)id);
	cr_assert_not(plain.data[1] & 0x20, "codec ZLIB: no FDICT");

	/* Random bytes the receiver already holds compress to almost nothing. */
	uint8_t *rnd = make(RANDOM, 16384, 7);
	struct enc r = encode(c, rnd, 16384, rnd, 16384);
	cr_assert_eq(r.codec, BDR_CODEC_ZLIB_DICT);
	cr_assert_lt(r.len, 200);
	expect_decodes(z, &r, rnd, 16384, rnd, 16384);

	free(r.data), free(rnd);
	free(plain.data), free(with.data), free(chunk);
	bdr_decompressor_free(z);
	bdr_compressor_free(c);
}

Test(compress, encoder_rejects_bad_lengths)
{
	struct bdr_compressor *c = compressor();
	uint8_t *big = make(TEXT, BDR_CHUNK_MAX_LIMIT + 1, 1);
	uint8_t *out = malloc(BDR_CHUNK_MAX_LIMIT + 1);
	uint8_t dict[BDR_CODEC_DICT_MAX + 1];
	uint32_t outlen = 1;
	uint8_t codec = 9;

	fill_text(dict, sizeof(dict), 3);
	cr_assert_eq(bdr_compress_chunk(c, big, 0, NULL, 0, out, 100, &outlen, &codec), -EINVAL);
	cr_assert_eq(outlen, 0);
	cr_assert_eq(bdr_compress_chunk(c, big, BDR_CHUNK_MAX_LIMIT + 1, NULL, 0, out,
					BDR_CHUNK_MAX_LIMIT + 1, &outlen, &codec),
		     -EINVAL);
	cr_assert_eq(bdr_compress_chunk(c, big, 1000, NULL, 0, out, 999, &outlen, &codec), -EINVAL,
		     "outcap must hold len bytes");
	cr_assert_eq(bdr_compress_chunk(c, big, 1000, dict, 0, out, 1000, &outlen, &codec), -EINVAL,
		     "a dictionary of 0 bytes");
	cr_assert_eq(bdr_compress_chunk(c, big, 1000, dict, BDR_CODEC_DICT_MAX + 1, out, 1000,
					&outlen, &codec),
		     -BDR_ELIMIT);
	cr_assert_eq(bdr_compress_chunk(c, big, 1000, dict, BDR_CODEC_DICT_MAX, out, 1000, &outlen,
					&codec),
		     0);
	cr_assert_eq(codec, BDR_CODEC_ZLIB_DICT);
	/* The compressor still works after refusals. */
	cr_assert_eq(bdr_compress_chunk(c, big, 5000, NULL, 0, out, 5000, &outlen, &codec), 0);
	cr_assert_eq(codec, BDR_CODEC_ZLIB);
	free(big), free(out);
	bdr_compressor_free(c);
}

/* ---- the receiver's checks ---- */

struct fixture {
	struct bdr_compressor *c;
	struct bdr_decompressor *z;
	uint8_t *raw;
	uint32_t len;
	uint8_t dict[4096];
	struct enc zl, zd; /* codec 1 and codec 2 encodings of raw */
};

static void fixture_init(struct fixture *f, uint32_t len)
{
	f->c = compressor();
	f->z = decompressor();
	f->len = len;
	f->raw = make(TEXT, len, 11);
	fill_text(f->dict, sizeof(f->dict), 12);
	memcpy(f->dict + 100, f->raw, 2000); /* so the dictionary is used */
	f->zl = encode(f->c, f->raw, len, NULL, 0);
	f->zd = encode(f->c, f->raw, len, f->dict, sizeof(f->dict));
	cr_assert_eq(f->zl.codec, BDR_CODEC_ZLIB);
	cr_assert_eq(f->zd.codec, BDR_CODEC_ZLIB_DICT);
}

static void fixture_fini(struct fixture *f)
{
	/* Whatever was refused before, the decompressor still decodes. */
	expect_decodes(f->z, &f->zl, NULL, 0, f->raw, f->len);
	expect_decodes(f->z, &f->zd, f->dict, sizeof(f->dict), f->raw, f->len);
	free(f->zl.data), free(f->zd.data), free(f->raw);
	bdr_decompressor_free(f->z);
	bdr_compressor_free(f->c);
}

Test(compress, rejects_truncated_streams)
{
	struct fixture f;

	fixture_init(&f, 50000);
	const struct enc *encs[] = { &f.zl, &f.zd };
	for (int i = 0; i < 2; i++) {
		const struct enc *e = encs[i];
		uint32_t cuts[] = { 1, 2, 5, 6, 7, e->len / 4, e->len / 2, e->len - 5, e->len - 4,
				    e->len - 1 };

		for (size_t j = 0; j < sizeof(cuts) / sizeof(cuts[0]); j++) {
			char what[64];

			snprintf(what, sizeof(what), "codec %u cut to %u of %u", e->codec, cuts[j],
				 e->len);
			expect_eformat(f.z, e->codec, e->data, cuts[j], f.dict, sizeof(f.dict),
				       f.len, what);
		}
		expect_eformat(f.z, e->codec, e->data, 0, f.dict, sizeof(f.dict), f.len,
			       "no data at all");
	}
	fixture_fini(&f);
}

Test(compress, rejects_wrong_output_length)
{
	struct fixture f;

	fixture_init(&f, 50000);
	const struct enc *encs[] = { &f.zl, &f.zd };
	for (int i = 0; i < 2; i++) {
		const struct enc *e = encs[i];

		expect_eformat(f.z, e->codec, e->data, e->len, f.dict, sizeof(f.dict), f.len - 1,
			       "produces one byte more than rawlen");
		expect_eformat(f.z, e->codec, e->data, e->len, f.dict, sizeof(f.dict), f.len / 2,
			       "produces twice rawlen");
		expect_eformat(f.z, e->codec, e->data, e->len, f.dict, sizeof(f.dict), 1,
			       "rawlen 1");
		expect_eformat(f.z, e->codec, e->data, e->len, f.dict, sizeof(f.dict), f.len + 1,
			       "ends one byte before rawlen");
	}

	/* A small stream that expands hugely ("zip bomb") stops at rawlen. */
	uint8_t *zeros = calloc(1, BDR_CHUNK_MAX_LIMIT);
	struct enc bomb = encode(f.c, zeros, BDR_CHUNK_MAX_LIMIT, NULL, 0);
	cr_assert_lt(bomb.len, BDR_CHUNK_MAX_LIMIT / 100, "%u bytes", bomb.len);
	expect_eformat(f.z, BDR_CODEC_ZLIB, bomb.data, bomb.len, NULL, 0, 4096, "bomb");
	expect_decodes(f.z, &bomb, NULL, 0, zeros, BDR_CHUNK_MAX_LIMIT);
	free(bomb.data), free(zeros);
	fixture_fini(&f);
}

Test(compress, rejects_trailing_bytes)
{
	struct fixture f;

	fixture_init(&f, 30000);
	const struct enc *encs[] = { &f.zl, &f.zd };
	for (int i = 0; i < 2; i++) {
		const struct enc *e = encs[i];
		uint8_t *buf = malloc(e->len + 100);

		memcpy(buf, e->data, e->len);
		memset(buf + e->len, 0, 100);
		expect_eformat(f.z, e->codec, buf, e->len + 1, f.dict, sizeof(f.dict), f.len,
			       "one trailing byte");
		expect_eformat(f.z, e->codec, buf, e->len + 100, f.dict, sizeof(f.dict), f.len,
			       "100 trailing bytes");
		/* A second copy of the stream after the first. */
		uint8_t *two = malloc(2 * (size_t)e->len);
		memcpy(two, e->data, e->len);
		memcpy(two + e->len, e->data, e->len);
		expect_eformat(f.z, e->codec, two, 2 * e->len, f.dict, sizeof(f.dict), f.len,
			       "two streams");
		free(two), free(buf);
	}
	fixture_fini(&f);
}

/* A flipped bit is refused, or, where it only turns a match into an
 * equivalent one (same bytes from another distance), decodes to exactly the
 * chunk: never to other bytes, never to another error. The zlib header and
 * the Adler-32 trailer are always checked. */
Test(compress, rejects_corrupt_bytes)
{
	struct fixture f;

	/* Small enough to flip each byte of both streams. */
	fixture_init(&f, 3000);
	const struct enc *encs[] = { &f.zl, &f.zd };
	uint8_t *out = malloc(f.len);
	for (int i = 0; i < 2; i++) {
		const struct enc *e = encs[i];
		uint8_t *buf = malloc(e->len);
		uint32_t tried = 0, refused = 0;
		uint32_t hdr = e->codec == BDR_CODEC_ZLIB_DICT ? 6 : 2;

		for (uint32_t pos = 0; pos < e->len; pos++) {
			for (unsigned bit = 0; bit < 8; bit++) {
				struct bdr_diag d;
				int err;

				memcpy(buf, e->data, e->len);
				buf[pos] ^= (uint8_t)(1u << bit);
				err = bdr_decompress_chunk(f.z, e->codec, buf, e->len, f.dict,
							   sizeof(f.dict), out, f.len, &d);
				tried++;
				if (err == -BDR_EFORMAT) {
					refused++;
					continue;
				}
				cr_assert_eq(err, 0, "codec %u byte %u bit %u: %d", e->codec, pos, bit,
					     err);
				cr_assert_arr_eq(out, f.raw, f.len,
						 "codec %u byte %u bit %u decodes to other bytes",
						 e->codec, pos, bit);
				cr_assert(pos >= hdr && pos < e->len - 4,
					  "codec %u byte %u bit %u: header and trailer are checked",
					  e->codec, pos, bit);
			}
		}
		cr_assert_gt(refused * 10, tried * 9, "codec %u: %u of %u refused", e->codec, refused,
			     tried);
		/* One byte in the middle of the deflate data, replaced whole. */
		memcpy(buf, e->data, e->len);
		buf[e->len / 2] ^= 0xff;
		expect_eformat(f.z, e->codec, buf, e->len, f.dict, sizeof(f.dict), f.len,
			       "middle byte inverted");
		free(buf);
	}
	free(out);
	fixture_fini(&f);
}

Test(compress, dictionary_must_match_the_codec)
{
	struct fixture f;
	uint8_t other[4096];

	fixture_init(&f, 20000);
	/* Codec 1 whose stream asks for a dictionary, dictionary or not. */
	expect_eformat(f.z, BDR_CODEC_ZLIB, f.zd.data, f.zd.len, NULL, 0, f.len,
		       "codec 1 stream with FDICT");
	expect_eformat(f.z, BDR_CODEC_ZLIB, f.zd.data, f.zd.len, f.dict, sizeof(f.dict), f.len,
		       "codec 1 stream with FDICT, dictionary at hand");
	/* Codec 2 whose stream has no dictionary. */
	expect_eformat(f.z, BDR_CODEC_ZLIB_DICT, f.zl.data, f.zl.len, f.dict, sizeof(f.dict), f.len,
		       "codec 2 stream without FDICT");
	/* Codec 2 with another dictionary than the stream's: DICTID differs. */
	memcpy(other, f.dict, sizeof(other));
	other[4000] ^= 1;
	expect_eformat(f.z, BDR_CODEC_ZLIB_DICT, f.zd.data, f.zd.len, other, sizeof(other), f.len,
		       "one byte of the dictionary differs");
	expect_eformat(f.z, BDR_CODEC_ZLIB_DICT, f.zd.data, f.zd.len, f.dict, sizeof(f.dict) - 1,
		       f.len, "dictionary one byte short");
	fill_text(other, sizeof(other), 77);
	expect_eformat(f.z, BDR_CODEC_ZLIB_DICT, f.zd.data, f.zd.len, other, sizeof(other), f.len,
		       "another dictionary");
	fixture_fini(&f);
}

Test(compress, raw_and_unknown_codecs)
{
	struct fixture f;
	struct bdr_diag d;
	uint8_t *out;

	fixture_init(&f, 5000);
	cr_assert_eq(decode(f.z, BDR_CODEC_RAW, f.raw, f.len, NULL, 0, f.len, &out, &d), 0);
	cr_assert_arr_eq(out, f.raw, f.len);
	free(out);
	expect_eformat(f.z, BDR_CODEC_RAW, f.raw, f.len - 1, NULL, 0, f.len, "RAW one byte short");
	expect_eformat(f.z, BDR_CODEC_RAW, f.raw, f.len, NULL, 0, f.len - 1, "RAW one byte long");
	expect_eformat(f.z, BDR_CODEC_RAW, f.raw, 0, NULL, 0, f.len, "RAW empty");
	/* A zlib stream sent as RAW is just wrong-length data. */
	expect_eformat(f.z, BDR_CODEC_RAW, f.zl.data, f.zl.len, NULL, 0, f.len, "zlib as RAW");
	for (unsigned codec = 3; codec <= 255; codec += 21)
		expect_eformat(f.z, (uint8_t)codec, f.zl.data, f.zl.len, f.dict, sizeof(f.dict),
			       f.len, "unknown codec");
	expect_eformat(f.z, 255, f.zl.data, f.zl.len, NULL, 0, f.len, "codec 255");
	/* Not a zlib stream at all: gzip and raw deflate framings. */
	uint8_t gz[] = { 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
	expect_eformat(f.z, BDR_CODEC_ZLIB, gz, sizeof(gz), NULL, 0, 1, "gzip");
	expect_eformat(f.z, BDR_CODEC_ZLIB, f.zl.data + 2, f.zl.len - 2, NULL, 0, f.len,
		       "raw deflate without the zlib header");
	fixture_fini(&f);
}

Test(compress, limits)
{
	struct fixture f;
	struct bdr_diag d;
	uint8_t *big = calloc(1, BDR_CODEC_DICT_MAX + 1);

	fixture_init(&f, 5000);
	cr_assert_eq(decode(f.z, BDR_CODEC_ZLIB, f.zl.data, f.zl.len, NULL, 0, 0, NULL, &d),
		     -BDR_ELIMIT, "rawlen 0");
	cr_assert_neq(d.msg[0], '\0');
	cr_assert_eq(decode(f.z, BDR_CODEC_RAW, f.raw, 0, NULL, 0, 0, NULL, &d), -BDR_ELIMIT,
		     "RAW of rawlen 0");
	cr_assert_eq(decode(f.z, BDR_CODEC_ZLIB, f.zl.data, f.zl.len, NULL, 0,
			    BDR_CHUNK_MAX_LIMIT + 1, NULL, &d),
		     -BDR_ELIMIT, "rawlen over 1 MiB");
	cr_assert_eq(decode(f.z, BDR_CODEC_ZLIB_DICT, f.zd.data, f.zd.len, big,
			    BDR_CODEC_DICT_MAX + 1, f.len, NULL, &d),
		     -BDR_ELIMIT, "dictionary over 32 KiB");
	cr_assert_eq(decode(f.z, BDR_CODEC_ZLIB, f.zl.data, BDR_CODEC_DATA_MAX + 1, NULL, 0, f.len,
			    NULL, &d),
		     -BDR_ELIMIT, "data over BDR_CODEC_DATA_MAX");
	/* The largest allowed values pass the checks. */
	uint8_t *raw = make(RANDOM, BDR_CHUNK_MAX_LIMIT, 3);
	uint8_t *out;
	cr_assert_eq(decode(f.z, BDR_CODEC_RAW, raw, BDR_CHUNK_MAX_LIMIT, big, BDR_CODEC_DICT_MAX,
			    BDR_CHUNK_MAX_LIMIT, &out, &d),
		     0, "%s", d.msg);
	cr_assert_arr_eq(out, raw, BDR_CHUNK_MAX_LIMIT);
	free(out), free(raw), free(big);
	fixture_fini(&f);
}

/* ---- reuse ---- */

Test(compress, objects_are_reused_across_chunks)
{
	struct bdr_compressor *c = compressor();
	struct bdr_decompressor *z = decompressor();
	uint8_t dict[8192];

	fill_text(dict, sizeof(dict), 500);
	for (int i = 0; i < 200; i++) {
		uint32_t len = 1 + (uint32_t)(i * 7919) % 70000;
		enum kind kind = (enum kind)(i % 3);
		uint8_t *raw = make(kind, len, (uint64_t)i);
		bool use_dict = i % 4 == 1;
		const uint8_t *dp = use_dict ? dict : NULL;
		uint32_t dl = use_dict ? sizeof(dict) : 0;

		if (i % 5 == 0)
			memcpy(raw, dict, len < 2048 ? len : 2048);
		struct enc e = encode(c, raw, len, dp, dl);

		/* State reset: the same bytes a fresh compressor produces. */
		struct bdr_compressor *fresh = compressor();
		struct enc f = encode(fresh, raw, len, dp, dl);
		cr_assert_eq(e.codec, f.codec, "chunk %d", i);
		cr_assert_eq(e.len, f.len, "chunk %d", i);
		cr_assert_arr_eq(e.data, f.data, e.len, "chunk %d", i);
		bdr_compressor_free(fresh);
		free(f.data);

		expect_decodes(z, &e, dp, dl, raw, len);
		/* Every so often a refused chunk in between: state after an
		 * error must not leak into the next chunk. */
		if (i % 7 == 3 && e.codec != BDR_CODEC_RAW) {
			uint8_t b = e.data[e.len / 2];

			e.data[e.len / 2] ^= 0x55;
			expect_eformat(z, e.codec, e.data, e.len, dp, dl, len, "corrupt in between");
			e.data[e.len / 2] = b;
			expect_eformat(z, e.codec, e.data, e.len / 2, dp, dl, len,
				       "truncated in between");
			expect_decodes(z, &e, dp, dl, raw, len);
		}
		free(e.data);
		free(raw);
	}
	bdr_decompressor_free(z);
	bdr_compressor_free(c);
}

/* A compression that did not fit (RAW after trying) leaves deflate
 * mid-stream; the next chunk must not see it. */
Test(compress, reuse_after_a_chunk_that_did_not_fit)
{
	struct bdr_compressor *c = compressor();
	struct bdr_decompressor *z = decompressor();
	uint32_t len = 40000;
	uint8_t *rnd = make(RANDOM, len, 1), *txt = make(TEXT, len, 2);

	bdr_compressor_set_precheck(c, false);
	for (int i = 0; i < 10; i++) {
		struct enc r = encode(c, rnd, len, i % 2 ? txt : NULL, i % 2 ? 32768 : 0);
		struct enc t = encode(c, txt, len, NULL, 0);

		cr_assert_eq(r.codec, BDR_CODEC_RAW);
		cr_assert_eq(t.codec, BDR_CODEC_ZLIB);
		expect_decodes(z, &t, NULL, 0, txt, len);
		/* A codec-1 stream after a dictionary chunk has no FDICT. */
		cr_assert_not(t.data[1] & 0x20);
		free(r.data), free(t.data);
	}
	free(rnd), free(txt);
	bdr_decompressor_free(z);
	bdr_compressor_free(c);
}

/* ---- zstd (codecs 3 and 4) ---- */

static struct bdr_compressor *zstd_compressor(void)
{
	struct bdr_compressor *c;

	cr_assert_eq(bdr_compressor_new_zstd(&c, 0), 0);
	cr_assert_not_null(c);
	return c;
}

/* The fixture's data as codecs 3 and 4, from the fixture's raw and dict. */
struct zfix {
	struct fixture f;
	struct bdr_compressor *zc;
	struct enc z3, z4;
};

static void zfix_init(struct zfix *x, uint32_t len)
{
	fixture_init(&x->f, len);
	x->zc = zstd_compressor();
	x->z3 = encode(x->zc, x->f.raw, len, NULL, 0);
	x->z4 = encode(x->zc, x->f.raw, len, x->f.dict, sizeof(x->f.dict));
	cr_assert_eq(x->z3.codec, BDR_CODEC_ZSTD);
	cr_assert_eq(x->z4.codec, BDR_CODEC_ZSTD_DICT);
}

static void zfix_fini(struct zfix *x)
{
	/* Whatever was refused before, the decompressor still decodes. */
	expect_decodes(x->f.z, &x->z3, NULL, 0, x->f.raw, x->f.len);
	expect_decodes(x->f.z, &x->z4, x->f.dict, sizeof(x->f.dict), x->f.raw, x->f.len);
	free(x->z3.data), free(x->z4.data);
	bdr_compressor_free(x->zc);
	fixture_fini(&x->f);
}

Test(compress, zstd_round_trip_every_kind_and_size)
{
	struct bdr_compressor *c = zstd_compressor();
	struct bdr_decompressor *z = decompressor();
	uint8_t dict[BDR_CODEC_DICT_MAX];

	fill_text(dict, sizeof(dict), 99);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		for (int k = TEXT; k <= MIXED; k++) {
			uint32_t len = sizes[i];
			uint8_t *raw = make((enum kind)k, len, len + (uint32_t)k);
			struct enc plain = encode(c, raw, len, NULL, 0);
			struct enc with = encode(c, raw, len, dict, sizeof(dict));

			if (k == TEXT && len >= 1000) {
				cr_assert_eq(plain.codec, BDR_CODEC_ZSTD, "%u bytes of text", len);
				cr_assert_eq(with.codec, BDR_CODEC_ZSTD_DICT, "%u bytes of text", len);
			}
			if (k == RANDOM)
				cr_assert_eq(plain.codec, BDR_CODEC_RAW, "random %u bytes go RAW", len);
			expect_decodes(z, &plain, NULL, 0, raw, len);
			expect_decodes(z, &with, dict, sizeof(dict), raw, len);
			free(plain.data), free(with.data), free(raw);
		}
	}
	bdr_decompressor_free(z);
	bdr_compressor_free(c);
}

/* The prefix is the window codec 2 would name: a chunk that repeats it
 * costs a few bytes with it, and a zlib chunk decodes unchanged on the
 * same decompressor in between. */
Test(compress, zstd_dictionary_is_the_held_window)
{
	struct bdr_compressor *c = zstd_compressor(), *zl = compressor();
	struct bdr_decompressor *z = decompressor();
	uint32_t len = 30000;
	uint8_t *raw = make(RANDOM, len, 5), *dict = malloc(BDR_CODEC_DICT_MAX);

	tu_fill_random(dict, BDR_CODEC_DICT_MAX, 6);
	memcpy(dict + 1000, raw, len); /* the old bytes of a rebuilt binary */
	raw[len / 2] ^= 1;
	struct enc with = encode(c, raw, len, dict, BDR_CODEC_DICT_MAX);
	struct enc z2 = encode(zl, raw, len, dict, BDR_CODEC_DICT_MAX);

	cr_assert_eq(with.codec, BDR_CODEC_ZSTD_DICT);
	cr_assert_lt(with.len, 200, "%u bytes with the held window", with.len);
	expect_decodes(z, &with, dict, BDR_CODEC_DICT_MAX, raw, len);
	expect_decodes(z, &z2, dict, BDR_CODEC_DICT_MAX, raw, len);
	expect_decodes(z, &with, dict, BDR_CODEC_DICT_MAX, raw, len);
	/* The wrong window does not give the chunk back (the receiver's id
	 * check refuses what it gives). */
	uint8_t *out;
	struct bdr_diag d;
	dict[1000 + len / 4] ^= 0xff;
	int err = decode(z, BDR_CODEC_ZSTD_DICT, with.data, with.len, dict, BDR_CODEC_DICT_MAX, len,
			 &out, &d);
	cr_assert(err == -BDR_EFORMAT || (err == 0 && memcmp(out, raw, len)), "%d", err);
	free(out);
	free(with.data), free(z2.data), free(raw), free(dict);
	bdr_decompressor_free(z);
	bdr_compressor_free(zl);
	bdr_compressor_free(c);
}

Test(compress, zstd_rejects_truncated_and_trailing)
{
	struct zfix x;

	zfix_init(&x, 50000);
	const struct enc *encs[] = { &x.z3, &x.z4 };
	for (int i = 0; i < 2; i++) {
		const struct enc *e = encs[i];
		uint32_t cuts[] = { 1, 3, 4, 5, 6, e->len / 2, e->len - 1 };
		uint8_t *longer = malloc(e->len + 4);

		for (size_t j = 0; j < sizeof(cuts) / sizeof(cuts[0]); j++)
			expect_eformat(x.f.z, e->codec, e->data, cuts[j], x.f.dict, sizeof(x.f.dict),
				       x.f.len, "cut short");
		/* A second frame, or garbage, after the first. */
		memcpy(longer, e->data, e->len);
		memcpy(longer + e->len, "\x28\xb5\x2f\xfd", 4);
		expect_eformat(x.f.z, e->codec, longer, e->len + 4, x.f.dict, sizeof(x.f.dict),
			       x.f.len, "bytes after the frame");
		free(longer);
	}
	/* zlib bytes as zstd, zstd bytes as zlib. */
	expect_eformat(x.f.z, BDR_CODEC_ZSTD, x.f.zl.data, x.f.zl.len, NULL, 0, x.f.len,
		       "zlib as codec 3");
	expect_eformat(x.f.z, BDR_CODEC_ZLIB, x.z3.data, x.z3.len, NULL, 0, x.f.len,
		       "zstd as codec 1");
	expect_eformat(x.f.z, BDR_CODEC_RAW, x.z3.data, x.z3.len, NULL, 0, x.f.len,
		       "zstd as RAW");
	zfix_fini(&x);
}

/* Corrupt frames: refused, or (the payload carries no checksum) decoded to
 * other bytes that the chunk's id then refuses; never more than rawlen,
 * never a crash (the sanitizers watch). */
Test(compress, zstd_corrupt_frames)
{
	struct zfix x;
	uint8_t *buf;
	int refused = 0;

	zfix_init(&x, 50000);
	buf = malloc(x.z4.len);
	for (uint32_t pos = 0; pos < x.z4.len; pos += 1 + pos / 8) {
		uint8_t *out;
		struct bdr_diag d;

		memcpy(buf, x.z4.data, x.z4.len);
		buf[pos] ^= 0x5a;
		int err = decode(x.f.z, BDR_CODEC_ZSTD_DICT, buf, x.z4.len, x.f.dict,
				 sizeof(x.f.dict), x.f.len, &out, &d);
		cr_assert(err == 0 || err == -BDR_EFORMAT, "flip at %u: %d", pos, err);
		if (err == 0)
			cr_assert(memcmp(out, x.f.raw, x.f.len), "flip at %u decoded the chunk", pos);
		refused += err != 0;
		free(out);
	}
	cr_assert_gt(refused, 0);
	/* The magic number. */
	memcpy(buf, x.z4.data, x.z4.len);
	buf[0] ^= 1;
	expect_eformat(x.f.z, BDR_CODEC_ZSTD_DICT, buf, x.z4.len, x.f.dict, sizeof(x.f.dict),
		       x.f.len, "bad magic");
	free(buf);
	zfix_fini(&x);
}

Test(compress, zstd_content_size_must_be_the_chunks)
{
	struct zfix x;
	struct bdr_diag d;

	zfix_init(&x, 50000);
	const struct enc *encs[] = { &x.z3, &x.z4 };
	for (int i = 0; i < 2; i++) {
		const struct enc *e = encs[i];

		cr_assert_eq(decode(x.f.z, e->codec, e->data, e->len, x.f.dict, sizeof(x.f.dict),
				    x.f.len - 1, NULL, &d), -BDR_EFORMAT);
		cr_assert_not_null(strstr(d.msg, "content size 50000 is not the chunk's 49999"),
				   "%s", d.msg);
		expect_eformat(x.f.z, e->codec, e->data, e->len, x.f.dict, sizeof(x.f.dict),
			       x.f.len + 1, "one byte short of rawlen");
		expect_eformat(x.f.z, e->codec, e->data, e->len, x.f.dict, sizeof(x.f.dict), 1,
			       "rawlen 1");
	}

	/* A frame without its content size (a streaming encoder's). */
	ZSTD_CCtx *cc = ZSTD_createCCtx();
	uint8_t *buf = malloc(ZSTD_compressBound(x.f.len));
	ZSTD_outBuffer o = { buf, ZSTD_compressBound(x.f.len), 0 };
	ZSTD_inBuffer in = { x.f.raw, x.f.len, 0 };
	cr_assert_eq(ZSTD_compressStream2(cc, &o, &in, ZSTD_e_continue), 0);
	in.size = in.pos = 0;
	cr_assert_eq(ZSTD_compressStream2(cc, &o, &in, ZSTD_e_end), 0);
	cr_assert_eq(decode(x.f.z, BDR_CODEC_ZSTD, buf, (uint32_t)o.pos, NULL, 0, x.f.len, NULL, &d),
		     -BDR_EFORMAT);
	cr_assert_not_null(strstr(d.msg, "no content size"), "%s", d.msg);
	free(buf);
	ZSTD_freeCCtx(cc);
	zfix_fini(&x);
}

/* A frame declaring a window over 2^BDR_ZSTD_WINDOWLOG_MAX is refused from
 * its header, whatever its content size: the decoder never sizes anything
 * by what the peer asks. */
Test(compress, zstd_window_over_the_cap)
{
	struct zfix x;
	struct bdr_diag d;
	ZSTD_CCtx *cc = ZSTD_createCCtx();
	uint32_t len = 50000;
	size_t cap = ZSTD_compressBound(len), n;
	uint8_t *buf = malloc(cap);

	zfix_init(&x, len);
	/* A multi-segment frame (window 1 KiB < content): it carries a
	 * window descriptor byte after the frame header descriptor. */
	cr_assert_not(ZSTD_isError(ZSTD_CCtx_setParameter(cc, ZSTD_c_windowLog, 10)));
	n = ZSTD_compress2(cc, buf, cap, x.f.raw, len);
	cr_assert_not(ZSTD_isError(n));
	cr_assert_eq(buf[4] & 0x20, 0, "not single-segment");
	expect_decodes(x.f.z, &(struct enc){ buf, (uint32_t)n, BDR_CODEC_ZSTD }, NULL, 0, x.f.raw,
		       len);
	/* Window descriptor: exponent << 3 | mantissa, window 2^(10 + exp). */
	buf[5] = (uint8_t)((BDR_ZSTD_WINDOWLOG_MAX + 1 - 10) << 3);
	cr_assert_eq(decode(x.f.z, BDR_CODEC_ZSTD, buf, (uint32_t)n, NULL, 0, len, NULL, &d),
		     -BDR_EFORMAT);
	cr_assert_not_null(strstr(d.msg, "window of 4194304 bytes exceeds 2097152"), "%s", d.msg);
	buf[5] = (uint8_t)((30 - 10) << 3); /* 1 GiB */
	expect_eformat(x.f.z, BDR_CODEC_ZSTD, buf, (uint32_t)n, NULL, 0, len, "1 GiB window");
	/* At the cap it decodes. */
	buf[5] = (uint8_t)((BDR_ZSTD_WINDOWLOG_MAX - 10) << 3);
	expect_decodes(x.f.z, &(struct enc){ buf, (uint32_t)n, BDR_CODEC_ZSTD }, NULL, 0, x.f.raw,
		       len);
	free(buf);
	ZSTD_freeCCtx(cc);
	zfix_fini(&x);
}

/* The receiver's gate before any decode: codecs 3 and 4 only under
 * BDR_CAP_ZSTD, so a peer that did not agree to zstd is never decoded
 * with it. */
Test(compress, zstd_codecs_need_the_capability)
{
	const uint32_t dict_only = BDR_CAP_ZLIB | BDR_CAP_ZLIB_DICT;

	cr_assert_not(bdr_wire_codec_allowed(BDR_CODEC_ZSTD, dict_only));
	cr_assert_not(bdr_wire_codec_allowed(BDR_CODEC_ZSTD_DICT, dict_only));
	cr_assert(bdr_wire_codec_allowed(BDR_CODEC_ZLIB_DICT, dict_only));
	cr_assert(bdr_wire_codec_allowed(BDR_CODEC_ZSTD, dict_only | BDR_CAP_ZSTD));
	cr_assert(bdr_wire_codec_allowed(BDR_CODEC_ZSTD_DICT, dict_only | BDR_CAP_ZSTD));
	cr_assert_not(bdr_wire_codec_allowed(BDR_CODEC_ZSTD_DICT + 1, UINT32_MAX));
}

Test(compress, zstd_levels)
{
	struct bdr_compressor *c;

	cr_assert_eq(bdr_compressor_new_zstd(&c, 0), 0);
	bdr_compressor_free(c);
	cr_assert_eq(bdr_compressor_new_zstd(&c, BDR_ZSTD_LEVEL_MAX), 0);
	bdr_compressor_free(c);
	cr_assert_eq(bdr_compressor_new_zstd(&c, BDR_ZSTD_LEVEL_MAX + 1), -EINVAL);
	cr_assert_null(c);
	cr_assert_eq(bdr_compressor_new_zstd(&c, -1), -EINVAL);
}
