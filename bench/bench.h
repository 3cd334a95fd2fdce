/* bdr-bench: bdr against rsync (daemon mode, plain and -z) on version pairs.
 *
 * Files: bench.c (options, the loop over corpora, scenarios, runs and
 * tools), proc.c (children: spawn, wait, stop, CPU and memory), proxy.c (the
 * counting TCP relay every tool's connection goes through), tree.c (compare,
 * size, copy, remove trees), link.c (two network namespaces joined by a
 * shaped veth pair), run.c (one timed run of each tool), report.c (medians,
 * the markdown table, JSON, the gnuplot chart).
 *
 * Dependency rule: only libc, pthreads and jansson. bdrd and bdrctl are
 * driven as separate processes, like any operator would; the harness links
 * nothing of bdr, so it measures the programs that ship. */
#ifndef BDR_BENCH_H
#define BDR_BENCH_H

#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/types.h>

#define BENCH_MAX_RUNS 101

enum bench_tool { TOOL_BDR, TOOL_RSYNC, TOOL_RSYNC_Z, NTOOLS };
enum bench_scenario { SC_INCREMENTAL, SC_INITIAL, SC_NOCHANGE, NSCENARIOS };

extern const char *const bench_tool_names[NTOOLS];
extern const char *const bench_scenario_names[NSCENARIOS];

/* Set by SIGINT/SIGTERM: waits end early, runs unwind and clean up. */
extern volatile sig_atomic_t bench_interrupted;

/* ---- proc.c ---- */

struct proc_opts {
	int netns;            /* a network namespace fd to enter, or -1 */
	int out_fd, err_fd;   /* the child's stdout/stderr; -1: /dev/null */
	const char *notify;   /* NOTIFY_SOCKET for the child, or NULL */
};

/* name itself if it holds a '/', else the first executable in PATH. */
int proc_find(const char *name, char *out, size_t len);
int proc_spawn(char *const argv[], const struct proc_opts *o, pid_t *pid);
/* Waits for pid to exit, at most timeout_s (and not past an interrupt);
 * then it is killed (SIGKILL) and reaped: -ETIMEDOUT or -EINTR. Always
 * reaps. status and ru may be NULL. */
int proc_wait(pid_t pid, double timeout_s, int *status, struct rusage *ru);
/* SIGTERM, up to timeout_s for it to exit, then SIGKILL; always reaps. */
int proc_stop(pid_t pid, double timeout_s, int *status, struct rusage *ru);
/* spawn + wait; 0 only when the child exited 0 (else -ECHILD, or as above). */
int proc_run(char *const argv[], const struct proc_opts *o, double timeout_s, int *status);
void proc_status_str(int status, char *buf, size_t len);
/* CPU time (user + system, every thread) the live process used so far. */
int proc_cpu(pid_t pid, double *sec);
/* VmHWM of a live process: its peak resident set so far. */
int proc_hwm(pid_t pid, uint64_t *bytes);
/* Until a TCP socket of pid's network namespace listens on port. */
int proc_wait_listen(pid_t pid, int port, double timeout_s);
/* Until pid has no children (rsync's daemon reaped its connection's). */
int proc_wait_childless(pid_t pid, double timeout_s);
/* Until a datagram on the bound socket fd says READY=1 (sd_notify), or pid
 * exits (-ECHILD, reaped), or the time is up. */
int proc_wait_ready(int fd, pid_t pid, double timeout_s);
double now_sec(void);
/* snprintf for paths and names: -ENAMETOOLONG rather than a cut result. */
int pathf(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void print_tail(const char *path, int lines);
int read_small(const char *path, char *buf, size_t len);
int write_file(const char *path, const char *text);

/* ---- proxy.c ---- */

struct proxy;

struct proxy_counts {
	uint64_t up;   /* client (sender) -> target (receiver) */
	uint64_t down; /* target -> client */
	uint64_t conns;
	uint64_t refused; /* accepted but the target could not be reached */
};

/* Listens on host (an IPv4 address) at a port the kernel picks, inside
 * netns (-1: ours), and relays each connection to 127.0.0.1:target_port
 * there, counting the bytes delivered each way. */
int proxy_start(struct proxy **out, int netns, const char *host, int target_port, int *port);
void proxy_counts(struct proxy *p, struct proxy_counts *c);
void proxy_stop(struct proxy *p);

/* ---- tree.c ---- */

/* 0: got equals want (every entry's type, mode, bytes, symlink target);
 * >0: the number of differences, the first few printed under label;
 * <0: -errno reading them. */
int tree_compare(const char *want, const char *got, const char *label);
/* Reads every regular file (warming the page cache); their total size. */
int tree_size(const char *dir, uint64_t *bytes, uint64_t *files);
int tree_remove(const char *dir);

/* ---- link.c ---- */

struct bench_link {
	unsigned mbit;      /* 0: loopback, no namespaces */
	char ns[2][32];     /* sender's, receiver's namespace name */
	char veth[2][16];   /* their ends of the pair */
	char log[PATH_MAX]; /* ip and tc's stderr */
	int fd[2];          /* their fds, -1 if not open */
	bool made[2];
	const char *host;   /* where the sender reaches the receiver side */
};

int link_setup(struct bench_link *l, unsigned mbit, const char *tmp);
void link_teardown(struct bench_link *l);
/* on false: the pair unshaped (tbf removed), for a run's setup; true: the
 * tbf of mbit back. 0 on loopback. -EIO, the failing command logged. */
int link_shaped(const struct bench_link *l, bool on);

/* ---- run.c ---- */

/* What one timed run measured. */
struct bench_sample {
	bool ok;                   /* the tool succeeded and the tree equals v2 */
	double wall_s;
	double cpu_snd_s, cpu_rcv_s;
	uint64_t rss_snd, rss_rcv; /* bytes */
	uint64_t up, down;         /* wire bytes: sender->receiver, back */
	int64_t reported_sent;     /* bdr's own bytes_sent, -1 for rsync */
	char err[256];             /* why not ok */
};

struct bench_corpus {
	const char *path;
	char name[128];
	char pkg[64];              /* bdr package name */
	char v1[PATH_MAX], v2[PATH_MAX];
	uint64_t v2_bytes, v2_files;
};

struct bench_env {
	const char *bdrd, *bdrctl, *rsync;
	char tmp[PATH_MAX];        /* the harness's temp dir, removed at exit */
	char key[2][PATH_MAX];     /* hq's and branch's key files */
	char pub[2][64];           /* their public keys */
	struct bench_link link;
	double timeout_s;
};

int run_keys(struct bench_env *e);
/* One timed run; 0 with s->ok false when the tool failed or the tree
 * differs, <0 only when the harness itself cannot go on (interrupt). */
int run_tool(const struct bench_env *e, const struct bench_corpus *c, enum bench_scenario sc,
	     enum bench_tool tool, int run, struct bench_sample *s);

/* ---- report.c ---- */

struct bench_record {
	const struct bench_corpus *corpus;
	enum bench_scenario sc;
	enum bench_tool tool;
	int nruns;
	struct bench_sample s[BENCH_MAX_RUNS];
};

struct bench_meta {
	unsigned link_mbit;
	int runs;
	const char *rsync_version;
};

void report_markdown(FILE *f, const struct bench_record *r, size_t n, const struct bench_meta *m);
int report_json(const char *path, const struct bench_record *r, size_t n, const struct bench_meta *m);
int report_png(const char *path, const struct bench_record *r, size_t n, const char *tmp);

#endif
