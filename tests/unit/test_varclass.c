/* test_varclass.c - the variables an import refuses, and those it lets through. */
#include "ak_varclass.h"
#include "t.h"

int
main(void)
{
	static const char *const refused[] = {
		"PROMPT_COMMAND", "BASH_ENV", "ENV", "ZDOTDIR", "PS0", "PS1", "PS4", "IFS", "PATH", "path",
		"CDPATH", "SHELLOPTS", "BASHOPTS", "GLOBIGNORE", "HOME", "XDG_RUNTIME_DIR", "LD_PRELOAD",
		"LD_LIBRARY_PATH", "ld_audit", "DYLD_INSERT_LIBRARIES", "NODE_OPTIONS", "PYTHONSTARTUP",
		"PYTHONPATH", "PERL5OPT", "PERL5LIB", "RUBYOPT", "RUBYLIB", "JAVA_TOOL_OPTIONS",
		"_JAVA_OPTIONS", "GIT_SSH_COMMAND", "GIT_CONFIG_GLOBAL", "npm_config_registry",
		"ANTHROPIC_BASE_URL", "OPENAI_BASE_URL", "OPENAI_API_BASE", "AWS_ENDPOINT_URL",
		"AZURE_OPENAI_ENDPOINT", "VAULT_ADDR", "AWS_CA_BUNDLE", "CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE",
		"http_proxy", "HTTPS_PROXY", "ALL_PROXY", "no_proxy", "NO_PROXY", "SSL_CERT_FILE",
		"NODE_EXTRA_CA_CERTS", "NODE_TLS_REJECT_UNAUTHORIZED", "AKCTL_KEYSTORE", "AKCTL_CHECK_URL",
		"AKAGENT_SOCK", "akagent_sock",
	};
	static const char *const plain[] = {
		"ANTHROPIC_API_KEY", "ANTHROPIC_MODEL", "OPENAI_API_KEY", "DATABASE_URL", "GITHUB_TOKEN",
		"MAX_TOKENS", "PORT", "NODE_ENV", "DEBUG", "PS", "PATHS", "ENVIRONMENT", "GREETING", "AKCTL",
		"PROXY", "HOMEPAGE", "",
	};
	size_t i;

	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		if (ak_varclass_of(refused[i]) == AK_VAR_PLAIN)
			fprintf(stderr, "not refused: %s\n", refused[i]);
		CHECK(ak_varclass_of(refused[i]) != AK_VAR_PLAIN);
	}
	for (i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
		if (ak_varclass_of(plain[i]) != AK_VAR_PLAIN)
			fprintf(stderr, "refused: %s\n", plain[i]);
		CHECK_EQ(ak_varclass_of(plain[i]), AK_VAR_PLAIN);
	}
	CHECK_EQ(ak_varclass_of(NULL), AK_VAR_PLAIN);
	CHECK_EQ(ak_varclass_of("ANTHROPIC_BASE_URL"), AK_VAR_ENDPOINT);
	CHECK_EQ(ak_varclass_of("LD_PRELOAD"), AK_VAR_LOADER);
	CHECK_EQ(ak_varclass_of("PROMPT_COMMAND"), AK_VAR_SHELL);
	CHECK_EQ(ak_varclass_of("AKAGENT_SOCK"), AK_VAR_AKAGENT);
	CHECK_STR(ak_varclass_name(AK_VAR_ENDPOINT), "credential endpoint");
	CHECK_STR(ak_varclass_name(AK_VAR_PLAIN), "");
	/* Secrets: names by suffix (any case), provider variables, key-shaped values, URL passwords. */
	{
		static const struct { const char *n, *v; int want; } sec[] = {
			{ "ANTHROPIC_API_KEY", "x", 1 }, { "STRIPE_KEY", "x", 1 }, { "GH_TOKEN", "x", 1 },
			{ "APP_SECRET", "x", 1 }, { "DB_PASSWORD", "x", 1 }, { "SMTP_PASS", "x", 1 },
			{ "MYSQL_PWD", "x", 1 }, { "GOOGLE_APPLICATION_CREDENTIALS", "x", 1 },
			{ "db_password", "x", 1 }, { "TOKEN", "x", 1 }, { "PASSWORD", "x", 1 },
			{ "MAX_TOKENS", "1024", 0 }, { "KEYBOARD", "us", 0 }, { "PASSPORT", "x", 0 },
			{ "MONKEY", "x", 0 }, { "ANTHROPIC_MODEL", "claude", 0 }, { "BYPASS", "x", 0 },
			{ "DATABASE_URL", "postgres://app:s3cret@db.example:5432/app", 1 },
			{ "DATABASE_URL", "postgres://app@db.example/app", 0 },
			{ "DATABASE_URL", "postgres://db.example/app?x=a:b@c", 0 },
			{ "HOME_URL", "https://example.com/a:b@c", 0 },
			{ "REDIS_URL", "redis://:pw@localhost:6379", 1 },
			{ "OTHER", "ghp_0123456789abcdefghijABCDEFGHIJ012345", 1 },
			{ "OTHER", "plain words", 0 }, { "OTHER", "", 0 }, { "OTHER", NULL, 0 },
		};
		for (size_t k = 0; k < sizeof(sec) / sizeof(sec[0]); k++) {
			if (ak_varclass_is_secret(sec[k].n, sec[k].v) != sec[k].want) {
				fprintf(stderr, "is_secret(%s, %s): expected %d\n", sec[k].n,
				    sec[k].v ? sec[k].v : "NULL", sec[k].want);
				t_failed++;
			}
			t_checks++;
		}
	}
	T_DONE();
}
