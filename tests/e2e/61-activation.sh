#!/bin/bash
# Socket activation: a real LISTEN_FDS hand-off by systemd-socket-activate (what systemd's
# akagent.socket does), then akctl status/unlock/add/get through it, `akagent` printing the exports of
# the activated agent, and the activated socket refused when its directory or mode is not private.
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

SSA=$(command -v systemd-socket-activate) || skip "systemd-socket-activate not installed"
SCALE=${AK_TEST_TIMEOUT_SCALE:-1}

# activate DIR: systemd-socket-activate listening on DIR/agent.sock, running akagent -D on the first
# connection (it execs the agent: same pid; it passes on only the environment named with -E, like a
# unit). Sets SA_PID; its stdout/stderr go to $T/sa.out/$T/sa.err.
activate() {
	local sock=$1/agent.sock n=$((100 * SCALE))
	(umask 077 && exec "$SSA" -E HOME -E XDG_RUNTIME_DIR -E XDG_DATA_HOME -l "$sock" "$AKAGENT" -D >"$T/sa.out" 2>"$T/sa.err") &
	SA_PID=$!
	track_pid "$SA_PID"
	while [ ! -S "$sock" ] && [ "$n" -gt 0 ]; do
		sleep 0.05
		n=$((n - 1))
	done
	[ -S "$sock" ] || fail "systemd-socket-activate did not create $sock"
}

init_store
dir="$XDG_RUNTIME_DIR/akagent"
mkdir -m 0700 "$dir"
activate "$dir"

trace "akctl status through the activated socket (default path, no AKAGENT_SOCK)"
expect_exit 4 "$AKCTL" status
grep -q 'locked' "$OUT" || fail "status: $(cat "$OUT")"
grep -q "pid $SA_PID\|$SA_PID" "$OUT" || fail "status does not show the activated agent's pid $SA_PID: $(cat "$OUT")"
grep -q 'akagent' "/proc/$SA_PID/comm" || fail "pid $SA_PID is not akagent: $(cat "/proc/$SA_PID/comm")"

trace "eval \"\$(akagent)\" just prints the activated agent's exports"
expect_exit 0 "$AKAGENT" -s
grep -qx "AKAGENT_SOCK='$dir/agent.sock'; export AKAGENT_SOCK;" "$OUT" || fail "exports: $(cat "$OUT")"
grep -qx "AKAGENT_PID=$SA_PID; export AKAGENT_PID;" "$OUT" || fail "exports pid: $(cat "$OUT")"

trace "unlock, add, get through it"
unlock
KEY=$(fake_key)
add_profile work "$KEY"
expect_exit 0 "$AKCTL" get work
assert_bytes "$OUT" "$KEY"
[ -s "$T/sa.out" ] && fail "the activated agent wrote to stdout: $(cat "$T/sa.out")"

trace "the agent stops without removing systemd's socket"
expect_exit 0 "$AKAGENT" -s -k
wait_gone "$SA_PID" $((10 * SCALE)) || fail "activated agent did not exit on -k"
[ -S "$dir/agent.sock" ] || fail "the agent removed the socket systemd owns"
rm -f "$dir/agent.sock"

trace "a directory others can enter is refused"
open="$T/open"
mkdir -m 0755 "$open"
activate "$open"
AKAGENT_SOCK="$open/agent.sock" expect_exit nonzero "$AKCTL" status
wait_gone "$SA_PID" $((10 * SCALE)) || fail "agent with an unsafe directory did not exit"
grep -q "refusing the activated socket" "$T/sa.err" || fail "no refusal message: $(cat "$T/sa.err")"

trace "a socket created wider than 0600 (in a private directory) is made 0600"
mkdir -m 0700 "$T/wide"
(umask 000 && exec "$SSA" -E HOME -E XDG_RUNTIME_DIR -E XDG_DATA_HOME -l "$T/wide/agent.sock" "$AKAGENT" -D >"$T/sa.out" 2>"$T/sa.err") &
SA_PID=$!
track_pid "$SA_PID"
n=$((100 * SCALE))
while [ ! -S "$T/wide/agent.sock" ] && [ "$n" -gt 0 ]; do sleep 0.05; n=$((n - 1)); done
[ "$(stat -c %a "$T/wide/agent.sock")" != 600 ] || fail "test setup: socket is already 0600"
AKAGENT_SOCK="$T/wide/agent.sock" expect_exit 4 "$AKCTL" status
assert_eq "$(stat -c %a "$T/wide/agent.sock")" 600 "activated socket mode"
AKAGENT_SOCK="$T/wide/agent.sock" expect_exit 0 "$AKAGENT" -k

trace "LISTEN_PID of another process: the agent binds its own socket"
LISTEN_PID=1 LISTEN_FDS=1 start_agent -a "$T/own.sock"
[ "$AKAGENT_SOCK" = "$T/own.sock" ] || fail "agent did not bind its own socket"
expect_exit 4 "$AKCTL" status
trace ok
