/* Pre-staged bundles: the format of proto/bundle.md, its streaming writer
 * and reader, and create/import against the site library.
 *
 * The reader and writer share one notion of a bundle's chunk set: the
 * distinct (id, length) pairs of a manifest's files in (id, length) order
 * (manifest_refs). A bundle carries a subset of it in that order, so the
 * reader checks order, uniqueness and membership with one cursor and no
 * allocation per chunk. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bdr/bundle.h"
#include "bdr/chunker.h"
#include "bdr/codec.h"
#include "bdr/compress.h"
#include "bdr/db.h"
#include "bdr/error.h"
#include "bdr/library.h"
#include "bdr/rebuild.h"
#include "fsutil.h"

#define IO_BUF (256u * 1024)
#define CODEC_MAX BDR_CODEC_DATA_MAX

_Static_assert(sizeof(BDR_BUNDLE_MAGIC) - 1 == BDR_BUNDLE_MAGIC_LEN, "magic length");
_Static_assert(sizeof(BDR_BUNDLE_SIG_CONTEXT) - 1 == BDR_BUNDLE_SIG_CONTEXT_LEN, "context");
_Static_assert((uint64_t)BDR_BUNDLE_MAX_CHUNKS * BDR_CHUNK_MAX_LIMIT < INT64_MAX, "raw bytes fit");

/* ---- the chunk set of a manifest ---- */

static int ref_cmp(const struct bdr_chunk_ref *a, const struct bdr_chunk_ref *b)
{
	int c = bdr_chunk_id_cmp(&a->id, &b->id);

	return c ? c : (a->len > b->len) - (a->len < b->len);
}

static int ref_qcmp(const void *a, const void *b)
{
	return ref_cmp(a, b);
}

/* The distinct chunks of m's files in (id, length) order; *out malloc'd. */
static int manifest_refs(const struct bdr_manifest *m, struct bdr_chunk_ref **out, uint32_t *n)
{
	uint64_t total = 0;
	uint32_t k = 0;

	for (uint32_t i = 0; i < m->nentries; i++)
		total += m->entries[i].nchunks;
	*out = NULL, *n = 0;
	if (total > BDR_BUNDLE_MAX_CHUNKS)
		return -BDR_ELIMIT;
	if (!(*out = malloc((size_t)total * sizeof(**out) + 1)))
		return -ENOMEM;
	for (uint32_t i = 0; i < m->nentries; i++)
		for (uint32_t c = 0; c < m->entries[i].nchunks; c++)
			(*out)[k++] = m->entries[i].chunks[c];
	qsort(*out, k, sizeof(**out), ref_qcmp);
	*n = 0;
	for (uint32_t i = 0; i < k; i++)
		if (*n == 0 || ref_cmp(&(*out)[*n - 1], &(*out)[i]))
			(*out)[(*n)++] = (*out)[i];
	return 0;
}

/* Keeps the refs of a (sorted) not in b (sorted). */
static void refs_subtract(struct bdr_chunk_ref *a, uint32_t *na, const struct bdr_chunk_ref *b,
			  uint32_t nb)
{
	uint32_t k = 0, j = 0;

	for (uint32_t i = 0; i < *na; i++) {
		while (j < nb && ref_cmp(&b[j], &a[i]) < 0)
			j++;
		if (j == nb || ref_cmp(&b[j], &a[i]))
			a[k++] = a[i];
	}
	*na = k;
}

static const struct bdr_chunk_ref *refs_find(const struct bdr_chunk_ref *v, uint32_t n,
					     const struct bdr_chunk_ref *key)
{
	return bsearch(key, v, n, sizeof(*v), ref_qcmp);
}

/* What the key signs: the context, then the digest. */
static void sig_message(uint8_t msg[BDR_BUNDLE_SIG_CONTEXT_LEN + BDR_FILE_HASH_LEN],
			const uint8_t digest[BDR_FILE_HASH_LEN])
{
	memcpy(msg, BDR_BUNDLE_SIG_CONTEXT, BDR_BUNDLE_SIG_CONTEXT_LEN);
	memcpy(msg + BDR_BUNDLE_SIG_CONTEXT_LEN, digest, BDR_FILE_HASH_LEN);
}

/* ---- writing ---- */

struct bdr_bundle_writer {
	int fd;
	int err;                    /* sticky */
	uint8_t *buf;               /* owned: IO_BUF bytes waiting to be written */
	size_t len;
	struct bdr_filehash hash;
	struct bdr_compressor *z;   /* owned */
	uint8_t *zbuf;              /* owned: CODEC_MAX bytes */
	struct bdr_bundle_header h;
	struct bdr_chunk_ref last;
	struct bdr_bundle_stats st;
};

static void w_flush(struct bdr_bundle_writer *w)
{
	if (!w->err && w->len)
		w->err = bdr_fs_write_all(w->fd, w->buf, w->len);
	w->len = 0;
}

static void w_put(struct bdr_bundle_writer *w, const void *p, size_t n, bool hashed)
{
	const uint8_t *s = p;

	if (hashed)
		bdr_filehash_update(&w->hash, p, n);
	w->st.bundle_bytes += n;
	while (n && !w->err) {
		size_t k = IO_BUF - w->len < n ? IO_BUF - w->len : n;
		memcpy(w->buf + w->len, s, k);
		w->len += k, s += k, n -= k;
		if (w->len == IO_BUF)
			w_flush(w);
	}
}

static int encode_header(const struct bdr_bundle_header *h, uint8_t **out, size_t *len)
{
	struct bdr_wbuf b;

	bdr_wbuf_init(&b, 1024);
	bdr_w_bytes(&b, BDR_BUNDLE_MAGIC, BDR_BUNDLE_MAGIC_LEN);
	bdr_w_u32(&b, BDR_BUNDLE_FORMAT);
	bdr_w_u32(&b, 0);
	bdr_w_bytes(&b, h->signer, BDR_PK_LEN);
	bdr_w_str16(&b, h->site);
	bdr_w_str16(&b, h->package);
	bdr_w_u64(&b, h->version);
	bdr_w_u64(&b, h->base);
	bdr_w_i64(&b, h->created_ns);
	bdr_w_u64(&b, h->manifest_len);
	bdr_w_u32(&b, h->nchunks);
	bdr_w_u64(&b, h->raw_bytes);
	return bdr_wbuf_finish(&b, out, len);
}

static void writer_free(struct bdr_bundle_writer *w)
{
	if (!w)
		return;
	bdr_compressor_free(w->z);
	free(w->zbuf);
	free(w->buf);
	free(w);
}

int bdr_bundle_writer_begin(struct bdr_bundle_writer **out, int fd,
			    const struct bdr_bundle_header *h, const uint8_t *mbuf)
{
	struct bdr_bundle_writer *w = calloc(1, sizeof(*w));
	uint8_t *hb = NULL;
	size_t hlen = 0;
	int rc = -ENOMEM;

	*out = NULL;
	if (!w || !(w->buf = malloc(IO_BUF)) || !(w->zbuf = malloc(CODEC_MAX)) ||
	    (rc = bdr_compressor_new(&w->z, 0)) < 0 || (rc = encode_header(h, &hb, &hlen)) < 0) {
		writer_free(w);
		return rc;
	}
	w->fd = fd;
	w->h = *h;
	bdr_filehash_init(&w->hash);
	w_put(w, hb, hlen, true);
	w_put(w, mbuf, h->manifest_len, true);
	free(hb);
	*out = w;
	return w->err;
}

int bdr_bundle_writer_chunk(struct bdr_bundle_writer *w, const struct bdr_chunk_id *id,
			    const uint8_t *raw, uint32_t len)
{
	struct bdr_chunk_ref ref = { *id, len };
	uint8_t rec[BDR_BUNDLE_CHUNK_HDR], codec = 0;
	uint32_t zlen = 0;

	if (w->err)
		return w->err;
	if ((w->st.nchunks && ref_cmp(&w->last, &ref) >= 0) || w->st.nchunks == w->h.nchunks)
		return w->err = -EINVAL;
	if ((w->err = bdr_compress_chunk(w->z, raw, len, NULL, 0, w->zbuf, CODEC_MAX, &zlen, &codec)) < 0)
		return w->err;
	memcpy(rec, id->b, BDR_CHUNK_ID_LEN);
	for (int i = 0; i < 4; i++) {
		rec[16 + i] = (uint8_t)(len >> (8 * i));
		rec[21 + i] = (uint8_t)(zlen >> (8 * i));
	}
	rec[20] = codec;
	w_put(w, rec, sizeof(rec), true);
	w_put(w, w->zbuf, zlen, true);
	w->last = ref;
	w->st.nchunks++;
	w->st.raw_bytes += len;
	w->st.data_bytes += zlen;
	return w->err;
}

int bdr_bundle_writer_end(struct bdr_bundle_writer *w, const struct bdr_key *key,
			  struct bdr_bundle_stats *st)
{
	uint8_t digest[BDR_FILE_HASH_LEN], msg[BDR_BUNDLE_SIG_CONTEXT_LEN + BDR_FILE_HASH_LEN];
	uint8_t sig[BDR_SIG_LEN];
	int rc;

	if (!w->err && (w->st.nchunks != w->h.nchunks || w->st.raw_bytes != w->h.raw_bytes))
		w->err = -EINVAL;
	bdr_filehash_final(&w->hash, digest);
	sig_message(msg, digest);
	crypto_sign_detached(sig, NULL, msg, sizeof(msg), key->sk);
	w_put(w, sig, sizeof(sig), false);
	w_flush(w);
	rc = w->err;
	if (rc == 0 && st)
		*st = w->st;
	writer_free(w);
	return rc;
}

/* ---- reading: a hashing stream over pread ---- */

struct rd {
	int fd;
	uint64_t off;    /* of the next byte handed out */
	uint64_t size;   /* the file's, at open */
	uint8_t *buf;    /* owned: IO_BUF bytes read ahead */
	size_t pos, len;
	struct bdr_filehash hash;
	bool hashing;
};

static int rd_open(struct rd *r, int fd, struct bdr_diag *d)
{
	struct stat st;

	memset(r, 0, sizeof(*r));
	r->fd = fd;
	if (fstat(fd, &st) < 0)
		return bdr_diag_set(d, -errno, "cannot stat the bundle: %s", strerror(errno));
	if (!S_ISREG(st.st_mode))
		return bdr_diag_set(d, -EINVAL, "the bundle is not a regular file");
	r->size = (uint64_t)st.st_size;
	r->hashing = true;
	bdr_filehash_init(&r->hash);
	return (r->buf = malloc(IO_BUF)) ? 0 : -ENOMEM;
}

static void rd_close(struct rd *r)
{
	free(r->buf);
	r->buf = NULL;
}

static uint64_t rd_left(const struct rd *r)
{
	return r->size > r->off ? r->size - r->off : 0;
}

/* Exactly n bytes into dst (NULL: consumed, not kept); what names the
 * field for the truncation message. */
static int rd_get(struct rd *r, void *dst, uint64_t n, const char *what, struct bdr_diag *d)
{
	uint8_t *p = dst;

	while (n) {
		size_t k;
		if (r->pos == r->len) {
			ssize_t got = pread(r->fd, r->buf, IO_BUF, (off_t)r->off);
			if (got < 0)
				return bdr_diag_set(d, -errno, "reading the bundle at byte %" PRIu64 ": %s",
						    r->off, strerror(errno));
			if (got == 0)
				return bdr_diag_set(d, -BDR_EFORMAT, "bundle truncated: it ends at byte %"
						    PRIu64 ", inside %s", r->off, what);
			r->pos = 0, r->len = (size_t)got;
		}
		k = r->len - r->pos < n ? r->len - r->pos : (size_t)n;
		if (r->hashing)
			bdr_filehash_update(&r->hash, r->buf + r->pos, k);
		if (p)
			memcpy(p, r->buf + r->pos, k), p += k;
		r->pos += k, r->off += k, n -= k;
	}
	return 0;
}

static uint64_t le(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* A str16 name into out (max bytes), checked by check(). */
static int rd_name(struct rd *r, char *out, size_t max, const char *what,
		   int (*check)(const char *, struct bdr_diag *), struct bdr_diag *d)
{
	uint8_t lb[2];
	size_t n;
	int rc = rd_get(r, lb, 2, what, d);

	if (rc < 0)
		return rc;
	if ((n = le(lb, 2)) > max)
		return bdr_diag_set(d, -BDR_ELIMIT, "bundle header: %s of %zu bytes (at most %zu)", what,
				    n, max);
	if ((rc = rd_get(r, out, n, what, d)) < 0)
		return rc;
	out[n] = 0;
	if (memchr(out, 0, n))
		return bdr_diag_set(d, -BDR_EFORMAT, "bundle header: %s contains a NUL byte", what);
	return check(out, d);
}

/* ---- reading: the header ---- */

static int check_fixed(const uint8_t *p, struct bdr_bundle_header *h, struct bdr_diag *d)
{
	uint64_t format = le(p + 8, 4), flags = le(p + 12, 4);

	if (memcmp(p, BDR_BUNDLE_MAGIC, BDR_BUNDLE_MAGIC_LEN))
		return bdr_diag_set(d, -BDR_EFORMAT, "not a bdr bundle (bad magic)");
	if (format != BDR_BUNDLE_FORMAT)
		return bdr_diag_set(d, -BDR_EVERSION, "bundle format %" PRIu64 " (this bdr reads %d)",
				    format, BDR_BUNDLE_FORMAT);
	if (flags)
		return bdr_diag_set(d, -BDR_EFORMAT, "bundle header: unknown flags %#" PRIx64, flags);
	memcpy(h->signer, p + 16, BDR_PK_LEN);
	return 0;
}

/* The counts after the names, checked against their limits and against
 * the bytes the file has left (before anything is allocated for them). */
static int check_counts(const uint8_t *p, struct bdr_bundle_header *h, uint64_t left,
			uint64_t max_manifest, struct bdr_diag *d)
{
	h->version = le(p, 8), h->base = le(p + 8, 8), h->created_ns = (int64_t)le(p + 16, 8);
	h->manifest_len = le(p + 24, 8), h->nchunks = (uint32_t)le(p + 32, 4);
	h->raw_bytes = le(p + 36, 8);
	if (h->version > BDR_VERSION_MAX)
		return bdr_diag_set(d, -BDR_ELIMIT, "bundle header: version %" PRIu64 " is above the "
				    "largest version number, %" PRIu64, h->version, BDR_VERSION_MAX);
	if (h->version == 0 || h->base >= h->version)
		return bdr_diag_set(d, -BDR_EFORMAT, "bundle header: version %" PRIu64 " against base %"
				    PRIu64 " (need 1 <= version, base < version)", h->version, h->base);
	if (h->manifest_len > max_manifest || h->nchunks > BDR_BUNDLE_MAX_CHUNKS)
		return bdr_diag_set(d, -BDR_ELIMIT, "bundle header: a manifest of %" PRIu64 " bytes "
				    "(at most %" PRIu64 ") and %" PRIu32 " chunks (at most %u)",
				    h->manifest_len, max_manifest, h->nchunks, BDR_BUNDLE_MAX_CHUNKS);
	if (h->raw_bytes < h->nchunks || h->raw_bytes > (uint64_t)h->nchunks * BDR_CHUNK_MAX_LIMIT)
		return bdr_diag_set(d, -BDR_EFORMAT, "bundle header: %" PRIu64 " raw bytes cannot be %"
				    PRIu32 " chunks", h->raw_bytes, h->nchunks);
	if (h->manifest_len < BDR_SIG_LEN ||
	    left < h->manifest_len + (uint64_t)h->nchunks * (BDR_BUNDLE_CHUNK_HDR + 1) + BDR_SIG_LEN)
		return bdr_diag_set(d, -BDR_EFORMAT, "bundle truncated: %" PRIu64 " bytes left cannot "
				    "hold a manifest of %" PRIu64 " bytes, %" PRIu32 " chunks and the "
				    "signature", left, h->manifest_len, h->nchunks);
	return 0;
}

static int parse_header(struct rd *r, struct bdr_bundle_header *h, uint64_t max_manifest,
			struct bdr_diag *d)
{
	uint8_t fixed[16 + BDR_PK_LEN], counts[44];
	int rc;

	memset(h, 0, sizeof(*h));
	if ((rc = rd_get(r, fixed, sizeof(fixed), "the header", d)) < 0 ||
	    (rc = check_fixed(fixed, h, d)) < 0 ||
	    (rc = rd_name(r, h->site, BDR_MAX_SITE_NAME, "the site name", bdr_manifest_check_site, d)) < 0 ||
	    (rc = rd_name(r, h->package, BDR_MAX_PACKAGE_NAME, "the package name",
			  bdr_manifest_check_package, d)) < 0 ||
	    (rc = rd_get(r, counts, sizeof(counts), "the header", d)) < 0)
		return rc;
	return check_counts(counts, h, rd_left(r), max_manifest, d);
}

/* ---- reading: chunks and the signature ---- */

/* Pass two's consumer of one chunk: refs[j] of the set, its data as
 * stored. */
typedef int chunk_fn(void *arg, uint32_t j, uint8_t codec, const uint8_t *data, uint32_t len,
		     struct bdr_diag *d);

struct chunk_rec {
	struct bdr_chunk_ref ref;
	uint8_t codec;
	uint32_t len;
};

static int check_chunk(const uint8_t *p, uint32_t i, struct chunk_rec *c, struct bdr_diag *d)
{
	char hex[33];

	memcpy(c->ref.id.b, p, BDR_CHUNK_ID_LEN);
	c->ref.len = (uint32_t)le(p + 16, 4);
	c->codec = p[20];
	c->len = (uint32_t)le(p + 21, 4);
	bdr_chunk_id_hex(&c->ref.id, hex);
	if (c->ref.len == 0 || c->ref.len > BDR_CHUNK_MAX_LIMIT)
		return bdr_diag_set(d, c->ref.len ? -BDR_ELIMIT : -BDR_EFORMAT,
				    "bundle chunk #%" PRIu32 " (%s): raw length %" PRIu32, i, hex, c->ref.len);
	if (c->codec != BDR_CODEC_RAW && c->codec != BDR_CODEC_ZLIB)
		return bdr_diag_set(d, -BDR_EFORMAT, "bundle chunk #%" PRIu32 " (%s): codec %u", i,
				    hex, c->codec);
	if ((c->codec == BDR_CODEC_RAW && c->len != c->ref.len) || c->len == 0 || c->len > CODEC_MAX)
		return bdr_diag_set(d, c->len > CODEC_MAX ? -BDR_ELIMIT : -BDR_EFORMAT,
				    "bundle chunk #%" PRIu32 " (%s): %" PRIu32 " stored bytes for %" PRIu32
				    " raw with codec %u", i, hex, c->len, c->ref.len, c->codec);
	return 0;
}

/* Moves *j to c's place in the set: c must be there and come after the
 * previous chunk. */
static int chunk_place(const struct bdr_bundle_verified *v, const struct chunk_rec *c, uint32_t i,
		       uint32_t *j, struct bdr_diag *d)
{
	char hex[33];

	bdr_chunk_id_hex(&c->ref.id, hex);
	if (i && ref_cmp(&v->refs[*j], &c->ref) >= 0)
		return bdr_diag_set(d, ref_cmp(&v->refs[*j], &c->ref) ? -BDR_EORDER : -BDR_EDUP,
				    "bundle chunk #%" PRIu32 " (%s): %s", i, hex,
				    ref_cmp(&v->refs[*j], &c->ref) ? "out of order" : "duplicate");
	while (*j < v->nrefs && ref_cmp(&v->refs[*j], &c->ref) < 0)
		(*j)++;
	if (*j == v->nrefs || ref_cmp(&v->refs[*j], &c->ref))
		return bdr_diag_set(d, -BDR_EFORMAT, "bundle chunk #%" PRIu32 " (%s, %" PRIu32
				    " bytes) is not a chunk of the manifest", i, hex, c->ref.len);
	return 0;
}

/* Every chunk record: checked and placed; pass one marks in_bundle and
 * skips the data, pass two hands it to fn. buf: CODEC_MAX bytes. */
static int parse_chunks(struct rd *r, struct bdr_bundle_verified *v, chunk_fn *fn, void *arg,
			uint8_t *buf, struct bdr_diag *d)
{
	uint8_t p[BDR_BUNDLE_CHUNK_HDR];
	uint64_t raw = 0;
	uint32_t j = 0;
	int rc = 0;

	for (uint32_t i = 0; rc == 0 && i < v->h.nchunks; i++) {
		struct chunk_rec c;
		if ((rc = rd_get(r, p, sizeof(p), "a chunk record", d)) < 0 ||
		    (rc = check_chunk(p, i, &c, d)) < 0 || (rc = chunk_place(v, &c, i, &j, d)) < 0 ||
		    (rc = rd_get(r, fn ? buf : NULL, c.len, "a chunk's data", d)) < 0)
			break;
		raw += c.ref.len;
		if (fn)
			rc = fn(arg, j, c.codec, buf, c.len, d);
		else
			v->in_bundle[j] = 1;
	}
	if (rc == 0 && raw != v->h.raw_bytes)
		rc = bdr_diag_set(d, -BDR_EFORMAT, "bundle chunks hold %" PRIu64 " raw bytes, the header "
				  "says %" PRIu64, raw, v->h.raw_bytes);
	return rc;
}

/* The digest of everything read so far, then the signature and the end. */
static int parse_trailer(struct rd *r, const struct bdr_bundle_header *h,
			 uint8_t digest[BDR_FILE_HASH_LEN], struct bdr_diag *d)
{
	uint8_t sig[BDR_SIG_LEN], msg[BDR_BUNDLE_SIG_CONTEXT_LEN + BDR_FILE_HASH_LEN], extra;
	int rc;

	bdr_filehash_final(&r->hash, digest);
	r->hashing = false;
	if ((rc = rd_get(r, sig, sizeof(sig), "the signature", d)) < 0)
		return rc;
	if (rd_left(r) || pread(r->fd, &extra, 1, (off_t)r->off) > 0)
		return bdr_diag_set(d, -BDR_EFORMAT, "bundle: bytes after the signature (at byte %" PRIu64
				    ")", r->off);
	sig_message(msg, digest);
	if (crypto_sign_verify_detached(sig, msg, sizeof(msg), h->signer))
		return bdr_diag_set(d, -BDR_ESIG, "the bundle's signature does not verify: it was "
				    "altered or damaged after site '%s' signed it", h->site);
	return 0;
}

/* ---- pass one ---- */

void bdr_bundle_verified_free(struct bdr_bundle_verified *v)
{
	free(v->mbuf);
	free(v->refs);
	free(v->in_bundle);
	memset(v, 0, sizeof(*v));
}

/* The manifest: read, signed by whom trust said, naming the header's
 * package and version; then its chunk set. */
static int read_manifest(struct rd *r, struct bdr_bundle_verified *v, const uint8_t *expect,
			 struct bdr_diag *d)
{
	struct bdr_manifest m;
	int rc;

	if (!(v->mbuf = malloc(v->h.manifest_len)))
		return -ENOMEM;
	if ((rc = rd_get(r, v->mbuf, v->h.manifest_len, "the manifest", d)) < 0)
		return rc;
	if ((rc = bdr_manifest_decode(v->mbuf, v->h.manifest_len, expect, &m, d)) < 0)
		return rc == -BDR_EKEY ? bdr_diag_set(d, rc, "the bundle's manifest is signed by a key "
						       "that site '%s' does not vouch for", v->h.site) : rc;
	if (strcmp(m.package, v->h.package) || m.version != v->h.version)
		rc = bdr_diag_set(d, -BDR_EFORMAT, "the bundle's manifest is of package '%s' version %"
				  PRIu64 ", not what its header says", m.package, m.version);
	else if ((rc = manifest_refs(&m, &v->refs, &v->nrefs)) == 0 &&
		 !(v->in_bundle = calloc(v->nrefs + 1, 1)))
		rc = -ENOMEM;
	bdr_manifest_free(&m);
	if (rc == 0 && v->h.nchunks > v->nrefs)
		rc = bdr_diag_set(d, -BDR_EFORMAT, "the bundle has %" PRIu32 " chunks; its manifest "
				  "names %" PRIu32, v->h.nchunks, v->nrefs);
	return rc;
}

static int verify_stream(struct rd *r, const struct bdr_bundle_read_req *req,
			 struct bdr_bundle_verified *v, uint8_t *buf, struct bdr_diag *d)
{
	const uint64_t max = req->max_manifest && req->max_manifest < BDR_MAX_MANIFEST_BYTES
				     ? req->max_manifest : BDR_MAX_MANIFEST_BYTES;
	const uint8_t *expect = NULL;
	int rc;

	if ((rc = parse_header(r, &v->h, max, d)) < 0 ||
	    (rc = req->trust(req->arg, &v->h, &expect, d)) < 0)
		return rc;
	v->any_origin = !expect;
	if (expect)
		memcpy(v->expect, expect, BDR_PK_LEN);
	if ((rc = read_manifest(r, v, expect, d)) < 0 ||
	    (rc = parse_chunks(r, v, NULL, NULL, buf, d)) < 0)
		return rc;
	return parse_trailer(r, &v->h, v->digest, d);
}

int bdr_bundle_verify(int fd, const struct bdr_bundle_read_req *req,
		      struct bdr_bundle_verified *v, struct bdr_diag *d)
{
	struct rd r;
	int rc;

	memset(v, 0, sizeof(*v));
	if ((rc = rd_open(&r, fd, d)) == 0)
		rc = verify_stream(&r, req, v, r.buf, d);
	v->size = r.size;
	rd_close(&r);
	if (rc < 0)
		bdr_bundle_verified_free(v);
	return rc;
}

/* ---- pass two and the rebuild ---- */

struct imp {
	struct bdr_bundle_verified v;   /* owned */
	struct bdr_rebuild *rb;         /* owned */
	struct bdr_decompressor *z;     /* owned */
	uint8_t *raw;                   /* owned: BDR_CHUNK_MAX_LIMIT bytes */
	uint8_t *data;                  /* owned: CODEC_MAX bytes */
	uint8_t *need;                  /* owned: per ref of v, 1 = feed it */
	struct bdr_bundle_stats st;
	bool fed;                       /* a chunk went into the rebuild */
};

/* Marks the chunks the rebuild lacks; the bundle must carry each. */
static int mark_needed(struct imp *im, struct bdr_diag *d)
{
	struct bdr_chunk_ref *miss;
	uint32_t n, lacking = 0;
	int rc = bdr_rebuild_missing(im->rb, &miss, &n, NULL);

	if (rc < 0)
		return rc;
	memset(im->need, 0, im->v.nrefs);
	for (uint32_t i = 0; i < n; i++) {
		const struct bdr_chunk_ref *f = refs_find(im->v.refs, im->v.nrefs, &miss[i]);
		if (f && im->v.in_bundle[f - im->v.refs])
			im->need[f - im->v.refs] = 1;
		else
			lacking++;
	}
	free(miss);
	if (lacking && im->v.h.base)
		return bdr_diag_set(d, -BDR_EMISSING, "the bundle carries only what a site holding "
				    "version %" PRIu64 " of '%s' lacks, and this site lacks %" PRIu32
				    " more chunks of version %" PRIu64 ": import version %" PRIu64
				    " first, or a bundle of the whole version", im->v.h.base,
				    im->v.h.package, lacking, im->v.h.version, im->v.h.base);
	if (lacking)
		return bdr_diag_set(d, -BDR_EMISSING, "this site lacks %" PRIu32 " chunks the bundle "
				    "does not carry", lacking);
	return 0;
}

static int feed(void *arg, uint32_t j, uint8_t codec, const uint8_t *data, uint32_t len,
		struct bdr_diag *d)
{
	struct imp *im = arg;
	const struct bdr_chunk_ref *ref = &im->v.refs[j];
	int rc;

	if (!im->need[j])
		return 0;
	im->fed = true;
	if ((rc = bdr_decompress_chunk(im->z, codec, data, len, NULL, 0, im->raw, ref->len, d)) < 0 ||
	    (rc = bdr_rebuild_add_chunk(im->rb, &ref->id, im->raw, ref->len, d)) < 0)
		return rc;
	im->need[j] = 0;
	im->st.nchunks++;
	im->st.raw_bytes += ref->len;
	im->st.data_bytes += len;
	return 0;
}

static bool header_eq(const struct bdr_bundle_header *a, const struct bdr_bundle_header *b)
{
	return !memcmp(a->signer, b->signer, BDR_PK_LEN) && !strcmp(a->site, b->site) &&
	       !strcmp(a->package, b->package) && a->version == b->version && a->base == b->base &&
	       a->created_ns == b->created_ns && a->manifest_len == b->manifest_len &&
	       a->nchunks == b->nchunks && a->raw_bytes == b->raw_bytes;
}

/* Pass two: the same bytes again (the digest says so at the end), the
 * needed chunks fed to the rebuild. */
static int apply_pass(struct imp *im, int fd, struct bdr_diag *d)
{
	struct bdr_bundle_header h;
	uint8_t digest[BDR_FILE_HASH_LEN];
	struct bdr_diag why = { { 0 } };
	struct rd r;
	int rc = rd_open(&r, fd, d);

	if (rc == 0 && (rc = parse_header(&r, &h, BDR_MAX_MANIFEST_BYTES, &why)) == 0 &&
	    !header_eq(&h, &im->v.h))
		rc = -BDR_ECHANGED;
	if (rc == 0 && (rc = rd_get(&r, NULL, h.manifest_len, "the manifest", &why)) == 0 &&
	    (rc = parse_chunks(&r, &im->v, feed, im, im->data, &why)) == 0 &&
	    (rc = parse_trailer(&r, &h, digest, &why)) == 0 &&
	    sodium_memcmp(digest, im->v.digest, sizeof(digest)))
		rc = -BDR_ECHANGED;
	rd_close(&r);
	/* Pass one accepted these bytes: a format error now means they
	 * changed underneath (the file was replaced or is being written). */
	if (rc == -BDR_ECHANGED || rc == -BDR_EFORMAT || rc == -BDR_ESIG || rc == -BDR_ELIMIT ||
	    rc == -BDR_EORDER || rc == -BDR_EDUP || rc == -BDR_EVERSION)
		return bdr_diag_set(d, -BDR_ECHANGED, "the bundle changed while it was imported (%s)",
				    why.msg[0] ? why.msg : "other bytes on the second reading");
	if (rc < 0)
		bdr_diag_set(d, rc, "%s", why.msg[0] ? why.msg : bdr_strerror(rc));
	return rc;
}

/* Feeds what is missing, assembles and activates; a file that fails its
 * BLAKE2b (a damaged held chunk) is rebuilt once more from the bundle's
 * bytes alone, as a receiver asks for it in full. */
static int import_rounds(struct imp *im, int fd, struct bdr_diag *d)
{
	int rc = bdr_decompressor_new(&im->z);

	if (rc == 0 && (!(im->raw = malloc(BDR_CHUNK_MAX_LIMIT)) || !(im->data = malloc(CODEC_MAX)) ||
			!(im->need = calloc(im->v.nrefs + 1, 1))))
		rc = -ENOMEM;
	for (int round = 0; rc == 0; round++) {
		const uint32_t *bad;
		uint32_t nbad;
		if ((rc = mark_needed(im, d)) < 0 || (rc = apply_pass(im, fd, d)) < 0)
			break;
		rc = bdr_rebuild_finish(im->rb, d);
		bad = bdr_rebuild_bad_files(im->rb, &nbad);
		if (rc != -BDR_EHASH || round > 0 || nbad == 0)
			break;
		for (uint32_t i = 0; i < nbad; i++)
			bdr_rebuild_refetch(im->rb, bad[i]);
		rc = 0;
	}
	return rc;
}

static void version_stats(const struct bdr_manifest *m, struct bdr_bundle_stats *st)
{
	for (uint32_t i = 0; i < m->nentries; i++) {
		st->files += m->entries[i].type == BDR_ENTRY_FILE;
		st->version_bytes += m->entries[i].size;
	}
}

static void imp_free(struct imp *im)
{
	bdr_rebuild_free(im->rb);
	bdr_decompressor_free(im->z);
	free(im->raw);
	free(im->data);
	free(im->need);
	bdr_bundle_verified_free(&im->v);
}

int bdr_bundle_import(struct bdr_library *lib, int fd, const struct bdr_bundle_read_req *req,
		      struct bdr_bundle_header *h, struct bdr_bundle_stats *st, struct bdr_diag *d)
{
	struct imp im = { 0 };
	uint32_t needed, before = 0;
	uint64_t bytes;
	int rc = bdr_bundle_verify(fd, req, &im.v, d);

	if (rc < 0)
		return rc;
	if (h)
		*h = im.v.h;
	im.st.bundle_bytes = im.v.size;
	rc = bdr_rebuild_begin(lib, im.v.mbuf, im.v.h.manifest_len, im.v.any_origin ? NULL : im.v.expect,
			       &im.rb, d);
	if (rc == -EEXIST) {
		im.st.held = true;
		rc = 0;
	} else if (rc == 0) {
		bdr_rebuild_progress(im.rb, &needed, &before, &bytes);
		version_stats(bdr_rebuild_manifest(im.rb), &im.st);
		rc = import_rounds(&im, fd, d);
		/* Nothing stays behind: not the chunks fed, nor an empty pack;
		 * an earlier network attempt's chunks do. */
		if (rc < 0 && (im.fed || before == 0))
			bdr_rebuild_discard(im.rb);
	}
	if (st)
		*st = im.st;
	imp_free(&im);
	return rc;
}

/* ---- create, from the library ---- */

/* The held file chunks are read from, kept open across chunks. */
struct src {
	int fd; /* owned, -1 if none */
	char path[PATH_MAX];
};

static int read_held(struct bdr_library *lib, const struct bdr_chunk_ref *ref, uint8_t *buf,
		     struct src *s, struct bdr_diag *d)
{
	struct bdr_db_loc loc;
	struct bdr_chunk_id got;
	char path[PATH_MAX], hex[33];
	int rc = bdr_db_chunk_find(bdr_library_db(lib), &ref->id, ref->len, &loc);

	bdr_chunk_id_hex(&ref->id, hex);
	if (rc == 0)
		rc = bdr_library_loc_path(lib, &loc, path, sizeof(path));
	if (rc == 0 && (s->fd < 0 || strcmp(path, s->path))) {
		if (s->fd >= 0)
			close(s->fd);
		if ((s->fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
			rc = -errno;
		memcpy(s->path, path, sizeof(path));
	}
	if (rc == 0)
		rc = bdr_fs_pread_all(s->fd, buf, ref->len, (off_t)loc.offset);
	if (rc < 0)
		return bdr_diag_set(d, rc == -BDR_ENOTFOUND ? -BDR_EMISSING : rc, "chunk %s: cannot read "
				    "it from the library: %s", hex, bdr_strerror(rc));
	bdr_chunk_id(&got, buf, ref->len);
	if (bdr_chunk_id_cmp(&got, &ref->id))
		return bdr_diag_set(d, -BDR_EHASH, "chunk %s read from %s does not match its id: the "
				    "library's copy is damaged", hex, path);
	return 0;
}

/* What a bundle of req carries: the version's manifest and distinct
 * chunks, less the base's. */
struct plan {
	struct bdr_manifest m;      /* owned */
	uint8_t *mbuf;              /* owned */
	size_t mlen;
	struct bdr_chunk_ref *refs; /* owned */
	uint32_t nrefs;
};

static int plan_base(struct bdr_library *lib, const struct bdr_bundle_create_req *req,
		     struct plan *p, struct bdr_diag *d)
{
	struct bdr_manifest b;
	struct bdr_chunk_ref *brefs = NULL;
	uint32_t nb = 0;
	int rc;

	if (req->base >= req->version)
		return bdr_diag_set(d, -EINVAL, "the base (%" PRIu64 ") must be older than the version (%"
				    PRIu64 ")", req->base, req->version);
	if ((rc = bdr_library_manifest_load(lib, req->package, req->base, &b, d)) < 0)
		return rc;
	if ((rc = manifest_refs(&b, &brefs, &nb)) == 0)
		refs_subtract(p->refs, &p->nrefs, brefs, nb);
	free(brefs);
	bdr_manifest_free(&b);
	return rc;
}

static int plan_create(struct bdr_library *lib, struct bdr_bundle_create_req *req, struct plan *p,
		       struct bdr_diag *d)
{
	int rc;

	bdr_manifest_init(&p->m);
	if (!req->version && (rc = bdr_library_latest(lib, req->package, &req->version)) < 0)
		return bdr_diag_set(d, rc, "no package '%s' in the library", req->package);
	if ((rc = bdr_library_manifest_load(lib, req->package, req->version, &p->m, d)) < 0 ||
	    (rc = bdr_library_manifest_read(lib, req->package, req->version, &p->mbuf, &p->mlen)) < 0 ||
	    (rc = manifest_refs(&p->m, &p->refs, &p->nrefs)) < 0)
		return rc;
	return req->base ? plan_base(lib, req, p, d) : 0;
}

static void plan_free(struct plan *p)
{
	bdr_manifest_free(&p->m);
	free(p->mbuf);
	free(p->refs);
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int write_plan(struct bdr_library *lib, const struct bdr_bundle_create_req *req,
		      const struct plan *p, int fd, struct bdr_bundle_stats *st, struct bdr_diag *d)
{
	struct bdr_bundle_header h = { .version = req->version, .base = req->base,
				       .created_ns = req->created_ns ? req->created_ns : now_ns(),
				       .manifest_len = p->mlen, .nchunks = p->nrefs };
	struct bdr_bundle_writer *w = NULL;
	struct src s = { .fd = -1 };
	uint8_t *buf = malloc(BDR_CHUNK_MAX_LIMIT);
	int rc = buf ? 0 : -ENOMEM;

	memcpy(h.signer, req->key->pk, BDR_PK_LEN);
	snprintf(h.site, sizeof(h.site), "%s", req->site);
	snprintf(h.package, sizeof(h.package), "%s", req->package);
	for (uint32_t i = 0; i < p->nrefs; i++)
		h.raw_bytes += p->refs[i].len;
	if (rc == 0 && (rc = bdr_bundle_writer_begin(&w, fd, &h, p->mbuf)) < 0)
		bdr_diag_set(d, rc, "writing the bundle: %s", bdr_strerror(rc));
	for (uint32_t i = 0; rc == 0 && i < p->nrefs; i++)
		if ((rc = read_held(lib, &p->refs[i], buf, &s, d)) == 0 &&
		    (rc = bdr_bundle_writer_chunk(w, &p->refs[i].id, buf, p->refs[i].len)) < 0)
			bdr_diag_set(d, rc, "writing the bundle: %s", bdr_strerror(rc));
	if (w && rc == 0 && (rc = bdr_bundle_writer_end(w, req->key, st)) < 0)
		bdr_diag_set(d, rc, "writing the bundle: %s", bdr_strerror(rc));
	else if (w && rc < 0)
		bdr_bundle_writer_end(w, req->key, NULL);
	if (s.fd >= 0)
		close(s.fd);
	free(buf);
	return rc;
}

int bdr_bundle_write(struct bdr_library *lib, struct bdr_bundle_create_req *req, int fd,
		     struct bdr_bundle_stats *st, struct bdr_diag *d)
{
	struct plan p = { .mbuf = NULL };
	struct bdr_bundle_stats s = { 0 };
	int rc = bdr_manifest_check_package(req->package, d);

	if (rc == 0 && (rc = plan_create(lib, req, &p, d)) == 0 &&
	    (rc = write_plan(lib, req, &p, fd, &s, d)) == 0)
		version_stats(&p.m, &s);
	if (st)
		*st = s;
	plan_free(&p);
	return rc;
}

int bdr_bundle_create(struct bdr_library *lib, struct bdr_bundle_create_req *req,
		      const char *path, struct bdr_bundle_stats *st, struct bdr_diag *d)
{
	char tmp[PATH_MAX], dir[PATH_MAX], *slash;
	int fd, rc;

	if (bdr_fs_path(tmp, sizeof(tmp), "%s.XXXXXX", path) < 0 ||
	    bdr_fs_path(dir, sizeof(dir), "%s", path) < 0)
		return bdr_diag_set(d, -ENAMETOOLONG, "%s: name too long", path);
	if (faccessat(AT_FDCWD, path, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
		return bdr_diag_set(d, -EEXIST, "%s exists: a bundle is never written over a file", path);
	if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0)
		return bdr_diag_set(d, -errno, "%s: %s", tmp, strerror(errno));
	rc = fchmod(fd, 0644) < 0 ? -errno : 0;
	if (rc == 0)
		rc = bdr_bundle_write(lib, req, fd, st, d);
	if (rc == 0 && fsync(fd) < 0)
		rc = bdr_diag_set(d, -errno, "%s: %s", tmp, strerror(errno));
	close(fd);
	if (rc == 0 && link(tmp, path) < 0)
		rc = bdr_diag_set(d, -errno, "%s: %s", path, strerror(errno));
	unlink(tmp);
	/* The new name must survive a power cut as well as the bytes. */
	if (rc == 0 && (slash = strrchr(dir, '/'))) {
		slash[slash == dir] = 0;
		bdr_fs_fsync_dir(dir);
	}
	return rc;
}
