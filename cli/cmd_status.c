/* cmd_status.c - akctl status: the agent's state and the keystore's. Exit 0 unlocked, 4 locked,
 * 3 no agent (for this keystore), 7 an agent that is not ours. Reads only the (public) keystore
 * header, never asks anything. Paths (from the environment or the agent) are rendered for the
 * terminal (ak_render). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "ak_file.h"
#include "ak_util.h"
#include "cli.h"

/* Temp files of the keystore's writes that a killed writer left: each an older copy of the store. */
static void
print_stale(const char *path)
{
	size_t n = 0;

	if (ak_file_stale_temps(path, 0, &n) == AK_OK && n > 0)
		printf("warning:    %zu stale temp file%s next to the keystore (older copies of it, from an "
		    "interrupted write): the next write removes them\n", n, n == 1 ? "" : "s");
}

/* The keystore line(s) from the file's header. *weak set when its KDF is weak. */
static void
print_header(const char *path, int *weak)
{
	struct ak_header hdr;
	uint8_t *file = NULL;
	size_t len = 0, hdrlen = 0;
	enum ak_err r;

	r = ak_store_read(path, &file, &len);
	if (r == AK_ERR_NO_STORE) {
		cli_print_padded("keystore:   ", 0);
		cli_print_padded(path, 0);
		printf(" (does not exist: create it with 'akctl init')\n");
		return;
	}
	if (r == AK_OK)
		r = ak_header_parse(file, len, &hdr, &hdrlen);
	free(file);
	if (r != AK_OK) {
		cli_print_padded("keystore:   ", 0);
		cli_print_padded(path, 0);
		printf(" (unreadable: %s)\n", ak_strerror(r));
		return;
	}
	cli_print_line("keystore:   ", path);
	printf("format:     version %lu%s\n", (unsigned long)hdr.version,
	    hdr.version < AK_STORE_VERSION ? " (rewritten as version 2 on the next write)" : "");
	printf("kdf:        argon2id, preset %s (opslimit %llu, memlimit %llu KiB)\n",
	    ak_kdf_preset_name(hdr.kdf.preset), (unsigned long long)hdr.kdf.opslimit,
	    (unsigned long long)(hdr.kdf.memlimit / 1024));
	if (ak_kdf_is_weak(&hdr.kdf))
		*weak = 1;
}

static void
print_keystore(const char *path, int *weak)
{
	print_header(path, weak);
	print_stale(path);
}

/* status --json: one object (schema in akctl(1)); nothing in it is secret. */
static enum ak_err
status_json(struct cli *c, enum ak_err r, struct ak_client *cl, const struct ak_status *st)
{
	struct ak_header hdr;
	uint8_t *file = NULL;
	size_t len = 0, hdrlen = 0;
	cJSON *o = NULL, *k;
	enum ak_err fr = AK_ERR_NO_STORE;
	enum ak_err rc;
	int up = r == AK_OK;

	if ((o = cJSON_CreateObject()) == NULL)
		return cli_json_done(NULL, 0, "status");
	cJSON_AddStringToObject(o, "agent", up ? "running" : r == AK_ERR_OTHER_STORE ? "other-keystore" :
	    "none");
	if (up) {
		cJSON_AddNumberToObject(o, "pid", st->pid);
		cJSON_AddStringToObject(o, "socket", ak_client_path(cl));
		cJSON_AddBoolToObject(o, "unlocked", st->unlocked);
	} else {
		cJSON_AddStringToObject(o, "socket", cli_socket_path());
		cJSON_AddBoolToObject(o, "unlocked", 0);
	}
	if (cli_store_path(c) == AK_OK) {
		cJSON_AddStringToObject(o, "keystore", c->store);
		if ((fr = ak_store_read(c->store, &file, &len)) == AK_OK)
			fr = ak_header_parse(file, len, &hdr, &hdrlen);
		free(file);
	}
	cJSON_AddBoolToObject(o, "keystore_exists", fr != AK_ERR_NO_STORE);
	if (fr == AK_OK)
		cJSON_AddNumberToObject(o, "format", (double)hdr.version);
	if (fr == AK_OK && (k = cJSON_AddObjectToObject(o, "kdf")) != NULL) {
		cJSON_AddStringToObject(k, "preset", ak_kdf_preset_name(hdr.kdf.preset));
		cJSON_AddNumberToObject(k, "opslimit", (double)hdr.kdf.opslimit);
		cJSON_AddNumberToObject(k, "memlimit_kib", (double)(hdr.kdf.memlimit / 1024));
		cJSON_AddBoolToObject(k, "weak", ak_kdf_is_weak(&hdr.kdf));
	}
	if (up && st->unlocked) {
		cJSON_AddNumberToObject(o, "profiles", st->nprofiles);
		if (st->lifetime_left == AK_LIFETIME_NONE)
			cJSON_AddNullToObject(o, "lock_in_s");
		else
			cJSON_AddNumberToObject(o, "lock_in_s", st->lifetime_left);
	}
	if (up) {
		if (st->idle_timeout == AK_LIFETIME_NONE || st->idle_timeout == 0)
			cJSON_AddNullToObject(o, "idle_lock_s");
		else
			cJSON_AddNumberToObject(o, "idle_lock_s", st->idle_timeout);
	}
	if ((rc = cli_json_done(o, 1, "status")) != AK_OK)
		return rc;
	return !up ? AK_ERR_NO_AGENT : st->unlocked ? AK_OK : AK_ERR_LOCKED;
}

enum ak_err
cmd_status(struct cli *c, int argc, char **argv)
{
	struct ak_client *cl = NULL;
	struct ak_status st;
	char detail[512], dur[32];
	int weak = 0, json, helped;
	enum ak_err rc, r;

	memset(&st, 0, sizeof(st));
	if ((rc = cli_opts_json(c, argc, argv, &json, &helped)) != AK_OK || helped)
		return rc;
	if (optind != argc)
		return cli_no_operand(c, argv);

	r = cli_agent_for_store(c, &cl, &st, detail, sizeof(detail));
	if (json && (r == AK_OK || r == AK_ERR_NO_AGENT || r == AK_ERR_OTHER_STORE)) {
		rc = status_json(c, r, cl, &st);
		goto out_json;
	}
	if (r == AK_ERR_NO_AGENT || r == AK_ERR_OTHER_STORE) {
		if (r == AK_ERR_NO_AGENT) {
			cli_print_padded("agent:      not running (no agent at ", 0);
			cli_print_padded(cli_socket_path(), 0);
		} else {
			cli_print_padded("agent:      none for this keystore (", 0);
			cli_print_padded(detail, 0);
		}
		printf(")\n");
		if (cli_store_path(c) == AK_OK)
			print_keystore(c->store, &weak);
		rc = AK_ERR_NO_AGENT;
		goto out;
	}
	if (r != AK_OK) {
		rc = cli_fail_agent(r, detail, "status");
		goto out;
	}
	printf("agent:      running (pid %lu)\n", (unsigned long)st.pid);
	cli_print_line("socket:     ", ak_client_path(cl));
	printf("state:      %s%s%s\n", cli_color(STDOUT_FILENO, st.unlocked ? CLI_COLOR_OK : CLI_COLOR_WARN),
	    st.unlocked ? "unlocked" : "locked", cli_color(STDOUT_FILENO, CLI_COLOR_OFF));
	print_keystore(c->store, &weak);
	if (st.unlocked) {
		printf("profiles:   %lu\n", (unsigned long)st.nprofiles);
		cli_rotation_status(cl);
		cli_use_policy_status(cl);
		if (st.lifetime_left == AK_LIFETIME_NONE) {
			printf("auto-lock:  never\n");
		} else {
			ak_duration_format(st.lifetime_left, dur, sizeof(dur));
			printf("auto-lock:  in %s\n", dur);
		}
		if (st.weak_kdf)
			weak = 1;
	}
	if (st.idle_timeout == AK_LIFETIME_NONE || st.idle_timeout == 0) {
		printf("idle lock:  never\n");
	} else {
		ak_duration_format(st.idle_timeout, dur, sizeof(dur));
		printf("idle lock:  after %s idle\n", dur);
	}
	rc = st.unlocked ? AK_OK : AK_ERR_LOCKED;
out:
	if (weak)
		printf("warning:    the keystore's KDF is weak (tests only): change it with "
		    "'akctl passwd --kdf moderate'\n");
out_json:
	ak_status_clear(&st);
	ak_client_close(cl);
	return rc;
}
