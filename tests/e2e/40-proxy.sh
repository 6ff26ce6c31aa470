#!/bin/bash
# akctl exec --proxy and akctl proxy: the application gets a placeholder and a loopback base URL, the
# proxy swaps in the real key and relays to a TLS fake (test CA made here) that checks it got the key.
# The official Anthropic Node SDK streams through it (when npm can install it; else that part skips);
# the child's environment and memory never hold the key; a wrong or missing placeholder, a path or host
# outside the allow list are refused; a client leaving mid-stream frees its upstream transfer.
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy ANTHROPIC_BASE_URL ANTHROPIC_AUTH_TOKEN
PROXY_BIN="$(dirname "$AKCTL")/akctl-proxy"
[ -x "$PROXY_BIN" ] || skip "akctl-proxy not built (-Dproxy=disabled or no libmicrohttpd)"
command -v openssl >/dev/null || skip "openssl is not installed"
command -v curl >/dev/null || skip "curl is not installed"

trace "akctl-proxy: a bad or missing option is a usage error (exit 2) before anything starts"
expect_exit 2 "$PROXY_BIN" --provider anthropic --bogus
[ "$(head -1 "$ERR")" = "akctl-proxy: unknown option '--bogus'" ] || fail "--bogus: $(cat "$ERR")"
grep -q '^usage: akctl-proxy ' "$ERR" || fail "no usage after --bogus: $(cat "$ERR")"
expect_exit 2 "$PROXY_BIN" --provider anthropic --profile p --upstream https://x --secret-var V --key-fd
[ "$(head -1 "$ERR")" = "akctl-proxy: option '--key-fd' needs an argument" ] || fail "--key-fd: $(cat "$ERR")"
expect_exit 2 "$PROXY_BIN" --provider anthropic --profile p --upstream https://x --key-fd 0
grep -q '^usage: akctl-proxy ' "$ERR" || fail "no usage without --secret-var: $(cat "$ERR")"

# wait_for FILE [TENTHS]: poll until FILE is non-empty.
wait_for() {
	local i
	for i in $(seq "${2:-600}"); do
		[ -s "$1" ] && return 0
		sleep 0.1
	done
	return 1
}

trace "a test CA and a certificate for 127.0.0.1"
test_ca

trace "TLS fake provider"
"$PY" "$TESTS_DIR/fake/provider_server.py" --log "$T/req.log" --tls "$T/srv.pem" "$T/srv.key" \
	--port-file "$T/port" >/dev/null 2>"$T/fake.err" &
track_pid $!
wait_for "$T/port" || fail "fake provider did not start"
UP="https://127.0.0.1:$(cat "$T/port")"

init_store
start_agent
unlock
KEY=$(fake_key)
add_profile prod "$KEY" --no-validate --set "ANTHROPIC_BASE_URL=$UP" --set ANTHROPIC_MODEL=claude-fake-1

trace "exec --proxy: the child sees a loopback base URL and a placeholder, never the key"
cat > "$T/child.sh" <<'SH'
#!/bin/bash
# Runs as CMD: report what it was given, then try the proxy every way a client might.
env > "$T/child.env"
base=$ANTHROPIC_BASE_URL tok=$ANTHROPIC_API_KEY
req() { # req NAME CURL-ARGS...: status code and body into $T/r.NAME
	curl -sS -o "$T/r.$1.body" -w '%{http_code}' "${@:2}" > "$T/r.$1.code" 2>"$T/r.$1.err"
}
msg='{"model":"claude-fake-1","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}'
req ok -H "x-api-key: $tok" -H 'anthropic-version: 2023-06-01' -H 'content-type: application/json' \
	-d "$msg" "$base/v1/messages"
req bearer -H "authorization: Bearer $tok" -H 'anthropic-version: 2023-06-01' "$base/v1/models?limit=1"
req missing -H 'anthropic-version: 2023-06-01' -d "$msg" "$base/v1/messages"
# The placeholder with its last digit changed (a placeholder ending in 0 gets a 1 instead).
wrong=${tok%?}0; [ "$wrong" != "$tok" ] || wrong=${tok%?}1
req wrong -H "x-api-key: $wrong" -d "$msg" "$base/v1/messages"
req both -H "x-api-key: $tok" -H "authorization: Bearer nope" -d "$msg" "$base/v1/messages"
req path -H "x-api-key: $tok" "$base/v1/organizations/me"
req dots --path-as-is -H "x-api-key: $tok" "$base/v1/messages/../organizations/me"
req encoded -H "x-api-key: $tok" "$base/v1/messages/%2e%2e/organizations/me"
req host -H "x-api-key: $tok" -H 'host: api.example.com' "$base/v1/models"
req absolute -H "x-api-key: $tok" --request-target 'https://api.example.com/v1/models' "$base/v1/models"
req method -X PUT -H "x-api-key: $tok" "$base/v1/messages"
exit 7
SH
chmod +x "$T/child.sh"
# Two loops: whichever takes a client, the one summary counts it.
run env T="$T" "$AKCTL" exec --proxy prod --workers 2 --usage-file "$T/usage.jsonl" -- "$T/child.sh"
[ "$RC" = 7 ] || fail "exec --proxy did not pass on the command's exit status 7 (got $RC)"
grep -q '^ANTHROPIC_BASE_URL=http://127\.0\.0\.1:[0-9]*$' "$T/child.env" || fail "no loopback base URL in the child"
TOKEN=$(sed -n 's/^ANTHROPIC_API_KEY=//p' "$T/child.env")
[[ "$TOKEN" =~ ^akp-[0-9a-f]{64}$ ]] || fail "the child's ANTHROPIC_API_KEY is not a placeholder"
grep -q '^ANTHROPIC_MODEL=claude-fake-1$' "$T/child.env" || fail "the profile's plain variables are missing"
grep -q '^AKCTL_PROFILE=prod$' "$T/child.env" || fail "AKCTL_PROFILE missing"
assert_no_secret "$T/child.env" "$KEY" "the child's environment"
assert_eq "$(cat "$T/r.ok.code")" 200 "a proxied message"
grep -q '"hello from the fake"' "$T/r.ok.body" || fail "the fake's answer did not come through"
assert_eq "$(cat "$T/r.bearer.code")" 200 "placeholder as a Bearer token"
for n in missing wrong both; do
	assert_eq "$(cat "$T/r.$n.code")" 401 "placeholder $n"
	grep -q '"authentication_error"' "$T/r.$n.body" || fail "$n: no authentication_error body"
done
for n in path dots encoded host absolute; do
	assert_eq "$(cat "$T/r.$n.code")" 403 "request outside the allow list ($n)"
	grep -q '"permission_error"' "$T/r.$n.body" || fail "$n: no permission_error body"
done
assert_eq "$(cat "$T/r.method.code")" 405 "PUT"
grep -q 'path not allowed: /v1/organizations/me' "$T/r.path.body" || fail "the refusal does not say why"
# The fake saw the real key, the way Anthropic wants it, and never the placeholder or a refused path.
grep -qF "H x-api-key: $KEY" "$T/req.log" || fail "the fake did not receive the real key in x-api-key"
grep -qi '^H authorization' "$T/req.log" && fail "the client's Authorization header was forwarded"
grep -qF "$TOKEN" "$T/req.log" && fail "the placeholder reached the upstream"
grep -q '^REQ .*/organizations' "$T/req.log" && fail "a refused path reached the upstream"
assert_eq "$(grep -c '^REQ ' "$T/req.log")" 2 "requests that reached the fake"
grep -q 'prod: 2 requests forwarded, 9 refused, 0 failed, 0 cut off; tokens: 1 in, 5 out' "$ERR" ||
	fail "usage summary: $(cat "$ERR")"
grep -q '"profile":"prod","provider":"anthropic".*"requests":2,.*"input_tokens":1,"output_tokens":5' \
	"$T/usage.jsonl" || fail "usage file: $(cat "$T/usage.jsonl")"
assert_no_secret "$OUT" "$KEY" "stdout"
assert_no_secret "$ERR" "$KEY" "stderr"

trace "refusals before anything runs"
expect_exit 2 "$AKCTL" exec --proxy prod
expect_exit 2 "$AKCTL" exec --proxy prod --env-file /dev/null -- true
expect_exit 1 "$AKCTL" exec --proxy prod --listen 0.0.0.0:0 -- true
grep -q 'only a 127.0.0.0/8 address' "$ERR" || fail "non-loopback --listen: $(cat "$ERR")"
expect_exit 1 "$AKCTL" exec --proxy prod --workers 0 -- true
grep -q -- '--workers: a number from 1 to 16' "$ERR" || fail "--workers 0: $(cat "$ERR")"
expect_exit 1 "$AKCTL" exec --proxy prod --workers 17 -- true
add_profile plain "$(fake_key)" --no-validate --set ANTHROPIC_BASE_URL=http://api.example.com
expect_exit 1 "$AKCTL" exec --proxy plain -- true
grep -q 'plain http to a non-loopback host' "$ERR" || fail "plain-http upstream: $(cat "$ERR")"
expect_exit 5 "$AKCTL" exec --proxy nosuch -- true

trace "a client that leaves mid-stream: the upstream transfer ends, the proxy serves on"
"$AKCTL" proxy prod --workers 3 > "$T/px.env" 2>"$T/px.err" &
PXPID=$!
track_pid "$PXPID"
wait_for "$T/px.env" || fail "akctl proxy printed nothing: $(cat "$T/px.err")"
eval "$(cat "$T/px.env")"
[ "$ANTHROPIC_API_KEY" != "$KEY" ] || fail "akctl proxy printed the key"
assert_no_secret "$T/px.env" "$KEY" "akctl proxy's output"
stream() { # stream MODEL: a raw streaming request
	curl -sS -N -H "x-api-key: $ANTHROPIC_API_KEY" -H 'anthropic-version: 2023-06-01' \
		-H 'content-type: application/json' \
		-d "{\"model\":\"$1\",\"max_tokens\":8,\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}" \
		"$ANTHROPIC_BASE_URL/v1/messages"
}
stream claude-fake-1 > "$T/s1" || fail "a full stream failed"
grep -q '"text": " stream"' "$T/s1" || fail "the stream did not arrive whole"
grep -q '^event: message_stop' "$T/s1" || fail "no message_stop"
fds() { find "/proc/$PXPID/fd" -mindepth 1 -maxdepth 1 | wc -l; }
base_fds=$(fds)
# head leaves after the first event; curl then dies of SIGPIPE and closes its connection.
stream claude-slow-1 2>/dev/null | head -c 200 > /dev/null
for i in $(seq 600); do
	grep -q '^STREAM aborted' "$T/req.log" && break
	sleep 0.1
done
grep -q '^STREAM aborted' "$T/req.log" || fail "the upstream stream went on after the client left"
for i in $(seq 300); do
	[ "$(fds)" -le "$base_fds" ] && break
	sleep 0.1
done
[ "$(fds)" -le "$base_fds" ] || fail "the proxy holds $(fds) descriptors, $base_fds before the aborted stream"
stream claude-fake-1 > "$T/s2" || fail "the proxy does not serve after an aborted stream"
grep -q '^event: message_stop' "$T/s2" || fail "the next stream is incomplete"

trace "a client that leaves while its request waits for upstream bytes: noticed at once"
base_fds=$(fds)
# The fake holds the stream after its first delta until a gate file that never comes; the client
# leaves during that wait. Only the proxy closing the upstream connection ends the fake's wait.
(exec curl -sS -N -H "x-api-key: $ANTHROPIC_API_KEY" -H 'content-type: application/json' \
	-d '{"model":"gated-never","max_tokens":8,"stream":true,"messages":[{"role":"user","content":"hi"}]}' \
	"$ANTHROPIC_BASE_URL/v1/messages" > "$T/g1" 2>/dev/null) &
GPID=$!
for i in $(seq 600); do
	grep -q '"text": "hello"' "$T/g1" && break
	sleep 0.1
done
grep -q '"text": "hello"' "$T/g1" || fail "the gated stream's first delta did not arrive"
kill -TERM "$GPID"
wait "$GPID" 2>/dev/null || true
for i in $(seq 300); do
	[ "$(grep -c '^STREAM aborted' "$T/req.log")" = 2 ] && break
	sleep 0.1
done
[ "$(grep -c '^STREAM aborted' "$T/req.log")" = 2 ] ||
	fail "the upstream transfer went on after its waiting client left"
for i in $(seq 300); do
	[ "$(fds)" -le "$base_fds" ] && break
	sleep 0.1
done
[ "$(fds)" -le "$base_fds" ] || fail "the proxy holds $(fds) descriptors, $base_fds before the gated client left"
[ -e "$T/req.log.gate-never" ] && fail "the gate was opened (the test proves nothing)"
stream claude-fake-1 > "$T/s3" || fail "the proxy does not serve after a client left a gated wait"

trace "malformed requests dropped by the HTTP server free what the proxy allocated for them"
hostport=${ANTHROPIC_BASE_URL#http://}
raw() { # raw BYTES: send them on a fresh connection, print the status line of the answer
	"$PY" - "$hostport" "$1" <<'PYEOF'
import socket, sys
h, p = sys.argv[1].rsplit(":", 1)
s = socket.create_connection((h, int(p)), timeout=30)
try:
    s.sendall(sys.argv[2].replace("BIG", "a" * 20000).encode().decode("unicode_escape").encode("latin-1"))
    s.shutdown(socket.SHUT_WR)
except OSError:
    pass  # the server may answer and close before it has read everything
try:
    print((s.recv(4096).split(b"\r\n")[0] or b"(closed)").decode("latin-1"))
except OSError:
    print("(reset)")
PYEOF
}
raw 'GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nno colon here\r\n\r\n' > "$T/m1"
raw 'GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nx-big: BIG\r\n\r\n' > "$T/m2"
raw 'GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n' > "$T/m3"
raw 'POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\nshort' > "$T/m4"
grep -q '^HTTP/1.1 4' "$T/m1" || fail "a header line without a colon: $(cat "$T/m1")"
grep -q '^HTTP/1.1 4\|^(reset)' "$T/m2" || fail "an oversized header: $(cat "$T/m2")"
stream claude-fake-1 > "$T/s4" || fail "the proxy does not serve after malformed requests"
kill -TERM "$PXPID"
wait_gone "$PXPID" 30 || fail "akctl proxy did not stop on SIGTERM"
grep -q 'Sanitizer' "$T/px.err" && fail "the proxy leaked or crashed: $(cat "$T/px.err")"
grep -q 'prod: 6 requests forwarded, [0-9]* refused, 0 failed, 2 cut off' "$T/px.err" ||
	fail "proxy summary: $(cat "$T/px.err")"

trace "a Unix socket"
"$AKCTL" proxy prod --listen "unix:$T/px.sock" > "$T/ux.env" 2>"$T/ux.err" &
UXPID=$!
track_pid "$UXPID"
wait_for "$T/ux.env" || fail "akctl proxy --listen unix: printed nothing: $(cat "$T/ux.err")"
grep -q "^AKCTL_PROXY_SOCK=$T/px.sock;" "$T/ux.env" || fail "no AKCTL_PROXY_SOCK line"
[ "$(stat -c %a "$T/px.sock")" = 600 ] || fail "the socket is not 0600"
tok=$(sed -n 's/^ANTHROPIC_API_KEY=\([^;]*\);.*/\1/p' "$T/ux.env")
code=$(curl -sS -o /dev/null -w '%{http_code}' --unix-socket "$T/px.sock" -H "x-api-key: $tok" \
	http://localhost/v1/models)
assert_eq "$code" 200 "a request over the Unix socket"
kill -TERM "$UXPID"
wait_gone "$UXPID" 30 || fail "akctl proxy (unix) did not stop"
[ -e "$T/px.sock" ] && fail "the Unix socket was left behind"

trace "the official Anthropic SDK streams through exec --proxy"
command -v node >/dev/null || skip "node is not installed (the rest passed)"
SDK_VERSION=1.14.0
SDK_DIR=${AKAGENT_NODE_SDK_DIR:-/tmp/akagent-node-sdk-$SDK_VERSION}
rc=0
"$TESTS_DIR/fake/install-node-sdk.sh" "$SDK_DIR" || rc=$?
[ "$rc" = 77 ] && skip "@anthropic-ai/sdk@$SDK_VERSION not installable (the rest passed)"
[ "$rc" = 0 ] || fail "install-node-sdk.sh exited $rc"
cat > "$T/client.js" <<'JS'
// Streams one message; after the first text delta it says so (its pid in a file) and goes on.
const fs = require('fs');
const sdk = require(process.env.SDK_DIR + '/node_modules/@anthropic-ai/sdk');
const Anthropic = sdk.default || sdk.Anthropic || sdk;
(async () => {
	const client = new Anthropic({ maxRetries: 0 });
	const stream = await client.messages.create({
		model: 'gated-sdk', max_tokens: 16, stream: true, messages: [{ role: 'user', content: 'hi' }],
	});
	let text = '';
	for await (const ev of stream) {
		if (ev.type === 'content_block_delta') {
			if (text === '') fs.writeFileSync(process.env.SEEN, String(process.pid));
			text += ev.delta.text;
		}
	}
	console.log(text);
})().catch((e) => {
	console.error('sdk error: ' + (e && e.status) + ' ' + (e && e.message));
	process.exit(3);
});
JS
mkdir -p "$T/empty-home" "$T/empty-config"
env HOME="$T/empty-home" ANTHROPIC_CONFIG_DIR="$T/empty-config" SDK_DIR="$SDK_DIR" SEEN="$T/seen" \
	"$AKCTL" exec --proxy prod -- node "$T/client.js" > "$T/sdk.out" 2>"$T/sdk.err" &
SDKPID=$!
# The fake holds the rest of the stream until the gate opens: the first delta reached the SDK while the
# upstream response was still open, so nothing buffered the stream.
wait_for "$T/seen" || fail "the SDK saw no streamed delta: $(cat "$T/sdk.err")"
NODE=$(cat "$T/seen")
tr '\0' '\n' < "/proc/$NODE/environ" > "$T/node.env"
assert_no_secret "$T/node.env" "$KEY" "the SDK process's /proc/PID/environ"
grep -q '^ANTHROPIC_API_KEY=akp-' "$T/node.env" || fail "the SDK process has no placeholder"
if am_root; then
	TOK2=$(sed -n 's/^ANTHROPIC_API_KEY=//p' "$T/node.env")
	{ printf '%s' "$KEY" | od -An -tx1 | tr -d ' \n'; echo
	  printf '%s' "${KEY:13:40}" | od -An -tx1 | tr -d ' \n'; echo
	  printf '%s' "$TOK2" | od -An -tx1 | tr -d ' \n'; echo; } > "$T/needles"
	"$PY" "$TESTS_DIR/memscan.py" "$NODE" < "$T/needles" > "$T/scan" 2>&1 || fail "memscan: $(cat "$T/scan")"
	[ "$(awk '$1 == "2" {print $2}' "$T/scan")" -ge 1 ] || fail "memscan does not find the placeholder"
	[ "$(awk '$1 == "0" {print $2}' "$T/scan")" = 0 ] || fail "the key is in the SDK process's memory"
	[ "$(awk '$1 == "1" {print $2}' "$T/scan")" = 0 ] || fail "part of the key is in the SDK's memory"
fi
touch "$T/req.log.gate-sdk"
wait "$SDKPID" || fail "the SDK client failed: $(cat "$T/sdk.err")"
assert_bytes "$T/sdk.out" $'hello from the stream\n'
grep -q 'prod: 1 requests forwarded, 0 refused, 0 failed, 0 cut off; tokens: 11 in, 7 out' "$T/sdk.err" ||
	fail "SSE usage not counted: $(cat "$T/sdk.err")"
grep -qF "H x-api-key: $KEY" "$T/req.log" || fail "no real key upstream"
trace "ok"
