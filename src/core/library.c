/* The site library on disk; see include/bdr/library.h for the layout.
 *
 * The manifests on disk are the truth and the database a cache of them:
 * opening the library reconciles the two (versions on disk but not in the
 * database are indexed, rows without a version on disk are dropped), and a
 * missing or damaged database is rebuilt from the manifests. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bdr/db.h"
#include "bdr/error.h"
#include "bdr/library.h"
#include "fsutil.h"

struct bdr_library {
	char *dir;          /* owned */
	struct bdr_db *db;  /* owned */
	uint32_t keep;
	uint32_t quarantined; /* versions moved aside since open */
	struct bdr_library_quarantine qstat; /* as of the last open or reindex */
	bdr_library_notice_fn notice;
	void *notice_arg;
	struct bdr_chunker_params chunking;
	char dbpath[PATH_MAX];
};

struct bdr_db *bdr_library_db(struct bdr_library *lib) { return lib->db; }
const char *bdr_library_dir(const struct bdr_library *lib) { return lib->dir; }
uint32_t bdr_library_quarantined(const struct bdr_library *lib) { return lib->quarantined; }

void bdr_library_quarantine_info(const struct bdr_library *lib, struct bdr_library_quarantine *q)
{
	*q = lib->qstat;
}

static void notice(struct bdr_library *lib, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void notice(struct bdr_library *lib, const char *fmt, ...)
{
	char msg[PATH_MAX + 256];
	va_list ap;

	if (!lib->notice)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	lib->notice(lib->notice_arg, msg);
}

const struct bdr_chunker_params *bdr_library_chunking(const struct bdr_library *lib)
{
	return &lib->chunking;
}

static int pkg_path(const struct bdr_library *lib, char *buf, size_t size, const char *package)
{
	return bdr_fs_path(buf, size, "%s/packages/%s", lib->dir, package);
}

static int version_path(const struct bdr_library *lib, char *buf, size_t size,
			const char *package, uint64_t version)
{
	return bdr_fs_path(buf, size, "%s/packages/%s/%" PRIu64, lib->dir, package, version);
}

int bdr_library_tree_path(const struct bdr_library *lib, const char *package, uint64_t version,
			  char *buf, size_t size)
{
	return bdr_fs_path(buf, size, "%s/packages/%s/%" PRIu64 "/tree", lib->dir, package, version);
}

int bdr_library_partial_path(const struct bdr_library *lib, const char *package, uint64_t version,
			     char *buf, size_t size)
{
	return bdr_fs_path(buf, size, "%s/partial/%s.%" PRIu64 ".pack", lib->dir, package, version);
}

int bdr_library_loc_path(const struct bdr_library *lib, const struct bdr_db_loc *loc,
			 char *buf, size_t size)
{
	return bdr_fs_path(buf, size, "%s/packages/%s/%" PRIu64 "/tree/%s", lib->dir,
			   loc->package, loc->version, loc->path);
}

/* A version directory's name: decimal, no leading zero, >= 1. */
static int parse_version(const char *s, uint64_t *v)
{
	uint64_t x = 0;

	if (*s < '1' || *s > '9')
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || x > (UINT64_MAX - 9) / 10)
			return -EINVAL;
		x = x * 10 + (uint64_t)(*s - '0');
	}
	*v = x;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Version numbers present under packages/P, ascending; *v malloc'd. */
static int disk_versions(const struct bdr_library *lib, const char *package, uint64_t **v, size_t *n)
{
	char path[PATH_MAX];
	struct dirent *de;
	size_t cap = 0;
	DIR *d;
	int rc = pkg_path(lib, path, sizeof(path), package);

	*v = NULL, *n = 0;
	if (rc < 0)
		return rc;
	if (!(d = opendir(path)))
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		uint64_t ver;
		if (parse_version(de->d_name, &ver) < 0)
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 8;
			uint64_t *nv = realloc(*v, cap * sizeof(**v));
			if (!nv) {
				rc = -ENOMEM;
				break;
			}
			*v = nv;
		}
		(*v)[(*n)++] = ver;
	}
	closedir(d);
	if (rc < 0) {
		free(*v), *v = NULL, *n = 0;
		return rc;
	}
	qsort(*v, *n, sizeof(**v), cmp_u64);
	return 0;
}

int bdr_library_manifest_read(struct bdr_library *lib, const char *package, uint64_t version,
			      uint8_t **buf, size_t *len)
{
	char path[PATH_MAX];
	int rc = version_path(lib, path, sizeof(path), package, version);

	*buf = NULL, *len = 0;
	if (rc == 0 && (rc = bdr_fs_path(path + strlen(path), sizeof(path) - strlen(path), "/manifest")) == 0)
		rc = bdr_fs_read_file(AT_FDCWD, path, BDR_MAX_MANIFEST_BYTES, buf, len);
	return rc;
}

int bdr_library_manifest_load(struct bdr_library *lib, const char *package, uint64_t version,
			      struct bdr_manifest *m, struct bdr_diag *d)
{
	char path[PATH_MAX];
	uint8_t *buf;
	size_t len;
	int rc = version_path(lib, path, sizeof(path), package, version);

	bdr_manifest_init(m);
	if (rc == 0 && (rc = bdr_fs_path(path + strlen(path), sizeof(path) - strlen(path), "/manifest")) == 0)
		rc = bdr_fs_read_file(AT_FDCWD, path, BDR_MAX_MANIFEST_BYTES, &buf, &len);
	if (rc == -ENOENT)
		return bdr_diag_set(d, -BDR_ENOTFOUND, "package '%s' has no version %" PRIu64
				    " in the library", package, version);
	if (rc < 0)
		return bdr_diag_set(d, rc, "package '%s' version %" PRIu64 ": cannot read manifest: %s",
				    package, version, bdr_strerror(rc));
	rc = bdr_manifest_decode(buf, len, NULL, m, d);
	free(buf);
	if (rc == 0 && (strcmp(m->package, package) || m->version != version)) {
		rc = bdr_diag_set(d, -BDR_ECORRUPT, "%s names package '%s' version %" PRIu64,
				  path, m->package, m->version);
		bdr_manifest_free(m);
	}
	return rc;
}

/* Points packages/P/current at version (or removes it when 0). */
static int set_current(struct bdr_library *lib, const char *package, uint64_t version)
{
	char dir[PATH_MAX], tmp[PATH_MAX], cur[PATH_MAX], target[32];
	int rc = pkg_path(lib, dir, sizeof(dir), package);

	if (rc == 0)
		rc = bdr_fs_path(tmp, sizeof(tmp), "%s/current.tmp", dir);
	if (rc == 0)
		rc = bdr_fs_path(cur, sizeof(cur), "%s/current", dir);
	if (rc < 0)
		return rc;
	if (version == 0)
		return unlink(cur) < 0 && errno != ENOENT ? -errno : 0;
	snprintf(target, sizeof(target), "%" PRIu64, version);
	if (unlink(tmp) < 0 && errno != ENOENT)
		return -errno;
	if (symlink(target, tmp) < 0 || rename(tmp, cur) < 0)
		return -errno;
	return bdr_fs_fsync_dir(dir);
}

/* Moves path (a directory of the library) into DIR/trash in one rename,
 * durably: from then on it is garbage that the next open removes if a
 * crash interrupts the removal. Its new name is written to trashed. */
static int trash_move(struct bdr_library *lib, const char *path, const char *name,
		      char *trashed, size_t size)
{
	char parent[PATH_MAX], *slash;
	int rc = bdr_fs_path(trashed, size, "%s/trash/%s.XXXXXX", lib->dir, name);

	if (rc == 0)
		rc = bdr_fs_path(parent, sizeof(parent), "%s", path);
	if (rc < 0)
		return rc;
	/* An empty directory of a unique name, which the rename replaces. */
	if (!mkdtemp(trashed))
		return -errno;
	if (rename(path, trashed) < 0) {
		rc = -errno;
		rmdir(trashed);
		return rc;
	}
	if ((slash = strrchr(parent, '/')))
		*slash = '\0';
	rc = bdr_fs_fsync_dir(parent);
	if (rc == 0 && (slash = strrchr(trashed, '/'))) {
		*slash = '\0';
		rc = bdr_fs_fsync_dir(trashed);
		*slash = '/';
	}
	return rc;
}

/* Drops a version: database first, so a crash in between leaves a
 * complete directory that the next open indexes (and retention drops)
 * again; then the directory leaves packages/ in one rename into trash,
 * so a crash during the removal of its files leaves no tree without its
 * manifest (which the next open would quarantine), only trash, emptied
 * at the next open. */
static int drop_version(struct bdr_library *lib, const char *package, uint64_t version)
{
	char path[PATH_MAX], name[BDR_MAX_PACKAGE_NAME + 32], trashed[PATH_MAX];
	int rc = bdr_db_version_remove(lib->db, package, version);

	if (rc < 0 && rc != -BDR_ENOTFOUND)
		return rc;
	snprintf(name, sizeof(name), "%s.%" PRIu64, package, version);
	rc = version_path(lib, path, sizeof(path), package, version);
	if (rc == 0)
		rc = trash_move(lib, path, name, trashed, sizeof(trashed));
	if (rc == -ENOENT)
		return 0;
	return rc < 0 ? rc : bdr_fs_rmrf(trashed);
}

/* Keeps the newest lib->keep versions, then points current at the newest. */
static int apply_retention(struct bdr_library *lib, const char *package)
{
	uint64_t *v;
	size_t n;
	int rc = bdr_db_versions(lib->db, package, &v, &n);

	for (size_t i = 0; rc == 0 && n > lib->keep && i < n - lib->keep; i++)
		rc = drop_version(lib, package, v[i]);
	if (rc == 0)
		rc = set_current(lib, package, n ? v[n - 1] : 0);
	free(v);
	return rc;
}

static bool contains(const uint64_t *v, size_t n, uint64_t x)
{
	return n && bsearch(&x, v, n, sizeof(*v), cmp_u64) != NULL;
}

/* Moves a version that cannot be trusted out of the library, keeping it
 * for the operator to inspect: DIR/quarantine/P.V.<unix time>.XXXXXX. */
static int quarantine(struct bdr_library *lib, const char *package, uint64_t version,
		      const char *why)
{
	char from[PATH_MAX], to[PATH_MAX];
	int rc = version_path(lib, from, sizeof(from), package, version);

	if (rc == 0)
		rc = bdr_fs_path(to, sizeof(to), "%s/quarantine/%s.%" PRIu64 ".%lld.XXXXXX", lib->dir,
				 package, version, (long long)time(NULL));
	if (rc == 0 && !mkdtemp(to))
		rc = -errno;
	if (rc == 0 && rename(from, to) < 0) {
		rc = -errno;
		rmdir(to);
	}
	if (rc == 0)
		notice(lib, "package '%s' version %" PRIu64 " failed to verify (%s): moved to %s; "
		       "inspect it, then delete it to reclaim its space", package, version, why, to);
	return rc;
}

/* Indexes one version found on disk. One whose manifest cannot be read or
 * verified is incomplete or damaged: it is quarantined, never served. */
static int index_disk_version(struct bdr_library *lib, const char *package, uint64_t version,
			      struct bdr_diag *d)
{
	struct bdr_manifest m;
	int rc = bdr_library_manifest_load(lib, package, version, &m, d);

	if (rc == -ENOMEM)
		return rc;
	if (rc < 0) {
		lib->quarantined++;
		return quarantine(lib, package, version, d && d->msg[0] ? d->msg : bdr_strerror(rc));
	}
	rc = bdr_db_version_add(lib->db, &m);
	bdr_manifest_free(&m);
	return rc;
}

static int reconcile_package(struct bdr_library *lib, const char *package, struct bdr_diag *d)
{
	uint64_t *dv = NULL, *bv = NULL;
	size_t dn = 0, bn = 0;
	int rc = disk_versions(lib, package, &dv, &dn);

	if (rc == 0)
		rc = bdr_db_versions(lib->db, package, &bv, &bn);
	for (size_t i = 0; rc == 0 && i < bn; i++)
		if (!contains(dv, dn, bv[i]))
			rc = bdr_db_version_remove(lib->db, package, bv[i]);
	for (size_t i = 0; rc == 0 && i < dn; i++)
		if (!contains(bv, bn, dv[i]))
			rc = index_disk_version(lib, package, dv[i], d);
	if (rc == 0)
		rc = apply_retention(lib, package);
	free(dv);
	free(bv);
	return rc;
}

/* Removes received chunks of versions the library has already reached
 * (P.V.pack with V <= the active version): no transfer can need them. */
static void drop_obsolete_partials(struct bdr_library *lib)
{
	char dir[PATH_MAX], path[PATH_MAX], name[NAME_MAX + 1];
	struct dirent *de;
	DIR *d;

	if (bdr_fs_path(dir, sizeof(dir), "%s/partial", lib->dir) < 0 || !(d = opendir(dir)))
		return;
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);
		uint64_t version, latest;
		char *dot;

		if (n < 6 || strcmp(de->d_name + n - 5, ".pack"))
			continue;
		memcpy(name, de->d_name, n - 5);
		name[n - 5] = '\0';
		/* Package names may hold dots; the version is after the last. */
		if (!(dot = strrchr(name, '.')) || parse_version(dot + 1, &version) < 0)
			continue;
		*dot = '\0';
		if (bdr_library_latest(lib, name, &latest) == 0 && version <= latest &&
		    bdr_fs_path(path, sizeof(path), "%s/%s", dir, de->d_name) == 0)
			unlink(path);
	}
	closedir(d);
}

/* ---- the quarantine's bound ---- */

/* Bytes that removing the tree open as dfd (consumed) would free: the
 * blocks of its directories and of the files no other tree links to. */
static uint64_t tree_bytes_at(int dfd)
{
	DIR *d = fdopendir(dfd);
	struct dirent *de;
	struct stat st;
	uint64_t sum = 0;

	if (!d) {
		close(dfd);
		return 0;
	}
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			int sub = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			sum += (uint64_t)st.st_blocks * 512 + (sub >= 0 ? tree_bytes_at(sub) : 0);
		} else if (st.st_nlink == 1) {
			sum += (uint64_t)st.st_blocks * 512;
		}
	}
	closedir(d);
	return sum;
}

struct qentry {
	char name[NAME_MAX + 1];
	int64_t when; /* ctime: a rename sets it, so the time it was quarantined */
	uint64_t bytes;
};

static int cmp_newest_first(const void *a, const void *b)
{
	const struct qentry *x = a, *y = b;

	if (x->when != y->when)
		return x->when > y->when ? -1 : 1;
	return -strcmp(x->name, y->name);
}

/* The trees in DIR/quarantine; *v malloc'd. */
static int quarantine_list(const char *dir, struct qentry **v, size_t *n)
{
	struct dirent *de;
	size_t cap = 0;
	DIR *d = opendir(dir);
	int rc = 0;

	*v = NULL, *n = 0;
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		struct stat st;
		int fd;

		if (de->d_name[0] == '.' || fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (*n == cap) {
			struct qentry *nv = realloc(*v, (cap = cap ? 2 * cap : 16) * sizeof(**v));
			if (!nv) {
				rc = -ENOMEM;
				break;
			}
			*v = nv;
		}
		struct qentry *q = &(*v)[(*n)++];
		snprintf(q->name, sizeof(q->name), "%s", de->d_name);
		q->when = (int64_t)st.st_ctim.tv_sec;
		q->bytes = (uint64_t)st.st_blocks * 512;
		fd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0)
			q->bytes += tree_bytes_at(fd);
	}
	closedir(d);
	if (*n) /* qsort's array must not be NULL, even empty */
		qsort(*v, *n, sizeof(**v), cmp_newest_first);
	return rc;
}

/* Keeps the quarantine within BDR_QUARANTINE_MAX_TREES trees and
 * BDR_QUARANTINE_MAX_BYTES (the newest tree always stays, whatever its
 * size): older trees are removed, each with a notice, and lib->qstat
 * says what is left. Also finishes removals that an older bdr left
 * there (.removing.P.TIME). */
static int quarantine_trim(struct bdr_library *lib)
{
	char dir[PATH_MAX], path[PATH_MAX], trashed[PATH_MAX];
	struct qentry *v = NULL;
	size_t n = 0;
	struct dirent *de;
	DIR *d;
	int rc = bdr_fs_path(dir, sizeof(dir), "%s/quarantine", lib->dir);

	memset(&lib->qstat, 0, sizeof(lib->qstat));
	if (rc == 0)
		rc = quarantine_list(dir, &v, &n);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < n; i++) {
		bool keep = i == 0 || (lib->qstat.trees < BDR_QUARANTINE_MAX_TREES &&
				       lib->qstat.bytes + v[i].bytes <= BDR_QUARANTINE_MAX_BYTES);

		if (keep) {
			lib->qstat.trees++;
			lib->qstat.bytes += v[i].bytes;
			continue;
		}
		if (bdr_fs_path(path, sizeof(path), "%s/%s", dir, v[i].name) < 0 ||
		    trash_move(lib, path, "quarantine", trashed, sizeof(trashed)) < 0)
			continue;
		bdr_fs_rmrf(trashed);
		notice(lib, "quarantine over its bound (%u trees, %llu bytes): removed the oldest, %s "
		       "(%" PRIu64 " bytes)", BDR_QUARANTINE_MAX_TREES,
		       (unsigned long long)BDR_QUARANTINE_MAX_BYTES, path, v[i].bytes);
	}
	free(v);
	/* Removals of whole packages by an older bdr went through here. */
	if ((d = opendir(dir))) {
		while ((de = readdir(d)))
			if (!strncmp(de->d_name, ".removing.", 10) &&
			    bdr_fs_path(path, sizeof(path), "%s/%s", dir, de->d_name) == 0)
				bdr_fs_rmrf(path);
		closedir(d);
	}
	return 0;
}

/* Every package named on disk or in the database. */
static int reconcile(struct bdr_library *lib, struct bdr_diag *d)
{
	char path[PATH_MAX], **names;
	struct dirent *de;
	size_t n;
	DIR *dir;
	int rc = bdr_db_packages(lib->db, &names, &n);

	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = reconcile_package(lib, names[i], d);
	bdr_db_strv_free(names, n);
	if (rc == 0)
		rc = bdr_fs_path(path, sizeof(path), "%s/packages", lib->dir);
	if (rc < 0 || !(dir = opendir(path)))
		return rc < 0 ? rc : -errno;
	while (rc == 0 && (de = readdir(dir)))
		if (bdr_manifest_check_package(de->d_name, NULL) == 0)
			rc = reconcile_package(lib, de->d_name, d);
	closedir(dir);
	if (rc < 0)
		return bdr_diag_set(d, rc, "library %s: reconciling with the database: %s",
				    lib->dir, d && d->msg[0] ? d->msg : bdr_strerror(rc));
	drop_obsolete_partials(lib);
	return quarantine_trim(lib);
}

static int open_db(struct bdr_library *lib, struct bdr_diag *d)
{
	int rc = bdr_db_open(&lib->db, lib->dbpath, d);

	if (rc == -BDR_ECORRUPT) {
		/* A cache: throw it away and rebuild it from the manifests. */
		rc = bdr_db_remove_files(lib->dbpath);
		if (rc == 0)
			rc = bdr_db_open(&lib->db, lib->dbpath, d);
	}
	return rc;
}

int bdr_library_reindex(struct bdr_library *lib, struct bdr_diag *d)
{
	int rc;

	bdr_db_close(lib->db);
	lib->db = NULL;
	rc = bdr_db_remove_files(lib->dbpath);
	if (rc == 0)
		rc = bdr_db_open(&lib->db, lib->dbpath, d);
	return rc < 0 ? rc : reconcile(lib, d);
}

static int make_dirs(struct bdr_library *lib, struct bdr_diag *d)
{
	char path[PATH_MAX];
	static const char *const sub[] = { "packages", "partial", "quarantine", "staging", "trash" };
	int rc;

	for (size_t i = 0; i < sizeof(sub) / sizeof(sub[0]); i++) {
		rc = bdr_fs_path(path, sizeof(path), "%s/%s", lib->dir, sub[i]);
		if (rc == 0)
			rc = bdr_fs_mkdir_p(path, 0755);
		/* Leftover staging from a crash is never a complete version;
		 * trash is what a crash kept from being removed. */
		if (rc == 0 && (!strcmp(sub[i], "staging") || !strcmp(sub[i], "trash")))
			rc = bdr_fs_clear_dir(path);
		if (rc < 0)
			return bdr_diag_set(d, rc, "library %s: %s: %s", lib->dir, path, bdr_strerror(rc));
	}
	return bdr_fs_path(lib->dbpath, sizeof(lib->dbpath), "%s/bdr.db", lib->dir);
}

int bdr_library_open(struct bdr_library **out, const struct bdr_library_opts *o, struct bdr_diag *d)
{
	struct bdr_library *lib = calloc(1, sizeof(*lib));
	int rc = -ENOMEM;

	*out = NULL;
	/* Idempotent; without it BLAKE2b falls back to its slow reference code. */
	if (sodium_init() < 0)
		rc = -ENOSYS;
	if (rc == -ENOSYS || !lib || !(lib->dir = strdup(o->dir)))
		goto fail;
	lib->keep = o->keep_versions ? o->keep_versions : BDR_KEEP_VERSIONS_DEFAULT;
	lib->notice = o->notice;
	lib->notice_arg = o->notice_arg;
	lib->chunking = o->chunking;
	if (!lib->chunking.avg_size)
		bdr_chunker_params_default(&lib->chunking, BDR_CHUNK_AVG_DEFAULT);
	if ((rc = bdr_chunker_params_check(&lib->chunking, d)) < 0 ||
	    (rc = make_dirs(lib, d)) < 0 || (rc = open_db(lib, d)) < 0 ||
	    (rc = reconcile(lib, d)) < 0)
		goto fail;
	*out = lib;
	return 0;
fail:
	bdr_library_close(lib);
	return rc;
}

void bdr_library_close(struct bdr_library *lib)
{
	if (!lib)
		return;
	bdr_db_close(lib->db);
	free(lib->dir);
	free(lib);
}

/* DIR/removed/P holds the highest version number a removed package had,
 * so its numbers are never given to other content: a site the removal
 * did not reach yet must never take a new version N for the old N. */
static int tombstone_read(const struct bdr_library *lib, const char *package, uint64_t *v)
{
	char path[PATH_MAX], buf[32] = { 0 };
	int fd, rc = bdr_fs_path(path, sizeof(path), "%s/removed/%s", lib->dir, package);
	ssize_t n;

	*v = 0;
	if (rc < 0 || (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return rc < 0 ? rc : errno == ENOENT ? 0 : -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0 || parse_version(strtok(buf, "\n") ? buf : "", v) < 0)
		return -BDR_ECORRUPT;
	return 0;
}

static int tombstone_write(const struct bdr_library *lib, const char *package, uint64_t v)
{
	char dir[PATH_MAX], tmp[PATH_MAX], path[PATH_MAX], text[32];
	int rc = bdr_fs_path(dir, sizeof(dir), "%s/removed", lib->dir);
	int n = snprintf(text, sizeof(text), "%" PRIu64 "\n", v);

	if (rc == 0)
		rc = bdr_fs_path(tmp, sizeof(tmp), "%s/%s.tmp", dir, package);
	if (rc == 0)
		rc = bdr_fs_path(path, sizeof(path), "%s/%s", dir, package);
	if (rc == 0)
		rc = bdr_fs_mkdir_p(dir, 0755);
	if (rc < 0)
		return rc;
	unlink(tmp);
	if ((rc = bdr_fs_write_file(AT_FDCWD, tmp, text, (size_t)n, 0644)) < 0)
		return rc;
	return rename(tmp, path) < 0 ? -errno : bdr_fs_fsync_dir(dir);
}

int bdr_library_next_version(struct bdr_library *lib, const char *package, uint64_t *next)
{
	uint64_t latest = 0, dead;
	int rc = bdr_library_latest(lib, package, &latest);

	if (rc < 0 && rc != -BDR_ENOTFOUND)
		return rc;
	if ((rc = tombstone_read(lib, package, &dead)) < 0)
		return rc;
	latest = latest > dead ? latest : dead;
	/* Past BDR_VERSION_MAX: stage_begin refuses it, saying why. */
	*next = latest >= BDR_VERSION_MAX ? BDR_VERSION_MAX + 1 : latest + 1;
	return 0;
}

/* The directory goes first, renamed into trash in one step: a crash after it
 * leaves database rows that the next open drops (reconcile: versions not
 * on disk), never a half-deleted version that could be served. */
int bdr_library_remove(struct bdr_library *lib, const char *package, struct bdr_diag *d)
{
	char from[PATH_MAX], to[PATH_MAX];
	uint64_t *v = NULL, next;
	size_t n = 0;
	int rc = bdr_manifest_check_package(package, d);

	if (rc == 0)
		rc = pkg_path(lib, from, sizeof(from), package);
	if (rc == 0)
		rc = bdr_fs_path(to, sizeof(to), "%s/trash/%s.XXXXXX", lib->dir, package);
	if (rc < 0)
		return rc;
	if (access(from, F_OK) < 0)
		return bdr_diag_set(d, -BDR_ENOTFOUND, "no package '%s'", package);
	if ((rc = bdr_library_next_version(lib, package, &next)) < 0 ||
	    (rc = tombstone_write(lib, package, next - 1)) < 0)
		return bdr_diag_set(d, rc, "package '%s': recording its last version: %s", package,
				    bdr_strerror(rc));
	if ((rc = trash_move(lib, from, package, to, sizeof(to))) < 0)
		return rc == -ENOENT ? bdr_diag_set(d, -BDR_ENOTFOUND, "no package '%s'", package)
				     : bdr_diag_set(d, rc, "moving %s aside: %s", from, bdr_strerror(rc));
	rc = bdr_db_versions(lib->db, package, &v, &n);
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = bdr_db_version_remove(lib->db, package, v[i]);
	free(v);
	if (rc == 0)
		rc = bdr_db_qc_prune(lib->db, package, 0);
	if (rc < 0)
		return bdr_diag_set(d, rc, "package '%s': %s", package, bdr_db_errmsg(lib->db));
	bdr_fs_rmrf(to);
	return 0;
}

int bdr_library_latest(struct bdr_library *lib, const char *package, uint64_t *version)
{
	uint64_t *v;
	size_t n;
	int rc = bdr_db_versions(lib->db, package, &v, &n);

	if (rc < 0)
		return rc;
	if (n == 0)
		rc = -BDR_ENOTFOUND;
	else
		*version = v[n - 1];
	free(v);
	return rc;
}

int bdr_library_stage_begin(struct bdr_library *lib, const char *package, uint64_t version,
			    struct bdr_stage *s, struct bdr_diag *d)
{
	int rc = bdr_manifest_check_package(package, d);

	memset(s, 0, sizeof(*s));
	s->tree_fd = -1;
	if (rc < 0)
		return rc;
	/* Before anything is written: the index could not take it, and the
	 * tree would stay behind, never served. */
	if (version == 0 || version > BDR_VERSION_MAX)
		return bdr_diag_set(d, version ? -BDR_ELIMIT : -EINVAL,
				    "package '%s': version %" PRIu64 " is outside 1..%" PRIu64
				    ", the version numbers a library holds", package, version,
				    BDR_VERSION_MAX);
	snprintf(s->package, sizeof(s->package), "%s", package);
	s->version = version;
	rc = bdr_fs_path(s->dir, sizeof(s->dir), "%s/staging/%s.%" PRIu64 ".XXXXXX", lib->dir,
			 package, version);
	if (rc == 0 && !mkdtemp(s->dir))
		rc = -errno;
	if (rc == 0)
		rc = bdr_fs_path(s->tree, sizeof(s->tree), "%s/tree", s->dir);
	if (rc == 0 && mkdir(s->tree, 0755) < 0)
		rc = -errno;
	if (rc == 0 && (s->tree_fd = open(s->tree, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		rc = -errno;
	if (rc < 0) {
		bdr_library_stage_abort(lib, s);
		return bdr_diag_set(d, rc, "package '%s': cannot create staging: %s", package,
				    bdr_strerror(rc));
	}
	return 0;
}

void bdr_library_stage_abort(struct bdr_library *lib, struct bdr_stage *s)
{
	(void)lib;
	if (s->tree_fd >= 0)
		close(s->tree_fd);
	s->tree_fd = -1;
	if (s->dir[0] && !strstr(s->dir, "XXXXXX"))
		bdr_fs_rmrf(s->dir);
	s->dir[0] = '\0';
}

/* Makes the stage durable, then moves it into place with one rename. */
static int stage_install(struct bdr_library *lib, struct bdr_stage *s, const uint8_t *mbuf,
			 size_t mlen, char *dest, size_t destsize)
{
	char pkgdir[PATH_MAX];
	int dfd, rc;

	dfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	rc = bdr_fs_write_file(dfd, "manifest", mbuf, mlen, 0644);
	/* One syncfs flushes every file of the tree: cheaper than an fsync per
	 * file, and the rename below must not reach the disk before them. */
	if (rc == 0 && syncfs(dfd) < 0)
		rc = -errno;
	close(dfd);
	if (rc == 0)
		rc = pkg_path(lib, pkgdir, sizeof(pkgdir), s->package);
	if (rc == 0)
		rc = bdr_fs_mkdir_p(pkgdir, 0755);
	if (rc == 0)
		rc = version_path(lib, dest, destsize, s->package, s->version);
	if (rc == 0 && rename(s->dir, dest) < 0)
		rc = errno == ENOTEMPTY ? -EEXIST : -errno;
	if (rc == 0)
		rc = bdr_fs_fsync_dir(pkgdir);
	return rc;
}

int bdr_library_stage_commit(struct bdr_library *lib, struct bdr_stage *s,
			     const struct bdr_manifest *m, const uint8_t *mbuf, size_t mlen,
			     struct bdr_diag *d)
{
	char dest[PATH_MAX];
	int rc;

	close(s->tree_fd);
	s->tree_fd = -1;
	rc = stage_install(lib, s, mbuf, mlen, dest, sizeof(dest));
	if (rc < 0) {
		bdr_library_stage_abort(lib, s);
		return bdr_diag_set(d, rc, "package '%s' version %" PRIu64 ": cannot activate: %s",
				    s->package, s->version, bdr_strerror(rc));
	}
	s->dir[0] = '\0';
	/* From here the version is on disk and complete; a failure below only
	 * leaves the index behind, which the next open reconciles. */
	rc = bdr_db_version_add(lib->db, m);
	if (rc == 0)
		rc = apply_retention(lib, s->package);
	if (rc < 0)
		return bdr_diag_set(d, rc, "package '%s' version %" PRIu64 ": stored, but indexing failed: %s",
				    s->package, s->version, bdr_strerror(rc));
	return 0;
}

int bdr_library_stage_dirs(struct bdr_stage *s, const struct bdr_manifest *m, struct bdr_diag *d)
{
	for (uint32_t i = 0; i < m->nentries; i++) {
		const struct bdr_entry *e = &m->entries[i];
		int rc = 0;

		/* Sorted order puts every directory before its contents; it stays
		 * writable until stage_finish_meta gives it its mode. */
		if (e->type == BDR_ENTRY_DIR && mkdirat(s->tree_fd, e->path, 0700) < 0)
			rc = -errno;
		else if (e->type == BDR_ENTRY_SYMLINK && symlinkat(e->target, s->tree_fd, e->path) < 0)
			rc = -errno;
		if (rc < 0)
			return bdr_diag_set(d, rc, "entry '%s': %s", e->path, bdr_strerror(rc));
	}
	return 0;
}

static int set_meta(int dirfd, const struct bdr_entry *e)
{
	struct timespec ts[2] = {
		{ .tv_nsec = UTIME_OMIT },
		{ .tv_sec = e->mtime_ns / 1000000000, .tv_nsec = e->mtime_ns % 1000000000 },
	};

	if (ts[1].tv_nsec < 0)
		ts[1].tv_sec -= 1, ts[1].tv_nsec += 1000000000;
	if (e->type != BDR_ENTRY_SYMLINK && fchmodat(dirfd, e->path, e->mode, 0) < 0)
		return -errno;
	if (utimensat(dirfd, e->path, ts, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	return 0;
}

int bdr_library_stage_finish_meta(struct bdr_stage *s, const struct bdr_manifest *m, struct bdr_diag *d)
{
	/* Backwards, so a directory's mtime is set after its last child. */
	for (uint32_t i = m->nentries; i-- > 0;) {
		int rc = set_meta(s->tree_fd, &m->entries[i]);
		if (rc < 0)
			return bdr_diag_set(d, rc, "entry '%s': setting mode and time: %s",
					    m->entries[i].path, bdr_strerror(rc));
	}
	return 0;
}

int bdr_library_link_held(struct bdr_library *lib, struct bdr_stage *s, const struct bdr_entry *e)
{
	struct bdr_db_loc loc;
	char path[PATH_MAX];
	int rc = bdr_db_file_find(lib->db, e->hash, e->mode, e->mtime_ns, &loc);

	if (rc < 0)
		return rc;
	if (loc.mode != e->mode || loc.mtime_ns != e->mtime_ns)
		return -BDR_ENOTFOUND;
	rc = bdr_library_loc_path(lib, &loc, path, sizeof(path));
	if (rc < 0)
		return rc;
	/* A stale index or a file system out of links: the caller copies. */
	if (linkat(AT_FDCWD, path, s->tree_fd, e->path, 0) < 0)
		return errno == ENOENT || errno == EMLINK ? -BDR_ENOTFOUND : -errno;
	return 0;
}
