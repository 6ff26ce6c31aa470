/* net_exec.c - akctl hands network commands to akctl-net, the way git hands https to git-remote-https:
 * libcurl and its 37 shared libraries load only in the process that needs the network. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#ifndef AK_LIBEXECDIR
#define AK_LIBEXECDIR "/usr/local/libexec/akagent"
#endif

/* akctl-net beside our own executable (the build tree, or a bin dir install), else the libexec dir. */
static int
net_path(char *out, size_t outlen)
{
	char self[PATH_MAX];
	ssize_t n;
	char *slash;

	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash != NULL) {
			*slash = '\0';
			if ((size_t)snprintf(out, outlen, "%s/akctl-net", self) < outlen &&
			    access(out, X_OK) == 0)
				return 0;
		}
	}
	if ((size_t)snprintf(out, outlen, "%s/akctl-net", AK_LIBEXECDIR) >= outlen)
		return -1;
	return 0;
}

int
cli_net_exec(struct cli *c, int argc, char **argv)
{
	char path[PATH_MAX];

	(void)argc;
	(void)argv;
	if (net_path(path, sizeof(path)) != 0) {
		fprintf(stderr, "akctl: %s: cannot locate akctl-net\n", c->cmd);
		return 1;
	}
	c->argv0[0] = path;
	execv(path, c->argv0);
	fprintf(stderr, "akctl: %s: cannot run %s: %s\n", c->cmd, path, strerror(errno));
	return 1;
}
