/* scan_patterns.c - strings shaped like provider keys, found without a regex engine: a literal prefix
 * (memmem), then a run of the key's character set whose length must fall in a range. */
#include <pthread.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "ak_cpu.h"
#include "ak_scan.h"

enum charset { CS_B64URL, CS_ALNUM, CS_UPPERNUM, CS_ALNUM_UNDERSCORE, CS_SLACK };

struct pattern {
	const char *name;
	const char *prefix;
	enum charset cs;
	size_t min, max;     /* run length after the prefix */
};

/* Longest prefix first where one extends another: the first pattern that matches at a place wins. */
static const struct pattern patterns[] = {
	{ "anthropic-api-key", "sk-ant-api03-", CS_B64URL, 80, 120 },
	{ "anthropic-admin-key", "sk-ant-admin01-", CS_B64URL, 80, 120 },
	{ "anthropic-oauth-token", "sk-ant-oat01-", CS_B64URL, 80, 120 },
	{ "openai-project-key", "sk-proj-", CS_B64URL, 40, 200 },
	{ "openai-service-account-key", "sk-svcacct-", CS_B64URL, 40, 200 },
	{ "openai-admin-key", "sk-admin-", CS_B64URL, 40, 200 },
	{ "openai-key", "sk-", CS_ALNUM, 32, 64 },
	{ "github-token", "ghp_", CS_ALNUM, 36, 36 },
	{ "github-token", "gho_", CS_ALNUM, 36, 36 },
	{ "github-token", "ghu_", CS_ALNUM, 36, 36 },
	{ "github-token", "ghs_", CS_ALNUM, 36, 36 },
	{ "github-fine-grained-token", "github_pat_", CS_ALNUM_UNDERSCORE, 60, 100 },
	{ "gitlab-token", "glpat-", CS_B64URL, 20, 20 },
	{ "slack-token", "xoxb-", CS_SLACK, 20, 200 },
	{ "slack-token", "xoxp-", CS_SLACK, 20, 200 },
	{ "aws-access-key-id", "AKIA", CS_UPPERNUM, 16, 16 },
	{ "google-api-key", "AIza", CS_B64URL, 35, 35 },
};
#define NPATTERNS (sizeof(patterns) / sizeof(patterns[0]))

const char *
ak_scan_pattern_name(uint32_t idx)
{
	return idx < NPATTERNS ? patterns[idx].name : "?";
}

static int
in_set(enum charset cs, uint8_t c)
{
	int alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');

	switch (cs) {
	case CS_B64URL:
		return alnum || c == '-' || c == '_';
	case CS_ALNUM:
		return alnum;
	case CS_UPPERNUM:
		return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
	case CS_ALNUM_UNDERSCORE:
		return alnum || c == '_';
	case CS_SLACK:
		return alnum || c == '-';
	}
	return 0;
}

static int
word_byte(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
	    c == '-' || c == '+' || c == '/';
}

/* A key has letters and digits; a run of one kind ("sk-aaaaaaaa...") is a placeholder, not a key. */
static int
plausible(const uint8_t *p, size_t n)
{
	int lower = 0, upper = 0, digit = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		lower |= p[i] >= 'a' && p[i] <= 'z';
		upper |= p[i] >= 'A' && p[i] <= 'Z';
		digit |= p[i] >= '0' && p[i] <= '9';
	}
	return digit + lower + upper >= 2;
}

/* One pass finds every place a prefix may start: a table of the byte pairs that open a prefix or
 * follow its first byte, probed at every second position (a prefix of 3 bytes or more always puts one of
 * its first two pairs there). Several memmem passes, one per anchor, cost several times more on text
 * full of "sk" and "gh". With AVX2, every position is tested 32 at a time instead: whether its byte
 * opens a prefix and the next one can follow (two byte sets, as nibble tables for PSHUFB), then the
 * exact pair. */
static uint64_t pairs[65536 / 64];
static uint64_t first_pairs[65536 / 64];
static uint8_t first_set[16], second_set[16];   /* bit h of [l]: byte 16h + l (prefixes are ASCII) */
/* Each prefix as two 64-bit words and masks (the longest is 15 bytes), and its length: a candidate is
 * compared with two loads, not a call to memcmp per pattern (text full of "sk-" tries seven). */
static uint64_t pfx_word[NPATTERNS][2], pfx_mask[NPATTERNS][2];
static size_t pfx_len[NPATTERNS];
static int use_avx2;
static pthread_once_t pairs_once = PTHREAD_ONCE_INIT;  /* scanning threads share the tables */

static void
pairs_init(void)
{
	size_t i, k;

	for (i = 0; i < NPATTERNS; i++) {
		const uint8_t *pr = (const uint8_t *)patterns[i].prefix;
		unsigned a = (unsigned)pr[0] << 8 | pr[1], b = (unsigned)pr[1] << 8 | pr[2];

		pairs[a >> 6] |= 1ull << (a & 63);
		pairs[b >> 6] |= 1ull << (b & 63);
		first_pairs[a >> 6] |= 1ull << (a & 63);
		first_set[pr[0] & 15] |= (uint8_t)(1u << (pr[0] >> 4));
		second_set[pr[1] & 15] |= (uint8_t)(1u << (pr[1] >> 4));
		pfx_len[i] = strlen(patterns[i].prefix);
		for (k = 0; k < pfx_len[i] && k < 16; k++) {
			pfx_word[i][k / 8] |= (uint64_t)pr[k] << (8 * (k % 8));
			pfx_mask[i][k / 8] |= (uint64_t)0xff << (8 * (k % 8));
		}
	}
	use_avx2 = ak_cpu_avx2();
}

/* A key-shaped string starting at q: its end, or 0. *pat gets its pattern. */
static size_t
match_at(const uint8_t *buf, size_t len, size_t q, uint32_t *pat)
{
	const uint8_t *p = buf + q, *end = buf + len;
	size_t i, pl, run;
	uint64_t w0 = 0, w1 = 0;
	int whole = end - p >= 16;

	if (q > 0 && word_byte(p[-1]))
		return 0;
	if (whole) {
		/* Little-endian words, as pfx_word (byte k at bits 8k): built, not loaded, to not
		 * depend on the host's byte order. */
		for (i = 0; i < 8; i++) {
			w0 |= (uint64_t)p[i] << (8 * i);
			w1 |= (uint64_t)p[8 + i] << (8 * i);
		}
	}
	for (i = 0; i < NPATTERNS; i++) {
		if ((uint8_t)patterns[i].prefix[0] != *p)
			continue;
		pl = pfx_len[i];
		if (whole ? ((w0 & pfx_mask[i][0]) != pfx_word[i][0] || (w1 & pfx_mask[i][1]) != pfx_word[i][1]) :
		    ((size_t)(end - p) < pl || memcmp(p, patterns[i].prefix, pl) != 0))
			continue;
		for (run = 0; p + pl + run < end && in_set(patterns[i].cs, p[pl + run]); run++)
			;
		if (run < patterns[i].min || run > patterns[i].max ||
		    (p + pl + run < end && word_byte(p[pl + run])) || !plausible(p + pl, run))
			return 0; /* the longest prefix decides */
		*pat = (uint32_t)i;
		return q + pl + run;
	}
	return 0;
}

/* Report the key-shaped string [q, e) of pattern pat. */
static int
report(ak_scan_cb cb, void *arg, size_t q, size_t e, uint32_t pat)
{
	struct ak_scan_hit hit;

	memset(&hit, 0, sizeof(hit));
	hit.start = q;
	hit.end = e;
	hit.secret = pat;
	hit.variant = AK_SCAN_RAW;
	return cb(arg, &hit);
}

#if defined(__x86_64__) || defined(__i386__)
/* 0xff in each byte of v that is in set (as first_set), else 0. */
__attribute__((target("avx2"), always_inline)) static inline __m256i
in_set32(__m256i v, __m256i set)
{
	const __m256i low4 = _mm256_set1_epi8(0x0f);
	const __m256i bit = _mm256_setr_epi8(1, 2, 4, 8, 16, 32, 64, -128, 0, 0, 0, 0, 0, 0, 0, 0,
	    1, 2, 4, 8, 16, 32, 64, -128, 0, 0, 0, 0, 0, 0, 0, 0);
	__m256i row = _mm256_shuffle_epi8(set, _mm256_and_si256(v, low4));
	__m256i col = _mm256_shuffle_epi8(bit, _mm256_and_si256(_mm256_srli_epi16(v, 4), low4));

	return _mm256_xor_si256(_mm256_cmpeq_epi8(_mm256_and_si256(row, col), _mm256_setzero_si256()),
	    _mm256_set1_epi8(-1));
}

__attribute__((target("avx2"))) static int
patterns_avx2(const uint8_t *buf, size_t len, ak_scan_cb cb, void *arg)
{
	const __m256i fs = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)first_set));
	const __m256i ss = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)second_set));
	size_t p, q, e, next = 0;
	uint32_t m, pat;
	unsigned v;
	int rc;

	/* Blocks of 32 positions while the next byte of each is there too; then one at a time. */
	for (p = 0; p + 33 <= len; p += 32) {
		__m256i a = _mm256_loadu_si256((const __m256i *)(const void *)(buf + p));
		__m256i b = _mm256_loadu_si256((const __m256i *)(const void *)(buf + p + 1));

		m = (uint32_t)_mm256_movemask_epi8(_mm256_and_si256(in_set32(a, fs), in_set32(b, ss)));
		for (; m != 0; m &= m - 1) {
			q = p + (size_t)__builtin_ctz(m);
			v = (unsigned)buf[q] << 8 | buf[q + 1];
			/* Positions inside the last string found are done. */
			if (q < next || !(first_pairs[v >> 6] & (1ull << (v & 63))) ||
			    (e = match_at(buf, len, q, &pat)) == 0)
				continue;
			if ((rc = report(cb, arg, q, e, pat)) != 0)
				return rc;
			next = e;
		}
	}
	for (q = p > next ? p : next; q + 1 < len; q++) {
		v = (unsigned)buf[q] << 8 | buf[q + 1];
		if (!(first_pairs[v >> 6] & (1ull << (v & 63))) || (e = match_at(buf, len, q, &pat)) == 0)
			continue;
		if ((rc = report(cb, arg, q, e, pat)) != 0)
			return rc;
		q = e - 1;
	}
	return 0;
}
#endif

int
ak_scan_patterns(const uint8_t *buf, size_t len, ak_scan_cb cb, void *arg)
{
	(void)pthread_once(&pairs_once, pairs_init);
#if defined(__x86_64__) || defined(__i386__)
	if (use_avx2)
		return patterns_avx2(buf, len, cb, arg);
#endif
	return ak_scan_patterns_pairs(buf, len, cb, arg);
}

int
ak_scan_patterns_pairs(const uint8_t *buf, size_t len, ak_scan_cb cb, void *arg)
{
	size_t p, q, e, k;
	uint32_t pat;
	unsigned v;
	int rc;

	(void)pthread_once(&pairs_once, pairs_init);
	for (p = 0; p + 1 < len; p += 2) {
		v = (unsigned)buf[p] << 8 | buf[p + 1];
		if (!(pairs[v >> 6] & (1ull << (v & 63))))
			continue;
		/* A prefix at p-1 (this pair is its second) comes before one at p. */
		for (k = 0; k < 2; k++) {
			if (p + k < 1)
				continue;
			q = p + k - 1;
			if ((e = match_at(buf, len, q, &pat)) == 0)
				continue;
			if ((rc = report(cb, arg, q, e, pat)) != 0)
				return rc;
			/* Go on after it, on the even grid. */
			p = (e + 1) / 2 * 2 - 2;
			break;
		}
	}
	return 0;
}
