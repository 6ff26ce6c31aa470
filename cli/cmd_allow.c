/* cmd_allow.c - akctl allow FILE | --list, akctl deny FILE: the files allowed to ask for secrets.
 *
 * `exec --env-file FILE` resolves FILE's ak:// references only when FILE is allowed with its current
 * content (ak_allow.h). The content is read into the secure arena (a .env may hold other secrets),
 * hashed and wiped; only the real path and the SHA-256 are recorded.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "ak_allow.h"
#include "ak_dotenv.h"
#include "ak_file.h"
#include "ak_smem.h"
#include "cli.h"

/* FILE's real path and the digest of its content. Prints errors and returns them. */
static enum ak_err
file_digest(struct cli *c, const char *file, char *real, size_t reallen, char hex[AK_ALLOW_HEX])
{
	char *buf = NULL;
	size_t len = 0;
	enum ak_err r;

	if ((r = ak_allow_realpath(file, real, reallen)) != AK_OK)
		return cli_fail(r, r == AK_ERR_IO ? strerror(errno) : NULL, "%s: %s", c->cmd, file);
	if ((r = ak_file_load(real, AK_DOTENV_FILE_MAX, AK_FILE_SECURE, &buf, &len)) != AK_OK)
		return cli_fail(r, r == AK_ERR_IO ? strerror(errno) : NULL, "%s: %s", c->cmd, file);
	ak_allow_digest(buf, len, hex);
	ak_smem_free(buf); /* wipes */
	return AK_OK;
}

/* Whether path still holds the content allowed with digest hex. */
static const char *
entry_state(const struct ak_allow_entry *e)
{
	char *buf = NULL, hex[AK_ALLOW_HEX];
	const char *state;
	size_t len;

	/* An edited file asks for secrets no more: say so. */
	if (ak_file_load(e->path, AK_DOTENV_FILE_MAX, AK_FILE_SECURE, &buf, &len) != AK_OK) {
		state = "missing";
	} else {
		ak_allow_digest(buf, len, hex);
		state = strcmp(hex, e->hex) == 0 ? "allowed" : "changed since allowed";
	}
	ak_smem_free(buf); /* wipes */
	return state;
}

/* allow --list --json: one array (schema in akctl(1)). */
static enum ak_err
list_json(const struct ak_allow_entry *e, size_t n)
{
	cJSON *a, *o;
	size_t i;

	if ((a = cJSON_CreateArray()) == NULL)
		goto fail;
	for (i = 0; i < n; i++) {
		if ((o = cJSON_CreateObject()) == NULL)
			goto fail;
		cJSON_AddItemToArray(a, o);
		if (cJSON_AddStringToObject(o, "path", e[i].path) == NULL ||
		    cJSON_AddStringToObject(o, "sha256", e[i].hex) == NULL ||
		    cJSON_AddStringToObject(o, "state", entry_state(&e[i])) == NULL)
			goto fail;
	}
	return cli_json_done(a, 1, "allow --list");
fail:
	return cli_json_done(a, 0, "allow --list");
}

static enum ak_err
list(struct cli *c, int json)
{
	struct ak_allow_entry *e = NULL;
	size_t n = 0, i;
	enum ak_err r, rc = AK_OK;

	if ((r = ak_allow_list(&e, &n)) != AK_OK)
		return cli_fail(r, NULL, "allow --list");
	if (json) {
		rc = list_json(e, n);
		goto out;
	}
	for (i = 0; i < n; i++) {
		printf("%.16s  %-7s  ", e[i].hex, entry_state(&e[i]));
		cli_print_line("", e[i].path);
	}
	if (n == 0)
		cli_note("no allowed files (allow one with 'akctl allow FILE')");
out:
	free(e);
	(void)c;
	return rc;
}

enum ak_err
cmd_allow(struct cli *c, int argc, char **argv)
{
	char real[AK_PATH_MAX], hex[AK_ALLOW_HEX];
	int lst = 0, json = 0, helped;
	enum ak_err rc, r;
	const struct ak_opt opts[] = {
		CLI_FLAG("list", &lst, 1),
		CLI_FLAG("json", &json, 1),
		CLI_OPT_END,
	};

	if ((rc = cli_opts_parse(c, argc, argv, opts, 0, &helped)) != AK_OK || helped)
		return rc;
	if (lst) {
		if (optind != argc)
			return cli_usage_error(c, "--list takes no FILE");
		return list(c, json);
	}
	if (json)
		return cli_usage_error(c, "--json goes with --list");
	if (optind >= argc)
		return cli_usage_error(c, "missing FILE (or --list)");
	if (optind + 1 != argc)
		return cli_usage_error(c, "unexpected argument '%s'", argv[optind + 1]);
	if ((rc = file_digest(c, argv[optind], real, sizeof(real), hex)) != AK_OK)
		return rc;
	if ((r = ak_allow_add(real, hex)) != AK_OK)
		return cli_fail(r, r == AK_ERR_IO ? strerror(errno) : NULL, "allow: %s", argv[optind]);
	cli_note("allowed %s to ask for secrets (as it is now: edit it and it needs a new allow)", real);
	return AK_OK;
}

enum ak_err
cmd_deny(struct cli *c, int argc, char **argv)
{
	char real[AK_PATH_MAX], cwd[PATH_MAX];
	const char *file;
	int found = 0;
	int helped;
	enum ak_err rc, r;

	if ((rc = cli_opts_help_only(c, argc, argv, &helped)) != AK_OK || helped)
		return rc;
	if (optind >= argc)
		return cli_usage_error(c, "missing FILE");
	if (optind + 1 != argc)
		return cli_usage_error(c, "unexpected argument '%s'", argv[optind + 1]);
	file = argv[optind];
	/* A file already gone is named by its absolute path, as it was recorded. */
	if (ak_allow_realpath(file, real, sizeof(real)) != AK_OK) {
		if (file[0] == '/')
			snprintf(real, sizeof(real), "%s", file);
		else if (getcwd(cwd, sizeof(cwd)) == NULL ||
		    (size_t)snprintf(real, sizeof(real), "%s/%s", cwd, file) >= sizeof(real))
			return cli_fail(AK_ERR_TOO_LARGE, NULL, "deny: %s", file);
	}
	if ((r = ak_allow_remove(real, &found)) != AK_OK)
		return cli_fail(r, r == AK_ERR_IO ? strerror(errno) : NULL, "deny: %s", file);
	if (!found) {
		cli_note("deny: %s was not allowed", real);
		return AK_ERR_NOT_FOUND;
	}
	cli_note("denied %s: its references are no longer resolved", real);
	return AK_OK;
}
