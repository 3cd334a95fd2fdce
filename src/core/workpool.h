/* A small pool of threads for the core's file-parallel work (reading and
 * hashing the files of an import): jobs run in any order on up to
 * `threads` helpers; when `max_pending` jobs are already waiting, submit
 * runs the job on the caller's thread instead, so the queue (and whatever
 * each job holds open, a file descriptor) stays bounded and the caller's
 * core works too. Private to src/core. */
#ifndef BDR_WORKPOOL_H
#define BDR_WORKPOOL_H

struct bdr_workpool;

typedef void (*bdr_work_fn)(void *job);

/* Helpers for a machine of this size: one per online CPU but the caller's,
 * at most 7. 0 on a single CPU: every job runs in submit. */
unsigned bdr_workpool_default_threads(void);
/* A pool whose helpers could not start runs jobs in submit. NULL when out
 * of memory: submit then runs every job itself. */
struct bdr_workpool *bdr_workpool_new(unsigned threads, unsigned max_pending);
/* fn(job) on a helper, or here (no pool, no helper, or the queue full). */
void bdr_workpool_submit(struct bdr_workpool *p, bdr_work_fn fn, void *job);
/* Runs what is still queued (the caller helping), waits for every job,
 * joins the helpers and frees the pool. NULL is a no-op. */
void bdr_workpool_finish(struct bdr_workpool *p);

#endif
