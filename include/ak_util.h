/* ak_util.h - small pure helpers: name syntax, durations, redaction, time. */
#ifndef AK_UTIL_H
#define AK_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "ak_err.h"

/* [A-Za-z0-9._-]{1,64}, and not "." or "..". AK_OK or AK_ERR_BAD_NAME. */
enum ak_err ak_name_check(const char *name);
/* [A-Za-z_][A-Za-z0-9_]*, at most AK_VARNAME_MAX bytes. AK_OK or AK_ERR_BAD_VARNAME. */
enum ak_err ak_varname_check(const char *name);

/* One strict UTF-8 sequence at s (n bytes available): no overlongs, surrogates or code points past
 * U+10FFFF. Returns its length (1-4) with *cp, or 0 when s does not start a valid one. A NUL is the
 * one-byte U+0000; callers that refuse it check for it. */
size_t ak_utf8_next(const uint8_t *s, size_t n, uint32_t *cp);

/* "90s", "30m", "8h", "2d", "1h30m", plain digits = seconds; 0 allowed ("0" = no limit, the caller
 * decides). Max 365 days. AK_ERR_INVALID otherwise. */
enum ak_err ak_duration_parse(const char *s, uint32_t *seconds);
/* "1h05m", "42s", "3d04h" into buf (>= 16 bytes). */
void ak_duration_format(uint32_t seconds, char *buf, size_t buflen);
/* A human age like "5m", "3h", "12d" of a past unix time relative to now. */
void ak_age_format(int64_t then, int64_t now, char *buf, size_t buflen);

/* Redacted display of a secret into buf (>= 64 bytes): the vendor prefix up to its last '-' within
 * the first 16 characters (when at least 12 characters stay hidden), "…", and the last 4 characters;
 * short secrets show only "…" and their length. Never reveals more than 4 secret characters. */
void ak_redact(const char *secret, char *buf, size_t buflen);

/* Monotonic milliseconds, and wall-clock seconds. */
uint64_t ak_now_ms(void);
int64_t ak_now_s(void);

#endif
