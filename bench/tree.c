/* Trees: the bit-exact check of a destination against v2 (every entry's
 * type, permission bits, bytes and symlink target, both ways: nothing
 * missing, nothing extra), v2's size, and removal of a run's directories.
 * Times and owners are not compared: bdr does not promise them. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"

#define CMP_BUF (256 * 1024)
#define CMP_SHOWN 5 /* differences printed; the rest are counted */

struct cmp {
	const char *label;
	char a[PATH_MAX], b[PATH_MAX]; /* want, got: extended in place */
	size_t root;                   /* strlen of want's root */
	char *buf[2];                  /* owned, CMP_BUF each */
	int ndiff;
};

static void differ(struct cmp *c, const char *what)
{
	if (c->ndiff++ < CMP_SHOWN)
		fprintf(stderr, "bdr-bench: MISMATCH %s: %s: %s\n", c->label,
			c->a[c->root] ? c->a + c->root + 1 : ".", what);
}

static ssize_t read_full(int fd, char *buf, size_t len)
{
	size_t got = 0;
	ssize_t n;

	while (got < len && (n = read(fd, buf + got, len - got)) != 0) {
		if (n < 0)
			return -errno;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

static int cmp_bytes(struct cmp *c)
{
	int fa = open(c->a, O_RDONLY | O_CLOEXEC), fb = open(c->b, O_RDONLY | O_CLOEXEC);
	ssize_t na = 0, nb = 0;
	int err = fa < 0 || fb < 0 ? -errno : 0;

	while (!err) {
		na = read_full(fa, c->buf[0], CMP_BUF);
		nb = read_full(fb, c->buf[1], CMP_BUF);
		if (na < 0 || nb < 0)
			err = na < 0 ? (int)na : (int)nb;
		else if (na != nb || memcmp(c->buf[0], c->buf[1], (size_t)na))
			break;
		else if (na == 0)
			break;
	}
	if (!err && (na != nb || na > 0))
		differ(c, "content differs");
	if (fa >= 0)
		close(fa);
	if (fb >= 0)
		close(fb);
	return err;
}

static int cmp_links(struct cmp *c)
{
	char ta[PATH_MAX], tb[PATH_MAX];
	ssize_t na = readlink(c->a, ta, sizeof(ta)), nb = readlink(c->b, tb, sizeof(tb));

	if (na < 0 || nb < 0)
		return -errno;
	if (na != nb || memcmp(ta, tb, (size_t)na))
		differ(c, "symlink target differs");
	return 0;
}

static int cmp_dir(struct cmp *c);

static int cmp_entry(struct cmp *c)
{
	struct stat sa, sb;

	if (lstat(c->a, &sa) < 0 || lstat(c->b, &sb) < 0)
		return -errno;
	if ((sa.st_mode & S_IFMT) != (sb.st_mode & S_IFMT)) {
		differ(c, "type differs");
		return 0;
	}
	if (!S_ISLNK(sa.st_mode) && (sa.st_mode & 07777) != (sb.st_mode & 07777))
		differ(c, "mode differs");
	if (S_ISREG(sa.st_mode))
		return sa.st_size != sb.st_size ? (differ(c, "size differs"), 0) : cmp_bytes(c);
	if (S_ISLNK(sa.st_mode))
		return cmp_links(c);
	return S_ISDIR(sa.st_mode) ? cmp_dir(c) : 0;
}

static int not_dots(const struct dirent *d)
{
	return strcmp(d->d_name, ".") && strcmp(d->d_name, "..");
}

static int by_name(const struct dirent **x, const struct dirent **y)
{
	return strcmp((*x)->d_name, (*y)->d_name);
}

/* Appends /name to both paths for one entry, then restores them. */
static int cmp_child(struct cmp *c, const char *name)
{
	size_t la = strlen(c->a), lb = strlen(c->b);
	int err;

	if (snprintf(c->a + la, PATH_MAX - la, "/%s", name) >= (int)(PATH_MAX - la) ||
	    snprintf(c->b + lb, PATH_MAX - lb, "/%s", name) >= (int)(PATH_MAX - lb))
		err = -ENAMETOOLONG;
	else
		err = cmp_entry(c);
	c->a[la] = c->b[lb] = '\0';
	return err;
}

/* Both directories' names in one sorted merge: missing, extra, common. */
static int cmp_dir(struct cmp *c)
{
	struct dirent **na = NULL, **nb = NULL;
	int n1 = scandir(c->a, &na, not_dots, by_name), n2 = scandir(c->b, &nb, not_dots, by_name);
	int i = 0, j = 0, err = n1 < 0 || n2 < 0 ? (errno ? -errno : -EIO) : 0;

	while (!err && (i < n1 || j < n2)) {
		int d = i < n1 && j < n2 ? strcmp(na[i]->d_name, nb[j]->d_name) : i < n1 ? -1 : 1;
		const char *name = d <= 0 ? na[i]->d_name : nb[j]->d_name;
		size_t la = strlen(c->a);
		if (d == 0) {
			err = cmp_child(c, name);
		} else if (snprintf(c->a + la, PATH_MAX - la, "/%s", name) < (int)(PATH_MAX - la)) {
			differ(c, d < 0 ? "missing at the destination" : "extra at the destination");
			c->a[la] = '\0';
		}
		i += d <= 0;
		j += d >= 0;
	}
	for (int k = 0; k < n1; k++)
		free(na[k]);
	for (int k = 0; k < n2; k++)
		free(nb[k]);
	free(na);
	free(nb);
	return err;
}

int tree_compare(const char *want, const char *got, const char *label)
{
	struct cmp *c = calloc(1, sizeof(*c));
	int err = -ENOMEM;

	if (!c)
		return err;
	c->label = label;
	c->root = strlen(want);
	snprintf(c->a, sizeof(c->a), "%s", want);
	snprintf(c->b, sizeof(c->b), "%s", got);
	if ((c->buf[0] = malloc(CMP_BUF)) && (c->buf[1] = malloc(CMP_BUF)))
		err = cmp_dir(c);
	if (!err && c->ndiff > CMP_SHOWN)
		fprintf(stderr, "bdr-bench: MISMATCH %s: ... %d differences in all\n", label, c->ndiff);
	if (!err)
		err = c->ndiff;
	free(c->buf[0]);
	free(c->buf[1]);
	free(c);
	return err;
}

/* ---- size, removal: nftw, whose callbacks take no argument ---- */

static uint64_t size_bytes, size_files;
static char *size_buf;

static int size_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)ftw;
	if (type == FTW_DNR || type == FTW_NS)
		return -EACCES;
	if (type != FTW_F || !S_ISREG(st->st_mode))
		return 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;
	if (fd < 0)
		return -errno;
	while ((n = read(fd, size_buf, CMP_BUF)) > 0)
		;
	close(fd);
	size_bytes += (uint64_t)st->st_size;
	size_files++;
	return n < 0 ? -EIO : 0;
}

int tree_size(const char *dir, uint64_t *bytes, uint64_t *files)
{
	int err;

	if (!(size_buf = malloc(CMP_BUF)))
		return -ENOMEM;
	size_bytes = size_files = 0;
	err = nftw(dir, size_one, 32, FTW_PHYS);
	free(size_buf);
	size_buf = NULL;
	*bytes = size_bytes;
	*files = size_files;
	return err < 0 ? (err == -1 ? -errno : err) : 0;
}

/* A directory without write or search permission (a copied mode 0555)
 * keeps its entries from a non-root user: opened up first, on the way in. */
static int open_up(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)ftw;
	if (type == FTW_D && (st->st_mode & 0700) != 0700)
		chmod(path, 0700);
	return 0;
}

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	return remove(path) < 0 && errno != ENOENT ? -errno : 0;
}

int tree_remove(const char *dir)
{
	struct stat st;
	int err;

	if (!dir[0] || !strcmp(dir, "/"))
		return -EINVAL;
	if (lstat(dir, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	nftw(dir, open_up, 32, FTW_PHYS);
	err = nftw(dir, remove_one, 32, FTW_PHYS | FTW_DEPTH);
	return err < 0 ? (err == -1 ? -errno : err) : 0;
}
