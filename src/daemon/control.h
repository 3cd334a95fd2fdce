/* The control socket: bdrd's side of proto/control.md. A unix stream
 * socket on the daemon's loop; newline-delimited JSON requests dispatched
 * through a table of handlers, which answer now or later.
 *
 * Ownership: the server owns its listening handle and every connection.
 * A struct bdr_control_req belongs to the handler from the call until it
 * calls bdr_control_done() or bdr_control_fail() (exactly one, exactly
 * once, even after the client went away): that call frees it.
 *
 * A client that disconnects does not cancel its request: a push goes on,
 * only the waiting ends. The handler learns of it through
 * bdr_control_req_gone() or the callback set with bdr_control_req_on_gone();
 * events and answers for a gone client are dropped.
 *
 * Descriptors: a command whose table entry names a descriptor kind gets
 * the one its client passed with the line (SCM_RIGHTS), checked for its
 * kind before the handler runs. The request owns it until the handler
 * takes it with bdr_control_req_fd(); any descriptor not taken, and every
 * one that came with a refused line, is closed by the server. */
#ifndef BDR_DAEMON_CONTROL_H
#define BDR_DAEMON_CONTROL_H

#include <stdbool.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <jansson.h>
#include <uv.h>

#include "bdr/access.h"
#include "bdr/control_proto.h"
#include "control_decode.h"
#include "log.h"

struct bdr_control;
struct bdr_control_req;

/* msg is one line without a newline (no request contents, no secrets). */
typedef void bdr_control_log_fn(void *log_arg, enum bdr_log_level level, const char *msg);

#define BDR_CONTROL_NO_GID ((gid_t)-1)

struct bdr_control_opts {
	uid_t daemon_uid;     /* peers with this uid (and uid 0) are allowed */
	gid_t allowed_gid;    /* members are allowed and the socket is chowned
			       * to it; BDR_CONTROL_NO_GID for none */
	unsigned max_clients; /* 0: BDR_CONTROL_MAX_CLIENTS */
	bdr_control_log_fn *log; /* NULL: bdr_log(level, NULL, "control", msg) */
	void *log_arg;
};


/* Creates the socket at path (mode 0660; see proto/control.md for stale
 * files and a live daemon: -EADDRINUSE "control socket in use") and listens
 * on loop. table ends with a {NULL, NULL} entry and must outlive the server;
 * arg is passed to every handler. Returns 0 or -errno; on failure nothing
 * is left to close. Sets the process umask for the bind only: call before
 * other threads create files. */
int bdr_control_start(struct bdr_control **out, uv_loop_t *loop, const char *path,
		      const struct bdr_control_opts *o, const struct bdr_control_cmd *table,
		      void *arg);

/* Closes the socket and every connection (requests still running become
 * gone), removes the socket file. Memory is freed in close callbacks: run
 * the loop afterwards. c may be NULL. */
void bdr_control_stop(struct bdr_control *c);

/* Sends an event: ev is an object holding "event": "name" and its fields;
 * stolen. Events named "progress" are dropped while the client lags. */
void bdr_control_event(struct bdr_control_req *req, json_t *ev);

/* The final answer {"ok":true,"result":result}; result stolen, NULL for {}.
 * Frees req. */
void bdr_control_done(struct bdr_control_req *req, json_t *result);

/* The final answer {"ok":false,"error":{"code","message"}}; code from the
 * table of include/bdr/control_proto.h. Frees req. */
void bdr_control_fail(struct bdr_control_req *req, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* json_unpack_ex(args, fmt, ...) that fails req with bad_request naming the
 * problem: returns 0, or -EINVAL after req was failed and freed. */
int bdr_control_unpack(struct bdr_control_req *req, json_t *args, const char *fmt, ...);

/* Whether the client of req has gone away (its answers go nowhere). */
bool bdr_control_req_gone(const struct bdr_control_req *req);

/* fn(req, arg) runs once, when the client goes away while req runs (also at
 * bdr_control_stop). fn may call bdr_control_done/fail. */
typedef void bdr_control_gone_fn(struct bdr_control_req *req, void *arg);
void bdr_control_req_on_gone(struct bdr_control_req *req, bdr_control_gone_fn *fn, void *arg);

/* Takes the request's descriptor: the caller owns it from now on (closes
 * it exactly once). -1 when the command takes none, or after a first call. */
int bdr_control_req_fd(struct bdr_control_req *req);

/* The client's credentials (uid, primary and supplementary groups) as the
 * kernel gave them at accept; owned by req, valid until it is answered. */
const struct bdr_cred *bdr_control_req_cred(const struct bdr_control_req *req);
/* The client's pid at accept, for logs. */
pid_t bdr_control_req_pid(const struct bdr_control_req *req);

/* The request's command name, for logs. */
const char *bdr_control_req_cmd(const struct bdr_control_req *req);

/* The credential check of accept (exposed for tests): whether a peer with
 * credentials cr and supplementary groups groups[0..ngroups) may use the
 * socket. groups NULL: read them from the Groups: line of /proc/PID/status
 * (accept passes SO_PEERGROUPS where the kernel has it). */
bool bdr_control_peer_allowed(const struct bdr_control_opts *o, const struct ucred *cr,
			      const gid_t *groups, size_t ngroups);

#endif
