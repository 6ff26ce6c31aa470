/* cloud_aws.c - aws-sm://SECRET-ID[#field]: AWS Secrets Manager GetSecretValue.
 *
 * POST / with X-Amz-Target: secretsmanager.GetSecretValue and a JSON body, signed with SigV4 by libcurl
 * (CURLOPT_AWS_SIGV4 "aws:amz:REGION:secretsmanager"), which for this request matches botocore byte for
 * byte (tests/e2e/25-sigv4.sh). Credentials the way the AWS CLI finds them, minus SSO and process
 * providers: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY[/AWS_SESSION_TOKEN], else the shared credentials
 * file (AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials, section AWS_PROFILE or "default").
 * Region: --region, AWS_REGION, AWS_DEFAULT_REGION, else "region" of the profile in ~/.aws/config.
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

#define WHO "AWS Secrets Manager"
#define AWS_FILE_MAX (1u << 20) /* ~/.aws/credentials and config */

struct aws_creds {
	char *akid;    /* secure */
	char *secret;  /* secure */
	char *token;   /* secure, NULL if none */
};

static void
creds_clear(struct aws_creds *c)
{
	ak_smem_free(c->akid);
	ak_smem_free(c->secret);
	ak_smem_free(c->token);
	memset(c, 0, sizeof(*c));
}

/* Path of an AWS file: env override, else ~/.aws/NAME. */
static int
aws_file(const char *env, const char *name, char *out, size_t outlen)
{
	const char *p = cloud_env(env), *home;

	if (p != NULL)
		return (size_t)snprintf(out, outlen, "%s", p) < outlen ? 0 : -1;
	if ((home = cloud_env("HOME")) == NULL)
		return -1;
	return (size_t)snprintf(out, outlen, "%s/.aws/%s", home, name) < outlen ? 0 : -1;
}

static char *
trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

/* Read the keys of one INI section of an AWS file. keys[i] gets a secure copy of the value of names[i]
 * (left NULL if absent). section is matched as "[section]". The file is read into the arena and wiped:
 * the credentials file holds secrets. *found is 1 if the section exists. Errors are ak_file_load's
 * (AK_ERR_NOT_FOUND for a missing file). */
static enum ak_err
ini_read(const char *path, const char *section, const char *const *names, char **keys, size_t nkeys,
    int *found)
{
	size_t len = 0, i;
	char *doc = NULL, *line, *next, *eq, *k, *v, *s;
	int in = 0;
	enum ak_err r;

	*found = 0;
	if ((r = ak_file_load(path, AWS_FILE_MAX, AK_FILE_SECURE, &doc, &len)) != AK_OK)
		return r;
	for (line = doc; line != NULL; line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		s = trim(line);
		if (*s == '#' || *s == ';' || *s == '\0')
			continue;
		if (*s == '[') {
			char *end = strchr(s, ']');

			if (end == NULL)
				continue;
			*end = '\0';
			in = strcmp(trim(s + 1), section) == 0;
			*found |= in;
			continue;
		}
		if (!in || (eq = strchr(s, '=')) == NULL)
			continue;
		*eq = '\0';
		k = trim(s);
		v = trim(eq + 1);
		for (i = 0; i < nkeys; i++) {
			if (strcmp(k, names[i]) == 0 && keys[i] == NULL)
				keys[i] = ak_smem_strdup(v);
		}
	}
	ak_smem_free(doc); /* wipes the file's secrets */
	return AK_OK;
}

static enum ak_err
aws_creds(struct aws_creds *c, char *detail, size_t detaillen)
{
	static const char *const names[] = { "aws_access_key_id", "aws_secret_access_key",
		"aws_session_token" };
	const char *id = cloud_env("AWS_ACCESS_KEY_ID"), *sec = cloud_env("AWS_SECRET_ACCESS_KEY");
	const char *tok = cloud_env("AWS_SESSION_TOKEN"), *profile;
	char path[AK_PATH_MAX], *keys[3] = { NULL, NULL, NULL };
	int found = 0;
	enum ak_err r;

	memset(c, 0, sizeof(*c));
	if (id != NULL && sec != NULL) {
		c->akid = ak_smem_strdup(id);
		c->secret = ak_smem_strdup(sec);
		c->token = tok != NULL ? ak_smem_strdup(tok) : NULL;
		if (c->akid == NULL || c->secret == NULL || (tok != NULL && c->token == NULL))
			goto nomem;
		goto check;
	}
	if (id != NULL || sec != NULL)
		return cloud_err(AK_ERR_AUTH, detail, detaillen, "%s: %s is set but %s is not", WHO,
		    id != NULL ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
		    id != NULL ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
	if ((profile = cloud_env("AWS_PROFILE")) == NULL)
		profile = "default";
	if (aws_file("AWS_SHARED_CREDENTIALS_FILE", "credentials", path, sizeof(path)) != 0 ||
	    (r = ini_read(path, profile, names, keys, 3, &found)) == AK_ERR_NOT_FOUND)
		return cloud_err(AK_ERR_AUTH, detail, detaillen, "%s: no credentials (set "
		    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or create ~/.aws/credentials)", WHO);
	if (r != AK_OK) /* there but unreadable or too large: say so, not "no credentials" */
		return cloud_err(r, detail, detaillen, "%s: cannot read %s: %s", WHO, path,
		    ak_strerror(r));
	c->akid = keys[0];
	c->secret = keys[1];
	c->token = keys[2];
	if (!found || c->akid == NULL || c->secret == NULL) {
		creds_clear(c);
		return cloud_err(AK_ERR_AUTH, detail, detaillen, "%s: no credentials for profile '%s' in %s",
		    WHO, profile, path);
	}
	if (c->token != NULL && c->token[0] == '\0') {
		ak_smem_free(c->token);
		c->token = NULL;
	}
check:
	/* They end up in an "ID:SECRET" user/password and a header: nothing that could split either. */
	if (!cloud_token_ok(c->akid, strlen(c->akid)) || strchr(c->akid, ':') != NULL ||
	    !cloud_token_ok(c->secret, strlen(c->secret)) ||
	    (c->token != NULL && !cloud_token_ok(c->token, strlen(c->token)))) {
		creds_clear(c);
		return cloud_err(AK_ERR_AUTH, detail, detaillen,
		    "%s: the access key id, secret key or session token has a space or control character",
		    WHO);
	}
	return AK_OK;
nomem:
	creds_clear(c);
	return cloud_err(AK_ERR_NOMEM, detail, detaillen, "%s: out of memory", WHO);
}

static int
region_ok(const char *r)
{
	size_t i, n = strlen(r);

	if (n == 0 || n > 32)
		return 0;
	for (i = 0; i < n; i++)
		if (!((r[i] >= 'a' && r[i] <= 'z') || (r[i] >= '0' && r[i] <= '9') || r[i] == '-'))
			return 0;
	return 1;
}

static enum ak_err
aws_region(const struct cloud_opts *o, char *out, size_t outlen, char *detail, size_t detaillen)
{
	static const char *const names[] = { "region" };
	const char *r = o->region, *profile;
	char path[AK_PATH_MAX], section[256], *keys[1] = { NULL };
	int found = 0;

	if (r == NULL)
		r = cloud_env("AWS_REGION");
	if (r == NULL)
		r = cloud_env("AWS_DEFAULT_REGION");
	if (r == NULL) {
		/* ~/.aws/config names sections "[profile NAME]", except "[default]". */
		if ((profile = cloud_env("AWS_PROFILE")) == NULL)
			profile = "default";
		snprintf(section, sizeof(section), strcmp(profile, "default") == 0 ? "%s" : "profile %s",
		    profile);
		if (aws_file("AWS_CONFIG_FILE", "config", path, sizeof(path)) == 0 &&
		    ini_read(path, section, names, keys, 1, &found) == AK_OK && found && keys[0] != NULL) {
			snprintf(out, outlen, "%s", keys[0]);
			r = out;
		}
		ak_smem_free(keys[0]);
	}
	if (r == NULL)
		return cloud_err(AK_ERR_INVALID, detail, detaillen,
		    "%s: no region (set AWS_REGION or use --region)", WHO);
	if (!region_ok(r))
		return cloud_err(AK_ERR_INVALID, detail, detaillen, "%s: bad region '%.40s'", WHO, r);
	if (r != out)
		snprintf(out, outlen, "%s", r);
	return AK_OK;
}

/* Secret ids are names ([A-Za-z0-9/_+=.@-]) or ARNs (adding ':'); AWS allows nothing else. They go
 * only into the JSON body (escaped by cJSON), but a strict check gives a clear error early. */
static int
secret_id_ok(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > 2048)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= '0' && s[i] <= '9') || strchr("/_+=.@-:", s[i]) != NULL))
			return 0;
	return 1;
}

/* Exceptions that mean "your credentials": shown as authentication failures (exit 6). */
static int
is_auth_type(const char *msg)
{
	static const char *const types[] = { "AccessDenied", "UnrecognizedClient", "InvalidSignature",
		"IncompleteSignature", "ExpiredToken", "InvalidClientTokenId", "SignatureDoesNotMatch",
		"MissingAuthenticationToken", "NotAuthorized" };
	size_t i;

	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strncmp(msg, types[i], strlen(types[i])) == 0)
			return 1;
	return 0;
}

enum ak_err
cloud_aws_fetch(const char *rest, const char *field, const struct cloud_opts *o, char **value,
    size_t *value_len, char *detail, size_t detaillen)
{
	struct aws_creds cr;
	struct net_request rq;
	struct net_response resp;
	char region[64], url[CLOUD_URL_MAX], sigv4[128], msg[300];
	const char *ep, *secrets[4];
	const char *headers[5];
	char *userpwd = NULL, *tokhdr = NULL, *body = NULL, *bin = NULL;
	cJSON *req = NULL, *j = NULL, *ss, *sb;
	size_t binlen = 0, a, b, nh = 0;
	enum ak_err r;

	memset(&cr, 0, sizeof(cr));
	memset(&resp, 0, sizeof(resp));
	if (!secret_id_ok(rest))
		return cloud_err(AK_ERR_INVALID, detail, detaillen, "%s: bad secret id (allowed: "
		    "A-Z a-z 0-9 / _ + = . @ - and ':' for ARNs)", WHO);
	if ((r = aws_region(o, region, sizeof(region), detail, detaillen)) != AK_OK)
		return r;
	if ((ep = cloud_env("AWS_ENDPOINT_URL_SECRETS_MANAGER")) == NULL)
		ep = cloud_env("AWS_ENDPOINT_URL");
	if (ep != NULL) {
		if (cloud_base_url(ep, url, sizeof(url) - 1) != 0)
			return cloud_err(AK_ERR_INVALID, detail, detaillen,
			    "%s: the endpoint URL from the environment is not an https URL (plain http only to this machine)", WHO);
		cloud_append(url, sizeof(url), "/");
	} else {
		snprintf(url, sizeof(url), "https://secretsmanager.%s.amazonaws.com/", region);
	}
	if ((r = aws_creds(&cr, detail, detaillen)) != AK_OK)
		return r;

	/* Everything that may hold a credential lives in the arena and is wiped at out. */
	a = strlen(cr.akid);
	b = strlen(cr.secret);
	if ((userpwd = ak_smem_alloc(a + b + 2)) == NULL) {
		r = cloud_err(AK_ERR_NOMEM, detail, detaillen, "%s: out of memory", WHO);
		goto out;
	}
	memcpy(userpwd, cr.akid, a);
	userpwd[a] = ':';
	memcpy(userpwd + a + 1, cr.secret, b + 1);
	if (cr.token != NULL && (tokhdr = cloud_header("X-Amz-Security-Token: ", cr.token)) == NULL) {
		r = cloud_err(AK_ERR_NOMEM, detail, detaillen, "%s: out of memory", WHO);
		goto out;
	}
	if ((req = cJSON_CreateObject()) == NULL || cJSON_AddStringToObject(req, "SecretId", rest) == NULL ||
	    (body = cJSON_PrintUnformatted(req)) == NULL) {
		r = cloud_err(AK_ERR_NOMEM, detail, detaillen, "%s: out of memory", WHO);
		goto out;
	}
	snprintf(sigv4, sizeof(sigv4), "aws:amz:%s:secretsmanager", region);
	headers[nh++] = "X-Amz-Target: secretsmanager.GetSecretValue";
	headers[nh++] = "Content-Type: application/x-amz-json-1.1";
	if (tokhdr != NULL)
		headers[nh++] = tokhdr;
	headers[nh] = NULL;

	memset(&rq, 0, sizeof(rq));
	rq.method = "POST";
	rq.url = url;
	rq.headers = headers;
	rq.body = body;
	rq.body_len = strlen(body);
	rq.secret = cr.secret;
	rq.aws_sigv4 = sigv4;
	rq.aws_userpwd = userpwd;
	if ((r = cloud_send(WHO, &rq, o, &resp, detail, detaillen)) != AK_OK)
		goto out;

	secrets[0] = cr.secret;
	secrets[1] = cr.token;
	secrets[2] = cr.akid; /* not secret, but nobody needs it echoed either */
	secrets[3] = NULL;
	if (resp.status != 200) {
		cloud_json_error(resp.body, msg, sizeof(msg), secrets, 3);
		if (strncmp(msg, "ResourceNotFoundException", 25) == 0)
			r = AK_ERR_NO_PROFILE;
		else if (is_auth_type(msg))
			r = AK_ERR_AUTH;
		else
			r = cloud_status_class(resp.status);
		cloud_err(r, detail, detaillen, "%s: HTTP %ld%s%s", WHO, resp.status, msg[0] ? ": " : "",
		    msg);
		goto out;
	}
	j = cloud_parse(&resp);
	ss = cJSON_GetObjectItemCaseSensitive(j, "SecretString");
	sb = cJSON_GetObjectItemCaseSensitive(j, "SecretBinary");
	if (cJSON_IsString(ss)) {
		r = cloud_take_value(WHO, ss->valuestring, strlen(ss->valuestring), field, value, value_len,
		    detail, detaillen);
	} else if (cJSON_IsString(sb)) {
		/* A binary secret is usable only if it is text. */
		if (cloud_b64_decode(sb->valuestring, &bin, &binlen) != 0) {
			r = cloud_err(AK_ERR_BAD_MESSAGE, detail, detaillen, "%s: bad base64 in SecretBinary",
			    WHO);
			goto out;
		}
		r = cloud_take_value(WHO, bin, binlen, field, value, value_len, detail, detaillen);
	} else {
		r = cloud_err(AK_ERR_BAD_MESSAGE, detail, detaillen, "%s: the response has no SecretString"
		    "%s", WHO, j == NULL ? " (not JSON)" : "");
	}
out:
	cJSON_Delete(j);
	cJSON_Delete(req);
	cJSON_free(body); /* through the arena hooks: wiped */
	ak_smem_free(bin);
	ak_smem_free(userpwd);
	ak_smem_free(tokhdr);
	net_response_clear(&resp);
	creds_clear(&cr);
	sodium_memzero(msg, sizeof(msg));
	return r;
}
