#!/bin/bash
# The usage log: every secret handed out and every write, with the requesting program's pid and
# executable and the outcome; filters by profile and time; JSON; wiped by lock; never a secret.
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

SHOWN="$T/shown"	# everything log printed: must hold no secret
: >"$SHOWN"
K1=$(fake_key)
K2=$(fake_key)
EXE=$(realpath "$AKCTL")

# log ARGS...: akctl log ARGS must succeed; its output is kept for the final scan.
log() {
	expect_exit 0 "$AKCTL" log "$@"
	cat "$OUT" "$ERR" >>"$SHOWN"
}

# rows OP PROFILE: how many table rows of $OUT have that op and profile.
rows() {
	awk -v op="$1" -v p="$2" 'NR > 1 && $2 == op && $3 == p' "$OUT" | wc -l
}

init_store
start_agent
unlock

trace "an empty log says so on stderr, prints nothing"
log
assert_bytes "$OUT" ""
grep -q 'nothing used or written' "$ERR" || fail "empty log: no note"

trace "a write and a handout show up with the client's pid and executable"
add_profile prod "$K1"
add_profile dev "$K2"
expect_exit 0 "$AKCTL" get prod
assert_eq "$(cat "$OUT")" "$K1" "get prod"
# A known client: its pid is the one bash reports for the process it started.
"$AKCTL" get dev >"$T/got" 2>&1 &
GETPID=$!
wait "$GETPID" || fail "get dev in the background failed"
log
head -1 "$OUT" | grep -q '^TIME  *OP  *PROFILE  *PID  *EXE  *OUTCOME$' || fail "log: no header"
assert_eq "$(rows add prod)" 1 "add prod rows"
assert_eq "$(rows get prod)" 1 "get prod rows" # before list's test below adds one
assert_eq "$(rows get dev)" 1 "get dev rows"
awk -v e="$EXE" 'NR > 1 && $2 == "get" && $3 == "prod" && $5 == e && $6 == "ok"' "$OUT" | grep -q . ||
	fail "get prod: not logged with exe $EXE and outcome ok"
awk -v p="$GETPID" -v e="$EXE" 'NR > 1 && $2 == "get" && $3 == "dev" && $4 == p && $5 == e' "$OUT" |
	grep -q . || fail "get dev: not logged with pid $GETPID"

trace "list shows each profile's uses since unlock and the last one"
expect_exit 0 "$AKCTL" get prod
expect_exit 0 "$AKCTL" list
cat "$OUT" >>"$SHOWN"
head -1 "$OUT" | grep -q ' KEY  *USES  *LAST USE  *AGE$' || fail "list: no use columns"
awk '$1 == "prod" && $5 == 2 && $6 ~ /^[0-9]+s$/' "$OUT" | grep -q . || fail "list: prod not used twice just now"
awk '$1 == "dev" && $5 == 1 && $6 ~ /^[0-9]+s$/' "$OUT" | grep -q . || fail "list: dev not used once just now"
expect_exit 0 "$AKCTL" list --json
cat "$OUT" >>"$SHOWN"
"$PY" -c 'import json, sys
rows = {r["name"]: r for r in json.load(open(sys.argv[1]))}
assert rows["prod"]["uses"] == 2 and rows["dev"]["uses"] == 1, rows
assert rows["prod"]["last_use"].endswith("Z"), rows' "$OUT" || fail "list --json: uses"

trace "a failed handout shows its outcome"
expect_exit 5 "$AKCTL" get missing
log --profile missing
assert_eq "$(rows get missing)" 1 "get missing rows"
assert_eq "$(($(wc -l <"$OUT") - 1))" 1 "--profile missing: only its row"
grep -q 'no such profile$' "$OUT" || fail "get missing: outcome not shown"

trace "edits, removals and get --previous are logged too"
expect_exit 0 "$AKCTL" set dev --description "staging"
expect_exit 1 "$AKCTL" get dev --previous
expect_exit 0 "$AKCTL" rm dev
log --profile dev
assert_eq "$(rows edit dev)" 1 "edit dev rows"
assert_eq "$(rows get-previous dev)" 1 "get-previous dev rows"
assert_eq "$(rows remove dev)" 1 "remove dev rows"
grep -q 'no previous key' "$OUT" || fail "get --previous: outcome not shown"
awk 'NR > 1 && $3 != "dev"' "$OUT" | grep -q . && fail "--profile dev shows other profiles"

trace "--since"
log --since 1h
[ "$(rows get prod)" -ge 1 ] || fail "--since 1h lost recent entries"
# Entries are stamped in whole seconds: once the clock has passed the second of the last entry, a get,
# then --since reaching back to just after that second (asked again if the clock moved meanwhile).
tA=$(date +%s)
next_second() { [ "$(date +%s)" -gt "$((tA + 1))" ]; }
wait_until 5 next_second || fail "the clock did not move"
expect_exit 0 "$AKCTL" get prod
for _ in 1 2 3; do
	t2=$(date +%s)
	log --since "$((t2 - tA - 1))s"
	[ "$(date +%s)" = "$t2" ] && break
done
assert_eq "$(rows get prod)" 1 "--since: only the newest get"
assert_eq "$(rows add prod)" 0 "--since: older add"
expect_exit 2 "$AKCTL" log --since yesterday
expect_exit 2 "$AKCTL" log --profile 'bad name'

trace "--json: one object a line, all parsing"
log --json
[ "$(wc -l <"$OUT")" -ge 7 ] || fail "--json: too few entries"
while IFS= read -r line; do
	printf '%s' "$line" | "$PY" -m json.tool >/dev/null || fail "--json: not JSON: $line"
done <"$OUT"
"$PY" - "$OUT" "$EXE" "$GETPID" <<'PYEOF' || fail "--json: fields"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
got = [r for r in rows if r["op"] == "get" and r["profile"] == "dev"]
assert len(got) == 1 and got[0]["pid"] == int(sys.argv[3]) and got[0]["exe"] == sys.argv[2], got
assert got[0]["outcome"] == "ok" and got[0]["code"] == 0, got
miss = [r for r in rows if r["profile"] == "missing"]
assert len(miss) == 1 and miss[0]["code"] == 14, miss
for r in rows:
    assert set(r) == {"time", "unix_time", "op", "profile", "pid", "uid", "exe", "outcome", "code"}, r
PYEOF

trace "--follow prints new entries as they come"
"$AKCTL" log --follow --profile prod >"$T/follow" 2>&1 &
FPID=$!
wait_until 10 grep -q '^TIME' "$T/follow" || fail "--follow: no header"
n0=$(grep -c ' get  *prod ' "$T/follow")
[ "$n0" -ge 2 ] || fail "--follow: the entries so far are missing"
expect_exit 0 "$AKCTL" get prod
followed() { [ "$(grep -c ' get  *prod ' "$T/follow")" -eq "$1" ]; }
wait_until 10 followed $((n0 + 1)) ||
	{ cat "$T/follow" >&2; fail "--follow: the new get did not show up once"; }
kill "$FPID"
wait "$FPID" 2>/dev/null
cat "$T/follow" >>"$SHOWN"

trace "the agent's own write when a grace period ends"
K3=$(fake_key)
printf '%s' "$K3" >"$T/in"
expect_exit 0 "$AKCTL" rotate prod --grace 2s --no-validate <"$T/in"
expired() {
	"$AKCTL" log >"$T/exp" 2>&1 && awk -v p="$AKAGENT_PID" '$2 == "expire" && $3 == "-" && $4 == p && $NF == "ok"' "$T/exp" | grep -q .
}
wait_until 30 expired || { cat "$T/exp" >&2; fail "no expire row by the agent itself"; }
cat "$T/exp" >>"$SHOWN"
log --profile prod
[ "$(rows edit prod)" -ge 1 ] || fail "rotate: no edit row"

trace "locked: no log; lock wipes it"
expect_exit 0 "$AKCTL" lock
expect_exit 4 "$AKCTL" --no-prompt log
cat "$OUT" "$ERR" >>"$SHOWN"
unlock
log
assert_bytes "$OUT" ""
log --json
assert_bytes "$OUT" ""
expect_exit 0 "$AKCTL" list
cat "$OUT" >>"$SHOWN"
awk '$1 == "prod" && $5 == 0 && $6 == "-"' "$OUT" | grep -q . || fail "list after lock: prod still counted"

trace "no output held a secret"
assert_no_secret "$SHOWN" "$K1" "log output"
assert_no_secret "$SHOWN" "$K2" "log output"
assert_no_secret "$SHOWN" "$K3" "log output"
assert_no_secret "$SHOWN" "$PASS" "log output"
trace "ok"
