#!/bin/bash
# `akctl add` alone at a terminal guides: profile name, provider (known ones offered), the secret's
# variable (the provider's by default), plain variables until an empty line, then the secret without
# echo and its live check (against the loopback fake provider). Driven through a pty.
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

PTY=("$PY" "$TESTS_DIR/pty_run.py" --timeout 60)
FAKE="$TESTS_DIR/fake/provider_server.py"
# key MARKER: an Anthropic-shaped key whose body starts with fake-MARKER- (the fake's verdict).
key() {
	local body
	body="fake-$1-$(head -c 96 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '=')"
	printf 'sk-ant-api03-%sAA' "${body:0:93}"
}

init_store
start_agent
unlock
"$PY" "$FAKE" --log "$T/req.log" --port-file "$T/port" >/dev/null 2>"$T/fake.err" &
track_pid $!
for i in $(seq 200); do
	[ -s "$T/port" ] && break
	sleep 0.05
done
[ -s "$T/port" ] || { cat "$T/fake.err" >&2; fail "fake provider did not start"; }
URL="http://127.0.0.1:$(cat "$T/port")"

trace "not at a terminal: add still needs PROFILE"
expect_exit 2 "$AKCTL" add

trace "guided: defaults, plain variables, a refused one, the secret, the live check"
KOK=$(key ok)
expect_exit 0 "${PTY[@]}" --expect "Profile name: " --send "bad name" \
	--expect "Profile name: " --send "work" \
	--expect "anthropic-admin" --send "" \
	--expect "Variable for the secret [ANTHROPIC_API_KEY]: " --send "" \
	--expect "Plain variable" --send "ANTHROPIC_BASE_URL=$URL" \
	--expect "Plain variable" --send "MODEL_NAME=big one" \
	--expect "Plain variable" --send "LD_PRELOAD=/x.so" \
	--expect "Plain variable" --send "nonsense" \
	--expect "Plain variable" --send "" \
	--expect "Secret for work" --send "$KOK" \
	-- env -u AKCTL_ASKPASS "$AKCTL" add
cp "$OUT" "$T/screen"
grep -q "a profile name" "$T/screen" || fail "a bad name was not explained"
grep -q "LD_PRELOAD is not a plain variable" "$T/screen" || fail "LD_PRELOAD was taken"
grep -q "added profile work" "$T/screen" || fail "not added"
assert_no_secret "$T/screen" "$KOK" "the terminal (echo)"
grep -q "^REQ GET /v1/models" "$T/req.log" || fail "no live check"
expect_exit 0 "$AKCTL" get work
assert_bytes "$OUT" "$KOK"
expect_exit 0 "$AKCTL" get work MODEL_NAME
assert_bytes "$OUT" "big one"
expect_exit 1 "$AKCTL" get work LD_PRELOAD
expect_exit 0 "$AKCTL" show work --json
grep -q '"provider":"anthropic"' "$OUT" || fail "provider"

trace "guided: a key the provider rejects is not stored"
expect_exit 10 "${PTY[@]}" --expect "Profile name: " --send "rejected" \
	--expect "Provider (" --send "anthropic" \
	--expect "Variable for the secret" --send "" \
	--expect "Plain variable" --send "ANTHROPIC_BASE_URL=$URL" \
	--expect "Plain variable" --send "" \
	--expect "Secret for rejected" --send "$(key s401)" \
	-- env -u AKCTL_ASKPASS "$AKCTL" add
grep -q "not stored" "$OUT" || fail "a rejected key was stored"
expect_exit 5 "$AKCTL" get rejected

trace "guided: a provider without a default variable asks for one; unknown provider asked again"
expect_exit 0 "${PTY[@]}" --expect "Profile name: " --send "gen" \
	--expect "Provider (" --send "nosuch" \
	--expect "Provider (" --send "generic" \
	--expect "Variable for the secret: " --send "" \
	--expect "Variable for the secret: " --send "MY_TOKEN" \
	--expect "Plain variable" --send "" \
	--expect "Secret for gen" --send "s3cret-value" \
	-- env -u AKCTL_ASKPASS "$AKCTL" add
grep -q "not a known provider" "$OUT" || fail "an unknown provider was not refused"
expect_exit 0 "$AKCTL" env gen --shell sh
grep -q "^export MY_TOKEN='s3cret-value'" "$OUT" || fail "generic profile"
trace ok
