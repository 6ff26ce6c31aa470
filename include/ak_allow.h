/* ak_allow.h - files the user has reviewed and allowed to ask for secrets (akctl allow / deny).
 *
 * A .env committed to a repository can name ak://production/ANTHROPIC_API_KEY next to a planted base
 * URL; `akctl exec --env-file` resolves its references only when the user allowed that file with that
 * content. The list records each file's real (absolute, symlink-free) path and the SHA-256 of its
 * bytes, so an edited file needs a new allow. It lives in $XDG_STATE_HOME/akagent/allowed-files
 * (default ~/.local/state/akagent/), mode 0600 in a 0700 directory, one "HEX64 PATH" line per file,
 * rewritten atomically under a lock. Nothing here is secret: content is only hashed (the buffer that
 * held it is wiped), never stored.
 */
#ifndef AK_ALLOW_H
#define AK_ALLOW_H

#include <stddef.h>

#include "ak_err.h"
#include "ak_path.h"

#define AK_ALLOW_HEX 65 /* SHA-256 in hex, NUL included */

struct ak_allow_entry {
	char path[AK_PATH_MAX];
	char hex[AK_ALLOW_HEX];
};

/* The list file's path into out. AK_ERR_INVALID without XDG_STATE_HOME or HOME. */
enum ak_err ak_allow_list_path(char *out, size_t outlen);
/* The real path of file (realpath) into real; AK_ERR_IO with errno set if it cannot be resolved,
 * AK_ERR_UNSUPPORTED if it holds a newline (the list is line based). */
enum ak_err ak_allow_realpath(const char *file, char *real, size_t reallen);
/* SHA-256 of len bytes of buf, in hex. */
void ak_allow_digest(const void *buf, size_t len, char hex[AK_ALLOW_HEX]);
/* Record real (from ak_allow_realpath) with digest hex, replacing its earlier entry. */
enum ak_err ak_allow_add(const char *real, const char *hex);
/* Remove real's entry; *found (may be NULL) says whether there was one. */
enum ak_err ak_allow_remove(const char *real, int *found);
/* *allowed = 1 when real is recorded with exactly this digest. A missing list allows nothing. */
enum ak_err ak_allow_check(const char *real, const char *hex, int *allowed);
/* Every entry, in file order: *out is malloc'd (free()), *n entries. */
enum ak_err ak_allow_list(struct ak_allow_entry **out, size_t *n);

#endif
