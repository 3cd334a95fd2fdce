/* bdr-corebench: measures the content core.
 *
 *   bdr-corebench chunk [--mib N] [--runs R] [--avg BYTES]
 *       throughput of chunking, chunk ids, BLAKE2b and a whole scan on N MiB
 *       of seeded random data in memory; median, min and max of R runs.
 *   bdr-corebench sizes [--avg A,B,...] CORPUS_DIR...
 *       for each corpus (v1/ and v2/ trees) and average chunk size, how many
 *       bytes of v2 a peer holding v1 would fetch (raw, and deflated chunk by
 *       chunk), against the metadata and index cost: the data behind
 *       BDR_CHUNK_AVG_DEFAULT.
 *   bdr-corebench codecs CORPUS_DIR...
 *       every distinct chunk of v2 (what an initial push sends) through
 *       zlib at bdr's levels and, when built with libzstd, zstd: bytes
 *       sent and one core's compress and decompress rates, each chunk on
 *       its own as on the wire, the same raw fallback for all. zlib is the
 *       design's codec; this is the side-by-side measurement behind it.
 *
 * A main that parses arguments and calls into libbdr; only the public API. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <zlib.h>
#ifdef HAVE_ZSTD
#include <zstd.h>
#endif

#include "index.h"
#include "bdr/chunker.h"
#include "bdr/compress.h"
#include "bdr/error.h"
#include "bdr/hash.h"
#include "bdr/scan.h"

#define MAX_RUNS 101
#define MAX_AVGS 16

/* ---- shared helpers ---- */

static double now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int parse_u32(const char *s, uint32_t lo, uint32_t hi, uint32_t *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

static int check_avg(uint32_t avg, struct bdr_chunker_params *p)
{
	struct bdr_diag d;
	int err;

	bdr_chunker_params_default(p, avg);
	if ((err = bdr_chunker_params_check(p, &d)))
		fprintf(stderr, "bdr-corebench: --avg %u: %s\n", avg, d.msg);
	return err;
}

static void fill_random(uint8_t *buf, size_t len, uint64_t seed)
{
	uint64_t x = seed;

	for (size_t i = 0; i < len; i += 8) {
		/* splitmix64: fast and incompressible, so no chunk repeats. */
		uint64_t z = (x += 0x9E3779B97F4A7C15ull);
		z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
		z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
		z ^= z >> 31;
		memcpy(buf + i, &z, len - i < 8 ? len - i : 8);
	}
}

/* ---- chunk: throughput ---- */

struct tput {
	const uint8_t *buf;
	size_t len;
	struct bdr_chunker_params p;
	uint64_t chunks; /* result of the last run */
	uint8_t acc;     /* folds in every id: the results are used */
};

/* Chunks the whole buffer, with or without computing each chunk's id. */
static void chunk_pass(struct tput *t, bool ids)
{
	struct bdr_chunker c;
	struct bdr_chunk_id id;
	size_t off = 0, start = 0;

	bdr_chunker_init(&c, &t->p);
	t->chunks = 0;
	while (off < t->len) {
		bool cut;
		off += bdr_chunker_next(&c, t->buf + off, t->len - off, &cut);
		if (!cut && off < t->len)
			continue;
		if (ids) {
			bdr_chunk_id(&id, t->buf + start, off - start);
			t->acc ^= id.b[0];
		}
		t->chunks++;
		start = off;
	}
}

static void run_gear(struct tput *t)
{
	chunk_pass(t, false);
}

static void run_ids(struct tput *t)
{
	chunk_pass(t, true);
}

static void run_blake(struct tput *t)
{
	struct bdr_filehash h;
	uint8_t out[BDR_FILE_HASH_LEN];

	bdr_filehash_init(&h);
	bdr_filehash_update(&h, t->buf, t->len);
	bdr_filehash_final(&h, out);
	t->acc ^= out[0];
}

static void run_scan_buf(struct tput *t)
{
	struct bdr_scan_result r;

	if (bdr_scan_buf(t->buf, t->len, &t->p, UINT32_MAX, &r))
		abort();
	t->chunks = r.nchunks;
	bdr_scan_result_free(&r);
}

static int memfd = -1; /* run_scan_fd's input: the buffer as a file */

static void run_scan_fd(struct tput *t)
{
	struct bdr_scan_result r;

	if (lseek(memfd, 0, SEEK_SET) < 0 || bdr_scan_fd(memfd, &t->p, UINT32_MAX, NULL, NULL, &r))
		abort();
	t->chunks = r.nchunks;
	bdr_scan_result_free(&r);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void bench_case(const char *name, void (*fn)(struct tput *), struct tput *t, uint32_t runs)
{
	double mbs[MAX_RUNS];

	fn(t); /* warm caches and page tables */
	for (uint32_t i = 0; i < runs; i++) {
		double t0 = now_sec();
		fn(t);
		mbs[i] = (double)t->len / 1e6 / (now_sec() - t0);
	}
	qsort(mbs, runs, sizeof(mbs[0]), cmp_double);
	printf("| %-28s | %8.0f | %8.0f | %8.0f |\n", name, mbs[runs / 2], mbs[0], mbs[runs - 1]);
}

static int make_memfd(const uint8_t *buf, size_t len)
{
	int fd = memfd_create("corebench", 0);

	if (fd < 0 || write(fd, buf, len) != (ssize_t)len) {
		perror("bdr-corebench: memfd");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static int chunk_args(int argc, char **argv, uint32_t *mib, uint32_t *runs, uint32_t *avg)
{
	for (int i = 1; i < argc; i++) {
		int bad = i + 1 >= argc;
		if (!bad && !strcmp(argv[i], "--mib"))
			bad = parse_u32(argv[++i], 1, 16384, mib);
		else if (!bad && !strcmp(argv[i], "--runs"))
			bad = parse_u32(argv[++i], 1, MAX_RUNS, runs);
		else if (!bad && !strcmp(argv[i], "--avg"))
			bad = parse_u32(argv[++i], 1, UINT32_MAX, avg);
		else
			bad = 1;
		if (bad) {
			fprintf(stderr, "bdr-corebench chunk: bad argument '%s'\n", argv[i]);
			return -EINVAL;
		}
	}
	return 0;
}

static int chunk_main(int argc, char **argv)
{
	uint32_t mib = 256, runs = 7, avg = BDR_CHUNK_AVG_DEFAULT;
	struct tput t = {0};

	if (chunk_args(argc, argv, &mib, &runs, &avg) || check_avg(avg, &t.p))
		return 2;
	t.len = (size_t)mib << 20;
	uint8_t *buf = malloc(t.len);
	if (!buf)
		return 1;
	fill_random(buf, t.len, 1);
	if ((memfd = make_memfd(buf, t.len)) < 0) {
		free(buf);
		return 1;
	}
	t.buf = buf;
	run_gear(&t);
	printf("bdr-corebench chunk: %u MiB seeded random data, avg %u (min %u, max %u): "
	       "%llu chunks, mean %.0f B\n%u runs, one thread, MB/s = 10^6 B/s\n\n",
	       mib, t.p.avg_size, t.p.min_size, t.p.max_size, (unsigned long long)t.chunks,
	       (double)t.len / (double)t.chunks, runs);
	printf("| %-28s | %8s | %8s | %8s |\n|%s|---------:|---------:|---------:|\n",
	       "case", "median", "min", "max", "------------------------------");
	bench_case("(a) gear chunking", run_gear, &t, runs);
	bench_case("(b) chunking + XXH3-128 ids", run_ids, &t, runs);
	bench_case("(c) BLAKE2b-256", run_blake, &t, runs);
	bench_case("(d) scan in memory", run_scan_buf, &t, runs);
	bench_case("(e) scan_fd (memfd, 1 MiB)", run_scan_fd, &t, runs);
	close(memfd);
	free(buf);
	return 0;
}

/* ---- sizes: what the average chunk size costs on real version pairs ---- */

#define ID_USED 0x80 /* slot holds an id; 0 marks an empty slot */
#define ID_IN_V1 0x01
#define ID_IN_V2 0x02
/* Costs per proto/manifest.md: a chunk reference is a 16-byte id and a u32
 * length; a file entry is 59 bytes besides its path. The index estimate is
 * an id, a location and SQLite's per-row overhead. */
#define REF_BYTES 20
#define FILE_BYTES 64
#define INDEX_BYTES 48

struct id_entry {
	struct bdr_chunk_id id;
	uint8_t flags;
};

/* Open addressing over ids that are already uniform hashes. */
struct id_set {
	struct id_entry *tab; /* owned */
	size_t cap, n;
};

static struct id_entry *id_set_slot(struct id_entry *tab, size_t cap, const struct bdr_chunk_id *id)
{
	uint64_t h;
	size_t i;

	memcpy(&h, id->b, sizeof(h));
	for (i = h & (cap - 1); tab[i].flags; i = (i + 1) & (cap - 1))
		if (!bdr_chunk_id_cmp(&tab[i].id, id))
			break;
	return &tab[i];
}

static int id_set_grow(struct id_set *s)
{
	size_t cap = s->cap ? s->cap * 2 : 1u << 16;
	struct id_entry *tab = calloc(cap, sizeof(*tab));

	if (!tab)
		return -ENOMEM;
	for (size_t i = 0; i < s->cap; i++)
		if (s->tab[i].flags)
			*id_set_slot(tab, cap, &s->tab[i].id) = s->tab[i];
	free(s->tab);
	s->tab = tab;
	s->cap = cap;
	return 0;
}

/* The entry for id, added with only ID_USED if new; NULL without memory. */
static struct id_entry *id_set_get(struct id_set *s, const struct bdr_chunk_id *id)
{
	if (2 * (s->n + 1) > s->cap && id_set_grow(s))
		return NULL;
	struct id_entry *e = id_set_slot(s->tab, s->cap, id);
	if (!e->flags) {
		e->id = *id;
		e->flags = ID_USED;
		s->n++;
	}
	return e;
}

/* One version tree through one chunker: totals for the table. */
struct sizes_pass {
	struct bdr_chunker_params p;
	struct id_set *set;
	uint8_t flag; /* ID_IN_V1 or ID_IN_V2 */
	uint64_t bytes, chunks, meta, missing;
	uint64_t missing_z; /* missing bytes, each chunk deflated on its own */
	uint8_t *raw, *z;   /* owned: one chunk and its deflated form */
};

/* Smaller chunks deflate worse; a per-chunk codec on the wire pays that,
 * so the table shows the missing bytes after zlib as well. */
static int deflated_len(struct sizes_pass *sp, int fd, uint64_t off, uint32_t len, uint64_t *out)
{
	uLongf zlen = compressBound(BDR_CHUNK_MAX_LIMIT);

	if (pread(fd, sp->raw, len, (off_t)off) != (ssize_t)len)
		return -EIO;
	if (compress2(sp->z, &zlen, sp->raw, len, Z_DEFAULT_COMPRESSION) != Z_OK)
		return -ENOMEM;
	*out += zlen < len ? zlen : len; /* a codec would send it raw */
	return 0;
}

static int count_chunks(struct sizes_pass *sp, int fd, const struct bdr_scan_result *r)
{
	uint64_t off = 0;
	int err = 0;

	for (uint32_t i = 0; !err && i < r->nchunks; off += r->chunks[i++].len) {
		struct id_entry *e = id_set_get(sp->set, &r->chunks[i].id);
		if (!e)
			return -ENOMEM;
		/* Each distinct id v1 lacks is fetched once, however often v2 uses it. */
		if (sp->flag == ID_IN_V2 && !(e->flags & (ID_IN_V1 | ID_IN_V2))) {
			sp->missing += r->chunks[i].len;
			err = deflated_len(sp, fd, off, r->chunks[i].len, &sp->missing_z);
		}
		e->flags |= sp->flag;
	}
	return err;
}

static int sizes_file(void *arg, const char *path, const char *rel)
{
	struct sizes_pass *sp = arg;
	struct bdr_scan_result r;
	int fd = open(path, O_RDONLY | O_CLOEXEC), err;

	if (fd < 0)
		return -errno;
	if (!(err = bdr_scan_fd(fd, &sp->p, UINT32_MAX, NULL, NULL, &r))) {
		sp->bytes += r.size;
		sp->chunks += r.nchunks;
		sp->meta += (uint64_t)REF_BYTES * r.nchunks + strlen(rel) + FILE_BYTES;
		err = count_chunks(sp, fd, &r);
		bdr_scan_result_free(&r);
	}
	close(fd);
	return err;
}

static int report(const char *path, int err)
{
	if (err)
		fprintf(stderr, "bdr-corebench: %s: %s\n", path, bdr_strerror(err));
	return err;
}

/* Every regular file under path (a PATH_MAX buffer, extended in place);
 * rel names it relative to the first root_len bytes. Errors are reported
 * where they happen. */
typedef int (*file_fn)(void *arg, const char *path, const char *rel);

static int walk_tree(char *path, size_t root_len, file_fn fn, void *arg)
{
	size_t len = strlen(path);
	DIR *d = opendir(path);
	struct dirent *de;
	struct stat st;
	int err = 0;

	if (!d)
		return report(path, -errno);
	while (!err && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (snprintf(path + len, PATH_MAX - len, "/%s", de->d_name) >= (int)(PATH_MAX - len))
			err = report(path, -ENAMETOOLONG);
		else if (lstat(path, &st) < 0)
			err = report(path, -errno);
		else if (S_ISDIR(st.st_mode))
			err = walk_tree(path, root_len, fn, arg);
		else if (S_ISREG(st.st_mode))
			err = report(path, fn(arg, path, path + root_len + 1));
		path[len] = '\0';
	}
	closedir(d);
	return err;
}

static int walk_version(const char *corpus, const char *ver, file_fn fn, void *arg)
{
	char path[PATH_MAX];
	int n = snprintf(path, sizeof(path), "%s/%s", corpus, ver);

	if (n < 0 || (size_t)n >= sizeof(path))
		return -ENAMETOOLONG;
	return walk_tree(path, (size_t)n, fn, arg);
}

static void print_row(const char *name, uint32_t avg, const struct sizes_pass *v2, size_t ids)
{
	double pct = v2->bytes ? 100.0 / (double)v2->bytes : 0.0;

	printf("| %s | %u | %llu | %llu | %.0f | %llu | %.2f | %llu | %.2f | %llu | %llu | %llu |\n",
	       name, avg, (unsigned long long)v2->bytes, (unsigned long long)v2->chunks,
	       v2->chunks ? (double)v2->bytes / (double)v2->chunks : 0.0,
	       (unsigned long long)v2->missing, pct * (double)v2->missing,
	       (unsigned long long)v2->missing_z, pct * (double)v2->missing_z,
	       (unsigned long long)v2->meta, (unsigned long long)(v2->missing_z + v2->meta),
	       (unsigned long long)(ids * INDEX_BYTES));
	fflush(stdout);
}

static int sizes_row(const char *corpus, uint32_t avg)
{
	struct id_set set = {0};
	struct sizes_pass v1 = {.set = &set, .flag = ID_IN_V1};
	struct sizes_pass v2 = {.set = &set, .flag = ID_IN_V2};
	const char *name = strrchr(corpus, '/') ? strrchr(corpus, '/') + 1 : corpus;
	double t0 = now_sec();
	int err;

	if ((err = check_avg(avg, &v1.p)))
		return err;
	v2.p = v1.p;
	v2.raw = malloc(BDR_CHUNK_MAX_LIMIT);
	v2.z = malloc(compressBound(BDR_CHUNK_MAX_LIMIT));
	if (!v2.raw || !v2.z)
		err = -ENOMEM;
	if (!err && !(err = walk_version(corpus, "v1", sizes_file, &v1)))
		err = walk_version(corpus, "v2", sizes_file, &v2);
	if (!err)
		print_row(name, avg, &v2, set.n);
	fprintf(stderr, "%s avg %u: %.1f s\n", name, avg, now_sec() - t0);
	free(v2.raw);
	free(v2.z);
	free(set.tab);
	return err;
}

static int parse_avgs(const char *s, uint32_t *avgs, int *n)
{
	char tmp[256], *save, *tok;

	if (snprintf(tmp, sizeof(tmp), "%s", s) >= (int)sizeof(tmp))
		return -EINVAL;
	*n = 0;
	for (tok = strtok_r(tmp, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		if (*n >= MAX_AVGS || parse_u32(tok, 1, UINT32_MAX, &avgs[(*n)++]))
			return -EINVAL;
	return *n ? 0 : -EINVAL;
}

static int sizes_main(int argc, char **argv)
{
	uint32_t avgs[MAX_AVGS] = {4096, 8192, 16384, 32768, 65536};
	int navg = 5, i = 1;
	struct bdr_chunker_params p;

	if (argc > 2 && !strcmp(argv[1], "--avg") && parse_avgs(argv[2], avgs, &navg) == 0)
		i = 3;
	if (i >= argc || argv[i][0] == '-') {
		fprintf(stderr, "usage: bdr-corebench sizes [--avg A,B,...] CORPUS_DIR...\n");
		return 2;
	}
	for (int k = 0; k < navg; k++)
		if (check_avg(avgs[k], &p))
			return 2;
	printf("| corpus | avg | v2 bytes | v2 chunks | mean chunk | missing bytes | missing %% "
	       "| missing zlib | zlib %% | metadata bytes | zlib + metadata | index bytes |\n"
	       "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
	fflush(stdout);
	for (; i < argc; i++)
		for (int k = 0; k < navg; k++)
			if (sizes_row(argv[i], avgs[k]))
				return 1;
	return 0;
}

/* ---- codecs: zlib against an alternative, chunk by chunk ---- */

enum { C_ZLIB, C_ZSTD };

struct codec_row {
	const char *name;
	int kind, level;
	uint64_t out;        /* bytes sent: the encoding, or raw if not under 97% */
	double enc_s, dec_s; /* one thread's CPU time */
	struct bdr_compressor *z;
};

struct codecs_pass {
	struct bdr_chunker_params p;
	struct id_set set;
	struct codec_row *rows;
	int nrows;
	uint64_t bytes, chunks;
	uint8_t *raw, *enc, *dec; /* owned: BDR_CHUNK_MAX_LIMIT (enc: its bound) */
	struct bdr_decompressor *unz;
#ifdef HAVE_ZSTD
	ZSTD_CCtx *zc;
	ZSTD_DCtx *zd;
#endif
};

static double thread_cpu(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Encodes raw[0..len) into enc; *raw_kept when it goes raw. */
static int codec_enc(struct codecs_pass *cp, struct codec_row *r, uint32_t len, uint32_t *out,
		     bool *raw_kept)
{
	uint8_t codec;
	int err = 0;

	*raw_kept = false;
	if (r->kind == C_ZLIB) {
		err = bdr_compress_chunk(r->z, cp->raw, len, NULL, 0, cp->enc, len, out, &codec);
		*raw_kept = codec == BDR_CODEC_RAW;
		return err;
	}
#ifdef HAVE_ZSTD
	/* The same rules as zlib's: the entropy pre-check, then 97%. */
	if (bdr_compress_looks_random(cp->raw, len)) {
		*raw_kept = true;
		*out = len;
		return 0;
	}
	size_t n = ZSTD_compressCCtx(cp->zc, cp->enc, ZSTD_compressBound(BDR_CHUNK_MAX_LIMIT),
				     cp->raw, len, r->level);
	if (ZSTD_isError(n))
		return -EIO;
	*raw_kept = n * 100 >= (size_t)len * BDR_COMPRESS_KEEP_PCT;
	*out = *raw_kept ? len : (uint32_t)n;
#endif
	return err;
}

static int codec_dec(struct codecs_pass *cp, struct codec_row *r, uint32_t inlen, uint32_t len)
{
	if (r->kind == C_ZLIB)
		return bdr_decompress_chunk(cp->unz, BDR_CODEC_ZLIB, cp->enc, inlen, NULL, 0, cp->dec,
					    len, NULL);
#ifdef HAVE_ZSTD
	size_t n = ZSTD_decompressDCtx(cp->zd, cp->dec, len, cp->enc, inlen);
	if (ZSTD_isError(n) || n != len)
		return -EIO;
#endif
	return 0;
}

static int codecs_chunk(struct codecs_pass *cp, int fd, uint64_t off, uint32_t len)
{
	if (pread(fd, cp->raw, len, (off_t)off) != (ssize_t)len)
		return -EIO;
	for (int i = 0; i < cp->nrows; i++) {
		struct codec_row *r = &cp->rows[i];
		uint32_t n = 0;
		bool raw_kept;
		double t0 = thread_cpu();
		int err = codec_enc(cp, r, len, &n, &raw_kept);
		double t1 = thread_cpu();

		if (err)
			return err;
		r->enc_s += t1 - t0;
		r->out += n;
		if (raw_kept)
			continue;
		if ((err = codec_dec(cp, r, n, len)))
			return err;
		r->dec_s += thread_cpu() - t1;
		if (memcmp(cp->dec, cp->raw, len))
			return -BDR_EFORMAT;
	}
	return 0;
}

static int codecs_file(void *arg, const char *path, const char *rel)
{
	struct codecs_pass *cp = arg;
	struct bdr_scan_result r;
	uint64_t off = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC), err;

	(void)rel;
	if (fd < 0)
		return -errno;
	if (!(err = bdr_scan_fd(fd, &cp->p, UINT32_MAX, NULL, NULL, &r))) {
		for (uint32_t i = 0; !err && i < r.nchunks; off += r.chunks[i++].len) {
			struct id_entry *e = id_set_get(&cp->set, &r.chunks[i].id);
			if (!e)
				err = -ENOMEM;
			else if (!(e->flags & ID_IN_V2)) {
				e->flags |= ID_IN_V2;
				cp->bytes += r.chunks[i].len;
				cp->chunks++;
				err = codecs_chunk(cp, fd, off, r.chunks[i].len);
			}
		}
		bdr_scan_result_free(&r);
	}
	close(fd);
	return err;
}

static int codecs_init(struct codecs_pass *cp, struct codec_row *rows, int nrows)
{
	memset(cp, 0, sizeof(*cp));
	cp->rows = rows;
	cp->nrows = nrows;
	if (check_avg(BDR_CHUNK_AVG_DEFAULT, &cp->p))
		return -EINVAL;
	cp->raw = malloc(BDR_CHUNK_MAX_LIMIT);
	cp->dec = malloc(BDR_CHUNK_MAX_LIMIT);
	cp->enc = malloc(2 * BDR_CHUNK_MAX_LIMIT);
#ifdef HAVE_ZSTD
	cp->zc = ZSTD_createCCtx();
	cp->zd = ZSTD_createDCtx();
	if (!cp->zc || !cp->zd)
		return -ENOMEM;
#endif
	if (!cp->raw || !cp->dec || !cp->enc || bdr_decompressor_new(&cp->unz))
		return -ENOMEM;
	for (int i = 0; i < nrows; i++) {
		rows[i].out = 0;
		rows[i].enc_s = rows[i].dec_s = 0;
		if (rows[i].kind == C_ZLIB && bdr_compressor_new(&rows[i].z, rows[i].level))
			return -ENOMEM;
	}
	return 0;
}

static void codecs_free(struct codecs_pass *cp)
{
	for (int i = 0; i < cp->nrows; i++) {
		bdr_compressor_free(cp->rows[i].z);
		cp->rows[i].z = NULL;
	}
	bdr_decompressor_free(cp->unz);
#ifdef HAVE_ZSTD
	ZSTD_freeCCtx(cp->zc);
	ZSTD_freeDCtx(cp->zd);
#endif
	free(cp->raw);
	free(cp->dec);
	free(cp->enc);
	free(cp->set.tab);
}

static double mbps(uint64_t bytes, double s)
{
	return s > 0 ? (double)bytes / s / 1e6 : 0.0;
}

static int codecs_main(int argc, char **argv)
{
	struct codec_row rows[] = {
		{ "zlib", C_ZLIB, 1 }, { "zlib", C_ZLIB, 6 },
#ifdef HAVE_ZSTD
		{ "zstd", C_ZSTD, 1 }, { "zstd", C_ZSTD, 3 },
#endif
	};
	const int nrows = (int)(sizeof(rows) / sizeof(rows[0]));

	if (argc < 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: bdr-corebench codecs CORPUS_DIR...\n");
		return 2;
	}
	printf("| corpus | codec | level | v2 distinct bytes | bytes sent | %% | compress MB/s "
	       "| decompress MB/s |\n|---|---|--:|--:|--:|--:|--:|--:|\n");
	for (int i = 1; i < argc; i++) {
		struct codecs_pass cp;
		const char *name = strrchr(argv[i], '/') ? strrchr(argv[i], '/') + 1 : argv[i];
		int err = report(argv[i], codecs_init(&cp, rows, nrows));

		if (!err) /* reports where it fails */
			err = walk_version(argv[i], "v2", codecs_file, &cp);
		for (int k = 0; !err && k < nrows; k++)
			printf("| %s | %s | %d | %llu | %llu | %.1f | %.0f | %.0f |\n", name,
			       rows[k].name, rows[k].level, (unsigned long long)cp.bytes,
			       (unsigned long long)rows[k].out,
			       cp.bytes ? 100.0 * (double)rows[k].out / (double)cp.bytes : 0.0,
			       mbps(cp.bytes, rows[k].enc_s), mbps(cp.bytes, rows[k].dec_s));
		fflush(stdout);
		codecs_free(&cp);
		if (err)
			return 1;
	}
	return 0;
}

/* ---- dispatch ---- */

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
} cmds[] = {
	{"chunk", chunk_main, "[--mib N] [--runs R] [--avg BYTES]: core throughput"},
	{"sizes", sizes_main, "[--avg A,B,...] CORPUS_DIR...: transfer cost per avg chunk size"},
	{"codecs", codecs_main, "CORPUS_DIR...: zlib against zstd, chunk by chunk, on v2"},
	{"index", index_main, "--dir DIR [--chunks N] [--lookups N]: the chunk index as it grows"},
};

int main(int argc, char **argv)
{
	/* Picks libsodium's fastest BLAKE2b for this CPU. */
	if (sodium_init() < 0)
		return 1;
	for (size_t i = 0; argc > 1 && i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(argv[1], cmds[i].name))
			return cmds[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "usage: bdr-corebench COMMAND ...\n");
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(stderr, "  %s %s\n", cmds[i].name, cmds[i].help);
	return 2;
}
