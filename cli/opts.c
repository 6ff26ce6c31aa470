/* opts.c - the one option parser of akctl's commands: a command lists its options in a table of
 * struct cli_opt (where each one's value goes), and getopt_long runs once here, with -h/--help and the
 * usage errors the same for every command. No option value is a secret: secrets never come from argv.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

#define CLI_OPTS_MAX 32

enum ak_err
cli_opts_parse(struct cli *c, int argc, char **argv, const struct cli_opt *opts, int stop, int *helped)
{
	struct option lo[CLI_OPTS_MAX + 2];
	char shortopts[3 + 2 * CLI_OPTS_MAX + 2];
	const struct cli_opt *o;
	size_t n, k = 0;
	int ch;

	*helped = 0;
	if (stop)
		shortopts[k++] = '+'; /* stop at the first operand: what follows is another program's */
	shortopts[k++] = ':';
	shortopts[k++] = 'h';
	for (n = 0; opts[n].name != NULL; n++) {
		if (n == CLI_OPTS_MAX)
			return cli_fail(AK_ERR_INTERNAL, "option table too long", "%s", c->cmd);
		/* getopt_long returns 256 + index for a long-only option, the letter for one with a short name. */
		lo[n].name = opts[n].name;
		lo[n].has_arg = opts[n].kind == CLI_OPT_FLAG ? no_argument : required_argument;
		lo[n].flag = NULL;
		lo[n].val = opts[n].short_name != 0 ? opts[n].short_name : 256 + (int)n;
		if (opts[n].short_name != 0) {
			shortopts[k++] = opts[n].short_name;
			if (opts[n].kind != CLI_OPT_FLAG)
				shortopts[k++] = ':';
		}
	}
	shortopts[k] = '\0';
	lo[n] = (struct option){ "help", no_argument, NULL, 'h' };
	lo[n + 1] = (struct option){ NULL, 0, NULL, 0 };

	while ((ch = getopt_long(argc, argv, shortopts, lo, NULL)) != -1) {
		if (ch == 'h') {
			*helped = 1;
			return cli_cmd_help(c->cmd);
		}
		for (o = NULL, k = 0; k < n && o == NULL; k++)
			if (ch == (opts[k].short_name != 0 ? opts[k].short_name : 256 + (int)k))
				o = &opts[k];
		if (o == NULL)
			return cli_bad_option(c, ch, argv);
		switch (o->kind) {
		case CLI_OPT_FLAG:
			*o->flag = o->set_to;
			break;
		case CLI_OPT_VALUE:
			*o->value = optarg;
			break;
		case CLI_OPT_LIST:
			if (*o->n == o->max)
				return cli_usage_error(c, "at most %zu --%s", o->max, o->name);
			o->list[(*o->n)++] = optarg;
			break;
		}
	}
	return AK_OK;
}

enum ak_err
cli_opts_help_only(struct cli *c, int argc, char **argv, int *helped)
{
	static const struct cli_opt none[] = { CLI_OPT_END };

	return cli_opts_parse(c, argc, argv, none, 0, helped);
}

enum ak_err
cli_opts_json(struct cli *c, int argc, char **argv, int *json, int *helped)
{
	const struct cli_opt opts[] = { CLI_FLAG("json", json, 1), CLI_OPT_END };

	*json = 0;
	return cli_opts_parse(c, argc, argv, opts, 0, helped);
}
