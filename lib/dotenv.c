/* dotenv.c - .env files, read the way python-dotenv 0.21 reads them (interpolate=False).
 *
 * Mirrors dotenv/parser.py one regex at a time, on raw bytes, so a file means here exactly what it means
 * to the Python tools people already use; tests/unit/test_dotenv.c compares both on a table of cases and
 * on random inputs. Notes on the mirror:
 *  - Python opens the file with universal newlines: "\r\n" and a lone "\r" are one "\n". We keep the raw
 *    bytes (so --replace can rewrite a file byte for byte) and translate only what we copy out.
 *  - Python's \s and str.rstrip() use str.isspace(), which includes \v \f \x1c-\x1f and Unicode spaces
 *    (U+0085, U+00A0, U+2000..., U+3000): ws_len() knows them as UTF-8 sequences.
 *  - Each regex is applied on its own (no backtracking across them), and a quoted value follows the
 *    regex engine's backtracking: see match_quoted().
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "ak_dotenv.h"
#include "ak_smem.h"
#include "ak_util.h"

struct parser {
	const unsigned char *s;
	size_t n;
	size_t p;     /* current position */
	size_t line;  /* 1-based line at p */
};

/* Length of the whitespace character at i that is not a newline ([^\S\r\n]), or 0. The input is valid
 * UTF-8 (checked first), and these sequences start with ASCII or a lead byte, so scanning byte by byte
 * never matches inside another character. */
static size_t
ws_len(const unsigned char *s, size_t i, size_t n)
{
	unsigned char c = s[i];

	if (c == ' ' || c == '\t' || c == '\v' || c == '\f' || (c >= 0x1c && c <= 0x1f))
		return 1;
	if (c == 0xc2 && i + 1 < n && (s[i + 1] == 0x85 || s[i + 1] == 0xa0))
		return 2;
	if (i + 2 >= n)
		return 0;
	if (c == 0xe1 && s[i + 1] == 0x9a && s[i + 2] == 0x80)
		return 3; /* U+1680 */
	if (c == 0xe2 && s[i + 1] == 0x80 && ((s[i + 2] >= 0x80 && s[i + 2] <= 0x8a) ||
	    s[i + 2] == 0xa8 || s[i + 2] == 0xa9 || s[i + 2] == 0xaf))
		return 3; /* U+2000..U+200A, U+2028, U+2029, U+202F */
	if (c == 0xe2 && s[i + 1] == 0x81 && s[i + 2] == 0x9f)
		return 3; /* U+205F */
	if (c == 0xe3 && s[i + 1] == 0x80 && s[i + 2] == 0x80)
		return 3; /* U+3000 */
	return 0;
}

/* Length of the newline at i ("\r\n" counts as one, as universal newlines make it), or 0. */
static size_t
nl_len(const unsigned char *s, size_t i, size_t n)
{
	if (s[i] == '\n')
		return 1;
	if (s[i] == '\r')
		return (i + 1 < n && s[i + 1] == '\n') ? 2 : 1;
	return 0;
}

/* Move to position to, counting lines. */
static void
advance(struct parser *ps, size_t to)
{
	size_t k;

	for (k = ps->p; k < to; k++)
		if (ps->s[k] == '\n' || (ps->s[k] == '\r' && !(k + 1 < ps->n && ps->s[k + 1] == '\n')))
			ps->line++;
	ps->p = to;
}

/* [^\S\r\n]* from i: the end of the run. */
static size_t
skip_ws(const struct parser *ps, size_t i)
{
	size_t l;

	while (i < ps->n && (l = ws_len(ps->s, i, ps->n)) > 0)
		i += l;
	return i;
}

/* Strict UTF-8 as Python's codec checks it (no overlongs, surrogates or > U+10FFFF), and no NUL.
 * Returns 0, or -1 with *bad_line set. */
static int
check_utf8(const unsigned char *s, size_t n, size_t *bad_line)
{
	size_t i = 0, line = 1, len;
	uint32_t cp;

	while (i < n) {
		unsigned char c = s[i];

		if (c == '\n' || (c == '\r' && !(i + 1 < n && s[i + 1] == '\n')))
			line++;
		if (c == 0)
			goto bad;
		if (c < 0x80) {
			i++;
			continue;
		}
		if ((len = ak_utf8_next(s + i, n - i, &cp)) == 0)
			goto bad;
		i += len;
	}
	return 0;
bad:
	if (bad_line != NULL)
		*bad_line = line;
	return -1;
}

enum esc { ESC_NONE, ESC_SINGLE, ESC_DOUBLE };

/* Copy s[a, e) into the arena, translating newlines to "\n" and decoding escapes the way
 * decode_escapes() does: single quotes \\ \' ; double quotes \\ \' \" \a \b \f \n \r \t \v (other
 * backslashes stay). NULL on allocation failure. */
static char *
copy_text(const unsigned char *s, size_t a, size_t e, enum esc esc)
{
	char *out, *o;
	size_t i;
	unsigned char c;

	if ((out = ak_smem_alloc(e - a + 1)) == NULL)
		return NULL;
	o = out;
	for (i = a; i < e; i++) {
		c = s[i];
		if (c == '\\' && esc != ESC_NONE && i + 1 < e) {
			unsigned char d = s[i + 1], v = 0;

			if (d == '\\' || d == '\'')
				v = d;
			else if (esc == ESC_DOUBLE) {
				switch (d) {
				case '"': v = '"'; break;
				case 'a': v = '\a'; break;
				case 'b': v = '\b'; break;
				case 'f': v = '\f'; break;
				case 'n': v = '\n'; break;
				case 'r': v = '\r'; break;
				case 't': v = '\t'; break;
				case 'v': v = '\v'; break;
				default: break;
				}
			}
			if (v != 0) {
				*o++ = (char)v;
				i++;
				continue;
			}
		}
		if (c == '\r') {
			*o++ = '\n';
			if (i + 1 < e && s[i + 1] == '\n')
				i++;
			continue;
		}
		*o++ = (char)c;
	}
	*o = '\0';
	return out;
}

/* '((?:\\'|[^'])*)' (or with "), at the quote at ps->p. The regex engine runs the loop greedily, taking
 * a backslash-quote pair whenever it can, and stops at the first quote not in a pair. If it runs off the
 * end instead, it backtracks to the last pair and reads its backslash as content and its quote as the
 * closing one ("'abc\'" is "abc\"). Returns 0 with the content [*a, *e) and *end after the closing
 * quote, or -1 (no match). */
static int
match_quoted(const struct parser *ps, size_t *a, size_t *e, size_t *end)
{
	const unsigned char *s = ps->s;
	unsigned char q = s[ps->p];
	size_t i = ps->p + 1, lastpair = SIZE_MAX;

	while (i < ps->n) {
		if (s[i] == '\\' && i + 1 < ps->n && s[i + 1] == q) {
			lastpair = i;
			i += 2;
			continue;
		}
		if (s[i] == q)
			break;
		i++;
	}
	*a = ps->p + 1;
	if (i < ps->n) {
		*e = i;
		*end = i + 1;
		return 0;
	}
	if (lastpair == SIZE_MAX)
		return -1;
	*e = lastpair + 1;
	*end = lastpair + 2;
	return 0;
}

/* parse_unquoted_value(): [^\r\n]* then re.sub(r"\s+#.*", "", part).rstrip(). The first whitespace run
 * followed by '#' starts the comment; then trailing whitespace goes. Returns the end of the value. */
static size_t
unquoted_end(const struct parser *ps, size_t a, size_t *line_end)
{
	const unsigned char *s = ps->s;
	size_t i = a, e, j, l, last = a;

	while (i < ps->n && s[i] != '\n' && s[i] != '\r')
		i++;
	e = *line_end = i;
	for (i = a; i < e;) {
		if ((l = ws_len(s, i, ps->n)) > 0) {
			j = i;
			while (j < e && (l = ws_len(s, j, ps->n)) > 0)
				j += l;
			if (j < e && s[j] == '#') {
				e = i;
				break;
			}
			i = j;
		} else {
			i++;
		}
	}
	/* rstrip(): after the last byte that is not part of a whitespace character. */
	for (i = a; i < e;) {
		if ((l = ws_len(s, i, ps->n)) > 0) {
			i += l;
		} else {
			i++;
			last = i;
		}
	}
	return last;
}

/* Index of name in d via the hash table, or SIZE_MAX. */
struct table {
	size_t *slot; /* entry index + 1; 0 = empty */
	size_t cap;   /* power of two */
};

static size_t
name_hash(const char *s)
{
	size_t h = 1469598103934665603ull & SIZE_MAX;

	while (*s)
		h = (h ^ (unsigned char)*s++) * (size_t)1099511628211ull;
	return h;
}

static size_t
table_find(const struct table *t, const struct ak_dotenv *d, const char *name, size_t *where)
{
	size_t i;

	for (i = name_hash(name) & (t->cap - 1); t->slot[i] != 0; i = (i + 1) & (t->cap - 1)) {
		if (strcmp(d->e[t->slot[i] - 1].name, name) == 0) {
			*where = i;
			return t->slot[i] - 1;
		}
	}
	*where = i;
	return SIZE_MAX;
}

static int
table_grow(struct table *t, const struct ak_dotenv *d)
{
	size_t *ns, ncap = t->cap ? t->cap * 2 : 64, i, k;

	if ((ns = calloc(ncap, sizeof(*ns))) == NULL)
		return -1;
	for (k = 0; k < d->n; k++) {
		for (i = name_hash(d->e[k].name) & (ncap - 1); ns[i] != 0; i = (i + 1) & (ncap - 1))
			;
		ns[i] = k + 1;
	}
	free(t->slot);
	t->slot = ns;
	t->cap = ncap;
	return 0;
}

/* Record a binding; takes ownership of name and value (wiped here on failure). */
static enum ak_err
add_binding(struct ak_dotenv *d, struct table *t, char *name, char *value, size_t line, int has_value,
    size_t voff, size_t vlen)
{
	struct ak_dotenv_binding *nb;
	struct ak_dotenv_entry *ne;
	size_t idx, where;
	enum ak_err r = AK_ERR_NOMEM;

	if (d->nb >= AK_DOTENV_ENTRIES_MAX) {
		r = AK_ERR_TOO_LARGE;
		goto fail;
	}
	if ((d->n + 1) * 2 > t->cap && table_grow(t, d) != 0)
		goto fail;
	if ((nb = realloc(d->b, (d->nb + 1) * sizeof(*nb))) == NULL)
		goto fail;
	d->b = nb;
	idx = table_find(t, d, name, &where);
	if (idx != SIZE_MAX) {
		/* A Python dict: the key keeps its place, the value is the last one. */
		ak_smem_free(d->e[idx].value);
		ak_smem_free(name);
		d->e[idx].value = value;
		d->e[idx].line = line;
	} else {
		if ((ne = realloc(d->e, (d->n + 1) * sizeof(*ne))) == NULL)
			goto fail;
		d->e = ne;
		idx = d->n++;
		d->e[idx].name = name;
		d->e[idx].value = value;
		d->e[idx].line = line;
		t->slot[where] = idx + 1;
	}
	d->b[d->nb].entry = idx;
	d->b[d->nb].line = line;
	d->b[d->nb].has_value = has_value;
	d->b[d->nb].val_off = voff;
	d->b[d->nb].val_len = vlen;
	d->nb++;
	return AK_OK;
fail:
	ak_smem_free(name);
	ak_smem_free(value);
	return r;
}

/* parse_binding(): one statement from ps->p. *syntax = 1 when python-dotenv would report an error (the
 * rest of the line is then skipped). Returns AK_OK or an allocation/limit error. */
static enum ak_err
parse_binding(struct parser *ps, struct ak_dotenv *d, struct table *t, int *syntax, size_t *stmt_line)
{
	const unsigned char *s = ps->s;
	size_t i, ka = 0, ke = 0, va = 0, ve = 0, vend = 0, voff = 0, vlen = 0, l, line;
	enum esc esc = ESC_NONE;
	int has_key, has_value = 0, quoted_key = 0;
	char *name = NULL, *value = NULL;

	*syntax = 0;
	/* _multiline_whitespace */
	for (i = ps->p; i < ps->n;) {
		if ((l = ws_len(s, i, ps->n)) == 0 && (l = nl_len(s, i, ps->n)) == 0)
			break;
		i += l;
	}
	advance(ps, i);
	if (ps->p >= ps->n)
		return AK_OK;
	line = *stmt_line = ps->line;
	/* _export: "export" and at least one blank */
	if (ps->n - ps->p > 6 && memcmp(s + ps->p, "export", 6) == 0 && ws_len(s, ps->p + 6, ps->n) > 0)
		advance(ps, skip_ws(ps, ps->p + 6));
	/* parse_key */
	if (ps->p < ps->n && s[ps->p] == '#') {
		has_key = 0;
	} else if (ps->p < ps->n && s[ps->p] == '\'') {
		for (i = ps->p + 1; i < ps->n && s[i] != '\''; i++)
			;
		if (i >= ps->n || i == ps->p + 1)
			goto syntax;
		ka = ps->p + 1;
		ke = i;
		has_key = quoted_key = 1;
		advance(ps, i + 1);
	} else {
		for (i = ps->p; i < ps->n && s[i] != '=' && s[i] != '#' && ws_len(s, i, ps->n) == 0 &&
		    nl_len(s, i, ps->n) == 0; i++)
			;
		if (i == ps->p)
			goto syntax;
		ka = ps->p;
		ke = i;
		has_key = 1;
		advance(ps, i);
	}
	(void)quoted_key;
	/* _whitespace, then "=" and the value */
	advance(ps, skip_ws(ps, ps->p));
	if (ps->p < ps->n && s[ps->p] == '=') {
		advance(ps, skip_ws(ps, ps->p + 1));
		has_value = 1;
		voff = ps->p;
		if (ps->p < ps->n && (s[ps->p] == '\'' || s[ps->p] == '"')) {
			esc = s[ps->p] == '\'' ? ESC_SINGLE : ESC_DOUBLE;
			if (match_quoted(ps, &va, &ve, &vend) != 0)
				goto syntax;
			vlen = vend - voff;
			advance(ps, vend);
		} else if (ps->p >= ps->n || s[ps->p] == '\n' || s[ps->p] == '\r') {
			va = ve = ps->p;
		} else {
			va = ps->p;
			ve = unquoted_end(ps, va, &vend);
			vlen = ve - va;
			advance(ps, vend);
		}
	}
	/* _comment: optional blanks + '#' + rest of line; nothing consumed when there is no '#' */
	i = skip_ws(ps, ps->p);
	if (i < ps->n && s[i] == '#') {
		while (i < ps->n && s[i] != '\n' && s[i] != '\r')
			i++;
		advance(ps, i);
	}
	/* _end_of_line */
	i = skip_ws(ps, ps->p);
	if (i < ps->n) {
		if ((l = nl_len(s, i, ps->n)) == 0) {
			advance(ps, i);
			goto syntax;
		}
		i += l;
	}
	advance(ps, i);
	if (!has_key)
		return AK_OK;
	if ((name = copy_text(s, ka, ke, ESC_NONE)) == NULL)
		return AK_ERR_NOMEM;
	if (has_value && (value = copy_text(s, va, ve, esc)) == NULL) {
		ak_smem_free(name);
		return AK_ERR_NOMEM;
	}
	return add_binding(d, t, name, value, line, has_value, voff, vlen);
syntax:
	/* _rest_of_line from where the failing regex was tried */
	*syntax = 1;
	for (i = ps->p; i < ps->n && s[i] != '\n' && s[i] != '\r'; i++)
		;
	if (i < ps->n)
		i += nl_len(s, i, ps->n);
	advance(ps, i);
	return AK_OK;
}

enum ak_err
ak_dotenv_parse(const char *buf, size_t len, struct ak_dotenv **out, size_t *bad_line)
{
	struct parser ps;
	struct ak_dotenv *d = NULL;
	struct table t = { NULL, 0 };
	size_t stmt_line = 0;
	int syntax;
	enum ak_err r;

	if (out == NULL || (buf == NULL && len != 0))
		return AK_ERR_INVALID;
	*out = NULL;
	if (bad_line != NULL)
		*bad_line = 0;
	if (len > AK_DOTENV_FILE_MAX)
		return AK_ERR_TOO_LARGE;
	if (check_utf8((const unsigned char *)buf, len, bad_line) != 0)
		return AK_ERR_BAD_FORMAT;
	if ((d = calloc(1, sizeof(*d))) == NULL)
		return AK_ERR_NOMEM;
	ps.s = (const unsigned char *)buf;
	ps.n = len;
	ps.p = 0;
	ps.line = 1;
	while (ps.p < ps.n) {
		if ((r = parse_binding(&ps, d, &t, &syntax, &stmt_line)) != AK_OK)
			goto out;
		if (syntax) {
			if (d->nbad++ == 0 && bad_line != NULL)
				*bad_line = stmt_line;
		}
	}
	*out = d;
	d = NULL;
	r = AK_OK;
out:
	free(t.slot);
	ak_dotenv_free(d);
	return r;
}

void
ak_dotenv_free(struct ak_dotenv *d)
{
	size_t i;

	if (d == NULL)
		return;
	for (i = 0; i < d->n; i++) {
		ak_smem_free(d->e[i].name);
		ak_smem_free(d->e[i].value); /* wipes */
	}
	free(d->e);
	free(d->b);
	free(d);
}

const struct ak_dotenv_entry *
ak_dotenv_get(const struct ak_dotenv *d, const char *name)
{
	size_t i;

	if (d == NULL || name == NULL)
		return NULL;
	for (i = 0; i < d->n; i++)
		if (strcmp(d->e[i].name, name) == 0)
			return &d->e[i];
	return NULL;
}
