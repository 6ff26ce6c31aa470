#!/bin/bash
# The opt-in audit log (akagent --audit-log PATH): one JSON line per handout and write, the profile as
# a keyed hash (never its name or a secret), created 0600, an unsafe file refused, rotated to PATH.1
# past 1 MiB; `akctl log --audit PATH` maps the hashes back while the agent is unlocked.
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

K1=$(fake_key)
K2=$(fake_key)
EXE=$(realpath "$AKCTL")
# Names with letters no hex digest has, so a grep for them cannot match a hash.
N1="zulu-prod"
N2="yankee-dev"
LOGF="$T/audit.log"

init_store

trace "an unsafe audit file is refused"
: > "$T/wide.log"
chmod 0644 "$T/wide.log"
expect_exit 1 "$AKAGENT" -D -a "$T/never.sock" --audit-log "$T/wide.log"
grep -q 'refused' "$ERR" || fail "0644 file: $(cat "$ERR")"
ln -s "$T/target.log" "$T/link.log"
expect_exit 1 "$AKAGENT" -D -a "$T/never.sock" --audit-log "$T/link.log"
grep -q 'symbolic link' "$ERR" || fail "symlink: $(cat "$ERR")"
[ -e "$T/target.log" ] && fail "the symlink's target was created"
[ -e "$T/never.sock" ] && fail "a refused agent bound its socket"

trace "created 0600; names hashed; no secret"
start_agent --audit-log "$LOGF"
assert_eq "$(stat -c %a "$LOGF")" 600 "audit log mode"
unlock
add_profile "$N1" "$K1"
add_profile "$N2" "$K2"
expect_exit 0 "$AKCTL" get "$N1"
"$AKCTL" get "$N2" >/dev/null 2>&1 &
GPID=$!
wait "$GPID" || fail "get $N2 failed"
expect_exit 5 "$AKCTL" get nope
expect_exit 0 "$AKCTL" rm "$N2"
assert_eq "$(wc -l < "$LOGF")" 6 "audit lines (2 add, 2 get, 1 missing get, 1 rm)"
for s in "$N1" "$N2" nope "$K1" "$K2" "$PASS"; do
	assert_no_secret "$LOGF" "$s" "the audit log ($s)"
done
# Each line is JSON with a 32-hex-digit hash; the same name always hashes alike.
/usr/bin/python3 - "$LOGF" "$GPID" "$EXE" <<'PY' || fail "audit lines not as documented"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
ops = [l["op"] for l in lines]
assert ops == ["add", "add", "get", "get", "get", "remove"], ops
for l in lines:
    assert len(l["profile"]) == 32 and all(c in "0123456789abcdef" for c in l["profile"]), l
    assert set(l) == {"time", "unix", "op", "profile", "pid", "uid", "exe", "outcome", "code"}, l
assert lines[0]["profile"] == lines[2]["profile"] and lines[0]["profile"] != lines[1]["profile"]
assert lines[3]["pid"] == int(sys.argv[2]) and lines[3]["exe"] == sys.argv[3], lines[3]
assert lines[4]["outcome"] == "error" and lines[4]["code"] == 14, lines[4]
assert lines[2]["outcome"] == "ok"
PY

trace "akctl log --audit maps the hashes back while unlocked"
expect_exit 0 "$AKCTL" log --audit "$LOGF"
awk -v n="$N1" -v e="$EXE" '$2 == "get" && $3 == n && $5 == e && $6 == "ok"' "$OUT" | grep -q . ||
	fail "log --audit: no get of $N1: $(cat "$OUT")"
awk -v n="$N1" '$2 == "add" && $3 == n' "$OUT" | grep -q . || fail "log --audit: no add of $N1"
# The removed profile and the missing one are not in the agent any more: shown as their hash.
assert_eq "$(awk '$2 == "get" {print $3}' "$OUT" | grep -cE '^#[0-9a-f]{32}$')" 2 "unmapped gets"
expect_exit 0 "$AKCTL" log --audit "$LOGF" --profile "$N1" --json
assert_eq "$(wc -l < "$OUT")" 2 "--profile $N1 --json lines"
grep -q "\"profile\":\"$N1\"" "$OUT" || fail "log --audit --json: no name"
expect_exit 0 "$AKCTL" lock
expect_exit 4 "$AKCTL" log --audit "$LOGF"

unlock

trace "rotation past 1 MiB: PATH.1, a new PATH, both 0600"
stop_agent
# Fill the file to just under the limit: the next lines rotate it.
/usr/bin/python3 -c '
import os, sys
with open(sys.argv[1], "a") as f:
    left = 1048576 - 600 - os.path.getsize(sys.argv[1])
    while left > 0:
        n = min(left, 1000)
        f.write("{\"filler\":\"" + "x" * max(n - 14, 0) + "\"}\n")
        left -= max(n - 14, 0) + 14
' "$LOGF"
SIZE=$(stat -c %s "$LOGF")
[ "$SIZE" -lt 1048576 ] || fail "filler too large ($SIZE)"
start_agent --audit-log "$LOGF"
unlock
for i in 1 2 3 4 5 6 7 8 9 10; do
	expect_exit 0 "$AKCTL" get "$N1"
done
[ -f "$LOGF.1" ] || fail "no $LOGF.1 after 1 MiB"
assert_eq "$(stat -c %a "$LOGF.1")" 600 "rotated log mode"
assert_eq "$(stat -c %a "$LOGF")" 600 "new log mode"
[ "$(stat -c %s "$LOGF.1")" -le 1048576 ] || fail "$LOGF.1 over 1 MiB"
[ "$(stat -c %s "$LOGF")" -lt 4096 ] || fail "the new log is not new"
assert_eq "$(($(grep -c '"op":"get"' "$LOGF") + $(grep -c '"op":"get"' "$LOGF.1") - 3))" 10 \
	"gets across both files"
expect_exit 0 "$AKCTL" log --audit "$LOGF"
awk -v n="$N1" '$2 == "get" && $3 == n' "$OUT" | grep -q . || fail "log --audit after rotation"
for s in "$N1" "$K1"; do
	assert_no_secret "$LOGF" "$s" "the new audit log"
	assert_no_secret "$LOGF.1" "$s" "the rotated audit log"
done
exit 0
