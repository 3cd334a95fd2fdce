/* The library on disk: retention, hardlinks between versions, leftover
 * staging, and a database that is only a cache of the manifests. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "bdr/db.h"
#include "bdr/error.h"
#include "bdr/import.h"
#include "bdr/library.h"
#include "bdr/manifest.h"
#include "testutil.h"

static char root[PATH_MAX], src[PATH_MAX], data[PATH_MAX];
static struct bdr_key key;

static void setup(void)
{
	char b[PATH_MAX];

	tu_mkdtemp(root, "library");
	snprintf(src, sizeof(src), "%s/src", root);
	snprintf(data, sizeof(data), "%s/data", root);
	snprintf(b, sizeof(b), "%s/dir", src);
	tu_mkdirs(b);
	snprintf(b, sizeof(b), "%s/dir/same.bin", src);
	tu_write_random(b, 300000, 1);
	snprintf(b, sizeof(b), "%s/changing.bin", src);
	tu_write_random(b, 100000, 2);
	cr_assert_eq(sodium_init() < 0, 0);
	bdr_key_generate(&key);
}

static void teardown(void)
{
	tu_rmrf(root);
}

TestSuite(library, .init = setup, .fini = teardown);

static void change_source(uint64_t seed)
{
	char b[PATH_MAX];

	snprintf(b, sizeof(b), "%s/changing.bin", src);
	tu_write_random(b, 100000, seed);
}

static bool version_dir_exists(unsigned long long v)
{
	char b[PATH_MAX];
	struct stat st;

	snprintf(b, sizeof(b), "%s/packages/app/%llu", data, v);
	return lstat(b, &st) == 0;
}

Test(library, keeps_the_newest_versions_and_points_current_at_the_last)
{
	struct bdr_library *lib = tu_library(data, 3);
	char cur[PATH_MAX], target[32] = { 0 };
	uint64_t *v;
	size_t n;

	for (uint64_t i = 1; i <= 5; i++) {
		change_source(i + 10);
		cr_assert_eq(tu_import(lib, &key, "app", src), i);
	}
	cr_assert_eq(bdr_db_versions(bdr_library_db(lib), "app", &v, &n), 0);
	cr_assert_eq(n, 3);
	cr_assert_eq(v[0], 3);
	cr_assert_eq(v[2], 5);
	free(v);
	for (unsigned long long i = 1; i <= 5; i++)
		cr_assert_eq(version_dir_exists(i), i >= 3, "version %llu", i);
	snprintf(cur, sizeof(cur), "%s/packages/app/current", data);
	cr_assert_gt(readlink(cur, target, sizeof(target) - 1), 0);
	cr_assert_str_eq(target, "5");
	bdr_library_close(lib);
}

Test(library, identical_files_are_hardlinks_and_outlive_their_first_version)
{
	struct bdr_library *lib = tu_library(data, 2);
	char a[PATH_MAX], b[PATH_MAX];
	struct stat sa, sb;

	tu_import(lib, &key, "app", src);
	change_source(3);
	tu_import(lib, &key, "app", src);
	snprintf(a, sizeof(a), "%s/packages/app/1/tree/dir/same.bin", data);
	snprintf(b, sizeof(b), "%s/packages/app/2/tree/dir/same.bin", data);
	cr_assert_eq(stat(a, &sa), 0);
	cr_assert_eq(stat(b, &sb), 0);
	cr_assert_eq(sa.st_ino, sb.st_ino, "unchanged file was copied, not linked");
	change_source(4);
	tu_import(lib, &key, "app", src); /* retention drops version 1 */
	cr_assert_eq(stat(a, &sa), -1);
	cr_assert_eq(stat(b, &sb), 0);
	bdr_library_close(lib);
}

Test(library, leftover_staging_is_removed_when_opened)
{
	struct bdr_library *lib = tu_library(data, 0);
	char junk[PATH_MAX];

	bdr_library_close(lib);
	snprintf(junk, sizeof(junk), "%s/staging/app.7.abcdef/tree/half", data);
	tu_mkdirs(junk);
	lib = tu_library(data, 0);
	snprintf(junk, sizeof(junk), "%s/staging/app.7.abcdef", data);
	cr_assert_eq(access(junk, F_OK), -1, "leftover staging survived open");
	bdr_library_close(lib);
}

/* Everything a receiver asks the index, for comparison before and after. */
struct answers {
	struct bdr_db_stats st;
	size_t nver;
	uint64_t latest;
	int found;  /* chunks of the latest manifest found */
	int total;
};

static struct answers ask(struct bdr_library *lib)
{
	struct answers a = { 0 };
	struct bdr_manifest m;
	uint64_t *v;

	cr_assert_eq(bdr_db_stats(bdr_library_db(lib), &a.st), 0);
	cr_assert_eq(bdr_db_versions(bdr_library_db(lib), "app", &v, &a.nver), 0);
	free(v);
	cr_assert_eq(bdr_library_latest(lib, "app", &a.latest), 0);
	cr_assert_eq(bdr_library_manifest_load(lib, "app", a.latest, &m, NULL), 0);
	for (uint32_t i = 0; i < m.nentries; i++)
		for (uint32_t c = 0; c < m.entries[i].nchunks; c++, a.total++)
			a.found += bdr_db_chunk_find(bdr_library_db(lib), &m.entries[i].chunks[c].id,
						     m.entries[i].chunks[c].len, NULL) == 0;
	bdr_manifest_free(&m);
	return a;
}

static struct bdr_library *three_versions(void)
{
	struct bdr_library *lib = tu_library(data, 0);

	for (uint64_t i = 1; i <= 3; i++) {
		change_source(i + 20);
		tu_import(lib, &key, "app", src);
	}
	return lib;
}

static void assert_same(struct answers a, struct answers b)
{
	cr_assert_eq(a.nver, b.nver);
	cr_assert_eq(a.latest, b.latest);
	cr_assert_eq(a.st.versions, b.st.versions);
	cr_assert_eq(a.st.files, b.st.files);
	cr_assert_eq(a.st.blobs, b.st.blobs);
	cr_assert_eq(a.st.chunks, b.st.chunks);
	cr_assert_eq(b.found, b.total, "rebuilt index lost chunks: %d of %d", b.found, b.total);
	cr_assert_gt(b.total, 0);
}

Test(library, deleted_database_is_rebuilt_from_the_manifests)
{
	struct bdr_library *lib = three_versions();
	struct answers before = ask(lib);
	char db[PATH_MAX];

	bdr_library_close(lib);
	snprintf(db, sizeof(db), "%s/bdr.db", data);
	cr_assert_eq(bdr_db_remove_files(db), 0);
	lib = tu_library(data, 0);
	assert_same(before, ask(lib));
	bdr_library_close(lib);
}

Test(library, damaged_database_is_rebuilt_from_the_manifests)
{
	struct bdr_library *lib = three_versions();
	struct answers before = ask(lib);
	char db[PATH_MAX];
	uint8_t junk[4096];

	bdr_library_close(lib);
	snprintf(db, sizeof(db), "%s/bdr.db", data);
	tu_fill_random(junk, sizeof(junk), 7);
	int fd = open(db, O_WRONLY);
	cr_assert(fd >= 0);
	cr_assert_eq(pwrite(fd, junk, sizeof(junk), 0), (ssize_t)sizeof(junk));
	close(fd);
	lib = tu_library(data, 0);
	assert_same(before, ask(lib));
	bdr_library_close(lib);
}

Test(library, reindex_gives_the_same_answers)
{
	struct bdr_library *lib = three_versions();
	struct answers before = ask(lib);

	cr_assert_eq(bdr_library_reindex(lib, NULL), 0);
	assert_same(before, ask(lib));
	bdr_library_close(lib);
}

Test(library, a_version_on_disk_but_not_in_the_index_is_indexed_at_open)
{
	struct bdr_library *lib = three_versions();
	struct answers before = ask(lib);

	/* As if the process died between the rename and the index update. */
	cr_assert_eq(bdr_db_version_remove(bdr_library_db(lib), "app", 3), 0);
	bdr_library_close(lib);
	lib = tu_library(data, 0);
	assert_same(before, ask(lib));
	bdr_library_close(lib);
}

struct notices {
	int n;
	char last[1024];
};

static void on_notice(void *arg, const char *msg)
{
	struct notices *nt = arg;

	nt->n++;
	snprintf(nt->last, sizeof(nt->last), "%s", msg);
}

Test(library, a_version_with_a_damaged_manifest_is_quarantined_at_open)
{
	struct bdr_library *lib = three_versions();
	char m[PATH_MAX];
	uint64_t latest;

	bdr_library_close(lib);
	snprintf(m, sizeof(m), "%s/packages/app/3/manifest", data);
	int fd = open(m, O_WRONLY);
	cr_assert(fd >= 0);
	cr_assert_eq(pwrite(fd, "XXXX", 4, 40), 4);
	close(fd);
	snprintf(m, sizeof(m), "%s/bdr.db", data);
	cr_assert_eq(bdr_db_remove_files(m), 0);
	struct bdr_library_opts o = { .dir = data, .notice = on_notice };
	struct bdr_library_quarantine q;
	struct notices nt = { 0 };

	o.notice_arg = &nt;
	cr_assert_eq(bdr_library_open(&lib, &o, NULL), 0);
	cr_assert_eq(bdr_library_latest(lib, "app", &latest), 0);
	cr_assert_eq(latest, 2, "a version with a bad signature stayed active");
	cr_assert_not(version_dir_exists(3));
	cr_assert_eq(bdr_library_quarantined(lib), 1, "the damaged version was not kept aside");
	cr_assert_eq(nt.n, 1);
	cr_assert(strstr(nt.last, "version 3 failed to verify"), "%s", nt.last);
	bdr_library_quarantine_info(lib, &q);
	cr_assert_eq(q.trees, 1);
	cr_assert_gt(q.bytes, 0);
	bdr_library_close(lib);
}

/* Removing a package takes every version, its index rows and its chunks
 * out of the chunk index; another package is untouched; a reopen finds
 * nothing of it; a second removal says there is no such package. */
Test(library, remove_takes_every_version_and_its_index)
{
	struct bdr_library *lib = tu_library(data, 0);
	struct bdr_diag d = { { 0 } };
	struct bdr_db_stats before, after;
	char b[PATH_MAX];
	uint64_t v, *vs;
	size_t n;

	tu_import(lib, &key, "app", src);
	change_source(5);
	tu_import(lib, &key, "app", src);
	tu_import(lib, &key, "other", src);
	cr_assert_eq(bdr_db_stats(bdr_library_db(lib), &before), 0);
	cr_assert_eq(bdr_library_remove(lib, "app", &d), 0, "%s", d.msg);
	cr_assert_eq(bdr_library_latest(lib, "app", &v), -BDR_ENOTFOUND);
	cr_assert_eq(bdr_db_versions(bdr_library_db(lib), "app", &vs, &n), 0);
	cr_assert_eq(n, 0);
	free(vs);
	snprintf(b, sizeof(b), "%s/packages/app", data);
	cr_assert_eq(access(b, F_OK), -1, "the package directory is still there");
	cr_assert_eq(bdr_library_latest(lib, "other", &v), 0);
	cr_assert_eq(v, 1);
	cr_assert_eq(bdr_db_stats(bdr_library_db(lib), &after), 0);
	cr_assert_lt(after.chunks, before.chunks, "the chunk index still holds app's rows");
	cr_assert_eq(bdr_library_remove(lib, "app", &d), -BDR_ENOTFOUND);
	cr_assert_lt(bdr_library_remove(lib, "../x", &d), 0);
	bdr_library_close(lib);

	lib = tu_library(data, 0);
	cr_assert_eq(bdr_library_latest(lib, "app", &v), -BDR_ENOTFOUND);
	cr_assert_eq(bdr_library_latest(lib, "other", &v), 0);
	bdr_library_close(lib);
}

/* After a removal the numbers go on: a new version of the package is
 * never numbered like one a site that missed the removal still holds. */
Test(library, numbers_of_a_removed_package_are_not_given_again)
{
	struct bdr_library *lib = tu_library(data, 0);
	struct bdr_diag d = { { 0 } };
	uint64_t next;

	tu_import(lib, &key, "app", src);
	change_source(6);
	cr_assert_eq(tu_import(lib, &key, "app", src), 2);
	cr_assert_eq(bdr_library_remove(lib, "app", &d), 0, "%s", d.msg);
	cr_assert_eq(bdr_library_next_version(lib, "app", &next), 0);
	cr_assert_eq(next, 3);
	cr_assert_eq(tu_import(lib, &key, "app", src), 3);
	bdr_library_close(lib);
	lib = tu_library(data, 0);
	cr_assert_eq(bdr_library_next_version(lib, "app", &next), 0);
	cr_assert_eq(next, 4);
	cr_assert_eq(bdr_library_next_version(lib, "never", &next), 0);
	cr_assert_eq(next, 1);
	bdr_library_close(lib);
}

static int entries(const char *sub)
{
	char b[PATH_MAX];
	struct dirent *de;
	int n = 0;
	DIR *d;

	snprintf(b, sizeof(b), "%s/%s", data, sub);
	cr_assert_not_null(d = opendir(b), "%s", b);
	while ((de = readdir(d)))
		n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	closedir(d);
	return n;
}

/* SIGKILL while retention deletes the old version (a child imports
 * version 2 with keep_versions 1; the parent kills it the moment version
 * 1's manifest is gone, when its files are being removed): the next open
 * quarantines nothing, version 1's directory and whatever was left of it
 * are gone, and version 2 is active and intact. Before the deletion went
 * through trash/, this left packages/app/1 without its manifest, which
 * the next open quarantined and nothing ever removed. */
Test(library, a_kill_while_retention_deletes_a_version_leaves_no_quarantine, .timeout = 120)
{
	char b[PATH_MAX], m1[PATH_MAX], tree[PATH_MAX];
	struct bdr_library *lib = tu_library(data, 1);
	struct stat st;
	uint64_t latest;
	int status;
	pid_t pid;

	/* Many files, so the removal lasts long enough to be caught. */
	for (int i = 0; i < 3000; i++) {
		snprintf(b, sizeof(b), "%s/many/d%02d", src, i % 30);
		if (i < 30)
			tu_mkdirs(b);
		snprintf(b, sizeof(b), "%s/many/d%02d/f%04d", src, i % 30, i);
		tu_write_random(b, 512, 100 + (uint64_t)i);
	}
	cr_assert_eq(tu_import(lib, &key, "app", src), 1);
	bdr_library_close(lib);
	change_source(7);
	snprintf(m1, sizeof(m1), "%s/packages/app/1/manifest", data);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		lib = tu_library(data, 1);
		tu_import(lib, &key, "app", src);
		_exit(0);
	}
	while (lstat(m1, &st) == 0)
		;
	kill(pid, SIGKILL);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFSIGNALED(status), "the child ended before the kill");
	lib = tu_library(data, 1);
	cr_assert_eq(bdr_library_quarantined(lib), 0, "a version was quarantined");
	cr_assert_eq(entries("quarantine"), 0);
	cr_assert_eq(entries("trash"), 0, "the interrupted deletion was not finished at open");
	cr_assert_not(version_dir_exists(1), "version 1 is still on disk");
	cr_assert_eq(bdr_library_latest(lib, "app", &latest), 0);
	cr_assert_eq(latest, 2);
	cr_assert_eq(bdr_library_tree_path(lib, "app", 2, tree, sizeof(tree)), 0);
	cr_assert_eq(tu_tree_diff(src, tree, 1), 0, "version 2 is not intact");
	bdr_library_close(lib);
}

/* The quarantine never grows without bound: past BDR_QUARANTINE_MAX_TREES
 * trees the oldest are removed at open, each with a notice, and what stays
 * is counted for the status. */
Test(library, the_quarantine_keeps_its_bound_and_says_what_it_removed)
{
	struct bdr_library_opts o = { .dir = data, .notice = on_notice };
	struct bdr_diag d = { { 0 } };
	struct bdr_library_quarantine q;
	struct notices nt = { 0 };
	struct bdr_library *lib;
	char b[PATH_MAX];
	struct stat st;

	o.notice_arg = &nt;
	bdr_library_close(tu_library(data, 0));
	for (unsigned i = 0; i < BDR_QUARANTINE_MAX_TREES + 2; i++) {
		snprintf(b, sizeof(b), "%s/quarantine/app.%u.1000.abcdef/tree", data, i + 11);
		tu_mkdirs(b);
		snprintf(b, sizeof(b), "%s/quarantine/app.%u.1000.abcdef/tree/f", data, i + 11);
		tu_write_random(b, 100000, i);
	}
	cr_assert_eq(bdr_library_open(&lib, &o, &d), 0, "%s", d.msg);
	bdr_library_quarantine_info(lib, &q);
	cr_assert_eq(q.trees, BDR_QUARANTINE_MAX_TREES);
	cr_assert_geq(q.bytes, BDR_QUARANTINE_MAX_TREES * 100000ull);
	cr_assert_eq(entries("quarantine"), (int)BDR_QUARANTINE_MAX_TREES);
	cr_assert_eq(nt.n, 2, "one notice per removed tree, not %d", nt.n);
	cr_assert(strstr(nt.last, "quarantine over its bound"), "%s", nt.last);
	/* the oldest (first made) went */
	snprintf(b, sizeof(b), "%s/quarantine/app.11.1000.abcdef", data);
	cr_assert_eq(lstat(b, &st), -1);
	snprintf(b, sizeof(b), "%s/quarantine/app.20.1000.abcdef", data);
	cr_assert_eq(lstat(b, &st), 0);
	bdr_library_close(lib);
}

/* Versions past BDR_VERSION_MAX (SQLite's int64) are refused before
 * anything is written: staging them fails with the reason and leaves no
 * directory; an import whose next number would pass it (the package was
 * removed at 2^63-1) fails the same way, and the library is unchanged. */
Test(library, versions_past_the_largest_are_refused_before_anything_is_written)
{
	static const uint64_t huge[] = { BDR_VERSION_MAX + 1, UINT64_MAX };
	struct bdr_library *lib = tu_library(data, 0);
	struct bdr_import_req req = { .package = "big", .site = "central" };
	struct bdr_import_stats st;
	struct bdr_diag d = { { 0 } };
	struct bdr_stage s;
	char b[PATH_MAX];
	uint64_t v = 0;

	for (size_t i = 0; i < 2; i++) {
		cr_assert_eq(bdr_library_stage_begin(lib, "app", huge[i], &s, &d), -BDR_ELIMIT);
		cr_assert(strstr(d.msg, "is outside 1..9223372036854775807"), "%s", d.msg);
		cr_assert_eq(entries("staging"), 0, "a staging directory was made for %llu",
			     (unsigned long long)huge[i]);
	}
	/* The largest itself is fine. */
	cr_assert_eq(bdr_library_stage_begin(lib, "app", BDR_VERSION_MAX, &s, &d), 0, "%s", d.msg);
	bdr_library_stage_abort(lib, &s);

	snprintf(b, sizeof(b), "%s/removed", data);
	tu_mkdirs(b);
	snprintf(b, sizeof(b), "%s/removed/big", data);
	tu_write(b, "9223372036854775807\n", 20);
	req.key = &key;
	req.srcdir = src;
	cr_assert_eq(bdr_import(lib, &req, &v, &st, &d), -BDR_ELIMIT, "%s", d.msg);
	cr_assert(strstr(d.msg, "version 9223372036854775808 is outside"), "%s", d.msg);
	cr_assert_eq(entries("staging"), 0);
	snprintf(b, sizeof(b), "%s/packages/big", data);
	cr_assert_eq(access(b, F_OK), -1, "the refused import left %s", b);
	bdr_library_close(lib);
}

/* ---- share_group: versions readable by a web server's group ---- */

/* A group this process may give its files: one it is not in when root
 * (so the test sees a real change of group), else its own. */
static gid_t share_gid(void)
{
	return geteuid() == 0 ? 4242 : getegid();
}

static struct bdr_library *open_shared(const char *dir, bool share)
{
	struct bdr_library_opts o = { .dir = dir, .keep_versions = 3, .share = share,
				      .share_gid = share_gid() };
	struct bdr_library *lib;
	struct bdr_diag d = { { 0 } };
	int rc = bdr_library_open(&lib, &o, &d);

	cr_assert_eq(rc, 0, "library_open %s: %s: %s", dir, bdr_strerror(rc), d.msg);
	return lib;
}

/* st_mode & 07777 of DIR/sub (lstat), and its group in *gid. */
static unsigned mode_of(const char *dir, const char *sub, gid_t *gid)
{
	char b[PATH_MAX];
	struct stat st;

	snprintf(b, sizeof(b), "%s/%s", dir, sub);
	cr_assert_eq(lstat(b, &st), 0, "%s: %s", b, strerror(errno));
	if (gid)
		*gid = st.st_gid;
	return st.st_mode & 07777;
}

static void assert_mode(const char *dir, const char *sub, unsigned want, gid_t want_gid)
{
	gid_t g;
	unsigned m = mode_of(dir, sub, &g);

	cr_assert_eq(m, want, "%s: mode %04o, want %04o", sub, m, want);
	if (want_gid != (gid_t)-1)
		cr_assert_eq(g, want_gid, "%s: group %u, want %u", sub, (unsigned)g, (unsigned)want_gid);
}

/* The source: dir 0755 (from setup), same.bin 0600, changing.bin 0644, a
 * script 0755 and a read-only file 0444. */
static void shared_source(void)
{
	char b[PATH_MAX];

	snprintf(b, sizeof(b), "%s/dir/same.bin", src);
	cr_assert_eq(chmod(b, 0600), 0);
	snprintf(b, sizeof(b), "%s/changing.bin", src);
	cr_assert_eq(chmod(b, 0644), 0);
	snprintf(b, sizeof(b), "%s/run.sh", src);
	tu_write(b, "#!/bin/sh\n", 10);
	cr_assert_eq(chmod(b, 0755), 0);
	snprintf(b, sizeof(b), "%s/dir/ro.txt", src);
	tu_write(b, "read only\n", 10);
	cr_assert_eq(chmod(b, 0444), 0);
	snprintf(b, sizeof(b), "%s/dir", src);
	cr_assert_eq(chmod(b, 0755), 0);
}

/* Version v of app in lib dir, as share_group wants it or as without. */
static void assert_version_modes(const char *dir, unsigned v, bool share)
{
	gid_t g = share ? share_gid() : (gid_t)-1;
	char p[64];

#define AT(s) (snprintf(p, sizeof(p), "packages/app/%u/%s", v, s), p)
	assert_mode(dir, AT(""), share ? 0750 : 0700, g);
	assert_mode(dir, AT("tree"), share ? 0750 : 0755, g);
	assert_mode(dir, AT("tree/dir"), share ? 0750 : 0755, g);
	assert_mode(dir, AT("tree/dir/same.bin"), share ? 0640 : 0600, g);
	assert_mode(dir, AT("tree/changing.bin"), share ? 0640 : 0644, g);
	assert_mode(dir, AT("tree/run.sh"), share ? 0750 : 0755, g);
	assert_mode(dir, AT("tree/dir/ro.txt"), share ? 0440 : 0444, g);
#undef AT
}

/* What a web server in the share group reaches: DIR searchable, packages
 * and P listable; nothing else in DIR open beyond its owner. */
static void assert_layout(const char *dir, bool share)
{
	gid_t g = share ? share_gid() : (gid_t)-1;
	static const char *const priv[] = { "staging", "partial", "quarantine", "trash", "bdr.db" };
	struct stat st;

	cr_assert_eq(stat(dir, &st), 0);
	cr_assert(!share || (st.st_mode & (st.st_gid == share_gid() ? 0010 : 0001)),
		  "DIR mode %04o: not searchable by the group", st.st_mode & 07777);
	assert_mode(dir, "packages", share ? 0750 : 0755, g);
	assert_mode(dir, "packages/app", share ? 0750 : 0755, g);
	for (size_t i = 0; share && i < sizeof(priv) / sizeof(priv[0]); i++)
		cr_assert_eq(mode_of(dir, priv[i], NULL) & 077, 0, "%s is open to others", priv[i]);
}

Test(library, without_share_group_trees_keep_their_manifest_modes_and_stay_private)
{
	struct bdr_library *lib;

	shared_source();
	lib = open_shared(data, false);
	cr_assert_eq(tu_import(lib, &key, "app", src), 1);
	assert_version_modes(data, 1, false);
	assert_layout(data, false);
	bdr_library_close(lib);
}

Test(library, with_share_group_every_path_to_and_in_a_tree_is_the_groups_to_read)
{
	char rdata[PATH_MAX], a[PATH_MAX], b[PATH_MAX];
	struct bdr_library *lib, *recv;
	struct stat sa, sb;

	shared_source();
	lib = open_shared(data, true);
	cr_assert_eq(tu_import(lib, &key, "app", src), 1);
	assert_version_modes(data, 1, true);
	assert_layout(data, true);
	/* Version 2 links the unchanged files of version 1: same inode, same
	 * modes. */
	change_source(7);
	cr_assert_eq(tu_import(lib, &key, "app", src), 2);
	assert_version_modes(data, 2, true);
	snprintf(a, sizeof(a), "%s/packages/app/1/tree/dir/same.bin", data);
	snprintf(b, sizeof(b), "%s/packages/app/2/tree/dir/same.bin", data);
	cr_assert_eq(stat(a, &sa), 0);
	cr_assert_eq(stat(b, &sb), 0);
	cr_assert_eq(sa.st_ino, sb.st_ino);
	/* A receiving site rebuilds (the path of a push and of a bundle). */
	snprintf(rdata, sizeof(rdata), "%s/recv", root);
	recv = open_shared(rdata, true);
	cr_assert_eq(tu_replicate(lib, recv, "app", 1, NULL), 0);
	cr_assert_eq(tu_replicate(lib, recv, "app", 2, NULL), 0);
	assert_version_modes(rdata, 1, true);
	assert_version_modes(rdata, 2, true);
	assert_layout(rdata, true);
	bdr_library_close(recv);
	bdr_library_close(lib);
}

Test(library, a_change_of_share_group_is_applied_to_held_versions_at_open)
{
	struct bdr_library_share_fix f;
	struct bdr_library *lib;

	shared_source();
	lib = open_shared(data, false);
	tu_import(lib, &key, "app", src);
	change_source(8);
	tu_import(lib, &key, "app", src);
	cr_assert_not(bdr_library_share_changed(lib, &f), "nothing to change without the setting");
	bdr_library_close(lib);
	lib = open_shared(data, true);
	cr_assert(bdr_library_share_changed(lib, &f));
	cr_assert_eq(f.versions, 2);
	cr_assert_eq(f.err, 0);
	assert_version_modes(data, 1, true);
	assert_version_modes(data, 2, true);
	assert_layout(data, true);
	bdr_library_close(lib);
	lib = open_shared(data, true);
	cr_assert_not(bdr_library_share_changed(lib, &f), "applied once, not at every open");
	bdr_library_close(lib);
	lib = open_shared(data, false);
	cr_assert(bdr_library_share_changed(lib, &f));
	cr_assert_eq(f.versions, 2);
	assert_version_modes(data, 1, false);
	assert_version_modes(data, 2, false);
	assert_mode(data, "packages/app/1/tree/dir/same.bin", 0600, getegid());
	bdr_library_close(lib);
}
