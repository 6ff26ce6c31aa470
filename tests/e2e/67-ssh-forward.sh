#!/bin/bash
# The agent's socket forwarded with `ssh -R` to a path on the "remote" side, for real: a private sshd
# (as root, loopback, a random free port, its own host key, config, pid file and authorized key) and
# OpenSSH's client. Over the forward, akctl's checks hold: the listener of the forwarded socket is
# sshd's session process running as root, which akctl trusts; the agent sees the local ssh client
# (our uid). Reads, status, lock and a refused read when locked go through the forward; a stale
# socket left at the remote path is replaced (StreamLocalBindUnlink). sshd is killed at the end.
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

am_root || skip "sshd must run as root"
SSHD=/usr/sbin/sshd
[ -x "$SSHD" ] || skip "openssh-server not installed"
command -v ssh >/dev/null && command -v ssh-keygen >/dev/null || skip "openssh-client not installed"
SCALE=${AK_TEST_TIMEOUT_SCALE:-1}

# sshd needs its privilege separation directory; make it (and remove it again) if the package's
# tmpfiles entry has not.
if [ ! -d /run/sshd ]; then
	mkdir -m 0755 /run/sshd || fail "cannot create /run/sshd"
	trap 'rc=$?; rmdir /run/sshd 2>/dev/null; (exit "$rc"); _cleanup' EXIT
fi

init_store
start_agent
unlock
K=$(fake_key)
add_profile production "$K" --set MODEL_NAME=small

S="$T/sshd"
mkdir -m 0700 "$S"
ssh-keygen -q -t ed25519 -N '' -f "$S/host_key" || fail "ssh-keygen (host key) failed"
ssh-keygen -q -t ed25519 -N '' -f "$S/user_key" || fail "ssh-keygen (user key) failed"
cp "$S/user_key.pub" "$S/authorized_keys"
# A free loopback port: bind port 0, read it back, close (sshd binds it right after).
PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$S/config" <<EOF
ListenAddress 127.0.0.1
Port $PORT
HostKey $S/host_key
PidFile $S/sshd.pid
AuthorizedKeysFile $S/authorized_keys
StrictModes no
UsePAM no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
AllowStreamLocalForwarding yes
StreamLocalBindUnlink yes
StreamLocalBindMask 0177
LogLevel VERBOSE
EOF

trace "sshd on 127.0.0.1:$PORT"
"$SSHD" -f "$S/config" -D -e 2>"$S/sshd.log" &
SSHD_PID=$!
track_pid "$SSHD_PID"
# Poll until it listens (a busy machine may take a while).
n=$((300 * SCALE))
until "$PY" -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$PORT" \
	2>/dev/null; do
	kill -0 "$SSHD_PID" 2>/dev/null || { cat "$S/sshd.log" >&2; fail "sshd exited"; }
	n=$((n - 1))
	[ "$n" -gt 0 ] || fail "sshd did not listen on port $PORT"
	sleep 0.1
done

# The "remote" socket: a 0700 directory of the remote user (root here), as the docs advise.
R="$T/remote"
mkdir -m 0700 "$R"
RSOCK="$R/agent.sock"
mkdir -p "$T/bin"
ln -s "$AKCTL" "$T/bin/akctl"
SSH=(ssh -F /dev/null -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes
	-o LogLevel=ERROR -o ExitOnForwardFailure=yes -o ConnectTimeout=$((30 * SCALE))
	-i "$S/user_key" -p "$PORT" -R "$RSOCK:$AKAGENT_SOCK" root@127.0.0.1)
# The remote command runs in a login environment: give it akctl and the forwarded socket, and none of
# this side's agent or keystore variables.
# ssh's own failures are exit 255 (no remote command here exits so): on a loaded machine sshd sometimes
# resets a connection during the key exchange, which says nothing about akagent, so that is tried again.
remote() {
	local try
	for try in 1 2 3 4 5; do
		run timeout $((60 * SCALE)) "${SSH[@]}" "PATH='$T/bin':\$PATH AKAGENT_SOCK='$RSOCK' HOME='$T/home' $*"
		[ "$RC" = 255 ] || return 0
		trace "ssh failed to connect (try $try): $(head -c 300 "$ERR")"
		sleep "$try"
	done
	trace "sshd's log ends: $(tail -n 15 "$S/sshd.log")"
}

trace "akctl get over the forwarded socket"
remote akctl get production
[ "$RC" = 0 ] || { cat "$S/sshd.log" >&2; fail "akctl get over ssh -R exited $RC: $(cat "$ERR")"; }
assert_bytes "$OUT" "$K"
remote akctl get production MODEL_NAME
assert_eq "$RC" 0 "akctl get VAR over ssh -R"
assert_bytes "$OUT" small

trace "the forwarded socket's listener is sshd, as root; the agent's peer is the local ssh client"
# While a session holds the forward, the socket exists with sshd's mask (0600) and sshd's session
# process is the listener: SO_PEERCRED, read back by a python client on the remote path.
remote "/usr/bin/python3 -c 'import socket, struct, sys; s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); \
pid, uid, gid = struct.unpack(\"3i\", s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)); \
print(uid, open(\"/proc/%d/comm\" % pid).read().strip())' '$RSOCK'; stat -c %a '$RSOCK'"
assert_eq "$RC" 0 "peer credentials of the forwarded socket"
read -r puid pcomm <"$OUT"
assert_eq "$puid" 0 "uid of the forwarded socket's listener"
case $pcomm in sshd*) ;; *) fail "the forwarded socket's listener is '$pcomm', not sshd" ;; esac
assert_eq "$(sed -n 2p "$OUT")" 600 "mode of the forwarded socket"

trace "status and lock over the forward; a locked agent refuses the read"
# status compares the agent's keystore with the remote side's own keystore path, which differs here as
# it would on another host: it says so, with exit 3, rather than report another keystore's state.
remote akctl status
assert_eq "$RC" 3 "akctl status over ssh -R (the remote default keystore is not the agent's)"
grep -qF "serves $XDG_DATA_HOME/akagent/keystore, not $HOME/.local/share/akagent/keystore" "$OUT" ||
	fail "akctl status over ssh -R: $(cat "$OUT")"
remote AKCTL_KEYSTORE="'$XDG_DATA_HOME/akagent/keystore'" akctl status
[ "$RC" = 0 ] || fail "akctl status over ssh -R with the agent's keystore path exited $RC: $(cat "$OUT" "$ERR")"
remote akctl lock
assert_eq "$RC" 0 "akctl lock over ssh -R"
expect_exit 4 "$AKCTL" status
remote akctl --no-prompt get production
assert_eq "$RC" 4 "akctl get over ssh -R, agent locked"
assert_no_secret "$OUT" "$K" "locked get"
unlock

trace "a socket left at the remote path is replaced (StreamLocalBindUnlink)"
# sshd leaves a session's forward behind when it ends: make it a socket nobody ever listened on.
rm -f "$RSOCK"
"$PY" -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$RSOCK"
[ -S "$RSOCK" ] || fail "test assumption: a stale socket at $RSOCK"
remote akctl get production
assert_eq "$RC" 0 "akctl get over ssh -R with a stale remote socket"
assert_bytes "$OUT" "$K"

trace "sshd stops with the test"
kill -TERM "$SSHD_PID"
wait_gone "$SSHD_PID" $((10 * SCALE)) || fail "sshd $SSHD_PID still running after SIGTERM"
trace ok
