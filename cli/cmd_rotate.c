/* cmd_rotate.c - akctl rotate PROFILE [--var VAR] [--grace DURATION] | --rollback | --finish, and the
 * pieces of rotation other commands show: get/env/use/exec --previous, the due marks of list/status.
 *
 * A rotation is one edit (ak_edit.h: ROTATE then GRACE) applied in the keystore transaction, by the
 * agent when it is unlocked on this keystore, else on the file with the passphrase: the old key is
 * kept as the record's previous value until the grace deadline (ak_rotate.h). The new key is read
 * like add's (no-echo at a terminal, else stdin), never from argv, and checked live like add's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ak_edit.h"
#include "ak_provider.h"
#include "ak_rotate.h"
#include "ak_smem.h"
#include "ak_util.h"
#include "cli.h"

const char *
cli_rotation_mark(const struct ak_list_entry *e, int64_t now)
{
	switch (ak_rot_due(e->rotated, e->rotate_every, now)) {
	case 2: return "overdue";
	case 1: return "due";
	default: return "";
	}
}

/* The new key, checked live when asked (or typed at a terminal, as add does) for the main secret:
 * AK_OK with *refused 0 to go on, or with *refused the test verdict (10 rejected, 16 malformed) after
 * saying why, or an error after reporting it. The check needs the profile's provider, which only an
 * unlocked agent can give without the passphrase; without one it is skipped with a note. */
static enum ak_err
check_live(struct cli *c, const char *name, const char *key, int validate, int *refused)
{
	struct ak_client *cl = NULL;
	struct ak_status st;
	struct ak_profile *p = NULL;
	const struct ak_provider *pv;
	char detail[256];
	int verdict;
	enum ak_err rc = AK_OK;

	*refused = 0;
	memset(&st, 0, sizeof(st));
	if (validate == 0 || (validate == -1 && !isatty(STDIN_FILENO)))
		return AK_OK;
	if (cli_agent_for_store(c, &cl, &st, detail, sizeof(detail)) != AK_OK || !st.unlocked ||
	    ak_client_get(cl, name, &p) != AK_OK) {
		if (validate == 1)
			cli_note("rotate: %s: warning: the new key was not checked (no unlocked agent to say "
			    "its provider)", name);
		goto out;
	}
	ak_client_close(cl); /* no connection held across the network wait */
	cl = NULL;
	pv = ak_provider_find(p->provider);
	if (validate == -1 && (pv == NULL || pv->check_path == NULL))
		goto out;
	if (ak_profile_set_field(&p->secret, key) != AK_OK) {
		rc = cli_fail(AK_ERR_NOMEM, NULL, "rotate");
		goto out;
	}
	/* As add: only a definite rejection (10) or a malformed key (16) refuses. */
	verdict = cli_net_validate(c, p);
	if (verdict == 10 || verdict == 16) {
		cli_note("rotate: %s: not rotated (--no-validate rotates to it unchecked)", name);
		*refused = verdict;
		goto out;
	}
	if (verdict != 0)
		cli_note("rotate: %s: warning: the new key could not be verified; rotating to it unverified",
		    name);
out:
	ak_profile_free(p); /* wipes the copy of the new key */
	ak_status_clear(&st);
	ak_client_close(cl);
	return rc;
}

/* The deactivation asked for name's previous main key: 1 with its hint (and *pending: the grace is
 * over), 0 when none or no unlocked agent can say (the direct path then finishes without it). */
static int
deact_state(struct cli *c, const char *name, char *hint, size_t hintlen, int *pending)
{
	struct ak_client *cl = NULL;
	struct ak_status st;
	struct ak_list_entry *e = NULL;
	uint32_t n = 0, i;
	char detail[256];
	int found = 0;

	memset(&st, 0, sizeof(st));
	*pending = 0;
	hint[0] = '\0';
	if (cli_agent_for_store(c, &cl, &st, detail, sizeof(detail)) != AK_OK || !st.unlocked ||
	    ak_client_list(cl, &e, &n) != AK_OK)
		goto out;
	for (i = 0; i < n; i++) {
		if (strcmp(e[i].name, name) != 0 || e[i].deact_hint == NULL || e[i].deact_hint[0] == '\0')
			continue;
		snprintf(hint, hintlen, "%s", e[i].deact_hint);
		*pending = e[i].deact_pending;
		found = 1;
	}
out:
	ak_client_list_free(e, n);
	ak_status_clear(&st);
	ak_client_close(cl);
	return found;
}

static enum ak_err
rotate_fail(enum ak_err r, const char *detail, const char *name, const char *var)
{
	switch (r) {
	case AK_ERR_NO_PROFILE:
		return cli_fail(r, NULL, "rotate: %s", name);
	case AK_ERR_NO_VAR:
		return cli_fail(r, NULL, "rotate: %s: %s", name, var);
	case AK_ERR_INVALID:
		return cli_fail(r, "only the main secret and secret variables rotate", "rotate: %s: %s",
		    name, var);
	case AK_ERR_NO_PREVIOUS:
		return cli_fail(r, NULL, "rotate: %s%s%s", name, var[0] ? ": " : "", var);
	default:
		return cli_fail(r, detail != NULL && detail[0] ? detail : NULL, "rotate: %s", name);
	}
}

enum ak_err
cmd_rotate(struct cli *c, int argc, char **argv)
{
	const char *name, *var = "", *grace_s = NULL, *admin = NULL, *project = NULL;
	char prompt[AK_NAME_MAX + AK_VARNAME_MAX + 32], detail[512], secs[24], until[32];
	char hint[AK_ROT_HINT_MAX];
	int deactivate = 0, create = 0, has_hint, pending = 0;
	char *key = NULL;
	size_t keylen = 0;
	uint32_t grace = AK_GRACE_DEFAULT_S;
	struct ak_edit *e = NULL;
	int rollback = 0, finish = 0, validate = -1, refused = 0, helped;
	enum ak_err rc, r;
	const struct ak_opt opts[] = {
		CLI_VALUE("var", &var),
		CLI_VALUE("grace", &grace_s),
		CLI_FLAG("rollback", &rollback, 1),
		CLI_FLAG("finish", &finish, 1),
		CLI_FLAG("validate", &validate, 1),
		CLI_FLAG("no-validate", &validate, 0),
		CLI_FLAG("deactivate", &deactivate, 1),
		CLI_VALUE("admin", &admin),
		CLI_FLAG("create", &create, 1),
		CLI_VALUE("project", &project),
		CLI_OPT_END,
	};

	if ((rc = cli_opts_parse(c, argc, argv, opts, 0, &helped)) != AK_OK || helped)
		return rc;
	if ((rc = cli_one_profile(c, argc, argv, &name)) != AK_OK)
		return rc;
	if (rollback && finish)
		return cli_usage_error(c, "--rollback and --finish exclude each other");
	if ((rollback || finish) && (grace_s != NULL || validate != -1))
		return cli_usage_error(c, "--grace and --validate go with a rotation, not --%s",
		    rollback ? "rollback" : "finish");
	if ((deactivate || create) && var[0] != '\0')
		return cli_usage_error(c, "--deactivate and --create work on the main key, not --var");
	if (rollback && (deactivate || create || admin != NULL))
		return cli_usage_error(c, "--rollback takes no --deactivate, --create or --admin");
	if (finish && create)
		return cli_usage_error(c, "--create goes with a rotation, not --finish");
	if (project != NULL && !create)
		return cli_usage_error(c, "--project goes with --create");
	if (admin != NULL && !deactivate && !create && !finish)
		return cli_usage_error(c, "--admin goes with --deactivate or --create");
	if (admin != NULL && ak_name_check(admin) != AK_OK)
		return cli_fail(AK_ERR_BAD_NAME, NULL, "rotate: --admin '%s'", admin);
	has_hint = var[0] == '\0' && !rollback && deact_state(c, name, hint, sizeof(hint), &pending);
#ifndef AK_NET
	/* The admin API is network work: akctl-net does this rotation whole (it links libcurl). */
	if (create || (finish && (deactivate || has_hint)))
		return cli_net_exec(c, argc, argv);
#endif
	/* A new rotation would drop the old key's deactivation (its hint has one slot): finish first. */
	if (!finish && !rollback && has_hint)
		return cli_fail(AK_ERR_INVALID, NULL, "rotate: %s: the old key %s still awaits deactivation%s: "
		    "'akctl rotate %s --finish' first", name, hint, pending ? "" : " when this rotation finishes",
		    name);
	if (var[0] != '\0' && ak_varname_check(var) != AK_OK)
		return cli_fail(AK_ERR_BAD_VARNAME, NULL, "rotate: --var '%s'", var);
	if (grace_s != NULL && (ak_duration_parse(grace_s, &grace) != AK_OK || grace == 0))
		return cli_usage_error(c, "--grace needs a duration like 24h, 7d or 90s (at most 365d; "
		    "end it now with --finish)");
	if ((e = ak_edit_new(name)) == NULL) {
		rc = cli_fail(AK_ERR_NOMEM, NULL, "rotate");
		goto out;
	}
#ifdef AK_NET
	/* Deactivate first: when the provider refuses, the rotation stays as it is and can be finished
	 * again. */
	if (finish && (deactivate || has_hint) &&
	    (rc = cli_admin_deactivate(c, name, admin, has_hint ? hint : NULL)) != AK_OK)
		goto out;
#endif
	if (rollback || finish) {
		/* Only once the provider deactivated the old key may its pending mark go. */
		if ((r = ak_edit_add(e, rollback ? AK_EDIT_ROLLBACK : AK_EDIT_FINISH, var,
		    finish && (deactivate || has_hint) ? AK_FINISH_DEACTIVATED : NULL)) != AK_OK) {
			rc = cli_fail(r, NULL, "rotate");
			goto out;
		}
	} else {
		if (var[0] != '\0')
			snprintf(prompt, sizeof(prompt), "New secret %s for %s: ", var, name);
		else
			snprintf(prompt, sizeof(prompt), "New key for %s: ", name);
#ifdef AK_NET
		if (create) {
			if ((rc = cli_admin_create(c, name, admin, project, &key)) != AK_OK)
				goto out;
		} else
#endif
		if ((r = cli_secret_read(prompt, &key, &keylen)) != AK_OK) {
			rc = cli_fail(r, NULL, "rotate: reading the new key");
			goto out;
		}
		/* Only the main secret is a provider's key that a provider can check. */
		if (var[0] == '\0' && ((rc = check_live(c, name, key, validate, &refused)) != AK_OK ||
		    refused != 0)) {
			if (refused != 0)
				rc = cli_status(c, refused);
			goto out;
		}
		snprintf(secs, sizeof(secs), "%lu", (unsigned long)grace);
		if ((r = ak_edit_add(e, AK_EDIT_ROTATE, var, key)) != AK_OK ||
		    (r = ak_edit_add(e, AK_EDIT_GRACE, var, secs)) != AK_OK ||
		    (deactivate && (r = ak_edit_add(e, AK_EDIT_DEACTIVATE, "", NULL)) != AK_OK)) {
			rc = cli_fail(r, NULL, "rotate: %s", name);
			goto out;
		}
	}
	if ((r = cli_edit_run(c, e, detail, sizeof(detail))) != AK_OK) {
		/* The direct path on the file (no unlocked agent) cannot reach the provider. */
		if (r == AK_ERR_DEACT_PENDING)
			rc = cli_fail(r, "it needs the network and an unlocked agent: run 'akctl unlock' "
			    "and finish again", "rotate: %s", name);
		else
			rc = rotate_fail(r, detail, name, var);
		goto out;
	}
	if (rollback) {
		cli_note("rolled back %s%s%s: the previous key is current again, the other one kept as "
		    "previous", name, var[0] ? " " : "", var);
	} else if (finish) {
		cli_note("finished the rotation of %s%s%s: the previous key is wiped", name,
		    var[0] ? " " : "", var);
	} else {
		cli_iso_time(ak_now_s() + (int64_t)grace, until, sizeof(until));
		cli_note("rotated %s%s%s: the previous key stays available (--previous) until %s; "
		    "'akctl rotate %s --finish' ends that now", name, var[0] ? " " : "", var, until, name);
		if (deactivate)
			cli_note("%s: the previous key will be deactivated at the provider when the rotation "
			    "finishes ('akctl rotate %s --finish'; after the grace it stays pending until then)",
			    name, name);
	}
	rc = AK_OK;
out:
	ak_smem_free(key); /* wipes */
	ak_edit_free(e);
	return rc;
}

void
cli_rotation_status(struct ak_client *cl)
{
	struct ak_list_entry *e = NULL;
	uint32_t n = 0, i, due = 0, overdue = 0, policy = 0, kept = 0, pending = 0;
	int64_t now = ak_now_s();

	if (ak_client_list(cl, &e, &n) != AK_OK)
		return;
	for (i = 0; i < n; i++) {
		policy += e[i].rotate_every != 0;
		kept += e[i].prev_until != 0;
		pending += e[i].deact_pending;
		switch (ak_rot_due(e[i].rotated, e[i].rotate_every, now)) {
		case 2: overdue++; break;
		case 1: due++; break;
		default: break;
		}
	}
	if (policy > 0)
		printf("rotation:   %lu overdue, %lu due (of %lu with a policy)\n", (unsigned long)overdue,
		    (unsigned long)due, (unsigned long)policy);
	if (kept > 0)
		printf("previous:   %lu key%s kept for a grace period\n", (unsigned long)kept,
		    kept == 1 ? "" : "s");
	for (i = 0; pending > 0 && i < n; i++)
		if (e[i].deact_pending)
			printf("deactivation pending: %s (old key %s): run 'akctl rotate %s --finish'\n",
			    e[i].name, e[i].deact_hint, e[i].name);
	ak_client_list_free(e, n);
}
