/* Writes the manifest fuzzer's seed corpus into the directory argv[1]:
 * valid manifests of several shapes, plus a few correctly signed ones that
 * break one structural rule each, so the fuzzer starts next to the error
 * paths as well as the accepting path. Run at build time (tests/fuzz). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bdr/error.h"
#include "bdr/manifest.h"
#include "core/manifest_internal.h"
#include "fuzz_common.h"

static struct bdr_key key;

static void die(const char *what, int err)
{
	fprintf(stderr, "gen_manifest_seeds: %s: %s\n", what, bdr_strerror(err));
	exit(1);
}

static struct bdr_entry *add(struct bdr_manifest *m, const char *path, uint8_t type)
{
	struct bdr_entry *e = bdr_manifest_add(m);

	if (!e || !(e->path = strdup(path)))
		die(path, -ENOMEM);
	e->type = type;
	e->mode = type == BDR_ENTRY_FILE ? 0644 : 0755;
	e->mtime_ns = 1700000000000000000ll + (int64_t)strlen(path);
	return e;
}

static void add_file(struct bdr_manifest *m, const char *path, uint32_t n, uint32_t len)
{
	struct bdr_entry *e = add(m, path, BDR_ENTRY_FILE);

	memset(e->hash, (int)strlen(path), sizeof(e->hash));
	e->nchunks = n;
	e->chunks = n ? calloc(n, sizeof(*e->chunks)) : NULL;
	for (uint32_t k = 0; k < n; k++) {
		memset(e->chunks[k].id.b, (int)k + 1, BDR_CHUNK_ID_LEN);
		e->chunks[k].len = len;
		e->size += len;
	}
}

static void add_link(struct bdr_manifest *m, const char *path, const char *target)
{
	struct bdr_entry *e = add(m, path, BDR_ENTRY_SYMLINK);

	e->mode = 0777;
	e->target = strdup(target);
	e->size = strlen(target);
}

static void start(struct bdr_manifest *m)
{
	bdr_manifest_init(m);
	m->package = strdup("pkg");
	m->site = strdup("site-a");
	m->version = 1;
	m->created_ns = 1700000000000000000ll;
}

static void full(struct bdr_manifest *m)
{
	start(m);
	add(m, "bin", BDR_ENTRY_DIR);
	add_file(m, "bin/tool", 3, 4096);
	add_link(m, "bin/t", "tool");
	add(m, "lib", BDR_ENTRY_DIR);
	add_link(m, "lib/up", "../bin/tool");
	add_file(m, "lib/empty", 0, 0);
	add_file(m, "readme", 1, 10);
}

static void write_seed(const char *dir, const char *name, struct bdr_manifest *m, int checked)
{
	struct bdr_diag d = { { 0 } };
	char path[4096];
	uint8_t *buf;
	size_t len;
	FILE *f;
	int err;

	bdr_manifest_sort(m);
	err = checked ? bdr_manifest_encode(m, &key, &buf, &len, &d)
		      : bdr__manifest_encode_unchecked(m, &key, &buf, &len);
	if (err)
		die(d.msg[0] ? d.msg : name, err);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (!(f = fopen(path, "wb")) || fwrite(buf, 1, len, f) != len || fclose(f))
		die(path, -errno);
	free(buf);
	bdr_manifest_free(m);
}

int main(int argc, char **argv)
{
	struct bdr_manifest m;

	if (argc != 2) {
		fprintf(stderr, "usage: gen_manifest_seeds DIR\n");
		return 2;
	}
	if (mkdir(argv[1], 0755) < 0 && errno != EEXIST)
		die(argv[1], -errno);
	fuzz_fixed_key(&key);

	start(&m);
	write_seed(argv[1], "empty", &m, 1);
	full(&m);
	write_seed(argv[1], "full", &m, 1);
	start(&m);
	add(&m, "a", BDR_ENTRY_DIR);
	add(&m, "a/b", BDR_ENTRY_DIR);
	add(&m, "a/b/c", BDR_ENTRY_DIR);
	add_file(&m, "a/b/c/f", 2, 1);
	write_seed(argv[1], "nested", &m, 1);

	full(&m);
	add_file(&m, "readme", 0, 0);
	write_seed(argv[1], "bad-dup", &m, 0);
	full(&m);
	add_file(&m, "nodir/f", 0, 0);
	write_seed(argv[1], "bad-parent", &m, 0);
	full(&m);
	add_link(&m, "lib/esc", "../../x");
	write_seed(argv[1], "bad-symlink", &m, 0);
	full(&m);
	m.entries[1].size++;
	write_seed(argv[1], "bad-size", &m, 0);
	return 0;
}
