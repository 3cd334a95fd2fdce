#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "testutil.h"

void tu_mkdirs(const char *path)
{
	char tmp[PATH_MAX];

	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		mkdir(tmp, 0755);
		*p = '/';
	}
	if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
		cr_assert_fail("mkdir %s: %s", tmp, strerror(errno));
}

void tu_mkdtemp(char buf[PATH_MAX], const char *tag)
{
	const char *base = getenv("BDR_TEST_TMP");

	if (!base || !*base)
		base = "/tmp";
	tu_mkdirs(base);
	snprintf(buf, PATH_MAX, "%s/%s.XXXXXX", base, tag);
	cr_assert_not_null(mkdtemp(buf), "mkdtemp %s: %s", buf, strerror(errno));
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)ftw;
	if (flag == FTW_DP)
		chmod(path, 0700), rmdir(path);
	else
		unlink(path);
	return 0;
}

void tu_rmrf(const char *path)
{
	/* Make every directory writable first so read-only trees go too. */
	char cmd[PATH_MAX + 32];

	snprintf(cmd, sizeof(cmd), "chmod -R u+rwx '%s' 2>/dev/null", path);
	if (system(cmd) < 0)
		return;
	nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS);
}

void tu_fill_random(void *buf, size_t len, uint64_t seed)
{
	uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
	uint8_t *p = buf;

	for (size_t i = 0; i < len; i += 8) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		size_t n = len - i < 8 ? len - i : 8;
		memcpy(p + i, &x, n);
	}
}

void tu_write(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
	cr_assert_eq(write(fd, buf, len), (ssize_t)len, "write %s", path);
	close(fd);
}

void tu_write_random(const char *path, size_t len, uint64_t seed)
{
	uint8_t *buf = malloc(len ? len : 1);

	cr_assert_not_null(buf);
	tu_fill_random(buf, len, seed);
	tu_write(path, buf, len);
	free(buf);
}

uint8_t *tu_read(const char *path, size_t *len)
{
	struct stat st;
	int fd = open(path, O_RDONLY);

	cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
	cr_assert(fstat(fd, &st) == 0);
	uint8_t *buf = malloc(st.st_size + 1);
	cr_assert_eq(read(fd, buf, st.st_size), st.st_size);
	close(fd);
	*len = st.st_size;
	return buf;
}

static int files_differ(const char *a, const char *b)
{
	static uint8_t ba[1 << 16], bb[1 << 16];
	int fa = open(a, O_RDONLY), fb = open(b, O_RDONLY), diff = 1;

	if (fa < 0 || fb < 0)
		goto out;
	for (;;) {
		ssize_t na = read(fa, ba, sizeof(ba)), nb = read(fb, bb, sizeof(bb));
		if (na != nb || na < 0 || memcmp(ba, bb, na))
			goto out;
		if (na == 0)
			break;
	}
	diff = 0;
out:
	if (fa >= 0)
		close(fa);
	if (fb >= 0)
		close(fb);
	return diff;
}

static int names_cmp(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

/* Sorted entry names of dir (without . and ..); count in *n. */
static char **list_dir(const char *dir, size_t *n)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char **v = NULL;

	*n = 0;
	if (!d)
		return NULL;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		v = realloc(v, (*n + 1) * sizeof(*v));
		v[(*n)++] = strdup(de->d_name);
	}
	closedir(d);
	if (*n > 1)
		qsort(v, *n, sizeof(*v), names_cmp);
	return v;
}

static int entry_diff(const char *pa, const char *pb, int check_mtime);

static int dir_diff(const char *a, const char *b, int check_mtime)
{
	size_t na, nb;
	char **va = list_dir(a, &na), **vb = list_dir(b, &nb);
	int rc = 0;

	if (na != nb) {
		fprintf(stderr, "tree diff: %s has %zu entries, %s has %zu\n", a, na, b, nb);
		rc = 1;
	}
	for (size_t i = 0; !rc && i < na; i++) {
		char pa[PATH_MAX], pb[PATH_MAX];
		if (strcmp(va[i], vb[i])) {
			fprintf(stderr, "tree diff: %s/%s vs %s/%s\n", a, va[i], b, vb[i]);
			rc = 1;
			break;
		}
		snprintf(pa, sizeof(pa), "%s/%s", a, va[i]);
		snprintf(pb, sizeof(pb), "%s/%s", b, vb[i]);
		rc = entry_diff(pa, pb, check_mtime);
	}
	for (size_t i = 0; i < na; i++)
		free(va[i]);
	for (size_t i = 0; i < nb; i++)
		free(vb[i]);
	free(va);
	free(vb);
	return rc;
}

static int entry_diff(const char *pa, const char *pb, int check_mtime)
{
	struct stat sa, sb;

	if (lstat(pa, &sa) || lstat(pb, &sb)) {
		fprintf(stderr, "tree diff: cannot stat %s or %s\n", pa, pb);
		return 1;
	}
	if ((sa.st_mode & S_IFMT) != (sb.st_mode & S_IFMT) || (sa.st_mode & 07777) != (sb.st_mode & 07777)) {
		fprintf(stderr, "tree diff: type/mode %s %o vs %o\n", pa, sa.st_mode, sb.st_mode);
		return 1;
	}
	if (S_ISDIR(sa.st_mode))
		return dir_diff(pa, pb, check_mtime);
	if (S_ISLNK(sa.st_mode)) {
		char ta[PATH_MAX] = {0}, tb[PATH_MAX] = {0};
		if (readlink(pa, ta, sizeof(ta) - 1) < 0 || readlink(pb, tb, sizeof(tb) - 1) < 0 || strcmp(ta, tb)) {
			fprintf(stderr, "tree diff: symlink %s -> '%s' vs '%s'\n", pa, ta, tb);
			return 1;
		}
		return 0;
	}
	if (sa.st_size != sb.st_size || files_differ(pa, pb)) {
		fprintf(stderr, "tree diff: content of %s\n", pa);
		return 1;
	}
	if (check_mtime && (sa.st_mtim.tv_sec != sb.st_mtim.tv_sec || sa.st_mtim.tv_nsec != sb.st_mtim.tv_nsec)) {
		fprintf(stderr, "tree diff: mtime of %s\n", pa);
		return 1;
	}
	return 0;
}

int tu_tree_diff(const char *a, const char *b, int check_mtime)
{
	return dir_diff(a, b, check_mtime);
}

const char *tu_corpus(const char *name, char buf[PATH_MAX])
{
	const char *base = getenv("BDR_CORPORA");
	struct stat st;

	if (!base || !*base)
		return NULL;
	snprintf(buf, PATH_MAX, "%s/%s/.complete", base, name);
	if (stat(buf, &st) < 0)
		return NULL;
	snprintf(buf, PATH_MAX, "%s/%s", base, name);
	return buf;
}

#include "bdr/db.h"
#include "bdr/error.h"
#include "bdr/import.h"
#include "bdr/library.h"
#include "bdr/rebuild.h"

struct bdr_library *tu_library(const char *dir, uint32_t keep)
{
	struct bdr_library_opts o = { .dir = dir, .keep_versions = keep };
	struct bdr_library *lib;
	struct bdr_diag d = { { 0 } };
	int rc = bdr_library_open(&lib, &o, &d);

	cr_assert_eq(rc, 0, "library_open %s: %s: %s", dir, bdr_strerror(rc), d.msg);
	return lib;
}

uint64_t tu_import(struct bdr_library *lib, const struct bdr_key *k, const char *package,
		   const char *dir)
{
	struct bdr_import_req req = { .package = package, .srcdir = dir, .site = "central", .key = k };
	struct bdr_diag d = { { 0 } };
	uint64_t v = 0;
	int rc = bdr_import(lib, &req, &v, NULL, &d);

	cr_assert_eq(rc, 0, "import %s: %s: %s", dir, bdr_strerror(rc), d.msg);
	return v;
}

int tu_replicate(struct bdr_library *sender, struct bdr_library *receiver, const char *package,
		 uint64_t version, uint64_t *missing)
{
	char path[PATH_MAX];
	struct bdr_rebuild *rb;
	struct bdr_diag d = { { 0 } };
	uint8_t *mbuf;
	size_t mlen;
	int rc;

	snprintf(path, sizeof(path), "%s/packages/%s/%llu/manifest", bdr_library_dir(sender), package,
		 (unsigned long long)version);
	mbuf = tu_read(path, &mlen);
	rc = bdr_rebuild_begin(receiver, mbuf, mlen, NULL, &rb, &d);
	cr_assert_eq(rc, 0, "rebuild_begin: %s: %s", bdr_strerror(rc), d.msg);
	rc = bdr_rebuild_feed_from(rb, sender, missing, &d);
	cr_assert_eq(rc, 0, "feeding chunks: %s: %s", bdr_strerror(rc), d.msg);
	rc = bdr_rebuild_finish(rb, &d);
	if (rc)
		fprintf(stderr, "rebuild_finish: %s: %s\n", bdr_strerror(rc), d.msg);
	bdr_rebuild_free(rb);
	free(mbuf);
	return rc;
}
