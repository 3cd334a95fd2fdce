/* Writes the control fuzzer's seed corpus into the directory argv[1]: one
 * request line of every command bdrctl sends, as it sends them, and a few
 * that the server refuses (an old request naming a path, a busy
 * connection, a wrong version), each behind the fuzzer's first byte (bit
 * 0: a request is running). Run at build time (tests/fuzz). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const struct {
	const char *name;
	unsigned char busy;
	const char *line;
} seeds[] = {
	{ "push", 0, "{\"cmd\":\"push\",\"package\":\"app\",\"to\":\"branch1\",\"priority\":\"medium\","
		     "\"wait\":false,\"id\":1,\"v\":1}" },
	{ "push_wait_many", 0, "{\"cmd\":\"push\",\"package\":\"app\",\"to\":\"a,b,c\",\"priority\":"
			       "\"high\",\"wait\":true,\"id\":7,\"v\":1}" },
	{ "push_old_dir", 0, "{\"cmd\":\"push\",\"package\":\"app\",\"dir\":\"/root/secret\",\"to\":\"x\","
			     "\"id\":1,\"v\":1}" },
	{ "distribute", 0, "{\"cmd\":\"distribute\",\"package\":\"app\",\"to\":\"all\",\"version\":3,"
			   "\"priority\":\"low\",\"wait\":false,\"id\":1,\"v\":1}" },
	{ "remove", 0, "{\"cmd\":\"remove\",\"package\":\"app\",\"from\":\"branch1\",\"id\":1,\"v\":1}" },
	{ "status", 0, "{\"cmd\":\"status\",\"package\":\"app\",\"id\":1,\"v\":1}" },
	{ "status_busy", 1, "{\"cmd\":\"status\",\"id\":2}" },
	{ "packages", 0, "{\"cmd\":\"packages\",\"id\":1,\"v\":1}" },
	{ "peers", 0, "{\"cmd\":\"peers\",\"id\":1,\"v\":1}" },
	{ "reload", 0, "{\"cmd\":\"reload\",\"id\":1,\"v\":1}" },
	{ "schedule", 0, "{\"cmd\":\"schedule\",\"site\":\"branch\",\"id\":1,\"v\":1}" },
	{ "bundle_create", 0, "{\"cmd\":\"bundle_create\",\"package\":\"app\",\"version\":2,\"base\":1,"
			      "\"id\":1,\"v\":1}" },
	{ "bundle_create_old_file", 0, "{\"cmd\":\"bundle_create\",\"package\":\"app\",\"file\":"
				       "\"/etc/x\",\"id\":1,\"v\":1}" },
	{ "bundle_import", 0, "{\"cmd\":\"bundle_import\",\"id\":1,\"v\":1}" },
	{ "version_2", 0, "{\"cmd\":\"status\",\"id\":1,\"v\":2}" },
	{ "no_id", 0, "{\"cmd\":\"status\"}" },
	{ "unknown", 0, "{\"cmd\":\"frobnicate\",\"id\":3}" },
	{ "not_object", 0, "[1,2,3]" },
	{ "blank", 0, " \t\r " },
};

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: gen_control_seeds DIR\n");
		return 2;
	}
	if (mkdir(argv[1], 0755) < 0 && errno != EEXIST) {
		perror(argv[1]);
		return 1;
	}
	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
		char path[4096];
		FILE *f;

		snprintf(path, sizeof(path), "%s/%s", argv[1], seeds[i].name);
		if (!(f = fopen(path, "wb")) || fputc(seeds[i].busy, f) == EOF ||
		    fputs(seeds[i].line, f) == EOF || fclose(f)) {
			perror(path);
			return 1;
		}
	}
	return 0;
}
