/* front.c - akctl, the front: get, env, use and exec for the cost of a process start.
 *
 * These are run by scripts, prompts and shell hooks many times a day, and their whole cost is a
 * process start. A dynamically linked program pays the loader (mapping, relocating and binding libc)
 * on every start; this one is linked static-pie (libc.a, libsodium.a) with unused code collected, so it
 * starts with one mapping and no symbol lookups, and then does one round trip to the agent.
 *
 * It runs the full CLI's own code for these commands (entry.c, cmd_env.c, cmd_exec.c, agent.c, opts.c,
 * output.c and the library): the same options, messages and exit codes from one source. What it does not do
 * itself, it hands over to the full CLI, akctl-main (found like akctl-net: beside this program, else
 * LIBEXECDIR/akagent), by execv with the same argv and environment:
 *   - every other command, -h/--help, --version, an unknown option, no command;
 *   - a command's -h (the help text lives with the full CLI's command table: cli_cmd_help below);
 *   - a locked agent with someone to ask (the passphrase prompt: cli_unlock_pass below);
 *   - exec --proxy and exec --redact, decided from argv first thing (they run akctl-proxy or the
 *     redaction filter, which need the scanner and more: cli_proxy_exec, cli_exec_redact below);
 *   - a home directory from the passwd database (HOME unset): no NSS in a static program
 *     (__wrap_getpwuid below; the link wraps getpwuid);
 *   - LD_PRELOAD set: a preloaded library does nothing in a static program; its user gets the
 *     dynamic one.
 * Each of these happens before any request with an effect is sent. A GET is logged by the agent as a
 * use and may start a confirm-on-use dialog, so once GET is sent this program finishes the job itself;
 * the one exception is a GET answered LOCKED, which changed nothing: the full CLI then asks for the
 * passphrase and sends it again, as it does itself.
 *
 * exec is served too: handing it over would cost it a second program start on top of the one it
 * saves, and its env files, ak:// references and allow list are library code that adds pages only
 * to exec's own path.
 *
 * Secrets: as in the full CLI, the profile arrives in the secure arena (locked, not dumped, wiped on
 * free and once more at exit by cli_entry), the output is built in a secure buffer and leaves in one
 * write(2); the process is not dumpable (cli_entry's hardening).
 */
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "ak_smem.h"
#include "cli.h"
#include "scan.h"

/* main()'s argv, as given: what the full CLI is started with. */
static char **front_argv;

/* Replace this process with the full CLI, same argv and environment. Returns only if that failed, with
 * the error reported. Nothing was printed and no request with an effect was sent before. */
static enum ak_err
handover(void)
{
	char path[PATH_MAX];

	if (cli_helper_path("akctl-main", path, sizeof(path)) != 0) {
		fprintf(stderr, "akctl: cannot locate akctl-main\n");
		return AK_ERR_NOT_FOUND;
	}
	execv(path, front_argv);
	fprintf(stderr, "akctl: cannot run %s: %s\n", path, strerror(errno));
	return AK_ERR_SYSTEM;
}

/* A hand-over from inside a command, where no error path leads back to main: the full CLI or exit. */
static _Noreturn void
handover_now(void)
{
	enum ak_err r = handover();

	ak_smem_wipe_all();
	_exit(ak_err_exit_code(r));
}

/* The full CLI's help for a command (its table is not linked here). */
enum ak_err
cli_cmd_help(const char *name)
{
	(void)name;
	handover_now();
}

/* A locked agent and someone to ask: the prompt, the KDF and UNLOCK are the full CLI's. Reached after
 * STATUS or a GET answered LOCKED, neither of which changed anything; unless an earlier GET of this
 * command was answered (exec's references, after the agent was locked in between): the full CLI would
 * send that GET again, so this says what it says when nobody can be asked. */
enum ak_err
cli_unlock_pass(struct cli *c, struct ak_client *cl, uint32_t lifetime, int quiet_no_pass)
{
	(void)lifetime;
	(void)quiet_no_pass;
	if (c->sent_get)
		return cli_fail_client(NULL, AK_ERR_LOCKED, c->cmd);
	ak_client_close(cl);
	handover_now();
}

/* exec --proxy: akctl-proxy is run by the full CLI, before anything was asked of the agent. */
enum ak_err
cli_proxy_exec(struct cli *c, int argc, char **argv)
{
	(void)c;
	(void)argc;
	(void)argv;
	handover_now();
}

/* exec --redact: the redaction filter (the scanner) is the full CLI's, before anything was asked. */
enum ak_err
cli_exec_redact(struct cli *c, int argc, char **argv)
{
	(void)c;
	(void)argc;
	(void)argv;
	handover_now();
}

/* The link wraps getpwuid (-Wl,--wrap=getpwuid): a path that needs the passwd database (no HOME) goes to
 * the full CLI, which has NSS. This program calls no other NSS function. */
struct passwd *__wrap_getpwuid(uid_t uid);

struct passwd *
__wrap_getpwuid(uid_t uid)
{
	(void)uid;
	handover_now();
}

#ifdef AK_FRONT_SODIUM_ALLOC_ONLY
/* The link wraps sodium_init (static builds, -Wl,--wrap=sodium_init). sodium_init detects the CPU's
 * features (a dozen CPUID instructions, each a trap to the hypervisor on a virtual machine) to pick the
 * fastest hash, stream and scalar-multiplication code; the front calls none of them, only sodium_malloc
 * (which needs the page size and the guard canary: _sodium_alloc_init), sodium_memzero, sodium_memcmp
 * and the base64 codecs, which need nothing. Anything else would still be correct, with libsodium's
 * portable defaults. */
int __wrap_sodium_init(void);

int
__wrap_sodium_init(void)
{
	return _sodium_alloc_init();
}
#endif

static const struct {
	const char *name;
	cli_cmd_fn fn;
} served[] = {
	{ "get", cmd_get },
	{ "env", cmd_env },
	{ "use", cmd_use },
	{ "exec", cmd_exec },
};

/* main.c's run for the commands served here; everything else is handed over before anything is done. */
static enum ak_err
run(struct cli *c, int argc, char **argv, char ***cargvp)
{
	const char *preload = getenv("LD_PRELOAD");
	size_t i;
	int a, k;
	enum ak_err r;

	if (preload != NULL && preload[0] != '\0')
		return handover();
	/* Global options before the command; anything else that starts with '-' is the full CLI's. */
	for (a = 1; a < argc; a++) {
		if ((k = cli_global_opt(c, argc, argv, &a)) < 0)
			return AK_ERR_INVALID;
		if (k == 0)
			break;
	}
	for (i = 0; a < argc && i < sizeof(served) / sizeof(served[0]); i++)
		if (strcmp(served[i].name, argv[a]) == 0)
			break;
	if (a >= argc || i == sizeof(served) / sizeof(served[0]))
		return handover();
	c->cmd = served[i].name;
	if ((r = cli_cmd_args(c, argc, argv, a, cargvp, &argc)) != AK_OK)
		return r;
	argv = *cargvp;
	if (ak_smem_init() != 0)
		return cli_fail(AK_ERR_NOMEM, NULL, "akctl");
	optind = 0; /* glibc: 0 re-initialises getopt for the command's own options */
	return served[i].fn(c, argc, argv);
}

int
main(int argc, char **argv)
{
	front_argv = argv;
	return cli_entry(argc, argv, run);
}
