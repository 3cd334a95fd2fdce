/* What the runs measured, reduced to medians over the verified runs (a run
 * whose tree differs from v2 is reported, never averaged in), as a markdown
 * table with bdr's ratios to each rsync, as JSON (schema in README.md) and
 * as a gnuplot chart. */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <jansson.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

/* The medians of one record. */
struct summary {
	int ok, runs;
	double wall, wall_min, wall_max, cpu_snd, cpu_rcv, up, down, rss_snd, rss_rcv, rss;
	double throughput, encode; /* bytes per second */
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The median of n values (sorted in place), their least and greatest if
 * asked; NAN if none. */
static double median_of(double *v, int n, double *lo, double *hi)
{
	if (!n)
		return NAN;
	qsort(v, (size_t)n, sizeof(v[0]), cmp_double);
	if (lo)
		*lo = v[0];
	if (hi)
		*hi = v[n - 1];
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The median of one field over the verified samples; NAN if none. */
static double median(const struct bench_record *r, size_t off, bool u64, double *lo, double *hi)
{
	double v[BENCH_MAX_RUNS];
	int n = 0;

	for (int i = 0; i < r->nruns; i++) {
		if (!r->s[i].ok)
			continue;
		const char *f = (const char *)&r->s[i] + off;
		v[n++] = u64 ? (double)*(const uint64_t *)f : *(const double *)f;
	}
	return median_of(v, n, lo, hi);
}

/* The end of the group that starts at i: the records of one corpus and
 * scenario are consecutive, in tool order. */
static size_t group_end(const struct bench_record *r, size_t n, size_t i)
{
	size_t j = i;

	while (j < n && r[j].corpus == r[i].corpus && r[j].sc == r[i].sc)
		j++;
	return j;
}

#define MED_D(r, field) median(r, offsetof(struct bench_sample, field), false, NULL, NULL)
#define MED_U(r, field) median(r, offsetof(struct bench_sample, field), true, NULL, NULL)

static void summarize(const struct bench_record *r, struct summary *m)
{
	double rss[BENCH_MAX_RUNS];
	int n = 0;

	memset(m, 0, sizeof(*m));
	m->runs = r->nruns;
	for (int i = 0; i < r->nruns; i++)
		if (r->s[i].ok) {
			m->ok++;
			rss[n++] = (double)(r->s[i].rss_snd > r->s[i].rss_rcv ? r->s[i].rss_snd
									    : r->s[i].rss_rcv);
		}
	m->wall = median(r, offsetof(struct bench_sample, wall_s), false, &m->wall_min, &m->wall_max);
	m->cpu_snd = MED_D(r, cpu_snd_s);
	m->cpu_rcv = MED_D(r, cpu_rcv_s);
	m->up = MED_U(r, up);
	m->down = MED_U(r, down);
	m->rss_snd = MED_U(r, rss_snd);
	m->rss_rcv = MED_U(r, rss_rcv);
	m->rss = median_of(rss, n, NULL, NULL);
	m->throughput = (double)r->corpus->v2_bytes / m->wall;
	m->encode = (double)r->corpus->v2_bytes / m->cpu_snd;
}

static bool verified(const struct bench_record *r)
{
	for (int i = 0; i < r->nruns; i++)
		if (!r->s[i].ok)
			return false;
	return r->nruns > 0;
}

/* 12345678 -> "12,345,678" */
static const char *commas(double v, char *buf, size_t len)
{
	char raw[32];
	int n, k = 0;

	if (isnan(v))
		return "-";
	n = snprintf(raw, sizeof(raw), "%.0f", v);
	for (int i = 0; i < n && k + 2 < (int)len; i++) {
		buf[k++] = raw[i];
		if ((n - i - 1) % 3 == 0 && i < n - 1)
			buf[k++] = ',';
	}
	buf[k] = '\0';
	return buf;
}

static const char *ratio(double a, double b, char *buf, size_t len)
{
	if (isnan(a) || isnan(b) || b <= 0)
		return "-";
	snprintf(buf, len, "%.3gx", a / b);
	return buf;
}

static void md_row(FILE *f, const struct bench_record *r, const struct summary *m)
{
	char w[32];

	fprintf(f, "| %s | %s | %.3f (%.3f-%.3f) | %.2f + %.2f | %.0f / %.0f | %.1f | %s |\n",
		bench_tool_names[r->tool], commas(m->up + m->down, w, sizeof(w)), m->wall,
		m->wall_min, m->wall_max, m->cpu_snd, m->cpu_rcv, m->rss_snd / 1048576,
		m->rss_rcv / 1048576, m->throughput / 1e6,
		verified(r) ? "yes" : m->ok ? "**NO (some runs)**" : "**NO**");
}

/* A table per corpus and scenario (group_end). */
void report_markdown(FILE *f, const struct bench_record *r, size_t n, const struct bench_meta *m)
{
	char a[32], b[32];

	for (size_t i = 0; i < n;) {
		const struct bench_record *g = &r[i];
		struct summary s[NTOOLS];
		const struct summary *tool[NTOOLS] = {0};
		size_t end = group_end(r, n, i);

		fprintf(f, "\n### %s, %s, %s: v2 is %s bytes in %llu files; median of %d\n\n",
			g->corpus->name, bench_scenario_names[g->sc],
			m->link_mbit ? "link" : "loopback", commas((double)g->corpus->v2_bytes, a, sizeof(a)),
			(unsigned long long)g->corpus->v2_files, m->runs);
		if (m->link_mbit)
			fprintf(f, "Link: %u Mbit/s each way (tc tbf).\n\n", m->link_mbit);
		fprintf(f, "| tool | wire bytes | wall s (min-max) | CPU s sender + receiver "
			   "| peak RSS MiB sender / receiver | delta throughput MB/s | verified |\n"
			   "|---|---:|---:|---:|---:|---:|---|\n");
		for (size_t j = i; j < end; j++) {
			summarize(&r[j], &s[j - i]);
			tool[r[j].tool] = &s[j - i];
			md_row(f, &r[j], &s[j - i]);
		}
		for (int t = TOOL_RSYNC; t < NTOOLS && tool[TOOL_BDR]; t++)
			if (tool[t])
				fprintf(f, "%sbdr / %s: wire %s, wall %s", t == TOOL_RSYNC ? "\n" : "; ",
					bench_tool_names[t],
					ratio(tool[0]->up + tool[0]->down, tool[t]->up + tool[t]->down,
					      a, sizeof(a)),
					ratio(tool[0]->wall, tool[t]->wall, b, sizeof(b)));
		fprintf(f, "\n");
		i = end;
	}
}

static json_t *num(double v)
{
	return isnan(v) || isinf(v) ? json_null() : json_real(v);
}

static json_t *samples_json(const struct bench_record *r)
{
	json_t *a = json_array();

	for (int i = 0; i < r->nruns; i++) {
		const struct bench_sample *s = &r->s[i];
		json_array_append_new(a, json_pack("{s:b, s:o, s:I, s:I, s:o, s:o, s:I, s:I, s:s?}",
			"verified", s->ok, "wall_s", num(s->wall_s),
			"wire_up_bytes", (json_int_t)s->up, "wire_down_bytes", (json_int_t)s->down,
			"cpu_sender_s", num(s->cpu_snd_s), "cpu_receiver_s", num(s->cpu_rcv_s),
			"peak_rss_sender_bytes", (json_int_t)s->rss_snd,
			"peak_rss_receiver_bytes", (json_int_t)s->rss_rcv,
			"error", s->ok ? NULL : s->err));
	}
	return a;
}

static json_t *record_json(const struct bench_record *r, const struct bench_meta *m)
{
	struct summary s;

	summarize(r, &s);
	json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:s, s:I, s:I, s:i, s:i, s:b}",
		"corpus", r->corpus->name, "scenario", bench_scenario_names[r->sc],
		"link", m->link_mbit ? "tbf" : "loopback", "link_mbit", (json_int_t)m->link_mbit,
		"tool", bench_tool_names[r->tool], "v2_bytes", (json_int_t)r->corpus->v2_bytes,
		"v2_files", (json_int_t)r->corpus->v2_files, "runs", r->nruns, "runs_verified", s.ok,
		"verified", verified(r));
	json_object_set_new(o, "wire_bytes", num(s.up + s.down));
	json_object_set_new(o, "wire_up_bytes", num(s.up));
	json_object_set_new(o, "wire_down_bytes", num(s.down));
	json_object_set_new(o, "wall_s", num(s.wall));
	json_object_set_new(o, "wall_min_s", num(s.ok ? s.wall_min : NAN));
	json_object_set_new(o, "wall_max_s", num(s.ok ? s.wall_max : NAN));
	json_object_set_new(o, "cpu_s", num(s.cpu_snd + s.cpu_rcv));
	json_object_set_new(o, "cpu_sender_s", num(s.cpu_snd));
	json_object_set_new(o, "cpu_receiver_s", num(s.cpu_rcv));
	json_object_set_new(o, "peak_rss_bytes", num(s.rss));
	json_object_set_new(o, "peak_rss_sender_bytes", num(s.rss_snd));
	json_object_set_new(o, "peak_rss_receiver_bytes", num(s.rss_rcv));
	json_object_set_new(o, "delta_throughput_bps", num(s.throughput));
	json_object_set_new(o, "encode_rate_bps", num(s.encode));
	json_object_set_new(o, "samples", samples_json(r));
	return o;
}

int report_json(const char *path, const struct bench_record *r, size_t n, const struct bench_meta *m)
{
	json_t *recs = json_array();
	json_t *doc = json_pack("{s:i, s:I, s:i, s:s, s:o}", "bdr_bench", 1, "link_mbit",
				(json_int_t)m->link_mbit, "runs", m->runs, "rsync_version",
				m->rsync_version, "records", recs);

	if (!doc)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		json_array_append_new(recs, record_json(&r[i], m));
	int err = json_dump_file(doc, path, JSON_INDENT(1) | JSON_ENSURE_ASCII) ? -EIO : 0;
	json_decref(doc);
	return err;
}

/* Two bar charts, one row per corpus and scenario: wire bytes (log scale)
 * and median wall time, a bar per tool. */
int report_png(const char *path, const struct bench_record *r, size_t n, const char *tmp)
{
	char dat[PATH_MAX], gp[PATH_MAX], text[4096], log[PATH_MAX];
	FILE *f;
	int err;

	snprintf(dat, sizeof(dat), "%s/chart.dat", tmp);
	snprintf(gp, sizeof(gp), "%s/chart.gp", tmp);
	snprintf(log, sizeof(log), "%s/gnuplot.log", tmp);
	if (!(f = fopen(dat, "we")))
		return -errno;
	for (size_t i = 0; i < n;) {
		double w[NTOOLS] = { NAN, NAN, NAN }, t[NTOOLS] = { NAN, NAN, NAN };
		size_t end = group_end(r, n, i);
		for (size_t j = i; j < end; j++) {
			struct summary s;
			summarize(&r[j], &s);
			w[r[j].tool] = s.up + s.down;
			t[r[j].tool] = s.wall;
		}
		fprintf(f, "\"%s\\n%s\"", r[i].corpus->name, bench_scenario_names[r[i].sc]);
		for (int k = 0; k < NTOOLS; k++)
			fprintf(f, isnan(w[k]) ? " NaN" : " %.0f", w[k]);
		for (int k = 0; k < NTOOLS; k++)
			fprintf(f, isnan(t[k]) ? " NaN" : " %.4f", t[k]);
		fprintf(f, "\n");
		i = end;
	}
	fclose(f);
	pathf(text, sizeof(text),
		 "set terminal pngcairo size 1200,1000 noenhanced\nset output '%s'\n"
		 "set multiplot layout 2,1\nset style data histograms\nset bmargin 4\n"
		 "set style histogram clustered gap 1\nset style fill solid 0.8 border -1\n"
		 "set grid ytics\nset key top left\nset xtics font ',9'\n"
		 "set title 'bytes on the wire (both directions, median)'\nset logscale y\n"
		 "plot '%s' using 2:xtic(1) title 'bdr', '' using 3 title 'rsync', "
		 "'' using 4 title 'rsync -z'\n"
		 "set title 'wall time, s (median, log scale)'\n"
		 "plot '%s' using 5:xtic(1) title 'bdr', '' using 6 title 'rsync', "
		 "'' using 7 title 'rsync -z'\nunset multiplot\n",
		 path, dat, dat);
	if ((err = write_file(gp, text)))
		return err;
	char *argv[] = { "gnuplot", gp, NULL };
	int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	struct proc_opts o = { .netns = -1, .out_fd = fd, .err_fd = fd };
	err = proc_run(argv, &o, 60, NULL);
	if (fd >= 0)
		close(fd);
	if (err == -ENOENT) {
		fprintf(stderr, "bdr-bench: --png needs gnuplot (apt-get install gnuplot-nox)\n");
	} else if (err) {
		fprintf(stderr, "bdr-bench: gnuplot failed on %s\n", gp);
		print_tail(log, 5);
	}
	return err;
}
