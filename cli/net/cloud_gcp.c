/* cloud_gcp.c - gcp-sm://projects/P/secrets/S[/versions/V][#field]: Google Secret Manager.
 *
 * GET {endpoint}/v1/projects/P/secrets/S/versions/V:access (V defaults to "latest"), with a bearer token
 * from `gcloud auth print-access-token`, else from the metadata server (GCE_METADATA_HOST, else
 * metadata.google.internal). The payload is base64; its dataCrc32c (CRC32C as a decimal string) is
 * checked so a corrupted value is never stored. AKCTL_GCP_SM_ENDPOINT replaces
 * https://secretmanager.googleapis.com (tests, private endpoints).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ak_smem.h"
#include "cloud.h"

#define WHO "Google Secret Manager"
#define GCP_DEFAULT "https://secretmanager.googleapis.com"
#define GCP_METADATA "metadata.google.internal"
#define GCLOUD_TIMEOUT_MS 30000

static int
span_ok(const char *s, size_t n, size_t max, const char *extra)
{
	size_t i;

	if (n == 0 || n > max)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= '0' && s[i] <= '9') || strchr(extra, s[i]) != NULL))
			return 0;
	return 1;
}

/* Token from the metadata server. The host comes from the environment, so it is checked like one. */
static enum ak_err
metadata_token(const struct cloud_opts *o, char **tok, char *detail, size_t detaillen)
{
	static const char *const headers[] = { "Metadata-Flavor: Google", NULL };
	const char *host = cloud_env("GCE_METADATA_HOST");
	struct net_request rq;
	struct net_response resp;
	char url[CLOUD_URL_MAX];
	cJSON *j = NULL, *t;
	enum ak_err r;

	*tok = NULL;
	if (host == NULL)
		host = GCP_METADATA;
	if (!span_ok(host, strlen(host), 255, ".-:[]"))
		return cloud_err(AK_ERR_INVALID, detail, detaillen, "GCE_METADATA_HOST is not a host[:port]");
	snprintf(url, sizeof(url), "http://%s/computeMetadata/v1/instance/service-accounts/default/token",
	    host);
	memset(&rq, 0, sizeof(rq));
	rq.method = "GET";
	rq.url = url;
	rq.headers = headers;
	/* The metadata server is on the link, never behind a proxy: no proxy may see its token. */
	rq.no_proxy = 1;
	/* Off Google Cloud this host does not resolve: give up quickly. */
	rq.connect_timeout_ms = 2000;
	rq.timeout_ms = cloud_timeout(o) < 5000 ? cloud_timeout(o) : 5000;
	if ((r = cloud_http("metadata server", &rq, &resp, detail, detaillen)) != AK_OK)
		goto out;
	if (resp.status != 200) {
		r = cloud_err(AK_ERR_AUTH, detail, detaillen, "metadata server: HTTP %ld", resp.status);
		goto out;
	}
	j = cloud_parse(&resp);
	t = cJSON_GetObjectItemCaseSensitive(j, "access_token");
	if (!cJSON_IsString(t) || !cloud_token_ok(t->valuestring, strlen(t->valuestring))) {
		r = cloud_err(AK_ERR_AUTH, detail, detaillen, "metadata server: no usable access_token");
		goto out;
	}
	if ((*tok = ak_smem_strdup(t->valuestring)) == NULL) {
		r = cloud_err(AK_ERR_NOMEM, detail, detaillen, "out of memory");
		goto out;
	}
	r = AK_OK;
out:
	cJSON_Delete(j); /* wipes the token's copy */
	net_response_clear(&resp);
	return r;
}

static enum ak_err
gcp_token(const struct cloud_opts *o, char **tok, char *detail, size_t detaillen)
{
	static char *const gcloud[] = { "gcloud", "auth", "print-access-token", NULL };
	char d1[200], d2[300];
	enum ak_err r;

	d1[0] = d2[0] = '\0';
	if ((r = cloud_run_token(gcloud, GCLOUD_TIMEOUT_MS, tok, d1, sizeof(d1))) == AK_OK)
		return AK_OK;
	if ((r = metadata_token(o, tok, d2, sizeof(d2))) == AK_OK)
		return AK_OK;
	return cloud_err(AK_ERR_AUTH, detail, detaillen, "%s: no access token (%s; %s)", WHO, d1, d2);
}

enum ak_err
cloud_gcp_fetch(const char *rest, const char *field, const struct cloud_opts *o, char **value,
    size_t *value_len, char *detail, size_t detaillen)
{
	const char *seg[6], *ep;
	size_t len[6], nseg, datalen = 0;
	int more;
	char url[CLOUD_URL_MAX], crcbuf[32];
	char *tok = NULL, *data = NULL, *end;
	cJSON *j = NULL, *pl, *d, *crc;
	unsigned long long want;
	enum ak_err r;

	nseg = cloud_split(rest, seg, len, 6, &more);
	if ((nseg != 4 && nseg != 6) || more ||
	    len[0] != 8 || strncmp(seg[0], "projects", 8) != 0 ||
	    len[2] != 7 || strncmp(seg[2], "secrets", 7) != 0 ||
	    (nseg == 6 && (len[4] != 8 || strncmp(seg[4], "versions", 8) != 0)))
		return cloud_err(AK_ERR_INVALID, detail, detaillen,
		    "%s: expected gcp-sm://projects/PROJECT/secrets/SECRET[/versions/VERSION]", WHO);
	/* Project ids (and domain-scoped "example.com:proj"), secret ids, versions or aliases: nothing
	 * that could add a path segment or a query. */
	if (!span_ok(seg[1], len[1], 100, ".:-") || !span_ok(seg[3], len[3], 255, "_-") ||
	    (nseg == 6 && !span_ok(seg[5], len[5], 63, "_-")))
		return cloud_err(AK_ERR_INVALID, detail, detaillen,
		    "%s: bad project, secret or version name", WHO);
	if ((ep = cloud_env("AKCTL_GCP_SM_ENDPOINT")) != NULL) {
		if (cloud_base_url(ep, url, sizeof(url)) != 0)
			return cloud_err(AK_ERR_INVALID, detail, detaillen,
			    "%s: AKCTL_GCP_SM_ENDPOINT is not an https URL (plain http only to this machine)", WHO);
	} else {
		snprintf(url, sizeof(url), "%s", GCP_DEFAULT);
	}
	if ((size_t)snprintf(url + strlen(url), sizeof(url) - strlen(url),
	    "/v1/projects/%.*s/secrets/%.*s/versions/%.*s:access", (int)len[1], seg[1], (int)len[3], seg[3],
	    nseg == 6 ? (int)len[5] : 6, nseg == 6 ? seg[5] : "latest") >= sizeof(url) - strlen(url))
		return cloud_err(AK_ERR_INVALID, detail, detaillen, "%s: URI too long", WHO);

	if ((r = gcp_token(o, &tok, detail, detaillen)) != AK_OK)
		goto out;
	if ((r = cloud_get_json(WHO, url, "Authorization: Bearer ", tok, NULL, NULL, o, &j, detail,
	    detaillen)) != AK_OK)
		goto out;
	pl = cJSON_GetObjectItemCaseSensitive(j, "payload");
	d = cJSON_GetObjectItemCaseSensitive(pl, "data");
	if (!cJSON_IsString(d)) {
		r = cloud_err(AK_ERR_BAD_MESSAGE, detail, detaillen, "%s: the response has no payload.data%s",
		    WHO, j == NULL ? " (not JSON)" : "");
		goto out;
	}
	if (cloud_b64_decode(d->valuestring, &data, &datalen) != 0) {
		r = cloud_err(AK_ERR_BAD_MESSAGE, detail, detaillen, "%s: bad base64 in payload.data", WHO);
		goto out;
	}
	/* int64 fields are strings in Google's JSON; accept a number too. Absent: nothing to check
	 * (versions created before checksums existed). */
	crc = cJSON_GetObjectItemCaseSensitive(pl, "dataCrc32c");
	if (crc != NULL) {
		if (cJSON_IsString(crc))
			snprintf(crcbuf, sizeof(crcbuf), "%s", crc->valuestring);
		else if (cJSON_IsNumber(crc) && crc->valuedouble >= 0 && crc->valuedouble < 4294967296.0)
			snprintf(crcbuf, sizeof(crcbuf), "%.0f", crc->valuedouble);
		else
			crcbuf[0] = '\0';
		errno = 0;
		want = strtoull(crcbuf, &end, 10);
		if (crcbuf[0] < '0' || crcbuf[0] > '9' || *end != '\0' || errno != 0 || want > 0xFFFFFFFFull) {
			r = cloud_err(AK_ERR_BAD_MESSAGE, detail, detaillen, "%s: bad payload.dataCrc32c", WHO);
			goto out;
		}
		if ((uint32_t)want != cloud_crc32c(data, datalen)) {
			r = cloud_err(AK_ERR_BAD_MESSAGE, detail, detaillen,
			    "%s: CRC32C mismatch: the payload was corrupted in transit", WHO);
			goto out;
		}
	}
	r = cloud_take_value(WHO, data, datalen, field, value, value_len, detail, detaillen);
out:
	cJSON_Delete(j);
	ak_smem_free(data);
	ak_smem_free(tok);
	return r;
}
