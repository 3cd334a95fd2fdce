/* bundle create and bundle import (proto/bundle.md): a version written to
 * a file to carry to a site no link reaches, and such a file added there.
 * bdrd reads and writes the file: its path goes to it absolute. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

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

/* path with its directory made absolute and real (the file itself may
 * not exist yet); else prints why and returns the exit status. */
static int resolve_out(const char *path, char out[PATH_MAX])
{
	char dir[PATH_MAX], real[PATH_MAX];
	const char *slash = strrchr(path, '/'), *name = slash ? slash + 1 : path;

	if (!*name || !strcmp(name, ".") || !strcmp(name, "..")) {
		fprintf(stderr, "bdrctl: %s: not a file name\n", path);
		return BDR_EXIT_USAGE;
	}
	snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - path) + (slash == path) : 1,
		 slash ? path : ".");
	if (!realpath(dir, real)) {
		fprintf(stderr, "bdrctl: %s: %s\n", dir, strerror(errno));
		return BDR_EXIT_FAILED;
	}
	if ((size_t)snprintf(out, PATH_MAX, "%s/%s", strcmp(real, "/") ? real : "", name) >= PATH_MAX) {
		fprintf(stderr, "bdrctl: %s: name too long\n", path);
		return BDR_EXIT_FAILED;
	}
	return 0;
}

static int create(const struct ctl_args *a)
{
	uint64_t version = 0, base = 0;
	char file[PATH_MAX];
	int r;

	if (!a->out)
		return ctl_usage_error(a, "bundle create needs -o FILE");
	if ((r = ctl_parse_version(a, "--version", a->version, &version)) ||
	    (r = ctl_parse_version(a, "--base", a->base, &base)))
		return r;
	if (a->version && a->base && base >= version)
		return ctl_usage_error(a, "--base (%" PRIu64 ") must be older than --version (%" PRIu64 ")",
				       base, version);
	if ((r = resolve_out(a->out, file)))
		return r;
	return ctl_simple(a, json_pack("{s:s, s:s, s:s, s:I, s:I}", "cmd", "bundle_create",
				       "package", a->pos[1], "file", file, "version",
				       (json_int_t)version, "base", (json_int_t)base), show_created);
}

static int import(const struct ctl_args *a)
{
	char file[PATH_MAX];

	if (a->out || a->version || a->base)
		return ctl_usage_error(a, "bundle import takes no -o, --version or --base: the bundle "
				       "says what it holds");
	if (!realpath(a->pos[1], file)) {
		fprintf(stderr, "bdrctl: %s: %s\n", a->pos[1], strerror(errno));
		return BDR_EXIT_FAILED;
	}
	return ctl_simple(a, json_pack("{s:s, s:s}", "cmd", "bundle_import", "file", file),
			  show_imported);
}

int ctl_bundle(const struct ctl_args *a)
{
	if (!strcmp(a->pos[0], "create"))
		return create(a);
	if (!strcmp(a->pos[0], "import"))
		return import(a);
	return ctl_usage_error(a, "bundle: 'create' or 'import', not '%s'", a->pos[0]);
}
