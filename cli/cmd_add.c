/* cmd_add.c - akctl add PROFILE: store a new profile (or replace one with --force).
 *
 * The secret comes from the terminal (echo off) or stdin, never argv. With an agent unlocked on this
 * keystore the agent writes the file (it owns it while unlocked); otherwise we ask the passphrase and
 * write the file ourselves through the same keystore transaction (cli_write, write.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "ak_provider.h"
#include "ak_smem.h"
#include "ak_util.h"
#include "ak_varclass.h"
#include "cli.h"


/* The direct-path change for add: put a copy of p (ak_store_put stamps the times). */
struct put_arg {
	const struct ak_profile *p;
	int force;
	int replaced;
};

static enum ak_err
apply_put(struct ak_store *s, void *arg)
{
	struct put_arg *a = arg;
	struct ak_profile *copy;
	enum ak_err r;

	/* A fresh copy on every run: the transaction may run twice, and p stays the caller's. */
	a->replaced = ak_store_find(s, a->p->name) != NULL;
	if (a->replaced && !a->force)
		return AK_ERR_PROFILE_EXISTS;
	if ((copy = ak_profile_dup(a->p)) == NULL)
		return AK_ERR_NOMEM;
	if ((r = ak_store_put(s, copy, a->force)) != AK_OK)
		ak_profile_free(copy);
	return r;
}

static enum ak_err
exists_error(const char *name)
{
	fprintf(stderr, "akctl: add: %s: profile exists; use --force to replace\n", name);
	return AK_ERR_PROFILE_EXISTS;
}

static enum ak_err
agent_put(struct ak_client *cl, void *arg)
{
	const struct put_arg *a = arg;

	return ak_client_add(cl, a->p, a->force);
}

enum ak_err
cli_profile_put(struct cli *c, const struct ak_profile *p, int force, int *replaced, char *detail,
    size_t detaillen)
{
	struct put_arg pa = { p, force, 0 };
	int direct = 0;
	enum ak_err r;

	if (replaced != NULL)
		*replaced = 0;
	if (detaillen > 0)
		detail[0] = '\0';
	if ((r = ak_profile_validate(p)) != AK_OK)
		return r;
	r = cli_write(c, agent_put, apply_put, &pa, &direct, detail, detaillen);
	if (r == AK_OK && replaced != NULL)
		*replaced = pa.replaced;
	/* "exists" says it all; a failed write on the file names the file. */
	if (r == AK_ERR_PROFILE_EXISTS && detaillen > 0)
		detail[0] = '\0';
	else if (r != AK_OK && direct && detaillen > 0 && detail[0] == '\0')
		snprintf(detail, detaillen, "%s", c->store);
	return r;
}

/* Is name already stored? Answered only by an agent unlocked on our keystore (LIST_ONE: that profile's
 * LIST row, no secret), so that add refuses before asking for a secret; otherwise the write itself
 * refuses later. An agent without LIST_ONE is asked for the whole LIST. */
static int
name_taken(struct cli *c, const char *name)
{
	struct ak_client *cl = NULL;
	struct ak_status st;
	struct ak_list_entry *ents = NULL;
	char detail[AK_CLIENT_DETAIL_MAX];
	uint32_t n = 0, i;
	int taken = 0;
	enum ak_err r;

	memset(&st, 0, sizeof(st));
	if (cli_agent_for_store(c, &cl, &st, detail, sizeof(detail)) == AK_OK && st.unlocked) {
		if ((r = ak_client_list_one(cl, name, &ents, &n)) == AK_OK)
			taken = 1;
		else if (r == AK_ERR_UNKNOWN_MESSAGE && ak_client_list(cl, &ents, &n) == AK_OK)
			for (i = 0; i < n && !taken; i++)
				taken = strcmp(ents[i].name, name) == 0;
	}
	ak_client_list_free(ents, n);
	ak_status_clear(&st);
	ak_client_close(cl);
	return taken;
}

/* A pasted key often carries a trailing newline, spaces, or a line break where the terminal wrapped
 * it: when what remains without them is a key of the provider's known format, remove them (in place,
 * *len updated) and say so. Any other secret keeps every byte. */
static void
tidy_key(const struct ak_provider *pv, const char *name, char *key, size_t *len)
{
	char *t, msg[256];
	size_t i, w = 0;

	if (pv == NULL || pv->key_prefix == NULL || pv->key_prefix[0] == '\0')
		return;
	if ((t = ak_smem_alloc(*len + 1)) == NULL)
		return;
	for (i = 0; i < *len; i++)
		if (key[i] != ' ' && key[i] != '\t' && key[i] != '\r' && key[i] != '\n')
			t[w++] = key[i];
	t[w] = '\0';
	if (w != *len && ak_provider_check_key(pv, t, msg, sizeof(msg)) == AK_KEY_OK) {
		memcpy(key, t, w + 1);
		sodium_memzero(key + w, *len - w);
		*len = w;
		cli_note("add: %s: removed spaces and line breaks from the pasted key", name);
	}
	ak_smem_free(t); /* wipes */
}

/* What add was asked for, from its options. */
struct add_args {
	const char *name, *provider, *var, *desc;
	const char *sets[AK_VARS_MAX], *secrets[AK_VARS_MAX];
	size_t nsets, nsecrets;
	int force;
	int validate; /* -1: only when the secret is typed on a terminal */
};

/* Phase 1, syntax: exit 2 before anything is read or asked. */
static enum ak_err
add_check_args(struct cli *c, const struct add_args *a)
{
	const char *eq;
	size_t i, j;

	if (ak_name_check(a->name) != AK_OK)
		return cli_fail(AK_ERR_BAD_NAME, NULL, "add: '%s'", a->name);
	if (ak_varname_check(a->var) != AK_OK)
		return cli_fail(AK_ERR_BAD_VARNAME, NULL, "add: --var '%s'", a->var);
	for (i = 0; i < a->nsets; i++) {
		if ((eq = strchr(a->sets[i], '=')) == NULL)
			return cli_usage_error(c, "--set needs NAME=VALUE, got '%s'", a->sets[i]);
		if ((size_t)(eq - a->sets[i]) > AK_VARNAME_MAX)
			return cli_fail(AK_ERR_BAD_VARNAME, NULL, "add: --set");
		/* A key given as a plain variable would be shown unredacted by list and show. */
		if (ak_varclass_value_secret(eq + 1))
			return cli_fail(AK_ERR_LOOKS_SECRET, "it was on the command line: consider it exposed in "
			    "shell history", "add: --set %.*s", (int)(eq - a->sets[i]), a->sets[i]);
	}
	if (a->nsets + a->nsecrets > AK_VARS_MAX)
		return cli_usage_error(c, "at most %d variables", AK_VARS_MAX);
	for (i = 0; i < a->nsecrets; i++) {
		if (ak_varname_check(a->secrets[i]) != AK_OK)
			return cli_fail(AK_ERR_BAD_VARNAME, NULL, "add: --secret '%s'", a->secrets[i]);
		if (strcmp(a->secrets[i], a->var) == 0)
			return cli_usage_error(c, "--secret %s: that is the main secret's variable", a->secrets[i]);
		for (j = 0; j < i; j++)
			if (strcmp(a->secrets[i], a->secrets[j]) == 0)
				return cli_usage_error(c, "--secret %s given twice", a->secrets[i]);
		for (j = 0; j < a->nsets; j++)
			if (strncmp(a->sets[j], a->secrets[i], strlen(a->secrets[i])) == 0 &&
			    a->sets[j][strlen(a->secrets[i])] == '=')
				return cli_usage_error(c, "%s given with both --set and --secret", a->secrets[i]);
	}
	return AK_OK;
}

/* Phase 2: the profile without its secrets (*out, the caller frees it). */
static enum ak_err
add_build(struct cli *c, const struct add_args *a, struct ak_profile **out)
{
	struct ak_profile *p;
	char *vname = NULL;
	const char *eq;
	enum ak_err r, rc;
	size_t i;

	if ((*out = p = ak_profile_new()) == NULL)
		return cli_fail(AK_ERR_NOMEM, NULL, "add");
	if ((r = ak_profile_set_field(&p->name, a->name)) != AK_OK ||
	    (r = ak_profile_set_field(&p->provider, a->provider)) != AK_OK ||
	    (r = ak_profile_set_field(&p->secret_var, a->var)) != AK_OK ||
	    (r = ak_profile_set_field(&p->description, a->desc)) != AK_OK)
		return cli_fail(r, NULL, "add");
	rc = AK_OK;
	for (i = 0; i < a->nsets && rc == AK_OK; i++) {
		eq = strchr(a->sets[i], '=');
		if ((vname = ak_smem_strndup(a->sets[i], (size_t)(eq - a->sets[i]))) == NULL)
			rc = cli_fail(AK_ERR_NOMEM, NULL, "add");
		else if ((r = ak_varname_check(vname)) != AK_OK)
			rc = cli_fail(r, NULL, "add: --set '%s'", vname);
		else if (strcmp(vname, a->var) == 0)
			rc = cli_usage_error(c, "--set %s: that is the secret's variable", vname);
		else if ((r = ak_profile_set_var(p, vname, eq + 1)) != AK_OK)
			rc = cli_fail(r, NULL, "add: --set %s", vname);
		ak_smem_free(vname);
		vname = NULL;
	}
	return rc;
}

/* Phase 3: the secrets, from the terminal or stdin (never argv), into p; the main one tidied when the
 * result has the provider's format, and the whole profile validated. */
static enum ak_err
add_read_secrets(const struct add_args *a, struct ak_profile *p)
{
	const char *pp[AK_VARS_MAX + 1];
	char *values[AK_VARS_MAX + 1];
	char prompts[AK_VARS_MAX + 1][AK_NAME_MAX + AK_VARNAME_MAX + 32];
	char *secret;
	size_t i, j, secretlen;
	enum ak_err r;

	memset(values, 0, sizeof(values));
	snprintf(prompts[0], sizeof(prompts[0]), "Secret for %s: ", a->name);
	pp[0] = prompts[0];
	for (i = 0; i < a->nsecrets; i++) {
		snprintf(prompts[i + 1], sizeof(prompts[i + 1]), "Secret %s for %s: ", a->secrets[i], a->name);
		pp[i + 1] = prompts[i + 1];
	}
	if ((r = cli_secrets_read(pp, a->nsecrets + 1, values)) != AK_OK)
		return cli_fail(r, a->nsecrets > 0 && !isatty(STDIN_FILENO) ? "from stdin: one line per "
		    "secret, the main secret first, then each --secret in the order given" : NULL,
		    "add: reading the secret");
	secret = values[0];
	secretlen = strlen(secret);
	for (i = 0; i < a->nsecrets; i++) {
		r = ak_profile_put_var(p, a->secrets[i], values[i + 1], 1);
		ak_smem_free(values[i + 1]); /* wipes; the profile holds its own copy */
		values[i + 1] = NULL;
		if (r != AK_OK) {
			for (j = i + 1; j < a->nsecrets; j++)
				ak_smem_free(values[j + 1]);
			ak_smem_free(secret);
			return cli_fail(r, NULL, "add: --secret %s", a->secrets[i]);
		}
	}
	tidy_key(ak_provider_find(a->provider), a->name, secret, &secretlen);
	if (secretlen == 0) {
		ak_smem_free(secret);
		return cli_fail(AK_ERR_EMPTY, NULL, "add: reading the secret");
	}
	r = ak_profile_set_field(&p->secret, secret);
	ak_smem_free(secret); /* wipes; the profile holds its own copy */
	if (r != AK_OK || (r = ak_profile_validate(p)) != AK_OK)
		return cli_fail(r, NULL, "add: %s", a->name);
	return AK_OK;
}

/* Phase 4, the live check before storing (docs/providers.md): a key the provider refuses is not stored.
 * Only a definite answer refuses: the provider rejected the key (10) or it is malformed (16). No
 * verdict (network, timeout, rate limit, provider failing, 403) stores it with a warning. *refused
 * says the key is not to be stored (the exit status is then the check's). */
static enum ak_err
add_check_live(struct cli *c, const struct add_args *a, const struct ak_profile *p, int *refused)
{
	const struct ak_provider *pv = ak_provider_find(a->provider);
	char fmt[256];
	int verdict;

	*refused = 0;
	if (a->validate == 1 || (a->validate == -1 && isatty(0) && pv != NULL && pv->check_path != NULL)) {
		verdict = cli_net_validate(c, p);
		if (verdict == 10 || verdict == 16) {
			cli_note("add: %s: not stored (--no-validate stores it unchecked)", a->name);
			*refused = 1;
			return cli_status(c, verdict);
		}
		if (verdict != 0)
			cli_note("add: %s: warning: the key could not be verified; storing it unverified "
			    "(check later with 'akctl test %s')", a->name, a->name);
	} else if (pv != NULL && ak_provider_check_key(pv, p->secret, fmt, sizeof(fmt)) != AK_KEY_OK) {
		cli_note("add: %s: warning: %s", a->name, fmt);
	}
	return AK_OK;
}

enum ak_err
cmd_add(struct cli *c, int argc, char **argv)
{
	struct add_args a = { .provider = "anthropic", .desc = "", .validate = -1 };
	const struct ak_provider *pv;
	struct ak_profile *p = NULL;
	char detail[512];
	int replaced = 0, refused, helped;
	enum ak_err rc, r;
	const struct ak_opt opts[] = {
		CLI_FLAG("force", &a.force, 1),
		CLI_VALUE("provider", &a.provider),
		CLI_VALUE("var", &a.var),
		CLI_LIST("set", a.sets, &a.nsets, AK_VARS_MAX),
		CLI_LIST("secret", a.secrets, &a.nsecrets, AK_VARS_MAX),
		CLI_VALUE("description", &a.desc),
		CLI_FLAG("validate", &a.validate, 1),
		CLI_FLAG("no-validate", &a.validate, 0),
		CLI_OPT_END,
	};

	/* Alone at a terminal: ask (add_guide.c), then come back here with the answers as options. */
	if (argc == 1 && isatty(STDIN_FILENO) && isatty(STDERR_FILENO))
		return cli_add_guided(c);
	if ((rc = cli_opts_parse(c, argc, argv, opts, 0, &helped)) != AK_OK || helped)
		return rc;
	if (optind >= argc)
		return cli_usage_error(c, "missing PROFILE");
	if (optind + 1 != argc)
		return cli_usage_error(c, "unexpected argument '%s' (the secret is read from the terminal "
		    "or stdin, never from arguments)", argv[optind + 1]);
	a.name = argv[optind];
	/* The secret's variable follows the provider (openai => OPENAI_API_KEY) unless --var says. */
	if (a.var == NULL && ((pv = ak_provider_find(a.provider)) == NULL || (a.var = pv->secret_var)[0] == '\0'))
		return cli_usage_error(c, "--provider %s has no default variable: give --var NAME", a.provider);

	if ((rc = add_check_args(c, &a)) != AK_OK || (rc = add_build(c, &a, &p)) != AK_OK)
		goto out;
	/* Refuse an existing name before the secret is typed, not after. */
	if (!a.force && name_taken(c, a.name)) {
		rc = exists_error(a.name);
		goto out;
	}
	if ((rc = add_read_secrets(&a, p)) != AK_OK || (rc = add_check_live(c, &a, p, &refused)) != AK_OK ||
	    refused)
		goto out;
	/* Phase 5: store, through the agent when it is unlocked on this keystore, else in the file. */
	if ((r = cli_profile_put(c, p, a.force, &replaced, detail, sizeof(detail))) != AK_OK) {
		rc = r == AK_ERR_PROFILE_EXISTS ? exists_error(a.name) :
		    cli_fail(r, detail[0] ? detail : NULL, "add: %s", a.name);
		goto out;
	}
	cli_note("%s profile %s", replaced ? "replaced" : a.force ? "stored" : "added", a.name);
	rc = AK_OK;
out:
	ak_profile_free(p);
	return rc;
}
