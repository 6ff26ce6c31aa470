/* cloud_vault.c - vault://MOUNT/PATH[#field]: HashiCorp Vault / OpenBao KV version 2.
 *
 * GET $VAULT_ADDR/v1/MOUNT/data/PATH with X-Vault-Token ($VAULT_TOKEN, else ~/.vault-token, as the vault
 * CLI does) and X-Vault-Namespace when VAULT_NAMESPACE is set. The secret is data.data[field]; the field
 * may be left out only when data.data holds exactly one key. MOUNT is the first path segment (a mount
 * with a '/' in its path cannot be named). Each segment is percent-encoded; empty, "." and ".." segments
 * are refused so nothing can climb out of the mount.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ak_file.h"
#include "ak_path.h"
#include "ak_smem.h"
#include "ak_store.h"
#include "cloud.h"

#define WHO "Vault"
#define VAULT_DEFAULT "https://127.0.0.1:8200"
#define VAULT_TOKEN_MAX 65536 /* ~/.vault-token */

static enum ak_err
vault_token(char **tok, char *detail, size_t detaillen)
{
	const char *env = cloud_env("VAULT_TOKEN"), *home;
	char path[AK_PATH_MAX];
	size_t len = 0;
	enum ak_err r;

	*tok = NULL;
	if (env != NULL) {
		if ((*tok = ak_smem_strdup(env)) == NULL)
			return cloud_err(AK_ERR_NOMEM, detail, detaillen, "%s: out of memory", WHO);
	} else {
		if ((home = cloud_env("HOME")) == NULL ||
		    (size_t)snprintf(path, sizeof(path), "%s/.vault-token", home) >= sizeof(path) ||
		    (r = ak_file_load(path, VAULT_TOKEN_MAX, AK_FILE_SECURE, tok, &len)) == AK_ERR_NOT_FOUND)
			return cloud_err(AK_ERR_AUTH, detail, detaillen,
			    "%s: no token (set VAULT_TOKEN or run 'vault login')", WHO);
		if (r != AK_OK) /* there but unreadable or too large: say so, not "no token" */
			return cloud_err(r, detail, detaillen, "%s: cannot read %s: %s", WHO, path,
			    ak_strerror(r));
		/* Trim in place: the arena block is wiped whole when freed. */
		while (len > 0 && ((*tok)[len - 1] == '\n' || (*tok)[len - 1] == '\r' ||
		    (*tok)[len - 1] == ' '))
			(*tok)[--len] = '\0';
	}
	if (!cloud_token_ok(*tok, strlen(*tok))) {
		ak_smem_free(*tok);
		*tok = NULL;
		return cloud_err(AK_ERR_AUTH, detail, detaillen,
		    "%s: the token is empty or has a space or control character", WHO);
	}
	return AK_OK;
}

/* Append "/" + the percent-encoded segment s[0..n). */
static int
add_segment(char *url, size_t urllen, const char *s, size_t n)
{
	if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
		return -1;
	if (cloud_append(url, urllen, "/") != 0)
		return -1;
	return cloud_append_pct(url, urllen, s, n);
}

enum ak_err
cloud_vault_fetch(const char *rest, const char *field, const struct cloud_opts *o, char **value,
    size_t *value_len, char *detail, size_t detaillen)
{
	const char *addr, *ns, *p, *slash, *extra = NULL;
	char url[CLOUD_URL_MAX], nshdr[512];
	char *tok = NULL;
	cJSON *j = NULL, *d, *item;
	size_t nseg = 0;
	int nkeys;
	enum ak_err r;

	if ((addr = cloud_env("VAULT_ADDR")) == NULL)
		addr = VAULT_DEFAULT;
	if (cloud_base_url(addr, url, sizeof(url)) != 0)
		return cloud_err(AK_ERR_INVALID, detail, detaillen, "%s: VAULT_ADDR is not an https URL (plain http only to this machine)",
		    WHO);
	cloud_append(url, sizeof(url), "/v1");
	for (p = rest;; p = slash + 1) {
		slash = strchr(p, '/');
		if (add_segment(url, sizeof(url), p, slash != NULL ? (size_t)(slash - p) : strlen(p)) != 0)
			return cloud_err(AK_ERR_INVALID, detail, detaillen,
			    "%s: bad path (an empty, '.' or '..' segment, or too long)", WHO);
		/* KV v2 reads go through MOUNT/data/PATH. */
		if (nseg++ == 0 && cloud_append(url, sizeof(url), "/data") != 0)
			return cloud_err(AK_ERR_INVALID, detail, detaillen, "%s: URI too long", WHO);
		if (slash == NULL)
			break;
	}
	if (nseg < 2)
		return cloud_err(AK_ERR_INVALID, detail, detaillen, "%s: expected vault://MOUNT/PATH[#field]",
		    WHO);
	if ((ns = cloud_env("VAULT_NAMESPACE")) != NULL) {
		if (!cloud_token_ok(ns, strlen(ns)) ||
		    (size_t)snprintf(nshdr, sizeof(nshdr), "X-Vault-Namespace: %s", ns) >= sizeof(nshdr))
			return cloud_err(AK_ERR_INVALID, detail, detaillen, "%s: bad VAULT_NAMESPACE", WHO);
		extra = nshdr;
	}

	if ((r = vault_token(&tok, detail, detaillen)) != AK_OK)
		goto out;
	/* KV v2 answers a missing path with 404 and an empty error list. */
	if ((r = cloud_get_json(WHO, url, "X-Vault-Token: ", tok, extra, "secret not found", o, &j, detail,
	    detaillen)) != AK_OK)
		goto out;
	d = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "data"), "data");
	if (!cJSON_IsObject(d)) {
		r = cloud_err(AK_ERR_BAD_MESSAGE, detail, detaillen,
		    "%s: the response has no data.data object%s (is the mount KV version 2?)", WHO,
		    j == NULL ? " (not JSON)" : "");
		goto out;
	}
	/* No '#field': the secret's one field, whatever its name. */
	if (field == NULL) {
		nkeys = 0;
		cJSON_ArrayForEach(item, d) {
			nkeys++;
			field = item->string;
		}
		if (nkeys != 1) {
			r = cloud_err(AK_ERR_BAD_MESSAGE, detail, detaillen,
			    "%s: the secret has %d fields: name one with '#field'", WHO, nkeys);
			goto out;
		}
	}
	r = cloud_take_member(WHO, d, field, value, value_len, detail, detaillen);
out:
	cJSON_Delete(j);
	ak_smem_free(tok);
	return r;
}
