/* One authenticated, encrypted connection (proto/wire.md, "Handshake" and
 * "Framing"), as bytes in and bytes out.
 *
 * Input is collected one unit at a time (the peer's HELLO length, its
 * HELLO, its stream header, a frame length, a frame) into a buffer sized by
 * what the unit announces, after the announced size has been checked: so
 * memory is bounded by one maximal frame whatever the peer sends.
 *
 * Secrets are wiped as soon as they have served: the ephemeral secret once
 * the session keys exist, each session key once its stream state holds it,
 * the long-term key once AUTH is signed. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bdr/channel.h"
#include "bdr/codec.h"
#include "bdr/error.h"
#include "bdr/wire.h"
#include "core/channel_internal.h"

#define SS(name) crypto_secretstream_xchacha20poly1305_##name
#define HDR_LEN crypto_secretstream_xchacha20poly1305_HEADERBYTES
#define TAG_MESSAGE crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
#define TAG_TAIL crypto_secretstream_xchacha20poly1305_TAG_PUSH /* a shared tail follows */
#define TAG_REFUSAL crypto_secretstream_xchacha20poly1305_TAG_FINAL /* the responder refuses our key */
#define TAIL_KEY_LEN BDR_WIRE_TAIL_KEY_LEN
#define TAIL_HASH_LEN BDR_WIRE_TAIL_HASH_LEN
#define TRAILER_LEN BDR_WIRE_TRAILER_LEN
#define KX_PK_LEN crypto_kx_PUBLICKEYBYTES
#define KX_SK_LEN crypto_kx_SECRETKEYBYTES
#define SESSION_LEN crypto_kx_SESSIONKEYBYTES
#define NONCE_LEN BDR_WIRE_NONCE_LEN
#define T_LEN 32u /* BLAKE2b-256 */
#define LEN_FIELD 4u
#define MAGIC_LEN 4u
#define FRAME_MIN (BDR_WIRE_FRAME_OVERHEAD + 1)
/* The peer's first frame is its AUTH (82 bytes): until it verifies, a
 * stranger holds no more than this of our memory. */
#define FIRST_FRAME_MAX 1024u
#define AUTH_CONTEXT "bdr-auth-v1"
#define AUTH_CONTEXT_LEN (sizeof(AUTH_CONTEXT) - 1)
#define AUTH_SIGNED_LEN (AUTH_CONTEXT_LEN + 1 + T_LEN)
#define AUTH_MSG_LEN (1 + BDR_SIG_LEN)
#define ROLE_I 'I'
#define ROLE_R 'R'
#define OUT_MIN_CAP 1024u

_Static_assert(SS(ABYTES) == BDR_WIRE_FRAME_OVERHEAD, "frame overhead");
_Static_assert(TAIL_KEY_LEN == crypto_stream_chacha20_ietf_KEYBYTES, "a tail key is a ChaCha20 key");
_Static_assert(TAIL_HASH_LEN == crypto_generichash_BYTES, "a tail hash is BLAKE2b-256");
_Static_assert(SESSION_LEN == SS(KEYBYTES), "kx session keys are stream keys");
_Static_assert(AUTH_SIGNED_LEN == 44, "AUTH signs 44 bytes");
_Static_assert(sizeof(BDR_WIRE_MAGIC) - 1 == MAGIC_LEN, "magic length");
_Static_assert(BDR_WIRE_HELLO_MIN == MAGIC_LEN + 2 + 2 + 4 + 2 + 1 + BDR_PK_LEN + KX_PK_LEN +
					    NONCE_LEN + 2,
	       "the smallest HELLO has a one-byte site and no ext");
_Static_assert(BDR_WIRE_HELLO_MIN - 1 + BDR_MAX_SITE_NAME <= BDR_WIRE_HELLO_MAX,
	       "our own HELLO always fits");
_Static_assert(BDR_WIRE_FRAME_MAX <= UINT32_MAX, "frame length fits its u32");

/* What the next bytes of input are. */
enum rx_state {
	RX_HELLO_LEN, /* the u32 of the peer's HELLO */
	RX_HELLO,     /* the rest of it */
	RX_HEADER,    /* the peer's secretstream header */
	RX_FRAME_LEN, /* a frame's u32 */
	RX_FRAME,     /* its ciphertext */
	RX_TAIL,      /* the shared tail its trailer announced */
};

struct buf {
	uint8_t *p;
	size_t len;
	size_t cap;
};

struct bdr_channel {
	int err; /* sticky: every call returns it once set */
	struct bdr_diag diag; /* and its message */
	bool initiator;
	bool auth_sent; /* our AUTH is in the output: we may send */
	bool ready;     /* the peer's AUTH verified */
	bool msg_ready; /* msg holds a message recv has not returned yet */
	bool pin_failed; /* the peer's key is not the pinned one, or it refused ours */
	enum rx_state rx;
	size_t want; /* bytes of the current unit; in.len of them arrived */
	struct buf in, msg, out;
	struct buf spare;        /* a written output buffer, for the next one */
	struct buf hello; /* our HELLO frame, until it is in the transcript */
	struct buf head;  /* a split message's head and trailer, being sealed */
	struct bdr_channel_ref *refs; /* tails in the output by reference */
	size_t nrefs, crefs;
	size_t ref_bytes; /* theirs */
	uint8_t tail_key[TAIL_KEY_LEN], tail_hash[TAIL_HASH_LEN]; /* RX_TAIL's */

	bdr_channel_peer_key_fn *peer_key;
	void *peer_key_arg;
	char site[BDR_MAX_SITE_NAME + 1];
	char peer_site[BDR_MAX_SITE_NAME + 1];
	uint8_t peer_pk[BDR_PK_LEN];
	uint32_t caps, agreed_caps;
	uint16_t ver_min, ver_max, version;

	struct bdr_key key; /* wiped once AUTH is signed */
	uint8_t eph_pk[KX_PK_LEN];
	uint8_t eph_sk[KX_SK_LEN]; /* wiped once the session keys exist */
	uint8_t nonce[NONCE_LEN];
	uint8_t rx_key[SESSION_LEN], tx_key[SESSION_LEN]; /* wiped once in a state */
	uint8_t transcript[T_LEN];
	SS(state) push, pull;
	struct bdr_channel_stats st;
};

/* The peer's HELLO, borrowed from the input buffer. */
struct hello {
	uint16_t ver_min, ver_max;
	uint32_t caps;
	char site[BDR_MAX_SITE_NAME + 1];
	const uint8_t *key, *eph, *nonce;
};

/* ---- errors ---- */

static int sticky(const struct bdr_channel *c, struct bdr_diag *d)
{
	if (d)
		*d = c->diag;
	return c->err;
}

/* Makes err the connection's final error, with its message. */
static int fail(struct bdr_channel *c, struct bdr_diag *d, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fail(struct bdr_channel *c, struct bdr_diag *d, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->diag.msg, sizeof(c->diag.msg), fmt, ap);
	va_end(ap);
	c->err = err;
	return sticky(c, d);
}

static int no_memory(struct bdr_channel *c, struct bdr_diag *d)
{
	return fail(c, d, -ENOMEM, "out of memory");
}

/* ---- buffers ---- */

/* Room for cap bytes in all. Grows to exactly what is asked, so the input
 * never holds more than the largest unit the peer announced. */
static int buf_reserve(struct buf *b, size_t cap)
{
	uint8_t *p;

	if (cap <= b->cap)
		return 0;
	p = realloc(b->p, cap);
	if (!p)
		return -ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

/* A new output starts in the recycled buffer, if there is one. */
static void adopt_spare(struct bdr_channel *c)
{
	if (!c->out.p && c->spare.p)
		c->out = c->spare, c->spare = (struct buf){ 0 };
}

/* n more bytes at the end of the output (counted as sent), or NULL. The
 * output doubles: it holds what we produce, never what the peer announces. */
static uint8_t *out_reserve(struct bdr_channel *c, size_t n)
{
	size_t need, cap;
	uint8_t *at;

	adopt_spare(c);
	need = c->out.len + n, cap = c->out.cap ? c->out.cap : OUT_MIN_CAP;

	while (cap < need)
		cap *= 2;
	if (buf_reserve(&c->out, cap))
		return NULL;
	at = c->out.p + c->out.len;
	c->out.len = need;
	c->st.wire_out += n;
	return at;
}

static int out_append(struct bdr_channel *c, const void *p, size_t n, struct bdr_diag *d)
{
	uint8_t *at = out_reserve(c, n);

	if (!at)
		return no_memory(c, d);
	memcpy(at, p, n);
	return 0;
}

/* The next unit of input: want bytes, of which the first keep are already
 * in the buffer (a HELLO keeps its length field for the transcript). */
static int expect(struct bdr_channel *c, enum rx_state rx, size_t keep, size_t want,
		  struct bdr_diag *d)
{
	if (buf_reserve(&c->in, want))
		return no_memory(c, d);
	c->rx = rx;
	c->in.len = keep;
	c->want = want;
	return 0;
}

static uint32_t read_len(const struct buf *in)
{
	struct bdr_rbuf r;

	bdr_rbuf_init(&r, in->p, LEN_FIELD);
	return bdr_r_u32(&r);
}

static void write_len(uint8_t *p, uint32_t v)
{
	for (size_t i = 0; i < LEN_FIELD; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* ---- sending ---- */

/* Encrypts one message into a frame at the end of the output. */
static int seal_tag(struct bdr_channel *c, const uint8_t *msg, size_t len, uint8_t tag,
		    struct bdr_diag *d)
{
	size_t clen = len + SS(ABYTES);
	uint8_t *at = out_reserve(c, LEN_FIELD + clen);

	if (!at)
		return no_memory(c, d);
	write_len(at, (uint32_t)clen);
	SS(push)(&c->push, at + LEN_FIELD, NULL, msg, len, NULL, 0, tag);
	return 0;
}

static int seal(struct bdr_channel *c, const uint8_t *msg, size_t len, struct bdr_diag *d)
{
	return seal_tag(c, msg, len, TAG_MESSAGE, d);
}

/* What an AUTH signs: the context, the signer's role and the transcript. */
static void auth_signed(uint8_t out[AUTH_SIGNED_LEN], uint8_t role, const uint8_t t[T_LEN])
{
	memcpy(out, AUTH_CONTEXT, AUTH_CONTEXT_LEN);
	out[AUTH_CONTEXT_LEN] = role;
	memcpy(out + AUTH_CONTEXT_LEN + 1, t, T_LEN);
}

/* Our stream header, then AUTH as our first frame. The long-term key has
 * no further use on this connection, so it goes right after signing. */
static int send_auth(struct bdr_channel *c, struct bdr_diag *d)
{
	uint8_t hdr[HDR_LEN], sign_in[AUTH_SIGNED_LEN], auth[AUTH_MSG_LEN];
	int err;

	SS(init_push)(&c->push, hdr, c->tx_key);
	sodium_memzero(c->tx_key, sizeof(c->tx_key));
	if ((err = out_append(c, hdr, sizeof(hdr), d)))
		return err;
	auth_signed(sign_in, c->initiator ? ROLE_I : ROLE_R, c->transcript);
	auth[0] = BDR_MSG_AUTH;
	crypto_sign_detached(auth + 1, NULL, sign_in, sizeof(sign_in), c->key.sk);
	bdr_key_wipe(&c->key);
	if ((err = seal(c, auth, sizeof(auth), d)))
		return err;
	c->auth_sent = true;
	return 0;
}

/* ---- the peer's HELLO ---- */

/* Checks 2 to 4 of proto/wire.md: magic, version range, a common version. */
static int hello_head(struct bdr_channel *c, struct bdr_rbuf *r, struct hello *h,
		      struct bdr_diag *d)
{
	const uint8_t *magic = bdr_r_view(r, MAGIC_LEN);

	h->ver_min = bdr_r_u16(r);
	h->ver_max = bdr_r_u16(r);
	if (!magic || memcmp(magic, BDR_WIRE_MAGIC, MAGIC_LEN) != 0)
		return fail(c, d, -BDR_EFORMAT, "not a bdr peer (bad HELLO magic)");
	if (h->ver_min == 0 || h->ver_min > h->ver_max)
		return fail(c, d, -BDR_EFORMAT, "HELLO: invalid version range %u..%u",
			    h->ver_min, h->ver_max);
	if ((h->ver_min > c->ver_min ? h->ver_min : c->ver_min) <=
	    (h->ver_max < c->ver_max ? h->ver_max : c->ver_max))
		return 0;
	/* The responder answers anyway, so the initiator can report it too. */
	if (!c->initiator && out_append(c, c->hello.p, c->hello.len, d))
		return c->err;
	return fail(c, d, -BDR_EVERSION,
		    "no common protocol version: we speak %u..%u, the peer %u..%u", c->ver_min,
		    c->ver_max, h->ver_min, h->ver_max);
}

/* The site field as a C string, by the manifest's rules. */
static int hello_site(struct bdr_channel *c, const uint8_t *p, size_t n, struct hello *h,
		      struct bdr_diag *d)
{
	struct bdr_diag why;
	int err;

	if (n > BDR_MAX_SITE_NAME)
		return fail(c, d, -BDR_ELIMIT, "HELLO: site name of %zu bytes exceeds %d", n,
			    BDR_MAX_SITE_NAME);
	if (memchr(p, '\0', n))
		return fail(c, d, -BDR_EFORMAT, "HELLO: site name contains a NUL byte");
	memcpy(h->site, p, n);
	h->site[n] = '\0';
	if ((err = bdr_manifest_check_site(h->site, &why)))
		return fail(c, d, err, "HELLO: %s", why.msg);
	return 0;
}

/* Checks 5 and 6: the rest of the layout, and our own nonce reflected. */
static int hello_body(struct bdr_channel *c, struct bdr_rbuf *r, struct hello *h,
		      struct bdr_diag *d)
{
	const uint8_t *site;
	size_t site_len, ext_len;
	int err;

	h->caps = bdr_r_u32(r);
	site = bdr_r_str16(r, &site_len);
	h->key = bdr_r_view(r, BDR_PK_LEN);
	h->eph = bdr_r_view(r, KX_PK_LEN);
	h->nonce = bdr_r_view(r, NONCE_LEN);
	/* ext: nothing in version 1 reads it, but the transcript covers it. */
	(void)bdr_r_str16(r, &ext_len);
	if (bdr_rbuf_end(r))
		return fail(c, d, -BDR_EFORMAT,
			    "HELLO: malformed: its fields do not fill its %zu bytes exactly", r->len);
	if ((err = hello_site(c, site, site_len, h, d)))
		return err;
	if (memcmp(h->nonce, c->nonce, NONCE_LEN) == 0)
		return fail(c, d, -BDR_EKEY, "HELLO: the peer sent our own nonce back "
					     "(our HELLO reflected)");
	return 0;
}

static int key_mismatch(struct bdr_channel *c, const struct hello *h, const uint8_t *pinned,
			struct bdr_diag *d)
{
	char got[BDR_KEY_B64_LEN + 1], want[BDR_KEY_B64_LEN + 1];

	bdr_key_pk_to_b64(h->key, got);
	bdr_key_pk_to_b64(pinned, want);
	c->pin_failed = true;
	return fail(c, d, -BDR_EKEY, "site '%s' presented key %s which is not the pinned key %s",
		    h->site, got, want);
}

/* Checks 7 and 8: a site we know, with the key we pinned for it. */
static int hello_identity(struct bdr_channel *c, const struct hello *h, struct bdr_diag *d)
{
	uint8_t pinned[BDR_PK_LEN];
	int err = c->peer_key(c->peer_key_arg, h->site, pinned);

	if (err == -BDR_EKEY)
		return fail(c, d, -BDR_EKEY, "unknown site '%s'", h->site);
	if (err)
		return fail(c, d, err < 0 ? err : -EINVAL, "site '%s': looking up its key: %s",
			    h->site, bdr_strerror(err));
	if (memcmp(pinned, h->key, BDR_PK_LEN) != 0)
		return key_mismatch(c, h, pinned, d);
	memcpy(c->peer_pk, pinned, BDR_PK_LEN);
	return 0;
}

/* Check 9: the session keys (initiator = kx client). */
static int hello_kx(struct bdr_channel *c, const struct hello *h, struct bdr_diag *d)
{
	int err;

	if (c->initiator)
		err = crypto_kx_client_session_keys(c->rx_key, c->tx_key, c->eph_pk, c->eph_sk,
						    h->eph);
	else
		err = crypto_kx_server_session_keys(c->rx_key, c->tx_key, c->eph_pk, c->eph_sk,
						    h->eph);
	sodium_memzero(c->eph_sk, sizeof(c->eph_sk));
	if (err)
		return fail(c, d, -BDR_EKEY,
			    "site '%s': the ephemeral key exchange failed (a low-order key)",
			    h->site);
	return 0;
}

/* T = BLAKE2b-256 of the initiator's HELLO frame, then the responder's,
 * both exactly as sent. */
static void transcript(struct bdr_channel *c)
{
	const struct buf *first = c->initiator ? &c->hello : &c->in;
	const struct buf *second = c->initiator ? &c->in : &c->hello;
	crypto_generichash_state st;

	crypto_generichash_init(&st, NULL, 0, T_LEN);
	crypto_generichash_update(&st, first->p, first->len);
	crypto_generichash_update(&st, second->p, second->len);
	crypto_generichash_final(&st, c->transcript, T_LEN);
	free(c->hello.p);
	c->hello = (struct buf){ 0 };
}

/* The peer's HELLO passed every check: the responder answers with its own,
 * and each side sends its header and AUTH. */
static int hello_accept(struct bdr_channel *c, const struct hello *h, struct bdr_diag *d)
{
	int err;

	memcpy(c->peer_site, h->site, sizeof(c->peer_site));
	c->agreed_caps = c->caps & h->caps;
	c->version = h->ver_max < c->ver_max ? h->ver_max : c->ver_max;
	if (!c->initiator && (err = out_append(c, c->hello.p, c->hello.len, d)))
		return err;
	transcript(c);
	if ((err = send_auth(c, d)))
		return err;
	return expect(c, RX_HEADER, 0, HDR_LEN, d);
}

/* The refusal's ERROR, sealed as our last frame (TAG_REFUSAL). */
static int seal_refusal(struct bdr_channel *c, const struct hello *h)
{
	struct bdr_msg *m = calloc(1, sizeof(*m));
	char pk[BDR_KEY_B64_LEN + 1], text[BDR_WIRE_TEXT_MAX + 1];
	struct bdr_wbuf w;
	uint8_t *buf = NULL;
	size_t len = 0;
	int err = -ENOMEM;

	if (!m)
		return err;
	/* The same words for an unknown site and a wrong key: a stranger
	 * learns nothing of which sites we pin. */
	bdr_key_pk_to_b64(h->key, pk);
	snprintf(text, sizeof(text), "site '%s' has not pinned key %s for site '%s'", c->site, pk,
		 h->site);
	m->type = BDR_MSG_ERROR;
	m->error.code = -BDR_EKEY;
	bdr_wire_text(m->error.message, text);
	bdr_wbuf_init(&w, BDR_WIRE_MSG_MAX);
	err = bdr_wire_encode(m, &w, NULL);
	if (!err)
		err = bdr_wbuf_finish(&w, &buf, &len);
	else
		bdr_wbuf_free(&w);
	if (!err)
		err = seal_tag(c, buf, len, TAG_REFUSAL, NULL);
	free(buf);
	free(m);
	return err;
}

/* The responder does not accept the initiator's identity (an unknown site,
 * or a key other than the pinned one). It still answers with its HELLO,
 * header and AUTH, then an ERROR in a frame with TAG_REFUSAL: the initiator
 * checks our AUTH with the key it pins for us, so it can tell an
 * authenticated refusal from a connection that broke. The identity error
 * stays this connection's error; the refusal is sent as best it can be. */
static int refuse(struct bdr_channel *c, const struct hello *h, struct bdr_diag *d)
{
	struct bdr_diag why = c->diag;
	int err = c->err;

	c->err = 0;
	if (!hello_kx(c, h, NULL) && !out_append(c, c->hello.p, c->hello.len, NULL)) {
		transcript(c);
		if (!send_auth(c, NULL))
			(void)seal_refusal(c, h);
	}
	c->err = err;
	c->diag = why;
	return sticky(c, d);
}

static int on_hello(struct bdr_channel *c, struct bdr_diag *d)
{
	struct bdr_rbuf r;
	struct hello h;
	int err;

	bdr_rbuf_init(&r, c->in.p + LEN_FIELD, c->in.len - LEN_FIELD);
	if ((err = hello_head(c, &r, &h, d)) || (err = hello_body(c, &r, &h, d)))
		return err;
	err = hello_identity(c, &h, d);
	if (err == -BDR_EKEY && !c->initiator)
		return refuse(c, &h, d);
	if (err || (err = hello_kx(c, &h, d)))
		return err;
	return hello_accept(c, &h, d);
}

/* Check 1, before any of the body is buffered. */
static int on_hello_len(struct bdr_channel *c, struct bdr_diag *d)
{
	uint32_t len = read_len(&c->in);

	if (len > BDR_WIRE_HELLO_MAX)
		return fail(c, d, -BDR_ELIMIT, "HELLO of %u bytes exceeds the limit of %u", len,
			    BDR_WIRE_HELLO_MAX);
	if (len < BDR_WIRE_HELLO_MIN)
		return fail(c, d, -BDR_EFORMAT, "HELLO of %u bytes is shorter than the minimum %u",
			    len, BDR_WIRE_HELLO_MIN);
	return expect(c, RX_HELLO, LEN_FIELD, LEN_FIELD + len, d);
}

/* ---- the peer's stream ---- */

static int on_header(struct bdr_channel *c, struct bdr_diag *d)
{
	int err = SS(init_pull)(&c->pull, c->in.p, c->rx_key);

	sodium_memzero(c->rx_key, sizeof(c->rx_key));
	if (err)
		return fail(c, d, -BDR_EFORMAT, "invalid stream header");
	return expect(c, RX_FRAME_LEN, 0, LEN_FIELD, d);
}

static int on_frame_len(struct bdr_channel *c, struct bdr_diag *d)
{
	uint32_t len = read_len(&c->in);

	if (len > BDR_WIRE_FRAME_MAX)
		return fail(c, d, -BDR_ELIMIT, "frame of %u bytes exceeds the limit of %u", len,
			    BDR_WIRE_FRAME_MAX);
	if (len < FRAME_MIN)
		return fail(c, d, -BDR_EFORMAT, "frame of %u bytes is shorter than the minimum %u",
			    len, FRAME_MIN);
	if (!c->ready && len > FIRST_FRAME_MAX)
		return fail(c, d, -BDR_ELIMIT, "first frame of %u bytes: before its AUTH verifies, "
			    "a peer may send at most %u", len, FIRST_FRAME_MAX);
	return expect(c, RX_FRAME, 0, len, d);
}

/* The first frame: the peer's AUTH, by its pinned key over its role and
 * our transcript. */
static int check_auth(struct bdr_channel *c, struct bdr_diag *d)
{
	uint8_t sign_in[AUTH_SIGNED_LEN];

	if (c->msg.p[0] != BDR_MSG_AUTH)
		return fail(c, d, -BDR_EFORMAT, "expected AUTH, got type %u", c->msg.p[0]);
	if (c->msg.len != AUTH_MSG_LEN)
		return fail(c, d, -BDR_EFORMAT, "AUTH of %zu bytes, expected %zu", c->msg.len,
			    (size_t)AUTH_MSG_LEN);
	auth_signed(sign_in, c->initiator ? ROLE_R : ROLE_I, c->transcript);
	if (crypto_sign_verify_detached(c->msg.p + 1, sign_in, sizeof(sign_in), c->peer_pk))
		return fail(c, d, -BDR_ESIG,
			    "site '%s': AUTH signature does not verify (HELLO altered in transit, "
			    "or the peer does not hold the pinned key)",
			    c->peer_site);
	c->ready = true;
	return 0;
}

/* The responder's authenticated refusal of our key (see refuse): final,
 * and not retried by the daemon, which must hear it as the responder's
 * word, not as a broken connection. */
static int on_refusal(struct bdr_channel *c, struct bdr_diag *d)
{
	struct bdr_msg *m = malloc(sizeof(*m));
	int err;

	if (!m)
		return no_memory(c, d);
	err = bdr_wire_decode(c->msg.p, c->msg.len, m, NULL);
	if (err || m->type != BDR_MSG_ERROR) {
		free(m);
		return fail(c, d, -BDR_EFORMAT, "a final frame that is not an ERROR");
	}
	c->pin_failed = true;
	err = fail(c, d, -BDR_EKEY, "site '%s' refused this site's key: %s", c->peer_site,
		   m->error.message);
	free(m);
	return err;
}

/* A frame with a shared tail: its plaintext ends in the trailer, checked
 * here; the tail is read next, bounded so head and tail fit one message. */
static int on_trailer(struct bdr_channel *c, struct bdr_diag *d)
{
	struct bdr_rbuf r;
	size_t hlen;
	uint32_t tlen;

	if (c->msg.len < 1 + TRAILER_LEN)
		return fail(c, d, -BDR_EFORMAT, "frame with a tail has %zu bytes, fewer than %u",
			    c->msg.len, 1 + TRAILER_LEN);
	hlen = c->msg.len - TRAILER_LEN;
	if (c->msg.p[0] == BDR_MSG_AUTH)
		return fail(c, d, -BDR_EFORMAT, "AUTH after the handshake");
	bdr_rbuf_init(&r, c->msg.p + hlen, TRAILER_LEN);
	tlen = bdr_r_u32(&r);
	if (tlen == 0 || tlen > BDR_WIRE_MSG_MAX - hlen)
		return fail(c, d, -BDR_ELIMIT, "tail of %u bytes after a head of %zu: a message "
			    "holds 1..%u bytes", tlen, hlen, BDR_WIRE_MSG_MAX);
	bdr_r_bytes(&r, c->tail_key, TAIL_KEY_LEN);
	bdr_r_bytes(&r, c->tail_hash, TAIL_HASH_LEN);
	sodium_memzero(c->msg.p + hlen, TRAILER_LEN);
	c->msg.len = hlen;
	if (buf_reserve(&c->msg, hlen + tlen))
		return no_memory(c, d);
	return expect(c, RX_TAIL, 0, tlen, d);
}

static int on_frame(struct bdr_channel *c, struct bdr_diag *d)
{
	unsigned long long mlen = 0;
	unsigned char tag = 0;
	int err;

	if (buf_reserve(&c->msg, c->in.len - SS(ABYTES)))
		return no_memory(c, d);
	if (SS(pull)(&c->pull, c->msg.p, &mlen, &tag, c->in.p, c->in.len, NULL, 0))
		return fail(c, d, -BDR_ESIG,
			    "frame failed authentication (tampered, replayed or reordered)");
	c->msg.len = (size_t)mlen;
	if (tag == TAG_TAIL && c->ready && (c->agreed_caps & BDR_CAP_SHARED_TAIL))
		return on_trailer(c, d);
	if (tag == TAG_REFUSAL && c->ready && c->initiator && c->st.msgs_in == 0)
		return on_refusal(c, d);
	if (tag != TAG_MESSAGE)
		return fail(c, d, -BDR_EFORMAT, "frame has tag %u, expected a message", tag);
	if (c->ready && c->msg.p[0] == BDR_MSG_AUTH)
		return fail(c, d, -BDR_EFORMAT, "AUTH after the handshake");
	if (!c->ready) {
		if ((err = check_auth(c, d)))
			return err;
	} else {
		c->msg_ready = true;
		c->st.msgs_in++;
	}
	return expect(c, RX_FRAME_LEN, 0, LEN_FIELD, d);
}

/* The tail's bytes: hashed before anything is decrypted, then appended to
 * the head as plaintext, so the caller sees one ordinary message. */
static int on_tail(struct bdr_channel *c, struct bdr_diag *d)
{
	uint8_t h[TAIL_HASH_LEN];
	int same;

	crypto_generichash(h, sizeof(h), c->in.p, c->in.len, NULL, 0);
	same = sodium_memcmp(h, c->tail_hash, sizeof(h)) == 0;
	if (same)
		crypto_stream_chacha20_ietf_xor(c->msg.p + c->msg.len, c->in.p, c->in.len,
						(const uint8_t[crypto_stream_chacha20_ietf_NONCEBYTES]){ 0 },
						c->tail_key);
	sodium_memzero(c->tail_key, sizeof(c->tail_key));
	if (!same)
		return fail(c, d, -BDR_ESIG, "shared tail of %zu bytes does not match its frame's hash",
			    c->in.len);
	c->msg.len += c->in.len;
	c->msg_ready = true;
	c->st.msgs_in++;
	return expect(c, RX_FRAME_LEN, 0, LEN_FIELD, d);
}

static int on_unit(struct bdr_channel *c, struct bdr_diag *d)
{
	switch (c->rx) {
	case RX_HELLO_LEN: return on_hello_len(c, d);
	case RX_HELLO: return on_hello(c, d);
	case RX_HEADER: return on_header(c, d);
	case RX_FRAME_LEN: return on_frame_len(c, d);
	case RX_FRAME: return on_frame(c, d);
	case RX_TAIL: return on_tail(c, d);
	}
	return fail(c, d, -EINVAL, "channel in an impossible state");
}

/* ---- public ---- */

static int check_opts(const struct bdr_channel_opts *o, uint16_t *ver_min, uint16_t *ver_max)
{
	*ver_min = o->ver_min ? o->ver_min : BDR_PROTO_VERSION;
	*ver_max = o->ver_max ? o->ver_max : BDR_PROTO_VERSION;
	if (!o->key || !o->peer_key || *ver_min > *ver_max)
		return -EINVAL;
	return bdr_manifest_check_site(o->site, NULL) ? -EINVAL : 0;
}

/* Our HELLO frame, into c->hello. */
static int hello_build(struct bdr_channel *c)
{
	struct bdr_wbuf w;

	bdr_wbuf_init(&w, LEN_FIELD + BDR_WIRE_HELLO_MAX);
	bdr_w_u32(&w, (uint32_t)(BDR_WIRE_HELLO_MIN - 1 + strlen(c->site)));
	bdr_w_bytes(&w, BDR_WIRE_MAGIC, MAGIC_LEN);
	bdr_w_u16(&w, c->ver_min);
	bdr_w_u16(&w, c->ver_max);
	bdr_w_u32(&w, c->caps);
	bdr_w_str16(&w, c->site);
	bdr_w_bytes(&w, c->key.pk, BDR_PK_LEN);
	bdr_w_bytes(&w, c->eph_pk, KX_PK_LEN);
	bdr_w_bytes(&w, c->nonce, NONCE_LEN);
	bdr_w_str16(&w, NULL); /* ext: empty in version 1 */
	return bdr_wbuf_finish(&w, &c->hello.p, &c->hello.len);
}

static int channel_init(struct bdr_channel *c, const struct bdr_channel_opts *o)
{
	int err;

	c->initiator = o->initiator;
	c->peer_key = o->peer_key;
	c->peer_key_arg = o->peer_key_arg;
	c->caps = o->caps;
	snprintf(c->site, sizeof(c->site), "%s", o->site);
	c->key = *o->key;
	crypto_kx_keypair(c->eph_pk, c->eph_sk);
	randombytes_buf(c->nonce, sizeof(c->nonce));
	if ((err = hello_build(c)))
		return err;
	if (c->initiator && out_append(c, c->hello.p, c->hello.len, NULL))
		return c->err;
	return expect(c, RX_HELLO_LEN, 0, LEN_FIELD, NULL);
}

int bdr_channel_new(struct bdr_channel **out, const struct bdr_channel_opts *o)
{
	struct bdr_channel *c;
	uint16_t ver_min, ver_max;
	int err;

	*out = NULL;
	if ((err = check_opts(o, &ver_min, &ver_max)))
		return err;
	if (sodium_init() < 0)
		return -EIO;
	if (!(c = calloc(1, sizeof(*c))))
		return -ENOMEM;
	c->ver_min = ver_min;
	c->ver_max = ver_max;
	if ((err = channel_init(c, o))) {
		bdr_channel_free(c);
		return err;
	}
	*out = c;
	return 0;
}

void bdr_channel_free(struct bdr_channel *c)
{
	if (!c)
		return;
	free(c->in.p);
	free(c->msg.p);
	free(c->out.p);
	free(c->spare.p);
	free(c->hello.p);
	if (c->head.p)
		sodium_memzero(c->head.p, c->head.cap);
	free(c->head.p);
	free(c->refs);
	sodium_memzero(c, sizeof(*c)); /* keys, stream states */
	free(c);
}

int bdr_channel_feed(struct bdr_channel *c, const uint8_t *p, size_t n, size_t *used,
		     struct bdr_diag *d)
{
	size_t off = 0;
	int err = c->err;

	while (!err && off < n && !c->msg_ready) {
		size_t take = c->want - c->in.len;

		if (take > n - off)
			take = n - off;
		memcpy(c->in.p + c->in.len, p + off, take);
		c->in.len += take;
		off += take;
		if (c->in.len == c->want)
			err = on_unit(c, d);
	}
	*used = off;
	c->st.wire_in += off;
	return err ? sticky(c, d) : 0;
}

int bdr_channel_recv(struct bdr_channel *c, const uint8_t **msg, size_t *len)
{
	*msg = NULL;
	*len = 0;
	if (c->err)
		return c->err;
	if (!c->msg_ready)
		return 0;
	c->msg_ready = false;
	*msg = c->msg.p;
	*len = c->msg.len;
	return 1;
}

/* Caller errors (-EAGAIN, -BDR_ELIMIT, -EINVAL) change nothing and are not
 * the connection's error. AUTH belongs to the channel: the peer would
 * close on a second one. */
static int send_check(const struct bdr_channel *c, const uint8_t *msg, size_t len)
{
	if (c->err)
		return c->err;
	if (!c->auth_sent)
		return -EAGAIN;
	if (len > BDR_WIRE_MSG_MAX)
		return -BDR_ELIMIT;
	if (len == 0 || msg[0] == BDR_MSG_AUTH)
		return -EINVAL;
	return 0;
}

int bdr_channel_send(struct bdr_channel *c, const uint8_t *msg, size_t len)
{
	int err;

	if ((err = send_check(c, msg, len)))
		return err;
	if ((err = seal(c, msg, len, NULL)))
		return err;
	c->st.msgs_out++;
	return 0;
}

void bdr_channel_tail_seal(struct bdr_channel_tail *t, uint8_t *p, uint32_t len)
{
	crypto_stream_chacha20_ietf_keygen(t->key);
	t->ct = p;
	t->len = len;
	bdr_channel_tail_open(t, p); /* a stream cipher: sealing is opening */
	crypto_generichash(t->hash, sizeof(t->hash), p, len, NULL, 0);
}

void bdr_channel_tail_open(const struct bdr_channel_tail *t, uint8_t *out)
{
	static const uint8_t zero[crypto_stream_chacha20_ietf_NONCEBYTES];

	/* A nonce of zero: every key seals one tail only. */
	crypto_stream_chacha20_ietf_xor(out, t->ct, t->len, zero, t->key);
}

/* Room for one more reference. */
static int refs_room(struct bdr_channel *c)
{
	size_t n = c->crefs ? 2 * c->crefs : 64;
	struct bdr_channel_ref *r;

	if (c->nrefs < c->crefs)
		return 0;
	if (!(r = realloc(c->refs, n * sizeof(*r))))
		return -ENOMEM;
	c->refs = r, c->crefs = n;
	return 0;
}

/* The tail's bytes at the end of the output, left where they are. */
static void add_ref(struct bdr_channel *c, const struct bdr_channel_tail *t)
{
	c->refs[c->nrefs++] = (struct bdr_channel_ref){ c->out.len, t->ct, t->len };
	c->ref_bytes += t->len;
	c->st.wire_out += t->len;
}

/* The head and its trailer are sealed as one frame with TAG_TAIL; the tail's
 * ciphertext follows as it is, the same bytes on every channel: copied, or
 * by reference. */
static int split(struct bdr_channel *c, const uint8_t *head, size_t hlen,
		 const struct bdr_channel_tail *t, bool by_ref)
{
	size_t mlen = hlen + TRAILER_LEN, clen = mlen + SS(ABYTES);
	uint8_t *at, *tr;
	int err;

	if ((err = send_check(c, head, hlen)))
		return err;
	if (!(c->agreed_caps & BDR_CAP_SHARED_TAIL))
		return -ENOTSUP;
	if (t->len == 0)
		return -EINVAL;
	if (t->len > BDR_WIRE_MSG_MAX - hlen)
		return -BDR_ELIMIT;
	if (buf_reserve(&c->head, mlen))
		return no_memory(c, NULL);
	memcpy(c->head.p, head, hlen);
	tr = c->head.p + hlen;
	write_len(tr, t->len);
	memcpy(tr + LEN_FIELD, t->key, TAIL_KEY_LEN);
	memcpy(tr + LEN_FIELD + TAIL_KEY_LEN, t->hash, TAIL_HASH_LEN);
	/* Room for the reference first: once the frame is sealed, its tail
	 * must follow. */
	if (by_ref && refs_room(c))
		return no_memory(c, NULL);
	if (!(at = out_reserve(c, LEN_FIELD + clen + (by_ref ? 0 : t->len))))
		return no_memory(c, NULL);
	write_len(at, (uint32_t)clen);
	SS(push)(&c->push, at + LEN_FIELD, NULL, c->head.p, mlen, NULL, 0, TAG_TAIL);
	sodium_memzero(tr, TRAILER_LEN);
	if (by_ref)
		add_ref(c, t);
	else
		memcpy(at + LEN_FIELD + clen, t->ct, t->len);
	c->st.msgs_out++;
	return 0;
}

int bdr_channel_send_split(struct bdr_channel *c, const uint8_t *head, size_t hlen,
			   const struct bdr_channel_tail *t)
{
	return split(c, head, hlen, t, false);
}

int bdr_channel_send_split_ref(struct bdr_channel *c, const uint8_t *head, size_t hlen,
			       const struct bdr_channel_tail *t)
{
	return split(c, head, hlen, t, true);
}

bool bdr_channel_can_send(const struct bdr_channel *c)
{
	return c->auth_sent && !c->err;
}

/* The output with every referenced tail copied into place: a new buffer. */
static int flatten(struct bdr_channel *c)
{
	size_t total = c->out.len + c->ref_bytes, from = 0, to = 0;
	uint8_t *p = malloc(total);

	if (!p)
		return -ENOMEM;
	for (size_t i = 0; i < c->nrefs; i++) {
		const struct bdr_channel_ref *r = &c->refs[i];
		memcpy(p + to, c->out.p + from, r->at - from);
		to += r->at - from, from = r->at;
		memcpy(p + to, r->p, r->len);
		to += r->len;
	}
	memcpy(p + to, c->out.p + from, c->out.len - from);
	free(c->out.p);
	c->out = (struct buf){ p, total, total };
	c->nrefs = 0, c->ref_bytes = 0;
	return 0;
}

void bdr_channel_take_out(struct bdr_channel *c, uint8_t **buf, size_t *len)
{
	*buf = NULL;
	*len = 0;
	if (c->nrefs && flatten(c) < 0) {
		no_memory(c, NULL);
		return;
	}
	*len = c->out.len;
	if (!c->out.len)
		return;
	*buf = c->out.p;
	c->out = (struct buf){ 0 };
}

void bdr_channel_take_out_refs(struct bdr_channel *c, uint8_t **buf, size_t *len,
			       struct bdr_channel_ref **refs, size_t *nrefs)
{
	*refs = c->refs, *nrefs = c->nrefs;
	c->refs = NULL, c->nrefs = c->crefs = 0, c->ref_bytes = 0;
	*len = c->out.len;
	*buf = c->out.len ? c->out.p : NULL;
	if (c->out.len)
		c->out = (struct buf){ 0 };
}

size_t bdr_channel_out_len(const struct bdr_channel *c)
{
	return c->out.len + c->ref_bytes;
}

int bdr_channel_reserve_out(struct bdr_channel *c, size_t n)
{
	/* Whole MiBs: batches of slightly different sizes then fit the
	 * recycled buffer as it is, and realloc neither moves nor copies. */
	size_t want = c->out.len + n, mib = (size_t)1 << 20;

	adopt_spare(c);
	return buf_reserve(&c->out, want > mib ? (want + mib - 1) / mib * mib : want);
}

void bdr_channel_recycle_out(struct bdr_channel *c, uint8_t *buf, size_t cap)
{
	if (buf && cap > c->spare.cap) {
		free(c->spare.p);
		c->spare = (struct buf){ buf, 0, cap };
	} else {
		free(buf);
	}
}

bool bdr_channel_pin_failed(const struct bdr_channel *c)
{
	return c->pin_failed;
}

bool bdr_channel_ready(const struct bdr_channel *c)
{
	return c->ready && !c->err;
}

const char *bdr_channel_peer_site(const struct bdr_channel *c)
{
	return c->peer_site;
}

uint32_t bdr_channel_caps(const struct bdr_channel *c)
{
	return c->agreed_caps;
}

uint16_t bdr_channel_version(const struct bdr_channel *c)
{
	return c->version;
}

void bdr_channel_stats(const struct bdr_channel *c, struct bdr_channel_stats *st)
{
	*st = c->st;
}

bool bdr__channel_key_wiped(const struct bdr_channel *c)
{
	return sodium_is_zero((const unsigned char *)&c->key, sizeof(c->key));
}

bool bdr__channel_session_secrets_wiped(const struct bdr_channel *c)
{
	return sodium_is_zero(c->eph_sk, sizeof(c->eph_sk)) &&
	       sodium_is_zero(c->rx_key, sizeof(c->rx_key)) &&
	       sodium_is_zero(c->tx_key, sizeof(c->tx_key));
}
