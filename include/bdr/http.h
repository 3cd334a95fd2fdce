/* The smallest HTTP/1.x request reader that a metrics scrape needs: one
 * request line and headers, read until the blank line, with every byte
 * checked. Pure: the daemon's responder (src/daemon/metrics_http.c) owns
 * the socket; the fuzzer calls this directly.
 *
 * Why hand-written rather than a library: a scrape is "GET /metrics", the
 * answer ignores every header, and the responder closes after one answer.
 * Debian's HTTP server libraries (libmicrohttpd, libevhtp, civetweb) bring
 * their own threads or event loop beside libuv's; this is ~100 lines that a
 * fuzz target covers completely. */
#ifndef BDR_HTTP_H
#define BDR_HTTP_H

#include <stdbool.h>
#include <stddef.h>

/* A request head may be at most this long; a longer one is refused (431). */
#define BDR_HTTP_HEAD_MAX 8192

struct bdr_http_req {
	bool head;      /* HEAD: answer without the body */
	char path[256]; /* the target without its query, NUL-terminated */
	int status;     /* on refusal: the status to answer (400, 405, 414, 431, 505) */
};

/* Reads the request head at buf[0..len). Returns 1 when it is whole and
 * valid (r filled), 0 when more bytes are needed, -1 when it is refused
 * (r->status says how to answer). Bytes after the head are ignored. */
int bdr_http_parse(const char *buf, size_t len, struct bdr_http_req *r);

/* "OK", "Not Found", ...; "Error" for a status it does not know. */
const char *bdr_http_reason(int status);

#endif
