/* The messages of the wire protocol (proto/wire.md, "Messages"), and every
 * limit of that document in one place. Pure: bytes in, typed messages out,
 * and back; no socket, no clock, no thread. The channel (channel.h) carries
 * the encoded messages inside encrypted frames.
 *
 * Decoding borrows: pointers in a decoded message (MANIFEST data, NEED refs,
 * CHUNK data) point into the buffer that was decoded and live as long as
 * it does. Names and texts are copied into fixed arrays and NUL-terminated,
 * so a handler can log or compare them directly. */
#ifndef BDR_WIRE_H
#define BDR_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bdr/chunker.h"
#include "bdr/codec.h"
#include "bdr/compress.h"
#include "bdr/hash.h"
#include "bdr/manifest.h"

struct bdr_diag;

#define BDR_PROTO_VERSION 1
#define BDR_WIRE_MAGIC "BDRW"

/* HELLO: bytes after its u32 length field. */
#define BDR_WIRE_HELLO_MIN 113u
#define BDR_WIRE_HELLO_MAX 512u
#define BDR_WIRE_NONCE_LEN 32u
#define BDR_WIRE_TEXT_MAX 1024u
/* One message (plaintext). */
#define BDR_WIRE_MSG_MAX ((1u << 20) + 8192u)
/* secretstream's per-frame overhead (crypto_secretstream_xchacha20poly1305_ABYTES). */
#define BDR_WIRE_FRAME_OVERHEAD 17u
#define BDR_WIRE_FRAME_MAX (BDR_WIRE_MSG_MAX + BDR_WIRE_FRAME_OVERHEAD)
#define BDR_WIRE_MANIFEST_PIECE (256u * 1024)
#define BDR_WIRE_NEED_MAX 8192u
#define BDR_WIRE_REF_LEN 20u /* chunk id + u32 length */

/* Capabilities (HELLO caps; the agreed set is the AND of both). */
#define BDR_CAP_ZLIB (1u << 0)
#define BDR_CAP_ZLIB_DICT (1u << 1)
#define BDR_CAP_RESUME (1u << 2)
#define BDR_CAP_MANIFEST_DELTA (1u << 3) /* OFFER may carry BDR_OFFER_DELTA */
#define BDR_CAP_REPORT (1u << 4) /* REPORT up and REMOVE down the hierarchy */
#define BDR_CAP_SHARED_TAIL (1u << 5) /* frames may carry a tail sealed once for many peers */
#define BDR_CAP_ZSTD (1u << 6) /* chunk codecs 3 (zstd) and 4 (zstd with a dictionary) */
/* Every capability this code knows; a daemon offers what it implements. */
#define BDR_CAPS_ALL                                                                      \
	(BDR_CAP_ZLIB | BDR_CAP_ZLIB_DICT | BDR_CAP_RESUME | BDR_CAP_MANIFEST_DELTA |      \
	 BDR_CAP_REPORT | BDR_CAP_SHARED_TAIL | BDR_CAP_ZSTD)
/* A shared tail's trailer at the end of its frame's plaintext: u32 length,
 * key, BLAKE2b-256 of the tail (proto/wire.md, "Shared tails"). */
#define BDR_WIRE_TAIL_KEY_LEN 32u
#define BDR_WIRE_TAIL_HASH_LEN 32u
#define BDR_WIRE_TRAILER_LEN (4u + BDR_WIRE_TAIL_KEY_LEN + BDR_WIRE_TAIL_HASH_LEN)

enum bdr_msg_type {
	BDR_MSG_AUTH = 1,
	BDR_MSG_OFFER = 2,
	BDR_MSG_MANIFEST = 3,
	BDR_MSG_NEED = 4,
	BDR_MSG_CHUNK = 5,
	BDR_MSG_DONE = 6,
	BDR_MSG_CANCEL = 7,
	BDR_MSG_ERROR = 8,
	BDR_MSG_PING = 9,
	BDR_MSG_PONG = 10,
	BDR_MSG_REPORT = 11,
	BDR_MSG_REMOVE = 12,
};

/* REPORT states: where a package stands at a site of the hierarchy. */
enum bdr_report_state {
	BDR_REPORT_QUEUED = 0,    /* a transfer to the site waits */
	BDR_REPORT_MOVING = 1,    /* a transfer to the site runs */
	BDR_REPORT_PAUSED = 2,    /* its window closed */
	BDR_REPORT_ACTIVATED = 3, /* the site holds the version */
	BDR_REPORT_FAILED = 4,    /* the last transfer to it failed */
};

/* OFFER flags. */
#define BDR_OFFER_DELTA 1u /* the MANIFEST pieces are a delta against version base (mdelta.h) */

/* NEED flags. */
#define BDR_NEED_LAST 1u
#define BDR_NEED_FORCE 2u
#define BDR_NEED_PLAIN 4u

/* DONE status. */
enum bdr_done_status {
	BDR_DONE_ACTIVATED = 0,
	BDR_DONE_HELD = 1,
	BDR_DONE_FAILED = 2,
};

/* CHUNK dictionary reference kinds. */
enum bdr_dictref_kind {
	BDR_DICTREF_CHUNK = 1,
	BDR_DICTREF_FILE = 2,
};

struct bdr_dictref {
	uint8_t kind;
	struct bdr_chunk_id id;                   /* kind 1 */
	char package[BDR_MAX_PACKAGE_NAME + 1];   /* kind 2 ... */
	uint64_t version;
	char path[BDR_MAX_PATH + 1];
	uint64_t offset;
	uint32_t len;                             /* ... kind 2 */
};

struct bdr_msg {
	uint8_t type; /* enum bdr_msg_type */
	union {
		struct {
			uint8_t sig[BDR_SIG_LEN];
		} auth;
		struct {
			uint64_t xfer;
			char package[BDR_MAX_PACKAGE_NAME + 1];
			uint64_t version;
			uint64_t manifest_len; /* with BDR_OFFER_DELTA: the delta's length */
			uint32_t flags;
			uint64_t base; /* BDR_OFFER_DELTA only, else 0 */
		} offer;
		struct {
			uint64_t xfer;
			uint64_t offset;
			uint32_t len;
			const uint8_t *data; /* borrowed */
		} manifest;
		struct {
			uint64_t xfer;
			uint32_t flags;
			uint32_t count;
			const uint8_t *refs; /* borrowed: count x BDR_WIRE_REF_LEN bytes;
					      * read with bdr_wire_need_ref() */
		} need;
		struct {
			uint64_t xfer;
			struct bdr_chunk_id id;
			uint32_t raw_len;
			uint8_t codec; /* enum bdr_codec */
			struct bdr_dictref dict; /* codecs ZLIB_DICT and ZSTD_DICT only */
			uint32_t len;
			const uint8_t *data; /* borrowed */
		} chunk;
		struct {
			uint64_t xfer;
			uint8_t status; /* enum bdr_done_status */
			int32_t error;
			char message[BDR_WIRE_TEXT_MAX + 1];
		} done;
		struct {
			uint64_t xfer;
			char reason[BDR_WIRE_TEXT_MAX + 1];
		} cancel;
		struct {
			int32_t code;
			char message[BDR_WIRE_TEXT_MAX + 1];
		} error;
		struct {
			uint64_t cookie;
		} ping; /* PING and PONG */
		struct {
			char site[BDR_MAX_SITE_NAME + 1];
			char package[BDR_MAX_PACKAGE_NAME + 1];
			uint64_t version;
			uint8_t state; /* enum bdr_report_state */
			uint64_t bytes_done, bytes_total, bytes_saved;
			int64_t updated_ns;
			char error[BDR_WIRE_TEXT_MAX + 1];
		} report;
		struct {
			char package[BDR_MAX_PACKAGE_NAME + 1];
		} remove;
	};
};

/* "AUTH", "OFFER", ...; "unknown" for anything else. */
const char *bdr_wire_type_name(uint8_t type);

/* Decodes one message (the whole plaintext of a frame). Every rule of
 * proto/wire.md is checked; a failure is -BDR_EFORMAT or -BDR_ELIMIT with a
 * diag naming the message and field ("CHUNK: codec 7 unknown"). */
int bdr_wire_decode(const uint8_t *buf, size_t len, struct bdr_msg *m, struct bdr_diag *d);

/* Appends m's encoding to w. The encoder applies the decoder's rules, so it
 * never produces what a peer would reject: -BDR_EFORMAT / -BDR_ELIMIT with a
 * diag, and w is left as it was. */
int bdr_wire_encode(const struct bdr_msg *m, struct bdr_wbuf *w, struct bdr_diag *d);
/* A CHUNK's encoding without its data (which comes last): what goes before
 * a shared tail. Checked as bdr_wire_encode; -EINVAL for any other type. */
int bdr_wire_encode_chunk_head(const struct bdr_msg *m, struct bdr_wbuf *w, struct bdr_diag *d);

/* The i-th ref of a decoded NEED (i < count). */
void bdr_wire_need_ref(const struct bdr_msg *m, uint32_t i, struct bdr_chunk_ref *ref);
/* Writes refs[0..n) in the NEED layout into out (n x BDR_WIRE_REF_LEN bytes),
 * for a NEED message to point at. */
void bdr_wire_need_pack(const struct bdr_chunk_ref *refs, uint32_t n, uint8_t *out);

/* Whether codec may be used under the agreed capabilities. */
bool bdr_wire_codec_allowed(uint8_t codec, uint32_t caps);

/* Copies s into a text16 field (dst of BDR_WIRE_TEXT_MAX + 1 bytes),
 * replacing control bytes with '?' and cutting at the limit, so any error
 * string can be sent. */
void bdr_wire_text(char *dst, const char *s);

#endif
