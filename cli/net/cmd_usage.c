/* cmd_usage.c - akctl usage PROFILE [--since DURATION] [--json] [--admin PROFILE] [--project ID]
 * (akctl-net): the tokens the provider counted for the profile's key, per UTC day, beside the agent's
 * own handouts of that key (its usage log, LOG), with a warning for days the provider saw the key used
 * while this agent handed it out to no one.
 *
 * The key's id at the provider is found the way rotate --deactivate finds one (its partial hint in the
 * admin API's key list); the usage report is then read grouped by key. No key is ever printed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "admin.h"
#include "ak_smem.h"
#include "ak_util.h"
#include "cli.h"

struct usage_row {
	struct admin_day p;  /* the provider's figures */
	uint32_t handouts;   /* the agent's GETs of the profile that day */
	uint64_t proxy;      /* tokens akctl-proxy reported for the profile that day (LOG_USAGE) */
	uint32_t sessions;   /* proxies (reporting pids) of the profile that day */
};

/* Tokens well above what passed through the proxy on a day the proxy was the only path: each proxy
 * session takes the key with one GET, so a day with no more handouts than sessions handed the key to
 * nothing else. "Well above": more than a tenth over, and over a thousand tokens. */
static int
beyond_proxy(const struct usage_row *r)
{
	uint64_t t = r->p.input + r->p.output + r->p.cache;

	return r->sessions > 0 && r->handouts <= r->sessions && t > r->proxy + r->proxy / 10 &&
	    t - r->proxy > 1000;
}

static void
day_label(int64_t t, char *buf, size_t len)
{
	time_t ts = (time_t)t;
	struct tm tm;

	gmtime_r(&ts, &tm);
	strftime(buf, len, "%Y-%m-%d", &tm);
}

static uint64_t
total(const struct usage_row *r)
{
	return r->p.input + r->p.output + r->p.cache;
}

/* Used at the provider, yet not handed out by this agent that day (and the agent's log covers it). */
static int
elsewhere(const struct usage_row *r, int64_t t, int64_t log_from)
{
	return total(r) > 0 && r->handouts == 0 && t + 86400 > log_from;
}

/* The --json object (schema in akctl(1)). AK_OK, or AK_ERR_NOMEM after saying so. */
static enum ak_err
print_json(const char *name, const char *provider, const struct admin_key *k, const struct usage_row *rows,
    size_t n, int64_t start, int64_t log_from)
{
	cJSON *o = cJSON_CreateObject(), *arr, *d;
	char day[16];
	size_t i;

	if (o == NULL || cJSON_AddStringToObject(o, "profile", name) == NULL ||
	    cJSON_AddStringToObject(o, "provider", provider) == NULL ||
	    cJSON_AddStringToObject(o, "key_id", k->id) == NULL ||
	    cJSON_AddStringToObject(o, "key_name", k->name) == NULL ||
	    (arr = cJSON_AddArrayToObject(o, "days")) == NULL)
		return cli_json_done(o, 0, "usage");
	for (i = 0; i < n; i++) {
		day_label(start + (int64_t)i * 86400, day, sizeof(day));
		if ((d = cJSON_CreateObject()) == NULL)
			return cli_json_done(o, 0, "usage");
		cJSON_AddItemToArray(arr, d);
		if (cJSON_AddStringToObject(d, "date", day) == NULL ||
		    cJSON_AddNumberToObject(d, "input", (double)rows[i].p.input) == NULL ||
		    cJSON_AddNumberToObject(d, "output", (double)rows[i].p.output) == NULL ||
		    cJSON_AddNumberToObject(d, "cache", (double)rows[i].p.cache) == NULL ||
		    cJSON_AddNumberToObject(d, "handouts", rows[i].handouts) == NULL ||
		    cJSON_AddNumberToObject(d, "proxy_tokens", (double)rows[i].proxy) == NULL ||
		    cJSON_AddBoolToObject(d, "beyond_proxy", beyond_proxy(&rows[i])) == NULL ||
		    cJSON_AddBoolToObject(d, "elsewhere",
		    elsewhere(&rows[i], start + (int64_t)i * 86400, log_from)) == NULL)
			return cli_json_done(o, 0, "usage");
	}
	return cli_json_done(o, 1, "usage");
}

static void
print_table(const struct usage_row *rows, size_t n, int64_t start)
{
	static const char *const bars[] = { "\u2581", "\u2582", "\u2583", "\u2584", "\u2585", "\u2586",
		"\u2587", "\u2588" };
	int tty = isatty(STDOUT_FILENO);
	uint64_t max = 0;
	char day[16];
	size_t i;

	for (i = 0; i < n; i++)
		if (total(&rows[i]) > max)
			max = total(&rows[i]);
	printf("%-10s  %12s  %12s  %12s  %8s  %12s\n", "DAY", "INPUT", "OUTPUT", "CACHE", "HANDOUTS",
	    "VIA PROXY");
	for (i = 0; i < n; i++) {
		day_label(start + (int64_t)i * 86400, day, sizeof(day));
		printf("%-10s  %12llu  %12llu  %12llu  %8lu  %12llu\n", day, (unsigned long long)rows[i].p.input,
		    (unsigned long long)rows[i].p.output, (unsigned long long)rows[i].p.cache,
		    (unsigned long)rows[i].handouts, (unsigned long long)rows[i].proxy);
	}
	/* The sparkline is for eyes: a pipe gets the table alone. */
	if (tty && max > 0) {
		printf("tokens/day  ");
		for (i = 0; i < n; i++)
			printf("%s", total(&rows[i]) == 0 ? " " : bars[(total(&rows[i]) * 7) / max]);
		printf("\n");
	}
}

enum ak_err
cmd_usage(struct cli *c, int argc, char **argv)
{
	struct ak_client *cl = NULL;
	struct ak_profile *p = NULL;
	struct ak_use_entry *log = NULL;
	struct usage_row *rows = NULL;
	struct admin_day *days = NULL;
	struct admin a;
	struct admin_key k;
	const char *name, *admin_opt = NULL, *project = NULL, *since_s = NULL;
	char detail[512], proj[ADMIN_ID_MAX] = "", provider[32], day[16], self[AK_USE_EXE_MAX];
	ssize_t n;
	uint32_t since = 7 * 86400, nlog = 0, i;
	int64_t now = ak_now_s(), start, log_from;
	size_t ndays, d, j;
	enum admin_kind kind;
	enum ak_err rc, r;
	int json = 0, helped;
	const struct ak_opt opts[] = {
		CLI_VALUE("since", &since_s),
		CLI_FLAG("json", &json, 1),
		CLI_VALUE("admin", &admin_opt),
		CLI_VALUE("project", &project),
		CLI_OPT_END,
	};

	memset(&a, 0, sizeof(a));
	if ((rc = cli_opts_parse(c, argc, argv, opts, 0, &helped)) != AK_OK || helped)
		return rc;
	if (since_s != NULL && (ak_duration_parse(since_s, &since) != AK_OK || since == 0))
		return cli_usage_error(c, "--since needs a duration like 7d or 30d");
	if ((rc = cli_one_profile(c, argc, argv, &name)) != AK_OK)
		return rc;
	if (admin_opt != NULL && ak_name_check(admin_opt) != AK_OK)
		return cli_fail(AK_ERR_BAD_NAME, NULL, "usage: --admin '%s'", admin_opt);
	ndays = (since + 86399) / 86400;
	if (ndays > ADMIN_DAYS_MAX)
		return cli_usage_error(c, "--since: at most %dd", ADMIN_DAYS_MAX);
	start = now - now % 86400 - (int64_t)(ndays - 1) * 86400; /* UTC midnight, ndays back */
	if ((rc = cli_agent_unlocked(c, &cl)) != AK_OK)
		return rc;
	if ((r = ak_client_get(cl, name, &p)) != AK_OK) {
		rc = cli_fail_client(cl, r, "usage");
		goto out;
	}
	if (strcmp(p->provider, "anthropic") == 0) {
		kind = ADMIN_ANTHROPIC;
	} else if (strcmp(p->provider, "openai") == 0) {
		kind = ADMIN_OPENAI;
	} else {
		rc = cli_fail(AK_ERR_UNSUPPORTED, "usage reports: providers anthropic and openai",
		    "usage: %s: provider %s", name, p->provider);
		goto out;
	}
	snprintf(provider, sizeof(provider), "%s", p->provider);
	if (project != NULL)
		snprintf(proj, sizeof(proj), "%s", project);
	for (j = 0; project == NULL && j < p->nvars; j++)
		if (strcmp(p->vars[j].name, "OPENAI_PROJECT_ID") == 0 && !p->vars[j].secret)
			snprintf(proj, sizeof(proj), "%s", p->vars[j].value);
	/* The agent's handouts: its log holds what happened since it was unlocked (bounded: the oldest
	 * entries go first), so its earliest entry of any profile is where its knowledge starts. */
	if ((r = ak_client_log(cl, NULL, 0, &log, &nlog)) != AK_OK) {
		rc = cli_fail_client(cl, r, "usage");
		goto out;
	}
	if ((rows = calloc(ndays, sizeof(*rows))) == NULL || (days = calloc(ndays, sizeof(*days))) == NULL) {
		rc = cli_fail(AK_ERR_NOMEM, NULL, "usage");
		goto out;
	}
	if ((n = readlink("/proc/self/exe", self, sizeof(self) - 1)) < 0)
		n = 0;
	self[n] = '\0';
	log_from = now;
	for (i = 0; i < nlog; i++) {
		if (log[i].time < log_from)
			log_from = log[i].time;
		if (log[i].op == AK_MSG_LOG_USAGE && log[i].time >= start && strcmp(log[i].profile, name) == 0 &&
		    (d = (size_t)((log[i].time - start) / 86400)) < ndays) {
			rows[d].proxy += log[i].tokens_in + log[i].tokens_out + log[i].tokens_cache;
			/* A session's reports come from one pid: count it once a day. */
			for (j = 0; j < i; j++)
				if (log[j].op == AK_MSG_LOG_USAGE && log[j].pid == log[i].pid &&
				    log[j].time >= start && (size_t)((log[j].time - start) / 86400) == d &&
				    strcmp(log[j].profile, name) == 0)
					break;
			rows[d].sessions += j == i;
			continue;
		}
		/* akctl-net's own GETs (this command's, for the key's hint, and test's) spend no tokens:
		 * they are no handout to a user of the key. */
		if ((log[i].op != AK_MSG_GET && log[i].op != AK_MSG_GET_PREVIOUS) || log[i].err != AK_OK ||
		    log[i].time < start || log[i].pid == (uint32_t)getpid() ||
		    (self[0] != '\0' && strcmp(log[i].exe, self) == 0) || strcmp(log[i].profile, name) != 0)
			continue;
		d = (size_t)((log[i].time - start) / 86400);
		if (d < ndays)
			rows[d].handouts++;
	}
	if ((r = admin_open(cl, kind, admin_opt, &a, detail, sizeof(detail))) != AK_OK) {
		rc = cli_fail(r, detail, "usage: %s", name);
		goto out;
	}
	ak_client_close(cl); /* no connection held across the network wait */
	cl = NULL;
	r = admin_find_key(&a, proj, NULL, p->secret, &k, detail, sizeof(detail));
	ak_profile_free(p); /* the key is no longer needed: wipe it now */
	p = NULL;
	if (r != AK_OK) {
		rc = cli_fail(r, detail, "usage: %s", name);
		goto out;
	}
	if ((r = admin_usage(&a, k.id, start, ndays, days, detail, sizeof(detail))) != AK_OK) {
		rc = cli_fail(r, detail, "usage: %s", name);
		goto out;
	}
	for (d = 0; d < ndays; d++)
		rows[d].p = days[d];
	if (json && (rc = print_json(name, provider, &k, rows, ndays, start, log_from)) != AK_OK)
		goto out;
	if (!json)
		print_table(rows, ndays, start);
	fflush(stdout);
	for (d = 0; d < ndays; d++) {
		if (!elsewhere(&rows[d], start + (int64_t)d * 86400, log_from))
			continue;
		day_label(start + (int64_t)d * 86400, day, sizeof(day));
		cli_note("usage: %s: warning: %s: the provider counted %llu tokens for this key, but this "
		    "agent handed it out to no one that day (used from somewhere else?)", name, day,
		    (unsigned long long)total(&rows[d]));
	}
	for (d = 0; d < ndays; d++) {
		if (!beyond_proxy(&rows[d]))
			continue;
		day_label(start + (int64_t)d * 86400, day, sizeof(day));
		cli_note("usage: %s: warning: %s: the provider counted %llu tokens for this key, %llu more than "
		    "went through the akagent proxy, its only path that day (used from somewhere else?)",
		    name, day, (unsigned long long)total(&rows[d]),
		    (unsigned long long)(total(&rows[d]) - rows[d].proxy));
	}
	rc = AK_OK;
out:
	free(rows);
	free(days);
	ak_client_log_free(log, nlog);
	ak_profile_free(p);
	admin_close(&a);
	ak_client_close(cl);
	return rc;
}
