#!/bin/bash
# Confirm-on-use: `set P --confirm` makes the agent run AKAGENT_ASKPASS before handing out P's secret.
# Allowed, denied and timed out with a scripted askpass that waits on a fifo, while another client is
# served meanwhile (the agent never waits for the askpass); a client that hangs up, and a lock, kill
# the askpass; no askpass denies with a message that says so; each outcome is in the usage log.
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

K1=$(fake_key)
K2=$(fake_key)
EXE=$(realpath "$AKCTL")
PROMPTS="$T/prompts"
mkfifo "$T/gate" "$T/never"
mkdir "$T/work dir"

# The askpass: records its prompt and pid, then answers what $T/mode says ("gate": what the test
# writes into the fifo; "hang": never).
cat > "$T/askpass" <<SH
#!/bin/sh
printf '%s\n' "\$1" >> "$PROMPTS"
printf '%s\n' "\$SSH_ASKPASS_PROMPT" > "$T/askpass-env"
echo \$\$ > "$T/askpass.pid"
case \$(cat "$T/mode") in
yes) exit 0 ;;
no) exit 1 ;;
gate) read -r v < "$T/gate"; [ "\$v" = yes ] ;;
hang) read -r v < "$T/never"; exit 0 ;;
esac
SH
chmod 0755 "$T/askpass"

# pending_get NAME: `akctl get NAME` in the background from "$T/work dir"; GPID is its pid, its output
# goes to $T/bg.out and $T/bg.err, its status to $T/bg.rc. Returns once the askpass has asked.
pending_get() {
	rm -f "$PROMPTS" "$T/askpass.pid" "$T/bg.rc"
	(cd "$T/work dir" && exec "$AKCTL" get "$1") >"$T/bg.out" 2>"$T/bg.err" &
	GPID=$!
	wait_until 20 test -s "$T/askpass.pid" || fail "the askpass was not started"
	APID=$(cat "$T/askpass.pid")
}
# bg_wait: BGRC = the background get's exit status.
bg_wait() {
	BGRC=0
	wait "$GPID" || BGRC=$?
}

init_store
export AKAGENT_ASKPASS="$T/askpass"
start_agent
unset AKAGENT_ASKPASS
unlock
add_profile prod "$K1"
add_profile dev "$K2"
expect_exit 0 "$AKCTL" set prod --confirm
expect_exit 0 "$AKCTL" list
awk '$1 == "prod" && / confirm$/' "$OUT" | grep -q . || fail "list does not mark prod confirm"
expect_exit 0 "$AKCTL" list --json
grep -q '"name":"prod"[^}]*"confirm":true' "$OUT" || fail "list --json: prod has no confirm"
expect_exit 0 "$AKCTL" status
grep -q '^confirm: *1 profile asks before use' "$OUT" || fail "status: no confirm line"

trace "allowed: another client is served while the askpass waits"
echo gate > "$T/mode"
pending_get prod
expect_exit 0 "$AKCTL" get dev
assert_eq "$(cat "$OUT")" "$K2" "get dev while prod's confirmation is pending"
kill -0 "$GPID" 2>/dev/null || fail "get prod did not wait for the confirmation"
[ -e "$T/bg.rc" ] && fail "get prod answered before the confirmation"
echo yes > "$T/gate"
bg_wait
assert_eq "$BGRC" 0 "get prod after yes"
assert_eq "$(cat "$T/bg.out")" "$K1" "get prod after yes"
# The prompt names the program, its pid, its directory and the profile, never the secret.
P=$(cat "$PROMPTS")
case $P in
*"$EXE (pid $GPID, in $T/work dir)"*"profile 'prod'"*) ;;
*) fail "prompt '$P' does not name $EXE, pid $GPID, its directory and the profile" ;;
esac
assert_no_secret "$PROMPTS" "$K1" "the prompt"
assert_eq "$(cat "$T/askpass-env")" confirm "SSH_ASKPASS_PROMPT"

trace "denied: exit 8, its own message"
pending_get prod
expect_exit 0 "$AKCTL" get dev
echo no > "$T/gate"
bg_wait
assert_eq "$BGRC" 8 "get prod after no"
assert_bytes "$T/bg.out" ""
grep -q 'denied at the confirmation prompt' "$T/bg.err" || fail "denial: $(cat "$T/bg.err")"

trace "every secret handout asks: env, exec, --previous"
echo yes > "$T/mode"
rm -f "$PROMPTS"
expect_exit 0 "$AKCTL" exec prod -- sh -c 'printf %s "$ANTHROPIC_API_KEY"'
assert_eq "$(cat "$OUT")" "$K1" "exec prod allowed"
expect_exit 0 "$AKCTL" env prod
grep -q "$K1" "$OUT" || fail "env prod allowed: no key"
assert_eq "$(wc -l < "$PROMPTS")" 2 "prompts for exec and env"
echo no > "$T/mode"
expect_exit 8 "$AKCTL" exec prod -- true
expect_exit 8 "$AKCTL" env prod
printf '%s' "$(fake_key)" > "$T/new"
expect_exit 0 "$AKCTL" rotate prod --no-validate < "$T/new"
rm -f "$PROMPTS"
expect_exit 8 "$AKCTL" get --previous prod
grep -q "previous secret of profile 'prod'" "$PROMPTS" || fail "--previous: prompt $(cat "$PROMPTS")"
echo yes > "$T/mode"
expect_exit 0 "$AKCTL" get --previous prod
assert_eq "$(cat "$OUT")" "$K1" "get --previous allowed"

trace "a client that hangs up while pending: the askpass is killed, the agent goes on"
echo hang > "$T/mode"
pending_get prod
kill -KILL "$GPID"
wait "$GPID" 2>/dev/null
wait_gone "$APID" 10 || fail "askpass $APID still runs after its client went away"
expect_exit 0 "$AKCTL" get dev

trace "lock while pending: denied, the askpass killed"
pending_get prod
expect_exit 0 "$AKCTL" lock
bg_wait
assert_eq "$BGRC" 8 "get prod pending across a lock"
grep -q 'locked while asking' "$T/bg.err" || fail "lock: $(cat "$T/bg.err")"
wait_gone "$APID" 10 || fail "askpass $APID still runs after the lock"
unlock

trace "the usage log has each outcome (the lock wiped the earlier ones)"
echo yes > "$T/mode"
expect_exit 0 "$AKCTL" get prod
echo no > "$T/mode"
expect_exit 8 "$AKCTL" get prod
expect_exit 0 "$AKCTL" log --profile prod
awk '$2 == "get" && $6 == "ok"' "$OUT" | grep -q . || fail "log: no allowed get"
awk -v e="$EXE" '$2 == "get" && $5 == e && $6 == "denied"' "$OUT" | grep -q . || fail "log: no denied get"

trace "--no-confirm: no prompt"
rm -f "$PROMPTS"
expect_exit 0 "$AKCTL" set prod --no-confirm
expect_exit 0 "$AKCTL" get prod
[ -e "$PROMPTS" ] && fail "asked after --no-confirm"
expect_exit 0 "$AKCTL" set prod --confirm

trace "timeout: no answer in --confirm-timeout denies (exit 8) and kills the askpass"
stop_agent
export AKAGENT_ASKPASS="$T/askpass"
start_agent --confirm-timeout 1s
unset AKAGENT_ASKPASS
unlock
echo hang > "$T/mode"
pending_get prod
expect_exit 0 "$AKCTL" get dev
bg_wait
assert_eq "$BGRC" 8 "get prod not answered"
grep -q 'no answer at the confirmation prompt' "$T/bg.err" || fail "timeout: $(cat "$T/bg.err")"
wait_gone "$APID" 10 || fail "askpass $APID still runs after the timeout"
expect_exit 0 "$AKCTL" log --profile prod
awk '$2 == "get" && $6 == "timeout"' "$OUT" | grep -q . || fail "log: no timed-out get"

trace "no AKAGENT_ASKPASS: denied, and the message says why"
stop_agent
start_agent
unlock
expect_exit 8 "$AKCTL" get prod
grep -q 'AKAGENT_ASKPASS was not set' "$ERR" || fail "no askpass: $(cat "$ERR")"
expect_exit 0 "$AKCTL" get dev

trace "an askpass that cannot run: denied, said so"
stop_agent
export AKAGENT_ASKPASS="$T/no-such-askpass"
start_agent
unset AKAGENT_ASKPASS
unlock
expect_exit 8 "$AKCTL" get prod
grep -q 'AKAGENT_ASKPASS could not be run' "$ERR" || fail "bad askpass: $(cat "$ERR")"

expect_exit 2 "$AKCTL" set prod --confirm --no-confirm
expect_exit 2 "$AKAGENT" --confirm-timeout 0 -D
exit 0
