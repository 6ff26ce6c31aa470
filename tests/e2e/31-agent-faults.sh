#!/bin/bash
# Agent faults: clients vanishing mid-request, a client sending one byte a second, 10,000 connections
# that never send, a request of exactly the maximum size and one byte over, the descriptor limit
# (prlimit --nofile=64) with more clients than that, the memlock limit at 64 KiB with 200 profiles, the
# keystore deleted or replaced under an unlocked agent, and the socket file removed. Each time: no crash,
# no hang, clear errors, other clients still served. Helpers: tests/faults/clients.py.
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

CL="$TESTS_DIR/faults/clients.py"
MKSTORE=${AKMKSTORE:-$(dirname "$AKAGENT")/tests/stress/akmkstore}
STORE="$XDG_DATA_HOME/akagent/keystore"
KA=$(fake_key) KB=$(fake_key)

# alive LABEL: the current agent is running and answers STATUS.
alive() {
	kill -0 "$AKAGENT_PID" 2>/dev/null || fail "$1: the agent died"
	run timeout "$(scaled 10)" "$PY" "$CL" status "$AKAGENT_SOCK"
	[ "$(cat "$OUT")" = "reply 0x82" ] || fail "$1: the agent does not answer STATUS: $(cat "$OUT")"
}

# one_line LABEL: the last command failed with exactly one "akctl: " line on stderr.
one_line() {
	[ "$RC" -ne 0 ] && [ "$RC" -lt 126 ] || fail "$1: exit $RC, wanted a failure status"
	[ "$(grep -c . "$ERR")" = 1 ] && grep -q '^akctl: ' "$ERR" || fail "$1: not one akctl: line: $(cat "$ERR")"
	trace "  $1: exit $RC: $(cat "$ERR")"
}

init_store
start_agent
unlock
add_profile alpha "$KA" --set ANTHROPIC_MODEL=m1
add_profile beta "$KB"

trace "clients vanishing mid-request (200)"
expect_exit 0 timeout "$(scaled 30)" "$PY" "$CL" midreq "$AKAGENT_SOCK" 200
alive midreq
expect_exit 0 "$AKCTL" get alpha
assert_bytes "$OUT" "$KA"

trace "a client sending one byte a second (others served meanwhile)"
expect_exit 0 timeout "$(scaled 40)" "$PY" "$CL" slow "$AKAGENT_SOCK"
cat "$OUT" >&2
grep -q '^slow-status reply 0x82$' "$OUT" || fail "the slow STATUS (5 s) was not answered"
grep -q '^slow-get dropped' "$OUT" || fail "the 16 s GET was not dropped at the stall limit"
grep -q '^others [0-9]* served, worst [0-9.]* ms, [0-9]* while' "$OUT" || fail "others were not all served"
# An agent waiting on a dribbler's next byte answers nobody while that message is incomplete: count the
# STATUS requests answered from start to end while both dribblers were mid-message (no speed involved).
during=$(sed -n 's/^others .* ms, \([0-9]*\) while both.*/\1/p' "$OUT")
[ "${during:-0}" -ge 3 ] || fail "only ${during:-0} other clients were served while two clients dribbled"
alive slow

trace "10,000 connections that never send"
expect_exit 0 timeout "$(scaled 60)" "$PY" "$CL" idle "$AKAGENT_SOCK" 10000
cat "$OUT" >&2
grep -q 'connected [0-9]* (failed 0).*status with them open: reply 0x82' "$OUT" || fail "idle flood: $(cat "$OUT")"
grep -q 'after closing: reply 0x82' "$OUT" || fail "not served after the idle flood"
alive idle

trace "a request of exactly 256 KiB, then one byte over"
expect_exit 0 timeout "$(scaled 60)" "$PY" "$CL" maxsize "$AKAGENT_SOCK"
cat "$OUT" >&2
grep -q '^add-max reply 0x80$' "$OUT" || fail "the 256 KiB ADD was not accepted"
grep -q '^get-max reply 0x84 same-bytes$' "$OUT" || fail "the 256 KiB profile did not come back intact"
grep -q '^get-256k error ' "$OUT" || fail "the 256 KiB GET got no error reply"
grep -q '^over error 6 closed$' "$OUT" || fail "one byte over: wanted error 6 (too large) and a close"
grep -q '^after reply 0x82$' "$OUT" || fail "the agent did not serve after the oversize request"
expect_exit 0 "$AKCTL" rm big
alive maxsize

trace "keystore deleted under the unlocked agent"
cp "$STORE" "$T/store.bak"
rm -f "$STORE"
expect_exit 0 "$AKCTL" get alpha	# served from memory
assert_bytes "$OUT" "$KA"
run "$AKCTL" add gamma < <(printf '%s' "$KB")
one_line "add with the keystore deleted"
run "$AKCTL" rm beta
one_line "rm with the keystore deleted"
[ -e "$STORE" ] && fail "a failed write created a keystore"
alive deleted
expect_exit 0 "$AKCTL" list

trace "keystore replaced by garbage, by a directory, by another keystore"
printf 'not a keystore\n' > "$STORE"
run "$AKCTL" add gamma < <(printf '%s' "$KB")
one_line "add over garbage"
assert_bytes "$STORE" $'not a keystore\n'
rm -f "$STORE"
mkdir -m 0700 "$STORE"
run "$AKCTL" add gamma < <(printf '%s' "$KB")
one_line "add over a directory"
rmdir "$STORE"
alive replaced
expect_exit 0 "$AKCTL" get beta
assert_bytes "$OUT" "$KB"
# another keystore (other passphrase) moved over ours: the agent's key no longer opens it
expect_exit 0 "$AKCTL" -f "$T/other.ks" --passphrase-fd 3 init --kdf insecure-test 3<<<"other-$PASS"
cp "$T/other.ks" "$T/other.copy"
mv "$T/other.ks" "$STORE"
run "$AKCTL" add gamma < <(printf '%s' "$KB")
one_line "add over another keystore"
cmp -s "$STORE" "$T/other.copy" || fail "the agent wrote over a keystore it cannot open"
run "$AKCTL" get alpha
trace "  get after that: exit $RC (the agent locks itself when its key no longer opens the file)"
[ "$RC" = 0 ] || [ "$RC" = 4 ] || fail "get after the store changed: exit $RC: $(cat "$ERR")"
alive other-keystore
# our keystore back: unlock and write again
cp "$T/store.bak" "$STORE"
unlock
expect_exit 0 "$AKCTL" add gamma < <(printf '%s' "$KB")
expect_exit 0 "$AKCTL" get gamma
assert_bytes "$OUT" "$KB"

trace "the socket file removed: the agent exits"
stop_agent
# -d: foreground with the debug log on stderr (a daemon logs to syslog)
"$AKAGENT" -d -a "$T/rm.sock" > "$T/rm.exports" 2> "$T/rm.log" &
RMPID=$!
track_pid "$RMPID"
for _ in $(seq 50); do [ -S "$T/rm.sock" ] && break; sleep 0.1; done
[ -S "$T/rm.sock" ] || fail "foreground agent did not start"
AKAGENT_SOCK="$T/rm.sock" unlock
AKAGENT_SOCK="$T/rm.sock" expect_exit 0 "$AKCTL" get alpha
rm -f "$T/rm.sock"
wait_gone "$RMPID" 5 || fail "the agent did not exit when its socket was removed"
grep -q 'removed' "$T/rm.log" || fail "no log line about the removed socket: $(cat "$T/rm.log")"
grep -qi 'locked' "$T/rm.log" || fail "the agent did not say it locked (wiped) before exiting: $(cat "$T/rm.log")"
trace "  log: $(grep -i 'removed\|locked' "$T/rm.log" | tr '\n' ' ')"
assert_no_secret "$T/rm.log" "$KA" "the debug log"

trace "descriptor limit: prlimit --nofile=64, 200 clients at once, then recovery"
start_agent -a "$T/nofile.sock"
prlimit --pid "$AKAGENT_PID" --nofile=64:64 || skip "prlimit --nofile failed"
unlock
expect_exit 0 timeout "$(scaled 60)" "$PY" "$CL" flood "$AKAGENT_SOCK" 200 5
cat "$OUT" >&2
grep -q '^after 200/200$' "$OUT" || fail "not every request was served after the descriptor flood"
alive nofile
expect_exit 0 "$AKCTL" get alpha
assert_bytes "$OUT" "$KA"
stop_agent

trace "memlock limit 64 KiB, a 200-profile store"
if [ -x "$MKSTORE" ]; then
	BIG="$T/big/keystore"
	mkdir -m 0700 "$T/big"
	"$MKSTORE" "$BIG" 200 7 <<<"$PASS" || fail "akmkstore failed"
	# root ignores RLIMIT_MEMLOCK (CAP_IPC_LOCK): drop that capability for the agent
	NOCAP=()
	am_root && command -v setpriv >/dev/null && NOCAP=(setpriv --bounding-set=-ipc_lock)
	"${NOCAP[@]}" prlimit --memlock=65536:65536 "$AKAGENT" -d -a "$T/ml.sock" -f "$BIG" > "$T/ml.exports" 2> "$T/ml.log" &
	MLPID=$!
	track_pid "$MLPID"
	for _ in $(seq 50); do [ -S "$T/ml.sock" ] && break; sleep 0.1; done
	export AKAGENT_SOCK="$T/ml.sock" AKAGENT_PID=$MLPID
	expect_exit 0 "$AKCTL" -f "$BIG" --passphrase-fd 3 unlock 3<<<"$PASS"
	expect_exit 0 "$AKCTL" -f "$BIG" status
	expect_exit 0 "$AKCTL" -f "$BIG" list --json
	n=$("$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); d=d["profiles"] if isinstance(d,dict) else d; print(len(d))' "$OUT")
	assert_eq "$n" 200 "profiles served under the memlock limit"
	expect_exit 0 "$AKCTL" -f "$BIG" get p00199
	grep -q '^sk-ant-api03-' "$OUT" || fail "get p00199 under the memlock limit"
	lck=$(awk '/^VmLck/ {print $2}' "/proc/$MLPID/status")
	trace "  VmLck ${lck} KiB; log: $(grep -i memlock "$T/ml.log" | head -1)"
	grep -qi 'memlock' "$T/ml.log" || fail "no memlock warning in the agent's log"
	[ "$lck" -le 64 ] || fail "VmLck $lck KiB above the limit"
	kill -0 "$MLPID" || fail "agent died under the memlock limit"
	expect_exit 0 "$AKCTL" -f "$BIG" lock
	kill -TERM "$MLPID"
	wait_gone "$MLPID" 5 || fail "agent did not exit"
else
	trace "  skipped: akmkstore not built"
fi
trace ok
