/* ak_jsonw.h - a JSON writer straight into an ak_buf, in the form cJSON_PrintUnformatted gives (strings
 * escaped as cJSON escapes them), for documents too large to build as a cJSON tree first: the store
 * as it is sealed, and akctl's list --json. The secrecy of what is written is the buffer's: a secure
 * ak_buf for the store, a plain one for redacted output.
 */
#ifndef AK_JSONW_H
#define AK_JSONW_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ak_buf.h"
#include "ak_err.h"

struct ak_jw {
	struct ak_buf *b;
	enum ak_err r;  /* the first failure; later writes are no-ops */
	uint8_t *p;     /* a reservation at the end of b: writes go here without a call per piece */
	size_t room;    /* its size */
	size_t used;    /* how much of it is written */
	size_t chunk;   /* how much to reserve at a time */
};

/* Write into b (not owned), reserving chunk bytes at a time. */
void ak_jw_init(struct ak_jw *w, struct ak_buf *b, size_t chunk);
/* Give back the unwritten part of the reservation: after it, b holds exactly what was written. */
void ak_jw_commit(struct ak_jw *w);
/* Make room for n bytes; 0 after a failure (recorded in w->r). */
int ak_jw_room(struct ak_jw *w, size_t n);

static inline void
ak_jw_raw(struct ak_jw *w, const char *s, size_t n)
{
	/* The common case, room in the reservation, is one compare; there is none after a failure. */
	if ((w->p == NULL || w->room - w->used < n) && !ak_jw_room(w, n))
		return;
	memcpy(w->p + w->used, s, n);
	w->used += n;
}

#define AK_JW_LIT(w, lit) ak_jw_raw((w), (lit), sizeof(lit) - 1)

/* A JSON string: ", \ and the C0 controls escaped (\b \f \n \r \t, else \u00XX), every other byte (UTF-8
 * included) as it is. NULL is written as "". */
void ak_jw_str(struct ak_jw *w, const char *s);
/* ,"key":"value" (first: without the comma) */
void ak_jw_kstr(struct ak_jw *w, const char *key, const char *v, int first);
/* An integer in decimal, every digit (as %lld writes it). */
void ak_jw_int(struct ak_jw *w, int64_t v);
/* ,"key":integer */
void ak_jw_kint(struct ak_jw *w, const char *key, int64_t v);

/* cJSON_ParseWithLengthOpts (with require_end) under one lock: cJSON keeps the position of the last
 * error in a global that every parse writes, and the agent parses on its loop and its writer thread
 * (the proxy on each worker). NULL when s is not one JSON value. */
struct cJSON;
struct cJSON *ak_json_parse(const char *s, size_t len, int require_end);
/* The same for one value at the start of s, followed by anything: *end is where it ended (NULL when
 * it does not parse). For a reader that steps through a large document one value at a time. */
struct cJSON *ak_json_parse_one(const char *s, size_t len, const char **end);

#endif
