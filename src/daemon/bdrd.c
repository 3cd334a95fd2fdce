/* bdrd: arguments only; the daemon is libbdrd (daemon.c). Exit statuses are
 * documented in bdrd(8). */
#include <getopt.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>

#include "daemon/config.h"
#include "daemon/daemon.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: bdrd [-c FILE] [--check-config] [-f] [--version]\n"
		   "  -c, --config FILE   configuration (default %s)\n"
		   "  -n, --check-config  validate the configuration and exit\n"
		   "  -f, --foreground    accepted for scripts; bdrd never forks\n"
		   "  -V, --version       print the version and exit\n",
		BDR_CONFIG_PATH_DEFAULT);
}

static int check_config(const char *path)
{
	struct bdr_config_errors errs = { 0 };
	struct bdr_config c;
	int r = bdr_config_load(path, &c, &errs);

	/* The key file too, as bdrd checks it at start: a file that passes
	 * here must not stop bdrd from starting. */
	if (r == 0 && (r = bdr_config_check_key(&c, &errs)) < 0)
		bdr_config_free(&c);
	for (size_t i = 0; i < errs.n; i++)
		fprintf(stderr, "%s\n", errs.v[i].text);
	bdr_config_errors_free(&errs);
	if (r < 0)
		return 1;
	bdr_config_free(&c);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 'n' },
		{ "version", no_argument, NULL, 'V' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = BDR_CONFIG_PATH_DEFAULT;
	int check = 0, o;

	/* Batches and frames of about a MiB come and go all day: served from
	 * the heap rather than fresh mappings, they cost no page faults each
	 * time (measured: a 20-site fan-out spent a fifth of its CPU in them).
	 * What stays mapped is bounded by the trim threshold. */
	mallopt(M_MMAP_THRESHOLD, 8 << 20);
	mallopt(M_TRIM_THRESHOLD, 16 << 20);

	while ((o = getopt_long(argc, argv, "c:nfVh", opts, NULL)) != -1) {
		switch (o) {
		case 'c': path = optarg; break;
		case 'n': check = 1; break;
		case 'f': break; /* always in the foreground */
		case 'V': printf("bdrd %s\n", BDR_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	return check ? check_config(path) : bdrd_run(path);
}
