/* Whose rights a file is read with. bdrd runs as root or as its own user;
 * a local client of the control socket may be someone else, and bdrd must
 * never read on its behalf what that client could not read itself. The
 * client opens the top of what it names and passes the descriptor; beneath
 * it, bdrd opens entries with its own rights and then checks each opened
 * one against the client's credentials with this module (on the open
 * descriptor, so a rename between the check and the read changes nothing). */
#ifndef BDR_ACCESS_H
#define BDR_ACCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* A local user's credentials, as the kernel reported them for its socket. */
struct bdr_cred {
	uid_t uid;
	gid_t gid;             /* primary group */
	const gid_t *groups;   /* supplementary groups, not owned */
	size_t ngroups;
};

#define BDR_ACCESS_R 4
#define BDR_ACCESS_W 2
#define BDR_ACCESS_X 1

/* 0 when a process with credentials c may do want (BDR_ACCESS_* bits) to
 * the file open at fd, by its mode bits and its POSIX access ACL (the
 * acl(5) algorithm: owner, named users, groups, other; the mask limits all
 * but owner and other); -EACCES when it may not; another -errno when the
 * file cannot be examined. uid 0 may do anything: the kernel would let
 * root read, and root's own client needs no fence. */
int bdr_access_check(int fd, const struct bdr_cred *c, int want);

#endif
