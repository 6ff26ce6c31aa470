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

# One round of N clients started together; each writes its own output and exit status.
round() {
	local r=$1 i
	for i in $(seq 1 $N); do
		( "$AKCTL" get "p$i" > "$T/r$r.$i.out" 2>"$T/r$r.$i.err"; echo $? > "$T/r$r.$i.rc" ) &
	done
	wait
	for i in $(seq 1 $N); do
		assert_eq "$(cat "$T/r$r.$i.rc")" 0 "round $r client $i exit ($(head -c 300 "$T/r$r.$i.err"))"
		cmp -s "$T/r$r.$i.out" <(printf '%s' "${KEYS[i]}") || fail "round $r client $i got the wrong bytes"
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

# timed_get I: `akctl get pI` must answer correctly within 1 s.
timed_get() {
	local start end
	start=$(date +%s%N)
	expect_exit 0 timeout 5 "$AKCTL" get "p$1"
	end=$(date +%s%N)
	assert_bytes "$OUT" "${KEYS[$1]}"
	[ $(((end - start) / 1000000)) -lt 1000 ] || fail "get took $(((end - start) / 1000000)) ms while $2"
}

trace "a client stalled mid-header does not block others"
"$PY" "$RAW" stall "$AKAGENT_SOCK" 30 > "$T/stall.out" 2>&1 &
STALL=$!
"$PY" "$RAW" idle "$AKAGENT_SOCK" 30 > "$T/idle.out" 2>&1 &
IDLE=$!
for i in $(seq 50); do
	grep -q connected "$T/stall.out" && grep -q connected "$T/idle.out" && break
	sleep 0.1
done
for i in 1 2 3 4 5; do timed_get "$i" "a client stalls"; done
round 4

trace "oversized, empty and unknown messages get an error or a close; the agent survives"
for m in oversize empty garbage; do
	expect_exit 0 timeout 10 "$PY" "$RAW" "$m" "$AKAGENT_SOCK"
	case $(cat "$OUT") in
	closed | error*) ;;
	*) fail "$m message got '$(cat "$OUT")'" ;;
	esac
	timed_get 7 "after a $m message"
done
expect_exit 0 "$AKCTL" status

trace "the stalled client is dropped after a timeout"
wait "$STALL"
grep -q '^dropped' "$T/stall.out" || fail "a client stalled mid-message was not dropped within 30 s"
kill "$IDLE" 2>/dev/null
wait "$IDLE" 2>/dev/null
kill -0 "$AKAGENT_PID" || fail "agent died"
expect_exit 0 "$AKCTL" get p1
assert_bytes "$OUT" "${KEYS[1]}"
trace ok
