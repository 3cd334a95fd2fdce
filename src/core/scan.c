/* One pass over a file: chunk boundaries, chunk ids, the file's BLAKE2b,
 * and a copy of each buffer to an optional sink, in bounded memory. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bdr/error.h"
#include "bdr/scan.h"

/* Large enough that most chunks lie within one buffer (and get the one-shot
 * hash), small enough to bound memory per concurrent scan. */
#define SCAN_BUF_SIZE (1u << 20)

struct scan {
	struct bdr_chunker ck;
	struct bdr_filehash fh;
	struct bdr_chunk_hasher *span; /* owned; created on the first spanning chunk */
	uint32_t span_len;             /* bytes of the current chunk already in span */
	bool spanning;                 /* the current chunk began in an earlier buffer */
	uint32_t max_chunks;
	uint32_t cap;                  /* allocated entries of r->chunks */
	struct bdr_scan_result *r;     /* not owned; r->chunks grows here */
};

static void scan_init(struct scan *s, const struct bdr_chunker_params *p, uint32_t max_chunks,
		      struct bdr_scan_result *r)
{
	memset(s, 0, sizeof(*s));
	memset(r, 0, sizeof(*r));
	bdr_chunker_init(&s->ck, p);
	bdr_filehash_init(&s->fh);
	s->max_chunks = max_chunks;
	s->r = r;
}

static void scan_free(struct scan *s)
{
	bdr_chunk_hasher_free(s->span);
	s->span = NULL;
}

static int push_ref(struct scan *s, const struct bdr_chunk_id *id, uint32_t len)
{
	struct bdr_scan_result *r = s->r;

	if (r->nchunks >= s->max_chunks)
		return -BDR_ELIMIT;
	if (r->nchunks == s->cap) {
		uint32_t cap = s->cap ? s->cap : 64;
		if (cap > s->max_chunks / 2)
			cap = s->max_chunks;
		else
			cap *= 2;
		struct bdr_chunk_ref *v = realloc(r->chunks, (size_t)cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		r->chunks = v;
		s->cap = cap;
	}
	r->chunks[r->nchunks].id = *id;
	r->chunks[r->nchunks].len = len;
	r->nchunks++;
	return 0;
}

/* The current chunk ends with the n bytes at p. */
static int end_chunk(struct scan *s, const uint8_t *p, size_t n)
{
	struct bdr_chunk_id id;
	uint32_t len = (uint32_t)n;

	if (s->spanning) {
		bdr_chunk_hasher_update(s->span, p, n);
		bdr_chunk_hasher_final(s->span, &id);
		len += s->span_len;
		s->spanning = false;
	} else {
		bdr_chunk_id(&id, p, n);
	}
	return push_ref(s, &id, len);
}

/* The current chunk continues past this buffer: keep its n bytes at p in
 * the streaming hasher, since the buffer is about to be reused. */
static int carry_chunk(struct scan *s, const uint8_t *p, size_t n)
{
	if (!s->span && !(s->span = bdr_chunk_hasher_new()))
		return -ENOMEM;
	if (!s->spanning) {
		bdr_chunk_hasher_reset(s->span);
		s->span_len = 0;
		s->spanning = true;
	}
	bdr_chunk_hasher_update(s->span, p, n);
	s->span_len += (uint32_t)n;
	return 0;
}

/* Feeds the next n bytes of the file; last says no more will follow. */
static int scan_feed(struct scan *s, const uint8_t *buf, size_t n, bool last)
{
	size_t start = 0, off = 0;
	int err;

	bdr_filehash_update(&s->fh, buf, n);
	s->r->size += n;
	while (off < n) {
		bool cut;
		off += bdr_chunker_next(&s->ck, buf + off, n - off, &cut);
		if (!cut)
			break;
		if ((err = end_chunk(s, buf + start, off - start)))
			return err;
		start = off;
	}
	if (start == n)
		return 0;
	if (last) {
		bdr_chunker_reset(&s->ck);
		return end_chunk(s, buf + start, n - start);
	}
	return carry_chunk(s, buf + start, n - start);
}

/* End of file: a chunk still carried in the hasher ends here. */
static int scan_finish(struct scan *s)
{
	bdr_filehash_final(&s->fh, s->r->hash);
	if (!s->spanning)
		return 0;
	bdr_chunker_reset(&s->ck);
	return end_chunk(s, NULL, 0);
}

/* Reads until buf is full or EOF: bytes read, or -errno. */
static ssize_t read_full(int fd, uint8_t *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

static int scan_fd_loop(struct scan *s, int fd, uint8_t *buf, bdr_scan_sink sink, void *sink_arg)
{
	for (;;) {
		ssize_t n = read_full(fd, buf, SCAN_BUF_SIZE);
		int err;
		if (n < 0)
			return (int)n;
		if (n > 0 && sink && (err = sink(sink_arg, buf, (size_t)n)))
			return err;
		/* A short read means EOF: the tail chunk is still in buf. */
		bool last = (size_t)n < SCAN_BUF_SIZE;
		if ((err = scan_feed(s, buf, (size_t)n, last)))
			return err;
		if (last)
			return scan_finish(s);
	}
}

int bdr_scan_fd(int fd, const struct bdr_chunker_params *p, uint32_t max_chunks,
		bdr_scan_sink sink, void *sink_arg, struct bdr_scan_result *r)
{
	struct scan s;
	uint8_t *buf;
	int err;

	memset(r, 0, sizeof(*r));
	if ((err = bdr_chunker_params_check(p, NULL)))
		return err;
	if (!(buf = malloc(SCAN_BUF_SIZE)))
		return -ENOMEM;
	/* Only a hint for readahead; pipes refuse it, which is fine. */
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	scan_init(&s, p, max_chunks, r);
	err = scan_fd_loop(&s, fd, buf, sink, sink_arg);
	scan_free(&s);
	free(buf);
	if (err)
		bdr_scan_result_free(r);
	return err;
}

int bdr_scan_buf(const void *buf, size_t len, const struct bdr_chunker_params *p,
		 uint32_t max_chunks, struct bdr_scan_result *r)
{
	struct scan s;
	int err;

	memset(r, 0, sizeof(*r));
	if ((err = bdr_chunker_params_check(p, NULL)))
		return err;
	scan_init(&s, p, max_chunks, r);
	err = scan_feed(&s, buf, len, true);
	if (!err)
		err = scan_finish(&s);
	scan_free(&s);
	if (err)
		bdr_scan_result_free(r);
	return err;
}

void bdr_scan_result_free(struct bdr_scan_result *r)
{
	free(r->chunks);
	memset(r, 0, sizeof(*r));
}
