/* test_restore.c - the record akctl use leaves in the shell: round trip, hostile input, restore lines. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ak_buf.h"
#include "ak_restore.h"
#include "ak_smem.h"
#include "t.h"

static char *
encode(const struct ak_restore *r)
{
	struct ak_buf *b = ak_buf_new(AK_RESTORE_ENC_MAX + 1);
	char *s = NULL;

	if (b != NULL && ak_restore_encode(r, b) == AK_OK && ak_buf_put_u8(b, 0) == AK_OK)
		s = strdup((const char *)ak_buf_ptr(b));
	ak_buf_free(b);
	return s;
}

static void
test_roundtrip(int secure)
{
	struct ak_restore *r = ak_restore_new(secure), *d = NULL;
	const char *hostile = "it's $HOME `x` \\ \"q\"\nline2\x01\xff";
	const struct ak_restore_entry *e;
	char *enc;
	size_t i;

	CHECK(r != NULL);
	CHECK_EQ(ak_restore_add(r, "HTTPS_PROXY", hostile), AK_OK);
	CHECK_EQ(ak_restore_add(r, "ANTHROPIC_API_KEY", NULL), AK_OK);
	CHECK_EQ(ak_restore_add(r, "EMPTY", ""), AK_OK);
	CHECK_EQ(ak_restore_add(r, "HTTPS_PROXY", "second"), AK_OK); /* the first value stays */
	CHECK_EQ(r->n, 3);
	enc = encode(r);
	CHECK(enc != NULL);
	/* base64url: nothing any shell or cmd.exe would interpret. */
	for (i = 0; enc != NULL && enc[i] != '\0'; i++)
		CHECK(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", enc[i]) != NULL);
	CHECK_EQ(ak_restore_decode(enc, secure, &d), AK_OK);
	CHECK(d != NULL);
	if (d != NULL) {
		CHECK_EQ(d->n, 3);
		CHECK((e = ak_restore_find(d, "HTTPS_PROXY")) != NULL && e->old != NULL && strcmp(e->old, hostile) == 0);
		CHECK((e = ak_restore_find(d, "ANTHROPIC_API_KEY")) != NULL && e->old == NULL);
		CHECK((e = ak_restore_find(d, "EMPTY")) != NULL && e->old != NULL && e->old[0] == '\0');
		CHECK(ak_restore_find(d, "OTHER") == NULL);
	}
	ak_restore_free(d);
	free(enc);
	ak_restore_free(r);
}

static void
test_hostile(void)
{
	struct ak_restore *r = ak_restore_new(1), *d = NULL;
	char *enc;
	size_t i, len;
	static const char *bad[] = { "", "!!!!", "AQ", "AQAAAAE", "AAAAAAA", "a b", "AQAAAAEAAAABJAAAAAAA" };

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK(ak_restore_decode(bad[i], 1, &d) != AK_OK || d->n == 0);
		ak_restore_free(d);
		d = NULL;
	}
	/* Every truncation of a valid record fails cleanly (or, at a whole-entry boundary, never
	 * invents anything). */
	CHECK_EQ(ak_restore_add(r, "A", "value"), AK_OK);
	CHECK_EQ(ak_restore_add(r, "B", NULL), AK_OK);
	enc = encode(r);
	len = enc != NULL ? strlen(enc) : 0;
	for (i = 0; i < len; i++) {
		char c = enc[i];

		enc[i] = '\0';
		if (ak_restore_decode(enc, 1, &d) == AK_OK)
			CHECK(d->n <= 2);
		ak_restore_free(d);
		d = NULL;
		enc[i] = c;
	}
	free(enc);
	ak_restore_free(r);
}

static void
test_lines(void)
{
	struct ak_restore *r = ak_restore_new(1);
	struct ak_buf *b = ak_buf_new(4096);

	CHECK_EQ(ak_restore_add(r, "A", "x'y"), AK_OK);
	CHECK_EQ(ak_restore_add(r, "B", NULL), AK_OK);
	CHECK_EQ(ak_restore_lines(b, AK_SHELL_SH, r, NULL, NULL), AK_OK);
	CHECK_EQ(ak_buf_put_u8(b, 0), AK_OK);
	CHECK_STR((const char *)ak_buf_ptr(b), "export A='x'\\''y';\nunset B;\n");
	ak_buf_reset(b);
	CHECK_EQ(ak_restore_lines(b, AK_SHELL_POWERSHELL, r, NULL, NULL), AK_OK);
	CHECK_EQ(ak_buf_put_u8(b, 0), AK_OK);
	CHECK(strstr((const char *)ak_buf_ptr(b), "$env:A = 'x''y'") != NULL);
	CHECK(strstr((const char *)ak_buf_ptr(b), "Remove-Item Env:B") != NULL);
	ak_buf_free(b);
	ak_restore_free(r);
}

int
main(void)
{
	CHECK_EQ(ak_smem_init(), 0);
	test_roundtrip(1);
	test_roundtrip(0);
	test_hostile();
	test_lines();
	T_DONE();
}
