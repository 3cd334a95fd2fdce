/* Dictionary selection (include/bdr/dictsel.h): the window picked for a
 * chunk holds the old bytes the chunk came from, wherever they moved;
 * compressing against it pays; the fallbacks are the documented ones; the
 * index is bounded and independent of how the old file is split. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "bdr/compress.h"
#include "bdr/dictsel.h"
#include "bdr/error.h"
#include "testutil.h"

#define KIB 1024u

static uint8_t *rnd(size_t len, uint64_t seed)
{
	uint8_t *b = malloc(len ? len : 1);

	cr_assert_not_null(b);
	tu_fill_random(b, len, seed);
	return b;
}

static struct bdr_dictsel_index *index_of(const uint8_t *buf, size_t len, uint32_t gap)
{
	struct bdr_dictsel_index *ix;

	cr_assert_eq(bdr_dictsel_index_new(&ix, gap), 0);
	cr_assert_eq(bdr_dictsel_index_add(ix, buf, len), 0);
	bdr_dictsel_index_finish(ix);
	return ix;
}

/* Appends src[0, n) to dst at *at. */
static void put(uint8_t *dst, size_t *at, const uint8_t *src, size_t n)
{
	memcpy(dst + *at, src, n);
	*at += n;
}

/* Compressed size of chunk with the window's bytes of old as dictionary
 * (or none), checked by decompressing. */
static uint32_t zsize(const uint8_t *old, const struct bdr_dictsel_window *w, const uint8_t *chunk,
		      uint32_t len)
{
	struct bdr_compressor *c;
	struct bdr_decompressor *z;
	const uint8_t *dict = w ? old + w->off : NULL;
	uint32_t dlen = w ? w->len : 0, outlen;
	uint8_t *out = malloc(len), *back = malloc(len), codec;
	struct bdr_diag d;

	cr_assert(out && back);
	cr_assert_eq(bdr_compressor_new(&c, 9), 0);
	cr_assert_eq(bdr_decompressor_new(&z), 0);
	bdr_compressor_set_precheck(c, false);
	cr_assert_eq(bdr_compress_chunk(c, chunk, len, dict, dlen, out, len, &outlen, &codec), 0);
	cr_assert_eq(bdr_decompress_chunk(z, codec, out, outlen, dict, dlen, back, len, &d), 0,
		     "%s", d.msg);
	cr_assert_eq(memcmp(back, chunk, len), 0);
	bdr_compressor_free(c);
	bdr_decompressor_free(z);
	free(out);
	free(back);
	return outlen;
}

static bool window_holds(const struct bdr_dictsel_window *w, uint64_t off, uint64_t len)
{
	return w->off <= off && off + len <= w->off + w->len;
}

/* A window is the chunk and a margin either side, within zlib's 32 KiB. */
static uint32_t window_for(uint32_t len)
{
	uint32_t w = len + 2 * BDR_DICTSEL_MARGIN;
	return w < BDR_DICTSEL_WINDOW_MAX ? w : BDR_DICTSEL_WINDOW_MAX;
}

/* old: 1 MiB of random bytes (no self-similarity: only a dictionary can
 * compress a chunk of it). new: old with an insertion, a deletion and a
 * region moved far forward. */
#define OLD_LEN (1024 * KIB)
#define INS_AT (100 * KIB)  /* old offset of the insertion */
#define INS_LEN 2000u
#define DEL_AT (300 * KIB)
#define DEL_LEN 3000u
#define MOV_FROM (800 * KIB) /* 12 KiB of old moved to new offset ~50 KiB */
#define MOV_LEN (12 * KIB)
#define MOV_TO (50 * KIB)

struct pair {
	uint8_t *old, *new;
	size_t old_len, new_len;
	size_t mov_new; /* new offset of the moved bytes */
	size_t ins_new; /* new offset of the inserted bytes */
};

static void make_pair(struct pair *p)
{
	uint8_t *ins = rnd(INS_LEN, 99);
	size_t at = 0;

	p->old_len = OLD_LEN;
	p->old = rnd(OLD_LEN, 1);
	p->new = malloc(OLD_LEN + INS_LEN);
	cr_assert_not_null(p->new);
	put(p->new, &at, p->old, MOV_TO);
	p->mov_new = at;
	put(p->new, &at, p->old + MOV_FROM, MOV_LEN);
	put(p->new, &at, p->old + MOV_TO, INS_AT - MOV_TO);
	p->ins_new = at;
	put(p->new, &at, ins, INS_LEN);
	put(p->new, &at, p->old + INS_AT, DEL_AT - INS_AT);
	put(p->new, &at, p->old + DEL_AT + DEL_LEN, MOV_FROM - DEL_AT - DEL_LEN);
	put(p->new, &at, p->old + MOV_FROM + MOV_LEN, OLD_LEN - MOV_FROM - MOV_LEN);
	p->new_len = at;
	free(ins);
}

static void free_pair(struct pair *p)
{
	free(p->old);
	free(p->new);
}

Test(dictsel, moved_region_is_found)
{
	struct pair p;
	struct bdr_dictsel_window w;

	make_pair(&p);
	struct bdr_dictsel_index *ix = index_of(p.old, p.old_len, 0);
	/* A chunk of 1 KiB before the moved bytes, the 12 KiB moved, and
	 * 1 KiB after: the moved bytes sit 750 KiB from their new offset. */
	size_t off = p.mov_new - KIB;
	uint32_t len = MOV_LEN + 2 * KIB;

	cr_assert_eq(bdr_dictsel_pick(ix, p.new + off, len, off, &w), 0);
	cr_assert_eq(w.how, BDR_DICTSEL_ANCHORED);
	cr_assert_eq(w.len, window_for(len));
	cr_assert(window_holds(&w, MOV_FROM, MOV_LEN), "window %llu+%u",
		  (unsigned long long)w.off, w.len);
	cr_assert_gt(w.anchors, 0);
	cr_assert_geq(w.covered * 10, w.anchors * 7, "covered %u of %u", w.covered, w.anchors);

	/* The dictionary takes the chunk from ~14 KiB (random) to the 2 KiB
	 * it does not hold and a little. */
	uint32_t none = zsize(p.old, NULL, p.new + off, len);
	uint32_t with = zsize(p.old, &w, p.new + off, len);
	cr_assert_geq(none, len * 97 / 100);
	cr_assert_lt(with, 3 * KIB, "with dictionary %u of %u", with, len);

	/* The same-offset window knows nothing of the move. */
	struct bdr_dictsel_window same = { .off = off, .len = BDR_DICTSEL_WINDOW_MAX };
	cr_assert_gt(zsize(p.old, &same, p.new + off, len), len * 9 / 10);
	bdr_dictsel_index_free(ix);
	free_pair(&p);
}

Test(dictsel, insertion_and_deletion)
{
	struct pair p;
	struct bdr_dictsel_window w;

	make_pair(&p);
	struct bdr_dictsel_index *ix = index_of(p.old, p.old_len, 0);

	/* 6 KiB of old, the 2000 inserted bytes, 6 KiB of old. */
	size_t off = p.ins_new - 6 * KIB;
	uint32_t len = 12 * KIB + INS_LEN;
	cr_assert_eq(bdr_dictsel_pick(ix, p.new + off, len, off, &w), 0);
	cr_assert_eq(w.how, BDR_DICTSEL_ANCHORED);
	cr_assert(window_holds(&w, INS_AT - 6 * KIB, 12 * KIB));
	cr_assert_lt(zsize(p.old, &w, p.new + off, len), INS_LEN + KIB);

	/* Across the deletion: both sides of the cut in one window. */
	size_t doff = DEL_AT - 6 * KIB + MOV_LEN + INS_LEN; /* old DEL_AT - 6 KiB, in new */
	cr_assert_eq(memcmp(p.new + doff, p.old + DEL_AT - 6 * KIB, 6 * KIB), 0);
	cr_assert_eq(bdr_dictsel_pick(ix, p.new + doff, 12 * KIB, doff, &w), 0);
	cr_assert_eq(w.how, BDR_DICTSEL_ANCHORED);
	cr_assert(window_holds(&w, DEL_AT - 6 * KIB, 12 * KIB + DEL_LEN));
	cr_assert_lt(zsize(p.old, &w, p.new + doff, 12 * KIB), 512);
	bdr_dictsel_index_free(ix);
	free_pair(&p);
}

/* Every placement finds the moved bytes of a plain moved chunk. */
Test(dictsel, every_placement)
{
	struct pair p;
	struct bdr_dictsel_window w;

	make_pair(&p);
	struct bdr_dictsel_index *ix = index_of(p.old, p.old_len, 0);
	for (int pl = BDR_DICTSEL_PLACE_MID; pl <= BDR_DICTSEL_PLACE_VOTE_START; pl++) {
		cr_assert_eq(bdr_dictsel_pick_place(ix, p.new + p.mov_new, 8 * KIB, p.mov_new, pl, &w),
			     0);
		cr_assert_eq(w.how, BDR_DICTSEL_ANCHORED);
		/* Every anchor served. LO ends the window at the last anchor,
		 * which may sit up to a few gaps before the chunk's end. */
		cr_assert_gt(w.anchors, 0);
		cr_assert_eq(w.covered, w.anchors, "place %d", pl);
		cr_assert(window_holds(&w, MOV_FROM, 6 * KIB), "place %d: %llu", pl,
			  (unsigned long long)w.off);
	}
	cr_assert_eq(bdr_dictsel_pick_place(ix, p.new, 8 * KIB, 0, 99, &w), -EINVAL);
	bdr_dictsel_index_free(ix);
	free_pair(&p);
}

/* A chunk longer than deflate's reach: only its head is sampled, and the
 * window serves the head. */
Test(dictsel, long_chunk)
{
	struct pair p;
	struct bdr_dictsel_window w;

	make_pair(&p);
	struct bdr_dictsel_index *ix = index_of(p.old, p.old_len, 0);
	size_t off = 500 * KIB + MOV_LEN + INS_LEN - DEL_LEN; /* old 500 KiB */
	cr_assert_eq(memcmp(p.new + off, p.old + 500 * KIB, 256 * KIB), 0);
	cr_assert_eq(bdr_dictsel_pick(ix, p.new + off, 256 * KIB, off, &w), 0);
	cr_assert_eq(w.how, BDR_DICTSEL_ANCHORED);
	cr_assert_lt(w.anchors, BDR_DICTSEL_REACH / (BDR_DICTSEL_GAP_DEFAULT / 4) + 1);
	cr_assert(window_holds(&w, 500 * KIB, 8 * KIB));
	bdr_dictsel_index_free(ix);
	free_pair(&p);
}

/* No anchor in common: the same-offset window, holding the chunk's own
 * offset range; an empty old file: no dictionary. */
Test(dictsel, fallbacks)
{
	uint8_t *old = rnd(256 * KIB, 5), *chunk = rnd(8 * KIB, 6);
	struct bdr_dictsel_index *ix = index_of(old, 256 * KIB, 0);
	struct bdr_dictsel_window w;

	cr_assert_eq(bdr_dictsel_pick(ix, chunk, 8 * KIB, 100 * KIB, &w), 0);
	cr_assert_gt(w.anchors, 0);
	cr_assert_eq(w.matched, 0);
	cr_assert_eq(w.how, BDR_DICTSEL_SAME_OFFSET);
	cr_assert_eq(w.len, window_for(8 * KIB));
	cr_assert(window_holds(&w, 100 * KIB, 8 * KIB));
	/* ...clamped into the old file at either end. */
	cr_assert_eq(bdr_dictsel_pick(ix, chunk, 8 * KIB, 0, &w), 0);
	cr_assert_eq(w.off, 0);
	cr_assert_eq(bdr_dictsel_pick(ix, chunk, 8 * KIB, 10 * 1024 * KIB, &w), 0);
	cr_assert_eq(w.off + w.len, 256 * KIB);
	/* A chunk too short for one anchor. */
	cr_assert_eq(bdr_dictsel_pick(ix, old + 1000, 31, 1000, &w), 0);
	cr_assert_eq(w.anchors, 0);
	cr_assert_eq(w.how, BDR_DICTSEL_SAME_OFFSET);
	bdr_dictsel_index_free(ix);

	/* An old file shorter than a window: all of it. */
	ix = index_of(old, 5000, 0);
	cr_assert_eq(bdr_dictsel_pick(ix, old + 1000, 2000, 7000, &w), 0);
	cr_assert_eq(w.off, 0);
	cr_assert_eq(w.len, 5000);
	cr_assert_eq(w.how, BDR_DICTSEL_ANCHORED);
	bdr_dictsel_index_free(ix);

	ix = index_of(old, 0, 0);
	cr_assert_eq(bdr_dictsel_pick(ix, chunk, 8 * KIB, 0, &w), 0);
	cr_assert_eq(w.how, BDR_DICTSEL_NONE);
	cr_assert_eq(w.len, 0);
	bdr_dictsel_index_free(ix);
	free(old);
	free(chunk);
}

Test(dictsel, bad_arguments)
{
	struct bdr_dictsel_index *ix;
	struct bdr_dictsel_sketch k;
	struct bdr_dictsel_window w;
	uint8_t buf[64] = { 0 };

	cr_assert_eq(bdr_dictsel_index_new(&ix, 100), -EINVAL);
	cr_assert_null(ix);
	cr_assert_eq(bdr_dictsel_index_new(&ix, 8), -EINVAL);
	cr_assert_eq(bdr_dictsel_index_new(&ix, 1u << 17), -EINVAL);
	cr_assert_eq(bdr_dictsel_sketch_init(&k, 3), -EINVAL);
	cr_assert_eq(bdr_dictsel_index_new(&ix, 0), 0);
	cr_assert_eq(bdr_dictsel_index_add(ix, buf, sizeof(buf)), 0);
	cr_assert_eq(bdr_dictsel_pick(ix, buf, sizeof(buf), 0, &w), -EINVAL); /* unfinished */
	bdr_dictsel_index_finish(ix);
	cr_assert_eq(bdr_dictsel_index_add(ix, buf, sizeof(buf)), -EINVAL);
	cr_assert_eq(bdr_dictsel_pick(ix, buf, 0, 0, &w), -EINVAL);
	cr_assert_eq(bdr_dictsel_pick(ix, buf, (1u << 20) + 1, 0, &w), -EINVAL);
	bdr_dictsel_index_free(ix);
}

static int u64_cmp(const void *pa, const void *pb)
{
	uint64_t a = *(const uint64_t *)pa, b = *(const uint64_t *)pb;

	return (a > b) - (a < b);
}

/* The index is O(size / gap): 12 bytes an anchor, anchors at least gap / 4
 * apart, and about one per gap bytes of varied data; runs and short
 * periods add (almost) nothing. */
Test(dictsel, bounded_memory)
{
	const size_t len = 4 * 1024 * KIB;
	uint8_t *buf = rnd(len, 7);
	static const uint32_t gaps[] = { 16, 64, 256, 4096 };

	for (size_t g = 0; g < sizeof(gaps) / sizeof(gaps[0]); g++) {
		struct bdr_dictsel_index *ix = index_of(buf, len, gaps[g]);
		struct bdr_dictsel_stats st;

		bdr_dictsel_index_stats(ix, &st);
		cr_assert_eq(st.size, len);
		cr_assert_eq(st.gap, gaps[g]);
		cr_assert_leq(st.anchors, len / (gaps[g] / 4) + 1);
		cr_assert_gt(st.anchors, len / gaps[g] / 2, "gap %u: %zu anchors", gaps[g], st.anchors);
		cr_assert_lt(st.anchors, len / gaps[g] * 3 / 2);
		cr_assert_leq(st.bytes, 12 * st.anchors + 1024);
		/* Anchors at least gap / 4 apart (checked in offset order). */
		uint64_t *offs = malloc(st.anchors * sizeof(*offs));
		for (size_t i = 0; i < st.anchors; i++) {
			uint32_t key;
			bdr_dictsel_index_anchor(ix, i, &offs[i], &key);
			cr_assert_leq(offs[i] + BDR_DICTSEL_ANCHOR_LEN, len);
		}
		qsort(offs, st.anchors, sizeof(*offs), u64_cmp);
		for (size_t i = 1; i < st.anchors && gaps[g] >= 256; i++)
			cr_assert_geq(offs[i] - offs[i - 1], gaps[g] / 4);
		free(offs);
		bdr_dictsel_index_free(ix);
	}

	/* Zeros, one byte value, a 3-byte pattern: a handful of anchors. */
	for (int kind = 0; kind < 3; kind++) {
		struct bdr_dictsel_stats st;
		for (size_t i = 0; i < len; i++)
			buf[i] = kind == 0 ? 0 : kind == 1 ? 0x90 : (uint8_t)"abc"[i % 3];
		for (uint32_t gap = 16; gap <= 256; gap *= 4) {
			struct bdr_dictsel_index *ix = index_of(buf, len, gap);
			bdr_dictsel_index_stats(ix, &st);
			cr_assert_leq(st.anchors, 3, "kind %d gap %u: %zu", kind, gap, st.anchors);
			bdr_dictsel_index_free(ix);
		}
	}
	free(buf);
}

static void assert_same_index(const struct bdr_dictsel_index *a, const struct bdr_dictsel_index *b)
{
	struct bdr_dictsel_stats sa, sb;

	bdr_dictsel_index_stats(a, &sa);
	bdr_dictsel_index_stats(b, &sb);
	cr_assert_eq(sa.size, sb.size);
	cr_assert_eq(sa.anchors, sb.anchors);
	for (size_t i = 0; i < sa.anchors; i++) {
		uint64_t oa, ob;
		uint32_t ka, kb;
		bdr_dictsel_index_anchor(a, i, &oa, &ka);
		bdr_dictsel_index_anchor(b, i, &ob, &kb);
		cr_assert(oa == ob && ka == kb, "anchor %zu differs", i);
	}
	const struct bdr_dictsel_sketch *ka = bdr_dictsel_index_sketch(a);
	const struct bdr_dictsel_sketch *kb = bdr_dictsel_index_sketch(b);
	cr_assert_eq(ka->n, kb->n);
	cr_assert_eq(memcmp(ka->key, kb->key, ka->n * sizeof(ka->key[0])), 0);
}

/* Buffers of any size give the same index: byte by byte, odd sizes,
 * random sizes, and from a file descriptor. */
Test(dictsel, streaming_split)
{
	struct pair p;

	make_pair(&p);
	/* Mixed content: random, a zero run, text-like repeats. */
	memset(p.new + 200 * KIB, 0, 64 * KIB);
	for (size_t i = 0; i < 64 * KIB; i++)
		p.new[400 * KIB + i] = (uint8_t)"the quick brown fox "[i % 20];
	struct bdr_dictsel_index *whole = index_of(p.new, p.new_len, 64);

	for (int mode = 0; mode < 4; mode++) {
		struct bdr_dictsel_index *ix;
		uint64_t x = 12345;
		size_t off = 0;

		cr_assert_eq(bdr_dictsel_index_new(&ix, 64), 0);
		while (off < p.new_len) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			size_t n = mode == 0 ? 1 : mode == 1 ? 31 : mode == 2 ? 4095 : x % 70000;
			if (n > p.new_len - off)
				n = p.new_len - off;
			cr_assert_eq(bdr_dictsel_index_add(ix, p.new + off, n), 0);
			off += n;
		}
		bdr_dictsel_index_finish(ix);
		assert_same_index(whole, ix);
		bdr_dictsel_index_free(ix);
	}

	char dir[PATH_MAX], path[PATH_MAX];
	struct bdr_dictsel_index *ix;
	tu_mkdtemp(dir, "dictsel");
	snprintf(path, sizeof(path), "%s/old", dir);
	tu_write(path, p.new, p.new_len);
	int fd = open(path, O_RDONLY);
	cr_assert_geq(fd, 0);
	cr_assert_eq(bdr_dictsel_index_fd(&ix, fd, 64), 0);
	assert_same_index(whole, ix);
	bdr_dictsel_index_free(ix);
	close(fd);
	cr_assert_eq(bdr_dictsel_index_fd(&ix, -1, 64), -EBADF);
	cr_assert_null(ix);
	tu_rmrf(dir);

	/* A sketch streamed alone equals the index's. */
	struct bdr_dictsel_sketch k;
	cr_assert_eq(bdr_dictsel_sketch_init(&k, 64), 0);
	for (size_t off = 0; off < p.new_len; off += 1000)
		bdr_dictsel_sketch_update(&k, p.new + off, p.new_len - off < 1000 ? p.new_len - off : 1000);
	cr_assert_eq(k.n, BDR_DICTSEL_SKETCH_K);
	cr_assert_eq(memcmp(k.key, bdr_dictsel_index_sketch(whole)->key, sizeof(k.key)), 0);
	bdr_dictsel_index_free(whole);
	free_pair(&p);
}

/* Sketch scores rank the old file a new one came from first. */
Test(dictsel, sketch_score)
{
	struct pair p;
	struct bdr_dictsel_sketch a, b, c, small;
	uint8_t *other = rnd(OLD_LEN, 77);

	make_pair(&p);
	cr_assert_eq(bdr_dictsel_sketch_init(&a, 0), 0);
	cr_assert_eq(bdr_dictsel_sketch_init(&b, 0), 0);
	cr_assert_eq(bdr_dictsel_sketch_init(&c, 0), 0);
	cr_assert_eq(bdr_dictsel_sketch_init(&small, 0), 0);
	bdr_dictsel_sketch_update(&a, p.new, p.new_len);
	bdr_dictsel_sketch_update(&b, p.old, p.old_len);
	bdr_dictsel_sketch_update(&c, other, OLD_LEN);
	bdr_dictsel_sketch_update(&small, p.old + 300 * KIB, 64 * KIB); /* part of old */
	cr_assert_gt(bdr_dictsel_sketch_score(&a, &b), 0.9);
	cr_assert_lt(bdr_dictsel_sketch_score(&a, &c), 0.05);
	cr_assert_eq(bdr_dictsel_sketch_score(&a, &a), 1.0);
	/* Containment, not resemblance: the small file is wholly in old. */
	cr_assert_gt(bdr_dictsel_sketch_score(&small, &b), 0.9);
	struct bdr_dictsel_sketch empty;
	cr_assert_eq(bdr_dictsel_sketch_init(&empty, 0), 0);
	cr_assert_eq(bdr_dictsel_sketch_score(&a, &empty), 0.0);
	cr_assert_eq(bdr_dictsel_sketch_score(&empty, &a), 0.0);
	free(other);
	free_pair(&p);
}

/* Text where identifiers were renumbered every few dozen bytes still
 * finds its old place: the anchors that survive vote for it. */
Test(dictsel, renumbered_text)
{
	const size_t len = 512 * KIB;
	uint8_t *old = malloc(len), *new = malloc(len);
	uint64_t x = 3;
	size_t i = 0;

	cr_assert(old && new);
	while (i < len) { /* "name_NNNN = call(name_NNNN, 'lorem ipsum...');\n" */
		char line[160];
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		int n = snprintf(line, sizeof(line), "  var_%05u = helper_%u(var_%05u, \"%08llx dolor sit amet\");\n",
				 (unsigned)(x % 100000), (unsigned)(x >> 20) % 97, (unsigned)(x >> 40) % 100000,
				 (unsigned long long)(x >> 8) & 0xffffffffull);
		for (int j = 0; j < n && i < len; j++)
			old[i++] = (uint8_t)line[j];
	}
	/* new: every "var_" number bumped (same length), and the file
	 * rotated by 100 KiB so nothing is at its old offset. */
	const size_t rot = 100 * KIB;
	for (i = 0; i < len; i++)
		new[(i + rot) % len] = old[i];
	for (i = 0; i + 9 < len; i++)
		if (!memcmp(new + i, "var_", 4))
			new[i + 8] = (uint8_t)('0' + (new[i + 8] - '0' + 1) % 10);

	struct bdr_dictsel_index *ix = index_of(old, len, 0);
	struct bdr_dictsel_window w;
	size_t off = 300 * KIB; /* old 200 KiB */
	cr_assert_eq(bdr_dictsel_pick(ix, new + off, 8 * KIB, off, &w), 0);
	cr_assert_eq(w.how, BDR_DICTSEL_ANCHORED);
	cr_assert(window_holds(&w, 200 * KIB, 8 * KIB), "%llu", (unsigned long long)w.off);
	struct bdr_dictsel_window same = { .off = off - 12 * KIB, .len = BDR_DICTSEL_WINDOW_MAX };
	uint32_t zw = zsize(old, &w, new + off, 8 * KIB);
	uint32_t zs = zsize(old, &same, new + off, 8 * KIB);
	cr_assert_lt(zw * 3, zs * 2, "picked %u, same offset %u", zw, zs);
	bdr_dictsel_index_free(ix);
	free(old);
	free(new);
}
