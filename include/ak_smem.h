/* ak_smem.h - the secure-memory arena: every long-lived secret lives here.
 *
 * Backed by a few slabs laid out as sodium_malloc's (guard pages, MADV_DONTDUMP, mlocked), sub-allocated by
 * size class. The arena mlocks each slab itself, counts locked bytes, and calls the warning hook once when
 * locking fails (RLIMIT_MEMLOCK). It needs no start-up: the first allocation maps the first slab.
 * Every block is wiped (sodium_memzero) when freed. Thread-safe (one lock): the agent's keystore writer
 * thread allocates and frees beside its event loop.
 */
#ifndef AK_SMEM_H
#define AK_SMEM_H

#include <stddef.h>

/* Idempotent: sodium_init(), so libsodium picks the CPU's fastest implementations; programs that do bulk
 * crypto call it once at start. The arena itself does not need it, and libsodium's functions work without
 * it (portable implementations), so akctl leaves it to the code that hashes, seals or derives keys: its
 * CPU detection is a noticeable share of a bare `akctl get`. Returns 0, or -1 if libsodium cannot start. */
int ak_smem_init(void);

/* Allocate n bytes (n may be 0: a valid unique pointer). Zeroed. NULL on failure. 16-byte aligned. */
void *ak_smem_alloc(size_t n);
/* Wipe the whole block and return it to the arena. NULL is a no-op. */
void ak_smem_free(void *p);
/* NUL-terminated copy of s (or of the first n bytes, adding a NUL) in the arena. NULL on failure. */
char *ak_smem_strdup(const char *s);
char *ak_smem_strndup(const char *s, size_t n);

/* Route every cJSON allocation through the arena (cJSON_InitHooks). Doing so also disables cJSON's
 * realloc path, so every buffer cJSON ever holds is wiped when freed. cJSON allocates from a separate
 * scratch arena (same guarantees) so its short-lived nodes never pin the main arena's slabs; a buffer cJSON
 * returns (cJSON_Print) may be freed with cJSON_free or ak_smem_free alike. */
void ak_smem_hook_cjson(void);

/* A scratch session on this thread (they nest): until the matching end, cJSON's allocations of this
 * thread come from regions freed all at once, wiped, at the end. Only around code whose cJSON blocks
 * all die before the end (a parse and its cJSON_Delete). */
void ak_smem_scratch_begin(void);
void ak_smem_scratch_end(void);

/* Totals over both arenas; the scratch_ fields are the scratch arena's share of them. */
struct ak_smem_stats {
	size_t slabs;          /* guarded regions held (slabs and large blocks) */
	size_t slab_bytes;     /* their total size */
	size_t locked_bytes;   /* bytes the arena succeeded in mlocking */
	size_t in_use;         /* bytes currently handed out (block sizes) */
	int lock_failed;       /* 1 once an mlock failed (memlock limit) */
	size_t scratch_slabs;        /* of which the cJSON scratch arena's */
	size_t scratch_slab_bytes;
	size_t scratch_locked_bytes;
	size_t scratch_in_use;
};
void ak_smem_stats(struct ak_smem_stats *st);

/* Called once, the first time mlock fails; default prints a one-line warning on stderr. */
void ak_smem_set_warn(void (*fn)(const char *msg));

/* Return slabs whose blocks are all free to the system (wiped, munlocked). Cheap enough to call after
 * each unlock, lock or write; never invalidates a live pointer. The scratch arena gives back even its
 * current slab, so with no cJSON allocation alive it holds nothing. */
void ak_smem_trim(void);

/* Free every slab (wiping it). Only at exit, or in tests. Pointers handed out become invalid. */
void ak_smem_release_all(void);

/* Wipe every slab, then forget them all without unmapping: for a process about to exit, to which
 * unlocking and unmapping cost more than the wiping (the kernel drops the mappings with the process).
 * Pointers handed out become invalid; the arena starts afresh if used again. */
void ak_smem_wipe_all(void);

#endif
