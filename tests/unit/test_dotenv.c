/* test_dotenv.c - the .env parser against a table of known answers and against python-dotenv itself.
 *
 * Every table case has an expected result (python-dotenv's documented behaviour, written by hand) and is
 * also run through the oracle: Debian's python3-dotenv (0.21), `dotenv_values(path, interpolate=False)`
 * under /usr/bin/python3 (the first python3 on PATH may be another install without it). Then a few
 * thousand random inputs made of the grammar's tricky pieces go through both. A missing oracle is a
 * failure, not a skip: CI installs python3-dotenv.
 */
#include <sys/stat.h>

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ak_dotenv.h"
#include "ak_file.h"
#include "ak_smem.h"
#include "t.h"

#define PY "/usr/bin/python3"
#define NRANDOM 3000

struct tcase {
	const char *in;
	const char *want; /* JSON: [[name, value-or-null], ...] in dict order */
};

static const struct tcase cases[] = {
	{ "", "[]" },
	{ "A=b", "[[\"A\",\"b\"]]" },
	{ "A=b\n", "[[\"A\",\"b\"]]" },
	{ "export A=b\n", "[[\"A\",\"b\"]]" },
	{ "export \t A=b", "[[\"A\",\"b\"]]" },
	{ "export=x\n", "[[\"export\",\"x\"]]" },
	{ "exportA=1\n", "[[\"exportA\",\"1\"]]" },
	{ "export A\n", "[[\"A\",null]]" },
	{ "A='single'\n", "[[\"A\",\"single\"]]" },
	{ "A=\"double\"\n", "[[\"A\",\"double\"]]" },
	{ "A='it\\'s'\n", "[[\"A\",\"it's\"]]" },
	{ "A='a\\\\b'\n", "[[\"A\",\"a\\\\b\"]]" },
	{ "A='a\\nb'\n", "[[\"A\",\"a\\\\nb\"]]" },
	{ "A=\"a\\nb\"\n", "[[\"A\",\"a\\nb\"]]" },
	{ "A=\"t\\tb\"", "[[\"A\",\"t\\tb\"]]" },
	{ "A=\"q\\\"q\"", "[[\"A\",\"q\\\"q\"]]" },
	{ "A=\"s\\'s\"", "[[\"A\",\"s's\"]]" },
	{ "A=\"bs\\\\x\"", "[[\"A\",\"bs\\\\x\"]]" },
	{ "A=\"\\x41\\u00e9\\0\"", "[[\"A\",\"\\\\x41\\\\u00e9\\\\0\"]]" },
	{ "A=\"\\a\\b\\f\\r\\v\"", "[[\"A\",\"\\u0007\\b\\f\\r\\u000b\"]]" },
	{ "A=plain # comment\n", "[[\"A\",\"plain\"]]" },
	{ "A=plain#notcomment\n", "[[\"A\",\"plain#notcomment\"]]" },
	{ "A=   spaced   \n", "[[\"A\",\"spaced\"]]" },
	{ "A= #x\n", "[[\"A\",\"#x\"]]" },
	{ "A=a b c\n", "[[\"A\",\"a b c\"]]" },
	{ "# comment\nA=1\n", "[[\"A\",\"1\"]]" },
	{ "   # indented comment\nA=1", "[[\"A\",\"1\"]]" },
	{ "A=\n", "[[\"A\",\"\"]]" },
	{ "A=", "[[\"A\",\"\"]]" },
	{ "A", "[[\"A\",null]]" },
	{ "A\nB=2\n", "[[\"A\",null],[\"B\",\"2\"]]" },
	{ "A # comment\n", "[[\"A\",null]]" },
	{ "A=\"multi\nline\"\n", "[[\"A\",\"multi\\nline\"]]" },
	{ "A='multi\nline'\n", "[[\"A\",\"multi\\nline\"]]" },
	{ "A=1\r\nB=2\r\n", "[[\"A\",\"1\"],[\"B\",\"2\"]]" },
	{ "A=\"x\r\ny\"\r\n", "[[\"A\",\"x\\ny\"]]" },
	{ "A=1\rB=2\r", "[[\"A\",\"1\"],[\"B\",\"2\"]]" },
	{ "A='x\ry'\n", "[[\"A\",\"x\\ny\"]]" },
	{ "A=1\nA=2\n", "[[\"A\",\"2\"]]" },
	{ "A=1\nB=x\nA=3\n", "[[\"A\",\"3\"],[\"B\",\"x\"]]" },
	{ "A=1\nA\n", "[[\"A\",null]]" },
	{ "A='x' # c\n", "[[\"A\",\"x\"]]" },
	{ "A='x'#c\n", "[[\"A\",\"x\"]]" },
	{ "A=\"x\"   \n", "[[\"A\",\"x\"]]" },
	{ "A='x' junk\nB=2\n", "[[\"B\",\"2\"]]" },
	{ "=nokey\nB=2", "[[\"B\",\"2\"]]" },
	{ "A=\"unterminated\nB=2\n", "[[\"B\",\"2\"]]" },
	{ "A='abc\\'\n", "[[\"A\",\"abc\\\\\"]]" },
	{ "A=\"x\\\\\"\n", "[[\"A\",\"x\\\\\"]]" },
	{ "'quoted key'=v\n", "[[\"quoted key\",\"v\"]]" },
	{ "'a=b'=c\n", "[[\"a=b\",\"c\"]]" },
	{ "''=c\nB=1\n", "[[\"B\",\"1\"]]" },
	{ "A b=c\n", "[]" },
	{ "  A  =  b  \n", "[[\"A\",\"b\"]]" },
	{ "A\t=\tb\t# c\n", "[[\"A\",\"b\"]]" },
	{ "A=b\xc2\xa0#c", "[[\"A\",\"b\"]]" },
	{ "A=b\xc2\xa0\n", "[[\"A\",\"b\"]]" },
	{ "A=b\xe3\x80\x80x\xe2\x80\x83\n", "[[\"A\",\"b\\u3000x\"]]" },
	{ "A=caf\xc3\xa9\n", "[[\"A\",\"caf\\u00e9\"]]" },
	{ "\n\n\nA=1\n\n", "[[\"A\",\"1\"]]" },
	{ "A=\"a\" B=2\n", "[]" },
	{ "A=\"\"\n", "[[\"A\",\"\"]]" },
	{ "A=''\n", "[[\"A\",\"\"]]" },
	{ "A=${B}\n", "[[\"A\",\"${B}\"]]" },
	{ "A = \"spaced equals\"\n", "[[\"A\",\"spaced equals\"]]" },
	{ "\xef\xbb\xbf" "A=1\n", "[[\"\\ufeffA\",\"1\"]]" },
	{ "A=\"a\\\nb\"", "[[\"A\",\"a\\\\\\nb\"]]" },
	{ "A=v\v# c", "[[\"A\",\"v\"]]" },
	{ "a.b-c=1\n", "[[\"a.b-c\",\"1\"]]" },
	{ "A=\"x\"\"y\"\n", "[]" },
	{ "\"A\"=1\n", "[[\"\\\"A\\\"\",\"1\"]]" },
	{ "A=x'y\"z\n", "[[\"A\",\"x'y\\\"z\"]]" },
	{ "A=sk-ant-api03-abc_DEF-123AA\n", "[[\"A\",\"sk-ant-api03-abc_DEF-123AA\"]]" },
	{ "A=1 #c\nexport B='2' # c\n#C=3\nD=\"4\"\n",
	    "[[\"A\",\"1\"],[\"B\",\"2\"],[\"D\",\"4\"]]" },
	{ "A=a\\b\n", "[[\"A\",\"a\\\\b\"]]" },
	{ "A=\"\\\\\\\"\"\n", "[[\"A\",\"\\\\\\\"\"]]" },
	{ "A=\"it\\\"s\" # c\n", "[[\"A\",\"it\\\"s\"]]" },
	{ "A=x\xe2\x80\xa8#c\n", "[[\"A\",\"x\"]]" },
	{ "A\xe2\x80\xa8=1\n", "[[\"A\",\"1\"]]" },
};
#define NCASES (sizeof(cases) / sizeof(cases[0]))

static char tmpdir[] = "/tmp/akdotenv-test.XXXXXX";

/* Compare a parse with a JSON list of pairs; prints a diff line and returns 0 on mismatch. */
static int
same(const char *label, const char *in, const struct ak_dotenv *d, const cJSON *want)
{
	const cJSON *pair, *k, *v;
	size_t i = 0;

	if (!cJSON_IsArray(want)) {
		fprintf(stderr, "%s: bad expectation\n", label);
		return 0;
	}
	cJSON_ArrayForEach(pair, want) {
		k = cJSON_GetArrayItem(pair, 0);
		v = cJSON_GetArrayItem(pair, 1);
		if (i >= d->n || !cJSON_IsString(k) || strcmp(k->valuestring, d->e[i].name) != 0)
			goto diff;
		if (cJSON_IsNull(v) ? d->e[i].value != NULL :
		    (!cJSON_IsString(v) || d->e[i].value == NULL || strcmp(v->valuestring, d->e[i].value) != 0))
			goto diff;
		i++;
	}
	if (i != d->n)
		goto diff;
	return 1;
diff:
	{
		char *w = cJSON_PrintUnformatted(want);
		cJSON *got = cJSON_CreateArray();
		char *g;

		for (i = 0; i < d->n; i++) {
			cJSON *p = cJSON_CreateArray();
			cJSON_AddItemToArray(p, cJSON_CreateString(d->e[i].name));
			cJSON_AddItemToArray(p, d->e[i].value ? cJSON_CreateString(d->e[i].value) :
			    cJSON_CreateNull());
			cJSON_AddItemToArray(got, p);
		}
		g = cJSON_PrintUnformatted(got);
		fprintf(stderr, "%s: input ", label);
		for (; *in; in++)
			fprintf(stderr, (unsigned char)*in < 0x20 || *in == '\\' ? "\\x%02x" : "%c",
			    (unsigned char)*in);
		fprintf(stderr, "\n  want %s\n  got  %s\n", w ? w : "?", g ? g : "?");
		free(w);
		free(g);
		cJSON_Delete(got);
	}
	return 0;
}

static void
write_case(size_t i, const char *in)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/case_%05zu.env", tmpdir, i);
	if ((f = fopen(path, "wb")) == NULL || fwrite(in, 1, strlen(in), f) != strlen(in) || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

/* Run the oracle on cases 0..n-1 of tmpdir: one JSON line each. Returns a malloc'd array of n lines. */
static char **
oracle(size_t n)
{
	static const char script[] =
	    "import json, logging, sys\n"
	    "logging.disable(logging.CRITICAL)\n"
	    "from dotenv import dotenv_values\n"
	    "d, n = sys.argv[1], int(sys.argv[2])\n"
	    "for i in range(n):\n"
	    "    v = dotenv_values('%s/case_%05d.env' % (d, i), interpolate=False)\n"
	    "    print(json.dumps(list(v.items())))\n";
	char path[256], cmd[512], *line = NULL;
	char **out;
	size_t cap = 0, i;
	FILE *f, *p;

	if (access(PY, X_OK) != 0) {
		fprintf(stderr, "FAIL: %s not found: install Debian's python3 and python3-dotenv\n", PY);
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/oracle.py", tmpdir);
	if ((f = fopen(path, "w")) == NULL || fputs(script, f) < 0 || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
	snprintf(cmd, sizeof(cmd), "%s %s %s %zu", PY, path, tmpdir, n);
	if ((p = popen(cmd, "r")) == NULL || (out = calloc(n, sizeof(*out))) == NULL) {
		perror("popen");
		exit(1);
	}
	for (i = 0; i < n && getline(&line, &cap, p) > 0; i++)
		out[i] = strdup(line);
	free(line);
	if (pclose(p) != 0 || i != n) {
		fprintf(stderr, "FAIL: the python-dotenv oracle failed (%zu of %zu answers): is Debian's "
		    "python3-dotenv installed?\n", i, n);
		exit(1);
	}
	return out;
}

/* xorshift64*: fixed seed, so a failure reproduces. */
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t
rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 2685821657736338717ull;
}

static char *
random_input(void)
{
	static const char *tok[] = {
		"A", "B", "KEY", "export", "export ", " ", "  ", "\t", "=", "=", "'", "'", "\"", "\"", "\\", "\\",
		"#", " #", "\n", "\n", "\r\n", "\r", "x", "y z", "\xc3\xa9", "\xc2\xa0", "\xe2\x80\xa8", "\v",
		"\f", "${A}", "n", "t", "_", "-", ".", "\x1c", "\xe3\x80\x80", "A=", "B=", "\nA=",
	};
	size_t n = 1 + rnd() % 24, i, len = 0;
	char *s = malloc(n * 8 + 1);

	if (s == NULL)
		abort();
	for (i = 0; i < n; i++) {
		const char *t = tok[rnd() % (sizeof(tok) / sizeof(tok[0]))];

		memcpy(s + len, t, strlen(t));
		len += strlen(t);
	}
	s[len] = '\0';
	return s;
}

static void
test_limits_and_errors(void)
{
	struct ak_dotenv *d = NULL;
	size_t bad = 99, i;
	char *big;

	/* Invalid UTF-8 and NUL bytes: refused whole, with the line. */
	CHECK_EQ(ak_dotenv_parse("A=1\nB=\xff\n", 8, &d, &bad), AK_ERR_BAD_FORMAT);
	CHECK_EQ(bad, 2);
	CHECK(d == NULL);
	CHECK_EQ(ak_dotenv_parse("A=1\0", 4, &d, &bad), AK_ERR_BAD_FORMAT);
	CHECK_EQ(ak_dotenv_parse("A=\xed\xa0\x80", 5, &d, &bad), AK_ERR_BAD_FORMAT); /* surrogate */
	CHECK_EQ(ak_dotenv_parse("A=\xc0\x80", 4, &d, &bad), AK_ERR_BAD_FORMAT);     /* overlong */
	/* The first unparsable statement's line; the rest still parses. */
	CHECK_EQ(ak_dotenv_parse("A=1\n\n  B c\nD=4\n=x\n", 18, &d, &bad), AK_OK);
	if (d == NULL)
		return;
	CHECK_EQ(bad, 3);
	CHECK_EQ(d->nbad, 2);
	CHECK_EQ(d->n, 2);
	CHECK_STR(ak_dotenv_get(d, "D")->value, "4");
	CHECK_EQ(ak_dotenv_get(d, "D")->line, 4);
	CHECK(ak_dotenv_get(d, "B") == NULL);
	ak_dotenv_free(d);
	d = NULL;
	/* Value spans, for --replace: quotes included, comments and blanks not. */
	{
		static const char in[] = "export K='v 1' # c\nP=plain  # c\nE=\nN\nK=\"x\ny\"\n";

		CHECK_EQ(ak_dotenv_parse(in, sizeof(in) - 1, &d, &bad), AK_OK);
		CHECK_EQ(bad, 0);
		CHECK_EQ(d->nb, 5);
		CHECK_EQ(d->n, 4);
		CHECK_EQ(d->b[0].entry, 0);
		CHECK(memcmp(in + d->b[0].val_off, "'v 1'", 5) == 0 && d->b[0].val_len == 5);
		CHECK(memcmp(in + d->b[1].val_off, "plain", 5) == 0 && d->b[1].val_len == 5);
		CHECK_EQ(d->b[2].val_len, 0);
		CHECK_EQ(d->b[2].has_value, 1);
		CHECK_EQ(d->b[3].has_value, 0);
		CHECK_EQ(d->b[4].entry, 0);
		CHECK_EQ(d->b[4].line, 5);
		CHECK(memcmp(in + d->b[4].val_off, "\"x\ny\"", 5) == 0 && d->b[4].val_len == 5);
		CHECK_STR(d->e[0].value, "x\ny");
		CHECK_EQ(d->e[0].line, 5);
		ak_dotenv_free(d);
		d = NULL;
	}
	/* Size and count limits. */
	big = malloc(AK_DOTENV_FILE_MAX + 2);
	if (big == NULL)
		abort();
	memset(big, 'x', AK_DOTENV_FILE_MAX + 1);
	CHECK_EQ(ak_dotenv_parse(big, AK_DOTENV_FILE_MAX + 1, &d, &bad), AK_ERR_TOO_LARGE);
	for (i = 0; i < AK_DOTENV_ENTRIES_MAX + 1; i++)
		memcpy(big + i * 4, "A=1\n", 4);
	CHECK_EQ(ak_dotenv_parse(big, i * 4, &d, &bad), AK_ERR_TOO_LARGE);
	CHECK_EQ(ak_dotenv_parse(big, (i - 1) * 4, &d, &bad), AK_OK);
	CHECK_EQ(d->n, 1);
	CHECK_EQ(d->nb, AK_DOTENV_ENTRIES_MAX);
	ak_dotenv_free(d);
	d = NULL;
	/* Many distinct names (the hash table grows). */
	{
		size_t len = 0;

		for (i = 0; i < 5000; i++)
			len += (size_t)sprintf(big + len, "V%zu=%zu\n", i, i * 7);
		CHECK_EQ(ak_dotenv_parse(big, len, &d, &bad), AK_OK);
		CHECK_EQ(d->n, 5000);
		CHECK_STR(ak_dotenv_get(d, "V4321")->value, "30247");
		ak_dotenv_free(d);
	}
	free(big);
	ak_dotenv_free(NULL);
}

static void
test_read_file(void)
{
	char path[256], *buf = NULL;
	size_t len = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/read.env", tmpdir);
	f = fopen(path, "w");
	fputs("A=1\n", f);
	fclose(f);
	CHECK_EQ(ak_file_load(path, 100, AK_FILE_SECURE, &buf, &len), AK_OK);
	CHECK_EQ(len, 4);
	CHECK_STR(buf, "A=1\n");
	ak_smem_free(buf);
	CHECK_EQ(ak_file_load(path, 3, AK_FILE_SECURE, &buf, &len), AK_ERR_TOO_LARGE);
	CHECK(buf == NULL);
	CHECK_EQ(ak_file_load("/nonexistent/x.env", 100, AK_FILE_SECURE, &buf, &len), AK_ERR_NOT_FOUND);
	CHECK_EQ(ak_file_load(tmpdir, 100, AK_FILE_SECURE, &buf, &len), AK_ERR_IO);
	unlink(path);
}

int
main(void)
{
	char **want_py, **rnd_in, label[64], cmd[128];
	struct ak_dotenv *d;
	size_t i, bad;
	cJSON *j;

	if (ak_smem_init() != 0 || mkdtemp(tmpdir) == NULL)
		return 1;

	/* 1. The table: our parse == the hand-written answer == python-dotenv's answer. */
	for (i = 0; i < NCASES; i++)
		write_case(i, cases[i].in);
	want_py = oracle(NCASES);
	for (i = 0; i < NCASES; i++) {
		d = NULL;
		snprintf(label, sizeof(label), "case %zu", i);
		CHECK_EQ(ak_dotenv_parse(cases[i].in, strlen(cases[i].in), &d, &bad), AK_OK);
		if (d == NULL)
			continue;
		j = cJSON_Parse(cases[i].want);
		t_checks++;
		if (!same(label, cases[i].in, d, j))
			t_failed++;
		cJSON_Delete(j);
		j = cJSON_Parse(want_py[i]);
		snprintf(label, sizeof(label), "case %zu vs python-dotenv", i);
		t_checks++;
		if (!same(label, cases[i].in, d, j))
			t_failed++;
		cJSON_Delete(j);
		free(want_py[i]);
		ak_dotenv_free(d);
	}
	free(want_py);

	/* 2. Random inputs from the grammar's pieces: our parse == python-dotenv's. */
	if ((rnd_in = calloc(NRANDOM, sizeof(*rnd_in))) == NULL)
		return 1;
	for (i = 0; i < NRANDOM; i++) {
		rnd_in[i] = random_input();
		write_case(i, rnd_in[i]);
	}
	want_py = oracle(NRANDOM);
	for (i = 0; i < NRANDOM; i++) {
		d = NULL;
		snprintf(label, sizeof(label), "random %zu", i);
		CHECK_EQ(ak_dotenv_parse(rnd_in[i], strlen(rnd_in[i]), &d, &bad), AK_OK);
		if (d != NULL) {
			j = cJSON_Parse(want_py[i]);
			t_checks++;
			if (!same(label, rnd_in[i], d, j))
				t_failed++;
			cJSON_Delete(j);
		}
		ak_dotenv_free(d);
		free(want_py[i]);
		free(rnd_in[i]);
	}
	free(want_py);
	free(rnd_in);

	test_limits_and_errors();
	test_read_file();

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
	T_DONE();
}
