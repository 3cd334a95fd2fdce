#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"

int bdr_fs_path(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= size)
		return -ENAMETOOLONG;
	return 0;
}

int bdr_fs_write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n, len -= n;
	}
	return 0;
}

int bdr_fs_pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n, len -= n, off += n;
	}
	return 0;
}

int bdr_fs_pread_all(int fd, void *buf, size_t len, off_t off)
{
	uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = pread(fd, p, len, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		p += n, len -= n, off += n;
	}
	return 0;
}

static int copy_by_hand(int in, off_t in_off, int out, off_t out_off, size_t len)
{
	uint8_t buf[64 * 1024];

	while (len > 0) {
		size_t n = len < sizeof(buf) ? len : sizeof(buf);
		int rc = bdr_fs_pread_all(in, buf, n, in_off);
		if (rc == 0)
			rc = bdr_fs_pwrite_all(out, buf, n, out_off);
		if (rc < 0)
			return rc;
		in_off += n, out_off += n, len -= n;
	}
	return 0;
}

int bdr_fs_copy_range(int in, off_t in_off, int out, off_t out_off, size_t len)
{
	while (len > 0) {
		loff_t io = in_off, oo = out_off;
		ssize_t n = copy_file_range(in, &io, out, &oo, len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL ||
			      errno == EOPNOTSUPP))
			return copy_by_hand(in, in_off, out, out_off, len);
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO; /* the source is shorter than the index says */
		in_off += n, out_off += n, len -= n;
	}
	return 0;
}

int bdr_fs_read_file(int dirfd, const char *path, size_t max, uint8_t **out, size_t *len)
{
	struct stat st;
	uint8_t *buf = NULL;
	int fd, rc;

	*out = NULL;
	*len = 0;
	fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto out;
	}
	rc = -EFBIG;
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > max)
		goto out;
	rc = -ENOMEM;
	buf = malloc(st.st_size ? st.st_size : 1);
	if (!buf)
		goto out;
	rc = bdr_fs_pread_all(fd, buf, st.st_size, 0);
	if (rc == 0) {
		*out = buf, *len = st.st_size;
		buf = NULL;
	}
out:
	free(buf);
	close(fd);
	return rc;
}

int bdr_fs_write_file(int dirfd, const char *path, const void *buf, size_t len, mode_t mode)
{
	int fd = openat(dirfd, path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	int rc;

	if (fd < 0)
		return -errno;
	rc = bdr_fs_write_all(fd, buf, len);
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

int bdr_fs_fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

int bdr_fs_mkdir_p(const char *path, mode_t mode)
{
	char tmp[PATH_MAX];
	int rc = bdr_fs_path(tmp, sizeof(tmp), "%s", path);

	if (rc < 0)
		return rc;
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* Removes everything inside the directory open as dfd (consumed). */
static int clear_at(int dfd)
{
	DIR *d = fdopendir(dfd);
	struct dirent *de;
	int rc = 0;

	if (!d) {
		close(dfd);
		return -errno;
	}
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (unlinkat(dfd, de->d_name, 0) == 0 || errno == ENOENT)
			continue;
		if (errno != EISDIR && errno != EPERM) {
			rc = -errno;
			break;
		}
		/* A directory: make it writable, empty it, remove it. */
		if (fchmodat(dfd, de->d_name, 0700, 0) < 0 && errno != EPERM) {
			/* open/unlink below will report it */
		}
		int sub = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0 || (rc = clear_at(sub)) < 0 || unlinkat(dfd, de->d_name, AT_REMOVEDIR) < 0) {
			rc = rc ? rc : -errno;
			break;
		}
	}
	closedir(d);
	return rc;
}

int bdr_fs_clear_dir(const char *path)
{
	int fd;

	if (chmod(path, 0700) < 0 && errno != ENOENT) {
		/* open below will report it */
	}
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	return clear_at(fd);
}

int bdr_fs_rmrf(const char *path)
{
	struct stat st;
	int rc;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlink(path) < 0 ? -errno : 0;
	rc = bdr_fs_clear_dir(path);
	if (rc == 0 && rmdir(path) < 0)
		rc = -errno;
	return rc;
}
