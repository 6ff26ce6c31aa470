/* cmd_log.c - akctl log [--profile P] [--since DURATION] [--follow] [--json]: the agent's usage log.
 *
 * Every secret the agent handed out and every write since it was unlocked: time, operation, profile,
 * the requesting process (pid, executable) and the outcome. No secret travels in LOG; the profile
 * names it carries are wiped when the entries are freed. Every cell is rendered for the terminal.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "ak_util.h"
#include "cli.h"

#define FOLLOW_POLL_MS 1000

static const char *
outcome(const struct ak_use_entry *e)
{
	switch (ak_err_from_wire(e->err)) {
	case AK_OK: return "ok";
	case AK_ERR_NOT_CONFIRMED: return "denied";
	case AK_ERR_CONFIRM_TIMEOUT: return "timeout";
	case AK_ERR_EXPIRED: return "expired";
	default: return ak_strerror(ak_err_from_wire(e->err));
	}
}

/* One JSON object per entry, one a line (so --follow can stream them). */
static enum ak_err
log_json(const struct ak_use_entry *e, uint32_t n)
{
	cJSON *o = NULL;
	char when[32];
	uint32_t i;
	enum ak_err rc = AK_ERR_NOMEM;

	for (i = 0; i < n; i++) {
		if ((o = cJSON_CreateObject()) == NULL)
			goto out;
		cli_iso_time(e[i].time, when, sizeof(when));
		if (cJSON_AddStringToObject(o, "time", when) == NULL ||
		    cJSON_AddNumberToObject(o, "unix_time", (double)e[i].time) == NULL ||
		    cJSON_AddStringToObject(o, "op", ak_use_op_name(e[i].op)) == NULL ||
		    cJSON_AddStringToObject(o, "profile", e[i].profile) == NULL ||
		    cJSON_AddNumberToObject(o, "pid", e[i].pid) == NULL ||
		    cJSON_AddNumberToObject(o, "uid", e[i].uid) == NULL ||
		    cJSON_AddStringToObject(o, "exe", e[i].exe) == NULL ||
		    cJSON_AddStringToObject(o, "outcome", outcome(&e[i])) == NULL ||
		    cJSON_AddNumberToObject(o, "code", e[i].err) == NULL)
			goto out;
		/* Tokens that went through akctl-proxy, per profile and client. */
		if (e[i].op == AK_MSG_LOG_USAGE &&
		    (cJSON_AddStringToObject(o, "client", e[i].client) == NULL ||
		    cJSON_AddNumberToObject(o, "requests", e[i].requests) == NULL ||
		    cJSON_AddNumberToObject(o, "input_tokens", (double)e[i].tokens_in) == NULL ||
		    cJSON_AddNumberToObject(o, "output_tokens", (double)e[i].tokens_out) == NULL ||
		    cJSON_AddNumberToObject(o, "cache_tokens", (double)e[i].tokens_cache) == NULL))
			goto out;
		if (cli_json_print(o) != AK_OK)
			goto out;
		cJSON_Delete(o);
		o = NULL;
	}
	rc = AK_OK;
out:
	if (rc != AK_OK)
		cli_fail(AK_ERR_NOMEM, NULL, "log");
	cJSON_Delete(o); /* a profile name: the cJSON hooks wipe it */
	fflush(stdout);
	return rc;
}

/* Column widths: TIME OP PROFILE PID EXE (OUTCOME last, unpadded). */
static const char *const head[6] = { "TIME", "OP", "PROFILE", "PID", "EXE", "OUTCOME" };

static void
log_table(const struct ak_use_entry *e, uint32_t n, int header)
{
	size_t w[5] = { 20, 12, 7, 7, 3 }, k;
	char pid[16];
	char when[32];
	uint32_t i;

	for (i = 0; i < n; i++) {
		if (cli_width(e[i].profile) > w[2])
			w[2] = cli_width(e[i].profile);
		if (cli_width(e[i].exe) > w[4])
			w[4] = cli_width(e[i].exe);
	}
	if (header) {
		for (k = 0; k < 5; k++)
			cli_print_padded(head[k], w[k] + 2);
		printf("%s\n", head[5]);
	}
	for (i = 0; i < n; i++) {
		cli_iso_time(e[i].time, when, sizeof(when));
		cli_print_padded(when, w[0] + 2);
		cli_print_padded(ak_use_op_name(e[i].op), w[1] + 2);
		cli_print_padded(e[i].profile[0] ? e[i].profile : "-", w[2] + 2);
		snprintf(pid, sizeof(pid), "%lu", (unsigned long)e[i].pid);
		cli_print_padded(pid, w[3] + 2);
		cli_print_padded(e[i].exe[0] ? e[i].exe : "?", w[4] + 2);
		if (e[i].op == AK_MSG_LOG_USAGE) {
			char tok[200];

			snprintf(tok, sizeof(tok), "%lu request%s, tokens %llu in, %llu out, %llu cache%s%s",
			    (unsigned long)e[i].requests, e[i].requests == 1 ? "" : "s",
			    (unsigned long long)e[i].tokens_in, (unsigned long long)e[i].tokens_out,
			    (unsigned long long)e[i].tokens_cache, e[i].client[0] ? ", client " : "",
			    e[i].client);
			cli_print_padded(tok, 0);
			printf("\n");
			continue;
		}
		printf("%s\n", outcome(&e[i]));
	}
	fflush(stdout);
}

/* --follow: the entries not shown yet. Entries come oldest first; of those in the last second shown,
 * *seen were printed already. */
static uint32_t
skip_seen(const struct ak_use_entry *e, uint32_t n, int64_t last, uint32_t seen)
{
	uint32_t i = 0;

	while (i < n && e[i].time == last && seen > 0) {
		i++;
		seen--;
	}
	return i;
}

/* One audit line as a use entry, its hashed name mapped back through names/hashes (an unknown hash,
 * e.g. of a profile removed since, stays shown as "#HASH"). AK_OK, AK_ERR_INVALID for a line that is
 * not ours, AK_ERR_NOMEM. */
static enum ak_err
audit_entry(const char *line, char **names, char **hashes, uint32_t nmap, struct ak_use_entry *e)
{
	const cJSON *f[8];
	static const char *const keys[8] = { "unix", "op", "profile", "pid", "uid", "exe", "code", "time" };
	cJSON *o = cJSON_Parse(line);
	const char *h;
	char unknown[80];
	uint32_t i;
	size_t k;
	enum ak_err rc = AK_ERR_INVALID;

	memset(e, 0, sizeof(*e));
	if (o == NULL)
		return AK_ERR_INVALID;
	for (k = 0; k < 8; k++)
		f[k] = cJSON_GetObjectItemCaseSensitive(o, keys[k]);
	if (!cJSON_IsNumber(f[0]) || !cJSON_IsString(f[1]) || !cJSON_IsString(f[2]) ||
	    !cJSON_IsNumber(f[3]) || !cJSON_IsNumber(f[4]) || !cJSON_IsString(f[5]) || !cJSON_IsNumber(f[6]))
		goto out;
	e->time = (int64_t)f[0]->valuedouble;
	e->pid = (uint32_t)f[3]->valuedouble;
	e->uid = (uint32_t)f[4]->valuedouble;
	e->err = (uint32_t)f[6]->valuedouble;
	for (k = 0; k < 256; k++)
		if (strcmp(ak_use_op_name((uint8_t)k), f[1]->valuestring) == 0) {
			e->op = (uint8_t)k;
			break;
		}
	h = f[2]->valuestring;
	snprintf(unknown, sizeof(unknown), "#%s", h);
	for (i = 0; i < nmap; i++)
		if (strcmp(hashes[i], h) == 0)
			break;
	e->profile = strdup(h[0] == '\0' ? "" : i < nmap ? names[i] : unknown);
	e->exe = strdup(f[5]->valuestring);
	if (e->profile == NULL || e->exe == NULL) {
		ak_use_entry_clear(e);
		rc = AK_ERR_NOMEM;
		goto out;
	}
	rc = AK_OK;
out:
	cJSON_Delete(o);
	return rc;
}

/* --audit PATH: the audit log's lines with each name mapped back by the unlocked agent. */
static enum ak_err
log_audit(struct ak_client *cl, const char *path, const char *profile, int64_t since, int json)
{
	struct ak_use_entry *e = NULL, *ne;
	char **names = NULL, **hashes = NULL, *line = NULL;
	uint32_t nmap = 0, n = 0, cap = 0, i, bad = 0;
	size_t linecap = 0;
	FILE *f = NULL;
	enum ak_err rc;

	if ((rc = ak_client_audit_map(cl, &names, &hashes, &nmap)) != AK_OK) {
		rc = cli_fail_client(cl, rc, "log --audit");
		goto out;
	}
	if ((f = fopen(path, "re")) == NULL) {
		rc = cli_fail(AK_ERR_NOT_FOUND, NULL, "log --audit: %s", path);
		goto out;
	}
	while (getline(&line, &linecap, f) > 0) {
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			if ((ne = realloc(e, cap * sizeof(*e))) == NULL) {
				rc = cli_fail(AK_ERR_NOMEM, NULL, "log --audit");
				goto out;
			}
			e = ne;
		}
		/* A line we cannot read (or hold) is counted and skipped, not fatal. */
		if (audit_entry(line, names, hashes, nmap, &e[n]) != AK_OK) {
			bad++;
			continue;
		}
		if (e[n].time < since || (profile != NULL && strcmp(e[n].profile, profile) != 0)) {
			ak_use_entry_clear(&e[n]);
			continue;
		}
		n++;
	}
	if (bad > 0)
		fprintf(stderr, "akctl: log --audit: %lu line%s not understood, skipped\n", (unsigned long)bad,
		    bad == 1 ? "" : "s");
	rc = AK_OK;
	if (json)
		rc = log_json(e, n);
	else if (n > 0)
		log_table(e, n, 1);
	else
		cli_note("no entries in %s%s", path, profile != NULL || since != 0 ? " (that match)" : "");
out:
	if (f != NULL)
		fclose(f);
	free(line);
	for (i = 0; i < n; i++)
		ak_use_entry_clear(&e[i]);
	free(e);
	ak_client_audit_map_free(names, hashes, nmap);
	return rc;
}

enum ak_err
cmd_log(struct cli *c, int argc, char **argv)
{
	struct ak_client *cl = NULL;
	struct ak_use_entry *e = NULL;
	const char *profile = NULL, *audit = NULL;
	int64_t since = 0, last = 0;
	uint32_t n = 0, secs, from, seen = 0, i;
	const char *since_s = NULL;
	int json = 0, follow = 0, header = 1, helped;
	enum ak_err rc, r;
	const struct ak_opt opts[] = {
		CLI_VALUE("profile", &profile),
		CLI_VALUE("since", &since_s),
		CLI_FLAG("follow", &follow, 1),
		CLI_FLAG("json", &json, 1),
		CLI_VALUE("audit", &audit),
		CLI_OPT_END,
	};

	if ((rc = cli_opts_parse(c, argc, argv, opts, 0, &helped)) != AK_OK || helped)
		return rc;
	if (profile != NULL && ak_name_check(profile) != AK_OK)
		return cli_usage_error(c, "--profile: not a profile name");
	if (since_s != NULL) {
		if (ak_duration_parse(since_s, &secs) != AK_OK)
			return cli_usage_error(c, "--since: not a duration (e.g. 90s, 30m, 1h, 7d)");
		since = secs ? ak_now_s() - (int64_t)secs : 0;
	}
	if (optind != argc)
		return cli_no_operand(c, argv);
	if (audit != NULL && follow)
		return cli_usage_error(c, "--audit reads a file: no --follow (use tail -f on it)");
	if ((rc = cli_agent_unlocked(c, &cl)) != AK_OK)
		return rc;
	if (audit != NULL) {
		rc = log_audit(cl, audit, profile, since, json);
		goto out;
	}
	for (;;) {
		if ((r = ak_client_log(cl, profile, since, &e, &n)) != AK_OK) {
			rc = cli_fail_client(cl, r, "log");
			goto out;
		}
		from = follow ? skip_seen(e, n, last, seen) : 0;
		rc = AK_OK;
		if (json) {
			rc = log_json(e + from, n - from);
		} else if (n > from) {
			log_table(e + from, n - from, header);
			header = 0;
		} else if (!follow) {
			cli_note("nothing used or written since the agent was unlocked%s",
			    profile != NULL || since != 0 ? " (that matches)" : "");
		}
		if (rc != AK_OK || !follow)
			goto out;
		/* Remember the newest second shown and how many of its entries were. */
		if (n > 0) {
			if (e[n - 1].time != last)
				seen = 0;
			last = e[n - 1].time;
			for (i = from; i < n; i++)
				seen += e[i].time == last;
			since = last;
		}
		ak_client_log_free(e, n);
		e = NULL;
		n = 0;
		nanosleep(&(struct timespec){ .tv_sec = FOLLOW_POLL_MS / 1000, .tv_nsec = 0 }, NULL);
	}
out:
	ak_client_log_free(e, n);
	ak_client_close(cl);
	return rc;
}
