/* The chunk cache: chunks as they go on the wire, shared by every transfer
 * of the daemon, so a version sent to many sites at once is read and
 * compressed once, not once per site (fan-out).
 *
 * An entry is keyed by the chunk id and a variant: 0 for an encoding that
 * needs nothing of the destination (raw or zlib), or a hash of what a
 * dictionary came from (package and base version) for one that does. The
 * cache is bounded by max bytes of entries (data and bookkeeping); the
 * least recently used go first. One mutex: workers of the pool use it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "daemon/ccache.h"

struct entry {
	struct bdr_chunk_id id;
	uint64_t variant;
	uint8_t codec;
	bool pending;               /* claimed: being encoded, no data yet */
	bool dead;                  /* dropped while pinned: freed at the last unpin */
	unsigned pins;              /* hits handed out and not yet given back */
	uint32_t len;
	struct entry *hnext;        /* in its bucket */
	struct entry *prev, *next;  /* in the LRU list, most recent first */
	uint8_t data[];
};

struct bdrd_ccache {
	uv_mutex_t lock;
	uv_cond_t filled;           /* a pending entry was filled or given up */
	struct entry **bucket;
	size_t nbucket, n;
	size_t bytes, max;
	struct entry *head, *tail;
	struct bdrd_ccache_stats st;
};

static size_t entry_bytes(const struct entry *e)
{
	return sizeof(*e) + e->len + sizeof(struct entry *);
}

static size_t slot(const struct bdrd_ccache *c, const struct bdr_chunk_id *id, uint64_t variant)
{
	uint64_t h;

	memcpy(&h, id->b, sizeof(h)); /* an XXH3 half: already uniform */
	h ^= variant * 0x9e3779b97f4a7c15ull;
	return (size_t)(h ^ (h >> 29)) & (c->nbucket - 1);
}

int bdrd_ccache_new(struct bdrd_ccache **out, size_t max_bytes)
{
	struct bdrd_ccache *c = calloc(1, sizeof(*c));

	if (!c || !(c->bucket = calloc(1024, sizeof(*c->bucket)))) {
		free(c);
		return -ENOMEM;
	}
	c->nbucket = 1024;
	c->max = max_bytes;
	uv_mutex_init(&c->lock);
	uv_cond_init(&c->filled);
	*out = c;
	return 0;
}

void bdrd_ccache_free(struct bdrd_ccache *c)
{
	if (!c)
		return;
	for (struct entry *e = c->head, *next; e; e = next) {
		next = e->next;
		free(e);
	}
	free(c->bucket);
	uv_cond_destroy(&c->filled);
	uv_mutex_destroy(&c->lock);
	free(c);
}

static struct entry *find(struct bdrd_ccache *c, const struct bdr_chunk_id *id, uint64_t variant)
{
	for (struct entry *e = c->bucket[slot(c, id, variant)]; e; e = e->hnext)
		if (e->variant == variant && !memcmp(e->id.b, id->b, sizeof(id->b)))
			return e;
	return NULL;
}

static void lru_unlink(struct bdrd_ccache *c, struct entry *e)
{
	*(e->prev ? &e->prev->next : &c->head) = e->next;
	*(e->next ? &e->next->prev : &c->tail) = e->prev;
	e->prev = e->next = NULL;
}

static void lru_front(struct bdrd_ccache *c, struct entry *e)
{
	e->next = c->head;
	e->prev = NULL;
	*(c->head ? &c->head->prev : &c->tail) = e;
	c->head = e;
}

static void drop(struct bdrd_ccache *c, struct entry *e)
{
	struct entry **pp = &c->bucket[slot(c, &e->id, e->variant)];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	lru_unlink(c, e);
	c->bytes -= entry_bytes(e);
	c->n--;
	c->st.evicted++;
	if (e->pins)
		e->dead = true; /* out of the budget, still read by a sender */
	else
		free(e);
}

/* Twice the buckets when there are more entries than buckets. */
static void grow(struct bdrd_ccache *c)
{
	size_t n = c->nbucket * 2;
	struct entry **b = calloc(n, sizeof(*b));

	if (!b)
		return; /* longer chains, still correct */
	free(c->bucket);
	c->bucket = b;
	c->nbucket = n;
	for (struct entry *e = c->head; e; e = e->next) {
		size_t s = slot(c, &e->id, e->variant);
		e->hnext = b[s];
		b[s] = e;
	}
}

static void insert(struct bdrd_ccache *c, struct entry *e)
{
	size_t s;

	while (c->bytes + entry_bytes(e) > c->max && c->tail && !c->tail->pending)
		drop(c, c->tail);
	if (c->n >= c->nbucket)
		grow(c);
	s = slot(c, &e->id, e->variant);
	e->hnext = c->bucket[s];
	c->bucket[s] = e;
	lru_front(c, e);
	c->bytes += entry_bytes(e);
	c->n++;
}

int bdrd_ccache_pin(struct bdrd_ccache *c, const struct bdr_chunk_id *id, uint64_t variant,
		    struct bdrd_ccache_hit *hit, bool claim)
{
	struct entry *e;
	int r = -ENOENT;

	uv_mutex_lock(&c->lock);
	/* Someone encodes it right now: the result is a moment away. */
	while ((e = find(c, id, variant)) && e->pending)
		uv_cond_wait(&c->filled, &c->lock);
	if (!e && claim && (e = calloc(1, sizeof(*e)))) {
		*e = (struct entry){ .id = *id, .variant = variant, .pending = true };
		insert(c, e);
		c->st.misses++;
		uv_mutex_unlock(&c->lock);
		return 1;
	}
	if (e) {
		*hit = (struct bdrd_ccache_hit){ e->data, e->len, e->codec, e };
		e->pins++;
		lru_unlink(c, e);
		lru_front(c, e);
		c->st.hits++;
		r = 0;
	} else {
		c->st.misses++;
	}
	uv_mutex_unlock(&c->lock);
	return r;
}

void bdrd_ccache_unpin(struct bdrd_ccache *c, void *pin)
{
	struct entry *e = pin;

	uv_mutex_lock(&c->lock);
	if (!--e->pins && e->dead)
		free(e);
	uv_mutex_unlock(&c->lock);
}

int bdrd_ccache_get(struct bdrd_ccache *c, const struct bdr_chunk_id *id, uint64_t variant,
		    uint8_t *codec, uint8_t *buf, size_t cap, uint32_t *len, bool claim)
{
	struct bdrd_ccache_hit hit;
	int r = bdrd_ccache_pin(c, id, variant, &hit, claim);

	if (r != 0)
		return r;
	if (hit.len <= cap) {
		memcpy(buf, hit.data, hit.len);
		*codec = hit.codec;
		*len = hit.len;
	} else {
		r = -ENOENT; /* never a short copy */
	}
	bdrd_ccache_unpin(c, hit.pin);
	return r;
}

void bdrd_ccache_put(struct bdrd_ccache *c, const struct bdr_chunk_id *id, uint64_t variant,
		     uint8_t codec, const void *head, uint32_t hlen, const uint8_t *data,
		     uint32_t len)
{
	struct entry *e = malloc(sizeof(*e) + hlen + len), *old;

	if (!e) {
		bdrd_ccache_abandon(c, id, variant);
		return;
	}
	*e = (struct entry){ .id = *id, .variant = variant, .codec = codec, .len = hlen + len };
	if (hlen)
		memcpy(e->data, head, hlen);
	memcpy(e->data + hlen, data, len);
	uv_mutex_lock(&c->lock);
	if ((old = find(c, id, variant)) && old->pending) {
		drop(c, old);
		c->st.evicted--; /* replaced, not evicted */
		old = NULL;
		uv_cond_broadcast(&c->filled);
	}
	if (entry_bytes(e) > c->max || old) {
		uv_mutex_unlock(&c->lock);
		free(e);
		return;
	}
	insert(c, e);
	uv_mutex_unlock(&c->lock);
}

void bdrd_ccache_abandon(struct bdrd_ccache *c, const struct bdr_chunk_id *id, uint64_t variant)
{
	struct entry *e;

	uv_mutex_lock(&c->lock);
	if ((e = find(c, id, variant)) && e->pending) {
		drop(c, e);
		c->st.evicted--;
		uv_cond_broadcast(&c->filled);
	}
	uv_mutex_unlock(&c->lock);
}

void bdrd_ccache_clear(struct bdrd_ccache *c)
{
	uv_mutex_lock(&c->lock);
	for (struct entry *e = c->head, *next; e; e = next) {
		next = e->next;
		if (!e->pending) /* a claimer will fill or give it up */
			drop(c, e);
	}
	memset(&c->st, 0, sizeof(c->st));
	uv_mutex_unlock(&c->lock);
}

void bdrd_ccache_stats(struct bdrd_ccache *c, struct bdrd_ccache_stats *st)
{
	uv_mutex_lock(&c->lock);
	*st = c->st;
	st->entries = c->n;
	st->bytes = c->bytes;
	uv_mutex_unlock(&c->lock);
}
