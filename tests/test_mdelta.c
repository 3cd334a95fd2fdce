/* Manifest deltas (proto/wire.md, "Manifest delta"). The reference is the
 * spec, not mdelta.c: the dw_* writer below lays deltas out by hand and
 * hashes with libsodium directly, and op_list() is an independent reader
 * of the op list that checks what the encoder promises (ops of at least
 * one byte, COPYs worth their header, no two ADDs in a row, adjacent
 * COPYs merged). Edits of every kind round-trip; real manifests (built
 * through the core API, and the corpora's v1 -> v2 with BDR_CORPORA set)
 * give deltas that are a small fraction of the manifest; every malformed
 * class is refused by the decoder with the documented error. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "bdr/error.h"
#include "bdr/library.h"
#include "bdr/manifest.h"
#include "bdr/mdelta.h"
#include "testutil.h"

#define HDR 73u /* format u8, out_len u64, two BLAKE2b-256 */
#define KIB 1024u
#define MIB (1024u * 1024u)

/* ---- the independent delta writer ---- */

struct dw {
	uint8_t *b;
	size_t n, cap;
};

static void dw_raw(struct dw *t, const void *p, size_t n)
{
	if (t->n + n > t->cap) {
		t->cap = (t->n + n) * 2 + 64;
		t->b = realloc(t->b, t->cap);
		cr_assert_not_null(t->b);
	}
	if (n)
		memcpy(t->b + t->n, p, n);
	t->n += n;
}

static void dw_le(struct dw *t, uint64_t v, int width)
{
	for (int i = 0; i < width; i++) {
		uint8_t c = (uint8_t)(v >> (8 * i));
		dw_raw(t, &c, 1);
	}
}

static void blake(const void *p, size_t n, uint8_t out[32])
{
	cr_assert_eq(crypto_generichash(out, 32, p, n, NULL, 0), 0);
}

/* The header of a delta from base to cur, with the given format and
 * declared length. */
static void dw_header(struct dw *t, uint8_t format, uint64_t out_len, const uint8_t *base,
		      size_t blen, const uint8_t *cur, size_t clen)
{
	uint8_t h[32];

	t->n = 0;
	dw_le(t, format, 1);
	dw_le(t, out_len, 8);
	blake(base, blen, h);
	dw_raw(t, h, 32);
	blake(cur, clen, h);
	dw_raw(t, h, 32);
}

static void dw_copy(struct dw *t, uint64_t off, uint32_t len)
{
	dw_le(t, 1, 1), dw_le(t, off, 8), dw_le(t, len, 4);
}

static void dw_add(struct dw *t, const void *p, uint32_t len)
{
	dw_le(t, 2, 1), dw_le(t, len, 4), dw_raw(t, p, len);
}

/* ---- the independent reader ---- */

struct op {
	uint8_t code;
	uint64_t off; /* COPY */
	uint32_t len;
};

static uint64_t le(const uint8_t *p, int width)
{
	uint64_t v = 0;

	for (int i = width - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* The ops of an encoder's delta from base to cur (the delta is trusted to
 * be in bounds: the encoder wrote it); checks the header and the
 * encoder's promises. Returns the number of ops (at most max). */
static size_t op_list(const uint8_t *d, size_t dlen, const uint8_t *base, size_t blen,
		      const uint8_t *cur, size_t clen, struct op *ops, size_t max)
{
	struct op prev = { 0 };
	uint8_t h[32];
	uint64_t done = 0;
	size_t i = HDR, n = 0;

	cr_assert_geq(dlen, HDR);
	cr_assert_eq(d[0], 1, "format");
	cr_assert_eq(le(d + 1, 8), clen, "declared length");
	blake(base, blen, h);
	cr_assert_arr_eq(d + 9, h, 32, "base hash");
	blake(cur, clen, h);
	cr_assert_arr_eq(d + 41, h, 32, "result hash");
	while (i < dlen) {
		struct op o = { .code = d[i] };
		if (o.code == 1) {
			o.off = le(d + i + 1, 8), o.len = (uint32_t)le(d + i + 9, 4), i += 13;
			cr_assert_leq(o.off + o.len, blen);
			cr_assert_arr_eq(base + o.off, cur + done, o.len, "COPY %zu content", n);
			cr_assert_geq(o.len, 24, "op %zu: a COPY of %u bytes costs more than it saves", n,
				      o.len);
			if (prev.code == 1)
				cr_assert_neq(prev.off + prev.len, o.off,
					      "op %zu: adjacent COPYs not merged", n);
		} else {
			cr_assert_eq(o.code, 2, "op %zu: code %u", n, o.code);
			o.len = (uint32_t)le(d + i + 1, 4), i += 5;
			cr_assert_arr_eq(d + i, cur + done, o.len, "ADD %zu content", n);
			i += o.len;
			cr_assert_neq(prev.code, 2, "op %zu: two ADDs in a row", n);
		}
		cr_assert_gt(o.len, 0, "op %zu has length 0", n);
		done += o.len;
		cr_assert_leq(i, dlen);
		if (n < max)
			ops[n] = o;
		prev = o;
		n++;
	}
	cr_assert_eq(done, clen, "ops produce %" PRIu64 " bytes, not %zu", done, clen);
	return n;
}

/* ---- round trips ---- */

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Encodes, checks the delta with op_list, applies it (with max_out just
 * enough, and one byte short); returns the delta's length, and its ops in
 * ops[0..max) and *nops if ops is not NULL. */
static size_t round_trip_ops(const uint8_t *base, size_t blen, const uint8_t *cur, size_t clen,
			     struct op *ops, size_t max, size_t *nops)
{
	struct bdr_diag d = { { 0 } };
	uint8_t *delta, *out;
	size_t dlen, olen, n;
	int rc;

	rc = bdr_mdelta_encode(base, blen, cur, clen, &delta, &dlen);
	cr_assert_eq(rc, 0, "encode: %s", bdr_strerror(rc));
	cr_assert_leq(dlen, clen + HDR + 5, "delta of %zu bytes for %zu: over the bound", dlen, clen);
	n = op_list(delta, dlen, base, blen, cur, clen, ops, ops ? max : 0);
	if (nops)
		*nops = n;
	rc = bdr_mdelta_apply(base, blen, delta, dlen, clen, &out, &olen, &d);
	cr_assert_eq(rc, 0, "apply: %s: %s", bdr_strerror(rc), d.msg);
	cr_assert_eq(olen, clen);
	cr_assert_arr_eq(out, cur, clen, "the result differs from cur");
	free(out);
	rc = bdr_mdelta_apply(base, blen, delta, dlen, clen - 1, &out, &olen, &d);
	cr_assert_eq(rc, -BDR_ELIMIT, "max_out one byte short: %s", bdr_strerror(rc));
	cr_assert_null(out);
	free(delta);
	return dlen;
}

static size_t round_trip(const uint8_t *base, size_t blen, const uint8_t *cur, size_t clen)
{
	return round_trip_ops(base, blen, cur, clen, NULL, 0, NULL);
}

/* A growable byte string and random edits of it. */
struct buf {
	uint8_t *b;
	size_t n;
};

static uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static size_t below(uint64_t *s, size_t n)
{
	return n ? (size_t)(rnd(s) % n) : 0;
}

static void buf_insert(struct buf *x, size_t at, const uint8_t *p, size_t n)
{
	x->b = realloc(x->b, x->n + n + 1);
	cr_assert_not_null(x->b);
	memmove(x->b + at + n, x->b + at, x->n - at);
	memcpy(x->b + at, p, n);
	x->n += n;
}

static void buf_delete(struct buf *x, size_t at, size_t n)
{
	memmove(x->b + at, x->b + at + n, x->n - at - n);
	x->n -= n;
}

enum edit { INSERT, DELETE, REPLACE, MOVE, DUPLICATE, NEDITS };

/* One random edit of up to maxlen bytes; returns the bytes it brings in
 * that the base may not hold (inserted or replaced). */
static size_t edit(struct buf *x, uint64_t *s, size_t maxlen)
{
	size_t n = 1 + below(s, maxlen), at = below(s, x->n + 1), to;
	uint8_t *tmp;

	if (n > x->n / 2)
		n = x->n / 2 + 1;
	tmp = malloc(n);
	tu_fill_random(tmp, n, rnd(s));
	switch ((enum edit)below(s, NEDITS)) {
	case INSERT: buf_insert(x, at, tmp, n); break;
	case DELETE:
		n = at + n > x->n ? x->n - at : n;
		buf_delete(x, at, n);
		n = 0;
		break;
	case REPLACE:
		n = at + n > x->n ? x->n - at : n;
		memcpy(x->b + at, tmp, n);
		break;
	case MOVE:
	case DUPLICATE:
		n = at + n > x->n ? x->n - at : n;
		memcpy(tmp, x->b + at, n);
		if (below(s, 2))
			buf_delete(x, at, n);
		to = below(s, x->n + 1);
		buf_insert(x, to, tmp, n);
		n = 0;
		break;
	default: break;
	}
	free(tmp);
	return n;
}

/* Base contents of three kinds: noise, text with many repeats, and
 * manifest-like records (a name, 48 bytes of fields, 20-byte refs). */
static void fill_base(struct buf *x, size_t len, int kind, uint64_t seed)
{
	static const char *const words[] = { "lib", "src", "index.js", "node_modules", "dist",
					     "README.md", "package.json", "/", "-", "v1.2.3" };
	uint64_t s = seed;

	x->b = malloc(len + 1);
	x->n = len;
	cr_assert_not_null(x->b);
	if (kind == 0) {
		tu_fill_random(x->b, len, seed);
		return;
	}
	for (size_t i = 0; i < len;) {
		uint8_t rec[400];
		size_t n;
		if (kind == 1) {
			const char *w = words[below(&s, 10)];
			n = strlen(w);
			memcpy(rec, w, n);
		} else {
			n = 2 + 12 + 48 + 20 * below(&s, 8);
			tu_fill_random(rec, n, rnd(&s));
			memcpy(rec, "\x0c\x00dir/file", 10);
			memset(rec + 14 + 16, 0, 8); /* a mostly zero size field */
		}
		n = n < len - i ? n : len - i;
		memcpy(x->b + i, rec, n);
		i += n;
	}
}

Test(mdelta, random_edits_round_trip)
{
	static const size_t sizes[] = { 1, 23, 24, 100, 4 * KIB, 64 * KIB, 700 * KIB };
	uint64_t s = 42;

	for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
		for (int kind = 0; kind < 3; kind++) {
			for (int trial = 0; trial < 4; trial++) {
				struct buf base, cur;
				int nedits = 1 + (int)below(&s, 1 + sizes[si] / 2048);
				fill_base(&base, sizes[si], kind, rnd(&s));
				cur.n = base.n;
				cur.b = malloc(base.n + 1);
				memcpy(cur.b, base.b, base.n);
				for (int e = 0; e < nedits; e++)
					edit(&cur, &s, 1 + below(&s, 2) * 300 + below(&s, 10) * 10);
				if (cur.n == 0)
					buf_insert(&cur, 0, (const uint8_t *)"x", 1);
				round_trip(base.b, base.n, cur.b, cur.n);
				free(base.b), free(cur.b);
			}
		}
	}
}

/* Few edits spread over a large input: each costs about its own new
 * bytes, whatever its kind. */
Test(mdelta, sparse_edits_cost_their_own_bytes)
{
	uint64_t s = 7;

	for (int kind = 0; kind < 3; kind += 2) {
		for (int trial = 0; trial < 6; trial++) {
			struct buf base, cur;
			size_t fresh = 0, dlen;
			const int nedits = 8;
			fill_base(&base, 512 * KIB, kind, rnd(&s));
			cur.n = base.n;
			cur.b = malloc(base.n + 1);
			memcpy(cur.b, base.b, base.n);
			for (int e = 0; e < nedits; e++)
				fresh += edit(&cur, &s, 200);
			dlen = round_trip(base.b, base.n, cur.b, cur.n);
			/* Per edit: its bytes, an ADD and two COPYs, and some slack
			 * where an edit lands in a chunk that cannot be matched. */
			cr_assert_leq(dlen, HDR + fresh + nedits * (5 + 2 * 13 + 64),
				      "kind %d trial %d: %zu delta bytes for %zu new bytes", kind, trial,
				      dlen, fresh);
			free(base.b), free(cur.b);
		}
	}
}

/* Exact op lists for the basic edits of a noise base. */
Test(mdelta, basic_edits_give_the_expected_ops)
{
	enum { N = 4096 };
	static uint8_t base[N], cur[N + 3];
	struct op ops[8];
	size_t n;

	tu_fill_random(base, N, 11);
	/* Identical: one COPY. */
	cr_assert_eq(round_trip_ops(base, N, base, N, ops, 8, &n), HDR + 13);
	cr_assert(n == 1 && ops[0].code == 1 && ops[0].off == 0 && ops[0].len == N);

	/* Substitution of 8 bytes (all differing): COPY ADD COPY. */
	memcpy(cur, base, N);
	for (int i = 0; i < 8; i++)
		cur[2000 + i] ^= 0xff;
	cr_assert_eq(round_trip_ops(base, N, cur, N, ops, 8, &n), HDR + 13 + 5 + 8 + 13);
	cr_assert(n == 3 && ops[0].off == 0 && ops[0].len == 2000 && ops[1].code == 2 &&
		  ops[1].len == 8 && ops[2].off == 2008 && ops[2].len == N - 2008);

	/* Insertion of 3 bytes. */
	memcpy(cur, base, 1000);
	memcpy(cur + 1000, "XY", 2);
	cur[1002] = base[999] ^ 0xff; /* so the match cannot grow back into it */
	memcpy(cur + 1003, base + 1000, N - 1000);
	cr_assert_eq(round_trip_ops(base, N, cur, N + 3, ops, 8, &n), HDR + 13 + 5 + 3 + 13);
	cr_assert(n == 3 && ops[0].off == 0 && ops[0].len == 1000 && ops[1].len == 3 &&
		  ops[2].off == 1000 && ops[2].len == N - 1000);

	/* Deletion of 100 bytes: two COPYs. */
	memcpy(cur, base, 1000);
	memcpy(cur + 1000, base + 1100, N - 1100);
	cr_assert_eq(round_trip_ops(base, N, cur, N - 100, ops, 8, &n), HDR + 2 * 13);
	cr_assert(n == 2 && ops[1].off == 1100 && ops[1].len == N - 1100);

	/* A block moved to the end: three COPYs. */
	memcpy(cur, base, 500);
	memcpy(cur + 500, base + 1500, N - 1500);
	memcpy(cur + N - 1000, base + 500, 1000);
	cr_assert_eq(round_trip_ops(base, N, cur, N, ops, 8, &n), HDR + 3 * 13);
	cr_assert(n == 3 && ops[2].off == 500 && ops[2].len == 1000);
}

/* The encoder's bytes, written out from the spec for the smallest cases. */
Test(mdelta, encoding_follows_the_spec)
{
	static uint8_t base[100];
	struct dw want = { 0 };
	uint8_t *delta;
	size_t dlen;

	tu_fill_random(base, sizeof(base), 3);
	dw_header(&want, 1, 100, base, 100, base, 100);
	dw_copy(&want, 0, 100);
	cr_assert_eq(bdr_mdelta_encode(base, 100, base, 100, &delta, &dlen), 0);
	cr_assert_eq(dlen, want.n);
	cr_assert_arr_eq(delta, want.b, dlen);
	free(delta);

	/* Against an empty base: one ADD of everything. */
	dw_header(&want, 1, 100, NULL, 0, base, 100);
	dw_add(&want, base, 100);
	cr_assert_eq(bdr_mdelta_encode(NULL, 0, base, 100, &delta, &dlen), 0);
	cr_assert_eq(dlen, want.n);
	cr_assert_arr_eq(delta, want.b, dlen);
	free(delta);
	free(want.b);
}

Test(mdelta, identical_inputs_give_a_tiny_delta)
{
	static const size_t sizes[] = { 24, 25, 1000, 1 * MIB };
	uint8_t *b = malloc(MIB), *delta;
	size_t dlen;

	tu_fill_random(b, MIB, 5);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		cr_assert_eq(round_trip(b, sizes[i], b, sizes[i]), HDR + 13, "%zu bytes", sizes[i]);
	/* Shorter than a COPY is worth: one ADD. */
	cr_assert_eq(round_trip(b, 10, b, 10), HDR + 5 + 10);
	/* A prefix of the base, and the base with a tail. */
	cr_assert_eq(round_trip(b, MIB, b, MIB / 2), HDR + 13);
	cr_assert_eq(round_trip(b, MIB / 2, b, MIB), HDR + 13 + 5 + MIB / 2);
	/* Unrelated noise: everything is an ADD, HDR + 5 bytes over. */
	cr_assert_eq(round_trip(b, MIB / 2, b + MIB / 2, MIB / 2), HDR + 5 + MIB / 2);
	cr_assert_eq(bdr_mdelta_encode(b, 0, b, 1, &delta, &dlen), 0);
	cr_assert_eq(dlen, HDR + 5 + 1);
	free(delta);
	free(b);
}

/* A manifest is never empty: the encoder refuses an empty cur, and a delta
 * that declares an empty result is malformed (see malformed_header). */
Test(mdelta, empty_and_oversized_inputs)
{
	uint8_t b[16] = { 1 }, *delta = (uint8_t *)1;
	size_t dlen = 1;

	cr_assert_eq(bdr_mdelta_encode(b, 16, b, 0, &delta, &dlen), -EINVAL);
	cr_assert(delta == NULL && dlen == 0);
	/* Sizes are checked before a byte is read. */
	cr_assert_eq(bdr_mdelta_encode(b, BDR_MAX_MANIFEST_BYTES + 1, b, 16, &delta, &dlen),
		     -BDR_ELIMIT);
	cr_assert_eq(bdr_mdelta_encode(b, 16, b, BDR_MAX_MANIFEST_BYTES + 1, &delta, &dlen),
		     -BDR_ELIMIT);
	cr_assert_eq(round_trip(NULL, 0, b, 16), HDR + 5 + 16);
}

/* 32 MiB: linear time, and a few edits stay a few bytes. */
Test(mdelta, large_inputs)
{
	size_t n = 32 * MIB, dlen;
	uint8_t *base = malloc(n), *cur = malloc(n);
	double t;

	tu_fill_random(base, n, 9);
	memcpy(cur, base, n);
	for (size_t i = 1; i < 64; i++)
		cur[i * (n / 64)] ^= 0x5a;
	t = now_ms();
	dlen = round_trip(base, n, cur, n);
	printf("mdelta 32 MiB, 63 one-byte edits: delta %zu bytes, encode+apply x2 %.0f ms\n", dlen,
	       now_ms() - t);
	cr_assert_leq(dlen, HDR + 63 * (5 + 1 + 13) + 13);
	free(base), free(cur);
}

/* ---- real manifests ---- */

static void mkfile(const char *root, const char *rel, size_t len, uint64_t seed)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/%s", root, rel);
	tu_write_random(p, len, seed);
}

/* Overwrites len bytes at off with noise (past the end: the file grows). */
static void poke(const char *root, const char *rel, off_t off, size_t len, uint64_t seed)
{
	char p[PATH_MAX];
	uint8_t buf[8192];
	int fd;

	cr_assert_leq(len, sizeof(buf));
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	fd = open(p, O_WRONLY);
	cr_assert(fd >= 0);
	tu_fill_random(buf, len, seed);
	cr_assert_eq(pwrite(fd, buf, len, off), (ssize_t)len);
	close(fd);
}

static uint8_t *manifest_of(struct bdr_library *lib, const char *package, uint64_t v, size_t *len)
{
	uint8_t *buf;

	cr_assert_eq(bdr_library_manifest_read(lib, package, v, &buf, len), 0);
	return buf;
}

/* The receiver's side: rebuild, then decode and verify as any manifest. */
static void apply_and_verify(const uint8_t *base, size_t blen, const uint8_t *delta, size_t dlen,
			     const uint8_t *cur, size_t clen, const struct bdr_key *k)
{
	struct bdr_diag d = { { 0 } };
	struct bdr_manifest m;
	uint8_t *out;
	size_t olen;
	int rc = bdr_mdelta_apply(base, blen, delta, dlen, BDR_MAX_MANIFEST_BYTES, &out, &olen, &d);

	cr_assert_eq(rc, 0, "apply: %s: %s", bdr_strerror(rc), d.msg);
	cr_assert(olen == clen && !memcmp(out, cur, clen), "rebuilt manifest differs");
	rc = bdr_manifest_decode(out, olen, k->pk, &m, &d);
	cr_assert_eq(rc, 0, "decode: %s: %s", bdr_strerror(rc), d.msg);
	bdr_manifest_free(&m);
	free(out);
}

Test(mdelta, manifests_of_an_edited_tree)
{
	char root[PATH_MAX], src[PATH_MAX], a[PATH_MAX], b[PATH_MAX], rel[64];
	struct bdr_library *lib;
	struct bdr_key key;
	uint8_t *m1, *m2, *delta;
	size_t l1, l2, dlen;

	cr_assert_eq(sodium_init() < 0, 0);
	bdr_key_generate(&key);
	tu_mkdtemp(root, "mdelta");
	snprintf(src, sizeof(src), "%s/src", root);
	for (int dir = 0; dir < 20; dir++) {
		snprintf(rel, sizeof(rel), "src/dir%02d", dir);
		snprintf(a, sizeof(a), "%s/%s", root, rel);
		tu_mkdirs(a);
		for (int f = 0; f < 10; f++) {
			snprintf(rel, sizeof(rel), "dir%02d/file%d.bin", dir, f);
			mkfile(src, rel, (size_t)((dir * 10 + f) % 25) * 3000 + 1, (uint64_t)(dir * 10 + f));
		}
	}
	snprintf(a, sizeof(a), "%s/lib", root);
	lib = tu_library(a, 0);
	cr_assert_eq(tu_import(lib, &key, "app", src), 1);

	/* v2: three files edited (one grows), two renamed, one new, one gone. */
	poke(src, "dir03/file1.bin", 9000, 100, 1000);    /* 18001 bytes */
	poke(src, "dir11/file4.bin", 20000, 3000, 1001);  /* 42001 bytes */
	poke(src, "dir19/file9.bin", 72001, 5000, 1002);  /* 72001 bytes, grows */
	snprintf(a, sizeof(a), "%s/dir05/file5.bin", src), snprintf(b, sizeof(b), "%s/dir05/moved.bin", src);
	cr_assert_eq(rename(a, b), 0);
	snprintf(a, sizeof(a), "%s/dir07/file0.bin", src), snprintf(b, sizeof(b), "%s/dir16/file0.bin", src);
	cr_assert_eq(rename(a, b), 0);
	mkfile(src, "dir08/new.bin", 5000, 1003);
	snprintf(a, sizeof(a), "%s/dir12/file2.bin", src);
	cr_assert_eq(unlink(a), 0);
	cr_assert_eq(tu_import(lib, &key, "app", src), 2);

	m1 = manifest_of(lib, "app", 1, &l1);
	m2 = manifest_of(lib, "app", 2, &l2);
	cr_assert_eq(bdr_mdelta_encode(m1, l1, m2, l2, &delta, &dlen), 0);
	printf("mdelta tree of 200 files, 7 changed: manifest %zu B, delta %zu B (%.1f%%)\n", l2, dlen,
	       100.0 * dlen / l2);
	round_trip(m1, l1, m2, l2);
	apply_and_verify(m1, l1, delta, dlen, m2, l2, &key);
	cr_assert_lt(dlen * 20, l2, "delta of %zu bytes is not under 5%% of %zu", dlen, l2);
	/* Against the wrong base (the new version itself): not found. */
	{
		struct bdr_diag d = { { 0 } };
		uint8_t *out;
		size_t olen;
		cr_assert_eq(bdr_mdelta_apply(m2, l2, delta, dlen, l2, &out, &olen, &d), -BDR_ENOTFOUND);
		cr_assert_str_eq(d.msg, "delta is against another base");
	}
	free(m1), free(m2), free(delta);
	bdr_library_close(lib);
	tu_rmrf(root);
}

/* The corpora's v1 -> v2 (BDR_CORPORA): sizes and times printed; max_pct
 * is the delta's bound in percent of the manifest (0: none). */
static void run_corpus(const char *name, double max_pct)
{
	char dir[PATH_MAX], v[PATH_MAX], root[PATH_MAX];
	struct bdr_library *lib;
	struct bdr_key key;
	uint8_t *m1, *m2, *delta, *out;
	size_t l1, l2, dlen, olen;
	double t, enc = 1e9, app = 1e9;
	struct bdr_diag d = { { 0 } };

	if (!tu_corpus(name, dir))
		cr_skip_test("corpus '%s' not found under $BDR_CORPORA (run ../shared/corpora/fetch.sh)",
			     name);
	cr_assert_eq(sodium_init() < 0, 0);
	bdr_key_generate(&key);
	tu_mkdtemp(root, name);
	snprintf(v, sizeof(v), "%s/lib", root);
	lib = tu_library(v, 0);
	snprintf(v, sizeof(v), "%s/v1", dir);
	cr_assert_eq(tu_import(lib, &key, name, v), 1);
	snprintf(v, sizeof(v), "%s/v2", dir);
	cr_assert_eq(tu_import(lib, &key, name, v), 2);
	m1 = manifest_of(lib, name, 1, &l1);
	m2 = manifest_of(lib, name, 2, &l2);

	for (int i = 0; i < 5; i++) { /* the best of five */
		t = now_ms();
		cr_assert_eq(bdr_mdelta_encode(m1, l1, m2, l2, &delta, &dlen), 0);
		enc = now_ms() - t < enc ? now_ms() - t : enc;
		t = now_ms();
		cr_assert_eq(bdr_mdelta_apply(m1, l1, delta, dlen, l2, &out, &olen, &d), 0, "%s", d.msg);
		app = now_ms() - t < app ? now_ms() - t : app;
		free(out);
		if (i < 4)
			free(delta);
	}
	printf("mdelta corpus %-10s manifest v2 %8zu B  delta %7zu B (%5.2f%%)  encode %6.2f ms  "
	       "apply %6.2f ms\n",
	       name, l2, dlen, 100.0 * dlen / l2, enc, app);
	round_trip(m1, l1, m2, l2);
	apply_and_verify(m1, l1, delta, dlen, m2, l2, &key);
	if (max_pct > 0)
		cr_assert_lt(100.0 * dlen / l2, max_pct, "%s: delta %zu of %zu bytes", name, dlen, l2);
	free(m1), free(m2), free(delta);
	bdr_library_close(lib);
	tu_rmrf(root);
}

Test(mdelta, corpus_typescript) { run_corpus("typescript", 10); }
Test(mdelta, corpus_lodash) { run_corpus("lodash", 10); }
Test(mdelta, corpus_synthetic) { run_corpus("synthetic", 20); }
/* esbuild's change rewrites a large binary: most chunk ids are new, and a
 * delta saves little (the sender then sends whichever is smaller). */
Test(mdelta, corpus_esbuild) { run_corpus("esbuild", 0); }

/* ---- malformed deltas ---- */

enum { BLEN = 1000, CLEN = 600 };
static uint8_t mbase[BLEN], mcur[CLEN];

/* cur = base[100, 400) + 300 fresh bytes: the valid delta is
 * COPY(100, 300) ADD(300). */
static void mal_setup(void)
{
	tu_fill_random(mbase, BLEN, 21);
	memcpy(mcur, mbase + 100, 300);
	tu_fill_random(mcur + 300, 300, 22);
}

static void expect_apply(const struct dw *t, size_t max_out, int err, const char *needle)
{
	struct bdr_diag d = { { 0 } };
	uint8_t *out = (uint8_t *)1;
	size_t olen = 1;
	/* An exact copy, so ASan sees any read past the delta. */
	uint8_t *copy = malloc(t->n ? t->n : 1);
	int rc;

	memcpy(copy, t->b, t->n);
	rc = bdr_mdelta_apply(mbase, BLEN, copy, t->n, max_out, &out, &olen, &d);
	cr_assert_eq(rc, err, "want %d (%s), got %d (%s) [%s]", err, bdr_strerror(err), rc,
		     bdr_strerror(rc), d.msg);
	if (err) {
		cr_assert(out == NULL && olen == 0, "a failed apply leaves no output");
		if (needle)
			cr_assert_not_null(strstr(d.msg, needle), "diag '%s' lacks '%s'", d.msg, needle);
	} else {
		cr_assert(olen == CLEN && !memcmp(out, mcur, CLEN));
		free(out);
	}
	free(copy);
}

static void valid(struct dw *t)
{
	dw_header(t, 1, CLEN, mbase, BLEN, mcur, CLEN);
	dw_copy(t, 100, 300);
	dw_add(t, mcur + 300, 300);
}

TestSuite(mdelta_bad, .init = mal_setup);

Test(mdelta_bad, the_valid_delta_applies)
{
	struct dw t = { 0 };

	valid(&t);
	expect_apply(&t, CLEN, 0, NULL);
	expect_apply(&t, SIZE_MAX, 0, NULL);
	/* The ops may be split: the decoder does not require merged ops. */
	dw_header(&t, 1, CLEN, mbase, BLEN, mcur, CLEN);
	dw_copy(&t, 100, 1), dw_copy(&t, 101, 299);
	dw_add(&t, mcur + 300, 1), dw_add(&t, mcur + 301, 299);
	expect_apply(&t, CLEN, 0, NULL);
	free(t.b);
}

Test(mdelta_bad, malformed_header)
{
	struct dw t = { 0 };

	valid(&t);
	for (size_t n = 0; n < HDR; n++) {
		struct dw cut = { t.b, n, n };
		expect_apply(&cut, CLEN, -BDR_EFORMAT, "shorter than its header");
	}
	for (unsigned f = 0; f < 256; f += 17) { /* 0, 17, ..., 255 */
		t.b[0] = (uint8_t)f;
		expect_apply(&t, CLEN, -BDR_EVERSION, "delta format");
	}
	t.b[0] = 2;
	expect_apply(&t, CLEN, -BDR_EVERSION, "delta format 2 unknown");
	dw_header(&t, 1, 0, mbase, BLEN, mcur, CLEN);
	expect_apply(&t, CLEN, -BDR_EFORMAT, "empty result");
	valid(&t);
	expect_apply(&t, CLEN - 1, -BDR_ELIMIT, "delta result of 600 bytes exceeds 599");
	/* Limits come before the allocation: a huge length is refused, not
	 * allocated. */
	dw_header(&t, 1, UINT64_MAX, mbase, BLEN, mcur, CLEN);
	dw_copy(&t, 0, 1);
	expect_apply(&t, 1u << 30, -BDR_ELIMIT, "exceeds");
	free(t.b);
}

Test(mdelta_bad, another_base_is_not_found)
{
	struct dw t = { 0 };
	uint8_t h[32];

	valid(&t);
	t.b[9] ^= 1; /* base hash */
	expect_apply(&t, CLEN, -BDR_ENOTFOUND, "delta is against another base");
	/* The base hash covers the base's length too. */
	dw_header(&t, 1, CLEN, mbase, BLEN - 1, mcur, CLEN);
	dw_copy(&t, 100, 300), dw_add(&t, mcur + 300, 300);
	expect_apply(&t, CLEN, -BDR_ENOTFOUND, "another base");
	/* Even an empty base has a hash. */
	blake(NULL, 0, h);
	valid(&t);
	memcpy(t.b + 9, h, 32);
	expect_apply(&t, CLEN, -BDR_ENOTFOUND, "another base");
	free(t.b);
}

static void header_only(struct dw *t)
{
	dw_header(t, 1, CLEN, mbase, BLEN, mcur, CLEN);
}

Test(mdelta_bad, malformed_ops)
{
	static const uint8_t codes[] = { 0, 3, 0x81, 0xff };
	struct dw t = { 0 };
	char want[64];

	for (size_t i = 0; i < sizeof(codes); i++) {
		header_only(&t);
		dw_copy(&t, 100, 300);
		dw_le(&t, codes[i], 1), dw_le(&t, 300, 4);
		snprintf(want, sizeof(want), "delta op 1: unknown op %u", codes[i]);
		expect_apply(&t, CLEN, -BDR_EFORMAT, want);
	}
	/* Zero-length ops. */
	header_only(&t);
	dw_copy(&t, 100, 0);
	expect_apply(&t, CLEN, -BDR_EFORMAT, "delta op 0: COPY of 0 bytes");
	header_only(&t);
	dw_copy(&t, 100, 300), dw_add(&t, mcur, 0);
	expect_apply(&t, CLEN, -BDR_EFORMAT, "delta op 1: ADD of 0 bytes");
	/* COPYs outside the base. */
	header_only(&t);
	dw_copy(&t, BLEN, 1);
	expect_apply(&t, CLEN, -BDR_EFORMAT, "delta op 0: COPY of 1 bytes at 1000 reads past the base");
	header_only(&t);
	dw_copy(&t, BLEN - 299, 300);
	expect_apply(&t, CLEN, -BDR_EFORMAT, "reads past the base");
	header_only(&t);
	dw_copy(&t, UINT64_MAX, 300);
	expect_apply(&t, CLEN, -BDR_EFORMAT, "reads past the base");
	header_only(&t);
	dw_copy(&t, UINT64_MAX - 10, 300); /* offset + len wraps */
	expect_apply(&t, CLEN, -BDR_EFORMAT, "reads past the base");
	/* Ops that write past the declared length. */
	header_only(&t);
	dw_copy(&t, 0, CLEN + 1);
	expect_apply(&t, CLEN, -BDR_EFORMAT, "delta op 0: COPY of 601 bytes runs past the declared length");
	header_only(&t);
	dw_copy(&t, 100, 300), dw_add(&t, mbase, 301);
	expect_apply(&t, CLEN, -BDR_EFORMAT, "delta op 1: ADD of 301 bytes runs past the declared");
	header_only(&t);
	dw_copy(&t, 100, 300), dw_copy(&t, 0, UINT32_MAX);
	expect_apply(&t, CLEN, -BDR_EFORMAT, "delta op 1: COPY of 4294967295 bytes runs past");
	/* An ADD whose bytes are not there. */
	header_only(&t);
	dw_copy(&t, 100, 300), dw_le(&t, 2, 1), dw_le(&t, 300, 4), dw_raw(&t, mcur + 300, 299);
	expect_apply(&t, CLEN, -BDR_EFORMAT, "delta op 1: ADD of 300 bytes runs past the end of the delta");
	free(t.b);
}

Test(mdelta_bad, totals_and_trailing_bytes)
{
	struct dw t = { 0 };

	/* The ops stop short of the declared length. */
	header_only(&t);
	dw_copy(&t, 100, 300);
	expect_apply(&t, CLEN, -BDR_EFORMAT, "delta op 1: the delta ends 300 bytes before");
	header_only(&t);
	expect_apply(&t, CLEN, -BDR_EFORMAT, "delta op 0: the delta ends 600 bytes before");
	/* Bytes after the output is complete: another op, or junk. */
	valid(&t);
	dw_copy(&t, 0, 1);
	expect_apply(&t, CLEN, -BDR_EFORMAT, "delta: 13 bytes after the last op (op 1)");
	valid(&t);
	dw_le(&t, 0, 1);
	expect_apply(&t, CLEN, -BDR_EFORMAT, "1 bytes after the last op");
	/* Every truncation of the op list. */
	valid(&t);
	for (size_t n = HDR; n < t.n; n++) {
		struct dw cut = { t.b, n, n };
		expect_apply(&cut, CLEN, -BDR_EFORMAT, "delta op");
	}
	free(t.b);
}

Test(mdelta_bad, a_wrong_result_fails_its_hash)
{
	struct dw t = { 0 };

	valid(&t);
	t.b[41] ^= 0x80; /* result hash */
	expect_apply(&t, CLEN, -BDR_EHASH, "delta result does not match its hash");
	valid(&t);
	t.b[t.n - 1] ^= 1; /* the last ADD byte */
	expect_apply(&t, CLEN, -BDR_EHASH, NULL);
	header_only(&t);
	dw_copy(&t, 101, 300), dw_add(&t, mcur + 300, 300); /* off by one in the base */
	expect_apply(&t, CLEN, -BDR_EHASH, NULL);
	free(t.b);
}

/* No flip of a valid delta crashes or produces anything but cur. */
Test(mdelta_bad, single_byte_flips)
{
	static const uint8_t flips[] = { 0x01, 0x80, 0xff };
	struct bdr_diag d;
	struct dw t = { 0 };
	uint8_t *out;
	size_t olen;

	valid(&t);
	for (size_t pos = 0; pos < HDR + 13 + 5 + 8; pos++) {
		for (size_t f = 0; f < sizeof(flips); f++) {
			t.b[pos] ^= flips[f];
			int rc = bdr_mdelta_apply(mbase, BLEN, t.b, t.n, 4096, &out, &olen, &d);
			cr_assert_neq(rc, 0, "flip 0x%02x at %zu accepted", flips[f], pos);
			cr_assert_null(out);
			t.b[pos] ^= flips[f];
		}
	}
	free(t.b);
}
