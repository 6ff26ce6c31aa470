#!/bin/bash
# Per-profile lifetime: `set P --lifetime D` makes the agent wipe P's secrets D after unlock while the
# other profiles stay; P then fails with its own error (exit 4) until `akctl unlock` reads it again.
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

K1=$(fake_key)
K2=$(fake_key)
K3=$(fake_key)

# get_fails_expired: `akctl get short` exits 4 (expired).
get_fails_expired() {
	local rc=0
	"$AKCTL" get short >/dev/null 2>&1 || rc=$?
	[ "$rc" = 4 ]
}

init_store
start_agent
unlock
PW="pw-$(rand_word)"
printf '%s\n%s\n' "$K1" "$PW" >"$T/in"
expect_exit 0 "$AKCTL" add short --no-validate --secret DB_PASSWORD <"$T/in"
add_profile long "$K2"

trace "--lifetime takes a duration or none; anything else is a usage error"
expect_exit 2 "$AKCTL" set short --lifetime soon
expect_exit 2 "$AKCTL" set short --lifetime 0
expect_exit 0 "$AKCTL" set short --lifetime 1h
expect_exit 0 "$AKCTL" list --json
grep -q '"name":"short"[^}]*"lifetime":3600,"wiped_at":"' "$OUT" || fail "list --json: no lifetime 3600"
expect_exit 0 "$AKCTL" list
awk '$1 == "short" && / wiped in (59m|1h)/' "$OUT" | grep -q . || fail "list: no 'wiped in' for short: $(cat "$OUT")"
expect_exit 0 "$AKCTL" status
grep -q '^lifetimes: *1 profile with a lifetime; the next is wiped in' "$OUT" || fail "status: no lifetimes line"
expect_exit 0 "$AKCTL" set short --lifetime none
expect_exit 0 "$AKCTL" list --json
grep -q '"name":"short"[^}]*"lifetime"' "$OUT" && fail "--lifetime none kept a lifetime"

trace "a short lifetime: the profile is wiped, the others stay"
expect_exit 0 "$AKCTL" set short --lifetime 2s
wait_until 30 get_fails_expired || fail "short was not wiped after its lifetime"
expect_exit 4 "$AKCTL" get short
grep -q "short expired: run 'akctl unlock' again" "$ERR" || fail "expired message: $(cat "$ERR")"
expect_exit 4 "$AKCTL" get short DB_PASSWORD
expect_exit 4 "$AKCTL" exec short -- true
expect_exit 0 "$AKCTL" get long
assert_bytes "$OUT" "$K2"
expect_exit 0 "$AKCTL" list
awk '$1 == "short" && / expired$/' "$OUT" | grep -q . || fail "list: short not marked expired"
expect_exit 0 "$AKCTL" list --json
grep -q '"name":"short"[^}]*"expired":true' "$OUT" || fail "list --json: short not expired"
expect_exit 0 "$AKCTL" status
grep -q "^expired: *1 profile wiped by its lifetime: run 'akctl unlock' again" "$OUT" ||
	fail "status: no expired line"

trace "a write does not bring it back; only unlock does"
expect_exit 0 "$AKCTL" set short --lifetime 1h
expect_exit 4 "$AKCTL" get short
add_profile other "$K3"
expect_exit 4 "$AKCTL" get short
unlock
grep -q "lifetime ended" "$ERR" || fail "unlock did not say it reads the keystore again"
expect_exit 0 "$AKCTL" get short
assert_bytes "$OUT" "$K1"
expect_exit 0 "$AKCTL" get short DB_PASSWORD
assert_bytes "$OUT" "$PW"
expect_exit 0 "$AKCTL" list
awk '$1 == "short" && / wiped in (59m|1h)/' "$OUT" | grep -q . || fail "list after unlock: $(cat "$OUT")"

trace "the policy is in the keystore: a new agent keeps it"
stop_agent
start_agent
unlock
expect_exit 0 "$AKCTL" list --json
grep -q '"name":"short"[^}]*"lifetime":3600' "$OUT" || fail "lifetime lost across agents"
exit 0
