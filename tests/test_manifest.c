/* Manifest encoding (proto/manifest.md). The bad cases are signed with a
 * valid key, so each proves a structural check of the decoder rather than
 * the signature. Struct-level defects go through the internal unchecked
 * encoder; byte-level ones (NUL bytes, counts, magic) through the
 * independent spec writer below, which never calls manifest.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include <criterion/criterion.h>

#include "bdr/chunker.h"
#include "bdr/codec.h"
#include "bdr/error.h"
#include "bdr/manifest.h"
#include "core/manifest_internal.h"
#include "testutil.h"

#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif

static struct bdr_key key_a, key_b;

static void keys(void)
{
	uint8_t seed[32];

	cr_assert_geq(sodium_init(), 0);
	memset(seed, 0xa1, sizeof(seed));
	crypto_sign_seed_keypair(key_a.pk, key_a.sk, seed);
	memset(seed, 0xb2, sizeof(seed));
	crypto_sign_seed_keypair(key_b.pk, key_b.sk, seed);
}

TestSuite(manifest, .init = keys);

/* ---- building manifests ---- */

static struct bdr_entry *add(struct bdr_manifest *m, const char *path, uint8_t type)
{
	struct bdr_entry *e = bdr_manifest_add(m);

	cr_assert_not_null(e);
	e->path = strdup(path);
	e->type = type;
	e->mode = type == BDR_ENTRY_FILE ? 0644 : 0755;
	e->mtime_ns = 1700000000123456789ll + (int64_t)strlen(path);
	return e;
}

static struct bdr_entry *add_dir(struct bdr_manifest *m, const char *path)
{
	return add(m, path, BDR_ENTRY_DIR);
}

/* A file of n chunks with these lengths; ids and hash are noise. */
static struct bdr_entry *add_file(struct bdr_manifest *m, const char *path, uint32_t n,
				  const uint32_t *lens)
{
	struct bdr_entry *e = add(m, path, BDR_ENTRY_FILE);

	tu_fill_random(e->hash, sizeof(e->hash), strlen(path) + 1);
	e->nchunks = n;
	e->chunks = n ? calloc(n, sizeof(*e->chunks)) : NULL;
	for (uint32_t k = 0; k < n; k++) {
		tu_fill_random(e->chunks[k].id.b, BDR_CHUNK_ID_LEN, 1000 * strlen(path) + k);
		e->chunks[k].len = lens[k];
		e->size += lens[k];
	}
	return e;
}

static struct bdr_entry *add_link(struct bdr_manifest *m, const char *path, const char *target)
{
	struct bdr_entry *e = add(m, path, BDR_ENTRY_SYMLINK);

	e->mode = 0777;
	e->target = target ? strdup(target) : NULL;
	e->size = target ? strlen(target) : 0;
	return e;
}

static void header(struct bdr_manifest *m, const char *package, const char *site)
{
	bdr_manifest_init(m);
	m->package = strdup(package);
	m->site = strdup(site);
	m->version = 42;
	m->created_ns = 1700000001000000000ll;
}

static const uint32_t lens3[] = { 1000, 20000, 5 };
static const uint32_t lens2[] = { 100, 200 };

/* Files with several chunks, an empty file, nested dirs, symlinks; added
 * in the order given (rev: reversed), not sorted. */
static void sample(struct bdr_manifest *m, int rev)
{
	static const char *order[] = { "bin", "bin/tool", "bin/tool-link", "a-b", "docs",
				       "docs/README", "empty", "lib", "lib/libx.so", "lib/sub",
				       "lib/sub/.hidden", "z" };
	const int n = sizeof(order) / sizeof(order[0]);

	header(m, "demo-pkg_1.0+x", "site-a.example");
	for (int j = 0; j < n; j++) {
		const char *p = order[rev ? n - 1 - j : j];
		if (!strcmp(p, "bin") || !strcmp(p, "docs") || !strcmp(p, "lib") || !strcmp(p, "lib/sub"))
			add_dir(m, p);
		else if (!strcmp(p, "bin/tool"))
			add_file(m, p, 3, lens3);
		else if (!strcmp(p, "bin/tool-link"))
			add_link(m, p, "tool");
		else if (!strcmp(p, "lib/libx.so"))
			add_link(m, p, "../bin/./tool");
		else if (!strcmp(p, "z"))
			add_link(m, p, "lib/sub/../../docs/README");
		else if (!strcmp(p, "empty"))
			add_file(m, p, 0, NULL);
		else
			add_file(m, p, 2, lens2);
	}
}

/* Valid base for the bad cases: d/, d/f, d/l -> f, top. */
static void base(struct bdr_manifest *m)
{
	header(m, "demo", "site-a");
	add_dir(m, "d");
	add_file(m, "d/f", 2, lens2);
	add_link(m, "d/l", "f");
	add_file(m, "top", 0, NULL);
}

static void encode_ok(struct bdr_manifest *m, uint8_t **buf, size_t *len)
{
	struct bdr_diag d = { { 0 } };

	cr_assert_eq(bdr_manifest_encode(m, &key_a, buf, len, &d), 0, "%s", d.msg);
}

static void assert_empty(const struct bdr_manifest *m)
{
	struct bdr_manifest z;

	bdr_manifest_init(&z);
	cr_assert_arr_eq(m, &z, sizeof(z), "a failed decode leaves the manifest empty");
}

/* Decodes (verifying with key_a as expected signer) and expects err with a
 * diag containing needle. */
static void expect_reject(const uint8_t *buf, size_t len, int err, const char *needle,
			  const char *what)
{
	struct bdr_manifest m;
	struct bdr_diag d = { { 0 } };
	int rc = bdr_manifest_decode(buf, len, key_a.pk, &m, &d);

	cr_assert_eq(rc, err, "%s: got %d (%s), want %d (%s); diag: %s", what, rc, bdr_strerror(rc),
		     err, bdr_strerror(err), d.msg);
	cr_assert_not_null(strstr(d.msg, needle), "%s: diag '%s' lacks '%s'", what, d.msg, needle);
	assert_empty(&m);
}

static void tw_sign(struct bdr_wbuf *w, uint8_t **out, size_t *len);

static void expect_reject_w(struct bdr_wbuf *w, int err, const char *needle, const char *what)
{
	uint8_t *buf;
	size_t len;

	tw_sign(w, &buf, &len);
	expect_reject(buf, len, err, needle, what);
	free(buf);
}

static void assert_entry_eq(const struct bdr_entry *a, const struct bdr_entry *b)
{
	cr_assert_str_eq(a->path, b->path);
	cr_assert_eq(a->type, b->type, "%s", a->path);
	cr_assert_eq(a->mode, b->mode, "%s", a->path);
	cr_assert_eq(a->mtime_ns, b->mtime_ns, "%s", a->path);
	cr_assert_eq(a->size, b->size, "%s", a->path);
	cr_assert_arr_eq(a->hash, b->hash, BDR_FILE_HASH_LEN, "%s", a->path);
	cr_assert_eq(!a->target, !b->target, "%s", a->path);
	if (a->target)
		cr_assert_str_eq(a->target, b->target);
	cr_assert_eq(a->nchunks, b->nchunks, "%s", a->path);
	for (uint32_t k = 0; k < a->nchunks; k++) {
		cr_assert_arr_eq(a->chunks[k].id.b, b->chunks[k].id.b, BDR_CHUNK_ID_LEN);
		cr_assert_eq(a->chunks[k].len, b->chunks[k].len);
	}
}

static void assert_manifest_eq(const struct bdr_manifest *a, const struct bdr_manifest *b)
{
	cr_assert_str_eq(a->package, b->package);
	cr_assert_eq(a->version, b->version);
	cr_assert_str_eq(a->site, b->site);
	cr_assert_eq(a->created_ns, b->created_ns);
	cr_assert_arr_eq(a->signer, b->signer, BDR_PK_LEN);
	cr_assert_eq(a->nentries, b->nentries);
	for (uint32_t i = 0; i < a->nentries; i++)
		assert_entry_eq(&a->entries[i], &b->entries[i]);
}

/* ---- an independent writer of proto/manifest.md ---- */

static void tw_str(struct bdr_wbuf *w, const void *p, size_t n)
{
	bdr_w_u16(w, (uint16_t)n);
	bdr_w_bytes(w, p, n);
}

static void tw_header(struct bdr_wbuf *w, const char *magic, uint32_t format, const void *pkg,
		      size_t pkglen, const void *site, size_t sitelen, uint32_t nentries)
{
	bdr_wbuf_init(w, 1 << 24);
	bdr_w_bytes(w, magic, 8);
	bdr_w_u32(w, format);
	tw_str(w, pkg, pkglen);
	bdr_w_u64(w, 42);
	tw_str(w, site, sitelen);
	bdr_w_i64(w, 1700000001000000000ll);
	bdr_w_bytes(w, key_a.pk, BDR_PK_LEN);
	bdr_w_u32(w, nentries);
}

static void tw_std_header(struct bdr_wbuf *w, uint32_t nentries)
{
	tw_header(w, "BDRMANIF", 1, "demo", 4, "site-a", 6, nentries);
}

/* Every field after the path, up to and including nchunks. */
static void tw_fields(struct bdr_wbuf *w, uint8_t type, uint16_t mode, int64_t mtime,
		      uint64_t size, const uint8_t *hash, uint32_t nchunks)
{
	static const uint8_t zero[BDR_FILE_HASH_LEN];

	bdr_w_u8(w, type);
	bdr_w_u16(w, mode);
	bdr_w_i64(w, mtime);
	bdr_w_u64(w, size);
	bdr_w_bytes(w, hash ? hash : zero, BDR_FILE_HASH_LEN);
	bdr_w_u32(w, nchunks);
}

/* An entry without hash or chunks, from raw path and target bytes. */
static void tw_raw(struct bdr_wbuf *w, const void *path, size_t plen, uint8_t type, uint64_t size,
		   const void *target, size_t tlen)
{
	tw_str(w, path, plen);
	tw_fields(w, type, type == BDR_ENTRY_FILE ? 0644 : 0755, 0, size, NULL, 0);
	tw_str(w, target, tlen);
}

static void tw_entry(struct bdr_wbuf *w, const struct bdr_entry *e)
{
	tw_str(w, e->path, strlen(e->path));
	tw_fields(w, e->type, (uint16_t)e->mode, e->mtime_ns, e->size, e->hash, e->nchunks);
	for (uint32_t k = 0; k < e->nchunks; k++) {
		bdr_w_bytes(w, e->chunks[k].id.b, BDR_CHUNK_ID_LEN);
		bdr_w_u32(w, e->chunks[k].len);
	}
	tw_str(w, e->target, e->target ? strlen(e->target) : 0);
}

static void tw_dir(struct bdr_wbuf *w, const char *path)
{
	tw_raw(w, path, strlen(path), BDR_ENTRY_DIR, 0, "", 0);
}

/* Appends the signature by key_a over everything written. */
static void tw_sign(struct bdr_wbuf *w, uint8_t **out, size_t *len)
{
	uint8_t *body;
	size_t n;

	cr_assert_eq(bdr_wbuf_finish(w, &body, &n), 0);
	*out = realloc(body, n + BDR_SIG_LEN);
	cr_assert_not_null(*out);
	crypto_sign_detached(*out + n, NULL, *out, n, key_a.sk);
	*len = n + BDR_SIG_LEN;
}

/* ---- valid manifests ---- */

Test(manifest, round_trip)
{
	struct bdr_manifest m, got;
	struct bdr_diag d = { { 0 } };
	uint8_t *buf;
	size_t len;

	sample(&m, 0);
	bdr_manifest_sort(&m);
	encode_ok(&m, &buf, &len);
	cr_assert_arr_eq(m.signer, key_a.pk, BDR_PK_LEN, "encode sets the signer");
	cr_assert_eq(bdr_manifest_decode(buf, len, key_a.pk, &got, &d), 0, "%s", d.msg);
	assert_manifest_eq(&m, &got);
	cr_assert_eq(bdr_manifest_validate(&got, &d), 0, "%s", d.msg);

	const struct bdr_entry *e = bdr_manifest_find(&got, "bin/tool");
	cr_assert_not_null(e);
	cr_assert_eq(e->nchunks, 3);
	cr_assert_eq(e->size, 21005);
	e = bdr_manifest_find(&got, "empty");
	cr_assert(e && e->size == 0 && e->nchunks == 0 && !e->chunks);
	e = bdr_manifest_find(&got, "lib/libx.so");
	cr_assert(e && e->type == BDR_ENTRY_SYMLINK);
	cr_assert_str_eq(e->target, "../bin/./tool");
	cr_assert_null(bdr_manifest_find(&got, "bin/to"));
	cr_assert_null(bdr_manifest_find(&got, "zz"));

	/* Without an expected signer the embedded one is trusted. */
	bdr_manifest_free(&got);
	cr_assert_eq(bdr_manifest_decode(buf, len, NULL, &got, &d), 0, "%s", d.msg);
	bdr_manifest_free(&got);
	bdr_manifest_free(&m);
	assert_empty(&m);
	free(buf);
}

Test(manifest, symlinks_through_symlinks_that_stay_inside_are_accepted)
{
	struct bdr_manifest m, back;
	uint8_t *buf;
	size_t len;

	bdr_manifest_init(&m);
	base(&m);
	add_dir(&m, "bin");
	add_dir(&m, "lib64");
	add_file(&m, "lib64/libx.so", 0, NULL);
	add_link(&m, "lib", "lib64");
	add_link(&m, "bin/x", "../lib/libx.so");
	add_link(&m, "bin/self", "../bin/../lib/../d/l");
	bdr_manifest_sort(&m);
	encode_ok(&m, &buf, &len);
	cr_assert_eq(bdr_manifest_decode(buf, len, NULL, &back, NULL), 0);
	bdr_manifest_free(&back);
	bdr_manifest_free(&m);
	free(buf);
}

Test(manifest, empty_manifest)
{
	struct bdr_manifest m, got;
	struct bdr_diag d;
	uint8_t *buf;
	size_t len;

	header(&m, "p", "s");
	encode_ok(&m, &buf, &len);
	cr_assert_eq(bdr_manifest_decode(buf, len, key_a.pk, &got, &d), 0, "%s", d.msg);
	assert_manifest_eq(&m, &got);
	bdr_manifest_free(&got);
	bdr_manifest_free(&m);
	free(buf);
}

Test(manifest, encoding_is_canonical)
{
	struct bdr_manifest a, b, got;
	struct bdr_diag d;
	uint8_t *ba, *ba2, *bb, *bg;
	size_t la, la2, lb, lg;

	sample(&a, 0);
	sample(&b, 1);
	cr_assert_neq(bdr_manifest_validate(&a, &d), 0, "unsorted entries do not validate");
	bdr_manifest_sort(&a);
	bdr_manifest_sort(&b);
	encode_ok(&a, &ba, &la);
	encode_ok(&a, &ba2, &la2);
	encode_ok(&b, &bb, &lb);
	cr_assert_eq(la, la2);
	cr_assert_arr_eq(ba, ba2, la, "encoding twice gives the same bytes");
	cr_assert_eq(la, lb);
	cr_assert_arr_eq(ba, bb, la, "insertion order does not matter once sorted");
	cr_assert_eq(bdr_manifest_decode(ba, la, NULL, &got, &d), 0, "%s", d.msg);
	encode_ok(&got, &bg, &lg);
	cr_assert_eq(la, lg);
	cr_assert_arr_eq(ba, bg, la, "decode then encode gives the same bytes");
	bdr_manifest_free(&a);
	bdr_manifest_free(&b);
	bdr_manifest_free(&got);
	free(ba), free(ba2), free(bb), free(bg);
}

Test(manifest, bytes_follow_the_spec)
{
	struct bdr_manifest m;
	struct bdr_wbuf w;
	uint8_t *mine, *spec;
	size_t lm, ls;

	base(&m);
	encode_ok(&m, &mine, &lm);
	tw_std_header(&w, m.nentries);
	for (uint32_t i = 0; i < m.nentries; i++)
		tw_entry(&w, &m.entries[i]);
	tw_sign(&w, &spec, &ls);
	cr_assert_eq(lm, ls);
	cr_assert_arr_eq(mine, spec, lm, "bdr_manifest_encode matches proto/manifest.md");
	cr_assert_arr_eq(mine, "BDRMANIF\x01\0\0\0", 12);
	bdr_manifest_free(&m);
	free(mine), free(spec);
}

/* Longest path and component, most chunks of the largest size: accepted. */
Test(manifest, limits_are_inclusive)
{
	struct bdr_manifest m, got;
	struct bdr_diag d = { { 0 } };
	char path[BDR_MAX_PATH + 1], comp[256];
	uint8_t *buf;
	size_t len = 0;

	header(&m, "p", "s");
	memset(comp, 'c', 240);
	comp[240] = '\0';
	path[0] = '\0';
	for (int i = 0; i < 16; i++) {
		len += (size_t)snprintf(path + len, sizeof(path) - len, "%s%s", i ? "/" : "", comp);
		add_dir(&m, path);
	}
	snprintf(path + len, sizeof(path) - len, "/%s", comp);
	cr_assert_eq(strlen(path), BDR_MAX_PATH);
	uint32_t big[2] = { BDR_CHUNK_MAX_LIMIT, 1 };
	add_file(&m, path, 2, big);
	memset(comp, 'n', 255);
	comp[255] = '\0';
	add_file(&m, comp, 0, NULL);
	char target[BDR_MAX_PATH + 1];
	memset(target, 'x', BDR_MAX_PATH);
	target[BDR_MAX_PATH] = '\0';
	add_link(&m, "l", target);
	bdr_manifest_sort(&m);
	free(m.package);
	m.package = calloc(1, BDR_MAX_PACKAGE_NAME + 1);
	memset(m.package, 'p', BDR_MAX_PACKAGE_NAME);
	free(m.site);
	m.site = calloc(1, BDR_MAX_SITE_NAME + 1);
	memset(m.site, 's', BDR_MAX_SITE_NAME);
	encode_ok(&m, &buf, &len);
	cr_assert_eq(bdr_manifest_decode(buf, len, key_a.pk, &got, &d), 0, "%s", d.msg);
	assert_manifest_eq(&m, &got);
	bdr_manifest_free(&m);
	bdr_manifest_free(&got);
	free(buf);
}

/* ---- the signature ---- */

Test(manifest, wrong_signer_is_rejected)
{
	struct bdr_manifest m, got;
	struct bdr_diag d;
	uint8_t *buf;
	size_t len;

	base(&m);
	encode_ok(&m, &buf, &len);
	cr_assert_eq(bdr_manifest_decode(buf, len, key_b.pk, &got, &d), -BDR_EKEY);
	cr_assert_not_null(strstr(d.msg, "expected"), "%s", d.msg);
	assert_empty(&got);
	/* Signed by b with a's key claimed as signer: the signature fails. */
	uint8_t *forged = malloc(len);
	memcpy(forged, buf, len);
	crypto_sign_detached(forged + len - BDR_SIG_LEN, NULL, forged, len - BDR_SIG_LEN, key_b.sk);
	cr_assert_eq(bdr_manifest_decode(forged, len, NULL, &got, &d), -BDR_ESIG);
	cr_assert_not_null(strstr(d.msg, "signature"), "%s", d.msg);
	assert_empty(&got);
	bdr_manifest_free(&m);
	free(buf), free(forged);
}

/* The header alone, signature unchecked: what a receiver reads to refuse a
 * manifest whose signer it could not accept before it verifies the rest. */
Test(manifest, peek_reads_the_header_claims)
{
	struct bdr_manifest m, got;
	struct bdr_diag d;
	uint8_t *buf;
	size_t len;

	base(&m);
	encode_ok(&m, &buf, &len);
	cr_assert_eq(bdr_manifest_peek(buf, len, &got, &d), 0, "%s", d.msg);
	cr_assert_str_eq(got.package, m.package);
	cr_assert_str_eq(got.site, m.site);
	cr_assert_eq(got.version, m.version);
	cr_assert_eq(got.created_ns, m.created_ns);
	cr_assert_arr_eq(got.signer, key_a.pk, BDR_PK_LEN);
	cr_assert_eq(got.nentries, 0);
	bdr_manifest_free(&got);
	/* A broken signature is not peek's business; a broken header is. */
	buf[len - 1] ^= 1;
	cr_assert_eq(bdr_manifest_peek(buf, len, &got, &d), 0, "%s", d.msg);
	bdr_manifest_free(&got);
	buf[0] ^= 1;
	cr_assert_eq(bdr_manifest_peek(buf, len, &got, &d), -BDR_EFORMAT);
	assert_empty(&got);
	cr_assert_eq(bdr_manifest_peek(buf, 30, &got, &d), -BDR_EFORMAT);
	assert_empty(&got);
	bdr_manifest_free(&m);
	free(buf);
}

Test(manifest, encode_refuses_mismatched_key)
{
	struct bdr_manifest m;
	struct bdr_key k = key_a;
	struct bdr_diag d;
	uint8_t *buf;
	size_t len;

	base(&m);
	memcpy(k.pk, key_b.pk, BDR_PK_LEN);
	cr_assert_eq(bdr_manifest_encode(&m, &k, &buf, &len, &d), -BDR_EKEY);
	cr_assert_null(buf);
	bdr_manifest_free(&m);
}

Test(manifest, every_single_byte_flip_is_rejected)
{
	struct bdr_manifest m, got;
	struct bdr_diag d;
	uint8_t *buf;
	size_t len;
	static const uint8_t flips[] = { 0x01, 0x80, 0xff };

	sample(&m, 0);
	bdr_manifest_sort(&m);
	encode_ok(&m, &buf, &len);
	for (size_t pos = 0; pos < len; pos++) {
		for (size_t f = 0; f < sizeof(flips); f++) {
			buf[pos] ^= flips[f];
			int rc = bdr_manifest_decode(buf, len, NULL, &got, &d);
			buf[pos] ^= flips[f];
			cr_assert_lt(rc, 0, "flip 0x%02x at %zu of %zu accepted", flips[f], pos, len);
			assert_empty(&got);
		}
	}
	bdr_manifest_free(&m);
	free(buf);
}

Test(manifest, every_truncation_is_rejected)
{
	struct bdr_manifest m, got;
	struct bdr_diag d;
	uint8_t *buf;
	size_t len;

	sample(&m, 0);
	bdr_manifest_sort(&m);
	encode_ok(&m, &buf, &len);
	for (size_t n = 0; n < len; n++) {
		/* A fresh copy of exactly n bytes, so ASan sees any read past it. */
		uint8_t *cut = malloc(n ? n : 1);
		memcpy(cut, buf, n);
		cr_assert_lt(bdr_manifest_decode(cut, n, NULL, &got, &d), 0, "truncated to %zu", n);
		assert_empty(&got);
		/* The structure alone rejects it too. */
		cr_assert_lt(bdr__manifest_decode_unsigned(cut, n, &got, &d), 0, "unsigned, %zu", n);
		assert_empty(&got);
		free(cut);
	}
	/* And one byte more. */
	uint8_t *longer = calloc(1, len + 1);
	memcpy(longer, buf, len);
	cr_assert_lt(bdr_manifest_decode(longer, len + 1, NULL, &got, &d), 0);
	bdr_manifest_free(&m);
	free(buf), free(longer);
}

/* ---- struct-level defects, signed correctly ---- */

struct bad_case {
	const char *what;
	void (*mutate)(struct bdr_manifest *m);
	int err;
	const char *needle; /* must appear in the diag */
	int nosort;
};

static char long_path[BDR_MAX_PATH + 256], long_comp[300], long_target[BDR_MAX_PATH + 2];

static void mk_longs(void)
{
	memset(long_comp, 'c', 256);
	long_comp[256] = '\0';
	size_t n = 0;
	n += (size_t)snprintf(long_path, sizeof(long_path), "d");
	while (n <= BDR_MAX_PATH)
		n += (size_t)snprintf(long_path + n, sizeof(long_path) - n, "/%.200s", long_comp);
	memset(long_target, 't', BDR_MAX_PATH + 1);
	long_target[BDR_MAX_PATH + 1] = '\0';
}

static void m_abs(struct bdr_manifest *m) { add_file(m, "/abs", 0, NULL); }
static void m_dotdot(struct bdr_manifest *m) { add_file(m, "d/../x", 0, NULL); }
static void m_dotdot_end(struct bdr_manifest *m) { add_dir(m, "d/.."); }
static void m_dot(struct bdr_manifest *m) { add_file(m, "d/./x", 0, NULL); }
static void m_dot_only(struct bdr_manifest *m) { add_dir(m, "."); }
static void m_empty_comp(struct bdr_manifest *m) { add_file(m, "d//x", 0, NULL); }
static void m_trailing(struct bdr_manifest *m) { add_file(m, "d/x/", 0, NULL); }
static void m_long_comp(struct bdr_manifest *m) { char p[300]; snprintf(p, sizeof(p), "d/%s", long_comp); add_file(m, p, 0, NULL); }
static void m_long_path(struct bdr_manifest *m) { add_file(m, long_path, 0, NULL); }
static void m_empty_path(struct bdr_manifest *m) { add_file(m, "", 0, NULL); }
static void m_dup(struct bdr_manifest *m) { add_file(m, "top", 0, NULL); }
static void m_dup_dir(struct bdr_manifest *m) { add_dir(m, "d"); }
static void m_unsorted(struct bdr_manifest *m)
{
	struct bdr_entry t = m->entries[1];
	m->entries[1] = m->entries[2];
	m->entries[2] = t;
}
static void m_no_parent(struct bdr_manifest *m) { add_file(m, "nodir/x", 0, NULL); }
static void m_deep_no_parent(struct bdr_manifest *m) { add_file(m, "d/e/x", 0, NULL); }
static void m_parent_link(struct bdr_manifest *m) { add_file(m, "d/l/x", 0, NULL); }
static void m_parent_file(struct bdr_manifest *m) { add_dir(m, "top/x"); }
static void m_link_abs(struct bdr_manifest *m) { add_link(m, "d/abs", "/etc/passwd"); }
static void m_link_up2(struct bdr_manifest *m) { add_link(m, "d/esc", "../../x"); }
static void m_link_up1(struct bdr_manifest *m) { add_link(m, "esc", ".."); }
static void m_link_mid(struct bdr_manifest *m) { add_link(m, "d/mid", "a/../../../x"); }
static void m_link_dots(struct bdr_manifest *m) { add_link(m, "d/dots", ".//./../.."); }
static void m_link_empty(struct bdr_manifest *m) { add_link(m, "d/empty", NULL); }
static void m_link_long(struct bdr_manifest *m) { add_link(m, "d/long", long_target); }
static void m_link_size(struct bdr_manifest *m) { add_link(m, "d/sz", "f")->size = 5; }
static void m_link_through(struct bdr_manifest *m) { add_link(m, "s", "."); add_link(m, "t", "s/.."); }
static void m_link_through_deep(struct bdr_manifest *m) { add_link(m, "d/up", ".."); add_link(m, "d/t", "up/d/up/.."); }
static void m_link_chain(struct bdr_manifest *m) { add_link(m, "ca", "cb"); add_link(m, "cb", "."); add_link(m, "ct", "ca/.."); }
static void m_link_loop(struct bdr_manifest *m) { add_link(m, "la", "lb/x"); add_link(m, "lb", "la/x"); }
static void m_type0(struct bdr_manifest *m) { add_file(m, "t0", 0, NULL)->type = 0; }
static void m_type9(struct bdr_manifest *m) { add_file(m, "t9", 0, NULL)->type = 9; }
static void m_mode(struct bdr_manifest *m) { add_file(m, "mode", 0, NULL)->mode = 010644; }
static void m_sum(struct bdr_manifest *m) { add_file(m, "sum", 2, lens2)->size = 301; }
static void m_sum_empty(struct bdr_manifest *m) { add_file(m, "sum0", 0, NULL)->size = 1; }
static void m_zero_chunk(struct bdr_manifest *m) { static const uint32_t l[] = { 5, 0, 5 }; add_file(m, "zc", 3, l); }
static void m_big_chunk(struct bdr_manifest *m) { static const uint32_t l[] = { BDR_CHUNK_MAX_LIMIT + 1 }; add_file(m, "bc", 1, l); }
static void m_file_target(struct bdr_manifest *m) { add_file(m, "ft", 0, NULL)->target = strdup("x"); }
static void with_chunk(struct bdr_entry *e)
{
	e->nchunks = 1;
	e->chunks = calloc(1, sizeof(*e->chunks));
	e->chunks[0].len = 1;
}
static void m_dir_chunks(struct bdr_manifest *m) { with_chunk(add_dir(m, "dc")); }
static void m_link_chunks(struct bdr_manifest *m) { with_chunk(add_link(m, "lc", "top")); }
static void m_dir_hash(struct bdr_manifest *m) { add_dir(m, "dh")->hash[31] = 1; }
static void m_link_hash(struct bdr_manifest *m) { add_link(m, "lh", "top")->hash[0] = 1; }
static void m_dir_size(struct bdr_manifest *m) { add_dir(m, "ds")->size = 4096; }
static void m_dir_target(struct bdr_manifest *m) { add_dir(m, "dt")->target = strdup("x"); }
static void m_version0(struct bdr_manifest *m) { m->version = 0; }
static void m_version63(struct bdr_manifest *m) { m->version = BDR_VERSION_MAX + 1; }
static void m_version64(struct bdr_manifest *m) { m->version = UINT64_MAX; }
static void set_pkg(struct bdr_manifest *m, const char *s) { free(m->package); m->package = strdup(s); }
static void set_site(struct bdr_manifest *m, const char *s) { free(m->site); m->site = strdup(s); }
static void m_pkg_space(struct bdr_manifest *m) { set_pkg(m, "bad name"); }
static void m_pkg_slash(struct bdr_manifest *m) { set_pkg(m, "a/b"); }
static void m_pkg_dot(struct bdr_manifest *m) { set_pkg(m, ".hidden"); }
static void m_pkg_dotdot(struct bdr_manifest *m) { set_pkg(m, ".."); }
static void m_pkg_empty(struct bdr_manifest *m) { set_pkg(m, ""); }
static void m_pkg_long(struct bdr_manifest *m) { char s[BDR_MAX_PACKAGE_NAME + 2] = { 0 }; memset(s, 'p', BDR_MAX_PACKAGE_NAME + 1); set_pkg(m, s); }
static void m_site_plus(struct bdr_manifest *m) { set_site(m, "a+b"); }
static void m_site_empty(struct bdr_manifest *m) { set_site(m, ""); }
static void m_site_dot(struct bdr_manifest *m) { set_site(m, ".x"); }
static void m_site_long(struct bdr_manifest *m) { char s[BDR_MAX_SITE_NAME + 2] = { 0 }; memset(s, 's', BDR_MAX_SITE_NAME + 1); set_site(m, s); }
static void m_site_utf8(struct bdr_manifest *m) { set_site(m, "s\xc3\xa9te"); }

static const struct bad_case bad_cases[] = {
	{ "absolute path", m_abs, -BDR_EPATH, "entry '/abs': path is absolute" },
	{ "'..' component", m_dotdot, -BDR_EPATH, "entry 'd/../x': path contains '..'" },
	{ "'..' last", m_dotdot_end, -BDR_EPATH, "entry 'd/..': path contains '..'" },
	{ "'.' component", m_dot, -BDR_EPATH, "entry 'd/./x': path contains '.'" },
	{ "'.' alone", m_dot_only, -BDR_EPATH, "entry '.': path contains '.'" },
	{ "empty component", m_empty_comp, -BDR_EPATH, "entry 'd//x': path has an empty component" },
	{ "trailing slash", m_trailing, -BDR_EPATH, "entry 'd/x/': path has a trailing '/'" },
	{ "component > 255", m_long_comp, -BDR_ELIMIT, "entry 'd/cccc" },
	{ "path > BDR_MAX_PATH", m_long_path, -BDR_ELIMIT, "entry 'd/cccc" },
	{ "empty path", m_empty_path, -BDR_EPATH, "entry '': empty path" },
	{ "duplicate file", m_dup, -BDR_EDUP, "entry 'top': duplicate path" },
	{ "duplicate dir", m_dup_dir, -BDR_EDUP, "entry 'd': duplicate path" },
	{ "unsorted", m_unsorted, -BDR_EORDER, "entry 'd/f': out of order", 1 },
	{ "no parent", m_no_parent, -BDR_EPATH, "entry 'nodir/x': parent 'nodir' is not in the manifest" },
	{ "no deep parent", m_deep_no_parent, -BDR_EPATH, "entry 'd/e/x': parent 'd/e' is not" },
	{ "parent is a symlink", m_parent_link, -BDR_EPATH, "entry 'd/l/x': parent 'd/l' is a symlink" },
	{ "parent is a file", m_parent_file, -BDR_EPATH, "entry 'top/x': parent 'top' is a file" },
	{ "absolute symlink", m_link_abs, -BDR_EPATH, "entry 'd/abs': symlink target '/etc/passwd' is absolute" },
	{ "symlink escapes through a symlink", m_link_through, -BDR_EPATH, "entry 't': symlink target leaves the package root through another symlink" },
	{ "symlink escapes through symlinks", m_link_through_deep, -BDR_EPATH, "entry 'd/t': symlink target leaves" },
	{ "symlink escapes through a chain", m_link_chain, -BDR_EPATH, "entry 'ct': symlink target leaves" },
	{ "symlink loop", m_link_loop, -BDR_ELIMIT, "too many levels of symlinks" },
	{ "symlink escapes", m_link_up2, -BDR_EPATH, "entry 'd/esc': symlink target '../../x' leaves" },
	{ "top symlink to ..", m_link_up1, -BDR_EPATH, "entry 'esc': symlink target '..' leaves" },
	{ "symlink escapes midway", m_link_mid, -BDR_EPATH, "entry 'd/mid': symlink target" },
	{ "symlink with dots", m_link_dots, -BDR_EPATH, "entry 'd/dots': symlink target" },
	{ "empty symlink target", m_link_empty, -BDR_EPATH, "entry 'd/empty': empty symlink target" },
	{ "long symlink target", m_link_long, -BDR_ELIMIT, "entry 'd/long': symlink target of 4097 bytes" },
	{ "symlink size", m_link_size, -BDR_EFORMAT, "entry 'd/sz': symlink size 5" },
	{ "type 0", m_type0, -BDR_EFORMAT, "entry 't0': unknown entry type 0" },
	{ "type 9", m_type9, -BDR_EFORMAT, "entry 't9': unknown entry type 9" },
	{ "mode bits", m_mode, -BDR_EFORMAT, "entry 'mode': mode 010644 has bits outside 07777" },
	{ "chunk sum", m_sum, -BDR_EFORMAT, "entry 'sum': chunk lengths sum to 300 bytes, size is 301" },
	{ "size without chunks", m_sum_empty, -BDR_EFORMAT, "entry 'sum0': chunk lengths sum to 0" },
	{ "zero-length chunk", m_zero_chunk, -BDR_EFORMAT, "entry 'zc': chunk 1 is empty" },
	{ "chunk over limit", m_big_chunk, -BDR_ELIMIT, "entry 'bc': chunk 0 of 1048577 bytes" },
	{ "file with target", m_file_target, -BDR_EFORMAT, "entry 'ft': a file has a symlink target" },
	{ "dir with chunks", m_dir_chunks, -BDR_EFORMAT, "entry 'dc': a directory has 1 chunks" },
	{ "symlink with chunks", m_link_chunks, -BDR_EFORMAT, "entry 'lc': a symlink has 1 chunks" },
	{ "dir with hash", m_dir_hash, -BDR_EFORMAT, "entry 'dh': a directory has a nonzero file hash" },
	{ "symlink with hash", m_link_hash, -BDR_EFORMAT, "entry 'lh': a symlink has a nonzero file hash" },
	{ "dir with size", m_dir_size, -BDR_EFORMAT, "entry 'ds': a directory has size 4096" },
	{ "dir with target", m_dir_target, -BDR_EFORMAT, "entry 'dt': a directory has a symlink target" },
	{ "version 0", m_version0, -BDR_EFORMAT, "package 'demo': version 0" },
	{ "version 2^63", m_version63, -BDR_ELIMIT, "version 9223372036854775808 is above the largest" },
	{ "version 2^64-1", m_version64, -BDR_ELIMIT, "version 18446744073709551615 is above the largest" },
	{ "package with space", m_pkg_space, -BDR_EFORMAT, "package 'bad name': byte 0x20" },
	{ "package with slash", m_pkg_slash, -BDR_EFORMAT, "package 'a/b': byte 0x2f" },
	{ "package with leading dot", m_pkg_dot, -BDR_EFORMAT, "package '.hidden': name starts with '.'" },
	{ "package '..'", m_pkg_dotdot, -BDR_EFORMAT, "package '..'" },
	{ "empty package", m_pkg_empty, -BDR_EFORMAT, "package name is empty" },
	{ "package too long", m_pkg_long, -BDR_ELIMIT, "package 'ppp" },
	{ "site with '+'", m_site_plus, -BDR_EFORMAT, "site 'a+b': byte 0x2b" },
	{ "empty site", m_site_empty, -BDR_EFORMAT, "site name is empty" },
	{ "site with leading dot", m_site_dot, -BDR_EFORMAT, "site '.x'" },
	{ "site too long", m_site_long, -BDR_ELIMIT, "site 'sss" },
	{ "site not ASCII", m_site_utf8, -BDR_EFORMAT, "byte 0xc3" },
};

Test(manifest, structural_defects_are_rejected_with_a_named_entry)
{
	mk_longs();
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];
		struct bdr_manifest m;
		struct bdr_diag d = { { 0 } };
		uint8_t *buf = NULL;
		size_t len;

		base(&m);
		c->mutate(&m);
		if (!c->nosort)
			bdr_manifest_sort(&m);
		/* validate applies the same check ... */
		cr_assert_eq(bdr_manifest_validate(&m, &d), c->err, "validate, %s: %s", c->what, d.msg);
		cr_assert_not_null(strstr(d.msg, c->needle), "validate, %s: '%s'", c->what, d.msg);
		/* ... so the encoder refuses to sign it ... */
		cr_assert_eq(bdr_manifest_encode(&m, &key_a, &buf, &len, &d), c->err, "%s", c->what);
		cr_assert_null(buf);
		/* ... and the decoder rejects it even when it is signed. */
		cr_assert_eq(bdr__manifest_encode_unchecked(&m, &key_a, &buf, &len), 0, "%s", c->what);
		expect_reject(buf, len, c->err, c->needle, c->what);
		free(buf);
		bdr_manifest_free(&m);
	}
}

/* ---- byte-level defects, via the spec writer ---- */

/* base() as bytes, with hook called between the header and the entries. */
static void spec_base(struct bdr_wbuf *w, uint32_t extra)
{
	struct bdr_manifest m;

	base(&m);
	tw_std_header(w, m.nentries + extra);
	for (uint32_t i = 0; i < m.nentries; i++)
		tw_entry(w, &m.entries[i]);
	bdr_manifest_free(&m);
}

Test(manifest, spec_writer_base_is_valid)
{
	struct bdr_wbuf w;
	uint8_t *buf;
	size_t len;
	struct bdr_manifest m;
	struct bdr_diag d;

	spec_base(&w, 0);
	tw_sign(&w, &buf, &len);
	cr_assert_eq(bdr_manifest_decode(buf, len, key_a.pk, &m, &d), 0, "%s", d.msg);
	bdr_manifest_free(&m);
	free(buf);
}

Test(manifest, bad_magic_and_format)
{
	struct bdr_wbuf w;

	tw_header(&w, "BDRMANIX", 1, "demo", 4, "site-a", 6, 0);
	expect_reject_w(&w, -BDR_EFORMAT, "bad magic", "magic");
	tw_header(&w, "BDRMANIF", 2, "demo", 4, "site-a", 6, 0);
	expect_reject_w(&w, -BDR_EVERSION, "format 2 is not supported", "format 2");
	tw_header(&w, "BDRMANIF", 0, "demo", 4, "site-a", 6, 0);
	expect_reject_w(&w, -BDR_EVERSION, "format 0", "format 0");
}

Test(manifest, nul_in_names)
{
	struct bdr_wbuf w;

	tw_header(&w, "BDRMANIF", 1, "de\0mo", 5, "site-a", 6, 0);
	expect_reject_w(&w, -BDR_EFORMAT, "package 'de\\x00mo': name contains a NUL", "pkg NUL");
	tw_header(&w, "BDRMANIF", 1, "demo", 4, "site\0", 5, 0);
	expect_reject_w(&w, -BDR_EFORMAT, "site 'site\\x00'", "site NUL");

	spec_base(&w, 1);
	tw_raw(&w, "d/a\0b", 5, BDR_ENTRY_FILE, 0, "", 0);
	expect_reject_w(&w, -BDR_EPATH, "entry 'd/a\\x00b': path contains a NUL byte", "path NUL");

	spec_base(&w, 1);
	tw_raw(&w, "d/m", 3, BDR_ENTRY_SYMLINK, 3, "f\0g", 3);
	expect_reject_w(&w, -BDR_EPATH, "entry 'd/m': symlink target contains a NUL", "target NUL");
}

Test(manifest, raw_lengths_over_limits)
{
	struct bdr_wbuf w;
	uint8_t *buf, big[BDR_MAX_PATH + 100];
	size_t len;

	memset(big, 'a', sizeof(big));
	spec_base(&w, 1);
	tw_raw(&w, big, sizeof(big), BDR_ENTRY_FILE, 0, "", 0);
	tw_sign(&w, &buf, &len);
	expect_reject(buf, len, -BDR_ELIMIT, "entry 'aaaa", "raw long path");
	expect_reject(buf, len, -BDR_ELIMIT, "path of 4196 bytes exceeds 4096", "raw long path");
	free(buf);

	spec_base(&w, 1);
	tw_raw(&w, "t", 1, BDR_ENTRY_SYMLINK, sizeof(big), big, sizeof(big));
	expect_reject_w(&w, -BDR_ELIMIT, "entry 't': symlink target of 4196 bytes", "raw target");

	spec_base(&w, 1);
	tw_raw(&w, "", 0, BDR_ENTRY_DIR, 0, "", 0);
	expect_reject_w(&w, -BDR_EPATH, "entry '': empty path (entry #4)", "raw empty path");
}

Test(manifest, trailing_bytes)
{
	struct bdr_wbuf w;

	spec_base(&w, 0);
	bdr_w_u8(&w, 0);
	expect_reject_w(&w, -BDR_EFORMAT, "1 trailing bytes", "trailing");

	/* A whole valid entry more than nentries says. */
	spec_base(&w, 0);
	tw_dir(&w, "zz");
	expect_reject_w(&w, -BDR_EFORMAT, "trailing bytes", "extra entry");
}

/* Counts that the bytes could not hold: rejected before allocation. */
static void huge_counts(void)
{
	struct bdr_wbuf w;

	tw_std_header(&w, BDR_MAX_ENTRIES);
	tw_dir(&w, "d");
	expect_reject_w(&w, -BDR_EFORMAT, "1048576 entries do not fit", "entries vs bytes");
	tw_std_header(&w, BDR_MAX_ENTRIES + 1);
	expect_reject_w(&w, -BDR_ELIMIT, "entries exceed the limit", "entries limit");
	tw_std_header(&w, UINT32_MAX);
	expect_reject_w(&w, -BDR_ELIMIT, "entries exceed the limit", "entries u32 max");

	const uint32_t counts[] = { BDR_MAX_FILE_CHUNKS, BDR_MAX_FILE_CHUNKS + 1, UINT32_MAX };
	const int errs[] = { -BDR_EFORMAT, -BDR_ELIMIT, -BDR_ELIMIT };
	const char *needles[] = { "entry 'f': 4194304 chunks do not fit", "entry 'f': 4194305 chunks exceed",
				  "entry 'f': 4294967295 chunks exceed" };
	for (int i = 0; i < 3; i++) {
		tw_std_header(&w, 1);
		tw_str(&w, "f", 1);
		tw_fields(&w, BDR_ENTRY_FILE, 0644, 0, 100, NULL, counts[i]);
		bdr_w_bytes(&w, "0123456789abcdef\x64\0\0\0", 20); /* one chunk of 100 */
		tw_str(&w, "", 0);
		expect_reject_w(&w, errs[i], needles[i], "chunk count");
	}
}

#ifndef TEST_ASAN
static size_t vm_data_bytes(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	size_t kb = 0;

	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmData: %zu kB", &kb) == 1)
			break;
	fclose(f);
	cr_assert_gt(kb, 0);
	return kb * 1024;
}
#endif

Test(manifest, huge_counts_are_rejected_without_allocating)
{
#ifndef TEST_ASAN
	/* Criterion runs each test in its own process: cap the data segment
	 * 32 MiB above what we use, far below the 80-100 MiB the hostile counts
	 * would need, so an allocation before the check fails the test with
	 * -ENOMEM instead of passing. (ASan's shadow memory does not live
	 * with such a limit; there the counts are only checked for codes.) */
	struct rlimit rl;
	cr_assert_eq(getrlimit(RLIMIT_DATA, &rl), 0);
	rl.rlim_cur = vm_data_bytes() + (32u << 20);
	cr_assert_eq(setrlimit(RLIMIT_DATA, &rl), 0);
	void *probe = malloc(64u << 20);
	cr_assert_null(probe, "the limit is in force");
#endif
	huge_counts();
}

Test(manifest, oversized_input_is_rejected_unread)
{
	size_t len = BDR_MAX_MANIFEST_BYTES + 1;
	void *p = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	cr_assert_neq(p, MAP_FAILED);
	expect_reject(p, len, -BDR_ELIMIT, "exceed the limit", "oversized");
	munmap(p, len);
}

Test(manifest, tiny_inputs)
{
	uint8_t z[BDR_SIG_LEN + 12] = { 0 };

	expect_reject(NULL, 0, -BDR_EFORMAT, "truncated", "NULL");
	expect_reject(z, BDR_SIG_LEN - 1, -BDR_EFORMAT, "truncated", "short");
	expect_reject(z, BDR_SIG_LEN, -BDR_EFORMAT, "truncated header", "just a signature");
	memcpy(z, "BDRMANIF\x01\0\0\0", 12);
	expect_reject(z, sizeof(z), -BDR_EFORMAT, "truncated header", "magic and format only");
}

/* ---- the checkers on their own ---- */

Test(manifest, check_path_table)
{
	static const struct {
		const char *path;
		int err;
	} t[] = {
		{ "a", 0 }, { "a/b/c", 0 }, { ".a", 0 }, { "..a", 0 }, { "a..", 0 }, { "a/.b/...", 0 },
		{ "a b/\xff\x01", 0 }, { "", -BDR_EPATH }, { "/", -BDR_EPATH }, { "/a", -BDR_EPATH },
		{ "a/", -BDR_EPATH }, { "a//b", -BDR_EPATH }, { ".", -BDR_EPATH }, { "..", -BDR_EPATH },
		{ "a/.", -BDR_EPATH }, { "./a", -BDR_EPATH }, { "a/../b", -BDR_EPATH },
	};
	struct bdr_diag d;

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		cr_assert_eq(bdr_manifest_check_path(t[i].path, &d), t[i].err, "'%s'", t[i].path);
	cr_assert_eq(bdr_manifest_check_path(NULL, &d), -BDR_EPATH);
	cr_assert_eq(bdr_manifest_check_path("a/..", NULL), -BDR_EPATH, "diag may be NULL");
	cr_assert_eq(bdr_manifest_check_path("a\nb/..", &d), -BDR_EPATH);
	cr_assert_not_null(strstr(d.msg, "entry 'a\\x0ab/..'"), "control bytes escaped: %s", d.msg);
}

Test(manifest, check_symlink_table)
{
	static const struct {
		const char *path, *target;
		int err;
	} t[] = {
		{ "l", "x", 0 },          { "l", "./x", 0 },        { "l", ".", 0 },
		{ "a/l", "..", 0 },       { "a/l", "../x", 0 },     { "a/b/l", "../../x", 0 },
		{ "a/l", "x/../../y", 0 }, { "a/l", "x//y/", 0 },   { "l", "x/..", 0 },
		{ "l", "..", -BDR_EPATH }, { "l", "../x", -BDR_EPATH }, { "a/l", "../..", -BDR_EPATH },
		{ "a/l", "x/../../..", -BDR_EPATH }, { "a/l", "../../a/x", -BDR_EPATH },
		{ "l", "/x", -BDR_EPATH }, { "l", "", -BDR_EPATH },  { "l", "./..", -BDR_EPATH },
	};
	struct bdr_diag d;

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		cr_assert_eq(bdr_manifest_check_symlink(t[i].path, t[i].target, &d), t[i].err,
			     "'%s' -> '%s'", t[i].path, t[i].target);
	cr_assert_eq(bdr_manifest_check_symlink("l", NULL, &d), -BDR_EPATH);
}

Test(manifest, check_names)
{
	struct bdr_diag d;

	cr_assert_eq(bdr_manifest_check_package("gcc-13.2_x+y", &d), 0);
	cr_assert_eq(bdr_manifest_check_package("a.", &d), 0);
	cr_assert_eq(bdr_manifest_check_package("a b", &d), -BDR_EFORMAT);
	cr_assert_eq(bdr_manifest_check_package(NULL, &d), -BDR_EFORMAT);
	cr_assert_eq(bdr_manifest_check_site("site-1.a_b", &d), 0);
	cr_assert_eq(bdr_manifest_check_site("a+b", &d), -BDR_EFORMAT);
	cr_assert_eq(bdr_manifest_check_name("thing", "x+y", 3, &d), 0);
	cr_assert_eq(bdr_manifest_check_name("thing", "wxyz", 3, &d), -BDR_ELIMIT);
	cr_assert_not_null(strstr(d.msg, "thing 'wxyz'"), "%s", d.msg);
}

Test(manifest, sort_and_find)
{
	struct bdr_manifest m;

	header(&m, "p", "s");
	cr_assert_null(bdr_manifest_find(&m, "a"));
	bdr_manifest_sort(&m);
	/* '-' and '.' sort before '/': a parent is not always right before
	 * its children. */
	const char *in[] = { "a/b", "a.c", "a", "a-b", "b", "a/a" };
	for (size_t i = 0; i < 6; i++)
		add_dir(&m, in[i]);
	bdr_manifest_sort(&m);
	const char *want[] = { "a", "a-b", "a.c", "a/a", "a/b", "b" };
	for (size_t i = 0; i < 6; i++) {
		cr_assert_str_eq(m.entries[i].path, want[i]);
		cr_assert_eq(bdr_manifest_find(&m, want[i]), &m.entries[i]);
	}
	struct bdr_diag d;
	cr_assert_eq(bdr_manifest_validate(&m, &d), 0, "%s", d.msg);
	bdr_manifest_free(&m);
}

Test(manifest, many_entries_grow)
{
	struct bdr_manifest m, got;
	struct bdr_diag d;
	uint8_t *buf;
	size_t len;
	char p[32];

	header(&m, "p", "s");
	add_dir(&m, "d");
	for (int i = 0; i < 5000; i++) {
		snprintf(p, sizeof(p), "d/f%05d", i);
		add_file(&m, p, 0, NULL);
	}
	cr_assert_geq(m.cap, m.nentries);
	bdr_manifest_sort(&m);
	encode_ok(&m, &buf, &len);
	cr_assert_eq(bdr_manifest_decode(buf, len, key_a.pk, &got, &d), 0, "%s", d.msg);
	cr_assert_eq(got.nentries, 5001);
	bdr_manifest_free(&m);
	bdr_manifest_free(&got);
	free(buf);
}
