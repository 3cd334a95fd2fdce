/* The chunk cache (ccache.c): encoded chunks shared by every transfer, so
 * fan-out reads and compresses each chunk once. Thread-safe. */
#ifndef BDR_DAEMON_CCACHE_H
#define BDR_DAEMON_CCACHE_H

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
 * fits cap: 0 with *codec and *len, else -ENOENT. */
int bdrd_ccache_get(struct bdrd_ccache *c, const struct bdr_chunk_id *id, uint64_t variant,
		    uint8_t *codec, uint8_t *buf, size_t cap, uint32_t *len);
/* Keeps a copy (not if larger than the whole cache, or already there). */
void bdrd_ccache_put(struct bdrd_ccache *c, const struct bdr_chunk_id *id, uint64_t variant,
		     uint8_t codec, const uint8_t *data, uint32_t len);
void bdrd_ccache_stats(struct bdrd_ccache *c, struct bdrd_ccache_stats *st);

#endif
