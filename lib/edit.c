/* edit.c - apply a change to one profile, keeping everything it does not name (ak_edit.h).
 *
 * The actions are applied to a copy of the profile which replaces the stored one only when all of them
 * succeeded and it validates, so a failing edit leaves the store as it was.
 */
#include <string.h>

#include "ak_edit.h"
#include "ak_rotate.h"
#include "ak_smem.h"
#include "ak_util.h"

struct ak_edit *
ak_edit_new(const char *profile)
{
	struct ak_edit *e;

	if (profile == NULL || (e = ak_smem_alloc(sizeof(*e))) == NULL)
		return NULL;
	if ((e->profile = ak_smem_strdup(profile)) == NULL) {
		ak_smem_free(e);
		return NULL;
	}
	return e;
}

void
ak_edit_free(struct ak_edit *e)
{
	size_t i;

	if (e == NULL)
		return;
	for (i = 0; i < e->n; i++) {
		ak_smem_free(e->a[i].arg);
		ak_smem_free(e->a[i].value); /* wipes: may be a secret */
	}
	ak_smem_free(e->profile);
	ak_smem_free(e);
}

enum ak_err
ak_edit_add(struct ak_edit *e, uint8_t kind, const char *arg, const char *value)
{
	struct ak_edit_action *a;
	int64_t secs;
	enum ak_err r;

	if (e == NULL || arg == NULL)
		return AK_ERR_INVALID;
	if (value == NULL)
		value = "";
	if (e->n == AK_EDIT_MAX)
		return AK_ERR_TOO_LARGE;
	/* A rename or copy ends the edit: what follows would not say which profile it changes. */
	if (e->n > 0 && (e->a[e->n - 1].kind == AK_EDIT_RENAME || e->a[e->n - 1].kind == AK_EDIT_COPY))
		return AK_ERR_INVALID;
	switch (kind) {
	case AK_EDIT_SET_VAR:
	case AK_EDIT_SET_SECRET:
	case AK_EDIT_UNSET:
		if ((r = ak_varname_check(arg)) != AK_OK)
			return r;
		if (strnlen(value, AK_VALUE_MAX + 1) > AK_VALUE_MAX)
			return AK_ERR_TOO_LARGE;
		if (kind == AK_EDIT_SET_SECRET && value[0] == '\0')
			return AK_ERR_EMPTY;
		if (kind == AK_EDIT_UNSET && value[0] != '\0')
			return AK_ERR_INVALID;
		break;
	case AK_EDIT_DESCRIPTION:
	case AK_EDIT_PROVIDER:
		if (strnlen(arg, AK_TEXT_MAX + 1) > AK_TEXT_MAX)
			return AK_ERR_TOO_LARGE;
		if (value[0] != '\0')
			return AK_ERR_INVALID;
		break;
	case AK_EDIT_RENAME:
	case AK_EDIT_COPY:
		if ((r = ak_name_check(arg)) != AK_OK)
			return r;
		if (value[0] != '\0')
			return AK_ERR_INVALID;
		break;
	case AK_EDIT_ROTATE:
	case AK_EDIT_GRACE:
	case AK_EDIT_ROLLBACK:
	case AK_EDIT_FINISH:
		/* "" names the main secret: a client without the profile at hand need not know its variable. */
		if (arg[0] != '\0' && (r = ak_varname_check(arg)) != AK_OK)
			return r;
		if (strnlen(value, AK_VALUE_MAX + 1) > AK_VALUE_MAX)
			return AK_ERR_TOO_LARGE;
		if (kind == AK_EDIT_ROTATE && value[0] == '\0')
			return AK_ERR_EMPTY;
		if (kind == AK_EDIT_GRACE && ak_rot_secs_parse(value, &secs) != AK_OK)
			return AK_ERR_INVALID;
		if (kind == AK_EDIT_ROLLBACK && value[0] != '\0')
			return AK_ERR_INVALID;
		if (kind == AK_EDIT_FINISH && value[0] != '\0' && strcmp(value, AK_FINISH_DEACTIVATED) != 0)
			return AK_ERR_INVALID;
		break;
	case AK_EDIT_ROTATE_EVERY:
	case AK_EDIT_LIFETIME:
		if (ak_rot_secs_parse(arg, &secs) != AK_OK || value[0] != '\0')
			return AK_ERR_INVALID;
		break;
	case AK_EDIT_CONFIRM:
		if ((strcmp(arg, "0") != 0 && strcmp(arg, "1") != 0) || value[0] != '\0')
			return AK_ERR_INVALID;
		break;
	case AK_EDIT_DEACTIVATE:
		/* Only the main secret is a provider's key an admin API knows. */
		if (arg[0] != '\0' || value[0] != '\0')
			return AK_ERR_INVALID;
		break;
	default:
		return AK_ERR_INVALID;
	}
	a = &e->a[e->n];
	if ((a->arg = ak_smem_strdup(arg)) == NULL || (a->value = ak_smem_strdup(value)) == NULL) {
		ak_smem_free(a->arg);
		a->arg = NULL;
		return AK_ERR_NOMEM;
	}
	a->kind = kind;
	e->n++;
	return AK_OK;
}

/* One field action on p (a copy). */
static enum ak_err
apply_one(struct ak_profile *p, const struct ak_edit_action *a)
{
	switch (a->kind) {
	case AK_EDIT_SET_VAR:
	case AK_EDIT_SET_SECRET:
	case AK_EDIT_UNSET:
		/* The main secret changes only by add --force or rotation: never made plain or dropped. */
		if (strcmp(a->arg, p->secret_var) == 0)
			return AK_ERR_INVALID;
		if (a->kind == AK_EDIT_UNSET)
			return ak_profile_unset_var(p, a->arg);
		return ak_profile_put_var(p, a->arg, a->value, a->kind == AK_EDIT_SET_SECRET);
	case AK_EDIT_DESCRIPTION:
		return ak_profile_set_field(&p->description, a->arg);
	case AK_EDIT_PROVIDER:
		return ak_profile_set_field(&p->provider, a->arg);
	case AK_EDIT_ROTATE:
	case AK_EDIT_GRACE:
	case AK_EDIT_ROLLBACK:
	case AK_EDIT_FINISH:
	case AK_EDIT_ROTATE_EVERY:
	case AK_EDIT_DEACTIVATE:
		return ak_rot_apply(p, a->kind, a->arg, a->value, ak_now_s());
	case AK_EDIT_CONFIRM:
		p->confirm = strcmp(a->arg, "1") == 0;
		return AK_OK;
	case AK_EDIT_LIFETIME: {
		int64_t secs;
		enum ak_err r;

		if ((r = ak_rot_secs_parse(a->arg, &secs)) != AK_OK)
			return r;
		if (secs > AK_DURATION_MAX_S)
			return AK_ERR_INVALID;
		p->lifetime = secs;
		return AK_OK;
	}
	default:
		return AK_ERR_INVALID;
	}
}

enum ak_err
ak_edit_apply(struct ak_store *s, void *arg)
{
	const struct ak_edit *e = arg;
	const struct ak_edit_action *last;
	struct ak_profile *cur, *p = NULL;
	int64_t every, lifetime;
	int confirm;
	size_t i, nfields;
	enum ak_err r;

	if (s == NULL || e == NULL || e->n == 0)
		return AK_ERR_INVALID;
	if ((cur = ak_store_find(s, e->profile)) == NULL)
		return AK_ERR_NO_PROFILE;
	last = &e->a[e->n - 1];
	nfields = e->n;
	if (last->kind == AK_EDIT_RENAME || last->kind == AK_EDIT_COPY) {
		nfields--;
		/* Refuse before changing anything: the edit is all or nothing. */
		if (ak_store_find(s, last->arg) != NULL)
			return AK_ERR_PROFILE_EXISTS;
	}
	if (nfields > 0) {
		if ((p = ak_profile_dup(cur)) == NULL)
			return AK_ERR_NOMEM;
		for (i = 0; i < nfields; i++)
			if ((r = apply_one(p, &e->a[i])) != AK_OK)
				goto out;
		/* Same name, same main secret: ak_store_put keeps both times. It also keeps the old
		 * rotation policy for a replacement without one (add --force, pull): an edit says exactly
		 * what the policy is, so set it again after. */
		every = p->rotate_every;
		confirm = p->confirm;
		lifetime = p->lifetime;
		if ((r = ak_store_put(s, p, 1)) != AK_OK)
			goto out;
		p->rotate_every = every;
		p->confirm = confirm;
		p->lifetime = lifetime;
		p = NULL;
	}
	r = AK_OK;
	if (nfields < e->n)
		r = ak_store_rename(s, e->profile, last->arg, last->kind == AK_EDIT_COPY);
out:
	ak_profile_free(p);
	return r;
}
