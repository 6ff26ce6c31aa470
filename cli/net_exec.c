/* net_exec.c - akctl hands network commands to akctl-net, the way git hands https to git-remote-https:
 * libcurl and its 37 shared libraries load only in the process that needs the network. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ak_provider.h"
#include "cli.h"

/* The path of akctl-net, or -1 after saying why there is none. */
static int
net_path(const char *cmd, char *out, size_t outlen)
{
#ifdef AK_NO_NET
	(void)out;
	(void)outlen;
	fprintf(stderr, "akctl: %s: this akctl was built without network support (meson -Dnet=disabled)\n", cmd);
	return -1;
#else
	if (cli_helper_path("akctl-net", out, outlen) != 0) {
		fprintf(stderr, "akctl: %s: cannot locate akctl-net\n", cmd);
		return -1;
	}
	return 0;
#endif
}

enum ak_err
cli_net_exec(struct cli *c, int argc, char **argv)
{
	char path[PATH_MAX];

	(void)argc;
	(void)argv;
	if (net_path(c->cmd, path, sizeof(path)) != 0)
		return AK_ERR_NOT_FOUND;
	c->argv0[0] = path;
	execv(path, c->argv0);
	fprintf(stderr, "akctl: %s: cannot run %s: %s\n", c->cmd, path, strerror(errno));
	return AK_ERR_SYSTEM;
}

/* akctl-net test --key-stdin --name N --provider P [--check-*]: the key goes down a pipe to its stdin,
 * never into argv (visible in /proc) or the environment. Only non-secret fields travel as arguments. */
int
cli_net_validate(struct cli *c, const struct ak_profile *p)
{
	static const char *const vars[3][2] = {
		{ AK_CHECK_URL_VAR, "--check-url" },
		{ AK_CHECK_HEADER_VAR, "--check-header" },
		{ AK_CHECK_TEMPLATE_VAR, "--check-template" },
	};
	const struct ak_provider *pv;
	char path[PATH_MAX];
	const char *args[18], *v;
	struct sigaction ign, old;
	int fds[2] = { -1, -1 }, status, rc = 1, n = 0, i;
	pid_t pid;

	if (net_path(c->cmd, path, sizeof(path)) != 0)
		return 1;
	args[n++] = path;
	args[n++] = "test";
	args[n++] = "--key-stdin";
	args[n++] = "--name";
	args[n++] = p->name;
	args[n++] = "--provider";
	args[n++] = p->provider;
	for (i = 0; i < 3; i++) {
		if ((v = ak_profile_plain_value(p, vars[i][0])) != NULL) {
			args[n++] = vars[i][1];
			args[n++] = v;
		}
	}
	/* The profile's own base URL, as `test` would use it (never akctl's environment). */
	if ((pv = ak_provider_find(p->provider)) != NULL && pv->base_url_env != NULL &&
	    (v = ak_profile_plain_value(p, pv->base_url_env)) != NULL && v[0] != '\0') {
		args[n++] = "--base-url";
		args[n++] = v;
	}
	args[n] = NULL;

	if (pipe(fds) != 0) {
		fprintf(stderr, "akctl: %s: pipe: %s\n", c->cmd, strerror(errno));
		return 1;
	}
	/* A child that dies before reading must not kill us with SIGPIPE. */
	memset(&ign, 0, sizeof(ign));
	ign.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &ign, &old);
	fflush(NULL);
	if ((pid = fork()) < 0) {
		fprintf(stderr, "akctl: %s: fork: %s\n", c->cmd, strerror(errno));
		goto out;
	}
	if (pid == 0) {
		if (dup2(fds[0], 0) < 0)
			_exit(127);
		close(fds[0]);
		close(fds[1]);
		execv(path, (char *const *)args);
		fprintf(stderr, "akctl: %s: cannot run %s: %s\n", c->cmd, path, strerror(errno));
		_exit(127);
	}
	close(fds[0]);
	fds[0] = -1;
	/* The key itself: at most AK_VALUE_MAX bytes; the child reads until EOF. */
	(void)cli_write_all(fds[1], p->secret, strlen(p->secret));
	close(fds[1]);
	fds[1] = -1;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			status = 1 << 8;
			break;
		}
	}
	if (WIFEXITED(status))
		rc = WEXITSTATUS(status) == 127 ? 1 : WEXITSTATUS(status);
out:
	if (fds[0] >= 0)
		close(fds[0]);
	if (fds[1] >= 0)
		close(fds[1]);
	sigaction(SIGPIPE, &old, NULL);
	return rc;
}
