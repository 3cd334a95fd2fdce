/* The messages of the wire protocol (proto/wire.md, "Messages").
 *
 * Each type has three functions: get_X reads the fields and checks every
 * length and count against its limit and then against the bytes left
 * before it takes anything; check_X applies every value rule; put_X
 * writes. The decoder runs get_X then check_X, the encoder check_X then
 * put_X, so the encoder never writes what a decoder rejects. Every field is
 * either read and written or absent on both sides, and the decoder zeroes
 * the message first, so a decoded message re-encodes to the bytes it came
 * from (tests/fuzz/fuzz_wire.c checks it). */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "bdr/error.h"
#include "bdr/wire.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* proto/wire.md "Sizes": the longest encoding of each message. */
#define CHUNK_FIXED (8 + BDR_CHUNK_ID_LEN + 4 + 1) /* xfer id raw_len codec */
#define DICTREF_MAX (1 + 2 + BDR_MAX_PACKAGE_NAME + 8 + 2 + BDR_MAX_PATH + 8 + 4)
#define CHUNK_MAX (1 + CHUNK_FIXED + DICTREF_MAX + 4 + BDR_CODEC_DATA_MAX)
#define NEED_MAX (1 + 8 + 4 + 4 + BDR_WIRE_NEED_MAX * BDR_WIRE_REF_LEN)
#define MANIFEST_MAX (1 + 8 + 8 + 4 + BDR_WIRE_MANIFEST_PIECE)
#define OFFER_MAX (1 + 8 + 2 + BDR_MAX_PACKAGE_NAME + 8 + 8 + 4 + 8)
#define DONE_MAX (1 + 8 + 1 + 4 + 2 + BDR_WIRE_TEXT_MAX) /* the longest text message */
#define REPORT_MAX (1 + 2 + BDR_MAX_SITE_NAME + 2 + BDR_MAX_PACKAGE_NAME + 8 + 1 + 4 * 8 + \
		    2 + BDR_WIRE_TEXT_MAX)

_Static_assert(CHUNK_FIXED == 29 && DICTREF_MAX == 4249, "CHUNK layout as in proto/wire.md");
_Static_assert(CHUNK_MAX <= BDR_WIRE_MSG_MAX, "the largest CHUNK fits a message");
_Static_assert(NEED_MAX == 163857 && NEED_MAX <= BDR_WIRE_MSG_MAX, "the largest NEED fits");
_Static_assert(MANIFEST_MAX == 262165 && MANIFEST_MAX <= BDR_WIRE_MSG_MAX, "a piece fits");
_Static_assert(OFFER_MAX <= BDR_WIRE_MSG_MAX && DONE_MAX <= BDR_WIRE_MSG_MAX &&
		       REPORT_MAX <= BDR_WIRE_MSG_MAX,
	       "the rest fit");
_Static_assert(BDR_WIRE_REF_LEN == BDR_CHUNK_ID_LEN + 4, "a ref is an id and a u32");
_Static_assert(BDR_CHUNK_MAX_LIMIT <= BDR_CODEC_DATA_MAX, "a raw chunk fits a CHUNK");
_Static_assert(BDR_WIRE_TEXT_MAX <= UINT16_MAX && BDR_MAX_PATH <= UINT16_MAX &&
		       BDR_MAX_PACKAGE_NAME <= UINT16_MAX,
	       "texts and names fit a str16");

static const char *const type_names[] = {
	[BDR_MSG_AUTH] = "AUTH",   [BDR_MSG_OFFER] = "OFFER", [BDR_MSG_MANIFEST] = "MANIFEST",
	[BDR_MSG_NEED] = "NEED",   [BDR_MSG_CHUNK] = "CHUNK", [BDR_MSG_DONE] = "DONE",
	[BDR_MSG_CANCEL] = "CANCEL", [BDR_MSG_ERROR] = "ERROR", [BDR_MSG_PING] = "PING",
	[BDR_MSG_PONG] = "PONG", [BDR_MSG_REPORT] = "REPORT", [BDR_MSG_REMOVE] = "REMOVE",
};

const char *bdr_wire_type_name(uint8_t type)
{
	if (type < ARRAY_LEN(type_names) && type_names[type])
		return type_names[type];
	return "unknown";
}

/* ---- diagnostics ---- */

/* "TYPE: why", so every failure names the message and the field. */
static int msg_err(struct bdr_diag *d, int err, uint8_t type, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int msg_err(struct bdr_diag *d, int err, uint8_t type, const char *fmt, ...)
{
	char why[448];
	va_list ap;

	if (!d)
		return err;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return bdr_diag_set(d, err, "%s: %s", bdr_wire_type_name(type), why);
}

/* ---- value rules, shared by decoder and encoder ---- */

/* 1..max: 0 is malformed, above max a limit. */
static int check_len(struct bdr_diag *d, uint8_t type, const char *field, uint64_t v,
		     uint64_t max)
{
	if (v == 0)
		return msg_err(d, -BDR_EFORMAT, type, "%s is 0", field);
	if (v > max)
		return msg_err(d, -BDR_ELIMIT, type, "%s %" PRIu64 " exceeds %" PRIu64, field, v,
			       max);
	return 0;
}

/* text16: one printable line of at most BDR_WIRE_TEXT_MAX bytes. */
static int check_text_bytes(struct bdr_diag *d, uint8_t type, const char *field, const void *p,
			    size_t n)
{
	const uint8_t *b = p;

	if (n > BDR_WIRE_TEXT_MAX)
		return msg_err(d, -BDR_ELIMIT, type, "%s of %zu bytes exceeds %u", field, n,
			       BDR_WIRE_TEXT_MAX);
	for (size_t i = 0; i < n; i++)
		if (b[i] < 0x20 || b[i] == 0x7f)
			return msg_err(d, -BDR_EFORMAT, type,
				       "%s: control byte 0x%02x at offset %zu", field, b[i], i);
	return 0;
}

/* strnlen: an array the caller forgot to terminate reads as too long. */
static int check_text(struct bdr_diag *d, uint8_t type, const char *field, const char *s)
{
	return check_text_bytes(d, type, field, s, strnlen(s, BDR_WIRE_TEXT_MAX + 1));
}

/* prefix: "" for OFFER's package, "dict " for a dictref's. */
static int check_package(struct bdr_diag *d, uint8_t type, const char *prefix, const char *s)
{
	struct bdr_diag why = { { 0 } };
	int err;

	if (strnlen(s, BDR_MAX_PACKAGE_NAME + 1) > BDR_MAX_PACKAGE_NAME)
		return msg_err(d, -BDR_ELIMIT, type, "%spackage name exceeds %d bytes", prefix,
			       BDR_MAX_PACKAGE_NAME);
	err = bdr_manifest_check_package(s, &why);
	return err ? msg_err(d, err, type, "%s%s", prefix, why.msg) : 0;
}

/* The manifest's path rules; a bad path is a malformed message here
 * (wire.h promises -BDR_EFORMAT or -BDR_ELIMIT), not -BDR_EPATH. */
static int check_dict_path(struct bdr_diag *d, const char *s)
{
	struct bdr_diag why = { { 0 } };
	int err;

	if (strnlen(s, BDR_MAX_PATH + 1) > BDR_MAX_PATH)
		return msg_err(d, -BDR_ELIMIT, BDR_MSG_CHUNK, "dict path exceeds %d bytes",
			       BDR_MAX_PATH);
	err = bdr_manifest_check_path(s, &why);
	if (err == -BDR_EPATH)
		err = -BDR_EFORMAT;
	return err ? msg_err(d, err, BDR_MSG_CHUNK, "dict path: %s", why.msg) : 0;
}

static int check_none(const struct bdr_msg *m, struct bdr_diag *d)
{
	(void)m, (void)d;
	return 0;
}

static int check_offer(const struct bdr_msg *m, struct bdr_diag *d)
{
	int err = check_package(d, m->type, "", m->offer.package);

	if (err)
		return err;
	if (m->offer.version == 0)
		return msg_err(d, -BDR_EFORMAT, m->type, "version 0 is invalid");
	err = check_len(d, m->type, "manifest_len", m->offer.manifest_len, BDR_MAX_MANIFEST_BYTES);
	if (err)
		return err;
	if (m->offer.flags & ~BDR_OFFER_DELTA)
		return msg_err(d, -BDR_EFORMAT, m->type, "reserved flag bits 0x%" PRIx32 " set",
			       m->offer.flags & ~BDR_OFFER_DELTA);
	if (!(m->offer.flags & BDR_OFFER_DELTA))
		return m->offer.base ? msg_err(d, -BDR_EFORMAT, m->type, "base without the DELTA flag")
				     : 0;
	if (m->offer.base == 0)
		return msg_err(d, -BDR_EFORMAT, m->type, "base version 0 is invalid");
	if (m->offer.base == m->offer.version)
		return msg_err(d, -BDR_EFORMAT, m->type, "delta against the offered version itself");
	return 0;
}

/* Checked before the piece's bytes are taken. */
static int check_piece(const struct bdr_msg *m, struct bdr_diag *d)
{
	uint32_t len = m->manifest.len;
	int err = check_len(d, m->type, "len", len, BDR_WIRE_MANIFEST_PIECE);

	if (err)
		return err;
	if (m->manifest.offset > BDR_MAX_MANIFEST_BYTES - len)
		return msg_err(d, -BDR_ELIMIT, m->type,
			       "offset %" PRIu64 " + len %" PRIu32 " exceeds the manifest limit of %llu",
			       m->manifest.offset, len, BDR_MAX_MANIFEST_BYTES);
	return 0;
}

static int check_manifest(const struct bdr_msg *m, struct bdr_diag *d)
{
	int err = check_piece(m, d);

	if (!err && !m->manifest.data)
		err = msg_err(d, -EINVAL, m->type, "data is NULL");
	return err;
}

/* Flags and count, checked before the refs are taken. */
static int check_need_head(const struct bdr_msg *m, struct bdr_diag *d)
{
	const uint32_t known = BDR_NEED_LAST | BDR_NEED_FORCE | BDR_NEED_PLAIN;

	if (m->need.count > BDR_WIRE_NEED_MAX)
		return msg_err(d, -BDR_ELIMIT, m->type, "count %" PRIu32 " exceeds %u",
			       m->need.count, BDR_WIRE_NEED_MAX);
	if (m->need.flags & ~known)
		return msg_err(d, -BDR_EFORMAT, m->type, "reserved flag bits 0x%" PRIx32 " set",
			       m->need.flags & ~known);
	if (m->need.count == 0 && !(m->need.flags & BDR_NEED_LAST))
		return msg_err(d, -BDR_EFORMAT, m->type, "count 0 without LAST");
	return 0;
}

static int check_need(const struct bdr_msg *m, struct bdr_diag *d)
{
	int err = check_need_head(m, d);
	struct bdr_chunk_ref ref;

	if (err)
		return err;
	if (m->need.count && !m->need.refs)
		return msg_err(d, -EINVAL, m->type, "refs is NULL");
	for (uint32_t i = 0; i < m->need.count; i++) {
		bdr_wire_need_ref(m, i, &ref);
		if (ref.len == 0 || ref.len > BDR_CHUNK_MAX_LIMIT)
			return msg_err(d, ref.len ? -BDR_ELIMIT : -BDR_EFORMAT, m->type,
				       "ref %" PRIu32 ": len %" PRIu32 " is not in 1..%u", i,
				       ref.len, BDR_CHUNK_MAX_LIMIT);
	}
	return 0;
}

static int check_dictref(const struct bdr_dictref *r, struct bdr_diag *d)
{
	int err;

	if (r->kind == BDR_DICTREF_CHUNK)
		return 0;
	if (r->kind != BDR_DICTREF_FILE)
		return msg_err(d, -BDR_EFORMAT, BDR_MSG_CHUNK, "dict kind %u unknown", r->kind);
	if ((err = check_package(d, BDR_MSG_CHUNK, "dict ", r->package)))
		return err;
	if (r->version == 0)
		return msg_err(d, -BDR_EFORMAT, BDR_MSG_CHUNK, "dict version 0 is invalid");
	if ((err = check_dict_path(d, r->path)))
		return err;
	if ((err = check_len(d, BDR_MSG_CHUNK, "dict len", r->len, BDR_CODEC_DICT_MAX)))
		return err;
	if (r->offset > UINT64_MAX - r->len)
		return msg_err(d, -BDR_EFORMAT, BDR_MSG_CHUNK,
			       "dict offset %" PRIu64 " + len %" PRIu32 " overflows", r->offset,
			       r->len);
	return 0;
}

/* raw_len and codec, checked before the dictref and the data are taken. */
static int check_chunk_head(const struct bdr_msg *m, struct bdr_diag *d)
{
	int err = check_len(d, m->type, "raw_len", m->chunk.raw_len, BDR_CHUNK_MAX_LIMIT);

	if (!err && m->chunk.codec > BDR_CODEC_ZSTD_DICT)
		err = msg_err(d, -BDR_EFORMAT, m->type, "codec %u unknown", m->chunk.codec);
	return err;
}

/* len, checked before the data is taken. */
static int check_chunk_len(const struct bdr_msg *m, struct bdr_diag *d)
{
	if (m->chunk.codec != BDR_CODEC_RAW)
		return check_len(d, m->type, "len", m->chunk.len, BDR_CODEC_DATA_MAX);
	if (m->chunk.len != m->chunk.raw_len)
		return msg_err(d, -BDR_EFORMAT, m->type,
			       "raw codec: len %" PRIu32 " differs from raw_len %" PRIu32,
			       m->chunk.len, m->chunk.raw_len);
	return 0;
}

static int check_chunk(const struct bdr_msg *m, struct bdr_diag *d)
{
	int err = check_chunk_head(m, d);

	if (!err && bdr_codec_has_dict(m->chunk.codec))
		err = check_dictref(&m->chunk.dict, d);
	if (!err)
		err = check_chunk_len(m, d);
	if (!err && !m->chunk.data)
		err = msg_err(d, -EINVAL, m->type, "data is NULL");
	return err;
}

static int check_done(const struct bdr_msg *m, struct bdr_diag *d)
{
	uint8_t status = m->done.status;
	int32_t error = m->done.error;

	if (status > BDR_DONE_FAILED)
		return msg_err(d, -BDR_EFORMAT, m->type, "status %u unknown", status);
	if (status != BDR_DONE_FAILED && error != 0)
		return msg_err(d, -BDR_EFORMAT, m->type, "error %" PRId32 " with status %u (must be 0)",
			       error, status);
	if (status == BDR_DONE_FAILED && error >= 0)
		return msg_err(d, -BDR_EFORMAT, m->type,
			       "error %" PRId32 " with status 2 (must be negative)", error);
	return check_text(d, m->type, "message", m->done.message);
}

static int check_cancel(const struct bdr_msg *m, struct bdr_diag *d)
{
	return check_text(d, m->type, "reason", m->cancel.reason);
}

static int check_error(const struct bdr_msg *m, struct bdr_diag *d)
{
	if (m->error.code >= 0)
		return msg_err(d, -BDR_EFORMAT, m->type, "code %" PRId32 " is not negative",
			       m->error.code);
	return check_text(d, m->type, "message", m->error.message);
}

static int check_report(const struct bdr_msg *m, struct bdr_diag *d)
{
	struct bdr_diag why = { { 0 } };
	int err;

	if (strnlen(m->report.site, BDR_MAX_SITE_NAME + 1) > BDR_MAX_SITE_NAME)
		return msg_err(d, -BDR_ELIMIT, m->type, "site name exceeds %d bytes",
			       BDR_MAX_SITE_NAME);
	if ((err = bdr_manifest_check_site(m->report.site, &why)))
		return msg_err(d, err, m->type, "%s", why.msg);
	if ((err = check_package(d, m->type, "", m->report.package)))
		return err;
	if (m->report.state > BDR_REPORT_FAILED)
		return msg_err(d, -BDR_EFORMAT, m->type, "state %u unknown", m->report.state);
	return check_text(d, m->type, "error", m->report.error);
}

static int check_remove(const struct bdr_msg *m, struct bdr_diag *d)
{
	return check_package(d, m->type, "", m->remove.package);
}

/* ---- decoding: layout, and the limits that come before a take ---- */

struct dec {
	struct bdr_rbuf r;
	uint8_t type;
	struct bdr_diag *d;
};

/* The reads are sticky, so this names the last field of the group that
 * was being read when the input ran out. */
static int truncated(const struct dec *x, const char *field)
{
	return msg_err(x->d, -BDR_EFORMAT, x->type, "truncated (ends before the end of %s)", field);
}

/* Two's complement without an implementation-defined conversion. */
static int32_t get_i32(struct bdr_rbuf *r)
{
	uint32_t v = bdr_r_u32(r);

	return v <= INT32_MAX ? (int32_t)v : (int32_t)(v - 0x80000000u) + INT32_MIN;
}

/* A str16 whose length is checked against max before its bytes are taken. */
static int take_str16(struct dec *x, const char *field, size_t max, const uint8_t **p, size_t *n)
{
	*n = bdr_r_u16(&x->r);
	if (x->r.err)
		return truncated(x, field);
	if (*n > max)
		return msg_err(x->d, -BDR_ELIMIT, x->type, "%s of %zu bytes exceeds %zu", field, *n,
			       max);
	*p = bdr_r_view(&x->r, *n);
	return *p ? 0 : truncated(x, field);
}

/* A name or path into dst (max + 1 bytes); its rules are check_X's. */
static int get_name(struct dec *x, const char *field, char *dst, size_t max)
{
	const uint8_t *p;
	size_t n;
	int err = take_str16(x, field, max, &p, &n);

	if (err)
		return err;
	if (memchr(p, 0, n))
		return msg_err(x->d, -BDR_EFORMAT, x->type, "%s contains a NUL byte", field);
	memcpy(dst, p, n);
	dst[n] = '\0';
	return 0;
}

/* A text16 into dst (BDR_WIRE_TEXT_MAX + 1 bytes). Its bytes are checked
 * here, because a NUL would not survive the copy to a C string. */
static int get_text(struct dec *x, const char *field, char *dst)
{
	const uint8_t *p;
	size_t n;
	int err = take_str16(x, field, BDR_WIRE_TEXT_MAX, &p, &n);

	if (!err)
		err = check_text_bytes(x->d, x->type, field, p, n);
	if (err)
		return err;
	memcpy(dst, p, n);
	dst[n] = '\0';
	return 0;
}

static int get_auth(struct dec *x, struct bdr_msg *m)
{
	bdr_r_bytes(&x->r, m->auth.sig, BDR_SIG_LEN);
	return x->r.err ? truncated(x, "sig") : 0;
}

static int get_offer(struct dec *x, struct bdr_msg *m)
{
	int err;

	m->offer.xfer = bdr_r_u64(&x->r);
	err = get_name(x, "package", m->offer.package, BDR_MAX_PACKAGE_NAME);
	if (err)
		return err;
	m->offer.version = bdr_r_u64(&x->r);
	m->offer.manifest_len = bdr_r_u64(&x->r);
	m->offer.flags = bdr_r_u32(&x->r);
	if (x->r.err)
		return truncated(x, "flags");
	if (m->offer.flags & BDR_OFFER_DELTA)
		m->offer.base = bdr_r_u64(&x->r);
	return x->r.err ? truncated(x, "base") : 0;
}

static int get_manifest(struct dec *x, struct bdr_msg *m)
{
	int err;

	m->manifest.xfer = bdr_r_u64(&x->r);
	m->manifest.offset = bdr_r_u64(&x->r);
	m->manifest.len = bdr_r_u32(&x->r);
	if (x->r.err)
		return truncated(x, "len");
	if ((err = check_piece(m, x->d)))
		return err;
	m->manifest.data = bdr_r_view(&x->r, m->manifest.len);
	return m->manifest.data ? 0 : truncated(x, "data");
}

static int get_need(struct dec *x, struct bdr_msg *m)
{
	size_t bytes;
	int err;

	m->need.xfer = bdr_r_u64(&x->r);
	m->need.flags = bdr_r_u32(&x->r);
	m->need.count = bdr_r_u32(&x->r);
	if (x->r.err)
		return truncated(x, "count");
	if ((err = check_need_head(m, x->d)))
		return err;
	bytes = (size_t)m->need.count * BDR_WIRE_REF_LEN;
	if (bytes > bdr_rbuf_left(&x->r))
		return msg_err(x->d, -BDR_EFORMAT, x->type,
			       "%" PRIu32 " refs do not fit in the %zu bytes left", m->need.count,
			       bdr_rbuf_left(&x->r));
	m->need.refs = bdr_r_view(&x->r, bytes);
	return 0; /* cannot be short: checked against the bytes left */
}

static int get_dictref(struct dec *x, struct bdr_dictref *r)
{
	int err;

	r->kind = bdr_r_u8(&x->r);
	if (x->r.err)
		return truncated(x, "dict kind");
	if (r->kind == BDR_DICTREF_CHUNK) {
		bdr_r_bytes(&x->r, r->id.b, BDR_CHUNK_ID_LEN);
		return x->r.err ? truncated(x, "dict id") : 0;
	}
	if (r->kind != BDR_DICTREF_FILE)
		return msg_err(x->d, -BDR_EFORMAT, x->type, "dict kind %u unknown", r->kind);
	if ((err = get_name(x, "dict package", r->package, BDR_MAX_PACKAGE_NAME)))
		return err;
	r->version = bdr_r_u64(&x->r);
	if ((err = get_name(x, "dict path", r->path, BDR_MAX_PATH)))
		return err;
	r->offset = bdr_r_u64(&x->r);
	r->len = bdr_r_u32(&x->r);
	return x->r.err ? truncated(x, "dict len") : 0;
}

static int get_chunk(struct dec *x, struct bdr_msg *m)
{
	int err;

	m->chunk.xfer = bdr_r_u64(&x->r);
	bdr_r_bytes(&x->r, m->chunk.id.b, BDR_CHUNK_ID_LEN);
	m->chunk.raw_len = bdr_r_u32(&x->r);
	m->chunk.codec = bdr_r_u8(&x->r);
	if (x->r.err)
		return truncated(x, "codec");
	if ((err = check_chunk_head(m, x->d)))
		return err;
	if (bdr_codec_has_dict(m->chunk.codec) && (err = get_dictref(x, &m->chunk.dict)))
		return err;
	m->chunk.len = bdr_r_u32(&x->r);
	if (x->r.err)
		return truncated(x, "len");
	if ((err = check_chunk_len(m, x->d)))
		return err;
	m->chunk.data = bdr_r_view(&x->r, m->chunk.len);
	return m->chunk.data ? 0 : truncated(x, "data");
}

static int get_done(struct dec *x, struct bdr_msg *m)
{
	m->done.xfer = bdr_r_u64(&x->r);
	m->done.status = bdr_r_u8(&x->r);
	m->done.error = get_i32(&x->r);
	if (x->r.err)
		return truncated(x, "error");
	return get_text(x, "message", m->done.message);
}

static int get_cancel(struct dec *x, struct bdr_msg *m)
{
	m->cancel.xfer = bdr_r_u64(&x->r);
	return get_text(x, "reason", m->cancel.reason);
}

static int get_error(struct dec *x, struct bdr_msg *m)
{
	m->error.code = get_i32(&x->r);
	return get_text(x, "message", m->error.message);
}

static int get_ping(struct dec *x, struct bdr_msg *m)
{
	m->ping.cookie = bdr_r_u64(&x->r);
	return x->r.err ? truncated(x, "cookie") : 0;
}

static int get_report(struct dec *x, struct bdr_msg *m)
{
	int err = get_name(x, "site", m->report.site, BDR_MAX_SITE_NAME);

	if (!err)
		err = get_name(x, "package", m->report.package, BDR_MAX_PACKAGE_NAME);
	if (err)
		return err;
	m->report.version = bdr_r_u64(&x->r);
	m->report.state = bdr_r_u8(&x->r);
	m->report.bytes_done = bdr_r_u64(&x->r);
	m->report.bytes_total = bdr_r_u64(&x->r);
	m->report.bytes_saved = bdr_r_u64(&x->r);
	m->report.updated_ns = (int64_t)bdr_r_u64(&x->r);
	if (x->r.err)
		return truncated(x, "updated_ns");
	return get_text(x, "error", m->report.error);
}

static int get_remove(struct dec *x, struct bdr_msg *m)
{
	return get_name(x, "package", m->remove.package, BDR_MAX_PACKAGE_NAME);
}

/* ---- encoding: runs only after check_X passed ---- */

static void put_auth(struct bdr_wbuf *w, const struct bdr_msg *m)
{
	bdr_w_bytes(w, m->auth.sig, BDR_SIG_LEN);
}

static void put_offer(struct bdr_wbuf *w, const struct bdr_msg *m)
{
	bdr_w_u64(w, m->offer.xfer);
	bdr_w_str16(w, m->offer.package);
	bdr_w_u64(w, m->offer.version);
	bdr_w_u64(w, m->offer.manifest_len);
	bdr_w_u32(w, m->offer.flags);
	if (m->offer.flags & BDR_OFFER_DELTA)
		bdr_w_u64(w, m->offer.base);
}

static void put_manifest(struct bdr_wbuf *w, const struct bdr_msg *m)
{
	bdr_w_u64(w, m->manifest.xfer);
	bdr_w_u64(w, m->manifest.offset);
	bdr_w_u32(w, m->manifest.len);
	bdr_w_bytes(w, m->manifest.data, m->manifest.len);
}

static void put_need(struct bdr_wbuf *w, const struct bdr_msg *m)
{
	bdr_w_u64(w, m->need.xfer);
	bdr_w_u32(w, m->need.flags);
	bdr_w_u32(w, m->need.count);
	bdr_w_bytes(w, m->need.refs, (size_t)m->need.count * BDR_WIRE_REF_LEN);
}

static void put_dictref(struct bdr_wbuf *w, const struct bdr_dictref *r)
{
	bdr_w_u8(w, r->kind);
	if (r->kind == BDR_DICTREF_CHUNK) {
		bdr_w_bytes(w, r->id.b, BDR_CHUNK_ID_LEN);
		return;
	}
	bdr_w_str16(w, r->package);
	bdr_w_u64(w, r->version);
	bdr_w_str16(w, r->path);
	bdr_w_u64(w, r->offset);
	bdr_w_u32(w, r->len);
}

/* Everything but the data, which comes last. */
static void put_chunk_head(struct bdr_wbuf *w, const struct bdr_msg *m)
{
	bdr_w_u64(w, m->chunk.xfer);
	bdr_w_bytes(w, m->chunk.id.b, BDR_CHUNK_ID_LEN);
	bdr_w_u32(w, m->chunk.raw_len);
	bdr_w_u8(w, m->chunk.codec);
	if (bdr_codec_has_dict(m->chunk.codec))
		put_dictref(w, &m->chunk.dict);
	bdr_w_u32(w, m->chunk.len);
}

static void put_chunk(struct bdr_wbuf *w, const struct bdr_msg *m)
{
	put_chunk_head(w, m);
	bdr_w_bytes(w, m->chunk.data, m->chunk.len);
}

static void put_done(struct bdr_wbuf *w, const struct bdr_msg *m)
{
	bdr_w_u64(w, m->done.xfer);
	bdr_w_u8(w, m->done.status);
	bdr_w_u32(w, (uint32_t)m->done.error);
	bdr_w_str16(w, m->done.message);
}

static void put_cancel(struct bdr_wbuf *w, const struct bdr_msg *m)
{
	bdr_w_u64(w, m->cancel.xfer);
	bdr_w_str16(w, m->cancel.reason);
}

static void put_error(struct bdr_wbuf *w, const struct bdr_msg *m)
{
	bdr_w_u32(w, (uint32_t)m->error.code);
	bdr_w_str16(w, m->error.message);
}

static void put_ping(struct bdr_wbuf *w, const struct bdr_msg *m)
{
	bdr_w_u64(w, m->ping.cookie);
}

static void put_report(struct bdr_wbuf *w, const struct bdr_msg *m)
{
	bdr_w_str16(w, m->report.site);
	bdr_w_str16(w, m->report.package);
	bdr_w_u64(w, m->report.version);
	bdr_w_u8(w, m->report.state);
	bdr_w_u64(w, m->report.bytes_done);
	bdr_w_u64(w, m->report.bytes_total);
	bdr_w_u64(w, m->report.bytes_saved);
	bdr_w_u64(w, (uint64_t)m->report.updated_ns);
	bdr_w_str16(w, m->report.error);
}

static void put_remove(struct bdr_wbuf *w, const struct bdr_msg *m)
{
	bdr_w_str16(w, m->remove.package);
}

/* ---- the message types ---- */

struct msg_ops {
	int (*get)(struct dec *x, struct bdr_msg *m);
	int (*check)(const struct bdr_msg *m, struct bdr_diag *d);
	void (*put)(struct bdr_wbuf *w, const struct bdr_msg *m);
};

static const struct msg_ops msg_ops[] = {
	[BDR_MSG_AUTH] = { get_auth, check_none, put_auth },
	[BDR_MSG_OFFER] = { get_offer, check_offer, put_offer },
	[BDR_MSG_MANIFEST] = { get_manifest, check_manifest, put_manifest },
	[BDR_MSG_NEED] = { get_need, check_need, put_need },
	[BDR_MSG_CHUNK] = { get_chunk, check_chunk, put_chunk },
	[BDR_MSG_DONE] = { get_done, check_done, put_done },
	[BDR_MSG_CANCEL] = { get_cancel, check_cancel, put_cancel },
	[BDR_MSG_ERROR] = { get_error, check_error, put_error },
	[BDR_MSG_PING] = { get_ping, check_none, put_ping },
	[BDR_MSG_PONG] = { get_ping, check_none, put_ping },
	[BDR_MSG_REPORT] = { get_report, check_report, put_report },
	[BDR_MSG_REMOVE] = { get_remove, check_remove, put_remove },
};

static const struct msg_ops *ops_of(uint8_t type)
{
	return type < ARRAY_LEN(msg_ops) && msg_ops[type].get ? &msg_ops[type] : NULL;
}

static int decode(struct dec *x, struct bdr_msg *m)
{
	const struct msg_ops *o;
	int err;

	x->type = bdr_r_u8(&x->r);
	if (x->r.err)
		return bdr_diag_set(x->d, -BDR_EFORMAT, "empty message");
	if (!(o = ops_of(x->type)))
		return bdr_diag_set(x->d, -BDR_EFORMAT, "unknown message type %u", x->type);
	m->type = x->type;
	if ((err = o->get(x, m)) || (err = o->check(m, x->d)))
		return err;
	if (bdr_rbuf_end(&x->r))
		return msg_err(x->d, -BDR_EFORMAT, x->type, "%zu trailing bytes after the last field",
			       bdr_rbuf_left(&x->r));
	return 0;
}

int bdr_wire_decode(const uint8_t *buf, size_t len, struct bdr_msg *m, struct bdr_diag *d)
{
	struct dec x = { .d = d };
	int err;

	/* Fields that do not apply stay zero, and a failure leaves no half
	 * message behind (type 0 is no message). */
	memset(m, 0, sizeof(*m));
	if (len > BDR_WIRE_MSG_MAX)
		return bdr_diag_set(d, -BDR_ELIMIT, "message of %zu bytes exceeds %u", len,
				    BDR_WIRE_MSG_MAX);
	bdr_rbuf_init(&x.r, buf, len);
	err = decode(&x, m);
	if (err)
		memset(m, 0, sizeof(*m));
	return err;
}

static int encode(const struct bdr_msg *m, struct bdr_wbuf *w, bool head_only,
		  struct bdr_diag *d)
{
	const struct msg_ops *o = ops_of(m->type);
	size_t start = w->len;
	int err;

	if (w->err)
		return msg_err(d, w->err, m->type, "the output buffer has already failed");
	if (!o)
		return bdr_diag_set(d, -BDR_EFORMAT, "unknown message type %u", m->type);
	if ((err = o->check(m, d)))
		return err;
	bdr_w_u8(w, m->type);
	if (head_only)
		put_chunk_head(w, m);
	else
		o->put(w, m);
	if (!(err = w->err))
		return 0;
	/* Take back the part that was written: w is as it was. */
	w->len = start;
	w->err = 0;
	if (err == -BDR_ELIMIT)
		return msg_err(d, err, m->type, "does not fit the output's limit of %zu bytes", w->max);
	return msg_err(d, err, m->type, "%s", bdr_strerror(err));
}

int bdr_wire_encode(const struct bdr_msg *m, struct bdr_wbuf *w, struct bdr_diag *d)
{
	return encode(m, w, false, d);
}

int bdr_wire_encode_chunk_head(const struct bdr_msg *m, struct bdr_wbuf *w, struct bdr_diag *d)
{
	if (m->type != BDR_MSG_CHUNK)
		return bdr_diag_set(d, -EINVAL, "only a CHUNK has a head to encode, not %s",
				    bdr_wire_type_name(m->type));
	return encode(m, w, true, d);
}

/* ---- helpers ---- */

void bdr_wire_need_ref(const struct bdr_msg *m, uint32_t i, struct bdr_chunk_ref *ref)
{
	struct bdr_rbuf r;

	bdr_rbuf_init(&r, m->need.refs, (size_t)m->need.count * BDR_WIRE_REF_LEN);
	bdr_r_view(&r, (size_t)i * BDR_WIRE_REF_LEN); /* skip the refs before i */
	bdr_r_bytes(&r, ref->id.b, BDR_CHUNK_ID_LEN);
	ref->len = bdr_r_u32(&r); /* i >= count: a zero ref */
}

void bdr_wire_need_pack(const struct bdr_chunk_ref *refs, uint32_t n, uint8_t *out)
{
	size_t size = (size_t)n * BDR_WIRE_REF_LEN;
	/* A writer over out whose capacity is exactly what is written, so it
	 * never reallocates (and is never freed: out is the caller's). */
	struct bdr_wbuf w = { .buf = out, .cap = size, .max = size };

	for (uint32_t k = 0; k < n; k++) {
		bdr_w_bytes(&w, refs[k].id.b, BDR_CHUNK_ID_LEN);
		bdr_w_u32(&w, refs[k].len);
	}
}

bool bdr_wire_codec_allowed(uint8_t codec, uint32_t caps)
{
	switch (codec) {
	case BDR_CODEC_RAW: return true;
	case BDR_CODEC_ZLIB: return caps & BDR_CAP_ZLIB;
	case BDR_CODEC_ZLIB_DICT: return caps & BDR_CAP_ZLIB_DICT;
	case BDR_CODEC_ZSTD:
	case BDR_CODEC_ZSTD_DICT: return caps & BDR_CAP_ZSTD;
	default: return false;
	}
}

static bool utf8_continuation(char c)
{
	return ((uint8_t)c & 0xc0) == 0x80;
}

void bdr_wire_text(char *dst, const char *s)
{
	size_t n = s ? strnlen(s, BDR_WIRE_TEXT_MAX + 1) : 0;

	if (n > BDR_WIRE_TEXT_MAX) {
		n = BDR_WIRE_TEXT_MAX;
		/* Cut before a UTF-8 sequence rather than through it (a
		 * sequence is at most 4 bytes). */
		for (int k = 0; k < 3 && n > 0 && utf8_continuation(s[n]); k++)
			n--;
		if (utf8_continuation(s[n]))
			n = BDR_WIRE_TEXT_MAX; /* not UTF-8 after all */
	}
	for (size_t i = 0; i < n; i++) {
		uint8_t c = (uint8_t)s[i];
		dst[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	dst[n] = '\0';
}
