/* cmd_list.c - akctl list [--json|--names] and akctl show PROFILE. Read-only, through the agent only;
 * secrets appear redacted (LIST carries only the redacted form; show redacts the profile it gets).
 * Every cell and value is rendered for the terminal (ak_render); --json escapes DEL and U+0080..U+009F
 * too. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <sodium.h>

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

/* u[i] for e[i] from the log entries lg (NULL when the agent gave no log: then nothing is shown). */
static void
count_uses(const struct ak_list_entry *e, uint32_t n, const struct ak_use_entry *lg, uint32_t nlg,
    struct use *u)
{
	uint32_t i, j;

	for (j = 0; j < nlg; j++) {
		if ((lg[j].op != AK_MSG_GET && lg[j].op != AK_MSG_GET_PREVIOUS) || lg[j].err != AK_OK)
			continue;
		for (i = 0; i < n; i++)
			if (strcmp(e[i].name, lg[j].profile) == 0) {
				u[i].count++;
				if (lg[j].time > u[i].last)
					u[i].last = lg[j].time;
				break;
			}
	}
}

static enum ak_err
list_json(const struct ak_list_entry *e, uint32_t n, const struct use *u)
{
	cJSON *arr = NULL, *o, *vars, *secrets;
	char when[32];
	uint32_t i, j;
	enum ak_err r;

	/* Every node dies below: one scratch session makes each allocation a pointer bump (a tree of
	 * 10,000 profiles is ~150,000 of them) and frees them all at once. */
	ak_smem_scratch_begin();
	if ((arr = cJSON_CreateArray()) == NULL)
		goto fail;
	for (i = 0; i < n; i++) {
		if ((o = cJSON_CreateObject()) == NULL)
			goto fail;
		cJSON_AddItemToArray(arr, o);
		if (cJSON_AddStringToObject(o, "name", e[i].name) == NULL ||
		    cJSON_AddStringToObject(o, "provider", e[i].provider) == NULL ||
		    cJSON_AddStringToObject(o, "secret_var", e[i].secret_var) == NULL ||
		    cJSON_AddStringToObject(o, "key", e[i].redacted) == NULL ||
		    (vars = cJSON_AddArrayToObject(o, "vars")) == NULL ||
		    (secrets = cJSON_AddArrayToObject(o, "secrets")) == NULL)
			goto fail;
		for (j = 0; j < e[i].nvars; j++) {
			cJSON *s = cJSON_CreateString(e[i].vars[j]);
			if (s == NULL)
				goto fail;
			cJSON_AddItemToArray(e[i].var_secret != NULL && e[i].var_secret[j] ? secrets : vars, s);
		}
		if (cJSON_AddStringToObject(o, "description", e[i].description) == NULL)
			goto fail;
		cli_iso_time(e[i].created, when, sizeof(when));
		if (cJSON_AddStringToObject(o, "created", when) == NULL)
			goto fail;
		cli_iso_time(e[i].rotated, when, sizeof(when));
		if (cJSON_AddStringToObject(o, "rotated", when) == NULL)
			goto fail;
		/* Rotation: the policy in seconds, its state, and when a kept previous key goes. */
		if (e[i].rotate_every != 0 &&
		    (cJSON_AddNumberToObject(o, "rotate_every", (double)e[i].rotate_every) == NULL ||
		    cJSON_AddStringToObject(o, "rotation", cli_rotation_mark(&e[i], ak_now_s())[0] ?
		    cli_rotation_mark(&e[i], ak_now_s()) : "ok") == NULL))
			goto fail;
		if (e[i].prev_until != 0) {
			cli_iso_time(e[i].prev_until, when, sizeof(when));
			if (cJSON_AddStringToObject(o, "previous_until", when) == NULL)
				goto fail;
		}
		/* Use policies: confirm-on-use, the profile's own lifetime and the agent's wipe of it. */
		if ((e[i].confirm && cJSON_AddTrueToObject(o, "confirm") == NULL) ||
		    (e[i].lifetime != 0 && cJSON_AddNumberToObject(o, "lifetime", (double)e[i].lifetime) == NULL) ||
		    (e[i].expired && cJSON_AddTrueToObject(o, "expired") == NULL))
			goto fail;
		if (e[i].wipe_at != 0) {
			cli_iso_time(e[i].wipe_at, when, sizeof(when));
			if (cJSON_AddStringToObject(o, "wiped_at", when) == NULL)
				goto fail;
		}
		if (e[i].deact_hint != NULL && e[i].deact_hint[0] != '\0' &&
		    cJSON_AddStringToObject(o, e[i].deact_pending ? "deactivation_pending" :
		    "deactivate_on_finish", e[i].deact_hint) == NULL)
			goto fail;
		if (u != NULL) {
			if (cJSON_AddNumberToObject(o, "uses", u[i].count) == NULL)
				goto fail;
			cli_iso_time(u[i].last, when, sizeof(when));
			if (u[i].last != 0 && cJSON_AddStringToObject(o, "last_use", when) == NULL)
				goto fail;
		}
	}
	r = cli_json_done(arr, 1, "list");
	ak_smem_scratch_end();
	return r;
fail:
	r = cli_json_done(arr, 0, "list");
	ak_smem_scratch_end();
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
		rc = json ? list_json(e, n, u) : list_table(e, n, u);
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
