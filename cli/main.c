/* main.c - akctl-main, the full CLI: the command table, global options before the command.
 *
 * akctl itself is the front (front.c), which serves get, env, use and exec and hands everything else here
 * by execv with the same argv and environment. This program keeps every command, those three
 * included, so a user who runs it directly (or the front, handing over) gets the same behaviour from
 * one source. It still starts cheap (exec runs here, and the front hands over prompts): libc is its only
 * shared library at start (libsodium is linked statically where its archive is installed, cJSON is
 * opened on first use: cjson_lazy.c). The secure arena is started once here, before any command runs:
 * every command holds a key, a secret or an agent connection's buffers in it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ak_smem.h"
#include "cli.h"
#include "scan.h"

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
	const char *options; /* one line per option, for "akctl help NAME" */
};

#define SHELL_OPT "  --shell NAME     sh bash zsh dash ksh fish csh tcsh powershell cmd dotenv json (default: the\n" \
	"                   shell that runs akctl, else $SHELL)\n"
#define PREVIOUS_OPT "  --previous       the keys a rotation replaced, while their grace lasts ('rotate')\n"
#define REVEAL_OPT "  --reveal         print to a terminal anyway (by default a terminal gets a hint, not the secret)\n"

static const struct cli_cmd cmds[] = {
	{ "init", cmd_init, "[--kdf insecure-test|interactive|moderate|sensitive]",
	    "create a new, empty keystore",
	    "  --kdf PRESET     Argon2id cost: interactive, moderate (default), sensitive; insecure-test\n"
	    "                   only for tests\n" },
	{ "unlock", cmd_unlock, "[-t DURATION]", "unlock the agent (asks the passphrase)",
	    "  -t, --lifetime DURATION  lock again after DURATION (90s, 30m, 8h, 0 = no limit); on an\n"
	    "                   unlocked agent a shorter one needs no passphrase, a longer one does\n" },
	{ "lock", cmd_lock, "", "lock the agent, wiping every secret it holds", "" },
	{ "status", cmd_status, "[--json]", "show the agent's and the keystore's state",
	    "  --json           one JSON object (schema in akctl(1))\n" },
	{ "passwd", cmd_passwd, "[--kdf insecure-test|interactive|moderate|sensitive]",
	    "change the keystore passphrase",
	    "  --kdf PRESET     Argon2id cost of the new passphrase (default: keep the current one)\n" },
	{ "add", cmd_add,
	    "PROFILE [--force] [--provider NAME] [--var NAME] [--set NAME=VALUE]... [--secret NAME]...\n"
	    "             [--description TEXT] [--validate|--no-validate]",
	    "add a profile (secret read from the terminal or stdin)",
	    "  --force          replace an existing profile\n"
	    "  --provider NAME  anthropic (default), openai, ... (sets the variable and the check)\n"
	    "  --var NAME       the secret's variable (default: the provider's, e.g. ANTHROPIC_API_KEY)\n"
	    "  --set NAME=VALUE a plain variable exported with the secret (repeatable; refused if VALUE\n"
	    "                   looks like a key)\n"
	    "  --secret NAME    a further secret variable, read after the main secret (repeatable; from a\n"
	    "                   pipe: one line per secret, the main secret first)\n"
	    "  --description TEXT  a note shown by list and show\n"
	    "  --validate       check the key with the provider before storing (default at a terminal)\n"
	    "  --no-validate    store without the live check\n" },
	{ "rm", cmd_rm, "PROFILE", "remove a profile", "" },
	{ "set", cmd_set, "PROFILE [--set NAME=VALUE]... [--unset NAME]... [--secret NAME]...\n"
	    "             [--description TEXT] [--provider NAME] [--rotate-every DURATION]\n"
	    "             [--confirm | --no-confirm] [--lifetime DURATION|none]",
	    "change a profile's variables and attributes, keeping the rest (and the key)",
	    "  --set NAME=VALUE a plain variable, added or replaced (refused if VALUE looks like a key)\n"
	    "  --unset NAME     remove a variable (not the main secret's)\n"
	    "  --secret NAME    a secret variable, its value read like add's secret (repeatable; from a\n"
	    "                   pipe: one line per --secret, in the order given)\n"
	    "  --description TEXT  replace the note\n"
	    "  --provider NAME  replace the provider\n"
	    "  --rotate-every DURATION  rotation policy for the key (90d, 12w...; 0 none): list and\n"
	    "                   status mark it due, then overdue; doctor fails it overdue\n"
	    "  --confirm        the agent asks (AKAGENT_ASKPASS) before handing out a secret\n"
	    "  --no-confirm     it does not ask\n"
	    "  --lifetime DURATION  the agent wipes the profile's secrets this long after unlock (1h,\n"
	    "                   30m...; none: kept as long as the agent stays unlocked)\n" },
	{ "rotate", cmd_rotate, "PROFILE [--var VAR] [--grace DURATION] [--validate | --no-validate]\n"
	    "             [--deactivate] [--create [--project ID]] [--admin PROFILE]\n"
	    "             | PROFILE [--var VAR] --rollback | --finish [--deactivate] [--admin PROFILE]",
	    "replace a key, keeping the old one as previous for a grace period",
	    "  --var VAR        rotate a secret variable instead of the main secret\n"
	    "  --grace DURATION how long the previous key stays (default 24h; then the agent wipes it)\n"
	    "  --validate       check the new key with the provider first (default at a terminal)\n"
	    "  --no-validate    rotate without the live check\n"
	    "  --rollback       swap back: the previous key is current again\n"
	    "  --finish         wipe the previous key now\n"
	    "  --deactivate     with a rotation: deactivate the old key at Anthropic when the rotation\n"
	    "                   finishes; with --finish: now (an admin key profile is needed)\n"
	    "  --admin PROFILE  the admin key's profile (default: the only anthropic-admin, or for\n"
	    "                   --create openai-admin, one)\n"
	    "  --create         OpenAI: the new key is a new project service account's, made by the\n"
	    "                   admin API (nothing is read)\n"
	    "  --project ID     with --create: the project (default: the profile's OPENAI_PROJECT_ID)\n" },
	{ "rename", cmd_rename, "OLD NEW", "rename a profile (keeps everything, times included)", "" },
	{ "cp", cmd_cp, "SRC DST", "copy a profile under a new name", "" },
	{ "list", cmd_list, "[--json | --names]", "list profiles (secrets redacted; --names: names only)",
	    "  --json           one JSON array (schema in akctl(1))\n"
	    "  --names          profile names only, one a line (for completion)\n" },
	{ "log", cmd_log, "[--profile PROFILE] [--since DURATION] [--follow] [--json] [--audit PATH]",
	    "what the agent handed out and wrote since unlock: when, which profile, to which program",
	    "  --profile PROFILE  only this profile's entries\n"
	    "  --since DURATION entries of the last DURATION (90s, 30m, 1h, 7d)\n"
	    "  --follow         keep printing new entries (polls every second)\n"
	    "  --json           one JSON object per entry, one a line (schema in akctl(1))\n"
	    "  --audit PATH     read the agent's audit log file (see akagent(1)) instead, its hashed\n"
	    "                   names mapped back by the unlocked agent (\"#HASH\": a profile it no\n"
	    "                   longer has)\n" },
	{ "show", cmd_show, "PROFILE [--json]", "show a profile's details (secret redacted)",
	    "  --json           one JSON object (schema in akctl(1))\n" },
	{ "get", cmd_get, "PROFILE [VAR] [--reveal] [--previous]", "print a profile's secret (or one variable's value)",
	    REVEAL_OPT PREVIOUS_OPT },
	{ "env", cmd_env, "PROFILE [--shell NAME] [--reveal] [--previous]", "print export lines for a profile",
	    SHELL_OPT REVEAL_OPT PREVIOUS_OPT },
	{ "use", cmd_use, "PROFILE|--clear [--shell NAME] [--reveal] [--previous]",
	    "print lines switching the current shell to a profile",
	    "  --clear          undo the last use: unset what it set, restore what it replaced\n"
	    SHELL_OPT REVEAL_OPT PREVIOUS_OPT },
	{ "shell", cli_shell_exec, "", "interactive console (also 'akctl' alone on a terminal)", "" },
	{ "hook", cmd_hook, "bash|zsh|fish", "print rc-file code: the ak function, completion, a prompt helper",
	    "" },
	{ "dir-env", cmd_direnv, "[--shell NAME]",
	    "for the shell hook: switch to an allowed .akprofile's profile here, restore on leaving",
	    "  --shell NAME     sh bash zsh dash ksh fish csh tcsh powershell cmd (default: the shell that\n"
	    "                   runs akctl, else $SHELL)\n" },
	{ "exec", cmd_exec, "[--env-file FILE]... [--keep VAR]... [--clean] [--redact] [--previous] [PROFILE] -- CMD [ARG...]",
	    "run a command with a profile's variables",
	    "  --env-file FILE  variables from a .env file (python-dotenv syntax; ak://PROFILE/VAR resolved)\n"
	    "  --keep VAR       pass VAR through even if a stored profile or 'use' defines it (repeatable)\n"
	    "  --clean          start from an empty environment plus PATH HOME USER LOGNAME SHELL TERM LANG\n"
	    "                   LC_* TZ TMPDIR\n"
	    "  --redact         filter the command's output: stored keys become [ak:PROFILE]\n"
	    "  --proxy PROFILE  run the command behind akctl-proxy: it never holds the key (see 'proxy')\n"
	    PREVIOUS_OPT },
	{ "proxy", cmd_proxy, "PROFILE [--listen ADDR] [--workers N] [--usage-file FILE]   (and: exec --proxy PROFILE -- CMD)",
	    "serve a profile's key through a local proxy; clients get a placeholder",
	    "  --listen ADDR    [127.x.y.z:]PORT or unix:PATH (default: an ephemeral port on 127.0.0.1)\n"
	    "  --workers N      event loops, each on its own thread (1-16; default: one per two CPUs)\n"
	    "  --usage-file FILE  append one JSON line of token counts at the end\n" },
	{ "allow", cmd_allow, "FILE | --list [--json]", "let an env file's ak:// references be resolved (as it is now)",
	    "  --list           the allowed files and whether each changed since\n"
	    "  --json           with --list: one JSON array (schema in akctl(1))\n" },
	{ "deny", cmd_deny, "FILE", "take an env file off the allow list", "" },
	{ "scan", cmd_scan, "[PATH...] [--git] [--history] [--agents] [--all] [--json] [--no-patterns]\n"
	    "             [--staged] | --install-hook [--force] [REPO]",
	    "find stored keys (every encoding) in files, git objects, histories, AI transcripts",
	    "  --git            every object of the repository, reachable or not\n"
	    "  --history        shell and REPL histories in HOME\n"
	    "  --agents         AI coding tools' transcripts (Claude Code, Codex, Copilot)\n"
	    "  --all            all of the above\n"
	    "  --json           one JSON object per finding\n"
	    "  --no-patterns    only stored keys, not unknown key-shaped strings\n"
	    "  --staged         the blobs the next commit would add\n"
	    "  --install-hook   a git pre-commit hook refusing commits that carry a stored key\n" },
	{ "doctor", cmd_doctor, "[--json]", "check the security checklist (modes, agent hardening, KDF, leaks)",
	    "  --json           one JSON object: ok and the checks (schema in akctl(1))\n" },
	{ "exposure", cmd_exposure, "[--json] [--no-history] [--no-agents]",
	    "find stored keys live in processes' environments, tmux, systemd, histories, transcripts",
	    "  --json           one JSON object per finding\n"
	    "  --no-history     skip shell and REPL histories\n"
	    "  --no-agents      skip AI coding tools' transcripts\n" },
	{ "redact", cmd_redact, "", "copy stdin to stdout with every stored key replaced by [ak:PROFILE]", "" },
	/* Network commands live in akctl-net (it links libcurl); akctl runs it for them, so the process that
	 * serves env/get/use/exec never pays for libcurl's start-up. */
	{ "test", CLI_NET_CMD(cmd_test), "PROFILE...|--all [--timeout DURATION] [--base-url URL] [--json]",
	    "check keys against their provider's API",
	    "  --all            every profile\n"
	    "  --timeout DURATION  per request (default 15s)\n"
	    "  --base-url URL   send the check to URL instead of the provider's API\n"
	    "  --json           one JSON object instead of the lines (schema in akctl(1))\n" },
	{ "import", CLI_NET_CMD(cmd_import), "SOURCE [PROFILE] [--dry-run [--json]] [--replace] [--force] [--provider P]\n"
	    "             [--var NAME] [--allow-var NAME]... [--json-path A.B] [--region R] [--timeout DURATION]",
	    "import keys from a .env or JSON file, the environment, or a cloud secret manager",
	    "  --dry-run        show what would be stored, store nothing\n"
	    "  --json           with --dry-run: one JSON object, secrets redacted (schema in akctl(1))\n"
	    "  --replace        rewrite the .env file's secret as an ak://PROFILE/VAR reference\n"
	    "  --force          replace an existing profile entirely\n"
	    "  --provider P     the provider of the imported key\n"
	    "  --var NAME       the variable to import (from a file with several)\n"
	    "  --allow-var NAME import NAME although it steers a shell, a loader or where keys go\n"
	    "  --json-path A.B  the object inside a .json file to import (a digit segment indexes an array)\n"
	    "  --region R       the cloud region (AWS)\n"
	    "  --timeout DURATION  per cloud request\n" },
	{ "pull", CLI_NET_CMD(cmd_pull), "PROFILE...|--all [--region REGION] [--timeout DURATION]",
	    "re-fetch profiles imported from a cloud source",
	    "  --all            every profile imported from a cloud source\n"
	    "  --region REGION  the cloud region (AWS)\n"
	    "  --timeout DURATION  per cloud request\n" },
	{ "usage", CLI_NET_CMD(cmd_usage), "PROFILE [--since DURATION] [--json] [--admin PROFILE] [--project ID]",
	    "tokens the provider counted for the profile's key per day, beside the agent's handouts",
	    "  --since DURATION days to show (default 7d, at most 93d)\n"
	    "  --json           one JSON object (schema in akctl(1))\n"
	    "  --admin PROFILE  the admin key's profile (default: the only anthropic-admin or\n"
	    "                   openai-admin one)\n"
	    "  --project ID     OpenAI: the key's project (default: the profile's OPENAI_PROJECT_ID)\n" },
	{ "help", cmd_help, "[COMMAND]", "show the commands, or one command's options", "" },
};

#define NCMDS (sizeof(cmds) / sizeof(cmds[0]))

#define GLOBAL_OPTS \
	"global options (before or after the command):\n" \
	"  -f KEYSTORE        the keystore file (default: $AKCTL_KEYSTORE, else ~/.local/share/akagent/keystore)\n" \
	"  --passphrase-fd N  read passphrases from file descriptor N, one line each\n" \
	"  --no-prompt        never ask: a locked agent is exit 4\n"

static void
usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: akctl [-f KEYSTORE] [--passphrase-fd N] [--no-prompt] COMMAND [ARGS]\n"
	    "       akctl --version | --help | help [COMMAND] | COMMAND --help\n\ncommands:\n");
	for (i = 0; i < NCMDS; i++)
		fprintf(f, "  %-8s %s\n", cmds[i].name, cmds[i].summary);
	fprintf(f, "\n" GLOBAL_OPTS "\nexit codes: 0 ok, 1 failure, 2 usage, 3 no agent, 4 locked, 5 no such profile,\n"
	    "            6 wrong passphrase or authentication failure, 7 the agent found is not yours\n"
	    "\nSee 'man akctl' for more.\n");
}

static const char *
closest_cmd(const char *name)
{
	const char *names[NCMDS];
	size_t i;

	for (i = 0; i < NCMDS; i++)
		names[i] = cmds[i].name;
	return cli_closest(name, names, NCMDS);
}

enum ak_err
cli_cmd_help(const char *name)
{
	size_t i;

	for (i = 0; i < NCMDS; i++) {
		if (strcmp(cmds[i].name, name) == 0) {
			printf("usage: akctl %s%s%s\n  %s\n", name, cmds[i].usage[0] ? " " : "",
			    cmds[i].usage, cmds[i].summary);
			printf("\noptions:\n%s  -h, --help       this help\n\n" GLOBAL_OPTS
			    "\nSee 'man akctl' for more.\n", cmds[i].options);
			break;
		}
	}
	return AK_OK;
}

enum ak_err
cmd_help(struct cli *c, int argc, char **argv)
{
	const char *near;
	size_t i;

	(void)c;
	if (argc < 2) {
		usage(stdout);
		return AK_OK;
	}
	if (argc > 2) {
		fprintf(stderr, "akctl: help: unexpected argument '%s'\n", argv[2]);
		return AK_ERR_INVALID;
	}
	for (i = 0; i < NCMDS; i++)
		if (strcmp(cmds[i].name, argv[1]) == 0)
			return cli_cmd_help(argv[1]);
	near = closest_cmd(argv[1]);
	fprintf(stderr, "akctl: help: unknown command '%s'%s%s%s\n", argv[1], near ? " (did you mean '" : "",
	    near ? near : "", near ? "'?)" : "");
	return AK_ERR_INVALID;
}

/* Global options, the command's name and its own arguments (in *cargvp, the caller frees it), then the
 * command itself, with the secure arena started for it. */
static enum ak_err
run(struct cli *c, int argc, char **argv, char ***cargvp)
{
	const char *name, *near;
	size_t i;
	int a, k;
	enum ak_err r;

	/* Global options before the command. */
	for (a = 1; a < argc; a++) {
		if ((k = cli_global_opt(c, argc, argv, &a)) < 0)
			return AK_ERR_INVALID;
		if (k == 1)
			continue;
		if (strcmp(argv[a], "-h") == 0 || strcmp(argv[a], "--help") == 0) {
			usage(stdout);
			return AK_OK;
		}
		if (strcmp(argv[a], "--version") == 0 || strcmp(argv[a], "-V") == 0) {
			printf("akctl %s\n", AK_VERSION);
			return AK_OK;
		}
		if (argv[a][0] == '-' && argv[a][1] != '\0') {
			fprintf(stderr, "akctl: unknown option '%s' (see 'akctl --help')\n", argv[a]);
			return AK_ERR_INVALID;
		}
		break;
	}
	if (a >= argc && isatty(0) && isatty(1)) {
		/* akctl alone on a terminal: the console (akctl-shell replaces this process). */
		c->cmd = "shell";
		return cli_shell_exec(c, 1, (char *[]){ (char *)"shell", NULL });
	}
	if (a >= argc) {
		fprintf(stderr, "akctl: missing command (see 'akctl --help')\n");
		return AK_ERR_INVALID;
	}
	name = argv[a];
	for (i = 0; i < NCMDS; i++)
		if (strcmp(cmds[i].name, name) == 0)
			break;
	if (i == NCMDS) {
		near = closest_cmd(name);
		fprintf(stderr, "akctl: unknown command '%s'%s%s%s (see 'akctl --help')\n", name,
		    near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "");
		return AK_ERR_INVALID;
	}
	c->cmd = cmds[i].name;
	if ((r = cli_cmd_args(c, argc, argv, a, cargvp, &argc)) != AK_OK)
		return r;
	argv = *cargvp;
	if (ak_smem_init() != 0)
		return cli_fail(AK_ERR_NOMEM, NULL, "akctl");
	/* Before any JSON: every buffer cJSON holds is then wiped on free. */
	ak_smem_hook_cjson();
	optind = 0; /* glibc: 0 re-initialises getopt for the command's own options */
	return cmds[i].fn(c, argc, argv);
}

int
main(int argc, char **argv)
{
	return cli_entry(argc, argv, run);
}
