/* The control protocol's constants and error table (proto/control.md), the
 * one place both the daemon (src/daemon/control.c) and bdrctl (src/ctl)
 * take them from. No libuv, no jansson: bdrctl needs neither for this. */
#ifndef BDR_CONTROL_PROTO_H
#define BDR_CONTROL_PROTO_H

#include <stddef.h>
#include <string.h>

#define BDR_CONTROL_VERSION 1
#define BDR_CONTROL_DEFAULT_PATH "/run/bdr/control.sock"
#define BDR_CONTROL_ENV "BDR_CONTROL"
/* Bytes of one line, not counting its '\n', in both directions. */
#define BDR_CONTROL_MAX_LINE 65536
#define BDR_CONTROL_MAX_CLIENTS 16
/* Unread bytes queued to one client past which progress events are dropped. */
#define BDR_CONTROL_MAX_BACKLOG (1024 * 1024)
/* Unread bytes queued to one client past which it is dropped (its
 * requests answered faster than it reads them). */
#define BDR_CONTROL_MAX_OUTPUT (4 * 1024 * 1024)
/* Descriptors received on one connection and not yet claimed by a line. */
#define BDR_CONTROL_MAX_FDS 4

/* bdrctl's exit status. */
enum bdr_control_exit {
	BDR_EXIT_OK = 0,
	BDR_EXIT_FAILED = 1,      /* the operation failed */
	BDR_EXIT_USAGE = 2,       /* bad options or arguments */
	BDR_EXIT_UNREACHABLE = 3, /* cannot reach the daemon */
	BDR_EXIT_REFUSED = 4,     /* the daemon refused the request */
	BDR_EXIT_TRANSFERS_FAILED = 5, /* status: it shows failed transfers */
	BDR_EXIT_TIMEOUT = 6,     /* --timeout passed before the answer */
};

/* X("code", exit status): every error code of the protocol. */
#define BDR_CONTROL_ERRORS(X)                            \
	X("bad_request", BDR_EXIT_REFUSED)                      \
	X("unknown_command", BDR_EXIT_REFUSED)                  \
	X("permission_denied", BDR_EXIT_REFUSED)                \
	X("busy", BDR_EXIT_REFUSED)                             \
	X("unknown_site", BDR_EXIT_REFUSED)                     \
	X("unknown_package", BDR_EXIT_REFUSED)                  \
	X("unknown_transfer", BDR_EXIT_REFUSED)                 \
	X("invalid_package", BDR_EXIT_REFUSED)                  \
	X("invalid_config", BDR_EXIT_FAILED)                    \
	X("import_failed", BDR_EXIT_FAILED)                     \
	X("transfer_failed", BDR_EXIT_FAILED)                   \
	X("invalid_bundle", BDR_EXIT_FAILED)                    \
	X("internal", BDR_EXIT_FAILED)

/* The exit status bdrctl gives for an error code, or -1 if the code is not
 * in the table (bdrctl then fails with 1; the daemon sends "internal"). */
static inline int bdr_control_code_exit(const char *code)
{
#define BDR_CONTROL_CODE_CASE(str, ex) \
	if (code && strcmp(code, str) == 0)  \
		return ex;
	BDR_CONTROL_ERRORS(BDR_CONTROL_CODE_CASE)
#undef BDR_CONTROL_CODE_CASE
	return -1;
}

#endif
