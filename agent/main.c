/* main.c - akagent: options, then -k (kill.c) or the start-up (start.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "ak_log.h"
#include "ak_opts.h"
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

/* 0 ok, 1 exit 0 (help/version), 2 usage error. Durations are converted once every option is read. */
static int
parse_opts(int argc, char **argv, struct agent_opts *o)
{
	const char *shell = NULL, *lifetime = NULL, *idle = NULL, *confirm = NULL;
	int version = 0;
	const struct ak_opt opts[] = {
		AK_CONST(NULL, 'c', &shell, "csh"),
		AK_CONST(NULL, 's', &shell, "sh"),
		AK_VALUE("shell", 0, &shell),
		AK_FLAG(NULL, 'k', &o->kill, 1),
		AK_FLAG(NULL, 'D', &o->foreground, 1),
		AK_FLAG(NULL, 'd', &o->debug, 1),
		AK_VALUE(NULL, 'a', &o->sock_opt),
		AK_VALUE(NULL, 'f', &o->store_opt),
		AK_VALUE(NULL, 't', &lifetime),
		AK_VALUE("idle", 0, &idle),
		AK_VALUE("confirm-timeout", 0, &confirm),
		AK_VALUE("audit-log", 0, &o->audit_log),
		AK_STOP("version", 'V', &version),
		AK_OPT_END,
	};
	struct ak_opts_result res;
	enum ak_shell sh;
	char msg[128];

	memset(o, 0, sizeof(*o));
	o->lifetime_s = DEFAULT_LIFETIME_S;
	o->idle_s = DEFAULT_IDLE_S;
	/* In order: the first operand starts CMD, and its options are its own. */
	if (ak_opts_parse(argc, argv, opts, AK_OPTS_IN_ORDER | AK_OPTS_HELP, &res) != AK_OK) {
		ak_opts_describe(&res, msg, sizeof(msg));
		fprintf(stderr, "akagent: %s\n", msg);
		usage(stderr);
		return 2;
	}
	if (res.help) {
		usage(stdout);
		return 1;
	}
	if (version) {
		printf("akagent %s\n", AK_VERSION);
		return 1;
	}
	if (o->debug)
		o->foreground = 1; /* -d implies -D */
	if (shell == NULL) {
		o->shell = shell_choice(ak_shell_detect());
	} else if (ak_shell_parse(shell, &sh) != AK_OK || shell_choice(sh) != sh) {
		fprintf(stderr, "akagent: --shell: unknown shell '%s' (sh bash zsh dash ksh fish csh tcsh)\n",
		    shell);
		return 2;
	} else {
		o->shell = sh;
	}
	if ((lifetime != NULL && parse_duration("-t", lifetime, &o->lifetime_s) != 0) ||
	    (idle != NULL && parse_duration("--idle", idle, &o->idle_s) != 0) ||
	    (confirm != NULL && parse_duration("--confirm-timeout", confirm, &o->confirm_timeout_s) != 0))
		return 2;
	if (confirm != NULL && (o->confirm_timeout_s == 0 || o->confirm_timeout_s > 120)) {
		fprintf(stderr, "akagent: --confirm-timeout: between 1s and 2m\n");
		return 2;
	}
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
