/* ak_opts.h - the one option parser of akagent, akctl and akctl-proxy: a program lists its options in a
 * table of struct ak_opt (where each one's value goes) and getopt_long runs once over it, with -h/--help
 * and the usage errors the same everywhere. Values point into argv (nothing is copied or wiped): no
 * option value is a secret, since secrets never come from argv. */
#ifndef AK_OPTS_H
#define AK_OPTS_H

#include <stddef.h>

#include "ak_err.h"

enum ak_opt_kind {
	AK_OPT_FLAG,  /* *flag = set_to */
	AK_OPT_STOP,  /* *flag = set_to, and parsing ends there (e.g. --version) */
	AK_OPT_VALUE, /* *value = the argument; the last one given wins */
	AK_OPT_CONST, /* *value = str: a short form of a VALUE option, in the same last-one-wins order */
	AK_OPT_LIST,  /* list[(*n)++] = the argument, at most max (then AK_OPTS_TOO_MANY) */
};

struct ak_opt {
	const char *name; /* the long name without "--", or NULL for a letter alone */
	char short_name;  /* or 0; an entry with neither name ends the table */
	enum ak_opt_kind kind;
	int *flag;
	int set_to;
	const char **value;
	const char *str;
	const char **list;
	size_t *n;
	size_t max;
};

#define AK_FLAG(nm, sh, p, v) { .name = (nm), .short_name = (sh), .kind = AK_OPT_FLAG, .flag = (p), .set_to = (v) }
#define AK_STOP(nm, sh, p) { .name = (nm), .short_name = (sh), .kind = AK_OPT_STOP, .flag = (p), .set_to = 1 }
#define AK_VALUE(nm, sh, p) { .name = (nm), .short_name = (sh), .kind = AK_OPT_VALUE, .value = (p) }
#define AK_CONST(nm, sh, p, s) { .name = (nm), .short_name = (sh), .kind = AK_OPT_CONST, .value = (p), .str = (s) }
#define AK_LIST(nm, sh, arr, cnt, mx) \
	{ .name = (nm), .short_name = (sh), .kind = AK_OPT_LIST, .list = (arr), .n = (cnt), .max = (mx) }
#define AK_OPT_END { .name = NULL, .short_name = 0 }

/* ak_opts_parse's flags. */
#define AK_OPTS_IN_ORDER 1u /* stop at the first operand: what follows is another program's argv */
#define AK_OPTS_HELP 2u     /* -h/--help is an option: it sets res->help and ends parsing */

/* Tables longer than this are a programming error (AK_ERR_INTERNAL). */
#define AK_OPTS_MAX 32

enum ak_opts_bad { AK_OPTS_UNKNOWN, AK_OPTS_NEEDS_ARG, AK_OPTS_TOO_MANY };

struct ak_opts_result {
	int help;                 /* AK_OPTS_HELP: -h/--help was given (parsing stopped there) */
	enum ak_opts_bad bad;     /* on AK_ERR_INVALID: what was wrong */
	const struct ak_opt *opt; /* on AK_OPTS_TOO_MANY: the list that overflowed */
	char arg[64];             /* on AK_ERR_INVALID: the option as typed, "--name" or "-x" */
};

/* Parse argv's options by the table opts (getopt_long state: the caller sets optind as it needs, 0 to
 * start over). AK_OK with optind at the first operand (or past the STOP option or -h that ended
 * parsing); AK_ERR_INVALID with *res saying which option was wrong (nothing printed: see
 * ak_opts_describe); AK_ERR_INTERNAL if the table has more than AK_OPTS_MAX entries. */
enum ak_err ak_opts_parse(int argc, char **argv, const struct ak_opt *opts, unsigned flags,
    struct ak_opts_result *res);

/* The usage error in res as one line without a newline ("unknown option '--x'", "option '-t' needs an
 * argument", "at most 8 --env-file") into out (truncated to outlen). */
void ak_opts_describe(const struct ak_opts_result *res, char *out, size_t outlen);

#endif
