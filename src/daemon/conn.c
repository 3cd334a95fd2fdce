/* One TCP connection to a peer site: connect (addresses in order) or accept,
 * the channel's handshake, encrypted messages in and out, backpressure,
 * keepalive, and routing each message to the sender or receiver half.
 *
 * Strangers: an incoming connection is in the unauthenticated pool
 * (guard.h) from accept until the peer's AUTH verifies, with a deadline of
 * handshake_timeout_s; then it counts against max_connections, its peer's
 * max_connections_per_peer and its peer's memory budget (CONN_COST). What
 * strangers' connections do is logged at most UNAUTH_LOG_BURST lines per
 * window, then counted in one line.
 *
 * Ownership: a conn embeds its two handles (tcp, timer) and is freed when
 * both have closed. The daemon's list holds it from creation to free. The
 * outgoing transfer (tx) and the incoming ones (rx) are detached when the
 * connection closes; they outlive it only while a job holds them. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "bdr/channel.h"
#include "bdr/error.h"
#include "daemon/daemon.h"
#include "daemon/guard.h"
#include "daemon/policy.h"
#include "daemon/schedule.h"
#include "daemon/throttle.h"

#define READ_BUF (64u * 1024)
#define LINGER_MS 5000 /* a closing connection waits this long for its last bytes */
#define UNAUTH_LOG_WINDOW_NS (10 * 1000000000ll)
#define UNAUTH_LOG_BURST 10
/* What an authenticated incoming connection may make us hold: the struct
 * (its read buffer) and the channel's input and message buffers, each up
 * to one maximal frame. Taken from its peer's budget. */
#define CONN_COST (sizeof(struct conn) + 2 * (uint64_t)BDR_WIRE_FRAME_MAX)

struct conn {
	uv_tcp_t tcp;              /* embedded; see the file comment */
	uv_timer_t timer;          /* connect/handshake timeout, then keepalive */
	uv_timer_t thr_timer;      /* wakes the throttled writer */
	uv_connect_t connect_req;
	uv_getaddrinfo_t gai;
	struct bdrd *d;
	struct conn *next;         /* in d->conns */
	struct bdr_channel *ch;    /* owned */
	struct bdr_wbuf msg;       /* reused encoding buffer */
	bool outgoing;
	bool ready;                /* the peer authenticated */
	bool closing;
	bool read_paused;
	bool counted;              /* in its peer's nout */
	bool unauth;               /* incoming, in the strangers' pool (d->n_unauth) */
	bool admitted;             /* incoming: in its peer's n_in, CONN_COST taken */
	int64_t accepted;          /* incoming: uv_hrtime() at accept */
	char src[48];              /* incoming: the source address, without port */
	enum bdr_db_priority prio; /* outgoing: of the push, for the schedule */
	int handles_open;
	char peer[BDR_MAX_SITE_NAME + 1]; /* configured name (outgoing), or from HELLO */
	char addr[BDR_CONFIG_MAX_HOST + 8];
	unsigned addr_index;       /* outgoing: which address is being tried */
	size_t backlog;            /* bytes sealed and not yet written by the kernel:
				    * waiting for the throttle, or in uv_write */
	/* The address's rate limit, applied to sealed bytes (what the wire
	 * carries). Output the throttle does not allow yet waits in pq. */
	struct bdr_throttle thr;
	bool throttled;
	bool corked;               /* sealed frames gather until conn_cork(false) */
	int thr_hour;
	int64_t thr_hour_at;       /* realtime ns of the next local hour check */
	struct pending *pq_head, *pq_tail; /* owned */
	struct hold *holds;        /* owned: for output not yet flushed */
	int64_t last_rx_ns, last_tx_ns;
	struct send_xfer *tx;      /* outgoing: the push this connection carries */
	struct recv_xfer *rx;      /* incoming: transfers being received (list) */
	uint8_t rbuf[READ_BUF];
};

struct pending {
	struct pending *next;
	uint8_t *buf; /* owned */
	size_t len, off;
};

/* Memory that output sealed by reference points into, kept until the
 * write that carries it is done (conn_hold). */
struct hold {
	struct hold *next;
	void (*release)(void *arg);
	void *arg;
};

struct write_req {
	uv_write_t req;
	struct conn *c;
	uint8_t *buf; /* owned */
	size_t blen;  /* its bytes */
	size_t len;   /* bytes written, referenced tails included */
	struct hold *holds; /* owned: released when done */
};

static void ctx_of(const struct conn *c, struct bdr_log_ctx *ctx)
{
	*ctx = (struct bdr_log_ctx){ .peer = c->peer[0] ? c->peer : c->addr };
}

void conn_log_ctx(const struct conn *c, struct bdr_log_ctx *ctx) { ctx_of(c, ctx); }
const char *conn_peer(const struct conn *c) { return c->peer; }
uint32_t conn_caps(const struct conn *c) { return bdr_channel_caps(c->ch); }
struct bdrd *conn_daemon(const struct conn *c) { return c->d; }
struct send_xfer *conn_sender(struct conn *c) { return c->tx; }
bool conn_idle_outgoing(const struct conn *c) { return c->outgoing && !c->tx && !c->rx; }

struct conn *conn_find(struct bdrd *d, const char *peer)
{
	for (struct conn *c = d->conns; c; c = c->next)
		if (c->ready && !c->closing && !strcmp(c->peer, peer))
			return c;
	return NULL;
}
void conn_set_sender(struct conn *c, struct send_xfer *tx) { c->tx = tx; }
struct recv_xfer **conn_receivers(struct conn *c) { return &c->rx; }
size_t conn_backlog(const struct conn *c) { return c->backlog; }

uint64_t conn_wire_out(const struct conn *c)
{
	struct bdr_channel_stats st;

	bdr_channel_stats(c->ch, &st);
	return st.wire_out;
}

static int peer_key(void *arg, const char *site, uint8_t pk[BDR_PK_LEN])
{
	struct conn *c = arg;
	const struct bdr_peer_config *p = bdr_config_peer(&c->d->cfg, site);

	if (!p || !strcmp(site, c->d->cfg.site.name))
		return -BDR_EKEY;
	/* An outgoing connection must reach the site it was opened for. */
	if (c->outgoing && strcmp(site, c->peer))
		return -BDR_EKEY;
	memcpy(pk, p->public_key, BDR_PK_LEN);
	return 0;
}

static void release(struct hold **list)
{
	while (*list) {
		struct hold *h = *list;
		*list = h->next;
		h->release(h->arg);
		free(h);
	}
}

static void conn_free_maybe(struct conn *c)
{
	struct conn **pp;

	if (c->handles_open > 0)
		return;
	for (pp = &c->d->conns; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	c->d->nconns--;
	while (c->pq_head) {
		struct pending *p = c->pq_head;
		c->pq_head = p->next;
		free(p->buf);
		free(p);
	}
	bdr_channel_free(c->ch); /* its references go unwritten: now release */
	release(&c->holds);
	bdr_wbuf_free(&c->msg);
	free(c);
}

static void handle_closed(uv_handle_t *h)
{
	struct conn *c = h->data;

	c->handles_open--;
	conn_free_maybe(c);
}

static struct conn *conn_new(struct bdrd *d, bool outgoing)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->d = d;
	c->outgoing = outgoing;
	bdr_wbuf_init(&c->msg, BDR_WIRE_MSG_MAX);
	uv_tcp_init(d->loop, &c->tcp);
	uv_timer_init(d->loop, &c->timer);
	uv_timer_init(d->loop, &c->thr_timer);
	c->tcp.data = c->timer.data = c->thr_timer.data = c;
	c->handles_open = 3;
	c->last_rx_ns = c->last_tx_ns = bdrd_now_ns();
	c->next = d->conns;
	d->conns = c;
	d->nconns++;
	return c;
}

static int channel_open(struct conn *c)
{
	struct bdr_channel_opts o = {
		.initiator = c->outgoing,
		.site = c->d->cfg.site.name,
		.key = &c->d->key,
		.caps = BDR_CAP_ZLIB | BDR_CAP_RESUME | BDR_CAP_MANIFEST_DELTA | BDR_CAP_REPORT |
			BDR_CAP_SHARED_TAIL |
			(c->d->cfg.site.compression != BDR_COMPRESSION_ZLIB ? BDR_CAP_ZLIB_DICT : 0) |
			(c->d->cfg.site.compression == BDR_COMPRESSION_ZSTD ? BDR_CAP_ZSTD : 0),
		.peer_key = peer_key,
		.peer_key_arg = c,
	};

	return bdr_channel_new(&c->ch, &o);
}

/* ---- writing ---- */

static void write_done(uv_write_t *req, int status)
{
	struct write_req *w = container_of(req, struct write_req, req);
	struct conn *c = w->c;
	size_t limit = c->d->cfg.limits.max_inflight_bytes;

	c->backlog -= w->len;
	/* A sender's next batch goes into this buffer; others let it go. */
	if (c->tx && !c->closing && status >= 0)
		bdr_channel_recycle_out(c->ch, w->buf, w->blen);
	else
		free(w->buf);
	release(&w->holds);
	free(w);
	if (status < 0) {
		conn_close(c, status, "write failed");
		return;
	}
	if (c->tx && !c->closing && c->backlog < limit / 2)
		sender_on_drain(c->tx);
}

/* Writes buf (len bytes) with refs[0..n) in place (see
 * bdr_channel_take_out_refs); holds, taken over, are released once it is
 * written. Owns buf and refs. */
static int write_bufs(struct conn *c, uint8_t *buf, size_t len, struct bdr_channel_ref *refs,
		      size_t n, struct hold *holds)
{
	struct write_req *w = calloc(1, sizeof(*w));
	uv_buf_t one, *v = n ? malloc((2 * n + 1) * sizeof(*v)) : &one;
	size_t nv = 0, from = 0, total = len;
	int r = -ENOMEM;

	if (w && v) {
		for (size_t i = 0; i < n; i++) {
			if (refs[i].at > from)
				v[nv++] = uv_buf_init((char *)buf + from, (unsigned)(refs[i].at - from));
			v[nv++] = uv_buf_init((char *)refs[i].p, refs[i].len);
			from = refs[i].at, total += refs[i].len;
		}
		if (len > from || nv == 0)
			v[nv++] = uv_buf_init((char *)buf + from, (unsigned)(len - from));
		*w = (struct write_req){ .c = c, .buf = buf, .blen = len, .len = total, .holds = holds };
		/* libuv copies the buffer list it cannot write at once */
		r = uv_write(&w->req, (uv_stream_t *)&c->tcp, v, (unsigned)nv, write_done);
	}
	if (v != &one)
		free(v);
	free(refs);
	if (r < 0) {
		free(buf);
		free(w);
		release(&holds);
		return r;
	}
	c->last_tx_ns = bdrd_now_ns();
	return 0;
}

static int write_buf(struct conn *c, uint8_t *buf, size_t len)
{
	return write_bufs(c, buf, len, NULL, 0, NULL);
}

/* The throttle follows the local hour of the address's rate table. */
static void throttle_hour(struct conn *c, int64_t mono)
{
	int64_t now = bdrd_now_ns();
	int day, hour;

	if (now < c->thr_hour_at || bdr_schedule_local(now, &day, &hour) < 0)
		return;
	c->thr_hour_at = now + 1000000000ll; /* within a second of the change */
	if (hour != c->thr_hour) {
		c->thr_hour = hour;
		bdr_throttle_set_hour(&c->thr, hour, mono);
	}
}

static void on_thr_timer(uv_timer_t *t);

/* Writes what the throttle allows of the pending output, in pieces of any
 * size (the sealed stream may be cut anywhere), and sleeps on a timer for
 * the rest. */
static int write_pending(struct conn *c)
{
	int64_t now = (int64_t)uv_hrtime();

	throttle_hour(c, now);
	while (c->pq_head) {
		struct pending *p = c->pq_head;
		size_t left = p->len - p->off;
		uint64_t n = bdr_throttle_allow(&c->thr, now, left);
		uint8_t *piece;
		int r;

		if (!n) {
			int64_t wait = bdr_throttle_wait_ns(&c->thr, now, left);
			uv_timer_start(&c->thr_timer, on_thr_timer, (uint64_t)(wait + 999999) / 1000000, 0);
			return 0;
		}
		if (!(piece = malloc(n)))
			return -ENOMEM;
		memcpy(piece, p->buf + p->off, n);
		bdr_throttle_consume(&c->thr, now, n);
		p->off += n;
		if (p->off == p->len) {
			c->pq_head = p->next;
			if (!c->pq_head)
				c->pq_tail = NULL;
			free(p->buf);
			free(p);
		}
		if ((r = write_buf(c, piece, n)) < 0)
			return r;
	}
	return 0;
}

static void on_thr_timer(uv_timer_t *t)
{
	struct conn *c = t->data;
	int r;

	if (c->closing)
		return;
	if ((r = write_pending(c)) < 0)
		conn_close(c, r, "write failed");
}

void conn_set_rate(struct conn *c, const struct bdr_rate_spec *spec)
{
	int64_t now = (int64_t)uv_hrtime();
	int day, hour = 0;

	bdr_schedule_local(bdrd_now_ns(), &day, &hour);
	if (!c->throttled) {
		bdr_throttle_init(&c->thr, spec, hour, now);
	} else {
		bdr_throttle_set_spec(&c->thr, spec, now);
		bdr_throttle_set_hour(&c->thr, hour, now);
	}
	c->thr_hour = hour;
	c->thr_hour_at = bdrd_now_ns() + 1000000000ll;
	c->throttled = spec->mode != BDR_RATE_UNLIMITED;
	if (!c->throttled && c->pq_head && !c->closing)
		write_pending(c); /* whatever waited goes now */
}

static int flush(struct conn *c)
{
	struct pending *p;
	uint8_t *buf;
	size_t len;

	size_t total = bdr_channel_out_len(c->ch); /* referenced tails included */

	if (!total) {
		release(&c->holds);
		return 0;
	}
	if (c->holds && !c->throttled && !c->pq_head) {
		struct bdr_channel_ref *refs;
		struct hold *h = c->holds;
		size_t n;
		bdr_channel_take_out_refs(c->ch, &buf, &len, &refs, &n);
		c->holds = NULL;
		c->backlog += total;
		return write_bufs(c, buf, len, refs, n, h);
	}
	bdr_channel_take_out(c->ch, &buf, &len); /* referenced tails copied in */
	release(&c->holds);
	if (!buf)
		return -ENOMEM; /* they could not be */
	c->backlog += len;
	if (!c->throttled && !c->pq_head)
		return write_buf(c, buf, len);
	if (!(p = calloc(1, sizeof(*p)))) {
		free(buf);
		return -ENOMEM;
	}
	p->buf = buf, p->len = len;
	if (c->pq_tail)
		c->pq_tail->next = p;
	else
		c->pq_head = p;
	c->pq_tail = p;
	if (uv_is_active((uv_handle_t *)&c->thr_timer))
		return 0; /* the timer comes back for it */
	return write_pending(c);
}

/* Encodes, seals and writes m; a failure is returned, the caller closes.
 * With tail, m is a CHUNK whose data is tail's plaintext: only its head is
 * encoded, and the tail follows as it is. */
static int send_msg(struct conn *c, const struct bdr_msg *m, const struct bdr_channel_tail *tail)
{
	struct bdr_diag dg;
	uint8_t *buf;
	size_t len;
	int r;

	if (c->closing)
		return -ECONNRESET;
	r = tail ? bdr_wire_encode_chunk_head(m, &c->msg, &dg) : bdr_wire_encode(m, &c->msg, &dg);
	if (r == 0)
		r = bdr_wbuf_finish(&c->msg, &buf, &len);
	else
		bdr_wbuf_free(&c->msg);
	bdr_wbuf_init(&c->msg, BDR_WIRE_MSG_MAX);
	if (r < 0) {
		struct bdr_log_ctx ctx;
		ctx_of(c, &ctx);
		return bdr_log_err(BDR_LOG_ERROR, &ctx, r, "send", "cannot encode %s: %s",
				   bdr_wire_type_name(m->type), dg.msg);
	}
	if (!tail)
		r = bdr_channel_send(c->ch, buf, len);
	else if (c->holds) /* the caller keeps the tail until the write is done */
		r = bdr_channel_send_split_ref(c->ch, buf, len, tail);
	else
		r = bdr_channel_send_split(c->ch, buf, len, tail);
	free(buf);
	if (r == 0 && !c->corked)
		r = flush(c);
	return r;
}

int conn_hold(struct conn *c, void (*fn)(void *arg), void *arg)
{
	struct hold *h = malloc(sizeof(*h));

	if (!h)
		return -ENOMEM;
	*h = (struct hold){ c->holds, fn, arg };
	c->holds = h;
	return 0;
}

void conn_reserve(struct conn *c, size_t n)
{
	/* Only a hint: without the room, frames grow the output as they come. */
	(void)bdr_channel_reserve_out(c->ch, n);
}

void conn_cork(struct conn *c, bool cork)
{
	c->corked = cork;
	if (!cork && !c->closing && flush(c) < 0)
		conn_close(c, -ENOMEM, "out of memory");
}

int conn_send(struct conn *c, const struct bdr_msg *m)
{
	return conn_send_tail(c, m, NULL);
}

int conn_send_tail(struct conn *c, const struct bdr_msg *m, const struct bdr_channel_tail *tail)
{
	int r = send_msg(c, m, tail);

	if (r < 0)
		conn_close(c, r, "send failed");
	return r;
}

/* ---- closing ---- */

static void close_handles(struct conn *c)
{
	if (!uv_is_closing((uv_handle_t *)&c->thr_timer))
		uv_close((uv_handle_t *)&c->thr_timer, handle_closed);
	if (!uv_is_closing((uv_handle_t *)&c->timer))
		uv_close((uv_handle_t *)&c->timer, handle_closed);
	if (!uv_is_closing((uv_handle_t *)&c->tcp))
		uv_close((uv_handle_t *)&c->tcp, handle_closed);
}

static void shutdown_done(uv_shutdown_t *req, int status)
{
	struct conn *c = req->data;

	(void)status; /* UV_ECANCELED when linger_expired closed the socket */
	free(req);
	close_handles(c);
}

static void linger_expired(uv_timer_t *t)
{
	close_handles(t->data);
}

static void send_error(struct conn *c, int err, const char *why)
{
	struct bdr_msg m = { .type = BDR_MSG_ERROR };

	/* No channel yet (the connect itself failed): nothing to tell. */
	if (!c->ch || !bdr_channel_can_send(c->ch) || err >= 0)
		return;
	m.error.code = err;
	bdr_wire_text(m.error.message, why);
	/* Best effort: conn_send would close c again on failure (and so send
	 * another ERROR, without end, when the socket is already broken). */
	(void)send_msg(c, &m, NULL);
}

/* ---- strangers ---- */

/* An incoming connection whose peer has not proved who it is. */
static bool stranger(const struct conn *c)
{
	return !c->outgoing && !c->peer[0];
}

/* Whether a stranger's event may have a line of its own: the first
 * UNAUTH_LOG_BURST of each window do; the rest are counted and reported
 * by conn_flood_report, so a flood of connections is not a flood of lines. */
static bool stranger_log_ok(struct bdrd *d)
{
	int64_t now = (int64_t)uv_hrtime();

	conn_flood_report(d);
	if (!d->strangers.window_ns)
		d->strangers.window_ns = now;
	if (d->strangers.logged < UNAUTH_LOG_BURST) {
		d->strangers.logged++;
		return true;
	}
	d->strangers.quiet++;
	return false;
}

void conn_flood_report(struct bdrd *d)
{
	const struct bdr_config_limits *l = &d->cfg.limits;
	int64_t now = (int64_t)uv_hrtime();

	if (!d->strangers.window_ns || now - d->strangers.window_ns < UNAUTH_LOG_WINDOW_NS)
		return;
	if (d->strangers.quiet || d->strangers.shed)
		bdr_log(BDR_LOG_WARN, NULL, "flood", "in the last %" PRId64 " s: %" PRIu64 " more "
			"unauthenticated connections closed without a line each, %" PRIu64 " of them to "
			"make room (max_unauth_connections %u, max_unauth_per_address %u; last from %s); "
			"%u unauthenticated now", (int64_t)((now - d->strangers.window_ns) / 1000000000),
			d->strangers.quiet, d->strangers.shed, l->max_unauth_connections,
			l->max_unauth_per_address, d->strangers.last_src[0] ? d->strangers.last_src : "-",
			d->n_unauth);
	d->strangers.window_ns = 0;
	d->strangers.logged = 0;
	d->strangers.quiet = d->strangers.shed = 0;
}

/* err < 0 and why: logged and, where the channel allows, told to the peer
 * in an ERROR; err 0: a quiet close (the work is done, or we stop). */
void conn_close(struct conn *c, int err, const char *why)
{
	struct bdr_log_ctx ctx;
	uv_shutdown_t *sr;

	if (c->closing)
		return;
	ctx_of(c, &ctx);
	if (err < 0 && err != UV_EOF && why)
		send_error(c, err, why);
	c->closing = true;
	if (c->unauth) {
		c->unauth = false;
		c->d->n_unauth--;
	}
	if (err < 0 && (!stranger(c) || stranger_log_ok(c->d)))
		bdr_log(BDR_LOG_WARN, &ctx, "disconnect", "%s: %s (%s)", why ? why : "closed",
			err == UV_EOF ? "peer closed the connection" :
			err > -BDR_E_FIRST ? uv_strerror(err) : bdr_strerror(err), c->addr);
	else if (c->ready) /* a peer's clean close: the end of its work here */
		log_info(&ctx, "disconnect", "%s (%s)", why ? why : "closed", c->addr);
	else
		log_debug(&ctx, "disconnect", "%s (%s)", why ? why : "closed", c->addr);
	if (c->tx)
		sender_detach(c->tx, err < 0 ? err : -ECONNRESET, why ? why : "connection closed");
	c->tx = NULL;
	receiver_detach_all(c);
	if (c->ready) {
		bdrd_report_on_close(c);
		bdrd_remove_on_close(c);
	}
	if (c->admitted) {
		struct bdrd_peer *p = bdrd_peer_get(c->d, c->peer);
		if (p && p->n_in)
			p->n_in--;
		bdrd_budget_give(c->d, c->peer, CONN_COST);
		c->admitted = false;
	}
	if (c->counted) {
		struct bdrd_peer *p = bdrd_peer_get(c->d, c->peer);
		if (p && p->nout)
			p->nout--;
		c->counted = false;
	}
	uv_timer_stop(&c->timer);
	uv_read_stop((uv_stream_t *)&c->tcp);
	/* Let queued bytes (an ERROR, a DONE) reach the peer before closing,
	 * but not forever: a peer that stops reading would otherwise keep c
	 * (and, at a stop, the whole daemon) alive. */
	sr = c->backlog && uv_is_writable((uv_stream_t *)&c->tcp) ? calloc(1, sizeof(*sr)) : NULL;
	if (sr) {
		sr->data = c;
		if (uv_shutdown(sr, (uv_stream_t *)&c->tcp, shutdown_done) == 0) {
			uv_timer_start(&c->timer, linger_expired, LINGER_MS, 0);
			return;
		}
		free(sr);
	}
	close_handles(c);
}

/* ---- reading ---- */

/* An incoming connection whose peer just authenticated leaves the
 * strangers' pool and joins its peer's connections, within the peer's
 * limits: 0, or -1 when it was refused (and closed, the peer told why). */
static int admit(struct conn *c)
{
	const struct bdr_config_limits *l = &c->d->cfg.limits;
	struct bdrd_peer *p;
	char why[300];
	int r;

	snprintf(c->peer, sizeof(c->peer), "%s", bdr_channel_peer_site(c->ch));
	if (c->unauth) {
		c->unauth = false;
		c->d->n_unauth--;
	}
	if (!(p = bdrd_peer_get(c->d, c->peer))) {
		conn_close(c, -ENOMEM, "out of memory");
		return -1;
	}
	if (c->d->nconns - c->d->n_unauth > l->max_connections) {
		snprintf(why, sizeof(why), "too many connections (max_connections %u)", l->max_connections);
		conn_close(c, -EMFILE, why);
		return -1;
	}
	if (p->n_in >= l->max_connections_per_peer) {
		snprintf(why, sizeof(why), "site '%s' already has %u connections here "
			 "(max_connections_per_peer %u)", c->peer, p->n_in, l->max_connections_per_peer);
		conn_close(c, -EMFILE, why);
		return -1;
	}
	if ((r = bdrd_budget_take(c->d, c->peer, CONN_COST, "a connection's buffers", why,
				  sizeof(why))) < 0) {
		conn_close(c, r, why);
		return -1;
	}
	p->n_in++;
	c->admitted = true;
	return 0;
}

static void on_ready(struct conn *c)
{
	struct bdr_log_ctx ctx;

	if (!c->outgoing && admit(c) < 0)
		return;
	c->ready = true;
	ctx_of(c, &ctx);
	log_info(&ctx, "connected", "%s %s, protocol %u, capabilities 0x%x",
		 c->outgoing ? "to" : "from", c->addr, bdr_channel_version(c->ch),
		 bdr_channel_caps(c->ch));
	if (c->outgoing && c->tx)
		sender_start(c->tx, c);
	bdrd_report_on_ready(c);
	bdrd_remove_on_ready(c);
}

/* Which messages each end of a connection may receive: the initiator
 * sends pushes, the responder receives them. */
static bool direction_ok(const struct conn *c, uint8_t type)
{
	switch (type) {
	case BDR_MSG_OFFER: case BDR_MSG_MANIFEST: case BDR_MSG_CHUNK: case BDR_MSG_CANCEL:
		return !c->outgoing;
	case BDR_MSG_NEED: case BDR_MSG_DONE:
		return c->outgoing;
	default:
		return true;
	}
}

static void dispatch(struct conn *c, const uint8_t *buf, size_t len)
{
	struct bdr_msg *m = malloc(sizeof(*m));
	struct bdr_diag dg;
	int r;

	if (!m) {
		conn_close(c, -ENOMEM, "out of memory");
		return;
	}
	r = bdr_wire_decode(buf, len, m, &dg);
	if (r < 0) {
		conn_close(c, r, dg.msg);
	} else if (!direction_ok(c, m->type)) {
		snprintf(dg.msg, sizeof(dg.msg), "%s not allowed from this end",
			 bdr_wire_type_name(m->type));
		conn_close(c, -BDR_EFORMAT, dg.msg);
	} else if (m->type == BDR_MSG_PING) {
		/* Not while our bytes pile up: a peer that sends PINGs and never
		 * reads would grow the backlog without bound. */
		m->type = BDR_MSG_PONG;
		if (c->backlog < c->d->cfg.limits.max_inflight_bytes)
			conn_send(c, m);
	} else if (m->type == BDR_MSG_ERROR) {
		snprintf(dg.msg, sizeof(dg.msg), "peer reported: %.400s", m->error.message);
		conn_close(c, m->error.code, dg.msg);
	} else if (m->type == BDR_MSG_NEED || m->type == BDR_MSG_DONE) {
		if (c->tx)
			sender_on_msg(c->tx, m);
		else
			conn_close(c, -BDR_EFORMAT, "message for no transfer");
	} else if (m->type == BDR_MSG_PONG) {
		bdrd_report_on_pong(c, m->ping.cookie);
		bdrd_remove_on_pong(c, m->ping.cookie);
	} else if (m->type == BDR_MSG_REPORT) {
		bdrd_report_on_msg(c, m);
	} else if (m->type == BDR_MSG_REMOVE) {
		bdrd_remove_on_msg(c, m);
	} else {
		receiver_on_msg(c, m);
	}
	free(m);
}

static void read_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	struct conn *c = h->data;

	(void)hint;
	*b = uv_buf_init((char *)c->rbuf, sizeof(c->rbuf));
}

static void feed(struct conn *c, const uint8_t *p, size_t n)
{
	struct bdr_diag dg = { "" };
	const uint8_t *msg;
	size_t used, mlen;
	int r;

	while (n && !c->closing) {
		r = bdr_channel_feed(c->ch, p, n, &used, &dg);
		p += used, n -= used;
		if (r == 0 && !c->ready && bdr_channel_ready(c->ch))
			on_ready(c);
		while (r == 0 && !c->closing && (r = bdr_channel_recv(c->ch, &msg, &mlen)) == 1) {
			dispatch(c, msg, mlen);
			r = 0;
		}
		if (r == 0 && !c->closing)
			r = flush(c); /* the handshake's answer */
		if (r < 0 && !c->closing) {
			/* What the channel put out (a HELLO naming our versions, a
			 * refusal) goes first. */
			flush(c);
			/* A key mismatch or a refusal of our key is no passing
			 * fault: retrying cannot mend it (proto/wire.md, "Refusal"). */
			if (c->tx && bdr_channel_pin_failed(c->ch))
				sender_fail(c->tx, dg.msg);
			conn_close(c, r, dg.msg[0] ? dg.msg : "channel failed");
		}
		if (!used && r == 0)
			break;
	}
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
	struct conn *c = s->data;

	if (nread < 0) {
		/* A peer that hangs up with nothing running is done, not lost.
		 * Before the peer's AUTH, a reset or an EOF is a network fault
		 * or a peer shedding strangers, never a key: a peer that refuses
		 * our key says so, authenticated (proto/wire.md, "Refusal"). */
		if (nread == UV_EOF && c->ready && !c->tx && !c->rx)
			conn_close(c, 0, "peer closed the connection");
		else
			conn_close(c, (int)nread, c->ready ? "connection lost" :
				   "connection lost during the handshake");
		return;
	}
	c->last_rx_ns = bdrd_now_ns();
	feed(c, (const uint8_t *)b->base, (size_t)nread);
}

void conn_pause_read(struct conn *c, bool pause)
{
	if (c->closing || pause == c->read_paused)
		return;
	c->read_paused = pause;
	if (pause)
		uv_read_stop((uv_stream_t *)&c->tcp);
	else
		uv_read_start((uv_stream_t *)&c->tcp, read_alloc, on_read);
}

/* ---- timers: handshake deadline, keepalive, idle ---- */

static void connect_failed(struct conn *c, int err, const char *what);

static void on_timer(uv_timer_t *t)
{
	struct conn *c = t->data;
	const struct bdr_config_limits *l = &c->d->cfg.limits;
	int64_t now = bdrd_now_ns(), idle = (int64_t)l->idle_timeout_s * 1000000000ll;

	if (!c->ready) {
		if (c->outgoing && !c->ch) {
			/* This address did not resolve or answer in time: the next. */
			connect_failed(c, UV_ETIMEDOUT, "connecting to");
			return;
		}
		conn_close(c, -ETIMEDOUT, c->outgoing ? "connect or handshake timed out" : "handshake timed out");
		return;
	}
	if (now - c->last_rx_ns > idle) {
		conn_close(c, -ETIMEDOUT, "peer silent for too long");
		return;
	}
	if (now - c->last_tx_ns > idle / 3) {
		struct bdr_msg m = { .type = BDR_MSG_PING, .ping.cookie = (uint64_t)now };
		conn_send(c, &m);
	}
	uv_timer_start(&c->timer, on_timer, l->idle_timeout_s * 1000 / 3, 0);
}

static int start_session(struct conn *c)
{
	int r = channel_open(c);

	if (r == 0)
		r = uv_tcp_nodelay(&c->tcp, 1);
	if (r == 0)
		r = uv_read_start((uv_stream_t *)&c->tcp, read_alloc, on_read);
	if (r == 0)
		r = flush(c);
	/* A stranger has less time than a peer we dial: it cannot hold a
	 * place in the pool for long. */
	if (r == 0)
		uv_timer_start(&c->timer, on_timer, (c->outgoing ? c->d->cfg.limits.connect_timeout_s :
						     c->d->cfg.limits.handshake_timeout_s) * 1000ull, 0);
	return r;
}

/* "host:port" into buf (n), and the host alone into src (nsrc). */
static void addr_name(const struct sockaddr *sa, char *buf, size_t n, char *src, size_t nsrc)
{
	char host[64] = "?";
	int port = 0;

	if (sa->sa_family == AF_INET) {
		uv_ip4_name((const struct sockaddr_in *)sa, host, sizeof(host));
		port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
		snprintf(buf, n, "%s:%d", host, port);
	} else if (sa->sa_family == AF_INET6) {
		uv_ip6_name((const struct sockaddr_in6 *)sa, host, sizeof(host));
		port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
		snprintf(buf, n, "[%s]:%d", host, port);
	} else {
		snprintf(buf, n, "?");
	}
	if (src)
		snprintf(src, nsrc, "%s", host);
}

/* Closes strangers' connections until one from src fits the pool
 * (guard.h says which). Quietly: conn_flood_report counts them. */
static void make_room(struct bdrd *d, const char *src)
{
	const struct bdr_config_limits *l = &d->cfg.limits;
	struct bdr_unauth *v = malloc((d->n_unauth + 1) * sizeof(*v));
	size_t n = 0;
	long k;

	if (!v)
		return; /* the deadline still clears the pool */
	for (struct conn *c = d->conns; c; c = c->next)
		if (c->unauth)
			v[n++] = (struct bdr_unauth){ c->src, c->accepted, c };
	while ((k = bdr_guard_victim(v, n, src, l->max_unauth_connections,
				     l->max_unauth_per_address)) >= 0) {
		struct conn *x = v[k].conn;
		if (!d->strangers.window_ns)
			d->strangers.window_ns = (int64_t)uv_hrtime();
		d->strangers.shed++;
		d->strangers.quiet++;
		snprintf(d->strangers.last_src, sizeof(d->strangers.last_src), "%s", x->src);
		conn_close(x, 0, "making room for a newer unauthenticated connection");
		v[k] = v[--n];
	}
	free(v);
}

int conn_accept(struct bdrd *d)
{
	struct conn *c = conn_new(d, false);
	struct sockaddr_storage ss;
	int len = sizeof(ss), r;

	if (!c)
		return -ENOMEM;
	r = uv_accept((uv_stream_t *)&d->listener, (uv_stream_t *)&c->tcp);
	if (r == 0 && uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0)
		addr_name((struct sockaddr *)&ss, c->addr, sizeof(c->addr), c->src, sizeof(c->src));
	if (r == 0) {
		make_room(d, c->src);
		c->unauth = true;
		c->accepted = (int64_t)uv_hrtime();
		d->n_unauth++;
		r = start_session(c);
	}
	if (r < 0)
		conn_close(c, r, "accept failed");
	return r;
}

/* ---- connecting: the peer's addresses in order ---- */

static void try_address(struct conn *c);

/* A failed attempt: the policy decides between a retry on this address
 * and the next one (policy.h). */
static void connect_failed(struct conn *c, int err, const char *what)
{
	struct bdr_log_ctx ctx;

	ctx_of(c, &ctx);
	bdr_log(BDR_LOG_WARN, &ctx, "connect", "%s %s: %s", what, c->addr, uv_strerror(err));
	bdrd_peer_error(c->d, c->peer, "%s %s: %s", what, c->addr, uv_strerror(err));
	conn_close(c, err, "cannot connect");
}

static void on_connect(uv_connect_t *req, int status)
{
	struct conn *c = req->data;
	int r;

	if (c->closing)
		return;
	if (status < 0) {
		/* The attempt failed: the policy chooses what comes next. */
		uv_timer_stop(&c->timer);
		connect_failed(c, status, "connecting to");
		return;
	}
	r = start_session(c);
	if (r < 0)
		conn_close(c, r, "cannot start the session");
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	struct conn *c = req->data;
	int r = status;

	c->handles_open--; /* taken by try_address */
	if (c->closing) {
		uv_freeaddrinfo(res);
		conn_free_maybe(c);
		return;
	}
	if (r == 0) {
		addr_name(res->ai_addr, c->addr, sizeof(c->addr), NULL, 0);
		c->connect_req.data = c;
		r = uv_tcp_connect(&c->connect_req, &c->tcp, res->ai_addr, on_connect);
	}
	uv_freeaddrinfo(res);
	if (r < 0)
		connect_failed(c, r, "resolving");
	else
		uv_timer_start(&c->timer, on_timer, c->d->cfg.limits.connect_timeout_s * 1000ull, 0);
}

static void try_address(struct conn *c)
{
	const struct bdr_peer_config *p = bdr_config_peer(&c->d->cfg, c->peer);
	const struct bdr_config_address *a = &p->address.v[c->addr_index];
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	char port[8];
	int r;

	snprintf(c->addr, sizeof(c->addr), "%s:%u", a->host, a->port);
	snprintf(port, sizeof(port), "%u", a->port);
	conn_set_rate(c, &a->rate);
	c->gai.data = c;
	r = uv_getaddrinfo(c->d->loop, &c->gai, on_resolved, a->host, port, &hints);
	if (r < 0) {
		connect_failed(c, r, "resolving");
		return;
	}
	/* Not a handle, but c must outlive it like one: a close meanwhile (a
	 * stop, the timer) would free c before on_resolved runs. */
	c->handles_open++;
	uv_timer_start(&c->timer, on_timer, c->d->cfg.limits.connect_timeout_s * 1000ull, 0);
}

int conn_connect(struct bdrd *d, const char *peer, struct send_xfer *tx, unsigned addr,
		 enum bdr_db_priority prio)
{
	const struct bdr_peer_config *p = bdr_config_peer(&d->cfg, peer);
	struct bdrd_peer *bp = bdrd_peer_get(d, peer);
	struct conn *c;

	if (!p || addr >= p->address.n)
		return -EDESTADDRREQ;
	if (!bp || !(c = conn_new(d, true)))
		return -ENOMEM;
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	c->tx = tx;
	c->prio = prio;
	c->addr_index = addr;
	c->counted = true;
	bp->nout++;
	try_address(c);
	return 0;
}

/* The address c uses in the running configuration (NULL: it went away in
 * a reload). */
static const struct bdr_config_address *conn_address(const struct conn *c)
{
	const struct bdr_peer_config *p = bdr_config_peer(&c->d->cfg, c->peer);

	return p && c->addr_index < p->address.n ? &p->address.v[c->addr_index] : NULL;
}

void conn_check_windows(struct bdrd *d)
{
	int64_t now = bdrd_now_ns();

	for (struct conn *c = d->conns; c; c = c->next) {
		if (!c->outgoing || c->closing || !c->tx || !c->ready)
			continue;
		if (!bdr_policy_may_run(conn_address(c), c->prio, now))
			sender_pause(c->tx);
	}
}

void conn_apply_rates(struct bdrd *d)
{
	for (struct conn *c = d->conns; c; c = c->next) {
		const struct bdr_config_address *a = c->outgoing && !c->closing ? conn_address(c) : NULL;

		if (a)
			conn_set_rate(c, &a->rate);
	}
}

void conn_close_all(struct bdrd *d, const char *why)
{
	for (struct conn *c = d->conns; c; c = c->next)
		conn_close(c, 0, why);
}
