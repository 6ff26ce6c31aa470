/* provider.c - the provider table and the offline key format check.
 *
 * Everything provider-specific is data in the two tables below; the code only interprets them.
 * Messages name lengths, prefixes and kinds of key, never a character of the key itself.
 */
#include <stdio.h>
#include <string.h>

#include "ak_provider.h"

/* An Anthropic key of one kind: the API, its headers and the key's shape are the same for every kind;
 * a key is its prefix, 93 base64url characters and "AA". */
#define ANTHROPIC_KEY(nm, var, check, label, prefix) { \
	.name = nm, \
	.secret_var = var, \
	.base_url_env = "ANTHROPIC_BASE_URL", \
	.default_base = "https://api.anthropic.com", \
	.check_path = check, \
	.auth_header = "x-api-key", \
	.auth_prefix = "", \
	.extra_header = "anthropic-version: 2023-06-01", \
	.key_label = label, \
	.key_prefix = prefix, \
	.key_suffix = "AA", \
	.key_len = sizeof(prefix) - 1 + 93 + 2, \
	.key_base64url = 1, \
}

/* An OpenAI key of one kind: the same API and headers; a key is its prefix and at least 40 base64url
 * characters in all, of no fixed length. */
#define OPENAI_KEY(nm, var, check, label, prefix) { \
	.name = nm, \
	.secret_var = var, \
	.base_url_env = "OPENAI_BASE_URL", \
	.default_base = "https://api.openai.com/v1", \
	.check_path = check, \
	.auth_header = "Authorization", \
	.auth_prefix = "Bearer ", \
	.extra_header = NULL, \
	.key_label = label, \
	.key_prefix = prefix, \
	.key_suffix = "", \
	.key_len = 0, \
	.key_min_len = 40, \
	.key_base64url = 1, \
}

static const struct ak_provider providers[] = {
	/* The check lists one model: it authenticates the key and spends no tokens. */
	ANTHROPIC_KEY("anthropic", "ANTHROPIC_API_KEY", "/v1/models?limit=1", "Anthropic API keys", "sk-ant-api03-"),
	ANTHROPIC_KEY("anthropic-admin", "ANTHROPIC_ADMIN_KEY", "/v1/organizations/me", "Anthropic admin keys",
	    "sk-ant-admin01-"),
	/* The OpenAI SDKs' base URL includes /v1. sk-proj-, sk-svcacct-, sk-admin- and legacy sk- keys; legacy
	 * keys are 51 characters, project keys longer. */
	OPENAI_KEY("openai", "OPENAI_API_KEY", "/models", "OpenAI API keys", "sk-"),
	/* An organization admin key: usage reports, project service accounts (rotate --create). */
	OPENAI_KEY("openai-admin", "OPENAI_ADMIN_KEY", "/organization/projects?limit=1", "OpenAI admin keys",
	    "sk-admin-"),
	{
		/* URL, header and template come from the profile's AKCTL_CHECK_* variables. */
		.name = "generic",
		.secret_var = "",
		.base_url_env = NULL,
		.default_base = NULL,
		.check_path = NULL,
		.auth_header = "Authorization",
		.auth_prefix = "Bearer ",
		.extra_header = NULL,
		.key_label = "keys",
		.key_prefix = "",
		.key_suffix = "",
	},
};

#define NPROVIDERS (sizeof(providers) / sizeof(providers[0]))

/* Known key prefixes, longest first within a family, so a key is named by what it most likely is. */
struct known_prefix {
	const char *prefix;
	const char *provider;       /* the provider it belongs to, or NULL when no provider accepts it */
	enum ak_key_issue issue;    /* the issue when given to another provider */
	const char *what;
};

static const struct known_prefix known[] = {
	{ "sk-ant-api03-", "anthropic", AK_KEY_OTHER_PROVIDER,
	    "this looks like an Anthropic API key (provider anthropic)" },
	{ "sk-ant-admin01-", "anthropic-admin", AK_KEY_ADMIN_KEY,
	    "this looks like an admin key (sk-ant-admin01-: use provider anthropic-admin)" },
	{ "sk-ant-oat01-", NULL, AK_KEY_OAUTH_TOKEN,
	    "this looks like an OAuth access token (sk-ant-oat01-, from a Claude subscription login), "
	    "not an API key" },
	{ "sk-ant-ort01-", NULL, AK_KEY_OAUTH_TOKEN,
	    "this looks like an OAuth refresh token (sk-ant-ort01-), not an API key" },
	{ "sk-ant-api01-", NULL, AK_KEY_LEGACY,
	    "this looks like an older Anthropic API key format (sk-ant-api01-); current keys start with "
	    "sk-ant-api03-" },
	{ "sk-ant-", NULL, AK_KEY_OTHER_PROVIDER, "this looks like an Anthropic key of an unknown kind" },
	{ "sk-proj-", "openai", AK_KEY_OTHER_PROVIDER, "this looks like an OpenAI project key (provider openai)" },
	{ "sk-svcacct-", "openai", AK_KEY_OTHER_PROVIDER,
	    "this looks like an OpenAI service account key (provider openai)" },
	{ "sk-admin-", "openai-admin", AK_KEY_ADMIN_KEY,
	    "this looks like an OpenAI admin key (sk-admin-: use provider openai-admin)" },
};

#define NKNOWN (sizeof(known) / sizeof(known[0]))

const struct ak_provider *
ak_provider_find(const char *name)
{
	size_t i;

	if (name == NULL)
		return NULL;
	for (i = 0; i < NPROVIDERS; i++)
		if (strcmp(providers[i].name, name) == 0)
			return &providers[i];
	return NULL;
}

const struct ak_provider *
ak_provider_all(size_t *n)
{
	*n = NPROVIDERS;
	return providers;
}

const struct ak_provider *
ak_provider_for_var(const char *var)
{
	size_t i;

	if (var == NULL || var[0] == '\0')
		return NULL;
	for (i = 0; i < NPROVIDERS; i++)
		if (strcmp(providers[i].secret_var, var) == 0)
			return &providers[i];
	return NULL;
}

int
ak_key_issue_fatal(enum ak_key_issue i)
{
	switch (i) {
	case AK_KEY_EMPTY:
	case AK_KEY_WHITESPACE:
	case AK_KEY_NEWLINE:
	case AK_KEY_QUOTE:
	case AK_KEY_CONTROL:
		return 1;
	case AK_KEY_OK:
	case AK_KEY_WRONG_PREFIX:
	case AK_KEY_WRONG_LENGTH:
	case AK_KEY_BAD_CHARS:
	case AK_KEY_ADMIN_KEY:
	case AK_KEY_OAUTH_TOKEN:
	case AK_KEY_LEGACY:
	case AK_KEY_WRONG_SUFFIX:
	case AK_KEY_OTHER_PROVIDER:
		return 0;
	}
	return 1;
}

static int
is_b64url(unsigned char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
	    ch == '-' || ch == '_';
}

static int
starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Typographic quotes a word processor or chat client puts around pasted text: U+2018/2019/201C/201D
 * (E2 80 98/99/9C/9D) and the guillemets U+00AB/00BB (C2 AB/BB). */
static int
smart_quote_at(const unsigned char *s)
{
	if (s[0] == 0xe2 && s[1] == 0x80 &&
	    (s[2] == 0x98 || s[2] == 0x99 || s[2] == 0x9c || s[2] == 0x9d))
		return 1;
	return s[0] == 0xc2 && (s[1] == 0xab || s[1] == 0xbb);
}

/* Provider-independent checks: what no key anywhere contains. */
static enum ak_key_issue
check_common(const unsigned char *k, size_t len, char *msg, size_t msglen)
{
	size_t i;

	if (len == 0) {
		snprintf(msg, msglen, "key is empty");
		return AK_KEY_EMPTY;
	}
	if (k[len - 1] == '\n' || k[len - 1] == '\r') {
		snprintf(msg, msglen, "key has a trailing newline");
		return AK_KEY_NEWLINE;
	}
	for (i = 0; i < len; i++) {
		if (k[i] == '\n' || k[i] == '\r') {
			snprintf(msg, msglen, "key contains a line break");
			return AK_KEY_NEWLINE;
		}
	}
	if (k[0] == ' ' || k[0] == '\t' || k[len - 1] == ' ' || k[len - 1] == '\t') {
		snprintf(msg, msglen, "key has leading or trailing whitespace");
		return AK_KEY_WHITESPACE;
	}
	for (i = 0; i < len; i++) {
		if (k[i] == '"' || k[i] == '\'' || k[i] == '`' || smart_quote_at(k + i)) {
			snprintf(msg, msglen, "key contains a quote character");
			return AK_KEY_QUOTE;
		}
	}
	for (i = 0; i < len; i++) {
		if (k[i] == ' ' || k[i] == '\t') {
			snprintf(msg, msglen, "key contains whitespace");
			return AK_KEY_WHITESPACE;
		}
	}
	for (i = 0; i < len; i++) {
		if (k[i] < 0x20 || k[i] == 0x7f) {
			snprintf(msg, msglen, "key contains a control character");
			return AK_KEY_CONTROL;
		}
		if (k[i] >= 0x80) {
			snprintf(msg, msglen, "key contains a non-ASCII character");
			return AK_KEY_CONTROL;
		}
	}
	return AK_KEY_OK;
}

enum ak_key_issue
ak_provider_check_key(const struct ak_provider *p, const char *key, char *msg, size_t msglen)
{
	const unsigned char *k = (const unsigned char *)key;
	size_t len, i, plen;
	enum ak_key_issue r;
	char dummy[1];

	if (msg == NULL || msglen == 0) {
		msg = dummy;
		msglen = sizeof(dummy);
	}
	msg[0] = '\0';
	if (key == NULL) {
		snprintf(msg, msglen, "key is empty");
		return AK_KEY_EMPTY;
	}
	len = strlen(key);
	if ((r = check_common(k, len, msg, msglen)) != AK_KEY_OK || p == NULL)
		return r;

	/* A key that belongs to another provider (or is not an API key at all) is named before its
	 * length is judged: "this looks like an admin key" helps more than "key is 110 characters". */
	for (i = 0; i < NKNOWN; i++) {
		if (!starts_with(key, known[i].prefix))
			continue;
		if (known[i].provider != NULL && strcmp(known[i].provider, p->name) == 0)
			break;
		if (p->key_prefix[0] == '\0')
			break; /* generic accepts anything */
		if (strcmp(p->name, "anthropic-admin") == 0 && known[i].issue == AK_KEY_OTHER_PROVIDER &&
		    strcmp(known[i].prefix, "sk-ant-api03-") == 0) {
			snprintf(msg, msglen, "this looks like a regular API key, not an admin key "
			    "(provider anthropic)");
			return AK_KEY_OTHER_PROVIDER;
		}
		snprintf(msg, msglen, "%s", known[i].what);
		return known[i].issue;
	}

	plen = strlen(p->key_prefix);
	if (plen > 0 && strncmp(key, p->key_prefix, plen) != 0) {
		snprintf(msg, msglen, "key does not start with %s", p->key_prefix);
		return AK_KEY_WRONG_PREFIX;
	}
	if (p->key_base64url) {
		for (i = plen; i < len; i++) {
			if (!is_b64url(k[i])) {
				snprintf(msg, msglen, "key contains a character outside A-Z a-z 0-9 - _ "
				    "(at position %zu)", i + 1);
				return AK_KEY_BAD_CHARS;
			}
		}
	}
	if (p->key_len != 0 && len != p->key_len) {
		snprintf(msg, msglen, "key is %zu characters; %s are %zu", len, p->key_label, p->key_len);
		return AK_KEY_WRONG_LENGTH;
	}
	if (p->key_min_len != 0 && len < p->key_min_len) {
		snprintf(msg, msglen, "key is %zu characters; %s are at least %zu", len, p->key_label,
		    p->key_min_len);
		return AK_KEY_WRONG_LENGTH;
	}
	if (p->key_suffix[0] != '\0' && (len < strlen(p->key_suffix) ||
	    strcmp(key + len - strlen(p->key_suffix), p->key_suffix) != 0)) {
		snprintf(msg, msglen, "key does not end in %s as %s do (truncated or altered?)",
		    p->key_suffix, p->key_label);
		return AK_KEY_WRONG_SUFFIX;
	}
	return AK_KEY_OK;
}
