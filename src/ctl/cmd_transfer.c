/* cancel and retry: one transfer, by the number status shows (--json:
 * "transfer"). */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "ctl.h"

static int one(const struct ctl_args *a, const char *cmd)
{
	json_t *req, *result;
	char *end;
	unsigned long long id;
	int r;

	errno = 0;
	id = strtoull(a->pos[0], &end, 10);
	if (errno || *end || end == a->pos[0] || a->pos[0][0] == '-' || id == 0 || id > INT64_MAX)
		return ctl_usage_error(a, "'%s' is not a transfer number (see bdrctl status)",
				       a->pos[0]);
	req = json_pack("{s:s, s:I}", "cmd", cmd, "transfer", (json_int_t)id);
	if ((r = ctl_call(a, req, NULL, NULL, &result)))
		return r;
	if (a->json)
		ctl_print_json(result);
	else
		printf("transfer %llu: %s\n", id, ctl_jstr(result, "state", "?"));
	json_decref(result);
	return 0;
}

int ctl_cancel(const struct ctl_args *a)
{
	return one(a, "cancel");
}

int ctl_retry(const struct ctl_args *a)
{
	return one(a, "retry");
}
