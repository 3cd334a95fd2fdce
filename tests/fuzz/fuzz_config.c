/* libFuzzer target for bdr.conf (bdr.conf(5)): bdr_config_load over the
 * input as a file (a memfd, by its /proc/self/fd path). It must not crash,
 * leak or read outside the input; a refused file gives at least one error,
 * each "PATH:LINE: message" or "PATH: message", and leaves the
 * configuration empty; an accepted one has its required keys, and its
 * dump (bdr_config_dump) loads back to the same configuration (no
 * difference by bdr_config_diff). Any failure aborts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "daemon/config.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fd = -1, dump_fd = -1;
static char path[64], dump_path[64];

static void must(int cond)
{
	if (!cond)
		abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	fd = memfd_create("bdr.conf", MFD_CLOEXEC);
	dump_fd = memfd_create("dump.conf", MFD_CLOEXEC);
	must(fd >= 0 && dump_fd >= 0);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	snprintf(dump_path, sizeof(dump_path), "/proc/self/fd/%d", dump_fd);
	return 0;
}

static void write_all(int f, const void *p, size_t n)
{
	must(ftruncate(f, 0) == 0);
	must(n == 0 || pwrite(f, p, n, 0) == (ssize_t)n);
}

/* The dump loads back, and nothing differs. */
static void check_dump(const struct bdr_config *c)
{
	struct bdr_config again;
	struct bdr_config_errors errs = { 0 };
	struct bdr_config_diff diff = { 0 };
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	must(f != NULL);
	must(bdr_config_dump(c, f) == 0);
	must(fclose(f) == 0);
	write_all(dump_fd, text, len);
	free(text);
	if (bdr_config_load(dump_path, &again, &errs) != 0) {
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "dump refused: %s\n", errs.v[i].text);
		abort();
	}
	bdr_config_errors_free(&errs);
	must(bdr_config_diff(c, &again, &diff) == 0);
	for (size_t i = 0; i < diff.n; i++)
		fprintf(stderr, "dump differs: %s\n", diff.v[i].text);
	must(diff.n == 0);
	bdr_config_diff_free(&diff);
	bdr_config_free(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bdr_config c;
	struct bdr_config_errors errs = { 0 };
	size_t plen = strlen(path);
	int rc;

	write_all(fd, data, size);
	rc = bdr_config_load(path, &c, &errs);
	if (rc < 0) {
		must(errs.n >= 1 && errs.n <= BDR_CONFIG_MAX_ERRORS);
		for (size_t i = 0; i < errs.n; i++)
			must(!strncmp(errs.v[i].text, path, plen) && errs.v[i].text[plen] == ':');
		must(!c.path && !c.peers && !c.site.name);
		bdr_config_errors_free(&errs);
		return 0;
	}
	must(rc == 0 && errs.n == 0);
	must(c.site.name && c.site.key && c.site.data && c.site.key_line >= 1);
	bdr_config_errors_free(&errs);
	check_dump(&c);
	bdr_config_free(&c);
	return 0;
}
