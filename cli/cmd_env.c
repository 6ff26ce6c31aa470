/* cmd_env.c - the hot path: akctl get, env, use and exec.
 *
 * These never prompt: no agent => exit 3, locked => exit 4. The profile arrives in the secure arena;
 * output is built in a secure ak_buf and leaves in one write(2), never through stdio buffers.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "ak_buf.h"
#include "ak_smem.h"
#include "ak_util.h"
#include "cli.h"

#define ENV_OUT_MAX (16u << 20) /* 65 values of 64 KiB, quoted: far below */

/* Fetch profile name from an agent unlocked on our keystore. Prints errors; returns the exit code.
 * *p is secure: the caller wipes it with ak_profile_free(). */
static int
fetch(struct cli *c, const char *name, struct ak_profile **p)
{
	struct ak_client *cl = NULL;
	int rc;
	enum ak_err r;

	*p = NULL;
	if (ak_name_check(name) != AK_OK)
		return cli_fail(AK_ERR_BAD_NAME, NULL, "%s: '%s'", c->cmd, name);
	if ((rc = cli_agent_unlocked(c, &cl)) != 0)
		return rc;
	r = ak_client_get(cl, name, p);
	if (r == AK_ERR_NO_PROFILE)
		rc = cli_fail(r, NULL, "%s: %s", c->cmd, name);
	else if (r != AK_OK)
		rc = cli_fail_client(cl, r, c->cmd);
	ak_client_close(cl);
	return rc;
}

/* Parse [--shell NAME] [-h] and the positional arguments. */
static int
shell_opts(struct cli *c, int argc, char **argv, enum ak_shell *sh, int *clear)
{
	static const struct option longopts[] = {
		{ "shell", required_argument, NULL, 's' },
		{ "clear", no_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch, have = 0;

	while ((ch = getopt_long(argc, argv, ":s:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 's':
			if (ak_shell_parse(optarg, sh) != AK_OK) {
				cli_usage_error(c, "unknown shell '%s' (sh bash zsh dash ksh fish csh tcsh "
				    "powershell pwsh cmd dotenv json)", optarg);
				return 2;
			}
			have = 1;
			break;
		case 'C':
			if (clear == NULL)
				return cli_bad_option(c, '?', argv);
			*clear = 1;
			break;
		case 'h':
			cli_cmd_help(c->cmd);
			return -1;
		default:
			return cli_bad_option(c, ch, argv);
		}
	}
	if (!have)
		*sh = ak_shell_from_env();
	return 0;
}

/* Emit out to stdout in one write(2). out holds secrets: the caller frees it (ak_buf_free wipes). */
static int
emit(struct cli *c, struct ak_buf *out)
{
	enum ak_err r;

	if ((r = cli_write_all(STDOUT_FILENO, ak_buf_ptr(out), ak_buf_len(out))) != AK_OK)
		return cli_fail(r, NULL, "%s: writing to standard output", c->cmd);
	return 0;
}

/* The value of var in p (the secret or a plain variable), pointing into p: p's owner wipes it. */
static const char *
profile_var(const struct ak_profile *p, const char *var)
{
	size_t i;

	if (strcmp(var, p->secret_var) == 0)
		return p->secret;
	for (i = 0; i < p->nvars; i++)
		if (strcmp(var, p->vars[i].name) == 0)
			return p->vars[i].value;
	return NULL;
}

int
cmd_get(struct cli *c, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ak_profile *p = NULL;
	struct ak_buf *out = NULL;
	const char *v, *var = NULL;
	int ch, rc;
	enum ak_err r;

	while ((ch = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'h':
			return cli_cmd_help(c->cmd);
		default:
			return cli_bad_option(c, ch, argv);
		}
	}
	if (optind >= argc)
		return cli_usage_error(c, "missing PROFILE");
	if (argc - optind > 2)
		return cli_usage_error(c, "unexpected argument '%s'", argv[optind + 2]);
	if (argc - optind == 2) {
		var = argv[optind + 1];
		if (ak_varname_check(var) != AK_OK)
			return cli_fail(AK_ERR_BAD_VARNAME, NULL, "get: '%s'", var);
	}
	if ((rc = fetch(c, argv[optind], &p)) != 0)
		return rc;
	v = var != NULL ? profile_var(p, var) : p->secret;
	if (v == NULL) {
		fprintf(stderr, "akctl: get: no variable %s in profile %s\n", var, p->name);
		rc = 1;
		goto out;
	}
	if ((out = ak_buf_new_secure(AK_VALUE_MAX + 1)) == NULL) {
		rc = cli_fail(AK_ERR_NOMEM, NULL, "get");
		goto out;
	}
	/* Raw for $(...) and pipes; a newline only for a person looking at a terminal. */
	if ((r = ak_buf_put(out, v, strlen(v))) != AK_OK ||
	    (isatty(STDOUT_FILENO) && (r = ak_buf_put_u8(out, '\n')) != AK_OK)) {
		rc = cli_fail(r, NULL, "get");
		goto out;
	}
	rc = emit(c, out);
out:
	ak_buf_free(out);
	ak_profile_free(p);
	return rc;
}

/* Export every variable of p (secret first) into out, a secure buffer the caller wipes. */
static enum ak_err
export_profile(struct ak_buf *out, enum ak_shell sh, const struct ak_profile *p)
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

int
cmd_env(struct cli *c, int argc, char **argv)
{
	struct ak_profile *p = NULL;
	struct ak_buf *out = NULL;
	enum ak_shell sh = AK_SHELL_SH;
	int rc;
	enum ak_err r;

	if ((rc = shell_opts(c, argc, argv, &sh, NULL)) != 0)
		return rc < 0 ? 0 : rc;
	if (optind >= argc)
		return cli_usage_error(c, "missing PROFILE");
	if (optind + 1 != argc)
		return cli_usage_error(c, "unexpected argument '%s'", argv[optind + 1]);
	if ((rc = fetch(c, argv[optind], &p)) != 0)
		return rc;
	if ((out = ak_buf_new_secure(ENV_OUT_MAX)) == NULL) {
		rc = cli_fail(AK_ERR_NOMEM, NULL, "env");
		goto out;
	}
	if ((sh == AK_SHELL_JSON && (r = ak_shell_json_begin(out)) != AK_OK) ||
	    (r = export_profile(out, sh, p)) != AK_OK ||
	    (sh == AK_SHELL_JSON && (r = ak_shell_json_end(out)) != AK_OK)) {
		rc = cli_fail(r, NULL, "env: %s", p->name);
		goto out;
	}
	rc = emit(c, out);
out:
	ak_buf_free(out);
	ak_profile_free(p);
	return rc;
}

/* Unset old's variables, except those new (may be NULL) sets again. */
static enum ak_err
unset_profile(struct ak_buf *out, enum ak_shell sh, const struct ak_profile *old,
    const struct ak_profile *new)
{
	size_t i;
	enum ak_err r;

	if (new == NULL || profile_var(new, old->secret_var) == NULL)
		if ((r = ak_shell_unset(out, sh, old->secret_var)) != AK_OK)
			return r;
	for (i = 0; i < old->nvars; i++)
		if (new == NULL || profile_var(new, old->vars[i].name) == NULL)
			if ((r = ak_shell_unset(out, sh, old->vars[i].name)) != AK_OK)
				return r;
	return AK_OK;
}

int
cmd_use(struct cli *c, int argc, char **argv)
{
	struct ak_client *cl = NULL;
	struct ak_profile *p = NULL, *old = NULL;
	struct ak_buf *out = NULL;
	enum ak_shell sh = AK_SHELL_SH;
	const char *cur, *name = NULL;
	int rc, clear = 0;
	enum ak_err r;

	if ((rc = shell_opts(c, argc, argv, &sh, &clear)) != 0)
		return rc < 0 ? 0 : rc;
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
	}
	cur = getenv("AKCTL_PROFILE");
	if (cur != NULL && ak_name_check(cur) != AK_OK)
		cur = NULL; /* not ours to interpret: only AKCTL_PROFILE itself is replaced */
	if (clear && cur == NULL && getenv("AKCTL_PROFILE") == NULL)
		return 0; /* nothing in use */

	if (name != NULL || cur != NULL) {
		if ((rc = cli_agent_unlocked(c, &cl)) != 0)
			return rc;
	}
	if (name != NULL && (r = ak_client_get(cl, name, &p)) != AK_OK) {
		rc = r == AK_ERR_NO_PROFILE ? cli_fail(r, NULL, "use: %s", name) :
		    cli_fail_client(cl, r, "use");
		goto out;
	}
	if (cur != NULL) {
		/* The previous profile as stored now; if it is gone, only AKCTL_PROFILE is replaced. */
		r = ak_client_get(cl, cur, &old);
		if (r != AK_OK && r != AK_ERR_NO_PROFILE) {
			rc = cli_fail_client(cl, r, "use");
			goto out;
		}
	}
	if ((out = ak_buf_new_secure(ENV_OUT_MAX)) == NULL) {
		rc = cli_fail(AK_ERR_NOMEM, NULL, "use");
		goto out;
	}
	if (sh == AK_SHELL_JSON && (r = ak_shell_json_begin(out)) != AK_OK)
		goto fail;
	if (old != NULL && (r = unset_profile(out, sh, old, p)) != AK_OK)
		goto fail;
	if (p != NULL) {
		if ((r = export_profile(out, sh, p)) != AK_OK ||
		    (r = ak_shell_export(out, sh, "AKCTL_PROFILE", p->name)) != AK_OK)
			goto fail;
	} else if ((r = ak_shell_unset(out, sh, "AKCTL_PROFILE")) != AK_OK) {
		goto fail;
	}
	if (sh == AK_SHELL_JSON && (r = ak_shell_json_end(out)) != AK_OK)
		goto fail;
	rc = emit(c, out);
	goto out;
fail:
	rc = cli_fail(r, NULL, "use: %s", name != NULL ? name : "--clear");
out:
	ak_buf_free(out);
	ak_profile_free(old);
	ak_profile_free(p);
	ak_client_close(cl);
	return rc;
}

/* Wipe the values setenv copied into the environment (on a failed exec we are about to exit). */
static void
wipe_env(char **names, size_t n)
{
	char *v;
	size_t i;

	for (i = 0; i < n; i++)
		if (names[i] != NULL && (v = getenv(names[i])) != NULL)
			sodium_memzero(v, strlen(v));
}

int
cmd_exec(struct cli *c, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ak_profile *p = NULL;
	char **cmd, **names = NULL;
	size_t i, n = 0;
	int ch, rc, err;

	/* '+': stop at PROFILE; everything after "--" belongs to the command. */
	while ((ch = getopt_long(argc, argv, "+:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'h':
			return cli_cmd_help(c->cmd);
		default:
			return cli_bad_option(c, ch, argv);
		}
	}
	if (optind >= argc)
		return cli_usage_error(c, "missing PROFILE");
	cmd = &argv[optind + 1];
	if (*cmd != NULL && strcmp(*cmd, "--") == 0)
		cmd++;
	if (*cmd == NULL)
		return cli_usage_error(c, "missing command (akctl exec PROFILE -- CMD [ARG...])");
	if ((rc = fetch(c, argv[optind], &p)) != 0)
		return rc;

	/* Variable names (not secret) outlive the profile, to wipe the environment if exec fails. */
	if ((names = calloc(p->nvars + 1, sizeof(*names))) == NULL)
		goto fail_env;
	n = p->nvars + 1;
	names[0] = strdup(p->secret_var);
	if (names[0] == NULL || setenv(p->secret_var, p->secret, 1) != 0)
		goto fail_env;
	for (i = 0; i < p->nvars; i++) {
		names[i + 1] = strdup(p->vars[i].name);
		if (names[i + 1] == NULL || setenv(p->vars[i].name, p->vars[i].value, 1) != 0)
			goto fail_env;
	}
	if (setenv("AKCTL_PROFILE", p->name, 1) != 0)
		goto fail_env;
	/* Our copy goes now; the kernel copies the environment into the new image. */
	ak_profile_free(p);
	p = NULL;
	fflush(stdout);
	execvp(cmd[0], cmd);
	err = errno;
	wipe_env(names, n);
	fprintf(stderr, "akctl: exec: %s: %s\n", cmd[0], strerror(err));
	rc = err == ENOENT ? 127 : 126;
	goto out;
fail_env:
	wipe_env(names, n);
	rc = cli_fail(AK_ERR_NOMEM, NULL, "exec: setting the environment");
out:
	for (i = 0; names != NULL && i < n; i++)
		free(names[i]);
	free(names);
	ak_profile_free(p);
	return rc;
}
