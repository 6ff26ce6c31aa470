/* cmd_test.c - stub: akctl test (network side, built into akctl-net only). */
#include <stdio.h>

#include "cli.h"

int
cmd_test(struct cli *c, int argc, char **argv)
{
	(void)c;
	(void)argc;
	(void)argv;
	fprintf(stderr, "akctl: test: not implemented yet\n");
	return 1;
}
