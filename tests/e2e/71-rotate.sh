#!/bin/bash
# Key rotation with an overlap: rotate keeps the old key as previous (served with --previous) until a
# grace deadline, rollback swaps back, finish wipes it, and the agent wipes it itself when the grace
# ends; the rotation policy marks keys due and overdue; a new key is checked live like add's.
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

FAKE="$TESTS_DIR/fake/provider_server.py"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy no_proxy NO_PROXY \
	ANTHROPIC_BASE_URL OPENAI_BASE_URL AKCTL_CA_BUNDLE
SHOWN="$T/shown"	# everything list/show/status/rotate printed: must hold no secret
: >"$SHOWN"
KEYS=()

# key WORD: a made-up Anthropic-shaped key; WORD tells the fake provider how to answer.
key() {
	local body
	body="fake-$1-$(head -c 96 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '=')"
	printf 'sk-ant-api03-%sAA' "${body:0:93}"
}

# t CODE ARGS...: akctl ARGS must exit CODE; its messages, and the output of every command that does
# not print secrets on purpose, are kept for the final scan.
t() {
	local want=$1
	shift
	expect_exit "$want" "$AKCTL" "$@"
	cat "$ERR" >>"$SHOWN"
	case $1 in
	get | env | use | exec) ;;
	*) cat "$OUT" >>"$SHOWN" ;;
	esac
}

K1=$(key ok); K2=$(key ok); K3=$(key ok); KEYS+=("$K1" "$K2" "$K3")
PW1="pw-$(rand_word)"; PW2="pw-$(rand_word)"; KEYS+=("$PW1" "$PW2")

init_store
start_agent
unlock

trace "rotate: the new key is current, the old one previous"
printf '%s\n%s\n' "$K1" "$PW1" >"$T/in"
t 0 add prod --no-validate --set MODEL=opus --secret DB_PASSWORD <"$T/in"
t 1 get prod --previous
grep -q 'no previous key' "$ERR" || fail "get --previous before any rotation: no reason"
printf '%s' "$K2" >"$T/in"
t 0 rotate prod <"$T/in"
grep -q 'rotated prod' "$ERR" || fail "rotate said nothing"
t 0 get prod
assert_bytes "$OUT" "$K2"
t 0 get prod --previous
assert_bytes "$OUT" "$K1"
t 0 env prod --shell sh --previous
assert_eq "$(sh -c '. "$1"; printf %s "$ANTHROPIC_API_KEY"' sh "$OUT")" "$K1" "env --previous"
assert_eq "$(sh -c '. "$1"; printf %s "$DB_PASSWORD"' sh "$OUT")" "$PW1" "env --previous: other secrets stay"
t 0 exec --previous prod -- sh -c 'printf %s "$ANTHROPIC_API_KEY"'
assert_bytes "$OUT" "$K1"
t 0 exec prod -- sh -c 'printf %s "$ANTHROPIC_API_KEY"'
assert_bytes "$OUT" "$K2"
# --previous after the profile belongs to the command, not to exec
t 0 exec prod -- sh -c 'printf %s "$1"' sh --previous
assert_bytes "$OUT" "--previous"
t 0 use prod --shell sh --previous
grep -qF "$K1" "$OUT" || fail "use --previous does not set the previous key"
t 0 get prod MODEL --previous
assert_bytes "$OUT" "opus"
t 0 list
grep -q '^prod .* +previous$' "$OUT" || fail "list does not mark the kept previous key"
t 0 list --json
"$PY" -c 'import json,sys; e=json.load(open(sys.argv[1]))[0]; assert "previous_until" in e, e' "$OUT" ||
	fail "list --json has no previous_until"
t 0 status
grep -q '^previous:   1 key kept' "$OUT" || fail "status does not count the kept key"

trace "the same key again is refused; an empty one too"
printf '%s' "$K2" >"$T/in"
t 1 rotate prod <"$T/in"
grep -q 'the new key is the current one' "$ERR" || fail "rotate to the same key: no reason"
t 1 rotate prod </dev/null

trace "rollback swaps back; finish wipes the previous key"
t 0 rotate prod --rollback
t 0 get prod
assert_bytes "$OUT" "$K1"
t 0 get prod --previous
assert_bytes "$OUT" "$K2"
t 0 rotate prod --finish
t 0 get prod
assert_bytes "$OUT" "$K1"
t 1 get prod --previous
t 1 rotate prod --finish
t 1 rotate prod --rollback
t 2 rotate prod --rollback --finish
t 2 rotate prod --finish --grace 1h
t 2 rotate prod --grace 0 <"$T/in"
t 2 rotate prod --grace soon <"$T/in"

trace "a secret variable rotates the same way"
printf '%s' "$PW2" >"$T/in"
t 0 rotate prod --var DB_PASSWORD <"$T/in"
t 0 get prod DB_PASSWORD
assert_bytes "$OUT" "$PW2"
t 0 get prod DB_PASSWORD --previous
assert_bytes "$OUT" "$PW1"
t 0 get prod --previous	# the main secret has no previous one: served as it is
assert_bytes "$OUT" "$K1"
t 2 rotate prod --var MODEL <"$T/in"	# a plain variable does not rotate
grep -q 'only the main secret and secret variables' "$ERR" || fail "rotate of a plain variable: no reason"
t 1 rotate prod --var NOPE <"$T/in"
t 0 rotate prod --var DB_PASSWORD --finish
t 1 get prod DB_PASSWORD --previous
t 5 rotate nosuch <"$T/in"

trace "grace expiry: the agent wipes the previous key when the grace ends"
printf '%s' "$K3" >"$T/in"
t 0 rotate prod --grace 2s <"$T/in"
t 0 get prod --previous
assert_bytes "$OUT" "$K1"
poll_until 30 sh -c '! "$1" get prod --previous' sh "$AKCTL" ||
	fail "the previous key is still served after its grace"
t 0 get prod
assert_bytes "$OUT" "$K3"
# Wiped from the keystore file too: a fresh agent on the same file has none.
poll_until 30 sh -c '! "$1" list | grep -q previous' sh "$AKCTL" || fail "list still marks a previous key"
stop_agent
start_agent
unlock
t 1 get prod --previous
t 0 get prod
assert_bytes "$OUT" "$K3"

trace "rotation policy: due, then overdue"
t 0 set prod --rotate-every 90d
t 0 list
grep -q 'due' "$OUT" && fail "a fresh key is marked due"
t 0 show prod --json
t 0 set prod --rotate-every 1s
poll_until 30 sh -c '"$1" list | grep -q "^prod .* overdue"' sh "$AKCTL" || fail "list never marks prod overdue"
t 0 status
grep -q '^rotation:   1 overdue, 0 due (of 1 with a policy)' "$OUT" || fail "status has no rotation count"
t 0 list --json
"$PY" -c 'import json,sys; e=json.load(open(sys.argv[1]))[0]; assert e["rotation"]=="overdue" and e["rotate_every"]==1, e' "$OUT" ||
	fail "list --json: rotation state"
t 0 set prod --rotate-every 0
t 0 status
grep -q '^rotation:' "$OUT" && fail "status counts a policy that was removed"
t 2 set prod --rotate-every fortnight
# The policy survives a re-add with --force only when it brings none: set it and replace the profile.
t 0 set prod --rotate-every 90d
printf '%s' "$K3" >"$T/in"
t 0 add prod --force --no-validate <"$T/in"
t 0 list --json
"$PY" -c 'import json,sys; e=json.load(open(sys.argv[1]))[0]; assert e["rotate_every"]==90*86400, e' "$OUT" ||
	fail "add --force dropped the rotation policy"

trace "without an agent: rotate, rollback and finish on the file with the passphrase"
stop_agent
K4=$(key ok); KEYS+=("$K4")
printf '%s' "$K4" >"$T/in"
expect_exit 0 "$AKCTL" --passphrase-fd 3 rotate prod <"$T/in" 3<<<"$PASS"
expect_exit 0 "$AKCTL" --passphrase-fd 3 rotate prod --rollback 3<<<"$PASS"
start_agent
unlock
t 0 get prod
assert_bytes "$OUT" "$K3"
t 0 get prod --previous
assert_bytes "$OUT" "$K4"
stop_agent
expect_exit 0 "$AKCTL" --passphrase-fd 3 rotate prod --finish 3<<<"$PASS"
start_agent
unlock
t 1 get prod --previous

trace "a new key is checked live like add's: a rejection refuses, no verdict warns"
"$PY" "$FAKE" --log "$T/req.log" --port-file "$T/port" >/dev/null 2>"$T/fake.err" &
track_pid $!
poll_until 10 test -s "$T/port" || fail "fake provider did not start"
HTTP="http://127.0.0.1:$(cat "$T/port")"
t 0 set prod --set "ANTHROPIC_BASE_URL=$HTTP"
KB=$(key s401); KS=$(key s500); KO=$(key ok); KEYS+=("$KB" "$KS" "$KO")
printf '%s' "$KB" >"$T/in"
t 10 rotate prod --validate <"$T/in"
grep -q 'not rotated' "$ERR" || fail "a rejected key: rotate did not say it refused"
t 0 get prod
assert_bytes "$OUT" "$K3"
printf '%s' "$KS" >"$T/in"
t 0 rotate prod --validate <"$T/in"
grep -q 'could not be verified' "$ERR" || fail "no verdict: rotate did not warn"
printf '%s' "$KO" >"$T/in"
t 0 rotate prod --validate <"$T/in"
t 0 get prod
assert_bytes "$OUT" "$KO"
t 0 get prod --previous
assert_bytes "$OUT" "$KS"

trace "no secret in anything list, show, status or rotate printed, nor in any message"
t 0 show prod
t 0 list
t 0 status
for k in "${KEYS[@]}"; do
	assert_no_secret "$SHOWN" "$k" "list/show/status/rotate output"
done
