#!/bin/bash
# kill -9 of a writer during add leaves a keystore that opens, holding either the old or the new content:
# every profile it lists is complete, and every add that reported success is there.
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

ROUNDS=${CRASH_ROUNDS:-30}
STORE="$XDG_DATA_HOME/akagent/keystore"
declare -a KEYS FINISHED

init_store
# a few committed profiles the crashes must never lose
for i in 1 2 3; do
	KEYS[i]=$(fake_key)
	add_profile "p$i" "${KEYS[i]}"
	FINISHED[i]=1
done

# delay: 0 to 24 ms
delay() {
	sleep "0.$(printf '%03d' $((RANDOM % 25)))"
}

trace "$ROUNDS direct-file writers killed with SIGKILL at random moments"
killed=0
for i in $(seq 4 $((ROUNDS + 3))); do
	KEYS[i]=$(fake_key)
	printf '%s' "${KEYS[i]}" > "$T/in.$i"
	# (no leak check in a writer that is killed: SIGKILL during LeakSanitizer's scan makes it report)
	ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" \
		"$AKCTL" --passphrase-fd 3 add "p$i" 3<<<"$PASS" < "$T/in.$i" > /dev/null 2>&1 &
	pid=$!
	delay
	kill -KILL "$pid" 2>/dev/null
	rc=0
	wait "$pid" 2>/dev/null || rc=$?
	rm -f "$T/in.$i"
	if [ "$rc" = 0 ]; then
		FINISHED[i]=1
	else
		killed=$((killed + 1))
		FINISHED[i]=0
	fi
done
trace "$killed of $ROUNDS writers were killed before they finished"

# check_store LABEL FIRST LAST: the store opens, lists only complete profiles, has every finished one.
check_store() {
	local label=$1 first=$2 last=$3 i n=0
	expect_exit 0 "$AKCTL" list --json
	cp "$OUT" "$T/list.json"
	for i in $(seq "$first" "$last"); do
		if grep -q "\"p$i\"" "$T/list.json"; then
			expect_exit 0 "$AKCTL" get "p$i"
			cmp -s "$OUT" <(printf '%s' "${KEYS[i]}") || fail "$label: p$i is listed with a wrong or partial key"
			n=$((n + 1))
		elif [ "${FINISHED[i]}" = 1 ]; then
			fail "$label: p$i was added (exit 0) but is missing"
		fi
	done
	trace "$label: $n profiles present and complete"
}

trace "the keystore opens with the passphrase"
[ -f "$STORE" ] || fail "keystore gone"
assert_eq "$(stat -c %a "$STORE")" 600 "keystore mode"
start_agent
unlock
check_store direct 1 $((ROUNDS + 3))

trace "a normal add still works (no stale lock)"
KEYS[999]=$(fake_key)
expect_exit 0 timeout 20 "$AKCTL" add p999 < <(printf '%s' "${KEYS[999]}")
FINISHED[999]=1
expect_exit 0 "$AKCTL" lock
KEYS[998]=$(fake_key)
expect_exit 0 timeout 20 "$AKCTL" --passphrase-fd 3 add p998 3<<<"$PASS" < <(printf '%s' "${KEYS[998]}")
FINISHED[998]=1
stop_agent

trace "10 agents killed with SIGKILL while writing for a client"
first=$((ROUNDS + 4))
for i in $(seq "$first" $((first + 9))); do
	start_agent
	unlock
	KEYS[i]=$(fake_key)
	printf '%s' "${KEYS[i]}" > "$T/in.$i"
	"$AKCTL" add "p$i" < "$T/in.$i" > /dev/null 2>&1 &
	pid=$!
	delay
	kill -KILL "$AKAGENT_PID"
	rc=0
	wait "$pid" 2>/dev/null || rc=$?
	wait_gone "$AKAGENT_PID" 5 || fail "agent survived SIGKILL"
	FINISHED[i]=0
	[ "$rc" = 0 ] && FINISHED[i]=1
	rm -f "$T/in.$i" "$AKAGENT_SOCK"
	unset AKAGENT_SOCK AKAGENT_PID
done
start_agent
unlock
check_store agent-killed 1 $((first + 9))
for i in 998 999; do
	expect_exit 0 "$AKCTL" get "p$i"
	assert_bytes "$OUT" "${KEYS[i]}"
done
leftovers=$(find "$(dirname "$STORE")" -mindepth 1 -maxdepth 1 ! -name keystore ! -name keystore.lock | wc -l)
trace "files left beside the keystore by killed writers: $leftovers"
trace ok
