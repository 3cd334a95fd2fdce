/* The site database: what the library relies on. Manifests are built by
 * hand here, so these tests need nothing from the manifest codec. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <sqlite3.h>

#include "bdr/db.h"
#include "bdr/error.h"
#include "testutil.h"

static char dir[PATH_MAX], dbpath[PATH_MAX];

static void setup(void)
{
	tu_mkdtemp(dir, "db");
	snprintf(dbpath, sizeof(dbpath), "%s/bdr.db", dir);
}

static void teardown(void)
{
	tu_rmrf(dir);
}

TestSuite(db, .init = setup, .fini = teardown);

/* ---- hand-built manifests ---- */

static void mf_free(struct bdr_manifest *m)
{
	for (uint32_t i = 0; i < m->nentries; i++) {
		free(m->entries[i].path);
		free(m->entries[i].target);
		free(m->entries[i].chunks);
	}
	free(m->entries);
	free(m->package);
	free(m->site);
	memset(m, 0, sizeof(*m));
}

static void mf_init(struct bdr_manifest *m, const char *package, uint64_t version, uint32_t cap)
{
	memset(m, 0, sizeof(*m));
	m->package = strdup(package);
	m->version = version;
	m->site = strdup("site-a");
	m->created_ns = 1700000000000000000ll + (int64_t)version;
	memset(m->signer, 0x5a, sizeof(m->signer));
	m->cap = cap;
	m->entries = calloc(cap ? cap : 1, sizeof(*m->entries));
	cr_assert(m->package && m->site && m->entries);
}

static struct bdr_entry *mf_add(struct bdr_manifest *m, const char *path, uint8_t type)
{
	cr_assert_lt(m->nentries, m->cap);
	struct bdr_entry *e = &m->entries[m->nentries++];
	e->path = strdup(path);
	e->type = type;
	e->mode = type == BDR_ENTRY_DIR ? 0755 : 0644;
	cr_assert_not_null(e->path);
	return e;
}

/* Distinct, reproducible ids and hashes from one number. */
static void chunk_id_of(struct bdr_chunk_id *id, uint64_t n)
{
	tu_fill_random(id->b, sizeof(id->b), n * 2654435761u + 17);
}

/* A file whose content is "content number c": chunk j of it is the chunk
 * c * 1000000 + j, and chunk j has length 1000 + (c + j) % 500. */
static struct bdr_entry *mf_file(struct bdr_manifest *m, const char *path, uint64_t c,
				 uint32_t nchunks, uint32_t mode, int64_t mtime_ns)
{
	struct bdr_entry *e = mf_add(m, path, BDR_ENTRY_FILE);

	e->mode = mode;
	e->mtime_ns = mtime_ns;
	e->nchunks = nchunks;
	e->chunks = calloc(nchunks ? nchunks : 1, sizeof(*e->chunks));
	cr_assert_not_null(e->chunks);
	tu_fill_random(e->hash, sizeof(e->hash), c + 1);
	for (uint32_t j = 0; j < nchunks; j++) {
		chunk_id_of(&e->chunks[j].id, c * 1000000 + j);
		e->chunks[j].len = 1000 + (uint32_t)((c + j) % 500);
		e->size += e->chunks[j].len;
	}
	return e;
}

/* nfiles files "d/fNNNN" of nchunks chunks each, file i with content i. */
static void mf_files(struct bdr_manifest *m, const char *package, uint64_t version,
		     uint32_t nfiles, uint32_t nchunks)
{
	mf_init(m, package, version, nfiles);
	for (uint32_t i = 0; i < nfiles; i++) {
		char p[32];
		snprintf(p, sizeof(p), "d/f%04u", i);
		mf_file(m, p, i, nchunks, 0644, i);
	}
}

/* Overwrites len bytes of the database file at off with noise. */
static void scribble(off_t off, size_t len, uint64_t seed)
{
	uint8_t *junk = malloc(len);
	int fd = open(dbpath, O_WRONLY);

	cr_assert(junk && fd >= 0);
	tu_fill_random(junk, len, seed);
	cr_assert_eq(pwrite(fd, junk, len, off), (ssize_t)len);
	close(fd);
	free(junk);
}

static struct bdr_db *open_db(void)
{
	struct bdr_db *db;
	struct bdr_diag d = { "" };
	int err = bdr_db_open(&db, dbpath, &d);

	cr_assert_eq(err, 0, "open: %s (%s)", bdr_strerror(err), d.msg);
	return db;
}

/* A closed database at dbpath holding m = mf_files("pkg", 1, ...). */
static void populate(struct bdr_manifest *m, uint32_t nfiles, uint32_t nchunks)
{
	struct bdr_db *db = open_db();

	mf_files(m, "pkg", 1, nfiles, nchunks);
	cr_assert_eq(bdr_db_version_add(db, m), 0, "%s", bdr_db_errmsg(db));
	bdr_db_close(db);
}

static struct bdr_db_stats stats(struct bdr_db *db)
{
	struct bdr_db_stats st;

	cr_assert_eq(bdr_db_stats(db, &st), 0);
	return st;
}

/* Every chunk of e is found in (package, version, e->path) at the sum of
 * the lengths before it, with e's mode and mtime. */
static void expect_chunks(struct bdr_db *db, const struct bdr_entry *e, const char *package,
			  uint64_t version)
{
	uint64_t off = 0;

	for (uint32_t j = 0; j < e->nchunks; j++) {
		struct bdr_db_loc loc;
		int err = bdr_db_chunk_find(db, &e->chunks[j].id, e->chunks[j].len, &loc);

		cr_assert_eq(err, 0, "%s chunk %u: %s (%s)", e->path, j, bdr_strerror(err),
			     bdr_db_errmsg(db));
		cr_assert_str_eq(loc.package, package);
		cr_assert_eq(loc.version, version);
		cr_assert_str_eq(loc.path, e->path);
		cr_assert_eq(loc.offset, off, "%s chunk %u at %llu, want %llu", e->path, j,
			     (unsigned long long)loc.offset, (unsigned long long)off);
		cr_assert_eq(loc.mode, e->mode);
		cr_assert_eq(loc.mtime_ns, e->mtime_ns);
		off += e->chunks[j].len;
	}
}

static void expect_no_chunks(struct bdr_db *db, const struct bdr_entry *e)
{
	for (uint32_t j = 0; j < e->nchunks; j++) {
		struct bdr_db_loc loc;

		cr_assert_eq(bdr_db_chunk_find(db, &e->chunks[j].id, e->chunks[j].len, &loc),
			     -BDR_ENOTFOUND, "%s chunk %u still found", e->path, j);
		cr_assert_eq(bdr_db_chunk_find(db, &e->chunks[j].id, e->chunks[j].len, NULL),
			     -BDR_ENOTFOUND);
	}
}

static void expect_empty(struct bdr_db *db)
{
	struct bdr_db_stats st = stats(db);

	cr_assert_eq(st.packages + st.versions + st.files + st.blobs + st.chunks, 0);
}

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* ---- adding and finding ---- */

Test(db, chunks_found_at_their_offsets)
{
	struct bdr_db *db = open_db();
	struct bdr_manifest m;
	struct bdr_entry *e[3];

	mf_init(&m, "pkg", 1, 8);
	mf_add(&m, "dir", BDR_ENTRY_DIR);
	e[0] = mf_file(&m, "dir/a", 1, 7, 0644, 111);
	e[1] = mf_file(&m, "dir/b", 2, 1, 0600, 222);
	e[2] = mf_file(&m, "empty", 3, 0, 0640, 333);
	struct bdr_entry *l = mf_add(&m, "link", BDR_ENTRY_SYMLINK);
	l->target = strdup("dir/a");
	l->size = 5;
	cr_assert_eq(bdr_db_version_add(db, &m), 0, "%s", bdr_db_errmsg(db));

	for (int i = 0; i < 3; i++)
		expect_chunks(db, e[i], "pkg", 1);
	struct bdr_db_stats st = stats(db);
	cr_assert_eq(st.packages, 1);
	cr_assert_eq(st.versions, 1);
	cr_assert_eq(st.files, 3, "only regular files are indexed");
	cr_assert_eq(st.blobs, 3);
	cr_assert_eq(st.chunks, 8);

	/* Existence check without a location; wrong length; unknown id. */
	cr_assert_eq(bdr_db_chunk_find(db, &e[0]->chunks[3].id, e[0]->chunks[3].len, NULL), 0);
	cr_assert_eq(bdr_db_chunk_find(db, &e[0]->chunks[3].id, e[0]->chunks[3].len + 1, NULL),
		     -BDR_ENOTFOUND);
	struct bdr_chunk_id unknown;
	chunk_id_of(&unknown, 424242);
	struct bdr_db_loc loc;
	cr_assert_eq(bdr_db_chunk_find(db, &unknown, 1000, &loc), -BDR_ENOTFOUND);
	mf_free(&m);
	bdr_db_close(db);
}

Test(db, repeated_chunk_indexed_once_at_first_offset)
{
	struct bdr_db *db = open_db();
	struct bdr_manifest m;
	struct bdr_db_loc loc;

	mf_init(&m, "pkg", 1, 1);
	struct bdr_entry *e = mf_file(&m, "f", 1, 3, 0644, 1);
	/* chunks: A B A */
	e->size -= e->chunks[2].len;
	e->chunks[2] = e->chunks[0];
	e->size += e->chunks[2].len;
	cr_assert_eq(bdr_db_version_add(db, &m), 0, "%s", bdr_db_errmsg(db));
	cr_assert_eq(bdr_db_chunk_find(db, &e->chunks[0].id, e->chunks[0].len, &loc), 0);
	cr_assert_eq(loc.offset, 0);
	cr_assert_eq(bdr_db_chunk_find(db, &e->chunks[1].id, e->chunks[1].len, &loc), 0);
	cr_assert_eq(loc.offset, e->chunks[0].len);
	cr_assert_eq(stats(db).chunks, 2);
	mf_free(&m);
	bdr_db_close(db);
}

Test(db, file_find_prefers_equal_mode_and_mtime)
{
	struct bdr_db *db = open_db();
	struct bdr_manifest m1, m2;
	struct bdr_db_loc loc;

	mf_init(&m1, "pkg", 1, 1);
	struct bdr_entry *a = mf_file(&m1, "a", 7, 4, 0644, 1000);
	mf_init(&m2, "pkg", 2, 2);
	mf_file(&m2, "b", 7, 4, 0755, 2000); /* same content, other metadata */
	mf_file(&m2, "c", 7, 4, 0600, 3000);
	cr_assert_eq(bdr_db_version_add(db, &m1), 0);
	cr_assert_eq(bdr_db_version_add(db, &m2), 0);
	cr_assert_eq(stats(db).blobs, 1);

	cr_assert_eq(bdr_db_file_find(db, a->hash, 0755, 2000, &loc), 0);
	cr_assert_str_eq(loc.path, "b");
	cr_assert_eq(loc.version, 2);
	cr_assert_eq(loc.mode, 0755);
	cr_assert_eq(loc.mtime_ns, 2000);
	cr_assert_eq(bdr_db_file_find(db, a->hash, 0644, 1000, &loc), 0);
	cr_assert_str_eq(loc.path, "a");
	cr_assert_eq(loc.version, 1);
	cr_assert_eq(loc.offset, 0);
	cr_assert_eq(bdr_db_file_find(db, a->hash, 0600, 3000, &loc), 0);
	cr_assert_str_eq(loc.path, "c");
	/* No metadata match: still some file with the content. */
	cr_assert_eq(bdr_db_file_find(db, a->hash, 0700, 5, &loc), 0);
	cr_assert_str_eq(loc.package, "pkg");

	uint8_t other[BDR_FILE_HASH_LEN] = { 0 };
	cr_assert_eq(bdr_db_file_find(db, other, 0644, 1000, &loc), -BDR_ENOTFOUND);
	mf_free(&m1);
	mf_free(&m2);
	bdr_db_close(db);
}

Test(db, shared_blob_outlives_one_version_not_both)
{
	struct bdr_db *db = open_db();
	struct bdr_manifest m1, m2;

	mf_init(&m1, "pkg", 1, 2);
	struct bdr_entry *shared1 = mf_file(&m1, "shared", 1, 10, 0644, 5);
	struct bdr_entry *old = mf_file(&m1, "old", 2, 10, 0644, 5);
	mf_init(&m2, "pkg", 2, 2);
	struct bdr_entry *fresh = mf_file(&m2, "new", 3, 10, 0644, 6);
	struct bdr_entry *shared2 = mf_file(&m2, "shared", 1, 10, 0644, 5);
	cr_assert_eq(bdr_db_version_add(db, &m1), 0);
	cr_assert_eq(bdr_db_version_add(db, &m2), 0);

	struct bdr_db_stats st = stats(db);
	cr_assert_eq(st.versions, 2);
	cr_assert_eq(st.files, 4);
	cr_assert_eq(st.blobs, 3, "the shared file is one blob");
	cr_assert_eq(st.chunks, 30);

	cr_assert_eq(bdr_db_version_remove(db, "pkg", 1), 0, "%s", bdr_db_errmsg(db));
	expect_chunks(db, shared2, "pkg", 2);
	expect_chunks(db, fresh, "pkg", 2);
	expect_no_chunks(db, old);
	st = stats(db);
	cr_assert_eq(st.blobs, 2);
	cr_assert_eq(st.chunks, 20);

	cr_assert_eq(bdr_db_version_remove(db, "pkg", 2), 0);
	expect_no_chunks(db, shared1);
	expect_no_chunks(db, fresh);
	struct bdr_db_loc loc;
	cr_assert_eq(bdr_db_file_find(db, shared1->hash, 0644, 5, &loc), -BDR_ENOTFOUND);
	expect_empty(db);

	char **names;
	size_t n;
	cr_assert_eq(bdr_db_packages(db, &names, &n), 0);
	cr_assert_eq(n, 0);
	bdr_db_strv_free(names, n);
	cr_assert_eq(bdr_db_version_remove(db, "pkg", 2), -BDR_ENOTFOUND);
	cr_assert_eq(bdr_db_version_remove(db, "nope", 1), -BDR_ENOTFOUND);
	mf_free(&m1);
	mf_free(&m2);
	bdr_db_close(db);
}

Test(db, version_add_is_idempotent)
{
	struct bdr_db *db = open_db();
	struct bdr_manifest m;

	mf_files(&m, "pkg", 3, 2, 5);
	cr_assert_eq(bdr_db_version_add(db, &m), 0);
	struct bdr_db_stats a = stats(db);
	cr_assert_eq(bdr_db_version_add(db, &m), 0);
	struct bdr_db_stats b = stats(db);
	cr_assert_eq(memcmp(&a, &b, sizeof(a)), 0);
	mf_free(&m);
	bdr_db_close(db);
}

Test(db, bad_manifest_leaves_nothing_behind)
{
	struct bdr_db *db = open_db();
	struct bdr_manifest m;

	mf_files(&m, "pkg", 1, 2, 5);
	m.entries[1].size += 1; /* chunks no longer add up */
	cr_assert_eq(bdr_db_version_add(db, &m), -BDR_EFORMAT);
	cr_assert_neq(bdr_db_errmsg(db)[0], '\0');
	expect_empty(db);
	mf_free(&m);

	mf_init(&m, "pkg", 0, 0);
	cr_assert_eq(bdr_db_version_add(db, &m), -BDR_ELIMIT, "version 0");
	mf_free(&m);
	bdr_db_close(db);
}

Test(db, versions_ascending_per_package)
{
	struct bdr_db *db = open_db();
	static const uint64_t add[] = { 10, 2, 7, 1000000000000ull };
	uint64_t *v;
	size_t n;

	for (size_t i = 0; i < 4; i++) {
		struct bdr_manifest m;
		mf_init(&m, "pkg", add[i], 1);
		mf_file(&m, "f", add[i], 2, 0644, 1);
		cr_assert_eq(bdr_db_version_add(db, &m), 0);
		mf_free(&m);
	}
	struct bdr_manifest o;
	mf_init(&o, "other", 5, 0);
	cr_assert_eq(bdr_db_version_add(db, &o), 0);
	mf_free(&o);

	cr_assert_eq(bdr_db_versions(db, "pkg", &v, &n), 0);
	cr_assert_eq(n, 4);
	cr_assert_eq(v[0], 2);
	cr_assert_eq(v[1], 7);
	cr_assert_eq(v[2], 10);
	cr_assert_eq(v[3], 1000000000000ull);
	free(v);
	cr_assert_eq(bdr_db_versions(db, "absent", &v, &n), 0);
	cr_assert_eq(n, 0);
	free(v);
	bdr_db_close(db);
}

Test(db, packages_sorted_bytewise)
{
	struct bdr_db *db = open_db();
	static const char *const add[] = { "zeta", "alpha", "Mid", "beta", "alpha2" };
	char **names;
	size_t n;

	for (size_t i = 0; i < 5; i++) {
		struct bdr_manifest m;
		mf_init(&m, add[i], 1, 0);
		cr_assert_eq(bdr_db_version_add(db, &m), 0);
		mf_free(&m);
	}
	cr_assert_eq(bdr_db_packages(db, &names, &n), 0);
	cr_assert_eq(n, 5);
	cr_assert_str_eq(names[0], "Mid");
	cr_assert_str_eq(names[1], "alpha");
	cr_assert_str_eq(names[2], "alpha2");
	cr_assert_str_eq(names[3], "beta");
	cr_assert_str_eq(names[4], "zeta");
	bdr_db_strv_free(names, n);
	bdr_db_close(db);
}

Test(db, quickcheck_put_get_prune)
{
	struct bdr_db *db = open_db();
	struct bdr_db_qc a = { 10, -5, 7, UINT64_MAX, 1ull << 63, 1 }, b = a, got;

	b.size = 20;
	cr_assert_eq(bdr_db_qc_put(db, "p", "a", &a), 0);
	cr_assert_eq(bdr_db_qc_put(db, "p", "b", &b), 0);
	cr_assert_eq(bdr_db_qc_put(db, "q", "a", &a), 0);
	cr_assert_eq(bdr_db_qc_get(db, "p", "a", &got), 0);
	cr_assert_eq(memcmp(&got, &a, sizeof(a)), 0, "round trip, full 64-bit range");

	a.version = 2;
	a.mtime_ns = 99;
	cr_assert_eq(bdr_db_qc_put(db, "p", "a", &a), 0, "replace");
	cr_assert_eq(bdr_db_qc_get(db, "p", "a", &got), 0);
	cr_assert_eq(memcmp(&got, &a, sizeof(a)), 0);

	cr_assert_eq(bdr_db_qc_prune(db, "p", 2), 0);
	cr_assert_eq(bdr_db_qc_get(db, "p", "a", &got), 0);
	cr_assert_eq(bdr_db_qc_get(db, "p", "b", &got), -BDR_ENOTFOUND);
	cr_assert_eq(bdr_db_qc_get(db, "q", "a", &got), 0, "other packages untouched");
	cr_assert_eq(bdr_db_qc_get(db, "p", "zzz", &got), -BDR_ENOTFOUND);
	bdr_db_close(db);
}

/* ---- transactions ---- */

Test(db, caller_transaction_commits_or_rolls_back_as_one)
{
	struct bdr_db *db = open_db();
	struct bdr_manifest m1, m2, bad;

	mf_init(&m1, "pkg", 1, 1);
	mf_file(&m1, "a", 1, 3, 0644, 1);
	mf_init(&m2, "pkg", 2, 1);
	mf_file(&m2, "b", 2, 3, 0644, 1);
	mf_init(&bad, "pkg", 3, 1);
	mf_file(&bad, "c", 3, 3, 0644, 1)->size = 1;

	cr_assert_eq(bdr_db_begin(db), 0);
	cr_assert_eq(bdr_db_version_add(db, &m1), 0);
	cr_assert_eq(bdr_db_version_add(db, &m2), 0);
	bdr_db_rollback(db);
	cr_assert_eq(stats(db).versions, 0);

	cr_assert_eq(bdr_db_begin(db), 0);
	cr_assert_eq(bdr_db_version_add(db, &m1), 0);
	/* A failing operation undoes only itself. */
	cr_assert_eq(bdr_db_version_add(db, &bad), -BDR_EFORMAT);
	cr_assert_eq(bdr_db_version_add(db, &m2), 0);
	cr_assert_eq(bdr_db_commit(db), 0);
	struct bdr_db_stats st = stats(db);
	cr_assert_eq(st.versions, 2);
	cr_assert_eq(st.blobs, 2);
	cr_assert_eq(bdr_db_commit(db), -EINVAL, "nothing left to commit");
	bdr_db_rollback(db); /* harmless */
	mf_free(&m1);
	mf_free(&m2);
	mf_free(&bad);
	bdr_db_close(db);
}

/* ---- the file on disk ---- */

Test(db, reopen_keeps_everything)
{
	struct bdr_db *db = open_db();
	struct bdr_manifest m;
	struct bdr_db_qc qc = { 1, 2, 3, 4, 5, 1 }, got;

	cr_assert_eq(bdr_db_schema_version(db), 1);
	mf_init(&m, "pkg", 4, 2);
	struct bdr_entry *a = mf_file(&m, "a", 1, 20, 0644, 1);
	struct bdr_entry *b = mf_file(&m, "b", 2, 20, 0755, 2);
	cr_assert_eq(bdr_db_version_add(db, &m), 0);
	cr_assert_eq(bdr_db_qc_put(db, "pkg", "a", &qc), 0);
	struct bdr_db_stats before = stats(db);
	bdr_db_close(db);

	db = open_db();
	cr_assert_eq(bdr_db_schema_version(db), 1);
	struct bdr_db_stats after = stats(db);
	cr_assert_eq(memcmp(&before, &after, sizeof(before)), 0);
	expect_chunks(db, a, "pkg", 4);
	expect_chunks(db, b, "pkg", 4);
	cr_assert_eq(bdr_db_qc_get(db, "pkg", "a", &got), 0);
	cr_assert_eq(memcmp(&got, &qc, sizeof(qc)), 0);
	mf_free(&m);
	bdr_db_close(db);
}

static void expect_open_fails(int want)
{
	struct bdr_db *db = (struct bdr_db *)1;
	struct bdr_diag d = { "" };
	int err = bdr_db_open(&db, dbpath, &d);

	cr_assert_eq(err, want, "open gave %s, want %s", bdr_strerror(err), bdr_strerror(want));
	cr_assert_null(db);
	cr_assert_neq(d.msg[0], '\0', "a message says why");
}

Test(db, garbage_file_is_corrupt_and_left_alone)
{
	size_t n1, n2;

	tu_write_random(dbpath, 65536, 7);
	uint8_t *before = tu_read(dbpath, &n1);
	expect_open_fails(-BDR_ECORRUPT);
	uint8_t *after = tu_read(dbpath, &n2);
	cr_assert(n1 == n2 && !memcmp(before, after, n1), "open must not write to a bad file");
	free(before);
	free(after);
}

Test(db, damaged_header_is_corrupt)
{
	struct bdr_manifest m;

	populate(&m, 1, 50);
	mf_free(&m);
	scribble(0, 100, 99);
	expect_open_fails(-BDR_ECORRUPT);
}

/* Damage past the header may only show when a page is read: every call
 * then fails cleanly (or happens not to touch a bad page), never crashes. */
Test(db, damaged_pages_fail_cleanly)
{
	struct bdr_db *db;
	struct bdr_manifest m;
	struct stat st;

	populate(&m, 50, 40);
	cr_assert_eq(stat(dbpath, &st), 0);
	scribble(4096, (size_t)st.st_size - 4096, 3);

	struct bdr_diag d;
	int err = bdr_db_open(&db, dbpath, &d);
	cr_assert(err == 0 || err == -BDR_ECORRUPT, "open: %s", bdr_strerror(err));
	if (err == 0) {
		struct bdr_db_loc loc;
		struct bdr_db_stats s;
		uint64_t *v;
		size_t n;
		char **names;

		for (uint32_t i = 0; i < m.nentries; i++) {
			const struct bdr_entry *e = &m.entries[i];
			err = bdr_db_chunk_find(db, &e->chunks[0].id, e->chunks[0].len, &loc);
			cr_assert(err == 0 || err == -BDR_ECORRUPT || err == -BDR_ENOTFOUND);
			err = bdr_db_file_find(db, e->hash, e->mode, e->mtime_ns, &loc);
			cr_assert(err == 0 || err == -BDR_ECORRUPT || err == -BDR_ENOTFOUND);
		}
		cr_assert_leq(bdr_db_stats(db, &s), 0);
		if (bdr_db_versions(db, "pkg", &v, &n) == 0)
			free(v);
		if (bdr_db_packages(db, &names, &n) == 0)
			bdr_db_strv_free(names, n);
		cr_assert_leq(bdr_db_version_remove(db, "pkg", 1), 0);
		bdr_db_close(db);
	}
	mf_free(&m);
}

static void sql(const char *stmt)
{
	sqlite3 *h;
	char *msg = NULL;

	cr_assert_eq(sqlite3_open(dbpath, &h), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(h, stmt, NULL, NULL, &msg), SQLITE_OK, "%s: %s", stmt, msg);
	sqlite3_close(h);
}

Test(db, newer_schema_is_refused)
{
	bdr_db_close(open_db());
	sql("PRAGMA user_version = 999");
	expect_open_fails(-BDR_EVERSION);
}

Test(db, someone_elses_database_is_refused)
{
	sql("CREATE TABLE t (x); INSERT INTO t VALUES (1)");
	expect_open_fails(-BDR_ECORRUPT);
}

Test(db, oversized_string_from_db_is_corrupt)
{
	struct bdr_db *db;
	struct bdr_manifest m;
	struct bdr_db_loc loc;

	populate(&m, 1, 2);
	const struct bdr_entry *e = &m.entries[0];
	sql("UPDATE files SET path = printf('%.*c', 10000, 'x')");

	db = open_db();
	cr_assert_eq(bdr_db_chunk_find(db, &e->chunks[0].id, e->chunks[0].len, &loc),
		     -BDR_ECORRUPT);
	cr_assert_eq(bdr_db_file_find(db, e->hash, e->mode, e->mtime_ns, &loc), -BDR_ECORRUPT);
	cr_assert_eq(bdr_db_chunk_find(db, &e->chunks[0].id, e->chunks[0].len, NULL), 0);
	mf_free(&m);
	bdr_db_close(db);
}

Test(db, remove_files_removes_all_companions)
{
	struct bdr_db *db = open_db();
	char wal[PATH_MAX + 8];

	snprintf(wal, sizeof(wal), "%s-wal", dbpath);
	cr_assert_eq(access(wal, F_OK), 0, "WAL mode");
	bdr_db_close(db);
	tu_write(wal, "x", 1);
	cr_assert_eq(bdr_db_remove_files(dbpath), 0);
	cr_assert_neq(access(dbpath, F_OK), 0);
	cr_assert_neq(access(wal, F_OK), 0);
	cr_assert_eq(bdr_db_remove_files(dbpath), 0, "absent files are fine");
	db = open_db();
	cr_assert_eq(bdr_db_schema_version(db), 1, "recreated");
	bdr_db_close(db);
}

/* ---- scale ---- */

Test(db, thousand_files_of_hundred_chunks)
{
	enum { NFILES = 1000, NCHUNKS = 100 };
	struct bdr_db *db = open_db();
	struct bdr_manifest m;

	mf_files(&m, "big", 1, NFILES, NCHUNKS);
	double t0 = now_s();
	cr_assert_eq(bdr_db_version_add(db, &m), 0, "%s", bdr_db_errmsg(db));
	double t1 = now_s();
	for (uint32_t i = 0; i < NFILES; i++)
		expect_chunks(db, &m.entries[i], "big", 1);
	double t2 = now_s();
	cr_assert_eq(stats(db).chunks, NFILES * NCHUNKS);
	fprintf(stderr, "db: add %d chunks %.3f s (%.0f/s), find %.3f s (%.0f/s)\n",
		NFILES * NCHUNKS, t1 - t0, NFILES * NCHUNKS / (t1 - t0), t2 - t1,
		NFILES * NCHUNKS / (t2 - t1));

	/* The next version of the same files: only file rows are new. */
	m.version = 2;
	double t3 = now_s();
	cr_assert_eq(bdr_db_version_add(db, &m), 0);
	double t4 = now_s();
	struct bdr_db_stats st = stats(db);
	cr_assert_eq(st.files, 2 * NFILES);
	cr_assert_eq(st.blobs, NFILES);
	cr_assert_eq(bdr_db_version_remove(db, "big", 1), 0);
	cr_assert_eq(bdr_db_version_remove(db, "big", 2), 0);
	fprintf(stderr, "db: add unchanged version %.3f s, remove both %.3f s\n", t4 - t3,
		now_s() - t4);
	expect_empty(db);
	expect_no_chunks(db, &m.entries[NFILES - 1]);
	mf_free(&m);
	bdr_db_close(db);
}
