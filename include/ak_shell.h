/* ak_shell.h - injection-proof export lines for every shell akctl claims.
 *
 * Every value arrives byte-for-byte when the output is evaluated the documented way:
 *   sh/bash/zsh/dash: eval "$(akctl env P)"       fish: akctl env P --shell fish | source
 *   csh/tcsh: eval "`akctl env P --shell tcsh`"   powershell: akctl env P --shell powershell | Invoke-Expression
 *   cmd: akctl env P --shell cmd > env.cmd & call env.cmd
 *   dotenv: python-dotenv / docker --env-file style file;   json: one object.
 * Output goes to a caller-supplied ak_buf (use a secure one: values are secrets).
 *
 * Encodings (lib/shell.c explains why; tests/unit/test_shell.c runs them in the real shells):
 *   sh:     export NAME='v';   ' \ -> \' \\ outside the quotes (so fish, which reads \' and \\ as
 *           escapes even inside '...', also sources it inertly and exactly, newlines aside)   unset NAME;
 *   fish:   set -gx NAME 'v';  \ ' newline -> \\ \' \n outside the quotes     set -e NAME;
 *   csh:    setenv NAME 'v';   ' ! -> \' \! outside the quotes, newline -> $'\n' (tcsh >= 6.23.01;
 *           older tcsh and BSD csh fail with "Illegal variable name."), a line holding bytes >= 0x80
 *           -> "`\printf '\ooo...'`" (tcsh mangles such bytes across 4 KiB of `...` output)
 *                                                      unsetenv NAME;
 *   powershell: $env:NAME = 'v'  ' and U+2018..U+201B doubled, controls but tab as [char]0xNN;
 *           value must be UTF-8; '' removes the variable there     Remove-Item Env:NAME -ErrorAction ...
 *   cmd:    @set NAME=v CRLF   %% and ^ before ^&|<>()" ; for delayed expansion OFF (the default);
 *           CR, LF, Ctrl-Z and invalid UTF-8 are AK_ERR_UNSUPPORTED; "" removes the variable there
 *   dotenv: NAME='v'           \ ' -> \\ \' (python-dotenv; read with interpolate=False); CR, a final
 *           \ and invalid UTF-8 are AK_ERR_UNSUPPORTED      (unset writes nothing)
 *   json:   {"NAME":"v",...}   " \ controls escaped, bytes >= 0x80 as they are (unset writes nothing)
 * On any error the buffer is left as it was on entry.
 */
#ifndef AK_SHELL_H
#define AK_SHELL_H

#include "ak_buf.h"
#include "ak_err.h"

enum ak_shell {
	AK_SHELL_SH = 0, /* also bash, zsh, dash, ksh */
	AK_SHELL_FISH,
	AK_SHELL_CSH,    /* also tcsh */
	AK_SHELL_POWERSHELL,
	AK_SHELL_CMD,
	AK_SHELL_DOTENV,
	AK_SHELL_JSON,
};

/* Parse a --shell argument: sh bash zsh dash ksh fish csh tcsh powershell pwsh cmd dotenv json. */
enum ak_err ak_shell_parse(const char *name, enum ak_shell *out);
/* The shell from $SHELL's basename (csh/tcsh, fish, pwsh/powershell), else sh. */
enum ak_shell ak_shell_from_env(void);
/* The shell that will evaluate our output: the parent process (/proc/PPID/exe, else its comm) when it
 * is a shell (sh dash bash zsh ksh mksh busybox fish csh tcsh pwsh), else ak_shell_from_env(). */
enum ak_shell ak_shell_detect(void);

/* Append a line that sets and exports name=value. name must already be a valid variable name.
 * AK_ERR_UNSUPPORTED when the shell cannot carry the value (cmd: CR or LF). For JSON, call
 * ak_shell_json_begin/end around the exports (they manage commas). */
enum ak_err ak_shell_export(struct ak_buf *out, enum ak_shell sh, const char *name, const char *value);
/* Append a line that removes name from the environment (no-op line for dotenv/json). */
enum ak_err ak_shell_unset(struct ak_buf *out, enum ak_shell sh, const char *name);
enum ak_err ak_shell_json_begin(struct ak_buf *out);
enum ak_err ak_shell_json_end(struct ak_buf *out);

/* Append value quoted as one word for sh. */
enum ak_err ak_shell_quote(struct ak_buf *out, enum ak_shell sh, const char *value);
/* Append akagent's line for name=value in the form ssh-agent prints, which scripts parse:
 * sh: NAME=VALUE; export NAME;  csh: setenv NAME VALUE;  fish: set -gx NAME VALUE;  (any other shell
 * gets the sh form). quote: value as one quoted word; else as it is (a number, such as the pid). */
enum ak_err ak_shell_agent_export(struct ak_buf *out, enum ak_shell sh, const char *name, const char *value,
    int quote);

#endif
