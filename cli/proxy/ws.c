/* ws.c - WebSocket upgrades through the proxy: the client's `Upgrade: websocket` request, checked like
 * any other, goes upstream with the real key; after the upstream's 101 both connections are spliced
 * and bytes relayed both ways until either side closes. Frames are not looked at.
 *
 * Debian's libcurl has no WebSocket support, so libcurl only opens the upstream connection (TCP and
 * verified TLS, CURLOPT_CONNECT_ONLY) and carries bytes (curl_easy_send/recv); the upgrade request is
 * written here from the client's parsed headers, and of the upstream's answer only the status line and
 * the header lines of one bounded block are split, to pass them on to the client. libmicrohttpd hands
 * over the client socket after our 101 (MHD_create_response_for_upgrade).
 *
 * The key goes out straight from the secure arena (its own send), never copied into a buffer here.
 */
#include <sys/epoll.h>
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "proxy.h"

#define WS_HEAD_MAX (16u << 10) /* the upstream's 101 header block */
#define WS_BUF (64u << 10)      /* each direction's bytes in flight */

enum ws_state { WS_CONNECTING, WS_SENDING, WS_READING, WS_ANSWERED, WS_RELAY, WS_DEAD };

struct px_ws {
	struct px_ws *next;
	struct px *px;
	struct px_req *rq;             /* NULL once libmicrohttpd is done with the request */
	enum ws_state st;
	CURL *h;
	struct px_watch wu, wc;        /* duplicates of the upstream and client sockets, for our epoll */
	int cfd;                       /* the client socket (libmicrohttpd's to close) */
	struct MHD_UpgradeResponseHandle *urh;
	char *head;                    /* request line and headers, without the key's line */
	size_t seg, segoff;            /* sending: segment (head, key line, end) and offset in it */
	char resp[WS_HEAD_MAX];
	size_t rlen, rend;             /* received, and where the header block ends */
	int c_eof, u_eof;
	size_t c2u_len, u2c_len;
	char c2u[WS_BUF], u2c[WS_BUF];
};

static const char *const hop_resp[] = {
	"connection", "upgrade", "keep-alive", "content-length", "transfer-encoding", NULL,
};

int
px_is_upgrade(struct MHD_Connection *conn)
{
	const char *u = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "upgrade");

	return u != NULL && strcasecmp(u, "websocket") == 0;
}

struct head_build {
	char *buf;
	size_t len, cap;
	int bad;
};

static void
hb_add(struct head_build *b, const char *a, const char *c, const char *d)
{
	size_t n = strlen(a) + strlen(c) + strlen(d);
	char *nb;

	if (b->bad)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t ncap = b->cap != 0 ? b->cap : 1024;

		while (ncap < b->len + n + 1)
			ncap *= 2;
		if ((nb = realloc(b->buf, ncap)) == NULL) {
			b->bad = 1;
			return;
		}
		b->buf = nb;
		b->cap = ncap;
	}
	memcpy(b->buf + b->len, a, strlen(a));
	memcpy(b->buf + b->len + strlen(a), c, strlen(c));
	memcpy(b->buf + b->len + strlen(a) + strlen(c), d, strlen(d));
	b->len += n;
	b->buf[b->len] = '\0';
}

static enum MHD_Result
head_it(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct head_build *b = cls;

	(void)kind;
	if (!px_hop_request_header(key)) {
		hb_add(b, key, ": ", value);
		hb_add(b, "\r\n", "", "");
	}
	return MHD_YES;
}

static void
ws_set(struct px_ws *ws, struct px_watch *w, uint32_t ev)
{
	if (w->fd >= 0)
		(void)px_watch_set(ws->px, w, ev);
}

/* Stop relaying: close our side of both connections (the rest is freed by px_ws_sweep). */
static void
ws_end(struct px_ws *ws)
{
	struct px *px = ws->px;

	if (ws->st == WS_DEAD)
		return;
	ws->st = WS_DEAD;
	if (ws->wu.fd >= 0) {
		px_watch_del(px, &ws->wu);
		close(ws->wu.fd);
		ws->wu.fd = -1;
	}
	if (ws->wc.fd >= 0) {
		px_watch_del(px, &ws->wc);
		close(ws->wc.fd);
		ws->wc.fd = -1;
	}
	if (ws->urh != NULL) {
		MHD_upgrade_action(ws->urh, MHD_UPGRADE_ACTION_CLOSE);
		ws->urh = NULL;
		px->mhd_kick = 1;
	}
	if (ws->h != NULL) {
		curl_multi_remove_handle(px->multi, ws->h);
		curl_easy_cleanup(ws->h); /* closes the upstream connection */
		ws->h = NULL;
	}
}

static void
ws_fail(struct px_ws *ws, const char *why)
{
	if (ws->rq != NULL)
		px_req_ready(ws->rq, 1, why);
	ws_end(ws);
}

int
px_ws_start(struct px *px, struct px_req *rq, struct MHD_Connection *conn, const char *uri,
    struct px_ws **out)
{
	const char *ca = getenv("AKCTL_CA_BUNDLE");
	struct head_build b = { NULL, 0, 0, 0 };
	struct px_ws *ws = NULL;
	char url[PX_URL_MAX * 2];
	char *host = NULL, *port = NULL, *path = NULL, *query = NULL;
	CURLU *u = NULL;
	int r = -1, bad = 0;

	if ((size_t)snprintf(url, sizeof(url), "%s%s", px->upstream, uri + px->strip_len) >= sizeof(url))
		goto out;
	if ((u = curl_url()) == NULL || curl_url_set(u, CURLUPART_URL, url, CURLU_PATH_AS_IS) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK)
		goto out;
	(void)curl_url_get(u, CURLUPART_PORT, &port, 0);
	(void)curl_url_get(u, CURLUPART_QUERY, &query, 0);
	hb_add(&b, "GET ", path, query != NULL ? "?" : "");
	hb_add(&b, query != NULL ? query : "", " HTTP/1.1\r\nHost: ", host);
	hb_add(&b, port != NULL ? ":" : "", port != NULL ? port : "", "\r\n");
	hb_add(&b, "Upgrade: websocket\r\nConnection: Upgrade\r\n", "", "");
	if (MHD_get_connection_values(conn, MHD_HEADER_KIND, head_it, &b) < 0 || b.bad)
		goto out;
	if ((ws = calloc(1, sizeof(*ws))) == NULL)
		goto out;
	ws->px = px;
	ws->rq = rq;
	ws->wu.fd = ws->wc.fd = ws->cfd = -1;
	ws->wu.kind = ws->wc.kind = PXW_WS;
	ws->wu.owner = ws->wc.owner = ws;
	ws->head = b.buf;
	b.buf = NULL;
	if ((ws->h = curl_easy_init()) == NULL)
		goto out;
	bad |= curl_easy_setopt(ws->h, CURLOPT_URL, url) != CURLE_OK;
	bad |= curl_easy_setopt(ws->h, CURLOPT_CONNECT_ONLY, 1L) != CURLE_OK;
	/* Only HTTP/1.1 can upgrade: never let ALPN pick HTTP/2. */
	bad |= curl_easy_setopt(ws->h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1) != CURLE_OK;
	bad |= curl_easy_setopt(ws->h, CURLOPT_SHARE, px->share) != CURLE_OK;
	bad |= curl_easy_setopt(ws->h, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK;
	bad |= curl_easy_setopt(ws->h, CURLOPT_PROXY, "") != CURLE_OK;
	bad |= curl_easy_setopt(ws->h, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK;
	bad |= curl_easy_setopt(ws->h, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK;
	bad |= curl_easy_setopt(ws->h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2) != CURLE_OK;
	if (ca != NULL && ca[0] != '\0')
		bad |= curl_easy_setopt(ws->h, CURLOPT_CAINFO, ca) != CURLE_OK;
	bad |= curl_easy_setopt(ws->h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
	bad |= curl_easy_setopt(ws->h, CURLOPT_CONNECTTIMEOUT_MS, 10000L) != CURLE_OK;
	bad |= curl_easy_setopt(ws->h, CURLOPT_TCP_KEEPALIVE, 1L) != CURLE_OK;
	if (bad || curl_multi_add_handle(px->multi, ws->h) != CURLM_OK)
		goto out;
	ws->next = px->ws;
	px->ws = ws;
	*out = ws;
	ws = NULL;
	r = 0;
out:
	if (ws != NULL) {
		if (ws->h != NULL)
			curl_easy_cleanup(ws->h);
		free(ws->head);
		free(ws);
	}
	free(b.buf);
	curl_free(host);
	curl_free(port);
	curl_free(path);
	curl_free(query);
	curl_url_cleanup(u);
	return r;
}

/* Find the end of the upstream's header block; check it switched protocols. 1 done, 0 more, -1 bad. */
static int
ws_parse_status(struct px_ws *ws, char *why, size_t whylen)
{
	char *end;

	ws->resp[ws->rlen] = '\0';
	if ((end = strstr(ws->resp, "\r\n\r\n")) == NULL) {
		if (ws->rlen >= sizeof(ws->resp) - 1) {
			snprintf(why, whylen, "the upstream's WebSocket answer is too large");
			return -1;
		}
		return 0;
	}
	ws->rend = (size_t)(end - ws->resp) + 4;
	if (strncmp(ws->resp, "HTTP/1.1 101", 12) != 0 || (ws->resp[12] != ' ' && ws->resp[12] != '\r')) {
		snprintf(why, whylen, "the upstream answered %.3s to the WebSocket upgrade",
		    strncmp(ws->resp, "HTTP/", 5) == 0 && strlen(ws->resp) > 12 ? ws->resp + 9 : "???");
		return -1;
	}
	return 1;
}

/* The handshake upstream: send the request (head, the key's line, the blank line), read the answer. */
static void
ws_handshake(struct px_ws *ws)
{
	struct px *px = ws->px;
	const char *seg[3] = { ws->head, px->key_header, "\r\n\r\n" };
	char why[160];
	CURLcode rc;
	size_t n;
	int k;

	while (ws->st == WS_SENDING) {
		const char *p = seg[ws->seg] + ws->segoff;
		size_t len = strlen(p);

		rc = curl_easy_send(ws->h, p, len, &n);
		if (rc == CURLE_AGAIN) {
			ws_set(ws, &ws->wu, EPOLLOUT);
			return;
		}
		if (rc != CURLE_OK) {
			ws_fail(ws, curl_easy_strerror(rc));
			return;
		}
		ws->segoff += n;
		if (ws->segoff == strlen(seg[ws->seg])) {
			ws->segoff = 0;
			if (++ws->seg == 3)
				ws->st = WS_READING;
		}
	}
	while (ws->st == WS_READING) {
		rc = curl_easy_recv(ws->h, ws->resp + ws->rlen, sizeof(ws->resp) - 1 - ws->rlen, &n);
		if (rc == CURLE_AGAIN) {
			ws_set(ws, &ws->wu, EPOLLIN);
			return;
		}
		if (rc != CURLE_OK || n == 0) {
			ws_fail(ws, rc != CURLE_OK ? curl_easy_strerror(rc) : "the upstream closed the connection");
			return;
		}
		ws->rlen += n;
		if ((k = ws_parse_status(ws, why, sizeof(why))) < 0) {
			ws_fail(ws, why);
			return;
		}
		if (k == 0)
			continue;
		/* Frames the upstream sent at once go to the client after our 101. */
		memcpy(ws->u2c, ws->resp + ws->rend, ws->rlen - ws->rend);
		ws->u2c_len = ws->rlen - ws->rend;
		ws->st = WS_ANSWERED;
		ws_set(ws, &ws->wu, 0);
		if (ws->rq != NULL)
			px_req_ready(ws->rq, 0, NULL);
		else
			ws_end(ws);
	}
}

int
px_ws_connected(struct px *px, CURL *h, CURLcode result)
{
	struct px_ws *ws;
	curl_socket_t s = CURL_SOCKET_BAD;

	for (ws = px->ws; ws != NULL && ws->h != h; ws = ws->next)
		;
	if (ws == NULL)
		return 0;
	if (ws->st != WS_CONNECTING)
		return 1;
	if (result != CURLE_OK) {
		ws_fail(ws, curl_easy_strerror(result));
		return 1;
	}
	/* Our own descriptor for the same socket: libcurl's watches and ours never collide. */
	if (curl_easy_getinfo(h, CURLINFO_ACTIVESOCKET, &s) != CURLE_OK || s == CURL_SOCKET_BAD ||
	    (ws->wu.fd = fcntl(s, F_DUPFD_CLOEXEC, 3)) < 0) {
		ws_fail(ws, "cannot use the upstream connection");
		return 1;
	}
	ws->st = WS_SENDING;
	ws_handshake(ws);
	return 1;
}

/* Move bytes both ways until nothing moves; then watch for what would move them again. */
static void
ws_pump(struct px_ws *ws)
{
	int moved = 1;
	ssize_t k;
	size_t n;
	CURLcode rc;

	while (moved && ws->st == WS_RELAY) {
		moved = 0;
		if (!ws->c_eof && ws->c2u_len < WS_BUF) {
			k = recv(ws->cfd, ws->c2u + ws->c2u_len, WS_BUF - ws->c2u_len, 0);
			if (k > 0) {
				ws->c2u_len += (size_t)k;
				moved = 1;
			} else if (k == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
				ws->c_eof = 1;
			}
		}
		if (ws->c2u_len > 0 && !ws->u_eof) {
			rc = curl_easy_send(ws->h, ws->c2u, ws->c2u_len, &n);
			if (rc == CURLE_OK && n > 0) {
				memmove(ws->c2u, ws->c2u + n, ws->c2u_len - n);
				ws->c2u_len -= n;
				moved = 1;
			} else if (rc != CURLE_AGAIN) {
				ws->u_eof = 1;
			}
		}
		if (!ws->u_eof && ws->u2c_len < WS_BUF) {
			rc = curl_easy_recv(ws->h, ws->u2c + ws->u2c_len, WS_BUF - ws->u2c_len, &n);
			if (rc == CURLE_OK && n > 0) {
				ws->u2c_len += n;
				moved = 1;
			} else if (rc != CURLE_AGAIN) {
				ws->u_eof = 1;
			}
		}
		if (ws->u2c_len > 0 && !ws->c_eof) {
			k = send(ws->cfd, ws->u2c, ws->u2c_len, MSG_NOSIGNAL);
			if (k > 0) {
				memmove(ws->u2c, ws->u2c + k, ws->u2c_len - (size_t)k);
				ws->u2c_len -= (size_t)k;
				moved = 1;
			} else if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
				ws->c_eof = 1;
			}
		}
	}
	/* Either side gone, and what it left for the other side delivered (or undeliverable): done. */
	if ((ws->c_eof && (ws->c2u_len == 0 || ws->u_eof)) || (ws->u_eof && (ws->u2c_len == 0 || ws->c_eof))) {
		ws_end(ws);
		return;
	}
	ws_set(ws, &ws->wc, (!ws->c_eof && ws->c2u_len < WS_BUF ? EPOLLIN : 0) | (ws->u2c_len > 0 ? EPOLLOUT : 0));
	ws_set(ws, &ws->wu, (!ws->u_eof && ws->u2c_len < WS_BUF ? EPOLLIN : 0) | (ws->c2u_len > 0 ? EPOLLOUT : 0));
}

static void
upgraded(void *cls, struct MHD_Connection *connection, void *req_cls, const char *extra_in,
    size_t extra_in_size, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
	struct px_ws *ws = cls;

	(void)connection;
	(void)req_cls;
	ws->urh = urh;
	ws->cfd = sock;
	if (ws->st != WS_ANSWERED || extra_in_size > WS_BUF || (ws->wc.fd = fcntl(sock, F_DUPFD_CLOEXEC, 3)) < 0) {
		ws_end(ws);
		return;
	}
	memcpy(ws->c2u, extra_in, extra_in_size);
	ws->c2u_len = extra_in_size;
	ws->st = WS_RELAY;
	ws_pump(ws);
}

enum MHD_Result
px_ws_answer(struct px_ws *ws, struct MHD_Connection *conn)
{
	struct MHD_Response *resp;
	enum MHD_Result r;
	char *line, *next, *colon, *v;
	size_t i;
	int skip;

	if ((resp = MHD_create_response_for_upgrade(upgraded, ws)) == NULL)
		return MHD_NO;
	(void)MHD_add_response_header(resp, "Upgrade", "websocket");
	/* The upstream's header lines (Sec-WebSocket-Accept, -Protocol, -Extensions...): split at the
	 * colon, nothing more. */
	ws->resp[ws->rend - 2] = '\0';
	line = strstr(ws->resp, "\r\n");
	for (; line != NULL && *line != '\0'; line = next) {
		line += 2;
		if ((next = strstr(line, "\r\n")) != NULL)
			*next = '\0';
		if ((colon = strchr(line, ':')) == NULL || colon == line)
			break;
		*colon = '\0';
		for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
			;
		for (i = 0, skip = 0; hop_resp[i] != NULL; i++)
			skip |= strcasecmp(line, hop_resp[i]) == 0;
		if (!skip)
			(void)MHD_add_response_header(resp, line, v);
		if (next == NULL)
			break;
		*next = '\r';
	}
	r = MHD_queue_response(conn, MHD_HTTP_SWITCHING_PROTOCOLS, resp);
	MHD_destroy_response(resp);
	return r;
}

void
px_ws_event(struct px *px, struct px_watch *w, uint32_t events)
{
	struct px_ws *ws = w->owner;

	(void)px;
	(void)events;
	if (ws->st == WS_SENDING || ws->st == WS_READING)
		ws_handshake(ws);
	else if (ws->st == WS_RELAY)
		ws_pump(ws);
}

void
px_ws_req_gone(struct px_ws *ws)
{
	ws->rq = NULL;
	if (ws->st != WS_RELAY)
		ws_end(ws);
}

void
px_ws_sweep(struct px *px, int all)
{
	struct px_ws **pp = &px->ws, *ws;

	while ((ws = *pp) != NULL) {
		if (all) {
			ws_end(ws);
			if (ws->rq != NULL)
				px_req_forget_ws(ws->rq);
			ws->rq = NULL;
		}
		if (ws->st == WS_DEAD && ws->rq == NULL) {
			*pp = ws->next;
			free(ws->head);
			free(ws);
		} else {
			pp = &ws->next;
		}
	}
}
