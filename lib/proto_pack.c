/* proto_pack.c - the packed LIST reply (contract in ak_proto_pack.h, format in docs/protocol.md 2.6).
 *
 * A varint is LEB128: 7 bits a byte, low first, the high bit set on every byte but the last; the
 * decoder takes only the shortest form (so every value has one encoding) and at most 64 bits. A
 * "vstring" is a varint length and the bytes, never a NUL.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ak_buf.h"
#include "ak_proto.h"
#include "ak_proto_pack.h"
#include "ak_rotate.h"
#include "ak_store.h"
#include "ak_util.h"

#define REDACT_MAX 128     /* as LIST: the redacted form is at most 127 bytes */
#define TAIL_MAX 4         /* the redacted form's last bytes travel in the row; the rest is text */
#define TIME_MAX (1LL << 53)
#define F_CONFIRM 1u
#define F_EXPIRED 2u
#define F_DEACT_PENDING 4u
#define F_EXTRA 8u         /* rotate_every, prev_until, lifetime, wipe_at and the hint follow */

/* Encoding ------------------------------------------------------------------------------------------ */

static enum ak_err
put_varint(struct ak_buf *b, uint64_t v)
{
	uint8_t t[10];
	size_t n = 0;

	do {
		t[n] = (uint8_t)(v & 0x7f);
		v >>= 7;
		if (v != 0)
			t[n] |= 0x80;
		n++;
	} while (v != 0);
	return ak_buf_put(b, t, n);
}

static uint64_t
zigzag(int64_t v)
{
	return v < 0 ? ((uint64_t)(-(v + 1)) << 1) | 1 : (uint64_t)v << 1;
}

static enum ak_err
put_vstring(struct ak_buf *b, const char *s, size_t len)
{
	enum ak_err r;

	if ((r = put_varint(b, len)) != AK_OK)
		return r;
	return ak_buf_put(b, s, len);
}

/* The text table while encoding: each distinct string once, found by hash. The strings themselves sit
 * in the table's secure buffer (they name variables and carry vendor prefixes); the slots hold only
 * offsets into it. */
struct text_slot {
	uint32_t off, len, idx, used;
};

struct texts {
	struct ak_buf *b;      /* the table as it goes on the wire: vstrings */
	struct text_slot *slot;
	size_t cap, n;         /* slots (a power of two), strings */
};

static uint32_t
text_hash(const char *s, size_t len)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < len; i++)
		h = (h ^ (uint8_t)s[i]) * 16777619u;
	return h;
}

static enum ak_err
texts_grow(struct texts *t)
{
	struct text_slot *ns;
	size_t ncap = t->cap ? t->cap * 2 : 64, i, j;

	if ((ns = calloc(ncap, sizeof(*ns))) == NULL)
		return AK_ERR_NOMEM;
	for (i = 0; i < t->cap; i++) {
		if (!t->slot[i].used)
			continue;
		j = text_hash((const char *)ak_buf_ptr(t->b) + t->slot[i].off, t->slot[i].len) & (ncap - 1);
		while (ns[j].used)
			j = (j + 1) & (ncap - 1);
		ns[j] = t->slot[i];
	}
	free(t->slot);
	t->slot = ns;
	t->cap = ncap;
	return AK_OK;
}

/* The index of s[0..len) in the table, adding it when new. */
static enum ak_err
text_index(struct texts *t, const char *s, size_t len, uint32_t *idx)
{
	size_t j, at;
	enum ak_err r;

	if (len > AK_TEXT_MAX)
		return AK_ERR_TOO_LARGE;
	if ((t->n + 1) * 2 > t->cap && (r = texts_grow(t)) != AK_OK)
		return r;
	for (j = text_hash(s, len) & (t->cap - 1); t->slot[j].used; j = (j + 1) & (t->cap - 1)) {
		if (t->slot[j].len == len &&
		    memcmp(ak_buf_ptr(t->b) + t->slot[j].off, s, len) == 0) {
			*idx = t->slot[j].idx;
			return AK_OK;
		}
	}
	if ((r = put_varint(t->b, len)) != AK_OK)
		return r;
	at = ak_buf_len(t->b);
	if ((r = ak_buf_put(t->b, s, len)) != AK_OK)
		return r;
	t->slot[j].off = (uint32_t)at;
	t->slot[j].len = (uint32_t)len;
	t->slot[j].idx = (uint32_t)t->n;
	t->slot[j].used = 1;
	*idx = (uint32_t)t->n++;
	return AK_OK;
}

static enum ak_err
put_text(struct texts *t, struct ak_buf *rows, const char *s)
{
	uint32_t idx;
	enum ak_err r;

	if ((r = text_index(t, s != NULL ? s : "", s != NULL ? strlen(s) : 0, &idx)) != AK_OK)
		return r;
	return put_varint(rows, idx);
}

static enum ak_err
put_row(struct texts *t, struct ak_buf *rows, const struct ak_profile *p)
{
	char red[REDACT_MAX];
	const char *hint = p->rot.hint != NULL ? p->rot.hint : "";
	int64_t prev_until = ak_profile_next_expiry(p);
	size_t rl, head, i;
	uint32_t idx;
	uint8_t flags;
	enum ak_err r;

	ak_redact(p->secret != NULL ? p->secret : "", red, sizeof(red));
	rl = strlen(red);
	head = rl > TAIL_MAX ? rl - TAIL_MAX : 0;
	if (p->created < -TIME_MAX || p->created > TIME_MAX || p->rotated < -TIME_MAX ||
	    p->rotated > TIME_MAX || p->rotate_every < 0 || prev_until < 0 || p->lifetime < 0 ||
	    p->wipe_at < 0 || strlen(p->name) > AK_NAME_MAX || strlen(hint) >= AK_ROT_HINT_MAX ||
	    p->nvars > AK_VARS_MAX) {
		r = AK_ERR_INVALID;
		goto out;
	}
	flags = (uint8_t)((p->confirm ? F_CONFIRM : 0) | (p->expired ? F_EXPIRED : 0) |
	    (p->rot.hint != NULL && p->rot.prev == NULL ? F_DEACT_PENDING : 0));
	if (p->rotate_every != 0 || prev_until != 0 || p->lifetime != 0 || p->wipe_at != 0 || hint[0] != '\0')
		flags |= F_EXTRA;
	if ((r = put_vstring(rows, p->name, strlen(p->name))) != AK_OK ||
	    (r = put_text(t, rows, p->provider)) != AK_OK ||
	    (r = put_text(t, rows, p->secret_var)) != AK_OK ||
	    (r = text_index(t, red, head, &idx)) != AK_OK || (r = put_varint(rows, idx)) != AK_OK ||
	    (r = put_vstring(rows, red + head, rl - head)) != AK_OK ||
	    (r = put_text(t, rows, p->description)) != AK_OK ||
	    (r = put_varint(rows, zigzag(p->created))) != AK_OK ||
	    (r = put_varint(rows, zigzag(p->rotated - p->created))) != AK_OK ||
	    (r = put_varint(rows, p->nvars)) != AK_OK)
		goto out;
	for (i = 0; i < p->nvars; i++) {
		if ((r = text_index(t, p->vars[i].name, strlen(p->vars[i].name), &idx)) != AK_OK ||
		    (r = put_varint(rows, ((uint64_t)idx << 1) | (p->vars[i].secret ? 1 : 0))) != AK_OK)
			goto out;
	}
	if ((r = ak_buf_put_u8(rows, flags)) != AK_OK)
		goto out;
	if ((flags & F_EXTRA) &&
	    ((r = put_varint(rows, (uint64_t)p->rotate_every)) != AK_OK ||
	    (r = put_varint(rows, (uint64_t)prev_until)) != AK_OK ||
	    (r = put_varint(rows, (uint64_t)p->lifetime)) != AK_OK ||
	    (r = put_varint(rows, (uint64_t)p->wipe_at)) != AK_OK ||
	    (r = put_vstring(rows, hint, strlen(hint))) != AK_OK))
		goto out;
	r = AK_OK;
out:
	/* Wipe: the redacted form still carries the last characters of the secret. */
	sodium_memzero(red, sizeof(red));
	return r;
}

enum ak_err
ak_proto_put_list_packed(struct ak_buf *b, struct ak_profile *const *p, size_t n)
{
	struct texts t = { NULL, NULL, 0, 0 };
	struct ak_buf *rows = NULL;
	size_t i;
	enum ak_err r;

	if ((t.b = ak_buf_new_secure(AK_PROTO_MAX_REPLY)) == NULL ||
	    (rows = ak_buf_new_secure(AK_PROTO_MAX_REPLY)) == NULL) {
		r = AK_ERR_NOMEM;
		goto out;
	}
	if (n > AK_PROFILES_MAX) {
		r = AK_ERR_TOO_LARGE;
		goto out;
	}
	for (i = 0; i < n; i++)
		if ((r = put_row(&t, rows, p[i])) != AK_OK)
			goto out;
	if ((r = ak_proto_begin(b, AK_MSG_LIST_PACKED_REPLY)) != AK_OK ||
	    (r = put_varint(b, n)) != AK_OK || (r = put_varint(b, t.n)) != AK_OK ||
	    (r = ak_buf_put(b, ak_buf_ptr(t.b), ak_buf_len(t.b))) != AK_OK ||
	    (r = ak_buf_put(b, ak_buf_ptr(rows), ak_buf_len(rows))) != AK_OK)
		goto out;
	r = ak_proto_finish(b, AK_PROTO_MAX_REPLY);
out:
	if (r != AK_OK)
		ak_buf_reset(b);
	/* The slots hold only offsets and hashes, but hashes of names: wiped like the rest. */
	if (t.slot != NULL)
		sodium_memzero(t.slot, t.cap * sizeof(*t.slot));
	free(t.slot);
	ak_buf_free(t.b); /* both wipe */
	ak_buf_free(rows);
	return r;
}

/* Decoding ------------------------------------------------------------------------------------------ */

struct cur {
	const uint8_t *p;
	size_t len, at;
};

/* AK_ERR_TRUNCATED when the bytes end inside it; BAD_MESSAGE for a longer form than needed or more than
 * 64 bits. */
static enum ak_err
get_varint(struct cur *c, uint64_t *v)
{
	uint64_t x = 0;
	unsigned shift = 0;
	uint8_t byte;

	for (;;) {
		if (c->at >= c->len)
			return AK_ERR_TRUNCATED;
		byte = c->p[c->at++];
		if (shift == 63 && byte > 1)
			return AK_ERR_BAD_MESSAGE;
		x |= (uint64_t)(byte & 0x7f) << shift;
		if (!(byte & 0x80))
			break;
		if ((shift += 7) > 63)
			return AK_ERR_BAD_MESSAGE;
	}
	if (byte == 0 && shift > 0)
		return AK_ERR_BAD_MESSAGE; /* not the shortest form */
	*v = x;
	return AK_OK;
}

static enum ak_err
get_uint(struct cur *c, uint64_t max, uint64_t *v)
{
	enum ak_err r;

	if ((r = get_varint(c, v)) != AK_OK)
		return r;
	return *v > max ? AK_ERR_BAD_MESSAGE : AK_OK;
}

/* A vstring of at most max bytes, no NUL: *s points into the input. */
static enum ak_err
get_vstring(struct cur *c, size_t max, const uint8_t **s, size_t *len)
{
	uint64_t n;
	enum ak_err r;

	if ((r = get_varint(c, &n)) != AK_OK)
		return r;
	if (n > max)
		return AK_ERR_TOO_LARGE;
	if (n > c->len - c->at)
		return AK_ERR_TRUNCATED;
	*s = c->p + c->at;
	*len = (size_t)n;
	c->at += (size_t)n;
	if (n > 0 && memchr(*s, '\0', (size_t)n) != NULL)
		return AK_ERR_BAD_MESSAGE;
	return AK_OK;
}

static void *
pool_take(struct ak_proto_pool *pool, size_t n, size_t align)
{
	size_t at = (pool->used + align - 1) & ~(align - 1);

	if (at > pool->size || pool->size - at < n)
		return NULL;
	pool->used = at + n;
	return pool->p + at;
}

/* s[0..len) and s2[0..len2) joined, as a C string in the pool. */
static char *
pool_str(struct ak_proto_pool *pool, const uint8_t *s, size_t len, const uint8_t *s2, size_t len2)
{
	char *o;

	if ((o = pool_take(pool, len + len2 + 1, 1)) == NULL)
		return NULL;
	if (len > 0)
		memcpy(o, s, len);
	if (len2 > 0)
		memcpy(o + len, s2, len2);
	o[len + len2] = '\0';
	return o;
}

size_t
ak_proto_unpack_head_pool(size_t wire)
{
	/* A string takes at least one wire byte, and in the pool its bytes, a NUL, a pointer, a flag. */
	return wire * (2 + sizeof(char *) + 1) + 32;
}

size_t
ak_proto_unpack_row_pool(size_t wire)
{
	/* A variable takes at least one wire byte and a pointer and a flag in the pool; the name, the
	 * hint and the tail a NUL more than their bytes; the redacted prefix comes from the table. */
	return wire * (sizeof(char *) + 1) + REDACT_MAX + 64;
}

enum ak_err
ak_proto_unpack_head(struct ak_list_unpack *u, const uint8_t *p, size_t len, struct ak_proto_pool *pool,
    size_t *used)
{
	struct cur c = { p, len, 0 };
	uint64_t n, nt;
	const uint8_t *s;
	size_t sl, start = pool->used;
	uint32_t i;
	enum ak_err r;

	memset(u, 0, sizeof(*u));
	*used = 0;
	if ((r = get_uint(&c, AK_PROFILES_MAX, &n)) != AK_OK || (r = get_varint(&c, &nt)) != AK_OK)
		goto out;
	/* Each string takes at least a byte: a count beyond the bytes left costs nothing. */
	if (nt > len - c.at) {
		r = nt > AK_PROTO_MAX_REPLY ? AK_ERR_BAD_MESSAGE : AK_ERR_TRUNCATED;
		goto out;
	}
	if ((u->text = pool_take(pool, (size_t)nt * sizeof(char *), sizeof(char *))) == NULL ||
	    (u->text_var = pool_take(pool, (size_t)nt, 1)) == NULL) {
		r = AK_ERR_NOMEM;
		goto out;
	}
	memset(u->text_var, 0, (size_t)nt);
	for (i = 0; i < nt; i++) {
		if ((r = get_vstring(&c, AK_TEXT_MAX, &s, &sl)) != AK_OK)
			goto out;
		if ((u->text[i] = pool_str(pool, s, sl, NULL, 0)) == NULL) {
			r = AK_ERR_NOMEM;
			goto out;
		}
	}
	u->n = (uint32_t)n;
	u->ntext = (uint32_t)nt;
	*used = c.at;
	r = AK_OK;
out:
	if (r != AK_OK) {
		sodium_memzero(pool->p + start, pool->used - start);
		pool->used = start;
		memset(u, 0, sizeof(*u));
	}
	return r;
}

/* A text table index: BAD_MESSAGE past its end. */
static enum ak_err
get_text(struct ak_list_unpack *u, struct cur *c, char **s)
{
	uint64_t i;
	enum ak_err r;

	if ((r = get_varint(c, &i)) != AK_OK)
		return r;
	if (i >= u->ntext)
		return AK_ERR_BAD_MESSAGE;
	*s = u->text[i];
	return AK_OK;
}

/* Text i as a variable name: checked once however many rows use it. */
static enum ak_err
text_varname(struct ak_list_unpack *u, uint64_t i, char **s)
{
	if (i >= u->ntext)
		return AK_ERR_BAD_MESSAGE;
	if (u->text_var[i] == 0)
		u->text_var[i] = ak_varname_check(u->text[i]) == AK_OK ? 1 : 2;
	if (u->text_var[i] != 1)
		return AK_ERR_BAD_VARNAME;
	*s = u->text[i];
	return AK_OK;
}

static enum ak_err
get_time(struct cur *c, int64_t *t)
{
	uint64_t z;
	enum ak_err r;

	if ((r = get_uint(c, (uint64_t)TIME_MAX * 4 + 1, &z)) != AK_OK)
		return r;
	*t = (z & 1) ? -(int64_t)(z >> 1) - 1 : (int64_t)(z >> 1);
	return AK_OK;
}

enum ak_err
ak_proto_unpack_row(struct ak_list_unpack *u, const uint8_t *p, size_t len, struct ak_list_entry *e,
    struct ak_proto_pool *pool, size_t *used)
{
	struct cur c = { p, len, 0 };
	const uint8_t *s, *tail;
	size_t sl, tl, start = pool->used;
	uint64_t v, nv;
	int64_t delta;
	char *head;
	uint32_t i;
	uint8_t flags;
	enum ak_err r;

	memset(e, 0, sizeof(*e));
	*used = 0;
	if (u->done >= u->n) {
		r = AK_ERR_BAD_MESSAGE;
		goto out;
	}
	if ((r = get_vstring(&c, AK_NAME_MAX, &s, &sl)) != AK_OK)
		goto out;
	if ((e->name = pool_str(pool, s, sl, NULL, 0)) == NULL) {
		r = AK_ERR_NOMEM;
		goto out;
	}
	if ((r = get_text(u, &c, &e->provider)) != AK_OK || (r = get_varint(&c, &v)) != AK_OK ||
	    (r = text_varname(u, v, &e->secret_var)) != AK_OK || (r = get_text(u, &c, &head)) != AK_OK ||
	    (r = get_vstring(&c, TAIL_MAX, &tail, &tl)) != AK_OK)
		goto out;
	if (strlen(head) + tl >= REDACT_MAX) {
		r = AK_ERR_TOO_LARGE;
		goto out;
	}
	if ((e->redacted = pool_str(pool, (const uint8_t *)head, strlen(head), tail, tl)) == NULL) {
		r = AK_ERR_NOMEM;
		goto out;
	}
	if ((r = get_text(u, &c, &e->description)) != AK_OK || (r = get_time(&c, &e->created)) != AK_OK ||
	    (r = get_time(&c, &delta)) != AK_OK || (r = get_uint(&c, AK_VARS_MAX, &nv)) != AK_OK)
		goto out;
	e->rotated = e->created + delta;
	if (e->created < -TIME_MAX || e->created > TIME_MAX || e->rotated < -TIME_MAX ||
	    e->rotated > TIME_MAX || ak_name_check(e->name) != AK_OK) {
		r = e->created < -TIME_MAX || e->created > TIME_MAX || e->rotated < -TIME_MAX ||
		    e->rotated > TIME_MAX ? AK_ERR_BAD_MESSAGE : AK_ERR_BAD_NAME;
		goto out;
	}
	e->nvars = (uint32_t)nv;
	if (nv > 0 && ((e->vars = pool_take(pool, (size_t)nv * sizeof(char *), sizeof(char *))) == NULL ||
	    (e->var_secret = pool_take(pool, (size_t)nv, 1)) == NULL)) {
		r = AK_ERR_NOMEM;
		goto out;
	}
	for (i = 0; i < e->nvars; i++) {
		if ((r = get_varint(&c, &v)) != AK_OK || (r = text_varname(u, v >> 1, &e->vars[i])) != AK_OK)
			goto out;
		e->var_secret[i] = (uint8_t)(v & 1);
	}
	if (c.at >= c.len) {
		r = AK_ERR_TRUNCATED;
		goto out;
	}
	flags = c.p[c.at++];
	if (flags > (F_CONFIRM | F_EXPIRED | F_DEACT_PENDING | F_EXTRA)) {
		r = AK_ERR_BAD_MESSAGE;
		goto out;
	}
	e->confirm = (flags & F_CONFIRM) != 0;
	e->expired = (flags & F_EXPIRED) != 0;
	e->deact_pending = (flags & F_DEACT_PENDING) != 0;
	e->deact_hint = (char *)pool_str(pool, NULL, 0, NULL, 0);
	if (e->deact_hint == NULL) {
		r = AK_ERR_NOMEM;
		goto out;
	}
	if (flags & F_EXTRA) {
		if ((r = get_uint(&c, INT64_MAX, &v)) != AK_OK)
			goto out;
		e->rotate_every = (int64_t)v;
		if ((r = get_uint(&c, INT64_MAX, &v)) != AK_OK)
			goto out;
		e->prev_until = (int64_t)v;
		if ((r = get_uint(&c, INT64_MAX, &v)) != AK_OK)
			goto out;
		e->lifetime = (int64_t)v;
		if ((r = get_uint(&c, INT64_MAX, &v)) != AK_OK)
			goto out;
		e->wipe_at = (int64_t)v;
		if ((r = get_vstring(&c, AK_ROT_HINT_MAX - 1, &s, &sl)) != AK_OK)
			goto out;
		if (sl > 0) {
			/* the empty hint taken above is the pool's last byte: give it back */
			pool->used--;
			if ((e->deact_hint = pool_str(pool, s, sl, NULL, 0)) == NULL) {
				r = AK_ERR_NOMEM;
				goto out;
			}
		}
		/* One encoding per row: the flag only when something behind it is set. */
		if (e->rotate_every == 0 && e->prev_until == 0 && e->lifetime == 0 && e->wipe_at == 0 &&
		    sl == 0) {
			r = AK_ERR_BAD_MESSAGE;
			goto out;
		}
	}
	if ((e->deact_hint[0] != '\0' && ak_rot_hint_check(e->deact_hint) != AK_OK) ||
	    (e->deact_pending && e->deact_hint[0] == '\0')) {
		r = AK_ERR_BAD_MESSAGE;
		goto out;
	}
	u->done++;
	*used = c.at;
	r = AK_OK;
out:
	if (r != AK_OK) {
		sodium_memzero(pool->p + start, pool->used - start);
		pool->used = start;
		memset(e, 0, sizeof(*e));
	}
	return r;
}
