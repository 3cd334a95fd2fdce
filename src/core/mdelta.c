/* Manifest deltas (proto/wire.md, "Manifest delta"; include/bdr/mdelta.h).
 *
 * Encoder. Both byte strings are cut into small content-defined chunks
 * (a gear rolling hash over the last 64 bytes, cut where its top bits are
 * zero, between MIN_CHUNK and MAX_CHUNK bytes). The base's chunks go into
 * a hash table by XXH3-64 of their bytes; each chunk of cur is looked up,
 * verified with memcmp, and the match is extended backwards over the
 * bytes not yet emitted and forwards as far as the two agree. Cut points
 * depend only on the content of the last 64 bytes, so after an insertion
 * or a deletion the chunks of cur line up with the base's again within a
 * chunk or two, and the backward extension takes back what was skipped.
 *
 * A chunk of cur that is not in the table is also tried at the alignment
 * of the last COPY and a ref or two either side of it (find_aligned):
 * the commonest edits in a manifest are substitutions of the same length
 * (a file's new mtime, size and hash; a changed chunk id) and chunk lists
 * that gained or lost a ref, and the unchanged runs between such edits
 * are often too short to hold a whole chunk. Without it the synthetic
 * corpus's delta is 15% larger (182,669 bytes instead of 159,358).
 *
 * Memory: the table (8-byte slots, one per 24 to 48 base bytes: blen / 6
 * to blen / 3 bytes) and the output. Time: linear; on 64 MiB inputs about 0.3 s to
 * encode (two BLAKE2b passes are a third of it) and 0.2 s to apply.
 *
 * Decoder: every operation is checked against the base, the delta and the
 * declared length in a first pass that allocates nothing; the second pass
 * copies into one buffer of the declared length. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "bdr/codec.h"
#include "bdr/error.h"
#include "bdr/hash.h"
#include "bdr/manifest.h"
#include "bdr/mdelta.h"

/* Content-defined chunking of both inputs: cut where the top CUT_BITS of
 * the rolling hash are zero, MIN_CHUNK..MAX_CHUNK bytes. Measured on the
 * corpora (delta bytes of typescript / lodash / esbuild / synthetic):
 *   min 32, 2^7, max 1024:  1141 / 2164 / 22064 / 161008
 *   min 32, 2^6, max 512:   1141 / 2164 / 21844 / 159358  <- this
 *   min 24, 2^4, max 256:   1141 / 2164 / 21654 / 155663
 *   min 64, 2^8, max 2048:  1141 / 2164 / 23931 / 185972
 * Smaller chunks gain little past this and cost table memory. */
#define MIN_CHUNK 32u
#define CUT_BITS 6u
#define MAX_CHUNK 512u
/* Shortest COPY worth emitting. A COPY costs 13 bytes and splitting an
 * ADD around it 5 more, so every COPY of at least 18 bytes saves bytes:
 * the delta is never longer than HEADER + 5 + clen. */
#define MIN_MATCH 24u
/* A manifest chunk ref (id and length, proto/manifest.md): a file that
 * gained or lost a ref or two moves what follows by this much. */
#define REF_LEN (BDR_CHUNK_ID_LEN + 4)

#define GEAR_WINDOW 64u
#define COPY_OP_LEN 13u /* op u8, offset u64, len u32 */
#define ADD_OP_LEN 5u   /* op u8, len u32 */

_Static_assert(MIN_MATCH >= COPY_OP_LEN + ADD_OP_LEN, "a COPY never costs more than it saves");
_Static_assert(MIN_CHUNK >= MIN_MATCH && MIN_CHUNK < MAX_CHUNK, "chunk bounds");
_Static_assert(BDR_MAX_MANIFEST_BYTES < UINT32_MAX, "base offsets fit the table's 32 bits");

/* ---- encoder ---- */

struct enc {
	const uint8_t *base, *cur;
	size_t blen, clen;
	uint64_t gear[256];
	uint64_t *slots;   /* owned: (tag << 32) | (offset + 1), 0 empty */
	size_t mask;       /* slots - 1, a power of two minus one */
	size_t used, max_used;
	struct bdr_wbuf w; /* owns the delta until bdr_wbuf_finish */
	size_t emitted;    /* cur bytes emitted so far: the pending ADD starts here */
	uint64_t pend_off; /* the COPY not yet written, so that a COPY that */
	size_t pend_len;   /* continues it merges into it (0: none) */
	int64_t shift;     /* base offset - cur offset of the last COPY */
	bool shifted;      /* there was a COPY */
};

/* splitmix64 from a fixed seed: any fixed table works, the decoder never
 * sees where the cuts were. */
static void gear_init(uint64_t gear[256])
{
	uint64_t x = 0x6d64656c74612d67ull; /* "mdelta-g" */

	for (int i = 0; i < 256; i++) {
		uint64_t z = (x += 0x9e3779b97f4a7c15ull);
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
		gear[i] = z ^ (z >> 31);
	}
}

/* The rolling hash at pos: it depends on the 64 bytes before pos only. */
static uint64_t gear_at(const struct enc *e, const uint8_t *p, size_t pos)
{
	uint64_t h = 0;

	for (size_t i = pos > GEAR_WINDOW ? pos - GEAR_WINDOW : 0; i < pos; i++)
		h = (h << 1) + e->gear[p[i]];
	return h;
}

/* End of the chunk of p[0, n) that starts at pos; *h is the rolling hash
 * at pos and becomes the one at the returned end. */
static size_t next_cut(const struct enc *e, const uint8_t *p, size_t n, size_t pos, uint64_t *h)
{
	size_t end = n - pos > MAX_CHUNK ? pos + MAX_CHUNK : n;
	uint64_t x = *h;
	size_t i = pos;

	while (i < end) {
		x = (x << 1) + e->gear[p[i++]];
		if (i - pos >= MIN_CHUNK && !(x >> (64 - CUT_BITS)))
			break;
	}
	*h = x;
	return i;
}

static uint64_t chunk_hash(const uint8_t *p, size_t n)
{
	return XXH3_64bits(p, n);
}

static int table_init(struct enc *e)
{
	/* Chunks average about MIN_CHUNK + 2^CUT_BITS bytes: a table of a
	 * quarter of that per base byte stays under half full. */
	size_t want = e->blen / ((MIN_CHUNK + (1u << CUT_BITS)) / 2) + 16, n = 16;

	while (n < want)
		n *= 2;
	e->slots = calloc(n, sizeof(*e->slots));
	if (!e->slots)
		return -ENOMEM;
	e->mask = n - 1;
	e->max_used = n / 4 * 3;
	return 0;
}

/* Keeps the first chunk of each content; past the load limit (only a base
 * of unusually short chunks gets there) the rest are not indexed, which
 * costs matches, not correctness. */
static void table_add(struct enc *e, size_t off, size_t n)
{
	uint64_t h = chunk_hash(e->base + off, n);
	uint32_t tag = (uint32_t)(h >> 32);

	if (e->used >= e->max_used)
		return;
	for (size_t i = (size_t)h & e->mask;; i = (i + 1) & e->mask) {
		if (!e->slots[i]) {
			e->slots[i] = (uint64_t)tag << 32 | (uint64_t)(off + 1);
			e->used++;
			return;
		}
		if ((uint32_t)(e->slots[i] >> 32) == tag)
			return;
	}
}

static void table_fill(struct enc *e)
{
	uint64_t h = 0;

	for (size_t pos = 0, end; pos < e->blen; pos = end) {
		end = next_cut(e, e->base, e->blen, pos, &h);
		table_add(e, pos, end - pos);
	}
}

/* Where in the base cur[pos, pos + n) occurs as an indexed chunk. */
static bool table_find(const struct enc *e, size_t pos, size_t n, size_t *off)
{
	uint64_t h = chunk_hash(e->cur + pos, n);
	uint32_t tag = (uint32_t)(h >> 32);

	for (size_t i = (size_t)h & e->mask; e->slots[i]; i = (i + 1) & e->mask) {
		size_t o = (size_t)(uint32_t)e->slots[i] - 1;
		if ((uint32_t)(e->slots[i] >> 32) == tag && o <= e->blen && n <= e->blen - o &&
		    !memcmp(e->base + o, e->cur + pos, n)) {
			*off = o;
			return true;
		}
	}
	return false;
}

/* Length of the common prefix of a and b, up to n bytes. */
static size_t common_fwd(const uint8_t *a, const uint8_t *b, size_t n)
{
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		uint64_t x, y;
		memcpy(&x, a + i, 8);
		memcpy(&y, b + i, 8);
		if (x != y) /* little-endian: the first differing byte is the lowest */
			return i + (size_t)__builtin_ctzll(x ^ y) / 8;
	}
	while (i < n && a[i] == b[i])
		i++;
	return i;
}

/* Length of the common suffix of a[0, n) and b[0, n). */
static size_t common_bwd(const uint8_t *a, const uint8_t *b, size_t n)
{
	size_t i = 0;

	while (i < n && a[n - 1 - i] == b[n - 1 - i])
		i++;
	return i;
}

static void flush_copy(struct enc *e)
{
	if (!e->pend_len)
		return;
	bdr_w_u8(&e->w, BDR_MDELTA_COPY);
	bdr_w_u64(&e->w, e->pend_off);
	bdr_w_u32(&e->w, (uint32_t)e->pend_len);
	e->pend_len = 0;
}

/* cur[e->emitted, upto) as an ADD. */
static void emit_add(struct enc *e, size_t upto)
{
	size_t n = upto - e->emitted;

	if (!n)
		return;
	flush_copy(e);
	bdr_w_u8(&e->w, BDR_MDELTA_ADD);
	bdr_w_u32(&e->w, (uint32_t)n);
	bdr_w_bytes(&e->w, e->cur + e->emitted, n);
	e->emitted = upto;
}

/* cur[pos, pos + n) = base[off, off + n), after the ADD of what precedes. */
static void emit_copy(struct enc *e, size_t pos, size_t off, size_t n)
{
	emit_add(e, pos);
	if (e->pend_len && e->pend_off + e->pend_len == off && e->pend_len + n <= UINT32_MAX) {
		e->pend_len += n;
	} else {
		flush_copy(e);
		e->pend_off = off;
		e->pend_len = n;
	}
	e->emitted = pos + n;
	e->shift = (int64_t)off - (int64_t)pos;
	e->shifted = true;
}

/* How far cur[pos...] and base[off...] agree (capped so a COPY fits u32). */
static size_t extend(const struct enc *e, size_t pos, size_t off)
{
	size_t n = e->clen - pos < e->blen - off ? e->clen - pos : e->blen - off;

	return common_fwd(e->cur + pos, e->base + off, n < UINT32_MAX ? n : UINT32_MAX);
}

/* cur[pos, pos + n) = base[off, off + n): widens it backwards over the
 * bytes not yet emitted and forwards, and emits it; returns where the next
 * lookup starts (past the match even if it was too short to emit). */
static size_t take_match(struct enc *e, size_t pos, size_t off, size_t n)
{
	size_t back = pos - e->emitted < off ? pos - e->emitted : off;

	back = common_bwd(e->cur + pos - back, e->base + off - back, back);
	pos -= back, off -= back, n += back;
	n += extend(e, pos + n, off + n);
	if (n < MIN_MATCH)
		return pos + n;
	emit_copy(e, pos, off, n);
	return pos + n;
}

/* cur[pos, end) is not a chunk of the base. After a substitution (a
 * file's new mtime, size and hash; a changed chunk id) the two agree again
 * at the last COPY's alignment, or a ref or two away from it after a
 * chunk list grew or shrank; runs between such edits are often too short
 * to hold a whole chunk. The first k where MIN_MATCH bytes agree at one of
 * those alignments. */
static bool find_aligned(const struct enc *e, size_t pos, size_t end, size_t *at, size_t *off)
{
	static const int shifts[] = { 0, -REF_LEN, REF_LEN, -2 * REF_LEN, 2 * REF_LEN };

	if (!e->shifted)
		return false;
	for (size_t k = pos; k < end && k + MIN_MATCH <= e->clen; k++) {
		for (size_t j = 0; j < sizeof(shifts) / sizeof(shifts[0]); j++) {
			int64_t o = (int64_t)k + e->shift + shifts[j];
			if (o < 0 || (uint64_t)o + MIN_MATCH > e->blen)
				continue;
			if (e->cur[k] == e->base[o] && !memcmp(e->cur + k, e->base + o, MIN_MATCH)) {
				*at = k, *off = (size_t)o;
				return true;
			}
		}
	}
	return false;
}

static void encode_ops(struct enc *e)
{
	uint64_t h = 0;
	size_t pos = 0, end, off, at;

	while (pos < e->clen) {
		end = next_cut(e, e->cur, e->clen, pos, &h);
		if (table_find(e, pos, end - pos, &off))
			pos = take_match(e, pos, off, end - pos);
		else if (find_aligned(e, pos, end, &at, &off))
			pos = take_match(e, at, off, MIN_MATCH);
		else {
			pos = end;
			continue;
		}
		h = gear_at(e, e->cur, pos);
	}
	emit_add(e, e->clen);
	flush_copy(e);
}

static void hash_bytes(const uint8_t *p, size_t n, uint8_t out[BDR_MDELTA_HASH_LEN])
{
	struct bdr_filehash h;

	bdr_filehash_init(&h);
	bdr_filehash_update(&h, p, n);
	bdr_filehash_final(&h, out);
}

int bdr_mdelta_encode(const uint8_t *base, size_t blen, const uint8_t *cur, size_t clen,
		      uint8_t **out, size_t *olen)
{
	struct enc e = { .base = base, .cur = cur, .blen = blen, .clen = clen };
	uint8_t hash[BDR_MDELTA_HASH_LEN];
	int err;

	*out = NULL, *olen = 0;
	if (clen == 0)
		return -EINVAL;
	if (blen > BDR_MAX_MANIFEST_BYTES || clen > BDR_MAX_MANIFEST_BYTES)
		return -BDR_ELIMIT;
	gear_init(e.gear);
	if ((err = table_init(&e)))
		return err;
	table_fill(&e);
	bdr_wbuf_init(&e.w, BDR_MDELTA_HEADER_LEN + ADD_OP_LEN + clen);
	bdr_w_u8(&e.w, BDR_MDELTA_FORMAT);
	bdr_w_u64(&e.w, clen);
	hash_bytes(base, blen, hash);
	bdr_w_bytes(&e.w, hash, sizeof(hash));
	hash_bytes(cur, clen, hash);
	bdr_w_bytes(&e.w, hash, sizeof(hash));
	encode_ops(&e);
	free(e.slots);
	return bdr_wbuf_finish(&e.w, out, olen);
}

/* ---- decoder ---- */

struct hdr {
	uint64_t out_len;
	uint8_t base_hash[BDR_MDELTA_HASH_LEN];
	uint8_t out_hash[BDR_MDELTA_HASH_LEN];
};

static int read_header(struct bdr_rbuf *r, const uint8_t *base, size_t blen, size_t max_out,
		       struct hdr *h, struct bdr_diag *d)
{
	uint8_t have[BDR_MDELTA_HASH_LEN];
	uint8_t format = bdr_r_u8(r);

	h->out_len = bdr_r_u64(r);
	bdr_r_bytes(r, h->base_hash, sizeof(h->base_hash));
	bdr_r_bytes(r, h->out_hash, sizeof(h->out_hash));
	if (r->err)
		return bdr_diag_set(d, -BDR_EFORMAT, "delta of %zu bytes is shorter than its header",
				    r->len);
	if (format != BDR_MDELTA_FORMAT)
		return bdr_diag_set(d, -BDR_EVERSION, "delta format %u unknown", format);
	if (h->out_len == 0)
		return bdr_diag_set(d, -BDR_EFORMAT, "delta declares an empty result");
	if (h->out_len > max_out)
		return bdr_diag_set(d, -BDR_ELIMIT, "delta result of %" PRIu64 " bytes exceeds %zu",
				    h->out_len, max_out);
	hash_bytes(base, blen, have);
	if (memcmp(have, h->base_hash, sizeof(have)))
		return bdr_diag_set(d, -BDR_ENOTFOUND, "delta is against another base");
	return 0;
}

/* Reads op i, which may write at most room bytes; *src is what it copies. */
static int read_op(struct bdr_rbuf *r, const uint8_t *base, size_t blen, uint64_t room, size_t i,
		   const uint8_t **src, uint32_t *len, struct bdr_diag *d)
{
	uint8_t code = bdr_r_u8(r);
	uint64_t off = 0;

	if (r->err)
		return bdr_diag_set(d, -BDR_EFORMAT, "delta op %zu: the delta ends %" PRIu64
				    " bytes before the declared length", i, room);
	if (code != BDR_MDELTA_COPY && code != BDR_MDELTA_ADD)
		return bdr_diag_set(d, -BDR_EFORMAT, "delta op %zu: unknown op %u", i, code);
	if (code == BDR_MDELTA_COPY)
		off = bdr_r_u64(r);
	*len = bdr_r_u32(r);
	if (r->err)
		return bdr_diag_set(d, -BDR_EFORMAT, "delta op %zu: truncated %s", i,
				    code == BDR_MDELTA_COPY ? "COPY" : "ADD");
	if (*len == 0)
		return bdr_diag_set(d, -BDR_EFORMAT, "delta op %zu: %s of 0 bytes", i,
				    code == BDR_MDELTA_COPY ? "COPY" : "ADD");
	if (*len > room)
		return bdr_diag_set(d, -BDR_EFORMAT, "delta op %zu: %s of %" PRIu32
				    " bytes runs past the declared length (%" PRIu64 " bytes left)",
				    i, code == BDR_MDELTA_COPY ? "COPY" : "ADD", *len, room);
	if (code == BDR_MDELTA_ADD) {
		*src = bdr_r_view(r, *len);
		return *src ? 0 : bdr_diag_set(d, -BDR_EFORMAT, "delta op %zu: ADD of %" PRIu32
					      " bytes runs past the end of the delta", i, *len);
	}
	if (off > blen || *len > blen - off)
		return bdr_diag_set(d, -BDR_EFORMAT, "delta op %zu: COPY of %" PRIu32 " bytes at %"
				    PRIu64 " reads past the base (%zu bytes)", i, *len, off, blen);
	*src = base + off;
	return 0;
}

/* Checks every op (out NULL) or, once checked, writes them into out. */
static int walk(const uint8_t *base, size_t blen, const uint8_t *delta, size_t dlen,
		uint64_t out_len, uint8_t *out, struct bdr_diag *d)
{
	struct bdr_rbuf r;
	uint64_t done = 0;
	const uint8_t *src = NULL;
	uint32_t len = 0;
	size_t i;
	int err;

	bdr_rbuf_init(&r, delta, dlen);
	bdr_r_view(&r, BDR_MDELTA_HEADER_LEN);
	for (i = 0; done < out_len; i++) {
		if ((err = read_op(&r, base, blen, out_len - done, i, &src, &len, d)))
			return err;
		if (out)
			memcpy(out + done, src, len);
		done += len;
	}
	if (bdr_rbuf_end(&r))
		return bdr_diag_set(d, -BDR_EFORMAT, "delta: %zu bytes after the last op (op %zu)",
				    bdr_rbuf_left(&r), i - 1);
	return 0;
}

int bdr_mdelta_apply(const uint8_t *base, size_t blen, const uint8_t *delta, size_t dlen,
		     size_t max_out, uint8_t **out, size_t *olen, struct bdr_diag *d)
{
	struct bdr_rbuf r;
	struct hdr h;
	uint8_t have[BDR_MDELTA_HASH_LEN];
	uint8_t *buf;
	int err;

	*out = NULL, *olen = 0;
	bdr_rbuf_init(&r, delta, dlen);
	if ((err = read_header(&r, base, blen, max_out, &h, d)) ||
	    (err = walk(base, blen, delta, dlen, h.out_len, NULL, d)))
		return err;
	if (!(buf = malloc((size_t)h.out_len)))
		return bdr_diag_set(d, -ENOMEM, "delta: out of memory for %" PRIu64 " bytes",
				    h.out_len);
	walk(base, blen, delta, dlen, h.out_len, buf, NULL); /* checked above: cannot fail */
	hash_bytes(buf, (size_t)h.out_len, have);
	if (memcmp(have, h.out_hash, sizeof(have))) {
		free(buf);
		return bdr_diag_set(d, -BDR_EHASH, "delta result does not match its hash");
	}
	*out = buf;
	*olen = (size_t)h.out_len;
	return 0;
}
