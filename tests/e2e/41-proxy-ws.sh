#!/bin/bash
# akctl proxy relays WebSocket upgrades (wss://…/v1/responses): the upgrade request is checked like any
# other (placeholder, path) and goes upstream over verified TLS with the real key; frames then flow
# both ways; a client leaving closes the upstream connection and frees its descriptors.
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy OPENAI_BASE_URL
PROXY_BIN="$(dirname "$AKCTL")/akctl-proxy"
[ -x "$PROXY_BIN" ] || skip "akctl-proxy not built (-Dproxy=disabled or no libmicrohttpd)"
command -v openssl >/dev/null || skip "openssl is not installed"

wait_for() { # wait_for FILE [TENTHS]: poll until FILE is non-empty
	local i
	for i in $(seq "${2:-600}"); do
		[ -s "$1" ] && return 0
		sleep 0.1
	done
	return 1
}

trace "a test CA and a TLS WebSocket echo fake"
test_ca
"$PY" "$TESTS_DIR/fake/ws_echo.py" server --log "$T/ws.log" --tls "$T/srv.pem" "$T/srv.key" \
	--port-file "$T/port" 2>"$T/fake.err" &
track_pid $!
wait_for "$T/port" || fail "the WebSocket fake did not start"

init_store
start_agent
unlock
KEY="sk-proj-$(head -c 60 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '=' | head -c 64)"
add_profile oai "$KEY" --no-validate --var OPENAI_API_KEY --provider openai \
	--set "OPENAI_BASE_URL=https://127.0.0.1:$(cat "$T/port")/v1"
"$AKCTL" proxy oai > "$T/px.env" 2>"$T/px.err" &
PXPID=$!
track_pid "$PXPID"
wait_for "$T/px.env" || fail "akctl proxy printed nothing: $(cat "$T/px.err")"
eval "$(cat "$T/px.env")"
WS_URL="${OPENAI_BASE_URL/http:/ws:}/responses"
ws() { "$PY" "$TESTS_DIR/fake/ws_echo.py" client "$@"; }
fds() { find "/proc/$PXPID/fd" -mindepth 1 -maxdepth 1 | wc -l; }
base_fds=$(fds)

trace "an upgrade with the placeholder: 101, frames both ways, the real key upstream"
out=$(ws "$WS_URL" "Authorization: Bearer $OPENAI_API_KEY" "Sec-WebSocket-Protocol: realtime" --send hi) ||
	fail "the WebSocket relay failed: $out"
assert_eq "$out" "echo:hi" "the echoed frame"
grep -q '^REQ GET /v1/responses HTTP/1.1$' "$T/ws.log" || fail "upstream request line: $(cat "$T/ws.log")"
grep -qF "H Authorization: Bearer $KEY" "$T/ws.log" || fail "the fake did not receive the real key"
grep -qF "$OPENAI_API_KEY" "$T/ws.log" && fail "the placeholder reached the upstream"
grep -q '^H Sec-WebSocket-Protocol: realtime$' "$T/ws.log" || fail "the client's WebSocket headers were not forwarded"
grep -qi '^H Upgrade: websocket$' "$T/ws.log" || fail "no Upgrade header upstream"

trace "a wrong placeholder or a path outside the allow list never reaches the upstream"
reqs=$(grep -c '^REQ ' "$T/ws.log")
out=$(ws "$WS_URL" "Authorization: Bearer akp-wrong") && fail "a wrong placeholder was relayed"
[[ "$out" == "HTTP/1.1 401"* ]] || fail "wrong placeholder: $out"
out=$(ws "${WS_URL%/responses}/organization/admin_api_keys" "Authorization: Bearer $OPENAI_API_KEY") &&
	fail "a path outside the allow list was relayed"
[[ "$out" == "HTTP/1.1 403"* ]] || fail "path outside the allow list: $out"
assert_eq "$(grep -c '^REQ ' "$T/ws.log")" "$reqs" "requests that reached the fake"

trace "a client that leaves: the upstream connection closes, descriptors back to the baseline"
closed=$(grep -c '^WS closed' "$T/ws.log")
ws "$WS_URL" "Authorization: Bearer $OPENAI_API_KEY" --hold "$T/go" > "$T/held" &
HPID=$!
wait_for "$T/held" || fail "the held relay did not answer"
[ "$(fds)" -gt "$base_fds" ] || fail "a live relay holds no descriptors (the test proves nothing)"
touch "$T/go"
wait "$HPID" || fail "the held client failed"
for i in $(seq 300); do
	[ "$(grep -c '^WS closed' "$T/ws.log")" -gt "$closed" ] && [ "$(fds)" -le "$base_fds" ] && break
	sleep 0.1
done
[ "$(grep -c '^WS closed' "$T/ws.log")" -gt "$closed" ] || fail "the upstream connection stayed open"
[ "$(fds)" -le "$base_fds" ] || fail "the proxy holds $(fds) descriptors, $base_fds before"
out=$(ws "$WS_URL" "Authorization: Bearer $OPENAI_API_KEY" --send again) || fail "no relay after a close: $out"
assert_eq "$out" "echo:again" "a relay after a closed one"
kill -TERM "$PXPID"
wait_gone "$PXPID" 30 || fail "akctl proxy did not stop"
grep -q 'oai: 3 requests forwarded, 2 refused, 0 failed' "$T/px.err" || fail "summary: $(cat "$T/px.err")"
assert_no_secret "$T/px.err" "$KEY" "stderr"
trace "ok"
