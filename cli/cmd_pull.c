/* cmd_pull.c - stub: akctl pull (network side, built into akctl-net only). */
#include <stdio.h>

#include "cli.h"

int
cmd_pull(struct cli *c, int argc, char **argv)
{
	(void)c;
	(void)argc;
	(void)argv;
	fprintf(stderr, "akctl: pull: not implemented yet\n");
	return 1;
}
