/* Metrics in Prometheus' text exposition format (version 0.0.4), for
 * `bdrctl metrics` (node_exporter's textfile collector) and the opt-in
 * HTTP listener (metrics_http.c). Every figure is read when asked for:
 * transfer and received rows from the site database, counters since start
 * from the daemon's own state. Names are bdr_*, in base units (bytes,
 * seconds), counters end in _total.
 *
 * Figures summed over database rows are gauges, not counters: pruning old
 * history may lower them, and a counter that went down would read as a
 * restart to rate(). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/ccache.h"
#include "daemon/daemon.h"
#include "daemon/metrics.h"

/* A label value with \, " and newline escaped, as the format requires. */
static void put_label(FILE *f, const char *name, const char *v)
{
	fprintf(f, "%s=\"", name);
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			fputc('\\', f), fputc(*v, f);
		else if (*v == '\n')
			fputs("\\n", f);
		else
			fputc(*v, f);
	}
	fputc('"', f);
}

static void family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{l1="v1",l2="v2"} value; l2 may be NULL. */
static void sample2(FILE *f, const char *name, const char *l1, const char *v1, const char *l2,
		    const char *v2, uint64_t value)
{
	fputs(name, f);
	if (l1) {
		fputc('{', f);
		put_label(f, l1, v1);
		if (l2) {
			fputc(',', f);
			put_label(f, l2, v2);
		}
		fputc('}', f);
	}
	fprintf(f, " %" PRIu64 "\n", value);
}

static const char *const prio_names[] = { "high", "medium", "low" };

static int by_peer_package(const void *a, const void *b)
{
	const struct bdr_db_transfer *x = a, *y = b;
	int c = strcmp(x->peer, y->peer);

	return c ? c : strcmp(x->package, y->package);
}

static int recv_by_peer_package(const void *a, const void *b)
{
	const struct bdr_db_received *x = a, *y = b;
	int c = strcmp(x->peer, y->peer);

	return c ? c : strcmp(x->package, y->package);
}

/* Sums of the transfer rows of one (peer, package), t[i..*j). */
static void transfer_group(const struct bdr_db_transfer *t, size_t n, size_t i, size_t *j,
			   uint64_t *sent, uint64_t *saved, int64_t *activated_ns)
{
	*sent = *saved = 0;
	*activated_ns = 0;
	for (*j = i; *j < n && by_peer_package(&t[i], &t[*j]) == 0; (*j)++) {
		*sent += t[*j].bytes_sent;
		*saved += t[*j].bytes_saved;
		if (t[*j].state == BDR_XFER_DONE && t[*j].updated_ns > *activated_ns)
			*activated_ns = t[*j].updated_ns;
	}
}

static void transfers_section(FILE *f, struct bdr_db_transfer *t, size_t n)
{
	uint64_t by_state[BDR_XFER_CANCELLED + 1] = { 0 }, depth[3] = { 0 }, backlog[3] = { 0 };
	uint64_t sent, saved;
	int64_t act;
	size_t j;

	if (n) /* no rows: t is NULL, which qsort may not be given */
		qsort(t, n, sizeof(*t), by_peer_package);
	family(f, "bdr_sent_bytes", "gauge",
	       "Bytes on the wire to a site for a package, over the transfers the site database records.");
	for (size_t i = 0; i < n; i = j) {
		transfer_group(t, n, i, &j, &sent, &saved, &act);
		sample2(f, "bdr_sent_bytes", "peer", t[i].peer, "package", t[i].package, sent);
	}
	family(f, "bdr_saved_bytes", "gauge",
	       "Bytes not sent to a site for a package because it held the chunks already.");
	for (size_t i = 0; i < n; i = j) {
		transfer_group(t, n, i, &j, &sent, &saved, &act);
		sample2(f, "bdr_saved_bytes", "peer", t[i].peer, "package", t[i].package, saved);
	}
	family(f, "bdr_peer_last_activation_timestamp_seconds", "gauge",
	       "When a site last reported a version of a package activated (Unix time).");
	for (size_t i = 0; i < n; i = j) {
		transfer_group(t, n, i, &j, &sent, &saved, &act);
		if (act)
			sample2(f, "bdr_peer_last_activation_timestamp_seconds", "peer", t[i].peer,
				"package", t[i].package, (uint64_t)(act / 1000000000));
	}
	for (size_t i = 0; i < n; i++) {
		if (t[i].state <= BDR_XFER_CANCELLED)
			by_state[t[i].state]++;
		if (t[i].state == BDR_XFER_QUEUED || t[i].state == BDR_XFER_SENDING ||
		    t[i].state == BDR_XFER_PAUSED) {
			depth[t[i].priority]++;
			backlog[t[i].priority] += t[i].bytes_total > t[i].bytes_sent ?
							  t[i].bytes_total - t[i].bytes_sent : 0;
		}
	}
	family(f, "bdr_transfers", "gauge", "Outgoing transfers by state.");
	for (int s = 0; s <= BDR_XFER_CANCELLED; s++)
		sample2(f, "bdr_transfers", "state",
			s == BDR_XFER_DONE ? "activated" : bdr_db_xfer_state_name(s), NULL, NULL,
			by_state[s]);
	family(f, "bdr_queue_transfers", "gauge",
	       "Transfers not yet activated (queued, sending or paused), by priority.");
	for (int p = 0; p < 3; p++)
		sample2(f, "bdr_queue_transfers", "priority", prio_names[p], NULL, NULL, depth[p]);
	family(f, "bdr_queue_backlog_bytes", "gauge",
	       "Bytes of versions not yet current at their destinations (at most what the wire carries), by priority.");
	for (int p = 0; p < 3; p++)
		sample2(f, "bdr_queue_backlog_bytes", "priority", prio_names[p], NULL, NULL, backlog[p]);
}

/* t sorted by peer (transfers_section). Failed attempts in a row of
 * unfinished transfers, and failed transfers
 * by the class of their error: the text before its first ':', which names
 * what failed ("gave up", ...) without the details. */
static void failures_section(FILE *f, struct bdr_db_transfer *t, size_t n)
{
	char reason[64];
	uint64_t retries;
	size_t j;

	family(f, "bdr_transfer_retries", "gauge",
	       "Failed attempts in a row of a site's transfers that have not ended.");
	for (size_t i = 0; i < n; i = j) {
		retries = 0;
		for (j = i; j < n && strcmp(t[i].peer, t[j].peer) == 0; j++)
			if (t[j].state != BDR_XFER_DONE && t[j].state != BDR_XFER_CANCELLED)
				retries += t[j].attempts;
		sample2(f, "bdr_transfer_retries", "peer", t[i].peer, NULL, NULL, retries);
	}
	family(f, "bdr_transfer_failures", "gauge", "Failed transfers, by peer and reason.");
	for (size_t i = 0; i < n; i++) {
		if (t[i].state != BDR_XFER_FAILED)
			continue;
		snprintf(reason, sizeof(reason), "%s", t[i].last_error[0] ? t[i].last_error : "unknown");
		reason[strcspn(reason, ":")] = '\0';
		sample2(f, "bdr_transfer_failures", "peer", t[i].peer, "reason", reason, 1);
	}
}

static void received_section(FILE *f, struct bdr_db_received *r, size_t n)
{
	static const char *const states[] = { "receiving", "activated", "failed" };
	uint64_t by_state[3] = { 0 }, bytes;
	int64_t act;
	size_t j;

	if (n)
		qsort(r, n, sizeof(*r), recv_by_peer_package);
	family(f, "bdr_received_bytes", "gauge",
	       "Bytes received from a site for a package, over the versions the site database records.");
	for (size_t i = 0; i < n; i = j) {
		bytes = 0;
		for (j = i; j < n && recv_by_peer_package(&r[i], &r[j]) == 0; j++)
			bytes += r[j].bytes_received;
		sample2(f, "bdr_received_bytes", "peer", r[i].peer, "package", r[i].package, bytes);
	}
	family(f, "bdr_last_activation_timestamp_seconds", "gauge",
	       "When this site last activated a version of a package received from a site (Unix time).");
	for (size_t i = 0; i < n; i = j) {
		act = 0;
		for (j = i; j < n && recv_by_peer_package(&r[i], &r[j]) == 0; j++)
			if (r[j].state == BDR_RECV_ACTIVATED && r[j].updated_ns > act)
				act = r[j].updated_ns;
		if (act)
			sample2(f, "bdr_last_activation_timestamp_seconds", "peer", r[i].peer,
				"package", r[i].package, (uint64_t)(act / 1000000000));
	}
	for (size_t i = 0; i < n; i++)
		if ((size_t)r[i].state < 3)
			by_state[r[i].state]++;
	family(f, "bdr_received_versions", "gauge", "Incoming versions by state.");
	for (int s = 0; s < 3; s++)
		sample2(f, "bdr_received_versions", "state", states[s], NULL, NULL, by_state[s]);
}

static uint64_t rss_bytes(void)
{
	unsigned long size = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "re");

	if (!f)
		return 0;
	if (fscanf(f, "%lu %lu", &size, &resident) != 2)
		resident = 0;
	fclose(f);
	return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void daemon_section(FILE *f, struct bdrd *d)
{
	struct bdrd_ccache_stats cs = { 0 };
	uint64_t in = 0, out = 0;

	for (const struct bdrd_peer *p = d->peers; p; p = p->next) {
		in += p->n_in;
		out += p->nout;
	}
	family(f, "bdr_peer_connections", "gauge",
	       "Authenticated peer connections open now, by direction.");
	sample2(f, "bdr_peer_connections", "direction", "in", NULL, NULL, in);
	sample2(f, "bdr_peer_connections", "direction", "out", NULL, NULL, out);
	family(f, "bdr_connections", "gauge", "Peer connections open now, authenticated or not.");
	sample2(f, "bdr_connections", NULL, NULL, NULL, NULL, d->nconns);
	if (d->ccache)
		bdrd_ccache_stats(d->ccache, &cs);
	family(f, "bdr_chunk_cache_hits_total", "counter",
	       "Encoded chunks a transfer found in the shared chunk cache, since start.");
	sample2(f, "bdr_chunk_cache_hits_total", NULL, NULL, NULL, NULL, cs.hits);
	family(f, "bdr_chunk_cache_misses_total", "counter",
	       "Encoded chunks a transfer looked for in the chunk cache and did not find, since start.");
	sample2(f, "bdr_chunk_cache_misses_total", NULL, NULL, NULL, NULL, cs.misses);
	family(f, "bdr_fanout_tails_sealed_total", "counter",
	       "Chunks encrypted once for a fan-out to several sites, since start.");
	sample2(f, "bdr_fanout_tails_sealed_total", NULL, NULL, NULL, NULL, d->tails_sealed);
	family(f, "bdr_fanout_tails_sent_total", "counter",
	       "Frames that carried a fan-out's shared ciphertext, since start.");
	sample2(f, "bdr_fanout_tails_sent_total", NULL, NULL, NULL, NULL, d->tails_sent);
	family(f, "bdr_resident_memory_bytes", "gauge", "The daemon's resident set size.");
	sample2(f, "bdr_resident_memory_bytes", NULL, NULL, NULL, NULL, rss_bytes());
}

int bdrd_metrics_render(struct bdrd *d, char **out, size_t *len)
{
	struct bdr_db_transfer *t = NULL;
	struct bdr_db_received *r = NULL;
	size_t nt = 0, nr = 0;
	FILE *f;
	int rc;

	*out = NULL;
	*len = 0;
	rc = bdr_db_transfer_list(d->db, NULL, &t, &nt);
	if (rc == 0)
		rc = bdr_db_received_list(d->db, NULL, &r, &nr);
	if (rc < 0)
		goto out;
	f = open_memstream(out, len);
	if (!f) {
		rc = -ENOMEM;
		goto out;
	}
	family(f, "bdr_build_info", "gauge", "This daemon's version and site; always 1.");
	fputs("bdr_build_info{", f);
	put_label(f, "version", BDR_VERSION);
	fputc(',', f);
	put_label(f, "site", d->cfg.site.name);
	fputs("} 1\n", f);
	transfers_section(f, t, nt);
	failures_section(f, t, nt);
	received_section(f, r, nr);
	daemon_section(f, d);
	rc = ferror(f) ? -ENOMEM : 0;
	if (fclose(f) != 0 && rc == 0)
		rc = -ENOMEM;
	if (rc < 0) {
		free(*out);
		*out = NULL;
		*len = 0;
	}
out:
	free(t);
	free(r);
	return rc;
}
