#!/bin/bash
# Tokens through akctl-proxy reach the agent's usage log (LOG_USAGE): `akctl log` shows them per
# profile and per client, and `akctl usage` sets them beside the provider's figures, warning when the
# provider counted well more than went through the proxy on a day it was the key's only path.
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

[ -x "$(dirname "$AKCTL")/akctl-proxy" ] || skip "akctl-proxy not built (-Dproxy=disabled)"
command -v curl >/dev/null || skip "curl is not installed"
# shellcheck source=admin_common.sh
. "$(dirname "$0")/admin_common.sh"

K1=$(fake_key); ADM=$(admin_key)
KEYS=("$K1" "$ADM")
cat >"$T/state.json" <<JSON
{"anthropic_admin_key":"$ADM","openai_admin_key":"none","project":"proj_x","sa_key":"none",
 "keys":[{"id":"apikey_k1","name":"prod","hint":"$(hint "$K1")","status":"active"}],"openai_keys":[],
 "usage":[{"provider":"anthropic","day":0,"key_id":"apikey_k1","input":5000,"output":200,"cache_read":0,"cache_create":0}]}
JSON
"$PY" "$TESTS_DIR/fake/admin_server.py" --state "$T/state.json" --log "$T/admin.log" \
	--tls "$T/srv.pem" "$T/srv.key" --port-file "$T/aport" >/dev/null 2>"$T/admin.err" &
track_pid $!
"$PY" "$TESTS_DIR/fake/provider_server.py" --log "$T/req.log" --tls "$T/srv.pem" "$T/srv.key" \
	--port-file "$T/pport" >/dev/null 2>"$T/fake.err" &
track_pid $!
poll_until 30 test -s "$T/aport" || fail "fake admin API did not start"
poll_until 30 test -s "$T/pport" || fail "fake provider did not start"
TODAY=$(date -u +%F)

init_store
start_agent
unlock
add_profile prod "$K1" --no-validate --set "ANTHROPIC_BASE_URL=https://127.0.0.1:$(cat "$T/pport")"
add_profile adm "$ADM" --provider anthropic-admin --no-validate \
	--set "ANTHROPIC_BASE_URL=https://127.0.0.1:$(cat "$T/aport")"

trace "two messages through exec --proxy"
cat >"$T/client.sh" <<'SH'
#!/bin/bash
msg='{"model":"claude-fake-1","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}'
for i in 1 2; do
	curl -sS -f -o /dev/null -H "x-api-key: $ANTHROPIC_API_KEY" -H 'anthropic-version: 2023-06-01' \
		-H 'content-type: application/json' -d "$msg" "$ANTHROPIC_BASE_URL/v1/messages" || exit 1
done
SH
chmod +x "$T/client.sh"
t 0 exec --proxy prod --workers 2 --usage-file "$T/usage.jsonl" -- "$T/client.sh"

trace "akctl log: the tokens, per profile and client"
t 0 log --json --profile prod
grep '"op":"proxy-tokens"' "$OUT" >"$T/tok" || fail "log: no proxy-tokens entry: $(cat "$OUT")"
grep -q '"profile":"prod"' "$T/tok" || fail "log: proxy tokens without the profile"
# The reports (coalesced, at most one a second) add up to the proxy's own summary.
"$PY" - "$T/tok" "$T/usage.jsonl" >"$T/sums" 2>"$T/sums.err" <<'PY' || fail "log: counts differ from the proxy's summary: $(cat "$T/sums.err" "$T/usage.jsonl")"
import json, sys
log = [json.loads(l) for l in open(sys.argv[1])]
summ = json.loads(open(sys.argv[2]).read().splitlines()[-1])
assert all(e["client"] == "client.sh" for e in log)
got = [sum(e[k] for e in log) for k in ("requests", "input_tokens", "output_tokens", "cache_tokens")]
want = [summ["requests"], summ["input_tokens"], summ["output_tokens"],
        summ["cache_read_input_tokens"] + summ["cache_creation_input_tokens"]]
assert got == want and got[0] == 2 and got[1] + got[2] > 0, (got, want)
print(got[1] + got[2] + got[3])
PY
PROXIED=$(cat "$T/sums")
grep -q '"exe":"[^"]*akctl-proxy"' "$T/tok" || fail "log: the reporter is not akctl-proxy"
t 0 log --profile prod
grep -Eq 'proxy-tokens +prod +[0-9]+ +[^ ]*akctl-proxy +[0-9]+ requests?, tokens [0-9]+ in, [0-9]+ out, 0 cache, client client\.sh$' "$OUT" ||
	fail "log table: $(cat "$OUT")"

trace "akctl usage: the proxy's tokens beside the provider's, with the warning"
t 0 usage prod --since 1d
grep -Eq "^$TODAY +5000 +200 +0 +1 +$PROXIED\$" "$OUT" || fail "usage: today's row: $(cat "$OUT")"
grep -q "$((5200 - PROXIED)) more than went through the akagent proxy" "$ERR" ||
	fail "usage: no proxy warning: $(cat "$ERR")"
t 0 usage prod --json --since 1d
grep -q "\"proxy_tokens\":$PROXIED,\"beyond_proxy\":true" "$OUT" || fail "usage --json: proxy figures: $(cat "$OUT")"

trace "no output holds a key"
for k in "${KEYS[@]}"; do
	assert_no_secret "$SHOWN" "$k" "akctl's output"
done
