/* output.c - akctl's messages and small formatting helpers. Nothing here ever sees a secret,
 * except cli_write_all, which only moves bytes. Every message and padded cell goes through
 * ak_render: text from a file, a store, an agent or a server never drives the terminal. */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "ak_render.h"
#include "ak_util.h"
#include "cli.h"

void
cli_sanitize(const char *in, char *out, size_t outlen)
{
	(void)ak_render(in, out, outlen);
}

/* "akctl: [CMD: ]MESSAGE" on stderr, no newline. The message goes through ak_render: file names and
 * arguments in it are text from outside. */
static void __attribute__((format(printf, 2, 0)))
say(const char *cmd, const char *fmt, va_list ap)
{
	char msg[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	fputs("akctl: ", stderr);
	if (cmd != NULL)
		fprintf(stderr, "%s: ", cmd);
	ak_render_fputs(msg, stderr);
}

enum ak_err
cli_fail(enum ak_err e, const char *detail, const char *fmt, ...)
{
	char det[512];
	va_list ap;

	cli_sanitize(detail, det, sizeof(det));
	va_start(ap, fmt);
	say(NULL, fmt, ap);
	va_end(ap);
	if (det[0] != '\0')
		fprintf(stderr, ": %s (%s)\n", ak_strerror(e), det);
	else
		fprintf(stderr, ": %s\n", ak_strerror(e));
	return e;
}

enum ak_err
cli_usage_error(struct cli *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	say(strcmp(c->cmd, "akctl") != 0 ? c->cmd : NULL, fmt, ap);
	va_end(ap);
	if (strcmp(c->cmd, "akctl") == 0)
		fputs(" (see 'akctl --help')\n", stderr);
	else
		fprintf(stderr, " (see 'akctl %s --help')\n", c->cmd);
	return AK_ERR_INVALID;
}

enum ak_err
cli_no_operand(struct cli *c, char **argv)
{
	return cli_usage_error(c, "unexpected argument '%s'", argv[optind]);
}

enum ak_err
cli_one_profile(struct cli *c, int argc, char **argv, const char **name)
{
	if (optind >= argc)
		return cli_usage_error(c, "missing PROFILE");
	if (optind + 1 != argc)
		return cli_usage_error(c, "unexpected argument '%s'", argv[optind + 1]);
	*name = argv[optind];
	if (ak_name_check(*name) != AK_OK)
		return cli_fail(AK_ERR_BAD_NAME, NULL, "%s: '%s'", c->cmd, *name);
	return AK_OK;
}

enum ak_err
cli_kdf_opts(struct cli *c, int argc, char **argv, enum ak_kdf_preset *preset, int *given, int *helped)
{
	const char *kdf = NULL;
	const struct ak_opt opts[] = { CLI_VALUE("kdf", &kdf), CLI_OPT_END };
	enum ak_err r;

	*given = 0;
	if ((r = cli_opts_parse(c, argc, argv, opts, 0, helped)) != AK_OK || *helped)
		return r;
	if (kdf != NULL) {
		if (ak_kdf_preset_parse(kdf, preset) != AK_OK)
			return cli_usage_error(c, "unknown --kdf '%s' (insecure-test, interactive, moderate or "
			    "sensitive)", kdf);
		*given = 1;
	}
	if (optind != argc)
		return cli_no_operand(c, argv);
	return AK_OK;
}

/* Edit distance (insertions, deletions, substitutions; a swap of neighbours counts 1), capped. */
static size_t
distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, j, d[33][33];

	if (la > 32 || lb > 32)
		return (size_t)-1;
	for (i = 0; i <= la; i++)
		d[i][0] = i;
	for (j = 0; j <= lb; j++)
		d[0][j] = j;
	for (i = 1; i <= la; i++) {
		for (j = 1; j <= lb; j++) {
			size_t v = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);

			if (d[i - 1][j] + 1 < v)
				v = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < v)
				v = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v)
				v = d[i - 2][j - 2] + 1;
			d[i][j] = v;
		}
	}
	return d[la][lb];
}

const char *
cli_closest(const char *word, const char *const *cands, size_t n)
{
	const char *best = NULL;
	size_t i, d, bestd = (size_t)-1, lim;

	/* Close enough to be a typo: a third of the word, at least 1, at most 3 edits; or a prefix. */
	lim = strlen(word) / 3;
	lim = lim < 1 ? 1 : lim > 3 ? 3 : lim;
	for (i = 0; i < n; i++) {
		d = distance(word, cands[i]);
		if (d > lim && word[0] != '\0' && strncmp(cands[i], word, strlen(word)) == 0)
			d = lim;
		if (d <= lim && d < bestd) {
			bestd = d;
			best = cands[i];
		}
	}
	return best;
}

void
cli_kdf_warn(enum ak_kdf_preset preset)
{
	if (preset == AK_KDF_INSECURE_TEST)
		cli_note("warning: --kdf insecure-test makes the passphrase trivial to brute-force: "
		    "use it for tests only");
}

void
cli_note(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	say(NULL, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

enum ak_err
cli_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return AK_ERR_IO;
		}
		p += n;
		len -= (size_t)n;
	}
	return AK_OK;
}

void
cli_iso_time(int64_t t, char *buf, size_t buflen)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (t <= 0 || gmtime_r(&tt, &tm) == NULL ||
	    strftime(buf, buflen, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, buflen, "-");
}

size_t
cli_width(const char *s)
{
	return ak_render_width(s);
}

void
cli_print_padded(const char *s, size_t w)
{
	size_t n = cli_width(s);

	ak_render_fputs(s, stdout);
	for (; n < w; n++)
		putchar(' ');
}

void
cli_print_line(const char *label, const char *s)
{
	fputs(label, stdout);
	ak_render_fputs(s, stdout);
	putchar('\n');
}

int
cli_color_on(int fd)
{
	const char *no = getenv("NO_COLOR"), *term = getenv("TERM");

	/* NO_COLOR set to anything but the empty string turns colour off (no-color.org). */
	if (no != NULL && no[0] != '\0')
		return 0;
	if (term == NULL || term[0] == '\0' || strcmp(term, "dumb") == 0)
		return 0;
	return isatty(fd);
}

const char *
cli_color(int fd, enum cli_color c)
{
	if (!cli_color_on(fd))
		return "";
	switch (c) {
	case CLI_COLOR_OK:
		return "\033[32m";
	case CLI_COLOR_WARN:
		return "\033[33m";
	case CLI_COLOR_BAD:
		return "\033[31m";
	case CLI_COLOR_OFF:
		return "\033[0m";
	}
	return "";
}

const char *
cli_mark(int fd, int ok)
{
	if (!cli_color_on(fd))
		return "";
	return ok ? "\033[32m\u2713\033[0m " : "\033[31m\u2717\033[0m ";
}

/* cJSON escapes C0 controls but writes DEL, U+0080..U+009F (C1 controls, which a terminal may obey) and
 * bytes that are not UTF-8 as they are. DEL and U+0080..U+009F become \u escapes, which JSON reads back
 * as the same characters; a stray byte 0x80..0x9f (JSON cannot carry it at all) becomes its Latin-1
 * reading, \u0080..\u009f. */
void
cli_json_write(const char *s)
{
	const unsigned char *p = (const unsigned char *)s, *run = p, *end = p + strlen(s);
	size_t n, i;

	/* Bytes that pass as they are go out in runs (one fwrite each), not one putchar at a time: a
	 * list --json of 10,000 profiles is megabytes. */
	while (*p != '\0') {
		/* 0x01..0x7e: the run goes on (the NUL ends it, as 0 - 1 wraps past the range). Eight bytes
		 * at a time while none of them is DEL or above, which is almost all of any JSON; never past
		 * the string's end. */
		while (end - p >= 8) {
			uint64_t w;

			memcpy(&w, p, sizeof(w));
			if (((w | ((w & 0x7f7f7f7f7f7f7f7full) + 0x0101010101010101ull)) & 0x8080808080808080ull) != 0)
				break;
			p += 8;
		}
		while ((unsigned)(*p - 1) < 0x7e)
			p++;
		if (*p == '\0')
			break;
		n = *p >= 0xc2 && *p <= 0xdf ? 1 : *p >= 0xe0 && *p <= 0xef ? 2 : *p >= 0xf0 && *p <= 0xf4 ? 3 : 0;
		for (i = 1; i <= n; i++)
			if ((p[i] & 0xc0) != 0x80)
				n = 0; /* not a sequence: its lead byte is judged alone */
		if (n == 1 && *p == 0xc2 && p[1] <= 0x9f) {
			fwrite(run, 1, (size_t)(p - run), stdout);
			printf("\\u00%02x", p[1]);
			p += 2;
			run = p;
		} else if (n > 0) {
			p += n + 1;
		} else if (*p == 0x7f || (*p >= 0x80 && *p <= 0x9f)) {
			fwrite(run, 1, (size_t)(p - run), stdout);
			printf("\\u00%02x", *p++);
			run = p;
		} else {
			p++;
		}
	}
	fwrite(run, 1, (size_t)(p - run), stdout);
}

void
cli_json_put(const char *s)
{
	cli_json_write(s);
	putchar('\n');
}

enum ak_err
cli_json_print(const struct cJSON *o)
{
	char *s;

	if (o == NULL || (s = cJSON_PrintUnformatted(o)) == NULL)
		return AK_ERR_NOMEM;
	cli_json_put(s);
	cJSON_free(s);
	return AK_OK;
}

enum ak_err
cli_json_done(struct cJSON *o, int built, const char *context)
{
	enum ak_err r = built ? cli_json_print(o) : AK_ERR_NOMEM;

	if (r != AK_OK)
		cli_fail(r, NULL, "%s", context);
	cJSON_Delete(o);
	return r;
}
