/* Writes fuzz_http's seeds: scrapes as Prometheus, curl and a browser
 * send them, and a few refusals, one file each in the directory argv[1]. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static const char *const seeds[] = {
	"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:7412\r\nUser-Agent: Prometheus/2.42.0\r\n"
	"Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5\r\n"
	"Accept-Encoding: gzip\r\nX-Prometheus-Scrape-Timeout-Seconds: 10\r\n\r\n",
	"GET /metrics HTTP/1.1\r\nHost: localhost\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n",
	"HEAD /metrics?x=1 HTTP/1.0\n\n",
	"GET / HTTP/1.1\r\n\r\n",
	"POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
	"GET /metrics HTTP/2.0\r\n\r\n",
};

int main(int argc, char **argv)
{
	char path[4096];

	if (argc != 2 || (mkdir(argv[1], 0755) < 0 && errno != EEXIST)) {
		fprintf(stderr, "usage: gen_http_seeds DIR\n");
		return 1;
	}
	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
		FILE *f;

		snprintf(path, sizeof(path), "%s/seed%zu", argv[1], i);
		if (!(f = fopen(path, "w")) || fwrite(seeds[i], 1, strlen(seeds[i]), f) != strlen(seeds[i]) ||
		    fclose(f) != 0) {
			perror(path);
			return 1;
		}
	}
	return 0;
}
