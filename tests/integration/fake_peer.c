/* A pinned peer that asks too much, for test_flood.py: it authenticates as
 * SITE with KEY (the real channel), opens N connections to a bdrd, and on
 * each that is let in OFFERs K versions with manifests of M bytes, then
 * sends all but the last byte of each, so whatever the receiver accepts
 * stays parked, its buffer full. It prints what it hears, one JSON object
 * a line (ready, done, error, closed), then "holding" and keeps every
 * connection open (answering PINGs) until its stdin closes.
 *
 * Usage: fake_peer HOST PORT SITE KEYFILE PEER_SITE PEER_KEY N K M */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bdr/channel.h"
#include "bdr/error.h"
#include "bdr/key.h"
#include "bdr/wire.h"

struct pconn {
	int fd;
	struct bdr_channel *ch;
	bool closed;
};

static const char *peer_site;
static uint8_t peer_pk[BDR_PK_LEN];

static int pin(void *arg, const char *site, uint8_t pk[BDR_PK_LEN])
{
	(void)arg;
	if (strcmp(site, peer_site))
		return -BDR_EKEY;
	memcpy(pk, peer_pk, BDR_PK_LEN);
	return 0;
}

/* s as a JSON string body (text16 is printable ASCII or UTF-8). */
static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			putchar('\\');
		putchar(*s);
	}
	putchar('"');
}

static void closed(struct pconn *c, size_t i, const char *why)
{
	if (c->closed)
		return;
	c->closed = true;
	printf("{\"event\": \"closed\", \"conn\": %zu, \"why\": ", i);
	json_str(why);
	printf("}\n");
	fflush(stdout);
}

static int flush_out(struct pconn *c)
{
	uint8_t *buf;
	size_t len, off = 0;

	bdr_channel_take_out(c->ch, &buf, &len);
	while (off < len) {
		ssize_t n = write(c->fd, buf + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			free(buf);
			return -errno;
		}
		off += (size_t)n;
	}
	free(buf);
	return 0;
}

static int send_msg(struct pconn *c, const struct bdr_msg *m)
{
	struct bdr_wbuf w;
	uint8_t *buf;
	size_t len;
	int r;

	bdr_wbuf_init(&w, BDR_WIRE_MSG_MAX);
	if ((r = bdr_wire_encode(m, &w, NULL)) < 0) {
		bdr_wbuf_free(&w);
		return r;
	}
	if ((r = bdr_wbuf_finish(&w, &buf, &len)) < 0)
		return r;
	r = bdr_channel_send(c->ch, buf, len);
	free(buf);
	return r < 0 ? r : flush_out(c);
}

static void on_msg(struct pconn *c, size_t i, const uint8_t *p, size_t n)
{
	struct bdr_msg *m = malloc(sizeof(*m));

	if (!m || bdr_wire_decode(p, n, m, NULL) < 0) {
		free(m);
		return;
	}
	if (m->type == BDR_MSG_DONE) {
		printf("{\"event\": \"done\", \"conn\": %zu, \"xfer\": %llu, \"status\": %u, "
		       "\"error\": %d, \"message\": ", i, (unsigned long long)m->done.xfer,
		       m->done.status, m->done.error);
		json_str(m->done.message);
		printf("}\n");
	} else if (m->type == BDR_MSG_ERROR) {
		printf("{\"event\": \"error\", \"conn\": %zu, \"code\": %d, \"message\": ", i,
		       m->error.code);
		json_str(m->error.message);
		printf("}\n");
		closed(c, i, "ERROR received"); /* the daemon closes after it */
	} else if (m->type == BDR_MSG_PING) {
		m->type = BDR_MSG_PONG;
		(void)send_msg(c, m);
	}
	fflush(stdout);
	free(m);
}

/* Reads what is there (waiting up to ms), feeds the channel, handles each
 * message. -1 once the connection is gone. */
static int pump(struct pconn *c, size_t i, int ms)
{
	struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
	uint8_t buf[65536];
	struct bdr_diag dg = { "" };
	const uint8_t *msg;
	size_t off = 0, used, mlen;
	ssize_t n;
	int r;

	if (c->closed)
		return -1;
	if (poll(&pfd, 1, ms) <= 0)
		return 0;
	n = read(c->fd, buf, sizeof(buf));
	if (n <= 0) {
		closed(c, i, n == 0 ? "end of file" : strerror(errno));
		return -1;
	}
	while (off < (size_t)n) {
		r = bdr_channel_feed(c->ch, buf + off, (size_t)n - off, &used, &dg);
		off += used;
		while (r == 0 && (r = bdr_channel_recv(c->ch, &msg, &mlen)) == 1) {
			on_msg(c, i, msg, mlen);
			r = 0;
		}
		if (r == 0)
			r = flush_out(c);
		if (r < 0) {
			closed(c, i, dg.msg[0] ? dg.msg : "channel failed");
			return -1;
		}
	}
	return 0;
}

static int dial(const char *host, int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	if (fd < 0 || inet_pton(AF_INET, host, &sa.sin_addr) != 1 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* OFFERs k versions of m bytes, and all but each one's last byte. */
static void park(struct pconn *c, size_t i, unsigned k, uint64_t m)
{
	static uint8_t junk[BDR_WIRE_MANIFEST_PIECE];

	for (unsigned x = 1; x <= k && !c->closed; x++) {
		struct bdr_msg o = { .type = BDR_MSG_OFFER };
		o.offer.xfer = x;
		snprintf(o.offer.package, sizeof(o.offer.package), "flood");
		o.offer.version = x;
		o.offer.manifest_len = m;
		if (send_msg(c, &o) < 0) {
			closed(c, i, "cannot send OFFER");
			return;
		}
		for (uint64_t off = 0; off + 1 < m && !c->closed;) {
			struct bdr_msg p = { .type = BDR_MSG_MANIFEST };
			uint64_t n = m - 1 - off < sizeof(junk) ? m - 1 - off : sizeof(junk);
			p.manifest.xfer = x;
			p.manifest.offset = off;
			p.manifest.len = (uint32_t)n;
			p.manifest.data = junk;
			if (send_msg(c, &p) < 0) {
				closed(c, i, "cannot send MANIFEST");
				return;
			}
			off += n;
			pump(c, i, 0);
		}
	}
}

int main(int argc, char **argv)
{
	struct bdr_channel_opts o = { .initiator = true, .caps = BDR_CAP_RESUME, .peer_key = pin };
	struct bdr_key key;
	struct bdr_diag dg;
	struct pconn *v;
	size_t n;
	unsigned k;
	uint64_t m;
	char c;

	if (argc != 10) {
		fprintf(stderr, "usage: fake_peer HOST PORT SITE KEYFILE PEER_SITE PEER_KEY N K M\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	peer_site = argv[5];
	n = strtoul(argv[7], NULL, 10), k = (unsigned)strtoul(argv[8], NULL, 10);
	m = strtoull(argv[9], NULL, 10);
	if (bdr_key_load(&key, argv[4], &dg) < 0 || bdr_key_pk_from_b64(peer_pk, argv[6]) < 0) {
		fprintf(stderr, "fake_peer: bad key: %s\n", dg.msg);
		return 2;
	}
	o.site = argv[3];
	o.key = &key;
	if (!(v = calloc(n, sizeof(*v))))
		return 1;
	for (size_t i = 0; i < n; i++) {
		struct pconn *pc = &v[i];
		if ((pc->fd = dial(argv[1], atoi(argv[2]))) < 0 || bdr_channel_new(&pc->ch, &o) < 0 ||
		    flush_out(pc) < 0) {
			closed(pc, i, "cannot connect");
			continue;
		}
		while (!pc->closed && !bdr_channel_ready(pc->ch))
			pump(pc, i, 100);
		if (pc->closed)
			continue;
		/* The daemon may still refuse it once authenticated (its limits):
		 * that comes as an ERROR and a close; give it a moment. */
		pump(pc, i, 200);
		if (pc->closed)
			continue;
		printf("{\"event\": \"ready\", \"conn\": %zu}\n", i);
		fflush(stdout);
		park(pc, i, k, m);
	}
	for (int round = 0; round < 20; round++)
		for (size_t i = 0; i < n; i++)
			pump(&v[i], i, 50);
	printf("{\"event\": \"holding\"}\n");
	fflush(stdout);
	/* Until stdin closes; PINGs answered meanwhile. */
	for (;;) {
		struct pollfd in = { .fd = 0, .events = POLLIN };
		if (poll(&in, 1, 200) > 0 && read(0, &c, 1) <= 0)
			break;
		for (size_t i = 0; i < n; i++)
			pump(&v[i], i, 0);
	}
	for (size_t i = 0; i < n; i++) {
		if (v[i].fd >= 0)
			close(v[i].fd);
		bdr_channel_free(v[i].ch);
	}
	free(v);
	bdr_key_wipe(&key);
	return 0;
}
