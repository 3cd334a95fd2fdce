#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "bdr/error.h"
#include "bdr/key.h"
#include "testutil.h"

static char dir[PATH_MAX];

static void setup(void)
{
	tu_mkdtemp(dir, "key");
}

static void teardown(void)
{
	tu_rmrf(dir);
}

TestSuite(key, .init = setup, .fini = teardown);

static void path_in(char *buf, const char *name)
{
	snprintf(buf, PATH_MAX, "%s/%s", dir, name);
}

/* A key file with this content and mode. */
static void write_key_file(const char *path, const char *content, mode_t mode)
{
	tu_write(path, content, strlen(content));
	cr_assert_eq(chmod(path, mode), 0);
}

static int load(const char *path, struct bdr_diag *d)
{
	struct bdr_key k;

	memset(d->msg, 0, sizeof(d->msg));
	return bdr_key_load(&k, path, d);
}

Test(key, generate_save_load_round_trip)
{
	struct bdr_key a, b;
	struct bdr_diag d = { { 0 } };
	char path[PATH_MAX];
	struct stat st;

	bdr_key_generate(&a);
	path_in(path, "site.key");
	cr_assert_eq(bdr_key_save(&a, path), 0);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0600);
	cr_assert_eq(st.st_size, BDR_KEY_B64_LEN + 1, "one line and a newline");

	cr_assert_eq(bdr_key_load(&b, path, &d), 0, "%s", d.msg);
	cr_assert_arr_eq(a.pk, b.pk, BDR_PK_LEN);
	cr_assert_arr_eq(a.sk, b.sk, BDR_SK_LEN);

	/* The loaded key signs, and the generated key verifies it. */
	uint8_t sig[BDR_SIG_LEN];
	crypto_sign_detached(sig, NULL, (const uint8_t *)"msg", 3, b.sk);
	cr_assert_eq(crypto_sign_verify_detached(sig, (const uint8_t *)"msg", 3, a.pk), 0);
}

Test(key, file_format_is_base64_seed_and_newline)
{
	struct bdr_key k;
	char path[PATH_MAX], b64[BDR_KEY_B64_LEN + 1];
	uint8_t seed[32];
	size_t len;

	bdr_key_generate(&k);
	path_in(path, "k");
	cr_assert_eq(bdr_key_save(&k, path), 0);
	uint8_t *buf = tu_read(path, &len);
	crypto_sign_ed25519_sk_to_seed(seed, k.sk);
	sodium_bin2base64(b64, sizeof(b64), seed, sizeof(seed), sodium_base64_VARIANT_ORIGINAL);
	cr_assert_eq(len, BDR_KEY_B64_LEN + 1);
	cr_assert_arr_eq(buf, b64, BDR_KEY_B64_LEN);
	cr_assert_eq(buf[BDR_KEY_B64_LEN], '\n');
	free(buf);
}

Test(key, generated_keys_differ)
{
	struct bdr_key a, b;

	bdr_key_generate(&a);
	bdr_key_generate(&b);
	cr_assert_arr_neq(a.pk, b.pk, BDR_PK_LEN);
}

Test(key, save_never_overwrites)
{
	struct bdr_key a, b, c;
	struct bdr_diag d;
	char path[PATH_MAX];

	bdr_key_generate(&a);
	bdr_key_generate(&b);
	path_in(path, "k");
	cr_assert_eq(bdr_key_save(&a, path), 0);
	cr_assert_eq(bdr_key_save(&b, path), -EEXIST);
	cr_assert_eq(bdr_key_load(&c, path, &d), 0, "%s", d.msg);
	cr_assert_arr_eq(c.pk, a.pk, BDR_PK_LEN, "the first key is still there");

	/* Nor through a symlink to another file. */
	char other[PATH_MAX], link[PATH_MAX];
	path_in(other, "other");
	path_in(link, "link");
	tu_write(other, "x", 1);
	cr_assert_eq(symlink(other, link), 0);
	cr_assert_eq(bdr_key_save(&b, link), -EEXIST);
}

Test(key, save_to_missing_directory_fails)
{
	struct bdr_key k;
	char path[PATH_MAX];

	bdr_key_generate(&k);
	path_in(path, "no/such/dir/k");
	cr_assert_eq(bdr_key_save(&k, path), -ENOENT);
}

Test(key, load_refuses_group_or_other_access)
{
	struct bdr_key k;
	struct bdr_diag d;
	char path[PATH_MAX];

	bdr_key_generate(&k);
	path_in(path, "k");
	cr_assert_eq(bdr_key_save(&k, path), 0);
	const mode_t bad[] = { 0644, 0640, 0604, 0660, 0602 };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(chmod(path, bad[i]), 0);
		cr_assert_eq(load(path, &d), -EPERM, "mode %o", bad[i]);
		cr_assert_not_null(strstr(d.msg, "too open"), "%s", d.msg);
		cr_assert_not_null(strstr(d.msg, path), "%s", d.msg);
	}
	cr_assert_eq(chmod(path, 0400), 0);
	cr_assert_eq(load(path, &d), 0, "0400 is fine: %s", d.msg);
}

Test(key, load_rejects_malformed_content)
{
	struct bdr_diag d;
	char path[PATH_MAX];
	/* Every entry is wrong in one way. */
	const char *bad[] = {
		"",
		"\n",
		"not base64 at all, not base64 at all, nope!\n",     /* 44 chars, bad alphabet */
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n", /* two lines */
		" AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",  /* leading space */
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n", /* CRLF */
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB\n",   /* 33 bytes */
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=\n",   /* nonzero padding bits */
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA-\n",   /* url-safe alphabet */
	};

	path_in(path, "k");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		unlink(path);
		write_key_file(path, bad[i], 0600);
		cr_assert_eq(load(path, &d), -BDR_EKEY, "case %zu", i);
		cr_assert(strstr(d.msg, "malformed") || strstr(d.msg, "bytes"), "%s", d.msg);
		cr_assert_not_null(strstr(d.msg, path), "%s", d.msg);
	}
	/* Tolerated: the last newline missing. */
	unlink(path);
	write_key_file(path, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", 0600);
	cr_assert_eq(load(path, &d), 0, "%s", d.msg);
}

Test(key, load_rejects_wrong_length)
{
	struct bdr_diag d;
	char path[PATH_MAX];

	path_in(path, "k");
	/* base64 of 16 bytes: a well-formed line of the wrong length. */
	write_key_file(path, "AAAAAAAAAAAAAAAAAAAAAA==\n", 0600);
	cr_assert_eq(load(path, &d), -BDR_EKEY);
	cr_assert_not_null(strstr(d.msg, "malformed"), "%s", d.msg);
	/* base64 of 31 bytes is 44 characters too. */
	unlink(path);
	write_key_file(path, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==\n", 0600);
	cr_assert_eq(load(path, &d), -BDR_EKEY);
	cr_assert_not_null(strstr(d.msg, "decodes to 31 bytes"), "%s", d.msg);
	/* A long file. */
	unlink(path);
	write_key_file(path, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n", 0600);
	cr_assert_eq(load(path, &d), -BDR_EKEY);
}

Test(key, load_missing_and_non_regular)
{
	struct bdr_diag d;
	char path[PATH_MAX];

	path_in(path, "absent");
	cr_assert_eq(load(path, &d), -ENOENT);
	cr_assert_not_null(strstr(d.msg, path), "%s", d.msg);
	cr_assert_eq(chmod(dir, 0700), 0);
	cr_assert_eq(load(dir, &d), -EINVAL, "a directory is not a key file");
}

Test(key, public_key_base64)
{
	struct bdr_key k;
	char b64[BDR_KEY_B64_LEN + 1];
	uint8_t pk[BDR_PK_LEN];

	bdr_key_generate(&k);
	bdr_key_pk_to_b64(k.pk, b64);
	cr_assert_eq(strlen(b64), BDR_KEY_B64_LEN);
	cr_assert_eq(bdr_key_pk_from_b64(pk, b64), 0);
	cr_assert_arr_eq(pk, k.pk, BDR_PK_LEN);

	cr_assert_eq(bdr_key_pk_from_b64(pk, ""), -BDR_EKEY);
	cr_assert_eq(bdr_key_pk_from_b64(pk, "AAAAAAAAAAAAAAAAAAAAAA=="), -BDR_EKEY);
	cr_assert_eq(bdr_key_pk_from_b64(pk, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="), -BDR_EKEY);
	b64[3] = '*';
	cr_assert_eq(bdr_key_pk_from_b64(pk, b64), -BDR_EKEY);
}

Test(key, wipe_zeroes_everything)
{
	struct bdr_key k, zero;

	memset(&zero, 0, sizeof(zero));
	bdr_key_generate(&k);
	bdr_key_wipe(&k);
	cr_assert_arr_eq(&k, &zero, sizeof(k));
}
