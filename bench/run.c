/* One timed run of one tool: its own fresh directories and daemons, the
 * scenario's starting state made outside the timing, then the one command a
 * user would time, then the measurements and the bit-exact check.
 *
 * bdr: two bdrd processes (hq sends, branch receives) with their own keys,
 * configs and libraries; the timed command is `bdrctl push --wait`, which
 * returns once branch has verified and activated v2. Sender and receiver
 * CPU are the daemons' process clocks (every thread) across the command;
 * their peak RSS is VmHWM, reset when the timing starts (clear_refs 5).
 *
 * rsync: a daemon (`rsync --daemon`) per run at the receiving side and the
 * client pushing `-a --delete [-z] v2/` to it. rsync's daemon forks a child
 * per connection: the daemon is stopped after the run, and its rusage from
 * wait4 covers the children it reaped (CPU and max RSS). */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

enum { SND, RCV };

/* Ports inside the namespaces of --link, which are fresh and empty. */
#define LINK_PORT_BDR_SND 7401
#define LINK_PORT_BDR_RCV 7402
#define LINK_PORT_RSYNC 7403

struct daemon {
	pid_t pid;
	int notify; /* bound datagram socket, or -1 */
	char dir[PATH_MAX], log[PATH_MAX], sock[PATH_MAX];
	int port;
};

static double tv_sec(struct timeval tv)
{
	return (double)tv.tv_sec + (double)tv.tv_usec * 1e-6;
}

static int mkdirs(const char *path)
{
	char p[PATH_MAX];

	if (snprintf(p, sizeof(p), "%s", path) >= (int)sizeof(p))
		return -ENAMETOOLONG;
	for (char *s = p + 1; *s; s++)
		if (*s == '/') {
			*s = '\0';
			if (mkdir(p, 0755) < 0 && errno != EEXIST)
				return -errno;
			*s = '/';
		}
	return mkdir(p, 0755) < 0 && errno != EEXIST ? -errno : 0;
}

/* A TCP port on 127.0.0.1 that nobody listens on now; in a --link
 * namespace, a fixed one (it is empty). */
static int pick_port(const struct bench_env *e, int fixed)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	int fd, port = -1;

	if (e->link.mbit)
		return fixed;
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -errno;
	if (!bind(fd, (struct sockaddr *)&a, sizeof(a)) &&
	    !getsockname(fd, (struct sockaddr *)&a, &alen))
		port = ntohs(a.sin_port);
	close(fd);
	return port > 0 ? port : -EADDRNOTAVAIL;
}

static int open_log(const char *path)
{
	return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

/* Runs argv to completion with its output appended to log; on failure the
 * reason goes to s->err and the log's tail to stderr. */
static int run_logged(char *const argv[], int netns, const char *log, double timeout,
		      struct bench_sample *s)
{
	int fd = open_log(log), st = 0, err;
	struct proc_opts o = { .netns = netns, .out_fd = fd, .err_fd = fd };
	char how[64];

	err = proc_run(argv, &o, timeout, &st);
	if (fd >= 0)
		close(fd);
	if (err && err != -EINTR) {
		proc_status_str(st, how, sizeof(how));
		snprintf(s->err, sizeof(s->err), "%s %s: %s", argv[0], argv[1],
			 err == -ECHILD ? how : strerror(-err));
		print_tail(log, 8);
	}
	return err;
}

/* ---- keys ---- */

int run_keys(struct bench_env *e)
{
	static const char *const who[2] = { "hq", "branch" };
	char out[PATH_MAX], log[PATH_MAX];
	struct bench_sample s = {0};

	pathf(log, sizeof(log), "%s/keys.log", e->tmp);
	for (int i = 0; i < 2; i++) {
		pathf(e->key[i], sizeof(e->key[i]), "%s/%s.key", e->tmp, who[i]);
		pathf(out, sizeof(out), "%s/%s.pub", e->tmp, who[i]);
		char *gen[] = { (char *)e->bdrctl, "keygen", "-o", e->key[i], NULL };
		char *pub[] = { (char *)e->bdrctl, "pubkey", "-k", e->key[i], NULL };
		if (run_logged(gen, -1, log, 30, &s))
			return -EIO;
		int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		struct proc_opts o = { .netns = -1, .out_fd = fd, .err_fd = -1 };
		int err = fd < 0 ? -errno : proc_run(pub, &o, 30, NULL);
		if (fd >= 0)
			close(fd);
		if (err || read_small(out, e->pub[i], sizeof(e->pub[i])) <= 0)
			return -EIO;
		e->pub[i][strcspn(e->pub[i], "\n")] = '\0';
	}
	return 0;
}

/* ---- daemons ---- */

static int notify_socket(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd;

	if (snprintf(a.sun_path, sizeof(a.sun_path), "%s", path) >= (int)sizeof(a.sun_path))
		return -ENAMETOOLONG;
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
		return -errno;
	unlink(path);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

static void daemon_stop(struct daemon *d, struct rusage *ru)
{
	if (d->pid > 0)
		proc_stop(d->pid, 30, NULL, ru);
	d->pid = 0;
	if (d->notify >= 0)
		close(d->notify);
	d->notify = -1;
}

/* bdr.conf of one side: it listens on 127.0.0.1 in its namespace; hq
 * reaches branch at peer_addr (the counting relay), branch never dials. */
static int bdr_conf(const struct bench_env *e, const struct daemon *d, const char *name,
		    int me, const char *peer, const char *peer_addr)
{
	char conf[PATH_MAX], text[4 * PATH_MAX + 512];
	int n = snprintf(text, sizeof(text),
			 "[site]\nname = %s\nlisten = 127.0.0.1:%d\nkey = %s\ndata = %s/data\n"
			 "control = %s\n\n[peer %s]\npublic_key = %s\n",
			 name, d->port, e->key[me], d->dir, d->sock, peer, e->pub[1 - me]);

	if (peer_addr && n < (int)sizeof(text))
		n += snprintf(text + n, sizeof(text) - (size_t)n, "address = %s\n", peer_addr);
	if (n >= (int)sizeof(text))
		return -ENAMETOOLONG;
	pathf(conf, sizeof(conf), "%s/bdr.conf", d->dir);
	return write_file(conf, text);
}

/* Whether the file at path holds text (a daemon's log, read whole: small). */
static bool file_has(const char *path, const char *text)
{
	char buf[65536];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);

	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	return strstr(buf, text) != NULL;
}

static int bdrd_start(const struct bench_env *e, struct daemon *d, const char *base,
		      const char *name, int me, const char *peer, const char *peer_addr,
		      struct bench_sample *s)
{
	char conf[PATH_MAX], npath[PATH_MAX], data[PATH_MAX + 8];
	int err, fd;

	snprintf(d->dir, sizeof(d->dir), "%s/%s", base, name);
	pathf(d->log, sizeof(d->log), "%s/log", d->dir);
	pathf(d->sock, sizeof(d->sock), "%s/control.sock", d->dir);
	pathf(conf, sizeof(conf), "%s/bdr.conf", d->dir);
	pathf(npath, sizeof(npath), "%s/notify.sock", d->dir);
	snprintf(data, sizeof(data), "%s/data", d->dir);
	if ((err = mkdirs(data)) || (err = bdr_conf(e, d, name, me, peer, peer_addr)))
		return err;
	if ((d->notify = notify_socket(npath)) < 0)
		return d->notify;
	char *argv[] = { (char *)e->bdrd, "-c", conf, NULL };
	struct proc_opts o = { .netns = e->link.fd[me], .notify = npath };
	/* pick_port's port may be taken by someone else before bdrd binds it
	 * (tests run side by side): then another port, a few times. */
	for (int tries = 0; tries < 5; tries++) {
		o.out_fd = o.err_fd = fd = open_log(d->log);
		err = proc_spawn(argv, &o, &d->pid);
		if (fd >= 0)
			close(fd);
		if (!err && (err = proc_wait_ready(d->notify, d->pid, 30)) == -ECHILD)
			d->pid = 0; /* reaped */
		if (!err || e->link.mbit || !file_has(d->log, "address already in use"))
			break;
		if ((d->port = pick_port(e, d->port)) < 0 ||
		    (err = bdr_conf(e, d, name, me, peer, peer_addr)))
			break;
	}
	if (err) {
		snprintf(s->err, sizeof(s->err), "bdrd %s did not start: %s", name, strerror(-err));
		print_tail(d->log, 8);
	}
	return err;
}

static int bdr_push(const struct bench_env *e, const struct bench_corpus *c,
		    const struct daemon *hq, const char *dir, struct bench_sample *s)
{
	char log[PATH_MAX];
	char *argv[] = { (char *)e->bdrctl, "-s", (char *)hq->sock, "push", (char *)c->pkg,
			 (char *)dir, "--to", "branch", "--wait", NULL };

	pathf(log, sizeof(log), "%s/push.log", hq->dir);
	return run_logged(argv, -1, log, e->timeout_s, s);
}

/* VmHWM starts again from the current RSS: the timed part's peak only. */
static void hwm_reset(pid_t pid)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/clear_refs", (int)pid);
	write_file(path, "5");
}

static void proxy_delta(struct proxy *p, const struct proxy_counts *before,
			struct bench_sample *s)
{
	struct proxy_counts now;

	proxy_counts(p, &now);
	s->up = now.up - before->up;
	s->down = now.down - before->down;
}

static int run_bdr(const struct bench_env *e, const struct bench_corpus *c,
		   enum bench_scenario sc, const char *base, struct bench_sample *s)
{
	struct daemon d[2] = { { .notify = -1 }, { .notify = -1 } };
	struct proxy *px = NULL;
	struct proxy_counts pc0;
	char addr[96], tree[PATH_MAX];
	double cpu0[2] = {0}, cpu1[2] = {0}, t0;
	int err, port;

	if ((d[SND].port = pick_port(e, LINK_PORT_BDR_SND)) < 0 ||
	    (d[RCV].port = pick_port(e, LINK_PORT_BDR_RCV)) < 0)
		return snprintf(s->err, sizeof(s->err), "no free port"), -EADDRNOTAVAIL;
	if ((err = bdrd_start(e, &d[RCV], base, "branch", RCV, "hq", NULL, s)))
		goto out;
	if ((err = proxy_start(&px, e->link.fd[RCV], e->link.host, d[RCV].port, &port))) {
		snprintf(s->err, sizeof(s->err), "relay: %s", strerror(-err));
		goto out;
	}
	snprintf(addr, sizeof(addr), "%s:%d", e->link.host, port);
	if ((err = bdrd_start(e, &d[SND], base, "hq", SND, "branch", addr, s)))
		goto out;
	if (sc != SC_INITIAL) {
		if ((err = link_shaped(&e->link, false)) ||
		    (err = bdr_push(e, c, &d[SND], sc == SC_NOCHANGE ? c->v2 : c->v1, s)) ||
		    (err = link_shaped(&e->link, true)))
			goto out;
	}

	proxy_counts(px, &pc0);
	for (int i = 0; i < 2; i++) {
		hwm_reset(d[i].pid);
		proc_cpu(d[i].pid, &cpu0[i]);
	}
	t0 = now_sec();
	if ((err = bdr_push(e, c, &d[SND], c->v2, s)))
		goto out;
	s->wall_s = now_sec() - t0;
	for (int i = 0; i < 2; i++)
		if (proc_cpu(d[i].pid, &cpu1[i]) || proc_hwm(d[i].pid, i ? &s->rss_rcv : &s->rss_snd))
			err = -ESRCH;
	if (err) {
		snprintf(s->err, sizeof(s->err), "a bdrd exited during the push");
		goto out;
	}
	s->cpu_snd_s = cpu1[SND] - cpu0[SND];
	s->cpu_rcv_s = cpu1[RCV] - cpu0[RCV];
	proxy_delta(px, &pc0, s);
	pathf(tree, sizeof(tree), "%s/data/packages/%s/current/tree", d[RCV].dir, c->pkg);
	s->ok = tree_compare(c->v2, tree, "bdr") == 0;
	if (!s->ok)
		snprintf(s->err, sizeof(s->err), "the destination differs from v2");
out:
	for (int i = 0; i < 2; i++)
		daemon_stop(&d[i], NULL);
	proxy_stop(px);
	return err;
}

/* ---- rsync ---- */

static int rsyncd_conf(const char *base, int port, const char *dst)
{
	char path[PATH_MAX], text[3 * PATH_MAX];

	/* munge symlinks defaults to on without a chroot: it would rewrite
	 * every symlink target. uid/gid: the daemon must not drop to nobody. */
	snprintf(text, sizeof(text),
		 "port = %d\naddress = 127.0.0.1\nuse chroot = no\nmunge symlinks = no\n"
		 "numeric ids = yes\nuid = %d\ngid = %d\nlog file = %s/rsyncd.log\n"
		 "pid file = %s/rsyncd.pid\n[dst]\npath = %s\nread only = no\n",
		 port, (int)getuid(), (int)getgid(), base, base, dst);
	snprintf(path, sizeof(path), "%s/rsyncd.conf", base);
	return write_file(path, text);
}

/* The destination's starting state, made by cp outside the timing. */
static int rsync_prepare(const struct bench_env *e, const struct bench_corpus *c,
			 enum bench_scenario sc, const char *base, const char *dst,
			 struct bench_sample *s)
{
	char log[PATH_MAX];

	if (sc == SC_INITIAL)
		return mkdirs(dst);
	snprintf(log, sizeof(log), "%s/cp.log", base);
	char *argv[] = { "cp", "-a", sc == SC_NOCHANGE ? (char *)c->v2 : (char *)c->v1,
			 (char *)dst, NULL };
	return run_logged(argv, -1, log, e->timeout_s, s);
}

static int run_rsync(const struct bench_env *e, const struct bench_corpus *c,
		     enum bench_scenario sc, bool z, const char *base, struct bench_sample *s)
{
	char dst[PATH_MAX], conf[PATH_MAX + 16], log[PATH_MAX], src[PATH_MAX + 2], url[128];
	struct proxy *px = NULL;
	struct proxy_counts pc0;
	struct rusage ru_snd = {0}, ru_rcv = {0};
	pid_t dpid = 0, cpid;
	int err, port, pport, st = 0, fd = -1, k = 0;
	char *cargv[8];

	snprintf(dst, sizeof(dst), "%s/dst", base);
	snprintf(conf, sizeof(conf), "--config=%s/rsyncd.conf", base);
	snprintf(log, sizeof(log), "%s/rsync.log", base);
	snprintf(src, sizeof(src), "%s/", c->v2);
	if ((port = pick_port(e, LINK_PORT_RSYNC)) < 0)
		return snprintf(s->err, sizeof(s->err), "no free port"), port;
	if ((err = mkdirs(base)) || (err = rsyncd_conf(base, port, dst)) ||
	    (err = rsync_prepare(e, c, sc, base, dst, s)))
		goto out;
	char *dargv[] = { (char *)e->rsync, "--daemon", "--no-detach", conf, NULL };
	fd = open_log(log);
	struct proc_opts o = { .netns = e->link.fd[RCV], .out_fd = fd, .err_fd = fd };
	err = proc_spawn(dargv, &o, &dpid);
	if (!err && (err = proc_wait_listen(dpid, port, 30)) == -ECHILD)
		proc_wait(dpid, 1, NULL, NULL), dpid = 0;
	if (err) {
		snprintf(s->err, sizeof(s->err), "rsync --daemon did not start: %s", strerror(-err));
		print_tail(log, 8);
		goto out;
	}
	if ((err = proxy_start(&px, e->link.fd[RCV], e->link.host, port, &pport)))
		goto out;
	snprintf(url, sizeof(url), "rsync://%s:%d/dst/", e->link.host, pport);
	cargv[k++] = (char *)e->rsync;
	cargv[k++] = "-a";
	cargv[k++] = "--delete";
	if (z)
		cargv[k++] = "-z";
	cargv[k++] = src;
	cargv[k++] = url;
	cargv[k] = NULL;
	o.netns = e->link.fd[SND];
	proxy_counts(px, &pc0);
	double t0 = now_sec();
	if (!(err = proc_spawn(cargv, &o, &cpid)))
		err = proc_wait(cpid, e->timeout_s, &st, &ru_snd);
	s->wall_s = now_sec() - t0;
	if (!err && !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
		err = -ECHILD;
	if (err) {
		char how[64];
		proc_status_str(st, how, sizeof(how));
		snprintf(s->err, sizeof(s->err), "rsync client: %s",
			 err == -ECHILD ? how : strerror(-err));
		print_tail(log, 8);
		goto out;
	}
	/* The daemon's connection child has exited once it is reaped. */
	if ((err = proc_wait_childless(dpid, 30)))
		goto out;
	proxy_delta(px, &pc0, s);
	daemon_stop(&(struct daemon){ .pid = dpid, .notify = -1 }, &ru_rcv);
	dpid = 0;
	s->cpu_snd_s = tv_sec(ru_snd.ru_utime) + tv_sec(ru_snd.ru_stime);
	s->cpu_rcv_s = tv_sec(ru_rcv.ru_utime) + tv_sec(ru_rcv.ru_stime);
	s->rss_snd = (uint64_t)ru_snd.ru_maxrss * 1024;
	s->rss_rcv = (uint64_t)ru_rcv.ru_maxrss * 1024;
	s->ok = tree_compare(c->v2, dst, z ? "rsync -z" : "rsync") == 0;
	if (!s->ok)
		snprintf(s->err, sizeof(s->err), "the destination differs from v2");
out:
	if (fd >= 0)
		close(fd);
	if (dpid > 0)
		proc_stop(dpid, 10, NULL, NULL);
	proxy_stop(px);
	return err;
}

int run_tool(const struct bench_env *e, const struct bench_corpus *c, enum bench_scenario sc,
	     enum bench_tool tool, int run, struct bench_sample *s)
{
	char base[PATH_MAX];
	int err;

	memset(s, 0, sizeof(*s));
	s->reported_sent = -1;
	pathf(base, sizeof(base), "%s/%s-%s-%s-%d", e->tmp, c->pkg, bench_scenario_names[sc],
		 bench_tool_names[tool], run);
	if (tool == TOOL_BDR)
		err = run_bdr(e, c, sc, base, s);
	else
		err = run_rsync(e, c, sc, tool == TOOL_RSYNC_Z, base, s);
	if (err && !s->err[0])
		snprintf(s->err, sizeof(s->err), "%s", strerror(-err));
	if (!getenv("BDR_BENCH_KEEP"))
		tree_remove(base);
	if (s->ok)
		s->err[0] = '\0';
	return bench_interrupted ? -EINTR : 0;
}
