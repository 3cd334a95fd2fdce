/* The chunk cache (ccache.c): encoded chunks shared by every transfer, so
 * fan-out reads and compresses each chunk once. Thread-safe. */
#ifndef BDR_DAEMON_CCACHE_H
#define BDR_DAEMON_CCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bdr/hash.h"

struct bdrd_ccache;

struct bdrd_ccache_stats {
	uint64_t hits, misses, evicted;
	size_t entries, bytes;
};

/* max_bytes bounds the entries, data and bookkeeping. -ENOMEM. */
int bdrd_ccache_new(struct bdrd_ccache **out, size_t max_bytes);
void bdrd_ccache_free(struct bdrd_ccache *c);
/* The encoding of chunk id under variant (0: one that needs nothing of the
 * destination; else what its dictionary came from), copied into buf if it
 * fits cap: 0 with *codec and *len, else -ENOENT. One that another thread
 * is encoding is waited for. With claim, a miss returns 1 and the caller
 * must encode it and then put it or give it up (abandon): others asking
 * meanwhile wait rather than encode it too. */
int bdrd_ccache_get(struct bdrd_ccache *c, const struct bdr_chunk_id *id, uint64_t variant,
		    uint8_t *codec, uint8_t *buf, size_t cap, uint32_t *len, bool claim);
/* A hit without a copy: what get would copy, left where it is and kept
 * there (even past eviction or clear) until bdrd_ccache_unpin(c, hit.pin).
 * The rest as get. */
struct bdrd_ccache_hit {
	const uint8_t *data;
	uint32_t len;
	uint8_t codec;
	void *pin;
};
int bdrd_ccache_pin(struct bdrd_ccache *c, const struct bdr_chunk_id *id, uint64_t variant,
		    struct bdrd_ccache_hit *hit, bool claim);
void bdrd_ccache_unpin(struct bdrd_ccache *c, void *pin);
void bdrd_ccache_abandon(struct bdrd_ccache *c, const struct bdr_chunk_id *id, uint64_t variant);
/* Keeps a copy of head (hlen bytes the caller wants back in front, may be
 * 0) and data, not if larger than the whole cache or already there. */
void bdrd_ccache_put(struct bdrd_ccache *c, const struct bdr_chunk_id *id, uint64_t variant,
		     uint8_t codec, const void *head, uint32_t hlen, const uint8_t *data,
		     uint32_t len);
/* Drops every entry (their memory goes back). */
void bdrd_ccache_clear(struct bdrd_ccache *c);
void bdrd_ccache_stats(struct bdrd_ccache *c, struct bdrd_ccache_stats *st);

#endif
