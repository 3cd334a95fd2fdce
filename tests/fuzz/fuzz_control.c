/* libFuzzer target for the control protocol's request decoding
 * (proto/control.md, Requests and "What the server does with malformed
 * input"; src/daemon/control_decode.c). The first byte's low bit says
 * whether a request already runs on the connection; the rest is one line.
 * Properties checked; any failure aborts:
 *   - every input gets exactly one of the three verdicts;
 *   - blank means the line is only spaces, tabs and '\r';
 *   - a refusal carries a code of the protocol's table, a message, and an
 *     id that is null or an integer >= 0; busy is refused as busy;
 *   - a request is a JSON object with an integer id >= 0, a "cmd" string
 *     naming the table entry it returns, a supported "v", and no path
 *     argument when the command takes a descriptor;
 *   - a descriptor-taking command is reported (d.cmd) whenever the line
 *     names one, refused or not, so its descriptor is closed with it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bdr/control_proto.h"
#include "daemon/control_decode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* bdrd's command names and descriptor kinds (src/daemon/cmd.c). */
static const struct bdr_control_cmd table[] = {
	{ "push", NULL, BDR_CONTROL_FD_DIR },
	{ "distribute", NULL, BDR_CONTROL_FD_NONE },
	{ "remove", NULL, BDR_CONTROL_FD_NONE },
	{ "status", NULL, BDR_CONTROL_FD_NONE },
	{ "packages", NULL, BDR_CONTROL_FD_NONE },
	{ "peers", NULL, BDR_CONTROL_FD_NONE },
	{ "reload", NULL, BDR_CONTROL_FD_NONE },
	{ "schedule", NULL, BDR_CONTROL_FD_NONE },
	{ "bundle_create", NULL, BDR_CONTROL_FD_OUT },
	{ "bundle_import", NULL, BDR_CONTROL_FD_IN },
	{ NULL, NULL, BDR_CONTROL_FD_NONE },
};

static void must(int cond)
{
	if (!cond)
		abort();
}

static int is_blank(const uint8_t *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			return 0;
	return 1;
}

static void check_request(const struct bdr_control_decoded *d, int busy)
{
	const char *cmd = json_string_value(json_object_get(d->msg, "cmd"));
	json_t *v = json_object_get(d->msg, "v");

	must(!busy);
	must(json_is_object(d->msg));
	must(d->id == json_object_get(d->msg, "id"));
	must(json_is_integer(d->id) && json_integer_value(d->id) >= 0);
	must(cmd && d->cmd && d->cmd >= table && d->cmd < table + 10 && !strcmp(cmd, d->cmd->name));
	must(!v || (json_is_integer(v) && json_integer_value(v) == BDR_CONTROL_VERSION));
	if (d->cmd->fd != BDR_CONTROL_FD_NONE)
		must(!json_object_get(d->msg, "dir") && !json_object_get(d->msg, "file"));
}

static void check_refusal(const struct bdr_control_decoded *d, int busy)
{
	const char *cmd = json_is_object(d->msg) ? json_string_value(json_object_get(d->msg, "cmd"))
						 : NULL;

	must(d->code && bdr_control_code_exit(d->code) >= 0);
	must(memchr(d->message, '\0', sizeof(d->message)) && d->message[0]);
	must(!d->id || (json_is_integer(d->id) && json_integer_value(d->id) >= 0));
	if (busy && d->id)
		must(!strcmp(d->code, "busy"));
	if (d->cmd)
		must(cmd && !strcmp(cmd, d->cmd->name));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bdr_control_decoded d;
	int busy;

	if (size < 1 || size > BDR_CONTROL_MAX_LINE + 1)
		return 0;
	busy = data[0] & 1;
	data++, size--;
	bdr_control_decode((const char *)data, size, table, busy, &d);
	switch (d.verdict) {
	case BDR_CONTROL_BLANK:
		must(is_blank(data, size) && !d.msg && !d.cmd);
		break;
	case BDR_CONTROL_REFUSE:
		must(!is_blank(data, size));
		check_refusal(&d, busy);
		break;
	case BDR_CONTROL_REQUEST:
		must(!is_blank(data, size));
		check_request(&d, busy);
		break;
	default:
		must(0);
	}
	bdr_control_decoded_free(&d);
	must(!d.msg && !d.cmd);
	return 0;
}
