/* proxy.h - akctl-proxy's internal interfaces: a loopback HTTP server (libmicrohttpd) that checks a
 * per-session placeholder token, swaps in the real key and relays to one upstream over libcurl.
 *
 * One event loop per worker thread (main.c; --workers, by default one per two CPUs, since the clients
 * share the machine): each has its own epoll set, libmicrohttpd daemon, libcurl multi handle with its
 * connection cache, and usage counters. New clients are dealt round the loops in turn: the loop that
 * accepts one from the shared listening socket (EPOLLEXCLUSIVE: one loop is woken) serves it or
 * passes it down that loop's hand-off pipe. A loop watches its libmicrohttpd epoll fd, each socket
 * libcurl asks it to watch (the multi-socket API: only ready transfers are touched), the client
 * sockets (to notice a client that leaves while its request waits) and relayed WebSocket sockets;
 * the main thread's loop also watches a signalfd and reports usage to the agent. A connection lives
 * on one loop from hand-over to close, so loops share nothing but the read-only configuration, the
 * turn counter (atomic) and the usage totals (under a mutex). Secrets (the key, its header line, the placeholder) live in
 * the secure arena, allocated once at start, read-only while workers run, and wiped at exit; nothing
 * here ever logs a request or response body.
 */
#ifndef AK_PROXY_H
#define AK_PROXY_H

#include <stddef.h>
#include <pthread.h>
#include <stdint.h>

#include <curl/curl.h>
#include <microhttpd.h>

#include "ak_provider.h"

#define PX_URL_MAX 2048
#define PX_BODY_MAX (32u << 20) /* request bodies: the provider's own cap for a message request */

/* Token counts read from responses (usage.c). */
struct px_usage {
	uint64_t requests;      /* forwarded upstream */
	uint64_t refused;       /* answered here: wrong token, path or host */
	uint64_t failed;        /* upstream unreachable or cut off */
	uint64_t aborted;       /* the client went away before the end */
	uint64_t input_tokens;
	uint64_t output_tokens;
	uint64_t cache_read_tokens;
	uint64_t cache_creation_tokens;
};

/* A descriptor in the loop's epoll set; epoll_event.data.ptr points at one. */
enum px_wkind { PXW_SIGNAL, PXW_STOP, PXW_LISTEN, PXW_HANDOFF, PXW_MHD, PXW_CURL, PXW_CLIENT, PXW_WS };
struct px_watch {
	enum px_wkind kind;
	int fd;
	int in_set;             /* added to the epoll set */
	void *owner;            /* PXW_CLIENT: struct px_conn; PXW_WS: struct px_ws */
	struct px_watch *dead;  /* PXW_CURL: on the free-after-this-batch list */
};

#define PX_POOL_MAX 64 /* idle easy handles kept for reuse */

#define PX_WORKERS_MAX 16

/* What the workers share: the usage totals and the descriptors every loop watches. */
struct px_shared {
	pthread_mutex_t lock;       /* guards total */
	struct px_usage total;      /* the sum of what the workers have published */
	int lfd;                    /* the listening socket */
	int stop_fd;                /* eventfd, written once to stop every loop (never read, so it stays
	                               readable for all) */
	int nworkers;
	unsigned next;              /* accepted clients so far (atomic): whose turn the next one is */
	int handoff[PX_WORKERS_MAX]; /* each loop's pipe (write end) for clients another loop accepted */
};

/* One worker: the configuration (a copy per worker; the secrets are pointers into the one secure
 * arena, never copied) and the state of its own event loop. */
struct px {
	const struct ak_provider *pv;
	const char *profile;
	const char *const *allow;   /* path prefixes this provider's clients may reach */
	char *key_header;           /* secure: "x-api-key: KEY" or "Authorization: Bearer KEY" */
	char *token;                /* secure: the placeholder the client must present */
	size_t token_len;
	char upstream[PX_URL_MAX];  /* base URL, no trailing '/' */
	size_t strip_len;           /* leading path of the provider's default base ("/v1") that the
	                               upstream base already ends in: not repeated */
	struct px_usage usage;      /* this worker's counts (only its thread touches them) */
	struct px_usage published;  /* ... of which these are in shared->total */
	struct px_shared *shared;
	int id;                     /* 0: the main thread's loop (signals, reports) */
	CURLM *multi;
	CURLSH *share;              /* DNS and TLS sessions shared by every handle */
	CURL *pool[PX_POOL_MAX];    /* idle easy handles, options set: reused, not rebuilt */
	size_t npool;
	struct MHD_Daemon *mhd;
	int ep;                     /* the loop's epoll descriptor */
	int64_t curl_due;           /* CLOCK_MONOTONIC ms when libcurl wants its timeout action, or -1 */
	int mhd_kick;               /* a connection was resumed: run libmicrohttpd this turn */
	struct px_watch *dead;      /* watches to free once the current epoll batch is handled */
	struct px_req *live;        /* requests in flight (relay.c) */
	size_t nlive;
	int trim_due;               /* memory was used since the last malloc_trim */
	int64_t busy_ms;            /* when the last request came in (px_now_ms) */
	struct px_ws *ws;           /* WebSocket relays (ws.c) */
};

int64_t px_now_ms(void);
/* Add (or change) fd in the loop's epoll set with events, data w. 0 or -1. */
int px_watch_set(struct px *px, struct px_watch *w, uint32_t events);
void px_watch_del(struct px *px, struct px_watch *w);
/* Run libcurl's timeout action if it is due (a transfer just added is due at once). */
void px_curl_run_due(struct px *px);
/* At exit: free the idle easy handles. */
void px_relay_pool_free(struct px *px);

/* relay.c ------------------------------------------------------------------------------------------ */
struct px_req;
/* libmicrohttpd callbacks (passed to MHD_start_daemon with cls = px). */
void *px_uri_cb(void *cls, const char *uri, struct MHD_Connection *connection);
enum MHD_Result px_access_cb(void *cls, struct MHD_Connection *connection, const char *url,
    const char *method, const char *version, const char *upload_data, size_t *upload_data_size,
    void **con_cls);
void px_completed_cb(void *cls, struct MHD_Connection *connection, void **con_cls,
    enum MHD_RequestTerminationCode toe);
/* A request header that is not forwarded (hop-by-hop, or the client's credential). */
int px_hop_request_header(const char *name);
/* The relay is going away before the request: forget it. */
void px_req_forget_ws(struct px_req *rq);
/* The request's upstream side is ready (or failed, why says so): wake its connection. */
void px_req_ready(struct px_req *rq, int failed, const char *why);
/* libmicrohttpd's connection notifications: a per-connection watch on the client socket. */
void px_conn_cb(void *cls, struct MHD_Connection *connection, void **socket_context,
    enum MHD_ConnectionNotificationCode toe);
/* The client socket of a connection reports hang-up: end the request waiting on it. */
void px_conn_gone(struct px *px, struct px_watch *w);
/* libcurl's multi-socket callbacks (CURLMOPT_SOCKETFUNCTION / TIMERFUNCTION, userp = px). */
int px_curl_socket_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp);
int px_curl_timer_cb(CURLM *m, long timeout_ms, void *userp);
/* After curl_multi_socket_action: finish the transfers libcurl reports done. */
void px_relay_reap(struct px *px);
/* At exit: end every upstream transfer and resume every suspended connection (libmicrohttpd must not
 * be stopped with one suspended). */
void px_relay_abort_all(struct px *px);

/* ws.c: WebSocket upgrades ------------------------------------------------------------------------ */
struct px_ws;
/* The request (already checked: placeholder, host, path, method GET) asks for a WebSocket: open the
 * upstream connection and send it the upgrade with the real key. 0, or -1 (answered with an error). */
int px_ws_start(struct px *px, struct px_req *rq, struct MHD_Connection *conn, const char *uri,
    struct px_ws **out);
/* The request asks to switch to WebSocket (Upgrade: websocket). */
int px_is_upgrade(struct MHD_Connection *conn);
/* The upstream switched protocols: queue the client's 101 (libmicrohttpd hands the socket over). */
enum MHD_Result px_ws_answer(struct px_ws *ws, struct MHD_Connection *conn);
/* A readiness event on one of a relay's sockets. */
void px_ws_event(struct px *px, struct px_watch *w, uint32_t events);
/* Relays whose upstream handshake libcurl finished (from px_relay_reap): CURLMSG_DONE for its handle. */
int px_ws_connected(struct px *px, CURL *h, CURLcode result);
/* The request object is going away (libmicrohttpd's completion callback). */
void px_ws_req_gone(struct px_ws *ws);
/* Free relays that ended; at exit, end them all. */
void px_ws_sweep(struct px *px, int all);

/* usage.c ------------------------------------------------------------------------------------------ */
/* The worker's counts since its last publish go into the shared totals (a no-op when unchanged). */
void px_usage_publish(struct px *px);
/* A consistent copy of the totals. */
void px_usage_total(struct px_shared *sh, struct px_usage *out);

/* Reads `usage` objects out of a response as it streams past, without holding the body: JSON bodies
 * are kept (up to a cap) and parsed at the end; server-sent events are split into lines and only the
 * `data:` lines that mention "usage" are parsed. Nothing is logged. */
struct px_scan;
struct px_scan *px_scan_new(int sse);
void px_scan_feed(struct px_scan *s, const char *data, size_t len);
/* Add what was found to u and free s (NULL ok). */
void px_scan_finish(struct px_scan *s, struct px_usage *u);

/* report.c: the counts since the last report, to the agent (LOG_USAGE) at most once a second, and
 * always when final. init: the client's name for the log (CMD's file name, or NULL). */
void px_report_init(const char *cmd);
void px_report(struct px_shared *sh, const char *profile, int final);

#endif
