#!/bin/bash
# Everyday use: exec isolates the command from what the shell loaded; switching profiles restores what
# use replaced, in every shell (bash dash zsh fish tcsh), with the agent locked or gone; the syntax
# follows the shell that evaluates it; a terminal gets no secret but a hint; a locked agent at a
# terminal asks the passphrase; help, did-you-mean, global options anywhere; hints before init.
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

PTY=("$PY" "$TESTS_DIR/pty_run.py")
KP=$(fake_key)
KS=$(fake_key)
KO=$(fake_key)

trace "before init: list and unlock say to run akctl init"
expect_exit 3 "$AKCTL" list
grep -q "run 'akctl init' first" "$ERR" || fail "list before init: no hint"
start_agent
expect_exit 4 "$AKCTL" list
grep -q "run 'akctl init' first" "$ERR" || fail "list before init (agent running): no hint"
expect_exit 1 "$AKCTL" unlock
grep -q "run 'akctl init' first" "$ERR" || fail "unlock before init: no hint"
stop_agent

init_store
start_agent
unlock
add_profile production "$KP" --set SHARED=prod --set HTTPS_PROXY=http://proxy.prod:3128
add_profile staging "$KS" --set SHARED=staging --set STAGING_ONLY=1 --set HOME=/nonexistent-staging
add_profile openai-dev "$KO" --var OPENAI_API_KEY --provider openai
export T AKCTL

trace "exec P gives the command P, not P plus what the shell had loaded"
cat > "$T/iso.bash" <<'SH'
export HTTPS_PROXY=http://mine:1 OTHER=keep-me
eval "$("$AKCTL" use production)" || exit 10
"$AKCTL" exec openai-dev -- env > "$T/iso.env" || exit 11
"$AKCTL" exec --keep SHARED openai-dev -- printenv SHARED > "$T/iso.keep" || exit 12
"$AKCTL" exec --clean openai-dev -- env > "$T/iso.clean" || exit 13
"$AKCTL" exec staging -- printenv HOME > "$T/iso.home" || exit 14
SH
expect_exit 0 env SHELL=/bin/bash bash "$T/iso.bash"
grep -q "^OPENAI_API_KEY=$KO\$" "$T/iso.env" || fail "exec: the profile's key is missing"
grep -q "ANTHROPIC_API_KEY\|^SHARED=\|^AKCTL_RESTORE=" "$T/iso.env" && fail "exec: production's variables reached the command"
grep -q "^HTTPS_PROXY=http://mine:1\$" "$T/iso.env" && fail "exec: a variable a profile defines reached the command"
grep -q "^OTHER=keep-me\$" "$T/iso.env" || fail "exec: an unrelated variable was dropped"
grep -q "^AKCTL_PROFILE=openai-dev\$" "$T/iso.env" || fail "exec: AKCTL_PROFILE is not the profile's"
assert_bytes "$T/iso.keep" $'prod\n'
grep -q "^OTHER=" "$T/iso.clean" && fail "exec --clean passed an unrelated variable"
grep -q "^PATH=" "$T/iso.clean" || fail "exec --clean dropped PATH"
grep -q "^HOME=" "$T/iso.clean" || fail "exec --clean dropped HOME"
assert_bytes "$T/iso.home" $'/nonexistent-staging\n'

# The switch test, one script per shell: values before use (with quotes, a newline, $ and a backslash)
# come back byte for byte after use production, use staging and use --clear; at the end the agent is
# locked (and then gone) and use --clear still works.
HOSTILE=$'it'"'"'s $HOME `x` \\ "q"\nline2'
export HOSTILE
expect_shell() {	# expect_shell NAME FILE: FILE holds 7 lines, as the scripts print them
	assert_bytes "$2" "$(printf '%s\n' \
		"after production: $KP|prod|http://proxy.prod:3128|production" \
		"after staging: $KS|staging|$HOSTILE|staging|1" \
		"after clear: unset|$HOSTILE|$HOSTILE|unset|unset")"$'\n'
}

trace "bash: switching restores, --clear works locked"
cat > "$T/sw.sh" <<'SH'
export SHARED="$HOSTILE" HTTPS_PROXY="$HOSTILE"
unset ANTHROPIC_API_KEY AKCTL_PROFILE STAGING_ONLY
eval "$("$AKCTL" use production)" || exit 10
printf 'after production: %s|%s|%s|%s\n' "$ANTHROPIC_API_KEY" "$SHARED" "$HTTPS_PROXY" "$AKCTL_PROFILE"
eval "$("$AKCTL" use staging)" || exit 11
printf 'after staging: %s|%s|%s|%s|%s\n' "$ANTHROPIC_API_KEY" "$SHARED" "$HTTPS_PROXY" "$AKCTL_PROFILE" "$STAGING_ONLY"
"$AKCTL" lock || exit 12
eval "$("$AKCTL" --no-prompt use --clear)" || exit 13
printf 'after clear: %s|%s|%s|%s|%s\n' "${ANTHROPIC_API_KEY-unset}" "$SHARED" "$HTTPS_PROXY" "${AKCTL_PROFILE-unset}" "${AKCTL_RESTORE-unset}"
SH
expect_exit 0 env SHELL=/usr/bin/fish bash "$T/sw.sh"
cp "$OUT" "$T/sw.bash.out"
expect_shell bash "$T/sw.bash.out"
unlock
trace "dash"
expect_exit 0 env SHELL=/usr/bin/fish dash "$T/sw.sh"
cp "$OUT" "$T/sw.dash.out"
expect_shell dash "$T/sw.dash.out"
unlock
trace "zsh"
expect_exit 0 env SHELL=/usr/bin/fish zsh -f "$T/sw.sh"
cp "$OUT" "$T/sw.zsh.out"
expect_shell zsh "$T/sw.zsh.out"
unlock

trace "fish (started from bash, SHELL=/bin/bash: the syntax follows fish)"
cat > "$T/sw.fish" <<'SH'
set -gx SHARED $HOSTILE; set -gx HTTPS_PROXY $HOSTILE
$AKCTL use production | source; or exit 10
printf 'after production: %s|%s|%s|%s\n' "$ANTHROPIC_API_KEY" "$SHARED" "$HTTPS_PROXY" "$AKCTL_PROFILE"
$AKCTL use staging | source; or exit 11
printf 'after staging: %s|%s|%s|%s|%s\n' "$ANTHROPIC_API_KEY" "$SHARED" "$HTTPS_PROXY" "$AKCTL_PROFILE" "$STAGING_ONLY"
$AKCTL lock; or exit 12
$AKCTL --no-prompt use --clear | source; or exit 13
set -q ANTHROPIC_API_KEY; and set a $ANTHROPIC_API_KEY; or set a unset
set -q AKCTL_PROFILE; and set p $AKCTL_PROFILE; or set p unset
set -q AKCTL_RESTORE; and set r $AKCTL_RESTORE; or set r unset
printf 'after clear: %s|%s|%s|%s|%s\n' $a "$SHARED" "$HTTPS_PROXY" $p $r
SH
expect_exit 0 env SHELL=/bin/bash fish --no-config "$T/sw.fish"
cp "$OUT" "$T/sw.fish.out"
expect_shell fish "$T/sw.fish.out"
unlock

trace "tcsh (SHELL=/bin/bash: the syntax follows tcsh)"
cat > "$T/sw.tcsh" <<'SH'
eval "`$AKCTL use production`"
printf 'after production: %s|%s|%s|%s\n' "$ANTHROPIC_API_KEY" "$SHARED" "$HTTPS_PROXY" "$AKCTL_PROFILE"
eval "`$AKCTL use staging`"
/usr/bin/printenv ANTHROPIC_API_KEY SHARED HTTPS_PROXY AKCTL_PROFILE STAGING_ONLY > $T/tcsh.st
$AKCTL lock
eval "`$AKCTL --no-prompt use --clear`"
/usr/bin/printenv ANTHROPIC_API_KEY SHARED HTTPS_PROXY AKCTL_PROFILE AKCTL_RESTORE > $T/tcsh.cl
exit 0
SH
# tcsh reads the hostile values from its environment; printf in tcsh would expand them, printenv does not.
expect_exit 0 env SHELL=/bin/bash SHARED="$HOSTILE" HTTPS_PROXY="$HOSTILE" tcsh -f "$T/sw.tcsh"
assert_bytes "$OUT" "after production: $KP|prod|http://proxy.prod:3128|production"$'\n'
assert_bytes "$T/tcsh.st" "$(printf '%s\n' "$KS" staging "$HOSTILE" staging 1)"$'\n'
assert_bytes "$T/tcsh.cl" "$(printf '%s\n' "$HOSTILE" "$HOSTILE")"$'\n'
unlock

trace "akagent -k restores what use replaced; use --clear with the agent gone"
cat > "$T/kill.sh" <<'SH'
export SHARED=mine
eval "$("$AKCTL" use production)" || exit 10
saved=$AKCTL_RESTORE
eval "$("$AKAGENT" -k)" >/dev/null || exit 11
printf '%s|%s|%s\n' "${ANTHROPIC_API_KEY-unset}" "$SHARED" "${AKCTL_PROFILE-unset}"
export AKCTL_RESTORE=$saved ANTHROPIC_API_KEY=x AKCTL_PROFILE=production
eval "$("$AKCTL" use --clear)" || exit 12
printf '%s|%s|%s\n' "${ANTHROPIC_API_KEY-unset}" "$SHARED" "${AKCTL_RESTORE-unset}"
SH
expect_exit 0 env AKAGENT="$AKAGENT" bash "$T/kill.sh"
assert_bytes "$OUT" $'unset|mine|unset\nunset|mine|unset\n'
wait_gone "$AKAGENT_PID" 20 || fail "akagent -k left the agent running"
unset AKAGENT_SOCK AKAGENT_PID

trace "akagent from fish prints fish syntax (SHELL=/bin/bash); --shell NAME"
expect_exit 0 env SHELL=/bin/bash fish --no-config -c "$AKAGENT -a $T/s2 | source; and echo \$AKAGENT_SOCK \$AKAGENT_PID"
pid=$(awk '{print $2}' "$OUT")
track_pid "$pid"
[ "$(awk '{print $1}' "$OUT")" = "$T/s2" ] || fail "akagent run by fish did not print fish syntax"
kill "$pid"
expect_exit 0 env SHELL=/usr/bin/fish "$AKAGENT" --shell tcsh -a "$T/s3"
grep -q "^setenv AKAGENT_SOCK '$T/s3';" "$OUT" || fail "akagent --shell tcsh"
track_pid "$(sed -n 's/^setenv AKAGENT_PID \([0-9]*\);$/\1/p' "$OUT")"
expect_exit 2 "$AKAGENT" --shell cmd -a "$T/s4"
start_agent
unlock

trace "a terminal gets a hint, not a secret; --reveal prints"
expect_exit 1 "${PTY[@]}" -- "$AKCTL" use production
assert_no_secret "$OUT" "$KP"
grep -q 'eval "$(akctl use production)"' "$OUT" || fail "use to a terminal: no hint"
expect_exit 1 "${PTY[@]}" -- "$AKCTL" env production
assert_no_secret "$OUT" "$KP"
expect_exit 0 "${PTY[@]}" -- "$AKCTL" env production --reveal
grep -q "$KP" "$OUT" || fail "env --reveal did not print"
expect_exit 0 "${PTY[@]}" --stdout "$T/piped" -- "$AKCTL" env production
grep -q "$KP" "$T/piped" || fail "env to a pipe (stdin a terminal) did not print"

trace "locked at a terminal: asks, unlocks, carries on (3 tries); --no-prompt and no terminal: exit 4"
expect_exit 0 "$AKCTL" lock
expect_exit 0 "${PTY[@]}" --expect "Passphrase for" --send wrong --expect "Passphrase for" --send "$PASS" \
	--stdout "$T/env.out" -- env -u AKCTL_ASKPASS "$AKCTL" env production
grep -q "try again" "$OUT" || fail "a wrong passphrase was not asked again"
grep -q "unlocked: 3 profiles; locks at" "$OUT" || fail "no unlock report"
grep -q "$KP" "$T/env.out" || fail "env did not carry on after unlocking"
expect_exit 0 "${PTY[@]}" -- env -u AKCTL_ASKPASS "$AKCTL" lock
grep -q "^locked" "$OUT" || fail "lock did not confirm at a terminal"
expect_exit 4 "${PTY[@]}" -- env -u AKCTL_ASKPASS "$AKCTL" --no-prompt list
expect_exit 6 "${PTY[@]}" --expect "Passphrase for" --send a --expect "Passphrase for" --send b \
	--expect "Passphrase for" --send c -- env -u AKCTL_ASKPASS "$AKCTL" list
expect_exit 4 env -u AKCTL_ASKPASS setsid "$AKCTL" list </dev/null
printf '#!/bin/sh\nprintf "%%s\\n" "%s"\n' "$PASS" > "$T/askpass-ok"
chmod 0700 "$T/askpass-ok"
expect_exit 0 env AKCTL_ASKPASS="$T/askpass-ok" "$AKCTL" get production
assert_bytes "$OUT" "$KP"
expect_exit 0 "$AKCTL" lock
expect_exit 4 "$AKCTL" get production	# the failing askpass of lib.sh: still exit 4
expect_exit 0 "${PTY[@]}" --expect "Passphrase for" --send "$PASS" -- env -u AKCTL_ASKPASS "$AKCTL" show staging
grep -q "STAGING_ONLY" "$OUT" || fail "show did not carry on after unlocking"

trace "init asks again on a mismatch"
# A fixed strong passphrase: cracklib calls some random strings "systematic".
expect_exit 0 "${PTY[@]}" --expect "assphrase" --send one-pass-x1 --expect "Repeat" --send other \
	--expect "assphrase" --send "two-Pass-Quill-7f3e9a-Harbor-Vexed" --expect "Repeat" --send "two-Pass-Quill-7f3e9a-Harbor-Vexed" -- \
	env -u AKCTL_ASKPASS "$AKCTL" -f "$T/ks2" init --kdf insecure-test
grep -q "do not match, try again" "$OUT" || fail "init: no second chance on a mismatch"
[ -s "$T/ks2" ] || fail "init after a mismatch wrote no keystore"

trace "unlock at a terminal: a shorter -t needs nothing, a longer one asks"
expect_exit 0 "${PTY[@]}" -- env -u AKCTL_ASKPASS "$AKCTL" unlock -t 1h
grep -q "lifetime shortened" "$OUT" || fail "unlock -t 1h did not shorten the default 8h"
expect_exit 0 "${PTY[@]}" --expect "Passphrase for" --send "$PASS" -- env -u AKCTL_ASKPASS "$AKCTL" unlock -t 2h
grep -q "needs the passphrase" "$OUT" || fail "unlock -t 2h did not explain the prompt"

trace "add: an existing name is refused before the secret is asked"
expect_exit 1 "${PTY[@]}" -- "$AKCTL" add production
grep -q "profile exists" "$OUT" || fail "add of an existing name was not refused"
grep -q "Secret for" "$OUT" && fail "add asked for the secret of a name it then refused"

trace "add: a pasted key (wrapped line, spaces) arrives whole, none of it reaches the shell; no verdict stores"
KN=$(fake_key)
# Bracketed paste of "  KEY[:40] LF KEY[40:] LF", then Enter; the shell then reads what is left.
expect_exit 0 "${PTY[@]}" --expect "Secret for pasted" --send $'\e[200~  '"${KN:0:40}"$'\n'"${KN:40}"$'\n\e[201~' -- \
	env -u AKCTL_ASKPASS ANTHROPIC_BASE_URL=http://127.0.0.1:1 bash -c \
	'"$AKCTL" add pasted; echo "rc=$?"; read -r -t 1 left; echo "left=[$left]"'
grep -q "rc=0" "$OUT" || fail "add of a pasted key with no verdict did not store it"
grep -q "removed spaces and line breaks" "$OUT" || fail "add did not say it tidied the key"
grep -q "could not be verified" "$OUT" || fail "add did not warn that the key is unverified"
grep -q "left=\[\]" "$OUT" || fail "part of the pasted key reached the shell"
assert_no_secret "$OUT" "$KN"
expect_exit 0 "$AKCTL" get pasted
assert_bytes "$OUT" "$KN"

trace "help, CMD --help, did you mean, global options after the command"
expect_exit 0 "$AKCTL" help
grep -q "^  exec " "$OUT" || fail "help lists no commands"
expect_exit 0 "$AKCTL" help exec
grep -q -- "--keep VAR" "$OUT" && grep -q "man akctl" "$OUT" || fail "help exec: options or man pointer missing"
expect_exit 0 "$AKCTL" add --help
for o in --force --provider --var --set --description --validate --no-validate; do
	grep -q -- "^  $o" "$OUT" || fail "add --help does not list $o"
done
trace "option usage errors name the option and the command's help (exit 2)"
expect_exit 2 "$AKCTL" exec --bogus=x openai-dev -- true
[ "$(cat "$ERR")" = "akctl: exec: unknown option '--bogus' (see 'akctl exec --help')" ] || fail "exec --bogus: $(cat "$ERR")"
expect_exit 2 "$AKCTL" scan --json=1
[ "$(cat "$ERR")" = "akctl: scan: unknown option '--json' (see 'akctl scan --help')" ] || fail "scan --json=1: $(cat "$ERR")"
expect_exit 2 "$AKCTL" exec --env-file
[ "$(cat "$ERR")" = "akctl: exec: option '--env-file' needs an argument (see 'akctl exec --help')" ] ||
	fail "exec --env-file: $(cat "$ERR")"
expect_exit 2 "$AKCTL" exec $(for i in $(seq 17); do printf -- '--env-file f '; done) -- true
[ "$(cat "$ERR")" = "akctl: exec: at most 16 --env-file (see 'akctl exec --help')" ] || fail "17 --env-file: $(cat "$ERR")"
expect_exit 2 "$AKCTL" get -x openai-dev
[ "$(cat "$ERR")" = "akctl: get: unknown option '-x' (see 'akctl get --help')" ] || fail "get -x: $(cat "$ERR")"
# "--" as --env-file's argument is a file name; the next "--" ends the options (no PROFILE).
printf 'FROM_DASHES=yes\n' > "$T/--"
(cd "$T" && "$AKCTL" exec --env-file -- -- printenv FROM_DASHES) > "$T/dashes.out" || fail "exec --env-file --"
[ "$(cat "$T/dashes.out")" = yes ] || fail "exec --env-file --: $(cat "$T/dashes.out")"
expect_exit 2 "$AKCTL" lsit
grep -q "did you mean 'list'?" "$ERR" || fail "unknown command: no suggestion"
expect_exit 5 "$AKCTL" get prodution
grep -q "did you mean 'production'?" "$ERR" || fail "unknown profile: no suggestion"
expect_exit 0 "$AKCTL" list --no-prompt -f "$XDG_DATA_HOME/akagent/keystore"
grep -q "^production" "$OUT" || fail "global options after the command"
expect_exit 0 "$AKCTL" exec production -- sh -c 'echo "$1"' sh -f
assert_bytes "$OUT" $'-f\n'

trace "status --json and show --json: the schema, never a secret"
expect_exit 0 "$AKCTL" status --json
"$PY" -c 'import json,sys; o=json.load(open(sys.argv[1])); assert o["agent"]=="running" and o["unlocked"] is True and o["profiles"]==4 and o["keystore_exists"] is True and o["kdf"]["preset"]=="insecure-test", o' "$OUT" || fail "status --json"
expect_exit 0 "$AKCTL" show production --json
assert_no_secret "$OUT" "$KP"
"$PY" -c 'import json,sys; o=json.load(open(sys.argv[1])); assert o["name"]=="production" and o["secret_var"]=="ANTHROPIC_API_KEY" and o["vars"]["SHARED"]=="prod" and o["key"].startswith("sk-ant-api03-"), o' "$OUT" || fail "show --json"
expect_exit 0 "$AKCTL" lock
expect_exit 4 "$AKCTL" status --json
"$PY" -c 'import json,sys; o=json.load(open(sys.argv[1])); assert o["unlocked"] is False and "profiles" not in o, o' "$OUT" || fail "status --json locked"
trace ok
