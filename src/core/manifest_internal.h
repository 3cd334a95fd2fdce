/* Internal manifest entry points for tests and the fuzzer; nothing in the
 * daemon or the CLI may use them. They exist so that the structural
 * decoder can be exercised on its own: a fuzzer's mutations almost never
 * carry a valid signature, and the tests need correctly signed manifests
 * that break one structural rule each. */
#ifndef BDR_MANIFEST_INTERNAL_H
#define BDR_MANIFEST_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "bdr/manifest.h"

struct bdr_diag;

/* Wire constants of proto/manifest.md. */
#define BDR__MANIFEST_MAGIC "BDRMANIF"
#define BDR__MANIFEST_MAGIC_LEN 8
#define BDR__MANIFEST_ENTRY_MIN 60 /* bytes of the smallest possible entry */
#define BDR__MANIFEST_CHUNK_LEN 20 /* id + u32 length */

/* bdr_manifest_decode without steps 3 and 4 of the spec (expected signer,
 * signature): every structural check still applies, and the last 64 bytes
 * are still taken as the (unchecked) signature. */
int bdr__manifest_decode_unsigned(const uint8_t *buf, size_t len, struct bdr_manifest *m,
				  struct bdr_diag *d);

/* The signed part of m's encoding exactly as m is (m->signer included):
 * no validation, no signature. The fuzzer checks that whatever decodes
 * re-encodes to the same bytes. */
int bdr__manifest_encode_body(const struct bdr_manifest *m, uint8_t **out, size_t *len);

/* Sets m->signer, encodes and signs WITHOUT validating, so tests can build
 * malformed manifests with a valid signature. */
int bdr__manifest_encode_unchecked(struct bdr_manifest *m, const struct bdr_key *k, uint8_t **out,
				   size_t *len);

#endif
