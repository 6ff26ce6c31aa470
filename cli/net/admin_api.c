/* admin_api.c - providers' admin APIs (admin.h): Anthropic's api_keys and usage_report, OpenAI's
 * project api_keys, service accounts and usage. akctl-net only.
 *
 * The admin key goes only in a header (x-api-key, or Authorization: Bearer) and is scrubbed from every
 * message; ids from responses go into URLs only after a character check, so a response cannot steer a
 * request elsewhere. Pagination stops after ADMIN_PAGES_MAX pages, so a server that always says
 * has_more cannot hold us forever.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "admin.h"
#include "ak_provider.h"
#include "ak_rotate.h"
#include "ak_smem.h"
#include "cloud.h"
#include "net.h"

#define ADMIN_PAGES_MAX 100
#define ADMIN_URL_MAX 2048

static const char *const kind_provider[] = {
	[ADMIN_ANTHROPIC] = "anthropic-admin",
	[ADMIN_OPENAI] = "openai-admin",
};

enum ak_err
admin_open(struct ak_client *cl, enum admin_kind kind, const char *opt, struct admin *a, char *detail,
    size_t detaillen)
{
	struct ak_list_entry *e = NULL;
	struct ak_profile *p = NULL;
	const struct ak_provider *pv = ak_provider_find(kind_provider[kind]);
	const char *name = opt, *base;
	uint32_t n = 0, i, found = 0;
	enum ak_err r;

	memset(a, 0, sizeof(*a));
	a->kind = kind;
	if (name == NULL) {
		if ((r = ak_client_list(cl, &e, &n)) != AK_OK)
			return cloud_err(r, detail, detaillen, "listing the profiles");
		for (i = 0; i < n; i++) {
			if (strcmp(e[i].provider, kind_provider[kind]) != 0)
				continue;
			if (found++ == 0)
				snprintf(a->profile, sizeof(a->profile), "%s", e[i].name);
		}
		ak_client_list_free(e, n);
		if (found == 0)
			return cloud_err(AK_ERR_NO_PROFILE, detail, detaillen, "no profile with provider %s "
			    "(add the admin key as one, or name it with --admin)", kind_provider[kind]);
		if (found > 1)
			return cloud_err(AK_ERR_INVALID, detail, detaillen, "%lu profiles have provider %s: "
			    "choose one with --admin", (unsigned long)found, kind_provider[kind]);
		name = a->profile;
	} else {
		snprintf(a->profile, sizeof(a->profile), "%s", name);
	}
	if ((r = ak_client_get(cl, name, &p)) != AK_OK) {
		r = cloud_err(r, detail, detaillen, "admin profile %s", name);
		goto out;
	}
	if (strcmp(p->provider, kind_provider[kind]) != 0) {
		r = cloud_err(AK_ERR_INVALID, detail, detaillen, "admin profile %s has provider %s, not %s",
		    name, p->provider, kind_provider[kind]);
		goto out;
	}
	if (!cloud_token_ok(p->secret, strlen(p->secret))) {
		r = cloud_err(AK_ERR_INVALID, detail, detaillen, "admin profile %s: the key cannot go in "
		    "a header (space or control character)", name);
		goto out;
	}
	base = ak_profile_plain_value(p, pv->base_url_env);
	if (base == NULL || base[0] == '\0')
		base = pv->default_base;
	if (cloud_base_url(base, a->base, sizeof(a->base)) != 0) {
		r = cloud_err(AK_ERR_INVALID, detail, detaillen, "admin profile %s: unusable %s (https://, "
		    "or http:// to this machine only)", name, pv->base_url_env);
		goto out;
	}
	if ((a->key = ak_smem_strdup(p->secret)) == NULL) {
		r = cloud_err(AK_ERR_NOMEM, detail, detaillen, "out of memory");
		goto out;
	}
	r = AK_OK;
out:
	ak_profile_free(p); /* wipes the admin key's copy */
	return r;
}

void
admin_close(struct admin *a)
{
	if (a == NULL)
		return;
	ak_smem_free(a->key); /* wipes */
	a->key = NULL;
}

/* One request: path (with its query) after the base URL, a JSON body or NULL. A 2xx body is parsed
 * into *j. */
static enum ak_err
request(struct admin *a, const char *method, const char *path, const char *body, cJSON **j,
    char *detail, size_t detaillen)
{
	const char *headers[4] = { NULL, NULL, NULL, NULL }, *secrets[1];
	const struct ak_provider *pv = ak_provider_find(kind_provider[a->kind]);
	struct net_request rq;
	struct net_response resp;
	char url[ADMIN_URL_MAX], msg[300], prefix[64], *auth = NULL;
	const char *who = a->kind == ADMIN_ANTHROPIC ? "Anthropic admin API" : "OpenAI admin API";
	enum ak_err r;
	int k = 0;

	*j = NULL;
	memset(&resp, 0, sizeof(resp));
	if ((size_t)snprintf(url, sizeof(url), "%s%s", a->base, path) >= sizeof(url))
		return cloud_err(AK_ERR_INVALID, detail, detaillen, "%s: URL too long", who);
	snprintf(prefix, sizeof(prefix), "%s: %s", pv->auth_header, pv->auth_prefix);
	if ((auth = cloud_header(prefix, a->key)) == NULL)
		return cloud_err(AK_ERR_NOMEM, detail, detaillen, "%s: out of memory", who);
	headers[k++] = auth;
	if (pv->extra_header != NULL)
		headers[k++] = pv->extra_header;
	if (body != NULL)
		headers[k++] = "Content-Type: application/json";
	memset(&rq, 0, sizeof(rq));
	rq.method = method;
	rq.url = url;
	rq.headers = headers;
	rq.body = body;
	rq.body_len = body != NULL ? strlen(body) : 0;
	rq.secret = a->key;
	rq.connect_timeout_ms = 5000;
	rq.timeout_ms = 30000;
	if ((r = cloud_http(who, &rq, &resp, detail, detaillen)) != AK_OK)
		goto out;
	secrets[0] = a->key;
	if (resp.status < 200 || resp.status > 299) {
		cloud_json_error(resp.body, msg, sizeof(msg), secrets, 1);
		r = cloud_err(cloud_status_class(resp.status), detail, detaillen, "%s: HTTP %ld%s%s", who,
		    resp.status, msg[0] ? ": " : "", msg);
		goto out;
	}
	if ((*j = cloud_parse(&resp)) == NULL || !cJSON_IsObject(*j)) {
		cJSON_Delete(*j);
		*j = NULL;
		r = cloud_err(AK_ERR_BAD_MESSAGE, detail, detaillen, "%s: the response is not a JSON "
		    "object", who);
		goto out;
	}
	r = AK_OK;
out:
	ak_smem_free(auth); /* held the admin key */
	net_response_clear(&resp);
	return r;
}

static const char *
jstr(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsString(v) && v->valuestring != NULL ? v->valuestring : NULL;
}

/* An id that may go into a URL path or query as it is. */
static int
id_ok(const char *s)
{
	size_t i, n = s != NULL ? strlen(s) : 0;

	if (n == 0 || n >= ADMIN_ID_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '_' || c == '-' || c == '.'))
			return 0;
	}
	return 1;
}

/* Copy a server's text for display: printable ASCII, others as '?'. */
static void
text_copy(char *out, size_t outlen, const char *in)
{
	size_t i;

	if (outlen == 0)
		return;
	for (i = 0; in != NULL && in[i] != '\0' && i + 1 < outlen; i++)
		out[i] = ((unsigned char)in[i] < 0x20 || (unsigned char)in[i] >= 0x7f) ? '?' : in[i];
	out[i] = '\0';
}

enum ak_err
admin_find_key(struct admin *a, const char *project, const char *hint, const char *key,
    struct admin_key *out, char *detail, size_t detaillen)
{
	char path[ADMIN_URL_MAX], after[ADMIN_ID_MAX] = "";
	const cJSON *data, *it, *more;
	const char *ph, *id, *last;
	cJSON *j = NULL;
	unsigned page, matches = 0;
	enum ak_err r;

	memset(out, 0, sizeof(*out));
	if (a->kind == ADMIN_OPENAI && !id_ok(project))
		return cloud_err(AK_ERR_INVALID, detail, detaillen, "no usable OpenAI project id "
		    "(--project, or the profile's OPENAI_PROJECT_ID)");
	for (page = 0; page < ADMIN_PAGES_MAX; page++) {
		if (a->kind == ADMIN_ANTHROPIC)
			snprintf(path, sizeof(path), "/v1/organizations/api_keys?limit=100%s%s",
			    after[0] ? "&after_id=" : "", after);
		else
			snprintf(path, sizeof(path), "/organization/projects/%s/api_keys?limit=100%s%s",
			    project, after[0] ? "&after=" : "", after);
		if ((r = request(a, "GET", path, NULL, &j, detail, detaillen)) != AK_OK)
			return r;
		data = cJSON_GetObjectItemCaseSensitive(j, "data");
		if (!cJSON_IsArray(data)) {
			r = cloud_err(AK_ERR_BAD_MESSAGE, detail, detaillen, "the key list has no data array");
			goto out;
		}
		cJSON_ArrayForEach(it, data) {
			/* Anthropic shows partial_key_hint, OpenAI redacted_value: both "prefix...suffix". */
			ph = jstr(it, a->kind == ADMIN_ANTHROPIC ? "partial_key_hint" : "redacted_value");
			id = jstr(it, "id");
			if (ph == NULL || id == NULL || ak_rot_hint_check(ph) != AK_OK)
				continue;
			if (hint != NULL ? strcmp(hint, ph) != 0 : !ak_rot_hint_match(ph, key))
				continue;
			if (matches++ > 0)
				continue;
			if (!id_ok(id)) {
				r = cloud_err(AK_ERR_BAD_MESSAGE, detail, detaillen, "a key id with unexpected "
				    "characters");
				goto out;
			}
			snprintf(out->id, sizeof(out->id), "%s", id);
			text_copy(out->name, sizeof(out->name), jstr(it, "name"));
			text_copy(out->status, sizeof(out->status), jstr(it, "status"));
		}
		more = cJSON_GetObjectItemCaseSensitive(j, "has_more");
		last = jstr(j, "last_id");
		if (!cJSON_IsTrue(more))
			break;
		if (!id_ok(last) || strcmp(last, after) == 0) {
			r = cloud_err(AK_ERR_BAD_MESSAGE, detail, detaillen, "has_more without a usable "
			    "last_id");
			goto out;
		}
		snprintf(after, sizeof(after), "%s", last);
		cJSON_Delete(j);
		j = NULL;
	}
	if (matches == 0) {
		r = cloud_err(AK_ERR_NO_PROFILE, detail, detaillen, "no key listed by the %s admin API "
		    "matches %s", a->kind == ADMIN_ANTHROPIC ? "Anthropic" : "OpenAI",
		    hint != NULL ? hint : "the key");
		goto out;
	}
	if (matches > 1) {
		r = cloud_err(AK_ERR_AMBIGUOUS_KEY, detail, detaillen, "%u keys match %s: not choosing "
		    "one (deactivate it in the Console)", matches, hint != NULL ? hint : "the key's hint");
		goto out;
	}
	r = AK_OK;
out:
	cJSON_Delete(j);
	if (r != AK_OK)
		memset(out, 0, sizeof(*out));
	return r;
}

enum ak_err
admin_deactivate(struct admin *a, const char *id, struct admin_key *out, char *detail, size_t detaillen)
{
	char path[ADMIN_URL_MAX];
	cJSON *j = NULL;
	enum ak_err r;

	if (a->kind != ADMIN_ANTHROPIC || !id_ok(id))
		return cloud_err(AK_ERR_INVALID, detail, detaillen, "deactivation needs an Anthropic key id");
	snprintf(path, sizeof(path), "/v1/organizations/api_keys/%s", id);
	if ((r = request(a, "POST", path, "{\"status\":\"inactive\"}", &j, detail, detaillen)) != AK_OK)
		return r;
	if (jstr(j, "status") == NULL || strcmp(jstr(j, "status"), "inactive") != 0) {
		r = cloud_err(AK_ERR_BAD_MESSAGE, detail, detaillen, "the key's status did not become "
		    "inactive");
		goto out;
	}
	text_copy(out->status, sizeof(out->status), jstr(j, "status"));
	if (jstr(j, "name") != NULL)
		text_copy(out->name, sizeof(out->name), jstr(j, "name"));
	r = AK_OK;
out:
	cJSON_Delete(j);
	return r;
}

enum ak_err
admin_create_sa(struct admin *a, const char *project, const char *name, char **key, char *id,
    size_t idlen, char *detail, size_t detaillen)
{
	char path[ADMIN_URL_MAX];
	cJSON *body = NULL, *j = NULL;
	const cJSON *ak;
	const char *v;
	char *txt = NULL;
	enum ak_err r;

	*key = NULL;
	if (a->kind != ADMIN_OPENAI || !id_ok(project))
		return cloud_err(AK_ERR_INVALID, detail, detaillen, "no usable OpenAI project id "
		    "(--project, or the profile's OPENAI_PROJECT_ID)");
	snprintf(path, sizeof(path), "/organization/projects/%s/service_accounts", project);
	if ((body = cJSON_CreateObject()) == NULL || cJSON_AddStringToObject(body, "name", name) == NULL ||
	    (txt = cJSON_PrintUnformatted(body)) == NULL) {
		r = cloud_err(AK_ERR_NOMEM, detail, detaillen, "out of memory");
		goto out;
	}
	if ((r = request(a, "POST", path, txt, &j, detail, detaillen)) != AK_OK)
		goto out;
	ak = cJSON_GetObjectItemCaseSensitive(j, "api_key");
	v = jstr(ak, "value");
	if (v == NULL || v[0] == '\0' || strlen(v) > AK_VALUE_MAX || !cloud_token_ok(v, strlen(v))) {
		r = cloud_err(AK_ERR_BAD_MESSAGE, detail, detaillen, "the new service account came "
		    "without a usable api_key.value");
		goto out;
	}
	text_copy(id, idlen, jstr(j, "id"));
	if ((*key = ak_smem_strdup(v)) == NULL) {
		r = cloud_err(AK_ERR_NOMEM, detail, detaillen, "out of memory");
		goto out;
	}
	r = AK_OK;
out:
	if (txt != NULL)
		cJSON_free(txt);
	cJSON_Delete(body);
	cJSON_Delete(j); /* wipes: the arena hook sees the body that held the new key */
	return r;
}

static uint64_t
num(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsNumber(v) && v->valuedouble > 0 && v->valuedouble < 1e15 ?
	    (uint64_t)v->valuedouble : 0;
}

/* Anthropic's bucket start is an RFC 3339 time ("2026-11-20T00:00:00Z"); OpenAI's unix seconds. */
static int64_t
bucket_start(const cJSON *b, enum admin_kind kind)
{
	const cJSON *v;
	int y, mo, d;

	if (kind == ADMIN_OPENAI) {
		v = cJSON_GetObjectItemCaseSensitive(b, "start_time");
		return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : -1;
	}
	if (jstr(b, "starting_at") == NULL || sscanf(jstr(b, "starting_at"), "%4d-%2d-%2d", &y, &mo, &d) != 3 ||
	    mo < 1 || mo > 12 || d < 1 || d > 31)
		return -1;
	/* Days from the civil date (Howard Hinnant's algorithm). */
	y -= mo <= 2;
	{
		int64_t era = (y >= 0 ? y : y - 399) / 400;
		int64_t yoe = y - era * 400;
		int64_t doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
		int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

		return (era * 146097 + doe - 719468) * 86400;
	}
}

enum ak_err
admin_usage(struct admin *a, const char *id, int64_t start, size_t ndays, struct admin_day *days,
    char *detail, size_t detaillen)
{
	char path[ADMIN_URL_MAX], page_tok[512] = "";
	const cJSON *data, *b, *res, *it, *cc, *more;
	const char *np, *kid;
	cJSON *j = NULL;
	unsigned page;
	int64_t t, day;
	enum ak_err r;

	memset(days, 0, ndays * sizeof(*days));
	for (page = 0; page < ADMIN_PAGES_MAX; page++) {
		if (a->kind == ADMIN_ANTHROPIC) {
			char when[32];
			time_t ts = (time_t)start;
			struct tm tm;

			gmtime_r(&ts, &tm);
			strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
			snprintf(path, sizeof(path), "/v1/organizations/usage_report/messages?starting_at=%s"
			    "&bucket_width=1d&group_by[]=api_key_id&limit=31%s%s", when,
			    page_tok[0] ? "&page=" : "", page_tok);
		} else {
			snprintf(path, sizeof(path), "/organization/usage/completions?start_time=%lld"
			    "&bucket_width=1d&group_by=api_key_id&limit=31%s%s", (long long)start,
			    page_tok[0] ? "&page=" : "", page_tok);
		}
		if ((r = request(a, "GET", path, NULL, &j, detail, detaillen)) != AK_OK)
			return r;
		data = cJSON_GetObjectItemCaseSensitive(j, "data");
		if (!cJSON_IsArray(data)) {
			r = cloud_err(AK_ERR_BAD_MESSAGE, detail, detaillen, "the usage report has no data "
			    "array");
			goto out;
		}
		cJSON_ArrayForEach(b, data) {
			if ((t = bucket_start(b, a->kind)) < start)
				continue;
			day = (t - start) / 86400;
			if (day < 0 || (size_t)day >= ndays)
				continue;
			res = cJSON_GetObjectItemCaseSensitive(b, "results");
			cJSON_ArrayForEach(it, res) {
				kid = jstr(it, "api_key_id");
				if (kid == NULL || strcmp(kid, id) != 0)
					continue;
				days[day].seen = 1;
				days[day].output += num(it, "output_tokens");
				if (a->kind == ADMIN_ANTHROPIC) {
					days[day].input += num(it, "uncached_input_tokens");
					days[day].cache += num(it, "cache_read_input_tokens");
					cc = cJSON_GetObjectItemCaseSensitive(it, "cache_creation");
					days[day].cache += num(cc, "ephemeral_5m_input_tokens") +
					    num(cc, "ephemeral_1h_input_tokens");
				} else {
					/* OpenAI's input_tokens include the cached ones. */
					uint64_t in = num(it, "input_tokens"), ca = num(it, "input_cached_tokens");

					days[day].input += in > ca ? in - ca : 0;
					days[day].cache += ca;
				}
			}
		}
		more = cJSON_GetObjectItemCaseSensitive(j, "has_more");
		np = jstr(j, "next_page");
		if (!cJSON_IsTrue(more))
			break;
		/* The cursor goes into the query: only characters that need no encoding there. */
		if (np == NULL || np[0] == '\0' || strlen(np) >= sizeof(page_tok) || strcmp(np, page_tok) == 0) {
			r = cloud_err(AK_ERR_BAD_MESSAGE, detail, detaillen, "has_more without a usable next_page");
			goto out;
		}
		page_tok[0] = '\0';
		if (cloud_append_pct(page_tok, sizeof(page_tok), np, strlen(np)) != 0) {
			r = cloud_err(AK_ERR_BAD_MESSAGE, detail, detaillen, "next_page too long");
			goto out;
		}
		cJSON_Delete(j);
		j = NULL;
	}
	r = AK_OK;
out:
	cJSON_Delete(j);
	return r;
}
