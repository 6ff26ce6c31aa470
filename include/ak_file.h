/* ak_file.h - one loader and one writer for every file akctl and akagent read or write whole.
 *
 * Whether the content is secret is decided by a flag, not by which reader a caller picked: with
 * AK_FILE_SECURE the bytes only ever sit in the secure arena and are wiped on every path, errors
 * included (credentials files, .env files, JSON configs). The keystore file is ciphertext and is read
 * into plain memory (ak_store_read in ak_store.h wraps this loader).
 */
#ifndef AK_FILE_H
#define AK_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "ak_err.h"

enum {
	AK_FILE_SECURE = 1 << 0,  /* the content is secret: read into the arena, wiped on every path */
	AK_FILE_REGULAR = 1 << 1, /* refuse anything but a regular file (no pipe, no device) */
};

/* Read the whole file at path, at most max bytes (a pipe is read to its end). *out is NUL-terminated,
 * *len excludes the NUL. With AK_FILE_SECURE *out is an arena block (ak_smem_free wipes it), else
 * malloc'd (free). On failure *out is NULL and nothing read is left unwiped. Errors, each its own:
 * AK_ERR_NOT_FOUND (no such file), AK_ERR_DENIED (no permission), AK_ERR_TOO_LARGE (over max),
 * AK_ERR_IO (a directory, a non-regular file under AK_FILE_REGULAR, a read error), AK_ERR_NOMEM.
 * errno is kept from the failing call for AK_ERR_IO and AK_ERR_DENIED. Symlinks are followed. */
enum ak_err ak_file_load(const char *path, size_t max, unsigned flags, char **out, size_t *len);
/* The first cap bytes (fewer if the file is shorter) of the regular file at path into buf, not secret:
 * for a header, where reading a large file whole would only cost a fresh buffer of its size. The
 * checks and errors of ak_file_load with AK_FILE_REGULAR (a file over max is AK_ERR_TOO_LARGE). */
enum ak_err ak_file_read_head(const char *path, size_t max, uint8_t *buf, size_t cap, size_t *len);

/* Atomic durable replace: temp file "<path>.tmp.XXXXXX" in the same directory (0600), write all,
 * fsync, rename over path, fsync the directory. If exclusive, fails with AK_ERR_STORE_EXISTS when path
 * exists (never replaces it). On any failure the previous file is untouched and the temp file removed.
 * data is written as given: the caller decides whether it may reach the disk. */
enum ak_err ak_file_write_atomic(const char *path, const uint8_t *data, size_t len, int exclusive);

/* Temp files of ak_file_write_atomic's naming for path ("<path>.tmp." + 6 letters or digits) that a
 * writer killed mid-write left behind. Counts them into *count; with remove, unlinks them too (call it
 * only while holding the lock every writer of path takes, or a live writer's temp file goes).
 * AK_ERR_IO if the directory cannot be read or one of them cannot be removed (*count still counts). */
enum ak_err ak_file_stale_temps(const char *path, int remove, size_t *count);

#endif
