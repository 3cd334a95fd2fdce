/* The receiving half of a push (proto/wire.md, "Transfer"): collect the
 * manifest, plan the rebuild on a worker (the origin rule of trust.h: the
 * manifest must be signed by its package's origin, and the peer allowed
 * to send it; then the signature), ask for what is missing, store each received
 * chunk on a worker (decompressed and checked against its id), then
 * assemble, verify and activate on a worker, and answer DONE.
 *
 * Memory: the manifest grows only as its pieces arrive (never by the size
 * an OFFER announces); received chunks wait in batches, and reading from
 * the connection stops while more than QUEUE_HIGH bytes of them wait.
 *
 * A chunk of codec 2 names its dictionary as bytes of a file of a version
 * we hold (dictref kind 2). The store job reads them from the library: the
 * named version's manifest (cached per transfer) must list the path as a
 * file that holds the range. A dictionary it cannot resolve (pruned
 * version, unknown path, range past the file, another package, or kind 1)
 * drops the chunk, which is asked for again with BDR_NEED_FORCE |
 * BDR_NEED_PLAIN once the job is done. Those reads take no lib_lock: they
 * use only the library's directory name, the trees never change, and a
 * version pruned meanwhile reads as missing.
 *
 * Budget: what a transfer holds is taken from its peer's memory budget
 * (guard.h) before it is allocated: at OFFER, the manifest's buffer and
 * the most its plan can hold (bdr_rebuild_footprint_max; for a delta,
 * whatever budget is left, which then bounds the manifest the delta may
 * make); once planned, what the plan really holds; each batch of chunks
 * as it grows. Past the budget the transfer is refused (DONE, -ENOBUFS),
 * not the connection. All is given back when the transfer is freed.
 *
 * Ownership: the connection's list holds each transfer until it ends or
 * the connection goes; a running job holds a ref too; the last one frees. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bdr/compress.h"
#include "bdr/error.h"
#include "bdr/library.h"
#include "bdr/mdelta.h"
#include "bdr/rebuild.h"
#include "daemon/daemon.h"
#include "daemon/trust.h"

#define BATCH_BYTES (1u << 20)    /* compressed bytes per store job */
#define QUEUE_HIGH (8u << 20)     /* stop reading above this many waiting */
#define QUEUE_LOW (2u << 20)      /* and read again below this */
#define MAX_RX_PER_CONN 4
#define MAX_ROUNDS 3              /* refetch rounds after a failed verification */
#define DB_EVERY_NS (2 * 1000000000ll)

enum rx_state { RX_MANIFEST, RX_PLANNING, RX_RECEIVING, RX_FINISHING, RX_ENDED };

struct in_chunk {
	struct bdr_chunk_id id;
	uint32_t raw_len;
	uint8_t codec;
	uint32_t len;
	size_t off;
	/* codec 2: dlen bytes at doff of the file of version dversion whose
	 * path (dpath_len bytes) follows the data in the batch */
	bool dforeign; /* a dictref this receiver does not resolve */
	uint16_t dpath_len;
	uint32_t dlen;
	uint64_t dversion, doff;
};

struct rbatch {
	struct rbatch *next;
	uint32_t n, cap;
	struct in_chunk *v; /* owned */
	uint8_t *data;      /* owned */
	size_t used, dcap;
};

struct recv_xfer {
	struct bdrd *d;
	struct conn *c;             /* NULL once detached */
	struct recv_xfer *next;     /* in the connection's list */
	int refs;
	uint64_t xfer;
	char package[BDR_MAX_PACKAGE_NAME + 1];
	uint64_t version;
	char peer[BDR_MAX_SITE_NAME + 1];
	/* What the sender may send, decided at OFFER from the configuration:
	 * workers never read it, as a reload replaces it on the loop thread. */
	struct bdr_trust trust;
	bool refused;               /* the origin rule refused the version */
	uint8_t signer[BDR_PK_LEN]; /* the manifest's, once planned */
	char site[BDR_MAX_SITE_NAME + 1]; /* the site its manifest names */
	struct bdr_log_ctx ctx;
	enum rx_state state;
	uint8_t *mbuf;              /* owned */
	uint64_t mlen, mgot, mcap;
	uint64_t base;              /* the pieces are a delta against it (0: none) */
	uint64_t max_manifest;      /* max_manifest_bytes, copied at OFFER */
	struct bdr_rebuild *rb;     /* owned; touched only by jobs */
	struct bdr_chunk_ref *missing; /* owned: from the last plan */
	uint32_t nmissing;
	uint32_t outstanding;       /* chunks asked for, not yet arrived */
	uint32_t rounds;
	bool held;                  /* plan found the version held already */
	struct rbatch *fill;        /* collecting arrivals */
	struct rbatch *qhead, *qtail; /* waiting for a store job */
	size_t queued_bytes;
	struct rbatch *work;        /* the batch the running job stores */
	struct bdr_decompressor *z; /* owned; made by the first store job, one
				     * job at a time uses it (its zstd context
				     * is kept for the transfer) */
	bool job_running;
	struct bdrd_job job;
	struct bdr_diag dg;
	uint64_t bytes_in;          /* chunk bytes received on the wire */
	/* Codec 2 (store jobs only): the held version dictionaries come from */
	struct bdr_manifest dm;     /* owned; of version dm_version */
	uint64_t dm_version;        /* 0: none loaded */
	uint64_t dm_missing;        /* a version found missing */
	struct bdr_chunk_ref *replain; /* owned: dropped, to ask for plain */
	uint32_t nreplain, replain_cap;
	uint64_t asked, dropped;    /* chunks asked for (not again), dropped */
	int64_t db_written_ns;
	uint64_t charged;           /* bytes of the peer's budget taken */
	bool budget_bound;          /* a delta: max_manifest is what the budget left */
};

/* Takes n more bytes of the peer's budget for what: 0, or -ENOBUFS with
 * why, for the peer and the log (finish writes both). */
static int take(struct recv_xfer *rx, uint64_t n, const char *what, char *why, size_t whylen)
{
	int r = bdrd_budget_take(rx->d, rx->peer, n, what, why, whylen);

	if (r == 0)
		rx->charged += n;
	return r;
}

static uint64_t batch_bytes(const struct rbatch *b)
{
	return sizeof(*b) + (uint64_t)b->cap * sizeof(*b->v) + b->dcap;
}

static void batch_free(struct recv_xfer *rx, struct rbatch *b)
{
	if (!b)
		return;
	bdrd_budget_give(rx->d, rx->peer, batch_bytes(b));
	rx->charged -= batch_bytes(b) < rx->charged ? batch_bytes(b) : rx->charged;
	free(b->v);
	free(b->data);
	free(b);
}

static void unref(struct recv_xfer *rx)
{
	if (--rx->refs > 0)
		return;
	bdr_rebuild_free(rx->rb);
	bdr_decompressor_free(rx->z);
	while (rx->qhead) {
		struct rbatch *b = rx->qhead;
		rx->qhead = b->next;
		batch_free(rx, b);
	}
	batch_free(rx, rx->fill);
	batch_free(rx, rx->work);
	bdrd_budget_give(rx->d, rx->peer, rx->charged);
	free(rx->missing);
	free(rx->replain);
	bdr_manifest_free(&rx->dm);
	free(rx->mbuf);
	free(rx);
}

static void unlink_rx(struct recv_xfer *rx)
{
	struct recv_xfer **pp;

	if (!rx->c)
		return;
	for (pp = conn_receivers(rx->c); *pp; pp = &(*pp)->next)
		if (*pp == rx) {
			*pp = rx->next;
			break;
		}
	rx->c = NULL;
}

static void record(struct recv_xfer *rx, enum bdr_db_recv_state st, const char *error)
{
	int r = bdr_db_received_set(rx->d->db, rx->package, rx->version, rx->peer, st, rx->bytes_in,
				    error, bdrd_now_ns());

	rx->db_written_ns = bdrd_now_ns();
	if (r < 0)
		bdr_log_err(BDR_LOG_WARN, &rx->ctx, r, "receive", "cannot record state: %s",
			    bdr_db_errmsg(rx->d->db));
}

static void send_done(struct recv_xfer *rx, struct conn *c, uint8_t status, int err, const char *msg)
{
	struct bdr_msg m = { .type = BDR_MSG_DONE };

	m.done.xfer = rx->xfer;
	m.done.status = status;
	m.done.error = status == BDR_DONE_FAILED ? (err < 0 ? err : -EIO) : 0;
	bdr_wire_text(m.done.message, msg ? msg : "");
	conn_send(c, &m);
}

/* The transfer ends here (whatever jobs still hold it free it later). */
static void finish(struct recv_xfer *rx, uint8_t status, int err, const char *msg)
{
	struct conn *c = rx->c;

	if (status == BDR_DONE_FAILED) {
		if (rx->refused)
			bdr_log(BDR_LOG_WARN, &rx->ctx, "refused", "%s", msg);
		else /* a budget refusal is the peer's excess, not our failure */
			bdr_log(err == -ENOBUFS ? BDR_LOG_WARN : BDR_LOG_ERROR, &rx->ctx, "failed",
				"%s", msg);
		/* Out of space: what was received would keep the disk full (and
		 * the row below unwritten); it goes first. */
		if (err == -ENOSPC || err == -EDQUOT)
			bdrd_partial_drop(rx->d, rx->package, rx->version, "the disk is full");
		record(rx, BDR_RECV_FAILED, msg);
	} else if (status == BDR_DONE_ACTIVATED) {
		record(rx, BDR_RECV_ACTIVATED, NULL);
	}
	/* Off the connection before sending: a failed send closes it, and
	 * receiver_detach_all must not end (and unref) rx a second time. */
	rx->state = RX_ENDED;
	unlink_rx(rx);
	if (c) {
		send_done(rx, c, status, err, msg);
		conn_pause_read(c, false);
	}
	unref(rx);
}

/* ---- planning (worker, under lib_lock) ---- */

/* The pieces were a delta: rebuild the signed manifest from the base we
 * hold. A base we do not hold is -BDR_ENOTFOUND, which the sender answers
 * by offering the manifest in full. */
static int apply_delta(struct recv_xfer *rx)
{
	uint8_t *bbuf = NULL, *out = NULL;
	size_t blen = 0, olen = 0;
	int r = bdr_library_manifest_read(rx->d->lib, rx->package, rx->base, &bbuf, &blen);

	if (r < 0)
		return bdr_diag_set(&rx->dg, -BDR_ENOTFOUND, "manifest delta against version %" PRIu64
				    ", which this site does not hold", rx->base);
	r = bdr_mdelta_apply(bbuf, blen, rx->mbuf, rx->mlen, rx->max_manifest, &out, &olen, &rx->dg);
	free(bbuf);
	if (r < 0)
		return r;
	free(rx->mbuf);
	rx->mbuf = out;
	rx->mlen = olen;
	return 0;
}

/* The origin rule (trust.h) on the manifest's header, read before its
 * signature is verified: the claims can only refuse, and rebuild_begin
 * then verifies the signature of the very key checked here. Also runs
 * again just before activation, under the same lock: another transfer
 * may have fixed the package's origin since. */
static int check_origin(struct recv_xfer *rx)
{
	struct bdr_db_origin o;
	char why[BDR_WIRE_TEXT_MAX];
	int r = bdr_db_origin_get(bdr_library_db(rx->d->lib), rx->package, &o);

	if (r < 0 && r != -BDR_ENOTFOUND)
		return bdr_diag_set(&rx->dg, r, "reading the package's origin: %s",
				    bdr_db_errmsg(bdr_library_db(rx->d->lib)));
	r = bdr_trust_version(&rx->trust, r == 0 ? &o : NULL, rx->package, rx->version, rx->site,
			      rx->signer, why, sizeof(why));
	if (r < 0) {
		rx->refused = true;
		return bdr_diag_set(&rx->dg, r, "%s", why);
	}
	return 0;
}

/* The OFFER named what is recorded and logged: it must be what the
 * manifest says; then whose it is. */
static int check_header(struct recv_xfer *rx)
{
	struct bdr_manifest h;
	int r = bdr_manifest_peek(rx->mbuf, rx->mlen, &h, &rx->dg);

	if (r < 0)
		return r;
	if (strcmp(h.package, rx->package) || h.version != rx->version)
		r = bdr_diag_set(&rx->dg, -BDR_EFORMAT, "the manifest is package '%s' version %" PRIu64
				 ", not what was offered", h.package, h.version);
	memcpy(rx->signer, h.signer, BDR_PK_LEN);
	snprintf(rx->site, sizeof(rx->site), "%s", h.site);
	bdr_manifest_free(&h);
	return r < 0 ? r : check_origin(rx);
}

/* rebuild_begin found the version held, or passed: "held" is an answer
 * only when this site holds this very version, the same signed manifest
 * byte for byte (the encoding is canonical); anything else is a failure
 * that says what the site holds instead, never a success. */
static int check_held(struct recv_xfer *rx)
{
	uint8_t *have = NULL;
	size_t hlen = 0;
	uint64_t latest = 0;
	int r = bdr_library_manifest_read(rx->d->lib, rx->package, rx->version, &have, &hlen);
	bool same = r == 0 && hlen == rx->mlen && !memcmp(have, rx->mbuf, hlen);

	free(have);
	if (same) {
		rx->held = true;
		return 0;
	}
	if (r == 0)
		return bdr_diag_set(&rx->dg, -EEXIST, "this site holds another version %" PRIu64
				    " of %s (a different manifest)", rx->version, rx->package);
	bdr_library_latest(rx->d->lib, rx->package, &latest);
	return bdr_diag_set(&rx->dg, -EEXIST, "this site is at version %" PRIu64 " of %s, past %"
			    PRIu64 ", which it does not hold", latest, rx->package, rx->version);
}

/* The budget bounded what the delta could make: a passing refusal. */
static int delta_over_budget(struct recv_xfer *rx, int r)
{
	if (r != -BDR_ELIMIT || !rx->budget_bound)
		return r;
	return bdr_diag_set(&rx->dg, -ENOBUFS, "site '%s' is at its memory budget here: the "
			    "manifest this delta makes would pass the %" PRIu64 " bytes its budget "
			    "has left (peer_memory)", rx->peer, rx->max_manifest);
}

static int plan_run(struct bdrd_job *job)
{
	struct recv_xfer *rx = container_of(job, struct recv_xfer, job);
	int r = rx->base ? delta_over_budget(rx, apply_delta(rx)) : 0;

	if (r == 0)
		r = check_header(rx);
	if (r == 0)
		r = bdr_rebuild_begin(rx->d->lib, rx->mbuf, rx->mlen, NULL, &rx->rb, &rx->dg);
	if (r == -EEXIST)
		return check_held(rx);
	if (r == 0)
		r = bdr_rebuild_missing(rx->rb, &rx->missing, &rx->nmissing, NULL);
	return r;
}

static void ask_refs(struct recv_xfer *rx, const struct bdr_chunk_ref *want, uint32_t nwant,
		     uint32_t flags)
{
	for (uint32_t i = 0; rx->c && (i < nwant || i == 0); i += BDR_WIRE_NEED_MAX) {
		struct bdr_msg m = { .type = BDR_MSG_NEED };
		uint32_t n = nwant - i;
		uint8_t *refs;

		if (n > BDR_WIRE_NEED_MAX)
			n = BDR_WIRE_NEED_MAX;
		if (!(refs = malloc((size_t)n * BDR_WIRE_REF_LEN + 1))) {
			conn_close(rx->c, -ENOMEM, "out of memory");
			return;
		}
		bdr_wire_need_pack(want + i, n, refs);
		m.need.xfer = rx->xfer;
		m.need.flags = flags | (i + n >= nwant ? BDR_NEED_LAST : 0);
		m.need.count = n;
		m.need.refs = refs;
		conn_send(rx->c, &m);
		free(refs);
	}
	rx->outstanding += nwant;
}

static void ask(struct recv_xfer *rx, uint32_t flags)
{
	ask_refs(rx, rx->missing, rx->nmissing, flags);
	rx->asked += rx->nmissing;
	free(rx->missing);
	rx->missing = NULL;
	rx->nmissing = 0;
}

static void start_finish(struct recv_xfer *rx);

static void plan_done(struct bdrd_job *job, int rc)
{
	struct recv_xfer *rx = container_of(job, struct recv_xfer, job);

	rx->job_running = false;
	if (rx->state == RX_ENDED || !rx->c) {
		unref(rx);
		return;
	}
	free(rx->mbuf);
	rx->mbuf = NULL;
	if (rc == 0 && !rx->held) {
		/* What was taken before the plan, for what the plan holds. */
		bdrd_budget_give(rx->d, rx->peer, rx->charged);
		rx->charged = 0;
		rc = take(rx, bdr_rebuild_footprint(rx->rb) + (uint64_t)rx->nmissing * sizeof(*rx->missing),
			  "a planned transfer", rx->dg.msg, sizeof(rx->dg.msg));
	}
	if (rc < 0) {
		finish(rx, BDR_DONE_FAILED, rc, rx->dg.msg);
	} else if (rx->held) {
		log_info(&rx->ctx, "held", "already held: the same signed manifest");
		(void)bdrd_status_reconcile(rx->d, rx->package, false);
		finish(rx, BDR_DONE_HELD, 0, "already held");
	} else {
		uint64_t bytes = 0;

		for (uint32_t i = 0; i < rx->nmissing; i++)
			bytes += rx->missing[i].len;
		log_info(&rx->ctx, "receiving", "%" PRIu32 " chunks to fetch, %" PRIu64 " bytes",
			 rx->nmissing, bytes);
		rx->state = RX_RECEIVING;
		record(rx, BDR_RECV_RECEIVING, NULL);
		if (rx->nmissing)
			ask(rx, 0);
		else
			start_finish(rx);
	}
	unref(rx);
}

/* ---- storing chunks (worker, no lock: the rebuild is this job's alone) ---- */

_Static_assert(BDR_MAX_PATH <= UINT16_MAX, "a dictref path length fits in_chunk.dpath_len");

/* The held file a dictionary is read from, kept open across the chunks
 * of one store job that name it. */
struct dict_file {
	const struct bdr_entry *e; /* in rx->dm */
	int fd;                    /* owned */
};

/* The manifest of the version a dictref names, from the library. */
static const struct bdr_manifest *dict_manifest(struct recv_xfer *rx, uint64_t version,
					       struct dict_file *f)
{
	struct bdr_diag dg;

	if (rx->dm_version == version)
		return &rx->dm;
	if (rx->dm_missing == version)
		return NULL;
	if (f->fd >= 0)
		close(f->fd);
	*f = (struct dict_file){ .fd = -1 };
	bdr_manifest_free(&rx->dm);
	rx->dm_version = 0;
	if (bdr_library_manifest_load(rx->d->lib, rx->package, version, &rx->dm, &dg) < 0) {
		rx->dm_missing = version;
		return NULL;
	}
	rx->dm_version = version;
	return &rx->dm;
}

/* Reads the chunk's dictionary into buf: 0, or -BDR_ENOTFOUND when this
 * site cannot resolve it (every field is the peer's, checked here). */
static int dict_resolve(struct recv_xfer *rx, const struct rbatch *b, const struct in_chunk *ch,
			struct dict_file *f, uint8_t *buf)
{
	char path[BDR_MAX_PATH + 1], full[PATH_MAX];
	const struct bdr_manifest *dm;
	const struct bdr_entry *e;

	if (ch->dforeign || !(dm = dict_manifest(rx, ch->dversion, f)))
		return -BDR_ENOTFOUND;
	memcpy(path, b->data + ch->off + ch->len, ch->dpath_len);
	path[ch->dpath_len] = 0;
	e = bdr_manifest_find(dm, path);
	if (!e || e->type != BDR_ENTRY_FILE || ch->doff > e->size || ch->dlen > e->size - ch->doff)
		return -BDR_ENOTFOUND;
	if (f->e != e) {
		if (f->fd >= 0)
			close(f->fd);
		*f = (struct dict_file){ .fd = -1 };
		if (bdr_library_tree_path(rx->d->lib, rx->package, ch->dversion, full, sizeof(full)) < 0 ||
		    strlen(full) + 1 + strlen(path) >= sizeof(full))
			return -BDR_ENOTFOUND;
		strcat(strcat(full, "/"), path);
		if ((f->fd = open(full, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
			return -BDR_ENOTFOUND;
		f->e = e;
	}
	if (pread(f->fd, buf, ch->dlen, (off_t)ch->doff) != (ssize_t)ch->dlen)
		return -BDR_ENOTFOUND;
	return 0;
}

/* A chunk whose dictionary could not be resolved: asked for again. */
static int drop_chunk(struct recv_xfer *rx, const struct in_chunk *ch)
{
	if (rx->nreplain == rx->replain_cap) {
		uint32_t cap = rx->replain_cap ? rx->replain_cap * 2 : 64;
		struct bdr_chunk_ref *v = realloc(rx->replain, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		rx->replain = v, rx->replain_cap = cap;
	}
	rx->replain[rx->nreplain++] = (struct bdr_chunk_ref){ ch->id, ch->raw_len };
	return 0;
}

static int store_run(struct bdrd_job *job)
{
	struct recv_xfer *rx = container_of(job, struct recv_xfer, job);
	struct rbatch *b = rx->work;
	struct dict_file f = { .fd = -1 };
	uint8_t *raw = malloc(BDR_CHUNK_MAX_LIMIT), *dict = malloc(BDR_CODEC_DICT_MAX);
	int r = !raw || !dict ? -ENOMEM : rx->z ? 0 : bdr_decompressor_new(&rx->z);

	for (uint32_t i = 0; r == 0 && i < b->n; i++) {
		const struct in_chunk *ch = &b->v[i];
		bool dct = bdr_codec_has_dict(ch->codec);

		if (dct && dict_resolve(rx, b, ch, &f, dict) < 0) {
			r = drop_chunk(rx, ch);
			continue;
		}
		r = bdr_decompress_chunk(rx->z, ch->codec, b->data + ch->off, ch->len, dct ? dict : NULL,
					 dct ? ch->dlen : 0, raw, ch->raw_len, &rx->dg);
		if (r == 0)
			r = bdr_rebuild_add_chunk(rx->rb, &ch->id, raw, ch->raw_len, &rx->dg);
	}
	if (f.fd >= 0)
		close(f.fd);
	free(raw);
	free(dict);
	return r;
}

static void store_next(struct recv_xfer *rx);

static void store_done(struct bdrd_job *job, int rc)
{
	struct recv_xfer *rx = container_of(job, struct recv_xfer, job);

	rx->job_running = false;
	rx->queued_bytes -= rx->work->used;
	batch_free(rx, rx->work);
	rx->work = NULL;
	if (rc == 0 && rx->nreplain) {
		/* A sender that honours PLAIN drops each chunk at most once. */
		rx->dropped += rx->nreplain;
		if (rx->dropped > rx->asked)
			rc = bdr_diag_set(&rx->dg, -BDR_EFORMAT, "the sender keeps naming dictionaries "
					  "this site cannot resolve, though asked for chunks without");
	}
	if (rx->state != RX_ENDED && rx->c) {
		if (rc == 0 && rx->nreplain) {
			log_info(&rx->ctx, "replain", "%" PRIu32 " chunks named a dictionary this site "
				 "cannot read (of version %" PRIu64 "); asking for them without",
				 rx->nreplain, rx->dm_missing ? rx->dm_missing : rx->dm_version);
			ask_refs(rx, rx->replain, rx->nreplain, BDR_NEED_FORCE | BDR_NEED_PLAIN);
		}
		if (rc < 0)
			finish(rx, BDR_DONE_FAILED, rc, rx->dg.msg);
		else if (rx->c)
			store_next(rx);
	}
	rx->nreplain = 0;
	unref(rx);
}

static void store_next(struct recv_xfer *rx)
{
	if (rx->c && rx->queued_bytes < QUEUE_LOW)
		conn_pause_read(rx->c, false);
	if (rx->job_running)
		return;
	if (!rx->qhead) {
		if (rx->outstanding == 0 && !rx->fill && rx->state == RX_RECEIVING)
			start_finish(rx);
		return;
	}
	rx->work = rx->qhead;
	rx->qhead = rx->work->next;
	if (!rx->qhead)
		rx->qtail = NULL;
	rx->refs++;
	rx->job_running = true;
	bdrd_work(rx->d, &rx->job, false, store_run, store_done);
}

static void enqueue_fill(struct recv_xfer *rx)
{
	struct rbatch *b = rx->fill;

	rx->fill = NULL;
	if (rx->qtail)
		rx->qtail->next = b;
	else
		rx->qhead = b;
	rx->qtail = b;
	store_next(rx);
}

static int fill_add(struct recv_xfer *rx, const struct bdr_msg *m, char *why, size_t whylen)
{
	struct rbatch *b = rx->fill;
	const struct bdr_dictref *dr = &m->chunk.dict;
	const bool dct = bdr_codec_has_dict(m->chunk.codec);
	/* Only what we can read: our package's files (the path goes along). */
	const bool foreign = dct && (dr->kind != BDR_DICTREF_FILE || strcmp(dr->package, rx->package));
	const size_t plen = dct && !foreign ? strlen(dr->path) : 0;
	const size_t need = m->chunk.len + plen;
	int r;

	if (!b) {
		if ((r = take(rx, sizeof(*b), "received chunks", why, whylen)) < 0)
			return r;
		if (!(b = rx->fill = calloc(1, sizeof(*b))))
			return -ENOMEM;
	}
	if (b->n == b->cap) {
		uint32_t cap = b->cap ? b->cap * 2 : 64;
		struct in_chunk *v;
		if ((r = take(rx, (uint64_t)(cap - b->cap) * sizeof(*v), "received chunks", why, whylen)) < 0)
			return r;
		if (!(v = realloc(b->v, cap * sizeof(*v)))) {
			bdrd_budget_give(rx->d, rx->peer, (uint64_t)(cap - b->cap) * sizeof(*v));
			rx->charged -= (uint64_t)(cap - b->cap) * sizeof(*v);
			return -ENOMEM;
		}
		b->v = v, b->cap = cap;
	}
	if (b->used + need > b->dcap) {
		size_t cap = b->dcap ? b->dcap : BATCH_BYTES;
		uint8_t *data;
		while (cap < b->used + need)
			cap *= 2;
		if ((r = take(rx, cap - b->dcap, "received chunks", why, whylen)) < 0)
			return r;
		if (!(data = realloc(b->data, cap))) {
			bdrd_budget_give(rx->d, rx->peer, cap - b->dcap);
			rx->charged -= cap - b->dcap;
			return -ENOMEM;
		}
		b->data = data, b->dcap = cap;
	}
	b->v[b->n++] = (struct in_chunk){ m->chunk.id, m->chunk.raw_len, m->chunk.codec,
					  m->chunk.len, b->used, foreign, (uint16_t)plen,
					  dct ? dr->len : 0, dct ? dr->version : 0, dct ? dr->offset : 0 };
	memcpy(b->data + b->used, m->chunk.data, m->chunk.len);
	memcpy(b->data + b->used + m->chunk.len, dr->path, plen);
	b->used += need;
	rx->queued_bytes += need;
	return 0;
}

static void on_chunk(struct recv_xfer *rx, const struct bdr_msg *m)
{
	char why[300];
	int r;

	if (rx->state != RX_RECEIVING || !rx->outstanding) {
		conn_close(rx->c, -BDR_EFORMAT, "CHUNK that was not asked for");
		return;
	}
	if (!bdr_wire_codec_allowed(m->chunk.codec, conn_caps(rx->c))) {
		conn_close(rx->c, -BDR_EFORMAT, "CHUNK with a codec not agreed");
		return;
	}
	if ((r = fill_add(rx, m, why, sizeof(why))) == -ENOBUFS) {
		finish(rx, BDR_DONE_FAILED, r, why);
		return;
	} else if (r < 0) {
		conn_close(rx->c, r, "out of memory");
		return;
	}
	rx->outstanding--;
	rx->bytes_in += m->chunk.len;
	if (rx->fill->used >= BATCH_BYTES || rx->outstanding == 0)
		enqueue_fill(rx);
	if (rx->queued_bytes > QUEUE_HIGH)
		conn_pause_read(rx->c, true);
	if (bdrd_now_ns() - rx->db_written_ns > DB_EVERY_NS)
		record(rx, BDR_RECV_RECEIVING, NULL);
}

/* ---- assembling, verifying, activating (worker, under lib_lock) ---- */

static int finish_run(struct bdrd_job *job)
{
	struct recv_xfer *rx = container_of(job, struct recv_xfer, job);
	const uint32_t *bad;
	uint32_t nbad;
	int r = check_origin(rx);

	if (r == 0)
		r = bdr_rebuild_finish(rx->rb, &rx->dg);
	if (r != -BDR_EHASH)
		return r;
	/* A file failed its BLAKE2b: a held chunk was bad (or two chunks share
	 * an id). Fetch those files' bytes in full and try again. */
	bad = bdr_rebuild_bad_files(rx->rb, &nbad);
	for (uint32_t i = 0; i < nbad; i++)
		bdr_rebuild_refetch(rx->rb, bad[i]);
	free(rx->missing);
	rx->missing = NULL;
	if (bdr_rebuild_missing(rx->rb, &rx->missing, &rx->nmissing, NULL) < 0)
		return r;
	return 1;
}

static uint64_t version_bytes(const struct recv_xfer *rx)
{
	const struct bdr_manifest *m = bdr_rebuild_manifest(rx->rb);
	uint64_t n = 0;

	for (uint32_t i = 0; i < m->nentries; i++)
		n += m->entries[i].size;
	return n;
}

static void finish_done(struct bdrd_job *job, int rc)
{
	struct recv_xfer *rx = container_of(job, struct recv_xfer, job);

	rx->job_running = false;
	if (rx->state == RX_ENDED || !rx->c) {
		/* Activated after the connection went: the row says so (the
		 * sender learns it from its next OFFER, answered held). */
		if (rc == 0)
			record(rx, BDR_RECV_ACTIVATED, NULL);
		unref(rx);
		return;
	}
	if (rc == 0) {
		log_info(&rx->ctx, "activated", "verified and activated (%" PRIu64 " chunk bytes received)",
			 rx->bytes_in);
		bdrd_hier_relay(rx->d, rx->package, rx->version, version_bytes(rx));
		finish(rx, BDR_DONE_ACTIVATED, 0, NULL);
	} else if (rc == 1 && rx->nmissing && rx->rounds < MAX_ROUNDS) {
		/* (nmissing 0: the bad files were built from received chunks
		 * only; asking for nothing would wait forever.) */
		rx->rounds++;
		bdr_log(BDR_LOG_WARN, &rx->ctx, "refetch",
			"%s; asking the sender for those files in full (%" PRIu32 " chunks)", rx->dg.msg,
			rx->nmissing);
		rx->state = RX_RECEIVING;
		ask(rx, BDR_NEED_FORCE);
	} else {
		finish(rx, BDR_DONE_FAILED, rc == 1 ? -BDR_EHASH : rc, rx->dg.msg);
	}
	unref(rx);
}

static void start_finish(struct recv_xfer *rx)
{
	rx->state = RX_FINISHING;
	rx->refs++;
	rx->job_running = true;
	bdrd_work(rx->d, &rx->job, true, finish_run, finish_done);
}

/* ---- OFFER, MANIFEST, CANCEL ---- */

static struct recv_xfer *rx_find(struct conn *c, uint64_t xfer)
{
	for (struct recv_xfer *rx = *conn_receivers(c); rx; rx = rx->next)
		if (rx->xfer == xfer)
			return rx;
	return NULL;
}

static void on_offer(struct conn *c, const struct bdr_msg *m)
{
	struct bdrd *d = conn_daemon(c);
	struct recv_xfer *rx, **list = conn_receivers(c);
	char why[BDR_WIRE_TEXT_MAX];
	int trust;
	unsigned n = 0;

	for (rx = *list; rx; rx = rx->next)
		n++;
	if ((m->offer.flags & BDR_OFFER_DELTA) && !(conn_caps(c) & BDR_CAP_MANIFEST_DELTA)) {
		conn_close(c, -BDR_EFORMAT, "OFFER with a manifest delta, a capability not agreed");
		return;
	}
	if (rx_find(c, m->offer.xfer) || n >= MAX_RX_PER_CONN) {
		conn_close(c, -BDR_EFORMAT, n >= MAX_RX_PER_CONN ? "too many transfers on one connection"
								  : "OFFER for a transfer already running");
		return;
	}
	if (!(rx = calloc(1, sizeof(*rx)))) {
		conn_close(c, -ENOMEM, "out of memory");
		return;
	}
	rx->d = d, rx->c = c, rx->refs = 1;
	rx->xfer = m->offer.xfer;
	rx->version = m->offer.version;
	rx->mlen = m->offer.manifest_len;
	rx->base = m->offer.flags & BDR_OFFER_DELTA ? m->offer.base : 0;
	rx->max_manifest = d->cfg.limits.max_manifest_bytes;
	snprintf(rx->package, sizeof(rx->package), "%s", m->offer.package);
	snprintf(rx->peer, sizeof(rx->peer), "%s", conn_peer(c));
	rx->ctx = (struct bdr_log_ctx){ .peer = rx->peer, .package = rx->package, .version = rx->version };
	rx->next = *list;
	*list = rx;
	trust = bdr_trust_peer(&d->cfg, rx->peer, rx->package, &rx->trust, why, sizeof(why));
	if (rx->base)
		log_info(&rx->ctx, "offer", "offered (manifest as a %" PRIu64 "-byte delta against version %"
			 PRIu64 ")", rx->mlen, rx->base);
	else
		log_info(&rx->ctx, "offer", "offered (manifest %" PRIu64 " bytes)", rx->mlen);
	if (trust < 0) {
		rx->refused = true;
		finish(rx, BDR_DONE_FAILED, trust, why);
	} else if (rx->version > BDR_VERSION_MAX) {
		snprintf(why, sizeof(why), "version %" PRIu64 " is above the largest version number, %"
			 PRIu64, rx->version, BDR_VERSION_MAX);
		finish(rx, BDR_DONE_FAILED, -BDR_ELIMIT, why);
	} else if (rx->mlen > d->cfg.limits.max_manifest_bytes) {
		char msg[128];
		snprintf(msg, sizeof(msg), "manifest of %" PRIu64 " bytes exceeds max_manifest_bytes %" PRIu64,
			 rx->mlen, d->cfg.limits.max_manifest_bytes);
		finish(rx, BDR_DONE_FAILED, -BDR_ELIMIT, msg);
	} else {
		/* The pieces' buffer and, without a delta, the most the plan can
		 * hold (a delta's is taken once it is in: delta_budget). */
		char no[300];
		int r = take(rx, rx->mlen + (rx->base ? 0 : bdr_rebuild_footprint_max(rx->mlen)),
			     rx->base ? "an offered manifest delta" : "an offered manifest", no, sizeof(no));
		if (r < 0)
			finish(rx, BDR_DONE_FAILED, r, no);
	}
}

/* A delta makes a manifest of unknown size (up to max_manifest_bytes):
 * its plan gets half of what the budget has left (a second transfer of the
 * peer's can plan meanwhile), and the delta may make no manifest whose
 * plan would not fit in it. 0, or the transfer is refused. */
static int delta_budget(struct recv_xfer *rx)
{
	uint64_t half = bdrd_budget_left(rx->d, rx->peer) / 2, fixed = bdr_rebuild_footprint_max(0);
	uint64_t most = half > fixed ? (half - fixed) / 10 : 0; /* the buffer, and its plan */
	char why[300];
	int r;

	if (most < rx->max_manifest) {
		rx->max_manifest = most;
		rx->budget_bound = true;
	}
	r = take(rx, rx->max_manifest + bdr_rebuild_footprint_max(rx->max_manifest),
		 "the manifest a delta makes", why, sizeof(why));
	if (r < 0)
		finish(rx, BDR_DONE_FAILED, r, why);
	return r;
}

static void on_manifest(struct recv_xfer *rx, const struct bdr_msg *m)
{
	uint64_t end = m->manifest.offset + m->manifest.len;

	if (rx->state != RX_MANIFEST || m->manifest.offset != rx->mgot || end > rx->mlen) {
		conn_close(rx->c, -BDR_EFORMAT, "MANIFEST piece out of order or past its length");
		return;
	}
	/* Grown by what arrived, never by what the OFFER announced. */
	if (end > rx->mcap) {
		uint64_t cap = rx->mcap ? rx->mcap * 2 : 64 * 1024;
		uint8_t *p;
		while (cap < end)
			cap *= 2;
		if (cap > rx->mlen)
			cap = rx->mlen;
		if (!(p = realloc(rx->mbuf, cap))) {
			conn_close(rx->c, -ENOMEM, "out of memory");
			return;
		}
		rx->mbuf = p, rx->mcap = cap;
	}
	memcpy(rx->mbuf + rx->mgot, m->manifest.data, m->manifest.len);
	rx->mgot = end;
	if (rx->mgot < rx->mlen || (rx->base && delta_budget(rx) < 0))
		return;
	rx->state = RX_PLANNING;
	rx->refs++;
	rx->job_running = true;
	bdrd_work(rx->d, &rx->job, true, plan_run, plan_done);
}

void receiver_on_msg(struct conn *c, const struct bdr_msg *m)
{
	struct recv_xfer *rx;
	uint64_t xfer = m->type == BDR_MSG_MANIFEST ? m->manifest.xfer :
			m->type == BDR_MSG_CHUNK ? m->chunk.xfer : m->cancel.xfer;

	if (m->type == BDR_MSG_OFFER) {
		on_offer(c, m);
		return;
	}
	if (!(rx = rx_find(c, xfer))) {
		/* Pieces of a transfer we already answered (refused, held) are
		 * expected; anything else is a confused peer. */
		if (m->type != BDR_MSG_MANIFEST && m->type != BDR_MSG_CANCEL)
			conn_close(c, -BDR_EFORMAT, "message for an unknown transfer");
		return;
	}
	if (m->type == BDR_MSG_MANIFEST)
		on_manifest(rx, m);
	else if (m->type == BDR_MSG_CHUNK)
		on_chunk(rx, m);
	else {
		log_info(&rx->ctx, "cancelled", "the sender stopped: %s", m->cancel.reason);
		rx->state = RX_ENDED;
		record(rx, BDR_RECV_RECEIVING, m->cancel.reason);
		unlink_rx(rx);
		unref(rx);
		/* It may have stopped reading (its queue was high); the rest of
		 * its queue is dropped. */
		conn_pause_read(c, false);
	}
}

void receiver_detach_all(struct conn *c)
{
	struct recv_xfer **list = conn_receivers(c);

	while (*list) {
		struct recv_xfer *rx = *list;
		if (rx->state != RX_ENDED && rx->state != RX_MANIFEST)
			record(rx, BDR_RECV_RECEIVING, "connection lost; the next attempt resumes");
		rx->state = RX_ENDED;
		unlink_rx(rx);
		unref(rx);
	}
}
