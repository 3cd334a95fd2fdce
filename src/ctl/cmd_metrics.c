/* bdrctl metrics: the daemon's figures in Prometheus' text format, as the
 * HTTP listener serves them, for node_exporter's textfile collector
 * (write to a temporary file in its directory, then rename it there). */
#include <stdio.h>

#include "ctl.h"

static void on_piece(json_t *ev, void *arg)
{
	const char *text;

	(void)arg;
	if (ev && (text = ctl_jstr(ev, "text", NULL)))
		fputs(text, stdout);
}

int ctl_metrics(const struct ctl_args *a)
{
	json_t *result = NULL;
	int rc = ctl_call(a, json_pack("{s:s}", "cmd", "metrics"), on_piece, NULL, &result);

	json_decref(result);
	if (rc == 0 && (fflush(stdout) != 0 || ferror(stdout))) {
		perror("bdrctl: stdout");
		return BDR_EXIT_FAILED;
	}
	return rc;
}
