/* ak_dotenv.h - a .env parser that reads files the way python-dotenv does (interpolate=False). */
#ifndef AK_DOTENV_H
#define AK_DOTENV_H

#include <stddef.h>

#include "ak_err.h"

struct ak_dotenv_entry {
	char *name;   /* secure (ak_smem) */
	char *value;  /* secure; NULL for a bare "KEY" line without '=' (python-dotenv: None) */
	size_t line;  /* 1-based line of the entry */
};

struct ak_dotenv {
	size_t n;
	struct ak_dotenv_entry *e; /* in file order; a repeated name keeps the last value, like python-dotenv */
};

/* Parse buf (len bytes, need not be NUL-terminated). Lines python-dotenv cannot parse are skipped and
 * reported: *bad_line is the first such line (0 if none). AK_ERR_TOO_LARGE past limits. */
enum ak_err ak_dotenv_parse(const char *buf, size_t len, struct ak_dotenv **out, size_t *bad_line);
void ak_dotenv_free(struct ak_dotenv *d); /* wipes; NULL ok */

#endif
