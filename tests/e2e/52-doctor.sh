#!/bin/bash
# akctl doctor: every item fails when its fault is planted (keystore modes, a weak KDF, the agent's core
# limit and memlock room, no agent, one key under two profiles, a key overdue for rotation, a stored key
# in the environment, .env files git would commit or holding a key, a key in shell history) and all
# pass on a clean setup; exit 0 only then; --json; no secret in any output.
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

command -v git >/dev/null || skip "git not installed"
two_keys_unlocked
W="$T/work"
mkdir -p "$W"
cd "$W" || fail "cd"
git init -q . || fail "git init"

# doctor_json [ENV...]: run doctor --json (through env with ENV) into $OUT; wanted exit in $1.
doctor_json() {
	local want=$1
	shift
	expect_exit "$want" env "$@" "$AKCTL" --no-prompt doctor --json
	no_value "$OUT" "$ERR"
}
# status_of ID: that check's status in $OUT.
status_of() {
	"$PY" -c 'import json,sys
d=json.load(open(sys.argv[1]))
print([c["status"] for c in d["checks"] if c["id"]==sys.argv[2]][0])' "$OUT" "$1"
}
# expect_status ID STATUS
expect_status() {
	local got
	got=$(status_of "$1") || fail "no check $1 in: $(cat "$OUT")"
	[ "$got" = "$2" ] || fail "check $1: got $got, wanted $2: $(cat "$OUT")"
}
# only_failing ID...: exactly these checks fail.
only_failing() {
	local got want
	got=$("$PY" -c 'import json,sys
d=json.load(open(sys.argv[1]))
print(" ".join(sorted(c["id"] for c in d["checks"] if c["status"]=="fail")))' "$OUT")
	want=$(printf '%s\n' "$@" | sort | tr '\n' ' ' | sed 's/ $//')
	[ "$got" = "$want" ] || fail "failing checks: got '$got', wanted '$want'"
}
trace "weak KDF (insecure-test) fails alone"
doctor_json 1
only_failing kdf

trace "passwd --kdf moderate: a clean setup passes, exit 0"
expect_exit 0 "$AKCTL" --passphrase-fd 3 passwd --kdf moderate 3<<<"$PASS
$PASS
$PASS"
unlock
doctor_json 0
only_failing
"$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["ok"] is True' "$OUT" || fail "ok not true"
expect_status rotation pass
grep -q "no rotation policy set" "$OUT" || fail "rotation without a policy: $(cat "$OUT")"
am_root || expect_status agent-dumpable pass
expect_status agent-core pass
expect_status agent-mlock pass
expect_exit 0 "$AKCTL" --no-prompt doctor
grep -q '^✓ keystore file 0600' "$OUT" || fail "text output: $(cat "$OUT")"
grep -q $'\033' "$OUT" && fail "colour when stdout is not a terminal"

trace "keystore mode 0644, then its directory 0755"
STORE="$XDG_DATA_HOME/akagent/keystore"
chmod 644 "$STORE"
doctor_json 1
only_failing keystore-modes
chmod 600 "$STORE"
chmod 755 "$(dirname "$STORE")"
doctor_json 1
only_failing keystore-modes
expect_exit 1 "$AKCTL" --no-prompt doctor
grep -q '^✗ keystore' "$OUT" || fail "no ✗ line: $(cat "$OUT")"
grep -q '^    fix: chmod 600' "$OUT" || fail "no fix line: $(cat "$OUT")"
chmod 700 "$(dirname "$STORE")"

if command -v prlimit >/dev/null; then
	trace "the agent's core limit raised, then its memlock room taken away"
	prlimit --pid "$AKAGENT_PID" --core=unlimited:unlimited || fail "prlimit --core"
	doctor_json 1
	only_failing agent-core
	prlimit --pid "$AKAGENT_PID" --core=0:0 || fail "prlimit --core=0"
	soft=$(prlimit --pid "$AKAGENT_PID" --memlock --output SOFT --noheadings --raw | tr -d ' ')
	prlimit --pid "$AKAGENT_PID" --memlock=4096: || fail "prlimit --memlock"
	doctor_json 1
	only_failing agent-memlock-room
	prlimit --pid "$AKAGENT_PID" --memlock="$soft": || fail "prlimit --memlock back"
	doctor_json 0
fi

trace "one key under two profiles"
add_profile shared "$KEY"
doctor_json 1
only_failing shared-key
grep -q 'production,shared' "$OUT" || fail "the profiles are not named: $(cat "$OUT")"
expect_exit 0 "$AKCTL" rm shared

trace "a stored key in the environment; the same through exec passes"
doctor_json 1 "OTHER_NAME=$KEY"
only_failing environment
grep -q 'OTHER_NAME holds production ANTHROPIC_API_KEY' "$OUT" || fail "variable not named: $(cat "$OUT")"
expect_exit 0 "$AKCTL" exec production -- "$AKCTL" --no-prompt doctor --json
no_value "$OUT" "$ERR"
# exec's own variable, under another profile's name, is not excused.
doctor_json 1 AKCTL_PROFILE=dev "ANTHROPIC_API_KEY=$KEY"
only_failing environment

trace ".env files: one git would commit, one holding a key"
mkdir -p sub
printf 'PORT=1\n' > sub/.env.local
doctor_json 1
only_failing dotenv
grep -q 'sub/.env.local (not ignored by git)' "$OUT" || fail "not named: $(cat "$OUT")"
printf '.env*\n' > .gitignore
doctor_json 0
printf 'ANTHROPIC_API_KEY=%s\n' "$KEY2" > sub/.env.local
doctor_json 1
only_failing dotenv
grep -q 'sub/.env.local (holds a stored key)' "$OUT" || fail "not named: $(cat "$OUT")"
rm sub/.env.local

trace "a key in shell history (bash, then zsh's format)"
printf 'ls\nexport ANTHROPIC_API_KEY=%s\n' "$KEY" > "$HOME/.bash_history"
doctor_json 1
only_failing history
rm "$HOME/.bash_history"
printf ': 1700000000:0;curl -H "x-api-key: %s"\n' "$KEY2" > "$HOME/.zsh_history"
doctor_json 1
only_failing history
rm "$HOME/.zsh_history"
doctor_json 0

trace "a key overdue for rotation fails with its fix; a policy kept passes"
expect_exit 0 "$AKCTL" set production --rotate-every 90d
doctor_json 0
expect_status rotation pass
expect_exit 0 "$AKCTL" set production --rotate-every 1s
# overdue once a second has passed since the key was stored: poll, the machine may be slow
rotation_fails() {
	"$AKCTL" --no-prompt doctor --json > "$OUT" 2> "$ERR"
	[ "$(status_of rotation)" = fail ]
}
wait_until 30 rotation_fails || fail "rotation never overdue: $(cat "$OUT")"
no_value "$OUT" "$ERR"
only_failing rotation
"$PY" -c 'import json,sys
d=json.load(open(sys.argv[1]))
c=[c for c in d["checks"] if c["id"]=="rotation"][0]
assert c["fix"]=="akctl rotate production", c
assert "production (every 1s" in c["detail"] and "overdue" in c["detail"], c' "$OUT" ||
	fail "rotation item: $(cat "$OUT")"
expect_exit 1 "$AKCTL" --no-prompt doctor
grep -q '^    fix: akctl rotate production$' "$OUT" || fail "no fix line: $(cat "$OUT")"
expect_exit 0 "$AKCTL" set production --rotate-every 0
doctor_json 0

trace "a locked agent: the key checks fail as not checked"
expect_exit 0 "$AKCTL" lock
doctor_json 1
only_failing shared-key rotation environment history
grep -q 'not checked: the agent is locked' "$OUT" || fail "reason missing: $(cat "$OUT")"

trace "no agent: the agent's items fail too"
stop_agent
doctor_json 1
only_failing agent-dumpable agent-core agent-mlock agent-memlock-room shared-key rotation environment history
unset AKAGENT_SOCK
exit 0
