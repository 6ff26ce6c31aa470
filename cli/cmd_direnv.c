/* cmd_direnv.c - akctl dir-env: per-directory profiles (.akprofile), run by the shell hook at every
 * prompt and on cd.
 *
 * A .akprofile in the working directory or above names a profile and, optionally, plain variables:
 *     # comments and blank lines are ignored
 *     production
 *     MODEL_NAME=claude-small
 * Entering such a directory switches the shell to the profile (as `use` does) and sets the variables;
 * leaving it puts back exactly what was there. A file is obeyed only when the user allowed it with its
 * current content (`akctl allow`, the list exec --env-file uses): a cloned repository cannot switch
 * keys by itself, and an edited file is refused until allowed again. Variables that steer a shell, a
 * loader or where keys go (ak_varclass_of) are never taken from the file.
 *
 * The shell keeps two exported variables, both written only by us:
 *   AKCTL_DIRENV          the state: "STATUS FILEKEY ALLOWKEY DIGEST PATH" (STATUS on|off|bad|wait)
 *   AKCTL_DIRENV_RESTORE  while on: what entering replaced (ak_restore.h), every variable it touched,
 *                         AKCTL_PROFILE and AKCTL_RESTORE included; may hold previous secrets
 * The common case costs a few stat(2) calls and no agent round trip: when the file found (path, inode,
 * size, mtime) and the allow list's own stamp equal the state, nothing is printed. Messages (refused,
 * changed, locked...) are printed only when that comparison changes, so once per change, not at every
 * prompt. A "wait" state (agent locked or absent) retries quietly at each prompt.
 * Values (secrets) are built in secure memory and leave in one write(2).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ak_allow.h"
#include "ak_buf.h"
#include "ak_file.h"
#include "ak_restore.h"
#include "ak_smem.h"
#include "ak_util.h"
#include "ak_varclass.h"
#include "cli.h"

#define DIRENV_FILE ".akprofile"
#define DIRENV_VAR "AKCTL_DIRENV"
#define DIRENV_RESTORE_VAR "AKCTL_DIRENV_RESTORE"
#define DIRENV_FILE_MAX 65536
#define DIRENV_VARS_MAX 64
#define DIRENV_OUT_MAX (16u << 20)
#define KEY_MAX 128

/* The state in AKCTL_DIRENV, parsed; or the state we are about to write. */
struct state {
	char status[8];
	char filekey[KEY_MAX];
	char allowkey[KEY_MAX];
	char hex[AK_ALLOW_HEX];
	char path[AK_PATH_MAX];
};

/* A parsed .akprofile: pointers into the (secure) file buffer. */
struct akfile {
	const char *profile;
	size_t nvars;
	const char *name[DIRENV_VARS_MAX];
	const char *value[DIRENV_VARS_MAX];
};

/* "dev.ino.size.sec.nsec" of st: changes when the file is replaced or written. */
static void
stat_key(const struct stat *st, char *out, size_t outlen)
{
	snprintf(out, outlen, "%ju.%ju.%jd.%jd.%ld", (uintmax_t)st->st_dev, (uintmax_t)st->st_ino,
	    (intmax_t)st->st_size, (intmax_t)st->st_mtim.tv_sec, (long)st->st_mtim.tv_nsec);
}

/* The nearest .akprofile from the working directory up to /, into path (its directory's path as
 * getcwd gives it, symlinks resolved) and *st. 1 found, 0 none. */
static int
find_file(char *path, size_t pathlen, struct stat *st)
{
	char dir[AK_PATH_MAX];
	char *slash;
	int n;

	if (getcwd(dir, sizeof(dir)) == NULL)
		return 0;
	for (;;) {
		n = snprintf(path, pathlen, "%s%s" DIRENV_FILE, dir, strcmp(dir, "/") == 0 ? "" : "/");
		if (n > 0 && (size_t)n < pathlen && stat(path, st) == 0 && S_ISREG(st->st_mode))
			return 1;
		if (strcmp(dir, "/") == 0)
			return 0;
		slash = strrchr(dir, '/');
		if (slash == dir)
			slash[1] = '\0';
		else if (slash != NULL)
			*slash = '\0';
		else
			return 0;
	}
}

/* The allow list's stamp: "-" when there is none. Allowing or denying any file changes it. */
static void
allow_key(char *out, size_t outlen)
{
	char path[AK_PATH_MAX];
	struct stat st;

	if (ak_allow_list_path(path, sizeof(path)) != AK_OK || stat(path, &st) != 0)
		snprintf(out, outlen, "-");
	else
		stat_key(&st, out, outlen);
}

/* Split the state variable's value into s. 0, or -1 if it is not one of ours (then ignored). */
static int
state_parse(const char *v, struct state *s)
{
	char *f[4];
	size_t lens[4] = { sizeof(s->status), sizeof(s->filekey), sizeof(s->allowkey), sizeof(s->hex) };
	const char *sp;
	size_t i, len;

	memset(s, 0, sizeof(*s));
	f[0] = s->status;
	f[1] = s->filekey;
	f[2] = s->allowkey;
	f[3] = s->hex;
	for (i = 0; i < 4; i++) {
		if ((sp = strchr(v, ' ')) == NULL || (len = (size_t)(sp - v)) == 0 || len >= lens[i])
			return -1;
		memcpy(f[i], v, len);
		f[i][len] = '\0';
		v = sp + 1;
	}
	if (v[0] != '/' || strlen(v) >= sizeof(s->path))
		return -1;
	strcpy(s->path, v);
	return 0;
}

/* Parse buf (len bytes, NUL-terminated, modified in place) into f. 0, or -1 with a reason in why. */
static int
akfile_parse(char *buf, size_t len, struct akfile *f, char *why, size_t whylen)
{
	char *line = buf, *nl, *eq, *end = buf + len;
	int lineno = 0;

	memset(f, 0, sizeof(*f));
	if (memchr(buf, '\0', len) != NULL) {
		snprintf(why, whylen, "it holds a NUL byte");
		return -1;
	}
	while (line < end) {
		lineno++;
		if ((nl = strchr(line, '\n')) != NULL)
			*nl = '\0';
		if (nl != NULL && nl > line && nl[-1] == '\r')
			nl[-1] = '\0';
		else if (nl == NULL && line[0] != '\0' && line[strlen(line) - 1] == '\r')
			line[strlen(line) - 1] = '\0';
		if (line[0] != '\0' && line[0] != '#') {
			if (f->profile == NULL) {
				if (ak_name_check(line) != AK_OK) {
					snprintf(why, whylen, "line %d: not a profile name", lineno);
					return -1;
				}
				f->profile = line;
			} else {
				if ((eq = strchr(line, '=')) == NULL) {
					snprintf(why, whylen, "line %d: not NAME=VALUE", lineno);
					return -1;
				}
				*eq = '\0';
				if (ak_varname_check(line) != AK_OK) {
					snprintf(why, whylen, "line %d: not a variable name", lineno);
					return -1;
				}
				if (f->nvars == DIRENV_VARS_MAX) {
					snprintf(why, whylen, "more than %d variables", DIRENV_VARS_MAX);
					return -1;
				}
				f->name[f->nvars] = line;
				f->value[f->nvars++] = eq + 1;
			}
		}
		if (nl == NULL)
			break;
		line = nl + 1;
	}
	if (f->profile == NULL) {
		snprintf(why, whylen, "no profile name");
		return -1;
	}
	return 0;
}

/* The environment as it will be once the lines already in the output (leaving) have run. */
struct view {
	struct ak_restore *dirrec; /* AKCTL_DIRENV_RESTORE being undone, or NULL (the view owns both) */
	struct ak_restore *userec; /* AKCTL_RESTORE being undone with it, or NULL */
};

static const char *
view_get(const struct view *v, const char *name)
{
	const struct ak_restore_entry *e;

	if (v->dirrec != NULL && (e = ak_restore_find(v->dirrec, name)) != NULL)
		return e->old;
	if (v->userec != NULL && (e = ak_restore_find(v->userec, name)) != NULL)
		return e->old;
	return getenv(name);
}

/* A record in the environment variable var (NULL if unset, empty, or not ours). */
static struct ak_restore *
record_from(const char *enc)
{
	struct ak_restore *r = NULL;

	if (enc == NULL || enc[0] == '\0' || ak_restore_decode(enc, 1, &r) != AK_OK)
		return NULL;
	return r;
}

static int
in_record(const char *name, void *arg)
{
	return ak_restore_find(arg, name) != NULL;
}

/* Lines that leave the active directory: undo a `use` made inside it, then put back every variable
 * entering replaced (AKCTL_RESTORE and AKCTL_PROFILE among them). */
static enum ak_err
leave_lines(struct ak_buf *out, enum ak_shell sh, const struct view *v)
{
	enum ak_err r;

	if (v->dirrec == NULL)
		return AK_OK;
	if ((r = ak_restore_lines(out, sh, v->userec, in_record, v->dirrec)) != AK_OK)
		return r;
	return ak_restore_lines(out, sh, v->dirrec, NULL, NULL);
}

/* Export rec, encoded, as var. */
static enum ak_err
export_record(struct ak_buf *out, enum ak_shell sh, const char *var, const struct ak_restore *rec)
{
	struct ak_buf *enc = ak_buf_new_secure(AK_RESTORE_ENC_MAX + 1);
	enum ak_err r;

	if (enc == NULL)
		return AK_ERR_NOMEM;
	if ((r = ak_restore_encode(rec, enc)) == AK_OK && (r = ak_buf_put_u8(enc, 0)) == AK_OK)
		r = ak_shell_export(out, sh, var, (const char *)ak_buf_ptr(enc));
	ak_buf_free(enc);
	return r;
}

struct setter {
	const struct akfile *f;
	const struct ak_profile *p;
};

/* Does entering set name? (keep callback: the previous use's value for it is not put back.) */
static int
sets(const char *name, void *arg)
{
	const struct setter *s = arg;
	size_t i;

	if (strcmp(name, "AKCTL_PROFILE") == 0 || strcmp(name, s->p->secret_var) == 0)
		return 1;
	for (i = 0; i < s->p->nvars; i++)
		if (strcmp(name, s->p->vars[i].name) == 0)
			return 1;
	for (i = 0; i < s->f->nvars; i++)
		if (s->f->name[i] != NULL && strcmp(name, s->f->name[i]) == 0)
			return 1;
	return 0;
}

/* Both records for one variable: dirrec gets its value now (in the view), nextuse the value it had
 * before any use (what `use --clear` inside the directory puts back). */
static enum ak_err
record_var(struct ak_restore *dirrec, struct ak_restore *nextuse, const struct ak_restore *prevuse,
    const struct view *v, const char *name)
{
	const struct ak_restore_entry *e = prevuse != NULL ? ak_restore_find(prevuse, name) : NULL;
	enum ak_err r;

	if ((r = ak_restore_add(dirrec, name, view_get(v, name))) != AK_OK)
		return r;
	return ak_restore_add(nextuse, name, e != NULL ? e->old : view_get(v, name));
}

/* Lines that enter: switch to p as `use` would, with f's plain variables, and record everything. */
static enum ak_err
enter_lines(struct ak_buf *out, enum ak_shell sh, const struct view *v, const struct akfile *f,
    const struct ak_profile *p)
{
	struct ak_restore *prevuse = record_from(view_get(v, AK_RESTORE_VAR));
	struct ak_restore *dirrec = ak_restore_new(1), *nextuse = ak_restore_new(1);
	struct setter s = { f, p };
	size_t i;
	enum ak_err r;

	if (dirrec == NULL || nextuse == NULL) {
		r = AK_ERR_NOMEM;
		goto out;
	}
	/* Every variable whose value changes, with its value now: leaving puts each back. */
	for (i = 0; prevuse != NULL && i < prevuse->n; i++)
		if ((r = ak_restore_add(dirrec, prevuse->e[i].name, view_get(v, prevuse->e[i].name))) != AK_OK)
			goto out;
	for (i = 0; i < f->nvars; i++)
		if (f->name[i] != NULL && (r = record_var(dirrec, nextuse, prevuse, v, f->name[i])) != AK_OK)
			goto out;
	if ((r = record_var(dirrec, nextuse, prevuse, v, p->secret_var)) != AK_OK)
		goto out;
	for (i = 0; i < p->nvars; i++)
		if ((r = record_var(dirrec, nextuse, prevuse, v, p->vars[i].name)) != AK_OK)
			goto out;
	if ((r = record_var(dirrec, nextuse, prevuse, v, "AKCTL_PROFILE")) != AK_OK ||
	    (r = ak_restore_add(dirrec, AK_RESTORE_VAR, view_get(v, AK_RESTORE_VAR))) != AK_OK)
		goto out;
	/* Undo the previous use (what this sets aside), then the file's variables, then the profile's:
	 * the profile wins over a file variable of the same name. */
	if ((r = ak_restore_lines(out, sh, prevuse, sets, &s)) != AK_OK)
		goto out;
	for (i = 0; i < f->nvars; i++)
		if (f->name[i] != NULL && (r = ak_shell_export(out, sh, f->name[i], f->value[i])) != AK_OK)
			goto out;
	if ((r = cli_export_profile(out, sh, p)) != AK_OK ||
	    (r = ak_shell_export(out, sh, "AKCTL_PROFILE", p->name)) != AK_OK ||
	    (r = export_record(out, sh, AK_RESTORE_VAR, nextuse)) != AK_OK ||
	    (r = export_record(out, sh, DIRENV_RESTORE_VAR, dirrec)) != AK_OK)
		goto out;
	r = AK_OK;
out:
	ak_restore_free(prevuse);
	ak_restore_free(dirrec);
	ak_restore_free(nextuse);
	return r;
}

/* Append the state line (or its removal when s is NULL), and the removal of the restore record when
 * the state is not "on". */
static enum ak_err
state_lines(struct ak_buf *out, enum ak_shell sh, const struct state *s)
{
	char v[sizeof(*s) + 8];
	enum ak_err r;

	if (s == NULL || strcmp(s->status, "on") != 0)
		if (getenv(DIRENV_RESTORE_VAR) != NULL &&
		    (r = ak_shell_unset(out, sh, DIRENV_RESTORE_VAR)) != AK_OK)
			return r;
	if (s == NULL)
		return getenv(DIRENV_VAR) != NULL ? ak_shell_unset(out, sh, DIRENV_VAR) : AK_OK;
	snprintf(v, sizeof(v), "%s %s %s %s %s", s->status, s->filekey, s->allowkey, s->hex, s->path);
	return ak_shell_export(out, sh, DIRENV_VAR, v);
}

/* The profile f names, from an agent unlocked on our keystore. Never prompts. AK_OK with *p (secure:
 * the caller frees it), else the error (AK_ERR_LOCKED, AK_ERR_NO_AGENT, AK_ERR_NO_PROFILE...). */
static enum ak_err
fetch_profile(struct cli *c, const char *name, struct ak_profile **p)
{
	struct ak_client *cl = NULL;
	struct ak_status st;
	char detail[AK_CLIENT_DETAIL_MAX];
	enum ak_err r;

	memset(&st, 0, sizeof(st));
	if ((r = cli_store_path(c)) != AK_OK)
		return r;
	if ((r = cli_agent_for_store(c, &cl, &st, detail, sizeof(detail))) != AK_OK)
		return r;
	r = st.unlocked ? ak_client_get(cl, name, p) : AK_ERR_LOCKED;
	ak_status_clear(&st);
	ak_client_close(cl);
	return r;
}

enum ak_err
cmd_direnv(struct cli *c, int argc, char **argv)
{
	struct state cur, next;
	struct stat st;
	struct view v = { NULL, NULL };
	struct akfile f;
	struct ak_profile *p = NULL;
	struct ak_buf *out = NULL;
	enum ak_shell sh = AK_SHELL_SH;
	const char *curv = getenv(DIRENV_VAR);
	const char *denied[DIRENV_VARS_MAX] = { NULL };
	char *buf = NULL, why[128], real[AK_PATH_MAX];
	size_t len = 0, i;
	const char *shell = NULL;
	int have_cur, found, same_file, helped;
	enum ak_err rc = AK_OK, r;
	const struct ak_opt opts[] = {
		{ .name = "shell", .short_name = 's', .kind = AK_OPT_VALUE, .value = &shell },
		CLI_OPT_END,
	};

	if ((rc = cli_opts_parse(c, argc, argv, opts, 0, &helped)) != AK_OK || helped)
		return rc;
	if (optind != argc)
		return cli_usage_error(c, "unexpected argument '%s'", argv[optind]);
	if ((rc = cli_shell_choose(c, shell, 0, &sh)) != AK_OK)
		return rc;
	if (isatty(STDOUT_FILENO)) {
		cli_note("dir-env prints lines for the shell hook to evaluate (see 'akctl hook')");
		return AK_ERR_DENIED;
	}

	/* The cheap part: which file, and has anything about it changed since the last prompt? */
	have_cur = curv != NULL && state_parse(curv, &cur) == 0;
	memset(&next, 0, sizeof(next));
	found = find_file(next.path, sizeof(next.path), &st);
	if (!found && !have_cur && curv == NULL)
		return AK_OK;
	if (found) {
		stat_key(&st, next.filekey, sizeof(next.filekey));
		allow_key(next.allowkey, sizeof(next.allowkey));
		if (have_cur && strcmp(cur.status, "wait") != 0 && strcmp(cur.path, next.path) == 0 &&
		    strcmp(cur.filekey, next.filekey) == 0 && strcmp(cur.allowkey, next.allowkey) == 0)
			return AK_OK;
	}

	/* Something changed: from here on, files, the allow list and perhaps the agent. */
	if ((out = ak_buf_new_secure(DIRENV_OUT_MAX)) == NULL) {
		rc = cli_fail(AK_ERR_NOMEM, NULL, "dir-env");
		goto out;
	}
	if (have_cur && strcmp(cur.status, "on") == 0 &&
	    (v.dirrec = record_from(getenv(DIRENV_RESTORE_VAR))) != NULL)
		v.userec = record_from(getenv(AK_RESTORE_VAR));
	if (!found) {
		if ((r = leave_lines(out, sh, &v)) != AK_OK || (r = state_lines(out, sh, NULL)) != AK_OK)
			goto fail;
		goto emit;
	}
	if ((r = ak_file_load(next.path, DIRENV_FILE_MAX, AK_FILE_SECURE | AK_FILE_REGULAR, &buf, &len)) !=
	    AK_OK) {
		/* Unreadable: leave as if it were not there, and say so once. */
		cli_note("%s: %s", next.path, r == AK_ERR_IO ? strerror(errno) : ak_strerror(r));
		snprintf(next.status, sizeof(next.status), "bad");
		snprintf(next.hex, sizeof(next.hex), "-");
		if ((r = leave_lines(out, sh, &v)) != AK_OK || (r = state_lines(out, sh, &next)) != AK_OK)
			goto fail;
		goto emit;
	}
	ak_allow_digest(buf, len, next.hex);
	/* The list holds real paths: a .akprofile that is a symlink is allowed by its target's. */
	if (ak_allow_realpath(next.path, real, sizeof(real)) != AK_OK)
		snprintf(real, sizeof(real), "%s", next.path);
	same_file = have_cur && strcmp(cur.path, next.path) == 0 && strcmp(cur.hex, next.hex) == 0;
	/* Touched, or another file allowed: the same content, still allowed, already on. */
	if (same_file && strcmp(cur.status, "on") == 0 && v.dirrec != NULL) {
		int ok = 0;

		if ((r = ak_allow_check(real, next.hex, &ok)) != AK_OK)
			goto fail;
		if (ok) {
			snprintf(next.status, sizeof(next.status), "on");
			if ((r = state_lines(out, sh, &next)) != AK_OK)
				goto fail;
			goto emit;
		}
	}
	{
		int ok = 0, known = 0;
		struct ak_allow_entry *ents = NULL;
		size_t n = 0;

		if ((r = ak_allow_check(real, next.hex, &ok)) != AK_OK)
			goto fail;
		if (!ok) {
			if (!(same_file && strcmp(cur.status, "off") == 0)) {
				if (ak_allow_list(&ents, &n) == AK_OK)
					for (i = 0; i < n; i++)
						known |= strcmp(ents[i].path, real) == 0;
				free(ents);
				cli_note("%s %s: review it, then run 'akctl allow %s' to use it", next.path,
				    known ? "changed since it was allowed" : "is not allowed", next.path);
			}
			snprintf(next.status, sizeof(next.status), "off");
			if ((r = leave_lines(out, sh, &v)) != AK_OK || (r = state_lines(out, sh, &next)) != AK_OK)
				goto fail;
			goto emit;
		}
	}
	/* Allowed: read it, drop what it may not set, fetch the profile. */
	if (akfile_parse(buf, len, &f, why, sizeof(why)) != 0) {
		if (!(same_file && strcmp(cur.status, "bad") == 0))
			cli_note("%s: %s: ignored", next.path, why);
		snprintf(next.status, sizeof(next.status), "bad");
		if ((r = leave_lines(out, sh, &v)) != AK_OK || (r = state_lines(out, sh, &next)) != AK_OK)
			goto fail;
		goto emit;
	}
	/* What the file may not set is dropped now, and said once the switch happens. */
	for (i = 0; i < f.nvars; i++)
		if (ak_varclass_of(f.name[i]) != AK_VAR_PLAIN)
			denied[i] = f.name[i], f.name[i] = NULL;
	if ((r = fetch_profile(c, f.profile, &p)) != AK_OK) {
		int waiting = r == AK_ERR_LOCKED || r == AK_ERR_NO_AGENT;

		if (!(same_file && strcmp(cur.status, waiting ? "wait" : "bad") == 0))
			cli_note("%s: profile %s: %s%s", next.path, f.profile, ak_strerror(r),
			    r == AK_ERR_LOCKED ? " (switches once 'akctl unlock' has run)" : "");
		snprintf(next.status, sizeof(next.status), "%s", waiting ? "wait" : "bad");
		if ((r = leave_lines(out, sh, &v)) != AK_OK || (r = state_lines(out, sh, &next)) != AK_OK)
			goto fail;
		goto emit;
	}
	for (i = 0; i < f.nvars; i++)
		if (denied[i] != NULL)
			cli_note("%s: %s not set (%s variable)", next.path, denied[i],
			    ak_varclass_name(ak_varclass_of(denied[i])));
	snprintf(next.status, sizeof(next.status), "on");
	if ((r = leave_lines(out, sh, &v)) != AK_OK || (r = enter_lines(out, sh, &v, &f, p)) != AK_OK ||
	    (r = state_lines(out, sh, &next)) != AK_OK)
		goto fail;
emit:
	if ((r = cli_write_all(STDOUT_FILENO, ak_buf_ptr(out), ak_buf_len(out))) != AK_OK)
		rc = cli_fail(r, NULL, "dir-env: writing to standard output");
	goto out;
fail:
	rc = cli_fail(r, r == AK_ERR_TOO_LARGE ? "the values it replaces are too large to record" : NULL,
	    "dir-env: %s", next.path);
out:
	ak_profile_free(p);
	ak_smem_free(buf);
	ak_buf_free(out);
	ak_restore_free(v.dirrec);
	ak_restore_free(v.userec);
	return rc;
}
