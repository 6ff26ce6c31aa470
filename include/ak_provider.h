/* ak_provider.h - the provider table (data-driven, one place) and the offline key format check.
 * No network here: akctl links this; the live check is in akctl-net (cli/net/cmd_test.c, cli/net/net_http.c).
 *
 * Nothing here ever copies a key: the check reads it and writes a message that never contains it.
 */
#ifndef AK_PROVIDER_H
#define AK_PROVIDER_H

#include <stddef.h>

#include "ak_err.h"

/* The generic provider's check is described by plain (non-secret) variables of the profile. */
#define AK_CHECK_URL_VAR "AKCTL_CHECK_URL"           /* full URL, e.g. https://api.example.com/v1/me */
#define AK_CHECK_HEADER_VAR "AKCTL_CHECK_HEADER"     /* header name, default "Authorization" */
#define AK_CHECK_TEMPLATE_VAR "AKCTL_CHECK_TEMPLATE" /* header value, "{key}" replaced; default "Bearer {key}" */

struct ak_provider {
	const char *name;        /* "anthropic", "anthropic-admin", "openai", "generic" */
	const char *secret_var;  /* default secret variable: "ANTHROPIC_API_KEY", ... ("" for generic) */
	const char *base_url_env;/* "ANTHROPIC_BASE_URL", "OPENAI_BASE_URL", NULL */
	const char *default_base;/* "https://api.anthropic.com", "https://api.openai.com/v1" (the SDKs'
	                            conventions: OPENAI_BASE_URL includes /v1, ANTHROPIC_BASE_URL does not) */
	const char *check_path;  /* appended to the base: "/v1/models?limit=1", "/models"; NULL = generic */
	const char *auth_header; /* "x-api-key", "Authorization" */
	const char *auth_prefix; /* "", "Bearer " */
	const char *extra_header;/* "anthropic-version: 2023-06-01" or NULL */
	/* Key format, for the offline check. */
	const char *key_label;   /* "Anthropic API keys", for "key is 107 characters; ... are 108" */
	const char *key_prefix;  /* required prefix, "" = any */
	const char *key_suffix;  /* required suffix, "" = any */
	size_t key_len;          /* exact length, 0 = variable */
	size_t key_min_len;      /* minimum length when variable, 0 = none */
	int key_base64url;       /* 1: every character after the prefix is in [A-Za-z0-9_-] */
};

/* NULL if unknown. */
const struct ak_provider *ak_provider_find(const char *name);
/* The table, for listing: *n entries. */
const struct ak_provider *ak_provider_all(size_t *n);
/* Which provider a variable name belongs to as its secret ("ANTHROPIC_API_KEY" -> anthropic), or NULL. */
const struct ak_provider *ak_provider_for_var(const char *var);

enum ak_key_issue {
	AK_KEY_OK = 0,
	AK_KEY_WHITESPACE,       /* leading/trailing space or tab */
	AK_KEY_NEWLINE,          /* trailing (or embedded) newline / CR */
	AK_KEY_QUOTE,            /* a pasted quote character */
	AK_KEY_WRONG_PREFIX,     /* not this provider's prefix */
	AK_KEY_WRONG_LENGTH,
	AK_KEY_BAD_CHARS,        /* outside the key alphabet */
	AK_KEY_ADMIN_KEY,        /* an admin key given for a non-admin provider */
	AK_KEY_OAUTH_TOKEN,      /* sk-ant-oat01-: an OAuth token, not an API key */
	AK_KEY_LEGACY,           /* sk-ant-api01-: an older key format */
	AK_KEY_EMPTY,            /* nothing at all */
	AK_KEY_CONTROL,          /* a control byte or non-ASCII character: cannot go in an HTTP header */
	AK_KEY_WRONG_SUFFIX,     /* e.g. an Anthropic key not ending in "AA" (truncated paste) */
	AK_KEY_OTHER_PROVIDER,   /* looks like another provider's key (or a non-admin key for an admin one) */
};

/* Offline check of key against provider p (p may be NULL: only the provider-independent checks).
 * Returns the first issue found and writes a one-line, secret-free message ("key has a trailing
 * newline", "this looks like an admin key ...") into msg ("" for AK_KEY_OK). key is only read. */
enum ak_key_issue ak_provider_check_key(const struct ak_provider *p, const char *key, char *msg,
    size_t msglen);

/* 1 when the issue means the key must not be sent at all (it cannot be a valid key, or it cannot be
 * carried in an HTTP header): empty, whitespace, line break, quote, control/non-ASCII bytes.
 * Format-only issues (prefix, length, alphabet, kind of key) return 0: the live check still runs,
 * since a provider may change its format before we do. */
int ak_key_issue_fatal(enum ak_key_issue i);

#endif
