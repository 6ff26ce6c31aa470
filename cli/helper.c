/* helper.c - akctl's helper programs, found beside akctl (the build tree, a bin-dir install) or in
 * LIBEXECDIR/akagent: akctl-main (the full CLI the front hands over to, front.c), akctl-net (libcurl,
 * net_exec.c), akctl-proxy (libmicrohttpd) and akctl-shell (readline). Each library loads only in the
 * process that needs it, so get/env/use/exec start with no shared library at all (the static front). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#ifndef AK_LIBEXECDIR
#define AK_LIBEXECDIR "/usr/local/libexec/akagent"
#endif
#ifndef AK_BINDIR
#define AK_BINDIR "/usr/local/bin"
#endif

static int
self_dir(char *out, size_t outlen)
{
	ssize_t n;
	char *slash;

	n = readlink("/proc/self/exe", out, outlen - 1);
	if (n <= 0)
		return -1;
	out[n] = '\0';
	if ((slash = strrchr(out, '/')) == NULL)
		return -1;
	*slash = '\0';
	return 0;
}

int
cli_helper_path(const char *name, char *out, size_t outlen)
{
	char self[PATH_MAX];

	if (self_dir(self, sizeof(self)) == 0 &&
	    (size_t)snprintf(out, outlen, "%s/%s", self, name) < outlen && access(out, X_OK) == 0)
		return 0;
	if ((size_t)snprintf(out, outlen, "%s/%s", AK_LIBEXECDIR, name) >= outlen)
		return -1;
	return 0;
}

int
cli_front_path(char *out, size_t outlen)
{
	char self[PATH_MAX], dir[PATH_MAX];
	const char *base;
	ssize_t n;

	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return -1;
	self[n] = '\0';
	base = strrchr(self, '/') != NULL ? strrchr(self, '/') + 1 : self;
	/* akctl-main is where the front hands over to: an installed hook or script names the front, which
	 * serves it the same and is the program on the user's PATH. */
	if (strcmp(base, "akctl-main") == 0 && self_dir(dir, sizeof(dir)) == 0) {
		if ((size_t)snprintf(out, outlen, "%s/akctl", dir) < outlen && access(out, X_OK) == 0)
			return 0;
		if (strcmp(dir, AK_LIBEXECDIR) == 0 &&
		    (size_t)snprintf(out, outlen, "%s/akctl", AK_BINDIR) < outlen && access(out, X_OK) == 0)
			return 0;
	}
	if ((size_t)snprintf(out, outlen, "%s", self) >= outlen)
		return -1;
	return 0;
}

enum ak_err
cli_shell_exec(struct cli *c, int argc, char **argv)
{
	char path[PATH_MAX], self[PATH_MAX];
	const char *args[8];
	ssize_t n;
	int k = 0;

	if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0))
		return cli_cmd_help(c->cmd);
	if (argc > 1)
		return cli_usage_error(c, "unexpected argument '%s'", argv[1]);
	if (cli_helper_path("akctl-shell", path, sizeof(path)) != 0 ||
	    (n = readlink("/proc/self/exe", self, sizeof(self) - 1)) <= 0) {
		fprintf(stderr, "akctl: shell: cannot locate akctl-shell\n");
		return AK_ERR_NOT_FOUND;
	}
	self[n] = '\0';
	args[k++] = path;
	args[k++] = "--akctl";
	args[k++] = self;
	if (c->store_opt != NULL) {
		args[k++] = "-f";
		args[k++] = c->store_opt;
	}
	args[k] = NULL;
	execv(path, (char *const *)args);
	fprintf(stderr, "akctl: shell: cannot run %s: %s\n", path, strerror(errno));
	return AK_ERR_SYSTEM;
}
