/* test_opts.c - the one option parser: where each kind of option's value goes, in-order parsing, -h and
 * stop options ending the parse, and the usage errors named as the user typed the option. */
#include <getopt.h>

#include "ak_opts.h"
#include "t.h"

struct got {
	int flag, quiet, version;
	const char *value, *shell;
	const char *list[2];
	size_t n;
};

/* Parse a copy of args (NULL-terminated) by a table like akagent's and akctl's together. */
static enum ak_err
parse(struct got *g, unsigned flags, struct ak_opts_result *res, char **args)
{
	const struct ak_opt opts[] = {
		AK_FLAG("flag", 'F', &g->flag, 1),
		AK_FLAG(NULL, 'q', &g->quiet, 7),
		AK_VALUE("value", 'v', &g->value),
		AK_CONST(NULL, 'c', &g->shell, "csh"),
		AK_VALUE("shell", 0, &g->shell),
		AK_LIST("item", 0, g->list, &g->n, 2),
		AK_STOP("version", 'V', &g->version),
		AK_OPT_END,
	};
	int argc = 0;

	memset(g, 0, sizeof(*g));
	while (args[argc] != NULL)
		argc++;
	optind = 0; /* glibc: start over */
	return ak_opts_parse(argc, args, opts, flags, res);
}

#define ARGS(...) ((char *[]){ "prog", __VA_ARGS__, NULL })

int
main(void)
{
	struct ak_opts_result res;
	struct got g;
	char msg[128];

	/* Every kind, clustered letters, "--name=value", and operands permuted to the end. */
	CHECK_EQ(parse(&g, 0, &res, ARGS("-Fq", "op1", "--value=x", "--item", "a", "--item=b", "op2")), AK_OK);
	CHECK_EQ(g.flag, 1);
	CHECK_EQ(g.quiet, 7);
	CHECK_STR(g.value, "x");
	CHECK_EQ(g.n, 2);
	CHECK_STR(g.list[0], "a");
	CHECK_STR(g.list[1], "b");
	CHECK_EQ(res.help, 0);
	CHECK_EQ(optind, 6);

	/* A letter standing for another option's value keeps the order: the last one given wins. */
	CHECK_EQ(parse(&g, 0, &res, ARGS("--shell", "fish", "-c")), AK_OK);
	CHECK_STR(g.shell, "csh");
	CHECK_EQ(parse(&g, 0, &res, ARGS("-c", "--shell", "fish")), AK_OK);
	CHECK_STR(g.shell, "fish");

	/* In order: the first operand ends the options; what follows is another program's. */
	CHECK_EQ(parse(&g, AK_OPTS_IN_ORDER, &res, ARGS("-F", "cmd", "-q", "--bogus")), AK_OK);
	CHECK_EQ(g.flag, 1);
	CHECK_EQ(g.quiet, 0);
	CHECK_EQ(optind, 2);

	/* -h/--help only when asked for, and it ends the parse (a later bad option is not looked at). */
	CHECK_EQ(parse(&g, AK_OPTS_HELP, &res, ARGS("--help", "--bogus")), AK_OK);
	CHECK_EQ(res.help, 1);
	CHECK_EQ(parse(&g, AK_OPTS_HELP, &res, ARGS("-Fh")), AK_OK);
	CHECK_EQ(res.help, 1);
	CHECK_EQ(g.flag, 1);
	CHECK_EQ(parse(&g, 0, &res, ARGS("-h")), AK_ERR_INVALID);
	CHECK_EQ(res.bad, AK_OPTS_UNKNOWN);
	CHECK_STR(res.arg, "-h");
	CHECK_EQ(parse(&g, 0, &res, ARGS("-V", "--bogus")), AK_OK);
	CHECK_EQ(g.version, 1);

	/* Usage errors name the option as typed: a long one without its "=value", a short one alone
	 * even inside a cluster. */
	CHECK_EQ(parse(&g, 0, &res, ARGS("--bogus=secret")), AK_ERR_INVALID);
	ak_opts_describe(&res, msg, sizeof(msg));
	CHECK_STR(msg, "unknown option '--bogus'");
	CHECK_EQ(parse(&g, 0, &res, ARGS("-Fxq")), AK_ERR_INVALID);
	ak_opts_describe(&res, msg, sizeof(msg));
	CHECK_STR(msg, "unknown option '-x'");
	CHECK_EQ(parse(&g, 0, &res, ARGS("-F", "-v")), AK_ERR_INVALID);
	ak_opts_describe(&res, msg, sizeof(msg));
	CHECK_STR(msg, "option '-v' needs an argument");
	CHECK_EQ(parse(&g, 0, &res, ARGS("--value")), AK_ERR_INVALID);
	ak_opts_describe(&res, msg, sizeof(msg));
	CHECK_STR(msg, "option '--value' needs an argument");
	CHECK_EQ(parse(&g, 0, &res, ARGS("--flag=1")), AK_ERR_INVALID);
	CHECK_EQ(res.bad, AK_OPTS_UNKNOWN); /* glibc: "doesn't allow an argument" comes back as '?' */
	CHECK_EQ(parse(&g, 0, &res, ARGS("--item", "a", "--item", "b", "--item", "c")), AK_ERR_INVALID);
	ak_opts_describe(&res, msg, sizeof(msg));
	CHECK_STR(msg, "at most 2 --item");
	CHECK_EQ(g.n, 2);
	T_DONE();
}
