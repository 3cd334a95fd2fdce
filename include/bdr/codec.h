/* Typed little-endian readers and writers with bounds and an end check.
 * Used by every encoding in bdr (manifests now, wire messages and bundles
 * later), so that no decoder ever indexes a buffer by hand.
 *
 * Errors are sticky: after the first failure every call is a no-op and the
 * final bdr_wbuf_finish()/bdr_rbuf_end() reports it, so encoders and
 * decoders read straight through without an if after every field. */
#ifndef BDR_CODEC_H
#define BDR_CODEC_H

#include <stddef.h>
#include <stdint.h>

struct bdr_wbuf {
	uint8_t *buf; /* owned, realloc'd as it grows */
	size_t len;
	size_t cap;
	size_t max; /* never grows past this: -BDR_ELIMIT */
	int err;
};

void bdr_wbuf_init(struct bdr_wbuf *w, size_t max);
void bdr_wbuf_free(struct bdr_wbuf *w);
void bdr_w_u8(struct bdr_wbuf *w, uint8_t v);
void bdr_w_u16(struct bdr_wbuf *w, uint16_t v);
void bdr_w_u32(struct bdr_wbuf *w, uint32_t v);
void bdr_w_u64(struct bdr_wbuf *w, uint64_t v);
void bdr_w_i64(struct bdr_wbuf *w, int64_t v);
void bdr_w_bytes(struct bdr_wbuf *w, const void *p, size_t n);
/* u16 length, then the bytes (no NUL); NULL writes an empty string, and a
 * string over UINT16_MAX bytes is -BDR_ELIMIT. */
void bdr_w_str16(struct bdr_wbuf *w, const char *s);
/* Returns w->err; on success hands the buffer to the caller (*out, *len)
 * and leaves w empty. On failure frees it. */
int bdr_wbuf_finish(struct bdr_wbuf *w, uint8_t **out, size_t *len);

struct bdr_rbuf {
	const uint8_t *p; /* borrowed */
	size_t len;
	size_t off;
	int err;
};

void bdr_rbuf_init(struct bdr_rbuf *r, const void *p, size_t len);
uint8_t bdr_r_u8(struct bdr_rbuf *r);
uint16_t bdr_r_u16(struct bdr_rbuf *r);
uint32_t bdr_r_u32(struct bdr_rbuf *r);
uint64_t bdr_r_u64(struct bdr_rbuf *r);
int64_t bdr_r_i64(struct bdr_rbuf *r);
/* Copies n bytes; on short input zero-fills out and sets err. */
void bdr_r_bytes(struct bdr_rbuf *r, void *out, size_t n);
/* Borrows n bytes in place (NULL and err on short input). */
const uint8_t *bdr_r_view(struct bdr_rbuf *r, size_t n);
/* Borrows a str16 (u16 length, then the bytes) in place; *n receives the
 * length. NULL, *n = 0 and err on short input. The bytes are not checked
 * for NUL: decoders decide what a valid string is. */
const uint8_t *bdr_r_str16(struct bdr_rbuf *r, size_t *n);
/* Bytes left to read; decoders check counts against this before they
 * allocate, so a hostile count cannot make them allocate more than the
 * input could describe. */
static inline size_t bdr_rbuf_left(const struct bdr_rbuf *r) { return r->err ? 0 : r->len - r->off; }
/* 0 if no error and every byte was consumed, else -BDR_EFORMAT. */
int bdr_rbuf_end(const struct bdr_rbuf *r);

#endif
