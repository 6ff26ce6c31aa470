/* report.c - the token counts that passed through the proxy, reported to the agent (LOG_USAGE), so
 * that `akctl log` shows them per profile and per client and `akctl usage` sets them beside the
 * provider's own figures.
 *
 * Reports are coalesced: at most one a second while requests finish, and a last one when the proxy
 * ends, so the main thread's loop pays one agent round trip a second at most. The counts are the
 * workers' published totals (px_usage_total); only the main thread reports, so the state here is its
 * own. Each report opens its own
 * connection (the agent at $AKAGENT_SOCK or the default socket, checked as every client checks it)
 * and closes it, so the proxy holds no descriptor between reports; when the agent cannot be reached or refuses, the counts stay in the proxy's own summary and
 * one note says so. No key is involved: only the profile's name, which the proxy was given.
 */
#include <stdio.h>
#include <string.h>

#include "ak_client.h"
#include "proxy.h"

#define REPORT_EVERY_MS 1000

static struct px_usage sent;
static int64_t last_ms;
static char client[AK_USE_CLIENT_MAX + 1];
static int broken;

void
px_report_init(const char *cmd)
{
	const char *base = cmd != NULL ? strrchr(cmd, '/') : NULL;
	size_t i;

	snprintf(client, sizeof(client), "%s", cmd == NULL ? "" : base != NULL ? base + 1 : cmd);
	for (i = 0; client[i] != '\0'; i++)
		if ((unsigned char)client[i] < 0x20 || (unsigned char)client[i] >= 0x7f)
			client[i] = '?';
}

void
px_report(struct px_shared *sh, const char *profile, int final)
{
	struct px_usage total, *u = &total;
	struct ak_client *agent = NULL;
	struct ak_use_entry e;
	int64_t now = px_now_ms();
	enum ak_err r;

	if (broken || (!final && now - last_ms < REPORT_EVERY_MS))
		return;
	px_usage_total(sh, &total);
	if (u->requests == sent.requests && u->input_tokens == sent.input_tokens &&
	    u->output_tokens == sent.output_tokens && u->cache_read_tokens == sent.cache_read_tokens &&
	    u->cache_creation_tokens == sent.cache_creation_tokens)
		return;
	last_ms = now;
	if (ak_client_connect(NULL, AK_CLIENT_PLAIN, &agent, NULL, 0) != AK_OK) {
		agent = NULL;
		r = AK_ERR_NO_AGENT;
		goto fail;
	}
	ak_client_set_timeout(agent, 2);
	memset(&e, 0, sizeof(e));
	e.profile = (char *)profile;
	e.client = client;
	e.requests = (uint32_t)(u->requests - sent.requests);
	e.tokens_in = u->input_tokens - sent.input_tokens;
	e.tokens_out = u->output_tokens - sent.output_tokens;
	e.tokens_cache = (u->cache_read_tokens + u->cache_creation_tokens) -
	    (sent.cache_read_tokens + sent.cache_creation_tokens);
	if ((r = ak_client_log_usage(agent, &e)) != AK_OK)
		goto fail;
	sent = *u;
	goto out;
fail:
	broken = 1;
	fprintf(stderr, "akctl: proxy: %s: token counts not reported to the agent: %s\n", profile,
	    ak_strerror(r));
out:
	ak_client_close(agent);
}
