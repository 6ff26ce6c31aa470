/* cmd_env.c - the hot path: akctl get, env and use (exec is cmd_exec.c).
 *
 * These never prompt: no agent => exit 3, locked => exit 4. The profile arrives in the secure arena;
 * output is built in a secure ak_buf and leaves in one write(2), never through stdio buffers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ak_buf.h"
#include "ak_restore.h"
#include "ak_smem.h"
#include "ak_util.h"
#include "cli.h"

#define ENV_OUT_MAX (16u << 20) /* 65 values of 64 KiB, quoted: far below */

/* "no such profile", with the closest stored name when one is near (did you mean). Returns
 * AK_ERR_NO_PROFILE. */
static enum ak_err
fail_no_profile(struct cli *c, struct ak_client *cl, const char *name)
{
	struct ak_list_entry *ents = NULL;
	const char **names = NULL;
	const char *near = NULL;
	char hint[AK_NAME_MAX + 32];
	uint32_t n = 0, i;

	hint[0] = '\0';
	if (cl != NULL && ak_client_list(cl, &ents, &n) == AK_OK && n > 0 &&
	    (names = calloc(n, sizeof(*names))) != NULL) {
		for (i = 0; i < n; i++)
			names[i] = ents[i].name;
		if ((near = cli_closest(name, names, n)) != NULL)
			snprintf(hint, sizeof(hint), "did you mean '%s'?", near);
	}
	free(names);
	ak_client_list_free(ents, n);
	return cli_fail(AK_ERR_NO_PROFILE, hint[0] ? hint : NULL, "%s: %s", c->cmd, name);
}

/* The agent wiped the profile when its own lifetime ended: say which, and how to get it back.
 * Returns AK_ERR_EXPIRED. */
static enum ak_err
fail_expired(struct cli *c, const char *name)
{
	fprintf(stderr, "akctl: %s: %s expired: run 'akctl unlock' again\n", c->cmd, name);
	return AK_ERR_EXPIRED;
}

enum ak_err
cli_fetch_profile(struct cli *c, const char *name, struct ak_profile **p, struct ak_list_entry **ents,
    uint32_t *nents)
{
	struct ak_client *cl = NULL;
	enum ak_err rc, r;

	*p = NULL;
	if (ak_name_check(name) != AK_OK)
		return cli_fail(AK_ERR_BAD_NAME, NULL, "%s: '%s'", c->cmd, name);
	if ((rc = cli_store_path(c)) != AK_OK)
		return cli_fail(rc, NULL, "%s: keystore path", c->cmd);
	if (c->store_explicit) {
		if ((rc = cli_agent_unlocked(c, &cl)) != AK_OK)
			return rc;
		r = ak_client_get_kind(cl, c->previous ? AK_MSG_GET_PREVIOUS : AK_MSG_GET, name, p);
	} else {
		/* One round trip: ask at once. Only a locked agent, with someone there to ask, leads to
		 * STATUS, the passphrase prompt and a second request; whether anyone can be asked is not
		 * even looked up before. */
		if ((rc = cli_agent_direct(c, &cl)) != AK_OK)
			return rc;
		r = ak_client_get_kind(cl, c->previous ? AK_MSG_GET_PREVIOUS : AK_MSG_GET, name, p);
		if (r == AK_ERR_LOCKED && cli_can_prompt(c)) {
			ak_client_close(cl);
			cl = NULL;
			if ((rc = cli_agent_unlocked(c, &cl)) != AK_OK)
				return rc;
			r = ak_client_get_kind(cl, c->previous ? AK_MSG_GET_PREVIOUS : AK_MSG_GET, name, p);
		}
	}
	if (r != AK_ERR_LOCKED)
		c->sent_get = 1;
	if (r == AK_ERR_NO_PROFILE)
		rc = fail_no_profile(c, cl, name);
	else if (r == AK_ERR_EXPIRED)
		rc = fail_expired(c, name);
	else if (r != AK_OK)
		rc = cli_fail_client(cl, r, c->cmd);
	else if (ents != NULL && (r = ak_client_list(cl, ents, nents)) != AK_OK)
		rc = cli_fail_client(cl, r, c->cmd);
	ak_client_close(cl);
	return rc;
}

static enum ak_err
fetch(struct cli *c, const char *name, struct ak_profile **p)
{
	return cli_fetch_profile(c, name, p, NULL, NULL);
}

/* env/use with stdout on a terminal: the secret would land in the scrollback (and the shell would
 * not even get it). Say how to use it instead, unless --reveal. Returns AK_OK to go on, else
 * AK_ERR_DENIED (exit 1) after saying so. */
static enum ak_err
terminal_guard(struct cli *c, enum ak_shell sh, const char *name, int reveal)
{
	if (reveal || !isatty(STDOUT_FILENO))
		return AK_OK;
	switch (sh) {
	case AK_SHELL_FISH:
		fprintf(stderr, "akctl: %s prints secrets for the shell to read: run 'akctl %s %s | source' "
		    "(or --reveal to print them here)\n", c->cmd, c->cmd, name);
		break;
	case AK_SHELL_CSH:
		fprintf(stderr, "akctl: %s prints secrets for the shell to read: run 'eval \"`akctl %s %s`\"' "
		    "(or --reveal to print them here)\n", c->cmd, c->cmd, name);
		break;
	case AK_SHELL_POWERSHELL:
		fprintf(stderr, "akctl: %s prints secrets for the shell to read: run 'akctl %s %s | "
		    "Invoke-Expression' (or --reveal to print them here)\n", c->cmd, c->cmd, name);
		break;
	default:
		fprintf(stderr, "akctl: %s prints secrets for the shell to read: run 'eval \"$(akctl %s %s)\"' "
		    "(or --reveal to print them here)\n", c->cmd, c->cmd, name);
		break;
	}
	return AK_ERR_DENIED;
}

enum ak_err
cli_shell_choose(struct cli *c, const char *name, int data_ok, enum ak_shell *sh)
{
	/* The shell that will read the output: the one running us, else the login shell. */
	if (name == NULL) {
		*sh = ak_shell_detect();
		return AK_OK;
	}
	if (ak_shell_parse(name, sh) != AK_OK || (!data_ok && (*sh == AK_SHELL_DOTENV || *sh == AK_SHELL_JSON)))
		return cli_usage_error(c, "unknown shell '%s' (sh bash zsh dash ksh fish csh tcsh powershell pwsh "
		    "cmd%s)", name, data_ok ? " dotenv json" : "");
	return AK_OK;
}

/* Parse [--shell NAME] [--reveal] and, for use (clear not NULL), [--clear]. *helped is 1 when -h
 * printed the help (the command is done). */
static enum ak_err
shell_opts(struct cli *c, int argc, char **argv, enum ak_shell *sh, int *clear, int *reveal, int *helped)
{
	const char *shell = NULL;
	struct ak_opt opts[] = {
		{ .name = "shell", .short_name = 's', .kind = AK_OPT_VALUE, .value = &shell },
		CLI_FLAG("reveal", reveal, 1),
		CLI_FLAG("clear", clear, 1),
		CLI_OPT_END,
	};
	enum ak_err r;

	if (clear == NULL)
		opts[2] = (struct ak_opt)CLI_OPT_END;
	if ((r = cli_opts_parse(c, argc, argv, opts, 0, helped)) != AK_OK || *helped)
		return r;
	return cli_shell_choose(c, shell, 1, sh);
}

/* Emit out to stdout in one write(2). out holds secrets: the caller frees it (ak_buf_free wipes). */
static enum ak_err
emit(struct cli *c, struct ak_buf *out)
{
	enum ak_err r;

	if ((r = cli_write_all(STDOUT_FILENO, ak_buf_ptr(out), ak_buf_len(out))) != AK_OK)
		return cli_fail(r, NULL, "%s: writing to standard output", c->cmd);
	return AK_OK;
}

const char *
cli_profile_var(const struct ak_profile *p, const char *var)
{
	size_t i;

	if (strcmp(var, p->secret_var) == 0)
		return p->secret;
	for (i = 0; i < p->nvars; i++)
		if (strcmp(var, p->vars[i].name) == 0)
			return p->vars[i].value;
	return NULL;
}

/* What get and env print for a profile: filled into out (a secure buffer the caller wipes); failures are
 * reported here. */
typedef enum ak_err (*fill_fn)(struct cli *c, struct ak_buf *out, const struct ak_profile *p,
    const void *arg);

/* Fetch profile name, fill a secure buffer of cap bytes with fill, and print it in one write(2). */
static enum ak_err
print_profile(struct cli *c, const char *name, size_t cap, fill_fn fill, const void *arg)
{
	struct ak_profile *p = NULL;
	struct ak_buf *out = NULL;
	enum ak_err rc;

	if ((rc = fetch(c, name, &p)) != AK_OK)
		return rc;
	if ((out = ak_buf_new_secure(cap)) == NULL)
		rc = cli_fail(AK_ERR_NOMEM, NULL, "%s", c->cmd);
	else if ((rc = fill(c, out, p, arg)) == AK_OK)
		rc = emit(c, out);
	ak_buf_free(out);
	ak_profile_free(p);
	return rc;
}

/* get: the secret, or the variable arg names. */
static enum ak_err
fill_get(struct cli *c, struct ak_buf *out, const struct ak_profile *p, const void *arg)
{
	const char *var = arg, *v = var != NULL ? cli_profile_var(p, var) : p->secret;
	enum ak_err r;

	(void)c;
	if (v == NULL) {
		cli_note("get: no variable %s in profile %s", var, p->name);
		return AK_ERR_NO_VAR;
	}
	/* Raw for $(...) and pipes; a newline only for a person looking at a terminal. */
	if ((r = ak_buf_put(out, v, strlen(v))) != AK_OK ||
	    (isatty(STDOUT_FILENO) && (r = ak_buf_put_u8(out, '\n')) != AK_OK))
		return cli_fail(r, NULL, "get");
	return AK_OK;
}

enum ak_err
cmd_get(struct cli *c, int argc, char **argv)
{
	const char *var = NULL;
	int helped;
	enum ak_err rc;

	cli_take_previous(c, &argc, argv, 0);
	if ((rc = cli_opts_help_only(c, argc, argv, &helped)) != AK_OK || helped)
		return rc;
	if (optind >= argc)
		return cli_usage_error(c, "missing PROFILE");
	if (argc - optind > 2)
		return cli_usage_error(c, "unexpected argument '%s'", argv[optind + 2]);
	if (argc - optind == 2) {
		var = argv[optind + 1];
		if (ak_varname_check(var) != AK_OK)
			return cli_fail(AK_ERR_BAD_VARNAME, NULL, "get: '%s'", var);
	}
	return print_profile(c, argv[optind], AK_VALUE_MAX + 1, fill_get, var);
}

enum ak_err
cli_export_profile(struct ak_buf *out, enum ak_shell sh, const struct ak_profile *p)
{
	size_t i;
	enum ak_err r;

	if ((r = ak_shell_export(out, sh, p->secret_var, p->secret)) != AK_OK)
		return r;
	for (i = 0; i < p->nvars; i++)
		if ((r = ak_shell_export(out, sh, p->vars[i].name, p->vars[i].value)) != AK_OK)
			return r;
	return AK_OK;
}

/* env: export lines for the shell sh (*arg). */
static enum ak_err
fill_env(struct cli *c, struct ak_buf *out, const struct ak_profile *p, const void *arg)
{
	const enum ak_shell *sh = arg;
	enum ak_err r;

	(void)c;
	if ((*sh == AK_SHELL_JSON && (r = ak_shell_json_begin(out)) != AK_OK) ||
	    (r = cli_export_profile(out, *sh, p)) != AK_OK ||
	    (*sh == AK_SHELL_JSON && (r = ak_shell_json_end(out)) != AK_OK))
		return cli_fail(r, NULL, "env: %s", p->name);
	return AK_OK;
}

enum ak_err
cmd_env(struct cli *c, int argc, char **argv)
{
	enum ak_shell sh = AK_SHELL_SH;
	const char *name;
	int reveal = 0, helped;
	enum ak_err rc;

	cli_take_previous(c, &argc, argv, 0);
	if ((rc = shell_opts(c, argc, argv, &sh, NULL, &reveal, &helped)) != AK_OK || helped)
		return rc;
	if ((rc = cli_one_profile(c, argc, argv, &name)) != AK_OK ||
	    (sh != AK_SHELL_DOTENV && sh != AK_SHELL_JSON &&
	    (rc = terminal_guard(c, sh, name, reveal)) != AK_OK))
		return rc;
	return print_profile(c, name, ENV_OUT_MAX, fill_env, &sh);
}

/* Does profile p (the one switched to) set name? (ak_restore_lines' keep callback.) */
static int
sets_var(const char *name, void *arg)
{
	const struct ak_profile *p = arg;

	return p != NULL && (cli_profile_var(p, name) != NULL || strcmp(name, "AKCTL_PROFILE") == 0);
}

/* The shell's record of the last use (AKCTL_RESTORE), or an empty one. A record that does not decode
 * is not ours to interpret: it is dropped (the variable is replaced) with a warning. NULL on no memory. */
static struct ak_restore *
restore_current(struct cli *c)
{
	const char *enc = getenv(AK_RESTORE_VAR);
	struct ak_restore *r = NULL;

	if (enc != NULL && enc[0] != '\0') {
		if (ak_restore_decode(enc, 1, &r) == AK_OK)
			return r;
		cli_note("%s: %s is not a record of ours: ignored", c->cmd, AK_RESTORE_VAR);
	}
	return ak_restore_new(1);
}

/* The value name had before the last use: the record's, else the environment's. */
static const char *
value_before(const struct ak_restore *r, const char *name)
{
	const struct ak_restore_entry *e = ak_restore_find(r, name);

	return e != NULL ? e->old : getenv(name);
}

/* Record, for every variable p sets (and AKCTL_PROFILE), the value it had before any use. */
static enum ak_err
record_profile(struct ak_restore *next, const struct ak_restore *prev, const struct ak_profile *p)
{
	size_t i;
	enum ak_err r;

	if ((r = ak_restore_add(next, p->secret_var, value_before(prev, p->secret_var))) != AK_OK)
		return r;
	for (i = 0; i < p->nvars; i++)
		if ((r = ak_restore_add(next, p->vars[i].name, value_before(prev, p->vars[i].name))) != AK_OK)
			return r;
	return ak_restore_add(next, "AKCTL_PROFILE", value_before(prev, "AKCTL_PROFILE"));
}

/* A shell switched by an akctl that kept no record: AKCTL_PROFILE names the profile. Its variables are
 * unset if an unlocked agent still has it; without one only AKCTL_PROFILE goes (never a prompt). */
static enum ak_err
legacy_unset(struct cli *c, struct ak_buf *out, enum ak_shell sh, const struct ak_profile *p)
{
	struct ak_client *cl = NULL;
	struct ak_profile *old = NULL;
	const char *cur = getenv("AKCTL_PROFILE");
	char detail[AK_CLIENT_DETAIL_MAX];
	size_t i;
	enum ak_err r = AK_OK;

	if (cur == NULL || ak_name_check(cur) != AK_OK)
		return AK_OK;
	if (cli_store_path(c) == AK_OK && ak_client_connect(NULL, 0, &cl, detail, sizeof(detail)) == AK_OK &&
	    ak_client_get(cl, cur, &old) == AK_OK) {
		if (!sets_var(old->secret_var, (void *)p))
			r = ak_shell_unset(out, sh, old->secret_var);
		for (i = 0; r == AK_OK && i < old->nvars; i++)
			if (!sets_var(old->vars[i].name, (void *)p))
				r = ak_shell_unset(out, sh, old->vars[i].name);
	}
	ak_profile_free(old);
	ak_client_close(cl);
	return r;
}

enum ak_err
cmd_use(struct cli *c, int argc, char **argv)
{
	struct ak_client *cl = NULL;
	struct ak_profile *p = NULL;
	struct ak_restore *prev = NULL, *next = NULL;
	struct ak_buf *out = NULL;
	enum ak_shell sh = AK_SHELL_SH;
	const char *name = NULL;
	int clear = 0, reveal = 0, helped;
	enum ak_err rc, r;

	cli_take_previous(c, &argc, argv, 0);
	if ((rc = shell_opts(c, argc, argv, &sh, &clear, &reveal, &helped)) != AK_OK || helped)
		return rc;
	if (clear) {
		if (optind != argc)
			return cli_usage_error(c, "--clear takes no PROFILE");
	} else {
		if (optind >= argc)
			return cli_usage_error(c, "missing PROFILE (or --clear)");
		if (optind + 1 != argc)
			return cli_usage_error(c, "unexpected argument '%s'", argv[optind + 1]);
		name = argv[optind];
		if (ak_name_check(name) != AK_OK)
			return cli_fail(AK_ERR_BAD_NAME, NULL, "use: '%s'", name);
		if ((rc = terminal_guard(c, sh, name, reveal)) != AK_OK)
			return rc;
	}
	/* --clear needs no agent: the shell's own record says what to undo. */
	if (name != NULL) {
		if ((rc = cli_agent_unlocked(c, &cl)) != AK_OK)
			return rc;
		if ((r = ak_client_get_kind(cl, c->previous ? AK_MSG_GET_PREVIOUS : AK_MSG_GET, name,
		    &p)) != AK_OK) {
			rc = r == AK_ERR_NO_PROFILE ? fail_no_profile(c, cl, name) :
			    r == AK_ERR_EXPIRED ? fail_expired(c, name) : cli_fail_client(cl, r, "use");
			goto out;
		}
	}
	if ((prev = restore_current(c)) == NULL || (next = ak_restore_new(1)) == NULL ||
	    (out = ak_buf_new_secure(ENV_OUT_MAX)) == NULL) {
		rc = cli_fail(AK_ERR_NOMEM, NULL, "use");
		goto out;
	}
	if (sh == AK_SHELL_JSON && (r = ak_shell_json_begin(out)) != AK_OK)
		goto fail;
	/* Undo the last use, except what the new profile sets again; then set and record. */
	if (prev->n == 0 && (r = legacy_unset(c, out, sh, p)) != AK_OK)
		goto fail;
	if ((r = ak_restore_lines(out, sh, prev, sets_var, p)) != AK_OK)
		goto fail;
	if (p != NULL) {
		if ((r = record_profile(next, prev, p)) != AK_OK)
			goto fail;
		if ((r = cli_export_profile(out, sh, p)) != AK_OK ||
		    (r = ak_shell_export(out, sh, "AKCTL_PROFILE", p->name)) != AK_OK)
			goto fail;
		if (sh != AK_SHELL_DOTENV && sh != AK_SHELL_JSON) {
			struct ak_buf *enc = ak_buf_new_secure(AK_RESTORE_ENC_MAX + 1);

			if (enc == NULL) {
				r = AK_ERR_NOMEM;
				goto fail;
			}
			if ((r = ak_restore_encode(next, enc)) == AK_OK && (r = ak_buf_put_u8(enc, 0)) == AK_OK)
				r = ak_shell_export(out, sh, AK_RESTORE_VAR, (const char *)ak_buf_ptr(enc));
			ak_buf_free(enc);
			if (r != AK_OK)
				goto fail;
		}
	} else {
		if (prev->n == 0 && (r = ak_shell_unset(out, sh, "AKCTL_PROFILE")) != AK_OK)
			goto fail;
		if ((r = ak_shell_unset(out, sh, AK_RESTORE_VAR)) != AK_OK)
			goto fail;
	}
	if (sh == AK_SHELL_JSON && (r = ak_shell_json_end(out)) != AK_OK)
		goto fail;
	rc = emit(c, out);
	goto out;
fail:
	rc = cli_fail(r, r == AK_ERR_TOO_LARGE ? "the values it replaces are too large to record" : NULL,
	    "use: %s", name != NULL ? name : "--clear");
out:
	ak_buf_free(out);
	ak_restore_free(prev);
	ak_restore_free(next);
	ak_profile_free(p);
	ak_client_close(cl);
	return rc;
}
