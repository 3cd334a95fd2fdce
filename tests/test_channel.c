/* The channel (proto/wire.md, "Handshake" and "Framing").
 *
 * Besides channel-to-channel tests, this file carries an independent
 * implementation of the handshake, the "rogue" peer: written from the spec
 * with libsodium directly, building every HELLO byte by hand, so that the
 * channel is checked against the document rather than against itself, and
 * so that a peer can break any rule on purpose. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "bdr/channel.h"
#include "bdr/error.h"
#include "bdr/wire.h"
#include "core/channel_internal.h"
#include "testutil.h"

#define SS_HDR crypto_secretstream_xchacha20poly1305_HEADERBYTES
#define SS_A crypto_secretstream_xchacha20poly1305_ABYTES
#define TAG_MSG crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
#define TAG_FINAL crypto_secretstream_xchacha20poly1305_TAG_FINAL
#define MSG_PING 9
#define ALL_AT_ONCE ((size_t)-1)

static struct bdr_key key_a, key_b, key_m; /* alpha, beta, mallory */

static void setup(void)
{
	cr_assert_geq(sodium_init(), 0);
	bdr_key_generate(&key_a);
	bdr_key_generate(&key_b);
	bdr_key_generate(&key_m);
}

TestSuite(channel, .init = setup);

/* ---- byte vectors and little-endian helpers ---- */

struct vec {
	uint8_t *p;
	size_t len;
};

static void vec_put(struct vec *v, const void *p, size_t n)
{
	v->p = realloc(v->p, v->len + n + 1);
	cr_assert_not_null(v->p);
	memcpy(v->p + v->len, p, n);
	v->len += n;
}

static void vec_free(struct vec *v)
{
	free(v->p);
	*v = (struct vec){ 0 };
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ---- pinned keys ---- */

struct pin {
	const char *site;
	const struct bdr_key *key;
	int err; /* returned instead of a key when non-zero */
};

static const struct pin knows_alpha[] = { { "alpha", &key_a, 0 }, { NULL, NULL, 0 } };
static const struct pin knows_beta[] = { { "beta", &key_b, 0 }, { NULL, NULL, 0 } };

static int peer_key(void *arg, const char *site, uint8_t pk[BDR_PK_LEN])
{
	for (const struct pin *p = arg; p->site; p++) {
		if (strcmp(p->site, site) != 0)
			continue;
		if (p->err)
			return p->err;
		memcpy(pk, p->key->pk, BDR_PK_LEN);
		return 0;
	}
	return -BDR_EKEY;
}

/* ---- channels ---- */

struct copts {
	uint32_t caps;
	uint16_t ver_min, ver_max;
	const struct pin *pins;
};

static struct bdr_channel *chan_with(bool initiator, const char *site,
				     const struct bdr_key *k, const struct copts *x)
{
	struct bdr_channel_opts o = {
		.initiator = initiator,
		.site = site,
		.key = k,
		.caps = x->caps,
		.ver_min = x->ver_min,
		.ver_max = x->ver_max,
		.peer_key = peer_key,
		.peer_key_arg = (void *)x->pins,
	};
	struct bdr_channel *c = NULL;

	cr_assert_eq(bdr_channel_new(&c, &o), 0);
	return c;
}

/* alpha, the initiator, pins beta; beta, the responder, pins alpha. */
static struct bdr_channel *alpha(void)
{
	return chan_with(true, "alpha", &key_a, &(struct copts){ .caps = BDR_CAPS_ALL,
								   .pins = knows_beta });
}

static struct bdr_channel *beta(void)
{
	return chan_with(false, "beta", &key_b, &(struct copts){ .caps = BDR_CAPS_ALL,
								  .pins = knows_alpha });
}

struct inbox {
	size_t n;
	struct vec m[16];
};

static void inbox_free(struct inbox *in)
{
	for (size_t i = 0; i < in->n; i++)
		vec_free(&in->m[i]);
	in->n = 0;
}

/* Every message ready in c, into in (may be NULL: then there must be none). */
static size_t drain(struct bdr_channel *c, struct inbox *in)
{
	const uint8_t *m;
	size_t len, n = 0;
	int r;

	while ((r = bdr_channel_recv(c, &m, &len)) == 1) {
		cr_assert_not_null(in, "a message was delivered where none may be");
		cr_assert_lt(in->n, 16);
		vec_put(&in->m[in->n++], m, len);
		n++;
	}
	cr_assert_eq(r, 0);
	return n;
}

/* Feeds len bytes to c, chunk bytes per call, taking messages as they
 * become ready. 0 or the channel's error. */
static int deliver(struct bdr_channel *c, const uint8_t *p, size_t len, size_t chunk,
		   struct inbox *in, struct bdr_diag *d)
{
	size_t off = 0;

	while (off < len) {
		size_t used = 0, n = len - off < chunk ? len - off : chunk;
		int err = bdr_channel_feed(c, p + off, n, &used, d);

		cr_assert_leq(used, n);
		off += used;
		if (err)
			return err;
		size_t got = drain(c, in);
		cr_assert(used > 0 || got > 0, "feed made no progress");
	}
	return 0;
}

/* Moves from's pending output into to. 0 or to's error; *moved set. */
static int move(struct bdr_channel *from, struct bdr_channel *to, size_t chunk,
		struct inbox *in, size_t *moved, struct bdr_diag *d)
{
	uint8_t *buf;
	size_t len;
	int err;

	bdr_channel_take_out(from, &buf, &len);
	*moved = len;
	if (!len) {
		cr_assert_null(buf);
		return 0;
	}
	err = deliver(to, buf, len, chunk, in, d);
	free(buf);
	return err;
}

/* Both ways until neither has anything to say. */
static void pump(struct bdr_channel *a, struct bdr_channel *b, size_t chunk, struct inbox *in_a,
		 struct inbox *in_b)
{
	struct bdr_diag d = { { 0 } };
	size_t ab, ba;

	do {
		cr_assert_eq(move(a, b, chunk, in_b, &ab, &d), 0, "%s", d.msg);
		cr_assert_eq(move(b, a, chunk, in_a, &ba, &d), 0, "%s", d.msg);
	} while (ab || ba);
}

static void handshake(struct bdr_channel *a, struct bdr_channel *b)
{
	pump(a, b, ALL_AT_ONCE, NULL, NULL);
	cr_assert(bdr_channel_ready(a));
	cr_assert(bdr_channel_ready(b));
}

static void send_str(struct bdr_channel *c, const char *s)
{
	cr_assert_eq(bdr_channel_send(c, (const uint8_t *)s, strlen(s)), 0);
}

static void assert_msg(const struct inbox *in, size_t i, const char *s)
{
	cr_assert_gt(in->n, i);
	cr_assert_eq(in->m[i].len, strlen(s));
	cr_assert_arr_eq(in->m[i].p, s, strlen(s));
}

static void assert_diag(const struct bdr_diag *d, const char *part)
{
	cr_assert_not_null(strstr(d->msg, part), "'%s' not in '%s'", part, d->msg);
}

/* ---- the rogue peer: the handshake from the spec, by hand ---- */

struct rogue {
	bool initiator;
	struct bdr_key key;
	char site[128];
	char magic[5];
	uint16_t ver_min, ver_max;
	uint32_t caps;
	uint8_t eph_pk[32], eph_sk[32], nonce[32];
	uint8_t ext[16];
	size_t ext_len, trailing; /* trailing: junk after ext */
	uint8_t hello[1024];
	size_t hello_len;
	uint8_t peer_hello[1024];
	size_t peer_hello_len;
	uint8_t rx[32], tx[32], t[32];
	crypto_secretstream_xchacha20poly1305_state push, pull;
};

static void rogue_build_hello(struct rogue *r)
{
	uint8_t *p = r->hello + 4;
	size_t sl = strlen(r->site);

	memcpy(p, r->magic, 4), p += 4;
	put16(p, r->ver_min), p += 2;
	put16(p, r->ver_max), p += 2;
	put32(p, r->caps), p += 4;
	put16(p, (uint16_t)sl), p += 2;
	memcpy(p, r->site, sl), p += sl;
	memcpy(p, r->key.pk, 32), p += 32;
	memcpy(p, r->eph_pk, 32), p += 32;
	memcpy(p, r->nonce, 32), p += 32;
	put16(p, (uint16_t)r->ext_len), p += 2;
	memcpy(p, r->ext, r->ext_len), p += r->ext_len;
	memset(p, 0xee, r->trailing), p += r->trailing;
	r->hello_len = (size_t)(p - r->hello);
	put32(r->hello, (uint32_t)(r->hello_len - 4));
}

/* A well-behaved peer; tests change fields and rebuild the HELLO. */
static void rogue_init(struct rogue *r, bool initiator, const char *site, const struct bdr_key *k)
{
	memset(r, 0, sizeof(*r));
	r->initiator = initiator;
	r->key = *k;
	snprintf(r->site, sizeof(r->site), "%s", site);
	memcpy(r->magic, "BDRW", 4);
	r->ver_min = r->ver_max = 1;
	r->caps = BDR_CAPS_ALL;
	crypto_kx_keypair(r->eph_pk, r->eph_sk);
	randombytes_buf(r->nonce, sizeof(r->nonce));
	rogue_build_hello(r);
}

/* Reads the channel's HELLO at p (checking it against the spec) and
 * returns its frame length. */
static size_t rogue_read_hello(struct rogue *r, const uint8_t *p, size_t avail,
			       const char *site, const struct bdr_key *k)
{
	size_t sl = strlen(site);

	cr_assert_geq(avail, 4);
	size_t len = 4 + get32(p);
	cr_assert_geq(avail, len);
	cr_assert_eq(len, 4 + 113 - 1 + sl, "no ext, nothing after it");
	cr_assert_arr_eq(p + 4, "BDRW", 4);
	cr_assert_eq(get16(p + 8), 1);
	cr_assert_eq(get16(p + 10), 1);
	cr_assert_eq(get16(p + 16), sl);
	cr_assert_arr_eq(p + 18, site, sl);
	cr_assert_arr_eq(p + 18 + sl, k->pk, 32);
	cr_assert_eq(get16(p + 18 + sl + 96), 0, "empty ext");
	memcpy(r->peer_hello, p, len);
	r->peer_hello_len = len;
	return len;
}

/* Session keys and transcript, once both HELLOs are known. */
static void rogue_keys(struct rogue *r)
{
	size_t sl = get16(r->peer_hello + 16);
	const uint8_t *peer_eph = r->peer_hello + 18 + sl + 32;
	crypto_generichash_state h;
	int err;

	if (r->initiator)
		err = crypto_kx_client_session_keys(r->rx, r->tx, r->eph_pk, r->eph_sk, peer_eph);
	else
		err = crypto_kx_server_session_keys(r->rx, r->tx, r->eph_pk, r->eph_sk, peer_eph);
	cr_assert_eq(err, 0);
	crypto_generichash_init(&h, NULL, 0, 32);
	if (r->initiator) {
		crypto_generichash_update(&h, r->hello, r->hello_len);
		crypto_generichash_update(&h, r->peer_hello, r->peer_hello_len);
	} else {
		crypto_generichash_update(&h, r->peer_hello, r->peer_hello_len);
		crypto_generichash_update(&h, r->hello, r->hello_len);
	}
	crypto_generichash_final(&h, r->t, 32);
}

static void rogue_header(struct rogue *r, struct vec *out)
{
	uint8_t hdr[SS_HDR];

	crypto_secretstream_xchacha20poly1305_init_push(&r->push, hdr, r->tx);
	vec_put(out, hdr, sizeof(hdr));
}

static void rogue_frame(struct rogue *r, struct vec *out, const void *msg, size_t len,
			uint8_t tag)
{
	uint8_t *f = malloc(4 + len + SS_A);

	cr_assert_not_null(f);
	put32(f, (uint32_t)(len + SS_A));
	crypto_secretstream_xchacha20poly1305_push(&r->push, f + 4, NULL, msg, len, NULL, 0, tag);
	vec_put(out, f, 4 + len + SS_A);
	free(f);
}

static void auth_input(uint8_t out[44], uint8_t role, const uint8_t t[32])
{
	memcpy(out, "bdr-auth-v1", 11);
	out[11] = role;
	memcpy(out + 12, t, 32);
}

/* An AUTH frame signed by k with role over the rogue's transcript. */
static void rogue_auth_by(struct rogue *r, struct vec *out, uint8_t role, const struct bdr_key *k)
{
	uint8_t in[44], msg[65];

	auth_input(in, role, r->t);
	msg[0] = BDR_MSG_AUTH;
	crypto_sign_detached(msg + 1, NULL, in, sizeof(in), k->sk);
	rogue_frame(r, out, msg, sizeof(msg), TAG_MSG);
}

static void rogue_auth(struct rogue *r, struct vec *out)
{
	rogue_auth_by(r, out, r->initiator ? 'I' : 'R', &r->key);
}

/* Decrypts the frame at *p into out (a fresh vec); advances *p. */
static void rogue_open_tag(struct rogue *r, const uint8_t **p, const uint8_t *end, struct vec *out,
			   uint8_t want_tag)
{
	unsigned long long mlen;
	unsigned char tag;

	cr_assert_geq((size_t)(end - *p), 4);
	size_t len = get32(*p);
	cr_assert_geq((size_t)(end - *p), 4 + len);
	*out = (struct vec){ .p = malloc(len), .len = 0 };
	cr_assert_eq(crypto_secretstream_xchacha20poly1305_pull(&r->pull, out->p, &mlen, &tag,
								 *p + 4, len, NULL, 0), 0);
	cr_assert_eq(tag, want_tag);
	out->len = (size_t)mlen;
	*p += 4 + len;
}

static void rogue_open(struct rogue *r, const uint8_t **p, const uint8_t *end, struct vec *out)
{
	rogue_open_tag(r, p, end, out, TAG_MSG);
}

/* The channel's header and AUTH (checked against its key) at *p. */
static void rogue_read_auth(struct rogue *r, const uint8_t **p, const uint8_t *end,
			    const struct bdr_key *peer)
{
	uint8_t in[44];
	struct vec m;

	cr_assert_geq((size_t)(end - *p), SS_HDR);
	cr_assert_eq(crypto_secretstream_xchacha20poly1305_init_pull(&r->pull, *p, r->rx), 0);
	*p += SS_HDR;
	rogue_open(r, p, end, &m);
	cr_assert_eq(m.len, 65);
	cr_assert_eq(m.p[0], BDR_MSG_AUTH);
	auth_input(in, r->initiator ? 'R' : 'I', r->t);
	cr_assert_eq(crypto_sign_verify_detached(m.p + 1, in, sizeof(in), peer->pk), 0);
	vec_free(&m);
}

/* ---- handshake between two channels ---- */

Test(channel, handshake_and_messages)
{
	struct bdr_channel *a = alpha(), *b = beta();
	struct inbox in_a = { 0 }, in_b = { 0 };

	cr_assert_gt(bdr_channel_out_len(a), 0, "the initiator's HELLO is out at once");
	cr_assert_eq(bdr_channel_out_len(b), 0, "the responder waits");
	cr_assert_str_empty(bdr_channel_peer_site(a));
	handshake(a, b);
	cr_assert_str_eq(bdr_channel_peer_site(a), "beta");
	cr_assert_str_eq(bdr_channel_peer_site(b), "alpha");
	cr_assert_eq(bdr_channel_version(a), 1);
	cr_assert_eq(bdr_channel_version(b), 1);
	cr_assert_eq(bdr_channel_caps(a), BDR_CAPS_ALL);

	send_str(a, "\x09ping from alpha");
	send_str(a, "\x09second");
	send_str(b, "\x0apong from beta");
	pump(a, b, ALL_AT_ONCE, &in_a, &in_b);
	cr_assert_eq(in_b.n, 2);
	assert_msg(&in_b, 0, "\x09ping from alpha");
	assert_msg(&in_b, 1, "\x09second");
	cr_assert_eq(in_a.n, 1);
	assert_msg(&in_a, 0, "\x0apong from beta");

	struct bdr_channel_stats sa, sb;
	bdr_channel_stats(a, &sa);
	bdr_channel_stats(b, &sb);
	cr_assert_eq(sa.msgs_out, 2);
	cr_assert_eq(sa.msgs_in, 1);
	cr_assert_eq(sb.msgs_in, 2);
	cr_assert_eq(sb.msgs_out, 1);
	cr_assert_eq(sa.wire_out, sb.wire_in);
	cr_assert_eq(sb.wire_out, sa.wire_in);
	cr_assert_gt(sa.wire_out, 4 + 113 + 24 + 4 + 65 + 17);
	inbox_free(&in_a);
	inbox_free(&in_b);
	bdr_channel_free(a);
	bdr_channel_free(b);
}

/* The initiator sends in the same flight as its AUTH; the responder
 * delivers those messages only after the AUTH verified. */
static void first_flight(size_t chunk)
{
	struct bdr_channel *a = alpha(), *b = beta();
	struct inbox in_a = { 0 }, in_b = { 0 };
	size_t moved;
	struct bdr_diag d;

	cr_assert_eq(bdr_channel_send(a, (const uint8_t *)"\x09x", 2), -EAGAIN);
	cr_assert_eq(bdr_channel_send(b, (const uint8_t *)"\x09x", 2), -EAGAIN);
	cr_assert_eq(move(a, b, chunk, &in_b, &moved, &d), 0, "%s", d.msg);
	cr_assert(bdr_channel_can_send(b), "the responder's AUTH is queued");
	cr_assert_not(bdr_channel_ready(b));
	send_str(b, "\x09" "from beta, early");
	cr_assert_eq(move(b, a, chunk, &in_a, &moved, &d), 0, "%s", d.msg);
	cr_assert(bdr_channel_ready(a));
	send_str(a, "\x09one");
	send_str(a, "\x09two");
	cr_assert_eq(move(a, b, chunk, &in_b, &moved, &d), 0, "%s", d.msg);
	cr_assert(bdr_channel_ready(b));
	cr_assert_eq(in_b.n, 2);
	assert_msg(&in_b, 0, "\x09one");
	assert_msg(&in_b, 1, "\x09two");
	cr_assert_eq(in_a.n, 1);
	assert_msg(&in_a, 0, "\x09" "from beta, early");
	inbox_free(&in_a);
	inbox_free(&in_b);
	bdr_channel_free(a);
	bdr_channel_free(b);
}

Test(channel, everything_in_one_buffer)
{
	first_flight(ALL_AT_ONCE);
}

Test(channel, byte_by_byte)
{
	first_flight(1);
}

Test(channel, odd_chunks)
{
	first_flight(7);
}

Test(channel, feed_stops_at_each_message)
{
	struct bdr_channel *a = alpha(), *b = beta();
	const uint8_t *m;
	size_t len, used, n;
	uint8_t *buf;

	handshake(a, b);
	send_str(a, "\x09" "first");
	send_str(a, "\x09second");
	bdr_channel_take_out(a, &buf, &n);
	cr_assert_eq(n, 2 * (4 + SS_A) + 6 + 7);
	cr_assert_eq(bdr_channel_feed(b, buf, n, &used, NULL), 0);
	cr_assert_eq(used, 4 + SS_A + 6, "stops after the first frame");
	size_t more;
	cr_assert_eq(bdr_channel_feed(b, buf + used, n - used, &more, NULL), 0);
	cr_assert_eq(more, 0, "nothing more until the message is taken");
	cr_assert_eq(bdr_channel_recv(b, &m, &len), 1);
	cr_assert_eq(len, 6);
	cr_assert_arr_eq(m, "\x09" "first", 6);
	cr_assert_eq(bdr_channel_recv(b, &m, &len), 0);
	cr_assert_eq(bdr_channel_feed(b, buf + used, n - used, &more, NULL), 0);
	cr_assert_eq(more, n - used);
	cr_assert_eq(bdr_channel_recv(b, &m, &len), 1);
	cr_assert_arr_eq(m, "\x09second", 7);
	free(buf);
	bdr_channel_free(a);
	bdr_channel_free(b);
}

Test(channel, largest_message_and_oversize)
{
	struct bdr_channel *a = alpha(), *b = beta();
	struct inbox in_a = { 0 }, in_b = { 0 };
	uint8_t *big = malloc(BDR_WIRE_MSG_MAX + 1);

	cr_assert_not_null(big);
	tu_fill_random(big, BDR_WIRE_MSG_MAX + 1, 42);
	big[0] = MSG_PING;
	handshake(a, b);
	cr_assert_eq(bdr_channel_send(a, big, BDR_WIRE_MSG_MAX + 1), -BDR_ELIMIT);
	cr_assert_eq(bdr_channel_out_len(a), 0, "nothing was queued");
	cr_assert(bdr_channel_can_send(a), "a caller error is not the connection's");
	cr_assert_eq(bdr_channel_send(a, big, 0), -EINVAL);
	cr_assert_eq(bdr_channel_send(a, (const uint8_t *)"\x01", 1), -EINVAL, "AUTH is ours");
	cr_assert_eq(bdr_channel_send(a, big, BDR_WIRE_MSG_MAX), 0);
	cr_assert_eq(bdr_channel_out_len(a), 4 + BDR_WIRE_FRAME_MAX);
	cr_assert_eq(bdr_channel_send(b, big, BDR_WIRE_MSG_MAX), 0);
	pump(a, b, 65536, &in_a, &in_b);
	cr_assert_eq(in_b.n, 1);
	cr_assert_eq(in_b.m[0].len, BDR_WIRE_MSG_MAX);
	cr_assert_arr_eq(in_b.m[0].p, big, BDR_WIRE_MSG_MAX);
	cr_assert_eq(in_a.n, 1);
	cr_assert_arr_eq(in_a.m[0].p, big, BDR_WIRE_MSG_MAX);
	free(big);
	inbox_free(&in_a);
	inbox_free(&in_b);
	bdr_channel_free(a);
	bdr_channel_free(b);
}

Test(channel, caps_and_versions_agreed)
{
	struct bdr_channel *a = chan_with(true, "alpha", &key_a,
					  &(struct copts){ .caps = BDR_CAP_ZLIB | BDR_CAP_RESUME | 0x100,
							   .ver_min = 1, .ver_max = 3,
							   .pins = knows_beta });
	struct bdr_channel *b = chan_with(false, "beta", &key_b,
					  &(struct copts){ .caps = BDR_CAP_ZLIB | 0x100,
							   .ver_min = 2, .ver_max = 5,
							   .pins = knows_alpha });

	handshake(a, b);
	cr_assert_eq(bdr_channel_caps(a), BDR_CAP_ZLIB | 0x100);
	cr_assert_eq(bdr_channel_caps(b), BDR_CAP_ZLIB | 0x100);
	cr_assert_eq(bdr_channel_version(a), 3);
	cr_assert_eq(bdr_channel_version(b), 3);
	bdr_channel_free(a);
	bdr_channel_free(b);
}

Test(channel, new_rejects_bad_options)
{
	struct bdr_channel *c = (struct bdr_channel *)1;
	struct bdr_channel_opts o = { .site = "bad site", .key = &key_a, .peer_key = peer_key };

	cr_assert_eq(bdr_channel_new(&c, &o), -EINVAL);
	cr_assert_null(c);
	o.site = "ok";
	o.ver_min = 3;
	o.ver_max = 2;
	cr_assert_eq(bdr_channel_new(&c, &o), -EINVAL);
	o.ver_min = 2; /* and ver_max 1 by default */
	o.ver_max = 0;
	cr_assert_eq(bdr_channel_new(&c, &o), -EINVAL);
	o.ver_min = 0;
	o.key = NULL;
	cr_assert_eq(bdr_channel_new(&c, &o), -EINVAL);
	o.key = &key_a;
	cr_assert_eq(bdr_channel_new(&c, &o), 0);
	uint8_t *buf;
	size_t len;
	bdr_channel_take_out(c, &buf, &len);
	cr_assert_null(buf, "a responder has nothing to say");
	cr_assert_eq(len, 0);
	bdr_channel_free(c);
	bdr_channel_free(NULL);
}

/* ---- the rogue peer interoperates ---- */

Test(channel, rogue_responder_interoperates)
{
	struct bdr_channel *a = alpha();
	struct rogue r;
	struct inbox in_a = { 0 };
	struct vec flight = { 0 }, m;
	struct bdr_diag d;
	uint8_t *buf;
	size_t len;

	rogue_init(&r, false, "beta", &key_b);
	r.caps = BDR_CAP_ZLIB_DICT | 0x80000000u;
	rogue_build_hello(&r);
	bdr_channel_take_out(a, &buf, &len);
	cr_assert_eq(rogue_read_hello(&r, buf, len, "alpha", &key_a), len);
	free(buf);
	rogue_keys(&r);
	vec_put(&flight, r.hello, r.hello_len);
	rogue_header(&r, &flight);
	rogue_auth(&r, &flight);
	rogue_frame(&r, &flight, "\x09rogue says hi", 14, TAG_MSG);
	cr_assert_eq(deliver(a, flight.p, flight.len, ALL_AT_ONCE, &in_a, &d), 0, "%s", d.msg);
	cr_assert(bdr_channel_ready(a));
	cr_assert_eq(bdr_channel_caps(a), BDR_CAP_ZLIB_DICT);
	cr_assert_eq(in_a.n, 1);
	assert_msg(&in_a, 0, "\x09rogue says hi");

	send_str(a, "\x0a" "answer");
	bdr_channel_take_out(a, &buf, &len);
	const uint8_t *p = buf;
	rogue_read_auth(&r, &p, buf + len, &key_a);
	rogue_open(&r, &p, buf + len, &m);
	cr_assert_eq(m.len, 7);
	cr_assert_arr_eq(m.p, "\x0a" "answer", 7);
	cr_assert_eq(p, buf + len);
	vec_free(&m);
	vec_free(&flight);
	free(buf);
	inbox_free(&in_a);
	bdr_channel_free(a);
}

Test(channel, rogue_initiator_interoperates)
{
	struct bdr_channel *b = beta();
	struct rogue r;
	struct inbox in_b = { 0 };
	struct vec flight = { 0 }, m;
	struct bdr_diag d;
	uint8_t *buf;
	size_t len;

	rogue_init(&r, true, "alpha", &key_a);
	r.ext_len = 5; /* ignored by version 1, but in the transcript */
	memcpy(r.ext, "later", 5);
	rogue_build_hello(&r);
	cr_assert_eq(deliver(b, r.hello, r.hello_len, ALL_AT_ONCE, NULL, &d), 0, "%s", d.msg);
	bdr_channel_take_out(b, &buf, &len);
	size_t hl = rogue_read_hello(&r, buf, len, "beta", &key_b);
	rogue_keys(&r);
	const uint8_t *p = buf + hl;
	rogue_read_auth(&r, &p, buf + len, &key_b);
	cr_assert_eq(p, buf + len, "HELLO, header and AUTH, nothing else");
	free(buf);

	rogue_header(&r, &flight);
	rogue_auth(&r, &flight);
	rogue_frame(&r, &flight, "\x09" "after auth", 11, TAG_MSG);
	cr_assert_eq(deliver(b, flight.p, flight.len, 1, &in_b, &d), 0, "%s", d.msg);
	cr_assert(bdr_channel_ready(b));
	assert_msg(&in_b, 0, "\x09" "after auth");
	send_str(b, "\x0a" "back");
	bdr_channel_take_out(b, &buf, &len);
	p = buf;
	rogue_open(&r, &p, buf + len, &m);
	cr_assert_arr_eq(m.p, "\x0a" "back", 5);
	vec_free(&m);
	vec_free(&flight);
	free(buf);
	inbox_free(&in_b);
	bdr_channel_free(b);
}

/* ---- identities ---- */

static int hello_to_beta(struct rogue *r, struct bdr_channel *b, struct bdr_diag *d)
{
	rogue_build_hello(r);
	return deliver(b, r->hello, r->hello_len, ALL_AT_ONCE, NULL, d);
}

/* What a responder answers to an identity it does not accept, read with
 * the spec alone: its HELLO, header and AUTH (signed by its key), then one
 * ERROR -BDR_EKEY in a frame with TAG_FINAL that names the key presented,
 * the same words whether the site is unknown or pinned with another key. */
static void assert_refusal(struct rogue *r, struct bdr_channel *b, const char *site,
			   const struct bdr_key *presented)
{
	char pk[BDR_KEY_B64_LEN + 1], text[256];
	struct bdr_msg m;
	struct vec f;
	uint8_t *buf;
	size_t len;

	bdr_channel_take_out(b, &buf, &len);
	cr_assert_gt(len, 0, "the responder answers with a refusal");
	const uint8_t *p = buf + rogue_read_hello(r, buf, len, "beta", &key_b);
	rogue_keys(r);
	rogue_read_auth(r, &p, buf + len, &key_b);
	rogue_open_tag(r, &p, buf + len, &f, TAG_FINAL);
	cr_assert_eq(p, buf + len, "the refusal is the last frame");
	cr_assert_eq(bdr_wire_decode(f.p, f.len, &m, NULL), 0);
	cr_assert_eq(m.type, BDR_MSG_ERROR);
	cr_assert_eq(m.error.code, -BDR_EKEY);
	bdr_key_pk_to_b64(presented->pk, pk);
	snprintf(text, sizeof(text), "site 'beta' has not pinned key %s for site '%s'", pk, site);
	cr_assert_str_eq(m.error.message, text);
	cr_assert_not(bdr_channel_can_send(b), "and nothing else goes out");
	vec_free(&f);
	free(buf);
}

Test(channel, unknown_site)
{
	struct bdr_channel *b = beta();
	struct rogue r;
	struct bdr_diag d;

	rogue_init(&r, true, "gamma", &key_a);
	cr_assert_eq(hello_to_beta(&r, b, &d), -BDR_EKEY);
	cr_assert_str_eq(d.msg, "unknown site 'gamma'");
	cr_assert_str_empty(bdr_channel_peer_site(b));
	assert_refusal(&r, b, "gamma", &key_a);
	bdr_channel_free(b);

	/* The initiator checks the responder's HELLO the same way. */
	struct bdr_channel *a = chan_with(true, "alpha", &key_a,
					  &(struct copts){ .pins = knows_alpha });
	b = beta();
	size_t moved;
	cr_assert_eq(move(a, b, ALL_AT_ONCE, NULL, &moved, &d), 0);
	cr_assert_eq(move(b, a, ALL_AT_ONCE, NULL, &moved, &d), -BDR_EKEY);
	cr_assert_str_eq(d.msg, "unknown site 'beta'");
	cr_assert_not(bdr_channel_can_send(a));
	cr_assert_not(bdr_channel_pin_failed(a), "another site answered: perhaps only for now");
	bdr_channel_free(a);
	bdr_channel_free(b);
}

Test(channel, wrong_pinned_key)
{
	struct bdr_channel *b = beta();
	struct rogue r;
	struct bdr_diag d;
	char got[BDR_KEY_B64_LEN + 1], want[BDR_KEY_B64_LEN + 1], msg[256];

	rogue_init(&r, true, "alpha", &key_m);
	cr_assert_eq(hello_to_beta(&r, b, &d), -BDR_EKEY);
	bdr_key_pk_to_b64(key_m.pk, got);
	bdr_key_pk_to_b64(key_a.pk, want);
	snprintf(msg, sizeof(msg), "site 'alpha' presented key %s which is not the pinned key %s",
		 got, want);
	cr_assert_str_eq(d.msg, msg);
	assert_refusal(&r, b, "alpha", &key_m);
	bdr_channel_free(b);

	/* The initiator that pins another key for beta: final, both keys named. */
	static const struct pin beta_as_m[] = { { "beta", &key_m, 0 }, { NULL, NULL, 0 } };
	struct bdr_channel *a = chan_with(true, "alpha", &key_a, &(struct copts){ .pins = beta_as_m });
	size_t moved;
	b = beta();
	cr_assert_eq(move(a, b, ALL_AT_ONCE, NULL, &moved, &d), 0);
	cr_assert_eq(move(b, a, ALL_AT_ONCE, NULL, &moved, &d), -BDR_EKEY);
	bdr_key_pk_to_b64(key_b.pk, got);
	bdr_key_pk_to_b64(key_m.pk, want);
	snprintf(msg, sizeof(msg), "site 'beta' presented key %s which is not the pinned key %s",
		 got, want);
	cr_assert_str_eq(d.msg, msg);
	cr_assert(bdr_channel_pin_failed(a));
	bdr_channel_free(a);
	bdr_channel_free(b);
}

/* Channel to channel: the initiator hears the refusal as the responder's
 * word, authenticated, and knows no retry will mend it. */
Test(channel, refusal_reaches_the_initiator)
{
	struct bdr_channel *g = chan_with(true, "gamma", &key_m, &(struct copts){ .pins = knows_beta });
	struct bdr_channel *b = beta();
	struct bdr_diag d;
	char pk[BDR_KEY_B64_LEN + 1], msg[300];
	size_t moved;

	cr_assert_eq(move(g, b, ALL_AT_ONCE, NULL, &moved, &d), -BDR_EKEY);
	cr_assert_eq(move(b, g, ALL_AT_ONCE, NULL, &moved, &d), -BDR_EKEY);
	bdr_key_pk_to_b64(key_m.pk, pk);
	snprintf(msg, sizeof(msg), "site 'beta' refused this site's key: site 'beta' has not pinned "
		 "key %s for site 'gamma'", pk);
	cr_assert_str_eq(d.msg, msg);
	cr_assert(bdr_channel_pin_failed(g));
	cr_assert_not(bdr_channel_ready(g));
	bdr_channel_free(g);
	bdr_channel_free(b);
}

/* A refusal altered in transit is a broken frame, not a refusal; and one
 * from a responder that does not hold the key pinned for it never gets
 * past its AUTH. */
Test(channel, refusal_is_authenticated)
{
	static const struct pin beta_as_m[] = { { "beta", &key_m, 0 }, { NULL, NULL, 0 } };
	struct bdr_channel *g = chan_with(true, "gamma", &key_m, &(struct copts){ .pins = knows_beta });
	struct bdr_channel *b = beta();
	struct bdr_diag d;
	uint8_t *buf;
	size_t len, moved;

	cr_assert_eq(move(g, b, ALL_AT_ONCE, NULL, &moved, &d), -BDR_EKEY);
	bdr_channel_take_out(b, &buf, &len);
	cr_assert_gt(len, 0, "beta answers with a refusal");
	buf[len - 1] ^= 1;
	cr_assert_eq(deliver(g, buf, len, ALL_AT_ONCE, NULL, &d), -BDR_ESIG);
	cr_assert_not(bdr_channel_pin_failed(g));
	free(buf);
	bdr_channel_free(g);
	bdr_channel_free(b);

	/* mallory answers as beta (its HELLO carries beta's public key) */
	struct bdr_channel *a = alpha();
	struct bdr_channel *m = chan_with(false, "beta", &key_m, &(struct copts){ .pins = beta_as_m });
	cr_assert_eq(move(a, m, ALL_AT_ONCE, NULL, &moved, &d), -BDR_EKEY);
	bdr_channel_take_out(m, &buf, &len);
	/* its HELLO names key_m: alpha finds beta's key differs and stops there */
	cr_assert_eq(deliver(a, buf, len, ALL_AT_ONCE, NULL, &d), -BDR_EKEY);
	assert_diag(&d, "which is not the pinned key");
	free(buf);
	bdr_channel_free(a);
	bdr_channel_free(m);
}

/* A final frame anywhere but first after the responder's AUTH is no
 * refusal; and a responder never takes one. */
Test(channel, final_frame_only_as_the_first)
{
	struct bdr_channel *a = alpha();
	struct rogue r;
	struct vec flight = { 0 };
	struct inbox in = { 0 };
	struct bdr_diag d;
	uint8_t *buf;
	size_t len;
	struct bdr_msg m = { .type = BDR_MSG_ERROR, .error.code = -BDR_EKEY };
	struct bdr_wbuf w;

	bdr_wire_text(m.error.message, "late");
	bdr_wbuf_init(&w, BDR_WIRE_MSG_MAX);
	cr_assert_eq(bdr_wire_encode(&m, &w, NULL), 0);
	cr_assert_eq(bdr_wbuf_finish(&w, &buf, &len), 0);
	rogue_init(&r, false, "beta", &key_b);
	rogue_build_hello(&r);
	uint8_t *hb;
	size_t hl;
	bdr_channel_take_out(a, &hb, &hl);
	rogue_read_hello(&r, hb, hl, "alpha", &key_a);
	free(hb);
	rogue_keys(&r);
	vec_put(&flight, r.hello, r.hello_len);
	rogue_header(&r, &flight);
	rogue_auth(&r, &flight);
	rogue_frame(&r, &flight, "\x09ok", 3, TAG_MSG);
	rogue_frame(&r, &flight, buf, len, TAG_FINAL);
	cr_assert_eq(deliver(a, flight.p, flight.len, ALL_AT_ONCE, &in, &d), -BDR_EFORMAT);
	assert_diag(&d, "tag");
	cr_assert_not(bdr_channel_pin_failed(a));
	free(buf);
	vec_free(&flight);
	inbox_free(&in);
	bdr_channel_free(a);
}

Test(channel, lookup_error_returned_as_is)
{
	static const struct pin broken[] = { { "alpha", &key_a, -EIO }, { NULL, NULL, 0 } };
	struct bdr_channel *b = chan_with(false, "beta", &key_b, &(struct copts){ .pins = broken });
	struct rogue r;
	struct bdr_diag d;

	rogue_init(&r, true, "alpha", &key_a);
	cr_assert_eq(hello_to_beta(&r, b, &d), -EIO);
	assert_diag(&d, "alpha");
	bdr_channel_free(b);
}

/* A peer that knows the pinned key's site but not its secret: it can send
 * HELLO with the right public key, but not a valid AUTH. */
Test(channel, impostor_cannot_sign_auth)
{
	struct bdr_channel *b = beta();
	struct rogue r;
	struct vec flight = { 0 };
	struct bdr_diag d;
	uint8_t *buf;
	size_t len;

	rogue_init(&r, true, "alpha", &key_a);
	cr_assert_eq(hello_to_beta(&r, b, &d), 0, "%s", d.msg);
	bdr_channel_take_out(b, &buf, &len);
	rogue_read_hello(&r, buf, len, "beta", &key_b);
	rogue_keys(&r);
	rogue_header(&r, &flight);
	rogue_auth_by(&r, &flight, 'I', &key_m);
	rogue_frame(&r, &flight, "\x09sneaky", 7, TAG_MSG);
	cr_assert_eq(deliver(b, flight.p, flight.len, ALL_AT_ONCE, NULL, &d), -BDR_ESIG);
	assert_diag(&d, "AUTH signature does not verify");
	cr_assert_not(bdr_channel_ready(b));
	free(buf);
	vec_free(&flight);
	bdr_channel_free(b);
}

/* ---- a man in the middle ---- */

#define OFF_VER_MAX 10
#define OFF_CAPS 12
#define OFF_EPH(site_len) (18 + (site_len) + 32)

/* alpha and beta through a middle that edits one HELLO: edit_i changes
 * alpha's HELLO on its way to beta, else beta's on its way to alpha. Both
 * sides must fail with ESIG. */
static void mitm(struct bdr_channel *a, struct bdr_channel *b, bool edit_i,
		 void (*edit)(uint8_t *hello, size_t len))
{
	struct bdr_diag da, db;
	uint8_t *buf;
	size_t len, moved;

	bdr_channel_take_out(a, &buf, &len);
	if (edit_i)
		edit(buf, len);
	cr_assert_eq(deliver(b, buf, len, ALL_AT_ONCE, NULL, &db), 0, "%s", db.msg);
	free(buf);
	bdr_channel_take_out(b, &buf, &len);
	if (!edit_i)
		edit(buf, 4 + get32(buf));
	cr_assert_eq(deliver(a, buf, len, ALL_AT_ONCE, NULL, &da), -BDR_ESIG);
	free(buf);
	cr_assert_eq(move(a, b, ALL_AT_ONCE, NULL, &moved, &db), -BDR_ESIG);
	cr_assert_gt(moved, 0, "alpha's AUTH went out before it failed");
	cr_assert_not(bdr_channel_ready(a));
	cr_assert_not(bdr_channel_ready(b));
	bdr_channel_free(a);
	bdr_channel_free(b);
}

static void flip_cap(uint8_t *h, size_t len)
{
	(void)len;
	h[OFF_CAPS] ^= BDR_CAP_ZLIB_DICT;
}

static void downgrade(uint8_t *h, size_t len)
{
	(void)len;
	cr_assert_eq(get16(h + OFF_VER_MAX), 2);
	put16(h + OFF_VER_MAX, 1);
}

static void swap_eph(uint8_t *h, size_t len)
{
	uint8_t pk[32], sk[32];

	crypto_kx_keypair(pk, sk);
	cr_assert_lt(OFF_EPH(get16(h + 16)) + 32, len);
	memcpy(h + OFF_EPH(get16(h + 16)), pk, 32);
}

Test(channel, mitm_flips_a_capability)
{
	mitm(alpha(), beta(), true, flip_cap);
	mitm(alpha(), beta(), false, flip_cap);
}

Test(channel, mitm_downgrades_the_version)
{
	struct copts oa = { .caps = 0, .ver_min = 1, .ver_max = 2, .pins = knows_beta };
	struct copts ob = { .caps = 0, .ver_min = 1, .ver_max = 2, .pins = knows_alpha };

	mitm(chan_with(true, "alpha", &key_a, &oa), chan_with(false, "beta", &key_b, &ob), true,
	     downgrade);
	mitm(chan_with(true, "alpha", &key_a, &oa), chan_with(false, "beta", &key_b, &ob), false,
	     downgrade);
}

Test(channel, mitm_replaces_the_ephemeral_key)
{
	mitm(alpha(), beta(), true, swap_eph);
	mitm(alpha(), beta(), false, swap_eph);
}

/* ---- HELLO rules ---- */

Test(channel, reflected_hello)
{
	struct bdr_channel *a = alpha();
	struct bdr_diag d;
	uint8_t *buf;
	size_t len;

	bdr_channel_take_out(a, &buf, &len);
	cr_assert_eq(deliver(a, buf, len, ALL_AT_ONCE, NULL, &d), -BDR_EKEY);
	assert_diag(&d, "reflected");
	free(buf);
	bdr_channel_free(a);
}

Test(channel, bad_magic)
{
	struct bdr_channel *b = beta();
	struct rogue r;
	struct bdr_diag d;

	rogue_init(&r, true, "alpha", &key_a);
	memcpy(r.magic, "BDRX", 4);
	cr_assert_eq(hello_to_beta(&r, b, &d), -BDR_EFORMAT);
	assert_diag(&d, "not a bdr peer");
	bdr_channel_free(b);
}

Test(channel, hello_length_checked_before_the_body)
{
	struct bdr_channel *b = beta();
	struct bdr_diag d;
	uint8_t len[4];
	size_t used;

	put32(len, BDR_WIRE_HELLO_MAX + 1);
	cr_assert_eq(bdr_channel_feed(b, len, 4, &used, &d), -BDR_ELIMIT);
	cr_assert_eq(used, 4);
	bdr_channel_free(b);

	b = beta();
	put32(len, 0xffffffffu);
	cr_assert_eq(bdr_channel_feed(b, len, 4, &used, &d), -BDR_ELIMIT);
	bdr_channel_free(b);

	b = beta();
	put32(len, BDR_WIRE_HELLO_MIN - 1);
	cr_assert_eq(bdr_channel_feed(b, len, 4, &used, &d), -BDR_EFORMAT);
	bdr_channel_free(b);

	b = beta();
	put32(len, BDR_WIRE_HELLO_MAX);
	cr_assert_eq(bdr_channel_feed(b, len, 4, &used, &d), 0, "512 is allowed: wait for it");
	cr_assert_eq(used, 4);
	bdr_channel_free(b);
}

Test(channel, bad_version_ranges)
{
	struct bdr_channel *b = beta();
	struct rogue r;
	struct bdr_diag d;

	rogue_init(&r, true, "alpha", &key_a);
	r.ver_min = 0;
	cr_assert_eq(hello_to_beta(&r, b, &d), -BDR_EFORMAT);
	cr_assert_eq(bdr_channel_out_len(b), 0);
	bdr_channel_free(b);

	b = beta();
	r.ver_min = 3;
	r.ver_max = 2;
	cr_assert_eq(hello_to_beta(&r, b, &d), -BDR_EFORMAT);
	cr_assert_eq(bdr_channel_out_len(b), 0);
	bdr_channel_free(b);
}

Test(channel, no_common_version)
{
	struct bdr_channel *a = chan_with(true, "alpha", &key_a,
					  &(struct copts){ .ver_min = 2, .ver_max = 3,
							   .pins = knows_beta });
	struct bdr_channel *b = beta();
	struct bdr_diag d;
	uint8_t *buf;
	size_t len, moved;

	cr_assert_eq(move(a, b, ALL_AT_ONCE, NULL, &moved, &d), -BDR_EVERSION);
	cr_assert_str_eq(d.msg, "no common protocol version: we speak 1..1, the peer 2..3");
	/* The responder still answers with its HELLO, and only that. */
	bdr_channel_take_out(b, &buf, &len);
	cr_assert_gt(len, 4);
	cr_assert_eq(len, 4 + get32(buf));
	cr_assert_eq(deliver(a, buf, len, ALL_AT_ONCE, NULL, &d), -BDR_EVERSION);
	cr_assert_str_eq(d.msg, "no common protocol version: we speak 2..3, the peer 1..1");
	free(buf);
	bdr_channel_free(a);
	bdr_channel_free(b);
}

Test(channel, hello_layout)
{
	struct rogue r;
	struct bdr_diag d;
	struct bdr_channel *b;
	struct {
		const char *site;
		size_t ext_len, trailing;
		int err;
	} cases[] = {
		{ "alpha", 0, 1, -BDR_EFORMAT },    /* a byte after ext */
		{ "alpha", 0, 200, -BDR_EFORMAT },  /* many */
		{ "al pha", 0, 0, -BDR_EFORMAT },   /* bad site byte */
		{ ".alpha", 0, 0, -BDR_EFORMAT },   /* leading dot */
		{ "al+pha", 0, 0, -BDR_EFORMAT },   /* '+' is for packages only */
		{ "", 1, 0, -BDR_EFORMAT },         /* empty site (ext keeps len at 113) */
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0, 0,
		  -BDR_ELIMIT },                    /* 65 bytes */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		b = beta();
		rogue_init(&r, true, cases[i].site, &key_a);
		r.ext_len = cases[i].ext_len;
		r.trailing = cases[i].trailing;
		cr_assert_eq(hello_to_beta(&r, b, &d), cases[i].err, "case %zu: %s", i, d.msg);
		assert_diag(&d, "HELLO");
		cr_assert_eq(bdr_channel_out_len(b), 0);
		bdr_channel_free(b);
	}
}

Test(channel, hello_short_body)
{
	struct bdr_channel *b = beta();
	struct rogue r;
	struct bdr_diag d;

	rogue_init(&r, true, "alpha", &key_a);
	put16(r.hello + 16, 300); /* the site claims more than there is */
	cr_assert_eq(deliver(b, r.hello, r.hello_len, ALL_AT_ONCE, NULL, &d), -BDR_EFORMAT);
	assert_diag(&d, "malformed");
	bdr_channel_free(b);

	/* A site of a NUL byte. */
	b = beta();
	rogue_init(&r, true, "a", &key_a);
	r.hello[18] = '\0';
	cr_assert_eq(deliver(b, r.hello, r.hello_len, ALL_AT_ONCE, NULL, &d), -BDR_EFORMAT);
	bdr_channel_free(b);
}

Test(channel, low_order_ephemeral_key)
{
	struct bdr_channel *b = beta();
	struct rogue r;
	struct bdr_diag d;

	rogue_init(&r, true, "alpha", &key_a);
	memset(r.eph_pk, 0, sizeof(r.eph_pk));
	cr_assert_eq(hello_to_beta(&r, b, &d), -BDR_EKEY);
	assert_diag(&d, "key exchange");
	cr_assert_eq(bdr_channel_out_len(b), 0);
	bdr_channel_free(b);
}

/* ---- frames ---- */

/* alpha and beta after the handshake; alpha has sent msgs, whose frames
 * are returned (the caller frees). */
static uint8_t *frames_of(struct bdr_channel **a, struct bdr_channel **b, size_t nmsg,
			  size_t *len)
{
	uint8_t *buf;
	char m[16];

	*a = alpha();
	*b = beta();
	handshake(*a, *b);
	for (size_t i = 0; i < nmsg; i++) {
		snprintf(m, sizeof(m), "\x09msg %zu", i);
		send_str(*a, m);
	}
	bdr_channel_take_out(*a, &buf, len);
	return buf;
}

#define FRAME_LEN(body) (4 + SS_A + (body))

Test(channel, tampered_frame)
{
	struct bdr_channel *a, *b;
	struct bdr_diag d;
	size_t len;
	uint8_t *buf = frames_of(&a, &b, 1, &len);

	for (size_t i = 4; i < len; i += 3) {
		bdr_channel_free(a);
		bdr_channel_free(b);
		free(buf);
		buf = frames_of(&a, &b, 1, &len);
		buf[i] ^= 0x20;
		cr_assert_eq(deliver(b, buf, len, ALL_AT_ONCE, NULL, &d), -BDR_ESIG, "byte %zu", i);
		cr_assert_str_eq(d.msg,
				 "frame failed authentication (tampered, replayed or reordered)");
	}
	free(buf);
	bdr_channel_free(a);
	bdr_channel_free(b);
}

Test(channel, replayed_frame)
{
	struct bdr_channel *a, *b;
	struct inbox in = { 0 };
	struct bdr_diag d;
	size_t len;
	uint8_t *buf = frames_of(&a, &b, 1, &len);

	cr_assert_eq(deliver(b, buf, len, ALL_AT_ONCE, &in, &d), 0, "%s", d.msg);
	cr_assert_eq(deliver(b, buf, len, ALL_AT_ONCE, &in, &d), -BDR_ESIG);
	assert_diag(&d, "replayed");
	cr_assert_eq(in.n, 1);
	inbox_free(&in);
	free(buf);
	bdr_channel_free(a);
	bdr_channel_free(b);
}

Test(channel, reordered_and_dropped_frames)
{
	struct bdr_channel *a, *b;
	struct inbox in = { 0 };
	struct bdr_diag d;
	size_t len, f = FRAME_LEN(6); /* "\x09msg N" */
	uint8_t *buf = frames_of(&a, &b, 2, &len);

	cr_assert_eq(len, 2 * f);
	cr_assert_eq(deliver(b, buf + f, f, ALL_AT_ONCE, &in, &d), -BDR_ESIG, "second first");
	cr_assert_eq(in.n, 0);
	free(buf);
	bdr_channel_free(a);
	bdr_channel_free(b);

	buf = frames_of(&a, &b, 3, &len);
	cr_assert_eq(deliver(b, buf, f, ALL_AT_ONCE, &in, &d), 0);
	cr_assert_eq(deliver(b, buf + 2 * f, f, ALL_AT_ONCE, &in, &d), -BDR_ESIG, "one dropped");
	cr_assert_eq(in.n, 1);
	inbox_free(&in);
	free(buf);
	bdr_channel_free(a);
	bdr_channel_free(b);
}

Test(channel, frame_length_limits)
{
	struct bdr_channel *a, *b;
	struct bdr_diag d;
	uint8_t hdr[4];
	size_t len, used;
	uint8_t *buf = frames_of(&a, &b, 0, &len);

	cr_assert_null(buf);
	put32(hdr, BDR_WIRE_FRAME_MAX);
	cr_assert_eq(bdr_channel_feed(b, hdr, 4, &used, &d), 0, "the maximum is allowed");
	bdr_channel_free(a);
	bdr_channel_free(b);

	buf = frames_of(&a, &b, 0, &len);
	put32(hdr, BDR_WIRE_FRAME_MAX + 1);
	cr_assert_eq(bdr_channel_feed(b, hdr, 4, &used, &d), -BDR_ELIMIT, "at once");
	cr_assert_eq(used, 4);
	bdr_channel_free(a);
	bdr_channel_free(b);

	buf = frames_of(&a, &b, 0, &len);
	put32(hdr, BDR_WIRE_FRAME_OVERHEAD);
	cr_assert_eq(bdr_channel_feed(b, hdr, 4, &used, &d), -BDR_EFORMAT, "an empty message");
	bdr_channel_free(a);
	bdr_channel_free(b);
}

/* beta, after the rogue initiator's HELLO and header; returns the rogue. */
/* beta, offering caps, past the HELLOs with a rogue initiator; the rogue's
 * header is in flight, its AUTH is the caller's. */
static struct bdr_channel *beta_facing_with(struct rogue *r, uint32_t caps, struct vec *flight)
{
	struct bdr_channel *b = chan_with(false, "beta", &key_b,
					  &(struct copts){ .caps = caps, .pins = knows_alpha });
	struct bdr_diag d;
	uint8_t *buf;
	size_t len;

	rogue_init(r, true, "alpha", &key_a);
	cr_assert_eq(hello_to_beta(r, b, &d), 0, "%s", d.msg);
	bdr_channel_take_out(b, &buf, &len);
	rogue_read_hello(r, buf, len, "beta", &key_b);
	rogue_keys(r);
	free(buf);
	*flight = (struct vec){ 0 };
	rogue_header(r, flight);
	return b;
}

static struct bdr_channel *beta_facing(struct rogue *r, struct vec *flight)
{
	return beta_facing_with(r, BDR_CAPS_ALL, flight);
}

Test(channel, first_frame_must_be_auth)
{
	struct rogue r;
	struct vec flight;
	struct bdr_diag d;
	struct bdr_channel *b = beta_facing(&r, &flight);
	uint8_t ping[9] = { MSG_PING };

	rogue_frame(&r, &flight, ping, sizeof(ping), TAG_MSG);
	rogue_auth(&r, &flight);
	cr_assert_eq(deliver(b, flight.p, flight.len, ALL_AT_ONCE, NULL, &d), -BDR_EFORMAT);
	cr_assert_str_eq(d.msg, "expected AUTH, got type 9");
	cr_assert_not(bdr_channel_ready(b));
	vec_free(&flight);
	bdr_channel_free(b);
}

Test(channel, malformed_auth)
{
	struct rogue r;
	struct vec flight;
	struct bdr_diag d;
	struct bdr_channel *b = beta_facing(&r, &flight);
	uint8_t auth[66] = { BDR_MSG_AUTH };

	rogue_frame(&r, &flight, auth, sizeof(auth), TAG_MSG);
	cr_assert_eq(deliver(b, flight.p, flight.len, ALL_AT_ONCE, NULL, &d), -BDR_EFORMAT);
	assert_diag(&d, "AUTH of 66 bytes");
	vec_free(&flight);
	bdr_channel_free(b);
}

/* Our own role's AUTH (what a reflected AUTH would carry) never verifies. */
Test(channel, auth_with_the_wrong_role)
{
	struct rogue r;
	struct vec flight;
	struct bdr_diag d;
	struct bdr_channel *b = beta_facing(&r, &flight);

	rogue_auth_by(&r, &flight, 'R', &key_a);
	cr_assert_eq(deliver(b, flight.p, flight.len, ALL_AT_ONCE, NULL, &d), -BDR_ESIG);
	vec_free(&flight);
	bdr_channel_free(b);

	/* And the initiator side, against a rogue responder. */
	struct bdr_channel *a = alpha();
	uint8_t *buf;
	size_t len;
	rogue_init(&r, false, "beta", &key_b);
	bdr_channel_take_out(a, &buf, &len);
	rogue_read_hello(&r, buf, len, "alpha", &key_a);
	free(buf);
	rogue_keys(&r);
	flight = (struct vec){ 0 };
	vec_put(&flight, r.hello, r.hello_len);
	rogue_header(&r, &flight);
	rogue_auth_by(&r, &flight, 'I', &key_b);
	cr_assert_eq(deliver(a, flight.p, flight.len, ALL_AT_ONCE, NULL, &d), -BDR_ESIG);
	cr_assert_not(bdr_channel_ready(a));
	vec_free(&flight);
	bdr_channel_free(a);
}

Test(channel, second_auth_rejected)
{
	struct rogue r;
	struct vec flight;
	struct bdr_diag d;
	struct inbox in = { 0 };
	struct bdr_channel *b = beta_facing(&r, &flight);

	rogue_auth(&r, &flight);
	rogue_frame(&r, &flight, "\x09ok", 3, TAG_MSG);
	rogue_auth(&r, &flight);
	cr_assert_eq(deliver(b, flight.p, flight.len, ALL_AT_ONCE, &in, &d), -BDR_EFORMAT);
	assert_diag(&d, "AUTH after the handshake");
	cr_assert_eq(in.n, 1);
	inbox_free(&in);
	vec_free(&flight);
	bdr_channel_free(b);
}

Test(channel, other_tags_rejected)
{
	/* TAG_PUSH marks a shared tail, so beta here does not offer those */
	const uint8_t tags[] = { crypto_secretstream_xchacha20poly1305_TAG_PUSH,
				 crypto_secretstream_xchacha20poly1305_TAG_REKEY, TAG_FINAL };

	for (size_t i = 0; i < sizeof(tags); i++) {
		struct rogue r;
		struct vec flight;
		struct bdr_diag d;
		struct bdr_channel *b =
			beta_facing_with(&r, BDR_CAPS_ALL & ~BDR_CAP_SHARED_TAIL, &flight);

		rogue_auth(&r, &flight);
		rogue_frame(&r, &flight, "\x09no", 3, tags[i]);
		cr_assert_eq(deliver(b, flight.p, flight.len, ALL_AT_ONCE, NULL, &d),
			     -BDR_EFORMAT, "tag %u", tags[i]);
		assert_diag(&d, "tag");
		vec_free(&flight);
		bdr_channel_free(b);
	}
}

/* A message behind an AUTH that fails is never delivered. */
Test(channel, nothing_delivered_before_auth)
{
	struct rogue r;
	struct vec flight;
	struct bdr_diag d;
	struct bdr_channel *b = beta_facing(&r, &flight);
	const uint8_t *m;
	size_t len, used;

	rogue_auth_by(&r, &flight, 'I', &key_m);
	rogue_frame(&r, &flight, "\x09smuggled", 9, TAG_MSG);
	cr_assert_eq(bdr_channel_feed(b, flight.p, flight.len, &used, &d), -BDR_ESIG);
	cr_assert_lt(used, flight.len, "stopped at the AUTH");
	cr_assert_eq(bdr_channel_recv(b, &m, &len), -BDR_ESIG);
	cr_assert_null(m);
	vec_free(&flight);
	bdr_channel_free(b);
}

Test(channel, errors_are_sticky)
{
	struct bdr_channel *a, *b;
	struct bdr_diag d, again;
	struct inbox in = { 0 };
	const uint8_t *m;
	size_t len, used, mlen;
	uint8_t *buf = frames_of(&a, &b, 2, &len);

	buf[len - 1] ^= 1; /* the second frame */
	cr_assert_eq(deliver(b, buf, len, ALL_AT_ONCE, &in, &d), -BDR_ESIG);
	cr_assert_eq(in.n, 1);
	inbox_free(&in);
	cr_assert_eq(bdr_channel_feed(b, buf, len, &used, &again), -BDR_ESIG);
	cr_assert_eq(used, 0);
	cr_assert_str_eq(again.msg, d.msg);
	cr_assert_eq(bdr_channel_feed(b, NULL, 0, &used, NULL), -BDR_ESIG);
	cr_assert_eq(bdr_channel_recv(b, &m, &mlen), -BDR_ESIG);
	cr_assert_eq(bdr_channel_send(b, (const uint8_t *)"\x09x", 2), -BDR_ESIG);
	cr_assert_not(bdr_channel_can_send(b));
	cr_assert_not(bdr_channel_ready(b));
	free(buf);

	/* A caller error is not sticky. */
	cr_assert_eq(bdr_channel_send(a, NULL, BDR_WIRE_MSG_MAX + 1), -BDR_ELIMIT);
	send_str(a, "\x09still fine");
	bdr_channel_free(a);
	bdr_channel_free(b);
}

Test(channel, secrets_wiped)
{
	struct bdr_channel *a = alpha(), *b = beta();
	size_t moved;
	struct bdr_diag d;

	cr_assert_not(bdr__channel_key_wiped(a), "the key is needed until AUTH is signed");
	cr_assert_eq(move(a, b, ALL_AT_ONCE, NULL, &moved, &d), 0);
	cr_assert(bdr__channel_key_wiped(b), "gone once the responder signed");
	cr_assert_not(bdr__channel_key_wiped(a));
	cr_assert(bdr__channel_session_secrets_wiped(a) == false);
	handshake(a, b);
	cr_assert(bdr__channel_key_wiped(a));
	cr_assert(bdr__channel_session_secrets_wiped(a));
	cr_assert(bdr__channel_session_secrets_wiped(b));
	bdr_channel_free(a);
	bdr_channel_free(b);
}

/* A written output buffer given back is where the next frames go (no fresh
 * memory per batch), reserving room keeps it from moving, and the peer
 * reads every frame as before. */
Test(channel, recycled_output_is_reused)
{
	struct bdr_channel *a = alpha(), *b = beta();
	struct inbox in_b = { 0 };
	uint8_t *first, *second;
	size_t len, moved;

	handshake(a, b);
	cr_assert_eq(bdr_channel_reserve_out(a, 64 * 1024), 0);
	send_str(a, "\x09one");
	bdr_channel_take_out(a, &first, &len);
	cr_assert_eq(deliver(b, first, len, ALL_AT_ONCE, &in_b, NULL), 0);
	bdr_channel_recycle_out(a, first, 64 * 1024);
	cr_assert_eq(bdr_channel_reserve_out(a, 32 * 1024), 0);
	send_str(a, "\x09two");
	bdr_channel_take_out(a, &second, &len);
	cr_assert_eq(second, first, "the recycled buffer was not reused");
	cr_assert_eq(deliver(b, second, len, ALL_AT_ONCE, &in_b, NULL), 0);
	/* a smaller one given back meanwhile is let go: the larger stays */
	bdr_channel_recycle_out(a, second, 64 * 1024);
	bdr_channel_recycle_out(a, malloc(16), 16);
	bdr_channel_recycle_out(a, NULL, 0);
	send_str(a, "\x09three");
	cr_assert_eq(move(a, b, ALL_AT_ONCE, &in_b, &moved, NULL), 0);
	cr_assert_eq(in_b.n, 3);
	assert_msg(&in_b, 0, "\x09one");
	assert_msg(&in_b, 2, "\x09three");
	inbox_free(&in_b);
	bdr_channel_free(a);
	bdr_channel_free(b);
}

/* ---- shared tails (proto/wire.md, "Shared tails") ---- */

#define TAG_TAIL crypto_secretstream_xchacha20poly1305_TAG_PUSH
#define TAIL_LEN (200u * 1024)

/* Whether needle occurs in hay. */
static bool contains(const uint8_t *hay, size_t n, const uint8_t *needle, size_t m)
{
	for (size_t i = 0; i + m <= n; i++)
		if (hay[i] == needle[0] && !memcmp(hay + i, needle, m))
			return true;
	return false;
}

/* One tail, sealed once, sent to two peers between ordinary messages: each
 * gets head || plaintext as one message, the same ciphertext crosses both
 * connections, and the plaintext crosses neither. */
Test(channel, shared_tail_reaches_every_peer_as_one_message)
{
	struct bdr_channel *a1 = alpha(), *b1 = beta(), *a2 = alpha(), *b2 = beta();
	struct inbox in1 = { 0 }, in2 = { 0 };
	uint8_t *plain = malloc(TAIL_LEN), *ct = malloc(TAIL_LEN), *out1, *out2;
	const uint8_t head[] = { MSG_PING, 'h', 'e', 'a', 'd' };
	struct bdr_channel_tail t;
	size_t len1, len2;

	tu_fill_random(plain, TAIL_LEN, 7);
	memcpy(ct, plain, TAIL_LEN);
	bdr_channel_tail_seal(&t, ct, TAIL_LEN);
	cr_assert_eq(t.ct, ct);
	cr_assert_neq(memcmp(ct, plain, 64), 0, "the tail is encrypted");
	handshake(a1, b1);
	handshake(a2, b2);
	send_str(a1, "\x09" "before");
	cr_assert_eq(bdr_channel_send_split(a1, head, sizeof(head), &t), 0);
	send_str(a1, "\x09" "after");
	cr_assert_eq(bdr_channel_send_split(a2, head, sizeof(head), &t), 0);
	bdr_channel_take_out(a1, &out1, &len1);
	bdr_channel_take_out(a2, &out2, &len2);
	cr_assert(contains(out1, len1, ct, 4096) && contains(out2, len2, ct, 4096),
		  "the same ciphertext on both connections");
	cr_assert(!contains(out1, len1, plain, 32) && !contains(out2, len2, plain, 32));
	cr_assert_eq(deliver(b1, out1, len1, 1000, &in1, NULL), 0);
	cr_assert_eq(deliver(b2, out2, len2, ALL_AT_ONCE, &in2, NULL), 0);
	cr_assert_eq(in1.n, 3);
	assert_msg(&in1, 0, "\x09" "before");
	assert_msg(&in1, 2, "\x09" "after");
	for (struct vec *m = &in1.m[1]; m; m = m == &in1.m[1] ? &in2.m[0] : NULL) {
		cr_assert_eq(m->len, sizeof(head) + TAIL_LEN);
		cr_assert_arr_eq(m->p, head, sizeof(head));
		cr_assert_arr_eq(m->p + sizeof(head), plain, TAIL_LEN);
	}
	bdr_channel_tail_open(&t, ct);
	cr_assert_arr_eq(ct, plain, TAIL_LEN, "open undoes seal");
	free(out1), free(out2), free(plain), free(ct);
	inbox_free(&in1);
	inbox_free(&in2);
	bdr_channel_free(a1), bdr_channel_free(b1), bdr_channel_free(a2), bdr_channel_free(b2);
}

Test(channel, shared_tail_send_errors_change_nothing)
{
	struct bdr_channel *a = alpha(), *b = chan_with(false, "beta", &key_b,
			&(struct copts){ .caps = BDR_CAPS_ALL & ~BDR_CAP_SHARED_TAIL, .pins = knows_alpha });
	struct bdr_channel *a2 = alpha(), *b2 = beta();
	uint8_t data[64] = { 0 }, *big = calloc(1, BDR_WIRE_MSG_MAX);
	struct bdr_channel_tail t, tbig;

	bdr_channel_tail_seal(&t, data, sizeof(data));
	bdr_channel_tail_seal(&tbig, big, BDR_WIRE_MSG_MAX - 1);
	cr_assert_eq(bdr_channel_send_split(a, (const uint8_t *)"\x09", 1, &t), -EAGAIN);
	handshake(a, b);
	handshake(a2, b2);
	size_t before = bdr_channel_out_len(a);
	cr_assert_eq(bdr_channel_send_split(a, (const uint8_t *)"\x09", 1, &t), -ENOTSUP,
		     "the peer did not offer the capability");
	cr_assert_eq(bdr_channel_send_split(a2, (const uint8_t *)"\x01", 1, &t), -EINVAL);
	cr_assert_eq(bdr_channel_send_split(a2, (const uint8_t *)"\x09\x09", 2, &tbig), -BDR_ELIMIT,
		     "head and tail over one message");
	cr_assert_eq(bdr_channel_out_len(a), before);
	cr_assert_eq(bdr_channel_out_len(a2), 0);
	cr_assert(bdr_channel_can_send(a) && bdr_channel_can_send(a2));
	cr_assert_eq(bdr_channel_send_split(a2, (const uint8_t *)"\x09", 1, &tbig), 0,
		     "exactly one message fits");
	free(big);
	bdr_channel_free(a), bdr_channel_free(b), bdr_channel_free(a2), bdr_channel_free(b2);
}

/* A rogue initiator past AUTH with beta (which offers caps), the rogue's
 * frames to come in flight. */
static struct bdr_channel *rogue_to_beta(struct rogue *r, uint32_t caps, struct vec *flight)
{
	struct bdr_channel *b = beta_facing_with(r, caps, flight);

	rogue_auth(r, flight);
	return b;
}

/* A frame with a tail, built from the spec: head || u32 len || key || hash,
 * tag TAG_PUSH, then the tail, ChaCha20 (IETF, zero nonce) of plain. */
static void rogue_split(struct rogue *r, struct vec *out, const char *head, const uint8_t *plain,
			uint32_t len, uint32_t claimed)
{
	size_t hlen = strlen(head);
	uint8_t *f = malloc(hlen + 68), *ct = malloc(len ? len : 1), key[32];
	static const uint8_t zero[12];

	crypto_stream_chacha20_ietf_keygen(key);
	crypto_stream_chacha20_ietf_xor(ct, plain, len, zero, key);
	memcpy(f, head, hlen);
	put32(f + hlen, claimed);
	memcpy(f + hlen + 4, key, 32);
	crypto_generichash(f + hlen + 36, 32, ct, len, NULL, 0);
	rogue_frame(r, out, f, hlen + 68, TAG_TAIL);
	vec_put(out, ct, len);
	free(f), free(ct);
}

Test(channel, shared_tail_from_the_spec)
{
	struct rogue r;
	struct vec flight = { 0 };
	struct inbox in = { 0 };
	struct bdr_diag d;
	struct bdr_channel *b = rogue_to_beta(&r, BDR_CAPS_ALL, &flight);

	rogue_split(&r, &flight, "\x09tail:", (const uint8_t *)"spec", 4, 4);
	rogue_frame(&r, &flight, "\x09next", 5, TAG_MSG);
	cr_assert_eq(deliver(b, flight.p, flight.len, 3, &in, &d), 0, "%s", d.msg);
	cr_assert_eq(in.n, 2);
	assert_msg(&in, 0, "\x09tail:spec");
	assert_msg(&in, 1, "\x09next");
	vec_free(&flight);
	inbox_free(&in);
	bdr_channel_free(b);
}

/* Each case: the connection fails with err and a diag naming the fault, and
 * no message comes out of the frame. */
static void tail_refused(uint32_t caps, const char *head, uint32_t len, uint32_t claimed,
			 bool flip, int err, const char *why)
{
	struct rogue r;
	struct vec flight = { 0 };
	struct bdr_diag d = { { 0 } };
	uint8_t plain[256];
	struct bdr_channel *b = rogue_to_beta(&r, caps, &flight);

	memset(plain, 'x', sizeof(plain));
	rogue_split(&r, &flight, head, plain, len, claimed);
	if (flip)
		flight.p[flight.len - 1] ^= 1;
	cr_assert_eq(deliver(b, flight.p, flight.len, ALL_AT_ONCE, NULL, &d), err, "%s", d.msg);
	assert_diag(&d, why);
	vec_free(&flight);
	bdr_channel_free(b);
}

Test(channel, shared_tail_tampered_is_refused)
{
	tail_refused(BDR_CAPS_ALL, "\x09", 256, 256, true, -BDR_ESIG, "does not match");
}

Test(channel, shared_tail_without_the_capability_is_refused)
{
	tail_refused(BDR_CAPS_ALL & ~BDR_CAP_SHARED_TAIL, "\x09", 16, 16, false, -BDR_EFORMAT,
		     "tag 1");
}

Test(channel, shared_tail_over_a_message_is_refused_before_it_is_read)
{
	/* The tail claims more than a message holds; the 256 bytes that
	 * follow are never buffered as a tail. */
	tail_refused(BDR_CAPS_ALL, "\x09hd", 256, BDR_WIRE_MSG_MAX - 2, false, -BDR_ELIMIT,
		     "a message holds");
	tail_refused(BDR_CAPS_ALL, "\x09", 256, 0, false, -BDR_ELIMIT, "tail of 0 bytes");
	tail_refused(BDR_CAPS_ALL, "", 256, 256, false, -BDR_EFORMAT, "fewer than");
	tail_refused(BDR_CAPS_ALL, "\x01", 256, 256, false, -BDR_EFORMAT, "AUTH after");
}

/* A tail sent by reference is the same stream as one copied in: whether the
 * output is taken whole (the tails copied into place) or as a buffer and
 * its references, the bytes put together are what the peer reads. */
Test(channel, shared_tail_by_reference)
{
	struct bdr_channel *a = alpha(), *b = beta(), *a2 = alpha(), *b2 = beta();
	struct inbox in = { 0 }, in2 = { 0 };
	uint8_t t1[3000], t2[5000], p1[3000], p2[5000], *buf;
	struct bdr_channel_tail x, y;
	struct bdr_channel_ref *refs;
	size_t len, n, before;

	tu_fill_random(t1, sizeof(t1), 1);
	tu_fill_random(t2, sizeof(t2), 2);
	memcpy(p1, t1, sizeof(t1));
	memcpy(p2, t2, sizeof(t2));
	bdr_channel_tail_seal(&x, t1, sizeof(t1));
	bdr_channel_tail_seal(&y, t2, sizeof(t2));
	handshake(a, b);
	handshake(a2, b2);
	for (struct bdr_channel *c = a; c; c = c == a ? a2 : NULL) {
		before = bdr_channel_out_len(c);
		cr_assert_eq(bdr_channel_send_split_ref(c, (const uint8_t *)"\x09x", 2, &x), 0);
		send_str(c, "\x09" "between");
		cr_assert_eq(bdr_channel_send_split_ref(c, (const uint8_t *)"\x09y", 2, &y), 0);
		cr_assert_eq(bdr_channel_out_len(c), before + 2 * (4 + 2 + BDR_WIRE_TRAILER_LEN + 17) +
							     (4 + 8 + 17) + sizeof(t1) + sizeof(t2));
	}
	/* a: whole, the tails copied into place */
	cr_assert_eq(move(a, b, 7, &in, &len, NULL), 0);
	/* a2: the buffer and its references, put together here */
	bdr_channel_take_out_refs(a2, &buf, &len, &refs, &n);
	cr_assert_eq(n, 2);
	cr_assert_eq(bdr_channel_out_len(a2), 0);
	cr_assert(refs[0].p == t1 && refs[1].p == t2 && refs[0].at < refs[1].at);
	struct vec all = { 0 };
	size_t from = 0;
	for (size_t i = 0; i < n; i++) {
		vec_put(&all, buf + from, refs[i].at - from);
		vec_put(&all, refs[i].p, refs[i].len);
		from = refs[i].at;
	}
	vec_put(&all, buf + from, len - from);
	cr_assert_eq(deliver(b2, all.p, all.len, ALL_AT_ONCE, &in2, NULL), 0);
	for (struct inbox *ib = &in; ib; ib = ib == &in ? &in2 : NULL) {
		cr_assert_eq(ib->n, 3);
		cr_assert_eq(ib->m[0].len, 2 + sizeof(p1));
		cr_assert_arr_eq(ib->m[0].p, "\x09x", 2);
		cr_assert_arr_eq(ib->m[0].p + 2, p1, sizeof(p1));
		assert_msg(ib, 1, "\x09" "between");
		cr_assert_eq(ib->m[2].len, 2 + sizeof(p2));
		cr_assert_arr_eq(ib->m[2].p + 2, p2, sizeof(p2));
	}
	vec_free(&all);
	free(buf), free(refs);
	inbox_free(&in), inbox_free(&in2);
	bdr_channel_free(a), bdr_channel_free(b), bdr_channel_free(a2), bdr_channel_free(b2);
}

/* Before its AUTH verifies, a peer that announces a large first frame is
 * cut at its 4 bytes: a stranger that knows a pinned site's public key
 * cannot make us buffer a maximal frame. */
Test(channel, first_frame_bounded_before_auth)
{
	struct rogue r;
	struct vec flight;
	struct bdr_diag d;
	struct bdr_channel *b = beta_facing(&r, &flight);
	uint8_t hdr[4];

	put32(hdr, 1025);
	vec_put(&flight, hdr, 4);
	cr_assert_eq(deliver(b, flight.p, flight.len, ALL_AT_ONCE, NULL, &d), -BDR_ELIMIT);
	assert_diag(&d, "first frame of 1025 bytes");
	vec_free(&flight);
	bdr_channel_free(b);
}
