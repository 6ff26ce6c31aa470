/* cmd_env.c - the hot path: akctl get, env, use and exec.
 *
 * These never prompt: no agent => exit 3, locked => exit 4. The profile arrives in the secure arena;
 * output is built in a secure ak_buf and leaves in one write(2), never through stdio buffers.
 * exec also reads --env-file (python-dotenv syntax) and resolves ak://PROFILE/VAR references left in the
 * resulting environment through the agent, all before exec: never a half-resolved environment. With an
 * env file in play, references are resolved only when the file is allowed as it is (akctl allow), or
 * when they name the profile given on the command line.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "ak_allow.h"
#include "ak_buf.h"
#include "ak_dotenv.h"
#include "ak_file.h"
#include "ak_restore.h"
#include "ak_smem.h"
#include "ak_util.h"
#include "ak_varclass.h"
#include "cli.h"
#include "scan.h"

#define ENV_OUT_MAX (16u << 20) /* 65 values of 64 KiB, quoted: far below */

/* "no such profile", with the closest stored name when one is near (did you mean). Returns exit 5. */
static int
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

/* The agent wiped the profile when its own lifetime ended: say which, and how to get it back. */
static int
fail_expired(struct cli *c, const char *name)
{
	fprintf(stderr, "akctl: %s: %s expired: run 'akctl unlock' again\n", c->cmd, name);
	return ak_err_exit_code(AK_ERR_EXPIRED);
}

/* Fetch profile name from an agent unlocked on our keystore. Prints errors; returns the exit code.
 * *p is secure: the caller wipes it with ak_profile_free(). With names (may be NULL), also the names of
 * every variable any stored profile defines (LIST: no secret), for exec's isolation. */
static int
fetch_all(struct cli *c, const char *name, struct ak_profile **p, struct ak_list_entry **ents,
    uint32_t *nents)
{
	struct ak_client *cl = NULL;
	int rc;
	enum ak_err r;

	*p = NULL;
	if (ak_name_check(name) != AK_OK)
		return cli_fail(AK_ERR_BAD_NAME, NULL, "%s: '%s'", c->cmd, name);
	if ((rc = cli_agent_unlocked(c, &cl)) != 0)
		return rc;
	r = ak_client_get_kind(cl, c->previous ? AK_MSG_GET_PREVIOUS : AK_MSG_GET, name, p);
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

static int
fetch(struct cli *c, const char *name, struct ak_profile **p)
{
	return fetch_all(c, name, p, NULL, NULL);
}

/* env/use with stdout on a terminal: the secret would land in the scrollback (and the shell would
 * not even get it). Say how to use it instead, unless --reveal. Returns 0 to go on, else exit 1. */
static int
terminal_guard(struct cli *c, enum ak_shell sh, const char *name, int reveal)
{
	if (reveal || !isatty(STDOUT_FILENO))
		return 0;
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
	return 1;
}

/* Parse [--shell NAME] [--clear] [--reveal] [-h] and the positional arguments. */
static int
shell_opts(struct cli *c, int argc, char **argv, enum ak_shell *sh, int *clear, int *reveal)
{
	static const struct option longopts[] = {
		{ "shell", required_argument, NULL, 's' },
		{ "clear", no_argument, NULL, 'C' },
		{ "reveal", no_argument, NULL, 'R' },
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
		case 'R':
			*reveal = 1;
			break;
		case 'h':
			cli_cmd_help(c->cmd);
			return -1;
		default:
			return cli_bad_option(c, ch, argv);
		}
	}
	/* The shell that will read the output: the one running us, else the login shell. */
	if (!have)
		*sh = ak_shell_detect();
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
	struct ak_profile *p = NULL;
	struct ak_buf *out = NULL;
	const char *v, *var = NULL;
	int rc;
	enum ak_err r;

	cli_take_previous(c, &argc, argv, 0);
	if ((rc = cli_opts_help_only(c, argc, argv)) != 0)
		return rc < 0 ? 0 : rc;
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
		cli_note("get: no variable %s in profile %s", var, p->name);
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
	const char *name;
	int rc, reveal = 0;
	enum ak_err r;

	cli_take_previous(c, &argc, argv, 0);
	if ((rc = shell_opts(c, argc, argv, &sh, NULL, &reveal)) != 0)
		return rc < 0 ? 0 : rc;
	if ((rc = cli_one_profile(c, argc, argv, &name)) != 0 ||
	    (sh != AK_SHELL_DOTENV && sh != AK_SHELL_JSON && (rc = terminal_guard(c, sh, name, reveal)) != 0) ||
	    (rc = fetch(c, name, &p)) != 0)
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

/* Does profile p (the one switched to) set name? (ak_restore_lines' keep callback.) */
static int
sets_var(const char *name, void *arg)
{
	const struct ak_profile *p = arg;

	return p != NULL && (profile_var(p, name) != NULL || strcmp(name, "AKCTL_PROFILE") == 0);
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

int
cmd_use(struct cli *c, int argc, char **argv)
{
	struct ak_client *cl = NULL;
	struct ak_profile *p = NULL;
	struct ak_restore *prev = NULL, *next = NULL;
	struct ak_buf *out = NULL;
	enum ak_shell sh = AK_SHELL_SH;
	const char *name = NULL;
	int rc, clear = 0, reveal = 0;
	enum ak_err r;

	cli_take_previous(c, &argc, argv, 0);
	if ((rc = shell_opts(c, argc, argv, &sh, &clear, &reveal)) != 0)
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
		if ((rc = terminal_guard(c, sh, name, reveal)) != 0)
			return rc;
	}
	/* --clear needs no agent: the shell's own record says what to undo. */
	if (name != NULL) {
		if ((rc = cli_agent_unlocked(c, &cl)) != 0)
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
		if ((r = export_profile(out, sh, p)) != AK_OK ||
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

/* Names (not secret) of the variables exec set, to wipe the environment if it cannot exec. */
struct names {
	char **v;
	size_t n, cap;
};

static int
names_push(struct names *ns, const char *name)
{
	char **nv;

	if (ns->n == ns->cap) {
		ns->cap = ns->cap ? ns->cap * 2 : 16;
		if ((nv = realloc(ns->v, ns->cap * sizeof(*nv))) == NULL)
			return -1;
		ns->v = nv;
	}
	if ((ns->v[ns->n] = strdup(name)) == NULL)
		return -1;
	ns->n++;
	return 0;
}

/* setenv, remembering the name. */
static int
set_var(struct names *ns, const char *name, const char *value)
{
	if (names_push(ns, name) != 0 || setenv(name, value, 1) != 0)
		return -1;
	return 0;
}

extern char **environ;

#define REF_PREFIX "ak://"
#define EXEC_ENV_FILES_MAX 16

/* A secret reference found in the environment: VAR=ak://PROFILE/NAME (none of it secret). */
struct ref {
	char *var;     /* the variable holding the reference */
	char *target;  /* "PROFILE/NAME" */
};

/* Split "PROFILE/NAME" (the part after ak://). 0 if well formed. */
static int
ref_split(const char *t, char *prof, size_t proflen, const char **var)
{
	const char *slash = strchr(t, '/');
	size_t n;

	if (slash == NULL || (n = (size_t)(slash - t)) == 0 || n >= proflen)
		return -1;
	memcpy(prof, t, n);
	prof[n] = '\0';
	*var = slash + 1;
	if (ak_name_check(prof) != AK_OK || ak_varname_check(*var) != AK_OK)
		return -1;
	return 0;
}

/* Resolve every reference through the agent (one connection, each profile fetched once) and set the
 * variables. Prints errors; returns the exit code. Nothing is exec'd after a failure, so a command never
 * sees a half-resolved environment. */
static int
resolve_refs(struct cli *c, struct ref *refs, size_t nrefs, struct names *ns)
{
	struct ak_client *cl = NULL;
	struct ak_profile **cache = NULL;
	char prof[AK_NAME_MAX + 1];
	const char *var, *v;
	size_t i, k, ncache = 0;
	int rc = 0;
	enum ak_err r;

	if (nrefs == 0)
		return 0;
	/* Refuse malformed references before asking the agent anything. */
	for (i = 0; i < nrefs; i++) {
		if (ref_split(refs[i].target, prof, sizeof(prof), &var) != 0) {
			cli_note("exec: %s: malformed secret reference (want "
			    REF_PREFIX "PROFILE/VAR)", refs[i].var);
			return 2;
		}
	}
	if ((rc = cli_agent_unlocked(c, &cl)) != 0)
		return rc;
	if ((cache = calloc(nrefs, sizeof(*cache))) == NULL) {
		rc = cli_fail(AK_ERR_NOMEM, NULL, "exec");
		goto out;
	}
	for (i = 0; i < nrefs; i++) {
		(void)ref_split(refs[i].target, prof, sizeof(prof), &var);
		for (k = 0; k < ncache; k++)
			if (strcmp(cache[k]->name, prof) == 0)
				break;
		if (k == ncache) {
			r = ak_client_get(cl, prof, &cache[ncache]);
			if (r == AK_ERR_NO_PROFILE) {
				rc = cli_fail(r, NULL, "exec: %s=" REF_PREFIX "%s", refs[i].var, refs[i].target);
				goto out;
			}
			if (r != AK_OK) {
				rc = cli_fail_client(cl, r, "exec");
				goto out;
			}
			ncache++;
		}
		if ((v = profile_var(cache[k], var)) == NULL) {
			cli_note("exec: %s=" REF_PREFIX "%s: profile %s has no variable %s",
			    refs[i].var, refs[i].target, prof, var);
			rc = 1;
			goto out;
		}
		if (set_var(ns, refs[i].var, v) != 0) {
			rc = cli_fail(AK_ERR_NOMEM, NULL, "exec: setting the environment");
			goto out;
		}
	}
out:
	for (k = 0; k < ncache; k++)
		ak_profile_free(cache[k]); /* wipes */
	free(cache);
	ak_client_close(cl);
	return rc;
}

/* Every variable of the environment whose value is a reference, except those the profile set. */
static int
find_refs(const struct ak_profile *p, struct ref **out, size_t *nout)
{
	struct ref *refs = NULL;
	const char *eq;
	size_t i, n = 0, cap = 0;
	char **e;

	for (e = environ; e != NULL && *e != NULL; e++) {
		if ((eq = strchr(*e, '=')) == NULL || strncmp(eq + 1, REF_PREFIX, strlen(REF_PREFIX)) != 0)
			continue;
		if (n == cap) {
			struct ref *nr;

			cap = cap ? cap * 2 : 8;
			if ((nr = realloc(refs, cap * sizeof(*nr))) == NULL)
				goto fail;
			refs = nr;
		}
		refs[n].var = strndup(*e, (size_t)(eq - *e));
		refs[n].target = strdup(eq + 1 + strlen(REF_PREFIX));
		n++;
		if (refs[n - 1].var == NULL || refs[n - 1].target == NULL)
			goto fail;
		if (p != NULL && profile_var(p, refs[n - 1].var) != NULL) {
			/* The profile's own value: literal, never a reference to follow. */
			n--;
			free(refs[n].var);
			free(refs[n].target);
		}
	}
	*out = refs;
	*nout = n;
	return 0;
fail:
	for (i = 0; i < n; i++) {
		free(refs[i].var);
		free(refs[i].target);
	}
	free(refs);
	return -1;
}

/* Read and parse each --env-file; allowed[i] = 1 when files[i] is on the allow list with exactly the
 * bytes parsed. Prints errors; returns the exit code. */
static int
load_env_files(const char **files, size_t nfiles, struct ak_dotenv **d, int *allowed)
{
	char *buf = NULL, real[AK_PATH_MAX], hex[AK_ALLOW_HEX];
	size_t i, k, len, bad;
	enum ak_err r;

	for (i = 0; i < nfiles; i++) {
		if ((r = ak_file_load(files[i], AK_DOTENV_FILE_MAX, AK_FILE_SECURE, &buf, &len)) != AK_OK)
			return cli_fail(r, r == AK_ERR_IO ? strerror(errno) : NULL, "exec: --env-file %s",
			    files[i]);
		/* The digest of the very bytes used: a file edited after its allow is not allowed. */
		allowed[i] = 0;
		ak_allow_digest(buf, len, hex);
		if (ak_allow_realpath(files[i], real, sizeof(real)) == AK_OK &&
		    ak_allow_check(real, hex, &allowed[i]) != AK_OK)
			allowed[i] = 0;
		r = ak_dotenv_parse(buf, len, &d[i], &bad);
		ak_smem_free(buf); /* wipes */
		buf = NULL;
		if (r == AK_ERR_BAD_FORMAT) {
			cli_note("exec: %s:%zu: not UTF-8 text (or a NUL byte)", files[i], bad);
			return 1;
		}
		if (r != AK_OK)
			return cli_fail(r, NULL, "exec: --env-file %s", files[i]);
		if (d[i]->nbad > 0)
			cli_note("exec: %s:%zu: statement not understood, skipped as python-dotenv does",
			    files[i], bad);
		for (k = 0; k < d[i]->n; k++) {
			const char *name = d[i]->e[k].name;

			if (name[0] == '\0' || strchr(name, '=') != NULL) {
				cli_note("exec: %s:%zu: a variable name cannot be empty or hold "
				    "'='", files[i], d[i]->e[k].line);
				return 1;
			}
		}
	}
	return 0;
}

/* Consent: once an env file takes part, a reference is resolved only when every file is allowed (a
 * committed .env may pair ak://production/KEY with a planted base URL), or when it names the profile
 * given on the command line, which the user chose. Prints the refusal; returns the exit code. */
static int
check_consent(const char **files, const int *allowed, size_t nfiles, const struct ref *refs, size_t nrefs,
    const char *profile)
{
	char prof[AK_NAME_MAX + 1];
	const char *var;
	size_t i, k;

	for (i = 0; i < nfiles && allowed[i]; i++)
		;
	if (i == nfiles)
		return 0;
	for (k = 0; k < nrefs; k++) {
		if (ref_split(refs[k].target, prof, sizeof(prof), &var) != 0)
			continue; /* malformed: refused later, before the agent is asked anything */
		if (profile != NULL && strcmp(prof, profile) == 0)
			continue;
		cli_note("exec: %s is not allowed to ask for secrets (%s=" REF_PREFIX "%s): review it, then run "
		    "'akctl allow %s'", files[i], refs[k].var, refs[k].target, files[i]);
		return 1;
	}
	return 0;
}

#define EXEC_KEEP_MAX 64

/* Variables a clean environment (exec --clean) keeps from the caller's. */
static int
clean_keeps(const char *name, size_t len)
{
	static const char *const base[] = { "PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "LANG",
		"TZ", "TMPDIR" };
	size_t i;

	if (len > 3 && strncmp(name, "LC_", 3) == 0)
		return 1;
	for (i = 0; i < sizeof(base) / sizeof(base[0]); i++)
		if (strlen(base[i]) == len && strncmp(name, base[i], len) == 0)
			return 1;
	return 0;
}

static int
kept(const char *name, const char **keep, size_t nkeep)
{
	size_t i;

	for (i = 0; i < nkeep; i++)
		if (strcmp(keep[i], name) == 0)
			return 1;
	return 0;
}

/* The child gets the profile, not the profile plus whatever the shell had loaded: every variable a
 * stored profile defines (ents: names only, from LIST) goes, and what `use` set goes back to its value
 * before use (AKCTL_RESTORE), except --keep names. A basic variable (PATH, HOME...) only ever goes back,
 * never away: a profile defining HOME must not leave the command homeless. With clean, first everything
 * but those basic variables goes. Then the caller sets the profile's own. Returns 0, or -1 on no memory. */
static int
isolate_env(const struct ak_list_entry *ents, uint32_t nents, const char **keep, size_t nkeep, int clean)
{
	struct ak_restore *rs = NULL;
	const char *enc = getenv(AK_RESTORE_VAR);
	char name[AK_VARNAME_MAX + 1];
	const char *eq;
	uint32_t i, k;
	size_t j;
	int ret = -1;

	if (clean) {
		/* Walk a copy of the names: unsetenv changes environ. */
		for (;;) {
			char **e;

			for (e = environ; *e != NULL; e++) {
				eq = strchr(*e, '=');
				j = eq != NULL ? (size_t)(eq - *e) : strlen(*e);
				if (!clean_keeps(*e, j) && j < sizeof(name)) {
					memcpy(name, *e, j);
					name[j] = '\0';
					if (!kept(name, keep, nkeep))
						break;
				}
			}
			if (*e == NULL)
				break;
			if (unsetenv(name) != 0)
				goto out;
		}
	}
	if (enc != NULL && enc[0] != '\0' && ak_restore_decode(enc, 1, &rs) == AK_OK) {
		for (j = 0; j < rs->n; j++) {
			if (kept(rs->e[j].name, keep, nkeep))
				continue;
			if (rs->e[j].old != NULL ? setenv(rs->e[j].name, rs->e[j].old, 1) != 0 :
			    unsetenv(rs->e[j].name) != 0)
				goto out;
		}
	}
	if (unsetenv(AK_RESTORE_VAR) != 0)
		goto out;
	for (i = 0; i < nents; i++) {
		for (k = 0; k <= ents[i].nvars; k++) {
			const char *nm = k == 0 ? ents[i].secret_var : ents[i].vars[k - 1];

			if (kept(nm, keep, nkeep) || clean_keeps(nm, strlen(nm)))
				continue;
			if (unsetenv(nm) != 0)
				goto out;
		}
	}
	ret = 0;
out:
	ak_restore_free(rs);
	return ret;
}

int
cmd_exec(struct cli *c, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "env-file", required_argument, NULL, 'e' },
		{ "keep", required_argument, NULL, 'k' },
		{ "clean", no_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ak_dotenv *d[EXEC_ENV_FILES_MAX] = { NULL };
	const char *files[EXEC_ENV_FILES_MAX];
	int allowed[EXEC_ENV_FILES_MAX];
	struct ak_profile *p = NULL;
	struct names ns = { NULL, 0, 0 };
	struct ref *refs = NULL;
	struct ak_list_entry *ents = NULL;
	uint32_t nents = 0;
	const char *keep[EXEC_KEEP_MAX];
	size_t nkeep = 0;
	int clean = 0;
	const char *profile = NULL, *lastarg = NULL;
	char **cmd;
	size_t i, k, nfiles = 0, nrefs = 0;
	int ch, rc, err;

	if (cli_proxy_wanted(argc, argv))
		return cli_proxy_exec(c, argc, argv); /* cmd_proxy.c: the key stays out of CMD */
	/* --redact: the command's output goes through the redaction filter (cmd_redact.c), which runs
	 * this command again without it. */
	for (i = 1; i < (size_t)argc && strcmp(argv[i], "--") != 0; i++)
		if (strcmp(argv[i], "--redact") == 0)
			return cli_exec_redact(c, argc, argv);
	/* '+': stop at PROFILE; everything after "--" belongs to the command. */
	cli_take_previous(c, &argc, argv, 1);
	while ((ch = getopt_long(argc, argv, "+:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'e':
			if (nfiles == EXEC_ENV_FILES_MAX)
				return cli_usage_error(c, "at most %d --env-file", EXEC_ENV_FILES_MAX);
			files[nfiles++] = lastarg = optarg;
			break;
		case 'k':
			if (ak_varname_check(optarg) != AK_OK)
				return cli_fail(AK_ERR_BAD_VARNAME, NULL, "exec: --keep '%s'", optarg);
			if (nkeep == EXEC_KEEP_MAX)
				return cli_usage_error(c, "at most %d --keep", EXEC_KEEP_MAX);
			keep[nkeep++] = lastarg = optarg;
			break;
		case 'c':
			clean = 1;
			break;
		case 'h':
			return cli_cmd_help(c->cmd);
		default:
			return cli_bad_option(c, ch, argv);
		}
	}
	/* "akctl exec [--env-file F] -- CMD": getopt ate the "--", so no PROFILE. */
	if (optind > 1 && strcmp(argv[optind - 1], "--") == 0 && argv[optind - 1] != lastarg) {
		cmd = &argv[optind];
	} else {
		if (optind >= argc)
			return cli_usage_error(c, "missing PROFILE (or -- CMD)");
		profile = argv[optind];
		cmd = &argv[optind + 1];
		if (*cmd != NULL && strcmp(*cmd, "--") == 0)
			cmd++;
	}
	if (*cmd == NULL)
		return cli_usage_error(c, "missing command (akctl exec [--env-file FILE] [PROFILE] -- CMD "
		    "[ARG...])");
	if ((rc = load_env_files(files, nfiles, d, allowed)) != 0)
		goto out;
	if (profile != NULL && (rc = fetch_all(c, profile, &p, &ents, &nents)) != 0)
		goto out;
	if ((profile != NULL || clean) && isolate_env(ents, nents, keep, nkeep, clean) != 0) {
		rc = cli_fail(AK_ERR_NOMEM, NULL, "exec: setting the environment");
		goto out;
	}

	/* Precedence: inherited environment < --env-file (in order) < PROFILE. akagent's own variables
	 * never come from a file: AKAGENT_SOCK there would send every reference to another listener. */
	for (i = 0; i < nfiles; i++) {
		for (k = 0; k < d[i]->n; k++) {
			if (d[i]->e[k].value == NULL)
				continue;
			if (ak_varclass_of(d[i]->e[k].name) == AK_VAR_AKAGENT) {
				cli_note("exec: %s:%zu: %s ignored (akagent's own variables never come from a "
				    "file)", files[i], d[i]->e[k].line, d[i]->e[k].name);
				continue;
			}
			if (set_var(&ns, d[i]->e[k].name, d[i]->e[k].value) != 0)
				goto fail_env;
		}
	}
	if (p != NULL) {
		if (set_var(&ns, p->secret_var, p->secret) != 0)
			goto fail_env;
		for (i = 0; i < p->nvars; i++)
			if (set_var(&ns, p->vars[i].name, p->vars[i].value) != 0)
				goto fail_env;
		if (setenv("AKCTL_PROFILE", p->name, 1) != 0)
			goto fail_env;
	}
	/* Then every ak://PROFILE/VAR left in the environment, the file's and the inherited ones. */
	if (find_refs(p, &refs, &nrefs) != 0)
		goto fail_env;
	if ((rc = check_consent(files, allowed, nfiles, refs, nrefs, profile)) != 0 ||
	    (rc = resolve_refs(c, refs, nrefs, &ns)) != 0) {
		wipe_env(ns.v, ns.n);
		goto out;
	}
	/* Our copies go now; the kernel copies the environment into the new image. */
	ak_profile_free(p);
	p = NULL;
	for (i = 0; i < nfiles; i++) {
		ak_dotenv_free(d[i]);
		d[i] = NULL;
	}
	fflush(stdout);
	execvp(cmd[0], cmd);
	err = errno;
	wipe_env(ns.v, ns.n);
	cli_note("exec: %s: %s", cmd[0], strerror(err));
	rc = err == ENOENT ? 127 : 126;
	goto out;
fail_env:
	wipe_env(ns.v, ns.n);
	rc = cli_fail(AK_ERR_NOMEM, NULL, "exec: setting the environment");
out:
	for (i = 0; i < nrefs; i++) {
		free(refs[i].var);
		free(refs[i].target);
	}
	free(refs);
	ak_client_list_free(ents, nents);
	for (i = 0; i < ns.n; i++)
		free(ns.v[i]);
	free(ns.v);
	for (i = 0; i < nfiles; i++)
		ak_dotenv_free(d[i]);
	ak_profile_free(p);
	return rc;
}
