#!/bin/bash
# A rotated profile's previous key, while the agent keeps it for its grace, is still a live key: scan
# finds a copy of it labelled "(previous)", redact masks it; no value in any output.
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

OLD=$(fake_key)
NEW=$(fake_key)
init_store
start_agent
unlock
add_profile production "$OLD"

# no_value FILE...: neither key appears in any of them (nor its distinctive part).
no_value() {
	local f
	for f in "$@"; do
		assert_no_secret "$f" "${OLD:13:40}" "$f"
		assert_no_secret "$f" "${NEW:13:40}" "$f"
	done
}

mkdir -p "$T/tree"
printf 'ANTHROPIC_API_KEY=%s\n' "$OLD" > "$T/tree/.env"
printf 'note\n%s\n' "$(printf '%s' "$OLD" | base64 -w0)" > "$T/tree/b64"

trace "before the rotation the old key is the current one"
expect_exit 1 "$AKCTL" scan --no-patterns "$T/tree"
no_value "$OUT" "$ERR"
grep -q "^$T/tree/.env:1: production ANTHROPIC_API_KEY (raw)" "$OUT" || fail "current key not found: $(cat "$OUT")"

trace "rotate: the old key is found as the previous one"
printf '%s' "$NEW" > "$T/in"
expect_exit 0 "$AKCTL" rotate production --no-validate < "$T/in"
expect_exit 0 "$AKCTL" list --json
"$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); d=d if isinstance(d,list) else d["profiles"]; assert any(p.get("previous_until") for p in d), d' "$OUT" ||
	fail "list --json shows no previous key after rotate"
expect_exit 1 "$AKCTL" scan --no-patterns "$T/tree"
no_value "$OUT" "$ERR"
grep -q "^$T/tree/.env:1: production ANTHROPIC_API_KEY (previous) (raw) fp:[0-9a-f]\{12\}$" "$OUT" ||
	fail "previous key not labelled previous: $(cat "$OUT")"
grep -q "^$T/tree/b64:2: production ANTHROPIC_API_KEY (previous) (base64" "$OUT" ||
	fail "previous key's base64 not found: $(cat "$OUT")"
assert_eq "$(wc -l < "$OUT")" 2 "one line per planted copy"
expect_exit 1 "$AKCTL" scan --json --no-patterns "$T/tree/.env"
no_value "$OUT" "$ERR"
"$PY" -c 'import json,sys; o=json.loads(open(sys.argv[1]).readline()); assert o["key"]=="production ANTHROPIC_API_KEY (previous)", o' "$OUT" ||
	fail "--json key of the previous"

trace "the new key is found as the current one, the old one still as previous"
printf 'X=%s\n' "$NEW" > "$T/tree/new"
expect_exit 1 "$AKCTL" scan --no-patterns "$T/tree"
no_value "$OUT" "$ERR"
grep -q "^$T/tree/new:1: production ANTHROPIC_API_KEY (raw)" "$OUT" || fail "new key not found: $(cat "$OUT")"
assert_eq "$(grep -c '(previous)' "$OUT")" 2 "previous copies still reported"

trace "redact masks the previous key and the current one"
printf 'old %s new %s end\n' "$OLD" "$NEW" > "$T/stream"
expect_exit 0 "$AKCTL" redact < "$T/stream"
no_value "$OUT" "$ERR"
assert_eq "$(cat "$OUT")" "old [ak:production] new [ak:production] end" "redact output"

trace "doctor: the previous key in the environment is named; exec --previous sets it on purpose"
envstatus() {
	"$PY" -c 'import json,sys
d=json.load(open(sys.argv[1]))
c=[c for c in d["checks"] if c["id"]=="environment"][0]
print(c["status"], c["detail"])' "$OUT"
}
cd "$T/tree" || fail "cd"
expect_exit 1 env "OTHER=$OLD" "$AKCTL" --no-prompt doctor --json
no_value "$OUT" "$ERR"
case $(envstatus) in
"fail OTHER holds production ANTHROPIC_API_KEY (previous)") ;;
*) fail "doctor environment with the previous key: $(envstatus)" ;;
esac
"$AKCTL" exec --previous production -- "$AKCTL" --no-prompt doctor --json > "$OUT" 2> "$ERR"
no_value "$OUT" "$ERR"
case $(envstatus) in
pass*) ;;
*) fail "doctor under exec --previous: $(envstatus)" ;;
esac

trace "rotate --finish: the old key is no longer searched for"
expect_exit 0 "$AKCTL" rotate production --finish
rm "$T/tree/new"
expect_exit 0 "$AKCTL" scan --no-patterns "$T/tree"
no_value "$OUT" "$ERR"
[ -s "$OUT" ] && fail "finished rotation still reported: $(cat "$OUT")"
trace "secret variables are searched for too, and their previous values after a rotate --var"
TOK="tok-$(rand_word)$(rand_word)"
TOK2="tok-$(rand_word)$(rand_word)"
printf '%s\n%s\n' "$(fake_key)" "$TOK" | "$AKCTL" add withvar --secret DB_TOKEN >/dev/null 2>&1 ||
	fail "add --secret failed"
printf 'db=%s\n' "$TOK" > "$T/tree/db"
expect_exit 1 "$AKCTL" scan --no-patterns "$T/tree"
grep -q '^.*/db:1: withvar DB_TOKEN (raw)' "$OUT" || fail "a secret variable was not found: $(cat "$OUT")"
assert_no_secret "$OUT" "$TOK" "scan output"
printf '%s' "$TOK2" | "$AKCTL" rotate withvar --var DB_TOKEN --no-validate >/dev/null 2>&1 ||
	fail "rotate --var failed"
expect_exit 1 "$AKCTL" scan --no-patterns "$T/tree"
grep -q '^.*/db:1: withvar DB_TOKEN (previous) (raw)' "$OUT" ||
	fail "a secret variable's previous value was not found: $(cat "$OUT")"
assert_no_secret "$OUT" "$TOK" "scan output"
trace "many profiles: every key found, and the previous ones, past the first batch of requests"
# scan asks for the profiles 32 requests at a time before reading the answers: 40 more profiles (and
# a previous key among the later ones) cross batches.
mkdir -p "$T/many"
for i in $(seq 40); do
	k=$(fake_key)
	add_profile "m$i" "$k"
	case $i in 1 | 33 | 40) printf 'K=%s\n' "$k" > "$T/many/m$i" ;; 35) OLD35=$k ;; esac
done
printf '%s' "$(fake_key)" | "$AKCTL" rotate m35 --no-validate >/dev/null 2>&1 || fail "rotate m35 failed"
printf 'K=%s\n' "$OLD35" > "$T/many/m35"
expect_exit 1 "$AKCTL" scan --no-patterns "$T/many"
for i in 1 33 40; do
	grep -q "^$T/many/m$i:1: m$i ANTHROPIC_API_KEY (raw)" "$OUT" || fail "m$i not found: $(cat "$OUT")"
done
grep -q "^$T/many/m35:1: m35 ANTHROPIC_API_KEY (previous) (raw)" "$OUT" ||
	fail "m35's previous key not found: $(cat "$OUT")"
assert_eq "$(wc -l < "$OUT")" 4 "one line per planted key"
exit 0
