/* Rebuild at the receiving site: only missing chunks travel, the result is
 * bit-exact, renames are free, and nothing unverified is ever activated. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "bdr/db.h"
#include "bdr/error.h"
#include "bdr/library.h"
#include "bdr/rebuild.h"
#include "testutil.h"

static char root[PATH_MAX], src[PATH_MAX];
static struct bdr_key key;
static struct bdr_library *snd, *rcv;

static void s(char *buf, const char *rel)
{
	snprintf(buf, PATH_MAX, "%s/%s", src, rel);
}

static void setup(void)
{
	char b[PATH_MAX];

	tu_mkdtemp(root, "rebuild");
	snprintf(src, sizeof(src), "%s/src", root);
	s(b, "lib/x"), tu_mkdirs(b);
	s(b, "docs"), tu_mkdirs(b);
	s(b, "big.bin"), tu_write_random(b, 4u << 20, 1);
	s(b, "lib/x/mod.so"), tu_write_random(b, 600000, 2), chmod(b, 0755);
	s(b, "docs/readme"), tu_write(b, "read me\n", 8);
	s(b, "moveme.dat"), tu_write_random(b, 1u << 20, 3);
	s(b, "empty"), tu_write(b, "", 0);
	s(b, "lib/link");
	cr_assert_eq(symlink("x/mod.so", b), 0);
	cr_assert_eq(sodium_init() < 0, 0);
	bdr_key_generate(&key);
	snprintf(b, sizeof(b), "%s/sender", root);
	snd = tu_library(b, 0);
	snprintf(b, sizeof(b), "%s/receiver", root);
	rcv = tu_library(b, 0);
}

static void teardown(void)
{
	bdr_library_close(snd);
	bdr_library_close(rcv);
	tu_rmrf(root);
}

TestSuite(rebuild, .init = setup, .fini = teardown);

static void assert_receiver_has(uint64_t v)
{
	char tree[PATH_MAX];
	uint64_t latest;

	cr_assert_eq(bdr_library_latest(rcv, "app", &latest), 0);
	cr_assert_eq(latest, v);
	cr_assert_eq(bdr_library_tree_path(rcv, "app", v, tree, sizeof(tree)), 0);
	cr_assert_eq(tu_tree_diff(src, tree, 1), 0, "receiver's version %llu differs", (unsigned long long)v);
}

/* Overwrites len bytes at off with noise from seed. */
static void poke(const char *rel, off_t off, size_t len, uint64_t seed)
{
	char b[PATH_MAX];
	uint8_t buf[4096];
	int fd;

	s(b, rel);
	fd = open(b, O_WRONLY);
	cr_assert(fd >= 0);
	tu_fill_random(buf, len, seed);
	cr_assert_eq(pwrite(fd, buf, len, off), (ssize_t)len);
	close(fd);
}

Test(rebuild, first_push_is_bit_exact_and_sends_every_chunk_once)
{
	uint64_t missing;

	cr_assert_eq(tu_import(snd, &key, "app", src), 1);
	cr_assert_eq(tu_replicate(snd, rcv, "app", 1, &missing), 0);
	assert_receiver_has(1);
	/* Random content has no repeats: every byte travels, none twice. */
	cr_assert_eq(missing, (4u << 20) + 600000 + 8 + (1u << 20));
}

Test(rebuild, second_push_sends_only_the_edit_and_renames_are_free)
{
	const struct bdr_chunker_params *p = bdr_library_chunking(snd);
	char a[PATH_MAX], b[PATH_MAX];
	uint64_t missing;

	tu_import(snd, &key, "app", src);
	cr_assert_eq(tu_replicate(snd, rcv, "app", 1, NULL), 0);
	poke("big.bin", 2000000, 100, 9);
	s(a, "moveme.dat"), s(b, "docs/moved.dat");
	cr_assert_eq(rename(a, b), 0);
	s(b, "new.txt"), tu_write(b, "brand new\n", 10);
	s(b, "docs/readme");
	cr_assert_eq(unlink(b), 0);
	cr_assert_eq(tu_import(snd, &key, "app", src), 2);
	cr_assert_eq(tu_replicate(snd, rcv, "app", 2, &missing), 0);
	assert_receiver_has(2);
	/* An overwrite touches the chunk it lands in and at most the chunks
	 * whose cut points lay within the rolling window of it. */
	cr_assert_leq(missing, 10 + 2 * (uint64_t)p->max_size, "sent %llu bytes", (unsigned long long)missing);
	cr_assert_geq(missing, 10 + 100, "the edit cannot travel in fewer bytes than itself");
}

Test(rebuild, a_chunk_with_wrong_bytes_or_not_asked_for_is_refused)
{
	char path[PATH_MAX];
	struct bdr_rebuild *rb;
	struct bdr_chunk_ref *list;
	struct bdr_chunk_id bogus = { { 1, 2, 3 } };
	struct bdr_diag d = { { 0 } };
	uint8_t *mbuf, junk[8192];
	size_t mlen;
	uint32_t n;

	tu_import(snd, &key, "app", src);
	snprintf(path, sizeof(path), "%s/packages/app/1/manifest", bdr_library_dir(snd));
	mbuf = tu_read(path, &mlen);
	cr_assert_eq(bdr_rebuild_begin(rcv, mbuf, mlen, key.pk, &rb, &d), 0, "%s", d.msg);
	cr_assert_eq(bdr_rebuild_missing(rb, &list, &n, NULL), 0);
	cr_assert_gt(n, 0);
	tu_fill_random(junk, sizeof(junk), 4);
	cr_assert_eq(bdr_rebuild_add_chunk(rb, &list[0].id, junk, list[0].len, &d), -BDR_EHASH);
	cr_assert_eq(bdr_rebuild_add_chunk(rb, &bogus, junk, 100, &d), -BDR_EFORMAT);
	cr_assert_not_null(strstr(d.msg, "not requested"), "%s", d.msg);
	cr_assert_eq(bdr_rebuild_finish(rb, &d), -BDR_EMISSING);
	bdr_rebuild_free(rb);
	free(list);
	free(mbuf);
	cr_assert_eq(bdr_library_latest(rcv, "app", &(uint64_t){ 0 }), -BDR_ENOTFOUND);
}

Test(rebuild, a_manifest_from_an_unexpected_signer_is_refused)
{
	char path[PATH_MAX];
	struct bdr_rebuild *rb;
	struct bdr_key other;
	uint8_t *mbuf;
	size_t mlen;

	bdr_key_generate(&other);
	tu_import(snd, &key, "app", src);
	snprintf(path, sizeof(path), "%s/packages/app/1/manifest", bdr_library_dir(snd));
	mbuf = tu_read(path, &mlen);
	cr_assert_eq(bdr_rebuild_begin(rcv, mbuf, mlen, other.pk, &rb, NULL), -BDR_EKEY);
	mbuf[mlen / 2] ^= 1;
	cr_assert_lt(bdr_rebuild_begin(rcv, mbuf, mlen, NULL, &rb, NULL), 0);
	free(mbuf);
}

Test(rebuild, a_corrupt_local_file_is_caught_and_the_old_version_stays_active)
{
	char held[PATH_MAX];
	uint64_t missing, latest;
	int fd;

	tu_import(snd, &key, "app", src);
	cr_assert_eq(tu_replicate(snd, rcv, "app", 1, NULL), 0);
	/* Rot one byte of the receiver's copy of big.bin, far from the edit
	 * below, so version 2 takes that chunk from the rotten file. */
	snprintf(held, sizeof(held), "%s/packages/app/1/tree/big.bin", bdr_library_dir(rcv));
	fd = open(held, O_WRONLY);
	cr_assert(fd >= 0);
	cr_assert_eq(pwrite(fd, "\xff\x00\xff", 3, 100), 3);
	close(fd);
	poke("big.bin", 3000000, 50, 11);
	tu_import(snd, &key, "app", src);
	cr_assert_eq(tu_replicate(snd, rcv, "app", 2, &missing), -BDR_EHASH);
	cr_assert_eq(bdr_library_latest(rcv, "app", &latest), 0);
	cr_assert_eq(latest, 1, "an unverified version was activated");
}

Test(rebuild, an_old_or_held_version_is_refused)
{
	char path[PATH_MAX];
	struct bdr_rebuild *rb;
	struct bdr_diag d = { { 0 } };
	uint8_t *mbuf;
	size_t mlen;

	tu_import(snd, &key, "app", src);
	cr_assert_eq(tu_replicate(snd, rcv, "app", 1, NULL), 0);
	snprintf(path, sizeof(path), "%s/packages/app/1/manifest", bdr_library_dir(snd));
	mbuf = tu_read(path, &mlen);
	cr_assert_eq(bdr_rebuild_begin(rcv, mbuf, mlen, NULL, &rb, &d), -EEXIST);
	cr_assert_not_null(strstr(d.msg, "already"), "%s", d.msg);
	free(mbuf);
}

static uint8_t *sender_manifest(uint64_t v, size_t *len)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/packages/app/%llu/manifest", bdr_library_dir(snd),
		 (unsigned long long)v);
	return tu_read(path, len);
}

/* Feeds the first k missing chunks (all if k is UINT32_MAX) from the
 * sender's library; returns their bytes. */
static uint64_t feed_some(struct bdr_rebuild *rb, uint32_t k)
{
	struct bdr_chunk_ref *list;
	struct bdr_db_loc loc;
	struct bdr_diag d = { { 0 } };
	uint8_t *buf = malloc(BDR_CHUNK_MAX_LIMIT);
	char path[PATH_MAX];
	uint64_t sum = 0;
	uint32_t n;

	cr_assert_eq(bdr_rebuild_missing(rb, &list, &n, NULL), 0);
	for (uint32_t i = 0; i < n && i < k; i++) {
		cr_assert_eq(bdr_db_chunk_find(bdr_library_db(snd), &list[i].id, list[i].len, &loc), 0);
		cr_assert_eq(bdr_library_loc_path(snd, &loc, path, sizeof(path)), 0);
		int fd = open(path, O_RDONLY);
		cr_assert_eq(pread(fd, buf, list[i].len, (off_t)loc.offset), (ssize_t)list[i].len);
		close(fd);
		cr_assert_eq(bdr_rebuild_add_chunk(rb, &list[i].id, buf, list[i].len, &d), 0, "%s", d.msg);
		sum += list[i].len;
	}
	free(list);
	free(buf);
	return sum;
}

static uint64_t missing_bytes(struct bdr_rebuild *rb)
{
	struct bdr_chunk_ref *list;
	uint64_t bytes;
	uint32_t n;

	cr_assert_eq(bdr_rebuild_missing(rb, &list, &n, &bytes), 0);
	free(list);
	return bytes;
}

Test(rebuild, an_interrupted_transfer_resumes_without_resending_a_chunk)
{
	struct bdr_rebuild *rb;
	struct bdr_diag d = { { 0 } };
	uint64_t total, first, second;
	uint8_t *m;
	size_t mlen;

	tu_import(snd, &key, "app", src);
	m = sender_manifest(1, &mlen);
	cr_assert_eq(bdr_rebuild_begin(rcv, m, mlen, NULL, &rb, &d), 0, "%s", d.msg);
	total = missing_bytes(rb);
	first = feed_some(rb, 200);
	bdr_rebuild_free(rb); /* the connection drops */

	/* A torn record at the end, as a crash mid-write would leave. */
	char pack[PATH_MAX];
	cr_assert_eq(bdr_library_partial_path(rcv, "app", 1, pack, sizeof(pack)), 0);
	int fd = open(pack, O_WRONLY | O_APPEND);
	cr_assert(fd >= 0, "no partial pack kept at %s", pack);
	cr_assert_eq(write(fd, "BDRK\x10\x00\x00\x00partial", 15), 15);
	close(fd);

	cr_assert_eq(bdr_rebuild_begin(rcv, m, mlen, NULL, &rb, &d), 0, "%s", d.msg);
	cr_assert_eq(missing_bytes(rb), total - first, "resume lists chunks already received");
	second = feed_some(rb, UINT32_MAX);
	cr_assert_eq(first + second, total, "bytes sent over both attempts exceed one transfer");
	cr_assert_eq(bdr_rebuild_finish(rb, &d), 0, "%s", d.msg);
	bdr_rebuild_free(rb);
	free(m);
	assert_receiver_has(1);
	cr_assert_eq(access(pack, F_OK), -1, "partial pack left after activation");
}

Test(rebuild, two_rebuilds_of_one_version_exclude_each_other)
{
	struct bdr_rebuild *a, *b;
	struct bdr_diag d = { { 0 } };
	uint8_t *m;
	size_t mlen;

	tu_import(snd, &key, "app", src);
	m = sender_manifest(1, &mlen);
	cr_assert_eq(bdr_rebuild_begin(rcv, m, mlen, NULL, &a, &d), 0, "%s", d.msg);
	cr_assert_eq(bdr_rebuild_begin(rcv, m, mlen, NULL, &b, &d), -EBUSY);
	bdr_rebuild_discard(a);
	bdr_rebuild_free(a);
	cr_assert_eq(bdr_rebuild_begin(rcv, m, mlen, NULL, &b, &d), 0, "%s", d.msg);
	bdr_rebuild_free(b);
	free(m);
}

Test(rebuild, a_file_that_fails_verification_is_refetched_whole)
{
	struct bdr_rebuild *rb;
	struct bdr_diag d = { { 0 } };
	const uint32_t *bad;
	char held[PATH_MAX];
	uint32_t nbad;
	uint8_t *m;
	size_t mlen;
	int fd;

	tu_import(snd, &key, "app", src);
	cr_assert_eq(tu_replicate(snd, rcv, "app", 1, NULL), 0);
	snprintf(held, sizeof(held), "%s/packages/app/1/tree/big.bin", bdr_library_dir(rcv));
	fd = open(held, O_WRONLY);
	cr_assert_eq(pwrite(fd, "\xff\x00\xff", 3, 100), 3);
	close(fd);
	poke("big.bin", 3000000, 50, 11);
	tu_import(snd, &key, "app", src);

	m = sender_manifest(2, &mlen);
	cr_assert_eq(bdr_rebuild_begin(rcv, m, mlen, NULL, &rb, &d), 0, "%s", d.msg);
	feed_some(rb, UINT32_MAX);
	cr_assert_eq(bdr_rebuild_finish(rb, &d), -BDR_EHASH);
	cr_assert_not_null(strstr(d.msg, "big.bin"), "%s", d.msg);
	bad = bdr_rebuild_bad_files(rb, &nbad);
	cr_assert_eq(nbad, 1);
	cr_assert_str_eq(bdr_rebuild_manifest(rb)->entries[bad[0]].path, "big.bin");
	cr_assert_eq(bdr_rebuild_refetch(rb, bad[0]), 0);
	/* Every chunk of the file travels now, except those already received. */
	cr_assert_gt(missing_bytes(rb), (3u << 20), "the bad file's held chunks were not asked for");
	feed_some(rb, UINT32_MAX);
	cr_assert_eq(bdr_rebuild_finish(rb, &d), 0, "%s", d.msg);
	bdr_rebuild_free(rb);
	free(m);
	assert_receiver_has(2);
}

/* What a daemon charges a peer for a plan: the bound it takes before
 * planning holds what the plan then holds, which is more than the manifest. */
Test(rebuild, footprint_within_its_bound)
{
	char path[PATH_MAX];
	struct bdr_rebuild *rb;
	struct bdr_diag d = { { 0 } };
	uint8_t *mbuf;
	size_t mlen;
	uint64_t n;

	tu_import(snd, &key, "app", src);
	snprintf(path, sizeof(path), "%s/packages/app/1/manifest", bdr_library_dir(snd));
	mbuf = tu_read(path, &mlen);
	cr_assert_eq(bdr_rebuild_begin(rcv, mbuf, mlen, key.pk, &rb, &d), 0, "%s", d.msg);
	/* what scales with the manifest (the fixed part would hide it) */
	n = bdr_rebuild_footprint(rb) - bdr_rebuild_footprint_max(0);
	cr_assert_gt(n, 2 * (uint64_t)mlen, "the copy and the decoded manifest at least");
	cr_assert_leq(n, bdr_rebuild_footprint_max(mlen) - bdr_rebuild_footprint_max(0),
		      "%llu bytes for a manifest of %zu", (unsigned long long)n, mlen);

	bdr_rebuild_free(rb);
	free(mbuf);
}
