/* A client's rights redone on an open file: mode bits for owner, group
 * and other, supplementary groups, root, and POSIX access ACLs (named
 * users and groups under the mask). Files are given owners other than the
 * test's, so it needs root; it skips otherwise. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "bdr/access.h"
#include "testutil.h"

#define R BDR_ACCESS_R
#define W BDR_ACCESS_W
#define X BDR_ACCESS_X

static char dir[PATH_MAX], file[PATH_MAX];
static int fd;

static void setup(void)
{
	tu_mkdtemp(dir, "access");
	snprintf(file, sizeof(file), "%s/f", dir);
	tu_write(file, "x", 1);
	fd = open(file, O_RDONLY);
	cr_assert_geq(fd, 0);
}

static void teardown(void)
{
	close(fd);
	tu_rmrf(dir);
}

TestSuite(access, .init = setup, .fini = teardown);

static void owned(mode_t mode, uid_t uid, gid_t gid)
{
	if (geteuid() != 0)
		cr_skip_test("needs root to give files other owners");
	cr_assert_eq(fchown(fd, uid, gid), 0);
	cr_assert_eq(fchmod(fd, mode), 0);
}

static int check(uid_t uid, gid_t gid, const gid_t *groups, size_t n, int want)
{
	struct bdr_cred c = { .uid = uid, .gid = gid, .groups = groups, .ngroups = n };

	return bdr_access_check(fd, &c, want);
}

Test(access, mode_bits)
{
	gid_t g[] = { 7, 4321 };

	owned(0640, 1234, 4321);
	cr_assert_eq(check(1234, 1, NULL, 0, R | W), 0, "owner rw");
	cr_assert_eq(check(1234, 1, NULL, 0, X), -EACCES, "owner has no x");
	cr_assert_eq(check(999, 4321, NULL, 0, R), 0, "primary group r");
	cr_assert_eq(check(999, 4321, NULL, 0, W), -EACCES, "group has no w");
	cr_assert_eq(check(999, 1, g, 2, R), 0, "supplementary group r");
	cr_assert_eq(check(999, 1, g, 1, R), -EACCES, "other has nothing");
	cr_assert_eq(check(0, 0, NULL, 0, R | W | X), 0, "root may");
	/* The owner's bits apply to the owner even when other's say more. */
	owned(0047, 1234, 4321);
	cr_assert_eq(check(1234, 1, NULL, 0, R), -EACCES, "owner bits rule the owner");
	cr_assert_eq(check(999, 4321, g, 2, R), 0);
	cr_assert_eq(check(999, 1, NULL, 0, R | W | X), 0);
}

/* Sets the file's access ACL: n entries (tag, perm, id). */
static void set_acl(const uint32_t (*e)[3], size_t n)
{
	uint8_t buf[4 + 16 * 8];
	uint32_t version = 2;

	memcpy(buf, &version, 4);
	for (size_t i = 0; i < n; i++) {
		uint16_t tag = (uint16_t)e[i][0], perm = (uint16_t)e[i][1];
		memcpy(buf + 4 + i * 8, &tag, 2);
		memcpy(buf + 6 + i * 8, &perm, 2);
		memcpy(buf + 8 + i * 8, &e[i][2], 4);
	}
	if (fsetxattr(fd, "system.posix_acl_access", buf, 4 + n * 8, 0) < 0) {
		if (errno == ENOTSUP || errno == EOPNOTSUPP)
			cr_skip_test("no POSIX ACLs on this file system");
		cr_assert_fail("fsetxattr: %s", strerror(errno));
	}
}

Test(access, acl)
{
	/* user::rw- user:999:r-- user:777:--- group::--- group:55:r-x mask::r-- other::r-- */
	const uint32_t acl[][3] = { { 0x01, 6, (uint32_t)-1 }, { 0x02, 4, 999 }, { 0x02, 0, 777 },
				    { 0x04, 0, (uint32_t)-1 }, { 0x08, 5, 55 },
				    { 0x10, 4, (uint32_t)-1 }, { 0x20, 4, (uint32_t)-1 } };
	const uint32_t masked[][3] = { { 0x01, 6, (uint32_t)-1 }, { 0x02, 6, 999 },
				       { 0x04, 0, (uint32_t)-1 }, { 0x10, 0, (uint32_t)-1 },
				       { 0x20, 4, (uint32_t)-1 } };
	gid_t g55 = 55;

	owned(0644, 1234, 4321);
	set_acl(acl, sizeof(acl) / sizeof(acl[0]));
	cr_assert_eq(check(999, 1, NULL, 0, R), 0, "named user r");
	cr_assert_eq(check(777, 1, NULL, 0, R), -EACCES, "a named user entry beats other");
	cr_assert_eq(check(555, 1, NULL, 0, R), 0, "other r");
	cr_assert_eq(check(555, 4321, NULL, 0, R), -EACCES, "the owning group entry beats other");
	cr_assert_eq(check(555, 1, &g55, 1, R), 0, "named group r");
	cr_assert_eq(check(555, 1, &g55, 1, X), -EACCES, "the mask takes the group's x");
	cr_assert_eq(check(1234, 1, NULL, 0, R | W), 0, "owner");
	set_acl(masked, sizeof(masked) / sizeof(masked[0]));
	cr_assert_eq(check(999, 1, NULL, 0, R), -EACCES, "an empty mask takes the named user's r");
}
