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

enum ak_err
cmd_add(struct cli *c, int argc, char **argv)
{
	const char *provider = "anthropic", *var = NULL, *desc = "", *name;
	const struct ak_provider *pv;
	char fmt[256];
	int validate = -1; /* -1: only when the secret is typed on a terminal */
	const char *sets[AK_VARS_MAX], *secrets[AK_VARS_MAX];
	const char *pp[AK_VARS_MAX + 1];
	char *values[AK_VARS_MAX + 1];
	char prompts[AK_VARS_MAX + 1][AK_NAME_MAX + AK_VARNAME_MAX + 32];
	struct ak_profile *p = NULL;
	char *secret = NULL, *vname = NULL;
	char detail[512];
	const char *eq;
	size_t nsets = 0, nsecrets = 0, i, j, secretlen = 0;
	int force = 0, replaced = 0, helped;
	enum ak_err rc, r;
	const struct ak_opt opts[] = {
		CLI_FLAG("force", &force, 1),
		CLI_VALUE("provider", &provider),
		CLI_VALUE("var", &var),
		CLI_LIST("set", sets, &nsets, AK_VARS_MAX),
		CLI_LIST("secret", secrets, &nsecrets, AK_VARS_MAX),
		CLI_VALUE("description", &desc),
		CLI_FLAG("validate", &validate, 1),
		CLI_FLAG("no-validate", &validate, 0),
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
	name = argv[optind];
	/* The secret's variable follows the provider (openai => OPENAI_API_KEY) unless --var says. */
	if (var == NULL && ((pv = ak_provider_find(provider)) == NULL || (var = pv->secret_var)[0] == '\0'))
		return cli_usage_error(c, "--provider %s has no default variable: give --var NAME", provider);

	/* Syntax first: exit 2 before anything is read or asked. */
	if (ak_name_check(name) != AK_OK)
		return cli_fail(AK_ERR_BAD_NAME, NULL, "add: '%s'", name);
	if (ak_varname_check(var) != AK_OK)
		return cli_fail(AK_ERR_BAD_VARNAME, NULL, "add: --var '%s'", var);
	for (i = 0; i < nsets; i++) {
		if ((eq = strchr(sets[i], '=')) == NULL)
			return cli_usage_error(c, "--set needs NAME=VALUE, got '%s'", sets[i]);
		if ((size_t)(eq - sets[i]) > AK_VARNAME_MAX)
			return cli_fail(AK_ERR_BAD_VARNAME, NULL, "add: --set");
		/* A key given as a plain variable would be shown unredacted by list and show. */
		if (ak_varclass_value_secret(eq + 1))
			return cli_fail(AK_ERR_LOOKS_SECRET, "it was on the command line: consider it exposed in "
			    "shell history", "add: --set %.*s", (int)(eq - sets[i]), sets[i]);
	}
	if (nsets + nsecrets > AK_VARS_MAX)
		return cli_usage_error(c, "at most %d variables", AK_VARS_MAX);
	for (i = 0; i < nsecrets; i++) {
		if (ak_varname_check(secrets[i]) != AK_OK)
			return cli_fail(AK_ERR_BAD_VARNAME, NULL, "add: --secret '%s'", secrets[i]);
		if (strcmp(secrets[i], var) == 0)
			return cli_usage_error(c, "--secret %s: that is the main secret's variable", secrets[i]);
		for (j = 0; j < i; j++)
			if (strcmp(secrets[i], secrets[j]) == 0)
				return cli_usage_error(c, "--secret %s given twice", secrets[i]);
		for (j = 0; j < nsets; j++)
			if (strncmp(sets[j], secrets[i], strlen(secrets[i])) == 0 &&
			    sets[j][strlen(secrets[i])] == '=')
				return cli_usage_error(c, "%s given with both --set and --secret", secrets[i]);
	}

	if ((p = ak_profile_new()) == NULL) {
		rc = cli_fail(AK_ERR_NOMEM, NULL, "add");
		goto out;
	}
	if ((r = ak_profile_set_field(&p->name, name)) != AK_OK ||
	    (r = ak_profile_set_field(&p->provider, provider)) != AK_OK ||
	    (r = ak_profile_set_field(&p->secret_var, var)) != AK_OK ||
	    (r = ak_profile_set_field(&p->description, desc)) != AK_OK) {
		rc = cli_fail(r, NULL, "add");
		goto out;
	}
	for (i = 0; i < nsets; i++) {
		eq = strchr(sets[i], '=');
		if ((vname = ak_smem_strndup(sets[i], (size_t)(eq - sets[i]))) == NULL) {
			rc = cli_fail(AK_ERR_NOMEM, NULL, "add");
			goto out;
		}
		if ((r = ak_varname_check(vname)) != AK_OK) {
			rc = cli_fail(r, NULL, "add: --set '%s'", vname);
			goto out;
		}
		if (strcmp(vname, var) == 0) {
			rc = cli_usage_error(c, "--set %s: that is the secret's variable", vname);
			goto out;
		}
		if ((r = ak_profile_set_var(p, vname, eq + 1)) != AK_OK) {
			rc = cli_fail(r, NULL, "add: --set %s", vname);
			goto out;
		}
		ak_smem_free(vname);
		vname = NULL;
	}

	/* Refuse an existing name before the secret is typed, not after. */
	if (!force && name_taken(c, name)) {
		rc = exists_error(name);
		goto out;
	}
	memset(values, 0, sizeof(values));
	snprintf(prompts[0], sizeof(prompts[0]), "Secret for %s: ", name);
	pp[0] = prompts[0];
	for (i = 0; i < nsecrets; i++) {
		snprintf(prompts[i + 1], sizeof(prompts[i + 1]), "Secret %s for %s: ", secrets[i], name);
		pp[i + 1] = prompts[i + 1];
	}
	if ((r = cli_secrets_read(pp, nsecrets + 1, values)) != AK_OK) {
		rc = cli_fail(r, nsecrets > 0 && !isatty(STDIN_FILENO) ? "from stdin: one line per secret, "
		    "the main secret first, then each --secret in the order given" : NULL,
		    "add: reading the secret");
		goto out;
	}
	secret = values[0];
	values[0] = NULL;
	secretlen = strlen(secret);
	for (i = 0; i < nsecrets; i++) {
		r = ak_profile_put_var(p, secrets[i], values[i + 1], 1);
		ak_smem_free(values[i + 1]); /* wipes; the profile holds its own copy */
		values[i + 1] = NULL;
		if (r != AK_OK) {
			for (j = i + 1; j < nsecrets; j++) {
				ak_smem_free(values[j + 1]);
				values[j + 1] = NULL;
			}
			rc = cli_fail(r, NULL, "add: --secret %s", secrets[i]);
			goto out;
		}
	}
	tidy_key(ak_provider_find(provider), name, secret, &secretlen);
	if (secretlen == 0) {
		rc = cli_fail(AK_ERR_EMPTY, NULL, "add: reading the secret");
		goto out;
	}
	r = ak_profile_set_field(&p->secret, secret);
	ak_smem_free(secret); /* wipes; the profile holds its own copy */
	secret = NULL;
	if (r != AK_OK || (r = ak_profile_validate(p)) != AK_OK) {
		rc = cli_fail(r, NULL, "add: %s", name);
		goto out;
	}
	/* Live check before storing (docs/providers.md): a key the provider refuses is not stored. */
	pv = ak_provider_find(provider);
	if (validate == 1 || (validate == -1 && isatty(0) && pv != NULL && pv->check_path != NULL)) {
		/* Only a definite answer refuses: the provider rejected the key (10) or it is malformed
		 * (16). No verdict (network, timeout, rate limit, provider failing, 403) stores it. */
		int verdict = cli_net_validate(c, p);

		if (verdict == 10 || verdict == 16) {
			cli_note("add: %s: not stored (--no-validate stores it unchecked)", name);
			rc = cli_status(c, verdict);
			goto out;
		}
		if (verdict != 0)
			cli_note("add: %s: warning: the key could not be verified; storing it unverified "
			    "(check later with 'akctl test %s')", name, name);
	} else if (pv != NULL && ak_provider_check_key(pv, p->secret, fmt, sizeof(fmt)) != AK_KEY_OK) {
		cli_note("add: %s: warning: %s", name, fmt);
	}

	if ((r = cli_profile_put(c, p, force, &replaced, detail, sizeof(detail))) != AK_OK) {
		rc = r == AK_ERR_PROFILE_EXISTS ? exists_error(name) :
		    cli_fail(r, detail[0] ? detail : NULL, "add: %s", name);
		goto out;
	}
	cli_note("%s profile %s", replaced ? "replaced" : force ? "stored" : "added", name);
	rc = AK_OK;
out:
	ak_profile_free(p);
	ak_smem_free(vname);
	ak_smem_free(secret);
	return rc;
}
