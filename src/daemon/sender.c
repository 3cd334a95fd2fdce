/* The sending half of a push (proto/wire.md, "Transfer"): OFFER and the
 * manifest, then for every NEED the requested chunks, read from the
 * version's tree and compressed on a worker, in batches, as fast as the
 * connection drains; DONE ends it.
 *
 * Memory: the manifest and a sorted table of where each chunk lives (both
 * bounded by the manifest limit), the refs asked for and not yet sent (at
 * most the version's distinct chunks), and one batch of compressed chunks
 * (BATCH_RAW of input). The socket's backlog is held under
 * max_inflight_bytes: a batch starts only when the backlog is below it.
 *
 * Codec 2 (proto/wire.md, "Chunk codecs"): when the peer holds an older
 * version (the one its last DONE confirmed) and both offered
 * BDR_CAP_ZLIB_DICT, each chunk is also compressed against a window of the
 * old file at the same path (the chunk's length and a margin), placed by
 * bdr_dictsel_pick, and goes with whichever form is smaller. The old
 * file's index is built on a worker and kept in a small per-transfer LRU
 * shared by the batch jobs; the window is read from our own copy of that
 * version.
 *
 * Codecs 3 and 4: when both offered BDR_CAP_ZSTD, the same choices with
 * zstd in place of zlib (codec 4 takes the same window as codec 2).
 *
 * Ownership: refs counts the connection (until sender_detach) and a running
 * job; the last one frees. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bdr/channel.h"
#include "bdr/compress.h"
#include "bdr/dictsel.h"
#include "bdr/error.h"
#include "bdr/library.h"
#include "bdr/manifest.h"
#include "bdr/mdelta.h"
#include "daemon/ccache.h"
#include "daemon/daemon.h"
#include "daemon/policy.h"

#define BATCH_RAW (4u << 20)   /* raw bytes read and compressed per job */
#define BATCH_CHUNKS 1024u
#define PIPELINE 2
#define DB_EVERY_NS (2 * 1000000000ll)
#define DICT_SLOTS 4                  /* old-file indexes kept per transfer */
#define DICT_FILE_MAX (256ull << 20)  /* larger old files give no dictionary */
/* zlib level with a dictionary. Measured on esbuild's v1 -> v2 (11 MB,
 * one core): level 1 2.03 MB in 0.14 s, 4 1.68 MB in 0.18 s, 6 1.47 MB in
 * 0.24 s, 9 1.43 MB in 0.71 s. A second, plain trial (level 1) won back
 * 0.1% of the bytes for 0.17 s more, so there is none. */
#define DICT_LEVEL 6
#define NO_ENTRY UINT32_MAX
/* A CHUNK frame's bytes besides its data and dictionary path: length,
 * tag, fixed fields and a dictref's package name (proto/wire.md), with
 * room to spare. */
#define FRAME_ROOM 192u
/* A sealed cache entry's key and hash, in front of its bytes. */
#define TAIL_SEAL_LEN (BDR_WIRE_TAIL_KEY_LEN + BDR_WIRE_TAIL_HASH_LEN)

struct loc {
	struct bdr_chunk_id id;
	uint32_t len;
	uint32_t entry;
	uint64_t offset;
};

/* A chunk asked for; plain: the receiver could not resolve a dictionary. */
struct qref {
	struct bdr_chunk_ref ref;
	bool plain;
};

struct out_chunk {
	struct qref q;
	uint8_t codec;
	uint32_t len;
	size_t off;      /* in batch data, unless pinned */
	const uint8_t *cached; /* the bytes in the chunk cache, pinned by pin */
	void *pin;
	uint32_t dentry; /* codec 2: the old file (in the base manifest) ... */
	uint64_t doff;   /* ... and the window */
	uint32_t dlen;
	struct bdr_channel_tail tail; /* the batch's seal: the bytes, sealed */
};

/* The index of one old file of the base version, shared by the batch jobs
 * under dict_lock. */
struct dict_slot {
	uint32_t entry;               /* in the base manifest */
	struct bdr_dictsel_index *ix; /* owned; NULL: a free slot */
	unsigned users;               /* jobs picking from it */
	uint64_t used;                /* LRU tick */
};

/* One job's worth of chunks. Up to PIPELINE batches are read and
 * compressed at once (one per core), and sent in the order they were taken,
 * as the protocol asks. */
struct batch {
	struct bdrd_job job;
	struct send_xfer *tx;
	struct batch *next;  /* in tx's FIFO */
	bool done;
	int rc;
	uint32_t n;
	bool dict;           /* codec 2 allowed (decided on the loop thread) */
	bool zstd;           /* codecs 3 and 4 instead of 1 and 2 */
	bool share;          /* through the chunk cache: others send this version too */
	bool seal;           /* and sealed once, as shared tails (the peer takes them) */
	struct out_chunk *v; /* owned */
	uint8_t *data;       /* owned */
	size_t cap, used;
	struct bdr_diag dg;
};

struct send_xfer {
	struct bdrd *d;
	struct conn *c;            /* NULL once detached */
	struct bdr_db_transfer row;
	struct bdr_log_ctx ctx;    /* points into row */
	int refs;
	/* loaded by the first job */
	uint8_t *mbuf;             /* owned: the signed manifest as stored */
	size_t mlen;
	struct bdr_manifest m;     /* owned */
	struct loc *locs;          /* owned, sorted by (id, len) */
	size_t nlocs;
	char tree[PATH_MAX];
	/* The manifest as a delta against the version the peer last confirmed
	 * (proto/wire.md, "Manifest delta"), when that is shorter. */
	uint64_t base;             /* 0: none */
	uint8_t *dbuf;             /* owned */
	size_t dlen;
	bool no_delta;             /* the peer could not use it: send in full */
	/* Codec 2: the version the peer confirmed, its manifest, and where
	 * its tree is here (read-only after the load job). */
	uint64_t dict_base;        /* 0: no dictionaries */
	struct bdr_manifest bm;    /* owned */
	char btree[PATH_MAX];
	bool no_dict;              /* the peer could not resolve one: plain only */
	uv_mutex_t dict_lock;      /* guards dslots, dtick */
	struct dict_slot dslots[DICT_SLOTS]; /* indexes owned */
	uint64_t dtick;
	bool loaded;
	struct send_xfer *snext;   /* in d->senders */
	struct bdr_diag dg;
	/* on the wire */
	size_t moff;               /* manifest bytes sent */
	struct qref *q;            /* owned: asked for, not yet read */
	uint32_t qhead, qlen, qcap;
	uint64_t requested_bytes;  /* raw bytes of every chunk asked for */
	uint64_t wire_base;        /* bytes_sent before this connection */
	uint64_t wire_start;       /* bytes_sent when this attempt began */
	uint64_t progress_bytes;   /* chunk bytes sent by this attempt */
	int64_t db_written_ns;
	uint64_t zstd_chunks;      /* sent as codec 3 or 4 (the DONE log line) */
	bool ended;
	struct bdrd_job job;       /* the load job */
	bool job_running;
	struct batch *bhead, *btail; /* owned: batches taken, oldest first */
	unsigned nbatches;
};

static void unref(struct send_xfer *tx)
{
	struct send_xfer **pp = &tx->d->senders;

	if (--tx->refs > 0)
		return;
	while (*pp != tx)
		pp = &(*pp)->snext;
	*pp = tx->snext;
	/* The fan-out is over: its chunks give their memory back. */
	if (!tx->d->senders && tx->d->ccache) {
		struct bdrd_ccache_stats st;
		bdrd_ccache_stats(tx->d->ccache, &st);
		if (st.hits)
			log_debug(NULL, "fan-out", "chunk cache: %" PRIu64 " chunks shared, %" PRIu64
				  " encoded, %" PRIu64 " evicted", st.hits, st.misses, st.evicted);
		bdrd_ccache_clear(tx->d->ccache);
	}
	bdr_manifest_free(&tx->m);
	bdr_manifest_free(&tx->bm);
	for (unsigned i = 0; i < DICT_SLOTS; i++)
		bdr_dictsel_index_free(tx->dslots[i].ix);
	uv_mutex_destroy(&tx->dict_lock);
	free(tx->mbuf);
	free(tx->dbuf);
	free(tx->locs);
	free(tx->q);
	free(tx);
}

struct send_xfer *sender_new(struct bdrd *d, const struct bdr_db_transfer *row)
{
	struct send_xfer *tx = calloc(1, sizeof(*tx));

	if (!tx)
		return NULL;
	if (uv_mutex_init(&tx->dict_lock)) {
		free(tx);
		return NULL;
	}
	tx->d = d;
	tx->row = *row;
	tx->refs = 1;
	tx->snext = d->senders;
	d->senders = tx;
	tx->ctx = (struct bdr_log_ctx){ .peer = tx->row.peer, .package = tx->row.package,
					.version = tx->row.version };
	tx->wire_base = row->bytes_sent;
	bdr_manifest_init(&tx->m);
	bdr_manifest_init(&tx->bm);
	return tx;
}

/* ---- the row ---- */

/* Bytes that left for the peer: what the channel produced, less what still
 * waits in our write queue (it never left if the connection breaks now). */
static uint64_t wire_sent(const struct send_xfer *tx)
{
	return tx->wire_base + conn_wire_out(tx->c) - conn_backlog(tx->c);
}

/* Bytes of the version the destination holds or has been sent: what it
 * did not ask for, plus the chunks sent since it asked. 0 until its NEEDs
 * are in (the manifest phase). */
static uint64_t done_bytes(const struct send_xfer *tx)
{
	uint64_t total = tx->row.bytes_total, held;

	if (!tx->requested_bytes)
		return 0;
	held = total > tx->requested_bytes ? total - tx->requested_bytes : 0;
	return held + tx->progress_bytes < total ? held + tx->progress_bytes : total;
}

static void row_save(struct send_xfer *tx, bool force)
{
	int64_t now = bdrd_now_ns();
	int r;

	if (tx->c) {
		tx->row.bytes_sent = wire_sent(tx);
		/* Once the NEEDs are in, what this attempt will send at most. */
		bdrd_peer_progress(tx->d, &tx->row, tx->requested_bytes ?
				   tx->wire_start + tx->mlen + tx->requested_bytes : 0,
				   done_bytes(tx));
	}
	if (!force && now - tx->db_written_ns < DB_EVERY_NS) {
		bdrd_transfer_changed(tx->d, &tx->row);
		return;
	}
	tx->db_written_ns = now;
	tx->row.updated_ns = now;
	r = bdr_db_transfer_update(tx->d->db, &tx->row);
	if (r == -ESTALE) {
		/* Cancelled or superseded meanwhile: stop. */
		tx->ended = true;
		bdr_db_transfer_get(tx->d->db, tx->row.id, &tx->row);
	} else if (r < 0) {
		bdr_log_err(BDR_LOG_ERROR, &tx->ctx, r, "transfer", "cannot record progress: %s",
			    bdr_db_errmsg(tx->d->db));
	}
	bdrd_transfer_changed(tx->d, &tx->row);
}

static void end(struct send_xfer *tx, enum bdr_db_xfer_state st, const char *error)
{
	tx->row.state = st;
	bdrd_strcpy(tx->row.last_error, sizeof(tx->row.last_error), error ? error : "");
	row_save(tx, true);
	tx->ended = true;
}

/* ---- loading the version (worker, under lib_lock) ---- */

/* Any total order does, as the table is only searched with it: the id as
 * two native words (XXH3 bits, already uniform) is cheaper than memcmp,
 * and every NEED'ed chunk of every destination is looked up. */
static int loc_cmp(const void *a, const void *b)
{
	const struct loc *x = a, *y = b;
	uint64_t p[2], q[2];

	memcpy(p, x->id.b, sizeof(p));
	memcpy(q, y->id.b, sizeof(q));
	if (p[0] != q[0])
		return p[0] < q[0] ? -1 : 1;
	if (p[1] != q[1])
		return p[1] < q[1] ? -1 : 1;
	return (x->len > y->len) - (x->len < y->len);
}

static int build_locs(struct send_xfer *tx)
{
	size_t n = 0;

	for (uint32_t i = 0; i < tx->m.nentries; i++)
		n += tx->m.entries[i].nchunks;
	if (n && !(tx->locs = malloc(n * sizeof(*tx->locs))))
		return -ENOMEM;
	for (uint32_t i = 0; i < tx->m.nentries; i++) {
		const struct bdr_entry *e = &tx->m.entries[i];
		uint64_t off = 0;
		for (uint32_t c = 0; c < e->nchunks; c++) {
			tx->locs[tx->nlocs++] = (struct loc){ e->chunks[c].id, e->chunks[c].len, i, off };
			off += e->chunks[c].len;
		}
	}
	if (tx->nlocs)
		qsort(tx->locs, tx->nlocs, sizeof(*tx->locs), loc_cmp);
	return 0;
}

/* The highest version the peer confirmed, if we still hold it: the
 * manifest as a delta against it, if shorter, and its files as the
 * dictionaries of codec 2. Best effort: any failure means the manifest
 * goes in full, or the chunks without dictionaries. */
static void load_base(struct send_xfer *tx)
{
	struct bdr_library *lib = tx->d->lib;
	struct bdr_diag dg;
	uint8_t *bbuf = NULL;
	size_t blen = 0;
	uint64_t base;

	if (bdr_db_peer_version_get(bdr_library_db(lib), tx->row.peer, tx->row.package, &base) < 0 ||
	    base >= tx->row.version || base == 0 ||
	    bdr_library_manifest_read(lib, tx->row.package, base, &bbuf, &blen) < 0)
		return;
	if (bdr_mdelta_encode(bbuf, blen, tx->mbuf, tx->mlen, &tx->dbuf, &tx->dlen) == 0 &&
	    tx->dlen < tx->mlen) {
		tx->base = base;
	} else {
		free(tx->dbuf);
		tx->dbuf = NULL, tx->dlen = 0;
	}
	if (bdr_manifest_decode(bbuf, blen, NULL, &tx->bm, &dg) == 0 &&
	    bdr_library_tree_path(lib, tx->row.package, base, tx->btree, sizeof(tx->btree)) == 0)
		tx->dict_base = base;
	free(bbuf);
}

static int load_run(struct bdrd_job *job)
{
	struct send_xfer *tx = container_of(job, struct send_xfer, job);
	struct bdr_library *lib = tx->d->lib;
	int r;

	r = bdr_library_manifest_read(lib, tx->row.package, tx->row.version, &tx->mbuf, &tx->mlen);
	if (r < 0)
		return bdr_diag_set(&tx->dg, r, "cannot read the manifest: %s", bdr_strerror(r));
	r = bdr_manifest_decode(tx->mbuf, tx->mlen, NULL, &tx->m, &tx->dg);
	if (r == 0)
		r = bdr_library_tree_path(lib, tx->row.package, tx->row.version, tx->tree,
					  sizeof(tx->tree));
	if (r == 0)
		r = build_locs(tx);
	if (r == 0)
		load_base(tx);
	return r;
}

static void send_offer(struct send_xfer *tx);

static void load_done(struct bdrd_job *job, int rc)
{
	struct send_xfer *tx = container_of(job, struct send_xfer, job);

	tx->job_running = false;
	if (rc == 0 && !tx->ended) {
		tx->loaded = true;
		if (tx->c)
			send_offer(tx);
	} else if (rc < 0 && !tx->ended) {
		/* Not once detached: the row went back to the queue, and may
		 * already belong to the next attempt's sender. */
		bdr_log_err(BDR_LOG_ERROR, &tx->ctx, rc, "transfer", "%s", tx->dg.msg);
		end(tx, BDR_XFER_FAILED, tx->dg.msg);
		if (tx->c)
			conn_close(tx->c, 0, "transfer failed");
	}
	unref(tx);
}

/* ---- OFFER and MANIFEST ---- */

static bool use_delta(const struct send_xfer *tx)
{
	return tx->base && !tx->no_delta && tx->c && (conn_caps(tx->c) & BDR_CAP_MANIFEST_DELTA);
}

/* What the MANIFEST pieces carry: the delta or the manifest. */
static size_t offered_len(const struct send_xfer *tx)
{
	return use_delta(tx) ? tx->dlen : tx->mlen;
}

static void send_manifest_pieces(struct send_xfer *tx)
{
	size_t limit = tx->d->cfg.limits.max_inflight_bytes;
	const uint8_t *buf = use_delta(tx) ? tx->dbuf : tx->mbuf;
	size_t len = offered_len(tx);

	while (tx->c && tx->moff < len && conn_backlog(tx->c) < limit) {
		struct bdr_msg m = { .type = BDR_MSG_MANIFEST };
		size_t n = len - tx->moff;

		if (n > BDR_WIRE_MANIFEST_PIECE)
			n = BDR_WIRE_MANIFEST_PIECE;
		m.manifest.xfer = (uint64_t)tx->row.id;
		m.manifest.offset = tx->moff;
		m.manifest.len = (uint32_t)n;
		m.manifest.data = buf + tx->moff;
		if (conn_send(tx->c, &m) < 0)
			return;
		tx->moff += n;
	}
}

static void send_offer(struct send_xfer *tx)
{
	struct bdr_msg m = { .type = BDR_MSG_OFFER };

	m.offer.xfer = (uint64_t)tx->row.id;
	snprintf(m.offer.package, sizeof(m.offer.package), "%s", tx->row.package);
	m.offer.version = tx->row.version;
	m.offer.manifest_len = offered_len(tx);
	if (use_delta(tx)) {
		m.offer.flags = BDR_OFFER_DELTA;
		m.offer.base = tx->base;
	}
	if (conn_send(tx->c, &m) < 0)
		return;
	tx->moff = 0;
	if (use_delta(tx))
		log_info(&tx->ctx, "offer", "offering version (manifest %zu bytes as a %zu-byte delta "
			 "against version %" PRIu64 ", %zu chunks)", tx->mlen, tx->dlen, tx->base, tx->nlocs);
	else
		log_info(&tx->ctx, "offer", "offering version (manifest %zu bytes, %zu chunks)", tx->mlen,
			 tx->nlocs);
	send_manifest_pieces(tx);
}

void sender_start(struct send_xfer *tx, struct conn *c)
{
	tx->c = c;
	tx->wire_start = tx->row.bytes_sent;
	tx->row.state = BDR_XFER_SENDING;
	row_save(tx, true);
	if (tx->ended) {
		conn_close(c, 0, "transfer no longer wanted");
		return;
	}
	if (tx->loaded) {
		send_offer(tx);
		return;
	}
	tx->refs++;
	tx->job_running = true;
	bdrd_work(tx->d, &tx->job, true, load_run, load_done);
}

/* ---- chunks (worker, no lock: the version's tree is immutable) ---- */

static bool use_dict(const struct send_xfer *tx)
{
	return tx->dict_base && !tx->no_dict && tx->c &&
	       (conn_caps(tx->c) & (BDR_CAP_ZLIB_DICT | BDR_CAP_ZSTD));
}

static const struct loc *loc_find(const struct send_xfer *tx, const struct bdr_chunk_ref *ref)
{
	struct loc key = { .id = ref->id, .len = ref->len };

	return tx->nlocs ? bsearch(&key, tx->locs, tx->nlocs, sizeof(key), loc_cmp) : NULL;
}

static int read_chunk(struct send_xfer *tx, struct batch *b, const struct loc *l, int *fd,
		      uint32_t *fd_entry, uint8_t *buf)
{
	char path[PATH_MAX * 2];
	ssize_t got;

	if (*fd < 0 || *fd_entry != l->entry) {
		if (*fd >= 0)
			close(*fd);
		snprintf(path, sizeof(path), "%s/%s", tx->tree, tx->m.entries[l->entry].path);
		*fd = open(path, O_RDONLY | O_CLOEXEC);
		if (*fd < 0)
			return bdr_diag_set(&b->dg, -errno, "%s: %s", path, strerror(errno));
		*fd_entry = l->entry;
	}
	got = pread(*fd, buf, l->len, (off_t)l->offset);
	if (got != (ssize_t)l->len)
		return bdr_diag_set(&b->dg, got < 0 ? -errno : -BDR_ECORRUPT,
				    "%s: short read at %" PRIu64, tx->m.entries[l->entry].path, l->offset);
	return 0;
}

/* ---- dictionaries (worker) ---- */

/* The index of old file entry (open at fd), from the LRU or built here. A
 * slot of NULL means the index is the caller's own (every slot was in
 * use), to free after. */
static int dict_acquire(struct send_xfer *tx, uint32_t entry, int fd, struct dict_slot **slot,
			struct bdr_dictsel_index **ix)
{
	struct dict_slot *free_slot = NULL;
	struct bdr_dictsel_index *mine = NULL;
	int r;

	*slot = NULL, *ix = NULL;
	for (int pass = 0; pass < 2; pass++) {
		uv_mutex_lock(&tx->dict_lock);
		for (unsigned i = 0; i < DICT_SLOTS; i++) {
			struct dict_slot *sl = &tx->dslots[i];
			if (sl->ix && sl->entry == entry) {
				sl->users++;
				sl->used = ++tx->dtick;
				uv_mutex_unlock(&tx->dict_lock);
				if (pass)
					bdr_dictsel_index_free(mine); /* another job was faster */
				*slot = sl, *ix = sl->ix;
				return 0;
			}
			if (!sl->users && (!free_slot || !sl->ix ||
					   (free_slot->ix && sl->used < free_slot->used)))
				free_slot = sl;
		}
		if (pass) {
			if (free_slot) {
				bdr_dictsel_index_free(free_slot->ix);
				*free_slot = (struct dict_slot){ entry, mine, 1, ++tx->dtick };
				*slot = free_slot;
			}
			uv_mutex_unlock(&tx->dict_lock);
			*ix = mine;
			return 0;
		}
		uv_mutex_unlock(&tx->dict_lock);
		/* Built unlocked: the other batch job need not wait for it. */
		if ((r = bdr_dictsel_index_fd(&mine, fd, 0)) < 0)
			return r;
		free_slot = NULL;
	}
	return 0; /* not reached */
}

static void dict_release(struct send_xfer *tx, struct dict_slot *slot, struct bdr_dictsel_index *ix)
{
	if (!slot) {
		bdr_dictsel_index_free(ix);
		return;
	}
	uv_mutex_lock(&tx->dict_lock);
	slot->users--;
	uv_mutex_unlock(&tx->dict_lock);
}

/* One batch job's compression state: the old file it picks from now. */
struct coder {
	struct send_xfer *tx;
	struct bdr_compressor *z;     /* owned: plain trials */
	struct bdr_compressor *zd;    /* owned: dictionary trials */
	uint8_t *raw;                 /* owned: BDR_CHUNK_MAX_LIMIT */
	uint8_t *win;                 /* owned: BDR_CODEC_DICT_MAX */
	uint32_t new_entry;           /* the new file the old one serves */
	uint32_t old_entry;           /* NO_ENTRY: no dictionary for it */
	int old_fd;                   /* owned */
	struct dict_slot *slot;
	struct bdr_dictsel_index *ix; /* owned when slot is NULL */
};

static void coder_drop_old(struct coder *k)
{
	if (k->ix)
		dict_release(k->tx, k->slot, k->ix);
	if (k->old_fd >= 0)
		close(k->old_fd);
	k->ix = NULL, k->slot = NULL, k->old_fd = -1;
	k->old_entry = NO_ENTRY;
}

/* The old file for new file entry: the same path in the base version. */
static void coder_switch(struct coder *k, uint32_t new_entry)
{
	struct send_xfer *tx = k->tx;
	const struct bdr_entry *e;
	char path[PATH_MAX * 2];

	if (k->new_entry == new_entry)
		return;
	coder_drop_old(k);
	k->new_entry = new_entry;
	e = bdr_manifest_find(&tx->bm, tx->m.entries[new_entry].path);
	if (!e || e->type != BDR_ENTRY_FILE || !e->size || e->size > DICT_FILE_MAX)
		return;
	snprintf(path, sizeof(path), "%s/%s", tx->btree, e->path);
	if ((k->old_fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return; /* pruned meanwhile: no dictionary */
	if (dict_acquire(tx, (uint32_t)(e - tx->bm.entries), k->old_fd, &k->slot, &k->ix) < 0) {
		coder_drop_old(k);
		return;
	}
	k->old_entry = (uint32_t)(e - tx->bm.entries);
}

/* Reads the window for the chunk in k->raw; 0 and its length, or no
 * dictionary. */
static uint32_t coder_window(struct coder *k, const struct loc *l, struct out_chunk *o)
{
	struct bdr_dictsel_window w;

	coder_switch(k, l->entry);
	if (k->old_entry == NO_ENTRY || bdr_dictsel_pick(k->ix, k->raw, l->len, l->offset, &w) < 0 ||
	    !w.len || pread(k->old_fd, k->win, w.len, (off_t)w.off) != (ssize_t)w.len)
		return 0;
	o->dentry = k->old_entry, o->doff = w.off, o->dlen = w.len;
	return w.len;
}

/* Compresses k->raw into out: against a dictionary if allowed and found,
 * else (or if that does not get under 97%) plain. */
static int coder_run(struct coder *k, bool dict, const struct loc *l, struct out_chunk *o,
		     uint8_t *out, uint32_t cap)
{
	uint32_t dlen = dict && !o->q.plain ? coder_window(k, l, o) : 0;
	int r = 0;

	if (dlen)
		r = bdr_compress_chunk(k->zd, k->raw, l->len, k->win, dlen, out, cap, &o->len, &o->codec);
	if (r < 0 || (dlen && bdr_codec_has_dict(o->codec)))
		return r;
	return bdr_compress_chunk(k->z, k->raw, l->len, NULL, 0, out, cap, &o->len, &o->codec);
}

static void coder_init(struct coder *k, struct send_xfer *tx)
{
	*k = (struct coder){ .tx = tx, .new_entry = NO_ENTRY, .old_entry = NO_ENTRY, .old_fd = -1 };
}

/* Buffers and compressors, made at the first chunk the cache does not
 * hold (a batch served from it needs none). */
static int coder_ready(struct coder *k, bool dict, bool zstd)
{
	if (k->raw)
		return 0;
	if (!(k->raw = malloc(BDR_CHUNK_MAX_LIMIT)))
		return -ENOMEM;
	if (dict && !(k->win = malloc(BDR_CODEC_DICT_MAX)))
		return -ENOMEM;
	if (zstd) {
		int r = bdr_compressor_new_zstd(&k->z, 0);
		return r == 0 && dict ? bdr_compressor_new_zstd(&k->zd, BDR_ZSTD_DICT_LEVEL) : r;
	}
	int r = bdr_compressor_new(&k->z, 0);
	return r == 0 && dict ? bdr_compressor_new(&k->zd, DICT_LEVEL) : r;
}

static void coder_free(struct coder *k)
{
	coder_drop_old(k);
	bdr_compressor_free(k->z);
	bdr_compressor_free(k->zd);
	free(k->raw);
	free(k->win);
}

/* ---- the chunk cache: a version sent to several sites is encoded once ---- */

/* What a codec 2 encoding names, kept in front of its bytes in the cache. */
struct dict_meta {
	uint32_t entry, len;
	uint64_t off;
};

/* The cache key's variant: the raw length, for codec 2 what the
 * dictionaries come from (the package and the base version), and whether
 * the bytes are sealed. */
static uint64_t cache_variant(const struct send_xfer *tx, const struct batch *b,
			      const struct out_chunk *o)
{
	uint64_t v = (uint64_t)o->q.ref.len << 32;

	if (b->dict && !o->q.plain) {
		uint64_t h = 1469598103934665603ull;
		for (const char *p = tx->row.package; *p; p++)
			h = (h ^ (uint8_t)*p) * 1099511628211ull;
		v ^= h ^ (tx->dict_base * 0x9e3779b97f4a7c15ull) ^ 1;
	}
	if (b->zstd)
		v ^= 4;
	return b->seal ? v ^ 2 : v;
}

/* 0: o is served from the cache, its bytes pinned there until the batch
 * is sent (no copy); 1: ours to encode, then cache_put or give up; < 0:
 * encode, and keep nothing. */
static int cache_get(struct send_xfer *tx, struct out_chunk *o, uint64_t var, bool seal)
{
	struct bdrd_ccache_hit hit;
	struct dict_meta dm;
	int r = bdrd_ccache_pin(tx->d->ccache, &o->q.ref.id, var, &hit, true);

	if (r != 0)
		return r;
	size_t head = (bdr_codec_has_dict(hit.codec) ? sizeof(dm) : 0) +
		      (seal ? TAIL_SEAL_LEN : 0);

	o->pin = hit.pin;
	if (hit.len < head) {
		bdrd_ccache_unpin(tx->d->ccache, o->pin);
		o->pin = NULL;
		return -EINVAL;
	}
	o->cached = hit.data + head;
	o->len = hit.len - (uint32_t)head;
	if (bdr_codec_has_dict(hit.codec)) {
		memcpy(&dm, hit.data, sizeof(dm));
		o->dentry = dm.entry, o->doff = dm.off, o->dlen = dm.len;
	}
	if (seal) {
		const uint8_t *k = o->cached - TAIL_SEAL_LEN;
		memcpy(o->tail.key, k, sizeof(o->tail.key));
		memcpy(o->tail.hash, k + sizeof(o->tail.key), sizeof(o->tail.hash));
		o->tail.ct = o->cached, o->tail.len = o->len;
	}
	o->codec = hit.codec;
	return 0;
}

/* An entry is [dict_meta, codec 2] [key and hash, sealed] bytes. */
static void cache_put(struct send_xfer *tx, struct batch *b, struct out_chunk *o, uint64_t var)
{
	struct dict_meta dm = { o->dentry, o->dlen, o->doff };
	uint8_t head[sizeof(dm) + TAIL_SEAL_LEN];
	uint32_t hlen = 0;

	if (bdr_codec_has_dict(o->codec))
		memcpy(head, &dm, sizeof(dm)), hlen += sizeof(dm);
	if (b->seal) {
		memcpy(head + hlen, o->tail.key, sizeof(o->tail.key));
		memcpy(head + hlen + sizeof(o->tail.key), o->tail.hash, sizeof(o->tail.hash));
		hlen += TAIL_SEAL_LEN;
	}
	bdrd_ccache_put(tx->d->ccache, &o->q.ref.id, var, o->codec, head, hlen, b->data + b->used,
			o->len);
}

static int batch_run(struct bdrd_job *job)
{
	struct batch *b = container_of(job, struct batch, job);
	struct send_xfer *tx = b->tx;
	struct coder k;
	uint32_t fd_entry = 0;
	int fd = -1, r = 0;

	coder_init(&k, tx);
	for (uint32_t i = 0; r == 0 && i < b->n; i++) {
		struct out_chunk *o = &b->v[i];
		uint64_t var = b->share ? cache_variant(tx, b, o) : 0;
		int cached = b->share ? cache_get(tx, o, var, b->seal) : -ENOENT;
		const struct loc *l;

		if (cached == 0)
			continue; /* sent from the cache */
		l = loc_find(tx, &o->q.ref);
		r = coder_ready(&k, b->dict, b->zstd);
		if (r == 0)
			r = read_chunk(tx, b, l, &fd, &fd_entry, k.raw);
		if (r == 0)
			r = coder_run(&k, b->dict, l, o, b->data + b->used, (uint32_t)(b->cap - b->used));
		if (r == 0 && b->seal)
			bdr_channel_tail_seal(&o->tail, b->data + b->used, o->len);
		if (cached == 1 && r == 0)
			cache_put(tx, b, o, var);
		else if (cached == 1)
			bdrd_ccache_abandon(tx->d->ccache, &o->q.ref.id, var);
		o->off = b->used;
		b->used += o->len;
	}
	if (fd >= 0)
		close(fd);
	coder_free(&k);
	return r;
}

static void batch_free(struct batch *b)
{
	if (!b)
		return;
	for (uint32_t i = 0; b->v && i < b->n; i++)
		if (b->v[i].pin)
			bdrd_ccache_unpin(b->tx->d->ccache, b->v[i].pin);
	free(b->v);
	free(b->data);
	free(b);
}

static void pump(struct send_xfer *tx);

/* A sealed batch's tails are written from where they are (the batch's
 * data, pinned cache entries): the connection lets it go once written. */
static void batch_release(void *arg)
{
	struct batch *b = arg;
	struct send_xfer *tx = b->tx;

	batch_free(b);
	unref(tx);
}

/* Whether b was handed to the connection (it frees b then). */
static bool send_batch(struct send_xfer *tx, struct batch *b)
{
	if (b->rc < 0) {
		bdr_log_err(BDR_LOG_ERROR, &tx->ctx, b->rc, "transfer", "reading chunks: %s", b->dg.msg);
		end(tx, BDR_XFER_FAILED, b->dg.msg);
		conn_close(tx->c, 0, "transfer failed");
		return false;
	}
	struct conn *c = tx->c; /* alive until the loop turns, even if closed */
	size_t room = 0;
	bool held = b->seal && conn_hold(c, batch_release, b) == 0;

	for (uint32_t i = 0; i < b->n; i++)
		room += (held ? 0 : b->v[i].len) + FRAME_ROOM + (b->seal ? BDR_WIRE_TRAILER_LEN : 0) +
			(bdr_codec_has_dict(b->v[i].codec) ? strlen(tx->bm.entries[b->v[i].dentry].path) : 0);
	if (held)
		tx->refs++; /* the batch's, dropped by batch_release */
	conn_reserve(c, room);
	conn_cork(c, true);
	for (uint32_t i = 0; tx->c && !tx->ended && i < b->n; i++) {
		struct bdr_msg m = { .type = BDR_MSG_CHUNK };
		m.chunk.xfer = (uint64_t)tx->row.id;
		m.chunk.id = b->v[i].q.ref.id;
		m.chunk.raw_len = b->v[i].q.ref.len;
		m.chunk.codec = b->v[i].codec;
		if (bdr_codec_has_dict(m.chunk.codec)) {
			struct bdr_dictref *dr = &m.chunk.dict;
			dr->kind = BDR_DICTREF_FILE;
			snprintf(dr->package, sizeof(dr->package), "%s", tx->row.package);
			dr->version = tx->dict_base;
			snprintf(dr->path, sizeof(dr->path), "%s", tx->bm.entries[b->v[i].dentry].path);
			dr->offset = b->v[i].doff;
			dr->len = b->v[i].dlen;
		}
		m.chunk.len = b->v[i].len;
		m.chunk.data = b->v[i].pin ? b->v[i].cached : b->data + b->v[i].off;
		if (conn_send_tail(tx->c, &m, b->seal ? &b->v[i].tail : NULL) < 0)
			break;
		if (b->seal) {
			tx->d->tails_sent++;
			tx->d->tails_sealed += !b->v[i].pin; /* sealed by this batch */
		}
		tx->progress_bytes += m.chunk.len;
		tx->zstd_chunks += m.chunk.codec >= BDR_CODEC_ZSTD;
	}
	conn_cork(c, false);
	return held;
}

static void batch_done(struct bdrd_job *job, int rc)
{
	struct batch *b = container_of(job, struct batch, job);
	struct send_xfer *tx = b->tx;

	b->done = true;
	b->rc = rc;
	/* In order: a batch waits for the ones taken before it. */
	while (tx->bhead && tx->bhead->done) {
		struct batch *h = tx->bhead;
		tx->bhead = h->next;
		if (!tx->bhead)
			tx->btail = NULL;
		tx->nbatches--;
		if (!(tx->c && !tx->ended && send_batch(tx, h)))
			batch_free(h);
	}
	if (tx->c && !tx->ended)
		row_save(tx, false);
	/* row_save saw the row cancelled or superseded: stop, or the idle
	 * connection (kept alive by PINGs) would hold the peer's slot. */
	if (tx->c && tx->ended)
		conn_close(tx->c, 0, "transfer no longer wanted");
	pump(tx);
	unref(tx);
}

/* Another live sender of the same version: a fan-out. */
static bool sending_too(const struct send_xfer *tx)
{
	for (const struct send_xfer *o = tx->d->senders; o; o = o->snext)
		if (o != tx && o->row.version == tx->row.version &&
		    !strcmp(o->row.package, tx->row.package))
			return true;
	return false;
}

static struct batch *batch_take(struct send_xfer *tx)
{
	struct batch *b = calloc(1, sizeof(*b));
	size_t raw = 0, cap = 0;
	uint32_t n = 0;

	while (n < BATCH_CHUNKS && tx->qhead + n < tx->qlen && (n == 0 || raw < BATCH_RAW)) {
		raw += tx->q[tx->qhead + n].ref.len;
		cap += BDR_ZLIB_BOUND(tx->q[tx->qhead + n].ref.len);
		n++;
	}
	if (!b || !(b->v = calloc(n, sizeof(*b->v))) || !(b->data = malloc(cap))) {
		batch_free(b);
		return NULL;
	}
	for (uint32_t i = 0; i < n; i++)
		b->v[i].q = tx->q[tx->qhead + i];
	b->n = n, b->cap = cap;
	b->dict = use_dict(tx);
	b->zstd = conn_caps(tx->c) & BDR_CAP_ZSTD;
	b->share = tx->d->ccache && sending_too(tx);
	b->seal = b->share && (conn_caps(tx->c) & BDR_CAP_SHARED_TAIL);
	tx->qhead += n;
	if (tx->qhead == tx->qlen)
		tx->qhead = tx->qlen = 0;
	return b;
}

static void pump(struct send_xfer *tx)
{
	while (tx->c && !tx->ended && tx->nbatches < PIPELINE && tx->qhead < tx->qlen &&
	       conn_backlog(tx->c) < tx->d->cfg.limits.max_inflight_bytes) {
		struct batch *b = batch_take(tx);

		if (!b) {
			conn_close(tx->c, -ENOMEM, "out of memory");
			return;
		}
		b->tx = tx;
		if (tx->btail)
			tx->btail->next = b;
		else
			tx->bhead = b;
		tx->btail = b;
		tx->nbatches++;
		tx->refs++;
		bdrd_work(tx->d, &b->job, false, batch_run, batch_done);
	}
	/* Otherwise sender_on_drain or batch_done comes back. */
}

void sender_on_drain(struct send_xfer *tx)
{
	/* Not before the OFFER: until load_done the manifest belongs to the
	 * load job (a drain of the handshake's bytes comes first). */
	tx->refs++; /* a failed send closes the connection, which drops its ref */
	if (tx->loaded && tx->moff < offered_len(tx))
		send_manifest_pieces(tx);
	/* Under a rate limit the queue drains long after the batches were
	 * made: progress is what has left since. */
	if (tx->loaded && tx->c && !tx->ended) {
		row_save(tx, false);
		if (tx->ended)
			conn_close(tx->c, 0, "transfer no longer wanted");
	}
	pump(tx);
	unref(tx);
}

/* ---- NEED and DONE ---- */

static int on_need(struct send_xfer *tx, const struct bdr_msg *m)
{
	uint32_t n = m->need.count;

	if (!tx->loaded || tx->moff < offered_len(tx))
		return -BDR_EFORMAT;
	if (tx->qlen + (size_t)n > tx->nlocs + BDR_WIRE_NEED_MAX)
		return -BDR_ELIMIT; /* more than the version holds: a confused peer */
	if (tx->qlen + n > tx->qcap) {
		uint32_t cap = tx->qcap ? tx->qcap : 1024;
		struct qref *q;
		while (cap < tx->qlen + n)
			cap *= 2;
		if (!(q = realloc(tx->q, cap * sizeof(*q))))
			return -ENOMEM;
		tx->q = q, tx->qcap = cap;
	}
	/* The receiver could not resolve a dictionary: most likely it lost
	 * the base version, so no more dictionaries for this transfer. */
	if (m->need.flags & BDR_NEED_PLAIN)
		tx->no_dict = true;
	for (uint32_t i = 0; i < n; i++) {
		struct bdr_chunk_ref ref;
		bdr_wire_need_ref(m, i, &ref);
		if (!loc_find(tx, &ref))
			return -BDR_ENOTFOUND;
		tx->q[tx->qlen++] = (struct qref){ ref, (m->need.flags & BDR_NEED_PLAIN) != 0 };
		tx->requested_bytes += ref.len;
	}
	pump(tx);
	return 0;
}

static void on_done(struct send_xfer *tx, const struct bdr_msg *m)
{
	uint64_t total = tx->row.bytes_total;
	int r;

	if (m->done.status == BDR_DONE_FAILED && m->done.error == -EBUSY) {
		/* Transient, not a failure: the destination still receives this
		 * version on a connection whose loss it has not noticed yet (our
		 * previous attempt). Back to the queue. */
		conn_close(tx->c, -EBUSY, "the destination is busy with this version");
		return;
	}
	if (m->done.status == BDR_DONE_FAILED && m->done.error == -ENOBUFS) {
		/* This site is at its memory budget there (other transfers of
		 * ours hold it): passing, so a retry, with its words. */
		conn_close(tx->c, -ENOBUFS, m->done.message);
		return;
	}
	if (m->done.status == BDR_DONE_FAILED && use_delta(tx) &&
	    (m->done.error == -BDR_ENOTFOUND || m->done.error == -BDR_EFORMAT ||
	     m->done.error == -BDR_EVERSION || m->done.error == -BDR_EHASH)) {
		/* The peer no longer holds the base, or could not use the delta:
		 * the same transfer again, with the manifest in full. */
		log_info(&tx->ctx, "offer", "the destination could not use the manifest delta (%s); "
			 "offering the manifest in full", m->done.message);
		tx->no_delta = true;
		tx->no_dict = true; /* nor, most likely, its files */
		send_offer(tx);
		return;
	}
	if (m->done.status == BDR_DONE_FAILED) {
		bdr_log(BDR_LOG_ERROR, &tx->ctx, "failed", "the destination refused or failed: %s (%s)",
			m->done.message, bdr_strerror(m->done.error));
		end(tx, BDR_XFER_FAILED, m->done.message);
	} else {
		tx->row.bytes_saved = total > tx->requested_bytes ? total - tx->requested_bytes : 0;
		if (m->done.status == BDR_DONE_HELD)
			tx->row.bytes_saved = total;
		r = bdr_db_peer_version_set(tx->d->db, tx->row.peer, tx->row.package, tx->row.version);
		if (r < 0)
			bdr_log_err(BDR_LOG_WARN, &tx->ctx, r, "transfer", "recording the peer's version: %s",
				    bdr_db_errmsg(tx->d->db));
		end(tx, BDR_XFER_DONE, NULL);
		log_info(&tx->ctx, m->done.status == BDR_DONE_HELD ? "held" : "activated",
			 "%s: %" PRIu64 " bytes on the wire, %" PRIu64 " bytes saved by delta, %" PRIu64
			 " chunks as zstd",
			 m->done.status == BDR_DONE_HELD ? "the destination already held it" :
			 "the destination verified and activated it", tx->row.bytes_sent, tx->row.bytes_saved,
			 tx->zstd_chunks);
	}
	conn_close(tx->c, 0, "transfer ended");
}

void sender_on_msg(struct send_xfer *tx, const struct bdr_msg *m)
{
	const uint64_t xfer = m->type == BDR_MSG_NEED ? m->need.xfer : m->done.xfer;
	int r = 0;

	if (xfer != (uint64_t)tx->row.id) {
		conn_close(tx->c, -BDR_EFORMAT, "message for an unknown transfer");
		return;
	}
	if (m->type == BDR_MSG_DONE)
		on_done(tx, m);
	else
		r = on_need(tx, m);
	if (r < 0)
		conn_close(tx->c, r, r == -BDR_ENOTFOUND ? "NEED names a chunk the version does not hold"
							: "NEED out of turn or too large");
}

enum bdr_db_priority sender_priority(const struct send_xfer *tx)
{
	return tx->row.priority;
}

void sender_pause(struct send_xfer *tx)
{
	struct bdr_msg m = { .type = BDR_MSG_CANCEL };
	struct conn *c = tx->c;

	if (!c || tx->ended)
		return;
	/* The receiver keeps the chunks it verified; the next window resumes. */
	m.cancel.xfer = (uint64_t)tx->row.id;
	bdr_wire_text(m.cancel.reason, "the schedule window closed");
	(void)conn_send(c, &m);
	if (!tx->c)
		return; /* the send failed and closed: detached, queued for a retry */
	tx->row.state = BDR_XFER_PAUSED;
	/* Due at once: the scheduler holds it until a window admits it. */
	tx->row.next_attempt_ns = bdrd_now_ns();
	tx->row.last_error[0] = 0;
	row_save(tx, true);
	tx->ended = true;
	log_info(&tx->ctx, "paused", "the schedule window closed; %" PRIu64 " bytes sent so far",
		 tx->row.bytes_sent);
	conn_close(c, 0, "schedule window closed");
}

struct send_xfer *sender_find(struct bdrd *d, int64_t id)
{
	for (struct send_xfer *tx = d->senders; tx; tx = tx->snext)
		if (tx->row.id == id && !tx->ended)
			return tx;
	return NULL;
}

void sender_cancel(struct send_xfer *tx, const char *why)
{
	struct bdr_msg m = { .type = BDR_MSG_CANCEL };
	struct conn *c = tx->c;

	tx->row.state = BDR_XFER_CANCELLED;
	bdrd_strcpy(tx->row.last_error, sizeof(tx->row.last_error), why);
	if (!c || tx->ended)
		return;
	/* The receiver keeps the chunks it verified, for a later push. */
	m.cancel.xfer = (uint64_t)tx->row.id;
	bdr_wire_text(m.cancel.reason, why);
	(void)conn_send(c, &m);
	if (!tx->c)
		return; /* the send failed and closed: detached */
	tx->ended = true;
	log_info(&tx->ctx, "cancelled", "%s; %" PRIu64 " bytes sent", why, tx->row.bytes_sent);
	conn_close(c, 0, why);
}

/* A failed attempt: back to the queue after retry_delay_s (the receiver
 * keeps what it verified), or failed once `retries` attempts in a row made
 * no progress. A stopping daemon's cut is no failure: it resumes at the
 * next start. */
static void requeue(struct send_xfer *tx, int err, const char *why)
{
	const struct bdr_peer_config *pc = bdr_config_peer(&tx->d->cfg, tx->row.peer);
	char reason[sizeof(tx->row.last_error)];
	struct bdr_failure f;

	snprintf(reason, sizeof(reason), "%s: %s", why, bdrd_strerror(err));
	bdr_policy_failure(&tx->d->cfg.limits, pc ? (unsigned)pc->address.n : 0, tx->row.address_index,
			   tx->row.attempts, tx->progress_bytes > 0, tx->d->stopping, bdrd_now_ns(), &f);
	tx->row.state = f.state;
	tx->row.attempts = f.attempts;
	tx->row.address_index = f.address;
	tx->row.next_attempt_ns = f.next_attempt_ns;
	if (tx->d->stopping) {
		bdrd_strcpy(tx->row.last_error, sizeof(tx->row.last_error), "interrupted by a stopping daemon");
	} else if (f.state == BDR_XFER_FAILED) {
		snprintf(tx->row.last_error, sizeof(tx->row.last_error),
			 "gave up: every address failed %u times; last: %.200s",
			 tx->d->cfg.limits.retries + 1, reason);
		bdr_log(BDR_LOG_ERROR, &tx->ctx, "failed", "%s", tx->row.last_error);
	} else if (f.moved) {
		bdrd_strcpy(tx->row.last_error, sizeof(tx->row.last_error), reason);
		bdr_log(BDR_LOG_WARN, &tx->ctx, "failover", "%s; address %u had its %u retries, trying "
			"address %u", reason, f.address - 1, tx->d->cfg.limits.retries, f.address);
	} else {
		bdrd_strcpy(tx->row.last_error, sizeof(tx->row.last_error), reason);
		bdr_log(BDR_LOG_WARN, &tx->ctx, "retry", "attempt %u on address %u failed: %s; retrying in %u s",
			f.attempts, f.address, reason, tx->d->cfg.limits.retry_delay_s);
	}
	row_save(tx, true);
}

void sender_fail(struct send_xfer *tx, const char *why)
{
	if (tx->ended)
		return;
	tx->row.attempts++;
	bdr_log(BDR_LOG_ERROR, &tx->ctx, "failed", "%s; not retried: the keys pinned on either "
		"side must be put right, then the push sent again", why);
	end(tx, BDR_XFER_FAILED, why);
}

void sender_detach(struct send_xfer *tx, int err, const char *why)
{
	/* A stopping daemon closes gracefully: its write queue still goes out
	 * (conn_close lingers for it), and the receiver keeps those chunks. */
	if (tx->c)
		tx->row.bytes_sent = tx->d->stopping ? tx->wire_base + conn_wire_out(tx->c) : wire_sent(tx);
	tx->c = NULL;
	if (!tx->ended)
		requeue(tx, err, why);
	tx->ended = true;
	unref(tx);
}
