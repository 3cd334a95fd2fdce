#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "bdr/chunker.h"
#include "bdr/error.h"
#include "fsutil.h"
#include "pack.h"

static void put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Reads one record at p->len: 1 if valid, 0 at the end or a bad tail. */
static int read_record(struct bdr_pack *p, uint8_t *buf, struct bdr_chunk_id *id, uint32_t *len)
{
	uint8_t hdr[BDR_PACK_HDR];
	struct bdr_chunk_id got;
	ssize_t n = pread(p->fd, hdr, sizeof(hdr), (off_t)p->len);

	if (n < 0)
		return -errno;
	if ((size_t)n < sizeof(hdr) || get_u32(hdr) != BDR_PACK_MAGIC)
		return 0;
	*len = get_u32(hdr + 4);
	memcpy(id->b, hdr + 8, sizeof(id->b));
	if (*len == 0 || *len > BDR_CHUNK_MAX_LIMIT ||
	    bdr_fs_pread_all(p->fd, buf, *len, (off_t)(p->len + BDR_PACK_HDR)) < 0)
		return 0;
	bdr_chunk_id(&got, buf, *len);
	return bdr_chunk_id_cmp(&got, id) == 0;
}

int bdr_pack_open(struct bdr_pack *p, const char *path, uint8_t *buf, bdr_pack_cb cb, void *arg)
{
	struct bdr_chunk_id id;
	uint32_t len = 0;
	int rc = bdr_fs_path(p->path, sizeof(p->path), "%s", path);

	p->len = 0;
	p->fd = -1;
	if (rc < 0)
		return rc;
	if ((p->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0)
		return -errno;
	if (flock(p->fd, LOCK_EX | LOCK_NB) < 0) {
		rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
		goto fail;
	}
	while ((rc = read_record(p, buf, &id, &len)) == 1) {
		if ((rc = cb(arg, &id, len, p->len + BDR_PACK_HDR)) < 0)
			goto fail;
		p->len += BDR_PACK_HDR + len;
	}
	/* Whatever follows the last good record was cut short by a crash. */
	if (rc == 0 && ftruncate(p->fd, (off_t)p->len) < 0)
		rc = -errno;
	if (rc < 0)
		goto fail;
	return 0;
fail:
	bdr_pack_close(p);
	return rc;
}

int bdr_pack_append(struct bdr_pack *p, const struct bdr_chunk_id *id, const uint8_t *data,
		    uint32_t len, uint64_t *data_off)
{
	uint8_t hdr[BDR_PACK_HDR];
	int rc;

	put_u32(hdr, BDR_PACK_MAGIC);
	put_u32(hdr + 4, len);
	memcpy(hdr + 8, id->b, sizeof(id->b));
	rc = bdr_fs_pwrite_all(p->fd, hdr, sizeof(hdr), (off_t)p->len);
	if (rc == 0)
		rc = bdr_fs_pwrite_all(p->fd, data, len, (off_t)(p->len + BDR_PACK_HDR));
	if (rc < 0) {
		/* Drop the half record now; if even that fails, the next open
		 * finds the tail invalid and truncates it. */
		if (ftruncate(p->fd, (off_t)p->len) < 0) {
			/* nothing more to do here */
		}
		return rc;
	}
	*data_off = p->len + BDR_PACK_HDR;
	p->len += BDR_PACK_HDR + len;
	return 0;
}

int bdr_pack_sync(struct bdr_pack *p)
{
	return fdatasync(p->fd) < 0 ? -errno : 0;
}

void bdr_pack_close(struct bdr_pack *p)
{
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
}

void bdr_pack_remove(struct bdr_pack *p)
{
	if (p->fd >= 0)
		unlink(p->path);
	bdr_pack_close(p);
}
