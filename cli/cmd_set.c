/* cmd_set.c - akctl set PROFILE (change attributes), rename OLD NEW, cp SRC DST.
 *
 * Each builds one edit (ak_edit.h) that names what changes; everything else of the profile stays,
 * its main secret and times included. The edit is applied in the one keystore transaction: by the
 * agent (EDIT) when it is unlocked on this keystore, else by akctl on the file with the passphrase.
 * Secret values (--secret VAR) are read like add's secret, never from argv. Also holds the reader of
 * several secrets that add shares.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ak_edit.h"
#include "ak_smem.h"
#include "ak_util.h"
#include "ak_varclass.h"
#include "cli.h"

enum ak_err
cli_secrets_read(const char *const *prompts, size_t n, char **outs)
{
	char *all = NULL, *line, *nl;
	size_t len = 0, i, l;
	enum ak_err r;

	for (i = 0; i < n; i++)
		outs[i] = NULL;
	if (n == 0)
		return AK_OK;
	if (n == 1 || isatty(STDIN_FILENO)) {
		for (i = 0; i < n; i++)
			if ((r = cli_secret_read(prompts[i], &outs[i], &len)) != AK_OK)
				goto fail;
		return AK_OK;
	}
	/* Several secrets from a pipe: one line each, in the order asked. */
	if ((r = cli_secret_read(prompts[0], &all, &len)) != AK_OK)
		goto fail;
	line = all;
	for (i = 0; i < n; i++) {
		if (line == NULL) {
			r = AK_ERR_TRUNCATED;
			goto fail;
		}
		nl = strchr(line, '\n');
		l = nl != NULL ? (size_t)(nl - line) : strlen(line);
		if (l > 0 && line[l - 1] == '\r')
			l--;
		if (l == 0) {
			r = AK_ERR_EMPTY;
			goto fail;
		}
		if ((outs[i] = ak_smem_strndup(line, l)) == NULL) {
			r = AK_ERR_NOMEM;
			goto fail;
		}
		line = nl != NULL ? nl + 1 : NULL;
	}
	if (line != NULL) {
		r = AK_ERR_TOO_LARGE; /* more lines than secrets asked for */
		goto fail;
	}
	ak_smem_free(all);
	return AK_OK;
fail:
	ak_smem_free(all); /* wipes */
	for (i = 0; i < n; i++) {
		ak_smem_free(outs[i]);
		outs[i] = NULL;
	}
	return r;
}

static enum ak_err
agent_edit(struct ak_client *cl, void *arg)
{
	return ak_client_edit(cl, arg);
}

enum ak_err
cli_edit_run(struct cli *c, struct ak_edit *e, char *detail, size_t detaillen)
{
	/* ak_edit_apply does not consume the edit, so the transaction may run it twice. */
	return cli_write(c, agent_edit, ak_edit_apply, e, NULL, detail, detaillen);
}

/* The message for a failed edit; returns r. */
static enum ak_err
edit_fail(struct cli *c, enum ak_err r, const char *detail, const char *name, const char *var)
{
	switch (r) {
	case AK_ERR_NO_PROFILE:
	case AK_ERR_PROFILE_EXISTS:
		return cli_fail(r, NULL, "%s: %s", c->cmd, name);
	case AK_ERR_NO_VAR:
		return cli_fail(r, NULL, "%s: %s: %s", c->cmd, name, var != NULL ? var : "");
	case AK_ERR_INVALID:
		return cli_fail(r, "the main secret's variable changes only with 'add --force' or 'rotate'",
		    "%s: %s", c->cmd, name);
	default:
		return cli_fail(r, detail != NULL && detail[0] ? detail : NULL, "%s: %s", c->cmd, name);
	}
}

enum ak_err
cmd_set(struct cli *c, int argc, char **argv)
{
	const char *sets[AK_EDIT_MAX], *unsets[AK_EDIT_MAX], *secrets[AK_EDIT_MAX];
	const char *desc = NULL, *provider = NULL, *name, *eq, *unvar = NULL, *every = NULL;
	char everys[24], lifes[24];
	uint32_t every_s = 0, life_s = 0;
	const char *life = NULL;
	int confirm_on = 0, confirm_off = 0, confirm;
	char *values[AK_EDIT_MAX], *vname = NULL, detail[512];
	char prompts[AK_EDIT_MAX][AK_NAME_MAX + AK_VARNAME_MAX + 32];
	const char *pp[AK_EDIT_MAX];
	size_t nsets = 0, nunsets = 0, nsecrets = 0, i, j;
	struct ak_edit *e = NULL;
	int helped;
	enum ak_err rc, r;
	const struct ak_opt opts[] = {
		CLI_LIST("set", sets, &nsets, AK_EDIT_MAX),
		CLI_LIST("unset", unsets, &nunsets, AK_EDIT_MAX),
		CLI_LIST("secret", secrets, &nsecrets, AK_EDIT_MAX),
		CLI_VALUE("description", &desc),
		CLI_VALUE("provider", &provider),
		CLI_VALUE("rotate-every", &every),
		CLI_FLAG("confirm", &confirm_on, 1),
		CLI_FLAG("no-confirm", &confirm_off, 1),
		CLI_VALUE("lifetime", &life),
		CLI_OPT_END,
	};

	memset(values, 0, sizeof(values));
	if ((rc = cli_opts_parse(c, argc, argv, opts, 0, &helped)) != AK_OK || helped)
		return rc;
	/* Room for the description, provider, rotation policy, confirm and lifetime too, in one edit. */
	if (nsets + nunsets + nsecrets + 5 > AK_EDIT_MAX)
		return cli_usage_error(c, "at most %d changes at once", AK_EDIT_MAX - 5);
	if (confirm_on && confirm_off)
		return cli_usage_error(c, "--confirm and --no-confirm together");
	confirm = confirm_on ? 1 : confirm_off ? 0 : -1;
	if ((rc = cli_one_profile(c, argc, argv, &name)) != AK_OK)
		return rc;
	if (nsets + nunsets + nsecrets == 0 && desc == NULL && provider == NULL && every == NULL &&
	    confirm == -1 && life == NULL)
		return cli_usage_error(c, "nothing to change (--set, --unset, --secret, --description, "
		    "--provider, --rotate-every, --confirm, --no-confirm, --lifetime)");
	if (life != NULL && strcmp(life, "none") != 0 &&
	    (ak_duration_parse(life, &life_s) != AK_OK || life_s == 0))
		return cli_usage_error(c, "--lifetime needs a duration like 1h, 30m or 90s, or none (at "
		    "most 365d)");
	if (every != NULL && ak_duration_parse(every, &every_s) != AK_OK)
		return cli_usage_error(c, "--rotate-every needs a duration like 90d, 12w or 0 (none; at most "
		    "365d)");
	if ((e = ak_edit_new(name)) == NULL) {
		rc = cli_fail(AK_ERR_NOMEM, NULL, "set");
		goto out;
	}
	/* Everything from argv is checked before any secret is asked for. */
	for (i = 0; i < nsets; i++) {
		if ((eq = strchr(sets[i], '=')) == NULL) {
			rc = cli_usage_error(c, "--set needs NAME=VALUE, got '%s'", sets[i]);
			goto out;
		}
		if ((vname = ak_smem_strndup(sets[i], (size_t)(eq - sets[i]))) == NULL) {
			rc = cli_fail(AK_ERR_NOMEM, NULL, "set");
			goto out;
		}
		/* A key given as a plain variable would show in list, show and every export line's
		 * neighbourhood unredacted; it also went through argv, so say so. */
		if (ak_varclass_value_secret(eq + 1)) {
			rc = cli_fail(AK_ERR_LOOKS_SECRET, "it was on the command line: consider it exposed in "
			    "shell history", "set: --set %s", vname);
			goto out;
		}
		if ((r = ak_edit_add(e, AK_EDIT_SET_VAR, vname, eq + 1)) != AK_OK) {
			rc = cli_fail(r, NULL, "set: --set '%s'", vname);
			goto out;
		}
		ak_smem_free(vname);
		vname = NULL;
	}
	for (i = 0; i < nunsets; i++) {
		if ((r = ak_edit_add(e, AK_EDIT_UNSET, unsets[i], NULL)) != AK_OK) {
			rc = cli_fail(r, NULL, "set: --unset '%s'", unsets[i]);
			goto out;
		}
	}
	for (i = 0; i < nsecrets; i++) {
		if (ak_varname_check(secrets[i]) != AK_OK) {
			rc = cli_fail(AK_ERR_BAD_VARNAME, NULL, "set: --secret '%s'", secrets[i]);
			goto out;
		}
		for (j = 0; j < i; j++) {
			if (strcmp(secrets[i], secrets[j]) == 0) {
				rc = cli_usage_error(c, "--secret %s given twice", secrets[i]);
				goto out;
			}
		}
		snprintf(prompts[i], sizeof(prompts[i]), "Secret %s for %s: ", secrets[i], name);
		pp[i] = prompts[i];
	}
	if (desc != NULL && (r = ak_edit_add(e, AK_EDIT_DESCRIPTION, desc, NULL)) != AK_OK) {
		rc = cli_fail(r, NULL, "set: --description");
		goto out;
	}
	if (provider != NULL && (r = ak_edit_add(e, AK_EDIT_PROVIDER, provider, NULL)) != AK_OK) {
		rc = cli_fail(r, NULL, "set: --provider");
		goto out;
	}
	snprintf(everys, sizeof(everys), "%lu", (unsigned long)every_s);
	if (every != NULL && (r = ak_edit_add(e, AK_EDIT_ROTATE_EVERY, everys, NULL)) != AK_OK) {
		rc = cli_fail(r, NULL, "set: --rotate-every");
		goto out;
	}
	if (confirm != -1 && (r = ak_edit_add(e, AK_EDIT_CONFIRM, confirm ? "1" : "0", NULL)) != AK_OK) {
		rc = cli_fail(r, NULL, "set: --confirm");
		goto out;
	}
	snprintf(lifes, sizeof(lifes), "%lu", (unsigned long)life_s);
	if (life != NULL && (r = ak_edit_add(e, AK_EDIT_LIFETIME, lifes, NULL)) != AK_OK) {
		rc = cli_fail(r, NULL, "set: --lifetime");
		goto out;
	}
	if ((r = cli_secrets_read(pp, nsecrets, values)) != AK_OK) {
		rc = cli_fail(r, nsecrets > 1 && !isatty(STDIN_FILENO) ?
		    "from stdin: one line per --secret, in the order given" : NULL, "set: reading the secrets");
		goto out;
	}
	for (i = 0; i < nsecrets; i++) {
		if ((r = ak_edit_add(e, AK_EDIT_SET_SECRET, secrets[i], values[i])) != AK_OK) {
			rc = cli_fail(r, NULL, "set: --secret %s", secrets[i]);
			goto out;
		}
	}
	if ((r = cli_edit_run(c, e, detail, sizeof(detail))) != AK_OK) {
		if (r == AK_ERR_NO_VAR)
			for (i = 0; i < nunsets && unvar == NULL; i++)
				unvar = unsets[i]; /* the agent does not say which: name the first */
		rc = edit_fail(c, r, detail, name, nunsets == 1 ? unvar : NULL);
		goto out;
	}
	cli_note("changed profile %s", name);
	rc = AK_OK;
out:
	for (i = 0; i < nsecrets; i++)
		ak_smem_free(values[i]); /* wipes */
	ak_smem_free(vname);
	ak_edit_free(e);
	return rc;
}

/* rename OLD NEW and cp SRC DST. */
static enum ak_err
rename_or_copy(struct cli *c, int argc, char **argv, int copy)
{
	struct ak_edit *e = NULL;
	char detail[512];
	const char *from, *to;
	int helped;
	enum ak_err rc;
	enum ak_err r;

	if ((rc = cli_opts_help_only(c, argc, argv, &helped)) != AK_OK || helped)
		return rc;
	if (argc - optind != 2)
		return cli_usage_error(c, argc - optind < 2 ? "needs two profile names" :
		    "unexpected argument '%s'", argv[optind + 2 < argc ? optind + 2 : 0]);
	from = argv[optind];
	to = argv[optind + 1];
	if (ak_name_check(from) != AK_OK)
		return cli_fail(AK_ERR_BAD_NAME, NULL, "%s: '%s'", c->cmd, from);
	if (ak_name_check(to) != AK_OK)
		return cli_fail(AK_ERR_BAD_NAME, NULL, "%s: '%s'", c->cmd, to);
	if (strcmp(from, to) == 0)
		return cli_usage_error(c, "the two names are the same");
	if ((e = ak_edit_new(from)) == NULL ||
	    (r = ak_edit_add(e, copy ? AK_EDIT_COPY : AK_EDIT_RENAME, to, NULL)) != AK_OK) {
		rc = cli_fail(AK_ERR_NOMEM, NULL, "%s", c->cmd);
		goto out;
	}
	if ((r = cli_edit_run(c, e, detail, sizeof(detail))) != AK_OK) {
		rc = edit_fail(c, r, detail, r == AK_ERR_PROFILE_EXISTS ? to : from, NULL);
		goto out;
	}
	cli_note("%s profile %s to %s", copy ? "copied" : "renamed", from, to);
	rc = AK_OK;
out:
	ak_edit_free(e);
	return rc;
}

enum ak_err
cmd_rename(struct cli *c, int argc, char **argv)
{
	return rename_or_copy(c, argc, argv, 0);
}

enum ak_err
cmd_cp(struct cli *c, int argc, char **argv)
{
	return rename_or_copy(c, argc, argv, 1);
}

void
cli_use_policy_mark(const struct ak_list_entry *e, int64_t now, char *buf, size_t buflen)
{
	char dur[32] = "";
	size_t n = 0;

	buf[0] = '\0';
	if (e->confirm)
		n = (size_t)snprintf(buf, buflen, " confirm");
	if (n >= buflen)
		return;
	if (e->expired)
		snprintf(buf + n, buflen - n, " expired");
	else if (e->wipe_at != 0) {
		ak_duration_format(e->wipe_at > now ? (uint32_t)(e->wipe_at - now) : 0, dur, sizeof(dur));
		snprintf(buf + n, buflen - n, " wiped in %s", dur);
	}
}

void
cli_use_policy_status(struct ak_client *cl)
{
	struct ak_list_entry *e = NULL;
	uint32_t n = 0, i, confirm = 0, expired = 0, timed = 0;
	int64_t now = ak_now_s(), next = 0;
	char dur[32];

	if (ak_client_list(cl, &e, &n) != AK_OK)
		return;
	for (i = 0; i < n; i++) {
		confirm += e[i].confirm != 0;
		expired += e[i].expired != 0;
		if (!e[i].expired && e[i].wipe_at != 0) {
			timed++;
			if (next == 0 || e[i].wipe_at < next)
				next = e[i].wipe_at;
		}
	}
	if (confirm > 0)
		printf("confirm:    %lu profile%s ask%s before use (AKAGENT_ASKPASS)\n", (unsigned long)confirm,
		    confirm == 1 ? "" : "s", confirm == 1 ? "s" : "");
	if (expired > 0)
		printf("expired:    %lu profile%s wiped by %s lifetime: run 'akctl unlock' again\n",
		    (unsigned long)expired, expired == 1 ? "" : "s", expired == 1 ? "its" : "their");
	if (timed > 0) {
		ak_duration_format(next > now ? (uint32_t)(next - now) : 0, dur, sizeof(dur));
		printf("lifetimes:  %lu profile%s with a lifetime; the next is wiped in %s\n",
		    (unsigned long)timed, timed == 1 ? "" : "s", dur);
	}
	ak_client_list_free(e, n);
}
