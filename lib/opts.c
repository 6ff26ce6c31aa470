/* opts.c - the one option parser (ak_opts.h): the table becomes getopt_long's optstring and long
 * options, getopt_long runs once, and each result is stored where the table says. getopt_long prints
 * nothing (optstring starts with ':'): the program words its usage errors from ak_opts_describe. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "ak_opts.h"

/* Name the option getopt_long rejected as the user typed it: a long one by argv[optind - 1] (glibc
 * leaves optopt 0 or the option's val), a short one by optopt, since it may sit inside a cluster like
 * "-xq". */
static void
name_bad(char **argv, char *out, size_t outlen)
{
	const char *arg = optind > 0 ? argv[optind - 1] : NULL;

	if (arg != NULL && strncmp(arg, "--", 2) == 0)
		snprintf(out, outlen, "%.*s", (int)strcspn(arg, "="), arg);
	else if (optopt != 0)
		snprintf(out, outlen, "-%c", optopt);
	else
		snprintf(out, outlen, "%s", arg != NULL ? arg : "?");
}

static int
named(const struct ak_opt *o)
{
	return o->name != NULL || o->short_name != 0;
}

/* getopt_long's value for entry i: its letter, else 256 + i (above every letter). */
static int
val_of(const struct ak_opt *opts, size_t i)
{
	return opts[i].short_name != 0 ? (unsigned char)opts[i].short_name : 256 + (int)i;
}

enum ak_err
ak_opts_parse(int argc, char **argv, const struct ak_opt *opts, unsigned flags, struct ak_opts_result *res)
{
	struct option lo[AK_OPTS_MAX + 2];
	char shortopts[3 + 2 * AK_OPTS_MAX + 1];
	const struct ak_opt *o;
	size_t n, nl = 0, k = 0;
	int ch;

	memset(res, 0, sizeof(*res));
	if (flags & AK_OPTS_IN_ORDER)
		shortopts[k++] = '+';
	shortopts[k++] = ':'; /* silent, and ':' (not '?') for a missing argument */
	if (flags & AK_OPTS_HELP) {
		shortopts[k++] = 'h';
		lo[nl++] = (struct option){ "help", no_argument, NULL, 'h' };
	}
	for (n = 0; named(&opts[n]); n++) {
		if (n == AK_OPTS_MAX)
			return AK_ERR_INTERNAL;
		if (opts[n].name != NULL)
			lo[nl++] = (struct option){ opts[n].name,
				opts[n].kind == AK_OPT_FLAG || opts[n].kind == AK_OPT_STOP ||
				    opts[n].kind == AK_OPT_CONST ? no_argument : required_argument,
				NULL, val_of(opts, n) };
		if (opts[n].short_name != 0) {
			shortopts[k++] = opts[n].short_name;
			if (opts[n].kind == AK_OPT_VALUE || opts[n].kind == AK_OPT_LIST)
				shortopts[k++] = ':';
		}
	}
	shortopts[k] = '\0';
	lo[nl] = (struct option){ NULL, 0, NULL, 0 };

	while ((ch = getopt_long(argc, argv, shortopts, lo, NULL)) != -1) {
		if (ch == 'h' && (flags & AK_OPTS_HELP)) {
			res->help = 1;
			return AK_OK;
		}
		for (o = NULL, k = 0; k < n && o == NULL; k++)
			if (ch == val_of(opts, k))
				o = &opts[k];
		if (o == NULL) {
			res->bad = ch == ':' ? AK_OPTS_NEEDS_ARG : AK_OPTS_UNKNOWN;
			name_bad(argv, res->arg, sizeof(res->arg));
			return AK_ERR_INVALID;
		}
		switch (o->kind) {
		case AK_OPT_FLAG:
			*o->flag = o->set_to;
			break;
		case AK_OPT_STOP:
			*o->flag = o->set_to;
			return AK_OK;
		case AK_OPT_VALUE:
			*o->value = optarg;
			break;
		case AK_OPT_CONST:
			*o->value = o->str;
			break;
		case AK_OPT_LIST:
			if (*o->n == o->max) {
				res->bad = AK_OPTS_TOO_MANY;
				res->opt = o;
				if (o->name != NULL)
					snprintf(res->arg, sizeof(res->arg), "--%s", o->name);
				else
					snprintf(res->arg, sizeof(res->arg), "-%c", o->short_name);
				return AK_ERR_INVALID;
			}
			o->list[(*o->n)++] = optarg;
			break;
		}
	}
	return AK_OK;
}

void
ak_opts_describe(const struct ak_opts_result *res, char *out, size_t outlen)
{
	switch (res->bad) {
	case AK_OPTS_UNKNOWN:
		snprintf(out, outlen, "unknown option '%s'", res->arg);
		break;
	case AK_OPTS_NEEDS_ARG:
		snprintf(out, outlen, "option '%s' needs an argument", res->arg);
		break;
	case AK_OPTS_TOO_MANY:
		snprintf(out, outlen, "at most %zu %s", res->opt->max, res->arg);
		break;
	}
}
