/* bdr-bench: options, the corpora, and the loop over scenarios, runs and
 * tools. Each run of each tool starts from scratch (its own directories and
 * daemons); within a run number the tools take turns, so a noisy moment of
 * the machine falls on all of them alike. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"

const char *const bench_tool_names[NTOOLS] = { "bdr", "rsync", "rsync-z" };
const char *const bench_scenario_names[NSCENARIOS] = { "incremental", "initial", "nochange" };
volatile sig_atomic_t bench_interrupted;

struct opts {
	const char *json, *png;
	int runs;
	unsigned link_mbit;
	bool scenario[NSCENARIOS], tool[NTOOLS];
	char bdrd[PATH_MAX], bdrctl[PATH_MAX], rsync[PATH_MAX];
	double timeout_s;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bdr-bench [--json FILE] [--png FILE] [--runs N] [--link MBIT]\n"
		"                 [--scenario incremental,initial,nochange] [--tools bdr,rsync,rsync-z]\n"
		"                 [--bdrd PATH] [--bdrctl PATH] [--rsync PATH] [--timeout S]\n"
		"                 CORPUS_DIR...\n"
		"A corpus directory holds v1/ and v2/. --link needs root. See bench/README.md.\n");
}

static void on_signal(int sig)
{
	(void)sig;
	bench_interrupted = 1;
}

/* "a,b" against names: each listed one set in on; false on an unknown. */
static bool parse_list(const char *arg, const char *const *names, int n, bool *on)
{
	char buf[256], *save = NULL;

	memset(on, 0, (size_t)n * sizeof(*on));
	snprintf(buf, sizeof(buf), "%s", arg);
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		int i = 0;
		while (i < n && strcmp(t, names[i]))
			i++;
		if (i == n) {
			fprintf(stderr, "bdr-bench: unknown name '%s'\n", t);
			return false;
		}
		on[i] = true;
	}
	return true;
}

/* bdrd and bdrctl of the build tree this harness was built in, else PATH. */
static void find_bdr(const char *name, const char *sub, char *out, size_t len)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n > 0) {
		self[n] = '\0';
		if (snprintf(out, len, "%s/../src/%s/%s", dirname(self), sub, name) < (int)len &&
		    !access(out, X_OK))
			return;
	}
	if (proc_find(name, out, len))
		snprintf(out, len, "%s", name);
}

static int parse_num(const char *arg, double lo, double hi, const char *what, double *v)
{
	char *end;

	errno = 0;
	*v = strtod(arg, &end);
	if (errno || end == arg || *end || *v < lo || *v > hi) {
		fprintf(stderr, "bdr-bench: %s must be a number from %g to %g, not '%s'\n", what, lo,
			hi, arg);
		return -EINVAL;
	}
	return 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "json", 1, 0, 'j' }, { "png", 1, 0, 'p' }, { "runs", 1, 0, 'r' },
		{ "link", 1, 0, 'l' }, { "scenario", 1, 0, 's' }, { "tools", 1, 0, 't' },
		{ "bdrd", 1, 0, 'D' }, { "bdrctl", 1, 0, 'C' }, { "rsync", 1, 0, 'R' },
		{ "timeout", 1, 0, 'T' }, { "help", 0, 0, 'h' }, { 0 }
	};
	double v;
	int c;

	*o = (struct opts){ .runs = 3, .timeout_s = 1800 };
	for (int i = 0; i < NSCENARIOS; i++)
		o->scenario[i] = true;
	for (int i = 0; i < NTOOLS; i++)
		o->tool[i] = true;
	find_bdr("bdrd", "daemon", o->bdrd, sizeof(o->bdrd));
	find_bdr("bdrctl", "ctl", o->bdrctl, sizeof(o->bdrctl));
	snprintf(o->rsync, sizeof(o->rsync), "rsync");
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'j': o->json = optarg; break;
		case 'p': o->png = optarg; break;
		case 'r':
			if (parse_num(optarg, 1, BENCH_MAX_RUNS, "--runs", &v) || v != (int)v)
				return -EINVAL;
			o->runs = (int)v;
			break;
		case 'l':
			if (parse_num(optarg, 1, 10000, "--link", &v) || v != (unsigned)v)
				return -EINVAL;
			o->link_mbit = (unsigned)v;
			break;
		case 's':
			if (!parse_list(optarg, bench_scenario_names, NSCENARIOS, o->scenario))
				return -EINVAL;
			break;
		case 't':
			if (!parse_list(optarg, bench_tool_names, NTOOLS, o->tool))
				return -EINVAL;
			break;
		case 'D': snprintf(o->bdrd, sizeof(o->bdrd), "%s", optarg); break;
		case 'C': snprintf(o->bdrctl, sizeof(o->bdrctl), "%s", optarg); break;
		case 'R': snprintf(o->rsync, sizeof(o->rsync), "%s", optarg); break;
		case 'T':
			if (parse_num(optarg, 1, 86400, "--timeout", &o->timeout_s))
				return -EINVAL;
			break;
		case 'h': usage(stdout); exit(0);
		default: return -EINVAL;
		}
	}
	if (optind == argc) {
		fprintf(stderr, "bdr-bench: no corpus directory given\n");
		return -EINVAL;
	}
	return 0;
}

/* The corpus's name (its directory's), a package name made of it, its
 * versions; v2 read once, which also warms the page cache for every tool. */
static int corpus_open(const char *path, struct bench_corpus *c)
{
	char buf[PATH_MAX], *base;
	struct stat st;

	memset(c, 0, sizeof(*c));
	c->path = path;
	snprintf(buf, sizeof(buf), "%s", path);
	base = basename(buf);
	snprintf(c->name, sizeof(c->name), "%s", base);
	snprintf(c->pkg, sizeof(c->pkg), "%s", base);
	for (char *p = c->pkg; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.'))
			*p = '-';
	if (!c->pkg[0] || c->pkg[0] == '.')
		c->pkg[0] = 'p';
	if (realpath(path, buf) == NULL) {
		fprintf(stderr, "bdr-bench: %s: %s\n", path, strerror(errno));
		return -errno;
	}
	if (pathf(c->v1, sizeof(c->v1), "%s/v1", buf) || pathf(c->v2, sizeof(c->v2), "%s/v2", buf)) {
		fprintf(stderr, "bdr-bench: %s: path too long\n", path);
		return -ENAMETOOLONG;
	}
	for (int i = 0; i < 2; i++)
		if (stat(i ? c->v2 : c->v1, &st) < 0 || !S_ISDIR(st.st_mode)) {
			fprintf(stderr, "bdr-bench: %s: no directory %s\n", path, i ? "v2" : "v1");
			return -ENOTDIR;
		}
	uint64_t b, f;
	tree_size(c->v1, &b, &f);
	return tree_size(c->v2, &c->v2_bytes, &c->v2_files);
}

static void rsync_version(const char *rsync, const char *tmp, char *out, size_t len)
{
	char path[PATH_MAX];
	int fd;

	snprintf(out, len, "unknown");
	pathf(path, sizeof(path), "%s/rsync.version", tmp);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
		return;
	char *argv[] = { (char *)rsync, "--version", NULL };
	struct proc_opts o = { .netns = -1, .out_fd = fd, .err_fd = -1 };
	int err = proc_run(argv, &o, 10, NULL);
	close(fd);
	char buf[512];
	if (!err && read_small(path, buf, sizeof(buf)) > 0) {
		char *v = strstr(buf, "version ");
		if (v)
			snprintf(out, len, "%.*s", (int)strcspn(v + 8, " \n"), v + 8);
	}
}

static void progress(const struct bench_record *r, int run, int nruns, int k, int total)
{
	const struct bench_sample *s = &r->s[run];

	if (s->ok)
		fprintf(stderr, "bdr-bench: [%d/%d] %s %s %s run %d/%d: %.3f s, %llu bytes on the wire\n",
			k, total, r->corpus->name, bench_scenario_names[r->sc],
			bench_tool_names[r->tool], run + 1, nruns, s->wall_s,
			(unsigned long long)(s->up + s->down));
	else
		fprintf(stderr, "bdr-bench: [%d/%d] %s %s %s run %d/%d: FAILED: %s\n", k, total,
			r->corpus->name, bench_scenario_names[r->sc], bench_tool_names[r->tool],
			run + 1, nruns, s->err);
}

/* Every selected corpus x scenario x tool, runs interleaved across tools. */
static int bench_all(const struct opts *o, struct bench_env *e, struct bench_corpus *cs,
		     int ncorp, struct bench_record *recs, size_t *nrec)
{
	int ntools = 0, k = 0, total;

	for (int t = 0; t < NTOOLS; t++)
		ntools += o->tool[t];
	*nrec = 0;
	for (int ci = 0; ci < ncorp; ci++)
		for (int sc = 0; sc < NSCENARIOS; sc++)
			for (int t = 0; t < NTOOLS && o->scenario[sc]; t++)
				if (o->tool[t])
					recs[(*nrec)++] = (struct bench_record){ .corpus = &cs[ci],
										 .sc = sc, .tool = t };
	total = (int)*nrec * o->runs;
	for (size_t g = 0; g < *nrec; g += (size_t)ntools)
		for (int run = 0; run < o->runs; run++)
			for (int t = 0; t < ntools; t++) {
				struct bench_record *r = &recs[g + (size_t)t];
				if (run_tool(e, r->corpus, r->sc, r->tool, run, &r->s[run]) < 0)
					return -EINTR;
				r->nruns = run + 1;
				progress(r, run, o->runs, ++k, total);
			}
	return 0;
}

static int setup(const struct opts *o, struct bench_env *e)
{
	const char *tdir = getenv("TMPDIR");

	memset(e, 0, sizeof(*e));
	e->bdrd = o->bdrd;
	e->bdrctl = o->bdrctl;
	e->rsync = o->rsync;
	e->timeout_s = o->timeout_s;
	e->link.fd[0] = e->link.fd[1] = -1;
	e->link.host = "127.0.0.1";
	if (o->link_mbit && geteuid() != 0) {
		fprintf(stderr, "bdr-bench: --link needs root: it makes two network namespaces "
				"and shapes the veth pair between them with tc\n");
		return -EPERM;
	}
	snprintf(e->tmp, sizeof(e->tmp), "%s/bdr-bench.XXXXXX", tdir ? tdir : "/var/tmp");
	if (!mkdtemp(e->tmp)) {
		fprintf(stderr, "bdr-bench: %s: %s\n", e->tmp, strerror(errno));
		return -errno;
	}
	if (run_keys(e)) {
		fprintf(stderr, "bdr-bench: cannot make keys with %s\n", e->bdrctl);
		return -EIO;
	}
	return link_setup(&e->link, o->link_mbit, e->tmp);
}

int main(int argc, char **argv)
{
	struct opts o;
	struct bench_env e = { .link.fd = { -1, -1 } };
	struct sigaction sa = { .sa_handler = on_signal };
	char rsv[64];
	int ncorp, rc = 0;
	size_t nrec = 0;

	if (parse_opts(argc, argv, &o)) {
		usage(stderr);
		return 2;
	}
	ncorp = argc - optind;
	struct bench_corpus *cs = calloc((size_t)ncorp, sizeof(*cs));
	struct bench_record *recs = calloc((size_t)ncorp * NSCENARIOS * NTOOLS, sizeof(*recs));
	if (!cs || !recs) {
		rc = 3;
		goto out;
	}
	for (int i = 0; i < ncorp; i++)
		if (corpus_open(argv[optind + i], &cs[i])) {
			rc = 2;
			goto out;
		}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (setup(&o, &e)) {
		rc = 3;
		goto out;
	}
	rsync_version(o.rsync, e.tmp, rsv, sizeof(rsv));
	if (bench_all(&o, &e, cs, ncorp, recs, &nrec) < 0) {
		fprintf(stderr, "bdr-bench: interrupted\n");
		rc = 130;
		goto out;
	}
	struct bench_meta meta = { .link_mbit = o.link_mbit, .runs = o.runs, .rsync_version = rsv };
	printf("## bdr-bench: bdr against rsync %s (daemon mode over TCP)\n", rsv);
	report_markdown(stdout, recs, nrec, &meta);
	fflush(stdout);
	for (size_t i = 0; i < nrec; i++)
		for (int r = 0; r < recs[i].nruns; r++)
			if (!recs[i].s[r].ok)
				rc = 1;
	if (rc)
		fprintf(stderr, "bdr-bench: SOME RUNS FAILED OR DID NOT MATCH v2 (see above)\n");
	if (o.json && report_json(o.json, recs, nrec, &meta)) {
		fprintf(stderr, "bdr-bench: cannot write %s\n", o.json);
		rc = rc ? rc : 3;
	}
	if (o.png && report_png(o.png, recs, nrec, e.tmp))
		rc = rc ? rc : 3;
out:
	link_teardown(&e.link);
	if (e.tmp[0] && !getenv("BDR_BENCH_KEEP"))
		tree_remove(e.tmp);
	free(cs);
	free(recs);
	return rc;
}
