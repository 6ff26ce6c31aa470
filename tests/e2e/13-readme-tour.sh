#!/bin/bash
# README's "A short tour", line by line, as a new user types it: at a terminal where it asks (a pty),
# with no network (every request fails to connect: an unused loopback port as the only proxy, and
# names that cannot resolve), in a fresh HOME. Each command tested here must still be in the README.
# (`systemctl --user enable --now akagent.socket` is the one line not run: 61-activation covers it.)
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

README="$TESTS_DIR/../README.md"
PTY=("$PY" "$TESTS_DIR/pty_run.py")
# Fixed, not random: a passphrase typed at a terminal is scored, and cracklib calls some random strings
# "systematic".
PW="Tour-Quill-7f3e9a-Harbor"
KEY=$(fake_key)
KEY2=$(fake_key)
OKEY="sk-proj-$(rand_word)$(rand_word)$(rand_word)"
BIN=$(dirname "$AKCTL")
export PATH="$BIN:$PATH" KEY
unset AKCTL_ASKPASS
# No network: nothing listens on this port, and every https request goes through it.
export https_proxy=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9

trace "each command below is still in the README's tour"
tour=$(sed -n '/^## A short tour/,/^## /p' "$README")
for cmd in 'eval "$(akagent)"' 'akctl init' 'akctl unlock' 'printf %s "$KEY" | akctl add production \' \
	'--set ANTHROPIC_MODEL=claude-sonnet-4-5-20250929 --set MAX_TOKENS=1024' 'akctl add staging' \
	'akctl add openai-dev --provider openai --var OPENAI_API_KEY' 'akctl list' 'akctl show production' \
	'eval "$(akctl use production)"' 'eval "$(akctl use staging)"' \
	"akctl exec openai-dev -- sh -c 'echo \"\${ANTHROPIC_API_KEY:-unset}\"'" 'eval "$(akctl use --clear)"' \
	'eval "$(akctl hook bash)"' 'akctl lock' 'akctl get production | wc -c' 'akctl rm staging' \
	'eval "$(akagent -k)"'; do
	grep -qF -- "$cmd" <<<"$tour" || fail "the README's tour no longer has: $cmd"
done

cat > "$T/tour.bash" <<'SH'
set -u
PTY=("$PY" "$TESTS_DIR/pty_run.py")
step() { echo "== $*" >&2; }
step agent; eval "$(akagent)" || exit 10
step init; "${PTY[@]}" --expect "New passphrase" --send "$PW" --expect Repeat --send "$PW" -- akctl init \
	> "$T/init.tty" || exit 11
step unlock; "${PTY[@]}" --expect "assphrase" --send "$PW" -- akctl unlock > "$T/unlock.tty" || exit 12
step add production; printf %s "$KEY" | akctl add production \
    --set ANTHROPIC_MODEL=claude-sonnet-4-5-20250929 --set MAX_TOKENS=1024 || exit 13
step add staging; "${PTY[@]}" --timeout 60 --expect "Secret for staging" --send "$KEY2" -- akctl add staging \
	> "$T/staging.tty" || exit 14
step add openai-dev; "${PTY[@]}" --timeout 60 --expect "Secret for openai-dev" --send "$OKEY" -- \
	akctl add openai-dev --provider openai --var OPENAI_API_KEY > "$T/openai.tty" || exit 15
step list; akctl list > "$T/list" || exit 16
step show; akctl show production > "$T/show" || exit 17
step use; eval "$(akctl use production)" || exit 18
[ "$ANTHROPIC_API_KEY" = "$KEY" ] && [ "$ANTHROPIC_MODEL" = claude-sonnet-4-5-20250929 ] || exit 19
eval "$(akctl use staging)" || exit 20
[ "$ANTHROPIC_API_KEY" = "$KEY2" ] && [ -z "${ANTHROPIC_MODEL+set}" ] || exit 21
akctl exec openai-dev -- sh -c 'echo "${ANTHROPIC_API_KEY:-unset}"' > "$T/exec" || exit 22
eval "$(akctl use --clear)" || exit 23
[ -z "${ANTHROPIC_API_KEY+set}" ] || exit 24
step console; "${PTY[@]}" --expect "ak> " --send list --expect "openai-dev" --send exit -- akctl \
	> "$T/console.tty" || exit 25
step hook; eval "$(akctl hook bash)" || exit 26
ak use production || exit 27
[ "$ANTHROPIC_API_KEY" = "$KEY" ] && [ "$(ak_prompt)" = "[production] " ] || exit 28
step lock; akctl lock || exit 29
step get; "${PTY[@]}" --stdout "$T/get.out" --expect "assphrase" --send "$PW" -- akctl get production \
	> "$T/get.tty" || exit 30
[ "$(wc -c < "$T/get.out")" -eq 108 ] || exit 31
step rm; akctl rm staging || exit 32
step stop; pid=$AKAGENT_PID
echo "$pid" > "$T/agent.pid"
eval "$(akagent -k)" || exit 33
[ -z "${ANTHROPIC_API_KEY+set}" ] && [ -z "${AKAGENT_PID+set}" ] || exit 34
SH
export PW KEY2 OKEY PY TESTS_DIR T
expect_exit 0 bash "$T/tour.bash"
[ -s "$T/agent.pid" ] && ! wait_gone "$(cat "$T/agent.pid")" 10 && { track_pid "$(cat "$T/agent.pid")"; fail "akagent -k left the agent running"; }
grep -q "created keystore" "$T/init.tty" || fail "init: $(cat "$T/init.tty")"
grep -q "unlocked: 0 profiles; locks at [0-9][0-9]:[0-9][0-9] or after 1h idle" "$T/unlock.tty" ||
	fail "unlock: $(cat "$T/unlock.tty")"
for f in staging openai; do
	grep -q "network failure" "$T/$f.tty" || fail "add $f without network: $(cat "$T/$f.tty")"
	grep -q "storing it unverified" "$T/$f.tty" || fail "add $f without network: not stored unverified"
done
grep -q "added profile staging" "$T/staging.tty" || fail "add staging: $(cat "$T/staging.tty")"
assert_eq "$(awk 'NR > 1 {print $1}' "$T/list" | tr '\n' ' ')" "openai-dev production staging " "list"
grep -q "^variables:   ANTHROPIC_MODEL=claude-sonnet-4-5-20250929" "$T/show" || fail "show: $(cat "$T/show")"
assert_bytes "$T/exec" $'unset\n'
grep -q "openai-dev" "$T/console.tty" || fail "console: $(cat "$T/console.tty")"
for f in "$T"/*.tty "$T/list" "$T/show" "$ERR"; do
	for k in "$KEY" "$KEY2" "$OKEY" "$PW"; do
		assert_no_secret "$f" "$k" "$(basename "$f")"
	done
done
exit 0
