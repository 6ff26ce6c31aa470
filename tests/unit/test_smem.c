/* test_smem.c - the secure arena: sizes, reuse, wiping, large blocks, stats, cJSON hooks and the scratch
 * arena, bad frees, memlock limit. */
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "ak_smem.h"
#include "t.h"

static int warn_calls;
static int warn_text_ok;

/* The message carries no program name: the agent's logger adds "akagent: " itself. */
static void
count_warn(const char *msg)
{
	warn_text_ok = strcmp(msg, "warning: memlock limit reached (RLIMIT_MEMLOCK); secrets may be swapped") == 0;
	warn_calls++;
}

static int
all_zero(const void *p, size_t n)
{
	const unsigned char *c = p;
	size_t i;

	for (i = 0; i < n; i++)
		if (c[i] != 0)
			return 0;
	return 1;
}

static void
test_basic(void)
{
	struct ak_smem_stats st;
	void *a, *b;
	char *s;

	CHECK_EQ(ak_smem_init(), 0);
	CHECK_EQ(ak_smem_init(), 0);
	a = ak_smem_alloc(0);
	b = ak_smem_alloc(0);
	CHECK(a != NULL && b != NULL && a != b);
	CHECK_EQ((uintptr_t)a % 16, 0);
	ak_smem_free(a);
	ak_smem_free(b);
	ak_smem_free(NULL);

	s = ak_smem_strdup("hello");
	CHECK_STR(s, "hello");
	ak_smem_free(s);
	s = ak_smem_strndup("hello world", 5);
	CHECK_STR(s, "hello");
	ak_smem_free(s);
	s = ak_smem_strndup("hi", 10);
	CHECK_STR(s, "hi");
	ak_smem_free(s);
	CHECK(ak_smem_strdup(NULL) == NULL);

	ak_smem_stats(&st);
	CHECK_EQ(st.in_use, 0);
	CHECK(st.slabs >= 1);
	/* The first slab is small on purpose (one 4 KiB page less sodium's canary): akctl needs only a few
	 * blocks. */
	CHECK(st.slab_bytes >= 4 * 1024 - 16);
}

static void
test_mixed(void)
{
	enum { N = 2000 };
	static void *p[N];
	static size_t sz[N];
	struct ak_smem_stats st;
	uint32_t seed = 12345;
	int i, round, ok = 1;

	for (round = 0; round < 3; round++) {
		for (i = 0; i < N; i++) {
			seed = seed * 1103515245u + 12345u;
			sz[i] = (seed >> 8) % (i % 50 == 0 ? 40000 : 700);
			p[i] = ak_smem_alloc(sz[i]);
			if (p[i] == NULL || (uintptr_t)p[i] % 16 != 0 || !all_zero(p[i], sz[i]))
				ok = 0;
			if (p[i] != NULL)
				memset(p[i], 0xa5, sz[i]);
		}
		/* Free every other one, then refill them: recycled blocks must come back zeroed. */
		for (i = 0; i < N; i += 2)
			ak_smem_free(p[i]);
		for (i = 0; i < N; i += 2) {
			p[i] = ak_smem_alloc(sz[i]);
			if (p[i] == NULL || !all_zero(p[i], sz[i]))
				ok = 0;
		}
		/* Everything still holds its own bytes (no overlap). */
		for (i = 1; i < N; i += 2) {
			size_t k;

			for (k = 0; k < sz[i]; k++)
				if (((unsigned char *)p[i])[k] != 0xa5)
					ok = 0;
		}
		for (i = 0; i < N; i++)
			ak_smem_free(p[i]);
	}
	CHECK(ok);
	ak_smem_stats(&st);
	CHECK_EQ(st.in_use, 0);
}

static void
test_boundaries(void)
{
	static const size_t sizes[] = { 1, 15, 16, 17, 31, 32, 33, 16368, 16369, 16384, 65536, 1 << 20 };
	struct ak_smem_stats st0, st;
	size_t i;
	int ok = 1;

	ak_smem_stats(&st0);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		unsigned char *q = ak_smem_alloc(sizes[i]);

		if (q == NULL || !all_zero(q, sizes[i])) {
			ok = 0;
			continue;
		}
		q[0] = 1;
		q[sizes[i] - 1] = 2; /* ASan / guard pages catch overruns */
		ak_smem_stats(&st);
		if (st.in_use < sizes[i])
			ok = 0;
		ak_smem_free(q);
	}
	CHECK(ok);
	ak_smem_stats(&st);
	CHECK_EQ(st.in_use, 0);
	/* Large regions are released when freed. */
	CHECK_EQ(st.slabs, st0.slabs);
}

static void
test_large_reuse_zeroed(void)
{
	unsigned char *q = ak_smem_alloc(100000);

	CHECK(q != NULL);
	memset(q, 0x77, 100000);
	ak_smem_free(q);
	q = ak_smem_alloc(100000);
	CHECK(q != NULL && all_zero(q, 100000));
	ak_smem_free(q);
}

static void
test_cjson(void)
{
	struct ak_smem_stats st;
	cJSON *doc;
	char *out;
	const char *in = "{\"version\":1,\"profiles\":[{\"name\":\"a\",\"secret\":\"sk-xyz\"}]}";

	ak_smem_hook_cjson();
	doc = cJSON_Parse(in);
	CHECK(doc != NULL);
	ak_smem_stats(&st);
	CHECK(st.in_use > 0);
	out = cJSON_PrintUnformatted(doc);
	CHECK_STR(out, in);
	cJSON_free(out);
	cJSON_Delete(doc);
	ak_smem_stats(&st);
	CHECK_EQ(st.in_use, 0);
	cJSON_InitHooks(NULL);
}

/* Main-arena share of the stats (the totals include the cJSON scratch arena). */
static size_t
main_in_use(const struct ak_smem_stats *st)
{
	return st->in_use - st->scratch_in_use;
}

static size_t
main_slab_bytes(const struct ak_smem_stats *st)
{
	return st->slab_bytes - st->scratch_slab_bytes;
}

/* cJSON allocates from the scratch arena only: a parse + free leaves the main arena as it was, and a trim
 * then leaves the scratch arena with no slab at all (not even its current one). */
static void
test_cjson_scratch(void)
{
	struct ak_smem_stats st0, st;
	char *key, *out;
	cJSON *doc;
	const char *in = "{\"version\":1,\"profiles\":[{\"name\":\"a\",\"secret\":\"sk-xyz\",\"vars\":[]}]}";

	ak_smem_release_all();
	ak_smem_hook_cjson();
	key = ak_smem_strdup("a key that stays");
	CHECK(key != NULL);
	ak_smem_stats(&st0);
	CHECK_EQ(st0.scratch_slabs, 0);
	CHECK_EQ(st0.scratch_in_use, 0);
	doc = cJSON_Parse(in);
	CHECK(doc != NULL);
	ak_smem_stats(&st);
	CHECK_EQ(main_in_use(&st), main_in_use(&st0));
	CHECK_EQ(st.slabs - st.scratch_slabs, st0.slabs);
	CHECK(st.scratch_in_use > 0);
	CHECK(st.scratch_slabs >= 1);
	if (!st.lock_failed)
		CHECK(st.scratch_locked_bytes >= st.scratch_slab_bytes);
	/* What cJSON hands out may be freed with ak_smem_free: the header names its arena. */
	out = cJSON_PrintUnformatted(doc);
	CHECK_STR(out, in);
	CHECK_EQ((uintptr_t)out % 16, 0);
	ak_smem_free(out);
	cJSON_Delete(doc);
	ak_smem_stats(&st);
	CHECK_EQ(main_in_use(&st), main_in_use(&st0));
	CHECK_EQ(st.scratch_in_use, 0);
	CHECK(st.scratch_slabs >= 1);
	ak_smem_trim();
	ak_smem_stats(&st);
	CHECK_EQ(st.scratch_slabs, 0);
	CHECK_EQ(st.scratch_slab_bytes, 0);
	CHECK_EQ(st.scratch_locked_bytes, 0);
	CHECK_EQ(main_in_use(&st), main_in_use(&st0));
	CHECK_STR(key, "a key that stays");
	/* The scratch arena starts again from a small slab. */
	doc = cJSON_Parse(in);
	ak_smem_stats(&st);
	CHECK(st.scratch_slab_bytes <= 16 * 1024);
	cJSON_Delete(doc);
	ak_smem_free(key);
	ak_smem_trim();
	cJSON_InitHooks(NULL);
	ak_smem_release_all();
}

/* A scratch session's cJSON blocks need not be freed: its end releases them all, a string bigger than a
 * bump region included, and the small blocks after that big one still come from the current region. */
static void
test_scratch_unfreed(void)
{
	struct ak_smem_stats st0, st1, st;
	size_t big = 3u << 20, i;
	char *doc, *s;
	cJSON *root;

	ak_smem_release_all();
	ak_smem_hook_cjson();
	ak_smem_stats(&st0);
	CHECK((doc = malloc(big + 64)) != NULL);
	memcpy(doc, "[\"", 2);
	memset(doc + 2, 'x', big);
	memcpy(doc + 2 + big, "\",\"a\",\"b\"]", 11); /* NUL included */
	ak_smem_scratch_begin();
	CHECK((s = cJSON_malloc(100)) != NULL); /* a small block first: the current region */
	ak_smem_stats(&st1);
	root = cJSON_Parse(doc);
	CHECK(root != NULL && cJSON_GetArraySize(root) == 3);
	CHECK_EQ(strlen(cJSON_GetArrayItem(root, 0)->valuestring), big);
	CHECK_STR(cJSON_GetArrayItem(root, 2)->valuestring, "b");
	ak_smem_stats(&st);
	CHECK(st.scratch_in_use >= big);
	/* the big string took a region of its own; the small nodes did not need another */
	CHECK(st.scratch_slab_bytes - st1.scratch_slab_bytes >= big);
	CHECK(st.scratch_slab_bytes - st1.scratch_slab_bytes < big + 4096);
	for (i = 0; i < 500; i++) /* 40 KB: room in the current region (64 KiB) */
		CHECK(cJSON_malloc(64) != NULL);
	ak_smem_stats(&st1);
	CHECK_EQ(st1.scratch_slab_bytes, st.scratch_slab_bytes);
	/* no cJSON_Delete, no free: the end wipes and unmaps every block */
	ak_smem_scratch_end();
	ak_smem_stats(&st);
	CHECK_EQ(st.scratch_in_use, st0.scratch_in_use);
	CHECK_EQ(st.scratch_slab_bytes, st0.scratch_slab_bytes);
	CHECK_EQ(st.scratch_locked_bytes, st0.scratch_locked_bytes);
	free(doc);
	cJSON_InitHooks(NULL);
	ak_smem_release_all();
}

/* Rewinding a session wipes what it handed out and serves the next blocks from the same region (nothing
 * mapped again); a region of one large block goes; a nested session is left alone; the end still
 * releases everything. */
static void
test_scratch_rewind(void)
{
	struct ak_smem_stats st0, st1, st;
	unsigned char *a, *b, *big, *keep;
	size_t i;

	ak_smem_release_all();
	ak_smem_hook_cjson();
	ak_smem_stats(&st0);
	ak_smem_scratch_begin();
	CHECK((a = cJSON_malloc(100)) != NULL);
	memset(a, 0x5a, 100);
	ak_smem_stats(&st1);
	CHECK(st1.scratch_slab_bytes > st0.scratch_slab_bytes);
	for (i = 0; i < 1000; i++) {
		ak_smem_scratch_rewind();
		/* wiped, and the same place again: one region for a whole loop of parses */
		for (b = a; b < a + 100 && *b == 0; b++)
			;
		CHECK(b == a + 100);
		CHECK((b = cJSON_malloc(100)) == a);
		memset(b, 0x5a, 100);
	}
	ak_smem_stats(&st);
	CHECK_EQ(st.scratch_slab_bytes, st1.scratch_slab_bytes);
	CHECK_EQ(st.scratch_locked_bytes, st1.scratch_locked_bytes);
	/* a block larger than a region: its own region, released by the rewind */
	CHECK((big = cJSON_malloc(1u << 20)) != NULL);
	ak_smem_stats(&st);
	CHECK(st.scratch_slab_bytes >= st1.scratch_slab_bytes + (1u << 20));
	ak_smem_scratch_rewind();
	ak_smem_stats(&st);
	CHECK_EQ(st.scratch_slab_bytes, st1.scratch_slab_bytes);
	/* nested: the outer session's blocks stay as they are */
	CHECK((keep = cJSON_malloc(32)) != NULL);
	memset(keep, 0x33, 32);
	ak_smem_scratch_begin();
	CHECK(cJSON_malloc(32) != NULL);
	ak_smem_scratch_rewind();
	CHECK(keep[0] == 0x33 && keep[31] == 0x33);
	ak_smem_scratch_end();
	CHECK(keep[0] == 0x33);
	ak_smem_scratch_end();
	ak_smem_stats(&st);
	CHECK_EQ(st.scratch_slab_bytes, st0.scratch_slab_bytes);
	CHECK_EQ(st.scratch_in_use, st0.scratch_in_use);
	CHECK_EQ(st.scratch_locked_bytes, st0.scratch_locked_bytes);
	/* outside a session: nothing to do */
	ak_smem_scratch_rewind();
	/* a session whose only region is a large block's: the rewind lets it go too */
	ak_smem_scratch_begin();
	CHECK(cJSON_malloc(1u << 20) != NULL);
	ak_smem_scratch_rewind();
	ak_smem_stats(&st);
	CHECK_EQ(st.scratch_slab_bytes, st0.scratch_slab_bytes);
	CHECK(cJSON_malloc(10) != NULL);
	ak_smem_scratch_end();
	ak_smem_stats(&st);
	CHECK_EQ(st.scratch_slab_bytes, st0.scratch_slab_bytes);
	cJSON_InitHooks(NULL);
	ak_smem_release_all();
}

/* What the agent does on a write: parse a store (~40 KB of JSON) with cJSON, copy its strings into the main
 * arena while building the new cJSON tree to seal, print it, free the trees. The long-lived strings must not
 * end up scattered over slabs pinned by cJSON nodes: after a trim the main arena holds about what the
 * strings need (+ one slab), and the scratch arena nothing. */
static void
test_cjson_interleaved(void)
{
	enum { N = 300 };
	static char *str[N];
	struct ak_smem_stats st;
	cJSON *doc, *outdoc, *arr, *it;
	char *text, *printed;
	size_t len = 0, cap = 64 * 1024, want = 0;
	int i, ok = 1;

	ak_smem_release_all();
	ak_smem_hook_cjson();
	/* Test data, not secrets: plain heap. */
	text = malloc(cap);
	CHECK(text != NULL);
	if (text == NULL)
		return;
	len += (size_t)snprintf(text + len, cap - len, "{\"version\":1,\"profiles\":[");
	for (i = 0; i < N; i++)
		len += (size_t)snprintf(text + len, cap - len,
		    "%s{\"name\":\"p%03d\",\"secret\":\"sk-ant-api03-%070dAA\",\"vars\":[{\"name\":\"M\",\"value\":\"x\"}]}",
		    i ? "," : "", i, i);
	len += (size_t)snprintf(text + len, cap - len, "]}");
	CHECK(len > 40 * 1000 && len < cap);

	doc = cJSON_Parse(text);
	CHECK(doc != NULL);
	outdoc = cJSON_CreateObject();
	arr = cJSON_AddArrayToObject(outdoc, "profiles");
	CHECK(arr != NULL);
	i = 0;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(doc, "profiles")) {
		const char *sec = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "secret"));
		cJSON *o;

		if (i >= N || sec == NULL) {
			ok = 0;
			break;
		}
		/* One long-lived string in the main arena, then more cJSON nodes right after it. */
		if ((str[i] = ak_smem_strdup(sec)) == NULL)
			ok = 0;
		want += (strlen(sec) + 1 + 16 + 15) & ~(size_t)15;
		o = cJSON_CreateObject();
		if (o == NULL || cJSON_AddStringToObject(o, "secret", str[i]) == NULL ||
		    cJSON_AddStringToObject(o, "name", "n") == NULL || !cJSON_AddItemToArray(arr, o))
			ok = 0;
		i++;
	}
	CHECK(ok);
	CHECK_EQ(i, N);
	printed = cJSON_PrintUnformatted(outdoc);
	CHECK(printed != NULL && strlen(printed) > 30000);
	ak_smem_stats(&st);
	/* The cJSON side was by far the bigger one. */
	CHECK(st.scratch_in_use > 2 * want);
	cJSON_free(printed);
	cJSON_Delete(outdoc);
	cJSON_Delete(doc);
	ak_smem_trim();
	ak_smem_stats(&st);
	CHECK_EQ(st.scratch_slabs, 0);
	CHECK_EQ(st.scratch_in_use, 0);
	CHECK(main_in_use(&st) >= want);
	CHECK(main_slab_bytes(&st) <= want + 64 * 1024);
	for (i = 0; i < N; i++) {
		char exp[96];

		snprintf(exp, sizeof(exp), "sk-ant-api03-%070dAA", i);
		if (str[i] == NULL || strcmp(str[i], exp) != 0)
			ok = 0;
		ak_smem_free(str[i]);
	}
	CHECK(ok);
	ak_smem_trim();
	ak_smem_stats(&st);
	CHECK_EQ(st.in_use, 0);
	CHECK(st.slabs <= 1);
	free(text);
	cJSON_InitHooks(NULL);
	ak_smem_release_all();
}

/* Freeing something the arenas never handed out, twice, or with a forged arena index aborts. */
static void
expect_abort(void (*fn)(void))
{
	pid_t pid;
	int status = -1;

	fflush(NULL);
	if ((pid = fork()) == 0) {
		fn();
		_exit(0);
	}
	CHECK(pid > 0);
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
}

static void
double_free_scratch(void)
{
	char *out;
	cJSON *n;

	ak_smem_hook_cjson();
	n = cJSON_CreateString("x");
	out = cJSON_PrintUnformatted(n);
	cJSON_Delete(n);
	ak_smem_free(out);
	ak_smem_free(out);
}

static void
forged_arena(void)
{
	uint32_t *p = ak_smem_alloc(32);

	/* White-box: the header's second word holds the class and, above bit 8, the arena. */
	p[-3] ^= 1u << 8;
	ak_smem_free(p);
}

static void
forged_arena_index(void)
{
	uint32_t *p = ak_smem_alloc(32);

	p[-3] |= 7u << 8;
	ak_smem_free(p);
}

static void
forged_arena_large(void)
{
	uint32_t *p = ak_smem_alloc(100000);

	p[-3] ^= 1u << 8;
	ak_smem_free(p);
}

/* A heap block dressed up with a valid in-use header: no slab or large region holds it. */
static void
foreign_small(void)
{
	static uint32_t fake[16] __attribute__((aligned(16)));
	void *keep = ak_smem_alloc(32);

	(void)keep;
	fake[0] = 0x616b6d55u;
	fake[1] = 1; /* class 32, main arena */
	ak_smem_free(&fake[4]);
}

static void
foreign_large(void)
{
	static uint32_t fake[16] __attribute__((aligned(16)));
	void *keep = ak_smem_alloc(100000);

	(void)keep;
	fake[8] = 0x616b6d55u;
	fake[9] = 0xffu;
	ak_smem_free(&fake[12]);
}

static void
block_freed_as_pack(void)
{
	ak_smem_pack_free(ak_smem_alloc(64));
}

/* A pack: a string inside it freed with ak_smem_free is wiped in place (no header read, no abort),
 * the pack goes whole with ak_smem_pack_free, wiped, and trim returns its slab; a large pack too. */
static void
test_pack(void)
{
	struct ak_smem_stats st0, st;
	unsigned char *pk, *big;
	char *s1, *s2;
	size_t sizes[2] = { 300, 40000 }, k;

	ak_smem_release_all();
	ak_smem_stats(&st0);
	for (k = 0; k < 2; k++) {
		CHECK((pk = ak_smem_pack_alloc(sizes[k])) != NULL);
		CHECK((uintptr_t)pk % 16 == 0);
		for (s1 = (char *)pk; s1 < (char *)pk + sizes[k] && *s1 == 0; s1++)
			;
		CHECK(s1 == (char *)pk + sizes[k]); /* zeroed */
		s1 = (char *)pk + 40;
		s2 = (char *)pk + sizes[k] - 20;
		memcpy(s1, "sk-secret-one", 14);
		memcpy(s2, "second", 7);
		ak_smem_free(s1);
		CHECK(memcmp(s1, "\0\0\0\0\0\0\0\0\0\0\0\0\0", 13) == 0);
		CHECK(strcmp(s2, "second") == 0);
		ak_smem_free(s1); /* an empty string now: nothing to wipe, no harm */
		ak_smem_free(s2);
		CHECK(s2[0] == 0);
		ak_smem_stats(&st);
		CHECK(st.in_use > st0.in_use);
		ak_smem_pack_free(pk);
		ak_smem_pack_free(NULL);
		ak_smem_stats(&st);
		CHECK_EQ(st.in_use, st0.in_use);
	}
	/* beside ordinary blocks: each freed by its own rule */
	CHECK((big = ak_smem_alloc(100)) != NULL);
	CHECK((pk = ak_smem_pack_alloc(100)) != NULL);
	ak_smem_free(big);
	ak_smem_pack_free(pk);
	ak_smem_trim();
	ak_smem_stats(&st);
	CHECK_EQ(st.in_use, st0.in_use);
	CHECK(st.slab_bytes <= st0.slab_bytes + 64 * 1024); /* the pack arena kept nothing */
	expect_abort(block_freed_as_pack);
	ak_smem_release_all();
}

static void
test_bad_free_aborts(void)
{
	expect_abort(foreign_small);
	expect_abort(foreign_large);
	expect_abort(double_free_scratch);
	expect_abort(forged_arena);
	expect_abort(forged_arena_index);
	expect_abort(forged_arena_large);
}

static size_t
page_size(void)
{
	long pg = sysconf(_SC_PAGESIZE);

	return pg > 0 ? (size_t)pg : 4096;
}

/* One block of every size class (1 .. 16368 bytes asked) shares slabs: a few, not one per class. */
static void
test_class_sharing(void)
{
	enum { MAXB = 64 };
	static void *p[MAXB];
	struct ak_smem_stats st;
	size_t total, n, want = 0;
	int i = 0, ok = 1;

	ak_smem_release_all();
	/* The eight smallest classes (16 .. 128 bytes with the header) fit in the first slab together. */
	for (n = 0; n <= 112; n += 16) {
		p[i] = ak_smem_alloc(n);
		if (p[i] == NULL || (uintptr_t)p[i] % 16 != 0)
			ok = 0;
		i++;
	}
	ak_smem_stats(&st);
	CHECK_EQ(st.slabs, 1);
	CHECK(st.slab_bytes < 32 * 1024);
	/* Then every size from 129 to 16384 bytes (header included) in 1.25x steps, one block each. */
	for (total = 160; total <= 16384 && i < MAXB; total += total / 4 > 16 ? (total / 4 + 15) & ~(size_t)15 : 16) {
		p[i] = ak_smem_alloc(total - 16);
		if (p[i] == NULL || (uintptr_t)p[i] % 16 != 0 || !all_zero(p[i], total - 16))
			ok = 0;
		else
			memset(p[i], 0x3c, total - 16);
		want += total;
		i++;
	}
	CHECK(ok);
	ak_smem_stats(&st);
	/* About 70 KiB of blocks in at least 25 classes: slabs 4K + 8K + 16K + 32K + 64K (+ 64K) suffice. */
	CHECK(want > 60 * 1024);
	CHECK(st.slabs <= 6);
	CHECK(st.in_use >= want);
	CHECK(st.slab_bytes <= 188 * 1024);
	while (i-- > 0)
		ak_smem_free(p[i]);
	ak_smem_stats(&st);
	CHECK_EQ(st.in_use, 0);
	ak_smem_release_all();
}

/* Slabs start small and double up to 64 KiB; each is locked page by page, as much as it maps. */
static void
test_slab_growth(void)
{
	enum { MAXB = 400 };
	static void *p[MAXB];
	size_t sizes[8], prev_bytes = 0, prev_slabs = 0, pg = page_size();
	struct ak_smem_stats st;
	int i, k, nblocks, nsizes = 0, ok = 1;

	ak_smem_release_all();
	p[0] = ak_smem_alloc(100);
	CHECK(p[0] != NULL);
	ak_smem_stats(&st);
	CHECK_EQ(st.slabs, 1);
	CHECK(st.slab_bytes >= 1024 && st.slab_bytes <= 16 * 1024);
	/* Locked: whole pages spanning the slab; one slab's worth, not 64 KiB. */
	if (!st.lock_failed)
		CHECK(st.locked_bytes >= st.slab_bytes && st.locked_bytes <= (16 * 1024 > pg ? 16 * 1024 : pg));
	ak_smem_free(p[0]);
	ak_smem_release_all();

	/* 1 KiB blocks until six slabs exist; record each new slab's size. */
	for (i = 0; i < MAXB && nsizes < 6; i++) {
		if ((p[i] = ak_smem_alloc(1000)) == NULL) {
			ok = 0;
			break;
		}
		ak_smem_stats(&st);
		if (st.slabs != prev_slabs) {
			if (st.slabs != prev_slabs + 1)
				ok = 0;
			sizes[nsizes++] = st.slab_bytes - prev_bytes;
			prev_slabs = st.slabs;
			prev_bytes = st.slab_bytes;
		}
	}
	nblocks = i;
	CHECK(ok);
	CHECK_EQ(nsizes, 6);
	CHECK(sizes[0] <= 16 * 1024);
	for (k = 1; k < nsizes; k++) {
		CHECK(sizes[k] >= sizes[k - 1]);
		CHECK(sizes[k] <= 64 * 1024);
	}
	CHECK(sizes[1] > sizes[0]);
	CHECK(sizes[5] > 32 * 1024);
	CHECK_EQ(sizes[5], sizes[4]);
	for (i = 0; i < nblocks; i++)
		ak_smem_free(p[i]);
	ak_smem_stats(&st);
	CHECK_EQ(st.in_use, 0);

	/* A release_all starts small again. */
	ak_smem_release_all();
	p[0] = ak_smem_alloc(16);
	ak_smem_stats(&st);
	CHECK(st.slab_bytes <= 16 * 1024);
	ak_smem_free(p[0]);
	ak_smem_release_all();
}

/* A freed block is wiped at once, comes back first for its class (zeroed), and never to another class. */
static void
test_free_list_reuse(void)
{
	struct ak_smem_stats st0, st;
	unsigned char *a, *b, *c, *d;

	ak_smem_release_all();
	a = ak_smem_alloc(100);   /* 116 bytes with the header: class 128 */
	b = ak_smem_alloc(100);
	CHECK(a != NULL && b != NULL && a != b);
	memset(a, 0xa5, 100);
	memset(b, 0x5a, 100);
	ak_smem_stats(&st0);
	ak_smem_free(a);
	/* The block stays mapped in its slab: its data must already be zero (white-box look at freed memory). */
	CHECK(all_zero(a, 112));
	ak_smem_stats(&st);
	CHECK_EQ(st.in_use, st0.in_use - 128);
	/* Another class does not take it. */
	c = ak_smem_alloc(200);
	CHECK(c != NULL && c != a);
	/* The same class does, even for a different size, and hands it out zeroed. */
	d = ak_smem_alloc(110);
	CHECK(d == a);
	CHECK(all_zero(d, 110));
	/* Neighbours are untouched. */
	CHECK(b[0] == 0x5a && b[99] == 0x5a);
	ak_smem_stats(&st);
	CHECK_EQ(st.slabs, st0.slabs);
	ak_smem_free(b);
	ak_smem_free(c);
	ak_smem_free(d);
	ak_smem_stats(&st);
	CHECK_EQ(st.in_use, 0);
	ak_smem_release_all();
}

/* The oldest slab's free block of a class is reused first, wherever the most recent free was; with none of
 * the class free, the oldest slab's larger free block is split. Spread over many slabs, so the lookup
 * structures (not a scan) must find them. */
static void
test_oldest_first(void)
{
	enum { N = 1500, NZ = 40000 };
	static unsigned char *p[N];
	static void *z[NZ];
	unsigned char *q, *r, *big_old, *big_new;
	struct ak_smem_stats st;
	int i, nz, ok = 1;

	ak_smem_release_all();
	/* 1 KiB blocks (class 1024): ~1.5 MiB, two dozen slabs. */
	for (i = 0; i < N; i++)
		if ((p[i] = ak_smem_alloc(1000)) == NULL)
			ok = 0;
	CHECK(ok);
	ak_smem_stats(&st);
	CHECK(st.slabs >= 20);
	/* Free a new block, then an old one, then a middle one: the old one comes back first, then the
	 * middle one, then the newest. */
	ak_smem_free(p[N - 1]);
	ak_smem_free(p[3]);
	ak_smem_free(p[N / 2]);
	q = ak_smem_alloc(1000);
	CHECK(q == p[3]);
	p[3] = q;
	q = ak_smem_alloc(1008);
	CHECK(q == p[N / 2]);
	p[N / 2] = q;
	q = ak_smem_alloc(990);
	CHECK(q == p[N - 1]);
	p[N - 1] = q;
	for (i = 0; i < N; i++)
		ak_smem_free(p[i]);
	ak_smem_stats(&st);
	CHECK_EQ(st.in_use, 0);
	ak_smem_trim();
	ak_smem_stats(&st);
	CHECK(st.slabs <= 1);
	ak_smem_release_all();

	/* Splitting: one 1 KiB block at the start of the first slab, 16-byte blocks (which fill every slab
	 * exactly, so no slab tail is left over) over eight slabs, another 1 KiB block, more 16-byte blocks.
	 * Free the new 1 KiB block, then the old one; two class-512 requests split the old one in two. */
	big_old = ak_smem_alloc(1000);
	for (nz = 0; nz < NZ; nz++) {
		if ((z[nz] = ak_smem_alloc(0)) == NULL)
			ok = 0;
		ak_smem_stats(&st);
		if (st.slabs >= 8)
			break;
	}
	big_new = ak_smem_alloc(1000);
	for (i = 0; i < 100 && nz + 1 < NZ; i++)
		z[++nz] = ak_smem_alloc(0);
	CHECK(ok);
	CHECK(big_old != NULL && big_new != NULL);
	ak_smem_free(big_new);
	ak_smem_free(big_old);
	q = ak_smem_alloc(490);
	r = ak_smem_alloc(490);
	CHECK(q == big_old);
	CHECK(r == big_old + 512);
	CHECK(q != NULL && r != NULL && all_zero(q, 490) && all_zero(r, 490));
	/* The 1 KiB class still finds the newer block whole. */
	p[0] = ak_smem_alloc(1000);
	CHECK(p[0] == big_new);
	ak_smem_free(q);
	ak_smem_free(r);
	ak_smem_free(p[0]);
	for (i = 0; i <= nz && i < NZ; i++)
		ak_smem_free(z[i]);
	ak_smem_stats(&st);
	CHECK_EQ(st.in_use, 0);
	ak_smem_release_all();
}

/* Many slabs, freed in a scrambled order and trimmed part way: every block is still found in its slab
 * (no abort), in_use stays exact, and trim returns exactly the emptied slabs. */
static void
test_many_slabs(void)
{
	enum { N = 20000 };
	static void *p[N];
	static uint16_t sz[N];
	struct ak_smem_stats st, st1;
	uint32_t seed = 99;
	size_t want = 0;
	int i, k, ok = 1;

	ak_smem_release_all();
	ak_smem_hook_cjson();
	for (i = 0; i < N; i++) {
		seed = seed * 1103515245u + 12345u;
		sz[i] = (uint16_t)(16 + (seed >> 8) % 185);
		if ((p[i] = ak_smem_alloc(sz[i])) == NULL) {
			ok = 0;
			continue;
		}
		memset(p[i], 0x5c, sz[i]);
		/* Scratch blocks interleaved, as a parse does. */
		cJSON_free(cJSON_malloc(80));
	}
	CHECK(ok);
	ak_smem_stats(&st);
	CHECK(st.slabs - st.scratch_slabs >= 40);
	/* Free the second half in a scrambled order (a stride coprime with the count). */
	for (k = 0, i = 0; k < N / 2; k++, i = (i + 7919) % (N / 2)) {
		ak_smem_free(p[N / 2 + i]);
		p[N / 2 + i] = NULL;
	}
	for (i = 0; i < N / 2; i++)
		want += (sz[i] + 16 + 15) & ~(size_t)15;
	ak_smem_trim();
	ak_smem_stats(&st1);
	CHECK(st1.slabs < st.slabs);
	CHECK_EQ(st1.scratch_slabs, 0);
	CHECK(st1.in_use >= want && st1.in_use <= want + (size_t)N / 2 * 48);
	/* The survivors kept their bytes; reallocating fills old slabs before any new one is mapped. */
	for (i = 0; i < N / 2; i++) {
		const unsigned char *c = p[i];

		if (c[0] != 0x5c || c[sz[i] - 1] != 0x5c)
			ok = 0;
	}
	CHECK(ok);
	for (i = N / 2; i < N / 2 + 200; i++)
		p[i] = ak_smem_alloc(sz[i]);
	ak_smem_stats(&st);
	CHECK_EQ(st.slabs, st1.slabs);
	for (i = 0; i < N; i++)
		ak_smem_free(p[i]);
	ak_smem_stats(&st);
	CHECK_EQ(st.in_use, 0);
	ak_smem_trim();
	ak_smem_stats(&st);
	CHECK(st.slabs <= 1);
	cJSON_InitHooks(NULL);
	ak_smem_release_all();
}

/* At exit akctl wipes every slab and large region and leaves the mappings to the kernel: the bytes are
 * gone (the pages stay mapped, so they can still be read here), the arena forgets them, and a later
 * allocation starts afresh in a new slab. */
static void
test_wipe_all(void)
{
	struct ak_smem_stats st;
	unsigned char *small, *large, *json, *again;
	cJSON *n;

	ak_smem_release_all();
	ak_smem_hook_cjson();
	small = ak_smem_alloc(100);
	large = ak_smem_alloc(100000);
	n = cJSON_CreateString("sk-scratch-secret");
	CHECK(small != NULL && large != NULL && n != NULL);
	if (small == NULL || large == NULL || n == NULL)
		return;
	json = (unsigned char *)n->valuestring;
	memset(small, 0xa5, 100);
	memset(large, 0x5a, 100000);
	ak_smem_wipe_all();
	/* White-box look at memory the arena no longer owns (still mapped, by design). */
	CHECK(all_zero(small - 16, 116));
	CHECK(all_zero(large - 16, 100016));
	CHECK(all_zero(json, strlen("sk-scratch-secret")));
	ak_smem_stats(&st);
	CHECK_EQ(st.slabs, 0);
	CHECK_EQ(st.in_use, 0);
	CHECK_EQ(st.locked_bytes, 0);
	again = ak_smem_alloc(100);
	CHECK(again != NULL && again != small);
	ak_smem_free(again);
	cJSON_InitHooks(NULL);
	ak_smem_release_all();
}

/* In a child: a 64 KiB memlock limit, then 1 MiB in the arena. The warning fires once; nothing crashes. */
static void
test_memlock_limit(void)
{
	pid_t pid;
	int status = -1;

	fflush(NULL);
	if ((pid = fork()) == 0) {
		struct rlimit rl = { 64 * 1024, 64 * 1024 };
		struct ak_smem_stats st;
		void *p[64];
		int i, bad = 0;

		if (setrlimit(RLIMIT_MEMLOCK, &rl) != 0)
			_exit(10);
		/* root (CAP_IPC_LOCK) ignores the limit: drop to nobody first. */
		if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
			_exit(11);
		ak_smem_release_all();
		ak_smem_set_warn(count_warn);
		for (i = 0; i < 64; i++) {
			if ((p[i] = ak_smem_alloc(16 * 1024 - 16)) == NULL)
				bad = 1;
			else
				memset(p[i], 0x5a, 16 * 1024 - 16);
		}
		/* A few large blocks too. */
		for (i = 0; i < 4; i++) {
			void *q = ak_smem_alloc(100000);

			if (q == NULL)
				bad = 1;
			ak_smem_free(q);
		}
		ak_smem_stats(&st);
		if (!st.lock_failed || st.locked_bytes > 64 * 1024)
			bad = 1;
		for (i = 0; i < 64; i++)
			ak_smem_free(p[i]);
		ak_smem_release_all();
		if (warn_calls != 1)
			_exit(12);
		if (!warn_text_ok)
			_exit(14);
		_exit(bad ? 13 : 0);
	}
	CHECK(pid > 0);
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status));
	CHECK_EQ(WEXITSTATUS(status), 0);
}

int
main(void)
{
	struct ak_smem_stats st;

	test_basic();
	test_class_sharing();
	test_slab_growth();
	test_free_list_reuse();
	test_oldest_first();
	test_many_slabs();
	test_cjson_scratch();
	test_scratch_unfreed();
	test_scratch_rewind();
	test_cjson_interleaved();
	test_bad_free_aborts();
	test_pack();
	test_mixed();
	test_boundaries();
	test_large_reuse_zeroed();
	test_cjson();
	test_memlock_limit();
	ak_smem_stats(&st);
	/* Either the slabs got locked, or the limit was hit and reported. */
	CHECK(st.locked_bytes > 0 || st.lock_failed);
	ak_smem_release_all();
	ak_smem_stats(&st);
	CHECK_EQ(st.slabs, 0);
	CHECK_EQ(st.in_use, 0);
	test_wipe_all();
	T_DONE();
}
