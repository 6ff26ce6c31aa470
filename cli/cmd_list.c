/* cmd_list.c - akctl list [--json|--names] and akctl show PROFILE. Read-only, through the agent only;
 * secrets appear redacted (LIST carries only the redacted form; show redacts the profile it gets).
 * Every cell and value is rendered for the terminal (ak_render); --json escapes DEL and U+0080..U+009F
 * too. */
#include <float.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "ak_buf.h"
#include "ak_jsonw.h"
#include "ak_smem.h"
#include "ak_util.h"
#include "cli.h"

/* "SECRET_VAR,VAR1,SECRET2*" into buf (truncated with "..." if long): the main secret first, then the
 * other variables, the secret ones marked '*' (no variable name has one). */
static void
vars_column(const struct ak_list_entry *e, char *buf, size_t buflen)
{
	size_t i, n;

	n = (size_t)snprintf(buf, buflen, "%s", e->secret_var);
	for (i = 0; i < e->nvars && n < buflen; i++)
		n += (size_t)snprintf(buf + n, buflen - n, ",%s%s", e->vars[i],
		    e->var_secret != NULL && e->var_secret[i] ? "*" : "");
	if (n >= buflen && buflen > 4)
		memcpy(buf + buflen - 4, "...", 4);
}

/* Use of one profile, from the agent's usage log: secrets handed out since unlock, and the last. */
struct use {
	uint32_t count;
	int64_t last;
};

/* The index of the entry named name in e (sorted by name when sorted is 1), or n. */
static uint32_t
find_entry(const struct ak_list_entry *e, uint32_t n, int sorted, const char *name)
{
	uint32_t lo = 0, hi = n, i;
	int c;

	if (!sorted) {
		for (i = 0; i < n; i++)
			if (strcmp(e[i].name, name) == 0)
				return i;
		return n;
	}
	while (lo < hi) {
		i = lo + (hi - lo) / 2;
		if ((c = strcmp(e[i].name, name)) == 0)
			return i;
		if (c < 0)
			lo = i + 1;
		else
			hi = i;
	}
	return n;
}

/* u[i] for e[i] from the log entries lg (NULL when the agent gave no log: then nothing is shown). The
 * agent lists its profiles sorted by name, so each log entry finds its profile by binary search: a
 * scan of every profile for every entry grew with their product. */
static void
count_uses(const struct ak_list_entry *e, uint32_t n, const struct ak_use_entry *lg, uint32_t nlg,
    struct use *u)
{
	uint32_t i, j;
	int sorted = 1;

	for (i = 1; i < n && sorted; i++)
		sorted = strcmp(e[i - 1].name, e[i].name) < 0;
	for (j = 0; j < nlg; j++) {
		if ((lg[j].op != AK_MSG_GET && lg[j].op != AK_MSG_GET_PREVIOUS) || lg[j].err != AK_OK)
			continue;
		if ((i = find_entry(e, n, sorted, lg[j].profile)) == n)
			continue;
		u[i].count++;
		if (lg[j].time > u[i].last)
			u[i].last = lg[j].time;
	}
}

/*
 * list --json is written straight from the decoded LIST, a few profiles at a time through one small
 * buffer: a cJSON tree of 10,000 profiles (~150,000 nodes) cost akctl more than everything else it does
 * for the command. The bytes are exactly what cJSON_PrintUnformatted printed for that tree (same key
 * order, same string escapes, same numbers), and go out through cli_json_write like every other --json
 * output. LIST carries no secret (only the
 * redacted form); its decoded strings are plain heap, and so is this buffer (wiped on free all the same).
 */
#define JSON_OUT_MAX (4u << 20) /* one profile: its strings (at most ~80 KiB), escaped, and dates */

#define JO_CHUNK 16384u
#define JO_FLUSH 32768u

/* ,"key":NUMBER as cJSON prints a number made from v: %d when it fits an int, else the shortest of
 * %1.15g and %1.17g that reads back as the same double. */
static void
jo_knum(struct ak_jw *j, const char *key, size_t klen, int64_t v)
{
	char num[32];
	double d = (double)v, back;
	int n;

	ak_jw_raw(j, key, klen);
	if (d > -2147483649.0 && d < 2147483648.0) {
		ak_jw_int(j, v); /* what %d prints, without printf */
		return;
	}
	n = snprintf(num, sizeof(num), "%1.15g", d);
	back = strtod(num, NULL);
	if (fabs(back - d) > (fabs(back) > fabs(d) ? fabs(back) : fabs(d)) * DBL_EPSILON)
		n = snprintf(num, sizeof(num), "%1.17g", d);
	ak_jw_raw(j, num, (size_t)n);
}

/* ,"key":"ISO date". The last conversion is kept, quoted: most profiles of a large store share their
 * dates, and formatting one costs more than writing the whole row. A date is digits, '-', ':', 'T'
 * and 'Z' (or "-"): nothing in it needs escaping. */
static void
jo_ktime(struct ak_jw *j, const char *key, size_t klen, int64_t t)
{
	static char when[40];
	static size_t when_len;
	static int64_t when_t;
	static int have;

	if (!have || t != when_t) {
		when[0] = '"';
		cli_iso_time(t, when + 1, sizeof(when) - 2);
		when_len = strlen(when);
		when[when_len++] = '"';
		when_t = t;
		have = 1;
	}
	ak_jw_raw(j, key, klen);
	ak_jw_raw(j, when, when_len);
}

/* The keys are written as they are printed (",\"key\":"): plain ASCII, nothing to escape, and
 * escaping a dozen constant keys a row cost more than the values. */
#define JO_KEY(j, k) AK_JW_LIT(j, "," "\"" k "\":")
#define JO_KSTR(j, k, v) do { JO_KEY(j, k); ak_jw_str(j, v); } while (0)
#define JO_KTIME(j, k, t) jo_ktime(j, "," "\"" k "\":", sizeof(k) + 3, t)
#define JO_KNUM(j, k, v) jo_knum(j, "," "\"" k "\":", sizeof(k) + 3, v)

static void
jo_profile(struct ak_jw *j, const struct ak_list_entry *e, const struct use *u)
{
	uint32_t k;
	int secret, first;

	AK_JW_LIT(j, "{\"name\":");
	ak_jw_str(j, e->name);
	JO_KSTR(j, "provider", e->provider);
	JO_KSTR(j, "secret_var", e->secret_var);
	JO_KSTR(j, "key", e->redacted);
	/* The variable names: plain ones under "vars", secret ones under "secrets". */
	for (secret = 0; secret <= 1; secret++) {
		if (secret)
			AK_JW_LIT(j, ",\"secrets\":[");
		else
			AK_JW_LIT(j, ",\"vars\":[");
		for (k = 0, first = 1; k < e->nvars; k++) {
			if ((e->var_secret != NULL && e->var_secret[k]) != secret)
				continue;
			if (!first)
				AK_JW_LIT(j, ",");
			ak_jw_str(j, e->vars[k]);
			first = 0;
		}
		AK_JW_LIT(j, "]");
	}
	JO_KSTR(j, "description", e->description);
	JO_KTIME(j, "created", e->created);
	JO_KTIME(j, "rotated", e->rotated);
	/* Rotation: the policy in seconds, its state, and when a kept previous key goes. */
	if (e->rotate_every != 0) {
		const char *mark = cli_rotation_mark(e, ak_now_s());

		JO_KNUM(j, "rotate_every", e->rotate_every);
		JO_KSTR(j, "rotation", mark[0] ? mark : "ok");
	}
	if (e->prev_until != 0)
		JO_KTIME(j, "previous_until", e->prev_until);
	/* Use policies: confirm-on-use, the profile's own lifetime and the agent's wipe of it. */
	if (e->confirm)
		AK_JW_LIT(j, ",\"confirm\":true");
	if (e->lifetime != 0)
		JO_KNUM(j, "lifetime", e->lifetime);
	if (e->expired)
		AK_JW_LIT(j, ",\"expired\":true");
	if (e->wipe_at != 0)
		JO_KTIME(j, "wiped_at", e->wipe_at);
	if (e->deact_hint != NULL && e->deact_hint[0] != '\0') {
		if (e->deact_pending)
			JO_KSTR(j, "deactivation_pending", e->deact_hint);
		else
			JO_KSTR(j, "deactivate_on_finish", e->deact_hint);
	}
	if (u != NULL) {
		JO_KNUM(j, "uses", u->count);
		if (u->last != 0)
			JO_KTIME(j, "last_use", u->last);
	}
	AK_JW_LIT(j, "}");
}

/*
 * The rows are written one at a time (ak_client_list_each): the packed reply is held (a fifth of the
 * LIST's bytes) and the JSON goes out through this one buffer, so `list --json` of 10,000 profiles
 * touches a few hundred KiB where holding the LIST reply, the decoded rows and the output at once took
 * megabytes of fresh pages, each a fault. Nothing is printed unless the whole reply is good. The use
 * counts come first, from the usage log: each profile finds its own by binary search in them, sorted
 * by name.
 */
struct json_out {
	struct ak_jw j;
	const struct use_by_name *ub; /* NULL: the agent gave no log, so no use counts */
	size_t nub;
	uint32_t i;                   /* rows written */
};

struct use_by_name {
	const char *name;
	struct use u;
};

static int
cmp_use_name(const void *a, const void *b)
{
	return strcmp(((const struct use_by_name *)a)->name, ((const struct use_by_name *)b)->name);
}

/* The log's successful GETs, one record per profile name with its count and last time, sorted by name
 * into *out (malloc'd, *nout records); the names point into lg. -1 when out of memory. */
static int
uses_by_name(const struct ak_use_entry *lg, uint32_t nlg, struct use_by_name **out, size_t *nout)
{
	struct use_by_name *ub;
	size_t k = 0, i;
	uint32_t j;

	*out = NULL;
	*nout = 0;
	if ((ub = calloc(nlg + 1, sizeof(*ub))) == NULL)
		return -1;
	for (j = 0; j < nlg; j++) {
		if ((lg[j].op != AK_MSG_GET && lg[j].op != AK_MSG_GET_PREVIOUS) || lg[j].err != AK_OK)
			continue;
		ub[k].name = lg[j].profile;
		ub[k].u.count = 1;
		ub[k].u.last = lg[j].time;
		k++;
	}
	qsort(ub, k, sizeof(*ub), cmp_use_name);
	/* Fold each name's records into its first. */
	for (i = 0, j = 0; i < k; i++) {
		if (j > 0 && strcmp(ub[j - 1].name, ub[i].name) == 0) {
			ub[j - 1].u.count++;
			if (ub[i].u.last > ub[j - 1].u.last)
				ub[j - 1].u.last = ub[i].u.last;
			continue;
		}
		ub[j++] = ub[i];
	}
	*out = ub;
	*nout = j;
	return 0;
}

static enum ak_err
json_row(void *arg, const struct ak_list_entry *e, uint32_t n)
{
	static const struct use none;
	struct json_out *o = arg;
	const struct use_by_name *hit = NULL;
	struct use_by_name key;

	if (o->ub != NULL) {
		key.name = e->name;
		hit = bsearch(&key, o->ub, o->nub, sizeof(*o->ub), cmp_use_name);
	}
	if (o->i == 0)
		AK_JW_LIT(&o->j, "[");
	else
		AK_JW_LIT(&o->j, ",");
	jo_profile(&o->j, e, o->ub == NULL ? NULL : hit != NULL ? &hit->u : &none);
	o->i++;
	/* Out in pieces of tens of KiB: fwrite passes those straight to write(2). */
	if (ak_buf_len(o->j.b) + o->j.used >= JO_FLUSH || o->i == n) {
		ak_jw_raw(&o->j, "", 1); /* cli_json_write takes a C string */
		ak_jw_commit(&o->j);
		if (o->j.r == AK_OK)
			cli_json_write((const char *)ak_buf_ptr(o->j.b));
		ak_buf_reset(o->j.b);
	}
	return o->j.r != AK_OK ? AK_ERR_NOMEM : AK_OK;
}

static enum ak_err
list_json(struct ak_client *cl)
{
	struct json_out o;
	struct ak_use_entry *lg = NULL;
	struct use_by_name *ub = NULL;
	uint32_t nlg = 0, n = 0;
	size_t nub = 0;
	enum ak_err r;

	memset(&o, 0, sizeof(o));
	/* Use counts from the usage log; an agent without one (or a failure) just shows none. */
	if (ak_client_log(cl, NULL, 0, &lg, &nlg) == AK_OK && uses_by_name(lg, nlg, &ub, &nub) == 0) {
		o.ub = ub;
		o.nub = nub;
	}
	/* A few profiles at a time through one small buffer: the answer for 10,000 profiles is megabytes,
	 * and a buffer that size cost more in fresh pages than the writing. */
	ak_jw_init(&o.j, ak_buf_new(JSON_OUT_MAX), JO_CHUNK);
	if (o.j.b == NULL) {
		r = AK_ERR_NOMEM;
		goto out;
	}
	r = ak_client_list_each(cl, json_row, &o, &n);
	if (r == AK_OK && o.j.r == AK_OK)
		cli_json_put(n == 0 ? "[]" : "]");
out:
	if (r == AK_ERR_NOMEM || o.j.r != AK_OK) {
		/* A buffer too small for one profile is as much "cannot build it" as a failed allocation. */
		cli_fail(AK_ERR_NOMEM, NULL, "list");
		r = AK_ERR_NOMEM;
	} else if (r != AK_OK) {
		r = cli_fail_client(cl, r, "list");
	}
	ak_buf_free(o.j.b);
	free(ub);
	ak_client_log_free(lg, nlg);
	return r;
}

/* The age of the key, then the rotation policy's verdict and a previous key still kept. */
static void
age_column(const struct ak_list_entry *e, int64_t now, char *buf, size_t buflen)
{
	char age[32], use[64];

	ak_age_format(e->rotated, now, age, sizeof(age));
	cli_use_policy_mark(e, now, use, sizeof(use));
	snprintf(buf, buflen, "%s%s%s%s%s%s", age, cli_rotation_mark(e, now)[0] ? " " : "",
	    cli_rotation_mark(e, now), e->prev_until != 0 ? " +previous" : "",
	    e->deact_pending ? " deactivation-pending" : "", use);
}

static enum ak_err
list_table(const struct ak_list_entry *e, uint32_t n, const struct use *u)
{
	static const char *head[7] = { "PROFILE", "PROVIDER", "VARIABLES", "KEY", "USES", "LAST USE", "AGE" };
	size_t w[4], k;
	char buf[256], age[32], ageplus[128], cnt[16];
	int64_t now = ak_now_s();
	uint32_t i;

	if (n == 0) {
		cli_note("no profiles (add one with 'akctl add PROFILE')");
		return AK_OK;
	}
	for (k = 0; k < 4; k++)
		w[k] = strlen(head[k]);
	for (i = 0; i < n; i++) {
		vars_column(&e[i], buf, sizeof(buf));
		if (cli_width(e[i].name) > w[0])
			w[0] = cli_width(e[i].name);
		if (cli_width(e[i].provider) > w[1])
			w[1] = cli_width(e[i].provider);
		if (cli_width(buf) > w[2])
			w[2] = cli_width(buf);
		if (cli_width(e[i].redacted) > w[3])
			w[3] = cli_width(e[i].redacted);
	}
	for (k = 0; k < 4; k++) {
		cli_print_padded(head[k], w[k] + 2);
	}
	if (u != NULL)
		printf("%-6s%-10s", head[4], head[5]);
	printf("%s\n", head[6]);
	for (i = 0; i < n; i++) {
		cli_print_padded(e[i].name, w[0] + 2);
		cli_print_padded(e[i].provider, w[1] + 2);
		vars_column(&e[i], buf, sizeof(buf));
		cli_print_padded(buf, w[2] + 2);
		cli_print_padded(e[i].redacted, w[3] + 2);
		if (u != NULL) {
			snprintf(cnt, sizeof(cnt), "%lu", (unsigned long)u[i].count);
			if (u[i].last != 0)
				ak_age_format(u[i].last, now, age, sizeof(age));
			printf("%-6s%-10s", cnt, u[i].last != 0 ? age : "-");
		}
		age_column(&e[i], now, ageplus, sizeof(ageplus));
		printf("%s\n", ageplus);
	}
	return AK_OK;
}

enum ak_err
cmd_list(struct cli *c, int argc, char **argv)
{
	struct ak_client *cl = NULL;
	struct ak_list_entry *e = NULL;
	uint32_t n = 0;
	uint32_t i;
	int json = 0, names = 0, helped;
	enum ak_err rc, r;
	/* --names is for completion: names only, one a line, no note when empty. */
	const struct ak_opt opts[] = {
		CLI_FLAG("json", &json, 1),
		CLI_FLAG("names", &names, 1),
		CLI_OPT_END,
	};

	if ((rc = cli_opts_parse(c, argc, argv, opts, 0, &helped)) != AK_OK || helped)
		return rc;
	if (optind != argc)
		return cli_no_operand(c, argv);
	if (json && names)
		return cli_usage_error(c, "--json and --names exclude each other");
	if ((rc = cli_agent_unlocked(c, &cl)) != 0)
		return rc;
	if (json) {
		rc = list_json(cl);
		goto out;
	}
	if ((r = ak_client_list(cl, &e, &n)) != AK_OK) {
		rc = cli_fail_client(cl, r, "list");
		goto out;
	}
	if (names) {
		for (i = 0; i < n; i++)
			printf("%s\n", e[i].name);
		rc = AK_OK;
	} else {
		/* Use counts from the usage log; an agent without one (or a failure) just shows none. */
		struct ak_use_entry *lg = NULL;
		uint32_t nlg = 0;
		struct use *u = NULL;

		if (n > 0 && ak_client_log(cl, NULL, 0, &lg, &nlg) == AK_OK &&
		    (u = calloc(n, sizeof(*u))) != NULL)
			count_uses(e, n, lg, nlg, u);
		ak_client_log_free(lg, nlg);
		rc = list_table(e, n, u);
		free(u);
	}
out:
	ak_client_list_free(e, n);
	ak_client_close(cl);
	return rc;
}

/* show --json: one object (schema in akctl(1)); the secret only redacted. */
static enum ak_err
show_json(const struct ak_profile *p, const char *red)
{
	cJSON *o, *vars, *secrets;
	char when[32], vred[128];
	size_t i;

	if ((o = cJSON_CreateObject()) == NULL)
		goto fail;
	cJSON_AddStringToObject(o, "name", p->name);
	cJSON_AddStringToObject(o, "provider", p->provider);
	cJSON_AddStringToObject(o, "description", p->description);
	cJSON_AddStringToObject(o, "secret_var", p->secret_var);
	cJSON_AddStringToObject(o, "key", red);
	if ((vars = cJSON_AddObjectToObject(o, "vars")) == NULL ||
	    (secrets = cJSON_AddObjectToObject(o, "secrets")) == NULL)
		goto fail;
	for (i = 0; i < p->nvars; i++) {
		if (p->vars[i].secret) {
			ak_redact(p->vars[i].value, vred, sizeof(vred));
			cJSON_AddStringToObject(secrets, p->vars[i].name, vred);
		} else {
			cJSON_AddStringToObject(vars, p->vars[i].name, p->vars[i].value);
		}
	}
	sodium_memzero(vred, sizeof(vred));
	cJSON_AddStringToObject(o, "source", p->source != NULL ? p->source : "");
	cli_iso_time(p->created, when, sizeof(when));
	cJSON_AddStringToObject(o, "created", when);
	cli_iso_time(p->rotated, when, sizeof(when));
	cJSON_AddStringToObject(o, "rotated", when);
	return cli_json_done(o, 1, "show");
fail:
	return cli_json_done(o, 0, "show");
}

enum ak_err
cmd_show(struct cli *c, int argc, char **argv)
{
	struct ak_client *cl = NULL;
	struct ak_profile *p = NULL;
	char red[128], when[32], age[32];
	const char *name;
	size_t i, k;
	int json, helped;
	enum ak_err rc, r;

	if ((rc = cli_opts_json(c, argc, argv, &json, &helped)) != AK_OK || helped)
		return rc;
	if ((rc = cli_one_profile(c, argc, argv, &name)) != 0)
		return rc;
	if ((rc = cli_agent_unlocked(c, &cl)) != 0)
		return rc;
	if ((r = ak_client_get(cl, name, &p)) != AK_OK) {
		rc = r == AK_ERR_NO_PROFILE ? cli_fail(r, NULL, "show: %s", name) :
		    cli_fail_client(cl, r, "show");
		goto out;
	}
	/* Stored text may hold anything (an imported .env, a cloud secret's URI): rendered, never raw. */
	ak_redact(p->secret, red, sizeof(red));
	if (json) {
		rc = show_json(p, red);
		goto out;
	}
	cli_print_line("profile:     ", p->name);
	cli_print_line("provider:    ", p->provider);
	if (p->description[0] != '\0')
		cli_print_line("description: ", p->description);
	cli_print_padded("secret:      ", 0);
	cli_print_padded(p->secret_var, 0);
	cli_print_line("=", red);
	/* Every secret redacted: the other secret variables under the main one, then the plain ones. */
	for (i = 0; i < p->nvars; i++) {
		if (!p->vars[i].secret)
			continue;
		ak_redact(p->vars[i].value, red, sizeof(red));
		cli_print_padded("             ", 0);
		cli_print_padded(p->vars[i].name, 0);
		cli_print_line("=", red);
	}
	for (i = 0, k = 0; i < p->nvars; i++) {
		if (p->vars[i].secret)
			continue;
		cli_print_padded(k++ == 0 ? "variables:   " : "             ", 0);
		cli_print_padded(p->vars[i].name, 0);
		cli_print_line("=", p->vars[i].value);
	}
	sodium_memzero(red, sizeof(red));
	if (p->source != NULL && p->source[0] != '\0')
		cli_print_line("source:      ", p->source);
	cli_iso_time(p->created, when, sizeof(when));
	printf("created:     %s\n", when);
	cli_iso_time(p->rotated, when, sizeof(when));
	ak_age_format(p->rotated, ak_now_s(), age, sizeof(age));
	printf("rotated:     %s (%s ago)\n", when, age);
	rc = AK_OK;
out:
	ak_profile_free(p);
	ak_client_close(cl);
	return rc;
}
