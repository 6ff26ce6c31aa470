/* test_proto.c - wire protocol: framing, round trips, truncation/bit-flip/random sweeps, caps.
 *
 * Leaks: heap leaks are caught by LeakSanitizer in the ASan build; secure-arena leaks by comparing
 * ak_smem_stats().in_use before and after each hostile decode.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ak_buf.h"
#include "ak_err.h"
#include "ak_edit.h"
#include "ak_proto.h"
#include "ak_smem.h"
#include "ak_store.h"
#include "ak_util.h"
#include "t.h"
#include "t_list.h"

#define BIG (1u << 20)

static const char SECRET[] =
    "sk-ant-api03-abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLAA";

/* Deterministic PRNG (xorshift64*) so a failure reproduces. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t
rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static size_t
arena_in_use(void)
{
	struct ak_smem_stats st;

	ak_smem_stats(&st);
	return st.in_use;
}

/* A fresh buffer holding a copy of data[0..len). */
static struct ak_buf *
buf_of(const uint8_t *data, size_t len)
{
	struct ak_buf *b = ak_buf_new(len + 16);

	if (b == NULL)
		abort();
	if (len > 0 && ak_buf_put(b, data, len) != AK_OK)
		abort();
	return b;
}

/* Copy of a buffer's unconsumed bytes (malloc'd). */
static uint8_t *
bytes_of(const struct ak_buf *b, size_t *len)
{
	uint8_t *p;

	*len = ak_buf_len(b);
	if ((p = malloc(*len + 1)) == NULL)
		abort();
	memcpy(p, ak_buf_ptr(b), *len);
	return p;
}

static struct ak_profile *
sample_profile(void)
{
	struct ak_profile *p = ak_profile_new();

	CHECK(p != NULL);
	if (p == NULL)
		abort();
	CHECK_EQ(ak_profile_set_field(&p->name, "production"), AK_OK);
	CHECK_EQ(ak_profile_set_field(&p->provider, "anthropic"), AK_OK);
	CHECK_EQ(ak_profile_set_field(&p->secret_var, "ANTHROPIC_API_KEY"), AK_OK);
	CHECK_EQ(ak_profile_set_field(&p->secret, SECRET), AK_OK);
	CHECK_EQ(ak_profile_set_field(&p->description, "prod key \xe2\x80\x94 'quoted' \"x\" $HOME\n2nd line"),
	    AK_OK);
	CHECK_EQ(ak_profile_set_field(&p->source, "aws-sm://us-east-1/prod/anthropic"), AK_OK);
	p->created = 1700000000;
	p->rotated = -2; /* negative times must survive the two's complement encoding */
	CHECK_EQ(ak_profile_set_var(p, "ANTHROPIC_MODEL", "claude-sonnet-4-5-20250929"), AK_OK);
	CHECK_EQ(ak_profile_set_var(p, "MAX_TOKENS", "1024"), AK_OK);
	CHECK_EQ(ak_profile_set_var(p, "_EMPTY", ""), AK_OK);
	return p;
}

/* Decoders under test, all with one shape: decode, free what was decoded, return the result. */
static enum ak_err
dec_profile(struct ak_buf *b)
{
	struct ak_profile *p = (struct ak_profile *)1;
	enum ak_err r = ak_proto_get_profile(b, &p);

	if (r != AK_OK)
		CHECK(p == NULL);
	ak_profile_free(p);
	return r;
}

static enum ak_err
dec_status(struct ak_buf *b)
{
	struct ak_status st;
	enum ak_err r = ak_proto_get_status(b, &st);

	if (r != AK_OK)
		CHECK(st.store_path == NULL);
	ak_status_clear(&st);
	return r;
}

static enum ak_err
dec_list(struct ak_buf *b)
{
	struct ak_list_entry e;
	enum ak_err r = ak_proto_get_list_entry(b, &e);

	if (r != AK_OK)
		CHECK(e.name == NULL && e.vars == NULL);
	ak_list_entry_clear(&e);
	return r;
}

/* The pool decoder against the malloc one on the same bytes: the same verdict, the same entry, and a
 * pool that never needs more than the row's wire bytes plus AK_PROTO_LIST_POOL_EXTRA. */
static enum ak_err
dec_list_pool(struct ak_buf *b)
{
	struct ak_list_entry e, m;
	size_t len = ak_buf_len(b);
	struct ak_buf *copy = ak_buf_new(BIG);
	uint8_t *mem = malloc(len + AK_PROTO_LIST_POOL_EXTRA + 1);
	struct ak_proto_pool pool = { mem, len + AK_PROTO_LIST_POOL_EXTRA, 0 };
	enum ak_err r, rm;

	if (copy == NULL || mem == NULL || ak_buf_put(copy, ak_buf_ptr(b), len) != AK_OK)
		abort();
	r = ak_proto_get_list_entry_pool(b, &e, &pool);
	rm = ak_proto_get_list_entry(copy, &m);
	CHECK_EQ(r, rm);
	if (r == AK_OK && rm == AK_OK) {
		CHECK(t_list_entries_equal(&e, &m));
		CHECK(pool.used <= len - ak_buf_len(b) + AK_PROTO_LIST_POOL_EXTRA);
		CHECK_EQ(ak_buf_len(b), ak_buf_len(copy));
	} else if (r != AK_OK) {
		CHECK(e.name == NULL && e.vars == NULL);
	}
	ak_list_entry_clear(&m);
	ak_buf_free(copy);
	free(mem);
	return r;
}

static enum ak_err
dec_error(struct ak_buf *b)
{
	enum ak_err e;
	char *d = (char *)1;
	enum ak_err r = ak_proto_get_error(b, &e, &d);

	if (r != AK_OK)
		CHECK(d == NULL);
	free(d);
	return r;
}

static enum ak_err
dec_use(struct ak_buf *b)
{
	struct ak_use_entry e;
	enum ak_err r = ak_proto_get_use_entry(b, &e);

	if (r != AK_OK)
		CHECK(e.profile == NULL && e.exe == NULL);
	ak_use_entry_clear(&e);
	return r;
}

static enum ak_err
dec_logreq(struct ak_buf *b)
{
	char *profile = (char *)1;
	int64_t since = 1;
	enum ak_err r = ak_proto_get_log_req(b, &profile, &since);

	if (r != AK_OK)
		CHECK(profile == NULL && since == 0);
	free(profile);
	return r;
}

typedef enum ak_err (*decoder)(struct ak_buf *);

/* Run dec on data[0..len), checking nothing is left in the arena afterwards. */
static enum ak_err
run(decoder dec, const uint8_t *data, size_t len)
{
	struct ak_buf *b = buf_of(data, len);
	size_t before = arena_in_use();
	enum ak_err r = dec(b);

	ak_buf_free(b);
	CHECK_EQ(arena_in_use(), before);
	return r;
}

/* Every proper prefix of a valid payload is rejected as truncated (or malformed), never accepted. */
static void
truncation_sweep(decoder dec, const uint8_t *payload, size_t len)
{
	size_t k;
	int bad = 0;

	CHECK_EQ(run(dec, payload, len), AK_OK);
	for (k = 0; k < len; k++) {
		enum ak_err r = run(dec, payload, k);
		if (r != AK_ERR_TRUNCATED && r != AK_ERR_BAD_MESSAGE) {
			if (bad++ < 5)
				fprintf(stderr, "prefix %zu/%zu: %s\n", k, len, ak_strerror(r));
		}
	}
	CHECK_EQ(bad, 0);
}

/* Every single-bit flip: any result is fine, as long as nothing crashes or leaks. */
static void
bitflip_sweep(decoder dec, const uint8_t *payload, size_t len)
{
	uint8_t *m = malloc(len);
	size_t i;
	int bit;

	if (m == NULL)
		abort();
	for (i = 0; i < len; i++) {
		for (bit = 0; bit < 8; bit++) {
			memcpy(m, payload, len);
			m[i] ^= (uint8_t)(1u << bit);
			(void)run(dec, m, len);
		}
	}
	free(m);
}

/* Payload encodings (the bytes after the type byte) of one valid message of each kind. */
static uint8_t *
enc_profile(size_t *len)
{
	struct ak_buf *b = ak_buf_new_secure(BIG);
	struct ak_profile *p = sample_profile();
	uint8_t *out;

	CHECK_EQ(ak_proto_put_profile(b, p), AK_OK);
	out = bytes_of(b, len);
	ak_profile_free(p);
	ak_buf_free(b);
	return out;
}

static struct ak_status
sample_status(void)
{
	struct ak_status st;

	memset(&st, 0, sizeof(st));
	st.proto_version = AK_PROTO_VERSION;
	st.unlocked = 1;
	st.weak_kdf = 1;
	st.pid = 4242;
	st.store_path = (char *)"/home/u/.local/share/akagent/keystore";
	st.nprofiles = 3;
	st.lifetime_left = 28000;
	st.idle_timeout = AK_LIFETIME_NONE;
	return st;
}

static uint8_t *
enc_status(size_t *len)
{
	struct ak_buf *b = ak_buf_new(BIG);
	struct ak_status st = sample_status();
	uint8_t *out;

	CHECK_EQ(ak_proto_put_status(b, &st), AK_OK);
	out = bytes_of(b, len);
	ak_buf_free(b);
	return out;
}

static uint8_t *
enc_list(size_t *len)
{
	struct ak_buf *b = ak_buf_new(BIG);
	struct ak_profile *p = sample_profile();
	uint8_t *out;

	CHECK_EQ(ak_proto_put_list_entry(b, p), AK_OK);
	out = bytes_of(b, len);
	ak_profile_free(p);
	ak_buf_free(b);
	return out;
}

static uint8_t *
enc_error(size_t *len)
{
	struct ak_buf *b = ak_buf_new(BIG);
	uint8_t *out;

	CHECK_EQ(ak_proto_put_error(b, AK_ERR_NO_PROFILE, "profile 'production'"), AK_OK);
	out = bytes_of(b, len);
	ak_buf_free(b);
	return out;
}

static const struct ak_use_entry sample_use = {
	.time = 1764441600, .op = AK_MSG_GET, .pid = 4242, .uid = 1000, .err = AK_ERR_NO_PROFILE,
	.profile = (char *)"production", .exe = (char *)"/usr/bin/python3.11",
};

static uint8_t *
enc_use(size_t *len)
{
	struct ak_buf *b = ak_buf_new(BIG);
	uint8_t *out;

	CHECK_EQ(ak_proto_put_use_entry(b, &sample_use), AK_OK);
	out = bytes_of(b, len);
	ak_buf_free(b);
	return out;
}

static uint8_t *
enc_logreq(size_t *len)
{
	struct ak_buf *b = ak_buf_new(BIG);
	uint8_t *out;

	CHECK_EQ(ak_proto_put_log_req(b, "production", 1764441600), AK_OK);
	out = bytes_of(b, len);
	ak_buf_free(b);
	return out;
}

/* Framing --------------------------------------------------------------------------------------- */

static void
test_framing(void)
{
	struct ak_buf *b = ak_buf_new(BIG), *in;
	size_t flen = 0, need = 0;
	uint8_t type = 0, hdr[8];
	uint32_t len = 0;
	uint8_t *big;

	/* A GET request, end to end. */
	CHECK_EQ(ak_proto_begin(b, AK_MSG_GET), AK_OK);
	CHECK_EQ(ak_buf_put_cstring(b, "production"), AK_OK);
	CHECK_EQ(ak_proto_finish(b, AK_PROTO_MAX_REQUEST), AK_OK);
	CHECK_EQ(ak_buf_len(b), 4 + 1 + 4 + 10);
	CHECK_EQ(ak_buf_peek_u32(b, &len), AK_OK);
	CHECK_EQ(len, 15);
	CHECK_EQ(ak_proto_frame(b, AK_PROTO_MAX_REQUEST, &flen, &need), AK_OK);
	CHECK_EQ(flen, 19);
	{
		static const uint8_t want[] = { 0, 0, 0, 0x0f, 0x05, 0, 0, 0, 0x0a,
			'p', 'r', 'o', 'd', 'u', 'c', 't', 'i', 'o', 'n' };
		CHECK_EQ(ak_buf_len(b), sizeof(want));
		CHECK(memcmp(ak_buf_ptr(b), want, sizeof(want)) == 0);
	}
	/* Each prefix of the frame: TRUNCATED with the right need. */
	{
		size_t k, total = ak_buf_len(b);
		uint8_t *all = bytes_of(b, &total);
		for (k = 0; k < total; k++) {
			in = buf_of(all, k);
			need = 0;
			CHECK_EQ(ak_proto_frame(in, AK_PROTO_MAX_REQUEST, &flen, &need), AK_ERR_TRUNCATED);
			CHECK_EQ(need, k < 4 ? 4 : 19);
			ak_buf_free(in);
		}
		/* A frame followed by the start of the next: the first frame's length. */
		in = buf_of(all, total);
		CHECK_EQ(ak_buf_put(in, all, 7), AK_OK);
		CHECK_EQ(ak_proto_frame(in, AK_PROTO_MAX_REQUEST, &flen, &need), AK_OK);
		CHECK_EQ(flen, 19);
		CHECK_EQ(ak_buf_consume(in, 4), AK_OK);
		CHECK_EQ(ak_buf_get_u8(in, &type), AK_OK);
		CHECK_EQ(type, AK_MSG_GET);
		ak_buf_free(in);
		free(all);
	}

	/* Length 0: malformed even though "complete". */
	memset(hdr, 0, sizeof(hdr));
	in = buf_of(hdr, 8);
	CHECK_EQ(ak_proto_frame(in, AK_PROTO_MAX_REQUEST, &flen, &need), AK_ERR_BAD_MESSAGE);
	ak_buf_free(in);

	/* Oversized: decided from the 4-byte header alone, at limit + 1 and at 0xffffffff. */
	hdr[0] = 0x00; hdr[1] = 0x04; hdr[2] = 0x00; hdr[3] = 0x01; /* 256 KiB + 1 */
	in = buf_of(hdr, 4);
	CHECK_EQ(ak_proto_frame(in, AK_PROTO_MAX_REQUEST, &flen, &need), AK_ERR_TOO_LARGE);
	ak_buf_free(in);
	hdr[0] = 0x00; hdr[1] = 0x04; hdr[2] = 0x00; hdr[3] = 0x00; /* exactly the limit: just incomplete */
	in = buf_of(hdr, 5);
	CHECK_EQ(ak_proto_frame(in, AK_PROTO_MAX_REQUEST, &flen, &need), AK_ERR_TRUNCATED);
	CHECK_EQ(need, 4 + AK_PROTO_MAX_REQUEST);
	ak_buf_free(in);
	memset(hdr, 0xff, 4);
	in = buf_of(hdr, 4);
	CHECK_EQ(ak_proto_frame(in, AK_PROTO_MAX_REQUEST, &flen, &need), AK_ERR_TOO_LARGE);
	CHECK_EQ(ak_proto_frame(in, AK_PROTO_MAX_REPLY, &flen, &need), AK_ERR_TOO_LARGE);
	ak_buf_free(in);
	/* NULL out-pointers are allowed. */
	in = buf_of(hdr, 2);
	CHECK_EQ(ak_proto_frame(in, AK_PROTO_MAX_REQUEST, NULL, NULL), AK_ERR_TRUNCATED);
	ak_buf_free(in);

	/* finish: a payload over the limit is refused; exactly at the limit is fine. */
	if ((big = calloc(1, AK_PROTO_MAX_REQUEST)) == NULL)
		abort();
	CHECK_EQ(ak_proto_begin(b, AK_MSG_ADD), AK_OK);
	CHECK_EQ(ak_buf_put(b, big, AK_PROTO_MAX_REQUEST - 1), AK_OK);
	CHECK_EQ(ak_proto_finish(b, AK_PROTO_MAX_REQUEST), AK_OK);
	CHECK_EQ(ak_proto_frame(b, AK_PROTO_MAX_REQUEST, &flen, &need), AK_OK);
	CHECK_EQ(flen, 4 + AK_PROTO_MAX_REQUEST);
	CHECK_EQ(ak_buf_put_u8(b, 0), AK_OK);
	CHECK_EQ(ak_proto_finish(b, AK_PROTO_MAX_REQUEST), AK_ERR_TOO_LARGE);
	free(big);

	/* begin resets whatever was there; a bare type is a valid frame of length 1. */
	CHECK_EQ(ak_proto_begin(b, AK_MSG_OK), AK_OK);
	CHECK_EQ(ak_proto_finish(b, AK_PROTO_MAX_REPLY), AK_OK);
	CHECK_EQ(ak_buf_len(b), 5);
	CHECK(memcmp(ak_buf_ptr(b), "\0\0\0\1\x80", 5) == 0);
	ak_buf_free(b);
}

/* Round trips ----------------------------------------------------------------------------------- */

static void
test_profile_roundtrip(void)
{
	struct ak_buf *b = ak_buf_new_secure(BIG);
	struct ak_profile *p = sample_profile(), *q = NULL;
	size_t flen, need, before;
	uint8_t type, flags;

	/* As the ADD request carries it: flags, then the profile. */
	CHECK_EQ(ak_proto_begin(b, AK_MSG_ADD), AK_OK);
	CHECK_EQ(ak_buf_put_u8(b, AK_ADD_FORCE), AK_OK);
	CHECK_EQ(ak_proto_put_profile(b, p), AK_OK);
	CHECK_EQ(ak_proto_finish(b, AK_PROTO_MAX_REQUEST), AK_OK);
	CHECK_EQ(ak_proto_frame(b, AK_PROTO_MAX_REQUEST, &flen, &need), AK_OK);
	CHECK_EQ(flen, ak_buf_len(b));
	CHECK_EQ(ak_buf_consume(b, 4), AK_OK);
	CHECK_EQ(ak_buf_get_u8(b, &type), AK_OK);
	CHECK_EQ(type, AK_MSG_ADD);
	CHECK_EQ(ak_buf_get_u8(b, &flags), AK_OK);
	CHECK_EQ(flags, AK_ADD_FORCE);
	before = arena_in_use();
	CHECK_EQ(ak_proto_get_profile(b, &q), AK_OK);
	CHECK(arena_in_use() > before); /* it decoded into the arena */
	CHECK_EQ(ak_buf_len(b), 0);
	CHECK(q != NULL);
	if (q != NULL) {
		size_t i;
		CHECK_STR(q->name, p->name);
		CHECK_STR(q->provider, p->provider);
		CHECK_STR(q->secret_var, p->secret_var);
		CHECK_STR(q->secret, SECRET);
		CHECK_STR(q->description, p->description);
		CHECK_STR(q->source, p->source);
		CHECK_EQ(q->created, 1700000000);
		CHECK_EQ(q->rotated, -2);
		CHECK_EQ(q->nvars, 3);
		for (i = 0; i < 3 && i < q->nvars; i++) {
			CHECK_STR(q->vars[i].name, p->vars[i].name);
			CHECK_STR(q->vars[i].value, p->vars[i].value);
		}
	}
	ak_profile_free(q);
	q = NULL;

	/* Extremes of the times and no variables at all. */
	{
		/* A fresh profile without vars rather than poking at the profile's internals. */
		struct ak_profile *r = ak_profile_new();
		CHECK(r != NULL);
		CHECK_EQ(ak_profile_set_field(&r->name, "a.b_c-9"), AK_OK);
		CHECK_EQ(ak_profile_set_field(&r->secret, "x"), AK_OK);
		CHECK_EQ(ak_profile_set_field(&r->secret_var, "K"), AK_OK);
		/* The keystore's time range is +-2^53 (exact in JSON numbers). */
		r->created = -((int64_t)1 << 53);
		r->rotated = (int64_t)1 << 53;
		ak_profile_free(p);
		p = r;
	}
	ak_buf_reset(b);
	CHECK_EQ(ak_proto_put_profile(b, p), AK_OK);
	CHECK_EQ(ak_proto_get_profile(b, &q), AK_OK);
	if (q != NULL) {
		CHECK_STR(q->name, "a.b_c-9");
		CHECK(q->created == -((int64_t)1 << 53));
		CHECK(q->rotated == (int64_t)1 << 53);
		CHECK_EQ(q->nvars, 0);
	}
	ak_profile_free(q);
	q = NULL;
	/* Times outside that range are malformed. */
	p->created = INT64_MIN;
	ak_buf_reset(b);
	CHECK_EQ(ak_proto_put_profile(b, p), AK_OK);
	CHECK_EQ(ak_proto_get_profile(b, &q), AK_ERR_BAD_MESSAGE);
	CHECK(q == NULL);
	ak_profile_free(p);
	ak_buf_free(b);
}

/* pull's compare-and-swap: an ADD whose flags carry AK_ADD_IF_SOURCE beside AK_ADD_FORCE, the
 * profile's source and new secret intact after the trip; the two flags are distinct bits. */
static void
test_add_if_source(void)
{
	struct ak_buf *b = ak_buf_new_secure(BIG);
	struct ak_profile *p = sample_profile(), *q = NULL;
	size_t flen, need;
	uint8_t type, flags;

	CHECK((AK_ADD_FORCE & AK_ADD_IF_SOURCE) == 0);
	CHECK_EQ(ak_proto_begin(b, AK_MSG_ADD), AK_OK);
	CHECK_EQ(ak_proto_put_add(b, AK_ADD_FORCE | AK_ADD_IF_SOURCE, p), AK_OK);
	CHECK_EQ(ak_proto_finish(b, AK_PROTO_MAX_REQUEST), AK_OK);
	CHECK_EQ(ak_proto_frame(b, AK_PROTO_MAX_REQUEST, &flen, &need), AK_OK);
	CHECK_EQ(ak_buf_consume(b, 4), AK_OK);
	CHECK_EQ(ak_buf_get_u8(b, &type), AK_OK);
	CHECK_EQ(type, AK_MSG_ADD);
	CHECK_EQ(ak_buf_get_u8(b, &flags), AK_OK);
	CHECK((flags & AK_ADD_IF_SOURCE) != 0);
	CHECK((flags & AK_ADD_FORCE) != 0);
	CHECK_EQ(ak_proto_get_profile(b, &q), AK_OK);
	CHECK_EQ(ak_buf_len(b), 0);
	CHECK(q != NULL);
	if (q != NULL) {
		CHECK_STR(q->name, p->name);
		CHECK_STR(q->source, p->source);
		CHECK_STR(q->secret, SECRET);
	}
	/* The error it answers with when the source moved survives the wire as itself. */
	ak_buf_reset(b);
	{
		enum ak_err e;
		char *d = NULL;

		CHECK_EQ(ak_proto_put_error(b, AK_ERR_SOURCE_CHANGED, NULL), AK_OK);
		CHECK_EQ(ak_proto_get_error(b, &e, &d), AK_OK);
		CHECK_EQ(e, AK_ERR_SOURCE_CHANGED);
		free(d);
	}
	ak_profile_free(q);
	ak_profile_free(p);
	ak_buf_free(b);
}

static void
test_status_roundtrip(void)
{
	struct ak_buf *b = ak_buf_new(BIG);
	struct ak_status st = sample_status(), got;
	uint8_t type;

	CHECK_EQ(ak_proto_begin(b, AK_MSG_STATUS_REPLY), AK_OK);
	CHECK_EQ(ak_proto_put_status(b, &st), AK_OK);
	CHECK_EQ(ak_proto_finish(b, AK_PROTO_MAX_REPLY), AK_OK);
	CHECK_EQ(ak_buf_consume(b, 4), AK_OK);
	CHECK_EQ(ak_buf_get_u8(b, &type), AK_OK);
	CHECK_EQ(type, AK_MSG_STATUS_REPLY);
	CHECK_EQ(ak_proto_get_status(b, &got), AK_OK);
	CHECK_EQ(ak_buf_len(b), 0);
	CHECK_EQ(got.proto_version, AK_PROTO_VERSION);
	CHECK_EQ(got.unlocked, 1);
	CHECK_EQ(got.weak_kdf, 1);
	CHECK_EQ(got.pid, 4242);
	CHECK_STR(got.store_path, st.store_path);
	CHECK_EQ(got.nprofiles, 3);
	CHECK_EQ(got.lifetime_left, 28000);
	CHECK_EQ(got.idle_timeout, AK_LIFETIME_NONE);
	ak_status_clear(&got);
	CHECK(got.store_path == NULL);
	ak_status_clear(&got); /* twice is fine */
	ak_status_clear(NULL);

	/* A locked agent with no path (NULL is sent as ""). */
	st.unlocked = 0;
	st.store_path = NULL;
	ak_buf_reset(b);
	CHECK_EQ(ak_proto_put_status(b, &st), AK_OK);
	CHECK_EQ(ak_proto_get_status(b, &got), AK_OK);
	CHECK_EQ(got.unlocked, 0);
	CHECK(got.store_path == NULL || got.store_path[0] == '\0');
	ak_status_clear(&got);
	ak_buf_free(b);
}

/* The pool's bound at its worst (the most variables, the shortest names, empty strings), and a pool one
 * byte short of what a row needs refused without a partial entry. */
static void
test_list_pool(void)
{
	struct ak_buf *b = ak_buf_new(BIG);
	struct ak_profile *p = ak_profile_new();
	struct ak_list_entry e;
	struct ak_proto_pool pool;
	uint8_t mem[8192];
	char name[4];
	size_t len, need;
	int i;

	CHECK_EQ(ak_profile_set_field(&p->name, "a"), AK_OK);
	CHECK_EQ(ak_profile_set_field(&p->secret_var, "K"), AK_OK);
	CHECK_EQ(ak_profile_set_field(&p->secret, "s"), AK_OK);
	for (i = 0; i < AK_VARS_MAX; i++) {
		snprintf(name, sizeof(name), "%c%c", 'A' + i / 26, 'A' + i % 26);
		CHECK_EQ(ak_profile_put_var(p, name, "", i % 2), AK_OK);
	}
	CHECK_EQ(ak_proto_put_list_entry(b, p), AK_OK);
	len = ak_buf_len(b);
	CHECK_EQ(run(dec_list_pool, ak_buf_ptr(b), len), AK_OK);
	/* How much this row takes: then one byte less fails. */
	{
		struct ak_buf *c = buf_of(ak_buf_ptr(b), len);

		pool = (struct ak_proto_pool){ mem, sizeof(mem), 0 };
		CHECK_EQ(ak_proto_get_list_entry_pool(c, &e, &pool), AK_OK);
		CHECK_EQ(e.nvars, AK_VARS_MAX);
		CHECK(e.nvars == AK_VARS_MAX && e.var_secret[1] == 1 && strcmp(e.vars[63], "CL") == 0);
		need = pool.used;
		CHECK(need <= len + AK_PROTO_LIST_POOL_EXTRA);
		ak_buf_free(c);
		c = buf_of(ak_buf_ptr(b), len);
		pool = (struct ak_proto_pool){ mem, need - 1, 0 };
		CHECK_EQ(ak_proto_get_list_entry_pool(c, &e, &pool), AK_ERR_NOMEM);
		CHECK(e.name == NULL && e.vars == NULL && e.nvars == 0);
		ak_buf_free(c);
	}
	CHECK_EQ(ak_proto_get_list_entry_pool(b, &e, NULL), AK_ERR_INVALID);
	ak_profile_free(p);
	ak_buf_free(b);
}

static void
test_list_roundtrip(void)
{
	struct ak_buf *b = ak_buf_new(BIG);
	struct ak_profile *p = sample_profile();
	struct ak_list_entry e[2];
	char red[128];
	uint32_t n = 0, i;
	uint8_t type;

	ak_redact(SECRET, red, sizeof(red));
	/* As LIST_REPLY carries them: a count, then entries. */
	CHECK_EQ(ak_proto_begin(b, AK_MSG_LIST_REPLY), AK_OK);
	CHECK_EQ(ak_buf_put_u32(b, 2), AK_OK);
	CHECK_EQ(ak_proto_put_list_entry(b, p), AK_OK);
	CHECK_EQ(ak_proto_put_list_entry(b, p), AK_OK);
	CHECK_EQ(ak_proto_finish(b, AK_PROTO_MAX_REPLY), AK_OK);
	/* The secret itself never goes out, only its redacted form. */
	CHECK(memmem(ak_buf_ptr(b), ak_buf_len(b), SECRET, strlen(SECRET)) == NULL);
	CHECK(memmem(ak_buf_ptr(b), ak_buf_len(b), SECRET + 13, 20) == NULL);
	CHECK_EQ(ak_buf_consume(b, 4), AK_OK);
	CHECK_EQ(ak_buf_get_u8(b, &type), AK_OK);
	CHECK_EQ(type, AK_MSG_LIST_REPLY);
	CHECK_EQ(ak_buf_get_u32(b, &n), AK_OK);
	CHECK_EQ(n, 2);
	for (i = 0; i < 2; i++) {
		CHECK_EQ(ak_proto_get_list_entry(b, &e[i]), AK_OK);
		CHECK_STR(e[i].name, "production");
		CHECK_STR(e[i].provider, "anthropic");
		CHECK_STR(e[i].secret_var, "ANTHROPIC_API_KEY");
		CHECK_STR(e[i].redacted, red);
		CHECK(e[i].redacted == NULL || strstr(e[i].redacted, SECRET + 13) == NULL);
		CHECK_STR(e[i].description, p->description);
		CHECK_EQ(e[i].created, 1700000000);
		CHECK_EQ(e[i].rotated, -2);
		CHECK_EQ(e[i].rotate_every, 0);
		CHECK_EQ(e[i].prev_until, 0);
		CHECK_EQ(e[i].nvars, 3);
		if (e[i].nvars == 3) {
			CHECK_STR(e[i].vars[0], "ANTHROPIC_MODEL");
			CHECK_STR(e[i].vars[1], "MAX_TOKENS");
			CHECK_STR(e[i].vars[2], "_EMPTY");
		}
	}
	CHECK_EQ(ak_buf_len(b), 0);
	ak_list_entry_clear(&e[0]);
	ak_list_entry_clear(&e[1]);
	ak_list_entry_clear(&e[1]);
	ak_list_entry_clear(NULL);
	ak_profile_free(p);
	ak_buf_free(b);
}

static void
test_error_roundtrip(void)
{
	struct ak_buf *b = ak_buf_new(BIG);
	enum ak_err e = AK_OK;
	char *d = NULL, longd[2000];
	uint8_t type;

	CHECK_EQ(ak_proto_begin(b, AK_MSG_ERROR), AK_OK);
	CHECK_EQ(ak_proto_put_error(b, AK_ERR_NO_PROFILE, "profile 'production'"), AK_OK);
	CHECK_EQ(ak_proto_finish(b, AK_PROTO_MAX_REPLY), AK_OK);
	{
		/* The worked example in docs/protocol.md. */
		static const uint8_t want[] = { 0, 0, 0, 0x1d, 0x81, 0, 0, 0, 0x0e, 0, 0, 0, 0x14,
			'p', 'r', 'o', 'f', 'i', 'l', 'e', ' ', '\'',
			'p', 'r', 'o', 'd', 'u', 'c', 't', 'i', 'o', 'n', '\'' };
		CHECK_EQ(ak_buf_len(b), sizeof(want));
		CHECK(memcmp(ak_buf_ptr(b), want, sizeof(want)) == 0);
	}
	CHECK_EQ(ak_buf_consume(b, 4), AK_OK);
	CHECK_EQ(ak_buf_get_u8(b, &type), AK_OK);
	CHECK_EQ(type, AK_MSG_ERROR);
	CHECK_EQ(ak_proto_get_error(b, &e, &d), AK_OK);
	CHECK_EQ(e, AK_ERR_NO_PROFILE);
	CHECK_STR(d, "profile 'production'");
	free(d);

	/* Empty / NULL detail decodes as NULL; the caller may also not want the detail. */
	CHECK_EQ(ak_proto_begin(b, AK_MSG_ERROR), AK_OK);
	CHECK_EQ(ak_proto_put_error(b, AK_ERR_NO_PROFILE, NULL), AK_OK);
	CHECK_EQ(ak_proto_finish(b, AK_PROTO_MAX_REPLY), AK_OK);
	CHECK_EQ(ak_buf_len(b), 13);
	CHECK(memcmp(ak_buf_ptr(b), "\0\0\0\x09\x81\0\0\0\x0e\0\0\0\0", 13) == 0);
	ak_buf_reset(b);
	CHECK_EQ(ak_proto_put_error(b, AK_ERR_LOCKED, NULL), AK_OK);
	CHECK_EQ(ak_proto_get_error(b, &e, &d), AK_OK);
	CHECK_EQ(e, AK_ERR_LOCKED);
	CHECK(d == NULL);
	ak_buf_reset(b);
	CHECK_EQ(ak_proto_put_error(b, AK_ERR_AUTH, "x"), AK_OK);
	CHECK_EQ(ak_proto_get_error(b, &e, NULL), AK_OK);
	CHECK_EQ(e, AK_ERR_AUTH);

	/* Every code survives; unknown codes map to INTERNAL; "ERROR: success" is malformed. */
	for (unsigned c = 1; c <= AK_ERR_LAST; c++) {
		ak_buf_reset(b);
		CHECK_EQ(ak_proto_put_error(b, (enum ak_err)c, ""), AK_OK);
		CHECK_EQ(ak_proto_get_error(b, &e, &d), AK_OK);
		CHECK_EQ(e, c);
		CHECK(d == NULL);
	}
	ak_buf_reset(b);
	CHECK_EQ(ak_buf_put_u32(b, 0xdeadbeef), AK_OK);
	CHECK_EQ(ak_buf_put_cstring(b, "future"), AK_OK);
	CHECK_EQ(ak_proto_get_error(b, &e, &d), AK_OK);
	CHECK_EQ(e, AK_ERR_INTERNAL);
	free(d);
	d = NULL;
	ak_buf_reset(b);
	CHECK_EQ(ak_buf_put_u32(b, 0), AK_OK);
	CHECK_EQ(ak_buf_put_cstring(b, ""), AK_OK);
	CHECK_EQ(ak_proto_get_error(b, &e, &d), AK_ERR_BAD_MESSAGE);
	CHECK(d == NULL);

	/* A long detail is cut to 1024 on the way out (the reply must still go), refused on the way in. */
	memset(longd, 'a', sizeof(longd) - 1);
	longd[sizeof(longd) - 1] = '\0';
	ak_buf_reset(b);
	CHECK_EQ(ak_proto_put_error(b, AK_ERR_IO, longd), AK_OK);
	CHECK_EQ(ak_proto_get_error(b, &e, &d), AK_OK);
	CHECK(d != NULL && strlen(d) == 1024);
	free(d);
	d = NULL;
	ak_buf_reset(b);
	CHECK_EQ(ak_buf_put_u32(b, AK_ERR_IO), AK_OK);
	CHECK_EQ(ak_buf_put_string(b, longd, 1025), AK_OK);
	CHECK_EQ(ak_proto_get_error(b, &e, &d), AK_ERR_TOO_LARGE);
	CHECK(d == NULL);
	ak_buf_free(b);
}

/* Hostile profiles ------------------------------------------------------------------------------ */

struct wire_str {
	const char *p;
	size_t len;
};
#define WS(s) { (s), sizeof(s) - 1 }

/* Hand-encode a profile payload, bypassing the encoder's own caps. */
static struct ak_buf *
raw_profile(const struct wire_str f[6], uint32_t nvars, const struct wire_str *vars, size_t nv)
{
	struct ak_buf *b = ak_buf_new_secure(BIG);
	size_t i;

	for (i = 0; i < 6; i++)
		CHECK_EQ(ak_buf_put_string(b, f[i].p, f[i].len), AK_OK);
	CHECK_EQ(ak_buf_put_u64(b, 1), AK_OK);
	CHECK_EQ(ak_buf_put_u64(b, 2), AK_OK);
	CHECK_EQ(ak_buf_put_u32(b, nvars), AK_OK);
	for (i = 0; i < nv; i++) {
		CHECK_EQ(ak_buf_put_string(b, vars[i].p, vars[i].len), AK_OK);
		if (i % 2 == 1) /* each variable ends with its flags byte: plain */
			CHECK_EQ(ak_buf_put_u8(b, 0), AK_OK);
	}
	return b;
}

static enum ak_err
decode_raw(const struct wire_str f[6], uint32_t nvars, const struct wire_str *vars, size_t nv)
{
	struct ak_buf *b = raw_profile(f, nvars, vars, nv);
	size_t before = arena_in_use();
	enum ak_err r = dec_profile(b);

	CHECK_EQ(arena_in_use(), before);
	ak_buf_free(b);
	return r;
}

static void
test_profile_hostile(void)
{
	static const struct wire_str good[6] = { WS("prod"), WS("anthropic"), WS("ANTHROPIC_API_KEY"),
		WS("sk-secret"), WS(""), WS("") };
	static const struct wire_str gvars[2] = { WS("MODEL"), WS("m") };
	struct wire_str f[6], v[4];
	char *huge;
	struct ak_profile *p;
	struct ak_buf *b;

	if ((huge = malloc(AK_VALUE_MAX + 2)) == NULL)
		abort();
	memset(huge, 'A', AK_VALUE_MAX + 1);
	huge[AK_VALUE_MAX + 1] = '\0';

	CHECK_EQ(decode_raw(good, 1, gvars, 2), AK_OK);

	/* Each field at its cap is accepted, one byte over is TOO_LARGE. */
	memcpy(f, good, sizeof(f));
	f[0].p = huge; f[0].len = AK_NAME_MAX;
	CHECK_EQ(decode_raw(f, 0, NULL, 0), AK_OK);
	f[0].len = AK_NAME_MAX + 1;
	CHECK_EQ(decode_raw(f, 0, NULL, 0), AK_ERR_TOO_LARGE);
	memcpy(f, good, sizeof(f));
	f[1].p = huge; f[1].len = AK_TEXT_MAX + 1;
	CHECK_EQ(decode_raw(f, 0, NULL, 0), AK_ERR_TOO_LARGE);
	memcpy(f, good, sizeof(f));
	f[3].p = huge; f[3].len = AK_VALUE_MAX;
	CHECK_EQ(decode_raw(f, 0, NULL, 0), AK_OK);
	f[3].len = AK_VALUE_MAX + 1;
	CHECK_EQ(decode_raw(f, 0, NULL, 0), AK_ERR_TOO_LARGE);
	memcpy(f, good, sizeof(f));
	f[4].p = huge; f[4].len = AK_TEXT_MAX + 1;
	CHECK_EQ(decode_raw(f, 0, NULL, 0), AK_ERR_TOO_LARGE);
	memcpy(f, good, sizeof(f));
	f[5].p = huge; f[5].len = AK_TEXT_MAX + 1;
	CHECK_EQ(decode_raw(f, 0, NULL, 0), AK_ERR_TOO_LARGE);
	memcpy(v, gvars, sizeof(gvars));
	v[1].p = huge; v[1].len = AK_VALUE_MAX + 1;
	CHECK_EQ(decode_raw(good, 1, v, 2), AK_ERR_TOO_LARGE);
	/* A string length far past the data and past every cap. */
	memcpy(f, good, sizeof(f));
	b = ak_buf_new(64);
	CHECK_EQ(ak_buf_put_u32(b, 0xffffffffu), AK_OK);
	CHECK_EQ(ak_buf_put(b, "abc", 3), AK_OK);
	CHECK(dec_profile(b) != AK_OK);
	ak_buf_free(b);

	/* The encoder refuses what the decoder would refuse. */
	p = ak_profile_new();
	b = ak_buf_new_secure(BIG);
	CHECK_EQ(ak_profile_set_field(&p->secret, huge), AK_OK); /* AK_VALUE_MAX + 1 */
	CHECK_EQ(ak_proto_put_profile(b, p), AK_ERR_TOO_LARGE);
	ak_buf_free(b);
	ak_profile_free(p);

	/* An embedded NUL, in every string field and in a variable. */
	for (int i = 0; i < 6; i++) {
		memcpy(f, good, sizeof(f));
		f[i].p = "ab\0cd";
		f[i].len = 5;
		CHECK_EQ(decode_raw(f, 0, NULL, 0), AK_ERR_BAD_MESSAGE);
	}
	memcpy(v, gvars, sizeof(gvars));
	v[1].p = "x\0y"; v[1].len = 3;
	CHECK_EQ(decode_raw(good, 1, v, 2), AK_ERR_BAD_MESSAGE);
	v[1] = gvars[1];
	v[0].p = "A\0"; v[0].len = 2;
	CHECK_EQ(decode_raw(good, 1, v, 2), AK_ERR_BAD_MESSAGE);

	/* Hostile counts: over the limit, or more than the bytes present, rejected before allocating
	 * (decode_raw checks the arena is back where it was). */
	CHECK_EQ(decode_raw(good, 0xffffffffu, NULL, 0), AK_ERR_TOO_LARGE);
	CHECK_EQ(decode_raw(good, 0x80000000u, NULL, 0), AK_ERR_TOO_LARGE);
	CHECK_EQ(decode_raw(good, AK_VARS_MAX + 1, NULL, 0), AK_ERR_TOO_LARGE);
	CHECK_EQ(decode_raw(good, AK_VARS_MAX, gvars, 2), AK_ERR_TRUNCATED);
	CHECK_EQ(decode_raw(good, 2, gvars, 2), AK_ERR_TRUNCATED);

	/* Invalid names on the wire. */
	memcpy(f, good, sizeof(f));
	f[0].p = "a b"; f[0].len = 3;
	CHECK_EQ(decode_raw(f, 0, NULL, 0), AK_ERR_BAD_NAME);
	f[0].p = ".."; f[0].len = 2;
	CHECK_EQ(decode_raw(f, 0, NULL, 0), AK_ERR_BAD_NAME);
	f[0].p = "../etc"; f[0].len = 6;
	CHECK_EQ(decode_raw(f, 0, NULL, 0), AK_ERR_BAD_NAME);
	f[0].p = ""; f[0].len = 0;
	CHECK_EQ(decode_raw(f, 0, NULL, 0), AK_ERR_BAD_NAME);
	f[0].p = "prod\xc3\xa9"; f[0].len = 6;
	CHECK_EQ(decode_raw(f, 0, NULL, 0), AK_ERR_BAD_NAME);
	memcpy(f, good, sizeof(f));
	f[2].p = "1BAD"; f[2].len = 4;
	CHECK(decode_raw(f, 0, NULL, 0) != AK_OK);
	memcpy(v, gvars, sizeof(gvars));
	v[0].p = "BAD-NAME"; v[0].len = 8;
	CHECK(decode_raw(good, 1, v, 2) != AK_OK);
	/* Duplicate variable, variable shadowing the secret var, empty secret. */
	v[0] = gvars[0]; v[1] = gvars[1]; v[2] = gvars[0]; v[3] = gvars[1];
	CHECK_EQ(decode_raw(good, 2, v, 4), AK_ERR_BAD_MESSAGE);
	v[0].p = "ANTHROPIC_API_KEY"; v[0].len = 17;
	CHECK(decode_raw(good, 1, v, 2) != AK_OK);
	memcpy(f, good, sizeof(f));
	f[3].p = ""; f[3].len = 0;
	CHECK(decode_raw(f, 0, NULL, 0) != AK_OK);
	free(huge);
}

static void
test_other_hostile(void)
{
	struct ak_buf *b = ak_buf_new(BIG);
	struct ak_status st;
	struct ak_list_entry e;
	char *path;
	int i;

	/* store_path over 4096. */
	if ((path = malloc(4098)) == NULL)
		abort();
	memset(path, '/', 4097);
	path[4097] = '\0';
	st = sample_status();
	st.store_path = path;
	CHECK_EQ(ak_proto_put_status(b, &st), AK_ERR_TOO_LARGE); /* encoder refuses too */
	ak_buf_reset(b);
	CHECK_EQ(ak_buf_put_u32(b, 1), AK_OK);
	CHECK_EQ(ak_buf_put_u8(b, 1), AK_OK);
	CHECK_EQ(ak_buf_put_u8(b, 0), AK_OK);
	CHECK_EQ(ak_buf_put_u32(b, 1), AK_OK);
	CHECK_EQ(ak_buf_put_string(b, path, 4097), AK_OK);
	CHECK_EQ(ak_buf_put(b, "\0\0\0\0\0\0\0\0\0\0\0\0", 12), AK_OK);
	CHECK_EQ(ak_proto_get_status(b, &st), AK_ERR_TOO_LARGE);
	CHECK(st.store_path == NULL);
	/* A flag byte other than 0 or 1. */
	ak_buf_reset(b);
	CHECK_EQ(ak_buf_put_u32(b, 1), AK_OK);
	CHECK_EQ(ak_buf_put_u8(b, 2), AK_OK);
	CHECK_EQ(ak_buf_put_u8(b, 0), AK_OK);
	CHECK_EQ(ak_buf_put_u32(b, 1), AK_OK);
	CHECK_EQ(ak_buf_put_string(b, "/x\0y", 4), AK_OK);
	CHECK_EQ(ak_buf_put(b, "\0\0\0\0\0\0\0\0\0\0\0\0", 12), AK_OK);
	CHECK_EQ(ak_proto_get_status(b, &st), AK_ERR_BAD_MESSAGE); /* the NUL, first */
	ak_buf_reset(b);
	CHECK_EQ(ak_buf_put_u32(b, 1), AK_OK);
	CHECK_EQ(ak_buf_put_u8(b, 2), AK_OK);
	CHECK_EQ(ak_buf_put_u8(b, 0), AK_OK);
	CHECK_EQ(ak_buf_put_u32(b, 1), AK_OK);
	CHECK_EQ(ak_buf_put_string(b, "/x", 2), AK_OK);
	CHECK_EQ(ak_buf_put(b, "\0\0\0\0\0\0\0\0\0\0\0\0", 12), AK_OK);
	CHECK_EQ(ak_proto_get_status(b, &st), AK_ERR_BAD_MESSAGE);
	CHECK(st.store_path == NULL);
	ak_status_clear(&st);
	free(path);

	/* List entries: bad name, bad var name, huge var count, NUL, a secret flag that is not 0 or 1, an
	 * unknown use-policy flag, a bad deactivation hint, pending without a hint. */
	for (i = 0; i < 9; i++) {
		ak_buf_reset(b);
		CHECK_EQ(ak_buf_put_cstring(b, i == 0 ? "bad name" : "ok"), AK_OK);
		CHECK_EQ(ak_buf_put_cstring(b, "anthropic"), AK_OK);
		CHECK_EQ(ak_buf_put_cstring(b, "K"), AK_OK);
		if (i == 3)
			CHECK_EQ(ak_buf_put_string(b, "sk\0\xe2\x80\xa6", 6), AK_OK);
		else
			CHECK_EQ(ak_buf_put_cstring(b, "sk-\xe2\x80\xa6" "abcd"), AK_OK);
		CHECK_EQ(ak_buf_put_cstring(b, ""), AK_OK);
		CHECK_EQ(ak_buf_put_u64(b, 0), AK_OK);
		CHECK_EQ(ak_buf_put_u64(b, 0), AK_OK);
		CHECK_EQ(ak_buf_put_u32(b, i == 2 ? 0xffffffffu : 2), AK_OK);
		CHECK_EQ(ak_buf_put_cstring(b, "A"), AK_OK);
		CHECK_EQ(ak_buf_put_u8(b, 1), AK_OK);
		CHECK_EQ(ak_buf_put_cstring(b, i == 1 ? "9X" : "B"), AK_OK);
		CHECK_EQ(ak_buf_put_u8(b, i == 5 ? 2 : 0), AK_OK);
		/* Protocol 3: rotation policy and previous-key deadline (a negative one is malformed). */
		CHECK_EQ(ak_buf_put_u64(b, i == 5 ? 0 : 7776000), AK_OK);
		CHECK_EQ(ak_buf_put_u64(b, i == 4 ? 1700000000 : 0), AK_OK);
		/* Protocol 5: use-policy flags (confirm 1, expired 2; others malformed), lifetime, wipe time. */
		CHECK_EQ(ak_buf_put_u8(b, i == 6 ? 4 : 3), AK_OK);
		CHECK_EQ(ak_buf_put_u64(b, 3600), AK_OK);
		CHECK_EQ(ak_buf_put_u64(b, 1700003600), AK_OK);
		/* Protocol 5: a deactivation's hint and whether it is pending (pending without a hint, or a
		 * hint without "...", is malformed). */
		CHECK_EQ(ak_buf_put_cstring(b, i == 4 ? "sk-ant-api03-R2D...igAA" : i == 7 ? "nodots" : ""), AK_OK);
		CHECK_EQ(ak_buf_put_u8(b, i == 4 || i == 8 ? 1 : 0), AK_OK);
		switch (i) {
		case 0: CHECK_EQ(ak_proto_get_list_entry(b, &e), AK_ERR_BAD_NAME); break;
		case 1: CHECK_EQ(ak_proto_get_list_entry(b, &e), AK_ERR_BAD_VARNAME); break;
		case 2: CHECK_EQ(ak_proto_get_list_entry(b, &e), AK_ERR_TOO_LARGE); break;
		case 3: CHECK_EQ(ak_proto_get_list_entry(b, &e), AK_ERR_BAD_MESSAGE); break;
		case 4:
			CHECK_EQ(ak_proto_get_list_entry(b, &e), AK_OK);
			CHECK(e.var_secret != NULL && e.var_secret[0] == 1 && e.var_secret[1] == 0);
			CHECK_EQ(e.rotate_every, 7776000);
			CHECK_EQ(e.prev_until, 1700000000);
			CHECK(e.confirm == 1 && e.expired == 1);
			CHECK_EQ(e.lifetime, 3600);
			CHECK_EQ(e.wipe_at, 1700003600);
			CHECK_STR(e.deact_hint, "sk-ant-api03-R2D...igAA");
			CHECK_EQ(e.deact_pending, 1);
			break;
		case 5:
		case 6:
		case 7:
		case 8: CHECK_EQ(ak_proto_get_list_entry(b, &e), AK_ERR_BAD_MESSAGE); break;
		}
		ak_list_entry_clear(&e);
	}
	ak_buf_free(b);
}

/* Sweeps ---------------------------------------------------------------------------------------- */

static void
test_sweeps(void)
{
	static const decoder decs[7] = { dec_profile, dec_status, dec_list, dec_error, dec_use, dec_logreq,
	    dec_list_pool };
	uint8_t *(*encs[7])(size_t *) = { enc_profile, enc_status, enc_list, enc_error, enc_use, enc_logreq,
	    enc_list };
	uint8_t *valid[7], rnd[512];
	size_t vlen[7], before;
	int i, k;
	long n, accepted = 0;

	for (i = 0; i < 7; i++) {
		valid[i] = encs[i](&vlen[i]);
		truncation_sweep(decs[i], valid[i], vlen[i]);
		bitflip_sweep(decs[i], valid[i], vlen[i]);
	}

	/*
	 * 100k random inputs from a fixed seed: half pure noise (mostly stopped at the first length),
	 * half valid encodings with a few random bytes overwritten (reaching the deeper fields).
	 * run() checks the arena after each; LeakSanitizer checks the heap at exit.
	 */
	before = arena_in_use();
	for (n = 0; n < 100000; n++) {
		int d = (int)(rng() % 7);
		size_t len;
		if (n % 2 == 0) {
			len = (size_t)(rng() % sizeof(rnd));
			for (size_t j = 0; j < len; j++)
				rnd[j] = (uint8_t)rng();
			/* Small lengths in the first string field, so noise gets past it sometimes. */
			if (len >= 4 && rng() % 2) {
				rnd[0] = rnd[1] = rnd[2] = 0;
				rnd[3] = (uint8_t)(rng() % 16);
			}
			if (run(decs[d], rnd, len) == AK_OK)
				accepted++;
		} else {
			uint8_t *m = malloc(vlen[d]);
			if (m == NULL)
				abort();
			memcpy(m, valid[d], vlen[d]);
			for (k = (int)(rng() % 4); k >= 0; k--)
				m[rng() % vlen[d]] = (uint8_t)rng();
			len = vlen[d] - (rng() % 3 == 0 ? (size_t)(rng() % vlen[d]) : 0);
			if (run(decs[d], m, len) == AK_OK)
				accepted++;
			free(m);
		}
	}
	CHECK_EQ(arena_in_use(), before);
	printf("random sweep: %ld of 100000 inputs decoded\n", accepted);
	for (i = 0; i < 7; i++)
		free(valid[i]);
}

/* LOG: request and entries round trip; hostile fields refused; a long executable path is cut. */
static void
test_log(void)
{
	struct ak_buf *b = ak_buf_new(BIG);
	struct ak_use_entry e, in = sample_use;
	char *profile = NULL, *longexe;
	int64_t since = 0;
	uint8_t *v;
	size_t vlen;
	int k;

	/* Request: a profile and a time; none and 0 for everything. */
	CHECK_EQ(ak_proto_put_log_req(b, "dev.team-1", 99), AK_OK);
	CHECK_EQ(ak_proto_get_log_req(b, &profile, &since), AK_OK);
	CHECK(profile != NULL && strcmp(profile, "dev.team-1") == 0 && since == 99);
	CHECK_EQ(ak_buf_len(b), 0);
	free(profile);
	CHECK_EQ(ak_proto_put_log_req(b, NULL, 0), AK_OK);
	CHECK_EQ(ak_proto_get_log_req(b, &profile, &since), AK_OK);
	CHECK(profile == NULL && since == 0);
	/* A bad name, a negative time. */
	ak_buf_reset(b);
	CHECK_EQ(ak_proto_put_log_req(b, "bad name", 0), AK_OK);
	CHECK_EQ(ak_proto_get_log_req(b, &profile, &since), AK_ERR_BAD_NAME);
	ak_buf_reset(b);
	CHECK_EQ(ak_proto_put_log_req(b, "", -5), AK_OK);
	CHECK_EQ(ak_proto_get_log_req(b, &profile, &since), AK_ERR_BAD_MESSAGE);
	ak_buf_reset(b);

	/* Entry round trip, and one without a profile (the agent's expiry write). */
	CHECK_EQ(ak_proto_put_use_entry(b, &sample_use), AK_OK);
	in.op = AK_USE_EXPIRE;
	in.profile = NULL;
	in.exe = NULL;
	in.err = AK_OK;
	in.time = -1;
	CHECK_EQ(ak_proto_put_use_entry(b, &in), AK_OK);
	CHECK_EQ(ak_proto_get_use_entry(b, &e), AK_OK);
	CHECK(e.time == sample_use.time && e.op == AK_MSG_GET && e.pid == 4242 && e.uid == 1000 &&
	    e.err == AK_ERR_NO_PROFILE && strcmp(e.profile, "production") == 0 &&
	    strcmp(e.exe, "/usr/bin/python3.11") == 0);
	ak_use_entry_clear(&e);
	CHECK_EQ(ak_proto_get_use_entry(b, &e), AK_OK);
	CHECK(e.time == -1 && e.op == AK_USE_EXPIRE && e.err == AK_OK && e.profile[0] == '\0' &&
	    e.exe[0] == '\0');
	ak_use_entry_clear(&e);
	ak_use_entry_clear(&e);
	ak_use_entry_clear(NULL);
	CHECK_EQ(ak_buf_len(b), 0);

	/* An executable path over the cap goes out cut to it. */
	longexe = malloc(AK_USE_EXE_MAX + 100);
	CHECK(longexe != NULL);
	memset(longexe, 'x', AK_USE_EXE_MAX + 99);
	longexe[AK_USE_EXE_MAX + 99] = '\0';
	in = sample_use;
	in.exe = longexe;
	CHECK_EQ(ak_proto_put_use_entry(b, &in), AK_OK);
	CHECK_EQ(ak_proto_get_use_entry(b, &e), AK_OK);
	CHECK_EQ(strlen(e.exe), AK_USE_EXE_MAX);
	ak_use_entry_clear(&e);
	free(longexe);

	/* Hostile: an unknown op, an error code past the last, a bad profile name, a request type. */
	for (k = 0; k < 4; k++) {
		in = sample_use;
		switch (k) {
		case 0: in.op = 0x42; break;
		case 1: in.err = AK_ERR_LAST + 1; break;
		case 2: in.profile = (char *)"no/slash"; break;
		case 3: in.op = AK_MSG_LOG; break;
		}
		ak_buf_reset(b);
		CHECK_EQ(ak_proto_put_use_entry(b, &in), AK_OK);
		CHECK_EQ(ak_proto_get_use_entry(b, &e), k == 2 ? AK_ERR_BAD_NAME : AK_ERR_BAD_MESSAGE);
		CHECK(e.profile == NULL && e.exe == NULL);
	}
	/* Every truncation of a valid entry and request is refused. */
	v = enc_use(&vlen);
	truncation_sweep(dec_use, v, vlen);
	free(v);
	v = enc_logreq(&vlen);
	truncation_sweep(dec_logreq, v, vlen);
	free(v);
	ak_buf_free(b);
}

/* EDIT: round trip, every truncation refused, hostile counts and kinds. */
static void
test_edit(void)
{
	struct ak_edit *e = ak_edit_new("prod"), *d = NULL;
	struct ak_buf *b = ak_buf_new_secure(BIG), *t;
	const uint8_t *img;
	size_t len, cut;
	size_t i;

	CHECK(e != NULL && b != NULL);
	CHECK_EQ(ak_edit_add(e, AK_EDIT_SET_VAR, "MODEL", "opus"), AK_OK);
	CHECK_EQ(ak_edit_add(e, AK_EDIT_SET_SECRET, "DB_PASSWORD", "hunter2"), AK_OK);
	CHECK_EQ(ak_edit_add(e, AK_EDIT_UNSET, "OLD", NULL), AK_OK);
	CHECK_EQ(ak_edit_add(e, AK_EDIT_DESCRIPTION, "new text", NULL), AK_OK);
	CHECK_EQ(ak_edit_add(e, AK_EDIT_PROVIDER, "openai", NULL), AK_OK);
	CHECK_EQ(ak_edit_add(e, AK_EDIT_RENAME, "prod2", NULL), AK_OK);
	/* Nothing after a rename; bad names; empty secret; unknown kind. */
	CHECK_EQ(ak_edit_add(e, AK_EDIT_DESCRIPTION, "x", NULL), AK_ERR_INVALID);
	CHECK_EQ(ak_edit_add(d = ak_edit_new("p"), AK_EDIT_RENAME, "../x", NULL), AK_ERR_BAD_NAME);
	CHECK_EQ(ak_edit_add(d, AK_EDIT_SET_VAR, "9X", "v"), AK_ERR_BAD_VARNAME);
	CHECK_EQ(ak_edit_add(d, AK_EDIT_SET_SECRET, "X", ""), AK_ERR_EMPTY);
	CHECK_EQ(ak_edit_add(d, 99, "X", NULL), AK_ERR_INVALID);
	CHECK_EQ(ak_edit_add(d, AK_EDIT_UNSET, "X", "v"), AK_ERR_INVALID);
	ak_edit_free(d);
	d = NULL;

	CHECK_EQ(ak_proto_put_edit(b, e), AK_OK);
	img = ak_buf_ptr(b);
	len = ak_buf_len(b);
	t = ak_buf_new_secure(BIG);
	CHECK_EQ(ak_buf_put(t, img, len), AK_OK);
	CHECK_EQ(ak_proto_get_edit(t, &d), AK_OK);
	CHECK_EQ(ak_buf_len(t), 0);
	CHECK(d != NULL && d->n == e->n && strcmp(d->profile, "prod") == 0);
	for (i = 0; d != NULL && i < d->n; i++) {
		CHECK_EQ(d->a[i].kind, e->a[i].kind);
		CHECK_STR(d->a[i].arg, e->a[i].arg);
		CHECK_STR(d->a[i].value, e->a[i].value);
	}
	ak_edit_free(d);
	/* Every proper prefix fails, and leaves nothing allocated. */
	for (cut = 0; cut < len; cut++) {
		size_t before = arena_in_use();

		ak_buf_reset(t);
		CHECK_EQ(ak_buf_put(t, img, cut), AK_OK);
		d = (struct ak_edit *)1;
		CHECK(ak_proto_get_edit(t, &d) != AK_OK);
		CHECK(d == NULL);
		CHECK_EQ(arena_in_use(), before);
	}
	/* Hostile count, zero count, unknown kind, an action after a rename. */
	{
		static const struct { uint32_t n; uint8_t k1, k2; enum ak_err want; } cases[] = {
			{ 0xffffffffu, 1, 1, AK_ERR_TOO_LARGE },
			{ AK_EDIT_MAX + 1, 1, 1, AK_ERR_TOO_LARGE },
			{ 0, 1, 1, AK_ERR_BAD_MESSAGE },
			{ 2, 1, 42, AK_ERR_BAD_MESSAGE },
			{ 2, AK_EDIT_RENAME, AK_EDIT_DESCRIPTION, AK_ERR_BAD_MESSAGE },
			{ 2, AK_EDIT_DESCRIPTION, AK_EDIT_COPY, AK_OK },
			{ 3, 1, 1, AK_ERR_TRUNCATED },
		};
		for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			ak_buf_reset(t);
			CHECK_EQ(ak_buf_put_cstring(t, "prod"), AK_OK);
			CHECK_EQ(ak_buf_put_u32(t, cases[i].n), AK_OK);
			CHECK_EQ(ak_buf_put_u8(t, cases[i].k1), AK_OK);
			CHECK_EQ(ak_buf_put_cstring(t, cases[i].k1 == AK_EDIT_RENAME ? "other" : "TEXT"), AK_OK);
			CHECK_EQ(ak_buf_put_cstring(t, ""), AK_OK);
			CHECK_EQ(ak_buf_put_u8(t, cases[i].k2), AK_OK);
			CHECK_EQ(ak_buf_put_cstring(t, cases[i].k2 == AK_EDIT_COPY ? "other" : "TEXT"), AK_OK);
			CHECK_EQ(ak_buf_put_cstring(t, ""), AK_OK);
			d = NULL;
			CHECK_EQ(ak_proto_get_edit(t, &d), cases[i].want);
			ak_edit_free(d);
		}
	}
	ak_buf_free(t);
	ak_buf_free(b);
	ak_edit_free(e);
}

/* Rotation actions: what ak_edit_add accepts, and a round trip of each kind. */
static void
test_edit_rotation(void)
{
	struct ak_edit *e = ak_edit_new("prod"), *d = NULL;
	struct ak_buf *b = ak_buf_new_secure(BIG);
	size_t i;

	CHECK(e != NULL && b != NULL);
	CHECK_EQ(ak_edit_add(e, AK_EDIT_ROTATE, "", "sk-new"), AK_OK);       /* "": the main secret */
	CHECK_EQ(ak_edit_add(e, AK_EDIT_GRACE, "", "86400"), AK_OK);
	CHECK_EQ(ak_edit_add(e, AK_EDIT_ROTATE, "DB_PASSWORD", "pw"), AK_OK);
	CHECK_EQ(ak_edit_add(e, AK_EDIT_ROLLBACK, "DB_PASSWORD", NULL), AK_OK);
	CHECK_EQ(ak_edit_add(e, AK_EDIT_FINISH, "DB_PASSWORD", NULL), AK_OK);
	CHECK_EQ(ak_edit_add(e, AK_EDIT_ROTATE_EVERY, "7776000", NULL), AK_OK);
	CHECK_EQ(ak_edit_add(e, AK_EDIT_ROTATE, "X", ""), AK_ERR_EMPTY);
	CHECK_EQ(ak_edit_add(e, AK_EDIT_ROTATE, "9X", "v"), AK_ERR_BAD_VARNAME);
	CHECK_EQ(ak_edit_add(e, AK_EDIT_GRACE, "X", "-1"), AK_ERR_INVALID);
	CHECK_EQ(ak_edit_add(e, AK_EDIT_GRACE, "X", "1h"), AK_ERR_INVALID);
	CHECK_EQ(ak_edit_add(e, AK_EDIT_GRACE, "X", "1234567890123"), AK_ERR_INVALID);
	CHECK_EQ(ak_edit_add(e, AK_EDIT_FINISH, "X", "v"), AK_ERR_INVALID);
	CHECK_EQ(ak_edit_add(e, AK_EDIT_ROTATE_EVERY, "90d", NULL), AK_ERR_INVALID);
	CHECK_EQ(ak_edit_add(e, AK_EDIT_ROTATE_EVERY, "1", "v"), AK_ERR_INVALID);
	CHECK_EQ(ak_proto_put_edit(b, e), AK_OK);
	CHECK_EQ(ak_proto_get_edit(b, &d), AK_OK);
	CHECK_EQ(ak_buf_len(b), 0);
	CHECK(d != NULL && d->n == e->n);
	for (i = 0; d != NULL && i < d->n; i++) {
		CHECK_EQ(d->a[i].kind, e->a[i].kind);
		CHECK_STR(d->a[i].arg, e->a[i].arg);
		CHECK_STR(d->a[i].value, e->a[i].value);
	}
	ak_edit_free(d);
	ak_buf_free(b);
	ak_edit_free(e);
}

/* A secret variable keeps its flag on the wire; a LIST row carries the flag but never the value. */
static void
test_secret_vars(void)
{
	struct ak_profile *p = sample_profile(), *q = NULL;
	struct ak_buf *b = ak_buf_new_secure(BIG);
	struct ak_list_entry e;

	CHECK_EQ(ak_profile_put_var(p, "DB_PASSWORD", "pw-hunter2", 1), AK_OK);
	CHECK_EQ(ak_proto_put_profile(b, p), AK_OK);
	CHECK_EQ(ak_proto_get_profile(b, &q), AK_OK);
	CHECK(q != NULL && q->nvars == 4 && q->vars[3].secret == 1 && q->vars[0].secret == 0);
	ak_buf_reset(b);
	CHECK_EQ(ak_proto_put_list_entry(b, p), AK_OK);
	CHECK(memmem(ak_buf_ptr(b), ak_buf_len(b), "hunter2", 7) == NULL);
	CHECK_EQ(ak_proto_get_list_entry(b, &e), AK_OK);
	CHECK(e.nvars == 4 && e.var_secret[3] == 1 && e.var_secret[1] == 0);
	ak_list_entry_clear(&e);
	ak_profile_free(q);
	ak_profile_free(p);
	ak_buf_free(b);
}

/* LOG_USAGE: a report round trip; a bad name or client refused; an entry of one in LOG_REPLY carries
 * its counts. */
static void
test_log_usage(void)
{
	struct ak_buf *b = ak_buf_new(BIG);
	struct ak_use_entry in, e;

	memset(&in, 0, sizeof(in));
	in.profile = (char *)"prod";
	in.client = (char *)"claude";
	in.requests = 3;
	in.tokens_in = 1000;
	in.tokens_out = 20;
	in.tokens_cache = 5;
	CHECK_EQ(ak_proto_put_usage_report(b, &in), AK_OK);
	CHECK_EQ(ak_proto_get_usage_report(b, &e), AK_OK);
	CHECK(e.op == AK_MSG_LOG_USAGE && strcmp(e.profile, "prod") == 0 && strcmp(e.client, "claude") == 0 &&
	    e.requests == 3 && e.tokens_in == 1000 && e.tokens_out == 20 && e.tokens_cache == 5);
	CHECK_EQ(ak_buf_len(b), 0);
	ak_use_entry_clear(&e);
	in.profile = (char *)"bad name";
	CHECK_EQ(ak_proto_put_usage_report(b, &in), AK_OK);
	CHECK(ak_proto_get_usage_report(b, &e) != AK_OK);
	ak_buf_reset(b);
	in.profile = (char *)"prod";
	in.client = (char *)"a\x1b[31m";
	CHECK_EQ(ak_proto_put_usage_report(b, &in), AK_OK);
	CHECK_EQ(ak_proto_get_usage_report(b, &e), AK_ERR_BAD_MESSAGE);
	ak_buf_reset(b);
	in.client = (char *)"curl";
	in.op = AK_MSG_LOG_USAGE;
	in.exe = (char *)"/usr/lib/akagent/akctl-proxy";
	in.time = 5;
	CHECK_EQ(ak_proto_put_use_entry(b, &in), AK_OK);
	CHECK_EQ(ak_proto_get_use_entry(b, &e), AK_OK);
	CHECK(e.op == AK_MSG_LOG_USAGE && strcmp(e.client, "curl") == 0 && e.tokens_in == 1000 &&
	    e.tokens_cache == 5 && ak_buf_len(b) == 0);
	ak_use_entry_clear(&e);
	ak_buf_free(b);
}

int
main(void)
{
	if (ak_smem_init() != 0) {
		fprintf(stderr, "ak_smem_init failed\n");
		return 1;
	}
	test_framing();
	test_profile_roundtrip();
	test_add_if_source();
	test_status_roundtrip();
	test_list_roundtrip();
	test_list_pool();
	test_error_roundtrip();
	test_profile_hostile();
	test_other_hostile();
	test_sweeps();
	test_log();
	test_edit();
	test_edit_rotation();
	test_secret_vars();
	test_log_usage();
	T_DONE();
}
