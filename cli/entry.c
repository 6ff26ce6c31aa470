/* entry.c - what every akctl program does around its command, shared by the front (front.c: get, env,
 * use, exec) and the full CLI (main.c): process hardening, the global options and the command's own argv,
 * the keystore path, --previous, and the one place an error becomes the exit status. One source, so
 * the front and the full CLI read the same arguments the same way.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "ak_log.h"
#include "ak_smem.h"
#include "cli.h"

/* Cheap hardening first: no core file, not dumpable (also blocks same-uid ptrace attach). */
static void
harden(void)
{
	struct rlimit rl = { 0, 0 };

	(void)setrlimit(RLIMIT_CORE, &rl);
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

int
cli_global_opt(struct cli *c, int argc, char **argv, int *a)
{
	const char *arg = argv[*a], *val;
	char *end;
	long v;

	if (strcmp(arg, "--no-prompt") == 0) {
		c->no_prompt = 1;
		return 1;
	}
	if (strncmp(arg, "--passphrase-fd=", 16) == 0 || strcmp(arg, "--passphrase-fd") == 0) {
		if (arg[15] == '=') {
			val = arg + 16;
		} else if (*a + 1 >= argc) {
			fprintf(stderr, "akctl: --passphrase-fd: missing argument\n");
			return -2;
		} else {
			val = argv[++*a];
		}
		errno = 0;
		v = strtol(val, &end, 10);
		if (end == val || *end != '\0' || v < 0 || v > 1048576) {
			fprintf(stderr, "akctl: --passphrase-fd: not a file descriptor: '%s'\n", val);
			return -2;
		}
		c->pass_fd = (int)v;
		return 1;
	}
	if (strcmp(arg, "-f") == 0 || (strncmp(arg, "-f", 2) == 0 && arg[2] != '\0')) {
		if (arg[2] != '\0') {
			val = arg + 2;
		} else if (*a + 1 >= argc) {
			fprintf(stderr, "akctl: -f: missing argument\n");
			return -2;
		} else {
			val = argv[++*a];
		}
		if (val[0] == '\0') {
			fprintf(stderr, "akctl: -f: empty keystore path\n");
			return -2;
		}
		c->store_opt = val;
		return 1;
	}
	return 0;
}

enum ak_err
cli_cmd_args(struct cli *c, int argc, char **argv, int a, char ***cargvp, int *cargc)
{
	char **cargv;
	int w, k, npos = 0, prev_takes = 0;

	/* A copy: argv itself stays whole for handing the command to another program. */
	if ((cargv = calloc((size_t)(argc - a + 1), sizeof(*cargv))) == NULL)
		return cli_fail(AK_ERR_NOMEM, NULL, "akctl");
	*cargvp = cargv;
	memcpy(cargv, argv + a, (size_t)(argc - a) * sizeof(*cargv));
	argc -= a;
	argv = cargv;
	/* Global options after the command too ("akctl unlock --passphrase-fd 3"): take them out of the
	 * command's argv, stopping at "--" and, for exec, at the command it runs (its second operand), whose
	 * arguments are its own. */
	for (a = 1, w = 1; a < argc; a++) {
		if (strcmp(argv[a], "--") == 0 ||
		    (strcmp(c->cmd, "exec") == 0 && argv[a][0] != '-' && !prev_takes && ++npos == 2))
			break;
		prev_takes = strcmp(argv[a], "--env-file") == 0 || strcmp(argv[a], "--keep") == 0;
		if ((k = cli_global_opt(c, argc, argv, &a)) < 0)
			return AK_ERR_INVALID;
		if (k == 0)
			argv[w++] = argv[a];
	}
	while (a < argc)
		argv[w++] = argv[a++];
	argv[w] = NULL;
	*cargc = w;
	return AK_OK;
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

void
cli_take_previous(struct cli *c, int *argc, char **argv, int exec)
{
	int i, j;

	/* Only options of akctl's own: up to "--" (and for exec up to the first operand, where the
	 * command's own arguments may follow). */
	for (i = 1; i < *argc; i++) {
		if (strcmp(argv[i], "--") == 0 || (exec && argv[i][0] != '-'))
			break;
		if (exec && (strcmp(argv[i], "--env-file") == 0 || strcmp(argv[i], "--keep") == 0 ||
		    strcmp(argv[i], "--proxy") == 0)) {
			i++; /* the option's argument */
			continue;
		}
		if (strcmp(argv[i], "--previous") != 0)
			continue;
		c->previous = 1;
		for (j = i; j + 1 < *argc; j++)
			argv[j] = argv[j + 1];
		argv[--*argc] = NULL;
		i--;
	}
}

int
cli_proxy_wanted(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strcmp(argv[i], "--proxy") == 0 || strncmp(argv[i], "--proxy=", 8) == 0)
			return 1;
	return 0;
}

enum ak_err
cli_status(struct cli *c, int status)
{
	c->status = status;
	return AK_OK;
}

int
cli_entry(int argc, char **argv, cli_run_fn run)
{
	struct cli c;
	char **cargv = NULL;
	enum ak_err r;
	int rc;

	harden();
	/* Library warnings (e.g. a write that succeeded but could not sync its directory) say "akctl: ". */
	ak_log_init("akctl", AK_LOG_WARN);
	memset(&c, 0, sizeof(c));
	c.argc0 = argc;
	c.argv0 = argv;
	c.pass_fd = -1;
	c.cmd = "akctl";
	r = run(&c, argc, argv, &cargv);
	/* The one place an error becomes the exit status; a verdict (cli_status) stands as it is. */
	rc = r != AK_OK ? ak_err_exit_code(r) : c.status;
	/* Flush before wiping: stdout may still hold non-secret output. Secrets never go through stdio. */
	if (fflush(stdout) != 0 && rc == 0) {
		fprintf(stderr, "akctl: write error on standard output\n");
		rc = ak_err_exit_code(AK_ERR_IO);
	}
	/* Every block was wiped when freed; this also wipes anything a bug leaked. Wiped, not unmapped:
	 * the process ends here, and unlocking and unmapping would cost more than the wiping. */
	ak_smem_wipe_all();
	free(cargv);
	return rc;
}
