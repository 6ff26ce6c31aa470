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
	T_DONE();
}
