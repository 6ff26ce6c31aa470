/* fuzz_shell.c - export quoting: decoding the output gives back the input, for every shell.
 *
 * Input: byte 0 picks the shell (mod 7), byte 1 the variable name and (bit 7) a tight output cap,
 * the rest is the value (up to the first NUL: values are C strings).
 * The property "evaluated by the shell, the line returns the value" is checked here with in-process
 * reference decoders written from each shell's quoting rules, strictly: any byte outside quotes that
 * is not one of the documented escapes fails. tests/unit/test_shell.c runs real shells (sh, bash,
 * zsh, dash, fish, tcsh) on chosen values; this target covers the byte space.
 *   sh:   '...' literal up to the next '; outside only \' (POSIX single quotes).
 *   fish: '...' where \\ and \' are escapes; outside only \\ \' \n; no raw newline on the line.
 *   csh:  '...' literal but may hold neither ! (history) nor a newline; outside \' \! $'\n' and
 *         "`\printf '...'`" with only alphanumerics and \ooo inside.
 *   powershell: '...' with '' and doubled U+2018..U+201B; ( '...' + [char]0xNN + '...' ) for controls.
 *   cmd:  %% and ^-escapes of ^&|<>()" ; no raw special.
 *   dotenv: python-dotenv's single-quoted value regex '((?:\\'|[^'])*)' with \\ \' decoded, and the
 *         closing quote must be unambiguous (so following lines cannot change the value).
 *   json: the object parses with cJSON to the value.
 * Also: an export that fails leaves the buffer exactly as it was (and with a tight cap it must fail
 * with TOO_LARGE rather than write a partial line).
 */
#include <string.h>

#include <cjson/cJSON.h>

#include "ak_buf.h"
#include "ak_shell.h"
#include "fuzz.h"

/* Appended after a dotenv line: quotes a misparsed value would run into. */
#define DOTENV_NEXT "B='q' # it's\n"

struct out {
	char *b;
	size_t n, cap;
};

static void
put(struct out *o, char c)
{
	if (o->n + 1 >= o->cap) {
		o->cap = o->cap ? o->cap * 2 : 64;
		o->b = realloc(o->b, o->cap);
		FUZZ_CHECK(o->b != NULL, "alloc");
	}
	o->b[o->n++] = c;
	o->b[o->n] = '\0';
}

/* Each decoder: s..e is the word; returns the index after it or -1 (not a valid encoding). */
static long
dec_sh(const char *s, size_t n, size_t i, struct out *o)
{
	while (i < n && s[i] != ';') {
		if (s[i] == '\'') {
			/* Never a backslash inside the quotes: fish would read \' or \\ there as an escape. */
			for (i++; i < n && s[i] != '\'' && s[i] != '\\'; i++)
				put(o, s[i]);
			if (i == n || s[i] == '\\')
				return -1;
			i++;
		} else if (s[i] == '\\' && i + 1 < n && (s[i + 1] == '\'' || s[i + 1] == '\\')) {
			put(o, s[i + 1]);
			i += 2;
		} else
			return -1;
	}
	return (long)i;
}

static long
dec_fish(const char *s, size_t n, size_t i, struct out *o)
{
	while (i < n && s[i] != ';') {
		if (s[i] == '\'') {
			for (i++; i < n && s[i] != '\''; i++) {
				if (s[i] == '\\' && i + 1 < n && (s[i + 1] == '\\' || s[i + 1] == '\''))
					i++;
				put(o, s[i]);
			}
			if (i == n)
				return -1;
			i++;
		} else if (s[i] == '\\' && i + 1 < n && strchr("\\'n", s[i + 1]) != NULL && s[i + 1]) {
			put(o, s[i + 1] == 'n' ? '\n' : s[i + 1]);
			i += 2;
		} else
			return -1;
	}
	return (long)i;
}

static long
dec_csh(const char *s, size_t n, size_t i, struct out *o)
{
	static const char pf_open[] = "\"`\\printf '", pf_close[] = "'`\"";

	while (i < n && s[i] != ';') {
		if (s[i] == '\'') {
			for (i++; i < n && s[i] != '\''; i++) {
				if (s[i] == '!' || s[i] == '\n')
					return -1; /* history expansion / word split inside the quotes */
				put(o, s[i]);
			}
			if (i == n)
				return -1;
			i++;
		} else if (s[i] == '\\' && i + 1 < n && (s[i + 1] == '\'' || s[i + 1] == '!')) {
			put(o, s[i + 1]);
			i += 2;
		} else if (n - i >= 5 && memcmp(s + i, "$'\\n'", 5) == 0) {
			put(o, '\n');
			i += 5;
		} else if (n - i >= sizeof(pf_open) - 1 && memcmp(s + i, pf_open, sizeof(pf_open) - 1) == 0) {
			for (i += sizeof(pf_open) - 1; i < n && s[i] != '\''; ) {
				char c = s[i];

				if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
					put(o, c);
					i++;
				} else if (c == '\\' && n - i >= 4 && s[i + 1] >= '0' && s[i + 1] <= '3' &&
				    s[i + 2] >= '0' && s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
					put(o, (char)((s[i + 1] - '0') << 6 | (s[i + 2] - '0') << 3 | (s[i + 3] - '0')));
					i += 4;
				} else
					return -1;
			}
			if (n - i < sizeof(pf_close) - 1 || memcmp(s + i, pf_close, sizeof(pf_close) - 1) != 0)
				return -1;
			i += sizeof(pf_close) - 1;
		} else
			return -1;
	}
	return (long)i;
}

static int
is_tquote(const char *s, size_t n, size_t i)
{
	return n - i >= 3 && (unsigned char)s[i] == 0xe2 && (unsigned char)s[i + 1] == 0x80 &&
	    (unsigned char)s[i + 2] >= 0x98 && (unsigned char)s[i + 2] <= 0x9b;
}

/* One PowerShell '...' string at s[i]. */
static long
ps_string(const char *s, size_t n, size_t i, struct out *o)
{
	if (i >= n || s[i] != '\'')
		return -1;
	for (i++; i < n; ) {
		if (s[i] == '\'') {
			if (i + 1 < n && s[i + 1] == '\'') {
				put(o, '\'');
				i += 2;
				continue;
			}
			return (long)i + 1;
		}
		if (is_tquote(s, n, i)) {
			/* Every typographic single quote is a quote to PowerShell: it must come doubled. */
			if (!(n - i >= 6 && memcmp(s + i, s + i + 3, 3) == 0))
				return -1;
			put(o, s[i]);
			put(o, s[i + 1]);
			put(o, s[i + 2]);
			i += 6;
			continue;
		}
		if (((unsigned char)s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f)
			return -1; /* a control inside the quotes would split the piped line */
		put(o, s[i++]);
	}
	return -1;
}

static int
hexv(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static long
dec_ps(const char *s, size_t n, size_t i, struct out *o)
{
	static const char plus[] = " + ", chr[] = " + [char]0x";
	long j;

	if (i < n && s[i] != '(')
		return ps_string(s, n, i, o);
	i++;
	if ((j = ps_string(s, n, i, o)) < 0)
		return -1;
	i = (size_t)j;
	while (i < n && s[i] != ')') {
		int h, l;

		if (n - i < sizeof(chr) - 1 + 2 || memcmp(s + i, chr, sizeof(chr) - 1) != 0)
			return -1;
		i += sizeof(chr) - 1;
		if ((h = hexv(s[i])) < 0 || (l = hexv(s[i + 1])) < 0)
			return -1;
		put(o, (char)(h << 4 | l));
		i += 2;
		if (n - i < sizeof(plus) - 1 || memcmp(s + i, plus, sizeof(plus) - 1) != 0)
			return -1;
		i += sizeof(plus) - 1;
		if ((j = ps_string(s, n, i, o)) < 0)
			return -1;
		i = (size_t)j;
	}
	if (i == n)
		return -1;
	return (long)i + 1;
}

static long
dec_cmd(const char *s, size_t n, size_t i, struct out *o)
{
	while (i < n && s[i] != '\r') {
		if (s[i] == '%') {
			if (i + 1 >= n || s[i + 1] != '%')
				return -1;
			put(o, '%');
			i += 2;
		} else if (s[i] == '^') {
			if (i + 1 >= n || strchr("^&|<>()\"", s[i + 1]) == NULL || s[i + 1] == '\0')
				return -1;
			put(o, s[i + 1]);
			i += 2;
		} else if (strchr("&|<>()\"\n\x1a", s[i]) != NULL) {
			return -1;
		} else
			put(o, s[i++]);
	}
	return (long)i;
}

/* python-dotenv: _single_quoted_value = '((?:\\'|[^'])*)' then \\[\\'] -> the escaped char. The match is
 * what Python's backtracking engine returns: greedy *, alternatives in order, so at each position it
 * takes \\' if a match can still complete from there, else one non-quote byte, else stops at a quote.
 * The caller appends another line holding quotes, so a value whose closing quote could be skipped
 * (what "a final \\ is unsupported" is about) would swallow the next line and fail here. */
static long
dec_dotenv(const char *s, size_t n, size_t i, struct out *o)
{
	char *ok;
	size_t k, start, end;

	if (i >= n || s[i] != '\'')
		return -1;
	start = ++i;
	/* ok[k]: the rest of the pattern can match from k. */
	ok = calloc(n + 3, 1);
	FUZZ_CHECK(ok != NULL, "alloc");
	for (k = n; k-- > start; )
		ok[k] = s[k] == '\'' || (s[k] == '\\' && k + 1 < n && s[k + 1] == '\'' && ok[k + 2]) ||
		    (s[k] != '\'' && ok[k + 1]);
	if (!ok[start]) {
		free(ok);
		return -1;
	}
	for (k = start; ; ) {
		if (s[k] == '\\' && k + 1 < n && s[k + 1] == '\'' && ok[k + 2])
			k += 2;
		else if (s[k] != '\'' && ok[k + 1])
			k++;
		else
			break;
	}
	free(ok);
	end = k;
	for (k = start; k < end; k++) {
		if (s[k] == '\\' && k + 1 < end && (s[k + 1] == '\\' || s[k + 1] == '\''))
			k++;
		put(o, s[k]);
	}
	return (long)end + 1;
}

static const char *const names[] = { "A", "ANTHROPIC_API_KEY", "_x9", "OPENAI_BASE_URL" };

static void
check_line(enum ak_shell sh, const char *name, const char *v, const char *line, size_t n)
{
	static const char *const pre[][2] = { { "export ", "=" }, { "set -gx ", " " }, { "setenv ", " " },
		{ "$env:", " = " }, { "@set ", "=" }, { "", "=" } };
	static const char *const post[] = { ";\n", ";\n", ";\n", "\n", "\r\n", ("\n" DOTENV_NEXT) };
	char p[64];
	struct out o = { NULL, 0, 0 };
	size_t pl;
	long end = -1;

	put(&o, 'x');
	o.n = 0;
	o.b[0] = '\0';
	snprintf(p, sizeof(p), "%s%s%s", pre[sh][0], name, pre[sh][1]);
	pl = strlen(p);
	FUZZ_CHECK(n >= pl && memcmp(line, p, pl) == 0, "export line prefix");
	switch (sh) {
	case AK_SHELL_SH: end = dec_sh(line, n, pl, &o); break;
	case AK_SHELL_FISH: end = dec_fish(line, n, pl, &o); break;
	case AK_SHELL_CSH: end = dec_csh(line, n, pl, &o); break;
	case AK_SHELL_POWERSHELL: end = dec_ps(line, n, pl, &o); break;
	case AK_SHELL_CMD: end = dec_cmd(line, n, pl, &o); break;
	case AK_SHELL_DOTENV: end = dec_dotenv(line, n, pl, &o); break;
	case AK_SHELL_JSON: break;
	}
	FUZZ_CHECK(end >= 0, "output is a valid encoding for the shell");
	FUZZ_CHECK((size_t)end + strlen(post[sh]) == n && memcmp(line + end, post[sh], n - (size_t)end) == 0,
	    "export line ends right after the word");
	FUZZ_CHECK(o.n == strlen(v) && memcmp(o.b, v, o.n) == 0, "decoding the output gives the value back");
	if (sh == AK_SHELL_FISH || sh == AK_SHELL_CSH || sh == AK_SHELL_POWERSHELL || sh == AK_SHELL_CMD)
		FUZZ_CHECK(memchr(line, '\n', n - 1) == NULL, "one physical line");
	free(o.b);
}

static void
check_json(const char *name, const char *v, const char *txt, size_t n)
{
	char *copy = malloc(n + 1);
	cJSON *root, *it;

	FUZZ_CHECK(copy != NULL, "alloc");
	memcpy(copy, txt, n);
	copy[n] = '\0';
	root = cJSON_Parse(copy);
	FUZZ_CHECK(root != NULL && cJSON_IsObject(root), "json output parses");
	it = cJSON_GetObjectItemCaseSensitive(root, name);
	FUZZ_CHECK(cJSON_IsString(it) && strcmp(it->valuestring, v) == 0, "json value round-trips");
	FUZZ_CHECK(cJSON_GetArraySize(root) == 1, "one member");
	cJSON_Delete(root);
	free(copy);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char prefix[] = "# previous line\n";
	enum ak_shell sh;
	const char *name;
	struct ak_buf *b;
	char *v;
	size_t cap, vlen, before;
	enum ak_err r;
	int tight;

	if (size < 2)
		return 0;
	sh = (enum ak_shell)(data[0] % 7);
	name = names[data[1] % 4];
	tight = (data[1] & 0x80) != 0;
	vlen = strnlen((const char *)data + 2, size - 2);
	v = malloc(vlen + 1);
	FUZZ_CHECK(v != NULL, "alloc");
	memcpy(v, data + 2, vlen);
	v[vlen] = '\0';

	cap = tight ? sizeof(prefix) - 1 + (data[1] & 0x7f) : 1u << 24;
	b = ak_buf_new_secure(cap);
	FUZZ_CHECK(b != NULL, "alloc");
	FUZZ_CHECK(ak_buf_put(b, prefix, sizeof(prefix) - 1) == AK_OK, "prefix");
	if (sh == AK_SHELL_JSON && ak_shell_json_begin(b) != AK_OK) {
		FUZZ_CHECK(tight, "json_begin fails only for lack of room");
		goto out;
	}
	before = ak_buf_len(b);
	r = ak_shell_export(b, sh, name, v);
	if (r != AK_OK) {
		FUZZ_CHECK(r == AK_ERR_UNSUPPORTED || (tight && r == AK_ERR_TOO_LARGE), "export error code");
		FUZZ_CHECK(r != AK_ERR_UNSUPPORTED || sh == AK_SHELL_CMD || sh == AK_SHELL_DOTENV ||
		    sh == AK_SHELL_POWERSHELL, "only cmd, dotenv, powershell refuse values");
		FUZZ_CHECK(ak_buf_len(b) == before && memcmp(ak_buf_ptr(b), prefix, sizeof(prefix) - 1) == 0,
		    "a failed export leaves the buffer as it was");
		goto out;
	}
	FUZZ_CHECK(memcmp(ak_buf_ptr(b), prefix, sizeof(prefix) - 1) == 0, "export appends");
	if (sh == AK_SHELL_JSON) {
		if (ak_shell_json_end(b) != AK_OK)
			goto out;
		check_json(name, v, (const char *)ak_buf_ptr(b) + sizeof(prefix) - 1,
		    ak_buf_len(b) - (sizeof(prefix) - 1));
	} else {
		if (sh == AK_SHELL_DOTENV && ak_buf_put(b, DOTENV_NEXT, strlen(DOTENV_NEXT)) != AK_OK)
			goto out;
		check_line(sh, name, v, (const char *)ak_buf_ptr(b) + sizeof(prefix) - 1,
		    ak_buf_len(b) - (sizeof(prefix) - 1));
	}
out:
	ak_buf_free(b);
	free(v);
	return 0;
}
