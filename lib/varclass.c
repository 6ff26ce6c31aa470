/* varclass.c - the one table of variables an import must not plant (see ak_varclass.h).
 *
 * Each row matches a name exactly, by prefix, by suffix or anywhere inside it, ignoring case. The
 * table errs on the side of refusing: a refused variable is only skipped, listed, and can be let in
 * by name (akctl import --allow-var NAME).
 */
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "ak_provider.h"
#include "ak_scan.h"
#include "ak_varclass.h"

enum match { EXACT, PREFIX, SUFFIX, CONTAINS };

static const struct {
	const char *pat;
	enum match how;
	enum ak_varclass cls;
} table[] = {
	/* Shells read these at start-up, before each prompt, or while parsing every command. */
	{ "PROMPT_COMMAND", EXACT, AK_VAR_SHELL }, { "BASH_ENV", EXACT, AK_VAR_SHELL },
	{ "ENV", EXACT, AK_VAR_SHELL }, { "ZDOTDIR", EXACT, AK_VAR_SHELL },
	{ "PS0", EXACT, AK_VAR_SHELL }, { "PS1", EXACT, AK_VAR_SHELL }, { "PS2", EXACT, AK_VAR_SHELL },
	{ "PS3", EXACT, AK_VAR_SHELL }, { "PS4", EXACT, AK_VAR_SHELL },
	{ "PROMPT", EXACT, AK_VAR_SHELL }, { "PROMPT2", EXACT, AK_VAR_SHELL },
	{ "PROMPT3", EXACT, AK_VAR_SHELL }, { "PROMPT4", EXACT, AK_VAR_SHELL },
	{ "RPROMPT", EXACT, AK_VAR_SHELL }, { "RPROMPT2", EXACT, AK_VAR_SHELL },
	{ "RPS1", EXACT, AK_VAR_SHELL }, { "RPS2", EXACT, AK_VAR_SHELL },
	{ "IFS", EXACT, AK_VAR_SHELL }, { "PATH", EXACT, AK_VAR_SHELL }, { "CDPATH", EXACT, AK_VAR_SHELL },
	{ "FPATH", EXACT, AK_VAR_SHELL }, { "SHELLOPTS", EXACT, AK_VAR_SHELL },
	{ "BASHOPTS", EXACT, AK_VAR_SHELL }, { "GLOBIGNORE", EXACT, AK_VAR_SHELL },
	{ "HISTFILE", EXACT, AK_VAR_SHELL }, { "INPUTRC", EXACT, AK_VAR_SHELL },
	{ "HOME", EXACT, AK_VAR_SHELL }, { "SHELL", EXACT, AK_VAR_SHELL },
	{ "XDG_", PREFIX, AK_VAR_SHELL }, /* where every program finds its configuration */
	/* Programs other programs run on your behalf. */
	{ "EDITOR", EXACT, AK_VAR_LOADER }, { "VISUAL", EXACT, AK_VAR_LOADER },
	{ "PAGER", EXACT, AK_VAR_LOADER }, { "MANPAGER", EXACT, AK_VAR_LOADER },
	{ "BROWSER", EXACT, AK_VAR_LOADER }, { "LESSOPEN", EXACT, AK_VAR_LOADER },
	{ "LESSCLOSE", EXACT, AK_VAR_LOADER }, { "SUDO_ASKPASS", EXACT, AK_VAR_LOADER },
	{ "SSH_ASKPASS", EXACT, AK_VAR_LOADER },
	/* Dynamic loaders and interpreters: code loaded into every program that starts. */
	{ "LD_", PREFIX, AK_VAR_LOADER }, { "DYLD_", PREFIX, AK_VAR_LOADER },
	{ "GCONV_PATH", EXACT, AK_VAR_LOADER },
	{ "NODE_OPTIONS", EXACT, AK_VAR_LOADER }, { "NODE_PATH", EXACT, AK_VAR_LOADER },
	{ "NPM_CONFIG_", PREFIX, AK_VAR_LOADER },
	{ "PYTHONSTARTUP", EXACT, AK_VAR_LOADER }, { "PYTHONPATH", EXACT, AK_VAR_LOADER },
	{ "PYTHONHOME", EXACT, AK_VAR_LOADER }, { "PYTHONUSERBASE", EXACT, AK_VAR_LOADER },
	{ "PYTHONWARNINGS", EXACT, AK_VAR_LOADER }, { "PYTHONBREAKPOINT", EXACT, AK_VAR_LOADER },
	{ "PYTHONINSPECT", EXACT, AK_VAR_LOADER },
	{ "PERL5OPT", EXACT, AK_VAR_LOADER }, { "PERL5LIB", EXACT, AK_VAR_LOADER },
	{ "PERLLIB", EXACT, AK_VAR_LOADER }, { "PERL5DB", EXACT, AK_VAR_LOADER },
	{ "RUBYOPT", EXACT, AK_VAR_LOADER }, { "RUBYLIB", EXACT, AK_VAR_LOADER },
	{ "JAVA_TOOL_OPTIONS", EXACT, AK_VAR_LOADER }, { "_JAVA_OPTIONS", EXACT, AK_VAR_LOADER },
	{ "JDK_JAVA_OPTIONS", EXACT, AK_VAR_LOADER }, { "CLASSPATH", EXACT, AK_VAR_LOADER },
	{ "GIT_", PREFIX, AK_VAR_LOADER }, /* GIT_SSH_COMMAND, GIT_EXEC_PATH, GIT_CONFIG_*... */
	{ "KUBECONFIG", EXACT, AK_VAR_LOADER }, /* exec credential plugins */
	{ "AWS_CONFIG_FILE", EXACT, AK_VAR_LOADER }, /* credential_process */
	{ "AWS_SHARED_CREDENTIALS_FILE", EXACT, AK_VAR_LOADER },
	{ "CLOUDSDK_CONFIG", EXACT, AK_VAR_LOADER },
	/* Where requests, and the keys in them, are sent; what TLS trusts. */
	{ "_BASE_URL", SUFFIX, AK_VAR_ENDPOINT }, { "_API_BASE", SUFFIX, AK_VAR_ENDPOINT },
	{ "ENDPOINT", CONTAINS, AK_VAR_ENDPOINT },
	{ "_PROXY", SUFFIX, AK_VAR_ENDPOINT }, /* http_proxy, HTTPS_PROXY, ALL_PROXY, NO_PROXY */
	{ "_CA_BUNDLE", SUFFIX, AK_VAR_ENDPOINT }, /* CURL_, REQUESTS_, AWS_CA_BUNDLE */
	{ "SSL_CERT_FILE", EXACT, AK_VAR_ENDPOINT }, { "SSL_CERT_DIR", EXACT, AK_VAR_ENDPOINT },
	{ "NODE_EXTRA_CA_CERTS", EXACT, AK_VAR_ENDPOINT },
	{ "NODE_TLS_REJECT_UNAUTHORIZED", EXACT, AK_VAR_ENDPOINT },
	{ "PYTHONHTTPSVERIFY", EXACT, AK_VAR_ENDPOINT }, { "SSLKEYLOGFILE", EXACT, AK_VAR_ENDPOINT },
	{ "VAULT_ADDR", EXACT, AK_VAR_ENDPOINT }, { "VAULT_CACERT", EXACT, AK_VAR_ENDPOINT },
	{ "VAULT_CAPATH", EXACT, AK_VAR_ENDPOINT }, { "VAULT_SKIP_VERIFY", EXACT, AK_VAR_ENDPOINT },
	{ "VAULT_TLS_SERVER_NAME", EXACT, AK_VAR_ENDPOINT },
	{ "SSH_AUTH_SOCK", EXACT, AK_VAR_ENDPOINT }, { "DOCKER_HOST", EXACT, AK_VAR_ENDPOINT },
	/* akagent's own: which keystore, which socket, which askpass, which check URL. */
	{ "AKCTL_", PREFIX, AK_VAR_AKAGENT }, { "AKAGENT_", PREFIX, AK_VAR_AKAGENT },
};

static int
matches(const char *name, size_t n, const char *pat, enum match how)
{
	size_t l = strlen(pat), i;

	switch (how) {
	case EXACT:
		return n == l && strcasecmp(name, pat) == 0;
	case PREFIX:
		return n >= l && strncasecmp(name, pat, l) == 0;
	case SUFFIX:
		return n >= l && strcasecmp(name + n - l, pat) == 0;
	case CONTAINS:
		for (i = 0; i + l <= n; i++)
			if (strncasecmp(name + i, pat, l) == 0)
				return 1;
		return 0;
	}
	return 0;
}

enum ak_varclass
ak_varclass_of(const char *name)
{
	size_t i, n;

	if (name == NULL)
		return AK_VAR_PLAIN;
	n = strlen(name);
	for (i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (matches(name, n, table[i].pat, table[i].how))
			return table[i].cls;
	return AK_VAR_PLAIN;
}

const char *
ak_varclass_name(enum ak_varclass c)
{
	switch (c) {
	case AK_VAR_PLAIN: return "";
	case AK_VAR_SHELL: return "shell start-up";
	case AK_VAR_LOADER: return "code loader";
	case AK_VAR_ENDPOINT: return "credential endpoint";
	case AK_VAR_AKAGENT: return "akagent's own";
	}
	return "";
}

/* Secrets --------------------------------------------------------------------------------------------- */

static int
stop_at_first(void *arg, const struct ak_scan_hit *hit)
{
	(void)arg;
	(void)hit;
	return 1;
}

/* scheme "://" userinfo-with-a-colon "@": a password in a URL (postgres://app:pw@db/x). */
static int
url_with_password(const char *v)
{
	const char *p = strstr(v, "://"), *at, *colon, *end;
	size_t i;

	if (p == NULL || p == v)
		return 0;
	for (i = 0; v + i < p; i++)
		if (!((v[i] >= 'a' && v[i] <= 'z') || (v[i] >= 'A' && v[i] <= 'Z') ||
		    (i > 0 && ((v[i] >= '0' && v[i] <= '9') || v[i] == '+' || v[i] == '-' || v[i] == '.'))))
			return 0;
	p += 3;
	/* The authority ends at the first '/', '?' or '#'; userinfo is what comes before its last '@'. */
	end = p + strcspn(p, "/?#");
	at = NULL;
	for (const char *q = p; q < end; q++)
		if (*q == '@')
			at = q;
	if (at == NULL)
		return 0;
	colon = memchr(p, ':', (size_t)(at - p));
	return colon != NULL && colon + 1 < at;
}

int
ak_varclass_value_secret(const char *value)
{
	if (value == NULL || value[0] == '\0')
		return 0;
	if (url_with_password(value))
		return 1;
	return ak_scan_patterns((const uint8_t *)value, strlen(value), stop_at_first, NULL) == 1;
}

int
ak_varclass_is_secret(const char *name, const char *value)
{
	static const char *const words[] = { "KEY", "TOKEN", "SECRET", "PASSWORD", "PASS", "PWD",
		"CREDENTIALS", "CREDENTIAL" };
	size_t i, n, l;

	if (name != NULL) {
		if (ak_provider_for_var(name) != NULL)
			return 1;
		n = strlen(name);
		for (i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
			l = strlen(words[i]);
			if (strcasecmp(name, words[i]) == 0 ||
			    (n > l && name[n - l - 1] == '_' && strcasecmp(name + n - l, words[i]) == 0))
				return 1;
		}
	}
	return ak_varclass_value_secret(value);
}
