/* net_http.c - akctl-net's HTTP layer over libcurl (cli/net.h): one request, or many at once.
 *
 * Rules every request follows, whoever asks:
 *  - secrets travel only in headers (or SigV4's credentials), never in the URL;
 *  - TLS peer and host verification are always on (CA file: $AKCTL_CA_BUNDLE, else libcurl's default);
 *  - only http and https, no redirects followed (a redirect would carry the key elsewhere);
 *  - plain http never through a proxy (https honours the usual proxy variables);
 *  - no verbose output; curl's error buffer is scrubbed of the secret before it is shown;
 *  - bodies land in the secure arena (they may hold secrets: an imported value) and are capped.
 * libcurl keeps unwiped copies of option strings, which it never wipes; we wipe what we own (header lines, error
 * buffers, bodies), and this process is short-lived.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <sodium.h>

#include "ak_buf.h"
#include "ak_smem.h"
#include "ak_util.h"
#include "net.h"

#define NET_DEFAULT_CONNECT_MS 5000
#define NET_DEFAULT_TIMEOUT_MS 15000
#define NET_DEFAULT_MAX_BODY (1u << 20)
#define NET_MAX_CONNECTIONS 64 /* queue beyond this: stay far from the fd limit with --all */

enum xfer_state { XF_IDLE = 0, XF_RUNNING, XF_WAIT, XF_DONE };

struct xfer {
	CURL *h;
	struct curl_slist *hdrs;
	const struct net_request *rq;
	struct net_response *resp;
	struct ak_buf *body;     /* secure */
	size_t max_body;
	int too_big;
	enum xfer_state state;
	uint64_t not_before;     /* XF_WAIT: monotonic ms when the retry may go */
	char errbuf[CURL_ERROR_SIZE];
};

static int net_started;

enum ak_err
net_init(void)
{
	const curl_version_info_data *v;

	if (net_started)
		return AK_OK;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return AK_ERR_INTERNAL;
	v = curl_version_info(CURLVERSION_NOW);
	if (v == NULL || v->version_num < 0x074b00) { /* 7.75: CURLOPT_AWS_SIGV4 */
		curl_global_cleanup();
		return AK_ERR_UNSUPPORTED;
	}
	net_started = 1;
	return AK_OK;
}

void
net_cleanup(void)
{
	if (net_started)
		curl_global_cleanup();
	net_started = 0;
}

void
net_response_clear(struct net_response *resp)
{
	if (resp == NULL)
		return;
	ak_smem_free(resp->body); /* wipes: the body may hold a secret */
	sodium_memzero(resp, sizeof(*resp));
	resp->retry_after = -1;
}

/* Replace every occurrence of secret in s (in place, NUL-terminated, size cap) with "[redacted]",
 * then turn control bytes into '?'. Short "secrets" (< 4 bytes) are not searched: they would match
 * ordinary words, and no real key is that short. */
static void
scrub(char *s, size_t cap, const char *secret)
{
	static const char mark[] = "[redacted]";
	size_t slen, mlen = sizeof(mark) - 1, len;
	char *hit;

	if (secret != NULL && (slen = strlen(secret)) >= 4) {
		while ((hit = strstr(s, secret)) != NULL) {
			len = strlen(s);
			if (len - slen + mlen + 1 > cap) {
				/* No room for the marker: cut the message at the secret. */
				*hit = '\0';
				break;
			}
			memmove(hit + mlen, hit + slen, len - (size_t)(hit - s) - slen + 1);
			memcpy(hit, mark, mlen);
		}
	}
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
			*s = (*s == '\n' && s[1] == '\0') ? '\0' : '?';
}

static size_t
on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	size_t n = size * nmemb;

	if (ak_buf_len(x->body) + n > x->max_body) {
		x->too_big = 1;
		return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
	}
	if (ak_buf_put(x->body, data, n) != AK_OK)
		return 0;
	return n;
}

/* Header values we keep are shown to the user: printable ASCII only, no spaces. */
static void
keep_token(char *out, size_t outlen, const char *v, size_t n)
{
	size_t i, j = 0;

	for (i = 0; i < n && j + 1 < outlen; i++) {
		unsigned char ch = (unsigned char)v[i];
		if (ch > 0x20 && ch < 0x7f)
			out[j++] = (char)ch;
	}
	out[j] = '\0';
}

static size_t
on_header(char *data, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	size_t n = size * nmemb, nl;
	const char *colon, *v, *end = data + n;
	long ra;

	if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		/* A new response (after a 100 Continue, say): forget the last one's headers. */
		x->resp->request_id[0] = '\0';
		x->resp->retry_after = -1;
		return n;
	}
	if ((colon = memchr(data, ':', n)) == NULL)
		return n;
	nl = (size_t)(colon - data);
	for (v = colon + 1; v < end && (*v == ' ' || *v == '\t'); v++)
		;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
		end--;
	if ((nl == 10 && strncasecmp(data, "request-id", 10) == 0) ||
	    (nl == 12 && strncasecmp(data, "x-request-id", 12) == 0)) {
		if (x->resp->request_id[0] == '\0' || nl == 10)
			keep_token(x->resp->request_id, sizeof(x->resp->request_id), v, (size_t)(end - v));
	} else if (nl == 11 && strncasecmp(data, "retry-after", 11) == 0) {
		/* Seconds only; an HTTP-date is rare from APIs and is ignored (no retry). */
		ra = 0;
		for (; v < end && *v >= '0' && *v <= '9'; v++) {
			ra = ra * 10 + (*v - '0');
			if (ra > 86400)
				break;
		}
		if (v == end && end > colon + 1)
			x->resp->retry_after = ra;
	}
	return n;
}

static enum net_fail
classify(CURLcode rc)
{
	switch (rc) {
	case CURLE_OK:
		return NET_OK;
	case CURLE_OPERATION_TIMEDOUT:
		return NET_TIMEOUT;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return NET_DNS;
	case CURLE_COULDNT_CONNECT:
	case CURLE_GOT_NOTHING:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_PARTIAL_FILE:
		return NET_CONNECT;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_USE_SSL_FAILED:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_SSL_SHUTDOWN_FAILED:
		return NET_TLS;
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_FILESIZE_EXCEEDED:
	case CURLE_WRITE_ERROR:
	case CURLE_BAD_CONTENT_ENCODING:
		return NET_PROTOCOL;
	default:
		return NET_OTHER;
	}
}

static void
xfer_free(struct xfer *x)
{
	struct curl_slist *l;

	if (x->h != NULL)
		curl_easy_cleanup(x->h);
	/* Wipe before free: these lines hold the key (curl's own copies are out of our reach). */
	for (l = x->hdrs; l != NULL; l = l->next)
		if (l->data != NULL)
			sodium_memzero(l->data, strlen(l->data));
	curl_slist_free_all(x->hdrs);
	ak_buf_free(x->body);
	sodium_memzero(x, sizeof(*x));
}

static enum ak_err
xfer_setup(struct xfer *x, const struct net_request *rq, struct net_response *resp, long timeout_ms)
{
	const char *ca;
	struct curl_slist *l;
	size_t i;
	long connect_ms = rq->connect_timeout_ms > 0 ? rq->connect_timeout_ms : NET_DEFAULT_CONNECT_MS;
	int bad = 0;

	memset(x, 0, sizeof(*x));
	x->rq = rq;
	x->resp = resp;
	x->max_body = rq->max_body > 0 ? rq->max_body : NET_DEFAULT_MAX_BODY;
	if ((x->body = ak_buf_new_secure(x->max_body)) == NULL || (x->h = curl_easy_init()) == NULL)
		return AK_ERR_NOMEM;
	if (rq->url == NULL || rq->method == NULL)
		return AK_ERR_INVALID;
	for (i = 0; rq->headers != NULL && rq->headers[i] != NULL; i++) {
		/* Never let a header line carry a CR/LF: that would be header injection. */
		if (strpbrk(rq->headers[i], "\r\n") != NULL)
			return AK_ERR_INVALID;
		if ((l = curl_slist_append(x->hdrs, rq->headers[i])) == NULL)
			return AK_ERR_NOMEM;
		x->hdrs = l;
	}
	if (connect_ms > timeout_ms)
		connect_ms = timeout_ms;
	bad |= curl_easy_setopt(x->h, CURLOPT_URL, rq->url) != CURLE_OK;
#if LIBCURL_VERSION_NUM >= 0x075500
	bad |= curl_easy_setopt(x->h, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK;
	bad |= curl_easy_setopt(x->h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") != CURLE_OK;
#else
	bad |= curl_easy_setopt(x->h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS)) != CURLE_OK;
	bad |= curl_easy_setopt(x->h, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS)) !=
	    CURLE_OK;
#endif
	/* Plain http never goes through a proxy: http_proxy/ALL_PROXY would hand the key (or a metadata
	 * token) in the clear to whatever listens there. https keeps honouring the proxy variables: the
	 * proxy then sees only a CONNECT and the TLS stream. "" overrides every proxy variable. */
	if (rq->no_proxy || strncasecmp(rq->url, "http://", 7) == 0)
		bad |= curl_easy_setopt(x->h, CURLOPT_PROXY, "") != CURLE_OK;
	bad |= curl_easy_setopt(x->h, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK;
	bad |= curl_easy_setopt(x->h, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK;
	bad |= curl_easy_setopt(x->h, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK;
	bad |= curl_easy_setopt(x->h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2) != CURLE_OK;
	if ((ca = getenv("AKCTL_CA_BUNDLE")) != NULL && ca[0] != '\0')
		bad |= curl_easy_setopt(x->h, CURLOPT_CAINFO, ca) != CURLE_OK;
	bad |= curl_easy_setopt(x->h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
	bad |= curl_easy_setopt(x->h, CURLOPT_VERBOSE, 0L) != CURLE_OK;
	bad |= curl_easy_setopt(x->h, CURLOPT_CONNECTTIMEOUT_MS, connect_ms) != CURLE_OK;
	bad |= curl_easy_setopt(x->h, CURLOPT_TIMEOUT_MS, timeout_ms) != CURLE_OK;
	bad |= curl_easy_setopt(x->h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)x->max_body) != CURLE_OK;
	bad |= curl_easy_setopt(x->h, CURLOPT_USERAGENT, "akctl/" AK_VERSION) != CURLE_OK;
	bad |= curl_easy_setopt(x->h, CURLOPT_HTTPHEADER, x->hdrs) != CURLE_OK;
	bad |= curl_easy_setopt(x->h, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK;
	bad |= curl_easy_setopt(x->h, CURLOPT_WRITEDATA, x) != CURLE_OK;
	bad |= curl_easy_setopt(x->h, CURLOPT_HEADERFUNCTION, on_header) != CURLE_OK;
	bad |= curl_easy_setopt(x->h, CURLOPT_HEADERDATA, x) != CURLE_OK;
	bad |= curl_easy_setopt(x->h, CURLOPT_ERRORBUFFER, x->errbuf) != CURLE_OK;
	if (strcmp(rq->method, "POST") == 0) {
		bad |= curl_easy_setopt(x->h, CURLOPT_POST, 1L) != CURLE_OK;
		bad |= curl_easy_setopt(x->h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len) != CURLE_OK;
		bad |= curl_easy_setopt(x->h, CURLOPT_POSTFIELDS, rq->body != NULL ? rq->body : "") != CURLE_OK;
	} else if (strcmp(rq->method, "GET") != 0) {
		bad |= curl_easy_setopt(x->h, CURLOPT_CUSTOMREQUEST, rq->method) != CURLE_OK;
	}
	if (rq->aws_sigv4 != NULL) {
		bad |= curl_easy_setopt(x->h, CURLOPT_AWS_SIGV4, rq->aws_sigv4) != CURLE_OK;
		if (rq->aws_userpwd != NULL)
			bad |= curl_easy_setopt(x->h, CURLOPT_USERPWD, rq->aws_userpwd) != CURLE_OK;
	}
	return bad ? AK_ERR_INTERNAL : AK_OK;
}

/* The transfer ended (res): fill the response. */
static void
xfer_finish(struct xfer *x, CURLcode res)
{
	struct net_response *resp = x->resp;
	const char *aws_secret = NULL;
	size_t len;

	resp->fail = classify(res);
	if (res == CURLE_OK) {
		(void)curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &resp->status);
		len = ak_buf_len(x->body);
		if ((resp->body = ak_smem_alloc(len + 1)) == NULL) {
			resp->fail = NET_OTHER;
			snprintf(resp->error, sizeof(resp->error), "out of memory");
		} else {
			memcpy(resp->body, ak_buf_ptr(x->body), len);
			resp->body_len = len;
		}
	} else if (x->too_big || res == CURLE_FILESIZE_EXCEEDED) {
		resp->fail = NET_PROTOCOL;
		snprintf(resp->error, sizeof(resp->error), "response body larger than %zu bytes", x->max_body);
	} else {
		snprintf(resp->error, sizeof(resp->error), "%s",
		    x->errbuf[0] != '\0' ? x->errbuf : curl_easy_strerror(res));
	}
	scrub(resp->error, sizeof(resp->error), x->rq->secret);
	/* A broken or hostile server may echo the key back in a header we show. */
	if (x->rq->secret != NULL && strlen(x->rq->secret) >= 4 &&
	    strstr(resp->request_id, x->rq->secret) != NULL)
		snprintf(resp->request_id, sizeof(resp->request_id), "[redacted]");
	if (x->rq->aws_userpwd != NULL && (aws_secret = strchr(x->rq->aws_userpwd, ':')) != NULL)
		scrub(resp->error, sizeof(resp->error), aws_secret + 1);
	sodium_memzero(x->errbuf, sizeof(x->errbuf));
	ak_buf_reset(x->body);
	x->state = XF_DONE;
}

static long
remaining_ms(uint64_t deadline)
{
	uint64_t now = ak_now_ms();

	return now >= deadline ? 1 : (long)(deadline - now);
}

enum ak_err
net_perform_many(const struct net_request *rq, struct net_response *resp, size_t n, long overall_ms,
    int flags)
{
	struct xfer *xs = NULL;
	CURLM *m = NULL;
	CURLMsg *msg;
	uint64_t deadline, now, next;
	size_t i, active = 0;
	long t, wait_ms, wait;
	int running = 0, left;
	enum ak_err r = AK_OK;

	if (n == 0)
		return AK_OK;
	/* Every response is valid for net_response_clear, whatever fails below. */
	for (i = 0; i < n; i++) {
		memset(&resp[i], 0, sizeof(resp[i]));
		resp[i].retry_after = -1;
	}
	if ((r = net_init()) != AK_OK)
		return r;
	if (overall_ms <= 0)
		overall_ms = NET_DEFAULT_TIMEOUT_MS;
	deadline = ak_now_ms() + (uint64_t)overall_ms;
	if ((xs = calloc(n, sizeof(*xs))) == NULL || (m = curl_multi_init()) == NULL) {
		r = AK_ERR_NOMEM;
		goto out;
	}
	(void)curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)NET_MAX_CONNECTIONS);
	for (i = 0; i < n; i++) {
		t = rq[i].timeout_ms > 0 ? rq[i].timeout_ms : NET_DEFAULT_TIMEOUT_MS;
		if (t > overall_ms)
			t = overall_ms;
		if ((r = xfer_setup(&xs[i], &rq[i], &resp[i], t)) != AK_OK)
			goto out;
	}
	for (i = 0; i < n; i++) {
		if (curl_multi_add_handle(m, xs[i].h) != CURLM_OK) {
			r = AK_ERR_INTERNAL;
			goto out;
		}
		xs[i].state = XF_RUNNING;
		active++;
	}
	while (active > 0) {
		if (curl_multi_perform(m, &running) != CURLM_OK) {
			r = AK_ERR_INTERNAL;
			goto out;
		}
		while ((msg = curl_multi_info_read(m, &left)) != NULL) {
			struct xfer *x = NULL;

			if (msg->msg != CURLMSG_DONE)
				continue;
			for (i = 0; i < n; i++)
				if (xs[i].h == msg->easy_handle)
					x = &xs[i];
			if (x == NULL)
				continue;
			(void)curl_multi_remove_handle(m, x->h);
			x->resp->status = 0;
			if (msg->data.result == CURLE_OK)
				(void)curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &x->resp->status);
			/* 429 with a short retry-after: honour it once, if the retry fits in the deadline. */
			if ((flags & NET_RETRY_429) && msg->data.result == CURLE_OK && x->resp->status == 429 &&
			    !x->resp->retried && x->resp->retry_after >= 0 &&
			    x->resp->retry_after * 1000 <= NET_RETRY_CAP_MS &&
			    ak_now_ms() + (uint64_t)x->resp->retry_after * 1000 + 100 < deadline) {
				x->resp->retried = 1;
				x->state = XF_WAIT;
				x->not_before = ak_now_ms() + (uint64_t)x->resp->retry_after * 1000;
				ak_buf_reset(x->body);
				sodium_memzero(x->errbuf, sizeof(x->errbuf));
				continue;
			}
			xfer_finish(x, msg->data.result);
			active--;
		}
		if (active == 0)
			break;
		/* Start retries that are due; find the next one. */
		now = ak_now_ms();
		next = 0;
		for (i = 0; i < n; i++) {
			if (xs[i].state != XF_WAIT)
				continue;
			if (xs[i].not_before <= now) {
				(void)curl_easy_setopt(xs[i].h, CURLOPT_TIMEOUT_MS, remaining_ms(deadline));
				xs[i].resp->status = 0;
				if (curl_multi_add_handle(m, xs[i].h) != CURLM_OK) {
					r = AK_ERR_INTERNAL;
					goto out;
				}
				xs[i].state = XF_RUNNING;
			} else if (next == 0 || xs[i].not_before < next) {
				next = xs[i].not_before;
			}
		}
		wait_ms = 1000;
		if (curl_multi_timeout(m, &wait) == CURLM_OK && wait >= 0 && wait < wait_ms)
			wait_ms = wait;
		if (next != 0 && (long)(next - now) < wait_ms)
			wait_ms = (long)(next - now);
		if (curl_multi_poll(m, NULL, 0, (int)wait_ms, NULL) != CURLM_OK) {
			r = AK_ERR_INTERNAL;
			goto out;
		}
	}
out:
	for (i = 0; xs != NULL && i < n; i++) {
		if (xs[i].h != NULL && xs[i].state == XF_RUNNING && m != NULL)
			(void)curl_multi_remove_handle(m, xs[i].h);
		if (r != AK_OK && xs[i].state != XF_DONE) {
			resp[i].fail = NET_OTHER;
			snprintf(resp[i].error, sizeof(resp[i].error), "%s", ak_strerror(r));
		}
		xfer_free(&xs[i]);
	}
	free(xs);
	if (m != NULL)
		curl_multi_cleanup(m);
	return r;
}

enum ak_err
net_perform(const struct net_request *rq, struct net_response *resp)
{
	return net_perform_many(rq, resp, 1, rq->timeout_ms > 0 ? rq->timeout_ms : NET_DEFAULT_TIMEOUT_MS,
	    0);
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
