/* usage.c - token counts out of responses as they stream past (see proxy.h).
 *
 * Anthropic puts `usage` at the top of a message, in `message.usage` of the SSE message_start event
 * and at the top of message_delta (counts so far, so the largest seen wins); OpenAI puts it at the top
 * of a completion or its last stream chunk (prompt_tokens/completion_tokens) and in `response.usage`
 * of the Responses API. The largest value of each field over one response is what that response used.
 */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ak_jsonw.h"
#include "proxy.h"

#define SCAN_JSON_MAX (4u << 20) /* a non-streamed body kept for its usage; past this, not counted */
#define SCAN_LINE_MAX (1u << 20) /* one SSE line */

struct px_scan {
	int sse;
	int overflow;    /* JSON: body too large; SSE: skipping the rest of an over-long line */
	char *buf;
	size_t len, cap;
	uint64_t in, out, cache_read, cache_creation;
};

struct px_scan *
px_scan_new(int sse)
{
	struct px_scan *s = calloc(1, sizeof(*s));

	if (s != NULL)
		s->sse = sse;
	return s;
}

static void
take_max(uint64_t *dst, const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	if (cJSON_IsNumber(v) && v->valuedouble > 0 && v->valuedouble < 1e15 && (uint64_t)v->valuedouble > *dst)
		*dst = (uint64_t)v->valuedouble;
}

static void
from_usage(struct px_scan *s, const cJSON *u)
{
	if (!cJSON_IsObject(u))
		return;
	take_max(&s->in, u, "input_tokens");
	take_max(&s->in, u, "prompt_tokens");
	take_max(&s->out, u, "output_tokens");
	take_max(&s->out, u, "completion_tokens");
	take_max(&s->cache_read, u, "cache_read_input_tokens");
	take_max(&s->cache_creation, u, "cache_creation_input_tokens");
}

static void
from_doc(struct px_scan *s, const char *doc, size_t len)
{
	cJSON *o = ak_json_parse(doc, len, 0);
	const cJSON *inner;

	if (o == NULL)
		return;
	from_usage(s, cJSON_GetObjectItemCaseSensitive(o, "usage"));
	if ((inner = cJSON_GetObjectItemCaseSensitive(o, "message")) != NULL)
		from_usage(s, cJSON_GetObjectItemCaseSensitive(inner, "usage"));
	if ((inner = cJSON_GetObjectItemCaseSensitive(o, "response")) != NULL)
		from_usage(s, cJSON_GetObjectItemCaseSensitive(inner, "usage"));
	cJSON_Delete(o);
}

static int
grow(struct px_scan *s, size_t need)
{
	size_t ncap;
	char *nb;

	if (need <= s->cap)
		return 0;
	ncap = s->cap != 0 ? s->cap : 4096;
	while (ncap < need)
		ncap *= 2;
	if ((nb = realloc(s->buf, ncap)) == NULL)
		return -1;
	s->buf = nb;
	s->cap = ncap;
	return 0;
}

/* One complete SSE line (no line end). Only data lines that can hold a usage object are parsed: the
 * many content deltas of a long answer cost a memmem each, not a JSON parse. */
static void
sse_line(struct px_scan *s, const char *line, size_t len)
{
	if (len > 5 && memcmp(line, "data:", 5) == 0 && memmem(line, len, "\"usage\"", 7) != NULL)
		from_doc(s, line + 5, len - 5);
}

void
px_scan_feed(struct px_scan *s, const char *data, size_t len)
{
	const char *nl;
	size_t n;

	if (s == NULL || len == 0)
		return;
	if (!s->sse) {
		if (s->overflow || s->len + len > SCAN_JSON_MAX || grow(s, s->len + len) != 0) {
			s->overflow = 1;
			return;
		}
		memcpy(s->buf + s->len, data, len);
		s->len += len;
		return;
	}
	while (len > 0) {
		nl = memchr(data, '\n', len);
		n = nl != NULL ? (size_t)(nl - data) : len;
		if (!s->overflow) {
			if (s->len + n > SCAN_LINE_MAX || grow(s, s->len + n) != 0) {
				s->overflow = 1;
				s->len = 0;
			} else {
				memcpy(s->buf + s->len, data, n);
				s->len += n;
			}
		}
		if (nl == NULL)
			return;
		if (!s->overflow) {
			if (s->len > 0 && s->buf[s->len - 1] == '\r')
				s->len--;
			sse_line(s, s->buf, s->len);
		}
		s->overflow = 0;
		s->len = 0;
		data += n + 1;
		len -= n + 1;
	}
}

void
px_scan_finish(struct px_scan *s, struct px_usage *u)
{
	if (s == NULL)
		return;
	if (!s->sse && !s->overflow && s->len > 0)
		from_doc(s, s->buf, s->len);
	else if (s->sse && !s->overflow && s->len > 0)
		sse_line(s, s->buf, s->len);
	u->input_tokens += s->in;
	u->output_tokens += s->out;
	u->cache_read_tokens += s->cache_read;
	u->cache_creation_tokens += s->cache_creation;
	free(s->buf);
	free(s);
}

void
px_usage_publish(struct px *px)
{
	struct px_usage *t = &px->shared->total, *u = &px->usage, *p = &px->published;

	if (memcmp(u, p, sizeof(*u)) == 0)
		return;
	pthread_mutex_lock(&px->shared->lock);
	t->requests += u->requests - p->requests;
	t->refused += u->refused - p->refused;
	t->failed += u->failed - p->failed;
	t->aborted += u->aborted - p->aborted;
	t->input_tokens += u->input_tokens - p->input_tokens;
	t->output_tokens += u->output_tokens - p->output_tokens;
	t->cache_read_tokens += u->cache_read_tokens - p->cache_read_tokens;
	t->cache_creation_tokens += u->cache_creation_tokens - p->cache_creation_tokens;
	pthread_mutex_unlock(&px->shared->lock);
	*p = *u;
}

void
px_usage_total(struct px_shared *sh, struct px_usage *out)
{
	pthread_mutex_lock(&sh->lock);
	*out = sh->total;
	pthread_mutex_unlock(&sh->lock);
}
