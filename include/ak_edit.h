/* ak_edit.h - a change to one stored profile that keeps everything it does not name.
 *
 * `akctl set`, `rename` and `cp` build an edit; the agent (EDIT request, docs/protocol.md) or akctl's
 * direct path applies it inside the one keystore transaction (ak_store_txn_run with ak_edit_apply), so
 * it works on the store as it is on disk under the lock and no other writer's change is lost.
 *
 * The edit and every string in it live in the secure arena (a SET_SECRET value is a secret);
 * ak_edit_free wipes them.
 */
#ifndef AK_EDIT_H
#define AK_EDIT_H

#include <stddef.h>
#include <stdint.h>

#include "ak_err.h"
#include "ak_store.h"

#define AK_EDIT_MAX 64 /* actions in one edit */
#define AK_FINISH_DEACTIVATED "deactivated" /* FINISH's value once the provider deactivated the key */

enum ak_edit_kind {
	AK_EDIT_SET_VAR = 1,     /* arg = variable, value = its plain value */
	AK_EDIT_SET_SECRET = 2,  /* arg = variable, value = the secret */
	AK_EDIT_UNSET = 3,       /* arg = variable (not the main secret's) */
	AK_EDIT_DESCRIPTION = 4, /* arg = the text */
	AK_EDIT_PROVIDER = 5,    /* arg = the provider's name */
	AK_EDIT_RENAME = 6,      /* arg = the new profile name; only as the last action */
	AK_EDIT_COPY = 7,        /* arg = the copy's name; only as the last action */
	/* Rotation (ak_rotate.h): arg names the main secret's variable (or is "" for it) or a secret
	 * variable. */
	AK_EDIT_ROTATE = 8,      /* arg = variable, value = the new secret; the old one becomes previous */
	AK_EDIT_GRACE = 9,       /* arg = variable, value = decimal seconds: previous kept until now + that */
	AK_EDIT_ROLLBACK = 10,   /* arg = variable: swap current and previous */
	AK_EDIT_FINISH = 11,     /* arg = variable: wipe the previous value; value "" keeps a deactivation
	                          * asked for it (then pending), AK_FINISH_DEACTIVATED ends it too */
	AK_EDIT_ROTATE_EVERY = 12, /* arg = decimal seconds between rotations (0: no policy) */
	AK_EDIT_CONFIRM = 13,    /* arg = "1": the agent asks before handing out a secret, "0": it does not */
	AK_EDIT_LIFETIME = 14,   /* arg = decimal seconds after unlock the agent keeps the secrets (0: no limit) */
	AK_EDIT_DEACTIVATE = 15, /* arg = "" (the main secret): deactivate the kept previous key at the
	                          * provider when the rotation finishes; its partial hint is kept */
};

struct ak_edit_action {
	uint8_t kind;
	char *arg;   /* never NULL once added */
	char *value; /* "" unless SET_VAR / SET_SECRET */
};

struct ak_edit {
	char *profile; /* the profile changed (the source of RENAME/COPY) */
	size_t n;
	struct ak_edit_action a[AK_EDIT_MAX];
};

/* A new empty edit of profile (copied). NULL when out of memory. */
struct ak_edit *ak_edit_new(const char *profile);
/* Wipe and free (NULL ok). */
void ak_edit_free(struct ak_edit *e);
/* Append an action (arg and value copied; value may be NULL for ""). Checks what can be checked
 * without the store: the kind, variable and profile name syntax, sizes, RENAME/COPY last.
 * AK_ERR_TOO_LARGE past AK_EDIT_MAX, AK_ERR_INVALID for an unknown kind or an action after RENAME/COPY,
 * AK_ERR_BAD_VARNAME / AK_ERR_BAD_NAME. The caller wipes its own copies. */
enum ak_err ak_edit_add(struct ak_edit *e, uint8_t kind, const char *arg, const char *value);
/* An ak_store_apply_fn: arg is a const struct ak_edit *. Applies every action to the profile or none:
 * AK_ERR_NO_PROFILE, AK_ERR_NO_VAR (UNSET of a variable it lacks), AK_ERR_INVALID (SET/UNSET of the
 * main secret's variable, or an empty secret), AK_ERR_PROFILE_EXISTS (RENAME/COPY onto a name in use),
 * or a validation error. Times follow ak_store_put and ak_store_rename. Does not consume arg. */
enum ak_err ak_edit_apply(struct ak_store *s, void *arg);

#endif
