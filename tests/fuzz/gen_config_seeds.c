/* Writes the config fuzzer's seed corpus into the directory argv[1]: the
 * smallest valid file, one that sets every key of the table to its
 * default (or a valid value for the keys without one), the examples of
 * bdr.conf(5), and a file with one of each kind of error. Run at build
 * time. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "daemon/config.h"

static const char *dir;

static void seed(const char *name, const char *text)
{
	char p[4096];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	if (!(f = fopen(p, "w")) || fputs(text, f) < 0 || fclose(f) != 0) {
		fprintf(stderr, "gen_config_seeds: %s: %s\n", p, strerror(errno));
		exit(1);
	}
}

#define PK "yqRwV0H6bTfvOGrNLBkXwkbH/mbaJkw46AyV/40pTYc="
#define MINIMAL "[site]\nname = central\nkey = /etc/bdr/site.key\ndata = /var/lib/bdr\n"

/* A value for a key without a default. */
static const char *required_value(const struct bdr_config_key *k)
{
	if (!strcmp(k->name, "name"))
		return "central";
	if (!strcmp(k->name, "public_key"))
		return PK;
	if (!strcmp(k->name, "host"))
		return "10.0.0.7:7411";
	if (!strcmp(k->name, "key"))
		return "/etc/bdr/site.key";
	if (!strcmp(k->name, "data"))
		return "/var/lib/bdr";
	return NULL;
}

/* Every key of the table in its section, at its default. */
static void every_key(void)
{
	static const char *const head[] = { "[site]", "[limits]", "[peer branch]", "[address a]" };
	static const enum bdr_config_section order[] = { BDR_CONFIG_SITE, BDR_CONFIG_LIMITS,
							 BDR_CONFIG_PEER, BDR_CONFIG_ADDRESS };
	char *text = NULL;
	size_t len = 0, n;
	const struct bdr_config_key *keys = bdr_config_keys(&n);
	FILE *f = open_memstream(&text, &len);

	if (!f)
		exit(1);
	for (size_t s = 0; s < 4; s++) {
		fprintf(f, "%s\n", head[s]);
		for (size_t i = 0; i < n; i++) {
			const char *v = keys[i].def ? keys[i].def : required_value(&keys[i]);
			if (keys[i].section == order[s] && v && *v)
				fprintf(f, "%s = %s\n", keys[i].name, v);
		}
		if (order[s] == BDR_CONFIG_PEER)
			fprintf(f, "address = a\n");
		fputc('\n', f);
	}
	fclose(f);
	seed("every_key", text);
	free(text);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: gen_config_seeds DIR\n");
		return 2;
	}
	dir = argv[1];
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "gen_config_seeds: %s: %s\n", dir, strerror(errno));
		return 1;
	}
	seed("minimal", MINIMAL);
	every_key();
	seed("central",
	     "# bdr.conf(5), EXAMPLES\n[site]\nname = central\nkey = /etc/bdr/site.key\n"
	     "data = /var/lib/bdr\ntimezone = UTC\n\n[limits]\nmax_transfers = 16       ; two links\n"
	     "max_transfers_per_peer = 8\nmax_connections = 32\n\n[peer branch-paris]\n"
	     "public_key = " PK "\naddress = paris-line     ; below\naddress = 10.20.0.5:7411\n\n"
	     "[address paris-line]\nhost = paris.example.net:7411\nschedule = weekdays 08-18 high\n"
	     "schedule = weekdays 18-20 medium\nrate = 08-18 25%\ncapacity = 10Mbit\n\n"
	     "[peer branch-lyon]\npublic_key = A8y7QzQT64Qo7MJzcbSjdgECLY/DmpMP0lHtX/3dDoI=\n"
	     "address = [2001:db8:20::5]:7411\n");
	seed("branch",
	     "[site]\nname = branch-paris\nkey = /etc/bdr/site.key\ndata = /var/lib/bdr\n"
	     "log_level = debug\nrole = dp\n\n[peer central]\nrelation = parent\n"
	     "public_key = NHhfanjKLvLfjhmxhrHgqOP7GdWXF6E8V9WNLHm8eDo=\n"
	     "address = central.example.net:7411\n");
	seed("addresses",
	     MINIMAL "[address mpls]\nhost = 10.0.0.7:7411\nschedule = weekdays 08-18 high\n"
	     "schedule = weekend all closed\nrate = 08-18 256K, 18-08 unlimited\ncapacity = 10Mbit\n"
	     "[peer branch]\npublic_key = " PK "\nrelation = child\naddress = mpls\n"
	     "address = 10.0.0.9:7411\naddress = [2001:db8::9]:7411\naddress = backup.site_2\n"
	     "[address backup.site_2]\nhost = backup.example.net:7412\n");
	seed("errors",
	     "\xEF\xBB\xBForphan = 1\n[site]\ncolour = blue\nkeep_versions = 0\nname = a+b\n"
	     "name = twice\n[limits]\nmax_transfers = 99999999999999999999\n[peer x]\n"
	     "public_key = short\naddress = nowhere\n[schedule night]\nrate = 1M\n[site\n= v\n");
	return 0;
}
