/* test_render.c - human-readable output carries no byte that drives a terminal. */
#include <stdio.h>
#include <string.h>

#include "ak_render.h"
#include "t.h"

static void
expect(const char *in, const char *want)
{
	char out[256];

	CHECK_EQ(ak_render(in, out, sizeof(out)), strlen(want));
	CHECK_STR(out, want);
	CHECK_EQ(ak_render_width(in), strlen(want)); /* the wants are ASCII */
}

/* No byte < 0x20, no DEL, no raw C1 (as a byte or as U+0080..U+009F in UTF-8) in s. */
static int
inert(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	for (; *p != 0; p++) {
		if (*p < 0x20 || *p == 0x7f)
			return 0;
		if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
			return 0; /* U+0080..U+009F */
		/* A byte 0x80..0x9f is fine only as a continuation byte (after a lead or continuation). */
		if (*p >= 0x80 && *p <= 0x9f && (p == (const unsigned char *)s || p[-1] < 0xc0) &&
		    (p == (const unsigned char *)s || (p[-1] & 0xc0) != 0x80))
			return 0;
	}
	return 1;
}

int
main(void)
{
	char out[64], all[256], big[2048];
	size_t i;
	FILE *f;

	expect("plain text", "plain text");
	expect("", "");
	expect(NULL, "");
	expect("a\tb\nc\rd", "a\\tb\\nc\\rd");
	expect("\x1b]52;c;cHduZWQ=\x07", "\\x1b]52;c;cHduZWQ=\\x07");  /* OSC 52 clipboard write */
	expect("\x1b[2J\x1b[H", "\\x1b[2J\\x1b[H");                   /* clear screen */
	expect("\x7f\x01", "\\x7f\\x01");
	expect("\x9b" "31m", "\\x9b31m");                             /* 8-bit CSI, a lone byte */
	expect("\xc2\x9b" "31m", "\\u009b31m");                       /* U+009B in UTF-8 */
	expect("\xc2\x85", "\\u0085");                                /* NEL */
	expect("\xe2\x80\xae" "evil", "\\u202eevil");                 /* right-to-left override */
	expect("\xe2\x80\xa8", "\\u2028");                            /* line separator */
	expect("\xc0\xaf\xff", "\\xc0\\xaf\\xff");                    /* overlong, invalid */
	expect("back\\slash", "back\\slash");
	/* Printable UTF-8 passes through. */
	CHECK_EQ(ak_render("h\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80", out, sizeof(out)), 12);
	CHECK_STR(out, "h\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80");
	CHECK_EQ(ak_render_width("h\xc3\xa9\x1b"), 6);
	/* Truncation never cuts an escape: "ab\x1b" into 5 bytes is "ab" (the escape needs 4). */
	CHECK_EQ(ak_render("ab\x1b" "c", out, 5), 7);
	CHECK_STR(out, "ab");
	CHECK_EQ(ak_render("ab\xc3\xa9", out, 4), 4);
	CHECK_STR(out, "ab");
	CHECK_EQ(ak_render("x", out, 0), 1);
	/* Every byte value, and every pair after 0xc2, renders inert. */
	for (i = 0; i < 255; i++)
		all[i] = (char)(i + 1);
	all[255] = '\0';
	CHECK(ak_render(all, big, sizeof(big)) < sizeof(big));
	CHECK(inert(big));
	for (i = 0x80; i < 0xc0; i++) {
		char two[3] = { (char)0xc2, (char)i, 0 };

		ak_render(two, out, sizeof(out));
		CHECK(inert(out));
	}
	/* The stream form writes the same bytes. */
	if ((f = tmpfile()) != NULL) {
		size_t n;

		CHECK_EQ(ak_render_fputs(all, f), 0);
		rewind(f);
		n = fread(out, 1, sizeof(out) - 1, f);
		out[n] = '\0';
		CHECK(strncmp(out, big, n) == 0);
		fclose(f);
	}
	T_DONE();
}
