/* ak_provider.h - the provider table (data-driven, one place) and the offline key format check.
 * No network here: akctl links this; the live check is in akctl-net (cli/net_*.c). */
#ifndef AK_PROVIDER_H
#define AK_PROVIDER_H

#include <stddef.h>

#include "ak_err.h"

struct ak_provider {
	const char *name;        /* "anthropic", "anthropic-admin", "openai", "generic" */
	const char *secret_var;  /* default secret variable: "ANTHROPIC_API_KEY", ... ("" for generic) */
	const char *base_url_env;/* "ANTHROPIC_BASE_URL", "OPENAI_BASE_URL", NULL */
	const char *default_base;/* "https://api.anthropic.com", ... */
	const char *check_path;  /* "/v1/models?limit=1", "/v1/organizations/me", "/v1/models" */
	const char *auth_header; /* "x-api-key", "Authorization" */
	const char *auth_prefix; /* "", "Bearer " */
	const char *extra_header;/* "anthropic-version: 2023-06-01" or NULL */
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
};

/* Offline check of key against provider p. Returns the first issue found and writes a one-line,
 * secret-free message ("key has a trailing newline", "this looks like an admin key") into msg. */
enum ak_key_issue ak_provider_check_key(const struct ak_provider *p, const char *key, char *msg,
    size_t msglen);

#endif
