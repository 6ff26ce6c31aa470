#!/bin/bash
# A keystore write never holds up the agent's other clients: while an ADD waits for the keystore's
# writer lock (held here by another process), GET, LIST and STATUS are answered; once the lock is let
# go the ADD completes, and a write whose client hung up meanwhile still lands.
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

init_store
start_agent
unlock
KEY=$(fake_key)
add_profile first "$KEY"
STORE_FILE="$XDG_DATA_HOME/akagent/keystore"
printf '%s' "$(fake_key)" > "$T/second"

# The writer thread, by the name the agent gives it; "" when this kernel shows no thread names.
writer_tid() {
	local t
	for t in /proc/"$AKAGENT_PID"/task/*; do
		[ "$(cat "$t/comm" 2>/dev/null)" = akagent-writer ] && { echo "${t##*/}"; return; }
	done
}
# 0 once the writer thread sleeps in the keystore lock's retry loop (not idle on its condition).
writer_waits_for_lock() {
	local w
	w=$(cat "/proc/$AKAGENT_PID/task/$WTID/wchan" 2>/dev/null)
	[ -n "$w" ] && [ "$w" != 0 ] && [ "${w#*futex}" = "$w" ]
}

trace "the agent runs a writer thread"
WTID=$(writer_tid)
[ -n "$WTID" ] || fail "no akagent-writer thread in /proc/$AKAGENT_PID/task"

trace "an ADD waits for the writer lock; reads go on meanwhile"
exec 8>"$STORE_FILE.lock"
flock -x 8 || fail "cannot take the keystore lock"
"$AKCTL" add second <"$T/second" >"$T/add.out" 2>"$T/add.err" &
ADD_PID=$!
wait_until 5 writer_waits_for_lock || fail "the writer thread never waited for the lock"
expect_exit 0 "$AKCTL" get first
assert_bytes "$OUT" "$KEY"
expect_exit 0 "$AKCTL" list
grep -q 'first' "$OUT" || fail "list: $(cat "$OUT")"
expect_exit 0 "$AKCTL" status
# Those answers came while the ADD was still waiting: its client has not had a reply.
kill -0 "$ADD_PID" 2>/dev/null || fail "the ADD finished before the lock was let go: $(cat "$T/add.err")"
flock -u 8
wait "$ADD_PID" || fail "add after the lock was let go: $(cat "$T/add.err")"
expect_exit 0 "$AKCTL" get second
assert_bytes "$OUT" "$(cat "$T/second")"

trace "a client that hangs up during its write: the write still lands, the agent goes on"
flock -x 8 || fail "cannot take the keystore lock"
"$AKCTL" rm second >/dev/null 2>&1 &
RM_PID=$!
wait_until 5 writer_waits_for_lock || fail "the writer thread never waited for the lock"
kill -KILL "$RM_PID"
wait "$RM_PID" 2>/dev/null
flock -u 8
exec 8>&-
wait_until 5 sh -c "! '$AKCTL' get second >/dev/null 2>&1" || fail "the removal never landed"
expect_exit 0 "$AKCTL" get first
assert_bytes "$OUT" "$KEY"
kill -0 "$AKAGENT_PID" || fail "agent died"

trace "a write starts from the file as it is: another agent's write to the same keystore is kept"
# This agent's last write left the file as it knows it; a second agent on the same keystore changes
# it, so this agent's next write must read the file again rather than start from what it holds.
A1_SOCK=$AKAGENT_SOCK A1_PID=$AKAGENT_PID
start_agent -a "$T/agent2.sock"
unlock
OTHER=$(fake_key)
add_profile other "$OTHER"
stop_agent
AKAGENT_SOCK=$A1_SOCK AKAGENT_PID=$A1_PID
add_profile third "$(fake_key)"
add_profile fourth "$(fake_key)"
expect_exit 0 "$AKCTL" rm third
# What the file holds, read afresh by a new unlock.
expect_exit 0 "$AKCTL" lock
unlock
expect_exit 0 "$AKCTL" get other
assert_bytes "$OUT" "$OTHER"
expect_exit 0 "$AKCTL" get first
assert_bytes "$OUT" "$KEY"
expect_exit 0 "$AKCTL" get fourth
expect_exit 5 "$AKCTL" get third
