/* bdr_scan_fd: the same chunks, ids and file hash as chunking the bytes in
 * memory, whatever the file size relative to its read buffer and however
 * the reads split; every byte reaches the sink; limits and errors leave
 * nothing allocated. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "bdr/error.h"
#include "bdr/scan.h"
#include "testutil.h"

static struct bdr_chunker_params params(uint32_t avg)
{
	struct bdr_chunker_params p;

	bdr_chunker_params_default(&p, avg);
	return p;
}

static void assert_zeroed(const struct bdr_scan_result *r)
{
	static const struct bdr_scan_result zero;

	cr_assert_arr_eq(r, &zero, sizeof(zero), "result not zeroed after failure");
}

/* The expected result, from the chunker and one-shot hashes on buf. */
static void reference(const uint8_t *buf, size_t len, const struct bdr_chunker_params *p,
		      struct bdr_scan_result *r)
{
	struct bdr_chunker c;
	size_t off = 0, start = 0;

	memset(r, 0, sizeof(*r));
	r->size = len;
	r->chunks = malloc((len / p->min_size + 1) * sizeof(*r->chunks));
	cr_assert_not_null(r->chunks);
	crypto_generichash(r->hash, sizeof(r->hash), buf, len, NULL, 0);
	bdr_chunker_init(&c, p);
	while (off < len) {
		bool cut;
		off += bdr_chunker_next(&c, buf + off, len - off, &cut);
		if (!cut && off < len)
			continue;
		bdr_chunk_id(&r->chunks[r->nchunks].id, buf + start, off - start);
		r->chunks[r->nchunks++].len = (uint32_t)(off - start);
		start = off;
	}
}

static void assert_same(const struct bdr_scan_result *got, const struct bdr_scan_result *want)
{
	cr_assert_eq(got->size, want->size);
	cr_assert_arr_eq(got->hash, want->hash, sizeof(want->hash), "file hash differs");
	cr_assert_eq(got->nchunks, want->nchunks, "%u chunks, want %u", got->nchunks, want->nchunks);
	for (uint32_t i = 0; i < want->nchunks; i++) {
		cr_assert_eq(got->chunks[i].len, want->chunks[i].len, "chunk %u length", i);
		cr_assert_arr_eq(got->chunks[i].id.b, want->chunks[i].id.b, 16, "chunk %u id", i);
	}
}

static int open_tmp(const uint8_t *buf, size_t len, char dir[PATH_MAX])
{
	char path[PATH_MAX + 8];

	tu_mkdtemp(dir, "scan");
	snprintf(path, sizeof(path), "%s/f", dir);
	tu_write(path, buf, len);
	int fd = open(path, O_RDONLY);
	cr_assert(fd >= 0);
	return fd;
}

/* Scans buf from a file and from memory; both must equal the reference. */
static void assert_scan_matches(const uint8_t *buf, size_t len, const struct bdr_chunker_params *p)
{
	struct bdr_scan_result want, got, mem;
	char dir[PATH_MAX];
	int fd = open_tmp(buf, len, dir);

	reference(buf, len, p, &want);
	cr_assert_eq(bdr_scan_fd(fd, p, UINT32_MAX, NULL, NULL, &got), 0, "length %zu", len);
	assert_same(&got, &want);
	cr_assert_eq(bdr_scan_buf(buf, len, p, UINT32_MAX, &mem), 0);
	assert_same(&mem, &want);
	bdr_scan_result_free(&got);
	bdr_scan_result_free(&mem);
	free(want.chunks);
	close(fd);
	tu_rmrf(dir);
}

Test(scan, file_equals_chunking_in_memory)
{
	const size_t mib = 1 << 20;
	/* Around the 1 MiB read buffer: chunks spanning buffers, a file that
	 * ends exactly at a buffer end, and the tiny files that are most. */
	size_t lens[] = {1, 100, 2047, 2048, 9000, mib - 1, mib, mib + 1, 2 * mib, 5 * mib + 12345};
	size_t max = 5 * mib + 12345;
	uint8_t *buf = malloc(max);
	struct bdr_chunker_params p8 = params(8192), p64 = params(65536);

	cr_assert_not_null(buf);
	tu_fill_random(buf, max, 31);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
		assert_scan_matches(buf, lens[i], &p8);
	assert_scan_matches(buf, max, &p64);
	/* Zeros: forced cuts at max_size, which land on buffer boundaries. */
	memset(buf, 0, max);
	assert_scan_matches(buf, 3 * mib, &p8);
	assert_scan_matches(buf, max, &p64);
	free(buf);
}

Test(scan, empty_file_has_no_chunks)
{
	struct bdr_chunker_params p = params(8192);
	struct bdr_scan_result r, want;
	char dir[PATH_MAX];
	int fd = open_tmp(NULL, 0, dir);

	cr_assert_eq(bdr_scan_fd(fd, &p, 0, NULL, NULL, &r), 0);
	reference(NULL, 0, &p, &want);
	cr_assert_eq(r.nchunks, 0);
	cr_assert_eq(r.size, 0);
	cr_assert_arr_eq(r.hash, want.hash, sizeof(r.hash));
	bdr_scan_result_free(&r);
	free(want.chunks);
	close(fd);
	tu_rmrf(dir);
}

Test(scan, reads_from_current_offset)
{
	enum { N = 300000, SKIP = 1234 };
	struct bdr_chunker_params p = params(4096);
	struct bdr_scan_result r, want;
	uint8_t *buf = malloc(N);
	char dir[PATH_MAX];

	tu_fill_random(buf, N, 32);
	int fd = open_tmp(buf, N, dir);
	cr_assert_eq(lseek(fd, SKIP, SEEK_SET), SKIP);
	cr_assert_eq(bdr_scan_fd(fd, &p, UINT32_MAX, NULL, NULL, &r), 0);
	reference(buf + SKIP, N - SKIP, &p, &want);
	assert_same(&r, &want);
	bdr_scan_result_free(&r);
	free(want.chunks);
	free(buf);
	close(fd);
	tu_rmrf(dir);
}

/* ---- sink ---- */

struct copy {
	uint8_t *buf;
	size_t len, cap, calls;
	int fail_at; /* return -EIO on this call (1-based); 0: never */
};

static int copy_sink(void *arg, const uint8_t *buf, size_t len)
{
	struct copy *c = arg;

	if (++c->calls == (size_t)c->fail_at)
		return -EIO;
	cr_assert_leq(c->len + len, c->cap);
	memcpy(c->buf + c->len, buf, len);
	c->len += len;
	return 0;
}

Test(scan, sink_sees_every_byte_in_order)
{
	const size_t len = 3 * (1 << 20) + 777;
	struct bdr_chunker_params p = params(8192);
	struct bdr_scan_result r;
	uint8_t *buf = malloc(len);
	struct copy c = {.buf = malloc(len), .cap = len};
	char dir[PATH_MAX];

	tu_fill_random(buf, len, 33);
	int fd = open_tmp(buf, len, dir);
	cr_assert_eq(bdr_scan_fd(fd, &p, UINT32_MAX, copy_sink, &c, &r), 0);
	cr_assert_eq(c.len, len);
	cr_assert_arr_eq(c.buf, buf, len);
	cr_assert_geq(c.calls, 4, "one call per buffer: %zu calls", c.calls);
	bdr_scan_result_free(&r);
	free(c.buf);
	free(buf);
	close(fd);
	tu_rmrf(dir);
}

Test(scan, sink_error_fails_the_scan)
{
	const size_t len = 3 * (1 << 20);
	struct bdr_chunker_params p = params(8192);
	struct bdr_scan_result r;
	uint8_t *buf = calloc(1, len);
	struct copy c = {.buf = malloc(len), .cap = len, .fail_at = 2};
	char dir[PATH_MAX];
	int fd = open_tmp(buf, len, dir);

	cr_assert_eq(bdr_scan_fd(fd, &p, UINT32_MAX, copy_sink, &c, &r), -EIO);
	assert_zeroed(&r);
	free(c.buf);
	free(buf);
	close(fd);
	tu_rmrf(dir);
}

/* ---- reads that return little at a time ---- */

static void write_slowly(int fd, const uint8_t *buf, size_t len)
{
	uint64_t x = 77;

	for (size_t off = 0; off < len;) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		size_t n = 1 + x % 10000;
		ssize_t w = write(fd, buf + off, n < len - off ? n : len - off);
		if (w < 0)
			_exit(1);
		off += (size_t)w;
	}
}

Test(scan, pipe_with_short_reads)
{
	const size_t len = 2 * (1 << 20) + 99;
	struct bdr_chunker_params p = params(8192);
	struct bdr_scan_result r, want;
	uint8_t *buf = malloc(len);
	int pfd[2], status;

	tu_fill_random(buf, len, 34);
	cr_assert_eq(pipe(pfd), 0);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		close(pfd[0]);
		write_slowly(pfd[1], buf, len);
		_exit(0);
	}
	close(pfd[1]);
	cr_assert_eq(bdr_scan_fd(pfd[0], &p, UINT32_MAX, NULL, NULL, &r), 0);
	close(pfd[0]);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	reference(buf, len, &p, &want);
	assert_same(&r, &want);
	bdr_scan_result_free(&r);
	free(want.chunks);
	free(buf);
}

/* ---- limits and errors ---- */

Test(scan, max_chunks_exceeded_is_elimit)
{
	const size_t len = 1 << 20;
	struct bdr_chunker_params p = params(4096);
	struct bdr_scan_result r, want;
	uint8_t *buf = malloc(len);
	char dir[PATH_MAX];

	tu_fill_random(buf, len, 35);
	reference(buf, len, &p, &want);
	int fd = open_tmp(buf, len, dir);
	cr_assert_eq(bdr_scan_fd(fd, &p, want.nchunks - 1, NULL, NULL, &r), -BDR_ELIMIT);
	assert_zeroed(&r);
	cr_assert_eq(bdr_scan_buf(buf, len, &p, want.nchunks - 1, &r), -BDR_ELIMIT);
	assert_zeroed(&r);
	/* Exactly at the limit is fine. */
	cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
	cr_assert_eq(bdr_scan_fd(fd, &p, want.nchunks, NULL, NULL, &r), 0);
	assert_same(&r, &want);
	bdr_scan_result_free(&r);
	assert_zeroed(&r);
	free(want.chunks);
	free(buf);
	close(fd);
	tu_rmrf(dir);
}

Test(scan, bad_fd_and_params_fail_cleanly)
{
	struct bdr_chunker_params p = params(8192), bad = {100, 1000, 100000};
	struct bdr_scan_result r;
	char dir[PATH_MAX];

	tu_mkdtemp(dir, "scan");
	cr_assert_eq(bdr_scan_fd(-1, &p, UINT32_MAX, NULL, NULL, &r), -EBADF);
	assert_zeroed(&r);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	cr_assert_eq(bdr_scan_fd(dfd, &p, UINT32_MAX, NULL, NULL, &r), -EISDIR);
	assert_zeroed(&r);
	cr_assert_lt(bdr_scan_fd(dfd, &bad, UINT32_MAX, NULL, NULL, &r), 0);
	assert_zeroed(&r);
	close(dfd);
	tu_rmrf(dir);
}
