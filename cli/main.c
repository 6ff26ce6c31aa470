/* main.c - akctl: global options, the command table, process hardening.
 *
 * This process serves env/get/use/exec, so start-up stays cheap: libc, libsodium and cJSON are the only
 * libraries. The secure arena is started once here, before any command runs: every command holds a
 * key, a secret or an agent connection's buffers in it.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "ak_log.h"
#include "ak_smem.h"
#include "cli.h"
#include "scan.h"

#ifndef AK_VERSION
#define AK_VERSION "0.1.0"
#endif

#ifdef AK_NET
#define CLI_NET_CMD(fn) fn
#else
#define CLI_NET_CMD(fn) cli_net_exec
#endif

struct cli_cmd {
	const char *name;
	cli_cmd_fn fn;
	const char *usage;   /* after "akctl NAME" */
	const char *summary;
};

static const struct cli_cmd cmds[] = {
	{ "init", cmd_init, "[--kdf insecure-test|interactive|moderate|sensitive]",
	    "create a new, empty keystore" },
	{ "unlock", cmd_unlock, "[-t DURATION]", "unlock the agent (asks the passphrase)" },
	{ "lock", cmd_lock, "", "lock the agent, wiping every secret it holds" },
	{ "status", cmd_status, "", "show the agent's and the keystore's state" },
	{ "passwd", cmd_passwd, "[--kdf insecure-test|interactive|moderate|sensitive]",
	    "change the keystore passphrase" },
	{ "add", cmd_add,
	    "PROFILE [--force] [--provider NAME] [--var NAME] [--set NAME=VALUE]... [--description TEXT]\n"
	    "             [--validate|--no-validate]",
	    "add a profile (secret read from the terminal or stdin)" },
	{ "rm", cmd_rm, "PROFILE", "remove a profile" },
	{ "list", cmd_list, "[--json | --names]", "list profiles (secrets redacted; --names: names only)" },
	{ "show", cmd_show, "PROFILE", "show a profile's details (secret redacted)" },
	{ "get", cmd_get, "PROFILE [VAR]", "print a profile's secret (or one variable's value)" },
	{ "env", cmd_env, "PROFILE [--shell sh|bash|zsh|fish|csh|tcsh|powershell|cmd|dotenv|json]",
	    "print export lines for a profile" },
	{ "use", cmd_use, "PROFILE|--clear [--shell SHELL]",
	    "print lines switching the current shell to a profile" },
	{ "shell", cli_shell_exec, "", "interactive console (also 'akctl' alone on a terminal)" },
	{ "hook", cmd_hook, "bash|zsh|fish", "print rc-file code: the ak function, completion, a prompt helper" },
	{ "exec", cmd_exec, "[--env-file FILE]... [--redact] [PROFILE] -- CMD [ARG...]", "run a command with a profile's variables" },
	{ "proxy", cmd_proxy, "PROFILE [--listen ADDR] [--usage-file FILE]   (and: exec --proxy PROFILE -- CMD)",
	    "serve a profile's key through a local proxy; clients get a placeholder" },
	{ "allow", cmd_allow, "FILE | --list", "let an env file's ak:// references be resolved (as it is now)" },
	{ "deny", cmd_deny, "FILE", "take an env file off the allow list" },
	{ "scan", cmd_scan, "[PATH...] [--git] [--history] [--agents] [--all] [--json] [--no-patterns]\n"
	    "             [--staged] | --install-hook [--force] [REPO]",
	    "find stored keys (every encoding) in files, git objects, histories, AI transcripts" },
	{ "redact", cmd_redact, "", "copy stdin to stdout with every stored key replaced by [ak:PROFILE]" },
	/* Network commands live in akctl-net (it links libcurl); akctl runs it for them, so the process that
	 * serves env/get/use/exec never pays for libcurl's start-up. */
	{ "test", CLI_NET_CMD(cmd_test), "PROFILE...|--all [--timeout DURATION] [--base-url URL]",
	    "check keys against their provider's API" },
	{ "import", CLI_NET_CMD(cmd_import), "SOURCE [PROFILE] [--dry-run] [--replace] [--force] [--provider P] [--var NAME] [--allow-var NAME]... [--region R] [--timeout DURATION]",
	    "import keys from a .env or JSON file, the environment, or a cloud secret manager" },
	{ "pull", CLI_NET_CMD(cmd_pull), "PROFILE...|--all [--region REGION] [--timeout DURATION]", "re-fetch profiles imported from a cloud source" },
};

#define NCMDS (sizeof(cmds) / sizeof(cmds[0]))

static void
usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: akctl [-f KEYSTORE] [--passphrase-fd N] COMMAND [ARGS]\n"
	    "       akctl --version | --help | COMMAND --help\n\ncommands:\n");
	for (i = 0; i < NCMDS; i++)
		fprintf(f, "  %-8s %s\n", cmds[i].name, cmds[i].summary);
	fprintf(f, "\nexit codes: 0 ok, 1 failure, 2 usage, 3 no agent, 4 locked, 5 no such profile,\n"
	    "            6 wrong passphrase or authentication failure, 7 the agent found is not yours\n");
}

int
cli_cmd_help(const char *name)
{
	size_t i;

	for (i = 0; i < NCMDS; i++) {
		if (strcmp(cmds[i].name, name) == 0) {
			printf("usage: akctl %s%s%s\n  %s\n", name, cmds[i].usage[0] ? " " : "",
			    cmds[i].usage, cmds[i].summary);
			break;
		}
	}
	return 0;
}

enum ak_err
cli_store_path(struct cli *c)
{
	enum ak_err r;

	if (c->store_resolved)
		return AK_OK;
	r = ak_path_keystore(c->store_opt, c->store, sizeof(c->store), &c->store_explicit);
	if (r == AK_OK)
		c->store_resolved = 1;
	return r;
}

/* Cheap hardening first: no core file, not dumpable (also blocks same-uid ptrace attach). */
static void
harden(void)
{
	struct rlimit rl = { 0, 0 };

	(void)setrlimit(RLIMIT_CORE, &rl);
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "passphrase-fd", required_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct cli c;
	const char *name;
	char *end;
	long v;
	size_t i;
	int ch, rc;

	harden();
	/* Library warnings (e.g. a write that succeeded but could not sync its directory) say "akctl: ". */
	ak_log_init("akctl", AK_LOG_WARN);
	memset(&c, 0, sizeof(c));
	c.argc0 = argc;
	c.argv0 = argv;
	c.pass_fd = -1;
	c.cmd = "akctl";

	opterr = 0;
	/* '+': stop at the command; its own options are parsed by the command. */
	while ((ch = getopt_long(argc, argv, "+:f:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'f':
			if (optarg[0] == '\0') {
				fprintf(stderr, "akctl: -f: empty keystore path\n");
				return 2;
			}
			c.store_opt = optarg;
			break;
		case 'P':
			errno = 0;
			v = strtol(optarg, &end, 10);
			if (end == optarg || *end != '\0' || v < 0 || v > 1048576) {
				fprintf(stderr, "akctl: --passphrase-fd: not a file descriptor: '%s'\n", optarg);
				return 2;
			}
			c.pass_fd = (int)v;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("akctl %s\n", AK_VERSION);
			return 0;
		default:
			return cli_bad_option(&c, ch, argv);
		}
	}
	if (optind >= argc && isatty(0) && isatty(1)) {
		/* akctl alone on a terminal: the console (akctl-shell replaces this process). */
		c.cmd = "shell";
		return cli_shell_exec(&c, 1, (char *[]){ (char *)"shell", NULL });
	}
	if (optind >= argc) {
		fprintf(stderr, "akctl: missing command (see 'akctl --help')\n");
		return 2;
	}
	name = argv[optind];
	for (i = 0; i < NCMDS; i++)
		if (strcmp(cmds[i].name, name) == 0)
			break;
	if (i == NCMDS) {
		fprintf(stderr, "akctl: unknown command '%s' (see 'akctl --help')\n", name);
		return 2;
	}
	c.cmd = cmds[i].name;
	argc -= optind;
	argv += optind;
	/* Users write the global passphrase option after the command too ("akctl unlock
	 * --passphrase-fd 3"): take it out of the command's argv, stopping at "--" (exec's command). */
	for (int a = 1, w = 1; a <= argc; a++) {
		const char *arg = a < argc ? argv[a] : NULL;
		const char *val = NULL;
		int take = 0;

		if (arg != NULL && strcmp(arg, "--") == 0) {
			for (; a <= argc; a++, w++)
				argv[w] = a < argc ? argv[a] : NULL;
			argc = w - 1;
			break;
		}
		if (arg != NULL && strncmp(arg, "--passphrase-fd=", 16) == 0) {
			val = arg + 16;
			take = 1;
		} else if (arg != NULL && strcmp(arg, "--passphrase-fd") == 0) {
			if (a + 1 >= argc) {
				fprintf(stderr, "akctl: --passphrase-fd: missing argument\n");
				return 2;
			}
			val = argv[++a];
			take = 1;
		}
		if (take) {
			errno = 0;
			v = strtol(val, &end, 10);
			if (end == val || *end != '\0' || v < 0 || v > 1048576) {
				fprintf(stderr, "akctl: --passphrase-fd: not a file descriptor: '%s'\n", val);
				return 2;
			}
			c.pass_fd = (int)v;
			continue;
		}
		argv[w++] = argv[a];
		if (a == argc) {
			argc = w - 1;
			break;
		}
	}
	if (ak_smem_init() != 0) {
		fprintf(stderr, "akctl: %s\n", ak_strerror(AK_ERR_NOMEM));
		return ak_err_exit_code(AK_ERR_NOMEM);
	}
	/* Before any JSON: every buffer cJSON holds is then wiped on free. */
	ak_smem_hook_cjson();
	optind = 0; /* glibc: 0 re-initialises getopt for the command's own options */
	rc = cmds[i].fn(&c, argc, argv);
	/* Flush before wiping: stdout may still hold non-secret output. Secrets never go through stdio. */
	if (fflush(stdout) != 0 && rc == 0) {
		fprintf(stderr, "akctl: write error on standard output\n");
		rc = 1;
	}
	/* Every block was wiped when freed; this also wipes anything a bug leaked. */
	ak_smem_release_all();
	return rc;
}
