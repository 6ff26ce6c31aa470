/* rotate.c - previous values after a rotation, their grace deadlines, and the rotation policy
 * (ak_rotate.h). Every value handled here is a secret in the arena and is wiped where it dies.
 */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "ak_edit.h"
#include "ak_rotate.h"
#include "ak_smem.h"
#include "ak_util.h"

#define ROT_TIME_LIMIT 9007199254740992.0 /* 2^53: what a JSON number (a double) holds exactly */

/* Times travel as JSON numbers (doubles): keep them where a double is exact. */

void
ak_rot_clear(struct ak_rot *r)
{
	if (r == NULL)
		return;
	ak_smem_free(r->prev); /* wipes */
	ak_smem_free(r->hint); /* part of the key */
	r->prev = NULL;
	r->hint = NULL;
	r->at = 0;
	r->until = 0;
}

enum ak_err
ak_rot_copy(struct ak_rot *dst, const struct ak_rot *src)
{
	memset(dst, 0, sizeof(*dst));
	if (src->prev == NULL && src->hint == NULL)
		return AK_OK;
	if (src->prev != NULL && (dst->prev = ak_smem_strdup(src->prev)) == NULL)
		return AK_ERR_NOMEM;
	if (src->hint != NULL && (dst->hint = ak_smem_strdup(src->hint)) == NULL) {
		ak_rot_clear(dst);
		return AK_ERR_NOMEM;
	}
	dst->at = src->at;
	dst->until = src->until;
	return AK_OK;
}

static int
time_ok(int64_t t)
{
	return t >= -(int64_t)ROT_TIME_LIMIT && t <= (int64_t)ROT_TIME_LIMIT;
}

enum ak_err
ak_rot_check(const struct ak_rot *r)
{
	if (r->hint != NULL && ak_rot_hint_check(r->hint) != AK_OK)
		return AK_ERR_INVALID;
	if (r->prev == NULL)
		return r->hint == NULL || (time_ok(r->at) && time_ok(r->until)) ? AK_OK : AK_ERR_INVALID;
	if (r->prev[0] == '\0')
		return AK_ERR_EMPTY;
	if (strnlen(r->prev, AK_VALUE_MAX + 1) > AK_VALUE_MAX)
		return AK_ERR_TOO_LARGE;
	if (!time_ok(r->at) || !time_ok(r->until))
		return AK_ERR_INVALID;
	return AK_OK;
}

/* Strict like the rest of the document: the three fields, each once, and the optional "deactivate"
 * hint (without which "value" is required). */
enum ak_err
ak_rot_from_json(const struct cJSON *it, struct ak_rot *r)
{
	const cJSON *f, *value = NULL, *at = NULL, *until = NULL, *hint = NULL;
	const cJSON **slot;
	struct ak_rot tmp;

	if (!cJSON_IsObject(it))
		return AK_ERR_BAD_FORMAT;
	cJSON_ArrayForEach(f, it) {
		if (f->string == NULL)
			return AK_ERR_BAD_FORMAT;
		if (strcmp(f->string, "value") == 0)
			slot = &value;
		else if (strcmp(f->string, "rotated") == 0)
			slot = &at;
		else if (strcmp(f->string, "until") == 0)
			slot = &until;
		else if (strcmp(f->string, "deactivate") == 0)
			slot = &hint;
		else
			return AK_ERR_BAD_FORMAT;
		if (*slot != NULL)
			return AK_ERR_BAD_FORMAT;
		*slot = f;
	}
	if ((value == NULL && hint == NULL) || at == NULL || until == NULL ||
	    (value != NULL && (!cJSON_IsString(value) || value->valuestring == NULL)) ||
	    (hint != NULL && (!cJSON_IsString(hint) || hint->valuestring == NULL ||
	    ak_rot_hint_check(hint->valuestring) != AK_OK)))
		return AK_ERR_BAD_FORMAT;
	memset(&tmp, 0, sizeof(tmp));
	if (ak_store_json_time(at, &tmp.at) != AK_OK || ak_store_json_time(until, &tmp.until) != AK_OK)
		return AK_ERR_BAD_FORMAT;
	if (value != NULL && (strnlen(value->valuestring, AK_VALUE_MAX + 1) > AK_VALUE_MAX ||
	    value->valuestring[0] == '\0'))
		return AK_ERR_BAD_FORMAT;
	if (value != NULL && (tmp.prev = ak_smem_strdup(value->valuestring)) == NULL)
		return AK_ERR_NOMEM;
	if (hint != NULL && (tmp.hint = ak_smem_strdup(hint->valuestring)) == NULL) {
		ak_rot_clear(&tmp);
		return AK_ERR_NOMEM;
	}
	ak_rot_clear(r);
	*r = tmp;
	return AK_OK;
}

/* The value and previous record var names in p: the main secret or a secret variable. */
static enum ak_err
target(struct ak_profile *p, const char *var, char ***val, struct ak_rot **rot)
{
	struct ak_var *v;

	if (var[0] == '\0' || strcmp(var, p->secret_var) == 0) {
		*val = &p->secret;
		*rot = &p->rot;
		return AK_OK;
	}
	if ((v = ak_profile_find_var(p, var)) == NULL)
		return AK_ERR_NO_VAR;
	/* A plain variable has nothing to rotate: its value is not a credential we keep like one. */
	if (!v->secret)
		return AK_ERR_INVALID;
	*val = &v->value;
	*rot = &v->rot;
	return AK_OK;
}

enum ak_err
ak_rot_apply(struct ak_profile *p, uint8_t kind, const char *var, const char *value, int64_t now)
{
	struct ak_rot *rot;
	char **val, *n, *t;
	int64_t secs;
	enum ak_err r;

	if (p == NULL || var == NULL || value == NULL)
		return AK_ERR_INVALID;
	if (kind == AK_EDIT_ROTATE_EVERY) {
		if (ak_rot_secs_parse(var, &secs) != AK_OK || secs > AK_DURATION_MAX_S)
			return AK_ERR_INVALID;
		p->rotate_every = secs;
		return AK_OK;
	}
	if ((r = target(p, var, &val, &rot)) != AK_OK)
		return r;
	if (kind == AK_EDIT_DEACTIVATE) {
		char h[AK_ROT_HINT_MAX];

		if (rot != &p->rot)
			return AK_ERR_INVALID;
		if (rot->prev == NULL)
			return AK_ERR_NO_PREVIOUS;
		if ((r = ak_rot_hint(rot->prev, h, sizeof(h))) != AK_OK)
			return r;
		n = ak_smem_strdup(h);
		sodium_memzero(h, sizeof(h));
		if (n == NULL)
			return AK_ERR_NOMEM;
		ak_smem_free(rot->hint);
		rot->hint = n;
		return AK_OK;
	}
	switch (kind) {
	case AK_EDIT_ROTATE:
		if (value[0] == '\0')
			return AK_ERR_EMPTY;
		if (ak_secret_equal(*val, value))
			return AK_ERR_SAME_SECRET;
		if ((n = ak_smem_strdup(value)) == NULL)
			return AK_ERR_NOMEM;
		/* A previous value still kept from an earlier rotation is superseded: wiped (and so is a
		 * deactivation asked for it: the caller refuses a rotation while one is pending). */
		ak_smem_free(rot->prev);
		ak_smem_free(rot->hint);
		rot->hint = NULL;
		rot->prev = *val;
		*val = n;
		rot->at = now;
		rot->until = now + AK_GRACE_DEFAULT_S;
		return AK_OK;
	case AK_EDIT_GRACE:
		if (rot->prev == NULL)
			return AK_ERR_NO_PREVIOUS;
		if (ak_rot_secs_parse(value, &secs) != AK_OK || secs > AK_DURATION_MAX_S)
			return AK_ERR_INVALID;
		rot->until = now + secs;
		return AK_OK;
	case AK_EDIT_ROLLBACK:
		if (rot->prev == NULL)
			return AK_ERR_NO_PREVIOUS;
		/* The key kept now is the new one: the deactivation asked for the old one no longer fits. */
		ak_smem_free(rot->hint);
		rot->hint = NULL;
		t = *val;
		*val = rot->prev;
		rot->prev = t;
		rot->at = now;
		return AK_OK;
	case AK_EDIT_FINISH:
		/* A deactivation asked for the old key outlives a plain finish (it becomes pending, as at
		 * the end of the grace): only one that reports the provider did it ends it. */
		if (strcmp(value, AK_FINISH_DEACTIVATED) == 0) {
			if (rot->prev == NULL && rot->hint == NULL)
				return AK_ERR_NO_PREVIOUS;
			ak_rot_clear(rot);
			return AK_OK;
		}
		if (rot->prev == NULL)
			return rot->hint != NULL ? AK_ERR_DEACT_PENDING : AK_ERR_NO_PREVIOUS;
		if (rot->hint == NULL) {
			ak_rot_clear(rot);
			return AK_OK;
		}
		ak_smem_free(rot->prev);
		rot->prev = NULL;
		return AK_OK;
	default:
		return AK_ERR_INVALID;
	}
}

static size_t
expire_one(struct ak_rot *r, int64_t now)
{
	if (r->prev == NULL || r->until > now)
		return 0;
	if (r->hint != NULL) {
		/* The agent never touches the network: the key goes, its hint stays until a finish
		 * deactivates it at the provider. */
		ak_smem_free(r->prev);
		r->prev = NULL;
		return 1;
	}
	ak_rot_clear(r);
	return 1;
}

size_t
ak_store_expire(struct ak_store *s, int64_t now)
{
	size_t i, j, n = 0;

	if (s == NULL)
		return 0;
	for (i = 0; i < s->n; i++) {
		struct ak_profile *p = s->p[i];
		int64_t d = ak_profile_next_expiry(p);

		if (d == 0 || d > now)
			continue;
		/* A profile the agent's snapshot shares is copied before it changes. Out of memory, it
		 * keeps its previous keys until the next write tries again. */
		if ((p = ak_store_own(s, p->name)) == NULL)
			continue;
		n += expire_one(&p->rot, now);
		for (j = 0; j < p->nvars; j++)
			n += expire_one(&p->vars[j].rot, now);
	}
	return n;
}

static int64_t
earlier(int64_t d, const struct ak_rot *r)
{
	if (r->prev == NULL)
		return d;
	return d == 0 || r->until < d ? r->until : d;
}

int64_t
ak_profile_next_expiry(const struct ak_profile *p)
{
	int64_t d = 0;
	size_t j;

	if (p == NULL)
		return 0;
	d = earlier(d, &p->rot);
	for (j = 0; j < p->nvars; j++)
		d = earlier(d, &p->vars[j].rot);
	return d;
}

int64_t
ak_store_next_expiry(const struct ak_store *s)
{
	int64_t d = 0, e;
	size_t i;

	if (s == NULL)
		return 0;
	for (i = 0; i < s->n; i++)
		if ((e = ak_profile_next_expiry(s->p[i])) != 0 && (d == 0 || e < d))
			d = e;
	return d;
}

/* Swap a copy's value for its previous one when that is still in its grace. Returns 1 if swapped. */
static int
serve_previous(char **val, struct ak_rot *r, int64_t now)
{
	char *t;

	if (r->prev == NULL || r->until <= now)
		return 0;
	t = *val;
	*val = r->prev;
	r->prev = t;
	return 1;
}

enum ak_err
ak_profile_previous_view(const struct ak_profile *p, int64_t now, struct ak_profile **out)
{
	struct ak_profile *v;
	size_t j;
	int n;

	*out = NULL;
	if ((v = ak_profile_dup(p)) == NULL)
		return AK_ERR_NOMEM;
	n = serve_previous(&v->secret, &v->rot, now);
	for (j = 0; j < v->nvars; j++)
		n += serve_previous(&v->vars[j].value, &v->vars[j].rot, now);
	/* The copy goes out as a plain profile: it carries no previous value of its own. */
	ak_rot_clear(&v->rot);
	for (j = 0; j < v->nvars; j++)
		ak_rot_clear(&v->vars[j].rot);
	if (n == 0) {
		ak_profile_free(v);
		return AK_ERR_NO_PREVIOUS;
	}
	*out = v;
	return AK_OK;
}

int
ak_rot_due(int64_t rotated, int64_t every, int64_t now)
{
	int64_t end, warn;

	if (every <= 0)
		return 0;
	end = rotated + every;
	if (now >= end)
		return 2;
	warn = every / 10;
	if (warn > 7 * 24 * 3600)
		warn = 7 * 24 * 3600;
	return now >= end - warn ? 1 : 0;
}

enum ak_err
ak_rot_secs_parse(const char *s, int64_t *secs)
{
	int64_t v = 0;
	size_t i;

	if (s == NULL || s[0] == '\0')
		return AK_ERR_INVALID;
	for (i = 0; s[i] != '\0'; i++) {
		if (i >= 12 || s[i] < '0' || s[i] > '9')
			return AK_ERR_INVALID;
		v = v * 10 + (s[i] - '0');
	}
	*secs = v;
	return AK_OK;
}

/* The hint keeps the vendor prefix, 3 more characters and the last 4, as Anthropic's
 * partial_key_hint shows a key. The prefix is counted in dashes, not guessed from the characters:
 * the random part of a key may itself hold lower-case letters and dashes. */
enum ak_err
ak_rot_hint(const char *key, char *out, size_t outlen)
{
	static const struct { const char *start; unsigned dashes; } vendors[] = {
		{ "sk-ant-", 3 },     /* sk-ant-api03-, sk-ant-admin01- */
		{ "sk-proj-", 2 },
		{ "sk-svcacct-", 2 },
		{ "sk-admin-", 2 },
		{ "sk-", 1 },
	};
	size_t len = strlen(key), i, pre = 0, v;
	unsigned dashes = 0;

	for (v = 0; v < sizeof(vendors) / sizeof(vendors[0]); v++)
		if (strncmp(key, vendors[v].start, strlen(vendors[v].start)) == 0)
			break;
	for (i = 0; v < sizeof(vendors) / sizeof(vendors[0]) && i < len && i < 24; i++) {
		if (key[i] == '-' && ++dashes == vendors[v].dashes) {
			pre = i + 1;
			break;
		}
	}
	/* At least 8 characters stay hidden, or the hint gives away too much of the key. */
	if (len < pre + 3 + 4 + 8 || outlen < pre + 3 + 3 + 4 + 1)
		return AK_ERR_INVALID;
	for (i = 0; i < len; i++)
		if ((unsigned char)key[i] <= 0x20 || (unsigned char)key[i] >= 0x7f)
			return AK_ERR_INVALID;
	memcpy(out, key, pre + 3);
	memcpy(out + pre + 3, "...", 3);
	memcpy(out + pre + 6, key + len - 4, 5);
	return AK_OK;
}

enum ak_err
ak_rot_hint_check(const char *hint)
{
	const char *dots;
	size_t i, len = strnlen(hint, AK_ROT_HINT_MAX);

	if (len == 0 || len >= AK_ROT_HINT_MAX || (dots = strstr(hint, "...")) == NULL || dots == hint ||
	    strlen(dots + 3) == 0 || strstr(dots + 3, "...") != NULL)
		return AK_ERR_INVALID;
	for (i = 0; i < len; i++)
		if ((unsigned char)hint[i] <= 0x20 || (unsigned char)hint[i] >= 0x7f)
			return AK_ERR_INVALID;
	return AK_OK;
}

int
ak_rot_hint_match(const char *hint, const char *key)
{
	const char *dots;
	size_t pre, suf, len = strlen(key);

	if (ak_rot_hint_check(hint) != AK_OK)
		return 0;
	dots = strstr(hint, "...");
	pre = (size_t)(dots - hint);
	suf = strlen(dots + 3);
	return len >= pre + suf && strncmp(key, hint, pre) == 0 && strcmp(key + len - suf, dots + 3) == 0;
}
