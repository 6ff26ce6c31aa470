#!/bin/bash
# The readline console driven through tmux (send-keys, capture-pane): `akctl` alone on a terminal opens
# it; the prompt shows the state and the active profile; Tab completes a profile name and an option;
# `add` reads the secret with echo off (the secret never appears on screen); a pasted key is neither run
# nor recorded; the history file is 0600 and holds no secret. The console completes every command of
# `akctl --help` (its table is generated from akctl's). akctl itself never loads libreadline.
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

command -v tmux >/dev/null || skip "tmux not installed"
SCALE=${AK_TEST_TIMEOUT_SCALE:-1}

trace "akctl does not link readline; akctl-shell does"
ldd "$AKCTL" | grep readline >/dev/null && fail "akctl links libreadline"
ldd "$(dirname "$AKCTL")/akctl-shell" | grep readline >/dev/null || fail "akctl-shell does not link libreadline"
expect_exit 2 "$AKCTL"	# not a terminal: no console, the usual usage error
grep -q 'missing command' "$ERR" || fail "akctl without a terminal: $(cat "$ERR")"

init_store
start_agent
unlock
add_profile production "$(fake_key)"
add_profile staging "$(fake_key)"
export XDG_STATE_HOME="$T/state"

TM=(tmux -S "$T/tmux.sock")
"${TM[@]}" -f /dev/null new-session -d -x 160 -y 50 "$AKCTL" || fail "tmux new-session failed"
track_pid "$("${TM[@]}" display-message -p '#{pid}')"

screen() { "${TM[@]}" capture-pane -p -J -S -200; }
# wait_screen REGEX: poll the pane until a line matches.
wait_screen() {
	local n=$((200 * SCALE))
	while [ "$n" -gt 0 ]; do
		screen >"$T/screen" 2>/dev/null
		grep -qE -- "$1" "$T/screen" && return 0
		sleep 0.05
		n=$((n - 1))
	done
	echo "--- screen:" >&2
	cat "$T/screen" >&2
	fail "screen never showed /$1/"
}
keys() { "${TM[@]}" send-keys "$@"; }

trace "console starts unlocked, no profile"
wait_screen '^ak> $'

trace "Tab completes a profile name, use switches the prompt"
keys 'use pro' Tab
wait_screen '^ak> use production $'
keys Enter
wait_screen '^ak\[production\]> $'

trace "Tab completes an option"
keys 'list --na' Tab
wait_screen '^ak\[production\]> list --names $'
keys Enter
wait_screen '^staging$'

trace "the console knows every command of akctl --help, and completes them and their arguments"
expect_exit 0 "$AKCTL" --help
sed -n '/^commands:$/,/^$/s/^  \([a-z][a-z-]*\) .*/\1/p' "$OUT" >"$T/cmds"
[ "$(wc -l <"$T/cmds")" -ge 25 ] || fail "akctl --help lists only $(wc -l <"$T/cmds") commands"
keys 'help' Enter
wait_screen '^commands: '
line=$(grep '^commands: ' "$T/screen" | tail -n 1)
while read -r c; do
	case " $line " in *" $c "*) ;; *) fail "the console's help lacks $c: $line" ;; esac
done <"$T/cmds"
keys 'rena' Tab
wait_screen '^ak\[production\]> rename $'
keys 'sta' Tab
wait_screen '^ak\[production\]> rename staging $'
keys C-u 'unlock --life' Tab
wait_screen '^ak\[production\]> unlock --lifetime *$'
keys C-u 'help di' Tab
wait_screen '^ak\[production\]> help dir-env *$'
keys C-u 'dir-env --shell fi' Tab
wait_screen '^ak\[production\]> dir-env --shell fish *$'
keys C-u

trace "add reads the secret with echo off"
KEY=$(fake_key)
keys 'add newprof --no-validate' Enter
wait_screen 'Secret for newprof: '
keys -l "$KEY"
keys Enter
wait_screen 'added profile newprof'
screen | grep -F -- "$KEY" >/dev/null && fail "the secret was echoed"

trace "a pasted key is neither run nor recorded"
keys -l "$KEY"
keys Enter
wait_screen 'looks like it holds a key'
keys -l -- "add other --set TOKEN=$KEY"
keys Enter
n=$((200 * SCALE))
while [ "$(screen | grep -c 'looks like it holds a key')" != 2 ] && [ "$n" -gt 0 ]; do sleep 0.05; n=$((n - 1)); done
[ "$(screen | grep -c 'looks like it holds a key')" = 2 ] || fail "a --set VAR=KEY line was not refused"
expect_exit 5 "$AKCTL" show other

trace "lock shows in the prompt"
keys 'lock' Enter
wait_screen '^ak\[locked\]> $'
keys 'exit' Enter
n=$((100 * SCALE))
while "${TM[@]}" has-session 2>/dev/null && [ "$n" -gt 0 ]; do sleep 0.05; n=$((n - 1)); done
"${TM[@]}" has-session 2>/dev/null && fail "console did not exit"

trace "history: 0600, the commands, no secret"
H="$XDG_STATE_HOME/akagent/history"
[ -f "$H" ] || fail "no history file at $H"
assert_eq "$(stat -c %a "$H")" 600 "history mode"
assert_eq "$(stat -c %a "$(dirname "$H")")" 700 "history directory mode"
grep -qx 'use production' "$H" || fail "history lacks 'use production': $(cat "$H")"
grep -qx 'add newprof --no-validate' "$H" || fail "history lacks the add line"
grep -qx 'lock' "$H" || fail "history lacks 'lock'"
assert_no_secret "$H" "$KEY" "history"
assert_no_secret "$H" "${KEY:20:30}" "history"
trace ok
