/* t_list.h - LIST entries compared field by field, for the tests of the LIST codecs (the plain rows
 * and the packed ones must decode to the same entries). */
#ifndef T_LIST_H
#define T_LIST_H

#include <stdint.h>
#include <string.h>

#include "ak_proto.h"

static inline int
t_list_entries_equal(const struct ak_list_entry *a, const struct ak_list_entry *b)
{
	uint32_t i;

	if (strcmp(a->name, b->name) || strcmp(a->provider, b->provider) ||
	    strcmp(a->secret_var, b->secret_var) || strcmp(a->redacted, b->redacted) ||
	    strcmp(a->description, b->description) || strcmp(a->deact_hint, b->deact_hint) ||
	    a->created != b->created || a->rotated != b->rotated || a->nvars != b->nvars ||
	    a->rotate_every != b->rotate_every || a->prev_until != b->prev_until ||
	    a->confirm != b->confirm || a->expired != b->expired || a->lifetime != b->lifetime ||
	    a->wipe_at != b->wipe_at || a->deact_pending != b->deact_pending)
		return 0;
	for (i = 0; i < a->nvars; i++)
		if (strcmp(a->vars[i], b->vars[i]) || a->var_secret[i] != b->var_secret[i])
			return 0;
	return 1;
}

#endif
