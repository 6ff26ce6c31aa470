/* test_scan.c - the exact matcher: every variant found at every offset, wrapped keys, nothing on clean
 * text, holdback for streaming, key-shaped patterns. Keys are generated here, never committed. */
#include <sched.h>

#include <sodium.h>

#include "ak_scan.h"
#include "ak_smem.h"
#include "t.h"

#define NKEYS 8
#define TEXT 4096

static char keys[NKEYS][128];

static void
fake_key(char *out)
{
	static const char b64u[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	int i;

	strcpy(out, "sk-ant-api03-");
	for (i = 0; i < 93; i++)
		out[13 + i] = b64u[randombytes_uniform(64)];
	/* Not 'n' or 'r' first: a key split right after it by the escape "\\n" (or "\\r\\n") then has its
	 * whole distinctive part, that letter first, unbroken after the backslash, and is reported as
	 * that direct occurrence, not as the wrapped key test_wrapped expects (one run in thirty). */
	while (out[13] == 'n' || out[13] == 'r')
		out[13] = b64u[randombytes_uniform(64)];
	strcpy(out + 106, "AA");
}

/* Independent encoders (the oracle): text = pre + encoding + post, where the encoding of base64 is
 * of (align filler bytes + key + trailer). Returns the length written. */
static size_t
encode(int kind, int variant, const char *key, char *out)
{
	size_t n = strlen(key), i, o = 0;
	static const char lo[] = "0123456789abcdef", up[] = "0123456789ABCDEF";
	uint8_t tmp[256];

	switch (kind) {
	case 0:
		memcpy(out, key, n);
		return n;
	case 1: /* base64 / url, align = variant % 3 */
		memcpy(tmp, "xy", 2);
		memcpy(tmp + variant % 3, key, n);
		memcpy(tmp + variant % 3 + n, "\n", 1);
		sodium_bin2base64(out, 512, tmp, variant % 3 + n + 1,
		    variant >= 3 ? sodium_base64_VARIANT_URLSAFE : sodium_base64_VARIANT_ORIGINAL);
		return strlen(out);
	case 2:
		for (i = 0; i < n; i++) {
			out[o++] = (variant ? up : lo)[(uint8_t)key[i] >> 4];
			out[o++] = (variant ? up : lo)[key[i] & 15];
		}
		return o;
	case 3:
		for (i = 0; i < n; i++) {
			out[o++] = '%';
			out[o++] = (variant ? up : lo)[(uint8_t)key[i] >> 4];
			out[o++] = (variant ? up : lo)[key[i] & 15];
		}
		return o;
	case 4:
		for (i = 0; i < n; i++) {
			memcpy(out + o, "\\u00", 4);
			o += 4;
			out[o++] = (variant ? up : lo)[(uint8_t)key[i] >> 4];
			out[o++] = (variant ? up : lo)[key[i] & 15];
		}
		return o;
	case 5:
		for (i = 0; i < n; i++) {
			out[o++] = key[i];
			out[o++] = 0;
		}
		return o;
	}
	return 0;
}

static const int expect_variant[] = { AK_SCAN_RAW, -1, AK_SCAN_HEX, AK_SCAN_PERCENT, AK_SCAN_JSON_ESCAPE,
	AK_SCAN_UTF16LE };

struct found {
	int n;
	struct ak_scan_hit h[8];
};

static int
collect(void *arg, const struct ak_scan_hit *hit)
{
	struct found *f = arg;

	if (f->n < 8)
		f->h[f->n] = *hit;
	f->n++;
	return 0;
}

/* Random text that holds no key: lowercase words and spaces. A xorshift seeded once: the tests fill
 * tens of megabytes, and libsodium's generator makes a system call per number. */
static void
filler(uint8_t *t, size_t n)
{
	static uint64_t x;
	size_t i;

	if (x == 0)
		randombytes_buf(&x, sizeof(x));
	x |= 1;
	for (i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		t[i] = (x >> 32) % 6 == 0 ? ' ' : (uint8_t)('a' + (x >> 40) % 26);
	}
}

static void
test_variants(struct ak_scan *s)
{
	static uint8_t text[TEXT];
	char enc[1024];
	struct found f;
	size_t el, at;
	int kind, var, k, nvar;

	for (k = 0; k < NKEYS; k++) {
		for (kind = 0; kind < 6; kind++) {
			nvar = kind == 1 ? 6 : (kind == 0 || kind == 5 ? 1 : 2);
			for (var = 0; var < nvar; var++) {
				el = encode(kind, var, keys[k], enc);
				/* At every offset modulo the stride: the grid must catch each. */
				for (at = 0; at < ak_scan_stride(s) + 3; at++) {
					filler(text, sizeof(text));
					memcpy(text + 100 + at, enc, el);
					memset(&f, 0, sizeof(f));
					ak_scan_buf(s, text, sizeof(text), collect, &f);
					CHECK_EQ(f.n, 1);
					if (f.n != 1) {
						fprintf(stderr, "key %d kind %d var %d at %zu\n", k, kind, var, at);
						continue;
					}
					CHECK_EQ(f.h[0].secret, k);
					CHECK_EQ(f.h[0].wrapped, 0);
					if (kind == 1) {
						/* base64url of a key without '+' or '/' in it is
						 * its base64: reported as such. */
						CHECK(f.h[0].variant == AK_SCAN_BASE64 ||
						    (var >= 3 && f.h[0].variant == AK_SCAN_BASE64URL));
					} else {
						CHECK_EQ(f.h[0].variant, expect_variant[kind]);
					}
					if (kind != 1) { /* the prefix is included */
						CHECK_EQ(f.h[0].start, 100 + at);
						CHECK_EQ(f.h[0].end, 100 + at + el);
					}
				}
			}
		}
	}
}

static void wrap_every(struct ak_scan *s, const char *enc, size_t el, size_t every, size_t at,
    const char *wrap, struct found *f);

/* A key split by a wrap at every position, at every offset modulo the stride: found when a piece holds
 * 31 bytes of the distinctive part (one of the two always does here). */
static void
test_wrapped(struct ak_scan *s)
{
	static const char *const wraps[] = { "\n", "\r\n", "\\n", "\\\n", "\n    ", "\\r\\n" };
	static uint8_t text[1024];
	struct found f;
	size_t cut, w, kl = strlen(keys[0]), wl, off, at;

	for (w = 0; w < sizeof(wraps) / sizeof(wraps[0]); w++) {
		wl = strlen(wraps[w]);
		for (off = 0; off < ak_scan_stride(s); off++) {
			for (cut = 1; cut < kl; cut++) {
				at = 50 + off;
				filler(text, sizeof(text));
				memcpy(text + at, keys[0], cut);
				memcpy(text + at + cut, wraps[w], wl);
				memcpy(text + at + cut + wl, keys[0] + cut, kl - cut);
				memset(&f, 0, sizeof(f));
				ak_scan_buf(s, text, sizeof(text), collect, &f);
				CHECK_EQ(f.n, 1);
				if (f.n == 1) {
					if (f.h[0].start != at)
						fprintf(stderr, "wrap %zu at %zu cut %zu\n", w, at, cut);
					CHECK_EQ(f.h[0].start, at);
					CHECK_EQ(f.h[0].end, at + kl + wl);
					CHECK_EQ(f.h[0].wrapped, 1);
				} else {
					fprintf(stderr, "wrap %zu at %zu cut %zu: %d hits\n", w, at, cut, f.n);
				}
			}
		}
	}
	/* Wrapped every 20 columns (PEM-like): five wraps. 20-byte pieces are shorter than the 31 bytes
	 * promised: not guaranteed, so only run. */
	wrap_every(s, keys[1], strlen(keys[1]), 20, 10, "\n", &f);
}

/* Put enc at text offset at, split into pieces of every bytes with wrap after each (the public prefix
 * split too), in filler; scan. */
static void
wrap_every(struct ak_scan *s, const char *enc, size_t el, size_t every, size_t at, const char *wrap,
    struct found *f)
{
	static uint8_t text[2048];
	size_t o = at, i, n;

	filler(text, sizeof(text));
	for (i = 0; i < el; i += every) {
		n = el - i < every ? el - i : every;
		memcpy(text + o, enc + i, n);
		o += n;
		memcpy(text + o, wrap, strlen(wrap));
		o += strlen(wrap);
	}
	memset(f, 0, sizeof(*f));
	ak_scan_buf(s, text, sizeof(text), collect, f);
}

/* The promise, exactly: one piece only just long enough (31 bytes) and every other piece too short to
 * hold a window (7 bytes), the long piece first, in the middle or last, at every offset modulo the
 * stride, each encoding. The public prefix keeps a piece of its own. */
static void
test_wrap_promise(struct ak_scan *s)
{
	static const char *const wraps[] = { "\n", "\\n", "\\\n  " };
	static uint8_t text[4096];
	char enc[1024];
	struct found f;
	size_t el, de, at, w, every, pl, big, where, o, i, n, kl = strlen(keys[2]);
	int kind;

	for (kind = 0; kind < 6; kind++) {
		el = encode(kind, 0, keys[2], enc);
		/* The distinctive part: after the public prefix's 13 characters, so many characters in;
		 * base64 (at alignment 0) from the first character free of the prefix's bits to the last
		 * whole one of the key's (the "\n" after it and the padding are not the key's). */
		pl = kind == 1 ? (8 * 13 + 5) / 6 : kind == 0 ? 13 : kind == 2 || kind == 5 ? 26 :
		    kind == 3 ? 39 : 78;
		de = kind == 1 ? 8 * kl / 6 : el;
		every = 31;
		for (where = 0; where < 3; where++) {
			/* Where the long piece starts: right after the prefix, mid-way, at the end. */
			big = where == 0 ? pl : where == 1 ? pl + (de - pl - every) / 2 : de - every;
			for (w = 0; w < sizeof(wraps) / sizeof(wraps[0]); w++) {
				/* A newline right after a backslash is a continuation, and JSON escapes
				 * are full of backslashes; JSON text never holds a raw newline anyway. */
				if (kind == 4 && w == 0)
					continue;
				for (at = 0; at < ak_scan_stride(s); at++) {
					filler(text, sizeof(text));
					o = 64 + at;
					memcpy(text + o, enc, pl);
					o += pl;
					for (i = pl; i < el; i += n) {
						n = i == big ? every : i < big && big - i < 7 ? big - i : 7;
						if (i >= de)
							n = el - i; /* base64's tail, not the key's */
						if (n > el - i)
							n = el - i;
						memcpy(text + o, wraps[w], strlen(wraps[w]));
						o += strlen(wraps[w]);
						memcpy(text + o, enc + i, n);
						o += n;
					}
					memset(&f, 0, sizeof(f));
					ak_scan_buf(s, text, sizeof(text), collect, &f);
					CHECK_EQ(f.n, 1);
					if (f.n != 1) {
						fprintf(stderr, "promise: kind %d piece %zu wrap %zu at %zu: %d hits\n",
						    kind, where, w, at, f.n);
						continue;
					}
					CHECK_EQ(f.h[0].secret, 2);
					CHECK_EQ(f.h[0].wrapped, 1);
				}
			}
		}
	}
	/* Pieces of 32 bytes of a raw key at one offset, as wrapped text often comes. */
	wrap_every(s, keys[1], strlen(keys[1]), 32, 10, "\n", &f);
	CHECK_EQ(f.n, 1);
	CHECK_EQ(f.h[0].secret, 1);
}

/* A short secret shortens the stride so that each of its encodings still holds a window on the grid. */
static void
test_short_stride(void)
{
	static const char key[] = "AKIAQWERTYUIOPASDFGHJK"; /* 4 + 18 */
	static uint8_t text[512];
	struct ak_scan *s = ak_scan_new(0);
	char enc[1024];
	struct found f;
	size_t el, at;
	uint32_t id;
	int kind;

	CHECK(s != NULL);
	CHECK_EQ(ak_scan_add(s, key, strlen(key), &id), AK_OK);
	CHECK_EQ(ak_scan_build(s), AK_OK);
	/* 18 raw bytes after the prefix hold a 16-byte window at every third position. */
	CHECK_EQ(ak_scan_stride(s), 3);
	for (kind = 0; kind < 6; kind++) {
		el = encode(kind, 0, key, enc);
		for (at = 0; at < ak_scan_stride(s) + 3; at++) {
			filler(text, sizeof(text));
			memcpy(text + 40 + at, enc, el);
			memset(&f, 0, sizeof(f));
			ak_scan_buf(s, text, sizeof(text), collect, &f);
			CHECK_EQ(f.n, 1);
		}
	}
	ak_scan_free(s);
}

/* Wrapped keys across the scan's blocks of 64 strides, with indentation longer than a window. */
static void
test_wrapped_blocks(struct ak_scan *s)
{
	static const size_t cuts[] = { 14, 29, 47, 61, 92 };
	static const size_t indents[] = { 0, 3, 150 };
	static uint8_t text[4 * 64 * 128];
	const size_t blk = 64 * ak_scan_stride(s), kl = strlen(keys[2]);
	struct found f;
	size_t c, d, at, o;

	for (c = 0; c < sizeof(cuts) / sizeof(cuts[0]); c++) {
		for (d = 0; d < sizeof(indents) / sizeof(indents[0]); d++) {
			for (at = blk - kl - indents[d] - 20; at < blk + 20; at++) {
				filler(text, sizeof(text));
				o = at;
				memcpy(text + o, keys[2], cuts[c]);
				o += cuts[c];
				text[o++] = '\n';
				memset(text + o, ' ', indents[d]);
				o += indents[d];
				memcpy(text + o, keys[2] + cuts[c], kl - cuts[c]);
				o += kl - cuts[c];
				memset(&f, 0, sizeof(f));
				ak_scan_buf(s, text, sizeof(text), collect, &f);
				CHECK_EQ(f.n, 1);
				if (f.n != 1) {
					fprintf(stderr, "cut %zu indent %zu at %zu: %d hits\n", cuts[c],
					    indents[d], at, f.n);
					continue;
				}
				CHECK_EQ(f.h[0].start, at);
				CHECK_EQ(f.h[0].end, o);
				CHECK_EQ(f.h[0].secret, 2);
			}
		}
	}
}

static void
test_clean(struct ak_scan *s)
{
	static uint8_t text[1 << 20];
	struct found f;
	char other[128];
	size_t i;

	randombytes_buf(text, sizeof(text));
	memset(&f, 0, sizeof(f));
	ak_scan_buf(s, text, sizeof(text), collect, &f);
	CHECK_EQ(f.n, 0);
	/* Keys sharing the public prefix and differing by one byte are not reported. */
	for (i = 0; i < sizeof(text) - 200; i += 200) {
		memcpy(other, keys[i % NKEYS], 109);
		other[13 + (i / 200) % 95] ^= 1;
		memcpy(text + i, other, 108);
	}
	memset(&f, 0, sizeof(f));
	ak_scan_buf(s, text, sizeof(text), collect, &f);
	CHECK_EQ(f.n, 0);
	/* Two keys back to back: two hits. */
	memcpy(text, keys[2], 108);
	memcpy(text + 108, keys[3], 108);
	memset(&f, 0, sizeof(f));
	ak_scan_buf(s, text, 216, collect, &f);
	CHECK_EQ(f.n, 2);
	CHECK_EQ(f.h[0].secret, 2);
	CHECK_EQ(f.h[1].secret, 3);
}

static void
test_holdback(void)
{
	struct ak_scan *s = ak_scan_new(1);
	uint32_t id;
	uint8_t text[512];
	size_t kl = strlen(keys[0]), cut;

	CHECK(s != NULL);
	CHECK_EQ(ak_scan_add(s, keys[0], kl, &id), AK_OK);
	CHECK_EQ(ak_scan_build(s), AK_OK);
	memcpy(text, "hello ", 6);
	for (cut = 0; cut <= kl; cut++) {
		memcpy(text + 6, keys[0], cut);
		if (cut <= 13) /* the public prefix alone is never held */
			CHECK_EQ(ak_scan_holdback(s, text, 6 + cut), 0);
		else
			CHECK_EQ(ak_scan_holdback(s, text, 6 + cut), cut);
	}
	/* A wrap at the end of the text is held with what it follows. */
	memcpy(text + 6, keys[0], 40);
	memcpy(text + 46, "\\\n", 2);
	CHECK_EQ(ak_scan_holdback(s, text, 48), 42);
	memcpy(text, "plain text, nothing to hold", 27);
	CHECK_EQ(ak_scan_holdback(s, text, 27), 0);
	ak_scan_free(s);
}

/* A secret of any bytes (punctuation, a backslash, '%', a space, UTF-8): the prefilter's byte set and
 * the window classes follow the secret, so it is found at every offset, in a view as in the matcher,
 * and a copy differing in one byte is not. */
static void
test_odd_bytes(void)
{
	static const char secret[] = "p@ss w\rd%41 \u00e9 caf\xc3\xa9 \"q\" {x=1}; tail\x7f\xff!";
	struct ak_scan *s = ak_scan_new(0), *v;
	uint8_t text[600];
	size_t sl = strlen(secret), at, i;
	struct found f;
	uint32_t id;

	CHECK(s != NULL);
	CHECK_EQ(ak_scan_add(s, secret, sl, &id), AK_OK);
	CHECK_EQ(ak_scan_build(s), AK_OK);
	CHECK((v = ak_scan_view(s)) != NULL);
	CHECK(ak_scan_view(v) == NULL);
	for (at = 0; at < 40; at++) {
		filler(text, sizeof(text));
		memcpy(text + 100 + at, secret, sl);
		for (i = 0; i < 2; i++) {
			memset(&f, 0, sizeof(f));
			ak_scan_buf(i ? v : s, text, sizeof(text), collect, &f);
			CHECK_EQ(f.n, 1);
			CHECK_EQ(f.h[0].start, 100 + at);
			CHECK_EQ(f.h[0].end, 100 + at + sl);
			CHECK_EQ(f.h[0].variant, AK_SCAN_RAW);
		}
		/* percent-encoded (every byte %XX) too */
		filler(text, sizeof(text));
		CHECK(encode(3, 0, secret, (char *)text + 50 + at) > 0);
		memset(&f, 0, sizeof(f));
		ak_scan_buf(v, text, sizeof(text), collect, &f);
		CHECK_EQ(f.n, 1);
		CHECK_EQ(f.h[0].variant, AK_SCAN_PERCENT);
		filler(text, sizeof(text));
		memcpy(text + 100 + at, secret, sl);
		text[100 + at + sl - 2 - at % 20] ^= 0x20;
		memset(&f, 0, sizeof(f));
		ak_scan_buf(s, text, sizeof(text), collect, &f);
		CHECK_EQ(f.n, 0);
	}
	ak_scan_free(v);
	ak_scan_free(s);
}

static int
collect_pat(void *arg, const struct ak_scan_hit *hit)
{
	return collect(arg, hit);
}

struct pat_hits {
	size_t n;
	size_t start[256], end[256];
	uint32_t pat[256];
};

static int
collect_pat_all(void *arg, const struct ak_scan_hit *hit)
{
	struct pat_hits *h = arg;

	if (h->n < 256) {
		h->start[h->n] = hit->start;
		h->end[h->n] = hit->end;
		h->pat[h->n] = hit->secret;
	}
	h->n++;
	return 0;
}

/* The vector search against the pair-probing one: the same strings, in the same order, on text dense
 * with prefixes, near-prefixes, key characters and separators, at every length up to a few blocks
 * (every tail). */
static void
test_patterns_same(void)
{
	static const char *const toks[] = { "sk-ant-api03-", "sk-ant-admin01-", "sk-proj-", "sk-", "ghp_",
		"gho_", "github_pat_", "glpat-", "xoxb-", "xoxp-", "AKIA", "AIza", "sk", "gh", "s", "g", "A",
		"x", "-", "_", " ", "\n", "=", "\"", "k", "K", "I" };
	static const char run[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	static char text[4096];
	static struct pat_hits a, b;
	size_t n, t, i, k, len, mism = 0, found = 0;
	uint64_t x;
	int round;

	/* A xorshift seeded once, as filler's. */
	randombytes_buf(&x, sizeof(x));
	x |= 1;
#define NEXT(m) (x ^= x << 13, x ^= x >> 7, x ^= x << 17, (size_t)((x >> 32) % (m)))
	for (round = 0; round < 3000; round++) {
		len = round < 200 ? (size_t)round : 64 + NEXT(sizeof(text) - 200);
		for (n = 0; n < len;) {
			t = NEXT(4);
			if (t <= 1) {
				const char *tk = toks[NEXT(sizeof(toks) / sizeof(toks[0]))];

				for (k = 0; tk[k] && n < len; k++)
					text[n++] = tk[k];
			} else {
				/* A run of key characters, often as long as a key's. */
				size_t r = t == 2 ? NEXT(8) : 15 + NEXT(110);

				for (k = 0; k < r && n < len; k++)
					text[n++] = run[NEXT(sizeof(run) - 1)];
			}
		}
		/* Half the texts end in a key-shaped string, so the last positions, past the last whole
		 * block, hold one as often as the rest. */
		if (len >= 21 && NEXT(2) == 0) {
			memcpy(text + len - 21, " AKIA", 5);
			for (k = len - 16; k < len; k++)
				text[k] = run[NEXT(36) < 26 ? NEXT(26) : 52 + NEXT(10)];
		}
#undef NEXT
		a.n = b.n = 0;
		ak_scan_patterns((const uint8_t *)text, len, collect_pat_all, &a);
		ak_scan_patterns_pairs((const uint8_t *)text, len, collect_pat_all, &b);
		found += b.n;
		if (a.n != b.n) {
			mism++;
			continue;
		}
		for (i = 0; i < a.n && i < 256; i++)
			if (a.start[i] != b.start[i] || a.end[i] != b.end[i] || a.pat[i] != b.pat[i])
				break;
		mism += i < a.n && i < 256;
	}
	CHECK_EQ(mism, 0);
	/* The text does hold key-shaped strings: the comparison is not between two empty lists. */
	if (found < 100)
		fprintf(stderr, "patterns: only %zu found\n", found);
	CHECK(found >= 100);
}

static void
test_patterns(void)
{
	char text[1024];
	struct found f;

	snprintf(text, sizeof(text), "KEY=%s\nx task-%s", keys[4], keys[5] + 3);
	memset(&f, 0, sizeof(f));
	ak_scan_patterns((const uint8_t *)text, strlen(text), collect_pat, &f);
	CHECK_EQ(f.n, 1);
	CHECK_EQ(f.h[0].start, 4);
	CHECK_EQ(f.h[0].end, 4 + 108);
	CHECK_STR(ak_scan_pattern_name(f.h[0].secret), "anthropic-api-key");
	snprintf(text, sizeof(text), "id AKIA%s, ghp_%s, sk-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	    "ABCDEFGHIJ234567", "abcdefghijklmnopqrstuvwxyz0123456789");
	memset(&f, 0, sizeof(f));
	ak_scan_patterns((const uint8_t *)text, strlen(text), collect_pat, &f);
	CHECK_EQ(f.n, 2);
}

/* ak_scan_build hashes the secrets' windows on two threads when two CPUs may run them, and appends
 * the second thread's to the first's. The matcher must be the same as one built on one thread: the
 * same hits (secret, variant, where, wrapped) in the same order, over every encoding of every key, a
 * key stored twice under one id, a short secret and wrapped copies, and the same holdback. */
struct hitlist {
	size_t n;
	struct ak_scan_hit h[1024];
};

static int
collect_all(void *arg, const struct ak_scan_hit *hit)
{
	struct hitlist *l = arg;

	if (l->n < sizeof(l->h) / sizeof(l->h[0]))
		l->h[l->n] = *hit;
	l->n++;
	return 0;
}

static struct ak_scan *
build_on(int one_cpu, int holdback)
{
	cpu_set_t all, one;
	struct ak_scan *s = ak_scan_new(holdback);
	uint32_t id;
	int k, cpu;

	CHECK(s != NULL);
	CHECK(sched_getaffinity(0, sizeof(all), &all) == 0);
	for (k = 0; k < NKEYS; k++)
		CHECK_EQ(ak_scan_add(s, keys[k], strlen(keys[k]), &id), AK_OK);
	CHECK_EQ(ak_scan_add(s, keys[5], strlen(keys[5]), &id), AK_OK);
	CHECK_EQ(ak_scan_add(s, "AKIAABCDEFGHIJKLMNOPQR", 22, &id), AK_OK);
	if (one_cpu) {
		for (cpu = 0; !CPU_ISSET(cpu, &all); cpu++)
			;
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		CHECK(sched_setaffinity(0, sizeof(one), &one) == 0);
	}
	CHECK_EQ(ak_scan_build(s), AK_OK);
	CHECK(sched_setaffinity(0, sizeof(all), &all) == 0);
	return s;
}

static void
test_split_build(void)
{
	static uint8_t text[1 << 16];
	static struct hitlist l1, l2;
	struct ak_scan *a, *b;
	cpu_set_t all;
	char enc[1024];
	size_t o = 0, el, i, cut;
	int k, kind, var, nvar;

	CHECK(sched_getaffinity(0, sizeof(all), &all) == 0);
	if (CPU_COUNT(&all) < 2) {
		fprintf(stderr, "test_split_build: one CPU, the build is never split here\n");
		return;
	}
	filler(text, sizeof(text));
	for (k = 0; k < NKEYS; k++) {
		for (kind = 0; kind < 6; kind++) {
			nvar = kind == 1 ? 6 : (kind == 0 || kind == 5 ? 1 : 2);
			for (var = 0; var < nvar; var++) {
				el = encode(kind, var, keys[k], enc);
				if (o + el + 40 > sizeof(text) - 200)
					break;
				o += 7 + (size_t)(k + kind + var) % 13;
				memcpy(text + o, enc, el);
				o += el;
			}
		}
	}
	/* A wrapped copy and the short secret. */
	memcpy(text + o + 10, keys[1], 50);
	memcpy(text + o + 60, "\\\n    ", 6);
	memcpy(text + o + 66, keys[1] + 50, strlen(keys[1]) - 50);
	memcpy(text + o + 200, "AKIAABCDEFGHIJKLMNOPQR", 22);
	for (cut = 0; cut < 2; cut++) {
		a = build_on(1, (int)cut);
		b = build_on(0, (int)cut);
		memset(&l1, 0, sizeof(l1));
		memset(&l2, 0, sizeof(l2));
		ak_scan_buf(a, text, sizeof(text), collect_all, &l1);
		ak_scan_buf(b, text, sizeof(text), collect_all, &l2);
		CHECK(l1.n > (size_t)NKEYS * 8);
		CHECK_EQ(l1.n, l2.n);
		for (i = 0; i < l1.n && i < l2.n && i < sizeof(l1.h) / sizeof(l1.h[0]); i++) {
			CHECK_EQ(l1.h[i].secret, l2.h[i].secret);
			CHECK_EQ(l1.h[i].variant, l2.h[i].variant);
			CHECK_EQ(l1.h[i].start, l2.h[i].start);
			CHECK_EQ(l1.h[i].end, l2.h[i].end);
			CHECK_EQ(l1.h[i].wrapped, l2.h[i].wrapped);
		}
		CHECK_EQ(ak_scan_stride(a), ak_scan_stride(b));
		CHECK_EQ(ak_scan_span(a), ak_scan_span(b));
		if (cut)
			for (i = 1; i <= strlen(keys[6]); i++)
				CHECK_EQ(ak_scan_holdback(a, (const uint8_t *)keys[6], i),
				    ak_scan_holdback(b, (const uint8_t *)keys[6], i));
		ak_scan_free(a);
		ak_scan_free(b);
	}
}

int
main(void)
{
	struct ak_scan *s;
	uint32_t id;
	char fp1[13], fp2[13];
	int k;

	CHECK(ak_smem_init() == 0);
	for (k = 0; k < NKEYS; k++)
		fake_key(keys[k]);
	s = ak_scan_new(0);
	CHECK(s != NULL);
	for (k = 0; k < NKEYS; k++) {
		CHECK_EQ(ak_scan_add(s, keys[k], strlen(keys[k]), &id), AK_OK);
		CHECK_EQ(id, k);
	}
	CHECK_EQ(ak_scan_add(s, keys[3], strlen(keys[3]), &id), AK_OK); /* same key, second name */
	CHECK_EQ(id, 3);
	CHECK_EQ(ak_scan_add(s, "sk-ant-api03-short", 18, &id), AK_ERR_INVALID);
	CHECK_EQ(ak_scan_build(s), AK_OK);
	CHECK_EQ(ak_scan_count(s), NKEYS);
	/* Every encoding of these keys is long: the stride is at its most. */
	CHECK_EQ(ak_scan_stride(s), 16);
	ak_scan_secret_fingerprint(s, 0, fp1);
	ak_scan_fingerprint(s, (const uint8_t *)keys[0], strlen(keys[0]), fp2);
	CHECK_STR(fp1, fp2);
	CHECK_EQ(strlen(fp1), 12);
	test_variants(s);
	test_wrapped(s);
	test_wrap_promise(s);
	test_wrapped_blocks(s);
	test_short_stride();
	test_clean(s);
	ak_scan_free(s);
	test_holdback();
	test_odd_bytes();
	test_patterns();
	test_patterns_same();
	test_split_build();
	ak_smem_release_all();
	T_DONE();
}
