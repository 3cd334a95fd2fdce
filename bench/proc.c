/* Children of the harness: spawned into a network namespace if asked, in
 * their own process group (a Ctrl-C reaches only the harness, which stops
 * them in order), with PR_SET_PDEATHSIG so none outlives a killed harness.
 * Every spawn is reaped by proc_wait or proc_stop, on every path. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

extern char **environ;

double now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int pathf(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int proc_find(const char *name, char *out, size_t len)
{
	const char *path = getenv("PATH");

	if (strchr(name, '/'))
		return snprintf(out, len, "%s", name) < (int)len && !access(out, X_OK) ? 0 : -ENOENT;
	for (const char *p = path ? path : "/usr/bin:/bin"; *p;) {
		size_t n = strcspn(p, ":");
		if (snprintf(out, len, "%.*s/%s", (int)n, p, name) < (int)len && !access(out, X_OK))
			return 0;
		p += n + (p[n] == ':');
	}
	return -ENOENT;
}

/* environ without NOTIFY_SOCKET, plus notify's if given: built before
 * fork, since the child may only make async-signal-safe calls. */
static char **child_env(const char *notify, char *buf, size_t len)
{
	size_t n = 0, k = 0;

	while (environ[n])
		n++;
	char **env = calloc(n + 2, sizeof(*env));
	if (!env)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "NOTIFY_SOCKET=", 14))
			env[k++] = environ[i];
	if (notify && snprintf(buf, len, "NOTIFY_SOCKET=%s", notify) < (int)len)
		env[k++] = buf;
	return env;
}

static void child(char *const argv[], const char *exe, char **env, const struct proc_opts *o,
		  pid_t parent, int errpipe)
{
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	int err;

	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		_exit(127);
	setpgid(0, 0);
	if (null < 0 || dup2(null, 0) < 0 || dup2(o->out_fd >= 0 ? o->out_fd : null, 1) < 0 ||
	    dup2(o->err_fd >= 0 ? o->err_fd : null, 2) < 0)
		goto fail;
	if (o->netns >= 0 && setns(o->netns, CLONE_NEWNET) < 0)
		goto fail;
	execve(exe, argv, env);
fail:
	err = errno;
	if (write(errpipe, &err, sizeof(err)) < 0)
		_exit(127);
	_exit(127);
}

int proc_spawn(char *const argv[], const struct proc_opts *o, pid_t *pid)
{
	char exe[PATH_MAX], nbuf[PATH_MAX + 16];
	int ep[2], err = 0;
	char **env;
	pid_t parent = getpid();

	if (proc_find(argv[0], exe, sizeof(exe)) < 0)
		return -ENOENT;
	if (!(env = child_env(o->notify, nbuf, sizeof(nbuf))))
		return -ENOMEM;
	if (pipe2(ep, O_CLOEXEC) < 0) {
		free(env);
		return -errno;
	}
	*pid = fork();
	if (*pid == 0)
		child(argv, exe, env, o, parent, ep[1]);
	if (*pid < 0)
		err = -errno;
	close(ep[1]);
	/* The pipe closes at exec (0 bytes) or carries the child's errno. */
	if (*pid > 0 && read(ep[0], &err, sizeof(err)) == sizeof(err)) {
		waitpid(*pid, NULL, 0);
		err = -err;
	}
	close(ep[0]);
	free(env);
	return err;
}

static int wait_until(pid_t pid, double deadline, bool interruptible, int *status,
		      struct rusage *ru)
{
	int pfd = pidfd_open(pid, 0), st = 0;
	struct rusage r;
	pid_t got;

	for (;;) {
		got = wait4(pid, &st, WNOHANG, &r);
		if (got == pid || got < 0)
			break;
		double left = deadline - now_sec();
		if (left <= 0 || (interruptible && bench_interrupted))
			break;
		struct pollfd p = { .fd = pfd, .events = POLLIN };
		int ms = left > 0.2 ? 200 : (int)(left * 1000) + 1;
		/* Without a pidfd (an old kernel), a millisecond poll. */
		poll(pfd >= 0 ? &p : NULL, pfd >= 0, pfd >= 0 ? ms : 1);
	}
	if (pfd >= 0)
		close(pfd);
	if (got == pid) {
		if (status)
			*status = st;
		if (ru)
			*ru = r;
		return 0;
	}
	if (got < 0)
		return -errno;
	kill(pid, SIGKILL);
	wait4(pid, &st, 0, &r);
	return bench_interrupted && interruptible ? -EINTR : -ETIMEDOUT;
}

int proc_wait(pid_t pid, double timeout_s, int *status, struct rusage *ru)
{
	return wait_until(pid, now_sec() + timeout_s, true, status, ru);
}

int proc_stop(pid_t pid, double timeout_s, int *status, struct rusage *ru)
{
	kill(pid, SIGTERM);
	return wait_until(pid, now_sec() + timeout_s, false, status, ru);
}

int proc_run(char *const argv[], const struct proc_opts *o, double timeout_s, int *status)
{
	pid_t pid;
	int st = 0, err = proc_spawn(argv, o, &pid);

	if (!err)
		err = proc_wait(pid, timeout_s, &st, NULL);
	if (status)
		*status = st;
	if (!err && !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
		err = -ECHILD;
	return err;
}

void proc_status_str(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exited %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d", WTERMSIG(status));
	else
		snprintf(buf, len, "status 0x%x", (unsigned)status);
}

int proc_cpu(pid_t pid, double *sec)
{
	clockid_t cid;
	struct timespec ts;
	int err = clock_getcpuclockid(pid, &cid);

	if (err)
		return -err;
	if (clock_gettime(cid, &ts) < 0)
		return -errno;
	*sec = (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
	return 0;
}

int proc_hwm(pid_t pid, uint64_t *bytes)
{
	char path[64], buf[4096];
	unsigned long long kb;
	int n;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((n = read_small(path, buf, sizeof(buf))) < 0)
		return n;
	const char *p = strstr(buf, "\nVmHWM:");
	if (!p || sscanf(p + 7, "%llu", &kb) != 1)
		return -ENODATA;
	*bytes = (uint64_t)kb * 1024;
	return 0;
}

/* Whether pid has exited, without reaping it (its status stays for wait). */
static bool exited(pid_t pid)
{
	siginfo_t si = {0};

	return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid;
}

static bool listening(pid_t pid, int port)
{
	char path[64], line[512];
	unsigned lport, st;
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/net/tcp", (int)pid);
	if (!(f = fopen(path, "re")))
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = sscanf(line, " %*u: %*x:%x %*x:%*x %x", &lport, &st) == 2 &&
			(int)lport == port && st == 0x0A; /* TCP_LISTEN */
	fclose(f);
	return found;
}

static int children_count(pid_t pid)
{
	char path[96], buf[256];
	int n;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
	if ((n = read_small(path, buf, sizeof(buf))) < 0)
		return n;
	return n > 0; /* "PID PID ... ", empty once every child is reaped */
}

/* Why a wait for pid should end now: -ECHILD it exited (still unreaped),
 * -EINTR an interrupt, -ETIMEDOUT past end; 0 to go on waiting. */
static int give_up(pid_t pid, double end)
{
	if (exited(pid))
		return -ECHILD;
	if (bench_interrupted)
		return -EINTR;
	return now_sec() > end ? -ETIMEDOUT : 0;
}

/* Polls pred every 5 ms. */
static int poll_until(pid_t pid, double timeout_s, bool (*pred)(pid_t, int), int arg)
{
	double end = now_sec() + timeout_s;
	struct timespec ms5 = { 0, 5000000 };
	int err;

	while (!pred(pid, arg)) {
		if ((err = give_up(pid, end)))
			return err;
		nanosleep(&ms5, NULL);
	}
	return 0;
}

int proc_wait_listen(pid_t pid, int port, double timeout_s)
{
	return poll_until(pid, timeout_s, listening, port);
}

static bool childless(pid_t pid, int unused)
{
	(void)unused;
	return children_count(pid) == 0;
}

int proc_wait_childless(pid_t pid, double timeout_s)
{
	return poll_until(pid, timeout_s, childless, 0);
}

int proc_wait_ready(int fd, pid_t pid, double timeout_s)
{
	double end = now_sec() + timeout_s;
	char msg[4096];
	int err;

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 100) > 0) {
			ssize_t n = recv(fd, msg, sizeof(msg) - 1, MSG_DONTWAIT);
			msg[n > 0 ? n : 0] = '\0';
			for (char *l = strtok(msg, "\n"); l; l = strtok(NULL, "\n"))
				if (!strcmp(l, "READY=1"))
					return 0;
		}
		if ((err = give_up(pid, end)))
			return err;
	}
}

int read_small(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t got = 0;
	ssize_t n = 0;

	if (fd < 0)
		return -errno;
	while (got + 1 < len && (n = read(fd, buf + got, len - 1 - got)) > 0)
		got += (size_t)n;
	int err = n < 0 ? -errno : 0;
	close(fd);
	buf[got] = '\0';
	return err ? err : (int)got;
}

int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	size_t len = strlen(text);
	int err = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, text, len) != (ssize_t)len)
		err = -EIO;
	if (close(fd) < 0 && !err)
		err = -errno;
	return err;
}

/* The last lines of a log, indented, on stderr: what a failed run left. */
void print_tail(const char *path, int lines)
{
	char buf[8192];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	off_t size;
	ssize_t n;

	if (fd < 0)
		return;
	size = lseek(fd, 0, SEEK_END);
	n = pread(fd, buf, sizeof(buf) - 1, size > (off_t)sizeof(buf) - 1 ? size - (off_t)sizeof(buf) + 1 : 0);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	char *p = buf + n;
	if (p[-1] == '\n')
		p--;
	for (int k = 0; p > buf; p--)
		if (p[-1] == '\n' && ++k == lines)
			break;
	fprintf(stderr, "    --- %s (last lines):\n", path);
	for (char *l = strtok(p, "\n"); l; l = strtok(NULL, "\n"))
		fprintf(stderr, "    %s\n", l);
}
