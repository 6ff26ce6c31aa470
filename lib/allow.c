/* allow.c - the allow list of reviewed files (see ak_allow.h). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "ak_allow.h"
#include "ak_file.h"
#include "ak_path.h"
#include "ak_store.h"

#define ALLOW_FILE "allowed-files"
#define ALLOW_MAX_ENTRIES 10000
/* Each line is a hex digest and a path: the list can never legitimately be larger. */
#define ALLOW_FILE_MAX ((size_t)ALLOW_MAX_ENTRIES * (AK_ALLOW_HEX + AK_PATH_MAX + 2))
#define ALLOW_LOCK_MS 5000

/* $XDG_STATE_HOME/akagent (absolute values only, as the XDG spec says), else ~/.local/state/akagent. */
static enum ak_err
state_dir(char *out, size_t outlen)
{
	const char *v = getenv("XDG_STATE_HOME");
	int n;

	if (v != NULL && v[0] == '/')
		n = snprintf(out, outlen, "%s/akagent", v);
	else if ((v = getenv("HOME")) != NULL && v[0] == '/')
		n = snprintf(out, outlen, "%s/.local/state/akagent", v);
	else
		return AK_ERR_INVALID;
	return n < 0 || (size_t)n >= outlen ? AK_ERR_TOO_LARGE : AK_OK;
}

enum ak_err
ak_allow_list_path(char *out, size_t outlen)
{
	char dir[AK_PATH_MAX];
	enum ak_err r;
	int n;

	if ((r = state_dir(dir, sizeof(dir))) != AK_OK)
		return r;
	n = snprintf(out, outlen, "%s/" ALLOW_FILE, dir);
	return n < 0 || (size_t)n >= outlen ? AK_ERR_TOO_LARGE : AK_OK;
}

enum ak_err
ak_allow_realpath(const char *file, char *real, size_t reallen)
{
	char buf[PATH_MAX];

	if (realpath(file, buf) == NULL)
		return AK_ERR_IO;
	if (strchr(buf, '\n') != NULL)
		return AK_ERR_UNSUPPORTED;
	if (strlen(buf) >= reallen)
		return AK_ERR_TOO_LARGE;
	memcpy(real, buf, strlen(buf) + 1);
	return AK_OK;
}

void
ak_allow_digest(const void *buf, size_t len, char hex[AK_ALLOW_HEX])
{
	unsigned char h[crypto_hash_sha256_BYTES];

	crypto_hash_sha256(h, buf, len);
	sodium_bin2hex(hex, AK_ALLOW_HEX, h, sizeof(h));
}

/* Parse the list image (len bytes) into a malloc'd array. Lines that do not parse are dropped: the
 * list is ours, and a damaged line can only allow less. */
static enum ak_err
parse(const char *img, size_t len, struct ak_allow_entry **out, size_t *n)
{
	struct ak_allow_entry *e = NULL, *ne;
	const char *p = img, *end = img + len, *nl;
	size_t cnt = 0, cap = 0, pl;

	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			nl = end;
		pl = (size_t)(nl - p);
		if (pl > AK_ALLOW_HEX && p[AK_ALLOW_HEX - 1] == ' ' && p[AK_ALLOW_HEX] == '/' &&
		    pl - AK_ALLOW_HEX < AK_PATH_MAX && cnt < ALLOW_MAX_ENTRIES) {
			if (cnt == cap) {
				cap = cap ? cap * 2 : 8;
				if ((ne = realloc(e, cap * sizeof(*e))) == NULL) {
					free(e);
					return AK_ERR_NOMEM;
				}
				e = ne;
			}
			memcpy(e[cnt].hex, p, AK_ALLOW_HEX - 1);
			e[cnt].hex[AK_ALLOW_HEX - 1] = '\0';
			memcpy(e[cnt].path, p + AK_ALLOW_HEX, pl - AK_ALLOW_HEX);
			e[cnt].path[pl - AK_ALLOW_HEX] = '\0';
			if (strspn(e[cnt].hex, "0123456789abcdef") == AK_ALLOW_HEX - 1 &&
			    strlen(e[cnt].path) == pl - AK_ALLOW_HEX)
				cnt++;
		}
		p = nl + 1;
	}
	*out = e;
	*n = cnt;
	return AK_OK;
}

static enum ak_err
load(const char *path, struct ak_allow_entry **out, size_t *n)
{
	char *img = NULL;
	size_t len = 0;
	enum ak_err r;

	*out = NULL;
	*n = 0;
	r = ak_file_load(path, ALLOW_FILE_MAX, AK_FILE_REGULAR, &img, &len);
	if (r == AK_ERR_NOT_FOUND)
		return AK_OK; /* no list yet: nothing allowed */
	if (r != AK_OK)
		return r;
	r = parse(img, len, out, n);
	free(img);
	return r;
}

enum ak_err
ak_allow_list(struct ak_allow_entry **out, size_t *n)
{
	char path[AK_PATH_MAX];
	enum ak_err r;

	*out = NULL;
	*n = 0;
	if ((r = ak_allow_list_path(path, sizeof(path))) != AK_OK)
		return r;
	return load(path, out, n);
}

enum ak_err
ak_allow_check(const char *real, const char *hex, int *allowed)
{
	struct ak_allow_entry *e = NULL;
	size_t n = 0, i;
	enum ak_err r;

	*allowed = 0;
	if ((r = ak_allow_list(&e, &n)) != AK_OK)
		return r;
	for (i = 0; i < n; i++)
		if (strcmp(e[i].path, real) == 0 && strcmp(e[i].hex, hex) == 0)
			*allowed = 1;
	free(e);
	return AK_OK;
}

/* Read-change-write under the lock: drop real's entry, then append (real, hex) when hex != NULL. */
static enum ak_err
update(const char *real, const char *hex, int *found)
{
	char dir[AK_PATH_MAX], path[AK_PATH_MAX], err[256];
	struct ak_allow_entry *e = NULL;
	char *img = NULL;
	size_t n = 0, i, len = 0;
	int lockfd = -1;
	enum ak_err r;

	if (found != NULL)
		*found = 0;
	if (strchr(real, '\n') != NULL || real[0] != '/')
		return AK_ERR_INVALID;
	if ((r = state_dir(dir, sizeof(dir))) != AK_OK || (r = ak_allow_list_path(path, sizeof(path))) != AK_OK)
		return r;
	/* Only we may write the list: a 0700 directory of ours, made if missing. */
	if ((r = ak_path_mkdirs(dir)) != AK_OK || (r = ak_path_secure_dir(dir, 0, err, sizeof(err))) != AK_OK)
		return r;
	if ((r = ak_store_lock(path, ALLOW_LOCK_MS, &lockfd)) != AK_OK)
		return r;
	if ((r = load(path, &e, &n)) != AK_OK)
		goto out;
	if ((img = malloc((n + 1) * (AK_ALLOW_HEX + AK_PATH_MAX + 1))) == NULL) {
		r = AK_ERR_NOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (strcmp(e[i].path, real) == 0) {
			if (found != NULL)
				*found = 1;
			continue;
		}
		len += (size_t)sprintf(img + len, "%s %s\n", e[i].hex, e[i].path);
	}
	if (hex != NULL)
		len += (size_t)sprintf(img + len, "%s %s\n", hex, real);
	r = ak_file_write_atomic(path, (const uint8_t *)img, len, 0);
out:
	free(img);
	free(e);
	if (lockfd >= 0)
		close(lockfd);
	return r;
}

enum ak_err
ak_allow_add(const char *real, const char *hex)
{
	if (hex == NULL || strlen(hex) != AK_ALLOW_HEX - 1)
		return AK_ERR_INVALID;
	return update(real, hex, NULL);
}

enum ak_err
ak_allow_remove(const char *real, int *found)
{
	return update(real, NULL, found);
}
