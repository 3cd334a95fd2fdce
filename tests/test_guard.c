/* guard.h: which unauthenticated connection makes room for a new one, and
 * a peer's memory budget. */
#include <errno.h>
#include <stdio.h>

#include <criterion/criterion.h>

#include "daemon/guard.h"

/* The pool, as the daemon would build it: n connections from srcs[i],
 * accepted at times since[i]; conn names the original index. */
static size_t pool(struct bdr_unauth *v, const char *const *srcs, const int64_t *since, size_t n)
{
	for (size_t i = 0; i < n; i++)
		v[i] = (struct bdr_unauth){ srcs[i], since[i], (void *)(srcs + i) };
	return n;
}

static size_t victim(const char *const *srcs, const int64_t *since, size_t n, const char *src,
		     unsigned total, unsigned per)
{
	struct bdr_unauth v[64];
	long i = bdr_guard_victim(v, pool(v, srcs, since, n), src, total, per);

	return i < 0 ? (size_t)-1 : (size_t)((const char *const *)v[i].conn - srcs);
}

Test(guard, room_left_closes_nothing)
{
	const char *srcs[] = { "10.0.0.1", "10.0.0.2" };
	const int64_t since[] = { 1, 2 };

	cr_assert_eq(victim(srcs, since, 2, "10.0.0.3", 3, 2), (size_t)-1);
	cr_assert_eq(victim(srcs, since, 0, "10.0.0.3", 1, 1), (size_t)-1, "an empty pool");
}

Test(guard, an_address_at_its_share_loses_its_own_oldest)
{
	const char *srcs[] = { "10.0.0.9", "10.0.0.1", "10.0.0.9", "10.0.0.9" };
	const int64_t since[] = { 5, 1, 3, 7 };

	/* the pool has room, but 10.0.0.9 has its 3 */
	cr_assert_eq(victim(srcs, since, 4, "10.0.0.9", 64, 3), 2);
	/* another address is not held to 10.0.0.9's share */
	cr_assert_eq(victim(srcs, since, 4, "10.0.0.1", 64, 3), (size_t)-1);
}

Test(guard, a_full_pool_loses_the_busiest_addresss_oldest)
{
	const char *srcs[] = { "a", "b", "b", "c", "b", "c" };
	const int64_t since[] = { 1, 6, 4, 2, 5, 3 };

	/* b holds 3: its oldest (since 4) goes, not a's older one */
	cr_assert_eq(victim(srcs, since, 6, "d", 6, 8), 2);
	/* a newcomer from the busiest address itself: the same */
	cr_assert_eq(victim(srcs, since, 6, "b", 6, 8), 2);
}

Test(guard, ties_go_to_the_older)
{
	const char *srcs[] = { "a", "b", "a", "b" };
	const int64_t since[] = { 4, 3, 8, 9 };

	cr_assert_eq(victim(srcs, since, 4, "c", 4, 8), 1, "b's oldest (3) is older than a's (4)");
}

/* A pinned peer's fresh connection survives a flood from one address: the
 * flood only ever pushes out its own connections. */
Test(guard, a_flood_from_one_address_never_reaches_another)
{
	struct bdr_unauth v[64];
	const char *flood = "127.0.0.2", *peer = "127.0.0.1";
	size_t n = 0;
	int64_t t = 0;
	bool peer_in = false;

	for (int i = 0; i < 1000; i++) {
		const char *src = i == 500 ? peer : flood;
		long k;
		while ((k = bdr_guard_victim(v, n, src, 16, 8)) >= 0) {
			cr_assert_str_eq(v[k].src, flood, "step %d: the peer's connection was chosen", i);
			v[k] = v[--n];
		}
		v[n++] = (struct bdr_unauth){ src, ++t, NULL };
		peer_in |= src == peer;
		cr_assert_leq(n, 9, "the flood holds its share of 8, the peer 1");
	}
	cr_assert(peer_in);
}

/* A limit lowered under the pool: asked again and again, it sheds the
 * excess, busiest first. */
Test(guard, a_lowered_limit_sheds_the_excess)
{
	struct bdr_unauth v[8];
	const char *srcs[] = { "a", "a", "a", "b", "b", "c" };
	size_t n = 6, closed = 0;
	long k;

	for (size_t i = 0; i < n; i++)
		v[i] = (struct bdr_unauth){ srcs[i], (int64_t)i, NULL };
	while ((k = bdr_guard_victim(v, n, "d", 3, 8)) >= 0) {
		v[k] = v[--n];
		closed++;
	}
	cr_assert_eq(n, 2, "room for the new one under a limit of 3");
	cr_assert_eq(closed, 4);
	cr_assert_str_neq(v[0].src, v[1].src, "one of each address is left");
}

Test(guard, budget_takes_and_gives)
{
	uint64_t used = 0;

	cr_assert_eq(bdr_budget_take(&used, 100, 60), 0);
	cr_assert_eq(bdr_budget_take(&used, 100, 41), -ENOBUFS, "past the budget");
	cr_assert_eq(used, 60, "a refusal takes nothing");
	cr_assert_eq(bdr_budget_take(&used, 100, 40), 0, "exactly the budget");
	cr_assert_eq(bdr_budget_take(&used, 100, 0), 0);
	cr_assert_eq(bdr_budget_take(&used, 100, 1), -ENOBUFS);
	bdr_budget_give(&used, 70);
	cr_assert_eq(used, 30);
	cr_assert_eq(bdr_budget_take(&used, 100, UINT64_MAX), -ENOBUFS, "no wrap-around");
	bdr_budget_give(&used, 1000);
	cr_assert_eq(used, 0, "never below zero");
	/* a budget lowered by a reload under what is taken refuses, not wraps */
	used = 150;
	cr_assert_eq(bdr_budget_take(&used, 100, 1), -ENOBUFS);
}
