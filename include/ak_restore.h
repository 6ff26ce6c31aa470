/* ak_restore.h - what `akctl use` changed in a shell, recorded in the shell itself, so that the next
 * `use`, `use --clear` and `akagent -k` unset exactly what it set and put back what was there.
 *
 * The record travels in one environment variable, AKCTL_RESTORE: base64url (no padding) of
 *   u8 version (1), u32 n, n x { string name, u8 had, string previous value (empty unless had) }
 * (ak_buf encodings: big-endian u32 lengths). base64url is plain in every shell's single quotes and
 * in cmd.exe, so the previous values - arbitrary bytes - need no quoting of their own.
 * Previous values may be secrets (a key exported by hand before `use`): every copy is in the secure
 * arena when secure is set (akctl), else in plain memory wiped on free (akagent -k, before any arena).
 */
#ifndef AK_RESTORE_H
#define AK_RESTORE_H

#include <stddef.h>

#include "ak_buf.h"
#include "ak_err.h"
#include "ak_shell.h"

#define AK_RESTORE_VAR "AKCTL_RESTORE"
#define AK_RESTORE_MAX 128       /* names recorded */
#define AK_RESTORE_ENC_MAX 120000 /* encoded bytes: under Linux's 128 KiB limit on one variable */

struct ak_restore_entry {
	char *name;
	char *old; /* the value before use, NULL if the variable was not set */
};

struct ak_restore {
	int secure;
	size_t n;
	struct ak_restore_entry e[AK_RESTORE_MAX];
};

/* An empty record (NULL on no memory). Free with ak_restore_free (wipes). */
struct ak_restore *ak_restore_new(int secure);
void ak_restore_free(struct ak_restore *r);
/* Decode enc (the variable's value) into a new record. AK_ERR_BAD_FORMAT if it is not one of ours. */
enum ak_err ak_restore_decode(const char *enc, int secure, struct ak_restore **out);
/* Record name's previous value (old NULL: unset). A name already recorded keeps its first value. */
enum ak_err ak_restore_add(struct ak_restore *r, const char *name, const char *old);
/* The entry for name, or NULL. */
const struct ak_restore_entry *ak_restore_find(const struct ak_restore *r, const char *name);
/* Append the encoded record (text, no NUL) to out. AK_ERR_TOO_LARGE past AK_RESTORE_ENC_MAX. */
enum ak_err ak_restore_encode(const struct ak_restore *r, struct ak_buf *out);
/* Append, in shell sh, the lines that put each recorded variable back (export the old value, or unset
 * it), except names for which keep(name, arg) returns 1 (keep may be NULL). */
enum ak_err ak_restore_lines(struct ak_buf *out, enum ak_shell sh, const struct ak_restore *r,
    int (*keep)(const char *name, void *arg), void *arg);

#endif
