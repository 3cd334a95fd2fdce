/* Chunk codecs (see include/bdr/compress.h and proto/wire.md). One z_stream
 * (or one zstd context) per object, reset between chunks, so a chunk costs
 * no allocation but zstd's prefix table. */
#define ZLIB_CONST
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
/* ZSTD_getFrameHeader: the window a frame declares, checked before decoding. */
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>
#include <zstd_errors.h>

#include "bdr/chunker.h"
#include "bdr/compress.h"
#include "bdr/error.h"

_Static_assert(BDR_CHUNK_MAX_LIMIT == 1u << 20, "BDR_CODEC_DATA_MAX assumes 1 MiB chunks");
_Static_assert(BDR_CODEC_DATA_MAX <= UINT32_MAX, "data length fits a u32");

struct bdr_compressor {
	z_stream zs;   /* owns zlib's deflate state (zlib compressors) */
	ZSTD_CCtx *zc; /* owned; non-NULL: a zstd compressor */
	int level;
	bool precheck;
};

struct bdr_decompressor {
	z_stream zs;   /* owns zlib's inflate state */
	ZSTD_DCtx *zd; /* owned: made at the first zstd chunk */
};

/* ---- the random-data pre-check ---- */

/* The sample: SAMPLE_RUNS runs of SAMPLE_RUN bytes spread evenly over the
 * chunk (all of it if shorter), so a chunk that is half text is not judged
 * by its random half. */
#define SAMPLE_RUN 256u
#define SAMPLE_RUNS 4u
#define SAMPLE_MAX (SAMPLE_RUN * SAMPLE_RUNS)
/* Under this a chunk is simply tried: deflate on it is cheap. */
#define PRECHECK_MIN 1024u
/* Random bytes give a collision sum (the sum of squared byte counts) of
 * about n + n(n-1)/256 for a sample of n; the sample looks random when its
 * sum is within RANDOM_SLACK_PCT percent of that. That corresponds to an
 * order-2 Renyi entropy above ~7.9 bits per byte; chunks that deflate to
 * under 97% measure well below (see compress.h). */
#define RANDOM_SLACK_PCT 10u

static uint32_t sample_hist(const uint8_t *in, uint32_t len, uint32_t hist[256])
{
	uint32_t runs = SAMPLE_RUNS, run = SAMPLE_RUN;

	memset(hist, 0, 256 * sizeof(*hist));
	if (len <= SAMPLE_MAX)
		runs = 1, run = len;
	for (uint32_t r = 0; r < runs; r++) {
		const uint8_t *p = in + (uint64_t)(len - run) * r / (runs > 1 ? runs - 1 : 1);

		for (uint32_t i = 0; i < run; i++)
			hist[p[i]]++;
	}
	return runs * run;
}

bool bdr_compress_looks_random(const uint8_t *in, uint32_t len)
{
	uint32_t hist[256];
	uint64_t sum = 0;

	if (len < PRECHECK_MIN)
		return false;
	uint64_t n = sample_hist(in, len, hist);
	for (int i = 0; i < 256; i++)
		sum += (uint64_t)hist[i] * hist[i];
	uint64_t expect = n + n * (n - 1) / 256;
	return sum * 100 <= expect * (100 + RANDOM_SLACK_PCT);
}

/* ---- compression ---- */

int bdr_compressor_new(struct bdr_compressor **out, int level)
{
	struct bdr_compressor *c;

	*out = NULL;
	if (level == 0)
		level = BDR_COMPRESS_LEVEL_DEFAULT;
	if (level < 1 || level > 9)
		return -EINVAL;
	if (!(c = calloc(1, sizeof(*c))))
		return -ENOMEM;
	c->level = level;
	c->precheck = true;
	if (deflateInit2(&c->zs, level, Z_DEFLATED, MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
		free(c);
		return -ENOMEM;
	}
	*out = c;
	return 0;
}

int bdr_compressor_new_zstd(struct bdr_compressor **out, int level)
{
	struct bdr_compressor *c;

	*out = NULL;
	if (level == 0)
		level = BDR_ZSTD_LEVEL_DEFAULT;
	if (level < 1 || level > BDR_ZSTD_LEVEL_MAX)
		return -EINVAL;
	if (!(c = calloc(1, sizeof(*c))))
		return -ENOMEM;
	c->level = level;
	c->precheck = true;
	if (!(c->zc = ZSTD_createCCtx()) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(c->zc, ZSTD_c_compressionLevel, level)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(c->zc, ZSTD_c_contentSizeFlag, 1)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(c->zc, ZSTD_c_checksumFlag, 0)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(c->zc, ZSTD_c_dictIDFlag, 0))) {
		ZSTD_freeCCtx(c->zc);
		free(c);
		return -ENOMEM;
	}
	*out = c;
	return 0;
}

void bdr_compressor_free(struct bdr_compressor *c)
{
	if (!c)
		return;
	if (c->zc)
		ZSTD_freeCCtx(c->zc);
	else
		deflateEnd(&c->zs);
	free(c);
}

void bdr_compressor_set_precheck(struct bdr_compressor *c, bool on)
{
	c->precheck = on;
}

/* The largest compressed size worth sending: below KEEP_PCT of len. */
static uint32_t keep_limit(uint32_t len)
{
	uint64_t l = ((uint64_t)len * BDR_COMPRESS_KEEP_PCT + 99) / 100;

	return l ? (uint32_t)(l - 1) : 0;
}

/* Deflates into at most cap bytes; 1 and *outlen if it fit, 0 if not. */
static int try_deflate(struct bdr_compressor *c, const uint8_t *in, uint32_t len,
		       const uint8_t *dict, uint32_t dictlen, uint8_t *out, uint32_t cap,
		       uint32_t *outlen)
{
	z_stream *zs = &c->zs;

	if (deflateReset(zs) != Z_OK)
		return -EINVAL;
	if (dict && deflateSetDictionary(zs, dict, dictlen) != Z_OK)
		return -EINVAL;
	zs->next_in = in;
	zs->avail_in = len;
	zs->next_out = out;
	zs->avail_out = cap;
	int ret = deflate(zs, Z_FINISH);
	if (ret == Z_STREAM_END) {
		*outlen = cap - zs->avail_out;
		return 1;
	}
	/* Z_OK / Z_BUF_ERROR: the output did not fit under the limit. */
	return ret == Z_OK || ret == Z_BUF_ERROR ? 0 : -EINVAL;
}

/* One zstd frame into at most cap bytes: 1 if it fit, 0 if not. The
 * parameters stay set across a session reset; the prefix is for this
 * frame only. */
static int try_zstd(struct bdr_compressor *c, const uint8_t *in, uint32_t len,
		    const uint8_t *dict, uint32_t dictlen, uint8_t *out, uint32_t cap,
		    uint32_t *outlen)
{
	size_t n;

	if (ZSTD_isError(ZSTD_CCtx_reset(c->zc, ZSTD_reset_session_only)))
		return -EINVAL;
	if (dict && ZSTD_isError(ZSTD_CCtx_refPrefix(c->zc, dict, dictlen)))
		return -EINVAL;
	n = ZSTD_compress2(c->zc, out, cap, in, len);
	if (!ZSTD_isError(n)) {
		*outlen = (uint32_t)n;
		return 1;
	}
	switch (ZSTD_getErrorCode(n)) {
	case ZSTD_error_dstSize_tooSmall: return 0;
	case ZSTD_error_memory_allocation: return -ENOMEM;
	default: return -EINVAL;
	}
}

int bdr_compress_chunk(struct bdr_compressor *c, const uint8_t *in, uint32_t len,
		       const uint8_t *dict, uint32_t dictlen, uint8_t *out, uint32_t outcap,
		       uint32_t *outlen, uint8_t *codec)
{
	uint32_t cap = keep_limit(len);
	int fit = 0;

	*outlen = 0;
	*codec = BDR_CODEC_RAW;
	if (!len || len > BDR_CHUNK_MAX_LIMIT || outcap < len || (dict && !dictlen))
		return -EINVAL;
	if (dict && dictlen > BDR_CODEC_DICT_MAX)
		return -BDR_ELIMIT;
	/* With a dictionary the sender chose similar held bytes on purpose:
	 * even random-looking data may then match. */
	if (cap && (dict || !c->precheck || !bdr_compress_looks_random(in, len)))
		fit = c->zc ? try_zstd(c, in, len, dict, dictlen, out, cap, outlen) :
			      try_deflate(c, in, len, dict, dictlen, out, cap, outlen);
	if (fit < 0)
		return fit;
	if (fit && c->zc) {
		*codec = dict ? BDR_CODEC_ZSTD_DICT : BDR_CODEC_ZSTD;
		return 0;
	}
	if (fit) {
		*codec = dict ? BDR_CODEC_ZLIB_DICT : BDR_CODEC_ZLIB;
		return 0;
	}
	memcpy(out, in, len);
	*outlen = len;
	return 0;
}

/* ---- decompression ---- */

int bdr_decompressor_new(struct bdr_decompressor **out)
{
	struct bdr_decompressor *z;

	*out = NULL;
	if (!(z = calloc(1, sizeof(*z))))
		return -ENOMEM;
	if (inflateInit2(&z->zs, MAX_WBITS) != Z_OK) {
		free(z);
		return -ENOMEM;
	}
	*out = z;
	return 0;
}

void bdr_decompressor_free(struct bdr_decompressor *z)
{
	if (!z)
		return;
	inflateEnd(&z->zs);
	ZSTD_freeDCtx(z->zd);
	free(z);
}

static const char *codec_name(uint8_t codec)
{
	switch (codec) {
	case BDR_CODEC_RAW: return "RAW";
	case BDR_CODEC_ZLIB: return "ZLIB";
	case BDR_CODEC_ZLIB_DICT: return "ZLIB_DICT";
	case BDR_CODEC_ZSTD: return "ZSTD";
	case BDR_CODEC_ZSTD_DICT: return "ZSTD_DICT";
	default: return "unknown";
	}
}

/* Supplies the dictionary when the stream asks for one. */
static int set_dict(z_stream *zs, uint8_t codec, const uint8_t *dict, uint32_t dictlen,
		    struct bdr_diag *d)
{
	if (codec != BDR_CODEC_ZLIB_DICT)
		return bdr_diag_set(d, -BDR_EFORMAT, "codec ZLIB: the stream asks for a dictionary");
	if (!dict || !dictlen)
		return bdr_diag_set(d, -EINVAL, "codec ZLIB_DICT: no dictionary supplied");
	if (inflateSetDictionary(zs, dict, dictlen) != Z_OK)
		return bdr_diag_set(d, -BDR_EFORMAT,
				    "codec ZLIB_DICT: the dictionary of %u bytes does not match the "
				    "stream's (DICTID %08lx)",
				    dictlen, (unsigned long)zs->adler);
	return 0;
}

static int inflate_exact(struct bdr_decompressor *z, uint8_t codec, const uint8_t *in,
			 uint32_t inlen, const uint8_t *dict, uint32_t dictlen, uint8_t *out,
			 uint32_t rawlen, struct bdr_diag *d)
{
	z_stream *zs = &z->zs;
	bool used_dict = false;
	int ret, err;

	if (inflateReset(zs) != Z_OK)
		return bdr_diag_set(d, -EINVAL, "inflateReset failed");
	zs->next_in = in;
	zs->avail_in = inlen;
	zs->next_out = out;
	zs->avail_out = rawlen;
	ret = inflate(zs, Z_FINISH);
	if (ret == Z_NEED_DICT) {
		if ((err = set_dict(zs, codec, dict, dictlen, d)))
			return err;
		used_dict = true;
		ret = inflate(zs, Z_FINISH);
	}
	uint32_t got = rawlen - zs->avail_out;
	switch (ret) {
	case Z_STREAM_END:
		break;
	case Z_OK:
	case Z_BUF_ERROR:
		if (!zs->avail_out)
			return bdr_diag_set(d, -BDR_EFORMAT,
					    "codec %s: the stream does not end within %u bytes",
					    codec_name(codec), rawlen);
		return bdr_diag_set(d, -BDR_EFORMAT,
				    "codec %s: the stream is truncated after %u of %u bytes",
				    codec_name(codec), got, rawlen);
	case Z_MEM_ERROR:
		return bdr_diag_set(d, -ENOMEM, "inflate: out of memory");
	default:
		return bdr_diag_set(d, -BDR_EFORMAT, "codec %s: corrupt zlib stream (%s)",
				    codec_name(codec), zs->msg ? zs->msg : "error");
	}
	if (codec == BDR_CODEC_ZLIB_DICT && !used_dict)
		return bdr_diag_set(d, -BDR_EFORMAT, "codec ZLIB_DICT: the stream has no dictionary");
	if (got != rawlen)
		return bdr_diag_set(d, -BDR_EFORMAT, "codec %s: the stream ends after %u of %u bytes",
				    codec_name(codec), got, rawlen);
	if (zs->avail_in)
		return bdr_diag_set(d, -BDR_EFORMAT, "codec %s: %u bytes after the end of the stream",
				    codec_name(codec), zs->avail_in);
	return 0;
}

/* The frame's header, before anything is decoded: one zstd frame of
 * exactly rawlen bytes, no dictionary id, a window within the cap. */
static int zstd_check_frame(uint8_t codec, const uint8_t *in, uint32_t inlen, uint32_t rawlen,
			    struct bdr_diag *d)
{
	ZSTD_frameHeader h;
	size_t r = ZSTD_getFrameHeader(&h, in, inlen), fsize;

	if (r > 0) /* ZSTD_isError or more bytes needed */
		return bdr_diag_set(d, -BDR_EFORMAT, "codec %s: not a zstd frame (%s)",
				    codec_name(codec),
				    ZSTD_isError(r) ? ZSTD_getErrorName(r) : "truncated header");
	if (h.frameType != ZSTD_frame)
		return bdr_diag_set(d, -BDR_EFORMAT, "codec %s: a skippable frame", codec_name(codec));
	if (h.frameContentSize != rawlen)
		return h.frameContentSize == ZSTD_CONTENTSIZE_UNKNOWN ?
			       bdr_diag_set(d, -BDR_EFORMAT, "codec %s: the frame has no content size",
					    codec_name(codec)) :
			       bdr_diag_set(d, -BDR_EFORMAT,
					    "codec %s: the frame's content size %llu is not the "
					    "chunk's %u",
					    codec_name(codec), h.frameContentSize, rawlen);
	if (h.windowSize > (1ull << BDR_ZSTD_WINDOWLOG_MAX))
		return bdr_diag_set(d, -BDR_EFORMAT,
				    "codec %s: the frame's window of %llu bytes exceeds %llu",
				    codec_name(codec), h.windowSize, 1ull << BDR_ZSTD_WINDOWLOG_MAX);
	if (h.dictID)
		return bdr_diag_set(d, -BDR_EFORMAT, "codec %s: the frame names dictionary id %u",
				    codec_name(codec), h.dictID);
	fsize = ZSTD_findFrameCompressedSize(in, inlen);
	if (ZSTD_isError(fsize))
		return bdr_diag_set(d, -BDR_EFORMAT, "codec %s: corrupt zstd frame (%s)",
				    codec_name(codec), ZSTD_getErrorName(fsize));
	if (fsize != inlen)
		return bdr_diag_set(d, -BDR_EFORMAT, "codec %s: %zu bytes after the end of the frame",
				    codec_name(codec), (size_t)inlen - fsize);
	return 0;
}

static int zstd_exact(struct bdr_decompressor *z, uint8_t codec, const uint8_t *in,
		      uint32_t inlen, const uint8_t *dict, uint32_t dictlen, uint8_t *out,
		      uint32_t rawlen, struct bdr_diag *d)
{
	int err;
	size_t n;

	if ((err = zstd_check_frame(codec, in, inlen, rawlen, d)))
		return err;
	if (codec == BDR_CODEC_ZSTD_DICT && (!dict || !dictlen))
		return bdr_diag_set(d, -EINVAL, "codec ZSTD_DICT: no dictionary supplied");
	if (!z->zd) {
		/* The cap again in the decoder itself, should a later check move. */
		if (!(z->zd = ZSTD_createDCtx()) ||
		    ZSTD_isError(ZSTD_DCtx_setParameter(z->zd, ZSTD_d_windowLogMax,
							BDR_ZSTD_WINDOWLOG_MAX))) {
			ZSTD_freeDCtx(z->zd);
			z->zd = NULL;
			return bdr_diag_set(d, -ENOMEM, "zstd: out of memory");
		}
	}
	if (ZSTD_isError(ZSTD_DCtx_reset(z->zd, ZSTD_reset_session_only)))
		return bdr_diag_set(d, -EINVAL, "ZSTD_DCtx_reset failed");
	if (codec == BDR_CODEC_ZSTD_DICT && ZSTD_isError(ZSTD_DCtx_refPrefix(z->zd, dict, dictlen)))
		return bdr_diag_set(d, -ENOMEM, "zstd: out of memory for the dictionary");
	n = ZSTD_decompressDCtx(z->zd, out, rawlen, in, inlen);
	if (ZSTD_isError(n))
		return bdr_diag_set(d, ZSTD_getErrorCode(n) == ZSTD_error_memory_allocation ? -ENOMEM :
				    -BDR_EFORMAT, "codec %s: corrupt zstd frame (%s)",
				    codec_name(codec), ZSTD_getErrorName(n));
	if (n != rawlen)
		return bdr_diag_set(d, -BDR_EFORMAT, "codec %s: the frame ends after %zu of %u bytes",
				    codec_name(codec), n, rawlen);
	return 0;
}

int bdr_decompress_chunk(struct bdr_decompressor *z, uint8_t codec, const uint8_t *in,
			 uint32_t inlen, const uint8_t *dict, uint32_t dictlen, uint8_t *out,
			 uint32_t rawlen, struct bdr_diag *d)
{
	if (!rawlen || rawlen > BDR_CHUNK_MAX_LIMIT)
		return bdr_diag_set(d, -BDR_ELIMIT, "raw length %u is outside 1..%u", rawlen,
				    BDR_CHUNK_MAX_LIMIT);
	if (dictlen > BDR_CODEC_DICT_MAX)
		return bdr_diag_set(d, -BDR_ELIMIT, "dictionary of %u bytes exceeds %u", dictlen,
				    BDR_CODEC_DICT_MAX);
	switch (codec) {
	case BDR_CODEC_RAW:
		if (inlen != rawlen)
			return bdr_diag_set(d, -BDR_EFORMAT,
					    "codec RAW: %u bytes of data for a chunk of %u", inlen,
					    rawlen);
		memcpy(out, in, rawlen);
		return 0;
	case BDR_CODEC_ZLIB:
	case BDR_CODEC_ZLIB_DICT:
		if (!inlen)
			return bdr_diag_set(d, -BDR_EFORMAT, "codec %s: no data", codec_name(codec));
		if (inlen > BDR_CODEC_DATA_MAX)
			return bdr_diag_set(d, -BDR_ELIMIT, "codec %s: %u bytes of data exceed %u",
					    codec_name(codec), inlen, BDR_CODEC_DATA_MAX);
		return inflate_exact(z, codec, in, inlen, dict, dictlen, out, rawlen, d);
	case BDR_CODEC_ZSTD:
	case BDR_CODEC_ZSTD_DICT:
		if (!inlen)
			return bdr_diag_set(d, -BDR_EFORMAT, "codec %s: no data", codec_name(codec));
		if (inlen > BDR_CODEC_DATA_MAX)
			return bdr_diag_set(d, -BDR_ELIMIT, "codec %s: %u bytes of data exceed %u",
					    codec_name(codec), inlen, BDR_CODEC_DATA_MAX);
		return zstd_exact(z, codec, in, inlen, dict, dictlen, out, rawlen, d);
	default:
		return bdr_diag_set(d, -BDR_EFORMAT, "unknown codec %u", codec);
	}
}
