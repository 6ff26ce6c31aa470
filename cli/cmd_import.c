/* cmd_import.c - stub: akctl import (network side, built into akctl-net only). */
#include <stdio.h>

#include "cli.h"

int
cmd_import(struct cli *c, int argc, char **argv)
{
	(void)c;
	(void)argc;
	(void)argv;
	fprintf(stderr, "akctl: import: not implemented yet\n");
	return 1;
}
