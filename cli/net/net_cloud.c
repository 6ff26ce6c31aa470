/* net_cloud.c - cloud secret managers for akctl import/pull: URI dispatch and the helpers every provider
 * shares (URL building, error text, token programs, value extraction, CRC32C).
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

enum ak_err
cloud_err(enum ak_err e, char *detail, size_t detaillen, const char *fmt, ...)
{
	va_list ap;

	if (detaillen == 0)
		return e;
	va_start(ap, fmt);
	vsnprintf(detail, detaillen, fmt, ap);
	va_end(ap);
	return e;
}

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

int
cloud_token_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0)
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			return 0;
	return 1;
}

int
cloud_append(char *out, size_t outlen, const char *s)
{
	size_t a = strlen(out), b = strlen(s);

	if (a + b + 1 > outlen)
		return -1;
	memcpy(out + a, s, b + 1);
	return 0;
}

int
cloud_append_pct(char *out, size_t outlen, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t a = strlen(out), i;
	unsigned char ch;

	for (i = 0; i < n; i++) {
		ch = (unsigned char)s[i];
		if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
		    ch == '.' || ch == '_' || ch == '~' || ch == '-') {
			if (a + 2 > outlen)
				return -1;
			out[a++] = (char)ch;
		} else {
			if (a + 4 > outlen)
				return -1;
			out[a++] = '%';
			out[a++] = hex[ch >> 4];
			out[a++] = hex[ch & 15];
		}
	}
	out[a] = '\0';
	return 0;
}

/* http:// is allowed only to this machine (tests, local proxies): a key must not cross a network in the
 * clear. Checks the host part of an http URL. */
int
net_is_loopback_http(const char *url)
{
	const char *h = url + 7, *end, *colon;
	size_t n, i;

	end = h + strcspn(h, "/?#");
	if (memchr(h, '@', (size_t)(end - h)) != NULL)
		return 0;
	if (strncmp(h, "[::1]", 5) == 0)
		return h + 5 == end || h[5] == ':';
	colon = memchr(h, ':', (size_t)(end - h));
	n = (size_t)((colon != NULL ? colon : end) - h);
	if (n == 9 && strncasecmp(h, "localhost", 9) == 0)
		return 1;
	/* 127.0.0.0/8 as a dotted literal only: "127.0.0.1.example.com" is somebody else's host. */
	if (n < 4 || strncmp(h, "127.", 4) != 0)
		return 0;
	for (i = 4; i < n; i++)
		if (!((h[i] >= '0' && h[i] <= '9') || h[i] == '.'))
			return 0;
	return 1;
}


int
cloud_base_url(const char *in, char *out, size_t outlen)
{
	size_t n, i;

	if (strncmp(in, "https://", 8) != 0 && !(strncmp(in, "http://", 7) == 0 && net_is_loopback_http(in)))
		return -1; /* tokens travel in headers: plain http only to this machine */
	n = strlen(in);
	for (i = 0; i < n; i++)
		if ((unsigned char)in[i] <= 0x20 || (unsigned char)in[i] >= 0x7f || in[i] == '?' ||
		    in[i] == '#')
			return -1;
	while (n > 0 && in[n - 1] == '/')
		n--;
	if (n + 1 > outlen || n <= 8)
		return -1;
	memcpy(out, in, n);
	out[n] = '\0';
	return 0;
}

void
cloud_clean(const char *in, char *out, size_t outlen, const char *const *secrets, size_t nsecrets)
{
	static const char red[] = "[redacted]";
	size_t o = 0, i, k, sl;
	int hit;

	if (outlen == 0)
		return;
	for (i = 0; in != NULL && in[i] != '\0';) {
		/* A blank line ends the message: what follows is detail some services append (AWS quotes
		 * the canonical request there). Single line breaks and tabs (Vault's lists) become spaces. */
		if (in[i] == '\n' || in[i] == '\r' || in[i] == '\t') {
			if (in[i] == '\n' && (in[i + 1] == '\n' || (in[i + 1] == '\r' && in[i + 2] == '\n')))
				break;
			if (o > 0 && out[o - 1] != ' ') {
				if (o + 2 > outlen)
					goto full;
				out[o++] = ' ';
			}
			i++;
			continue;
		}
		hit = 0;
		for (k = 0; k < nsecrets; k++) {
			if (secrets[k] == NULL || (sl = strlen(secrets[k])) < 4)
				continue;
			if (strncmp(in + i, secrets[k], sl) == 0) {
				if (o + sizeof(red) > outlen)
					goto full;
				memcpy(out + o, red, sizeof(red) - 1);
				o += sizeof(red) - 1;
				i += sl;
				hit = 1;
				break;
			}
		}
		if (hit)
			continue;
		if (o + 2 > outlen)
			goto full;
		out[o++] = ((unsigned char)in[i] < 0x20 || in[i] == 0x7f) ? '?' : in[i];
		i++;
	}
	/* Trailing blanks (a message ending in ". " before its newline) look odd in one line. */
	while (o > 0 && out[o - 1] == ' ')
		o--;
	out[o] = '\0';
	return;
full:
	/* Cut, and say so; never cut in the middle of a redaction marker. */
	if (outlen > 4) {
		o = o < outlen - 4 ? o : outlen - 4;
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o < outlen ? o : outlen - 1] = '\0';
}

void
cloud_json_error(const char *body, char *out, size_t outlen, const char *const *secrets,
    size_t nsecrets)
{
	cJSON *j, *e, *m, *t;
	char raw[512];
	const char *type = NULL, *msg = NULL, *hash;

	out[0] = '\0';
	if (body == NULL || (j = cJSON_Parse(body)) == NULL)
		return;
	if (cJSON_IsObject(j)) {
		/* AWS JSON 1.1: {"__type": "[ns#]Name", "message"|"Message": ...} */
		if (cJSON_IsString(t = cJSON_GetObjectItemCaseSensitive(j, "__type"))) {
			type = t->valuestring;
			if ((hash = strrchr(type, '#')) != NULL)
				type = hash + 1;
		}
		if (cJSON_IsString(m = cJSON_GetObjectItemCaseSensitive(j, "message")) ||
		    cJSON_IsString(m = cJSON_GetObjectItemCaseSensitive(j, "Message")))
			msg = m->valuestring;
		/* Google {"error":{"code":404,"message":..,"status":"NOT_FOUND"}}, Azure
		 * {"error":{"code":"SecretNotFound","message":..}}. */
		if (cJSON_IsObject(e = cJSON_GetObjectItemCaseSensitive(j, "error"))) {
			if (cJSON_IsString(t = cJSON_GetObjectItemCaseSensitive(e, "status")) ||
			    cJSON_IsString(t = cJSON_GetObjectItemCaseSensitive(e, "code")))
				type = t->valuestring;
			if (cJSON_IsString(m = cJSON_GetObjectItemCaseSensitive(e, "message")))
				msg = m->valuestring;
		}
		/* Vault {"errors": ["permission denied"]} */
		if (cJSON_IsArray(e = cJSON_GetObjectItemCaseSensitive(j, "errors")) &&
		    cJSON_IsString(m = cJSON_GetArrayItem(e, 0)))
			msg = m->valuestring;
	}
	if (type != NULL && msg != NULL)
		snprintf(raw, sizeof(raw), "%s: %s", type, msg);
	else
		snprintf(raw, sizeof(raw), "%s", type != NULL ? type : msg != NULL ? msg : "");
	cloud_clean(raw, out, outlen, secrets, nsecrets);
	sodium_memzero(raw, sizeof(raw));
	cJSON_Delete(j);
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
	rq.connect_timeout_ms = 5000;
	rq.timeout_ms = cloud_timeout(o);
	if ((r = cloud_http(who, &rq, &resp, detail, detaillen)) != AK_OK)
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

enum ak_err
cloud_take_value(const char *who, const char *s, size_t n, const char *field, char **value,
    size_t *value_len, char *detail, size_t detaillen)
{
	cJSON *j = NULL, *f;
	const char *v = s;
	size_t vn = n;
	enum ak_err r;

	*value = NULL;
	*value_len = 0;
	if (memchr(s, '\0', n) != NULL) {
		r = cloud_err(AK_ERR_BAD_MESSAGE, detail, detaillen,
		    "%s: the secret is binary (contains a NUL byte)", who);
		goto out;
	}
	if (field != NULL) {
		/* The secret itself is a JSON object of several values: pick one. */
		j = cJSON_ParseWithLength(s, n);
		if (!cJSON_IsObject(j)) {
			r = cloud_err(AK_ERR_BAD_MESSAGE, detail, detaillen,
			    "%s: '#%s' given but the secret is not a JSON object", who, field);
			goto out;
		}
		f = cJSON_GetObjectItemCaseSensitive(j, field);
		if (f == NULL) {
			r = cloud_err(AK_ERR_BAD_MESSAGE, detail, detaillen,
			    "%s: the secret has no field '%s'", who, field);
			goto out;
		}
		if (!cJSON_IsString(f)) {
			r = cloud_err(AK_ERR_BAD_MESSAGE, detail, detaillen,
			    "%s: field '%s' is not a string", who, field);
			goto out;
		}
		v = f->valuestring;
		vn = strlen(v);
	}
	if (vn == 0) {
		r = cloud_err(AK_ERR_EMPTY, detail, detaillen, "%s: the secret is empty", who);
		goto out;
	}
	if (vn > AK_VALUE_MAX) {
		r = cloud_err(AK_ERR_TOO_LARGE, detail, detaillen, "%s: the secret is over %d bytes", who,
		    AK_VALUE_MAX);
		goto out;
	}
	if ((*value = ak_smem_strndup(v, vn)) == NULL) {
		r = cloud_err(AK_ERR_NOMEM, detail, detaillen, "%s: out of memory", who);
		goto out;
	}
	*value_len = vn;
	r = AK_OK;
out:
	cJSON_Delete(j); /* arena-hooked: wipes the parsed secret */
	return r;
}

int
cloud_b64_decode(const char *in, char **out, size_t *outlen)
{
	size_t n = strlen(in), cap = n / 4 * 3 + 3, got = 0;
	const char *end = NULL;
	char *b;

	*out = NULL;
	*outlen = 0;
	if ((b = ak_smem_alloc(cap + 1)) == NULL)
		return -1;
	if (sodium_base642bin((unsigned char *)b, cap, in, n, NULL, &got, &end,
	    sodium_base64_VARIANT_ORIGINAL) != 0 || end != in + n) {
		ak_smem_free(b);
		return -1;
	}
	b[got] = '\0';
	*out = b;
	*outlen = got;
	return 0;
}

uint32_t
cloud_crc32c(const void *buf, size_t len)
{
	static uint32_t table[256];
	static int ready;
	const unsigned char *p = buf;
	uint32_t c;
	size_t i;
	int k;

	if (!ready) {
		for (i = 0; i < 256; i++) {
			c = (uint32_t)i;
			for (k = 0; k < 8; k++)
				c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
			table[i] = c;
		}
		ready = 1;
	}
	c = 0xFFFFFFFFu;
	for (i = 0; i < len; i++)
		c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
	return c ^ 0xFFFFFFFFu;
}

/* Token programs ------------------------------------------------------------------------------------- */

static void
child_exec(char *const argv[], int wfd)
{
	int nul;

	/* Never prompt (stdin /dev/null), never print over our one-line error (stderr /dev/null). */
	if ((nul = open("/dev/null", O_RDWR)) < 0)
		_exit(126);
	if (dup2(nul, 0) < 0 || dup2(wfd, 1) < 0 || dup2(nul, 2) < 0)
		_exit(126);
	/* The agent socket and anything else we hold stay with us. */
	closefrom(3);
	signal(SIGPIPE, SIG_DFL);
	execvp(argv[0], argv);
	_exit(errno == ENOENT ? 127 : 126);
}

enum ak_err
cloud_run_token(char *const argv[], long timeout_ms, char **tok, char *detail, size_t detaillen)
{
	struct pollfd pfd;
	char *buf = NULL;
	size_t n = 0;
	uint64_t deadline;
	ssize_t k;
	pid_t pid;
	int fds[2] = { -1, -1 }, status = 0, left, timed_out = 0, overflow = 0;
	enum ak_err r;

	*tok = NULL;
	if ((buf = ak_smem_alloc(CLOUD_TOKEN_MAX + 1)) == NULL)
		return cloud_err(AK_ERR_NOMEM, detail, detaillen, "out of memory");
	if (pipe2(fds, O_CLOEXEC) != 0) {
		r = cloud_err(AK_ERR_SYSTEM, detail, detaillen, "%s: pipe: %s", argv[0], strerror(errno));
		goto out;
	}
	if ((pid = fork()) < 0) {
		r = cloud_err(AK_ERR_SYSTEM, detail, detaillen, "%s: fork: %s", argv[0], strerror(errno));
		goto out;
	}
	if (pid == 0)
		child_exec(argv, fds[1]);
	close(fds[1]);
	fds[1] = -1;
	deadline = ak_now_ms() + (uint64_t)timeout_ms;
	for (;;) {
		uint64_t now = ak_now_ms();

		if (now >= deadline) {
			timed_out = 1;
			break;
		}
		left = (int)(deadline - now);
		pfd.fd = fds[0];
		pfd.events = POLLIN;
		if (poll(&pfd, 1, left) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd.revents == 0)
			continue;
		if (n == CLOUD_TOKEN_MAX) {
			overflow = 1;
			break;
		}
		k = read(fds[0], buf + n, CLOUD_TOKEN_MAX - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		n += (size_t)k;
	}
	if (timed_out || overflow)
		kill(pid, SIGKILL); /* our own child, by pid */
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (timed_out) {
		r = cloud_err(AK_ERR_BUSY, detail, detaillen, "'%s' did not answer within %ld s", argv[0],
		    timeout_ms / 1000);
		goto out;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
		r = cloud_err(AK_ERR_NO_PROFILE, detail, detaillen, "'%s' is not installed", argv[0]);
		goto out;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		r = cloud_err(AK_ERR_AUTH, detail, detaillen, "'%s %s' failed (%s %d)", argv[0],
		    argv[1] != NULL ? argv[1] : "", WIFEXITED(status) ? "exit status" : "signal",
		    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
		goto out;
	}
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' ||
	    buf[n - 1] == '\t'))
		n--;
	buf[n] = '\0';
	if (overflow || !cloud_token_ok(buf, n)) {
		r = cloud_err(AK_ERR_AUTH, detail, detaillen, "'%s %s' printed no usable token", argv[0],
		    argv[1] != NULL ? argv[1] : "");
		goto out;
	}
	*tok = buf;
	buf = NULL;
	r = AK_OK;
out:
	if (fds[0] >= 0)
		close(fds[0]);
	if (fds[1] >= 0)
		close(fds[1]);
	ak_smem_free(buf); /* wipes a partial token */
	return r;
}
