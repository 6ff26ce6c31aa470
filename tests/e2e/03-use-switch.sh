#!/bin/bash
# eval "$(akctl use staging)" then "$(akctl use production)" leaves no staging variable behind, in every
# shell; exec leaves the calling shell untouched and passes the command's exit status.
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

KP=$(fake_key)
KS=$(fake_key)
init_store
start_agent
unlock
add_profile production "$KP" --set SHARED=prod --set PROD_ONLY=p
add_profile staging "$KS" --set SHARED=staging --set STAGING_ONLY=1
add_profile openai-dev "$(fake_key)" --var OPENAI_API_KEY --provider openai
export T AKCTL

# What each shell reports after `use staging` + `use production`, one variable a line:
# ANTHROPIC_API_KEY SHARED PROD_ONLY STAGING_ONLY AKCTL_PROFILE OPENAI_API_KEY
# (printenv prints a value and a newline, nothing for an unset variable).
expected=$(printf '%s\n' "$KP" prod p production)$'\n'

trace "bash"
cat > "$T/u.bash" <<'SH'
eval "$("$AKCTL" use staging)" || exit 10
[ "$STAGING_ONLY" = 1 ] && [ "$AKCTL_PROFILE" = staging ] || exit 11
eval "$("$AKCTL" use production)" || exit 12
printenv ANTHROPIC_API_KEY SHARED PROD_ONLY STAGING_ONLY AKCTL_PROFILE > "$T/bash.out"
[ -z "${STAGING_ONLY+x}" ] || exit 13	# not even an unexported shell variable left
eval "$("$AKCTL" use openai-dev)" || exit 14
printenv ANTHROPIC_API_KEY SHARED PROD_ONLY AKCTL_PROFILE > "$T/bash.out2"
exit 0
SH
expect_exit 0 env SHELL=/bin/bash bash "$T/u.bash"
assert_bytes "$T/bash.out" "$expected"
assert_bytes "$T/bash.out2" $'openai-dev\n'

trace "dash"
cat > "$T/u.dash" <<'SH'
eval "$("$AKCTL" use staging)" || exit 10
eval "$("$AKCTL" use production)" || exit 12
printenv ANTHROPIC_API_KEY SHARED PROD_ONLY STAGING_ONLY AKCTL_PROFILE > "$T/dash.out"
exit 0
SH
expect_exit 0 env SHELL=/bin/sh dash "$T/u.dash"
assert_bytes "$T/dash.out" "$expected"

trace "zsh"
cat > "$T/u.zsh" <<'SH'
eval "$("$AKCTL" use staging)" || exit 10
eval "$("$AKCTL" use production)" || exit 12
printenv ANTHROPIC_API_KEY SHARED PROD_ONLY STAGING_ONLY AKCTL_PROFILE > "$T/zsh.out"
exit 0
SH
expect_exit 0 env SHELL=/usr/bin/zsh zsh -f "$T/u.zsh"
assert_bytes "$T/zsh.out" "$expected"

trace "fish"
cat > "$T/u.fish" <<'SH'
$AKCTL use staging | source; or exit 10
$AKCTL use production | source; or exit 12
printenv ANTHROPIC_API_KEY SHARED PROD_ONLY STAGING_ONLY AKCTL_PROFILE > $T/fish.out
if set -q STAGING_ONLY; exit 13; end
exit 0
SH
expect_exit 0 env SHELL=/usr/bin/fish fish --no-config "$T/u.fish"
assert_bytes "$T/fish.out" "$expected"

trace "tcsh"
cat > "$T/u.tcsh" <<'SH'
eval "`$AKCTL use staging`"
eval "`$AKCTL use production`"
/usr/bin/printenv ANTHROPIC_API_KEY SHARED PROD_ONLY STAGING_ONLY AKCTL_PROFILE > $T/tcsh.out
exit 0
SH
expect_exit 0 env SHELL=/usr/bin/tcsh tcsh -f "$T/u.tcsh"
assert_bytes "$T/tcsh.out" "$expected"

trace "use when AKCTL_PROFILE names a profile that is gone"
add_profile gone "$(fake_key)" --set GONE_ONLY=1
cat > "$T/u2.bash" <<'SH'
eval "$("$AKCTL" use gone)" || exit 10
"$AKCTL" rm gone >/dev/null || exit 11
eval "$("$AKCTL" use staging)" || exit 12
printenv AKCTL_PROFILE STAGING_ONLY > "$T/gone.out"
SH
expect_exit 0 env SHELL=/bin/bash bash "$T/u2.bash"
assert_bytes "$T/gone.out" $'staging\n1\n'

trace "use with a locked agent prints nothing to eval"
expect_exit 0 "$AKCTL" lock
expect_exit 4 "$AKCTL" use production
[ -s "$OUT" ] && fail "use printed something while locked"
unlock

trace "exec: the calling shell is untouched, the status is the command's, no akctl lingers"
cat > "$T/x.bash" <<'SH'
"$AKCTL" exec staging -- printenv ANTHROPIC_API_KEY STAGING_ONLY AKCTL_PROFILE > "$T/exec.out" || exit 10
[ -z "${ANTHROPIC_API_KEY+x}${STAGING_ONLY+x}${AKCTL_PROFILE+x}" ] || exit 11
"$AKCTL" exec staging -- sh -c 'exit 3'
echo $? > "$T/exec.rc"
# exec replaces akctl: the command's parent is this shell, not an akctl process
"$AKCTL" exec staging -- sh -c 'cat /proc/$PPID/comm' > "$T/exec.parent"
# exec from a shell that already uses production: the profile's values win
eval "$("$AKCTL" use production)"
"$AKCTL" exec staging -- printenv ANTHROPIC_API_KEY SHARED > "$T/exec.over"
printenv ANTHROPIC_API_KEY > "$T/exec.after"
SH
expect_exit 0 env SHELL=/bin/bash bash "$T/x.bash"
assert_bytes "$T/exec.out" "$KS"$'\n1\nstaging\n'
assert_bytes "$T/exec.rc" $'3\n'
assert_bytes "$T/exec.parent" $'bash\n'
assert_bytes "$T/exec.over" "$KS"$'\nstaging\n'
assert_bytes "$T/exec.after" "$KP"$'\n'
expect_exit 127 "$AKCTL" exec staging -- sh -c 'exit 127'
expect_exit 2 "$AKCTL" exec staging
trace ok
