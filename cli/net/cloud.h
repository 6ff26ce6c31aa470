/* cloud.h - internal to akctl-net's cloud secret manager code (net_cloud.c, cloud_*.c).
 *
 * cloud_fetch() (net.h) splits the URI and hands the part after "SCHEME://" to one provider. Every
 * provider writes a one-line, secret-free reason into detail on failure, and returns its value in the
 * secure arena (the caller wipes it with ak_smem_free). Error classes, the same for every provider:
 *   AK_ERR_INVALID     bad URI (exit 2)
 *   AK_ERR_AUTH        no credentials, or the service refused them (401, 403, bad signature) (exit 6)
 *   AK_ERR_NO_PROFILE  the secret (or its version) does not exist (exit 5)
 *   AK_ERR_BAD_MESSAGE bad JSON, missing or non-string field, CRC32C mismatch, binary value (exit 1)
 *   AK_ERR_IO          network failure, 5xx, any other status (exit 1); AK_ERR_BUSY timeout / 429
 */
#ifndef AK_CLOUD_H
#define AK_CLOUD_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "ak_err.h"
#include "net.h"

#define CLOUD_URL_MAX 4096
#define CLOUD_TOKEN_MAX 16384 /* bearer tokens (Azure's are a few KiB) */

/* Providers. rest is the URI after "scheme://" up to '#'; field the part after '#' or NULL. */
enum ak_err cloud_aws_fetch(const char *rest, const char *field, const struct cloud_opts *o,
    char **value, size_t *value_len, char *detail, size_t detaillen);
enum ak_err cloud_gcp_fetch(const char *rest, const char *field, const struct cloud_opts *o,
    char **value, size_t *value_len, char *detail, size_t detaillen);
enum ak_err cloud_azure_fetch(const char *rest, const char *field, const struct cloud_opts *o,
    char **value, size_t *value_len, char *detail, size_t detaillen);
enum ak_err cloud_vault_fetch(const char *rest, const char *field, const struct cloud_opts *o,
    char **value, size_t *value_len, char *detail, size_t detaillen);

/* Helpers (cloud_enc.c, net_cloud.c, cloud_token.c) ------------------------------------------------------------------------------ */
/* snprintf into detail; returns e (so "return cloud_err(e, ...)"). */
enum ak_err cloud_err(enum ak_err e, char *detail, size_t detaillen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* getenv, but NULL when unset or empty. */
const char *cloud_env(const char *name);
/* Split rest at '/' into at most max segments (pointers into rest, with lengths); returns how many.
 * *more is 1 when a '/' follows the last segment taken (rest has more than max). */
size_t cloud_split(const char *rest, const char **seg, size_t *len, size_t max, int *more);
/* 1 if every byte of s[0..n) is printable ASCII without space (0x21..0x7e): safe in a header. */
int cloud_token_ok(const char *s, size_t n);
/* Append s[0..n) to out (cap outlen, NUL kept) percent-encoding every byte outside [A-Za-z0-9._~-].
 * -1 if it does not fit. */
int cloud_append_pct(char *out, size_t outlen, const char *s, size_t n);
/* Append a plain string; -1 if it does not fit. */
int cloud_append(char *out, size_t outlen, const char *s);
/* A URL prefix from the environment: http:// or https://, no whitespace/control bytes, no '?' '#'.
 * Trailing '/' removed into out. -1 if unusable. */
int cloud_base_url(const char *in, char *out, size_t outlen);
/* Server text into out as one line: cut at the first blank line, line breaks and tabs to one space,
 * other control bytes to '?', every occurrence
 * of each non-NULL secret in secrets[] (nsecrets entries) replaced by "[redacted]", capped. */
void cloud_clean(const char *in, char *out, size_t outlen, const char *const *secrets, size_t nsecrets);
/* The error text of a JSON error body, whichever shape (AWS __type/message, {"error":{...}} of Google
 * and Azure, Vault's {"errors":[...]}), cleaned as above; "" if none. */
void cloud_json_error(const char *body, char *out, size_t outlen, const char *const *secrets,
    size_t nsecrets);
/* Send rq; on a transport failure (no response) fill detail ("WHO: could not connect: ...") and return
 * AK_ERR_IO / AK_ERR_BUSY; AK_OK when any HTTP response arrived. resp is cleared by the caller. */
enum ak_err cloud_http(const char *who, const struct net_request *rq, struct net_response *resp,
    char *detail, size_t detaillen);
/* A secret manager's request: rq with the connect timeout (5 s) and o's total timeout set, then
 * cloud_http. */
enum ak_err cloud_send(const char *who, struct net_request *rq, const struct cloud_opts *o,
    struct net_response *resp, char *detail, size_t detaillen);
/* The class of an HTTP error status (401/403 auth, 404 not found, 429 busy, else I/O). */
enum ak_err cloud_status_class(long status);
/* Run argv (execvp, no shell; stdin and stderr /dev/null) and read its stdout as a token (at most
 * CLOUD_TOKEN_MAX bytes, trailing whitespace dropped, checked with cloud_token_ok) within timeout_ms.
 * *tok is secure (ak_smem_free). On failure detail says why ("not found", "exited with status 1").
 * AK_ERR_NO_PROFILE when the program is not installed, AK_ERR_AUTH otherwise. */
enum ak_err cloud_run_token(char *const argv[], long timeout_ms, char **tok, char *detail,
    size_t detaillen);
/* "Name: prefix<token>" in the secure arena (ak_smem_free); NULL on allocation failure. */
char *cloud_header(const char *name_prefix, const char *token);
/* Parse a secure response body as JSON (NULL on failure). cJSON is hooked to the arena: cJSON_Delete
 * wipes. */
cJSON *cloud_parse(const struct net_response *resp);
/* The GET every token-authenticated provider makes: url with the header "<auth_prefix><tok>" (plus
 * extra, one non-secret header line, when not NULL). A 200 body is parsed into *j (NULL when it is not
 * JSON: the caller says so); any other status fails as "WHO: HTTP N[: error text]" classed by
 * cloud_status_class, not_found (when not NULL) standing in for the text of a 404 that has none. tok
 * stays the caller's to wipe; the header copy and the response body are wiped here. *j is the caller's
 * (cJSON_Delete wipes). */
enum ak_err cloud_get_json(const char *who, const char *url, const char *auth_prefix, const char *tok,
    const char *extra, const char *not_found, const struct cloud_opts *o, cJSON **j, char *detail,
    size_t detaillen);
/* The final value: s (NUL-terminated, n bytes) itself, or when field != NULL the string member field of
 * the JSON object s. Checks: no NUL byte, not empty, at most AK_VALUE_MAX. *value secure. who names the
 * provider in messages. */
enum ak_err cloud_take_value(const char *who, const char *s, size_t n, const char *field, char **value,
    size_t *value_len, char *detail, size_t detaillen);
/* The string member name of the JSON object obj (a secret of several fields) as the final value, with
 * cloud_take_value's checks; fails naming the field when it is missing or not a string. *value secure. */
enum ak_err cloud_take_member(const char *who, const cJSON *obj, const char *name, char **value,
    size_t *value_len, char *detail, size_t detaillen);
/* Base64 (standard alphabet, padding) into a secure, NUL-terminated buffer. -1 if malformed. */
int cloud_b64_decode(const char *in, char **out, size_t *outlen);
/* CRC32C (Castagnoli, reflected 0x82F63B78) as Google Secret Manager's dataCrc32c. */
uint32_t cloud_crc32c(const void *buf, size_t len);
/* Request timeout to use (opts, else 15 s). */
long cloud_timeout(const struct cloud_opts *o);

#endif
