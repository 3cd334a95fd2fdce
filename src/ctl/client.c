/* One request over the control socket: connect, send a line, read event
 * lines until the final answer (proto/control.md). Plain blocking I/O: a
 * command line tool has nothing else to do meanwhile. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctl.h"

#define REQ_ID 1

struct conn {
	int fd;
	const char *path;
	unsigned timeout_s; /* --timeout (0: none) */
	struct timespec deadline;
	size_t len;                           /* bytes in buf */
	char buf[BDR_CONTROL_MAX_LINE + 1];   /* one line and its '\n' */
};

static int unreachable(const char *path, int err)
{
	return ctl_err(BDR_EXIT_UNREACHABLE, "unreachable",
		       "cannot reach bdrd at %s: %s (is bdrd running?)", path, strerror(err));
}

static int conn_open(struct conn *c, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int err;

	c->path = path;
	c->len = 0;
	if (strlen(path) >= sizeof(sa.sun_path))
		return unreachable(path, ENAMETOOLONG);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return unreachable(path, errno);
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return 0;
	err = errno;
	close(c->fd);
	return unreachable(path, err);
}

static int lost(const struct conn *c, const char *what)
{
	return ctl_err(BDR_EXIT_UNREACHABLE, "connection_lost", "connection to bdrd at %s lost %s",
		       c->path, what);
}

/* The first bytes of the line, with fd beside them (SCM_RIGHTS): the
 * server gives a descriptor to the line it came with. */
static ssize_t send_with_fd(int sock, const char *s, size_t len, int fd)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctrl;
	struct iovec iov = { .iov_base = (void *)s, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctrl.buf,
			     .msg_controllen = sizeof(ctrl.buf) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

	memset(ctrl.buf, 0, sizeof(ctrl.buf));
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	return sendmsg(sock, &mh, MSG_NOSIGNAL);
}

/* Sends req as one line; fd >= 0 goes with it. */
static int conn_send(struct conn *c, const json_t *req, int fd)
{
	char *s = json_dumps(req, JSON_COMPACT);
	size_t len = s ? strlen(s) : 0, off = 0;

	if (!s) {
		fputs("bdrctl: cannot encode the request\n", stderr);
		return BDR_EXIT_FAILED;
	}
	s = ctl_check_alloc(realloc(s, len + 2));
	s[len++] = '\n';
	while (off < len) {
		ssize_t n = off == 0 && fd >= 0 ? send_with_fd(c->fd, s, len, fd)
						: send(c->fd, s + off, len - off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			free(s);
			return BDR_EXIT_UNREACHABLE; /* the read that follows says so */
		}
		off += (size_t)n;
	}
	free(s);
	return 0;
}

/* Whether the n bytes at s are only spaces, tabs and '\r': such lines are
 * ignored (proto/control.md, Framing). */
static bool blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			return false;
	return true;
}

/* Waits until fd is readable; BDR_EXIT_TIMEOUT once --timeout passed. */
static int wait_readable(const struct conn *c)
{
	struct pollfd p = { .fd = c->fd, .events = POLLIN };
	struct timespec now;
	long long ms;
	int n;

	if (!c->timeout_s)
		return 0;
	do {
		clock_gettime(CLOCK_MONOTONIC, &now);
		ms = (c->deadline.tv_sec - now.tv_sec) * 1000LL +
		     (c->deadline.tv_nsec - now.tv_nsec) / 1000000;
		n = ms > 0 ? poll(&p, 1, ms > INT32_MAX ? INT32_MAX : (int)ms) : 0;
	} while (n < 0 && errno == EINTR);
	if (n == 0) {
		return ctl_err(BDR_EXIT_TIMEOUT, "timeout",
			       "stopped waiting after %u s (--timeout); what was queued goes on: "
			       "see bdrctl status", c->timeout_s);
	}
	return 0;
}

/* Reads the next line that is not blank into *msg (a JSON object). */
static int conn_read(struct conn *c, json_t **msg)
{
	char *nl;

	while (!(nl = memchr(c->buf, '\n', c->len)) || blank(c->buf, (size_t)(nl - c->buf))) {
		ssize_t n;

		if (nl) { /* a blank line: drop it */
			c->len -= (size_t)(nl + 1 - c->buf);
			memmove(c->buf, nl + 1, c->len);
			continue;
		}
		if (c->len == sizeof(c->buf)) {
			return ctl_err(BDR_EXIT_FAILED, "protocol", "bdrd sent a line over %d bytes",
				       BDR_CONTROL_MAX_LINE);
		}
		if ((n = wait_readable(c)))
			return (int)n;
		n = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return lost(c, "before its answer");
		c->len += (size_t)n;
	}
	*msg = json_loadb(c->buf, (size_t)(nl - c->buf), 0, NULL);
	c->len -= (size_t)(nl + 1 - c->buf);
	memmove(c->buf, nl + 1, c->len);
	if (!json_is_object(*msg)) {
		json_decref(*msg);
		*msg = NULL;
		return ctl_err(BDR_EXIT_FAILED, "protocol",
			       "bdrd sent something that is not a JSON object");
	}
	return 0;
}

/* The exit status for the error answer msg, after printing it. */
static int report_error(const json_t *msg)
{
	const json_t *err = json_object_get(msg, "error");
	const char *code = ctl_jstr(err, "code", "?");
	int ex = bdr_control_code_exit(code);

	return ctl_err(ex < 0 ? BDR_EXIT_FAILED : ex, code, "%s [%s]",
		       ctl_jstr(err, "message", "(no message)"), code);
}

/* Handles one answer line; 0 with *done set on the final one. */
static int handle(json_t *msg, ctl_event_fn *on_event, void *arg, json_t **result, bool *done)
{
	json_t *id = json_object_get(msg, "id");
	json_t *ok = json_object_get(msg, "ok");

	/* A null id is the server speaking of the connection (permission, limits). */
	if (!json_is_null(id) && json_integer_value(id) != REQ_ID) {
		return ctl_err(BDR_EXIT_FAILED, "protocol", "bdrd answered another request id");
	}
	if (json_object_get(msg, "event") && json_is_integer(id)) {
		on_event(msg, arg);
		return 0;
	}
	*done = true;
	on_event(NULL, arg);
	if (!json_is_true(ok))
		return report_error(msg);
	*result = json_incref(json_object_get(msg, "result"));
	if (!json_is_object(*result)) {
		json_decref(*result);
		return ctl_err(BDR_EXIT_FAILED, "protocol", "bdrd answered without a result");
	}
	return 0;
}

static void no_events(json_t *ev, void *arg)
{
	(void)ev, (void)arg;
}

int ctl_call(const struct ctl_args *a, json_t *req, ctl_event_fn *on_event, void *arg,
	     json_t **result)
{
	return ctl_call_fd(a, req, -1, on_event, arg, result);
}

int ctl_call_fd(const struct ctl_args *a, json_t *req, int fd, ctl_event_fn *on_event, void *arg,
		json_t **result)
{
	struct conn *c = ctl_check_alloc(malloc(sizeof(*c)));
	bool done = false;
	int r;

	*result = NULL;
	if (!req) {
		free(c);
		fputs("bdrctl: arguments must be valid UTF-8\n", stderr);
		return BDR_EXIT_USAGE;
	}
	json_object_set_new(req, "id", json_integer(REQ_ID));
	json_object_set_new(req, "v", json_integer(BDR_CONTROL_VERSION));
	c->timeout_s = a->timeout_s;
	clock_gettime(CLOCK_MONOTONIC, &c->deadline);
	c->deadline.tv_sec += a->timeout_s;
	r = conn_open(c, a->socket);
	if (r) {
		free(c);
		json_decref(req);
		return r;
	}
	/* A failed send is not the end: the server may have answered and
	 * closed first (permission_denied, busy); read what it said. */
	r = conn_send(c, req, fd);
	if (r == BDR_EXIT_UNREACHABLE)
		r = 0;
	while (r == 0 && !done) {
		json_t *msg = NULL;

		r = conn_read(c, &msg);
		if (r == 0)
			r = handle(msg, on_event ? on_event : no_events, arg, result, &done);
		json_decref(msg);
	}
	close(c->fd);
	free(c);
	json_decref(req);
	return r;
}

int ctl_simple(const struct ctl_args *a, json_t *req, void (*show)(json_t *result))
{
	json_t *result;
	int r = ctl_call(a, req, NULL, NULL, &result);

	if (r)
		return r;
	if (a->json)
		ctl_print_json(result);
	else
		show(result);
	json_decref(result);
	return 0;
}

int ctl_open_input(const char *path, bool dir)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | (dir ? O_DIRECTORY : 0));

	if (fd < 0) {
		ctl_err(BDR_EXIT_FAILED, "local_file", "%s: %s", path,
			errno == ENOTDIR ? "not a directory" : strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || (!dir && !S_ISREG(st.st_mode))) {
		ctl_err(BDR_EXIT_FAILED, "local_file", "%s: not a regular file", path);
		close(fd);
		return -1;
	}
	/* Reads of the file block as usual (O_NONBLOCK kept open() off a FIFO). */
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	return fd;
}
