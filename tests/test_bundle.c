/* Pre-staged bundles (proto/bundle.md): a version carried by hand arrives
 * bit-exact; a --base bundle carries only what the holder of the base
 * lacks; a truncated, altered, foreign or oversized bundle is refused with
 * a message naming the problem, and nothing is added. The hostile headers
 * here are written by an encoder of this file's own, from the spec. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "bdr/bundle.h"
#include "bdr/db.h"
#include "bdr/error.h"
#include "bdr/library.h"
#include "testutil.h"

static char root[PATH_MAX], src[PATH_MAX], out[PATH_MAX];
static struct bdr_key key, stranger;
static struct bdr_library *snd, *rcv;

static void s(char *buf, const char *rel)
{
	snprintf(buf, PATH_MAX, "%s/%s", src, rel);
}

static void small_tree(void)
{
	char b[PATH_MAX];

	s(b, "lib"), tu_mkdirs(b);
	s(b, "lib/a.bin"), tu_write_random(b, 1500, 1);
	s(b, "b.txt"), tu_write(b, "hello bundle\n", 13);
	s(b, "empty"), tu_write(b, "", 0);
	s(b, "lib/link");
	cr_assert_eq(symlink("a.bin", b), 0);
}

static void setup(void)
{
	char b[PATH_MAX];

	tu_mkdtemp(root, "bundle");
	snprintf(src, sizeof(src), "%s/src", root);
	snprintf(out, sizeof(out), "%s/app.bundle", root);
	small_tree();
	cr_assert_eq(sodium_init() < 0, 0);
	bdr_key_generate(&key);
	bdr_key_generate(&stranger);
	snprintf(b, sizeof(b), "%s/sender", root);
	snd = tu_library(b, 0);
	snprintf(b, sizeof(b), "%s/receiver", root);
	rcv = tu_library(b, 0);
}

static void teardown(void)
{
	bdr_library_close(snd);
	bdr_library_close(rcv);
	tu_rmrf(root);
}

TestSuite(bundle, .init = setup, .fini = teardown);

/* The receiver pins key only, and wants manifests signed by it. */
static int trust(void *arg, const struct bdr_bundle_header *h, const uint8_t **expect,
		 struct bdr_diag *d)
{
	(void)arg;
	if (memcmp(h->signer, key.pk, BDR_PK_LEN))
		return bdr_diag_set(d, -BDR_EKEY, "bundle signed by a key not pinned here");
	*expect = key.pk;
	return 0;
}

static const struct bdr_bundle_read_req rreq = { .trust = trust };

static int create(uint64_t version, uint64_t base, const struct bdr_key *k,
		  struct bdr_bundle_stats *st)
{
	struct bdr_bundle_create_req req = { .package = "app", .version = version, .base = base,
					     .site = "central", .key = k };
	struct bdr_diag d = { { 0 } };
	int rc;

	unlink(out);
	rc = bdr_bundle_create(snd, &req, out, st, &d);
	cr_assert_eq(rc, 0, "create: %s: %s", bdr_strerror(rc), d.msg);
	return rc;
}

static int import_into(struct bdr_library *lib, const char *path, struct bdr_bundle_stats *st,
		       struct bdr_diag *d)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc;

	cr_assert(fd >= 0);
	memset(d, 0, sizeof(*d));
	rc = bdr_bundle_import(lib, fd, &rreq, NULL, st, d);
	close(fd);
	return rc;
}

static void assert_has(struct bdr_library *lib, uint64_t v)
{
	char tree[PATH_MAX];
	uint64_t latest;

	cr_assert_eq(bdr_library_latest(lib, "app", &latest), 0);
	cr_assert_eq(latest, v);
	cr_assert_eq(bdr_library_tree_path(lib, "app", v, tree, sizeof(tree)), 0);
	cr_assert_eq(tu_tree_diff(src, tree, 1), 0, "version %llu differs", (unsigned long long)v);
}

/* Nothing of app in the library: no version, no index row, no partial. */
static void assert_nothing(struct bdr_library *lib)
{
	char path[PATH_MAX];
	struct bdr_db_stats st;
	uint64_t latest;
	struct stat sb;

	cr_assert_eq(bdr_library_latest(lib, "app", &latest), -BDR_ENOTFOUND);
	cr_assert_eq(bdr_db_stats(bdr_library_db(lib), &st), 0);
	cr_assert_eq(st.versions, 0);
	cr_assert_eq(st.chunks, 0);
	cr_assert_eq(bdr_library_partial_path(lib, "app", 1, path, sizeof(path)), 0);
	cr_assert_neq(stat(path, &sb), 0, "a partial pack was left behind");
}

Test(bundle, full_bundle_round_trip_is_bit_exact)
{
	struct bdr_bundle_stats cs, is;
	struct bdr_diag d;
	int rc;

	cr_assert_eq(tu_import(snd, &key, "app", src), 1);
	create(0, 0, &key, &cs);
	cr_assert_eq(cs.nchunks, 2); /* a.bin and b.txt; empty has none */
	cr_assert_eq(cs.raw_bytes, 1500 + 13);
	rc = import_into(rcv, out, &is, &d);
	cr_assert_eq(rc, 0, "%s: %s", bdr_strerror(rc), d.msg);
	cr_assert(!is.held);
	cr_assert_eq(is.nchunks, 2);
	cr_assert_eq(is.bundle_bytes, cs.bundle_bytes);
	assert_has(rcv, 1);
	/* Again: held, nothing to do. */
	rc = import_into(rcv, out, &is, &d);
	cr_assert_eq(rc, 0, "%s", d.msg);
	cr_assert(is.held);
}

Test(bundle, base_bundle_carries_only_what_the_base_lacks)
{
	struct bdr_bundle_stats full, delta, is;
	struct bdr_diag d;
	char b[PATH_MAX], path2[PATH_MAX];
	int rc;

	s(b, "big.bin"), tu_write_random(b, 3u << 20, 7);
	tu_import(snd, &key, "app", src);
	create(1, 0, &key, NULL);
	cr_assert_eq(import_into(rcv, out, NULL, &d), 0, "%s", d.msg);
	s(b, "lib/new.bin"), tu_write_random(b, 5000, 8);
	cr_assert_eq(tu_import(snd, &key, "app", src), 2);
	create(2, 0, &key, &full);
	create(2, 1, &key, &delta);
	cr_assert_eq(delta.raw_bytes, 5000, "only lib/new.bin's chunks are new, not %llu bytes",
		     (unsigned long long)delta.raw_bytes);
	cr_assert_lt(delta.bundle_bytes * 20, full.bundle_bytes);
	rc = import_into(rcv, out, &is, &d);
	cr_assert_eq(rc, 0, "%s: %s", bdr_strerror(rc), d.msg);
	cr_assert_eq(is.nchunks, delta.nchunks);
	cr_assert_eq(is.raw_bytes, 5000);
	assert_has(rcv, 2);
	/* A site without version 1 cannot use it, and is told why. */
	snprintf(path2, sizeof(path2), "%s/third", root);
	{
		struct bdr_library *third = tu_library(path2, 0);
		rc = import_into(third, out, NULL, &d);
		cr_assert_eq(rc, -BDR_EMISSING, "%s", bdr_strerror(rc));
		cr_assert_not_null(strstr(d.msg, "import version 1 first"), "%s", d.msg);
		assert_nothing(third);
		bdr_library_close(third);
	}
}

Test(bundle, base_must_be_older_and_held)
{
	struct bdr_bundle_create_req req = { .package = "app", .version = 1, .base = 1,
					     .site = "central", .key = &key };
	struct bdr_diag d = { { 0 } };

	tu_import(snd, &key, "app", src);
	cr_assert_eq(bdr_bundle_create(snd, &req, out, NULL, &d), -EINVAL);
	req.version = 3, req.base = 2;
	cr_assert_eq(bdr_bundle_create(snd, &req, out, NULL, &d), -BDR_ENOTFOUND);
	cr_assert_not_null(strstr(d.msg, "no version 3"), "%s", d.msg);
	cr_assert_neq(access(out, F_OK), 0, "a failed create left a file");
}

/* Version 1 of the small tree, bundled whole; its bytes. */
static uint8_t *v1_bundle(size_t *len)
{
	tu_import(snd, &key, "app", src);
	create(1, 0, &key, NULL);
	return tu_read(out, len);
}

static void put_file(const char *path, const uint8_t *p, size_t len)
{
	unlink(path);
	tu_write(path, p, len);
}

Test(bundle, truncation_anywhere_is_refused_and_adds_nothing)
{
	char cut[PATH_MAX];
	struct bdr_diag d;
	uint8_t *buf;
	size_t len;

	buf = v1_bundle(&len);
	snprintf(cut, sizeof(cut), "%s/cut.bundle", root);
	for (size_t n = 0; n < len; n++) {
		int rc;
		put_file(cut, buf, n);
		rc = import_into(rcv, cut, NULL, &d);
		cr_assert_lt(rc, 0, "a bundle cut at byte %zu of %zu was accepted", n, len);
		cr_assert(d.msg[0], "no message for a cut at %zu", n);
	}
	put_file(cut, buf, len / 2);
	cr_assert_eq(import_into(rcv, cut, NULL, &d), -BDR_EFORMAT);
	cr_assert_not_null(strstr(d.msg, "truncated"), "%s", d.msg);
	assert_nothing(rcv);
	free(buf);
}

Test(bundle, every_byte_flip_is_refused_and_adds_nothing)
{
	char bad[PATH_MAX];
	struct bdr_diag d;
	uint8_t *buf;
	size_t len;
	int fd;

	buf = v1_bundle(&len);
	snprintf(bad, sizeof(bad), "%s/bad.bundle", root);
	put_file(bad, buf, len);
	fd = open(bad, O_WRONLY);
	cr_assert(fd >= 0);
	for (size_t i = 0; i < len; i++) {
		uint8_t x = buf[i] ^ 0x5a;
		int rc;
		cr_assert_eq(pwrite(fd, &x, 1, (off_t)i), 1);
		rc = import_into(rcv, bad, NULL, &d);
		cr_assert_lt(rc, 0, "a flip at byte %zu of %zu was accepted", i, len);
		cr_assert(d.msg[0], "no message for a flip at %zu", i);
		cr_assert_eq(pwrite(fd, &buf[i], 1, (off_t)i), 1);
	}
	/* One in the last chunk's data: only the signature catches it. */
	buf[len - 65] ^= 1;
	put_file(bad, buf, len);
	cr_assert_eq(import_into(rcv, bad, NULL, &d), -BDR_ESIG);
	cr_assert_not_null(strstr(d.msg, "altered or damaged"), "%s", d.msg);
	/* Trailing bytes. */
	buf[len - 65] ^= 1;
	buf = realloc(buf, len + 1);
	buf[len] = 0;
	put_file(bad, buf, len + 1);
	cr_assert_eq(import_into(rcv, bad, NULL, &d), -BDR_EFORMAT);
	cr_assert_not_null(strstr(d.msg, "after the signature"), "%s", d.msg);
	close(fd);
	assert_nothing(rcv);
	free(buf);
}

Test(bundle, a_foreign_signer_is_refused)
{
	struct bdr_diag d;

	tu_import(snd, &key, "app", src);
	create(1, 0, &stranger, NULL);
	cr_assert_eq(import_into(rcv, out, NULL, &d), -BDR_EKEY);
	cr_assert_not_null(strstr(d.msg, "not pinned"), "%s", d.msg);
	assert_nothing(rcv);
}

Test(bundle, a_manifest_signed_by_another_key_is_refused)
{
	struct bdr_diag d;
	struct bdr_library *other;
	char b[PATH_MAX];

	/* The pinned site bundles a version whose manifest a stranger signed. */
	snprintf(b, sizeof(b), "%s/other", root);
	other = tu_library(b, 0);
	tu_import(other, &stranger, "app", src);
	bdr_library_close(snd);
	snd = other;
	create(1, 0, &key, NULL);
	cr_assert_eq(import_into(rcv, out, NULL, &d), -BDR_EKEY);
	cr_assert_not_null(strstr(d.msg, "does not vouch for"), "%s", d.msg);
	assert_nothing(rcv);
}

/* ---- hostile headers, from an encoder of this file's own ---- */

struct enc {
	uint8_t b[4096];
	size_t n;
};

static void e_bytes(struct enc *e, const void *p, size_t n)
{
	memcpy(e->b + e->n, p, n);
	e->n += n;
}

static void e_le(struct enc *e, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		e->b[e->n++] = (uint8_t)(v >> (8 * i));
}

static void e_str(struct enc *e, const char *s)
{
	e_le(e, strlen(s), 2);
	e_bytes(e, s, strlen(s));
}

static uint64_t crafted_version = 1; /* the header's version */

/* A signed bundle: header with these counts, body bytes, signature. */
static void write_crafted(const char *path, uint64_t mlen, uint32_t nchunks, uint64_t raw,
			  size_t body)
{
	uint8_t digest[32], msg[48], sig[64];
	struct enc e = { .n = 0 };

	e_bytes(&e, "BDRBUNDL", 8);
	e_le(&e, 1, 4), e_le(&e, 0, 4);
	e_bytes(&e, key.pk, 32);
	e_str(&e, "central"), e_str(&e, "app");
	e_le(&e, crafted_version, 8), e_le(&e, 0, 8), e_le(&e, 0, 8);
	e_le(&e, mlen, 8), e_le(&e, nchunks, 4), e_le(&e, raw, 8);
	memset(e.b + e.n, 0, body);
	e.n += body;
	crypto_generichash(digest, 32, e.b, e.n, NULL, 0);
	memcpy(msg, "bdr bundle sig 1", 16);
	memcpy(msg + 16, digest, 32);
	crypto_sign_detached(sig, NULL, msg, sizeof(msg), key.sk);
	e_bytes(&e, sig, 64);
	put_file(path, e.b, e.n);
}

Test(bundle, oversized_counts_are_refused_before_allocating)
{
	struct bdr_diag d;

	write_crafted(out, 1ull << 40, 1, 1, 100);
	cr_assert_eq(import_into(rcv, out, NULL, &d), -BDR_ELIMIT);
	cr_assert_not_null(strstr(d.msg, "manifest of 1099511627776 bytes"), "%s", d.msg);
	write_crafted(out, 100, BDR_BUNDLE_MAX_CHUNKS + 1u, 1ull << 40, 100);
	cr_assert_eq(import_into(rcv, out, NULL, &d), -BDR_ELIMIT);
	/* Within the limits, but more than the file could hold. */
	write_crafted(out, 1u << 29, 1, 1, 100);
	cr_assert_eq(import_into(rcv, out, NULL, &d), -BDR_EFORMAT);
	cr_assert_not_null(strstr(d.msg, "cannot hold"), "%s", d.msg);
	write_crafted(out, 100, 1000000, 1000000, 1000);
	cr_assert_eq(import_into(rcv, out, NULL, &d), -BDR_EFORMAT);
	/* Raw bytes that no chunk count could make. */
	write_crafted(out, 100, 2, (2ull << 20) + 1, 1000);
	cr_assert_eq(import_into(rcv, out, NULL, &d), -BDR_EFORMAT);
	cr_assert_not_null(strstr(d.msg, "raw bytes"), "%s", d.msg);
	/* A well-formed header over a manifest of zeros. */
	write_crafted(out, 100, 0, 0, 100);
	cr_assert_eq(import_into(rcv, out, NULL, &d), -BDR_EFORMAT);
	assert_nothing(rcv);
}

/* A version the library could not index (past BDR_VERSION_MAX, SQLite's
 * int64) is refused from the header, before anything is written. */
Test(bundle, versions_past_the_largest_are_refused)
{
	static const uint64_t huge[] = { BDR_VERSION_MAX + 1, UINT64_MAX };
	struct bdr_diag d;

	for (size_t i = 0; i < 2; i++) {
		crafted_version = huge[i];
		write_crafted(out, 100, 0, 0, 100);
		cr_assert_eq(import_into(rcv, out, NULL, &d), -BDR_ELIMIT);
		cr_assert_not_null(strstr(d.msg, "is above the largest version number"), "%s", d.msg);
		assert_nothing(rcv);
	}
	crafted_version = 1;
}

Test(bundle, magic_and_format_are_checked_first)
{
	struct bdr_diag d;
	uint8_t *buf;
	size_t len;

	buf = v1_bundle(&len);
	buf[8] = 2; /* format */
	put_file(out, buf, len);
	cr_assert_eq(import_into(rcv, out, NULL, &d), -BDR_EVERSION);
	cr_assert_not_null(strstr(d.msg, "format 2"), "%s", d.msg);
	buf[0] = 'X';
	put_file(out, buf, len);
	cr_assert_eq(import_into(rcv, out, NULL, &d), -BDR_EFORMAT);
	cr_assert_not_null(strstr(d.msg, "not a bdr bundle"), "%s", d.msg);
	free(buf);
}

Test(bundle, an_existing_file_is_never_overwritten)
{
	struct bdr_bundle_create_req req = { .package = "app", .site = "central", .key = &key };
	struct bdr_diag d = { { 0 } };
	size_t len;
	uint8_t *buf;

	tu_import(snd, &key, "app", src);
	tu_write(out, "keep", 4);
	cr_assert_eq(bdr_bundle_create(snd, &req, out, NULL, &d), -EEXIST);
	buf = tu_read(out, &len);
	cr_assert_eq(len, 4);
	free(buf);
}
