/* secret_line.c - which console lines may go into the history file.
 *
 * Secrets are typed only at akctl's own no-echo prompts, never on a console line; but a user may paste
 * one anyway. Such a line is neither recorded nor run. The rule errs on the safe side: a word that
 * merely looks like a key (a vendor prefix, or a long mixed token) is enough.
 */
#include <string.h>

#include "ak_provider.h"
#include "shell.h"

#define TOKEN_MIN 24        /* a random token at least this long looks like a key */

static const char *const prefixes[] = {
	"sk-", "sk_live_", "sk_test_", "rk_live_", "AKIA", "ASIA", "ghp_", "gho_", "ghu_", "ghs_",
	"github_pat_", "glpat-", "xoxb-", "xoxp-", "AIza", "hf_", "hvs.", "s.",
};

static int
key_char(char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
	    ch == '-' || ch == '_' || ch == '+' || ch == '/' || ch == '=' || ch == '.';
}

/* A long token of key characters mixing letters and digits (not a path: those start with / . ~). */
static int
random_token(const char *w, size_t len)
{
	int alpha = 0, digit = 0;
	size_t i;

	if (len < TOKEN_MIN || w[0] == '/' || w[0] == '.' || w[0] == '~')
		return 0;
	for (i = 0; i < len; i++) {
		if (!key_char(w[i]))
			return 0;
		if ((w[i] >= 'A' && w[i] <= 'Z') || (w[i] >= 'a' && w[i] <= 'z'))
			alpha = 1;
		else if (w[i] >= '0' && w[i] <= '9')
			digit = 1;
	}
	return alpha && digit;
}

static int
has_prefix(const char *w, size_t len, const char *p)
{
	size_t pl = strlen(p);

	/* The prefix alone ("sk-" in a sentence) is not a key: something key-like must follow. */
	return pl > 0 && len >= pl + 12 && strncmp(w, p, pl) == 0;
}

/* The redacted form "PREFIX…TAIL": the word starts with PREFIX and ends with TAIL. */
static int
matches_redacted(const char *w, size_t len, const char *red)
{
	const char *ell = strstr(red, "\xe2\x80\xa6");
	size_t pre, tail;

	if (ell == NULL || ell[3] == '\0' || ell[3] == '(')
		return 0;
	pre = (size_t)(ell - red);
	tail = strlen(ell + 3);
	return len >= pre + tail + 8 && strncmp(w, red, pre) == 0 &&
	    memcmp(w + len - tail, ell + 3, tail) == 0;
}

static int
word_is_secret(const char *w, size_t len, const struct ak_list_entry *e, uint32_t n)
{
	const struct ak_provider *prov;
	const char *eq;
	size_t i, np;
	uint32_t k;

	/* Strip quotes a user may have pasted around it. */
	while (len > 0 && (w[0] == '\'' || w[0] == '"')) {
		w++;
		len--;
	}
	while (len > 0 && (w[len - 1] == '\'' || w[len - 1] == '"'))
		len--;
	/* --set NAME=VALUE, or a pasted NAME=VALUE line: judge the value. */
	if ((eq = memchr(w, '=', len)) != NULL && eq != w &&
	    word_is_secret(eq + 1, len - (size_t)(eq + 1 - w), e, n))
		return 1;
	for (i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		if (has_prefix(w, len, prefixes[i]))
			return 1;
	prov = ak_provider_all(&np);
	for (i = 0; i < np; i++)
		if (has_prefix(w, len, prov[i].key_prefix))
			return 1;
	for (k = 0; k < n; k++)
		if (e[k].redacted != NULL && matches_redacted(w, len, e[k].redacted))
			return 1;
	return random_token(w, len);
}

int
shell_line_has_secret(const char *line, const struct ak_list_entry *e, uint32_t n)
{
	const char *p = line, *start;

	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			return 0;
		start = p;
		while (*p != '\0' && *p != ' ' && *p != '\t')
			p++;
		if (word_is_secret(start, (size_t)(p - start), e, n))
			return 1;
	}
}
