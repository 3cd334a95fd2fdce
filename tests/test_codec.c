#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "bdr/codec.h"
#include "bdr/error.h"

static void finish(struct bdr_wbuf *w, uint8_t **out, size_t *len)
{
	cr_assert_eq(bdr_wbuf_finish(w, out, len), 0);
	cr_assert_not_null(*out);
	cr_assert_null(w->buf, "finish leaves the writer empty");
	cr_assert_eq(w->len, 0);
}

Test(codec, round_trip_every_type)
{
	struct bdr_wbuf w;
	struct bdr_rbuf r;
	uint8_t *buf, raw[5] = { 1, 2, 3, 4, 5 }, got[5];
	size_t len, n;

	bdr_wbuf_init(&w, 1024);
	bdr_w_u8(&w, 0xab);
	bdr_w_u16(&w, 0xbeef);
	bdr_w_u32(&w, 0xdeadbeef);
	bdr_w_u64(&w, 0x0123456789abcdefull);
	bdr_w_i64(&w, INT64_MIN);
	bdr_w_i64(&w, -2);
	bdr_w_bytes(&w, raw, sizeof(raw));
	bdr_w_str16(&w, "hello");
	bdr_w_str16(&w, "");
	bdr_w_bytes(&w, "xyz", 3);
	finish(&w, &buf, &len);
	cr_assert_eq(len, 1 + 2 + 4 + 8 + 8 + 8 + 5 + 7 + 2 + 3);

	bdr_rbuf_init(&r, buf, len);
	cr_assert_eq(bdr_r_u8(&r), 0xab);
	cr_assert_eq(bdr_r_u16(&r), 0xbeef);
	cr_assert_eq(bdr_r_u32(&r), 0xdeadbeef);
	cr_assert_eq(bdr_r_u64(&r), 0x0123456789abcdefull);
	cr_assert_eq(bdr_r_i64(&r), INT64_MIN);
	cr_assert_eq(bdr_r_i64(&r), -2);
	bdr_r_bytes(&r, got, sizeof(got));
	cr_assert_arr_eq(got, raw, sizeof(raw));
	const uint8_t *s = bdr_r_str16(&r, &n);
	cr_assert_eq(n, 5);
	cr_assert_arr_eq(s, "hello", 5);
	s = bdr_r_str16(&r, &n);
	cr_assert_not_null(s);
	cr_assert_eq(n, 0);
	cr_assert_eq(bdr_rbuf_left(&r), 3);
	cr_assert_arr_eq(bdr_r_view(&r, 3), "xyz", 3);
	cr_assert_eq(bdr_rbuf_end(&r), 0);
	free(buf);
}

Test(codec, little_endian_on_the_wire)
{
	struct bdr_wbuf w;
	uint8_t *buf;
	size_t len;
	const uint8_t want[] = { 0x34, 0x12, 0x78, 0x56, 0x34, 0x12, 0xfe, 0xff, 0xff, 0xff,
				 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 'h', 'i' };

	bdr_wbuf_init(&w, 64);
	bdr_w_u16(&w, 0x1234);
	bdr_w_u32(&w, 0x12345678);
	bdr_w_i64(&w, -2);
	bdr_w_str16(&w, "hi");
	finish(&w, &buf, &len);
	cr_assert_eq(len, sizeof(want));
	cr_assert_arr_eq(buf, want, sizeof(want));
	free(buf);
}

Test(codec, short_read_is_sticky)
{
	const uint8_t in[3] = { 1, 2, 3 };
	struct bdr_rbuf r;
	uint8_t out[4] = { 9, 9, 9, 9 };
	size_t n = 7;

	bdr_rbuf_init(&r, in, sizeof(in));
	cr_assert_eq(bdr_r_u16(&r), 0x0201);
	cr_assert_eq(bdr_r_u32(&r), 0, "short read yields 0");
	cr_assert_eq(r.err, -BDR_EFORMAT);
	/* Everything after the first failure reads nothing, even what would fit. */
	cr_assert_eq(bdr_r_u8(&r), 0);
	cr_assert_eq(bdr_rbuf_left(&r), 0);
	bdr_r_bytes(&r, out, sizeof(out));
	cr_assert_eq(out[0] | out[1] | out[2] | out[3], 0, "short bytes are zero-filled");
	cr_assert_null(bdr_r_view(&r, 0));
	cr_assert_null(bdr_r_str16(&r, &n));
	cr_assert_eq(n, 0);
	cr_assert_eq(bdr_rbuf_end(&r), -BDR_EFORMAT);
}

Test(codec, each_reader_fails_one_byte_short)
{
	uint8_t in[8] = { 0 };
	struct bdr_rbuf r;
	uint8_t out[8];

	for (size_t w = 1; w <= 8; w *= 2) {
		bdr_rbuf_init(&r, in, w - 1);
		switch (w) {
		case 1: bdr_r_u8(&r); break;
		case 2: bdr_r_u16(&r); break;
		case 4: bdr_r_u32(&r); break;
		case 8: bdr_r_u64(&r); break;
		}
		cr_assert_eq(bdr_rbuf_end(&r), -BDR_EFORMAT, "u%zu from %zu bytes", w * 8, w - 1);
	}
	bdr_rbuf_init(&r, in, 7);
	bdr_r_i64(&r);
	cr_assert_eq(bdr_rbuf_end(&r), -BDR_EFORMAT);
	bdr_rbuf_init(&r, in, 7);
	bdr_r_bytes(&r, out, 8);
	cr_assert_eq(bdr_rbuf_end(&r), -BDR_EFORMAT);
	bdr_rbuf_init(&r, in, 7);
	cr_assert_null(bdr_r_view(&r, 8));
	cr_assert_eq(bdr_rbuf_end(&r), -BDR_EFORMAT);
}

Test(codec, str16_length_past_end)
{
	const uint8_t in[] = { 5, 0, 'a', 'b' }; /* claims 5 bytes, has 2 */
	struct bdr_rbuf r;
	size_t n = 1;

	bdr_rbuf_init(&r, in, sizeof(in));
	cr_assert_null(bdr_r_str16(&r, &n));
	cr_assert_eq(n, 0);
	cr_assert_eq(bdr_rbuf_end(&r), -BDR_EFORMAT);
}

Test(codec, end_check_rejects_trailing_bytes)
{
	const uint8_t in[5] = { 1, 0, 0, 0, 7 };
	struct bdr_rbuf r;

	bdr_rbuf_init(&r, in, sizeof(in));
	cr_assert_eq(bdr_r_u32(&r), 1);
	cr_assert_eq(bdr_rbuf_left(&r), 1);
	cr_assert_eq(bdr_rbuf_end(&r), -BDR_EFORMAT, "one byte left over");
	bdr_r_u8(&r);
	cr_assert_eq(bdr_rbuf_end(&r), 0);
}

Test(codec, empty_input)
{
	struct bdr_rbuf r;

	bdr_rbuf_init(&r, NULL, 0);
	cr_assert_eq(bdr_rbuf_end(&r), 0);
	cr_assert_not_null(bdr_r_view(&r, 0));
	bdr_r_u8(&r);
	cr_assert_eq(bdr_rbuf_end(&r), -BDR_EFORMAT);
}

Test(codec, wbuf_grows_by_doubling_to_large_sizes)
{
	struct bdr_wbuf w;
	uint8_t *buf;
	size_t len, n = 100000, caps = 0, last = 0;

	bdr_wbuf_init(&w, n * 4);
	for (size_t i = 0; i < n; i++) {
		bdr_w_u32(&w, (uint32_t)i);
		if (w.cap != last)
			caps++, last = w.cap;
	}
	cr_assert_lt(caps, 20, "capacity doubles: %zu reallocations", caps);
	finish(&w, &buf, &len);
	cr_assert_eq(len, n * 4);
	struct bdr_rbuf r;
	bdr_rbuf_init(&r, buf, len);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(bdr_r_u32(&r), (uint32_t)i);
	cr_assert_eq(bdr_rbuf_end(&r), 0);
	free(buf);
}

Test(codec, wbuf_respects_max)
{
	struct bdr_wbuf w;
	uint8_t *buf = (uint8_t *)1;
	size_t len = 99;

	bdr_wbuf_init(&w, 10);
	bdr_w_u64(&w, 1);
	bdr_w_u16(&w, 2); /* exactly 10 */
	cr_assert_eq(w.err, 0);
	cr_assert_leq(w.cap, 10, "never allocates past max");
	bdr_w_u8(&w, 3);
	cr_assert_eq(w.err, -BDR_ELIMIT);
	cr_assert_eq(w.len, 10);
	bdr_w_u8(&w, 4); /* sticky */
	cr_assert_eq(w.len, 10);
	cr_assert_eq(bdr_wbuf_finish(&w, &buf, &len), -BDR_ELIMIT);
	cr_assert_null(buf);
	cr_assert_eq(len, 0);
	cr_assert_null(w.buf, "failure frees the buffer");
}

Test(codec, wbuf_huge_write_does_not_overflow)
{
	struct bdr_wbuf w;

	bdr_wbuf_init(&w, SIZE_MAX);
	bdr_w_u8(&w, 1);
	bdr_w_bytes(&w, "", SIZE_MAX); /* len + n wraps */
	cr_assert_eq(w.err, -BDR_ELIMIT);
	bdr_wbuf_free(&w);
	cr_assert_null(w.buf);
}

Test(codec, str16_too_long)
{
	struct bdr_wbuf w;
	char *s = malloc(70000);

	memset(s, 'a', 69999);
	s[69999] = '\0';
	bdr_wbuf_init(&w, 1 << 20);
	bdr_w_str16(&w, s);
	cr_assert_eq(w.err, -BDR_ELIMIT);
	bdr_wbuf_free(&w);
	free(s);
}

Test(codec, finish_on_empty_writer)
{
	struct bdr_wbuf w;
	uint8_t *buf;
	size_t len;

	bdr_wbuf_init(&w, 0);
	finish(&w, &buf, &len);
	cr_assert_eq(len, 0);
	free(buf);
	bdr_w_u8(&w, 1); /* max 0: nothing fits */
	cr_assert_eq(w.err, -BDR_ELIMIT);
	bdr_wbuf_free(&w);
}
