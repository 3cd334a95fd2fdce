/* bdr-coredemo: the content core end to end on one machine, with the wire
 * left out. A sending site imports v1 of a corpus and a receiving site
 * rebuilds it; the sender imports v2 and the receiver rebuilds v2 from
 * what it holds plus the chunks it lacks. Prints what would travel.
 *
 *   bdr-coredemo CORPUS_DIR WORK_DIR      (CORPUS_DIR holds v1/ and v2/) */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bdr/error.h"
#include "bdr/import.h"
#include "bdr/library.h"
#include "bdr/rebuild.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double mib(uint64_t b) { return (double)b / (1 << 20); }

static int die(const char *what, int rc, const struct bdr_diag *d)
{
	fprintf(stderr, "bdr-coredemo: %s: %s%s%s\n", what, bdr_strerror(rc), d->msg[0] ? ": " : "", d->msg);
	return 1;
}

static int import(struct bdr_library *lib, const struct bdr_key *k, const char *dir, uint64_t *v)
{
	struct bdr_import_req req = { .package = "demo", .srcdir = dir, .site = "central", .key = k };
	struct bdr_import_stats st;
	struct bdr_diag d = { { 0 } };
	double t = now_s();
	int rc = bdr_import(lib, &req, v, &st, &d);

	if (rc < 0)
		return die(dir, rc, &d);
	printf("central   imported %s as version %" PRIu64 ": %" PRIu64 " files, %.1f MiB; "
	       "%" PRIu64 " files read, %" PRIu64 " unchanged (quick check); %.2f s\n",
	       dir, *v, st.files, mib(st.bytes), st.files_read, st.files_quick, now_s() - t);
	return 0;
}

static int replicate(struct bdr_library *snd, struct bdr_library *rcv, const char *sdir, uint64_t v)
{
	char path[PATH_MAX];
	struct bdr_rebuild *rb;
	struct bdr_diag d = { { 0 } };
	uint64_t need, total = 0;
	uint8_t *mbuf = NULL;
	size_t mlen = 0;
	double t = now_s();
	FILE *f;
	int rc;

	snprintf(path, sizeof(path), "%s/packages/demo/%" PRIu64 "/manifest", sdir, v);
	if (!(f = fopen(path, "rb")) || fseek(f, 0, SEEK_END) || (mlen = (size_t)ftell(f)) == 0 ||
	    !(mbuf = malloc(mlen)) || fseek(f, 0, SEEK_SET) || fread(mbuf, 1, mlen, f) != mlen)
		return fprintf(stderr, "bdr-coredemo: cannot read %s\n", path), 1;
	fclose(f);
	if ((rc = bdr_rebuild_begin(rcv, mbuf, mlen, NULL, &rb, &d)) < 0 ||
	    (rc = bdr_rebuild_feed_from(rb, snd, &need, &d)) < 0)
		return free(mbuf), die("rebuild", rc, &d);
	for (uint32_t i = 0; i < bdr_rebuild_manifest(rb)->nentries; i++)
		total += bdr_rebuild_manifest(rb)->entries[i].size;
	rc = bdr_rebuild_finish(rb, &d);
	bdr_rebuild_free(rb);
	free(mbuf);
	if (rc < 0)
		return die("rebuild", rc, &d);
	printf("branch01  version %" PRIu64 " rebuilt, verified (BLAKE2b of every file) and activated in %.2f s:\n"
	       "          %.1f MiB in the version, %.3f MiB of chunks had to travel (%.2f%%), %.1f MiB saved\n"
	       "          manifest %zu bytes, signed by central\n",
	       v, now_s() - t, mib(total), mib(need), total ? 100.0 * need / total : 0.0,
	       mib(total - need), mlen);
	return 0;
}

int main(int argc, char **argv)
{
	char v1[PATH_MAX], v2[PATH_MAX], sdir[PATH_MAX], rdir[PATH_MAX];
	struct bdr_library *snd, *rcv;
	struct bdr_diag d = { { 0 } };
	struct bdr_key key;
	uint64_t v;
	int rc;

	if (argc != 3) {
		fprintf(stderr, "usage: bdr-coredemo CORPUS_DIR WORK_DIR\n");
		return 2;
	}
	if (sodium_init() < 0)
		return 1;
	snprintf(v1, sizeof(v1), "%s/v1", argv[1]);
	snprintf(v2, sizeof(v2), "%s/v2", argv[1]);
	snprintf(sdir, sizeof(sdir), "%s/central", argv[2]);
	snprintf(rdir, sizeof(rdir), "%s/branch01", argv[2]);
	bdr_key_generate(&key);
	struct bdr_library_opts so = { .dir = sdir }, ro = { .dir = rdir };
	if ((rc = bdr_library_open(&snd, &so, &d)) < 0 || (rc = bdr_library_open(&rcv, &ro, &d)) < 0)
		return die("library", rc, &d);
	rc = import(snd, &key, v1, &v) || replicate(snd, rcv, sdir, v) ||
	     import(snd, &key, v2, &v) || replicate(snd, rcv, sdir, v);
	if (rc == 0)
		printf("branch01  now serves %s/packages/demo/current/tree\n", rdir);
	bdr_library_close(snd);
	bdr_library_close(rcv);
	return rc;
}
