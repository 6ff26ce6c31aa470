/* admin.h - providers' admin APIs for akctl-net: find a key by its partial hint, deactivate it
 * (Anthropic), create a project service account's key (OpenAI), and read usage reports grouped by key.
 *
 * The admin key is a profile of its own (provider anthropic-admin or openai-admin), fetched from the
 * agent into the secure arena and sent only in a header; it is wiped by admin_close. Every message is
 * one line, scrubbed of the admin key. Error classes as cloud.h's: AK_ERR_AUTH (401/403), AK_ERR_IO,
 * AK_ERR_BUSY (timeout, 429), AK_ERR_BAD_MESSAGE (a response of the wrong shape), AK_ERR_NO_PROFILE
 * (no admin profile, or no key matches), AK_ERR_AMBIGUOUS_KEY (several keys match a hint).
 */
#ifndef AK_ADMIN_H
#define AK_ADMIN_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "ak_err.h"
#include "cli.h"

#define ADMIN_ID_MAX 128
#define ADMIN_DAYS_MAX 93

enum admin_kind { ADMIN_ANTHROPIC, ADMIN_OPENAI };

struct admin {
	enum admin_kind kind;
	char profile[AK_NAME_MAX + 1]; /* the admin profile's name */
	char *key;                     /* the admin key (secure) */
	char base[1024];               /* its base URL: a stored *_BASE_URL, else the provider's */
};

/* A key an admin API lists. */
struct admin_key {
	char id[ADMIN_ID_MAX];
	char name[256];
	char status[32];
};

/* The admin profile for kind: opt (--admin) when given (its provider must be kind's), else the only
 * profile of provider anthropic-admin / openai-admin. cl: an unlocked agent. */
enum ak_err admin_open(struct ak_client *cl, enum admin_kind kind, const char *opt, struct admin *a,
    char *detail, size_t detaillen);
void admin_close(struct admin *a); /* wipes the key */

/* The one key whose partial hint matches: hint (a stored one, compared whole) or key (its prefix and
 * suffix). OpenAI lists per project (project must be set), Anthropic per organization. Pages through
 * every page. */
enum ak_err admin_find_key(struct admin *a, const char *project, const char *hint, const char *key,
    struct admin_key *out, char *detail, size_t detaillen);
/* Anthropic: POST /v1/organizations/api_keys/{id} {"status":"inactive"}. */
enum ak_err admin_deactivate(struct admin *a, const char *id, struct admin_key *out, char *detail,
    size_t detaillen);
/* OpenAI: create a project service account named name; *key gets its new key (secure, the caller
 * wipes with ak_smem_free), id its account's id. */
enum ak_err admin_create_sa(struct admin *a, const char *project, const char *name, char **key,
    char *id, size_t idlen, char *detail, size_t detaillen);

/* Tokens per day (UTC days from start, at most ADMIN_DAYS_MAX) of the key id. */
struct admin_day {
	uint64_t input, output, cache;
	int seen; /* the provider reported a result for this key that day */
};
enum ak_err admin_usage(struct admin *a, const char *id, int64_t start, size_t ndays,
    struct admin_day *days, char *detail, size_t detaillen);

#endif
