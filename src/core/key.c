/* Site keys: Ed25519 from a 32-byte seed; the key file holds the seed in
 * base64 (original alphabet, padded) on one line, mode 0600. Secrets are
 * wiped from every buffer they pass through. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bdr/error.h"
#include "bdr/key.h"
#include "fsutil.h"

#define SEED_LEN crypto_sign_SEEDBYTES
#define B64_VARIANT sodium_base64_VARIANT_ORIGINAL
#define KEY_FILE_MAX (BDR_KEY_B64_LEN + 1) /* the line and its newline */

_Static_assert(SEED_LEN == 32, "seed is 32 bytes");
_Static_assert(BDR_KEY_B64_LEN == 4 * ((SEED_LEN + 2) / 3), "base64 of a seed");
_Static_assert(BDR_PK_LEN == SEED_LEN, "public key and seed have one base64 length");

static void key_from_seed(struct bdr_key *k, const uint8_t seed[SEED_LEN])
{
	crypto_sign_seed_keypair(k->pk, k->sk, seed);
}

void bdr_key_generate(struct bdr_key *k)
{
	uint8_t seed[SEED_LEN];

	/* Without a working RNG there is no safe key to return. */
	if (sodium_init() < 0)
		abort();
	randombytes_buf(seed, sizeof(seed));
	key_from_seed(k, seed);
	sodium_memzero(seed, sizeof(seed));
}

/* Makes the new directory entry durable too. */
static int fsync_parent(const char *path)
{
	char buf[PATH_MAX];
	int err = bdr_fs_path(buf, sizeof(buf), "%s", path);

	return err ? err : bdr_fs_fsync_dir(dirname(buf));
}

int bdr_key_save(const struct bdr_key *k, const char *path)
{
	char line[BDR_KEY_B64_LEN + 2];
	uint8_t seed[SEED_LEN];
	int fd, err;

	crypto_sign_ed25519_sk_to_seed(seed, k->sk);
	sodium_bin2base64(line, sizeof(line), seed, sizeof(seed), B64_VARIANT);
	sodium_memzero(seed, sizeof(seed));
	line[BDR_KEY_B64_LEN] = '\n';

	fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		err = -errno;
		goto out;
	}
	err = bdr_fs_write_all(fd, line, BDR_KEY_B64_LEN + 1);
	if (!err && fsync(fd) < 0)
		err = -errno;
	if (close(fd) < 0 && !err)
		err = -errno;
	if (err)
		unlink(path); /* ours: O_EXCL created it */
	else
		err = fsync_parent(path);
out:
	sodium_memzero(line, sizeof(line));
	return err;
}

static int not_one_line(const char *path, struct bdr_diag *d)
{
	(void)path;
	return bdr_diag_set(d, -BDR_EKEY, "malformed: expected one line of %d base64 characters",
			    BDR_KEY_B64_LEN);
}

/* A regular file private to its owner, of at most KEY_FILE_MAX bytes
 * (*size). Checked on the open descriptor, so it is the file we read. */
static int check_key_file(int fd, const char *path, size_t *size, struct bdr_diag *d)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return bdr_diag_set(d, -errno, "%s", strerror(errno));
	if (!S_ISREG(st.st_mode))
		return bdr_diag_set(d, -EINVAL, "not a regular file%s",
				    S_ISDIR(st.st_mode) ? " (a directory)" : "");
	if (st.st_mode & 077)
		return bdr_diag_set(d, -EPERM,
				    "permissions %04o are too open: it must not be "
				    "accessible by group or others (chmod 600)",
				    (unsigned)(st.st_mode & 07777));
	if (st.st_size > KEY_FILE_MAX)
		return not_one_line(path, d);
	*size = (size_t)st.st_size;
	return 0;
}

/* One line: exactly BDR_KEY_B64_LEN base64 characters and a newline
 * (tolerated missing at end of file). */
static int parse_key_line(const char *buf, size_t len, uint8_t seed[SEED_LEN], const char *path,
			  struct bdr_diag *d)
{
	uint8_t tmp[BDR_KEY_B64_LEN]; /* more than any 44 characters decode to */
	size_t bin_len = 0;
	const char *end = NULL;
	int err = 0;

	if (len == BDR_KEY_B64_LEN + 1 && buf[BDR_KEY_B64_LEN] == '\n')
		len--;
	if (len != BDR_KEY_B64_LEN)
		return not_one_line(path, d);
	if (sodium_base642bin(tmp, sizeof(tmp), buf, len, NULL, &bin_len, &end, B64_VARIANT) != 0 ||
	    end != buf + len)
		err = bdr_diag_set(d, -BDR_EKEY, "malformed: not valid base64");
	else if (bin_len != SEED_LEN)
		err = bdr_diag_set(d, -BDR_EKEY, "malformed: decodes to %zu bytes, expected %d",
				   bin_len, SEED_LEN);
	else
		memcpy(seed, tmp, SEED_LEN);
	sodium_memzero(tmp, sizeof(tmp));
	return err;
}

/* Reads the seed from a key file that passes check_key_file; d says why
 * not, without the path (the callers name it their way). */
static int read_seed(const char *path, uint8_t seed[SEED_LEN], struct bdr_diag *d)
{
	char buf[KEY_FILE_MAX];
	size_t len = 0;
	int fd, err;

	if (sodium_init() < 0)
		return bdr_diag_set(d, -EIO, "libsodium failed to initialise");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return bdr_diag_set(d, -errno, "%s", strerror(errno));
	err = check_key_file(fd, path, &len, d);
	if (!err && (err = bdr_fs_pread_all(fd, buf, len, 0)) < 0)
		bdr_diag_set(d, err, "%s", strerror(-err));
	close(fd);
	if (!err)
		err = parse_key_line(buf, len, seed, path, d);
	sodium_memzero(buf, sizeof(buf));
	return err;
}

int bdr_key_check(const char *path, struct bdr_diag *d)
{
	uint8_t seed[SEED_LEN];
	int err = read_seed(path, seed, d);

	sodium_memzero(seed, sizeof(seed));
	return err;
}

int bdr_key_load(struct bdr_key *k, const char *path, struct bdr_diag *d)
{
	uint8_t seed[SEED_LEN];
	struct bdr_diag why = { "" };
	int err = read_seed(path, seed, &why);

	if (!err)
		key_from_seed(k, seed);
	else
		bdr_diag_set(d, err, "key file '%s': %s", path, why.msg);
	sodium_memzero(seed, sizeof(seed));
	return err;
}

void bdr_key_pk_to_b64(const uint8_t pk[BDR_PK_LEN], char *out)
{
	sodium_bin2base64(out, BDR_KEY_B64_LEN + 1, pk, BDR_PK_LEN, B64_VARIANT);
}

int bdr_key_pk_from_b64(uint8_t pk[BDR_PK_LEN], const char *b64)
{
	uint8_t tmp[BDR_PK_LEN];
	size_t bin_len = 0, len = strlen(b64);
	const char *end = NULL;

	if (len != BDR_KEY_B64_LEN ||
	    sodium_base642bin(tmp, sizeof(tmp), b64, len, NULL, &bin_len, &end, B64_VARIANT) != 0 ||
	    end != b64 + len || bin_len != BDR_PK_LEN)
		return -BDR_EKEY;
	memcpy(pk, tmp, BDR_PK_LEN);
	return 0;
}

void bdr_key_wipe(struct bdr_key *k)
{
	sodium_memzero(k, sizeof(*k));
}
