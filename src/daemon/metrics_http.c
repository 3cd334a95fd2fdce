/* The metrics listener: [site] metrics_listen, off unless set. One answer
 * per connection (GET or HEAD /metrics; 404 for any other path), then the
 * connection closes. What a scraper may make the daemon hold is bounded:
 * at most MAX_CLIENTS at once (more are closed as they arrive), a request
 * head of BDR_HTTP_HEAD_MAX bytes, and HEAD_TIMEOUT_MS to send it. */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bdr/http.h"
#include "daemon/daemon.h"
#include "daemon/metrics.h"

#define MAX_CLIENTS 8
#define HEAD_TIMEOUT_MS 5000
/* After the answer: how long what the client still sends is read and
 * dropped, so that closing with unread bytes does not reset the
 * connection before the client has read the answer (RFC 9112 9.6). */
#define LINGER_MS 2000

struct mclient {
	uv_tcp_t tcp;     /* closed first ... */
	uv_timer_t timer; /* ... then this; freed in its close callback */
	uv_write_t wr;
	uv_shutdown_t sh;
	struct bdrd_metrics *m;
	char head[BDR_HTTP_HEAD_MAX];
	size_t len;
	char *resp;   /* owned: the answer being written */
	bool answered; /* reads are dropped from then on */
	bool closing;
	struct mclient *prev, *next;
};

struct bdrd_metrics {
	struct bdrd *d;
	uv_tcp_t listener; /* this struct is freed in its close callback */
	struct mclient *clients; /* owned list */
	unsigned nclients;
	bool refusing_logged;
};

static void client_freed(uv_handle_t *h)
{
	struct mclient *c = container_of((uv_timer_t *)h, struct mclient, timer);

	free(c->resp);
	free(c);
}

static void client_tcp_closed(uv_handle_t *h)
{
	struct mclient *c = container_of((uv_tcp_t *)h, struct mclient, tcp);

	uv_close((uv_handle_t *)&c->timer, client_freed);
}

static void client_close(struct mclient *c)
{
	if (c->closing)
		return;
	c->closing = true;
	if (c->prev)
		c->prev->next = c->next;
	else
		c->m->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->m->nclients--;
	uv_timer_stop(&c->timer);
	uv_close((uv_handle_t *)&c->tcp, client_tcp_closed);
}

static void on_timeout(uv_timer_t *t)
{
	client_close(container_of(t, struct mclient, timer));
}

static void on_shutdown(uv_shutdown_t *sh, int status)
{
	(void)sh;
	(void)status;
}

static void on_written(uv_write_t *wr, int status)
{
	struct mclient *c = container_of(wr, struct mclient, wr);

	if (status < 0 || c->closing ||
	    uv_shutdown(&c->sh, (uv_stream_t *)&c->tcp, on_shutdown) < 0) {
		client_close(c);
		return;
	}
	uv_timer_start(&c->timer, on_timeout, LINGER_MS, 0);
}

/* Builds and writes the answer to a whole (rc 1) or refused (rc -1) head. */
static void answer(struct mclient *c, int rc, const struct bdr_http_req *req)
{
	char *body = NULL;
	size_t blen = 0, hlen;
	int status = rc < 0 ? req->status : 200;
	char head[256];
	uv_buf_t b;

	c->answered = true;
	uv_timer_stop(&c->timer);
	if (status == 200 && strcmp(req->path, "/metrics") != 0)
		status = 404;
	if (status == 200 && bdrd_metrics_render(c->m->d, &body, &blen) < 0)
		status = 500;
	if (status != 200) {
		free(body);
		body = NULL;
		blen = 0;
	}
	hlen = (size_t)snprintf(head, sizeof(head),
				"HTTP/1.1 %d %s\r\nContent-Type: text/plain; version=0.0.4; "
				"charset=utf-8\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
				status, bdr_http_reason(status), status == 200 ? blen : 0);
	if (rc > 0 && req->head)
		blen = 0;
	c->resp = malloc(hlen + blen);
	if (!c->resp) {
		free(body);
		client_close(c);
		return;
	}
	memcpy(c->resp, head, hlen);
	if (blen)
		memcpy(c->resp + hlen, body, blen);
	free(body);
	b = uv_buf_init(c->resp, (unsigned)(hlen + blen));
	if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, on_written) < 0)
		client_close(c);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct mclient *c = container_of((uv_tcp_t *)h, struct mclient, tcp);

	(void)hint;
	if (c->answered) /* lingering: read into the head's room, dropped */
		*buf = uv_buf_init(c->head, sizeof(c->head));
	else
		*buf = uv_buf_init(c->head + c->len, (unsigned)(sizeof(c->head) - c->len));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct mclient *c = container_of((uv_tcp_t *)s, struct mclient, tcp);
	struct bdr_http_req req;
	int rc;

	(void)buf;
	if (n < 0) {
		client_close(c);
		return;
	}
	if (c->answered)
		return;
	c->len += (size_t)n;
	rc = bdr_http_parse(c->head, c->len, &req);
	if (rc != 0)
		answer(c, rc, &req);
}

static void refuse_connection(struct bdrd_metrics *m)
{
	uv_tcp_t *t = malloc(sizeof(*t));

	if (!t)
		return;
	uv_tcp_init(m->d->loop, t);
	if (uv_accept((uv_stream_t *)&m->listener, (uv_stream_t *)t) == 0 && !m->refusing_logged) {
		bdr_log(BDR_LOG_WARN, NULL, "metrics",
			"%d scrapes at once: closing further connections until one ends", MAX_CLIENTS);
		m->refusing_logged = true;
	}
	uv_close((uv_handle_t *)t, (uv_close_cb)free);
}

static void on_connection(uv_stream_t *s, int status)
{
	struct bdrd_metrics *m = container_of((uv_tcp_t *)s, struct bdrd_metrics, listener);
	struct mclient *c;

	if (status < 0)
		return;
	if (m->nclients >= MAX_CLIENTS || !(c = calloc(1, sizeof(*c)))) {
		refuse_connection(m);
		return;
	}
	m->refusing_logged = false;
	c->m = m;
	uv_tcp_init(m->d->loop, &c->tcp);
	uv_timer_init(m->d->loop, &c->timer);
	c->next = m->clients;
	if (c->next)
		c->next->prev = c;
	m->clients = c;
	m->nclients++;
	if (uv_accept(s, (uv_stream_t *)&c->tcp) < 0 ||
	    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0) {
		client_close(c);
		return;
	}
	uv_timer_start(&c->timer, on_timeout, HEAD_TIMEOUT_MS, 0);
}

static void listener_closed(uv_handle_t *h)
{
	free(container_of((uv_tcp_t *)h, struct bdrd_metrics, listener));
}

int bdrd_metrics_start(struct bdrd *d)
{
	const struct bdr_config_address *a = &d->cfg.site.metrics_listen;
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *ai = NULL;
	struct bdrd_metrics *m;
	char port[8];
	int r;

	if (a->port == 0)
		return 0;
	if (!(m = calloc(1, sizeof(*m))))
		return UV_ENOMEM;
	m->d = d;
	uv_tcp_init(d->loop, &m->listener);
	snprintf(port, sizeof(port), "%u", a->port);
	r = getaddrinfo(a->host, port, &hints, &ai);
	r = r == 0 ? uv_tcp_bind(&m->listener, ai->ai_addr, 0) : UV_EADDRNOTAVAIL;
	if (ai)
		freeaddrinfo(ai);
	if (r == 0)
		r = uv_listen((uv_stream_t *)&m->listener, 16, on_connection);
	if (r < 0) {
		bdr_log(BDR_LOG_ERROR, NULL, "metrics", "metrics_listen %s:%u: %s", a->host, a->port,
			uv_strerror(r));
		uv_close((uv_handle_t *)&m->listener, listener_closed);
		return r;
	}
	d->metrics = m;
	bdr_log(BDR_LOG_INFO, NULL, "metrics", "serving /metrics on %s:%u", a->host, a->port);
	return 0;
}

void bdrd_metrics_stop(struct bdrd *d)
{
	struct bdrd_metrics *m = d->metrics;

	if (!m)
		return;
	while (m->clients)
		client_close(m->clients);
	uv_close((uv_handle_t *)&m->listener, listener_closed);
	d->metrics = NULL;
}
