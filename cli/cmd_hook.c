/* cmd_hook.c - akctl hook bash|zsh|fish: code for the shell's rc file.
 *
 * It defines `ak` (akctl, except that `ak use ...` evaluates akctl use's output in the shell itself, so
 * switching needs no eval), `ak_prompt` (the active profile, for a prompt) and the completion for akctl
 * and ak, and `__ak_direnv`, run at each prompt, for per-directory profiles (cmd_direnv.c). The completion text is the installed completion file itself (embedded at build time). The
 * hook never contains a secret: keys only arrive when `ak use` runs.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "completions.h"

static const char hook_sh[] =
    "# akagent shell integration (@SH@): eval \"$(akctl hook @SH@)\" in your rc file.\n"
    "# ak: akctl, except that 'ak use PROFILE' and 'ak use --clear' switch this shell.\n"
    "ak() {\n"
    "\tif [ \"${1-}\" = use ]; then\n"
    "\t\tshift\n"
    "\t\tlocal __ak_out\n"
    "\t\t__ak_out=$(command akctl use --shell @SH@ \"$@\") || return\n"
    "\t\teval \"$__ak_out\"\n"
    "\t\tunset __ak_out\n"
    "\telse\n"
    "\t\tcommand akctl \"$@\"\n"
    "\tfi\n"
    "}\n"
    "# ak_prompt: \"[PROFILE] \" while a profile is active, e.g. PS1='$(ak_prompt)'\"$PS1\"\n"
    "ak_prompt() {\n"
    "\t[ -n \"${AKCTL_PROFILE-}\" ] && printf '[%s] ' \"$AKCTL_PROFILE\"\n"
    "\treturn 0\n"
    "}\n";

/* Per-directory profiles: akctl dir-env at every prompt (and on cd). It prints nothing, and asks no
 * agent, unless the .akprofile in effect or the allow list changed; $? is kept for the prompt. */
static const char direnv_sh[] =
    "# .akprofile: an allowed file switches this shell to its profile here, leaving restores.\n"
    "__ak_direnv() {\n"
    "\tlocal __ak_st=$? __ak_out\n"
    "\t__ak_out=$(command akctl dir-env --shell @SH@) && [ -n \"$__ak_out\" ] && eval \"$__ak_out\"\n"
    "\treturn $__ak_st\n"
    "}\n";

static const char direnv_bash[] =
    "case \";${PROMPT_COMMAND-};\" in\n"
    "*\";__ak_direnv;\"*) ;;\n"
    "*) PROMPT_COMMAND=\"__ak_direnv${PROMPT_COMMAND:+;$PROMPT_COMMAND}\" ;;\n"
    "esac\n";

static const char direnv_zsh[] =
    "autoload -Uz add-zsh-hook\n"
    "add-zsh-hook chpwd __ak_direnv\n"
    "add-zsh-hook precmd __ak_direnv\n";

static const char direnv_fish[] =
    "# .akprofile: an allowed file switches this shell to its profile here, leaving restores.\n"
    "function __ak_direnv --on-variable PWD --on-event fish_prompt\n"
    "    set -l __ak_out (command akctl dir-env --shell fish); or return 0\n"
    "    test -n \"$__ak_out\"; and string join \\n -- $__ak_out | source\n"
    "    return 0\n"
    "end\n";

static const char hook_fish[] =
    "# akagent shell integration (fish): akctl hook fish | source   (in config.fish)\n"
    "# ak: akctl, except that 'ak use PROFILE' and 'ak use --clear' switch this shell.\n"
    "function ak --wraps akctl --description 'akctl; ak use switches this shell'\n"
    "    if test (count $argv) -ge 1; and test \"$argv[1]\" = use\n"
    "        set -l __ak_out (command akctl use --shell fish $argv[2..-1]); or return\n"
    "        string join \\n -- $__ak_out | source\n"
    "    else\n"
    "        command akctl $argv\n"
    "    end\n"
    "end\n"
    "# ak_prompt: \"[PROFILE] \" while a profile is active (call it from fish_prompt).\n"
    "function ak_prompt\n"
    "    set -q AKCTL_PROFILE; and test -n \"$AKCTL_PROFILE\"; and printf '[%s] ' $AKCTL_PROFILE\n"
    "    return 0\n"
    "end\n";

/* text with every "@SH@" replaced by sh. */
static void
put_sub(const char *text, const char *sh)
{
	const char *at;

	while ((at = strstr(text, "@SH@")) != NULL) {
		fwrite(text, 1, (size_t)(at - text), stdout);
		fputs(sh, stdout);
		text = at + 4;
	}
	fputs(text, stdout);
}

enum ak_err
cmd_hook(struct cli *c, int argc, char **argv)
{
	const char *sh;
	int helped;
	enum ak_err rc;

	if ((rc = cli_opts_help_only(c, argc, argv, &helped)) != AK_OK || helped)
		return rc;
	if (optind >= argc)
		return cli_usage_error(c, "missing shell (bash, zsh or fish)");
	if (optind + 1 != argc)
		return cli_usage_error(c, "unexpected argument '%s'", argv[optind + 1]);
	sh = argv[optind];
	if (strcmp(sh, "bash") == 0) {
		put_sub(hook_sh, "bash");
		put_sub(direnv_sh, "bash");
		fputs(direnv_bash, stdout);
		fputs(comp_bash, stdout);
	} else if (strcmp(sh, "zsh") == 0) {
		put_sub(hook_sh, "zsh");
		put_sub(direnv_sh, "zsh");
		fputs(direnv_zsh, stdout);
		/* The completion file is an autoloaded function's body: define the function from it. */
		printf("_akctl() {\n%s}\n", comp_zsh);
		fputs("if (( $+functions[compdef] )); then\n\tcompdef _akctl akctl ak\nfi\n", stdout);
	} else if (strcmp(sh, "fish") == 0) {
		fputs(hook_fish, stdout);
		fputs(direnv_fish, stdout);
		fputs(comp_fish, stdout);
		fputs("complete -c ak -w akctl\n", stdout);
	} else {
		return cli_usage_error(c, "unknown shell '%s' (bash, zsh or fish)", sh);
	}
	return AK_OK;
}
