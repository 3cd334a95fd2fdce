/* See workpool.h. A FIFO of (function, job) pairs in a ring of
 * max_pending slots, one mutex, one condition for "a job queued or the
 * pool is closing" and one for "a job finished". */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "workpool.h"

#define HELPERS_MAX 7u

struct work {
	bdr_work_fn fn;
	void *job;
};

struct bdr_workpool {
	pthread_mutex_t mu;
	pthread_cond_t work;   /* queued > 0 or closing */
	pthread_cond_t idle;   /* running dropped */
	struct work *ring;     /* owned: max_pending slots */
	unsigned cap, head, queued, running;
	bool closing;
	unsigned nthreads;
	pthread_t threads[HELPERS_MAX];
};

unsigned bdr_workpool_default_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n <= 1)
		return 0;
	return n - 1 > HELPERS_MAX ? HELPERS_MAX : (unsigned)(n - 1);
}

/* With mu held and queued > 0: the oldest job, now counted as running. */
static struct work take(struct bdr_workpool *p)
{
	struct work w = p->ring[p->head];

	p->head = (p->head + 1) % p->cap;
	p->queued--;
	p->running++;
	return w;
}

static void done(struct bdr_workpool *p)
{
	pthread_mutex_lock(&p->mu);
	p->running--;
	pthread_cond_broadcast(&p->idle);
	pthread_mutex_unlock(&p->mu);
}

static void *helper(void *arg)
{
	struct bdr_workpool *p = arg;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->queued && !p->closing)
			pthread_cond_wait(&p->work, &p->mu);
		if (!p->queued)
			break;
		struct work w = take(p);
		pthread_mutex_unlock(&p->mu);
		w.fn(w.job);
		done(p);
		pthread_mutex_lock(&p->mu);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

struct bdr_workpool *bdr_workpool_new(unsigned threads, unsigned max_pending)
{
	struct bdr_workpool *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->cap = max_pending ? max_pending : 1;
	if (!(p->ring = calloc(p->cap, sizeof(*p->ring)))) {
		free(p);
		return NULL;
	}
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->idle, NULL);
	if (threads > HELPERS_MAX)
		threads = HELPERS_MAX;
	while (p->nthreads < threads && !pthread_create(&p->threads[p->nthreads], NULL, helper, p))
		p->nthreads++;
	return p;
}

void bdr_workpool_submit(struct bdr_workpool *p, bdr_work_fn fn, void *job)
{
	if (!p) {
		fn(job);
		return;
	}
	pthread_mutex_lock(&p->mu);
	if (!p->nthreads || p->queued == p->cap) {
		pthread_mutex_unlock(&p->mu);
		fn(job);
		return;
	}
	p->ring[(p->head + p->queued) % p->cap] = (struct work){ fn, job };
	p->queued++;
	pthread_cond_signal(&p->work);
	pthread_mutex_unlock(&p->mu);
}

void bdr_workpool_finish(struct bdr_workpool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	while (p->queued) {
		struct work w = take(p);
		pthread_mutex_unlock(&p->mu);
		w.fn(w.job);
		done(p);
		pthread_mutex_lock(&p->mu);
	}
	while (p->running)
		pthread_cond_wait(&p->idle, &p->mu);
	p->closing = true;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->mu);
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->idle);
	pthread_mutex_destroy(&p->mu);
	free(p->ring);
	free(p);
}
