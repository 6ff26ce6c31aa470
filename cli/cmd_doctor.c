/* cmd_doctor.c - akctl doctor: the security checklist, each item checked on this machine.
 *
 * Items: the keystore's and its directory's modes; the agent's hardening as the kernel shows it (not
 * dumpable, no core file, memory locked, room left under RLIMIT_MEMLOCK); the KDF's cost; one key under
 * two profiles; rotation; a stored key in this environment outside use/exec; .env files under the current
 * directory that git would commit or that hold a stored key; shell histories holding a key.
 * Each is pass, fail (with a one-line fix) or skip; exit 0 only when none fails. Nothing printed names a
 * secret: findings say which profile and variable, found by keyed hashes (scan.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "ak_rotate.h"
#include "ak_util.h"
#include "scan.h"

extern char **environ;

enum doc_status { DOC_PASS, DOC_FAIL, DOC_SKIP };

struct doc_item {
	const char *id;
	const char *title;
	enum doc_status st;
	char detail[512];
	char fix[256];
};

#define DOC_MAX 16

struct doctor {
	struct cli *c;
	struct doc_item it[DOC_MAX];
	size_t n;
	int json, colour;
	struct scan_ctx x;       /* x.m NULL when the keys could not be loaded */
	char nokeys[256];        /* why, when they could not */
};

static struct doc_item *
item(struct doctor *d, const char *id, const char *title)
{
	struct doc_item *i = &d->it[d->n < DOC_MAX - 1 ? d->n++ : d->n];

	memset(i, 0, sizeof(*i));
	i->id = id;
	i->title = title;
	return i;
}

static void __attribute__((format(printf, 3, 4)))
set(struct doc_item *i, enum doc_status st, const char *fmt, ...)
{
	va_list ap;

	i->st = st;
	va_start(ap, fmt);
	vsnprintf(i->detail, sizeof(i->detail), fmt, ap);
	va_end(ap);
}

static void
set_fix(struct doc_item *i, const char *fix)
{
	snprintf(i->fix, sizeof(i->fix), "%s", fix);
}

/* Append to an item's detail, comma separated. */
static void
more(struct doc_item *i, const char *s)
{
	size_t l = strlen(i->detail), room;
	int n;

	if (l + 3 >= sizeof(i->detail))
		return;
	room = sizeof(i->detail) - l;
	n = snprintf(i->detail + l, room, "%s%s", l ? ", " : "", s);
	if (n < 0 || (size_t)n >= room)
		i->detail[sizeof(i->detail) - 1] = '\0'; /* a long list is cut: the detail is a hint */
}

/* Keystore ---------------------------------------------------------------------------------------- */

static void
check_modes(struct doctor *d)
{
	struct doc_item *i = item(d, "keystore-modes", "keystore file 0600 and its directory 0700, yours");
	char dir[AK_PATH_MAX], *slash;
	struct stat fs, ds;
	uid_t me = geteuid();

	if (cli_store_path(d->c) != AK_OK) {
		set(i, DOC_FAIL, "cannot resolve the keystore path");
		set_fix(i, "set AKCTL_KEYSTORE to a valid path");
		return;
	}
	snprintf(dir, sizeof(dir), "%s", d->c->store);
	if ((slash = strrchr(dir, '/')) != NULL)
		*(slash == dir ? slash + 1 : slash) = '\0';
	if (lstat(d->c->store, &fs) != 0) {
		set(i, DOC_FAIL, "no keystore at %s", d->c->store);
		set_fix(i, "create one: akctl init");
		return;
	}
	if (stat(dir, &ds) != 0) {
		set(i, DOC_FAIL, "cannot read the keystore's directory: %s", strerror(errno));
		set_fix(i, "check the keystore's path");
		return;
	}
	i->st = DOC_PASS;
	if (!S_ISREG(fs.st_mode) || fs.st_uid != me || (fs.st_mode & 077) != 0) {
		char s[128];

		snprintf(s, sizeof(s), "keystore is %s%04o%s", S_ISREG(fs.st_mode) ? "mode " : "not a file, ",
		    (unsigned)(fs.st_mode & 07777), fs.st_uid != me ? ", another user's" : "");
		more(i, s);
		i->st = DOC_FAIL;
	}
	if (ds.st_uid != me || (ds.st_mode & 077) != 0) {
		char s[128];

		snprintf(s, sizeof(s), "its directory is mode %04o%s", (unsigned)(ds.st_mode & 07777),
		    ds.st_uid != me ? ", another user's" : "");
		more(i, s);
		i->st = DOC_FAIL;
	}
	if (i->st == DOC_PASS)
		set(i, DOC_PASS, "%04o, directory %04o", (unsigned)(fs.st_mode & 07777), (unsigned)(ds.st_mode & 07777));
	if (i->st == DOC_FAIL) {
		char fix[256];

		cli_sanitize(d->c->store, dir, sizeof(dir));
		snprintf(fix, sizeof(fix), "chmod 600 '%.100s' && chmod 700 \"$(dirname '%.100s')\"", dir, dir);
		set_fix(i, fix);
	}
}

static void
check_kdf(struct doctor *d)
{
	struct doc_item *i = item(d, "kdf", "passphrase KDF at least 'moderate' (Argon2id)");
	struct ak_header h;
	uint8_t *file = NULL;
	size_t len = 0, hl = 0;
	enum ak_err r;

	if (cli_store_path(d->c) != AK_OK || (r = ak_store_read(d->c->store, &file, &len)) != AK_OK ||
	    (r = ak_header_parse(file, len, &h, &hl)) != AK_OK) {
		free(file);
		set(i, DOC_FAIL, "cannot read the keystore's header");
		set_fix(i, "create the keystore: akctl init");
		return;
	}
	free(file);
	if (h.kdf.opslimit < crypto_pwhash_OPSLIMIT_MODERATE || h.kdf.memlimit < crypto_pwhash_MEMLIMIT_MODERATE) {
		set(i, DOC_FAIL, "preset %s: opslimit %llu, memlimit %llu KiB", ak_kdf_preset_name(h.kdf.preset),
		    (unsigned long long)h.kdf.opslimit, (unsigned long long)(h.kdf.memlimit / 1024));
		set_fix(i, "akctl passwd --kdf moderate (or sensitive)");
		return;
	}
	set(i, DOC_PASS, "preset %s", ak_kdf_preset_name(h.kdf.preset));
}

/* The agent's hardening, as /proc shows it ---------------------------------------------------------- */

/* The value after "key:" in a /proc file of "key: value" lines, into out. 0, or -1. */
static int
proc_field(const char *path, const char *key, char *out, size_t outlen)
{
	char line[512];
	size_t kl = strlen(key);
	FILE *f = fopen(path, "re");
	int rc = -1;

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, key, kl) == 0) {
			char *v = line + kl;

			while (*v == ' ' || *v == '\t' || *v == ':')
				v++;
			v[strcspn(v, "\n")] = '\0';
			snprintf(out, outlen, "%s", v);
			rc = 0;
			break;
		}
	}
	fclose(f);
	return rc;
}

/* The soft limit of a /proc/PID/limits row ("Max core file size  0  0  bytes"): its value, or -1 for
 * unlimited, or -2 when absent. */
static long long
proc_limit(pid_t pid, const char *row)
{
	char path[64], v[256], *e;
	long long n;

	snprintf(path, sizeof(path), "/proc/%ld/limits", (long)pid);
	if (proc_field(path, row, v, sizeof(v)) != 0)
		return -2;
	if (strncmp(v, "unlimited", 9) == 0)
		return -1;
	errno = 0;
	n = strtoll(v, &e, 10);
	return errno != 0 || e == v ? -2 : n;
}

static void
agent_unreachable(struct doctor *d, const char *why)
{
	static const char *const ids[][2] = {
		{ "agent-dumpable", "agent not dumpable (no core, no ptrace, no /proc/PID/mem)" },
		{ "agent-core", "agent's core file size limit is 0" },
		{ "agent-mlock", "agent's memory locked (no swap of secrets)" },
		{ "agent-memlock-room", "agent has room under RLIMIT_MEMLOCK (at least 256 KiB)" },
	};
	size_t k;

	for (k = 0; k < 4; k++) {
		struct doc_item *i = item(d, ids[k][0], ids[k][1]);

		set(i, DOC_FAIL, "not checked: %s", why);
		set_fix(i, "start the agent: eval \"$(akagent)\" (or its systemd unit), then akctl doctor");
	}
}

static void
check_agent(struct doctor *d, pid_t pid)
{
	struct doc_item *i;
	struct stat sb;
	char path[64], v[128];
	long long core, memlock, lck = -1;

	snprintf(path, sizeof(path), "/proc/%ld", (long)pid);
	if (stat(path, &sb) != 0) {
		agent_unreachable(d, "the agent's process is not visible in /proc");
		return;
	}
	/* The kernel gives a non-dumpable process's /proc files to root: that is the one sign readable from
	 * another process (prctl(PR_GET_DUMPABLE) answers only for the caller). */
	i = item(d, "agent-dumpable", "agent not dumpable (no core, no ptrace, no /proc/PID/mem)");
	if (geteuid() == 0)
		set(i, DOC_SKIP, "cannot tell as root (every /proc file is root's)");
	else if (sb.st_uid == 0)
		set(i, DOC_PASS, "pid %ld", (long)pid);
	else
		set(i, DOC_FAIL, "pid %ld is dumpable: its memory can be read by your other processes", (long)pid);
	if (i->st == DOC_FAIL)
		set_fix(i, "run the akagent this akctl came with (it sets PR_SET_DUMPABLE 0 at start)");

	i = item(d, "agent-core", "agent's core file size limit is 0");
	core = proc_limit(pid, "Max core file size");
	if (core == 0)
		set(i, DOC_PASS, "0");
	else if (core == -2)
		set(i, DOC_FAIL, "cannot read /proc/%ld/limits", (long)pid);
	else
		set(i, DOC_FAIL, "core file limit is %s", core == -1 ? "unlimited" : "not 0");
	if (i->st == DOC_FAIL)
		set_fix(i, "restart the agent (it sets RLIMIT_CORE 0 at start)");

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	if (proc_field(path, "VmLck", v, sizeof(v)) == 0)
		lck = strtoll(v, NULL, 10) * 1024;
	i = item(d, "agent-mlock", "agent's memory locked (no swap of secrets)");
	if (lck > 0)
		set(i, DOC_PASS, "%lld KiB locked", lck / 1024);
	else
		set(i, DOC_FAIL, lck == 0 ? "no memory locked: secrets may be swapped out" :
		    "cannot read the agent's VmLck");
	if (i->st == DOC_FAIL)
		set_fix(i, "raise the memlock limit (ulimit -l, or LimitMEMLOCK= in the unit) and restart the agent");

	i = item(d, "agent-memlock-room", "agent has room under RLIMIT_MEMLOCK (at least 256 KiB)");
	memlock = proc_limit(pid, "Max locked memory");
	if (memlock == -1)
		set(i, DOC_PASS, "unlimited");
	else if (memlock < 0 || lck < 0)
		set(i, DOC_FAIL, "cannot read the agent's limits");
	else if (memlock - lck >= 256 * 1024)
		set(i, DOC_PASS, "%lld KiB of %lld KiB free", (memlock - lck) / 1024, memlock / 1024);
	else
		set(i, DOC_FAIL, "%lld KiB of %lld KiB free: more keys will not be locked",
		    memlock > lck ? (memlock - lck) / 1024 : 0, memlock / 1024);
	if (i->st == DOC_FAIL)
		set_fix(i, "raise the memlock limit (ulimit -l, or LimitMEMLOCK= in the unit) and restart the agent");
}

/* The stored keys ------------------------------------------------------------------------------------ */

static void
keys_unchecked(struct doc_item *i, const struct doctor *d)
{
	set(i, DOC_FAIL, "not checked: %s", d->nokeys);
	set_fix(i, "akctl unlock, then akctl doctor");
}

static void
check_shared(struct doctor *d)
{
	struct doc_item *i = item(d, "shared-key", "no key stored under two profiles");
	size_t k;

	if (d->x.m == NULL) {
		keys_unchecked(i, d);
		return;
	}
	i->st = DOC_PASS;
	for (k = 0; k < d->x.names.n; k++) {
		if (d->x.names.profiles[k] != NULL && strchr(d->x.names.profiles[k], ',') != NULL) {
			char s[256];

			cli_sanitize(d->x.names.profiles[k], s, sizeof(s));
			more(i, s);
			i->st = DOC_FAIL;
		}
	}
	if (i->st == DOC_FAIL) {
		char s[512];

		snprintf(s, sizeof(s), "one key under profiles %s", i->detail);
		snprintf(i->detail, sizeof(i->detail), "%s", s);
		set_fix(i, "give each profile its own key (create one at the provider, then akctl add PROFILE --force)");
	} else {
		set(i, DOC_PASS, "%zu distinct key%s", ak_scan_count(d->x.m), ak_scan_count(d->x.m) == 1 ? "" : "s");
	}
}

/* "3d", "5h", "40m", "12s": the largest whole unit, for the notes. */
static void
span(int64_t secs, char *out, size_t outlen)
{
	if (secs < 0)
		secs = 0;
	if (secs >= 86400)
		snprintf(out, outlen, "%lldd", (long long)(secs / 86400));
	else if (secs >= 3600)
		snprintf(out, outlen, "%lldh", (long long)(secs / 3600));
	else if (secs >= 60)
		snprintf(out, outlen, "%lldm", (long long)(secs / 60));
	else
		snprintf(out, outlen, "%llds", (long long)secs);
}

/* Each profile's --rotate-every policy: overdue fails (fix: rotate it), due soon passes with a note. */
static void
check_rotation(struct doctor *d)
{
	struct doc_item *i = item(d, "rotation", "no key overdue for rotation");
	const struct scan_names *nm = &d->x.names;
	char overdue[sizeof(i->detail)] = "", due[sizeof(i->detail)] = "", fix[sizeof(i->fix)] = "";
	char name[AK_NAME_MAX + 1], a[32], b[32], s[AK_NAME_MAX + 96];
	int64_t now = ak_now_s();
	size_t policies = 0, nover = 0;
	uint32_t k;

	if (d->x.m == NULL) {
		keys_unchecked(i, d);
		return;
	}
	for (k = 0; k < nm->nents; k++) {
		const struct ak_list_entry *e = &nm->ents[k];
		int v = ak_rot_due(e->rotated, e->rotate_every, now);
		size_t l;

		if (e->rotate_every <= 0)
			continue;
		policies++;
		if (v == 0)
			continue;
		cli_sanitize(e->name, name, sizeof(name));
		span(e->rotate_every, a, sizeof(a));
		span(v == 2 ? now - (e->rotated + e->rotate_every) : e->rotated + e->rotate_every - now, b,
		    sizeof(b));
		snprintf(s, sizeof(s), v == 2 ? "%s (every %s, %s overdue)" : "%s (every %s, due in %s)", name,
		    a, b);
		l = strlen(v == 2 ? overdue : due);
		snprintf((v == 2 ? overdue : due) + l, sizeof(overdue) - l, "%s%s", l ? ", " : "", s);
		if (v == 2) {
			l = strlen(fix);
			snprintf(fix + l, sizeof(fix) - l, "%sakctl rotate %s", l ? "; " : "", name);
			nover++;
		}
	}
	if (nover > 0) {
		set(i, DOC_FAIL, "overdue: %s%s%s", overdue, due[0] ? "; due soon: " : "", due);
		set_fix(i, fix);
	} else if (due[0]) {
		set(i, DOC_PASS, "none overdue; due soon: %s", due);
	} else if (policies > 0) {
		set(i, DOC_PASS, "%zu key%s within %s rotation polic%s", policies, policies == 1 ? "" : "s",
		    policies == 1 ? "its" : "their", policies == 1 ? "y" : "ies");
	} else {
		set(i, DOC_PASS, "no rotation policy set (akctl set PROFILE --rotate-every 90d)");
	}
}

struct env_hit {
	uint32_t id;
	int any;
};

static int
on_env_hit(void *arg, const struct ak_scan_hit *h)
{
	struct env_hit *e = arg;

	e->id = h->secret;
	e->any = 1;
	return 1;
}

/* 1 when label list "dev ANTHROPIC_API_KEY, prod ANTHROPIC_API_KEY" holds "PROFILE VAR", or its
 * previous key "PROFILE VAR (previous)" (what use/exec --previous set). */
static int
label_has(const char *labels, const char *profile, const char *var, size_t varlen)
{
	static const char prevmark[] = " (previous)";
	const char *p = labels, *end;
	size_t pl = strlen(profile);

	while (p != NULL && *p) {
		if (strncmp(p, profile, pl) == 0 && p[pl] == ' ' && strncmp(p + pl + 1, var, varlen) == 0) {
			end = p + pl + 1 + varlen;
			if (strncmp(end, prevmark, sizeof(prevmark) - 1) == 0)
				end += sizeof(prevmark) - 1;
			if (*end == ',' || *end == '\0')
				return 1;
		}
		if ((p = strstr(p, ", ")) != NULL)
			p += 2;
	}
	return 0;
}

static void
check_env(struct doctor *d)
{
	struct doc_item *i = item(d, "environment", "no stored key in this environment outside use/exec");
	const char *active = getenv("AKCTL_PROFILE");
	char **e;

	if (d->x.m == NULL) {
		keys_unchecked(i, d);
		return;
	}
	i->st = DOC_PASS;
	for (e = environ; e != NULL && *e != NULL; e++) {
		struct env_hit h = { 0, 0 };
		const char *eq = strchr(*e, '=');
		size_t nl = eq != NULL ? (size_t)(eq - *e) : strlen(*e);
		char name[128], s[256];

		ak_scan_buf(d->x.m, (const uint8_t *)*e, strlen(*e), on_env_hit, &h);
		if (!h.any || h.id >= d->x.names.n || d->x.names.label[h.id] == NULL)
			continue;
		/* What use or exec set: the active profile's own variable. */
		if (active != NULL && label_has(d->x.names.label[h.id], active, *e, nl))
			continue;
		snprintf(name, sizeof(name), "%.*s", (int)(nl < 100 ? nl : 100), *e);
		snprintf(s, sizeof(s), "%s holds %s", name, d->x.names.label[h.id]);
		cli_sanitize(s, name, sizeof(name));
		more(i, name);
		i->st = DOC_FAIL;
	}
	if (i->st == DOC_FAIL)
		set_fix(i, "unset it (and drop its export from rc files); use 'akctl use PROFILE' or 'akctl exec PROFILE -- CMD'");
}

/* .env files -------------------------------------------------------------------------------------- */

static int
is_env_name(const char *n)
{
	return strcmp(n, ".env") == 0 || strncmp(n, ".env.", 5) == 0;
}

/* 1 ignored, 0 not (or tracked), -1 not in a repository / no git. Runs git check-ignore: it knows every
 * ignore source (.gitignore files, info/exclude, core.excludesFile) and that a tracked file is not. */
static int
git_ignored(const char *path)
{
	pid_t pid;
	int st, fd;

	if ((pid = fork()) < 0)
		return -1;
	if (pid == 0) {
		if ((fd = open("/dev/null", O_RDWR)) >= 0) {
			dup2(fd, 0);
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execlp("git", "git", "check-ignore", "-q", "--", path, (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (!WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st) == 0 ? 1 : WEXITSTATUS(st) == 1 ? 0 : -1;
}

static void
env_walk(struct doctor *d, struct doc_item *i, const char *dir, int depth, size_t *nfiles)
{
	DIR *dd;
	struct dirent *e;
	struct stat sb;
	char path[4096];

	if (depth > 32 || (dd = opendir(dir)) == NULL)
		return;
	while ((e = readdir(dd)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 || strcmp(e->d_name, ".git") == 0)
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= sizeof(path) ||
		    lstat(path, &sb) != 0)
			continue;
		if (S_ISDIR(sb.st_mode)) {
			env_walk(d, i, path, depth + 1, nfiles);
		} else if (S_ISREG(sb.st_mode) && is_env_name(e->d_name)) {
			size_t before = d->x.found;
			int ign = git_ignored(path);
			char s[512], shown[300];

			(*nfiles)++;
			if (d->x.m != NULL)
				scan_file(&d->x, path, 0);
			cli_sanitize(path[0] == '.' && path[1] == '/' ? path + 2 : path, shown, sizeof(shown));
			if (ign == 0 || d->x.found > before) {
				snprintf(s, sizeof(s), "%s (%s%s%s)", shown, ign == 0 ? "not ignored by git" : "",
				    ign == 0 && d->x.found > before ? ", " : "",
				    d->x.found > before ? "holds a stored key" : "");
				more(i, s);
				i->st = DOC_FAIL;
			}
		}
	}
	closedir(dd);
}

static void
check_dotenv(struct doctor *d)
{
	struct doc_item *i = item(d, "dotenv", ".env files here: ignored by git, no stored key in them");
	size_t n = 0;

	i->st = DOC_PASS;
	env_walk(d, i, ".", 0, &n);
	if (i->st == DOC_FAIL) {
		set_fix(i, "add .env* to .gitignore; replace stored keys with ak://PROFILE/VAR (akctl exec --env-file)");
	} else if (d->x.m == NULL && n > 0) {
		keys_unchecked(i, d);
	} else {
		set(i, DOC_PASS, "%zu file%s", n, n == 1 ? "" : "s");
	}
}

static void
check_history(struct doctor *d)
{
	struct doc_item *i = item(d, "history", "no stored key in shell or REPL histories");
	size_t before = d->x.found;

	if (d->x.m == NULL) {
		keys_unchecked(i, d);
		return;
	}
	scan_history(&d->x);
	if (d->x.found > before) {
		set(i, DOC_FAIL, "%zu occurrence%s", d->x.found - before, d->x.found - before == 1 ? "" : "s");
		set_fix(i, "see where: akctl scan --history; delete those lines, then rotate the key");
	} else {
		set(i, DOC_PASS, "none");
	}
}

/* Output ------------------------------------------------------------------------------------------ */

static const char *
status_name(enum doc_status s)
{
	switch (s) {
	case DOC_PASS: return "pass";
	case DOC_FAIL: return "fail";
	case DOC_SKIP: return "skip";
	}
	return "fail";
}

static int
print_json(const struct doctor *d, int ok)
{
	cJSON *o = cJSON_CreateObject(), *a;
	size_t k;

	if (o == NULL || cJSON_AddBoolToObject(o, "ok", ok) == NULL ||
	    (a = cJSON_AddArrayToObject(o, "checks")) == NULL)
		goto fail;
	for (k = 0; k < d->n; k++) {
		cJSON *e = cJSON_CreateObject();

		if (e == NULL)
			goto fail;
		cJSON_AddItemToArray(a, e);
		cJSON_AddStringToObject(e, "id", d->it[k].id);
		cJSON_AddStringToObject(e, "title", d->it[k].title);
		cJSON_AddStringToObject(e, "status", status_name(d->it[k].st));
		cJSON_AddStringToObject(e, "detail", d->it[k].detail);
		if (d->it[k].st == DOC_FAIL)
			cJSON_AddStringToObject(e, "fix", d->it[k].fix);
	}
	if (cli_json_print(o) != AK_OK)
		goto fail;
	cJSON_Delete(o);
	return 0;
fail:
	cJSON_Delete(o);
	return -1;
}

static void
print_text(const struct doctor *d)
{
	static const char *const mark[] = { "\u2713", "\u2717", "-" };
	static const char *const col[] = { "\033[32m", "\033[31m", "\033[2m" };
	size_t k;

	for (k = 0; k < d->n; k++) {
		const struct doc_item *i = &d->it[k];

		printf("%s%s%s %s", d->colour ? col[i->st] : "", mark[i->st], d->colour ? "\033[0m" : "", i->title);
		if (i->detail[0])
			printf(": %s", i->detail);
		printf("\n");
		if (i->st == DOC_FAIL && i->fix[0])
			printf("    fix: %s\n", i->fix);
	}
}

static int
want_colour(void)
{
	const char *nc = getenv("NO_COLOR"), *t = getenv("TERM");

	return isatty(STDOUT_FILENO) && (nc == NULL || nc[0] == '\0') && (t == NULL || strcmp(t, "dumb") != 0);
}

enum ak_err
cmd_doctor(struct cli *c, int argc, char **argv)
{
	struct doctor *d;
	struct ak_client *cl = NULL;
	struct ak_status st;
	char detail[256];
	enum ak_err rc, r;
	size_t k;
	int ok = 1, helped;

	if ((d = calloc(1, sizeof(*d))) == NULL)
		return cli_fail(AK_ERR_NOMEM, NULL, "%s", c->cmd);
	d->c = c;
	if ((rc = cli_opts_json(c, argc, argv, &d->json, &helped)) != AK_OK || helped) {
		free(d);
		return rc;
	}
	if (optind < argc) {
		free(d);
		return cli_usage_error(c, "unexpected argument '%s'", argv[optind]);
	}
	d->colour = !d->json && want_colour();
	d->x.quiet = 1;

	check_modes(d);
	check_kdf(d);

	memset(&st, 0, sizeof(st));
	r = cli_agent_for_store(c, &cl, &st, detail, sizeof(detail));
	ak_client_close(cl);
	cl = NULL;
	if (r == AK_OK) {
		check_agent(d, (pid_t)st.pid);
		if (!st.unlocked && !cli_can_prompt(c))
			snprintf(d->nokeys, sizeof(d->nokeys), "the agent is locked");
	} else {
		agent_unreachable(d, r == AK_ERR_NO_AGENT ? "no agent is running for this keystore" : ak_strerror(r));
		snprintf(d->nokeys, sizeof(d->nokeys), "no agent is running for this keystore");
	}
	free(st.store_path);
	if (d->nokeys[0] == '\0') {
		if (scan_load(c, 0, &d->x.m, &d->x.names) != 0)
			snprintf(d->nokeys, sizeof(d->nokeys), "the keys could not be read from the agent");
		else if (scan_ctx_buffer(&d->x) != 0) {
			scan_ctx_finish(&d->x);
			memset(&d->x, 0, sizeof(d->x));
			snprintf(d->nokeys, sizeof(d->nokeys), "out of memory");
		}
	}
	check_shared(d);
	check_rotation(d);
	check_env(d);
	check_dotenv(d);
	check_history(d);

	for (k = 0; k < d->n; k++)
		if (d->it[k].st == DOC_FAIL)
			ok = 0;
	if (d->json) {
		if (print_json(d, ok) != 0) {
			rc = cli_fail(AK_ERR_NOMEM, NULL, "%s", c->cmd);
			goto out;
		}
	} else {
		print_text(d);
	}
	rc = cli_status(c, ok ? 0 : 1); /* a failed check is a finding, not an error */
out:
	scan_ctx_finish(&d->x);
	free(d);
	return rc;
}
