#!/bin/bash
# The keystore file as an attacker or a crash leaves it: a forged header with huge KDF parameters is
# refused at once (no large allocation); a format-1 store opens and becomes format 2 on its next
# write, through the agent and directly; stale temp files (older generations of the store) are
# reported by status and removed by the next write, passwd included.
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

STORE="$XDG_DATA_HOME/akagent/keystore"
FIXTURE="$TESTS_DIR/e2e/data/keystore-v1"
V1PASS="v1-fixture-passphrase"	# the fixture's passphrase (format 1, --kdf insecure-test)
V1VALUE="legacy-fixture-value-0001"

# Under ASan/UBSan the shadow memory needs terabytes of address space: no ulimit -v there.
sanitized() {
	ldd "$AKCTL" 2>/dev/null | grep 'libasan\|libubsan' >/dev/null
}

header() {
	head -n 1 "$STORE"
}

# --- 1. forged KDF parameters ---------------------------------------------------------------------
trace "a forged header (opslimit 32, memlimit 4 GiB) is refused before any derivation"
init_store
add_profile p1 "$(fake_key)"
# Same file, header edited: what a hostile process with write access to the keystore could do.
sed -i '1s/"opslimit":[0-9]*/"opslimit":32/; 1s/"memlimit":[0-9]*/"memlimit":4294967296/' "$STORE"
header | grep -q '"opslimit":32,"memlimit":4294967296' || fail "header edit did not apply"
for cmd in "rm p1" "unlock" "passwd"; do
	# A 256 MiB address-space cap: a 4 GiB Argon2id allocation would fail with "out of memory" here
	# (and run for minutes without the cap); the refusal must come first. The timeout only catches a
	# hang: it is far above what any machine needs.
	if sanitized; then
		limit=unlimited
	else
		limit=262144
	fi
	[ "$cmd" = unlock ] && { start_agent; }
	# shellcheck disable=SC2086  # cmd is words on purpose
	run bash -c 'ulimit -v "$1"; shift; exec timeout 120 "$@"' _ "$limit" \
		"$AKCTL" --passphrase-fd 3 $cmd 3< <(printf '%s\n%s\n' "$PASS" "$PASS-new")
	[ "$RC" = 1 ] || { cat "$ERR" >&2; fail "akctl $cmd on a forged header: exit $RC, wanted 1"; }
	grep -q 'malformed keystore' "$ERR" || { cat "$ERR" >&2; fail "akctl $cmd: no 'malformed keystore'"; }
	grep -q 'out of memory' "$ERR" && fail "akctl $cmd tried to allocate for the forged parameters"
	[ "$cmd" = unlock ] && stop_agent
done
expect_exit 3 "$AKCTL" status
grep -q 'unreadable: malformed keystore' "$OUT" || fail "status does not call the forged header malformed"
rm -f "$STORE"

# --- 2. format 1 -> 2 --------------------------------------------------------------------------------
trace "a format-1 store opens through the agent and becomes format 2 on the agent's next write"
mkdir -p -m 0700 "$(dirname "$STORE")"
cp "$FIXTURE" "$STORE"
chmod 0600 "$STORE"
header | grep -q '"version":1,' || fail "fixture is not format 1"
expect_exit 3 "$AKCTL" status
grep -q '^format:     version 1 (rewritten as version 2 on the next write)$' "$OUT" ||
	fail "status does not report format 1"
start_agent
expect_exit 0 "$AKCTL" --passphrase-fd 3 unlock 3<<<"$V1PASS"
expect_exit 0 "$AKCTL" get legacy
assert_bytes "$OUT" "$V1VALUE"
header | grep -q '"version":1,' || fail "reading rewrote the file"
K2=$(fake_key)
printf '%s' "$K2" > "$T/k2"
expect_exit 0 "$AKCTL" add p2 < "$T/k2"
header | grep -q '"version":2,.*"commitment":"' || fail "the agent's write did not produce format 2"
expect_exit 0 "$AKCTL" lock
expect_exit 0 "$AKCTL" --passphrase-fd 3 unlock 3<<<"$V1PASS"
expect_exit 0 "$AKCTL" get legacy
assert_bytes "$OUT" "$V1VALUE"
expect_exit 0 "$AKCTL" get p2
assert_bytes "$OUT" "$K2"
stop_agent

trace "a format-1 store becomes format 2 on a direct write (no agent)"
cp "$FIXTURE" "$STORE"
expect_exit 0 "$AKCTL" --passphrase-fd 3 add p3 < "$T/k2" 3<<<"$V1PASS"
header | grep -q '"version":2,' || fail "the direct write did not produce format 2"
expect_exit 3 "$AKCTL" status
grep -q '^format:     version 2$' "$OUT" || fail "status does not report format 2"
start_agent
expect_exit 0 "$AKCTL" --passphrase-fd 3 unlock 3<<<"$V1PASS"
expect_exit 0 "$AKCTL" get legacy
assert_bytes "$OUT" "$V1VALUE"
stop_agent
rm -f "$STORE" "$T/k2"

# --- 3. stale temp files ----------------------------------------------------------------------------
trace "status reports stale temp files; passwd removes them before it reports success"
init_store
add_profile gone "$(fake_key)"
# Older generations, as a writer killed between its temp file and the rename leaves them.
cp "$STORE" "$STORE.tmp.AbC123"
cp "$STORE" "$STORE.tmp.zz9Z00"
: > "$STORE.tmp.short"	# not our naming (5 characters): never touched
expect_exit 3 "$AKCTL" status
grep -q '^warning:    2 stale temp files next to the keystore' "$OUT" || fail "status misses the temp files"
NEWPASS="$PASS-new"
expect_exit 0 "$AKCTL" --passphrase-fd 3 passwd 3< <(printf '%s\n%s\n' "$PASS" "$NEWPASS")
[ -e "$STORE.tmp.AbC123" ] || [ -e "$STORE.tmp.zz9Z00" ] && fail "passwd left stale temp files"
[ -e "$STORE.tmp.short" ] || fail "a file of other naming was removed"
expect_exit 3 "$AKCTL" status
grep -q 'stale temp' "$OUT" && fail "status still reports stale temp files"

trace "the agent's write removes them too"
start_agent
expect_exit 0 "$AKCTL" --passphrase-fd 3 unlock 3<<<"$NEWPASS"
cp "$STORE" "$STORE.tmp.Q1w2E3"
expect_exit 0 "$AKCTL" status
grep -q '^warning:    1 stale temp file next to the keystore' "$OUT" || fail "status misses the temp file"
expect_exit 0 "$AKCTL" rm gone
[ -e "$STORE.tmp.Q1w2E3" ] && fail "the agent's write left a stale temp file"
stop_agent
ls "$(dirname "$STORE")" | grep -v '^keystore\(\.lock\|\.tmp\.short\)\?$' && fail "unexpected files next to the keystore"
exit 0
