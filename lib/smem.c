/* smem.c - the secure-memory arena.
 *
 * Small blocks (header + data <= 16 KiB) are rounded up to a size class (multiples of 16 up to 128, then
 * four classes per power of two up to 16384, header included) and carved from sodium_malloc slabs that all
 * classes share: a freed block is wiped and put on its class's free list, an allocation takes from that list
 * first, else bump-allocates from the current slab; when the block does not fit, the slab's tail is carved
 * into free blocks and a new slab is started. Slabs grow 16 KiB, 32 KiB, then 64 KiB each, so a process that
 * needs one secret (akctl) maps and locks 4 pages, not 16. Slab blocks are never returned to the system
 * before ak_smem_release_all(). Larger blocks get their own sodium_malloc region, released (and wiped by
 * sodium_free) when freed.
 *
 * Every block starts with a 16-byte header (magic, class, requested size) so ak_smem_free() can find what
 * it is given and refuse pointers it never handed out (abort: that is memory corruption, not an error).
 *
 * sodium_malloc silently ignores an mlock failure, so each region is mlocked again here; the result is
 * counted in the stats and the first failure triggers the warning hook.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "ak_smem.h"

/*
 * sodium_malloc(n) maps round_up(n + 16, page) bytes (the 16 are its canary, placed just before the pointer)
 * between guard pages. Asking for a page multiple minus 16 wastes no page and keeps the pointer 16-aligned.
 */
#define SLAB_FIRST (16u * 1024u - 16u)
#define SLAB_MAX (64u * 1024u - 16u)
#define CLASS_MAX 16384u
#define NCLASSES 36
#define CLASS_LARGE 0xffu

#define MAGIC_USED 0x616b6d55u /* "akmU" */
#define MAGIC_FREE 0x616b6d46u /* "akmF" */

struct hdr {
	uint32_t magic;
	uint32_t cls;                   /* size class index, or CLASS_LARGE */
	union {
		uint64_t size;          /* requested bytes, while in use */
		struct hdr *next;       /* free-list link, while free */
	} u;
};
_Static_assert(sizeof(struct hdr) == 16, "block header must keep 16-byte alignment");

/* A dedicated region for a large block: [link][hdr][data]. The link keeps every region on a list so
 * release_all can find them and free can check membership. */
struct large {
	struct large *prev, *next;
	size_t region_size;             /* what sodium_malloc was asked for */
	size_t locked;                  /* bytes we mlocked for it */
};
#define LARGE_PREFIX 32
_Static_assert(sizeof(struct large) <= LARGE_PREFIX, "large prefix too small");

struct slab {
	uint8_t *base;
	size_t size;                    /* user bytes asked of sodium_malloc */
	size_t locked;
	size_t live;                    /* blocks handed out and not yet freed (ak_smem_trim) */
};

/* Block sizes, header included. Finer than powers of two because most blocks are cJSON nodes (64 + 16 bytes)
 * and short strings: with power-of-two classes a third of the arena was padding. */
static const uint16_t class_sizes[NCLASSES] = {
	16, 32, 48, 64, 80, 96, 112, 128,
	160, 192, 224, 256,
	320, 384, 448, 512,
	640, 768, 896, 1024,
	1280, 1536, 1792, 2048,
	2560, 3072, 3584, 4096,
	5120, 6144, 7168, 8192,
	10240, 12288, 14336, 16384,
};

static struct {
	int initialized;
	struct slab *slabs;             /* plain heap: holds only pointers */
	size_t nslabs, slabs_alloc;
	size_t bump;                    /* next free offset in the last slab */
	size_t slab_total;              /* sum of slab sizes */
	size_t next_slab;               /* size of the next slab to map */
	struct hdr *free_list[NCLASSES];
	struct large *large;
	size_t nlarge;
	size_t large_bytes;
	size_t locked_bytes;
	size_t in_use;
	int lock_failed;
	int warned;
	void (*warn)(const char *msg);
} A;

static const char warn_msg[] =
    "akagent: warning: memlock limit reached (RLIMIT_MEMLOCK); secrets may be swapped";

static void
default_warn(const char *msg)
{
	fprintf(stderr, "%s\n", msg);
}

int
ak_smem_init(void)
{
	if (A.initialized)
		return 0;
	if (sodium_init() < 0)
		return -1;
	if (A.warn == NULL)
		A.warn = default_warn;
	A.initialized = 1;
	return 0;
}

void
ak_smem_set_warn(void (*fn)(const char *msg))
{
	A.warn = fn != NULL ? fn : default_warn;
}

/* mlock the pages spanning [p, p+len); returns the bytes locked, 0 on failure (and warns once). */
static size_t
lock_range(void *p, size_t len)
{
	long pg = sysconf(_SC_PAGESIZE);
	uintptr_t start, end;

	if (pg <= 0)
		pg = 4096;
	start = (uintptr_t)p & ~((uintptr_t)pg - 1);
	end = ((uintptr_t)p + len + (uintptr_t)pg - 1) & ~((uintptr_t)pg - 1);
	/* The raw system call: sanitizer runtimes replace mlock() with a no-op that reports success. */
	if (syscall(SYS_mlock, (void *)start, (size_t)(end - start)) == 0) {
		A.locked_bytes += end - start;
		return end - start;
	}
	A.lock_failed = 1;
	if (!A.warned) {
		A.warned = 1;
		if (A.warn != NULL)
			A.warn(warn_msg);
	}
	return 0;
}

/* The smallest class holding total bytes (total <= CLASS_MAX). */
static int
class_of(size_t total)
{
	int lo = 0, hi = NCLASSES - 1;

	while (lo < hi) {
		int mid = (lo + hi) / 2;

		if (class_sizes[mid] < total)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static size_t
class_size(int c)
{
	return class_sizes[c];
}

static void
push_free(int c, struct hdr *h)
{
	h->magic = MAGIC_FREE;
	h->cls = (uint32_t)c;
	h->u.next = A.free_list[c];
	A.free_list[c] = h;
}

/* Map a new slab big enough for need bytes and make it the bump region. */
static int
new_slab(size_t need)
{
	struct slab *ns;
	uint8_t *p;
	size_t sz;

	if (A.nslabs == A.slabs_alloc) {
		size_t n = A.slabs_alloc ? A.slabs_alloc * 2 : 8;

		if ((ns = realloc(A.slabs, n * sizeof(*ns))) == NULL)
			return -1;
		A.slabs = ns;
		A.slabs_alloc = n;
	}
	/* Double from SLAB_FIRST up to SLAB_MAX: (16K - 16) * 2 + 16 = 32K - 16, and so on. */
	if (A.next_slab == 0)
		A.next_slab = SLAB_FIRST;
	sz = A.next_slab;
	while (sz < need)
		sz = sz * 2 + 16;
	if ((p = sodium_malloc(sz)) == NULL)
		return -1;
	/* sodium_malloc fills with a garbage byte; blocks are handed out zeroed. */
	memset(p, 0, sz);
	A.slabs[A.nslabs].base = p;
	A.slabs[A.nslabs].size = sz;
	A.slabs[A.nslabs].locked = lock_range(p, sz);
	A.slabs[A.nslabs].live = 0;
	A.nslabs++;
	A.slab_total += sz;
	A.bump = 0;
	A.next_slab = sz * 2 + 16 <= SLAB_MAX ? sz * 2 + 16 : SLAB_MAX;
	return 0;
}

/* Carve the unused tail of the current slab into free blocks so it is not wasted. */
static void
retire_tail(void)
{
	int c;

	size_t end;

	if (A.nslabs == 0)
		return;
	end = A.slabs[A.nslabs - 1].size;
	for (c = NCLASSES - 1; c >= 0; c--) {
		while (end - A.bump >= class_size(c)) {
			push_free(c, (struct hdr *)(A.slabs[A.nslabs - 1].base + A.bump));
			A.bump += class_size(c);
		}
	}
}

/* Index of the slab holding p, or A.nslabs if none. A handful of slabs: a linear scan is enough. */
static size_t
slab_of(const void *p)
{
	size_t i;

	for (i = 0; i < A.nslabs; i++)
		if ((const uint8_t *)p >= A.slabs[i].base && (const uint8_t *)p < A.slabs[i].base + A.slabs[i].size)
			return i;
	return A.nslabs;
}

static void *
alloc_small(size_t n, int c)
{
	struct hdr *h;

	if ((h = A.free_list[c]) != NULL) {
		A.free_list[c] = h->u.next;
		A.slabs[slab_of(h)].live++;
	} else {
		if (A.nslabs == 0 || A.slabs[A.nslabs - 1].size - A.bump < class_size(c)) {
			retire_tail();
			if (new_slab(class_size(c)) != 0)
				return NULL;
		}
		h = (struct hdr *)(A.slabs[A.nslabs - 1].base + A.bump);
		A.bump += class_size(c);
		A.slabs[A.nslabs - 1].live++;
	}
	h->magic = MAGIC_USED;
	h->cls = (uint32_t)c;
	h->u.size = n;
	A.in_use += class_size(c);
	return h + 1;
}

static void *
alloc_large(size_t n)
{
	size_t sz;
	uint8_t *p;
	struct large *l;
	struct hdr *h;

	if (n > SIZE_MAX - LARGE_PREFIX - sizeof(struct hdr) - 15)
		return NULL;
	/* A multiple of 16 keeps sodium_malloc's pointer (placed against the end guard page) aligned. */
	sz = (LARGE_PREFIX + sizeof(struct hdr) + n + 15) & ~(size_t)15;
	if ((p = sodium_malloc(sz)) == NULL)
		return NULL;
	memset(p, 0, sz);
	l = (struct large *)p;
	l->region_size = sz;
	l->locked = lock_range(p, sz);
	l->prev = NULL;
	l->next = A.large;
	if (A.large != NULL)
		A.large->prev = l;
	A.large = l;
	A.nlarge++;
	A.large_bytes += sz;
	A.in_use += sz;
	h = (struct hdr *)(p + LARGE_PREFIX);
	h->magic = MAGIC_USED;
	h->cls = CLASS_LARGE;
	h->u.size = n;
	return h + 1;
}

void *
ak_smem_alloc(size_t n)
{
	if (ak_smem_init() != 0)
		return NULL;
	if (n <= CLASS_MAX - sizeof(struct hdr))
		return alloc_small(n, class_of(n + sizeof(struct hdr)));
	return alloc_large(n);
}

static int
in_slab(const struct hdr *h, int c)
{
	size_t i;

	for (i = 0; i < A.nslabs; i++) {
		const uint8_t *b = A.slabs[i].base;
		size_t sz = A.slabs[i].size;

		if ((const uint8_t *)h >= b && (const uint8_t *)h < b + sz) {
			size_t off = (size_t)((const uint8_t *)h - b);

			return off % 16 == 0 && off + class_size(c) <= sz;
		}
	}
	return 0;
}

static int
is_large(const struct large *l)
{
	const struct large *x;

	for (x = A.large; x != NULL; x = x->next)
		if (x == l)
			return 1;
	return 0;
}

void
ak_smem_free(void *p)
{
	struct hdr *h;
	int c;

	if (p == NULL)
		return;
	h = (struct hdr *)p - 1;
	/* A bad pointer or a double free means memory corruption: stop rather than recycle garbage. */
	if (h->magic != MAGIC_USED)
		abort();
	if (h->cls == CLASS_LARGE) {
		struct large *l = (struct large *)((uint8_t *)h - LARGE_PREFIX);

		if (!is_large(l))
			abort();
		if (l->prev != NULL)
			l->prev->next = l->next;
		else
			A.large = l->next;
		if (l->next != NULL)
			l->next->prev = l->prev;
		A.nlarge--;
		A.large_bytes -= l->region_size;
		A.in_use -= l->region_size;
		A.locked_bytes -= l->locked;
		/* sodium_free wipes the whole region and munlocks it. */
		sodium_free(l);
		return;
	}
	c = (int)h->cls;
	if (h->cls >= NCLASSES || !in_slab(h, c))
		abort();
	/* Wipe the whole block, header included: the free-list link is written afterwards. */
	sodium_memzero(h, class_size(c));
	A.in_use -= class_size(c);
	A.slabs[slab_of(h)].live--;
	push_free(c, h);
}

void
ak_smem_trim(void)
{
	size_t i, j;
	int c;

	/* Never the current bump slab: the next allocation would only map it again. */
	for (i = 0; i + 1 < A.nslabs;) {
		struct slab *sl = &A.slabs[i];

		if (sl->live != 0) {
			i++;
			continue;
		}
		/* Every block of this slab is free: unlink them from the free lists, then unmap it. */
		for (c = 0; c < NCLASSES; c++) {
			struct hdr **pp = &A.free_list[c];

			while (*pp != NULL) {
				if ((uint8_t *)*pp >= sl->base && (uint8_t *)*pp < sl->base + sl->size)
					*pp = (*pp)->u.next;
				else
					pp = &(*pp)->u.next;
			}
		}
		A.slab_total -= sl->size;
		A.locked_bytes -= sl->locked;
		/* sodium_free wipes the region and munlocks it. */
		sodium_free(sl->base);
		for (j = i; j + 1 < A.nslabs; j++)
			A.slabs[j] = A.slabs[j + 1];
		A.nslabs--;
	}
}

char *
ak_smem_strndup(const char *s, size_t n)
{
	char *d;
	size_t len;

	if (s == NULL)
		return NULL;
	len = strnlen(s, n);
	if (len == SIZE_MAX || (d = ak_smem_alloc(len + 1)) == NULL)
		return NULL;
	memcpy(d, s, len);
	d[len] = '\0';
	return d;
}

char *
ak_smem_strdup(const char *s)
{
	if (s == NULL)
		return NULL;
	return ak_smem_strndup(s, strlen(s));
}

/* cJSON's malloc_fn has the same shape, but keep a wrapper so the hook never depends on our prototype. */
static void *
cjson_alloc(size_t n)
{
	return ak_smem_alloc(n);
}

void
ak_smem_hook_cjson(void)
{
	cJSON_Hooks hooks = { .malloc_fn = cjson_alloc, .free_fn = ak_smem_free };

	(void)ak_smem_init();
	cJSON_InitHooks(&hooks);
}

void
ak_smem_stats(struct ak_smem_stats *st)
{
	st->slabs = A.nslabs + A.nlarge;
	st->slab_bytes = A.slab_total + A.large_bytes;
	st->locked_bytes = A.locked_bytes;
	st->in_use = A.in_use;
	st->lock_failed = A.lock_failed;
}

void
ak_smem_release_all(void)
{
	size_t i;
	struct large *l, *next;

	/* sodium_free wipes each region before unmapping it. */
	for (l = A.large; l != NULL; l = next) {
		next = l->next;
		sodium_free(l);
	}
	for (i = 0; i < A.nslabs; i++)
		sodium_free(A.slabs[i].base);
	free(A.slabs);
	A.slabs = NULL;
	A.nslabs = A.slabs_alloc = 0;
	A.bump = 0;
	A.slab_total = 0;
	A.next_slab = SLAB_FIRST;
	memset(A.free_list, 0, sizeof(A.free_list));
	A.large = NULL;
	A.nlarge = 0;
	A.large_bytes = 0;
	A.locked_bytes = 0;
	A.in_use = 0;
	/* A fresh arena: a later lock failure is reported again. */
	A.lock_failed = 0;
	A.warned = 0;
}
