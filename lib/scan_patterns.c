/* scan_patterns.c - strings shaped like provider keys, found without a regex engine: a literal prefix
 * (memmem), then a run of the key's character set whose length must fall in a range. */
#include <string.h>

#include "ak_scan.h"

enum charset { CS_B64URL, CS_ALNUM, CS_UPPERNUM, CS_ALNUM_UNDERSCORE, CS_SLACK };

struct pattern {
	const char *name;
	const char *prefix;
	enum charset cs;
	size_t min, max;     /* run length after the prefix */
};

/* Longest prefix first where one extends another: the first pattern that matches at a place wins. */
static const struct pattern patterns[] = {
	{ "anthropic-api-key", "sk-ant-api03-", CS_B64URL, 80, 120 },
	{ "anthropic-admin-key", "sk-ant-admin01-", CS_B64URL, 80, 120 },
	{ "anthropic-oauth-token", "sk-ant-oat01-", CS_B64URL, 80, 120 },
	{ "openai-project-key", "sk-proj-", CS_B64URL, 40, 200 },
	{ "openai-service-account-key", "sk-svcacct-", CS_B64URL, 40, 200 },
	{ "openai-admin-key", "sk-admin-", CS_B64URL, 40, 200 },
	{ "openai-key", "sk-", CS_ALNUM, 32, 64 },
	{ "github-token", "ghp_", CS_ALNUM, 36, 36 },
	{ "github-token", "gho_", CS_ALNUM, 36, 36 },
	{ "github-token", "ghu_", CS_ALNUM, 36, 36 },
	{ "github-token", "ghs_", CS_ALNUM, 36, 36 },
	{ "github-fine-grained-token", "github_pat_", CS_ALNUM_UNDERSCORE, 60, 100 },
	{ "gitlab-token", "glpat-", CS_B64URL, 20, 20 },
	{ "slack-token", "xoxb-", CS_SLACK, 20, 200 },
	{ "slack-token", "xoxp-", CS_SLACK, 20, 200 },
	{ "aws-access-key-id", "AKIA", CS_UPPERNUM, 16, 16 },
	{ "google-api-key", "AIza", CS_B64URL, 35, 35 },
};
#define NPATTERNS (sizeof(patterns) / sizeof(patterns[0]))

const char *
ak_scan_pattern_name(uint32_t idx)
{
	return idx < NPATTERNS ? patterns[idx].name : "?";
}

static int
in_set(enum charset cs, uint8_t c)
{
	int alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');

	switch (cs) {
	case CS_B64URL:
		return alnum || c == '-' || c == '_';
	case CS_ALNUM:
		return alnum;
	case CS_UPPERNUM:
		return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
	case CS_ALNUM_UNDERSCORE:
		return alnum || c == '_';
	case CS_SLACK:
		return alnum || c == '-';
	}
	return 0;
}

static int
word_byte(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
	    c == '-' || c == '+' || c == '/';
}

/* A key has letters and digits; a run of one kind ("sk-aaaaaaaa...") is a placeholder, not a key. */
static int
plausible(const uint8_t *p, size_t n)
{
	int lower = 0, upper = 0, digit = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		lower |= p[i] >= 'a' && p[i] <= 'z';
		upper |= p[i] >= 'A' && p[i] <= 'Z';
		digit |= p[i] >= '0' && p[i] <= '9';
	}
	return digit + lower + upper >= 2;
}

/* The anchors searched with memmem; each pattern's prefix starts with one of them. */
static const char *const anchors[] = { "sk-", "gh", "github_pat_", "glpat-", "xox", "AKIA", "AIza" };

int
ak_scan_patterns(const uint8_t *buf, size_t len, ak_scan_cb cb, void *arg)
{
	struct ak_scan_hit hit;
	const uint8_t *p, *end = buf + len;
	size_t a, i, pl, run, off;
	int rc;

	for (a = 0; a < sizeof(anchors) / sizeof(anchors[0]); a++) {
		size_t al = strlen(anchors[a]);

		for (off = 0; off + al <= len; off = (size_t)(p - buf) + 1) {
			p = memmem(buf + off, len - off, anchors[a], al);
			if (p == NULL)
				break;
			if (p > buf && word_byte(p[-1]))
				continue;
			for (i = 0; i < NPATTERNS; i++) {
				pl = strlen(patterns[i].prefix);
				if (strncmp(patterns[i].prefix, anchors[a], al) != 0)
					continue;
				if (anchors[a][0] == 'g' && al == 2 && pl > 4)
					continue; /* github_pat_ has its own anchor */
				if ((size_t)(end - p) < pl || memcmp(p, patterns[i].prefix, pl) != 0)
					continue;
				for (run = 0; p + pl + run < end && in_set(patterns[i].cs, p[pl + run]); run++)
					;
				if (run < patterns[i].min || run > patterns[i].max ||
				    (p + pl + run < end && word_byte(p[pl + run])) ||
				    !plausible(p + pl, run))
					break; /* the longest prefix decides */
				memset(&hit, 0, sizeof(hit));
				hit.start = (size_t)(p - buf);
				hit.end = hit.start + pl + run;
				hit.secret = (uint32_t)i;
				hit.variant = AK_SCAN_RAW;
				if ((rc = cb(arg, &hit)) != 0)
					return rc;
				p += pl + run - 1;
				break;
			}
		}
	}
	return 0;
}
