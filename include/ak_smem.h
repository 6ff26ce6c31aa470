/* ak_smem.h - the secure-memory arena: every long-lived secret lives here.
 *
 * Backed by a few sodium_malloc() slabs (guard pages, canary, MADV_DONTDUMP), sub-allocated by size class.
 * sodium_malloc silently skips mlock once RLIMIT_MEMLOCK is reached, so the arena mlocks each slab
 * itself, counts locked bytes, and calls the warning hook once when locking fails.
 * Every block is wiped (sodium_memzero) when freed. Thread-safe (one lock): the agent's keystore writer
 * thread allocates and frees beside its event loop.
 */
#ifndef AK_SMEM_H
#define AK_SMEM_H

#include <stddef.h>

/* Idempotent; calls sodium_init(). Returns 0, or -1 if libsodium cannot start. */
int ak_smem_init(void);

/* Allocate n bytes (n may be 0: a valid unique pointer). Zeroed. NULL on failure. 16-byte aligned. */
void *ak_smem_alloc(size_t n);
/* Wipe the whole block and return it to the arena. NULL is a no-op. */
void ak_smem_free(void *p);
/* Packs: one block holding a structure and the strings it points to (a profile read from the store),
 * from an arena of their own. ak_smem_free of a string inside a pack wipes the string (to its NUL) and
 * leaves its bytes to the pack, so code that replaces a string field need not know where it lives; only
 * strings inside a pack may be freed that way. The pack itself is freed, and wholly wiped, with
 * ak_smem_pack_free (NULL is a no-op; anything but a pack aborts). Zeroed, 16-byte aligned. */
void *ak_smem_pack_alloc(size_t n);
void ak_smem_pack_free(void *p);
/* NUL-terminated copy of s (or of the first n bytes, adding a NUL) in the arena. NULL on failure. */
char *ak_smem_strdup(const char *s);
char *ak_smem_strndup(const char *s, size_t n);

/* Route every cJSON allocation through the arena (cJSON_InitHooks). Doing so also disables cJSON's
 * realloc path, so every buffer cJSON ever holds is wiped when freed. cJSON allocates from a separate
 * scratch arena (same guarantees) so its short-lived nodes never pin the main arena's slabs; a buffer cJSON
 * returns (cJSON_Print) may be freed with cJSON_free or ak_smem_free alike. */
void ak_smem_hook_cjson(void);
/* The allocator ak_smem_hook_cjson gives cJSON: the scratch arena, or this thread's scratch session
 * while one is open. Zeroing is not promised. Free with ak_smem_free. */
void *ak_smem_cjson_alloc(size_t n);

/* A scratch session on this thread (they nest): until the matching end, cJSON's allocations of this
 * thread come from regions freed all at once, wiped, at the end. Only around code whose cJSON blocks
 * all die before the end (a parse and its tree). They need not be freed (cJSON_Delete): the end wipes
 * and unmaps every block of the session, whatever its size. */
void ak_smem_scratch_begin(void);
void ak_smem_scratch_end(void);
/* Wipe every block of this thread's session and start it over, keeping its current region mapped and
 * locked for what comes next: for a loop that parses one value after another, each dead before the
 * next. Only in an outermost session (a nested one is left as it is: an outer caller's blocks may be
 * alive); no block of the session may be used afterwards. */
void ak_smem_scratch_rewind(void);

/* Totals over the arenas (main, scratch, packs); the scratch_ fields are the scratch arena's share. */
struct ak_smem_stats {
	size_t slabs;          /* sodium_malloc regions held */
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
