/* bdr-corebench index: the site database's chunk index as it grows.
 *
 * A library of millions of chunks cannot be imported in a test, so this
 * builds one through the same call an import makes (bdr_db_version_add),
 * from synthetic versions: files of random chunk ids (as XXH3-128 ids of
 * distinct data are), ~8 KiB each. It reports, per step of growth:
 *   - inserts per second over that step (sustained, not the warm start);
 *   - bytes the process wrote to disk so far (/proc/self/io, WAL and
 *     checkpoints included) against the database's size: the write
 *     amplification of building it;
 * and at the end lookups with location (bdr_db_chunk_find, what a rebuild
 * plan and a receiver's need table do) of present and absent ids, wall
 * time. Ids are regenerated from the seed, never held in memory: the
 * bench's own memory does not grow with the index. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bdr/db.h"
#include "bdr/error.h"
#include "bdr/manifest.h"
#include "index.h"

#define FILES_PER_VERSION 100
#define CHUNK_LEN 8192

struct index_opts {
	uint64_t chunks;  /* to insert in all */
	uint32_t per_file;
	uint64_t lookups; /* of each kind */
	uint64_t seed;
	const char *dir;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* The id of chunk number i of a seed: the same every time it is asked. */
static void chunk_id(uint64_t seed, uint64_t i, struct bdr_chunk_id *id)
{
	uint64_t x = seed ^ (i * 0xd1b54a32d192ed03ull), a = splitmix(&x), b = splitmix(&x);

	memcpy(id->b, &a, 8);
	memcpy(id->b + 8, &b, 8);
}

static uint64_t written_bytes(void)
{
	FILE *f = fopen("/proc/self/io", "re");
	char line[128];
	unsigned long long v = 0;

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "write_bytes: %llu", &v) == 1)
			break;
	if (f)
		fclose(f);
	return v;
}

static uint64_t file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* Version v: FILES_PER_VERSION files of per_file chunks, numbered from
 * *next. Paths and hashes only need to be distinct. */
static int make_version(struct bdr_manifest *m, uint64_t v, const struct index_opts *o,
			uint64_t *next)
{
	bdr_manifest_init(m);
	m->package = strdup("bench");
	m->site = strdup("bench");
	m->version = v;
	m->created_ns = 1;
	if (!m->package || !m->site)
		return -ENOMEM;
	for (uint32_t f = 0; f < FILES_PER_VERSION; f++) {
		struct bdr_entry *e = bdr_manifest_add(m);
		char path[32];

		if (!e)
			return -ENOMEM;
		snprintf(path, sizeof(path), "f%08" PRIu32, f);
		e->path = strdup(path);
		e->type = BDR_ENTRY_FILE;
		e->mode = 0644;
		e->nchunks = o->per_file;
		e->size = (uint64_t)o->per_file * CHUNK_LEN;
		e->chunks = calloc(o->per_file, sizeof(*e->chunks));
		if (!e->path || !e->chunks)
			return -ENOMEM;
		memcpy(e->hash, &v, sizeof(v));
		memcpy(e->hash + 8, &f, sizeof(f));
		for (uint32_t k = 0; k < o->per_file; k++) {
			chunk_id(o->seed, (*next)++, &e->chunks[k].id);
			e->chunks[k].len = CHUNK_LEN;
		}
	}
	bdr_manifest_sort(m);
	return 0;
}

static int build(struct bdr_db *db, const struct index_opts *o, const char *dbpath)
{
	uint64_t next = 0, step = o->chunks / 10 ? o->chunks / 10 : o->chunks, mark = step;
	uint64_t w0 = written_bytes(), at_mark = 0;
	double t0 = now_s(), tm = t0;
	int err = 0;

	printf("| chunks | inserts/s (this step) | written MiB | db MiB | written / db |\n"
	       "|--:|--:|--:|--:|--:|\n");
	for (uint64_t v = 1; err == 0 && next < o->chunks; v++) {
		struct bdr_manifest m;

		err = make_version(&m, v, o, &next);
		if (err == 0)
			err = bdr_db_version_add(db, &m);
		bdr_manifest_free(&m);
		if (err == 0 && (next >= mark || next >= o->chunks)) {
			double t = now_s();
			uint64_t w = written_bytes() - w0;
			uint64_t size = file_size(dbpath);

			printf("| %" PRIu64 " | %.0f | %.0f | %.0f | %.1f |\n", next,
			       (double)(next - at_mark) / (t - tm), (double)w / 1048576.0,
			       (double)size / 1048576.0, size ? (double)w / (double)size : 0.0);
			fflush(stdout);
			tm = t, at_mark = next, mark += step;
		}
	}
	if (err == 0)
		printf("\nbuilt %" PRIu64 " chunks in %.1f s: %.0f inserts/s overall\n", next,
		       now_s() - t0, (double)next / (now_s() - t0));
	return err;
}

static int lookups(struct bdr_db *db, const struct index_opts *o)
{
	struct bdr_db_loc loc;
	struct bdr_chunk_id id;
	uint64_t x = o->seed * 7 + 1, found = 0;
	double t;
	int err;

	if ((err = bdr_db_read_begin(db)) < 0)
		return err;
	t = now_s();
	for (uint64_t i = 0; i < o->lookups; i++) {
		chunk_id(o->seed, splitmix(&x) % o->chunks, &id);
		err = bdr_db_chunk_find(db, &id, CHUNK_LEN, &loc);
		if (err < 0)
			break;
		found++;
	}
	if (err == 0)
		printf("lookups, present: %.0f/s (%" PRIu64 " found of %" PRIu64 ")\n",
		       (double)o->lookups / (now_s() - t), found, o->lookups);
	t = now_s();
	for (uint64_t i = 0; err == 0 && i < o->lookups; i++) {
		chunk_id(o->seed ^ 0x5555, i, &id); /* another seed: never inserted */
		err = bdr_db_chunk_find(db, &id, CHUNK_LEN, &loc);
		err = err == -BDR_ENOTFOUND ? 0 : err < 0 ? err : -EEXIST;
	}
	if (err == 0)
		printf("lookups, absent: %.0f/s\n", (double)o->lookups / (now_s() - t));
	return bdr_db_end(db, err);
}

static int parse_args(int argc, char **argv, struct index_opts *o)
{
	for (int i = 1; i < argc; i++) {
		unsigned long long v = 0;
		char *end = NULL;

		if (i + 1 >= argc)
			return -EINVAL;
		if (strcmp(argv[i], "--dir") == 0) {
			o->dir = argv[++i];
			continue;
		}
		errno = 0;
		v = strtoull(argv[i + 1], &end, 10);
		if (errno || !end || *end || v == 0)
			return -EINVAL;
		if (!strcmp(argv[i], "--chunks"))
			o->chunks = v;
		else if (!strcmp(argv[i], "--per-file") && v <= BDR_MAX_FILE_CHUNKS)
			o->per_file = (uint32_t)v;
		else if (!strcmp(argv[i], "--lookups"))
			o->lookups = v;
		else if (!strcmp(argv[i], "--seed"))
			o->seed = v;
		else
			return -EINVAL;
		i++;
	}
	return o->dir ? 0 : -EINVAL;
}

int index_main(int argc, char **argv)
{
	struct index_opts o = { .chunks = 1000000, .per_file = 100, .lookups = 200000, .seed = 1 };
	struct bdr_diag dg = { "" };
	struct bdr_db *db = NULL;
	char path[4096];
	int err;

	if (parse_args(argc, argv, &o) < 0) {
		fprintf(stderr, "usage: bdr-corebench index --dir DIR [--chunks N] [--per-file N] "
				"[--lookups N] [--seed N]\n");
		return 2;
	}
	snprintf(path, sizeof(path), "%s/index-bench.db", o.dir);
	if (bdr_db_remove_files(path) < 0 || (err = bdr_db_open(&db, path, &dg)) < 0) {
		fprintf(stderr, "bdr-corebench: %s: %s\n", path, dg.msg[0] ? dg.msg : "cannot open");
		return 1;
	}
	printf("chunk index: %" PRIu64 " chunks of %u bytes, %u per file, %u files per version\n\n",
	       o.chunks, CHUNK_LEN, o.per_file, FILES_PER_VERSION);
	err = build(db, &o, path);
	if (err == 0)
		err = lookups(db, &o);
	if (err < 0)
		fprintf(stderr, "bdr-corebench: index: %s (%s)\n", bdr_strerror(err), bdr_db_errmsg(db));
	bdr_db_close(db);
	bdr_db_remove_files(path);
	return err < 0;
}
