#!/bin/bash
# akctl talks only to its own user's agent. With XDG_RUNTIME_DIR unset the default socket is
# /tmp/akagent-$UID, a path another uid can take first: a squatter's directory, a squatter's process
# behind our own directory, or AKAGENT_SOCK naming a squatter's socket are refused with exit 7 and a
# one-line error naming the path and the owner, before anything is sent. An agent of ours that serves
# another keystore never chooses what unlock derives from.
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

am_root || skip "needs root (to run a victim and a squatter under two other uids)"
command -v setpriv >/dev/null || skip "setpriv (util-linux) not installed"
id nobody >/dev/null 2>&1 || skip "no user nobody"
NB_UID=$(id -u nobody)
AS_NOBODY=(setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups)

# The victim: a uid of its own, so its /tmp/akagent-$UID is this test's alone.
V=
for _ in $(seq 50); do
	c=$((20000 + RANDOM % 40000))
	getent passwd "$c" >/dev/null || [ -e "/tmp/akagent-$c" ] || { V=$c; break; }
done
[ -n "$V" ] || skip "no free uid for the victim"
SQ="/tmp/akagent-$V"
AS_V=(setpriv --reuid="$V" --regid="$V" --clear-groups)
# Nothing left in /tmp when the test ends or is killed: lib.sh's cleanup, plus the victim's socket dir.
_impostor_cleanup() {
	local rc=$?
	rm -rf "$SQ"
	(exit "$rc")
	_cleanup
}
trap _impostor_cleanup EXIT

chmod 0711 "$T"
mkdir -m 0755 "$T/bin"
# akctl hands every command but get/env/use/exec to akctl-main beside it
cp "$AKCTL" "$(dirname "$AKCTL")/akctl-main" "$AKAGENT" "$TESTS_DIR/fake/impostor.py" "$T/bin/"
B="$T/bin"
VH="$T/victim"
mkdir -m 0700 "$VH"
chown "$V:$V" "$VH"
SQLOG="$T/sq"	# the fakes' logs
mkdir -m 0777 "$SQLOG"
"${AS_V[@]}" "$B/akctl" --version >/dev/null 2>&1 || skip "the victim uid cannot run a copy of akctl"
"${AS_NOBODY[@]}" "$PY" -c '' 2>/dev/null || skip "nobody cannot run $PY"

# victim CMD...: run as the victim with XDG_RUNTIME_DIR unset (the /tmp fallback), passphrase on fd 3.
victim() {
	env -i PATH=/usr/bin:/bin HOME="$VH" LC_ALL=C.UTF-8 AKCTL_ASKPASS=/bin/false ${VSOCK:+AKAGENT_SOCK="$VSOCK"} \
		"${AS_V[@]}" "$@" 3<<<"$PASS"
}
# start_fake NAME SOCK AS...: the fake agent (tests/fake/impostor.py) as the given user; waits until it
# listens. Its log is $SQLOG/NAME.
start_fake() {
	local name=$1 sock=$2 i
	shift 2
	"$@" "$PY" "$B/impostor.py" "$sock" "$SQLOG/$name" "$T/evil/keystore" 2>"$SQLOG/$name.err" &
	track_pid $!
	for i in $(seq 100); do
		[ -e "$SQLOG/$name.ready" ] && return 0
		sleep 0.1
	done
	fail "fake agent $name did not start: $(cat "$SQLOG/$name.err")"
}
# refused CMD...: the victim's command exits 7 with one line naming WANT_PATH and WANT_OWNER.
refused() {
	printf '%s' "$KEY" > "$T/secret-in"
	chmod 0644 "$T/secret-in"
	run victim "$@" <"$T/secret-in"
	[ "$RC" = 7 ] || fail "'$*' exited $RC, wanted 7 (agent not ours); stderr: $(cat "$ERR")"
	[ "$(wc -l <"$ERR")" = 1 ] || fail "'$*': wanted a one-line error, got: $(cat "$ERR")"
	grep -qF -- "$WANT_PATH" "$ERR" || fail "'$*': the error does not name $WANT_PATH: $(cat "$ERR")"
	grep -qF -- "$WANT_OWNER" "$ERR" || fail "'$*': the error does not name $WANT_OWNER: $(cat "$ERR")"
	assert_no_secret "$OUT" "$KEY" "'$*' stdout"
}
KEY=$(fake_key)
VSOCK=

trace "the victim's own keystore"
expect_exit 0 victim "$B/akctl" --passphrase-fd 3 init --kdf insecure-test
VSTORE="$VH/.local/share/akagent/keystore"
[ -f "$VSTORE" ] || fail "no victim keystore at $VSTORE"
mkdir -m 0755 "$T/evil"
chown "$V:$V" "$T/evil"
expect_exit 0 victim "$B/akctl" -f "$T/evil/keystore" --passphrase-fd 3 init --kdf insecure-test

trace "a squatter owns /tmp/akagent-$V and listens in it"
"${AS_NOBODY[@]}" mkdir -m 0777 "$SQ" || fail "nobody cannot create $SQ"
start_fake squat "$SQ/agent.sock" "${AS_NOBODY[@]}"
WANT_PATH=$SQ
WANT_OWNER="uid $NB_UID"
for cmd in status unlock "add p1" "env p1" "get p1" list lock "rm p1"; do
	# shellcheck disable=SC2086  # split the command words
	refused "$B/akctl" --passphrase-fd 3 $cmd
done
grep -q "" "$SQLOG/squat" 2>/dev/null && fail "the squatter received: $(cat "$SQLOG/squat")"
run victim "$B/akagent" -k
[ "$RC" = 1 ] || fail "akagent -k against a squatter exited $RC, wanted 1"
grep -qF "$SQ" "$ERR" && grep -qF "uid $NB_UID" "$ERR" || fail "akagent -k: $(cat "$ERR")"
grep -q "" "$SQLOG/squat" 2>/dev/null && fail "the squatter received: $(cat "$SQLOG/squat")"

trace "AKAGENT_SOCK naming the squatter's socket: the peer's uid refuses it"
VSOCK="$SQ/agent.sock"
WANT_PATH=$VSOCK
for cmd in status unlock "add p1" "env p1"; do
	# shellcheck disable=SC2086
	refused "$B/akctl" --passphrase-fd 3 $cmd
done
grep -q "" "$SQLOG/squat" 2>/dev/null && fail "the squatter received: $(cat "$SQLOG/squat")"
VSOCK=

trace "the directory is the victim's, but another uid's process listens behind it"
rm -rf "$SQ"
mkdir -m 0777 "$T/nbdir"
start_fake behind "$T/nbdir/agent.sock" "${AS_NOBODY[@]}"
mkdir -m 0700 "$SQ"
chown "$V:$V" "$SQ"
mv "$T/nbdir/agent.sock" "$SQ/agent.sock"
WANT_PATH="$SQ/agent.sock"
for cmd in status unlock "add p1" "env p1" lock; do
	# shellcheck disable=SC2086
	refused "$B/akctl" --passphrase-fd 3 $cmd
done
grep -q "" "$SQLOG/behind" 2>/dev/null && fail "the other uid's process received: $(cat "$SQLOG/behind")"
run victim "$B/akagent" -k
[ "$RC" = 1 ] || fail "akagent -k against another uid's process exited $RC, wanted 1"
grep -qF "uid $NB_UID" "$ERR" || fail "akagent -k: $(cat "$ERR")"

trace "an agent of the victim's own uid that names another keystore never chooses what unlock derives"
rm -f "$SQ/agent.sock"
start_fake own "$SQ/agent.sock" "${AS_V[@]}"
run victim "$B/akctl" --passphrase-fd 3 unlock
[ "$RC" = 3 ] || fail "unlock against an agent of another keystore exited $RC, wanted 3: $(cat "$ERR")"
[ "$(wc -l <"$ERR")" = 1 ] || fail "unlock: wanted a one-line error, got: $(cat "$ERR")"
grep -qF "serves $T/evil/keystore, not $VSTORE" "$ERR" || fail "unlock: $(cat "$ERR")"
run victim "$B/akctl" status
[ "$RC" = 3 ] || fail "status against an agent of another keystore exited $RC, wanted 3"
grep -q "^agent: *none for this keystore" "$OUT" || fail "status: $(cat "$OUT")"
grep -qF "keystore:   $VSTORE" "$OUT" || fail "status did not report the victim's own keystore: $(cat "$OUT")"
# A write goes to the victim's own file, directly (the passphrase on fd 3), never to that agent.
printf '%s' "$KEY" > "$T/secret-in"
expect_exit 0 victim "$B/akctl" --passphrase-fd 3 add p1 --no-validate <"$T/secret-in"
grep -v '^frame 1$' "$SQLOG/own" && fail "the agent of another keystore received more than STATUS"
grep -q '^frame 1$' "$SQLOG/own" || fail "the fake agent saw no STATUS at all (is the test broken?)"
trace ok
