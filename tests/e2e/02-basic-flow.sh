#!/bin/bash
# init / unlock / add / list / show / get / env / use / exec / rm / lock, with exact exit codes and bytes.
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

KEY=$(fake_key)
KEY2=$(fake_key)
KEY3=$(fake_key)
STORE="$XDG_DATA_HOME/akagent/keystore"

trace "version and help"
expect_exit 0 "$AKCTL" --version
[ -s "$OUT" ] || fail "akctl --version printed nothing"
expect_exit 0 "$AKCTL" --help
for c in init unlock lock status passwd add rm list show get env use exec; do
	expect_exit 0 "$AKCTL" "$c" --help
	[ -s "$OUT" ] || fail "akctl $c --help printed nothing on stdout"
done
expect_exit 2 "$AKCTL" no-such-command
expect_exit 2 "$AKCTL"

trace "no agent: status 3, read commands 3"
expect_exit 3 "$AKCTL" status
expect_exit 3 "$AKCTL" list
grep -q "run 'akctl init' first" "$ERR" || fail "list before init: no hint to run init"
expect_exit 3 "$AKCTL" get production
AKAGENT_SOCK="$T/nowhere.sock" expect_exit 3 "$AKCTL" get production

trace "init"
init_store
[ -f "$STORE" ] || fail "no keystore at $STORE"
assert_eq "$(stat -c %a "$STORE")" 600 "keystore mode"
assert_eq "$(stat -c %a "$(dirname "$STORE")")" 700 "keystore directory mode"
cp "$STORE" "$T/store.gen0"
expect_exit nonzero "$AKCTL" --passphrase-fd 3 init --kdf insecure-test 3<<<"$PASS"
cmp -s "$STORE" "$T/store.gen0" || fail "a second init changed the keystore"
head -n1 "$STORE" | grep -q '"insecure-test"' || fail "header does not record the insecure-test preset"
expect_exit nonzero "$AKCTL" --passphrase-fd 3 -f "$T/other" init --kdf no-such-kdf 3<<<"$PASS"

trace "agent: locked => status 4, read commands 4"
start_agent
expect_exit 4 "$AKCTL" status
expect_exit 4 "$AKCTL" list
expect_exit 0 "$PY" "$TESTS_DIR/rawclient.py" listone "$AKAGENT_SOCK" production
assert_eq "$(cat "$OUT")" "error 13" "LIST_ONE while locked is LOCKED"
expect_exit 4 "$AKCTL" get production
expect_exit 4 "$AKCTL" env production
expect_exit 4 "$AKCTL" use production
expect_exit 4 "$AKCTL" exec production -- true

trace "wrong passphrase => 6"
expect_exit 6 "$AKCTL" --passphrase-fd 3 unlock 3<<<"wrong-$PASS"
expect_exit 4 "$AKCTL" status
expect_exit nonzero "$AKCTL" unlock	# no fd, askpass fails, no tty: an error, never a hang
expect_exit 4 "$AKCTL" status

trace "unlock => status 0; unlock again never prompts"
unlock
expect_exit 0 "$AKCTL" status
grep -qi 'insecure' "$OUT" "$ERR" || fail "status does not warn about the insecure-test KDF"
expect_exit 0 "$AKCTL" unlock

trace "add (secret on stdin, through the agent)"
expect_exit 0 "$AKCTL" add production \
	--set ANTHROPIC_MODEL=claude-sonnet-4-5-20250929 --set MAX_TOKENS=1024 --description "prod key" \
	< <(printf '%s' "$KEY")
assert_no_secret "$OUT" "$KEY" "add's stdout"
assert_no_secret "$ERR" "$KEY" "add's stderr"
expect_exit 0 "$AKCTL" add staging < <(printf '%s\n' "$KEY2")	# one trailing newline is stripped
expect_exit 0 "$AKCTL" add other --var OPENAI_API_KEY --provider openai < <(printf '%s\r\n' "$KEY3")
expect_exit nonzero "$AKCTL" add staging < <(printf '%s' "$KEY3")	# exists, no --force
expect_exit 0 "$AKCTL" get staging
assert_bytes "$OUT" "$KEY2"
expect_exit nonzero "$AKCTL" add empty <<<""	# an empty secret is refused

trace "the keystore holds neither names nor secrets in the clear"
for s in "$KEY" "$KEY2" production staging claude-sonnet; do
	grep -qF -- "$s" "$STORE" && fail "keystore file contains '${s:0:12}...' in the clear"
done
assert_eq "$(stat -c %a "$STORE")" 600 "keystore mode after a write"

trace "bad names => 2, missing profile => 5"
expect_exit 2 "$AKCTL" get 'bad name'
expect_exit 2 "$AKCTL" get 'a/b'
expect_exit 2 "$AKCTL" get "$(printf 'x%.0s' $(seq 65))"
expect_exit 2 "$AKCTL" show '../etc'
expect_exit 2 "$AKCTL" add 'bad!name' < <(printf '%s' "$KEY")
expect_exit 2 "$AKCTL" add okname --var 1BAD < <(printf '%s' "$KEY")
expect_exit 2 "$AKCTL" add okname --set 'BAD-NAME=x' < <(printf '%s' "$KEY")
expect_exit 2 "$AKCTL" add okname --set NOEQUALS < <(printf '%s' "$KEY")
expect_exit 5 "$AKCTL" get okname
expect_exit 5 "$AKCTL" get nosuch
expect_exit 5 "$AKCTL" show nosuch
expect_exit 5 "$AKCTL" env nosuch
expect_exit 5 "$AKCTL" use nosuch
expect_exit 5 "$AKCTL" exec nosuch -- true
expect_exit 5 "$AKCTL" rm nosuch
expect_exit 2 "$AKCTL" env production --shell no-such-shell
expect_exit 2 "$AKCTL" get

trace "get: raw bytes, no newline when piped"
expect_exit 0 "$AKCTL" get production
assert_bytes "$OUT" "$KEY"
expect_exit 0 "$AKCTL" get production ANTHROPIC_API_KEY
assert_bytes "$OUT" "$KEY"
expect_exit 0 "$AKCTL" get production ANTHROPIC_MODEL
assert_bytes "$OUT" "claude-sonnet-4-5-20250929"
expect_exit 0 "$AKCTL" get other
assert_bytes "$OUT" "$KEY3"
expect_exit nonzero "$AKCTL" get production NO_SUCH_VAR
[ -s "$OUT" ] && fail "get of a missing variable printed something"
HDR="x-api-key: $("$AKCTL" get production)"
assert_eq "$HDR" "x-api-key: $KEY" "curl header built from get"

trace "list: names, redacted keys, never a secret"
expect_exit 0 "$AKCTL" list
for s in "$KEY" "$KEY2" "$KEY3"; do assert_no_secret "$OUT" "$s" "list"; done
for n in production staging other; do grep -qw "$n" "$OUT" || fail "list lacks $n"; done
grep -qF "sk-ant-api03-…${KEY: -4}" "$OUT" || fail "list lacks the redacted form sk-ant-api03-…${KEY: -4}"
grep -q anthropic "$OUT" || fail "list lacks the provider"
expect_exit 0 "$AKCTL" list --json
for s in "$KEY" "$KEY2" "$KEY3"; do assert_no_secret "$OUT" "$s" "list --json"; done
"$PY" - "$OUT" <<'PY' || fail "list --json is not what was added"
import json, sys
doc = json.load(open(sys.argv[1]))
rows = doc["profiles"] if isinstance(doc, dict) else doc
names = sorted(r["name"] for r in rows)
assert names == ["other", "production", "staging"], names
PY

trace "LIST_ONE: one profile's list row, no secret; NO_PROFILE (14) for a missing one"
expect_exit 0 "$PY" "$TESTS_DIR/rawclient.py" listone "$AKAGENT_SOCK" staging
assert_eq "$(cat "$OUT")" "row 1 staging" "LIST_ONE staging"
for s in "$KEY" "$KEY2" "$KEY3"; do assert_no_secret "$OUT" "$s" "LIST_ONE"; done
expect_exit 0 "$PY" "$TESTS_DIR/rawclient.py" listone "$AKAGENT_SOCK" nosuch
assert_eq "$(cat "$OUT")" "error 14" "LIST_ONE of a missing profile"

trace "show: details, no secret"
expect_exit 0 "$AKCTL" show production
assert_no_secret "$OUT" "$KEY" "show"
for s in production anthropic ANTHROPIC_API_KEY ANTHROPIC_MODEL claude-sonnet-4-5-20250929 MAX_TOKENS \
	"prod key"; do
	grep -qF -- "$s" "$OUT" || fail "show lacks '$s'"
done

trace "env: sh eval, json"
expect_exit 0 "$AKCTL" env production --shell sh
cp "$OUT" "$T/env.sh"
env -i PATH="$PATH" sh -c '. "$1"; printenv ANTHROPIC_API_KEY; printenv ANTHROPIC_MODEL; printenv MAX_TOKENS' \
	sh "$T/env.sh" > "$T/env.got" || fail "evaluating env output failed"
assert_bytes "$T/env.got" "$KEY"$'\nclaude-sonnet-4-5-20250929\n1024\n'
expect_exit 0 "$AKCTL" env production --shell json
"$PY" - "$OUT" "$KEY" <<'PY' || fail "env --shell json is wrong"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["ANTHROPIC_API_KEY"] == sys.argv[2]
assert d["ANTHROPIC_MODEL"] == "claude-sonnet-4-5-20250929"
assert d["MAX_TOKENS"] == "1024"
assert set(d) <= {"ANTHROPIC_API_KEY", "ANTHROPIC_MODEL", "MAX_TOKENS", "AKCTL_PROFILE"}, d
PY
if "$PY" -c 'import dotenv' 2>/dev/null; then
	expect_exit 0 "$AKCTL" env production --shell dotenv
	"$PY" - "$OUT" "$KEY" <<'PY' || fail "env --shell dotenv is wrong"
import sys
from dotenv import dotenv_values
d = dotenv_values(sys.argv[1], interpolate=False)
assert d["ANTHROPIC_API_KEY"] == sys.argv[2], d
assert d["MAX_TOKENS"] == "1024"
PY
fi

trace "use: eval in this shell"
eval "$("$AKCTL" use production)" || fail "use production failed"
assert_eq "${ANTHROPIC_API_KEY:-}" "$KEY" "ANTHROPIC_API_KEY after use"
assert_eq "${AKCTL_PROFILE:-}" production "AKCTL_PROFILE after use"
assert_eq "$(printenv MAX_TOKENS)" 1024 "exported MAX_TOKENS"
unset ANTHROPIC_API_KEY ANTHROPIC_MODEL MAX_TOKENS AKCTL_PROFILE

trace "exec"
expect_exit 0 "$AKCTL" exec production -- printenv ANTHROPIC_API_KEY AKCTL_PROFILE
assert_bytes "$OUT" "$KEY"$'\nproduction\n'
expect_exit 0 "$AKCTL" exec other -- printenv OPENAI_API_KEY
assert_bytes "$OUT" "$KEY3"$'\n'
expect_exit 42 "$AKCTL" exec production -- sh -c 'exit 42'
expect_exit 127 "$AKCTL" exec production -- "$T/no-such-program"
[ -z "${ANTHROPIC_API_KEY+x}" ] || fail "exec changed the calling shell"

trace "add --force replaces; rm removes"
expect_exit 0 "$AKCTL" add staging --force < <(printf '%s' "$KEY3")
expect_exit 0 "$AKCTL" get staging
assert_bytes "$OUT" "$KEY3"
expect_exit 0 "$AKCTL" rm staging
expect_exit 5 "$AKCTL" get staging
expect_exit 5 "$AKCTL" rm staging
expect_exit 0 "$AKCTL" list --json
grep -q '"staging"' "$OUT" && fail "list still shows staging after rm"

trace "lock => 4; the agent keeps running"
expect_exit 0 "$AKCTL" lock
expect_exit 4 "$AKCTL" status
expect_exit 4 "$AKCTL" get production
expect_exit 4 "$AKCTL" list
expect_exit 0 "$AKCTL" lock	# locking a locked agent is fine
kill -0 "$AKAGENT_PID" || fail "agent exited on lock"

trace "add while locked writes the file directly (passphrase on fd 3)"
expect_exit 0 "$AKCTL" --passphrase-fd 3 add direct 3<<<"$PASS" < <(printf '%s' "$KEY2")
expect_exit 6 "$AKCTL" --passphrase-fd 3 add direct2 3<<<"wrong-$PASS" < <(printf '%s' "$KEY2")
unlock
expect_exit 0 "$AKCTL" get direct
assert_bytes "$OUT" "$KEY2"
expect_exit 5 "$AKCTL" get direct2
expect_exit 0 "$AKCTL" get production
assert_bytes "$OUT" "$KEY"

trace "a store given with -f / AKCTL_KEYSTORE"
OTHER="$T/elsewhere/ks"
mkdir -m 0700 "$T/elsewhere"
expect_exit 0 "$AKCTL" -f "$OTHER" --passphrase-fd 3 init --kdf insecure-test 3<<<"$PASS"
AKCTL_KEYSTORE="$OTHER" expect_exit 0 "$AKCTL" --passphrase-fd 3 add elsewhere 3<<<"$PASS" < <(printf '%s' "$KEY3")
expect_exit 5 "$AKCTL" get elsewhere	# the agent still serves the default store
# a read of a store named explicitly is refused by an agent that serves another one (exit 3)
expect_exit 3 "$AKCTL" -f "$OTHER" get elsewhere
grep -qF "serves" "$ERR" || fail "get -f: no word of the other keystore: $(cat "$ERR")"
AKCTL_KEYSTORE="$OTHER" expect_exit 3 "$AKCTL" env elsewhere

trace "SIGTERM: agent exits; then no agent => 3"
stop_agent
expect_exit 3 "$AKCTL" status
expect_exit 3 "$AKCTL" get production
trace ok
