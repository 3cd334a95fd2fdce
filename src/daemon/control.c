/* The control socket (proto/control.md): listening, credential checks,
 * line framing, dispatch through the handler table, answers. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "control.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

/* Room for one line of BDR_CONTROL_MAX_LINE bytes and its '\n'. */
#define INBUF (BDR_CONTROL_MAX_LINE + 1)
#define MAX_GROUPS 1024 /* asked of SO_PEERGROUPS; more falls back to /proc */
/* Descriptors one read may carry; more is a protocol error (MSG_CTRUNC). */
#define MAX_FDS_PER_READ 8
/* An output buffer this large is given back once it drains. */
#define OUT_KEEP (64 * 1024)

struct bdr_control {
	uv_poll_t listener; /* on lfd; closed by bdr_control_stop */
	int lfd;            /* owned: the listening socket, closed with listener */
	struct bdr_control_opts opts;
	const struct bdr_control_cmd *table; /* not owned */
	void *arg;
	char *path;              /* owned */
	struct client *clients;  /* owned: each freed in client_closed */
	unsigned nclients;
	unsigned refs;           /* listener + clients not yet closed; free at 0 */
	bool stopping;
};

/* A connection, read and written by hand (recvmsg for the descriptors that
 * come with a line, one output buffer whose length is the backlog). */
struct client {
	uv_poll_t poll;
	int fd;                       /* owned: closed in client_closed */
	int events;                   /* what poll watches now */
	struct bdr_control *ctl;
	struct client *next, **pprev; /* in ctl->clients */
	struct bdr_control_req *req;  /* running request; owned by its handler */
	struct ucred ucred;           /* at accept */
	gid_t *groups;                /* owned: supplementary groups at accept */
	size_t ngroups;
	char *buf;                    /* owned: unparsed input, INBUF bytes */
	size_t len;
	char *out;                    /* owned: answers not yet written */
	size_t out_off, out_len, out_cap; /* unwritten: out[out_off..out_len) */
	int fds[BDR_CONTROL_MAX_FDS]; /* owned: received, not yet claimed by a line */
	unsigned nfds;
	bool closing;
	bool flushing; /* closing once out is written */
	bool eof;      /* the peer stopped writing: end after the answer */
};

struct bdr_control_req {
	struct client *client; /* NULL once the client went away */
	json_t *id;            /* owned reference */
	char cmd[32];
	int fd;                /* owned until taken (-1: none) */
	struct bdr_cred cred;  /* groups owned */
	pid_t pid;
	bdr_control_gone_fn *gone_fn;
	void *gone_arg;
};

static void ctl_log(const struct bdr_control_opts *o, enum bdr_log_level level, const char *fmt,
		    ...) __attribute__((format(printf, 3, 4)));
static void ctl_log(const struct bdr_control_opts *o, enum bdr_log_level level, const char *fmt,
		    ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (o->log)
		o->log(o->log_arg, level, msg);
	else
		bdr_log(level, NULL, "control", "%s", msg);
}

/* ---- credentials ---- */

static bool gid_listed(gid_t gid, const gid_t *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == gid)
			return true;
	return false;
}

/* Whether the "Groups:" line of /proc/PID/status lists gid. */
static bool proc_in_group(pid_t pid, gid_t gid)
{
	char path[64], *line = NULL;
	size_t cap = 0;
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (!found && getline(&line, &cap, f) > 0) {
		char *p = line + 7, *end;

		if (strncmp(line, "Groups:", 7) != 0)
			continue;
		for (;;) {
			unsigned long v = strtoul(p, &end, 10);

			if (end == p)
				break;
			if (v == (unsigned long)gid)
				found = true;
			p = end;
		}
		break;
	}
	free(line);
	fclose(f);
	return found;
}

bool bdr_control_peer_allowed(const struct bdr_control_opts *o, const struct ucred *cr,
			      const gid_t *groups, size_t ngroups)
{
	if (cr->uid == 0 || cr->uid == o->daemon_uid)
		return true;
	if (o->allowed_gid == BDR_CONTROL_NO_GID)
		return false;
	if (cr->gid == o->allowed_gid)
		return true;
	if (groups)
		return gid_listed(o->allowed_gid, groups, ngroups);
	return proc_in_group(cr->pid, o->allowed_gid);
}

/* The supplementary groups of the "Groups:" line of /proc/PID/status, into
 * a malloc'd *out (NULL when there are none). */
static int proc_groups(pid_t pid, gid_t **out, size_t *n)
{
	char path[64], *line = NULL;
	size_t cap = 0;
	FILE *f;
	int r = 0;

	*out = NULL, *n = 0;
	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	if (!(f = fopen(path, "re")))
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		char *p = line + 7, *end;

		if (strncmp(line, "Groups:", 7) != 0)
			continue;
		for (unsigned long v; (v = strtoul(p, &end, 10)), end != p; p = end) {
			gid_t *g = *n < NGROUPS_MAX ? realloc(*out, (*n + 1) * sizeof(**out)) : NULL;
			if (!g) {
				r = -ENOMEM;
				break;
			}
			*out = g;
			(*out)[(*n)++] = (gid_t)v;
		}
		break;
	}
	free(line);
	fclose(f);
	return r;
}

/* The peer's credentials and groups (into c), from the socket where the
 * kernel keeps them (no race with a reused pid), else from /proc; whether
 * it may use the socket. */
static bool peer_check(const struct bdr_control_opts *o, int fd, struct client *c)
{
	socklen_t len = sizeof(c->ucred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c->ucred, &len) < 0)
		return false;
#ifdef SO_PEERGROUPS
	gid_t groups[MAX_GROUPS];

	len = sizeof(groups);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) == 0) {
		c->ngroups = len / sizeof(gid_t);
		if (c->ngroups && !(c->groups = malloc(len)))
			return false;
		if (c->ngroups)
			memcpy(c->groups, groups, len);
		return bdr_control_peer_allowed(o, &c->ucred, c->groups, c->ngroups);
	}
#endif
	if (proc_groups(c->ucred.pid, &c->groups, &c->ngroups) < 0)
		return false;
	return bdr_control_peer_allowed(o, &c->ucred, c->groups, c->ngroups);
}

/* ---- writing ---- */

/* msg as one line with its '\n', malloc'd; NULL if too long or no memory. */
static char *encode_line(const json_t *msg, size_t *len)
{
	size_t n = json_dumpb(msg, NULL, 0, JSON_COMPACT);
	char *s;

	if (n == 0 || n > BDR_CONTROL_MAX_LINE)
		return NULL;
	s = malloc(n + 1);
	if (!s)
		return NULL;
	if (json_dumpb(msg, s, n, JSON_COMPACT) != n) {
		free(s);
		return NULL;
	}
	s[n] = '\n';
	*len = n + 1;
	return s;
}

static void client_end(struct client *c, bool flush);
static void client_close(struct client *c);
static void on_poll(uv_poll_t *p, int status, int events);

/* Bytes answered and not yet taken by the client. */
static size_t backlog(const struct client *c)
{
	return c->out_len - c->out_off;
}

/* Watches for what c waits on: input while it may send, room while
 * answers wait. */
static void watch(struct client *c)
{
	int ev = (!c->closing && !c->eof ? UV_READABLE : 0) | (backlog(c) ? UV_WRITABLE : 0);

	if (ev == c->events || uv_is_closing((uv_handle_t *)&c->poll))
		return;
	c->events = ev;
	if (ev == 0)
		uv_poll_stop(&c->poll);
	else if (uv_poll_start(&c->poll, ev, on_poll) < 0)
		client_close(c);
}

/* Writes what the socket takes now; the rest waits for UV_WRITABLE. */
static void flush_out(struct client *c)
{
	while (backlog(c)) {
		ssize_t n = send(c->fd, c->out + c->out_off, backlog(c), MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n < 0) {
			client_close(c);
			return;
		}
		c->out_off += (size_t)n;
	}
	if (!backlog(c)) {
		c->out_off = c->out_len = 0;
		if (c->out_cap > OUT_KEEP) {
			free(c->out);
			c->out = NULL, c->out_cap = 0;
		}
		if (c->flushing) {
			shutdown(c->fd, SHUT_WR);
			client_close(c);
			return;
		}
	}
	watch(c);
}

/* Room for len more bytes in c->out; false when there is none. */
static bool out_reserve(struct client *c, size_t len)
{
	size_t cap = c->out_cap ? c->out_cap : 4096;
	char *p;

	if (c->out_off && c->out_off >= c->out_len / 2) {
		memmove(c->out, c->out + c->out_off, backlog(c));
		c->out_len -= c->out_off, c->out_off = 0;
	}
	if (c->out_len + len <= c->out_cap)
		return true;
	while (cap < c->out_len + len)
		cap *= 2;
	if (!(p = realloc(c->out, cap)))
		return false;
	c->out = p, c->out_cap = cap;
	return true;
}

/* Queues line (copied) on c. A client that lets its answers pile up past
 * BDR_CONTROL_MAX_OUTPUT is dropped: its memory is the daemon's. */
static void write_line(struct client *c, const char *line, size_t len)
{
	if (c->closing)
		return;
	if (backlog(c) + len > BDR_CONTROL_MAX_OUTPUT) {
		ctl_log(&c->ctl->opts, BDR_LOG_WARN,
			"dropped the client of uid %u pid %ld: it left %zu bytes of answers unread "
			"(at most %d)", (unsigned)c->ucred.uid, (long)c->ucred.pid, backlog(c) + len,
			BDR_CONTROL_MAX_OUTPUT);
		client_end(c, false);
		return;
	}
	if (!out_reserve(c, len)) {
		ctl_log(&c->ctl->opts, BDR_LOG_ERROR, "client of uid %u pid %ld: out of memory",
			(unsigned)c->ucred.uid, (long)c->ucred.pid);
		client_end(c, false);
		return;
	}
	memcpy(c->out + c->out_len, line, len);
	c->out_len += len;
	flush_out(c);
}

/* {"id": id, ...msg}; msg stolen, id borrowed (NULL: null). Returns false
 * when the line could not be made (too long, no memory). */
static bool send_msg(struct client *c, json_t *id, json_t *msg)
{
	json_t *line = json_object();
	char *s = NULL;
	size_t len = 0;

	if (line && json_object_set(line, "id", id ? id : json_null()) == 0 &&
	    json_object_update(line, msg) == 0 && json_object_set(line, "id", id ? id : json_null()) == 0)
		s = encode_line(line, &len);
	json_decref(line);
	json_decref(msg);
	if (!s)
		return false;
	write_line(c, s, len);
	free(s);
	return true;
}

/* A string for JSON: jansson refuses invalid UTF-8, so such bytes become '?'. */
static json_t *json_text(const char *s)
{
	json_t *j = json_string(s);
	char *t;

	if (j || !s)
		return j;
	t = strdup(s);
	if (!t)
		return NULL;
	for (char *p = t; *p; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	j = json_string(t);
	free(t);
	return j;
}

static void send_error(struct client *c, json_t *id, const char *code, const char *message)
{
	json_t *msg = json_pack("{s:b, s:{s:s, s:o*}}", "ok", 0, "error", "code", code, "message",
				json_text(message));

	if (!msg || !send_msg(c, id, msg))
		ctl_log(&c->ctl->opts, BDR_LOG_ERROR, "cannot encode a '%s' error", code);
}

static void reply_error(struct client *c, json_t *id, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void reply_error(struct client *c, json_t *id, const char *code, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	send_error(c, id, code, msg);
}

/* ---- requests ---- */

static void req_free(struct bdr_control_req *req)
{
	if (req->fd >= 0)
		close(req->fd);
	free((gid_t *)req->cred.groups);
	json_decref(req->id);
	free(req);
}

/* The client goes away while req runs: answers go nowhere from now on. */
static void req_detach(struct client *c)
{
	struct bdr_control_req *req = c->req;

	if (!req)
		return;
	c->req = NULL;
	req->client = NULL;
	if (req->gone_fn)
		req->gone_fn(req, req->gone_arg);
}

/* Ends req with the final answer msg (stolen). */
static void req_finish(struct bdr_control_req *req, json_t *msg)
{
	struct client *c = req->client;

	if (!c) {
		json_decref(msg);
		req_free(req);
		return;
	}
	c->req = NULL;
	if (!send_msg(c, req->id, msg))
		send_error(c, req->id, "internal", "answer too large");
	req_free(req);
	if (c->eof)
		client_end(c, true);
}

void bdr_control_event(struct bdr_control_req *req, json_t *ev)
{
	struct client *c = req->client;
	const char *name = json_string_value(json_object_get(ev, "event"));

	if (!c || c->closing || !name) {
		json_decref(ev);
		return;
	}
	if (!strcmp(name, "progress") &&
	    backlog(c) > BDR_CONTROL_MAX_BACKLOG) {
		json_decref(ev);
		return;
	}
	/* name lives in ev, which send_msg consumes: hold it for the log. */
	json_incref(ev);
	if (!send_msg(c, req->id, ev))
		ctl_log(&c->ctl->opts, BDR_LOG_WARN, "%s: event '%s' dropped (too large)", req->cmd, name);
	json_decref(ev);
}

void bdr_control_done(struct bdr_control_req *req, json_t *result)
{
	json_t *msg = json_pack("{s:b, s:o}", "ok", 1, "result", result ? result : json_object());

	req_finish(req, msg);
}

static void fail_msg(struct bdr_control_req *req, const char *code, const char *message)
{
	if (bdr_control_code_exit(code) < 0) {
		if (req->client)
			ctl_log(&req->client->ctl->opts, BDR_LOG_ERROR,
				"%s: handler used unknown error code '%s'", req->cmd, code);
		code = "internal";
	}
	req_finish(req, json_pack("{s:b, s:{s:s, s:o*}}", "ok", 0, "error", "code", code,
				  "message", json_text(message)));
}

void bdr_control_fail(struct bdr_control_req *req, const char *code, const char *fmt, ...)
{
	char *message = NULL;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&message, fmt, ap) < 0)
		message = NULL;
	va_end(ap);
	fail_msg(req, code, message ? message : "(no memory for the message)");
	free(message);
}

int bdr_control_unpack(struct bdr_control_req *req, json_t *args, const char *fmt, ...)
{
	json_error_t err;
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = json_vunpack_ex(args, &err, 0, fmt, ap);
	va_end(ap);
	if (r == 0)
		return 0;
	bdr_control_fail(req, "bad_request", "%s: %s", req->cmd, err.text);
	return -EINVAL;
}

bool bdr_control_req_gone(const struct bdr_control_req *req)
{
	return req->client == NULL;
}

void bdr_control_req_on_gone(struct bdr_control_req *req, bdr_control_gone_fn *fn, void *arg)
{
	req->gone_fn = fn;
	req->gone_arg = arg;
}

int bdr_control_req_fd(struct bdr_control_req *req)
{
	int fd = req->fd;

	req->fd = -1;
	return fd;
}

const struct bdr_cred *bdr_control_req_cred(const struct bdr_control_req *req)
{
	return &req->cred;
}

pid_t bdr_control_req_pid(const struct bdr_control_req *req)
{
	return req->pid;
}

const char *bdr_control_req_cmd(const struct bdr_control_req *req)
{
	return req->cmd;
}

/* ---- reading ---- */

/* The next descriptor received, now the caller's; -1 if none came. */
static int take_fd(struct client *c)
{
	int fd;

	if (!c->nfds)
		return -1;
	fd = c->fds[0];
	memmove(c->fds, c->fds + 1, --c->nfds * sizeof(c->fds[0]));
	return fd;
}

static void close_fds(struct client *c)
{
	while (c->nfds)
		close(c->fds[--c->nfds]);
}

/* Whether fd is what a command of this kind takes; else why not in why. */
static bool fd_fits(int fd, enum bdr_control_fd kind, char *why, size_t n)
{
	static const char *const want[] = { "", "a directory open for reading",
					    "a regular file open for reading",
					    "a regular file or a pipe open for writing" };
	int fl = fcntl(fd, F_GETFL);
	int acc = fl & O_ACCMODE;
	struct stat st;
	bool ok;

	if (fl < 0 || fstat(fd, &st) < 0 || (fl & O_PATH))
		ok = false;
	else if (kind == BDR_CONTROL_FD_DIR)
		ok = S_ISDIR(st.st_mode) && acc != O_WRONLY;
	else if (kind == BDR_CONTROL_FD_IN)
		ok = S_ISREG(st.st_mode) && acc != O_WRONLY;
	else
		ok = (S_ISREG(st.st_mode) || S_ISFIFO(st.st_mode)) && acc != O_RDONLY;
	if (!ok)
		snprintf(why, n, "the descriptor passed is not %s", want[kind]);
	return ok;
}

/* Its descriptor for a request of e, checked; -1 after refusing it. */
static int request_fd(struct client *c, const struct bdr_control_cmd *e, json_t *id)
{
	char why[128];
	int fd;

	if (e->fd == BDR_CONTROL_FD_NONE)
		return -1;
	if ((fd = take_fd(c)) < 0) {
		reply_error(c, id, "bad_request", "%s needs a descriptor passed with its line "
			    "(SCM_RIGHTS; proto/control.md, Descriptors)", e->name);
		return -1;
	}
	if (!fd_fits(fd, e->fd, why, sizeof(why))) {
		close(fd);
		reply_error(c, id, "bad_request", "%s: %s", e->name, why);
		return -1;
	}
	return fd;
}

static void start_req(struct client *c, const struct bdr_control_cmd *e, json_t *id, json_t *msg)
{
	struct bdr_control_req *req;
	int fd = request_fd(c, e, id);

	if (e->fd != BDR_CONTROL_FD_NONE && fd < 0)
		return;
	req = calloc(1, sizeof(*req));
	if (req && c->ngroups && (req->cred.groups = malloc(c->ngroups * sizeof(gid_t))))
		memcpy((gid_t *)req->cred.groups, c->groups, c->ngroups * sizeof(gid_t));
	if (!req || (c->ngroups && !req->cred.groups)) {
		free(req);
		if (fd >= 0)
			close(fd);
		send_error(c, id, "internal", "out of memory");
		return;
	}
	req->client = c;
	req->id = json_incref(id);
	req->fd = fd;
	req->cred.uid = c->ucred.uid, req->cred.gid = c->ucred.gid;
	req->cred.ngroups = c->ngroups;
	req->pid = c->ucred.pid;
	snprintf(req->cmd, sizeof(req->cmd), "%s", e->name);
	c->req = req;
	e->handler(req, msg, c->ctl->arg);
}

static void handle_line(struct client *c, const char *line, size_t n)
{
	struct bdr_control_decoded d;

	bdr_control_decode(line, n, c->ctl->table, c->req != NULL, &d);
	if (d.verdict == BDR_CONTROL_REQUEST) {
		start_req(c, d.cmd, d.id, d.msg);
	} else if (d.verdict == BDR_CONTROL_REFUSE) {
		/* A refused line's descriptor goes with it, not to the next. */
		if (d.cmd && d.cmd->fd != BDR_CONTROL_FD_NONE && c->nfds)
			close(take_fd(c));
		send_error(c, d.id, d.code, d.message);
	}
	bdr_control_decoded_free(&d);
}

static void process_lines(struct client *c)
{
	size_t start = 0;
	char *nl;

	while (!c->closing && (nl = memchr(c->buf + start, '\n', c->len - start))) {
		size_t n = (size_t)(nl - (c->buf + start));

		handle_line(c, c->buf + start, n);
		start += n + 1;
	}
	if (c->closing)
		return;
	memmove(c->buf, c->buf + start, c->len - start);
	c->len -= start;
	if (c->len == INBUF) {
		reply_error(c, NULL, "bad_request", "line exceeds %d bytes", BDR_CONTROL_MAX_LINE);
		client_end(c, true);
	} else if (c->len == 0 && c->nfds) {
		/* Every line read took what it takes: these came with none. */
		reply_error(c, NULL, "bad_request", "%u descriptors came with no request that takes one",
			    c->nfds);
		close_fds(c);
	}
}

/* Whether the peer closed its socket (not only its writing side). */
static bool peer_hung_up(struct client *c)
{
	struct pollfd p = { .fd = c->fd, .events = 0 };

	return poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR));
}

/* Queues the descriptors of one read; false when they do not fit (then
 * every one of them is closed). */
static bool keep_fds(struct client *c, struct msghdr *mh)
{
	bool ok = !(mh->msg_flags & MSG_CTRUNC);

	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
		size_t n;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (c->nfds < BDR_CONTROL_MAX_FDS)
				c->fds[c->nfds++] = fd;
			else
				close(fd), ok = false;
		}
	}
	return ok;
}

static void on_eof(struct client *c)
{
	c->eof = true;
	watch(c);
	if (!c->req || peer_hung_up(c))
		client_end(c, true);
}

/* One recvmsg: the bytes and the descriptors that came with them (each
 * closed on exec from the start). */
static void read_some(struct client *c)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(MAX_FDS_PER_READ * sizeof(int))];
	} ctrl;
	struct iovec iov = { .iov_base = c->buf + c->len, .iov_len = INBUF - c->len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctrl.buf,
			     .msg_controllen = sizeof(ctrl.buf) };
	ssize_t n;

	do
		n = recvmsg(c->fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			client_end(c, false);
		return;
	}
	if (!keep_fds(c, &mh)) {
		ctl_log(&c->ctl->opts, BDR_LOG_WARN, "client of uid %u pid %ld passed more than %d "
			"descriptors: dropped", (unsigned)c->ucred.uid, (long)c->ucred.pid,
			BDR_CONTROL_MAX_FDS);
		reply_error(c, NULL, "bad_request", "too many descriptors (at most %d pending)",
			    BDR_CONTROL_MAX_FDS);
		client_end(c, true);
		return;
	}
	if (n == 0) {
		on_eof(c);
		return;
	}
	c->len += (size_t)n;
	process_lines(c);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
	struct client *c = container_of(p, struct client, poll);

	if (status < 0) {
		client_end(c, false);
		return;
	}
	if (events & UV_WRITABLE)
		flush_out(c);
	if ((events & UV_READABLE) && !c->closing && !c->eof)
		read_some(c);
}

/* ---- connections ---- */

static void ctl_unref(struct bdr_control *ctl)
{
	if (--ctl->refs > 0)
		return;
	free(ctl->path);
	free(ctl);
}

static void client_closed(uv_handle_t *h)
{
	struct client *c = container_of(h, struct client, poll);
	struct bdr_control *ctl = c->ctl;

	if (c->next)
		c->next->pprev = c->pprev;
	*c->pprev = c->next;
	ctl->nclients--;
	close(c->fd);
	close_fds(c);
	free(c->groups);
	free(c->out);
	free(c->buf);
	free(c);
	ctl_unref(ctl);
}

/* Closes c now; what is unwritten is dropped. */
static void client_close(struct client *c)
{
	c->closing = true;
	if (!uv_is_closing((uv_handle_t *)&c->poll))
		uv_close((uv_handle_t *)&c->poll, client_closed);
}

/* Ends c: its request becomes gone; flush: send what is queued first. */
static void client_end(struct client *c, bool flush)
{
	if (c->closing)
		return;
	c->closing = true;
	req_detach(c);
	close_fds(c);
	if (flush && backlog(c)) {
		c->flushing = true;
		watch(c);
		return;
	}
	if (flush)
		shutdown(c->fd, SHUT_WR);
	client_close(c);
}

static struct client *client_new(struct bdr_control *ctl, int fd)
{
	struct client *c = calloc(1, sizeof(*c));

	if (c)
		c->buf = malloc(INBUF);
	if (!c || !c->buf || uv_poll_init(ctl->listener.loop, &c->poll, fd) < 0) {
		if (c)
			free(c->buf);
		free(c);
		return NULL;
	}
	c->fd = fd;
	c->ctl = ctl;
	c->next = ctl->clients;
	if (c->next)
		c->next->pprev = &c->next;
	c->pprev = &ctl->clients;
	ctl->clients = c;
	ctl->nclients++;
	ctl->refs++;
	return c;
}

/* Checks the new client c; false after answering and ending it. */
static bool client_admit(struct client *c)
{
	struct bdr_control *ctl = c->ctl;

	c->ucred = (struct ucred){ .pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1 };
	if (!peer_check(&ctl->opts, c->fd, c)) {
		ctl_log(&ctl->opts, BDR_LOG_WARN, "refused a client: uid %u pid %ld not allowed",
			(unsigned)c->ucred.uid, (long)c->ucred.pid);
		reply_error(c, NULL, "permission_denied",
			    "permission denied: uid %u is not root, bdrd's user or in its control group",
			    (unsigned)c->ucred.uid);
	} else if (ctl->nclients > ctl->opts.max_clients) {
		ctl_log(&ctl->opts, BDR_LOG_WARN, "refused a client: %u connections open",
			ctl->opts.max_clients);
		reply_error(c, NULL, "busy", "too many control connections (%u)", ctl->opts.max_clients);
	} else {
		return true;
	}
	client_end(c, true);
	return false;
}

/* One connection from the backlog; false when there is none. */
static bool accept_one(struct bdr_control *ctl)
{
	struct client *c;
	int fd = accept4(ctl->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (fd < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			ctl_log(&ctl->opts, BDR_LOG_WARN, "accept: %s", strerror(errno));
		return errno == EINTR;
	}
	if (!(c = client_new(ctl, fd))) {
		close(fd);
		ctl_log(&ctl->opts, BDR_LOG_ERROR, "accept: out of memory");
		return true;
	}
	if (client_admit(c))
		watch(c);
	return true;
}

/* Connections are accepted by hand, as clients are read by hand: libuv's
 * streams read without recvmsg's descriptors. */
static void on_listen(uv_poll_t *p, int status, int events)
{
	struct bdr_control *ctl = container_of(p, struct bdr_control, listener);

	(void)events;
	if (status < 0) {
		ctl_log(&ctl->opts, BDR_LOG_WARN, "accept: %s", uv_strerror(status));
		return;
	}
	for (int i = 0; i < 64 && !ctl->stopping && accept_one(ctl); i++)
		;
}

/* ---- the socket file ---- */

/* Whether something accepts connections at path. */
static bool socket_live(const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int r;

	if (fd < 0)
		return false;
	r = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	/* EAGAIN: a listener whose backlog is full is still a listener. */
	r = r == 0 || errno == EAGAIN || errno == EINPROGRESS;
	close(fd);
	return r;
}

/* Removes a stale socket at sa's path; refuses a live one or a non-socket. */
static int remove_stale(const struct bdr_control_opts *o, const struct sockaddr_un *sa)
{
	struct stat st;

	if (lstat(sa->sun_path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		ctl_log(o, BDR_LOG_ERROR, "%s exists and is not a socket", sa->sun_path);
		return -EEXIST;
	}
	if (socket_live(sa)) {
		ctl_log(o, BDR_LOG_ERROR, "control socket in use: %s (is another bdrd running?)",
			sa->sun_path);
		return -EADDRINUSE;
	}
	if (unlink(sa->sun_path) < 0 && errno != ENOENT)
		return -errno;
	ctl_log(o, BDR_LOG_INFO, "removed stale socket %s", sa->sun_path);
	return 0;
}

/* Binds a listening socket at sa's path, mode 0660, group allowed_gid. */
static int socket_bind(const struct bdr_control_opts *o, const struct sockaddr_un *sa, int *out)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	mode_t old;
	int r;

	if (fd < 0)
		return -errno;
	old = umask(0117);
	r = bind(fd, (const struct sockaddr *)sa, sizeof(*sa));
	umask(old);
	if (r < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	if ((o->allowed_gid != BDR_CONTROL_NO_GID && chown(sa->sun_path, (uid_t)-1, o->allowed_gid) < 0) ||
	    listen(fd, SOMAXCONN) < 0) {
		r = -errno;
		unlink(sa->sun_path);
		close(fd);
		return r;
	}
	*out = fd;
	return 0;
}

static int socket_open(const struct bdr_control_opts *o, const char *path, int *fd)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int r;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		ctl_log(o, BDR_LOG_ERROR, "control socket path too long: %s", path);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	r = remove_stale(o, &sa);
	if (r == 0)
		r = socket_bind(o, &sa, fd);
	if (r < 0 && r != -EADDRINUSE && r != -EEXIST)
		ctl_log(o, BDR_LOG_ERROR, "control socket %s: %s", path, strerror(-r));
	return r;
}

static void listener_closed(uv_handle_t *h)
{
	struct bdr_control *ctl = container_of(h, struct bdr_control, listener);

	close(ctl->lfd);
	ctl_unref(ctl);
}

int bdr_control_start(struct bdr_control **out, uv_loop_t *loop, const char *path,
		      const struct bdr_control_opts *o, const struct bdr_control_cmd *table,
		      void *arg)
{
	struct bdr_control *c;
	int fd = -1, r;

	r = socket_open(o, path, &fd);
	if (r < 0)
		return r;
	c = calloc(1, sizeof(*c));
	if (c)
		c->path = strdup(path);
	if (!c || !c->path) {
		free(c);
		unlink(path);
		close(fd);
		return -ENOMEM;
	}
	c->opts = *o;
	if (!c->opts.max_clients)
		c->opts.max_clients = BDR_CONTROL_MAX_CLIENTS;
	c->table = table;
	c->arg = arg;
	c->refs = 1;
	c->lfd = fd;
	r = uv_poll_init(loop, &c->listener, fd);
	if (r < 0) {
		unlink(path);
		close(fd);
		free(c->path);
		free(c);
		ctl_log(o, BDR_LOG_ERROR, "control socket %s: %s", path, uv_strerror(r));
		return r;
	}
	r = uv_poll_start(&c->listener, UV_READABLE, on_listen);
	if (r < 0) {
		/* c goes in the listener's close callback. */
		ctl_log(o, BDR_LOG_ERROR, "control socket %s: %s", path, uv_strerror(r));
		bdr_control_stop(c);
		return r;
	}
	*out = c;
	return 0;
}

void bdr_control_stop(struct bdr_control *c)
{
	if (!c || c->stopping)
		return;
	c->stopping = true;
	unlink(c->path);
	uv_close((uv_handle_t *)&c->listener, listener_closed);
	for (struct client *cl = c->clients; cl; cl = cl->next) {
		client_end(cl, false);
		client_close(cl);
	}
}
