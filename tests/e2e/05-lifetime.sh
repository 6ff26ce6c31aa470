#!/bin/bash
# Auto-lock: akagent -t, akctl unlock -t, --idle; an unlock on an unlocked agent may shorten the lifetime
# but never extend it without the passphrase;
# SIGUSR1 and SIGHUP lock without exiting.
#
# No check depends on how fast the machine is: the moment the agent is seen locked (status polled every
# 50 ms) is compared with the moments before the requests that started or extended a lifetime, so
# "not before" bounds hold under any load. Where a request must land inside a lifetime, the lifetime is
# L = 2 s times AKT_TIME_FACTOR and the request comes with half of it to spare. The parts are independent
# (an agent and a socket each, one read-only keystore) and run at the same time.
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

KEY=$(fake_key)
init_store
add_profile p "$KEY"	# no agent yet: written to the file directly

L=$(awk -v f="$AKT_TIME_FACTOR" 'BEGIN { printf "%d", 2 * f + 0.5 }')
LMS=$((L * 1000))

# sleep_until MS: sleep until now_ms reaches MS (at once if it has).
sleep_until() {
	local left=$(($1 - $(now_ms)))
	[ "$left" -gt 0 ] && sleep "$((left / 1000)).$(printf '%03d' $((left % 1000)))"
	return 0
}

# locked_at: poll `akctl status` (it does not count as activity) until the agent is locked; print the
# moment it was seen locked. Nonzero if it is still unlocked after 3 L, or status fails otherwise.
locked_at() {
	local end=$(($(now_ms) + 3 * LMS + 5000))
	while [ "$(now_ms)" -lt "$end" ]; do
		run "$AKCTL" status
		case $RC in
		4) now_ms; return 0 ;;
		0) sleep 0.05 ;;
		*) echo "status exited $RC: $(head -c 300 "$ERR")" >&2; return 1 ;;
		esac
	done
	echo "still unlocked $((3 * L + 5)) s later" >&2
	return 1
}

part_lifetime() {
	local t0 tget tl
	start_agent -t "${L}s" -a "$T/lifetime.sock"
	t0=$(now_ms)
	unlock
	expect_exit 0 "$AKCTL" get p
	assert_bytes "$OUT" "$KEY"
	sleep_until $((t0 + LMS / 2))
	tget=$(now_ms)
	expect_exit 0 "$AKCTL" get p	# a request does not extend the lifetime...
	tl=$(locked_at) || fail "akagent -t ${L}s did not lock"
	[ $((tl - t0)) -ge "$LMS" ] || fail "locked $((tl - t0)) ms after the unlock: before its ${L} s"
	# ...so it locks within L of the unlock, sooner than L after the get (which came L/2 after it)
	[ $((tl - tget)) -lt "$LMS" ] || fail "the get $((tget - t0)) ms after the unlock extended the lifetime"
	expect_exit 4 "$AKCTL" get p
	kill -0 "$AKAGENT_PID" || fail "agent exited when its lifetime ran out"
	stop_agent
}

# An unlock on an unlocked agent never extends its lifetime without the passphrase: plain unlock changes
# nothing, a longer -t (or 0, no limit) is refused by akctl and by the agent itself (DENIED, error 20).
part_noextend() {
	local t0 tl life
	start_agent -t "${L}s" -a "$T/noextend.sock"
	t0=$(now_ms)
	unlock
	expect_exit 0 "$AKCTL" unlock	# nothing asked, nothing changed
	grep -q "already unlocked" "$ERR" || fail "unlock on an unlocked agent did not say so"
	expect_exit 1 "$AKCTL" unlock -t 1h	# longer: needs the passphrase (askpass fails here)
	grep -q "a longer lifetime needs the passphrase" "$ERR" || fail "unlock -t 1h: no reason given"
	expect_exit 1 "$AKCTL" unlock -t 0	# no limit: the same
	for life in 3600 4294967295 0; do
		run "$PY" "$TESTS_DIR/rawclient.py" relife "$AKAGENT_SOCK" "$life"
		assert_bytes "$OUT" $'error 20\n'
	done
	tl=$(locked_at) || fail "the lifetime was extended without the passphrase"
	[ $((tl - t0)) -ge "$LMS" ] || fail "locked $((tl - t0)) ms after the unlock: before its ${L} s"
	stop_agent
}

# unlock -t shortens an unlocked agent's lifetime without the passphrase.
part_shorten() {
	start_agent -t 1h -a "$T/shorten.sock"
	unlock
	expect_exit 0 "$AKCTL" unlock -t 1s
	locked_at >/dev/null || fail "unlock -t 1s did not shorten the lifetime"
	stop_agent
}

# unlock -t 1h with the passphrase extends it.
part_extend() {
	local t0
	start_agent -t "${L}s" -a "$T/extend.sock"
	t0=$(now_ms)
	unlock
	expect_exit 0 "$AKCTL" --passphrase-fd 3 unlock -t 1h 3<<<"$PASS"
	sleep_until $((t0 + LMS + 1000))
	expect_exit 0 "$AKCTL" get p
	stop_agent
}

part_unlock_t() {
	local t0 tl
	start_agent -a "$T/unlock-t.sock"
	t0=$(now_ms)
	unlock -t "${L}s"
	expect_exit 0 "$AKCTL" get p
	tl=$(locked_at) || fail "akctl unlock -t ${L}s did not override the agent's default lifetime"
	[ $((tl - t0)) -ge "$LMS" ] || fail "unlock -t ${L}s locked after $((tl - t0)) ms"
	expect_exit 4 "$AKCTL" get p
	stop_agent
}

part_unlock_t0() {
	local t1
	start_agent -t 1s -a "$T/unlock-t0.sock"
	unlock -t 0	# no limit, overriding akagent -t 1s
	t1=$(now_ms)
	sleep_until $((t1 + 2000))
	expect_exit 0 "$AKCTL" get p
	expect_exit 2 "$AKCTL" --passphrase-fd 3 unlock -t nonsense 3<<<"$PASS"
	stop_agent
}

part_idle() {
	local tu tg1 tg2 tl
	start_agent --idle "${L}s" -a "$T/idle.sock"
	unlock
	tu=$(now_ms)	# the unlock was processed before this: idle deadline without activity <= tu + L
	sleep_until $((tu + LMS * 6 / 10))
	tg1=$(now_ms)
	expect_exit 0 "$AKCTL" get p	# activity keeps it open...
	sleep_until $((tu + LMS * 11 / 10))
	tg2=$(now_ms)
	[ $((tg2 - tg1)) -lt $((LMS * 3 / 4)) ] || trace "  (machine busy: the second get is late; may fail)"
	expect_exit 0 "$AKCTL" get p	# ...past the unlock's idle deadline
	tl=$(locked_at) || fail "--idle ${L}s did not lock"
	[ $((tl - tg2)) -ge "$LMS" ] || fail "locked $((tl - tg2)) ms after the last request: before ${L} s idle"
	stop_agent
}

part_signals() {
	local tl
	start_agent -a "$T/signals.sock"
	unlock
	expect_exit 0 "$AKCTL" status
	kill -USR1 "$AKAGENT_PID"
	tl=$(locked_at) || fail "SIGUSR1 did not lock"
	unlock
	kill -HUP "$AKAGENT_PID"
	tl=$(locked_at) || fail "SIGHUP did not lock"
	kill -0 "$AKAGENT_PID" || fail "agent exited on SIGHUP"
	unlock
	expect_exit 0 "$AKCTL" get p
	assert_bytes "$OUT" "$KEY"
	stop_agent
}

trace "L = ${L} s; parts: lifetime noextend shorten extend unlock_t unlock_t0 idle signals (in parallel)"
declare -A PIDS
for part in lifetime noextend shorten extend unlock_t unlock_t0 idle signals; do
	(
		OUT="$T/$part.out" ERR="$T/$part.err"
		"part_$part"
	) > "$T/$part.log" 2>&1 &
	PIDS[$part]=$!
done
failed=0
for part in lifetime noextend shorten extend unlock_t unlock_t0 idle signals; do
	if wait "${PIDS[$part]}"; then
		trace "  $part: ok"
	else
		echo "--- part $part failed:" >&2
		cat "$T/$part.log" >&2
		failed=1
	fi
done
[ "$failed" = 0 ] || fail "a part failed (above)"

trace "bad durations and options are usage errors (exit 2); -h prints the usage and exits 0"
expect_exit 2 "$AKAGENT" -s -t 5parsecs -a "$T/x.sock"
[ -e "$T/x.sock" ] && fail "akagent with a bad -t bound a socket"
grep -qx "akagent: -t: invalid duration '5parsecs' (e.g. 90s, 30m, 8h, 0 = none)" "$ERR" || fail "-t: $(cat "$ERR")"
expect_exit 2 "$AKAGENT" -s --idle=soon -a "$T/x.sock"
grep -q "^akagent: --idle: invalid duration 'soon'" "$ERR" || fail "--idle: $(cat "$ERR")"
expect_exit 2 "$AKAGENT" -s --bogus=1 -a "$T/x.sock"
[ "$(head -1 "$ERR")" = "akagent: unknown option '--bogus'" ] || fail "--bogus: $(cat "$ERR")"
grep -q '^usage: akagent ' "$ERR" || fail "no usage after an unknown option: $(cat "$ERR")"
expect_exit 2 "$AKAGENT" -s -Dx -a "$T/x.sock"
[ "$(head -1 "$ERR")" = "akagent: unknown option '-x'" ] || fail "-x: $(cat "$ERR")"
expect_exit 2 "$AKAGENT" -s -t
[ "$(head -1 "$ERR")" = "akagent: option '-t' needs an argument" ] || fail "-t alone: $(cat "$ERR")"
[ -e "$T/x.sock" ] && fail "akagent with a bad option bound a socket"
expect_exit 0 "$AKAGENT" --help --bogus
grep -q '^usage: akagent ' "$OUT" || fail "--help: $(cat "$OUT")"
[ -s "$ERR" ] && fail "--help wrote to stderr: $(cat "$ERR")"
trace ok
