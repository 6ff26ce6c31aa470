/* test_util.c - names, durations, redaction, time; and the path helpers (ak_path). */
#include <sys/stat.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ak_path.h"
#include "ak_util.h"
#include "t.h"

static void
test_names(void)
{
	static const struct { const char *s; int ok; } names[] = {
		{ "a", 1 }, { "work", 1 }, { "Work-1.prod_2", 1 }, { "...", 1 }, { ".a", 1 }, { "-x", 1 },
		{ "", 0 }, { ".", 0 }, { "..", 0 }, { "a/b", 0 }, { "a b", 0 }, { " a", 0 }, { "a\n", 0 },
		{ "caf\xc3\xa9", 0 }, { "a:b", 0 }, { "a$b", 0 }, { "a\\b", 0 },
	};
	static const struct { const char *s; int ok; } vars[] = {
		{ "A", 1 }, { "_", 1 }, { "ANTHROPIC_API_KEY", 1 }, { "a1_b2", 1 }, { "_9", 1 },
		{ "", 0 }, { "1A", 0 }, { "A-B", 0 }, { "A B", 0 }, { "A=B", 0 }, { "A.B", 0 },
		{ "\xc3\x89T\xc3\x89", 0 }, { "A\xc3\xa9", 0 },
	};
	char s[200];
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if ((ak_name_check(names[i].s) == AK_OK) != names[i].ok) {
			t_failed++;
			fprintf(stderr, "name \"%s\": expected %s\n", names[i].s, names[i].ok ? "ok" : "bad");
		}
	t_checks++;
	CHECK_EQ(ak_name_check(NULL), AK_ERR_BAD_NAME);
	CHECK_EQ(ak_name_check("x y"), AK_ERR_BAD_NAME);
	memset(s, 'n', 64);
	s[64] = '\0';
	CHECK_EQ(ak_name_check(s), AK_OK);
	s[64] = 'n';
	s[65] = '\0';
	CHECK_EQ(ak_name_check(s), AK_ERR_BAD_NAME);

	for (i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		if ((ak_varname_check(vars[i].s) == AK_OK) != vars[i].ok) {
			t_failed++;
			fprintf(stderr, "varname \"%s\": expected %s\n", vars[i].s, vars[i].ok ? "ok" : "bad");
		}
	t_checks++;
	CHECK_EQ(ak_varname_check(NULL), AK_ERR_BAD_VARNAME);
	memset(s, 'V', 128);
	s[128] = '\0';
	CHECK_EQ(ak_varname_check(s), AK_OK);
	s[128] = 'V';
	s[129] = '\0';
	CHECK_EQ(ak_varname_check(s), AK_ERR_BAD_VARNAME);
}

static void
test_durations(void)
{
	static const struct { const char *s; long long secs; } table[] = {
		{ "0", 0 }, { "00", 0 }, { "1", 1 }, { "90", 90 }, { "90s", 90 }, { "30m", 1800 }, { "8h", 28800 },
		{ "2d", 172800 }, { "1h30m", 5400 }, { "1d2h3m4s", 93784 }, { "0s", 0 }, { "1h05m", 3900 },
		{ "365d", 31536000 }, { "31536000", 31536000 }, { "364d23h59m60s", 31536000 },
		{ "", -1 }, { "-1", -1 }, { "5x", -1 }, { "h", -1 }, { "1h1h", -1 }, { "30m1h", -1 }, { "1d1", -1 },
		{ " 1", -1 }, { "1 ", -1 }, { "+1", -1 }, { "1H", -1 }, { "366d", -1 }, { "31536001", -1 },
		{ "8761h", -1 }, { "365d1s", -1 }, { "99999999999999999999", -1 }, { "4294967296", -1 },
		{ "18446744073709551617s", -1 }, { "1.5h", -1 }, { "s", -1 }, { "1hm", -1 },
	};
	size_t i;

	for (i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		uint32_t v = 12345;
		enum ak_err r = ak_duration_parse(table[i].s, &v);

		t_checks++;
		if (table[i].secs < 0 ? r != AK_ERR_INVALID || v != 12345 : r != AK_OK || v != table[i].secs) {
			t_failed++;
			fprintf(stderr, "duration \"%s\": got r=%d v=%u, expected %lld\n", table[i].s, r,
			    (unsigned)v, table[i].secs);
		}
	}
	CHECK_EQ(ak_duration_parse(NULL, &(uint32_t){ 0 }), AK_ERR_INVALID);
}

static void
test_format(void)
{
	static const struct { uint32_t secs; const char *s; } table[] = {
		{ 0, "0s" }, { 42, "42s" }, { 60, "1m" }, { 90, "1m30s" }, { 3600, "1h" }, { 3900, "1h05m" },
		{ 28800, "8h" }, { 86400, "1d" }, { 3 * 86400 + 4 * 3600, "3d04h" }, { 31536000, "365d" },
		{ 86399, "23h59m" },
	};
	char buf[32];
	size_t i;

	for (i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		uint32_t back;

		ak_duration_format(table[i].secs, buf, sizeof(buf));
		CHECK_STR(buf, table[i].s);
		/* Whatever it prints parses again (to the same value when nothing was dropped). */
		CHECK_EQ(ak_duration_parse(buf, &back), AK_OK);
	}
	ak_age_format(1000, 1000, buf, sizeof(buf));
	CHECK_STR(buf, "0s");
	ak_age_format(1000, 1059, buf, sizeof(buf));
	CHECK_STR(buf, "59s");
	ak_age_format(1000, 1000 + 300, buf, sizeof(buf));
	CHECK_STR(buf, "5m");
	ak_age_format(0, 3 * 3600 + 5, buf, sizeof(buf));
	CHECK_STR(buf, "3h");
	ak_age_format(0, 12 * 86400 + 7, buf, sizeof(buf));
	CHECK_STR(buf, "12d");
	ak_age_format(2000, 1000, buf, sizeof(buf));
	CHECK_STR(buf, "0s");
}

static void
test_redact(void)
{
	char key[200], want[200], buf[64];
	size_t i;
	static const struct { const char *in, *out; } table[] = {
		{ "", "\xe2\x80\xa6(0 chars)" },
		{ "a", "\xe2\x80\xa6(1 char)" },
		{ "0123456789", "\xe2\x80\xa6(10 chars)" },
		{ "0123456789abcde", "\xe2\x80\xa6(15 chars)" },
		/* 16 characters: 12 hidden, 4 shown, no prefix. */
		{ "0123456789abcdef", "\xe2\x80\xa6" "cdef" },
		/* A prefix only when 12 characters still stay hidden. */
		{ "sk-proj-0123456789abcde", "\xe2\x80\xa6" "bcde" },
		{ "sk-proj-0123456789abcdef", "sk-proj-\xe2\x80\xa6" "cdef" },
		{ "sk-proj-abcdefghijklmnopqrstuvwxyz", "sk-proj-\xe2\x80\xa6wxyz" },
		/* A '-' in the random part never widens a known prefix. */
		{ "sk-proj-ab-cdefghijklmnopqrstuvwxyz", "sk-proj-\xe2\x80\xa6wxyz" },
		/* Generic prefix: up to the last '-' within the first 16 characters. */
		{ "xai-ABCDEFGHIJKLMNOPQRSTUVWXYZ", "xai-\xe2\x80\xa6WXYZ" },
		{ "ghp_ABCDEFGHIJKLMNOPQRSTUVWXYZ", "\xe2\x80\xa6WXYZ" },
		{ "abcdefghijklmnopqrst-uvwxyz01234567", "\xe2\x80\xa6" "4567" },
		/* A non-printable tail is never shown. */
		{ "0123456789abcdefghij\x1b[0m", "\xe2\x80\xa6(24 chars)" },
	};

	for (i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		ak_redact(table[i].in, buf, sizeof(buf));
		CHECK_STR(buf, table[i].out);
	}
	ak_redact(NULL, buf, sizeof(buf));
	CHECK_STR(buf, "\xe2\x80\xa6(0 chars)");

	/* Anthropic: "sk-ant-api03-" + 93 base64url characters + "AA". */
	strcpy(key, "sk-ant-api03-");
	for (i = 0; i < 93; i++)
		key[13 + i] = "Ab-_9z"[i % 6];
	strcpy(key + 106, "AA");
	CHECK_EQ(strlen(key), 108);
	ak_redact(key, buf, sizeof(buf));
	snprintf(want, sizeof(want), "sk-ant-api03-\xe2\x80\xa6%s", key + 104);
	CHECK_STR(buf, want);
	/* Admin key. */
	memmove(key + 15, key + 13, 96);
	memcpy(key, "sk-ant-admin01-", 15);
	ak_redact(key, buf, sizeof(buf));
	snprintf(want, sizeof(want), "sk-ant-admin01-\xe2\x80\xa6%s", key + strlen(key) - 4);
	CHECK_STR(buf, want);

	/* Small output buffers are truncated, never overrun. */
	ak_redact(key, buf, 5);
	CHECK(strlen(buf) < 5);
}

static void
test_time(void)
{
	uint64_t a = ak_now_ms(), b = ak_now_ms();

	CHECK(a > 0);
	CHECK(b >= a);
	CHECK(ak_now_s() > 1600000000);
}

static void
test_paths(void)
{
	char out[AK_PATH_MAX + 128], err[AK_PATH_MAX + 128], tmpl[] = "/tmp/aktest-XXXXXX", d[AK_PATH_MAX];
	int isdef;
	char cwd[1024];
	int is_explicit = -1;

	/* dirname */
	static const struct { const char *in, *out; } dn[] = {
		{ "/a/b/c", "/a/b" }, { "/a/b/", "/a" }, { "a/b", "a" }, { "a", "." }, { "", "." },
		{ "/", "/" }, { "/a", "/" }, { "//a//b//", "//a" }, { "a//b", "a" },
	};
	size_t i;

	for (i = 0; i < sizeof(dn) / sizeof(dn[0]); i++) {
		CHECK_EQ(ak_path_dirname(dn[i].in, out, sizeof(out)), AK_OK);
		CHECK_STR(out, dn[i].out);
	}
	CHECK_EQ(ak_path_dirname("/abc/def", out, 4), AK_ERR_TOO_LARGE);

	/* keystore */
	unsetenv("AKCTL_KEYSTORE");
	setenv("HOME", "/home/u", 1);
	unsetenv("XDG_DATA_HOME");
	CHECK_EQ(ak_path_keystore(NULL, out, sizeof(out), &is_explicit), AK_OK);
	CHECK_STR(out, "/home/u/.local/share/akagent/keystore");
	CHECK_EQ(is_explicit, 0);
	setenv("XDG_DATA_HOME", "/xdg", 1);
	CHECK_EQ(ak_path_keystore(NULL, out, sizeof(out), &is_explicit), AK_OK);
	CHECK_STR(out, "/xdg/akagent/keystore");
	setenv("XDG_DATA_HOME", "rel", 1);
	CHECK_EQ(ak_path_keystore(NULL, out, sizeof(out), &is_explicit), AK_OK);
	CHECK_STR(out, "/home/u/.local/share/akagent/keystore");
	setenv("AKCTL_KEYSTORE", "/env/ks", 1);
	CHECK_EQ(ak_path_keystore(NULL, out, sizeof(out), &is_explicit), AK_OK);
	CHECK_STR(out, "/env/ks");
	CHECK_EQ(is_explicit, 1);
	CHECK_EQ(ak_path_keystore("/opt/ks", out, sizeof(out), &is_explicit), AK_OK);
	CHECK_STR(out, "/opt/ks");
	CHECK(getcwd(cwd, sizeof(cwd)) != NULL);
	CHECK_EQ(ak_path_keystore("sub/ks", out, sizeof(out), &is_explicit), AK_OK);
	snprintf(d, sizeof(d), "%s/sub/ks", cwd);
	CHECK_STR(out, d);
	CHECK_EQ(is_explicit, 1);
	CHECK_EQ(ak_path_keystore("", out, sizeof(out), &is_explicit), AK_ERR_INVALID);
	CHECK_EQ(ak_path_keystore("/opt/ks", out, 5, &is_explicit), AK_ERR_TOO_LARGE);
	unsetenv("AKCTL_KEYSTORE");

	/* agent dir and sockets */
	setenv("XDG_RUNTIME_DIR", "/run/user/1", 1);
	CHECK_EQ(ak_path_agent_dir(out, sizeof(out)), AK_OK);
	CHECK_STR(out, "/run/user/1/akagent");
	CHECK_EQ(ak_path_default_socket(out, sizeof(out)), AK_OK);
	CHECK_STR(out, "/run/user/1/akagent/agent.sock");
	unsetenv("XDG_RUNTIME_DIR");
	CHECK_EQ(ak_path_agent_dir(out, sizeof(out)), AK_OK);
	snprintf(d, sizeof(d), "/tmp/akagent-%lu", (unsigned long)getuid());
	CHECK_STR(out, d);
	setenv("XDG_RUNTIME_DIR", "relative", 1);
	CHECK_EQ(ak_path_agent_dir(out, sizeof(out)), AK_OK);
	CHECK_STR(out, d);
	setenv("AKAGENT_SOCK", "/x/y.sock", 1);
	isdef = -1;
	CHECK_EQ(ak_path_client_socket(out, sizeof(out), &isdef), AK_OK);
	CHECK_STR(out, "/x/y.sock");
	CHECK_EQ(isdef, 0);
	setenv("AKAGENT_SOCK", "", 1);
	CHECK_EQ(ak_path_client_socket(out, sizeof(out), &isdef), AK_OK);
	snprintf(d, sizeof(d), "/tmp/akagent-%lu/agent.sock", (unsigned long)getuid());
	CHECK_STR(out, d);
	CHECK_EQ(isdef, 1);
	CHECK_EQ(ak_path_client_socket(out, sizeof(out), NULL), AK_OK);

	/* secure_dir and mkdirs */
	CHECK(mkdtemp(tmpl) != NULL);
	snprintf(d, sizeof(d), "%s/a/b/c", tmpl);
	CHECK_EQ(ak_path_secure_dir(d, 0, err, sizeof(err)), AK_ERR_SYSTEM);
	CHECK_EQ(ak_path_secure_dir(d, 1, err, sizeof(err)), AK_OK);
	CHECK_STR(err, "");
	CHECK_EQ(ak_path_secure_dir(d, 1, err, sizeof(err)), AK_OK);
	CHECK_EQ(ak_path_mkdirs(d), AK_OK);
	CHECK_EQ(chmod(d, 0755), 0);
	CHECK_EQ(ak_path_secure_dir(d, 1, err, sizeof(err)), AK_ERR_UNSAFE_PATH);
	snprintf(out, sizeof(out), "%s: has group/other permissions (mode 0755); fix with chmod 700", d);
	CHECK_STR(err, out);
	CHECK_EQ(chmod(d, 0700), 0);
	snprintf(out, sizeof(out), "%s/link", tmpl);
	CHECK_EQ(symlink(d, out), 0);
	CHECK_EQ(ak_path_secure_dir(out, 0, err, sizeof(err)), AK_ERR_UNSAFE_PATH);
	CHECK(strstr(err, "symbolic link") != NULL);
	CHECK_EQ(unlink(out), 0);
	snprintf(out, sizeof(out), "%s/file", tmpl);
	{
		FILE *f = fopen(out, "w");

		CHECK(f != NULL);
		if (f != NULL)
			fclose(f);
	}
	CHECK_EQ(ak_path_secure_dir(out, 0, err, sizeof(err)), AK_ERR_UNSAFE_PATH);
	CHECK(strstr(err, "not a directory") != NULL);
	snprintf(d, sizeof(d), "%s/file/sub", tmpl);
	CHECK_EQ(ak_path_mkdirs(d), AK_ERR_SYSTEM);
	CHECK_EQ(unlink(out), 0);
	if (geteuid() == 0) {
		/* Owned by someone else. */
		snprintf(d, sizeof(d), "%s/other", tmpl);
		CHECK_EQ(mkdir(d, 0700), 0);
		CHECK_EQ(chown(d, 65534, 65534), 0);
		CHECK_EQ(ak_path_secure_dir(d, 0, err, sizeof(err)), AK_ERR_UNSAFE_PATH);
		CHECK(strstr(err, "owned by uid 65534") != NULL);
		rmdir(d);
	}
	snprintf(d, sizeof(d), "%s/a/b/c", tmpl);
	rmdir(d);
	snprintf(d, sizeof(d), "%s/a/b", tmpl);
	rmdir(d);
	snprintf(d, sizeof(d), "%s/a", tmpl);
	rmdir(d);
	CHECK_EQ(rmdir(tmpl), 0);
}

int
main(void)
{
	test_names();
	test_durations();
	test_format();
	test_redact();
	test_time();
	test_paths();
	T_DONE();
}
