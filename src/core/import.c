/* Import: a source directory into the next version of a package.
 *
 * The walk copies each regular file into the stage while it chunks and
 * hashes it (one read), so the library holds a stable snapshot to send from
 * even if the source changes later. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bdr/db.h"
#include "bdr/error.h"
#include "bdr/import.h"
#include "bdr/library.h"
#include "bdr/manifest.h"
#include "fsutil.h"
#include "workpool.h"

struct qc_rec {
	char *path; /* owned */
	struct bdr_db_qc qc;
};

struct import {
	struct bdr_library *lib;
	const struct bdr_import_req *req;
	struct bdr_import_stats *st;
	struct bdr_diag *d;
	struct bdr_manifest m;    /* owned: the version being built */
	struct bdr_manifest prev; /* owned: the previous version, if any */
	uint64_t prev_version;    /* 0: none */
	char prev_tree[PATH_MAX];
	struct bdr_stage stage;
	struct qc_rec *qc;        /* owned */
	size_t nqc, qccap;
	int64_t racy_after_ns;    /* files changed after this are not cached */
	int64_t racy_ns;          /* the window itself (0: none) */
	uint64_t next_version;    /* the number this import gives */
	struct bdr_workpool *pool;  /* owned: reads files while the walk goes on */
	struct read_job *jobs;      /* owned, in entry order */
	struct read_job **jobs_tail;
	atomic_bool read_failed;
};

/* Files handed to the pool and not yet read: each holds an open fd. */
#define READ_PENDING 8u

static int64_t ts_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

static struct bdr_db_qc qc_of(const struct stat *s, uint64_t version)
{
	return (struct bdr_db_qc){
		.size = (uint64_t)s->st_size, .mtime_ns = ts_ns(&s->st_mtim),
		.ctime_ns = ts_ns(&s->st_ctim), .ino = s->st_ino, .dev = s->st_dev,
		.version = version,
	};
}

static int qc_record(struct import *im, const char *path, const struct stat *s)
{
	if (ts_ns(&s->st_mtim) > im->racy_after_ns || ts_ns(&s->st_ctim) > im->racy_after_ns)
		return 0;
	if (im->nqc == im->qccap) {
		size_t cap = im->qccap ? im->qccap * 2 : 64;
		struct qc_rec *n = realloc(im->qc, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		im->qc = n, im->qccap = cap;
	}
	if (!(im->qc[im->nqc].path = strdup(path)))
		return -ENOMEM;
	im->qc[im->nqc++].qc = qc_of(s, im->stage.version);
	return 0;
}

/* Adds an entry for path with the metadata of s. */
static struct bdr_entry *add_entry(struct import *im, const char *path, uint8_t type,
				   const struct stat *s)
{
	struct bdr_entry *e = bdr_manifest_add(&im->m);

	if (!e || !(e->path = strdup(path)))
		return NULL;
	e->type = type;
	e->mode = type == BDR_ENTRY_SYMLINK ? 0777 : (s->st_mode & 07777);
	e->mtime_ns = ts_ns(&s->st_mtim);
	im->st->entries++;
	return e;
}

/* The quick check: a file whose size, times, inode and device are what the
 * cache recorded for the previous version is that version's file. With
 * BDR_QC_MTIME, so is a file whose size, mode and mtime are those of the
 * previous version's entry at the same path (rsync's rule): a tree
 * unpacked or copied afresh, with new inodes and ctimes, is not read
 * again. An mtime that was still "racy" when that version was made (see
 * racy_window_ns) does not count. */
static bool quick_match(struct import *im, const char *path, const struct stat *s,
			const struct bdr_entry **pe)
{
	struct bdr_db_qc qc, now = qc_of(s, im->prev_version);
	bool strict;

	if (!im->prev_version)
		return false;
	strict = bdr_db_qc_get(bdr_library_db(im->lib), im->req->package, path, &qc) == 0 &&
		 !memcmp(&qc, &now, sizeof(qc));
	if (!strict && (im->req->quick_check != BDR_QC_MTIME ||
			now.mtime_ns >= im->prev.created_ns - im->racy_ns))
		return false;
	*pe = bdr_manifest_find(&im->prev, path);
	return *pe && (*pe)->type == BDR_ENTRY_FILE && (*pe)->size == now.size &&
	       (*pe)->mode == (s->st_mode & 07777) && (*pe)->mtime_ns == now.mtime_ns;
}

static int take_quick(struct import *im, const char *path, const struct stat *s,
		      const struct bdr_entry *pe)
{
	char src[PATH_MAX];
	struct bdr_entry *e;
	int rc = bdr_fs_path(src, sizeof(src), "%s/%s", im->prev_tree, path);

	if (rc < 0)
		return rc;
	if (linkat(AT_FDCWD, src, im->stage.tree_fd, path, 0) < 0)
		return -errno;
	if (!(e = add_entry(im, path, BDR_ENTRY_FILE, s)))
		return -ENOMEM;
	e->size = pe->size;
	memcpy(e->hash, pe->hash, sizeof(e->hash));
	if (pe->nchunks) {
		if (!(e->chunks = malloc(pe->nchunks * sizeof(*e->chunks))))
			return -ENOMEM;
		memcpy(e->chunks, pe->chunks, pe->nchunks * sizeof(*e->chunks));
	}
	e->nchunks = pe->nchunks;
	im->st->files_quick++;
	return 0;
}

static int sink_write(void *arg, const uint8_t *buf, size_t len)
{
	return bdr_fs_write_all(*(int *)arg, buf, len);
}

static bool same_file_state(const struct stat *a, const struct stat *b)
{
	return a->st_size == b->st_size && ts_ns(&a->st_mtim) == ts_ns(&b->st_mtim) &&
	       ts_ns(&a->st_ctim) == ts_ns(&b->st_ctim) && a->st_ino == b->st_ino;
}

/* A file to read into the stage, chunk and hash: on a pool helper, or on
 * the walking thread when the queue is full. A job touches only its own
 * fields and the stage's tree fd; the results are applied to the manifest
 * in entry order once every job has run (apply_reads). */
struct read_job {
	struct read_job *next;          /* im->jobs, in entry order */
	const struct bdr_chunker_params *params;
	int tree_fd;                    /* the stage's, borrowed */
	atomic_bool *failed;            /* set by any failure: later jobs skip */
	uint32_t entry;
	const char *path;               /* the entry's, borrowed */
	int in;                         /* owned until the job ran */
	struct stat st;                 /* the file as read */
	struct bdr_scan_result res;     /* owned */
	uint64_t retries;
	int rc;                         /* 1: it kept changing */
};

/* One attempt. 1: the file changed while it was read. */
static int read_once(struct read_job *j)
{
	struct stat after;
	int out, rc;

	if (lseek(j->in, 0, SEEK_SET) < 0)
		return -errno;
	out = openat(j->tree_fd, j->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out < 0 || fstat(j->in, &j->st) < 0) {
		rc = -errno;
		goto out;
	}
	rc = bdr_scan_fd(j->in, j->params, BDR_MAX_FILE_CHUNKS, sink_write, &out, &j->res);
	if (rc == 0 && fstat(j->in, &after) < 0)
		rc = -errno;
	if (rc == 0 && (!same_file_state(&j->st, &after) || j->res.size != (uint64_t)after.st_size)) {
		bdr_scan_result_free(&j->res);
		rc = 1;
	}
out:
	if (out >= 0)
		close(out);
	return rc;
}

static void read_job_run(void *arg)
{
	struct read_job *j = arg;

	j->rc = -ECANCELED;
	for (int attempt = 0; !atomic_load(j->failed) && attempt <= BDR_IMPORT_RETRIES; attempt++) {
		j->retries += attempt > 0;
		if ((j->rc = read_once(j)) != 1)
			break;
	}
	if (j->rc)
		atomic_store(j->failed, true);
	close(j->in);
	j->in = -1;
}

/* Opens an entry where the walk stands, never following a symlink. On
 * another user's behalf (req->as), the opened file must be what fstatat saw
 * (s) and that user must be allowed want on it: checked on the descriptor,
 * so a rename in between cannot slip another file under the check. */
static int open_entry(struct import *im, int dfd, const char *name, const char *path,
		      const struct stat *s, int flags, int want)
{
	struct stat o;
	int fd = openat(dfd, name, flags | O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC), rc;

	if (fd < 0)
		return bdr_diag_set(im->d, -errno, "entry '%s': %s", path, strerror(errno));
	if (!im->req->as)
		return fd;
	if (fstat(fd, &o) < 0)
		rc = -errno;
	else if (o.st_dev != s->st_dev || o.st_ino != s->st_ino)
		rc = -BDR_ECHANGED;
	else
		rc = bdr_access_check(fd, im->req->as, want);
	if (rc == 0)
		return fd;
	close(fd);
	if (rc == -BDR_ECHANGED)
		return bdr_diag_set(im->d, rc, "entry '%s': replaced while being read", path);
	return bdr_diag_set(im->d, rc, "entry '%s': %s%s", path, strerror(-rc),
			    rc == -EACCES ? " (for the user who asked for the push)" : "");
}

/* Hands the file open at in (owned) to the pool; the entry is filled in by
 * apply_reads. in < 0: opened here. */
static int read_file(struct import *im, int dfd, const char *name, const char *path,
		     const struct stat *s, int in)
{
	struct read_job *j = calloc(1, sizeof(*j));
	struct bdr_entry *e;

	if (!j) {
		if (in >= 0)
			close(in);
		return -ENOMEM;
	}
	if (in < 0 && (in = open_entry(im, dfd, name, path, s, 0, BDR_ACCESS_R)) < 0) {
		free(j);
		return in;
	}
	j->in = in;
	if (!(e = add_entry(im, path, BDR_ENTRY_FILE, s))) {
		close(j->in);
		free(j);
		return -ENOMEM;
	}
	j->params = bdr_library_chunking(im->lib);
	j->tree_fd = im->stage.tree_fd;
	j->failed = &im->read_failed;
	j->entry = (uint32_t)(e - im->m.entries);
	j->path = e->path;
	*im->jobs_tail = j;
	im->jobs_tail = &j->next;
	if (!im->pool)
		im->pool = bdr_workpool_new(bdr_workpool_default_threads(), READ_PENDING);
	bdr_workpool_submit(im->pool, read_job_run, j);
	return 0;
}

/* Replaces the copy just written with a hardlink when the library already
 * holds this content with this mode and time (a moved or renamed file).
 * The link is made beside the tree and renamed over the copy, so the path
 * is never empty. Purely a saving of disk space: failures keep the copy. */
static void link_if_held(struct import *im, const struct bdr_entry *e)
{
	char src[PATH_MAX], tmp[PATH_MAX];
	struct bdr_db_loc loc;

	if (bdr_db_file_find(bdr_library_db(im->lib), e->hash, e->mode, e->mtime_ns, &loc) < 0 ||
	    loc.mode != e->mode || loc.mtime_ns != e->mtime_ns ||
	    bdr_library_loc_path(im->lib, &loc, src, sizeof(src)) < 0 ||
	    bdr_fs_path(tmp, sizeof(tmp), "%s/link.tmp", im->stage.dir) < 0)
		return;
	if (linkat(AT_FDCWD, src, AT_FDCWD, tmp, 0) == 0 &&
	    renameat(AT_FDCWD, tmp, im->stage.tree_fd, e->path) < 0)
		unlink(tmp);
}

/* Waits for every read, then fills in their entries in order; the first
 * failure in entry order is the one reported. */
static int apply_reads(struct import *im)
{
	int rc = 0;

	bdr_workpool_finish(im->pool);
	im->pool = NULL;
	for (struct read_job *j = im->jobs; j && rc == 0; j = j->next) {
		struct bdr_entry *e = &im->m.entries[j->entry];
		im->st->retries += j->retries;
		if (j->rc == 1)
			return bdr_diag_set(im->d, -BDR_ECHANGED, "entry '%s': changed while being read, %d times",
					    j->path, BDR_IMPORT_RETRIES + 1);
		if (j->rc == -ECANCELED)
			continue; /* a later job's failure stopped it; that one is reported */
		if (j->rc < 0)
			return bdr_diag_set(im->d, j->rc, "entry '%s': %s", j->path, bdr_strerror(j->rc));
		e->size = j->res.size;
		e->mode = j->st.st_mode & 07777;
		e->mtime_ns = ts_ns(&j->st.st_mtim);
		memcpy(e->hash, j->res.hash, sizeof(e->hash));
		e->chunks = j->res.chunks, e->nchunks = j->res.nchunks;
		j->res.chunks = NULL, j->res.nchunks = 0; /* the entry owns them now */
		im->st->files_read++;
		im->st->bytes_read += e->size;
		link_if_held(im, e);
		rc = qc_record(im, j->path, &j->st);
	}
	return rc;
}

/* Every job has run (apply_reads, or the pool finished here). */
static void free_reads(struct import *im)
{
	atomic_store(&im->read_failed, true); /* what is still queued is not read */
	bdr_workpool_finish(im->pool);
	im->pool = NULL;
	while (im->jobs) {
		struct read_job *j = im->jobs;
		im->jobs = j->next;
		if (j->in >= 0)
			close(j->in);
		bdr_scan_result_free(&j->res);
		free(j);
	}
	im->jobs_tail = &im->jobs;
}

static int import_file(struct import *im, int dfd, const char *name, const char *path,
		       const struct stat *s)
{
	const struct bdr_entry *pe;
	int in = -1;

	im->st->files++;
	im->st->bytes += (uint64_t)s->st_size;
	/* Another user's push takes no file it could not read, even one the
	 * quick check would take from the previous version unread. */
	if (im->req->as && (in = open_entry(im, dfd, name, path, s, 0, BDR_ACCESS_R)) < 0)
		return in;
	if (quick_match(im, path, s, &pe)) {
		if (take_quick(im, path, s, pe) == 0) {
			if (in >= 0)
				close(in);
			return qc_record(im, path, s);
		}
		/* A failed quick path may have left a link to the previous
		 * version's file behind: the copy must not write through it.
		 * Only then: an unlink per file would contend with the pool's
		 * creates for the directory's lock. */
		unlinkat(im->stage.tree_fd, path, 0);
	}
	return read_file(im, dfd, name, path, s, in);
}

static int import_symlink(struct import *im, int dfd, const char *name, const char *path,
			  const struct stat *s)
{
	char target[BDR_MAX_PATH + 1];
	struct bdr_entry *e;
	ssize_t n = readlinkat(dfd, name, target, sizeof(target));
	int rc;

	if (n < 0)
		return bdr_diag_set(im->d, -errno, "entry '%s': %s", path, strerror(errno));
	if ((size_t)n >= sizeof(target))
		return bdr_diag_set(im->d, -BDR_ELIMIT, "entry '%s': symlink target too long", path);
	target[n] = '\0';
	if ((rc = bdr_manifest_check_symlink(path, target, im->d)) < 0)
		return rc;
	if (symlinkat(target, im->stage.tree_fd, path) < 0)
		return bdr_diag_set(im->d, -errno, "entry '%s': %s", path, strerror(errno));
	if (!(e = add_entry(im, path, BDR_ENTRY_SYMLINK, s)) || !(e->target = strdup(target)))
		return -ENOMEM;
	e->size = (uint64_t)n;
	return 0;
}

static int walk(struct import *im, int dfd, const char *prefix);

static int import_dir(struct import *im, int dfd, const char *name, const char *path,
		      const struct stat *s)
{
	int sub, rc;

	if (!add_entry(im, path, BDR_ENTRY_DIR, s))
		return -ENOMEM;
	if (mkdirat(im->stage.tree_fd, path, 0700) < 0)
		return bdr_diag_set(im->d, -errno, "entry '%s': %s", path, strerror(errno));
	sub = open_entry(im, dfd, name, path, s, O_DIRECTORY, BDR_ACCESS_R | BDR_ACCESS_X);
	if (sub < 0)
		return sub;
	rc = walk(im, sub, path);
	close(sub);
	return rc;
}

static int import_one(struct import *im, int dfd, const char *name, const char *prefix)
{
	char path[BDR_MAX_PATH + 2];
	struct stat s;
	int rc;

	if (bdr_fs_path(path, sizeof(path), "%s%s%s", prefix, *prefix ? "/" : "", name) < 0 ||
	    strlen(path) > BDR_MAX_PATH)
		return bdr_diag_set(im->d, -BDR_ELIMIT, "entry '%s/%s': path too long", prefix, name);
	if ((rc = bdr_manifest_check_path(path, im->d)) < 0)
		return rc;
	if (fstatat(dfd, name, &s, AT_SYMLINK_NOFOLLOW) < 0)
		return bdr_diag_set(im->d, -errno, "entry '%s': %s", path, strerror(errno));
	if (S_ISREG(s.st_mode))
		return import_file(im, dfd, name, path, &s);
	if (S_ISDIR(s.st_mode))
		return import_dir(im, dfd, name, path, &s);
	if (S_ISLNK(s.st_mode))
		return import_symlink(im, dfd, name, path, &s);
	return bdr_diag_set(im->d, -BDR_EPATH,
			    "entry '%s': not a file, directory or symlink (devices, fifos and sockets are not packaged)",
			    path);
}

/* The walk and the reads' results, with every lookup (quick-check cache,
 * held files) in one read transaction: a lock per tree, not per file. */
static int scan_source(struct import *im, int src)
{
	struct bdr_db *db = bdr_library_db(im->lib);
	int end, rc = bdr_db_read_begin(db);

	if (rc < 0)
		return bdr_diag_set(im->d, rc, "database: %s", bdr_db_errmsg(db));
	if ((rc = walk(im, src, "")) == 0)
		rc = apply_reads(im);
	if ((end = bdr_db_end(db, rc)) < 0 && rc == 0)
		return bdr_diag_set(im->d, end, "database: %s", bdr_db_errmsg(db));
	return rc;
}

static int walk(struct import *im, int dfd, const char *prefix)
{
	int fd = dup(dfd), rc = 0;
	struct dirent *de;
	DIR *d;

	if (fd < 0 || !(d = fdopendir(fd))) {
		rc = -errno;
		if (fd >= 0)
			close(fd);
		return bdr_diag_set(im->d, rc, "directory '%s': %s", *prefix ? prefix : ".", strerror(-rc));
	}
	while (rc == 0 && (errno = 0, de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (im->m.nentries >= BDR_MAX_ENTRIES)
			rc = bdr_diag_set(im->d, -BDR_ELIMIT, "more than %u entries", BDR_MAX_ENTRIES);
		else
			rc = import_one(im, dfd, de->d_name, prefix);
	}
	if (rc == 0 && errno)
		rc = bdr_diag_set(im->d, -errno, "directory '%s': %s", prefix, strerror(errno));
	closedir(d);
	return rc;
}

static int load_previous(struct import *im)
{
	int rc = bdr_library_latest(im->lib, im->req->package, &im->prev_version);

	if (rc == -BDR_ENOTFOUND) {
		im->prev_version = 0;
		return 0;
	}
	if (rc == 0)
		rc = bdr_library_manifest_load(im->lib, im->req->package, im->prev_version, &im->prev, im->d);
	if (rc == 0)
		rc = bdr_library_tree_path(im->lib, im->req->package, im->prev_version, im->prev_tree,
					   sizeof(im->prev_tree));
	return rc;
}

/* The cache is only a hint, so it is written after the version is safe. */
static int save_quick_check(struct import *im, uint64_t version)
{
	struct bdr_db *db = bdr_library_db(im->lib);
	int rc = bdr_db_begin(db);

	/* The version the files now live in: the new one, or the one an
	 * unchanged tree turned out to be. */
	for (size_t i = 0; rc == 0 && i < im->nqc; i++) {
		im->qc[i].qc.version = version;
		rc = bdr_db_qc_put(db, im->req->package, im->qc[i].path, &im->qc[i].qc);
	}
	if (rc == 0)
		rc = bdr_db_qc_prune(db, im->req->package, version);
	if (rc == 0)
		return bdr_db_commit(db);
	bdr_db_rollback(db);
	return rc;
}

static int seal(struct import *im, uint64_t version)
{
	const struct bdr_import_req *req = im->req;
	struct timespec now;
	uint8_t *buf = NULL;
	size_t len;
	int rc = -ENOMEM;

	clock_gettime(CLOCK_REALTIME, &now);
	if (!(im->m.package = strdup(req->package)) || !(im->m.site = strdup(req->site)))
		return rc;
	im->m.version = version;
	im->m.created_ns = req->created_ns ? req->created_ns : ts_ns(&now);
	bdr_manifest_sort(&im->m);
	rc = bdr_manifest_encode(&im->m, req->key, &buf, &len, im->d);
	if (rc == 0)
		rc = bdr_library_stage_finish_meta(&im->stage, &im->m, im->d);
	if (rc == 0)
		rc = bdr_library_stage_commit(im->lib, &im->stage, &im->m, buf, len, im->d);
	free(buf);
	return rc;
}

static bool same_entry(const struct bdr_entry *a, const struct bdr_entry *b)
{
	if (strcmp(a->path, b->path) || a->type != b->type || a->mode != b->mode ||
	    a->mtime_ns != b->mtime_ns || a->size != b->size || a->nchunks != b->nchunks ||
	    memcmp(a->hash, b->hash, sizeof(a->hash)))
		return false;
	if ((a->target || b->target) && (!a->target || !b->target || strcmp(a->target, b->target)))
		return false;
	return !a->nchunks || !memcmp(a->chunks, b->chunks, a->nchunks * sizeof(*a->chunks));
}

/* The new tree is the previous version entry for entry: no new version. */
static bool unchanged(struct import *im)
{
	if (!im->prev_version || im->m.nentries != im->prev.nentries)
		return false;
	bdr_manifest_sort(&im->m);
	for (uint32_t i = 0; i < im->m.nentries; i++)
		if (!same_entry(&im->m.entries[i], &im->prev.entries[i]))
			return false;
	return true;
}

static void import_free(struct import *im)
{
	bdr_manifest_free(&im->m);
	bdr_manifest_free(&im->prev);
	for (size_t i = 0; i < im->nqc; i++)
		free(im->qc[i].path);
	free(im->qc);
}

/* The tree, on a descriptor of its own: one passed by a client shares its
 * offset with the client's, which readdir moves. */
static int open_source(const struct bdr_import_req *req, int *src, struct bdr_diag *d)
{
	const char *name = req->srcdir ? req->srcdir : "the directory passed";
	int rc = 0;

	if (req->srcdir)
		*src = open(req->srcdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	else
		*src = openat(req->srcdir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*src < 0)
		return bdr_diag_set(d, -errno, "source '%s': %s", name, strerror(errno));
	if (req->as && (rc = bdr_access_check(*src, req->as, BDR_ACCESS_R | BDR_ACCESS_X)) < 0)
		return bdr_diag_set(d, rc, "source '%s': %s", name, strerror(-rc));
	return 0;
}

int bdr_import(struct bdr_library *lib, const struct bdr_import_req *req, uint64_t *version,
	       struct bdr_import_stats *st, struct bdr_diag *d)
{
	struct bdr_import_stats scratch;
	struct import im = { .lib = lib, .req = req, .st = st ? st : &scratch, .d = d };
	int src = -1, rc;

	struct timespec now;

	memset(im.st, 0, sizeof(*im.st));
	im.stage.tree_fd = -1;
	im.jobs_tail = &im.jobs;
	clock_gettime(CLOCK_REALTIME, &now);
	im.racy_ns = req->racy_window_ns < 0 ? 0
		     : req->racy_window_ns ? req->racy_window_ns : BDR_IMPORT_RACY_NS;
	im.racy_after_ns = req->racy_window_ns < 0 ? INT64_MAX : ts_ns(&now) - im.racy_ns;
	bdr_manifest_init(&im.m);
	bdr_manifest_init(&im.prev);
	if ((rc = bdr_manifest_check_package(req->package, d)) < 0 ||
	    (rc = bdr_manifest_check_site(req->site, d)) < 0 ||
	    (rc = load_previous(&im)) < 0)
		goto out;
	if ((rc = open_source(req, &src, d)) < 0)
		goto out;
	if ((rc = bdr_library_next_version(lib, req->package, &im.next_version)) < 0) {
		rc = bdr_diag_set(d, rc, "package '%s': %s", req->package, bdr_strerror(rc));
		goto out;
	}
	if ((rc = bdr_library_stage_begin(lib, req->package, im.next_version, &im.stage, d)) < 0)
		goto out;
	if ((rc = scan_source(&im, src)) < 0)
		goto out;
	if (unchanged(&im)) {
		/* Pushing what the library holds already is no new version. */
		im.st->unchanged = true;
		*version = im.prev_version;
		save_quick_check(&im, *version);
		goto out;
	}
	if ((rc = seal(&im, im.next_version)) < 0)
		goto out;
	*version = im.next_version;
	/* The version is in; a cache failure only costs a re-read next time. */
	save_quick_check(&im, *version);
out:
	free_reads(&im); /* before the stage goes: jobs write into it */
	bdr_library_stage_abort(lib, &im.stage); /* a no-op once committed */
	if (src >= 0)
		close(src);
	import_free(&im);
	return rc;
}
