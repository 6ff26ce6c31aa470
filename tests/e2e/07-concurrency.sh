#!/bin/bash
# 64 concurrent clients are all answered correctly; stalled, idle, oversized and malformed clients never
# block the others and never take the agent down.
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

N=64
RAW="$TESTS_DIR/rawclient.py"
init_store
start_agent
unlock

trace "add $N profiles"
declare -a KEYS
for i in $(seq 1 $N); do
	KEYS[i]=$(fake_key)
	add_profile "p$i" "${KEYS[i]}" --set "INDEX=$i"
done
expect_exit 0 "$AKCTL" list --json
assert_eq "$(grep -o '"p[0-9]*"' "$OUT" | sort -u | wc -l)" "$N" "profiles listed"

# One round of N clients started together; each writes its own output and exit status. The checks use
# no subprocess (read, not cat/cmp), so a loaded machine does not turn 64 checks into 256 forks.
round() {
	local r=$1 i rc got pids=()
	for i in $(seq 1 $N); do
		( "$AKCTL" get "p$i" > "$T/r$r.$i.out" 2>"$T/r$r.$i.err"; echo $? > "$T/r$r.$i.rc" ) &
		pids+=($!)
	done
	wait "${pids[@]}"	# only these: not the stalling clients that may be running meanwhile
	for i in $(seq 1 $N); do
		read -r rc < "$T/r$r.$i.rc"
		[ "$rc" = 0 ] || fail "round $r client $i exit $rc ($(head -c 300 "$T/r$r.$i.err"))"
		IFS= read -r -d '' got < "$T/r$r.$i.out"
		[ "$got" = "${KEYS[i]}" ] || fail "round $r client $i got the wrong bytes"
	done
}

trace "$N concurrent gets, 3 rounds"
for r in 1 2 3; do round "$r"; done

trace "$N concurrent mixed clients: env, exec, list, status"
for i in $(seq 1 $N); do
	case $((i % 4)) in
	0) ( "$AKCTL" exec "p$i" -- printenv ANTHROPIC_API_KEY INDEX > "$T/m.$i.out"; echo $? > "$T/m.$i.rc" ) & ;;
	1) ( "$AKCTL" env "p$i" --shell json > "$T/m.$i.out"; echo $? > "$T/m.$i.rc" ) & ;;
	2) ( "$AKCTL" list > "$T/m.$i.out"; echo $? > "$T/m.$i.rc" ) & ;;
	3) ( "$AKCTL" status > "$T/m.$i.out"; echo $? > "$T/m.$i.rc" ) & ;;
	esac
done
wait
for i in $(seq 1 $N); do
	assert_eq "$(cat "$T/m.$i.rc")" 0 "mixed client $i exit"
	case $((i % 4)) in
	0) cmp -s "$T/m.$i.out" <(printf '%s\n%s\n' "${KEYS[i]}" "$i") || fail "exec client $i got wrong bytes" ;;
	1) grep -qF "${KEYS[i]}" "$T/m.$i.out" || fail "env client $i lacks its key" ;;
	esac
done

trace "concurrent writers through the agent lose nothing"
for i in $(seq 1 16); do
	( printf 'w-%s' "$i" | "$AKCTL" add "w$i" > /dev/null 2>&1; echo $? > "$T/w.$i.rc" ) &
done
wait
for i in $(seq 1 16); do
	assert_eq "$(cat "$T/w.$i.rc")" 0 "writer $i exit"
	expect_exit 0 "$AKCTL" get "w$i"
	assert_bytes "$OUT" "w-$i"
done

# get_ok I: `akctl get pI` answers with pI's key (a hang is cut by a timeout and fails).
get_ok() {
	expect_exit 0 timeout "$(scaled 10)" "$AKCTL" get "p$1"
	assert_bytes "$OUT" "${KEYS[$1]}"
}

# The stalled client is dropped by the agent 10 s after its partial header. A get answered before that
# drop was served while the stalled client was held: an agent blocked on it would answer only after.
# (A check on the order of events, not on how fast this machine is.)
trace "a client stalled mid-header does not block others"
"$PY" "$RAW" stall "$AKAGENT_SOCK" "$(scaled 30)" > "$T/stall.out" 2>&1 &
"$PY" "$RAW" idle "$AKAGENT_SOCK" "$(scaled 30)" > "$T/idle.out" 2>&1 &
IDLE=$!
connected() { grep -q connected "$T/stall.out" && grep -q connected "$T/idle.out"; }
wait_until 10 connected || fail "the stalling clients did not connect"
get_ok 1
grep -q '^dropped' "$T/stall.out" && fail "a get was answered only once the stalled client was dropped"
for i in 2 3 4 5; do get_ok "$i"; done
round 4

trace "oversized, empty and unknown messages get an error or a close; the agent survives"
for m in oversize empty garbage; do
	expect_exit 0 timeout "$(scaled 10)" "$PY" "$RAW" "$m" "$AKAGENT_SOCK"
	case $(cat "$OUT") in
	closed | error*) ;;
	*) fail "$m message got '$(cat "$OUT")'" ;;
	esac
	get_ok 7
done
expect_exit 0 "$AKCTL" status

trace "the stalled client is dropped after a timeout"
wait_until 40 grep -q '^dropped' "$T/stall.out" ||
	fail "a client stalled mid-message was not dropped: $(cat "$T/stall.out")"
kill "$IDLE" 2>/dev/null
wait "$IDLE" 2>/dev/null
kill -0 "$AKAGENT_PID" || fail "agent died"
expect_exit 0 "$AKCTL" get p1
assert_bytes "$OUT" "${KEYS[1]}"
trace ok
