/* test_proto_pack.c - the packed LIST reply: the same rows as LIST, byte ranges that end anywhere,
 * truncation and bit-flip sweeps, hostile tables and varints, and its size beside LIST's.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ak_buf.h"
#include "ak_err.h"
#include "ak_proto.h"
#include "ak_proto_pack.h"
#include "ak_smem.h"
#include "ak_store.h"
#include "ak_util.h"
#include "t.h"
#include "t_list.h"

#define NPROF 7
#define BIG (1u << 20)

/* Made up here, key-shaped: test data only. */
static void
fake_key(unsigned i, char *buf, size_t len)
{
	snprintf(buf, len, "sk-ant-api03-%040u%053uAA", i * 7919u, i);
}

/* Profiles covering every field of a row: shared and distinct text, secret and plain variables,
 * negative times, the policies, a kept previous key, a pending deactivation, an expired profile. */
static struct ak_profile *
mk_profile(unsigned i)
{
	struct ak_profile *p = ak_profile_new();
	char name[32], key[128];

	if (p == NULL)
		abort();
	snprintf(name, sizeof(name), "prof-%u", i);
	fake_key(i, key, sizeof(key));
	CHECK_EQ(ak_profile_set_field(&p->name, name), AK_OK);
	CHECK_EQ(ak_profile_set_field(&p->provider, i % 3 ? "anthropic" : "openai"), AK_OK);
	CHECK_EQ(ak_profile_set_field(&p->secret_var, i % 3 ? "ANTHROPIC_API_KEY" : "OPENAI_API_KEY"), AK_OK);
	CHECK_EQ(ak_profile_set_field(&p->secret, i == 5 ? "short" : key), AK_OK);
	CHECK_EQ(ak_profile_set_field(&p->description, i == 2 ? "prod \xe2\x80\x94 \"x\"\n2nd" : ""), AK_OK);
	CHECK_EQ(ak_profile_set_field(&p->source, ""), AK_OK);
	p->created = i == 1 ? -5 : 1700000000 + (int64_t)i;
	p->rotated = i == 1 ? -(1LL << 53) : i == 3 ? (1LL << 53) : p->created;
	if (i % 2)
		CHECK_EQ(ak_profile_set_var(p, "ANTHROPIC_MODEL", "claude"), AK_OK);
	if (i == 4) {
		CHECK_EQ(ak_profile_set_var(p, "EXTRA_KEY", key), AK_OK);
		p->vars[p->nvars - 1].secret = 1;
		CHECK_EQ(ak_profile_set_var(p, "_Z", ""), AK_OK);
		p->rotate_every = 86400 * 90;
		CHECK_EQ(ak_profile_set_field(&p->rot.prev, "sk-ant-api03-previous-previous-previousAA"), AK_OK);
		p->rot.until = 1800000000;
		CHECK_EQ(ak_profile_set_field(&p->rot.hint, "sk-ant-api03-R2D...igAA"), AK_OK);
	}
	if (i == 6) {
		p->confirm = 1;
		p->expired = 1;
		p->lifetime = 3600;
		p->wipe_at = 1700003600;
		CHECK_EQ(ak_profile_set_field(&p->rot.hint, "sk-ant-api03-ABC...xyAA"), AK_OK);
	}
	return p;
}

struct packed {
	uint8_t *payload; /* after the frame's length and type */
	size_t len;
};

static struct packed
encode(struct ak_profile **p, size_t n)
{
	struct ak_buf *b = ak_buf_new_secure(AK_PROTO_MAX_REPLY);
	struct packed out;

	CHECK(b != NULL);
	CHECK_EQ(ak_proto_put_list_packed(b, p, n), AK_OK);
	CHECK(ak_buf_len(b) >= 5);
	CHECK_EQ(ak_buf_ptr(b)[4], AK_MSG_LIST_PACKED_REPLY);
	out.len = ak_buf_len(b) - 5;
	if ((out.payload = malloc(out.len + 1)) == NULL)
		abort();
	memcpy(out.payload, ak_buf_ptr(b) + 5, out.len);
	ak_buf_free(b);
	return out;
}

/* Decode a whole payload: AK_OK only when every row decodes and nothing is left over. Rows into e
 * (may be NULL) when there is room for them; they point into the pool, given to *keep on success (the
 * caller frees keep->p), else freed. */
static enum ak_err
decode_all(const uint8_t *p, size_t len, struct ak_list_entry *e, size_t emax, uint32_t *n,
    struct ak_proto_pool *keep)
{
	struct ak_proto_pool pool;
	struct ak_list_unpack u;
	struct ak_list_entry scratch;
	size_t used;
	enum ak_err r;

	pool.size = ak_proto_unpack_head_pool(len) + ak_proto_unpack_row_pool(len) + 4096;
	pool.used = 0;
	if ((pool.p = malloc(pool.size)) == NULL)
		abort();
	if ((r = ak_proto_unpack_head(&u, p, len, &pool, &used)) != AK_OK)
		goto out;
	p += used;
	len -= used;
	*n = u.n;
	while (u.done < u.n) {
		struct ak_list_entry *t = e != NULL && u.done < emax ? &e[u.done] : &scratch;

		if ((r = ak_proto_unpack_row(&u, p, len, t, &pool, &used)) != AK_OK)
			goto out;
		p += used;
		len -= used;
	}
	r = len == 0 ? AK_OK : AK_ERR_BAD_MESSAGE;
out:
	if (keep != NULL && r == AK_OK)
		*keep = pool;
	else
		free(pool.p);
	return r;
}

static void
test_same_rows_as_list(void)
{
	struct ak_profile *p[NPROF];
	struct ak_list_entry old[NPROF], got[NPROF];
	struct ak_buf *b = ak_buf_new(BIG);
	struct ak_proto_pool keep = { NULL, 0, 0 };
	struct packed pk;
	uint32_t n = 0, i;
	char key[128];

	for (i = 0; i < NPROF; i++)
		p[i] = mk_profile(i);
	pk = encode(p, NPROF);
	/* No secret travels: not the keys, not the previous key, not the secret variable's value. */
	for (i = 0; i < NPROF; i++) {
		fake_key(i, key, sizeof(key));
		CHECK(memmem(pk.payload, pk.len, key, strlen(key)) == NULL);
		CHECK(memmem(pk.payload, pk.len, key + 13, 16) == NULL);
	}
	CHECK(memmem(pk.payload, pk.len, "previous-previous", 17) == NULL);
	CHECK_EQ(decode_all(pk.payload, pk.len, got, NPROF, &n, &keep), AK_OK);
	CHECK_EQ(n, NPROF);
	for (i = 0; i < NPROF; i++) {
		CHECK_EQ(ak_proto_put_list_entry(b, p[i]), AK_OK);
		CHECK_EQ(ak_proto_get_list_entry(b, &old[i]), AK_OK);
		CHECK(t_list_entries_equal(&old[i], &got[i]));
		ak_list_entry_clear(&old[i]);
	}
	CHECK_EQ(got[4].deact_pending, 0);
	CHECK_STR(got[4].deact_hint, "sk-ant-api03-R2D...igAA");
	CHECK_EQ(got[6].deact_pending, 1);
	CHECK_EQ(got[1].rotated, -(1LL << 53));
	CHECK_EQ(got[3].rotated, 1LL << 53);
	CHECK_EQ(got[4].var_secret[0], 1);
	CHECK_EQ(got[4].var_secret[1], 0);
	/* The table holds each repeated text once: "anthropic" appears in the bytes once. */
	CHECK(memmem(pk.payload, pk.len, "anthropic", 9) != NULL);
	{
		const uint8_t *f = memmem(pk.payload, pk.len, "anthropic", 9);

		CHECK(f != NULL && memmem(f + 1, pk.len - (size_t)(f + 1 - pk.payload), "anthropic", 9) == NULL);
	}
	free(keep.p);
	for (i = 0; i < NPROF; i++)
		ak_profile_free(p[i]);
	free(pk.payload);
	ak_buf_free(b);
}

/* Fed the bytes as they might arrive, one more at a time: each call either takes a whole head or row
 * or says TRUNCATED and takes nothing, and the rows come out the same. */
static void
test_byte_by_byte(void)
{
	struct ak_profile *p[NPROF];
	struct ak_list_entry want[NPROF], e;
	struct ak_proto_pool pool, keep = { NULL, 0, 0 };
	struct ak_list_unpack u;
	struct packed pk;
	size_t at = 0, avail, used, before;
	uint32_t n = 0, i, got = 0;
	int head = 0;
	enum ak_err r;

	for (i = 0; i < NPROF; i++)
		p[i] = mk_profile(i);
	pk = encode(p, NPROF);
	CHECK_EQ(decode_all(pk.payload, pk.len, want, NPROF, &n, &keep), AK_OK);
	pool.size = ak_proto_unpack_head_pool(pk.len) + ak_proto_unpack_row_pool(AK_PROTO_PACKED_ROW_MAX);
	pool.used = 0;
	if ((pool.p = malloc(pool.size)) == NULL)
		abort();
	for (avail = 0; avail <= pk.len; avail++) {
		for (;;) {
			before = pool.used;
			if (!head)
				r = ak_proto_unpack_head(&u, pk.payload + at, avail - at, &pool, &used);
			else if (u.done < u.n)
				r = ak_proto_unpack_row(&u, pk.payload + at, avail - at, &e, &pool, &used);
			else
				break;
			if (r == AK_ERR_TRUNCATED) {
				CHECK_EQ(pool.used, before);
				break;
			}
			CHECK_EQ(r, AK_OK);
			if (r != AK_OK)
				goto out;
			at += used;
			if (!head) {
				head = 1;
				continue;
			}
			CHECK(t_list_entries_equal(&e, &want[got]));
			got++;
		}
	}
	CHECK_EQ(got, NPROF);
	CHECK_EQ(at, pk.len);
out:
	free(pool.p);
	free(keep.p);
	for (i = 0; i < NPROF; i++)
		ak_profile_free(p[i]);
	free(pk.payload);
}

/* Every proper prefix fails; every single-bit flip decodes or fails cleanly (ASan watches). */
static void
test_sweeps(void)
{
	struct ak_profile *p[NPROF];
	struct packed pk;
	uint8_t *m;
	uint32_t n, i;
	size_t k;
	int bit;

	for (i = 0; i < NPROF; i++)
		p[i] = mk_profile(i);
	pk = encode(p, NPROF);
	for (k = 0; k < pk.len; k++)
		CHECK(decode_all(pk.payload, k, NULL, 0, &n, NULL) != AK_OK);
	if ((m = malloc(pk.len)) == NULL)
		abort();
	for (k = 0; k < pk.len; k++)
		for (bit = 0; bit < 8; bit++) {
			memcpy(m, pk.payload, pk.len);
			m[k] ^= (uint8_t)(1u << bit);
			(void)decode_all(m, pk.len, NULL, 0, &n, NULL);
		}
	free(m);
	for (i = 0; i < NPROF; i++)
		ak_profile_free(p[i]);
	free(pk.payload);
}

static enum ak_err
dec(const uint8_t *b, size_t len)
{
	uint32_t n;

	return decode_all(b, len, NULL, 0, &n, NULL);
}

/* Hand-made payloads: each one thing wrong. A row here: name "a", provider 0, secret_var 1, redacted
 * head 0 and an empty tail, description 0, created 0, rotated +0, no variables, flags 0. */
static void
test_hostile(void)
{
	static const uint8_t ok[] = { 1, 2, 0, 1, 'K', 1, 'a', 0, 1, 0, 0, 0, 0, 0, 0, 0 };
	uint8_t m[sizeof(ok) + 16];

	CHECK_EQ(dec(ok, sizeof(ok)), AK_OK);
	/* trailing byte */
	memcpy(m, ok, sizeof(ok));
	m[sizeof(ok)] = 0;
	CHECK_EQ(dec(m, sizeof(ok) + 1), AK_ERR_BAD_MESSAGE);
	/* a varint longer than needed: the count 1 as 0x81 0x00 */
	{
		static const uint8_t v[] = { 0x81, 0x00, 2, 0, 1, 'K', 1, 'a', 0, 1, 0, 0, 0, 0, 0, 0, 0 };

		CHECK_EQ(dec(v, sizeof(v)), AK_ERR_BAD_MESSAGE);
	}
	/* a varint of more than 64 bits */
	{
		static const uint8_t v[] = { 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f };

		CHECK_EQ(dec(v, sizeof(v)), AK_ERR_BAD_MESSAGE);
	}
	/* a text index past the table */
	memcpy(m, ok, sizeof(ok));
	m[8] = 2;
	CHECK_EQ(dec(m, sizeof(ok)), AK_ERR_BAD_MESSAGE);
	/* the secret variable names the empty string: not a variable name */
	memcpy(m, ok, sizeof(ok));
	m[8] = 0;
	CHECK_EQ(dec(m, sizeof(ok)), AK_ERR_BAD_VARNAME);
	/* a bad profile name */
	memcpy(m, ok, sizeof(ok));
	m[6] = '/';
	CHECK_EQ(dec(m, sizeof(ok)), AK_ERR_BAD_NAME);
	/* a NUL in a text */
	memcpy(m, ok, sizeof(ok));
	m[4] = 0;
	CHECK_EQ(dec(m, sizeof(ok)), AK_ERR_BAD_MESSAGE);
	/* unknown flag bits; the extra-fields flag with nothing behind it */
	memcpy(m, ok, sizeof(ok));
	m[sizeof(ok) - 1] = 0x10;
	CHECK_EQ(dec(m, sizeof(ok)), AK_ERR_BAD_MESSAGE);
	memcpy(m, ok, sizeof(ok));
	m[sizeof(ok) - 1] = 8;
	memcpy(m + sizeof(ok), (uint8_t[]){ 0, 0, 0, 0, 0 }, 5);
	CHECK_EQ(dec(m, sizeof(ok) + 5), AK_ERR_BAD_MESSAGE);
	/* a pending deactivation without a hint */
	memcpy(m, ok, sizeof(ok));
	m[sizeof(ok) - 1] = 4;
	CHECK_EQ(dec(m, sizeof(ok)), AK_ERR_BAD_MESSAGE);
	/* more variables than a profile may have, and rows beyond the limit: refused before any pool */
	memcpy(m, ok, sizeof(ok));
	m[sizeof(ok) - 2] = 65;
	CHECK_EQ(dec(m, sizeof(ok)), AK_ERR_BAD_MESSAGE);
	{
		static const uint8_t v[] = { 0x80, 0x80, 0x80, 0x80, 0x01, 0 };

		CHECK_EQ(dec(v, sizeof(v)), AK_ERR_BAD_MESSAGE);
	}
	/* a table count far beyond the bytes: nothing is allocated for it */
	{
		static const uint8_t v[] = { 0, 0xff, 0xff, 0xff, 0xff, 0x0f };

		CHECK(dec(v, sizeof(v)) != AK_OK);
	}
}

/* The point of the format: 100 profiles like the bench's take under a quarter of LIST's bytes. */
static void
test_size(void)
{
	struct ak_profile *p[100];
	struct ak_buf *b = ak_buf_new(BIG);
	struct packed pk;
	char name[16], key[128];
	size_t i;

	for (i = 0; i < 100; i++) {
		p[i] = ak_profile_new();
		snprintf(name, sizeof(name), "p%05zu", i);
		fake_key((unsigned)i, key, sizeof(key));
		CHECK_EQ(ak_profile_set_field(&p[i]->name, name), AK_OK);
		CHECK_EQ(ak_profile_set_field(&p[i]->provider, "anthropic"), AK_OK);
		CHECK_EQ(ak_profile_set_field(&p[i]->secret_var, "ANTHROPIC_API_KEY"), AK_OK);
		CHECK_EQ(ak_profile_set_field(&p[i]->secret, key), AK_OK);
		CHECK_EQ(ak_profile_set_field(&p[i]->description, ""), AK_OK);
		p[i]->created = p[i]->rotated = 1764460800;
		CHECK_EQ(ak_profile_set_var(p[i], "ANTHROPIC_MODEL", "model"), AK_OK);
		CHECK_EQ(ak_proto_put_list_entry(b, p[i]), AK_OK);
	}
	pk = encode(p, 100);
	printf("100 rows: LIST %zu bytes, packed %zu\n", ak_buf_len(b) + 4, pk.len);
	CHECK(pk.len * 4 < ak_buf_len(b));
	for (i = 0; i < 100; i++)
		ak_profile_free(p[i]);
	free(pk.payload);
	ak_buf_free(b);
}

int
main(void)
{
	if (ak_smem_init() != 0)
		return 1;
	test_same_rows_as_list();
	test_byte_by_byte();
	test_sweeps();
	test_hostile();
	test_size();
	T_DONE();
}
