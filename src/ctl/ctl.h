/* bdrctl: the command line side of proto/control.md. Dependency rule: the
 * CLI talks to bdrd only through the control socket; it links the core for
 * local key files and nothing of src/daemon (include/bdr/control_proto.h is
 * the one header it shares with the daemon). */
#ifndef BDR_CTL_H
#define BDR_CTL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "bdr/control_proto.h"

#define CTL_KEY_DEFAULT "/etc/bdr/site.key"

/* Options every command may take; which a command accepts is in its table
 * entry (bdrctl.c). */
enum ctl_opt {
	CTL_OPT_SOCKET = 1 << 0,   /* -s, --socket PATH */
	CTL_OPT_JSON = 1 << 1,     /* --json */
	CTL_OPT_OUT = 1 << 2,      /* -o, --output FILE */
	CTL_OPT_KEY = 1 << 3,      /* -k, --key FILE */
	CTL_OPT_TO = 1 << 4,       /* -t, --to SITE */
	CTL_OPT_PRIORITY = 1 << 5, /* -p, --priority P */
	CTL_OPT_WAIT = 1 << 6,     /* -w, --wait */
	CTL_OPT_VERSION = 1 << 7,  /* --version N */
	CTL_OPT_FROM = 1 << 8,     /* -f, --from SITES */
	CTL_OPT_BASE = 1 << 9,     /* --base M */
	CTL_OPT_TIMEOUT = 1 << 10, /* --timeout S */
};

/* A command's parsed arguments (strings point into argv). */
struct ctl_args {
	const char *socket; /* never NULL after parsing */
	bool json;
	bool wait;
	const char *out, *key, *to, *priority, *version, *from, *base; /* NULL: not given */
	unsigned timeout_s; /* --timeout: give up waiting for the answer after it (0: never) */
	const char *pos[2];                    /* positional arguments */
	int npos;
	const char *cmd; /* the command's name */
};

typedef int ctl_cmd_fn(const struct ctl_args *a);

/* Prints "bdrctl: message" and the command's usage line to stderr; returns
 * BDR_EXIT_USAGE. */
int ctl_usage_error(const struct ctl_args *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

ctl_cmd_fn ctl_keygen, ctl_pubkey, ctl_push, ctl_status, ctl_packages, ctl_peers, ctl_reload;
ctl_cmd_fn ctl_schedule, ctl_distribute, ctl_remove;
ctl_cmd_fn ctl_bundle; /* cmd_bundle.c */
ctl_cmd_fn ctl_metrics; /* cmd_metrics.c */
ctl_cmd_fn ctl_cancel, ctl_retry; /* cmd_transfer.c */

/* client.c: one request to bdrd. req (stolen) holds "cmd" and arguments;
 * id and version are added. on_event(ev, arg) sees each event (may be
 * NULL), then on_event(NULL, arg) once before the final answer is handled.
 * Returns an exit status; on 0 *result is the result object (caller's).
 * Errors are printed to stderr. */
typedef void ctl_event_fn(json_t *ev, void *arg);
int ctl_call(const struct ctl_args *a, json_t *req, ctl_event_fn *on_event, void *arg,
	     json_t **result);
/* ctl_call with fd (borrowed; -1: none) passed beside the request, for the
 * commands that take one (proto/control.md, Descriptors). */
int ctl_call_fd(const struct ctl_args *a, json_t *req, int fd, ctl_event_fn *on_event, void *arg,
		json_t **result);
/* A file the user names, opened with the user's own rights: O_RDONLY, or
 * O_DIRECTORY for a directory (a FIFO is not waited on). Prints
 * "bdrctl: PATH: why" and returns -1 when it cannot be. */
int ctl_open_input(const char *path, bool dir);
/* ctl_call without events: prints result (as JSON with --json, else with
 * show) and returns the exit status. */
int ctl_simple(const struct ctl_args *a, json_t *req, void (*show)(json_t *result));

/* out.c */
void ctl_print_json(const json_t *v);
/* With --json, errors are JSON too (proto/control.md, "bdrctl --json"). */
void ctl_errors_json(bool on);
/* Prints "bdrctl: MESSAGE" to stderr and, with --json, the document
 * {"error": {"code": code, "message": MESSAGE, "exit": status}} as one
 * line on stdout; returns status. */
int ctl_err(int status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* "1.5 MiB"; buf of 16 bytes. */
const char *ctl_bytes(uint64_t n, char *buf);
/* "1:02:03" or "2:05"; buf of 32 bytes. */
const char *ctl_duration(uint64_t s, char *buf);
const char *ctl_jstr(const json_t *o, const char *key, const char *dflt);
uint64_t ctl_ju64(const json_t *o, const char *key);
/* A version number option (1..INT64_MAX) into *out; else a usage error
 * naming opt, and its exit status. NULL s leaves *out alone. */
int ctl_parse_version(const struct ctl_args *a, const char *opt, const char *s, uint64_t *out);

/* A table printed with aligned columns. Cells are copied. */
#define CTL_TABLE_MAX_COLS 16
struct ctl_table {
	size_t ncols, ncells, cap;
	char **cells; /* owned */
};
void ctl_table_init(struct ctl_table *t, size_t ncols);
/* Adds a row of t->ncols strings; NULL prints as "-". */
void ctl_table_row(struct ctl_table *t, ...);
void ctl_table_print(const struct ctl_table *t, FILE *f);
void ctl_table_free(struct ctl_table *t);

/* Out of memory in a command line tool: say so and exit 1. */
void *ctl_check_alloc(void *p);

#endif
