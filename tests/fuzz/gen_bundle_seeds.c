/* Writes the bundle fuzzer's seed corpus into the directory argv[1]: valid
 * bundles signed with the fixed key of fuzz_common.h (a whole version, a
 * part of one against a base, one with no chunks), made with the
 * low-level writer from a manifest built here. Run at build time. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bdr/bundle.h"
#include "bdr/error.h"
#include "fuzz_common.h"

static void die(const char *what, int err) __attribute__((noreturn));
static void die(const char *what, int err)
{
	fprintf(stderr, "gen_bundle_seeds: %s: %s\n", what, bdr_strerror(err));
	exit(1);
}

static uint8_t content[2][3000];

static void add_file(struct bdr_manifest *m, const char *path, const uint8_t *p, uint32_t len)
{
	struct bdr_entry *e = bdr_manifest_add(m);
	struct bdr_filehash h;

	if (!e || !(e->path = strdup(path)) || !(e->chunks = calloc(2, sizeof(*e->chunks))))
		die("out of memory", -ENOMEM);
	e->type = BDR_ENTRY_FILE, e->mode = 0644, e->size = len, e->nchunks = 2;
	bdr_filehash_init(&h);
	bdr_filehash_update(&h, p, len);
	bdr_filehash_final(&h, e->hash);
	for (uint32_t c = 0; c < 2; c++) {
		e->chunks[c].len = len / 2;
		bdr_chunk_id(&e->chunks[c].id, p + c * (len / 2), len / 2);
	}
}

static int ref_cmp(const void *a, const void *b)
{
	const struct bdr_chunk_ref *x = a, *y = b;
	int c = memcmp(x->id.b, y->id.b, sizeof(x->id.b));

	return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* One bundle of version, against base, carrying the chunks whose bit is
 * set in mask (in the order of the manifest's chunks). */
static void write_seed(const char *dir, const char *name, uint64_t version, uint64_t base,
		       unsigned mask, const struct bdr_key *k)
{
	struct bdr_manifest m;
	struct bdr_chunk_ref refs[4];
	const uint8_t *raw[4];
	struct bdr_bundle_header h = { .version = version, .base = base, .created_ns = 1 };
	struct bdr_bundle_writer *w;
	char path[4096];
	uint8_t *mbuf;
	size_t mlen;
	uint32_t n = 0;
	int fd, rc;

	bdr_manifest_init(&m);
	if (!(m.package = strdup("app")) || !(m.site = strdup("hq")))
		die("out of memory", -ENOMEM);
	m.version = version;
	add_file(&m, "a.bin", content[0], sizeof(content[0]));
	add_file(&m, "b.txt", content[1], sizeof(content[1]));
	if ((rc = bdr_manifest_encode(&m, k, &mbuf, &mlen, NULL)) < 0)
		die("manifest", rc);
	for (unsigned i = 0; i < 4; i++)
		if (mask & (1u << i)) {
			refs[n] = m.entries[i / 2].chunks[i % 2];
			raw[n] = content[i / 2] + (i % 2) * (sizeof(content[0]) / 2);
			h.raw_bytes += refs[n++].len;
		}
	/* the writer takes chunks in (id, length) order; raw follows its ref */
	for (uint32_t i = 0; i < n; i++)
		for (uint32_t j = i + 1; j < n; j++)
			if (ref_cmp(&refs[j], &refs[i]) < 0) {
				struct bdr_chunk_ref t = refs[i];
				const uint8_t *r = raw[i];
				refs[i] = refs[j], refs[j] = t, raw[i] = raw[j], raw[j] = r;
			}
	memcpy(h.signer, k->pk, BDR_PK_LEN);
	snprintf(h.site, sizeof(h.site), "hq");
	snprintf(h.package, sizeof(h.package), "app");
	h.manifest_len = mlen, h.nchunks = n;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
		die(path, -errno);
	rc = bdr_bundle_writer_begin(&w, fd, &h, mbuf);
	for (uint32_t i = 0; rc == 0 && i < n; i++)
		rc = bdr_bundle_writer_chunk(w, &refs[i].id, raw[i], refs[i].len);
	if (rc < 0 || (rc = bdr_bundle_writer_end(w, k, NULL)) < 0)
		die(path, rc);
	close(fd);
	free(mbuf);
	bdr_manifest_free(&m);
}

int main(int argc, char **argv)
{
	struct bdr_key k;
	uint64_t x = 7;

	if (argc != 2) {
		fprintf(stderr, "usage: gen_bundle_seeds DIR\n");
		return 2;
	}
	if (mkdir(argv[1], 0755) < 0 && errno != EEXIST)
		die(argv[1], -errno);
	if (sodium_init() < 0)
		die("sodium_init", -EIO);
	fuzz_fixed_key(&k);
	for (size_t i = 0; i < sizeof(content[0]); i++) {
		content[0][i] = (uint8_t)fuzz_splitmix(&x);
		content[1][i] = (uint8_t)"text compresses "[i % 16];
	}
	write_seed(argv[1], "whole", 1, 0, 0xf, &k);
	write_seed(argv[1], "base", 2, 1, 0x6, &k);
	write_seed(argv[1], "empty", 3, 2, 0, &k);
	return 0;
}
