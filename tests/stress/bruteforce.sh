#!/bin/bash
# bruteforce.sh BUILD_DIR [SECONDS] - failed unlocks per minute against the agent's back-off
# (documented: the n-th consecutive failure is answered after min(250 ms * 2^(n-1), 8 s), and no UNLOCK
# from anyone is processed before then). One guesser for SECONDS (default 60), then 8 guessers in
# parallel for SECONDS; each guess is a full `akctl unlock` with a wrong passphrase (insecure-test KDF,
# so the cost is the agent's delay). Prints the delay of each attempt and attempts/minute. Also times
# one Argon2id derivation per preset (the offline cost per guess on this machine, for comparison).
. "$(dirname "$0")/common.sh"
SECS=${2:-60}
"$AKCTL" --passphrase-fd 3 init --kdf insecure-test 3<<<"$PASS" >/dev/null 2>&1 || die "init"
# foreground with a debug log: the agent's own count of failed unlocks it processed
"$AKAGENT" -d -a "$T/bf.sock" 2> "$T/agent.log" > /dev/null &
KILL_PIDS+=($!)
export AKAGENT_SOCK="$T/bf.sock"
for _ in $(seq 50); do [ -S "$AKAGENT_SOCK" ] && break; sleep 0.1; done

guesser() {	# guesser ID END_MS: prints "ms_since_start exit delay_ms" per attempt
	local id=$1 end=$2 t0 t1 rc
	while [ "$(ms)" -lt "$end" ]; do
		t0=$(ms)
		rc=0
		"$AKCTL" --passphrase-fd 3 unlock 3<<<"wrong-$id-$RANDOM" >/dev/null 2>&1 || rc=$?
		t1=$(ms)
		echo "$id $((t1 - T0)) $rc $((t1 - t0))"
	done
}
T0=$(ms)
say "1 guesser, $SECS s"
guesser 1 $((T0 + SECS * 1000)) > "$T/one"
n1=$(wc -l < "$T/one")
awk '{printf "%s%s", sep, $4; sep=" "} END {print ""}' "$T/one" | sed 's/^/  delays (ms): /' >&2
bad=$(awk '$3 != 6' "$T/one" | wc -l)
[ "$bad" = 0 ] || die "$bad attempts did not end with exit 6"
p1=$(grep -c 'unlock failed' "$T/agent.log")
# a correct unlock resets the counter
unlock
"$AKCTL" lock >/dev/null
T0=$(ms)
say "8 guessers in parallel, $SECS s"
GPIDS=()
for g in 1 2 3 4 5 6 7 8; do
	guesser "$g" $((T0 + SECS * 1000)) > "$T/par.$g" &
	GPIDS+=($!)
done
wait "${GPIDS[@]}"	# not a bare wait: the agent is a child of this shell too
# attempts a guesser started before the end but finished after it still count as attempts
echo "== brute force against the agent ($SECS s windows)"
printf '1 guesser : %d failed unlocks in %d s = %.1f per minute\n' "$n1" "$SECS" "$(echo "$n1 * 60 / $SECS" | bc -l)"
p8=$(( $(grep -c 'unlock failed' "$T/agent.log") - p1 ))
n8ok=$(cat "$T/par".* | awk '$3 == 6' | wc -l)
printf '8 guessers: %d guesses answered "wrong passphrase" in %d s = %.1f per minute (the delay is global)\n' \
	"$n8ok" "$SECS" "$(echo "$n8ok * 60 / $SECS" | bc -l)"
printf '           the agent processed (and failed) %d guesses = %.1f per minute; the rest were still parked\n' \
	"$p8" "$(echo "$p8 * 60 / $SECS" | bc -l)"
echo "           when akctl gave up (its unlock timeout is 20 s)"
echo "  all attempts by exit status: $(cat "$T/par".* | awk '{c[$3]++} END {for (k in c) printf "exit %s: %d  ", k, c[k]}')"
echo "  answered guesses at (s): $(cat "$T/par".* | awk '$3 == 6 {printf "%.1f\n", $2 / 1000}' | sort -n | tr '\n' ' ')"
echo "== offline: one Argon2id derivation (akctl init) per preset on this machine"
for p in interactive moderate sensitive; do
	t0=$(ms)
	"$AKCTL" -f "$T/kdf-$p/ks" --passphrase-fd 3 init --kdf "$p" 3<<<"$PASS" >/dev/null 2>&1 || { echo "$p: init failed"; continue; }
	t1=$(ms)
	printf '%-11s %5d ms per guess = %.0f guesses/minute/core\n' "$p" $((t1 - t0)) "$(echo "60000 / ($t1 - $t0)" | bc -l)"
done
