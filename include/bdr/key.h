/* Site identity: an Ed25519 key pair. Key files hold the 32-byte seed in
 * base64 (one line), mode 0600; public keys are shown in base64 too. */
#ifndef BDR_KEY_H
#define BDR_KEY_H

#include <stdint.h>
#include <sodium.h>

#define BDR_PK_LEN crypto_sign_PUBLICKEYBYTES /* 32 */
#define BDR_SK_LEN crypto_sign_SECRETKEYBYTES /* 64 */
#define BDR_SIG_LEN crypto_sign_BYTES         /* 64 */
#define BDR_KEY_B64_LEN 44                    /* base64 of 32 bytes, no NUL */

struct bdr_key {
	uint8_t pk[BDR_PK_LEN];
	uint8_t sk[BDR_SK_LEN];
};

struct bdr_diag;
void bdr_key_generate(struct bdr_key *k);
/* Writes path with O_EXCL, mode 0600; never overwrites. */
int bdr_key_save(const struct bdr_key *k, const char *path);
/* Loads a key file: a regular file, private to its owner (no group or
 * other bits), holding one line of BDR_KEY_B64_LEN base64 characters. d
 * says "key file 'PATH': why". */
int bdr_key_load(struct bdr_key *k, const char *path, struct bdr_diag *d);
/* The same checks without keeping the key; d says only why. */
int bdr_key_check(const char *path, struct bdr_diag *d);
/* out must hold BDR_KEY_B64_LEN + 1 bytes. */
void bdr_key_pk_to_b64(const uint8_t pk[BDR_PK_LEN], char *out);
int bdr_key_pk_from_b64(uint8_t pk[BDR_PK_LEN], const char *b64);
void bdr_key_wipe(struct bdr_key *k);

#endif
