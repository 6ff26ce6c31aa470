/* shell.c - export lines that carry any value byte-for-byte into each shell, injection-proof in every
 * shell they claim.
 *
 * Every encoder works the same way: bytes that are plain in the shell's strongest quoting go inside
 * single quotes; each byte that is special even there is written OUTSIDE the quotes with an escape
 * the shell always honours. Quotes are opened lazily so the output stays readable.
 * The exact encodings (and why) are in the comments of each *_word() below; tests/unit/test_shell.c
 * runs them through the real shells.
 *
 * Output always goes to the caller's buffer, which may be secure; on any error the buffer is rolled
 * back to its length on entry (ak_buf_unreserve wipes what it drops), so a failed export leaves no
 * half-written secret behind.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ak_buf.h"
#include "ak_err.h"
#include "ak_shell.h"
#include "ak_util.h"

/* A writer with a sticky error: encoders append freely and the caller checks once. */
struct w {
	struct ak_buf *b;
	enum ak_err r;
};

static void
wn(struct w *w, const void *p, size_t n)
{
	if (w->r == AK_OK && n > 0)
		w->r = ak_buf_put(w->b, p, n);
}

static void
ws(struct w *w, const char *s)
{
	wn(w, s, strlen(s));
}

static void
wc(struct w *w, uint8_t c)
{
	wn(w, &c, 1);
}

static void
whex2(struct w *w, uint8_t c)
{
	static const char hex[] = "0123456789abcdef";
	char s[2] = { hex[c >> 4], hex[c & 15] };

	wn(w, s, 2);
}

/* Names come from the store, which validates them; check again because a name is emitted unquoted. */
static int
valid_name(const char *name)
{
	return ak_varname_check(name) == AK_OK;
}

/* Strict UTF-8 (ak_utf8_next), NUL-terminated. */
static int
valid_utf8(const uint8_t *s)
{
	size_t n = strlen((const char *)s), k;
	uint32_t cp;

	for (; n > 0; s += k, n -= k)
		if ((k = ak_utf8_next(s, n, &cp)) == 0)
			return 0;
	return 1;
}

/* A shell's escapes: each byte that must leave the quotes, and what stands for it outside them. */
struct esc {
	uint8_t c;
	const char *s;
};

/* 1 if c has an escape in t (written to w unless w is NULL), 0 if it is plain inside the quotes. */
static int
esc_lookup(struct w *w, uint8_t c, const struct esc *t)
{
	for (; t->s != NULL; t++) {
		if (t->c == c) {
			if (w != NULL)
				ws(w, t->s);
			return 1;
		}
	}
	return 0;
}

/*
 * Shared shape of the sh, fish and csh encoders: runs of plain bytes inside '...', and for a byte with
 * an escape in escs the quote is closed and the escape written outside. An empty value is ''.
 * v need not be NUL-terminated (csh passes one line of a value).
 */
static void
quoted_word(struct w *w, const uint8_t *v, size_t len, const struct esc *escs)
{
	const uint8_t *run, *end = v + len;
	int open = 0;

	if (len == 0)
		ws(w, "''");
	while (v < end) {
		run = v;
		while (v < end && esc_lookup(NULL, *v, escs) == 0)
			v++;
		if (v > run) {
			if (!open)
				wc(w, '\'');
			open = 1;
			wn(w, run, (size_t)(v - run));
		}
		if (v == end)
			break;
		if (open)
			wc(w, '\'');
		open = 0;
		esc_lookup(w, *v++, escs);
	}
	if (open)
		wc(w, '\'');
}


/* sh/bash/zsh/dash/ksh: only ' ends a single-quoted string; \' outside quotes is a literal quote.
 * Newlines and every other byte are literal inside '...' (also under zsh's RC_QUOTES: we never
 * put two quotes inside one quoted run). A backslash goes outside too, as \\: sh reads that as one
 * backslash, and fish (which a bash login may hand this output to) treats \' and \\ as escapes even
 * inside single quotes, so a value like \'; cmd; # must never have its backslash inside a quote.
 * Outside the quotes fish reads \' and \\ exactly as sh does: the line stays inert there. */
static const struct esc sh_escs[] = {
	{ '\'', "\\'" },
	{ '\\', "\\\\" },
	{ 0, NULL },
};

/* fish: inside '...' only \\ and \' are escapes, so both go outside as \\ and \'. A newline goes
 * outside as \n so that each command stays on one line: `eval (akctl env ...)` splits its input
 * at newlines and joins the pieces with spaces. Every other byte (controls, invalid UTF-8, fish's
 * private-use range) round-trips literally: fish maps undecodable bytes to private-use characters
 * and back when it exports. */
static const struct esc fish_escs[] = {
	{ '\'', "\\'" },
	{ '\\', "\\\\" },
	{ '\n', "\\n" },
	{ 0, NULL },
};

/* csh/tcsh: ' ends the quote (written outside as \'); ! triggers history substitution even inside
 * single quotes in an interactive shell, also in eval'd and sourced text, so it goes outside as \!.
 * A raw newline cannot survive the documented eval "`...`" (command substitution splits the output
 * into words at newlines and eval joins them with spaces), so it is written as $'\n', the C-style
 * quoting added in tcsh 6.23.01. Older tcsh and BSD csh reject $' with "Illegal variable name."
 * and set nothing, so a newline fails loudly there rather than arriving as a space.
 * Bytes 0x80-0xff: tcsh's command-substitution reader (wide_read) drops or repeats a byte >= 0x80
 * (any such byte in the C locale, invalid UTF-8 in a UTF-8 one) that straddles the end of a 4 KiB
 * read chunk, and $'\xNN' yields a code point, not a byte, in UTF-8 locales. So a line of a value
 * holding such bytes is rebuilt by "`\printf '\ooo...'`" in pieces of at most CSH_CHUNK bytes: each
 * output is far below 4 KiB and the output we write stays pure ASCII. That costs one printf(1) per
 * piece, only for values with non-ASCII bytes (\printf: no alias can stand in for it).
 * Every other byte is literal inside '...'. */
#define CSH_CHUNK 1024

static const struct esc csh_escs[] = {
	{ '\'', "\\'" },
	{ '!', "\\!" },
	{ '\n', "$'\\n'" },
	{ 0, NULL },
};

static void
csh_printf(struct w *w, const uint8_t *p, size_t n)
{
	char o[4];

	ws(w, "\"`\\printf '");
	for (; n > 0; p++, n--) {
		/* Octal for all but alphanumerics: no %, \, ', !, or leading - reaches printf raw. */
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')) {
			wc(w, *p);
			continue;
		}
		o[0] = '\\';
		o[1] = (char)('0' + (*p >> 6));
		o[2] = (char)('0' + ((*p >> 3) & 7));
		o[3] = (char)('0' + (*p & 7));
		wn(w, o, 4);
	}
	ws(w, "'`\"");
}

static void
csh_word(struct w *w, const uint8_t *v)
{
	const uint8_t *eol, *p;
	size_t n;
	int high;

	if (*v == 0) {
		ws(w, "''");
		return;
	}
	while (*v != 0) {
		eol = (const uint8_t *)strchr((const char *)v, '\n');
		if (eol == NULL)
			eol = v + strlen((const char *)v);
		for (high = 0, p = v; p < eol; p++)
			if (*p >= 0x80)
				high = 1;
		if (high) {
			for (; v < eol; v += n) {
				n = (size_t)(eol - v) < CSH_CHUNK ? (size_t)(eol - v) : CSH_CHUNK;
				csh_printf(w, v, n);
			}
		} else if (eol > v) {
			quoted_word(w, v, (size_t)(eol - v), csh_escs);
			v = eol;
		}
		if (*v == '\n') {
			esc_lookup(w, '\n', csh_escs);
			v++;
		}
	}
}

/* PowerShell: '...' where ' and the typographic quotes U+2018..U+201B (UTF-8 e2 80 98..9b), which
 * PowerShell also treats as single quotes, are doubled. Control characters other than tab are added
 * as [char]0xNN so no line of the output is ever split (Invoke-Expression gets piped lines one by
 * one). The concatenation always starts with a string, so + is string concatenation; it is wrapped
 * in parentheses to stay one operand. Values must be UTF-8 (environment strings are Unicode there). */
static void
ps_word(struct w *w, const uint8_t *v)
{
	const uint8_t *p;
	int concat = 0;

	for (p = v; *p != 0; p++)
		if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
			concat = 1;
	if (concat)
		wc(w, '(');
	wc(w, '\'');
	for (p = v; *p != 0; p++) {
		if ((*p < 0x20 && *p != '\t') || *p == 0x7f) {
			ws(w, "' + [char]0x");
			whex2(w, *p);
			ws(w, " + '");
		} else if (*p == '\'') {
			ws(w, "''");
		} else if (p[0] == 0xe2 && p[1] == 0x80 && p[2] >= 0x98 && p[2] <= 0x9b) {
			wn(w, p, 3);
			wn(w, p, 3);
			p += 2;
		} else
			wc(w, *p);
	}
	wc(w, '\'');
	if (concat)
		wc(w, ')');
}

/* cmd.exe batch file, unquoted: %% for % (percent expansion runs first), ^ before each of
 * ^ & | < > ( ) and " (escaping " keeps the parser out of quote mode, where ^ would be literal).
 * ! is left alone: the file is meant to run with delayed expansion off, cmd's default; under
 * "setlocal EnableDelayedExpansion" a ! in a value would be expanded. CR, LF and Ctrl-Z end a
 * batch line and cannot be carried: the caller has already rejected them. */
static void
cmd_word(struct w *w, const uint8_t *v)
{
	for (; *v != 0; v++) {
		switch (*v) {
		case '%':
			ws(w, "%%");
			break;
		case '^':
		case '&':
		case '|':
		case '<':
		case '>':
		case '(':
		case ')':
		case '"':
			wc(w, '^');
			wc(w, *v);
			break;
		default:
			wc(w, *v);
		}
	}
}

/* python-dotenv single-quoted value: no interpolation, newlines allowed, only \\ and \' are
 * escapes. Readers open the file in text mode (universal newlines, UTF-8), so CR and invalid
 * UTF-8 cannot be carried, nor a value ending in \ (see check_value): the caller has already
 * rejected them. python-dotenv 0.21 still expands ${VAR} even in single quotes unless the reader
 * passes interpolate=False; the format has no way to escape it. */
static void
dotenv_word(struct w *w, const uint8_t *v)
{
	wc(w, '\'');
	for (; *v != 0; v++) {
		if (*v == '\\' || *v == '\'')
			wc(w, '\\');
		wc(w, *v);
	}
	wc(w, '\'');
}

/* JSON string: " \ and control characters escaped (the short forms where JSON has one, else \u00XX);
 * bytes >= 0x80 passed through unchanged. */
static const struct esc json_escs[] = {
	{ '"', "\\\"" },
	{ '\\', "\\\\" },
	{ '\n', "\\n" },
	{ '\r', "\\r" },
	{ '\t', "\\t" },
	{ '\b', "\\b" },
	{ '\f', "\\f" },
	{ 0, NULL },
};

static void
json_word(struct w *w, const uint8_t *v)
{
	wc(w, '"');
	for (; *v != 0; v++) {
		if (esc_lookup(w, *v, json_escs))
			continue;
		if (*v < 0x20) {
			ws(w, "\\u00");
			whex2(w, *v);
		} else {
			wc(w, *v);
		}
	}
	wc(w, '"');
}

/* What each shell cannot carry (see the encoders). */
static enum ak_err
check_value(enum ak_shell sh, const uint8_t *v)
{
	switch (sh) {
	case AK_SHELL_CMD:
		if (strpbrk((const char *)v, "\r\n\x1a") != NULL)
			return AK_ERR_UNSUPPORTED;
		return valid_utf8(v) ? AK_OK : AK_ERR_UNSUPPORTED;
	case AK_SHELL_DOTENV:
		/* A final \ would be written \\ right before the closing quote, and python-dotenv's
		 * pattern '((?:\\'|[^'])*)' takes that \' as an escaped quote: no quoting carries it. */
		if (strchr((const char *)v, '\r') != NULL || (*v != 0 && v[strlen((const char *)v) - 1] == '\\'))
			return AK_ERR_UNSUPPORTED;
		return valid_utf8(v) ? AK_OK : AK_ERR_UNSUPPORTED;
	case AK_SHELL_POWERSHELL:
		return valid_utf8(v) ? AK_OK : AK_ERR_UNSUPPORTED;
	case AK_SHELL_SH:
	case AK_SHELL_FISH:
	case AK_SHELL_CSH:
	case AK_SHELL_JSON:
		return AK_OK;
	}
	return AK_ERR_INVALID;
}

static void
sh_word(struct w *w, const uint8_t *v)
{
	quoted_word(w, v, strlen((const char *)v), sh_escs);
}

static void
fish_word(struct w *w, const uint8_t *v)
{
	quoted_word(w, v, strlen((const char *)v), fish_escs);
}

/* Each shell's encoder of a value as one word. */
static void (*const words[])(struct w *w, const uint8_t *v) = {
	[AK_SHELL_SH] = sh_word,
	[AK_SHELL_FISH] = fish_word,
	[AK_SHELL_CSH] = csh_word,
	[AK_SHELL_POWERSHELL] = ps_word,
	[AK_SHELL_CMD] = cmd_word,
	[AK_SHELL_DOTENV] = dotenv_word,
	[AK_SHELL_JSON] = json_word,
};

static void
word(struct w *w, enum ak_shell sh, const uint8_t *v)
{
	if ((unsigned)sh < sizeof(words) / sizeof(words[0]) && words[sh] != NULL)
		words[sh](w, v);
	else if (w->r == AK_OK)
		w->r = AK_ERR_INVALID;
}

/* Finish a call: on error drop (and wipe) everything appended since start. */
static enum ak_err
finish(struct w *w, size_t start)
{
	size_t len;

	if (w->r != AK_OK) {
		len = ak_buf_len(w->b);
		if (len > start)
			ak_buf_unreserve(w->b, len - start);
	}
	return w->r;
}

enum ak_err
ak_shell_parse(const char *name, enum ak_shell *out)
{
	static const struct {
		const char *name;
		enum ak_shell sh;
	} names[] = {
		{ "sh", AK_SHELL_SH }, { "bash", AK_SHELL_SH }, { "zsh", AK_SHELL_SH },
		{ "dash", AK_SHELL_SH }, { "ksh", AK_SHELL_SH }, { "fish", AK_SHELL_FISH },
		{ "csh", AK_SHELL_CSH }, { "tcsh", AK_SHELL_CSH },
		{ "powershell", AK_SHELL_POWERSHELL }, { "pwsh", AK_SHELL_POWERSHELL },
		{ "cmd", AK_SHELL_CMD }, { "dotenv", AK_SHELL_DOTENV }, { "json", AK_SHELL_JSON },
	};
	size_t i;

	if (name == NULL || out == NULL)
		return AK_ERR_INVALID;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(name, names[i].name) == 0) {
			*out = names[i].sh;
			return AK_OK;
		}
	}
	return AK_ERR_INVALID;
}

enum ak_shell
ak_shell_from_env(void)
{
	const char *sh, *base;
	size_t len;

	if ((sh = getenv("SHELL")) == NULL)
		return AK_SHELL_SH;
	base = strrchr(sh, '/');
	base = base != NULL ? base + 1 : sh;
	len = strlen(base);
	if (len >= 3 && strcmp(base + len - 3, "csh") == 0)
		return AK_SHELL_CSH;
	if (strcmp(base, "fish") == 0)
		return AK_SHELL_FISH;
	if (strcmp(base, "pwsh") == 0 || strcmp(base, "powershell") == 0 ||
	    strcmp(base, "pwsh.exe") == 0 || strcmp(base, "powershell.exe") == 0)
		return AK_SHELL_POWERSHELL;
	return AK_SHELL_SH;
}

/* The shell a program name (a path's basename, a login shell's "-bash") is, if it is one. */
static int
shell_by_name(const char *path, enum ak_shell *out)
{
	const char *base = strrchr(path, '/');
	char name[32];
	size_t len;

	base = base != NULL ? base + 1 : path;
	if (base[0] == '-')
		base++;
	len = strcspn(base, " \n");
	if (len == 0 || len >= sizeof(name))
		return 0;
	memcpy(name, base, len);
	name[len] = '\0';
	if (strcmp(name, "mksh") == 0 || strcmp(name, "busybox") == 0 || strcmp(name, "ash") == 0 ||
	    strcmp(name, "yash") == 0 || strcmp(name, "posh") == 0) {
		*out = AK_SHELL_SH;
		return 1;
	}
	/* Only shells: ak_shell_parse also knows the output formats (cmd, dotenv, json). */
	if (strcmp(name, "cmd") == 0 || strcmp(name, "dotenv") == 0 || strcmp(name, "json") == 0)
		return 0;
	return ak_shell_parse(name, out) == AK_OK;
}

enum ak_shell
ak_shell_detect(void)
{
	char p[64], buf[4096];
	enum ak_shell sh;
	ssize_t n;
	int fd;

	/* The parent evaluates our output: eval "$(akctl use P)" runs us from the shell (or its
	 * subshell), whatever the login shell is. */
	snprintf(p, sizeof(p), "/proc/%ld/exe", (long)getppid());
	if ((n = readlink(p, buf, sizeof(buf) - 1)) > 0) {
		buf[n] = '\0';
		if (shell_by_name(buf, &sh))
			return sh;
	}
	/* busybox sh, or an exe we may not read: the process name (one read, no stdio: this runs in
	 * every `env`/`use` from a script, whose parent is no shell). */
	snprintf(p, sizeof(p), "/proc/%ld/comm", (long)getppid());
	if ((fd = open(p, O_RDONLY | O_CLOEXEC)) >= 0) {
		while ((n = read(fd, buf, sizeof(buf) - 1)) < 0 && errno == EINTR)
			;
		close(fd);
		if (n > 0) {
			buf[n] = '\0';
			if (shell_by_name(buf, &sh))
				return sh;
		}
	}
	return ak_shell_from_env();
}

/* The text around a name and its value in one line: before, the name, between, the value, then, when
 * export_before is not NULL, it and the name again (sh's separate export), and after. */
struct line_form {
	const char *before, *between, *export_before, *after;
};

/* What sets a variable. JSON is an object member, written apart. */
static const struct line_form export_lines[] = {
	[AK_SHELL_SH] = { "export ", "=", NULL, ";\n" },
	[AK_SHELL_FISH] = { "set -gx ", " ", NULL, ";\n" },
	[AK_SHELL_CSH] = { "setenv ", " ", NULL, ";\n" },
	[AK_SHELL_POWERSHELL] = { "$env:", " = ", NULL, "\n" },
	/* @: a batch file echoes its commands by default, and this one holds secrets. */
	[AK_SHELL_CMD] = { "@set ", "=", NULL, "\r\n" },
	[AK_SHELL_DOTENV] = { "", "=", NULL, "\n" },
	[AK_SHELL_JSON] = { NULL, NULL, NULL, NULL },
};

/* Append value for sh, checked before a byte is written and dropped whole on failure: with f NULL the
 * value alone, as one word; else a line setting name in form f (the value quoted for sh, or as it is).
 * JSON: a member. */
static enum ak_err
put_line(struct ak_buf *out, enum ak_shell sh, const char *name, const char *value, int quote,
    const struct line_form *f)
{
	struct w w = { out, AK_OK };
	const uint8_t *v = (const uint8_t *)value;
	size_t start;
	enum ak_err r;

	if (out == NULL || value == NULL)
		return AK_ERR_INVALID;
	if (f != NULL && !valid_name(name))
		return AK_ERR_BAD_VARNAME;
	if ((r = check_value(sh, v)) != AK_OK)
		return r;
	start = ak_buf_len(out);
	if (f == NULL) {
		word(&w, sh, v);
		return finish(&w, start);
	}
	if (sh == AK_SHELL_JSON) {
		/* A comma unless this is the first member (the last byte is then the opening brace). */
		if (ak_buf_len(out) > 0 && ak_buf_ptr(out)[ak_buf_len(out) - 1] != '{')
			wc(&w, ',');
		json_word(&w, (const uint8_t *)name);
		wc(&w, ':');
		word(&w, sh, v);
		return finish(&w, start);
	}
	ws(&w, f->before);
	ws(&w, name);
	ws(&w, f->between);
	if (quote)
		word(&w, sh, v);
	else
		ws(&w, value);
	if (f->export_before != NULL) {
		ws(&w, f->export_before);
		ws(&w, name);
	}
	ws(&w, f->after);
	return finish(&w, start);
}

enum ak_err
ak_shell_export(struct ak_buf *out, enum ak_shell sh, const char *name, const char *value)
{
	if ((unsigned)sh >= sizeof(export_lines) / sizeof(export_lines[0]))
		return AK_ERR_INVALID;
	return put_line(out, sh, name, value, 1, &export_lines[sh]);
}

/* What removes a variable, around its name. A file or object (dotenv, JSON) only lists what is set:
 * nothing to write for those. */
static const struct {
	const char *before, *after;
} unset_lines[] = {
	[AK_SHELL_SH] = { "unset ", ";\n" },
	[AK_SHELL_FISH] = { "set -e ", ";\n" },
	[AK_SHELL_CSH] = { "unsetenv ", ";\n" },
	[AK_SHELL_POWERSHELL] = { "Remove-Item Env:", " -ErrorAction SilentlyContinue\n" },
	[AK_SHELL_CMD] = { "@set ", "=\r\n" },
	[AK_SHELL_DOTENV] = { NULL, NULL },
	[AK_SHELL_JSON] = { NULL, NULL },
};

enum ak_err
ak_shell_unset(struct ak_buf *out, enum ak_shell sh, const char *name)
{
	struct w w = { out, AK_OK };
	size_t start;

	if (out == NULL || (unsigned)sh >= sizeof(unset_lines) / sizeof(unset_lines[0]))
		return AK_ERR_INVALID;
	if (!valid_name(name))
		return AK_ERR_BAD_VARNAME;
	start = ak_buf_len(out);
	if (unset_lines[sh].before != NULL) {
		ws(&w, unset_lines[sh].before);
		ws(&w, name);
		ws(&w, unset_lines[sh].after);
	}
	return finish(&w, start);
}

enum ak_err
ak_shell_json_begin(struct ak_buf *out)
{
	if (out == NULL)
		return AK_ERR_INVALID;
	return ak_buf_put(out, "{", 1);
}

enum ak_err
ak_shell_json_end(struct ak_buf *out)
{
	if (out == NULL)
		return AK_ERR_INVALID;
	return ak_buf_put(out, "}\n", 2);
}

enum ak_err
ak_shell_quote(struct ak_buf *out, enum ak_shell sh, const char *value)
{
	return put_line(out, sh, NULL, value, 1, NULL);
}

/* akagent's own lines, in the form ssh-agent prints and scripts parse: the sh form repeats the name in
 * a separate export. Every other shell gets the sh form, as ssh-agent -s does. */
static const struct line_form agent_lines[] = {
	[AK_SHELL_SH] = { "", "=", "; export ", ";\n" },
	[AK_SHELL_FISH] = { "set -gx ", " ", NULL, ";\n" },
	[AK_SHELL_CSH] = { "setenv ", " ", NULL, ";\n" },
};

enum ak_err
ak_shell_agent_export(struct ak_buf *out, enum ak_shell sh, const char *name, const char *value, int quote)
{
	if (sh != AK_SHELL_FISH && sh != AK_SHELL_CSH)
		sh = AK_SHELL_SH;
	return put_line(out, sh, name, value, quote, &agent_lines[sh]);
}
