/* The chunker's promises: chunk sizes within bounds, cut points independent
 * of how the input is split into buffers, edits that disturb only nearby
 * chunks, the average size it is asked for, and boundaries that never
 * change between releases (the known answers below). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <xxhash.h>

#include "bdr/chunker.h"
#include "bdr/error.h"
#include "bdr/hash.h"
#include "testutil.h"

static struct bdr_chunker_params params(uint32_t avg)
{
	struct bdr_chunker_params p;

	bdr_chunker_params_default(&p, avg);
	cr_assert_eq(bdr_chunker_params_check(&p, NULL), 0, "avg %u", avg);
	return p;
}

static uint64_t next_rand(uint64_t *x)
{
	*x ^= *x << 13, *x ^= *x >> 7, *x ^= *x << 17;
	return *x;
}

/* Low-entropy input: words from a small vocabulary, like source text. */
static void fill_text(uint8_t *buf, size_t len, uint64_t seed)
{
	static const char *const words[] = {"int ", "return ", "if (", ") {\n", "}\n", "x", "y = ",
					    "0;\n", "\t", "struct ", "bdr_", "chunk", "->", "len"};
	uint64_t x = seed | 1;

	for (size_t i = 0; i < len;) {
		const char *w = words[next_rand(&x) % (sizeof(words) / sizeof(words[0]))];
		for (; *w && i < len; w++)
			buf[i++] = (uint8_t)*w;
	}
}

/* Chunk end offsets of buf fed in pieces of 1..max_piece bytes (the whole
 * buffer when max_piece is 0); the last chunk ends at len. Returns n. */
static size_t cut(const uint8_t *buf, size_t len, const struct bdr_chunker_params *p,
		  size_t max_piece, uint64_t seed, size_t **ends)
{
	struct bdr_chunker c;
	size_t off = 0, n = 0, cap = len / p->min_size + 2;
	uint64_t x = seed | 1;

	*ends = malloc(cap * sizeof(**ends));
	cr_assert_not_null(*ends);
	bdr_chunker_init(&c, p);
	while (off < len) {
		size_t piece = max_piece ? 1 + next_rand(&x) % max_piece : len;
		size_t end = off + (piece < len - off ? piece : len - off);
		while (off < end) {
			bool is_cut;
			off += bdr_chunker_next(&c, buf + off, end - off, &is_cut);
			if (is_cut)
				(*ends)[n++] = off;
			cr_assert_leq(n, cap);
		}
	}
	if (bdr_chunker_pending(&c)) {
		cr_assert_eq(bdr_chunker_pending(&c), len - (n ? (*ends)[n - 1] : 0));
		(*ends)[n++] = len;
	}
	return n;
}

static void assert_bounds(const size_t *ends, size_t n, size_t len,
			  const struct bdr_chunker_params *p)
{
	for (size_t i = 0, start = 0; i < n; start = ends[i++]) {
		size_t l = ends[i] - start;
		cr_assert_leq(l, p->max_size, "chunk %zu: %zu bytes", i, l);
		if (i + 1 < n)
			cr_assert_geq(l, p->min_size, "chunk %zu: %zu bytes", i, l);
		else
			cr_assert(l > 0 && ends[i] == len, "last chunk ends at %zu of %zu", ends[i], len);
	}
}

enum kind { RANDOM, ZEROS, TEXT };

static uint8_t *make_data(enum kind k, size_t len, uint64_t seed)
{
	uint8_t *buf = malloc(len);

	cr_assert_not_null(buf);
	if (k == RANDOM)
		tu_fill_random(buf, len, seed);
	else if (k == ZEROS)
		memset(buf, 0, len);
	else
		fill_text(buf, len, seed);
	return buf;
}

static const struct bdr_chunker_params odd_params = {.min_size = 300, .avg_size = 1024,
						     .max_size = 5000};

Test(chunker, sizes_within_bounds)
{
	const size_t len = 3 << 20;
	struct bdr_chunker_params ps[] = {params(1024), params(8192), params(131072), odd_params};

	for (int k = RANDOM; k <= TEXT; k++) {
		uint8_t *buf = make_data(k, len, 21);
		for (size_t j = 0; j < sizeof(ps) / sizeof(ps[0]); j++) {
			size_t *ends, n = cut(buf, len, &ps[j], 0, 0, &ends);
			assert_bounds(ends, n, len, &ps[j]);
			free(ends);
		}
		free(buf);
	}
}

static void assert_same_cuts(const uint8_t *buf, size_t len, const struct bdr_chunker_params *p,
			     size_t max_piece)
{
	size_t *a, *b, na = cut(buf, len, p, 0, 0, &a);
	size_t nb = cut(buf, len, p, max_piece, max_piece * 7 + 3, &b);

	cr_assert_eq(na, nb, "pieces of up to %zu: %zu chunks, not %zu", max_piece, nb, na);
	cr_assert_arr_eq(a, b, na * sizeof(*a), "pieces of up to %zu: other cuts", max_piece);
	free(a);
	free(b);
}

Test(chunker, cuts_independent_of_buffer_split)
{
	const size_t len = 2 << 20;
	struct bdr_chunker_params ps[] = {params(4096), params(8192), odd_params};
	size_t pieces[] = {1, 2, 63, 64, 65, 1000, 4096, 70000};

	for (int k = RANDOM; k <= TEXT; k++) {
		uint8_t *buf = make_data(k, len, 22);
		for (size_t j = 0; j < sizeof(ps) / sizeof(ps[0]); j++)
			for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++)
				assert_same_cuts(buf, pieces[i] < 4 ? len / 4 : len, &ps[j], pieces[i]);
		free(buf);
	}
}

Test(chunker, next_on_empty_input_is_a_no_op)
{
	struct bdr_chunker_params p = params(8192);
	struct bdr_chunker c;
	bool is_cut = true;

	bdr_chunker_init(&c, &p);
	cr_assert_eq(bdr_chunker_next(&c, NULL, 0, &is_cut), 0);
	cr_assert(!is_cut);
	cr_assert_eq(bdr_chunker_pending(&c), 0);
}

Test(chunker, reset_starts_a_fresh_chunk)
{
	const size_t len = 1 << 20;
	struct bdr_chunker_params p = params(4096);
	uint8_t *buf = make_data(RANDOM, len, 23);
	size_t *ends, n = cut(buf, len, &p, 0, 0, &ends);
	struct bdr_chunker c;
	bool is_cut;

	/* A chunker left mid-chunk by another file must forget it on reset. */
	bdr_chunker_init(&c, &p);
	bdr_chunker_next(&c, buf + 777, 3000, &is_cut);
	cr_assert_gt(bdr_chunker_pending(&c), 0);
	bdr_chunker_reset(&c);
	cr_assert_eq(bdr_chunker_pending(&c), 0);
	size_t got = bdr_chunker_next(&c, buf, len, &is_cut);
	cr_assert(is_cut);
	cr_assert_eq(got, ends[0]);
	cr_assert_gt(n, 1);
	free(ends);
	free(buf);
}

/* ---- locality: an edit changes only the chunks around it ---- */

static int id_cmp(const void *a, const void *b)
{
	return bdr_chunk_id_cmp(a, b);
}

/* Sorted ids of buf's chunks; count in *n. */
static struct bdr_chunk_id *chunk_ids(const uint8_t *buf, size_t len,
				      const struct bdr_chunker_params *p, size_t *n)
{
	size_t *ends;
	struct bdr_chunk_id *ids;

	*n = cut(buf, len, p, 0, 0, &ends);
	ids = malloc(*n * sizeof(*ids));
	cr_assert_not_null(ids);
	for (size_t i = 0, start = 0; i < *n; start = ends[i++])
		bdr_chunk_id(&ids[i], buf + start, ends[i] - start);
	qsort(ids, *n, sizeof(*ids), id_cmp);
	free(ends);
	return ids;
}

/* How many of b's ids a lacks. */
static size_t ids_missing(const struct bdr_chunk_id *a, size_t na, const struct bdr_chunk_id *b,
			  size_t nb)
{
	size_t missing = 0;

	for (size_t i = 0; i < nb; i++)
		missing += !bsearch(&b[i], a, na, sizeof(*a), id_cmp);
	return missing;
}

/* Replaces del bytes at pos of buf with ins bytes of other content. */
static void assert_local_edit(const uint8_t *buf, size_t len, size_t pos, size_t del, size_t ins)
{
	struct bdr_chunker_params p = params(8192);
	size_t len2 = len - del + ins, na, nb;
	uint8_t *buf2 = malloc(len2);

	cr_assert_not_null(buf2);
	memcpy(buf2, buf, pos);
	memset(buf2 + pos, 0xa5, ins);
	memcpy(buf2 + pos + ins, buf + pos + del, len - pos - del);
	struct bdr_chunk_id *a = chunk_ids(buf, len, &p, &na), *b = chunk_ids(buf2, len2, &p, &nb);
	size_t new_ids = ids_missing(a, na, b, nb), lost = ids_missing(b, nb, a, na);
	/* The edited chunk, and at most one or two neighbours whose cut the edit
	 * moved; every other chunk of the ~450 must be found again. */
	cr_assert_gt(na, 400);
	cr_assert_leq(new_ids, 3, "edit at %zu (-%zu +%zu): %zu of %zu chunks new", pos, del, ins,
		      new_ids, nb);
	cr_assert_leq(lost, 3, "edit at %zu (-%zu +%zu): %zu of %zu chunks lost", pos, del, ins, lost,
		      na);
	free(a);
	free(b);
	free(buf2);
}

Test(chunker, insertion_changes_only_nearby_chunks)
{
	const size_t len = 4 << 20;
	uint8_t *buf = make_data(RANDOM, len, 24);

	for (size_t pos = 12345; pos < len; pos += 777777)
		assert_local_edit(buf, len, pos, 0, 5);
	assert_local_edit(buf, len, len / 2, 0, 1);
	assert_local_edit(buf, len, 0, 0, 9);
	free(buf);
}

Test(chunker, deletion_changes_only_nearby_chunks)
{
	const size_t len = 4 << 20;
	uint8_t *buf = make_data(RANDOM, len, 25);

	for (size_t pos = 54321; pos < len - 100; pos += 777777)
		assert_local_edit(buf, len, pos, 7, 0);
	assert_local_edit(buf, len, len / 2, 1, 0);
	assert_local_edit(buf, len, len - 3, 3, 0);
	free(buf);
}

Test(chunker, average_size_near_requested)
{
	const size_t len = 48 << 20;
	uint8_t *buf = make_data(RANDOM, len, 26);
	uint32_t avgs[] = {1024, 4096, 8192, 16384, 65536};

	for (size_t i = 0; i < sizeof(avgs) / sizeof(avgs[0]); i++) {
		struct bdr_chunker_params p = params(avgs[i]);
		size_t *ends, n = cut(buf, len, &p, 0, 0, &ends);
		double mean = (double)len / (double)n;
		cr_assert(mean > 0.8 * avgs[i] && mean < 1.2 * avgs[i], "avg %u: mean chunk %.0f",
			  avgs[i], mean);
		free(ends);
	}
	free(buf);
}

/* ---- parameters ---- */

Test(chunker, params_default_ratios)
{
	struct bdr_chunker_params p;

	bdr_chunker_params_default(&p, 8192);
	cr_assert_eq(p.min_size, 2048);
	cr_assert_eq(p.avg_size, 8192);
	cr_assert_eq(p.max_size, 65536);
	for (uint32_t avg = 1024; avg <= BDR_CHUNK_MAX_LIMIT / 8; avg *= 2) {
		bdr_chunker_params_default(&p, avg);
		cr_assert_eq(bdr_chunker_params_check(&p, NULL), 0, "avg %u", avg);
	}
	bdr_chunker_params_default(&p, BDR_CHUNK_AVG_DEFAULT);
	cr_assert_eq(bdr_chunker_params_check(&p, NULL), 0);
}

static void assert_rejected(uint32_t min, uint32_t avg, uint32_t max, int err, const char *field)
{
	struct bdr_chunker_params p = {.min_size = min, .avg_size = avg, .max_size = max};
	struct bdr_diag d = {{0}};

	cr_assert_eq(bdr_chunker_params_check(&p, &d), err, "%u/%u/%u", min, avg, max);
	cr_assert_not_null(strstr(d.msg, field), "%u/%u/%u: diag '%s' lacks %s", min, avg, max,
			   d.msg, field);
	cr_assert_eq(bdr_chunker_params_check(&p, NULL), err);
}

Test(chunker, params_check_rejects_bad_values)
{
	assert_rejected(2048, 8000, 65536, -EINVAL, "avg_size");
	assert_rejected(2048, 0, 65536, -EINVAL, "avg_size");
	assert_rejected(255, 1024, 8192, -BDR_ELIMIT, "min_size");
	assert_rejected(0, 1024, 8192, -BDR_ELIMIT, "min_size");
	assert_rejected(65536, 262144, BDR_CHUNK_MAX_LIMIT + 1, -BDR_ELIMIT, "max_size");
	assert_rejected(8192, 8192, 65536, -EINVAL, "min_size");
	assert_rejected(16384, 8192, 65536, -EINVAL, "min_size");
	assert_rejected(2048, 8192, 8192, -EINVAL, "max_size");
	assert_rejected(2048, 8192, 4096, -EINVAL, "max_size");
	/* Defaults past the limits must fail, not wrap. */
	struct bdr_chunker_params p;
	bdr_chunker_params_default(&p, 1u << 30);
	cr_assert_eq(bdr_chunker_params_check(&p, NULL), -BDR_ELIMIT);
	bdr_chunker_params_default(&p, 512);
	cr_assert_eq(bdr_chunker_params_check(&p, NULL), -BDR_ELIMIT);
	/* The smallest and largest accepted shapes. */
	p = (struct bdr_chunker_params){256, 512, 513};
	cr_assert_eq(bdr_chunker_params_check(&p, NULL), 0);
	p = (struct bdr_chunker_params){256, 1u << 19, BDR_CHUNK_MAX_LIMIT};
	cr_assert_eq(bdr_chunker_params_check(&p, NULL), 0);
}

/* ---- known answers: the boundaries are part of the wire identity ---- */

/* Test-local generator, so that no helper change can move the answers. */
static void fill_kat(uint8_t *buf, size_t len)
{
	uint64_t x = 0x6b6174; /* "kat" */

	for (size_t i = 0; i < len; i++) {
		uint64_t z = (x += 0x9E3779B97F4A7C15ull);
		z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
		z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
		buf[i] = (uint8_t)((z ^ (z >> 31)) >> 56);
	}
}

/* XXH3-64 of the chunk lengths as little-endian u32s. */
static uint64_t lengths_digest(const size_t *ends, size_t n)
{
	uint8_t *le = malloc(4 * n);
	uint64_t d;

	for (size_t i = 0, start = 0; i < n; start = ends[i++])
		for (int b = 0; b < 4; b++)
			le[4 * i + b] = (uint8_t)((ends[i] - start) >> (8 * b));
	d = XXH3_64bits(le, 4 * n);
	free(le);
	return d;
}

static void assert_kat(const uint8_t *buf, size_t len, struct bdr_chunker_params p, size_t want_n,
		       size_t want_first, uint64_t want_digest)
{
	size_t *ends, n = cut(buf, len, &p, 0, 0, &ends);
	uint64_t d = lengths_digest(ends, n);

	cr_assert(n == want_n && ends[0] == want_first && d == want_digest,
		  "avg %u/%u/%u: %zu chunks, first ends at %zu, digest 0x%016llx", p.min_size,
		  p.avg_size, p.max_size, n, ends[0], (unsigned long long)d);
	free(ends);
}

/* If this fails, chunk boundaries moved: every stored chunk id would stop
 * matching. Do not update the answers; fix the chunker. */
Test(chunker, boundaries_known_answer)
{
	const size_t len = 4 << 20;
	uint8_t *buf = malloc(len);

	cr_assert_not_null(buf);
	fill_kat(buf, len);
	assert_kat(buf, len, params(4096), 903, 4102, 0xf41ad1d22d63a12full);
	assert_kat(buf, len, params(8192), 440, 11912, 0xc11280ae8946c06full);
	assert_kat(buf, len, params(65536), 59, 70267, 0x70e729eac749a20dull);
	assert_kat(buf, len, odd_params, 3591, 1548, 0x74c37d5b9269bb8full);
	fill_text(buf, len, 27);
	assert_kat(buf, len, params(8192), 457, 8774, 0xf8e8ae2bb5ee8464ull);
	free(buf);
}
