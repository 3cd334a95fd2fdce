/* Typed little-endian readers and writers (see include/bdr/codec.h).
 * Byte order is spelled out with shifts, never with memcpy of a host
 * integer, so the encoding is the same on every host. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bdr/codec.h"
#include "bdr/error.h"

#define WBUF_MIN_CAP 64

void bdr_wbuf_init(struct bdr_wbuf *w, size_t max)
{
	*w = (struct bdr_wbuf){ .max = max };
}

void bdr_wbuf_free(struct bdr_wbuf *w)
{
	free(w->buf);
	bdr_wbuf_init(w, w->max);
}

/* Makes room for n more bytes; returns the write position or NULL (and
 * sets the sticky error). */
static uint8_t *wbuf_reserve(struct bdr_wbuf *w, size_t n)
{
	if (w->err)
		return NULL;
	if (n > w->max || w->len > w->max - n) {
		w->err = -BDR_ELIMIT;
		return NULL;
	}
	size_t need = w->len + n;
	if (need > w->cap) {
		size_t cap = w->cap ? w->cap : WBUF_MIN_CAP;
		while (cap < need && cap <= SIZE_MAX / 2)
			cap *= 2;
		if (cap < need)
			cap = need;
		if (cap > w->max) /* need <= max, so this still fits */
			cap = w->max;
		uint8_t *p = realloc(w->buf, cap);
		if (!p) {
			w->err = -ENOMEM;
			return NULL;
		}
		w->buf = p;
		w->cap = cap;
	}
	uint8_t *at = w->buf + w->len;
	w->len += n;
	return at;
}

static void put_le(struct bdr_wbuf *w, uint64_t v, size_t n)
{
	uint8_t *p = wbuf_reserve(w, n);

	for (size_t i = 0; p && i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

void bdr_w_u8(struct bdr_wbuf *w, uint8_t v) { put_le(w, v, 1); }
void bdr_w_u16(struct bdr_wbuf *w, uint16_t v) { put_le(w, v, 2); }
void bdr_w_u32(struct bdr_wbuf *w, uint32_t v) { put_le(w, v, 4); }
void bdr_w_u64(struct bdr_wbuf *w, uint64_t v) { put_le(w, v, 8); }
void bdr_w_i64(struct bdr_wbuf *w, int64_t v) { put_le(w, (uint64_t)v, 8); }

void bdr_w_bytes(struct bdr_wbuf *w, const void *p, size_t n)
{
	uint8_t *at = wbuf_reserve(w, n);

	if (at && n)
		memcpy(at, p, n);
}

void bdr_w_str16(struct bdr_wbuf *w, const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n > UINT16_MAX) {
		if (!w->err)
			w->err = -BDR_ELIMIT;
		return;
	}
	bdr_w_u16(w, (uint16_t)n);
	bdr_w_bytes(w, s, n);
}

int bdr_wbuf_finish(struct bdr_wbuf *w, uint8_t **out, size_t *len)
{
	int err = w->err;

	*out = NULL;
	*len = 0;
	if (!err && !w->buf && !(w->buf = malloc(1)))
		err = -ENOMEM;
	if (err) {
		bdr_wbuf_free(w);
		return err;
	}
	*out = w->buf;
	*len = w->len;
	bdr_wbuf_init(w, w->max);
	return 0;
}

void bdr_rbuf_init(struct bdr_rbuf *r, const void *p, size_t len)
{
	*r = (struct bdr_rbuf){ .p = p, .len = p ? len : 0 };
}

/* The next n bytes, or NULL (and the sticky error) if fewer remain. */
static const uint8_t *rbuf_take(struct bdr_rbuf *r, size_t n)
{
	static const uint8_t empty[1];

	if (r->err)
		return NULL;
	if (n > r->len - r->off) {
		r->err = -BDR_EFORMAT;
		return NULL;
	}
	const uint8_t *at = r->p ? r->p + r->off : empty;
	r->off += n;
	return at;
}

static uint64_t get_le(struct bdr_rbuf *r, size_t n)
{
	const uint8_t *p = rbuf_take(r, n);
	uint64_t v = 0;

	for (size_t i = 0; p && i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

uint8_t bdr_r_u8(struct bdr_rbuf *r) { return (uint8_t)get_le(r, 1); }
uint16_t bdr_r_u16(struct bdr_rbuf *r) { return (uint16_t)get_le(r, 2); }
uint32_t bdr_r_u32(struct bdr_rbuf *r) { return (uint32_t)get_le(r, 4); }
uint64_t bdr_r_u64(struct bdr_rbuf *r) { return get_le(r, 8); }
int64_t bdr_r_i64(struct bdr_rbuf *r) { return (int64_t)get_le(r, 8); }

void bdr_r_bytes(struct bdr_rbuf *r, void *out, size_t n)
{
	const uint8_t *p = rbuf_take(r, n);

	if (!n)
		return;
	if (p)
		memcpy(out, p, n);
	else
		memset(out, 0, n);
}

const uint8_t *bdr_r_view(struct bdr_rbuf *r, size_t n)
{
	return rbuf_take(r, n);
}

const uint8_t *bdr_r_str16(struct bdr_rbuf *r, size_t *n)
{
	size_t len = bdr_r_u16(r);
	const uint8_t *p = rbuf_take(r, len);

	*n = p ? len : 0;
	return p;
}

int bdr_rbuf_end(const struct bdr_rbuf *r)
{
	if (r->err)
		return r->err;
	return r->off == r->len ? 0 : -BDR_EFORMAT;
}
