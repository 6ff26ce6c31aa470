/* cmd_exec.c - akctl exec [--env-file FILE]... [PROFILE] -- CMD: run a command with a profile's variables.
 *
 * Never prompts (no agent => exit 3, locked => exit 4). --env-file is read as python-dotenv does; every
 * ak://PROFILE/VAR reference left in the resulting environment is resolved through the agent, all before
 * exec: never a half-resolved environment. With an env file in play, references are resolved only when
 * the file is allowed as it is (akctl allow), or when they name the profile given on the command line.
 * The variables' values live only in the environment handed to the new image; they are wiped there when
 * the exec fails.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "ak_allow.h"
#include "ak_dotenv.h"
#include "ak_file.h"
#include "ak_restore.h"
#include "ak_smem.h"
#include "ak_util.h"
#include "ak_varclass.h"
#include "cli.h"
#include "scan.h"

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
 * variables. Prints errors and returns them. Nothing is exec'd after a failure, so a command never
 * sees a half-resolved environment. */
static enum ak_err
resolve_refs(struct cli *c, struct ref *refs, size_t nrefs, struct names *ns)
{
	struct ak_client *cl = NULL;
	struct ak_profile **cache = NULL;
	char prof[AK_NAME_MAX + 1];
	const char *var, *v;
	size_t i, k, ncache = 0;
	enum ak_err rc = AK_OK, r;

	if (nrefs == 0)
		return AK_OK;
	/* Refuse malformed references before asking the agent anything. */
	for (i = 0; i < nrefs; i++) {
		if (ref_split(refs[i].target, prof, sizeof(prof), &var) != 0) {
			cli_note("exec: %s: malformed secret reference (want "
			    CLI_REF_PREFIX "PROFILE/VAR)", refs[i].var);
			return AK_ERR_INVALID;
		}
	}
	if ((rc = cli_agent_unlocked(c, &cl)) != AK_OK)
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
				rc = cli_fail(r, NULL, "exec: %s=" CLI_REF_PREFIX "%s", refs[i].var, refs[i].target);
				goto out;
			}
			if (r != AK_OK) {
				rc = cli_fail_client(cl, r, "exec");
				goto out;
			}
			ncache++;
		}
		if ((v = cli_profile_var(cache[k], var)) == NULL) {
			cli_note("exec: %s=" CLI_REF_PREFIX "%s: profile %s has no variable %s",
			    refs[i].var, refs[i].target, prof, var);
			rc = AK_ERR_NO_VAR;
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
		if ((eq = strchr(*e, '=')) == NULL || strncmp(eq + 1, CLI_REF_PREFIX, strlen(CLI_REF_PREFIX)) != 0)
			continue;
		if (n == cap) {
			struct ref *nr;

			cap = cap ? cap * 2 : 8;
			if ((nr = realloc(refs, cap * sizeof(*nr))) == NULL)
				goto fail;
			refs = nr;
		}
		refs[n].var = strndup(*e, (size_t)(eq - *e));
		refs[n].target = strdup(eq + 1 + strlen(CLI_REF_PREFIX));
		n++;
		if (refs[n - 1].var == NULL || refs[n - 1].target == NULL)
			goto fail;
		if (p != NULL && cli_profile_var(p, refs[n - 1].var) != NULL) {
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
 * bytes parsed. Prints errors and returns them. */
static enum ak_err
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
			return AK_ERR_BAD_FORMAT;
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
				return AK_ERR_BAD_FORMAT;
			}
		}
	}
	return AK_OK;
}

/* Consent: once an env file takes part, a reference is resolved only when every file is allowed (a
 * committed .env may pair ak://production/KEY with a planted base URL), or when it names the profile
 * given on the command line, which the user chose. Prints the refusal and returns AK_ERR_DENIED. */
static enum ak_err
check_consent(const char **files, const int *allowed, size_t nfiles, const struct ref *refs, size_t nrefs,
    const char *profile)
{
	char prof[AK_NAME_MAX + 1];
	const char *var;
	size_t i, k;

	for (i = 0; i < nfiles && allowed[i]; i++)
		;
	if (i == nfiles)
		return AK_OK;
	for (k = 0; k < nrefs; k++) {
		if (ref_split(refs[k].target, prof, sizeof(prof), &var) != 0)
			continue; /* malformed: refused later, before the agent is asked anything */
		if (profile != NULL && strcmp(prof, profile) == 0)
			continue;
		cli_note("exec: %s is not allowed to ask for secrets (%s=" CLI_REF_PREFIX "%s): review it, then run "
		    "'akctl allow %s'", files[i], refs[k].var, refs[k].target, files[i]);
		return AK_ERR_DENIED;
	}
	return AK_OK;
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

enum ak_err
cmd_exec(struct cli *c, int argc, char **argv)
{
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
	int clean = 0, helped;
	const char *profile = NULL;
	char **cmd;
	size_t i, k, nfiles = 0, nrefs = 0;
	int err;
	enum ak_err rc;
	const struct ak_opt opts[] = {
		CLI_LIST("env-file", files, &nfiles, EXEC_ENV_FILES_MAX),
		CLI_LIST("keep", keep, &nkeep, EXEC_KEEP_MAX),
		CLI_FLAG("clean", &clean, 1),
		CLI_OPT_END,
	};

	if (cli_proxy_wanted(argc, argv))
		return cli_proxy_exec(c, argc, argv); /* cmd_proxy.c: the key stays out of CMD */
	/* --redact: the command's output goes through the redaction filter (cmd_redact.c), which runs
	 * this command again without it. */
	for (i = 1; i < (size_t)argc && strcmp(argv[i], "--") != 0; i++)
		if (strcmp(argv[i], "--redact") == 0)
			return cli_exec_redact(c, argc, argv);
	/* '+': stop at PROFILE; everything after "--" belongs to the command. */
	cli_take_previous(c, &argc, argv, 1);
	if ((rc = cli_opts_parse(c, argc, argv, opts, 1, &helped)) != AK_OK || helped)
		return rc;
	for (i = 0; i < nkeep; i++)
		if (ak_varname_check(keep[i]) != AK_OK)
			return cli_fail(AK_ERR_BAD_VARNAME, NULL, "exec: --keep '%s'", keep[i]);
	/* "akctl exec [--env-file F] -- CMD": getopt ate the "--", so no PROFILE; unless that "--" was the
	 * last option's argument ("--env-file --"). */
	if (optind > 1 && strcmp(argv[optind - 1], "--") == 0 &&
	    (nfiles == 0 || files[nfiles - 1] != argv[optind - 1]) &&
	    (nkeep == 0 || keep[nkeep - 1] != argv[optind - 1])) {
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
	if ((rc = load_env_files(files, nfiles, d, allowed)) != AK_OK)
		goto out;
	if (profile != NULL && (rc = cli_fetch_profile(c, profile, &p, &ents, &nents)) != AK_OK)
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
	if ((rc = check_consent(files, allowed, nfiles, refs, nrefs, profile)) != AK_OK ||
	    (rc = resolve_refs(c, refs, nrefs, &ns)) != AK_OK) {
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
	rc = cli_status(c, err == ENOENT ? 127 : 126); /* as sh(1) says it */
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
