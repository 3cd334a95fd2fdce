/* One authenticated, encrypted connection between two sites, as bytes in
 * and bytes out (proto/wire.md, "Handshake" and "Framing"): the HELLO
 * exchange, the ephemeral key exchange, the signed transcript (AUTH), then
 * secretstream frames that each carry one message.
 *
 * Pure: it never touches a socket. The daemon writes what the channel puts
 * in its output (bdr_channel_take_out) and feeds what it reads
 * (bdr_channel_feed); decrypted messages come out of bdr_channel_recv.
 *
 * Memory is bounded whatever the peer sends: a frame length over
 * BDR_WIRE_FRAME_MAX fails as soon as its 4 bytes arrive, and the channel
 * buffers at most one frame of input and one message of plaintext.
 *
 * Errors are final: after any negative return every call fails with the
 * same error, and the daemon closes the connection (after sending what is
 * in the output, which may hold a HELLO for the peer to report from). */
#ifndef BDR_CHANNEL_H
#define BDR_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bdr/key.h"
#include "bdr/manifest.h"
#include "bdr/wire.h"

struct bdr_channel;
struct bdr_diag;

/* The pinned key of site: 0 and pk, or -BDR_EKEY if the site is unknown
 * (or is our own name). Called once, while the peer's HELLO is checked. */
typedef int bdr_channel_peer_key_fn(void *arg, const char *site, uint8_t pk[BDR_PK_LEN]);

struct bdr_channel_opts {
	bool initiator;             /* we connected */
	const char *site;           /* our site name */
	const struct bdr_key *key;  /* our long-term key: copied, wiped once AUTH is signed */
	uint32_t caps;              /* capabilities offered */
	uint16_t ver_min, ver_max;  /* 0: BDR_PROTO_VERSION */
	bdr_channel_peer_key_fn *peer_key;
	void *peer_key_arg;
};

/* -ENOMEM or -EINVAL (bad site name, ver_min > ver_max). The initiator's
 * HELLO is in the output at once. */
int bdr_channel_new(struct bdr_channel **out, const struct bdr_channel_opts *o);
void bdr_channel_free(struct bdr_channel *c);

/* Consumes up to n bytes of input; *used says how many. It stops early once
 * a message is ready (call bdr_channel_recv until it returns 0, then feed
 * the rest), so at most one message waits inside. Returns 0 or the
 * connection's error with a diag ("frame failed authentication (tampered,
 * replayed or reordered)", "unknown site 'x'", ...). */
int bdr_channel_feed(struct bdr_channel *c, const uint8_t *p, size_t n, size_t *used,
		     struct bdr_diag *d);

/* 1 and the next message's plaintext (*msg, *len: valid until the next
 * feed or recv), 0 if none is ready, or the error. The AUTH frame is
 * handled inside and never returned. */
int bdr_channel_recv(struct bdr_channel *c, const uint8_t **msg, size_t *len);

/* Encrypts one message (1..BDR_WIRE_MSG_MAX bytes) into the output. Allowed
 * once our own AUTH is queued (bdr_channel_can_send): the initiator may send
 * in the same flight as its AUTH. -EAGAIN before, -BDR_ELIMIT if too long. */
int bdr_channel_send(struct bdr_channel *c, const uint8_t *msg, size_t len);
bool bdr_channel_can_send(const struct bdr_channel *c);

/* A message's tail encrypted once and sent on any number of channels
 * (proto/wire.md, "Shared tails"): a fan-out seals each chunk once, not once
 * per destination. The key is fresh for every tail and travels only inside
 * the sealed head of the frames that carry it, so only the peers sent this
 * tail can read it; the hash binds the tail to each of those frames. */
struct bdr_channel_tail {
	uint8_t key[BDR_WIRE_TAIL_KEY_LEN];
	uint8_t hash[BDR_WIRE_TAIL_HASH_LEN];
	const uint8_t *ct; /* borrowed: len bytes of ciphertext */
	uint32_t len;
};
/* Encrypts p[0..len) in place under a fresh key and describes it in t
 * (t->ct = p). */
void bdr_channel_tail_seal(struct bdr_channel_tail *t, uint8_t *p, uint32_t len);
/* Decrypts t's ciphertext into out (t->len bytes; may be t->ct). */
void bdr_channel_tail_open(const struct bdr_channel_tail *t, uint8_t *out);
/* Sends the message head || plaintext of t as one frame with a shared tail:
 * the peer receives exactly that message. -ENOTSUP unless both sides offered
 * BDR_CAP_SHARED_TAIL; otherwise as bdr_channel_send. */
int bdr_channel_send_split(struct bdr_channel *c, const uint8_t *head, size_t hlen,
			   const struct bdr_channel_tail *t);
/* As bdr_channel_send_split, but the tail's bytes are not copied: the
 * output refers to them, and they must stay valid and unchanged until that
 * output has been taken and written (bdr_channel_take_out copies them in;
 * bdr_channel_take_out_refs hands the references over). */
int bdr_channel_send_split_ref(struct bdr_channel *c, const uint8_t *head, size_t hlen,
			       const struct bdr_channel_tail *t);

/* Hands the pending output to the caller (*buf malloc'd, caller frees; NULL
 * and 0 when there is none) and starts a new one. */
void bdr_channel_take_out(struct bdr_channel *c, uint8_t **buf, size_t *len);
/* The output with the tails it refers to in place: the bytes of buf, with
 * refs[i] (ordered by at) inserted before buf[at]. *buf as take_out's;
 * *refs malloc'd (NULL when none), caller frees. */
struct bdr_channel_ref {
	size_t at;
	const uint8_t *p;
	uint32_t len;
};
void bdr_channel_take_out_refs(struct bdr_channel *c, uint8_t **buf, size_t *len,
			       struct bdr_channel_ref **refs, size_t *nrefs);
/* Bytes of pending output, referenced tails included. */
size_t bdr_channel_out_len(const struct bdr_channel *c);
/* Room for n more bytes of output, so what is sealed next (a batch of
 * frames, n counting their overhead) lands without the output growing by
 * doubling: no copies, and no buffer twice the size. */
int bdr_channel_reserve_out(struct bdr_channel *c, size_t n);
/* Gives back a buffer of at least cap bytes that take_out handed over and
 * that has been written: the next output starts in it rather than in fresh
 * memory (a sender's batches come and go; each new one would page-fault
 * its way in). One is kept, the larger; the rest and NULL are freed. */
void bdr_channel_recycle_out(struct bdr_channel *c, uint8_t *buf, size_t cap);

/* The peer proved its identity: its AUTH verified. */
bool bdr_channel_ready(const struct bdr_channel *c);
/* The connection failed on a pin, which no retry mends until an operator
 * changes a configuration: the peer presented a key other than the one
 * pinned for its site, or (initiator) the responder, authenticated by its
 * pinned key, refused ours (proto/wire.md, "Refusal"). Either way the
 * error is -BDR_EKEY and its diag names the key. */
bool bdr_channel_pin_failed(const struct bdr_channel *c);
/* After the peer's HELLO was accepted: its site name ("" before), the agreed
 * capabilities and version. */
const char *bdr_channel_peer_site(const struct bdr_channel *c);
uint32_t bdr_channel_caps(const struct bdr_channel *c);
uint16_t bdr_channel_version(const struct bdr_channel *c);

/* Messages sent and received (AUTH not counted), and raw bytes
 * on the wire in each direction (HELLO, headers and frames). */
struct bdr_channel_stats {
	uint64_t msgs_out, msgs_in;
	uint64_t wire_out, wire_in;
};
void bdr_channel_stats(const struct bdr_channel *c, struct bdr_channel_stats *st);

#endif
