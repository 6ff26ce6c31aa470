/* main.c - akagent: options, then -k (kill.c) or the start-up (start.c). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "ak_log.h"
#include "ak_shell.h"
#include "ak_smem.h"
#include "ak_util.h"

#define DEFAULT_LIFETIME_S (8u * 3600)
#define DEFAULT_IDLE_S 3600u

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: akagent [-c | -s | --shell NAME] [-Dd] [-a SOCKET] [-f KEYSTORE] [-t DURATION] [--idle DURATION]\n"
	    "               [--confirm-timeout DURATION] [--audit-log PATH] [CMD [ARG...]]\n"
	    "       akagent [-c | -s | --shell NAME] -k\n"
	    "  -c, -s           print csh / sh commands (default: the shell running akagent, else $SHELL)\n"
	    "  --shell NAME     print commands for NAME: sh bash zsh dash ksh fish csh tcsh\n"
	    "  -k               stop the agent named by AKAGENT_SOCK (or AKAGENT_PID)\n"
	    "  -D               stay in the foreground;  -d  same, with a debug log on stderr\n"
	    "  -a SOCKET        bind the agent's socket at SOCKET\n"
	    "  -f KEYSTORE      keystore file (default: $AKCTL_KEYSTORE, else\n"
	    "                   $XDG_DATA_HOME/akagent/keystore)\n"
	    "  -t DURATION      lock this long after unlock (default 8h; 0 = never)\n"
	    "  --idle DURATION  lock after this long without a request (default 1h; 0 = never)\n"
	    "  --confirm-timeout DURATION\n"
	    "                   deny a confirm-on-use request not answered this long (default 30s)\n"
	    "  --audit-log PATH append a line per handout and write to PATH (0600; names hashed)\n"
	    "  CMD [ARG...]     run CMD with AKAGENT_SOCK/AKAGENT_PID set; exit when it exits\n"
	    "  -h, --help       this help;  -V, --version  the version\n");
}

static void
smem_warn(const char *msg)
{
	ak_warn("%s", msg);
}

static enum ak_shell
shell_choice(enum ak_shell s)
{
	return (s == AK_SHELL_CSH || s == AK_SHELL_FISH) ? s : AK_SHELL_SH;
}

static int
parse_duration(const char *opt, const char *s, uint32_t *out)
{
	if (ak_duration_parse(s, out) != AK_OK) {
		fprintf(stderr, "akagent: %s: invalid duration '%s' (e.g. 90s, 30m, 8h, 0 = none)\n", opt, s);
		return -1;
	}
	return 0;
}

/* 0 ok, 1 exit 0 (help/version), 2 usage error. */
static int
parse_opts(int argc, char **argv, struct agent_opts *o)
{
	static const struct option longopts[] = {
		{ "idle", required_argument, NULL, 'I' },
		{ "confirm-timeout", required_argument, NULL, 'C' },
		{ "audit-log", required_argument, NULL, 'L' },
		{ "shell", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int ch, shell_set = 0;

	memset(o, 0, sizeof(*o));
	o->lifetime_s = DEFAULT_LIFETIME_S;
	o->idle_s = DEFAULT_IDLE_S;
	/* '+': stop at the first non-option, which starts CMD. */
	while ((ch = getopt_long(argc, argv, "+cskDda:f:t:hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			o->shell = AK_SHELL_CSH;
			shell_set = 1;
			break;
		case 's':
			o->shell = AK_SHELL_SH;
			shell_set = 1;
			break;
		case 'S': {
			enum ak_shell sh;

			if (ak_shell_parse(optarg, &sh) != AK_OK || shell_choice(sh) != sh) {
				fprintf(stderr, "akagent: --shell: unknown shell '%s' (sh bash zsh dash ksh fish "
				    "csh tcsh)\n", optarg);
				return 2;
			}
			o->shell = sh;
			shell_set = 1;
			break;
		}
		case 'k':
			o->kill = 1;
			break;
		case 'd':
			o->debug = 1;
			__attribute__((fallthrough)); /* -d implies -D */
		case 'D':
			o->foreground = 1;
			break;
		case 'a':
			o->sock_opt = optarg;
			break;
		case 'f':
			o->store_opt = optarg;
			break;
		case 't':
			if (parse_duration("-t", optarg, &o->lifetime_s) != 0)
				return 2;
			break;
		case 'I':
			if (parse_duration("--idle", optarg, &o->idle_s) != 0)
				return 2;
			break;
		case 'C':
			if (parse_duration("--confirm-timeout", optarg, &o->confirm_timeout_s) != 0)
				return 2;
			if (o->confirm_timeout_s == 0 || o->confirm_timeout_s > 120) {
				fprintf(stderr, "akagent: --confirm-timeout: between 1s and 2m\n");
				return 2;
			}
			break;
		case 'L':
			o->audit_log = optarg;
			break;
		case 'h':
			usage(stdout);
			return 1;
		case 'V':
			printf("akagent %s\n", AK_VERSION);
			return 1;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!shell_set)
		o->shell = shell_choice(ak_shell_detect());
	if (optind < argc)
		o->cmd = argv + optind;
	if (o->kill && (o->cmd != NULL || o->foreground)) {
		fprintf(stderr, "akagent: -k takes no command and no -D/-d\n");
		return 2;
	}
	if (o->sock_opt != NULL && o->sock_opt[0] == '\0') {
		fprintf(stderr, "akagent: -a: empty path\n");
		return 2;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct agent_opts o;

	agent_harden();
	ak_log_init("akagent", AK_LOG_WARN);
	switch (parse_opts(argc, argv, &o)) {
	case 0:
		break;
	case 1:
		return 0;
	default:
		return 2;
	}
	if (o.debug)
		ak_log_init("akagent", AK_LOG_DEBUG);
	if (ak_smem_init() != 0) {
		fprintf(stderr, "akagent: cannot initialise libsodium\n");
		return 1;
	}
	ak_smem_hook_cjson();
	ak_smem_set_warn(smem_warn);
	if (o.kill)
		return agent_kill(&o);
	/* The askpass as the agent's environment names it now: a confirmation never reads it later. */
	agent_confirm_init(getenv("AKAGENT_ASKPASS"), o.confirm_timeout_s);
	if (o.audit_log != NULL && agent_audit_open(o.audit_log) != 0)
		return 1;
	return agent_start(&o);
}
