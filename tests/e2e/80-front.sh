#!/bin/bash
# akctl is a front: it serves get, env, use and exec itself and hands everything else, by execv with the same
# argv and environment, to the full CLI (akctl-main, beside it in the build). Its answers are the full
# CLI's byte for byte (stdout, stderr, exit code) for successes and every kind of error; what it cannot
# do itself (help, a passphrase prompt, exec --redact, a home directory from the passwd database, a
# program run with LD_PRELOAD) reaches the full CLI; and a GET it sent is never sent again by a hand-over.
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

MAIN=$(dirname "$AKCTL")/akctl-main
[ -x "$MAIN" ] || fail "no akctl-main beside $AKCTL"
: "${AKPRELOADMARK:?AKPRELOADMARK must name the preload marker library}"

K1=$(fake_key)
K2=$(fake_key)
init_store
start_agent
unlock
add_profile p1 "$K1" --set MODEL=claude --set "QUOTE=it's \$HOME \`x\`"
add_profile work "$K2"
STORE=$XDG_DATA_HOME/akagent/keystore

# same ARGS...: akctl and akctl-main give the same stdout, stderr and exit code (stdin /dev/null, so
# nothing can prompt).
N=0
same() {
	local rc_f=0 rc_m=0
	"$AKCTL" "$@" </dev/null >"$T/f.out" 2>"$T/f.err" || rc_f=$?
	"$MAIN" "$@" </dev/null >"$T/m.out" 2>"$T/m.err" || rc_m=$?
	[ "$rc_f" = "$rc_m" ] || fail "akctl $*: exit $rc_f, akctl-main $rc_m ($(cat "$T/f.err"))"
	cmp -s "$T/f.out" "$T/m.out" || fail "akctl $*: stdout differs from akctl-main's"
	cmp -s "$T/f.err" "$T/m.err" || fail "akctl $*: stderr differs: '$(cat "$T/f.err")' against '$(cat "$T/m.err")'"
	N=$((N + 1))
}

trace "unlocked: every form of get, env, use and exec, and their errors, as the full CLI"
same get p1
assert_bytes "$T/f.out" "$K1"
same get p1 MODEL
same get p1 NOPE
same get p1 'bad-var!'
same get nope
same get p
same get 'bad/name'
same get
same get p1 MODEL extra
same get --bogus p1
same get --previous p1
same get p1 --previous
same env p1
grep -q "^export ANTHROPIC_API_KEY=" "$T/f.out" || fail "env p1: no export line"
for sh in sh bash zsh fish csh tcsh powershell cmd dotenv json nosuch; do
	same env p1 --shell "$sh"
	same env --shell="$sh" p1
	same env -s "$sh" p1
done
same env --sh fish p1
same env --reveal p1
same env p1 work
same env
same use p1
same use p1 --shell fish
same use --clear
same use p1 --clear
same use
AKCTL_RESTORE=garbage same use work
AKCTL_PROFILE=p1 same use work
PRINT='printf "%s|%s|%s|%s" "$ANTHROPIC_API_KEY" "$MODEL" "${QUOTE-unset}" "${AKCTL_PROFILE-}"'
same exec p1 -- sh -c "$PRINT"
assert_bytes "$T/f.out" "$K1|claude|it's \$HOME \`x\`|p1"
same exec --clean p1 -- sh -c "$PRINT"
same exec --keep MODEL p1 -- sh -c "$PRINT"
MODEL=mine same exec --keep MODEL p1 -- sh -c "$PRINT"
same exec --previous p1 -- true
same exec p1 -- sh -c 'exit 7'
same exec p1 -- "$T/no-such-program"
same exec p1
same exec nope -- true
same exec --bogus p1 -- true
same exec --keep 'bad var' p1 -- true
same exec --redact p1 -- sh -c "$PRINT"
printf 'KEY=ak://work/ANTHROPIC_API_KEY\nPLAIN=x\n' >"$T/ref.env"
same exec --env-file "$T/ref.env" -- sh -c 'printf "%s|%s" "${KEY-}" "$PLAIN"'
expect_exit 0 "$AKCTL" allow "$T/ref.env"
same exec --env-file "$T/ref.env" -- sh -c 'printf "%s|%s" "${KEY-}" "$PLAIN"'
assert_bytes "$T/f.out" "$K2|x"
same exec --env-file "$T/ref.env" p1 -- sh -c 'printf "%s|%s|%s" "${KEY-}" "$PLAIN" "$ANTHROPIC_API_KEY"'
same exec --env-file "$T/missing.env" -- true
same -f "$STORE" get p1
same get p1 -f "$STORE"
same -f "$T/other-store" get p1
same -f "" get p1
same -f
same --no-prompt get p1
same get p1 --no-prompt
same --passphrase-fd x get p1
same --passphrase-fd=3 env p1 3</dev/null
same get -- p1
same -- get p1
same help get
same --version
same status
same list --names
same nosuchcommand
same
SHELL=/bin/fish same env p1
env -u HOME -u XDG_DATA_HOME "$AKCTL" get p1 </dev/null >"$T/f.out" 2>"$T/f.err" || true
env -u HOME -u XDG_DATA_HOME "$MAIN" get p1 </dev/null >"$T/m.out" 2>"$T/m.err" || true
cmp -s "$T/f.out" "$T/m.out" && cmp -s "$T/f.err" "$T/m.err" ||
	fail "no HOME: akctl and akctl-main differ: '$(cat "$T/f.err")' against '$(cat "$T/m.err")'"

trace "help is the full CLI's"
expect_exit 0 "$AKCTL" get -h
grep -q '^usage: akctl get PROFILE' "$OUT" || fail "get -h: no usage line"
same env --help

trace "a GET the front sent is not sent again: one handout logged per get, failed or not"
gets() {
	expect_exit 0 "$AKCTL" log --profile p1
	awk 'NR > 1 && $2 == "get"' "$OUT" | wc -l
}
before=$(gets)
expect_exit 0 "$AKCTL" get p1
expect_exit 0 "$AKCTL" env p1
run "$AKCTL" get p1 NOPE
[ "$RC" = 0 ] && fail "get p1 NOPE succeeded"
assert_eq "$(gets)" "$((before + 3))" "handouts logged for 3 gets"

trace "locked, nobody to ask: the front's answer is the full CLI's (exit 4)"
expect_exit 0 "$AKCTL" lock
same get p1
[ "$(cat "$T/f.err")" = "akctl: get: agent is locked: run 'akctl unlock'" ] || fail "locked: $(cat "$T/f.err")"
same --no-prompt env p1
same -f "$STORE" get p1
same use p1
same exec p1 -- true

trace "locked, AKCTL_ASKPASS set: the full CLI asks, unlocks and answers"
printf '#!/bin/sh\nprintf "%%s\\n" "%s"\n' "$PASS" >"$T/askpass"
chmod 700 "$T/askpass"
AKCTL_ASKPASS=$T/askpass expect_exit 0 "$AKCTL" get p1
assert_bytes "$OUT" "$K1"
expect_exit 0 "$AKCTL" status

trace "no agent and no keystore: as the full CLI"
AKAGENT_SOCK=$T/none.sock same get p1
grep -qF "akctl: get: no agent reachable at $T/none.sock" "$T/f.err" || fail "no agent: $(cat "$T/f.err")"
XDG_DATA_HOME=$T/empty AKAGENT_SOCK=$T/none.sock same env p1

trace "LD_PRELOAD: the command runs in a program that loads the library"
PRELOAD=$AKPRELOADMARK
[ -n "$AKT_ASAN_RT" ] && PRELOAD="$AKT_ASAN_RT:$AKPRELOADMARK"
LD_PRELOAD=$PRELOAD AK_PRELOAD_MARK=$T/mark expect_exit 0 "$AKCTL" get p1
assert_bytes "$OUT" "$K1"
grep -qx "$MAIN" "$T/mark" 2>/dev/null || grep -q '/akctl-main$' "$T/mark" ||
	fail "LD_PRELOAD: the library was not loaded into akctl-main: $(cat "$T/mark" 2>/dev/null)"
trace "$N cases compared"
