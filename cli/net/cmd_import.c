/* cmd_import.c - akctl import SOURCE [PROFILE]: bring a key in from a .env file, a JSON config file, the
 * environment (env:NAME) or a cloud secret manager (aws-sm:// gcp-sm:// azure-kv:// vault://).
 *
 * Runs in akctl-net (cloud sources need libcurl). Every value read passes through the secure arena: files
 * are read into it, cJSON allocates from it (akctl's main hooks it), the profile lives in it. Nothing
 * is stored unless the whole source made sense; --dry-run shows the profile (secret redacted) and stops.
 * --replace rewrites an imported .env in place with ak://PROFILE/VAR references, only once the profile is
 * stored, and only after checking that the new file parses to the same entries.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "ak_dotenv.h"
#include "ak_file.h"
#include "ak_provider.h"
#include "ak_render.h"
#include "ak_smem.h"
#include "ak_util.h"
#include "ak_varclass.h"
#include "cli.h"
#include "net.h"

#define JSON_FILE_MAX (1u << 20)
#define ALLOW_VARS_MAX 64

struct import {
	struct cli *c;
	const char *src;
	const char *provider;  /* --provider or NULL */
	const char *var;       /* --var or NULL */
	const char *region;    /* --region or NULL */
	const char *json_path;  /* --json-path or NULL */
	long timeout_ms;
	int dry_run, replace, force, json;
	const char *allow[ALLOW_VARS_MAX]; /* --allow-var names */
	size_t nallow;
	struct ak_profile *p;
	/* .env only, for --replace */
	char *raw;             /* the file's bytes (secure) */
	size_t rawlen;
	struct ak_dotenv *d;
	size_t secret_entry;
	struct stat st;        /* the file when read */
};

/* Does this variable name look like it holds a secret? A provider's secret variable, or a name ending
 * in _KEY, _TOKEN, _SECRET, _PASSWORD, _PASS, _PWD or _CREDENTIALS (ak_varclass.h). */
static int
secret_name(const char *name)
{
	return ak_varclass_is_secret(name, NULL);
}

/* The profile's provider: --provider, else the provider whose secret variable var is, else dflt. */
static const char *
provider_for(const struct import *im, const char *var, const char *dflt)
{
	const struct ak_provider *pv;

	if (im->provider != NULL)
		return im->provider;
	if ((pv = ak_provider_for_var(var)) != NULL)
		return pv->name;
	return dflt;
}

/* The secret variable for a single-value source: --var, else --provider's, else ANTHROPIC_API_KEY. */
static const char *
default_secret_var(const struct import *im)
{
	const struct ak_provider *pv;

	if (im->var != NULL)
		return im->var;
	if (im->provider != NULL && (pv = ak_provider_find(im->provider)) != NULL &&
	    pv->secret_var != NULL && pv->secret_var[0] != '\0')
		return pv->secret_var;
	return "ANTHROPIC_API_KEY";
}

/* May name be stored? Variables that run code in a shell or a program, or that steer where keys go
 * (ak_varclass.h), only when --allow-var named them: a .env from a cloned repository is someone
 * else's text. */
static int
var_allowed(const struct import *im, const char *name)
{
	size_t i;

	if (ak_varclass_of(name) == AK_VAR_PLAIN)
		return 1;
	for (i = 0; i < im->nallow; i++)
		if (strcmp(im->allow[i], name) == 0)
			return 1;
	return 0;
}

static enum ak_err
refuse_var(const struct import *im, const char *name)
{
	cli_note("import: %s: %s is a %s variable: not stored (review it; --allow-var %s stores it)",
	    im->src, name, ak_varclass_name(ak_varclass_of(name)), name);
	return AK_ERR_BAD_FORMAT;
}

static int
is_reference(const char *v)
{
	return strncmp(v, CLI_REF_PREFIX, strlen(CLI_REF_PREFIX)) == 0;
}

/* Set the secret and its variable. The value is copied into the profile; the caller wipes its own. */
static enum ak_err
set_secret(struct import *im, const char *var, const char *value, const char *provider)
{
	enum ak_err r;

	if (!var_allowed(im, var))
		return refuse_var(im, var);
	if (value[0] == '\0')
		return cli_fail(AK_ERR_EMPTY, NULL, "import: %s: %s", im->src, var);
	if (is_reference(value)) {
		cli_note("import: %s: %s is already a secret reference (ak://...); nothing to import",
		    im->src, var);
		return AK_ERR_BAD_FORMAT;
	}
	if ((r = ak_profile_set_field(&im->p->secret_var, var)) != AK_OK ||
	    (r = ak_profile_set_field(&im->p->provider, provider)) != AK_OK ||
	    (r = ak_profile_set_field(&im->p->secret, value)) != AK_OK)
		return cli_fail(r, NULL, "import: %s", im->src);
	return AK_OK;
}

/* .env ------------------------------------------------------------------------------------------------ */

/* Pick the secret entry of d: --var; else --provider's variable when present; else the one variable a
 * provider claims; else the one whose name looks secret. Several candidates: ask for --var. */
static enum ak_err
pick_secret(struct import *im, size_t *idx)
{
	const struct ak_provider *pv;
	const struct ak_dotenv *d = im->d;
	size_t i, n, found = 0;
	int pass;

	if (im->var != NULL) {
		for (i = 0; i < d->n; i++)
			if (strcmp(d->e[i].name, im->var) == 0 && d->e[i].value != NULL)
				break;
		if (i == d->n) {
			cli_note("import: %s: no %s=... in the file", im->src, im->var);
			return AK_ERR_BAD_FORMAT;
		}
		*idx = i;
		return AK_OK;
	}
	if (im->provider != NULL && (pv = ak_provider_find(im->provider)) != NULL &&
	    pv->secret_var != NULL && pv->secret_var[0] != '\0') {
		for (i = 0; i < d->n; i++) {
			if (strcmp(d->e[i].name, pv->secret_var) == 0 && d->e[i].value != NULL) {
				*idx = i;
				return AK_OK;
			}
		}
	}
	/* Pass 0: provider variables; pass 1: names that look secret. */
	for (pass = 0; pass < 2; pass++) {
		n = 0;
		for (i = 0; i < d->n; i++) {
			if (d->e[i].value == NULL)
				continue;
			if (pass == 0 ? ak_provider_for_var(d->e[i].name) != NULL : secret_name(d->e[i].name)) {
				if (n++ == 0)
					found = i;
			}
		}
		if (n == 1) {
			*idx = found;
			return AK_OK;
		}
		if (n > 1) {
			fputs("akctl: import: ", stderr);
			ak_render_fputs(im->src, stderr);
			fputs(": several secret variables (", stderr);
			for (i = 0, n = 0; i < d->n; i++) {
				if (d->e[i].value != NULL && (pass == 0 ?
				    ak_provider_for_var(d->e[i].name) != NULL : secret_name(d->e[i].name))) {
					fputs(n++ ? ", " : "", stderr);
					ak_render_fputs(d->e[i].name, stderr);
				}
			}
			fputs("): choose the profile's secret with --var NAME\n", stderr);
			return AK_ERR_INVALID;
		}
	}
	cli_note("import: %s: no secret variable found (no provider's variable such as "
	    "ANTHROPIC_API_KEY, no name ending in _KEY, _TOKEN, _SECRET, _PASSWORD, _PASS, _PWD or "
	    "_CREDENTIALS): name it with --var",
	    im->src);
	return AK_ERR_BAD_FORMAT;
}

static enum ak_err from_entries(struct import *im);

static enum ak_err
from_dotenv(struct import *im)
{
	size_t bad = 0;
	enum ak_err r;

	if (stat(im->src, &im->st) != 0)
		return cli_fail(AK_ERR_IO, strerror(errno), "import: %s", im->src);
	if ((r = ak_file_load(im->src, AK_DOTENV_FILE_MAX, AK_FILE_SECURE, &im->raw, &im->rawlen)) != AK_OK)
		return cli_fail(r, r == AK_ERR_IO ? strerror(errno) : NULL, "import: %s", im->src);
	r = ak_dotenv_parse(im->raw, im->rawlen, &im->d, &bad);
	if (r == AK_ERR_BAD_FORMAT) {
		cli_note("import: %s:%zu: not UTF-8 text (or a NUL byte)", im->src, bad);
		return AK_ERR_BAD_FORMAT;
	}
	if (r != AK_OK)
		return cli_fail(r, NULL, "import: %s", im->src);
	if (im->d->nbad > 0)
		cli_note("import: %s:%zu: statement not understood, skipped as python-dotenv does "
		    "(%zu in all)", im->src, bad, im->d->nbad);
	return from_entries(im);
}

/* The profile from im->d's entries (a .env file, or a JSON object of variables): the secret chosen by
 * pick_secret, every other entry a plain variable. Entries from JSON have no line (0). */
static enum ak_err
from_entries(struct import *im)
{
	const struct ak_dotenv_entry *e;
	char name[AK_VARNAME_MAX + 8], skipped[1024], at[32];
	size_t i, nskipped = 0, sl = 0;
	enum ak_err rc;
	enum ak_err r;

	if ((rc = pick_secret(im, &im->secret_entry)) != 0)
		return rc;
	e = &im->d->e[im->secret_entry];
	if ((rc = set_secret(im, e->name, e->value, provider_for(im, e->name, "generic"))) != 0)
		return rc;
	for (i = 0; i < im->d->n; i++) {
		e = &im->d->e[i];
		if (i == im->secret_entry)
			continue;
		cli_sanitize(e->name, name, sizeof(name));
		at[0] = '\0';
		if (e->line > 0)
			snprintf(at, sizeof(at), ":%zu", e->line);
		if (e->value == NULL) {
			cli_note("import: %s%s: %s has no value; skipped", im->src, at, name);
			continue;
		}
		if (ak_varname_check(e->name) != AK_OK) {
			cli_note("import: %s%s: '%s' is not a variable name a shell can set "
			    "([A-Za-z_][A-Za-z0-9_]*)", im->src, at, name);
			return AK_ERR_BAD_FORMAT;
		}
		if (!var_allowed(im, e->name)) {
			/* Names only: the value may be what the attacker wants shown. */
			if (sl + 1 < sizeof(skipped))
				sl += (size_t)snprintf(skipped + sl, sizeof(skipped) - sl, "%s%s (%s)",
				    nskipped ? ", " : "", e->name, ak_varclass_name(ak_varclass_of(e->name)));
			if (sl >= sizeof(skipped))
				memcpy(skipped + sizeof(skipped) - 4, "...", 4);
			nskipped++;
			continue;
		}
		/* Secret by its name or its value (a key, a URL with a password): stored as a secret
		 * variable, redacted by list and show. A reference is a pointer, not a secret. */
		if (is_reference(e->value))
			cli_note("import: %s: %s holds a reference (ak://...); stored as it is", im->src, name);
		if ((r = ak_profile_put_var(im->p, e->name, e->value, !is_reference(e->value) &&
		    ak_varclass_is_secret(e->name, e->value))) != AK_OK)
			return cli_fail(r, NULL, "import: %s: %s", im->src, name);
	}
	if (nskipped > 0)
		cli_note("import: %s: skipped %zu variable%s that could run code or redirect keys: %s; review "
		    "the file, and name each one to keep with --allow-var NAME", im->src, nskipped,
		    nskipped == 1 ? "" : "s", skipped);
	return AK_OK;
}

/* The .env with every binding of the secret variable's value replaced by ak://PROFILE/VAR. *out is
 * secure (the file may hold other secrets); the caller wipes it. */
static enum ak_err
replaced_image(const struct import *im, char **out, size_t *outlen)
{
	const struct ak_dotenv *d = im->d;
	char ref[sizeof(CLI_REF_PREFIX) + AK_NAME_MAX + AK_VARNAME_MAX + 2];
	size_t i, prev = 0, len = 0, cap, rl;
	char *buf;

	rl = (size_t)snprintf(ref, sizeof(ref), CLI_REF_PREFIX "%s/%s", im->p->name, im->p->secret_var);
	cap = im->rawlen + d->nb * (rl + 1) + 1;
	if ((buf = ak_smem_alloc(cap)) == NULL)
		return AK_ERR_NOMEM;
	for (i = 0; i < d->nb; i++) {
		const struct ak_dotenv_binding *b = &d->b[i];

		if (b->entry != im->secret_entry || !b->has_value)
			continue;
		memcpy(buf + len, im->raw + prev, b->val_off - prev);
		len += b->val_off - prev;
		memcpy(buf + len, ref, rl);
		len += rl;
		prev = b->val_off + b->val_len;
		/* A quoted value may touch its comment ('x'#c); unquoted, '#' needs a blank before it. */
		if (prev < im->rawlen && im->raw[prev] == '#')
			buf[len++] = ' ';
	}
	memcpy(buf + len, im->raw + prev, im->rawlen - prev);
	len += im->rawlen - prev;
	*out = buf;
	*outlen = len;
	return AK_OK;
}

/* The rewritten file must mean the same as the old one, the secret aside. */
static int
same_but_secret(const struct import *im, const char *img, size_t len)
{
	struct ak_dotenv *nd = NULL;
	const struct ak_dotenv *d = im->d;
	char ref[sizeof(CLI_REF_PREFIX) + AK_NAME_MAX + AK_VARNAME_MAX + 2];
	size_t i, bad;
	int ok = 0;

	snprintf(ref, sizeof(ref), CLI_REF_PREFIX "%s/%s", im->p->name, im->p->secret_var);
	if (ak_dotenv_parse(img, len, &nd, &bad) != AK_OK || nd->n != d->n || nd->nbad != d->nbad)
		goto out;
	for (i = 0; i < d->n; i++) {
		const char *want = i == im->secret_entry ? ref : d->e[i].value;

		if (strcmp(nd->e[i].name, d->e[i].name) != 0 || (want == NULL) != (nd->e[i].value == NULL) ||
		    (want != NULL && strcmp(want, nd->e[i].value) != 0))
			goto out;
	}
	ok = 1;
out:
	ak_dotenv_free(nd);
	return ok;
}

static enum ak_err
rewrite_dotenv(struct import *im)
{
	struct stat now;
	char real[PATH_MAX];
	char *img = NULL;
	size_t len = 0;
	enum ak_err rc = AK_ERR_BAD_FORMAT;
	enum ak_err r;

	/* Write through a symlink to the file itself, as an editor would. */
	if (realpath(im->src, real) == NULL) {
		rc = cli_fail(AK_ERR_IO, strerror(errno), "import: --replace: %s", im->src);
		goto out;
	}
	if (stat(real, &now) != 0 || now.st_ino != im->st.st_ino || now.st_dev != im->st.st_dev ||
	    now.st_size != im->st.st_size || now.st_mtim.tv_sec != im->st.st_mtim.tv_sec ||
	    now.st_mtim.tv_nsec != im->st.st_mtim.tv_nsec || !S_ISREG(now.st_mode)) {
		cli_note("import: --replace: %s changed while importing; not rewritten (the profile is stored)",
		    im->src);
		goto out;
	}
	if ((r = replaced_image(im, &img, &len)) != AK_OK) {
		rc = cli_fail(r, NULL, "import: --replace");
		goto out;
	}
	if (!same_but_secret(im, img, len)) {
		cli_note("import: --replace: %s: the rewritten file would not parse the same; not rewritten "
		    "(the profile is stored)", im->src);
		goto out;
	}
	if ((r = ak_file_write_atomic(real, (const uint8_t *)img, len, 0)) != AK_OK) {
		rc = cli_fail(r, strerror(errno), "import: --replace: writing %s (the profile is stored)",
		    im->src);
		goto out;
	}
	/* ak_file_write_atomic creates 0600; give the file back its own mode. */
	if (chmod(real, now.st_mode & 07777) != 0)
		cli_note("import: --replace: %s: could not restore mode %04o", im->src,
		    (unsigned)(now.st_mode & 07777));
	cli_note("import: rewrote %s: %s=" CLI_REF_PREFIX "%s/%s; review the rest of it, then 'akctl allow %s' "
	    "lets exec --env-file resolve it", im->src, im->p->secret_var, im->p->name, im->p->secret_var,
	    im->src);
	rc = AK_OK;
out:
	ak_smem_free(img);
	return rc;
}

/* JSON config ----------------------------------------------------------------------------------------- */

/* A JSON number as it would be written: integers without a fraction (1024), others in the shortest form
 * that reads back the same (0.7). */
/* Integral and small enough to print exactly (no libm: akctl-net does not link it). */
static int
integral(double v)
{
	return v > -1e15 && v < 1e15 && v == (double)(long long)v;
}

static void
fmt_number(double v, char *buf, size_t buflen)
{
	int prec;

	if (integral(v)) {
		snprintf(buf, buflen, "%.0f", v);
		return;
	}
	for (prec = 15; prec <= 17; prec++) {
		snprintf(buf, buflen, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			return;
	}
}

static enum ak_err
json_type_error(const struct import *im, const char *key, const char *want)
{
	cli_note("import: %s: \"%s\" must be %s", im->src, key, want);
	return AK_ERR_BAD_FORMAT;
}

/* Walk --json-path from root: dot-separated members of objects; a segment of digits indexes an array
 * (servers.0.key). A member name holding a dot cannot be reached. NULL after saying what is missing. */
static cJSON *
json_walk(const struct import *im, cJSON *root)
{
	const char *p = im->json_path, *dot;
	char seg[256], shown[300];
	size_t n, k;
	unsigned long idx;
	cJSON *cur = root;

	while (*p != '\0') {
		dot = strchr(p, '.');
		n = dot != NULL ? (size_t)(dot - p) : strlen(p);
		if (n >= sizeof(seg)) {
			cli_note("import: --json-path: a segment is longer than %zu bytes", sizeof(seg) - 1);
			return NULL;
		}
		memcpy(seg, p, n);
		seg[n] = '\0';
		cli_sanitize(seg, shown, sizeof(shown));
		if (cJSON_IsArray(cur)) {
			for (k = 0; k < n && seg[k] >= '0' && seg[k] <= '9'; k++)
				;
			idx = k == n && n > 0 && n < 10 ? strtoul(seg, NULL, 10) : ULONG_MAX;
			if (idx == ULONG_MAX) {
				cli_note("import: %s: --json-path: '%s' meets an array: give an index (0, 1, ...)",
				    im->src, shown);
				return NULL;
			}
			cur = idx < (unsigned long)cJSON_GetArraySize(cur) ? cJSON_GetArrayItem(cur, (int)idx) : NULL;
		} else if (cJSON_IsObject(cur)) {
			cur = cJSON_GetObjectItemCaseSensitive(cur, seg);
		} else {
			cli_note("import: %s: --json-path: '%s' is below a value that is not an object or array",
			    im->src, shown);
			return NULL;
		}
		if (cur == NULL) {
			cli_note("import: %s: --json-path: no '%s'", im->src, shown);
			return NULL;
		}
		p += n;
		if (*p == '.')
			p++;
	}
	return cur;
}

/* Copy src (secure, NUL-terminated) into a new secure string. */
static char *
smem_dup(const char *src)
{
	size_t n = strlen(src);
	char *d;

	if ((d = ak_smem_alloc(n + 1)) != NULL)
		memcpy(d, src, n + 1);
	return d;
}

/* A JSON object of variables (what env --shell json prints) into im->d, then a profile as from a .env:
 * strings as they are, numbers as written, true/false, null = no value (skipped). A repeated name keeps
 * the last value, as a JSON reader does. */
static enum ak_err
from_json_vars(struct import *im, const cJSON *obj)
{
	const cJSON *it;
	struct ak_dotenv *d;
	struct ak_dotenv_entry *e;
	char num[64], kname[AK_VARNAME_MAX + 8];
	const char *v;
	size_t i, n = 0;

	cJSON_ArrayForEach(it, obj)
		n++;
	if (n == 0) {
		cli_note("import: %s: the object is empty", im->src);
		return AK_ERR_BAD_FORMAT;
	}
	if (n > AK_DOTENV_ENTRIES_MAX) {
		cli_note("import: %s: more than %u variables", im->src, AK_DOTENV_ENTRIES_MAX);
		return AK_ERR_BAD_FORMAT;
	}
	if ((d = im->d = calloc(1, sizeof(*d))) == NULL || (d->e = calloc(n, sizeof(*d->e))) == NULL)
		return cli_fail(AK_ERR_NOMEM, NULL, "import");
	cJSON_ArrayForEach(it, obj) {
		cli_sanitize(it->string != NULL ? it->string : "", kname, sizeof(kname));
		if (cJSON_IsString(it) && it->valuestring != NULL) {
			v = it->valuestring;
		} else if (cJSON_IsNumber(it)) {
			fmt_number(it->valuedouble, num, sizeof(num));
			v = num;
		} else if (cJSON_IsBool(it)) {
			v = cJSON_IsTrue(it) ? "true" : "false";
		} else if (cJSON_IsNull(it)) {
			v = NULL;
		} else {
			cli_note("import: %s: \"%s\" is %s, not a value: choose a nested object with "
			    "--json-path", im->src, kname, cJSON_IsArray(it) ? "an array" : "an object");
			return AK_ERR_BAD_FORMAT;
		}
		for (i = 0; i < d->n; i++)
			if (strcmp(d->e[i].name, it->string) == 0)
				break;
		e = &d->e[i];
		if (i == d->n) {
			if ((e->name = smem_dup(it->string)) == NULL)
				return cli_fail(AK_ERR_NOMEM, NULL, "import");
			d->n++;
		}
		ak_smem_free(e->value); /* wipes an earlier value of a repeated name */
		e->value = NULL;
		if (v != NULL && (e->value = smem_dup(v)) == NULL)
			return cli_fail(AK_ERR_NOMEM, NULL, "import");
	}
	return from_entries(im);
}

static enum ak_err
from_json(struct import *im)
{
	static const char *const known[] = { "api_key", "model", "max_tokens", "temperature" };
	cJSON *root = NULL, *top = NULL, *it;
	char *buf = NULL, num[64], kname[64];
	const char *var;
	size_t len = 0, i;
	enum ak_err rc = AK_ERR_BAD_FORMAT;
	enum ak_err r;

	/* The same secure loader as any file holding a key; the .env parser never sees JSON. */
	if ((r = ak_file_load(im->src, JSON_FILE_MAX, AK_FILE_SECURE, &buf, &len)) != AK_OK) {
		rc = cli_fail(r, r == AK_ERR_IO ? strerror(errno) : NULL, "import: %s", im->src);
		goto out;
	}
	if ((root = cJSON_ParseWithLength(buf, len)) == NULL) {
		cli_note("import: %s: not valid JSON", im->src);
		goto out;
	}
	top = root;
	if (im->json_path != NULL && (root = json_walk(im, top)) == NULL)
		goto out;
	if (!cJSON_IsObject(root)) {
		cli_note("import: %s: expected a JSON object ({\"api_key\": ...} or {\"NAME\": \"value\", ...})%s",
		    im->src, im->json_path != NULL ? " at --json-path" : "");
		goto out;
	}
	/* Without "api_key" it is an object of variables, as env --shell json prints. */
	if (cJSON_GetObjectItemCaseSensitive(root, "api_key") == NULL) {
		rc = from_json_vars(im, root);
		goto out;
	}
	cJSON_ArrayForEach(it, root) {
		for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
			if (it->string != NULL && strcmp(it->string, known[i]) == 0)
				break;
		if (i == sizeof(known) / sizeof(known[0])) {
			cli_sanitize(it->string != NULL ? it->string : "", kname, sizeof(kname));
			cli_note("import: %s: ignored key \"%s\"", im->src, kname);
		}
	}
	it = cJSON_GetObjectItemCaseSensitive(root, "api_key");
	if (it == NULL) {
		cli_note("import: %s: no \"api_key\"", im->src);
		goto out;
	}
	if (!cJSON_IsString(it) || it->valuestring == NULL) {
		rc = json_type_error(im, "api_key", "a string");
		goto out;
	}
	var = default_secret_var(im);
	if ((rc = set_secret(im, var, it->valuestring, provider_for(im, var, "generic"))) != 0)
		goto out;
	rc = AK_ERR_BAD_FORMAT;
	it = cJSON_GetObjectItemCaseSensitive(root, "model");
	if (it != NULL && !cJSON_IsNull(it)) {
		if (!cJSON_IsString(it) || it->valuestring == NULL) {
			rc = json_type_error(im, "model", "a string");
			goto out;
		}
		if ((r = ak_profile_set_var(im->p, "ANTHROPIC_MODEL", it->valuestring)) != AK_OK) {
			rc = cli_fail(r, NULL, "import: %s: model", im->src);
			goto out;
		}
	}
	it = cJSON_GetObjectItemCaseSensitive(root, "max_tokens");
	if (it != NULL && !cJSON_IsNull(it)) {
		if (!cJSON_IsNumber(it) || !integral(it->valuedouble) ||
		    it->valuedouble < 1 || it->valuedouble > 1e9) {
			rc = json_type_error(im, "max_tokens", "a positive integer");
			goto out;
		}
		fmt_number(it->valuedouble, num, sizeof(num));
		if ((r = ak_profile_set_var(im->p, "MAX_TOKENS", num)) != AK_OK) {
			rc = cli_fail(r, NULL, "import: %s: max_tokens", im->src);
			goto out;
		}
	}
	it = cJSON_GetObjectItemCaseSensitive(root, "temperature");
	if (it != NULL && !cJSON_IsNull(it)) {
		if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble)) {
			rc = json_type_error(im, "temperature", "a number");
			goto out;
		}
		fmt_number(it->valuedouble, num, sizeof(num));
		if ((r = ak_profile_set_var(im->p, "TEMPERATURE", num)) != AK_OK) {
			rc = cli_fail(r, NULL, "import: %s: temperature", im->src);
			goto out;
		}
	}
	rc = AK_OK;
out:
	cJSON_Delete(top); /* every buffer was in the arena: wiped */
	ak_smem_free(buf);
	return rc;
}

/* env:NAME, cloud ------------------------------------------------------------------------------------- */

static enum ak_err
from_env(struct import *im)
{
	const char *name = im->src + 4, *var;
	char *v;
	enum ak_err rc;

	if (ak_varname_check(name) != AK_OK)
		return cli_usage_error(im->c, "env:NAME: '%s' is not a variable name", name);
	if ((v = getenv(name)) == NULL) {
		cli_note("import: %s is not set in the environment", name);
		return AK_ERR_BAD_FORMAT;
	}
	var = im->var != NULL ? im->var : name;
	rc = set_secret(im, var, v, provider_for(im, var, "generic"));
	/* Our copy of the environment has done its job. */
	sodium_memzero(v, strlen(v));
	return rc;
}

static enum ak_err
from_cloud(struct import *im)
{
	struct cloud_opts o = { im->region, im->timeout_ms };
	char detail[512];
	char *v = NULL;
	const char *var;
	size_t vlen = 0;
	enum ak_err rc;
	enum ak_err r;

	if ((r = cloud_fetch(im->src, &o, &v, &vlen, detail, sizeof(detail))) != AK_OK) {
		/* cloud_fetch's detail is the whole story (the enum's generic text would mislead: a
		 * refused cloud credential is not a wrong keystore passphrase). */
		if (detail[0] == '\0')
			return cli_fail(r, NULL, "import: %s", im->src);
		cli_note("import: %s: %s", im->src, detail);
		return r;
	}
	if (vlen != strlen(v)) {
		cli_note("import: %s: the secret holds a NUL byte", im->src);
		rc = AK_ERR_BAD_FORMAT;
		goto out;
	}
	var = default_secret_var(im);
	if ((rc = set_secret(im, var, v, provider_for(im, var, "generic"))) != 0)
		goto out;
	/* pull re-fetches from here. */
	if ((r = ak_profile_set_field(&im->p->source, im->src)) != AK_OK)
		rc = cli_fail(r, NULL, "import: %s", im->src);
out:
	ak_smem_free(v); /* wipes */
	return rc;
}

/* --dry-run ------------------------------------------------------------------------------------------- */

static void
print_value(const char *name, const char *v, int redact)
{
	char red[128];

	fputs("  ", stdout);
	cli_print_padded(name, 0);
	if (redact) {
		ak_redact(v, red, sizeof(red));
		cli_print_line("=", red);
		return;
	}
	cli_print_line("=", v);
}

static void
dry_run(const struct import *im)
{
	const struct ak_profile *p = im->p;
	size_t i, nrep = 0;

	printf("would import into profile %s (provider ", p->name);
	cli_print_padded(p->provider, 0);
	cli_print_line(p->source[0] ? ") from " : ")", p->source);
	print_value(p->secret_var, p->secret, 1);
	for (i = 0; i < p->nvars; i++)
		print_value(p->vars[i].name, p->vars[i].value, p->vars[i].secret);
	if (im->replace) {
		for (i = 0; i < im->d->nb; i++)
			if (im->d->b[i].entry == im->secret_entry && im->d->b[i].has_value)
				nrep++;
		printf("would rewrite %s: %zu value%s of %s become " CLI_REF_PREFIX "%s/%s\n", im->src, nrep,
		    nrep == 1 ? "" : "s", p->secret_var, p->name, p->secret_var);
	}
	printf("nothing written (--dry-run)\n");
}

/* --dry-run --json: the same as one JSON object (schema in akctl(1)); the secret and every variable
 * whose name looks secret only redacted. */
static enum ak_err
dry_run_json(const struct import *im)
{
	const struct ak_profile *p = im->p;
	cJSON *o = NULL, *vars, *v, *rp;
	char red[128], ref[sizeof(CLI_REF_PREFIX) + AK_NAME_MAX + AK_VARNAME_MAX + 2];
	size_t i, nrep = 0;
	int redact;

	if ((o = cJSON_CreateObject()) == NULL)
		goto fail;
	cJSON_AddStringToObject(o, "profile", p->name);
	cJSON_AddStringToObject(o, "provider", p->provider);
	if (p->source[0] != '\0')
		cJSON_AddStringToObject(o, "source", p->source);
	else
		cJSON_AddNullToObject(o, "source");
	cJSON_AddStringToObject(o, "secret_var", p->secret_var);
	ak_redact(p->secret, red, sizeof(red));
	cJSON_AddStringToObject(o, "secret", red);
	if ((vars = cJSON_AddArrayToObject(o, "variables")) == NULL)
		goto fail;
	for (i = 0; i < p->nvars; i++) {
		if ((v = cJSON_CreateObject()) == NULL || !cJSON_AddItemToArray(vars, v))
			goto fail;
		redact = secret_name(p->vars[i].name);
		cJSON_AddStringToObject(v, "name", p->vars[i].name);
		if (redact)
			ak_redact(p->vars[i].value, red, sizeof(red));
		cJSON_AddStringToObject(v, "value", redact ? red : p->vars[i].value);
		cJSON_AddBoolToObject(v, "redacted", redact);
	}
	if (im->replace) {
		for (i = 0; i < im->d->nb; i++)
			if (im->d->b[i].entry == im->secret_entry && im->d->b[i].has_value)
				nrep++;
		snprintf(ref, sizeof(ref), CLI_REF_PREFIX "%s/%s", p->name, p->secret_var);
		if ((rp = cJSON_AddObjectToObject(o, "replace")) == NULL)
			goto fail;
		cJSON_AddStringToObject(rp, "file", im->src);
		cJSON_AddNumberToObject(rp, "values", (double)nrep);
		cJSON_AddStringToObject(rp, "reference", ref);
	} else {
		cJSON_AddNullToObject(o, "replace");
	}
	cJSON_AddBoolToObject(o, "written", 0);
	return cli_json_done(o, 1, "import");
fail:
	return cli_json_done(o, 0, "import");
}

enum ak_err
cmd_import(struct cli *c, int argc, char **argv)
{
	struct import im;
	char detail[512];
	const char *name = "default";
	size_t sl, i, nsec;
	uint32_t secs;
	const char *timeout_s = NULL;
	int replaced = 0, helped;
	enum ak_err rc, r;
	const struct ak_opt opts[] = {
		CLI_FLAG("dry-run", &im.dry_run, 1),
		CLI_FLAG("replace", &im.replace, 1),
		CLI_FLAG("force", &im.force, 1),
		CLI_VALUE("provider", &im.provider),
		CLI_VALUE("var", &im.var),
		CLI_VALUE("region", &im.region),
		CLI_VALUE("timeout", &timeout_s),
		CLI_LIST("allow-var", im.allow, &im.nallow, ALLOW_VARS_MAX),
		CLI_VALUE("json-path", &im.json_path),
		CLI_FLAG("json", &im.json, 1),
		CLI_OPT_END,
	};

	memset(&im, 0, sizeof(im));
	im.c = c;
	if ((rc = cli_opts_parse(c, argc, argv, opts, 0, &helped)) != AK_OK || helped)
		return rc;
	if (im.var != NULL && ak_varname_check(im.var) != AK_OK)
		return cli_fail(AK_ERR_BAD_VARNAME, NULL, "import: --var '%s'", im.var);
	for (i = 0; i < im.nallow; i++)
		if (ak_varname_check(im.allow[i]) != AK_OK)
			return cli_fail(AK_ERR_BAD_VARNAME, NULL, "import: --allow-var '%s'", im.allow[i]);
	if (timeout_s != NULL) {
		if (ak_duration_parse(timeout_s, &secs) != AK_OK || secs == 0 || secs > 3600)
			return cli_usage_error(c, "--timeout: not a duration (1s to 1h): '%s'", timeout_s);
		im.timeout_ms = (long)secs * 1000;
	}
	if (im.json_path != NULL && (im.json_path[0] == '\0' || im.json_path[0] == '.' ||
	    im.json_path[strlen(im.json_path) - 1] == '.' || strstr(im.json_path, "..") != NULL))
		return cli_usage_error(c, "--json-path: not a dot path (a.b, servers.0): '%s'", im.json_path);
	if (optind >= argc)
		return cli_usage_error(c, "missing SOURCE (FILE.env, FILE.json, env:NAME or a cloud URI)");
	if (argc - optind > 2)
		return cli_usage_error(c, "unexpected argument '%s'", argv[optind + 2]);
	im.src = argv[optind];
	if (argc - optind == 2)
		name = argv[optind + 1];
	if (ak_name_check(name) != AK_OK)
		return cli_fail(AK_ERR_BAD_NAME, NULL, "import: '%s'", name);
	sl = strlen(im.src);
	if (im.replace && (strncmp(im.src, "env:", 4) == 0 || cloud_is_uri(im.src) ||
	    (sl >= 5 && strcasecmp(im.src + sl - 5, ".json") == 0)))
		return cli_usage_error(c, "--replace rewrites a .env file; '%s' is not one", im.src);
	if (im.json_path != NULL && (strncmp(im.src, "env:", 4) == 0 || cloud_is_uri(im.src) ||
	    sl < 5 || strcasecmp(im.src + sl - 5, ".json") != 0))
		return cli_usage_error(c, "--json-path selects inside a .json file; '%s' is not one", im.src);
	if (im.json && !im.dry_run)
		return cli_usage_error(c, "--json goes with --dry-run");

	if ((im.p = ak_profile_new()) == NULL ||
	    (r = ak_profile_set_field(&im.p->name, name)) != AK_OK) {
		rc = cli_fail(AK_ERR_NOMEM, NULL, "import");
		goto out;
	}
	im.p->created = im.p->rotated = ak_now_s();

	if (strncmp(im.src, "env:", 4) == 0)
		rc = from_env(&im);
	else if (cloud_is_uri(im.src))
		rc = from_cloud(&im);
	else if (sl >= 5 && strcasecmp(im.src + sl - 5, ".json") == 0)
		rc = from_json(&im);
	else
		rc = from_dotenv(&im);
	if (rc != 0)
		goto out;
	if ((r = ak_profile_validate(im.p)) != AK_OK) {
		rc = cli_fail(r, NULL, "import: %s: profile %s", im.src, name);
		goto out;
	}
	if (im.dry_run) {
		if (im.json) {
			rc = dry_run_json(&im);
			goto out;
		}
		dry_run(&im);
		rc = AK_OK;
		goto out;
	}
	if ((r = cli_profile_put(c, im.p, im.force, &replaced, detail, sizeof(detail))) != AK_OK) {
		if (r == AK_ERR_PROFILE_EXISTS) {
			cli_note("import: %s: profile exists; use --force to replace", name);
			rc = r;
		} else {
			rc = cli_fail(r, detail[0] ? detail : NULL, "import: %s", name);
		}
		goto out;
	}
	for (i = 0, nsec = 0; i < im.p->nvars; i++)
		nsec += im.p->vars[i].secret != 0;
	if (nsec > 0)
		cli_note("%s profile %s (%s, secret %s, %zu other secret%s, %zu variable%s)",
		    replaced ? "replaced" : "imported", name, im.p->provider, im.p->secret_var, nsec,
		    nsec == 1 ? "" : "s", im.p->nvars - nsec, im.p->nvars - nsec == 1 ? "" : "s");
	else
		cli_note("%s profile %s (%s, secret %s, %zu variable%s)", replaced ? "replaced" : "imported",
		    name, im.p->provider, im.p->secret_var, im.p->nvars, im.p->nvars == 1 ? "" : "s");
	rc = im.replace ? rewrite_dotenv(&im) : 0;
out:
	ak_profile_free(im.p);
	ak_dotenv_free(im.d);
	ak_smem_free(im.raw);
	return rc;
}
