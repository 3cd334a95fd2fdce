/* Request lines of the control protocol, decoded (control_decode.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "bdr/control_proto.h"
#include "control_decode.h"

static bool blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			return false;
	return true;
}

static const struct bdr_control_cmd *find_cmd(const struct bdr_control_cmd *t, const char *name)
{
	for (; t->name; t++)
		if (!strcmp(t->name, name))
			return t;
	return NULL;
}

static void refuse(struct bdr_control_decoded *d, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void refuse(struct bdr_control_decoded *d, const char *code, const char *fmt, ...)
{
	va_list ap;

	d->verdict = BDR_CONTROL_REFUSE;
	d->code = code;
	va_start(ap, fmt);
	vsnprintf(d->message, sizeof(d->message), fmt, ap);
	va_end(ap);
}

/* A request of the first protocol's form, naming a path for bdrd to open. */
static const char *path_argument(const json_t *msg)
{
	static const char *const names[] = { "dir", "file" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (json_object_get(msg, names[i]))
			return names[i];
	return NULL;
}

static void check_request(struct bdr_control_decoded *d, bool busy)
{
	json_t *v = json_object_get(d->msg, "v");
	const char *cmd = json_string_value(json_object_get(d->msg, "cmd"));
	const char *path;

	if (busy)
		refuse(d, "busy", "a request is already running on this connection");
	else if (v && (!json_is_integer(v) || json_integer_value(v) != BDR_CONTROL_VERSION))
		refuse(d, "bad_request", "protocol version not supported (this is %d)",
		       BDR_CONTROL_VERSION);
	else if (!cmd)
		refuse(d, "bad_request", "request needs a string \"cmd\"");
	else if (!d->cmd)
		refuse(d, "unknown_command", "unknown command '%.64s'", cmd);
	else if (d->cmd->fd != BDR_CONTROL_FD_NONE && (path = path_argument(d->msg)))
		refuse(d, "bad_request", "%s: bdrd opens no path for a client (\"%s\"): the client "
		       "opens it and passes the descriptor (a newer bdrctl does)", d->cmd->name, path);
	else
		d->verdict = BDR_CONTROL_REQUEST;
}

void bdr_control_decode(const char *line, size_t n, const struct bdr_control_cmd *table, bool busy,
			struct bdr_control_decoded *d)
{
	json_error_t err;
	const char *cmd;

	memset(d, 0, sizeof(*d));
	if (blank(line, n)) {
		d->verdict = BDR_CONTROL_BLANK;
		return;
	}
	d->msg = json_loadb(line, n, JSON_REJECT_DUPLICATES, &err);
	if (!d->msg) {
		refuse(d, "bad_request", "invalid JSON at column %d: %s", err.column, err.text);
		return;
	}
	if (!json_is_object(d->msg)) {
		refuse(d, "bad_request", "a request is a JSON object");
		return;
	}
	cmd = json_string_value(json_object_get(d->msg, "cmd"));
	d->cmd = cmd ? find_cmd(table, cmd) : NULL;
	d->id = json_object_get(d->msg, "id");
	if (!json_is_integer(d->id) || json_integer_value(d->id) < 0) {
		d->id = NULL;
		refuse(d, "bad_request", "request needs an integer \"id\" >= 0");
		return;
	}
	check_request(d, busy);
}

void bdr_control_decoded_free(struct bdr_control_decoded *d)
{
	json_decref(d->msg);
	memset(d, 0, sizeof(*d));
}
