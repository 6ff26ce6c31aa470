/* smem.c - the secure-memory arena.
 *
 * Two arenas with the same machinery: the main one (ak_smem_alloc and friends: keys, the parsed store) and
 * a scratch one that only cJSON allocates from (ak_smem_hook_cjson). A parse or print of the store makes
 * ~100 KB of short-lived cJSON nodes; sharing slabs with them scattered the long-lived store over every
 * slab, so none could ever be trimmed. Kept apart, the scratch arena empties completely after each request
 * and ak_smem_trim() unmaps all of it, and the main arena stays as small as what it really holds.
 *
 * Small blocks (header + data <= 16 KiB) are rounded up to a size class (multiples of 16 up to 128, then
 * four classes per power of two up to 16384, header included) and carved from sodium_malloc slabs that all
 * classes of an arena share: a freed block is wiped and put on its slab's free list for its class, an
 * allocation takes a free block of its class from the oldest slab that has one, else splits a larger free
 * block (oldest slab first again), else bump-allocates from the current slab; when the block does not fit,
 * the slab's tail is carved into free blocks and a new slab is started. Slabs grow 4, 8, 16, 32, then
 * 64 KiB each (the scratch arena's on to 1 MiB), so a process that needs one secret (akctl get) maps and
 * locks one page: mlock faults in every page it locks, and a page fault costs as much as 15 system calls
 * on a virtual machine. ak_smem_trim() returns slabs with no live block. Larger blocks get their own sodium_malloc region, released (and wiped by
 * sodium_free) when freed.
 *
 * A 10,000-profile store spreads over ~80 slabs, so nothing on the alloc/free path may scan them:
 *  - each slab keeps a bit mask of the classes it has free blocks of, and a segment tree over the slabs in
 *    age order ORs those masks, so "the oldest slab with a free block of class c" (or of any class above c,
 *    to split) is one walk from the root: O(log nslabs);
 *  - slabs (and large regions) are also kept sorted by address, so ak_smem_free finds a block's slab, or
 *    proves it foreign, by binary search.
 * Mapping or unmapping a region (and ak_smem_trim) re-sorts or rebuilds these in O(nslabs); that is cheap
 * next to the system calls and page wiping that come with it.
 *
 * Every block starts with a 16-byte header (magic, arena + class, requested size) so ak_smem_free() can find
 * the arena and class of what it is given and refuse pointers it never handed out (abort: that is memory
 * corruption, not an error).
 *
 * sodium_malloc silently ignores an mlock failure, so each region is mlocked again here; the result is
 * counted in the stats and the first failure (of either arena) triggers the warning hook.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <sodium.h>

#include "ak_smem.h"

/*
 * sodium_malloc(n) maps round_up(n + 16, page) bytes (the 16 are its canary, placed just before the pointer)
 * between guard pages. Asking for a page multiple minus 16 wastes no page and keeps the pointer 16-aligned.
 */
#define SLAB_FIRST (4u * 1024u - 16u)
#define SLAB_MAX (64u * 1024u - 16u)
/* The scratch arena's slabs grow on to 1 MiB: a command that builds a large cJSON tree (akctl's
 * list --json of 10,000 profiles: ~10 MB of nodes) otherwise maps, locks and unmaps a 64 KiB region
 * for every 800 nodes, and that was most of its time. It is emptied and unmapped after each use. */
#define SCRATCH_SLAB_MAX (1024u * 1024u - 16u)
#define CLASS_MAX 16384u
#define NCLASSES 36
#define CLASS_LARGE 0xffu
#define CLASS_BUMP 0xfeu /* a cJSON block of a scratch session: freed with its region */

/* hdr.cls = class | arena << ARENA_SHIFT. */
#define CLASS_MASK 0xffu
#define ARENA_SHIFT 8
#define ARENA_MAIN 0u
#define ARENA_SCRATCH 1u
#define ARENA_PACK 2u
#define NARENAS 3u

#define MAGIC_USED 0x616b6d55u /* "akmU" */
#define MAGIC_FREE 0x616b6d46u /* "akmF" */

struct hdr {
	uint32_t magic;
	uint32_t cls;                   /* size class index or CLASS_LARGE, plus the arena index */
	union {
		uint64_t size;          /* requested bytes, while in use */
		struct hdr *next;       /* free-list link, while free */
	} u;
};
_Static_assert(sizeof(struct hdr) == 16, "block header must keep 16-byte alignment");

/* A dedicated region for a large block: [struct large, padded to LARGE_PREFIX][hdr][data]. The region's
 * address is kept in its arena's sorted array, so release_all can find it and free can check membership. */
struct large {
	size_t region_size;             /* what sodium_malloc was asked for */
	size_t locked;                  /* bytes we mlocked for it */
};
#define LARGE_PREFIX 32
_Static_assert(sizeof(struct large) <= LARGE_PREFIX, "large prefix too small");

/* Bookkeeping on the plain heap: it holds only pointers and counts, never block contents. */
struct slab {
	uint8_t *base;
	size_t size;                    /* user bytes asked of sodium_malloc */
	size_t locked;
	size_t live;                    /* blocks handed out and not yet freed (ak_smem_trim) */
	uint64_t free_mask;             /* bit c set iff free_list[c] is not empty */
	size_t moved_to;                /* trim_arena: its new index, or SIZE_MAX when it goes */
	struct hdr *free_list[NCLASSES]; /* this slab's free blocks, by class */
};

#define ALL_CLASSES ((UINT64_C(1) << NCLASSES) - 1)
_Static_assert(NCLASSES <= 64, "a slab's free_mask has one bit per class");

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

struct arena {
	uint32_t idx;                   /* ARENA_MAIN, _SCRATCH or _PACK, stored in every header */
	size_t slab_max;                /* slabs grow (doubling) up to this size */
	/* One array, reallocated only when it doubles: a heap object per slab would pin the top of the
	 * heap under the agent's big request buffers, which glibc could then not give back. */
	struct slab *slabs;             /* in the order they were mapped (the index is the age); the last
	                                 * one is the bump slab */
	size_t *by_addr;                /* indices into slabs, sorted by base address */
	size_t nslabs;
	size_t slabs_alloc;             /* capacity of the arrays: 0 or a power of two */
	/*
	 * Segment tree over slabs: node 1 is the root, node i has children 2i and 2i+1, and leaf
	 * slabs_alloc + k holds slabs[k].free_mask (0 past nslabs). Every node is the OR of its leaves.
	 */
	uint64_t *tree;
	size_t bump;                    /* next free offset in the last slab */
	size_t slab_total;              /* sum of slab sizes */
	size_t next_slab;               /* size of the next slab to map */
	struct large **large;           /* large regions, sorted by address */
	size_t nlarge, large_alloc;
	size_t large_bytes;
	size_t locked_bytes;
	size_t in_use;
	int lock_failed;
};

/* One lock over both arenas: the agent's keystore writer thread builds and frees stores while the event
 * loop serves requests. Uncontended it costs a few nanoseconds a call; single-threaded programs never
 * wait on it. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static struct arena arenas[NARENAS] = {
	{ .idx = ARENA_MAIN, .slab_max = SLAB_MAX },
	{ .idx = ARENA_SCRATCH, .slab_max = SCRATCH_SLAB_MAX },
	{ .idx = ARENA_PACK, .slab_max = SLAB_MAX },
};

/* Process-wide: one warning however many arenas hit the limit. No program name: the hook's caller (the
 * agent's logger) adds its own prefix. */
static int initialized;
static int warned;
static void (*warn_fn)(const char *msg);

static const char warn_msg[] =
    "warning: memlock limit reached (RLIMIT_MEMLOCK); secrets may be swapped";

static void
default_warn(const char *msg)
{
	fprintf(stderr, "%s\n", msg);
}

int
ak_smem_init(void)
{
	if (initialized)
		return 0;
	if (sodium_init() < 0)
		return -1;
	if (warn_fn == NULL)
		warn_fn = default_warn;
	initialized = 1;
	return 0;
}

void
ak_smem_set_warn(void (*fn)(const char *msg))
{
	warn_fn = fn != NULL ? fn : default_warn;
}

/* mlock the pages spanning [p, p+len); returns the bytes locked, 0 on failure (and warns once). */
static size_t
lock_range(struct arena *a, void *p, size_t len)
{
	long pg = sysconf(_SC_PAGESIZE);
	uintptr_t start, end;

	if (pg <= 0)
		pg = 4096;
	start = (uintptr_t)p & ~((uintptr_t)pg - 1);
	end = ((uintptr_t)p + len + (uintptr_t)pg - 1) & ~((uintptr_t)pg - 1);
	/* The raw system call: sanitizer runtimes replace mlock() with a no-op that reports success. */
	if (syscall(SYS_mlock, (void *)start, (size_t)(end - start)) == 0) {
		a->locked_bytes += end - start;
		return end - start;
	}
	a->lock_failed = 1;
	if (!warned) {
		warned = 1;
		if (warn_fn != NULL)
			warn_fn(warn_msg);
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

/* The lowest set bit of a non-zero mask. */
static int
lowest_bit(uint64_t m)
{
	return __builtin_ctzll(m);
}

/* Slab sl's free_mask changed: refresh its leaf and the ORs above it, stopping where nothing changes. */
static void
tree_update(struct arena *a, size_t si)
{
	size_t i = a->slabs_alloc + si;

	a->tree[i] = a->slabs[si].free_mask;
	for (i /= 2; i >= 1; i /= 2) {
		uint64_t v = a->tree[2 * i] | a->tree[2 * i + 1];

		if (a->tree[i] == v)
			break;
		a->tree[i] = v;
	}
}

/* Recompute the whole tree from slabs (after the slabs were renumbered or the tree was reallocated). */
static void
tree_rebuild(struct arena *a)
{
	size_t i;

	if (a->tree == NULL)
		return;
	memset(a->tree, 0, 2 * a->slabs_alloc * sizeof(*a->tree));
	for (i = 0; i < a->nslabs; i++)
		a->tree[a->slabs_alloc + i] = a->slabs[i].free_mask;
	for (i = a->slabs_alloc - 1; i >= 1; i--)
		a->tree[i] = a->tree[2 * i] | a->tree[2 * i + 1];
}

/* The index of the oldest slab with a free block of some class in want, or a->nslabs: one root-to-leaf
 * walk, always turning to the older (left) half when it has a match. */
static size_t
tree_oldest(const struct arena *a, uint64_t want)
{
	size_t i = 1;

	if (a->tree == NULL || (a->tree[1] & want) == 0)
		return a->nslabs;
	while (i < a->slabs_alloc) {
		i *= 2;
		if ((a->tree[i] & want) == 0)
			i++;
	}
	return i - a->slabs_alloc;
}

static void
push_free(struct arena *a, size_t si, int c, struct hdr *h)
{
	struct slab *sl = &a->slabs[si];
	uint64_t bit = UINT64_C(1) << c;

	h->magic = MAGIC_FREE;
	h->cls = (uint32_t)c | a->idx << ARENA_SHIFT;
	h->u.next = sl->free_list[c];
	sl->free_list[c] = h;
	if ((sl->free_mask & bit) == 0) {
		sl->free_mask |= bit;
		tree_update(a, si);
	}
}

/* Unlink the first free block of class c from sl (which has one). */
static struct hdr *
take_free(struct arena *a, size_t si, int c)
{
	struct slab *sl = &a->slabs[si];
	struct hdr *h = sl->free_list[c];

	if ((sl->free_list[c] = h->u.next) == NULL) {
		sl->free_mask &= ~(UINT64_C(1) << c);
		tree_update(a, si);
	}
	/* The block was wiped when freed (or carved from zeroed memory); only its header words are not zero. */
	h->u.next = NULL;
	return h;
}

/* Index of the first slab in by_addr whose base is above p (so the one before it is the candidate). */
static size_t
addr_upper(const struct arena *a, uintptr_t p)
{
	size_t lo = 0, hi = a->nslabs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if ((uintptr_t)a->slabs[a->by_addr[mid]].base <= p)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Room for one more slab in slabs, by_addr and the tree (which needs a power-of-two leaf count). */
static int
grow_slab_arrays(struct arena *a)
{
	struct slab *v;
	size_t *x;
	uint64_t *t;
	size_t n;

	if (a->nslabs < a->slabs_alloc)
		return 0;
	n = a->slabs_alloc ? a->slabs_alloc * 2 : 8;
	/* Each step keeps what it got: a later failure leaves bigger arrays, never lost ones. */
	if ((v = realloc(a->slabs, n * sizeof(*v))) == NULL)
		return -1;
	a->slabs = v;
	if ((x = realloc(a->by_addr, n * sizeof(*x))) == NULL)
		return -1;
	a->by_addr = x;
	if ((t = calloc(2 * n, sizeof(*t))) == NULL)
		return -1;
	free(a->tree);
	a->tree = t;
	a->slabs_alloc = n;
	tree_rebuild(a);
	return 0;
}

/* Map a new slab big enough for need bytes and make it the bump region. */
static int
new_slab(struct arena *a, size_t need)
{
	struct slab *sl;
	uint8_t *p;
	size_t sz, pos;

	if (grow_slab_arrays(a) != 0)
		return -1;
	/* Double from SLAB_FIRST up to the arena's slab_max: (16K - 16) * 2 + 16 = 32K - 16, and so on. */
	if (a->next_slab == 0)
		a->next_slab = SLAB_FIRST;
	sz = a->next_slab;
	while (sz < need)
		sz = sz * 2 + 16;
	if ((p = sodium_malloc(sz)) == NULL)
		return -1;
	/* sodium_malloc fills with a garbage byte; blocks are handed out zeroed. */
	memset(p, 0, sz);
	sl = &a->slabs[a->nslabs];
	memset(sl, 0, sizeof(*sl));
	sl->base = p;
	sl->size = sz;
	sl->locked = lock_range(a, p, sz);
	/* Its tree leaf is already 0: no free block yet. */
	pos = addr_upper(a, (uintptr_t)p);
	memmove(&a->by_addr[pos + 1], &a->by_addr[pos], (a->nslabs - pos) * sizeof(*a->by_addr));
	a->by_addr[pos] = a->nslabs;
	a->nslabs++;
	a->slab_total += sz;
	a->bump = 0;
	a->next_slab = sz * 2 + 16 <= a->slab_max ? sz * 2 + 16 : a->slab_max;
	return 0;
}

/* Carve len bytes at p (a multiple of 16, already zeroed) of slab si into free blocks, largest first. */
static void
carve(struct arena *a, size_t si, uint8_t *p, size_t len)
{
	int c;

	for (c = NCLASSES - 1; c >= 0; c--) {
		while (len >= class_size(c)) {
			push_free(a, si, c, (struct hdr *)p);
			p += class_size(c);
			len -= class_size(c);
		}
	}
}

/* Carve the unused tail of the current slab into free blocks so it is not wasted. */
static void
retire_tail(struct arena *a)
{
	struct slab *sl;

	if (a->nslabs == 0)
		return;
	sl = &a->slabs[a->nslabs - 1];
	carve(a, a->nslabs - 1, sl->base + a->bump, sl->size - a->bump);
	a->bump = sl->size;
}

/*
 * A free block of class c from the oldest slab that has one. Taking the oldest first (rather than the most
 * recently freed block, wherever it is) packs long-lived blocks into the first slabs while the newest ones
 * drain: the agent rebuilds its whole store on each write, and with LIFO reuse the live store ended up
 * spread thinly over every slab, so ak_smem_trim could never return any.
 */
static struct hdr *
pop_free(struct arena *a, int c)
{
	struct hdr *h;
	size_t si;

	if ((si = tree_oldest(a, UINT64_C(1) << c)) == a->nslabs)
		return NULL;
	h = take_free(a, si, c);
	a->slabs[si].live++;
	return h;
}

/* No free block of class c: split a larger free block, again from the oldest slab that has one (its
 * smallest such class), rather than grow the current slab. Large classes are freed blocks of one-off
 * buffers (or retired slab tails) that small blocks could not use, and a new slab mapped only because of
 * them gets pinned by whatever long-lived block lands in it next. The remainder of the split goes back on
 * the free lists. */
static struct hdr *
split_free(struct arena *a, int c)
{
	uint64_t above = ALL_CLASSES & ~((UINT64_C(2) << c) - 1);
	struct hdr *h;
	size_t si;
	int k;

	if ((si = tree_oldest(a, above)) == a->nslabs)
		return NULL;
	k = lowest_bit(a->slabs[si].free_mask & above);
	h = take_free(a, si, k);
	carve(a, si, (uint8_t *)h + class_size(c), class_size(k) - class_size(c));
	a->slabs[si].live++;
	return h;
}

static void *
alloc_small(struct arena *a, size_t n, int c)
{
	struct hdr *h;

	if ((h = pop_free(a, c)) == NULL && (h = split_free(a, c)) == NULL) {
		struct slab *cur;

		if (a->nslabs == 0 || a->slabs[a->nslabs - 1].size - a->bump < class_size(c)) {
			retire_tail(a);
			if (new_slab(a, class_size(c)) != 0)
				return NULL;
		}
		cur = &a->slabs[a->nslabs - 1];
		h = (struct hdr *)(cur->base + a->bump);
		a->bump += class_size(c);
		cur->live++;
	}
	h->magic = MAGIC_USED;
	h->cls = (uint32_t)c | a->idx << ARENA_SHIFT;
	h->u.size = n;
	a->in_use += class_size(c);
	return h + 1;
}

/* Position in a->large of the first region at or above p. */
static size_t
large_lower(const struct arena *a, uintptr_t p)
{
	size_t lo = 0, hi = a->nlarge;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if ((uintptr_t)a->large[mid] < p)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void *
alloc_large(struct arena *a, size_t n)
{
	size_t sz, pos;
	uint8_t *p;
	struct large *l;
	struct hdr *h;

	if (n > SIZE_MAX - LARGE_PREFIX - sizeof(struct hdr) - 15)
		return NULL;
	/* Room in the index first, so a mapped region is never left unrecorded. */
	if (a->nlarge == a->large_alloc) {
		size_t cap = a->large_alloc ? a->large_alloc * 2 : 8;
		struct large **v;

		if ((v = realloc(a->large, cap * sizeof(*v))) == NULL)
			return NULL;
		a->large = v;
		a->large_alloc = cap;
	}
	/* A multiple of 16 keeps sodium_malloc's pointer (placed against the end guard page) aligned. */
	sz = (LARGE_PREFIX + sizeof(struct hdr) + n + 15) & ~(size_t)15;
	if ((p = sodium_malloc(sz)) == NULL)
		return NULL;
	memset(p, 0, sz);
	l = (struct large *)p;
	l->region_size = sz;
	l->locked = lock_range(a, p, sz);
	pos = large_lower(a, (uintptr_t)l);
	memmove(&a->large[pos + 1], &a->large[pos], (a->nlarge - pos) * sizeof(*a->large));
	a->large[pos] = l;
	a->nlarge++;
	a->large_bytes += sz;
	a->in_use += sz;
	h = (struct hdr *)(p + LARGE_PREFIX);
	h->magic = MAGIC_USED;
	h->cls = CLASS_LARGE | a->idx << ARENA_SHIFT;
	h->u.size = n;
	return h + 1;
}

static void *
arena_alloc(struct arena *a, size_t n)
{
	if (ak_smem_init() != 0)
		return NULL;
	if (n <= CLASS_MAX - sizeof(struct hdr))
		return alloc_small(a, n, class_of(n + sizeof(struct hdr)));
	return alloc_large(a, n);
}

static void *
locked_alloc(struct arena *a, size_t n)
{
	void *p;

	pthread_mutex_lock(&mu);
	p = arena_alloc(a, n);
	pthread_mutex_unlock(&mu);
	return p;
}

void *
ak_smem_alloc(size_t n)
{
	return locked_alloc(&arenas[ARENA_MAIN], n);
}

void *
ak_smem_pack_alloc(size_t n)
{
	return locked_alloc(&arenas[ARENA_PACK], n);
}

/* 1 when p lies in one of a's slabs or large regions (anywhere in it: a block, a header, a free one). */
static int
arena_holds(const struct arena *a, const void *p)
{
	uintptr_t q = (uintptr_t)p;
	const struct slab *sl;
	const struct large *l;
	size_t i;

	if ((i = addr_upper(a, q)) > 0) {
		sl = &a->slabs[a->by_addr[i - 1]];
		if (q < (uintptr_t)sl->base + sl->size)
			return 1;
	}
	if ((i = large_lower(a, q + 1)) > 0) {
		l = a->large[i - 1];
		if (q < (uintptr_t)l + l->region_size)
			return 1;
	}
	return 0;
}

/* Index of the slab holding a block of class c at h, or a->nslabs if no slab of a could hold it. */
static size_t
slab_of_block(const struct arena *a, const struct hdr *h, int c)
{
	uintptr_t p = (uintptr_t)h;
	const struct slab *sl;
	size_t i, si, off;

	if ((i = addr_upper(a, p)) == 0)
		return a->nslabs;
	si = a->by_addr[i - 1];
	sl = &a->slabs[si];
	if (p >= (uintptr_t)sl->base + sl->size)
		return a->nslabs;
	off = (size_t)(p - (uintptr_t)sl->base);
	return off % 16 == 0 && off + class_size(c) <= sl->size ? si : a->nslabs;
}

static void
free_large(struct arena *a, struct hdr *h)
{
	struct large *l = (struct large *)((uint8_t *)h - LARGE_PREFIX);
	size_t pos = large_lower(a, (uintptr_t)l);

	/* Membership by address alone: l is not read before it is known to be one of ours. */
	if (pos == a->nlarge || a->large[pos] != l)
		abort();
	memmove(&a->large[pos], &a->large[pos + 1], (a->nlarge - pos - 1) * sizeof(*a->large));
	a->nlarge--;
	a->large_bytes -= l->region_size;
	a->in_use -= l->region_size;
	a->locked_bytes -= l->locked;
	/* sodium_free wipes the whole region and munlocks it. */
	sodium_free(l);
}

static void smem_free(void *p);

void
ak_smem_free(void *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&mu);
	/* A string carved from a pack has no header of its own: it is wiped, and its bytes go with the
	 * pack. Decided by address alone, before any header is read. */
	if (arena_holds(&arenas[ARENA_PACK], p))
		sodium_memzero(p, strlen(p));
	else
		smem_free(p);
	pthread_mutex_unlock(&mu);
}

void
ak_smem_pack_free(void *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&mu);
	/* Only packs are freed here: a header from another arena is memory corruption. */
	if ((((struct hdr *)p - 1)->cls >> ARENA_SHIFT) != ARENA_PACK)
		abort();
	smem_free(p);
	pthread_mutex_unlock(&mu);
}

static void
smem_free(void *p)
{
	struct arena *a;
	struct hdr *h;
	uint32_t ai, c;
	size_t si;

	if (p == NULL)
		return;
	h = (struct hdr *)p - 1;
	/* A bad pointer or a double free means memory corruption: stop rather than recycle garbage. The
	 * membership checks below are against the arena the header names, so a forged index aborts too. */
	if (h->magic != MAGIC_USED)
		abort();
	ai = h->cls >> ARENA_SHIFT;
	c = h->cls & CLASS_MASK;
	if (ai >= NARENAS)
		abort();
	a = &arenas[ai];
	if (c == CLASS_LARGE) {
		free_large(a, h);
		return;
	}
	if (c == CLASS_BUMP) {
		/* Wiped with its region at the end of the session; marked so a second free aborts. */
		h->magic = MAGIC_FREE;
		return;
	}
	if (c >= NCLASSES || (si = slab_of_block(a, h, (int)c)) == a->nslabs)
		abort();
	/* Wipe the whole block, header included: the free-list link is written afterwards. */
	sodium_memzero(h, class_size((int)c));
	a->in_use -= class_size((int)c);
	a->slabs[si].live--;
	push_free(a, si, (int)c, h);
}

/* Unmap the slabs of a with no live block. The current (bump) slab stays unless keep_current is 0: in the
 * main arena the next allocation would only map it again; the scratch arena is empty between requests, and
 * holding its last slab would keep up to 64 KiB locked for nothing. A slab's free blocks are all on its own
 * lists, so forgetting the slab forgets them. */
static void
trim_arena(struct arena *a, int keep_current)
{
	size_t i, n = 0;
	int current_removed = 0;

	/* Decide, and number the survivors in their (unchanged) age order. */
	for (i = 0; i < a->nslabs; i++) {
		struct slab *sl = &a->slabs[i];
		int current = i + 1 == a->nslabs;

		if (sl->live != 0 || (current && keep_current)) {
			sl->moved_to = n++;
			continue;
		}
		sl->moved_to = SIZE_MAX;
		current_removed = current;
	}
	if (n == a->nslabs)
		return;
	/* The address order of the survivors is unchanged: drop the others, renumber the rest. */
	for (i = 0, n = 0; i < a->nslabs; i++) {
		size_t to = a->slabs[a->by_addr[i]].moved_to;

		if (to != SIZE_MAX)
			a->by_addr[n++] = to;
	}
	for (i = 0, n = 0; i < a->nslabs; i++) {
		struct slab *sl = &a->slabs[i];

		if (sl->moved_to != SIZE_MAX) {
			if (n != i)
				a->slabs[n] = *sl;
			n++;
			continue;
		}
		a->slab_total -= sl->size;
		a->locked_bytes -= sl->locked;
		/* sodium_free wipes the region and munlocks it. */
		sodium_free(sl->base);
	}
	a->nslabs = n;
	if (current_removed) {
		/* The previous slab becomes the bump slab; its tail was carved into free blocks when it was
		 * retired, so it has no room left. With no slab at all, growth starts small again. */
		a->bump = a->nslabs > 0 ? a->slabs[a->nslabs - 1].size : 0;
		if (a->nslabs == 0)
			a->next_slab = SLAB_FIRST;
	}
	/* Ages were renumbered. */
	tree_rebuild(a);
}

void
ak_smem_trim(void)
{
	pthread_mutex_lock(&mu);
	trim_arena(&arenas[ARENA_MAIN], 1);
	trim_arena(&arenas[ARENA_SCRATCH], 0);
	/* Packs come from a parse only: nothing to keep a slab for. */
	trim_arena(&arenas[ARENA_PACK], 0);
	pthread_mutex_unlock(&mu);
}

/*
 * Scratch sessions (ak_smem_scratch_begin/end): parsing a large store makes hundreds of thousands of cJSON
 * nodes and key strings that all die together at cJSON_Delete. Inside a session this thread's cJSON blocks
 * are carved one after another from a few large regions (sodium_malloc'd, mlocked, counted in the scratch
 * arena), their free only marks them, and the end of the session wipes and unmaps the regions at once:
 * one allocation is a pointer bump, and no free has to find a slab. Per thread, so a session never hands
 * out memory another thread's cJSON still uses. A region is 64 KiB: the store is parsed one profile at a
 * time, rewinding the session after each (ak_smem_scratch_rewind), so one region, faulted in and locked
 * once, serves a whole parse; a larger one would only be more fresh memory to fault in, lock and wipe.
 */
#define BUMP_REGION (64u << 10)

struct bump {
	struct bump *next;
	size_t size;                    /* what sodium_malloc was asked for */
	size_t used;
	size_t locked;
};
#define BUMP_PREFIX 32
_Static_assert(sizeof(struct bump) <= BUMP_PREFIX, "bump prefix too small");

static __thread struct bump *bump_head;
static __thread unsigned bump_depth;

void
ak_smem_scratch_begin(void)
{
	bump_depth++;
}

/* Unmap region b of the scratch arena (sodium_free wipes the whole region and munlocks it). */
static void
bump_release(struct bump *b)
{
	struct arena *a = &arenas[ARENA_SCRATCH];

	pthread_mutex_lock(&mu);
	a->large_bytes -= b->size;
	a->in_use -= b->size;
	a->locked_bytes -= b->locked;
	pthread_mutex_unlock(&mu);
	sodium_free(b);
}

void
ak_smem_scratch_end(void)
{
	struct bump *b, *next;

	if (bump_depth == 0 || --bump_depth > 0)
		return;
	for (b = bump_head; b != NULL; b = next) {
		next = b->next;
		bump_release(b);
	}
	bump_head = NULL;
}

void
ak_smem_scratch_rewind(void)
{
	struct bump *b, *next;

	if (bump_depth != 1 || (b = bump_head) == NULL)
		return;
	/* Regions of a single large block go; the current region stays mapped and locked, wiped as far as
	 * it was used (past that it was never written). */
	for (next = b->next; next != NULL; next = b->next) {
		b->next = next->next;
		bump_release(next);
	}
	if (b->size != BUMP_REGION - 16) {
		/* A region of one large block is never the one to keep. */
		bump_release(b);
		bump_head = NULL;
		return;
	}
	sodium_memzero((uint8_t *)b + BUMP_PREFIX, b->used - BUMP_PREFIX);
	b->used = BUMP_PREFIX;
}

static void *
bump_alloc(size_t n)
{
	struct arena *a = &arenas[ARENA_SCRATCH];
	struct bump *b = bump_head;
	size_t total, sz;
	struct hdr *h;

	if (n > SIZE_MAX - BUMP_REGION)
		return NULL;
	total = (sizeof(struct hdr) + n + 15) & ~(size_t)15;
	if (b == NULL || b->size - b->used < total) {
		/* A block bigger than a region gets a region of its own, in the session like the rest
		 * (a session's blocks need not be freed one by one: its end releases them all). */
		sz = total > BUMP_REGION - BUMP_PREFIX - 16 ? ((BUMP_PREFIX + total + 15) & ~(size_t)15) :
		    BUMP_REGION - 16;
		if (ak_smem_init() != 0 || (b = sodium_malloc(sz)) == NULL)
			return NULL;
		/* Not zeroed: cJSON initialises what it allocates, and sodium_free wipes it all. */
		memset(b, 0, BUMP_PREFIX);
		b->size = sz;
		b->used = BUMP_PREFIX;
		if (bump_head != NULL && sz != BUMP_REGION - 16) {
			/* Behind the current region, which keeps taking the small blocks. */
			b->next = bump_head->next;
			bump_head->next = b;
		} else {
			b->next = bump_head;
			bump_head = b;
		}
		pthread_mutex_lock(&mu);
		b->locked = lock_range(a, b, sz);
		a->large_bytes += sz;
		a->in_use += sz;
		pthread_mutex_unlock(&mu);
	}
	h = (struct hdr *)((uint8_t *)b + b->used);
	b->used += total;
	h->magic = MAGIC_USED;
	h->cls = CLASS_BUMP | ARENA_SCRATCH << ARENA_SHIFT;
	h->u.size = n;
	return h + 1;
}

/* cJSON's nodes and print buffers are short-lived: keep them out of the main arena (see the top). What
 * cJSON returns (cJSON_Print) may still be freed with ak_smem_free, which finds the arena in the header. */
void *
ak_smem_cjson_alloc(size_t n)
{
	if (bump_depth > 0)
		return bump_alloc(n);
	return locked_alloc(&arenas[ARENA_SCRATCH], n);
}

void
ak_smem_stats(struct ak_smem_stats *st)
{
	const struct arena *m = &arenas[ARENA_MAIN], *s = &arenas[ARENA_SCRATCH], *k = &arenas[ARENA_PACK];

	pthread_mutex_lock(&mu);
	st->slabs = m->nslabs + m->nlarge + s->nslabs + s->nlarge + k->nslabs + k->nlarge;
	st->slab_bytes = m->slab_total + m->large_bytes + s->slab_total + s->large_bytes + k->slab_total +
	    k->large_bytes;
	st->locked_bytes = m->locked_bytes + s->locked_bytes + k->locked_bytes;
	st->in_use = m->in_use + s->in_use + k->in_use;
	st->lock_failed = m->lock_failed || s->lock_failed || k->lock_failed;
	st->scratch_slabs = s->nslabs + s->nlarge;
	st->scratch_slab_bytes = s->slab_total + s->large_bytes;
	st->scratch_locked_bytes = s->locked_bytes;
	st->scratch_in_use = s->in_use;
	pthread_mutex_unlock(&mu);
}

/* Forget every region of a, wiping each: sodium_free unmaps it too (after wiping); with unmap 0 it is
 * only wiped and its mapping and lock are left for the kernel to drop at exit. */
static void
release_arena(struct arena *a, int unmap)
{
	size_t i;

	for (i = 0; i < a->nlarge; i++) {
		if (unmap)
			sodium_free(a->large[i]);
		else
			sodium_memzero(a->large[i], a->large[i]->region_size);
	}
	for (i = 0; i < a->nslabs; i++) {
		if (unmap)
			sodium_free(a->slabs[i].base);
		else
			sodium_memzero(a->slabs[i].base, a->slabs[i].size);
	}
	free(a->slabs);
	free(a->by_addr);
	free(a->tree);
	free(a->large);
	a->slabs = NULL;
	a->by_addr = NULL;
	a->tree = NULL;
	a->nslabs = a->slabs_alloc = 0;
	a->bump = 0;
	a->slab_total = 0;
	a->next_slab = SLAB_FIRST;
	a->large = NULL;
	a->nlarge = a->large_alloc = 0;
	a->large_bytes = 0;
	a->locked_bytes = 0;
	a->in_use = 0;
	a->lock_failed = 0;
}

void
ak_smem_release_all(void)
{
	pthread_mutex_lock(&mu);
	release_arena(&arenas[ARENA_MAIN], 1);
	release_arena(&arenas[ARENA_SCRATCH], 1);
	release_arena(&arenas[ARENA_PACK], 1);
	/* A fresh arena: a later lock failure is reported again. */
	warned = 0;
	pthread_mutex_unlock(&mu);
}

void
ak_smem_wipe_all(void)
{
	pthread_mutex_lock(&mu);
	release_arena(&arenas[ARENA_MAIN], 0);
	release_arena(&arenas[ARENA_SCRATCH], 0);
	release_arena(&arenas[ARENA_PACK], 0);
	pthread_mutex_unlock(&mu);
}
