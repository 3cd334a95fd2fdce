/* push: import a directory, queue its transfer, optionally follow it. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl.h"

struct push_view {
	const struct ctl_args *a;
	bool tty;       /* progress is one line updated in place */
	bool line_open; /* a progress line waits for its newline */
	bool queued;    /* the "queued" event was shown */
};

static void show_imported(const json_t *ev)
{
	char b[16];

	printf("%s version %" PRIu64 ": %" PRIu64 " files, %s (%" PRIu64 " files read)\n",
	       json_is_true(json_object_get(ev, "unchanged")) ? "unchanged since" : "imported",
	       ctl_ju64(ev, "version"), ctl_ju64(ev, "files"), ctl_bytes(ctl_ju64(ev, "bytes"), b),
	       ctl_ju64(ev, "files_read"));
}

static void show_progress(struct push_view *v, const json_t *ev)
{
	uint64_t sent = ctl_ju64(ev, "bytes_sent"), total = ctl_ju64(ev, "bytes_total");
	uint64_t rate = ctl_ju64(ev, "rate_bps");
	char s[16], t[16], r[16], saved[16], eta[32] = "?";

	if (rate && total > sent)
		ctl_duration((total - sent + rate - 1) / rate, eta);
	else if (total <= sent)
		snprintf(eta, sizeof(eta), "0:00");
	printf("%ssent %s of %s (%" PRIu64 "%%), %s/s, ETA %s, saved %s%s", v->tty ? "\r" : "",
	       ctl_bytes(sent, s), ctl_bytes(total, t), total ? sent * 100 / total : 100,
	       ctl_bytes(rate, r), eta, ctl_bytes(ctl_ju64(ev, "bytes_saved"), saved),
	       v->tty ? "\033[K" : "\n");
	v->line_open = v->tty;
}

static void on_event(json_t *ev, void *arg)
{
	struct push_view *v = arg;
	const char *name = ctl_jstr(ev, "event", "");

	if (v->line_open && (!ev || strcmp(name, "progress"))) {
		putchar('\n');
		v->line_open = false;
	}
	if (!ev) {
		fflush(stdout);
		return;
	}
	if (v->a->json) {
		json_dumpf(ev, stdout, JSON_COMPACT);
		putchar('\n');
	} else if (!strcmp(name, "imported")) {
		show_imported(ev);
	} else if (!strcmp(name, "queued")) {
		printf("queued transfer %" PRIu64 " of version %" PRIu64 " to %s\n",
		       ctl_ju64(ev, "transfer"), ctl_ju64(ev, "version"), v->a->to);
		v->queued = true;
	} else if (!strcmp(name, "progress")) {
		show_progress(v, ev);
	}
	fflush(stdout);
}

static void show_result(const struct push_view *v, const json_t *res)
{
	char sent[16], saved[16];

	if (v->a->json) {
		ctl_print_json(res);
	} else if (v->a->wait) {
		printf("%s activated %s version %" PRIu64 ": sent %s, saved %s\n",
		       ctl_jstr(res, "to", v->a->to), ctl_jstr(res, "package", v->a->pos[0]),
		       ctl_ju64(res, "version"), ctl_bytes(ctl_ju64(res, "bytes_sent"), sent),
		       ctl_bytes(ctl_ju64(res, "bytes_saved"), saved));
	} else if (!v->queued) {
		printf("queued transfer %" PRIu64 " of version %" PRIu64 " to %s\n",
		       ctl_ju64(res, "transfer"), ctl_ju64(res, "version"), v->a->to);
	}
}

/* DIR's absolute real path in out; else prints why and returns 1. */
static int resolve_dir(const char *dir, char *out)
{
	struct stat st;

	if (stat(dir, &st) < 0) {
		fprintf(stderr, "bdrctl: %s: %s\n", dir, strerror(errno));
		return BDR_EXIT_FAILED;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "bdrctl: %s: not a directory\n", dir);
		return BDR_EXIT_FAILED;
	}
	if (!realpath(dir, out)) {
		fprintf(stderr, "bdrctl: %s: %s\n", dir, strerror(errno));
		return BDR_EXIT_FAILED;
	}
	return 0;
}

static bool priority_ok(const char *p)
{
	return !strcmp(p, "high") || !strcmp(p, "medium") || !strcmp(p, "low");
}

int ctl_push(const struct ctl_args *a)
{
	struct push_view v = { .a = a, .tty = isatty(STDOUT_FILENO) && !a->json };
	const char *prio = a->priority ? a->priority : "medium";
	char dir[PATH_MAX];
	json_t *res;
	int r;

	if (!a->to)
		return ctl_usage_error(a, "push needs --to SITE");
	if (!priority_ok(prio))
		return ctl_usage_error(a, "--priority is high, medium or low, not '%s'", prio);
	r = resolve_dir(a->pos[1], dir);
	if (r)
		return r;
	r = ctl_call(a,
		     json_pack("{s:s, s:s, s:s, s:s, s:s, s:b}", "cmd", "push", "package", a->pos[0],
			       "dir", dir, "to", a->to, "priority", prio, "wait", a->wait),
		     on_event, &v, &res);
	if (r)
		return r;
	show_result(&v, res);
	json_decref(res);
	return BDR_EXIT_OK;
}
