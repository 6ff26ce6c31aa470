/* net_cloud.c - cloud secret managers for akctl import/pull: URI dispatch to the providers (cloud_*.c)
 * and the request every provider makes. Text and value encodings are cloud_enc.c's, token programs
 * cloud_token.c's.
 *
 * Runs only in akctl-net. Tokens and keys go only in request headers (or libcurl's SigV4 user/password),
 * never in a URL or a message; server error text is cut to one line and scrubbed of every credential we
 * sent before it is shown, because some services echo request parts back (AWS's InvalidSignature message
 * quotes the canonical request, security token included).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "ak_smem.h"
#include "ak_store.h"
#include "ak_util.h"
#include "cli.h"
#include "cloud.h"

#define CLOUD_URI_MAX 2048
#define CLOUD_FIELD_MAX 256

struct scheme {
	const char *prefix;
	enum ak_err (*fetch)(const char *, const char *, const struct cloud_opts *, char **, size_t *,
	    char *, size_t);
};

static const struct scheme schemes[] = {
	{ "aws-sm://", cloud_aws_fetch },
	{ "gcp-sm://", cloud_gcp_fetch },
	{ "azure-kv://", cloud_azure_fetch },
	{ "vault://", cloud_vault_fetch },
};

#define NSCHEMES (sizeof(schemes) / sizeof(schemes[0]))

int
cloud_is_uri(const char *s)
{
	size_t i;

	if (s == NULL)
		return 0;
	for (i = 0; i < NSCHEMES; i++)
		if (strncmp(s, schemes[i].prefix, strlen(schemes[i].prefix)) == 0)
			return 1;
	return 0;
}

enum ak_err
cloud_fetch(const char *uri, const struct cloud_opts *o, char **value, size_t *value_len, char *detail,
    size_t detaillen)
{
	static const struct cloud_opts defaults = { NULL, 0 };
	char rest[CLOUD_URI_MAX + 1];
	const char *field = NULL, *p;
	char *hash;
	size_t i, n;

	*value = NULL;
	*value_len = 0;
	if (detaillen > 0)
		detail[0] = '\0';
	if (o == NULL)
		o = &defaults;
	for (i = 0; i < NSCHEMES; i++)
		if (strncmp(uri, schemes[i].prefix, strlen(schemes[i].prefix)) == 0)
			break;
	if (i == NSCHEMES)
		return cloud_err(AK_ERR_INVALID, detail, detaillen,
		    "not a cloud URI (aws-sm://, gcp-sm://, azure-kv://, vault://)");
	p = uri + strlen(schemes[i].prefix);
	n = strlen(p);
	if (n > CLOUD_URI_MAX)
		return cloud_err(AK_ERR_INVALID, detail, detaillen, "URI too long");
	/* No control bytes, spaces or non-ASCII anywhere: they have no business in a secret's name, and
	 * refusing them here means no provider has to think about them. */
	for (i = 0; i < n; i++)
		if ((unsigned char)p[i] <= 0x20 || (unsigned char)p[i] >= 0x7f)
			return cloud_err(AK_ERR_INVALID, detail, detaillen,
			    "URI contains a space, control or non-ASCII character");
	memcpy(rest, p, n + 1);
	if ((hash = strchr(rest, '#')) != NULL) {
		*hash = '\0';
		field = hash + 1;
		if (*field == '\0' || strlen(field) > CLOUD_FIELD_MAX || strchr(field, '#') != NULL)
			return cloud_err(AK_ERR_INVALID, detail, detaillen,
			    "bad '#field' (1 to %d characters, one '#')", CLOUD_FIELD_MAX);
	}
	if (rest[0] == '\0')
		return cloud_err(AK_ERR_INVALID, detail, detaillen, "URI names no secret");
	for (i = 0; i < NSCHEMES; i++)
		if (strncmp(uri, schemes[i].prefix, strlen(schemes[i].prefix)) == 0)
			return schemes[i].fetch(rest, field, o, value, value_len, detail, detaillen);
	return AK_ERR_INTERNAL;
}

/* Helpers ------------------------------------------------------------------------------------------- */

const char *
cloud_env(const char *name)
{
	const char *v = getenv(name);

	return (v != NULL && v[0] != '\0') ? v : NULL;
}

long
cloud_timeout(const struct cloud_opts *o)
{
	return (o != NULL && o->timeout_ms > 0) ? o->timeout_ms : 15000;
}


enum ak_err
cloud_send(const char *who, struct net_request *rq, const struct cloud_opts *o, struct net_response *resp,
    char *detail, size_t detaillen)
{
	rq->connect_timeout_ms = 5000;
	rq->timeout_ms = cloud_timeout(o);
	return cloud_http(who, rq, resp, detail, detaillen);
}

enum ak_err
cloud_http(const char *who, const struct net_request *rq, struct net_response *resp, char *detail,
    size_t detaillen)
{
	static const char *const what[] = {
		[NET_OK] = "ok",
		[NET_TIMEOUT] = "timed out",
		[NET_DNS] = "could not resolve the host",
		[NET_CONNECT] = "connection failed",
		[NET_TLS] = "TLS failure",
		[NET_PROTOCOL] = "bad HTTP response",
		[NET_OTHER] = "network failure",
	};
	char err[256];
	const char *w;
	enum ak_err r;

	memset(resp, 0, sizeof(*resp));
	if ((r = net_perform(rq, resp)) != AK_OK)
		return cloud_err(r, detail, detaillen, "%s: request failed: %s", who, ak_strerror(r));
	if (resp->fail == NET_OK)
		return AK_OK;
	w = ((unsigned)resp->fail < sizeof(what) / sizeof(what[0]) && what[resp->fail] != NULL) ?
	    what[resp->fail] : "network failure";
	/* net_perform scrubbed rq->secret already; clean once more for the other credentials. */
	cloud_clean(resp->error, err, sizeof(err), &rq->secret, 1);
	if (err[0] != '\0')
		cloud_err(AK_ERR_IO, detail, detaillen, "%s: %s: %s", who, w, err);
	else
		cloud_err(AK_ERR_IO, detail, detaillen, "%s: %s", who, w);
	return resp->fail == NET_TIMEOUT ? AK_ERR_BUSY : AK_ERR_IO;
}

enum ak_err
cloud_status_class(long status)
{
	switch (status) {
	case 401:
	case 403:
		return AK_ERR_AUTH;
	case 404:
		return AK_ERR_NO_PROFILE;
	case 429:
		return AK_ERR_BUSY;
	default:
		return AK_ERR_IO;
	}
}

char *
cloud_header(const char *name_prefix, const char *token)
{
	size_t a = strlen(name_prefix), b = strlen(token);
	char *h;

	if ((h = ak_smem_alloc(a + b + 1)) == NULL)
		return NULL;
	memcpy(h, name_prefix, a);
	memcpy(h + a, token, b + 1);
	return h;
}

cJSON *
cloud_parse(const struct net_response *resp)
{
	if (resp->body == NULL || resp->body_len == 0)
		return NULL;
	return cJSON_ParseWithLength(resp->body, resp->body_len);
}

enum ak_err
cloud_get_json(const char *who, const char *url, const char *auth_prefix, const char *tok,
    const char *extra, const char *not_found, const struct cloud_opts *o, cJSON **j, char *detail,
    size_t detaillen)
{
	const char *headers[3] = { NULL, NULL, NULL }, *secrets[1];
	struct net_request rq;
	struct net_response resp;
	char msg[300], *auth;
	enum ak_err r;

	*j = NULL;
	memset(&resp, 0, sizeof(resp));
	if ((auth = cloud_header(auth_prefix, tok)) == NULL) {
		r = cloud_err(AK_ERR_NOMEM, detail, detaillen, "%s: out of memory", who);
		goto out;
	}
	headers[0] = auth;
	headers[1] = extra;
	memset(&rq, 0, sizeof(rq));
	rq.method = "GET";
	rq.url = url;
	rq.headers = headers;
	rq.secret = tok;
	if ((r = cloud_send(who, &rq, o, &resp, detail, detaillen)) != AK_OK)
		goto out;
	secrets[0] = tok;
	if (resp.status != 200) {
		cloud_json_error(resp.body, msg, sizeof(msg), secrets, 1);
		if (msg[0] == '\0' && resp.status == 404 && not_found != NULL)
			snprintf(msg, sizeof(msg), "%s", not_found);
		r = cloud_err(cloud_status_class(resp.status), detail, detaillen, "%s: HTTP %ld%s%s", who,
		    resp.status, msg[0] ? ": " : "", msg);
		goto out;
	}
	*j = cloud_parse(&resp);
	r = AK_OK;
out:
	ak_smem_free(auth); /* held the token */
	/* What net_response_clear does, spelled out: the fuzz build links this file without net_http.c. */
	ak_smem_free(resp.body); /* wipes: the body may hold a secret */
	sodium_memzero(&resp, sizeof(resp));
	return r;
}
