#!/bin/bash
# akctl import of JSON objects of variables: what `env --shell json` prints is read back byte for byte;
# --json-path selects a nested object (a digit segment indexes an array); import --dry-run --json
# describes the profile without a secret. Every output is checked for the keys.
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

KEY=$(fake_key)
KEY2=$(fake_key)
OKEY="sk-proj-$(rand_word)$(rand_word)"
TOK="tok-$(rand_word)"
STORE="$XDG_DATA_HOME/akagent/keystore"
ALL_OUT="$T/all-output"

# i CODE ARGS...: akctl ARGS expecting CODE; stderr (and stdout, but for get and env, which print keys
# on purpose) kept for the final scan.
i() {
	local want=$1
	shift
	expect_exit "$want" "$AKCTL" "$@"
	cat "$ERR" >> "$ALL_OUT"
	case $1 in get | env) ;; *) cat "$OUT" >> "$ALL_OUT" ;; esac
}
# one_line: stderr is exactly one line.
one_line() {
	[ "$(grep -c '' "$ERR")" -eq 1 ] || fail "$1: not one line of error"
}

init_store
start_agent
unlock

trace "env --shell json, then import: the same profile, byte for byte"
HOSTILE=$'it\'s "q" $HOME `x` \\ back\nline2\ttab \xc3\xa9 \xe2\x80\xae'
printf '%s' "$KEY" > "$T/k"
expect_exit 0 "$AKCTL" add orig --set ANTHROPIC_MODEL=claude-x --set "HOSTILE=$HOSTILE" --set EMPTY= \
	--set MAX_TOKENS=1024 < "$T/k"
rm -f "$T/k"
i 0 env orig --shell json
cp "$OUT" "$T/orig.json"
i 0 import "$T/orig.json" copy
grep -q "imported profile copy (anthropic, secret ANTHROPIC_API_KEY, 4 variables)" "$ERR" ||
	fail "import of env json: $(cat "$ERR")"
i 0 env copy --shell json
cmp -s "$OUT" "$T/orig.json" || fail "env --shell json of the imported profile differs"
i 0 get copy HOSTILE
assert_bytes "$OUT" "$HOSTILE"
i 0 get copy
assert_bytes "$OUT" "$KEY"

trace "the secret variable is chosen as for .env files; the provider follows it"
printf '{"OPENAI_API_KEY": "%s", "OPENAI_ORG": "org-1", "N": 3, "F": false, "Z": null}\n' "$OKEY" \
	> "$T/oa.json"
i 0 import "$T/oa.json" oa
grep -q "Z has no value; skipped" "$ERR" || fail "a null value was not reported as skipped"
i 0 show oa
grep -q openai "$OUT" || fail "provider not inferred from OPENAI_API_KEY"
i 0 env oa --shell json
assert_bytes "$OUT" "{\"OPENAI_API_KEY\":\"$OKEY\",\"OPENAI_ORG\":\"org-1\",\"N\":\"3\",\"F\":\"false\"}
"
printf '{"ANTHROPIC_API_KEY": "%s", "OPENAI_API_KEY": "%s"}' "$KEY" "$OKEY" > "$T/two.json"
i 2 import "$T/two.json" two
grep -q "ANTHROPIC_API_KEY, OPENAI_API_KEY" "$ERR" || fail "several secrets not named"
i 0 import "$T/two.json" two --var OPENAI_API_KEY
printf '{"SERVICE_TOKEN": "%s", "PATH": "/evil", "ANTHROPIC_BASE_URL": "http://evil"}' "$TOK" > "$T/plant.json"
i 0 import "$T/plant.json" plant
grep -q "skipped 2 variables that could run code or redirect keys: PATH (shell start-up), ANTHROPIC_BASE_URL" "$ERR" ||
	fail "planted variables: $(cat "$ERR")"
i 0 env plant --shell json
assert_bytes "$OUT" "{\"SERVICE_TOKEN\":\"$TOK\"}
"
printf '{"A": "1", "A": "2", "X_TOKEN": "t"}' > "$T/dup.json"
i 0 import "$T/dup.json" dup
i 0 get dup A
assert_bytes "$OUT" 2

trace "--json-path: a nested object, an array element by index"
cat > "$T/nested.json" <<J
{"services": {"llm": {"api_key": "$KEY2", "model": "claude-nested"}},
 "envs": [{"OTHER_TOKEN": "x"}, {"ANTHROPIC_API_KEY": "$KEY", "REGION": "eu"}],
 "n": 5}
J
i 0 import "$T/nested.json" cfg --json-path services.llm
i 0 env cfg --shell json
assert_bytes "$OUT" "{\"ANTHROPIC_API_KEY\":\"$KEY2\",\"ANTHROPIC_MODEL\":\"claude-nested\"}
"
i 0 import "$T/nested.json" second --json-path envs.1
i 0 env second --shell json
assert_bytes "$OUT" "{\"ANTHROPIC_API_KEY\":\"$KEY\",\"REGION\":\"eu\"}
"
i 1 import "$T/nested.json" x --json-path services.nope
grep -q "^akctl: import: .*nested.json: --json-path: no 'nope'\$" "$ERR" || fail "missing member: $(cat "$ERR")"
one_line "missing member"
i 1 import "$T/nested.json" x --json-path envs.2
grep -q -- "--json-path: no '2'" "$ERR" || fail "index past the end: $(cat "$ERR")"
i 1 import "$T/nested.json" x --json-path envs.first
grep -q "meets an array: give an index" "$ERR" || fail "name on an array: $(cat "$ERR")"
one_line "name on an array"
i 1 import "$T/nested.json" x --json-path n.m
grep -q "not an object or array" "$ERR" || fail "path below a number: $(cat "$ERR")"
i 1 import "$T/nested.json" x --json-path n
grep -q "expected a JSON object" "$ERR" || fail "path to a number: $(cat "$ERR")"
i 1 import "$T/nested.json" x
grep -q '"services" is an object, not a value: choose a nested object with --json-path' "$ERR" ||
	fail "nested object without --json-path: $(cat "$ERR")"
one_line "nested object without --json-path"
for bad in "" . a. .a a..b; do
	i 2 import "$T/nested.json" x --json-path "$bad"
done
printf 'ANTHROPIC_API_KEY=%s\n' "$KEY" > "$T/a.env"
i 2 import "$T/a.env" x --json-path a
i 2 import env:HOME x --json-path a
i 5 get x

trace "import --dry-run --json: the profile described, secrets redacted, nothing written"
cp "$STORE" "$T/store.before"
printf 'ANTHROPIC_API_KEY=%s\nMY_SECRET=%s\nREGION=eu\n' "$KEY" "$TOK" > "$T/d.env"
i 0 import "$T/d.env" dry --dry-run --json --replace
"$PY" - "$OUT" "$T/d.env" <<'PY' || fail "dry-run --json: $(cat "$OUT")"
import json, sys
raw = open(sys.argv[1]).read()
assert raw.count("\n") == 1, "not one line"
d = json.loads(raw)
assert d["profile"] == "dry" and d["provider"] == "anthropic" and d["source"] is None, d
assert d["secret_var"] == "ANTHROPIC_API_KEY" and d["secret"].startswith("sk-ant-api03-"), d
assert d["variables"] == [
    {"name": "MY_SECRET", "value": d["variables"][0]["value"], "redacted": True},
    {"name": "REGION", "value": "eu", "redacted": False}], d["variables"]
assert d["replace"] == {"file": sys.argv[2], "values": 1, "reference": "ak://dry/ANTHROPIC_API_KEY"}, d
assert d["written"] is False, d
PY
i 0 import "$T/oa.json" dry --dry-run --json
"$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["replace"] is None and d["provider"] == "openai"' \
	"$OUT" || fail "dry-run --json of a JSON source: $(cat "$OUT")"
cmp -s "$STORE" "$T/store.before" || fail "--dry-run --json changed the keystore"
i 5 get dry
i 2 import "$T/d.env" dry --json
grep -q -- "--json goes with --dry-run" "$ERR" || fail "--json without --dry-run: $(cat "$ERR")"

trace "no key in any output"
grep -q '"written":false' "$ALL_OUT" || fail "sanity: the dry-run output is not in the scan"
for k in "$KEY" "$KEY2" "$OKEY" "$TOK"; do
	assert_no_secret "$ALL_OUT" "$k" "import's output"
done
exit 0
