#!/bin/bash
# A real client: the official Anthropic Node SDK (@anthropic-ai/sdk, pinned in tests/fake/install-node-sdk.sh)
# run under `akctl exec` picks up ANTHROPIC_API_KEY from the profile and talks to the loopback fake
# provider through ANTHROPIC_BASE_URL. Skips (77) without node/npm or when the SDK cannot be installed.
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy ANTHROPIC_BASE_URL ANTHROPIC_AUTH_TOKEN
command -v node >/dev/null || skip "node is not installed"
SDK_VERSION=1.14.0
SDK_DIR=${AKAGENT_NODE_SDK_DIR:-/tmp/akagent-node-sdk-$SDK_VERSION}
rc=0
"$TESTS_DIR/fake/install-node-sdk.sh" "$SDK_DIR" || rc=$?
[ "$rc" = 77 ] && skip "@anthropic-ai/sdk@$SDK_VERSION not installable (offline?)"
[ "$rc" = 0 ] || fail "install-node-sdk.sh exited $rc"
grep -q "\"version\": \"$SDK_VERSION\"" "$SDK_DIR/node_modules/@anthropic-ai/sdk/package.json" ||
	fail "the installed SDK is not $SDK_VERSION"

trace "fake provider"
"$PY" "$TESTS_DIR/fake/provider_server.py" --log "$T/req.log" --port-file "$T/port" >/dev/null 2>"$T/fake.err" &
track_pid $!
for i in $(seq 100); do
	[ -s "$T/port" ] && break
	sleep 0.05
done
[ -s "$T/port" ] || fail "fake provider did not start"
BASE="http://127.0.0.1:$(cat "$T/port")"

cat > "$T/client.js" <<'JS'
// Reads nothing but the environment, like any application using the SDK.
const sdk = require(process.env.SDK_DIR + '/node_modules/@anthropic-ai/sdk');
const Anthropic = sdk.default || sdk.Anthropic || sdk;
(async () => {
	const client = new Anthropic({ maxRetries: 0 });
	const msg = await client.messages.create({
		model: 'claude-fake-1', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }],
	});
	console.log(msg.content[0].text);
})().catch((e) => {
	console.error('sdk error: ' + (e && e.status) + ' ' + (e && e.constructor && e.constructor.name));
	process.exit(3);
});
JS

init_store
start_agent
unlock
body=$(head -c 96 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '=')
KEY="sk-ant-api03-${body:0:93}AA"
body=$(head -c 96 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '=')
BAD="sk-ant-api03-fake-s401-${body:0:83}AA"
add_profile production "$KEY" --no-validate
add_profile revoked "$BAD" --no-validate
mkdir -p "$T/empty-home" "$T/empty-config"

# sdk PROFILE: run the client under akctl exec with an empty HOME and config dir.
sdk() {
	run env HOME="$T/empty-home" ANTHROPIC_CONFIG_DIR="$T/empty-config" ANTHROPIC_BASE_URL="$BASE" \
		SDK_DIR="$SDK_DIR" "$AKCTL" exec "$1" -- node "$T/client.js"
}

trace "the SDK picks up the key from akctl exec"
sdk production
[ "$RC" = 0 ] || fail "node client exited $RC: $(cat "$ERR")"
assert_bytes "$OUT" $'hello from the fake\n'
grep -q '^REQ POST /v1/messages$' "$T/req.log" || fail "the SDK did not POST /v1/messages to the fake"
grep -qiF "H Authorization: Bearer $KEY" "$T/req.log" || fail "the fake did not see the key as a Bearer header"
grep -qi '^H anthropic-version: 2026-10-21$' "$T/req.log" || fail "no anthropic-version 2026-10-21 header"
assert_no_secret "$OUT" "$KEY" "the client's stdout"
assert_no_secret "$ERR" "$KEY" "the client's stderr"
grep '^REQ ' "$T/req.log" > "$T/req-lines"
assert_no_secret "$T/req-lines" "$KEY" "a request line"

trace "a revoked key: the SDK sees the fake's 401, akctl test agrees"
sdk revoked
[ "$RC" = 3 ] || fail "node client exited $RC for a 401 key"
grep -q '^sdk error: 401 AuthenticationError' "$ERR" || fail "SDK error: $(cat "$ERR")"
expect_exit 10 "$AKCTL" test --base-url "$BASE" revoked	# test never reads *_BASE_URL from its environment
expect_exit 0 "$AKCTL" test --base-url "$BASE" production
trace "ok"
