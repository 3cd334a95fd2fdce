/* A metrics scrape's request head (include/bdr/http.h). Strict on what
 * it reads: one request line "METHOD SP TARGET SP HTTP/1.x", then header
 * lines of visible ASCII, tabs and spaces, ended by an empty line. Line
 * ends are CRLF or a bare LF (RFC 9112 2.2 lets a server accept both). */
#include <string.h>

#include "bdr/http.h"

static int refuse(struct bdr_http_req *r, int status)
{
	r->status = status;
	return -1;
}

/* Where the head ends (just past its empty line), or 0 if not yet. */
static size_t head_end(const char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (buf[i] != '\n')
			continue;
		if (i + 1 < len && buf[i + 1] == '\n')
			return i + 2;
		if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

static bool visible(char c)
{
	return c > 0x20 && c < 0x7f;
}

/* Every line of the head holds only visible ASCII, spaces and tabs, and a
 * CR only just before its LF. */
static bool clean(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c == '\r' && i + 1 < n && s[i + 1] == '\n')
			continue;
		if (!visible(c) && c != ' ' && c != '\t' && c != '\n')
			return false;
	}
	return true;
}

/* The request line s[0..n) (no line end) into r. */
static int request_line(const char *s, size_t n, struct bdr_http_req *r)
{
	const char *sp1 = memchr(s, ' ', n), *sp2, *target, *rest, *q;
	size_t tlen, rlen, plen;

	if (!sp1)
		return refuse(r, 400);
	sp2 = memchr(sp1 + 1, ' ', n - (size_t)(sp1 + 1 - s));
	if (!sp2)
		return refuse(r, 400);
	target = sp1 + 1;
	tlen = (size_t)(sp2 - target);
	if (tlen == 0 || target[0] != '/')
		return refuse(r, 400);
	for (size_t i = 0; i < tlen; i++)
		if (!visible(target[i]))
			return refuse(r, 400);
	rest = sp2 + 1;
	rlen = n - (size_t)(rest - s);
	if (rlen < 5 || memcmp(rest, "HTTP/", 5) != 0)
		return refuse(r, 400);
	if (rlen != 8 || memcmp(rest, "HTTP/1.", 7) != 0 || (rest[7] != '0' && rest[7] != '1'))
		return refuse(r, 505);
	q = memchr(target, '?', tlen);
	plen = q ? (size_t)(q - target) : tlen;
	if (plen >= sizeof(r->path))
		return refuse(r, 414);
	if ((size_t)(sp1 - s) == 3 && memcmp(s, "GET", 3) == 0)
		r->head = false;
	else if ((size_t)(sp1 - s) == 4 && memcmp(s, "HEAD", 4) == 0)
		r->head = true;
	else
		return refuse(r, 405);
	memcpy(r->path, target, plen);
	r->path[plen] = '\0';
	return 1;
}

int bdr_http_parse(const char *buf, size_t len, struct bdr_http_req *r)
{
	size_t end, line;

	memset(r, 0, sizeof(*r));
	if (len > BDR_HTTP_HEAD_MAX)
		len = BDR_HTTP_HEAD_MAX;
	end = head_end(buf, len);
	if (end == 0)
		return len == BDR_HTTP_HEAD_MAX ? refuse(r, 431) : 0;
	if (!clean(buf, end))
		return refuse(r, 400);
	line = (size_t)((const char *)memchr(buf, '\n', end) - buf);
	if (line > 0 && buf[line - 1] == '\r')
		line--;
	return request_line(buf, line, r);
}

const char *bdr_http_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 414: return "URI Too Long";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Error";
	}
}
