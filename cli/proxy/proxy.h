/* proxy.h - akctl-proxy's internal interfaces: a loopback HTTP server (libmicrohttpd) that checks a
 * per-session placeholder token, swaps in the real key and relays to one upstream over libcurl.
 *
 * One thread: main.c runs one poll loop over libmicrohttpd's epoll fd, libcurl's sockets and a
 * signalfd. Secrets (the key, its header line, the placeholder) live in the secure arena, allocated
 * once at start and wiped at exit; nothing here ever logs a request or response body.
 */
#ifndef AK_PROXY_H
#define AK_PROXY_H

#include <stddef.h>
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

/* The running proxy: configuration and state shared by the relay. */
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
	struct px_usage usage;
	CURLM *multi;
	struct px_req *live;        /* requests in flight (relay.c) */
	size_t nlive;
};

/* relay.c ------------------------------------------------------------------------------------------ */
struct px_req;
/* libmicrohttpd callbacks (passed to MHD_start_daemon with cls = px). */
void *px_uri_cb(void *cls, const char *uri, struct MHD_Connection *connection);
enum MHD_Result px_access_cb(void *cls, struct MHD_Connection *connection, const char *url,
    const char *method, const char *version, const char *upload_data, size_t *upload_data_size,
    void **con_cls);
void px_completed_cb(void *cls, struct MHD_Connection *connection, void **con_cls,
    enum MHD_RequestTerminationCode toe);
/* After curl_multi_perform: finish the transfers libcurl reports done. */
void px_relay_reap(struct px *px);
/* At exit: end every upstream transfer and resume every suspended connection (libmicrohttpd must not
 * be stopped with one suspended). */
void px_relay_abort_all(struct px *px);

/* usage.c ------------------------------------------------------------------------------------------ */
/* Reads `usage` objects out of a response as it streams past, without holding the body: JSON bodies
 * are kept (up to a cap) and parsed at the end; server-sent events are split into lines and only the
 * `data:` lines that mention "usage" are parsed. Nothing is logged. */
struct px_scan;
struct px_scan *px_scan_new(int sse);
void px_scan_feed(struct px_scan *s, const char *data, size_t len);
/* Add what was found to u and free s (NULL ok). */
void px_scan_finish(struct px_scan *s, struct px_usage *u);

#endif
