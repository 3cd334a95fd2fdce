/* The control socket on a real loop: a server on a temporary path, a table
 * of sync and async handlers, and plain-socket clients. No sleeps: the loop
 * runs until a condition holds, and a client's socket is watched by a
 * uv_poll so the loop wakes when an answer arrives. A watchdog timer fails a
 * test that would otherwise hang. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "daemon/control.h"
#include "testutil.h"

static char dir[PATH_MAX], sock_path[PATH_MAX];
static uv_loop_t loop;
static uv_timer_t watchdog;
static struct bdr_control *srv;
static struct bdr_control_opts opts;

/* What the handlers and the log saw. */
static struct bdr_control_req *held; /* a request the "hold" handler keeps */
static int held_gone, log_count;
static char log_last[512];

/* ---- the handler table ---- */

static void h_echo(struct bdr_control_req *req, json_t *args, void *arg)
{
	(void)arg;
	bdr_control_done(req, json_pack("{s:O}", "args", args));
}

static void h_count(struct bdr_control_req *req, json_t *args, void *arg)
{
	(void)args, (void)arg;
	for (int i = 0; i < 3; i++)
		bdr_control_event(req, json_pack("{s:s, s:i}", "event", "tick", "n", i));
	bdr_control_done(req, NULL);
}

struct slow {
	uv_timer_t timer;
	struct bdr_control_req *req;
};

static void slow_closed(uv_handle_t *h)
{
	free(h->data);
}

static void slow_fire(uv_timer_t *t)
{
	struct slow *s = t->data;

	bdr_control_event(s->req, json_pack("{s:s}", "event", "progress"));
	bdr_control_done(s->req, json_pack("{s:s}", "state", "late"));
	uv_close((uv_handle_t *)t, slow_closed);
}

/* Answers on a later loop iteration, from a timer. */
static void h_slow(struct bdr_control_req *req, json_t *args, void *arg)
{
	struct slow *s = calloc(1, sizeof(*s));

	(void)args, (void)arg;
	s->req = req;
	uv_timer_init(&loop, &s->timer);
	s->timer.data = s;
	uv_timer_start(&s->timer, slow_fire, 0, 0);
}

static void on_gone(struct bdr_control_req *req, void *arg)
{
	cr_assert_eq(req, held);
	cr_assert_eq(arg, &held_gone);
	held_gone++;
}

/* Keeps the request until the test ends it. */
static void h_hold(struct bdr_control_req *req, json_t *args, void *arg)
{
	(void)args, (void)arg;
	held = req;
	bdr_control_req_on_gone(req, on_gone, &held_gone);
}

static void h_fail(struct bdr_control_req *req, json_t *args, void *arg)
{
	(void)args, (void)arg;
	bdr_control_fail(req, "unknown_site", "no site named '%s'", "branch9");
}

static void h_badcode(struct bdr_control_req *req, json_t *args, void *arg)
{
	(void)args, (void)arg;
	bdr_control_fail(req, "no_such_code", "oops");
}

static void h_unpack(struct bdr_control_req *req, json_t *args, void *arg)
{
	const char *package;

	(void)arg;
	if (bdr_control_unpack(req, args, "{s:s}", "package", &package) < 0)
		return;
	bdr_control_done(req, json_pack("{s:s}", "package", package));
}

static void h_big(struct bdr_control_req *req, json_t *args, void *arg)
{
	char *s = malloc(BDR_CONTROL_MAX_LINE + 1);

	(void)args, (void)arg;
	memset(s, 'x', BDR_CONTROL_MAX_LINE);
	s[BDR_CONTROL_MAX_LINE] = '\0';
	bdr_control_event(req, json_pack("{s:s, s:s}", "event", "huge", "s", s));
	bdr_control_done(req, json_pack("{s:s}", "s", s));
	free(s);
}

/* Takes its directory: answers its inode and whether it is close-on-exec. */
static void h_dir(struct bdr_control_req *req, json_t *args, void *arg)
{
	int fd = bdr_control_req_fd(req);
	struct stat st;

	(void)args, (void)arg;
	cr_assert_geq(fd, 0);
	cr_assert_eq(bdr_control_req_fd(req), -1, "a descriptor is taken once");
	cr_assert_eq(fstat(fd, &st), 0);
	bdr_control_done(req, json_pack("{s:I, s:b, s:I}", "ino", (json_int_t)st.st_ino, "cloexec",
					(fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0, "uid",
					(json_int_t)bdr_control_req_cred(req)->uid));
	close(fd);
}

/* Leaves its descriptor to the server, which must close it. */
static void h_out(struct bdr_control_req *req, json_t *args, void *arg)
{
	(void)args, (void)arg;
	bdr_control_done(req, NULL);
}

/* {"n": N}: N events, at once, whether the client reads or not. */
static void h_flood(struct bdr_control_req *req, json_t *args, void *arg)
{
	json_int_t n = json_integer_value(json_object_get(args, "n"));

	(void)arg;
	for (json_int_t i = 0; i < n; i++)
		bdr_control_event(req, json_pack("{s:s, s:I}", "event", "tick", "n", i));
	bdr_control_done(req, NULL);
}

static const struct bdr_control_cmd table[] = {
	{ "echo", h_echo },     { "count", h_count }, { "slow", h_slow },
	{ "hold", h_hold },     { "fail", h_fail },   { "badcode", h_badcode },
	{ "unpack", h_unpack }, { "big", h_big },     { "flood", h_flood },
	{ "dir", h_dir, BDR_CONTROL_FD_DIR },         { "out", h_out, BDR_CONTROL_FD_OUT },
	{ NULL, NULL },
};

static void test_log(void *arg, enum bdr_log_level level, const char *msg)
{
	(void)arg, (void)level;
	snprintf(log_last, sizeof(log_last), "%s", msg);
	log_count++;
}

/* ---- the loop ---- */

static void on_watchdog(uv_timer_t *t)
{
	(void)t;
	cr_assert_fail("watchdog: the loop waited 10 s for a condition");
}

static void run_until(const int *flag)
{
	while (!*flag)
		uv_run(&loop, UV_RUN_ONCE);
}

static int start(const struct bdr_control_opts *o)
{
	return bdr_control_start(&srv, &loop, sock_path, o, table, NULL);
}

static void setup(void)
{
	tu_mkdtemp(dir, "control");
	snprintf(sock_path, sizeof(sock_path), "%s/control.sock", dir);
	cr_assert_eq(uv_loop_init(&loop), 0);
	uv_timer_init(&loop, &watchdog);
	uv_timer_start(&watchdog, on_watchdog, 10000, 0);
	opts = (struct bdr_control_opts){ .daemon_uid = getuid(), .allowed_gid = BDR_CONTROL_NO_GID,
					  .log = test_log };
	held = NULL;
	held_gone = log_count = 0;
	srv = NULL;
}

static void teardown(void)
{
	bdr_control_stop(srv);
	uv_close((uv_handle_t *)&watchdog, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	cr_assert_eq(uv_loop_close(&loop), 0, "handles left open");
	tu_rmrf(dir);
}

TestSuite(control, .init = setup, .fini = teardown);

/* ---- a plain-socket client ---- */

struct tclient {
	int fd;
	uv_poll_t poll; /* wakes the loop when fd is readable */
	int readable;
	size_t len;
	char buf[4 * BDR_CONTROL_MAX_LINE];
};

static void tc_poll_cb(uv_poll_t *p, int status, int events)
{
	struct tclient *c = p->data;

	(void)status, (void)events;
	c->readable = 1;
}

static struct tclient *tc_connect(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct tclient *c = calloc(1, sizeof(*c));

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(c->fd, 0);
	cr_assert_eq(connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "connect: %s",
		     strerror(errno));
	fcntl(c->fd, F_SETFL, O_NONBLOCK);
	uv_poll_init(&loop, &c->poll, c->fd);
	c->poll.data = c;
	uv_poll_start(&c->poll, UV_READABLE | UV_DISCONNECT, tc_poll_cb);
	return c;
}

static void tc_freed(uv_handle_t *h)
{
	struct tclient *c = h->data;

	close(c->fd);
	free(c);
}

static void tc_close(struct tclient *c)
{
	uv_close((uv_handle_t *)&c->poll, tc_freed);
}

/* Writes len bytes, running the loop whenever the socket is full. */
static void tc_sendn(struct tclient *c, const char *s, size_t len)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = send(c->fd, s + off, len - off, MSG_NOSIGNAL);

		if (n < 0 && errno == EAGAIN) {
			uv_run(&loop, UV_RUN_ONCE);
			continue;
		}
		if (n < 0)
			return; /* the server closed: the test reads why */
		off += (size_t)n;
	}
}

static void tc_send(struct tclient *c, const char *s)
{
	tc_sendn(c, s, strlen(s));
}

/* The next line as JSON, or NULL at end of stream. */
static json_t *tc_recv(struct tclient *c)
{
	for (;;) {
		char *nl = memchr(c->buf, '\n', c->len);
		ssize_t n;

		if (nl) {
			json_error_t err;
			json_t *j = json_loadb(c->buf, (size_t)(nl - c->buf), 0, &err);

			cr_assert_not_null(j, "server sent invalid JSON: %s", err.text);
			c->len -= (size_t)(nl + 1 - c->buf);
			memmove(c->buf, nl + 1, c->len);
			return j;
		}
		n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return NULL;
		if (n > 0) {
			c->len += (size_t)n;
			continue;
		}
		cr_assert_eq(errno, EAGAIN);
		c->readable = 0;
		run_until(&c->readable);
	}
}

static json_int_t jid(const json_t *m)
{
	cr_assert(json_is_integer(json_object_get(m, "id")), "id missing");
	return json_integer_value(json_object_get(m, "id"));
}

static const char *jcode(const json_t *m)
{
	cr_assert(json_is_false(json_object_get(m, "ok")), "expected an error");
	return json_string_value(json_object_get(json_object_get(m, "error"), "code"));
}

/* Receives the final answer and checks its id and error code (NULL: ok). */
static json_t *expect(struct tclient *c, json_int_t id, const char *code)
{
	json_t *m = tc_recv(c);

	cr_assert_not_null(m, "connection closed, expected an answer");
	if (id < 0)
		cr_assert(json_is_null(json_object_get(m, "id")), "expected id null");
	else
		cr_assert_eq(jid(m), id);
	if (code)
		cr_assert_str_eq(jcode(m), code);
	else
		cr_assert(json_is_true(json_object_get(m, "ok")), "expected ok");
	return m;
}

static void expect_free(struct tclient *c, json_int_t id, const char *code)
{
	json_decref(expect(c, id, code));
}

/* ---- framing ---- */

Test(control, request_answer_and_ids)
{
	struct tclient *c;
	json_t *m;

	cr_assert_eq(start(&opts), 0);
	c = tc_connect();
	tc_send(c, "{\"id\":7,\"cmd\":\"echo\",\"x\":42}\n");
	m = expect(c, 7, NULL);
	cr_assert_eq(json_integer_value(json_object_get(
			     json_object_get(json_object_get(m, "result"), "args"), "x")),
		     42);
	json_decref(m);
	/* Two requests in one write, answered in order; blank lines ignored. */
	tc_send(c, "{\"id\":8,\"cmd\":\"echo\"}\n\n  \r\n{\"id\":9,\"cmd\":\"echo\",\"v\":1}\n");
	expect_free(c, 8, NULL);
	expect_free(c, 9, NULL);
	/* A line split across writes. */
	tc_send(c, "{\"id\":10,");
	tc_send(c, "\"cmd\":\"echo\"}\n");
	expect_free(c, 10, NULL);
	tc_close(c);
}

Test(control, events_then_final)
{
	struct tclient *c;

	cr_assert_eq(start(&opts), 0);
	c = tc_connect();
	tc_send(c, "{\"id\":3,\"cmd\":\"count\"}\n");
	for (int i = 0; i < 3; i++) {
		json_t *m = tc_recv(c);

		cr_assert_eq(jid(m), 3);
		cr_assert_str_eq(json_string_value(json_object_get(m, "event")), "tick");
		cr_assert_eq(json_integer_value(json_object_get(m, "n")), i);
		cr_assert_null(json_object_get(m, "ok"));
		json_decref(m);
	}
	expect_free(c, 3, NULL);
	tc_close(c);
}

Test(control, async_answer_and_busy)
{
	struct tclient *c;
	json_t *m;

	cr_assert_eq(start(&opts), 0);
	c = tc_connect();
	tc_send(c, "{\"id\":1,\"cmd\":\"slow\"}\n{\"id\":2,\"cmd\":\"echo\"}\n");
	expect_free(c, 2, "busy");
	m = tc_recv(c);
	cr_assert_eq(jid(m), 1);
	cr_assert_str_eq(json_string_value(json_object_get(m, "event")), "progress");
	json_decref(m);
	m = expect(c, 1, NULL);
	cr_assert_str_eq(json_string_value(json_object_get(json_object_get(m, "result"), "state")),
			 "late");
	json_decref(m);
	/* The connection takes the next request once the first is done. */
	tc_send(c, "{\"id\":4,\"cmd\":\"echo\"}\n");
	expect_free(c, 4, NULL);
	tc_close(c);
}

Test(control, malformed_requests)
{
	struct tclient *c;
	json_t *m;

	cr_assert_eq(start(&opts), 0);
	c = tc_connect();
	tc_send(c, "{\"id\":5,\"cmd\":\"nope\"}\n");
	expect_free(c, 5, "unknown_command");
	tc_send(c, "this is not json\n");
	expect_free(c, -1, "bad_request");
	tc_send(c, "[1,2]\n");
	expect_free(c, -1, "bad_request");
	tc_send(c, "{\"cmd\":\"echo\"}\n");
	expect_free(c, -1, "bad_request");
	tc_send(c, "{\"id\":-1,\"cmd\":\"echo\"}\n");
	expect_free(c, -1, "bad_request");
	tc_send(c, "{\"id\":6}\n");
	expect_free(c, 6, "bad_request");
	tc_send(c, "{\"id\":6,\"cmd\":\"echo\",\"v\":2}\n");
	expect_free(c, 6, "bad_request");
	tc_send(c, "{\"id\":1,\"id\":2,\"cmd\":\"echo\"}\n");
	expect_free(c, -1, "bad_request");
	tc_send(c, "{\"id\":11,\"cmd\":\"fail\"}\n");
	m = expect(c, 11, "unknown_site");
	cr_assert_str_eq(json_string_value(json_object_get(json_object_get(m, "error"), "message")),
			 "no site named 'branch9'");
	json_decref(m);
	tc_send(c, "{\"id\":12,\"cmd\":\"badcode\"}\n");
	expect_free(c, 12, "internal");
	cr_assert(strstr(log_last, "no_such_code"), "log: %s", log_last);
	tc_send(c, "{\"id\":13,\"cmd\":\"unpack\"}\n");
	m = expect(c, 13, "bad_request");
	cr_assert(strstr(json_string_value(json_object_get(json_object_get(m, "error"), "message")),
			 "package"));
	json_decref(m);
	tc_send(c, "{\"id\":14,\"cmd\":\"unpack\",\"package\":\"app\"}\n");
	expect_free(c, 14, NULL);
	/* Still usable after all of that. */
	tc_send(c, "{\"id\":15,\"cmd\":\"echo\"}\n");
	expect_free(c, 15, NULL);
	tc_close(c);
}

/* A line of exactly the limit is fine; one byte more closes the connection. */
Test(control, line_limit)
{
	size_t len = BDR_CONTROL_MAX_LINE;
	char *line = malloc(len + 2);
	const char *req = "{\"id\":1,\"cmd\":\"echo\"}";
	struct tclient *c;

	cr_assert_eq(start(&opts), 0);
	c = tc_connect();
	memset(line, ' ', len);
	memcpy(line, req, strlen(req));
	line[len] = '\n';
	tc_sendn(c, line, len + 1);
	expect_free(c, 1, NULL);
	memset(line, 'a', len + 1);
	line[len + 1] = '\n';
	tc_sendn(c, line, len + 2);
	expect_free(c, -1, "bad_request");
	cr_assert_null(tc_recv(c), "connection should be closed");
	free(line);
	tc_close(c);
}

Test(control, answer_too_large)
{
	struct tclient *c;

	cr_assert_eq(start(&opts), 0);
	c = tc_connect();
	tc_send(c, "{\"id\":1,\"cmd\":\"big\"}\n");
	/* The oversized event is dropped, the oversized answer replaced. */
	expect_free(c, 1, "internal");
	tc_close(c);
}

/* ---- disconnects ---- */

Test(control, client_gone_mid_request)
{
	struct tclient *c;
	struct bdr_control_req *req;

	cr_assert_eq(start(&opts), 0);
	c = tc_connect();
	tc_send(c, "{\"id\":1,\"cmd\":\"hold\"}\n");
	while (!held)
		uv_run(&loop, UV_RUN_ONCE);
	cr_assert_not(bdr_control_req_gone(held));
	cr_assert_str_eq(bdr_control_req_cmd(held), "hold");
	tc_close(c);
	run_until(&held_gone);
	cr_assert_eq(held_gone, 1);
	req = held;
	cr_assert(bdr_control_req_gone(req));
	/* Later answers are safe no-ops (ASan would see a use after free). */
	bdr_control_event(req, json_pack("{s:s}", "event", "progress"));
	bdr_control_done(req, json_object());
}

/* A client that only shuts down its writing side still gets the answer. */
Test(control, half_close_gets_answer)
{
	struct tclient *c;

	cr_assert_eq(start(&opts), 0);
	c = tc_connect();
	tc_send(c, "{\"id\":1,\"cmd\":\"hold\"}\n");
	while (!held)
		uv_run(&loop, UV_RUN_ONCE);
	shutdown(c->fd, SHUT_WR);
	/* Let the server see the end of stream before the answer. */
	for (int i = 0; i < 3; i++)
		uv_run(&loop, UV_RUN_NOWAIT);
	cr_assert_eq(held_gone, 0);
	bdr_control_done(held, NULL);
	expect_free(c, 1, NULL);
	cr_assert_null(tc_recv(c));
	tc_close(c);
}

Test(control, stop_with_request_running)
{
	struct tclient *c;

	cr_assert_eq(start(&opts), 0);
	c = tc_connect();
	tc_send(c, "{\"id\":1,\"cmd\":\"hold\"}\n");
	while (!held)
		uv_run(&loop, UV_RUN_ONCE);
	bdr_control_stop(srv);
	srv = NULL;
	cr_assert_eq(held_gone, 1);
	cr_assert_eq(access(sock_path, F_OK), -1, "socket file left behind");
	cr_assert_null(tc_recv(c));
	bdr_control_done(held, NULL);
	tc_close(c);
}

Test(control, max_clients)
{
	struct tclient *a, *b;

	opts.max_clients = 1;
	cr_assert_eq(start(&opts), 0);
	a = tc_connect();
	tc_send(a, "{\"id\":1,\"cmd\":\"echo\"}\n");
	expect_free(a, 1, NULL);
	b = tc_connect();
	expect_free(b, -1, "busy");
	cr_assert_null(tc_recv(b));
	tc_close(b);
	tc_close(a);
}

/* ---- descriptors ---- */

/* Sends the line s with n descriptors beside its first bytes. */
static void tc_send_fds(struct tclient *c, const char *s, const int *fds, size_t n)
{
	char ctrl[CMSG_SPACE(16 * sizeof(int))] = { 0 };
	struct iovec iov = { .iov_base = (void *)s, .iov_len = strlen(s) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctrl,
			     .msg_controllen = CMSG_SPACE(n * sizeof(int)) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(n * sizeof(int));
	memcpy(CMSG_DATA(cm), fds, n * sizeof(int));
	cr_assert_eq(sendmsg(c->fd, &mh, MSG_NOSIGNAL), (ssize_t)strlen(s), "sendmsg: %s",
		     strerror(errno));
}

/* Whether the write end of the pipe whose read end is r is closed
 * everywhere (a read sees end of file rather than waiting). */
static bool pipe_orphaned(int r)
{
	char b;

	return read(r, &b, 1) == 0;
}

Test(control, descriptor_reaches_its_handler)
{
	struct tclient *c;
	struct stat st;
	json_t *m;
	int d = open(dir, O_RDONLY | O_DIRECTORY);

	cr_assert_eq(start(&opts), 0);
	c = tc_connect();
	tc_send_fds(c, "{\"id\":1,\"cmd\":\"dir\"}\n", &d, 1);
	m = expect(c, 1, NULL);
	fstat(d, &st);
	cr_assert_eq(json_integer_value(json_object_get(json_object_get(m, "result"), "ino")),
		     (json_int_t)st.st_ino);
	cr_assert(json_is_true(json_object_get(json_object_get(m, "result"), "cloexec")),
		  "a received descriptor must be close-on-exec from the start");
	cr_assert_eq(json_integer_value(json_object_get(json_object_get(m, "result"), "uid")),
		     (json_int_t)getuid());
	json_decref(m);
	close(d);
	tc_close(c);
}

Test(control, descriptors_checked_and_closed)
{
	struct tclient *c;
	int p[2], d = open(dir, O_RDONLY | O_DIRECTORY);
	json_t *m;

	cr_assert_eq(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	cr_assert_eq(start(&opts), 0);
	c = tc_connect();
	/* A pipe where a directory belongs: refused, and closed by the server. */
	tc_send_fds(c, "{\"id\":1,\"cmd\":\"dir\"}\n", &p[1], 1);
	m = expect(c, 1, "bad_request");
	cr_assert(strstr(json_string_value(json_object_get(json_object_get(m, "error"), "message")),
			 "not a directory"));
	json_decref(m);
	/* No descriptor at all; a path instead of one. */
	tc_send(c, "{\"id\":2,\"cmd\":\"dir\"}\n");
	expect_free(c, 2, "bad_request");
	tc_send_fds(c, "{\"id\":3,\"cmd\":\"out\",\"file\":\"/etc/x\"}\n", &p[1], 1);
	m = expect(c, 3, "bad_request");
	cr_assert(strstr(json_string_value(json_object_get(json_object_get(m, "error"), "message")),
			 "opens no path"));
	json_decref(m);
	/* Taken by the request, never used by the handler: closed with it. */
	tc_send_fds(c, "{\"id\":4,\"cmd\":\"out\"}\n", &p[1], 1);
	expect_free(c, 4, NULL);
	/* With a line that takes none: answered, then the extra is refused. */
	tc_send_fds(c, "{\"id\":5,\"cmd\":\"echo\"}\n", &p[1], 1);
	expect_free(c, 5, NULL);
	expect_free(c, -1, "bad_request");
	/* Refused lines take theirs too: the next request gets its own. */
	tc_send_fds(c, "{\"id\":6,\"cmd\":\"out\",\"v\":9}\n", &p[1], 1);
	expect_free(c, 6, "bad_request");
	tc_send_fds(c, "{\"id\":7,\"cmd\":\"dir\"}\n", &d, 1);
	expect_free(c, 7, NULL);
	close(p[1]);
	close(d);
	cr_assert(pipe_orphaned(p[0]), "the server kept a descriptor");
	close(p[0]);
	tc_close(c);
}

Test(control, too_many_descriptors)
{
	struct tclient *c;
	int p[2], fds[BDR_CONTROL_MAX_FDS + 1];

	cr_assert_eq(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	for (size_t i = 0; i < BDR_CONTROL_MAX_FDS + 1; i++)
		fds[i] = p[1];
	cr_assert_eq(start(&opts), 0);
	c = tc_connect();
	tc_send_fds(c, "{\"id\":1,\"cmd\":\"echo\"}\n", fds, BDR_CONTROL_MAX_FDS + 1);
	expect_free(c, -1, "bad_request");
	cr_assert_null(tc_recv(c), "the connection must close");
	close(p[1]);
	/* The server closes its copies once the connection is gone. */
	while (!pipe_orphaned(p[0]))
		uv_run(&loop, UV_RUN_NOWAIT);
	close(p[0]);
	tc_close(c);
}

/* ---- backlog ---- */

Test(control, client_that_never_reads_is_dropped)
{
	struct tclient *c, *other;
	int small = 4096;

	cr_assert_eq(start(&opts), 0);
	c = tc_connect();
	setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	/* 200000 events of ~30 bytes: 6 MB, past the 4 MiB cap. */
	tc_send(c, "{\"id\":1,\"cmd\":\"flood\",\"n\":200000}\n");
	while (!strstr(log_last, "dropped the client"))
		uv_run(&loop, UV_RUN_ONCE);
	cr_assert(strstr(log_last, "uid"), "%s", log_last);
	/* The rest of its answers were freed, not sent: the stream ends well
	 * short of the whole flood. */
	{
		size_t lines = 0;
		json_t *m;

		while ((m = tc_recv(c))) {
			json_decref(m);
			lines++;
		}
		cr_assert_lt(lines, 200000 / 2, "%zu lines came through", lines);
	}
	other = tc_connect();
	tc_send(other, "{\"id\":2,\"cmd\":\"echo\"}\n");
	expect_free(other, 2, NULL);
	tc_close(other);
	tc_close(c);
}

/* ---- credentials ---- */

Test(control, peer_check_direct)
{
	struct bdr_control_opts o = { .daemon_uid = 1000, .allowed_gid = 4242 };
	gid_t in[] = { 10, 4242 }, out[] = { 10, 20 };

	cr_assert(bdr_control_peer_allowed(&o, &(struct ucred){ .uid = 0, .gid = 7 }, out, 2));
	cr_assert(bdr_control_peer_allowed(&o, &(struct ucred){ .uid = 1000, .gid = 7 }, out, 2));
	cr_assert(bdr_control_peer_allowed(&o, &(struct ucred){ .uid = 1234, .gid = 4242 }, out, 2));
	cr_assert(bdr_control_peer_allowed(&o, &(struct ucred){ .uid = 1234, .gid = 7 }, in, 2));
	cr_assert_not(bdr_control_peer_allowed(&o, &(struct ucred){ .uid = 1234, .gid = 7 }, out, 2));
	cr_assert_not(bdr_control_peer_allowed(&o, &(struct ucred){ .uid = 1234, .gid = 7 }, in, 0));
	o.allowed_gid = BDR_CONTROL_NO_GID;
	cr_assert_not(bdr_control_peer_allowed(&o, &(struct ucred){ .uid = 1234, .gid = 4242 }, in, 2));
}

/* A gid this process is not in. */
static gid_t foreign_gid(void)
{
	gid_t groups[256];
	int n = getgroups(256, groups);
	gid_t g = 4242;

	for (int i = 0; i < n; i++)
		if (groups[i] == g || getgid() == g)
			g++, i = -1;
	return g;
}

/* The /proc fallback: a child in the group (setgroups) is allowed, this
 * process is not. */
Test(control, peer_check_proc_groups)
{
	struct bdr_control_opts o = { .daemon_uid = 0, .allowed_gid = foreign_gid() };
	int ready[2];
	pid_t pid;
	char b;

	if (geteuid() != 0)
		cr_skip_test("needs root for setgroups");
	o.daemon_uid = 99999;
	cr_assert_eq(pipe(ready), 0);
	pid = fork();
	if (pid == 0) {
		gid_t g = o.allowed_gid;

		close(ready[0]);
		if (setgroups(1, &g) < 0)
			_exit(1);
		(void)!write(ready[1], "x", 1);
		pause();
		_exit(0);
	}
	close(ready[1]);
	cr_assert_eq(read(ready[0], &b, 1), 1, "child could not setgroups");
	cr_assert(bdr_control_peer_allowed(&o, &(struct ucred){ .pid = pid, .uid = 1234, .gid = 7 },
					   NULL, 0));
	cr_assert_not(bdr_control_peer_allowed(
		&o, &(struct ucred){ .pid = getpid(), .uid = 1234, .gid = 7 }, NULL, 0));
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	close(ready[0]);
}

/* A real connection from an unprivileged uid: one error line, then closed. */
Test(control, denied_peer_end_to_end)
{
	pid_t pid;
	int status;

	if (geteuid() != 0)
		cr_skip_test("needs root to connect as another uid");
	opts.daemon_uid = 0;
	cr_assert_eq(start(&opts), 0);
	/* The mode would stop the peer before the check we want to see. */
	cr_assert_eq(chmod(sock_path, 0666), 0);
	/* mkdtemp made the directory 0700: let the unprivileged child in. */
	cr_assert_eq(chmod(dir, 0711), 0);
	pid = fork();
	if (pid == 0) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		char buf[512] = "";
		int fd;

		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
		if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
			_exit(2);
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			_exit(3);
		/* The server may refuse and close before this request is sent:
		 * EPIPE then, not a SIGPIPE that kills the child; its answer is
		 * still there to read. */
		(void)!send(fd, "{\"id\":1,\"cmd\":\"echo\"}\n", 22, MSG_NOSIGNAL);
		if (read(fd, buf, sizeof(buf) - 1) <= 0)
			_exit(4);
		_exit(strstr(buf, "permission_denied") && strstr(buf, "\"id\":null") ? 0 : 5);
	}
	/* Until the server logged the refusal and the child read it (in either
	 * order), or 10 s. */
	bool exited = false;
	for (int i = 0; i < 10000 && !(exited && log_count); i++) {
		uv_run(&loop, UV_RUN_NOWAIT);
		if (!exited && waitpid(pid, &status, WNOHANG) == pid)
			exited = true;
		usleep(1000);
	}
	cr_assert(exited, "the child did not finish");
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
	cr_assert(log_count > 0, "no refusal was logged");
	cr_assert(strstr(log_last, "uid 65534"), "log: %s", log_last);
}

/* ---- the socket file ---- */

Test(control, socket_mode_and_group)
{
	struct stat st;

	opts.allowed_gid = foreign_gid();
	if (geteuid() != 0)
		opts.allowed_gid = BDR_CONTROL_NO_GID;
	cr_assert_eq(start(&opts), 0);
	cr_assert_eq(lstat(sock_path, &st), 0);
	cr_assert(S_ISSOCK(st.st_mode));
	cr_assert_eq(st.st_mode & 07777, 0660, "mode %o", st.st_mode & 07777);
	if (opts.allowed_gid != BDR_CONTROL_NO_GID)
		cr_assert_eq(st.st_gid, opts.allowed_gid);
}

Test(control, stale_socket_replaced)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct tclient *c;

	/* A socket file nobody listens on, as a killed daemon leaves it. */
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	cr_assert_eq(start(&opts), 0);
	c = tc_connect();
	tc_send(c, "{\"id\":1,\"cmd\":\"echo\"}\n");
	expect_free(c, 1, NULL);
	tc_close(c);
}

Test(control, live_socket_refused)
{
	struct bdr_control *second = NULL;
	struct tclient *c;

	cr_assert_eq(start(&opts), 0);
	cr_assert_eq(bdr_control_start(&second, &loop, sock_path, &opts, table, NULL), -EADDRINUSE);
	cr_assert_null(second);
	cr_assert(strstr(log_last, "in use"), "log: %s", log_last);
	/* The first server is untouched. */
	c = tc_connect();
	tc_send(c, "{\"id\":1,\"cmd\":\"echo\"}\n");
	expect_free(c, 1, NULL);
	tc_close(c);
}

Test(control, non_socket_and_missing_dir)
{
	char missing[PATH_MAX];
	struct stat st;

	tu_write(sock_path, "keep me", 7);
	cr_assert_eq(start(&opts), -EEXIST);
	cr_assert_eq(stat(sock_path, &st), 0);
	cr_assert(S_ISREG(st.st_mode));
	snprintf(missing, sizeof(missing), "%s/nodir/control.sock", dir);
	cr_assert_eq(bdr_control_start(&srv, &loop, missing, &opts, table, NULL), -ENOENT);
	srv = NULL;
}
