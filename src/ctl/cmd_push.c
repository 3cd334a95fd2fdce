/* push and distribute: import a directory (or name a version of the
 * library), queue its transfers to one or more sites, optionally follow
 * them to their end. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl.h"

#define MAX_SITES_SHOWN 64

/* What push --wait shows of one destination: its last line. */
struct site_line {
	char to[64];
	char text[256];
};

struct push_view {
	const struct ctl_args *a;
	bool tty;       /* progress lines are redrawn in place */
	bool queued;    /* a "queued" event was shown */
	bool ended;     /* an "ended" event was shown: the result is printed */
	/* On a terminal, one line per destination, redrawn as a block. */
	struct site_line sites[MAX_SITES_SHOWN];
	unsigned nsites, drawn; /* lines, and how many the block last drew */
};

static void show_imported(const json_t *ev)
{
	char b[16];

	printf("%s version %" PRIu64 ": %" PRIu64 " files, %s (%" PRIu64 " files read)\n",
	       json_is_true(json_object_get(ev, "unchanged")) ? "unchanged since" : "imported",
	       ctl_ju64(ev, "version"), ctl_ju64(ev, "files"), ctl_bytes(ctl_ju64(ev, "bytes"), b),
	       ctl_ju64(ev, "files_read"));
}

static struct site_line *site_of(struct push_view *v, const char *to)
{
	for (unsigned i = 0; i < v->nsites; i++)
		if (!strcmp(v->sites[i].to, to))
			return &v->sites[i];
	if (v->nsites == MAX_SITES_SHOWN)
		return NULL;
	snprintf(v->sites[v->nsites].to, sizeof(v->sites[0].to), "%s", to);
	return &v->sites[v->nsites++];
}

/* Redraws the block of destination lines (terminal), or prints the one
 * that changed (a pipe or a file: one line per event). */
static void put_line(struct push_view *v, const char *to, const char *text)
{
	struct site_line *s = v->tty ? site_of(v, to) : NULL;

	if (!s) {
		printf("%s: %s\n", to, text);
		return;
	}
	snprintf(s->text, sizeof(s->text), "%s", text);
	if (v->drawn)
		printf("\033[%uA", v->drawn);
	for (unsigned i = 0; i < v->nsites; i++)
		printf("\r%s: %s\033[K\n", v->sites[i].to, v->sites[i].text);
	v->drawn = v->nsites;
}

/* Percent of the version current at the destination (bytes_done of
 * bytes_size): held chunks count at once, sent ones as they go, and it
 * reaches 100% as the destination activates it. ETA from the wire. */
static void show_progress(struct push_view *v, const json_t *ev)
{
	uint64_t sent = ctl_ju64(ev, "bytes_sent"), total = ctl_ju64(ev, "bytes_total");
	uint64_t done = ctl_ju64(ev, "bytes_done"), size = ctl_ju64(ev, "bytes_size");
	uint64_t rate = ctl_ju64(ev, "rate_bps");
	char s[16], t[16], r[16], saved[16], eta[32] = "?", text[256];

	if (rate && total > sent)
		ctl_duration((total - sent + rate - 1) / rate, eta);
	else if (total <= sent)
		snprintf(eta, sizeof(eta), "0:00");
	if (!done)
		snprintf(text, sizeof(text), "comparing with what it holds, sent %s",
			 ctl_bytes(sent, s));
	else
		snprintf(text, sizeof(text),
			 "%3" PRIu64 "%% of %s current, sent %s, %s/s, ETA %s, saved %s",
			 size ? done * 100 / size : 100, ctl_bytes(size, t), ctl_bytes(sent, s),
			 ctl_bytes(rate, r), eta, ctl_bytes(ctl_ju64(ev, "bytes_saved"), saved));
	put_line(v, ctl_jstr(ev, "to", "?"), text);
}

static void show_waiting(struct push_view *v, const json_t *ev)
{
	char text[300];

	snprintf(text, sizeof(text), "waits: %s", ctl_jstr(ev, "waiting", "?"));
	put_line(v, ctl_jstr(ev, "to", "?"), text);
}

/* One destination's end: activated (or held), or why not. */
static void show_ended(struct push_view *v, const json_t *ev)
{
	char sent[16], saved[16], text[600];
	const char *state = ctl_jstr(ev, "state", "?");

	if (!strcmp(state, "activated"))
		snprintf(text, sizeof(text), "activated %s version %" PRIu64 ": sent %s, saved %s",
			 ctl_jstr(ev, "package", v->a->pos[0]), ctl_ju64(ev, "version"),
			 ctl_bytes(ctl_ju64(ev, "bytes_sent"), sent),
			 ctl_bytes(ctl_ju64(ev, "bytes_saved"), saved));
	else
		snprintf(text, sizeof(text), "%s: %s", state, ctl_jstr(ev, "last_error", "?"));
	put_line(v, ctl_jstr(ev, "to", "?"), text);
	v->ended = true;
}

static void on_event(json_t *ev, void *arg)
{
	struct push_view *v = arg;
	const char *name = ctl_jstr(ev, "event", "");

	if (!ev) {
		fflush(stdout);
		return;
	}
	if (v->a->json) {
		/* --json: each event is one JSON document on its own line. */
		json_dumpf(ev, stdout, JSON_COMPACT);
		putchar('\n');
	} else if (!strcmp(name, "importing")) {
		printf("importing %s\n", v->a->npos > 1 ? v->a->pos[1] : "?");
	} else if (!strcmp(name, "imported")) {
		show_imported(ev);
	} else if (!strcmp(name, "queued")) {
		printf("queued transfer %" PRIu64 " of version %" PRIu64 " to %s\n",
		       ctl_ju64(ev, "transfer"), ctl_ju64(ev, "version"), ctl_jstr(ev, "to", v->a->to));
		v->queued = true;
	} else if (!strcmp(name, "progress")) {
		show_progress(v, ev);
	} else if (!strcmp(name, "waiting")) {
		show_waiting(v, ev);
	} else if (!strcmp(name, "ended")) {
		show_ended(v, ev);
	}
	fflush(stdout);
}

static void show_one(const struct push_view *v, const json_t *res)
{
	char sent[16], saved[16];

	if (v->a->wait) {
		printf("%s: activated %s version %" PRIu64 ": sent %s, saved %s\n",
		       ctl_jstr(res, "to", v->a->to), ctl_jstr(res, "package", v->a->pos[0]),
		       ctl_ju64(res, "version"), ctl_bytes(ctl_ju64(res, "bytes_sent"), sent),
		       ctl_bytes(ctl_ju64(res, "bytes_saved"), saved));
	} else if (!v->queued) {
		printf("queued transfer %" PRIu64 " of version %" PRIu64 " to %s\n",
		       ctl_ju64(res, "transfer"), ctl_ju64(res, "version"), ctl_jstr(res, "to", v->a->to));
	}
}

/* One transfer's result, or {"transfers": [...]} for several; with --wait
 * each was shown as it ended. */
static void show_result(const struct push_view *v, const json_t *res)
{
	const json_t *list = json_object_get(res, "transfers");
	size_t i;
	json_t *one;

	if (v->a->json)
		ctl_print_json(res);
	else if (v->ended)
		return;
	else if (!json_is_array(list))
		show_one(v, res);
	else
		json_array_foreach(list, i, one)
			show_one(v, one);
}

static bool priority_ok(const char *p)
{
	return !strcmp(p, "high") || !strcmp(p, "medium") || !strcmp(p, "low");
}

/* Sends req (stolen) with fd (-1: none), shows its events and its result. */
static int follow(const struct ctl_args *a, json_t *req, int fd)
{
	struct push_view v = { .a = a, .tty = isatty(STDOUT_FILENO) && !a->json };
	json_t *res;
	int r = ctl_call_fd(a, req, fd, on_event, &v, &res);

	if (r)
		return r;
	show_result(&v, res);
	json_decref(res);
	return BDR_EXIT_OK;
}

int ctl_push(const struct ctl_args *a)
{
	const char *prio = a->priority ? a->priority : "medium";
	int dir, r;

	if (!a->to)
		return ctl_usage_error(a, "push needs --to SITE");
	if (a->timeout_s && !a->wait)
		return ctl_usage_error(a, "--timeout is for --wait");
	if (!priority_ok(prio))
		return ctl_usage_error(a, "--priority is high, medium or low, not '%s'", prio);
	/* Opened here, with the user's rights, and passed to bdrd: bdrd
	 * reads beneath it only what this user may read (bdrctl(8), USERS). */
	if ((dir = ctl_open_input(a->pos[1], true)) < 0)
		return BDR_EXIT_FAILED;
	r = follow(a, json_pack("{s:s, s:s, s:s, s:s, s:b}", "cmd", "push", "package", a->pos[0],
				"to", a->to, "priority", prio, "wait", a->wait), dir);
	close(dir);
	return r;
}

int ctl_distribute(const struct ctl_args *a)
{
	const char *prio = a->priority ? a->priority : "medium";
	uint64_t version = 0;
	int r;

	if (!a->to)
		return ctl_usage_error(a, "distribute needs --to SITE");
	if (a->timeout_s && !a->wait)
		return ctl_usage_error(a, "--timeout is for --wait");
	if (!priority_ok(prio))
		return ctl_usage_error(a, "--priority is high, medium or low, not '%s'", prio);
	if ((r = ctl_parse_version(a, "--version", a->version, &version)))
		return r;
	return follow(a, json_pack("{s:s, s:s, s:s, s:I, s:s, s:b}", "cmd", "distribute",
				   "package", a->pos[0], "to", a->to, "version",
				   (json_int_t)version, "priority", prio, "wait", a->wait), -1);
}

static void show_removed(json_t *res)
{
	const json_t *q = json_object_get(res, "queued");
	size_t i;
	json_t *x;

	json_array_foreach(q, i, x)
		printf("queued the removal of %s at %s\n", ctl_jstr(res, "package", "?"),
		       json_string_value(x));
}

int ctl_remove(const struct ctl_args *a)
{
	json_t *req = json_pack("{s:s, s:s}", "cmd", "remove", "package", a->pos[0]);

	if (req && a->from)
		json_object_set_new(req, "from", json_string(a->from));
	return ctl_simple(a, req, show_removed);
}
