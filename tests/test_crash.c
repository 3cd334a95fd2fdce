/* Crash safety of activation: a child process rebuilds a new version and
 * is killed (SIGKILL) at a random moment. Whatever the moment, reopening
 * the library finds no staging left, the active version complete and
 * bit-exact (the old one, or the new one if the rename had happened), an
 * index that agrees with the disk, and -- keep_versions 2, so each
 * activation deletes a version -- nothing quarantined and no trash. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "bdr/db.h"
#include "bdr/library.h"
#include "testutil.h"

#define ROUNDS 40
#define KEEP 2 /* so that every activation deletes a version */

static char root[PATH_MAX], src[PATH_MAX], sdir[PATH_MAX], rdir[PATH_MAX];

static void make_source(void)
{
	char b[PATH_MAX];

	for (int i = 0; i < 12; i++) {
		snprintf(b, sizeof(b), "%s/d%d", src, i % 3);
		tu_mkdirs(b);
		snprintf(b, sizeof(b), "%s/d%d/f%d.bin", src, i % 3, i);
		tu_write_random(b, (size_t)(1 + i) << 19, (uint64_t)i);
	}
}

/* Changes a few files so each round has a new version to push. */
static void change_source(int round)
{
	char b[PATH_MAX];

	snprintf(b, sizeof(b), "%s/d%d/f%d.bin", src, round % 3, round % 12);
	tu_write_random(b, (size_t)(1 + round % 12) << 19, 1000 + (uint64_t)round);
	snprintf(b, sizeof(b), "%s/new%d.bin", src, round);
	tu_write_random(b, 3u << 20, 2000 + (uint64_t)round);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Runs a replication in a child; kills it after delay_us unless < 0.
 * Returns the child's run time. */
static double replicate_in_child(struct bdr_library *snd, uint64_t version, long delay_us)
{
	double t0 = now_s();
	pid_t pid = fork();
	int status;

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct bdr_library *rcv = tu_library(rdir, KEEP);
		_exit(tu_replicate(snd, rcv, "app", version, NULL) == 0 ? 0 : 1);
	}
	if (delay_us >= 0) {
		usleep((useconds_t)delay_us);
		kill(pid, SIGKILL);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	if (delay_us < 0)
		cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "uninterrupted rebuild failed");
	return now_s() - t0;
}

static void assert_consistent(struct bdr_library *snd, uint64_t old, uint64_t new)
{
	struct bdr_library *rcv = tu_library(rdir, KEEP);
	char staging[PATH_MAX], a[PATH_MAX], b[PATH_MAX];
	struct bdr_db_stats before, after;
	uint64_t latest;

	snprintf(staging, sizeof(staging), "%s/staging", rdir);
	cr_assert_eq(rmdir(staging), 0, "staging not emptied at open");
	cr_assert_eq(mkdir(staging, 0755), 0);
	/* A kill while retention deleted a version leaves no tree that fails
	 * to verify (quarantined) and nothing in trash after the open. */
	cr_assert_eq(bdr_library_quarantined(rcv), 0, "a version was quarantined after the crash");
	snprintf(staging, sizeof(staging), "%s/trash", rdir);
	cr_assert_eq(rmdir(staging), 0, "trash not emptied at open");
	cr_assert_eq(mkdir(staging, 0755), 0);
	cr_assert_eq(bdr_library_latest(rcv, "app", &latest), 0);
	cr_assert(latest == old || latest == new, "active version %llu", (unsigned long long)latest);
	cr_assert_eq(bdr_library_tree_path(rcv, "app", latest, a, sizeof(a)), 0);
	cr_assert_eq(bdr_library_tree_path(snd, "app", latest, b, sizeof(b)), 0);
	cr_assert_eq(tu_tree_diff(b, a, 1), 0, "active version %llu is not intact", (unsigned long long)latest);
	cr_assert_eq(bdr_db_stats(bdr_library_db(rcv), &before), 0);
	cr_assert_eq(bdr_library_reindex(rcv, NULL), 0);
	cr_assert_eq(bdr_db_stats(bdr_library_db(rcv), &after), 0);
	cr_assert(before.versions == after.versions && before.files == after.files &&
		  before.chunks == after.chunks, "index disagrees with the disk after the crash");
	bdr_library_close(rcv);
}

Test(crash, killed_rebuild_never_harms_the_active_version, .timeout = 600)
{
	struct bdr_library *snd, *rcv;
	struct bdr_key key;
	unsigned seed = (unsigned)time(NULL);
	int activated = 0, interrupted = 0;

	tu_mkdtemp(root, "crash");
	snprintf(src, sizeof(src), "%s/src", root);
	snprintf(sdir, sizeof(sdir), "%s/sender", root);
	snprintf(rdir, sizeof(rdir), "%s/receiver", root);
	make_source();
	cr_assert_eq(sodium_init() < 0, 0);
	bdr_key_generate(&key);
	snd = tu_library(sdir, 100); /* keeps every version to compare with */
	rcv = tu_library(rdir, KEEP);
	tu_import(snd, &key, "app", src);
	cr_assert_eq(tu_replicate(snd, rcv, "app", 1, NULL), 0);
	bdr_library_close(rcv);

	change_source(0);
	double full = replicate_in_child(snd, tu_import(snd, &key, "app", src), -1);
	printf("crash test: seed %u, an uninterrupted rebuild takes %.3f s\n", seed, full);
	srand(seed);
	for (int round = 1; round <= ROUNDS; round++) {
		uint64_t old, v;
		rcv = tu_library(rdir, KEEP);
		cr_assert_eq(bdr_library_latest(rcv, "app", &old), 0);
		bdr_library_close(rcv);
		change_source(round);
		v = tu_import(snd, &key, "app", src);
		replicate_in_child(snd, v, (long)(full * 1.2e6 * rand() / RAND_MAX));
		assert_consistent(snd, old, v);
		rcv = tu_library(rdir, KEEP);
		uint64_t now;
		cr_assert_eq(bdr_library_latest(rcv, "app", &now), 0);
		bdr_library_close(rcv);
		activated += now == v;
		interrupted += now == old;
	}
	printf("crash test: %d rounds killed before activation, %d after\n", interrupted, activated);
	bdr_library_close(snd);
	tu_rmrf(root);
}
