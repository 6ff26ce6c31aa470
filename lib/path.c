/* path.c - where things live, and checks that they are ours. */
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ak_path.h"

/* snprintf into out; AK_ERR_TOO_LARGE when it does not fit. */
static enum ak_err
fmt(char *out, size_t outlen, const char *f, ...) __attribute__((format(printf, 3, 4)));

static enum ak_err
fmt(char *out, size_t outlen, const char *f, ...)
{
	va_list ap;
	int n;

	if (outlen == 0)
		return AK_ERR_TOO_LARGE;
	va_start(ap, f);
	n = vsnprintf(out, outlen, f, ap);
	va_end(ap);
	if (n < 0)
		return AK_ERR_INTERNAL;
	if ((size_t)n >= outlen) {
		out[0] = '\0';
		return AK_ERR_TOO_LARGE;
	}
	return AK_OK;
}

static const char *
env_nonempty(const char *name)
{
	const char *v = getenv(name);

	return v != NULL && v[0] != '\0' ? v : NULL;
}

/* Make p absolute against the working directory, without resolving anything. */
static enum ak_err
absolute(const char *p, char *out, size_t outlen)
{
	char cwd[AK_PATH_MAX];

	if (p[0] == '/')
		return fmt(out, outlen, "%s", p);
	if (getcwd(cwd, sizeof(cwd)) == NULL)
		return AK_ERR_SYSTEM;
	return fmt(out, outlen, "%s%s%s", cwd, strcmp(cwd, "/") == 0 ? "" : "/", p);
}

enum ak_err
ak_path_keystore(const char *explicit_path, char *out, size_t outlen, int *is_explicit)
{
	const char *v;

	if (is_explicit != NULL)
		*is_explicit = 0;
	if (explicit_path != NULL) {
		if (explicit_path[0] == '\0')
			return AK_ERR_INVALID;
		if (is_explicit != NULL)
			*is_explicit = 1;
		return absolute(explicit_path, out, outlen);
	}
	if ((v = env_nonempty("AKCTL_KEYSTORE")) != NULL) {
		if (is_explicit != NULL)
			*is_explicit = 1;
		return absolute(v, out, outlen);
	}
	/* The XDG spec says to ignore relative values. */
	if ((v = env_nonempty("XDG_DATA_HOME")) != NULL && v[0] == '/')
		return fmt(out, outlen, "%s/akagent/keystore", v);
	if ((v = env_nonempty("HOME")) == NULL) {
		struct passwd *pw = getpwuid(getuid());

		if (pw == NULL || pw->pw_dir == NULL || pw->pw_dir[0] == '\0')
			return AK_ERR_INVALID;
		v = pw->pw_dir;
	}
	{
		char rel[AK_PATH_MAX];
		enum ak_err r;

		if ((r = fmt(rel, sizeof(rel), "%s/.local/share/akagent/keystore", v)) != AK_OK)
			return r;
		return absolute(rel, out, outlen);
	}
}

enum ak_err
ak_path_agent_dir(char *out, size_t outlen)
{
	const char *v = env_nonempty("XDG_RUNTIME_DIR");

	if (v != NULL && v[0] == '/')
		return fmt(out, outlen, "%s/akagent", v);
	return fmt(out, outlen, "/tmp/akagent-%lu", (unsigned long)getuid());
}

enum ak_err
ak_path_default_socket(char *out, size_t outlen)
{
	char dir[AK_PATH_MAX];
	enum ak_err r;

	if ((r = ak_path_agent_dir(dir, sizeof(dir))) != AK_OK)
		return r;
	return fmt(out, outlen, "%s/agent.sock", dir);
}

enum ak_err
ak_path_client_socket(char *out, size_t outlen, int *is_default)
{
	const char *v = env_nonempty("AKAGENT_SOCK");

	if (is_default != NULL)
		*is_default = v == NULL;
	if (v != NULL)
		return fmt(out, outlen, "%s", v);
	return ak_path_default_socket(out, outlen);
}

enum ak_err
ak_path_mkdirs(const char *dir)
{
	char p[AK_PATH_MAX];
	size_t i, len;
	struct stat st;

	if (dir == NULL || dir[0] == '\0')
		return AK_ERR_INVALID;
	if ((len = strlen(dir)) >= sizeof(p))
		return AK_ERR_TOO_LARGE;
	memcpy(p, dir, len + 1);
	/* Each prefix ending before a '/', then the whole path. */
	for (i = 1; i <= len; i++) {
		if (p[i] != '/' && p[i] != '\0')
			continue;
		if (p[i - 1] == '/')
			continue; /* "//" or a trailing '/' */
		p[i] = '\0';
		if (mkdir(p, 0700) != 0) {
			int e = errno;

			if (e != EEXIST || stat(p, &st) != 0 || !S_ISDIR(st.st_mode)) {
				errno = e == EEXIST ? ENOTDIR : e;
				return AK_ERR_SYSTEM;
			}
		}
		p[i] = dir[i];
	}
	return AK_OK;
}

enum ak_err
ak_path_secure_dir(const char *dir, int create, char *errbuf, size_t errlen)
{
	struct stat st;
	enum ak_err r;

	if (errlen > 0)
		errbuf[0] = '\0';
	if (dir == NULL || dir[0] == '\0')
		return AK_ERR_INVALID;
	if (create && (r = ak_path_mkdirs(dir)) != AK_OK) {
		int e = errno;

		if (errlen > 0)
			snprintf(errbuf, errlen, "%s: cannot create: %s", dir,
			    r == AK_ERR_SYSTEM ? strerror(e) : "path too long");
		errno = e;
		return r;
	}
	if (lstat(dir, &st) != 0) {
		int e = errno;

		if (errlen > 0)
			snprintf(errbuf, errlen, "%s: %s", dir, strerror(e));
		errno = e;
		return AK_ERR_SYSTEM;
	}
	if (S_ISLNK(st.st_mode)) {
		if (errlen > 0)
			snprintf(errbuf, errlen, "%s: is a symbolic link, not a directory", dir);
		return AK_ERR_UNSAFE_PATH;
	}
	if (!S_ISDIR(st.st_mode)) {
		if (errlen > 0)
			snprintf(errbuf, errlen, "%s: not a directory", dir);
		return AK_ERR_UNSAFE_PATH;
	}
	if (st.st_uid != geteuid()) {
		if (errlen > 0)
			snprintf(errbuf, errlen, "%s: owned by uid %lu, not by uid %lu", dir,
			    (unsigned long)st.st_uid, (unsigned long)geteuid());
		return AK_ERR_UNSAFE_PATH;
	}
	if ((st.st_mode & 077) != 0) {
		if (errlen > 0)
			snprintf(errbuf, errlen, "%s: has group/other permissions (mode %04o); fix with chmod 700",
			    dir, (unsigned)(st.st_mode & 07777));
		return AK_ERR_UNSAFE_PATH;
	}
	return AK_OK;
}

enum ak_err
ak_path_dirname(const char *path, char *out, size_t outlen)
{
	size_t n;

	if (path == NULL)
		return AK_ERR_INVALID;
	n = strlen(path);
	/* Strip trailing slashes, the last component, then the slashes before it. */
	while (n > 1 && path[n - 1] == '/')
		n--;
	while (n > 0 && path[n - 1] != '/')
		n--;
	if (n == 0)
		return fmt(out, outlen, ".");
	while (n > 1 && path[n - 1] == '/')
		n--;
	if (n > (size_t)INT32_MAX)
		return AK_ERR_TOO_LARGE;
	return fmt(out, outlen, "%.*s", (int)n, path);
}
