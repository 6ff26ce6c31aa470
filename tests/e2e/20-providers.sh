#!/bin/bash
# akctl test and add --validate against the loopback fake provider (tests/fake/provider_server.py):
# every status, exact exit codes and messages, HTTPS with a test CA, the key never in any output or URL,
# and `test --all` over 50 slow profiles running concurrently.
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

FAKE="$TESTS_DIR/fake/provider_server.py"
# Loopback must not go through a proxy from the caller's environment.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy no_proxy NO_PROXY \
	ANTHROPIC_BASE_URL OPENAI_BASE_URL AKCTL_CA_BUNDLE
ALL_OUT="$T/all-output"	# every stdout/stderr of akctl, for the final "no key anywhere" scan
KEYS=()

# key MARKER [PREFIX]: an Anthropic-shaped key (108 chars) whose body starts with fake-MARKER-.
key() {
	local body
	body="fake-$1-$(head -c 96 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '=')"
	printf '%s%sAA' "${2:-sk-ant-api03-}" "${body:0:93}"
}

# t CODE ARGS...: akctl ARGS, expecting exit CODE; outputs collected for the final scan.
t() {
	local want=$1
	shift
	expect_exit "$want" "$AKCTL" "$@"
	cat "$OUT" "$ERR" >> "$ALL_OUT"
}

# line_is TEXT: stdout is exactly TEXT + newline.
line_is() {
	assert_bytes "$OUT" "$1"$'\n'
}

# start_fake NAME [--tls CERT KEY]: start a fake, set PORT_<NAME>.
start_fake() {
	local name=$1 i
	shift
	"$PY" "$FAKE" --log "$T/req-$name.log" --port-file "$T/port-$name" "$@" >/dev/null 2>"$T/fake-$name.err" &
	track_pid $!
	for i in $(seq 100); do
		[ -s "$T/port-$name" ] && break
		sleep 0.05
	done
	[ -s "$T/port-$name" ] || { cat "$T/fake-$name.err" >&2; fail "fake provider $name did not start"; }
	printf -v "PORT_$name" '%s' "$(cat "$T/port-$name")"
}

trace "fake provider, HTTP and HTTPS with a test CA"
command -v openssl >/dev/null || skip "openssl is not installed (needed for the test CA)"
start_fake http
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=akagent-test-CA \
	-keyout "$T/ca.key" -out "$T/ca.pem" 2>/dev/null || fail "openssl: test CA"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=127.0.0.1 \
	-keyout "$T/srv.key" -out "$T/srv.csr" 2>/dev/null || fail "openssl: server key"
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
	> "$T/srv.ext"
openssl x509 -req -in "$T/srv.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial -days 2 \
	-extfile "$T/srv.ext" -out "$T/srv.pem" 2>/dev/null || fail "openssl: server certificate"
start_fake https --tls "$T/srv.pem" "$T/srv.key"
# shellcheck disable=SC2154  # set by start_fake
HTTP="http://127.0.0.1:$PORT_http"
# shellcheck disable=SC2154
HTTPS="https://127.0.0.1:$PORT_https"

trace "no agent => 3, usage => 2"
t 3 test production
t 2 test
t 2 test --all production
t 2 test --timeout 0 production
t 2 test --base-url http://192.0.2.1 production	# plain http only to loopback
grep -q 'plain http' "$ERR" || fail "no reason given for refusing plain http"
t 2 test --base-url http://127.0.0.1.example.com/ production
t 2 test --base-url http://user@127.0.0.1/ production
t 2 test --base-url ftp://127.0.0.1/ production
t 0 test --help

init_store
start_agent
t 4 test production
unlock

trace "profiles, one per behaviour"
for b in ok s401 s402 s403 s404 s429 s429once s500 s529 drop huge hugechunked badjson redirect leak sleep30; do
	k=$(key "$b")
	KEYS+=("$k")
	add_profile "$b" "$k" --no-validate --set "ANTHROPIC_BASE_URL=$HTTP"
	cat "$OUT" "$ERR" >> "$ALL_OUT"
done
# Each line names where the key went, since it is not the provider's own API.
AT=" [sent to 127.0.0.1:$PORT_http]"
ATRE=" \\[sent to 127\\.0\\.0\\.1:$PORT_http\\]"

trace "each status: exact line and exit code"
t 0 test ok
grep -qE '^ok: valid \(anthropic, 200, request-id req_fake[0-9]{6}\)'"$ATRE"'$' "$OUT" || fail "valid line: $(cat "$OUT")"
t 10 test s401
grep -qE '^s401: rejected: authentication_error \(401, request-id req_fake[0-9]{6}\)'"$ATRE"'$' "$OUT" ||
	fail "rejected line: $(cat "$OUT")"
t 11 test s403
grep -qE '^s403: valid but not permitted: permission_error \(403, request-id req_fake[0-9]+\)'"$ATRE"'$' "$OUT" ||
	fail "403 line: $(cat "$OUT")"
t 11 test s402
grep -q '^s402: valid but not permitted: billing_error (402, ' "$OUT" || fail "402 line: $(cat "$OUT")"
t 17 test s404
grep -q '^s404: unexpected response: not_found_error (404, ' "$OUT" || fail "404 line: $(cat "$OUT")"
t 13 test s500
grep -q '^s500: provider failing: api_error (500, ' "$OUT" || fail "500 line: $(cat "$OUT")"
t 13 test s529
grep -q '^s529: provider overloaded: overloaded_error (529, ' "$OUT" || fail "529 line: $(cat "$OUT")"
t 14 test drop
grep -q '^drop: network failure: ' "$OUT" || fail "drop line: $(cat "$OUT")"
t 17 test huge
line_is "huge: unexpected response: response body larger than 1048576 bytes$AT"
t 17 test hugechunked
line_is "hugechunked: unexpected response: response body larger than 1048576 bytes$AT"
t 17 test badjson
grep -q '^badjson: unexpected response: body is not JSON (200, ' "$OUT" || fail "badjson line: $(cat "$OUT")"
t 17 test redirect
grep -q '^redirect: unexpected response: redirect not followed (302, ' "$OUT" || fail "redirect: $(cat "$OUT")"
grep -q 'elsewhere' "$T/req-http.log" && fail "the redirect was followed"
t 10 test leak	# the fake echoes the key in request-id, error.type and error.message
line_is "leak: rejected (401, request-id [redacted])$AT"

trace "test --json: one object with the same verdicts, no key in it"
t 10 test --json ok s401 leak drop
"$PY" - "$OUT" "$PORT_http" <<'PY' || fail "test --json: $(cat "$OUT")"
import json, re, sys
raw = open(sys.argv[1]).read()
assert raw.count("\n") == 1 and raw.endswith("\n"), "not one line"
d = json.loads(raw)
assert d["exit"] == 10, d["exit"]
ps = d["profiles"]
assert [p["profile"] for p in ps] == ["ok", "s401", "leak", "drop"], ps
assert [p["result"] for p in ps] == ["valid", "rejected", "rejected", "network"], ps
assert [p["exit"] for p in ps] == [0, 10, 10, 14], ps
assert [p["http_status"] for p in ps] == [200, 401, 401, None], ps
for p in ps:
    assert p["provider"] == "anthropic" and p["live"] is True and p["skipped"] is False, p
    assert p["sent_to"] == "127.0.0.1:" + sys.argv[2], p
    assert p["warning"] is None, p
assert re.fullmatch(r"valid \(anthropic, 200, request-id req_fake[0-9]{6}\)", ps[0]["message"]), ps[0]
assert ps[2]["message"] == "rejected (401, request-id [redacted])", ps[2]
PY
t 0 test --json ok
"$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["exit"]==0 and len(d["profiles"])==1' "$OUT" ||
	fail "test --json ok: $(cat "$OUT")"

trace "429: retry-after honoured once"
t 12 test s429
grep -q '^s429: rate limited (after one retry): rate_limit_error (429, retry-after 1 s, request-id ' "$OUT" ||
	fail "429 line: $(cat "$OUT")"
start=$(date +%s%N)
t 0 test s429once
ms=$((($(date +%s%N) - start) / 1000000))
grep -q '^s429once: valid (anthropic, 200, request-id req_fake[0-9]*, after honouring one 429 retry-after)'"$ATRE"'$' \
	"$OUT" || fail "429-then-200 line: $(cat "$OUT")"
[ "$ms" -ge 900 ] || fail "the retry came after ${ms} ms, before retry-after: 1"
[ "$(grep -ci "^H x-api-key: ${KEYS[6]}\$" "$T/req-http.log")" = 2 ] || fail "s429once was not asked exactly twice"

trace "timeout => 15, within --timeout"
start=$(date +%s%N)
t 15 test --timeout 2 sleep30
ms=$((($(date +%s%N) - start) / 1000000))
grep -q '^sleep30: timeout: ' "$OUT" || fail "timeout line: $(cat "$OUT")"
[ "$ms" -lt 5000 ] || fail "--timeout 2 took ${ms} ms"

trace "network failures => 14"
t 14 test --base-url http://127.0.0.1:1 ok
grep -q '^ok: network failure: ' "$OUT" || fail "refused line: $(cat "$OUT")"
t 14 test --base-url https://no-such-host.invalid ok
grep -q '^ok: network failure (DNS): ' "$OUT" || fail "DNS line: $(cat "$OUT")"

trace "HTTPS: works with the test CA, fails (14) without it"
AKCTL_CA_BUNDLE="$T/ca.pem" t 0 test --base-url "$HTTPS" ok
grep -q '^ok: valid (anthropic, 200, ' "$OUT" || fail "https valid line: $(cat "$OUT")"
AKCTL_CA_BUNDLE="$T/ca.pem" t 10 test --base-url "$HTTPS/" s401
t 14 test --base-url "$HTTPS" ok
grep -q '^ok: network failure (TLS): ' "$OUT" || fail "TLS line: $(cat "$OUT")"

trace "several profiles: one line each, in order, exit code of the first failure"
t 10 test ok s401 s529
assert_eq "$(cut -d: -f1 "$OUT" | tr '\n' ' ')" "ok s401 s529 " "line order"
t 13 test ok s529 s401
t 5 test ok no-such-profile
[ -s "$OUT" ] && fail "lines printed before a missing profile was reported"

trace "offline format problems"
# add tidies a pasted key; import from the environment keeps every byte: a key with a newline.
expect_exit 0 env ANTHROPIC_API_KEY="$(key okfmt)"$'\n' "$AKCTL" import env:ANTHROPIC_API_KEY nl
t 16 test nl
line_is "nl: key format: key has a trailing newline (not checked live)"
k=$(key ok sk-ant-admin01-)
KEYS+=("$k")
printf '%s' "$k" >"$T/in"; expect_exit 0 "$AKCTL" add adm --no-validate --set "ANTHROPIC_BASE_URL=$HTTP" <"$T/in"
grep -q 'this looks like an admin key' "$ERR" || fail "add did not warn about an admin key"
t 0 test adm	# a warning, then the live check decides
grep -qF 'akctl: test: adm: warning: this looks like an admin key' "$ERR" || fail "no admin-key warning"
k=$(key ok)
k=${k:0:107}
KEYS+=("$k")
printf '%s' "$k" >"$T/in"; expect_exit 0 "$AKCTL" add short --no-validate --set "ANTHROPIC_BASE_URL=$HTTP" <"$T/in"
t 0 test short
grep -qF 'warning: key is 107 characters; Anthropic API keys are 108' "$ERR" || fail "no length warning"
printf 'x' >"$T/in"; expect_exit 0 "$AKCTL" add custom --provider custom --var CUSTOM_KEY --no-validate <"$T/in"
t 1 test custom
line_is "custom: not checked: no live check for provider 'custom'"

trace "openai: Bearer header, OPENAI_BASE_URL includes /v1"
k="sk-proj-fake-s401-$(head -c 60 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '=')"
KEYS+=("$k")
printf '%s' "$k" >"$T/in"; expect_exit 0 "$AKCTL" add oai --provider openai --no-validate <"$T/in"
expect_exit 0 "$AKCTL" get oai
assert_bytes "$OUT" "$k"
t 10 test --base-url "$HTTP/v1" oai
line_is "$(printf 'oai: rejected: invalid_request_error/invalid_api_key (401, request-id %s)%s' \
	"$(grep -o 'req_fake[0-9]*' "$OUT")" "$AT")"
grep -qiF "H Authorization: Bearer $k" "$T/req-http.log" || fail "openai key not sent as a Bearer header"
grep -q '^REQ GET /v1/models$' "$T/req-http.log" || fail "openai check did not GET /v1/models"
expect_exit 0 "$AKCTL" show oai
grep -q 'OPENAI_API_KEY' "$OUT" || fail "--provider openai did not default --var to OPENAI_API_KEY"

trace "generic: URL, header and template from the profile's variables"
k="tok-$(rand_word)-fake-s403-$(rand_word)"
KEYS+=("$k")
printf '%s' "$k" >"$T/in"; expect_exit 0 "$AKCTL" add gen --provider generic --var GEN_TOKEN --no-validate \
	--set AKCTL_CHECK_URL="$HTTP/v1/me" --set AKCTL_CHECK_HEADER=X-Token --set 'AKCTL_CHECK_TEMPLATE=tok {key}' <"$T/in"
t 11 test gen
grep -qiF "H X-Token: tok $k" "$T/req-http.log" || fail "generic header not as templated"
printf 'x' >"$T/in"; expect_exit 2 "$AKCTL" add gen2 --provider generic --no-validate <"$T/in"	# no --var

trace "add --validate: stores on success, refuses on 401 with test's exit code"
k=$(key ok)
KEYS+=("$k")
printf '%s' "$k" >"$T/in"; t 0 add v-ok --validate --set "ANTHROPIC_BASE_URL=$HTTP" <"$T/in"
grep -q '^akctl: add: v-ok: valid (anthropic, 200, ' "$ERR" || fail "add --validate printed no verdict"
expect_exit 0 "$AKCTL" get v-ok
assert_bytes "$OUT" "$k"
k=$(key s401)
KEYS+=("$k")
printf '%s' "$k" >"$T/in"; t 10 add v-bad --validate --set "ANTHROPIC_BASE_URL=$HTTP" <"$T/in"
grep -q '^akctl: add: v-bad: rejected: authentication_error (401, ' "$ERR" || fail "no rejection line"
grep -q 'not stored' "$ERR" || fail "add did not say the profile is not stored"
t 5 get v-bad
k=$(key ok)
KEYS+=("$k")
printf ' %s\n\n' "$k" >"$T/in"; t 0 add v-nl --validate --set "ANTHROPIC_BASE_URL=$HTTP" <"$T/in"	# spaces and line breaks removed
grep -q 'removed spaces and line breaks' "$ERR" || fail "add did not say it tidied the key"
expect_exit 0 "$AKCTL" get v-nl
assert_bytes "$OUT" "$k"
k=$(key s500)
KEYS+=("$k")
printf '%s' "$k" >"$T/in"; t 0 add v-500 --validate --set "ANTHROPIC_BASE_URL=$HTTP" <"$T/in"	# no verdict: stored, with a warning
grep -q 'could not be verified' "$ERR" || fail "add did not warn that the key is unverified"
expect_exit 0 "$AKCTL" get v-500
printf '%s' "$k" >"$T/in"; t 0 add v-bad --no-validate <"$T/in"	# --no-validate always skips the network
n=$(grep -c '^REQ ' "$T/req-http.log")
printf '%s' "$(key s401)" >"$T/in"; t 0 add v-script --set "ANTHROPIC_BASE_URL=$HTTP" <"$T/in"	# not a terminal: no validation by default
assert_eq "$(grep -c '^REQ ' "$T/req-http.log")" "$n" "requests made by a non-validating add"
# The key travels to akctl-net on a pipe, never in argv: ps sees only the options.
k=$(key sleep2)
KEYS+=("$k")
printf '%s' "$k" | "$AKCTL" add v-slow --validate --set "ANTHROPIC_BASE_URL=$HTTP" >"$T/vs.out" 2>"$T/vs.err" &
vpid=$!
sleep 1
ps -eo args > "$T/ps"
wait "$vpid" || fail "add --validate of a slow valid key failed"
grep -q "akctl-net test --key-stdin --name v-slow --provider anthropic --base-url $HTTP" "$T/ps" ||
	fail "akctl-net was not running as expected: $(grep akctl "$T/ps")"
cat "$T/vs.out" "$T/vs.err" "$T/ps" >> "$ALL_OUT"

trace "test --all over 50 slow profiles (each answer delayed 1 s): concurrent"
export AKCTL_KEYSTORE="$T/many.keystore"
stop_agent
expect_exit 0 "$AKCTL" --passphrase-fd 3 init --kdf insecure-test 3<<<"$PASS"
for i in $(seq -w 1 50); do
	k=$(key sleep1)
	KEYS+=("$k")
	printf '%s' "$k" > "$T/secret-in"
	expect_exit 0 "$AKCTL" --passphrase-fd 3 add "p$i" --set "ANTHROPIC_BASE_URL=$HTTP" <"$T/secret-in" 3<<<"$PASS"
done
rm -f "$T/secret-in"
start_agent -f "$AKCTL_KEYSTORE"
unlock
start=$(date +%s%N)
t 0 test p01
one=$((($(date +%s%N) - start) / 1000000))
start=$(date +%s%N)
t 0 test --all
wall=$((($(date +%s%N) - start) / 1000000))
assert_eq "$(grep -c ': valid (anthropic, 200, ' "$OUT")" 50 "valid lines from --all"
assert_eq "$(head -1 "$OUT" | cut -d: -f1)" p01 "first --all line"
echo "NUMBERS: test --all, 50 profiles, 1 s each: wall ${wall} ms; one profile ${one} ms; sequential would be" \
	"~$((one * 50)) ms" >&2
[ "$wall" -lt 10000 ] || fail "test --all took ${wall} ms for 50 profiles (sequential ~$((one * 50)) ms)"

trace "the key never appears in any output or request line"
for k in "${KEYS[@]}"; do
	assert_no_secret "$ALL_OUT" "$k" "akctl's output"
	grep '^REQ ' "$T/req-http.log" "$T/req-https.log" > "$T/req-lines" || true
	assert_no_secret "$T/req-lines" "$k" "a request line (URL)"
	grep -qF -- "${k:13:40}" "$ALL_OUT" && fail "a piece of a key appears in akctl's output"
done
grep -qF "${KEYS[0]}" "$T/req-http.log" || fail "sanity: the fake's log holds the keys in headers"
trace "ok"
