/* Content-defined chunking: a gear rolling hash with FastCDC's normalized
 * chunking (a stricter mask before the average size, a looser one after).
 *
 * Streaming: feed buffers of any size; the cut points are identical whether
 * a file arrives in one buffer or byte by byte, because all state (the
 * rolling hash and the length of the chunk so far) lives in the struct.
 *
 *   struct bdr_chunker c;  bdr_chunker_init(&c, &params);
 *   while (len > 0) {
 *           bool cut;
 *           size_t n = bdr_chunker_next(&c, buf, len, &cut);
 *           ... the first n bytes of buf belong to the current chunk ...
 *           if (cut) ... the current chunk ends after them ...
 *           buf += n; len -= n;
 *   }
 *   at end of file, a chunk of bdr_chunker_pending(&c) > 0 bytes ends too. */
#ifndef BDR_CHUNKER_H
#define BDR_CHUNKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Hard bounds on the parameters; a chunk is never longer than
 * BDR_CHUNK_MAX_LIMIT, which the wire and manifest limits rely on. */
#define BDR_CHUNK_MIN_LIMIT 256u
#define BDR_CHUNK_MAX_LIMIT (1u << 20)

struct bdr_chunker_params {
	uint32_t min_size;
	uint32_t avg_size; /* a power of two */
	uint32_t max_size;
};

/* The default average chunk size, chosen from measurements on the corpora
 * (see README "Choosing the chunk size"). */
#define BDR_CHUNK_AVG_DEFAULT (8u * 1024)

/* min = avg / 4, max = avg * 8: FastCDC's normalized ratios. */
void bdr_chunker_params_default(struct bdr_chunker_params *p, uint32_t avg_size);
/* 0, or -BDR_ELIMIT / -EINVAL with a diag naming the bad field. */
struct bdr_diag;
int bdr_chunker_params_check(const struct bdr_chunker_params *p, struct bdr_diag *d);

struct bdr_chunker {
	struct bdr_chunker_params p;
	uint64_t mask_s; /* used before avg_size: harder to match */
	uint64_t mask_l; /* used after avg_size: easier to match */
	uint64_t hash;
	uint32_t len; /* bytes of the current chunk seen so far */
};

void bdr_chunker_init(struct bdr_chunker *c, const struct bdr_chunker_params *p);
size_t bdr_chunker_next(struct bdr_chunker *c, const uint8_t *buf, size_t len, bool *cut);
/* Bytes of the current, not yet cut chunk. */
static inline uint32_t bdr_chunker_pending(const struct bdr_chunker *c) { return c->len; }
/* Starts a new chunk (and file): forgets the rolling state. */
void bdr_chunker_reset(struct bdr_chunker *c);

#endif
