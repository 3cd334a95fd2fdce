/* Chunk codecs (proto/wire.md, "Chunk codecs"): raw, zlib, and zlib with a
 * preset dictionary of bytes the receiver already holds; zstd and zstd with
 * the same window as a raw-content prefix, when both peers offered
 * BDR_CAP_ZSTD.
 *
 * Each side keeps one compressor or decompressor per thread and reuses it
 * for every chunk: the zlib state is allocated once and reset between
 * chunks. Neither object may be shared between threads.
 *
 * The sender's choices, measured on the corpora (proto/wire.md):
 * - level BDR_COMPRESS_LEVEL_DEFAULT: level 1 compresses typescript's chunks
 *   almost as well as 6 or 9 at several times the speed, and zlib is the
 *   slowest stage of a push;
 * - RAW when the compressed form is not below 97% of the raw bytes;
 * - RAW without trying when a byte histogram of a sample says the chunk is
 *   random-looking (already compressed data): deflate spends as long on
 *   such data as on text and saves nothing. */
#ifndef BDR_COMPRESS_H
#define BDR_COMPRESS_H

#include <stdbool.h>
#include <stdint.h>

enum bdr_codec {
	BDR_CODEC_RAW = 0,
	BDR_CODEC_ZLIB = 1,
	BDR_CODEC_ZLIB_DICT = 2,
	BDR_CODEC_ZSTD = 3,
	BDR_CODEC_ZSTD_DICT = 4,
};

/* Codecs 2 and 4 name a dictionary (a dictref on the wire). */
static inline bool bdr_codec_has_dict(uint8_t codec)
{
	return codec == BDR_CODEC_ZLIB_DICT || codec == BDR_CODEC_ZSTD_DICT;
}

/* A preset dictionary is at most zlib's window. */
#define BDR_CODEC_DICT_MAX (32u * 1024)
/* zlib's compressBound(n) as a constant expression, plus the 4-byte DICTID
 * a zlib header carries when a dictionary is set. */
#define BDR_ZLIB_BOUND(n) ((n) + ((n) >> 12) + ((n) >> 14) + ((n) >> 25) + 13u + 4u)
/* The most bytes a compressed chunk may take on the wire. */
#define BDR_CODEC_DATA_MAX BDR_ZLIB_BOUND(1u << 20) /* BDR_CHUNK_MAX_LIMIT */

#define BDR_COMPRESS_LEVEL_DEFAULT 1
/* zstd's levels (codecs 3 and 4), measured one core, chunk by chunk.
 * Without a dictionary (bdr-corebench codecs, README): level 3 sends
 * fewer bytes than zlib level 1 on every corpus (typescript 27.3% of the
 * raw bytes against 28.8%, esbuild 45.8/47.6, lodash 39.5/39.8, synthetic
 * 73.3/74.5) at 2 to 3.5 times its speed (123-251 MB/s against 57-120).
 * With the held window, on v2's changed files against v1's (64 KiB
 * pieces, each against v1's bytes at its offset, 4 KiB either side, at
 * most 32 KiB; bytes sent, compress MB/s per core, a shared machine):
 *              zlib-dict 6    zstd 3        zstd 6        zstd 9       zstd 19
 *   typescript 1.69 MB 45     1.82 MB 307   1.62 MB 106   1.56 MB 70   1.44 MB 6
 *   esbuild    4.27 MB 21     3.08 MB 171   2.91 MB 75    2.88 MB 54   2.65 MB 5
 *   lodash     107 KB 46      92 KB 186     82 KB 75      79 KB 78     74 KB 6
 *   synthetic  48.2 MB 36     44.5 MB 228   43.9 MB 109   43.9 MB 82   43.1 MB 9
 * Level 3 sends more than zlib-dict on typescript; 6 sends less on all,
 * 2 to 3.5 times as fast as zlib-dict; 9 saves 0.2-4% more at two thirds
 * the speed; 19 is far under the 20 MB/s floor. */
#define BDR_ZSTD_LEVEL_DEFAULT 3
#define BDR_ZSTD_DICT_LEVEL 6
#define BDR_ZSTD_LEVEL_MAX 19
/* The largest window a zstd frame may declare: a chunk (1 MiB) and its
 * dictionary (32 KiB) fit; a frame asking for more is refused before the
 * decoder sizes anything by it. */
#define BDR_ZSTD_WINDOWLOG_MAX 21
/* The compressed form must be below this share (percent) of the raw size,
 * else the chunk goes raw. */
#define BDR_COMPRESS_KEEP_PCT 97u

struct bdr_diag;
struct bdr_compressor;
struct bdr_decompressor;

/* level 1..9 (0 = BDR_COMPRESS_LEVEL_DEFAULT); -EINVAL outside, -ENOMEM. */
int bdr_compressor_new(struct bdr_compressor **out, int level);
/* A zstd compressor (codecs ZSTD and ZSTD_DICT): level 1..BDR_ZSTD_LEVEL_MAX
 * (0 = BDR_ZSTD_LEVEL_DEFAULT); -EINVAL outside, -ENOMEM. */
int bdr_compressor_new_zstd(struct bdr_compressor **out, int level);
void bdr_compressor_free(struct bdr_compressor *c);
/* Turns the entropy pre-check off (for measurements and tests). */
void bdr_compressor_set_precheck(struct bdr_compressor *c, bool on);

/* Encodes one chunk of len (1..BDR_CHUNK_MAX_LIMIT) bytes into out, which
 * must hold outcap >= len bytes, and sets *outlen and *codec. With a
 * dictionary (dict != NULL, 1..BDR_CODEC_DICT_MAX bytes) the codec is
 * ZLIB_DICT (ZSTD_DICT for a zstd compressor), else ZLIB (ZSTD); either
 * way RAW (a copy of in) when compression does not pay. A zstd chunk is
 * one frame with its content size and no checksum (the chunk's id checks
 * it). Returns 0, -EINVAL (lengths), -BDR_ELIMIT (dictionary too
 * long) or -ENOMEM. */
int bdr_compress_chunk(struct bdr_compressor *c, const uint8_t *in, uint32_t len,
		       const uint8_t *dict, uint32_t dictlen, uint8_t *out, uint32_t outcap,
		       uint32_t *outlen, uint8_t *codec);

/* True if a sample of the chunk looks random enough that deflate would not
 * get it under BDR_COMPRESS_KEEP_PCT (exposed for measurements). */
bool bdr_compress_looks_random(const uint8_t *in, uint32_t len);

int bdr_decompressor_new(struct bdr_decompressor **out);
void bdr_decompressor_free(struct bdr_decompressor *z);

/* Decodes in (inlen bytes, codec as received) into exactly rawlen bytes at
 * out. dict/dictlen: the dictionary the receiver resolved for ZLIB_DICT or
 * ZSTD_DICT (ignored otherwise). Every malformed case is -BDR_EFORMAT with
 * a diag: unknown codec, RAW whose length differs, a stream that is
 * corrupt, truncated, longer than rawlen, followed by trailing bytes, or
 * whose dictionary use does not match the codec or the dictionary; for
 * zstd also anything but one frame, a frame without a content size or
 * whose content size is not rawlen, one naming a dictionary id, and one
 * declaring a window over 2^BDR_ZSTD_WINDOWLOG_MAX. rawlen over
 * BDR_CHUNK_MAX_LIMIT or 0, or dictlen over BDR_CODEC_DICT_MAX, is
 * -BDR_ELIMIT. The zlib codecs allocate nothing here; the first zstd chunk
 * makes the object's one zstd context, reused for the next. */
int bdr_decompress_chunk(struct bdr_decompressor *z, uint8_t codec, const uint8_t *in,
			 uint32_t inlen, const uint8_t *dict, uint32_t dictlen, uint8_t *out,
			 uint32_t rawlen, struct bdr_diag *d);

#endif
