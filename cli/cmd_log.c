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
op_name(uint8_t op)
{
	switch (op) {
	case AK_MSG_GET: return "get";
	case AK_MSG_GET_PREVIOUS: return "get-previous";
	case AK_MSG_ADD: return "add";
	case AK_MSG_REMOVE: return "remove";
	case AK_MSG_EDIT: return "edit";
	case AK_USE_EXPIRE: return "expire";
	default: return "?";
	}
}

static const char *
outcome(const struct ak_use_entry *e)
{
	return e->err == AK_OK ? "ok" : ak_strerror(ak_err_from_wire(e->err));
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
		    cJSON_AddStringToObject(o, "op", op_name(e[i].op)) == NULL ||
		    cJSON_AddStringToObject(o, "profile", e[i].profile) == NULL ||
		    cJSON_AddNumberToObject(o, "pid", e[i].pid) == NULL ||
		    cJSON_AddNumberToObject(o, "uid", e[i].uid) == NULL ||
		    cJSON_AddStringToObject(o, "exe", e[i].exe) == NULL ||
		    cJSON_AddStringToObject(o, "outcome", outcome(&e[i])) == NULL ||
		    cJSON_AddNumberToObject(o, "code", e[i].err) == NULL)
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
		cli_print_padded(op_name(e[i].op), w[1] + 2);
		cli_print_padded(e[i].profile[0] ? e[i].profile : "-", w[2] + 2);
		snprintf(pid, sizeof(pid), "%lu", (unsigned long)e[i].pid);
		cli_print_padded(pid, w[3] + 2);
		cli_print_padded(e[i].exe[0] ? e[i].exe : "?", w[4] + 2);
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

enum ak_err
cmd_log(struct cli *c, int argc, char **argv)
{
	struct ak_client *cl = NULL;
	struct ak_use_entry *e = NULL;
	const char *profile = NULL;
	int64_t since = 0, last = 0;
	uint32_t n = 0, secs, from, seen = 0, i;
	const char *since_s = NULL;
	int json = 0, follow = 0, header = 1, helped;
	enum ak_err rc, r;
	const struct cli_opt opts[] = {
		CLI_VALUE("profile", &profile),
		CLI_VALUE("since", &since_s),
		CLI_FLAG("follow", &follow, 1),
		CLI_FLAG("json", &json, 1),
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
	if ((rc = cli_agent_unlocked(c, &cl)) != 0)
		return rc;
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
		if (rc != 0 || !follow)
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
