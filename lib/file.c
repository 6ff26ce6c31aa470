/* file.c - whole-file reads (secret or not, by flag), atomic durable writes, and the sweep of temp
 * files a killed writer left behind.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ak_file.h"
#include "ak_log.h"
#include "ak_path.h"
#include "ak_smem.h"

#define TEMP_SUFFIX ".tmp."
#define TEMP_RANDOM 6 /* mkostemp's XXXXXX */

/* Reading ------------------------------------------------------------------------------------------ */

static enum ak_err
open_err(int e)
{
	switch (e) {
	case ENOENT:
	case ENOTDIR:
		return AK_ERR_NOT_FOUND;
	case EACCES:
	case EPERM:
		return AK_ERR_DENIED;
	default:
		return AK_ERR_IO;
	}
}

static void *
buf_alloc(size_t n, unsigned flags)
{
	return (flags & AK_FILE_SECURE) ? ak_smem_alloc(n) : calloc(1, n);
}

/* Frees a buffer of buf_alloc, wiping it when it may hold a secret. */
static void
buf_free(void *p, unsigned flags)
{
	if (flags & AK_FILE_SECURE)
		ak_smem_free(p);
	else
		free(p);
}

/* Read from fd into b until cap bytes or end of file; *n counts what arrived. 0, or the errno. */
static int
read_upto(int fd, void *buf, size_t cap, size_t *n)
{
	ssize_t got;

	while (*n < cap) {
		got = read(fd, (char *)buf + *n, cap - *n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return errno;
		if (got == 0)
			break;
		*n += (size_t)got;
	}
	return 0;
}

/* Open path for reading and check what it is: never a directory; with AK_FILE_REGULAR a regular file
 * only; a regular file no larger than max. AK_OK with *fd open and *st filled; otherwise *fd is -1
 * and *saved the errno behind an AK_ERR_IO (0 for the other errors). */
static enum ak_err
open_checked(const char *path, size_t max, unsigned flags, int *fd, struct stat *st, int *saved)
{
	enum ak_err r = AK_ERR_IO;

	*saved = 0;
	if ((*fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1) {
		*saved = errno;
		return open_err(*saved);
	}
	if (fstat(*fd, st) != 0)
		*saved = errno;
	else if (S_ISDIR(st->st_mode))
		*saved = EISDIR;
	else if ((flags & AK_FILE_REGULAR) && !S_ISREG(st->st_mode))
		*saved = EINVAL;
	else if (S_ISREG(st->st_mode) && (st->st_size < 0 || (uintmax_t)st->st_size > max))
		r = AK_ERR_TOO_LARGE;
	else
		return AK_OK;
	close(*fd);
	*fd = -1;
	return r;
}

enum ak_err
ak_file_load(const char *path, size_t max, unsigned flags, char **out, size_t *len)
{
	struct stat st;
	char *b = NULL;
	size_t cap, n = 0;
	int fd = -1, saved = 0;
	enum ak_err r;

	if (out == NULL || len == NULL)
		return AK_ERR_INVALID;
	*out = NULL;
	*len = 0;
	if (path == NULL || max >= SIZE_MAX - 1)
		return AK_ERR_INVALID;
	if ((r = open_checked(path, max, flags, &fd, &st, &saved)) != AK_OK)
		goto out;
	/*
	 * One block, never grown: a secure buffer has no realloc, and a grown copy would leave the old one
	 * unwiped. A regular file is read up to the size it announced; anything else (a pipe) up to one
	 * byte past max, which tells it was too large.
	 */
	cap = S_ISREG(st.st_mode) ? (size_t)st.st_size : max + 1;
	if ((b = buf_alloc(cap + 1, flags)) == NULL) {
		r = AK_ERR_NOMEM;
		goto out;
	}
	r = AK_ERR_IO;
	if ((saved = read_upto(fd, b, cap, &n)) != 0)
		goto out;
	if (n > max) {
		r = AK_ERR_TOO_LARGE;
		goto out;
	}
	b[n] = '\0';
	*out = b;
	*len = n;
	b = NULL;
	r = AK_OK;
out:
	if (fd != -1)
		close(fd);
	buf_free(b, flags);
	errno = saved;
	return r;
}

enum ak_err
ak_file_read_head(const char *path, size_t max, uint8_t *buf, size_t cap, size_t *len)
{
	struct stat st;
	size_t n = 0;
	int fd = -1, saved = 0;
	enum ak_err r;

	if (buf == NULL || len == NULL || path == NULL)
		return AK_ERR_INVALID;
	*len = 0;
	/* The checks of ak_file_load under AK_FILE_REGULAR. */
	if ((r = open_checked(path, max, AK_FILE_REGULAR, &fd, &st, &saved)) != AK_OK)
		goto out;
	r = AK_ERR_IO;
	if ((saved = read_upto(fd, buf, cap, &n)) != 0)
		goto out;
	*len = n;
	r = AK_OK;
out:
	if (fd != -1)
		close(fd);
	errno = saved;
	return r;
}

/* Writing ------------------------------------------------------------------------------------------ */

static int
write_all(int fd, const uint8_t *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		if ((n = write(fd, p, len)) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0) { /* should not happen for a regular file; do not spin */
			errno = EIO;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Make the rename/link itself durable. */
static int
fsync_dir_of(const char *path)
{
	char dir[AK_PATH_MAX];
	int dfd, rc;

	if (ak_path_dirname(path, dir, sizeof(dir)) != AK_OK)
		return -1;
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	rc = fsync(dfd);
	if (close(dfd) != 0)
		rc = -1;
	return rc;
}

/* The error for a failed write step: a full disk and a refusal are worth telling apart from I/O. */
static enum ak_err
io_err(int e)
{
	switch (e) {
	case ENOSPC:
	case EDQUOT:
		return AK_ERR_NO_SPACE;
	case EACCES:
	case EPERM:
	case EROFS:
		return AK_ERR_DENIED;
	default:
		return AK_ERR_IO;
	}
}

/* Put tmp at path only if path does not exist. renameat2(RENAME_NOREPLACE) first: one step, nothing
 * left behind; link() where the filesystem lacks it (then *tmp_gone = 0: the caller drops tmp). */
static enum ak_err
place_exclusive(const char *tmp, const char *path, int *tmp_gone)
{
	*tmp_gone = 0;
#ifdef RENAME_NOREPLACE
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0) {
		*tmp_gone = 1;
		return AK_OK;
	}
	if (errno == EEXIST)
		return AK_ERR_STORE_EXISTS;
	if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
		return io_err(errno);
#endif
	if (link(tmp, path) == 0)
		return AK_OK;
	if (errno == EEXIST)
		return AK_ERR_STORE_EXISTS;
	return io_err(errno);
}

enum ak_err
ak_file_write_atomic(const char *path, const uint8_t *data, size_t len, int exclusive)
{
	char tmp[AK_PATH_MAX];
	int fd = -1, have_tmp = 0, gone = 0, n;
	enum ak_err r = AK_ERR_IO;

	if (path == NULL || (data == NULL && len != 0))
		return AK_ERR_INVALID;
	n = snprintf(tmp, sizeof(tmp), "%s" TEMP_SUFFIX "XXXXXX", path);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return AK_ERR_INVALID;
	/* Same directory as path, so the rename is atomic; mkostemp creates it 0600 with O_EXCL. */
	if ((fd = mkostemp(tmp, O_CLOEXEC)) == -1)
		return io_err(errno);
	have_tmp = 1;
	if (fchmod(fd, 0600) != 0 || write_all(fd, data, len) != 0 || fsync(fd) != 0) {
		r = io_err(errno);
		goto out;
	}
	n = close(fd);
	fd = -1;
	if (n != 0) { /* NFS and friends report write errors at close */
		r = io_err(errno);
		goto out;
	}
	if (exclusive) {
		if ((r = place_exclusive(tmp, path, &gone)) != AK_OK)
			goto out;
		if (gone)
			have_tmp = 0;
	} else {
		if (rename(tmp, path) != 0) {
			r = io_err(errno);
			goto out;
		}
		have_tmp = 0;
	}
	/*
	 * From here the new content is in place: reporting failure now would be a lie the caller acts on
	 * (the agent would keep a store that no longer matches the file; passwd would say the old
	 * passphrase still works). What can still fail only weakens durability across a power loss, or
	 * leaves a stray temp name (after link): warn and report success.
	 */
	r = AK_OK;
	if (have_tmp && unlink(tmp) != 0)
		ak_warn("%s: written, but could not remove %s: %s", path, tmp, strerror(errno));
	have_tmp = 0;
	if (fsync_dir_of(path) != 0)
		ak_warn("%s: written, but syncing its directory failed (%s): the change may not survive "
		    "a power loss", path, strerror(errno));
out:
	if (fd != -1)
		close(fd);
	if (have_tmp)
		unlink(tmp);
	return r;
}

/* Stale temp files ----------------------------------------------------------------------------------- */

/* 1 if name is base + ".tmp." + exactly TEMP_RANDOM letters or digits (mkostemp's alphabet). */
static int
is_temp_of(const char *name, const char *base, size_t blen)
{
	const char *t;
	size_t i;

	if (strncmp(name, base, blen) != 0 || strncmp(name + blen, TEMP_SUFFIX, strlen(TEMP_SUFFIX)) != 0)
		return 0;
	t = name + blen + strlen(TEMP_SUFFIX);
	for (i = 0; i < TEMP_RANDOM; i++) {
		if (!((t[i] >= 'a' && t[i] <= 'z') || (t[i] >= 'A' && t[i] <= 'Z') ||
		    (t[i] >= '0' && t[i] <= '9')))
			return 0;
	}
	return t[TEMP_RANDOM] == '\0';
}

enum ak_err
ak_file_stale_temps(const char *path, int remove, size_t *count)
{
	char dir[AK_PATH_MAX];
	const char *base;
	struct dirent *e;
	struct stat st;
	DIR *d = NULL;
	size_t blen;
	enum ak_err r = AK_OK;

	if (path == NULL || count == NULL)
		return AK_ERR_INVALID;
	*count = 0;
	if ((r = ak_path_dirname(path, dir, sizeof(dir))) != AK_OK)
		return r;
	base = strrchr(path, '/') != NULL ? strrchr(path, '/') + 1 : path;
	if ((blen = strlen(base)) == 0)
		return AK_ERR_INVALID;
	if ((d = opendir(dir)) == NULL)
		return errno == ENOENT ? AK_OK : AK_ERR_IO;
	while ((errno = 0, e = readdir(d)) != NULL) {
		if (!is_temp_of(e->d_name, base, blen))
			continue;
		/* Never a directory of that name: not ours, and unlink would fail on it anyway. */
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || S_ISDIR(st.st_mode))
			continue;
		(*count)++;
		if (remove && unlinkat(dirfd(d), e->d_name, 0) != 0 && errno != ENOENT)
			r = AK_ERR_IO;
	}
	if (errno != 0)
		r = AK_ERR_IO;
	closedir(d);
	return r;
}
