/* cloud_azure.c - azure-kv://VAULT-NAME/SECRET[/VERSION][#field]: Azure Key Vault.
 *
 * GET https://VAULT-NAME.vault.azure.net/secrets/SECRET[/VERSION]?api-version=7.4 with a bearer token
 * from AZURE_ACCESS_TOKEN, else `az account get-access-token --resource https://vault.azure.net
 * --query accessToken -o tsv`. AKCTL_AZURE_KV_ENDPOINT replaces "https://{vault}.vault.azure.net"
 * ({vault} is replaced by the vault name) for tests and sovereign clouds.
 */
#include <stdio.h>
#include <string.h>

#include "ak_smem.h"
#include "cloud.h"

#define WHO "Azure Key Vault"
#define AZ_DEFAULT "https://{vault}.vault.azure.net"
#define AZ_TIMEOUT_MS 30000

static int
alnum_dash(const char *s, size_t n, size_t min, size_t max, int dash)
{
	size_t i;

	if (n < min || n > max)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= '0' && s[i] <= '9') || (dash && s[i] == '-')))
			return 0;
	return 1;
}

static enum ak_err
az_token(char **tok, char *detail, size_t detaillen)
{
	static char *const az[] = { "az", "account", "get-access-token", "--resource",
		"https://vault.azure.net", "--query", "accessToken", "-o", "tsv", NULL };
	const char *env = cloud_env("AZURE_ACCESS_TOKEN");
	char d[200];

	*tok = NULL;
	if (env != NULL) {
		if (!cloud_token_ok(env, strlen(env)))
			return cloud_err(AK_ERR_AUTH, detail, detaillen,
			    "%s: AZURE_ACCESS_TOKEN has a space or control character", WHO);
		if ((*tok = ak_smem_strdup(env)) == NULL)
			return cloud_err(AK_ERR_NOMEM, detail, detaillen, "%s: out of memory", WHO);
		return AK_OK;
	}
	if (cloud_run_token(az, AZ_TIMEOUT_MS, tok, d, sizeof(d)) == AK_OK)
		return AK_OK;
	return cloud_err(AK_ERR_AUTH, detail, detaillen,
	    "%s: no access token (AZURE_ACCESS_TOKEN is not set; %s)", WHO, d);
}

enum ak_err
cloud_azure_fetch(const char *rest, const char *field, const struct cloud_opts *o, char **value,
    size_t *value_len, char *detail, size_t detaillen)
{
	const char *seg[3], *tmpl, *ph;
	size_t len[3], nseg;
	int more;
	char url[CLOUD_URL_MAX], base[CLOUD_URL_MAX];
	char *tok = NULL;
	cJSON *j = NULL, *v;
	enum ak_err r;

	nseg = cloud_split(rest, seg, len, 3, &more);
	if (nseg < 2 || more)
		return cloud_err(AK_ERR_INVALID, detail, detaillen,
		    "%s: expected azure-kv://VAULT-NAME/SECRET[/VERSION]", WHO);
	/* Azure's own rules: vault 3-24 alphanumerics and hyphens, secret 1-127, versions are hex ids. */
	if (!alnum_dash(seg[0], len[0], 3, 24, 1) || !alnum_dash(seg[1], len[1], 1, 127, 1) ||
	    (nseg == 3 && !alnum_dash(seg[2], len[2], 1, 64, 0)))
		return cloud_err(AK_ERR_INVALID, detail, detaillen,
		    "%s: bad vault, secret or version name (letters, digits and '-')", WHO);

	tmpl = cloud_env("AKCTL_AZURE_KV_ENDPOINT");
	if (tmpl == NULL)
		tmpl = AZ_DEFAULT;
	base[0] = '\0';
	if ((ph = strstr(tmpl, "{vault}")) != NULL) {
		if ((size_t)snprintf(base, sizeof(base), "%.*s%.*s%s", (int)(ph - tmpl), tmpl, (int)len[0],
		    seg[0], ph + 7) >= sizeof(base))
			base[0] = '\0';
	} else {
		snprintf(base, sizeof(base), "%s", tmpl);
	}
	if (base[0] == '\0' || cloud_base_url(base, url, sizeof(url)) != 0)
		return cloud_err(AK_ERR_INVALID, detail, detaillen,
		    "%s: AKCTL_AZURE_KV_ENDPOINT is not an https URL (plain http only to this machine)", WHO);
	if ((size_t)snprintf(url + strlen(url), sizeof(url) - strlen(url), "/secrets/%.*s%s%.*s?api-version=7.4",
	    (int)len[1], seg[1], nseg == 3 ? "/" : "", nseg == 3 ? (int)len[2] : 0, nseg == 3 ? seg[2] : "") >=
	    sizeof(url) - strlen(url))
		return cloud_err(AK_ERR_INVALID, detail, detaillen, "%s: URI too long", WHO);

	if ((r = az_token(&tok, detail, detaillen)) != AK_OK)
		goto out;
	if ((r = cloud_get_json(WHO, url, "Authorization: Bearer ", tok, NULL, NULL, o, &j, detail,
	    detaillen)) != AK_OK)
		goto out;
	v = cJSON_GetObjectItemCaseSensitive(j, "value");
	if (!cJSON_IsString(v)) {
		r = cloud_err(AK_ERR_BAD_MESSAGE, detail, detaillen, "%s: the response has no value%s", WHO,
		    j == NULL ? " (not JSON)" : "");
		goto out;
	}
	r = cloud_take_value(WHO, v->valuestring, strlen(v->valuestring), field, value, value_len, detail,
	    detaillen);
out:
	cJSON_Delete(j);
	ak_smem_free(tok);
	return r;
}
