/* opts.c - akctl's face of the one option parser (ak_opts.h): -h/--help prints the command's usage, and a
 * bad option is a usage error naming the command.
 */
#include <stdio.h>

#include "cli.h"

enum ak_err
cli_opts_parse(struct cli *c, int argc, char **argv, const struct ak_opt *opts, int stop, int *helped)
{
	struct ak_opts_result res;
	char msg[128];
	enum ak_err r;

	r = ak_opts_parse(argc, argv, opts, AK_OPTS_HELP | (stop ? AK_OPTS_IN_ORDER : 0u), &res);
	*helped = res.help;
	if (r == AK_ERR_INTERNAL)
		return cli_fail(r, "option table too long", "%s", c->cmd);
	if (r != AK_OK) {
		ak_opts_describe(&res, msg, sizeof(msg));
		return cli_usage_error(c, "%s", msg);
	}
	return res.help ? cli_cmd_help(c->cmd) : AK_OK;
}

enum ak_err
cli_opts_help_only(struct cli *c, int argc, char **argv, int *helped)
{
	static const struct ak_opt none[] = { CLI_OPT_END };

	return cli_opts_parse(c, argc, argv, none, 0, helped);
}

enum ak_err
cli_opts_json(struct cli *c, int argc, char **argv, int *json, int *helped)
{
	const struct ak_opt opts[] = { CLI_FLAG("json", json, 1), CLI_OPT_END };

	*json = 0;
	return cli_opts_parse(c, argc, argv, opts, 0, helped);
}
