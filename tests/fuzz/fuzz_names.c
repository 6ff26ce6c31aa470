/* fuzz_names.c - name and variable-name syntax, durations, redaction, against independent references.
 *
 * Input: a string (cut at the first NUL). Properties:
 *  - ak_name_check / ak_varname_check accept exactly what the documented patterns accept;
 *  - ak_duration_parse agrees with a reference parser of the documented grammar (plain seconds, or
 *    d/h/m/s groups in that order, each at most once, total <= 365 days), and ak_duration_format's
 *    output parses back to the value (rounded down to the unit it shows);
 *  - ak_redact shows either "…(N chars)" or prefix + "…" + the last 4 characters, where the prefix
 *    is a vendor prefix (lowercase letters, digits and '-', ending in '-', at most 16 characters) and
 *    at least 12 characters stay hidden: never more than 4 characters of the secret proper. With a
 *    short buffer it writes a NUL-terminated prefix of that output and never past buflen.
 */
#include <stdlib.h>
#include <string.h>

#include "ak_util.h"
#include "ak_store.h"
#include "fuzz.h"

#define DUR_MAX (365ull * 86400ull)

static int
ref_name(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > 64 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return 0;
	for (i = 0; i < n; i++)
		if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-", s[i]))
			return 0;
	return 1;
}

static int
ref_varname(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > AK_VARNAME_MAX)
		return 0;
	if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_", s[0]))
		return 0;
	for (i = 1; i < n; i++)
		if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_", s[i]))
			return 0;
	return 1;
}

/* -1 invalid, else the seconds. Written differently from util.c on purpose: split into groups first. */
static long long
ref_duration(const char *s)
{
	static const char units[] = "dhms";
	static const unsigned long long mult[] = { 86400, 3600, 60, 1 };
	unsigned long long total = 0;
	size_t i = 0, n = strlen(s);
	int last = -1;

	if (n == 0)
		return -1;
	/* All digits: seconds. Leading zeros allowed; the value is what counts. */
	if (strspn(s, "0123456789") == n) {
		for (i = 0; i < n; i++) {
			total = total * 10 + (unsigned long long)(s[i] - '0');
			if (total > DUR_MAX)
				return -1;
		}
		return (long long)total;
	}
	while (i < n) {
		size_t d = strspn(s + i, "0123456789"), k;
		unsigned long long v = 0;
		const char *u;

		if (d == 0 || i + d >= n)
			return -1; /* no digits, or digits with no unit after groups */
		for (k = 0; k < d; k++) {
			v = v * 10 + (unsigned long long)(s[i + k] - '0');
			if (v > DUR_MAX)
				return -1;
		}
		if ((u = strchr(units, s[i + d])) == NULL || s[i + d] == '\0')
			return -1;
		if ((int)(u - units) <= last)
			return -1;
		last = (int)(u - units);
		total += v * mult[last];
		if (total > DUR_MAX)
			return -1;
		i += d + 1;
	}
	return (long long)total;
}

static void
check_redact(const char *s)
{
	static const char ell[] = "\xe2\x80\xa6";
	char full[256], want[64];
	size_t len = strlen(s), olen, pre, i, bl;
	const char *e;

	ak_redact(s, full, sizeof(full));
	olen = strlen(full);
	FUZZ_CHECK(olen < 64, "redacted form fits the documented 64 bytes");
	snprintf(want, sizeof(want), "%s(%zu char%s)", ell, len, len == 1 ? "" : "s");
	if (strcmp(full, want) != 0) {
		e = strstr(full, ell);
		FUZZ_CHECK(e != NULL, "redacted form has the ellipsis");
		pre = (size_t)(e - full);
		FUZZ_CHECK(strcmp(e + 3, s + len - 4) == 0 && len >= 4, "shows exactly the last 4");
		FUZZ_CHECK(pre <= 16 && strncmp(full, s, pre) == 0, "prefix is the secret's start");
		FUZZ_CHECK(len - 4 >= pre + 12, "at least 12 characters stay hidden");
		for (i = 0; i < pre; i++)
			FUZZ_CHECK((full[i] >= 'a' && full[i] <= 'z') || (full[i] >= '0' && full[i] <= '9') ||
			    full[i] == '-', "prefix alphabet");
		FUZZ_CHECK(pre == 0 || full[pre - 1] == '-', "prefix ends at a dash");
		for (i = len - 4; i < len; i++)
			FUZZ_CHECK((unsigned char)s[i] > 0x20 && (unsigned char)s[i] < 0x7f,
			    "shown tail is printable");
	}
	/* Short buffers: exactly-sized heap blocks, so writing past buflen is an ASan report. */
	for (bl = 1; bl <= olen + 1; bl += (bl < 8 ? 1 : 7)) {
		char *b = malloc(bl);

		FUZZ_CHECK(b != NULL, "alloc");
		ak_redact(s, b, bl);
		FUZZ_CHECK(strlen(b) == bl - 1 || strlen(b) == olen, "short buffer NUL-terminated");
		FUZZ_CHECK(strncmp(b, full, strlen(b)) == 0, "short buffer holds a prefix");
		free(b);
	}
}

static void
check_format(uint32_t secs)
{
	char buf[16];
	uint32_t back = 0, gran;

	ak_duration_format(secs, buf, sizeof(buf));
	FUZZ_CHECK(ak_duration_parse(buf, &back) == AK_OK || secs > DUR_MAX, "formatted duration parses");
	if (secs > DUR_MAX)
		return;
	gran = secs < 3600 ? 1 : secs < 86400 ? 60 : 3600;
	FUZZ_CHECK(back <= secs && secs - back < gran, "formatted duration keeps its value");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	uint32_t secs = 0;
	long long ref;
	enum ak_err r;

	FUZZ_CHECK(s != NULL, "alloc");
	memcpy(s, data, size);
	s[size] = '\0';

	FUZZ_CHECK((ak_name_check(s) == AK_OK) == ref_name(s), "ak_name_check matches its pattern");
	FUZZ_CHECK(ak_name_check(s) == AK_OK || ak_name_check(s) == AK_ERR_BAD_NAME, "name error code");
	FUZZ_CHECK((ak_varname_check(s) == AK_OK) == ref_varname(s), "ak_varname_check matches its pattern");

	r = ak_duration_parse(s, &secs);
	ref = ref_duration(s);
	FUZZ_CHECK((r == AK_OK) == (ref >= 0), "ak_duration_parse accepts what the grammar accepts");
	FUZZ_CHECK(r == AK_OK || r == AK_ERR_INVALID, "duration error code");
	if (r == AK_OK)
		FUZZ_CHECK((long long)secs == ref, "ak_duration_parse value");
	if (size >= 4)
		check_format((uint32_t)data[0] << 24 | (uint32_t)data[1] << 16 | (uint32_t)data[2] << 8 |
		    data[3]);
	check_format(secs);

	check_redact(s);
	free(s);
	return 0;
}
