/* The control socket (proto/control.md): listening, credential checks,
 * line framing, dispatch through the handler table, answers. */
#include <errno.h>
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

struct bdr_control {
	uv_pipe_t listener; /* closed by bdr_control_stop */
	struct bdr_control_opts opts;
	const struct bdr_control_cmd *table; /* not owned */
	void *arg;
	char *path;              /* owned */
	struct client *clients;  /* owned: each freed in client_closed */
	unsigned nclients;
	unsigned refs;           /* listener + clients not yet closed; free at 0 */
	bool stopping;
};

struct client {
	uv_pipe_t pipe;
	uv_shutdown_t shut;
	struct bdr_control *ctl;
	struct client *next, **pprev; /* in ctl->clients */
	struct bdr_control_req *req;  /* running request; owned by its handler */
	char *buf;                    /* owned: unparsed input, INBUF bytes */
	size_t len;
	bool closing;
	bool eof; /* the peer stopped writing: end after the answer */
};

struct bdr_control_req {
	struct client *client; /* NULL once the client went away */
	json_t *id;            /* owned reference */
	char cmd[32];
	bdr_control_gone_fn *gone_fn;
	void *gone_arg;
};

struct wreq {
	uv_write_t w;
	char *data; /* owned: one line with its '\n' */
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

/* The peer's check, with its groups from the socket where the kernel keeps
 * them (no race with a reused pid), else from /proc. */
static bool peer_check(const struct bdr_control_opts *o, int fd, struct ucred *cr)
{
	socklen_t len = sizeof(*cr);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cr, &len) < 0)
		return false;
#ifdef SO_PEERGROUPS
	gid_t groups[MAX_GROUPS];

	len = sizeof(groups);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) == 0)
		return bdr_control_peer_allowed(o, cr, groups, len / sizeof(gid_t));
#endif
	return bdr_control_peer_allowed(o, cr, NULL, 0);
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

static void on_written(uv_write_t *w, int status)
{
	struct wreq *wr = container_of(w, struct wreq, w);
	struct client *c = container_of(w->handle, struct client, pipe);

	free(wr->data);
	free(wr);
	if (status < 0)
		client_end(c, false);
}

/* Queues line (stolen) on c. */
static void write_line(struct client *c, char *line, size_t len)
{
	struct wreq *wr = malloc(sizeof(*wr));
	uv_buf_t b = uv_buf_init(line, (unsigned)len);

	if (!wr || c->closing) {
		free(wr);
		free(line);
		return;
	}
	wr->data = line;
	if (uv_write(&wr->w, (uv_stream_t *)&c->pipe, &b, 1, on_written) < 0) {
		free(line);
		free(wr);
		client_end(c, false);
	}
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
	    uv_stream_get_write_queue_size((uv_stream_t *)&c->pipe) > BDR_CONTROL_MAX_BACKLOG) {
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

const char *bdr_control_req_cmd(const struct bdr_control_req *req)
{
	return req->cmd;
}

/* ---- reading ---- */

static const struct bdr_control_cmd *find_cmd(const struct bdr_control_cmd *t, const char *name)
{
	for (; t->name; t++)
		if (!strcmp(t->name, name))
			return t;
	return NULL;
}

static void start_req(struct client *c, const struct bdr_control_cmd *e, json_t *id, json_t *msg)
{
	struct bdr_control_req *req = calloc(1, sizeof(*req));

	if (!req) {
		send_error(c, id, "internal", "out of memory");
		return;
	}
	req->client = c;
	req->id = json_incref(id);
	snprintf(req->cmd, sizeof(req->cmd), "%s", e->name);
	c->req = req;
	e->handler(req, msg, c->ctl->arg);
}

static void dispatch(struct client *c, json_t *msg)
{
	json_t *id = json_object_get(msg, "id");
	json_t *v = json_object_get(msg, "v");
	const char *cmd = json_string_value(json_object_get(msg, "cmd"));
	const struct bdr_control_cmd *e = cmd ? find_cmd(c->ctl->table, cmd) : NULL;

	if (!json_is_integer(id) || json_integer_value(id) < 0)
		reply_error(c, NULL, "bad_request", "request needs an integer \"id\" >= 0");
	else if (c->req)
		reply_error(c, id, "busy", "a request is already running on this connection");
	else if (v && (!json_is_integer(v) || json_integer_value(v) != BDR_CONTROL_VERSION))
		reply_error(c, id, "bad_request", "protocol version not supported (this is %d)",
			    BDR_CONTROL_VERSION);
	else if (!cmd)
		reply_error(c, id, "bad_request", "request needs a string \"cmd\"");
	else if (!e)
		reply_error(c, id, "unknown_command", "unknown command '%.64s'", cmd);
	else
		start_req(c, e, id, msg);
}

static bool blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			return false;
	return true;
}

static void handle_line(struct client *c, const char *line, size_t n)
{
	json_error_t err;
	json_t *msg;

	if (blank(line, n))
		return;
	msg = json_loadb(line, n, JSON_REJECT_DUPLICATES, &err);
	if (!msg)
		reply_error(c, NULL, "bad_request", "invalid JSON at column %d: %s", err.column, err.text);
	else if (!json_is_object(msg))
		reply_error(c, NULL, "bad_request", "a request is a JSON object");
	else
		dispatch(c, msg);
	json_decref(msg);
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
	}
}

/* Whether the peer closed its socket (not only its writing side). */
static bool peer_hung_up(struct client *c)
{
	uv_os_fd_t fd;
	struct pollfd p = { .events = 0 };

	if (uv_fileno((uv_handle_t *)&c->pipe, &fd) < 0)
		return true;
	p.fd = fd;
	return poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR));
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct client *c = container_of(h, struct client, pipe);

	(void)hint;
	*buf = uv_buf_init(c->buf + c->len, (unsigned)(INBUF - c->len));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct client *c = container_of(s, struct client, pipe);

	(void)buf;
	if (nread == UV_EOF) {
		c->eof = true;
		uv_read_stop(s);
		if (!c->req || peer_hung_up(c))
			client_end(c, true);
		return;
	}
	if (nread < 0) {
		client_end(c, false);
		return;
	}
	c->len += (size_t)nread;
	process_lines(c);
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
	struct client *c = container_of(h, struct client, pipe);
	struct bdr_control *ctl = c->ctl;

	if (c->next)
		c->next->pprev = c->pprev;
	*c->pprev = c->next;
	ctl->nclients--;
	free(c->buf);
	free(c);
	ctl_unref(ctl);
}

static void on_shutdown(uv_shutdown_t *sh, int status)
{
	(void)status;
	if (!uv_is_closing((uv_handle_t *)sh->handle))
		uv_close((uv_handle_t *)sh->handle, client_closed);
}

/* Ends c: its request becomes gone; flush: send what is queued first. */
static void client_end(struct client *c, bool flush)
{
	if (c->closing)
		return;
	c->closing = true;
	uv_read_stop((uv_stream_t *)&c->pipe);
	req_detach(c);
	if (flush && uv_shutdown(&c->shut, (uv_stream_t *)&c->pipe, on_shutdown) == 0)
		return;
	uv_close((uv_handle_t *)&c->pipe, client_closed);
}

static struct client *client_new(struct bdr_control *ctl)
{
	struct client *c = calloc(1, sizeof(*c));

	if (c)
		c->buf = malloc(INBUF);
	if (!c || !c->buf) {
		free(c);
		return NULL;
	}
	uv_pipe_init(ctl->listener.loop, &c->pipe, 0);
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
	struct ucred cr = { .pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1 };
	uv_os_fd_t fd;

	if (uv_fileno((uv_handle_t *)&c->pipe, &fd) < 0 || !peer_check(&ctl->opts, fd, &cr)) {
		ctl_log(&ctl->opts, BDR_LOG_WARN, "refused a client: uid %u pid %ld not allowed",
			(unsigned)cr.uid, (long)cr.pid);
		reply_error(c, NULL, "permission_denied",
			    "permission denied: uid %u is not root, bdrd's user or in its control group",
			    (unsigned)cr.uid);
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

static void on_connection(uv_stream_t *server, int status)
{
	struct bdr_control *ctl = container_of(server, struct bdr_control, listener);
	struct client *c;

	if (status < 0) {
		ctl_log(&ctl->opts, BDR_LOG_WARN, "accept: %s", uv_strerror(status));
		return;
	}
	c = client_new(ctl);
	if (!c) {
		ctl_log(&ctl->opts, BDR_LOG_ERROR, "accept: out of memory");
		return;
	}
	if (uv_accept(server, (uv_stream_t *)&c->pipe) < 0) {
		client_end(c, false);
		return;
	}
	if (client_admit(c) && uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read) < 0)
		client_end(c, false);
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
	ctl_unref(container_of(h, struct bdr_control, listener));
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
	uv_pipe_init(loop, &c->listener, 0);
	r = uv_pipe_open(&c->listener, fd);
	if (r < 0)
		close(fd);
	else
		r = uv_listen((uv_stream_t *)&c->listener, SOMAXCONN, on_connection);
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
		if (!uv_is_closing((uv_handle_t *)&cl->pipe))
			uv_close((uv_handle_t *)&cl->pipe, client_closed);
	}
}
