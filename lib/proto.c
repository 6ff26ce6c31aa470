/* proto.c - framing and typed payloads of the agent's wire protocol (docs/protocol.md).
 *
 * Everything here is written for hostile input: every length is checked against its cap before any
 * allocation that depends on it, every count against its limit, and every decoder frees what it built
 * on any failure. Profiles (secrets) decode into the secure arena; status and list rows (no secret)
 * into malloc.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ak_buf.h"
#include "ak_proto.h"
#include "ak_rotate.h"
#include "ak_smem.h"
#include "ak_store.h"
#include "ak_util.h"

#define AK_PROTO_PATH_MAX 4096   /* store_path in STATUS_REPLY */
#define AK_PROTO_DETAIL_MAX 1024 /* detail in ERROR */
#define AK_PROTO_REDACT_MAX 128  /* redacted secret in a LIST row (ak_redact needs >= 64) */

/* The smallest encoding of one variable (two empty strings): lets a count be checked against the bytes
 * that are actually there before anything is allocated for it. */
#define VAR_MIN_WIRE 9
#define NAME_MIN_WIRE 5
#define EDIT_MIN_WIRE 9

/* Framing ------------------------------------------------------------------------------------------ */

enum ak_err
ak_proto_begin(struct ak_buf *b, uint8_t type)
{
	enum ak_err r;

	ak_buf_reset(b);
	/* Placeholder: ak_proto_finish patches the real length in once the payload is known. */
	if ((r = ak_buf_put_u32(b, 0)) != AK_OK)
		goto out;
	r = ak_buf_put_u8(b, type);
out:
	return r;
}

enum ak_err
ak_proto_finish(struct ak_buf *b, uint32_t limit)
{
	enum ak_err r;
	size_t total;
	uint32_t len;
	uint8_t *p;

	total = ak_buf_len(b);
	if (total < 5) {
		/* Not begun with ak_proto_begin, or already consumed from: a caller bug. */
		r = AK_ERR_INTERNAL;
		goto out;
	}
	if (total - 4 > limit) {
		r = AK_ERR_TOO_LARGE;
		goto out;
	}
	len = (uint32_t)(total - 4);
	/* ak_proto_begin reset the buffer, so the unconsumed data starts at the length field. */
	p = ak_buf_data(b);
	p[0] = (uint8_t)(len >> 24);
	p[1] = (uint8_t)(len >> 16);
	p[2] = (uint8_t)(len >> 8);
	p[3] = (uint8_t)len;
	r = AK_OK;
out:
	return r;
}

enum ak_err
ak_proto_frame(const struct ak_buf *in, uint32_t limit, size_t *frame_len, size_t *need)
{
	enum ak_err r;
	uint32_t len;

	if (ak_buf_peek_u32(in, &len) != AK_OK) {
		if (need != NULL)
			*need = 4;
		r = AK_ERR_TRUNCATED;
		goto out;
	}
	if (len == 0) {
		/* Not even a type byte. */
		r = AK_ERR_BAD_MESSAGE;
		goto out;
	}
	if (len > limit) {
		/* Decided from the 4-byte header alone, so a peer cannot make us buffer it first. */
		r = AK_ERR_TOO_LARGE;
		goto out;
	}
	if (ak_buf_len(in) < 4 + (size_t)len) {
		if (need != NULL)
			*need = 4 + (size_t)len;
		r = AK_ERR_TRUNCATED;
		goto out;
	}
	if (frame_len != NULL)
		*frame_len = 4 + (size_t)len;
	r = AK_OK;
out:
	return r;
}

/* Field helpers ------------------------------------------------------------------------------------ */

/* A NUL-terminated string field, refusing what the peer's decoder would refuse. NULL sends "". */
static enum ak_err
put_capped(struct ak_buf *b, const char *s, size_t cap)
{
	size_t len = s != NULL ? strlen(s) : 0;

	if (len > cap)
		return AK_ERR_TOO_LARGE;
	return ak_buf_put_string(b, s != NULL ? s : "", len);
}

/* int64 travels as the uint64 of its two's complement. */
static uint64_t
i64_to_wire(int64_t v)
{
	return (uint64_t)v;
}

static int64_t
i64_from_wire(uint64_t v)
{
	/* Spelled out: converting a uint64 above INT64_MAX to int64 is implementation-defined in C11. */
	if (v <= (uint64_t)INT64_MAX)
		return (int64_t)v;
	return -(int64_t)(~v) - 1;
}

/*
 * Read a string field into a profile field: decoded into a temporary secure copy (the field may be the
 * secret), copied by ak_profile_set_field, and the temporary wiped. ak_buf_get_cstring already refuses
 * an embedded NUL (AK_ERR_BAD_MESSAGE) and a length over cap (AK_ERR_TOO_LARGE).
 */
static enum ak_err
get_field(struct ak_buf *b, char **field, size_t cap)
{
	enum ak_err r;
	char *tmp = NULL;

	if ((r = ak_buf_get_cstring(b, &tmp, cap, 1)) != AK_OK)
		goto out;
	r = ak_profile_set_field(field, tmp);
out:
	ak_smem_free(tmp); /* Wipes: it may have held the secret. */
	return r;
}

/* Profile ------------------------------------------------------------------------------------------ */

/* b should be a secure buffer (ak_buf_new_secure): it will hold the secret; ak_buf_free wipes it. */
enum ak_err
ak_proto_put_add(struct ak_buf *b, uint8_t flags, const struct ak_profile *p)
{
	enum ak_err r;

	if ((r = ak_buf_put_u8(b, flags)) != AK_OK)
		return r;
	return ak_proto_put_profile(b, p);
}

/* The fields a profile and a LIST row share, up to the variable count: secret is the profile's own or
 * its redacted form; a LIST row carries no source (with_source 0). */
static enum ak_err
put_profile_head(struct ak_buf *b, const struct ak_profile *p, const char *secret, size_t secret_cap,
    int with_source)
{
	enum ak_err r;

	if (p->nvars > AK_VARS_MAX)
		return AK_ERR_TOO_LARGE;
	if ((r = put_capped(b, p->name, AK_NAME_MAX)) != AK_OK ||
	    (r = put_capped(b, p->provider, AK_TEXT_MAX)) != AK_OK ||
	    (r = put_capped(b, p->secret_var, AK_VARNAME_MAX)) != AK_OK ||
	    (r = put_capped(b, secret, secret_cap)) != AK_OK ||
	    (r = put_capped(b, p->description, AK_TEXT_MAX)) != AK_OK ||
	    (with_source && (r = put_capped(b, p->source, AK_TEXT_MAX)) != AK_OK) ||
	    (r = ak_buf_put_u64(b, i64_to_wire(p->created))) != AK_OK ||
	    (r = ak_buf_put_u64(b, i64_to_wire(p->rotated))) != AK_OK)
		return r;
	return ak_buf_put_u32(b, (uint32_t)p->nvars);
}

enum ak_err
ak_proto_put_profile(struct ak_buf *b, const struct ak_profile *p)
{
	enum ak_err r;
	size_t i;

	if ((r = put_profile_head(b, p, p->secret, AK_VALUE_MAX, 1)) != AK_OK)
		goto out;
	for (i = 0; i < p->nvars; i++) {
		if ((r = put_capped(b, p->vars[i].name, AK_VARNAME_MAX)) != AK_OK ||
		    (r = put_capped(b, p->vars[i].value, AK_VALUE_MAX)) != AK_OK ||
		    (r = ak_buf_put_u8(b, p->vars[i].secret ? 1 : 0)) != AK_OK)
			goto out;
	}
	r = AK_OK;
out:
	return r;
}

/* Read one variable; a name the profile already has is malformed (set_var would silently replace). */
static enum ak_err
get_var(struct ak_buf *b, struct ak_profile *p)
{
	enum ak_err r;
	char *name = NULL, *value = NULL;
	uint8_t secret;
	size_t i;

	if ((r = ak_buf_get_cstring(b, &name, AK_VARNAME_MAX, 1)) != AK_OK ||
	    (r = ak_buf_get_cstring(b, &value, AK_VALUE_MAX, 1)) != AK_OK ||
	    (r = ak_buf_get_u8(b, &secret)) != AK_OK)
		goto out;
	if (secret > 1) {
		r = AK_ERR_BAD_MESSAGE;
		goto out;
	}
	for (i = 0; i < p->nvars; i++) {
		if (strcmp(p->vars[i].name, name) == 0) {
			r = AK_ERR_BAD_MESSAGE;
			goto out;
		}
	}
	r = ak_profile_put_var(p, name, value, secret);
out:
	/* Wipe both: values are plain variables but may still be sensitive (endpoints, org ids). */
	ak_smem_free(name);
	ak_smem_free(value);
	return r;
}

enum ak_err
ak_proto_get_profile(struct ak_buf *b, struct ak_profile **out)
{
	enum ak_err r;
	struct ak_profile *p = NULL;
	uint64_t created, rotated;
	uint32_t nvars, i;

	*out = NULL;
	if ((p = ak_profile_new()) == NULL) {
		r = AK_ERR_NOMEM;
		goto out;
	}
	if ((r = get_field(b, &p->name, AK_NAME_MAX)) != AK_OK ||
	    (r = get_field(b, &p->provider, AK_TEXT_MAX)) != AK_OK ||
	    (r = get_field(b, &p->secret_var, AK_VARNAME_MAX)) != AK_OK ||
	    (r = get_field(b, &p->secret, AK_VALUE_MAX)) != AK_OK ||
	    (r = get_field(b, &p->description, AK_TEXT_MAX)) != AK_OK ||
	    (r = get_field(b, &p->source, AK_TEXT_MAX)) != AK_OK ||
	    (r = ak_buf_get_u64(b, &created)) != AK_OK ||
	    (r = ak_buf_get_u64(b, &rotated)) != AK_OK ||
	    (r = ak_buf_get_u32(b, &nvars)) != AK_OK)
		goto out;
	p->created = i64_from_wire(created);
	p->rotated = i64_from_wire(rotated);
	/* Count checks before any per-variable allocation: a hostile count costs nothing. */
	if (nvars > AK_VARS_MAX) {
		r = AK_ERR_TOO_LARGE;
		goto out;
	}
	if ((size_t)nvars * VAR_MIN_WIRE > ak_buf_len(b)) {
		r = AK_ERR_TRUNCATED;
		goto out;
	}
	for (i = 0; i < nvars; i++) {
		if ((r = get_var(b, p)) != AK_OK)
			goto out;
	}
	/* Names, variable names, duplicates, empty secret, time range: the same rules as the keystore.
	 * Its specific errors (BAD_NAME, BAD_VARNAME, EMPTY, TOO_LARGE) tell the client what was wrong;
	 * "invalid argument" (a time out of range) means a malformed message here. */
	if ((r = ak_profile_validate(p)) != AK_OK) {
		if (r == AK_ERR_INVALID)
			r = AK_ERR_BAD_MESSAGE;
		goto out;
	}
	*out = p;
	p = NULL;
out:
	ak_profile_free(p);
	return r;
}

/* Status ------------------------------------------------------------------------------------------- */

enum ak_err
ak_proto_put_status(struct ak_buf *b, const struct ak_status *st)
{
	enum ak_err r;

	if ((r = ak_buf_put_u32(b, st->proto_version)) != AK_OK ||
	    (r = ak_buf_put_u8(b, st->unlocked ? 1 : 0)) != AK_OK ||
	    (r = ak_buf_put_u8(b, st->weak_kdf ? 1 : 0)) != AK_OK ||
	    (r = ak_buf_put_u32(b, st->pid)) != AK_OK ||
	    (r = put_capped(b, st->store_path, AK_PROTO_PATH_MAX)) != AK_OK ||
	    (r = ak_buf_put_u32(b, st->nprofiles)) != AK_OK ||
	    (r = ak_buf_put_u32(b, st->lifetime_left)) != AK_OK ||
	    (r = ak_buf_put_u32(b, st->idle_timeout)) != AK_OK)
		goto out;
	r = AK_OK;
out:
	return r;
}

/* *st is overwritten (not freed first): clear it before reusing. On failure *st is all zero. */
enum ak_err
ak_proto_get_status(struct ak_buf *b, struct ak_status *st)
{
	enum ak_err r;

	memset(st, 0, sizeof(*st));
	if ((r = ak_buf_get_u32(b, &st->proto_version)) != AK_OK ||
	    (r = ak_buf_get_u8(b, &st->unlocked)) != AK_OK ||
	    (r = ak_buf_get_u8(b, &st->weak_kdf)) != AK_OK ||
	    (r = ak_buf_get_u32(b, &st->pid)) != AK_OK ||
	    (r = ak_buf_get_cstring(b, &st->store_path, AK_PROTO_PATH_MAX, 0)) != AK_OK ||
	    (r = ak_buf_get_u32(b, &st->nprofiles)) != AK_OK ||
	    (r = ak_buf_get_u32(b, &st->lifetime_left)) != AK_OK ||
	    (r = ak_buf_get_u32(b, &st->idle_timeout)) != AK_OK)
		goto out;
	/* Flags are exactly 0 or 1, so a future meaning for other values cannot be misread as "yes". */
	if (st->unlocked > 1 || st->weak_kdf > 1) {
		r = AK_ERR_BAD_MESSAGE;
		goto out;
	}
	r = AK_OK;
out:
	if (r != AK_OK)
		ak_status_clear(st);
	return r;
}

void
ak_status_clear(struct ak_status *st)
{
	if (st == NULL)
		return;
	free(st->store_path);
	memset(st, 0, sizeof(*st));
}

/* List entries ------------------------------------------------------------------------------------- */

/* A LIST row: everything but the secret, which travels only in its redacted form. */
enum ak_err
ak_proto_put_list_entry(struct ak_buf *b, const struct ak_profile *p)
{
	enum ak_err r;
	char red[AK_PROTO_REDACT_MAX];
	size_t i;

	ak_redact(p->secret != NULL ? p->secret : "", red, sizeof(red));
	if ((r = put_profile_head(b, p, red, AK_PROTO_REDACT_MAX - 1, 0)) != AK_OK)
		goto out;
	for (i = 0; i < p->nvars; i++) {
		if ((r = put_capped(b, p->vars[i].name, AK_VARNAME_MAX)) != AK_OK ||
		    (r = ak_buf_put_u8(b, p->vars[i].secret ? 1 : 0)) != AK_OK)
			goto out;
	}
	/* Protocol 3: the rotation policy and when a kept previous key goes (never the key itself). */
	if ((r = ak_buf_put_u64(b, i64_to_wire(p->rotate_every))) != AK_OK ||
	    (r = ak_buf_put_u64(b, i64_to_wire(ak_profile_next_expiry(p)))) != AK_OK)
		goto out;
	/* Protocol 5: the use policies, and when the agent wipes (or wiped) the profile's secrets; a
	 * deactivation asked for the previous main key (its partial hint), and whether it is due. */
	if ((r = ak_buf_put_u8(b, (uint8_t)((p->confirm ? 1 : 0) | (p->expired ? 2 : 0)))) != AK_OK ||
	    (r = ak_buf_put_u64(b, i64_to_wire(p->lifetime))) != AK_OK ||
	    (r = ak_buf_put_u64(b, i64_to_wire(p->wipe_at))) != AK_OK ||
	    (r = put_capped(b, p->rot.hint != NULL ? p->rot.hint : "", AK_ROT_HINT_MAX - 1)) != AK_OK ||
	    (r = ak_buf_put_u8(b, p->rot.hint != NULL && p->rot.prev == NULL)) != AK_OK)
		goto out;
	r = AK_OK;
out:
	/* Wipe: the redacted form still carries the last characters of the secret. */
	sodium_memzero(red, sizeof(red));
	return r;
}

/* Where a LIST entry's strings and arrays go: each its own malloc (pool NULL), or carved from a pool. */
static enum ak_err
entry_cstring(struct ak_buf *b, char **out, size_t maxlen, struct ak_proto_pool *pool)
{
	const uint8_t *q;
	size_t n;
	enum ak_err r;

	if (pool == NULL)
		return ak_buf_get_cstring(b, out, maxlen, 0);
	if ((r = ak_buf_get_string_direct(b, &q, &n, maxlen)) != AK_OK)
		return r;
	if (n > 0 && memchr(q, '\0', n) != NULL)
		return AK_ERR_BAD_MESSAGE;
	if (pool->size - pool->used < n + 1)
		return AK_ERR_NOMEM;
	*out = (char *)pool->p + pool->used;
	if (n > 0)
		memcpy(*out, q, n);
	(*out)[n] = '\0';
	pool->used += n + 1;
	return AK_OK;
}

/* n zeroed bytes, 8-aligned in a pool. */
static void *
entry_zalloc(size_t n, struct ak_proto_pool *pool)
{
	size_t at;

	if (pool == NULL)
		return calloc(n, 1);
	at = (pool->used + 7) & ~(size_t)7;
	if (at > pool->size || pool->size - at < n)
		return NULL;
	memset(pool->p + at, 0, n);
	pool->used = at + n;
	return pool->p + at;
}

/* *e is overwritten (not freed first). On failure *e is all zero and nothing is allocated (a pool's
 * bytes taken meanwhile stay taken: its owner wipes them with the rest). */
static enum ak_err
get_list_entry(struct ak_buf *b, struct ak_list_entry *e, struct ak_proto_pool *pool)
{
	enum ak_err r;
	uint64_t created, rotated;
	uint32_t i;
	uint8_t flags;

	memset(e, 0, sizeof(*e));
	if ((r = entry_cstring(b, &e->name, AK_NAME_MAX, pool)) != AK_OK ||
	    (r = entry_cstring(b, &e->provider, AK_TEXT_MAX, pool)) != AK_OK ||
	    (r = entry_cstring(b, &e->secret_var, AK_VARNAME_MAX, pool)) != AK_OK ||
	    (r = entry_cstring(b, &e->redacted, AK_PROTO_REDACT_MAX - 1, pool)) != AK_OK ||
	    (r = entry_cstring(b, &e->description, AK_TEXT_MAX, pool)) != AK_OK ||
	    (r = ak_buf_get_u64(b, &created)) != AK_OK ||
	    (r = ak_buf_get_u64(b, &rotated)) != AK_OK ||
	    (r = ak_buf_get_u32(b, &e->nvars)) != AK_OK)
		goto out;
	e->created = i64_from_wire(created);
	e->rotated = i64_from_wire(rotated);
	if ((r = ak_name_check(e->name)) != AK_OK ||
	    (r = ak_varname_check(e->secret_var)) != AK_OK)
		goto out;
	if (e->nvars > AK_VARS_MAX) {
		r = AK_ERR_TOO_LARGE;
		goto out;
	}
	if ((size_t)e->nvars * NAME_MIN_WIRE > ak_buf_len(b)) {
		r = AK_ERR_TRUNCATED;
		goto out;
	}
	if (e->nvars > 0 && ((e->vars = entry_zalloc(e->nvars * sizeof(*e->vars), pool)) == NULL ||
	    (e->var_secret = entry_zalloc(e->nvars, pool)) == NULL)) {
		r = AK_ERR_NOMEM;
		goto out;
	}
	for (i = 0; i < e->nvars; i++) {
		if ((r = entry_cstring(b, &e->vars[i], AK_VARNAME_MAX, pool)) != AK_OK ||
		    (r = ak_varname_check(e->vars[i])) != AK_OK ||
		    (r = ak_buf_get_u8(b, &e->var_secret[i])) != AK_OK)
			goto out;
		if (e->var_secret[i] > 1) {
			r = AK_ERR_BAD_MESSAGE;
			goto out;
		}
	}
	if ((r = ak_buf_get_u64(b, &created)) != AK_OK ||
	    (r = ak_buf_get_u64(b, &rotated)) != AK_OK)
		goto out;
	e->rotate_every = i64_from_wire(created);
	e->prev_until = i64_from_wire(rotated);
	if (e->rotate_every < 0 || e->prev_until < 0) {
		r = AK_ERR_BAD_MESSAGE;
		goto out;
	}
	if ((r = ak_buf_get_u8(b, &flags)) != AK_OK ||
	    (r = ak_buf_get_u64(b, &created)) != AK_OK ||
	    (r = ak_buf_get_u64(b, &rotated)) != AK_OK)
		goto out;
	e->confirm = (flags & 1) != 0;
	e->expired = (flags & 2) != 0;
	e->lifetime = i64_from_wire(created);
	e->wipe_at = i64_from_wire(rotated);
	if (flags > 3 || e->lifetime < 0 || e->wipe_at < 0) {
		r = AK_ERR_BAD_MESSAGE;
		goto out;
	}
	if ((r = entry_cstring(b, &e->deact_hint, AK_ROT_HINT_MAX - 1, pool)) != AK_OK ||
	    (r = ak_buf_get_u8(b, &e->deact_pending)) != AK_OK)
		goto out;
	if (e->deact_pending > 1 || (e->deact_hint[0] != '\0' && ak_rot_hint_check(e->deact_hint) != AK_OK) ||
	    (e->deact_pending && e->deact_hint[0] == '\0')) {
		r = AK_ERR_BAD_MESSAGE;
		goto out;
	}
	r = AK_OK;
out:
	if (r != AK_OK) {
		if (pool == NULL)
			ak_list_entry_clear(e);
		memset(e, 0, sizeof(*e));
	}
	return r;
}

enum ak_err
ak_proto_get_list_entry(struct ak_buf *b, struct ak_list_entry *e)
{
	return get_list_entry(b, e, NULL);
}

enum ak_err
ak_proto_get_list_entry_pool(struct ak_buf *b, struct ak_list_entry *e, struct ak_proto_pool *pool)
{
	if (pool == NULL)
		return AK_ERR_INVALID;
	return get_list_entry(b, e, pool);
}


void
ak_list_entry_clear(struct ak_list_entry *e)
{
	uint32_t i;

	if (e == NULL)
		return;
	free(e->name);
	free(e->provider);
	free(e->secret_var);
	/* Wipe: the redacted form still carries the last characters of the secret. */
	if (e->redacted != NULL)
		sodium_memzero(e->redacted, strlen(e->redacted));
	free(e->redacted);
	free(e->description);
	/* Wipe: the hint, like the redacted form, carries characters of a key. */
	if (e->deact_hint != NULL)
		sodium_memzero(e->deact_hint, strlen(e->deact_hint));
	free(e->deact_hint);
	if (e->vars != NULL) {
		/* vars[] is calloc'd, so entries not reached by a failed decode are NULL. */
		for (i = 0; i < e->nvars; i++)
			free(e->vars[i]);
		free(e->vars);
	}
	free(e->var_secret);
	memset(e, 0, sizeof(*e));
}

/* Usage log --------------------------------------------------------------------------------------- */

enum ak_err
ak_proto_put_log_req(struct ak_buf *b, const char *profile, int64_t since)
{
	enum ak_err r;

	if ((r = ak_buf_put_cstring(b, profile != NULL ? profile : "")) != AK_OK)
		return r;
	return ak_buf_put_u64(b, i64_to_wire(since));
}

enum ak_err
ak_proto_get_log_req(struct ak_buf *b, char **profile, int64_t *since)
{
	char *name = NULL;
	uint64_t s;
	enum ak_err r;

	*profile = NULL;
	*since = 0;
	if ((r = ak_buf_get_cstring(b, &name, AK_NAME_MAX, 0)) != AK_OK ||
	    (r = ak_buf_get_u64(b, &s)) != AK_OK)
		goto out;
	if (i64_from_wire(s) < 0) {
		r = AK_ERR_BAD_MESSAGE;
		goto out;
	}
	if (name[0] != '\0' && (r = ak_name_check(name)) != AK_OK)
		goto out;
	*since = i64_from_wire(s);
	if (name[0] != '\0') {
		*profile = name;
		name = NULL;
	}
	r = AK_OK;
out:
	if (name != NULL)
		sodium_memzero(name, strlen(name)); /* a profile name */
	free(name);
	return r;
}

static enum ak_err
put_usage_counts(struct ak_buf *b, const struct ak_use_entry *e)
{
	const char *client = e->client != NULL ? e->client : "";
	enum ak_err r;

	if ((r = ak_buf_put_string(b, client, strnlen(client, AK_USE_CLIENT_MAX))) != AK_OK ||
	    (r = ak_buf_put_u32(b, e->requests)) != AK_OK ||
	    (r = ak_buf_put_u64(b, e->tokens_in)) != AK_OK ||
	    (r = ak_buf_put_u64(b, e->tokens_out)) != AK_OK)
		return r;
	return ak_buf_put_u64(b, e->tokens_cache);
}

enum ak_err
ak_proto_put_use_entry(struct ak_buf *b, const struct ak_use_entry *e)
{
	enum ak_err r;
	const char *exe = e->exe != NULL ? e->exe : "";
	size_t elen = strlen(exe);

	/* An executable path over the cap is cut, not refused: the entry still goes out. */
	if (elen > AK_USE_EXE_MAX)
		elen = AK_USE_EXE_MAX;
	if ((r = ak_buf_put_u64(b, i64_to_wire(e->time))) != AK_OK ||
	    (r = ak_buf_put_u8(b, e->op)) != AK_OK ||
	    (r = ak_buf_put_u32(b, e->pid)) != AK_OK ||
	    (r = ak_buf_put_u32(b, e->uid)) != AK_OK ||
	    (r = ak_buf_put_u32(b, e->err)) != AK_OK ||
	    (r = ak_buf_put_cstring(b, e->profile != NULL ? e->profile : "")) != AK_OK ||
	    (r = ak_buf_put_string(b, exe, elen)) != AK_OK)
		return r;
	/* Protocol 5: an entry of tokens through the proxy carries its counts. */
	if (e->op == AK_MSG_LOG_USAGE)
		return put_usage_counts(b, e);
	return AK_OK;
}

static int
use_op_known(uint8_t op)
{
	return op == AK_MSG_GET || op == AK_MSG_GET_PREVIOUS || op == AK_MSG_ADD ||
	    op == AK_MSG_REMOVE || op == AK_MSG_EDIT || op == AK_USE_EXPIRE || op == AK_MSG_LOG_USAGE;
}

static enum ak_err
get_usage_counts(struct ak_buf *b, struct ak_use_entry *e)
{
	enum ak_err r;
	size_t i;

	if ((r = ak_buf_get_cstring(b, &e->client, AK_USE_CLIENT_MAX, 0)) != AK_OK ||
	    (r = ak_buf_get_u32(b, &e->requests)) != AK_OK ||
	    (r = ak_buf_get_u64(b, &e->tokens_in)) != AK_OK ||
	    (r = ak_buf_get_u64(b, &e->tokens_out)) != AK_OK ||
	    (r = ak_buf_get_u64(b, &e->tokens_cache)) != AK_OK)
		return r;
	for (i = 0; e->client[i] != '\0'; i++)
		if ((unsigned char)e->client[i] < 0x20 || (unsigned char)e->client[i] >= 0x7f)
			return AK_ERR_BAD_MESSAGE;
	return AK_OK;
}

enum ak_err
ak_proto_put_usage_report(struct ak_buf *b, const struct ak_use_entry *e)
{
	enum ak_err r;

	if ((r = ak_buf_put_cstring(b, e->profile != NULL ? e->profile : "")) != AK_OK)
		return r;
	return put_usage_counts(b, e);
}

enum ak_err
ak_proto_get_usage_report(struct ak_buf *b, struct ak_use_entry *e)
{
	enum ak_err r;

	memset(e, 0, sizeof(*e));
	if ((r = ak_buf_get_cstring(b, &e->profile, AK_NAME_MAX, 0)) != AK_OK ||
	    (r = ak_name_check(e->profile)) != AK_OK || (r = get_usage_counts(b, e)) != AK_OK)
		goto out;
	e->op = AK_MSG_LOG_USAGE;
	r = AK_OK;
out:
	if (r != AK_OK)
		ak_use_entry_clear(e);
	return r;
}

enum ak_err
ak_proto_get_use_entry(struct ak_buf *b, struct ak_use_entry *e)
{
	uint64_t t;
	enum ak_err r;

	memset(e, 0, sizeof(*e));
	if ((r = ak_buf_get_u64(b, &t)) != AK_OK ||
	    (r = ak_buf_get_u8(b, &e->op)) != AK_OK ||
	    (r = ak_buf_get_u32(b, &e->pid)) != AK_OK ||
	    (r = ak_buf_get_u32(b, &e->uid)) != AK_OK ||
	    (r = ak_buf_get_u32(b, &e->err)) != AK_OK ||
	    (r = ak_buf_get_cstring(b, &e->profile, AK_NAME_MAX, 0)) != AK_OK ||
	    (r = ak_buf_get_cstring(b, &e->exe, AK_USE_EXE_MAX, 0)) != AK_OK)
		goto out;
	e->time = i64_from_wire(t);
	if (!use_op_known(e->op) || e->err > AK_ERR_LAST) {
		r = AK_ERR_BAD_MESSAGE;
		goto out;
	}
	if (e->profile[0] != '\0' && (r = ak_name_check(e->profile)) != AK_OK)
		goto out;
	if (e->op == AK_MSG_LOG_USAGE && (r = get_usage_counts(b, e)) != AK_OK)
		goto out;
	r = AK_OK;
out:
	if (r != AK_OK)
		ak_use_entry_clear(e);
	return r;
}

void
ak_use_entry_clear(struct ak_use_entry *e)
{
	if (e == NULL)
		return;
	if (e->profile != NULL)
		sodium_memzero(e->profile, strlen(e->profile)); /* names are secret */
	free(e->profile);
	free(e->exe);
	free(e->client);
	memset(e, 0, sizeof(*e));
}

/* Error -------------------------------------------------------------------------------------------- */

/* detail must never hold a secret; NULL sends "". A detail over the cap is cut, not refused: an error
 * reply must still go out. */
enum ak_err
ak_proto_put_error(struct ak_buf *b, enum ak_err e, const char *detail)
{
	enum ak_err r;
	size_t len = detail != NULL ? strlen(detail) : 0;

	if (len > AK_PROTO_DETAIL_MAX)
		len = AK_PROTO_DETAIL_MAX;
	if ((r = ak_buf_put_u32(b, (uint32_t)e)) != AK_OK ||
	    (r = ak_buf_put_string(b, detail != NULL ? detail : "", len)) != AK_OK)
		goto out;
	r = AK_OK;
out:
	return r;
}

/* *detail (when detail is not NULL) gets a malloc'd string, or NULL when the peer sent none. */
enum ak_err
ak_proto_get_error(struct ak_buf *b, enum ak_err *e, char **detail)
{
	enum ak_err r;
	uint32_t code;
	char *d = NULL;

	*e = AK_ERR_INTERNAL;
	if (detail != NULL)
		*detail = NULL;
	if ((r = ak_buf_get_u32(b, &code)) != AK_OK ||
	    (r = ak_buf_get_cstring(b, &d, AK_PROTO_DETAIL_MAX, 0)) != AK_OK)
		goto out;
	/* An ERROR that says "success" is malformed: never let it read as success. */
	if (code == AK_OK) {
		r = AK_ERR_BAD_MESSAGE;
		goto out;
	}
	*e = ak_err_from_wire(code);
	if (detail != NULL && d != NULL && d[0] != '\0') {
		*detail = d;
		d = NULL;
	}
	r = AK_OK;
out:
	free(d);
	return r;
}

/* Edit --------------------------------------------------------------------------------------------- */

/* b should be a secure buffer: a SET_SECRET action carries a secret. */
enum ak_err
ak_proto_put_edit(struct ak_buf *b, const struct ak_edit *e)
{
	enum ak_err r;
	size_t i;

	if (e->n == 0 || e->n > AK_EDIT_MAX) {
		r = AK_ERR_INVALID;
		goto out;
	}
	if ((r = put_capped(b, e->profile, AK_NAME_MAX)) != AK_OK ||
	    (r = ak_buf_put_u32(b, (uint32_t)e->n)) != AK_OK)
		goto out;
	for (i = 0; i < e->n; i++) {
		if ((r = ak_buf_put_u8(b, e->a[i].kind)) != AK_OK ||
		    (r = put_capped(b, e->a[i].arg, AK_TEXT_MAX)) != AK_OK ||
		    (r = put_capped(b, e->a[i].value, AK_VALUE_MAX)) != AK_OK)
			goto out;
	}
	r = AK_OK;
out:
	return r;
}

enum ak_err
ak_proto_get_edit(struct ak_buf *b, struct ak_edit **out)
{
	struct ak_edit *e = NULL;
	char *name = NULL, *arg = NULL, *value = NULL;
	uint32_t n, i;
	uint8_t kind;
	enum ak_err r;

	*out = NULL;
	if ((r = ak_buf_get_cstring(b, &name, AK_NAME_MAX, 1)) != AK_OK ||
	    (r = ak_buf_get_u32(b, &n)) != AK_OK)
		goto out;
	if ((r = ak_name_check(name)) != AK_OK)
		goto out;
	if (n == 0 || n > AK_EDIT_MAX) {
		r = n == 0 ? AK_ERR_BAD_MESSAGE : AK_ERR_TOO_LARGE;
		goto out;
	}
	if ((size_t)n * EDIT_MIN_WIRE > ak_buf_len(b)) {
		r = AK_ERR_TRUNCATED;
		goto out;
	}
	if ((e = ak_edit_new(name)) == NULL) {
		r = AK_ERR_NOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		if ((r = ak_buf_get_u8(b, &kind)) != AK_OK ||
		    (r = ak_buf_get_cstring(b, &arg, AK_TEXT_MAX, 1)) != AK_OK ||
		    (r = ak_buf_get_cstring(b, &value, AK_VALUE_MAX, 1)) != AK_OK)
			goto out;
		/* The same checks as the sender's; "invalid" (unknown kind, misplaced rename, a value
		 * where none belongs) means a malformed message here. */
		if ((r = ak_edit_add(e, kind, arg, value)) != AK_OK) {
			if (r == AK_ERR_INVALID)
				r = AK_ERR_BAD_MESSAGE;
			goto out;
		}
		ak_smem_free(arg);
		ak_smem_free(value);
		arg = value = NULL;
	}
	*out = e;
	e = NULL;
	r = AK_OK;
out:
	ak_smem_free(name);
	ak_smem_free(arg);
	ak_smem_free(value); /* wipes: may have been a secret */
	ak_edit_free(e);
	return r;
}

const char *
ak_use_op_name(uint8_t op)
{
	switch (op) {
	case AK_MSG_GET: return "get";
	case AK_MSG_GET_PREVIOUS: return "get-previous";
	case AK_MSG_ADD: return "add";
	case AK_MSG_REMOVE: return "remove";
	case AK_MSG_EDIT: return "edit";
	case AK_USE_EXPIRE: return "expire";
	case AK_MSG_LOG_USAGE: return "proxy-tokens";
	default: return "other";
	}
}
