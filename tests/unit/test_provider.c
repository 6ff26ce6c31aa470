/* test_provider.c - the provider table and the offline key check: every issue kind, exact messages,
 * and no message ever contains the key (or a long piece of it). */
#include <string.h>

#include "ak_provider.h"
#include "t.h"

#define BODY93 "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_abcdefghijklmnopqrstuvwxyzABC"
#define GOOD "sk-ant-api03-" BODY93 "AA"
#define ADMIN "sk-ant-admin01-" BODY93 "AA"

struct tcase {
	const char *provider;
	const char *key;
	enum ak_key_issue want;
	const char *msg; /* exact, or NULL: only "no key in it" */
};

static const struct tcase cases[] = {
	{ "anthropic", GOOD, AK_KEY_OK, "" },
	{ "anthropic-admin", ADMIN, AK_KEY_OK, "" },
	{ "anthropic", "", AK_KEY_EMPTY, "key is empty" },
	{ "anthropic", GOOD "\n", AK_KEY_NEWLINE, "key has a trailing newline" },
	{ "anthropic", GOOD "\r\n", AK_KEY_NEWLINE, "key has a trailing newline" },
	{ "anthropic", "sk-ant-api03-abc\ndef", AK_KEY_NEWLINE, "key contains a line break" },
	{ "anthropic", " " GOOD, AK_KEY_WHITESPACE, "key has leading or trailing whitespace" },
	{ "anthropic", GOOD "\t", AK_KEY_WHITESPACE, "key has leading or trailing whitespace" },
	{ "anthropic", "sk-ant-api03-abc def", AK_KEY_WHITESPACE, "key contains whitespace" },
	{ "anthropic", "\"" GOOD "\"", AK_KEY_QUOTE, "key contains a quote character" },
	{ "anthropic", "'" GOOD, AK_KEY_QUOTE, "key contains a quote character" },
	{ "anthropic", "\xe2\x80\x9c" GOOD "\xe2\x80\x9d", AK_KEY_QUOTE, "key contains a quote character" },
	{ "anthropic", "sk-ant-api03-\x01" BODY93, AK_KEY_CONTROL, "key contains a control character" },
	{ "anthropic", "sk-ant-api03-\xc3\xa9" BODY93, AK_KEY_CONTROL, "key contains a non-ASCII character" },
	{ "anthropic", ADMIN, AK_KEY_ADMIN_KEY,
	    "this looks like an admin key (sk-ant-admin01-: use provider anthropic-admin)" },
	{ "anthropic", "sk-ant-oat01-" BODY93 "AA", AK_KEY_OAUTH_TOKEN, NULL },
	{ "anthropic", "sk-ant-ort01-" BODY93 "AA", AK_KEY_OAUTH_TOKEN, NULL },
	{ "anthropic", "sk-ant-api01-" BODY93 "AA", AK_KEY_LEGACY, NULL },
	{ "anthropic", "sk-proj-" BODY93, AK_KEY_OTHER_PROVIDER,
	    "this looks like an OpenAI project key (provider openai)" },
	{ "anthropic", "xk-ant-api03-" BODY93 "AA", AK_KEY_WRONG_PREFIX, "key does not start with sk-ant-api03-" },
	{ "anthropic", GOOD "A", AK_KEY_WRONG_LENGTH, "key is 109 characters; Anthropic API keys are 108" },
	{ "anthropic", "sk-ant-api03-" BODY93 "A", AK_KEY_WRONG_LENGTH,
	    "key is 107 characters; Anthropic API keys are 108" },
	{ "anthropic", "sk-ant-api03-" BODY93 "AB", AK_KEY_WRONG_SUFFIX,
	    "key does not end in AA as Anthropic API keys do (truncated or altered?)" },
	{ "anthropic", "sk-ant-api03-" BODY93 ".A", AK_KEY_BAD_CHARS,
	    "key contains a character outside A-Z a-z 0-9 - _ (at position 107)" },
	{ "anthropic-admin", GOOD, AK_KEY_OTHER_PROVIDER,
	    "this looks like a regular API key, not an admin key (provider anthropic)" },
	{ "anthropic-admin", "sk-ant-admin01-" BODY93 "AAA", AK_KEY_WRONG_LENGTH,
	    "key is 111 characters; Anthropic admin keys are 110" },
	{ "openai", "sk-proj-" BODY93, AK_KEY_OK, "" },
	{ "openai", "sk-svcacct-" BODY93, AK_KEY_OK, "" },
	{ "openai", "sk-abcdefghijabcdefghijabcdefghijabcdefghijabcdefgh", AK_KEY_OK, "" },
	{ "openai", GOOD, AK_KEY_OTHER_PROVIDER, "this looks like an Anthropic API key (provider anthropic)" },
	{ "openai", "sk-proj-short", AK_KEY_WRONG_LENGTH, "key is 13 characters; OpenAI API keys are at least 40" },
	{ "openai", "pk-" BODY93, AK_KEY_WRONG_PREFIX, "key does not start with sk-" },
	{ "generic", "anything.goes~here", AK_KEY_OK, "" },
	{ "generic", GOOD, AK_KEY_OK, "" },
	{ "generic", "tok\n", AK_KEY_NEWLINE, "key has a trailing newline" },
	{ NULL, "abc ", AK_KEY_WHITESPACE, "key has leading or trailing whitespace" },
};

/* No 8-byte window of the key (outside the public prefixes) appears in msg. */
static int
leaks(const char *msg, const char *key)
{
	size_t i, len = strlen(key);
	char win[9];

	for (i = 13; i + 8 <= len; i++) {
		memcpy(win, key + i, 8);
		win[8] = '\0';
		if (strstr(msg, win) != NULL)
			return 1;
	}
	return 0;
}

int
main(void)
{
	const struct ak_provider *p, *all;
	char msg[256];
	size_t i, n;
	enum ak_key_issue got;

	/* The table. */
	p = ak_provider_find("anthropic");
	CHECK(p != NULL);
	CHECK_STR(p->secret_var, "ANTHROPIC_API_KEY");
	CHECK_STR(p->check_path, "/v1/models?limit=1");
	CHECK_STR(p->auth_header, "x-api-key");
	CHECK_STR(p->extra_header, "anthropic-version: 2023-06-01");
	CHECK_STR(p->base_url_env, "ANTHROPIC_BASE_URL");
	CHECK_EQ(p->key_len, 108);
	CHECK_EQ(strlen(GOOD), 108);
	CHECK_EQ(strlen(ADMIN), 110);
	p = ak_provider_find("anthropic-admin");
	CHECK(p != NULL && strcmp(p->check_path, "/v1/organizations/me") == 0);
	p = ak_provider_find("openai");
	CHECK(p != NULL);
	CHECK_STR(p->secret_var, "OPENAI_API_KEY");
	CHECK_STR(p->auth_header, "Authorization");
	CHECK_STR(p->auth_prefix, "Bearer ");
	CHECK_STR(p->base_url_env, "OPENAI_BASE_URL");
	p = ak_provider_find("generic");
	CHECK(p != NULL && p->check_path == NULL && p->secret_var[0] == '\0');
	CHECK(ak_provider_find("nope") == NULL);
	CHECK(ak_provider_find(NULL) == NULL);
	CHECK(ak_provider_for_var("OPENAI_API_KEY") == ak_provider_find("openai"));
	CHECK(ak_provider_for_var("ANTHROPIC_API_KEY") == ak_provider_find("anthropic"));
	CHECK(ak_provider_for_var("HOME") == NULL);
	CHECK(ak_provider_for_var("") == NULL);
	all = ak_provider_all(&n);
	CHECK_EQ(n, 5);
	p = ak_provider_find("openai-admin");
	CHECK(p != NULL && strcmp(p->key_prefix, "sk-admin-") == 0 && strcmp(p->secret_var, "OPENAI_ADMIN_KEY") == 0);
	for (i = 0; i < n; i++)
		CHECK(ak_provider_find(all[i].name) == &all[i]);

	/* Offline checks. */
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		p = cases[i].provider != NULL ? ak_provider_find(cases[i].provider) : NULL;
		memset(msg, 'x', sizeof(msg));
		got = ak_provider_check_key(p, cases[i].key, msg, sizeof(msg));
		if (got != cases[i].want)
			fprintf(stderr, "case %zu: issue %d, msg \"%s\"\n", i, (int)got, msg);
		CHECK_EQ(got, cases[i].want);
		if (cases[i].msg != NULL)
			CHECK_STR(msg, cases[i].msg);
		CHECK((got == AK_KEY_OK) == (msg[0] == '\0'));
		CHECK(!leaks(msg, cases[i].key));
		CHECK(strchr(msg, '\n') == NULL);
	}

	/* Which issues stop the live check. */
	CHECK(ak_key_issue_fatal(AK_KEY_NEWLINE));
	CHECK(ak_key_issue_fatal(AK_KEY_WHITESPACE));
	CHECK(ak_key_issue_fatal(AK_KEY_QUOTE));
	CHECK(ak_key_issue_fatal(AK_KEY_EMPTY));
	CHECK(ak_key_issue_fatal(AK_KEY_CONTROL));
	CHECK(!ak_key_issue_fatal(AK_KEY_OK));
	CHECK(!ak_key_issue_fatal(AK_KEY_WRONG_LENGTH));
	CHECK(!ak_key_issue_fatal(AK_KEY_ADMIN_KEY));
	CHECK(!ak_key_issue_fatal(AK_KEY_OAUTH_TOKEN));

	/* Tiny and NULL message buffers are safe. */
	CHECK_EQ(ak_provider_check_key(ak_provider_find("anthropic"), GOOD "\n", msg, 5), AK_KEY_NEWLINE);
	CHECK_EQ(strlen(msg), 4);
	CHECK_EQ(ak_provider_check_key(ak_provider_find("anthropic"), ADMIN, NULL, 0), AK_KEY_ADMIN_KEY);
	CHECK_EQ(ak_provider_check_key(NULL, NULL, msg, sizeof(msg)), AK_KEY_EMPTY);
	T_DONE();
}
