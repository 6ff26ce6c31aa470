/* cmd_proxy.c - akctl proxy PROFILE and akctl exec --proxy PROFILE -- CMD.
 *
 * akctl does the agent's part (the profile, from an unlocked agent; never a prompt) and then becomes
 * akctl-proxy, which alone links the HTTP server and libcurl. The key travels on a pipe whose bytes
 * sit in the kernel until akctl-proxy reads them: never argv, never the environment, and never CMD's.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "ak_provider.h"
#include "ak_smem.h"
#include "ak_util.h"
#include "cli.h"

#define PROXY_KEY_MAX 16384 /* far above any provider key; well within a pipe's buffer */

static const char *
var_value(const struct ak_profile *p, const char *name)
{
	size_t i;

	for (i = 0; name != NULL && i < p->nvars; i++)
		if (strcmp(p->vars[i].name, name) == 0)
			return p->vars[i].value;
	return NULL;
}

/* Fetch name, then execv akctl-proxy with the key on a pipe. cmd is NULL for `akctl proxy`. Returns
 * only on failure, with the error (reported). */
static enum ak_err
run_proxy(struct cli *c, const char *name, const char *listen_addr, const char *workers, const char *usage_file,
    char **cmd)
{
	const struct ak_provider *pv;
	struct ak_profile *p = NULL;
	struct ak_client *cl = NULL;
	const char *args[32], *upstream;
	char path[PATH_MAX], fdstr[16];
	int fds[2] = { -1, -1 }, n = 0;
	size_t i, klen;
	enum ak_err rc, r;

	if (ak_name_check(name) != AK_OK)
		return cli_fail(AK_ERR_BAD_NAME, NULL, "%s: '%s'", c->cmd, name);
	if (cli_helper_path("akctl-proxy", path, sizeof(path)) != 0 || access(path, X_OK) != 0) {
		fprintf(stderr, "akctl: %s: cannot find akctl-proxy (built without the proxy?)\n", c->cmd);
		return AK_ERR_NOT_FOUND;
	}
	if ((rc = cli_agent_unlocked(c, &cl)) != AK_OK)
		return rc;
	r = ak_client_get(cl, name, &p);
	if (r != AK_OK) {
		rc = r == AK_ERR_NO_PROFILE ? cli_fail(r, NULL, "%s: %s", c->cmd, name) : cli_fail_client(cl, r, c->cmd);
		ak_client_close(cl);
		return rc;
	}
	ak_client_close(cl);
	rc = AK_ERR_UNSUPPORTED;
	if ((pv = ak_provider_find(p->provider)) == NULL || pv->base_url_env == NULL) {
		fprintf(stderr, "akctl: %s: profile %s: provider %s cannot be proxied (anthropic, "
		    "anthropic-admin and openai can)\n", c->cmd, name, p->provider);
		goto out;
	}
	if ((klen = strlen(p->secret)) > PROXY_KEY_MAX) {
		fprintf(stderr, "akctl: %s: profile %s: the key is too large to proxy\n", c->cmd, name);
		rc = AK_ERR_TOO_LARGE;
		goto out;
	}
	/* The profile's own base URL (a gateway, a regional endpoint), else the provider's. */
	upstream = var_value(p, pv->base_url_env);
	if (upstream == NULL || upstream[0] == '\0')
		upstream = pv->default_base;
	/* CMD gets the profile's plain variables as with exec; its base URL becomes the proxy's. */
	for (i = 0; cmd != NULL && i < p->nvars; i++) {
		if (strcmp(p->vars[i].name, pv->base_url_env) == 0)
			continue;
		if (setenv(p->vars[i].name, p->vars[i].value, 1) != 0) {
			rc = cli_fail(AK_ERR_NOMEM, NULL, "%s: setting the environment", c->cmd);
			goto out;
		}
	}
	if (pipe(fds) != 0 || fcntl(fds[1], F_SETFD, FD_CLOEXEC) != 0) {
		fprintf(stderr, "akctl: %s: pipe: %s\n", c->cmd, strerror(errno));
		rc = AK_ERR_SYSTEM;
		goto out;
	}
	/* The pipe holds the whole key before anyone reads it (klen is far below its capacity). */
	if (cli_write_all(fds[1], p->secret, klen) != AK_OK) {
		fprintf(stderr, "akctl: %s: writing the key to akctl-proxy failed\n", c->cmd);
		rc = AK_ERR_IO;
		goto out;
	}
	close(fds[1]);
	fds[1] = -1;
	snprintf(fdstr, sizeof(fdstr), "%d", fds[0]);
	args[n++] = path;
	args[n++] = "--provider";
	args[n++] = pv->name;
	args[n++] = "--profile";
	args[n++] = name;
	args[n++] = "--upstream";
	args[n++] = upstream;
	args[n++] = "--key-fd";
	args[n++] = fdstr;
	args[n++] = "--secret-var";
	args[n++] = p->secret_var;
	if (listen_addr != NULL) {
		args[n++] = "--listen";
		args[n++] = listen_addr;
	}
	if (workers != NULL) {
		args[n++] = "--workers";
		args[n++] = workers;
	}
	if (usage_file != NULL) {
		args[n++] = "--usage-file";
		args[n++] = usage_file;
	}
	if (cmd != NULL) {
		args[n++] = "--exec";
		args[n++] = "--";
	}
	args[n] = NULL;
	{
		/* argv for execv: ours, then CMD's words; the strings stay valid (argv and p). upstream and
		 * secret_var point into p, so p is freed only if exec fails. */
		size_t ncmd = 0, k;
		char **av;

		while (cmd != NULL && cmd[ncmd] != NULL)
			ncmd++;
		if ((av = calloc((size_t)n + ncmd + 1, sizeof(*av))) == NULL) {
			rc = cli_fail(AK_ERR_NOMEM, NULL, "%s", c->cmd);
			goto out;
		}
		for (k = 0; k < (size_t)n; k++)
			av[k] = (char *)args[k];
		for (k = 0; k < ncmd; k++)
			av[n + k] = cmd[k];
		fflush(NULL);
		/* The key is in the pipe; our copy goes before the exec, which drops the rest. */
		sodium_memzero(p->secret, klen);
		execv(path, av);
		fprintf(stderr, "akctl: %s: cannot run %s: %s\n", c->cmd, path, strerror(errno));
		rc = AK_ERR_SYSTEM;
		free(av);
	}
out:
	if (fds[0] >= 0)
		close(fds[0]);
	if (fds[1] >= 0)
		close(fds[1]);
	ak_profile_free(p);
	return rc;
}

enum ak_err
cmd_proxy(struct cli *c, int argc, char **argv)
{
	const char *listen_addr = NULL, *usage_file = NULL, *workers = NULL, *name;
	int helped;
	enum ak_err r;
	const struct ak_opt opts[] = {
		CLI_VALUE("listen", &listen_addr),
		CLI_VALUE("usage-file", &usage_file),
		CLI_VALUE("workers", &workers),
		CLI_OPT_END,
	};

	if ((r = cli_opts_parse(c, argc, argv, opts, 0, &helped)) != AK_OK || helped)
		return r;
	if ((r = cli_one_profile(c, argc, argv, &name)) != AK_OK)
		return r;
	return run_proxy(c, name, listen_addr, workers, usage_file, NULL);
}

enum ak_err
cli_proxy_exec(struct cli *c, int argc, char **argv)
{
	const char *listen_addr = NULL, *usage_file = NULL, *workers = NULL, *name = NULL;
	char **cmd;
	int helped, i;
	enum ak_err r;
	const struct ak_opt opts[] = {
		CLI_VALUE("proxy", &name),
		CLI_VALUE("listen", &listen_addr),
		CLI_VALUE("usage-file", &usage_file),
		CLI_VALUE("workers", &workers),
		CLI_OPT_END,
	};

	/* Said plainly rather than as an unknown option: the two are exec's, just not together. */
	for (i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strcmp(argv[i], "--env-file") == 0 || strncmp(argv[i], "--env-file=", 11) == 0)
			return cli_usage_error(c, "--env-file cannot be combined with --proxy");
	/* Stop at the first operand; CMD follows "--". */
	if ((r = cli_opts_parse(c, argc, argv, opts, 1, &helped)) != AK_OK || helped)
		return r;
	if (optind < argc && strcmp(argv[optind], "--") == 0)
		optind++;
	if (optind > 1 && strcmp(argv[optind - 1], "--") != 0 && optind < argc)
		return cli_usage_error(c, "with --proxy PROFILE, the command follows '--' (akctl exec --proxy "
		    "PROFILE -- CMD [ARG...])");
	cmd = &argv[optind];
	if (*cmd == NULL)
		return cli_usage_error(c, "missing command (akctl exec --proxy PROFILE -- CMD [ARG...])");
	return run_proxy(c, name, listen_addr, workers, usage_file, cmd);
}
