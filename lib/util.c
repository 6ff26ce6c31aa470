/* util.c - small pure helpers: name syntax, durations, redaction, time. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ak_store.h"
#include "ak_util.h"

#define DURATION_MAX (365u * 86400u)

static int
is_alpha(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static int
is_digit(int c)
{
	return c >= '0' && c <= '9';
}

enum ak_err
ak_name_check(const char *name)
{
	size_t i;

	if (name == NULL || name[0] == '\0')
		return AK_ERR_BAD_NAME;
	for (i = 0; name[i] != '\0'; i++) {
		unsigned char c = (unsigned char)name[i];

		if (i >= AK_NAME_MAX)
			return AK_ERR_BAD_NAME;
		if (!is_alpha(c) && !is_digit(c) && c != '.' && c != '_' && c != '-')
			return AK_ERR_BAD_NAME;
	}
	/* They would read as directory references wherever a name becomes a path component. */
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return AK_ERR_BAD_NAME;
	return AK_OK;
}

enum ak_err
ak_varname_check(const char *name)
{
	size_t i;

	if (name == NULL || (!is_alpha((unsigned char)name[0]) && name[0] != '_'))
		return AK_ERR_BAD_VARNAME;
	for (i = 1; name[i] != '\0'; i++) {
		unsigned char c = (unsigned char)name[i];

		if (i >= AK_VARNAME_MAX)
			return AK_ERR_BAD_VARNAME;
		if (!is_alpha(c) && !is_digit(c) && c != '_')
			return AK_ERR_BAD_VARNAME;
	}
	return AK_OK;
}

size_t
ak_utf8_next(const uint8_t *s, size_t n, uint32_t *cp)
{
	uint32_t c, min;
	size_t len, k;

	if (n == 0)
		return 0;
	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, c = s[0] & 0x1f, min = 0x80;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, c = s[0] & 0x0f, min = 0x800;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, c = s[0] & 0x07, min = 0x10000;
	else
		return 0;
	if (len > n)
		return 0;
	for (k = 1; k < len; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[k] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

/*
 * Either all digits (seconds), or one or more <digits><unit> groups with units d, h, m, s each used at
 * most once and in that order ("1h30m", not "30m1h"). Every intermediate sum is checked against the
 * 365-day cap, so no input can overflow.
 */
enum ak_err
ak_duration_parse(const char *s, uint32_t *seconds)
{
	static const char units[] = "dhms";
	static const uint32_t mult[] = { 86400, 3600, 60, 1 };
	uint64_t total = 0;
	int last = -1;
	const char *p = s;

	if (s == NULL || *s == '\0')
		return AK_ERR_INVALID;
	while (*p != '\0') {
		uint64_t v = 0;
		const char *u;
		int k;

		if (!is_digit((unsigned char)*p))
			return AK_ERR_INVALID;
		while (is_digit((unsigned char)*p)) {
			v = v * 10 + (uint64_t)(*p - '0');
			if (v > DURATION_MAX)
				return AK_ERR_INVALID;
			p++;
		}
		if (*p == '\0') {
			/* Bare digits only as the whole string. */
			if (last != -1)
				return AK_ERR_INVALID;
			total = v;
			break;
		}
		if ((u = strchr(units, *p)) == NULL)
			return AK_ERR_INVALID;
		k = (int)(u - units);
		if (k <= last)
			return AK_ERR_INVALID;
		last = k;
		total += v * mult[k];
		if (total > DURATION_MAX)
			return AK_ERR_INVALID;
		p++;
	}
	if (total > DURATION_MAX)
		return AK_ERR_INVALID;
	*seconds = (uint32_t)total;
	return AK_OK;
}

void
ak_duration_format(uint32_t seconds, char *buf, size_t buflen)
{
	uint32_t d = seconds / 86400, h = seconds / 3600 % 24, m = seconds / 60 % 60, s = seconds % 60;

	if (buflen == 0)
		return;
	/* Two units at most; a zero lower unit is dropped ("8h", "1h05m"). The output parses back. */
	if (d > 0)
		snprintf(buf, buflen, h ? "%ud%02uh" : "%ud", d, h);
	else if (h > 0)
		snprintf(buf, buflen, m ? "%uh%02um" : "%uh", h, m);
	else if (m > 0)
		snprintf(buf, buflen, s ? "%um%02us" : "%um", m, s);
	else
		snprintf(buf, buflen, "%us", s);
}

void
ak_age_format(int64_t then, int64_t now, char *buf, size_t buflen)
{
	int64_t a = now - then;

	if (buflen == 0)
		return;
	if (then > now)
		a = 0; /* clock skew: a time in the future is "now" */
	if (a < 60)
		snprintf(buf, buflen, "%llds", (long long)a);
	else if (a < 3600)
		snprintf(buf, buflen, "%lldm", (long long)(a / 60));
	else if (a < 86400)
		snprintf(buf, buflen, "%lldh", (long long)(a / 3600));
	else
		snprintf(buf, buflen, "%lldd", (long long)(a / 86400));
}

/* Known vendor prefixes: matched first so a '-' inside the random part never widens the prefix. */
static const char *const known_prefixes[] = {
	"sk-ant-admin01-", "sk-ant-api03-", "sk-ant-oat01-", "sk-ant-", "sk-proj-", "sk-svcacct-",
	"sk-admin-", "sk-or-v1-", "sk-",
};

#define REDACT_SHOW 4           /* trailing characters shown */
#define REDACT_MIN_HIDDEN 12    /* characters that must stay hidden */
#define REDACT_PREFIX_SPAN 16   /* the generic prefix ends at a '-' within this many characters */

static int
printable(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return 0;
	return 1;
}

/* Length of the vendor prefix of s (0 if none): a known one, else up to the last '-' within the first
 * 16 characters when everything before it is lowercase letters, digits and '-'. */
static size_t
vendor_prefix(const char *s, size_t len)
{
	size_t i, n = 0;

	for (i = 0; i < sizeof(known_prefixes) / sizeof(known_prefixes[0]); i++) {
		size_t k = strlen(known_prefixes[i]);

		if (len > k && strncmp(s, known_prefixes[i], k) == 0)
			return k;
	}
	for (i = 0; i < len && i < REDACT_PREFIX_SPAN; i++) {
		char c = s[i];

		if (c == '-')
			n = i + 1;
		else if (!((c >= 'a' && c <= 'z') || is_digit((unsigned char)c)))
			break;
	}
	return n;
}

void
ak_redact(const char *secret, char *buf, size_t buflen)
{
	size_t len, pre;

	if (buflen == 0)
		return;
	len = secret != NULL ? strlen(secret) : 0;
	/* Too short to show anything, or the tail is not plain text (it might be a terminal escape). */
	if (len < REDACT_SHOW + REDACT_MIN_HIDDEN || !printable(secret + len - REDACT_SHOW, REDACT_SHOW)) {
		snprintf(buf, buflen, "\xe2\x80\xa6(%zu char%s)", len, len == 1 ? "" : "s");
		return;
	}
	pre = vendor_prefix(secret, len);
	if (len - REDACT_SHOW < pre || len - REDACT_SHOW - pre < REDACT_MIN_HIDDEN)
		pre = 0;
	snprintf(buf, buflen, "%.*s\xe2\x80\xa6%s", (int)pre, secret, secret + len - REDACT_SHOW);
}

uint64_t
ak_now_ms(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int64_t
ak_now_s(void)
{
	return (int64_t)time(NULL);
}
