#!/bin/bash
# akctl-proxy in front of an upstream in C that answers at once (tests/bench/sse_fake): short answers
# then often arrive while the proxy is still in the request's own callback, and go out from there
# with no wait. Every answer must still be whole and in order, on kept-alive connections, one client
# or several at once, JSON and event streams alike, and the proxy's counts must add up.
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy ANTHROPIC_BASE_URL
FAKE="$AK_BUILD_ROOT/tests/bench/sse_fake"
[ -x "$(dirname "$AKCTL")/akctl-proxy" ] || skip "akctl-proxy not built (-Dproxy=disabled)"
[ -x "$FAKE" ] || skip "tests/bench/sse_fake not built"
command -v curl >/dev/null || skip "curl is not installed"

N=150 # requests per client
JSON='{"type":"message","content":[{"type":"text","text":"hi"}],"usage":{"input_tokens":3,"output_tokens":7}}'
SSE=''
for i in 0 1 2; do
	SSE+="event: message_delta"$'\n'"data: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":$i}}"$'\n\n'
done

trace "two upstreams: JSON at once, and three events with no pause between them"
"$FAKE" "$T/jport" 0 & track_pid $!
"$FAKE" "$T/sport" 3 0 & track_pid $!
poll_until 30 test -s "$T/jport" || fail "the JSON upstream did not start"
poll_until 30 test -s "$T/sport" || fail "the event-stream upstream did not start"

init_store
start_agent
unlock
KEY=$(fake_key)
add_profile quick "$KEY" --no-validate --set "ANTHROPIC_BASE_URL=http://127.0.0.1:$(cat "$T/jport")"
add_profile stream "$KEY" --no-validate --set "ANTHROPIC_BASE_URL=http://127.0.0.1:$(cat "$T/sport")"

# load NAME BASE TOKEN: N requests on one kept-alive connection (one curl for every URL), the
# answers concatenated into $T/out.NAME.
load() {
	local urls=() i
	for i in $(seq "$N"); do urls+=("$2/v1/messages"); done
	curl -sS --fail -H "x-api-key: $3" -H 'content-type: application/json' \
		-d '{"model":"claude-fake-1","max_tokens":8,"messages":[]}' "${urls[@]}" \
		> "$T/out.$1" 2> "$T/err.$1"
}
# check NAME ANSWER: out.NAME holds ANSWER exactly N times.
check() {
	local want="" i
	for i in $(seq "$N"); do want+=$2; done
	assert_bytes "$T/out.$1" "$want"
}

for prof in quick stream; do
	trace "$prof: one client, then four at once, $N requests each on one connection"
	"$AKCTL" proxy "$prof" --workers 2 > "$T/px.$prof.env" 2> "$T/px.$prof.err" &
	pid=$!
	track_pid "$pid"
	poll_until 30 test -s "$T/px.$prof.env" || fail "akctl proxy printed nothing: $(cat "$T/px.$prof.err")"
	eval "$(cat "$T/px.$prof.env")"
	want=$JSON; [ "$prof" = stream ] && want=$SSE
	load "$prof.1" "$ANTHROPIC_BASE_URL" "$ANTHROPIC_API_KEY" || fail "$prof: $(cat "$T/err.$prof.1")"
	check "$prof.1" "$want"
	pids=()
	for c in a b c d; do
		load "$prof.$c" "$ANTHROPIC_BASE_URL" "$ANTHROPIC_API_KEY" & pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" || fail "$prof: a client failed: $(cat "$T"/err."$prof".*)"; done
	for c in a b c d; do check "$prof.$c" "$want"; done
	kill -TERM "$AKCTL_PROXY_PID"
	wait_gone "$AKCTL_PROXY_PID" 30 || fail "akctl proxy did not stop on SIGTERM"
	grep -q 'Sanitizer' "$T/px.$prof.err" && fail "the proxy leaked or crashed: $(cat "$T/px.$prof.err")"
	total=$((N * 5))
	if [ "$prof" = quick ]; then
		tokens="tokens: $((total * 3)) in, $((total * 7)) out"
	else
		tokens="tokens: 0 in, $((total * 2)) out" # the largest count of each answer
	fi
	grep -q "$prof: $total requests forwarded, 0 refused, 0 failed, 0 cut off; $tokens," \
		"$T/px.$prof.err" || fail "proxy summary: $(cat "$T/px.$prof.err")"
done
trace "ok"
