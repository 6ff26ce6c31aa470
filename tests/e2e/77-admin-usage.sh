#!/bin/bash
# akctl usage: the provider's tokens per day for the profile's key (found by its hint in the admin key
# list), paged through (two buckets a page), beside the agent's handouts, with a warning for a day the
# key was used while this agent handed it out to no one; table, --json, the sparkline at a terminal
# only. rotate --create makes the new OpenAI key a new project service account's (the key never shown).
# Both providers' shapes come from the fake admin API, which checks the auth headers of every request.
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

[ -x "$(dirname "$AKCTL")/akctl-net" ] || skip "akctl-net not built (-Dnet=disabled)"
# shellcheck source=admin_common.sh
. "$(dirname "$0")/admin_common.sh"

admin_oai() { printf 'sk-admin-%s' "$(head -c 48 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '=')"; }
oai_key() { printf 'sk-proj-%s' "$(head -c 96 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '=')"; }
ohint() { printf '%s...%s' "${1:0:11}" "${1: -4}"; }

K1=$(fake_key); OTHER=$(fake_key); ADM=$(admin_key)
O1=$(oai_key); O2=$(oai_key); OADM=$(admin_oai)
KEYS=("$K1" "$OTHER" "$ADM" "$O1" "$O2" "$OADM")
cat >"$T/state.json" <<JSON
{"anthropic_admin_key":"$ADM","openai_admin_key":"$OADM","project":"proj_x","sa_key":"$O2",
 "keys":[{"id":"apikey_other","name":"ci","hint":"$(hint "$OTHER")","status":"active"},
         {"id":"apikey_x","name":"x","hint":"sk-ant-api03-Zzz...QQAA","status":"active"},
         {"id":"apikey_k1","name":"prod","hint":"$(hint "$K1")","status":"active"}],
 "openai_keys":[{"id":"key_a","name":"a","hint":"sk-proj-Zzz...QQAA"},
                {"id":"key_b","name":"b","hint":"sk-proj-Yyy...QQAA"},
                {"id":"key_o1","name":"o1","hint":"$(ohint "$O1")"}],
 "usage":[{"provider":"anthropic","day":0,"key_id":"apikey_k1","input":1000,"output":200,"cache_read":50,"cache_create":25},
          {"provider":"anthropic","day":1,"key_id":"apikey_k1","input":7,"output":3,"cache_read":0,"cache_create":0},
          {"provider":"anthropic","day":0,"key_id":"apikey_other","input":99999,"output":1,"cache_read":0,"cache_create":0},
          {"provider":"anthropic","day":5,"key_id":"apikey_k1","input":5000,"output":6000,"cache_read":0,"cache_create":0},
          {"provider":"openai","day":0,"key_id":"key_o1","input":300,"output":30,"cache_read":100,"cache_create":0},
          {"provider":"openai","day":0,"key_id":"key_new0","input":11,"output":12,"cache_read":0,"cache_create":0}]}
JSON
"$PY" "$TESTS_DIR/fake/admin_server.py" --state "$T/state.json" --log "$T/req.log" \
	--tls "$T/srv.pem" "$T/srv.key" --port-file "$T/port" >/dev/null 2>"$T/fake.err" &
track_pid $!
poll_until 30 test -s "$T/port" || fail "fake admin API did not start"
UP="https://127.0.0.1:$(cat "$T/port")"
TODAY=$(date -u +%F)
YESTERDAY=$(date -u -d yesterday +%F)

init_store
start_agent
unlock
add_profile prod "$K1" --no-validate
add_profile adm "$ADM" --provider anthropic-admin --no-validate --set "ANTHROPIC_BASE_URL=$UP"
add_profile oai "$O1" --provider openai --no-validate --set OPENAI_PROJECT_ID=proj_x
add_profile oadm "$OADM" --provider openai-admin --no-validate --set "OPENAI_BASE_URL=$UP/v1"

trace "usage before any handout of prod: today's tokens come with the warning"
t 0 usage prod --since 7d
grep -Eq "^$TODAY +1000 +200 +75 +0 +0\$" "$OUT" || fail "usage: today's row is wrong"
grep -Eq "^$YESTERDAY +7 +3 +0 +0 +0\$" "$OUT" || fail "usage: yesterday's row is wrong"
[ "$(grep -c '^20' "$OUT")" = 7 ] || fail "usage --since 7d: not seven days"
grep -q 'tokens/day' "$OUT" && fail "a sparkline went down a pipe"
grep -q "warning: $TODAY: the provider counted 1275 tokens" "$ERR" || fail "no warning for today"
grep -q 'used from somewhere else?' "$ERR" || fail "the warning does not say what it means"
[ "$(grep -c 'warning' "$ERR")" = 1 ] || fail "days before the agent's log began were warned about"
[ "$(grep -c 'usage_report/messages' "$T/req.log")" -ge 4 ] || fail "usage pages not followed"
grep -q 'page=page_2' "$T/req.log" || fail "next_page not sent back"
grep -q 'group_by\[\]=api_key_id' "$T/req.log" || fail "usage not grouped by key"

trace "after a handout today: no warning, handouts counted (the usage command's own GET is not one)"
"$AKCTL" get prod >/dev/null || fail "get prod"
"$AKCTL" get prod >/dev/null || fail "get prod"
t 0 usage prod --json
grep -q '"handouts":2,"proxy_tokens":0,"beyond_proxy":false,"elsewhere":false' "$OUT" || fail "usage --json: handouts of today: $(cat "$OUT")"
grep -q "\"date\":\"$TODAY\",\"input\":1000,\"output\":200,\"cache\":75" "$OUT" || fail "usage --json: today"
grep -q '"key_id":"apikey_k1"' "$OUT" || fail "usage --json: key id"
[ -s "$ERR" ] && fail "usage after handouts still warns: $(cat "$ERR")"
"$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert len(d["days"])==7' "$OUT" || fail "usage --json is not one JSON object of 7 days"

trace "at a terminal: a sparkline"
"$PY" "$TESTS_DIR/pty_run.py" -- "$AKCTL" usage prod >"$T/tty.out" 2>&1 || fail "usage at a terminal"
grep -q 'tokens/day' "$T/tty.out" || fail "no sparkline at a terminal"
cat "$T/tty.out" >>"$SHOWN"

trace "OpenAI: completions usage by key id, found in the project's key list"
t 0 usage oai --json
grep -q "\"date\":\"$TODAY\",\"input\":300,\"output\":30,\"cache\":100" "$OUT" || fail "openai usage"
grep -q 'GET /v1/organization/projects/proj_x/api_keys?limit=100&after=key_b AUTH ok' "$T/req.log" ||
	fail "openai key list not paged"
grep -q 'usage/completions?start_time=[0-9]*&bucket_width=1d&group_by=api_key_id' "$T/req.log" ||
	fail "openai usage request shape"

trace "rotate --create: a new service account's key becomes current, never shown"
t 1 rotate prod --create
grep -q "Console" "$ERR" || fail "--create for Anthropic: no reason"
t 0 rotate oai --create --no-validate
grep -q 'created service account "akagent-oai-[0-9-]*" (svc_acct_fake) in project proj_x' "$ERR" ||
	fail "rotate --create: no note"
grep -q '^REQ POST /v1/organization/projects/proj_x/service_accounts AUTH ok$' "$T/req.log" || fail "no create request"
[ "$("$AKCTL" get oai)" = "$O2" ] || fail "the new key is not current"
[ "$("$AKCTL" get oai --previous)" = "$O1" ] || fail "the old key is not kept as previous"
t 0 usage oai --json
grep -q '"key_id":"key_new0"' "$OUT" || fail "usage of the created key"
grep -q "\"input\":11,\"output\":12" "$OUT" || fail "usage of the created key: figures"

trace "auth: every request carried the right admin headers; no output holds a key"
grep -q 'AUTH bad' "$T/req.log" && fail "a request went without its admin headers"
for k in "${KEYS[@]}"; do
	assert_no_secret "$SHOWN" "$k" "akctl's output"
	assert_no_secret "$T/req.log" "$k" "the request lines"
done
