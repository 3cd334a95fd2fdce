/* bdrd's state and the internal interfaces between its modules.
 *
 * Threads. One loop thread owns every handle, timer, connection and
 * transfer object below. Heavy work (import, planning a rebuild, reading
 * and compressing chunks, decompressing and storing them, assembling and
 * verifying a version) runs on libuv's pool through bdrd_work(); a worker
 * touches only the job it was given and, under lib_lock, the library.
 * The loop thread never takes lib_lock, so a slow import or rebuild never
 * stalls a connection.
 *
 * Durable state. The library's own database handle belongs to whoever holds
 * lib_lock. The loop thread has a second connection to the same SQLite file
 * (db) for the daemon's rows: transfers, received versions, what peers
 * hold. SQLite in WAL mode lets the two work side by side. */
#ifndef BDR_DAEMON_DAEMON_H
#define BDR_DAEMON_DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <uv.h>

#include "bdr/db.h"
#include "bdr/key.h"
#include "bdr/wire.h"
#include "daemon/config.h"
#include "daemon/control.h"
#include "daemon/log.h"

struct conn;
struct send_xfer;
struct recv_xfer;
struct bdrd_metrics; /* metrics_http.c */

/* Runtime state of a configured peer, found by name (a reload rebuilds the
 * configuration, so nothing holds a pointer into it across loop turns). */
struct bdrd_peer {
	char name[BDR_MAX_SITE_NAME + 1];
	unsigned nout;      /* outgoing connections, one per push running */
	int64_t window_opens; /* the queue waits for a window opening then (0: not) */
	unsigned n_in;      /* authenticated incoming connections */
	uint64_t mem;       /* bytes of its peer_memory budget taken (guard.h) */
	char last_error[256];
	/* The running push's progress, for status and push --wait. */
	int64_t xfer;            /* its transfer id, 0 if none */
	uint64_t expected_wire;  /* bytes_sent it will reach at most, 0 unknown */
	uint64_t done_bytes;     /* of the version, held or sent there (0: not known) */
	uint64_t rate_bps;       /* recent bytes per second on the wire */
	uint64_t rate_bytes;     /* bytes_sent at rate_ns */
	int64_t rate_ns;
	int64_t rm_round_ns; /* a round of REMOVEs waits for its PONG (0: none) */
	int64_t rm_tried_ns; /* a connection was last opened for removals */
	struct bdrd_peer *next;
};

struct bdrd_waiter; /* wait.c */

/* report.c: what this site has told its parent. */
struct bdrd_report {
	int64_t acked_ns;      /* rows stamped up to here were delivered */
	int64_t pending_ns;    /* the watermark the awaited PONG confirms */
	int64_t last_round_ns; /* when the last round was sent (its PING's cookie) */
	int64_t opened_ns;     /* when a connection was last opened for reports */
	bool busy;             /* a round waits for its PONG */
};

struct bdrd {
	uv_loop_t *loop;
	struct bdr_config cfg;     /* owned */
	struct bdr_key key;        /* owned; wiped at exit */
	struct bdr_library *lib;   /* owned; under lib_lock, on workers only */
	uv_mutex_t lib_lock;
	struct bdr_db *db;         /* owned; loop thread only */
	struct bdr_control *control;
	uv_tcp_t listener;
	uv_signal_t sig_term, sig_int, sig_hup;
	uv_timer_t tick;           /* starts due transfers; rate samples */
	struct bdrd_peer *peers;   /* owned list */
	struct conn *conns;        /* every live connection */
	struct bdrd_waiter *waiters;
	unsigned nconns;
	unsigned n_unauth;         /* incoming connections not yet authenticated */
	/* What strangers' connections did, logged once per window rather than
	 * once per connection (conn.c, conn_flood_report). */
	struct {
		int64_t window_ns; /* monotonic start of the window */
		unsigned logged;   /* lines logged in it */
		uint64_t quiet;    /* closes not logged one by one */
		uint64_t shed;     /* closed to make room (guard.h) */
		char last_src[64]; /* the address the last one shed came from */
	} strangers;
	unsigned work_pending;     /* jobs on the pool; shutdown waits for them */
	struct bdrd_report report;
	bool rm_busy;              /* a removal here runs on the pool */
	int64_t history_pruned_ns; /* history.c: last prune (0: not yet) */
	struct bdrd_ccache *ccache; /* owned; NULL: chunk_cache_bytes 0 */
	struct bdrd_metrics *metrics; /* owned; NULL: no metrics_listen */
	/* Fan-out since start (loop thread): chunks sealed once as shared
	 * tails, and the frames that carried one; status shows both. */
	uint64_t tails_sealed, tails_sent;
	/* What DIR/quarantine held at start (the library sets it at open). */
	uint32_t quarantine_trees;
	uint64_t quarantine_bytes;
	struct send_xfer *senders; /* every live sender (sender.c) */
	bool stopping;
	int exit_status;
};

/* daemon.c */
int bdrd_run(const char *config_path);
struct bdrd_peer *bdrd_peer_get(struct bdrd *d, const char *name);
/* Names err: -errno, libuv's codes or -BDR_E*. */
const char *bdrd_strerror(int err);
/* Rereads the configuration; on errors (in errs) the running one stays. */
int bdrd_reload(struct bdrd *d, struct bdr_config_errors *errs);
/* Now, for every row and decision (CLOCK_REALTIME, ns). */
int64_t bdrd_now_ns(void);
/* Why a queued or paused transfer is not running ("" if it is not
 * waiting): a retry time, a closed window, a concurrency limit. */
void bdrd_waiting(struct bdrd *d, const struct bdr_db_transfer *t, char *buf, size_t n);
/* Starts whatever transfers are due (called on every state change). */
void bdrd_kick(struct bdrd *d);
void bdrd_peer_error(struct bdrd *d, const char *peer, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The peer's memory budget (guard.h, peer_memory): takes n bytes for what
 * before they are allocated on the peer's behalf: 0, or -ENOBUFS with a
 * line in why (for the peer and the log, which the caller writes) that
 * names the budget. */
int bdrd_budget_take(struct bdrd *d, const char *peer, uint64_t n, const char *what, char *why,
		     size_t whylen);
void bdrd_budget_give(struct bdrd *d, const char *peer, uint64_t n);
uint64_t bdrd_budget_left(struct bdrd *d, const char *peer);

/* A job on libuv's pool. run() executes on a worker (with lib_lock held if
 * locked); done() then runs on the loop thread with run()'s result. The job
 * struct is embedded in the caller's object, found with container_of. */
struct bdrd_job {
	uv_work_t req;
	struct bdrd *d;
	bool locked;
	int rc;
	int (*run)(struct bdrd_job *job);
	void (*done)(struct bdrd_job *job, int rc);
};
void bdrd_work(struct bdrd *d, struct bdrd_job *job, bool locked,
	       int (*run)(struct bdrd_job *), void (*done)(struct bdrd_job *, int));

/* Copies src into dst[size], cut at size - 1 bytes (messages, not names). */
static inline void bdrd_strcpy(char *dst, size_t size, const char *src)
{
	size_t n = strnlen(src, size - 1);

	memcpy(dst, src, n);
	dst[n] = 0;
}

#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

/* The running push to t->peer sent more (expected, done: see bdrd_peer). */
void bdrd_peer_progress(struct bdrd *d, const struct bdr_db_transfer *t, uint64_t expected,
			uint64_t done);
/* For push --wait: bytes of t's version the destination holds or was sent
 * (its whole size once activated, 0 before its NEEDs are known). */
uint64_t bdrd_transfer_done(struct bdrd *d, const struct bdr_db_transfer *t);
/* For status: the recent rate of t on the wire and the bytes_sent it will
 * reach (its version's size when that is not known yet). */
void bdrd_transfer_rate(struct bdrd *d, const struct bdr_db_transfer *t, uint64_t *rate,
			uint64_t *expected);
/* wait.c: a push --wait: req is answered once the n transfers have ended;
 * progress events meanwhile. */
void bdrd_wait(struct bdrd *d, struct bdr_control_req *req, const int64_t *transfer, size_t n);
/* A transfer row changed; answer or update its waiters. */
void bdrd_transfer_changed(struct bdrd *d, const struct bdr_db_transfer *t);
/* Answers the waiters of rows that ended where no sender saw it. */
void bdrd_waiters_recheck(struct bdrd *d);

/* hier.c: the site hierarchy. */
/* A version was activated here: queue it to each child (none for a dp). */
void bdrd_hier_relay(struct bdrd *d, const char *package, uint64_t version, uint64_t bytes);
/* The sites a request names: "all" (this site's children; without
 * children every peer with an address but the parent) or names separated
 * by commas, each a peer, none twice. -ENOENT (unknown site), -EINVAL, or
 * -ENOMEM, with dg saying why; x is freed by the caller either way. */
struct bdrd_dests {
	char (*v)[BDR_MAX_SITE_NAME + 1]; /* owned: n names */
	size_t n;
};
int bdrd_dests_resolve(struct bdrd *d, const char *to, struct bdrd_dests *x, struct bdr_diag *dg);
void bdrd_dests_free(struct bdrd_dests *x);

/* report.c: the status roll-up. Rows of this site's subtree stamped after
 * since (all: 0): its transfers to children (to every peer with top),
 * unless top its own state, and what its children reported. */
int bdrd_report_rows(struct bdrd *d, const char *package, int64_t since, bool top,
		     struct bdr_db_site_status **out, size_t *n);
void bdrd_report_tick(struct bdrd *d);
void bdrd_report_on_ready(struct conn *c);
void bdrd_report_on_pong(struct conn *c, uint64_t cookie);
void bdrd_report_on_close(struct conn *c);
void bdrd_report_on_msg(struct conn *c, const struct bdr_msg *m);
/* report.c: this site's own status rows against its library. Rows of
 * versions the library holds become activated; "receiving" rows that
 * cannot be (superseded; at_start: nothing kept to resume) become failed
 * with the reason; at_start, the received data of failed transfers goes. */
int bdrd_status_reconcile(struct bdrd *d, const char *package, bool at_start);
/* Deletes the received data of package's version (DIR/partial), logged. */
void bdrd_partial_drop(struct bdrd *d, const char *package, uint64_t version, const char *why);
/* The library's notice callback: one WARN line each. */
void bdrd_library_notice(void *arg, const char *msg);
/* status's "storage": quarantine and received data, how to reclaim them. */
json_t *bdrd_storage_json(struct bdrd *d);

/* remove.c: removing a package down the hierarchy. Queues the removal of
 * package at peer (this site's own name: here, then at its children). */
int bdrd_remove_queue(struct bdrd *d, const char *package, const char *peer);
void bdrd_remove_tick(struct bdrd *d);
void bdrd_remove_on_ready(struct conn *c);
void bdrd_remove_on_pong(struct conn *c, uint64_t cookie);
void bdrd_remove_on_close(struct conn *c);
void bdrd_remove_on_msg(struct conn *c, const struct bdr_msg *m);

/* conn.c: one peer connection over the channel. */
int conn_accept(struct bdrd *d);
/* Opens an outgoing connection to peer for tx (which it then owns),
 * starting with address index addr and going on with later addresses that
 * the schedule opens to prio. */
int conn_connect(struct bdrd *d, const char *peer, struct send_xfer *tx, unsigned addr,
		 enum bdr_db_priority prio);
/* Every second: pauses pushes whose window closed. */
void conn_check_windows(struct bdrd *d);
/* Every second: the line that counts strangers' connections not logged
 * one by one, once their window is over. */
void conn_flood_report(struct bdrd *d);
/* After a reload: running pushes take their address's new rate. */
void conn_apply_rates(struct bdrd *d);
int conn_send(struct conn *c, const struct bdr_msg *m);
/* A CHUNK whose data is tail's plaintext, with the data sent as the shared
 * tail (BDR_CAP_SHARED_TAIL agreed). As conn_send. Under a conn_hold the
 * tail is written from where it is, not copied. */
struct bdr_channel_tail;
int conn_send_tail(struct conn *c, const struct bdr_msg *m, const struct bdr_channel_tail *tail);
/* Applies an address's rate limit to what c writes from now on. */
struct bdr_rate_spec;
void conn_set_rate(struct conn *c, const struct bdr_rate_spec *spec);
/* Bytes handed to the kernel's socket and not yet written. */
size_t conn_backlog(const struct conn *c);
void conn_close(struct conn *c, int err, const char *why);
/* While corked, conn_send seals frames but writes nothing; uncorking writes
 * them at once: a batch of chunks is one write, not one per chunk. */
void conn_cork(struct conn *c, bool cork);
/* Room for about n bytes of frames to come (see bdr_channel_reserve_out). */
void conn_reserve(struct conn *c, size_t n);
/* Until the next flush, shared tails are sent by reference: fn(arg) runs
 * once none of them will be read again (written, copied for the throttle,
 * or the connection gone), and may run inside conn_cork(c, false).
 * -ENOMEM: nothing registered, tails are copied. */
int conn_hold(struct conn *c, void (*fn)(void *arg), void *arg);
void conn_close_all(struct bdrd *d, const char *why);
void conn_pause_read(struct conn *c, bool pause);
const char *conn_peer(const struct conn *c);
uint32_t conn_caps(const struct conn *c);
struct bdrd *conn_daemon(const struct conn *c);
struct send_xfer *conn_sender(struct conn *c);
/* A ready, open connection with peer, or NULL. */
struct conn *conn_find(struct bdrd *d, const char *peer);
/* Ours, and carrying no transfer either way. */
bool conn_idle_outgoing(const struct conn *c);
void conn_set_sender(struct conn *c, struct send_xfer *tx);
struct recv_xfer **conn_receivers(struct conn *c);
uint64_t conn_wire_out(const struct conn *c);
/* Logging context of a connection. */
void conn_log_ctx(const struct conn *c, struct bdr_log_ctx *ctx);

/* sender.c: the sending half of a push (proto/wire.md, "Transfer"). */
struct send_xfer *sender_new(struct bdrd *d, const struct bdr_db_transfer *row);
void sender_start(struct send_xfer *tx, struct conn *c); /* the channel is ready */
void sender_on_msg(struct send_xfer *tx, const struct bdr_msg *m);
void sender_on_drain(struct send_xfer *tx);              /* write backlog shrank */
/* The attempt failed on a pin (a key mismatch, or the peer refused our
 * key): the transfer fails at once, not retried, with why as its error. */
void sender_fail(struct send_xfer *tx, const char *why);
/* The schedule window closed: stop cleanly (CANCEL), paused, resumable. */
void sender_pause(struct send_xfer *tx);
/* The running sender of transfer id, or NULL. */
struct send_xfer *sender_find(struct bdrd *d, int64_t id);
/* An operator cancelled it (the row is cancelled already): stop cleanly
 * (CANCEL with why) and close. */
void sender_cancel(struct send_xfer *tx, const char *why);
enum bdr_db_priority sender_priority(const struct send_xfer *tx);
/* The connection went away or could not be made: the row goes back to the
 * queue (or failed), and tx is freed once no job holds it. */
void sender_detach(struct send_xfer *tx, int err, const char *why);

/* receiver.c: the receiving half. */
void receiver_on_msg(struct conn *c, const struct bdr_msg *m);
/* The connection went away: every transfer on it stops (chunks kept). */
void receiver_detach_all(struct conn *c);

/* history.c: prunes ended transfer rows past history_days, hourly. */
void bdrd_history_tick(struct bdrd *d);
/* cmd_schedule.c: t_ns as RFC 3339 local time with its offset; null for
 * 0 (never) and INT64_MAX (not within reach). */
json_t *bdrd_json_time(int64_t t_ns);
/* cmd.c: the control commands. */
/* Whether package has a version in the library (true when the database
 * cannot tell: a read error refuses nothing). */
bool bdrd_package_known(struct bdrd *d, const char *pkg);
extern const struct bdr_control_cmd bdrd_commands[];
bdr_control_handler_fn bdrd_cmd_schedule;
bdr_control_handler_fn bdrd_cmd_push;       /* cmd_push.c */
bdr_control_handler_fn bdrd_cmd_distribute;
bdr_control_handler_fn bdrd_cmd_remove;     /* remove.c */
bdr_control_handler_fn bdrd_cmd_bundle_create, bdrd_cmd_bundle_import; /* cmd_bundle.c */
bdr_control_handler_fn bdrd_cmd_cancel, bdrd_cmd_retry; /* cmd_transfer.c */

#endif
