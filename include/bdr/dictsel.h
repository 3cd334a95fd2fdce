/* Dictionary selection for codec 2 (proto/wire.md, "Chunk codecs"): which
 * window of at most 32 KiB of an old file, one the receiver already holds,
 * to name as the preset dictionary of one new chunk.
 *
 * The sender indexes the old file once: anchors are 32-byte windows at
 * positions chosen by content (a rolling hash over the last 32 bytes whose
 * top bits are zero), so the same bytes are sampled wherever they sit in
 * either file. The index keeps a 32-bit key and the offset of each anchor.
 * For a new chunk the same sampler runs over the part of the chunk that
 * deflate can still refer back from into a dictionary (its first
 * BDR_DICTSEL_REACH bytes), each anchor is looked up, and every match
 * (chunk offset q, old offset o) says "the dictionary helps if it holds
 * o and deflate can reach o from q". The window is placed where it serves
 * the most matches (see enum bdr_dictsel_place), so a chunk assembled from
 * text that moved, or from two places of the old file, still finds one
 * window that covers most of it.
 *
 * The window is a byte range of the old file; the caller reads it (pread)
 * and passes it to bdr_compress_chunk as dict, and names it in the dictref
 * as (package, version, path, offset, len). Nothing here is part of the
 * protocol: the sampler's table and parameters may change at any time.
 *
 * Streaming: the old file is indexed from buffers of any size (the same
 * index whatever the split); it is never held whole. Memory: 12 bytes per
 * anchor; anchors are at least gap / 4 bytes apart, so at most
 * 48 * size / gap bytes, and about 12 * size / gap on real data (gap 256:
 * under 5% of the old file).
 *
 * Pure: no I/O except bdr_dictsel_index_fd's reads; after
 * bdr_dictsel_index_finish an index is only read, so several threads may
 * pick from one index at once. */
#ifndef BDR_DICTSEL_H
#define BDR_DICTSEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes hashed per anchor. */
#define BDR_DICTSEL_ANCHOR_LEN 32u
/* Average distance between anchors (a power of two, GAP_MIN..GAP_MAX). */
#define BDR_DICTSEL_GAP_DEFAULT 256u
#define BDR_DICTSEL_GAP_MIN 16u
#define BDR_DICTSEL_GAP_MAX 65536u
/* The longest window (zlib's 32 KiB, BDR_CODEC_DICT_MAX). */
#define BDR_DICTSEL_WINDOW_MAX 32768u
/* A window is the chunk's length plus this much either side (at most
 * WINDOW_MAX): the old counterpart of an edited chunk with room for the
 * shift of an insertion. Every byte of the dictionary costs zlib a hash
 * insertion, and far bytes only lengthen its chains: against the full
 * 32 KiB, incremental pushes sent fewer bytes with 4 KiB (esbuild -0.7%,
 * typescript -15%, lodash -21%, synthetic -5.6%) and the sender spent 19%
 * less CPU on synthetic; 1 and 2 KiB gave slightly more bytes. */
#define BDR_DICTSEL_MARGIN 4096u
/* zlib (windowBits 15) refers at most 32768 - 262 bytes back
 * (MAX_DIST = w_size - MIN_LOOKAHEAD): a chunk byte at offset q reaches
 * dictionary bytes no further than REACH - q before the chunk's start. */
#define BDR_DICTSEL_REACH (32768u - 262u)
/* Keys found at more than this many old offsets are not used. */
#define BDR_DICTSEL_MAX_OCC 8u

/* The content sampler (fields private; the struct is public so that a
 * sketch needs no allocation). */
struct bdr_dictsel_sampler {
	uint64_t hash;
	uint64_t pos;    /* bytes seen */
	uint64_t last;   /* offset of the last anchor */
	uint64_t thresh; /* hash < thresh: a candidate */
	uint32_t mingap;
	uint32_t lastkey;
	uint32_t gap;
	bool have_last;
};

/* ---- sketches: scoring candidate old files cheaply ---- */

/* A bottom-k sketch of a file's anchor keys: the SKETCH_K smallest
 * distinct keys. 280 bytes, built in one streaming pass at the sampler's
 * speed (no allocation), so a sender can keep one per file of the base
 * version and ask which old file a new path resembles most. */
#define BDR_DICTSEL_SKETCH_K 64u

struct bdr_dictsel_sketch {
	struct bdr_dictsel_sampler s;
	uint32_t n;                         /* keys held, <= SKETCH_K */
	uint32_t key[BDR_DICTSEL_SKETCH_K]; /* ascending */
};

/* gap: 0 = BDR_DICTSEL_GAP_DEFAULT; -EINVAL unless a power of two in
 * GAP_MIN..GAP_MAX. */
int bdr_dictsel_sketch_init(struct bdr_dictsel_sketch *k, uint32_t gap);
/* Feeds the file's next bytes (buffers of any size, in order). */
void bdr_dictsel_sketch_update(struct bdr_dictsel_sketch *k, const void *buf, size_t len);
/* Estimated share (0..1) of the anchors of new_file that old_file holds
 * too: how much a dictionary from old_file can serve new_file's chunks.
 * 0 when either has no anchor (files under a few hundred bytes) or the
 * gaps differ. The estimate uses the keys below both sketches' largest,
 * so files of very different sizes compare with more noise. */
double bdr_dictsel_sketch_score(const struct bdr_dictsel_sketch *new_file,
				const struct bdr_dictsel_sketch *old_file);

/* ---- the index of an old file ---- */

struct bdr_dictsel_index;

/* gap as for sketches; -EINVAL, -ENOMEM. */
int bdr_dictsel_index_new(struct bdr_dictsel_index **out, uint32_t gap);
void bdr_dictsel_index_free(struct bdr_dictsel_index *ix);
/* Feeds the old file's next bytes (buffers of any size, in order).
 * -ENOMEM, or -EINVAL after finish. */
int bdr_dictsel_index_add(struct bdr_dictsel_index *ix, const void *buf, size_t len);
/* Ends the file: sorts the anchors. Picks need a finished index. */
void bdr_dictsel_index_finish(struct bdr_dictsel_index *ix);
/* new + add of the whole file read with pread from offset 0 in buffers of
 * 256 KiB + finish. -errno of a read, -EINVAL, -ENOMEM. */
int bdr_dictsel_index_fd(struct bdr_dictsel_index **out, int fd, uint32_t gap);

struct bdr_dictsel_stats {
	uint64_t size;  /* bytes indexed */
	size_t anchors; /* anchors kept */
	size_t bytes;   /* memory held by the index */
	uint32_t gap;
};
void bdr_dictsel_index_stats(const struct bdr_dictsel_index *ix, struct bdr_dictsel_stats *st);
/* The i-th anchor (0 <= i < anchors), in the index's order (by key, then
 * offset once finished; by offset before): for tests and tools. */
void bdr_dictsel_index_anchor(const struct bdr_dictsel_index *ix, size_t i, uint64_t *off,
			      uint32_t *key);
/* The sketch of the indexed bytes, built on the way (no second pass). */
const struct bdr_dictsel_sketch *bdr_dictsel_index_sketch(const struct bdr_dictsel_index *ix);

/* ---- picking a window for one chunk ---- */

enum bdr_dictsel_how {
	BDR_DICTSEL_NONE = 0,        /* no dictionary: the old file is empty */
	BDR_DICTSEL_ANCHORED = 1,    /* placed by matched anchors */
	BDR_DICTSEL_SAME_OFFSET = 2, /* no usable match: the chunk's own offset
				      * in the old file, placed as if every byte
				      * matched there (works on binaries rebuilt
				      * with few shifts) */
};

/* Where the window goes. Placements other than the default exist for
 * measurements (bdr-corebench dict --place). */
enum bdr_dictsel_place {
	/* Sweep: each match (q, o) is served by the windows that hold its 32
	 * bytes at o and start at most o - q - (len - REACH): an interval
	 * of window starts. The start covered by the most matches wins (each
	 * weighted 1 / its key's occurrences); among equally good starts,
	 * the middle (MID), the first (LO: more old bytes before the
	 * matches) or the last (HI: more after). */
	BDR_DICTSEL_PLACE_MID = 0,
	BDR_DICTSEL_PLACE_LO,
	BDR_DICTSEL_PLACE_HI,
	/* Vote: the most common alignment d = o - q wins; the window ends
	 * at d + the chunk's length (END: everything before the aligned
	 * chunk) or starts at d - (len - REACH) (START: everything after
	 * it that deflate can reach). */
	BDR_DICTSEL_PLACE_VOTE_END,
	BDR_DICTSEL_PLACE_VOTE_START,
};

struct bdr_dictsel_window {
	uint64_t off;      /* in the old file */
	uint32_t len;      /* min(old size, WINDOW_MAX); 0 with NONE */
	uint8_t how;       /* enum bdr_dictsel_how */
	uint32_t anchors;  /* anchors sampled in the chunk's first REACH bytes */
	uint32_t matched;  /* of them, found in the old file */
	uint32_t covered;  /* of them, served by this window */
};

/* Picks the window for a chunk of len (1..BDR_CHUNK_MAX_LIMIT) bytes that
 * sits at new_off in the new file (used only by the SAME_OFFSET
 * fallback). Only the chunk's first BDR_DICTSEL_REACH bytes are looked at:
 * deflate cannot refer from further into a preset dictionary, so a
 * chunk longer than that compresses its tail against itself only.
 * 0, -EINVAL (len, or an unfinished index), -ENOMEM. Allocates a little
 * scratch memory per call (a few KiB on 8 KiB chunks). */
int bdr_dictsel_pick(const struct bdr_dictsel_index *ix, const void *chunk, uint32_t len,
		     uint64_t new_off, struct bdr_dictsel_window *w);
int bdr_dictsel_pick_place(const struct bdr_dictsel_index *ix, const void *chunk,
			   uint32_t len, uint64_t new_off, enum bdr_dictsel_place place,
			   struct bdr_dictsel_window *w);

#endif
