/* relay.c - one request through the proxy: check the placeholder, the host and the path, forward with
 * the real key over libcurl, and stream the answer back as it arrives.
 *
 * A request waits in two places, both as a suspended libmicrohttpd connection: for the upstream's
 * headers, and (streaming) for the next bytes. libcurl's callbacks resume it; nothing blocks the one
 * thread. A slow client pauses the upstream transfer rather than growing a buffer without bound.
 * Bodies are never logged; error replies name only the path and the reason.
 */
#include <sys/epoll.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "proxy.h"

#define PEND_HIGH (256u << 10) /* unsent bytes for a slow client before the upstream is paused */
#define PEND_LOW (64u << 10)   /* ... and resumed */
#define READ_BLOCK (4u << 10)   /* libcurl's receive buffer: events are small, TLS records 16 KiB */
#define SEND_BLOCK (4u << 10)   /* libmicrohttpd's per-response buffer, and the first pending one */

/* One client connection (it may carry many requests): its socket is watched for hang-up so a client
 * that leaves while its request is suspended is noticed at once, not at the next upstream bytes. */
struct px_conn {
	struct px_watch w;
	struct px_req *cur;  /* the request being served on it, if any */
	int gone;            /* the client hung up */
};

enum rq_state { RQ_NEW = 0, RQ_BODY, RQ_WAIT, RQ_STREAM, RQ_LOCAL };

struct px_req {
	struct px_req *prev, *next;
	struct px *px;
	struct MHD_Connection *conn;
	struct px_conn *pc;
	struct px_ws *ws;          /* a WebSocket upgrade (ws.c) */
	char *uri;                 /* the request target as sent, query included */
	enum rq_state state;
	int in_multi, suspended, headers_ready, up_done, up_failed, paused, counted;
	char *body;                /* the request body (the client's prompt: not ours to log) */
	size_t blen, bcap;
	CURL *h;
	struct curl_slist *hdrs;   /* forwarded headers, nodes and text in one block; the last node is
	                              keynode */
	struct curl_slist keynode; /* points at px->key_header (secure); not part of the block */
	size_t hnodes, hbytes;     /* sizing pass over the client's headers */
	char *htext;
	int has_ctype, has_accept;
	char *pend;                /* received from upstream, not yet taken by the client */
	size_t plen, poff, pcap;
	struct px_scan *scan;
	char errbuf[CURL_ERROR_SIZE];
};

/* Headers that describe one hop, or carry the client's credential: never forwarded. With their
 * lengths: every header of every request is checked against these, and a length that differs rules
 * a name out without comparing it. */
struct hop {
	const char *name;
	size_t len;
};
#define HOP(s) { s, sizeof(s) - 1 }
static const struct hop hop_req[] = {
	HOP("host"), HOP("connection"), HOP("keep-alive"), HOP("proxy-connection"),
	HOP("proxy-authorization"), HOP("te"), HOP("trailer"), HOP("transfer-encoding"), HOP("upgrade"),
	HOP("content-length"), HOP("expect"), HOP("x-api-key"), HOP("authorization"),
	/* Uncompressed answers: the usage counter reads them, and loopback needs no compression. */
	HOP("accept-encoding"), { NULL, 0 },
};
static const struct hop hop_resp[] = {
	HOP("connection"), HOP("keep-alive"), HOP("proxy-connection"), HOP("proxy-authenticate"), HOP("te"),
	HOP("trailer"), HOP("transfer-encoding"), HOP("upgrade"), HOP("content-length"), { NULL, 0 },
};
#undef HOP

static void pool_put(struct px *px, CURL *h);

static int
in_list(const struct hop *list, const char *name, size_t len)
{
	for (; list->name != NULL; list++)
		if (list->len == len && strncasecmp(list->name, name, len) == 0)
			return 1;
	return 0;
}

static void
req_free(struct px_req *rq)
{
	struct px *px = rq->px;

	if (rq->in_multi)
		curl_multi_remove_handle(px->multi, rq->h);
	if (rq->scan != NULL)
		px_scan_finish(rq->scan, &px->usage); /* tokens of a cut-off answer were still spent */
	if (rq->h != NULL)
		pool_put(px, rq->h);
	free(rq->hdrs);
	if (rq->ws != NULL)
		px_ws_req_gone(rq->ws);
	if (rq->pc != NULL && rq->pc->cur == rq)
		rq->pc->cur = NULL;
	if (rq->prev != NULL)
		rq->prev->next = rq->next;
	else
		px->live = rq->next;
	if (rq->next != NULL)
		rq->next->prev = rq->prev;
	px->nlive--;
	free(rq->uri);
	free(rq->body);
	free(rq->pend);
	free(rq);
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *arg);
static size_t on_data(char *data, size_t size, size_t nmemb, void *arg);

/* Handles keep the options every request shares; a request sets only its own. */
static CURL *
pool_get(struct px *px)
{
	const char *ca;
	CURL *h;
	int bad = 0;

	if (px->npool > 0)
		return px->pool[--px->npool];
	ca = getenv("AKCTL_CA_BUNDLE");
	if ((h = curl_easy_init()) == NULL)
		return NULL;
	bad |= curl_easy_setopt(h, CURLOPT_SHARE, px->share) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L) != CURLE_OK;
	/* Never via $https_proxy: no proxy, and no proxy for any host, which also spares libcurl its
	 * look through the environment for proxy settings on every request. */
	bad |= curl_easy_setopt(h, CURLOPT_PROXY, "") != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_NOPROXY, "*") != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2) != CURLE_OK;
	if (ca != NULL && ca[0] != '\0')
		bad |= curl_easy_setopt(h, CURLOPT_CAINFO, ca) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 10000L) != CURLE_OK;
	/* A model may think for minutes between events; give up only after ten silent minutes. */
	bad |= curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 600L) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L) != CURLE_OK;
	/* HTTP/2 where the upstream offers it (the providers do): every request is a stream on one
	 * multiplexed connection, so a burst of clients costs no new TLS handshakes. A request waits for
	 * a connection being set up to say whether it multiplexes rather than opening its own. */
	bad |= curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_PIPEWAIT, 1L) != CURLE_OK;
	/* Small receive buffers: a thousand held streams each own one. */
	bad |= curl_easy_setopt(h, CURLOPT_BUFFERSIZE, (long)READ_BLOCK) != CURLE_OK;
	/* Over TLS libcurl copies each request (the key's line included) into an upload buffer it
	 * allocates and frees per request, 64 KiB by default: the smallest it takes is cheaper to
	 * allocate and to wipe. */
	bad |= curl_easy_setopt(h, CURLOPT_UPLOAD_BUFFERSIZE, 16384L) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header) != CURLE_OK;
	if (bad) {
		curl_easy_cleanup(h);
		return NULL;
	}
	return h;
}

static void
pool_put(struct px *px, CURL *h)
{
	/* Nothing of the finished request may be reachable from an idle handle. */
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, NULL);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
	curl_easy_setopt(h, CURLOPT_PRIVATE, NULL);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, NULL);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, NULL);
	if (px->npool < PX_POOL_MAX)
		px->pool[px->npool++] = h;
	else
		curl_easy_cleanup(h);
}

void
px_relay_pool_free(struct px *px)
{
	while (px->npool > 0)
		curl_easy_cleanup(px->pool[--px->npool]);
}

static void
wake(struct px_req *rq)
{
	if (rq->suspended) {
		rq->suspended = 0;
		rq->px->mhd_kick = 1;
		MHD_resume_connection(rq->conn);
	}
}

/* The client left while its request waited: end the upstream transfer now. */
static void
client_left(struct px_req *rq)
{
	struct px *px = rq->px;

	if (rq->in_multi) {
		curl_multi_remove_handle(px->multi, rq->h);
		rq->in_multi = 0;
		px->usage.aborted++;
	}
	if (!rq->up_done) {
		rq->up_done = rq->up_failed = 1;
		snprintf(rq->errbuf, sizeof(rq->errbuf), "the client went away");
	}
	if (rq->ws != NULL)
		px_ws_req_gone(rq->ws);
	rq->ws = NULL;
}

/* Park the connection until libcurl has something for it; 0, or -1 if its client is already gone
 * (the request is ended instead: the caller answers with an error, which closes the connection). */
static int
suspend(struct px_req *rq)
{
	if (rq->pc != NULL && rq->pc->gone) {
		client_left(rq);
		return -1;
	}
	if (!rq->suspended) {
		rq->suspended = 1;
		MHD_suspend_connection(rq->conn);
	}
	return 0;
}

/* A JSON error in the provider's own shape, so SDKs show it as an API error. msg is ours: fixed text
 * plus a path whose quotes, backslashes and control bytes are replaced. */
static enum MHD_Result
reply_error(struct px_req *rq, unsigned int status, const char *type, const char *msg)
{
	struct MHD_Response *resp;
	enum MHD_Result r;
	char body[768], clean[512];
	size_t i;
	int n;

	for (i = 0; msg[i] != '\0' && i < sizeof(clean) - 1; i++)
		clean[i] = (msg[i] == '"' || msg[i] == '\\' || (unsigned char)msg[i] < 0x20 ||
		    (unsigned char)msg[i] >= 0x7f) ? '?' : msg[i];
	clean[i] = '\0';
	if (strncmp(rq->px->pv->name, "anthropic", 9) == 0)
		n = snprintf(body, sizeof(body), "{\"type\":\"error\",\"error\":{\"type\":\"%s\","
		    "\"message\":\"akctl proxy: %s\"}}", type, clean);
	else
		n = snprintf(body, sizeof(body), "{\"error\":{\"message\":\"akctl proxy: %s\",\"type\":\"%s\","
		    "\"param\":null,\"code\":null}}", clean, type);
	if (n < 0 || (size_t)n >= sizeof(body))
		return MHD_NO;
	rq->state = RQ_LOCAL;
	if ((resp = MHD_create_response_from_buffer((size_t)n, body, MHD_RESPMEM_MUST_COPY)) == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, "content-type", "application/json");
	r = MHD_queue_response(rq->conn, status, resp);
	MHD_destroy_response(resp);
	return r;
}

static int
token_ok(const struct px *px, const char *v)
{
	return strlen(v) == px->token_len && sodium_memcmp(v, px->token, px->token_len) == 0;
}

/* Every credential the client sent must be the placeholder, and there must be one. */
static int
client_authorized(struct px_req *rq)
{
	const char *k = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, "x-api-key");
	const char *a = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, "authorization");
	int good = 0;

	if (k != NULL) {
		if (!token_ok(rq->px, k))
			return 0;
		good = 1;
	}
	if (a != NULL) {
		if (strncasecmp(a, "Bearer ", 7) != 0 || !token_ok(rq->px, a + 7))
			return 0;
		good = 1;
	}
	return good;
}

/* The Host the client named must be this machine: a name that resolves elsewhere (DNS rebinding, a
 * client that thinks we are a general proxy) is refused. */
static int
host_ok(struct px_req *rq)
{
	const char *h = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, "host");
	size_t n;

	if (h == NULL)
		return 1; /* HTTP/1.0 */
	if (h[0] == '[')
		return strncmp(h, "[::1]", 5) == 0 && (h[5] == '\0' || h[5] == ':');
	n = strcspn(h, ":");
	return (n == 9 && strncasecmp(h, "localhost", 9) == 0) || (n == 9 && strncmp(h, "127.0.0.1", 9) == 0);
}

/* The path must be plain (no dot segments, no encoded slash, dot or backslash, no empty segment),
 * so what the allow list sees is what the upstream serves. */
static const char *
path_problem(const struct px *px, const char *uri)
{
	const char *const *a;
	size_t plen = strcspn(uri, "?#"), i, alen;

	if (uri[0] != '/')
		return "only origin-form request targets are served (this is not a general proxy)";
	for (i = 0; i < plen; i++) {
		if (uri[i] == '\\' || (uri[i] == '/' && i + 1 < plen && uri[i + 1] == '/'))
			return "path not allowed";
		if (uri[i] == '%' && i + 2 < plen &&
		    (strncasecmp(uri + i, "%2e", 3) == 0 || strncasecmp(uri + i, "%2f", 3) == 0 ||
		    strncasecmp(uri + i, "%5c", 3) == 0))
			return "path not allowed";
		if (uri[i] == '/' && i + 1 < plen && uri[i + 1] == '.' &&
		    (i + 2 == plen || uri[i + 2] == '/' || (uri[i + 2] == '.' && (i + 3 == plen || uri[i + 3] == '/'))))
			return "path not allowed";
	}
	for (a = px->allow; *a != NULL; a++) {
		alen = strlen(*a);
		if (plen >= alen && strncmp(uri, *a, alen) == 0 && (plen == alen || uri[alen] == '/'))
			return NULL;
	}
	return "path not allowed";
}

/* Two passes over the client's headers: the first sizes one block for every forwarded line and its
 * list node (htext NULL), the second fills it. */
static enum MHD_Result
add_header_it(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct px_req *rq = cls;
	struct curl_slist *n;
	size_t klen = strlen(key), vlen, len;
	char *t;

	(void)kind;
	if (in_list(hop_req, key, klen))
		return MHD_YES;
	vlen = strlen(value);
	len = klen + vlen + 3;
	if (rq->htext == NULL) {
		rq->hnodes++;
		rq->hbytes += len;
		return MHD_YES;
	}
	if (klen == 12 && strcasecmp(key, "content-type") == 0)
		rq->has_ctype = 1;
	if (klen == 6 && strcasecmp(key, "accept") == 0)
		rq->has_accept = 1;
	/* "Name: value", or "Name;": libcurl's way to send a header with an empty value ("Name:" would
	 * delete it). */
	t = rq->htext;
	memcpy(t, key, klen);
	if (vlen != 0) {
		memcpy(t + klen, ": ", 2);
		memcpy(t + klen + 2, value, vlen + 1);
	} else {
		memcpy(t + klen, ";", 2);
	}
	n = &rq->hdrs[rq->hnodes++];
	n->data = t;
	n->next = n + 1;
	rq->htext += len;
	return MHD_YES;
}

/* The forwarded header list: the client's headers less hop-by-hop ones and its credential, blanks for
 * libcurl's own defaults the client did not ask for, and last the real key's line, linked, not copied
 * (it stays in the secure arena, shared by every request). */
static int
build_headers(struct px_req *rq)
{
	static char no_ctype[] = "Content-Type:", no_accept[] = "Accept:", no_expect[] = "Expect:";
	struct curl_slist *n;
	size_t extra = 3;

	rq->hnodes = rq->hbytes = 0;
	rq->htext = NULL;
	if (MHD_get_connection_values(rq->conn, MHD_HEADER_KIND, add_header_it, rq) < 0)
		return -1;
	if ((rq->hdrs = malloc((rq->hnodes + extra) * sizeof(*n) + rq->hbytes)) == NULL)
		return -1;
	rq->htext = (char *)(rq->hdrs + rq->hnodes + extra);
	rq->hnodes = 0;
	if (MHD_get_connection_values(rq->conn, MHD_HEADER_KIND, add_header_it, rq) < 0)
		return -1;
	n = &rq->hdrs[rq->hnodes];
	if (!rq->has_ctype)
		(n++)->data = no_ctype;
	if (!rq->has_accept)
		(n++)->data = no_accept;
	(n++)->data = no_expect;
	for (struct curl_slist *m = &rq->hdrs[rq->hnodes]; m < n; m++)
		m->next = m + 1;
	n[-1].next = &rq->keynode;
	rq->keynode.data = rq->px->key_header;
	rq->keynode.next = NULL;
	return 0;
}

static void
headers_ready(struct px_req *rq)
{
	struct curl_header *ct = NULL;

	if (rq->headers_ready)
		return;
	rq->headers_ready = 1;
	if (curl_easy_header(rq->h, "content-type", 0, CURLH_HEADER, -1, &ct) == CURLHE_OK && ct != NULL) {
		if (strncasecmp(ct->value, "text/event-stream", 17) == 0)
			rq->scan = px_scan_new(1);
		else if (strncasecmp(ct->value, "application/json", 16) == 0)
			rq->scan = px_scan_new(0);
	}
	wake(rq);
}

static size_t
on_header(char *data, size_t size, size_t nmemb, void *arg)
{
	struct px_req *rq = arg;
	size_t n = size * nmemb;
	long code = 0;

	/* The blank line ends a header block; 1xx blocks (100 Continue) are not the answer. */
	if (n <= 2 && (data[0] == '\r' || data[0] == '\n')) {
		curl_easy_getinfo(rq->h, CURLINFO_RESPONSE_CODE, &code);
		if (code >= 200)
			headers_ready(rq);
	}
	return n;
}

static size_t
on_data(char *data, size_t size, size_t nmemb, void *arg)
{
	struct px_req *rq = arg;
	size_t n = size * nmemb, ncap;
	char *nb;

	headers_ready(rq);
	if (rq->plen - rq->poff >= PEND_HIGH) {
		rq->paused = 1;
		return CURL_WRITEFUNC_PAUSE; /* libcurl keeps these bytes and offers them again */
	}
	if (rq->poff > 0 && rq->poff == rq->plen)
		rq->poff = rq->plen = 0;
	if (rq->plen + n > rq->pcap) {
		ncap = rq->pcap != 0 ? rq->pcap : SEND_BLOCK;
		while (ncap < rq->plen + n)
			ncap *= 2;
		if ((nb = realloc(rq->pend, ncap)) == NULL)
			return 0;
		rq->pend = nb;
		rq->pcap = ncap;
	}
	memcpy(rq->pend + rq->plen, data, n);
	rq->plen += n;
	px_scan_feed(rq->scan, data, n);
	wake(rq);
	return n;
}

/* libmicrohttpd asks for the next bytes of the answer: hand over what has arrived, or suspend until
 * libcurl brings more. Returning what we have at once is what keeps a stream unbuffered. */
static ssize_t
reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct px_req *rq = cls;
	size_t n;

	(void)pos;
	if (rq->paused && rq->plen - rq->poff < PEND_LOW) {
		rq->paused = 0;
		curl_easy_pause(rq->h, CURLPAUSE_CONT);
	}
	if (rq->plen > rq->poff) {
		n = rq->plen - rq->poff;
		if (n > max)
			n = max;
		memcpy(buf, rq->pend + rq->poff, n);
		rq->poff += n;
		if (rq->poff == rq->plen) {
			/* Drained: a held stream waits seconds between events, so it keeps no buffer. */
			free(rq->pend);
			rq->pend = NULL;
			rq->poff = rq->plen = rq->pcap = 0;
		}
		return (ssize_t)n;
	}
	if (rq->up_done)
		return rq->up_failed ? MHD_CONTENT_READER_END_WITH_ERROR : MHD_CONTENT_READER_END_OF_STREAM;
	if (suspend(rq) != 0)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	return 0;
}

static int
start_upstream(struct px_req *rq, const char *method)
{
	struct px *px = rq->px;
	char url[PX_URL_MAX * 2];
	int bad = 0;

	if ((size_t)snprintf(url, sizeof(url), "%s%s", px->upstream, rq->uri + px->strip_len) >= sizeof(url))
		return -1;
	if (build_headers(rq) != 0 || (rq->h = pool_get(px)) == NULL)
		return -1;
	bad |= curl_easy_setopt(rq->h, CURLOPT_URL, url) != CURLE_OK;
	bad |= curl_easy_setopt(rq->h, CURLOPT_HTTPHEADER, rq->hdrs) != CURLE_OK;
	bad |= curl_easy_setopt(rq->h, CURLOPT_WRITEDATA, rq) != CURLE_OK;
	bad |= curl_easy_setopt(rq->h, CURLOPT_HEADERDATA, rq) != CURLE_OK;
	bad |= curl_easy_setopt(rq->h, CURLOPT_ERRORBUFFER, rq->errbuf) != CURLE_OK;
	bad |= curl_easy_setopt(rq->h, CURLOPT_PRIVATE, rq) != CURLE_OK;
	/* A reused handle carries the last request's method: set all of it. */
	bad |= curl_easy_setopt(rq->h, CURLOPT_NOBODY, 0L) != CURLE_OK;
	bad |= curl_easy_setopt(rq->h, CURLOPT_CUSTOMREQUEST, NULL) != CURLE_OK;
	if (strcmp(method, "HEAD") == 0) {
		bad |= curl_easy_setopt(rq->h, CURLOPT_NOBODY, 1L) != CURLE_OK;
	} else if (strcmp(method, "GET") == 0) {
		bad |= curl_easy_setopt(rq->h, CURLOPT_HTTPGET, 1L) != CURLE_OK;
	} else {
		bad |= curl_easy_setopt(rq->h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->blen) != CURLE_OK;
		bad |= curl_easy_setopt(rq->h, CURLOPT_POSTFIELDS, rq->body != NULL ? rq->body : "") != CURLE_OK;
		if (strcmp(method, "POST") != 0)
			bad |= curl_easy_setopt(rq->h, CURLOPT_CUSTOMREQUEST, method) != CURLE_OK;
	}
	if (bad || curl_multi_add_handle(px->multi, rq->h) != CURLM_OK)
		return -1;
	rq->in_multi = 1;
	px->usage.requests++;
	return 0;
}

static enum MHD_Result
queue_answer(struct px_req *rq, const char *method)
{
	struct MHD_Response *resp;
	struct curl_header *hh, *prev = NULL;
	enum MHD_Result r;
	curl_off_t len = -1;
	long code = 0;
	uint64_t size;

	if (!rq->headers_ready) {
		/* Only a failure ends a transfer before its headers. The reason names the upstream, no key. */
		return reply_error(rq, 502, "api_error", rq->errbuf[0] != '\0' ? rq->errbuf : "upstream failed");
	}
	curl_easy_getinfo(rq->h, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_getinfo(rq->h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &len);
	size = len >= 0 ? (uint64_t)len : MHD_SIZE_UNKNOWN;
	if (code == 204 || code == 304 || strcmp(method, "HEAD") == 0)
		size = len >= 0 ? (uint64_t)len : 0;
	rq->state = RQ_STREAM;
	if (rq->up_done && !rq->up_failed && size != 0 && rq->poff == 0 && rq->pend != NULL) {
		/* All of it is here already (a short JSON answer): one buffer, sent with the headers in
		 * one write. */
		resp = MHD_create_response_from_buffer_with_free_callback(rq->plen, rq->pend, free);
		if (resp != NULL)
			rq->pend = NULL;
		rq->plen = rq->pcap = 0;
	} else {
		resp = MHD_create_response_from_callback(size, SEND_BLOCK, reader, rq, NULL);
	}
	if (resp == NULL)
		return MHD_NO;
	while ((hh = curl_easy_nextheader(rq->h, CURLH_HEADER, -1, prev)) != NULL) {
		prev = hh;
		if (!in_list(hop_resp, hh->name, strlen(hh->name)))
			(void)MHD_add_response_header(resp, hh->name, hh->value);
	}
	r = MHD_queue_response(rq->conn, (unsigned int)code, resp);
	MHD_destroy_response(resp);
	return r;
}

void *
px_uri_cb(void *cls, const char *uri, struct MHD_Connection *connection)
{
	struct px *px = cls;
	struct px_req *rq = calloc(1, sizeof(*rq));
	const union MHD_ConnectionInfo *ci;

	if (rq == NULL)
		return NULL;
	if ((rq->uri = strdup(uri)) == NULL) {
		free(rq);
		return NULL;
	}
	rq->px = px;
	rq->conn = connection;
	if ((ci = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT)) != NULL &&
	    ci->socket_context != NULL) {
		rq->pc = ci->socket_context;
		rq->pc->cur = rq;
	}
	rq->next = px->live;
	if (px->live != NULL)
		px->live->prev = rq;
	px->live = rq;
	px->nlive++;
	px->trim_due = 1;
	px->busy_ms = px_now_ms();
	return rq;
}

enum MHD_Result
px_access_cb(void *cls, struct MHD_Connection *connection, const char *url, const char *method,
    const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	struct px_req *rq = *con_cls;
	struct px *px = cls;
	const char *why;
	size_t ncap;
	char *nb, msg[300];

	(void)url;
	(void)version;
	if (rq == NULL)
		return MHD_NO;
	switch (rq->state) {
	case RQ_NEW:
		rq->state = RQ_BODY;
		if (!client_authorized(rq)) {
			px->usage.refused++;
			return reply_error(rq, 401, "authentication_error",
			    "missing or wrong placeholder key (use the one akctl gave this session)");
		}
		if (!host_ok(rq)) {
			px->usage.refused++;
			return reply_error(rq, 403, "permission_error", "host not allowed");
		}
		if ((why = path_problem(px, rq->uri)) != NULL) {
			px->usage.refused++;
			snprintf(msg, sizeof(msg), "%s: %.200s", why, rq->uri[0] == '/' ? rq->uri : "(absolute URI)");
			msg[strcspn(msg, "?")] = '\0'; /* the query may carry anything: not echoed */
			return reply_error(rq, 403, "permission_error", msg);
		}
		if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0 && strcmp(method, "DELETE") != 0 &&
		    strcmp(method, "HEAD") != 0) {
			px->usage.refused++;
			return reply_error(rq, 405, "invalid_request_error", "method not allowed");
		}
		return MHD_YES;
	case RQ_BODY:
		if (*upload_data_size > 0) {
			if (rq->blen + *upload_data_size > PX_BODY_MAX) {
				*upload_data_size = 0;
				px->usage.refused++;
				return reply_error(rq, 413, "request_too_large", "request body too large");
			}
			if (rq->blen + *upload_data_size > rq->bcap) {
				ncap = rq->bcap != 0 ? rq->bcap : 4096;
				while (ncap < rq->blen + *upload_data_size)
					ncap *= 2;
				if ((nb = realloc(rq->body, ncap)) == NULL)
					return MHD_NO;
				rq->body = nb;
				rq->bcap = ncap;
			}
			memcpy(rq->body + rq->blen, upload_data, *upload_data_size);
			rq->blen += *upload_data_size;
			*upload_data_size = 0;
			return MHD_YES;
		}
		if (px_is_upgrade(connection)) {
			if (strcmp(method, "GET") != 0 || rq->blen != 0) {
				px->usage.refused++;
				return reply_error(rq, 400, "invalid_request_error", "a WebSocket upgrade is a GET");
			}
			if (px_ws_start(px, rq, connection, rq->uri, &rq->ws) != 0) {
				px->usage.failed++;
				return reply_error(rq, 500, "api_error", "cannot start the upstream connection");
			}
			px->usage.requests++;
		} else if (start_upstream(rq, method) != 0) {
			px->usage.failed++;
			return reply_error(rq, 500, "api_error", "cannot start the upstream request");
		} else {
			rq->state = RQ_WAIT;
			/* Send it now, not on the loop's next turn: a short answer from a reused connection
			 * is often back by the time libcurl looks (the upstream runs as soon as it is
			 * written to), and is then queued at once, with no suspend and resume of the
			 * connection (two epoll_ctl calls) and no further turn of the loop. */
			px_curl_run_due(px);
			px_relay_reap(px);
			if (rq->headers_ready || rq->up_done)
				return queue_answer(rq, method);
		}
		rq->state = RQ_WAIT;
		if (suspend(rq) != 0)
			return reply_error(rq, 502, "api_error", rq->errbuf);
		return MHD_YES;
	case RQ_WAIT:
		if (rq->ws != NULL && !rq->up_done) {
			if (suspend(rq) != 0)
				return reply_error(rq, 502, "api_error", rq->errbuf);
			return MHD_YES;
		}
		if (rq->ws != NULL && rq->up_failed)
			return reply_error(rq, 502, "api_error", rq->errbuf);
		if (rq->ws != NULL)
			return px_ws_answer(rq->ws, connection);
		if (!rq->headers_ready && !rq->up_done) {
			if (suspend(rq) != 0)
				return reply_error(rq, 502, "api_error", rq->errbuf);
			return MHD_YES;
		}
		return queue_answer(rq, method);
	case RQ_STREAM:
	case RQ_LOCAL:
		*upload_data_size = 0; /* a refused request's remaining body is dropped */
		return MHD_YES;
	}
	return MHD_NO;
}

void
px_completed_cb(void *cls, struct MHD_Connection *connection, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct px_req *rq = *con_cls;

	(void)cls;
	(void)connection;
	(void)toe;
	if (rq == NULL)
		return;
	if (rq->in_multi && !rq->up_done)
		rq->px->usage.aborted++; /* the client left first: the upstream transfer ends here */
	*con_cls = NULL;
	req_free(rq);
}

void
px_relay_reap(struct px *px)
{
	struct px_req *rq;
	CURLMsg *m;
	int left;
	char *p = NULL;

	while ((m = curl_multi_info_read(px->multi, &left)) != NULL) {
		if (m->msg != CURLMSG_DONE || px_ws_connected(px, m->easy_handle, m->data.result))
			continue;
		if (curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &p) != CURLE_OK || p == NULL)
			continue;
		rq = (struct px_req *)(void *)p;
		rq->up_done = 1;
		rq->up_failed = m->data.result != CURLE_OK;
		if (rq->up_failed) {
			px->usage.failed++;
			if (rq->errbuf[0] == '\0')
				snprintf(rq->errbuf, sizeof(rq->errbuf), "%s", curl_easy_strerror(m->data.result));
		}
		curl_multi_remove_handle(px->multi, rq->h);
		rq->in_multi = 0;
		/* The usage is counted when the request is freed (req_free), after the answer has gone
		 * out: parsing it is not on the client's path. */
		wake(rq);
	}
}

void
px_relay_abort_all(struct px *px)
{
	struct px_req *rq;

	for (rq = px->live; rq != NULL; rq = rq->next) {
		if (rq->in_multi) {
			curl_multi_remove_handle(px->multi, rq->h);
			rq->in_multi = 0;
			rq->up_done = rq->up_failed = 1;
			snprintf(rq->errbuf, sizeof(rq->errbuf), "the proxy is stopping");
		}
		wake(rq);
	}
}

int
px_hop_request_header(const char *name)
{
	return in_list(hop_req, name, strlen(name));
}

void
px_req_forget_ws(struct px_req *rq)
{
	rq->ws = NULL;
}

void
px_req_ready(struct px_req *rq, int failed, const char *why)
{
	rq->up_done = 1;
	rq->up_failed = failed;
	if (why != NULL)
		snprintf(rq->errbuf, sizeof(rq->errbuf), "%s", why);
	wake(rq);
}

void
px_conn_cb(void *cls, struct MHD_Connection *connection, void **socket_context,
    enum MHD_ConnectionNotificationCode toe)
{
	struct px *px = cls;
	struct px_conn *pc = *socket_context;
	const union MHD_ConnectionInfo *ci;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		if ((ci = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD)) == NULL ||
		    (pc = calloc(1, sizeof(*pc))) == NULL)
			return; /* served all the same, noticed leaving only at the next bytes */
		pc->w.kind = PXW_CLIENT;
		pc->w.fd = ci->connect_fd;
		pc->w.owner = pc;
		/* Edge-triggered hang-up only: libmicrohttpd does the reading. */
		if (px_watch_set(px, &pc->w, EPOLLRDHUP | EPOLLET) != 0) {
			free(pc);
			return;
		}
		*socket_context = pc;
		return;
	}
	if (pc == NULL)
		return;
	px_watch_del(px, &pc->w);
	if (pc->cur != NULL)
		pc->cur->pc = NULL;
	*socket_context = NULL;
	free(pc);
}

void
px_conn_gone(struct px *px, struct px_watch *w)
{
	struct px_conn *pc = w->owner;
	struct px_req *rq = pc->cur;

	(void)px;
	if (pc->gone)
		return;
	pc->gone = 1;
	if (rq != NULL && rq->suspended) {
		client_left(rq);
		wake(rq);
	}
}

/* libcurl says which of its sockets to watch for what: each gets a watch of its own. A watch let go
 * of is freed only after the current batch of events, which may still name it. */
int
px_curl_socket_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct px *px = userp;
	struct px_watch *w = socketp;
	uint32_t ev = 0;

	(void)e;
	if (what == CURL_POLL_REMOVE) {
		if (w != NULL) {
			px_watch_del(px, w);
			curl_multi_assign(px->multi, s, NULL);
			w->fd = -1;
			w->dead = px->dead;
			px->dead = w;
		}
		return 0;
	}
	if (w == NULL) {
		if ((w = calloc(1, sizeof(*w))) == NULL)
			return -1;
		w->kind = PXW_CURL;
		w->fd = s;
		curl_multi_assign(px->multi, s, w);
	}
	if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
		ev |= EPOLLIN;
	if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
		ev |= EPOLLOUT;
	return px_watch_set(px, w, ev) == 0 ? 0 : -1;
}

int
px_curl_timer_cb(CURLM *m, long timeout_ms, void *userp)
{
	struct px *px = userp;

	(void)m;
	px->curl_due = timeout_ms < 0 ? -1 : px_now_ms() + timeout_ms;
	return 0;
}
