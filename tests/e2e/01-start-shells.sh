#!/bin/bash
# eval "$(akagent)" in bash, zsh, fish and tcsh; one agent per user; -k; akagent CMD; stale and
# removed sockets; unsafe socket directory; -a and -D; -f KEYSTORE exports AKCTL_KEYSTORE too.
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

init_store
# A socket path with a space in it: the printed exports must quote it.
export XDG_RUNTIME_DIR="$T/run dir"
mkdir -m 0700 "$XDG_RUNTIME_DIR"
SOCK="$XDG_RUNTIME_DIR/akagent/agent.sock"
export T AKAGENT AKCTL

# A shell's session: start the agent, check what it sees, ask for status, kill the agent.
# Each writes <shell>.pid, .sock (printenv), .status (akctl's exit), .after (printenv's exit after -k).
check_shell() {
	local sh=$1 pid
	pid=$(cat "$T/$sh.pid" 2>/dev/null)
	[ -n "$pid" ] || fail "$sh: no AKAGENT_PID seen after eval"
	track_pid "$pid"
	assert_bytes "$T/$sh.sock" "$SOCK"$'\n'
	assert_eq "$(cat "$T/$sh.status")" 4 "$sh: akctl status exit (agent locked)"
	assert_eq "$(cat "$T/$sh.after")" 1 "$sh: printenv AKAGENT_SOCK status after akagent -k"
	wait_gone "$pid" 5 || fail "$sh: agent $pid still running after akagent -k"
	[ -e "$SOCK" ] && fail "$sh: socket still there after akagent -k"
	return 0
}

trace "bash: eval \"\$(akagent)\" sets exactly AKAGENT_SOCK and AKAGENT_PID"
cat > "$T/t.bash" <<'SH'
before=$(compgen -e | sort)
eval "$("$AKAGENT")" || exit 10
after=$(compgen -e | sort)
comm -13 <(printf '%s\n' "$before") <(printf '%s\n' "$after") > "$T/bash.newvars"
printf '%s\n' "$AKAGENT_PID" > "$T/bash.pid"
printenv AKAGENT_SOCK > "$T/bash.sock"
printenv AKAGENT_PID > "$T/bash.pidenv"
"$AKCTL" status >/dev/null 2>&1; echo $? > "$T/bash.status"
eval "$("$AKAGENT" -k)" || exit 11
printenv AKAGENT_SOCK >/dev/null; echo $? > "$T/bash.after"
SH
expect_exit 0 env SHELL=/bin/bash bash "$T/t.bash"
check_shell bash
assert_bytes "$T/bash.newvars" $'AKAGENT_PID\nAKAGENT_SOCK\n'
assert_bytes "$T/bash.pidenv" "$(cat "$T/bash.pid")"$'\n'

trace "zsh"
cat > "$T/t.zsh" <<'SH'
eval "$("$AKAGENT")" || exit 10
printf '%s\n' "$AKAGENT_PID" > "$T/zsh.pid"
printenv AKAGENT_SOCK > "$T/zsh.sock"
"$AKCTL" status >/dev/null 2>&1; echo $? > "$T/zsh.status"
eval "$("$AKAGENT" -k)" || exit 11
printenv AKAGENT_SOCK >/dev/null; echo $? > "$T/zsh.after"
SH
expect_exit 0 env SHELL=/usr/bin/zsh zsh -f "$T/t.zsh"
check_shell zsh

trace "dash (sh syntax chosen from SHELL=/bin/sh)"
cat > "$T/t.dash" <<'SH'
eval "$("$AKAGENT")" || exit 10
printf '%s\n' "$AKAGENT_PID" > "$T/dash.pid"
printenv AKAGENT_SOCK > "$T/dash.sock"
"$AKCTL" status >/dev/null 2>&1; echo $? > "$T/dash.status"
eval "$("$AKAGENT" -k)" || exit 11
printenv AKAGENT_SOCK >/dev/null; echo $? > "$T/dash.after"
SH
expect_exit 0 env SHELL=/bin/sh dash "$T/t.dash"
check_shell dash

trace "fish: akagent | source (fish syntax chosen from SHELL)"
cat > "$T/t.fish" <<'SH'
$AKAGENT | source
or exit 10
printf '%s\n' $AKAGENT_PID > $T/fish.pid
printenv AKAGENT_SOCK > $T/fish.sock
$AKCTL status >/dev/null 2>&1; echo $status > $T/fish.status
$AKAGENT -k | source
or exit 11
printenv AKAGENT_SOCK >/dev/null; echo $status > $T/fish.after
SH
expect_exit 0 env SHELL=/usr/bin/fish fish --no-config "$T/t.fish"
check_shell fish

trace "tcsh: eval \"\`akagent -c\`\""
cat > "$T/t.tcsh" <<'SH'
eval "`$AKAGENT -c`"
printf '%s\n' "$AKAGENT_PID" > $T/tcsh.pid
printenv AKAGENT_SOCK > $T/tcsh.sock
$AKCTL status >& /dev/null
echo $status > $T/tcsh.status
eval "`$AKAGENT -k`"
printenv AKAGENT_SOCK > /dev/null
echo $status > $T/tcsh.after
SH
expect_exit 0 env SHELL=/usr/bin/tcsh tcsh -f "$T/t.tcsh"
check_shell tcsh

trace "-f KEYSTORE also exports AKCTL_KEYSTORE: akctl unlock then finds that keystore (sh, fish, csh)"
# Another passphrase than the default keystore's, so unlocking with the wrong file would fail.
STORE2="$T/key's \$store"
PASS2="other-$(rand_word)"
printf '%s\n' "$PASS2" > "$T/pass2"
expect_exit 0 "$AKCTL" -f "$STORE2" --passphrase-fd 3 init --kdf insecure-test 3<"$T/pass2"
export STORE2
cat > "$T/f.bash" <<'SH'
eval "$("$AKAGENT" -f "$STORE2")" || exit 10
printf '%s\n' "$AKAGENT_PID" > "$T/fbash.pid"
[ "$AKCTL_KEYSTORE" = "$STORE2" ] || exit 11
"$AKCTL" --passphrase-fd 0 unlock < "$T/pass2" || exit 12
"$AKCTL" status >/dev/null || exit 13
# A second start finds this agent, serving this keystore: the same exports.
unset AKCTL_KEYSTORE
eval "$("$AKAGENT" -f "$STORE2")" || exit 14
[ "$AKCTL_KEYSTORE" = "$STORE2" ] || exit 15
# Another keystore than the running agent's is not exported, with a note.
unset AKCTL_KEYSTORE
eval "$("$AKAGENT" -f "$T/other" 2>"$T/fbash.note")" || exit 16
[ -z "${AKCTL_KEYSTORE+x}" ] || exit 17
grep -q 'AKCTL_KEYSTORE not set' "$T/fbash.note" || exit 18
eval "$("$AKAGENT" -k)" >/dev/null || exit 19
SH
expect_exit 0 env SHELL=/bin/bash bash "$T/f.bash"
track_pid "$(cat "$T/fbash.pid")"
wait_gone "$(cat "$T/fbash.pid")" 5 || fail "bash: agent still running after -k"
cat > "$T/f.fish" <<'SH'
$AKAGENT -f $STORE2 | source; or exit 10
printf '%s\n' $AKAGENT_PID > $T/ffish.pid
test "$AKCTL_KEYSTORE" = "$STORE2"; or exit 11
$AKCTL --passphrase-fd 0 unlock < $T/pass2; or exit 12
$AKAGENT -k | source
SH
expect_exit 0 env SHELL=/usr/bin/fish fish --no-config "$T/f.fish"
track_pid "$(cat "$T/ffish.pid")"
wait_gone "$(cat "$T/ffish.pid")" 5 || fail "fish: agent still running after -k"
# csh syntax (the path has a quote in it; tcsh cannot pass it as an argument inside backquotes).
expect_exit 0 "$AKAGENT" -c -f "$STORE2"
cp "$OUT" "$T/f.csh"
cat > "$T/f.tcsh" <<'SH'
eval "`cat $T/f.csh`"
printf '%s\n' "$AKAGENT_PID" > $T/ftcsh.pid
if ( "$AKCTL_KEYSTORE" != "$STORE2" ) exit 11
$AKCTL --passphrase-fd 0 unlock < $T/pass2
if ( $status != 0 ) exit 12
eval "`$AKAGENT -k`"
SH
expect_exit 0 env SHELL=/usr/bin/tcsh tcsh -f "$T/f.tcsh"
track_pid "$(cat "$T/ftcsh.pid")"
wait_gone "$(cat "$T/ftcsh.pid")" 5 || fail "tcsh: agent still running after -k"

# Agents on the default socket of this test (root can read a non-dumpable process's environ).
count_agents() {
	local exe p n=0
	exe=$(readlink -f "$AKAGENT")
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/exe" 2>/dev/null)" = "$exe" ] || continue
		tr '\0' '\n' < "$p/environ" 2>/dev/null | grep -xF "XDG_RUNTIME_DIR=$XDG_RUNTIME_DIR" >/dev/null &&
			n=$((n + 1))
	done
	echo "$n"
}

trace "akagent twice gives one agent"
start_agent
PID1=$AKAGENT_PID
expect_exit 0 "$AKAGENT" -s
PID2=$(unset AKAGENT_PID; eval "$(cat "$OUT")" >/dev/null; echo "${AKAGENT_PID:-}")
assert_eq "$PID2" "$PID1" "second akagent's AKAGENT_PID"
kill -0 "$PID1" 2>/dev/null || fail "first agent died when a second akagent ran"
expect_exit 4 "$AKCTL" status
if am_root; then
	assert_eq "$(count_agents)" 1 "agents running for this user"
fi
expect_exit 0 "$AKAGENT" -k
wait_gone "$PID1" 5 || fail "akagent -k did not stop $PID1"
unset AKAGENT_SOCK AKAGENT_PID

trace "concurrent starts are serialised: 4 at once give one agent"
for i in 1 2 3 4; do
	"$AKAGENT" -s > "$T/conc.$i" 2>"$T/conc.err.$i" &
done
wait
pids=""
for i in 1 2 3 4; do
	p=$(unset AKAGENT_PID; eval "$(cat "$T/conc.$i")" >/dev/null; echo "${AKAGENT_PID:-none}")
	[ "$p" != none ] && track_pid "$p"
	pids="$pids $p"
done
# shellcheck disable=SC2086  # split the pid list
set -- $pids
for p in "$@"; do
	assert_eq "$p" "$1" "AKAGENT_PID of concurrent starts ($pids)"
done
if am_root; then
	assert_eq "$(count_agents)" 1 "agents running after 4 concurrent starts"
fi
AKAGENT_PID=$1 AKAGENT_SOCK=$SOCK
export AKAGENT_PID AKAGENT_SOCK
expect_exit 4 "$AKCTL" status

trace "a stale socket is replaced"
kill -KILL "$AKAGENT_PID"
wait_gone "$AKAGENT_PID" 5 || fail "kill -9 did not stop the agent"
[ -S "$SOCK" ] || fail "test assumption: socket left behind by kill -9"
expect_exit 3 "$AKCTL" status
start_agent
[ "$AKAGENT_PID" != "$1" ] || fail "stale agent pid reused"
expect_exit 4 "$AKCTL" status

trace "SIGTERM removes the socket and exits"
stop_agent
[ -e "$SOCK" ] && fail "socket left behind after SIGTERM"

trace "an agent whose socket is removed exits"
start_agent
rm -f "$SOCK"
wait_gone "$AKAGENT_PID" 20 || fail "agent still running 20 s after its socket was removed"

trace "an agent whose socket is replaced exits"
start_agent
mv "$SOCK" "$SOCK.old"
/usr/bin/python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$SOCK"
wait_gone "$AKAGENT_PID" 20 || fail "agent still running 20 s after its socket was replaced"
rm -f "$SOCK" "$SOCK.old"

trace "an unsafe socket directory is refused"
chmod 0755 "$XDG_RUNTIME_DIR/akagent"
expect_exit nonzero "$AKAGENT" -s
chmod 0700 "$XDG_RUNTIME_DIR/akagent"
rm -rf "$XDG_RUNTIME_DIR/akagent"
ln -s "$T/home" "$XDG_RUNTIME_DIR/akagent"
expect_exit nonzero "$AKAGENT" -s
rm -f "$XDG_RUNTIME_DIR/akagent"

trace "-a PATH with shell metacharacters in it"
WEIRD="$T/we'ird \$dir \`x\`"
mkdir -m 0700 "$WEIRD"
start_agent -a "$WEIRD/s.sock"
assert_eq "$AKAGENT_SOCK" "$WEIRD/s.sock" "AKAGENT_SOCK with -a"
expect_exit 4 "$AKCTL" status
# csh syntax for the same path (the live agent's exports are printed again).
expect_exit 0 "$AKAGENT" -c -a "$WEIRD/s.sock"
cp "$OUT" "$T/exports.csh"
cat > "$T/t2.tcsh" <<'SH'
eval "`cat $T/exports.csh`"
printenv AKAGENT_SOCK > $T/tcsh2.sock
SH
expect_exit 0 env SHELL=/usr/bin/tcsh tcsh -f "$T/t2.tcsh"
assert_bytes "$T/tcsh2.sock" "$WEIRD/s.sock"$'\n'
stop_agent

trace "-D stays in the foreground"
"$AKAGENT" -D -a "$T/fg.sock" >"$T/fg.out" 2>"$T/fg.err" &
FG=$!
track_pid "$FG"
# The socket file exists from bind(), a moment before listen(): wait until it answers.
for i in $(seq 300); do
	[ -S "$T/fg.sock" ] && AKAGENT_SOCK="$T/fg.sock" "$AKCTL" status >/dev/null 2>&1
	[ $? = 4 ] && break
	sleep 0.1
done
AKAGENT_SOCK="$T/fg.sock" expect_exit 4 "$AKCTL" status
kill -TERM "$FG"
wait "$FG"
[ -e "$T/fg.sock" ] && fail "-D agent left its socket behind"

trace "akagent CMD: runs CMD with the variables, exits with it, and the agent goes too"
cat > "$T/cmd.sh" <<'SH'
printf '%s\n' "$AKAGENT_PID" > "$T/cmd.pid"
printenv AKAGENT_SOCK > "$T/cmd.sock"
"$AKCTL" status >/dev/null 2>&1; echo $? > "$T/cmd.status"
exit 7
SH
expect_exit 7 "$AKAGENT" sh "$T/cmd.sh"
CPID=$(cat "$T/cmd.pid")
[ -n "$CPID" ] || fail "CMD saw no AKAGENT_PID"
track_pid "$CPID"
assert_bytes "$T/cmd.sock" "$SOCK"$'\n'
assert_eq "$(cat "$T/cmd.status")" 4 "akctl status from CMD"
wait_gone "$CPID" 5 || fail "agent $CPID still running after CMD exited"
[ -e "$SOCK" ] && fail "socket left behind after akagent CMD"
trace ok
