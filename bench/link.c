/* --link MBIT: the sender's and the receiver's side each in a network
 * namespace of their own, joined by a veth pair whose two ends are shaped
 * by a token bucket (tc tbf) to MBIT in each direction: a WAN link on one
 * machine. The counting relay sits on the receiver's side, so everything it
 * counts crossed the shaped link. Needs root; made with ip(8) and tc(8). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

#define LINK_SUBNET "10.211.0."

/* Runs one command (NULL-terminated arguments); its stderr is appended to
 * the log, printed if it fails. */
static int sh(const char *log, ...)
{
	char *argv[24];
	int n = 0, err, fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	va_list ap;

	va_start(ap, log);
	while (n < 23 && (argv[n] = va_arg(ap, char *)))
		n++;
	va_end(ap);
	argv[n] = NULL;
	struct proc_opts o = { .netns = -1, .out_fd = fd, .err_fd = fd };
	err = proc_run(argv, &o, 30, NULL);
	if (fd >= 0)
		close(fd);
	if (err) {
		fprintf(stderr, "bdr-bench: --link: `%s %s %s ...` failed: %s\n", argv[0], argv[1],
			argv[2], err == -ECHILD ? "see below" : strerror(-err));
		print_tail(log, 5);
	}
	return err;
}

/* tbf on side s's end of the pair, or (mbit 0) none: the link unshaped. */
static int shape(const struct bench_link *l, const char *log, int s, unsigned mbit)
{
	char rate[32], burst[32];
	/* tbf needs a bucket of at least one timer tick of traffic: 10 ms. */
	unsigned long b = (unsigned long)mbit * 1250;

	if (!mbit)
		return sh(log, "tc", "-n", l->ns[s], "qdisc", "del", "dev", l->veth[s], "root", NULL);
	snprintf(rate, sizeof(rate), "%umbit", mbit);
	snprintf(burst, sizeof(burst), "%lu", b > 32768 ? b : 32768);
	return sh(log, "tc", "-n", l->ns[s], "qdisc", "replace", "dev", l->veth[s], "root", "tbf",
		  "rate", rate, "burst", burst, "latency", "100ms", NULL);
}

static int make_pair(struct bench_link *l, const char *log)
{
	if (sh(log, "ip", "link", "add", l->veth[0], "netns", l->ns[0], "type", "veth", "peer",
	       "name", l->veth[1], "netns", l->ns[1], NULL))
		return -EIO;
	for (int s = 0; s < 2; s++) {
		char addr[32];
		snprintf(addr, sizeof(addr), LINK_SUBNET "%d/24", s + 1);
		if (sh(log, "ip", "-n", l->ns[s], "addr", "add", addr, "dev", l->veth[s], NULL) ||
		    sh(log, "ip", "-n", l->ns[s], "link", "set", "lo", "up", NULL) ||
		    sh(log, "ip", "-n", l->ns[s], "link", "set", l->veth[s], "up", NULL) ||
		    shape(l, log, s, l->mbit))
			return -EIO;
	}
	return 0;
}

/* The setup before a timed run (the destination's copy of v1) is not what
 * the run measures: it crosses the pair unshaped, so a 500 MB corpus takes
 * seconds, not minutes, to prepare at 10 Mbit/s. */
int link_shaped(const struct bench_link *l, bool on)
{
	if (!l->mbit)
		return 0;
	for (int s = 0; s < 2; s++)
		if (shape(l, l->log, s, on ? l->mbit : 0))
			return -EIO;
	return 0;
}

int link_setup(struct bench_link *l, unsigned mbit, const char *tmp)
{
	char *log = l->log, path[64];
	static const char *const side[2] = { "snd", "rcv" };

	memset(l, 0, sizeof(*l));
	l->fd[0] = l->fd[1] = -1;
	l->mbit = mbit;
	l->host = "127.0.0.1";
	if (!mbit)
		return 0;
	l->host = LINK_SUBNET "2";
	snprintf(l->log, sizeof(l->log), "%s/link.log", tmp);
	for (int s = 0; s < 2; s++) {
		snprintf(l->ns[s], sizeof(l->ns[s]), "bdr-bench-%d-%s", (int)getpid(), side[s]);
		snprintf(l->veth[s], sizeof(l->veth[s]), "bb%c%d", side[s][0], (int)getpid() % 10000000);
		if (sh(log, "ip", "netns", "add", l->ns[s], NULL))
			return -EIO;
		l->made[s] = true;
	}
	if (make_pair(l, log))
		return -EIO;
	for (int s = 0; s < 2; s++) {
		snprintf(path, sizeof(path), "/run/netns/%s", l->ns[s]);
		if ((l->fd[s] = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
			fprintf(stderr, "bdr-bench: --link: %s: %s\n", path, strerror(errno));
			return -errno;
		}
	}
	return 0;
}

/* Deleting a namespace takes its end of the veth pair, and so the pair. */
void link_teardown(struct bench_link *l)
{
	char log[] = "/dev/null";

	for (int s = 0; s < 2; s++) {
		if (l->fd[s] >= 0)
			close(l->fd[s]);
		l->fd[s] = -1;
		if (l->made[s])
			sh(log, "ip", "netns", "del", l->ns[s], NULL);
		l->made[s] = false;
	}
}
