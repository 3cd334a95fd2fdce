/* File-system helpers for the core: whole reads and writes that survive
 * EINTR and short counts, in-kernel copies, durable small-file writes and
 * recursive removal. Private to src/core. */
#ifndef BDR_FSUTIL_H
#define BDR_FSUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* snprintf into buf; -ENAMETOOLONG if it does not fit. */
int bdr_fs_path(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int bdr_fs_write_all(int fd, const void *buf, size_t len);
int bdr_fs_pwrite_all(int fd, const void *buf, size_t len, off_t off);
/* Reads exactly len bytes at off; -EIO on a short file. */
int bdr_fs_pread_all(int fd, void *buf, size_t len, off_t off);
/* Copies len bytes in the kernel (copy_file_range), falling back to
 * pread/pwrite where the file system cannot. */
int bdr_fs_copy_range(int in, off_t in_off, int out, off_t out_off, size_t len);
/* Reads a whole file of at most max bytes; *out malloc'd. -EFBIG beyond. */
int bdr_fs_read_file(int dirfd, const char *path, size_t max, uint8_t **out, size_t *len);
/* Writes path (relative to dirfd) with O_EXCL, fsyncs it. */
int bdr_fs_write_file(int dirfd, const char *path, const void *buf, size_t len, mode_t mode);
int bdr_fs_fsync_dir(const char *path);
int bdr_fs_mkdir_p(const char *path, mode_t mode);
/* rm -rf that does not follow symlinks and copes with read-only dirs.
 * ENOENT is success. */
int bdr_fs_rmrf(const char *path);
/* Empties a directory (keeps it). */
int bdr_fs_clear_dir(const char *path);

#endif
