/* A client's rights on a file bdrd opened (include/bdr/access.h): the
 * kernel's DAC check redone for another user, from the file's mode and its
 * POSIX access ACL, read from the open descriptor. */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include "bdr/access.h"

/* The ACL's on-disk form in the system.posix_acl_access attribute (the
 * kernel's posix_acl_xattr.h): a 4-byte version, then 8-byte entries. */
#define ACL_XATTR_VERSION 2
#define ACL_USER_OBJ 0x01
#define ACL_USER 0x02
#define ACL_GROUP_OBJ 0x04
#define ACL_GROUP 0x08
#define ACL_MASK 0x10
#define ACL_OTHER 0x20
#define ACL_MAX_ENTRIES 256 /* more than any file system stores in one xattr */

struct acl_entry {
	uint16_t tag, perm;
	uint32_t id;
};

static bool in_groups(const struct bdr_cred *c, gid_t g)
{
	if (c->gid == g)
		return true;
	for (size_t i = 0; i < c->ngroups; i++)
		if (c->groups[i] == g)
			return true;
	return false;
}

static int by_mode(const struct stat *st, const struct bdr_cred *c, int want)
{
	unsigned bits = st->st_mode & 07;

	if (c->uid == st->st_uid)
		bits = (st->st_mode >> 6) & 07;
	else if (in_groups(c, st->st_gid))
		bits = (st->st_mode >> 3) & 07;
	return ((unsigned)want & ~bits) ? -EACCES : 0;
}

/* acl(5), "ACCESS CHECK ALGORITHM", over n entries at e. */
static int by_acl(const struct acl_entry *e, size_t n, const struct stat *st,
		  const struct bdr_cred *c, int want)
{
	unsigned mask = 07, other = 0, user = 0, groups = 0;
	bool named_user = false, group_match = false;

	for (size_t i = 0; i < n; i++)
		if (e[i].tag == ACL_MASK)
			mask = e[i].perm & 07;
	for (size_t i = 0; i < n; i++) {
		unsigned p = e[i].perm & 07;
		switch (e[i].tag) {
		case ACL_USER:
			if (e[i].id == c->uid)
				named_user = true, user = p;
			break;
		case ACL_GROUP_OBJ:
			if (in_groups(c, st->st_gid))
				group_match = true, groups |= p;
			break;
		case ACL_GROUP:
			if (in_groups(c, (gid_t)e[i].id))
				group_match = true, groups |= p;
			break;
		case ACL_OTHER:
			other = p;
			break;
		}
	}
	if (c->uid == st->st_uid)
		return by_mode(st, c, want); /* ACL_USER_OBJ is the owner's mode bits */
	if (named_user)
		return ((unsigned)want & ~(user & mask)) ? -EACCES : 0;
	/* A group entry that grants all of want must exist; the union of
	 * several matching entries only approximates "any one of them", so
	 * this refuses what the kernel might allow, never the reverse. */
	if (group_match) {
		for (size_t i = 0; i < n; i++) {
			unsigned p = e[i].perm & 07 & mask;
			bool match = (e[i].tag == ACL_GROUP_OBJ && in_groups(c, st->st_gid)) ||
				     (e[i].tag == ACL_GROUP && in_groups(c, (gid_t)e[i].id));
			if (match && !((unsigned)want & ~p))
				return 0;
		}
		return -EACCES;
	}
	return ((unsigned)want & ~other) ? -EACCES : 0;
}

int bdr_access_check(int fd, const struct bdr_cred *c, int want)
{
	uint8_t buf[4 + ACL_MAX_ENTRIES * 8];
	struct acl_entry e[ACL_MAX_ENTRIES];
	struct stat st;
	ssize_t len;
	size_t n;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (c->uid == 0)
		return 0;
	len = fgetxattr(fd, "system.posix_acl_access", buf, sizeof(buf));
	if (len < 0) {
		if (errno == ENODATA || errno == ENOTSUP || errno == EOPNOTSUPP)
			return by_mode(&st, c, want);
		return errno == ERANGE ? -EACCES : -errno; /* an ACL too large to judge */
	}
	if (len < 4 || (len - 4) % 8)
		return -EACCES;
	uint32_t version;
	memcpy(&version, buf, 4);
	if (version != ACL_XATTR_VERSION)
		return -EACCES;
	n = (size_t)(len - 4) / 8;
	for (size_t i = 0; i < n; i++) {
		memcpy(&e[i].tag, buf + 4 + i * 8, 2);
		memcpy(&e[i].perm, buf + 6 + i * 8, 2);
		memcpy(&e[i].id, buf + 8 + i * 8, 4);
	}
	return by_acl(e, n, &st, c, want);
}
