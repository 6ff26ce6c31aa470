/* jsonw.c - the JSON writer of large documents (see ak_jsonw.h). */
#include <pthread.h>

#include <cjson/cJSON.h>

#include "ak_jsonw.h"

void
ak_jw_init(struct ak_jw *w, struct ak_buf *b, size_t chunk)
{
	w->b = b;
	w->r = b != NULL ? AK_OK : AK_ERR_NOMEM;
	w->p = NULL;
	w->room = w->used = 0;
	w->chunk = chunk;
}

void
ak_jw_commit(struct ak_jw *w)
{
	if (w->p != NULL)
		ak_buf_unreserve(w->b, w->room - w->used);
	w->p = NULL;
	w->room = w->used = 0;
}

int
ak_jw_room(struct ak_jw *w, size_t n)
{
	size_t left;

	if (w->r != AK_OK)
		return 0;
	if (w->p != NULL && w->room - w->used >= n)
		return 1;
	ak_jw_commit(w);
	left = ak_buf_max(w->b) - ak_buf_len(w->b);
	if (n > left) {
		w->r = AK_ERR_TOO_LARGE;
		return 0;
	}
	if (n < w->chunk)
		n = w->chunk < left ? w->chunk : left;
	if ((w->r = ak_buf_reserve(w->b, n, &w->p)) != AK_OK) {
		w->p = NULL;
		return 0;
	}
	w->room = n;
	return 1;
}

/* The bytes a JSON string escapes (1), and its end (NUL, 2): one look-up a byte on the long runs of
 * plain bytes that keys and values are. */
static const uint8_t special[256] = {
	2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	['"'] = 1, ['\\'] = 1,
};

void
ak_jw_str(struct ak_jw *w, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const char *run;
	char esc[6];
	size_t en;

	if (s == NULL)
		s = "";
	run = s;
	AK_JW_LIT(w, "\"");
	for (;; s++) {
		unsigned char c = (unsigned char)*s;

		if (special[c] == 0)
			continue;
		if (c == '\0')
			break;
		ak_jw_raw(w, run, (size_t)(s - run));
		run = s + 1;
		esc[0] = '\\';
		en = 2;
		switch (c) {
		case '"': esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\b': esc[1] = 'b'; break;
		case '\f': esc[1] = 'f'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		default:
			esc[1] = 'u';
			esc[2] = '0';
			esc[3] = '0';
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			en = 6;
			break;
		}
		ak_jw_raw(w, esc, en);
	}
	ak_jw_raw(w, run, (size_t)(s - run));
	AK_JW_LIT(w, "\"");
}

void
ak_jw_kstr(struct ak_jw *w, const char *key, const char *v, int first)
{
	if (!first)
		AK_JW_LIT(w, ",");
	ak_jw_str(w, key);
	AK_JW_LIT(w, ":");
	ak_jw_str(w, v);
}

/* Without snprintf: a store write prints a dozen numbers a profile, and snprintf was a tenth of it. */
void
ak_jw_int(struct ak_jw *w, int64_t v)
{
	char num[24];
	size_t i = sizeof(num);
	uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;

	do {
		num[--i] = (char)('0' + u % 10);
		u /= 10;
	} while (u != 0);
	if (v < 0)
		num[--i] = '-';
	ak_jw_raw(w, num + i, sizeof(num) - i);
}

void
ak_jw_kint(struct ak_jw *w, const char *key, int64_t v)
{
	AK_JW_LIT(w, ",");
	ak_jw_str(w, key);
	AK_JW_LIT(w, ":");
	ak_jw_int(w, v);
}

/* cJSON keeps the position of the last error in a global that every parse writes. */
static pthread_mutex_t json_mu = PTHREAD_MUTEX_INITIALIZER;

struct cJSON *
ak_json_parse(const char *s, size_t len, int require_end)
{
	cJSON *j;

	pthread_mutex_lock(&json_mu);
	j = cJSON_ParseWithLengthOpts(s, len, NULL, require_end);
	pthread_mutex_unlock(&json_mu);
	return j;
}

struct cJSON *
ak_json_parse_one(const char *s, size_t len, const char **end)
{
	cJSON *j;

	*end = NULL;
	pthread_mutex_lock(&json_mu);
	j = cJSON_ParseWithLengthOpts(s, len, end, 0);
	pthread_mutex_unlock(&json_mu);
	if (j == NULL)
		*end = NULL;
	return j;
}
