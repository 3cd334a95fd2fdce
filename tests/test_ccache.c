/* The chunk cache: what is put comes back byte for byte under its id and
 * variant only; the byte budget holds, least recently used first out;
 * threads may share it. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "daemon/ccache.h"
#include "testutil.h"

static struct bdr_chunk_id id_of(uint32_t n)
{
	struct bdr_chunk_id id;

	memset(&id, 0, sizeof(id));
	for (int i = 0; i < 16; i++)
		id.b[i] = (uint8_t)(n * 131u + (uint32_t)i * 7u + (n >> (i % 24)));
	return id;
}

static bool get(struct bdrd_ccache *c, uint32_t n, uint64_t variant, uint8_t *buf, uint32_t *len,
		uint8_t *codec)
{
	struct bdr_chunk_id id = id_of(n);

	return bdrd_ccache_get(c, &id, variant, codec, buf, 65536, len, false) == 0;
}

Test(ccache, what_is_put_comes_back_under_its_key_only)
{
	struct bdrd_ccache *c;
	struct bdr_chunk_id id = id_of(1);
	uint8_t data[1000], buf[65536], codec = 9;
	uint32_t len = 0;

	tu_fill_random(data, sizeof(data), 3);
	cr_assert_eq(bdrd_ccache_new(&c, 1 << 20), 0);
	cr_assert(!get(c, 1, 0, buf, &len, &codec), "an empty cache hit");
	bdrd_ccache_put(c, &id, 0, 1, NULL, 0, data, sizeof(data));
	cr_assert(get(c, 1, 0, buf, &len, &codec));
	cr_assert_eq(len, sizeof(data));
	cr_assert_eq(codec, 1);
	cr_assert_arr_eq(buf, data, sizeof(data));
	cr_assert(!get(c, 1, 7, buf, &len, &codec), "another variant hit");
	cr_assert(!get(c, 2, 0, buf, &len, &codec), "another id hit");
	/* a buffer too small is a miss, never a short copy */
	cr_assert_eq(bdrd_ccache_get(c, &id, 0, &codec, buf, 999, &len, false), -ENOENT);
	/* a second put of the same key keeps the first */
	bdrd_ccache_put(c, &id, 0, 2, NULL, 0, data, 10);
	cr_assert(get(c, 1, 0, buf, &len, &codec));
	cr_assert_eq(codec, 1);
	cr_assert_eq(len, sizeof(data));
	/* a head comes back in front of the data; clear empties it */
	struct bdr_chunk_id id2 = id_of(2);
	bdrd_ccache_put(c, &id2, 5, 2, "head", 4, data, 100);
	cr_assert(get(c, 2, 5, buf, &len, &codec));
	cr_assert_eq(len, 104);
	cr_assert_arr_eq(buf, "head", 4);
	cr_assert_arr_eq(buf + 4, data, 100);
	bdrd_ccache_clear(c);
	cr_assert(!get(c, 2, 5, buf, &len, &codec));
	cr_assert(!get(c, 1, 0, buf, &len, &codec));
	bdrd_ccache_free(c);
}

Test(ccache, the_budget_holds_and_the_least_recent_go_first)
{
	struct bdrd_ccache *c;
	struct bdrd_ccache_stats st;
	uint8_t data[4096] = { 0 }, buf[65536], codec;
	uint32_t len;

	cr_assert_eq(bdrd_ccache_new(&c, 64 * 1024), 0);
	for (uint32_t i = 0; i < 100; i++) {
		struct bdr_chunk_id id = id_of(i);
		data[0] = (uint8_t)i;
		bdrd_ccache_put(c, &id, 0, 1, NULL, 0, data, sizeof(data));
		if (i >= 1)
			cr_assert(get(c, 0, 0, buf, &len, &codec), "entry 0 was used, yet evicted");
		bdrd_ccache_stats(c, &st);
		cr_assert_leq(st.bytes, 64 * 1024);
	}
	cr_assert(get(c, 99, 0, buf, &len, &codec));
	cr_assert_eq(buf[0], 99);
	cr_assert(!get(c, 50, 0, buf, &len, &codec), "an old unused entry survived");
	bdrd_ccache_stats(c, &st);
	cr_assert_gt(st.evicted, 80);
	cr_assert_lt(st.entries, 16);
	/* larger than the whole cache: not kept, nothing else lost */
	uint8_t *huge = calloc(1, 70000);
	struct bdr_chunk_id hid = id_of(1000);
	bdrd_ccache_put(c, &hid, 0, 0, NULL, 0, huge, 70000);
	cr_assert(!get(c, 1000, 0, buf, &len, &codec));
	cr_assert(get(c, 99, 0, buf, &len, &codec));
	free(huge);
	bdrd_ccache_free(c);
}

static struct bdrd_ccache *shared;

static void *hammer(void *arg)
{
	uint8_t data[512], buf[65536], codec;
	uint32_t len, seed = (uint32_t)(uintptr_t)arg;

	for (uint32_t i = 0; i < 20000; i++) {
		uint32_t n = (i * 2654435761u + seed) % 300;
		struct bdr_chunk_id id = id_of(n);
		int r = bdrd_ccache_get(shared, &id, n % 3, &codec, buf, sizeof(buf), &len, i % 2);
		if (r == 0) {
			if (len != sizeof(data) || buf[0] != (uint8_t)n || codec != n % 3)
				return (void *)1;
		} else if (r == 1 && i % 7 == 0) {
			bdrd_ccache_abandon(shared, &id, n % 3);
		} else {
			memset(data, (int)(uint8_t)n, sizeof(data));
			bdrd_ccache_put(shared, &id, n % 3, (uint8_t)(n % 3), NULL, 0, data, sizeof(data));
		}
	}
	return NULL;
}

Test(ccache, threads_share_it)
{
	pthread_t t[4];
	void *rc;

	cr_assert_eq(bdrd_ccache_new(&shared, 100 * 1024), 0);
	for (uintptr_t i = 0; i < 4; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, hammer, (void *)i), 0);
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(pthread_join(t[i], &rc), 0);
		cr_assert_null(rc, "a thread read back what it did not put");
	}
	bdrd_ccache_free(shared);
}

static struct bdrd_ccache *claimed;

static void *ask(void *arg)
{
	static uint8_t buf[65536];
	uint8_t codec;
	uint32_t len;
	struct bdr_chunk_id id = id_of(77);
	int r = bdrd_ccache_get(claimed, &id, 0, &codec, buf, sizeof(buf), &len, true);

	(void)arg;
	return (void *)(uintptr_t)(r == 0 && len == 3 && !memcmp(buf, "abc", 3) ? 1 : 2);
}

/* A claimed chunk is encoded once: who asks meanwhile waits for it; a
 * claim given up lets the next one claim it. */
Test(ccache, a_claim_makes_others_wait_for_its_result)
{
	struct bdr_chunk_id id = id_of(77);
	uint8_t buf[64], codec;
	uint32_t len;
	pthread_t t;
	void *rc;

	cr_assert_eq(bdrd_ccache_new(&claimed, 1 << 20), 0);
	cr_assert_eq(bdrd_ccache_get(claimed, &id, 0, &codec, buf, sizeof(buf), &len, true), 1);
	cr_assert_eq(pthread_create(&t, NULL, ask, NULL), 0);
	bdrd_ccache_put(claimed, &id, 0, 1, NULL, 0, (const uint8_t *)"abc", 3);
	cr_assert_eq(pthread_join(t, &rc), 0);
	cr_assert_eq((uintptr_t)rc, 1, "the waiter did not get the claimer's bytes");

	struct bdr_chunk_id id2 = id_of(78);
	cr_assert_eq(bdrd_ccache_get(claimed, &id2, 0, &codec, buf, sizeof(buf), &len, true), 1);
	bdrd_ccache_abandon(claimed, &id2, 0);
	cr_assert_eq(bdrd_ccache_get(claimed, &id2, 0, &codec, buf, sizeof(buf), &len, true), 1,
		     "a claim given up is not claimable again");
	bdrd_ccache_abandon(claimed, &id2, 0);
	bdrd_ccache_free(claimed);
}

/* A pinned hit stays readable, byte for byte, after it is evicted and after
 * the cache is cleared (a batch being sealed still reads it); unpinning
 * the last pin frees it (ASan would see a leak or a use after free). */
Test(ccache, a_pinned_hit_outlives_eviction_and_clear)
{
	struct bdrd_ccache *c;
	struct bdrd_ccache_hit h1, h2;
	struct bdr_chunk_id id = id_of(7);
	uint8_t data[4096];

	tu_fill_random(data, sizeof(data), 9);
	cr_assert_eq(bdrd_ccache_new(&c, 16 * 1024), 0);
	bdrd_ccache_put(c, &id, 0, 1, NULL, 0, data, sizeof(data));
	cr_assert_eq(bdrd_ccache_pin(c, &id, 0, &h1, false), 0);
	cr_assert_eq(bdrd_ccache_pin(c, &id, 0, &h2, false), 0);
	cr_assert_eq(h1.pin, h2.pin);
	cr_assert_eq(h1.len, sizeof(data));
	for (uint32_t i = 100; i < 110; i++) { /* pushes entry 7 out */
		struct bdr_chunk_id other = id_of(i);
		bdrd_ccache_put(c, &other, 0, 1, NULL, 0, data, sizeof(data));
	}
	cr_assert_eq(bdrd_ccache_pin(c, &id, 0, &(struct bdrd_ccache_hit){ 0 }, false), -ENOENT,
		     "an evicted entry still hit");
	bdrd_ccache_clear(c);
	cr_assert_arr_eq(h1.data, data, sizeof(data));
	bdrd_ccache_unpin(c, h1.pin);
	cr_assert_arr_eq(h2.data, data, sizeof(data));
	bdrd_ccache_unpin(c, h2.pin);
	bdrd_ccache_free(c);
}
