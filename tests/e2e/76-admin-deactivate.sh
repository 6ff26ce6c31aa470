#!/bin/bash
# rotate --deactivate: the old key is found in Anthropic's admin key list (two to a page, so the
# client pages) by its partial hint and set inactive, at once with --finish, or once the grace is over:
# then the agent wipes the key and keeps only its hint, list and status show the deactivation pending,
# and a later --finish carries it out. An ambiguous or missing match is refused and finishes nothing;
# a wrong admin key is refused by the fake (it checks the headers of every request). No output or file
# holds a key.
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

[ -x "$(dirname "$AKCTL")/akctl-net" ] || skip "akctl-net not built (-Dnet=disabled)"
# shellcheck source=admin_common.sh
. "$(dirname "$0")/admin_common.sh"

K1=$(fake_key); K2=$(fake_key); K3=$(fake_key); K4=$(fake_key); K5=$(fake_key); OTHER=$(fake_key)
ADM=$(admin_key); BADADM=$(admin_key)
KEYS=("$K1" "$K2" "$K3" "$K4" "$K5" "$OTHER" "$ADM" "$BADADM")

# state KEYS-JSON: the fake's state with these Anthropic keys.
state() {
	printf '{"anthropic_admin_key":"%s","openai_admin_key":"none","project":"proj_x","sa_key":"none",
"keys":%s,"openai_keys":[]}\n' "$ADM" "$1" >"$T/state.tmp"
	mv "$T/state.tmp" "$T/state.json"
}
# The old key K1 is on the second page, after two others.
state "[{\"id\":\"apikey_other\",\"name\":\"ci\",\"hint\":\"$(hint "$OTHER")\",\"status\":\"active\"},
{\"id\":\"apikey_x\",\"name\":\"x\",\"hint\":\"sk-ant-api03-Zzz...QQAA\",\"status\":\"active\"},
{\"id\":\"apikey_k1\",\"name\":\"prod 2026\",\"hint\":\"$(hint "$K1")\",\"status\":\"active\"},
{\"id\":\"apikey_k2\",\"name\":\"prod next\",\"hint\":\"$(hint "$K2")\",\"status\":\"active\"},
{\"id\":\"apikey_k3\",\"name\":\"prod third\",\"hint\":\"$(hint "$K3")\",\"status\":\"active\"}]"
"$PY" "$TESTS_DIR/fake/admin_server.py" --state "$T/state.json" --log "$T/req.log" \
	--tls "$T/srv.pem" "$T/srv.key" --port-file "$T/port" >/dev/null 2>"$T/fake.err" &
track_pid $!
poll_until 30 test -s "$T/port" || fail "fake admin API did not start"
UP="https://127.0.0.1:$(cat "$T/port")"

init_store
start_agent
unlock
add_profile prod "$K1" --no-validate
add_profile adm "$ADM" --provider anthropic-admin --no-validate --set "ANTHROPIC_BASE_URL=$UP"

trace "rotate, then --finish --deactivate: the old key is found on page 2 and set inactive"
printf '%s' "$K2" >"$T/in"
t 0 rotate prod --no-validate <"$T/in"
t 0 rotate prod --finish --deactivate
grep -q 'deactivated the old key of prod: "prod 2026" (apikey_k1)' "$OUT" || fail "no name and id printed"
grep -q 'REQ GET /v1/organizations/api_keys?limit=100&after_id=apikey_x AUTH ok' "$T/req.log" ||
	fail "the second page was not asked for with after_id"
grep -q '^REQ POST /v1/organizations/api_keys/apikey_k1 AUTH ok$' "$T/req.log" || fail "no deactivation request"
grep -q 'AUTH bad' "$T/req.log" && fail "a request went without the admin headers"
t 1 get prod --previous
grep -q 'finished the rotation' "$SHOWN" || fail "finish said nothing"

trace "rotate --deactivate with a short grace: after it the key is wiped, its hint kept, pending shown"
printf '%s' "$K3" >"$T/in"
t 0 rotate prod --no-validate --deactivate --grace 2s <"$T/in"
grep -q 'deactivated at the provider when the rotation finishes' "$ERR" || fail "rotate --deactivate: no note"
pending() { "$AKCTL" list --json | grep -q "\"deactivation_pending\":\"$(hint "$K2")\""; }
poll_until 30 pending || fail "the deactivation never became pending after the grace"
t 1 get prod --previous
t 0 list
grep -q 'deactivation-pending' "$OUT" || fail "list: no pending mark"
t 0 status
grep -qF "deactivation pending: prod (old key $(hint "$K2"))" "$OUT" || fail "status: no pending line"
printf '%s' "$K4" >"$T/in"
t 2 rotate prod --no-validate <"$T/in"
grep -q 'still awaits deactivation' "$ERR" || fail "a rotation while a deactivation is pending: no reason"

trace "a later plain --finish carries it out with the hint"
t 0 rotate prod --finish
grep -q 'deactivated the old key of prod: "prod next" (apikey_k2)' "$OUT" || fail "pending deactivation not done"
t 0 list --json
grep -q 'deactivation' "$OUT" && fail "the pending mark outlived its deactivation"

trace "an ambiguous match is refused, nothing finished"
printf '%s' "$K4" >"$T/in"
t 0 rotate prod --no-validate <"$T/in"
state "[{\"id\":\"apikey_a\",\"name\":\"a\",\"hint\":\"$(hint "$K3")\",\"status\":\"active\"},
{\"id\":\"apikey_b\",\"name\":\"b\",\"hint\":\"sk-ant-api03-Zzz...QQAA\",\"status\":\"active\"},
{\"id\":\"apikey_c\",\"name\":\"c\",\"hint\":\"$(hint "$K3")\",\"status\":\"active\"}]"
t 1 rotate prod --finish --deactivate
grep -q '2 keys match' "$ERR" || fail "ambiguous: no reason"
grep -q 'not finished' "$ERR" || fail "ambiguous: does not say it finished nothing"
grep -q 'apikey_a\|apikey_c' "$T/req.log" && fail "a key was deactivated although the match was ambiguous"
t 0 get prod --previous
[ "$(cat "$OUT")" = "$K3" ] || fail "the previous key went although the deactivation failed"

trace "no match: exit 5; a wrong admin key: the fake refuses it, exit 6"
state "[{\"id\":\"apikey_b\",\"name\":\"b\",\"hint\":\"sk-ant-api03-Zzz...QQAA\",\"status\":\"active\"}]"
t 5 rotate prod --finish --deactivate
grep -q 'no key listed' "$ERR" || fail "no match: no reason"
add_profile adm2 "$BADADM" --provider anthropic-admin --no-validate --set "ANTHROPIC_BASE_URL=$UP"
t 2 rotate prod --finish --deactivate
grep -q 'choose one with --admin' "$ERR" || fail "two admin profiles: no reason"
t 6 rotate prod --finish --deactivate --admin adm2
grep -q 'HTTP 401' "$ERR" || fail "wrong admin key: no 401"
grep -q 'AUTH bad' "$T/req.log" || fail "the fake did not see the wrong key"
t 2 rotate prod --deactivate --var X

trace "a finish on the file (agent locked) wipes the old key but keeps the deactivation pending"
state "[{\"id\":\"apikey_k4\",\"name\":\"prod four\",\"hint\":\"$(hint "$K4")\",\"status\":\"active\"}]"
printf '%s' "$K5" >"$T/in"
t 0 rotate prod --no-validate --deactivate <"$T/in"
t 0 list --json
grep -q "\"deactivate_on_finish\":\"$(hint "$K4")\"" "$OUT" || fail "list --json: no deactivation mark"
printf '%s' "$K1" >"$T/in"
t 2 rotate prod --no-validate <"$T/in"
grep -q 'still awaits deactivation when this rotation finishes' "$ERR" || fail "a rotation over a marked key: no reason"
t 0 lock
t 0 --passphrase-fd 3 rotate prod --finish 3<<<"$PASS"
t 1 --passphrase-fd 3 rotate prod --finish 3<<<"$PASS"
grep -q "deactivation at the provider is pending" "$ERR" || fail "finish on the file with only the hint: no reason"
unlock
t 1 get prod --previous
t 0 list --json
grep -q "\"deactivation_pending\":\"$(hint "$K4")\"" "$OUT" || fail "the file path dropped the deactivation"
t 0 rotate prod --finish --admin adm
grep -q 'deactivated the old key of prod: "prod four" (apikey_k4)' "$OUT" || fail "pending deactivation after unlock"

trace "no output holds a key"
for k in "${KEYS[@]}"; do
	assert_no_secret "$SHOWN" "$k" "akctl's output"
	assert_no_secret "$T/req.log" "$k" "the request lines"
done
