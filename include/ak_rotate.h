/* ak_rotate.h - rotation of a secret with an overlap: the current key, the previous one kept until a
 * grace deadline, and the rotation policy.
 *
 * One rule for the main secret and every secret variable: a rotation moves the current value to the
 * record's `previous` (struct ak_rot) with the time and a grace deadline; rollback swaps the two;
 * finish wipes the previous one; and every keystore write (ak_store_txn_run) wipes those whose
 * deadline has passed, which is how the agent expires them (a write when the deadline comes).
 *
 * Everything here works on profiles in the secure arena; the values it moves are wiped where they die.
 */
#ifndef AK_ROTATE_H
#define AK_ROTATE_H

#include <stdint.h>

#include "ak_err.h"
#include "ak_store.h"

#define AK_GRACE_DEFAULT_S (24 * 3600) /* rotate --grace */
#define AK_DURATION_MAX_S (100LL * 366 * 24 * 3600)

struct cJSON;

/* Wipe and forget a previous value (NULL ok). */
void ak_rot_clear(struct ak_rot *r);
/* Deep copy (dst is overwritten, not freed). AK_ERR_NOMEM. */
enum ak_err ak_rot_copy(struct ak_rot *dst, const struct ak_rot *src);
/* Syntax and size of a kept previous value (none is fine): AK_ERR_EMPTY, AK_ERR_TOO_LARGE,
 * AK_ERR_INVALID (times). */
enum ak_err ak_rot_check(const struct ak_rot *r);

/* The document (docs/keystore-format.md): "previous": {"value", "rotated", "until"[, "deactivate"]}
 * on the profile or on a secret variable, only when one is kept (or, with "deactivate" and without
 * "value", a deactivation is pending after the grace wiped the key); the store's writer emits it. it
 * is the "previous" item; AK_ERR_BAD_FORMAT for anything but those fields. */
enum ak_err ak_rot_from_json(const struct cJSON *it, struct ak_rot *r);

/* The rotation edit actions (AK_EDIT_ROTATE .. AK_EDIT_ROTATE_EVERY, ak_edit.h) on p (a copy the edit
 * owns), at wall time now. var names the main secret's variable or a secret variable. Errors:
 * AK_ERR_NO_VAR, AK_ERR_INVALID (a plain variable), AK_ERR_NO_PREVIOUS (rollback/finish/grace with
 * none kept), AK_ERR_SAME_SECRET (rotate to the current value). The caller wipes value. */
enum ak_err ak_rot_apply(struct ak_profile *p, uint8_t kind, const char *var, const char *value,
    int64_t now);

/* Wipe every previous value whose grace deadline is at or before now (a profile another store shares is
 * copied first, ak_store_own). Returns how many. */
size_t ak_store_expire(struct ak_store *s, int64_t now);
/* The earliest grace deadline of any kept previous value in s (or p), 0 when none. */
int64_t ak_store_next_expiry(const struct ak_store *s);
int64_t ak_profile_next_expiry(const struct ak_profile *p);
/* A copy of p serving its previous values: every secret with a previous value still in its grace
 * (until > now) is replaced by it. AK_ERR_NO_PREVIOUS when p has none. *out: ak_profile_free. */
enum ak_err ak_profile_previous_view(const struct ak_profile *p, int64_t now, struct ak_profile **out);

/* Policy: 0 current (or no policy), 1 due (within a tenth of the period, at most 7 days, of its end),
 * 2 overdue (older than the period). rotated: when the secret last changed. */
int ak_rot_due(int64_t rotated, int64_t every, int64_t now);

/* The partial hint of a key, as an admin API shows it ("sk-ant-api03-R2D...igAA": the vendor prefix
 * and 3 characters, "...", the last 4) into out (AK_ROT_HINT_MAX). AK_ERR_INVALID for a key too short
 * to hide enough of, or with bytes outside printable ASCII. The caller wipes out. */
#define AK_ROT_HINT_MAX 64
enum ak_err ak_rot_hint(const char *key, char *out, size_t outlen);
/* A hint's syntax: printable ASCII, one "..." with text on both sides, shorter than AK_ROT_HINT_MAX. */
enum ak_err ak_rot_hint_check(const char *hint);
/* 1 when key starts with the hint's part before "..." and ends with the part after it. */
int ak_rot_hint_match(const char *hint, const char *key);

/* Decimal seconds as edit actions carry them ("0".."N", no sign, at most 12 digits). */
enum ak_err ak_rot_secs_parse(const char *s, int64_t *secs);

#endif
