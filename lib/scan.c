/* scan.c - the exact matcher for stored secrets (contract and design in ak_scan.h). */
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include <sys/mman.h>
#include <unistd.h>

#include <sodium.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "ak_cpu.h"
#include "ak_scan.h"
#include "ak_smem.h"

#define W AK_SCAN_WINDOW
#define CONFIRM_BYTES 16
/* An occurrence split by wraps may spread this many times its length (indentation, "\r\n"...). */
#define SPAN_FACTOR 4

/* Public prefixes: the part of a key every key of its kind shares. Longest first within a family. */
static const char *const public_prefixes[] = {
	"sk-ant-api03-", "sk-ant-admin01-", "sk-ant-oat01-", "sk-ant-",
	"sk-proj-", "sk-svcacct-", "sk-admin-", "sk-",
	"github_pat_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "glpat-",
	"xoxb-", "xoxp-", "xoxa-", "AKIA", "ASIA", "AIza",
};

struct variant {
	uint32_t secret;
	uint8_t kind;
	uint32_t len;      /* core length */
	uint32_t dstart;   /* where the distinctive part starts in the core */
	uint8_t hdist[CONFIRM_BYTES];  /* keyed BLAKE2b of core[dstart..len) */
	uint8_t hpre[CONFIRM_BYTES];   /* of core[0..dstart), when dstart > 0 */
};

struct wentry {
	uint64_t h;
	uint32_t var;
	uint32_t off;      /* window offset in the core */
};

struct pending {
	uint8_t *v;                /* a copy of the value, in the secure arena */
	size_t len;
	uint32_t id;
};

struct keys {                  /* in the secure arena */
	uint64_t k1, k2, base;
	uint8_t confirm[crypto_generichash_KEYBYTES];
	uint8_t fp[crypto_generichash_KEYBYTES];
};

struct ak_scan {
	struct keys *k;
	struct variant *vars;
	size_t nvars, capvars;
	struct wentry *win;       /* every window, in the order added, until the table is made */
	size_t nwin, capwin;
	struct wentry *ent;       /* the windows again, by bucket (bits 20 up of the hash), each bucket in
				   * the order added: bucket b is ent[boff[b]..boff[b + 1]) */
	uint32_t *boff;           /* nbuck + 2 offsets */
	uint8_t *wcls;            /* each window's class (win_class), until the table is made */
	size_t capcls;
	size_t bmask;             /* buckets - 1 */
	uint64_t *filt[2];        /* filters over window hashes, one per class: 3 bits in one word each */
	size_t fmask[2];
	uint64_t *pre;            /* sorted hashes of core prefixes (holdback) */
	size_t npre, cappre;
	uint64_t *prebits;
	unsigned preshift;
	uint8_t (*ids)[32];       /* unkeyed BLAKE2b of each secret, in the secure arena */
	struct pending *pend;     /* secrets added and not yet hashed into windows (ak_scan_build does) */
	size_t npend, cappend;
	size_t nsecrets;
	size_t stride, maxlen, maxdstart, mindlen;
	uint8_t *norm;            /* scratch for normalised text (secure: it holds candidates) */
	uint32_t *map;
	size_t normcap;
	uint64_t bytes[4];        /* every byte of every distinctive part (a window holds no other) */
	uint64_t corebytes[4];    /* every byte of every variant, prefix included (holdback) */
	uint8_t nib_lo[16], nib_hi[16];  /* the same set for the charset prefilter (see charset_block) */
	uint64_t (*prefilter)(const struct ak_scan *s, const uint8_t *t, size_t npos);
	int high;                 /* a distinctive part holds a byte from 0x80 up */
	int built, holdback;
	int view;                 /* a worker's view: owns only norm and map */
};

static const char *const variant_names[AK_SCAN_NVARIANTS] = {
	[AK_SCAN_RAW] = "raw", [AK_SCAN_BASE64] = "base64", [AK_SCAN_BASE64URL] = "base64url",
	[AK_SCAN_HEX] = "hex", [AK_SCAN_PERCENT] = "percent", [AK_SCAN_URLENCODED] = "url-encoded",
	[AK_SCAN_JSON_ESCAPE] = "json-escape", [AK_SCAN_UTF16LE] = "utf16le",
};

const char *
ak_scan_variant_name(enum ak_scan_variant v)
{
	return (unsigned)v < AK_SCAN_NVARIANTS ? variant_names[v] : "?";
}

static uint64_t
load64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

/* Keyed 64-bit hash of a 16-byte window: one 64x64->128-bit multiplication of the two halves, each
 * masked by a secret key, folded (wyhash's "mum"). Not a MAC: its key is secret, so the table reveals
 * nothing usable, and every hit is confirmed with keyed BLAKE2b anyway. Never 0. */
static inline uint64_t
whash(const struct keys *k, const uint8_t *p)
{
	/* __extension__: the 128-bit product is a GCC/Clang extension (both compilers we build with). */
	__extension__ typedef unsigned __int128 u128;
	u128 m = (u128)(load64(p) ^ k->k1) * (load64(p + 8) ^ k->k2);
	uint64_t h = (uint64_t)m ^ (uint64_t)(m >> 64);

	return h | (h == 0);
}

/* A window's class: 1 when it holds a backslash, '%' or NUL (every window of a JSON-escaped, percent
 * or UTF-16 variant does), else 0. Each class has its own filter, so plain text (class 0) consults one
 * built from the raw, base64 and hex windows alone: a third of the size, it stays in the CPU's cache.
 * Equal windows have equal classes, so the split loses nothing. */
static inline unsigned
win_class(const uint8_t *p)
{
#ifdef __SSE2__
	__m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
	__m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('\\')),
	    _mm_cmpeq_epi8(v, _mm_set1_epi8('%'))), _mm_cmpeq_epi8(v, _mm_setzero_si128()));

	return _mm_movemask_epi8(m) != 0;
#else
	/* Per 64-bit word: a zero byte in x, x ^ '\\'... (the classic "has zero byte" test). */
	const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
	uint64_t a = load64(p), b = load64(p + 8), z = 0;
	unsigned i;

	for (i = 0; i < 2; i++) {
		uint64_t x = i ? b : a, y = x ^ (ones * '\\'), w = x ^ (ones * '%');

		z |= ((x - ones) & ~x) | ((y - ones) & ~y) | ((w - ones) & ~w);
	}
	return (z & highs) != 0;
#endif
}

/* The filter: word from the low bits, three bit positions from the top 18. */
static inline uint64_t
filt_want(uint64_t h)
{
	return (1ull << (h >> 58)) | (1ull << ((h >> 52) & 63)) | (1ull << ((h >> 46) & 63));
}

/* A window's bucket: bits the filter does not use. */
static inline size_t
bucket(uint64_t h, size_t bmask)
{
	return (size_t)(h >> 20) & bmask;
}

static void
confirm_hash(const struct keys *k, const uint8_t *p, size_t n, uint8_t out[CONFIRM_BYTES])
{
	crypto_generichash(out, CONFIRM_BYTES, p, n, k->confirm, sizeof(k->confirm));
}

struct ak_scan *
ak_scan_new(int holdback)
{
	struct ak_scan *s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->holdback = holdback;
	if ((s->k = ak_smem_alloc(sizeof(*s->k))) == NULL) {
		free(s);
		return NULL;
	}
	randombytes_buf(&s->k->k1, sizeof(s->k->k1));
	randombytes_buf(&s->k->k2, sizeof(s->k->k2));
	randombytes_buf(&s->k->base, sizeof(s->k->base));
	s->k->base |= 1;
	randombytes_buf(s->k->confirm, sizeof(s->k->confirm));
	s->mindlen = SIZE_MAX;
	return s;
}

/* The tables: zeroed blocks, and from BIG_MIN on mapped on their own with transparent huge pages
 * asked for. Building them touches every page once; at 4 KiB a page fault each cost more than the
 * hashing (a scan of a small tree was mostly that), and zero pages come with the mapping, so no memset
 * either. wipe_free takes the size given to big_alloc: it decides how the block goes back. */
#define BIG_MIN ((size_t)1 << 20)

static void *
big_alloc(size_t n, size_t elem)
{
	void *p;

	if (n == 0 || n > SIZE_MAX / elem)
		return NULL;
	n *= elem;
	if (n < BIG_MIN)
		return calloc(1, n);
	p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	/* Huge pages where the block spans them: a fault per 2 MiB, not per 4 KiB. Then every page at
	 * once (MAP_POPULATE would populate before the advice). Both only advice: without them the pages
	 * come as they are first touched. */
	(void)madvise(p, n, MADV_HUGEPAGE);
	(void)madvise(p, n, MADV_POPULATE_WRITE);
	return p;
}

/* Wipe the first used bytes (the tables hold keyed hashes only, but nothing of the matcher goes back
 * unwiped) and free a block of n bytes from big_alloc. Only the part in use: a grown block's tail was
 * never written, and wiping it would make the kernel supply each of its pages first. */
static void
wipe_free_used(void *p, size_t used, size_t n)
{
	if (p == NULL)
		return;
	sodium_memzero(p, used < n ? used : n);
	if (n < BIG_MIN)
		free(p);
	else
		munmap(p, n);
}

static void
wipe_free(void *p, size_t n)
{
	wipe_free_used(p, n, n);
}

struct ak_scan *
ak_scan_view(const struct ak_scan *s)
{
	struct ak_scan *v;

	if (!s->built || s->view || (v = malloc(sizeof(*v))) == NULL)
		return NULL;
	*v = *s;
	v->view = 1;
	v->map = NULL;
	if ((v->norm = ak_smem_alloc(v->normcap)) == NULL ||
	    (v->map = big_alloc(v->normcap, sizeof(*v->map))) == NULL) {
		ak_smem_free(v->norm);
		free(v);
		return NULL;
	}
	return v;
}

static void
pending_free(struct ak_scan *s)
{
	size_t i;

	for (i = 0; i < s->npend; i++)
		ak_smem_free(s->pend[i].v);
	free(s->pend);
	s->pend = NULL;
	s->npend = s->cappend = 0;
}

void
ak_scan_free(struct ak_scan *s)
{
	if (s == NULL)
		return;
	if (s->view) {
		wipe_free(s->map, s->normcap * sizeof(*s->map));
		ak_smem_free(s->norm);
		free(s);
		return;
	}
	wipe_free_used(s->vars, s->nvars * sizeof(*s->vars), s->capvars * sizeof(*s->vars));
	wipe_free_used(s->win, s->nwin * sizeof(*s->win), s->capwin * sizeof(*s->win));
	wipe_free(s->ent, s->ent != NULL ? (s->nwin ? s->nwin : 1) * sizeof(*s->ent) : 0);
	wipe_free(s->boff, s->boff != NULL ? (s->bmask + 3) * sizeof(*s->boff) : 0);
	wipe_free(s->filt[0], s->filt[0] != NULL ? (s->fmask[0] + 1) * 8 : 0);
	wipe_free(s->filt[1], s->filt[1] != NULL ? (s->fmask[1] + 1) * 8 : 0);
	wipe_free_used(s->wcls, s->nwin, s->capcls);
	wipe_free_used(s->pre, s->npre * sizeof(*s->pre), s->cappre * sizeof(*s->pre));
	wipe_free(s->prebits, s->prebits != NULL ? ((size_t)1 << (64 - s->preshift)) / 8 : 0);
	wipe_free(s->map, s->normcap * sizeof(*s->map));
	pending_free(s);
	ak_smem_free(s->norm);
	ak_smem_free(s->ids);
	ak_smem_free(s->k);
	free(s);
}

static int
grow(void **p, size_t *cap, size_t need, size_t elem)
{
	size_t ncap;
	void *np;

	if (need <= *cap)
		return 0;
	ncap = *cap ? *cap : 64;
	while (ncap < need)
		ncap *= 2;
	if (ncap > SIZE_MAX / elem)
		return -1;
	/* A mapped block grows where its pages are, moved rather than copied: nothing is left behind. */
	if (*p != NULL && *cap * elem >= BIG_MIN) {
		if ((np = mremap(*p, *cap * elem, ncap * elem, MREMAP_MAYMOVE)) == MAP_FAILED)
			return -1;
		*p = np;
		*cap = ncap;
		return 0;
	}
	/* Not realloc: the old block is wiped before it goes back. */
	if ((np = big_alloc(ncap, elem)) == NULL)
		return -1;
	if (*p != NULL) {
		memcpy(np, *p, *cap * elem);
		wipe_free(*p, *cap * elem);
	}
	*p = np;
	*cap = ncap;
	return 0;
}

static size_t
public_prefix_len(const char *v, size_t len)
{
	size_t i, n;

	for (i = 0; i < sizeof(public_prefixes) / sizeof(public_prefixes[0]); i++) {
		n = strlen(public_prefixes[i]);
		if (n < len && memcmp(v, public_prefixes[i], n) == 0)
			return n;
	}
	return 0;
}

/* Encoders: each writes the core of a variant into out (room for 6 * len + 8 bytes) and returns its
 * length, with *dstart the core offset where bytes from plen on begin to show. */
static size_t
enc_bytes(const uint8_t *v, size_t len, size_t plen, enum ak_scan_variant kind, int upper, uint8_t *out,
    size_t *dstart)
{
	static const char lo[] = "0123456789abcdef", up[] = "0123456789ABCDEF";
	const char *hx = upper ? up : lo;
	size_t i, o = 0;
	uint8_t c;

	for (i = 0; i < len; i++) {
		if (i == plen)
			*dstart = o;
		c = v[i];
		switch (kind) {
		case AK_SCAN_HEX:
			out[o++] = (uint8_t)hx[c >> 4];
			out[o++] = (uint8_t)hx[c & 15];
			break;
		case AK_SCAN_PERCENT:
			out[o++] = '%';
			out[o++] = (uint8_t)hx[c >> 4];
			out[o++] = (uint8_t)hx[c & 15];
			break;
		case AK_SCAN_URLENCODED:
			if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			    c == '-' || c == '_' || c == '.' || c == '~') {
				out[o++] = c;
			} else {
				out[o++] = '%';
				out[o++] = (uint8_t)hx[c >> 4];
				out[o++] = (uint8_t)hx[c & 15];
			}
			break;
		case AK_SCAN_JSON_ESCAPE:
			memcpy(out + o, "\\u00", 4);
			o += 4;
			out[o++] = (uint8_t)hx[c >> 4];
			out[o++] = (uint8_t)hx[c & 15];
			break;
		case AK_SCAN_UTF16LE:
			out[o++] = c;
			out[o++] = 0;
			break;
		case AK_SCAN_RAW:
		case AK_SCAN_BASE64:
		case AK_SCAN_BASE64URL:
		case AK_SCAN_NVARIANTS:
			out[o++] = c;
			break;
		}
	}
	if (plen >= len)
		*dstart = o;
	return o;
}

/* base64 of v placed after `align` unknown bytes: only the characters that depend on v alone. */
static size_t
enc_base64(const uint8_t *v, size_t len, size_t plen, size_t align, int url, uint8_t *tmp, uint8_t *out,
    size_t *dstart)
{
	size_t n = align + len + 2, cs, ce, ds, enclen;
	char *e = (char *)out;

	memset(tmp, 0, align);
	memcpy(tmp + align, v, len);
	memset(tmp + align + len, 0, 2);
	enclen = sodium_base64_encoded_len(n, sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
	sodium_bin2base64(e, enclen, tmp, n,
	    url ? sodium_base64_VARIANT_URLSAFE_NO_PADDING : sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
	sodium_memzero(tmp, n);
	cs = (8 * align + 5) / 6;
	ce = 8 * (align + len) / 6;
	ds = (8 * (align + plen) + 5) / 6;
	memmove(out, out + cs, ce - cs);
	*dstart = ds > cs ? ds - cs : 0;
	return ce - cs;
}

/* Prefix hashes for holdback: H(c0..ck-1) = sum c_i B^i, tagged with k, so that a suffix of the text
 * can be hashed from its end backwards one byte at a time. */
static inline uint64_t
pre_tag(uint64_t g, size_t k)
{
	uint64_t h = g ^ (k * 0x9e3779b97f4a7c15ull);

	h ^= h >> 31;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 27;
	return h;
}

static int
add_variant(struct ak_scan *s, uint32_t id, enum ak_scan_variant kind, const uint8_t *core, size_t len,
    size_t dstart)
{
	struct variant *v;
	size_t i, o;
	uint8_t h[CONFIRM_BYTES];

	if (len - dstart < W)
		return 0; /* too short to hold a window: the raw variant's check already refused real ones */
	confirm_hash(s->k, core + dstart, len - dstart, h);
	/* The same core from two encodings (base64 and base64url of a key without '+' or '/'). */
	for (i = 0; i < s->nvars; i++)
		if (s->vars[i].secret == id && s->vars[i].len == len &&
		    sodium_memcmp(s->vars[i].hdist, h, sizeof(h)) == 0)
			return 0;
	if (grow((void **)&s->vars, &s->capvars, s->nvars + 1, sizeof(*s->vars)) != 0 ||
	    grow((void **)&s->win, &s->capwin, s->nwin + (len - dstart - W + 1), sizeof(*s->win)) != 0 ||
	    grow((void **)&s->wcls, &s->capcls, s->nwin + (len - dstart - W + 1), 1) != 0)
		return -1;
	v = &s->vars[s->nvars];
	v->secret = id;
	v->kind = (uint8_t)kind;
	v->len = (uint32_t)len;
	v->dstart = (uint32_t)dstart;
	memcpy(v->hdist, h, sizeof(h));
	if (dstart > 0)
		confirm_hash(s->k, core, dstart, v->hpre);
	if (s->holdback) {
		uint64_t g = 0, pw = 1;

		if (grow((void **)&s->pre, &s->cappre, s->npre + len, sizeof(*s->pre)) != 0)
			return -1;
		for (o = 0; o < len; o++) {
			g += core[o] * pw;
			pw *= s->k->base;
			if (o + 1 > dstart)
				s->pre[s->npre++] = pre_tag(g, o + 1);
			s->corebytes[core[o] >> 6] |= 1ull << (core[o] & 63);
		}
	}
	for (o = dstart; o < len; o++)
		s->bytes[core[o] >> 6] |= 1ull << (core[o] & 63);
	for (o = dstart; o + W <= len; o++) {
		s->win[s->nwin].h = whash(s->k, core + o);
		s->wcls[s->nwin] = (uint8_t)win_class(core + o);
		s->win[s->nwin].var = (uint32_t)s->nvars;
		s->win[s->nwin].off = (uint32_t)o;
		s->nwin++;
	}
	s->nvars++;
	if (len > s->maxlen)
		s->maxlen = len;
	if (dstart > s->maxdstart)
		s->maxdstart = dstart;
	if (len - dstart < s->mindlen)
		s->mindlen = len - dstart;
	return 0;
}

/* Every variant of secret id (value v) into s: its windows, hashed. 0, or -1 out of memory. */
static int
add_secret(struct ak_scan *s, const uint8_t *v, size_t len, uint32_t id)
{
	static const enum ak_scan_variant kinds[] = { AK_SCAN_HEX, AK_SCAN_PERCENT, AK_SCAN_URLENCODED,
		AK_SCAN_JSON_ESCAPE };
	uint8_t *core = NULL, *tmp = NULL;
	size_t plen = public_prefix_len((const char *)v, len), clen, ds = 0, i, a;
	int ascii = 1, r = -1;

	/* The encodings hold the secret: build them in the arena, wipe them right after hashing. */
	core = ak_smem_alloc(6 * len + 16);
	tmp = ak_smem_alloc(len + 8);
	if (core == NULL || tmp == NULL)
		goto out;
	for (i = 0; i < len; i++)
		if (v[i] >= 0x80)
			ascii = 0;
	clen = enc_bytes(v, len, plen, AK_SCAN_RAW, 0, core, &ds);
	if (add_variant(s, id, AK_SCAN_RAW, core, clen, ds) != 0)
		goto out;
	for (a = 0; a < 3; a++) {
		clen = enc_base64(v, len, plen, a, 0, tmp, core, &ds);
		if (add_variant(s, id, AK_SCAN_BASE64, core, clen, ds) != 0)
			goto out;
		clen = enc_base64(v, len, plen, a, 1, tmp, core, &ds);
		if (add_variant(s, id, AK_SCAN_BASE64URL, core, clen, ds) != 0)
			goto out;
	}
	for (a = 0; a < 2; a++) {
		for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
			clen = enc_bytes(v, len, plen, kinds[i], (int)a, core, &ds);
			if (add_variant(s, id, kinds[i], core, clen, ds) != 0)
				goto out;
		}
	}
	if (ascii) {
		clen = enc_bytes(v, len, plen, AK_SCAN_UTF16LE, 0, core, &ds);
		if (add_variant(s, id, AK_SCAN_UTF16LE, core, clen, ds) != 0)
			goto out;
	}
	r = 0;
out:
	ak_smem_free(core);
	ak_smem_free(tmp);
	return r;
}

/* Only the id here: the value is kept (in the arena) and hashed into windows by ak_scan_build, which
 * shares that work between two threads. */
enum ak_err
ak_scan_add(struct ak_scan *s, const char *value, size_t len, uint32_t *id)
{
	const uint8_t *v = (const uint8_t *)value;
	uint8_t idh[32];
	uint8_t *copy;
	size_t plen, i;

	*id = 0;
	if (s->built)
		return AK_ERR_INTERNAL;
	plen = public_prefix_len(value, len);
	if (len > (1u << 20) || len - plen < AK_SCAN_MIN_SECRET)
		return AK_ERR_INVALID;
	crypto_generichash(idh, sizeof(idh), v, len, NULL, 0);
	for (i = 0; i < s->nsecrets; i++) {
		if (sodium_memcmp(s->ids[i], idh, sizeof(idh)) == 0) {
			*id = (uint32_t)i;
			sodium_memzero(idh, sizeof(idh));
			return AK_OK;
		}
	}
	if (s->npend == s->cappend) {
		size_t cap = s->cappend ? 2 * s->cappend : 16;
		struct pending *np = realloc(s->pend, cap * sizeof(*np));

		if (np == NULL)
			goto nomem;
		s->pend = np;
		s->cappend = cap;
	}
	if ((copy = ak_smem_alloc(len)) == NULL)
		goto nomem;
	/* The id table is tiny: regrow it in the arena, copying (the old block is wiped on free). */
	{
		uint8_t(*nids)[32] = ak_smem_alloc((s->nsecrets + 1) * 32);

		if (nids == NULL) {
			ak_smem_free(copy);
			goto nomem;
		}
		if (s->nsecrets > 0)
			memcpy(nids, s->ids, s->nsecrets * 32);
		ak_smem_free(s->ids);
		s->ids = nids;
	}
	memcpy(s->ids[s->nsecrets], idh, sizeof(idh));
	sodium_memzero(idh, sizeof(idh));
	memcpy(copy, v, len);
	*id = (uint32_t)s->nsecrets++;
	s->pend[s->npend].v = copy;
	s->pend[s->npend].len = len;
	s->pend[s->npend].id = *id;
	s->npend++;
	return AK_OK;
nomem:
	sodium_memzero(idh, sizeof(idh));
	return AK_ERR_NOMEM;
}

/* The secrets added, hashed into windows: the first half on this thread into s, the second on another
 * into a matcher of its own sharing s's keys, then appended to s, so that the windows end up in the
 * order added, as on one thread. Hashing every window of 64 keys took 5 ms, most of a small scan (a
 * pre-commit hook); the other CPU was idle. */
struct half {
	struct ak_scan *s;
	const struct pending *p;
	size_t n;
	int rc;
};

static void *
add_half(void *arg)
{
	struct half *h = arg;
	size_t i;

	for (i = 0; i < h->n && h->rc == 0; i++)
		h->rc = add_secret(h->s, h->p[i].v, h->p[i].len, h->p[i].id);
	return NULL;
}

/* Append part's variants and windows to s. 0, or -1 out of memory. */
static int
merge_part(struct ak_scan *s, const struct ak_scan *part)
{
	size_t i, base = s->nvars;

	if (part->nvars == 0)
		return 0; /* nothing was added: a variant too short for a window adds nothing at all */
	if (grow((void **)&s->vars, &s->capvars, s->nvars + part->nvars, sizeof(*s->vars)) != 0 ||
	    grow((void **)&s->win, &s->capwin, s->nwin + part->nwin, sizeof(*s->win)) != 0 ||
	    grow((void **)&s->wcls, &s->capcls, s->nwin + part->nwin, 1) != 0 ||
	    (part->npre > 0 && grow((void **)&s->pre, &s->cappre, s->npre + part->npre, sizeof(*s->pre)) != 0))
		return -1;
	memcpy(s->vars + s->nvars, part->vars, part->nvars * sizeof(*s->vars));
	s->nvars += part->nvars;
	for (i = 0; i < part->nwin; i++) {
		s->win[s->nwin + i] = part->win[i];
		s->win[s->nwin + i].var += (uint32_t)base;
	}
	memcpy(s->wcls + s->nwin, part->wcls, part->nwin);
	s->nwin += part->nwin;
	if (part->npre > 0)
		memcpy(s->pre + s->npre, part->pre, part->npre * sizeof(*s->pre));
	s->npre += part->npre;
	for (i = 0; i < 4; i++) {
		s->bytes[i] |= part->bytes[i];
		s->corebytes[i] |= part->corebytes[i];
	}
	if (part->maxlen > s->maxlen)
		s->maxlen = part->maxlen;
	if (part->maxdstart > s->maxdstart)
		s->maxdstart = part->maxdstart;
	if (part->mindlen < s->mindlen)
		s->mindlen = part->mindlen;
	return 0;
}

/* Room for every window (and holdback prefix) of the secrets p[0..n) at once: growing the arrays as
 * they fill copied and remapped them a dozen times, and with two threads each remap interrupted the
 * other CPU (a TLB flush), which took more than the second thread saved. The longest encodings:
 * raw 1, base64 6 x 4/3, hex 2 x 2, percent and URL 4 x 3, JSON 2 x 6, UTF-16 2 bytes per byte of
 * the distinctive part. */
static int
reserve(struct ak_scan *s, const struct pending *p, size_t n)
{
	size_t i, w = 0;

	for (i = 0; i < n; i++)
		w += 39 * (p[i].len - public_prefix_len((const char *)p[i].v, p[i].len)) + 24;
	w += s->nwin;
	return grow((void **)&s->vars, &s->capvars, s->nvars + 16 * n, sizeof(*s->vars)) != 0 ||
	    grow((void **)&s->win, &s->capwin, w, sizeof(*s->win)) != 0 ||
	    grow((void **)&s->wcls, &s->capcls, w, 1) != 0 ||
	    (s->holdback && grow((void **)&s->pre, &s->cappre, w, sizeof(*s->pre)) != 0) ? -1 : 0;
}

static int
add_pending(struct ak_scan *s)
{
	struct ak_scan part;
	struct half h0 = { s, s->pend, s->npend, 0 }, h1;
	pthread_t th;
	cpu_set_t set;
	int two, rc;

	/* Two threads when two CPUs may run them and there is enough to share. */
	two = s->npend >= 8 && sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 1;
	memset(&part, 0, sizeof(part));
	part.k = s->k;
	part.holdback = s->holdback;
	part.mindlen = SIZE_MAX;
	h1.s = &part;
	h1.rc = 0;
	h1.n = two ? s->npend / 2 : 0;
	h1.p = s->pend + (s->npend - h1.n);
	h0.n = s->npend - h1.n;
	if (reserve(s, s->pend, h0.n) != 0 || (two && reserve(&part, h1.p, h1.n) != 0)) {
		rc = -1;
		goto out;
	}
	if (two && pthread_create(&th, NULL, add_half, &h1) != 0) {
		two = 0;
		h0.n = s->npend;
		h1.n = 0;
	}
	add_half(&h0);
	if (two)
		pthread_join(th, NULL);
	rc = h0.rc != 0 || h1.rc != 0 || merge_part(s, &part) != 0 ? -1 : 0;
out:
	wipe_free_used(part.vars, part.nvars * sizeof(*part.vars), part.capvars * sizeof(*part.vars));
	wipe_free_used(part.win, part.nwin * sizeof(*part.win), part.capwin * sizeof(*part.win));
	wipe_free_used(part.wcls, part.nwin, part.capcls);
	wipe_free_used(part.pre, part.npre * sizeof(*part.pre), part.cappre * sizeof(*part.pre));
	pending_free(s);
	return rc;
}

/* Sort n 64-bit values: four passes of a 16-bit radix through a scratch block, each stable. A
 * streaming filter's matcher holds hundreds of thousands of prefix hashes, and qsort's comparisons
 * took a fifth of its start. 0, or -1 when out of memory. */
static int
sort_u64(uint64_t *a, size_t n)
{
	uint64_t *tmp, *src = a, *dst, *t;
	uint32_t *cnt;
	size_t i, pass, sum, c;

	if (n < 2)
		return 0;
	if ((tmp = big_alloc(n, sizeof(*tmp))) == NULL)
		return -1;
	if ((cnt = calloc(65536, sizeof(*cnt))) == NULL) {
		wipe_free(tmp, n * sizeof(*tmp));
		return -1;
	}
	dst = tmp;
	for (pass = 0; pass < 4; pass++) {
		unsigned sh = (unsigned)(16 * pass);

		memset(cnt, 0, 65536 * sizeof(*cnt));
		for (i = 0; i < n; i++)
			cnt[(src[i] >> sh) & 0xffff]++;
		for (i = 0, sum = 0; i < 65536; i++) {
			c = cnt[i];
			cnt[i] = (uint32_t)sum;
			sum += c;
		}
		for (i = 0; i < n; i++)
			dst[cnt[(src[i] >> sh) & 0xffff]++] = src[i];
		t = src;
		src = dst;
		dst = t;
	}
	/* An even number of passes: the sorted values are back in a. */
	free(cnt);
	wipe_free(tmp, n * sizeof(*tmp));
	return 0;
}

/* A bitmap with about 16 bits per entry (holdback's prefix hashes): one memory read rejects most. */
static int
make_bits(const uint64_t *hs, size_t stride_words, size_t n, uint64_t **bits, unsigned *shift)
{
	unsigned lg = 16;
	size_t i;

	while (lg < 30 && ((size_t)1 << lg) < n * 16)
		lg++;
	if ((*bits = big_alloc(((size_t)1 << lg) / 64, 8)) == NULL)
		return -1;
	*shift = 64 - lg;
	for (i = 0; i < n; i++) {
		uint64_t h = hs[i * stride_words];

		(*bits)[(h >> *shift) >> 6] |= 1ull << ((h >> *shift) & 63);
	}
	return 0;
}

/* Sort the windows by bucket (a counting sort: two passes, stable, so entries of equal hash stay in
 * the order added and ties between variants resolve the same way every time), about four to a bucket,
 * so a lookup reads one offset and a cache line or two; and make a filter per class of 3 bits per
 * window in one 64-bit word, a word for every one or two windows (one in 1,400 to 10,000 unrelated
 * positions gets past it). No hash table: a lookup happens only past the filter, and the buckets take a
 * third of the memory (filling memory, page by page, was most of the time a matcher took to build).
 * A filter half that size (a word for two to four windows, which fits the second-level cache beside
 * the text) let several times as many positions through to a lookup in the buckets, and the scan of
 * text in memory took 3-6% longer. Past FILT_WIDE words (a store of about a thousand keys) a word is
 * for two to four windows again, as the memory then matters more. */
#define FILT_WIDE ((size_t)1 << 19)

static int
make_table(struct ak_scan *s)
{
	struct wentry *ent;
	uint32_t *off;
	uint64_t *f0, *f1;
	size_t nb = 64, fw[2] = { 64, 64 }, n[2] = { 0, 0 }, nent = s->nwin ? s->nwin : 1, i, b, c;

	if (s->nwin >= UINT32_MAX)
		return -1;
	for (i = 0; i < s->nwin; i++)
		n[s->wcls[i]]++;
	while (nb * 4 < s->nwin && nb < ((size_t)1 << 26))
		nb *= 2;
	for (c = 0; c < 2; c++) {
		while (fw[c] * 2 < n[c] && fw[c] < FILT_WIDE)
			fw[c] *= 2;
		while (fw[c] * 4 < n[c])
			fw[c] *= 2;
	}
	ent = big_alloc(nent, sizeof(*ent));
	off = big_alloc(nb + 2, sizeof(*off));
	f0 = big_alloc(fw[0], 8);
	f1 = big_alloc(fw[1], 8);
	if (ent == NULL || off == NULL || f0 == NULL || f1 == NULL) {
		wipe_free(ent, nent * sizeof(*ent));
		wipe_free(off, (nb + 2) * sizeof(*off));
		wipe_free(f0, fw[0] * 8);
		wipe_free(f1, fw[1] * 8);
		return -1;
	}
	s->filt[0] = f0;
	s->filt[1] = f1;
	s->fmask[0] = fw[0] - 1;
	s->fmask[1] = fw[1] - 1;
	for (i = 0; i < s->nwin; i++) {
		uint64_t h = s->win[i].h;

		c = s->wcls[i];
		s->filt[c][h & s->fmask[c]] |= filt_want(h);
		off[bucket(h, nb - 1) + 2]++;
	}
	/* off[b + 1]: where bucket b starts; each entry placed moves it on to where b ends, which is
	 * where b + 1 starts, so afterwards bucket b is off[b]..off[b + 1]. */
	for (b = 2; b < nb + 2; b++)
		off[b] += off[b - 1];
	for (i = 0; i < s->nwin; i++)
		ent[off[bucket(s->win[i].h, nb - 1) + 1]++] = s->win[i];
	wipe_free_used(s->win, s->nwin * sizeof(*s->win), s->capwin * sizeof(*s->win));
	wipe_free_used(s->wcls, s->nwin, s->capcls);
	s->win = NULL;
	s->capwin = 0;
	s->wcls = NULL;
	s->capcls = 0;
	s->ent = ent;
	s->boff = off;
	s->bmask = nb - 1;
	return 0;
}

/* The charset prefilter: a window holding a byte that no distinctive part holds (a space, '=', '"',
 * a newline... for keys of base64-like alphabets) cannot match, and testing 16 bytes against a set of
 * 256 costs a few vector instructions, where the filter costs a memory access. Ordinary text and code
 * are mostly rejected here. It runs over a block of up to 64 positions (every stride-th byte) and
 * returns a bit per position that may match. The set is kept as two 16-entry tables indexed by a byte's
 * low nibble, holding a bit per high nibble (0-7 in nib_lo, 8-15 in nib_hi): PSHUFB looks up 16 bytes
 * at once (AVX2: two positions at once). CPUs without SSSE3 (and other architectures) skip the
 * prefilter. */
static uint64_t
prefilter_none(const struct ak_scan *s, const uint8_t *t, size_t npos)
{
	(void)s;
	(void)t;
	return npos >= 64 ? ~0ull : (1ull << npos) - 1;
}

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("ssse3"))) static uint64_t
prefilter_ssse3(const struct ak_scan *s, const uint8_t *t, size_t npos)
{
	const __m128i tlo = _mm_loadu_si128((const __m128i *)(const void *)s->nib_lo);
	const __m128i thi = _mm_loadu_si128((const __m128i *)(const void *)s->nib_hi);
	const __m128i bit = _mm_setr_epi8(1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16, 32, 64, -128);
	const __m128i low4 = _mm_set1_epi8(0x0f), seven = _mm_set1_epi8(7), zero = _mm_setzero_si128();
	const size_t st = s->stride;
	uint64_t m = 0;
	size_t i;

	for (i = 0; i < npos; i++) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(t + i * st));
		__m128i lo = _mm_and_si128(v, low4), hi = _mm_and_si128(_mm_srli_epi16(v, 4), low4);
		__m128i up = _mm_cmpgt_epi8(hi, seven);
		__m128i row = _mm_or_si128(_mm_and_si128(up, _mm_shuffle_epi8(thi, lo)),
		    _mm_andnot_si128(up, _mm_shuffle_epi8(tlo, lo)));
		__m128i miss = _mm_cmpeq_epi8(_mm_and_si128(row, _mm_shuffle_epi8(bit, hi)), zero);

		m |= (uint64_t)(_mm_movemask_epi8(miss) == 0) << i;
	}
	return m;
}

/* The same, two positions at a time (PSHUFB looks up within each 128-bit half). */
__attribute__((target("avx2"))) static uint64_t
prefilter_avx2(const struct ak_scan *s, const uint8_t *t, size_t npos)
{
	const __m256i tlo = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)s->nib_lo));
	const __m256i thi = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)s->nib_hi));
	const __m256i bit = _mm256_setr_epi8(1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16, 32, 64, -128,
	    1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16, 32, 64, -128);
	const __m256i low4 = _mm256_set1_epi8(0x0f), seven = _mm256_set1_epi8(7);
	const __m256i zero = _mm256_setzero_si256();
	const size_t st = s->stride;
	uint64_t m = 0;
	uint32_t miss;
	size_t i;

	for (i = 0; i + 2 <= npos; i += 2) {
		__m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(
		    _mm_loadu_si128((const __m128i *)(const void *)(t + i * st))),
		    _mm_loadu_si128((const __m128i *)(const void *)(t + (i + 1) * st)), 1);
		__m256i lo = _mm256_and_si256(v, low4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);
		__m256i up = _mm256_cmpgt_epi8(hi, seven);
		__m256i row = _mm256_blendv_epi8(_mm256_shuffle_epi8(tlo, lo), _mm256_shuffle_epi8(thi, lo), up);

		miss = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(
		    _mm256_and_si256(row, _mm256_shuffle_epi8(bit, hi)), zero));
		m |= (uint64_t)((miss & 0xffff) == 0) << i | (uint64_t)((miss >> 16) == 0) << (i + 1);
	}
	if (i < npos)
		m |= prefilter_ssse3(s, t + i * st, 1) << i;
	return m;
}

/* Bit j of the result (j < 4): whether 16-bit field j of x is zero. The fields' top bits, after the
 * adds, are gathered by one multiplication into bits 45 to 48 (no two partial products meet). */
static inline uint64_t
fields_zero(uint64_t x)
{
	const uint64_t low15 = 0x7fff7fff7fff7fffull;

	x = (((x & low15) + low15) | x) & ~low15;
	return (((x >> 15) * 0x0000200040008001ull) >> 45 & 0xf) ^ 0xf;
}

/* With the stride at W the windows tile the text: a block's 64 positions are 1024 contiguous bytes,
 * loaded 32 at a time and each tested once; a position passes when its 16 bytes all do. A set without
 * bytes from 0x80 up (keys of base64, hex or escaped alphabets) needs one table per byte, not two and
 * a blend: the high nibble's bit table is empty from 8 on. */
__attribute__((target("avx2"), always_inline)) static inline uint32_t
tiled_miss(__m256i v, __m256i tlo, __m256i thi, __m256i bit, int high)
{
	const __m256i low4 = _mm256_set1_epi8(0x0f);
	__m256i lo = _mm256_and_si256(v, low4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);
	__m256i row = _mm256_shuffle_epi8(tlo, lo);

	if (high)
		row = _mm256_blendv_epi8(row, _mm256_shuffle_epi8(thi, lo),
		    _mm256_cmpgt_epi8(hi, _mm256_set1_epi8(7)));
	return (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_and_si256(row,
	    _mm256_shuffle_epi8(bit, hi)), _mm256_setzero_si256()));
}

#define LOAD256(p) _mm256_loadu_si256((const __m256i *)(const void *)(p))

__attribute__((target("avx2"), always_inline)) static inline uint64_t
tiled_avx2(const struct ak_scan *s, const uint8_t *t, size_t npos, int high)
{
	const __m256i tlo = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)s->nib_lo));
	const __m256i thi = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)s->nib_hi));
	const __m256i bit = high ? _mm256_setr_epi8(1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16, 32, 64,
	    -128, 1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16, 32, 64, -128) :
	    _mm256_setr_epi8(1, 2, 4, 8, 16, 32, 64, -128, 0, 0, 0, 0, 0, 0, 0, 0,
	    1, 2, 4, 8, 16, 32, 64, -128, 0, 0, 0, 0, 0, 0, 0, 0);
	uint64_t m = 0;
	size_t i;

	for (i = 0; i + 4 <= npos; i += 4)
		m |= fields_zero(tiled_miss(LOAD256(t + i * W), tlo, thi, bit, high) |
		    (uint64_t)tiled_miss(LOAD256(t + i * W + 32), tlo, thi, bit, high) << 32) << i;
	/* The last few windows of the text one at a time: nothing past the last is read. */
	for (; i < npos; i++) {
		__m256i v = _mm256_inserti128_si256(_mm256_setzero_si256(),
		    _mm_loadu_si128((const __m128i *)(const void *)(t + i * W)), 0);

		m |= (uint64_t)((uint16_t)tiled_miss(v, tlo, thi, bit, high) == 0) << i;
	}
	return m;
}

__attribute__((target("avx2"))) static uint64_t
prefilter_tiled(const struct ak_scan *s, const uint8_t *t, size_t npos)
{
	return tiled_avx2(s, t, npos, 0);
}

__attribute__((target("avx2"))) static uint64_t
prefilter_tiled_high(const struct ak_scan *s, const uint8_t *t, size_t npos)
{
	return tiled_avx2(s, t, npos, 1);
}
#endif

static void
prefilter_setup(struct ak_scan *s)
{
	unsigned b;

	s->prefilter = prefilter_none;
	for (b = 0; b < 256; b++) {
		if (!(s->bytes[b >> 6] & (1ull << (b & 63))))
			continue;
		if (b < 128) {
			s->nib_lo[b & 15] |= (uint8_t)(1u << (b >> 4));
		} else {
			s->nib_hi[b & 15] |= (uint8_t)(1u << ((b >> 4) - 8));
			s->high = 1;
		}
	}
#if defined(__x86_64__) || defined(__i386__)
	if (ak_cpu_avx2())
		s->prefilter = s->stride != W ? prefilter_avx2 : s->high ? prefilter_tiled_high :
		    prefilter_tiled;
	else if (ak_cpu_ssse3())
		s->prefilter = prefilter_ssse3;
#endif
}

enum ak_err
ak_scan_build(struct ak_scan *s)
{

	if (s->built)
		return AK_ERR_INTERNAL;
	if (add_pending(s) != 0)
		return AK_ERR_NOMEM;
	/* The fingerprint key: a hash of every secret's hash, in the order added (the store's order). */
	crypto_generichash(s->k->fp, sizeof(s->k->fp), s->nsecrets ? &s->ids[0][0] : NULL, s->nsecrets * 32,
	    NULL, 0);
	if (make_table(s) != 0)
		return AK_ERR_NOMEM;
	/* Every occurrence holds a window at a multiple of the stride if its distinctive part has at
	 * least W + stride - 1 bytes. */
	s->stride = s->mindlen == SIZE_MAX ? W : s->mindlen - W + 1;
	if (s->stride > W)
		s->stride = W;
	if (s->stride < 1)
		s->stride = 1;
	prefilter_setup(s); /* after the stride: it picks the prefilter */
	s->normcap = SPAN_FACTOR * 2 * s->maxlen + 4 * W;
	if ((s->norm = ak_smem_alloc(s->normcap)) == NULL ||
	    (s->map = big_alloc(s->normcap, sizeof(*s->map))) == NULL)
		return AK_ERR_NOMEM;
	if (s->npre > 0) {
		if (sort_u64(s->pre, s->npre) != 0)
			return AK_ERR_NOMEM;
		if (make_bits(s->pre, 1, s->npre, &s->prebits, &s->preshift) != 0)
			return AK_ERR_NOMEM;
	}
	s->built = 1;
	return AK_OK;
}

size_t
ak_scan_count(const struct ak_scan *s)
{
	return s->nsecrets;
}

size_t
ak_scan_stride(const struct ak_scan *s)
{
	return s->stride;
}

size_t
ak_scan_span(const struct ak_scan *s)
{
	return SPAN_FACTOR * s->maxlen + W;
}

/* Copy src into dst dropping line wraps: "\n", "\r\n", "\r", backslash-newline, the two-character
 * escapes "\n" and "\r", and spaces or tabs right after any of them. map[j] is the source offset of
 * dst[j]. Returns the output length. */
static size_t
normalise(const uint8_t *src, size_t n, uint8_t *dst, uint32_t *map)
{
	size_t i = 0, o = 0;
	int wrapped;

	while (i < n) {
		wrapped = 0;
		if (src[i] == '\n' || src[i] == '\r') {
			i++;
			wrapped = 1;
		} else if (src[i] == '\\' && i + 1 < n &&
		    (src[i + 1] == 'n' || src[i + 1] == 'r' || src[i + 1] == '\n' || src[i + 1] == '\r')) {
			i += 2;
			wrapped = 1;
		}
		if (wrapped) {
			while (i < n && (src[i] == ' ' || src[i] == '\t'))
				i++;
			continue;
		}
		dst[o] = src[i];
		map[o] = (uint32_t)i;
		o++;
		i++;
	}
	return o;
}

/* Does text[ds - dstart, ds) hold v's public prefix? */
static int
has_prefix(const struct ak_scan *s, const struct variant *v, const uint8_t *t, size_t ds)
{
	uint8_t h[CONFIRM_BYTES];

	if (v->dstart == 0 || ds < v->dstart)
		return 0;
	confirm_hash(s->k, t + ds - v->dstart, v->dstart, h);
	return sodium_memcmp(h, v->hpre, sizeof(h)) == 0;
}

/* The public prefix before t[ds], split by a wrap: extend hit to it. */
static void
wrapped_prefix(struct ak_scan *s, const struct variant *v, const uint8_t *t, size_t ds,
    struct ak_scan_hit *hit)
{
	size_t lo = ds > SPAN_FACTOR * v->dstart + W ? ds - SPAN_FACTOR * v->dstart - W : 0, nn;
	uint8_t h[CONFIRM_BYTES];

	nn = normalise(t + lo, ds - lo, s->norm, s->map);
	if (nn >= v->dstart) {
		confirm_hash(s->k, s->norm + nn - v->dstart, v->dstart, h);
		if (sodium_memcmp(h, v->hpre, sizeof(h)) == 0) {
			hit->start = lo + s->map[nn - v->dstart];
			hit->wrapped = 1;
		}
	}
	sodium_memzero(s->norm, nn);
}

/* Confirm entry e, whose window matched at t[p]: fill hit and return 1 if the whole distinctive part
 * is there (directly, else after removing wraps). */
static int
confirm(struct ak_scan *s, const uint8_t *t, size_t n, size_t p, const struct wentry *e,
    struct ak_scan_hit *hit)
{
	const struct variant *v = &s->vars[e->var];
	size_t rel = e->off - v->dstart, dlen = v->len - v->dstart, ds, lo, hi, nn, pn, j;
	uint8_t h[CONFIRM_BYTES];

	hit->secret = v->secret;
	hit->variant = (enum ak_scan_variant)v->kind;
	if (p >= rel && p - rel + dlen <= n) {
		ds = p - rel;
		confirm_hash(s->k, t + ds, dlen, h);
		if (sodium_memcmp(h, v->hdist, sizeof(h)) == 0) {
			hit->end = ds + dlen;
			hit->wrapped = 0;
			hit->start = ds;
			if (has_prefix(s, v, t, ds))
				hit->start = ds - v->dstart;
			else if (v->dstart > 0)
				wrapped_prefix(s, v, t, ds, hit);
			return 1;
		}
	}
	/* Line wraps: normalise a stretch around the window, which itself holds none. */
	lo = p > SPAN_FACTOR * v->len ? p - SPAN_FACTOR * v->len : 0;
	hi = p + W + SPAN_FACTOR * v->len < n ? p + W + SPAN_FACTOR * v->len : n;
	if (hi - lo > s->normcap)
		return 0;
	nn = normalise(t + lo, hi - lo, s->norm, s->map);
	for (pn = 0; pn < nn && s->map[pn] < p - lo; pn++)
		;
	if (pn >= nn || s->map[pn] != p - lo || pn < rel || pn - rel + dlen > nn)
		goto miss;
	ds = pn - rel;
	confirm_hash(s->k, s->norm + ds, dlen, h);
	if (sodium_memcmp(h, v->hdist, sizeof(h)) != 0)
		goto miss;
	hit->start = lo + s->map[ds];
	if (has_prefix(s, v, s->norm, ds))
		hit->start = lo + s->map[ds - v->dstart];
	hit->end = lo + s->map[ds + dlen - 1] + 1;
	hit->wrapped = 1;
	/* Any wrap inside? If not, this was a direct hit that the fast path's bounds missed. */
	for (j = ds; j + 1 < ds + dlen; j++)
		if (s->map[j + 1] != s->map[j] + 1)
			break;
	if (j + 1 >= ds + dlen)
		hit->wrapped = 0;
	sodium_memzero(s->norm, nn);
	return 1;
miss:
	sodium_memzero(s->norm, nn);
	return 0;
}

/* Positions of block bits cand that have passed the filter. All their hashes are computed and their
 * filter words fetched first, then tested: the fetches (the filter outgrows the first-level cache, and
 * the text streams through the second) overlap instead of waiting one after another. */
static inline uint64_t
filter_block(const struct ak_scan *s, const uint8_t *t, uint64_t cand, uint64_t *hs)
{
	const size_t st = s->stride, fmask0 = s->fmask[0], fmask1 = s->fmask[1];
	const uint64_t *filt0 = s->filt[0], *filt1 = s->filt[1];
	const uint64_t *fw[64];
	uint64_t c, pass = 0, h;
	unsigned b;

	for (c = cand; c != 0; c &= c - 1) {
		b = (unsigned)__builtin_ctzll(c);
		h = whash(s->k, t + (size_t)b * st);
		hs[b] = h;
		fw[b] = win_class(t + (size_t)b * st) ? &filt1[h & fmask1] : &filt0[h & fmask0];
		__builtin_prefetch(fw[b]);
	}
	for (c = cand; c != 0; c &= c - 1) {
		uint64_t want;

		b = (unsigned)__builtin_ctzll(c);
		want = filt_want(hs[b]);
		pass |= (uint64_t)((*fw[b] & want) == want) << b;
	}
	return pass;
}

int
ak_scan_buf(struct ak_scan *s, const uint8_t *t, size_t n, ak_scan_cb cb, void *arg)
{
	const size_t st = s->stride, bmask = s->bmask;
	const struct wentry *ent = s->ent;
	const uint32_t *off = s->boff;
	struct ak_scan_hit hit, best;
	size_t blk, npos, p, b, e, last_end = 0, skip = 0;
	uint64_t h, cand, hs[64];
	int rc, found;

	if (!s->built || s->nwin == 0 || n < W)
		return 0;
	for (blk = 0; blk + W <= n; blk += 64 * st) {
		npos = (n - W - blk) / st + 1;
		if (npos > 64)
			npos = 64;
		cand = s->prefilter(s, t + blk, npos);
		/* Positions before the end of an occurrence just reported are done. */
		if (skip > blk)
			cand &= skip - blk >= 64 * st ? 0 : ~0ull << ((skip - blk + st - 1) / st);
		if (cand == 0)
			continue;
		cand = filter_block(s, t + blk, cand, hs);
		while (cand != 0) {
			p = blk + (size_t)__builtin_ctzll(cand) * st;
			h = hs[__builtin_ctzll(cand)];
			cand &= cand - 1;
			found = 0;
			b = bucket(h, bmask);
			for (e = off[b]; e < off[b + 1]; e++) {
				if (ent[e].h != h || !confirm(s, t, n, p, &ent[e], &hit) || hit.start < last_end)
					continue;
				/* Of several variants confirmed here, the earliest start, then the longest. */
				if (!found || hit.start < best.start ||
				    (hit.start == best.start && hit.end > best.end))
					best = hit;
				found = 1;
			}
			if (!found)
				continue;
			if ((rc = cb(arg, &best)) != 0)
				return rc;
			last_end = best.end;
			/* Go on after the occurrence, on the stride's grid. */
			skip = best.end > p + st ? (best.end - 1) / st * st + st : p + st;
			if (skip > blk)
				cand &= skip - blk >= 64 * st ? 0 : ~0ull << ((skip - blk + st - 1) / st);
		}
	}
	return 0;
}

void
ak_scan_fingerprint(const struct ak_scan *s, const uint8_t *data, size_t len, char *out)
{
	uint8_t idh[32], fp[6];

	crypto_generichash(idh, sizeof(idh), data, len, NULL, 0);
	crypto_generichash(fp, sizeof(fp), idh, sizeof(idh), s->k->fp, sizeof(s->k->fp));
	sodium_bin2hex(out, 13, fp, sizeof(fp));
	sodium_memzero(idh, sizeof(idh));
}

void
ak_scan_secret_fingerprint(const struct ak_scan *s, uint32_t id, char *out)
{
	uint8_t fp[6];

	if (id >= s->nsecrets) {
		memcpy(out, "????????????", 13);
		return;
	}
	crypto_generichash(fp, sizeof(fp), s->ids[id], 32, s->k->fp, sizeof(s->k->fp));
	sodium_bin2hex(out, 13, fp, sizeof(fp));
}

static int
pre_member(const struct ak_scan *s, uint64_t h)
{
	uint64_t b = h >> s->preshift;
	size_t lo = 0, hi = s->npre, mid;

	if (!(s->prebits[b >> 6] & (1ull << (b & 63))))
		return 0;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (s->pre[mid] < h)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < s->npre && s->pre[lo] == h;
}

static inline int
in_bytes(const uint64_t set[4], uint8_t c)
{
	return (set[c >> 6] >> (c & 63)) & 1;
}

/* Whether c can be inside a held suffix: a variant's byte, or one that a wrap (removed before
 * matching) is made of. */
static inline int
hold_byte(const struct ak_scan *s, uint8_t c)
{
	return in_bytes(s->corebytes, c) || c == '\n' || c == '\r' || c == '\\' || c == ' ' || c == '\t' ||
	    c == 'n' || c == 'r';
}

size_t
ak_scan_holdback(struct ak_scan *s, const uint8_t *buf, size_t len)
{
	size_t L, lo, nn, k, best = 0;
	uint64_t g = 0;

	if (!s->built || s->npre == 0 || len == 0)
		return 0;
	L = ak_scan_span(s);
	if (L > len)
		L = len;
	lo = len - L;
	/* A byte no variant holds and no wrap is made of survives the removal of wraps, so no held suffix
	 * reaches back past it: only what follows it is looked at. Ordinary text has one within a word
	 * or two of its end, and a filter calls this after every read. */
	for (k = len; k > lo; k--) {
		if (!hold_byte(s, buf[k - 1])) {
			lo = k;
			break;
		}
	}
	if (lo == len)
		return 0;
	L = len - lo;
	nn = normalise(buf + lo, L, s->norm, s->map);
	/* G(c u) = c + B G(u): extend the suffix to the left one byte at a time. */
	for (k = 1; k <= nn && k <= s->maxlen; k++) {
		g = s->norm[nn - k] + s->k->base * g;
		if (pre_member(s, pre_tag(g, k)))
			best = k;
	}
	sodium_memzero(s->norm, nn);
	return best > 0 ? len - (lo + s->map[nn - best]) : 0;
}
