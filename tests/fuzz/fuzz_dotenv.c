/* fuzz_dotenv.c - the .env parser (ak_dotenv_parse), which reads files akctl import is pointed at.
 *
 * Input: the file's bytes. Properties:
 *  - AK_OK, or BAD_FORMAT / TOO_LARGE with nothing allocated (*out NULL; the arena back to its level);
 *  - entries have unique non-empty names, lines within the file, and each is the value of the last
 *    binding of its name (a Python dict); bindings point inside the input, in line order;
 *  - *bad_line is set exactly when statements were skipped;
 *  - our own writer and reader agree: every parsed (name, value) that `akctl env --shell dotenv` can
 *    carry, written by ak_shell_export and parsed again, comes back as exactly one identical entry.
 * python-dotenv itself is the reference in tests/unit/test_dotenv.c; this covers the byte space.
 */
#include <string.h>

#include "ak_buf.h"
#include "ak_dotenv.h"
#include "ak_shell.h"
#include "ak_smem.h"
#include "ak_util.h"
#include "fuzz.h"

static size_t
in_use(void)
{
	struct ak_smem_stats s;

	ak_smem_stats(&s);
	return s.in_use;
}

static void
roundtrip(const char *name, const char *value)
{
	struct ak_buf *b = ak_buf_new_secure(1u << 22);
	struct ak_dotenv *d = NULL;
	size_t bad = 0;
	enum ak_err r;

	FUZZ_CHECK(b != NULL, "alloc");
	r = ak_shell_export(b, AK_SHELL_DOTENV, name, value);
	if (r == AK_OK) {
		FUZZ_CHECK(ak_dotenv_parse((const char *)ak_buf_ptr(b), ak_buf_len(b), &d, &bad) == AK_OK,
		    "our dotenv line parses");
		FUZZ_CHECK(bad == 0 && d->n == 1, "our dotenv line is one clean entry");
		FUZZ_CHECK(strcmp(d->e[0].name, name) == 0, "name round-trips");
		FUZZ_CHECK(d->e[0].value != NULL && strcmp(d->e[0].value, value) == 0,
		    "ak_shell_export(dotenv) -> ak_dotenv_parse gives the value back");
		ak_dotenv_free(d);
	} else
		FUZZ_CHECK(r == AK_ERR_UNSUPPORTED || r == AK_ERR_BAD_VARNAME, "export refusal");
	ak_buf_free(b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ak_dotenv *d = (struct ak_dotenv *)1;
	size_t bad = 99, base = in_use(), lines = 1, i, j;
	enum ak_err r;

	if (ak_smem_init() != 0)
		abort();
	for (i = 0; i < size; i++)
		if (data[i] == '\n' || (data[i] == '\r' && (i + 1 == size || data[i + 1] != '\n')))
			lines++;
	r = ak_dotenv_parse((const char *)data, size, &d, &bad);
	if (r != AK_OK) {
		FUZZ_CHECK(d == NULL, "failed parse leaves *out NULL");
		FUZZ_CHECK(r == AK_ERR_BAD_FORMAT || r == AK_ERR_TOO_LARGE, "parse error code");
		FUZZ_CHECK(in_use() == base, "failed parse freed everything");
		return 0;
	}
	FUZZ_CHECK(d != NULL, "parsed");
	FUZZ_CHECK((bad != 0) == (d->nbad != 0), "bad_line set exactly when statements were skipped");
	FUZZ_CHECK(bad <= lines, "bad_line inside the file");
	FUZZ_CHECK(d->n <= AK_DOTENV_ENTRIES_MAX && d->n <= d->nb, "entry counts");
	for (i = 0; i < d->n; i++) {
		FUZZ_CHECK(d->e[i].name != NULL && d->e[i].name[0] != '\0', "entry name");
		FUZZ_CHECK(d->e[i].line >= 1 && d->e[i].line <= lines, "entry line inside the file");
		for (j = 0; j < i; j++)
			FUZZ_CHECK(strcmp(d->e[i].name, d->e[j].name) != 0, "entry names unique");
		FUZZ_CHECK(ak_dotenv_get(d, d->e[i].name) == &d->e[i], "ak_dotenv_get finds it");
	}
	for (i = 0; i < d->nb; i++) {
		const struct ak_dotenv_binding *b = &d->b[i];
		size_t k;
		int last = 1;

		FUZZ_CHECK(b->entry < d->n, "binding entry index");
		FUZZ_CHECK(b->val_off <= size && b->val_len <= size - b->val_off, "binding inside input");
		FUZZ_CHECK(b->line >= 1 && b->line <= lines, "binding line");
		if (i > 0)
			FUZZ_CHECK(d->b[i - 1].line <= b->line, "bindings in file order");
		for (k = i + 1; k < d->nb; k++)
			if (d->b[k].entry == b->entry)
				last = 0;
		if (last) {
			FUZZ_CHECK(d->e[b->entry].line == b->line, "entry keeps its last binding's line");
			FUZZ_CHECK((d->e[b->entry].value != NULL) == (b->has_value != 0),
			    "bare KEY has a NULL value");
		}
	}
	for (i = 0; i < d->n && i < 8; i++)
		if (d->e[i].value != NULL && ak_varname_check(d->e[i].name) == AK_OK)
			roundtrip(d->e[i].name, d->e[i].value);
	ak_dotenv_free(d);
	FUZZ_CHECK(in_use() == base, "secure arena back to where it was (something leaked)");
	return 0;
}
