/* The metrics listener's request reader: what it accepts, what it refuses
 * with which status, and that it waits for a whole head. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "bdr/http.h"

static int parse(const char *s, struct bdr_http_req *r)
{
	return bdr_http_parse(s, strlen(s), r);
}

Test(http, reads_a_scrape)
{
	struct bdr_http_req r;

	cr_assert_eq(parse("GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n", &r), 1);
	cr_assert_str_eq(r.path, "/metrics");
	cr_assert(!r.head);
	cr_assert_eq(parse("HEAD /metrics?name[]=x HTTP/1.0\n\n", &r), 1);
	cr_assert_str_eq(r.path, "/metrics");
	cr_assert(r.head);
}

Test(http, waits_for_the_whole_head)
{
	const char *s = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
	struct bdr_http_req r;

	for (size_t n = 0; n < strlen(s); n++)
		cr_assert_eq(bdr_http_parse(s, n, &r), 0, "complete after %zu bytes", n);
	cr_assert_eq(bdr_http_parse(s, strlen(s), &r), 1);
}

static void refused(const char *s, size_t len, int status)
{
	struct bdr_http_req r;

	cr_assert_eq(bdr_http_parse(s, len, &r), -1, "accepted %.40s", s);
	cr_assert_eq(r.status, status, "%.40s: %d, not %d", s, r.status, status);
}

#define REFUSED(s, status) refused(s, sizeof(s) - 1, status)

Test(http, refuses_what_is_not_a_request)
{
	REFUSED("POST /metrics HTTP/1.1\r\n\r\n", 405);
	REFUSED("get /metrics HTTP/1.1\r\n\r\n", 405);
	REFUSED("GET /metrics HTTP/2.0\r\n\r\n", 505);
	REFUSED("GET /metrics HTTP/1.10\r\n\r\n", 505);
	REFUSED("GET /metrics FTP/1.1\r\n\r\n", 400);
	REFUSED("GET metrics HTTP/1.1\r\n\r\n", 400);
	REFUSED("GET  /metrics HTTP/1.1\r\n\r\n", 400);
	REFUSED("GET /metrics\r\n\r\n", 400);
	REFUSED("GET /a b HTTP/1.1\r\n\r\n", 400);
	REFUSED("GET /metrics HTTP/1.1\r\nX: a\0b\r\n\r\n", 400);
	REFUSED("GET /met\rrics HTTP/1.1\r\n\r\n", 400);
	REFUSED("GET /\x80 HTTP/1.1\r\n\r\n", 400);
	REFUSED("\r\n\r\n", 400);
}

Test(http, refuses_long_heads_and_paths)
{
	static char big[BDR_HTTP_HEAD_MAX + 100];
	char path[400];
	struct bdr_http_req r;

	memset(big, 'a', sizeof(big));
	memcpy(big, "GET /", 5);
	refused(big, BDR_HTTP_HEAD_MAX, 431);
	refused(big, sizeof(big), 431);
	memset(path, 'p', sizeof(path));
	path[0] = '/';
	snprintf(big, sizeof(big), "GET %.*s HTTP/1.1\r\n\r\n", (int)sizeof(path), path);
	refused(big, strlen(big), 414);
	snprintf(big, sizeof(big), "GET %.*s HTTP/1.1\r\n\r\n", (int)sizeof(r.path) - 1, path);
	cr_assert_eq(bdr_http_parse(big, strlen(big), &r), 1);
}
