/* The site database: what the library relies on. Manifests are built by
 * hand here, so these tests need nothing from the manifest codec. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
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

	cr_assert_eq(bdr_db_schema_version(db), 4);
	mf_init(&m, "pkg", 4, 2);
	struct bdr_entry *a = mf_file(&m, "a", 1, 20, 0644, 1);
	struct bdr_entry *b = mf_file(&m, "b", 2, 20, 0755, 2);
	cr_assert_eq(bdr_db_version_add(db, &m), 0);
	cr_assert_eq(bdr_db_qc_put(db, "pkg", "a", &qc), 0);
	struct bdr_db_stats before = stats(db);
	bdr_db_close(db);

	db = open_db();
	cr_assert_eq(bdr_db_schema_version(db), 4);
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
	cr_assert_eq(bdr_db_schema_version(db), 4, "recreated");
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

/* ---- the daemon's durable state ---- */

#define T0 1700000000000000000ll

static int64_t xfer_add(struct bdr_db *db, const char *package, uint64_t version, const char *peer,
			enum bdr_db_priority prio, int64_t now)
{
	int64_t id = -1;
	int err = bdr_db_transfer_add(db, package, version, peer, prio, now, 1000 * version, &id,
				      NULL);

	cr_assert_eq(err, 0, "add %s %llu -> %s: %s (%s)", package, (unsigned long long)version,
		     peer, bdr_strerror(err), bdr_db_errmsg(db));
	cr_assert_gt(id, 0);
	return id;
}

static struct bdr_db_transfer xfer_get(struct bdr_db *db, int64_t id)
{
	struct bdr_db_transfer t;
	int err = bdr_db_transfer_get(db, id, &t);

	cr_assert_eq(err, 0, "get %lld: %s (%s)", (long long)id, bdr_strerror(err),
		     bdr_db_errmsg(db));
	cr_assert_eq(t.id, id);
	return t;
}

static void xfer_set(struct bdr_db *db, int64_t id, enum bdr_db_xfer_state state, int64_t now)
{
	int err = bdr_db_transfer_set_state(db, id, state, NULL, now);

	cr_assert_eq(err, 0, "set %lld %s: %s (%s)", (long long)id, bdr_db_xfer_state_name(state),
		     bdr_strerror(err), bdr_db_errmsg(db));
}

static void expect_state(struct bdr_db *db, int64_t id, enum bdr_db_xfer_state want)
{
	struct bdr_db_transfer t = xfer_get(db, id);

	cr_assert_eq(t.state, want, "transfer %lld is %s, want %s", (long long)id,
		     bdr_db_xfer_state_name(t.state), bdr_db_xfer_state_name(want));
}

/* The id next() gives peer at now, or 0 if none may start. */
static int64_t xfer_next(struct bdr_db *db, const char *peer, int64_t now)
{
	struct bdr_db_transfer t;
	int err = bdr_db_transfer_next(db, peer, now, &t);

	if (err == -BDR_ENOTFOUND)
		return 0;
	cr_assert_eq(err, 0, "next %s: %s (%s)", peer, bdr_strerror(err), bdr_db_errmsg(db));
	cr_assert_str_eq(t.peer, peer);
	return t.id;
}

static size_t xfer_count(struct bdr_db *db)
{
	struct bdr_db_transfer *v;
	size_t n;

	cr_assert_eq(bdr_db_transfer_list(db, NULL, &v, &n), 0);
	free(v);
	return n;
}

/* One integer from the file, through a connection of its own. */
static int64_t sql_int(const char *query)
{
	sqlite3 *h;
	sqlite3_stmt *s;
	int64_t v;

	cr_assert_eq(sqlite3_open(dbpath, &h), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(h, query, -1, &s, NULL), SQLITE_OK, "%s: %s", query,
		     sqlite3_errmsg(h));
	cr_assert_eq(sqlite3_step(s), SQLITE_ROW, "%s", query);
	v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(h);
	return v;
}

/* A schema 1 file is built by bdr_db_open_schema(1): migration 1 is the
 * SQL bdr released with (released migrations are never edited), and the
 * rows go in through the functions schema 1 already had. */
Test(db, schema_1_file_migrates_keeping_its_rows)
{
	struct bdr_db *db;
	struct bdr_diag d = { "" };
	struct bdr_manifest m;
	struct bdr_db_qc qc = { 11, 22, 33, 44, 55, 3 }, got;

	cr_assert_eq(bdr_db_open_schema(&db, dbpath, 0, &d), -EINVAL);
	cr_assert_eq(bdr_db_open_schema(&db, dbpath, 5, &d), -EINVAL);
	cr_assert_eq(bdr_db_open_schema(&db, dbpath, 1, &d), 0, "%s", d.msg);
	cr_assert_eq(bdr_db_schema_version(db), 1);
	mf_files(&m, "pkg", 3, 4, 10);
	cr_assert_eq(bdr_db_version_add(db, &m), 0, "%s", bdr_db_errmsg(db));
	cr_assert_eq(bdr_db_qc_put(db, "pkg", "d/f0001", &qc), 0);
	struct bdr_db_stats before = stats(db);
	bdr_db_close(db);
	cr_assert_eq(sql_int("PRAGMA user_version"), 1);
	cr_assert_eq(sql_int("SELECT count(*) FROM sqlite_master WHERE name IN"
			     " ('transfers', 'peer_versions', 'received')"),
		     0, "a schema 1 file has no daemon tables");

	db = open_db();
	cr_assert_eq(bdr_db_schema_version(db), 4);
	struct bdr_db_stats after = stats(db);
	cr_assert_eq(memcmp(&before, &after, sizeof(before)), 0);
	for (uint32_t i = 0; i < m.nentries; i++)
		expect_chunks(db, &m.entries[i], "pkg", 3);
	cr_assert_eq(bdr_db_qc_get(db, "pkg", "d/f0001", &got), 0);
	cr_assert_eq(memcmp(&got, &qc, sizeof(qc)), 0);
	int64_t id = xfer_add(db, "pkg", 3, "site-b", BDR_PRIO_HIGH, T0);
	bdr_db_close(db);

	cr_assert_eq(sql_int("PRAGMA user_version"), 4);
	/* Opening at an older schema never takes a file back. */
	cr_assert_eq(bdr_db_open_schema(&db, dbpath, 1, &d), 0);
	cr_assert_eq(bdr_db_schema_version(db), 4);
	cr_assert_eq(xfer_get(db, id).version, 3);
	bdr_db_close(db);
	mf_free(&m);
}

/* ---- package origins ---- */

static void mf_signed(struct bdr_manifest *m, const char *package, uint64_t version,
		      const char *site, uint8_t key)
{
	mf_init(m, package, version, 1);
	free(m->site);
	cr_assert_not_null(m->site = strdup(site));
	memset(m->signer, key, sizeof(m->signer));
}

static void expect_origin(struct bdr_db *db, const char *package, const char *site, uint8_t key,
			  uint64_t version)
{
	struct bdr_db_origin o;
	uint8_t want[BDR_PK_LEN];

	memset(want, key, sizeof(want));
	cr_assert_eq(bdr_db_origin_get(db, package, &o), 0, "%s", bdr_db_errmsg(db));
	cr_assert_str_eq(o.site, site);
	cr_assert_eq(memcmp(o.signer, want, sizeof(want)), 0);
	cr_assert_eq(o.version, version);
}

/* The first version added fixes the origin; a later one signed by another
 * key does not move it, nor does removing every version or clearing the
 * index (the origin is durable state, not a cache of the manifests). */
Test(db, first_version_fixes_the_origin)
{
	struct bdr_db *db = open_db();
	struct bdr_db_origin o;
	struct bdr_manifest a, b;

	cr_assert_eq(bdr_db_origin_get(db, "app", &o), -BDR_ENOTFOUND);
	mf_signed(&a, "app", 3, "hq", 0x11);
	mf_signed(&b, "app", 1000, "rogue", 0x22);
	cr_assert_eq(bdr_db_version_add(db, &a), 0, "%s", bdr_db_errmsg(db));
	expect_origin(db, "app", "hq", 0x11, 3);
	cr_assert_eq(bdr_db_version_add(db, &b), 0, "%s", bdr_db_errmsg(db));
	expect_origin(db, "app", "hq", 0x11, 3);
	cr_assert_eq(bdr_db_version_remove(db, "app", 3), 0);
	cr_assert_eq(bdr_db_version_remove(db, "app", 1000), 0);
	cr_assert_eq(bdr_db_clear_index(db), 0);
	expect_origin(db, "app", "hq", 0x11, 3);
	bdr_db_close(db);
	db = open_db();
	expect_origin(db, "app", "hq", 0x11, 3);
	cr_assert_eq(bdr_db_origin_get(db, "other", &o), -BDR_ENOTFOUND);
	bdr_db_close(db);
	mf_free(&a);
	mf_free(&b);
}

/* A file from before origins were recorded takes, per package, the signer
 * of the lowest version it holds. */
Test(db, migration_seeds_origins_from_the_lowest_version)
{
	struct bdr_db *db;
	struct bdr_diag d = { "" };
	struct bdr_manifest m[3];

	cr_assert_eq(bdr_db_open_schema(&db, dbpath, 3, &d), 0, "%s", d.msg);
	mf_signed(&m[0], "app", 1000, "rogue", 0x22);
	mf_signed(&m[1], "app", 2, "hq", 0x11);
	mf_signed(&m[2], "tools", 7, "lab", 0x33);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(bdr_db_version_add(db, &m[i]), 0, "%s", bdr_db_errmsg(db));
	bdr_db_close(db);
	cr_assert_eq(sql_int("SELECT count(*) FROM sqlite_master WHERE name = 'origins'"), 0);

	db = open_db();
	expect_origin(db, "app", "hq", 0x11, 2);
	expect_origin(db, "tools", "lab", 0x33, 7);
	bdr_db_close(db);
	for (int i = 0; i < 3; i++)
		mf_free(&m[i]);
}

Test(db, transfer_add_is_idempotent)
{
	struct bdr_db *db = open_db();
	uint32_t sup = 99;
	int64_t id, again;

	cr_assert_eq(bdr_db_transfer_add(db, "pkg", 1, "site-b", BDR_PRIO_LOW, T0, 5000, &id, &sup),
		     0);
	cr_assert_eq(sup, 0);
	struct bdr_db_transfer t = xfer_get(db, id);
	cr_assert_str_eq(t.package, "pkg");
	cr_assert_eq(t.version, 1);
	cr_assert_str_eq(t.peer, "site-b");
	cr_assert_eq(t.priority, BDR_PRIO_LOW);
	cr_assert_eq(t.state, BDR_XFER_QUEUED);
	cr_assert_eq(t.created_ns, T0);
	cr_assert_eq(t.updated_ns, T0);
	cr_assert_eq(t.bytes_total, 5000);
	cr_assert_eq(t.attempts + t.next_attempt_ns + t.bytes_sent + t.bytes_saved, 0);
	cr_assert_eq(t.address_index, 0);
	cr_assert_str_eq(t.last_error, "");

	/* Pending: the same row, with the newest priority. */
	cr_assert_eq(bdr_db_transfer_add(db, "pkg", 1, "site-b", BDR_PRIO_HIGH, T0 + 5, 5000,
					 &again, NULL),
		     0);
	cr_assert_eq(again, id);
	t = xfer_get(db, id);
	cr_assert_eq(t.priority, BDR_PRIO_HIGH);
	cr_assert_eq(t.created_ns, T0, "still as old as it was");
	xfer_set(db, id, BDR_XFER_SENDING, T0 + 6);
	cr_assert_eq(xfer_add(db, "pkg", 1, "site-b", BDR_PRIO_HIGH, T0 + 7), id);
	expect_state(db, id, BDR_XFER_SENDING);
	cr_assert_eq(xfer_count(db), 1);

	/* Failed: queued afresh. */
	t = xfer_get(db, id);
	t.state = BDR_XFER_FAILED;
	t.attempts = 5;
	t.bytes_sent = 777;
	t.bytes_saved = 888;
	t.address_index = 2;
	t.next_attempt_ns = T0 + 1000;
	snprintf(t.last_error, sizeof(t.last_error), "connection refused");
	cr_assert_eq(bdr_db_transfer_update(db, &t), 0, "%s", bdr_db_errmsg(db));
	cr_assert_eq(xfer_add(db, "pkg", 1, "site-b", BDR_PRIO_MEDIUM, T0 + 10), id);
	t = xfer_get(db, id);
	cr_assert_eq(t.state, BDR_XFER_QUEUED);
	cr_assert_eq(t.priority, BDR_PRIO_MEDIUM);
	cr_assert_eq(t.attempts + t.bytes_sent + t.bytes_saved + t.address_index, 0);
	cr_assert_eq(t.next_attempt_ns, 0);
	cr_assert_str_eq(t.last_error, "");
	cr_assert_eq(t.created_ns, T0 + 10);

	/* Cancelled: queued afresh. Done: left alone. */
	xfer_set(db, id, BDR_XFER_CANCELLED, T0 + 11);
	cr_assert_eq(xfer_add(db, "pkg", 1, "site-b", BDR_PRIO_LOW, T0 + 12), id);
	expect_state(db, id, BDR_XFER_QUEUED);
	xfer_set(db, id, BDR_XFER_DONE, T0 + 13);
	cr_assert_eq(xfer_add(db, "pkg", 1, "site-b", BDR_PRIO_HIGH, T0 + 14), id);
	t = xfer_get(db, id);
	cr_assert_eq(t.state, BDR_XFER_DONE);
	cr_assert_eq(t.updated_ns, T0 + 13);
	cr_assert_eq(t.priority, BDR_PRIO_LOW);

	/* Another peer or version is another transfer. */
	cr_assert_neq(xfer_add(db, "pkg", 1, "site-c", BDR_PRIO_LOW, T0), id);
	cr_assert_neq(xfer_add(db, "pkg", 2, "site-b", BDR_PRIO_LOW, T0), id);
	cr_assert_eq(xfer_count(db), 3);
	bdr_db_close(db);
}

Test(db, next_goes_by_priority_then_age_and_waits_for_its_time)
{
	struct bdr_db *db = open_db();
	int64_t low = xfer_add(db, "p1", 1, "s1", BDR_PRIO_LOW, T0);
	int64_t med = xfer_add(db, "p2", 1, "s1", BDR_PRIO_MEDIUM, T0 + 1);
	int64_t high_a = xfer_add(db, "p3", 1, "s1", BDR_PRIO_HIGH, T0 + 2);
	int64_t high_c = xfer_add(db, "p4", 1, "s1", BDR_PRIO_HIGH, T0 + 3);
	int64_t high_b = xfer_add(db, "p5", 1, "s1", BDR_PRIO_HIGH, T0 + 2); /* same age: by id */
	int64_t other = xfer_add(db, "p6", 1, "s2", BDR_PRIO_HIGH, T0 - 10);
	const int64_t order[] = { high_a, high_b, high_c, med, low };
	const int64_t now = T0 + 100;

	for (size_t i = 0; i < 5; i++) {
		cr_assert_eq(xfer_next(db, "s1", now), order[i], "pick %zu", i);
		xfer_set(db, order[i], BDR_XFER_SENDING, now);
	}
	cr_assert_eq(xfer_next(db, "s1", now), 0, "all are sending");
	cr_assert_eq(xfer_next(db, "s2", now), other);
	cr_assert_eq(xfer_next(db, "nobody", now), 0);

	/* A retry waits for next_attempt_ns; paused is resumable at once. */
	struct bdr_db_transfer t = xfer_get(db, low);
	t.state = BDR_XFER_QUEUED;
	t.attempts = 1;
	t.next_attempt_ns = now + 50;
	t.updated_ns = now;
	cr_assert_eq(bdr_db_transfer_update(db, &t), 0, "%s", bdr_db_errmsg(db));
	cr_assert_eq(xfer_next(db, "s1", now), 0);
	cr_assert_eq(xfer_next(db, "s1", now + 49), 0);
	cr_assert_eq(xfer_next(db, "s1", now + 50), low);
	xfer_set(db, med, BDR_XFER_PAUSED, now);
	cr_assert_eq(xfer_next(db, "s1", now + 50), med, "medium before low");
	xfer_set(db, med, BDR_XFER_FAILED, now);
	xfer_set(db, high_a, BDR_XFER_DONE, now);
	xfer_set(db, high_b, BDR_XFER_CANCELLED, now);
	cr_assert_eq(xfer_next(db, "s1", now + 50), low, "failed, done, cancelled never start");

	struct bdr_db_transfer x;
	cr_assert_eq(bdr_db_transfer_next(db, "bad/peer", now, &x), -BDR_EFORMAT);
	bdr_db_close(db);
}

Test(db, newer_version_supersedes_older_waiting_ones)
{
	struct bdr_db *db = open_db();
	uint32_t sup = 99;
	int64_t v2, v3;

	int64_t v1 = xfer_add(db, "pkg", 1, "s1", BDR_PRIO_LOW, T0);
	int64_t v1_s2 = xfer_add(db, "pkg", 1, "s2", BDR_PRIO_LOW, T0);
	int64_t other = xfer_add(db, "app", 1, "s1", BDR_PRIO_LOW, T0);
	xfer_set(db, v1, BDR_XFER_PAUSED, T0 + 1);
	cr_assert_eq(bdr_db_transfer_add(db, "pkg", 2, "s1", BDR_PRIO_LOW, T0 + 2, 1, &v2, &sup), 0);
	cr_assert_eq(sup, 1);
	struct bdr_db_transfer t = xfer_get(db, v1);
	cr_assert_eq(t.state, BDR_XFER_CANCELLED);
	cr_assert_str_eq(t.last_error, "superseded by version 2");
	cr_assert_eq(t.updated_ns, T0 + 2);
	expect_state(db, v1_s2, BDR_XFER_QUEUED); /* another peer */
	expect_state(db, other, BDR_XFER_QUEUED); /* another package */

	/* A sending version is left to finish... */
	xfer_set(db, v2, BDR_XFER_SENDING, T0 + 3);
	cr_assert_eq(bdr_db_transfer_add(db, "pkg", 3, "s1", BDR_PRIO_LOW, T0 + 4, 1, &v3, &sup), 0);
	cr_assert_eq(sup, 0);
	expect_state(db, v2, BDR_XFER_SENDING);
	/* ...but does not go back to waiting behind the newer one. */
	xfer_set(db, v2, BDR_XFER_QUEUED, T0 + 5);
	t = xfer_get(db, v2);
	cr_assert_eq(t.state, BDR_XFER_CANCELLED);
	cr_assert_str_eq(t.last_error, "superseded by version 3");

	/* Queuing an older version than a pending one achieves nothing. */
	cr_assert_eq(bdr_db_transfer_add(db, "pkg", 2, "s1", BDR_PRIO_HIGH, T0 + 6, 1, NULL, &sup),
		     0);
	cr_assert_eq(sup, 0);
	expect_state(db, v2, BDR_XFER_CANCELLED);
	expect_state(db, v3, BDR_XFER_QUEUED);
	cr_assert_eq(xfer_next(db, "s1", T0 + 10), other);
	xfer_set(db, other, BDR_XFER_SENDING, T0 + 10);
	cr_assert_eq(xfer_next(db, "s1", T0 + 10), v3);
	bdr_db_close(db);
}

/* A daemon killed mid-send leaves sending rows; the next start queues
 * them again with their progress, so the push resumes. */
Test(db, sending_rows_are_requeued_after_a_crash)
{
	int64_t ids[4];
	int status;
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct bdr_db *db;
		struct bdr_db_transfer t;

		if (bdr_db_open(&db, dbpath, NULL) < 0)
			_exit(1);
		ids[0] = xfer_add(db, "pkg", 1, "s1", BDR_PRIO_HIGH, T0);
		ids[1] = xfer_add(db, "pkg", 1, "s2", BDR_PRIO_HIGH, T0);
		ids[2] = xfer_add(db, "app", 1, "s1", BDR_PRIO_LOW, T0);
		if (bdr_db_transfer_get(db, ids[0], &t) < 0)
			_exit(2);
		t.state = BDR_XFER_SENDING;
		t.attempts = 1;
		t.bytes_sent = 500;
		t.bytes_saved = 300;
		t.updated_ns = T0 + 1;
		if (bdr_db_transfer_update(db, &t) < 0 ||
		    bdr_db_transfer_set_state(db, ids[2], BDR_XFER_SENDING, NULL, T0 + 1) < 0)
			_exit(3);
		/* app 2 is queued while app 1 is still sending. */
		ids[3] = xfer_add(db, "app", 2, "s1", BDR_PRIO_LOW, T0 + 2);
		raise(SIGKILL);
		_exit(4);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child status %#x", status);

	struct bdr_db *db = open_db();
	struct bdr_db_transfer *v;
	size_t n;
	uint32_t requeued = 99;

	cr_assert_eq(bdr_db_transfer_list(db, NULL, &v, &n), 0);
	cr_assert_eq(n, 4, "every committed row survived");
	/* By package, version descending, peer. */
	cr_assert(!strcmp(v[0].package, "app") && v[0].version == 2);
	cr_assert(!strcmp(v[1].package, "app") && v[1].version == 1 && v[1].state == BDR_XFER_SENDING);
	cr_assert(!strcmp(v[2].package, "pkg") && !strcmp(v[2].peer, "s1"));
	cr_assert(!strcmp(v[3].package, "pkg") && !strcmp(v[3].peer, "s2"));
	int64_t pkg_s1 = v[2].id, app1 = v[1].id;
	free(v);

	cr_assert_eq(bdr_db_transfers_reset_running(db, T0 + 100, &requeued), 0);
	cr_assert_eq(requeued, 2);
	struct bdr_db_transfer t = xfer_get(db, pkg_s1);
	cr_assert_eq(t.state, BDR_XFER_QUEUED);
	cr_assert_eq(t.bytes_sent, 500, "progress kept for the resume");
	cr_assert_eq(t.bytes_saved, 300);
	cr_assert_eq(t.attempts, 1);
	cr_assert_eq(t.updated_ns, T0 + 100);
	t = xfer_get(db, app1);
	cr_assert_eq(t.state, BDR_XFER_CANCELLED, "superseded by app 2 once it stopped sending");
	cr_assert_str_eq(t.last_error, "superseded by version 2");
	cr_assert_eq(bdr_db_transfers_reset_running(db, T0 + 200, &requeued), 0);
	cr_assert_eq(requeued, 0);
	bdr_db_close(db);
}

/* The push: the version and its transfers commit together or not at all,
 * and what committed is there after a restart. */
Test(db, push_commits_version_and_transfers_together)
{
	struct bdr_db *db = open_db();
	struct bdr_manifest m;
	struct bdr_db_transfer *before, *after;
	struct bdr_db_received *rb, *ra;
	size_t nb, na, rnb, rna;
	uint64_t pv;

	mf_files(&m, "pkg", 7, 3, 4);
	cr_assert_eq(bdr_db_begin(db), 0);
	cr_assert_eq(bdr_db_version_add(db, &m), 0);
	xfer_add(db, "pkg", 7, "s1", BDR_PRIO_HIGH, T0);
	xfer_add(db, "pkg", 7, "s2", BDR_PRIO_LOW, T0);
	bdr_db_rollback(db);
	cr_assert_eq(stats(db).versions, 0);
	cr_assert_eq(xfer_count(db), 0);

	cr_assert_eq(bdr_db_begin(db), 0);
	cr_assert_eq(bdr_db_version_add(db, &m), 0);
	xfer_add(db, "pkg", 7, "s1", BDR_PRIO_HIGH, T0);
	int64_t s2 = xfer_add(db, "pkg", 7, "s2", BDR_PRIO_LOW, T0);
	cr_assert_eq(bdr_db_commit(db), 0);
	struct bdr_db_transfer t = xfer_get(db, s2);
	t.state = BDR_XFER_PAUSED;
	t.bytes_sent = 12345;
	t.address_index = 1;
	t.updated_ns = T0 + 9;
	cr_assert_eq(bdr_db_transfer_update(db, &t), 0);
	cr_assert_eq(bdr_db_peer_version_set(db, "s1", "pkg", 6), 0);
	cr_assert_eq(bdr_db_received_set(db, "other", 2, "hq", BDR_RECV_RECEIVING, 99, NULL, T0),
		     0);
	cr_assert_eq(bdr_db_transfer_list(db, NULL, &before, &nb), 0);
	cr_assert_eq(bdr_db_received_list(db, NULL, &rb, &rnb), 0);
	bdr_db_close(db);

	db = open_db();
	cr_assert_eq(bdr_db_transfer_list(db, NULL, &after, &na), 0);
	cr_assert_eq(na, 2);
	cr_assert_eq(nb, na);
	cr_assert_eq(memcmp(before, after, na * sizeof(*after)), 0, "nothing queued is lost");
	cr_assert_eq(bdr_db_received_list(db, NULL, &ra, &rna), 0);
	cr_assert_eq(rna, 1);
	cr_assert_eq(memcmp(rb, ra, sizeof(*ra)), 0);
	cr_assert_eq(bdr_db_peer_version_get(db, "s1", "pkg", &pv), 0);
	cr_assert_eq(pv, 6);
	cr_assert_eq(stats(db).versions, 1);
	free(before);
	free(after);
	free(rb);
	free(ra);
	mf_free(&m);
	bdr_db_close(db);
}

Test(db, clear_index_keeps_the_daemon_state)
{
	struct bdr_db *db = open_db();
	struct bdr_manifest m;
	struct bdr_db_qc qc = { 1, 2, 3, 4, 5, 1 }, got;
	struct bdr_db_transfer *before, *after;
	struct bdr_db_received r;
	size_t nb, na;
	uint64_t pv;

	mf_files(&m, "pkg", 1, 20, 10);
	cr_assert_eq(bdr_db_version_add(db, &m), 0);
	cr_assert_eq(bdr_db_qc_put(db, "pkg", "d/f0000", &qc), 0);
	int64_t id = xfer_add(db, "pkg", 1, "s1", BDR_PRIO_MEDIUM, T0);
	xfer_add(db, "pkg", 1, "s2", BDR_PRIO_MEDIUM, T0);
	xfer_set(db, id, BDR_XFER_SENDING, T0 + 1);
	cr_assert_eq(bdr_db_peer_version_set(db, "s2", "pkg", 1), 0);
	cr_assert_eq(bdr_db_received_set(db, "app", 4, "hq", BDR_RECV_ACTIVATED, 10, NULL, T0), 0);
	cr_assert_eq(bdr_db_transfer_list(db, NULL, &before, &nb), 0);

	cr_assert_eq(bdr_db_clear_index(db), 0, "%s", bdr_db_errmsg(db));
	expect_empty(db);
	expect_no_chunks(db, &m.entries[0]);
	cr_assert_eq(bdr_db_qc_get(db, "pkg", "d/f0000", &got), -BDR_ENOTFOUND);
	cr_assert_eq(bdr_db_transfer_list(db, NULL, &after, &na), 0);
	cr_assert_eq(na, nb);
	cr_assert_eq(memcmp(before, after, na * sizeof(*after)), 0);
	cr_assert_eq(bdr_db_peer_version_get(db, "s2", "pkg", &pv), 0);
	cr_assert_eq(pv, 1);
	cr_assert_eq(bdr_db_received_get(db, "app", 4, &r), 0);

	/* Indexed again, as the library's reindex does next. */
	cr_assert_eq(bdr_db_version_add(db, &m), 0);
	expect_chunks(db, &m.entries[19], "pkg", 1);
	/* Inside the caller's transaction it is one savepoint. */
	cr_assert_eq(bdr_db_begin(db), 0);
	cr_assert_eq(bdr_db_clear_index(db), 0);
	bdr_db_rollback(db);
	cr_assert_eq(stats(db).versions, 1);
	free(before);
	free(after);
	mf_free(&m);
	bdr_db_close(db);
}

/* A read transaction sees one snapshot and blocks no writer on another
 * handle (the loop thread's, while a worker plans a rebuild). */
Test(db, read_transaction_is_a_snapshot_that_blocks_no_writer)
{
	struct bdr_db *a = open_db(), *b = open_db();
	uint64_t v = 0;

	cr_assert_eq(bdr_db_peer_version_set(a, "s1", "pkg", 1), 0);
	cr_assert_eq(bdr_db_read_begin(a), 0);
	cr_assert_eq(bdr_db_peer_version_get(a, "s1", "pkg", &v), 0);
	cr_assert_eq(v, 1);
	cr_assert_eq(bdr_db_peer_version_set(b, "s1", "pkg", 2), 0, "%s", bdr_db_errmsg(b));
	cr_assert_eq(bdr_db_peer_version_get(a, "s1", "pkg", &v), 0);
	cr_assert_eq(v, 1, "the reader's snapshot moved");
	/* Nested: a savepoint inside it. */
	cr_assert_eq(bdr_db_read_begin(a), 0);
	cr_assert_eq(bdr_db_commit(a), 0);
	cr_assert_eq(bdr_db_commit(a), 0);
	cr_assert_eq(bdr_db_peer_version_get(a, "s1", "pkg", &v), 0);
	cr_assert_eq(v, 2);
	cr_assert_eq(bdr_db_commit(a), -EINVAL, "commit without begin");
	bdr_db_close(b);
	bdr_db_close(a);
}

Test(db, peer_version_only_rises)
{
	struct bdr_db *db = open_db();
	uint64_t v = 0;

	cr_assert_eq(bdr_db_peer_version_get(db, "s1", "pkg", &v), -BDR_ENOTFOUND);
	cr_assert_eq(bdr_db_peer_version_set(db, "s1", "pkg", 3), 0);
	cr_assert_eq(bdr_db_peer_version_get(db, "s1", "pkg", &v), 0);
	cr_assert_eq(v, 3);
	cr_assert_eq(bdr_db_peer_version_set(db, "s1", "pkg", 2), 0, "a late DONE is no error");
	cr_assert_eq(bdr_db_peer_version_get(db, "s1", "pkg", &v), 0);
	cr_assert_eq(v, 3);
	cr_assert_eq(bdr_db_peer_version_set(db, "s1", "pkg", 10), 0);
	cr_assert_eq(bdr_db_peer_version_get(db, "s1", "pkg", &v), 0);
	cr_assert_eq(v, 10);
	cr_assert_eq(bdr_db_peer_version_get(db, "s2", "pkg", &v), -BDR_ENOTFOUND);
	cr_assert_eq(bdr_db_peer_version_get(db, "s1", "app", &v), -BDR_ENOTFOUND);
	cr_assert_eq(bdr_db_peer_version_set(db, "s1", "pkg", 0), -BDR_ELIMIT);
	cr_assert_eq(bdr_db_peer_version_set(db, "s 1", "pkg", 4), -BDR_EFORMAT);
	bdr_db_close(db);
}

Test(db, invalid_transfer_inputs_are_rejected)
{
	struct bdr_db *db = open_db();
	char long_peer[BDR_MAX_SITE_NAME + 2];
	enum bdr_db_xfer_state st;
	int64_t id = -7;

	memset(long_peer, 'a', sizeof(long_peer) - 1);
	long_peer[sizeof(long_peer) - 1] = '\0';
	static const struct {
		const char *package, *peer;
		uint64_t version, bytes;
		int prio, want;
	} bad[] = {
		{ "pkg", "s1", 1, 0, 3, -EINVAL },
		{ "pkg", "s1", 1, 0, -1, -EINVAL },
		{ "", "s1", 1, 0, 0, -BDR_EFORMAT },
		{ NULL, "s1", 1, 0, 0, -BDR_EFORMAT },
		{ "../x", "s1", 1, 0, 0, -BDR_EFORMAT },
		{ "pkg", "", 1, 0, 0, -BDR_EFORMAT },
		{ "pkg", NULL, 1, 0, 0, -BDR_EFORMAT },
		{ "pkg", "s+1", 1, 0, 0, -BDR_EFORMAT },
		{ "pkg", "s1", 0, 0, 0, -BDR_ELIMIT },
		{ "pkg", "s1", (uint64_t)INT64_MAX + 1, 0, 0, -BDR_ELIMIT },
		{ "pkg", "s1", 1, (uint64_t)INT64_MAX + 1, 0, -BDR_ELIMIT },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int err = bdr_db_transfer_add(db, bad[i].package, bad[i].version, bad[i].peer,
					      (enum bdr_db_priority)bad[i].prio, T0, bad[i].bytes,
					      &id, NULL);
		cr_assert_eq(err, bad[i].want, "case %zu: %s", i, bdr_strerror(err));
		cr_assert_neq(bdr_db_errmsg(db)[0], '\0');
	}
	cr_assert_eq(bdr_db_transfer_add(db, "pkg", 1, long_peer, BDR_PRIO_LOW, T0, 0, &id, NULL),
		     -BDR_ELIMIT);
	cr_assert_eq(id, -7, "untouched on failure");
	cr_assert_eq(xfer_count(db), 0);

	id = xfer_add(db, "pkg", 1, "s1", BDR_PRIO_LOW, T0);
	cr_assert_eq(bdr_db_transfer_set_state(db, id, (enum bdr_db_xfer_state)6, NULL, T0),
		     -EINVAL);
	cr_assert_eq(bdr_db_transfer_set_state(db, id, (enum bdr_db_xfer_state)-1, NULL, T0),
		     -EINVAL);
	struct bdr_db_transfer t = xfer_get(db, id);
	t.state = (enum bdr_db_xfer_state)99;
	cr_assert_eq(bdr_db_transfer_update(db, &t), -EINVAL);
	t.state = BDR_XFER_SENDING;
	t.bytes_sent = UINT64_MAX;
	cr_assert_eq(bdr_db_transfer_update(db, &t), -BDR_ELIMIT);
	t.bytes_sent = 0;
	memset(t.last_error, 'x', sizeof(t.last_error));
	cr_assert_eq(bdr_db_transfer_update(db, &t), -EINVAL, "unterminated message");
	expect_state(db, id, BDR_XFER_QUEUED);

	cr_assert_eq(bdr_db_received_set(db, "pkg", 1, "hq", (enum bdr_db_recv_state)3, 0, NULL, T0),
		     -EINVAL);
	cr_assert_eq(bdr_db_received_set(db, "pkg", 1, "hq", BDR_RECV_RECEIVING, UINT64_MAX, NULL,
					 T0),
		     -BDR_ELIMIT);

	cr_assert_eq(bdr_db_xfer_state_parse("paused", &st), 0);
	cr_assert_eq(st, BDR_XFER_PAUSED);
	cr_assert_eq(bdr_db_xfer_state_parse("bogus", &st), -EINVAL);
	cr_assert_eq(bdr_db_xfer_state_parse(NULL, &st), -EINVAL);
	cr_assert_str_eq(bdr_db_xfer_state_name((enum bdr_db_xfer_state)42), "invalid");
	cr_assert_str_eq(bdr_db_recv_state_name(BDR_RECV_ACTIVATED), "activated");
	for (int i = BDR_XFER_QUEUED; i <= BDR_XFER_CANCELLED; i++) {
		cr_assert_eq(bdr_db_xfer_state_parse(bdr_db_xfer_state_name(i), &st), 0);
		cr_assert_eq((int)st, i);
	}
	bdr_db_close(db);
}

Test(db, ended_transfers_are_not_written_again)
{
	struct bdr_db *db = open_db();
	int64_t a = xfer_add(db, "pkg", 1, "s1", BDR_PRIO_LOW, T0);
	int64_t b = xfer_add(db, "app", 1, "s1", BDR_PRIO_LOW, T0);

	/* The sender's copy of a, taken before the operator cancelled it. */
	struct bdr_db_transfer stale = xfer_get(db, a);
	xfer_set(db, a, BDR_XFER_CANCELLED, T0 + 1);
	stale.state = BDR_XFER_SENDING;
	stale.bytes_sent = 100;
	cr_assert_eq(bdr_db_transfer_update(db, &stale), -ESTALE);
	cr_assert_neq(bdr_db_errmsg(db)[0], '\0');
	struct bdr_db_transfer t = xfer_get(db, a);
	cr_assert_eq(t.state, BDR_XFER_CANCELLED);
	cr_assert_eq(t.bytes_sent, 0);
	cr_assert_eq(bdr_db_transfer_set_state(db, a, BDR_XFER_QUEUED, NULL, T0 + 2), -ESTALE);
	cr_assert_eq(bdr_db_transfer_set_state(db, a, BDR_XFER_CANCELLED, NULL, T0 + 2), 0,
		     "the state it has is fine");

	xfer_set(db, b, BDR_XFER_DONE, T0 + 3);
	cr_assert_eq(bdr_db_transfer_set_state(db, b, BDR_XFER_DONE, NULL, T0 + 4), 0,
		     "a repeated DONE");
	cr_assert_eq(bdr_db_transfer_set_state(db, b, BDR_XFER_FAILED, "x", T0 + 4), -ESTALE);
	cr_assert_eq(xfer_get(db, b).updated_ns, T0 + 3);

	cr_assert_eq(bdr_db_transfer_get(db, 999, &t), -BDR_ENOTFOUND);
	cr_assert_eq(bdr_db_transfer_set_state(db, 999, BDR_XFER_DONE, NULL, T0), -BDR_ENOTFOUND);
	t.id = 999;
	t.state = BDR_XFER_DONE;
	cr_assert_eq(bdr_db_transfer_update(db, &t), -BDR_ENOTFOUND);

	/* An error message is kept, and cleared by NULL. */
	int64_t c = xfer_add(db, "lib", 1, "s1", BDR_PRIO_LOW, T0);
	cr_assert_eq(bdr_db_transfer_set_state(db, c, BDR_XFER_QUEUED, "timed out", T0 + 5), 0);
	cr_assert_str_eq(xfer_get(db, c).last_error, "timed out");
	xfer_set(db, c, BDR_XFER_SENDING, T0 + 6);
	cr_assert_str_eq(xfer_get(db, c).last_error, "");
	bdr_db_close(db);
}

Test(db, long_error_is_cut_between_characters)
{
	struct bdr_db *db = open_db();
	char msg[301] = "";
	struct bdr_db_received r;

	for (int i = 0; i < 150; i++)
		strcat(msg, "\xc3\xa9"); /* U+00E9, two bytes */
	int64_t id = xfer_add(db, "pkg", 1, "s1", BDR_PRIO_LOW, T0);
	cr_assert_eq(bdr_db_transfer_set_state(db, id, BDR_XFER_FAILED, msg, T0), 0);
	struct bdr_db_transfer t = xfer_get(db, id);
	cr_assert_eq(strlen(t.last_error), 254, "255 would split a character");
	cr_assert_eq(memcmp(t.last_error, msg, 254), 0);

	cr_assert_eq(bdr_db_received_set(db, "pkg", 1, "hq", BDR_RECV_FAILED, 0, msg + 1, T0), 0);
	cr_assert_eq(bdr_db_received_get(db, "pkg", 1, &r), 0);
	cr_assert_eq(strlen(r.last_error), 255, "cut where the next character starts");
	bdr_db_close(db);
}

Test(db, received_rows_for_status)
{
	struct bdr_db *db = open_db();
	struct bdr_db_received r, *v;
	size_t n;

	cr_assert_eq(bdr_db_received_get(db, "pkg", 1, &r), -BDR_ENOTFOUND);
	cr_assert_eq(bdr_db_received_set(db, "pkg", 1, "hq", BDR_RECV_RECEIVING, 10, NULL, T0), 0);
	cr_assert_eq(bdr_db_received_set(db, "pkg", 1, "hq", BDR_RECV_RECEIVING, 20, NULL, T0 + 5),
		     0);
	cr_assert_eq(bdr_db_received_get(db, "pkg", 1, &r), 0);
	cr_assert_str_eq(r.package, "pkg");
	cr_assert_eq(r.version, 1);
	cr_assert_str_eq(r.peer, "hq");
	cr_assert_eq(r.state, BDR_RECV_RECEIVING);
	cr_assert_eq(r.bytes_received, 20);
	cr_assert_eq(r.started_ns, T0);
	cr_assert_eq(r.updated_ns, T0 + 5);
	cr_assert_eq(bdr_db_received_set(db, "pkg", 1, "hq", BDR_RECV_FAILED, 20, "bad hash", T0 + 6),
		     0);
	cr_assert_eq(bdr_db_received_get(db, "pkg", 1, &r), 0);
	cr_assert_str_eq(r.last_error, "bad hash");
	cr_assert_eq(r.started_ns, T0);
	/* Received again, from another relay: a new start. */
	cr_assert_eq(bdr_db_received_set(db, "pkg", 1, "relay", BDR_RECV_RECEIVING, 0, NULL, T0 + 9),
		     0);
	cr_assert_eq(bdr_db_received_set(db, "pkg", 1, "relay", BDR_RECV_ACTIVATED, 30, NULL,
					 T0 + 10),
		     0);
	cr_assert_eq(bdr_db_received_get(db, "pkg", 1, &r), 0);
	cr_assert_eq(r.started_ns, T0 + 9);
	cr_assert_eq(r.state, BDR_RECV_ACTIVATED);
	cr_assert_str_eq(r.peer, "relay");
	cr_assert_str_eq(r.last_error, "");

	cr_assert_eq(bdr_db_received_set(db, "pkg", 2, "hq", BDR_RECV_RECEIVING, 0, NULL, T0), 0);
	cr_assert_eq(bdr_db_received_set(db, "app", 1, "hq", BDR_RECV_RECEIVING, 0, NULL, T0), 0);
	cr_assert_eq(bdr_db_received_list(db, NULL, &v, &n), 0);
	cr_assert_eq(n, 3);
	cr_assert(!strcmp(v[0].package, "app"));
	cr_assert(!strcmp(v[1].package, "pkg") && v[1].version == 2);
	cr_assert(!strcmp(v[2].package, "pkg") && v[2].version == 1);
	free(v);
	cr_assert_eq(bdr_db_received_list(db, "pkg", &v, &n), 0);
	cr_assert_eq(n, 2);
	free(v);
	cr_assert_eq(bdr_db_received_list(db, "none", &v, &n), 0);
	cr_assert_eq(n, 0);
	cr_assert_null(v);
	bdr_db_close(db);
}

Test(db, history_prune_keeps_what_is_pending_and_ids_never_return)
{
	struct bdr_db *db = open_db();
	uint64_t removed = 99;
	int64_t done_old = xfer_add(db, "a", 1, "s1", BDR_PRIO_LOW, T0);
	int64_t cancelled = xfer_add(db, "b", 1, "s1", BDR_PRIO_LOW, T0);
	int64_t failed = xfer_add(db, "c", 1, "s1", BDR_PRIO_LOW, T0);
	int64_t queued = xfer_add(db, "d", 1, "s1", BDR_PRIO_LOW, T0);
	int64_t done_new = xfer_add(db, "e", 1, "s1", BDR_PRIO_LOW, T0);
	int64_t last = xfer_add(db, "f", 1, "s1", BDR_PRIO_LOW, T0);

	xfer_set(db, done_old, BDR_XFER_DONE, T0 + 1);
	xfer_set(db, cancelled, BDR_XFER_CANCELLED, T0 + 1);
	xfer_set(db, failed, BDR_XFER_FAILED, T0 + 1);
	xfer_set(db, done_new, BDR_XFER_DONE, T0 + 100);
	xfer_set(db, last, BDR_XFER_DONE, T0 + 1);
	cr_assert_eq(bdr_db_received_set(db, "a", 1, "hq", BDR_RECV_ACTIVATED, 0, NULL, T0), 0);
	cr_assert_eq(bdr_db_received_set(db, "b", 1, "hq", BDR_RECV_RECEIVING, 0, NULL, T0), 0);

	cr_assert_eq(bdr_db_history_prune(db, T0 + 50, &removed), 0);
	cr_assert_eq(removed, 4);
	struct bdr_db_transfer t;
	cr_assert_eq(bdr_db_transfer_get(db, done_old, &t), -BDR_ENOTFOUND);
	cr_assert_eq(bdr_db_transfer_get(db, cancelled, &t), -BDR_ENOTFOUND);
	cr_assert_eq(bdr_db_transfer_get(db, last, &t), -BDR_ENOTFOUND);
	expect_state(db, failed, BDR_XFER_FAILED);
	expect_state(db, queued, BDR_XFER_QUEUED);
	expect_state(db, done_new, BDR_XFER_DONE);
	struct bdr_db_received r;
	cr_assert_eq(bdr_db_received_get(db, "a", 1, &r), -BDR_ENOTFOUND);
	cr_assert_eq(bdr_db_received_get(db, "b", 1, &r), 0);

	cr_assert_gt(xfer_add(db, "g", 1, "s1", BDR_PRIO_LOW, T0), last, "a pruned id is not reused");
	bdr_db_close(db);
}

Test(db, implausible_daemon_rows_are_corrupt)
{
	struct bdr_db *db = open_db();
	struct bdr_db_transfer t, *v;
	struct bdr_db_received r;
	size_t n;
	int64_t id = xfer_add(db, "pkg", 1, "s1", BDR_PRIO_LOW, T0);

	cr_assert_eq(bdr_db_received_set(db, "pkg", 1, "hq", BDR_RECV_RECEIVING, 0, NULL, T0), 0);
	bdr_db_close(db);
	static const char *const damage[] = {
		"UPDATE transfers SET last_error = printf('%.*c', 256, 'x')",
		"UPDATE transfers SET peer = printf('%.*c', 65, 'x')",
		"PRAGMA ignore_check_constraints = 1; UPDATE transfers SET state = 'lost'",
		"PRAGMA ignore_check_constraints = 1; UPDATE transfers SET priority = 7",
		"UPDATE transfers SET attempts = -1",
		"UPDATE transfers SET bytes_sent = -1",
		"UPDATE transfers SET version = 0",
	};
	for (size_t i = 0; i < sizeof(damage) / sizeof(damage[0]); i++) {
		sql("UPDATE transfers SET last_error = NULL, peer = 's1', state = 'queued',"
		    " priority = 2, attempts = 0, bytes_sent = 0, version = 1");
		db = open_db();
		cr_assert_eq(bdr_db_transfer_get(db, id, &t), 0, "case %zu undamaged", i);
		bdr_db_close(db);
		sql(damage[i]);
		db = open_db();
		cr_assert_eq(bdr_db_transfer_get(db, id, &t), -BDR_ECORRUPT, "case %zu: %s", i,
			     damage[i]);
		cr_assert_eq(bdr_db_transfer_list(db, NULL, &v, &n), -BDR_ECORRUPT);
		cr_assert_null(v);
		bdr_db_close(db);
	}
	sql("UPDATE received SET last_error = printf('%.*c', 300, 'x')");
	db = open_db();
	cr_assert_eq(bdr_db_received_get(db, "pkg", 1, &r), -BDR_ECORRUPT);
	bdr_db_close(db);
}

/* The roll-up keeps the newest row per site and package whoever reports
 * it, lists what arrived after a time, and counts rows per child. */
Test(db, site_status_keeps_the_newest)
{
	struct bdr_db *db = open_db();
	struct bdr_db_site_status r = { .site = "dp1", .package = "app", .version = 3,
					.state = BDR_SITE_MOVING, .bytes_done = 10,
					.bytes_total = 100, .updated_ns = 2000, .via = "region",
					.received_ns = 50 }, *v;
	size_t n;
	uint64_t count;

	cr_assert_eq(bdr_db_site_status_put(db, &r), 0, "%s", bdr_db_errmsg(db));
	r.state = BDR_SITE_ACTIVATED, r.updated_ns = 1000, r.received_ns = 60;
	cr_assert_eq(bdr_db_site_status_put(db, &r), 0, "an older row is ignored, not an error");
	cr_assert_eq(bdr_db_site_status_list(db, NULL, 0, &v, &n), 0);
	cr_assert_eq(n, 1);
	cr_assert_eq(v[0].state, BDR_SITE_MOVING, "the older report replaced the newer");
	cr_assert_eq(v[0].received_ns, 50);
	free(v);
	r.updated_ns = 3000, r.received_ns = 70, r.version = 4;
	strcpy(r.last_error, "cannot connect: connection refused");
	cr_assert_eq(bdr_db_site_status_put(db, &r), 0);
	strcpy(r.site, "dp2"), strcpy(r.package, "tools"), r.received_ns = 40;
	cr_assert_eq(bdr_db_site_status_put(db, &r), 0);
	cr_assert_eq(bdr_db_site_status_list(db, "app", 0, &v, &n), 0);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(v[0].site, "dp1");
	cr_assert_eq(v[0].version, 4);
	cr_assert_eq(v[0].state, BDR_SITE_ACTIVATED);
	cr_assert_str_eq(v[0].last_error, "cannot connect: connection refused");
	free(v);
	cr_assert_eq(bdr_db_site_status_list(db, NULL, 45, &v, &n), 0);
	cr_assert_eq(n, 1, "only rows stored after 45");
	free(v);
	cr_assert_eq(bdr_db_site_status_count(db, "region", &count), 0);
	cr_assert_eq(count, 2);

	strcpy(r.site, "../x");
	cr_assert_lt(bdr_db_site_status_put(db, &r), 0);
	strcpy(r.site, "dp3"), r.state = (enum bdr_db_site_state)9;
	cr_assert_lt(bdr_db_site_status_put(db, &r), 0);
	r.state = BDR_SITE_QUEUED, r.bytes_total = UINT64_MAX;
	cr_assert_lt(bdr_db_site_status_put(db, &r), 0);
	bdr_db_close(db);
}
