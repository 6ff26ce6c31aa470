#!/bin/bash
# A client of another uid (nobody) is refused even when the socket's permissions let it connect.
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

am_root || skip "needs root (to run a client as nobody)"
command -v setpriv >/dev/null || skip "setpriv (util-linux) not installed"
id nobody >/dev/null 2>&1 || skip "no user nobody"
NOGROUP=$(id -gn nobody)
AS_NOBODY=(setpriv --reuid=nobody --regid="$NOGROUP" --clear-groups)
# The build directory may sit where nobody cannot reach it (CI clones under /root): use copies.
chmod 0711 "$T"
mkdir -m 0755 "$T/bin"
cp "$AKCTL" "$T/bin/akctl"
cp "$(dirname "$AKCTL")/akctl-main" "$T/bin/akctl-main" # what akctl hands all but get/env/use/exec to
cp "$AKAGENT" "$T/bin/akagent"
NB_AKCTL="$T/bin/akctl"
NB_AKAGENT="$T/bin/akagent"
"${AS_NOBODY[@]}" "$NB_AKCTL" --version >/dev/null 2>&1 || skip "nobody cannot run a copy of akctl"
"${AS_NOBODY[@]}" "$PY" -c '' 2>/dev/null || skip "nobody cannot run $PY"

KEY=$(fake_key)
init_store
start_agent
unlock
add_profile secret-profile "$KEY" --set PLAIN_MARK=visible-mark

trace "open up the socket directory for the test"
chmod 0711 "$T" "$XDG_RUNTIME_DIR" "$(dirname "$AKAGENT_SOCK")"
chmod 0666 "$AKAGENT_SOCK"
cp "$TESTS_DIR/rawclient.py" "$T/rawclient.py"
chmod 0755 "$T/rawclient.py"

trace "root is allowed"
expect_exit 0 "$AKCTL" get secret-profile
assert_bytes "$OUT" "$KEY"

trace "nobody can connect but gets no answer but a refusal"
expect_exit 0 "${AS_NOBODY[@]}" "$PY" "$T/rawclient.py" status "$AKAGENT_SOCK"
case $(cat "$OUT") in
"closed" | "error 20") ;;
*) fail "nobody's STATUS got '$(cat "$OUT")', wanted the connection closed or ERROR denied (20)" ;;
esac

for cmd in status list "get secret-profile" "show secret-profile" "env secret-profile" "use secret-profile"; do
	# shellcheck disable=SC2086  # split the command words
	expect_exit nonzero env -i PATH=/usr/bin:/bin HOME=/nonexistent AKAGENT_SOCK="$AKAGENT_SOCK" \
		"${AS_NOBODY[@]}" "$NB_AKCTL" $cmd
	for s in "$KEY" secret-profile visible-mark "${KEY: -4}"; do
		grep -qF -- "$s" "$OUT" && fail "nobody's 'akctl $cmd' printed profile data ('$s')"
	done
done
expect_exit nonzero env -i PATH=/usr/bin:/bin HOME=/nonexistent AKAGENT_SOCK="$AKAGENT_SOCK" \
	"${AS_NOBODY[@]}" "$NB_AKCTL" exec secret-profile -- printenv ANTHROPIC_API_KEY
assert_no_secret "$OUT" "$KEY" "nobody's exec"
expect_exit nonzero env -i PATH=/usr/bin:/bin HOME=/nonexistent AKAGENT_SOCK="$AKAGENT_SOCK" \
	"${AS_NOBODY[@]}" "$NB_AKCTL" lock

trace "a process of the agent's own uid cannot read its memory (not dumpable)"
NB="$T/nb"
mkdir -m 0700 "$NB"
chown nobody "$NB"
expect_exit 0 env -i PATH=/usr/bin:/bin HOME="$NB" XDG_RUNTIME_DIR="$NB" \
	"${AS_NOBODY[@]}" "$NB_AKAGENT" -s -a "$NB/s.sock"
NBPID=$(unset AKAGENT_PID; eval "$(cat "$OUT")" >/dev/null; echo "${AKAGENT_PID:-}")
[ -n "$NBPID" ] || fail "no pid from nobody's agent"
track_pid "$NBPID"
assert_eq "$(stat -c %U "/proc/$NBPID/mem")" root "owner of a non-dumpable agent's /proc/PID/mem"
expect_exit nonzero "${AS_NOBODY[@]}" "$PY" -c 'import sys; open("/proc/%s/mem" % sys.argv[1], "rb").read(1)' "$NBPID"
expect_exit nonzero "${AS_NOBODY[@]}" cat "/proc/$NBPID/environ"
kill -TERM "$NBPID"

trace "the agent is still there, unlocked, for its owner"
kill -0 "$AKAGENT_PID" || fail "agent died"
expect_exit 0 "$AKCTL" status
expect_exit 0 "$AKCTL" get secret-profile
assert_bytes "$OUT" "$KEY"
trace ok
