/* cmd_add.c - akctl add PROFILE: store a new profile (or replace one with --force).
 *
 * The secret comes from the terminal (echo off) or stdin, never argv. With an agent unlocked on this
 * keystore the agent writes the file (it owns it while unlocked); otherwise we ask the passphrase and
 * write the file ourselves through the same keystore transaction. Also holds the direct-file helper rm
 * shares.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "ak_provider.h"
#include "ak_smem.h"
#include "ak_util.h"
#include "cli.h"


enum ak_err
cli_store_update_direct(struct cli *c, ak_store_apply_fn apply, void *arg, char *detail,
    size_t detaillen)
{
	char prompt[AK_PATH_MAX + 64];
	char *pass = NULL;
	size_t passlen = 0;
	enum ak_err r;

	/* Fail early (no prompt) when there is no file to open. */
	if (access(c->store, F_OK) != 0)
		return AK_ERR_NO_STORE;
	snprintf(prompt, sizeof(prompt), "Passphrase for %s: ", c->store);
	if ((r = cli_pass_read(c, prompt, 0, &pass, &passlen, detail, detaillen)) != AK_OK)
		goto out;
	r = ak_store_update_pass(c->store, pass, passlen, apply, arg);
out:
	ak_smem_free(pass); /* wipes */
	return r;
}

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

static int
exists_error(const char *name)
{
	fprintf(stderr, "akctl: add: %s: profile exists; use --force to replace\n", name);
	return ak_err_exit_code(AK_ERR_PROFILE_EXISTS);
}

enum ak_err
cli_profile_put(struct cli *c, const struct ak_profile *p, int force, int *replaced, char *detail,
    size_t detaillen)
{
	struct ak_client *cl = NULL;
	struct ak_status st;
	struct put_arg pa;
	enum ak_err r;

	memset(&st, 0, sizeof(st));
	if (replaced != NULL)
		*replaced = 0;
	if (detaillen > 0)
		detail[0] = '\0';
	if ((r = ak_profile_validate(p)) != AK_OK)
		return r;
	if ((r = cli_store_path(c)) != AK_OK)
		return r;
	r = cli_agent_for_store(c, &cl, &st, detail, detaillen);
	if (r == AK_ERR_UNTRUSTED_AGENT)
		goto out; /* never fall back quietly past an impostor: the user must see it */
	if (r == AK_OK && st.unlocked) {
		if ((r = ak_client_add(cl, p, force)) != AK_OK && r != AK_ERR_PROFILE_EXISTS &&
		    detaillen > 0)
			cli_sanitize(ak_client_detail(cl), detail, detaillen);
		goto out;
	}
	ak_client_close(cl);
	cl = NULL;
	if (detaillen > 0)
		detail[0] = '\0';
	pa.p = p;
	pa.force = force;
	pa.replaced = 0;
	r = cli_store_update_direct(c, apply_put, &pa, detail, detaillen);
	if (r == AK_OK && replaced != NULL)
		*replaced = pa.replaced;
	if (r != AK_OK && r != AK_ERR_PROFILE_EXISTS && detaillen > 0 && detail[0] == '\0')
		snprintf(detail, detaillen, "%s", c->store);
out:
	ak_status_clear(&st);
	ak_client_close(cl);
	return r;
}

/* Is name already stored? Answered only by an agent unlocked on our keystore (LIST: names, no secret),
 * so that add refuses before asking for a secret; otherwise the write itself refuses later. */
static int
name_taken(struct cli *c, const char *name)
{
	struct ak_client *cl = NULL;
	struct ak_status st;
	struct ak_list_entry *ents = NULL;
	char detail[AK_CLIENT_DETAIL_MAX];
	uint32_t n = 0, i;
	int taken = 0;

	memset(&st, 0, sizeof(st));
	if (cli_agent_for_store(c, &cl, &st, detail, sizeof(detail)) == AK_OK && st.unlocked &&
	    ak_client_list(cl, &ents, &n) == AK_OK)
		for (i = 0; i < n && !taken; i++)
			taken = strcmp(ents[i].name, name) == 0;
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

/* What the command line asked for. */
struct add_args {
	const char *name, *provider, *var, *desc;
	const char *sets[AK_VARS_MAX];
	size_t nsets;
	int force;
	int validate; /* -1: only when the secret is typed on a terminal */
};

/* Options and operands, and their syntax: exit 2 before anything is read or asked. Returns 0, or the
 * exit code (help printed: 0 too, with *done set). */
static int
add_parse(struct cli *c, int argc, char **argv, struct add_args *a, int *done)
{
	static const struct option longopts[] = {
		{ "force", no_argument, NULL, 'F' },
		{ "provider", required_argument, NULL, 'p' },
		{ "var", required_argument, NULL, 'v' },
		{ "set", required_argument, NULL, 's' },
		{ "description", required_argument, NULL, 'd' },
		{ "validate", no_argument, NULL, 'Y' },
		{ "no-validate", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const struct ak_provider *pv;
	const char *eq;
	size_t i;
	int ch;

	*done = 1;
	while ((ch = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'F':
			a->force = 1;
			break;
		case 'p':
			a->provider = optarg;
			break;
		case 'v':
			a->var = optarg;
			break;
		case 's':
			if (a->nsets == AK_VARS_MAX)
				return cli_usage_error(c, "at most %d --set", AK_VARS_MAX);
			a->sets[a->nsets++] = optarg;
			break;
		case 'd':
			a->desc = optarg;
			break;
		case 'Y':
		case 'n':
			a->validate = ch == 'Y';
			break;
		default:
			return cli_opt_other(c, ch, argv);
		}
	}
	if (optind >= argc)
		return cli_usage_error(c, "missing PROFILE");
	if (optind + 1 != argc)
		return cli_usage_error(c, "unexpected argument '%s' (the secret is read from the terminal "
		    "or stdin, never from arguments)", argv[optind + 1]);
	a->name = argv[optind];
	/* The secret's variable follows the provider (openai => OPENAI_API_KEY) unless --var says. */
	if (a->var == NULL &&
	    ((pv = ak_provider_find(a->provider)) == NULL || (a->var = pv->secret_var)[0] == '\0'))
		return cli_usage_error(c, "--provider %s has no default variable: give --var NAME", a->provider);
	if (ak_name_check(a->name) != AK_OK)
		return cli_fail(AK_ERR_BAD_NAME, NULL, "add: '%s'", a->name);
	if (ak_varname_check(a->var) != AK_OK)
		return cli_fail(AK_ERR_BAD_VARNAME, NULL, "add: --var '%s'", a->var);
	for (i = 0; i < a->nsets; i++) {
		if ((eq = strchr(a->sets[i], '=')) == NULL)
			return cli_usage_error(c, "--set needs NAME=VALUE, got '%s'", a->sets[i]);
		if ((size_t)(eq - a->sets[i]) > AK_VARNAME_MAX)
			return cli_fail(AK_ERR_BAD_VARNAME, NULL, "add: --set");
	}
	*done = 0;
	return 0;
}

/* The profile without its secret. Returns 0 with *out, or the exit code. */
static int
add_build(struct cli *c, const struct add_args *a, struct ak_profile **out)
{
	struct ak_profile *p;
	char *vname = NULL;
	const char *eq;
	size_t i;
	int rc = 0;
	enum ak_err r;

	if ((p = ak_profile_new()) == NULL)
		return cli_fail(AK_ERR_NOMEM, NULL, "add");
	if ((r = ak_profile_set_field(&p->name, a->name)) != AK_OK ||
	    (r = ak_profile_set_field(&p->provider, a->provider)) != AK_OK ||
	    (r = ak_profile_set_field(&p->secret_var, a->var)) != AK_OK ||
	    (r = ak_profile_set_field(&p->description, a->desc)) != AK_OK) {
		rc = cli_fail(r, NULL, "add");
		goto out;
	}
	for (i = 0; i < a->nsets; i++) {
		eq = strchr(a->sets[i], '=');
		if ((vname = ak_smem_strndup(a->sets[i], (size_t)(eq - a->sets[i]))) == NULL) {
			rc = cli_fail(AK_ERR_NOMEM, NULL, "add");
			goto out;
		}
		if ((r = ak_varname_check(vname)) != AK_OK) {
			rc = cli_fail(r, NULL, "add: --set '%s'", vname);
			goto out;
		}
		if (strcmp(vname, a->var) == 0) {
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
out:
	ak_smem_free(vname);
	if (rc != 0)
		ak_profile_free(p);
	else
		*out = p;
	return rc;
}

/* The secret, from the terminal (raw, bracketed paste) or stdin, into the profile. Returns 0, or the
 * exit code. */
static int
add_read_secret(const struct add_args *a, struct ak_profile *p)
{
	char prompt[AK_NAME_MAX + 32];
	char *secret = NULL;
	size_t secretlen = 0;
	enum ak_err r;

	snprintf(prompt, sizeof(prompt), "Secret for %s: ", a->name);
	if ((r = cli_secret_read(prompt, &secret, &secretlen)) != AK_OK)
		return cli_fail(r, NULL, "add: reading the secret");
	tidy_key(ak_provider_find(a->provider), a->name, secret, &secretlen);
	if (secretlen == 0) {
		ak_smem_free(secret);
		return cli_fail(AK_ERR_EMPTY, NULL, "add: reading the secret");
	}
	r = ak_profile_set_field(&p->secret, secret);
	ak_smem_free(secret); /* wipes; the profile holds its own copy */
	if (r != AK_OK || (r = ak_profile_validate(p)) != AK_OK)
		return cli_fail(r, NULL, "add: %s", a->name);
	return 0;
}

/* Live check before storing (docs/providers.md): a key the provider refuses is not stored. Returns 0
 * to store, or the exit code. */
static int
add_check(struct cli *c, const struct add_args *a, const struct ak_profile *p)
{
	const struct ak_provider *pv = ak_provider_find(a->provider);
	char fmt[256];
	int rc;

	if (a->validate == 1 || (a->validate == -1 && isatty(0) && pv != NULL && pv->check_path != NULL)) {
		/* Only a definite answer refuses: the provider rejected the key (10) or it is malformed
		 * (16). No verdict (network, timeout, rate limit, provider failing, 403) stores it. */
		rc = cli_net_validate(c, p);
		if (rc == 10 || rc == 16) {
			cli_note("add: %s: not stored (--no-validate stores it unchecked)", a->name);
			return rc;
		}
		if (rc != 0)
			cli_note("add: %s: warning: the key could not be verified; storing it unverified "
			    "(check later with 'akctl test %s')", a->name, a->name);
	} else if (pv != NULL && ak_provider_check_key(pv, p->secret, fmt, sizeof(fmt)) != AK_KEY_OK) {
		cli_note("add: %s: warning: %s", a->name, fmt);
	}
	return 0;
}

int
cmd_add(struct cli *c, int argc, char **argv)
{
	struct add_args a = { .provider = "anthropic", .desc = "", .validate = -1 };
	struct ak_profile *p = NULL;
	char detail[512];
	int rc, done, replaced = 0;
	enum ak_err r;

	if ((rc = add_parse(c, argc, argv, &a, &done)) != 0 || done)
		return rc;
	if ((rc = add_build(c, &a, &p)) != 0)
		return rc;
	/* Refuse an existing name before the secret is typed, not after. */
	if (!a.force && name_taken(c, a.name)) {
		rc = exists_error(a.name);
		goto out;
	}
	if ((rc = add_read_secret(&a, p)) != 0 || (rc = add_check(c, &a, p)) != 0)
		goto out;
	if ((r = cli_profile_put(c, p, a.force, &replaced, detail, sizeof(detail))) != AK_OK) {
		rc = r == AK_ERR_PROFILE_EXISTS ? exists_error(a.name) :
		    cli_fail(r, detail[0] ? detail : NULL, "add: %s", a.name);
		goto out;
	}
	cli_note("%s profile %s", replaced ? "replaced" : a.force ? "stored" : "added", a.name);
	rc = 0;
out:
	ak_profile_free(p);
	return rc;
}
