/* provider.c - stub until the providers work lands. */
#include <string.h>

#include "ak_provider.h"

const struct ak_provider *
ak_provider_find(const char *name)
{
	(void)name;
	return NULL;
}
