/* test_buf.c - the bounded buffer: every put/get, caps, truncation, strings, reserve. */
#include <stdint.h>
#include <string.h>

#include "ak_buf.h"
#include "ak_smem.h"
#include "t.h"

static void
test_ints(int secure)
{
	struct ak_buf *b = secure ? ak_buf_new_secure(1024) : ak_buf_new(1024);
	static const uint8_t want[] = { 0x7f, 0x01, 0x02, 0x03, 0x04,
		0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 'x', 'y' };
	uint8_t u8, raw[2];
	uint32_t u32;
	uint64_t u64;

	CHECK(b != NULL);
	CHECK_EQ(ak_buf_len(b), 0);
	CHECK_EQ(ak_buf_max(b), 1024);
	CHECK(ak_buf_ptr(b) != NULL);
	CHECK_EQ(ak_buf_put_u8(b, 0x7f), AK_OK);
	CHECK_EQ(ak_buf_put_u32(b, 0x01020304u), AK_OK);
	CHECK_EQ(ak_buf_put_u64(b, 0x0102030405060708ull), AK_OK);
	CHECK_EQ(ak_buf_put(b, "xy", 2), AK_OK);
	CHECK_EQ(ak_buf_len(b), sizeof(want));
	CHECK(memcmp(ak_buf_ptr(b), want, sizeof(want)) == 0);

	CHECK_EQ(ak_buf_get_u8(b, &u8), AK_OK);
	CHECK_EQ(u8, 0x7f);
	CHECK_EQ(ak_buf_peek_u32(b, &u32), AK_OK);
	CHECK_EQ(u32, 0x01020304u);
	CHECK_EQ(ak_buf_len(b), sizeof(want) - 1);
	CHECK_EQ(ak_buf_get_u32(b, &u32), AK_OK);
	CHECK_EQ(u32, 0x01020304u);
	CHECK_EQ(ak_buf_get_u64(b, &u64), AK_OK);
	CHECK(u64 == 0x0102030405060708ull);
	CHECK_EQ(ak_buf_get(b, raw, 2), AK_OK);
	CHECK(memcmp(raw, "xy", 2) == 0);
	CHECK_EQ(ak_buf_len(b), 0);

	/* Truncation: nothing consumed. */
	CHECK_EQ(ak_buf_get_u8(b, &u8), AK_ERR_TRUNCATED);
	CHECK_EQ(ak_buf_put(b, "\x01\x02\x03", 3), AK_OK);
	CHECK_EQ(ak_buf_get_u32(b, &u32), AK_ERR_TRUNCATED);
	CHECK_EQ(ak_buf_peek_u32(b, &u32), AK_ERR_TRUNCATED);
	CHECK_EQ(ak_buf_get_u64(b, &u64), AK_ERR_TRUNCATED);
	CHECK_EQ(ak_buf_len(b), 3);
	CHECK_EQ(ak_buf_consume(b, 4), AK_ERR_TRUNCATED);
	CHECK_EQ(ak_buf_consume(b, 2), AK_OK);
	CHECK_EQ(ak_buf_len(b), 1);
	CHECK_EQ(*ak_buf_ptr(b), 3);
	ak_buf_reset(b);
	CHECK_EQ(ak_buf_len(b), 0);
	CHECK_EQ(ak_buf_max(b), 1024);
	ak_buf_free(b);
	ak_buf_free(NULL);
}

static void
test_caps(int secure)
{
	struct ak_buf *b = secure ? ak_buf_new_secure(10) : ak_buf_new(10);
	uint8_t big[11] = { 0 }, *w;

	CHECK_EQ(ak_buf_put(b, big, 11), AK_ERR_TOO_LARGE);
	CHECK_EQ(ak_buf_len(b), 0);
	CHECK_EQ(ak_buf_put(b, "abcdefgh", 8), AK_OK);
	CHECK_EQ(ak_buf_put_u32(b, 1), AK_ERR_TOO_LARGE);
	CHECK_EQ(ak_buf_put_u64(b, 1), AK_ERR_TOO_LARGE);
	CHECK_EQ(ak_buf_put_string(b, "", 0), AK_ERR_TOO_LARGE);
	CHECK_EQ(ak_buf_put(b, big, SIZE_MAX), AK_ERR_TOO_LARGE);
	CHECK_EQ(ak_buf_reserve(b, SIZE_MAX - 2, &w), AK_ERR_TOO_LARGE);
	CHECK_EQ(ak_buf_len(b), 8);
	CHECK(memcmp(ak_buf_ptr(b), "abcdefgh", 8) == 0);
	CHECK_EQ(ak_buf_put(b, "ij", 2), AK_OK);
	CHECK_EQ(ak_buf_put_u8(b, 1), AK_ERR_TOO_LARGE);
	CHECK_EQ(ak_buf_len(b), 10);
	/* The cap is on live data: consuming makes room again. */
	CHECK_EQ(ak_buf_consume(b, 4), AK_OK);
	CHECK_EQ(ak_buf_put_u32(b, 0x41424344u), AK_OK);
	CHECK_EQ(ak_buf_len(b), 10);
	CHECK(memcmp(ak_buf_ptr(b), "efghijABCD", 10) == 0);
	ak_buf_free(b);

	b = ak_buf_new(0);
	CHECK_EQ(ak_buf_put(b, "", 0), AK_OK);
	CHECK_EQ(ak_buf_put_u8(b, 0), AK_ERR_TOO_LARGE);
	ak_buf_free(b);
}

static void
test_strings(int secure)
{
	struct ak_buf *b = secure ? ak_buf_new_secure(4096) : ak_buf_new(4096);
	const uint8_t *p;
	size_t len;
	char *s = NULL;

	CHECK_EQ(ak_buf_put_string(b, "hello", 5), AK_OK);
	CHECK_EQ(ak_buf_put_cstring(b, "world"), AK_OK);
	CHECK_EQ(ak_buf_put_cstring(b, NULL), AK_OK);
	CHECK_EQ(ak_buf_put_string(b, "a\0b", 3), AK_OK);
	CHECK_EQ(ak_buf_len(b), 4 + 5 + 4 + 5 + 4 + 4 + 3);
	CHECK(memcmp(ak_buf_ptr(b), "\0\0\0\5hello", 9) == 0);

	CHECK_EQ(ak_buf_get_string_direct(b, &p, &len, 5), AK_OK);
	CHECK_EQ(len, 5);
	CHECK(memcmp(p, "hello", 5) == 0);
	/* Over maxlen: TOO_LARGE, nothing consumed. */
	CHECK_EQ(ak_buf_get_cstring(b, &s, 4, secure), AK_ERR_TOO_LARGE);
	CHECK_EQ(ak_buf_get_string_direct(b, &p, &len, 4), AK_ERR_TOO_LARGE);
	CHECK_EQ(ak_buf_get_cstring(b, &s, 5, secure), AK_OK);
	CHECK_STR(s, "world");
	if (secure)
		ak_smem_free(s);
	else
		free(s);
	CHECK_EQ(ak_buf_get_cstring(b, &s, 5, secure), AK_OK);
	CHECK_STR(s, "");
	if (secure)
		ak_smem_free(s);
	else
		free(s);
	/* Embedded NUL: rejected, nothing consumed; the direct form accepts it. */
	s = NULL;
	CHECK_EQ(ak_buf_get_cstring(b, &s, 100, secure), AK_ERR_BAD_MESSAGE);
	CHECK(s == NULL);
	CHECK_EQ(ak_buf_len(b), 7);
	CHECK_EQ(ak_buf_get_string_direct(b, &p, &len, 100), AK_OK);
	CHECK_EQ(len, 3);
	CHECK(memcmp(p, "a\0b", 3) == 0);
	CHECK_EQ(ak_buf_len(b), 0);

	/* Truncated string: length says 10, 3 bytes follow. */
	CHECK_EQ(ak_buf_put_u32(b, 10), AK_OK);
	CHECK_EQ(ak_buf_put(b, "abc", 3), AK_OK);
	CHECK_EQ(ak_buf_get_string_direct(b, &p, &len, 100), AK_ERR_TRUNCATED);
	CHECK_EQ(ak_buf_get_cstring(b, &s, 100, secure), AK_ERR_TRUNCATED);
	CHECK_EQ(ak_buf_len(b), 7);
	ak_buf_reset(b);
	CHECK_EQ(ak_buf_put(b, "\0\0", 2), AK_OK);
	CHECK_EQ(ak_buf_get_string_direct(b, &p, &len, 100), AK_ERR_TRUNCATED);
	CHECK_EQ(ak_buf_len(b), 2);
	/* A huge declared length is rejected by maxlen before anything else. */
	ak_buf_reset(b);
	CHECK_EQ(ak_buf_put_u32(b, 0xffffffffu), AK_OK);
	CHECK_EQ(ak_buf_get_cstring(b, &s, 65536, secure), AK_ERR_TOO_LARGE);
	CHECK_EQ(ak_buf_get_cstring(b, &s, SIZE_MAX, secure), AK_ERR_TRUNCATED);
	ak_buf_free(b);
}

static void
test_reserve_and_growth(int secure)
{
	struct ak_buf *b = secure ? ak_buf_new_secure(1 << 20) : ak_buf_new(1 << 20);
	uint8_t *w;
	size_t i;
	int ok = 1;

	CHECK_EQ(ak_buf_put(b, "head", 4), AK_OK);
	CHECK_EQ(ak_buf_reserve(b, 100, &w), AK_OK);
	memcpy(w, "filled", 6);
	CHECK_EQ(ak_buf_len(b), 104);
	ak_buf_unreserve(b, 94);
	CHECK_EQ(ak_buf_len(b), 10);
	CHECK(memcmp(ak_buf_ptr(b), "headfilled", 10) == 0);
	ak_buf_unreserve(b, 1000); /* more than there is: empties, no underflow */
	CHECK_EQ(ak_buf_len(b), 0);
	CHECK_EQ(ak_buf_reserve(b, (1 << 20) + 1, &w), AK_ERR_TOO_LARGE);
	CHECK_EQ(ak_buf_reserve(b, 0, &w), AK_OK);

	/* Grow through many reallocations and interleave consumes (compaction). */
	for (i = 0; i < 100000; i++) {
		if (ak_buf_put_u32(b, (uint32_t)i) != AK_OK)
			ok = 0;
		if (i % 3 == 0 && ak_buf_consume(b, 4) != AK_OK)
			ok = 0;
	}
	CHECK(ok);
	ak_buf_reset(b);
	for (i = 0; i < (1 << 18); i++)
		if (ak_buf_put_u32(b, (uint32_t)i) != AK_OK)
			ok = 0;
	CHECK(ok);
	CHECK_EQ(ak_buf_len(b), 1 << 20);
	CHECK_EQ(ak_buf_put_u8(b, 0), AK_ERR_TOO_LARGE);
	for (i = 0; i < (1 << 18); i++) {
		uint32_t v;

		if (ak_buf_get_u32(b, &v) != AK_OK || v != i)
			ok = 0;
		/* Keep the FIFO full so reads and writes interleave across compactions. */
		if (i % 2 == 0 && ak_buf_put_u32(b, (uint32_t)(i + (1 << 18))) != AK_OK)
			ok = 0;
	}
	CHECK(ok);
	ak_buf_free(b);
}

/* FIFO order is preserved across compactions and growth. */
static void
test_fifo(int secure)
{
	struct ak_buf *b = secure ? ak_buf_new_secure(3000) : ak_buf_new(3000);
	uint32_t next_in = 0, next_out = 0, v;
	int i, ok = 1;

	for (i = 0; i < 20000; i++) {
		int n = (i * 7) % 13;

		while (n-- > 0 && ak_buf_put_u32(b, next_in) == AK_OK)
			next_in++;
		n = (i * 5) % 11;
		while (n-- > 0 && ak_buf_get_u32(b, &v) == AK_OK) {
			if (v != next_out)
				ok = 0;
			next_out++;
		}
	}
	CHECK(ok);
	CHECK_EQ(ak_buf_len(b), (next_in - next_out) * 4);
	ak_buf_free(b);
}

int
main(void)
{
	struct ak_smem_stats st;
	int secure;

	CHECK_EQ(ak_smem_init(), 0);
	for (secure = 0; secure <= 1; secure++) {
		test_ints(secure);
		test_caps(secure);
		test_strings(secure);
		test_reserve_and_growth(secure);
		test_fifo(secure);
	}
	ak_smem_stats(&st);
	CHECK_EQ(st.in_use, 0); /* secure buffers returned all their storage */
	T_DONE();
}
