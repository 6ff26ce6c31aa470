/* cmd_test.c - akctl test PROFILE... | --all: is each key accepted by its provider? (akctl-net only)
 *
 * For each profile: the offline format check first (ak_provider_check_key; a key that cannot be right or
 * cannot travel in a header is never sent), then one cheap authenticated request per key, all at once
 * (curl multi) within one overall timeout. One line per profile, in the order asked (--all: by name).
 *
 * Exit codes (docs/providers.md): 0 all valid, 10 rejected (401), 11 valid but not permitted (402/403),
 * 12 rate limited (429, after honouring retry-after once), 13 provider overloaded or failing (529/5xx),
 * 14 network/DNS/TLS failure, 15 timeout, 16 key format problem (not sent), 17 unexpected response
 * (redirect, 404, body not JSON or over 1 MiB). With several profiles: the first failing line's code.
 * Plus akctl's usual 1-5 (usage, agent, no such profile).
 *
 * The key appears only in one header line, built in the secure arena and wiped after the transfer;
 * every string shown (error type, request id, curl's error) is scrubbed of it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "ak_provider.h"
#include "ak_render.h"
#include "ak_smem.h"
#include "ak_util.h"
#include "cli.h"
#include "net.h"

#define TEST_DEFAULT_TIMEOUT_S 15
#define TEST_URL_MAX 2048

enum {
	EXIT_VALID = 0,
	EXIT_REJECTED = 10,
	EXIT_FORBIDDEN = 11,
	EXIT_RATE_LIMITED = 12,
	EXIT_PROVIDER_FAILING = 13,
	EXIT_NETWORK = 14,
	EXIT_TIMEOUT = 15,
	EXIT_FORMAT = 16,
	EXIT_UNEXPECTED = 17,
};

struct check {
	const struct ak_profile *p;    /* secure: own, or the caller's */
	struct ak_profile *own;        /* p when this check owns it (freed, wiped, with the check) */
	const struct ak_provider *pv;
	int live;                      /* a request goes out */
	int skipped;                   /* --all: no check known for this provider; not a failure */
	int code;                      /* exit code of this line */
	long http;                     /* the response's HTTP status, 0 if none came */
	char line[512];                /* the result, without the "NAME: " prefix */
	char warn[256];                /* a non-fatal format issue, shown on stderr */
	char url[TEST_URL_MAX];
	char host[300];                /* where the key goes, when not the provider's default; else "" */
	char *auth;                    /* secure: "Header: value-with-key"; wiped with ak_smem_free */
	const char *headers[3];
};

static const char *
var_value(const struct ak_profile *p, const char *name)
{
	size_t i;

	for (i = 0; i < p->nvars; i++)
		if (strcmp(p->vars[i].name, name) == 0)
			return p->vars[i].value;
	return NULL;
}

/* NULL if url may carry a key, else why not. */
static const char *
url_problem(const char *url)
{
	if (strncasecmp(url, "https://", 8) == 0)
		return url[8] == '\0' || url[8] == '/' ? "no host in the URL" : NULL;
	if (strncasecmp(url, "http://", 7) == 0)
		return net_is_loopback_http(url) ? NULL :
		    "refusing to send a key over plain http to a non-loopback host (use https)";
	return "the URL must start with https://";
}

/* "host[:port]" of url into out ("?" if it does not parse); origin: "scheme://host:port", the port
 * always given (https://api.anthropic.com and https://api.anthropic.com:443 are one place). */
static void
url_where(const char *url, int origin, char *out, size_t outlen)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL;
	unsigned flags = origin ? CURLU_DEFAULT_PORT : 0;

	snprintf(out, outlen, "?");
	if (u == NULL)
		return;
	if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
		if (curl_url_get(u, CURLUPART_PORT, &port, flags) != CURLUE_OK)
			port = NULL;
		snprintf(out, outlen, "%s%s%s%s%s", origin ? scheme : "", origin ? "://" : "", host,
		    port != NULL ? ":" : "", port != NULL ? port : "");
	}
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
}

/* Do a and b name the same scheme, host and port? */
static int
same_origin(const char *a, const char *b)
{
	char oa[320], ob[320];

	url_where(a, 1, oa, sizeof(oa));
	url_where(b, 1, ob, sizeof(ob));
	return strcmp(oa, "?") != 0 && strcasecmp(oa, ob) == 0;
}

static int
header_name_ok(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
		    *s == '-' || *s == '_'))
			return 0;
	return 1;
}

#define RESULT(ck, c, ...) do { (ck)->code = (c); snprintf((ck)->line, sizeof((ck)->line), __VA_ARGS__); } \
	while (0)

/* Offline part: decide whether ck goes live, and build its URL and headers. */
static void
prepare(struct check *ck, const char *base_opt, int all)
{
	const struct ak_profile *p = ck->p;
	const char *base, *hname, *tmpl, *why, *k;
	char fmt[256];
	size_t blen, klen, need, i;
	enum ak_key_issue issue;
	char *w;

	ck->pv = ak_provider_find(p->provider);
	if (ck->pv == NULL) {
		ck->skipped = all;
		RESULT(ck, 1, "not checked: no live check for provider '%s'", p->provider);
		return;
	}
	issue = ak_provider_check_key(ck->pv, p->secret, fmt, sizeof(fmt));
	if (issue != AK_KEY_OK && ak_key_issue_fatal(issue)) {
		RESULT(ck, EXIT_FORMAT, "key format: %s (not checked live)", fmt);
		return;
	}
	if (issue != AK_KEY_OK)
		snprintf(ck->warn, sizeof(ck->warn), "%s", fmt);

	if (ck->pv->check_path == NULL) {
		/* generic: everything from the profile's plain variables */
		if ((base = var_value(p, AK_CHECK_URL_VAR)) == NULL || base[0] == '\0') {
			RESULT(ck, 1, "not checked: provider generic needs --set %s=URL", AK_CHECK_URL_VAR);
			return;
		}
		if ((size_t)snprintf(ck->url, sizeof(ck->url), "%s", base) >= sizeof(ck->url)) {
			RESULT(ck, 1, "not checked: %s is too long", AK_CHECK_URL_VAR);
			return;
		}
		hname = var_value(p, AK_CHECK_HEADER_VAR);
		tmpl = var_value(p, AK_CHECK_TEMPLATE_VAR);
		if (hname == NULL || hname[0] == '\0')
			hname = "Authorization";
		if (tmpl == NULL || tmpl[0] == '\0')
			tmpl = "Bearer {key}";
	} else {
		/* --base-url, else this profile's own base URL variable, else the provider's default.
		 * Never our environment: a variable another profile exported would steer every key. */
		base = base_opt;
		if (base == NULL && ck->pv->base_url_env != NULL)
			base = var_value(p, ck->pv->base_url_env);
		if (base == NULL || base[0] == '\0')
			base = ck->pv->default_base;
		blen = strlen(base);
		while (blen > 0 && base[blen - 1] == '/')
			blen--;
		if ((size_t)snprintf(ck->url, sizeof(ck->url), "%.*s%s", (int)blen, base, ck->pv->check_path) >=
		    sizeof(ck->url)) {
			RESULT(ck, 2, "not checked: base URL too long");
			return;
		}
		hname = ck->pv->auth_header;
		tmpl = NULL;
	}
	if ((why = url_problem(ck->url)) != NULL) {
		RESULT(ck, 2, "not checked: %s", why);
		return;
	}
	if (ck->pv->default_base == NULL || !same_origin(ck->url, ck->pv->default_base))
		url_where(ck->url, 0, ck->host, sizeof(ck->host));
	if (strstr(ck->url, p->secret) != NULL) {
		RESULT(ck, 2, "not checked: the URL contains the key (it may only go in a header)");
		return;
	}
	if (!header_name_ok(hname)) {
		RESULT(ck, 2, "not checked: %s is not a header name", AK_CHECK_HEADER_VAR);
		return;
	}
	if (tmpl != NULL && (strstr(tmpl, "{key}") == NULL || strpbrk(tmpl, "\r\n") != NULL)) {
		RESULT(ck, 2, "not checked: %s must contain {key} and no line break", AK_CHECK_TEMPLATE_VAR);
		return;
	}

	/* "Name: value" with the key in the secure arena. */
	klen = strlen(p->secret);
	need = strlen(hname) + 2 + strlen(ck->pv->auth_prefix) + klen + 1;
	if (tmpl != NULL)
		for (i = 0, need += strlen(tmpl); tmpl[i] != '\0'; i++)
			if (strncmp(tmpl + i, "{key}", 5) == 0)
				need += klen;
	if ((ck->auth = w = ak_smem_alloc(need)) == NULL) {
		RESULT(ck, 1, "not checked: out of memory");
		return;
	}
	w += sprintf(w, "%s: ", hname);
	if (tmpl == NULL) {
		w += sprintf(w, "%s", ck->pv->auth_prefix);
		memcpy(w, p->secret, klen + 1);
	} else {
		for (k = tmpl; *k != '\0';) {
			if (strncmp(k, "{key}", 5) == 0) {
				memcpy(w, p->secret, klen);
				w += klen;
				k += 5;
			} else {
				*w++ = *k++;
			}
		}
		*w = '\0';
	}
	ck->headers[0] = ck->auth;
	ck->headers[1] = ck->pv->extra_header;
	ck->headers[2] = NULL;
	ck->live = 1;
}

/* A token from the provider's JSON for display: [A-Za-z0-9_.:-] only, never the key. */
static void
json_token(char *out, size_t outlen, const cJSON *j, const char *secret)
{
	size_t i, o = 0;
	const char *s = cJSON_IsString(j) ? j->valuestring : NULL;

	out[0] = '\0';
	if (s == NULL || (secret[0] != '\0' && strstr(s, secret) != NULL))
		return;
	for (i = 0; s[i] != '\0' && o + 1 < outlen; i++)
		if ((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
		    s[i] == '_' || s[i] == '-' || s[i] == '.' || s[i] == ':')
			out[o++] = s[i];
	out[o] = '\0';
}

/* Turn a response into the line and exit code. */
static void
judge(struct check *ck, const struct net_response *resp)
{
	cJSON *j = NULL;
	const cJSON *err;
	char type[80] = "", code[80] = "", rid[140] = "", extra[200] = "", what[200];
	const char *verdict;
	long st = resp->status;
	int rc;

	ck->http = resp->fail == NET_OK ? st : 0;

	switch (resp->fail) {
	case NET_OK:
		break;
	case NET_TIMEOUT:
		RESULT(ck, EXIT_TIMEOUT, "timeout: %s", resp->error);
		return;
	case NET_DNS:
		RESULT(ck, EXIT_NETWORK, "network failure (DNS): %s", resp->error);
		return;
	case NET_TLS:
		RESULT(ck, EXIT_NETWORK, "network failure (TLS): %s", resp->error);
		return;
	case NET_CONNECT:
	case NET_OTHER:
		RESULT(ck, EXIT_NETWORK, "network failure: %s", resp->error);
		return;
	case NET_PROTOCOL:
		RESULT(ck, EXIT_UNEXPECTED, "unexpected response: %s", resp->error);
		return;
	}

	if (resp->body != NULL && resp->body_len > 0)
		j = cJSON_ParseWithLength(resp->body, resp->body_len);
	if (cJSON_IsObject(j)) {
		err = cJSON_GetObjectItemCaseSensitive(j, "error");
		if (cJSON_IsObject(err)) {
			json_token(type, sizeof(type), cJSON_GetObjectItemCaseSensitive(err, "type"), ck->p->secret);
			/* OpenAI: {"error":{"type":"invalid_request_error","code":"invalid_api_key"}} */
			json_token(code, sizeof(code), cJSON_GetObjectItemCaseSensitive(err, "code"), ck->p->secret);
		}
		if (resp->request_id[0] == '\0')
			json_token(rid, sizeof(rid), cJSON_GetObjectItemCaseSensitive(j, "request_id"),
			    ck->p->secret);
	}
	if (resp->request_id[0] != '\0')
		snprintf(rid, sizeof(rid), "%s", resp->request_id);
	/* A hostile or broken server may echo the key anywhere. */
	if (ck->p->secret[0] != '\0' && strstr(rid, ck->p->secret) != NULL)
		snprintf(rid, sizeof(rid), "[redacted]");
	if (code[0] != '\0' && type[0] != '\0')
		snprintf(what, sizeof(what), ": %s/%s", type, code);
	else if (type[0] != '\0' || code[0] != '\0')
		snprintf(what, sizeof(what), ": %s%s", type, code);
	else
		what[0] = '\0';
	if (st == 429 && resp->retry_after >= 0)
		snprintf(extra, sizeof(extra), ", retry-after %ld s", resp->retry_after);
	if (rid[0] != '\0')
		snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra), ", request-id %s", rid);

	if (st >= 200 && st < 300) {
		if (ck->pv->check_path != NULL && !cJSON_IsObject(j)) {
			RESULT(ck, EXIT_UNEXPECTED, "unexpected response: body is not JSON (%ld%s)", st, extra);
		} else {
			RESULT(ck, EXIT_VALID, "valid (%s, %ld%s%s)", ck->pv->name, st, extra,
			    resp->retried ? ", after honouring one 429 retry-after" : "");
		}
		goto out;
	}
	if (st == 401) {
		verdict = "rejected";
		rc = EXIT_REJECTED;
	} else if (st == 402 || st == 403) {
		verdict = "valid but not permitted";
		rc = EXIT_FORBIDDEN;
	} else if (st == 429) {
		verdict = resp->retried ? "rate limited (after one retry)" : "rate limited";
		rc = EXIT_RATE_LIMITED;
	} else if (st >= 500) {
		verdict = st == 529 ? "provider overloaded" : "provider failing";
		rc = EXIT_PROVIDER_FAILING;
	} else if (st >= 300 && st < 400) {
		verdict = "unexpected response: redirect not followed";
		rc = EXIT_UNEXPECTED;
	} else {
		verdict = "unexpected response";
		rc = EXIT_UNEXPECTED;
	}
	RESULT(ck, rc, "%s%s (%ld%s)", verdict, what, st, extra);
out:
	cJSON_Delete(j); /* the arena hook wipes its buffers */
}

/* The one-word result for --json, from a line's exit code. */
static const char *
result_word(const struct check *ck)
{
	switch (ck->code) {
	case EXIT_VALID: return "valid";
	case EXIT_REJECTED: return "rejected";
	case EXIT_FORBIDDEN: return "forbidden";
	case EXIT_RATE_LIMITED: return "rate-limited";
	case EXIT_PROVIDER_FAILING: return "provider-failing";
	case EXIT_NETWORK: return "network";
	case EXIT_TIMEOUT: return "timeout";
	case EXIT_FORMAT: return "format";
	case EXIT_UNEXPECTED: return "unexpected";
	}
	return "not-checked";
}

/* test --json: one object (schema in akctl(1)). Every string was built from non-secret parts and
 * server text scrubbed of the key, as for the lines. */
static enum ak_err
print_json(struct cli *c, const struct check *cks, size_t n, int rc)
{
	cJSON *o = NULL, *arr, *e;
	size_t i;
	int ok = 0;

	if ((o = cJSON_CreateObject()) == NULL || (arr = cJSON_AddArrayToObject(o, "profiles")) == NULL)
		goto out;
	for (i = 0; i < n; i++) {
		if ((e = cJSON_CreateObject()) == NULL || !cJSON_AddItemToArray(arr, e))
			goto out;
		cJSON_AddStringToObject(e, "profile", cks[i].p->name);
		cJSON_AddStringToObject(e, "provider", cks[i].p->provider);
		cJSON_AddStringToObject(e, "result", result_word(&cks[i]));
		cJSON_AddNumberToObject(e, "exit", cks[i].code);
		cJSON_AddBoolToObject(e, "live", cks[i].live);
		cJSON_AddBoolToObject(e, "skipped", cks[i].skipped);
		if (cks[i].http > 0)
			cJSON_AddNumberToObject(e, "http_status", (double)cks[i].http);
		else
			cJSON_AddNullToObject(e, "http_status");
		cJSON_AddStringToObject(e, "message", cks[i].line);
		if (cks[i].live && cks[i].host[0] != '\0')
			cJSON_AddStringToObject(e, "sent_to", cks[i].host);
		else
			cJSON_AddNullToObject(e, "sent_to");
		if (cks[i].warn[0] != '\0')
			cJSON_AddStringToObject(e, "warning", cks[i].warn);
		else
			cJSON_AddNullToObject(e, "warning");
	}
	cJSON_AddNumberToObject(o, "exit", rc);
	if (cli_json_print(o) != AK_OK)
		goto out;
	fflush(stdout);
	ok = 1;
out:
	cJSON_Delete(o);
	return ok ? AK_OK : cli_fail(AK_ERR_NOMEM, NULL, "%s", c->cmd);
}

/* Run every check: offline part, then all live requests at once. Prints one line each to out (each
 * prefixed with prefix; json: one JSON object on stdout instead), warnings to stderr. *verdict gets the
 * first failing line's code (0 when all passed). Returns AK_OK, or an error after reporting it. */
static enum ak_err
run_checks(struct cli *c, struct check *cks, size_t n, long timeout_ms, const char *base_url, int all,
    FILE *out, const char *prefix, int json, int *verdict)
{
	struct net_request *rq = NULL;
	struct net_response *resp = NULL;
	size_t i, nlive = 0, k;
	int rc = 0;
	enum ak_err r = AK_OK;

	*verdict = 0;
	for (i = 0; i < n; i++)
		prepare(&cks[i], base_url, all);
	for (i = 0; i < n; i++)
		nlive += cks[i].live;
	if (nlive > 0) {
		if ((rq = calloc(nlive, sizeof(*rq))) == NULL || (resp = calloc(nlive, sizeof(*resp))) == NULL) {
			r = cli_fail(AK_ERR_NOMEM, NULL, "%s", c->cmd);
			goto out;
		}
		for (i = k = 0; i < n; i++) {
			if (!cks[i].live)
				continue;
			rq[k].method = "GET";
			rq[k].url = cks[i].url;
			rq[k].headers = cks[i].headers;
			rq[k].secret = cks[i].p->secret;
			rq[k].connect_timeout_ms = 5000;
			rq[k].timeout_ms = timeout_ms;
			rq[k].max_body = 1u << 20;
			k++;
		}
		if ((r = net_perform_many(rq, resp, nlive, timeout_ms, NET_RETRY_429)) != AK_OK)
			cli_note("%s: %s", c->cmd, ak_strerror(r)); /* each response says what failed */
		r = AK_OK;
		for (i = k = 0; i < n; i++) {
			if (!cks[i].live)
				continue;
			judge(&cks[i], &resp[k]);
			net_response_clear(&resp[k]);
			k++;
		}
	}
	for (i = 0; i < n; i++) {
		char line[sizeof(cks[i].line)];

		/* Every string here was built from non-secret parts; sanitise anyway (server text). */
		if (cks[i].warn[0] != '\0')
			cli_note("%s: %s: warning: %s", c->cmd, cks[i].p->name, cks[i].warn);
		if (rc == 0 && cks[i].code != 0 && !cks[i].skipped)
			rc = cks[i].code;
		if (json)
			continue;
		cli_sanitize(cks[i].line, line, sizeof(line));
		fprintf(out, "%s%s%s: %s", prefix, cks[i].skipped ? "" : cli_mark(fileno(out), cks[i].code == 0),
		    cks[i].p->name, line);
		/* Name where the key went whenever that is not the provider's own API. */
		if (cks[i].live && cks[i].host[0] != '\0') {
			fputs(" [sent to ", out);
			ak_render_fputs(cks[i].host, out);
			fputc(']', out);
		}
		fputc('\n', out);
	}
	*verdict = rc;
	if (json)
		r = print_json(c, cks, n, rc);
	fflush(out);
out:
	free(rq);
	free(resp);
	return r;
}

static void
checks_free(struct check *cks, size_t n)
{
	size_t i;

	for (i = 0; cks != NULL && i < n; i++) {
		ak_smem_free(cks[i].auth); /* wipes the header line holding the key */
		ak_profile_free(cks[i].own);
	}
	free(cks);
}

/* --key-stdin (akctl add --validate): the key arrives on stdin, exactly, never through argv.
 * *out is a secure profile the caller frees. */
static enum ak_err
profile_from_stdin(struct cli *c, const char *name, const char *provider, const char *url,
    const char *hdr, const char *tmpl, struct ak_profile **out)
{
	struct ak_profile *p = NULL;
	char *key = NULL;
	size_t len = 0;
	ssize_t got;
	enum ak_err rc = AK_OK, r = AK_OK;

	*out = NULL;
	if ((p = ak_profile_new()) == NULL || (key = ak_smem_alloc(AK_VALUE_MAX + 1)) == NULL) {
		r = AK_ERR_NOMEM;
		goto out;
	}
	while (len < AK_VALUE_MAX) {
		got = read(0, key + len, AK_VALUE_MAX - len);
		if (got < 0) {
			r = AK_ERR_IO;
			goto out;
		}
		if (got == 0)
			break;
		len += (size_t)got;
	}
	key[len] = '\0';
	if ((r = ak_profile_set_field(&p->name, name)) != AK_OK ||
	    (r = ak_profile_set_field(&p->provider, provider)) != AK_OK ||
	    (r = ak_profile_set_field(&p->secret, key)) != AK_OK)
		goto out;
	if ((url != NULL && (r = ak_profile_set_var(p, AK_CHECK_URL_VAR, url)) != AK_OK) ||
	    (hdr != NULL && (r = ak_profile_set_var(p, AK_CHECK_HEADER_VAR, hdr)) != AK_OK) ||
	    (tmpl != NULL && (r = ak_profile_set_var(p, AK_CHECK_TEMPLATE_VAR, tmpl)) != AK_OK))
		goto out;
	*out = p;
	p = NULL;
out:
	if (r != AK_OK)
		rc = cli_fail(r, NULL, "%s: reading the key", c->cmd);
	ak_smem_free(key); /* wipes */
	ak_profile_free(p);
	return rc;
}

enum ak_err
cmd_test(struct cli *c, int argc, char **argv)
{
	const char *base_url = NULL, *vname = NULL, *vprov = NULL, *vurl = NULL, *vhdr = NULL, *vtmpl = NULL;
	struct ak_client *cl = NULL;
	struct ak_list_entry *ents = NULL;
	struct check *cks = NULL;
	uint32_t nents = 0, secs = TEST_DEFAULT_TIMEOUT_S;
	size_t n = 0, i;
	const char *timeout_s = NULL;
	int all = 0, key_stdin = 0, json = 0, verdict, helped;
	enum ak_err rc, r;
	const struct ak_opt opts[] = {
		CLI_FLAG("all", &all, 1),
		{ .name = "timeout", .short_name = 't', .kind = AK_OPT_VALUE, .value = &timeout_s },
		CLI_VALUE("base-url", &base_url),
		CLI_FLAG("json", &json, 1),
		/* Internal, for akctl add --validate (cli_net_validate). */
		CLI_FLAG("key-stdin", &key_stdin, 1),
		CLI_VALUE("name", &vname),
		CLI_VALUE("provider", &vprov),
		CLI_VALUE("check-url", &vurl),
		CLI_VALUE("check-header", &vhdr),
		CLI_VALUE("check-template", &vtmpl),
		CLI_OPT_END,
	};

	if ((rc = cli_opts_parse(c, argc, argv, opts, 0, &helped)) != AK_OK || helped)
		return rc;
	if (timeout_s != NULL && (ak_duration_parse(timeout_s, &secs) != AK_OK || secs == 0 || secs > 3600))
		return cli_usage_error(c, "--timeout: bad duration '%s' (1s to 1h)", timeout_s);
	if (key_stdin) {
		if (vname == NULL || vprov == NULL || all || optind != argc)
			return cli_usage_error(c, "--key-stdin needs --name and --provider, and nothing else");
	} else if (all == (optind < argc)) {
		return cli_usage_error(c, all ? "--all takes no PROFILE" : "missing PROFILE (or --all)");
	}
	if (base_url != NULL && url_problem(base_url) != NULL)
		return cli_usage_error(c, "--base-url: %s", url_problem(base_url));
	if ((r = net_init()) != AK_OK)
		return cli_fail(r, "libcurl", "%s", c->cmd);

	if (key_stdin) {
		if ((cks = calloc(1, sizeof(*cks))) == NULL) {
			rc = cli_fail(AK_ERR_NOMEM, NULL, "%s", c->cmd);
			goto out;
		}
		n = 1;
		c->cmd = "add"; /* our messages belong to the add that ran us */
		if ((rc = profile_from_stdin(c, vname, vprov, vurl, vhdr, vtmpl, &cks[0].own)) != AK_OK)
			goto out;
		cks[0].p = cks[0].own;
		if ((rc = run_checks(c, cks, n, (long)secs * 1000, base_url, 0, stderr, "akctl: add: ", 0,
		    &verdict)) != AK_OK)
			goto out;
		rc = cli_status(c, verdict);
		goto out;
	}

	for (i = (size_t)optind; i < (size_t)argc; i++)
		if (ak_name_check(argv[i]) != AK_OK)
			return cli_fail(AK_ERR_BAD_NAME, NULL, "%s: '%s'", c->cmd, argv[i]);
	if ((rc = cli_agent_unlocked(c, &cl)) != AK_OK)
		goto out;
	if (all) {
		if ((r = ak_client_list(cl, &ents, &nents)) != AK_OK) {
			rc = cli_fail_client(cl, r, c->cmd);
			goto out;
		}
		n = nents;
	} else {
		n = (size_t)(argc - optind);
	}
	if (n == 0) {
		if (json)
			printf("{\"profiles\":[],\"exit\":0}\n");
		else
			cli_note("%s: no profiles", c->cmd);
		rc = AK_OK;
		goto out;
	}
	if ((cks = calloc(n, sizeof(*cks))) == NULL) {
		rc = cli_fail(AK_ERR_NOMEM, NULL, "%s", c->cmd);
		goto out;
	}
	/* Every profile first (exit 5 before any request if one is missing). */
	for (i = 0; i < n; i++) {
		const char *name = all ? ents[i].name : argv[optind + (int)i];

		r = ak_client_get(cl, name, &cks[i].own);
		cks[i].p = cks[i].own;
		if (r == AK_ERR_NO_PROFILE) {
			rc = cli_fail(r, NULL, "%s: %s", c->cmd, name);
			goto out;
		}
		if (r != AK_OK) {
			rc = cli_fail_client(cl, r, c->cmd);
			goto out;
		}
	}
	/* Nothing more to ask the agent: do not hold its connection through the network wait. */
	ak_client_close(cl);
	cl = NULL;
	if ((rc = run_checks(c, cks, n, (long)secs * 1000, base_url, all, stdout, "", json, &verdict)) == AK_OK)
		rc = cli_status(c, verdict); /* the verdict of the first failing line (10-17, 1 not checked) */
out:
	checks_free(cks, n);
	ak_client_list_free(ents, nents);
	ak_client_close(cl);
	net_cleanup();
	return rc;
}

/* akctl-net's own `add --validate`: check in this process (akctl forks akctl-net instead, net_exec.c).
 * p stays owned by the caller. */
int
cli_net_validate(struct cli *c, const struct ak_profile *p)
{
	struct check ck;
	int verdict = 1; /* not checked */

	if (net_init() != AK_OK) {
		cli_fail(AK_ERR_INTERNAL, "libcurl", "%s: validate", c->cmd);
		return verdict;
	}
	memset(&ck, 0, sizeof(ck));
	ck.p = p; /* only read: ck.own stays NULL */
	if (run_checks(c, &ck, 1, TEST_DEFAULT_TIMEOUT_S * 1000L, NULL, 0, stderr, "akctl: add: ", 0,
	    &verdict) != AK_OK)
		verdict = 1;
	ak_smem_free(ck.auth);
	net_cleanup();
	return verdict;
}
