#!/bin/bash
# After lock (command, lifetime, SIGUSR1) the agent's memory holds neither the key nor the passphrase.
# Read as root from /proc/PID/mem; the key must be found before the lock, so the scan can fail.
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

am_root || skip "needs root (to read the non-dumpable agent's /proc/PID/mem)"

KEY=$(fake_key)
NAME="prof-$(rand_word)"
PLAIN="plain-$(rand_word)"
SCAN="$TESTS_DIR/memscan.py"

# scan LABEL: search the agent for KEY, PASS, NAME, PLAIN; sets HITS_KEY HITS_PASS HITS_NAME HITS_PLAIN.
scan() {
	printf '%s' "$KEY" | od -An -tx1 | tr -d ' \n' > "$T/needles"
	printf '\n' >> "$T/needles"
	for s in "$PASS" "$NAME" "$PLAIN"; do
		printf '%s' "$s" | od -An -tx1 | tr -d ' \n' >> "$T/needles"
		printf '\n' >> "$T/needles"
	done
	"$PY" "$SCAN" "$AKAGENT_PID" < "$T/needles" > "$T/scan.$1" 2>&1 || fail "memscan failed: $(cat "$T/scan.$1")"
	rm -f "$T/needles"
	HITS_KEY=$(awk '$1 == "0" {print $2}' "$T/scan.$1")
	HITS_PASS=$(awk '$1 == "1" {print $2}' "$T/scan.$1")
	HITS_NAME=$(awk '$1 == "2" {print $2}' "$T/scan.$1")
	HITS_PLAIN=$(awk '$1 == "3" {print $2}' "$T/scan.$1")
	trace "$1: $(head -1 "$T/scan.$1") bytes; key $HITS_KEY, passphrase $HITS_PASS, name $HITS_NAME, plain $HITS_PLAIN"
}

# assert_clean LABEL: nothing secret left after a lock.
assert_clean() {
	scan "$1"
	[ "$HITS_KEY" = 0 ] || fail "$1: key found $HITS_KEY times in the locked agent: $(sed -n '2p' "$T/scan.$1")"
	[ "$HITS_PASS" = 0 ] || fail "$1: passphrase found in the agent: $(sed -n '3p' "$T/scan.$1")"
	[ "$HITS_PLAIN" = 0 ] || fail "$1: a profile's plain value found in the locked agent: $(sed -n '5p' "$T/scan.$1")"
	[ "$HITS_NAME" = 0 ] || fail "$1: a profile name found in the locked agent: $(sed -n '4p' "$T/scan.$1")"
}

init_store
start_agent
unlock

trace "unlocked, key added through the agent and read back"
add_profile "$NAME" "$KEY" --set "PLAIN_VAR=$PLAIN"
expect_exit 0 "$AKCTL" get "$NAME"
assert_bytes "$OUT" "$KEY"
expect_exit 0 "$AKCTL" env "$NAME"
expect_exit 0 "$AKCTL" list
scan unlocked
[ "$HITS_KEY" -ge 1 ] || fail "the key is not found in the unlocked agent: the scan cannot see the store"
[ "$HITS_PASS" = 0 ] || fail "the passphrase reached the agent (it should get only the derived key)"

trace "akctl lock"
expect_exit 0 "$AKCTL" lock
assert_clean after-lock

trace "unlock again (store decrypted from the file), get, lock"
unlock
expect_exit 0 "$AKCTL" get "$NAME"
expect_exit 0 "$AKCTL" exec "$NAME" -- true
scan unlocked-2
[ "$HITS_KEY" -ge 1 ] || fail "the key is not found after the second unlock"
expect_exit 0 "$AKCTL" lock
assert_clean after-lock-2

trace "lifetime expiry"
unlock -t 1s
expect_exit 0 "$AKCTL" get "$NAME"
sleep 2.5
expect_exit 4 "$AKCTL" status
assert_clean after-lifetime

trace "SIGUSR1"
unlock
expect_exit 0 "$AKCTL" get "$NAME"
kill -USR1 "$AKAGENT_PID"
sleep 0.5
expect_exit 4 "$AKCTL" status
assert_clean after-sigusr1

trace "a failed unlock leaves nothing either"
expect_exit 6 "$AKCTL" --passphrase-fd 3 unlock 3<<<"wrong-$PASS"
assert_clean after-failed-unlock
trace ok
