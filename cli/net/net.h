/* net.h - akctl-net's HTTP layer over libcurl, shared by test, import and pull (akctl-net only).
 *
 * Secrets go only in headers (never URLs); TLS verification is always on; curl's error buffer and any
 * verbose output are scrubbed of the secret before they are shown. libcurl keeps unwiped copies of option
 * strings (a header line holding a key among them), which is why this code runs only in the short-lived akctl-net process.
 */
#ifndef AK_NET_H
#define AK_NET_H

#include <stddef.h>
#include <stdint.h>

#include "ak_err.h"

enum net_fail {
	NET_OK = 0,       /* a response arrived (any HTTP status) */
	NET_TIMEOUT,      /* connect or total timeout */
	NET_DNS,          /* could not resolve */
	NET_CONNECT,      /* refused / unreachable / dropped */
	NET_TLS,          /* certificate or handshake failure */
	NET_PROTOCOL,     /* malformed HTTP, body over the size cap */
	NET_OTHER,
};

struct net_request {
	const char *method;           /* "GET" or "POST" */
	const char *url;              /* never contains a secret */
	const char *const *headers;   /* NULL-terminated "Name: value" lines (may hold secrets) */
	const char *body;             /* POST body or NULL */
	size_t body_len;
	const char *secret;           /* scrubbed from every message shown (may be NULL) */
	const char *aws_sigv4;        /* CURLOPT_AWS_SIGV4 provider string, or NULL */
	const char *aws_userpwd;      /* "ACCESS:SECRET" for SigV4 (secret), or NULL */
	long connect_timeout_ms;      /* default 5000 */
	long timeout_ms;              /* default 15000 */
	size_t max_body;              /* default 1 MiB */
	int no_proxy;                 /* 1: never through a proxy (plain http:// never is, whatever this says) */
};

struct net_response {
	enum net_fail fail;
	long status;                  /* HTTP status, 0 if none */
	char *body;                   /* secure (ak_smem), NUL-terminated; may hold secrets; NULL if none */
	size_t body_len;
	char request_id[128];         /* request-id / x-request-id header, "" if none */
	long retry_after;             /* seconds from retry-after, -1 if none */
	char error[256];              /* one line, scrubbed */
	int retried;                  /* 1 when a 429's retry-after was honoured once (NET_RETRY_429) */
};

/* One request, synchronously. AK_OK whenever the transfer was attempted (see resp->fail). */
enum ak_err net_perform(const struct net_request *rq, struct net_response *resp);
/* Several requests concurrently (curl multi), all within one overall deadline of overall_ms from now
 * (each request's own timeout_ms still applies). flags: NET_RETRY_429 = when a 429 carries a
 * retry-after of at most NET_RETRY_CAP_MS that fits before the deadline, wait it out and send the
 * request once more (the other transfers keep going meanwhile). resp[i] answers rq[i]; the caller
 * clears each. AK_OK whenever the transfers were attempted. */
#define NET_RETRY_429 0x1
#define NET_RETRY_CAP_MS 10000
enum ak_err net_perform_many(const struct net_request *rq, struct net_response *resp, size_t n,
    long overall_ms, int flags);
/* Wipe and free resp's body. */
void net_response_clear(struct net_response *resp);
/* 1 if url is http:// to this machine (127.0.0.0/8 as a dotted literal, localhost, [::1]). Plain http
 * is allowed only there: a key or token must not cross a network in the clear. */
int net_is_loopback_http(const char *url);
/* Global init/cleanup of libcurl (once per process). */
enum ak_err net_init(void);
void net_cleanup(void);

/* Cloud secret managers (net_cloud.c): fetch the secret named by uri (aws-sm://, gcp-sm://, azure-kv://,
 * vault://). *value is secure (ak_smem_free). detail gets a one-line, secret-free reason on failure.
 * region/endpoint overrides may be NULL. */
struct cloud_opts {
	const char *region;           /* --region */
	long timeout_ms;
};
int cloud_is_uri(const char *s);
enum ak_err cloud_fetch(const char *uri, const struct cloud_opts *o, char **value, size_t *value_len,
    char *detail, size_t detaillen);

#endif
