/* Helpers shared by the Criterion tests: temporary directories, files with
 * seeded content, and a bit-exact comparison of two trees. */
#ifndef BDR_TESTUTIL_H
#define BDR_TESTUTIL_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

/* A fresh directory under $BDR_TEST_TMP (or /tmp); path in buf. */
void tu_mkdtemp(char buf[PATH_MAX], const char *tag);
/* rm -rf */
void tu_rmrf(const char *path);
/* Writes len bytes of xorshift noise from seed (mode 0644). */
void tu_write_random(const char *path, size_t len, uint64_t seed);
void tu_write(const char *path, const void *buf, size_t len);
/* Fills buf with xorshift noise from seed. */
void tu_fill_random(void *buf, size_t len, uint64_t seed);
/* mkdir -p */
void tu_mkdirs(const char *path);
/* Reads a whole (small) file; *len set; malloc'd. */
uint8_t *tu_read(const char *path, size_t *len);
/* 0 if trees a and b hold the same entries with equal content, type, mode
 * bits and symlink targets (and, when check_mtime, file mtimes); else
 * non-zero, printing the first difference to stderr. */
int tu_tree_diff(const char *a, const char *b, int check_mtime);
/* The directory of a shared corpus (BDR_CORPORA/name), or NULL if absent. */
const char *tu_corpus(const char *name, char buf[PATH_MAX]);

#endif

/* Library helpers over the core API (the tests' stand-in for the wire). */
#include "bdr/key.h"
struct bdr_library;
struct bdr_library *tu_library(const char *dir, uint32_t keep);
/* Imports dir as the next version of package; returns the version. */
uint64_t tu_import(struct bdr_library *lib, const struct bdr_key *k, const char *package,
		   const char *dir);
/* Brings receiver to sender's version of package as a push would: the
 * receiver lists what it lacks, the sender supplies those chunks from its
 * own library. Returns 0 or the error of bdr_rebuild_finish; *missing
 * (may be NULL) receives the bytes of chunks that had to travel. */
int tu_replicate(struct bdr_library *sender, struct bdr_library *receiver, const char *package,
		 uint64_t version, uint64_t *missing);
