#!/bin/bash
# Auto-lock: akagent -t 2s, akctl unlock -t 2s, --idle 2s; SIGUSR1 and SIGHUP lock without exiting.
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

KEY=$(fake_key)
init_store
add_profile p "$KEY"	# no agent yet: written to the file directly

trace "akagent -t 2s: unlocked, then locked after ~3 s"
start_agent -t 2s
unlock
expect_exit 0 "$AKCTL" status
expect_exit 0 "$AKCTL" get p
assert_bytes "$OUT" "$KEY"
sleep 1
expect_exit 0 "$AKCTL" get p	# a request does not extend the lifetime...
sleep 2.2
expect_exit 4 "$AKCTL" status	# ...so it is locked 3.2 s after unlock
expect_exit 4 "$AKCTL" get p
kill -0 "$AKAGENT_PID" || fail "agent exited when its lifetime ran out"

stop_agent

trace "unlock on an unlocked agent resets the lifetime"
start_agent -t 3s
unlock
sleep 2
expect_exit 0 "$AKCTL" unlock
sleep 2
expect_exit 0 "$AKCTL" status	# 4 s after the first unlock, 2 s after the reset
sleep 2
expect_exit 4 "$AKCTL" status
stop_agent

trace "akctl unlock -t 2s overrides the agent's default lifetime"
start_agent
unlock -t 2s
expect_exit 0 "$AKCTL" get p
sleep 3
expect_exit 4 "$AKCTL" get p
trace "akctl unlock -t 0 (no limit) overrides akagent -t 1s"
stop_agent
start_agent -t 1s
unlock -t 0
sleep 2
expect_exit 0 "$AKCTL" get p
expect_exit 2 "$AKCTL" --passphrase-fd 3 unlock -t nonsense 3<<<"$PASS"
stop_agent

trace "--idle 2s: locks after 2 s without a request"
start_agent --idle 2s
unlock
sleep 1
expect_exit 0 "$AKCTL" get p	# activity keeps it open
sleep 1.2
expect_exit 0 "$AKCTL" get p
sleep 3
expect_exit 4 "$AKCTL" status
stop_agent

trace "SIGUSR1 and SIGHUP lock without exiting"
start_agent
unlock
expect_exit 0 "$AKCTL" status
kill -USR1 "$AKAGENT_PID"
sleep 0.5
expect_exit 4 "$AKCTL" status
unlock
kill -HUP "$AKAGENT_PID"
sleep 0.5
expect_exit 4 "$AKCTL" status
kill -0 "$AKAGENT_PID" || fail "agent exited on SIGHUP"
unlock
expect_exit 0 "$AKCTL" get p
assert_bytes "$OUT" "$KEY"

trace "bad durations are usage errors"
expect_exit nonzero "$AKAGENT" -s -t 5parsecs -a "$T/x.sock"
[ -e "$T/x.sock" ] && fail "akagent with a bad -t bound a socket"
stop_agent
trace ok
