/* profile.c - profiles and the store in memory, and the plaintext JSON document they travel in.
 *
 * Everything here is secret (names included) and lives in the secure arena: structs, pointer arrays and
 * strings are ak_smem allocations, wiped when freed. The JSON goes through cJSON, which the caller has
 * pointed at the arena with ak_smem_hook_cjson(), so every buffer cJSON holds is wiped too.
 *
 * Parsing is strict and total: an unknown, missing, duplicated or mistyped field, a name that fails
 * its syntax check, an oversize value, a string with a NUL in it, or two profiles with one name make
 * the whole document AK_ERR_BAD_FORMAT, and nothing half-built is returned.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "ak_buf.h"
#include "ak_jsonw.h"
#include "ak_rotate.h"
#include "ak_smem.h"
#include "ak_store.h"
#include "ak_util.h"

/* Times travel as JSON numbers (doubles): keep them where a double is exact. */
#define AK_TIME_LIMIT 9007199254740992.0 /* 2^53 */

/* Profiles ------------------------------------------------------------------------------------------ */

struct ak_profile *
ak_profile_new(void)
{
	struct ak_profile *p;

	if ((p = ak_smem_alloc(sizeof(*p))) == NULL)
		return NULL;
	p->name = ak_smem_strdup("");
	p->provider = ak_smem_strdup("");
	p->secret_var = ak_smem_strdup("");
	p->secret = ak_smem_strdup("");
	p->description = ak_smem_strdup("");
	p->source = ak_smem_strdup("");
	if (p->name == NULL || p->provider == NULL || p->secret_var == NULL || p->secret == NULL ||
	    p->description == NULL || p->source == NULL) {
		ak_profile_free(p);
		return NULL;
	}
	return p;
}

/* 1 when q lies in p's own block past the struct (its pack). */
static int
in_pack(const struct ak_profile *p, const void *q)
{
	const char *b = (const char *)(p + 1);

	return p->pack != 0 && (const char *)q >= b && (const char *)q < b + p->pack;
}

/* A field's own allocation freed; one inside the pack goes (wiped) with the pack. */
static void
field_free(const struct ak_profile *p, void *q)
{
	if (!in_pack(p, q))
		ak_smem_free(q);
}

/* Copes with a half-built profile (any pointer NULL): the parser and dup free those too. */
void
ak_profile_free(struct ak_profile *p)
{
	size_t i;

	if (p == NULL)
		return;
	/* Another store still holds it: drop our hold only. (0 means we were the only holder; the
	 * count then wraps, but the struct is wiped and freed below.) */
	if (__atomic_fetch_sub(&p->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	field_free(p, p->name);
	field_free(p, p->provider);
	field_free(p, p->secret_var);
	field_free(p, p->secret);
	field_free(p, p->description);
	field_free(p, p->source);
	if (p->vars != NULL) {
		for (i = 0; i < p->nvars; i++) {
			field_free(p, p->vars[i].name);
			field_free(p, p->vars[i].value);
			ak_rot_clear(&p->vars[i].rot);
		}
		field_free(p, p->vars);
	}
	ak_rot_clear(&p->rot);
	/* Wipes the times and counts too, and a pack's strings. */
	if (p->pack != 0)
		ak_smem_pack_free(p);
	else
		ak_smem_free(p);
}

struct ak_profile *
ak_profile_dup(const struct ak_profile *src)
{
	struct ak_profile *p;
	size_t i;

	if (src == NULL || (p = ak_smem_alloc(sizeof(*p))) == NULL)
		return NULL;
	p->created = src->created;
	p->rotated = src->rotated;
	p->rotate_every = src->rotate_every;
	p->confirm = src->confirm;
	p->lifetime = src->lifetime;
	p->wipe_at = src->wipe_at;
	p->expired = src->expired;
	if (ak_rot_copy(&p->rot, &src->rot) != AK_OK)
		goto fail;
	if ((p->name = ak_smem_strdup(src->name ? src->name : "")) == NULL ||
	    (p->provider = ak_smem_strdup(src->provider ? src->provider : "")) == NULL ||
	    (p->secret_var = ak_smem_strdup(src->secret_var ? src->secret_var : "")) == NULL ||
	    (p->secret = ak_smem_strdup(src->secret ? src->secret : "")) == NULL ||
	    (p->description = ak_smem_strdup(src->description ? src->description : "")) == NULL ||
	    (p->source = ak_smem_strdup(src->source ? src->source : "")) == NULL)
		goto fail;
	if (src->nvars > 0) {
		if ((p->vars = ak_smem_alloc(src->nvars * sizeof(*p->vars))) == NULL)
			goto fail;
		/* nvars counts the slots allocated so far, so free() sees only what exists. */
		for (i = 0; i < src->nvars; i++) {
			p->nvars = i + 1;
			p->vars[i].name = ak_smem_strdup(src->vars[i].name ? src->vars[i].name : "");
			p->vars[i].value = ak_smem_strdup(src->vars[i].value ? src->vars[i].value : "");
			p->vars[i].secret = src->vars[i].secret;
			if (p->vars[i].name == NULL || p->vars[i].value == NULL ||
			    ak_rot_copy(&p->vars[i].rot, &src->vars[i].rot) != AK_OK)
				goto fail;
		}
	}
	return p;
fail:
	ak_profile_free(p);
	return NULL;
}

/* s may be a secret: the copy lives in the arena, the old value is wiped. The caller wipes s. */
enum ak_err
ak_profile_set_field(char **field, const char *s)
{
	char *n;

	if (field == NULL || s == NULL)
		return AK_ERR_INVALID;
	if ((n = ak_smem_strdup(s)) == NULL)
		return AK_ERR_NOMEM;
	ak_smem_free(*field);
	*field = n;
	return AK_OK;
}

/* The caller wipes name and value; the profile keeps arena copies. */
enum ak_err
ak_profile_put_var(struct ak_profile *p, const char *name, const char *value, int secret)
{
	struct ak_var *nv;
	char *nn = NULL, *vv = NULL;
	size_t i;
	enum ak_err r;

	if (p == NULL || name == NULL || value == NULL)
		return AK_ERR_INVALID;
	if ((r = ak_varname_check(name)) != AK_OK)
		return r;
	if (strnlen(value, AK_VALUE_MAX + 1) > AK_VALUE_MAX)
		return AK_ERR_TOO_LARGE;
	if ((vv = ak_smem_strdup(value)) == NULL)
		return AK_ERR_NOMEM;
	for (i = 0; i < p->nvars; i++) {
		if (strcmp(p->vars[i].name, name) == 0) {
			ak_smem_free(p->vars[i].value);
			p->vars[i].value = vv;
			p->vars[i].secret = secret != 0;
			/* A value set outright is not a rotation: no previous one outlives it. */
			ak_rot_clear(&p->vars[i].rot);
			return AK_OK;
		}
	}
	if (p->nvars >= AK_VARS_MAX) {
		ak_smem_free(vv);
		return AK_ERR_TOO_LARGE;
	}
	/* At most AK_VARS_MAX entries: grow one at a time, the arena has no realloc. */
	if ((nn = ak_smem_strdup(name)) == NULL ||
	    (nv = ak_smem_alloc((p->nvars + 1) * sizeof(*nv))) == NULL) {
		ak_smem_free(nn);
		ak_smem_free(vv);
		return AK_ERR_NOMEM;
	}
	if (p->nvars > 0)
		memcpy(nv, p->vars, p->nvars * sizeof(*nv));
	nv[p->nvars].name = nn;
	nv[p->nvars].value = vv;
	nv[p->nvars].secret = secret != 0;
	memset(&nv[p->nvars].rot, 0, sizeof(nv[p->nvars].rot));
	if (in_pack(p, p->vars))
		sodium_memzero(p->vars, p->nvars * sizeof(*p->vars)); /* its bytes go with the pack */
	else
		ak_smem_free(p->vars);
	p->vars = nv;
	p->nvars++;
	return AK_OK;
}

enum ak_err
ak_profile_set_var(struct ak_profile *p, const char *name, const char *value)
{
	return ak_profile_put_var(p, name, value, 0);
}

struct ak_var *
ak_profile_find_var(const struct ak_profile *p, const char *name)
{
	size_t i;

	if (p == NULL || name == NULL)
		return NULL;
	for (i = 0; i < p->nvars; i++)
		if (strcmp(p->vars[i].name, name) == 0)
			return &p->vars[i];
	return NULL;
}

const char *
ak_profile_plain_value(const struct ak_profile *p, const char *name)
{
	const struct ak_var *v = ak_profile_find_var(p, name);

	return v != NULL && !v->secret ? v->value : NULL;
}

/* The slot array keeps its size (the arena has no realloc); the removed entry is wiped. */
enum ak_err
ak_profile_unset_var(struct ak_profile *p, const char *name)
{
	size_t i;

	if (p == NULL || name == NULL)
		return AK_ERR_INVALID;
	for (i = 0; i < p->nvars; i++)
		if (strcmp(p->vars[i].name, name) == 0)
			break;
	if (i == p->nvars)
		return AK_ERR_NO_VAR;
	ak_smem_free(p->vars[i].name);
	ak_smem_free(p->vars[i].value);
	ak_rot_clear(&p->vars[i].rot);
	memmove(&p->vars[i], &p->vars[i + 1], (p->nvars - i - 1) * sizeof(*p->vars));
	p->nvars--;
	memset(&p->vars[p->nvars], 0, sizeof(*p->vars));
	return AK_OK;
}

static int
too_long(const char *s, size_t max)
{
	return strnlen(s, max + 1) > max;
}

static int
time_ok(int64_t t)
{
	return t >= -(int64_t)AK_TIME_LIMIT && t <= (int64_t)AK_TIME_LIMIT;
}

enum ak_err
ak_profile_validate(const struct ak_profile *p)
{
	size_t i, j;
	enum ak_err r;

	if (p == NULL || p->name == NULL || p->provider == NULL || p->secret_var == NULL ||
	    p->secret == NULL || p->description == NULL || p->source == NULL ||
	    (p->nvars > 0 && p->vars == NULL))
		return AK_ERR_INVALID;
	if ((r = ak_name_check(p->name)) != AK_OK)
		return r;
	if ((r = ak_varname_check(p->secret_var)) != AK_OK)
		return r;
	if (p->secret[0] == '\0')
		return AK_ERR_EMPTY;
	if (too_long(p->secret, AK_VALUE_MAX) || too_long(p->provider, AK_TEXT_MAX) ||
	    too_long(p->description, AK_TEXT_MAX) || too_long(p->source, AK_TEXT_MAX))
		return AK_ERR_TOO_LARGE;
	if (!time_ok(p->created) || !time_ok(p->rotated) || p->rotate_every < 0 ||
	    p->rotate_every > AK_DURATION_MAX_S || p->lifetime < 0 || p->lifetime > AK_DURATION_MAX_S)
		return AK_ERR_INVALID;
	if ((r = ak_rot_check(&p->rot)) != AK_OK)
		return r;
	if (p->nvars > AK_VARS_MAX)
		return AK_ERR_TOO_LARGE;
	for (i = 0; i < p->nvars; i++) {
		if (p->vars[i].name == NULL || p->vars[i].value == NULL)
			return AK_ERR_INVALID;
		if ((r = ak_varname_check(p->vars[i].name)) != AK_OK)
			return r;
		if (too_long(p->vars[i].value, AK_VALUE_MAX))
			return AK_ERR_TOO_LARGE;
		if ((r = ak_rot_check(&p->vars[i].rot)) != AK_OK)
			return r;
		if (p->vars[i].rot.prev != NULL && !p->vars[i].secret)
			return AK_ERR_INVALID;
		/* One value per variable name, or the exported environment would depend on order. */
		if (strcmp(p->vars[i].name, p->secret_var) == 0)
			return AK_ERR_INVALID;
		for (j = 0; j < i; j++)
			if (strcmp(p->vars[i].name, p->vars[j].name) == 0)
				return AK_ERR_INVALID;
	}
	return AK_OK;
}

/* Store ----------------------------------------------------------------------------------------------- */

struct ak_store *
ak_store_new(void)
{
	return ak_smem_alloc(sizeof(struct ak_store));
}

void
ak_store_free(struct ak_store *s)
{
	size_t i;

	if (s == NULL)
		return;
	for (i = 0; i < s->n; i++)
		ak_profile_free(s->p[i]);
	ak_smem_free(s->p);
	ak_smem_free(s);
}

struct ak_store *
ak_store_dup(const struct ak_store *s)
{
	struct ak_store *d;

	if (s == NULL || (d = ak_store_new()) == NULL)
		return NULL;
	if (s->n > 0 && (d->p = ak_smem_alloc(s->n * sizeof(*d->p))) == NULL)
		goto fail;
	d->cap = s->n;
	/* n counts the copies made so far, so a failure frees only what exists. */
	for (d->n = 0; d->n < s->n; d->n++)
		if ((d->p[d->n] = ak_profile_dup(s->p[d->n])) == NULL)
			goto fail;
	return d;
fail:
	ak_store_free(d);
	return NULL;
}

struct ak_store *
ak_store_share(const struct ak_store *s)
{
	struct ak_store *d;
	size_t i;

	if (s == NULL || (d = ak_store_new()) == NULL)
		return NULL;
	if (s->n > 0 && (d->p = ak_smem_alloc(s->n * sizeof(*d->p))) == NULL) {
		ak_smem_free(d);
		return NULL;
	}
	d->cap = d->n = s->n;
	for (i = 0; i < s->n; i++) {
		__atomic_add_fetch(&s->p[i]->refs, 1, __ATOMIC_RELAXED);
		d->p[i] = s->p[i];
	}
	return d;
}

/* Index of name, or where it would be inserted (with *found = 0). */
static size_t
store_search(const struct ak_store *s, const char *name, int *found)
{
	size_t lo = 0, hi = s->n, mid;
	int c;

	*found = 0;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		c = strcmp(name, s->p[mid]->name);
		if (c == 0) {
			*found = 1;
			return mid;
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

struct ak_profile *
ak_store_find(const struct ak_store *s, const char *name)
{
	size_t i;
	int found;

	if (s == NULL || name == NULL)
		return NULL;
	i = store_search(s, name, &found);
	return found ? s->p[i] : NULL;
}

struct ak_profile *
ak_store_own(struct ak_store *s, const char *name)
{
	struct ak_profile *p;
	size_t i;
	int found;

	if (s == NULL || name == NULL)
		return NULL;
	i = store_search(s, name, &found);
	if (!found)
		return NULL;
	/* Only one holder: no other store can gain one meanwhile (shares are taken from a store by the
	 * thread that owns it), so it is ours to change. */
	if (__atomic_load_n(&s->p[i]->refs, __ATOMIC_ACQUIRE) == 0)
		return s->p[i];
	if ((p = ak_profile_dup(s->p[i])) == NULL)
		return NULL;
	ak_profile_free(s->p[i]); /* drops our hold on the shared one */
	s->p[i] = p;
	return p;
}

static enum ak_err
store_grow(struct ak_store *s, size_t want)
{
	struct ak_profile **np;
	size_t ncap;

	if (want <= s->cap)
		return AK_OK;
	if (want > AK_PROFILES_MAX)
		return AK_ERR_TOO_LARGE;
	ncap = s->cap < 8 ? 8 : s->cap * 2;
	if (ncap < want)
		ncap = want;
	if (ncap > AK_PROFILES_MAX)
		ncap = AK_PROFILES_MAX;
	if ((np = ak_smem_alloc(ncap * sizeof(*np))) == NULL)
		return AK_ERR_NOMEM;
	if (s->n > 0)
		memcpy(np, s->p, s->n * sizeof(*np));
	ak_smem_free(s->p);
	s->p = np;
	s->cap = ncap;
	return AK_OK;
}

int
ak_secret_equal(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	return la == lb && sodium_memcmp(a, b, la) == 0;
}

/* The profile is validated first so that the store always serializes into a document that parses.
 * Every writer (the agent's ADD, akctl's direct add and import) goes through here, so the times mean
 * the same whoever wrote: `rotated` is when this secret was first stored under this name. */
enum ak_err
ak_store_put(struct ak_store *s, struct ak_profile *p, int replace)
{
	const struct ak_profile *old;
	int64_t now = ak_now_s();
	size_t i;
	int found;
	enum ak_err r;

	if (s == NULL || p == NULL)
		return AK_ERR_INVALID;
	if ((r = ak_profile_validate(p)) != AK_OK)
		return r;
	i = store_search(s, p->name, &found);
	if (found) {
		if (!replace)
			return AK_ERR_PROFILE_EXISTS;
		if (s->p[i] == p)
			return AK_OK;
		old = s->p[i];
		/* A replacement that brings no rotation policy keeps the old one (pull re-adds profiles). */
		if (p->rotate_every == 0)
			p->rotate_every = old->rotate_every;
		/* The same for the use policies: a re-add must not quietly drop a confirmation. */
		if (!p->confirm)
			p->confirm = old->confirm;
		if (p->lifetime == 0)
			p->lifetime = old->lifetime;
		p->created = old->created;
		p->rotated = ak_secret_equal(p->secret, old->secret) ? old->rotated : now;
		ak_profile_free(s->p[i]);
		s->p[i] = p;
		return AK_OK;
	}
	if ((r = store_grow(s, s->n + 1)) != AK_OK)
		return r;
	p->created = p->rotated = now;
	memmove(&s->p[i + 1], &s->p[i], (s->n - i) * sizeof(*s->p));
	s->p[i] = p;
	s->n++;
	return AK_OK;
}

enum ak_err
ak_store_remove(struct ak_store *s, const char *name)
{
	size_t i;
	int found;

	if (s == NULL || name == NULL)
		return AK_ERR_INVALID;
	i = store_search(s, name, &found);
	if (!found)
		return AK_ERR_NO_PROFILE;
	ak_profile_free(s->p[i]);
	memmove(&s->p[i], &s->p[i + 1], (s->n - i - 1) * sizeof(*s->p));
	s->n--;
	s->p[s->n] = NULL;
	return AK_OK;
}

enum ak_err
ak_store_rename(struct ak_store *s, const char *from, const char *to, int copy)
{
	struct ak_profile *src, *p;
	enum ak_err r;
	size_t i;
	int found;

	if (s == NULL || from == NULL || to == NULL)
		return AK_ERR_INVALID;
	if ((r = ak_name_check(to)) != AK_OK)
		return r;
	if ((src = ak_store_find(s, from)) == NULL)
		return AK_ERR_NO_PROFILE;
	if (ak_store_find(s, to) != NULL)
		return AK_ERR_PROFILE_EXISTS;
	if ((p = ak_profile_dup(src)) == NULL)
		return AK_ERR_NOMEM;
	if ((r = ak_profile_set_field(&p->name, to)) != AK_OK || (r = store_grow(s, s->n + 1)) != AK_OK) {
		ak_profile_free(p);
		return r;
	}
	/* The times say when the profile was made and when its secret was stored: a rename changes
	 * neither, a copy is a new profile holding a secret of the original's age. */
	if (copy)
		p->created = ak_now_s();
	i = store_search(s, to, &found);
	memmove(&s->p[i + 1], &s->p[i], (s->n - i) * sizeof(*s->p));
	s->p[i] = p;
	s->n++;
	if (!copy)
		(void)ak_store_remove(s, from);
	return AK_OK;
}

/* Serialize -------------------------------------------------------------------------------------------- */

/* The document is written straight into one secure buffer, in the form cJSON_PrintUnformatted gives (the
 * same keys in the same order, strings escaped the same way, integers as integers): building a cJSON tree
 * first cost two arena allocations a field and made every write of a large store slow. The parser stays
 * cJSON's, and the round trip is what the tests check. */
#define JW_CHUNK 65536u

/* The rotation record: ,"previous":{"value":…,"rotated":…,"until":…,"deactivate":…} when there is
 * one; a pending deactivation keeps only the hint, without "value". */
static void
jw_rot(struct ak_jw *w, const struct ak_rot *r)
{
	if (r->prev == NULL && r->hint == NULL)
		return;
	AK_JW_LIT(w, ",\"previous\":{");
	if (r->prev != NULL) {
		ak_jw_kstr(w, "value", r->prev, 1);
		AK_JW_LIT(w, ",");
	}
	ak_jw_str(w, "rotated");
	AK_JW_LIT(w, ":");
	ak_jw_int(w, r->at);
	ak_jw_kint(w, "until", r->until);
	if (r->hint != NULL)
		ak_jw_kstr(w, "deactivate", r->hint, 0);
	AK_JW_LIT(w, "}");
}

static void
jw_profile(struct ak_jw *w, const struct ak_profile *p)
{
	size_t i;

	AK_JW_LIT(w, "{");
	ak_jw_kstr(w, "name", p->name, 1);
	ak_jw_kstr(w, "provider", p->provider, 0);
	ak_jw_kstr(w, "secret_var", p->secret_var, 0);
	ak_jw_kstr(w, "secret", p->secret, 0);
	ak_jw_kstr(w, "description", p->description, 0);
	ak_jw_kstr(w, "source", p->source, 0);
	ak_jw_kint(w, "created", p->created);
	ak_jw_kint(w, "rotated", p->rotated);
	AK_JW_LIT(w, ",\"vars\":[");
	for (i = 0; i < p->nvars; i++) {
		if (i > 0)
			AK_JW_LIT(w, ",");
		AK_JW_LIT(w, "{");
		ak_jw_kstr(w, "name", p->vars[i].name, 1);
		ak_jw_kstr(w, "value", p->vars[i].value, 0);
		if (p->vars[i].secret)
			AK_JW_LIT(w, ",\"secret\":true");
		jw_rot(w, &p->vars[i].rot);
		AK_JW_LIT(w, "}");
	}
	AK_JW_LIT(w, "]");
	jw_rot(w, &p->rot);
	if (p->rotate_every != 0)
		ak_jw_kint(w, "rotate_every", p->rotate_every);
	if (p->confirm)
		AK_JW_LIT(w, ",\"confirm\":true");
	if (p->lifetime != 0)
		ak_jw_kint(w, "lifetime", p->lifetime);
	AK_JW_LIT(w, "}");
}

/* *out is a secure buffer the caller frees (and thereby wipes) with ak_buf_free. */
enum ak_err
ak_store_serialize_buf(const struct ak_store *s, struct ak_buf **out)
{
	struct ak_jw w;
	size_t i;
	enum ak_err r;

	if (s == NULL || out == NULL)
		return AK_ERR_INVALID;
	*out = NULL;
	/* Never write a document that the parser would refuse. */
	for (i = 0; i < s->n; i++)
		if ((r = ak_profile_validate(s->p[i])) != AK_OK)
			return r;
	ak_jw_init(&w, ak_buf_new_secure(AK_FILE_MAX), JW_CHUNK);
	if (w.b == NULL)
		return AK_ERR_NOMEM;
	/* Room for the whole document up front (escapes aside): growing by doubling would copy and wipe
	 * it a dozen times. */
	{
		size_t est = 64, j;
		uint8_t *room;

		for (i = 0; i < s->n; i++) {
			const struct ak_profile *p = s->p[i];

			est += 256 + strlen(p->name) + strlen(p->provider) + strlen(p->secret_var) +
			    strlen(p->secret) + strlen(p->description) + strlen(p->source) +
			    (p->rot.prev != NULL ? 64 + strlen(p->rot.prev) : 0);
			for (j = 0; j < p->nvars; j++)
				est += 64 + strlen(p->vars[j].name) + strlen(p->vars[j].value) +
				    (p->vars[j].rot.prev != NULL ? 64 + strlen(p->vars[j].rot.prev) : 0);
		}
		if (est < AK_FILE_MAX && ak_buf_reserve(w.b, est, &room) == AK_OK) {
			/* Kept as the writer's first reservation. */
			w.p = room;
			w.room = est;
		}
	}
	AK_JW_LIT(&w, "{\"version\":");
	ak_jw_int(&w, AK_DOC_VERSION);
	AK_JW_LIT(&w, ",\"profiles\":[");
	for (i = 0; i < s->n; i++) {
		if (i > 0)
			AK_JW_LIT(&w, ",");
		jw_profile(&w, s->p[i]);
	}
	AK_JW_LIT(&w, "]}");
	ak_jw_commit(&w);
	if ((r = w.r) != AK_OK)
		goto out;
	*out = w.b;
	w.b = NULL;
out:
	ak_buf_free(w.b); /* wipes: it held every secret */
	return r;
}

/* *out is a secure allocation the caller frees (and thereby wipes) with ak_smem_free. */
enum ak_err
ak_store_serialize(const struct ak_store *s, char **out, size_t *outlen)
{
	struct ak_buf *b = NULL;
	char *copy;
	size_t len;
	enum ak_err r;

	if (s == NULL || out == NULL || outlen == NULL)
		return AK_ERR_INVALID;
	*out = NULL;
	*outlen = 0;
	if ((r = ak_store_serialize_buf(s, &b)) != AK_OK)
		return r;
	len = ak_buf_len(b);
	if ((copy = ak_smem_alloc(len + 1)) == NULL) {
		r = AK_ERR_NOMEM;
		goto out;
	}
	memcpy(copy, ak_buf_ptr(b), len);
	*out = copy;
	*outlen = len;
out:
	ak_buf_free(b); /* wipes: it held every secret */
	return r;
}

/* Parse -------------------------------------------------------------------------------------------------- */

/* 1 if a JSON string in doc contains the escape \u0000: cJSON would decode it to a NUL byte and every
 * C string after it would silently lose its tail. Valid JSON only matters: anything else fails later. */
static int
has_nul_escape(const char *doc, size_t len)
{
	const char *p = doc, *end = doc + len;

	/* Outside strings valid JSON has no backslash, so every one found starts an escape: jump from one
	 * to the next (memchr runs at memory speed over the long plain values) and skip what it escapes. */
	while ((p = memchr(p, '\\', (size_t)(end - p))) != NULL) {
		if (end - p > 5 && p[1] == 'u' && memcmp(p + 2, "0000", 4) == 0)
			return 1;
		p += 2; /* the escaped character cannot start another escape */
		if (p >= end)
			break;
	}
	return 0;
}

/* A string item no longer than max: its value, or NULL. */
static const char *
string_of(const cJSON *it, size_t max)
{
	const char *v;

	if (!cJSON_IsString(it) || (v = it->valuestring) == NULL || too_long(v, max))
		return NULL;
	return v;
}

enum ak_err
ak_store_json_time(const cJSON *it, int64_t *dst)
{
	double d;
	int64_t v;

	if (!cJSON_IsNumber(it))
		return AK_ERR_BAD_FORMAT;
	d = it->valuedouble;
	if (!(d >= -AK_TIME_LIMIT && d <= AK_TIME_LIMIT))
		return AK_ERR_BAD_FORMAT;
	v = (int64_t)d;
	if ((double)v != d)
		return AK_ERR_BAD_FORMAT;
	*dst = v;
	return AK_OK;
}

/* A variable as the document has it, before it is copied into the profile. */
struct var_src {
	const char *name, *value;
	const cJSON *prev;
	int secret;
};

/* The variables' fields, checked (names, sizes, duplicates and a clash with secret_var are left to
 * the one ak_profile_validate of the profile that follows). *n of them, at most AK_VARS_MAX. */
static enum ak_err
collect_vars(const cJSON *arr, struct var_src *vs, size_t *n)
{
	const cJSON *v, *f;
	struct var_src *x;

	*n = 0;
	if (!cJSON_IsArray(arr))
		return AK_ERR_BAD_FORMAT;
	cJSON_ArrayForEach(v, arr) {
		if (*n >= AK_VARS_MAX)
			return AK_ERR_BAD_FORMAT;
		if (!cJSON_IsObject(v))
			return AK_ERR_BAD_FORMAT;
		x = &vs[(*n)++];
		memset(x, 0, sizeof(*x));
		cJSON_ArrayForEach(f, v) {
			if (f->string != NULL && strcmp(f->string, "previous") == 0 && x->prev == NULL) {
				x->prev = f; /* optional: a rotated secret variable's previous value */
				continue;
			}
			if (f->string != NULL && strcmp(f->string, "secret") == 0 && x->secret == 0 &&
			    cJSON_IsBool(f)) {
				/* Optional (document version 2): absent means a plain variable. */
				x->secret = cJSON_IsTrue(f) ? 1 : 2; /* 2: "false", seen */
				continue;
			}
			if (f->string == NULL || !cJSON_IsString(f) || f->valuestring == NULL)
				return AK_ERR_BAD_FORMAT;
			if (strcmp(f->string, "name") == 0 && x->name == NULL)
				x->name = f->valuestring;
			else if (strcmp(f->string, "value") == 0 && x->value == NULL)
				x->value = f->valuestring;
			else
				return AK_ERR_BAD_FORMAT; /* unknown or repeated key */
		}
		if (x->secret == 2)
			x->secret = 0;
		if (x->name == NULL || x->value == NULL || too_long(x->name, AK_VARNAME_MAX) ||
		    too_long(x->value, AK_VALUE_MAX) || (x->prev != NULL && !x->secret))
			return AK_ERR_BAD_FORMAT;
	}
	return AK_OK;
}

/* Copy s (of length len) to *w and move *w past its NUL. */
static char *
pack_str(char **w, const char *s, size_t len)
{
	char *d = *w;

	memcpy(d, s, len + 1);
	*w += len + 1;
	return d;
}

enum pfield {
	PF_NAME, PF_PROVIDER, PF_SECRET_VAR, PF_SECRET, PF_DESCRIPTION, PF_SOURCE, PF_CREATED,
	PF_ROTATED, PF_VARS, PF_PREVIOUS, PF_ROTATE_EVERY, PF_CONFIRM, PF_LIFETIME, PF_COUNT
};
static const char *const pfield_names[PF_COUNT] = {
	"name", "provider", "secret_var", "secret", "description", "source", "created", "rotated", "vars",
	"previous", "rotate_every", "confirm", "lifetime",
};
#define PF_REQUIRED PF_PREVIOUS /* the fields before it are required; the rest are optional */

/* The string fields come first in enum pfield; their size caps. */
#define PF_NSTR (PF_SOURCE + 1)
static const size_t pfield_max[PF_NSTR] = {
	AK_NAME_MAX, AK_TEXT_MAX, AK_VARNAME_MAX, AK_VALUE_MAX, AK_TEXT_MAX, AK_TEXT_MAX,
};

static enum ak_err
parse_profile(const cJSON *o, struct ak_profile **out)
{
	const cJSON *fields[PF_COUNT] = { 0 };
	const cJSON *f;
	const char *str[PF_NSTR];
	size_t len[PF_NSTR], vlen[AK_VARS_MAX][2];
	struct var_src vs[AK_VARS_MAX];
	struct ak_profile *p = NULL;
	size_t k, nv, size = 0;
	char *w;
	enum ak_err r = AK_ERR_BAD_FORMAT;

	*out = NULL;
	if (!cJSON_IsObject(o))
		return AK_ERR_BAD_FORMAT;
	/* Every key known and present exactly once. */
	cJSON_ArrayForEach(f, o) {
		if (f->string == NULL)
			return AK_ERR_BAD_FORMAT;
		/* The first byte first: a tenth of an unlock of 10,000 profiles went to these strcmp calls. */
		for (k = 0; k < PF_COUNT; k++)
			if (f->string[0] == pfield_names[k][0] && strcmp(f->string, pfield_names[k]) == 0)
				break;
		if (k == PF_COUNT || fields[k] != NULL)
			return AK_ERR_BAD_FORMAT;
		fields[k] = f;
	}
	for (k = 0; k < PF_REQUIRED; k++)
		if (fields[k] == NULL)
			return AK_ERR_BAD_FORMAT;
	for (k = 0; k < PF_NSTR; k++) {
		if ((str[k] = string_of(fields[k], pfield_max[k])) == NULL)
			return AK_ERR_BAD_FORMAT;
		len[k] = strlen(str[k]);
		size += len[k] + 1;
	}
	if ((r = collect_vars(fields[PF_VARS], vs, &nv)) != AK_OK)
		return r;
	for (k = 0; k < nv; k++) {
		vlen[k][0] = strlen(vs[k].name);
		vlen[k][1] = strlen(vs[k].value);
		size += vlen[k][0] + 1 + vlen[k][1] + 1;
	}
	/*
	 * One block for the profile, its variables and every string (a pack): ten allocations a profile
	 * were a third of an unlock of 10,000 profiles, and their headers and size classes a third of
	 * the memory it locks. The variables go first, aligned right after the struct.
	 */
	size += sizeof(*p) + nv * sizeof(struct ak_var);
	if ((p = ak_smem_pack_alloc(size)) == NULL)
		return AK_ERR_NOMEM;
	p->pack = size - sizeof(*p);
	w = (char *)(p + 1);
	if (nv > 0) {
		p->vars = (struct ak_var *)(void *)w;
		w += nv * sizeof(struct ak_var);
	}
	p->name = pack_str(&w, str[PF_NAME], len[PF_NAME]);
	p->provider = pack_str(&w, str[PF_PROVIDER], len[PF_PROVIDER]);
	p->secret_var = pack_str(&w, str[PF_SECRET_VAR], len[PF_SECRET_VAR]);
	p->secret = pack_str(&w, str[PF_SECRET], len[PF_SECRET]);
	p->description = pack_str(&w, str[PF_DESCRIPTION], len[PF_DESCRIPTION]);
	p->source = pack_str(&w, str[PF_SOURCE], len[PF_SOURCE]);
	for (k = 0; k < nv; k++) {
		p->vars[k].name = pack_str(&w, vs[k].name, vlen[k][0]);
		p->vars[k].value = pack_str(&w, vs[k].value, vlen[k][1]);
		p->vars[k].secret = vs[k].secret;
	}
	p->nvars = nv;
	for (k = 0; k < nv; k++)
		if (vs[k].prev != NULL && (r = ak_rot_from_json(vs[k].prev, &p->vars[k].rot)) != AK_OK)
			goto out;
	if ((r = ak_store_json_time(fields[PF_CREATED], &p->created)) != AK_OK ||
	    (r = ak_store_json_time(fields[PF_ROTATED], &p->rotated)) != AK_OK ||
	    (fields[PF_PREVIOUS] != NULL && (r = ak_rot_from_json(fields[PF_PREVIOUS], &p->rot)) != AK_OK) ||
	    (fields[PF_ROTATE_EVERY] != NULL &&
	    (r = ak_store_json_time(fields[PF_ROTATE_EVERY], &p->rotate_every)) != AK_OK) ||
	    (fields[PF_LIFETIME] != NULL &&
	    (r = ak_store_json_time(fields[PF_LIFETIME], &p->lifetime)) != AK_OK))
		goto out;
	if (fields[PF_CONFIRM] != NULL) {
		if (!cJSON_IsBool(fields[PF_CONFIRM])) {
			r = AK_ERR_BAD_FORMAT;
			goto out;
		}
		p->confirm = cJSON_IsTrue(fields[PF_CONFIRM]);
	}
	if (ak_profile_validate(p) != AK_OK) {
		r = AK_ERR_BAD_FORMAT;
		goto out;
	}
	*out = p;
	p = NULL;
	r = AK_OK;
out:
	ak_profile_free(p);
	return r;
}

static int
profile_cmp(const void *a, const void *b)
{
	const struct ak_profile *const *pa = a, *const *pb = b;

	return strcmp((*pa)->name, (*pb)->name);
}

/* The version numbers this reader knows. 1: before secret variables, 2: before rotation; each reads as
 * a document without them. */
static int
version_known(const cJSON *v)
{
	return v->valuedouble == 1.0 || v->valuedouble == 2.0 || v->valuedouble == (double)AK_DOC_VERSION;
}

/* The profiles in order, a duplicate name refused. The writer keeps them sorted (one pass checks it,
 * and finds a duplicate); sort anyway when they are not, so find() is right for any valid document. */
static enum ak_err
store_sort(struct ak_store *s)
{
	size_t i;

	for (i = 1; i < s->n && strcmp(s->p[i - 1]->name, s->p[i]->name) < 0; i++)
		;
	if (i >= s->n)
		return AK_OK;
	qsort(s->p, s->n, sizeof(*s->p), profile_cmp);
	for (i = 1; i < s->n; i++)
		if (strcmp(s->p[i - 1]->name, s->p[i]->name) == 0)
			return AK_ERR_BAD_FORMAT;
	return AK_OK;
}

/*
 * The document read one profile at a time. A cJSON tree of the whole store is ~7 times its size
 * (20 MB for 10,000 profiles), every byte of it fresh locked memory that the kernel must fault in, zero
 * and lock; here only the top level (the object, its two keys, the array's brackets and commas) is
 * stepped through by this loop, and every value, each key included, is parsed by cJSON itself
 * (ak_json_parse_one says where it ended). Each profile's tree is converted, then wiped by rewinding
 * the scratch session, whose one region is used again by the next: the parse memory is one profile's.
 *
 * It accepts and refuses exactly what one cJSON parse of the whole document followed by the checks
 * would (ak_store_parse_whole, kept for the tests and the fuzzer to hold it to that), with the same
 * error: any JSON error, a missing, repeated or unknown top-level key, or "profiles" not an array is
 * AK_ERR_BAD_FORMAT whatever else is wrong; then an unknown version is AK_ERR_VERSION; then too many
 * profiles; then the first bad profile's error. So after a first error the rest is still parsed, only
 * not converted, and profiles read before the version was seen are dropped if it is unknown.
 */

/* cJSON's whitespace between tokens: every byte from 1 to 32. */
static const char *
skip_ws(const char *p)
{
	while (*p != '\0' && (unsigned char)*p <= 32)
		p++;
	return p;
}

/* One value at *p (cJSON), *p moved past it and the whitespace after. NULL when it does not parse. A
 * value cannot start with 0xEF: cJSON would skip a byte-order mark there, at the start of what it is
 * given, which inside the document the whole parse would refuse. */
static cJSON *
value_at(const char **p, const char *end)
{
	const char *e;
	cJSON *v;

	if ((unsigned char)**p == 0xef)
		return NULL;
	/* The length includes the NUL, as for the whole document: cJSON may look at it. */
	if ((v = ak_json_parse_one(*p, (size_t)(end - *p) + 1, &e)) == NULL || e == NULL || e > end)
		return NULL;
	*p = skip_ws(e);
	return v;
}

/* How deeply v nests (0: not an array or object). */
static size_t
json_depth(const cJSON *v)
{
	const cJSON *c;
	size_t d, max = 0;

	if (!cJSON_IsArray(v) && !cJSON_IsObject(v))
		return 0;
	cJSON_ArrayForEach(c, v)
		if ((d = json_depth(c)) > max)
			max = d;
	return max + 1;
}

/* cJSON refuses to nest more than CJSON_NESTING_LIMIT deep from where its parse starts: an element of
 * "profiles" starts two levels down in the whole document, so that parse refuses it from two levels
 * less. (A profile nests only a few levels: only an element that is not converted can be this deep.) */
#define ELEMENT_DEPTH_MAX (CJSON_NESTING_LIMIT - 2)

struct reader {
	const char *p, *end;            /* end: the document's NUL */
	struct ak_store *s;             /* what is converted so far */
	size_t n;                       /* profiles seen */
	int version;                    /* -1 not seen, 0 unknown, 1 known */
	enum ak_err first;              /* the first bad profile's error, or AK_OK */
};

/* The elements of "profiles", the reader at '[': each parsed, converted while nothing is wrong so far,
 * and released. AK_ERR_BAD_FORMAT on a JSON error (that decides the result). */
static enum ak_err
read_profiles(struct reader *rd)
{
	struct ak_profile *p;
	cJSON *o;
	enum ak_err r;

	rd->p = skip_ws(rd->p + 1);
	if (*rd->p == ']') {
		rd->p = skip_ws(rd->p + 1);
		return AK_OK;
	}
	for (;;) {
		if ((o = value_at(&rd->p, rd->end)) == NULL)
			return AK_ERR_BAD_FORMAT;
		r = AK_ERR_BAD_FORMAT; /* not converted */
		if (++rd->n <= AK_PROFILES_MAX && rd->first == AK_OK && rd->version != 0) {
			if ((r = parse_profile(o, &p)) == AK_OK && (r = store_grow(rd->s, rd->s->n + 1)) != AK_OK) {
				ak_profile_free(p);
				r = r == AK_ERR_TOO_LARGE ? AK_ERR_BAD_FORMAT : r;
			}
			if (r == AK_OK)
				rd->s->p[rd->s->n++] = p;
			else
				rd->first = r;
		}
		if (r != AK_OK && json_depth(o) > ELEMENT_DEPTH_MAX)
			return AK_ERR_BAD_FORMAT;
		/* Dead now (the profile holds its own copies): wiped, and its region is the next one's. */
		ak_smem_scratch_rewind();
		if (*rd->p == ']') {
			rd->p = skip_ws(rd->p + 1);
			return AK_OK;
		}
		if (*rd->p != ',')
			return AK_ERR_BAD_FORMAT;
		rd->p = skip_ws(rd->p + 1);
	}
}

/* The top-level object. AK_ERR_BAD_FORMAT for anything wrong at this level; the verdicts on the
 * version and the profiles are left in rd. */
static enum ak_err
read_document(struct reader *rd)
{
	int have_version = 0, have_profiles = 0, profiles_ok = 0, version_number = 0;
	cJSON *k, *v;
	enum ak_err r;

	/* A byte-order mark may open the document, as cJSON allows: its very first bytes, before any
	 * whitespace. Byte by byte: the document may end before three. */
	if ((unsigned char)rd->p[0] == 0xef && (unsigned char)rd->p[1] == 0xbb && (unsigned char)rd->p[2] == 0xbf)
		rd->p += 3;
	rd->p = skip_ws(rd->p);
	if (*rd->p != '{')
		return AK_ERR_BAD_FORMAT;
	rd->p = skip_ws(rd->p + 1);
	if (*rd->p == '}')
		return AK_ERR_BAD_FORMAT; /* neither key */
	for (;;) {
		/* The key, a JSON string decoded by cJSON ("vers\u0069on" is "version" there too). */
		if (*rd->p != '"' || (k = value_at(&rd->p, rd->end)) == NULL || !cJSON_IsString(k) ||
		    *rd->p != ':')
			return AK_ERR_BAD_FORMAT;
		rd->p = skip_ws(rd->p + 1);
		if (strcmp(k->valuestring, "profiles") == 0 && !have_profiles) {
			have_profiles = 1;
			if (*rd->p == '[') {
				profiles_ok = 1;
				if ((r = read_profiles(rd)) != AK_OK)
					return r;
			} else if (value_at(&rd->p, rd->end) == NULL) {
				return AK_ERR_BAD_FORMAT;
			}
		} else if (strcmp(k->valuestring, "version") == 0 && !have_version) {
			have_version = 1;
			if ((v = value_at(&rd->p, rd->end)) == NULL)
				return AK_ERR_BAD_FORMAT;
			if (cJSON_IsNumber(v)) {
				version_number = 1;
				rd->version = version_known(v);
			}
		} else {
			return AK_ERR_BAD_FORMAT;
		}
		ak_smem_scratch_rewind();
		if (*rd->p == '}')
			break;
		if (*rd->p != ',')
			return AK_ERR_BAD_FORMAT;
		rd->p = skip_ws(rd->p + 1);
	}
	rd->p = skip_ws(rd->p + 1);
	if (rd->p != rd->end || !have_version || !have_profiles || !version_number || !profiles_ok)
		return AK_ERR_BAD_FORMAT;
	return AK_OK;
}

/* The parse proper: buf is the checked document, NUL-terminated. */
static enum ak_err
parse_terminated(const char *buf, struct ak_store **out)
{
	struct reader rd = { .p = buf, .end = buf + strlen(buf), .version = -1, .first = AK_OK };
	enum ak_err r;

	if ((rd.s = ak_store_new()) == NULL)
		return AK_ERR_NOMEM;
	/* Every cJSON block of this parse dies at a rewind or at the end of the session. */
	ak_smem_scratch_begin();
	r = read_document(&rd);
	ak_smem_scratch_end();
	if (r == AK_OK && rd.version == 0)
		r = AK_ERR_VERSION;
	if (r == AK_OK && rd.n > AK_PROFILES_MAX)
		r = AK_ERR_BAD_FORMAT;
	if (r == AK_OK)
		r = rd.first;
	if (r == AK_OK)
		r = store_sort(rd.s);
	if (r != AK_OK) {
		ak_store_free(rd.s);
		return r;
	}
	*out = rd.s;
	return AK_OK;
}

/* The reference reader: one cJSON tree of the whole document, then the same checks. */
static enum ak_err
parse_whole(const char *buf, struct ak_store **out)
{
	cJSON *root = NULL;
	const cJSON *f, *version = NULL, *profiles = NULL, *o;
	struct ak_store *s = NULL;
	struct ak_profile *p;
	size_t n;
	enum ak_err r = AK_ERR_BAD_FORMAT;

	/* Every cJSON block of this parse dies at the end of the session, which wipes and unmaps them. */
	ak_smem_scratch_begin();
	if ((root = ak_json_parse(buf, strlen(buf) + 1, 1)) == NULL || !cJSON_IsObject(root))
		goto out;
	cJSON_ArrayForEach(f, root) {
		if (f->string != NULL && strcmp(f->string, "version") == 0 && version == NULL)
			version = f;
		else if (f->string != NULL && strcmp(f->string, "profiles") == 0 && profiles == NULL)
			profiles = f;
		else
			goto out;
	}
	if (version == NULL || profiles == NULL || !cJSON_IsNumber(version) || !cJSON_IsArray(profiles))
		goto out;
	if (!version_known(version)) {
		r = AK_ERR_VERSION;
		goto out;
	}
	n = (size_t)cJSON_GetArraySize(profiles);
	if (n > AK_PROFILES_MAX)
		goto out;
	r = AK_ERR_NOMEM;
	if ((s = ak_store_new()) == NULL || store_grow(s, n) != AK_OK)
		goto out;
	cJSON_ArrayForEach(o, profiles) {
		if ((r = parse_profile(o, &p)) != AK_OK)
			goto out;
		s->p[s->n++] = p; /* n counted them: there is room */
	}
	if ((r = store_sort(s)) != AK_OK)
		goto out;
	*out = s;
	s = NULL;
out:
	ak_store_free(s);
	ak_smem_scratch_end();
	return r;
}

/* Checks common to both entry points; 0 when doc may go to the parser. */
static enum ak_err
doc_check(const char *doc, size_t len, struct ak_store **out)
{
	if (out == NULL || (doc == NULL && len != 0))
		return AK_ERR_INVALID;
	*out = NULL;
	if (len > AK_FILE_MAX)
		return AK_ERR_BAD_FORMAT;
	if (len == 0 || memchr(doc, '\0', len) != NULL || has_nul_escape(doc, len))
		return AK_ERR_BAD_FORMAT;
	return AK_OK;
}

/* doc is the decrypted plaintext: the caller wipes it. On success *out belongs to the caller
 * (ak_store_free); on failure *out is NULL and every partial copy has been wiped. */
/* Check doc, then parse a NUL-terminated secure copy of it with parse (cJSON then needs no length,
 * and we can require that it consumed the whole document); the copy is wiped. */
static enum ak_err
parse_copy(const char *doc, size_t len, struct ak_store **out,
    enum ak_err (*parse)(const char *, struct ak_store **))
{
	char *buf;
	enum ak_err r;

	if ((r = doc_check(doc, len, out)) != AK_OK)
		return r;
	if ((buf = ak_smem_strndup(doc, len)) == NULL)
		return AK_ERR_NOMEM;
	r = parse(buf, out);
	ak_smem_free(buf);
	return r;
}

enum ak_err
ak_store_parse(const char *doc, size_t len, struct ak_store **out)
{
	return parse_copy(doc, len, out, parse_terminated);
}

enum ak_err
ak_store_parse_terminated(const char *doc, size_t len, struct ak_store **out)
{
	enum ak_err r;

	if ((r = doc_check(doc, len, out)) != AK_OK)
		return r;
	if (doc[len] != '\0')
		return AK_ERR_INVALID;
	return parse_terminated(doc, out);
}

enum ak_err
ak_store_parse_whole(const char *doc, size_t len, struct ak_store **out)
{
	return parse_copy(doc, len, out, parse_whole);
}
