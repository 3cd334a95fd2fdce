/* bdrctl: a table of commands, each with its one-line help, its usage and
 * the options it takes; one parser for all of them (WireGuard's wg.c, with
 * the option handling made a table too). */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

struct ctl_cmd {
	const char *name;
	ctl_cmd_fn *fn;
	const char *help;
	const char *usage; /* after "bdrctl NAME " */
	unsigned opts;     /* enum ctl_opt bits */
	int min_pos, max_pos;
};

#define DAEMON (CTL_OPT_SOCKET)
#define SHOWS (CTL_OPT_SOCKET | CTL_OPT_JSON)

static const struct ctl_cmd commands[] = {
	{ "keygen", ctl_keygen,
	  "Create this site's key pair (default file " CTL_KEY_DEFAULT ") and print its public key",
	  "[-o FILE]",
	  CTL_OPT_OUT, 0, 0 },
	{ "pubkey", ctl_pubkey, "Print this site's public key", "[-k FILE]", CTL_OPT_KEY, 0, 0 },
	{ "push", ctl_push, "Import DIR as the next version of PACKAGE and send it to SITES",
	  "PACKAGE DIR --to SITE[,SITE...]|all [--priority high|medium|low] [--wait [--timeout S]] "
	  "[--json]", SHOWS | CTL_OPT_TO | CTL_OPT_PRIORITY | CTL_OPT_WAIT | CTL_OPT_TIMEOUT, 2, 2 },
	{ "distribute", ctl_distribute, "Send a version of PACKAGE already in the library to SITES",
	  "PACKAGE [--version N] --to SITE[,SITE...]|all [--priority high|medium|low] "
	  "[--wait [--timeout S]] [--json]",
	  SHOWS | CTL_OPT_TO | CTL_OPT_PRIORITY | CTL_OPT_WAIT | CTL_OPT_VERSION | CTL_OPT_TIMEOUT,
	  1, 1 },
	{ "remove", ctl_remove, "Remove PACKAGE here and below, or only from SITES and below",
	  "PACKAGE [--from SITE[,SITE...]|all] [--json]", SHOWS | CTL_OPT_FROM, 1, 1 },
	{ "status", ctl_status, "Show outgoing transfers and received versions",
	  "[PACKAGE] [--json]", SHOWS, 0, 1 },
	{ "packages", ctl_packages, "List the packages in this site's library", "[--json]", SHOWS,
	  0, 0 },
	{ "peers", ctl_peers, "List the configured sites and their connections", "[--json]", SHOWS,
	  0, 0 },
	{ "schedule", ctl_schedule, "Show when and how fast this site sends to SITE's addresses",
	  "SITE [--json]", SHOWS, 1, 1 },
	{ "cancel", ctl_cancel, "Cancel a queued, paused or running transfer", "TRANSFER [--json]",
	  SHOWS, 1, 1 },
	{ "retry", ctl_retry, "Queue a failed or cancelled transfer again, or retry a waiting one now",
	  "TRANSFER [--json]", SHOWS, 1, 1 },
	{ "reload", ctl_reload, "Make bdrd reread its configuration", "", DAEMON, 0, 0 },
	{ "metrics", ctl_metrics, "Print bdrd's metrics in Prometheus' text format", "", DAEMON, 0,
	  0 },
	{ "bundle", ctl_bundle, "Write a version to a file for a site no link reaches, or import one",
	  "create PACKAGE [--version N] [--base M] -o FILE | import FILE [--json]",
	  SHOWS | CTL_OPT_OUT | CTL_OPT_VERSION | CTL_OPT_BASE, 2, 2 },
};

/* Every option of every command; a command accepts those in its bits. */
struct ctl_optdef {
	struct option o;
	unsigned bit;
	const char *help;
};

static const struct ctl_optdef optdefs[] = {
	{ { "socket", required_argument, NULL, 's' }, CTL_OPT_SOCKET,
	  "-s, --socket PATH     bdrd's control socket (default $" BDR_CONTROL_ENV
	  " or " BDR_CONTROL_DEFAULT_PATH ")" },
	{ { "json", no_argument, NULL, 'j' }, CTL_OPT_JSON,
	  "    --json            print the result as JSON" },
	{ { "output", required_argument, NULL, 'o' }, CTL_OPT_OUT,
	  "-o, --output FILE     the file to create" },
	{ { "key", required_argument, NULL, 'k' }, CTL_OPT_KEY,
	  "-k, --key FILE        the key file (default " CTL_KEY_DEFAULT ")" },
	{ { "to", required_argument, NULL, 't' }, CTL_OPT_TO,
	  "-t, --to SITES        destination: a site, sites separated by commas, or all (this\n"
	  "                      site's children; without children, every peer with an address)" },
	{ { "priority", required_argument, NULL, 'p' }, CTL_OPT_PRIORITY,
	  "-p, --priority P      high, medium (default) or low" },
	{ { "wait", no_argument, NULL, 'w' }, CTL_OPT_WAIT,
	  "-w, --wait            wait until every SITE has activated the version, showing progress" },
	{ { "from", required_argument, NULL, 'f' }, CTL_OPT_FROM,
	  "-f, --from SITES      the sites to remove it from (as --to); default: here and below" },
	{ { "version", required_argument, NULL, 'v' }, CTL_OPT_VERSION,
	  "    --version N       the version to send or bundle (default: the latest)" },
	{ { "base", required_argument, NULL, 'b' }, CTL_OPT_BASE,
	  "    --base M          bundle only what a site holding version M lacks" },
	{ { "timeout", required_argument, NULL, 'T' }, CTL_OPT_TIMEOUT,
	  "    --timeout S       with --wait: stop waiting after S seconds, exit 6; the\n"
	  "                      transfers go on (bdrctl status follows them)" },
	{ { "help", no_argument, NULL, 'h' }, 0, "-h, --help            show this help" },
};
#define NOPTS (sizeof(optdefs) / sizeof(optdefs[0]))

static const struct ctl_cmd *find(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

static void cmd_usage(const struct ctl_cmd *c, FILE *f, bool full)
{
	fprintf(f, "usage: bdrctl %s%s%s\n", c->name, *c->usage ? " " : "", c->usage);
	if (!full)
		return;
	fprintf(f, "\n%s.\n\nOptions:\n", c->help);
	for (size_t i = 0; i < NOPTS; i++)
		if (!optdefs[i].bit || (c->opts & optdefs[i].bit))
			fprintf(f, "  %s\n", optdefs[i].help);
}

static void main_usage(FILE *f)
{
	fputs("usage: bdrctl [-s SOCKET] [--json] COMMAND [ARGS]\n\nCommands:\n", f);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].help);
	fputs("\nOptions:\n  " /* socket */, f);
	fprintf(f, "%s\n  %s\n  %s\n", optdefs[0].help, optdefs[1].help, optdefs[NOPTS - 1].help);
	fputs("  -V, --version         print the version and exit\n", f);
	fputs("\n'bdrctl COMMAND --help' describes a command. Exit status: 0 success,\n"
	      "1 the operation failed, 2 usage error, 3 cannot reach bdrd,\n"
	      "4 bdrd refused the request, 5 status shows failed transfers,\n"
	      "6 --timeout passed while waiting.\n",
	      f);
}

static int vusage_error(const struct ctl_cmd *c, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
static int vusage_error(const struct ctl_cmd *c, const char *fmt, va_list ap)
{
	fputs("bdrctl: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	if (c)
		cmd_usage(c, stderr, false);
	else
		main_usage(stderr);
	return BDR_EXIT_USAGE;
}

static int usage_error(const struct ctl_cmd *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int usage_error(const struct ctl_cmd *c, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vusage_error(c, fmt, ap);
	va_end(ap);
	return r;
}

/* The usage error for getopt's answer ch: '?' (unknown), ':' (argument
 * missing, optopt names the option) or an option the command does not
 * take; arg is the word getopt last looked at. */
static int bad_option(const struct ctl_cmd *c, int ch, const char *arg)
{
	char name[32];
	int val = ch == ':' ? optopt : ch;

	if (ch == '?' && optopt) {
		snprintf(name, sizeof(name), "-%c", optopt);
		arg = name;
	}
	for (size_t i = 0; i < NOPTS && ch != '?'; i++)
		if (optdefs[i].o.val == val)
			snprintf(name, sizeof(name), "--%s", optdefs[i].o.name), arg = name;
	if (ch == ':')
		return usage_error(c, "option '%s' needs an argument", arg);
	return usage_error(c, "unknown option '%s'", arg);
}

int ctl_usage_error(const struct ctl_args *a, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vusage_error(find(a->cmd), fmt, ap);
	va_end(ap);
	return r;
}

/* --timeout S: whole seconds, 1 to a day. */
static int parse_timeout(struct ctl_args *a, const char *s)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v == 0 || v > 86400)
		return 2;
	a->timeout_s = (unsigned)v;
	return 0;
}

/* Stores option ch's value; 1 if the command does not take it, 2 if its
 * value is not valid. */
static int set_opt(struct ctl_args *a, unsigned allowed, int ch)
{
	for (size_t i = 0; i < NOPTS; i++) {
		if (optdefs[i].o.val != ch)
			continue;
		if (optdefs[i].bit && !(allowed & optdefs[i].bit))
			return 1;
	}
	switch (ch) {
	case 's': a->socket = optarg; break;
	case 'j': a->json = true; break;
	case 'o': a->out = optarg; break;
	case 'k': a->key = optarg; break;
	case 't': a->to = optarg; break;
	case 'p': a->priority = optarg; break;
	case 'w': a->wait = true; break;
	case 'v': a->version = optarg; break;
	case 'f': a->from = optarg; break;
	case 'b': a->base = optarg; break;
	case 'T': return parse_timeout(a, optarg);
	default: return 1;
	}
	return 0;
}

/* Parses argv (argv[0] the command's name) into a; -1 to run the command,
 * else the exit status. */
static int parse(const struct ctl_cmd *c, int argc, char **argv, struct ctl_args *a)
{
	struct option longopts[NOPTS + 1] = { { 0 } };
	int ch;

	for (size_t i = 0; i < NOPTS; i++)
		longopts[i] = optdefs[i].o;
	/* ':' first: we print the messages. GNU getopt permutes, so options may
	 * follow the positional arguments. optind 0 restarts the scan. */
	optind = 0;
	while ((ch = getopt_long(argc, argv, ":s:o:k:t:p:v:f:b:T:wh", longopts, NULL)) != -1) {
		if (ch == 'h') {
			cmd_usage(c, stdout, true);
			return BDR_EXIT_OK;
		}
		if (ch == ':' || ch == '?')
			return bad_option(c, ch, argv[optind - 1]);
		switch (set_opt(a, c->opts, ch)) {
		case 1:
			return bad_option(c, ch, argv[optind - 1]);
		case 2:
			return usage_error(c, "--timeout takes whole seconds, 1 to 86400, not '%s'",
					   optarg);
		}
	}
	for (; optind < argc; optind++) {
		if (a->npos == c->max_pos)
			return usage_error(c, "unexpected argument '%s'", argv[optind]);
		a->pos[a->npos++] = argv[optind];
	}
	if (a->npos < c->min_pos)
		return usage_error(c, "%s: missing arguments", c->name);
	return -1;
}


/* The global options before the command: -s, --json, --help, --version. */
static int parse_global(int argc, char **argv, struct ctl_args *a)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	while ((ch = getopt_long(argc, argv, "+:s:hV", longopts, NULL)) != -1) {
		if (ch == 'h') {
			main_usage(stdout);
			return BDR_EXIT_OK;
		}
		if (ch == 'V') {
			printf("bdrctl %s\n", BDR_VERSION);
			return BDR_EXIT_OK;
		}
		if (ch == ':' || ch == '?')
			return bad_option(NULL, ch, argv[optind - 1]);
		set_opt(a, ~0u, ch);
	}
	if (optind == argc)
		return usage_error(NULL, "%s", "no command given");
	return -1;
}

int main(int argc, char **argv)
{
	struct ctl_args a = { .socket = getenv(BDR_CONTROL_ENV) };
	const struct ctl_cmd *c;
	int r;

	if (!a.socket || !*a.socket)
		a.socket = BDR_CONTROL_DEFAULT_PATH;
	r = parse_global(argc, argv, &a);
	if (r >= 0)
		return r;
	argc -= optind;
	argv += optind;
	c = find(argv[0]);
	if (!c)
		return usage_error(NULL, "unknown command '%s'", argv[0]);
	a.cmd = c->name;
	r = parse(c, argc, argv, &a);
	if (r >= 0)
		return r;
	ctl_errors_json(a.json);
	return c->fn(&a);
}
