/* smem_str.c - what the secure arena offers on top of its allocator: string copies and the cJSON hook.
 *
 * Built from ak_smem_alloc, ak_smem_free and ak_smem_cjson_alloc alone, so the real arena (smem.c) and
 * the fuzz build's malloc-backed stand-in (tests/fuzz/smem_shim.c) share this one copy.
 */
#include <stdint.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ak_smem.h"

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

void
ak_smem_hook_cjson(void)
{
	cJSON_Hooks hooks = { .malloc_fn = ak_smem_cjson_alloc, .free_fn = ak_smem_free };

	(void)ak_smem_init();
	cJSON_InitHooks(&hooks);
}
