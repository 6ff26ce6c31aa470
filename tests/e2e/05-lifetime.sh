#!/bin/bash
# Auto-lock: akagent -t 2s, akctl unlock -t 2s, --idle 2s; SIGUSR1 and SIGHUP lock without exiting.
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

# Poll (up to $1 s) until status says locked (exit 4): no fixed sleep decides the outcome.
wait_locked() {
	local i
	for ((i = 0; i < $1 * 10; i++)); do
		"$AKCTL" --no-prompt status >/dev/null 2>&1
		[ $? -eq 4 ] && return 0
		sleep 0.1
	done
	return 1
}

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

trace "unlock on an unlocked agent never extends the lifetime without the passphrase"
start_agent -t 3s
unlock
sleep 1
expect_exit 0 "$AKCTL" unlock	# nothing asked, nothing changed
grep -q "already unlocked" "$ERR" || fail "unlock on an unlocked agent did not say so"
expect_exit 1 "$AKCTL" unlock -t 1h	# longer: needs the passphrase (askpass fails here)
grep -q "a longer lifetime needs the passphrase" "$ERR" || fail "unlock -t 1h: no reason given"
expect_exit 1 "$AKCTL" unlock -t 0	# no limit: the same
# The agent itself refuses, whoever asks: UNLOCK with no key may not extend (error 20, DENIED).
for life in 3600 4294967295 0; do
	run "$PY" "$TESTS_DIR/rawclient.py" relife "$AKAGENT_SOCK" "$life"
	assert_bytes "$OUT" $'error 20\n'
done
wait_locked 30 || fail "the lifetime was extended without the passphrase"
stop_agent

trace "unlock -t shortens an unlocked agent's lifetime without the passphrase"
start_agent -t 1h
unlock
expect_exit 0 "$AKCTL" unlock -t 1s
wait_locked 30 || fail "unlock -t 1s did not shorten the lifetime"
stop_agent

trace "unlock -t 1h with the passphrase extends it"
start_agent -t 2s
unlock
expect_exit 0 "$AKCTL" --passphrase-fd 3 unlock -t 1h 3<<<"$PASS"
sleep 3
expect_exit 0 "$AKCTL" get p
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
