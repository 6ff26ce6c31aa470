#!/bin/bash
# akctl import: .env (every syntax case, stored exactly), --dry-run (writes nothing, shows no secret),
# JSON configs (and wrong types), env:NAME, --replace (file rewritten with references, mode kept).
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

KEY=$(fake_key)
KEY2=$(fake_key)
STORE="$XDG_DATA_HOME/akagent/keystore"

init_store
start_agent
unlock

trace "help and usage"
expect_exit 0 "$AKCTL" import --help
expect_exit 2 "$AKCTL" import
expect_exit 2 "$AKCTL" import a b c
expect_exit 2 "$AKCTL" import env:ANTHROPIC_API_KEY x --replace
expect_exit nonzero "$AKCTL" import "$T/missing.env" x

trace ".env with every syntax case"
# Values: export prefix, single quotes with \' and \\, double quotes with escapes, inline comments,
# empty values, a bare KEY (skipped), multiline quoted values, CRLF lines, a repeated key (last wins).
printf '%s\n' \
	'# a comment' \
	"export ANTHROPIC_API_KEY='$KEY'  # the key" \
	"ANTHROPIC_MODEL=claude-sonnet-4-5 # inline comment" \
	'SINGLE='"'"'it\'"'"'s a \\ back'"'"'' \
	'DOUBLE="tab\there \"q\" back\\\\ nl\nend"' \
	'HASH=a#b' \
	'EMPTY=' \
	'BARE' \
	'MULTI="line one' \
	'line two"' \
	'SPACED =   padded value   ' \
	'REPEAT=first' \
	'REPEAT=second' > "$T/app.env"
printf 'CRLF=windows\r\n' >> "$T/app.env"
printf 'NOEOL=last' >> "$T/app.env"
cp "$T/app.env" "$T/app.env.orig"

# python-dotenv says what each value is: compare with it exactly.
$PY -c 'import json,sys; from dotenv import dotenv_values; json.dump(dotenv_values(sys.argv[1], interpolate=False), open(sys.argv[2], "w"))' \
	"$T/app.env" "$T/oracle.json" || fail "python3-dotenv (Debian) is needed: apt install python3-dotenv"

expect_exit 0 "$AKCTL" import "$T/app.env" app
assert_no_secret "$OUT" "$KEY" "import stdout"
assert_no_secret "$ERR" "$KEY" "import stderr"
grep -q 'BARE has no value' "$ERR" || fail "no note about the bare KEY"
expect_exit 0 "$AKCTL" get app
assert_bytes "$OUT" "$KEY"
expect_exit 0 "$AKCTL" env app --shell json
cp "$OUT" "$T/stored.json"
$PY - "$T/oracle.json" "$T/stored.json" <<'EOF' || fail "stored profile differs from python-dotenv's reading"
import json, sys
want = {k: v for k, v in json.load(open(sys.argv[1])).items() if v is not None}
got = json.load(open(sys.argv[2]))
if want != got:
    print("want", sorted(want), "got", sorted(got), file=sys.stderr)
    for k in set(want) | set(got):
        if want.get(k) != got.get(k):
            print("differs:", k, file=sys.stderr)
    sys.exit(1)
EOF
expect_exit 0 "$AKCTL" get app DOUBLE
assert_bytes "$OUT" "$(printf 'tab\there "q" back\\\\ nl\nend')"
expect_exit 0 "$AKCTL" get app SINGLE
assert_bytes "$OUT" "it's a \\ back"
expect_exit 0 "$AKCTL" get app MULTI
assert_bytes "$OUT" "$(printf 'line one\nline two')"
expect_exit 0 "$AKCTL" get app REPEAT
assert_bytes "$OUT" "second"
expect_exit 0 "$AKCTL" get app CRLF
assert_bytes "$OUT" "windows"
cmp -s "$T/app.env" "$T/app.env.orig" || fail "import without --replace changed the file"

trace "an existing profile needs --force"
expect_exit 1 "$AKCTL" import "$T/app.env" app
grep -q 'exists' "$ERR" || fail "no 'exists' message"
expect_exit 0 "$AKCTL" import "$T/app.env" app --force

trace "--dry-run writes nothing and prints no secret"
cp "$STORE" "$T/store.before"
expect_exit 0 "$AKCTL" import "$T/app.env" dry --dry-run --replace
assert_no_secret "$OUT" "$KEY" "dry-run stdout"
assert_no_secret "$ERR" "$KEY" "dry-run stderr"
grep -q 'ANTHROPIC_API_KEY=sk-ant-api03-' "$OUT" || fail "dry-run does not show the redacted key"
grep -q 'ANTHROPIC_MODEL=claude-sonnet-4-5' "$OUT" || fail "dry-run does not show plain variables"
grep -q 'would rewrite' "$OUT" || fail "dry-run --replace does not say what it would rewrite"
cmp -s "$STORE" "$T/store.before" || fail "--dry-run changed the keystore"
cmp -s "$T/app.env" "$T/app.env.orig" || fail "--dry-run --replace changed the file"
expect_exit 5 "$AKCTL" get dry

trace "secret detection: none, several, --var"
printf 'FOO=1\nBAR=2\n' > "$T/nokey.env"
expect_exit 1 "$AKCTL" import "$T/nokey.env" nokey
grep -q -- '--var' "$ERR" || fail "no hint about --var"
printf 'ANTHROPIC_API_KEY=%s\nOPENAI_API_KEY=%s\n' "$KEY" "$KEY2" > "$T/two.env"
expect_exit 2 "$AKCTL" import "$T/two.env" two
grep -q 'ANTHROPIC_API_KEY, OPENAI_API_KEY' "$ERR" || fail "several secrets not named"
assert_no_secret "$ERR" "$KEY" "several-secrets error"
expect_exit 0 "$AKCTL" import "$T/two.env" two --var OPENAI_API_KEY
expect_exit 0 "$AKCTL" show two
grep -q openai "$OUT" || fail "provider not taken from OPENAI_API_KEY"
expect_exit 0 "$AKCTL" get two
assert_bytes "$OUT" "$KEY2"
printf 'MY_SERVICE_TOKEN=tok-123456\nREGION=eu\n' > "$T/generic.env"
expect_exit 0 "$AKCTL" import "$T/generic.env" gen
expect_exit 0 "$AKCTL" env gen --shell json
assert_bytes "$OUT" '{"MY_SERVICE_TOKEN":"tok-123456","REGION":"eu"}
'
printf 'ANTHROPIC_API_KEY=%s\nbad.name=1\n' "$KEY" > "$T/badname.env"
expect_exit 1 "$AKCTL" import "$T/badname.env" badname
printf 'ANTHROPIC_API_KEY=ak://prod/ANTHROPIC_API_KEY\n' > "$T/ref.env"
expect_exit 1 "$AKCTL" import "$T/ref.env" refd
printf 'ANTHROPIC_API_KEY=\n' > "$T/emptykey.env"
expect_exit nonzero "$AKCTL" import "$T/emptykey.env" emptykey
printf 'A=\xff\n' > "$T/binary.env"
expect_exit 1 "$AKCTL" import "$T/binary.env" bin

trace "JSON config"
printf '{"api_key": "%s", "model": "claude-opus-4-1", "max_tokens": 1024, "temperature": 0.7}\n' "$KEY" \
	> "$T/config.json"
expect_exit 0 "$AKCTL" import "$T/config.json" cfg
assert_no_secret "$ERR" "$KEY" "json import stderr"
expect_exit 0 "$AKCTL" env cfg --shell json
assert_bytes "$OUT" "{\"ANTHROPIC_API_KEY\":\"$KEY\",\"ANTHROPIC_MODEL\":\"claude-opus-4-1\",\"MAX_TOKENS\":\"1024\",\"TEMPERATURE\":\"0.7\"}
"
printf '{"api_key": "%s", "max_tokens": 2048.0, "temperature": 1, "extra": "x"}' "$KEY" > "$T/c2.json"
expect_exit 0 "$AKCTL" import "$T/c2.json" cfg2
grep -q 'ignored key "extra"' "$ERR" || fail "unknown key not reported"
expect_exit 0 "$AKCTL" get cfg2 MAX_TOKENS
assert_bytes "$OUT" 2048
expect_exit 0 "$AKCTL" get cfg2 TEMPERATURE
assert_bytes "$OUT" 1
for bad in '{"api_key": 12345}' '{"api_key": "k", "model": 4}' '{"api_key": "k", "max_tokens": "1024"}' \
	'{"api_key": "k", "max_tokens": 10.5}' '{"api_key": "k", "temperature": "hot"}' \
	'{"model": "m"}' '["api_key"]' '{"api_key": "k",' ; do
	printf '%s' "$bad" > "$T/bad.json"
	expect_exit 1 "$AKCTL" import "$T/bad.json" badjson
	[ "$(wc -l < "$ERR")" -eq 1 ] || fail "wrong JSON ($bad): not one line of error"
done
grep -q '"temperature" must be a number' "$ERR" 2>/dev/null || true
expect_exit 5 "$AKCTL" get badjson

trace "env:NAME"
ANTHROPIC_API_KEY="$KEY" expect_exit 0 "$AKCTL" import env:ANTHROPIC_API_KEY fromenv
assert_no_secret "$ERR" "$KEY" "env import stderr"
expect_exit 0 "$AKCTL" get fromenv
assert_bytes "$OUT" "$KEY"
expect_exit 0 "$AKCTL" env fromenv --shell json
assert_bytes "$OUT" "{\"ANTHROPIC_API_KEY\":\"$KEY\"}
"
MY_TOKEN="$KEY2" expect_exit 0 "$AKCTL" import env:MY_TOKEN tok --var OTHER_TOKEN
expect_exit 0 "$AKCTL" env tok --shell json
assert_bytes "$OUT" "{\"OTHER_TOKEN\":\"$KEY2\"}
"
expect_exit 1 "$AKCTL" import env:NOT_SET_ANYWHERE x
expect_exit 2 "$AKCTL" import env:bad-name x

trace "default profile name"
ANTHROPIC_API_KEY="$KEY" expect_exit 0 "$AKCTL" import env:ANTHROPIC_API_KEY
expect_exit 0 "$AKCTL" get default
assert_bytes "$OUT" "$KEY"

trace "--replace rewrites the file with references, keeping everything else and the mode"
chmod 0640 "$T/app.env"
ln -s app.env "$T/link.env"
expect_exit 0 "$AKCTL" import "$T/link.env" prod --replace
[ -L "$T/link.env" ] || fail "--replace replaced the symlink instead of its target"
assert_eq "$(stat -c %a "$T/app.env")" 640 "mode after --replace"
assert_no_secret "$T/app.env" "$KEY" "the rewritten .env"
sed "s|^export ANTHROPIC_API_KEY='$KEY'  # the key|export ANTHROPIC_API_KEY=ak://prod/ANTHROPIC_API_KEY  # the key|" \
	"$T/app.env.orig" > "$T/app.env.want"
cmp -s "$T/app.env" "$T/app.env.want" || { diff "$T/app.env.want" "$T/app.env" >&2; fail "rewritten file differs"; }
ls "$T" | grep -q 'app.env.tmp' && fail "a temporary file was left behind"
# A quoted value touching its comment, and a repeated key: both bindings become references.
printf "A=1\nTOKEN='%s'#c\nTOKEN=\"%s\"\n" "$KEY" "$KEY2" > "$T/touch.env"
expect_exit 0 "$AKCTL" import "$T/touch.env" touch --replace
printf 'A=1\nTOKEN=ak://touch/TOKEN #c\nTOKEN=ak://touch/TOKEN\n' > "$T/touch.want"
cmp -s "$T/touch.env" "$T/touch.want" || fail "touch.env not rewritten as expected: $(od -c "$T/touch.env" | head)"
expect_exit 0 "$AKCTL" get touch
assert_bytes "$OUT" "$KEY2"

trace "a failed import leaves the file alone"
printf 'ANTHROPIC_API_KEY=%s\n' "$KEY" > "$T/keep.env"
cp "$T/keep.env" "$T/keep.orig"
expect_exit 1 "$AKCTL" import "$T/keep.env" prod --replace	# exists, no --force
cmp -s "$T/keep.env" "$T/keep.orig" || fail "--replace rewrote the file although nothing was stored"

trace "without an agent: directly on the keystore with the passphrase"
"$AKCTL" lock >/dev/null 2>&1
printf 'ANTHROPIC_API_KEY=%s\n' "$KEY2" > "$T/direct.env"
expect_exit 0 "$AKCTL" --passphrase-fd 3 import "$T/direct.env" direct 3<<<"$PASS"
unlock
expect_exit 0 "$AKCTL" get direct
assert_bytes "$OUT" "$KEY2"

trace "nothing secret on the keystore file"
for s in "$KEY" "$KEY2"; do
	grep -qF -- "$s" "$STORE" && fail "keystore holds a key in the clear"
done
exit 0
