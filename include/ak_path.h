/* ak_path.h - where things live, and checks that they are ours. */
#ifndef AK_PATH_H
#define AK_PATH_H

#include <stddef.h>

#include "ak_err.h"

#define AK_PATH_MAX 4096

/* Keystore: -f PATH, else $AKCTL_KEYSTORE, else $XDG_DATA_HOME/akagent/keystore,
 * else $HOME/.local/share/akagent/keystore. Made absolute (relative to cwd) but not resolved.
 * explicit_path may be NULL. *is_explicit = 1 when -f or AKCTL_KEYSTORE chose it. */
enum ak_err ak_path_keystore(const char *explicit_path, char *out, size_t outlen, int *is_explicit);

/* The per-user agent directory: $XDG_RUNTIME_DIR/akagent, else /tmp/akagent-$UID. */
enum ak_err ak_path_agent_dir(char *out, size_t outlen);
/* Default socket: <agent dir>/agent.sock. */
enum ak_err ak_path_default_socket(char *out, size_t outlen);
/* Socket for clients: $AKAGENT_SOCK if set and non-empty, else the default (then *is_default = 1, so the
 * client verifies its directory; is_default may be NULL). */
enum ak_err ak_path_client_socket(char *out, size_t outlen, int *is_default);

/* Create dir (mode 0700) if missing, then verify with lstat: a real directory (not a symlink), owned by
 * the effective uid, no group/other permission bits. AK_ERR_UNSAFE_PATH otherwise (detail in errbuf). */
enum ak_err ak_path_secure_dir(const char *dir, int create, char *errbuf, size_t errlen);
/* mkdir -p with mode 0700 for missing components. */
enum ak_err ak_path_mkdirs(const char *dir);
/* The directory part of path into out. */
enum ak_err ak_path_dirname(const char *path, char *out, size_t outlen);

#endif
