/* A stand-in bdrd for bdrctl's tests: the real control server
 * (src/daemon/control.c) with canned handlers shaped as proto/control.md
 * says. Usage: fake_bdrd SOCKET [--open]; prints "ready" when listening,
 * stops on SIGTERM. --open makes the socket mode 0666 so the credential
 * check, not the mode, turns strangers away. */
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/control.h"

static uv_loop_t *loop;

#define STATUS_JSON \
	"{\"transfers\":[{\"transfer\":7,\"package\":\"app\",\"to\":\"branch1\",\"version\":4,\"priority\":\"medium\",\"state\":\"sending\",\"bytes_sent\":1048576,\"bytes_total\":4194304,\"bytes_saved\":7000000,\"rate_bps\":250000,\"last_error\":null},{\"transfer\":9,\"package\":\"app10\",\"to\":\"dp2\",\"version\":2,\"priority\":\"medium\",\"state\":\"activated\",\"bytes_sent\":900,\"bytes_total\":1024,\"bytes_saved\":124,\"rate_bps\":0,\"last_error\":null,\"queued_at\":\"2026-11-24T09:00:00+01:00\",\"updated_at\":\"2026-11-24T09:30:00+01:00\",\"activated_at\":\"2026-11-24T09:30:00+01:00\"},{\"transfer\":11,\"package\":\"app10\",\"to\":\"dp10\",\"version\":3,\"priority\":\"medium\",\"state\":\"queued\",\"bytes_sent\":0,\"bytes_total\":1024,\"bytes_saved\":0,\"rate_bps\":0,\"last_error\":null,\"waiting\":\"window closed to medium priority; opens Sat 00:00\",\"queued_at\":\"2026-11-25T12:00:00+01:00\",\"updated_at\":null,\"activated_at\":null},{\"transfer\":10,\"package\":\"app10\",\"to\":\"dp2\",\"version\":3,\"priority\":\"medium\",\"state\":\"queued\",\"bytes_sent\":0,\"bytes_total\":1024,\"bytes_saved\":0,\"rate_bps\":0,\"last_error\":null,\"waiting\":\"window closed to medium priority; opens Sat 00:00\",\"queued_at\":\"2026-11-25T12:00:00+01:00\",\"updated_at\":null,\"activated_at\":null}],\"received\":[{\"package\":\"tools\",\"from\":\"hq\",\"version\":12,\"state\":\"failed\",\"bytes_received\":123,\"bytes_total\":4567,\"last_error\":\"hash mismatch in bin/tool\"}]}"

static void status(struct bdr_control_req *req, json_t *args, void *arg)
{
	const char *pkg = json_string_value(json_object_get(args, "package"));

	(void)arg;
	if (pkg && !strcmp(pkg, "none")) {
		bdr_control_done(req, json_pack("{s:[], s:[]}", "transfers", "received"));
		return;
	}
	/* The same document as STATUS in test_bdrctl_usage.py. */
	bdr_control_done(req, json_loads(STATUS_JSON, 0, NULL));
}

static void packages(struct bdr_control_req *req, json_t *args, void *arg)
{
	(void)args, (void)arg;
	bdr_control_done(req, json_pack("{s:[{s:s, s:[i,i,i], s:i}, {s:s, s:[], s:n}]}",
					"packages", "name", "app", "versions", 2, 3, 4, "active", 4,
					"name", "empty", "versions", "active"));
}

static void peers(struct bdr_control_req *req, json_t *args, void *arg)
{
	(void)args, (void)arg;
	bdr_control_done(req, json_pack("{s:[{s:s, s:s, s:[s,s], s:b, s:n}]}", "peers", "name",
					"branch1", "public_key",
					"q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=", "addresses",
					"10.0.0.7:7743", "branch1.example:7743", "connected", 1,
					"last_error"));
}

static void reload(struct bdr_control_req *req, json_t *args, void *arg)
{
	(void)args, (void)arg;
	bdr_control_fail(req, "invalid_config", "%s",
			 "/etc/bdr/bdr.conf:3: unknown key 'lisen'\n"
			 "/etc/bdr/bdr.conf:9: peer 'x': no address");
}

/* schedule: three addresses of branch, seen on Wednesday 2026-11-25 at
 * noon, Paris time: an hourly rate whose runs fit the narrow grid, a pulse,
 * and a rate too long for its single hour (the wide grid). */
static json_t *grid(const char *const days[7])
{
	json_t *g = json_array();

	for (int d = 0; d < 7; d++) {
		json_t *row = json_array();
		for (int h = 0; h < 24; h++)
			json_array_append_new(row, json_integer(days[d][h] - '0'));
		json_array_append_new(g, row);
	}
	return g;
}

static json_t *rates(const json_int_t bps[24])
{
	json_t *a = json_array();

	for (int h = 0; h < 24; h++)
		json_array_append_new(a, json_integer(bps[h]));
	return a;
}

static void schedule(struct bdr_control_req *req, json_t *args, void *arg)
{
	static const char *const mpls[7] = {
		"111111111111111111111111", "111111111111111111111111", "111111111111111111111111",
		"111111111111111111111111", "111111111111111111000000", "222222222222222222222222",
		"222222222222222222222222",
	};
	static const char *const open[7] = {
		"333333333333333333333333", "333333333333333333333333", "333333333333333333333333",
		"333333333333333333333333", "333333333333333333333333", "333333333333333333333333",
		"333333333333333333333333",
	};
	static const char *const night[7] = {
		"333333300000000000003333", "333333300000000000003333", "333333300000000000003333",
		"333333300000000000003333", "333333300000000000003333", "333333300000000000003333",
		"333333300000000000003333",
	};
	static const json_int_t office[24] = { 0, 0, 0, 0, 0, 0, 0, 0, 262144, 262144, 262144,
					       262144, 262144, 262144, 262144, 262144, 262144,
					       262144 };
	static const json_int_t mixed[24] = { 0, 0, 0, 0, 0, 0, 0, 0, 250000, 262144, 262144,
					      262144, 262144, 262144, 262144, 262144, 262144,
					      262144 };
	const char *site;

	(void)arg;
	if (bdr_control_unpack(req, args, "{s:s}", "site", &site) < 0)
		return;
	if (!strcmp(site, "hermit")) { /* a peer that only connects to us */
		bdr_control_done(req, json_pack("{s:s, s:n, s:s, s:[]}", "site", site, "timezone", "now",
						"2026-11-25T11:00:00+00:00", "addresses"));
		return;
	}
	if (strcmp(site, "branch")) {
		bdr_control_fail(req, "unknown_site", "no site named '%s'", site);
		return;
	}
	bdr_control_done(req, json_pack(
		"{s:s, s:s, s:s, s:["
		"{s:i, s:s, s:s, s:s, s:o, s:s, s:o, s:n, s:{s:b, s:b, s:b}, s:{s:s, s:n, s:n},"
		" s:{s:n, s:s, s:n}},"
		"{s:i, s:n, s:s, s:s, s:o, s:s, s:n, s:{s:i, s:i}, s:{s:b, s:b, s:b},"
		" s:{s:n, s:n, s:n}, s:{s:n, s:n, s:n}},"
		"{s:i, s:s, s:s, s:s, s:o, s:s, s:o, s:n, s:{s:b, s:b, s:b}, s:{s:n, s:n, s:n},"
		" s:{s:s, s:s, s:s}}]}",
		"site", "branch", "timezone", "Europe/Paris", "now", "2026-11-25T12:00:00+01:00",
		"addresses",
		"index", 0, "name", "mpls", "address", "10.0.0.7:7411", "schedule",
		"all all high; fri 18-24 closed; weekend all medium", "grid", grid(mpls), "rate",
		"08-18 256K", "rates_bps", rates(office), "pulse", "open_now", "high", 1, "medium", 0,
		"low", 0, "until", "high", "2026-11-27T18:00:00+01:00", "medium", "low", "next_open",
		"high", "medium", "2026-11-28T00:00:00+01:00", "low",
		"index", 1, "name", "address", "[2001:db8::7]:7411", "schedule", "all all all",
		"grid", grid(open), "rate", "pulse 1M 30s", "rates_bps", "pulse", "block_bytes",
		1048576, "gap_ms", 30000, "open_now", "high", 1, "medium", 1, "low", 1, "until",
		"high", "medium", "low", "next_open", "high", "medium", "low",
		"index", 2, "name", "dsl", "address", "dsl.example:7411", "schedule",
		"all 07-20 closed", "grid", grid(night), "rate", "08-09 2Mbit, 09-18 256K",
		"rates_bps", rates(mixed), "pulse", "open_now", "high", 0, "medium", 0, "low", 0,
		"until", "high", "medium", "low", "next_open", "high", "2026-11-25T20:00:00+01:00",
		"medium", "2026-11-25T20:00:00+01:00", "low", "2026-11-25T20:00:00+01:00"));
}

struct push {
	uv_timer_t timer;
	struct bdr_control_req *req;
	int step;
};

static void push_closed(uv_handle_t *h)
{
	free(h->data);
}

/* With --wait: three progress events (9000 of 12000 bytes held, 1000
 * more sent each), the transfer's end, then the result. */
static void push_tick(uv_timer_t *t)
{
	struct push *p = t->data;

	if (p->step < 3) {
		p->step++;
		bdr_control_event(p->req, json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
						    "event", "progress", "to", "branch1", "transfer",
						    (json_int_t)7, "bytes_sent",
						    (json_int_t)(p->step * 1000), "bytes_total",
						    (json_int_t)3000, "bytes_saved", (json_int_t)9000,
						    "rate_bps", (json_int_t)1000, "bytes_done",
						    (json_int_t)(9000 + p->step * 1000), "bytes_size",
						    (json_int_t)12000));
		return;
	}
	bdr_control_event(p->req, json_pack("{s:s, s:s, s:i, s:s, s:i, s:s, s:i, s:i, s:n}", "event",
					    "ended", "package", "app", "version", 4, "to", "branch1",
					    "transfer", 7, "state", "activated", "bytes_sent", 3000,
					    "bytes_saved", 9000, "last_error"));
	bdr_control_done(p->req, json_pack("{s:s, s:i, s:s, s:i, s:s, s:i, s:i}", "package", "app",
					   "version", 4, "to", "branch1", "transfer", 7, "state",
					   "activated", "bytes_sent", 3000, "bytes_saved", 9000));
	uv_close((uv_handle_t *)t, push_closed);
}

static void push(struct bdr_control_req *req, json_t *args, void *arg)
{
	const char *pkg, *to, *prio = "medium";
	char link[64], dir[4096];
	int wait = 0, fd = bdr_control_req_fd(req);
	ssize_t n;
	struct push *p;

	(void)arg;
	/* The directory bdrctl passed, named as the test can compare it. */
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, dir, sizeof(dir) - 1);
	dir[n > 0 ? n : 0] = '\0';
	close(fd);
	if (bdr_control_unpack(req, args, "{s:s, s:s, s?s, s?b}", "package", &pkg, "to", &to,
			       "priority", &prio, "wait", &wait) < 0)
		return;
	if (strcmp(to, "branch1")) {
		bdr_control_fail(req, "unknown_site", "no site named '%s'", to);
		return;
	}
	bdr_control_event(req, json_pack("{s:s, s:i, s:i, s:i, s:i}", "event", "imported",
					 "version", 4, "files", 120, "bytes", 7340032, "files_read",
					 3));
	bdr_control_event(req, json_pack("{s:s, s:i, s:i}", "event", "queued", "transfer", 7,
					 "version", 4));
	if (!wait) {
		/* dir and priority echo back so the test sees what bdrctl sent. */
		bdr_control_done(req, json_pack("{s:s, s:i, s:s, s:i, s:s, s:s, s:s}", "package", pkg,
						"version", 4, "to", to, "transfer", 7, "state",
						"queued", "dir", dir, "priority", prio));
		return;
	}
	p = calloc(1, sizeof(*p));
	p->req = req;
	uv_timer_init(loop, &p->timer);
	p->timer.data = p;
	uv_timer_start(&p->timer, push_tick, 1, 1);
}

static const struct bdr_control_cmd table[] = {
	{ "status", status }, { "packages", packages }, { "peers", peers },
	{ "reload", reload }, { "push", push, BDR_CONTROL_FD_DIR },         { "schedule", schedule },
	{ NULL, NULL },
};

static void on_term(uv_signal_t *s, int sig)
{
	(void)sig;
	bdr_control_stop(s->data);
	uv_close((uv_handle_t *)s, NULL);
}

int main(int argc, char **argv)
{
	struct bdr_control_opts o = { .daemon_uid = getuid(), .allowed_gid = BDR_CONTROL_NO_GID };
	struct bdr_control *c;
	uv_signal_t term;
	int r;

	if (argc < 2)
		return 2;
	loop = uv_default_loop();
	r = bdr_control_start(&c, loop, argv[1], &o, table, NULL);
	if (r < 0) {
		fprintf(stderr, "fake_bdrd: %s\n", strerror(-r));
		return 1;
	}
	if (argc > 2 && !strcmp(argv[2], "--open"))
		chmod(argv[1], 0666);
	uv_signal_init(loop, &term);
	term.data = c;
	uv_signal_start(&term, on_term, SIGTERM);
	printf("ready\n");
	fflush(stdout);
	uv_run(loop, UV_RUN_DEFAULT);
	return uv_loop_close(loop) == 0 ? 0 : 1;
}
