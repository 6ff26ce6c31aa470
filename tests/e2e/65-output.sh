#!/bin/bash
# Output conventions: colour only on a terminal and never with NO_COLOR or TERM=dumb (status: unlocked
# green, locked yellow); allow --list --json.
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

PTY="$TESTS_DIR/pty_run.py"
ESC=$'\033'
init_store
start_agent
unlock

trace "status: colour on a terminal with TERM=xterm (and NO_COLOR empty), none otherwise"
TERM=xterm expect_exit 0 "$PY" "$PTY" -- "$AKCTL" status
grep -qF "state:      ${ESC}[32munlocked${ESC}[0m" "$OUT" || fail "no green 'unlocked' on a terminal"
TERM=xterm NO_COLOR= expect_exit 0 "$PY" "$PTY" -- "$AKCTL" status
grep -qF "${ESC}[32munlocked" "$OUT" || fail "an empty NO_COLOR turned colour off"
TERM=xterm NO_COLOR=1 expect_exit 0 "$PY" "$PTY" -- "$AKCTL" status
grep -q "state:      unlocked" "$OUT" || fail "no state line"
grep -qF "$ESC" "$OUT" && fail "an escape with NO_COLOR"
TERM=dumb expect_exit 0 "$PY" "$PTY" -- "$AKCTL" status
grep -qF "$ESC" "$OUT" && fail "an escape with TERM=dumb"
TERM=xterm expect_exit 0 "$AKCTL" status
grep -qF "$ESC" "$OUT" && fail "an escape on a pipe"
expect_exit 0 "$AKCTL" lock
TERM=xterm expect_exit 4 "$PY" "$PTY" -- "$AKCTL" status
grep -qF "state:      ${ESC}[33mlocked${ESC}[0m" "$OUT" || fail "no yellow 'locked' on a terminal"
unlock

trace "allow --list --json"
expect_exit 0 "$AKCTL" allow --list --json
assert_bytes "$OUT" "[]
"
printf 'A=1\n' >"$T/a.env"
printf 'B=2\n' >"$T/b \"q\".env"
expect_exit 0 "$AKCTL" allow "$T/a.env"
expect_exit 0 "$AKCTL" allow "$T/b \"q\".env"
printf 'A=3\n' >"$T/a.env"
expect_exit 0 "$AKCTL" allow --list --json
"$PY" - "$OUT" "$T" <<'PY' || fail "allow --list --json"
import hashlib, json, sys
doc = json.load(open(sys.argv[1]))
t = sys.argv[2]
assert [e["path"] for e in doc] == [t + "/a.env", t + '/b "q".env'], doc
assert [e["state"] for e in doc] == ["changed since allowed", "allowed"], doc
assert doc[1]["sha256"] == hashlib.sha256(b"B=2\n").hexdigest(), doc
assert all(sorted(e) == ["path", "sha256", "state"] for e in doc), doc
PY
rm "$T/a.env"
expect_exit 0 "$AKCTL" allow --list --json
grep -q '"state":"missing"' "$OUT" || fail "a missing file"
expect_exit 2 "$AKCTL" allow --json "$T/a.env"
trace ok
