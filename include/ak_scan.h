/* ak_scan.h - find stored secrets, in every common encoding, in arbitrary bytes.
 *
 * A matcher is built from the secret values (ak_scan_add, ak_scan_build) and then only ever holds keyed
 * hashes of them: the values are kept in the secure arena until the build encodes them into their
 * variants there, hashes them (on two threads when two CPUs may run them), and wipes them.
 *  - Every variant (raw, base64 and base64url at the three byte alignments, hex lower and upper, %XX,
 *    URL component encoding, JSON \u00XX escapes, UTF-16LE) is cut at the end of the key's public prefix
 *    (sk-ant-api03-, sk-proj-, ghp_...): only the "distinctive" part after it is matched, since a prefix
 *    shared by every key would make each of them a candidate everywhere.
 *  - Every 16-byte window of each variant's distinctive part goes into a table of 64-bit keyed hashes
 *    sorted into buckets by hash (one 64x64->128-bit multiply of the window's two halves, each masked
 *    by a secret key), fronted by a filter of 3 bits per window in one 64-bit word (one filter for
 *    windows holding a backslash, '%' or NUL, one for the rest, so plain text consults the smaller,
 *    which stays in the CPU's cache). The text is hashed only at every s-th position (s <= 16, chosen so
 *    that the shortest distinctive part still holds an aligned window), so scanning costs one hash
 *    per s bytes plus one filter word.
 *  - A window hit is confirmed by a keyed BLAKE2b of the whole distinctive part at the position it
 *    implies; if that fails, of the same stretch with line wraps, "\n" escapes and backslash-newline
 *    continuations (and the indentation after them) removed, so a key split over lines is found when
 *    one of its pieces holds 2s-1 bytes of the distinctive part.
 * The hash keys live in the secure arena; the tables hold only keyed hashes and are wiped on free.
 * A matcher is not thread-safe, but its views (ak_scan_view) share its tables with a scratch of their
 * own: one view per scanning thread.
 */
#ifndef AK_SCAN_H
#define AK_SCAN_H

#include <stddef.h>
#include <stdint.h>

#include "ak_err.h"

#define AK_SCAN_WINDOW 16      /* bytes of a hashed window */
#define AK_SCAN_MIN_SECRET 16  /* a secret needs this many bytes after its public prefix */

/* Variant kinds, as reported in hits (ak_scan_variant_name). */
enum ak_scan_variant {
	AK_SCAN_RAW = 0,
	AK_SCAN_BASE64,
	AK_SCAN_BASE64URL,
	AK_SCAN_HEX,
	AK_SCAN_PERCENT,      /* every byte as %XX */
	AK_SCAN_URLENCODED,   /* only bytes outside [A-Za-z0-9._~-] as %XX */
	AK_SCAN_JSON_ESCAPE,  /* every byte as \u00XX */
	AK_SCAN_UTF16LE,
	AK_SCAN_NVARIANTS
};

struct ak_scan;

struct ak_scan_hit {
	size_t start, end;       /* byte range in the scanned buffer (prefix included when present) */
	uint32_t secret;         /* index returned by ak_scan_add */
	enum ak_scan_variant variant;
	int wrapped;             /* 1 when found only after removing line wraps or escapes */
};

/* Returns 0 to go on, non-zero to stop the scan (ak_scan_buf then returns that value). */
typedef int (*ak_scan_cb)(void *arg, const struct ak_scan_hit *hit);

/* A new empty matcher; NULL on failure (needs ak_smem_init()). holdback: also keep the prefix hashes
 * ak_scan_holdback needs (streaming filters). */
struct ak_scan *ak_scan_new(int holdback);
/* Wipes every table and key. NULL is a no-op. */
void ak_scan_free(struct ak_scan *s);

/* A view of built matcher s for another thread: it shares s's tables (read-only) and has its own
 * scratch. Free it with ak_scan_free before s. NULL when out of memory or s is not built (or a view);
 * call from the thread that owns s (it allocates from the secure arena). */
struct ak_scan *ak_scan_view(const struct ak_scan *s);

/* Add a secret (len bytes; stays the caller's: a copy is kept in the secure arena until ak_scan_build,
 * which wipes it). *id: its index; a value already added returns the first one's index (same secret
 * under two names). AK_ERR_INVALID when it has fewer than AK_SCAN_MIN_SECRET bytes after its public
 * prefix (too short to search for without false alarms). Only before ak_scan_build. */
enum ak_err ak_scan_add(struct ak_scan *s, const char *value, size_t len, uint32_t *id);
/* Hash every added secret's variants into windows and sort the tables. After this, no more
 * ak_scan_add. AK_ERR_NOMEM when out of memory. */
enum ak_err ak_scan_build(struct ak_scan *s);
/* Number of distinct secrets and the scan stride (for tests and benchmarks). */
size_t ak_scan_count(const struct ak_scan *s);
size_t ak_scan_stride(const struct ak_scan *s);
/* The most bytes one occurrence can cover, wraps included: streaming callers keep this much overlap. */
size_t ak_scan_span(const struct ak_scan *s);

/* Call cb for each confirmed occurrence in buf, in order of position, never overlapping. Returns 0, or
 * what cb returned to stop, or -1 when out of memory. */
int ak_scan_buf(struct ak_scan *s, const uint8_t *buf, size_t len, ak_scan_cb cb, void *arg);

/* Streaming filters: the length of the longest suffix of buf that, with its line wraps removed, is the
 * start of a variant running past its public prefix (so it may still become a secret). A suffix that is
 * only a public prefix is never held. Needs a matcher made with holdback. */
size_t ak_scan_holdback(struct ak_scan *s, const uint8_t *buf, size_t len);

/* "raw", "base64", ... Never NULL. */
const char *ak_scan_variant_name(enum ak_scan_variant v);

/* A short fingerprint (12 hex digits + NUL, out >= 13 bytes) of bytes, keyed by a hash of all secrets
 * added, so it is stable for a given store, and says nothing about the value to anyone without it. */
void ak_scan_fingerprint(const struct ak_scan *s, const uint8_t *data, size_t len, char *out);
/* The fingerprint of secret id. */
void ak_scan_secret_fingerprint(const struct ak_scan *s, uint32_t id, char *out);

/* Strings shaped like provider keys (sk-ant-api03-, sk-proj-, ghp_, AKIA...): a prefix followed by a run
 * of the key's character set, not preceded by a word character. No regular expressions: a table of
 * prefixes, a charset and minimal/maximal run lengths. cb gets start/end; hit->secret is the index of the
 * pattern (ak_scan_pattern_name), variant AK_SCAN_RAW. Returns like ak_scan_buf. */
int ak_scan_patterns(const uint8_t *buf, size_t len, ak_scan_cb cb, void *arg);
/* The same, probing byte pairs at every second position without vector instructions: what CPUs without
 * AVX2 run, and the reference the tests hold the vector search to. */
int ak_scan_patterns_pairs(const uint8_t *buf, size_t len, ak_scan_cb cb, void *arg);
const char *ak_scan_pattern_name(uint32_t idx);

#endif
