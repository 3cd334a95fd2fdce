/* Manifest deltas (proto/wire.md, "Manifest delta"): a new signed
 * manifest's exact bytes as COPY and ADD operations against a base
 * manifest's bytes that the receiver already holds. The receiver rebuilds
 * the identical bytes and verifies the signature as for a full manifest:
 * security never depends on the delta, which only saves bytes on the wire.
 *
 * Pure: bytes in, bytes out. The module knows nothing of the manifest
 * layout; it works on any byte strings up to BDR_MAX_MANIFEST_BYTES, and
 * the matcher finds whatever the two have in common (entries kept,
 * renamed, moved, with a few fields or chunk refs changed).
 *
 *   sender:   bdr_mdelta_encode(old, old_len, new, new_len, &delta, &dlen);
 *             send delta instead of new when dlen < new_len
 *   receiver: bdr_mdelta_apply(old, old_len, delta, dlen, limit, &new, &len, &d);
 *             then decode and verify new as any received manifest */
#ifndef BDR_MDELTA_H
#define BDR_MDELTA_H

#include <stddef.h>
#include <stdint.h>

struct bdr_diag;

#define BDR_MDELTA_FORMAT 1
/* format u8, out_len u64, base hash, result hash (BLAKE2b-256 each). */
#define BDR_MDELTA_HASH_LEN 32u
#define BDR_MDELTA_HEADER_LEN (1u + 8u + 2u * BDR_MDELTA_HASH_LEN)
/* Operation codes. */
#define BDR_MDELTA_COPY 1u /* offset u64, len u32: base[offset, offset + len) */
#define BDR_MDELTA_ADD 2u  /* len u32, then len bytes */

/* Encodes cur as a delta against base into *out (malloc'd, *olen bytes).
 * cur must not be empty (a manifest never is): -EINVAL; base may be (the
 * delta is then one ADD). Either input over BDR_MAX_MANIFEST_BYTES:
 * -BDR_ELIMIT. -ENOMEM. Memory: the output and a table of blen / 6 to
 * blen / 3 bytes; time: linear in blen + clen (64 MiB: about 0.3 s). The
 * delta may be longer than cur (unrelated inputs: by at most
 * BDR_MDELTA_HEADER_LEN + 5 bytes); the caller sends whichever is
 * shorter. */
int bdr_mdelta_encode(const uint8_t *base, size_t blen, const uint8_t *cur, size_t clen,
		      uint8_t **out, size_t *olen);

/* Rebuilds the bytes a delta describes into *out (malloc'd, *olen bytes).
 * The delta is hostile; in this order:
 *   shorter than the header                          -BDR_EFORMAT
 *   format other than BDR_MDELTA_FORMAT              -BDR_EVERSION
 *   declared length 0                                -BDR_EFORMAT
 *   declared length over max_out                     -BDR_ELIMIT
 *   base hash differs from BLAKE2b-256(base)         -BDR_ENOTFOUND
 *     ("delta is against another base": fetch the full manifest)
 *   an operation that is unknown, of length 0, reads past the base or
 *   the delta, writes past the declared length; the operations ending
 *   before the declared length; bytes after it      -BDR_EFORMAT, the diag
 *     naming the operation's index ("op 7: COPY ...")
 *   result hash differs                              -BDR_EHASH
 * All operations are checked before anything is allocated, and the only
 * allocation is the declared length (<= max_out). d may be NULL. */
int bdr_mdelta_apply(const uint8_t *base, size_t blen, const uint8_t *delta, size_t dlen,
		     size_t max_out, uint8_t **out, size_t *olen, struct bdr_diag *d);

#endif
