/* The counting relay: every tool's sender connects here instead of to its
 * receiver, so the bytes each tool puts on its TCP connection are counted
 * the same way (payload delivered each way, headers excluded), whatever the
 * tool says of itself. One thread, poll(), one buffer per direction; a half
 * close is passed on as a half close and a reset as a reset, so the tools
 * see the connection a direct path would give them. TCP_NODELAY on both
 * legs: the relay forwards each write at once and adds no Nagle delay to a
 * request/response exchange. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <unistd.h>

#include "bench.h"

#define PROXY_MAX_CONNS 16
#define PROXY_BUF (128 * 1024)

/* One direction of a connection: from one fd to the other. */
struct flow {
	int from, to;
	char *buf; /* owned, PROXY_BUF */
	size_t len, off;
	bool eof;  /* from said it sends no more */
	bool shut; /* ...and that was passed on: to is shut for writing */
};

struct conn {
	bool used;
	int fd[2];         /* owned: the sender's leg, the receiver's leg */
	struct flow f[2];  /* [0] sender -> receiver, [1] back */
};

struct proxy {
	pthread_t thread;
	int netns, target_port, port;
	char host[64];
	int lfd;     /* owned by the thread */
	int wake[2]; /* owned: proxy_stop writes to [1] */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool started;
	int start_err;
	atomic_bool stop;
	_Atomic uint64_t bytes[2], conns, refused;
	struct conn c[PROXY_MAX_CONNS];
};

static void conn_close(struct conn *c, bool reset)
{
	struct linger lg = { 1, 0 };

	for (int s = 0; s < 2; s++) {
		if (reset)
			setsockopt(c->fd[s], SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(c->fd[s]);
		free(c->f[s].buf);
	}
	memset(c, 0, sizeof(*c));
}

static int dial_target(const struct proxy *p)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)p->target_port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void accept_one(struct proxy *p)
{
	int one = 1, cfd = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC), tfd;
	struct conn *c = NULL;

	if (cfd < 0)
		return;
	for (int i = 0; i < PROXY_MAX_CONNS && !c; i++)
		c = p->c[i].used ? NULL : &p->c[i];
	if (!c || (tfd = dial_target(p)) < 0) {
		p->refused++;
		close(cfd);
		return;
	}
	c->fd[0] = cfd;
	c->fd[1] = tfd;
	for (int s = 0; s < 2; s++) {
		setsockopt(c->fd[s], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		fcntl(c->fd[s], F_SETFL, O_NONBLOCK);
		c->f[s] = (struct flow){ .from = c->fd[s], .to = c->fd[1 - s], .buf = malloc(PROXY_BUF) };
	}
	if (!c->f[0].buf || !c->f[1].buf) {
		conn_close(c, true);
		p->refused++;
		return;
	}
	c->used = true;
	p->conns++;
}

/* Moves what it can of one direction; false when the connection broke. */
static bool flow_step(struct proxy *p, struct flow *f, int dir)
{
	ssize_t n;

	if (f->len == f->off && !f->eof) {
		f->len = f->off = 0;
		n = recv(f->from, f->buf, PROXY_BUF, 0);
		if (n > 0)
			f->len = (size_t)n;
		else if (n == 0)
			f->eof = true;
		else if (errno != EAGAIN && errno != EINTR)
			return false;
	}
	if (f->len > f->off) {
		n = send(f->to, f->buf + f->off, f->len - f->off, MSG_NOSIGNAL);
		if (n > 0) {
			f->off += (size_t)n;
			p->bytes[dir] += (uint64_t)n;
		} else if (errno != EAGAIN && errno != EINTR) {
			return false;
		}
	}
	if (f->eof && f->len == f->off && !f->shut) {
		shutdown(f->to, SHUT_WR);
		f->shut = true;
	}
	return true;
}

static short events(const struct conn *c, int s)
{
	const struct flow *in = &c->f[s], *out = &c->f[1 - s];

	return (short)((!in->eof && in->len == in->off ? POLLIN : 0) |
		       (out->len > out->off ? POLLOUT : 0));
}

static void relay(struct proxy *p)
{
	struct pollfd pf[2 + 2 * PROXY_MAX_CONNS];
	char drain[64];

	int at[PROXY_MAX_CONNS]; /* where a connection's two fds are in pf */

	while (!p->stop) {
		int n = 2;
		pf[0] = (struct pollfd){ .fd = p->lfd, .events = POLLIN };
		pf[1] = (struct pollfd){ .fd = p->wake[0], .events = POLLIN };
		for (int i = 0; i < PROXY_MAX_CONNS; i++) {
			at[i] = n;
			for (int s = 0; s < 2 && p->c[i].used; s++)
				pf[n++] = (struct pollfd){ .fd = p->c[i].fd[s], .events = events(&p->c[i], s) };
		}
		if (poll(pf, (nfds_t)n, -1) < 0 && errno != EINTR)
			break;
		if (pf[1].revents && read(p->wake[0], drain, sizeof(drain)) < 0)
			continue;
		for (int i = 0; i < PROXY_MAX_CONNS; i++) {
			struct conn *c = &p->c[i];
			if (!c->used)
				continue;
			/* An error (a reset) on either leg ends the connection: a
			 * reset is passed on, and poll would report it forever. */
			bool err = (pf[at[i]].revents | pf[at[i] + 1].revents) & POLLERR;
			if (err || !flow_step(p, &c->f[0], 0) || !flow_step(p, &c->f[1], 1))
				conn_close(c, true);
			else if (c->f[0].shut && c->f[1].shut)
				conn_close(c, false);
		}
		if (pf[0].revents & POLLIN)
			accept_one(p);
	}
}

static int listen_on(struct proxy *p)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	int one = 1;

	if (p->netns >= 0 && setns(p->netns, CLONE_NEWNET) < 0)
		return -errno;
	if (inet_pton(AF_INET, p->host, &a.sin_addr) != 1)
		return -EINVAL;
	if ((p->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -errno;
	setsockopt(p->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(p->lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(p->lfd, 16) < 0 ||
	    getsockname(p->lfd, (struct sockaddr *)&a, &alen) < 0)
		return -errno;
	p->port = ntohs(a.sin_port);
	return 0;
}

static void *proxy_main(void *arg)
{
	struct proxy *p = arg;
	int err = listen_on(p);

	pthread_mutex_lock(&p->mu);
	p->start_err = err;
	p->started = true;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	if (!err)
		relay(p);
	for (int i = 0; i < PROXY_MAX_CONNS; i++)
		if (p->c[i].used)
			conn_close(&p->c[i], true);
	if (p->lfd >= 0)
		close(p->lfd);
	return NULL;
}

static void proxy_free(struct proxy *p)
{
	close(p->wake[0]);
	close(p->wake[1]);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p);
}

int proxy_start(struct proxy **out, int netns, const char *host, int target_port, int *port)
{
	struct proxy *p = calloc(1, sizeof(*p));
	int err;

	if (!p)
		return -ENOMEM;
	p->netns = netns;
	p->target_port = target_port;
	p->lfd = -1;
	snprintf(p->host, sizeof(p->host), "%s", host);
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	if (pipe2(p->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
		free(p);
		return -errno;
	}
	if ((err = -pthread_create(&p->thread, NULL, proxy_main, p))) {
		proxy_free(p);
		return err;
	}
	pthread_mutex_lock(&p->mu);
	while (!p->started)
		pthread_cond_wait(&p->cv, &p->mu);
	err = p->start_err;
	pthread_mutex_unlock(&p->mu);
	if (err) {
		pthread_join(p->thread, NULL);
		proxy_free(p);
		return err;
	}
	*port = p->port;
	*out = p;
	return 0;
}

void proxy_counts(struct proxy *p, struct proxy_counts *c)
{
	c->up = p->bytes[0];
	c->down = p->bytes[1];
	c->conns = p->conns;
	c->refused = p->refused;
}

/* Closes every connection still open (a reset: the run is over) and the
 * listener, joins the thread, frees. */
void proxy_stop(struct proxy *p)
{
	if (!p)
		return;
	p->stop = true;
	if (write(p->wake[1], "x", 1) < 0) {
		/* the pipe is full: the thread is awake already */
	}
	pthread_join(p->thread, NULL);
	proxy_free(p);
}
