/* bundle create and bundle import (proto/bundle.md): a version written to
 * a file to carry to a site no link reaches, and such a file added there.
 * bdrctl opens the file with the user's own rights and passes the
 * descriptor: bdrd opens no path for a client. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl.h"

/* The result, with the file it was about as the user named it. */
static void show(const struct ctl_args *a, json_t *res, const char *file, void (*fn)(json_t *res))
{
	json_object_set_new(res, "file", json_string(file));
	if (a->json)
		ctl_print_json(res);
	else
		fn(res);
}

static void show_created(json_t *res)
{
	char b[16], raw[16], ver[16];
	uint64_t base = ctl_ju64(res, "base");

	printf("wrote %s: %s version %" PRIu64, ctl_jstr(res, "file", "?"),
	       ctl_jstr(res, "package", "?"), ctl_ju64(res, "version"));
	if (base)
		printf(" for a site holding version %" PRIu64, base);
	printf(", %s (%" PRIu64 " chunks, %s raw; the version holds %s)\n",
	       ctl_bytes(ctl_ju64(res, "bytes"), b), ctl_ju64(res, "chunks"),
	       ctl_bytes(ctl_ju64(res, "raw_bytes"), raw), ctl_bytes(ctl_ju64(res, "version_bytes"), ver));
}

static void show_imported(json_t *res)
{
	char raw[16], b[16];

	if (json_is_true(json_object_get(res, "held"))) {
		printf("%s version %" PRIu64 " from %s: already held here (or a later version)\n",
		       ctl_jstr(res, "package", "?"), ctl_ju64(res, "version"), ctl_jstr(res, "from", "?"));
		return;
	}
	printf("imported %s version %" PRIu64 " from %s: verified and activated (%" PRIu64
	       " chunks, %s, taken from a %s bundle)\n", ctl_jstr(res, "package", "?"),
	       ctl_ju64(res, "version"), ctl_jstr(res, "from", "?"), ctl_ju64(res, "chunks"),
	       ctl_bytes(ctl_ju64(res, "raw_bytes"), raw), ctl_bytes(ctl_ju64(res, "bytes"), b));
}

/* A new file beside path, for the bundle to be linked to path once whole:
 * no half bundle is ever seen at path. Prints why and returns -1. */
static int open_temp(const char *path, char tmp[PATH_MAX])
{
	int fd;

	if ((size_t)snprintf(tmp, PATH_MAX, "%s.XXXXXX", path) >= PATH_MAX) {
		fprintf(stderr, "bdrctl: %s: name too long\n", path);
		return -1;
	}
	if (faccessat(AT_FDCWD, path, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
		fprintf(stderr, "bdrctl: %s exists: a bundle is never written over a file\n", path);
		return -1;
	}
	if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
		fprintf(stderr, "bdrctl: %s: %s\n", path, strerror(errno));
		return -1;
	}
	/* A bundle is signed, not secret: readable as any file the user makes. */
	if (fchmod(fd, 0644) < 0) {
		fprintf(stderr, "bdrctl: %s: %s\n", tmp, strerror(errno));
		unlink(tmp);
		close(fd);
		return -1;
	}
	return fd;
}

/* The written temporary file becomes path, durably. */
static int put_in_place(const char *tmp, const char *path)
{
	char dir[PATH_MAX];
	char *slash;
	int dfd, r = 0;

	if (link(tmp, path) < 0) {
		fprintf(stderr, "bdrctl: %s: %s\n", path, strerror(errno));
		r = BDR_EXIT_FAILED;
	}
	unlink(tmp);
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (r == 0 && (dfd = open(slash ? (slash[slash == dir] = 0, dir) : ".",
				  O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return r;
}

static int create(const struct ctl_args *a)
{
	uint64_t version = 0, base = 0;
	char tmp[PATH_MAX];
	json_t *res;
	int fd, r;

	if (!a->out)
		return ctl_usage_error(a, "bundle create needs -o FILE");
	if ((r = ctl_parse_version(a, "--version", a->version, &version)) ||
	    (r = ctl_parse_version(a, "--base", a->base, &base)))
		return r;
	if (a->version && a->base && base >= version)
		return ctl_usage_error(a, "--base (%" PRIu64 ") must be older than --version (%" PRIu64 ")",
				       base, version);
	if ((fd = open_temp(a->out, tmp)) < 0)
		return BDR_EXIT_FAILED;
	r = ctl_call_fd(a, json_pack("{s:s, s:s, s:I, s:I}", "cmd", "bundle_create", "package",
				     a->pos[1], "version", (json_int_t)version, "base",
				     (json_int_t)base), fd, NULL, NULL, &res);
	close(fd);
	if (r) {
		unlink(tmp);
		return r;
	}
	if ((r = put_in_place(tmp, a->out)) == 0)
		show(a, res, a->out, show_created);
	json_decref(res);
	return r;
}

static int import(const struct ctl_args *a)
{
	json_t *res;
	int fd, r;

	if (a->out || a->version || a->base)
		return ctl_usage_error(a, "bundle import takes no -o, --version or --base: the bundle "
				       "says what it holds");
	if ((fd = ctl_open_input(a->pos[1], false)) < 0)
		return BDR_EXIT_FAILED;
	r = ctl_call_fd(a, json_pack("{s:s}", "cmd", "bundle_import"), fd, NULL, NULL, &res);
	close(fd);
	if (r)
		return r;
	show(a, res, a->pos[1], show_imported);
	json_decref(res);
	return 0;
}

int ctl_bundle(const struct ctl_args *a)
{
	if (!strcmp(a->pos[0], "create"))
		return create(a);
	if (!strcmp(a->pos[0], "import"))
		return import(a);
	return ctl_usage_error(a, "bundle: 'create' or 'import', not '%s'", a->pos[0]);
}
