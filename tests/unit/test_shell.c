/* test_shell.c - exports are injection-proof: values arrive byte-for-byte in the REAL shells.
 *
 * For a table of hostile values this writes the library's export lines to a file, has each shell
 * evaluate them the documented way (and by sourcing), then execs this same binary with --dump,
 * which writes every AKV_* variable it inherited, length-prefixed, to a file we compare byte for
 * byte. Unset lines must remove both an inherited variable and one exported earlier in the file.
 * .env files go through the python-dotenv oracle (Debian's /usr/bin/python3), JSON through cJSON.
 * PowerShell and cmd.exe do not exist here: their exact bytes are checked instead.
 * A missing shell is a failure (CI installs them); ksh is used when /usr/bin/ksh exists.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ak_buf.h"
#include "ak_err.h"
#include "ak_shell.h"
#include "t.h"

extern char **environ;

#define NVAL_MAX 64
#define BIG (60 * 1024)

struct val {
	const char *label;
	char *v;
};

static struct val vals[NVAL_MAX];
static int nvals;
static char tmpdir[] = "/tmp/akshell-test.XXXXXX";
static char self[PATH_MAX];

static void
add(const char *label, const char *v)
{
	vals[nvals].label = label;
	if ((vals[nvals].v = strdup(v)) == NULL)
		abort();
	nvals++;
}

static void
make_values(void)
{
	char all[256], rev[256], ascii[256], big[BIG + 1];
	static const char pat[] = "ab'c\"d$e`f\\g!h\ni\rj\tk%l^m&n|o<p>q(r)s{t}u*v?w[x]y~z;# \x01\x7f";
	size_t i, j;

	add("quote", "'");
	add("dquote", "\"");
	add("dollar", "$");
	add("backtick", "`");
	add("backslash", "\\");
	add("bang", "!");
	add("newline", "\n");
	add("cr", "\r");
	add("tab", "\t");
	add("cmdsubst", "$(id)");
	add("backticks", "`id`");
	add("param", "${HOME}");
	add("percent", "%PATH%");
	add("bangbang", "!!");
	add("bang-dollar", "x!$y !-1 !#");
	add("dash", "-n");
	add("dashdash", "--");
	add("trailing-spaces", "value  ");
	add("leading-space", " value");
	add("empty", "");
	add("trailing-backslash", "a\\");
	add("backslash-quote", "\\'");
	add("backslash-newline", "\\\n");
	add("quote-newline-bang", "'\n!'\n");
	add("two-quotes", "a''b");
	add("crlf", "line1\r\nline2\r\n");
	add("newlines", "\n\n\nx\n\n");
	add("glob", "*?[ab]{c,d}~/ #x ;&|<>()");
	add("unicode", "h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80");
	add("unicode-quotes", "\xe2\x80\x98x\xe2\x80\x99y\xe2\x80\x9az\xe2\x80\x9b'");
	add("fish-private-use", "\xef\x98\x80\xef\x9b\xbf\xef\xb7\x90");
	add("carets", "^^^&^");
	/* fish reads \' and \\ as escapes inside '...': these would run `touch` there if a backslash
	 * were ever written inside the quotes (fish sources sh output when started from a bash login). */
	add("fish-escape-quote", "\\'; touch akv-ran; #");
	add("fish-escape-backslash", "\\\\'; touch akv-ran; #");
	add("fish-escape-nl", "\\'\ntouch akv-ran\n#");
	for (i = 0, j = 0; i < 127; i++)
		if (i + 1 != '\r')
			ascii[j++] = (char)(i + 1);
	ascii[j] = '\0';
	add("bytes-01-7f-but-cr", ascii);
	for (i = 0; i < 255; i++) {
		all[i] = (char)(i + 1);
		rev[i] = (char)(255 - i);
	}
	all[255] = rev[255] = '\0';
	add("bytes-01-ff", all);
	add("bytes-ff-01", rev);
	for (i = 0; i < BIG; i++)
		big[i] = pat[i % (sizeof(pat) - 1)];
	big[BIG] = '\0';
	add("60KiB", big);
	/* 60 KiB with every byte value on few long lines: invalid UTF-8 across tcsh's 4 KiB chunks. */
	for (i = 0; i < BIG; i++)
		big[i] = (char)(i % 20000 == 19999 ? '\n' : 1 + (i * 7) % 255);
	for (i = 0; i < BIG; i++)
		if (big[i] == '\n' && i % 20000 != 19999)
			big[i] = '\xff';
	add("60KiB-high", big);
}

static int
has_nl(const char *v)
{
	return strchr(v, '\n') != NULL;
}

/* ---- the dumper: runs as the last command of each shell ---- */

static int
dump(const char *path)
{
	FILE *f;
	char **e;
	const char *eq;

	if ((f = fopen(path, "wb")) == NULL)
		return 1;
	for (e = environ; *e != NULL; e++) {
		if (strncmp(*e, "AKV_", 4) != 0 || (eq = strchr(*e, '=')) == NULL)
			continue;
		fprintf(f, "%.*s %zu\n", (int)(eq - *e), *e, strlen(eq + 1));
		fwrite(eq + 1, 1, strlen(eq + 1), f);
		fputc('\n', f);
	}
	return fclose(f) != 0;
}

/* ---- file helpers ---- */

static char *
path_in(const char *name)
{
	static char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/%s", tmpdir, name);
	return p;
}

static int
write_file(const char *name, const void *data, size_t len)
{
	FILE *f;

	if ((f = fopen(path_in(name), "wb")) == NULL)
		return -1;
	if (fwrite(data, 1, len, f) != len) {
		fclose(f);
		return -1;
	}
	return fclose(f);
}

static char *
read_file(const char *name, size_t *len)
{
	FILE *f;
	char *d = NULL;
	long n;

	if ((f = fopen(path_in(name), "rb")) == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (d = malloc((size_t)n + 1)) != NULL) {
		*len = fread(d, 1, (size_t)n, f);
		d[*len] = '\0';
	}
	fclose(f);
	return d;
}

/* Find "NAME LEN\n<bytes>\n" in a dump; returns the bytes (not NUL-terminated) or NULL. */
static const char *
dump_find(const char *d, size_t dlen, const char *name, size_t *vlen)
{
	const char *p = d, *end = d + dlen, *sp;
	char *ep;
	size_t n;

	while (p < end) {
		if ((sp = memchr(p, ' ', (size_t)(end - p))) == NULL)
			return NULL;
		n = strtoul(sp + 1, &ep, 10);
		if (*ep != '\n' || (size_t)(end - (ep + 1)) < n + 1)
			return NULL;
		if ((size_t)(sp - p) == strlen(name) && memcmp(p, name, (size_t)(sp - p)) == 0) {
			*vlen = n;
			return ep + 1;
		}
		p = ep + 1 + n + 1;
	}
	return NULL;
}

/* ---- building the script a shell evaluates ---- */

#define SKIP_NL 1 /* leave out values with a newline (a csh that is not tcsh >= 6.23) */

/* Exports of every value, then an export + unset of AKV_GONE2 and an unset of the inherited
 * AKV_GONE1. skip[i] is set for values not written (unsupported, or filtered by flags). */
static int
make_script(enum ak_shell sh, int flags, char *skip)
{
	struct ak_buf *b;
	char name[32];
	enum ak_err r;
	int i, rc = -1;

	if ((b = ak_buf_new(4 * 1024 * 1024)) == NULL)
		return -1;
	for (i = 0; i < nvals; i++) {
		skip[i] = 0;
		if ((flags & SKIP_NL) && has_nl(vals[i].v)) {
			skip[i] = 1;
			continue;
		}
		snprintf(name, sizeof(name), "AKV_%d", i);
		r = ak_shell_export(b, sh, name, vals[i].v);
		if (r == AK_ERR_UNSUPPORTED) {
			skip[i] = 1;
			continue;
		}
		CHECK_EQ(r, AK_OK);
	}
	CHECK_EQ(ak_shell_export(b, sh, "AKV_GONE2", "set, then unset"), AK_OK);
	CHECK_EQ(ak_shell_unset(b, sh, "AKV_GONE2"), AK_OK);
	CHECK_EQ(ak_shell_unset(b, sh, "AKV_GONE1"), AK_OK);
	if (write_file("f", ak_buf_ptr(b), ak_buf_len(b)) == 0)
		rc = 0;
	ak_buf_free(b);
	return rc;
}

/* ---- running a shell ---- */

static int
run(char *const argv[], const char *stdin_name, const char *lc_all)
{
	pid_t pid;
	int st, fd;

	unlink(path_in("out"));
	if ((pid = fork()) < 0)
		return -1;
	if (pid == 0) {
		if (chdir(tmpdir) != 0)
			_exit(126);
		fd = open(stdin_name != NULL ? stdin_name : "/dev/null", O_RDONLY);
		if (fd < 0 || dup2(fd, 0) < 0)
			_exit(126);
		/* Interactive shells print prompts: keep both quiet; verify() shows "err" on failure. */
		if ((fd = open("/dev/null", O_WRONLY)) < 0 || dup2(fd, 1) < 0)
			_exit(126);
		if ((fd = open("err", O_WRONLY | O_CREAT | O_TRUNC, 0600)) < 0 || dup2(fd, 2) < 0)
			_exit(126);
		if (lc_all != NULL)
			setenv("LC_ALL", lc_all, 1);
		alarm(30); /* survives exec: a hung shell dies instead of hanging the suite */
		execv(argv[0], argv);
		fprintf(stderr, "test_shell: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	if (waitpid(pid, &st, 0) < 0)
		return -1;
	return st;
}

static int nruns;

/* The shell's stderr, indented, at most 2 KiB. */
static void
show_err(void)
{
	char *e;
	size_t len = 0;

	if ((e = read_file("err", &len)) == NULL)
		return;
	if (len > 2048)
		e[2048] = '\0';
	fprintf(stderr, "  stderr: %s\n", e);
	free(e);
}

/* Compare the dump against the values written; report the first differing byte. */
static void
verify(const char *label, const char *skip, int want_gone)
{
	char *d, name[32];
	const char *got;
	size_t dlen = 0, glen, i, j;
	int ok = 1;

	if ((d = read_file("out", &dlen)) == NULL) {
		CHECK(!"shell produced no dump");
		fprintf(stderr, "FAIL %s: no output (did the shell fail?)\n", label);
		show_err();
		return;
	}
	for (i = 0; i < (size_t)nvals; i++) {
		if (skip[i])
			continue;
		snprintf(name, sizeof(name), "AKV_%zu", i);
		got = dump_find(d, dlen, name, &glen);
		t_checks++;
		if (got == NULL) {
			fprintf(stderr, "  %s: value '%s' is missing\n", label, vals[i].label);
			t_failed++;
			ok = 0;
			continue;
		}
		if (glen == strlen(vals[i].v) && memcmp(got, vals[i].v, glen) == 0)
			continue;
		for (j = 0; j < glen && vals[i].v[j] == got[j]; j++)
			;
		fprintf(stderr, "  %s: value '%s' differs at byte %zu (len %zu, expected %zu)\n", label,
		    vals[i].label, j, glen, strlen(vals[i].v));
		t_failed++;
		ok = 0;
	}
	/* want_gone: 1 = the inherited AKV_GONE1 is gone, 2 = also AKV_GONE2 (exported, then unset). */
	if (want_gone >= 1)
		CHECK(dump_find(d, dlen, "AKV_GONE1", &glen) == NULL);
	if (want_gone >= 2)
		CHECK(dump_find(d, dlen, "AKV_GONE2", &glen) == NULL);
	/* A value that escaped its quoting would have created akv-ran. */
	if (access(path_in("akv-ran"), F_OK) == 0) {
		fprintf(stderr, "  %s: a value ran as a command\n", label);
		t_checks++;
		t_failed++;
		ok = 0;
		unlink(path_in("akv-ran"));
	}
	fprintf(stderr, "%s %s\n", ok ? "ok  " : "FAIL", label);
	nruns++;
	free(d);
	if (!ok)
		show_err();
}

static int
exists(const char *p)
{
	return access(p, X_OK) == 0;
}

/* One evaluation of the script by one shell: sh -c CMD, or an interactive shell fed CMD on stdin. */
static void
shell_case(const char *label, enum ak_shell sh, int flags, char *const argv[], const char *stdin_text,
    const char *lc_all)
{
	char skip[NVAL_MAX], in[PATH_MAX];
	char full[128];
	int st;

	if (!exists(argv[0])) {
		fprintf(stderr, "test_shell: %s is not installed (CI installs it)\n", argv[0]);
		CHECK(!"shell missing");
		return;
	}
	snprintf(full, sizeof(full), "%s%s%s", label, lc_all ? " LC_ALL=" : "", lc_all ? lc_all : "");
	if (make_script(sh, flags, skip) != 0) {
		CHECK(!"cannot write the script");
		return;
	}
	if (stdin_text != NULL && write_file("in", stdin_text, strlen(stdin_text)) != 0) {
		CHECK(!"cannot write stdin");
		return;
	}
	snprintf(in, sizeof(in), "%s", path_in("in")); /* path_in's buffer is reused by run() */
	st = run(argv, stdin_text != NULL ? in : NULL, lc_all);
	if (st == -1)
		CHECK(!"fork/wait failed");
	/* dotenv has no unset: only the inherited variable is checked to be absent there. */
	verify(full, skip, sh == AK_SHELL_DOTENV ? 1 : 2);
}

#define SH_EVAL "eval \"$(cat f)\"; exec \"$AKT_SELF\" --dump out"
#define SH_SOURCE ". ./f; exec \"$AKT_SELF\" --dump out"

static void
test_sh_family(void)
{
	/* -f: zsh without startup files (bash and dash read none with -c). */
	static const char *const shells[][2] = { { "/usr/bin/bash", "-c" }, { "/usr/bin/dash", "-c" },
		{ "/usr/bin/zsh", "-fc" }, { "/usr/bin/ksh", "-c" } };
	size_t i;
	char label[64];

	for (i = 0; i < sizeof(shells) / sizeof(shells[0]); i++) {
		const char *p = shells[i][0];
		char *eval_argv[] = { (char *)p, (char *)shells[i][1], SH_EVAL, NULL };
		char *src_argv[] = { (char *)p, (char *)shells[i][1], SH_SOURCE, NULL };

		if (strcmp(p, "/usr/bin/ksh") == 0 && !exists(p))
			continue; /* optional: not in the CI package list */
		snprintf(label, sizeof(label), "%s eval \"$(...)\"", p);
		shell_case(label, AK_SHELL_SH, 0, eval_argv, NULL, NULL);
		snprintf(label, sizeof(label), "%s . file", p);
		shell_case(label, AK_SHELL_SH, 0, src_argv, NULL, NULL);
	}
	{
		char *bash_utf8[] = { "/usr/bin/bash", "--norc", "--noprofile", "-c", SH_EVAL, NULL };
		char *zsh_rc[] = { "/usr/bin/zsh", "-f", "-o", "rcquotes", "-c", SH_EVAL, NULL };
		char *zsh_i[] = { "/usr/bin/zsh", "-f", "-i", NULL };
		char *bash_i[] = { "/usr/bin/bash", "--norc", "--noprofile", "-i", NULL };

		shell_case("bash eval \"$(...)\"", AK_SHELL_SH, 0, bash_utf8, NULL, "C.UTF-8");
		shell_case("zsh -o rcquotes eval \"$(...)\"", AK_SHELL_SH, 0, zsh_rc, NULL, "C.UTF-8");
		/* Interactive shells have history expansion on: ! must still be inert. */
		shell_case("bash -i eval \"$(...)\"", AK_SHELL_SH, 0, bash_i,
		    SH_EVAL "\n", NULL);
		shell_case("zsh -i eval \"$(...)\"", AK_SHELL_SH, 0, zsh_i, SH_EVAL "\n", NULL);
	}
}

static void
test_fish(void)
{
	char *src[] = { "/usr/bin/fish", "--no-config", "-c", "source f; exec $AKT_SELF --dump out", NULL };
	char *pipe[] = { "/usr/bin/fish", "--no-config", "-c", "cat f | source; exec $AKT_SELF --dump out", NULL };
	char *ev[] = { "/usr/bin/fish", "--no-config", "-c", "eval (cat f); exec $AKT_SELF --dump out", NULL };

	shell_case("fish source file", AK_SHELL_FISH, 0, src, NULL, "C");
	shell_case("fish source file", AK_SHELL_FISH, 0, src, NULL, "C.UTF-8");
	shell_case("fish ... | source", AK_SHELL_FISH, 0, pipe, NULL, "C.UTF-8");
	shell_case("fish eval (...)", AK_SHELL_FISH, 0, ev, NULL, "C.UTF-8");
}

/* sh-syntax output sourced by fish (a fish started from a bash login inherits it that way): nothing
 * runs, and each value fish can carry arrives exactly. fish's `export` splits NAME=VALUE through a
 * command substitution, which splits at newlines, so values holding one are only checked to be
 * inert; `unset` is no fish command, so the unset lines only fail. */
static void
test_fish_sh_output(void)
{
	char *src[] = { "/usr/bin/fish", "--no-config", "-c", "source f; exec $AKT_SELF --dump out", NULL };
	char *pipe[] = { "/usr/bin/fish", "--no-config", "-c", "cat f | source; exec $AKT_SELF --dump out", NULL };
	char *const *argvs[] = { src, pipe };
	const char *labels[] = { "fish source (sh output)", "fish ... | source (sh output)" };
	char skip[NVAL_MAX];
	size_t k;
	int i;

	if (!exists(src[0])) {
		CHECK(!"fish missing");
		return;
	}
	for (k = 0; k < 2; k++) {
		if (make_script(AK_SHELL_SH, 0, skip) != 0) {
			CHECK(!"cannot write the script");
			return;
		}
		if (run(argvs[k], NULL, "C.UTF-8") == -1)
			CHECK(!"fork/wait failed");
		for (i = 0; i < nvals; i++)
			if (has_nl(vals[i].v))
				skip[i] = 1;
		verify(labels[k], skip, 0);
	}
}

#define CSH_EVAL "eval \"`cat f`\"; $AKT_SELF:q --dump out"
#define CSH_SOURCE "source f; $AKT_SELF:q --dump out"

static void
test_csh(void)
{
	char *ev[] = { "/usr/bin/tcsh", "-f", "-c", CSH_EVAL, NULL };
	char *src[] = { "/usr/bin/tcsh", "-f", "-c", CSH_SOURCE, NULL };
	char *inter[] = { "/usr/bin/tcsh", "-f", "-i", NULL };
	char real[PATH_MAX];
	int flags = 0;

	shell_case("tcsh eval \"`...`\"", AK_SHELL_CSH, 0, ev, NULL, "C");
	shell_case("tcsh eval \"`...`\"", AK_SHELL_CSH, 0, ev, NULL, "C.UTF-8");
	shell_case("tcsh source file", AK_SHELL_CSH, 0, src, NULL, "C.UTF-8");
	/* An interactive tcsh applies history substitution (!) to eval'd and sourced text too. */
	shell_case("tcsh -i eval \"`...`\"", AK_SHELL_CSH, 0, inter, CSH_EVAL "\nexit\n", "C.UTF-8");
	shell_case("tcsh -i source file", AK_SHELL_CSH, 0, inter, CSH_SOURCE "\nexit\n", "C.UTF-8");

	/* /bin/csh: tcsh on Debian. BSD csh has no $'...', so a newline cannot be carried there. */
	if (exists("/bin/csh")) {
		char *cev[] = { "/bin/csh", "-f", "-c", CSH_EVAL, NULL };
		char *csrc[] = { "/bin/csh", "-f", "-c", CSH_SOURCE, NULL };

		if (realpath("/bin/csh", real) == NULL || strstr(real, "tcsh") == NULL)
			flags = SKIP_NL;
		shell_case("/bin/csh eval \"`...`\"", AK_SHELL_CSH, flags, cev, NULL, "C.UTF-8");
		shell_case("/bin/csh source file", AK_SHELL_CSH, flags, csrc, NULL, "C.UTF-8");
	}
}

/* python-dotenv is the reference parser; it writes the same dump format as --dump. */
static void
test_dotenv(void)
{
	static const char prog[] =
	    "import sys\n"
	    "from dotenv import dotenv_values\n"
	    "d = dotenv_values('f', interpolate=False)\n"
	    "with open('out', 'wb') as o:\n"
	    "    for k, v in d.items():\n"
	    "        b = v.encode('utf-8')\n"
	    "        o.write(k.encode() + b' ' + str(len(b)).encode() + b'\\n' + b + b'\\n')\n";
	char *argv[] = { "/usr/bin/python3", "-c", (char *)prog, NULL };
	char skip[NVAL_MAX];
	int i;

	shell_case("python-dotenv dotenv_values", AK_SHELL_DOTENV, 0, argv, NULL, NULL);
	/* Exactly the values holding CR or invalid UTF-8 are refused. */
	make_script(AK_SHELL_DOTENV, 0, skip);
	for (i = 0; i < nvals; i++) {
		size_t len = strlen(vals[i].v);
		int want = strchr(vals[i].v, '\r') != NULL || (len > 0 && vals[i].v[len - 1] == '\\') ||
		    strcmp(vals[i].label, "bytes-01-ff") == 0 || strcmp(vals[i].label, "bytes-ff-01") == 0;
		t_checks++;
		if (skip[i] != want) {
			t_failed++;
			fprintf(stderr, "dotenv: '%s' skip=%d, expected %d\n", vals[i].label, skip[i], want);
		}
	}
}

/* ---- exact bytes ---- */

static void
expect(enum ak_shell sh, const char *name, const char *value, const char *want)
{
	struct ak_buf *b = ak_buf_new(1 << 20);
	char *got;

	CHECK_EQ(ak_shell_export(b, sh, name, value), AK_OK);
	got = strndup((const char *)ak_buf_ptr(b), ak_buf_len(b));
	CHECK_STR(got, want);
	free(got);
	ak_buf_free(b);
}

static void
expect_unset(enum ak_shell sh, const char *want)
{
	struct ak_buf *b = ak_buf_new(1024);
	char *got;

	CHECK_EQ(ak_shell_unset(b, sh, "K"), AK_OK);
	got = strndup((const char *)ak_buf_ptr(b), ak_buf_len(b));
	CHECK_STR(got, want);
	free(got);
	ak_buf_free(b);
}

static void
expect_quote(enum ak_shell sh, const char *value, const char *want)
{
	struct ak_buf *b = ak_buf_new(1024);
	char *got;

	CHECK_EQ(ak_shell_quote(b, sh, value), AK_OK);
	got = strndup((const char *)ak_buf_ptr(b), ak_buf_len(b));
	CHECK_STR(got, want);
	free(got);
	ak_buf_free(b);
}

static void
expect_err(enum ak_shell sh, const char *name, const char *value, enum ak_err want)
{
	struct ak_buf *b = ak_buf_new(1024);

	CHECK_EQ(ak_buf_put(b, "x", 1), AK_OK);
	CHECK_EQ(ak_shell_export(b, sh, name, value), want);
	CHECK_EQ(ak_buf_len(b), 1); /* nothing appended on failure */
	ak_buf_free(b);
}

static void
test_exact(void)
{
	/* sh */
	expect(AK_SHELL_SH, "K", "v", "export K='v';\n");
	expect(AK_SHELL_SH, "K", "", "export K='';\n");
	expect(AK_SHELL_SH, "K", "it's $x\n", "export K='it'\\''s $x\n';\n");
	expect(AK_SHELL_SH, "K", "''", "export K=\\'\\';\n");
	expect(AK_SHELL_SH, "K", "\\'; echo X; #", "export K=\\\\\\''; echo X; #';\n");
	expect(AK_SHELL_SH, "K", "a\\b\\", "export K='a'\\\\'b'\\\\;\n");
	expect_unset(AK_SHELL_SH, "unset K;\n");
	expect_quote(AK_SHELL_SH, "/tmp/a b/agent.sock", "'/tmp/a b/agent.sock'");
	/* fish */
	expect(AK_SHELL_FISH, "K", "a'b\\c\nd", "set -gx K 'a'\\''b'\\\\'c'\\n'd';\n");
	expect(AK_SHELL_FISH, "K", "", "set -gx K '';\n");
	expect_unset(AK_SHELL_FISH, "set -e K;\n");
	/* csh */
	expect(AK_SHELL_CSH, "K", "a'b!c\nd$`\\", "setenv K 'a'\\''b'\\!'c'$'\\n''d$`\\';\n");
	expect(AK_SHELL_CSH, "K", "\n", "setenv K $'\\n';\n");
	expect(AK_SHELL_CSH, "K", "it's\n-\xc3\xa9!\n",
	    "setenv K 'it'\\''s'$'\\n'\"`\\printf '\\055\\303\\251\\041'`\"$'\\n';\n");
	expect_unset(AK_SHELL_CSH, "unsetenv K;\n");
	/* PowerShell */
	expect(AK_SHELL_POWERSHELL, "K", "it's $x `y", "$env:K = 'it''s $x `y'\n");
	expect(AK_SHELL_POWERSHELL, "K", "\xe2\x80\x98q\xe2\x80\x99\xe2\x80\x9a\xe2\x80\x9b\xe2\x80\x9c",
	    "$env:K = '\xe2\x80\x98\xe2\x80\x98q\xe2\x80\x99\xe2\x80\x99\xe2\x80\x9a\xe2\x80\x9a"
	    "\xe2\x80\x9b\xe2\x80\x9b\xe2\x80\x9c'\n");
	expect(AK_SHELL_POWERSHELL, "K", "a\nb\r\x1b\tc",
	    "$env:K = ('a' + [char]0x0a + 'b' + [char]0x0d + '' + [char]0x1b + '\tc')\n");
	expect(AK_SHELL_POWERSHELL, "K", "\n", "$env:K = ('' + [char]0x0a + '')\n");
	expect_unset(AK_SHELL_POWERSHELL, "Remove-Item Env:K -ErrorAction SilentlyContinue\n");
	expect_err(AK_SHELL_POWERSHELL, "K", "\xff", AK_ERR_UNSUPPORTED);
	expect_err(AK_SHELL_POWERSHELL, "K", "\xe2\x80", AK_ERR_UNSUPPORTED);
	expect_err(AK_SHELL_POWERSHELL, "K", "\xed\xa0\x80", AK_ERR_UNSUPPORTED); /* surrogate */
	expect_err(AK_SHELL_POWERSHELL, "K", "\xc0\xaf", AK_ERR_UNSUPPORTED);     /* overlong */
	/* cmd */
	expect(AK_SHELL_CMD, "K", "a^b&c|d<e>f(g)h\"i%PATH%j!k =",
	    "@set K=a^^b^&c^|d^<e^>f^(g^)h^\"i%%PATH%%j!k =\r\n");
	expect(AK_SHELL_CMD, "K", "", "@set K=\r\n");
	expect_unset(AK_SHELL_CMD, "@set K=\r\n");
	expect_err(AK_SHELL_CMD, "K", "a\nb", AK_ERR_UNSUPPORTED);
	expect_err(AK_SHELL_CMD, "K", "a\rb", AK_ERR_UNSUPPORTED);
	expect_err(AK_SHELL_CMD, "K", "a\x1a", AK_ERR_UNSUPPORTED);
	expect_err(AK_SHELL_CMD, "K", "\x80", AK_ERR_UNSUPPORTED);
	/* dotenv */
	expect(AK_SHELL_DOTENV, "K", "a'b\\c\n${X}", "K='a\\'b\\\\c\n${X}'\n");
	expect_unset(AK_SHELL_DOTENV, "");
	expect_err(AK_SHELL_DOTENV, "K", "a\rb", AK_ERR_UNSUPPORTED);
	expect_err(AK_SHELL_DOTENV, "K", "\xfe", AK_ERR_UNSUPPORTED);
	expect_err(AK_SHELL_DOTENV, "K", "a\\", AK_ERR_UNSUPPORTED);
	expect(AK_SHELL_DOTENV, "K", "\\a\\'", "K='\\\\a\\\\\\''\n");
	/* names are emitted unquoted: re-checked */
	expect_err(AK_SHELL_SH, "A;id", "v", AK_ERR_BAD_VARNAME);
	expect_err(AK_SHELL_SH, "1A", "v", AK_ERR_BAD_VARNAME);
	expect_err(AK_SHELL_SH, "", "v", AK_ERR_BAD_VARNAME);
	expect_err(AK_SHELL_SH, "K", NULL, AK_ERR_INVALID);
	expect_err((enum ak_shell)99, "K", "v", AK_ERR_INVALID);
	{
		struct ak_buf *b = ak_buf_new(1024);

		CHECK_EQ(ak_shell_unset(b, AK_SHELL_FISH, "A B"), AK_ERR_BAD_VARNAME);
		CHECK_EQ(ak_buf_len(b), 0);
		ak_buf_free(b);
	}
}

static void
test_json(void)
{
	struct ak_buf *b = ak_buf_new(1 << 20);
	cJSON *doc, *it;
	char *s, name[32];
	int i;

	CHECK_EQ(ak_shell_json_begin(b), AK_OK);
	CHECK_EQ(ak_shell_json_end(b), AK_OK);
	s = strndup((const char *)ak_buf_ptr(b), ak_buf_len(b));
	CHECK_STR(s, "{}\n");
	free(s);
	ak_buf_reset(b);
	CHECK_EQ(ak_shell_json_begin(b), AK_OK);
	CHECK_EQ(ak_shell_export(b, AK_SHELL_JSON, "A", "q\"b\\n\n\t\x01\x7f\xc3\xa9"), AK_OK);
	CHECK_EQ(ak_shell_unset(b, AK_SHELL_JSON, "B"), AK_OK);
	CHECK_EQ(ak_shell_export(b, AK_SHELL_JSON, "C", ""), AK_OK);
	CHECK_EQ(ak_shell_json_end(b), AK_OK);
	s = strndup((const char *)ak_buf_ptr(b), ak_buf_len(b));
	CHECK_STR(s, "{\"A\":\"q\\\"b\\\\n\\n\\t\\u0001\x7f\xc3\xa9\",\"C\":\"\"}\n");
	free(s);

	/* Every hostile value survives cJSON's parser. */
	ak_buf_reset(b);
	CHECK_EQ(ak_shell_json_begin(b), AK_OK);
	for (i = 0; i < nvals; i++) {
		snprintf(name, sizeof(name), "AKV_%d", i);
		CHECK_EQ(ak_shell_export(b, AK_SHELL_JSON, name, vals[i].v), AK_OK);
	}
	CHECK_EQ(ak_shell_json_end(b), AK_OK);
	s = strndup((const char *)ak_buf_ptr(b), ak_buf_len(b));
	doc = cJSON_Parse(s);
	CHECK(doc != NULL);
	for (i = 0; doc != NULL && i < nvals; i++) {
		snprintf(name, sizeof(name), "AKV_%d", i);
		it = cJSON_GetObjectItemCaseSensitive(doc, name);
		CHECK(cJSON_IsString(it));
		if (cJSON_IsString(it) && strcmp(it->valuestring, vals[i].v) != 0) {
			fprintf(stderr, "json: value '%s' differs\n", vals[i].label);
			CHECK(!"json round trip");
		}
	}
	cJSON_Delete(doc);
	free(s);
	ak_buf_free(b);
}

static void
test_misc(void)
{
	static const struct {
		const char *name;
		enum ak_shell sh;
	} names[] = {
		{ "sh", AK_SHELL_SH }, { "bash", AK_SHELL_SH }, { "zsh", AK_SHELL_SH }, { "dash", AK_SHELL_SH },
		{ "ksh", AK_SHELL_SH }, { "fish", AK_SHELL_FISH }, { "csh", AK_SHELL_CSH },
		{ "tcsh", AK_SHELL_CSH }, { "powershell", AK_SHELL_POWERSHELL },
		{ "pwsh", AK_SHELL_POWERSHELL }, { "cmd", AK_SHELL_CMD }, { "dotenv", AK_SHELL_DOTENV },
		{ "json", AK_SHELL_JSON },
	};
	static const struct {
		const char *shell;
		enum ak_shell sh;
	} envs[] = {
		{ "/bin/tcsh", AK_SHELL_CSH }, { "/bin/csh", AK_SHELL_CSH }, { "/usr/bin/bsd-csh", AK_SHELL_CSH },
		{ "/usr/bin/fish", AK_SHELL_FISH }, { "/opt/microsoft/powershell/7/pwsh", AK_SHELL_POWERSHELL },
		{ "powershell", AK_SHELL_POWERSHELL }, { "/bin/bash", AK_SHELL_SH }, { "/bin/zsh", AK_SHELL_SH },
		{ "/usr/bin/fish-not", AK_SHELL_SH }, { "", AK_SHELL_SH },
	};
	struct ak_buf *b;
	enum ak_shell sh;
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		sh = AK_SHELL_JSON;
		CHECK_EQ(ak_shell_parse(names[i].name, &sh), AK_OK);
		CHECK_EQ(sh, names[i].sh);
	}
	CHECK_EQ(ak_shell_parse("Bash", &sh), AK_ERR_INVALID);
	CHECK_EQ(ak_shell_parse("", &sh), AK_ERR_INVALID);
	CHECK_EQ(ak_shell_parse(NULL, &sh), AK_ERR_INVALID);
	for (i = 0; i < sizeof(envs) / sizeof(envs[0]); i++) {
		setenv("SHELL", envs[i].shell, 1);
		CHECK_EQ(ak_shell_from_env(), envs[i].sh);
	}
	unsetenv("SHELL");
	CHECK_EQ(ak_shell_from_env(), AK_SHELL_SH);

	/* Over the buffer's cap: AK_ERR_TOO_LARGE and the buffer is left as it was. */
	b = ak_buf_new(16);
	CHECK_EQ(ak_buf_put(b, "abc", 3), AK_OK);
	CHECK_EQ(ak_shell_export(b, AK_SHELL_SH, "K", "0123456789"), AK_ERR_TOO_LARGE);
	CHECK_EQ(ak_buf_len(b), 3);
	CHECK_EQ(ak_shell_quote(b, AK_SHELL_CSH, "!!!!!!!!!!!!"), AK_ERR_TOO_LARGE);
	CHECK_EQ(ak_buf_len(b), 3);
	ak_buf_free(b);
}

static void
cleanup(void)
{
	char *names[] = { "f", "in", "out", "err", "akv-ran" };
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		unlink(path_in(names[i]));
	rmdir(tmpdir);
}

int
main(int argc, char **argv)
{
	ssize_t n;

	if (argc == 3 && strcmp(argv[1], "--dump") == 0)
		return dump(argv[2]);

	make_values();
	test_exact();
	test_json();
	test_misc();

	if ((n = readlink("/proc/self/exe", self, sizeof(self) - 1)) <= 0) {
		CHECK(!"readlink /proc/self/exe");
		T_DONE();
	}
	self[n] = '\0';
	if (mkdtemp(tmpdir) == NULL) {
		CHECK(!"mkdtemp");
		T_DONE();
	}
	setenv("AKT_SELF", self, 1);
	setenv("AKV_GONE1", "inherited, must be unset", 1);
	test_sh_family();
	test_fish();
	test_fish_sh_output();
	test_csh();
	test_dotenv();
	cleanup();
	fprintf(stderr, "%d shell runs\n", nruns);
	T_DONE();
}
