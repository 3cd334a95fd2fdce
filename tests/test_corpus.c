/* Every shared corpus (../shared/corpora) through the core API alone: the
 * sender imports v1 and v2, the receiver rebuilds v1 then v2, and v2 must
 * arrive bit-exact with no more chunk bytes than the actual change allows.
 *
 * The bound, per v2 file: 0 if the receiver already holds its content (a
 * renamed or moved file); for a file whose path existed in v1, the span
 * between the longest common prefix and suffix of the two, plus one
 * maximum chunk on each side (a cut point can move at most that far from
 * an edit); for a new file, its size. */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "bdr/db.h"
#include "bdr/library.h"
#include "bdr/manifest.h"
#include "testutil.h"

#define BLK 65536

/* Bytes equal at the start (from_end 0) or the end of both files. */
static uint64_t common_run(int a, int b, uint64_t la, uint64_t lb, int from_end, uint64_t limit)
{
	static uint8_t ba[BLK], bb[BLK];
	uint64_t n = 0;

	while (n < limit) {
		size_t k = limit - n < BLK ? (size_t)(limit - n) : BLK;
		off_t oa = from_end ? (off_t)(la - n - k) : (off_t)n;
		off_t ob = from_end ? (off_t)(lb - n - k) : (off_t)n;
		cr_assert_eq(pread(a, ba, k, oa), (ssize_t)k);
		cr_assert_eq(pread(b, bb, k, ob), (ssize_t)k);
		for (size_t i = 0; i < k; i++) {
			size_t j = from_end ? k - 1 - i : i;
			if (ba[j] != bb[j])
				return n + i;
		}
		n += k;
	}
	return n;
}

static uint64_t file_bound(const char *v1, const char *v2, const struct bdr_entry *e, uint32_t max)
{
	char pa[PATH_MAX], pb[PATH_MAX];
	struct stat st;
	uint64_t pre, suf, span;

	snprintf(pa, sizeof(pa), "%s/%s", v1, e->path);
	snprintf(pb, sizeof(pb), "%s/%s", v2, e->path);
	if (lstat(pa, &st) < 0 || !S_ISREG(st.st_mode))
		return e->size;
	int a = open(pa, O_RDONLY), b = open(pb, O_RDONLY);
	cr_assert(a >= 0 && b >= 0);
	uint64_t la = (uint64_t)st.st_size, lb = e->size, lim = la < lb ? la : lb;
	pre = common_run(a, b, la, lb, 0, lim);
	suf = common_run(a, b, la, lb, 1, lim - pre);
	close(a), close(b);
	span = lb - pre - suf + 2ull * max;
	return span < lb ? span : lb;
}

static uint64_t change_bound(struct bdr_library *rcv, const struct bdr_manifest *m, const char *v1,
			     const char *v2, uint32_t max)
{
	uint64_t bound = 0;

	for (uint32_t i = 0; i < m->nentries; i++) {
		const struct bdr_entry *e = &m->entries[i];
		if (e->type != BDR_ENTRY_FILE ||
		    bdr_db_file_find(bdr_library_db(rcv), e->hash, e->mode, e->mtime_ns, NULL) == 0)
			continue;
		bound += file_bound(v1, v2, e, max);
	}
	return bound;
}

static void run_corpus(const char *name)
{
	char dir[PATH_MAX], v1[PATH_MAX], v2[PATH_MAX], root[PATH_MAX], b[PATH_MAX], tree[PATH_MAX];
	struct bdr_library *snd, *rcv;
	struct bdr_manifest m;
	struct bdr_key key;
	uint64_t first, missing, bound, total = 0;

	if (!tu_corpus(name, dir))
		cr_skip_test("corpus '%s' not found under $BDR_CORPORA (run ../shared/corpora/fetch.sh)", name);
	snprintf(v1, sizeof(v1), "%s/v1", dir);
	snprintf(v2, sizeof(v2), "%s/v2", dir);
	tu_mkdtemp(root, name);
	cr_assert_eq(sodium_init() < 0, 0);
	bdr_key_generate(&key);
	snprintf(b, sizeof(b), "%s/sender", root), snd = tu_library(b, 0);
	snprintf(b, sizeof(b), "%s/receiver", root), rcv = tu_library(b, 0);

	cr_assert_eq(tu_import(snd, &key, name, v1), 1);
	cr_assert_eq(tu_replicate(snd, rcv, name, 1, &first), 0);
	cr_assert_eq(tu_import(snd, &key, name, v2), 2);
	cr_assert_eq(bdr_library_manifest_load(snd, name, 2, &m, NULL), 0);
	bound = change_bound(rcv, &m, v1, v2, bdr_library_chunking(snd)->max_size);
	for (uint32_t i = 0; i < m.nentries; i++)
		total += m.entries[i].type == BDR_ENTRY_FILE ? m.entries[i].size : 0;
	bdr_manifest_free(&m);

	cr_assert_eq(tu_replicate(snd, rcv, name, 2, &missing), 0);
	cr_assert_eq(bdr_library_tree_path(rcv, name, 2, tree, sizeof(tree)), 0);
	cr_assert_eq(tu_tree_diff(v2, tree, 1), 0, "%s: receiver's v2 is not bit-exact", name);
	printf("corpus %-10s v2 %10" PRIu64 " B  initial %10" PRIu64 " B  incremental %9" PRIu64
	       " B (%.2f%%)  change bound %10" PRIu64 " B\n",
	       name, total, first, missing, total ? 100.0 * missing / total : 0.0, bound);
	cr_assert_leq(missing, bound, "%s: %" PRIu64 " chunk bytes for a change bounded by %" PRIu64,
		      name, missing, bound);
	bdr_library_close(snd);
	bdr_library_close(rcv);
	tu_rmrf(root);
}

Test(corpus, typescript) { run_corpus("typescript"); }
Test(corpus, esbuild) { run_corpus("esbuild"); }
Test(corpus, lodash) { run_corpus("lodash"); }
Test(corpus, synthetic, .timeout = 600) { run_corpus("synthetic"); }
