/* ak_dotenv.h - a .env parser that reads files the way python-dotenv 0.21 does (interpolate=False).
 *
 * The grammar mirrors python-dotenv's parser.py regex by regex, on the raw bytes: "\r\n" and a lone "\r"
 * count as one newline and become "\n" inside values (Python reads the file with universal newlines);
 * "whitespace" is Python's str.isspace() set, Unicode spaces included. Differences, on purpose:
 *  - invalid UTF-8 (Python raises) and NUL bytes (a C string cannot hold them) reject the whole input
 *    with AK_ERR_BAD_FORMAT, *bad_line naming the line;
 *  - *bad_line is the line where the unparsable statement starts (python-dotenv's warning names the
 *    line where the blank run before it starts).
 * Everything parsed (names and values) lives in the secure arena and is wiped by ak_dotenv_free().
 */
#ifndef AK_DOTENV_H
#define AK_DOTENV_H

#include <stddef.h>

#include "ak_err.h"

#define AK_DOTENV_FILE_MAX (1u << 20)   /* input bytes */
#define AK_DOTENV_ENTRIES_MAX 10000     /* statements with a key */

struct ak_dotenv_entry {
	char *name;   /* secure (ak_smem) */
	char *value;  /* secure; NULL for a bare "KEY" line without '=' (python-dotenv: None) */
	size_t line;  /* 1-based line of the statement that set it last */
};

/* Every statement with a key, repeats included, in file order: where its value sits in the input,
 * for rewriting the file (akctl import --replace). */
struct ak_dotenv_binding {
	size_t entry;    /* index into e[] */
	size_t line;     /* 1-based line of the statement */
	int has_value;   /* 0 for a bare "KEY" */
	size_t val_off;  /* the value's bytes in the input, quotes included; val_len 0 for KEY= */
	size_t val_len;
};

struct ak_dotenv {
	size_t n;
	struct ak_dotenv_entry *e; /* order of first appearance; a repeated name keeps the last value
	                            * (a Python dict built from the bindings) */
	size_t nb;
	struct ak_dotenv_binding *b;
	size_t nbad;               /* statements skipped as unparsable */
};

/* Parse buf (len bytes, need not be NUL-terminated). Statements python-dotenv cannot parse are skipped,
 * as it does: *bad_line is the first such line (0 if none; bad_line may be NULL). AK_ERR_TOO_LARGE past
 * the limits, AK_ERR_BAD_FORMAT for invalid UTF-8 or a NUL byte. *out: ak_dotenv_free(). */
enum ak_err ak_dotenv_parse(const char *buf, size_t len, struct ak_dotenv **out, size_t *bad_line);
void ak_dotenv_free(struct ak_dotenv *d); /* wipes; NULL ok */
/* The entry for name, or NULL. */
const struct ak_dotenv_entry *ak_dotenv_get(const struct ak_dotenv *d, const char *name);

/* Files are read with ak_file_load(path, AK_DOTENV_FILE_MAX, AK_FILE_SECURE, ...) (ak_file.h). */

#endif
