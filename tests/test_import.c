/* Import: a source tree becomes a version that equals it, unchanged files
 * skip the read and share storage, and nothing torn or unsafe gets in. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "bdr/db.h"
#include "bdr/error.h"
#include "bdr/import.h"
#include "bdr/library.h"
#include "testutil.h"

static char root[PATH_MAX], src[PATH_MAX], data[PATH_MAX];
static struct bdr_key key;
static struct bdr_library *lib;

static void p(char *buf, const char *rel)
{
	snprintf(buf, PATH_MAX, "%s/%s", src, rel);
}

static void make_tree(void)
{
	char b[PATH_MAX];

	p(b, "sub/deep"), tu_mkdirs(b);
	p(b, "emptydir"), tu_mkdirs(b);
	p(b, "a.txt"), tu_write(b, "hello, sites\n", 13);
	p(b, "empty"), tu_write(b, "", 0);
	p(b, "big.dat"), tu_write_random(b, 2u << 20, 1);
	p(b, "tool"), tu_write_random(b, 200000, 2), chmod(b, 0755);
	p(b, "sub/deep/x.c"), tu_write_random(b, 70000, 3);
	p(b, "link");
	cr_assert_eq(symlink("a.txt", b), 0);
	p(b, "sub/up");
	cr_assert_eq(symlink("../a.txt", b), 0);
}

static void setup(void)
{
	tu_mkdtemp(root, "import");
	snprintf(src, sizeof(src), "%s/src", root);
	snprintf(data, sizeof(data), "%s/data", root);
	tu_mkdirs(src);
	make_tree();
	cr_assert_eq(sodium_init() < 0, 0);
	bdr_key_generate(&key);
	lib = tu_library(data, 0);
}

static void teardown(void)
{
	bdr_library_close(lib);
	tu_rmrf(root);
}

TestSuite(import, .init = setup, .fini = teardown);

static void tree_of(uint64_t v, char *buf)
{
	cr_assert_eq(bdr_library_tree_path(lib, "app", v, buf, PATH_MAX), 0);
}

static ino_t ino_of(const char *tree, const char *rel)
{
	char b[PATH_MAX];
	struct stat st;

	snprintf(b, sizeof(b), "%s/%s", tree, rel);
	cr_assert_eq(lstat(b, &st), 0, "lstat %s", b);
	return st.st_ino;
}

static int64_t racy = -1; /* the tests write files moments before importing */
static enum bdr_quick_check qcmode = BDR_QC_MTIME;

static int do_import(struct bdr_import_stats *st, struct bdr_diag *d, uint64_t *v)
{
	struct bdr_import_req req = { .package = "app", .srcdir = src, .site = "central", .key = &key,
				      .racy_window_ns = racy, .quick_check = qcmode };
	return bdr_import(lib, &req, v, st, d);
}

Test(import, version_equals_source_bit_for_bit)
{
	char tree[PATH_MAX];
	uint64_t v = tu_import(lib, &key, "app", src);

	cr_assert_eq(v, 1);
	tree_of(v, tree);
	cr_assert_eq(tu_tree_diff(src, tree, 1), 0, "version 1 differs from its source");
}

Test(import, unchanged_files_skip_the_read_and_are_hardlinks)
{
	struct bdr_import_stats st;
	struct bdr_diag d = { { 0 } };
	char t1[PATH_MAX], t2[PATH_MAX], b[PATH_MAX];
	uint64_t v;

	cr_assert_eq(do_import(&st, &d, &v), 0, "%s", d.msg);
	cr_assert(!st.unchanged);
	/* The same tree again: nothing read, and no new version. */
	cr_assert_eq(do_import(&st, &d, &v), 0, "%s", d.msg);
	cr_assert_eq(v, 1);
	cr_assert(st.unchanged, "an unchanged tree made a new version");
	cr_assert_eq(st.files, 5);
	cr_assert_eq(st.files_read, 0, "unchanged files were read again");
	cr_assert_eq(st.files_quick, 5);
	tree_of(2, t2);
	cr_assert_eq(access(t2, F_OK), -1, "version 2 exists");

	/* Same size, new content: the quick check sees the new mtime/ctime;
	 * the files that did not change are hardlinks of version 1's. */
	p(b, "sub/deep/x.c"), tu_write_random(b, 70000, 99);
	cr_assert_eq(do_import(&st, &d, &v), 0, "%s", d.msg);
	cr_assert_eq(v, 2);
	cr_assert(!st.unchanged);
	cr_assert_eq(st.files_read, 1, "files_read %" PRIu64, st.files_read);
	cr_assert_eq(st.bytes_read, 70000);
	tree_of(1, t1), tree_of(2, t2);
	cr_assert_eq(tu_tree_diff(src, t2, 1), 0);
	cr_assert_eq(ino_of(t1, "big.dat"), ino_of(t2, "big.dat"));
	cr_assert_neq(ino_of(t1, "sub/deep/x.c"), ino_of(t2, "sub/deep/x.c"));
}

Test(import, files_changed_just_before_the_import_are_not_trusted_to_the_cache)
{
	struct bdr_import_stats st;
	struct bdr_diag d = { { 0 } };
	uint64_t v;

	racy = 0; /* the default window: every file here was just written */
	cr_assert_eq(do_import(&st, &d, &v), 0, "%s", d.msg);
	cr_assert_eq(do_import(&st, &d, &v), 0, "%s", d.msg);
	cr_assert_eq(st.files_quick, 0, "a racily clean file was taken from the cache");
	cr_assert_eq(st.files_read, 5);
	racy = -1;
}

/* A tree copied afresh with its times (cp -a, an unpacked release): new
 * inodes and ctimes. The default quick check goes by size, mode and mtime
 * against the previous manifest, as rsync does, and reads nothing; the
 * strict one reads every file; an mtime within the racy window of the
 * previous import is never trusted. */
Test(import, a_fresh_copy_with_the_same_times_is_not_read_again)
{
	struct bdr_import_stats st;
	struct bdr_diag d = { { 0 } };
	char old[PATH_MAX + 8], cmd[3 * PATH_MAX];
	uint64_t v;

	cr_assert_eq(do_import(&st, &d, &v), 0, "%s", d.msg);
	snprintf(old, sizeof(old), "%s.old", src);
	cr_assert_eq(rename(src, old), 0);
	snprintf(cmd, sizeof(cmd), "cp -a '%s' '%s'", old, src);
	cr_assert_eq(system(cmd), 0);

	racy = 3600ll * 1000000000; /* every mtime is within an hour of version 1 */
	cr_assert_eq(do_import(&st, &d, &v), 0, "%s", d.msg);
	cr_assert(st.unchanged);
	cr_assert_eq(st.files_read, 5, "racy mtimes were trusted");
	racy = -1;

	qcmode = BDR_QC_STRICT;
	cr_assert_eq(do_import(&st, &d, &v), 0, "%s", d.msg);
	qcmode = BDR_QC_MTIME;
	cr_assert(st.unchanged);
	cr_assert_eq(st.files_read, 5, "strict: files_read %" PRIu64, st.files_read);

	/* and once more afresh, with the default */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' && cp -a '%s' '%s'", src, old, src);
	cr_assert_eq(system(cmd), 0);
	cr_assert_eq(do_import(&st, &d, &v), 0, "%s", d.msg);
	cr_assert(st.unchanged);
	cr_assert_eq(st.files_read, 0, "files_read %" PRIu64, st.files_read);
}

Test(import, renamed_file_is_read_but_stored_as_a_link)
{
	char t1[PATH_MAX], t2[PATH_MAX], a[PATH_MAX], b[PATH_MAX];

	tu_import(lib, &key, "app", src);
	p(a, "big.dat"), p(b, "sub/big-renamed.dat");
	cr_assert_eq(rename(a, b), 0);
	cr_assert_eq(tu_import(lib, &key, "app", src), 2);
	tree_of(1, t1), tree_of(2, t2);
	cr_assert_eq(ino_of(t1, "big.dat"), ino_of(t2, "sub/big-renamed.dat"));
	cr_assert_eq(tu_tree_diff(src, t2, 1), 0);
}

static atomic_bool stop;

static void *scribbler(void *arg)
{
	int fd = open(arg, O_WRONLY);
	uint64_t i = 0;

	while (!atomic_load(&stop)) {
		i++;
		if (pwrite(fd, &i, sizeof(i), (off_t)((i * 4096) % (16u << 20))) < 0)
			break;
	}
	close(fd);
	return NULL;
}

Test(import, a_file_that_keeps_changing_fails_the_import_and_names_it)
{
	struct bdr_import_stats st;
	struct bdr_diag d = { { 0 } };
	char b[PATH_MAX], staging[PATH_MAX];
	pthread_t t;
	uint64_t v = 0;
	int rc;

	p(b, "hot.log"), tu_write_random(b, 32u << 20, 5);
	atomic_store(&stop, false);
	cr_assert_eq(pthread_create(&t, NULL, scribbler, b), 0);
	rc = do_import(&st, &d, &v);
	atomic_store(&stop, true);
	pthread_join(t, NULL);
	cr_assert_eq(rc, -BDR_ECHANGED, "got %s", bdr_strerror(rc));
	cr_assert_not_null(strstr(d.msg, "hot.log"), "diag does not name the file: %s", d.msg);
	cr_assert_eq(st.retries, BDR_IMPORT_RETRIES);
	cr_assert_eq(bdr_library_latest(lib, "app", &v), -BDR_ENOTFOUND, "a torn version was kept");
	snprintf(staging, sizeof(staging), "%s/staging", data);
	cr_assert_eq(rmdir(staging), 0, "staging not cleaned up: %s", strerror(errno));
}

Test(import, symlink_leaving_the_package_is_refused)
{
	struct bdr_diag d = { { 0 } };
	char b[PATH_MAX];
	uint64_t v;

	p(b, "sub/escape");
	cr_assert_eq(symlink("../../etc/passwd", b), 0);
	cr_assert_eq(do_import(NULL, &d, &v), -BDR_EPATH);
	cr_assert_not_null(strstr(d.msg, "sub/escape"), "%s", d.msg);
	cr_assert_eq(bdr_library_latest(lib, "app", &v), -BDR_ENOTFOUND);
}

Test(import, special_files_and_missing_sources_are_refused_by_name)
{
	struct bdr_diag d = { { 0 } };
	struct bdr_import_req req = { .package = "app", .srcdir = "/nonexistent/bdr", .site = "central", .key = &key };
	char b[PATH_MAX];
	uint64_t v;

	cr_assert_eq(bdr_import(lib, &req, &v, NULL, &d), -ENOENT);
	cr_assert_not_null(strstr(d.msg, "/nonexistent/bdr"), "%s", d.msg);
	p(b, "pipe");
	cr_assert_eq(mkfifo(b, 0644), 0);
	cr_assert_eq(do_import(NULL, &d, &v), -BDR_EPATH);
	cr_assert_not_null(strstr(d.msg, "pipe"), "%s", d.msg);
}

Test(import, bad_package_names_are_refused)
{
	struct bdr_diag d = { { 0 } };
	static const char *const bad[] = { "", "../x", "a/b", ".hidden" };
	uint64_t v;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct bdr_import_req req = { .package = bad[i], .srcdir = src, .site = "central", .key = &key };
		cr_assert_lt(bdr_import(lib, &req, &v, NULL, &d), 0, "accepted package '%s'", bad[i]);
	}
}

/* On another user's behalf (req.as), the import takes only what that user
 * could read: a root-only file or directory inside a readable tree fails
 * it with -EACCES naming the entry, and nothing is added; the same tree
 * imports for root (as NULL). Needs root to own files as someone else. */
Test(import, as_another_user)
{
	struct bdr_cred as = { .uid = 4242, .gid = 4242 };
	struct bdr_import_req req = { .package = "app", .site = "hq", .key = &key, .as = &as };
	struct bdr_diag d = { { 0 } };
	char b[PATH_MAX];
	uint64_t v = 0;
	int fd;

	if (geteuid() != 0)
		cr_skip_test("needs root to own files as someone else");
	fd = open(src, O_RDONLY | O_DIRECTORY);
	req.srcdir_fd = fd;
	/* Everything readable by others: the tree imports. */
	cr_assert_eq(bdr_import(lib, &req, &v, NULL, &d), 0, "%s", d.msg);
	cr_assert_eq(v, 1);
	p(b, "sub/deep/x.c"), chmod(b, 0600);
	cr_assert_eq(bdr_import(lib, &req, &v, NULL, &d), -EACCES);
	cr_assert(strstr(d.msg, "sub/deep/x.c"), "%s", d.msg);
	p(b, "sub/deep/x.c"), chmod(b, 0644);
	p(b, "sub/deep"), chmod(b, 0700);
	cr_assert_eq(bdr_import(lib, &req, &v, NULL, &d), -EACCES);
	cr_assert(strstr(d.msg, "sub/deep"), "%s", d.msg);
	cr_assert_eq(bdr_library_latest(lib, "app", &v), 0);
	cr_assert_eq(v, 1, "a refused import added a version");
	/* The user's own file, 0600: its owner may. */
	p(b, "sub/deep"), chmod(b, 0755);
	p(b, "big.dat"), chmod(b, 0600);
	cr_assert_eq(chown(b, 4242, 0), 0);
	cr_assert_eq(bdr_import(lib, &req, &v, NULL, &d), 0, "%s", d.msg);
	cr_assert_eq(v, 2);
	/* root (as NULL) takes a file no one else may read. */
	p(b, "a.txt"), chmod(b, 0600);
	req.as = NULL;
	cr_assert_eq(bdr_import(lib, &req, &v, NULL, &d), 0, "%s", d.msg);
	close(fd);
}
