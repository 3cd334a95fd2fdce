/* The decisions of guard.h: which stranger's connection makes room, and
 * the arithmetic of a peer's memory budget. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/guard.h"

/* By address, then oldest first: each address is one run, led by its
 * oldest connection. */
static int by_src_age(const void *a, const void *b)
{
	const struct bdr_unauth *x = a, *y = b;
	int c = strcmp(x->src, y->src);

	return c ? c : (x->since > y->since) - (x->since < y->since);
}

long bdr_guard_victim(struct bdr_unauth *v, size_t n, const char *src, unsigned max_total,
		      unsigned max_per_src)
{
	size_t best_n = 0, mine = 0;
	long best = -1, mine_at = -1;

	qsort(v, n, sizeof(*v), by_src_age);
	for (size_t i = 0, k; i < n; i += k) {
		for (k = 1; i + k < n && !strcmp(v[i + k].src, v[i].src); k++)
			;
		if (!strcmp(v[i].src, src))
			mine = k, mine_at = (long)i;
		/* Of two addresses as busy, the one whose oldest is older. */
		if (k > best_n || (k == best_n && v[i].since < v[best].since))
			best_n = k, best = (long)i;
	}
	if (mine >= max_per_src)
		return mine_at;
	return n >= max_total ? best : -1;
}

int bdr_budget_take(uint64_t *used, uint64_t limit, uint64_t n)
{
	if (*used > limit || n > limit - *used)
		return -ENOBUFS;
	*used += n;
	return 0;
}

void bdr_budget_give(uint64_t *used, uint64_t n)
{
	*used = n > *used ? 0 : *used - n;
}
