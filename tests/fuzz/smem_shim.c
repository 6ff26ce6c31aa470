/* smem_shim.c - a malloc-backed stand-in for lib/smem.c, linked into the libFuzzer builds only.
 *
 * Why: the real arena sub-allocates sodium_malloc slabs by size class, so a read or write past the
 * bytes a caller asked for, but inside its class block, is invisible to AddressSanitizer. Here every
 * block is its own malloc of exactly the requested size, so ASan sees every overflow, use after free
 * and double free in code that uses secure memory. It keeps the contract (zeroed, wiped on free,
 * in_use counted) so the targets' leak checks still work. It defines every symbol of smem.c, so the
 * linker never pulls smem.o out of libak.a (a missing one would show up as a duplicate definition);
 * the string copies and the cJSON hook (lib/smem_str.c) are the library's own, built on these.
 * The replay tests in the normal build run against the real arena.
 */
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ak_smem.h"

static size_t in_use;
static int initialized;

int
ak_smem_init(void)
{
	if (!initialized) {
		if (sodium_init() < 0)
			return -1;
		initialized = 1;
	}
	return 0;
}

void *
ak_smem_alloc(size_t n)
{
	void *p;

	if (ak_smem_init() != 0)
		return NULL;
	/* A zero-byte request still gets a unique pointer, as the real arena promises. */
	if ((p = calloc(1, n ? n : 1)) == NULL)
		return NULL;
	in_use += malloc_usable_size(p);
	return p;
}

/* Scratch sessions: the real arena releases every cJSON block of a session at its end, and the parser
 * relies on that (it never deletes its tree). Here each such block is remembered, per thread as there,
 * and freed at the end; one freed earlier (cJSON frees a half-built tree itself) is forgotten. */
static __thread int sess_depth;
static __thread void **sess;
static __thread size_t sess_n, sess_cap;

static void
release(void *p)
{
	/* Under ASan malloc_usable_size is the requested size, and it reports a foreign pointer. */
	size_t n = malloc_usable_size(p);

	sodium_memzero(p, n);
	in_use -= n;
	free(p);
}

/* Packs are remembered (one malloc each), so that a string inside one is told from a block of its
 * own by its address, as the arena does. */
struct pack {
	unsigned char *p;
	size_t n;
};
static struct pack *packs;
static size_t npacks, cappacks;

void *
ak_smem_pack_alloc(size_t n)
{
	struct pack *v;
	void *p;

	if (npacks == cappacks) {
		if ((v = realloc(packs, (cappacks ? cappacks * 2 : 64) * sizeof(*v))) == NULL)
			return NULL;
		packs = v;
		cappacks = cappacks ? cappacks * 2 : 64;
	}
	if ((p = ak_smem_alloc(n)) == NULL)
		return NULL;
	packs[npacks].p = p;
	packs[npacks].n = n ? n : 1;
	npacks++;
	return p;
}

void
ak_smem_pack_free(void *p)
{
	size_t i;

	if (p == NULL)
		return;
	for (i = 0; i < npacks && packs[i].p != p; i++)
		;
	if (i == npacks)
		abort(); /* not a pack */
	packs[i] = packs[--npacks];
	release(p);
}

void
ak_smem_free(void *p)
{
	size_t i;

	if (p == NULL)
		return;
	for (i = 0; i < npacks; i++) {
		if ((unsigned char *)p == packs[i].p)
			abort(); /* a pack goes with ak_smem_pack_free */
		if ((unsigned char *)p > packs[i].p && (unsigned char *)p < packs[i].p + packs[i].n) {
			sodium_memzero(p, strlen(p));
			return;
		}
	}
	for (i = sess_n; i > 0; i--)
		if (sess[i - 1] == p) {
			sess[i - 1] = NULL;
			break;
		}
	release(p);
}

/* cJSON's blocks too: every one is its own malloc, seen by ASan. */
void *
ak_smem_cjson_alloc(size_t n)
{
	void *p = ak_smem_alloc(n), **v;

	if (p == NULL || sess_depth == 0)
		return p;
	if (sess_n == sess_cap) {
		if ((v = realloc(sess, (sess_cap ? sess_cap * 2 : 256) * sizeof(*v))) == NULL) {
			release(p);
			return NULL;
		}
		sess = v;
		sess_cap = sess_cap ? sess_cap * 2 : 256;
	}
	sess[sess_n++] = p;
	return p;
}

void
ak_smem_stats(struct ak_smem_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->in_use = in_use;
}

void
ak_smem_set_warn(void (*fn)(const char *msg))
{
	(void)fn;
}

void
ak_smem_release_all(void)
{
	/* Blocks are individually malloc'd: nothing pooled to release. */
}

void
ak_smem_trim(void)
{
	/* Nothing pooled: free() already returned every block. */
}

void
ak_smem_scratch_begin(void)
{
	sess_depth++;
}

void
ak_smem_scratch_end(void)
{
	size_t i;

	if (sess_depth == 0 || --sess_depth > 0)
		return;
	for (i = 0; i < sess_n; i++)
		if (sess[i] != NULL)
			release(sess[i]);
	free(sess);
	sess = NULL;
	sess_n = sess_cap = 0;
}

void
ak_smem_scratch_rewind(void)
{
	size_t i;

	if (sess_depth != 1)
		return;
	for (i = 0; i < sess_n; i++)
		if (sess[i] != NULL)
			release(sess[i]);
	sess_n = 0;
}
