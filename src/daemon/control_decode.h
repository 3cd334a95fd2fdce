/* A control request line decoded (proto/control.md, Requests and "What the
 * server does with malformed input"): a pure function of the line, the
 * command table and whether a request already runs, so the fuzzer
 * (tests/fuzz/fuzz_control.c) reaches every rule without a socket. No
 * libuv here. */
#ifndef BDR_DAEMON_CONTROL_DECODE_H
#define BDR_DAEMON_CONTROL_DECODE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

struct bdr_control_req;

/* args is the whole request object ({"id", "cmd", ...arguments}), borrowed
 * for the call: json_incref() it to keep it. */
typedef void bdr_control_handler_fn(struct bdr_control_req *req, json_t *args, void *arg);

/* The descriptor a command takes with its line (proto/control.md,
 * Descriptors): the server checks its type before the handler runs. */
enum bdr_control_fd {
	BDR_CONTROL_FD_NONE = 0,
	BDR_CONTROL_FD_DIR,  /* a directory open for reading */
	BDR_CONTROL_FD_IN,   /* a regular file open for reading */
	BDR_CONTROL_FD_OUT,  /* a regular file or a pipe open for writing */
};

struct bdr_control_cmd {
	const char *name;
	bdr_control_handler_fn *handler;
	enum bdr_control_fd fd;
};

enum bdr_control_verdict {
	BDR_CONTROL_BLANK,   /* an empty line: nothing to answer */
	BDR_CONTROL_REFUSE,  /* answer code/message with id (NULL: null) */
	BDR_CONTROL_REQUEST, /* run cmd with msg */
};

struct bdr_control_decoded {
	enum bdr_control_verdict verdict;
	json_t *msg;                        /* owned: the object, when it is one */
	json_t *id;                         /* borrowed from msg; NULL: null */
	const struct bdr_control_cmd *cmd;  /* the table's entry, whenever the
					     * line names one (refused or not):
					     * its descriptor belongs to it */
	const char *code;                   /* REFUSE: an error code */
	char message[256];                  /* REFUSE */
};

/* Decodes the n bytes of line (no '\n'). busy: a request runs on the
 * connection. Never fails: every input is one of the three verdicts. */
void bdr_control_decode(const char *line, size_t n, const struct bdr_control_cmd *table, bool busy,
			struct bdr_control_decoded *out);
void bdr_control_decoded_free(struct bdr_control_decoded *d);

#endif
